/*
 * log.c - netx_log(): one line to standard error, the way a server must
 * write it.
 *
 * A server's log is a trap. Standard error may be a pipe nobody reads (a
 * service manager that hangs, `server 2>&1 | slow-reader`): a plain
 * fprintf() then blocks the server in the middle of serving, and with it
 * every client. It may be a pipe whose reader has gone: the write raises
 * SIGPIPE, and the server dies of a log line. And one misbehaving client
 * can make a server write the same line a thousand times a second.
 *
 * So a line is written only if standard error can take it now (poll() with
 * no wait), with SIGPIPE held back; a line that cannot be written is
 * dropped and counted. Each call site (its format string) writes at most
 * one line a second; the lines it would have written in between are
 * counted, and the count goes out with its next line - or, once the second
 * is over, with the last of them, at the next netx_log() or
 * netx_log_flush().
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

/* One call site's line at most this often. */
#define EVERY_MS 1000

/* Call sites remembered at once; a new one replaces the oldest. */
#define SITES 32

/* Where a line is cut (escaped text, before the counts are added). */
#define TEXT_MAX 420

struct site {
    const char *fmt;     /* the call site's format string, NULL if unused */
    long long shown_ms;  /* when its last line was written */
    unsigned long held;  /* lines not shown since then */
    char last[TEXT_MAX]; /* the last of them */
};

/* The log is the process's, as standard error is. A spin lock, because a
 * holder never waits on anything (the write cannot block), and because the
 * library links without pthreads. */
static atomic_flag busy = ATOMIC_FLAG_INIT;
static struct site sites[SITES];
static unsigned long dropped; /* lines standard error could not take */

static void lock(void)
{
    while (atomic_flag_test_and_set_explicit(&busy, memory_order_acquire)) {
        struct timespec pause = {0, 100000}; /* another thread is writing one line */
        nanosleep(&pause, NULL);
    }
}

static void unlock(void)
{
    atomic_flag_clear_explicit(&busy, memory_order_release);
}

/*
 * Write len bytes to descriptor 2 if it can take them without waiting, and
 * without SIGPIPE. Returns 0 when written, -1 when not.
 */
static int write_now(const char *line, size_t len)
{
    struct pollfd p = {.fd = 2, .events = POLLOUT, .revents = 0};
    if (poll(&p, 1, 0) != 1 || (p.revents & (POLLERR | POLLHUP | POLLNVAL)) != 0) {
        return -1; /* full, closed, or nobody reading: do not wait */
    }
    /* A reader that goes away between poll() and write() makes write()
     * raise SIGPIPE. Hold it back in this thread; if our write raised it,
     * take it out of the pending set again, so the process never sees it. */
    sigset_t pipe_only;
    sigset_t old;
    sigset_t pending;
    sigemptyset(&pipe_only);
    sigaddset(&pipe_only, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_only, &old);
    sigpending(&pending);
    int was_pending = sigismember(&pending, SIGPIPE);

    /* One write of at most PIPE_BUF bytes: a pipe takes it whole, never
     * mixed with another process's line, and POLLOUT says there is room. */
    ssize_t n = write(2, line, len);
    int err = errno;

    if (n < 0 && err == EPIPE && !was_pending) {
        sigpending(&pending);
        if (sigismember(&pending, SIGPIPE)) {
            int sig;
            sigwait(&pipe_only, &sig);
        }
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return n == (ssize_t)len ? 0 : -1;
}

static void emit_held(struct site *s, long long now);

/* The slot of call site fmt: its own, or the one used longest ago - whose
 * held lines are written first, or counted as dropped when they cannot be. */
static struct site *site_of(const char *fmt, long long now)
{
    struct site *oldest = &sites[0];
    for (int i = 0; i < SITES; i++) {
        if (sites[i].fmt == fmt) {
            return &sites[i];
        }
        if (sites[i].fmt == NULL) {
            oldest = &sites[i];
            break;
        }
        if (sites[i].shown_ms < oldest->shown_ms) {
            oldest = &sites[i];
        }
    }
    if (oldest->fmt != NULL && oldest->held > 0) {
        emit_held(oldest, now);
        dropped += oldest->held; /* 0 when they went out */
    }
    *oldest = (struct site){.fmt = fmt, .shown_ms = -EVERY_MS, .held = 0};
    return oldest;
}

/*
 * Write text as one line, with what was not shown: more lines of the same
 * call site, and lines standard error did not take. Returns 0 if written.
 * A line not written is counted as dropped when lost is set (a held line
 * that stays held is not lost). Called with the lock held.
 */
static int emit(const char *text, unsigned long more, long long since_ms, long long now, int lost)
{
    char line[PIPE_BUF < 640 ? PIPE_BUF : 640];
    size_t used = (size_t)snprintf(line, sizeof line, "%s", text);
    if (more > 0 && used < sizeof line) {
        used += (size_t)snprintf(line + used, sizeof line - used,
                                 " (and %lu more like this in the last %lld s)", more,
                                 now - since_ms >= 1500 ? (now - since_ms + 500) / 1000 : 1);
    }
    if (dropped > 0 && used < sizeof line) {
        used += (size_t)snprintf(line + used, sizeof line - used,
                                 " (%lu lines before this one were dropped: standard error "
                                 "was not taking any)",
                                 dropped);
    }
    if (used > sizeof line - 2) {
        used = sizeof line - 2;
    }
    line[used++] = '\n';
    if (write_now(line, used) != 0) {
        dropped += lost ? 1 : 0;
        return -1;
    }
    dropped = 0;
    return 0;
}

/* Write the held lines of s as one: the last of them, with the count of the
 * others. */
static void emit_held(struct site *s, long long now)
{
    if (s->held > 0 && emit(s->last, s->held - 1, s->shown_ms, now, 0) == 0) {
        s->held = 0;
        s->shown_ms = now;
    }
}

void netx_log(const char *fmt, ...)
{
    if (fmt == NULL) {
        return;
    }
    int saved = errno;
    char raw[400];
    char text[TEXT_MAX];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(raw, sizeof raw, fmt, ap);
    va_end(ap);
    /* One line, whatever the text holds: a newline in a host name must
     * not forge a second line. */
    netx__escape(text, sizeof text, raw);

    lock();
    long long now = netx__now_ms();
    struct site *s = site_of(fmt, now);
    if (now - s->shown_ms < EVERY_MS) {
        s->held++;
        memcpy(s->last, text, sizeof s->last);
    } else if (emit(text, s->held, s->shown_ms, now, 1) == 0) {
        s->shown_ms = now;
        s->held = 0;
    }
    /* Other call sites whose second is over: their held lines now. */
    for (int i = 0; i < SITES; i++) {
        if (&sites[i] != s && sites[i].held > 0 && now - sites[i].shown_ms >= EVERY_MS) {
            emit_held(&sites[i], now);
        }
    }
    unlock();
    errno = saved;
}

void netx_log_each(const char *fmt, ...)
{
    if (fmt == NULL) {
        return;
    }
    int saved = errno;
    char raw[400];
    char text[TEXT_MAX];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(raw, sizeof raw, fmt, ap);
    va_end(ap);
    netx__escape(text, sizeof text, raw);
    lock();
    emit(text, 0, 0, netx__now_ms(), 1);
    unlock();
    errno = saved;
}

void netx_log_flush(void)
{
    int saved = errno;
    lock();
    long long now = netx__now_ms();
    for (int i = 0; i < SITES; i++) {
        emit_held(&sites[i], now);
    }
    if (dropped > 0) {
        /* Lines lost with no line since to say so: say it now. */
        char line[160];
        int n = snprintf(line, sizeof line,
                         "netx_log: %lu lines were dropped: standard error was not taking any\n",
                         dropped);
        if (write_now(line, (size_t)n) == 0) {
            dropped = 0;
        }
    }
    unlock();
    errno = saved;
}

int netx_stdio_reserve(void)
{
    /* Open /dev/null until the lowest free descriptor is above 2: each
     * open() takes the lowest number free, so this fills exactly the
     * closed ones among 0, 1 and 2. */
    for (int i = 0; i < 3; i++) {
        int fd = open("/dev/null", O_RDWR);
        if (fd < 0) {
            return netx__fail(errno, "reserve standard descriptors: open /dev/null");
        }
        if (fd > 2) {
            close(fd);
            return 0;
        }
    }
    return 0;
}
