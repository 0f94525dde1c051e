/*
 * test_threaded.c - threaded_server (the article's guide step 5) end to end:
 * 120 clients at once, our echo_client and an outside client against it, the
 * cap on clients and its "server busy" answer, the number of threads it
 * runs, the idle timeout, a client that never reads, clients that
 * misbehave, shutdown on SIGTERM and SIGINT, its command line, and a port
 * that is already taken.
 *
 * The clients are the test process's own sockets, so every byte can be
 * checked; the server is the real program, started by proc_start() and
 * watched through /proc (its threads and descriptors).
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
#include <unistd.h>

#define WAIT_MS 10000 /* for a program to start or end: generous, for ASan */
#define IO_MS   5000  /* the longest one send or recv of a test may block */

static struct proc server, client;

/*
 * Start threaded_server on 127.0.0.1, on a free port, with -n max and
 * -t idle when they are not NULL; return its port.
 */
static int start_server(const char *max, const char *idle)
{
    proc_abandon(&server);
    const char *argv[10];
    int n = 0;
    argv[n++] = proc_path("threaded_server");
    argv[n++] = "-H";
    argv[n++] = "127.0.0.1";
    argv[n++] = "-p";
    argv[n++] = "0";
    if (max != NULL) {
        argv[n++] = "-n";
        argv[n++] = max;
    }
    if (idle != NULL) {
        argv[n++] = "-t";
        argv[n++] = idle;
    }
    argv[n] = NULL;
    assert_int_equal(proc_start(&server, argv, NULL, 0), 0);
    int port = proc_wait_listening(&server, WAIT_MS);
    if (port <= 0) {
        fprintf(stderr, "threaded_server said: %s%s\n", server.out_buf, server.err_buf);
    }
    assert_true(port > 0);
    return port;
}

/* Send sig to the server and collect it; its exit status. */
static int stop_server(int sig, int timeout_ms)
{
    int status = proc_stop(&server, sig, timeout_ms);
    if (status != 0) {
        fprintf(stderr, "threaded_server ended with %d; its stderr:\n%s\n", status, server.err_buf);
    }
    return status;
}

/* Stop it as two Ctrl-C do: a graceful stop, then at once (proc.h). */
static int stop_server_now(int sig, int timeout_ms)
{
    int status = proc_stop_now(&server, sig, timeout_ms);
    if (status != 0) {
        fprintf(stderr, "threaded_server ended with %d; its stderr:\n%s\n", status, server.err_buf);
    }
    return status;
}

/* A client of the server: connected, and no recv or send of it can hang. */
static int connect_client(int port)
{
    int fd = netx_tcp_connect("127.0.0.1", (uint16_t)port, IO_MS);
    if (fd < 0) {
        fprintf(stderr, "%s\n", netx_last_error());
    }
    assert_true(fd >= 0);
    assert_int_equal(netx_set_timeout(fd, IO_MS), 0);
    return fd;
}

/* Send len bytes and read them back: 1 if exactly those came back. */
static int echoes(int fd, const void *msg, size_t len)
{
    unsigned char back[8192];
    if (len > sizeof back || netx_send_all(fd, msg, len) != 0) {
        return 0;
    }
    ssize_t n = netx_recv_all(fd, back, len);
    return n == (ssize_t)len && memcmp(back, msg, len) == 0;
}

/* The same, for a short text, saying what went wrong. */
static void assert_echoes(int fd, const char *msg)
{
    char back[256];
    size_t len = strlen(msg);
    assert_true(len < sizeof back);
    if (netx_send_all(fd, msg, len) != 0) {
        fail_msg("send \"%s\": %s", msg, netx_last_error());
    }
    ssize_t n = netx_recv_all(fd, back, len);
    if (n < 0) {
        fail_msg("the echo of \"%s\": %s", msg, netx_last_error());
        return; /* fail_msg() does not return; this tells the compiler */
    }
    back[n] = '\0';
    if ((size_t)n < len) {
        fail_msg("sent \"%s\", got back only \"%s\", then the end of the stream", msg, back);
    }
    if (memcmp(back, msg, len) != 0) {
        fail_msg("sent \"%s\", got back \"%s\"", msg, back);
    }
}

/* A refused client reads exactly "server busy\n", then end of stream,
 * within 3 s. */
static void assert_busy(int fd)
{
    char buf[64];
    size_t got = 0;
    int ended = 0;
    long long start = proc_now_ms();
    /* Each recv is bounded by the socket's timeout, the loop by its count. */
    for (int i = 0; i < 64 && !ended && got < sizeof buf - 1; i++) {
        ssize_t n = netx_recv(fd, buf + got, sizeof buf - 1 - got);
        if (n < 0) {
            fail_msg("a refused client: %s", netx_last_error());
        }
        if (n == 0) {
            ended = 1;
        }
        got += (size_t)n;
    }
    buf[got] = '\0';
    assert_string_equal(buf, "server busy\n");
    assert_true(ended);
    assert_true(proc_now_ms() - start < 3000);
}

/* The server closed this client: end of stream, or a reset. */
static void assert_closed_by_server(int fd)
{
    char c;
    ssize_t n = netx_recv(fd, &c, 1);
    if (!(n == 0 || (n < 0 && errno == ECONNRESET))) {
        fail_msg("expected end of stream or a reset, got %zd (%s)", n,
                 n < 0 ? netx_last_error() : "data");
    }
}

/* Wait up to timeout_ms for the server to have `want` descriptors open;
 * the last count seen. */
static int wait_server_fds(int want, int timeout_ms)
{
    long long deadline = proc_now_ms() + timeout_ms;
    for (;;) {
        int n = proc_fd_count(server.pid);
        if (n == want || proc_now_ms() >= deadline) {
            return n;
        }
        poll(NULL, 0, 20);
    }
}

/* ------------------------------------------------------------------------
 * Many clients at once
 * ------------------------------------------------------------------------ */

#define MANY 120

/* One client's side of the exchange: what it sends and what came back. */
struct flow {
    int fd;
    unsigned char *out;
    unsigned char *in;
    size_t len;
    size_t sent;
    size_t got;
    int ended;
};

/*
 * Drive every flow at once with one poll() loop over non-blocking sockets:
 * each sends all of out while reading its echo into in, so the server has
 * all 120 clients in the middle of an exchange at the same time.
 */
static void run_flows(struct flow *f, int count, int timeout_ms)
{
    struct pollfd p[MANY];
    int owner[MANY];
    int done = 0;
    long long deadline = proc_now_ms() + timeout_ms;
    while (done < count && proc_now_ms() < deadline) {
        int k = 0;
        for (int i = 0; i < count; i++) {
            if (f[i].got < f[i].len) {
                short ev = POLLIN;
                if (f[i].sent < f[i].len) {
                    ev |= POLLOUT;
                }
                p[k] = (struct pollfd){.fd = f[i].fd, .events = ev};
                owner[k++] = i;
            }
        }
        int r = poll(p, (nfds_t)k, proc_ms_until(deadline));
        assert_true(r >= 0);
        for (int j = 0; j < k; j++) {
            struct flow *c = &f[owner[j]];
            if ((p[j].revents & POLLOUT) && c->sent < c->len) {
                ssize_t n = netx_send(c->fd, c->out + c->sent, c->len - c->sent);
                if (n < 0 && errno != EAGAIN) {
                    fail_msg("client %d: %s", owner[j], netx_last_error());
                }
                if (n > 0) {
                    c->sent += (size_t)n;
                }
            }
            if (p[j].revents & (POLLIN | POLLHUP | POLLERR)) {
                ssize_t n = netx_recv(c->fd, c->in + c->got, c->len - c->got);
                if (n == 0) {
                    fail_msg("client %d: the stream ended after %zu of %zu bytes", owner[j], c->got,
                             c->len);
                }
                if (n < 0 && errno != EAGAIN) {
                    fail_msg("client %d: %s", owner[j], netx_last_error());
                }
                if (n > 0) {
                    c->got += (size_t)n;
                    if (c->got == c->len) {
                        done++;
                    }
                }
            }
        }
    }
    assert_int_equal(done, count);
}

/*
 * After the echoes: nothing more may follow. Each client says it has
 * finished sending; the server must then close, and what arrives before
 * that can only be bytes it should not have sent.
 */
static void expect_only_end_of_stream(struct flow *f, int count, int timeout_ms)
{
    struct pollfd p[MANY];
    int owner[MANY];
    int ended = 0;
    long long deadline = proc_now_ms() + timeout_ms;
    for (int i = 0; i < count; i++) {
        assert_int_equal(netx_shutdown(f[i].fd, SHUT_WR), 0);
    }
    while (ended < count && proc_now_ms() < deadline) {
        int k = 0;
        for (int i = 0; i < count; i++) {
            if (!f[i].ended) {
                p[k] = (struct pollfd){.fd = f[i].fd, .events = POLLIN};
                owner[k++] = i;
            }
        }
        int r = poll(p, (nfds_t)k, proc_ms_until(deadline));
        assert_true(r >= 0);
        for (int j = 0; j < k; j++) {
            if (p[j].revents == 0) {
                continue;
            }
            unsigned char extra[256];
            ssize_t n = netx_recv(f[owner[j]].fd, extra, sizeof extra);
            if (n > 0) {
                fail_msg("client %d: %zd bytes more than it sent", owner[j], n);
            }
            if (n < 0 && errno != EAGAIN) {
                fail_msg("client %d: %s", owner[j], netx_last_error());
            }
            if (n == 0) {
                f[owner[j]].ended = 1;
                ended++;
            }
        }
    }
    assert_int_equal(ended, count);
}

static void threaded_many_clients_each_echoed_exactly(void **state)
{
    (void)state;
    int port = start_server("200", NULL);
    int baseline = proc_fd_count(server.pid);
    assert_true(baseline > 0);

    struct flow *f = calloc(MANY, sizeof *f);
    assert_non_null(f);
    /* Every connection is open before any byte is sent, so all 120 are
     * being served at the same time. */
    for (int i = 0; i < MANY; i++) {
        f[i].fd = connect_client(port);
        assert_int_equal(netx_set_nonblocking(f[i].fd, 1), 0);
        /* A few KiB each, every length different, every pattern too: a
         * byte delivered to the wrong client, or twice, shows. */
        f[i].len = 2048 + (size_t)i * 41;
        f[i].out = malloc(f[i].len);
        f[i].in = malloc(f[i].len);
        assert_non_null(f[i].out);
        assert_non_null(f[i].in);
        support_pattern(f[i].out, f[i].len, (unsigned)i + 1);
    }

    run_flows(f, MANY, 8000);
    for (int i = 0; i < MANY; i++) {
        assert_int_equal(f[i].got, f[i].len);
        assert_memory_equal(f[i].in, f[i].out, f[i].len);
    }
    expect_only_end_of_stream(f, MANY, 5000);

    for (int i = 0; i < MANY; i++) {
        assert_int_equal(netx_close(f[i].fd), 0);
        free(f[i].out);
        free(f[i].in);
    }
    free(f);

    /* Each client thread closed its socket: nothing is left open. */
    assert_int_equal(wait_server_fds(baseline, 3000), baseline);
    assert_int_equal(stop_server(SIGTERM, WAIT_MS), 0);
}

/* ------------------------------------------------------------------------
 * Other clients
 * ------------------------------------------------------------------------ */

static void threaded_echo_client_output_exact(void **state)
{
    (void)state;
    char port[8];
    snprintf(port, sizeof port, "%d", start_server("4", NULL));
    proc_check_echo_client_exact(&client, port);

    assert_int_equal(stop_server(SIGTERM, WAIT_MS), 0);
}

/*
 * An outside client: Python's socket module sends 64 KiB (NUL bytes
 * included), says it has finished, and writes everything it gets back
 * until the server closes.
 */
static const char python_client[] =
    "import socket, sys\n"
    "data = bytes((i * 7 + (i >> 8)) & 0xff for i in range(65536))\n"
    "s = socket.create_connection(('127.0.0.1', int(sys.argv[1])), timeout=5)\n"
    "s.sendall(data)\n"
    "s.shutdown(socket.SHUT_WR)\n"
    "got = bytearray()\n"
    "while True:\n"
    "    chunk = s.recv(65536)\n"
    "    if not chunk:\n"
    "        break\n"
    "    got += chunk\n"
    "s.close()\n"
    "sys.stdout.buffer.write(got)\n";

static void threaded_python_client_echoed_exactly(void **state)
{
    (void)state;
    if (!proc_have("python3")) {
        fprintf(stderr, "skipped: python3 is not installed, so no outside client\n");
        skip();
    }
    char port[8];
    snprintf(port, sizeof port, "%d", start_server("4", NULL));
    const char *argv[] = {"python3", "-c", python_client, port, NULL};
    assert_int_equal(proc_run(&client, argv, NULL, WAIT_MS), 0);
    if (client.err_len > 0) {
        fprintf(stderr, "python3 said: %s\n", client.err_buf);
    }
    static unsigned char want[65536];
    for (size_t i = 0; i < sizeof want; i++) {
        want[i] = (unsigned char)((i * 7 + (i >> 8)) & 0xff);
    }
    assert_int_equal(client.out_len, sizeof want);
    assert_memory_equal(client.out_buf, want, sizeof want);
    assert_int_equal(stop_server(SIGTERM, WAIT_MS), 0);
}

/* ------------------------------------------------------------------------
 * The cap on clients (-n)
 * ------------------------------------------------------------------------ */

/*
 * 1 if a fresh client is served: nothing arrives unasked (a refused client
 * is sent "server busy" at once), and a message comes back exactly.
 */
static int newcomer_served(int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (poll(&p, 1, 100) != 0) {
        return 0;
    }
    return echoes(fd, "third\n", 6);
}

static void threaded_cap_third_client_busy(void **state)
{
    (void)state;
    int port = start_server("2", NULL);
    /* An echo each proves both have a thread serving them. */
    int a = connect_client(port);
    assert_echoes(a, "first\n");
    int b = connect_client(port);
    assert_echoes(b, "second\n");

    int c = connect_client(port);
    assert_busy(c);
    assert_int_equal(netx_close(c), 0);

    /* The server learns that a left only when a's thread reads the end of
     * its stream, a moment later: until then a newcomer may still be told
     * "server busy". So try again, for at most 3 s. */
    assert_int_equal(netx_close(a), 0);
    int served = 0;
    long long deadline = proc_now_ms() + 3000;
    for (int tries = 0; !served && tries < 100 && proc_now_ms() < deadline; tries++) {
        int d = connect_client(port);
        served = newcomer_served(d);
        assert_int_equal(netx_close(d), 0);
        if (!served) {
            poll(NULL, 0, 20);
        }
    }
    assert_true(served);
    assert_echoes(b, "second, still\n");
    assert_int_equal(netx_close(b), 0);
    assert_int_equal(stop_server(SIGTERM, WAIT_MS), 0);
    assert_non_null(strstr(server.err_buf, "the server is busy (limit: 2 clients)"));
}

#define CAP          8
#define CROWD        40
#define THREAD_SLACK 2 /* a sanitizer's helper thread, say */

static void sample_threads(int *most)
{
    int n = proc_thread_count(server.pid);
    assert_true(n > 0);
    if (n > *most) {
        *most = n;
    }
}

static void threaded_thread_count_stays_within_cap(void **state)
{
    (void)state;
    int port = start_server("8", NULL);
    int fds[CROWD];
    int most = 0;
    for (int i = 0; i < CROWD; i++) {
        fds[i] = connect_client(port);
        if (i % 5 == 4) {
            sample_threads(&most);
        }
    }

    /* Sort the crowd without assuming who came first: a refused client
     * reads "server busy\n" and the end of its stream, a served one reads
     * nothing until it speaks. */
    char got[CROWD][32];
    size_t len[CROWD] = {0};
    int ended[CROWD] = {0};
    int n_ended = 0;
    long long deadline = proc_now_ms() + 5000;
    while (n_ended < CROWD - CAP && proc_now_ms() < deadline) {
        struct pollfd p[CROWD];
        int owner[CROWD];
        int k = 0;
        for (int i = 0; i < CROWD; i++) {
            if (!ended[i]) {
                p[k] = (struct pollfd){.fd = fds[i], .events = POLLIN};
                owner[k++] = i;
            }
        }
        int wait = proc_ms_until(deadline) < 100 ? proc_ms_until(deadline) : 100;
        int r = poll(p, (nfds_t)k, wait);
        assert_true(r >= 0);
        sample_threads(&most);
        for (int j = 0; j < k; j++) {
            int i = owner[j];
            if (p[j].revents == 0) {
                continue;
            }
            if (len[i] == sizeof got[i] - 1) {
                fail_msg("client %d: more than \"server busy\\n\"", i);
            }
            ssize_t n = netx_recv(fds[i], got[i] + len[i], sizeof got[i] - 1 - len[i]);
            if (n < 0) {
                fail_msg("client %d: %s", i, netx_last_error());
            }
            if (n == 0) {
                ended[i] = 1;
                n_ended++;
            }
            len[i] += (size_t)n;
        }
    }
    assert_int_equal(n_ended, CROWD - CAP);

    for (int i = 0; i < CROWD; i++) {
        got[i][len[i]] = '\0';
        if (ended[i]) {
            assert_string_equal(got[i], "server busy\n");
        } else {
            assert_int_equal(len[i], 0);
            assert_echoes(fds[i], "served\n");
        }
    }
    /* Every served client has its thread, waiting in recv(): the count is
     * the cap plus the main thread, and never was more. */
    int now = proc_thread_count(server.pid);
    sample_threads(&most);
    if (most > CAP + 1 + THREAD_SLACK) {
        fail_msg("threaded_server ran %d threads with -n %d", most, CAP);
    }
    assert_true(now >= CAP + 1);

    for (int i = 0; i < CROWD; i++) {
        assert_int_equal(netx_close(fds[i]), 0);
    }
    assert_int_equal(stop_server(SIGTERM, WAIT_MS), 0);
}

/* ------------------------------------------------------------------------
 * Idle and slow clients
 * ------------------------------------------------------------------------ */

static void threaded_idle_client_closed_after_timeout(void **state)
{
    (void)state;
    int port = start_server("8", "1");
    int silent = connect_client(port);
    long long start = proc_now_ms();
    int chatty = connect_client(port);

    /* The chatty client talks every 300 ms for 1.5 s; meanwhile watch the
     * silent one, to see when the server closes it. */
    long long closed_at = -1;
    long long next_talk = start + 300;
    int talks = 0;
    while ((talks < 5 || closed_at < 0) && proc_now_ms() - start < 6000) {
        if (talks < 5 && proc_now_ms() >= next_talk) {
            assert_echoes(chatty, "still here\n");
            talks++;
            next_talk += 300;
            continue;
        }
        int wait = talks < 5 ? proc_ms_until(next_talk) : 100;
        if (closed_at >= 0) {
            poll(NULL, 0, wait);
            continue;
        }
        struct pollfd p = {.fd = silent, .events = POLLIN};
        if (poll(&p, 1, wait) > 0) {
            closed_at = proc_now_ms();
            assert_closed_by_server(silent);
        }
    }
    assert_int_equal(talks, 5);
    if (closed_at < 0) {
        fail_msg("the silent client was still open after 6 s with -t 1");
    }
    long long took = closed_at - start;
    if (took < 500 || took > 5000) {
        fail_msg("the silent client was closed after %lld ms with -t 1", took);
    }
    /* Connected longer than the timeout, but never silent that long. */
    assert_echoes(chatty, "kept\n");

    assert_int_equal(netx_close(silent), 0);
    assert_int_equal(netx_close(chatty), 0);
    assert_int_equal(stop_server(SIGTERM, WAIT_MS), 0);
    /* Exactly one client was closed for silence. */
    const char *msg = strstr(server.err_buf, "was silent for 1 s, closing it\n");
    assert_non_null(msg);
    assert_null(strstr(msg + 1, "was silent for"));
}

#define MIB (1024 * 1024)

static void threaded_slow_reader_does_not_block_others(void **state)
{
    (void)state;
    int port = start_server(NULL, NULL);

    /*
     * The hog sends and never reads its echo. Its receive buffer fills,
     * then the server's send buffer, and the thread serving it waits in
     * send(); the server stops reading from it, and the hog's own sends
     * stop too. On loopback the buffers can hold several MiB, so the hog
     * sends at least 1 MiB and goes on until the system has taken nothing
     * for 300 ms (at most 32 MiB, 5 s). The stream is the 64 KiB pattern
     * over and over, so its echo can be checked later.
     */
    int hog = connect_client(port);
    assert_int_equal(netx_set_nonblocking(hog, 1), 0);
    static unsigned char chunk[65536];
    support_pattern(chunk, sizeof chunk, 99);
    size_t sent = 0;
    int stalled = 0;
    long long deadline = proc_now_ms() + 5000;
    while (!stalled && sent < 32 * MIB && proc_now_ms() < deadline) {
        size_t at = sent % sizeof chunk;
        ssize_t n = netx_send(hog, chunk + at, sizeof chunk - at);
        if (n > 0) {
            sent += (size_t)n;
            continue;
        }
        if (errno != EAGAIN) {
            fail_msg("the hog: %s", netx_last_error());
        }
        struct pollfd p = {.fd = hog, .events = POLLOUT};
        stalled = poll(&p, 1, 300) == 0 && sent >= MIB;
    }
    if (sent < MIB) {
        fail_msg("the hog could send only %zu bytes", sent);
    }

    long long t = proc_now_ms();
    int other = connect_client(port);
    assert_echoes(other, "not stuck behind the hog\n");
    long long took = proc_now_ms() - t;
    if (took >= 2000) {
        fail_msg("a client next to the hog waited %lld ms for its echo", took);
    }
    assert_int_equal(netx_close(other), 0);

    /* Now the hog reads: every byte it sent comes back, in order, and then
     * nothing more. Its thread was stuck, not lost. */
    assert_int_equal(netx_set_nonblocking(hog, 0), 0);
    static unsigned char back[65536];
    size_t got = 0;
    while (got < sent) {
        size_t at = got % sizeof chunk;
        size_t want = sizeof chunk - at;
        if (want > sent - got) {
            want = sent - got;
        }
        ssize_t n = netx_recv_all(hog, back, want);
        if (n != (ssize_t)want) {
            fail_msg("the hog's echo stopped after %zu of %zu bytes: %s", got, sent,
                     n < 0 ? netx_last_error() : "end of stream");
        }
        if (memcmp(back, chunk + at, want) != 0) {
            fail_msg("the hog's echo differs within bytes %zu to %zu", got, got + want);
        }
        got += want;
    }
    assert_int_equal(netx_shutdown(hog, SHUT_WR), 0);
    char extra;
    assert_int_equal(netx_recv(hog, &extra, 1), 0);
    assert_int_equal(netx_close(hog), 0);
    assert_int_equal(stop_server(SIGTERM, WAIT_MS), 0);
}

/*
 * A hog that stays: its thread is blocked in send() when the server is
 * told to stop, and the shutdown must wake it all the same.
 */
static void threaded_sigterm_wakes_blocked_sender(void **state)
{
    (void)state;
    int port = start_server(NULL, NULL);
    int hog = connect_client(port);
    assert_int_equal(netx_set_nonblocking(hog, 1), 0);
    static unsigned char chunk[65536];
    size_t sent = 0;
    int stalled = 0;
    long long deadline = proc_now_ms() + 5000;
    while (!stalled && sent < 32 * MIB && proc_now_ms() < deadline) {
        ssize_t n = netx_send(hog, chunk, sizeof chunk);
        if (n > 0) {
            sent += (size_t)n;
            continue;
        }
        if (errno != EAGAIN) {
            fail_msg("the hog: %s", netx_last_error());
        }
        struct pollfd p = {.fd = hog, .events = POLLOUT};
        stalled = poll(&p, 1, 300) == 0;
    }
    assert_true(stalled);

    long long t = proc_now_ms();
    assert_int_equal(stop_server_now(SIGTERM, 2000), 0);
    long long took = proc_now_ms() - t;
    if (took > 2000) {
        fail_msg("threaded_server took %lld ms to stop", took);
    }
    assert_int_equal(netx_close(hog), 0);
}

/* ------------------------------------------------------------------------
 * Clients that misbehave
 * ------------------------------------------------------------------------ */

/* Close with SO_LINGER {1, 0}: the connection ends with a reset (RST)
 * instead of the orderly FIN. */
static void reset_close(int fd)
{
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg), 0);
    assert_int_equal(netx_close(fd), 0);
}

static void threaded_misbehaving_clients_server_recovers(void **state)
{
    (void)state;
    int port = start_server("8", NULL);
    int baseline = proc_fd_count(server.pid);
    assert_true(baseline > 0);

    /* Connect and reset at once, maybe before the server accepts. */
    reset_close(connect_client(port));

    /* Half a message, then a reset. */
    int half = connect_client(port);
    assert_int_equal(netx_send_all(half, "half a mess", 11), 0);
    reset_close(half);

    /* Binary garbage, NUL bytes included: an echo server has no notion of
     * text, so it must come back byte for byte. */
    unsigned char junk[4096];
    support_pattern(junk, sizeof junk, 7);
    for (size_t i = 0; i < sizeof junk; i += 7) {
        junk[i] = 0;
    }
    int garbage = connect_client(port);
    assert_true(echoes(garbage, junk, sizeof junk));
    assert_int_equal(netx_close(garbage), 0);

    int normal = connect_client(port);
    assert_echoes(normal, "all is well\n");
    assert_int_equal(netx_close(normal), 0);

    /* Every one of them is closed on the server's side too. */
    int fds = wait_server_fds(baseline, 3000);
    if (fds != baseline) {
        fail_msg("threaded_server has %d descriptors open, %d at the start", fds, baseline);
    }
    assert_int_equal(stop_server(SIGTERM, WAIT_MS), 0);
}

/* ------------------------------------------------------------------------
 * Shutdown
 * ------------------------------------------------------------------------ */

static void check_stop_with_clients(int sig)
{
    int port = start_server("16", NULL);
    int fds[10];
    for (int i = 0; i < 10; i++) {
        fds[i] = connect_client(port);
        assert_echoes(fds[i], "before the stop\n");
    }
    long long t = proc_now_ms();
    assert_int_equal(stop_server_now(sig, 2000), 0);
    long long took = proc_now_ms() - t;
    if (took > 2000) {
        fail_msg("threaded_server took %lld ms to stop", took);
    }
    for (int i = 0; i < 10; i++) {
        assert_closed_by_server(fds[i]);
        assert_int_equal(netx_close(fds[i]), 0);
    }
}

static void threaded_sigterm_with_clients_exits_zero(void **state)
{
    (void)state;
    check_stop_with_clients(SIGTERM);
}

static void threaded_sigint_with_clients_exits_zero(void **state)
{
    (void)state;
    check_stop_with_clients(SIGINT);
}

/* ------------------------------------------------------------------------
 * Command line and failures
 * ------------------------------------------------------------------------ */

/*
 * A bad command line: exit 2, a first line "threaded_server: ..." naming
 * what was wrong (it contains `mention`), then the usage. -H 127.0.0.1
 * -p 0 come first, so that a server that wrongly starts anyway takes no
 * fixed port; it is then killed after 3 s.
 */
static void check_bad_usage(const char *a1, const char *a2, const char *mention)
{
    const char *argv[] = {proc_path("threaded_server"), "-H", "127.0.0.1", "-p", "0", a1, a2, NULL};
    int status = proc_run(&client, argv, NULL, 3000);
    if (status != 2) {
        fail_msg("threaded_server %s %s: exit %d, stderr: %s", a1, a2 ? a2 : "", status,
                 client.err_buf);
    }
    const char *prefix = "threaded_server: ";
    const char *eol = strchr(client.err_buf, '\n');
    assert_non_null(eol);
    assert_true(strncmp(client.err_buf, prefix, strlen(prefix)) == 0);
    char first[256];
    snprintf(first, sizeof first, "%.*s", (int)(eol - client.err_buf), client.err_buf);
    if (strstr(first, mention) == NULL) {
        fail_msg("the reason \"%s\" does not mention %s", first, mention);
    }
    const char *usage = "usage: threaded_server ";
    assert_true(strncmp(eol + 1, usage, strlen(usage)) == 0);
    assert_string_equal(client.out_buf, "");
}

static void threaded_bad_arguments_exit_two(void **state)
{
    (void)state;
    check_bad_usage("-n", "0", "\"0\"");
    check_bad_usage("-n", "10001", "\"10001\"");
    check_bad_usage("-n", "abc", "\"abc\"");
    check_bad_usage("-t", "-1", "\"-1\"");
    check_bad_usage("-t", "86401", "\"86401\"");
    check_bad_usage("-p", "70000", "\"70000\"");
    check_bad_usage("-x", NULL, "-x");
    check_bad_usage("-n", NULL, "-n");
    check_bad_usage("extra", NULL, "\"extra\"");
}

/*
 * -H as every server takes it: "-H HOST:PORT" is refused with a hint to use
 * -p, '' listens on every interface (IPv4 and IPv6), ::1 is an address.
 */
static void threaded_server_host_empty_every_interface_port_hint(void **state)
{
    (void)state;
    proc_check_server_host(&client, "threaded_server", NULL, SOCK_STREAM);
}

static void threaded_help_exits_zero(void **state)
{
    (void)state;
    const char *argv[] = {proc_path("threaded_server"), "-h", NULL};
    assert_int_equal(proc_run(&client, argv, NULL, WAIT_MS), 0);
    assert_true(strncmp(client.out_buf, "usage: threaded_server ", 23) == 0);
    assert_non_null(strstr(client.out_buf, "-n MAX"));
    assert_non_null(strstr(client.out_buf, "-t SECONDS"));
    assert_string_equal(client.err_buf, "");
}

static void threaded_port_in_use_exits_one(void **state)
{
    (void)state;
    int holder = netx_tcp_listen("127.0.0.1", 0, 0);
    assert_true(holder >= 0);
    char port[8];
    snprintf(port, sizeof port, "%d", netx_local_port(holder));
    const char *argv[] = {proc_path("threaded_server"), "-H", "127.0.0.1", "-p", port, NULL};
    int status = proc_run(&client, argv, NULL, WAIT_MS);
    assert_int_equal(netx_close(holder), 0);
    assert_int_equal(status, 1);
    /* One sentence: which step failed, and why. */
    assert_true(strncmp(client.err_buf, "threaded_server: ", 17) == 0);
    assert_non_null(strstr(client.err_buf, "Address already in use"));
    assert_ptr_equal(strchr(client.err_buf, '\n'), client.err_buf + client.err_len - 1);
    assert_string_equal(client.out_buf, "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TEST(threaded_many_clients_each_echoed_exactly),
        TEST(threaded_echo_client_output_exact),
        TEST(threaded_python_client_echoed_exactly),
        TEST(threaded_cap_third_client_busy),
        TEST(threaded_thread_count_stays_within_cap),
        TEST(threaded_idle_client_closed_after_timeout),
        TEST(threaded_slow_reader_does_not_block_others),
        TEST(threaded_sigterm_wakes_blocked_sender),
        TEST(threaded_misbehaving_clients_server_recovers),
        TEST(threaded_sigterm_with_clients_exits_zero),
        TEST(threaded_sigint_with_clients_exits_zero),
        TEST(threaded_bad_arguments_exit_two),
        TEST(threaded_server_host_empty_every_interface_port_hint),
        TEST(threaded_help_exits_zero),
        TEST(threaded_port_in_use_exits_one),
    };
    return cmocka_run_group_tests_name("threaded", tests, NULL, proc_kill_leftovers);
}
