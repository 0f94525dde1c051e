/*
 * poller.c - netx_poller: which of many descriptors are ready, in one call.
 *
 * The article's "thousands of simultaneous connections" rest on this: one
 * thread asks the system which sockets can be read or written now, and
 * serves exactly those. poll(2) answers that, but it is handed the whole
 * list on every call and looks at every socket in it, busy or idle: with
 * 10,000 idle clients, each request pays for 10,000. Linux's epoll keeps the
 * list in the kernel and hands back only the ready ones, so an idle client
 * costs nothing per wake-up.
 *
 * One small interface, two backends behind it, as redis's ae does it:
 *
 *   epoll   Linux, the default there.
 *   poll    everywhere: the portable fallback, chosen with NETX_POLLER=poll
 *           so the tests run every program on both.
 *
 * Both are level-triggered: a descriptor that stays readable is reported on
 * every wait until it is read, so a loop that reads only part of what came
 * loses nothing. A hang-up or error is reported as readable and writable
 * too, so the next recv or send says exactly what happened.
 *
 * What was registered (the events asked for and the caller's data) lives in
 * a table indexed by descriptor, so that both backends answer alike and the
 * data pointer never goes through the kernel.
 */
#if defined(__linux__) && !defined(_GNU_SOURCE)
#define _GNU_SOURCE /* epoll_create1(), EPOLL_CLOEXEC */
#endif

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef __linux__
#include <sys/epoll.h>
#define NETX__HAVE_EPOLL 1
#else
#define NETX__HAVE_EPOLL 0
#endif

#include "internal.h"

#define ALL_EVENTS (NETX_READABLE | NETX_WRITABLE)

/* What the caller registered for one descriptor. */
struct slot {
    void *data;      /* given to add or mod, handed back with its events */
    unsigned events; /* NETX_READABLE | NETX_WRITABLE asked for */
    int pos;         /* -1: not registered; poll backend: index in pfds */
};

struct netx_poller {
    int epoll;          /* 1: the epoll backend; 0: poll */
    int epfd;           /* epoll: its descriptor */
    int stop_fd;        /* epoll: our duplicate of the stop pipe in the set */
    int stop_of;        /* epoll: the stop pipe it duplicates */
    struct slot *slots; /* indexed by descriptor */
    int nslots;
    struct pollfd *pfds; /* poll: the registered descriptors, dense, and one
                            spare element at the end for the stop pipe */
    int npfds;
    int pfds_cap;
    int rotate;                  /* poll: where the next scan starts */
    int count;                   /* descriptors registered */
    void *kernel_events;         /* epoll: struct epoll_event[max] */
    int kernel_cap;
    netx_event *batch;           /* the caller's array of the last wait */
    int batch_n;                 /* how many events it holds */
};

/* ------------------------------------------------------------------------
 * The table of registrations
 * ------------------------------------------------------------------------ */

/* The slot for fd, growing the table as needed; NULL when out of memory. */
static struct slot *slot_for(netx_poller *p, int fd)
{
    if (fd < p->nslots) {
        return &p->slots[fd];
    }
    int n = p->nslots > 0 ? p->nslots : 64;
    while (n <= fd) {
        if (n > INT_MAX / 2) {
            n = INT_MAX; /* fd < INT_MAX, so this holds it */
            break;
        }
        n *= 2;
    }
    struct slot *grown = realloc(p->slots, (size_t)n * sizeof *grown);
    if (grown == NULL) {
        return NULL;
    }
    for (int i = p->nslots; i < n; i++) {
        grown[i] = (struct slot){.data = NULL, .events = 0, .pos = -1};
    }
    p->slots = grown;
    p->nslots = n;
    return &p->slots[fd];
}

static int registered(const netx_poller *p, int fd)
{
    return fd >= 0 && fd < p->nslots && p->slots[fd].pos >= 0;
}

/* Record a failure: "poller add fd 7 (epoll): File exists". */
static int poller_fail(const netx_poller *p, int err, const char *step, int fd)
{
    return netx__fail(err, "poller %s fd %d (%s)", step, fd, netx_poller_backend(p));
}

/* Unknown bits in events are a mistake of the caller's, not "ask for less". */
static int check_events(const netx_poller *p, const char *step, int fd, unsigned events)
{
    if ((events & ~ALL_EVENTS) != 0) {
        return netx__fail(EINVAL, "poller %s fd %d (%s): events 0x%x: only NETX_READABLE and "
                                  "NETX_WRITABLE can be asked for",
                          step, fd, netx_poller_backend(p), events);
    }
    if (fd < 0) {
        return poller_fail(p, EBADF, step, fd);
    }
    return 0;
}

/* ------------------------------------------------------------------------
 * The epoll backend
 * ------------------------------------------------------------------------ */

#if NETX__HAVE_EPOLL
static unsigned to_epoll(unsigned events)
{
    return ((events & NETX_READABLE) ? EPOLLIN : 0u) | ((events & NETX_WRITABLE) ? EPOLLOUT : 0u);
}

static int epoll_change(netx_poller *p, int op, int fd, unsigned events)
{
    struct epoll_event ev;
    memset(&ev, 0, sizeof ev);
    ev.events = to_epoll(events);
    ev.data.fd = fd;
    return epoll_ctl(p->epfd, op, fd, &ev);
}

/*
 * Keep the stop pipe of this moment in the epoll set, so that a stop signal
 * wakes the wait without a second system call per wait. The pipe changes
 * when a drain starts (stop.c), so the registration follows it. We add a
 * duplicate of it, never the pipe itself: a program may register
 * netx_stop_fd() in the same poller, and one descriptor cannot be in an
 * epoll set twice.
 */
static int epoll_watch_stop(netx_poller *p, int stop_pipe)
{
    if (stop_pipe == p->stop_of) {
        return 0;
    }
    if (p->stop_fd >= 0) {
        epoll_ctl(p->epfd, EPOLL_CTL_DEL, p->stop_fd, NULL);
        close(p->stop_fd);
        p->stop_fd = -1;
        p->stop_of = -1;
    }
    if (stop_pipe < 0) {
        return 0;
    }
    int dup = fcntl(stop_pipe, F_DUPFD_CLOEXEC, 3);
    if (dup < 0) {
        return -1;
    }
    struct epoll_event ev;
    memset(&ev, 0, sizeof ev);
    ev.events = EPOLLIN;
    ev.data.fd = dup;
    if (epoll_ctl(p->epfd, EPOLL_CTL_ADD, dup, &ev) != 0) {
        int err = errno;
        close(dup);
        errno = err;
        return -1;
    }
    p->stop_fd = dup;
    p->stop_of = stop_pipe;
    return 0;
}

/* One epoll_wait; returns the kernel's count (the stop pipe included), or
 * -1. */
static int epoll_once(netx_poller *p, int max, int wait_ms)
{
    /* Never more than can be ready: what is registered, and the stop pipe.
     * Exactly max otherwise - asking the kernel for more than we hand on
     * would send the extra ones to the back of its ready list for nothing,
     * and a descriptor could lose its turn for ever. A ready stop pipe
     * ends the wait anyway, so it needs no slot of its own. */
    int want = p->count < max ? p->count + 1 : max;
    if (want > p->kernel_cap) {
        void *grown = realloc(p->kernel_events, (size_t)want * sizeof(struct epoll_event));
        if (grown == NULL) {
            errno = ENOMEM;
            return -1;
        }
        p->kernel_events = grown;
        p->kernel_cap = want;
    }
    return epoll_wait(p->epfd, p->kernel_events, want, wait_ms);
}

/* Turn the kernel's events into the caller's; -2 if the stop pipe is among
 * them. */
static int epoll_collect(netx_poller *p, int n, netx_event *out, int max)
{
    const struct epoll_event *ev = p->kernel_events;
    int got = 0;
    for (int i = 0; i < n; i++) {
        int fd = ev[i].data.fd;
        if (fd == p->stop_fd) {
            return -2;
        }
        if (!registered(p, fd) || got == max) {
            continue;
        }
        unsigned e = 0;
        if (ev[i].events & EPOLLIN) {
            e |= NETX_READABLE;
        }
        if (ev[i].events & EPOLLOUT) {
            e |= NETX_WRITABLE;
        }
        if (ev[i].events & EPOLLHUP) {
            e |= NETX_HANGUP | NETX_READABLE | NETX_WRITABLE;
        }
        if (ev[i].events & EPOLLERR) {
            e |= NETX_ERROR | NETX_READABLE | NETX_WRITABLE;
        }
        out[got++] = (netx_event){.fd = fd, .events = e, .data = p->slots[fd].data};
    }
    return got;
}
#endif

/* ------------------------------------------------------------------------
 * The poll backend
 * ------------------------------------------------------------------------ */

static short to_poll(unsigned events)
{
    return (short)(((events & NETX_READABLE) ? POLLIN : 0) | ((events & NETX_WRITABLE) ? POLLOUT : 0));
}

/* Room for one more descriptor, and the spare element after it. */
static int pfds_reserve(netx_poller *p)
{
    if (p->npfds + 2 <= p->pfds_cap) {
        return 0;
    }
    int cap = p->pfds_cap > 0 ? p->pfds_cap * 2 : 64;
    struct pollfd *grown = realloc(p->pfds, (size_t)cap * sizeof *grown);
    if (grown == NULL) {
        return -1;
    }
    p->pfds = grown;
    p->pfds_cap = cap;
    return 0;
}

/*
 * Turn what poll() reported into the caller's events, at most max of them.
 * When more are ready than max, the next wait starts its scan where this
 * one stopped, so descriptors late in the array are not starved.
 */
static int poll_collect(netx_poller *p, netx_event *out, int max)
{
    int got = 0;
    int n = p->npfds;
    int start = n > 0 ? p->rotate % n : 0;
    for (int k = 0; k < n && got < max; k++) {
        int i = (start + k) % n;
        short r = p->pfds[i].revents;
        if (r == 0) {
            continue;
        }
        unsigned e = 0;
        if (r & (POLLIN | POLLPRI)) {
            e |= NETX_READABLE;
        }
        if (r & POLLOUT) {
            e |= NETX_WRITABLE;
        }
        if (r & POLLHUP) {
            e |= NETX_HANGUP | NETX_READABLE | NETX_WRITABLE;
        }
        if (r & (POLLERR | POLLNVAL)) {
            e |= NETX_ERROR | NETX_READABLE | NETX_WRITABLE;
        }
        int fd = p->pfds[i].fd;
        out[got++] = (netx_event){.fd = fd, .events = e, .data = p->slots[fd].data};
        p->rotate = i + 1;
    }
    return got;
}

/* ------------------------------------------------------------------------
 * The interface
 * ------------------------------------------------------------------------ */

netx_poller *netx_poller_new(void)
{
    const char *want = getenv("NETX_POLLER");
    int use_epoll = NETX__HAVE_EPOLL;

    if (want != NULL && want[0] != '\0') {
        if (strcmp(want, "poll") == 0) {
            use_epoll = 0;
        } else if (!(NETX__HAVE_EPOLL && strcmp(want, "epoll") == 0)) {
            netx__fail(EINVAL, "poller: NETX_POLLER=\"%.40s\" is not a backend here (%s)", want,
                       NETX__HAVE_EPOLL ? "epoll, poll" : "poll");
            return NULL;
        }
    }
    netx_poller *p = calloc(1, sizeof *p);
    if (p == NULL) {
        netx__fail(ENOMEM, "poller: out of memory");
        return NULL;
    }
    p->epoll = use_epoll;
    p->epfd = -1;
    p->stop_fd = -1;
    p->stop_of = -1;
#if NETX__HAVE_EPOLL
    if (use_epoll) {
        p->epfd = epoll_create1(EPOLL_CLOEXEC);
        if (p->epfd < 0) {
            int err = errno;
            free(p);
            netx__fail(err, "poller: epoll_create1");
            return NULL;
        }
        /* With a stop armed already, watch it from the start: the poller's
         * descriptors are then all made here, not at some later wait. */
        struct netx__stop_watch w;
        long long none = -1;
        netx__stop_begin(&w);
        int stop_pipe = netx__stop_next(&w, &none);
        if (stop_pipe >= 0 && epoll_watch_stop(p, stop_pipe) != 0) {
            int err = errno;
            close(p->epfd);
            free(p);
            netx__fail(err, "poller: watching the stop pipe");
            return NULL;
        }
    }
#endif
    FILE *t = netx__tracing();
    if (t != NULL) {
        netx__trace_text(t, "poller_new() = %s", netx_poller_backend(p));
    }
    return p;
}

const char *netx_poller_backend(const netx_poller *p)
{
    if (p == NULL) {
        return "none";
    }
    return p->epoll ? "epoll" : "poll";
}

int netx_poller_add(netx_poller *p, int fd, unsigned events, void *data)
{
    if (p == NULL) {
        return netx__fail(EINVAL, "poller add fd %d: poller is NULL", fd);
    }
    if (check_events(p, "add", fd, events) != 0) {
        return -1;
    }
    if (registered(p, fd)) {
        return poller_fail(p, EEXIST, "add", fd);
    }
    /* An open descriptor, before the table grows to its number: a bad
     * number must cost an error, not memory. (epoll would say EBADF too,
     * but only after the table had grown.) */
    if (fcntl(fd, F_GETFD) < 0) {
        return poller_fail(p, errno, "add", fd);
    }
    struct slot *s = slot_for(p, fd);
    if (s == NULL) {
        return poller_fail(p, ENOMEM, "add", fd);
    }
    if (p->epoll) {
#if NETX__HAVE_EPOLL
        if (epoll_change(p, EPOLL_CTL_ADD, fd, events) != 0) {
            return poller_fail(p, errno, "add", fd);
        }
#endif
        s->pos = 0;
    } else {
        if (pfds_reserve(p) != 0) {
            return poller_fail(p, ENOMEM, "add", fd);
        }
        p->pfds[p->npfds] = (struct pollfd){.fd = fd, .events = to_poll(events), .revents = 0};
        s->pos = p->npfds++;
    }
    s->events = events;
    s->data = data;
    p->count++;
    return 0;
}

int netx_poller_mod(netx_poller *p, int fd, unsigned events, void *data)
{
    if (p == NULL) {
        return netx__fail(EINVAL, "poller mod fd %d: poller is NULL", fd);
    }
    if (check_events(p, "mod", fd, events) != 0) {
        return -1;
    }
    if (!registered(p, fd)) {
        return poller_fail(p, ENOENT, "mod", fd);
    }
    struct slot *s = &p->slots[fd];
    if (p->epoll) {
#if NETX__HAVE_EPOLL
        /* Only when the events change: a loop that sets the same mask
         * after every read costs no system call. */
        if (events != s->events && epoll_change(p, EPOLL_CTL_MOD, fd, events) != 0) {
            return poller_fail(p, errno, "mod", fd);
        }
#endif
    } else {
        p->pfds[s->pos].events = to_poll(events);
    }
    s->events = events;
    s->data = data;
    return 0;
}

int netx_poller_del(netx_poller *p, int fd)
{
    if (p == NULL) {
        return netx__fail(EINVAL, "poller del fd %d: poller is NULL", fd);
    }
    if (!registered(p, fd)) {
        return poller_fail(p, fd < 0 ? EBADF : ENOENT, "del", fd);
    }
    struct slot *s = &p->slots[fd];
    if (p->epoll) {
#if NETX__HAVE_EPOLL
        /* A descriptor closed before its del (a mistake the header warns
         * about) has left the set already, when it was the last copy:
         * EBADF then (or ENOENT, if its number is in use again), which
         * leaves nothing behind for us either. */
        if (epoll_ctl(p->epfd, EPOLL_CTL_DEL, fd, NULL) != 0 && errno != EBADF &&
            errno != ENOENT) {
            return poller_fail(p, errno, "del", fd);
        }
#endif
    } else {
        /* Keep pfds dense: the last one moves into the hole. */
        int last = p->npfds - 1;
        if (s->pos != last) {
            p->pfds[s->pos] = p->pfds[last];
            p->slots[p->pfds[s->pos].fd].pos = s->pos;
        }
        p->npfds = last;
    }
    *s = (struct slot){.data = NULL, .events = 0, .pos = -1};
    p->count--;
    /* Events of fd not yet handled in the last batch must not be acted on:
     * the descriptor may be closed, its number reused, its data freed. */
    for (int i = 0; i < p->batch_n; i++) {
        if (p->batch[i].fd == fd) {
            p->batch[i] = (netx_event){.fd = -1, .events = 0, .data = NULL};
        }
    }
    return 0;
}

/* The trace line of a wait: "netx: epoll_wait(5, 64, 1000 ms) = 3". */
static void trace_wait(const netx_poller *p, int max, int timeout_ms, int rc, int err)
{
    FILE *t = netx__tracing();
    if (t == NULL) {
        return;
    }
    if (p->epoll) {
        netx__trace_step(t, rc, err, NULL, "epoll_wait(%d, %d, %d ms)", p->epfd, max, timeout_ms);
    } else {
        netx__trace_step(t, rc, err, NULL, "poll(%d fds, %d, %d ms)", p->npfds, max, timeout_ms);
    }
}

int netx_poller_wait(netx_poller *p, netx_event *out, int max, int timeout_ms)
{
    if (p == NULL || out == NULL || max < 1) {
        return netx__fail(EINVAL, "poller wait: %s",
                          p == NULL     ? "poller is NULL"
                          : out == NULL ? "out is NULL"
                                        : "max is less than 1");
    }
    int saved = errno;
    long long deadline = timeout_ms >= 0 ? netx__now_ms() + timeout_ms : -1;
    struct netx__stop_watch w;
    int got = 0;
    int err = 0;

    p->batch = NULL; /* the last batch is over: nothing to blank any more */
    p->batch_n = 0;
    if (!p->epoll && pfds_reserve(p) != 0) {
        return netx__fail(ENOMEM, "poller wait (poll): out of memory");
    }
    netx__stop_begin(&w);
    for (;;) {
        long long until = deadline;
        int stop_pipe = netx__stop_next(&w, &until);
        if (stop_pipe == -2) {
            err = ECANCELED;
            break;
        }
        int n;
        if (p->epoll) {
#if NETX__HAVE_EPOLL
            if (epoll_watch_stop(p, stop_pipe) != 0) {
                err = errno;
                break;
            }
            n = epoll_once(p, max, netx__wait_ms(until));
            if (n > 0) {
                n = epoll_collect(p, n, out, max);
            }
#else
            n = -1;
            errno = ENOSYS;
#endif
        } else {
            int watch = p->npfds;
            if (stop_pipe >= 0) {
                p->pfds[watch++] = (struct pollfd){.fd = stop_pipe, .events = POLLIN};
            }
            n = poll(p->pfds, (nfds_t)watch, netx__wait_ms(until));
            if (n > 0 && watch > p->npfds && p->pfds[p->npfds].revents != 0) {
                n = -2;
            } else if (n > 0) {
                n = poll_collect(p, out, max);
            }
        }
        if (n == -2) {
            err = ECANCELED; /* the stop pipe of the phase we waited in */
            break;
        }
        if (n < 0) {
            if (errno == EINTR) {
                continue; /* a signal: wait again for the time left */
            }
            err = errno;
            break;
        }
        if (n == 0 && until != deadline) {
            continue; /* the drain's grace period: netx__stop_next() says */
        }
        if (n == 0 && deadline >= 0 && netx__now_ms() < deadline) {
            continue; /* woken for nothing of the caller's (a race of the
                         stop pipe's registration); the time is not up */
        }
        got = n;
        break;
    }
    trace_wait(p, max, timeout_ms, err != 0 ? -1 : got, err);
    if (err != 0) {
        return netx__fail(err, "poller wait (%s)", netx_poller_backend(p));
    }
    p->batch = out;
    p->batch_n = got;
    errno = saved;
    return got;
}

void netx_poller_free(netx_poller *p)
{
    if (p == NULL) {
        return;
    }
    int saved = errno;
    if (p->stop_fd >= 0) {
        close(p->stop_fd);
    }
    if (p->epfd >= 0) {
        close(p->epfd);
    }
    free(p->slots);
    free(p->pfds);
    free(p->kernel_events);
    free(p);
    errno = saved;
}
