/*
 * test_poll.c - the event-driven echo servers (the article's architecture
 * §4) end to end: poll_server, and event_server on each backend of
 * netx_poller (epoll, and poll with NETX_POLLER=poll). They take the same
 * flags and promise the same behaviour, so every case below runs three
 * times, once per group, against each of them: 600 clients served at once by its single thread, our echo_client
 * and outside clients (python3, nc) against it, a client that sends without
 * ever reading (others still served promptly, the server's memory bounded,
 * every byte returned in order in the end, with the default output cap and
 * with a tiny one), the cap on clients and its "server busy" answer, the
 * idle timeout, clients that misbehave, shutdown on SIGTERM and SIGINT, its
 * command line, and a port that is already taken.
 *
 * The clients are the test process's own sockets, so every byte can be
 * checked; the server is the real program, started by proc_start() and
 * watched through /proc (its descriptors and its resident memory).
 */
#include "proc.h"
#include "support.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#define WAIT_MS 10000 /* for a program to start or end: generous, for ASan */
#define IO_MS   5000  /* the longest one send or recv of a test may block */

static struct proc server, client;

/* The server under test in this group, and the environment it starts with
 * (main() runs the group once per server and backend). */
static const char *server_name = "poll_server";
static const char *server_env[2];

/* The descriptor limit as it was before a test raised it (see
 * raise_fd_limit()); put back at the end of that test, or when the group
 * ends if the test failed first. */
static struct rlimit saved_nofile;
static int nofile_raised;

static void restore_fd_limit(void)
{
    if (nofile_raised) {
        if (setrlimit(RLIMIT_NOFILE, &saved_nofile) != 0) {
            fprintf(stderr, "could not put RLIMIT_NOFILE back: %s\n", strerror(errno));
        }
        nofile_raised = 0;
    }
}

static int end_group(void **state)
{
    proc_kill_leftovers(state);
    restore_fd_limit();
    return 0;
}

/*
 * Make room for `more` descriptors beyond those open now. The soft limit is
 * often 1024, too few for 600 clients plus everything else; a process may
 * raise its own soft limit up to the hard one. Returns 1 when there is
 * room, 0 (after saying why) when the hard limit is too low.
 */
static int raise_fd_limit(int more)
{
    struct rlimit rl;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
    /* Descriptors take the lowest free numbers, so the count in use plus
     * the new ones, plus slack for pipes to child programs, is the highest
     * number we will reach. */
    rlim_t need = (rlim_t)support_fd_count() + (rlim_t)more + 64;
    if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >= need) {
        return 1;
    }
    if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < need) {
        fprintf(stderr,
                "skipped: %d clients need %llu descriptors, and RLIMIT_NOFILE's hard "
                "limit is %llu (raise it with ulimit -Hn)\n",
                more, (unsigned long long)need, (unsigned long long)rl.rlim_max);
        return 0;
    }
    struct rlimit raised = rl;
    raised.rlim_cur = need;
    if (setrlimit(RLIMIT_NOFILE, &raised) != 0) {
        fprintf(stderr, "skipped: could not raise RLIMIT_NOFILE from %llu to %llu: %s\n",
                (unsigned long long)rl.rlim_cur, (unsigned long long)need, strerror(errno));
        return 0;
    }
    saved_nofile = rl;
    nofile_raised = 1;
    return 1;
}

/*
 * Start poll_server on 127.0.0.1, on a free port, with the extra options in
 * opts (NULL-terminated, or NULL); return its port.
 */
static int start_server(const char *const *opts)
{
    proc_abandon(&server);
    const char *argv[16];
    int n = 0;
    argv[n++] = proc_path(server_name);
    argv[n++] = "-H";
    argv[n++] = "127.0.0.1";
    argv[n++] = "-p";
    argv[n++] = "0";
    for (int i = 0; opts != NULL && opts[i] != NULL && n < 15; i++) {
        argv[n++] = opts[i];
    }
    argv[n] = NULL;
    assert_int_equal(proc_start(&server, argv, server_env, 0), 0);
    int port = proc_wait_listening(&server, WAIT_MS);
    if (port <= 0) {
        fprintf(stderr, "%s said: %s%s\n", server_name, server.out_buf, server.err_buf);
    }
    assert_true(port > 0);
    return port;
}

/* Send sig to the server and collect it; its exit status. */
static int stop_server(int sig, int timeout_ms)
{
    int status = proc_stop(&server, sig, timeout_ms);
    if (status != 0) {
        fprintf(stderr, "%s ended with %d; its stderr:\n%s\n", server_name, status,
                server.err_buf);
    }
    return status;
}

/* Stop it as two Ctrl-C do: a graceful stop, then at once (proc.h). */
static int stop_server_now(int sig, int timeout_ms)
{
    int status = proc_stop_now(&server, sig, timeout_ms);
    if (status != 0) {
        fprintf(stderr, "%s ended with %d; its stderr:\n%s\n", server_name, status,
                server.err_buf);
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

/* The same, failing with both numbers when the count does not come. */
static void assert_server_fds(int want, int timeout_ms, const char *when)
{
    int n = wait_server_fds(want, timeout_ms);
    if (n != want) {
        fail_msg("%s has %d descriptors open %s, expected %d", server_name, n, when, want);
    }
}

/* The server's resident memory in KiB (VmRSS in /proc/PID/status). */
static long server_rss_kib(void)
{
    char file[64];
    snprintf(file, sizeof file, "/proc/%d/status", (int)server.pid);
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

/* ------------------------------------------------------------------------
 * Many clients at once
 * ------------------------------------------------------------------------ */

#define MANY 600

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
 * all 600 clients in the middle of an exchange at the same time.
 */
static void run_flows(struct flow *f, int count, int timeout_ms)
{
    static struct pollfd p[MANY];
    static int owner[MANY];
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
    if (done < count) {
        fail_msg("only %d of %d clients had their whole echo after %d ms", done, count, timeout_ms);
    }
}

/*
 * After the echoes: nothing more may follow. Each client says it has
 * finished sending; the server must then close, and what arrives before
 * that can only be bytes it should not have sent.
 */
static void expect_only_end_of_stream(struct flow *f, int count, int timeout_ms)
{
    static struct pollfd p[MANY];
    static int owner[MANY];
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
    if (ended < count) {
        fail_msg("only %d of %d clients saw the end of the stream %d ms after they finished "
                 "sending",
                 ended, count, timeout_ms);
    }
}

static void poll_many_clients_each_echoed_exactly(void **state)
{
    (void)state;
    if (!raise_fd_limit(MANY)) {
        skip();
    }
    int port = start_server((const char *[]){"-n", "1000", NULL});
    int baseline = proc_fd_count(server.pid);
    assert_true(baseline > 0);

    struct flow *f = calloc(MANY, sizeof *f);
    assert_non_null(f);
    for (int i = 0; i < MANY; i++) {
        f[i].fd = connect_client(port);
        assert_int_equal(netx_set_nonblocking(f[i].fd, 1), 0);
        /* 1 KiB to about 7.4 KiB, every length different and every
         * pattern too: a byte delivered to the wrong client, or twice,
         * shows. */
        f[i].len = 1024 + (size_t)i * 11;
        f[i].out = malloc(f[i].len);
        f[i].in = malloc(f[i].len);
        assert_non_null(f[i].out);
        assert_non_null(f[i].in);
        support_pattern(f[i].out, f[i].len, (unsigned)i + 1);
    }
    /* Every connection is accepted before any byte is sent: the one
     * thread really holds all 600 at once. */
    assert_server_fds(baseline + MANY, 5000, "with 600 clients connected");

    run_flows(f, MANY, 6000);
    for (int i = 0; i < MANY; i++) {
        assert_int_equal(f[i].got, f[i].len);
        if (memcmp(f[i].in, f[i].out, f[i].len) != 0) {
            fail_msg("client %d: its echo of %zu bytes differs from what it sent", i, f[i].len);
        }
    }
    expect_only_end_of_stream(f, MANY, 5000);

    for (int i = 0; i < MANY; i++) {
        assert_int_equal(netx_close(f[i].fd), 0);
        free(f[i].out);
        free(f[i].in);
    }
    free(f);

    /* Each client said goodbye and the server closed it: nothing is left
     * open. */
    assert_server_fds(baseline, 3000, "after 600 clients left");
    assert_int_equal(stop_server(SIGTERM, WAIT_MS), 0);
    restore_fd_limit();
}

/* ------------------------------------------------------------------------
 * Other clients
 * ------------------------------------------------------------------------ */

static void poll_echo_client_output_exact(void **state)
{
    (void)state;
    char port[8];
    snprintf(port, sizeof port, "%d", start_server(NULL));
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

static void poll_python_client_echoed_exactly(void **state)
{
    (void)state;
    if (!proc_have("python3")) {
        fprintf(stderr, "skipped: python3 is not installed, so no outside client\n");
        skip();
    }
    char port[8];
    snprintf(port, sizeof port, "%d", start_server(NULL));
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

static void poll_nc_client_echoed_exactly(void **state)
{
    (void)state;
    if (!proc_have("nc")) {
        fprintf(stderr, "skipped: nc is not installed, so the netcat client cannot be tried\n");
        skip();
    }
    /* -N (shut down the write side at the end of input, so the server
     * closes after the echo) is netcat-openbsd's. */
    const char *help[] = {"nc", "-h", NULL};
    proc_run(&client, help, NULL, WAIT_MS);
    if (strstr(client.err_buf, "-N") == NULL && strstr(client.out_buf, "-N") == NULL) {
        fprintf(stderr, "skipped: this nc has no -N option (netcat-openbsd has)\n");
        skip();
    }
    char port[8];
    snprintf(port, sizeof port, "%d", start_server(NULL));
    const char *argv[] = {"nc", "-N", "127.0.0.1", port, NULL};
    assert_int_equal(proc_run(&client, argv, "from nc\nsecond line\n", WAIT_MS), 0);
    assert_string_equal(client.out_buf, "from nc\nsecond line\n");
    assert_int_equal(stop_server(SIGTERM, WAIT_MS), 0);
}

/* ------------------------------------------------------------------------
 * A client that sends and never reads
 * ------------------------------------------------------------------------ */

#define MIB     (1024 * 1024)
#define HOG_MAX (64 * MIB)

/* The hog's stream: this 64 KiB pattern over and over, so its echo can be
 * checked at any offset. */
static unsigned char hog_chunk[65536];

/*
 * Connect a client that sends and never reads, and push until the system
 * has taken nothing for 300 ms (and at least 1 MiB went), for at most
 * HOG_MAX bytes and 5 s. Its receive buffer fills, then the server's send
 * buffer, then the server's output buffer for it up to -b; the server must
 * then stop reading from it, so that its receive buffer, and at last the
 * hog's send buffer, fill too. *stalled says whether that happened.
 * Returns the hog's descriptor (non-blocking); *sent is how much it sent.
 */
static int hog_fill(int port, size_t *sent, int *stalled)
{
    support_pattern(hog_chunk, sizeof hog_chunk, 99);
    int hog = connect_client(port);
    assert_int_equal(netx_set_nonblocking(hog, 1), 0);
    *sent = 0;
    *stalled = 0;
    long long deadline = proc_now_ms() + 5000;
    while (!*stalled && *sent < HOG_MAX && proc_now_ms() < deadline) {
        size_t at = *sent % sizeof hog_chunk;
        ssize_t n = netx_send(hog, hog_chunk + at, sizeof hog_chunk - at);
        if (n > 0) {
            *sent += (size_t)n;
            continue;
        }
        if (errno != EAGAIN) {
            fail_msg("the hog, after %zu bytes: %s", *sent, netx_last_error());
        }
        struct pollfd p = {.fd = hog, .events = POLLOUT};
        *stalled = poll(&p, 1, 300) == 0 && *sent >= MIB;
    }
    if (*sent < MIB) {
        fail_msg("the hog could send only %zu bytes", *sent);
    }
    return hog;
}

/*
 * The hog reads at last: every byte it sent comes back, in order, then
 * (once it says it has finished) the end of the stream and nothing more.
 * Closes the hog.
 */
static void hog_drain(int hog, size_t sent)
{
    assert_int_equal(netx_set_nonblocking(hog, 0), 0);
    static unsigned char back[65536];
    size_t got = 0;
    /* Bounded: each recv by the socket's timeout, the loop by `sent`. */
    while (got < sent) {
        size_t at = got % sizeof hog_chunk;
        size_t want = sizeof hog_chunk - at;
        if (want > sent - got) {
            want = sent - got;
        }
        ssize_t n = netx_recv_all(hog, back, want);
        if (n != (ssize_t)want) {
            fail_msg("the hog's echo stopped after %zu of %zu bytes: %s", got, sent,
                     n < 0 ? netx_last_error() : "end of stream");
        }
        if (memcmp(back, hog_chunk + at, want) != 0) {
            fail_msg("the hog's echo differs within bytes %zu to %zu", got, got + want);
        }
        got += want;
    }
    assert_int_equal(netx_shutdown(hog, SHUT_WR), 0);
    char extra;
    assert_int_equal(netx_recv(hog, &extra, 1), 0);
    assert_int_equal(netx_close(hog), 0);
}

/* A client next to the hog has its round trip within 1 s. */
static void assert_neighbour_served(int port)
{
    long long t = proc_now_ms();
    int other = connect_client(port);
    assert_echoes(other, "not stuck behind the hog\n");
    long long took = proc_now_ms() - t;
    assert_int_equal(netx_close(other), 0);
    if (took > 1000) {
        fail_msg("a client next to the hog waited %lld ms for its echo", took);
    }
}

#define RSS_BOUND_KIB (16 * 1024)

/*
 * The whole scenario with output cap `cap` (-b): the hog stalls, a second
 * client is served promptly, the server's resident memory grows by less
 * than RSS_BOUND_KIB, and the hog gets all its bytes back when it reads.
 */
static void check_slow_reader(const char *cap)
{
    int port = start_server((const char *[]){"-b", cap, NULL});
    /* One echo first, so that what the server sets up for its first
     * client is in the "before" figure. */
    int warm = connect_client(port);
    assert_echoes(warm, "warming up\n");
    assert_int_equal(netx_close(warm), 0);
    long before = server_rss_kib();

    size_t sent;
    int stalled;
    int hog = hog_fill(port, &sent, &stalled);
    long after = server_rss_kib();
    /* A server that read everything the hog sends would hold it all: tens
     * of MiB, not the few KiB that -b allows. */
    if (after - before >= RSS_BOUND_KIB) {
        fail_msg("with -b %s, poll_server grew from %ld KiB to %ld KiB while a client sent "
                 "%zu bytes and read none",
                 cap, before, after, sent);
    }
    if (!stalled) {
        fail_msg("with -b %s, poll_server went on reading from a client that never reads: "
                 "%zu bytes taken",
                 cap, sent);
    }
    assert_neighbour_served(port);
    hog_drain(hog, sent);
    assert_int_equal(stop_server(SIGTERM, WAIT_MS), 0);
}

static void poll_slow_reader_others_served_memory_bounded(void **state)
{
    (void)state;
    check_slow_reader("65536");
}

static void poll_small_cap_slow_reader_gets_every_byte(void **state)
{
    (void)state;
    check_slow_reader("4096");
}

/* Told to stop while output for a hog is pending: it still exits 0, at
 * once, and (under the sanitizers) frees the hog's buffer. */
static void poll_sigterm_with_pending_output_exits_zero(void **state)
{
    (void)state;
    int port = start_server(NULL);
    size_t sent;
    int stalled;
    int hog = hog_fill(port, &sent, &stalled);
    assert_true(stalled);
    long long t = proc_now_ms();
    assert_int_equal(stop_server_now(SIGTERM, 2000), 0);
    long long took = proc_now_ms() - t;
    if (took > 2000) {
        fail_msg("%s took %lld ms to stop", server_name, took);
    }
    assert_int_equal(netx_close(hog), 0);
}

/* ------------------------------------------------------------------------
 * The cap on clients (-n)
 * ------------------------------------------------------------------------ */

#define CAP   5
#define CROWD 8

static void poll_cap_extra_clients_busy(void **state)
{
    (void)state;
    int port = start_server((const char *[]){"-n", "5", NULL});
    int baseline = proc_fd_count(server.pid);
    assert_true(baseline > 0);
    int fds[CROWD];
    for (int i = 0; i < CROWD; i++) {
        fds[i] = connect_client(port);
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
        int r = poll(p, (nfds_t)k, proc_ms_until(deadline));
        assert_true(r >= 0);
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
    if (n_ended != CROWD - CAP) {
        fail_msg("with -n %d and %d clients, %d were turned away", CAP, CROWD, n_ended);
    }

    int served = -1;
    for (int i = 0; i < CROWD; i++) {
        got[i][len[i]] = '\0';
        if (ended[i]) {
            assert_string_equal(got[i], "server busy\n");
        } else {
            assert_int_equal(len[i], 0);
            assert_echoes(fds[i], "served\n");
            served = i;
        }
    }
    /* The refused ones hold nothing on the server. */
    assert_server_fds(baseline + CAP, 3000, "with 5 clients served and 3 refused");

    /* One served client leaves; once the server has closed its end, a
     * newcomer is served in its place, and the others still are. */
    assert_int_equal(netx_close(fds[served]), 0);
    fds[served] = -1;
    assert_server_fds(baseline + CAP - 1, 3000, "after a served client left");
    int newcomer = connect_client(port);
    struct pollfd p = {.fd = newcomer, .events = POLLIN};
    if (poll(&p, 1, 100) != 0) {
        fail_msg("a newcomer after a client left was not served");
    }
    assert_echoes(newcomer, "in its place\n");
    assert_int_equal(netx_close(newcomer), 0);
    for (int i = 0; i < CROWD; i++) {
        if (fds[i] >= 0 && !ended[i]) {
            assert_echoes(fds[i], "still served\n");
        }
        if (fds[i] >= 0) {
            assert_int_equal(netx_close(fds[i]), 0);
        }
    }
    assert_int_equal(stop_server(SIGTERM, WAIT_MS), 0);
}

/* ------------------------------------------------------------------------
 * The idle timeout (-t)
 * ------------------------------------------------------------------------ */

static void poll_idle_client_closed_after_timeout(void **state)
{
    (void)state;
    int port = start_server((const char *[]){"-t", "1", NULL});
    int baseline = proc_fd_count(server.pid);
    assert_true(baseline > 0);
    int silent = connect_client(port);
    long long start = proc_now_ms();
    int chatty = connect_client(port);

    /* The chatty client talks every 300 ms for 2.4 s, through at least two
     * of the server's once-a-second sweeps for idle clients; meanwhile
     * watch the silent one, to see when the server closes it. */
    long long closed_at = -1;
    long long next_talk = start + 300;
    int talks = 0;
    while ((talks < 8 || closed_at < 0) && proc_now_ms() - start < 6000) {
        if (talks < 8 && proc_now_ms() >= next_talk) {
            assert_echoes(chatty, "still here\n");
            talks++;
            next_talk += 300;
            continue;
        }
        int wait = talks < 8 ? proc_ms_until(next_talk) : 100;
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
    assert_int_equal(talks, 8);
    if (closed_at < 0) {
        fail_msg("the silent client was still open after 6 s with -t 1");
    }
    long long took = closed_at - start;
    if (took < 500 || took > 5000) {
        fail_msg("the silent client was closed after %lld ms with -t 1", took);
    }
    /* Connected longer than the timeout, but never silent that long. */
    assert_echoes(chatty, "kept\n");
    assert_server_fds(baseline + 1, 1000, "with the chatty client alone");

    assert_int_equal(netx_close(silent), 0);
    assert_int_equal(netx_close(chatty), 0);
    assert_int_equal(stop_server(SIGTERM, WAIT_MS), 0);
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

static void poll_misbehaving_clients_server_recovers(void **state)
{
    (void)state;
    int port = start_server((const char *[]){"-n", "8", NULL});
    int baseline = proc_fd_count(server.pid);
    assert_true(baseline > 0);

    /* Connect and reset at once, maybe before the server accepts. */
    reset_close(connect_client(port));

    /* Half a message, then a reset: its echo may be on its way back. */
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
    assert_server_fds(baseline, 3000, "after the misbehaving clients left");
    assert_int_equal(stop_server(SIGTERM, WAIT_MS), 0);
}

/* ------------------------------------------------------------------------
 * Shutdown
 * ------------------------------------------------------------------------ */

#define STOP_CLIENTS 50

static void check_stop_with_clients(int sig)
{
    int port = start_server((const char *[]){"-n", "64", NULL});
    int baseline = proc_fd_count(server.pid);
    assert_true(baseline > 0);
    int fds[STOP_CLIENTS];
    for (int i = 0; i < STOP_CLIENTS; i++) {
        fds[i] = connect_client(port);
    }
    /* An echo each proves every one of them is being served. */
    for (int i = 0; i < STOP_CLIENTS; i++) {
        assert_echoes(fds[i], "before the stop\n");
    }
    assert_server_fds(baseline + STOP_CLIENTS, 3000, "with 50 clients");
    long long t = proc_now_ms();
    assert_int_equal(stop_server_now(sig, 2000), 0);
    long long took = proc_now_ms() - t;
    if (took > 2000) {
        fail_msg("%s took %lld ms to stop", server_name, took);
    }
    for (int i = 0; i < STOP_CLIENTS; i++) {
        assert_closed_by_server(fds[i]);
        assert_int_equal(netx_close(fds[i]), 0);
    }
}

static void poll_sigterm_with_clients_exits_zero(void **state)
{
    (void)state;
    check_stop_with_clients(SIGTERM);
}

static void poll_sigint_with_clients_exits_zero(void **state)
{
    (void)state;
    check_stop_with_clients(SIGINT);
}

/* ------------------------------------------------------------------------
 * Command line and failures
 * ------------------------------------------------------------------------ */

/*
 * A bad command line: exit 2, a first line "poll_server: ..." naming what
 * was wrong (it contains `mention`), then the usage. -H 127.0.0.1 -p 0
 * come first, so that a server that wrongly starts anyway takes no fixed
 * port; it is then killed after 3 s.
 */
static void check_bad_usage(const char *a1, const char *a2, const char *mention)
{
    const char *argv[] = {proc_path(server_name), "-H", "127.0.0.1", "-p", "0", a1, a2, NULL};
    int status = proc_run(&client, argv, NULL, 3000);
    if (status != 2) {
        fail_msg("%s %s %s: exit %d, stderr: %s", server_name, a1, a2 ? a2 : "", status,
                 client.err_buf);
    }
    char prefix[64];
    snprintf(prefix, sizeof prefix, "%s: ", server_name);
    const char *eol = strchr(client.err_buf, '\n');
    assert_non_null(eol);
    assert_true(strncmp(client.err_buf, prefix, strlen(prefix)) == 0);
    char first[256];
    snprintf(first, sizeof first, "%.*s", (int)(eol - client.err_buf), client.err_buf);
    if (strstr(first, mention) == NULL) {
        fail_msg("the reason \"%s\" does not mention %s", first, mention);
    }
    char usage[64];
    snprintf(usage, sizeof usage, "usage: %s ", server_name);
    assert_true(strncmp(eol + 1, usage, strlen(usage)) == 0);
    assert_string_equal(client.out_buf, "");
}

static void poll_bad_arguments_exit_two(void **state)
{
    (void)state;
    check_bad_usage("-n", "0", "\"0\"");
    check_bad_usage("-n", "abc", "\"abc\"");
    check_bad_usage("-n", "5x", "\"5x\"");
    check_bad_usage("-n", "1000001", "\"1000001\"");
    check_bad_usage("-b", "0", "\"0\"");
    check_bad_usage("-b", "", "\"\"");
    check_bad_usage("-b", "1073741825", "\"1073741825\"");
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
static void poll_host_empty_every_interface_port_hint(void **state)
{
    (void)state;
    proc_check_server_host(&client, server_name, NULL, SOCK_STREAM);
}

static void poll_help_exits_zero(void **state)
{
    (void)state;
    const char *argv[] = {proc_path(server_name), "-h", NULL};
    char usage[64];
    snprintf(usage, sizeof usage, "usage: %s ", server_name);
    assert_int_equal(proc_run(&client, argv, NULL, WAIT_MS), 0);
    assert_true(strncmp(client.out_buf, usage, strlen(usage)) == 0);
    assert_non_null(strstr(client.out_buf, "-n MAX"));
    assert_non_null(strstr(client.out_buf, "-b BYTES"));
    assert_non_null(strstr(client.out_buf, "-t SECONDS"));
    assert_string_equal(client.err_buf, "");
}

static void poll_port_in_use_exits_one(void **state)
{
    (void)state;
    int holder = netx_tcp_listen("127.0.0.1", 0, 0);
    assert_true(holder >= 0);
    char port[8];
    snprintf(port, sizeof port, "%d", netx_local_port(holder));
    /* -n 100: with the default 10000 clients, a hard RLIMIT_NOFILE below
     * 10016 makes poll_server warn about it on stderr before it even binds,
     * and this case is about the failure's own message. */
    const char *argv[] = {
        proc_path(server_name), "-H", "127.0.0.1", "-p", port, "-n", "100", NULL};
    int status = proc_run(&client, argv, NULL, WAIT_MS);
    assert_int_equal(netx_close(holder), 0);
    assert_int_equal(status, 1);
    /* One sentence: which step failed, and why. */
    char prefix[64];
    snprintf(prefix, sizeof prefix, "%s: ", server_name);
    assert_true(strncmp(client.err_buf, prefix, strlen(prefix)) == 0);
    assert_non_null(strstr(client.err_buf, "Address already in use"));
    assert_ptr_equal(strchr(client.err_buf, '\n'), client.err_buf + client.err_len - 1);
    assert_string_equal(client.out_buf, "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TEST(poll_many_clients_each_echoed_exactly),
        TEST(poll_echo_client_output_exact),
        TEST(poll_python_client_echoed_exactly),
        TEST(poll_nc_client_echoed_exactly),
        TEST(poll_slow_reader_others_served_memory_bounded),
        TEST(poll_small_cap_slow_reader_gets_every_byte),
        TEST(poll_sigterm_with_pending_output_exits_zero),
        TEST(poll_cap_extra_clients_busy),
        TEST(poll_idle_client_closed_after_timeout),
        TEST(poll_misbehaving_clients_server_recovers),
        TEST(poll_sigterm_with_clients_exits_zero),
        TEST(poll_sigint_with_clients_exits_zero),
        TEST(poll_bad_arguments_exit_two),
        TEST(poll_host_empty_every_interface_port_hint),
        TEST(poll_help_exits_zero),
        TEST(poll_port_in_use_exits_one),
    };
    /* The same cases against each event-driven server and backend. */
    static const struct {
        const char *group;
        const char *name;
        const char *env;
    } runs[] = {
        {"poll_server", "poll_server", NULL},
        {"event_server on epoll", "event_server", "NETX_POLLER=epoll"},
        {"event_server on poll", "event_server", "NETX_POLLER=poll"},
    };
    int failed = 0;
    for (size_t i = 0; i < sizeof runs / sizeof runs[0]; i++) {
        server_name = runs[i].name;
        server_env[0] = runs[i].env;
        failed += cmocka_run_group_tests_name(runs[i].group, tests, NULL, end_group);
    }
    return failed;
}
