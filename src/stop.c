/*
 * stop.c - netx_stop_on(): a signal that ends blocking calls.
 *
 * libnetx retries EINTR, so a program whose SIGINT handler only sets a flag
 * never gets out of a netx_accept() that is waiting for a client. And a
 * signal goes to one thread only, so even a call that gave up on EINTR would
 * free just that thread. What works for every thread, with no race, is a
 * descriptor: the handler writes a byte to a pipe, and every wait in the
 * library polls that pipe beside its socket. A pipe stays readable until
 * somebody reads it, and nobody does: a signal that lands a moment before a
 * wait starts still ends it, because poll() sees the byte already there.
 *
 * A stop goes through phases, process-wide:
 *
 *   RUNNING   no stop signal yet: waits wait.
 *   STOPPING  the first stop signal came: every wait, now or later, fails
 *             with ECANCELED, until the program calls netx_stop_drain().
 *   DRAINING  the program finishes what it owes: waits work again, but none
 *             lasts past the grace deadline.
 *   STOPPED   a second stop signal came, or the grace period ended: every
 *             wait fails with ECANCELED, for good.
 *
 * Two pipes, because one cannot tell the two signals apart: waits before the
 * drain watch the first, waits during it the second. Neither is ever read.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "compat.h"
#include "internal.h"

enum { RUNNING, STOPPING, DRAINING, STOPPED };

/* 0 while no stop is armed; once one is, the flag that makes a send or
 * receive return instead of waiting, so that the library waits in poll(),
 * where a stop can reach it. See io.c. */
_Atomic int netx__stop_flags;

/* Set once, before any handler can run; read by the handler. */
static _Atomic int first_pipe[2] = {-1, -1};  /* written by the first signal */
static _Atomic int second_pipe[2] = {-1, -1}; /* by the second */
static _Atomic int pipes_state;               /* 0 none, 1 being made, 2 ready */
static _Atomic int armed;                     /* netx_stop_on() succeeded once */

static _Atomic int phase = RUNNING;
static _Atomic int stop_signal;               /* the last stop signal's number */
static _Atomic long long grace_deadline = -1; /* netx__now_ms() when DRAINING ends */
static _Atomic int grace_over;                /* STOPPED because the grace period ended */

/* If the grace period of a drain is over, move to STOPPED (for every
 * thread: netx_stop_drain() then says ECANCELED too). 1 if stopped. */
static int end_of_grace(void)
{
    long long grace = atomic_load(&grace_deadline);
    if (grace < 0 || netx__now_ms() < grace) {
        return 0;
    }
    int expected = DRAINING;
    if (atomic_compare_exchange_strong(&phase, &expected, STOPPED)) {
        atomic_store(&grace_over, 1);
    }
    return 1;
}

/*
 * The handler: only what a signal handler may do. Atomics that are lock
 * free, and write(2), which is async-signal-safe. errno is saved because the
 * handler interrupts code that may be about to read it.
 */
static void on_stop_signal(int signo)
{
    int saved = errno;
    atomic_store(&stop_signal, signo);
    int now = atomic_load(&phase);
    int next;
    do {
        next = now == RUNNING ? STOPPING : STOPPED;
    } while (!atomic_compare_exchange_weak(&phase, &now, next));
    int fd = next == STOPPING ? atomic_load(&first_pipe[1]) : atomic_load(&second_pipe[1]);
    ssize_t ignored = write(fd, "", 1); /* non-blocking: a full pipe is readable anyway */
    (void)ignored;
    errno = saved;
}

/* A descriptor moved to 3 or above: if the program started with 0, 1 or 2
 * closed, pipe() hands those out, and a printf() would then write into our
 * pipe and stop the program. */
static int above_stdio(int fd)
{
    if (fd > 2) {
        return fd;
    }
    int moved = fcntl(fd, F_DUPFD_CLOEXEC, 3);
    int err = errno;
    close(fd);
    errno = err;
    return moved;
}

static int make_pipe(_Atomic int ends[2])
{
    int fds[2];
    if (pipe(fds) != 0) {
        return -1;
    }
    for (int i = 0; i < 2; i++) {
        int fd = above_stdio(fds[i]);
        if (fd < 0 || fcntl(fd, F_SETFD, FD_CLOEXEC) != 0 || fcntl(fd, F_SETFL, O_NONBLOCK) != 0) {
            int err = errno;
            if (fd >= 0) {
                close(fd);
            }
            if (i == 0) {
                close(fds[1]);
            } else {
                close(atomic_load(&ends[0]));
            }
            errno = err;
            return -1;
        }
        atomic_store(&ends[i], fd);
    }
    return 0;
}

/* Make both pipes, once, whichever threads ask at the same time. */
static int make_pipes(void)
{
    int expected = 0;
    if (atomic_compare_exchange_strong(&pipes_state, &expected, 1)) {
        if (make_pipe(first_pipe) != 0) {
            atomic_store(&pipes_state, 0);
            return -1;
        }
        if (make_pipe(second_pipe) != 0) {
            int err = errno;
            close(atomic_load(&first_pipe[0]));
            close(atomic_load(&first_pipe[1]));
            atomic_store(&pipes_state, 0);
            errno = err;
            return -1;
        }
        atomic_store(&pipes_state, 2);
        return 0;
    }
    while (atomic_load(&pipes_state) == 1) {
        struct timespec ms = {0, 1000000}; /* another thread is making them */
        nanosleep(&ms, NULL);
    }
    return atomic_load(&pipes_state) == 2 ? 0 : make_pipes();
}

const char *netx__signal_name(int signo)
{
    switch (signo) {
    case SIGINT:
        return "SIGINT";
    case SIGTERM:
        return "SIGTERM";
    case SIGHUP:
        return "SIGHUP";
    case SIGQUIT:
        return "SIGQUIT";
    case SIGUSR1:
        return "SIGUSR1";
    case SIGUSR2:
        return "SIGUSR2";
    case SIGALRM:
        return "SIGALRM";
    case SIGPIPE:
        return "SIGPIPE";
    case SIGCHLD:
        return "SIGCHLD";
    default:
        return NULL;
    }
}

/* "SIGINT", or "signal 40" for one without a name here. */
static void signal_text(int signo, char *buf, size_t cap)
{
    const char *name = netx__signal_name(signo);
    if (name != NULL) {
        snprintf(buf, cap, "%s", name);
    } else {
        snprintf(buf, cap, "signal %d", signo);
    }
}

int netx_stop_on(int signo)
{
    char name[32];
    signal_text(signo, name, sizeof name);
    if (signo <= 0 || signo == SIGKILL || signo == SIGSTOP) {
        return netx__fail(EINVAL, "stop on %s: not a signal a program can catch", name);
    }
    if (make_pipes() != 0) {
        return netx__fail(errno, "stop on %s: pipe", name);
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0; /* no SA_RESTART: a wait the signal interrupts must end */
    int rc = sigaction(signo, &sa, NULL);
    int err = errno;
    FILE *t = netx__tracing();
    if (t != NULL) {
        netx__trace_step(t, rc, err, NULL, "stop_on(%s)", name);
    }
    if (rc != 0) {
        return netx__fail(err, "stop on %s: sigaction", name);
    }
    atomic_store(&armed, 1);
    atomic_store(&netx__stop_flags, NETX__DONTWAIT);
    return 0;
}

int netx_stopping(void)
{
    return atomic_load(&phase) != RUNNING;
}

int netx_stop_drain(int grace_ms)
{
    int now = atomic_load(&phase);
    if (now == RUNNING) {
        return netx__fail(EINVAL, "stop drain: no stop signal has arrived");
    }
    if (now == STOPPING) {
        /* The deadline first: a wait that sees DRAINING must see it too. */
        atomic_store(&grace_deadline, grace_ms > 0 ? netx__now_ms() + grace_ms : -1);
        if (atomic_compare_exchange_strong(&phase, &now, DRAINING)) {
            FILE *t = netx__tracing();
            if (t != NULL) {
                netx__trace_text(t, "stop_drain(%d ms): finishing what is owed", grace_ms);
            }
            return 0;
        }
        /* Another thread started the drain first (fine), or a second
         * signal came in between (stopped). */
    }
    if (now == DRAINING && !end_of_grace()) {
        return 0;
    }
    return netx__fail(ECANCELED, "stop drain");
}

int netx_stop_fd(void)
{
    if (!atomic_load(&armed)) {
        return netx__fail(EINVAL, "stop fd: netx_stop_on() has not been called");
    }
    int now = atomic_load(&phase);
    return now == RUNNING || now == STOPPING ? atomic_load(&first_pipe[0])
                                             : atomic_load(&second_pipe[0]);
}

int netx__stop_cause(char *buf, size_t cap)
{
    int signo = atomic_load(&stop_signal);
    char name[32];
    if (signo == 0) {
        return 0;
    }
    signal_text(signo, name, sizeof name);
    if (atomic_load(&grace_over)) {
        snprintf(buf, cap, "stopped by %s: the grace period is over", name);
    } else {
        snprintf(buf, cap, "stopped by %s", name);
    }
    return 1;
}

void netx__stop_begin(struct netx__stop_watch *w)
{
    w->armed = atomic_load_explicit(&armed, memory_order_relaxed);
    w->began = atomic_load(&phase);
}

int netx__stop_next(const struct netx__stop_watch *w, long long *until)
{
    if (!w->armed) {
        return -1;
    }
    /* A stop that comes while we wait cancels this wait, even if another
     * thread has started the drain by the time we look: so compare with the
     * phase the wait began in, not only with the phase now. */
    int now = atomic_load(&phase);
    if (now != w->began || now == STOPPING || now == STOPPED) {
        errno = ECANCELED;
        return -2;
    }
    if (now == DRAINING) {
        if (end_of_grace()) {
            errno = ECANCELED;
            return -2;
        }
        long long grace = atomic_load(&grace_deadline);
        if (grace >= 0 && (*until < 0 || grace < *until)) {
            *until = grace;
        }
    }
    return now == RUNNING ? atomic_load(&first_pipe[0]) : atomic_load(&second_pipe[0]);
}

int netx__wait_ms(long long until)
{
    if (until < 0) {
        return -1;
    }
    long long left = until - netx__now_ms();
    return left > 0 ? (left > 0x7fffffff ? 0x7fffffff : (int)left) : 0;
}

/*
 * The one wait of the library: poll() on the caller's descriptors and, when
 * a stop is armed, on the stop pipe in fds[n] (the caller leaves room for
 * it). deadline is netx__now_ms() time, or -1 for none. Returns the number
 * of ready descriptors among the caller's, 0 when the deadline passed, or -1
 * with errno (ECANCELED for a stop; poll's own errors). EINTR is retried
 * with the same deadline.
 */
int netx__poll(struct pollfd *fds, int n, long long deadline)
{
    struct netx__stop_watch w;
    netx__stop_begin(&w);
    for (;;) {
        long long until = deadline;
        int stop_fd = netx__stop_next(&w, &until);
        if (stop_fd == -2) {
            return -1; /* ECANCELED */
        }
        int watch = n;
        if (stop_fd >= 0) {
            fds[n] = (struct pollfd){.fd = stop_fd, .events = POLLIN, .revents = 0};
            watch = n + 1;
        }
        int ready = poll(fds, (nfds_t)watch, netx__wait_ms(until));
        if (ready < 0) {
            if (errno == EINTR) {
                continue; /* a signal: if it was a stop, the phase says so */
            }
            return -1;
        }
        if (watch > n && fds[n].revents != 0) {
            errno = ECANCELED; /* the pipe of the phase we waited in */
            return -1;
        }
        if (ready == 0) {
            if (until != deadline) {
                continue; /* the grace period ended, not the caller's wait */
            }
            return 0;
        }
        return ready;
    }
}

void netx__stop_reset(void)
{
    atomic_store(&phase, RUNNING);
    atomic_store(&stop_signal, 0);
    atomic_store(&grace_deadline, -1);
    atomic_store(&grace_over, 0);
    if (atomic_load(&pipes_state) == 2) {
        char sink[64];
        while (read(atomic_load(&first_pipe[0]), sink, sizeof sink) > 0) {
        }
        while (read(atomic_load(&second_pipe[0]), sink, sizeof sink) > 0) {
        }
    }
}
