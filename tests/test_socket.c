/*
 * test_socket.c - the article's individual steps (netx_socket, netx_bind,
 * netx_listen, netx_accept, netx_connect, netx_shutdown, netx_close) and
 * the socket options, over real loopback sockets: close-on-exec on every
 * descriptor, SO_REUSEADDR on listeners, blocking accepted sockets,
 * timeouts (a connect without a limit of its own is bounded by the
 * socket's send timeout), refusals, half-close, graceful close (which waits
 * until the peer's TCP has acknowledged every byte), and error sentences
 * that name the step.
 */
#include "support.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#ifdef __linux__
#include <linux/sockios.h> /* SIOCOUTQ */
#endif

/* A bound on every blocking call, so a bug fails a test instead of hanging
 * the binary. */
#define SOCK_GUARD_MS 5000

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int is_cloexec(int fd)
{
    int flags = fcntl(fd, F_GETFD);
    assert_true(flags >= 0);
    return (flags & FD_CLOEXEC) != 0;
}

static int is_nonblocking(int fd)
{
    int flags = fcntl(fd, F_GETFL);
    assert_true(flags >= 0);
    return (flags & O_NONBLOCK) != 0;
}

static int int_option(int fd, int level, int name)
{
    int value = -1;
    socklen_t len = sizeof value;
    assert_int_equal(getsockopt(fd, level, name, &value, &len), 0);
    return value;
}

/* A TCP listener on 127.0.0.1, any port, and its address. */
static int listener(netx_addr *addr)
{
    int lfd = netx_tcp_listen("127.0.0.1", 0, 0);
    assert_true(lfd >= 0);
    if (addr != NULL) {
        assert_int_equal(netx_local_addr(lfd, addr), 0);
    }
    return lfd;
}

/* The address of a TCP port on 127.0.0.1 where, a moment ago, nothing
 * listened. */
static netx_addr refused_address(void)
{
    netx_addr a;
    int lfd = listener(&a);
    assert_int_equal(netx_close(lfd), 0);
    return a;
}

/* Wait (bounded) until a listener has a connection to accept. */
static void wait_pending(int lfd)
{
    struct pollfd p = {.fd = lfd, .events = POLLIN, .revents = 0};
    assert_int_equal(poll(&p, 1, SOCK_GUARD_MS), 1);
}

static void sleep_ms(long ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* How many connects may go into filling a listener's accept queue. */
#define FILL_MAX 16

/*
 * A listener on 127.0.0.1 that answers no SYN, as a host that is down: its
 * accept queue is as short as can be (listen(2) with backlog 0; netx_listen
 * would take 0 for the maximum) and filled with connections nobody
 * accepts, so the system drops every further SYN and a connect to it waits.
 */
struct deaf_listener {
    int lfd;
    netx_addr addr;
    int fillers[FILL_MAX];
    int nfill;
};

static void deaf_close(struct deaf_listener *d)
{
    for (int i = 0; i < d->nfill; i++) {
        netx_close(d->fillers[i]);
    }
    d->nfill = 0;
    netx_close(d->lfd);
}

static void deaf_open(struct deaf_listener *d)
{
    netx_addr any;
    assert_int_equal(netx_addr_parse("127.0.0.1:0", &any), 0);
    d->nfill = 0;
    d->lfd = netx_socket(AF_INET, SOCK_STREAM);
    assert_true(d->lfd >= 0);
    assert_int_equal(netx_bind(d->lfd, &any), 0);
    assert_int_equal(listen(d->lfd, 0), 0);
    assert_int_equal(netx_local_addr(d->lfd, &d->addr), 0);

    /* Connect until an attempt gets no answer within 200 ms: from then on
     * the queue is full. Each attempt is non-blocking, so none can hang. */
    while (d->nfill < FILL_MAX) {
        int f = netx_socket(AF_INET, SOCK_STREAM);
        assert_true(f >= 0);
        d->fillers[d->nfill++] = f;
        assert_int_equal(netx_set_nonblocking(f, 1), 0);
        if (connect(f, (const struct sockaddr *)&d->addr.ss, d->addr.len) == 0) {
            continue;
        }
        assert_int_equal(errno, EINPROGRESS);
        struct pollfd p = {.fd = f, .events = POLLOUT, .revents = 0};
        if (poll(&p, 1, 200) == 0) {
            return; /* still in progress: its SYN was dropped */
        }
    }
    deaf_close(d);
    fail_msg("a listener with backlog 0 answered %d connects; no unanswered address to test with",
             FILL_MAX);
}

/*
 * A watchdog for a call that might never return: unless the test says it
 * is done within SOCK_GUARD_MS, it shuts the socket down, which ends any
 * wait on it (a connect under way fails). A bug then fails the test
 * instead of hanging it for the minutes an unanswered SYN takes.
 */
struct watchdog {
    int fd;
    int done;
    int fired;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    pthread_t thread;
};

static void *watchdog_main(void *arg)
{
    struct watchdog *w = arg;
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += SOCK_GUARD_MS / 1000;

    pthread_mutex_lock(&w->lock);
    int rc = 0;
    while (!w->done && rc != ETIMEDOUT) {
        rc = pthread_cond_timedwait(&w->cond, &w->lock, &until);
    }
    if (!w->done) {
        w->fired = 1;
        shutdown(w->fd, SHUT_RDWR);
    }
    pthread_mutex_unlock(&w->lock);
    return NULL;
}

static void watchdog_start(struct watchdog *w, int fd)
{
    w->fd = fd;
    w->done = 0;
    w->fired = 0;
    assert_int_equal(pthread_mutex_init(&w->lock, NULL), 0);
    assert_int_equal(pthread_cond_init(&w->cond, NULL), 0);
    assert_int_equal(pthread_create(&w->thread, NULL, watchdog_main, w), 0);
}

/* Call off the watchdog; returns 1 if it had fired already. */
static int watchdog_stop(struct watchdog *w)
{
    pthread_mutex_lock(&w->lock);
    w->done = 1;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->lock);
    pthread_join(w->thread, NULL);
    pthread_cond_destroy(&w->cond);
    pthread_mutex_destroy(&w->lock);
    return w->fired;
}

/* Bytes sent on fd that the peer's TCP has not acknowledged yet (our FIN
 * counts as one). Tests that need it are skipped where the system cannot
 * tell. */
static int unacknowledged(int fd)
{
#ifdef SIOCOUTQ
    int n = -1;
    assert_int_equal(ioctl(fd, SIOCOUTQ, &n), 0);
    return n;
#else
    (void)fd;
    skip();
    return -1;
#endif
}

/* What fill_send_queue() sends at most: more than the largest default
 * socket buffers of Linux hold (4 MiB to send, 6 MiB to receive). */
#define FILL_CHUNK  (256 * 1024)
#define FILL_CHUNKS 64

/*
 * Send on fd until the system takes no more, because the peer reads
 * nothing; in non-blocking mode, so it cannot wait. Returns the bytes
 * taken, of which some are then certainly not acknowledged: they are still
 * in our send queue. fd is blocking again afterwards.
 */
static size_t fill_send_queue(int fd)
{
    static unsigned char chunk[FILL_CHUNK];
    size_t total = 0;
    int full = 0;

    support_pattern(chunk, sizeof chunk, 23);
    assert_int_equal(netx_set_nonblocking(fd, 1), 0);
    for (int i = 0; i < FILL_CHUNKS && !full; i++) {
        ssize_t n = netx_send(fd, chunk, sizeof chunk);
        if (n < 0) {
            assert_true(errno == EAGAIN || errno == EWOULDBLOCK);
            full = 1;
        } else {
            total += (size_t)n;
        }
    }
    assert_int_equal(netx_set_nonblocking(fd, 0), 0);
    assert_true(full);
    assert_true(unacknowledged(fd) > 0);
    return total;
}

/* ------------------------------------------------------------------------ */

static void socket_steps_by_hand_connect_and_exchange(void **state)
{
    (void)state;
    netx_addr any, where, peer;
    char buf[8];

    /* Workflow steps 1 and 2 for the server: a socket, bound to 127.0.0.1, port 0. */
    assert_int_equal(netx_addr_parse("127.0.0.1:0", &any), 0);
    int lfd = netx_socket(AF_INET, SOCK_STREAM);
    assert_true(lfd >= 0);
    assert_int_equal(netx_bind(lfd, &any), 0);
    /* Workflow step 3: listen; 0 asks for the system's maximum backlog. */
    assert_int_equal(netx_listen(lfd, 0), 0);
    assert_int_equal(netx_local_addr(lfd, &where), 0);
    assert_true(netx_addr_port(&where) > 0);

    /* Workflow step 2 for the client: a socket, connected to the listener. */
    int cfd = netx_socket(AF_INET, SOCK_STREAM);
    assert_true(cfd >= 0);
    assert_int_equal(netx_connect(cfd, &where, SOCK_GUARD_MS), 0);
    /* Workflow step 3: accept, and the peer address is the client's. */
    int sfd = netx_accept(lfd, &peer);
    assert_true(sfd >= 0);
    assert_int_equal(peer.ss.ss_family, AF_INET);
    assert_int_equal(netx_addr_port(&peer), netx_local_port(cfd));

    /* Workflow step 4: the two ends talk. */
    assert_int_equal(netx_set_timeout(sfd, SOCK_GUARD_MS), 0);
    assert_int_equal(netx_send_all(cfd, "step", 4), 0);
    assert_int_equal(netx_recv_all(sfd, buf, 4), 4);
    assert_memory_equal(buf, "step", 4);

    /* Workflow step 5. */
    assert_int_equal(netx_close(cfd), 0);
    assert_int_equal(netx_close(sfd), 0);
    assert_int_equal(netx_close(lfd), 0);
}

static void socket_created_fds_are_cloexec(void **state)
{
    (void)state;
    netx_addr where;
    int raw = netx_socket(AF_INET, SOCK_STREAM);
    int lfd = listener(&where);
    int cfd = netx_tcp_connect("127.0.0.1", (uint16_t)netx_addr_port(&where), SOCK_GUARD_MS);
    int sfd = netx_accept(lfd, NULL);
    int ufd = netx_udp_bind("127.0.0.1", 0);
    int ucfd = netx_udp_connect("127.0.0.1", (uint16_t)netx_local_port(ufd));
    assert_true(raw >= 0 && lfd >= 0 && cfd >= 0 && sfd >= 0 && ufd >= 0 && ucfd >= 0);

    assert_true(is_cloexec(raw));
    assert_true(is_cloexec(lfd));
    assert_true(is_cloexec(cfd));
    assert_true(is_cloexec(sfd));
    assert_true(is_cloexec(ufd));
    assert_true(is_cloexec(ucfd));

    netx_close(raw);
    netx_close(lfd);
    netx_close(cfd);
    netx_close(sfd);
    netx_close(ufd);
    netx_close(ucfd);
}

static void socket_tcp_listen_sets_reuseaddr(void **state)
{
    (void)state;
    int lfd = listener(NULL);
    assert_true(int_option(lfd, SOL_SOCKET, SO_REUSEADDR) != 0);
    netx_close(lfd);
}

static void socket_accept_from_nonblocking_listener_is_blocking(void **state)
{
    (void)state;
    netx_addr where;
    int lfd = listener(&where);
    assert_int_equal(netx_set_nonblocking(lfd, 1), 0);
    int cfd = netx_tcp_connect("127.0.0.1", (uint16_t)netx_addr_port(&where), SOCK_GUARD_MS);
    assert_true(cfd >= 0);
    wait_pending(lfd);
    int sfd = netx_accept(lfd, NULL);
    assert_true(sfd >= 0);
    assert_false(is_nonblocking(sfd));
    assert_true(is_nonblocking(lfd));
    netx_close(cfd);
    netx_close(sfd);
    netx_close(lfd);
}

static void socket_accept_nonblocking_nobody_eagain(void **state)
{
    (void)state;
    int lfd = listener(NULL);
    assert_int_equal(netx_set_nonblocking(lfd, 1), 0);
    assert_int_equal(netx_accept(lfd, NULL), -1);
    assert_true(errno == EAGAIN || errno == EWOULDBLOCK);
    netx_close(lfd);
}

static void socket_accept_timeout_etimedout(void **state)
{
    (void)state;
    int lfd = listener(NULL);
    assert_int_equal(netx_set_timeout(lfd, 100), 0);
    long long t0 = now_ms();
    assert_int_equal(netx_accept(lfd, NULL), -1);
    long long took = now_ms() - t0;
    assert_int_equal(errno, ETIMEDOUT);
    assert_true(took >= 50);
    assert_true(took < 2000);
    netx_close(lfd);
}

static void socket_connect_timeout_refused_econnrefused(void **state)
{
    (void)state;
    netx_addr nobody = refused_address();
    int fd = netx_socket(AF_INET, SOCK_STREAM);
    assert_true(fd >= 0);
    assert_int_equal(netx_connect(fd, &nobody, SOCK_GUARD_MS), -1);
    assert_int_equal(errno, ECONNREFUSED);
    /* The waiting is done in non-blocking mode; the caller's blocking mode
     * comes back even when the connection fails. */
    assert_false(is_nonblocking(fd));
    netx_close(fd);
}

/* netx_connect() with no limit of its own (0) on a socket that has a
 * timeout: the socket's send timeout bounds the wait for an unanswered
 * SYN, as it bounds a send, and the call says ETIMEDOUT. */
static void socket_connect_no_limit_send_timeout_etimedout(void **state)
{
    (void)state;
    struct deaf_listener deaf;
    struct watchdog w;
    deaf_open(&deaf);
    int fd = netx_socket(AF_INET, SOCK_STREAM);
    assert_true(fd >= 0);
    assert_int_equal(netx_set_timeout(fd, 300), 0);

    watchdog_start(&w, fd);
    long long t0 = now_ms();
    errno = 0;
    int rc = netx_connect(fd, &deaf.addr, 0);
    int err = errno;
    long long took = now_ms() - t0;
    int fired = watchdog_stop(&w);
    int nonblocking = is_nonblocking(fd);
    netx_close(fd);
    deaf_close(&deaf);

    if (fired) {
        fail_msg("netx_connect waited %lld ms, past the socket's 300 ms timeout, until the "
                 "watchdog shut the socket down (rc %d, errno %d)",
                 took, rc, err);
    }
    assert_int_equal(rc, -1);
    assert_int_equal(err, ETIMEDOUT);
    /* It waited for the timeout, and not for ever. The margins are wide:
     * this checks the limit holds, not how fast the machine is. */
    assert_true(took >= 250);
    assert_true(took < SOCK_GUARD_MS);
    assert_false(nonblocking); /* the caller's blocking mode is back */
    assert_non_null(strstr(netx_last_error(), strerror(ETIMEDOUT)));
}

static void socket_connect_timeout_keeps_blocking_mode(void **state)
{
    (void)state;
    netx_addr where;
    int lfd = listener(&where);
    int fd = netx_socket(AF_INET, SOCK_STREAM);
    assert_true(fd >= 0);
    assert_false(is_nonblocking(fd));
    /* A timeout makes netx_connect() switch to non-blocking mode while it
     * waits; the caller must get the blocking socket back. */
    assert_int_equal(netx_connect(fd, &where, SOCK_GUARD_MS), 0);
    assert_false(is_nonblocking(fd));
    int sfd = netx_accept(lfd, NULL);
    assert_true(sfd >= 0);
    netx_close(fd);
    netx_close(sfd);
    netx_close(lfd);
}

static void socket_shutdown_wr_peer_sees_eof_other_way_works(void **state)
{
    (void)state;
    int c, s;
    char buf[8];
    support_tcp_pair("127.0.0.1", &c, &s);
    assert_int_equal(netx_set_timeout(c, SOCK_GUARD_MS), 0);
    assert_int_equal(netx_set_timeout(s, SOCK_GUARD_MS), 0);

    assert_int_equal(netx_shutdown(c, SHUT_WR), 0);
    assert_int_equal(netx_recv(s, buf, sizeof buf), 0);
    /* Half-closed: the server can still answer, and the client read it. */
    assert_int_equal(netx_send_all(s, "back", 4), 0);
    assert_int_equal(netx_recv_all(c, buf, 4), 4);
    assert_memory_equal(buf, "back", 4);
    netx_close(c);
    netx_close(s);
}

static void socket_close_twice_ebadf_names_fd(void **state)
{
    (void)state;
    char want[32];
    int fd = netx_socket(AF_INET, SOCK_STREAM);
    assert_true(fd >= 0);
    assert_int_equal(netx_close(fd), 0);
    /* No other thread runs here, so fd cannot have been reused between
     * the two calls. */
    assert_int_equal(netx_close(fd), -1);
    assert_int_equal(errno, EBADF);
    snprintf(want, sizeof want, "close fd %d", fd);
    assert_non_null(strstr(netx_last_error(), want));
}

static void socket_set_nonblocking_toggles_o_nonblock(void **state)
{
    (void)state;
    int fd = netx_socket(AF_INET, SOCK_STREAM);
    assert_true(fd >= 0);
    assert_false(is_nonblocking(fd));
    assert_int_equal(netx_set_nonblocking(fd, 1), 0);
    assert_true(is_nonblocking(fd));
    assert_int_equal(netx_set_nonblocking(fd, 0), 0);
    assert_false(is_nonblocking(fd));
    netx_close(fd);
}

static void socket_set_nodelay_toggles_tcp_nodelay(void **state)
{
    (void)state;
    int fd = netx_socket(AF_INET, SOCK_STREAM);
    assert_true(fd >= 0);
    assert_int_equal(int_option(fd, IPPROTO_TCP, TCP_NODELAY), 0);
    assert_int_equal(netx_set_nodelay(fd, 1), 0);
    assert_true(int_option(fd, IPPROTO_TCP, TCP_NODELAY) != 0);
    assert_int_equal(netx_set_nodelay(fd, 0), 0);
    assert_int_equal(int_option(fd, IPPROTO_TCP, TCP_NODELAY), 0);
    netx_close(fd);
}

static void socket_set_keepalive_30_sets_idle(void **state)
{
    (void)state;
    int fd = netx_socket(AF_INET, SOCK_STREAM);
    assert_true(fd >= 0);
    assert_int_equal(netx_set_keepalive(fd, 30), 0);
    assert_true(int_option(fd, SOL_SOCKET, SO_KEEPALIVE) != 0);
#ifdef TCP_KEEPIDLE
    assert_int_equal(int_option(fd, IPPROTO_TCP, TCP_KEEPIDLE), 30);
#endif
    /* Probes every idle_s / 3 seconds, three of them, as documented. */
#ifdef TCP_KEEPINTVL
    assert_int_equal(int_option(fd, IPPROTO_TCP, TCP_KEEPINTVL), 10);
#endif
#ifdef TCP_KEEPCNT
    assert_int_equal(int_option(fd, IPPROTO_TCP, TCP_KEEPCNT), 3);
#endif
    netx_close(fd);
}

static void socket_set_keepalive_0_turns_off(void **state)
{
    (void)state;
    int fd = netx_socket(AF_INET, SOCK_STREAM);
    assert_true(fd >= 0);
    assert_int_equal(netx_set_keepalive(fd, 30), 0);
    assert_true(int_option(fd, SOL_SOCKET, SO_KEEPALIVE) != 0);
    assert_int_equal(netx_set_keepalive(fd, 0), 0);
    assert_int_equal(int_option(fd, SOL_SOCKET, SO_KEEPALIVE), 0);
    netx_close(fd);
}

static void socket_set_keepalive_negative_einval(void **state)
{
    (void)state;
    int fd = netx_socket(AF_INET, SOCK_STREAM);
    assert_true(fd >= 0);
    assert_int_equal(netx_set_keepalive(fd, -1), -1);
    assert_int_equal(errno, EINVAL);
    /* Nothing was changed on the way to the error. */
    assert_int_equal(int_option(fd, SOL_SOCKET, SO_KEEPALIVE), 0);
    netx_close(fd);
}

static void socket_bind_taken_port_eaddrinuse(void **state)
{
    (void)state;
    netx_addr where;
    char want[64];
    int lfd = listener(&where);
    int fd = netx_socket(AF_INET, SOCK_STREAM);
    assert_true(fd >= 0);
    assert_int_equal(netx_bind(fd, &where), -1);
    assert_int_equal(errno, EADDRINUSE);
    snprintf(want, sizeof want, "bind to 127.0.0.1:%d", netx_addr_port(&where));
    assert_non_null(strstr(netx_last_error(), want));
    netx_close(fd);
    netx_close(lfd);
}

static void socket_bind_connect_null_addr_einval(void **state)
{
    (void)state;
    int fd = netx_socket(AF_INET, SOCK_STREAM);
    assert_true(fd >= 0);
    assert_int_equal(netx_bind(fd, NULL), -1);
    assert_int_equal(errno, EINVAL);
    assert_int_equal(netx_connect(fd, NULL, 100), -1);
    assert_int_equal(errno, EINVAL);
    netx_close(fd);
}

static void socket_bad_family_fails_names_socket(void **state)
{
    (void)state;
    int before = support_fd_count();
    assert_int_equal(netx_socket(12345, SOCK_STREAM), -1);
    assert_int_equal(errno, EAFNOSUPPORT);
    assert_int_equal(netx_last_errno(), EAFNOSUPPORT);
    assert_non_null(strstr(netx_last_error(), "socket("));
    assert_int_equal(support_fd_count(), before);
}

/* The peer reads everything, then closes: graceful close says 0, and the
 * peer got every byte. */
static void socket_close_graceful_peer_done_returns_0(void **state)
{
    (void)state;
    int c, s;
    static unsigned char out[256 * 1024];
    support_tcp_pair("127.0.0.1", &c, &s);
    support_pattern(out, sizeof out, 11);
    struct support_echo echo;
    /* The echo thread reads to end of stream, then closes its socket. */
    support_echo_start(&echo, s);
    assert_int_equal(netx_send_all(c, out, sizeof out), 0);
    /* It echoes everything back; graceful close reads and discards that. */
    assert_int_equal(netx_close_graceful(c, 5000), 0);
    support_echo_join(&echo);
    assert_true(echo.ok);
    assert_int_equal(echo.bytes, sizeof out);
}

/* The peer never closes: ETIMEDOUT after about the timeout, and the
 * descriptor is closed anyway. */
static void socket_close_graceful_peer_silent_etimedout(void **state)
{
    (void)state;
    int c, s;
    support_tcp_pair("127.0.0.1", &c, &s);
    long long t0 = now_ms();
    assert_int_equal(netx_close_graceful(c, 200), -1);
    assert_int_equal(errno, ETIMEDOUT);
    long long took = now_ms() - t0;
    assert_true(took >= 150 && took < 3000);
    assert_int_equal(fcntl(c, F_GETFD), -1); /* closed all the same */
    assert_non_null(strstr(netx_last_error(), "graceful close of"));
    netx_close(s);
}

/* The peer resets: ECONNRESET, data may be lost, descriptor closed. */
static void socket_close_graceful_peer_reset_econnreset(void **state)
{
    (void)state;
    int c, s;
    support_tcp_pair("127.0.0.1", &c, &s);
    struct linger hard = {1, 0};
    assert_int_equal(setsockopt(s, SOL_SOCKET, SO_LINGER, &hard, sizeof hard), 0);
    netx_close(s); /* sends a reset */
    assert_int_equal(netx_close_graceful(c, 2000), -1);
    /* The reset, not what shutdown(2) says of a connection that is gone
     * (ENOTCONN): the caller must learn that data may have been lost. */
    assert_int_equal(errno, ECONNRESET);
    assert_int_equal(netx_last_errno(), ECONNRESET);
    assert_non_null(strstr(netx_last_error(), strerror(ECONNRESET)));
    assert_int_equal(fcntl(c, F_GETFD), -1);
}

/* A peer that closes with our bytes unread resets the connection (that is
 * what close(2) does then): ECONNRESET too. */
static void socket_close_graceful_peer_closed_unread_econnreset(void **state)
{
    (void)state;
    int c, s;
    support_tcp_pair("127.0.0.1", &c, &s);
    assert_int_equal(netx_send_all(c, "never read", 10), 0);
    wait_pending(s); /* the bytes are in s's receive queue */
    netx_close(s);   /* unread data: a reset, not an end of stream */
    assert_int_equal(netx_close_graceful(c, SOCK_GUARD_MS), -1);
    assert_int_equal(errno, ECONNRESET);
    assert_non_null(strstr(netx_last_error(), strerror(ECONNRESET)));
    assert_int_equal(fcntl(c, F_GETFD), -1);
}

/*
 * The peer half-closes first and never reads, as `nc -N` and HTTP/1.0
 * clients do: its end of stream arrives at once, but our bytes are still in
 * our send queue, not at the peer. That is no delivery: ETIMEDOUT, and the
 * sentence says how many bytes the peer did not acknowledge.
 */
static void socket_close_graceful_peer_never_reads_etimedout(void **state)
{
    (void)state;
    int c, s;
    support_tcp_pair("127.0.0.1", &c, &s);
    assert_int_equal(netx_shutdown(s, SHUT_WR), 0);
    size_t sent = fill_send_queue(c);

    long long t0 = now_ms();
    assert_int_equal(netx_close_graceful(c, 500), -1);
    long long took = now_ms() - t0;
    assert_int_equal(errno, ETIMEDOUT);
    assert_int_equal(fcntl(c, F_GETFD), -1); /* closed all the same */
    assert_true(took >= 400 && took < SOCK_GUARD_MS);

    /* "graceful close of 127.0.0.1:PORT (fd N): 123 bytes not acknowledged
     * by the peer: Connection timed out" */
    const char *msg = netx_last_error();
    const char *tail = strstr(msg, " bytes not acknowledged by the peer: ");
    if (tail == NULL) {
        fail_msg("no count of unacknowledged bytes in \"%s\"", msg);
    }
    const char *digits = tail;
    while (digits > msg && digits[-1] >= '0' && digits[-1] <= '9') {
        digits--;
    }
    long left = strtol(digits, NULL, 10);
    assert_true(digits < tail);
    assert_true(left > 0 && (size_t)left <= sent + 1); /* + 1: our FIN */
    assert_non_null(strstr(msg, strerror(ETIMEDOUT)));
    netx_close(s);
}

/* A peer that starts reading only after a pause, in a thread. */
struct late_reader {
    int fd;
    atomic_int started; /* it has begun to read */
    int eof;            /* it read to end of stream */
    size_t bytes;
    pthread_t thread;
};

static void *late_reader_main(void *arg)
{
    struct late_reader *r = arg;
    static unsigned char sink[64 * 1024];
    sleep_ms(300);
    atomic_store(&r->started, 1);
    /* Bounded: the socket has a receive timeout. */
    for (;;) {
        ssize_t n = netx_recv(r->fd, sink, sizeof sink);
        if (n <= 0) {
            r->eof = n == 0;
            break;
        }
        r->bytes += (size_t)n;
    }
    return NULL;
}

/*
 * The peer half-closes first, and reads our bytes only later: graceful
 * close must wait for that, and say 0 only once the peer's TCP has every
 * byte. Before the peer reads, its full receive buffer leaves our bytes
 * unacknowledged, so a 0 that came before it started reading would be a
 * promise the library cannot keep.
 */
static void socket_close_graceful_peer_reads_late_returns_0_after_delivery(void **state)
{
    (void)state;
    int c, s;
    struct late_reader r;
    support_tcp_pair("127.0.0.1", &c, &s);
    assert_int_equal(netx_set_timeout(s, SOCK_GUARD_MS), 0);
    assert_int_equal(netx_shutdown(s, SHUT_WR), 0);
    size_t sent = fill_send_queue(c);

    memset(&r, 0, sizeof r);
    r.fd = s;
    atomic_init(&r.started, 0);
    assert_int_equal(pthread_create(&r.thread, NULL, late_reader_main, &r), 0);
    int rc = netx_close_graceful(c, SOCK_GUARD_MS);
    int err = errno;
    int started = atomic_load(&r.started);
    pthread_join(r.thread, NULL);
    netx_close(s);

    if (rc != 0) {
        fail_msg("netx_close_graceful: %s (errno %d)", netx_last_error(), err);
    }
    assert_true(started); /* it did not return before the peer read */
    assert_true(r.eof);
    assert_int_equal(r.bytes, sent);
}

/* ------------------------------------------------------------------------
 * netx_connect_start and netx_connect_finish: connecting in an event loop
 * ------------------------------------------------------------------------ */

/* Wait (bounded) until fd is writable, as an event loop's poller would. */
static void await_writable(int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLOUT, .revents = 0};
    assert_int_equal(poll(&p, 1, 5000), 1);
}

static void socket_connect_start_finish_connects_nonblocking(void **state)
{
    (void)state;
    int lfd = netx_tcp_listen("127.0.0.1", 0, 0);
    assert_true(lfd >= 0);
    netx_addr a;
    assert_int_equal(netx_local_addr(lfd, &a), 0);
    int fd = netx_socket(AF_INET, SOCK_STREAM);
    assert_true(fd >= 0);
    int rc = netx_connect_start(fd, &a);
    assert_true(rc == 0 || (rc == -1 && errno == EINPROGRESS));
    assert_true((fcntl(fd, F_GETFL) & O_NONBLOCK) != 0);
    if (rc != 0) {
        await_writable(fd);
        errno = 4242;
        assert_int_equal(netx_connect_finish(fd, &a), 0);
        assert_int_equal(errno, 4242); /* a success leaves errno alone */
    }
    int s = netx_accept(lfd, NULL);
    assert_true(s >= 0);
    assert_int_equal(netx_send_all(fd, "ok", 2), 0);
    char got[2];
    assert_int_equal(netx_recv_all(s, got, 2), 2);
    netx_close(fd);
    netx_close(s);
    netx_close(lfd);
}

static void socket_connect_finish_refused_econnrefused_names_address(void **state)
{
    (void)state;
    int lfd = netx_tcp_listen("127.0.0.1", 0, 0);
    netx_addr a;
    assert_int_equal(netx_local_addr(lfd, &a), 0);
    netx_close(lfd); /* nothing listens there now */
    int fd = netx_socket(AF_INET, SOCK_STREAM);
    assert_true(fd >= 0);
    int rc = netx_connect_start(fd, &a);
    if (rc == -1 && errno == EINPROGRESS) {
        await_writable(fd);
        rc = netx_connect_finish(fd, &a);
    }
    assert_int_equal(rc, -1);
    assert_int_equal(errno, ECONNREFUSED);
    char text[NETX_ADDRSTRLEN];
    char want[NETX_ADDRSTRLEN + 64];
    netx_addr_format(&a, text, sizeof text);
    snprintf(want, sizeof want, "connect to %s: Connection refused", text);
    assert_string_equal(netx_last_error(), want);
    netx_close(fd);
}

/* Asked too early - the SYN is unanswered - finish says EINPROGRESS. */
static void socket_connect_finish_before_answer_einprogress(void **state)
{
    (void)state;
    struct deaf_listener d;
    deaf_open(&d);
    int fd = netx_socket(AF_INET, SOCK_STREAM);
    assert_true(fd >= 0);
    assert_int_equal(netx_connect_start(fd, &d.addr), -1);
    assert_int_equal(errno, EINPROGRESS);
    assert_int_equal(netx_connect_finish(fd, &d.addr), -1);
    assert_int_equal(errno, EINPROGRESS);
    netx_close(fd);
    deaf_close(&d);
}

static void socket_connect_start_null_addr_einval(void **state)
{
    (void)state;
    int fd = netx_socket(AF_INET, SOCK_STREAM);
    assert_int_equal(netx_connect_start(fd, NULL), -1);
    assert_int_equal(errno, EINVAL);
    netx_close(fd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TEST(socket_connect_start_finish_connects_nonblocking),
        TEST(socket_connect_finish_refused_econnrefused_names_address),
        TEST(socket_connect_finish_before_answer_einprogress),
        TEST(socket_connect_start_null_addr_einval),
        TEST(socket_steps_by_hand_connect_and_exchange),
        TEST(socket_created_fds_are_cloexec),
        TEST(socket_tcp_listen_sets_reuseaddr),
        TEST(socket_accept_from_nonblocking_listener_is_blocking),
        TEST(socket_accept_nonblocking_nobody_eagain),
        TEST(socket_accept_timeout_etimedout),
        TEST(socket_connect_timeout_refused_econnrefused),
        TEST(socket_connect_no_limit_send_timeout_etimedout),
        TEST(socket_connect_timeout_keeps_blocking_mode),
        TEST(socket_shutdown_wr_peer_sees_eof_other_way_works),
        TEST(socket_close_twice_ebadf_names_fd),
        TEST(socket_set_nonblocking_toggles_o_nonblock),
        TEST(socket_set_nodelay_toggles_tcp_nodelay),
        TEST(socket_set_keepalive_30_sets_idle),
        TEST(socket_set_keepalive_0_turns_off),
        TEST(socket_set_keepalive_negative_einval),
        TEST(socket_bind_taken_port_eaddrinuse),
        TEST(socket_bind_connect_null_addr_einval),
        TEST(socket_bad_family_fails_names_socket),
        TEST(socket_close_graceful_peer_done_returns_0),
        TEST(socket_close_graceful_peer_silent_etimedout),
        TEST(socket_close_graceful_peer_reset_econnreset),
        TEST(socket_close_graceful_peer_closed_unread_econnreset),
        TEST(socket_close_graceful_peer_never_reads_etimedout),
        TEST(socket_close_graceful_peer_reads_late_returns_0_after_delivery),
    };
    return cmocka_run_group_tests_name("socket", tests, NULL, NULL);
}
