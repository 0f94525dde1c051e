/*
 * test_faults.c - what loopback will not do on demand, forced through the
 * fault-injection wrappers of fault.h: short sends and receives, EINTR on
 * every call the library makes (send, recvmsg, sendto, connect, accept4,
 * poll, close), EAGAIN on blocking and non-blocking sockets, resets in the
 * middle of a transfer, and failures half-way through netx_tcp_connect()
 * and netx_tcp_listen(). Each case checks that the bytes arrive whole and
 * in order, that the right call was made the right number of times, and
 * that a failure reports its errno, its byte count and its sentence.
 *
 * The wrappers are process-wide, so every script here names the real
 * descriptor it is meant for; -1 ("any descriptor") is used only where the
 * descriptor is created inside the call under test and no other thread is
 * doing I/O.
 */
#include "support.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* A connected loopback pair, with the counters zeroed afterwards so that
 * the calls made to set it up do not count towards the test's own. */
static void tcp_pair(int *client, int *server)
{
    support_tcp_pair("127.0.0.1", client, server);
    fault_reset();
}

/* The port of fd's peer, as the error sentences print it. */
static int peer_port(int fd)
{
    netx_addr a;
    assert_int_equal(netx_peer_addr(fd, &a), 0);
    int port = netx_addr_port(&a);
    assert_true(port > 0);
    return port;
}

/* A port that was free a moment ago: listen on port 0, note it, close. */
static int closed_port(void)
{
    int lfd = netx_tcp_listen("127.0.0.1", 0, 0);
    assert_true(lfd >= 0);
    int port = netx_local_port(lfd);
    assert_true(port > 0);
    assert_int_equal(netx_close(lfd), 0);
    return port;
}

static int is_nonblocking(int fd)
{
    int flags = fcntl(fd, F_GETFL);
    assert_true(flags >= 0);
    return (flags & O_NONBLOCK) != 0;
}

/*
 * Wait (at most two seconds) until n bytes are queued for reading on fd.
 * The cases that count recvmsg() calls exactly need every byte to be there
 * before the first call; otherwise a pass-through call could legitimately
 * return part of the rest and the count would depend on timing.
 */
static void wait_queued(int fd, size_t n)
{
    struct timespec ms = {0, 1000000};
    for (int i = 0; i < 2000; i++) {
        int queued = 0;
        assert_int_equal(ioctl(fd, FIONREAD, &queued), 0);
        if (queued >= 0 && (size_t)queued >= n) {
            return;
        }
        nanosleep(&ms, NULL);
    }
    fail_msg("%zu bytes never arrived on fd %d", n, fd);
}

/* Nothing beyond what the test expects is waiting on fd. */
static void assert_nothing_queued(int fd)
{
    int queued = -1;
    assert_int_equal(ioctl(fd, FIONREAD, &queued), 0);
    assert_int_equal(queued, 0);
}

/* The last failure was err, in step ("send to", "recv from") on the peer
 * 127.0.0.1:port, and the sentence says so. */
static void assert_failure(const char *step, int port, int err)
{
    char want[64];
    const char *text = netx_last_error();
    snprintf(want, sizeof want, "%s 127.0.0.1:%d", step, port);
    if (strstr(text, want) == NULL || strstr(text, strerror(err)) == NULL) {
        fail_msg("sentence \"%s\" lacks \"%s\" or \"%s\"", text, want, strerror(err));
    }
    assert_int_equal(netx_last_errno(), err);
}

/* Short transfers -------------------------------------------------------- */

static void faults_send_all_short_writes_deliver_in_order(void **state)
{
    (void)state;
    int c, s;
    unsigned char out[4096], in[4096];
    const struct fault_step steps[] = {
        {FAULT_SHORT, 1}, {FAULT_SHORT, 7}, {FAULT_SHORT, 2}, {FAULT_SHORT, 100}, {FAULT_SHORT, 13},
    };

    tcp_pair(&c, &s);
    support_pattern(out, sizeof out, 1);
    fault_script(FAULT_SEND, c, steps, COUNT(steps));
    assert_int_equal(netx_send_all(c, out, sizeof out), 0);
    /* One call per short step, then one blocking call for the rest. */
    assert_int_equal(fault_count(FAULT_SEND), COUNT(steps) + 1);
    assert_int_equal(fault_pending(FAULT_SEND), 0);

    assert_int_equal(netx_recv_all(s, in, sizeof in), (ssize_t)sizeof in);
    assert_memory_equal(in, out, sizeof out);
    assert_nothing_queued(s);
    netx_close(c);
    netx_close(s);
}

static void faults_recv_all_short_reads_assemble_buffer(void **state)
{
    (void)state;
    int c, s;
    unsigned char out[4096], in[4096];
    const struct fault_step steps[] = {
        {FAULT_SHORT, 1}, {FAULT_SHORT, 2}, {FAULT_SHORT, 3},
        {FAULT_SHORT, 5}, {FAULT_SHORT, 8}, {FAULT_SHORT, 13},
    };

    tcp_pair(&c, &s);
    support_pattern(out, sizeof out, 2);
    assert_int_equal(netx_send_all(s, out, sizeof out), 0);
    wait_queued(c, sizeof out);
    fault_script(FAULT_RECV, c, steps, COUNT(steps));
    memset(in, 0, sizeof in);
    assert_int_equal(netx_recv_all(c, in, sizeof in), (ssize_t)sizeof in);
    assert_int_equal(fault_count(FAULT_RECV), COUNT(steps) + 1);
    assert_int_equal(fault_pending(FAULT_RECV), 0);
    assert_memory_equal(in, out, sizeof out);
    netx_close(c);
    netx_close(s);
}

/* EINTR ------------------------------------------------------------------ */

static void faults_send_recv_all_eintr_retried_no_loss(void **state)
{
    (void)state;
    int c, s;
    unsigned char out[3000], in[3000];
    const struct fault_step sends[] = {
        {FAULT_EINTR, 0},  {FAULT_SHORT, 5}, {FAULT_EINTR, 0}, {FAULT_EINTR, 0},
        {FAULT_SHORT, 11}, {FAULT_EINTR, 0}, {FAULT_PASS, 0},
    };
    const struct fault_step recvs[] = {
        {FAULT_EINTR, 0}, {FAULT_SHORT, 3}, {FAULT_EINTR, 0}, {FAULT_SHORT, 17},
        {FAULT_EINTR, 0}, {FAULT_EINTR, 0}, {FAULT_PASS, 0},
    };

    tcp_pair(&c, &s);
    support_pattern(out, sizeof out, 3);
    fault_script(FAULT_SEND, c, sends, COUNT(sends));
    assert_int_equal(netx_send_all(c, out, sizeof out), 0);
    /* The last step passes the whole rest through: every step is taken and
     * no call beyond them is made. */
    assert_int_equal(fault_count(FAULT_SEND), COUNT(sends));
    assert_int_equal(fault_pending(FAULT_SEND), 0);

    wait_queued(s, sizeof out);
    fault_script(FAULT_RECV, s, recvs, COUNT(recvs));
    assert_int_equal(netx_recv_all(s, in, sizeof in), (ssize_t)sizeof in);
    assert_int_equal(fault_count(FAULT_RECV), COUNT(recvs));
    assert_int_equal(fault_pending(FAULT_RECV), 0);
    assert_memory_equal(in, out, sizeof out);
    assert_nothing_queued(s);
    netx_close(c);
    netx_close(s);
}

static void faults_send_recv_eintr_never_returned(void **state)
{
    (void)state;
    int c, s;
    char buf[16];
    const struct fault_step eintr3[] = {
        {FAULT_EINTR, 0},
        {FAULT_EINTR, 0},
        {FAULT_EINTR, 0},
    };

    tcp_pair(&c, &s);
    fault_script(FAULT_SEND, c, eintr3, COUNT(eintr3));
    assert_int_equal(netx_send(c, "hello", 5), 5);
    assert_int_equal(fault_count(FAULT_SEND), 4);

    wait_queued(s, 5);
    fault_script(FAULT_RECV, s, eintr3, COUNT(eintr3));
    assert_int_equal(netx_recv(s, buf, sizeof buf), 5);
    assert_int_equal(fault_count(FAULT_RECV), 4);
    assert_memory_equal(buf, "hello", 5);
    netx_close(c);
    netx_close(s);
}

/*
 * A signal that interrupts connect() does not stop the connection: POSIX
 * says it goes on, and a second connect() would fail with EALREADY. The
 * wrapper starts the real connect and then says EINTR; the library must
 * wait for the outcome instead of calling connect() again.
 */
static void faults_tcp_connect_eintr_still_connects(void **state)
{
    (void)state;
    const int timeouts[] = {2000, 0};
    const struct fault_step eintr[] = {{FAULT_EINTR, 0}};
    int lfd = netx_tcp_listen("127.0.0.1", 0, 0);
    assert_true(lfd >= 0);
    int port = netx_local_port(lfd);

    for (size_t i = 0; i < COUNT(timeouts); i++) {
        fault_reset();
        /* -1: the socket is created inside the call, and no other thread
         * is connecting. */
        fault_script(FAULT_CONNECT, -1, eintr, COUNT(eintr));
        int c = netx_tcp_connect("127.0.0.1", (uint16_t)port, timeouts[i]);
        assert_true(c >= 0);
        assert_int_equal(fault_count(FAULT_CONNECT), 1);
        assert_int_equal(fault_pending(FAULT_CONNECT), 0);
        assert_false(is_nonblocking(c));
        int s = netx_accept(lfd, NULL);
        assert_true(s >= 0);
        assert_int_equal(netx_send_all(c, "x", 1), 0);
        char b = 0;
        assert_int_equal(netx_recv_all(s, &b, 1), 1);
        assert_int_equal(b, 'x');
        netx_close(c);
        netx_close(s);
    }
    netx_close(lfd);
}

static void faults_connect_eintr_still_connects(void **state)
{
    (void)state;
    const int timeouts[] = {2000, 0};
    const struct fault_step eintr[] = {{FAULT_EINTR, 0}};
    char text[32];
    netx_addr a;
    int lfd = netx_tcp_listen("127.0.0.1", 0, 0);
    assert_true(lfd >= 0);
    int port = netx_local_port(lfd);
    snprintf(text, sizeof text, "127.0.0.1:%d", port);
    assert_int_equal(netx_addr_parse(text, &a), 0);

    for (size_t i = 0; i < COUNT(timeouts); i++) {
        int fd = netx_socket(AF_INET, SOCK_STREAM);
        assert_true(fd >= 0);
        fault_reset();
        fault_script(FAULT_CONNECT, fd, eintr, COUNT(eintr));
        assert_int_equal(netx_connect(fd, &a, timeouts[i]), 0);
        assert_int_equal(fault_count(FAULT_CONNECT), 1);
        assert_int_equal(fault_pending(FAULT_CONNECT), 0);
        /* The socket is connected to the listener, and as blocking as it
         * was before. */
        assert_int_equal(peer_port(fd), port);
        assert_false(is_nonblocking(fd));
        int s = netx_accept(lfd, NULL);
        assert_true(s >= 0);
        netx_close(fd);
        netx_close(s);
    }
    netx_close(lfd);
}

static void faults_connect_eintr_then_refused_reports_refused(void **state)
{
    (void)state;
    const struct fault_step eintr[] = {{FAULT_EINTR, 0}};
    int port = closed_port();
    char want[64];

    fault_reset();
    fault_script(FAULT_CONNECT, -1, eintr, COUNT(eintr));
    assert_int_equal(netx_tcp_connect("127.0.0.1", (uint16_t)port, 2000), -1);
    assert_int_equal(errno, ECONNREFUSED);
    /* The refusal comes from SO_ERROR after the wait, not from a second
     * connect(). */
    assert_int_equal(fault_count(FAULT_CONNECT), 1);
    assert_int_equal(fault_count(FAULT_CLOSE), 1);
    snprintf(want, sizeof want, "connect to 127.0.0.1:%d (127.0.0.1)", port);
    assert_non_null(strstr(netx_last_error(), want));
}

static void faults_accept_eintr_and_econnaborted_skipped(void **state)
{
    (void)state;
    const struct fault_step steps[] = {
        {FAULT_EINTR, 0},
        {FAULT_ERRNO, ECONNABORTED},
        {FAULT_EINTR, 0},
    };
    netx_addr peer;
    int lfd = netx_tcp_listen("127.0.0.1", 0, 0);
    assert_true(lfd >= 0);
    int c = netx_tcp_connect("127.0.0.1", (uint16_t)netx_local_port(lfd), 2000);
    assert_true(c >= 0);

    fault_reset();
    fault_script(FAULT_ACCEPT, lfd, steps, COUNT(steps));
    int s = netx_accept(lfd, &peer);
    assert_true(s >= 0);
    assert_int_equal(fault_count(FAULT_ACCEPT), COUNT(steps) + 1);
    /* The connection returned is the client's, and its address is filled
     * by the call that succeeded. */
    assert_int_equal(netx_addr_port(&peer), netx_local_port(c));
    assert_int_equal(netx_send_all(c, "y", 1), 0);
    char b = 0;
    assert_int_equal(netx_recv_all(s, &b, 1), 1);
    assert_int_equal(b, 'y');
    netx_close(c);
    netx_close(s);
    netx_close(lfd);
}

static void faults_connect_poll_eintr_keeps_waiting(void **state)
{
    (void)state;
    const struct fault_step eintr3[] = {
        {FAULT_EINTR, 0},
        {FAULT_EINTR, 0},
        {FAULT_EINTR, 0},
    };
    char text[32];
    netx_addr a;
    int lfd = netx_tcp_listen("127.0.0.1", 0, 0);
    assert_true(lfd >= 0);
    int port = netx_local_port(lfd);
    snprintf(text, sizeof text, "127.0.0.1:%d", port);
    assert_int_equal(netx_addr_parse(text, &a), 0);
    int fd = netx_socket(AF_INET, SOCK_STREAM);
    assert_true(fd >= 0);

    fault_reset();
    fault_script(FAULT_POLL, fd, eintr3, COUNT(eintr3));
    /* With a timeout the connect is non-blocking and answers EINPROGRESS
     * (on Linux, always, even on loopback), so the library waits in poll();
     * each EINTR there must mean "wait again", not "failed". */
    assert_int_equal(netx_connect(fd, &a, 2000), 0);
    assert_int_equal(fault_count(FAULT_CONNECT), 1);
    assert_int_equal(fault_count(FAULT_POLL), 4);
    assert_int_equal(fault_pending(FAULT_POLL), 0);
    assert_int_equal(peer_port(fd), port);
    assert_false(is_nonblocking(fd));
    int s = netx_accept(lfd, NULL);
    assert_true(s >= 0);
    netx_close(fd);
    netx_close(s);
    netx_close(lfd);
}

/* EAGAIN ----------------------------------------------------------------- */

static void faults_send_all_nonblocking_eagain_waits_then_completes(void **state)
{
    (void)state;
    int c, s;
    unsigned char out[4096], in[4096];
    const struct fault_step sends[] = {
        {FAULT_EAGAIN, 0}, {FAULT_SHORT, 10}, {FAULT_EAGAIN, 0}, {FAULT_EAGAIN, 0}, {FAULT_PASS, 0},
    };
    const struct fault_step polls[] = {{FAULT_EINTR, 0}};

    tcp_pair(&c, &s);
    support_pattern(out, sizeof out, 4);
    assert_int_equal(netx_set_nonblocking(c, 1), 0);
    assert_int_equal(netx_set_timeout(c, 2000), 0);
    fault_script(FAULT_SEND, c, sends, COUNT(sends));
    fault_script(FAULT_POLL, c, polls, COUNT(polls));
    assert_int_equal(netx_send_all(c, out, sizeof out), 0);
    assert_int_equal(fault_count(FAULT_SEND), COUNT(sends));
    /* One wait per EAGAIN, and the first wait interrupted once. */
    assert_int_equal(fault_count(FAULT_POLL), 4);
    assert_int_equal(fault_pending(FAULT_POLL), 0);
    assert_true(is_nonblocking(c));

    assert_int_equal(netx_recv_all(s, in, sizeof in), (ssize_t)sizeof in);
    assert_memory_equal(in, out, sizeof out);
    assert_nothing_queued(s);
    netx_close(c);
    netx_close(s);
}

static void faults_recv_all_nonblocking_eagain_waits_then_completes(void **state)
{
    (void)state;
    int c, s;
    unsigned char out[4096], in[4096];
    const struct fault_step recvs[] = {
        {FAULT_EAGAIN, 0}, {FAULT_SHORT, 3}, {FAULT_EAGAIN, 0}, {FAULT_SHORT, 50}, {FAULT_PASS, 0},
    };

    tcp_pair(&c, &s);
    support_pattern(out, sizeof out, 5);
    assert_int_equal(netx_send_all(s, out, sizeof out), 0);
    wait_queued(c, sizeof out);
    assert_int_equal(netx_set_nonblocking(c, 1), 0);
    assert_int_equal(netx_set_timeout(c, 2000), 0);
    fault_script(FAULT_RECV, c, recvs, COUNT(recvs));
    assert_int_equal(netx_recv_all(c, in, sizeof in), (ssize_t)sizeof in);
    assert_int_equal(fault_count(FAULT_RECV), COUNT(recvs));
    assert_int_equal(fault_count(FAULT_POLL), 2);
    assert_memory_equal(in, out, sizeof out);
    netx_close(c);
    netx_close(s);
}

/*
 * On a blocking socket EAGAIN has one meaning: SO_SNDTIMEO or SO_RCVTIMEO
 * expired. netx.h promises ETIMEDOUT for that, and no waiting in poll().
 */
static void faults_blocking_eagain_reported_as_etimedout(void **state)
{
    (void)state;
    int c, s;
    unsigned char out[100], in[100];
    const struct fault_step send_steps[] = {{FAULT_SHORT, 10}, {FAULT_EAGAIN, 0}};
    const struct fault_step recv_steps[] = {{FAULT_SHORT, 4}, {FAULT_EAGAIN, 0}};
    const struct fault_step eagain[] = {{FAULT_EAGAIN, 0}};

    tcp_pair(&c, &s);
    support_pattern(out, sizeof out, 6);

    fault_script(FAULT_SEND, c, eagain, COUNT(eagain));
    assert_int_equal(netx_send(c, out, sizeof out), -1);
    assert_int_equal(errno, ETIMEDOUT);

    fault_script(FAULT_SEND, c, send_steps, COUNT(send_steps));
    assert_int_equal(netx_send_all(c, out, sizeof out), -1);
    assert_int_equal(errno, ETIMEDOUT);
    assert_int_equal(netx_last_transferred(), 10);
    assert_failure("send to", peer_port(c), ETIMEDOUT);

    wait_queued(s, 10);
    fault_script(FAULT_RECV, s, recv_steps, COUNT(recv_steps));
    assert_int_equal(netx_recv_all(s, in, sizeof in), -1);
    assert_int_equal(errno, ETIMEDOUT);
    assert_int_equal(netx_last_transferred(), 4);
    assert_memory_equal(in, out, 4);
    assert_failure("recv from", peer_port(s), ETIMEDOUT);

    fault_script(FAULT_RECV, s, eagain, COUNT(eagain));
    assert_int_equal(netx_recv(s, in, sizeof in), -1);
    assert_int_equal(errno, ETIMEDOUT);
    assert_int_equal(fault_count(FAULT_POLL), 0);
    netx_close(c);
    netx_close(s);
}

/* Resets in the middle of a transfer -------------------------------------- */

static void faults_send_all_econnreset_reports_transferred(void **state)
{
    (void)state;
    int c, s;
    unsigned char out[1000], in[1000];
    const struct fault_step steps[] = {
        {FAULT_SHORT, 1},  {FAULT_SHORT, 7},          {FAULT_EINTR, 0},
        {FAULT_SHORT, 20}, {FAULT_ERRNO, ECONNRESET},
    };

    tcp_pair(&c, &s);
    support_pattern(out, sizeof out, 7);
    fault_script(FAULT_SEND, c, steps, COUNT(steps));
    assert_int_equal(netx_send_all(c, out, sizeof out), -1);
    assert_int_equal(errno, ECONNRESET);
    assert_int_equal(netx_last_transferred(), 28);
    assert_int_equal(fault_count(FAULT_SEND), COUNT(steps));
    assert_failure("send to", peer_port(c), ECONNRESET);

    /* The peer has exactly the 28 bytes that were counted as sent. */
    wait_queued(s, 28);
    assert_int_equal(netx_recv_all(s, in, 28), 28);
    assert_memory_equal(in, out, 28);
    assert_nothing_queued(s);
    netx_close(c);
    netx_close(s);
}

static void faults_recv_all_econnreset_reports_transferred(void **state)
{
    (void)state;
    int c, s;
    unsigned char out[1000], in[1000];
    const struct fault_step steps[] = {
        {FAULT_SHORT, 10},
        {FAULT_EINTR, 0},
        {FAULT_SHORT, 15},
        {FAULT_ERRNO, ECONNRESET},
    };

    tcp_pair(&c, &s);
    support_pattern(out, sizeof out, 8);
    assert_int_equal(netx_send_all(s, out, sizeof out), 0);
    wait_queued(c, sizeof out);
    memset(in, 0, sizeof in);
    fault_script(FAULT_RECV, c, steps, COUNT(steps));
    assert_int_equal(netx_recv_all(c, in, sizeof in), -1);
    assert_int_equal(errno, ECONNRESET);
    assert_int_equal(netx_last_transferred(), 25);
    assert_memory_equal(in, out, 25);
    assert_failure("recv from", peer_port(c), ECONNRESET);
    netx_close(c);
    netx_close(s);
}

static void faults_read_n_econnreset_keeps_received_bytes(void **state)
{
    (void)state;
    int c, s;
    unsigned char out[100], in[100];
    unsigned char storage[64];
    netx_reader r;
    /* 100 bytes through a 64-byte reader: the first two pieces are large
     * enough to go straight into the caller's buffer, the third goes
     * through the reader's storage, then the connection is reset. */
    const struct fault_step steps[] = {
        {FAULT_SHORT, 30},
        {FAULT_SHORT, 10},
        {FAULT_SHORT, 5},
        {FAULT_ERRNO, ECONNRESET},
    };

    tcp_pair(&c, &s);
    support_pattern(out, sizeof out, 9);
    assert_int_equal(netx_send_all(s, out, sizeof out), 0);
    wait_queued(c, sizeof out);
    assert_int_equal(netx_reader_init(&r, c, storage, sizeof storage), 0);
    memset(in, 0, sizeof in);
    fault_script(FAULT_RECV, c, steps, COUNT(steps));
    assert_int_equal(netx_read_n(&r, in, sizeof in), -1);
    assert_int_equal(errno, ECONNRESET);
    assert_int_equal(netx_last_transferred(), 45);
    assert_memory_equal(in, out, 45);
    assert_failure("recv from", peer_port(c), ECONNRESET);

    /* Nothing was lost: the rest of the stream follows on. */
    fault_reset();
    assert_int_equal(netx_read_n(&r, in + 45, sizeof in - 45), (ssize_t)(sizeof in - 45));
    assert_memory_equal(in, out, sizeof out);
    netx_close(c);
    netx_close(s);
}

/* Close ------------------------------------------------------------------ */

static void faults_close_eintr_reports_success_once(void **state)
{
    (void)state;
    const struct fault_step eintr[] = {{FAULT_EINTR, 0}};
    int fd = netx_socket(AF_INET, SOCK_STREAM);
    assert_true(fd >= 0);

    fault_reset();
    fault_script(FAULT_CLOSE, fd, eintr, COUNT(eintr));
    assert_int_equal(netx_close(fd), 0);
    /* Linux has closed the descriptor; a retry would close it again, or
     * worse, close whatever another thread opened under that number. */
    assert_int_equal(fault_count(FAULT_CLOSE), 1);
    assert_int_equal(fcntl(fd, F_GETFD), -1);
    assert_int_equal(errno, EBADF);
}

static void faults_close_eio_reported(void **state)
{
    (void)state;
    const struct fault_step eio[] = {{FAULT_ERRNO, EIO}};
    char want[32];
    int fd = netx_socket(AF_INET, SOCK_STREAM);
    assert_true(fd >= 0);

    fault_reset();
    fault_script(FAULT_CLOSE, fd, eio, COUNT(eio));
    assert_int_equal(netx_close(fd), -1);
    assert_int_equal(errno, EIO);
    assert_int_equal(fault_count(FAULT_CLOSE), 1);
    snprintf(want, sizeof want, "close fd %d", fd);
    assert_non_null(strstr(netx_last_error(), want));
    /* The wrapper failed without closing: close it for real. */
    assert_int_equal(netx_close(fd), 0);
}

/* Nothing leaks when a step fails ------------------------------------------ */

static void faults_tcp_connect_refused_leaks_nothing(void **state)
{
    (void)state;
    const int timeouts[] = {2000, 0};
    const struct fault_step refused[] = {{FAULT_ERRNO, ECONNREFUSED}};
    char want[64];
    int lfd = netx_tcp_listen("127.0.0.1", 0, 0);
    assert_true(lfd >= 0);
    int port = netx_local_port(lfd);
    snprintf(want, sizeof want, "connect to 127.0.0.1:%d (127.0.0.1): %s", port,
             strerror(ECONNREFUSED));

    for (size_t i = 0; i < COUNT(timeouts); i++) {
        int before = support_fd_count();
        fault_reset();
        /* A listener is there, so only the injected refusal can fail it. */
        fault_script(FAULT_CONNECT, -1, refused, COUNT(refused));
        assert_int_equal(netx_tcp_connect("127.0.0.1", (uint16_t)port, timeouts[i]), -1);
        assert_int_equal(errno, ECONNREFUSED);
        assert_int_equal(fault_count(FAULT_CONNECT), 1);
        assert_int_equal(fault_count(FAULT_CLOSE), 1);
        assert_int_equal(support_fd_count(), before);
        assert_string_equal(netx_last_error(), want);
    }
    netx_close(lfd);
}

static void faults_tcp_connect_poll_error_leaks_nothing(void **state)
{
    (void)state;
    const struct fault_step nomem[] = {{FAULT_ERRNO, ENOMEM}};
    int lfd = netx_tcp_listen("127.0.0.1", 0, 0);
    assert_true(lfd >= 0);
    int port = netx_local_port(lfd);
    int before = support_fd_count();

    fault_reset();
    fault_script(FAULT_POLL, -1, nomem, COUNT(nomem));
    assert_int_equal(netx_tcp_connect("127.0.0.1", (uint16_t)port, 2000), -1);
    assert_int_equal(errno, ENOMEM);
    assert_int_equal(fault_count(FAULT_POLL), 1);
    assert_int_equal(fault_count(FAULT_CLOSE), 1);
    assert_int_equal(support_fd_count(), before);
    netx_close(lfd);
}

/*
 * socket(), bind() and listen() are not among the wrapped calls, so the
 * listener's failure is a real one (the port is taken); what is injected is
 * an EINTR on the close() of the socket that failed to bind, which must
 * neither leak it nor hide the bind error.
 */
static void faults_tcp_listen_addrinuse_leaks_nothing(void **state)
{
    (void)state;
    const struct fault_step eintr[] = {{FAULT_EINTR, 0}};
    char want[80];
    int lfd = netx_tcp_listen("127.0.0.1", 0, 0);
    assert_true(lfd >= 0);
    int port = netx_local_port(lfd);
    int before = support_fd_count();

    fault_reset();
    fault_script(FAULT_CLOSE, -1, eintr, COUNT(eintr));
    assert_int_equal(netx_tcp_listen("127.0.0.1", (uint16_t)port, 0), -1);
    assert_int_equal(errno, EADDRINUSE);
    assert_int_equal(fault_count(FAULT_CLOSE), 1);
    assert_int_equal(fault_pending(FAULT_CLOSE), 0);
    assert_int_equal(support_fd_count(), before);
    snprintf(want, sizeof want, "127.0.0.1:%d (127.0.0.1): %s", port, strerror(EADDRINUSE));
    assert_non_null(strstr(netx_last_error(), want));
    netx_close(lfd);
}

/* The promise that a success leaves errno and the error record alone ------ */

/* A failure to remember, so that a success that rewrites the record shows. */
static void remember_failure(char *text, size_t cap)
{
    assert_int_equal(netx_close(-1), -1);
    snprintf(text, cap, "%s", netx_last_error());
}

/* The last call succeeded after retrying a fault: errno (0 before it) and
 * the remembered record must be as they were. */
static void assert_untouched(const char *what, const char *text)
{
    int err = errno;
    if (err != 0) {
        fail_msg("%s succeeded but left errno %d (%s)", what, err, strerror(err));
    }
    if (netx_last_errno() != EBADF || strcmp(netx_last_error(), text) != 0) {
        fail_msg("%s succeeded but rewrote the error record: \"%s\"", what, netx_last_error());
    }
}

static void faults_retried_io_leaves_errno_and_record_alone(void **state)
{
    (void)state;
    int c, s;
    unsigned char out[2048], in[2048];
    char before[400];
    const struct fault_step eintr[] = {{FAULT_EINTR, 0}, {FAULT_EINTR, 0}};
    const struct fault_step eagain[] = {{FAULT_EAGAIN, 0}, {FAULT_SHORT, 9}, {FAULT_EAGAIN, 0}};

    tcp_pair(&c, &s);
    support_pattern(out, sizeof out, 10);
    remember_failure(before, sizeof before);

    fault_script(FAULT_SEND, c, eintr, COUNT(eintr));
    errno = 0;
    assert_int_equal(netx_send(c, out, 100), 100);
    assert_untouched("netx_send after EINTR", before);

    wait_queued(s, 100);
    fault_script(FAULT_RECV, s, eintr, COUNT(eintr));
    errno = 0;
    assert_int_equal(netx_recv_all(s, in, 100), 100);
    assert_untouched("netx_recv_all after EINTR", before);

    /* On a non-blocking socket EAGAIN is part of the normal course of
     * netx_send_all(): it waits and goes on, and must not report it. */
    assert_int_equal(netx_set_nonblocking(c, 1), 0);
    fault_script(FAULT_SEND, c, eagain, COUNT(eagain));
    errno = 0;
    assert_int_equal(netx_send_all(c, out, sizeof out), 0);
    assert_int_equal(fault_pending(FAULT_SEND), 0);
    assert_untouched("netx_send_all after EAGAIN", before);

    wait_queued(s, sizeof out);
    assert_int_equal(netx_set_nonblocking(s, 1), 0);
    fault_script(FAULT_RECV, s, eagain, COUNT(eagain));
    errno = 0;
    assert_int_equal(netx_recv_all(s, in, sizeof in), (ssize_t)sizeof in);
    assert_int_equal(fault_pending(FAULT_RECV), 0);
    assert_untouched("netx_recv_all after EAGAIN", before);
    assert_memory_equal(in, out, sizeof out);
    netx_close(c);
    netx_close(s);
}

static void faults_retried_connect_accept_leave_errno_and_record_alone(void **state)
{
    (void)state;
    char before[400];
    char text[32];
    netx_addr a;
    const struct fault_step eintr[] = {{FAULT_EINTR, 0}};
    const struct fault_step aborted[] = {{FAULT_EINTR, 0}, {FAULT_ERRNO, ECONNABORTED}};
    int lfd = netx_tcp_listen("127.0.0.1", 0, 0);
    assert_true(lfd >= 0);
    snprintf(text, sizeof text, "127.0.0.1:%d", netx_local_port(lfd));
    assert_int_equal(netx_addr_parse(text, &a), 0);
    int fd = netx_socket(AF_INET, SOCK_STREAM);
    assert_true(fd >= 0);
    remember_failure(before, sizeof before);

    fault_script(FAULT_CONNECT, fd, eintr, COUNT(eintr));
    errno = 0;
    assert_int_equal(netx_connect(fd, &a, 2000), 0);
    assert_untouched("netx_connect after EINTR", before);

    fault_script(FAULT_ACCEPT, lfd, aborted, COUNT(aborted));
    errno = 0;
    int s = netx_accept(lfd, NULL);
    assert_true(s >= 0);
    assert_untouched("netx_accept after EINTR and ECONNABORTED", before);
    netx_close(s);
    netx_close(fd);
    netx_close(lfd);
}

/* UDP -------------------------------------------------------------------- */

static void faults_sendto_recvfrom_eintr_retried(void **state)
{
    (void)state;
    const struct fault_step eintr2[] = {{FAULT_EINTR, 0}, {FAULT_EINTR, 0}};
    netx_addr to, from;
    char buf[64];
    int a = netx_udp_bind("127.0.0.1", 0);
    int b = netx_udp_bind("127.0.0.1", 0);
    assert_true(a >= 0 && b >= 0);
    assert_int_equal(netx_local_addr(a, &to), 0);
    assert_int_equal(netx_set_timeout(a, 2000), 0);

    fault_reset();
    fault_script(FAULT_SENDTO, b, eintr2, COUNT(eintr2));
    assert_int_equal(netx_sendto(b, "dgram", 5, &to), 5);
    assert_int_equal(fault_count(FAULT_SENDTO), 3);

    fault_script(FAULT_RECV, a, eintr2, COUNT(eintr2));
    assert_int_equal(netx_recvfrom(a, buf, sizeof buf, &from), 5);
    assert_int_equal(fault_count(FAULT_RECV), 3);
    assert_memory_equal(buf, "dgram", 5);
    assert_int_equal(netx_addr_port(&from), netx_local_port(b));
    netx_close(a);
    netx_close(b);
}

/* Random scripts --------------------------------------------------------- */

#define RANDOM_ROUNDS    20
#define RANDOM_BYTES     (256u * 1024u)
#define RANDOM_MAX_STEPS 4096 /* what fault.c holds */

/* xorshift32: small, and the same sequence on every machine, so a failing
 * round can be replayed from its seed. */
static uint32_t rng_next(uint32_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 17;
    *x ^= *x << 5;
    return *x;
}

/*
 * A random script: short transfers of 1 to short_max bytes, EINTR,
 * pass-through, and EAGAIN only when the socket is non-blocking (on a
 * blocking one it would mean a timeout).
 *
 * A pass-through send on a blocking socket hands the kernel the whole rest
 * of the buffer, which would end the faults after a few calls. So the
 * script forbids PASS until its short steps have covered half the transfer,
 * and ends once they cover three quarters. The transfer cannot finish
 * within the steps before the first PASS, so each of them, and that PASS,
 * is certain to be taken: *taken_at_least says how many that is, and the
 * test checks it, so a script that was not really played fails the round.
 */
static size_t random_script(uint32_t *rng, struct fault_step *steps, size_t short_max,
                            int nonblocking, size_t *taken_at_least)
{
    size_t n = 0;
    size_t short_sum = 0;
    size_t first_pass = 0;
    int have_pass = 0;

    while (n < RANDOM_MAX_STEPS && short_sum < RANDOM_BYTES / 4 * 3) {
        uint32_t r = rng_next(rng) % 16;
        struct fault_step *st = &steps[n];
        st->arg = 0;
        if (r < 2 && short_sum >= RANDOM_BYTES / 2) {
            st->kind = FAULT_PASS;
            if (!have_pass) {
                have_pass = 1;
                first_pass = n;
            }
        } else if (r < 11) {
            st->kind = FAULT_SHORT;
            st->arg = 1 + rng_next(rng) % short_max;
            short_sum += st->arg;
        } else if (r < 14 || !nonblocking) {
            st->kind = FAULT_EINTR;
        } else {
            st->kind = FAULT_EAGAIN;
        }
        n++;
    }
    *taken_at_least = have_pass ? first_pass + 1 : n;
    return n;
}

struct sender {
    int fd;
    const unsigned char *buf;
    size_t len;
    int rc;
    int err;
    size_t transferred;
};

/* The sending end, in a thread of its own: cmocka's asserts belong to the
 * main thread, so the results are kept for it to check after the join. */
static void *sender_main(void *arg)
{
    struct sender *sd = arg;
    sd->rc = netx_send_all(sd->fd, sd->buf, sd->len);
    sd->err = errno;
    sd->transferred = sd->rc == 0 ? sd->len : netx_last_transferred();
    /* End of stream tells the receiver nothing more is coming. */
    netx_shutdown(sd->fd, SHUT_WR);
    return NULL;
}

static void faults_random_scripts_deliver_every_byte_once(void **state)
{
    (void)state;
    unsigned char *out = malloc(RANDOM_BYTES);
    unsigned char *in = malloc(RANDOM_BYTES);
    struct fault_step *send_steps = malloc(RANDOM_MAX_STEPS * sizeof *send_steps);
    struct fault_step *recv_steps = malloc(RANDOM_MAX_STEPS * sizeof *recv_steps);
    assert_non_null(out);
    assert_non_null(in);
    assert_non_null(send_steps);
    assert_non_null(recv_steps);

    for (unsigned round = 0; round < RANDOM_ROUNDS; round++) {
        uint32_t rng = 0x9e3779b9u * (round + 1);
        int nonblocking = round % 2 == 1;
        size_t short_max = 128 + rng_next(&rng) % (4096 - 128 + 1);
        int c, s;

        tcp_pair(&c, &s);
        /* Every wait is bounded, so a lost byte fails the round instead of
         * hanging it. */
        assert_int_equal(netx_set_timeout(c, 5000), 0);
        assert_int_equal(netx_set_timeout(s, 5000), 0);
        assert_int_equal(netx_set_nonblocking(c, nonblocking), 0);
        assert_int_equal(netx_set_nonblocking(s, nonblocking), 0);
        support_pattern(out, RANDOM_BYTES, round + 100);
        memset(in, 0, RANDOM_BYTES);
        size_t send_min, recv_min;
        size_t n_send = random_script(&rng, send_steps, short_max, nonblocking, &send_min);
        size_t n_recv = random_script(&rng, recv_steps, short_max, nonblocking, &recv_min);
        fault_script(FAULT_SEND, c, send_steps, n_send);
        fault_script(FAULT_RECV, s, recv_steps, n_recv);

        struct sender sd = {c, out, RANDOM_BYTES, -1, 0, 0};
        pthread_t t;
        assert_int_equal(pthread_create(&t, NULL, sender_main, &sd), 0);
        ssize_t got = netx_recv_all(s, in, RANDOM_BYTES);
        int recv_err = errno;
        pthread_join(t, NULL);

        size_t send_taken = n_send - fault_pending(FAULT_SEND);
        size_t recv_taken = n_recv - fault_pending(FAULT_RECV);
        if (sd.rc != 0 || got != (ssize_t)RANDOM_BYTES) {
            fail_msg("round %u (%s): send_all %d (%s, %zu bytes), recv_all %zd (%s)", round,
                     nonblocking ? "non-blocking" : "blocking", sd.rc, strerror(sd.err),
                     sd.transferred, got, strerror(recv_err));
        }
        if (memcmp(in, out, RANDOM_BYTES) != 0) {
            fail_msg("round %u: the bytes differ from what was sent", round);
        }
        if (send_taken < send_min || recv_taken < recv_min) {
            fail_msg("round %u: only %zu of %zu send steps and %zu of %zu recv steps taken", round,
                     send_taken, send_min, recv_taken, recv_min);
        }

        /* Exactly once: after the whole buffer, the stream ends. */
        fault_reset();
        assert_int_equal(netx_set_nonblocking(s, 0), 0);
        char extra;
        assert_int_equal(netx_recv(s, &extra, 1), 0);
        netx_close(c);
        netx_close(s);
    }
    free(out);
    free(in);
    free(send_steps);
    free(recv_steps);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TEST(faults_send_all_short_writes_deliver_in_order),
        TEST(faults_recv_all_short_reads_assemble_buffer),
        TEST(faults_send_recv_all_eintr_retried_no_loss),
        TEST(faults_send_recv_eintr_never_returned),
        TEST(faults_tcp_connect_eintr_still_connects),
        TEST(faults_connect_eintr_still_connects),
        TEST(faults_connect_eintr_then_refused_reports_refused),
        TEST(faults_accept_eintr_and_econnaborted_skipped),
        TEST(faults_connect_poll_eintr_keeps_waiting),
        TEST(faults_send_all_nonblocking_eagain_waits_then_completes),
        TEST(faults_recv_all_nonblocking_eagain_waits_then_completes),
        TEST(faults_blocking_eagain_reported_as_etimedout),
        TEST(faults_send_all_econnreset_reports_transferred),
        TEST(faults_recv_all_econnreset_reports_transferred),
        TEST(faults_read_n_econnreset_keeps_received_bytes),
        TEST(faults_close_eintr_reports_success_once),
        TEST(faults_close_eio_reported),
        TEST(faults_tcp_connect_refused_leaks_nothing),
        TEST(faults_tcp_connect_poll_error_leaks_nothing),
        TEST(faults_tcp_listen_addrinuse_leaks_nothing),
        TEST(faults_retried_io_leaves_errno_and_record_alone),
        TEST(faults_retried_connect_accept_leave_errno_and_record_alone),
        TEST(faults_sendto_recvfrom_eintr_retried),
        TEST(faults_random_scripts_deliver_every_byte_once),
    };
    return cmocka_run_group_tests_name("faults", tests, NULL, NULL);
}
