/*
 * test_hello.c - hello_server and hello_client end to end: with each other,
 * with the article's own Python server.py and client.py (unchanged, from
 * examples/article/, in a network namespace of their own; and adapted to a
 * free port, from tests/article/, anywhere), their command lines, their
 * failures and their shutdown.
 */
#include "proc.h"
#include "support.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define WAIT_MS 10000 /* generous: these finish in milliseconds */

static struct proc server, client;

/* Start hello_server on a free port and return that port. */
static int start_hello_server(void)
{
    const char *argv[] = {proc_path("hello_server"), "-p", "0", NULL};
    assert_int_equal(proc_start(&server, argv, NULL, 0), 0);
    int port = proc_wait_listening(&server, WAIT_MS);
    if (port <= 0) {
        fprintf(stderr, "hello_server said: %s%s\n", server.out_buf, server.err_buf);
    }
    assert_true(port > 0);
    return port;
}

static void hello_pair_exchange_matches_article(void **state)
{
    (void)state;
    char port[8];
    snprintf(port, sizeof port, "%d", start_hello_server());
    const char *argv[] = {proc_path("hello_client"), "-p", port, NULL};
    assert_int_equal(proc_run(&client, argv, NULL, WAIT_MS), 0);
    assert_string_equal(client.out_buf, "Server says: Hello from server!\n");
    assert_int_equal(proc_finish(&server, WAIT_MS), 0);

    char want[256];
    snprintf(want, sizeof want, "listening on 127.0.0.1:%s\nWaiting for connection...\n", port);
    assert_memory_equal(server.out_buf, want, strlen(want));
    assert_non_null(strstr(server.out_buf, "Connected to 127.0.0.1:"));
    const char *tail = "Client says: Thanks, Server!\n";
    size_t len = strlen(server.out_buf);
    assert_true(len > strlen(tail));
    assert_string_equal(server.out_buf + len - strlen(tail), tail);
}

static void hello_client_with_article_server_succeeds(void **state)
{
    (void)state;
    proc_skip_without("python3", "the article's own programs cannot be run");
    const char *sargv[] = {"python3", "tests/article/server.py", "0", NULL};
    assert_int_equal(proc_start(&server, sargv, NULL, 0), 0);
    int p = proc_wait_listening(&server, WAIT_MS);
    assert_true(p > 0);
    char port[8];
    snprintf(port, sizeof port, "%d", p);
    const char *argv[] = {proc_path("hello_client"), "-p", port, NULL};
    assert_int_equal(proc_run(&client, argv, NULL, WAIT_MS), 0);
    assert_string_equal(client.out_buf, "Server says: Hello from server!\n");
    assert_int_equal(proc_finish(&server, WAIT_MS), 0);
    assert_non_null(strstr(server.out_buf, "Client says: Thanks, Server!\n"));
}

static void hello_server_with_article_client_succeeds(void **state)
{
    (void)state;
    proc_skip_without("python3", "the article's own programs cannot be run");
    char port[8];
    snprintf(port, sizeof port, "%d", start_hello_server());
    const char *argv[] = {"python3", "tests/article/client.py", port, NULL};
    assert_int_equal(proc_run(&client, argv, NULL, WAIT_MS), 0);
    assert_string_equal(client.out_buf, "Server says: Hello from server!\n");
    assert_int_equal(proc_finish(&server, WAIT_MS), 0);
    assert_non_null(strstr(server.out_buf, "Client says: Thanks, Server!\n"));
}

/* ------------------------------------------------------------------------
 * The article's own server.py and client.py, unchanged
 *
 * examples/article/server.py and client.py are guide steps 2 and 3 of the
 * article byte for byte. They use port 12345 on localhost, and a test may
 * never assume a fixed port free on the machine that runs it. So each
 * pairing runs in a child process that moves into a network namespace of
 * its own (support_private_network()), where loopback is the only
 * interface and port 12345 is free by construction. hello_server and
 * hello_client run there with no arguments at all: their defaults must be
 * the article's localhost:12345. The child sends back what both programs
 * printed, and the test checks it here.
 * ------------------------------------------------------------------------ */

#define ARTICLE_TEXT 1024

struct article_run {
    int no_namespace; /* 1: no namespace could be made, and why says why */
    char why[256];
    int server_status, client_status; /* -1: it did not run or end */
    char server_out[ARTICLE_TEXT], server_err[ARTICLE_TEXT];
    char client_out[ARTICLE_TEXT], client_err[ARTICLE_TEXT];
};

/* Keep the first ARTICLE_TEXT - 1 bytes of text in to (more would not be
 * the exchange the tests expect anyway). */
static void keep_text(char *to, const char *text)
{
    size_t n = strlen(text);
    if (n > ARTICLE_TEXT - 1) {
        n = ARTICLE_TEXT - 1;
    }
    memcpy(to, text, n);
    to[n] = '\0';
}

/* In the child: start the server, wait for its line ready, run the client
 * to its end, collect the server, write it all to out_fd. Never returns. */
static void article_child(int out_fd, const char *const sargv[], const char *ready,
                          const char *const cargv[])
{
    static struct article_run r;
    memset(&r, 0, sizeof r);
    r.server_status = -1;
    r.client_status = -1;
    /* Python holds back what it prints to a pipe until it ends; unbuffered,
     * server.py's "Waiting for connection..." says it listens, as it does
     * in a terminal. The programs themselves are untouched. */
    const char *env[] = {"PYTHONUNBUFFERED=1", NULL};
    if (support_private_network() != 0) {
        r.no_namespace = 1;
        snprintf(r.why, sizeof r.why, "%s", strerror(errno));
    } else if (proc_start(&server, sargv, env, 0) == 0) {
        if (proc_wait_output(&server, ready, WAIT_MS) == 0) {
            r.client_status = proc_run(&client, cargv, NULL, WAIT_MS);
            keep_text(r.client_out, client.out_buf);
            keep_text(r.client_err, client.err_buf);
        }
        r.server_status = proc_finish(&server, WAIT_MS); /* killed by its PID if need be */
        keep_text(r.server_out, server.out_buf);
        keep_text(r.server_err, server.err_buf);
    }
    const char *at = (const char *)&r;
    size_t left = sizeof r;
    while (left > 0) {
        ssize_t n = write(out_fd, at, left);
        if (n < 0 && errno == EINTR) {
            continue; /* interrupted before it wrote: write again */
        }
        if (n <= 0) {
            break;
        }
        at += n;
        left -= (size_t)n;
    }
    _exit(0);
}

/* Run the pairing in a child in a network of its own, and fill r with what
 * happened; skips where python3 or a namespace is missing. */
static void run_article_pairing(struct article_run *r, const char *const sargv[], const char *ready,
                                const char *const cargv[])
{
    proc_skip_without("python3", "the article's own programs cannot be run");
#ifndef __linux__
    (void)r;
    (void)sargv;
    (void)ready;
    (void)cargv;
    fprintf(stderr, "skipped: the article's programs run in a Linux network namespace of "
                    "their own\n");
    skip();
#else
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        article_child(fds[1], sargv, ready, cargv);
    }
    close(fds[1]);
    char *into = (char *)r;
    size_t got = 0;
    long long deadline = proc_now_ms() + 3 * WAIT_MS;
    while (got < sizeof *r) {
        struct pollfd pfd = {.fd = fds[0], .events = POLLIN};
        int ready_n = poll(&pfd, 1, proc_ms_until(deadline));
        if (ready_n < 0 && errno == EINTR) {
            continue;
        }
        if (ready_n <= 0) {
            break; /* the deadline passed */
        }
        ssize_t n = read(fds[0], into + got, sizeof *r - got);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            break;
        }
        got += (size_t)n;
    }
    close(fds[0]);
    if (got < sizeof *r) {
        kill(pid, SIGKILL); /* our own child, not yet reaped */
    }
    waitpid(pid, NULL, 0);
    if (got < sizeof *r) {
        fail_msg("the article's programs did not finish within %d s", 3 * WAIT_MS / 1000);
    }
    if (r->no_namespace) {
        fprintf(stderr,
                "skipped: no network namespace of its own (%s); the article's programs "
                "use port 12345, which may be taken on this machine\n",
                r->why);
        skip();
    }
#endif
}

/* text is prefix, then a port number, then suffix, and nothing else. */
static void assert_text_around_port(const char *text, const char *prefix, const char *suffix)
{
    size_t plen = strlen(prefix);
    int ok = strncmp(text, prefix, plen) == 0;
    size_t digits = ok ? strspn(text + plen, "0123456789") : 0;
    ok = ok && digits > 0 && digits <= 5 && strcmp(text + plen + digits, suffix) == 0;
    if (!ok) {
        fail_msg("got:\n%s\nwanted:\n%sPORT%s", text, prefix, suffix);
    }
}

/* The article's server.py, unchanged, and hello_client with no arguments. */
static void hello_client_with_article_server_py_unchanged_exact_exchange(void **state)
{
    (void)state;
    static struct article_run r;
    const char *sargv[] = {"python3", "examples/article/server.py", NULL};
    const char *cargv[] = {proc_path("hello_client"), NULL};
    run_article_pairing(&r, sargv, "Waiting for connection...\n", cargv);

    assert_int_equal(r.client_status, 0);
    assert_string_equal(r.client_out, "Server says: Hello from server!\n");
    assert_string_equal(r.client_err, "");
    assert_int_equal(r.server_status, 0);
    /* Python prints the peer as the tuple ('127.0.0.1', PORT). */
    assert_text_around_port(r.server_out, "Waiting for connection...\nConnected to ('127.0.0.1', ",
                            ")\nClient says: Thanks, Server!\n");
    assert_string_equal(r.server_err, "");
}

/* hello_server with no arguments, and the article's client.py, unchanged. */
static void hello_server_with_article_client_py_unchanged_exact_exchange(void **state)
{
    (void)state;
    static struct article_run r;
    const char *sargv[] = {proc_path("hello_server"), NULL};
    const char *cargv[] = {"python3", "examples/article/client.py", NULL};
    run_article_pairing(&r, sargv, "Waiting for connection...\n", cargv);

    assert_int_equal(r.client_status, 0);
    assert_string_equal(r.client_out, "Server says: Hello from server!\n");
    assert_string_equal(r.client_err, "");
    assert_int_equal(r.server_status, 0);
    assert_text_around_port(r.server_out,
                            "listening on 127.0.0.1:12345\nWaiting for connection...\n"
                            "Connected to 127.0.0.1:",
                            "\nClient says: Thanks, Server!\n");
    assert_string_equal(r.server_err, "");
}

static void hello_server_sigterm_exits_zero(void **state)
{
    (void)state;
    start_hello_server();
    assert_int_equal(proc_stop(&server, SIGTERM, WAIT_MS), 0);
}

static void hello_server_sigint_exits_zero(void **state)
{
    (void)state;
    start_hello_server();
    assert_int_equal(proc_stop(&server, SIGINT, WAIT_MS), 0);
}

static void hello_client_refused_exits_one(void **state)
{
    (void)state;
    char port[8];
    int lfd = netx_tcp_listen("127.0.0.1", 0, 0);
    snprintf(port, sizeof port, "%d", netx_local_port(lfd));
    netx_close(lfd); /* now nothing listens there */
    const char *argv[] = {proc_path("hello_client"), "-p", port, NULL};
    assert_int_equal(proc_run(&client, argv, NULL, WAIT_MS), 1);
    char want[128];
    snprintf(want, sizeof want,
             "hello_client: connect to localhost:%s (127.0.0.1): "
             "Connection refused\n",
             port);
    assert_string_equal(client.err_buf, want);
}

static void hello_client_unknown_host_exits_one(void **state)
{
    (void)state;
    support_require_offline_resolver(); /* the client inherits it */
    const char *argv[] = {proc_path("hello_client"), "-H", "no-such-host.invalid", NULL};
    assert_int_equal(proc_run(&client, argv, NULL, WAIT_MS), 1);
    assert_true(strncmp(client.err_buf, "hello_client: resolve no-such-host.invalid: ", 44) == 0);
    /* One line, ending in its newline. */
    assert_ptr_equal(strchr(client.err_buf, '\n'), client.err_buf + strlen(client.err_buf) - 1);
}

/* Start hello_client -t 1 against 127.0.0.1:port, where nothing will ever
 * answer it; the caller plays its part, then proc_finish(). */
static void start_hello_client_timeout(int port)
{
    char p[8];
    proc_port_text(port, p, sizeof p);
    const char *argv[] = {proc_path("hello_client"), "-H", "127.0.0.1", "-p", p, "-t", "1", NULL};
    assert_int_equal(proc_start(&client, argv, NULL, 0), 0);
}

/*
 * That client, took ms after its start, must have given up after its second,
 * well within 5 s, with exit status 1, nothing on stdout, and one line on
 * stderr saying which step timed out: want (the program's name and the
 * start of the library's sentence), then "): Connection timed out". What
 * lies between (a receive names the socket's fd) is not ours to fix.
 */
static void check_hello_client_timed_out(long long took, const char *want)
{
    const char *tail = "): Connection timed out\n";
    size_t len = client.err_len;
    int ok = client.status == 1 && strncmp(client.err_buf, want, strlen(want)) == 0 &&
             len > strlen(tail) && strcmp(client.err_buf + len - strlen(tail), tail) == 0 &&
             strchr(client.err_buf, '\n') == client.err_buf + len - 1;
    if (!ok) {
        fprintf(stderr,
                "hello_client -t 1: status %d after %lld ms, stderr \"%s\", wanted \"%s...%s\"\n",
                client.status, took, client.err_buf, want, tail);
    }
    assert_true(ok);
    assert_string_equal(client.out_buf, "");
    /* It did wait for its second (not failing at once for another
     * reason), and no longer than it was told, give or take a slow machine. */
    assert_true(took >= 900);
    assert_true(took < 5000);
}

/* A server that accepts, then never says its "Hello". */
static void hello_client_silent_server_times_out_exits_one(void **state)
{
    (void)state;
    int lfd = netx_tcp_listen("127.0.0.1", 0, 0);
    assert_true(lfd >= 0);
    int port = netx_local_port(lfd);
    long long t0 = proc_now_ms();
    start_hello_client_timeout(port);
    /* Take the client, so it is really served - by silence. */
    int fd = -1;
    if (netx_set_timeout(lfd, WAIT_MS) == 0) {
        fd = netx_accept(lfd, NULL);
    }
    proc_finish(&client, WAIT_MS);
    long long took = proc_now_ms() - t0;
    if (fd >= 0) {
        netx_close(fd);
    }
    netx_close(lfd);
    assert_true(fd >= 0);
    char want[96];
    snprintf(want, sizeof want, "hello_client: recv from 127.0.0.1:%d (fd ", port);
    check_hello_client_timed_out(took, want);
}

/* A server that listens but never accepts: the kernel completes the
 * handshake for it, so the client is connected, and waits in recv(). */
static void hello_client_listener_never_accepts_times_out_exits_one(void **state)
{
    (void)state;
    int lfd = netx_tcp_listen("127.0.0.1", 0, 0);
    assert_true(lfd >= 0);
    int port = netx_local_port(lfd);
    long long t0 = proc_now_ms();
    start_hello_client_timeout(port);
    proc_finish(&client, WAIT_MS);
    long long took = proc_now_ms() - t0;
    netx_close(lfd);
    char want[96];
    snprintf(want, sizeof want, "hello_client: recv from 127.0.0.1:%d (fd ", port);
    check_hello_client_timed_out(took, want);
}

/*
 * A server that never accepts and whose backlog is full: Linux then drops
 * each new SYN, so the connection itself never completes, and the client
 * must give up connecting after its -t, not after the minutes of the
 * kernel's own retries.
 */
static void hello_client_full_backlog_connect_times_out_exits_one(void **state)
{
    (void)state;
    netx_addr addr;
    assert_int_equal(netx_addr_parse("127.0.0.1:0", &addr), 0);
    int lfd = netx_socket(AF_INET, SOCK_STREAM);
    assert_true(lfd >= 0);
    int ok =
        netx_bind(lfd, &addr) == 0 && netx_listen(lfd, 1) == 0 && netx_local_addr(lfd, &addr) == 0;
    /* Connect until one connection does not complete in 200 ms: the queue
     * is full (a backlog of 1 holds 2 on Linux). At most 16 tries. */
    int fill[16];
    int n = 0;
    int full = 0;
    while (ok && !full && n < 16) {
        fill[n] = netx_socket(AF_INET, SOCK_STREAM);
        if (fill[n] < 0) {
            break;
        }
        full = netx_connect(fill[n], &addr, 200) != 0;
        n++;
    }
    long long t0 = proc_now_ms();
    int port = netx_local_port(lfd);
    if (full) {
        start_hello_client_timeout(port);
        proc_finish(&client, WAIT_MS);
    }
    long long took = proc_now_ms() - t0;
    for (int i = 0; i < n; i++) {
        netx_close(fill[i]);
    }
    netx_close(lfd);
    assert_true(ok);
    assert_true(full);
    char want[96];
    snprintf(want, sizeof want, "hello_client: connect to 127.0.0.1:%d (127.0.0.1", port);
    check_hello_client_timed_out(took, want);
}

static void hello_client_bad_timeout_exits_two(void **state)
{
    (void)state;
    const char *bad[] = {"0", "abc", "-1", "99999", "3601", "+5", " 5", "5x", ""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char reason[80];
        snprintf(reason, sizeof reason, "-t \"%s\": not a number of seconds from 1 to 3600",
                 bad[i]);
        proc_check_bad_usage(&client, "hello_client", "-t", bad[i], reason);
    }
    proc_check_bad_usage(&client, "hello_client", "-t", NULL, "option -t needs a value");
    /* The usage it printed documents the option. */
    assert_non_null(strstr(client.err_buf, "\n  -t SECONDS "));
}

static void hello_bad_arguments_exit_two(void **state)
{
    (void)state;
    const char *names[] = {"hello_server", "hello_client"};
    for (int i = 0; i < 2; i++) {
        proc_check_common_bad_usage(&client, names[i]);
        proc_check_bad_usage(&client, names[i], "extra", NULL, "unexpected argument \"extra\"");
    }
}

/*
 * -H as every server takes it: "-H HOST:PORT" is refused with a hint to use
 * -p, '' listens on every interface (IPv4 and IPv6), ::1 is an address.
 */
static void hello_server_host_empty_every_interface_port_hint(void **state)
{
    (void)state;
    proc_check_server_host(&client, "hello_server", NULL, SOCK_STREAM);
}

static void hello_help_exits_zero(void **state)
{
    (void)state;
    const char *names[] = {"hello_server", "hello_client"};
    for (int i = 0; i < 2; i++) {
        const char *argv[] = {proc_path(names[i]), "-h", NULL};
        assert_int_equal(proc_run(&client, argv, NULL, WAIT_MS), 0);
        assert_true(strncmp(client.out_buf, "usage: ", 7) == 0);
        assert_string_equal(client.err_buf, "");
    }
}

static void hello_trace_shows_each_step(void **state)
{
    (void)state;
    char port[8];
    snprintf(port, sizeof port, "%d", start_hello_server());
    const char *argv[] = {proc_path("hello_client"), "-p", port, NULL};
    const char *env[] = {"NETX_TRACE=1", NULL};
    assert_int_equal(proc_start(&client, argv, env, 0), 0);
    assert_int_equal(proc_finish(&client, WAIT_MS), 0);
    assert_int_equal(proc_finish(&server, WAIT_MS), 0);
    const char *steps[] = {"netx: socket(AF_INET, SOCK_STREAM) = ", "netx: connect(", "netx: recv(",
                           "netx: send(", "netx: close("};
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        assert_non_null(strstr(client.err_buf, steps[i]));
    }
}

int main(void)
{
    support_offline_resolver();
    const struct CMUnitTest tests[] = {
        TEST(hello_pair_exchange_matches_article),
        TEST(hello_client_with_article_server_succeeds),
        TEST(hello_server_with_article_client_succeeds),
        TEST(hello_client_with_article_server_py_unchanged_exact_exchange),
        TEST(hello_server_with_article_client_py_unchanged_exact_exchange),
        TEST(hello_server_sigterm_exits_zero),
        TEST(hello_server_sigint_exits_zero),
        TEST(hello_client_refused_exits_one),
        TEST(hello_client_unknown_host_exits_one),
        TEST(hello_client_silent_server_times_out_exits_one),
        TEST(hello_client_listener_never_accepts_times_out_exits_one),
        TEST(hello_client_full_backlog_connect_times_out_exits_one),
        TEST(hello_client_bad_timeout_exits_two),
        TEST(hello_bad_arguments_exit_two),
        TEST(hello_server_host_empty_every_interface_port_hint),
        TEST(hello_help_exits_zero),
        TEST(hello_trace_shows_each_step),
    };
    return cmocka_run_group_tests_name("hello", tests, NULL, NULL);
}
