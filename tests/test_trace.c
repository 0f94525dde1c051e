/*
 * test_trace.c - trace mode: the one line per step that netx_trace() and
 * NETX_TRACE=1 print, in the format docs/design.md shows; failures with their
 * strerror text; netx_trace(NULL) turning it off; whole lines from many
 * threads; and errno left as the failing call set it.
 *
 * Tracing is process-wide, so every test turns it off again before it
 * asserts anything. The NETX_TRACE tests need a process that has not read
 * the environment yet: they run this binary again (see main()) with the
 * variable set and its stderr on a pipe.
 */
#include "support.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* The argument that makes main() run only the traced step of a child. */
#define CHILD_ARG "--trace-child-step"

/* Longest wait for a child process, generous for slow machines. */
#define CHILD_LIMIT_MS 10000

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Everything written to f so far, as a string; closes f. */
static void read_all_and_close(FILE *f, char *out, size_t cap)
{
    fflush(f);
    rewind(f);
    size_t n = fread(out, 1, cap - 1, f);
    out[n] = '\0';
    fclose(f);
}

/* Descriptors and ports of one traced session, to build expected lines. */
struct session {
    int lfd, c, s;
    int port;        /* the listener's */
    int client_port; /* the client's own */
    char text[8192]; /* the trace */
};

/*
 * The article's whole sequence with tracing on: listen, connect, accept,
 * send, recv, close. Tracing is off again when this returns.
 */
static void traced_session(struct session *ss)
{
    char buf[16];
    FILE *f = tmpfile();
    assert_non_null(f);

    netx_trace(f);
    ss->lfd = netx_tcp_listen("127.0.0.1", 0, 5);
    ss->port = netx_local_port(ss->lfd);
    ss->c = netx_tcp_connect("127.0.0.1", (uint16_t)ss->port, 2000);
    ss->s = netx_accept(ss->lfd, NULL);
    ss->client_port = netx_local_port(ss->c);
    ssize_t sent = netx_send(ss->c, "ping", 4);
    ssize_t got = netx_recv(ss->s, buf, sizeof buf);
    int closed = netx_close(ss->s);
    netx_close(ss->c);
    netx_close(ss->lfd);
    netx_trace(NULL);

    read_all_and_close(f, ss->text, sizeof ss->text);
    assert_true(ss->lfd >= 0 && ss->c >= 0 && ss->s >= 0);
    assert_int_equal(sent, 4);
    assert_int_equal(got, 4);
    assert_int_equal(closed, 0);
}

/* Assert that text has the whole line (without its newline). */
static void assert_has_line(const char *text, const char *line)
{
    size_t len = strlen(line);
    const char *p = text;
    for (;;) {
        const char *hit = strstr(p, line);
        if (hit == NULL) {
            fail_msg("trace lacks the line \"%s\"; it was:\n%s", line, text);
        }
        if ((hit == text || hit[-1] == '\n') && hit[len] == '\n') {
            return;
        }
        p = hit + 1;
    }
}

static void trace_socket_line_names_family_and_type(void **state)
{
    (void)state;
    struct session ss;
    char want[128];
    traced_session(&ss);
    snprintf(want, sizeof want, "netx: socket(AF_INET, SOCK_STREAM) = %d", ss.lfd);
    assert_has_line(ss.text, want);
}

static void trace_bind_and_listen_lines_show_arguments(void **state)
{
    (void)state;
    struct session ss;
    char want[128];
    traced_session(&ss);
    /* Port 0 is what was asked for; netx_local_port() tells the result. */
    snprintf(want, sizeof want, "netx: bind(%d, 127.0.0.1:0) = 0", ss.lfd);
    assert_has_line(ss.text, want);
    snprintf(want, sizeof want, "netx: listen(%d, 5) = 0", ss.lfd);
    assert_has_line(ss.text, want);
}

static void trace_connect_line_shows_address(void **state)
{
    (void)state;
    struct session ss;
    char want[128];
    traced_session(&ss);
    snprintf(want, sizeof want, "netx: connect(%d, 127.0.0.1:%d) = 0", ss.c, ss.port);
    assert_has_line(ss.text, want);
}

static void trace_accept_line_names_peer(void **state)
{
    (void)state;
    struct session ss;
    char want[128];
    traced_session(&ss);
    snprintf(want, sizeof want, "netx: accept(%d) = %d  peer 127.0.0.1:%d", ss.lfd, ss.s,
             ss.client_port);
    assert_has_line(ss.text, want);
}

static void trace_send_recv_lines_show_sizes(void **state)
{
    (void)state;
    struct session ss;
    char want[128];
    traced_session(&ss);
    snprintf(want, sizeof want, "netx: send(%d, 4 bytes) = 4", ss.c);
    assert_has_line(ss.text, want);
    snprintf(want, sizeof want, "netx: recv(%d, 16) = 4", ss.s);
    assert_has_line(ss.text, want);
}

static void trace_close_lines_for_each_socket(void **state)
{
    (void)state;
    struct session ss;
    char want[128];
    traced_session(&ss);
    int fds[3] = {ss.s, ss.c, ss.lfd};
    for (int i = 0; i < 3; i++) {
        snprintf(want, sizeof want, "netx: close(%d) = 0", fds[i]);
        assert_has_line(ss.text, want);
    }
}

static void trace_lines_follow_step_order(void **state)
{
    (void)state;
    struct session ss;
    static const char *const steps[] = {
        "netx: socket(", "netx: bind(", "netx: listen(", "netx: connect(",
        "netx: accept(", "netx: send(", "netx: recv(",   "netx: close(",
    };
    traced_session(&ss);
    const char *prev = ss.text;
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        const char *at = strstr(prev, steps[i]);
        if (at == NULL) {
            fail_msg("\"%s\" missing or out of order in:\n%s", steps[i], ss.text);
        }
        prev = at;
    }
}

static void trace_failure_shows_strerror(void **state)
{
    (void)state;
    char text[4096];
    char want[256];
    FILE *f = tmpfile();
    assert_non_null(f);

    /* A port that was free a moment ago refuses the connection. */
    int lfd = netx_tcp_listen("127.0.0.1", 0, 0);
    assert_true(lfd >= 0);
    int port = netx_local_port(lfd);
    netx_close(lfd);
    int fd = netx_socket(AF_INET, SOCK_STREAM);
    assert_true(fd >= 0);
    netx_addr to;
    assert_int_equal(netx_resolve("127.0.0.1", (uint16_t)port, &to, 1), 1);

    netx_trace(f);
    int rc = netx_connect(fd, &to, 2000);
    netx_trace(NULL);
    netx_close(fd);

    read_all_and_close(f, text, sizeof text);
    assert_int_equal(rc, -1);
    snprintf(want, sizeof want, "netx: connect(%d, 127.0.0.1:%d) = -1 (%s)", fd, port,
             strerror(ECONNREFUSED));
    assert_has_line(text, want);
}

static void trace_null_turns_tracing_off(void **state)
{
    (void)state;
    char buf[8];
    int c, s;
    FILE *f = tmpfile();
    assert_non_null(f);

    /* On, one step is written; off, a whole exchange adds nothing. */
    netx_trace(f);
    int fd = netx_socket(AF_INET, SOCK_STREAM);
    netx_trace(NULL);
    fflush(f);
    long with_one_step = ftell(f);
    support_tcp_pair("127.0.0.1", &c, &s);
    ssize_t sent = netx_send(c, "ping", 4);
    ssize_t got = netx_recv(s, buf, sizeof buf);
    netx_close(c);
    netx_close(s);
    netx_close(fd);
    fflush(f);
    long after = ftell(f);
    char text[512];
    read_all_and_close(f, text, sizeof text);

    assert_true(fd >= 0);
    assert_int_equal(sent, 4);
    assert_int_equal(got, 4);
    assert_true(with_one_step > 0);
    assert_int_equal(after, with_one_step);
    char want[128];
    snprintf(want, sizeof want, "netx: socket(AF_INET, SOCK_STREAM) = %d\n", fd);
    assert_string_equal(text, want);
}

static void trace_keeps_errno_of_failing_close(void **state)
{
    (void)state;
    char text[1024];
    FILE *f = tmpfile();
    assert_non_null(f);

    /* A descriptor just closed, with none made since: closing it again
     * fails with EBADF. */
    int fd = netx_socket(AF_INET, SOCK_STREAM);
    assert_true(fd >= 0);
    netx_close(fd);

    netx_trace(f);
    errno = 0;
    int rc = netx_close(fd);
    int err = errno;
    netx_trace(NULL);

    read_all_and_close(f, text, sizeof text);
    assert_int_equal(rc, -1);
    assert_int_equal(err, EBADF);
    char want[128];
    snprintf(want, sizeof want, "netx: close(%d) = -1 (%s)", fd, strerror(EBADF));
    assert_has_line(text, want);
}

static void trace_keeps_errno_of_failing_resolve(void **state)
{
    (void)state;
    char text[1024];
    netx_addr a;
    support_require_offline_resolver();
    FILE *f = tmpfile();
    assert_non_null(f);

    /* The resolver's failure is recorded before its trace line is written,
     * so here it is the trace that must not disturb errno. */
    netx_trace(f);
    errno = 0;
    int rc = netx_resolve("no-such-host.invalid", 80, &a, 1);
    int err = errno;
    netx_trace(NULL);
    read_all_and_close(f, text, sizeof text);

    assert_int_equal(rc, -1);
    assert_int_equal(err, ENOENT);
    assert_int_equal(netx_last_errno(), ENOENT);
    assert_non_null(strstr(text, "netx: resolve(no-such-host.invalid) = -1 ("));
}

/* Many threads tracing at once: each line must come out whole. */
#define TRACE_THREADS 4
#define TRACE_CALLS   200

static void *close_bad_fd_repeatedly(void *arg)
{
    /* Negative descriptors are never open; each thread has its own, so a
     * line spliced from two threads cannot pass for a whole one. */
    int bad = -1 - (int)(size_t)arg;
    for (int i = 0; i < TRACE_CALLS; i++) {
        netx_close(bad);
    }
    return NULL;
}

static void trace_lines_from_threads_stay_whole(void **state)
{
    (void)state;
    static char text[TRACE_THREADS * TRACE_CALLS * 64];
    pthread_t t[TRACE_THREADS];
    int counts[TRACE_THREADS] = {0};
    char want[TRACE_THREADS][64];
    FILE *f = tmpfile();
    assert_non_null(f);

    netx_trace(f);
    int started = 0;
    for (; started < TRACE_THREADS; started++) {
        void *arg = (void *)(size_t)started;
        if (pthread_create(&t[started], NULL, close_bad_fd_repeatedly, arg) != 0) {
            break;
        }
    }
    for (int i = 0; i < started; i++) {
        pthread_join(t[i], NULL);
    }
    netx_trace(NULL);
    read_all_and_close(f, text, sizeof text);
    assert_int_equal(started, TRACE_THREADS);

    for (int k = 0; k < TRACE_THREADS; k++) {
        snprintf(want[k], sizeof want[k], "netx: close(%d) = -1 (%s)", -1 - k, strerror(EBADF));
    }
    int lines = 0;
    for (char *line = text; *line != '\0';) {
        char *nl = strchr(line, '\n');
        assert_non_null(nl);
        *nl = '\0';
        int k = 0;
        while (k < TRACE_THREADS && strcmp(line, want[k]) != 0) {
            k++;
        }
        if (k == TRACE_THREADS) {
            fail_msg("broken trace line: \"%s\"", line);
        }
        counts[k]++;
        lines++;
        line = nl + 1;
    }
    assert_int_equal(lines, TRACE_THREADS * TRACE_CALLS);
    for (int k = 0; k < TRACE_THREADS; k++) {
        assert_int_equal(counts[k], TRACE_CALLS);
    }
}

/*
 * Run this binary again as "<self> CHILD_ARG" with NETX_TRACE set to value
 * (or unset when value is NULL), and collect what it writes to stderr.
 * Returns the child's wait status. Every wait is bounded; a child that
 * outlives the limit is killed.
 */
static int run_child(const char *value, char *out, size_t cap)
{
    char self[PATH_MAX];
    int p[2];
    size_t used = 0;

    /* readlink() gives the real path even under valgrind, which would
     * otherwise run its own tool binary for /proc/self/exe. */
    ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
    if (len <= 0) {
        skip(); /* no /proc: nothing to re-run */
    }
    self[len] = '\0';
    assert_int_equal(pipe(p), 0);
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid == 0) {
        /* The child: stderr to the pipe, the environment as asked, then a
         * fresh process image that has not read NETX_TRACE yet. */
        dup2(p[1], STDERR_FILENO);
        close(p[0]);
        close(p[1]);
        if (value != NULL) {
            setenv("NETX_TRACE", value, 1);
        } else {
            unsetenv("NETX_TRACE");
        }
        execl(self, self, CHILD_ARG, (char *)NULL);
        _exit(127);
    }
    close(p[1]);
    assert_true(pid > 0);

    long long deadline = now_ms() + CHILD_LIMIT_MS;
    for (;;) {
        long long left = deadline - now_ms();
        if (left <= 0) {
            break;
        }
        struct pollfd pfd = {.fd = p[0], .events = POLLIN, .revents = 0};
        int n = poll(&pfd, 1, (int)left);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            break;
        }
        char chunk[512];
        ssize_t got = read(p[0], chunk, sizeof chunk);
        if (got <= 0) {
            break; /* end of file: the child is done writing */
        }
        size_t take = (size_t)got < cap - 1 - used ? (size_t)got : cap - 1 - used;
        memcpy(out + used, chunk, take);
        used += take;
    }
    out[used] = '\0';
    close(p[0]);

    int status = 0;
    for (;;) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid) {
            break;
        }
        if (r < 0 && errno != EINTR) {
            fail_msg("waitpid: %s", strerror(errno));
        }
        if (now_ms() >= deadline) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            fail_msg("the traced child did not finish within %d ms", CHILD_LIMIT_MS);
        }
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return status;
}

static void trace_env_turns_tracing_on(void **state)
{
    (void)state;
    char out[4096];
    int status = run_child("1", out, sizeof out);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    /* The child's step: one socket created and closed, traced on stderr. */
    const char *sock = strstr(out, "netx: socket(AF_INET, SOCK_STREAM) = ");
    if (sock == NULL) {
        fail_msg("no socket line on the child's stderr: \"%s\"", out);
    }
    int fd = atoi(sock + strlen("netx: socket(AF_INET, SOCK_STREAM) = "));
    char want[64];
    snprintf(want, sizeof want, "netx: close(%d) = 0", fd);
    assert_has_line(out, want);
}

static void trace_env_unset_stays_off(void **state)
{
    (void)state;
    char out[4096];
    /* The same child without NETX_TRACE: so what the test above saw came
     * from the variable, not from the child step itself. */
    int status = run_child(NULL, out, sizeof out);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    assert_string_equal(out, "");
}

/* The traced step of the child process: create a socket, close it. */
static int child_step(void)
{
    int fd = netx_socket(AF_INET, SOCK_STREAM);
    if (fd < 0) {
        return 1;
    }
    return netx_close(fd) == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], CHILD_ARG) == 0) {
        return child_step();
    }
    support_offline_resolver();
    const struct CMUnitTest tests[] = {
        TEST(trace_socket_line_names_family_and_type),
        TEST(trace_bind_and_listen_lines_show_arguments),
        TEST(trace_connect_line_shows_address),
        TEST(trace_accept_line_names_peer),
        TEST(trace_send_recv_lines_show_sizes),
        TEST(trace_close_lines_for_each_socket),
        TEST(trace_lines_follow_step_order),
        TEST(trace_failure_shows_strerror),
        TEST(trace_null_turns_tracing_off),
        TEST(trace_keeps_errno_of_failing_close),
        TEST(trace_keeps_errno_of_failing_resolve),
        TEST(trace_lines_from_threads_stay_whole),
        TEST(trace_env_turns_tracing_on),
        TEST(trace_env_unset_stays_off),
    };
    return cmocka_run_group_tests_name("trace", tests, NULL, NULL);
}
