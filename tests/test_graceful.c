/*
 * test_graceful.c - how every server stops, and what cannot stop it.
 *
 *  - A graceful stop (SIGTERM or SIGINT): the server stops accepting and
 *    lets the clients it has finish. Every byte a client sent before the
 *    stop - on its way, or waiting in the socket's receive queue - comes
 *    back, within the grace period (-g); then it exits 0. A second signal
 *    stops it at once.
 *  - Started with standard descriptors closed, a server serves anyway.
 *  - A standard error nobody reads, or that fails, never stalls or stops a
 *    server.
 */
#include "proc.h"
#include "support.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define WAIT_MS 10000 /* for a program to start or end: generous, for ASan */
#define MIB     (1024 * 1024)

static struct proc server;
static struct proc helper;

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Start server `name` on 127.0.0.1, any free port, with extra options;
 * returns its port. */
static int start_server(const char *name, const char *const opts[])
{
    const char *argv[16];
    int n = 0;
    argv[n++] = proc_path(name);
    argv[n++] = "-H";
    argv[n++] = "127.0.0.1";
    argv[n++] = "-p";
    argv[n++] = "0";
    for (int i = 0; opts != NULL && opts[i] != NULL; i++) {
        argv[n++] = opts[i];
    }
    argv[n] = NULL;
    assert_int_equal(proc_start(&server, argv, NULL, 0), 0);
    int port = proc_wait_listening(&server, WAIT_MS);
    if (port <= 0) {
        fail_msg("%s did not start: %s%s", name, server.out_buf, server.err_buf);
    }
    return port;
}

static int connect_to(int port)
{
    int fd = netx_tcp_connect("127.0.0.1", (uint16_t)port, WAIT_MS);
    if (fd < 0) {
        fail_msg("connect: %s", netx_last_error());
    }
    return fd;
}

/* Send a line and read its echo back, or fail. */
static void assert_echoes(int fd, const char *line)
{
    char back[256];
    size_t len = strlen(line);
    assert_int_equal(netx_set_timeout(fd, WAIT_MS), 0);
    assert_int_equal(netx_send_all(fd, line, len), 0);
    assert_int_equal(netx_recv_all(fd, back, len), (ssize_t)len);
    assert_memory_equal(back, line, len);
}

/* ------------------------------------------------------------------------
 * Many clients in the middle of long echoes when the stop comes
 * ------------------------------------------------------------------------ */

/*
 * One client of the test: it sends LEN bytes of its own pattern, ends its
 * side (shutdown(SHUT_WR)), and checks every byte that comes back, until
 * the server's end of stream. Each client's bytes are the shared pattern
 * from its own offset, so a byte that goes to the wrong client is caught.
 */
struct flow {
    int fd;
    size_t sent;
    size_t got;
    int shut; /* sent everything and half-closed */
    int eof;  /* the server ended the stream */
    int bad;  /* a byte differed, or the connection failed */
};

#define FLOW_STEP 4099 /* offset between two clients' patterns */

static unsigned char *pattern; /* len + clients * FLOW_STEP bytes */

static void make_pattern(size_t len, int clients)
{
    free(pattern);
    pattern = malloc(len + (size_t)clients * FLOW_STEP);
    assert_non_null(pattern);
    support_pattern(pattern, len + (size_t)clients * FLOW_STEP, 42);
}

/* Move what can move now on every flow; returns how many are not done. */
static int pump_flows(struct flow *f, int n, size_t len, int timeout_ms)
{
    struct pollfd p[64];
    int open = 0;
    for (int i = 0; i < n; i++) {
        short ev = 0;
        if (!f[i].eof && !f[i].bad) {
            ev = POLLIN;
            if (!f[i].shut) {
                ev |= POLLOUT;
            }
            open++;
        }
        p[i] = (struct pollfd){.fd = ev != 0 ? f[i].fd : -1, .events = ev, .revents = 0};
    }
    if (open == 0) {
        return 0;
    }
    if (poll(p, (nfds_t)n, timeout_ms) <= 0) {
        return open;
    }
    static unsigned char buf[256 * 1024];
    for (int i = 0; i < n; i++) {
        struct flow *x = &f[i];
        const unsigned char *mine = pattern + (size_t)i * FLOW_STEP;
        if ((p[i].revents & POLLOUT) && !x->shut) {
            size_t want = len - x->sent < 65536 ? len - x->sent : 65536;
            ssize_t w = send(x->fd, mine + x->sent, want, MSG_NOSIGNAL | MSG_DONTWAIT);
            if (w > 0) {
                x->sent += (size_t)w;
            } else if (w < 0 && errno != EAGAIN && errno != EINTR) {
                x->bad = 1;
            }
            if (x->sent == len) {
                shutdown(x->fd, SHUT_WR);
                x->shut = 1;
            }
        }
        if (p[i].revents & (POLLIN | POLLHUP | POLLERR)) {
            ssize_t r = recv(x->fd, buf, sizeof buf, MSG_DONTWAIT);
            if (r > 0) {
                if (x->got + (size_t)r > len || memcmp(buf, mine + x->got, (size_t)r) != 0) {
                    x->bad = 1;
                }
                x->got += (size_t)r;
            } else if (r == 0) {
                x->eof = 1;
            } else if (errno != EAGAIN && errno != EINTR) {
                x->bad = 1;
            }
        }
    }
    return open;
}

/*
 * n clients each start an echo of len bytes; once every one of them has
 * had at least a quarter of its echo back, SIGTERM. Each must then get its
 * whole echo, and the server must exit 0 on its own.
 */
static void check_drain(const char *name, int n, size_t len)
{
    static const char *const opts[] = {"-g", "60", "-n", "100", NULL};
    int port = start_server(name, strcmp(name, "echo_server") == 0 ? (const char *const[]){"-g", "60", NULL}
                                                                      : opts);
    make_pattern(len, n);
    struct flow f[64];
    assert_true(n <= 64);
    for (int i = 0; i < n; i++) {
        f[i] = (struct flow){.fd = connect_to(port)};
        assert_int_equal(netx_set_nonblocking(f[i].fd, 1), 0);
    }
    long long limit = proc_now_ms() + 60000;
    int quarter = 0;
    while (!quarter && proc_now_ms() < limit) {
        pump_flows(f, n, len, 100);
        quarter = 1;
        for (int i = 0; i < n; i++) {
            quarter = quarter && (f[i].got >= len / 4 || f[i].bad);
        }
    }
    assert_true(quarter);
    assert_int_equal(kill(server.pid, SIGTERM), 0);

    while (pump_flows(f, n, len, 100) > 0 && proc_now_ms() < limit) {
    }
    int status = proc_finish(&server, WAIT_MS);
    for (int i = 0; i < n; i++) {
        if (f[i].bad || !f[i].eof || f[i].got != len) {
            fail_msg("%s: client %d of %d: sent %zu, got back %zu of %zu%s%s; server said: %s",
                     name, i, n, f[i].sent, f[i].got, len, f[i].bad ? ", wrong or reset" : "",
                     f[i].eof ? "" : ", no end of stream", server.err_buf);
        }
        netx_close(f[i].fd);
    }
    assert_int_equal(status, 0);
    /* The servers that serve many clients say they are draining. echo_server
     * says it only when the stop finds it waiting on its client: one that
     * never has to wait just finishes the echo and then exits. */
    if (strcmp(name, "echo_server") != 0) {
        assert_non_null(strstr(server.err_buf, "stopping:"));
    }
    free(pattern);
    pattern = NULL;
}

static void graceful_poll_server_finishes_40_echoes_of_8_mib(void **state)
{
    (void)state;
    check_drain("poll_server", 40, 8 * MIB);
}

static void graceful_threaded_server_finishes_40_echoes_of_8_mib(void **state)
{
    (void)state;
    check_drain("threaded_server", 40, 8 * MIB);
}

static void graceful_event_server_finishes_40_echoes_of_8_mib(void **state)
{
    (void)state;
    check_drain("event_server", 40, 8 * MIB);
}

static void graceful_echo_server_finishes_current_echo_of_8_mib(void **state)
{
    (void)state;
    check_drain("echo_server", 1, 8 * MIB);
}

/* ------------------------------------------------------------------------
 * Bytes waiting in the receive queue when the stop comes
 * ------------------------------------------------------------------------ */

/*
 * The server is frozen (SIGSTOP) while a client sends a line and ends its
 * side, and while the stop signal arrives: the line waits in the server's
 * receive queue. Woken up, the server must still echo it, then exit 0.
 */
static void check_queued_line(const char *name)
{
    static const char *const opts[] = {"-g", "30", NULL};
    int port = start_server(name, opts);
    int fd = connect_to(port);
    assert_echoes(fd, "first\n"); /* it is being served */
    assert_int_equal(kill(server.pid, SIGSTOP), 0);
    assert_int_equal(netx_send_all(fd, "queued before the stop\n", 23), 0);
    assert_int_equal(netx_shutdown(fd, SHUT_WR), 0);
    assert_int_equal(kill(server.pid, SIGTERM), 0);
    sleep_ms(50);
    assert_int_equal(kill(server.pid, SIGCONT), 0);
    char back[64];
    ssize_t n = netx_recv_all(fd, back, sizeof back); /* to the end of stream */
    int status = proc_finish(&server, WAIT_MS);
    netx_close(fd);
    assert_int_equal(n, 23);
    assert_memory_equal(back, "queued before the stop\n", 23);
    assert_int_equal(status, 0);
}

static void graceful_poll_server_echoes_queued_line(void **state)
{
    (void)state;
    check_queued_line("poll_server");
}

static void graceful_threaded_server_echoes_queued_line(void **state)
{
    (void)state;
    check_queued_line("threaded_server");
}

static void graceful_event_server_echoes_queued_line(void **state)
{
    (void)state;
    check_queued_line("event_server");
}

static void graceful_echo_server_echoes_queued_line(void **state)
{
    (void)state;
    check_queued_line("echo_server");
}

/* udp_server answers the datagrams already queued when the stop comes. */
static void graceful_udp_server_answers_queued_datagrams(void **state)
{
    (void)state;
    int port = start_server("udp_server", NULL);
    int u = netx_udp_connect("127.0.0.1", (uint16_t)port);
    assert_true(u >= 0);
    assert_int_equal(kill(server.pid, SIGSTOP), 0);
    enum { N = 20 };
    for (int i = 0; i < N; i++) {
        char msg[16];
        int len = snprintf(msg, sizeof msg, "datagram %d", i);
        assert_int_equal(netx_send(u, msg, (size_t)len), len);
    }
    assert_int_equal(kill(server.pid, SIGTERM), 0);
    sleep_ms(50);
    assert_int_equal(kill(server.pid, SIGCONT), 0);
    int status = proc_finish(&server, WAIT_MS);
    assert_int_equal(netx_set_timeout(u, 2000), 0);
    for (int i = 0; i < N; i++) {
        char want[16];
        char got[16];
        int len = snprintf(want, sizeof want, "datagram %d", i);
        ssize_t n = netx_recv(u, got, sizeof got);
        if (n != len || memcmp(got, want, (size_t)len) != 0) {
            fail_msg("reply %d: %s", i, n < 0 ? netx_last_error() : "not the datagram sent");
        }
    }
    netx_close(u);
    assert_int_equal(status, 0);
}

/* hello_server, stopped while its client has not answered yet, waits for
 * the answer and prints it, then exits 0. */
static void graceful_hello_server_finishes_exchange(void **state)
{
    (void)state;
    int port = start_server("hello_server", NULL);
    int fd = connect_to(port);
    char hello[32];
    assert_int_equal(netx_set_timeout(fd, WAIT_MS), 0);
    assert_int_equal(netx_recv_all(fd, hello, 18), 18);
    assert_int_equal(kill(server.pid, SIGTERM), 0);
    sleep_ms(200);
    assert_int_equal(netx_send_all(fd, "Thanks, Server!", 15), 0);
    int status = proc_finish(&server, WAIT_MS);
    netx_close(fd);
    assert_int_equal(status, 0);
    assert_non_null(strstr(server.out_buf, "Client says: Thanks, Server!\n"));
}

/* ------------------------------------------------------------------------
 * The grace period, and the second signal
 * ------------------------------------------------------------------------ */

/*
 * A client that neither sends nor closes: the server keeps it for the grace
 * period (1 s here), then closes it and exits 0. A client that comes after
 * the stop is refused: the listener is closed.
 */
static void check_grace_period_ends(const char *name)
{
    static const char *const opts[] = {"-g", "1", NULL};
    int port = start_server(name, opts);
    int fd = connect_to(port);
    assert_echoes(fd, "idle after this\n");
    long long t = proc_now_ms();
    assert_int_equal(kill(server.pid, SIGTERM), 0);
    assert_int_equal(proc_wait_output(&server, "stopping:", WAIT_MS), 0);
    int late = netx_tcp_connect("127.0.0.1", (uint16_t)port, 2000);
    int late_err = errno;
    int status = proc_finish(&server, WAIT_MS);
    long long took = proc_now_ms() - t;
    char byte;
    ssize_t end = netx_recv(fd, &byte, 1);
    netx_close(fd);
    if (late >= 0) {
        netx_close(late);
        fail_msg("%s accepted a client after the stop", name);
    }
    assert_int_equal(late_err, ECONNREFUSED);
    assert_int_equal(status, 0);
    assert_int_equal(end, 0); /* closed by the server, in order */
    if (took < 800 || took > 6000) {
        fail_msg("%s with -g 1 exited %lld ms after SIGTERM", name, took);
    }
}

static void graceful_poll_server_grace_period_ends(void **state)
{
    (void)state;
    check_grace_period_ends("poll_server");
}

static void graceful_threaded_server_grace_period_ends(void **state)
{
    (void)state;
    check_grace_period_ends("threaded_server");
}

static void graceful_event_server_grace_period_ends(void **state)
{
    (void)state;
    check_grace_period_ends("event_server");
}

static void graceful_echo_server_grace_period_ends(void **state)
{
    (void)state;
    check_grace_period_ends("echo_server");
}

/* Idle clients, a long grace period, and Ctrl-C twice: out at once. */
static void check_second_signal(const char *name, int sig)
{
    static const char *const opts[] = {"-g", "60", NULL};
    int port = start_server(name, opts);
    int fd = connect_to(port);
    assert_echoes(fd, "idle after this\n");
    long long t = proc_now_ms();
    int status = proc_stop_now(&server, sig, WAIT_MS);
    long long took = proc_now_ms() - t;
    netx_close(fd);
    assert_int_equal(status, 0);
    if (took > 3000) {
        fail_msg("%s took %lld ms after the second signal", name, took);
    }
}

static void graceful_second_sigint_stops_every_server_at_once(void **state)
{
    (void)state;
    check_second_signal("poll_server", SIGINT);
    check_second_signal("event_server", SIGINT);
    check_second_signal("threaded_server", SIGINT);
    check_second_signal("echo_server", SIGINT);
}

/* -g 0: no grace at all. */
static void graceful_grace_zero_stops_at_once(void **state)
{
    (void)state;
    static const char *const names[] = {"poll_server", "event_server", "threaded_server",
                                        "echo_server"};
    for (int i = 0; i < 4; i++) {
        static const char *const opts[] = {"-g", "0", NULL};
        int port = start_server(names[i], opts);
        int fd = connect_to(port);
        assert_echoes(fd, "idle after this\n");
        long long t = proc_now_ms();
        int status = proc_stop(&server, SIGTERM, WAIT_MS);
        long long took = proc_now_ms() - t;
        netx_close(fd);
        assert_int_equal(status, 0);
        if (took > 3000) {
            fail_msg("%s -g 0 took %lld ms to stop", names[i], took);
        }
    }
}

static void graceful_bad_grace_exits_two(void **state)
{
    (void)state;
    static const char *const names[] = {"poll_server", "event_server", "threaded_server",
                                        "echo_server"};
    static const char *const says[] = {
        "not a number from 0 to 3600", "not a number from 0 to 3600",
        "not a number of seconds from 0 to 3600", "not a number of seconds from 0 to 3600"};
    static const char *const values[] = {"-1", "3601", "x", ""};
    for (int i = 0; i < 4; i++) {
        for (int v = 0; v < 4; v++) {
            char reason[96];
            snprintf(reason, sizeof reason, "-g \"%s\": %s", values[v], says[i]);
            proc_check_bad_usage(&helper, names[i], "-g", values[v], reason);
        }
    }
}

/* ------------------------------------------------------------------------
 * Standard descriptors closed, standard error stalled
 * ------------------------------------------------------------------------ */

/* A port free a moment ago (for a server whose stdout we cannot read). */
static int free_port(void)
{
    int lfd = netx_tcp_listen("127.0.0.1", 0, 0);
    assert_true(lfd >= 0);
    int port = netx_local_port(lfd);
    netx_close(lfd);
    return port;
}

/* Connect, retrying while the server starts; -1 after WAIT_MS. */
static int connect_when_up(int port)
{
    long long limit = proc_now_ms() + WAIT_MS;
    while (proc_now_ms() < limit) {
        int fd = netx_tcp_connect("127.0.0.1", (uint16_t)port, 1000);
        if (fd >= 0) {
            return fd;
        }
        sleep_ms(20);
    }
    return -1;
}

/*
 * Start `name` with the descriptors in `closing` closed ("0<&- 1>&-"),
 * through the shell, serve two clients (the second over the cap of -n 1, so
 * that the server has something to say on stderr), and check that it still
 * serves a second later, then stops with 0.
 */
static void check_closed_stdio(const char *name, const char *closing)
{
    char script[128];
    char port_text[16];
    int port = free_port();
    snprintf(script, sizeof script, "exec \"$0\" \"$@\" %s", closing);
    proc_port_text(port, port_text, sizeof port_text);
    const char *argv[] = {"/bin/sh",  "-c", script, proc_path(name), "-H", "127.0.0.1",
                          "-p",       port_text,    "-n",            "1",  NULL};
    if (strcmp(name, "echo_server") == 0 || strcmp(name, "hello_server") == 0) {
        argv[8] = NULL; /* no -n */
    }
    assert_int_equal(proc_start(&server, argv, NULL, 0), 0);
    int fd = connect_when_up(port);
    if (fd < 0) {
        proc_stop(&server, SIGKILL, WAIT_MS);
        fail_msg("%s with %s never served (exit %d): %s", name, closing, server.status,
                 server.err_buf);
    }
    if (strcmp(name, "hello_server") == 0) {
        char hello[18];
        assert_int_equal(netx_set_timeout(fd, WAIT_MS), 0);
        assert_int_equal(netx_recv_all(fd, hello, 18), 18);
        assert_int_equal(netx_send_all(fd, "Thanks, Server!", 15), 0);
        char end;
        assert_int_equal(netx_recv(fd, &end, 1), 0);
        netx_close(fd);
        assert_int_equal(proc_finish(&server, WAIT_MS), 0);
        return;
    }
    assert_echoes(fd, "with closed stdio\n");
    if (strcmp(name, "echo_server") != 0) {
        int over = connect_to(port); /* refused with "server busy": a log line */
        netx_close(over);
    }
    sleep_ms(1000);
    assert_echoes(fd, "a second later\n");
    netx_close(fd);
    assert_int_equal(proc_stop(&server, SIGTERM, WAIT_MS), 0);
}

static void graceful_servers_serve_with_stdin_and_stdout_closed(void **state)
{
    (void)state;
    check_closed_stdio("poll_server", "0<&- 1>&-");
    check_closed_stdio("event_server", "0<&- 1>&-");
    check_closed_stdio("threaded_server", "0<&- 1>&-");
    check_closed_stdio("echo_server", "0<&- 1>&-");
    check_closed_stdio("hello_server", "0<&- 1>&-");
}

static void graceful_servers_serve_with_stdout_and_stderr_closed(void **state)
{
    (void)state;
    check_closed_stdio("poll_server", "1>&- 2>&-");
    check_closed_stdio("event_server", "1>&- 2>&-");
    check_closed_stdio("threaded_server", "1>&- 2>&-");
    check_closed_stdio("echo_server", "0<&- 1>&- 2>&-");
}

/*
 * threaded_server -n 1 with a standard error nobody reads: one client holds
 * the only place, and a flood of others is refused, each refusal a log
 * line - far more than the pipe holds. Every one of them must still be
 * told "server busy" at once, a client must be served as soon as the place
 * is free, and SIGTERM must stop it.
 */
static void graceful_threaded_stalled_stderr_never_blocks(void **state)
{
    (void)state;
    static const char *const opts[] = {"-n", "1", "-g", "1", NULL};
    int port = start_server("threaded_server", opts);
    int holder = connect_to(port);
    assert_echoes(holder, "holding the place\n");
    /* From here on nobody reads the server's stderr. */
    long long slowest = 0;
    for (int i = 0; i < 2000; i++) {
        long long t = proc_now_ms();
        int fd = connect_to(port);
        char busy[16];
        assert_int_equal(netx_set_timeout(fd, WAIT_MS), 0);
        ssize_t n = netx_recv_all(fd, busy, 12);
        netx_close(fd);
        if (n != 12 || memcmp(busy, "server busy\n", 12) != 0) {
            fail_msg("refused client %d was not told \"server busy\"", i);
        }
        if (proc_now_ms() - t > slowest) {
            slowest = proc_now_ms() - t;
        }
    }
    netx_close(holder);
    sleep_ms(100);
    int fd = connect_when_up(port);
    assert_true(fd >= 0);
    assert_echoes(fd, "the place is free\n");
    netx_close(fd);
    if (slowest > 5000) {
        fail_msg("a refusal took %lld ms: the server waited for its log", slowest);
    }
    assert_int_equal(proc_stop(&server, SIGTERM, WAIT_MS), 0);
    /* The log was summarised, not lost in silence. */
    assert_non_null(strstr(server.err_buf, "the server is busy"));
}

/*
 * threaded_server with a stalled stderr and 300 clients that reset their
 * connection in the middle of an echo: each of their threads has an error
 * to report. None may be left blocked on the log, and SIGTERM stops the
 * server.
 */
static void graceful_threaded_stalled_stderr_resets_then_stop(void **state)
{
    (void)state;
    static const char *const opts[] = {"-n", "400", "-g", "1", NULL};
    int port = start_server("threaded_server", opts);
    static unsigned char big[256 * 1024];
    for (int i = 0; i < 300; i++) {
        int fd = connect_to(port);
        assert_int_equal(netx_set_timeout(fd, 2000), 0);
        /* Send more than the buffers hold without reading, then reset. */
        assert_int_equal(netx_set_nonblocking(fd, 1), 0);
        (void)netx_send(fd, big, sizeof big);
        struct linger reset = {.l_onoff = 1, .l_linger = 0};
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &reset, sizeof reset);
        netx_close(fd);
    }
    int fd = connect_when_up(port);
    assert_true(fd >= 0);
    assert_echoes(fd, "still serving\n");
    netx_close(fd);
    long long t = proc_now_ms();
    assert_int_equal(proc_stop(&server, SIGTERM, WAIT_MS), 0);
    if (proc_now_ms() - t > 5000) {
        fail_msg("threaded_server took %lld ms to stop", proc_now_ms() - t);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TEST(graceful_poll_server_finishes_40_echoes_of_8_mib),
        TEST(graceful_threaded_server_finishes_40_echoes_of_8_mib),
        TEST(graceful_event_server_finishes_40_echoes_of_8_mib),
        TEST(graceful_echo_server_finishes_current_echo_of_8_mib),
        TEST(graceful_poll_server_echoes_queued_line),
        TEST(graceful_threaded_server_echoes_queued_line),
        TEST(graceful_event_server_echoes_queued_line),
        TEST(graceful_echo_server_echoes_queued_line),
        TEST(graceful_udp_server_answers_queued_datagrams),
        TEST(graceful_hello_server_finishes_exchange),
        TEST(graceful_poll_server_grace_period_ends),
        TEST(graceful_threaded_server_grace_period_ends),
        TEST(graceful_event_server_grace_period_ends),
        TEST(graceful_echo_server_grace_period_ends),
        TEST(graceful_second_sigint_stops_every_server_at_once),
        TEST(graceful_grace_zero_stops_at_once),
        TEST(graceful_bad_grace_exits_two),
        TEST(graceful_servers_serve_with_stdin_and_stdout_closed),
        TEST(graceful_servers_serve_with_stdout_and_stderr_closed),
        TEST(graceful_threaded_stalled_stderr_never_blocks),
        TEST(graceful_threaded_stalled_stderr_resets_then_stop),
    };
    return cmocka_run_group_tests(tests, NULL, proc_kill_leftovers);
}
