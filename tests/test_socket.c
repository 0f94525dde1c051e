/*
 * test_socket.c - the article's individual steps (netx_socket, netx_bind,
 * netx_listen, netx_accept, netx_connect, netx_shutdown, netx_close) and
 * the socket options, over real loopback sockets: close-on-exec on every
 * descriptor, SO_REUSEADDR on listeners, blocking accepted sockets,
 * timeouts, refusals, half-close, and error sentences that name the step.
 */
#include "support.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

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

/* ------------------------------------------------------------------------ */

static void socket_steps_by_hand_connect_and_exchange(void **state)
{
    (void)state;
    netx_addr any, where, peer;
    char buf[8];

    /* Step 1 and 2 for the server: a socket, bound to 127.0.0.1, port 0. */
    assert_int_equal(netx_addr_parse("127.0.0.1:0", &any), 0);
    int lfd = netx_socket(AF_INET, SOCK_STREAM);
    assert_true(lfd >= 0);
    assert_int_equal(netx_bind(lfd, &any), 0);
    /* Step 3: listen; 0 asks for the system's maximum backlog. */
    assert_int_equal(netx_listen(lfd, 0), 0);
    assert_int_equal(netx_local_addr(lfd, &where), 0);
    assert_true(netx_addr_port(&where) > 0);

    /* Step 2 for the client: a socket, connected to the listener. */
    int cfd = netx_socket(AF_INET, SOCK_STREAM);
    assert_true(cfd >= 0);
    assert_int_equal(netx_connect(cfd, &where, SOCK_GUARD_MS), 0);
    /* Step 3: accept, and the peer address is the client's. */
    int sfd = netx_accept(lfd, &peer);
    assert_true(sfd >= 0);
    assert_int_equal(peer.ss.ss_family, AF_INET);
    assert_int_equal(netx_addr_port(&peer), netx_local_port(cfd));

    /* Step 4: the two ends talk. */
    assert_int_equal(netx_set_timeout(sfd, SOCK_GUARD_MS), 0);
    assert_int_equal(netx_send_all(cfd, "step", 4), 0);
    assert_int_equal(netx_recv_all(sfd, buf, 4), 4);
    assert_memory_equal(buf, "step", 4);

    /* Step 5. */
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
    assert_true(errno == ECONNRESET || errno == ENOTCONN);
    assert_int_equal(fcntl(c, F_GETFD), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TEST(socket_steps_by_hand_connect_and_exchange),
        TEST(socket_created_fds_are_cloexec),
        TEST(socket_tcp_listen_sets_reuseaddr),
        TEST(socket_accept_from_nonblocking_listener_is_blocking),
        TEST(socket_accept_nonblocking_nobody_eagain),
        TEST(socket_accept_timeout_etimedout),
        TEST(socket_connect_timeout_refused_econnrefused),
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
    };
    return cmocka_run_group_tests_name("socket", tests, NULL, NULL);
}
