/*
 * test_io.c - workflow step 4, exchanging data, over real loopback TCP pairs:
 * netx_send/netx_recv, the whole-buffer loops netx_send_all/netx_recv_all,
 * end of stream, resets, timeouts that say ETIMEDOUT, writing to a closed
 * peer without SIGPIPE, non-blocking sockets, receiving 0 bytes, argument
 * checks, the error sentence, and IPv6.
 */
#include "support.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

/* Every blocking call in these tests gets this limit, so a bug makes a test
 * fail instead of hanging the binary. */
#define IO_GUARD_MS 5000

#define MIB (1024u * 1024u)

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* A loopback pair on 127.0.0.1 whose blocking calls cannot hang forever. */
static void guarded_pair(int *client, int *server)
{
    support_tcp_pair("127.0.0.1", client, server);
    assert_int_equal(netx_set_timeout(*client, IO_GUARD_MS), 0);
    assert_int_equal(netx_set_timeout(*server, IO_GUARD_MS), 0);
}

/* Shrink the kernel's buffers, so that a test can fill them with a
 * transfer of modest size instead of many megabytes. */
static void shrink_buffers(int sender, int receiver)
{
    int small = 16384;
    assert_int_equal(setsockopt(sender, SOL_SOCKET, SO_SNDBUF, &small, sizeof small), 0);
    assert_int_equal(setsockopt(receiver, SOL_SOCKET, SO_RCVBUF, &small, sizeof small), 0);
}

/*
 * A transfer that runs in a thread of its own, so a test can send and
 * receive at the same time. A thread must not call cmocka's assertions, so
 * it only records what happened; the test checks it after joining.
 */
struct transfer {
    int fd;
    unsigned char *buf;
    size_t len;
    int wait_for_poll; /* start only once the main thread has polled */
    int saw_poll;      /* it had, before the transfer started */
    ssize_t rc;
    int err;
    pthread_t thread;
};

/*
 * Wait, for a bounded time, until some thread has called poll(2). The
 * non-blocking tests use it to start the other end only after the loop
 * under test has had to wait for readiness.
 */
static int wait_for_first_poll(void)
{
    for (int i = 0; i < IO_GUARD_MS; i++) {
        if (fault_count(FAULT_POLL) > 0) {
            return 1;
        }
        sleep_ms(1);
    }
    return 0;
}

static void *send_all_main(void *arg)
{
    struct transfer *t = arg;
    if (t->wait_for_poll) {
        t->saw_poll = wait_for_first_poll();
    }
    t->rc = netx_send_all(t->fd, t->buf, t->len);
    t->err = errno;
    /* Tell the peer that this direction is finished. */
    if (t->rc == 0) {
        netx_shutdown(t->fd, SHUT_WR);
    }
    return NULL;
}

static void *recv_all_main(void *arg)
{
    struct transfer *t = arg;
    if (t->wait_for_poll) {
        t->saw_poll = wait_for_first_poll();
    }
    t->rc = netx_recv_all(t->fd, t->buf, t->len);
    t->err = errno;
    return NULL;
}

static void transfer_start(struct transfer *t, void *(*fn)(void *), int fd, unsigned char *buf,
                           size_t len, int wait_for_poll)
{
    memset(t, 0, sizeof *t);
    t->fd = fd;
    t->buf = buf;
    t->len = len;
    t->wait_for_poll = wait_for_poll;
    t->rc = -2; /* neither success nor a failure: "did not run" */
    assert_int_equal(pthread_create(&t->thread, NULL, fn, t), 0);
}

/* ------------------------------------------------------------------------ */

static void io_send_all_recv_all_1mib_intact(void **state)
{
    (void)state;
    int c, s;
    struct support_echo echo;
    struct transfer sender;
    unsigned char *out = malloc(MIB);
    unsigned char *in = malloc(MIB);
    assert_non_null(out);
    assert_non_null(in);
    support_pattern(out, MIB, 1);
    memset(in, 0, MIB);

    support_tcp_pair("127.0.0.1", &c, &s);
    assert_int_equal(netx_set_timeout(c, IO_GUARD_MS), 0);
    /* The echo thread sends everything back while our sender thread is
     * still sending, so both directions are busy at once: neither side can
     * wait for the other to finish first. */
    support_echo_start(&echo, s);
    transfer_start(&sender, send_all_main, c, out, MIB, 0);

    ssize_t got = netx_recv_all(c, in, MIB);
    pthread_join(sender.thread, NULL);

    assert_int_equal(sender.rc, 0);
    assert_int_equal(got, (ssize_t)MIB);
    assert_memory_equal(in, out, MIB);
    /* The echo saw our end of stream, echoed no extra byte, and closed. */
    char extra;
    assert_int_equal(netx_recv(c, &extra, 1), 0);
    support_echo_join(&echo);
    assert_true(echo.ok);
    assert_int_equal(echo.bytes, MIB);

    netx_close(c);
    free(out);
    free(in);
}

static void io_recv_eof_returns_0(void **state)
{
    (void)state;
    int c, s;
    char buf[16];
    guarded_pair(&c, &s);
    assert_int_equal(netx_close(s), 0);
    assert_int_equal(netx_recv(c, buf, sizeof buf), 0);
    netx_close(c);
}

static void io_recv_all_eof_returns_fewer(void **state)
{
    (void)state;
    int c, s;
    char buf[10];
    guarded_pair(&c, &s);
    assert_int_equal(netx_send_all(s, "hello", 5), 0);
    assert_int_equal(netx_close(s), 0);
    assert_int_equal(netx_recv_all(c, buf, sizeof buf), 5);
    assert_memory_equal(buf, "hello", 5);
    netx_close(c);
}

static void io_recv_peer_reset_econnreset(void **state)
{
    (void)state;
    int c, s;
    char buf[16];
    guarded_pair(&c, &s);
    /* A zero linger time makes close() reset the connection (RST) instead
     * of ending it in order (FIN). */
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    assert_int_equal(setsockopt(s, SOL_SOCKET, SO_LINGER, &lg, sizeof lg), 0);
    assert_int_equal(netx_close(s), 0);
    assert_int_equal(netx_recv(c, buf, sizeof buf), -1);
    assert_int_equal(errno, ECONNRESET);
    netx_close(c);
}

static void io_recv_timeout_etimedout(void **state)
{
    (void)state;
    int c, s;
    char buf[16];
    support_tcp_pair("127.0.0.1", &c, &s);
    assert_int_equal(netx_set_timeout(c, 100), 0);
    long long t0 = now_ms();
    assert_int_equal(netx_recv(c, buf, sizeof buf), -1);
    long long took = now_ms() - t0;
    /* The system reports the expiry as EAGAIN; the library must not. */
    assert_int_equal(errno, ETIMEDOUT);
    assert_int_equal(netx_last_errno(), ETIMEDOUT);
    assert_true(took >= 50);
    assert_true(took < 2000);
    netx_close(c);
    netx_close(s);
}

static void io_recv_all_timeout_reports_transferred(void **state)
{
    (void)state;
    int c, s;
    char buf[10];
    support_tcp_pair("127.0.0.1", &c, &s);
    assert_int_equal(netx_set_timeout(c, 100), 0);
    assert_int_equal(netx_send_all(s, "abc", 3), 0);
    assert_int_equal(netx_recv_all(c, buf, sizeof buf), -1);
    assert_int_equal(errno, ETIMEDOUT);
    /* The three bytes that did arrive are counted, and are in buf. */
    assert_int_equal(netx_last_transferred(), 3);
    assert_memory_equal(buf, "abc", 3);
    netx_close(c);
    netx_close(s);
}

static void io_send_all_timeout_etimedout_partial(void **state)
{
    (void)state;
    int c, s;
    unsigned char *out = malloc(MIB);
    assert_non_null(out);
    support_pattern(out, MIB, 2);
    support_tcp_pair("127.0.0.1", &c, &s);
    shrink_buffers(c, s);
    assert_int_equal(netx_set_timeout(c, 100), 0);

    /* Nobody reads s: once both buffers are full, the send must give up
     * after its timeout and say how far it got. */
    long long t0 = now_ms();
    assert_int_equal(netx_send_all(c, out, MIB), -1);
    long long took = now_ms() - t0;
    assert_int_equal(errno, ETIMEDOUT);
    size_t sent = netx_last_transferred();
    assert_true(sent > 0);
    assert_true(sent < MIB);
    assert_true(took < 3000);

    netx_close(c);
    netx_close(s);
    free(out);
}

static void io_send_to_closed_peer_epipe_no_sigpipe(void **state)
{
    (void)state;
    int c, s;
    struct sigaction dfl, before, after, saved;
    guarded_pair(&c, &s);

    /* Make SIGPIPE fatal for the length of the test, whatever the parent
     * process left us: then merely surviving proves none was raised. */
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    assert_int_equal(sigaction(SIGPIPE, &dfl, &saved), 0);
    assert_int_equal(sigaction(SIGPIPE, NULL, &before), 0);

    assert_int_equal(netx_close(s), 0);
    /* The first send after the peer closed usually succeeds (the peer's
     * kernel answers it with a reset); a later one fails. Bounded: the
     * reset arrives within microseconds on loopback. */
    ssize_t n = 0;
    int err = 0;
    for (int i = 0; i < 200; i++) {
        n = netx_send(c, "x", 1);
        if (n < 0) {
            err = errno;
            break;
        }
        sleep_ms(1);
    }

    assert_int_equal(sigaction(SIGPIPE, NULL, &after), 0);
    assert_int_equal(sigaction(SIGPIPE, &saved, NULL), 0);

    assert_int_equal(n, -1);
    assert_true(err == EPIPE || err == ECONNRESET);
    assert_true(before.sa_handler == SIG_DFL);
    assert_true(after.sa_handler == SIG_DFL);
    netx_close(c);
}

static void io_send_all_nonblocking_moves_everything(void **state)
{
    (void)state;
    int c, s;
    struct transfer reader;
    unsigned char *out = malloc(MIB);
    unsigned char *in = malloc(MIB);
    assert_non_null(out);
    assert_non_null(in);
    support_pattern(out, MIB, 3);
    memset(in, 0, MIB);

    guarded_pair(&c, &s);
    shrink_buffers(c, s);
    assert_int_equal(netx_set_nonblocking(c, 1), 0);
    /* Making the pair polled (netx_tcp_connect waits with poll); count
     * only the polls from here on. */
    fault_reset();
    /* The reader starts only after netx_send_all() has had to poll, so the
     * waiting path is certainly taken: a megabyte does not fit in the
     * shrunken buffers. */
    transfer_start(&reader, recv_all_main, s, in, MIB, 1);
    int rc = netx_send_all(c, out, MIB);
    pthread_join(reader.thread, NULL);

    assert_int_equal(rc, 0);
    assert_true(reader.saw_poll);
    assert_int_equal(reader.rc, (ssize_t)MIB);
    assert_memory_equal(in, out, MIB);
    /* Still non-blocking: the loop did not switch modes behind our back. */
    assert_true((fcntl(c, F_GETFL) & O_NONBLOCK) != 0);

    netx_close(c);
    netx_close(s);
    free(out);
    free(in);
}

static void io_recv_all_nonblocking_moves_everything(void **state)
{
    (void)state;
    int c, s;
    struct transfer sender;
    unsigned char *out = malloc(MIB);
    unsigned char *in = malloc(MIB);
    assert_non_null(out);
    assert_non_null(in);
    support_pattern(out, MIB, 4);
    memset(in, 0, MIB);

    guarded_pair(&c, &s);
    assert_int_equal(netx_set_nonblocking(c, 1), 0);
    fault_reset(); /* count only the polls from here on */
    /* The sender starts only after netx_recv_all() found nothing and had
     * to poll. */
    transfer_start(&sender, send_all_main, s, out, MIB, 1);
    ssize_t got = netx_recv_all(c, in, MIB);
    pthread_join(sender.thread, NULL);

    assert_true(sender.saw_poll);
    assert_int_equal(sender.rc, 0);
    assert_int_equal(got, (ssize_t)MIB);
    assert_memory_equal(in, out, MIB);

    netx_close(c);
    netx_close(s);
    free(out);
    free(in);
}

static void io_send_null_buf_einval(void **state)
{
    (void)state;
    int c, s;
    guarded_pair(&c, &s);
    assert_int_equal(netx_send(c, NULL, 5), -1);
    assert_int_equal(errno, EINVAL);
    netx_close(c);
    netx_close(s);
}

static void io_recv_null_buf_einval(void **state)
{
    (void)state;
    int c, s;
    guarded_pair(&c, &s);
    /* Data is waiting, so only the check can make this fail. */
    assert_int_equal(netx_send_all(s, "data", 4), 0);
    assert_int_equal(netx_recv(c, NULL, 5), -1);
    assert_int_equal(errno, EINVAL);
    netx_close(c);
    netx_close(s);
}

/* Asking for 0 bytes leaves nothing to wait for: netx_recv() returns 0 at
 * once, without a system call, where recv(2) on a blocking socket would
 * wait until data came. Nothing is taken from the stream. */
static void io_recv_zero_cap_no_data_returns_0_at_once(void **state)
{
    (void)state;
    int c, s;
    char buf[8];
    support_tcp_pair("127.0.0.1", &c, &s);
    /* Blocking, nothing sent: a call that waited would end only with this
     * timeout, -1 and ETIMEDOUT. */
    assert_int_equal(netx_set_timeout(c, 2000), 0);
    assert_int_equal(netx_set_timeout(s, IO_GUARD_MS), 0);
    fault_reset(); /* count the receives from here on */

    long long t0 = now_ms();
    assert_int_equal(netx_recv(c, buf, 0), 0);
    assert_int_equal(netx_recv(c, NULL, 0), 0); /* no buffer needed for 0 bytes */
    long long took = now_ms() - t0;
    assert_true(took < 1000); /* it did not wait for the timeout */
    assert_int_equal(fault_count(FAULT_RECV), 0);

    /* The stream is untouched: what the peer sends now arrives whole, and a
     * receive of 0 bytes with data waiting takes none of it. */
    assert_int_equal(netx_send_all(s, "after", 5), 0);
    assert_int_equal(netx_recv(c, buf, 0), 0);
    assert_int_equal(netx_recv_all(c, buf, 5), 5);
    assert_memory_equal(buf, "after", 5);
    netx_close(c);
    netx_close(s);
}

/* On a non-blocking socket, 0 bytes asked is 0 bytes received, not EAGAIN;
 * and data already there stays for the next receive. */
static void io_recv_zero_cap_nonblocking_returns_0_not_eagain(void **state)
{
    (void)state;
    int c, s;
    char buf[8];
    guarded_pair(&c, &s);
    assert_int_equal(netx_set_nonblocking(c, 1), 0);

    errno = 0;
    assert_int_equal(netx_recv(c, buf, 0), 0);
    assert_int_equal(errno, 0);

    assert_int_equal(netx_send_all(s, "before", 6), 0);
    struct pollfd p = {.fd = c, .events = POLLIN, .revents = 0};
    assert_int_equal(poll(&p, 1, IO_GUARD_MS), 1);
    assert_int_equal(netx_recv(c, buf, 0), 0);
    /* Still readable, and every byte still there. */
    assert_int_equal(poll(&p, 1, 0), 1);
    assert_int_equal(netx_recv_all(c, buf, 6), 6);
    assert_memory_equal(buf, "before", 6);
    netx_close(c);
    netx_close(s);
}

/* recvmsg(2) with no room would take a waiting datagram and throw it away;
 * netx_recvfrom() with cap 0 returns 0 and leaves it for the next call. */
static void io_recvfrom_zero_cap_keeps_queued_datagram(void **state)
{
    (void)state;
    netx_addr self, from;
    char buf[16];
    int u = netx_udp_bind("127.0.0.1", 0);
    assert_true(u >= 0);
    assert_int_equal(netx_set_timeout(u, 2000), 0);
    assert_int_equal(netx_local_addr(u, &self), 0);
    /* A datagram to ourselves, queued before the receive of 0 bytes. */
    assert_int_equal(netx_sendto(u, "dgram", 5, &self), 5);
    struct pollfd p = {.fd = u, .events = POLLIN, .revents = 0};
    assert_int_equal(poll(&p, 1, IO_GUARD_MS), 1);

    assert_int_equal(netx_recvfrom(u, buf, 0, &from), 0);
    assert_int_equal(netx_recvfrom(u, NULL, 0, NULL), 0);

    assert_int_equal(poll(&p, 1, 0), 1); /* still queued */
    assert_int_equal(netx_recvfrom(u, buf, sizeof buf, &from), 5);
    assert_memory_equal(buf, "dgram", 5);
    assert_int_equal(netx_addr_port(&from), netx_addr_port(&self));
    netx_close(u);
}

static void io_send_all_recv_all_null_buf_einval(void **state)
{
    (void)state;
    int c, s;
    guarded_pair(&c, &s);
    assert_int_equal(netx_send_all(c, NULL, 5), -1);
    assert_int_equal(errno, EINVAL);
    assert_int_equal(netx_recv_all(c, NULL, 5), -1);
    assert_int_equal(errno, EINVAL);
    netx_close(c);
    netx_close(s);
}

static void io_set_timeout_negative_einval(void **state)
{
    (void)state;
    int c, s;
    guarded_pair(&c, &s);
    assert_int_equal(netx_set_timeout(c, -1), -1);
    assert_int_equal(errno, EINVAL);
    netx_close(c);
    netx_close(s);
}

static void io_recv_timeout_sentence_names_peer_and_fd(void **state)
{
    (void)state;
    int c, s;
    char buf[16];
    char want[128];
    netx_addr peer;
    support_tcp_pair("127.0.0.1", &c, &s);
    assert_int_equal(netx_peer_addr(c, &peer), 0);
    int port = netx_addr_port(&peer);
    assert_true(port > 0);
    assert_int_equal(netx_set_timeout(c, 50), 0);
    assert_int_equal(netx_recv(c, buf, sizeof buf), -1);

    const char *msg = netx_last_error();
    snprintf(want, sizeof want, "recv from 127.0.0.1:%d (fd %d)", port, c);
    assert_non_null(strstr(msg, want));
    assert_non_null(strstr(msg, strerror(ETIMEDOUT)));
    netx_close(c);
    netx_close(s);
}

static void io_roundtrip_ipv6_succeeds(void **state)
{
    (void)state;
    int c, s;
    char buf[16];
    netx_addr peer;
    support_tcp_pair("::1", &c, &s); /* skips without ::1 */
    assert_int_equal(netx_set_timeout(c, IO_GUARD_MS), 0);
    assert_int_equal(netx_set_timeout(s, IO_GUARD_MS), 0);
    assert_int_equal(netx_peer_addr(c, &peer), 0);
    assert_int_equal(peer.ss.ss_family, AF_INET6);

    assert_int_equal(netx_send_all(c, "over six", 8), 0);
    assert_int_equal(netx_recv_all(s, buf, 8), 8);
    assert_memory_equal(buf, "over six", 8);
    assert_int_equal(netx_send_all(s, "and back", 8), 0);
    assert_int_equal(netx_recv_all(c, buf, 8), 8);
    assert_memory_equal(buf, "and back", 8);
    netx_close(c);
    netx_close(s);
}

/* A handler that does nothing: its only effect is to interrupt system calls
 * (it is installed without SA_RESTART). */
static volatile sig_atomic_t alarms;

static void count_alarm(int sig)
{
    (void)sig;
    alarms++;
}

static long long mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A receive timeout must fire even when signals interrupt the wait more
 * often than the timeout: retrying recv() would restart the kernel's timer
 * every time, and the call would never end. */
static void io_recv_timeout_holds_under_signals(void **state)
{
    (void)state;
    int c, s;
    char byte;
    support_tcp_pair("127.0.0.1", &c, &s);
    assert_int_equal(netx_set_timeout(s, 300), 0);

    struct sigaction sa, old_sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = count_alarm;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0; /* no SA_RESTART: every alarm interrupts the call */
    assert_int_equal(sigaction(SIGALRM, &sa, &old_sa), 0);
    struct itimerval every_50ms = {{0, 50000}, {0, 50000}};
    struct itimerval off = {{0, 0}, {0, 0}};
    alarms = 0;
    assert_int_equal(setitimer(ITIMER_REAL, &every_50ms, NULL), 0);

    long long t0 = mono_ms();
    ssize_t n = netx_recv(s, &byte, 1);
    int err = errno;
    long long took = mono_ms() - t0;

    setitimer(ITIMER_REAL, &off, NULL);
    sigaction(SIGALRM, &old_sa, NULL);
    netx_close(c);
    netx_close(s);

    assert_int_equal(n, -1);
    assert_int_equal(err, ETIMEDOUT);
    assert_true(alarms >= 3); /* the signals really did interrupt it */
    /* One deadline: at most the timeout from the first interruption on. */
    assert_true(took >= 250 && took < 2000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TEST(io_send_all_recv_all_1mib_intact),
        TEST(io_recv_eof_returns_0),
        TEST(io_recv_all_eof_returns_fewer),
        TEST(io_recv_peer_reset_econnreset),
        TEST(io_recv_timeout_etimedout),
        TEST(io_recv_all_timeout_reports_transferred),
        TEST(io_send_all_timeout_etimedout_partial),
        TEST(io_send_to_closed_peer_epipe_no_sigpipe),
        TEST(io_send_all_nonblocking_moves_everything),
        TEST(io_recv_all_nonblocking_moves_everything),
        TEST(io_send_null_buf_einval),
        TEST(io_recv_null_buf_einval),
        TEST(io_recv_zero_cap_no_data_returns_0_at_once),
        TEST(io_recv_zero_cap_nonblocking_returns_0_not_eagain),
        TEST(io_recvfrom_zero_cap_keeps_queued_datagram),
        TEST(io_send_all_recv_all_null_buf_einval),
        TEST(io_set_timeout_negative_einval),
        TEST(io_recv_timeout_sentence_names_peer_and_fd),
        TEST(io_roundtrip_ipv6_succeeds),
        TEST(io_recv_timeout_holds_under_signals),
    };
    return cmocka_run_group_tests_name("io", tests, NULL, NULL);
}
