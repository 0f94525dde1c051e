/*
 * poll_server.c - the article's architecture 4: an event-driven server.
 *
 * "Using non-blocking I/O, these systems handle thousands of simultaneous
 * connections." This is an echo server that does exactly that in ONE thread:
 * every socket is non-blocking, and a single poll(2) call tells us which of
 * them are ready. Nothing ever waits on one client, so a slow or silent
 * client cannot hold up the others - the idea behind Node.js and Python's
 * asyncio, with the machinery in plain sight.
 *
 *   $ ./poll_server -p 0                   $ ./echo_client -p 41234 hi there
 *   listening on 127.0.0.1:41234           hi
 *                                          there
 *
 * How it fits together:
 *
 *  - One array of struct pollfd is handed to poll(); slot 0 is the stop
 *    descriptor (netx_stop_fd(): readable once SIGINT or SIGTERM came),
 *    slot 1 the listening socket, and slots 2.. the clients. A second array, clients[], holds what we know about each
 *    client, kept in step: clients[k] belongs to pfds[FIRST_CLIENT + k].
 *  - Each client's events say what we wait for: POLLIN while we are willing
 *    to read from it, POLLOUT only while we have bytes it has not taken yet.
 *    We change those bits when that changes, never rebuild the array.
 *  - Echoing: read what has arrived, send what the socket takes, keep the
 *    rest in the client's own output buffer. That buffer exists only while
 *    bytes are pending and has a cap (-b): once full, we stop reading from
 *    that client (backpressure), so a client that sends and never reads
 *    costs us at most the cap, and never delays anyone else.
 *  - Time limits: a client silent for -t seconds is closed, and so is one
 *    connected for -d seconds, whatever it does - the only defence against
 *    a client that trickles a byte now and then to stay just short of -t
 *    (the "slowloris" attack). A sweep over every client, once a second,
 *    checks both.
 *  - Stopping gracefully: the first SIGINT or SIGTERM closes the listener
 *    and lets every client finish - until it ends its side and has its
 *    whole echo, or the grace period (-g) is over. A second signal stops at
 *    once.
 *
 * The limit of poll() itself: every call hands the kernel the whole array,
 * and the kernel looks at every socket in it, busy or idle. With thousands
 * of mostly active clients that is fine; with 10,000 idle ones and a few
 * busy, each request pays for the 10,000 (docs/performance.md measures it).
 * That is why Linux has epoll and the BSDs kqueue, which report only the
 * ready sockets. The next step is event_server: the same echo on the
 * library's netx_poller (epoll) and netx_writer, which keep this file's
 * machinery out of the program.
 *
 * Run it with NETX_TRACE=1 to watch every accept, recv and send.
 */
#include <errno.h>
#include <limits.h>
#include <netx.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

static const char *prog = "poll_server";

/* The fixed slots at the front of the pollfd array. */
enum { STOP_SLOT = 0, LISTEN_SLOT = 1, FIRST_CLIENT = 2 };

/* Descriptors we need besides the clients: stdin/out/err, the listener,
 * the stop's pipes, one to accept-and-refuse a client when we are full, and
 * some slack. */
#define RESERVED_FDS 16

/* At most this many accepts each time the listener is readable, so that a
 * flood of new connections cannot starve the clients we already have. */
#define ACCEPT_BATCH 64

/* How long to stop accepting after running out of descriptors. */
#define FD_PAUSE_MS 100

/* One recv reads at most this much (the shared buffer's size). */
#define READ_CHUNK 65536

/* A client's output buffer starts at this size and doubles up to the cap. */
#define OUT_FIRST 4096

/* Limits on the command line's numbers. */
#define MAX_CLIENTS_LIMIT 1000000UL
#define OUT_CAP_LIMIT     (1UL << 30)
#define IDLE_LIMIT        86400UL
#define DEADLINE_LIMIT    86400UL
#define GRACE_LIMIT       3600UL

/*
 * What we keep per client. This is all an idle client costs us (plus its
 * struct pollfd): its output buffer is allocated only while some echo is
 * waiting to be sent, and freed as soon as it has all gone. The descriptor
 * itself lives in the pollfd only, so the two can never disagree.
 */
struct client {
    unsigned char *out; /* pending output, NULL when there is none */
    size_t off;         /* first byte of out not yet sent */
    size_t len;         /* one past the last byte of out */
    size_t size;        /* bytes allocated at out */
    long long last_ms;  /* last time it sent or took bytes */
    long long since_ms; /* when it was accepted, for -d */
    int eof;            /* it has finished sending (recv returned 0) */
};

struct server {
    struct pollfd *pfds;    /* [STOP_SLOT], [LISTEN_SLOT], then clients */
    struct client *clients; /* clients[k] goes with pfds[FIRST_CLIENT + k] */
    size_t nclients;        /* clients connected now */
    size_t room;            /* clients the two arrays can hold */
    size_t max_clients;     /* -n */
    size_t out_cap;         /* -b */
    long long idle_ms;      /* -t in milliseconds; 0 = no idle timeout */
    long long deadline_ms;  /* -d in milliseconds; 0 = no deadline */
    unsigned char *scratch; /* one read buffer shared by every client */
    size_t scratch_size;
    long long now;          /* the clock, read once per wakeup */
    long long next_sweep;   /* when to look for expired clients next */
    int accepts_paused;     /* the listener is left out of poll() ... */
    long long paused_until; /* ... until then */
    int fd_warned;          /* "out of descriptors" was reported */
    int oom_warned;         /* "out of memory" was reported */
    long long grace_ms;     /* -g in milliseconds */
    long long drain_until;  /* stopping: when the grace period ends; else 0 */
};

/* What serving a client leaves behind. */
enum { KEEP = 0, DROP = 1 };

static void usage(FILE *out)
{
    fprintf(out,
            "usage: %s [-H HOST] [-p PORT] [-n MAX] [-b BYTES] [-t SECONDS]\n"
            "       [-d SECONDS] [-g SECONDS]\n"
            "  Echo server for thousands of clients in one thread, with poll().\n"
            "  -H HOST     address to listen on (default localhost; '' for every interface)\n"
            "  -p PORT     port to listen on, 0 for any free one (default 12345)\n"
            "  -n MAX      most clients at once, 1 to 1000000 (default 10000);\n"
            "              more are told \"server busy\" and closed\n"
            "  -b BYTES    most echo bytes held for a client that reads slowly,\n"
            "              1 to 1073741824; at the cap we stop reading from it\n"
            "              (default 65536)\n"
            "  -t SECONDS  close a client silent for that long, 0 to 86400\n"
            "              (default 0: never)\n"
            "  -d SECONDS  close a client connected for that long, whatever it\n"
            "              does, 0 to 86400 (default 0: never)\n"
            "  -g SECONDS  on SIGINT or SIGTERM, stop accepting and let the clients\n"
            "              finish for at most this long, 0 to 3600 (default 5);\n"
            "              a second signal stops at once\n"
            "  -h          show this help\n",
            prog);
}

/* A bad command line: one line saying why, the usage, exit status 2. */
static void bad_usage(const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s: ", prog);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    usage(stderr);
    exit(2);
}

/*
 * "-H 127.0.0.1:80" puts a port where only a host goes, a common slip: say
 * where the port goes rather than fail to resolve it. An IPv6 address has
 * colons of its own ("::1", "fe80::1"), so only a single colon, or one
 * after a bracketed address ("[::1]:80"), starts a port.
 */
static void check_listen_host(const char *host)
{
    const char *colon = strrchr(host, ':');
    size_t digits = colon != NULL ? strspn(colon + 1, "0123456789") : 0;
    if (colon == NULL || digits == 0 || colon[1 + digits] != '\0') {
        return;
    }
    int bracketed = host[0] == '[' && colon > host && colon[-1] == ']';
    if (!bracketed && strchr(host, ':') != colon) {
        return; /* an IPv6 address, such as ::1 */
    }
    int len = (int)(colon - host) - 2 * bracketed;
    bad_usage("-H \"%s\" has a port in it: use -H %.*s -p %s", host, len > 0 ? len : 2,
              len > 0 ? host + bracketed : "''", colon + 1);
}

/* Read option -opt's value: decimal digits only, lo to hi. */
static unsigned long parse_number(int opt, const char *text, unsigned long lo, unsigned long hi)
{
    char *end = NULL;
    unsigned long value = 0;

    errno = 0;
    if (text[0] >= '0' && text[0] <= '9') {
        value = strtoul(text, &end, 10);
    }
    if (end == NULL || *end != '\0' || errno != 0 || value < lo || value > hi) {
        bad_usage("-%c \"%s\": not a number from %lu to %lu", opt, text, lo, hi);
    }
    return value;
}

/* A clock that never jumps (the wall clock can be set back). */
static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * Every client is a descriptor, and a process may only have RLIMIT_NOFILE of
 * them (often 1024 by default: too few for "thousands of connections"). A
 * process may raise its own soft limit up to the hard one, so do that if
 * max_clients needs it. Returns how many clients we can really hold; if that
 * is fewer, refuse the rest politely rather than run out of descriptors in
 * the middle of accepting - and say so, if -n asked for more (the default
 * is only a default).
 */
static size_t fit_fd_limit(size_t max_clients, int asked)
{
    struct rlimit rl;
    rlim_t need = (rlim_t)max_clients + RESERVED_FDS;

    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
        return max_clients; /* cannot tell; running out is handled anyway */
    }
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < need) {
        struct rlimit raised = rl;
        raised.rlim_cur = need;
        if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < need) {
            raised.rlim_cur = rl.rlim_max;
        }
        if (setrlimit(RLIMIT_NOFILE, &raised) == 0) {
            rl.rlim_cur = raised.rlim_cur;
        }
    }
    if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >= need) {
        return max_clients;
    }
    size_t fit = rl.rlim_cur > RESERVED_FDS + 1 ? (size_t)rl.rlim_cur - RESERVED_FDS : 1;
    if (!asked) {
        return fit;
    }
    fprintf(stderr,
            "%s: can open only %llu descriptors (RLIMIT_NOFILE, hard limit %llu), "
            "not the %llu that %zu clients need; serving at most %zu clients\n",
            prog, (unsigned long long)rl.rlim_cur, (unsigned long long)rl.rlim_max,
            (unsigned long long)need, max_clients, fit);
    return fit;
}

/* ------------------------------------------------------------------------
 * The client table
 * ------------------------------------------------------------------------ */

/* Make room for one more client: both arrays grow together, doubling, so
 * adding n clients costs O(n) copying in all. */
static int grow_tables(struct server *s)
{
    size_t room = s->room * 2;
    if (room > s->max_clients) {
        room = s->max_clients;
    }
    struct pollfd *p = realloc(s->pfds, (FIRST_CLIENT + room) * sizeof *p);
    if (p == NULL) {
        return -1;
    }
    s->pfds = p;
    struct client *c = realloc(s->clients, room * sizeof *c);
    if (c == NULL) {
        return -1; /* pfds is merely larger than needed: still consistent */
    }
    s->clients = c;
    s->room = room;
    return 0;
}

/* Put a newly accepted client at the end of both arrays. */
static int add_client(struct server *s, int fd)
{
    if (s->nclients == s->room && grow_tables(s) != 0) {
        return -1;
    }
    /* Non-blocking, so that recv and send return at once (EAGAIN) instead
     * of waiting; TCP_NODELAY, so each small echo leaves at once instead of
     * waiting for Nagle's algorithm to gather more. */
    if (netx_set_nonblocking(fd, 1) != 0 || netx_set_nodelay(fd, 1) != 0) {
        return -1;
    }
    size_t k = s->nclients;
    s->pfds[FIRST_CLIENT + k] = (struct pollfd){.fd = fd, .events = POLLIN, .revents = 0};
    s->clients[k] = (struct client){.out = NULL, .last_ms = s->now, .since_ms = s->now};
    s->nclients++;
    return 0;
}

/*
 * Close client k and remove it by moving the last client into its slot, in
 * both arrays: O(1), and the arrays stay dense (no holes for poll() to skip
 * over). The caller must remember that slot k now holds a different client -
 * see serve_clients().
 */
static void drop_client(struct server *s, size_t k)
{
    size_t last = s->nclients - 1;

    netx_close(s->pfds[FIRST_CLIENT + k].fd);
    free(s->clients[k].out);
    if (k != last) {
        s->pfds[FIRST_CLIENT + k] = s->pfds[FIRST_CLIENT + last];
        s->clients[k] = s->clients[last];
    }
    s->nclients = last;
}

/* Say what we wait for on client k, from its state: POLLIN while it may
 * still send and its buffer has room, POLLOUT while output is pending. */
static void set_events(struct server *s, size_t k)
{
    const struct client *c = &s->clients[k];
    size_t pending = c->len - c->off;
    short events = 0;

    if (!c->eof && pending < s->out_cap) {
        events |= POLLIN;
    }
    if (pending > 0) {
        events |= POLLOUT;
    }
    s->pfds[FIRST_CLIENT + k].events = events;
}

static void warn_oom(struct server *s)
{
    if (!s->oom_warned) {
        netx_log("%s: out of memory for an output buffer; closing such clients", prog);
        s->oom_warned = 1;
    }
}

/* Make c->out hold at least want bytes (want <= out_cap), keeping what is
 * pending and moving it to the front. */
static int reserve_out(struct server *s, struct client *c, size_t want)
{
    size_t pending = c->len - c->off;

    if (c->off > 0) {
        memmove(c->out, c->out + c->off, pending);
        c->off = 0;
        c->len = pending;
    }
    if (c->size >= want) {
        return 0;
    }
    size_t size = c->size > 0 ? c->size : OUT_FIRST;
    while (size < want) {
        size *= 2;
    }
    if (size > s->out_cap) {
        size = s->out_cap;
    }
    unsigned char *p = realloc(c->out, size);
    if (p == NULL) {
        warn_oom(s);
        return -1;
    }
    c->out = p;
    c->size = size;
    return 0;
}

/* ------------------------------------------------------------------------
 * Workflow step 4, event-driven: read what has arrived, send what the socket takes
 * ------------------------------------------------------------------------ */

/* Send as much pending output as the socket takes now. */
static int flush_client(struct server *s, size_t k)
{
    struct client *c = &s->clients[k];
    int fd = s->pfds[FIRST_CLIENT + k].fd;

    ssize_t n = netx_send(fd, c->out + c->off, c->len - c->off);
    if (n < 0) {
        /* EAGAIN: its send buffer is full after all; wait for POLLOUT.
         * Anything else (EPIPE, ECONNRESET) ends this client only. */
        return errno == EAGAIN || errno == EWOULDBLOCK ? KEEP : DROP;
    }
    c->off += (size_t)n;
    c->last_ms = s->now;
    if (c->off == c->len) {
        /* All sent: give the buffer back, so an idle client costs only its
         * struct. */
        free(c->out);
        c->out = NULL;
        c->off = c->len = c->size = 0;
        if (c->eof) {
            return DROP; /* it said goodbye and has every byte back */
        }
    }
    return KEEP;
}

/*
 * Read once from client k and echo. When nothing is pending we read into the
 * buffer shared by all clients and send straight from it: an echo the socket
 * takes whole (the usual case) then costs one recv, one send and no
 * allocation. Whatever the socket does not take is copied into the client's
 * own buffer. When output is already pending, new bytes go behind it in the
 * client's buffer, so the echo keeps its order.
 */
static int read_client(struct server *s, size_t k)
{
    struct client *c = &s->clients[k];
    int fd = s->pfds[FIRST_CLIENT + k].fd;
    ssize_t n;

    if (c->out == NULL) {
        n = netx_recv(fd, s->scratch, s->scratch_size);
    } else {
        size_t pending = c->len - c->off;
        size_t want = pending + READ_CHUNK < s->out_cap ? pending + READ_CHUNK : s->out_cap;
        if (reserve_out(s, c, want) != 0) {
            return DROP;
        }
        n = netx_recv(fd, c->out + c->len, c->size - c->len);
    }
    if (n < 0) {
        /* EAGAIN: nothing after all. ECONNRESET and the like: drop it. */
        return errno == EAGAIN || errno == EWOULDBLOCK ? KEEP : DROP;
    }
    c->last_ms = s->now;
    if (n == 0) {
        /* End of stream: it has finished sending. Finish sending it its
         * echo first, if any is still pending, then close. */
        c->eof = 1;
        return c->out == NULL ? DROP : KEEP;
    }
    if (c->out != NULL) {
        c->len += (size_t)n;
        return KEEP; /* sent when POLLOUT says the socket has room */
    }
    ssize_t sent = netx_send(fd, s->scratch, (size_t)n);
    if (sent < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK) {
            return DROP;
        }
        sent = 0;
    }
    if (sent < n) {
        size_t rest = (size_t)(n - sent);
        if (reserve_out(s, c, rest) != 0) {
            return DROP; /* we could not keep the bytes: do not lie about it */
        }
        memcpy(c->out, s->scratch + sent, rest);
        c->off = 0;
        c->len = rest;
    }
    return KEEP;
}

/* Handle what poll() reported for client k. */
static int serve_client(struct server *s, size_t k)
{
    short revents = s->pfds[FIRST_CLIENT + k].revents;
    short events = s->pfds[FIRST_CLIENT + k].events;

    if (revents & (POLLERR | POLLNVAL)) {
        return DROP; /* the connection failed (reset, unreachable...) */
    }
    /* POLLHUP (the peer is gone) counts as readable and writable: the next
     * recv or send reports exactly what happened. */
    if ((events & POLLIN) && (revents & (POLLIN | POLLHUP))) {
        if (read_client(s, k) == DROP) {
            return DROP;
        }
    }
    const struct client *c = &s->clients[k];
    if (c->out != NULL && (revents & (POLLOUT | POLLHUP))) {
        if (flush_client(s, k) == DROP) {
            return DROP;
        }
    }
    set_events(s, k);
    return KEEP;
}

/*
 * Serve every client that poll() marked ready. Two classic bugs live here:
 *
 *  - Reading one entry past the end of the array. The loop bound is the
 *    live count s->nclients, re-read on every turn, never a copy taken
 *    before the loop: after a removal the array is one shorter, and the
 *    vacated last slot must not be looked at again.
 *  - Skipping a client after a removal. drop_client() moves the last client
 *    into slot k. That client has not been looked at yet in this pass (we
 *    walk upwards and it came from the top), so we stay at k and serve it
 *    next, instead of moving on with k++ as a plain for loop would. Its
 *    revents came along with it, since the whole struct pollfd is moved.
 *
 * ready is what poll() returned, less the fixed slots already handled; once
 * every ready client has been served, the rest of the array can be skipped.
 */
static void serve_clients(struct server *s, int ready)
{
    size_t k = 0;
    while (k < s->nclients && ready > 0) {
        if (s->pfds[FIRST_CLIENT + k].revents == 0) {
            k++;
            continue;
        }
        ready--;
        if (serve_client(s, k) == DROP) {
            drop_client(s, k);
            continue; /* slot k now holds the former last client */
        }
        k++;
    }
}

/* 1 if -t or -d is set: then the sweep below must run. */
static int has_time_limits(const struct server *s)
{
    return s->idle_ms > 0 || s->deadline_ms > 0;
}

/*
 * Close clients silent for longer than -t, and clients connected for longer
 * than -d whatever they do: a client that sends one byte a second is never
 * idle, so only the deadline stops it. (Same loop shape as serve_clients(),
 * for the same reasons.)
 */
static void sweep_expired(struct server *s)
{
    size_t k = 0;
    while (k < s->nclients) {
        const struct client *c = &s->clients[k];
        int idle = s->idle_ms > 0 && s->now - c->last_ms >= s->idle_ms;
        int overtime = s->deadline_ms > 0 && s->now - c->since_ms >= s->deadline_ms;
        if (idle || overtime) {
            drop_client(s, k);
            continue;
        }
        k++;
    }
}

/* ------------------------------------------------------------------------
 * Workflow step 3, event-driven: accept while connections are waiting
 * ------------------------------------------------------------------------ */

/* More clients than -n: accept and close at once, so they learn it now
 * instead of hanging in the listen queue. The message is best effort: a new
 * socket's send buffer is empty, so it fits, and we must not wait here. */
static void refuse(int fd)
{
    static const char busy[] = "server busy\n";
    if (netx_set_nonblocking(fd, 1) == 0) {
        (void)netx_send(fd, busy, sizeof busy - 1);
    }
    /* Our FIN right behind the message: if the client had sent something we
     * will never read, close() answers with a reset, and the FIN already on
     * its way lets the client read "server busy" and then the end of the
     * stream rather than only "connection reset". */
    netx_shutdown(fd, SHUT_WR);
    netx_close(fd);
}

/*
 * The listener is readable: take the waiting connections, until accept says
 * EAGAIN (none left) or ACCEPT_BATCH of them. Returns 0, or -1 if the
 * listener itself is broken.
 */
static int accept_clients(struct server *s, int listener)
{
    for (int i = 0; i < ACCEPT_BATCH; i++) {
        int fd = netx_accept(listener, NULL);
        if (fd < 0) {
            int err = errno;
            if (err == EAGAIN || err == EWOULDBLOCK) {
                return 0; /* the queue is empty */
            }
            if (err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM) {
                /* Out of descriptors (or memory). The connection stays
                 * queued, so the listener stays readable: polling it again
                 * would wake us at once, forever - a busy spin. Stop
                 * watching it for a while instead; closing clients frees
                 * descriptors meanwhile. */
                if (!s->fd_warned) {
                    netx_log("%s: %s; pausing accepts for %d ms (reported once)", prog,
                             netx_last_error(), FD_PAUSE_MS);
                    s->fd_warned = 1;
                }
                s->accepts_paused = 1;
                s->paused_until = s->now + FD_PAUSE_MS;
                s->pfds[LISTEN_SLOT].events = 0;
                return 0;
            }
            if (err == EBADF || err == EINVAL || err == ENOTSOCK || err == EFAULT) {
                netx_log("%s: %s", prog, netx_last_error());
                return -1;
            }
            /* Linux passes some network errors of the new connection to
             * accept (EPROTO, ENETDOWN, EHOSTUNREACH...): that client is
             * lost, the listener is fine. Carry on. */
            continue;
        }
        if (s->nclients >= s->max_clients) {
            refuse(fd);
        } else if (add_client(s, fd) != 0) {
            netx_close(fd);
        }
    }
    return 0;
}

/* ------------------------------------------------------------------------
 * The event loop
 * ------------------------------------------------------------------------ */

/* How long poll() may wait: for ever (-1), unless the sweep for -t and -d,
 * the end of an accept pause or the end of the grace period is due sooner. */
static int poll_timeout(const struct server *s)
{
    long long wait = -1;
    if (has_time_limits(s)) {
        wait = s->next_sweep - s->now;
    }
    if (s->accepts_paused) {
        long long left = s->paused_until - s->now;
        if (wait == -1 || left < wait) {
            wait = left;
        }
    }
    if (s->drain_until > 0) {
        long long left = s->drain_until - s->now;
        if (wait == -1 || left < wait) {
            wait = left;
        }
    }
    if (wait == -1) {
        return -1;
    }
    if (wait < 0) {
        return 0; /* already due */
    }
    return wait > INT_MAX ? INT_MAX : (int)wait;
}

/*
 * The first stop signal: stop accepting (close the listener, so new clients
 * are refused by the system rather than left waiting), and let the clients
 * we have finish. Returns 1 to carry on draining, 0 to stop now (no
 * clients, or no grace period).
 */
static int start_drain(struct server *s, int listener)
{
    netx_close(listener);
    s->pfds[LISTEN_SLOT].fd = -1; /* poll() skips a negative descriptor */
    if (s->nclients == 0 || s->grace_ms == 0 || netx_stop_drain((int)s->grace_ms) != 0) {
        return 0;
    }
    /* From now on the stop descriptor to watch is the one a second signal
     * makes readable. */
    s->pfds[STOP_SLOT].fd = netx_stop_fd();
    s->drain_until = s->now + s->grace_ms;
    netx_log("%s: stopping: letting %zu clients finish for up to %lld s "
             "(signal again to stop now)",
             prog, s->nclients, s->grace_ms / 1000);
    return 1;
}

/* Run until a stop is asked for (0) or something is badly wrong (1). The
 * listener is closed here when a stop starts the drain. */
static int run(struct server *s, int listener)
{
    for (;;) {
        int ready = poll(s->pfds, (nfds_t)(FIRST_CLIENT + s->nclients), poll_timeout(s));
        if (ready < 0) {
            if (errno == EINTR) {
                continue; /* a signal: the stop descriptor now says if it was ours */
            }
            netx_log("%s: poll: %s", prog, strerror(errno));
            return 1;
        }
        s->now = now_ms();

        if (s->pfds[STOP_SLOT].revents != 0) {
            if (s->drain_until > 0 || !start_drain(s, listener)) {
                return 0; /* a second signal, or nothing to finish */
            }
            continue;
        }
        if (s->drain_until > 0 && (s->nclients == 0 || s->now >= s->drain_until)) {
            return 0; /* every client finished, or the grace period is over */
        }
        short listen_revents = s->pfds[LISTEN_SLOT].revents;
        if (listen_revents != 0) {
            ready--;
        }
        /* Clients first, then new connections: accepting appends to the
         * arrays (and may move them with realloc), which must not happen
         * in the middle of the pass over them. */
        serve_clients(s, ready);
        if (listen_revents & POLLIN) {
            if (accept_clients(s, listener) != 0) {
                return 1;
            }
        }
        if (s->accepts_paused && s->now >= s->paused_until) {
            s->accepts_paused = 0;
            s->pfds[LISTEN_SLOT].events = POLLIN; /* try accepting again */
        }
        if (has_time_limits(s) && s->now >= s->next_sweep) {
            /* Once a second, so a client is closed at most a second after
             * its time is up, and a busy server does not walk its whole
             * table on every wakeup. */
            sweep_expired(s);
            s->next_sweep = s->now + 1000;
        }
        if (s->drain_until > 0 && s->nclients == 0) {
            return 0; /* the last client finished */
        }
    }
}

int main(int argc, char **argv)
{
    const char *host = "localhost";
    uint16_t port = 12345;
    size_t max_clients = 10000;
    int asked_clients = 0; /* -n given */
    size_t out_cap = 65536;
    unsigned long idle_s = 0;
    unsigned long deadline_s = 0;
    unsigned long grace_s = 5;
    int opt;

    /* First of all: descriptors 0, 1 and 2 must be open, or our sockets
     * would get those numbers and printf() would write into them. */
    if (netx_stdio_reserve() != 0) {
        return 1;
    }
    opterr = 0; /* we print our own messages */
    while ((opt = getopt(argc, argv, ":hH:p:n:b:t:d:g:")) != -1) {
        switch (opt) {
        case 'h':
            usage(stdout);
            return 0;
        case 'H':
            host = optarg;
            check_listen_host(host);
            break;
        case 'p':
            if (netx_parse_port(optarg, &port) != 0) {
                bad_usage("%s", netx_last_error());
            }
            break;
        case 'n':
            max_clients = parse_number(opt, optarg, 1, MAX_CLIENTS_LIMIT);
            asked_clients = 1;
            break;
        case 'b':
            out_cap = parse_number(opt, optarg, 1, OUT_CAP_LIMIT);
            break;
        case 't':
            idle_s = parse_number(opt, optarg, 0, IDLE_LIMIT);
            break;
        case 'd':
            deadline_s = parse_number(opt, optarg, 0, DEADLINE_LIMIT);
            break;
        case 'g':
            grace_s = parse_number(opt, optarg, 0, GRACE_LIMIT);
            break;
        case ':':
            bad_usage("option -%c needs a value", optopt);
            break;
        default:
            bad_usage("unknown option -%c", optopt);
        }
    }
    if (optind < argc) {
        bad_usage("unexpected argument \"%s\"", argv[optind]);
    }
    /* The two lines that make a libnetx program stoppable; this one waits in
     * its own poll(), so it watches netx_stop_fd() there. */
    if (netx_stop_on(SIGINT) != 0 || netx_stop_on(SIGTERM) != 0) {
        fprintf(stderr, "%s: %s\n", prog, netx_last_error());
        return 1;
    }
    max_clients = fit_fd_limit(max_clients, asked_clients);

    struct server s;
    memset(&s, 0, sizeof s);
    s.max_clients = max_clients;
    s.out_cap = out_cap;
    s.idle_ms = (long long)idle_s * 1000;
    s.deadline_ms = (long long)deadline_s * 1000;
    s.grace_ms = (long long)grace_s * 1000;
    s.scratch_size = out_cap < READ_CHUNK ? out_cap : READ_CHUNK;
    s.scratch = malloc(s.scratch_size);
    s.room = max_clients < 64 ? max_clients : 64;
    s.pfds = malloc((FIRST_CLIENT + s.room) * sizeof *s.pfds);
    s.clients = malloc(s.room * sizeof *s.clients);
    if (s.scratch == NULL || s.pfds == NULL || s.clients == NULL) {
        fprintf(stderr, "%s: out of memory\n", prog);
        free(s.scratch);
        free(s.pfds);
        free(s.clients);
        return 1;
    }

    /* Workflow steps 1 and 2: socket, bind, listen - with the system's longest
     * queue (backlog 0), since thousands of clients may knock at once. */
    int listener = netx_tcp_listen(host, port, 0);
    if (listener < 0 || netx_set_nonblocking(listener, 1) != 0) {
        fprintf(stderr, "%s: %s\n", prog, netx_last_error());
        if (listener >= 0) {
            netx_close(listener);
        }
        free(s.scratch);
        free(s.pfds);
        free(s.clients);
        return 1;
    }
    s.pfds[STOP_SLOT] = (struct pollfd){.fd = netx_stop_fd(), .events = POLLIN, .revents = 0};
    s.pfds[LISTEN_SLOT] = (struct pollfd){.fd = listener, .events = POLLIN, .revents = 0};
    s.now = now_ms();
    s.next_sweep = s.now + 1000;

    netx_addr local;
    char text[NETX_ADDRSTRLEN];
    netx_local_addr(listener, &local);
    netx_addr_format(&local, text, sizeof text);
    printf("listening on %s\n", text);
    fflush(stdout);

    int status = run(&s, listener);

    /* Workflow step 5: close every connection, then the listener; free everything. */
    while (s.nclients > 0) {
        drop_client(&s, s.nclients - 1);
    }
    if (s.pfds[LISTEN_SLOT].fd >= 0) {
        netx_close(listener); /* not closed yet by a drain */
    }
    free(s.scratch);
    free(s.pfds);
    free(s.clients);
    netx_log_flush(); /* lines netx_log() held back, counted */
    return status;
}
