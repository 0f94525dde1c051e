/*
 * test_log.c - netx_log(), netx_log_each() and netx_log_flush(): one line
 * a second per call site with the others counted, every line for
 * netx_log_each(), control characters escaped, and standard error that
 * cannot take a line - a full pipe nobody reads, a pipe or socket whose
 * reader has gone, descriptor 2 closed - costing neither a wait nor a
 * SIGPIPE, with the dropped lines counted.
 *
 * The log's state (the call sites it remembers, the count of dropped
 * lines) belongs to the process, as standard error does. So each case runs
 * in a child of its own (run_child()): it starts with no call site seen
 * and nothing dropped, and whatever it does to descriptor 2 or to SIGPIPE
 * ends with it. The child points descriptor 2 at a pipe, reads back what
 * was written without ever waiting, and reports a failure to the parent
 * through a pipe of its own, where cmocka fails the test. The parent gives
 * the child 5 seconds: a call that blocks fails the test instead of
 * hanging it.
 *
 * The limit of a line a second is time itself. The cases never assert
 * that anything was fast. Where an exact answer needs the calls to have
 * come within one second of each other, they measure that (on the same
 * monotonic clock as the library) and otherwise check only what holds at
 * any speed: every call accounted for, by a line or by a count.
 */
#include "support.h"

#include "proc.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

/* How long a case may run before it counts as blocked. */
#define CHILD_LIMIT_MS 5000

/* A child's exit status meaning "skipped": what it tests needs calls
 * within one second of each other, and this machine was slower. */
#define CHILD_SKIPPED 77

/* An errno no call here sets by itself: what each call must leave. */
#define MARK 4242

/* The text netx_log() adds for lines standard error did not take. */
#define DROPPED_TAIL " lines before this one were dropped: standard error was not taking any)"

/* ------------------------------------------------------------------------
 * Running a case in a child
 * ------------------------------------------------------------------------ */

/* In the child: the pipe on which it explains a failure. */
static int verdict_fd = -1;

/* src, with its control characters shown as \n, \xNN, for a message. */
static void show(char *dst, size_t cap, const char *src)
{
    size_t used = 0;
    for (; *src != '\0' && used + 5 < cap; src++) {
        unsigned char ch = (unsigned char)*src;
        if (ch == '\n') {
            used += (size_t)snprintf(dst + used, cap - used, "\\n");
        } else if (ch < 0x20 || ch == 0x7f) {
            used += (size_t)snprintf(dst + used, cap - used, "\\x%02x", ch);
        } else {
            dst[used++] = (char)ch;
        }
    }
    dst[used] = '\0';
}

/* In the child: say on the verdict pipe why the case failed, and end it.
 * Never a cmocka assertion here: its jump would go on to run the rest of
 * the suite in the child. */
static void child_fail(int line, const char *what, const char *got, const char *want)
{
    char msg[2048];
    char a[700];
    char b[700];
    int n = snprintf(msg, sizeof msg, "test_log.c:%d: %s", line, what);
    if (got != NULL && n > 0 && (size_t)n < sizeof msg) {
        show(a, sizeof a, got);
        show(b, sizeof b, want);
        snprintf(msg + n, sizeof msg - (size_t)n, "\n  got:  \"%s\"\n  want: \"%s\"", a, b);
    }
    ssize_t w = write(verdict_fd, msg, strlen(msg));
    (void)w; /* nothing more to do if even this fails */
    _exit(1);
}

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            child_fail(__LINE__, #cond, NULL, NULL);                                               \
        }                                                                                          \
    } while (0)

#define CHECK_STR(got, want)                                                                       \
    do {                                                                                           \
        if (strcmp((got), (want)) != 0) {                                                          \
            child_fail(__LINE__, "text differs", (got), (want));                                   \
        }                                                                                          \
    } while (0)

/* Run one log call with errno set to MARK, and check it is MARK after. */
#define KEEPS_ERRNO(call)                                                                          \
    do {                                                                                           \
        errno = MARK;                                                                              \
        call;                                                                                      \
        if (errno != MARK) {                                                                       \
            child_fail(__LINE__, "errno changed by " #call, NULL, NULL);                           \
        }                                                                                          \
    } while (0)

static void sleep_ms(int ms)
{
    struct timespec t = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&t, NULL);
}

/*
 * Run body in a child process and fail the test if it reports a failure,
 * dies of a signal, or has not ended within CHILD_LIMIT_MS (then it is
 * killed, by its PID). what names the case for the message.
 */
static void run_child(void (*body)(void), const char *what)
{
    int v[2];
    assert_int_equal(pipe(v), 0);
    fflush(NULL); /* nothing buffered is written twice */
    pid_t pid = fork();
    if (pid == 0) {
        close(v[0]);
        verdict_fd = v[1];
        body();
        close(verdict_fd); /* what valgrind --track-fds finds open is a leak */
        _exit(0);
    }
    close(v[1]);
    if (pid < 0) {
        close(v[0]);
        fail_msg("fork: %s", strerror(errno));
    }

    int status = 0;
    pid_t r = 0;
    long long limit = proc_now_ms() + CHILD_LIMIT_MS;
    while ((r = waitpid(pid, &status, WNOHANG)) == 0 && proc_now_ms() < limit) {
        sleep_ms(5);
    }
    if (r == 0) {
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
    }
    /* The child has ended, so the verdict (if any) is all there. */
    char msg[2048];
    ssize_t n = read(v[0], msg, sizeof msg - 1);
    msg[n > 0 ? n : 0] = '\0';
    close(v[0]);

    if (r == 0) {
        fail_msg("%s: had not returned after %d ms: a log call blocked", what, CHILD_LIMIT_MS);
    }
    if (WIFSIGNALED(status)) {
        fail_msg("%s: killed by signal %d%s", what, WTERMSIG(status),
                 WTERMSIG(status) == SIGPIPE ? " (SIGPIPE: a log line raised it)" : "");
    }
    assert_true(WIFEXITED(status));
    if (WEXITSTATUS(status) == CHILD_SKIPPED) {
        fprintf(stderr, "skipped: %s: the calls took a second or more here\n", what);
        skip();
    }
    if (WEXITSTATUS(status) != 0) {
        fail_msg("%s: %s", what,
                 msg[0] != '\0' ? msg
                                : "the child failed without a message (a sanitizer's "
                                  "report, if any, went to its stderr: perhaps the test's pipe)");
    }
}

/* ------------------------------------------------------------------------
 * Standard error as a pipe (in the child)
 * ------------------------------------------------------------------------ */

/* Descriptor 2 moved to the write end of a pipe: rd is its read end (never
 * waits), saved the standard error from before. */
struct capture {
    int rd;
    int saved;
};

static void set_nonblocking(int fd, int on)
{
    int flags = fcntl(fd, F_GETFL);
    CHECK(flags != -1);
    flags = on ? flags | O_NONBLOCK : flags & ~O_NONBLOCK;
    CHECK(fcntl(fd, F_SETFL, flags) == 0);
}

static void capture_start(struct capture *c)
{
    int p[2];
    CHECK(pipe(p) == 0);
    c->saved = dup(STDERR_FILENO);
    CHECK(c->saved >= 0);
    CHECK(dup2(p[1], STDERR_FILENO) == STDERR_FILENO);
    close(p[1]); /* descriptor 2 is now the pipe's only write end */
    c->rd = p[0];
    set_nonblocking(c->rd, 1);
}

/* What was written since the last take, as a string; the pipe holds all of
 * it already, so a read that would wait means there is no more. */
static void capture_take(struct capture *c, char *buf, size_t cap)
{
    size_t used = 0;
    while (used < cap - 1) {
        ssize_t n = read(c->rd, buf + used, cap - 1 - used);
        if (n <= 0) {
            CHECK(n == 0 || errno == EAGAIN || errno == EWOULDBLOCK);
            break;
        }
        used += (size_t)n;
    }
    buf[used] = '\0';
}

static void capture_stop(struct capture *c)
{
    dup2(c->saved, STDERR_FILENO);
    close(c->saved);
    close(c->rd);
}

/*
 * Fill the pipe behind descriptor 2 until it takes not one byte more:
 * whole pages, then single bytes for any room left. The filling is
 * non-blocking, and descriptor 2 is made blocking again after: a log that
 * simply wrote would now wait forever, as on a pipe nobody reads. Returns
 * the bytes written.
 */
static size_t fill_stderr_pipe(void)
{
    char page[4096];
    char one = 'x';
    size_t total = 0;
    memset(page, 'x', sizeof page);
    set_nonblocking(STDERR_FILENO, 1);
    for (int i = 0; i < 4096; i++) { /* at most 16 MiB: no pipe is larger */
        ssize_t n = write(STDERR_FILENO, page, sizeof page);
        if (n <= 0) {
            CHECK(errno == EAGAIN || errno == EWOULDBLOCK);
            break;
        }
        total += (size_t)n;
    }
    for (int i = 0; i < 65536; i++) {
        if (write(STDERR_FILENO, &one, 1) != 1) {
            CHECK(errno == EAGAIN || errno == EWOULDBLOCK);
            break;
        }
        total++;
    }
    set_nonblocking(STDERR_FILENO, 0);
    return total;
}

/* Read and count everything in the pipe; each byte must be filler. */
static size_t drain(struct capture *c)
{
    char buf[4096];
    size_t total = 0;
    for (int i = 0; i < 65536; i++) {
        ssize_t n = read(c->rd, buf, sizeof buf);
        if (n <= 0) {
            CHECK(n == 0 || errno == EAGAIN || errno == EWOULDBLOCK);
            break;
        }
        for (ssize_t k = 0; k < n; k++) {
            if (buf[k] != 'x') {
                child_fail(__LINE__, "a log line went into the full pipe", NULL, NULL);
            }
        }
        total += (size_t)n;
    }
    return total;
}

/* 1 if descriptor fd could take a write now. */
static int writable_now(int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLOUT, .revents = 0};
    return poll(&p, 1, 0) == 1 && p.revents == POLLOUT;
}

/* ------------------------------------------------------------------------
 * Reading lines
 * ------------------------------------------------------------------------ */

static int count_lines(const char *text)
{
    int n = 0;
    for (; *text != '\0'; text++) {
        n += *text == '\n';
    }
    return n;
}

/* Line i (from 0) of text, with its newline, into out ("" if none). */
static void line_at(const char *text, int i, char *out, size_t cap)
{
    for (; i > 0 && text != NULL; i--) {
        text = strchr(text, '\n');
        text = text != NULL ? text + 1 : NULL;
    }
    const char *end = text != NULL ? strchr(text, '\n') : NULL;
    size_t len = end != NULL ? (size_t)(end - text) + 1 : 0;
    if (len > cap - 1) {
        len = cap - 1;
    }
    if (len > 0) {
        memcpy(out, text, len);
    }
    out[len] = '\0';
}

/*
 * 1 if line is exactly "TEXT (and MORE more like this in the last N s)\n"
 * for some N, the line for MORE + 1 held lines, TEXT the last of them.
 */
static int is_held_line(const char *line, const char *text, unsigned long more)
{
    char head[600];
    snprintf(head, sizeof head, "%s (and %lu more like this in the last ", text, more);
    size_t len = strlen(head);
    if (strncmp(line, head, len) != 0) {
        return 0;
    }
    const char *p = line + len;
    if (!isdigit((unsigned char)*p)) {
        return 0;
    }
    while (isdigit((unsigned char)*p)) {
        p++;
    }
    return strcmp(p, " s)\n") == 0;
}

/* The calls a line stands for: itself, and the MORE of "(and MORE more". */
static unsigned long calls_in_line(const char *line)
{
    const char *p = strstr(line, " (and ");
    return 1 + (p != NULL ? strtoul(p + 6, NULL, 10) : 0);
}

/* ------------------------------------------------------------------------
 * A line a second per call site
 * ------------------------------------------------------------------------ */

/* The rate limit: 100 calls from one place, a line at once and the rest
 * held; netx_log_flush() writes the last of them with the count of the
 * others. */
static void repeated_site_body(void)
{
    struct capture c;
    static char first[16384];
    static char after[16384];
    char line[600];
    capture_start(&c);

    long long t0 = proc_now_ms();
    for (int i = 0; i < 100; i++) {
        KEEPS_ERRNO(netx_log("log_test: refused client %d", i));
    }
    long long t1 = proc_now_ms();
    capture_take(&c, first, sizeof first);
    KEEPS_ERRNO(netx_log_flush());
    capture_take(&c, after, sizeof after);
    capture_stop(&c);

    /* At any speed: the first call is written at once, at most one line
     * a second follows, and all 100 calls are accounted for, as lines or
     * as counts; the last line written is the last call's. */
    line_at(first, 0, line, sizeof line);
    CHECK_STR(line, "log_test: refused client 0\n");
    int lines = count_lines(first);
    CHECK(lines <= 1 + (t1 - t0) / 1000);
    CHECK(count_lines(after) <= 1);
    unsigned long calls = 0;
    for (int i = 0; i < lines; i++) {
        line_at(first, i, line, sizeof line);
        calls += calls_in_line(line);
    }
    if (after[0] != '\0') {
        calls += calls_in_line(after);
        line_at(after, 0, line, sizeof line);
    }
    CHECK(calls == 100);
    CHECK(strncmp(line, "log_test: refused client 99", 27) == 0);
    CHECK(line[27] == ' ' || line[27] == '\n');

    /* All within one second (the usual case): the exact lines. */
    if (t1 - t0 < 1000) {
        CHECK_STR(first, "log_test: refused client 0\n");
        if (!is_held_line(after, "log_test: refused client 99", 98)) {
            child_fail(__LINE__, "flushed line", after,
                       "log_test: refused client 99 (and 98 more like this in the last N s)\n");
        }
    }
}

static void log_repeated_site_one_line_then_flush_count(void **state)
{
    (void)state;
    run_child(repeated_site_body, "100 netx_log() calls from one site");
}

/* Two call sites (two format strings) are limited apart: each writes its
 * own first line, and each has its own held lines. */
static void two_sites_body(void)
{
    struct capture c;
    char first[4096];
    char after[4096];
    char line[600];
    capture_start(&c);

    long long t0 = proc_now_ms();
    for (int i = 0; i < 10; i++) {
        netx_log("log_test: alpha %d", i);
        netx_log("log_test: beta %d", i);
    }
    long long t1 = proc_now_ms();
    capture_take(&c, first, sizeof first);
    netx_log_flush();
    capture_take(&c, after, sizeof after);
    capture_stop(&c);

    /* The first call of each site is written, whatever the timing. */
    line_at(first, 0, line, sizeof line);
    CHECK_STR(line, "log_test: alpha 0\n");
    line_at(first, 1, line, sizeof line);
    CHECK_STR(line, "log_test: beta 0\n");

    if (t1 - t0 < 1000) {
        char one[600];
        char two[600];
        CHECK(count_lines(first) == 2);
        CHECK(count_lines(after) == 2);
        line_at(after, 0, one, sizeof one);
        line_at(after, 1, two, sizeof two);
        /* One held line per site, in either order. */
        CHECK((is_held_line(one, "log_test: alpha 9", 8) &&
               is_held_line(two, "log_test: beta 9", 8)) ||
              (is_held_line(one, "log_test: beta 9", 8) &&
               is_held_line(two, "log_test: alpha 9", 8)));
    }
}

static void log_two_sites_each_first_line(void **state)
{
    (void)state;
    run_child(two_sites_body, "two call sites");
}

/*
 * Once a site's second is over, its held lines go out with the next call:
 * its own next line carries their count, and another site's call writes
 * them as one line. Both need a wait of a second, measured on the clock
 * the library uses, so the second is surely over (a lower bound: a slow
 * machine only waits longer).
 */
static void wait_second_over(long long since)
{
    for (int i = 0; i < 40 && proc_now_ms() - since < 1100; i++) {
        sleep_ms(50);
    }
    CHECK(proc_now_ms() - since >= 1100);
}

/* One call site: C does not promise that two equal string literals are
 * one format string, so a site called from two places is a function. */
static void log_slow_client(int i)
{
    netx_log("log_test: slow client %d", i);
}

static void next_call_count_body(void)
{
    struct capture c;
    char out[4096];
    capture_start(&c);

    long long t0 = proc_now_ms();
    for (int i = 1; i <= 3; i++) {
        log_slow_client(i);
    }
    long long t1 = proc_now_ms();
    if (t1 - t0 >= 1000) {
        _exit(CHILD_SKIPPED);
    }
    wait_second_over(t1);
    KEEPS_ERRNO(log_slow_client(4));
    capture_take(&c, out, sizeof out);
    capture_stop(&c);

    char line[600];
    CHECK(count_lines(out) == 2);
    line_at(out, 0, line, sizeof line);
    CHECK_STR(line, "log_test: slow client 1\n");
    line_at(out, 1, line, sizeof line);
    if (!is_held_line(line, "log_test: slow client 4", 2)) {
        child_fail(__LINE__, "the next line after the second", line,
                   "log_test: slow client 4 (and 2 more like this in the last N s)\n");
    }
}

static void log_next_call_after_second_carries_count(void **state)
{
    (void)state;
    run_child(next_call_count_body, "a site's next line after its second");
}

static void other_site_writes_held_body(void)
{
    struct capture c;
    char out[4096];
    capture_start(&c);

    long long t0 = proc_now_ms();
    for (int i = 1; i <= 3; i++) {
        netx_log("log_test: busy %d", i);
    }
    long long t1 = proc_now_ms();
    if (t1 - t0 >= 1000) {
        _exit(CHILD_SKIPPED);
    }
    wait_second_over(t1);
    netx_log("log_test: another site");
    capture_take(&c, out, sizeof out);
    capture_stop(&c);

    /* The other site's own line, then the held ones of the first. */
    char line[600];
    CHECK(count_lines(out) == 3);
    line_at(out, 0, line, sizeof line);
    CHECK_STR(line, "log_test: busy 1\n");
    line_at(out, 1, line, sizeof line);
    CHECK_STR(line, "log_test: another site\n");
    line_at(out, 2, line, sizeof line);
    if (!is_held_line(line, "log_test: busy 3", 1)) {
        child_fail(__LINE__, "the held lines", line,
                   "log_test: busy 3 (and 1 more like this in the last N s)\n");
    }
}

static void log_other_site_writes_held_lines_after_second(void **state)
{
    (void)state;
    run_child(other_site_writes_held_body, "held lines written by another site");
}

/* ------------------------------------------------------------------------
 * netx_log_each
 * ------------------------------------------------------------------------ */

static void each_body(void)
{
    struct capture c;
    static char out[16384];
    static char want[16384];
    size_t used = 0;
    capture_start(&c);

    for (int i = 0; i < 100; i++) {
        KEEPS_ERRNO(netx_log_each("log_test: backend %d is DOWN", i));
        used +=
            (size_t)snprintf(want + used, sizeof want - used, "log_test: backend %d is DOWN\n", i);
    }
    KEEPS_ERRNO(netx_log_flush()); /* holds nothing back: writes nothing */
    capture_take(&c, out, sizeof out);
    capture_stop(&c);

    CHECK(count_lines(out) == 100);
    CHECK_STR(out, want);
}

static void log_each_writes_every_line(void **state)
{
    (void)state;
    run_child(each_body, "100 netx_log_each() calls");
}

/* ------------------------------------------------------------------------
 * One line, whatever the text holds
 * ------------------------------------------------------------------------ */

static void log_peer_said(const char *what)
{
    netx_log("log_test: peer said %s", what);
}

static void escaped_body(void)
{
    struct capture c;
    char out[4096];
    capture_start(&c);

    const char *evil = "bye\nnetx: forged line\r\x1b[2J\t\x7f!";
    log_peer_said(evil);
    netx_log_each("log_test: each: %s", evil);
    /* A second call of the first site is held; the flush writes it, as
     * escaped as the first (with no count: it is the only one held). */
    log_peer_said("two\nlines");
    netx_log_flush();
    capture_take(&c, out, sizeof out);
    capture_stop(&c);

    CHECK_STR(out, "log_test: peer said bye\\nnetx: forged line\\r\\x1b[2J\\t\\x7f!\n"
                   "log_test: each: bye\\nnetx: forged line\\r\\x1b[2J\\t\\x7f!\n"
                   "log_test: peer said two\\nlines\n");
}

static void log_control_chars_escaped_one_line(void **state)
{
    (void)state;
    run_child(escaped_body, "control characters in a line");
}

/* A text far over the limit is cut, still as one line, and never in the
 * middle of an escape. */
static void long_body(void)
{
    struct capture c;
    static char text[2000];
    char out[4096];
    capture_start(&c);

    memset(text, '\x01', sizeof text - 1);
    text[sizeof text - 1] = '\0';
    netx_log_each("log_test: %s", text);
    capture_take(&c, out, sizeof out);
    capture_stop(&c);

    size_t len = strlen(out);
    CHECK(count_lines(out) == 1);
    CHECK(len > 100 && len <= 512); /* "cut at about 400 bytes" */
    CHECK(out[len - 1] == '\n');
    /* After the 10 bytes of "log_test: ", whole "\x01" escapes only: the
     * cut falls where a last escape does not fit, and half of one would
     * show here. */
    CHECK(strncmp(out, "log_test: ", 10) == 0);
    CHECK((len - 11) % 4 == 0);
    for (size_t i = 10; i + 1 < len; i += 4) {
        CHECK(memcmp(out + i, "\\x01", 4) == 0);
    }
}

static void log_long_text_cut_one_line(void **state)
{
    (void)state;
    run_child(long_body, "a line over the limit");
}

/* ------------------------------------------------------------------------
 * Standard error that cannot take a line
 * ------------------------------------------------------------------------ */

/*
 * A full pipe nobody reads, blocking as a service manager's is: the calls
 * return at once (run_child() fails the test after 5 s), write nothing
 * into it, and count what they dropped. The next line written once the
 * pipe drains carries the count; the one after it no longer does.
 */
static void full_pipe_body(void)
{
    struct capture c;
    char out[4096];
    capture_start(&c);
    size_t filled = fill_stderr_pipe();
    CHECK(filled > 0);
    CHECK(!writable_now(STDERR_FILENO));

    for (int i = 0; i < 100; i++) {
        KEEPS_ERRNO(netx_log("log_test: flood %d", i));
    }
    for (int i = 0; i < 100; i++) {
        KEEPS_ERRNO(netx_log_each("log_test: each %d", i));
    }
    KEEPS_ERRNO(netx_log_flush());

    /* Nothing but the filler went into the pipe. */
    CHECK(drain(&c) == filled);

    KEEPS_ERRNO(netx_log_each("log_test: after the drain"));
    KEEPS_ERRNO(netx_log_each("log_test: and then"));
    capture_take(&c, out, sizeof out);
    capture_stop(&c);
    CHECK_STR(out, "log_test: after the drain (200" DROPPED_TAIL "\n"
                   "log_test: and then\n");
}

static void log_full_pipe_does_not_block_drops_counted(void **state)
{
    (void)state;
    run_child(full_pipe_body, "logging into a full pipe");
}

/* netx_log_flush() with held lines and a full pipe returns at once too;
 * the held lines are still there for a flush once the pipe drains. */
static void flush_full_body(void)
{
    struct capture c;
    char out[4096];
    capture_start(&c);

    long long t0 = proc_now_ms();
    for (int i = 1; i <= 3; i++) {
        netx_log("log_test: held %d", i);
    }
    long long t1 = proc_now_ms();
    capture_take(&c, out, sizeof out);
    CHECK_STR(out, "log_test: held 1\n");

    size_t filled = fill_stderr_pipe();
    CHECK(!writable_now(STDERR_FILENO));
    KEEPS_ERRNO(netx_log_flush());
    CHECK(drain(&c) == filled);

    KEEPS_ERRNO(netx_log_flush());
    capture_take(&c, out, sizeof out);
    capture_stop(&c);
    if (t1 - t0 >= 1000) {
        _exit(CHILD_SKIPPED); /* nothing was held, so nothing to check */
    }
    /* Exactly the held line, with its count: the flush into the full
     * pipe kept it, and did not count it as dropped too. */
    if (!is_held_line(out, "log_test: held 3", 1)) {
        child_fail(__LINE__, "the held line after the drain", out,
                   "log_test: held 3 (and 1 more like this in the last N s)\n");
    }
}

static void log_flush_full_pipe_does_not_block_keeps_held(void **state)
{
    (void)state;
    run_child(flush_full_body, "netx_log_flush() into a full pipe");
}

/* Lines dropped with nothing written since: netx_log_flush() says how
 * many, in a line of its own, once standard error takes lines again. */
static void flush_dropped_body(void)
{
    struct capture c;
    char out[4096];
    capture_start(&c);

    size_t filled = fill_stderr_pipe();
    for (int i = 1; i <= 3; i++) {
        netx_log_each("log_test: lost %d", i);
    }
    CHECK(drain(&c) == filled);
    KEEPS_ERRNO(netx_log_flush());
    KEEPS_ERRNO(netx_log_flush()); /* said once */
    capture_take(&c, out, sizeof out);
    capture_stop(&c);
    CHECK_STR(out, "netx_log: 3 lines were dropped: standard error was not taking any\n");
}

static void log_flush_reports_dropped_lines(void **state)
{
    (void)state;
    run_child(flush_dropped_body, "netx_log_flush() after lines were dropped");
}

/* More call sites than the log remembers (32): the one replaced writes its
 * held lines first, so none is lost without a word. */
static void evicted_body(void)
{
    struct capture c;
    static char out[16384];
    capture_start(&c);

    long long t0 = proc_now_ms();
    netx_log("log_test: site A %d", 1);
    netx_log("log_test: site A %d", 2); /* held */
    /* 32 other call sites: distinct format strings, one each. */
    static char fmts[32][32];
    for (int i = 0; i < 32; i++) {
        snprintf(fmts[i], sizeof fmts[i], "log_test: site %02d%%s", i);
        netx_log(fmts[i], "");
    }
    long long t1 = proc_now_ms();
    capture_take(&c, out, sizeof out);
    capture_stop(&c);
    if (t1 - t0 >= 1000) {
        _exit(CHILD_SKIPPED); /* A's line was not held: nothing to check */
    }
    /* A's first line, its held line written as its slot was taken, then
     * the 32 others; 34 lines, A's second among them. */
    CHECK(count_lines(out) == 34);
    char line[600];
    line_at(out, 0, line, sizeof line);
    CHECK_STR(line, "log_test: site A 1\n");
    CHECK(strstr(out, "log_test: site A 2") != NULL);
    CHECK(strstr(out, "dropped") == NULL);
}

static void log_replaced_site_writes_held_lines(void **state)
{
    (void)state;
    run_child(evicted_body, "more call sites than the log remembers");
}

/* Every log call, errno checked, where standard error takes no line: three
 * lines dropped (netx_log() holds back nothing it could not write: each
 * call tries again), and nothing held for the flush. */
static void log_all_calls_keep_errno(void)
{
    for (int i = 1; i <= 2; i++) {
        KEEPS_ERRNO(netx_log("log_test: gone %d", i));
    }
    KEEPS_ERRNO(netx_log_each("log_test: gone each"));
    KEEPS_ERRNO(netx_log_flush());
}

/* With SIGPIPE at its default, which ends the process. */
static void sigpipe_default(void)
{
    sigset_t pipe_only;
    sigemptyset(&pipe_only);
    sigaddset(&pipe_only, SIGPIPE);
    CHECK(signal(SIGPIPE, SIG_DFL) != SIG_ERR);
    CHECK(sigprocmask(SIG_UNBLOCK, &pipe_only, NULL) == 0);
}

/* A pipe whose reader has gone: no SIGPIPE, errno kept, each line counted
 * as dropped (said with the next line that gets through). */
static void reader_gone_body(void)
{
    int p[2];
    char out[4096];
    sigpipe_default();
    CHECK(pipe(p) == 0);
    int saved = dup(STDERR_FILENO);
    CHECK(saved >= 0);
    CHECK(dup2(p[1], STDERR_FILENO) == STDERR_FILENO);
    close(p[1]);
    close(p[0]); /* the reader goes */

    log_all_calls_keep_errno();

    struct capture c;
    capture_start(&c);
    netx_log_each("log_test: a reader again");
    capture_take(&c, out, sizeof out);
    capture_stop(&c);
    dup2(saved, STDERR_FILENO);
    close(saved);
    CHECK_STR(out, "log_test: a reader again (3" DROPPED_TAIL "\n");
}

static void log_reader_gone_no_sigpipe(void **state)
{
    (void)state;
    run_child(reader_gone_body, "a pipe whose reader has gone");
}

/*
 * A socket shut for writing: poll() calls it writable, and the write then
 * fails with EPIPE and raises SIGPIPE - the race of a reader that goes
 * between the library's poll() and its write(), made certain. The signal
 * must never reach the process, errno (EPIPE inside) must be kept, and the
 * signal mask must be as it was.
 */
static void shut_socket_as_stderr(int *peer, int *saved)
{
    int s[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, s) == 0);
    CHECK(shutdown(s[0], SHUT_WR) == 0);
    *saved = dup(STDERR_FILENO);
    CHECK(*saved >= 0);
    CHECK(dup2(s[0], STDERR_FILENO) == STDERR_FILENO);
    close(s[0]);
    *peer = s[1]; /* kept open: its end is not what is gone */
    /* Else the write is never tried, and this tests nothing. */
    CHECK(writable_now(STDERR_FILENO));
}

static void restore_stderr(int peer, int saved)
{
    dup2(saved, STDERR_FILENO);
    close(saved);
    close(peer);
}

static int sigpipe_pending(void)
{
    sigset_t pending;
    CHECK(sigpending(&pending) == 0);
    return sigismember(&pending, SIGPIPE);
}

static int sigpipe_blocked(void)
{
    sigset_t now;
    CHECK(sigprocmask(SIG_BLOCK, NULL, &now) == 0);
    return sigismember(&now, SIGPIPE);
}

static void epipe_default_body(void)
{
    int peer;
    int saved;
    char out[4096];
    sigpipe_default();
    shut_socket_as_stderr(&peer, &saved);

    KEEPS_ERRNO(netx_log_each("log_test: into a shut socket"));
    KEEPS_ERRNO(netx_log("log_test: into a shut socket %d", 1));
    KEEPS_ERRNO(netx_log_flush());
    CHECK(!sigpipe_pending());
    CHECK(!sigpipe_blocked());
    restore_stderr(peer, saved);

    /* Both lines the socket refused were counted. */
    struct capture c;
    capture_start(&c);
    netx_log_each("log_test: back");
    capture_take(&c, out, sizeof out);
    capture_stop(&c);
    CHECK_STR(out, "log_test: back (2" DROPPED_TAIL "\n");
}

static void log_write_epipe_no_sigpipe(void **state)
{
    (void)state;
    run_child(epipe_default_body, "a write that fails with EPIPE");
}

/* A caller that blocks SIGPIPE itself: after the call none is pending
 * (it would be taken by the next sigwait() or unblock), and it is still
 * blocked. */
static void epipe_blocked_body(void)
{
    int peer;
    int saved;
    sigset_t pipe_only;
    sigpipe_default();
    sigemptyset(&pipe_only);
    sigaddset(&pipe_only, SIGPIPE);
    CHECK(sigprocmask(SIG_BLOCK, &pipe_only, NULL) == 0);
    shut_socket_as_stderr(&peer, &saved);

    KEEPS_ERRNO(netx_log_each("log_test: into a shut socket"));
    KEEPS_ERRNO(netx_log("log_test: into a shut socket %d", 1));
    restore_stderr(peer, saved);
    CHECK(!sigpipe_pending());
    CHECK(sigpipe_blocked());
}

static void log_write_epipe_sigpipe_blocked_none_left_pending(void **state)
{
    (void)state;
    run_child(epipe_blocked_body, "EPIPE with SIGPIPE blocked by the caller");
}

/* A SIGPIPE the caller already had pending is the caller's: the log must
 * leave it pending, not take it with its own. */
static void epipe_pending_body(void)
{
    int peer;
    int saved;
    sigset_t pipe_only;
    sigpipe_default();
    sigemptyset(&pipe_only);
    sigaddset(&pipe_only, SIGPIPE);
    CHECK(sigprocmask(SIG_BLOCK, &pipe_only, NULL) == 0);
    CHECK(raise(SIGPIPE) == 0);
    CHECK(sigpipe_pending());
    shut_socket_as_stderr(&peer, &saved);

    KEEPS_ERRNO(netx_log_each("log_test: into a shut socket"));
    restore_stderr(peer, saved);
    CHECK(sigpipe_pending());
    CHECK(sigpipe_blocked());
    int sig = 0;
    CHECK(sigwait(&pipe_only, &sig) == 0 && sig == SIGPIPE);
}

static void log_write_epipe_callers_pending_sigpipe_kept(void **state)
{
    (void)state;
    run_child(epipe_pending_body, "EPIPE with the caller's own SIGPIPE pending");
}

/* Descriptor 2 closed (a daemon that closed it, and opened nothing in its
 * place): no crash, errno kept, lines counted as dropped. */
static void closed_body(void)
{
    int p[2];
    char out[4096];
    CHECK(pipe(p) == 0); /* before the close: it must not take number 2 */
    int saved = dup(STDERR_FILENO);
    CHECK(saved >= 0);
    close(STDERR_FILENO);
    CHECK(fcntl(STDERR_FILENO, F_GETFD) == -1);

    log_all_calls_keep_errno();
    CHECK(fcntl(STDERR_FILENO, F_GETFD) == -1); /* nothing opened in its place */

    CHECK(dup2(p[1], STDERR_FILENO) == STDERR_FILENO);
    close(p[1]);
    set_nonblocking(p[0], 1);
    netx_log_each("log_test: open again");
    struct capture c = {.rd = p[0], .saved = saved};
    capture_take(&c, out, sizeof out);
    capture_stop(&c);
    CHECK_STR(out, "log_test: open again (3" DROPPED_TAIL "\n");
}

static void log_stderr_closed_no_crash(void **state)
{
    (void)state;
    run_child(closed_body, "descriptor 2 closed");
}

/* ------------------------------------------------------------------------
 * errno
 * ------------------------------------------------------------------------ */

/* errno is kept by each function, on each path: written, held, flushed,
 * nothing to flush, and a poll() that fails (fault injection) and so sets
 * errno inside the call - for netx_log_each(), netx_log() and
 * netx_log_flush(). (A write that sets EPIPE is in the SIGPIPE cases.) */
static void errno_body(void)
{
    struct capture c;
    char out[4096];
    capture_start(&c);

    for (int i = 1; i <= 2; i++) {
        KEEPS_ERRNO(netx_log("log_test: errno %d", i)); /* written, then held */
    }
    KEEPS_ERRNO(netx_log_flush());                      /* written */
    KEEPS_ERRNO(netx_log_flush());                      /* nothing held */
    KEEPS_ERRNO(netx_log_each("log_test: errno each")); /* written */

    struct fault_step fail = {FAULT_ERRNO, ENOMEM};
    fault_script(FAULT_POLL, STDERR_FILENO, &fail, 1);
    KEEPS_ERRNO(netx_log_each("log_test: poll fails"));
    CHECK(fault_pending(FAULT_POLL) == 0); /* the failure did happen */
    fault_script(FAULT_POLL, STDERR_FILENO, &fail, 1);
    KEEPS_ERRNO(netx_log("log_test: poll fails too"));
    CHECK(fault_pending(FAULT_POLL) == 0);

    /* A flush whose poll() fails: it needs a held line to try. */
    long long t0 = proc_now_ms();
    for (int i = 1; i <= 2; i++) {
        netx_log("log_test: to flush %d", i);
    }
    int held = proc_now_ms() - t0 < 1000;
    fault_script(FAULT_POLL, STDERR_FILENO, &fail, 1);
    KEEPS_ERRNO(netx_log_flush());
    CHECK(!held || fault_pending(FAULT_POLL) == 0);
    fault_reset();

    capture_take(&c, out, sizeof out);
    capture_stop(&c);
    CHECK(count_lines(out) == 4 + !held);
}

static void log_calls_keep_errno(void **state)
{
    (void)state;
    run_child(errno_body, "errno across log calls");
}

/* ------------------------------------------------------------------------
 * netx_stdio_reserve()
 * ------------------------------------------------------------------------ */

/* 1 if fd is open on /dev/null (the same device and inode). */
static int is_dev_null(int fd)
{
    struct stat a;
    struct stat b;
    return fstat(fd, &a) == 0 && stat("/dev/null", &b) == 0 && a.st_rdev == b.st_rdev &&
           S_ISCHR(a.st_mode);
}

/* Started with 0 and 1 closed: both are opened on /dev/null, 2 is left as
 * it was, nothing else stays open, and the next descriptor made is above 2. */
static void reserve_body(void)
{
    int saved_err = dup(STDERR_FILENO);
    CHECK(saved_err > 2);
    close(STDIN_FILENO);
    close(STDOUT_FILENO);
    int next_before = dup(saved_err); /* the lowest free: 0 */
    CHECK(next_before == 0);
    close(next_before);

    KEEPS_ERRNO(CHECK(netx_stdio_reserve() == 0));
    CHECK(is_dev_null(STDIN_FILENO));
    CHECK(is_dev_null(STDOUT_FILENO));
    struct stat err_now;
    struct stat err_was;
    CHECK(fstat(STDERR_FILENO, &err_now) == 0 && fstat(saved_err, &err_was) == 0);
    CHECK(err_now.st_dev == err_was.st_dev && err_now.st_ino == err_was.st_ino);
    int next = dup(saved_err);
    CHECK(next > 2);
    close(next);

    /* Called again with all three open: nothing changes. */
    CHECK(netx_stdio_reserve() == 0);
    int again = dup(saved_err);
    CHECK(again == next);
    close(again);
}

static void log_stdio_reserve_fills_closed_standard_descriptors(void **state)
{
    (void)state;
    run_child(reserve_body, "netx_stdio_reserve() with 0 and 1 closed");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TEST(log_repeated_site_one_line_then_flush_count),
        TEST(log_two_sites_each_first_line),
        TEST(log_next_call_after_second_carries_count),
        TEST(log_other_site_writes_held_lines_after_second),
        TEST(log_each_writes_every_line),
        TEST(log_control_chars_escaped_one_line),
        TEST(log_long_text_cut_one_line),
        TEST(log_full_pipe_does_not_block_drops_counted),
        TEST(log_flush_full_pipe_does_not_block_keeps_held),
        TEST(log_flush_reports_dropped_lines),
        TEST(log_replaced_site_writes_held_lines),
        TEST(log_reader_gone_no_sigpipe),
        TEST(log_write_epipe_no_sigpipe),
        TEST(log_write_epipe_sigpipe_blocked_none_left_pending),
        TEST(log_write_epipe_callers_pending_sigpipe_kept),
        TEST(log_stderr_closed_no_crash),
        TEST(log_calls_keep_errno),
        TEST(log_stdio_reserve_fills_closed_standard_descriptors),
    };
    return cmocka_run_group_tests_name("log", tests, NULL, NULL);
}
