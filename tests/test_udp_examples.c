/*
 * test_udp_examples.c - udp_server and udp_client end to end: with each
 * other, with outside clients (Python's socket module, socat), with a peer
 * that is not there, one that never answers and one that answers wrongly,
 * with empty and large datagrams, and through their command lines and
 * their shutdown.
 *
 * Where the test plays the other side itself, it uses a UDP socket of its
 * own on 127.0.0.1, so it decides exactly which datagrams get an answer.
 */
#include "proc.h"
#include "support.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define WAIT_MS 10000 /* generous: each exchange here takes milliseconds */

static struct proc server, client;

/* Start udp_server (with extra environment env, or NULL) on a free port and
 * return that port. */
static int start_udp_server(const char *const env[])
{
    const char *argv[] = {proc_path("udp_server"), "-p", "0", NULL};
    assert_int_equal(proc_start(&server, argv, env, 0), 0);
    int port = proc_wait_listening(&server, WAIT_MS);
    if (port <= 0) {
        fprintf(stderr, "udp_server said: %s%s\n", server.out_buf, server.err_buf);
    }
    assert_true(port > 0);
    return port;
}

/* Stop the server with SIGTERM: it must exit 0, having printed nothing but
 * its "listening on" line, and (when quiet) no complaint. */
static void stop_udp_server(int port, int quiet)
{
    assert_int_equal(proc_stop(&server, SIGTERM, WAIT_MS), 0);
    char want[64];
    snprintf(want, sizeof want, "listening on 127.0.0.1:%d\n", port);
    assert_string_equal(server.out_buf, want);
    if (quiet) {
        assert_string_equal(server.err_buf, "");
    }
}

/* A UDP socket of the test's own on 127.0.0.1, with a bound on each wait. */
static int own_socket(void)
{
    int fd = netx_udp_bind("127.0.0.1", 0);
    assert_true(fd >= 0);
    assert_int_equal(netx_set_timeout(fd, WAIT_MS), 0);
    return fd;
}

/* The datagrams waiting on fd, without blocking: how many, each checked
 * against want. */
static int count_waiting(int fd, const char *want)
{
    char buf[256];
    int n = 0;
    assert_int_equal(netx_set_nonblocking(fd, 1), 0);
    for (int i = 0; i < 100; i++) {
        ssize_t r = netx_recv(fd, buf, sizeof buf);
        if (r < 0) {
            break;
        }
        assert_int_equal(r, strlen(want));
        assert_memory_equal(buf, want, (size_t)r);
        n++;
    }
    return n;
}

/*
 * Check udp_client's complaint after it gave up on msg: one "no reply"
 * line per try, each ending in cause, then the "giving up" line, nothing
 * else.
 */
static void check_gave_up(const char *msg, int tries, const char *cause)
{
    const char *line = client.err_buf;
    for (int t = 1; t <= tries; t++) {
        char head[128];
        snprintf(head, sizeof head, "udp_client: no reply to \"%s\" (try %d of %d): ", msg, t,
                 tries);
        const char *eol = strchr(line, '\n');
        if (strncmp(line, head, strlen(head)) != 0 || eol == NULL ||
            (size_t)(eol - line) < strlen(cause) ||
            strncmp(eol - strlen(cause), cause, strlen(cause)) != 0) {
            fprintf(stderr, "expected line %d to be \"%s...%s\"; stderr was:\n%s", t, head, cause,
                    client.err_buf);
            fail();
        }
        line = eol + 1;
    }
    char last[128];
    snprintf(last, sizeof last, "udp_client: giving up on \"%s\" after %d tries\n", msg, tries);
    assert_string_equal(line, last);
}

/* ---- udp_server and udp_client together ---------------------------------- */

static void udp_pair_arguments_echoed_exactly(void **state)
{
    (void)state;
    int port = start_udp_server(NULL);
    char p[8];
    proc_port_text(port, p, sizeof p);
    const char *argv[] = {proc_path("udp_client"), "-p", p, "hello", "", "world", NULL};
    assert_int_equal(proc_run(&client, argv, NULL, WAIT_MS), 0);
    assert_string_equal(client.out_buf, "hello\n\nworld\n");
    assert_string_equal(client.err_buf, "");
    stop_udp_server(port, 1);
}

static void udp_client_stdin_one_datagram_per_line(void **state)
{
    (void)state;
    /* The server's trace counts the datagrams it received. */
    const char *env[] = {"NETX_TRACE=1", NULL};
    int port = start_udp_server(env);
    char p[8];
    proc_port_text(port, p, sizeof p);
    const char *argv[] = {proc_path("udp_client"), "-p", p, NULL};
    /* An empty line is an empty datagram; the last line has no '\n'. */
    assert_int_equal(proc_run(&client, argv, "one\ntwo\n\nlast", WAIT_MS), 0);
    assert_string_equal(client.out_buf, "one\ntwo\n\nlast\n");
    assert_string_equal(client.err_buf, "");
    stop_udp_server(port, 0);

    /* Four datagrams of 3, 3, 0 and 4 bytes, and no more: each traced as
     * "netx: recvfrom(FD, 65536) = LEN  from 127.0.0.1:PORT". The stop
     * ends the last wait "= -1 (stopped by SIGTERM)", and the look at the
     * queue before exiting "= -1 (Resource temporarily unavailable)": not
     * datagrams. */
    const char *lens[] = {") = 3 ", ") = 3 ", ") = 0 ", ") = 4 "};
    size_t seen = 0;
    for (const char *at = strstr(server.err_buf, "netx: recvfrom("); at != NULL;
         at = strstr(at, "netx: recvfrom(")) {
        const char *eol = strchr(at, '\n');
        assert_non_null(eol);
        const char *timeout = strstr(at, ") = -1 (");
        if (timeout == NULL || timeout > eol) {
            const char *len = seen < 4 ? strstr(at, lens[seen]) : NULL;
            if (len == NULL || len > eol) {
                fprintf(stderr, "datagram %zu: expected \"%s\" in the trace:\n%s", seen + 1,
                        seen < 4 ? lens[seen] : "(no more datagrams)", server.err_buf);
                fail();
            }
            seen++;
        }
        at = eol;
    }
    assert_int_equal(seen, 4);
}

/* ---- outside programs as clients ----------------------------------------- */

static const char python_client[] =
    "import socket, sys\n"
    "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
    "s.settimeout(5)\n"
    "s.sendto(b'python\\x00datagram', ('127.0.0.1', int(sys.argv[1])))\n"
    "data, addr = s.recvfrom(65536)\n"
    "sys.stdout.buffer.write(data)\n";

static void udp_server_python_client_echoed(void **state)
{
    (void)state;
    proc_skip_without("python3", "the Python client cannot be tried");
    int port = start_udp_server(NULL);
    char p[8];
    proc_port_text(port, p, sizeof p);
    const char *argv[] = {"python3", "-c", python_client, p, NULL};
    assert_int_equal(proc_run(&client, argv, NULL, WAIT_MS), 0);
    assert_int_equal(client.out_len, 15);
    assert_memory_equal(client.out_buf, "python\0datagram", 15);
    stop_udp_server(port, 1);
}

static void udp_server_socat_client_echoed(void **state)
{
    (void)state;
    proc_skip_without("socat", "the socat client cannot be tried");
    int port = start_udp_server(NULL);
    char target[64];
    snprintf(target, sizeof target, "UDP:127.0.0.1:%d", port);
    const char *argv[] = {"socat", "-", target, NULL};
    assert_int_equal(proc_run(&client, argv, "from socat\n", WAIT_MS), 0);
    assert_string_equal(client.out_buf, "from socat\n");
    stop_udp_server(port, 1);
}

/* ---- loss ------------------------------------------------------------------ */

/* Nobody on the port: each try is refused at once (ICMP port unreachable). */
static void udp_client_no_server_gives_up_after_tries(void **state)
{
    (void)state;
    int fd = netx_udp_bind("127.0.0.1", 0);
    assert_true(fd >= 0);
    char p[8];
    proc_port_text(netx_local_port(fd), p, sizeof p);
    netx_close(fd); /* now nothing is bound there */
    const char *argv[] = {proc_path("udp_client"), "-p", p, "-t", "100", "-r", "3", "hello", NULL};
    assert_int_equal(proc_run(&client, argv, NULL, WAIT_MS), 1);
    assert_string_equal(client.out_buf, "");
    check_gave_up("hello", 3, ": Connection refused");
}

/* A peer that takes every datagram and never answers: each try waits its
 * time out, and the client gives up after the last one. */
static void udp_client_black_hole_times_out_each_try(void **state)
{
    (void)state;
    int hole = own_socket();
    char p[8];
    proc_port_text(netx_local_port(hole), p, sizeof p);
    const char *argv[] = {proc_path("udp_client"), "-p", p, "-t", "100", "-r", "3", "hello", NULL};
    long long t0 = proc_now_ms();
    int status = proc_run(&client, argv, NULL, WAIT_MS);
    long long took = proc_now_ms() - t0;
    int sent = count_waiting(hole, "hello");
    netx_close(hole);
    assert_int_equal(status, 1);
    assert_string_equal(client.out_buf, "");
    check_gave_up("hello", 3, ": Connection timed out");
    assert_int_equal(sent, 3); /* one datagram per try */
    assert_true(took >= 290);  /* three waits of 100 ms */
    assert_true(took < 3000);
}

/* The first try gets no answer, the second does: the echo is printed, and
 * the one lost try is reported. */
static void udp_client_retries_after_lost_reply(void **state)
{
    (void)state;
    int peer = own_socket();
    char p[8];
    proc_port_text(netx_local_port(peer), p, sizeof p);
    const char *argv[] = {proc_path("udp_client"), "-p", p, "-t", "300", "-r", "3", "ping", NULL};
    assert_int_equal(proc_start(&client, argv, NULL, 0), 0);

    char buf[64];
    netx_addr from;
    ssize_t first = netx_recvfrom(peer, buf, sizeof buf, &from); /* ignored: "lost" */
    ssize_t second = netx_recvfrom(peer, buf, sizeof buf, &from);
    ssize_t answered = second == 4 ? netx_sendto(peer, buf, 4, &from) : -1;
    int status = proc_finish(&client, WAIT_MS);
    int extra = count_waiting(peer, "ping");
    netx_close(peer);
    assert_int_equal(first, 4);
    assert_int_equal(second, 4);
    assert_memory_equal(buf, "ping", 4);
    assert_int_equal(answered, 4);
    assert_int_equal(status, 0);
    assert_string_equal(client.out_buf, "ping\n");
    assert_int_equal(extra, 0); /* no third try */
    const char *head = "udp_client: no reply to \"ping\" (try 1 of 3): ";
    const char *tail = ": Connection timed out\n";
    assert_true(strncmp(client.err_buf, head, strlen(head)) == 0);
    assert_true(client.err_len > strlen(tail));
    assert_string_equal(client.err_buf + client.err_len - strlen(tail), tail);
    assert_ptr_equal(strchr(client.err_buf, '\n'), client.err_buf + client.err_len - 1);
}

/* Replies that are not the echo (other bytes, a prefix, a longer one) are
 * skipped; the real echo that follows is printed. */
static void udp_client_skips_reply_that_is_not_the_echo(void **state)
{
    (void)state;
    int peer = own_socket();
    char p[8];
    proc_port_text(netx_local_port(peer), p, sizeof p);
    const char *argv[] = {proc_path("udp_client"), "-p", p, "-t", "3000", "-r", "1", "ping", NULL};
    assert_int_equal(proc_start(&client, argv, NULL, 0), 0);

    char buf[64];
    netx_addr from;
    ssize_t got = netx_recvfrom(peer, buf, sizeof buf, &from);
    int ok = got == 4;
    const char *replies[] = {"pong", "pin", "pingping", "", "ping"};
    for (size_t i = 0; i < sizeof replies / sizeof replies[0] && ok; i++) {
        size_t len = strlen(replies[i]);
        ok = netx_sendto(peer, replies[i], len, &from) == (ssize_t)len;
    }
    int status = proc_finish(&client, WAIT_MS);
    netx_close(peer);
    assert_true(ok);
    assert_int_equal(status, 0);
    assert_string_equal(client.out_buf, "ping\n");
    assert_string_equal(client.err_buf, "");
}

/*
 * A peer that answers every 50 ms with something that is not the echo. -t
 * is "how long to wait for each echo": the client must still give up about
 * 200 ms after it sent, not wait as long as the wrong replies keep coming.
 */
static void udp_client_wrong_replies_do_not_extend_wait(void **state)
{
    (void)state;
    int peer = own_socket();
    char p[8];
    proc_port_text(netx_local_port(peer), p, sizeof p);
    const char *argv[] = {proc_path("udp_client"), "-p", p, "-t", "200", "-r", "1", "ping", NULL};
    assert_int_equal(proc_start(&client, argv, NULL, 0), 0);
    long long t0 = proc_now_ms();

    char buf[64];
    netx_addr from;
    ssize_t got = netx_recvfrom(peer, buf, sizeof buf, &from);
    /* Send "pong" every 50 ms until the client says something (it prints
     * only when it gives up or succeeds) or 1.5 s have passed. */
    long long said = -1;
    for (int i = 0; i < 30 && got == 4; i++) {
        if (netx_sendto(peer, "pong", 4, &from) != 4) {
            break;
        }
        struct pollfd w[2] = {{.fd = client.out, .events = POLLIN},
                              {.fd = client.err, .events = POLLIN}};
        if (poll(w, 2, 50) > 0) {
            said = proc_now_ms() - t0;
            break;
        }
    }
    int status = proc_finish(&client, WAIT_MS);
    netx_close(peer);
    assert_int_equal(got, 4);
    if (said < 0 || said > 1000) {
        fprintf(stderr,
                "udp_client -t 200 -r 1, answered \"pong\" every 50 ms: still waiting %lld ms "
                "after it sent (-1: still waiting when the test stopped after 1.5 s)\n",
                said);
    }
    assert_true(said >= 0 && said <= 1000);
    assert_int_equal(status, 1);
    check_gave_up("ping", 1, ": Connection timed out");
}

/* ---- the server and odd datagrams ---------------------------------------- */

static void udp_server_empty_and_large_datagrams_echoed_whole(void **state)
{
    (void)state;
    int port = start_udp_server(NULL);
    int fd = netx_udp_connect("127.0.0.1", (uint16_t)port);
    assert_true(fd >= 0);
    assert_int_equal(netx_set_timeout(fd, WAIT_MS), 0);

    static unsigned char out[65507], back[65536];
    support_pattern(out, sizeof out, 3);
    /* Empty; 60000 bytes; the largest an IPv4 datagram can carry; small. */
    const size_t sizes[] = {0, 60000, sizeof out, 5};
    ssize_t got[4];
    int same[4];
    for (size_t i = 0; i < 4; i++) {
        memset(back, 0xee, sizeof back);
        got[i] = netx_sendto(fd, out, sizes[i], NULL) == (ssize_t)sizes[i]
                     ? netx_recv(fd, back, sizeof back)
                     : -2;
        same[i] = got[i] >= 0 && memcmp(back, out, (size_t)got[i]) == 0;
    }
    netx_close(fd);
    for (size_t i = 0; i < 4; i++) {
        if (got[i] != (ssize_t)sizes[i] || !same[i]) {
            fprintf(stderr, "datagram of %zu bytes: %zd came back%s\n", sizes[i], got[i],
                    same[i] ? "" : ", not the same");
            fail();
        }
    }
    stop_udp_server(port, 1);
}

/* Each reply goes back to whoever sent the datagram. */
static void udp_server_replies_to_each_sender(void **state)
{
    (void)state;
    int port = start_udp_server(NULL);
    netx_addr to;
    char where[32];
    snprintf(where, sizeof where, "127.0.0.1:%d", port);
    assert_int_equal(netx_addr_parse(where, &to), 0);
    int a = own_socket();
    int b = own_socket();
    char ra[8] = "", rb[8] = "";
    int ok = netx_sendto(a, "from a", 6, &to) == 6 && netx_sendto(b, "from b", 6, &to) == 6;
    ssize_t na = ok ? netx_recv(a, ra, sizeof ra) : -1;
    ssize_t nb = ok ? netx_recv(b, rb, sizeof rb) : -1;
    netx_close(a);
    netx_close(b);
    assert_true(ok);
    assert_int_equal(na, 6);
    assert_int_equal(nb, 6);
    assert_memory_equal(ra, "from a", 6);
    assert_memory_equal(rb, "from b", 6);
    stop_udp_server(port, 1);
}

/* A client that is gone before its echo leaves: the reply is refused
 * (ICMP port unreachable), which must not disturb the server or the next
 * client. */
static void udp_server_survives_client_gone_before_reply(void **state)
{
    (void)state;
    int port = start_udp_server(NULL);
    for (int i = 0; i < 3; i++) {
        int gone = netx_udp_connect("127.0.0.1", (uint16_t)port);
        assert_true(gone >= 0);
        ssize_t sent = netx_send(gone, "bye", 3);
        netx_close(gone);
        assert_int_equal(sent, 3);
    }
    char p[8];
    proc_port_text(port, p, sizeof p);
    const char *argv[] = {proc_path("udp_client"), "-p", p, "still", "here", NULL};
    assert_int_equal(proc_run(&client, argv, NULL, WAIT_MS), 0);
    assert_string_equal(client.out_buf, "still\nhere\n");
    stop_udp_server(port, 1);
}

/* ---- stopping, command lines ----------------------------------------------- */

/* Idle, with NETX_TRACE=1, the server prints nothing: it waits in recvfrom
 * for as long as it takes (a stop signal ends the wait), instead of waking
 * up to look at a flag and tracing "= -1 (Connection timed out)" several
 * times a second, which a learner reads as a failure. */
static void udp_server_idle_trace_is_silent(void **state)
{
    (void)state;
    const char *env[] = {"NETX_TRACE=1", NULL};
    start_udp_server(env);
    struct timespec pause = {1, 0};
    nanosleep(&pause, NULL);
    assert_int_equal(proc_stop(&server, SIGTERM, WAIT_MS), 0);
    const char *first = strstr(server.err_buf, "netx: recvfrom(");
    assert_non_null(first);
    assert_non_null(strstr(first, "= -1 (stopped by SIGTERM)\n"));
    assert_null(strstr(server.err_buf, "timed out"));
    /* The one wait, ended by the stop, is the first recvfrom line. */
    assert_true(strstr(first, "\n") == strstr(first, "= -1 (stopped by SIGTERM)\n") +
                                         strlen("= -1 (stopped by SIGTERM)"));
}

static void check_stop(int sig)
{
    start_udp_server(NULL);
    long long t0 = proc_now_ms();
    assert_int_equal(proc_stop(&server, sig, WAIT_MS), 0);
    assert_true(proc_now_ms() - t0 < 2000);
    assert_string_equal(server.err_buf, "");
}

static void udp_server_sigterm_exits_zero(void **state)
{
    (void)state;
    check_stop(SIGTERM);
}

static void udp_server_sigint_exits_zero(void **state)
{
    (void)state;
    check_stop(SIGINT);
}

static void udp_bad_arguments_exit_two(void **state)
{
    (void)state;
    const char *names[] = {"udp_server", "udp_client"};
    for (int i = 0; i < 2; i++) {
        proc_check_common_bad_usage(&client, names[i]);
    }
    proc_check_bad_usage(&client, "udp_server", "extra", NULL, "unexpected argument \"extra\"");
    proc_check_bad_usage(&client, "udp_client", "-p", "0",
                         "port 0: a client needs the server's port");
}

static void udp_client_bad_timeout_and_tries_exit_two(void **state)
{
    (void)state;
    proc_check_bad_usage(&client, "udp_client", "-t", "0",
                         "-t \"0\": not a number from 1 to 3600000");
    proc_check_bad_usage(&client, "udp_client", "-t", "abc",
                         "-t \"abc\": not a number from 1 to 3600000");
    proc_check_bad_usage(&client, "udp_client", "-t", "-5",
                         "-t \"-5\": not a number from 1 to 3600000");
    proc_check_bad_usage(&client, "udp_client", "-t", "100x",
                         "-t \"100x\": not a number from 1 to 3600000");
    proc_check_bad_usage(&client, "udp_client", "-r", "0", "-r \"0\": not a number from 1 to 1000");
    proc_check_bad_usage(&client, "udp_client", "-r", "1001",
                         "-r \"1001\": not a number from 1 to 1000");
    proc_check_bad_usage(&client, "udp_client", "-t", NULL, "option -t needs a value");
    proc_check_bad_usage(&client, "udp_client", "-r", NULL, "option -r needs a value");
}

/*
 * -H as every server takes it: "-H HOST:PORT" is refused with a hint to use
 * -p, '' listens on every interface (IPv4 and IPv6), ::1 is an address.
 */
static void udp_server_host_empty_every_interface_port_hint(void **state)
{
    (void)state;
    proc_check_server_host(&client, "udp_server", NULL, SOCK_DGRAM);
}

static void udp_help_exits_zero(void **state)
{
    (void)state;
    const char *names[] = {"udp_server", "udp_client"};
    for (int i = 0; i < 2; i++) {
        const char *argv[] = {proc_path(names[i]), "-h", NULL};
        assert_int_equal(proc_run(&client, argv, NULL, WAIT_MS), 0);
        char want[64];
        snprintf(want, sizeof want, "usage: %s ", names[i]);
        assert_true(strncmp(client.out_buf, want, strlen(want)) == 0);
        assert_string_equal(client.err_buf, "");
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TEST(udp_pair_arguments_echoed_exactly),
        TEST(udp_client_stdin_one_datagram_per_line),
        TEST(udp_server_python_client_echoed),
        TEST(udp_server_socat_client_echoed),
        TEST(udp_client_no_server_gives_up_after_tries),
        TEST(udp_client_black_hole_times_out_each_try),
        TEST(udp_client_retries_after_lost_reply),
        TEST(udp_client_skips_reply_that_is_not_the_echo),
        TEST(udp_client_wrong_replies_do_not_extend_wait),
        TEST(udp_server_empty_and_large_datagrams_echoed_whole),
        TEST(udp_server_replies_to_each_sender),
        TEST(udp_server_survives_client_gone_before_reply),
        TEST(udp_server_idle_trace_is_silent),
        TEST(udp_server_sigterm_exits_zero),
        TEST(udp_server_sigint_exits_zero),
        TEST(udp_bad_arguments_exit_two),
        TEST(udp_client_bad_timeout_and_tries_exit_two),
        TEST(udp_server_host_empty_every_interface_port_hint),
        TEST(udp_help_exits_zero),
    };
    return cmocka_run_group_tests_name("udp_examples", tests, NULL, proc_kill_leftovers);
}
