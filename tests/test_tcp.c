/*
 * test_tcp.c - netx_tcp_listen() and netx_tcp_connect() over real loopback
 * sockets: every address of a name, dual-stack, refusals, timeouts, and
 * the race of a name's addresses.
 *
 * The tests that need a name with given addresses (::1 before 127.0.0.1
 * for localhost, or a name of their own) run in a child process with a
 * private mount namespace and its own hosts file, one of them also in a
 * network namespace of its own (Linux, as root); they are skipped where
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
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifdef __linux__
#include <linux/ipv6.h> /* struct in6_ifreq */
#include <net/if.h>
#include <sched.h>
#include <sys/ioctl.h>
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

/*
 * Listen with host (NULL or ""), which means every interface: the socket is
 * bound to the wildcard address, and reached on 127.0.0.1 and on ::1.
 */
static void check_listen_every_interface(const char *listen_host)
{
    const char *hosts[2] = {"127.0.0.1", "::1"};
    /* Without IPv6 the wildcard listener is IPv4 alone; check what exists. */
    int nhosts = support_have_ipv6() ? 2 : 1;
    int lfd = netx_tcp_listen(listen_host, 0, 0);
    if (lfd < 0) {
        fail_msg("listen on \"%s\": %s", listen_host != NULL ? listen_host : "(NULL)",
                 netx_last_error());
    }
    int port = netx_local_port(lfd);
    assert_true(port > 0);
    netx_addr local;
    char text[NETX_ADDRSTRLEN];
    char wildcard[NETX_ADDRSTRLEN];
    assert_int_equal(netx_local_addr(lfd, &local), 0);
    assert_true(netx_addr_format(&local, text, sizeof text) > 0);
    snprintf(wildcard, sizeof wildcard, nhosts == 2 ? "[::]:%d" : "0.0.0.0:%d", port);
    assert_string_equal(text, wildcard);

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

static void tcp_listen_null_host_reachable_on_ipv4_and_ipv6(void **state)
{
    (void)state;
    check_listen_every_interface(NULL);
}

/* "" is what a server's -H '' hands over: every interface, as NULL is, not
 * a name to resolve. */
static void tcp_listen_empty_host_reachable_on_ipv4_and_ipv6(void **state)
{
    (void)state;
    check_listen_every_interface("");
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

/*
 * A listener that answers no connection attempt: the smallest accept queue,
 * filled with connections nobody accepts. Once its queue is full the system
 * drops further SYNs, so a connect to it gets no answer at all - the case a
 * timeout and a race of addresses are for. (A port where nothing listens
 * is no stand-in: it answers at once, with a reset.)
 */
struct unanswered {
    int lfd;
    int fillers[FILL_MAX];
    int nfill;
};

static void unanswered_close(struct unanswered *u)
{
    for (int i = 0; i < u->nfill; i++) {
        close(u->fillers[i]);
    }
    u->nfill = 0;
    if (u->lfd >= 0) {
        close(u->lfd);
    }
    u->lfd = -1;
}

/* Open one on the IPv4 address ip and port (0: any free port). Returns
 * its port, or -1 with nothing left open. No cmocka asserts: a child
 * process calls it too. */
static int unanswered_open(struct unanswered *u, const char *ip, int port)
{
    struct sockaddr_in a;
    memset(u, 0, sizeof *u);
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    u->lfd = socket(AF_INET, SOCK_STREAM, 0);
    if (u->lfd < 0 || inet_pton(AF_INET, ip, &a.sin_addr) != 1 ||
        bind(u->lfd, (struct sockaddr *)&a, sizeof a) != 0 || listen(u->lfd, 0) != 0) {
        unanswered_close(u);
        return -1;
    }
    port = netx_local_port(u->lfd);
    a.sin_port = htons((uint16_t)port);

    /* Fill the queue: connect until one attempt stays unanswered. */
    while (u->nfill < FILL_MAX) {
        int f = socket(AF_INET, SOCK_STREAM, 0);
        if (f < 0) {
            break;
        }
        u->fillers[u->nfill++] = f;
        if (fcntl(f, F_SETFL, fcntl(f, F_GETFL) | O_NONBLOCK) != 0) {
            break;
        }
        if (connect(f, (struct sockaddr *)&a, sizeof a) == 0) {
            continue;
        }
        if (errno != EINPROGRESS) {
            break;
        }
        struct pollfd p = {.fd = f, .events = POLLOUT, .revents = 0};
        if (poll(&p, 1, 200) == 0) {
            return port; /* still in progress: its SYN was dropped */
        }
    }
    unanswered_close(u);
    return -1;
}

static void tcp_connect_unanswered_etimedout(void **state)
{
    (void)state;
    struct unanswered u;
    int port = unanswered_open(&u, "127.0.0.1", 0);
    assert_true(port > 0);

    long long start = now_ms();
    errno = 0;
    int c = netx_tcp_connect("127.0.0.1", (uint16_t)port, 300);
    long long elapsed = now_ms() - start;
    int err = errno;
    unanswered_close(&u);

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
    return body();
}
#endif

/*
 * Run body() in a child process that sees hosts (the text of a hosts file)
 * as /etc/hosts. The child reports by exit status: 0 passed, CHILD_SKIP no
 * namespace, CHILD_SKIP_ORDER the resolver's order is not the one the test
 * needs, anything else the number of the check that failed.
 */
static void run_with_hosts(const char *hosts, int (*body)(void))
{
#ifndef __linux__
    (void)hosts;
    (void)body;
    skip();
#else
    char path[] = "/tmp/netx-test-hosts-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    ssize_t w = write(fd, hosts, strlen(hosts));
    close(fd);
    if (w != (ssize_t)strlen(hosts)) {
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
        fprintf(stderr, "no private namespace (not root?); skipping\n");
        skip();
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == CHILD_SKIP_ORDER) {
        fprintf(stderr, "the resolver does not keep the order this test needs; skipping\n");
        skip();
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fail_msg("the child failed (status 0x%x); its stderr says which check", status);
    }
#endif
}

/* The body run_with_ipv6_first_hosts() runs after its check; fork() copies
 * it into the child. */
static int (*ipv6_first_body)(void);

static int child_ipv6_first_then_body(void)
{
#ifdef __linux__
    int rc = child_check_ipv6_first();
    if (rc != 0) {
        return rc;
    }
#endif
    return ipv6_first_body();
}

/* Run body() in a child that sees IPV6_FIRST_HOSTS, once the resolver is
 * seen to keep ::1 first. */
static void run_with_ipv6_first_hosts(int (*body)(void))
{
    ipv6_first_body = body;
    run_with_hosts(IPV6_FIRST_HOSTS, child_ipv6_first_then_body);
}

/* docs/design.md, section 1: a localhost listener is reachable from
 * 127.0.0.1 and from localhost, also where ::1 is listed first. */
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

/* Racing the addresses of a name ------------------------------------------ */

/* A name with two IPv4 addresses; the resolver puts 127.0.0.1 first. */
#define RACE_HOSTS "127.0.0.1 race.test\n127.0.0.2 race.test\n"

/* A generous bound on a call that must not wait for its timeout. */
#define RACE_LIMIT_MS 5000

/* In the child: 0 if host resolves to the addresses in want (written as
 * netx_addr_format() writes them with port 1), in that order. Any other
 * order is the resolver's choice, and there is nothing to test. */
static int child_check_order(const char *host, const char *const *want, int nwant)
{
    netx_addr a[8];
    char text[NETX_ADDRSTRLEN];
    int n = netx_resolve(host, 1, a, 8);
    if (n < 0) {
        return child_fail(1, "the name of the private hosts file does not resolve");
    }
    for (int i = 0; i < n || i < nwant; i++) {
        if (i >= n || i >= nwant || netx_addr_format(&a[i], text, sizeof text) < 0 ||
            strcmp(text, want[i]) != 0) {
            fprintf(stderr, "%s: address %d is not %s\n", host, i, i < nwant ? want[i] : "absent");
            return CHILD_SKIP_ORDER;
        }
    }
    return 0;
}

static int child_check_race_order(void)
{
    static const char *const want[] = {"127.0.0.1:1", "127.0.0.2:1"};
    return child_check_order("race.test", want, 2);
}

/* What listens on the second address of race.test. */
enum second { SECOND_LISTENS, SECOND_UNANSWERED, SECOND_NOTHING };

/* The two ends of race.test:port: 127.0.0.1 never answers, 127.0.0.2 as
 * asked. */
struct race_ends {
    int port;
    struct unanswered first;
    struct unanswered second; /* SECOND_UNANSWERED */
    int listener;             /* SECOND_LISTENS, else -1 */
};

/* In the child: open them. The port is picked for 127.0.0.1 and may be
 * taken on 127.0.0.2, so try a few. 0, or -1 with nothing open. */
static int race_open(struct race_ends *e, enum second what)
{
    for (int attempt = 0; attempt < 8; attempt++) {
        e->listener = -1;
        e->port = unanswered_open(&e->first, "127.0.0.1", 0);
        if (e->port < 0) {
            return -1;
        }
        if (what == SECOND_NOTHING) {
            return 0;
        }
        if (what == SECOND_LISTENS) {
            e->listener = netx_tcp_listen("127.0.0.2", (uint16_t)e->port, 0);
            if (e->listener >= 0) {
                return 0;
            }
        } else if (unanswered_open(&e->second, "127.0.0.2", e->port) > 0) {
            return 0;
        }
        unanswered_close(&e->first);
    }
    return -1;
}

/* Read what was traced to f, then close it. */
static void read_trace(FILE *f, char *buf, size_t cap)
{
    rewind(f);
    size_t n = fread(buf, 1, cap - 1, f);
    buf[n] = '\0';
    fclose(f);
}

/* 127.0.0.1 never answers, 127.0.0.2 accepts: the second attempt starts
 * 250 ms after the first, beside it, and connects long before the timeout
 * (which trying one address after the other would give half of to the
 * first). */
static int child_second_address_wins(void)
{
    struct race_ends e;
    char trace[8192];
    char want[NETX_ADDRSTRLEN + 64];
    char got[NETX_ADDRSTRLEN];
    netx_addr peer;
    long long after = -1;

    int rc = child_check_race_order();
    if (rc != 0) {
        return rc;
    }
    if (race_open(&e, SECOND_LISTENS) != 0) {
        return child_fail(2, "an unanswered listener on 127.0.0.1 and a listener on 127.0.0.2");
    }
    FILE *f = tmpfile();
    if (f == NULL) {
        return child_fail(3, "tmpfile");
    }
    netx_trace(f);
    long long start = now_ms();
    int c = netx_tcp_connect("race.test", (uint16_t)e.port, 15000);
    long long took = now_ms() - start;
    netx_trace(NULL);
    read_trace(f, trace, sizeof trace);

    if (c < 0) {
        return child_fail(4, "connect to race.test");
    }
    if (took >= RACE_LIMIT_MS) {
        fprintf(stderr, "took %lld ms of the 15000 ms timeout\n", took);
        return child_fail(5, "the connect waited for the first address");
    }
    snprintf(want, sizeof want, "127.0.0.2:%d", e.port);
    if (netx_peer_addr(c, &peer) != 0 || netx_addr_format(&peer, got, sizeof got) < 0 ||
        strcmp(got, want) != 0) {
        return child_fail(6, "the connection's peer is not 127.0.0.2");
    }
    /* "netx: connect(5, 127.0.0.2:P) started, 250 ms after the first" */
    snprintf(want, sizeof want, "connect(%d, 127.0.0.2:%d) started, ", c, e.port);
    const char *line = strstr(trace, want);
    if (line == NULL || sscanf(line + strlen(want), "%lld ms after", &after) != 1 || after < 250) {
        fprintf(stderr, "the trace was:\n%s", trace);
        return child_fail(7, "the trace does not show the second attempt started after 250 ms");
    }
    return 0; /* the process ends here, which closes every socket */
}

static void tcp_connect_first_unanswered_second_wins_after_delay(void **state)
{
    (void)state;
    run_with_hosts(RACE_HOSTS, child_second_address_wins);
}

/* Two addresses and a 1 ms timeout: both are started, at once, the first
 * not answering and the second refusing. Trying them one after the other,
 * the first would use up the millisecond alone. */
static int child_tiny_timeout_starts_both(void)
{
    struct race_ends e;

    int rc = child_check_race_order();
    if (rc != 0) {
        return rc;
    }
    if (race_open(&e, SECOND_NOTHING) != 0) {
        return child_fail(2, "an unanswered listener on 127.0.0.1");
    }
    fault_reset(); /* count the connects of the call alone */
    errno = 0;
    int c = netx_tcp_connect("race.test", (uint16_t)e.port, 1);
    int err = errno;
    unsigned connects = fault_count(FAULT_CONNECT);
    if (c != -1 || err != ETIMEDOUT) {
        return child_fail(3, "a 1 ms connect to an unanswered address did not say ETIMEDOUT");
    }
    if (connects != 2) {
        fprintf(stderr, "%u connect() calls\n", connects);
        return child_fail(4, "not both addresses were tried");
    }
    return 0;
}

static void tcp_connect_1ms_timeout_tries_both_addresses(void **state)
{
    (void)state;
    run_with_hosts(RACE_HOSTS, child_tiny_timeout_starts_both);
}

#ifdef __linux__
/*
 * In the child: a network namespace of its own, whose loopback interface
 * also carries 2001:db8::1 (an address for documentation, RFC 3849). A
 * name can then have two IPv6 addresses and an IPv4 one, as dual-stack
 * servers do, and every packet stays on this machine: the namespace has no
 * interface but its loopback.
 */
static int child_private_network(void)
{
    struct ifreq lo;
    /* SIOCSIFADDR takes a struct in6_ifreq on an IPv6 socket, but tools
     * that check system calls (valgrind) read a struct ifreq, which is
     * larger: give the call that much, all initialised. */
    union {
        struct in6_ifreq req;
        struct ifreq as_read;
    } extra_space;
    struct in6_ifreq *extra = &extra_space.req;

    if (unshare(CLONE_NEWNET) != 0) {
        fprintf(stderr, "unshare(CLONE_NEWNET): %s\n", strerror(errno));
        return CHILD_SKIP;
    }
    int s = socket(AF_INET6, SOCK_DGRAM, 0);
    if (s < 0) {
        fprintf(stderr, "no IPv6: %s\n", strerror(errno));
        return CHILD_SKIP;
    }
    /* A new namespace's loopback interface is down: bring it up. */
    memset(&lo, 0, sizeof lo);
    snprintf(lo.ifr_name, sizeof lo.ifr_name, "lo");
    int ok = ioctl(s, SIOCGIFFLAGS, &lo) == 0;
    lo.ifr_flags |= IFF_UP;
    ok = ok && ioctl(s, SIOCSIFFLAGS, &lo) == 0;
    memset(&extra_space, 0, sizeof extra_space);
    extra->ifr6_prefixlen = 128;
    extra->ifr6_ifindex = (int)if_nametoindex("lo");
    ok = ok && inet_pton(AF_INET6, "2001:db8::1", &extra->ifr6_addr) == 1;
    ok = ok && ioctl(s, SIOCSIFADDR, extra) == 0;
    int err = errno;
    close(s);
    if (!ok) {
        fprintf(stderr, "setting up the namespace's loopback: %s\n", strerror(err));
        return CHILD_SKIP;
    }
    /* A new IPv6 address is "tentative" until duplicate address detection
     * is over - on a loopback interface a moment later, not at once - and
     * until then the resolver ranks it last as unusable. A socket can bind
     * to it once it is usable. */
    struct sockaddr_in6 a;
    memset(&a, 0, sizeof a);
    a.sin6_family = AF_INET6;
    a.sin6_addr = extra->ifr6_addr;
    for (int tries = 0; tries < 200; tries++) {
        int b = socket(AF_INET6, SOCK_DGRAM, 0);
        int bound = b >= 0 && bind(b, (struct sockaddr *)&a, sizeof a) == 0;
        if (b >= 0) {
            close(b);
        }
        if (bound) {
            return 0;
        }
        struct timespec ms10 = {0, 10 * 1000 * 1000};
        nanosleep(&ms10, NULL);
    }
    fprintf(stderr, "2001:db8::1 did not become usable within 2 s\n");
    return CHILD_SKIP;
}
#else
static int child_private_network(void)
{
    return CHILD_SKIP;
}
#endif

/*
 * dual.test has ::1 and 2001:db8::1 (IPv6) and 127.0.0.1 (IPv4), in that
 * order from the resolver, and nothing listens on any of them. RFC 8305
 * alternates the families - ::1, 127.0.0.1, 2001:db8::1 - so the last
 * attempt to fail, the one the sentence names, is 2001:db8::1.
 */
static int child_dual_stack_all_refused(void)
{
    static const char *const order[] = {"[::1]:1", "[2001:db8::1]:1", "127.0.0.1:1"};
    char want[200];

    int rc = child_private_network();
    if (rc == 0) {
        rc = child_check_order("dual.test", order, 3);
    }
    if (rc != 0) {
        return rc;
    }
    int lfd = netx_tcp_listen("127.0.0.1", 0, 0);
    if (lfd < 0) {
        return child_fail(2, "listen on 127.0.0.1");
    }
    int port = netx_local_port(lfd);
    netx_close(lfd); /* a port that was free a moment ago */
    fault_reset();
    errno = 0;
    if (netx_tcp_connect("dual.test", (uint16_t)port, 2000) != -1 || errno != ECONNREFUSED) {
        return child_fail(3, "connect to closed ports did not fail with ECONNREFUSED");
    }
    if (fault_count(FAULT_CONNECT) != 3) {
        return child_fail(4, "not every address was tried");
    }
    snprintf(want, sizeof want, "connect to dual.test:%d (2001:db8::1): %s", port,
             strerror(ECONNREFUSED));
    if (strcmp(netx_last_error(), want) != 0) {
        fprintf(stderr, "want \"%s\"\n", want);
        return child_fail(5, "the sentence does not name the last address tried");
    }
    return 0;
}

static void tcp_connect_dual_stack_refused_names_last_interleaved(void **state)
{
    (void)state;
    run_with_hosts("127.0.0.1 dual.test\n2001:db8::1 dual.test\n::1 dual.test\n",
                   child_dual_stack_all_refused);
}

/*
 * A stop signal arrives while both addresses of race.test are being tried
 * (neither answers): the call ends at once with ECANCELED, closes both
 * attempts and starts no other. Runs in a child, so the stop ends with it.
 */
static int child_stop_during_race(void)
{
    struct race_ends e;
    struct itimerval at = {.it_value = {.tv_sec = 1}}; /* both attempts are under way by then */
    char trace[8192];
    char want[NETX_ADDRSTRLEN + 64];

    int rc = child_check_race_order();
    if (rc != 0) {
        return rc;
    }
    if (race_open(&e, SECOND_UNANSWERED) != 0) {
        return child_fail(2, "unanswered listeners on 127.0.0.1 and 127.0.0.2");
    }
    FILE *f = tmpfile();
    if (f == NULL || netx_stop_on(SIGALRM) != 0) {
        return child_fail(3, "tmpfile, or netx_stop_on(SIGALRM)");
    }
    int fds_before = support_fd_count();
    netx_trace(f);
    setitimer(ITIMER_REAL, &at, NULL);
    long long start = now_ms();
    errno = 0;
    int c = netx_tcp_connect("race.test", (uint16_t)e.port, 15000);
    int err = errno;
    long long took = now_ms() - start;
    int fds_after = support_fd_count();
    netx_trace(NULL);
    read_trace(f, trace, sizeof trace);

    if (c != -1 || err != ECANCELED || took >= RACE_LIMIT_MS) {
        fprintf(stderr, "returned %d after %lld ms\n", c, took);
        return child_fail(4, "the stop did not end the race with ECANCELED");
    }
    if (fds_after != fds_before) {
        return child_fail(5, "an attempt's socket was left open");
    }
    snprintf(want, sizeof want, "connect to race.test:%d (", e.port);
    if (strstr(netx_last_error(), want) == NULL ||
        strstr(netx_last_error(), "stopped by SIGALRM") == NULL) {
        return child_fail(6, "the sentence does not name the connect and the signal");
    }
    /* Both attempts were under way, and after the stop none started. */
    snprintf(want, sizeof want, "127.0.0.2:%d) started", e.port);
    const char *stopped = strstr(trace, "(stopped by SIGALRM)");
    if (strstr(trace, want) == NULL || stopped == NULL || strstr(stopped, "socket(") != NULL ||
        strstr(stopped, "started") != NULL) {
        fprintf(stderr, "the trace was:\n%s", trace);
        return child_fail(7, "the trace does not show the stop ending both attempts");
    }
    return 0;
}

static void tcp_connect_stop_during_race_ecanceled(void **state)
{
    (void)state;
    run_with_hosts(RACE_HOSTS, child_stop_during_race);
}

/* A process out of descriptors ------------------------------------------- */

/*
 * glibc's resolver needs a descriptor to read /etc/hosts; without one it
 * says the name is unknown. netx says what is wrong: EMFILE, "Too many open
 * files". In the child: take every descriptor the process may have, with
 * the limit lowered to those open, then dial localhost.
 */
static int child_out_of_descriptors(void)
{
    netx_addr a;
    struct rlimit lim;

    /* A lookup that works first, so the failure below is the descriptors'. */
    if (netx_resolve("localhost", 1, &a, 1) != 1) {
        return child_fail(2, "resolve localhost");
    }
    int lfd = netx_tcp_listen("127.0.0.1", 0, 0);
    if (lfd < 0) {
        return child_fail(3, "listen on 127.0.0.1");
    }
    int port = netx_local_port(lfd);
    netx_close(lfd); /* should the call get as far as connecting, nothing is there */

    if (getrlimit(RLIMIT_NOFILE, &lim) != 0) {
        return child_fail(4, "getrlimit");
    }
    int top = 2;
    for (int fd = 3; fd < 1024 && (rlim_t)fd < lim.rlim_cur; fd++) {
        if (fcntl(fd, F_GETFD) != -1) {
            top = fd;
        }
    }
    lim.rlim_cur = (rlim_t)top + 1;
    if (setrlimit(RLIMIT_NOFILE, &lim) != 0) {
        return child_fail(5, "setrlimit");
    }
    /* Fill the gaps below the limit. */
    int filled = 0;
    while (filled < 1024 && open("/dev/null", O_RDONLY) >= 0) {
        filled++;
    }
    if (open("/dev/null", O_RDONLY) >= 0 || errno != EMFILE) {
        return child_fail(6, "descriptors left after filling");
    }
    errno = 0;
    if (netx_tcp_connect("localhost", (uint16_t)port, 1000) != -1 || errno != EMFILE) {
        fprintf(stderr, "errno %d\n", errno);
        return child_fail(7, "dialing without descriptors did not fail with EMFILE");
    }
    if (strstr(netx_last_error(), strerror(EMFILE)) == NULL) {
        return child_fail(8, "the sentence does not say the process is out of descriptors");
    }
    return 0;
}

static void tcp_connect_out_of_descriptors_emfile(void **state)
{
    (void)state;
    run_with_hosts("127.0.0.1 localhost\n", child_out_of_descriptors);
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
        TEST(tcp_listen_empty_host_reachable_on_ipv4_and_ipv6),
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
        TEST(tcp_connect_first_unanswered_second_wins_after_delay),
        TEST(tcp_connect_1ms_timeout_tries_both_addresses),
        TEST(tcp_connect_dual_stack_refused_names_last_interleaved),
        TEST(tcp_connect_stop_during_race_ecanceled),
        TEST(tcp_connect_out_of_descriptors_emfile),
    };
    return cmocka_run_group_tests_name("tcp", tests, NULL, NULL);
}
