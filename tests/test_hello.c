/*
 * test_hello.c - hello_server and hello_client end to end: with each other,
 * with the article's own Python server.py and client.py, their command
 * lines, their failures and their shutdown.
 */
#include "proc.h"
#include "support.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>

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
        TEST(hello_server_sigterm_exits_zero),
        TEST(hello_server_sigint_exits_zero),
        TEST(hello_client_refused_exits_one),
        TEST(hello_client_unknown_host_exits_one),
        TEST(hello_client_silent_server_times_out_exits_one),
        TEST(hello_client_listener_never_accepts_times_out_exits_one),
        TEST(hello_client_full_backlog_connect_times_out_exits_one),
        TEST(hello_client_bad_timeout_exits_two),
        TEST(hello_bad_arguments_exit_two),
        TEST(hello_help_exits_zero),
        TEST(hello_trace_shows_each_step),
    };
    return cmocka_run_group_tests_name("hello", tests, NULL, NULL);
}
