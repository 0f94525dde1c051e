/*
 * test_tcp.c - netx_tcp_listen() and netx_tcp_connect() over real loopback
 * sockets: every address of a name, dual-stack, refusals, timeouts.
 *
 * Three tests need a system whose /etc/hosts lists ::1 before 127.0.0.1
 * for localhost. They run in a child process with a private mount
 * namespace and its own hosts file (Linux, as root), and are skipped where
 * that is not permitted.
 */
#if defined(__linux__) && !defined(_GNU_SOURCE)
#define _GNU_SOURCE /* unshare() and CLONE_NEWNS */
#endif

#include "support.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifdef __linux__
#include <sched.h>
#include <sys/mount.h>
#endif

static void tcp_listen_port0_picks_free_port(void **state)
{
    (void)state;
    int lfd = netx_tcp_listen("127.0.0.1", 0, 0);
    assert_true(lfd >= 0);
    assert_true(netx_local_port(lfd) > 0);
    assert_int_equal(netx_close(lfd), 0);
}

static void tcp_roundtrip_ipv4_succeeds(void **state)
{
    (void)state;
    int c, s;
    char buf[16];
    support_tcp_pair("127.0.0.1", &c, &s);
    assert_int_equal(netx_send_all(c, "ping", 4), 0);
    assert_int_equal(netx_recv_all(s, buf, 4), 4);
    assert_memory_equal(buf, "ping", 4);
    netx_close(c);
    netx_close(s);
}

static void tcp_localhost_listener_reached_via_127_0_0_1(void **state)
{
    (void)state;
    int lfd = netx_tcp_listen("localhost", 0, 0);
    assert_true(lfd >= 0);
    int port = netx_local_port(lfd);
    int c = netx_tcp_connect("127.0.0.1", (uint16_t)port, 2000);
    assert_true(c >= 0);
    int s = netx_accept(lfd, NULL);
    assert_true(s >= 0);
    netx_close(c);
    netx_close(s);
    netx_close(lfd);
}

static void tcp_connect_refused_names_host_and_address(void **state)
{
    (void)state;
    /* A port that was just free: bind, note it, close. */
    int lfd = netx_tcp_listen("127.0.0.1", 0, 0);
    int port = netx_local_port(lfd);
    netx_close(lfd);
    int c = netx_tcp_connect("localhost", (uint16_t)port, 2000);
    assert_int_equal(c, -1);
    assert_int_equal(errno, ECONNREFUSED);
    char want[128];
    snprintf(want, sizeof want, "connect to localhost:%d (", port);
    assert_non_null(strstr(netx_last_error(), want));
    assert_non_null(strstr(netx_last_error(), "Connection refused"));
}

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void tcp_roundtrip_ipv6_succeeds(void **state)
{
    (void)state;
    int c, s;
    char buf[16];
    netx_addr peer;
    support_tcp_pair("::1", &c, &s); /* skips without IPv6 */
    assert_int_equal(netx_send_all(c, "ping", 4), 0);
    assert_int_equal(netx_recv_all(s, buf, 4), 4);
    assert_memory_equal(buf, "ping", 4);
    assert_int_equal(netx_peer_addr(s, &peer), 0);
    assert_int_equal(peer.ss.ss_family, AF_INET6);
    netx_close(c);
    netx_close(s);
}

static void tcp_listen_null_host_reachable_on_ipv4_and_ipv6(void **state)
{
    (void)state;
    const char *hosts[2] = {"127.0.0.1", "::1"};
    /* Without IPv6 the wildcard listener is IPv4 alone; check what exists. */
    int nhosts = support_have_ipv6() ? 2 : 1;
    int lfd = netx_tcp_listen(NULL, 0, 0);
    assert_true(lfd >= 0);
    int port = netx_local_port(lfd);
    assert_true(port > 0);

    for (int i = 0; i < nhosts; i++) {
        char want[NETX_ADDRSTRLEN];
        char got[NETX_ADDRSTRLEN];
        netx_addr peer;
        int c = netx_tcp_connect(hosts[i], (uint16_t)port, 2000);
        if (c < 0) {
            fail_msg("connect to %s: %s", hosts[i], netx_last_error());
        }
        int s = netx_accept(lfd, &peer);
        assert_true(s >= 0);
        /* The listener sees the client's own address, the IPv4 one written
         * as IPv4 even though it arrived on an IPv6 socket. */
        snprintf(want, sizeof want, i == 0 ? "127.0.0.1:%d" : "[::1]:%d", netx_local_port(c));
        assert_true(netx_addr_format(&peer, got, sizeof got) > 0);
        assert_string_equal(got, want);
        netx_close(c);
        netx_close(s);
    }
    netx_close(lfd);
}

static void tcp_listen_port_taken_eaddrinuse(void **state)
{
    (void)state;
    char want[128];
    int lfd = netx_tcp_listen("127.0.0.1", 0, 0);
    assert_true(lfd >= 0);
    int port = netx_local_port(lfd);

    /* SO_REUSEADDR allows reuse after TIME_WAIT, not two live listeners. */
    errno = 0;
    assert_int_equal(netx_tcp_listen("127.0.0.1", (uint16_t)port, 0), -1);
    assert_int_equal(errno, EADDRINUSE);
    snprintf(want, sizeof want, "bind to 127.0.0.1:%d (127.0.0.1): %s", port, strerror(EADDRINUSE));
    assert_string_equal(netx_last_error(), want);
    netx_close(lfd);
}

/* How many raw connects may go into filling a listener's accept queue. */
#define FILL_MAX 16

static void tcp_connect_unanswered_etimedout(void **state)
{
    (void)state;
    struct sockaddr_in a;
    int fillers[FILL_MAX];
    int nfill = 0;
    int full = 0;

    /* A listener with the smallest accept queue, which nobody accepts
     * from. Once its queue is full the system drops further SYNs, so a
     * connect to it gets no answer at all: the case a timeout is for. */
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(lfd >= 0);
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(lfd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(lfd, 0), 0);
    int port = netx_local_port(lfd);
    assert_true(port > 0);
    a.sin_port = htons((uint16_t)port);

    /* Fill the queue: connect until one attempt stays unanswered. */
    while (nfill < FILL_MAX && !full) {
        int f = socket(AF_INET, SOCK_STREAM, 0);
        assert_true(f >= 0);
        fillers[nfill++] = f;
        assert_int_equal(fcntl(f, F_SETFL, fcntl(f, F_GETFL) | O_NONBLOCK), 0);
        if (connect(f, (struct sockaddr *)&a, sizeof a) == 0) {
            continue;
        }
        assert_int_equal(errno, EINPROGRESS);
        struct pollfd p = {.fd = f, .events = POLLOUT, .revents = 0};
        int r = poll(&p, 1, 200);
        if (r == 0) {
            full = 1; /* still in progress: its SYN was dropped */
        }
    }
    assert_true(full);

    long long start = now_ms();
    errno = 0;
    int c = netx_tcp_connect("127.0.0.1", (uint16_t)port, 300);
    long long elapsed = now_ms() - start;
    int err = errno;
    for (int i = 0; i < nfill; i++) {
        close(fillers[i]);
    }
    close(lfd);

    assert_int_equal(c, -1);
    assert_int_equal(err, ETIMEDOUT);
    /* It waited for the timeout, and not much longer. The margins are
     * wide: this checks the timeout works, not how fast the machine is. */
    assert_true(elapsed >= 250);
    assert_true(elapsed < 300 + 3000);
    assert_non_null(strstr(netx_last_error(), strerror(ETIMEDOUT)));
}

static void tcp_connect_unknown_host_enoent(void **state)
{
    (void)state;
    support_require_offline_resolver();
    errno = 0;
    assert_int_equal(netx_tcp_connect("no-such-host.invalid", 80, 1000), -1);
    assert_int_equal(errno, ENOENT);
}

static void tcp_connect_null_host_einval(void **state)
{
    (void)state;
    errno = 0;
    assert_int_equal(netx_tcp_connect(NULL, 80, 1000), -1);
    assert_int_equal(errno, EINVAL);
}

static void tcp_connect_port0_einval(void **state)
{
    (void)state;
    errno = 0;
    assert_int_equal(netx_tcp_connect("127.0.0.1", 0, 1000), -1);
    assert_int_equal(errno, EINVAL);
}

static void tcp_localhost_listener_reached_via_localhost(void **state)
{
    (void)state;
    char buf[2];
    int lfd = netx_tcp_listen("localhost", 0, 0);
    assert_true(lfd >= 0);
    int port = netx_local_port(lfd);
    int c = netx_tcp_connect("localhost", (uint16_t)port, 2000);
    assert_true(c >= 0);
    int s = netx_accept(lfd, NULL);
    assert_true(s >= 0);
    assert_int_equal(netx_send_all(c, "hi", 2), 0);
    assert_int_equal(netx_recv_all(s, buf, 2), 2);
    assert_memory_equal(buf, "hi", 2);
    netx_close(c);
    netx_close(s);
    netx_close(lfd);
}

/* A private hosts file ---------------------------------------------------- */

/* Where ::1 comes first for localhost, as on many systems. */
#define IPV6_FIRST_HOSTS "::1 localhost\n127.0.0.1 localhost\n"

/* The child's exit status when the namespace cannot be made, and when
 * the resolver does not keep ::1 first. */
#define CHILD_SKIP       77
#define CHILD_SKIP_ORDER 78

/* Longest wait for the child, generous for slow machines. */
#define CHILD_LIMIT_MS 10000

/* In the child: report which check failed (with the library's sentence),
 * and return its code for the exit status. */
static int child_fail(int code, const char *what)
{
    fprintf(stderr, "child check %d failed: %s: %s\n", code, what, netx_last_error());
    return code;
}

#ifdef __linux__
/* In the child: 0 if localhost resolves to ::1 first, as the hosts file
 * says. With one address the file is not in effect, a failure; with both
 * in the other order the resolver sorted them (a system without IPv6 does),
 * and there is nothing to test. */
static int child_check_ipv6_first(void)
{
    netx_addr a[4];
    int n = netx_resolve("localhost", 1, a, 4);
    if (n < 2) {
        return child_fail(1, "localhost does not resolve to both ::1 and 127.0.0.1");
    }
    if (a[0].ss.ss_family != AF_INET6) {
        return CHILD_SKIP_ORDER;
    }
    return 0;
}

/* In the child: a mount namespace of its own with hosts_path over
 * /etc/hosts, then body(). glibc reads /etc/hosts on every lookup. */
static int child_in_namespace(const char *hosts_path, int (*body)(void))
{
    /* EPERM when not root, EINVAL or ENOSYS without namespaces: the
     * environment cannot host the test, so say why and skip it. */
    if (unshare(CLONE_NEWNS) != 0) {
        fprintf(stderr, "unshare(CLONE_NEWNS): %s\n", strerror(errno));
        return CHILD_SKIP;
    }
    /* Private, so the bind mount below stays in this namespace. The kernel
     * ignores the file system type of both calls; "none" rather than NULL
     * keeps valgrind, which reads it as a string, quiet. */
    if (mount("none", "/", "none", MS_REC | MS_PRIVATE, NULL) != 0) {
        fprintf(stderr, "mount / private: %s\n", strerror(errno));
        return CHILD_SKIP;
    }
    if (mount(hosts_path, "/etc/hosts", "none", MS_BIND, NULL) != 0) {
        fprintf(stderr, "bind mount over /etc/hosts: %s\n", strerror(errno));
        return CHILD_SKIP;
    }
    int rc = child_check_ipv6_first();
    if (rc != 0) {
        return rc;
    }
    return body();
}
#endif

/*
 * Run body() in a child process that sees IPV6_FIRST_HOSTS as /etc/hosts.
 * The child reports by exit status: 0 passed, CHILD_SKIP no namespace,
 * anything else the number of the check that failed.
 */
static void run_with_ipv6_first_hosts(int (*body)(void))
{
#ifndef __linux__
    (void)body;
    skip();
#else
    char path[] = "/tmp/netx-test-hosts-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    ssize_t w = write(fd, IPV6_FIRST_HOSTS, strlen(IPV6_FIRST_HOSTS));
    close(fd);
    if (w != (ssize_t)strlen(IPV6_FIRST_HOSTS)) {
        unlink(path);
        fail_msg("writing %s failed", path);
    }

    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid == 0) {
        _exit(child_in_namespace(path, body));
    }
    int status = 0;
    int finished = 0;
    long long deadline = now_ms() + CHILD_LIMIT_MS;
    while (pid > 0 && !finished) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid) {
            finished = 1;
        } else if (r < 0 && errno != EINTR) {
            break;
        } else if (now_ms() >= deadline) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            break;
        } else {
            struct timespec ts = {0, 5 * 1000 * 1000};
            nanosleep(&ts, NULL);
        }
    }
    unlink(path);

    assert_true(pid > 0);
    if (!finished) {
        fail_msg("the child did not finish within %d ms", CHILD_LIMIT_MS);
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == CHILD_SKIP) {
        fprintf(stderr, "no private mount namespace (not root?); skipping\n");
        skip();
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == CHILD_SKIP_ORDER) {
        fprintf(stderr, "the resolver puts 127.0.0.1 before ::1; skipping\n");
        skip();
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fail_msg("the child failed (status 0x%x); its stderr says which check", status);
    }
#endif
}

/* DESIGN.md: a localhost listener is reachable from 127.0.0.1 and from
 * localhost, also where ::1 is listed first. */
static int child_localhost_both_ways(void)
{
    int lfd = netx_tcp_listen("localhost", 0, 0);
    if (lfd < 0) {
        return child_fail(2, "listen on localhost");
    }
    int port = netx_local_port(lfd);
    if (netx_tcp_connect("127.0.0.1", (uint16_t)port, 2000) < 0) {
        return child_fail(3, "connect via 127.0.0.1");
    }
    if (netx_accept(lfd, NULL) < 0) {
        return child_fail(4, "accept the 127.0.0.1 client");
    }
    if (netx_tcp_connect("localhost", (uint16_t)port, 2000) < 0) {
        return child_fail(5, "connect via localhost");
    }
    if (netx_accept(lfd, NULL) < 0) {
        return child_fail(6, "accept the localhost client");
    }
    return 0; /* the process ends here, which closes every socket */
}

static void tcp_localhost_ipv6_first_hosts_reachable_both_ways(void **state)
{
    (void)state;
    run_with_ipv6_first_hosts(child_localhost_both_ways);
}

/* ::1 refuses (nothing listens there), 127.0.0.1 accepts: without a
 * deadline too, the connect must go on to the second address. */
static int child_refused_then_next_address(void)
{
    netx_addr peer;
    char text[NETX_ADDRSTRLEN];
    char want[NETX_ADDRSTRLEN];

    int lfd = netx_tcp_listen("127.0.0.1", 0, 0);
    if (lfd < 0) {
        return child_fail(2, "listen on 127.0.0.1");
    }
    int port = netx_local_port(lfd);
    int c = netx_tcp_connect("localhost", (uint16_t)port, 0);
    if (c < 0) {
        return child_fail(3, "connect via localhost without a timeout");
    }
    snprintf(want, sizeof want, "127.0.0.1:%d", port);
    if (netx_peer_addr(c, &peer) != 0 || netx_addr_format(&peer, text, sizeof text) < 0 ||
        strcmp(text, want) != 0) {
        return child_fail(4, "the connection's peer is not 127.0.0.1");
    }
    return 0;
}

static void tcp_connect_ipv6_refused_falls_back_to_ipv4(void **state)
{
    (void)state;
    run_with_ipv6_first_hosts(child_refused_then_next_address);
}

/* Both addresses refuse: the sentence names the last one tried. */
static int child_all_refused(void)
{
    char want[200];
    int lfd = netx_tcp_listen("127.0.0.1", 0, 0);
    if (lfd < 0) {
        return child_fail(2, "listen on 127.0.0.1");
    }
    int port = netx_local_port(lfd);
    netx_close(lfd);
    if (netx_tcp_connect("localhost", (uint16_t)port, 2000) != -1 || errno != ECONNREFUSED) {
        return child_fail(3, "connect to a closed port did not fail with ECONNREFUSED");
    }
    snprintf(want, sizeof want, "connect to localhost:%d (127.0.0.1): %s", port,
             strerror(ECONNREFUSED));
    if (strcmp(netx_last_error(), want) != 0) {
        fprintf(stderr, "want \"%s\"\n", want);
        return child_fail(4, "the sentence does not name the last address");
    }
    return 0;
}

static void tcp_connect_all_refused_reports_last_address(void **state)
{
    (void)state;
    run_with_ipv6_first_hosts(child_all_refused);
}

/* 127.0.0.1:P is taken: listening on "localhost" port P must fail with
 * EADDRINUSE, not quietly take [::1]:P, where dialers of 127.0.0.1 would
 * never arrive. */
static int child_port_taken_no_fallback(void)
{
    int holder = netx_tcp_listen("127.0.0.1", 0, 0);
    if (holder < 0) {
        return child_fail(2, "listen on 127.0.0.1");
    }
    int port = netx_local_port(holder);
    if (netx_tcp_listen("localhost", (uint16_t)port, 0) != -1 || errno != EADDRINUSE) {
        return child_fail(3, "listen on a taken localhost port did not fail with EADDRINUSE");
    }
    return 0;
}

static void tcp_listen_localhost_port_taken_no_ipv6_fallback(void **state)
{
    (void)state;
    run_with_ipv6_first_hosts(child_port_taken_no_fallback);
}

int main(void)
{
    support_offline_resolver();
    const struct CMUnitTest tests[] = {
        TEST(tcp_listen_port0_picks_free_port),
        TEST(tcp_roundtrip_ipv4_succeeds),
        TEST(tcp_localhost_listener_reached_via_127_0_0_1),
        TEST(tcp_connect_refused_names_host_and_address),
        TEST(tcp_roundtrip_ipv6_succeeds),
        TEST(tcp_listen_null_host_reachable_on_ipv4_and_ipv6),
        TEST(tcp_listen_port_taken_eaddrinuse),
        TEST(tcp_connect_unanswered_etimedout),
        TEST(tcp_connect_unknown_host_enoent),
        TEST(tcp_connect_null_host_einval),
        TEST(tcp_connect_port0_einval),
        TEST(tcp_localhost_listener_reached_via_localhost),
        TEST(tcp_localhost_ipv6_first_hosts_reachable_both_ways),
        TEST(tcp_connect_ipv6_refused_falls_back_to_ipv4),
        TEST(tcp_connect_all_refused_reports_last_address),
        TEST(tcp_listen_localhost_port_taken_no_ipv6_fallback),
    };
    return cmocka_run_group_tests_name("tcp", tests, NULL, NULL);
}
