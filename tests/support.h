/*
 * support.h - what many tests share: a connected pair of sockets on
 * loopback, an echo peer in a thread, and the check that a test leaves the
 * process's descriptors as it found them.
 *
 * Every test binary includes cmocka through this header.
 */
#ifndef NETX_TEST_SUPPORT_H
#define NETX_TEST_SUPPORT_H

#include <setjmp.h>
#include <stdarg.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "fault.h"
#include "netx.h"

/* The number of descriptors open in this process right now. */
int support_fd_count(void);

/*
 * cmocka setup and teardown for every test: setup remembers the descriptor
 * count and disarms fault scripts; teardown fails the test if the count
 * changed (a leak, or a double close) and disarms fault scripts again.
 * Use with cmocka_unit_test_setup_teardown(), or the TEST() macro below.
 */
int support_setup(void **state);
int support_teardown(void **state);
#define TEST(f) cmocka_unit_test_setup_teardown(f, support_setup, support_teardown)

/*
 * A connected TCP pair on loopback: *client from netx_tcp_connect(),
 * *server from netx_accept(). host is "127.0.0.1" or "::1"; a test whose
 * host is unavailable is skipped. The listener is closed again.
 */
void support_tcp_pair(const char *host, int *client, int *server);

/* Fill buf with a pattern that depends on the seed, so a transfer that
 * drops, repeats or reorders bytes is caught. */
void support_pattern(unsigned char *buf, size_t len, unsigned seed);

/*
 * An echo peer in a thread: support_echo_start() takes one connected
 * socket and echoes everything it reads until end of stream, then closes
 * the socket. support_echo_join() waits for it to finish.
 * The echo thread uses the raw system calls, not libnetx, so fault scripts
 * on a descriptor of the test's own never touch it.
 */
struct support_echo {
    int fd;
    int ok; /* 1 if it echoed until end of stream without error */
    unsigned long long bytes;
    pthread_t thread;
};
void support_echo_start(struct support_echo *e, int fd);
void support_echo_join(struct support_echo *e);

/*
 * Make this process, and every program it starts, resolve names from
 * /etc/hosts alone: a private mount namespace with "hosts: files" over
 * /etc/nsswitch.conf. Tests ask for names that do not exist; without this
 * the resolver would ask the DNS server in /etc/resolv.conf, and the tests
 * send nothing beyond loopback. Call it at the start of main(), before any
 * thread or lookup. Returns 1 when in effect, 0 where the system does not
 * allow it (not root, no namespaces), and says why on stderr.
 */
int support_offline_resolver(void);

/* Skip the current test unless support_offline_resolver() succeeded: a
 * lookup of a name that does not exist would otherwise leave loopback. */
void support_require_offline_resolver(void);

/* 1 if this machine has an IPv6 loopback address (::1). */
int support_have_ipv6(void);

/*
 * Move this process into a network namespace of its own, where the only
 * interface is loopback (brought up here): nothing it or its children send
 * can leave the machine, and every port is free. Root may make one; anyone
 * else (and root in a container that forbids it) makes a user namespace
 * first, in which they are root. For a child process made for the purpose
 * (fork()), never the test binary itself. Returns 0, or -1 with errno set
 * (ENOSYS off Linux).
 */
int support_private_network(void);

#endif
