/*
 * test_proxy.c - the load balancer (examples/tcp_proxy.c, the article's
 * architecture §6) end to end, with HAProxy's semantics as the yardstick:
 *
 *  - round robin: 200 clients at once over three echo backends, each
 *    client's bytes back exactly, each backend a third of them;
 *  - failover: a backend killed under load, new clients never notice, the
 *    proxy says DOWN after --fall failed checks and UP after --rise good
 *    ones once it is back on the same port, and sends it clients again;
 *  - the backup when every regular backend is down, and a client closed at
 *    once (with a line saying so) when nothing at all is up;
 *  - half-close passed on both ways, 100 MiB byte for byte, backpressure
 *    both ways (the proxy's memory stays small, the sender is made to
 *    wait, not a byte is lost), and a connection whose one socket is over
 *    while the other still has bytes to take does not spin;
 *  - the idle timeout (-t), the cap on clients (-n), a backend that does not
 *    answer a connect (-c), the graceful stop (-g) and a second signal;
 *  - the command line.
 *
 * The proxy and the echo backends (event_server, poll_server) are the real
 * programs, on loopback, on ports the system picks; each says "listening on
 * ADDR" and we read the port from that. Which backend served how many
 * clients is read from /proc/PID/fd: an echo server holds one descriptor
 * per client, so with every client connected at once the counts are the
 * shares (health checks come and go in a moment; the counts are waited
 * for, never sampled once). Where the test must play a backend that
 * misbehaves (never reads, ends its side first, never answers a connect),
 * that backend is a listener in this process.
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
#define SLACK   3000  /* added to every "within" bound: a slow, busy machine */
#define MIB     (1024 * 1024)

static struct proc proxy;
static struct proc backend[3];
static struct proc helper; /* the command-line cases */

/* ------------------------------------------------------------------------
 * Programs
 * ------------------------------------------------------------------------ */

/* Read what p has printed so far, without waiting. proc.c reads only while
 * a test waits in proc_*(); a test that waits in its own poll() calls this
 * to see the proxy's lines as they come. */
static void read_output(struct proc *p)
{
    int *fds[2] = {&p->out, &p->err};
    char *bufs[2] = {p->out_buf, p->err_buf};
    size_t *lens[2] = {&p->out_len, &p->err_len};
    for (int s = 0; s < 2; s++) {
        for (int i = 0; i < 64 && *fds[s] >= 0; i++) {
            struct pollfd pf = {.fd = *fds[s], .events = POLLIN};
            if (poll(&pf, 1, 0) <= 0) {
                break;
            }
            char scratch[4096];
            ssize_t n = read(*fds[s], scratch, sizeof scratch);
            if (n > 0) {
                size_t room = PROC_OUT_MAX - *lens[s];
                size_t take = (size_t)n < room ? (size_t)n : room;
                memcpy(bufs[s] + *lens[s], scratch, take);
                *lens[s] += take;
                bufs[s][*lens[s]] = '\0';
            } else if (n == 0 || errno != EINTR) {
                close(*fds[s]);
                *fds[s] = -1;
            }
        }
    }
}

/* Sleep ms milliseconds, reading the proxy's output meanwhile. */
static void pause_ms(int ms)
{
    long long deadline = proc_now_ms() + ms;
    while (proc_now_ms() < deadline) {
        read_output(&proxy);
        int left = proc_ms_until(deadline);
        poll(NULL, 0, left < 20 ? left : 20);
    }
}

/* Start program `name` through p on 127.0.0.1 and port (text; "0" for a
 * free one) with the options in opts (NULL-terminated, or NULL); returns
 * the port it says it listens on. */
static int start_on(struct proc *p, const char *name, const char *port, const char *const opts[])
{
    proc_abandon(p); /* one a failed test left running */
    const char *argv[40];
    int n = 0;
    argv[n++] = proc_path(name);
    argv[n++] = "-H";
    argv[n++] = "127.0.0.1";
    argv[n++] = "-p";
    argv[n++] = port;
    for (int i = 0; opts != NULL && opts[i] != NULL; i++) {
        assert_true(n < (int)(sizeof argv / sizeof argv[0]) - 1);
        argv[n++] = opts[i];
    }
    argv[n] = NULL;
    assert_int_equal(proc_start(p, argv, NULL, 0), 0);
    int got = proc_wait_listening(p, WAIT_MS);
    if (got <= 0) {
        fail_msg("%s did not start: %s%s", name, p->out_buf, p->err_buf);
    }
    return got;
}

/* An echo backend: `name` is event_server or poll_server, which serve
 * thousands of clients at once and take their port back at once after a
 * restart (SO_REUSEADDR). */
static int start_backend(struct proc *p, const char *name, const char *port)
{
    return start_on(p, name, port, (const char *const[]){"-n", "1000", NULL});
}

static int start_proxy(const char *const opts[])
{
    return start_on(&proxy, "tcp_proxy", "0", opts);
}

/* "127.0.0.1:PORT" into buf, for -b; returns buf. */
static const char *addr_text(char *buf, size_t cap, int port)
{
    snprintf(buf, cap, "127.0.0.1:%d", port);
    return buf;
}

/* Send sig to p and collect it: it must exit 0 (name is for the message). */
static void stop_ok(struct proc *p, const char *name, int sig)
{
    int status = proc_stop(p, sig, WAIT_MS);
    if (status != 0) {
        fail_msg("%s ended with %d; its stderr:\n%s", name, status, p->err_buf);
    }
}

/* Wait up to timeout_ms for pid to have `want` descriptors open; the last
 * count seen. */
static int wait_fds(pid_t pid, int want, int timeout_ms)
{
    long long deadline = proc_now_ms() + timeout_ms;
    for (;;) {
        read_output(&proxy);
        int n = proc_fd_count(pid);
        if (n == want || proc_now_ms() >= deadline) {
            return n;
        }
        poll(NULL, 0, 10);
    }
}

static void assert_fds(pid_t pid, const char *who, int want, const char *when)
{
    int n = wait_fds(pid, want, 3000);
    if (n != want) {
        fail_msg("%s has %d descriptors open %s, expected %d", who, n, when, want);
    }
}

/* The fewest descriptors pid has open over ms milliseconds: its count
 * without the health checks' connections, which come and go in a moment. */
static int fd_floor(pid_t pid, int ms)
{
    long long deadline = proc_now_ms() + ms;
    int least = proc_fd_count(pid);
    while (proc_now_ms() < deadline) {
        poll(NULL, 0, 5);
        int n = proc_fd_count(pid);
        if (n >= 0 && n < least) {
            least = n;
        }
    }
    assert_true(least > 0);
    return least;
}

/* Resident memory of pid in KiB (VmRSS in /proc/PID/status). */
static long rss_kib(pid_t pid)
{
    char file[64];
    snprintf(file, sizeof file, "/proc/%d/status", (int)pid);
    FILE *f = fopen(file, "r");
    assert_non_null(f);
    char line[256];
    long kib = -1;
    while (kib < 0 && fgets(line, sizeof line, f) != NULL) {
        if (strncmp(line, "VmRSS:", 6) == 0) {
            kib = strtol(line + 6, NULL, 10);
        }
    }
    fclose(f);
    assert_true(kib > 0);
    return kib;
}

/* CPU time of pid so far (user + system) in clock ticks, from fields 14
 * and 15 of /proc/PID/stat, counted from the last ')' (the command name
 * may hold spaces). */
static long long cpu_ticks(pid_t pid)
{
    char name[64];
    snprintf(name, sizeof name, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(name, "r");
    assert_non_null(f);
    char buf[1024];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *rest = strrchr(buf, ')');
    assert_non_null(rest);
    unsigned long long utime = 0;
    unsigned long long stime = 0;
    int got =
        sscanf(rest + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &utime, &stime);
    assert_int_equal(got, 2);
    return (long long)(utime + stime);
}

/* Wait up to timeout_ms for text in the proxy's output; the time it took,
 * or fail saying what the proxy did say. */
static long long expect_line(const char *text, long long since, int timeout_ms)
{
    if (proc_wait_output(&proxy, text, timeout_ms) != 0) {
        fail_msg("tcp_proxy did not say \"%s\" within %d ms; it said:\n%s", text, timeout_ms,
                 proxy.err_buf);
    }
    return proc_now_ms() - since;
}

/* ------------------------------------------------------------------------
 * Clients, and backends played by this process
 * ------------------------------------------------------------------------ */

/* A client of the proxy: connected, and no recv or send of it can hang. */
static int connect_client(int port)
{
    int fd = netx_tcp_connect("127.0.0.1", (uint16_t)port, IO_MS);
    if (fd < 0) {
        fail_msg("connect to the proxy: %s", netx_last_error());
    }
    assert_int_equal(netx_set_timeout(fd, IO_MS), 0);
    return fd;
}

/* Send a short text and read exactly it back, or fail saying what came. */
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
    if ((size_t)n < len || memcmp(back, msg, len) != 0) {
        back[n] = '\0';
        fail_msg("sent \"%s\", got back \"%s\"%s", msg, back,
                 (size_t)n < len ? ", then the end of the stream" : "");
    }
}

/* Send len bytes of a pattern and read exactly them back: 1, or 0 when
 * the connection failed or the bytes differed. */
static int echoes_pattern(int fd, size_t len, unsigned seed)
{
    unsigned char out[4096];
    unsigned char back[4096];
    assert_true(len <= sizeof out);
    support_pattern(out, len, seed);
    if (netx_send_all(fd, out, len) != 0) {
        return 0;
    }
    return netx_recv_all(fd, back, len) == (ssize_t)len && memcmp(back, out, len) == 0;
}

/* The proxy closed this client within ms: end of stream, or a reset; never
 * a byte, never a hang. Returns how long it took. */
static long long assert_closed_within(int fd, int ms)
{
    long long t = proc_now_ms();
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (poll(&p, 1, ms) != 1) {
        fail_msg("the proxy left a client open for %d ms", ms);
    }
    char c;
    ssize_t n = recv(fd, &c, 1, MSG_DONTWAIT);
    if (!(n == 0 || (n < 0 && errno == ECONNRESET))) {
        fail_msg("expected the end of the stream or a reset, got %zd (%s)", n,
                 n < 0 ? strerror(errno) : "a byte");
    }
    return proc_now_ms() - t;
}

/* A listener of this process on 127.0.0.1, a free port: a backend the test
 * drives itself. */
static int test_listener(int *port)
{
    int fd = netx_tcp_listen("127.0.0.1", 0, 64);
    assert_true(fd >= 0);
    *port = netx_local_port(fd);
    assert_true(*port > 0);
    return fd;
}

/* Accept one connection on listener within IO_MS; blocking, with IO_MS
 * timeouts on its sends and receives. */
static int accept_one(int listener)
{
    struct pollfd p = {.fd = listener, .events = POLLIN};
    if (poll(&p, 1, IO_MS) != 1) {
        fail_msg("no connection from the proxy within %d ms", IO_MS);
    }
    int fd = netx_accept(listener, NULL);
    assert_true(fd >= 0);
    assert_int_equal(netx_set_timeout(fd, IO_MS), 0);
    return fd;
}

/*
 * The proxy's first health check of a backend played by this process: a
 * connect, closed by the proxy as soon as it succeeds. The proxy runs it
 * as soon as it starts, before it can accept any client, so with a check
 * interval of an hour this is the only one, and the next connection on
 * the listener is a client's.
 */
static void accept_check(int listener)
{
    int fd = accept_one(listener);
    char c;
    ssize_t n = netx_recv(fd, &c, 1);
    if (n != 0) {
        fail_msg("the proxy's health check should connect and close, got %zd (%s)", n,
                 n < 0 ? netx_last_error() : "a byte");
    }
    assert_int_equal(netx_close(fd), 0);
}

/*
 * The client's connection on a backend played by this process, while the
 * proxy checks it every 100 ms: accept until a connection brings data
 * (the client speaks first), closing the checks (they bring only their
 * end) on the way. Bounded by count and by IO_MS.
 */
static int accept_client_skipping_checks(int listener)
{
    long long deadline = proc_now_ms() + IO_MS;
    for (int i = 0; i < 200 && proc_now_ms() < deadline; i++) {
        int fd = accept_one(listener);
        struct pollfd p = {.fd = fd, .events = POLLIN};
        char c;
        if (poll(&p, 1, proc_ms_until(deadline)) == 1 && recv(fd, &c, 1, MSG_PEEK) == 1) {
            return fd;
        }
        assert_int_equal(netx_close(fd), 0);
    }
    fail_msg("no client's connection among the proxy's health checks");
    return -1;
}

/* A socket bound to a free port of 127.0.0.1 and not listening: a backend
 * that refuses every connect (the kernel answers with a reset) on a port
 * that stays ours, so nothing else can take it. listen() brings it up. */
static int refusing_socket(int *port)
{
    netx_addr a;
    assert_int_equal(netx_addr_parse("127.0.0.1:0", &a), 0);
    int fd = netx_socket(AF_INET, SOCK_STREAM);
    assert_true(fd >= 0);
    assert_int_equal(netx_bind(fd, &a), 0);
    *port = netx_local_port(fd);
    assert_true(*port > 0);
    return fd;
}

/* ------------------------------------------------------------------------
 * Long streams, checked as they go
 * ------------------------------------------------------------------------ */

/* Every stream is this pattern over and over. Its period is a prime, so
 * that no chunk size lines up with it: a chunk lost, repeated or moved
 * shows at once. PATTERN_RUN more bytes after it, so a run of up to that
 * many from any offset is contiguous in memory. */
#define PERIOD      65521
#define PATTERN_RUN 65536
static unsigned char pattern[PERIOD + PATTERN_RUN];

static void make_pattern(unsigned seed)
{
    support_pattern(pattern, PERIOD, seed);
    /* The run is longer than the period: copy forward, a byte at a time,
     * so the copy reads what it has just written (memcpy may not overlap). */
    for (size_t i = PERIOD; i < sizeof pattern; i++) {
        pattern[i] = pattern[i - PERIOD];
    }
}

/* The stream's bytes from offset at (at most PATTERN_RUN of them). */
static const unsigned char *stream_at(size_t at)
{
    return pattern + at % PERIOD;
}

/* Check n received bytes against the stream from offset at. */
static void check_stream(const unsigned char *got, size_t n, size_t at, const char *who)
{
    if (memcmp(got, stream_at(at), n) != 0) {
        fail_msg("%s: bytes %zu to %zu differ from what was sent", who, at, at + n);
    }
}

/*
 * Send total bytes of the stream on fd and read its echo at the same time,
 * with one poll() loop, so neither side waits on the other (a sender that
 * sent everything before reading would fill every buffer on the way and
 * stop). With shut, end the sending side once all is sent
 * (shutdown(SHUT_WR)) and expect the end of the stream after exactly total
 * bytes. Bounded by timeout_ms.
 */
static void echo_stream(int fd, size_t total, int shut, int timeout_ms)
{
    static unsigned char buf[PATTERN_RUN];
    assert_int_equal(netx_set_nonblocking(fd, 1), 0);
    size_t sent = 0;
    size_t got = 0;
    int eof = 0;
    long long deadline = proc_now_ms() + timeout_ms;
    while ((got < total || (shut && !eof)) && proc_now_ms() < deadline) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (sent < total) {
            p.events |= POLLOUT;
        }
        if (poll(&p, 1, proc_ms_until(deadline)) < 0) {
            fail_msg("poll: %s", strerror(errno));
        }
        if ((p.revents & POLLOUT) && sent < total) {
            size_t want = total - sent < PATTERN_RUN ? total - sent : PATTERN_RUN;
            ssize_t n = netx_send(fd, stream_at(sent), want);
            if (n < 0 && errno != EAGAIN) {
                fail_msg("send after %zu bytes: %s", sent, netx_last_error());
            }
            sent += n > 0 ? (size_t)n : 0;
            if (sent == total && shut) {
                assert_int_equal(netx_shutdown(fd, SHUT_WR), 0);
            }
        }
        if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
            ssize_t n = netx_recv(fd, buf, sizeof buf);
            if (n < 0 && errno != EAGAIN) {
                fail_msg("recv after %zu of %zu bytes: %s", got, total, netx_last_error());
            }
            if (n == 0) {
                if (got < total) {
                    fail_msg("the stream ended after %zu of %zu bytes", got, total);
                }
                eof = 1;
            }
            if (n > 0) {
                if (got + (size_t)n > total) {
                    fail_msg("%zu bytes came back, more than the %zu sent", got + (size_t)n, total);
                }
                check_stream(buf, (size_t)n, got, "the echo");
                got += (size_t)n;
            }
        }
    }
    if (got < total || (shut && !eof)) {
        fail_msg("after %d ms: sent %zu of %zu bytes, got %zu back%s", timeout_ms, sent, total, got,
                 shut && !eof ? ", no end of stream" : "");
    }
    assert_int_equal(netx_set_nonblocking(fd, 0), 0);
}

/*
 * Send the stream on fd (non-blocking) as fast as it is taken, until
 * nothing has been taken for 300 ms (and at least 1 MiB went), or max
 * bytes, or 5 s. Returns how much went; *stalled says whether the sender
 * was made to wait.
 */
static size_t push_until_stalled(int fd, size_t max, int *stalled)
{
    assert_int_equal(netx_set_nonblocking(fd, 1), 0);
    size_t sent = 0;
    *stalled = 0;
    long long deadline = proc_now_ms() + 5000;
    while (!*stalled && sent < max && proc_now_ms() < deadline) {
        ssize_t n = netx_send(fd, stream_at(sent), PATTERN_RUN);
        if (n > 0) {
            sent += (size_t)n;
            continue;
        }
        if (errno != EAGAIN) {
            fail_msg("sending, after %zu bytes: %s", sent, netx_last_error());
        }
        struct pollfd p = {.fd = fd, .events = POLLOUT};
        *stalled = poll(&p, 1, 300) == 0 && sent >= MIB;
    }
    if (sent < MIB) {
        fail_msg("only %zu bytes could be sent", sent);
    }
    assert_int_equal(netx_set_nonblocking(fd, 0), 0);
    return sent;
}

/* Read exactly total bytes of the stream from fd (blocking, with its
 * timeout), checking each one. */
static void read_stream(int fd, size_t total, const char *who)
{
    static unsigned char buf[PATTERN_RUN];
    size_t got = 0;
    while (got < total) { /* bounded: every recv gets a byte or fails */
        size_t want = total - got < sizeof buf ? total - got : sizeof buf;
        ssize_t n = netx_recv(fd, buf, want);
        if (n <= 0) {
            fail_msg("%s: the stream stopped after %zu of %zu bytes: %s", who, got, total,
                     n < 0 ? netx_last_error() : "end of stream");
        }
        check_stream(buf, (size_t)n, got, who);
        got += (size_t)n;
    }
}

/* ------------------------------------------------------------------------
 * Round robin: 200 clients over three backends
 * ------------------------------------------------------------------------ */

#define CLIENTS 200

struct flow {
    int fd;
    unsigned char *out;
    unsigned char *in;
    size_t len, sent, got;
    int ended;
};

/*
 * Drive every flow at once with one poll() loop over non-blocking sockets:
 * each sends all of out while reading its echo into in, so the proxy holds
 * all of them in the middle of an exchange at the same time.
 */
static void run_flows(struct flow *f, int count, int timeout_ms)
{
    static struct pollfd p[CLIENTS];
    static int owner[CLIENTS];
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
        assert_true(poll(p, (nfds_t)k, proc_ms_until(deadline)) >= 0);
        for (int j = 0; j < k; j++) {
            struct flow *c = &f[owner[j]];
            if ((p[j].revents & POLLOUT) && c->sent < c->len) {
                ssize_t n = netx_send(c->fd, c->out + c->sent, c->len - c->sent);
                if (n < 0 && errno != EAGAIN) {
                    fail_msg("client %d: %s", owner[j], netx_last_error());
                }
                c->sent += n > 0 ? (size_t)n : 0;
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
                    done += c->got == c->len;
                }
            }
        }
    }
    if (done < count) {
        fail_msg("only %d of %d clients had their whole echo after %d ms", done, count, timeout_ms);
    }
}

/* Each client ends its sending side; the end must come back through the
 * proxy and the backend, and nothing before it. */
static void expect_only_end_of_stream(struct flow *f, int count, int timeout_ms)
{
    static struct pollfd p[CLIENTS];
    static int owner[CLIENTS];
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
        assert_true(poll(p, (nfds_t)k, proc_ms_until(deadline)) >= 0);
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
    if (ended < count) {
        fail_msg("only %d of %d clients saw the end of the stream after ending theirs", ended,
                 count);
    }
}

static void proxy_round_robin_200_clients_thirds_echoed_exactly(void **state)
{
    (void)state;
    /* Two kinds of backend: the proxy must not care which. */
    static const char *const kinds[3] = {"event_server", "poll_server", "event_server"};
    char b[3][32];
    int base[3];
    for (int i = 0; i < 3; i++) {
        addr_text(b[i], sizeof b[i], start_backend(&backend[i], kinds[i], "0"));
        base[i] = proc_fd_count(backend[i].pid);
        assert_true(base[i] > 0);
    }
    /* Checks once an hour: the only connections the backends see, after
     * the first check, are the clients'. */
    int port = start_proxy(
        (const char *const[]){"-b", b[0], "-b", b[1], "-b", b[2], "--check-ms", "3600000", NULL});
    int pbase = fd_floor(proxy.pid, 100);

    struct flow *f = calloc(CLIENTS, sizeof *f);
    assert_non_null(f);
    for (int i = 0; i < CLIENTS; i++) {
        f[i].fd = connect_client(port);
        assert_int_equal(netx_set_nonblocking(f[i].fd, 1), 0);
        /* 1 KiB to about 3.6 KiB, each length and pattern its own: a byte
         * delivered to the wrong client, or twice, shows. */
        f[i].len = 1024 + (size_t)i * 13;
        f[i].out = malloc(f[i].len);
        f[i].in = malloc(f[i].len);
        assert_non_null(f[i].out);
        assert_non_null(f[i].in);
        support_pattern(f[i].out, f[i].len, (unsigned)i + 1);
    }
    run_flows(f, CLIENTS, 10000);
    for (int i = 0; i < CLIENTS; i++) {
        if (memcmp(f[i].in, f[i].out, f[i].len) != 0) {
            fail_msg("client %d: its echo of %zu bytes differs from what it sent", i, f[i].len);
        }
    }

    /* All 200 are connected through to a backend now, each backend holding
     * one descriptor per client of its share. Round robin over three
     * backends that are all up deals 200 clients 67, 67, 66, in some
     * order. */
    int share[3] = {0, 0, 0};
    long long deadline = proc_now_ms() + 3000;
    int sum = 0;
    while (proc_now_ms() < deadline) {
        sum = 0;
        for (int i = 0; i < 3; i++) {
            share[i] = proc_fd_count(backend[i].pid) - base[i];
            sum += share[i];
        }
        if (sum == CLIENTS) {
            break;
        }
        poll(NULL, 0, 10);
    }
    if (sum != CLIENTS) {
        fail_msg("the backends hold %d + %d + %d connections, not %d", share[0], share[1], share[2],
                 CLIENTS);
    }
    for (int i = 0; i < 3; i++) {
        if (share[i] < CLIENTS / 3 || share[i] > CLIENTS / 3 + 1) {
            fail_msg("round robin gave the backends %d, %d and %d of %d clients", share[0],
                     share[1], share[2], CLIENTS);
        }
    }
    /* Two descriptors per client in the proxy: its own and its backend's. */
    assert_fds(proxy.pid, "tcp_proxy", pbase + 2 * CLIENTS, "with 200 clients");

    /* Each client's end goes through, and the backend's end comes back. */
    expect_only_end_of_stream(f, CLIENTS, 5000);
    for (int i = 0; i < CLIENTS; i++) {
        assert_int_equal(netx_close(f[i].fd), 0);
        free(f[i].out);
        free(f[i].in);
    }
    free(f);
    assert_fds(proxy.pid, "tcp_proxy", pbase, "after the 200 clients left");
    for (int i = 0; i < 3; i++) {
        assert_fds(backend[i].pid, kinds[i], base[i], "after the 200 clients left");
    }
    stop_ok(&proxy, "tcp_proxy", SIGTERM);
    for (int i = 0; i < 3; i++) {
        stop_ok(&backend[i], kinds[i], SIGTERM);
    }
}

/* ------------------------------------------------------------------------
 * Failover: a backend dies and comes back
 * ------------------------------------------------------------------------ */

#define CHECK_MS   100
#define LONG_LIVED 12

static void proxy_backend_killed_failover_down_then_up(void **state)
{
    (void)state;
    char b[3][32];
    int bport[3];
    for (int i = 0; i < 3; i++) {
        bport[i] = start_backend(&backend[i], "event_server", "0");
        addr_text(b[i], sizeof b[i], bport[i]);
    }
    int port = start_proxy(
        (const char *const[]){"-b", b[0], "-b", b[1], "-b", b[2], "--check-ms", "100", NULL});

    /* Clients under way: 12 connections, four on each backend, each with
     * an echo done. */
    int live[LONG_LIVED];
    for (int i = 0; i < LONG_LIVED; i++) {
        live[i] = connect_client(port);
        assert_echoes(live[i], "before the kill\n");
    }

    /* The middle backend dies without a word. */
    long long killed_at = proc_now_ms();
    assert_int_equal(kill(backend[1].pid, SIGKILL), 0);
    assert_int_equal(proc_finish(&backend[1], WAIT_MS), 128 + SIGKILL);

    /* New clients meanwhile, one every 20 ms: until the proxy has marked it
     * DOWN, some are dialled to the dead backend, are refused, and must be
     * redialled to another before any byte of theirs moves. None of them
     * may see anything but its echo. */
    char down[96];
    snprintf(down, sizeof down, "backend %s DOWN after 3 failed checks: ", b[1]);
    long long down_after = -1;
    int newcomers = 0;
    int after_down = 0;
    while (after_down < 5 && newcomers < 300 && proc_now_ms() - killed_at < 3 * CHECK_MS + SLACK) {
        int fd = connect_client(port);
        if (!echoes_pattern(fd, 2048, (unsigned)newcomers)) {
            fail_msg("new client %d, %lld ms after the kill: no echo (%s)", newcomers,
                     proc_now_ms() - killed_at, netx_last_error());
        }
        assert_int_equal(netx_close(fd), 0);
        newcomers++;
        pause_ms(20);
        if (down_after < 0 && strstr(proxy.err_buf, down) != NULL) {
            down_after = proc_now_ms() - killed_at;
        }
        after_down += down_after >= 0;
    }
    /* fall (3) x interval (100 ms), and slack. */
    if (down_after < 0) {
        fail_msg("no \"%s\" within %d ms of the kill; the proxy said:\n%s", down,
                 3 * CHECK_MS + SLACK, proxy.err_buf);
    }
    /* The line gives the reason: the failed connect's sentence. */
    const char *at = strstr(proxy.err_buf, down);
    const char *eol = strchr(at, '\n');
    assert_non_null(eol);
    if (strstr(at, ": Connection refused\n") != eol - strlen(": Connection refused")) {
        fail_msg("the DOWN line does not end with the reason: %.*s", (int)(eol - at), at);
    }

    /* The clients on the two live backends are still served; the four on
     * the dead one were closed (end of stream or reset), none left
     * hanging. */
    int served = 0;
    for (int i = 0; i < LONG_LIVED; i++) {
        if (echoes_pattern(live[i], 100, 7)) {
            served++;
        }
    }
    if (served != LONG_LIVED * 2 / 3) {
        fail_msg("%d of %d clients under way survived the loss of one backend of three; "
                 "expected %d",
                 served, LONG_LIVED, LONG_LIVED * 2 / 3);
    }

    /* Back on the same port (SO_REUSEADDR: its old connections are in
     * TIME_WAIT there). The proxy says UP after rise (2) good checks. */
    char port_text[8];
    int again = start_backend(&backend[1], "event_server",
                              proc_port_text(bport[1], port_text, sizeof port_text));
    assert_int_equal(again, bport[1]);
    long long back_at = proc_now_ms();
    char up[96];
    snprintf(up, sizeof up, "backend %s UP after 2 good checks", b[1]);
    expect_line(up, back_at, 2 * CHECK_MS + SLACK);

    /* And it gets clients again: six new ones are dealt two to each of the
     * three backends. */
    int base = fd_floor(backend[1].pid, 150);
    int fresh[6];
    for (int i = 0; i < 6; i++) {
        fresh[i] = connect_client(port);
        assert_echoes(fresh[i], "after the return\n");
    }
    int n = wait_fds(backend[1].pid, base + 2, 3000);
    if (n != base + 2) {
        fail_msg("the backend that came back holds %d client connections of 6, expected 2",
                 n - base);
    }
    for (int i = 0; i < 6; i++) {
        assert_int_equal(netx_close(fresh[i]), 0);
    }
    for (int i = 0; i < LONG_LIVED; i++) {
        assert_int_equal(netx_close(live[i]), 0);
    }
    stop_ok(&proxy, "tcp_proxy", SIGTERM);
    for (int i = 0; i < 3; i++) {
        stop_ok(&backend[i], "event_server", SIGTERM);
    }
}

/* ------------------------------------------------------------------------
 * The backup, and nothing up at all
 * ------------------------------------------------------------------------ */

static void proxy_all_down_backup_then_nothing_up_client_closed(void **state)
{
    (void)state;
    int p1;
    int p2;
    int dead1 = refusing_socket(&p1);
    int dead2 = refusing_socket(&p2);
    char b1[32];
    char b2[32];
    char bk[32];
    addr_text(b1, sizeof b1, p1);
    addr_text(b2, sizeof b2, p2);
    addr_text(bk, sizeof bk, start_backend(&backend[0], "poll_server", "0"));
    int port = start_proxy(
        (const char *const[]){"-b", b1, "-b", b2, "--backup", bk, "--check-ms", "100", NULL});

    /* Both regular backends refuse: both go DOWN. */
    char line[96];
    snprintf(line, sizeof line, "backend %s DOWN after 3 failed checks", b1);
    expect_line(line, proc_now_ms(), 3 * CHECK_MS + SLACK);
    snprintf(line, sizeof line, "backend %s DOWN after 3 failed checks", b2);
    expect_line(line, proc_now_ms(), 3 * CHECK_MS + SLACK);

    /* Now the backup serves: it is the only thing that can echo. */
    for (int i = 0; i < 3; i++) {
        int fd = connect_client(port);
        assert_echoes(fd, "served by the backup\n");
        assert_int_equal(netx_close(fd), 0);
    }

    /* The backup goes too: nothing is up. */
    stop_ok(&backend[0], "poll_server", SIGTERM);
    snprintf(line, sizeof line, "backend %s DOWN after 3 failed checks", bk);
    expect_line(line, proc_now_ms(), 3 * CHECK_MS + SLACK);

    /* A client is closed at once, not left waiting, and the proxy says
     * why. */
    int fd = connect_client(port);
    assert_closed_within(fd, 1000);
    assert_int_equal(netx_close(fd), 0);
    expect_line("no backend is up: closed client 127.0.0.1:", proc_now_ms(), 1000);

    /* A regular backend comes back (it starts listening): UP after two good
     * checks, and it is preferred to the backup again - here, the only
     * choice. The test plays it, so it can see the client arrive. */
    assert_int_equal(netx_listen(dead1, 16), 0);
    snprintf(line, sizeof line, "backend %s UP after 2 good checks", b1);
    expect_line(line, proc_now_ms(), 2 * CHECK_MS + SLACK);
    int c = connect_client(port);
    assert_int_equal(netx_send_all(c, "hello\n", 6), 0);
    int s = accept_client_skipping_checks(dead1);
    char got[6];
    assert_int_equal(netx_recv_all(s, got, 6), 6);
    assert_memory_equal(got, "hello\n", 6);
    assert_int_equal(netx_send_all(s, "back\n", 5), 0);
    assert_int_equal(netx_recv_all(c, got, 5), 5);
    assert_memory_equal(got, "back\n", 5);
    assert_int_equal(netx_close(c), 0);
    assert_int_equal(netx_close(s), 0);

    stop_ok(&proxy, "tcp_proxy", SIGTERM);
    assert_int_equal(netx_close(dead1), 0);
    assert_int_equal(netx_close(dead2), 0);
}

/* ------------------------------------------------------------------------
 * Half-close, both ways
 * ------------------------------------------------------------------------ */

/* The client ends its side first (as nc -N does): its end reaches the
 * backend, and the echo of every byte still comes back, then the end. */
static void proxy_client_half_close_gets_whole_echo_then_end(void **state)
{
    (void)state;
    char b[32];
    addr_text(b, sizeof b, start_backend(&backend[0], "event_server", "0"));
    int port = start_proxy((const char *const[]){"-b", b, NULL});
    make_pattern(4);
    int fd = connect_client(port);
    echo_stream(fd, 300000, 1, 10000);
    assert_int_equal(netx_close(fd), 0);
    stop_ok(&proxy, "tcp_proxy", SIGTERM);
    stop_ok(&backend[0], "event_server", SIGTERM);
}

/* The backend ends its side first: the client reads all it sent, then the
 * end, and may still talk the other way. */
static void proxy_backend_half_close_client_still_talks(void **state)
{
    (void)state;
    int bport;
    int listener = test_listener(&bport);
    char b[32];
    int port = start_proxy(
        (const char *const[]){"-b", addr_text(b, sizeof b, bport), "--check-ms", "3600000", NULL});
    accept_check(listener);
    int pbase = fd_floor(proxy.pid, 50);

    int c = connect_client(port);
    int s = accept_one(listener);
    assert_int_equal(netx_send_all(s, "from the backend\n", 17), 0);
    assert_int_equal(netx_shutdown(s, SHUT_WR), 0);

    char got[64];
    assert_int_equal(netx_recv_all(c, got, 17), 17);
    assert_memory_equal(got, "from the backend\n", 17);
    assert_int_equal(netx_recv(c, got, 1), 0); /* its end, passed on */

    /* The other way is still open. */
    assert_int_equal(netx_send_all(c, "the client goes on\n", 19), 0);
    assert_int_equal(netx_recv_all(s, got, 19), 19);
    assert_memory_equal(got, "the client goes on\n", 19);
    assert_int_equal(netx_shutdown(c, SHUT_WR), 0);
    assert_int_equal(netx_recv(s, got, 1), 0);

    /* Both ways are over: the proxy lets go of both sockets. */
    assert_fds(proxy.pid, "tcp_proxy", pbase, "after both ends");
    assert_int_equal(netx_close(c), 0);
    assert_int_equal(netx_close(s), 0);
    assert_int_equal(netx_close(listener), 0);
    stop_ok(&proxy, "tcp_proxy", SIGTERM);
}

/*
 * The backend has sent everything and ended its side, and the client has
 * ended its own: the proxy's socket to the backend is over both ways. The
 * client has not read yet, so the proxy still holds bytes for it. The
 * poller reports a socket closed both ways at every wait, whatever events
 * are asked for; a proxy that goes on watching it wakes at once, finds
 * nothing to do, and waits again: a whole CPU, until the client reads.
 */
static void proxy_half_closed_both_ways_pending_output_no_spin(void **state)
{
    (void)state;
    int bport;
    int listener = test_listener(&bport);
    char b[32];
    /* -B 16 MiB: the proxy takes all 8 MiB the backend sends (and its end),
     * far more than the kernel can hold on the way to the client. */
    int port = start_proxy((const char *const[]){"-b", addr_text(b, sizeof b, bport), "-B",
                                                 "16777216", "--check-ms", "3600000", NULL});
    accept_check(listener);
    make_pattern(5);

    /* A small receive buffer, set before connecting: the client takes
     * little until it reads. */
    netx_addr to;
    char text[32];
    assert_int_equal(netx_addr_parse(addr_text(text, sizeof text, port), &to), 0);
    int c = netx_socket(AF_INET, SOCK_STREAM);
    assert_true(c >= 0);
    int small = 4096;
    assert_int_equal(setsockopt(c, SOL_SOCKET, SO_RCVBUF, &small, sizeof small), 0);
    assert_int_equal(netx_connect(c, &to, IO_MS), 0);
    assert_int_equal(netx_set_timeout(c, IO_MS), 0);
    int s = accept_one(listener);

    size_t total = 8 * (size_t)MIB;
    for (size_t at = 0; at < total; at += PATTERN_RUN) {
        if (netx_send_all(s, stream_at(at), PATTERN_RUN) != 0) {
            fail_msg("the backend's send at %zu: %s", at, netx_last_error());
        }
    }
    assert_int_equal(netx_shutdown(s, SHUT_WR), 0);
    assert_int_equal(netx_send_all(c, "bye\n", 4), 0);
    assert_int_equal(netx_shutdown(c, SHUT_WR), 0);
    char got[4];
    assert_int_equal(netx_recv_all(s, got, 4), 4);
    assert_int_equal(netx_recv(s, got, 1), 0); /* the client's end reached it */

    /* The proxy waits for the client to read: a few system calls, far
     * under 20% of a CPU (room for the sanitizers); a spin is 100%. */
    long long tps = sysconf(_SC_CLK_TCK);
    long long t0 = proc_now_ms();
    long long c0 = cpu_ticks(proxy.pid);
    pause_ms(1000);
    long long used = cpu_ticks(proxy.pid) - c0;
    long long limit = tps * (proc_now_ms() - t0) / 1000 / 5;
    if (used >= limit) {
        fail_msg("tcp_proxy used %lld ticks of CPU in 1 s holding bytes for a client that "
                 "does not read (limit %lld; %lld ticks a second)",
                 used, limit, tps);
    }

    /* Every byte is still delivered, then the end. */
    read_stream(c, total, "the client");
    ssize_t n = netx_recv(c, got, 1);
    if (n != 0) {
        fail_msg("after the 8 MiB, expected the end of the stream, got %zd (%s)", n,
                 n < 0 ? netx_last_error() : "a byte");
    }
    assert_int_equal(netx_close(c), 0);
    assert_int_equal(netx_close(s), 0);
    assert_int_equal(netx_close(listener), 0);
    stop_ok(&proxy, "tcp_proxy", SIGTERM);
}

/* ------------------------------------------------------------------------
 * A long stream
 * ------------------------------------------------------------------------ */

static void proxy_100_mib_echoed_byte_for_byte(void **state)
{
    (void)state;
    char b[32];
    addr_text(b, sizeof b, start_backend(&backend[0], "event_server", "0"));
    int port = start_proxy((const char *const[]){"-b", b, NULL});
    make_pattern(6);
    int fd = connect_client(port);
    echo_stream(fd, 100 * (size_t)MIB, 1, 60000);
    assert_int_equal(netx_close(fd), 0);
    stop_ok(&proxy, "tcp_proxy", SIGTERM);
    stop_ok(&backend[0], "event_server", SIGTERM);
}

/* ------------------------------------------------------------------------
 * Backpressure: a side that does not read
 * ------------------------------------------------------------------------ */

#define PUSH_MAX      (64 * (size_t)MIB)
#define RSS_BOUND_KIB (4 * 1024) /* -B 65536 holds 64 KiB each way */

/* A small buffer on the socket that will not read (set on the listener, so
 * accepted sockets have it from the start): the kernel holds little on the
 * way, and the proxy's own cap decides whether the sender waits. */
static int small_buffer_listener(int *port)
{
    int fd = netx_socket(AF_INET, SOCK_STREAM);
    assert_true(fd >= 0);
    int small = 65536;
    assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small), 0);
    assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &small, sizeof small), 0);
    netx_addr a;
    assert_int_equal(netx_addr_parse("127.0.0.1:0", &a), 0);
    assert_int_equal(netx_bind(fd, &a), 0);
    assert_int_equal(netx_listen(fd, 16), 0);
    *port = netx_local_port(fd);
    return fd;
}

/* One exchange through the proxy, so what it sets up for its first
 * connection is in the "before" figure of its memory. */
static void warm_up(int port, int listener)
{
    int c = connect_client(port);
    int s = accept_one(listener);
    assert_int_equal(netx_send_all(c, stream_at(0), PATTERN_RUN), 0);
    read_stream(s, PATTERN_RUN, "warm-up, at the backend");
    assert_int_equal(netx_send_all(s, stream_at(0), PATTERN_RUN), 0);
    read_stream(c, PATTERN_RUN, "warm-up, at the client");
    assert_int_equal(netx_close(c), 0);
    assert_int_equal(netx_close(s), 0);
}

/*
 * to_backend: the client sends and the backend never reads; otherwise the
 * backend sends and the client never reads. Either way the proxy must stop
 * reading from the sender once its cap (-B 65536) is full, so its memory
 * stays small and the sender is made to wait; and when the reader reads at
 * last, every byte arrives in order.
 */
static void check_backpressure(int to_backend)
{
    int bport;
    int listener = small_buffer_listener(&bport);
    char b[32];
    int port = start_proxy((const char *const[]){"-b", addr_text(b, sizeof b, bport), "-B", "65536",
                                                 "--check-ms", "3600000", NULL});
    accept_check(listener);
    make_pattern(to_backend ? 7 : 8);
    warm_up(port, listener);
    long before = rss_kib(proxy.pid);

    int c = connect_client(port);
    int small = 65536;
    assert_int_equal(setsockopt(c, SOL_SOCKET, SO_SNDBUF, &small, sizeof small), 0);
    assert_int_equal(setsockopt(c, SOL_SOCKET, SO_RCVBUF, &small, sizeof small), 0);
    int s = accept_one(listener);
    int sender = to_backend ? c : s;
    int reader = to_backend ? s : c;

    int stalled;
    size_t sent = push_until_stalled(sender, PUSH_MAX, &stalled);
    long after = rss_kib(proxy.pid);
    /* A proxy that read all it was given would hold it: tens of MiB. */
    if (after - before >= RSS_BOUND_KIB) {
        fail_msg("with -B 65536, tcp_proxy grew from %ld KiB to %ld KiB while the %s sent %zu "
                 "bytes that were never read",
                 before, after, to_backend ? "client" : "backend", sent);
    }
    if (!stalled) {
        fail_msg("with -B 65536, the %s could send %zu bytes to a peer that never reads: the "
                 "proxy did not stop reading",
                 to_backend ? "client" : "backend", sent);
    }

    read_stream(reader, sent, to_backend ? "the backend" : "the client");
    assert_int_equal(netx_shutdown(sender, SHUT_WR), 0);
    char extra;
    assert_int_equal(netx_recv(reader, &extra, 1), 0);
    assert_int_equal(netx_close(c), 0);
    assert_int_equal(netx_close(s), 0);
    assert_int_equal(netx_close(listener), 0);
    stop_ok(&proxy, "tcp_proxy", SIGTERM);
}

static void proxy_backend_never_reads_client_waits_memory_bounded(void **state)
{
    (void)state;
    check_backpressure(1);
}

static void proxy_client_never_reads_backend_waits_memory_bounded(void **state)
{
    (void)state;
    check_backpressure(0);
}

/* ------------------------------------------------------------------------
 * Time: the idle timeout, and the graceful stop
 * ------------------------------------------------------------------------ */

static void proxy_idle_connection_closed_after_timeout(void **state)
{
    (void)state;
    char b[32];
    addr_text(b, sizeof b, start_backend(&backend[0], "event_server", "0"));
    int bbase = proc_fd_count(backend[0].pid);
    int port = start_proxy((const char *const[]){"-b", b, "-t", "1", NULL});
    int silent = connect_client(port);
    int chatty = connect_client(port);
    assert_echoes(silent, "then silence\n");
    long long start = proc_now_ms(); /* the silent one's last word */

    /* The chatty client speaks every 250 ms for 1.5 s, longer than the
     * timeout but never silent that long; meanwhile the silent one is
     * watched for its close. */
    long long closed_at = -1;
    long long next_talk = start + 250;
    int talks = 0;
    while ((talks < 6 || closed_at < 0) && proc_now_ms() - start < 6000) {
        if (talks < 6 && proc_now_ms() >= next_talk) {
            assert_echoes(chatty, "still here\n");
            talks++;
            next_talk += 250;
            continue;
        }
        int wait = talks < 6 ? proc_ms_until(next_talk) : 50;
        struct pollfd p = {.fd = silent, .events = POLLIN};
        if (closed_at < 0 && poll(&p, 1, wait) > 0) {
            closed_at = proc_now_ms();
            assert_closed_within(silent, 0);
        } else if (closed_at >= 0) {
            poll(NULL, 0, wait);
        }
    }
    if (closed_at < 0) {
        fail_msg("the silent client was still open after 6 s with -t 1");
    }
    long long took = closed_at - start;
    if (took < 500 || took > 1000 + SLACK) {
        fail_msg("the silent client was closed after %lld ms with -t 1", took);
    }
    assert_echoes(chatty, "kept\n");
    /* Its backend connection went with it. */
    assert_fds(backend[0].pid, "event_server", bbase + 1, "with the chatty client alone");
    assert_int_equal(netx_close(silent), 0);
    assert_int_equal(netx_close(chatty), 0);
    stop_ok(&proxy, "tcp_proxy", SIGTERM);
    stop_ok(&backend[0], "event_server", SIGTERM);
}

/* A connect to the proxy's port, now: refused (nothing listens). */
static void assert_refused(int port)
{
    int fd = netx_tcp_connect("127.0.0.1", (uint16_t)port, IO_MS);
    if (fd >= 0) {
        netx_close(fd);
        fail_msg("a new client was accepted after the stop signal");
    }
    assert_int_equal(netx_last_errno(), ECONNREFUSED);
}

/* Start a proxy with grace `grace` in front of an echo backend, with one
 * client connected and served; SIGTERM it and wait for it to say it is
 * draining. Returns the client. */
static int proxy_draining(const char *grace, int *port)
{
    char b[32];
    addr_text(b, sizeof b, start_backend(&backend[0], "event_server", "0"));
    *port = start_proxy((const char *const[]){"-b", b, "-g", grace, NULL});
    int c = connect_client(*port);
    assert_echoes(c, "before the stop\n");
    assert_int_equal(kill(proxy.pid, SIGTERM), 0);
    expect_line("stopping: letting 1 connections finish", proc_now_ms(), WAIT_MS);
    return c;
}

/* SIGTERM: no new clients, the open one still served; when it ends, the
 * proxy exits 0 at once, long before its grace of 60 s. */
static void proxy_sigterm_drains_open_connection_exits_zero(void **state)
{
    (void)state;
    int port;
    int c = proxy_draining("60", &port);
    assert_refused(port);
    assert_echoes(c, "during the stop\n");
    assert_int_equal(netx_shutdown(c, SHUT_WR), 0);
    char extra;
    assert_int_equal(netx_recv(c, &extra, 1), 0);
    long long t = proc_now_ms();
    int status = proc_finish(&proxy, WAIT_MS);
    assert_int_equal(status, 0);
    if (proc_now_ms() - t > SLACK) {
        fail_msg("tcp_proxy took %lld ms to exit after its last connection ended",
                 proc_now_ms() - t);
    }
    assert_int_equal(netx_close(c), 0);
    stop_ok(&backend[0], "event_server", SIGTERM);
}

/* The connection stays open and idle: the grace period (1 s) ends it, and
 * the proxy exits 0. */
static void proxy_sigterm_grace_over_exits_zero(void **state)
{
    (void)state;
    int port;
    long long t = proc_now_ms();
    int c = proxy_draining("1", &port);
    int status = proc_finish(&proxy, WAIT_MS);
    long long took = proc_now_ms() - t;
    assert_int_equal(status, 0);
    if (took > 1000 + SLACK) {
        fail_msg("with -g 1, tcp_proxy took %lld ms to stop", took);
    }
    assert_closed_within(c, 1000);
    assert_int_equal(netx_close(c), 0);
    stop_ok(&backend[0], "event_server", SIGTERM);
}

/* A second signal ends the drain at once (the grace is a minute). */
static void proxy_second_signal_stops_at_once(void **state)
{
    (void)state;
    int port;
    int c = proxy_draining("60", &port);
    long long t = proc_now_ms();
    assert_int_equal(proc_stop(&proxy, SIGTERM, WAIT_MS), 0);
    if (proc_now_ms() - t > SLACK) {
        fail_msg("tcp_proxy took %lld ms to stop at a second signal", proc_now_ms() - t);
    }
    assert_closed_within(c, 1000);
    assert_int_equal(netx_close(c), 0);
    stop_ok(&backend[0], "event_server", SIGTERM);
}

/* ------------------------------------------------------------------------
 * The cap on clients (-n)
 * ------------------------------------------------------------------------ */

static void proxy_cap_extra_client_closed_at_once(void **state)
{
    (void)state;
    char b[32];
    addr_text(b, sizeof b, start_backend(&backend[0], "event_server", "0"));
    int port = start_proxy((const char *const[]){"-b", b, "-n", "3", NULL});
    int pbase = fd_floor(proxy.pid, 50);
    int fds[3];
    for (int i = 0; i < 3; i++) {
        fds[i] = connect_client(port);
        assert_echoes(fds[i], "one of three\n");
    }
    int extra = connect_client(port);
    assert_closed_within(extra, 1000);
    assert_int_equal(netx_close(extra), 0);
    expect_line("refused a client: at the limit of -n 3 connections", proc_now_ms(), 1000);

    /* One leaves; a newcomer takes its place, and the others are still
     * served. */
    assert_int_equal(netx_close(fds[0]), 0);
    assert_fds(proxy.pid, "tcp_proxy", pbase + 4, "after one of three clients left");
    fds[0] = connect_client(port);
    assert_echoes(fds[0], "in its place\n");
    for (int i = 0; i < 3; i++) {
        assert_echoes(fds[i], "still served\n");
        assert_int_equal(netx_close(fds[i]), 0);
    }
    stop_ok(&proxy, "tcp_proxy", SIGTERM);
    stop_ok(&backend[0], "event_server", SIGTERM);
}

/* ------------------------------------------------------------------------
 * A backend that does not answer a connect (-c)
 * ------------------------------------------------------------------------ */

/*
 * A listener whose accept queue is full: Linux drops the SYNs that come
 * to it (it does not refuse them), so a connect to it waits, as to a host
 * that has gone silent. listen(fd, 0) queues one connection; the test
 * makes connects until one is left waiting. Returns the listener, with
 * the connects in fillers (-1 where none); 0 in *port if the system did
 * not leave one waiting (the case is then skipped).
 */
#define FILLERS 8

static int silent_listener(int *port, int fillers[FILLERS])
{
    int fd = refusing_socket(port);
    assert_int_equal(listen(fd, 0), 0);
    netx_addr to;
    char text[32];
    assert_int_equal(netx_addr_parse(addr_text(text, sizeof text, *port), &to), 0);
    int waiting = 0;
    for (int i = 0; i < FILLERS; i++) {
        fillers[i] = -1;
    }
    for (int i = 0; i < FILLERS && !waiting; i++) {
        fillers[i] = netx_socket(AF_INET, SOCK_STREAM);
        assert_true(fillers[i] >= 0);
        int rc = netx_connect_start(fillers[i], &to);
        assert_true(rc == 0 || errno == EINPROGRESS);
        struct pollfd p = {.fd = fillers[i], .events = POLLOUT};
        waiting = rc != 0 && poll(&p, 1, 300) == 0;
    }
    if (!waiting) {
        *port = 0;
    }
    return fd;
}

static void proxy_silent_backend_next_after_connect_timeout(void **state)
{
    (void)state;
    int sport;
    int fillers[FILLERS];
    int silent = silent_listener(&sport, fillers);
    if (sport == 0) {
        for (int i = 0; i < FILLERS; i++) {
            if (fillers[i] >= 0) {
                netx_close(fillers[i]);
            }
        }
        netx_close(silent);
        fprintf(stderr, "skipped: this system answers connects to a full accept queue, so "
                        "there is no silent backend on loopback\n");
        skip();
    }
    char s[32];
    char b[32];
    addr_text(s, sizeof s, sport);
    addr_text(b, sizeof b, start_backend(&backend[0], "event_server", "0"));
    /*
     * The silent backend first: round robin starts there. Checks once an
     * hour: the first one fails after -c (400 ms), one failure; --fall 2, so
     * the backend goes DOWN only at a second failure - which can only be
     * the client's connect, given up after -c in turn.
     */
    int port = start_proxy((const char *const[]){"-b", s, "-b", b, "-c", "400", "--fall", "2",
                                                 "--check-ms", "3600000", NULL});
    long long t = proc_now_ms();
    int c = connect_client(port);
    assert_echoes(c, "through the second backend\n");
    long long took = proc_now_ms() - t;
    if (took < 400 - 50) {
        fail_msg("the echo came after %lld ms: the silent backend (first in turn) was not "
                 "tried for -c 400 ms",
                 took);
    }
    char down[128];
    snprintf(down, sizeof down,
             "backend %s DOWN after 2 failed checks: no answer to a connect within -c", s);
    expect_line(down, t, 400 + SLACK);
    assert_int_equal(netx_close(c), 0);

    /* DOWN, it is skipped: the next client goes straight to the other. */
    c = connect_client(port);
    assert_echoes(c, "straight through\n");
    assert_int_equal(netx_close(c), 0);

    stop_ok(&proxy, "tcp_proxy", SIGTERM);
    stop_ok(&backend[0], "event_server", SIGTERM);
    for (int i = 0; i < FILLERS; i++) {
        if (fillers[i] >= 0) {
            assert_int_equal(netx_close(fillers[i]), 0);
        }
    }
    assert_int_equal(netx_close(silent), 0);
}

/* ------------------------------------------------------------------------
 * The command line
 * ------------------------------------------------------------------------ */

/*
 * A bad command line: exit 2, a first line "tcp_proxy: ..." that mentions
 * what was wrong, then the usage, nothing on stdout. -H 127.0.0.1 -p 0
 * come first, so a proxy that wrongly starts takes no fixed port (it is
 * killed after 3 s, and the case fails).
 */
static void check_bad_usage(const char *const args[], const char *mention)
{
    const char *argv[16];
    int n = 0;
    argv[n++] = proc_path("tcp_proxy");
    argv[n++] = "-H";
    argv[n++] = "127.0.0.1";
    argv[n++] = "-p";
    argv[n++] = "0";
    for (int i = 0; args[i] != NULL; i++) {
        argv[n++] = args[i];
    }
    argv[n] = NULL;
    int status = proc_run(&helper, argv, NULL, 3000);
    const char *eol = strchr(helper.err_buf, '\n');
    if (status != 2 || eol == NULL || strncmp(helper.err_buf, "tcp_proxy: ", 11) != 0) {
        fail_msg("%s %s: exit %d, stderr: %s", args[0], args[1] != NULL ? args[1] : "", status,
                 helper.err_buf);
    }
    char first[512];
    snprintf(first, sizeof first, "%.*s", (int)(eol - helper.err_buf), helper.err_buf);
    if (strstr(first, mention) == NULL) {
        fail_msg("the reason \"%s\" does not mention %s", first, mention);
    }
    assert_true(strncmp(eol + 1, "usage: tcp_proxy ", 17) == 0);
    assert_string_equal(helper.out_buf, "");
}

#define ARGS(...) ((const char *const[]){__VA_ARGS__, NULL})

static void proxy_bad_arguments_exit_two(void **state)
{
    (void)state;
    const char *ok = "127.0.0.1:1"; /* a good backend beside the bad value */
    check_bad_usage(ARGS("-n", "5"), "at least one backend (-b HOST:PORT)");
    check_bad_usage(ARGS("--backup", ok), "at least one backend (-b HOST:PORT)");
    check_bad_usage(ARGS("-b", "127.0.0.1"), "backend \"127.0.0.1\": not HOST:PORT");
    check_bad_usage(ARGS("-b", ":80"), "backend \":80\": not HOST:PORT");
    check_bad_usage(ARGS("-b", "127.0.0.1:0"), "backend \"127.0.0.1:0\": not HOST:PORT");
    check_bad_usage(ARGS("-b", "127.0.0.1:70000"), "backend \"127.0.0.1:70000\": not HOST:PORT");
    check_bad_usage(ARGS("-b", "127.0.0.1:http"), "backend \"127.0.0.1:http\": not HOST:PORT");
    check_bad_usage(ARGS("-b", ""), "backend \"\": not HOST:PORT");
    check_bad_usage(ARGS("-b", ok, "--backup", "nowhere"), "backend \"nowhere\": not HOST:PORT");
    check_bad_usage(ARGS("-b", ok, "--backup"), "option --backup needs a value");
    check_bad_usage(ARGS("-b", ok, "--check-ms"), "option --check-ms needs a value");
    check_bad_usage(ARGS("-b", ok, "--check-ms", "9"), "--check-ms \"9\"");
    check_bad_usage(ARGS("-b", ok, "--check-ms", "3600001"), "--check-ms \"3600001\"");
    check_bad_usage(ARGS("-b", ok, "--rise", "0"), "--rise \"0\"");
    check_bad_usage(ARGS("-b", ok, "--fall", "101"), "--fall \"101\"");
    check_bad_usage(ARGS("-b", ok, "--fall", "x"), "--fall \"x\"");
    check_bad_usage(ARGS("-b", ok, "-c", "9"), "-c \"9\"");
    check_bad_usage(ARGS("-b", ok, "-n", "0"), "-n \"0\"");
    check_bad_usage(ARGS("-b", ok, "-n", "100001"), "-n \"100001\"");
    check_bad_usage(ARGS("-b", ok, "-B", "0"), "-B \"0\"");
    check_bad_usage(ARGS("-b", ok, "-B", "1073741825"), "-B \"1073741825\"");
    check_bad_usage(ARGS("-b", ok, "-t", "-1"), "-t \"-1\"");
    check_bad_usage(ARGS("-b", ok, "-t", "86401"), "-t \"86401\"");
    check_bad_usage(ARGS("-b", ok, "-g", "3601"), "-g \"3601\"");
    check_bad_usage(ARGS("-b", ok, "-g", "5s"), "-g \"5s\"");
    check_bad_usage(ARGS("-b", ok, "--rise=2"), "unknown option --rise=2");
    check_bad_usage(ARGS("-b", ok, "extra"), "unexpected argument \"extra\"");
    /* And those every example rejects alike (port, unknown option, a
     * missing value). */
    proc_check_common_bad_usage(&helper, "tcp_proxy");
}

/* A backend name that does not resolve: exit 1, one line that names it. */
static void proxy_unresolvable_backend_exits_one(void **state)
{
    (void)state;
    support_require_offline_resolver(); /* no lookup may leave loopback */
    const char *argv[] = {proc_path("tcp_proxy"),    "-H", "127.0.0.1", "-p", "0", "-b",
                          "no-such-host.invalid:80", NULL};
    assert_int_equal(proc_run(&helper, argv, NULL, WAIT_MS), 1);
    assert_true(strncmp(helper.err_buf, "tcp_proxy: backend no-such-host.invalid:80: ", 44) == 0);
    assert_ptr_equal(strchr(helper.err_buf, '\n'), helper.err_buf + helper.err_len - 1);
    assert_string_equal(helper.out_buf, "");
}

/*
 * -H as every server takes it: "-H HOST:PORT" is refused with a hint to use
 * -p, '' listens on every interface (IPv4 and IPv6), ::1 is an address.
 */
static void proxy_host_empty_every_interface_port_hint(void **state)
{
    (void)state;
    /* A backend where nothing listens: the proxy need not reach it. */
    const char *const extra[] = {"-b", "127.0.0.1:1", NULL};
    proc_check_server_host(&helper, "tcp_proxy", extra, SOCK_STREAM);
}

static void proxy_help_exits_zero(void **state)
{
    (void)state;
    const char *argv[] = {proc_path("tcp_proxy"), "-h", NULL};
    assert_int_equal(proc_run(&helper, argv, NULL, WAIT_MS), 0);
    assert_true(strncmp(helper.out_buf, "usage: tcp_proxy ", 17) == 0);
    assert_non_null(strstr(helper.out_buf, "--backup HOST:PORT"));
    assert_non_null(strstr(helper.out_buf, "--check-ms MS"));
    assert_string_equal(helper.err_buf, "");
}

int main(void)
{
    support_offline_resolver(); /* before any thread or lookup; children inherit it */
    const struct CMUnitTest tests[] = {
        TEST(proxy_round_robin_200_clients_thirds_echoed_exactly),
        TEST(proxy_backend_killed_failover_down_then_up),
        TEST(proxy_all_down_backup_then_nothing_up_client_closed),
        TEST(proxy_client_half_close_gets_whole_echo_then_end),
        TEST(proxy_backend_half_close_client_still_talks),
        TEST(proxy_half_closed_both_ways_pending_output_no_spin),
        TEST(proxy_100_mib_echoed_byte_for_byte),
        TEST(proxy_backend_never_reads_client_waits_memory_bounded),
        TEST(proxy_client_never_reads_backend_waits_memory_bounded),
        TEST(proxy_idle_connection_closed_after_timeout),
        TEST(proxy_sigterm_drains_open_connection_exits_zero),
        TEST(proxy_sigterm_grace_over_exits_zero),
        TEST(proxy_second_signal_stops_at_once),
        TEST(proxy_cap_extra_client_closed_at_once),
        TEST(proxy_silent_backend_next_after_connect_timeout),
        TEST(proxy_bad_arguments_exit_two),
        TEST(proxy_unresolvable_backend_exits_one),
        TEST(proxy_host_empty_every_interface_port_hint),
        TEST(proxy_help_exits_zero),
    };
    return cmocka_run_group_tests_name("tcp_proxy", tests, NULL, proc_kill_leftovers);
}
