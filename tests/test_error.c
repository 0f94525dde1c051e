/*
 * test_error.c - the per-thread error record: netx_last_error() and its
 * sentences, netx_last_errno(), netx_last_gai_error(),
 * netx_last_transferred() and netx_perror(), the errno a resolver failure
 * maps to, and sentences and trace lines that stay one line whatever the
 * caller's text holds.
 *
 * Failures are provoked with real loopback sockets: a port that was just
 * closed refuses connections, a peer that stops sending makes a receive
 * time out, and a name under .invalid never resolves.
 */
#include "support.h"

#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef __linux__
#include <sys/mount.h>
#endif

/* A loopback port that refuses connections: one that was free a moment
 * ago, found by binding port 0 and closing the listener again. */
static int closed_port(void)
{
    int lfd = netx_tcp_listen("127.0.0.1", 0, 0);
    assert_true(lfd >= 0);
    int port = netx_local_port(lfd);
    assert_true(port > 0);
    assert_int_equal(netx_close(lfd), 0);
    return port;
}

/* Make this thread's last failure a refused connection; returns the port. */
static int fail_with_refusal(void)
{
    int port = closed_port();
    assert_int_equal(netx_tcp_connect("127.0.0.1", (uint16_t)port, 2000), -1);
    assert_int_equal(errno, ECONNREFUSED);
    return port;
}

/* Resolve a name that cannot exist, from /etc/hosts alone (main() set
 * that up): the lookup never leaves the machine. */
static void fail_with_unknown_host(void)
{
    netx_addr a;
    support_require_offline_resolver();
    assert_int_equal(netx_resolve("no-such-host.invalid", 80, &a, 1), -1);
}

/* Lay a hosts file over /etc/hosts (in the private mount namespace main()
 * made) that lists "localhost" and the names given, all 127.0.0.1; undone
 * by hosts_unlisting(). 0 on success. */
static int hosts_listing(const char *names)
{
#ifndef __linux__
    (void)names;
    errno = ENOSYS;
    return -1;
#else
    char path[] = "/tmp/netx-test-hosts-XXXXXX";
    char text[256];
    int len = snprintf(text, sizeof text, "127.0.0.1 localhost %s\n", names);
    int fd = mkstemp(path);
    if (fd < 0) {
        return -1;
    }
    ssize_t w = write(fd, text, (size_t)len);
    close(fd);
    int rc = w == len ? mount(path, "/etc/hosts", "none", MS_BIND, NULL) : -1;
    unlink(path); /* the mount keeps the file itself */
    return rc;
#endif
}

static void hosts_unlisting(void)
{
#ifdef __linux__
    umount2("/etc/hosts", 0);
#endif
}

/* A name in the domain "invalid" (RFC 6761) is refused without asking the
 * resolver: even with /etc/hosts listing it, the answer is no - and so no
 * DNS server is ever asked about it. A name that only ends in the letters
 * "invalid" is looked up as any other. */
static void error_resolve_invalid_domain_never_asks_resolver(void **state)
{
    (void)state;
    netx_addr a;
    support_require_offline_resolver();
    if (hosts_listing("listed.invalid LISTED.INVALID. invalid notinvalid") != 0) {
        fprintf(stderr, "skipped: cannot lay a hosts file over /etc/hosts: %s\n",
                strerror(errno));
        skip();
    }
    static const char *const refused[] = {"listed.invalid", "LISTED.INVALID.", "invalid",
                                          "a.b.Invalid"};
    int counts[4];
    int errs[4];
    int gais[4];
    for (int i = 0; i < 4; i++) {
        counts[i] = netx_resolve(refused[i], 80, &a, 1);
        errs[i] = errno;
        gais[i] = netx_last_gai_error();
    }
    int plain = netx_resolve("notinvalid", 80, &a, 1);
    hosts_unlisting();
    for (int i = 0; i < 4; i++) {
        assert_int_equal(counts[i], -1);
        assert_int_equal(errs[i], ENOENT);
        assert_int_equal(gais[i], EAI_NONAME);
    }
    assert_int_equal(plain, 1); /* from the hosts file */
}

/* What netx_perror(prefix) writes to stderr, caught in a temporary file
 * that stands in for descriptor 2 during the call. */
static void capture_perror(const char *prefix, char *out, size_t cap)
{
    FILE *f = tmpfile();
    assert_non_null(f);
    fflush(stderr);
    int saved = dup(STDERR_FILENO);
    assert_true(saved >= 0);
    int moved = dup2(fileno(f), STDERR_FILENO);
    if (moved >= 0) {
        netx_perror(prefix);
        fflush(stderr);
        dup2(saved, STDERR_FILENO);
    }
    /* Only now, with stderr back, may an assertion report anything. */
    close(saved);
    assert_true(moved >= 0);
    rewind(f);
    size_t n = fread(out, 1, cap - 1, f);
    out[n] = '\0';
    fclose(f);
}

/* What a thread sees in its own record. */
struct thread_view {
    char text[400];
    int err;
    int gai;
    size_t transferred;
    int parse_rc;
};

static void *read_fresh_record(void *arg)
{
    struct thread_view *v = arg;
    snprintf(v->text, sizeof v->text, "%s", netx_last_error());
    v->err = netx_last_errno();
    v->gai = netx_last_gai_error();
    v->transferred = netx_last_transferred();
    return NULL;
}

static void *fail_parse_then_read(void *arg)
{
    struct thread_view *v = arg;
    netx_addr a;
    v->parse_rc = netx_addr_parse("bogus", &a);
    snprintf(v->text, sizeof v->text, "%s", netx_last_error());
    v->err = netx_last_errno();
    return NULL;
}

static void error_fresh_thread_reports_no_error(void **state)
{
    (void)state;
    struct thread_view v;
    pthread_t t;

    /* Give the main thread a failure first, so that a shared record would
     * show through in the new thread. */
    fail_with_refusal();
    memset(&v, 0x55, sizeof v);
    assert_int_equal(pthread_create(&t, NULL, read_fresh_record, &v), 0);
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_string_equal(v.text, "no error");
    assert_int_equal(v.err, 0);
    assert_int_equal(v.gai, 0);
    assert_int_equal(v.transferred, 0);
}

static void error_refused_sentence_names_step_address_cause(void **state)
{
    (void)state;
    char want[200];
    int port = fail_with_refusal();
    snprintf(want, sizeof want, "connect to 127.0.0.1:%d (127.0.0.1): %s", port,
             strerror(ECONNREFUSED));
    assert_string_equal(netx_last_error(), want);
}

static void error_record_is_per_thread(void **state)
{
    (void)state;
    struct thread_view v;
    pthread_t t;
    char mine[400];

    fail_with_refusal();
    snprintf(mine, sizeof mine, "%s", netx_last_error());
    memset(&v, 0, sizeof v);
    assert_int_equal(pthread_create(&t, NULL, fail_parse_then_read, &v), 0);
    assert_int_equal(pthread_join(t, NULL), 0);

    /* The other thread saw its own failure... */
    assert_int_equal(v.parse_rc, -1);
    assert_int_equal(v.err, EINVAL);
    assert_non_null(strstr(v.text, "bogus"));
    /* ...and this thread's record did not move. */
    assert_string_equal(netx_last_error(), mine);
    assert_int_equal(netx_last_errno(), ECONNREFUSED);
}

static void error_success_leaves_record_alone(void **state)
{
    (void)state;
    char before[400];
    char buf[4];
    int c, s;

    fail_with_refusal();
    snprintf(before, sizeof before, "%s", netx_last_error());

    /* A whole successful exchange, every step of the article. */
    support_tcp_pair("127.0.0.1", &c, &s);
    netx_addr a;
    assert_int_equal(netx_resolve("127.0.0.1", 1, &a, 1), 1);
    assert_int_equal(netx_send_all(c, "ok", 2), 0);
    assert_int_equal(netx_recv_all(s, buf, 2), 2);
    assert_int_equal(netx_close(c), 0);
    assert_int_equal(netx_close(s), 0);

    assert_string_equal(netx_last_error(), before);
    assert_int_equal(netx_last_errno(), ECONNREFUSED);
}

static void error_success_leaves_errno_alone(void **state)
{
    (void)state;
    netx_addr a;
    char buf[4];

    /* netx.h: "A successful call leaves errno and the record alone."
     * EDOM is a value no socket call ever produces. */
    errno = EDOM;
    assert_int_equal(netx_resolve("127.0.0.1", 1, &a, 1), 1);
    assert_int_equal(errno, EDOM);
    int lfd = netx_tcp_listen("127.0.0.1", 0, 0);
    assert_true(lfd >= 0);
    assert_int_equal(errno, EDOM);
    int port = netx_local_port(lfd);
    assert_int_equal(errno, EDOM);
    /* With a timeout the connect goes through a non-blocking connect(2),
     * which says EINPROGRESS on its way to success. */
    int c = netx_tcp_connect("127.0.0.1", (uint16_t)port, 2000);
    assert_true(c >= 0);
    assert_int_equal(errno, EDOM);
    int s = netx_accept(lfd, NULL);
    assert_true(s >= 0);
    assert_int_equal(errno, EDOM);
    assert_int_equal(netx_send(c, "x", 1), 1);
    assert_int_equal(netx_recv(s, buf, sizeof buf), 1);
    assert_int_equal(errno, EDOM);
    assert_int_equal(netx_close(c), 0);
    assert_int_equal(netx_close(s), 0);
    assert_int_equal(netx_close(lfd), 0);
    assert_int_equal(errno, EDOM);
}

static void error_last_errno_outlives_errno(void **state)
{
    (void)state;
    fail_with_refusal();
    /* Anything may overwrite errno after the failure; the record keeps it. */
    errno = 0;
    assert_int_equal(netx_last_errno(), ECONNREFUSED);
}

static void error_last_gai_error_after_resolver_failure(void **state)
{
    (void)state;
    fail_with_unknown_host();
    assert_int_equal(netx_last_gai_error(), EAI_NONAME);
}

static void error_last_gai_error_zero_after_other_failure(void **state)
{
    (void)state;
    fail_with_unknown_host();
    assert_int_not_equal(netx_last_gai_error(), 0);
    fail_with_refusal();
    assert_int_equal(netx_last_gai_error(), 0);
}

static void error_last_transferred_counts_partial_receive(void **state)
{
    (void)state;
    char buf[10];
    int c, s;

    support_tcp_pair("127.0.0.1", &c, &s);
    assert_int_equal(netx_send_all(s, "abc", 3), 0);
    assert_int_equal(netx_set_timeout(c, 100), 0);
    assert_int_equal(netx_recv_all(c, buf, sizeof buf), -1);
    assert_int_equal(errno, ETIMEDOUT);
    assert_int_equal(netx_last_transferred(), 3);
    assert_memory_equal(buf, "abc", 3);
    netx_close(c);
    netx_close(s);
}

static void error_last_transferred_zero_after_other_failure(void **state)
{
    (void)state;
    char buf[10];
    int c, s;

    support_tcp_pair("127.0.0.1", &c, &s);
    assert_int_equal(netx_send_all(s, "abc", 3), 0);
    assert_int_equal(netx_set_timeout(c, 100), 0);
    assert_int_equal(netx_recv_all(c, buf, sizeof buf), -1);
    assert_int_equal(netx_last_transferred(), 3);
    netx_close(c);
    netx_close(s);
    fail_with_refusal();
    assert_int_equal(netx_last_transferred(), 0);
}

static void error_perror_prints_prefix_and_sentence(void **state)
{
    (void)state;
    char got[600];
    char want[600];

    fail_with_refusal();
    snprintf(want, sizeof want, "myprog: %s\n", netx_last_error());
    capture_perror("myprog", got, sizeof got);
    assert_string_equal(got, want);
}

static void error_perror_without_prefix_prints_sentence(void **state)
{
    (void)state;
    char got[600];
    char want[600];

    fail_with_refusal();
    snprintf(want, sizeof want, "%s\n", netx_last_error());
    capture_perror(NULL, got, sizeof got);
    assert_string_equal(got, want);
    capture_perror("", got, sizeof got);
    assert_string_equal(got, want);
}

static void error_resolve_unknown_host_enoent(void **state)
{
    (void)state;
    fail_with_unknown_host();
    assert_int_equal(errno, ENOENT);
    assert_int_equal(netx_last_errno(), ENOENT);
}

static void error_resolve_unknown_host_sentence_exact(void **state)
{
    (void)state;
    char want[300];

    fail_with_unknown_host();
    snprintf(want, sizeof want, "resolve no-such-host.invalid: %s", gai_strerror(EAI_NONAME));
    assert_string_equal(netx_last_error(), want);
}

/* A port written into the host ("127.0.0.1:80") is refused at once, with a
 * sentence that says what to do - never handed to the resolver, which would
 * look the whole text up as a name, DNS and all. IPv6 addresses, with
 * colons of their own, still resolve. */
static void error_resolve_port_in_host_einval(void **state)
{
    (void)state;
    netx_addr a[4];
    static const char *const with_port[] = {"127.0.0.1:80", "localhost:8080", "[::1]:443",
                                            ":80"};
    for (size_t i = 0; i < sizeof with_port / sizeof with_port[0]; i++) {
        char want[160];
        errno = 0;
        assert_int_equal(netx_resolve(with_port[i], 80, a, 4), -1);
        assert_int_equal(errno, EINVAL);
        assert_int_equal(netx_last_gai_error(), 0);
        snprintf(want, sizeof want,
                 "resolve %s: a port in the host name: give the host and the port apart",
                 with_port[i]);
        assert_string_equal(netx_last_error(), want);
    }
    errno = 0;
    assert_int_equal(netx_tcp_connect("127.0.0.1:1", 1, 1000), -1);
    assert_int_equal(errno, EINVAL);
    static const char *const addresses[] = {"::1", "[::1]", "::ffff:127.0.0.1", "127.0.0.1"};
    for (size_t i = 0; i < sizeof addresses / sizeof addresses[0]; i++) {
        assert_int_equal(netx_resolve(addresses[i], 80, a, 4), 1);
    }
}

/* Sentences quote what the caller passed in ---------------------------------- */

/* Fail unless text holds no control character at all (a newline would let
 * the caller's input start a second, forged line in a log). */
static void assert_no_control_chars(const char *text)
{
    for (size_t i = 0; text[i] != '\0'; i++) {
        unsigned char c = (unsigned char)text[i];
        if (c < 0x20 || c == 0x7f) {
            fail_msg("control character 0x%02x at offset %zu of \"%s\"", c, i, text);
        }
    }
}

static void error_parse_port_control_chars_escaped(void **state)
{
    (void)state;
    uint16_t port;
    char want[200];

    assert_int_equal(netx_parse_port("1\nnetx: forged", &port), -1);
    assert_int_equal(errno, EINVAL);
    assert_no_control_chars(netx_last_error());
    /* The newline shows as backslash and n, the rest of the text as typed. */
    snprintf(want, sizeof want, "port \"1\\nnetx: forged\": not a number from 0 to 65535: %s",
             strerror(EINVAL));
    assert_string_equal(netx_last_error(), want);

    assert_int_equal(netx_parse_port("8\r\x1b[2J", &port), -1);
    assert_no_control_chars(netx_last_error());
    assert_non_null(strstr(netx_last_error(), "\"8\\r\\x1b[2J\""));
}

static void error_addr_parse_control_chars_escaped(void **state)
{
    (void)state;
    netx_addr a;

    assert_int_equal(netx_addr_parse("127.0.0.1:80\r\nnetx: forged\x1b[0m", &a), -1);
    assert_int_equal(errno, EINVAL);
    assert_no_control_chars(netx_last_error());
    assert_non_null(strstr(netx_last_error(), "127.0.0.1:80\\r\\nnetx: forged\\x1b[0m"));

    /* In the host part too, and with a control character that has no
     * short escape (0x01). */
    assert_int_equal(netx_addr_parse("[::1\n]:80", &a), -1);
    assert_no_control_chars(netx_last_error());
    assert_non_null(strstr(netx_last_error(), "[::1\\n]:80"));
    char text[32];
    snprintf(text, sizeof text, "%c127.0.0.1:80", 1);
    assert_int_equal(netx_addr_parse(text, &a), -1);
    assert_no_control_chars(netx_last_error());
    assert_non_null(strstr(netx_last_error(), "\\x01127.0.0.1:80"));
}

/* A name with a newline is looked up in /etc/hosts alone (main() set that
 * up), so the lookup never leaves the machine. */
static void error_resolve_name_with_newline_escaped(void **state)
{
    (void)state;
    netx_addr a;
    char want[300];
    support_require_offline_resolver();

    assert_int_equal(netx_resolve("bad\nnetx: forged.invalid", 80, &a, 1), -1);
    assert_no_control_chars(netx_last_error());
    snprintf(want, sizeof want, "resolve bad\\nnetx: forged.invalid: %s",
             gai_strerror(netx_last_gai_error()));
    assert_string_equal(netx_last_error(), want);
}

static void error_tcp_listen_host_with_newline_escaped(void **state)
{
    (void)state;
    support_require_offline_resolver();

    assert_int_equal(netx_tcp_listen("bad\r\nhost\x1b.invalid", 0, 1), -1);
    assert_no_control_chars(netx_last_error());
    assert_non_null(strstr(netx_last_error(), "bad\\r\\nhost\\x1b.invalid"));
}

/* Trace lines quote host names too: each step must stay one line that
 * starts with "netx: ". */
static void error_trace_line_with_newline_stays_one_line(void **state)
{
    (void)state;
    netx_addr a;
    char text[2048];
    support_require_offline_resolver();

    FILE *f = tmpfile();
    assert_non_null(f);
    netx_trace(f);
    int rc = netx_resolve("bad\nnetx: forged.invalid", 80, &a, 1);
    netx_trace(NULL);
    rewind(f);
    size_t n = fread(text, 1, sizeof text - 1, f);
    text[n] = '\0';
    fclose(f);

    assert_int_equal(rc, -1);
    assert_true(n > 0);
    assert_non_null(strstr(text, "netx: resolve(bad\\nnetx: forged.invalid) = -1 ("));
    /* Every line is a whole step: "netx: " first, no control character in
     * it, a newline at its end. */
    for (char *line = text; *line != '\0';) {
        char *end = strchr(line, '\n');
        assert_non_null(end);
        *end = '\0';
        if (strncmp(line, "netx: ", 6) != 0) {
            fail_msg("trace line not from a step: \"%s\"", line);
        }
        assert_no_control_chars(line);
        line = end + 1;
    }
}

int main(void)
{
    support_offline_resolver();
    const struct CMUnitTest tests[] = {
        TEST(error_fresh_thread_reports_no_error),
        TEST(error_refused_sentence_names_step_address_cause),
        TEST(error_record_is_per_thread),
        TEST(error_success_leaves_record_alone),
        TEST(error_success_leaves_errno_alone),
        TEST(error_last_errno_outlives_errno),
        TEST(error_last_gai_error_after_resolver_failure),
        TEST(error_last_gai_error_zero_after_other_failure),
        TEST(error_last_transferred_counts_partial_receive),
        TEST(error_last_transferred_zero_after_other_failure),
        TEST(error_perror_prints_prefix_and_sentence),
        TEST(error_perror_without_prefix_prints_sentence),
        TEST(error_resolve_unknown_host_enoent),
        TEST(error_resolve_invalid_domain_never_asks_resolver),
        TEST(error_resolve_unknown_host_sentence_exact),
        TEST(error_resolve_port_in_host_einval),
        TEST(error_parse_port_control_chars_escaped),
        TEST(error_addr_parse_control_chars_escaped),
        TEST(error_resolve_name_with_newline_escaped),
        TEST(error_tcp_listen_host_with_newline_escaped),
        TEST(error_trace_line_with_newline_stays_one_line),
    };
    return cmocka_run_group_tests_name("error", tests, NULL, NULL);
}
