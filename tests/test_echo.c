/*
 * test_echo.c - echo_server and echo_client end to end: with each other,
 * with outside programs (nc, socat, Python's socket module) on either side,
 * with large inputs, with clients that misbehave, and through their command
 * lines, their failures, their trace and their shutdown.
 *
 * The programs are the ones in this build (build/examples, or the ASan
 * builds under make SANITIZE=1), started from the repository root.
 */
#include "proc.h"
#include "support.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define WAIT_MS 10000 /* generous: each exchange here takes milliseconds */

static struct proc server, client;

/* Start echo_server (with extra environment env, or NULL) on a free port
 * and return that port. */
static int start_echo_server(const char *const env[])
{
    const char *argv[] = {proc_path("echo_server"), "-p", "0", NULL};
    assert_int_equal(proc_start(&server, argv, env, 0), 0);
    int port = proc_wait_listening(&server, WAIT_MS);
    if (port <= 0) {
        fprintf(stderr, "echo_server said: %s%s\n", server.out_buf, server.err_buf);
    }
    assert_true(port > 0);
    return port;
}

/* Stop the server with SIGTERM: it must exit 0, having printed nothing but
 * its "listening on" line, and no complaint unless the test expects one. */
static void stop_echo_server(int port, int quiet)
{
    assert_int_equal(proc_stop(&server, SIGTERM, WAIT_MS), 0);
    char want[64];
    snprintf(want, sizeof want, "listening on 127.0.0.1:%d\n", port);
    assert_string_equal(server.out_buf, want);
    if (quiet) {
        assert_string_equal(server.err_buf, "");
    }
}

/* Run echo_client against port with the given lines as arguments and
 * check that it prints want and exits 0. */
static void run_echo_client(int port, const char *const lines[], size_t n, const char *want)
{
    char p[8];
    proc_port_text(port, p, sizeof p);
    const char *argv[16] = {proc_path("echo_client"), "-p", p};
    assert_true(n + 4 <= sizeof argv / sizeof argv[0]);
    for (size_t i = 0; i < n; i++) {
        argv[3 + i] = lines[i];
    }
    argv[3 + n] = NULL;
    assert_int_equal(proc_run(&client, argv, NULL, WAIT_MS), 0);
    assert_string_equal(client.out_buf, want);
    assert_string_equal(client.err_buf, "");
}

/*
 * Write len bytes to p's standard input while reading what it prints, then
 * finish it. Both at once, because an echo client prints as it reads: if
 * we wrote everything first, its stdout pipe would fill, it would stop
 * reading its stdin, and we would wait on each other forever.
 *
 * An echo prints exactly its input, so standard output is compared with
 * data as it arrives (it may be far larger than p->out_buf): *same says
 * whether every byte matched, and the return value is how many there were.
 * p->status tells how it ended (-1: killed at the deadline).
 */
static size_t pipe_through(struct proc *p, const char *data, size_t len, int timeout_ms, int *same)
{
    long long deadline = proc_now_ms() + timeout_ms;
    size_t written = 0, seen = 0;
    char chunk[16384];

    /* A program that dies while we write makes write() fail with EPIPE;
     * without this, SIGPIPE would end the test binary instead. The
     * program has been started already, so it does not inherit this. */
    struct sigaction ignore, old;
    memset(&ignore, 0, sizeof ignore);
    ignore.sa_handler = SIG_IGN;
    sigemptyset(&ignore.sa_mask);
    sigaction(SIGPIPE, &ignore, &old);

    *same = 1;
    fcntl(p->in, F_SETFL, fcntl(p->in, F_GETFL) | O_NONBLOCK);
    if (len == 0) {
        proc_close_stdin(p);
    }
    while (p->out >= 0 || p->err >= 0) {
        struct pollfd fds[3];
        nfds_t n = 0;
        if (p->in >= 0) {
            fds[n++] = (struct pollfd){.fd = p->in, .events = POLLOUT};
        }
        if (p->out >= 0) {
            fds[n++] = (struct pollfd){.fd = p->out, .events = POLLIN};
        }
        if (p->err >= 0) {
            fds[n++] = (struct pollfd){.fd = p->err, .events = POLLIN};
        }
        long long left = deadline - proc_now_ms();
        if (left <= 0) {
            break;
        }
        if (poll(fds, n, (int)left) < 0) {
            if (errno == EINTR) {
                continue;
            }
            break;
        }
        for (nfds_t i = 0; i < n; i++) {
            if (fds[i].revents == 0) {
                continue;
            }
            if (fds[i].fd == p->in) {
                size_t want = len - written < sizeof chunk ? len - written : sizeof chunk;
                ssize_t w = write(p->in, data + written, want);
                if (w > 0) {
                    written += (size_t)w;
                }
                if (written == len || (w < 0 && errno != EAGAIN && errno != EINTR)) {
                    proc_close_stdin(p); /* all sent, or it stopped reading */
                }
                continue;
            }
            int is_out = fds[i].fd == p->out;
            ssize_t r = read(fds[i].fd, chunk, sizeof chunk);
            if (r <= 0) {
                if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
                    close(fds[i].fd);
                    if (is_out) {
                        p->out = -1;
                    } else {
                        p->err = -1;
                    }
                }
                continue;
            }
            char *buf = is_out ? p->out_buf : p->err_buf;
            size_t *buf_len = is_out ? &p->out_len : &p->err_len;
            size_t keep = PROC_OUT_MAX - *buf_len < (size_t)r ? PROC_OUT_MAX - *buf_len : (size_t)r;
            memcpy(buf + *buf_len, chunk, keep);
            *buf_len += keep;
            buf[*buf_len] = '\0';
            if (is_out) {
                if (seen + (size_t)r > len || memcmp(data + seen, chunk, (size_t)r) != 0) {
                    *same = 0;
                }
                seen += (size_t)r;
            }
        }
    }
    sigaction(SIGPIPE, &old, NULL);
    long long left = deadline - proc_now_ms();
    proc_finish(p, left > 0 ? (int)left : 1);
    return seen;
}

/*
 * Connect to the server and send without ever reading, until neither side
 * can move: the server is then blocked sending its echo to us, mid-stream.
 * Returns the socket; *sent gets how many bytes went out.
 */
static int connect_and_clog(int port, size_t *sent)
{
    static char chunk[65536];
    memset(chunk, 'c', sizeof chunk);
    int fd = netx_tcp_connect("127.0.0.1", (uint16_t)port, WAIT_MS);
    assert_true(fd >= 0);
    assert_int_equal(netx_set_nonblocking(fd, 1), 0);
    size_t total = 0;
    long long deadline = proc_now_ms() + 5000;
    /* Stuck means: no room for 200 ms. Bounded by time and by size. */
    while (total < ((size_t)512 << 20) && proc_now_ms() < deadline) {
        ssize_t n = netx_send(fd, chunk, sizeof chunk);
        if (n > 0) {
            total += (size_t)n;
            continue;
        }
        if (n < 0 && errno != EAGAIN) {
            break;
        }
        struct pollfd p = {.fd = fd, .events = POLLOUT};
        if (poll(&p, 1, 200) == 0) {
            break;
        }
    }
    *sent = total;
    return fd;
}

/* ---- echo_server and echo_client together ------------------------------ */

static void echo_pair_arguments_echoed_exactly(void **state)
{
    (void)state;
    int port = start_echo_server(NULL);
    const char *lines[] = {"hello", "world"};
    run_echo_client(port, lines, 2, "hello\nworld\n");
    stop_echo_server(port, 1);
}

static void echo_pair_empty_argument_gives_empty_line(void **state)
{
    (void)state;
    int port = start_echo_server(NULL);
    const char *only[] = {""};
    run_echo_client(port, only, 1, "\n");
    const char *around[] = {"a", "", "b"};
    run_echo_client(port, around, 3, "a\n\nb\n");
    stop_echo_server(port, 1);
}

static void echo_client_stdin_lines_echoed_exactly(void **state)
{
    (void)state;
    int port = start_echo_server(NULL);
    char p[8];
    proc_port_text(port, p, sizeof p);
    const char *argv[] = {proc_path("echo_client"), "-p", p, NULL};
    /* An empty line, and a last line without its '\n'. */
    assert_int_equal(proc_run(&client, argv, "one\ntwo\n\nlast", WAIT_MS), 0);
    assert_string_equal(client.out_buf, "one\ntwo\n\nlast");
    assert_string_equal(client.err_buf, "");
    /* No input at all: nothing to send, nothing printed, success. */
    assert_int_equal(proc_run(&client, argv, "", WAIT_MS), 0);
    assert_string_equal(client.out_buf, "");
    assert_string_equal(client.err_buf, "");
    stop_echo_server(port, 1);
}

static void echo_client_large_stdin_echoed_byte_for_byte(void **state)
{
    (void)state;
    int port = start_echo_server(NULL);
    char p[8];
    proc_port_text(port, p, sizeof p);

    /* 200 KiB: one line of 100 KiB, then lines of many lengths (an empty
     * one among them), the last without its '\n'. */
    size_t len = 200 * 1024;
    char *data = malloc(len);
    assert_non_null(data);
    for (size_t i = 0; i < len; i++) {
        data[i] = (char)('a' + i % 26);
    }
    data[100 * 1024 - 1] = '\n';
    data[100 * 1024 + 5] = '\n';
    data[100 * 1024 + 6] = '\n';
    size_t pos = 100 * 1024 + 6;
    size_t step = 7;
    while (pos + step < len - 1) {
        pos += step;
        data[pos] = '\n';
        step = step * 31 % 6007 + 1;
    }

    const char *argv[] = {proc_path("echo_client"), "-p", p, NULL};
    assert_int_equal(proc_start(&client, argv, NULL, 1), 0);
    int same = 0;
    size_t got = pipe_through(&client, data, len, WAIT_MS, &same);
    free(data);
    assert_int_equal(client.status, 0);
    assert_int_equal(got, len);
    assert_true(same);
    assert_string_equal(client.err_buf, "");
    stop_echo_server(port, 1);
}

/*
 * A line longer than all the socket buffers between the two programs
 * together (about 8 MiB on Linux loopback with its default settings).
 * echo_client reads a line "of any length" with getline(), so it must come
 * back whole - which only works if the client reads echoes while it is
 * still sending, instead of sending the whole line first.
 */
static void echo_client_16mib_line_echoed_without_deadlock(void **state)
{
    (void)state;
    int port = start_echo_server(NULL);
    char p[8];
    proc_port_text(port, p, sizeof p);
    size_t len = (size_t)16 << 20;
    char *data = malloc(len);
    assert_non_null(data);
    for (size_t i = 0; i < len; i++) {
        data[i] = (char)('A' + i % 26);
    }
    data[len - 1] = '\n';

    const char *argv[] = {proc_path("echo_client"), "-p", p, NULL};
    assert_int_equal(proc_start(&client, argv, NULL, 1), 0);
    int same = 0;
    long long t0 = proc_now_ms();
    size_t got = pipe_through(&client, data, len, 3000, &same);
    free(data);
    if (client.status != 0) {
        fprintf(stderr,
                "echo_client with a 16 MiB line: status %d after %lld ms (-1: killed at the "
                "3 s deadline), %zu bytes echoed; stderr: %s\n",
                client.status, proc_now_ms() - t0, got, client.err_buf);
    }
    /* The server must also stop cleanly, so stop it before asserting. */
    int server_status = proc_stop(&server, SIGTERM, WAIT_MS);
    assert_int_equal(client.status, 0);
    assert_int_equal(got, len);
    assert_true(same);
    assert_int_equal(server_status, 0);
}

/* ---- outside programs as clients ---------------------------------------- */

static void echo_server_nc_client_echoed(void **state)
{
    (void)state;
    proc_skip_without("nc", "the netcat client cannot be tried");
    /* -N (shut down the write side at end of input) is netcat-openbsd's. */
    const char *help[] = {"nc", "-h", NULL};
    proc_run(&client, help, NULL, WAIT_MS);
    if (strstr(client.err_buf, "-N") == NULL && strstr(client.out_buf, "-N") == NULL) {
        fprintf(stderr, "skipped: this nc has no -N option (netcat-openbsd has)\n");
        skip();
    }
    int port = start_echo_server(NULL);
    char p[8];
    proc_port_text(port, p, sizeof p);
    const char *argv[] = {"nc", "-N", "127.0.0.1", p, NULL};
    assert_int_equal(proc_run(&client, argv, "from nc\nsecond line\n", WAIT_MS), 0);
    assert_string_equal(client.out_buf, "from nc\nsecond line\n");
    stop_echo_server(port, 1);
}

static void echo_server_socat_client_echoed(void **state)
{
    (void)state;
    proc_skip_without("socat", "the socat client cannot be tried");
    int port = start_echo_server(NULL);
    char target[64];
    snprintf(target, sizeof target, "TCP:127.0.0.1:%d", port);
    const char *argv[] = {"socat", "-", target, NULL};
    assert_int_equal(proc_run(&client, argv, "from socat\nand more\n", WAIT_MS), 0);
    assert_string_equal(client.out_buf, "from socat\nand more\n");
    stop_echo_server(port, 1);
}

/* Connect, send everything, shut down the write side, read to the end. */
static const char python_client[] =
    "import socket, sys\n"
    "c = socket.create_connection(('127.0.0.1', int(sys.argv[1])), timeout=10)\n"
    "c.sendall(b'py\\x00' + bytes(range(256)) * 100)\n"
    "c.shutdown(socket.SHUT_WR)\n"
    "got = b''\n"
    "while True:\n"
    "    d = c.recv(65536)\n"
    "    if not d:\n"
    "        break\n"
    "    got += d\n"
    "c.close()\n"
    "sys.stdout.buffer.write(got)\n";

static void echo_server_python_client_echoed(void **state)
{
    (void)state;
    proc_skip_without("python3", "the Python client cannot be tried");
    int port = start_echo_server(NULL);
    char p[8];
    proc_port_text(port, p, sizeof p);
    const char *argv[] = {"python3", "-c", python_client, p, NULL};
    assert_int_equal(proc_run(&client, argv, NULL, WAIT_MS), 0);

    char want[3 + 256 * 100];
    memcpy(want, "py", 3); /* its NUL is the third byte */
    for (size_t i = 0; i < 256 * 100; i++) {
        want[3 + i] = (char)(i % 256);
    }
    assert_int_equal(client.out_len, sizeof want);
    assert_memory_equal(client.out_buf, want, sizeof want);
    stop_echo_server(port, 1);
}

/* ---- echo_client against an echo server that is not ours ---------------- */

static const char python_server[] = "import socket\n"
                                    "s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)\n"
                                    "s.bind(('127.0.0.1', 0))\n"
                                    "s.listen(1)\n"
                                    "s.settimeout(10)\n"
                                    "print('listening on %s:%d' % s.getsockname(), flush=True)\n"
                                    "c, _ = s.accept()\n"
                                    "c.settimeout(10)\n"
                                    "while True:\n"
                                    "    d = c.recv(65536)\n"
                                    "    if not d:\n"
                                    "        break\n"
                                    "    c.sendall(d)\n"
                                    "c.close()\n"
                                    "s.close()\n";

static void echo_client_python_server_echoed(void **state)
{
    (void)state;
    proc_skip_without("python3", "the Python echo server cannot be tried");
    const char *sargv[] = {"python3", "-c", python_server, NULL};
    assert_int_equal(proc_start(&server, sargv, NULL, 0), 0);
    int port = proc_wait_listening(&server, WAIT_MS);
    if (port <= 0) {
        fprintf(stderr, "the Python server said: %s%s\n", server.out_buf, server.err_buf);
    }
    assert_true(port > 0);
    char p[8];
    proc_port_text(port, p, sizeof p);
    const char *argv[] = {
        proc_path("echo_client"), "-H", "127.0.0.1", "-p", p, "hello", "", "world", NULL};
    assert_int_equal(proc_run(&client, argv, NULL, WAIT_MS), 0);
    assert_string_equal(client.out_buf, "hello\n\nworld\n");
    assert_string_equal(client.err_buf, "");
    /* It ends once echo_client has closed its side. */
    assert_int_equal(proc_finish(&server, WAIT_MS), 0);
}

/* ---- echo_client against servers that do not echo ----------------------- */

/*
 * Play a server that is not an echo server, for one echo_client run: listen
 * on a free port of 127.0.0.1, start echo_client (with -t seconds, unless
 * seconds is NULL) with line as its only argument, take its connection and
 * the line it sends, then send answer (answer_len bytes; NULL: say nothing),
 * close at once if close_early (else when the client has ended), and let
 * the client finish. Returns how many ms the client took; how it ended is
 * in `client`.
 */
static long long run_echo_client_with_peer(const char *seconds, const char *line,
                                           const char *answer, size_t answer_len, int close_early)
{
    int lfd = netx_tcp_listen("127.0.0.1", 0, 0);
    assert_true(lfd >= 0);
    char p[8];
    proc_port_text(netx_local_port(lfd), p, sizeof p);
    const char *argv[9] = {proc_path("echo_client"), "-H", "127.0.0.1", "-p", p};
    size_t argc = 5;
    if (seconds != NULL) {
        argv[argc++] = "-t";
        argv[argc++] = seconds;
    }
    argv[argc++] = line;
    argv[argc] = NULL;
    size_t len = strlen(line) + 1;
    char *got = malloc(len);
    long long t0 = proc_now_ms();
    int started = got != NULL && proc_start(&client, argv, NULL, 0) == 0;
    int fd = -1;
    if (started && netx_set_timeout(lfd, WAIT_MS) == 0) {
        fd = netx_accept(lfd, NULL);
    }
    int ok = fd >= 0 && netx_set_timeout(fd, WAIT_MS) == 0 &&
             netx_recv_all(fd, got, len) == (ssize_t)len && memcmp(got, line, len - 1) == 0 &&
             got[len - 1] == '\n';
    if (ok && answer != NULL) {
        ok = netx_send_all(fd, answer, answer_len) == 0;
    }
    if (fd >= 0 && close_early) {
        netx_close(fd);
        fd = -1;
    }
    if (started) {
        proc_finish(&client, WAIT_MS);
    }
    long long took = proc_now_ms() - t0;
    if (fd >= 0) {
        netx_close(fd);
    }
    netx_close(lfd);
    free(got);
    assert_true(started);
    if (!ok) {
        fprintf(stderr, "echo_client did not connect and send \"%s\\n\"; it said: %s\n", line,
                client.err_buf);
    }
    assert_true(ok);
    return took;
}

/* The client must have ended with status 1, nothing on stdout (a wrong
 * answer is not printed as the echo), and exactly want on stderr. */
static void check_echo_client_refused_answer(const char *want)
{
    assert_int_equal(client.status, 1);
    assert_string_equal(client.err_buf, want);
    assert_string_equal(client.out_buf, "");
}

/* threaded_server -n 1 with its one place taken answers "server busy\n",
 * which must not pass for the echo of "hello\n" (its first 6 bytes). */
static void echo_client_busy_server_quoted_exits_one(void **state)
{
    (void)state;
    const char *sargv[] = {proc_path("threaded_server"), "-p", "0", "-n", "1", NULL};
    assert_int_equal(proc_start(&server, sargv, NULL, 0), 0);
    int port = proc_wait_listening(&server, WAIT_MS);
    if (port <= 0) {
        fprintf(stderr, "threaded_server said: %s%s\n", server.out_buf, server.err_buf);
    }
    assert_true(port > 0);
    /* The first client holds the only place: once its echo is back, a
     * thread serves it. */
    char buf[2];
    int first = netx_tcp_connect("127.0.0.1", (uint16_t)port, WAIT_MS);
    int ok = first >= 0 && netx_set_timeout(first, WAIT_MS) == 0 &&
             netx_send_all(first, "x\n", 2) == 0 && netx_recv_all(first, buf, 2) == 2 &&
             memcmp(buf, "x\n", 2) == 0;
    int status = -1;
    if (ok) {
        char p[8];
        proc_port_text(port, p, sizeof p);
        const char *argv[] = {proc_path("echo_client"), "-H", "127.0.0.1", "-p", p, "hello", NULL};
        status = proc_run(&client, argv, NULL, WAIT_MS);
    }
    if (first >= 0) {
        netx_close(first);
    }
    proc_stop(&server, SIGTERM, WAIT_MS);
    assert_true(ok);
    assert_int_equal(status, 1);
    check_echo_client_refused_answer(
        "echo_client: the server answered \"server busy\" instead of the echo of line 1\n");
}

/* An answer as long as the echo, but not the echo. */
static void echo_client_wrong_answer_same_length_exits_one(void **state)
{
    (void)state;
    run_echo_client_with_peer(NULL, "hello", "HELLO\n", 6, 0);
    check_echo_client_refused_answer(
        "echo_client: the server answered \"HELLO\" instead of the echo of line 1\n");
}

/* A hostile answer: a terminal escape sequence, a quote, a backslash, a NUL
 * and a tab, in a line far longer than ours. The message quotes 60 bytes of
 * it, each escaped, and stays one line. */
static void echo_client_wrong_answer_escaped_and_bounded(void **state)
{
    (void)state;
    char answer[200];
    memset(answer, 'A', sizeof answer);
    memcpy(answer, "\x1b[2J\"\\\0\t", 8);
    answer[sizeof answer - 1] = '\n';
    run_echo_client_with_peer(NULL, "hi", answer, sizeof answer, 0);
    check_echo_client_refused_answer(
        "echo_client: the server answered "
        "\"\\x1b[2J\\\"\\\\\\x00\\tAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\"... "
        "instead of the echo of line 1\n");
}

/* A server that sends the first half of the echo, then closes. */
static void echo_client_server_closes_early_exits_one(void **state)
{
    (void)state;
    run_echo_client_with_peer(NULL, "hello", "hel", 3, 1);
    check_echo_client_refused_answer(
        "echo_client: the server closed the connection after 3 of the 6 bytes of line 1\n");
}

/* A server that takes the line and never answers: -t 1 ends the wait. */
static void echo_client_silent_server_times_out_exits_one(void **state)
{
    (void)state;
    long long took = run_echo_client_with_peer("1", "hello", NULL, 0, 0);
    assert_int_equal(client.status, 1);
    const char *head = "echo_client: recv from 127.0.0.1:";
    const char *tail = "): Connection timed out\n";
    size_t len = client.err_len;
    if (strncmp(client.err_buf, head, strlen(head)) != 0 || len <= strlen(tail) ||
        strcmp(client.err_buf + len - strlen(tail), tail) != 0) {
        fprintf(stderr, "wanted \"%s...%s\", got \"%s\"\n", head, tail, client.err_buf);
        fail();
    }
    assert_ptr_equal(strchr(client.err_buf, '\n'), client.err_buf + len - 1);
    assert_string_equal(client.out_buf, "");
    assert_true(took >= 900); /* it waited its second... */
    assert_true(took < 5000); /* ...and not much more */
}

static void echo_client_bad_timeout_exits_two(void **state)
{
    (void)state;
    const char *bad[] = {"0", "abc", "-1", "99999", "3601", "+5", " 5", "5x", ""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char reason[80];
        snprintf(reason, sizeof reason, "-t \"%s\": not a number of seconds from 1 to 3600",
                 bad[i]);
        proc_check_bad_usage(&client, "echo_client", "-t", bad[i], reason);
    }
    proc_check_bad_usage(&client, "echo_client", "-t", NULL, "option -t needs a value");
    /* The usage it printed documents the option. */
    assert_non_null(strstr(client.err_buf, "\n  -t SECONDS "));
}

/* ---- one client at a time ------------------------------------------------ */

static void echo_server_serves_clients_in_sequence(void **state)
{
    (void)state;
    int port = start_echo_server(NULL);
    const char *first[] = {"first"};
    const char *second[] = {"second", "client"};
    const char *third[] = {"third"};
    run_echo_client(port, first, 1, "first\n");
    run_echo_client(port, second, 2, "second\nclient\n");
    run_echo_client(port, third, 1, "third\n");
    stop_echo_server(port, 1);
}

/* While one client is served, the next waits in the backlog: connected,
 * but not answered until the first one leaves. */
static void echo_server_second_client_waits_for_first(void **state)
{
    (void)state;
    int port = start_echo_server(NULL);
    char buf[8];
    int a = netx_tcp_connect("127.0.0.1", (uint16_t)port, WAIT_MS);
    assert_true(a >= 0);
    assert_int_equal(netx_set_timeout(a, WAIT_MS), 0);
    assert_int_equal(netx_send_all(a, "a\n", 2), 0);
    assert_int_equal(netx_recv_all(a, buf, 2), 2);
    assert_memory_equal(buf, "a\n", 2);

    int b = netx_tcp_connect("127.0.0.1", (uint16_t)port, WAIT_MS);
    assert_true(b >= 0);
    assert_int_equal(netx_send_all(b, "b\n", 2), 0);
    assert_int_equal(netx_set_timeout(b, 300), 0);
    ssize_t early = netx_recv(b, buf, sizeof buf);
    int early_errno = errno;

    netx_close(a); /* now the server takes b */
    assert_int_equal(netx_set_timeout(b, WAIT_MS), 0);
    ssize_t late = netx_recv_all(b, buf, 2);
    netx_close(b);
    assert_int_equal(early, -1);
    assert_int_equal(early_errno, ETIMEDOUT);
    assert_int_equal(late, 2);
    assert_memory_equal(buf, "b\n", 2);
    stop_echo_server(port, 1);
}

/* ---- clients that misbehave ---------------------------------------------- */

static void echo_server_survives_reset_mid_stream(void **state)
{
    (void)state;
    int port = start_echo_server(NULL);
    size_t sent = 0;
    int fd = connect_and_clog(port, &sent);
    /* SO_LINGER with a zero timeout: close() resets the connection (RST)
     * instead of ending it, while the server is blocked sending to us. */
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    int rc = setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    netx_close(fd);
    assert_int_equal(rc, 0);
    assert_true(sent > 0);

    const char *lines[] = {"still", "here"};
    run_echo_client(port, lines, 2, "still\nhere\n");
    stop_echo_server(port, 0);
    /* The server said what happened to that client, and nothing else. */
    assert_true(strstr(server.err_buf, "Connection reset by peer") != NULL ||
                strstr(server.err_buf, "Broken pipe") != NULL);
    for (const char *line = server.err_buf; *line != '\0';) {
        assert_true(strncmp(line, "echo_server: ", 13) == 0);
        const char *eol = strchr(line, '\n');
        assert_non_null(eol);
        line = eol + 1;
    }
}

static void echo_server_binary_bytes_echoed_then_next_client_served(void **state)
{
    (void)state;
    int port = start_echo_server(NULL);
    int fd = netx_tcp_connect("127.0.0.1", (uint16_t)port, WAIT_MS);
    assert_true(fd >= 0);
    assert_int_equal(netx_set_timeout(fd, WAIT_MS), 0);

    /* Every byte value, NUL and '\n' included, in pieces of odd sizes. */
    static unsigned char out[65536], back[65536];
    support_pattern(out, sizeof out, 7);
    for (size_t i = 0; i < sizeof out; i += 97) {
        out[i] = 0;
    }
    int ok = 1;
    for (size_t off = 0; off < sizeof out && ok;) {
        size_t n = sizeof out - off < 3001 ? sizeof out - off : 3001;
        ok = netx_send_all(fd, out + off, n) == 0 && netx_recv_all(fd, back + off, n) == (ssize_t)n;
        off += n;
    }
    /* Then we finish sending: the server closes its side in turn. */
    ok = ok && netx_shutdown(fd, SHUT_WR) == 0;
    char extra;
    ssize_t end = netx_recv(fd, &extra, 1);
    netx_close(fd);
    assert_true(ok);
    assert_memory_equal(back, out, sizeof out);
    assert_int_equal(end, 0);

    const char *lines[] = {"next"};
    run_echo_client(port, lines, 1, "next\n");
    stop_echo_server(port, 1);
}

/* ---- stopping ------------------------------------------------------------ */

static void check_stop_with_client_connected(int sig)
{
    int port = start_echo_server(NULL);
    int fd = netx_tcp_connect("127.0.0.1", (uint16_t)port, WAIT_MS);
    assert_true(fd >= 0);
    assert_int_equal(netx_set_timeout(fd, WAIT_MS), 0);
    char buf[4];
    /* After an echo, the server is surely serving us. */
    int ok = netx_send_all(fd, "x", 1) == 0 && netx_recv_all(fd, buf, 1) == 1;

    /* Two signals, as two Ctrl-C: the first lets us finish (we are idle,
     * so that would take the grace period), the second stops it now. */
    long long t0 = proc_now_ms();
    int status = proc_stop_now(&server, sig, WAIT_MS);
    long long took = proc_now_ms() - t0;
    /* It closed our connection on its way out. */
    ssize_t end = netx_recv(fd, buf, sizeof buf);
    netx_close(fd);
    assert_true(ok);
    assert_int_equal(status, 0);
    assert_true(took < 2000);
    assert_int_equal(end, 0);
    assert_true(strncmp(server.err_buf, "echo_server: stopping: ", 23) == 0);
}

static void echo_server_sigterm_with_client_connected_exits_zero(void **state)
{
    (void)state;
    check_stop_with_client_connected(SIGTERM);
}

static void echo_server_sigint_with_client_connected_exits_zero(void **state)
{
    (void)state;
    check_stop_with_client_connected(SIGINT);
}

/*
 * A client that sends but never reads leaves the server blocked in
 * netx_send_all(). Stop signals must still end it: the first starts the
 * drain, the second (netx_stop_on()) ends the blocked send.
 */
static void echo_server_sigterm_while_client_not_reading_exits_zero(void **state)
{
    (void)state;
    int port = start_echo_server(NULL);
    size_t sent = 0;
    int fd = connect_and_clog(port, &sent);

    long long t0 = proc_now_ms();
    int status = proc_stop_now(&server, SIGTERM, 2000);
    long long took = proc_now_ms() - t0;
    netx_close(fd);
    if (status != 0) {
        fprintf(stderr,
                "echo_server, blocked sending to a client that does not read (%zu bytes "
                "sent to it), did not exit on SIGTERM: status %d after %lld ms (-1: killed "
                "at the 2 s deadline)\n",
                sent, status, took);
    }
    assert_true(sent > 0);
    assert_int_equal(status, 0);
    assert_true(took < 2000);
}

/* ---- command lines and failures ------------------------------------------ */

static void echo_bad_arguments_exit_two(void **state)
{
    (void)state;
    const char *names[] = {"echo_server", "echo_client"};
    for (int i = 0; i < 2; i++) {
        proc_check_common_bad_usage(&client, names[i]);
        proc_check_bad_usage(&client, names[i], "-H", NULL, "option -H needs a value");
    }
    /* The server takes no other arguments; the client's are lines. */
    proc_check_bad_usage(&client, "echo_server", "extra", NULL, "unexpected argument \"extra\"");
    proc_check_bad_usage(&client, "echo_client", "-p", "0",
                         "port 0: a client needs the server's port");
}

/*
 * -H as every server takes it: "-H HOST:PORT" is refused with a hint to use
 * -p, '' listens on every interface (IPv4 and IPv6), ::1 is an address.
 */
static void echo_server_host_empty_every_interface_port_hint(void **state)
{
    (void)state;
    proc_check_server_host(&client, "echo_server", NULL, SOCK_STREAM);
}

static void echo_help_exits_zero(void **state)
{
    (void)state;
    const char *names[] = {"echo_server", "echo_client"};
    for (int i = 0; i < 2; i++) {
        const char *argv[] = {proc_path(names[i]), "-h", NULL};
        assert_int_equal(proc_run(&client, argv, NULL, WAIT_MS), 0);
        char want[64];
        snprintf(want, sizeof want, "usage: %s ", names[i]);
        assert_true(strncmp(client.out_buf, want, strlen(want)) == 0);
        assert_string_equal(client.err_buf, "");
    }
}

static void echo_client_refused_exits_one(void **state)
{
    (void)state;
    int lfd = netx_tcp_listen("127.0.0.1", 0, 0);
    assert_true(lfd >= 0);
    char p[8];
    proc_port_text(netx_local_port(lfd), p, sizeof p);
    netx_close(lfd); /* now nothing listens there */
    const char *argv[] = {proc_path("echo_client"), "-p", p, "hello", NULL};
    assert_int_equal(proc_run(&client, argv, NULL, WAIT_MS), 1);
    char want[128];
    snprintf(want, sizeof want,
             "echo_client: connect to localhost:%s (127.0.0.1): Connection refused\n", p);
    assert_string_equal(client.err_buf, want);
    assert_string_equal(client.out_buf, "");
}

static void echo_server_port_in_use_exits_one(void **state)
{
    (void)state;
    int lfd = netx_tcp_listen("127.0.0.1", 0, 0);
    assert_true(lfd >= 0);
    int port = netx_local_port(lfd);
    char p[8];
    proc_port_text(port, p, sizeof p);

    /* The port named exactly. */
    const char *exact[] = {proc_path("echo_server"), "-H", "127.0.0.1", "-p", p, NULL};
    int status = proc_run(&client, exact, NULL, WAIT_MS);
    char want[128];
    snprintf(want, sizeof want,
             "echo_server: bind to 127.0.0.1:%s (127.0.0.1): Address already in use\n", p);
    int exact_ok = status == 1 && strcmp(client.err_buf, want) == 0 && client.out_len == 0;
    if (!exact_ok) {
        fprintf(stderr, "echo_server -H 127.0.0.1 -p %s: status %d, stdout \"%s\", stderr \"%s\"\n",
                p, status, client.out_buf, client.err_buf);
    }

    /* The default host, localhost. Where localhost also has ::1, that
     * port is taken there too, so no address of the name is free. */
    int lfd6 = -1;
    if (support_have_ipv6()) {
        lfd6 = netx_tcp_listen("::1", (uint16_t)port, 0);
    }
    const char *dflt[] = {proc_path("echo_server"), "-p", p, NULL};
    status = proc_run(&client, dflt, NULL, WAIT_MS);
    if (lfd6 >= 0) {
        netx_close(lfd6);
    }
    netx_close(lfd);
    assert_true(exact_ok);
    assert_int_equal(status, 1);
    assert_true(strncmp(client.err_buf, "echo_server: ", 13) == 0);
    assert_non_null(strstr(client.err_buf, "Address already in use\n"));
    /* One line. */
    assert_ptr_equal(strchr(client.err_buf, '\n'), client.err_buf + client.err_len - 1);
    assert_string_equal(client.out_buf, "");
}

static void echo_server_trace_shows_accept_recv_send(void **state)
{
    (void)state;
    const char *env[] = {"NETX_TRACE=1", NULL};
    int port = start_echo_server(env);
    const char *lines[] = {"hi"};
    run_echo_client(port, lines, 1, "hi\n");
    /* The trace goes to stderr; stdout keeps only the "listening" line. */
    stop_echo_server(port, 0);
    const char *steps[] = {"netx: listen(", "netx: accept(", "netx: recv(",
                           "netx: send(",   " 3 bytes) = 3", "netx: close("};
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        if (strstr(server.err_buf, steps[i]) == NULL) {
            fprintf(stderr, "no \"%s\" in the trace:\n%s", steps[i], server.err_buf);
            fail();
        }
    }
    /* Every line of it is a trace line. */
    for (const char *line = server.err_buf; *line != '\0';) {
        assert_true(strncmp(line, "netx: ", 6) == 0);
        const char *eol = strchr(line, '\n');
        assert_non_null(eol);
        line = eol + 1;
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TEST(echo_pair_arguments_echoed_exactly),
        TEST(echo_pair_empty_argument_gives_empty_line),
        TEST(echo_client_stdin_lines_echoed_exactly),
        TEST(echo_client_large_stdin_echoed_byte_for_byte),
        TEST(echo_client_16mib_line_echoed_without_deadlock),
        TEST(echo_server_nc_client_echoed),
        TEST(echo_server_socat_client_echoed),
        TEST(echo_server_python_client_echoed),
        TEST(echo_client_python_server_echoed),
        TEST(echo_client_busy_server_quoted_exits_one),
        TEST(echo_client_wrong_answer_same_length_exits_one),
        TEST(echo_client_wrong_answer_escaped_and_bounded),
        TEST(echo_client_server_closes_early_exits_one),
        TEST(echo_client_silent_server_times_out_exits_one),
        TEST(echo_client_bad_timeout_exits_two),
        TEST(echo_server_serves_clients_in_sequence),
        TEST(echo_server_second_client_waits_for_first),
        TEST(echo_server_survives_reset_mid_stream),
        TEST(echo_server_binary_bytes_echoed_then_next_client_served),
        TEST(echo_server_sigterm_with_client_connected_exits_zero),
        TEST(echo_server_sigint_with_client_connected_exits_zero),
        TEST(echo_server_sigterm_while_client_not_reading_exits_zero),
        TEST(echo_bad_arguments_exit_two),
        TEST(echo_server_host_empty_every_interface_port_hint),
        TEST(echo_help_exits_zero),
        TEST(echo_client_refused_exits_one),
        TEST(echo_server_port_in_use_exits_one),
        TEST(echo_server_trace_shows_accept_recv_send),
    };
    return cmocka_run_group_tests_name("echo", tests, NULL, proc_kill_leftovers);
}
