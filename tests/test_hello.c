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
        TEST(hello_bad_arguments_exit_two),
        TEST(hello_help_exits_zero),
        TEST(hello_trace_shows_each_step),
    };
    return cmocka_run_group_tests_name("hello", tests, NULL, NULL);
}
