/*
 * event_server.c - the article's architecture 4, at scale: an event-driven
 * echo server for tens of thousands of connections in one thread.
 *
 * poll_server shows how readiness works underneath: one poll() over every
 * socket. This is the next step, and the shape of every real event-driven
 * server (nginx, redis, Node.js): the same echo, the same flags, built on
 * what the library gives for it.
 *
 *   netx_poller   which sockets are ready (epoll on Linux): an idle client
 *                 costs nothing per wake-up, so 10,000 idle clients do not
 *                 slow down the 50 busy ones.
 *   netx_writer   each client's output: what the socket does not take now
 *                 is kept, in order, up to a cap (-b). We read from a client
 *                 no more than its writer has room for - backpressure: a
 *                 client that never reads its echoes costs at most the cap,
 *                 and never delays anyone else.
 *   netx_accept_nonblocking   a new client's socket, non-blocking from the
 *                 start, in one system call.
 *
 *   $ ./event_server -p 0                  $ ./echo_client -p 41234 hi
 *   listening on 127.0.0.1:41234           hi
 *
 * Time limits without a cost per idle client: -t closes a client silent
 * for that long, -d one connected for that long whatever it does (the
 * "slowloris" defence). Every client has the same limits, so the client
 * whose time runs out first is always the one that was active longest ago
 * (or accepted first). Two lists kept in that order - one by age, which
 * holds every client, and one by last activity, where a client moves to the
 * end whenever it sends or takes bytes - give the next expiry in O(1),
 * however many clients there are. No sweep over every client.
 *
 * Ctrl-C (SIGINT) or SIGTERM: stop accepting, let every client finish what
 * it asked for - until it ends its side and has its whole echo - for at
 * most -g seconds; a second signal stops at once.
 *
 * Run it with NETX_TRACE=1 to watch every wait, accept, recv and send, and
 * with NETX_POLLER=poll to run it on poll(2) instead of epoll.
 */
#include <errno.h>
#include <netx.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

static const char *prog = "event_server";

/* Descriptors we need besides the clients: stdin/out/err, the listener, the
 * poller's own, the stop's pipes, one to refuse a client, and slack. */
#define RESERVED_FDS 16

/* Events taken from each netx_poller_wait(). */
#define MAX_EVENTS 256

/* At most this many accepts each time the listener is readable, so that a
 * flood of new connections cannot starve the clients we have. */
#define ACCEPT_BATCH 64

/* How long to stop accepting after running out of descriptors. */
#define FD_PAUSE_MS 100

/* One recv reads at most this much (the shared buffer's size). */
#define READ_CHUNK 65536

#define MAX_CLIENTS_LIMIT 1000000UL
#define OUT_CAP_LIMIT     (1UL << 30)
#define IDLE_LIMIT        86400UL
#define DEADLINE_LIMIT    86400UL
#define GRACE_LIMIT       3600UL

/*
 * One client. Allocated when it connects, freed when it goes: with its
 * writer's buffer freed whenever nothing is pending, an idle client costs
 * this struct and the poller's entry for its descriptor.
 */
struct client {
    int fd;
    int eof;                /* it has ended its side (recv returned 0) */
    netx_writer out;        /* its echo, what the socket has not taken */
    long long active_ms;    /* the last time it sent or took bytes */
    long long since_ms;     /* when it was accepted */
    struct client *link[2][2]; /* [list][0]: previous, [list][1]: next */
};

/* The two lists a client is on (see the banner), by their index in link. */
enum { BY_AGE = 0, BY_IDLE = 1 };

/* A list of clients in the order their time runs out: oldest first. */
struct list {
    struct client *first;
    struct client *last;
};

struct server {
    netx_poller *poller;
    int listener;        /* -1 once closed for the stop */
    size_t nclients;     /* clients connected now */
    size_t max_clients;  /* -n */
    size_t out_cap;      /* -b */
    long long idle_ms;   /* -t in milliseconds; 0: none */
    long long life_ms;   /* -d in milliseconds; 0: none */
    long long grace_ms;  /* -g in milliseconds */
    struct list lists[2]; /* [BY_AGE]: every client, oldest first;
                             [BY_IDLE]: with -t, least recently active first */
    unsigned char scratch[READ_CHUNK]; /* one read buffer shared by all */
    long long now;                     /* the clock, read once per wake-up */
    long long accepts_paused_until;    /* 0, or when to accept again */
    int fd_warned;                     /* "out of descriptors" was reported */
    int draining;                      /* a stop signal came */
};

static void usage(FILE *out)
{
    fprintf(out,
            "usage: %s [-H HOST] [-p PORT] [-n MAX] [-b BYTES] [-t SECONDS]\n"
            "       [-d SECONDS] [-g SECONDS]\n"
            "  Echo server for tens of thousands of clients in one thread, on\n"
            "  netx_poller (epoll; NETX_POLLER=poll for poll).\n"
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
 * them (often 1024). Raise our soft limit up to the hard one if -n needs it;
 * return how many clients fit, and say so if -n asked for more.
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
    if (asked) {
        fprintf(stderr,
                "%s: can open only %llu descriptors (RLIMIT_NOFILE, hard limit %llu), "
                "not the %llu that %zu clients need; serving at most %zu clients\n",
                prog, (unsigned long long)rl.rlim_cur, (unsigned long long)rl.rlim_max,
                (unsigned long long)need, max_clients, fit);
    }
    return fit;
}

/* ------------------------------------------------------------------------
 * The two lists, in the order the clients' time runs out
 * ------------------------------------------------------------------------ */

/* Take c out of list `which`: O(1), it knows its neighbours. */
static void list_remove(struct server *s, int which, struct client *c)
{
    struct list *l = &s->lists[which];
    struct client *prev = c->link[which][0];
    struct client *next = c->link[which][1];
    if (prev != NULL) {
        prev->link[which][1] = next;
    } else {
        l->first = next;
    }
    if (next != NULL) {
        next->link[which][0] = prev;
    } else {
        l->last = prev;
    }
    c->link[which][0] = c->link[which][1] = NULL;
}

/* Put c at the end of list `which`: its time runs out last. */
static void list_append(struct server *s, int which, struct client *c)
{
    struct list *l = &s->lists[which];
    c->link[which][0] = l->last;
    c->link[which][1] = NULL;
    if (l->last != NULL) {
        l->last->link[which][1] = c;
    } else {
        l->first = c;
    }
    l->last = c;
}

/* c sent or took bytes: it becomes the last whose idle time runs out. */
static void touch(struct server *s, struct client *c)
{
    c->active_ms = s->now;
    if (s->idle_ms > 0 && s->lists[BY_IDLE].last != c) {
        list_remove(s, BY_IDLE, c);
        list_append(s, BY_IDLE, c);
    }
}

/* ------------------------------------------------------------------------
 * Clients
 * ------------------------------------------------------------------------ */

/* Say what we wait for on c: readable while it may still send and its
 * writer has room (backpressure), writable while output is pending. Costs
 * no system call when nothing changed. */
static void set_events(struct server *s, struct client *c)
{
    unsigned events = 0;
    if (!c->eof && netx_writer_room(&c->out) > 0) {
        events |= NETX_READABLE;
    }
    if (netx_writer_pending(&c->out) > 0) {
        events |= NETX_WRITABLE;
    }
    netx_poller_mod(s->poller, c->fd, events, c);
}

/* Workflow step 5 for one client: out of the poller (before close), out of the
 * lists, closed, freed. */
static void drop_client(struct server *s, struct client *c)
{
    netx_poller_del(s->poller, c->fd);
    list_remove(s, BY_AGE, c);
    if (s->idle_ms > 0) {
        list_remove(s, BY_IDLE, c);
    }
    netx_close(c->fd);
    netx_writer_free(&c->out);
    free(c);
    s->nclients--;
}

/*
 * Readable: one recv - no more than the writer has room for - and send it
 * back through the writer, which sends at once what the socket takes and
 * keeps the rest. Returns 0 to keep the client, -1 to drop it.
 */
static int on_readable(struct server *s, struct client *c)
{
    size_t room = netx_writer_room(&c->out);
    ssize_t n = netx_recv(c->fd, s->scratch, room < READ_CHUNK ? room : READ_CHUNK);
    if (n < 0) {
        /* EAGAIN: nothing after all. ECONNRESET and the like: drop it. */
        return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
    }
    touch(s, c);
    if (n == 0) {
        c->eof = 1; /* it has finished sending: finish its echo, then close */
        return netx_writer_pending(&c->out) > 0 ? 0 : -1;
    }
    return netx_writer_send(&c->out, s->scratch, (size_t)n);
}

/* Writable: send what is pending. */
static int on_writable(struct server *s, struct client *c)
{
    size_t before = netx_writer_pending(&c->out);
    if (netx_writer_flush(&c->out) != 0) {
        return -1; /* EPIPE, ECONNRESET: it is gone */
    }
    if (netx_writer_pending(&c->out) < before) {
        touch(s, c);
    }
    if (c->eof && netx_writer_pending(&c->out) == 0) {
        return -1; /* it said goodbye and has every byte back */
    }
    return 0;
}

/* Handle one event of client c. */
static void serve(struct server *s, struct client *c, unsigned events)
{
    /* A hang-up or error comes with READABLE and WRITABLE: the recv or
     * send below says exactly what happened. */
    int rc = 0;
    if (events & NETX_READABLE) {
        rc = on_readable(s, c);
    }
    if (rc == 0 && (events & NETX_WRITABLE)) {
        rc = on_writable(s, c);
    }
    if (rc != 0) {
        drop_client(s, c);
    } else {
        set_events(s, c);
    }
}

/* Close clients whose time is up: the first of each list, while expired. */
static void expire(struct server *s)
{
    while (s->idle_ms > 0 && s->lists[BY_IDLE].first != NULL &&
           s->now - s->lists[BY_IDLE].first->active_ms >= s->idle_ms) {
        drop_client(s, s->lists[BY_IDLE].first);
    }
    while (s->life_ms > 0 && s->lists[BY_AGE].first != NULL &&
           s->now - s->lists[BY_AGE].first->since_ms >= s->life_ms) {
        drop_client(s, s->lists[BY_AGE].first);
    }
}

/* How long the poller may wait: until the next expiry, the end of an accept
 * pause, or for ever (-1). */
static int wait_timeout(const struct server *s)
{
    long long due = -1;
    if (s->idle_ms > 0 && s->lists[BY_IDLE].first != NULL) {
        due = s->lists[BY_IDLE].first->active_ms + s->idle_ms;
    }
    if (s->life_ms > 0 && s->lists[BY_AGE].first != NULL) {
        long long d = s->lists[BY_AGE].first->since_ms + s->life_ms;
        due = due < 0 || d < due ? d : due;
    }
    if (s->accepts_paused_until > 0) {
        long long d = s->accepts_paused_until;
        due = due < 0 || d < due ? d : due;
    }
    if (due < 0) {
        return -1;
    }
    return due <= s->now ? 0 : (int)(due - s->now);
}

/* ------------------------------------------------------------------------
 * Accepting
 * ------------------------------------------------------------------------ */

/* More clients than -n: accept and close at once, so they learn it now. */
static void refuse(int fd)
{
    static const char busy[] = "server busy\n";
    (void)netx_send(fd, busy, sizeof busy - 1); /* a new socket has room */
    netx_shutdown(fd, SHUT_WR);
    netx_close(fd);
}

static int add_client(struct server *s, int fd)
{
    struct client *c = calloc(1, sizeof *c);
    if (c == NULL) {
        return -1;
    }
    c->fd = fd;
    c->active_ms = s->now;
    c->since_ms = s->now;
    netx_writer_init(&c->out, fd, s->out_cap);
    if (netx_poller_add(s->poller, fd, NETX_READABLE, c) != 0) {
        free(c);
        return -1;
    }
    list_append(s, BY_AGE, c);
    if (s->idle_ms > 0) {
        list_append(s, BY_IDLE, c);
    }
    s->nclients++;
    return 0;
}

/* The listener is readable: take the waiting connections, at most
 * ACCEPT_BATCH. Returns 0, or -1 if the listener itself is broken. */
static int accept_clients(struct server *s)
{
    for (int i = 0; i < ACCEPT_BATCH; i++) {
        int fd = netx_accept_nonblocking(s->listener, NULL);
        if (fd < 0) {
            int err = errno;
            if (err == EAGAIN || err == EWOULDBLOCK) {
                return 0; /* the queue is empty */
            }
            if (err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM) {
                /* Out of descriptors: the connection stays queued and the
                 * listener readable, so waiting on it again would wake us
                 * at once, for ever. Stop watching it for a while. */
                if (!s->fd_warned) {
                    netx_log("%s: %s; pausing accepts for %d ms (reported once)", prog,
                             netx_last_error(), FD_PAUSE_MS);
                    s->fd_warned = 1;
                }
                netx_poller_mod(s->poller, s->listener, 0, NULL);
                s->accepts_paused_until = s->now + FD_PAUSE_MS;
                return 0;
            }
            if (err == EBADF || err == EINVAL || err == ENOTSOCK || err == EFAULT) {
                netx_log("%s: %s", prog, netx_last_error());
                return -1;
            }
            continue; /* that connection failed before we took it */
        }
        /* Small echoes go out at once, not when Nagle's algorithm likes. */
        netx_set_nodelay(fd, 1);
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

/*
 * The first stop signal: close the listener (new clients are refused by the
 * system at once) and let the clients we have finish. Returns 1 to carry
 * on draining, 0 to stop now (no clients, or no grace period).
 */
static int start_drain(struct server *s)
{
    netx_poller_del(s->poller, s->listener);
    netx_close(s->listener);
    s->listener = -1;
    s->accepts_paused_until = 0;
    if (s->nclients == 0 || s->grace_ms == 0 || netx_stop_drain((int)s->grace_ms) != 0) {
        return 0;
    }
    s->draining = 1;
    netx_log("%s: stopping: letting %zu clients finish for up to %lld s "
             "(signal again to stop now)",
             prog, s->nclients, s->grace_ms / 1000);
    return 1;
}

/* Run until a stop (0) or something badly wrong (1). */
static int run(struct server *s)
{
    static netx_event events[MAX_EVENTS];

    for (;;) {
        int n = netx_poller_wait(s->poller, events, MAX_EVENTS, wait_timeout(s));
        s->now = now_ms();
        if (n < 0) {
            if (errno != ECANCELED) {
                netx_log("%s: %s", prog, netx_last_error());
                return 1;
            }
            /* The first signal starts the drain; the second, or the end of
             * the grace period, ends it. */
            if (s->draining || !start_drain(s)) {
                return 0;
            }
            continue;
        }
        for (int i = 0; i < n; i++) {
            if (events[i].events == 0) {
                continue; /* dropped: its client was closed in this batch */
            }
            if (events[i].fd == s->listener) {
                if (accept_clients(s) != 0) {
                    return 1;
                }
            } else {
                serve(s, events[i].data, events[i].events);
            }
        }
        if (s->accepts_paused_until > 0 && s->now >= s->accepts_paused_until) {
            s->accepts_paused_until = 0;
            netx_poller_mod(s->poller, s->listener, NETX_READABLE, NULL);
        }
        expire(s);
        if (s->draining && s->nclients == 0) {
            return 0; /* the last client finished */
        }
    }
}

int main(int argc, char **argv)
{
    const char *host = "localhost";
    uint16_t port = 12345;
    size_t max_clients = 10000;
    int asked_clients = 0;
    unsigned long out_cap = 65536;
    unsigned long idle_s = 0;
    unsigned long life_s = 0;
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
            life_s = parse_number(opt, optarg, 0, DEADLINE_LIMIT);
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
    /* The two lines that make a libnetx program stoppable: the poller's
     * wait then ends with ECANCELED. */
    if (netx_stop_on(SIGINT) != 0 || netx_stop_on(SIGTERM) != 0) {
        fprintf(stderr, "%s: %s\n", prog, netx_last_error());
        return 1;
    }

    static struct server s; /* its read buffer is large: not on the stack */
    s.max_clients = fit_fd_limit(max_clients, asked_clients);
    s.out_cap = out_cap;
    s.idle_ms = (long long)idle_s * 1000;
    s.life_ms = (long long)life_s * 1000;
    s.grace_ms = (long long)grace_s * 1000;
    s.now = now_ms();
    s.poller = netx_poller_new();
    if (s.poller == NULL) {
        fprintf(stderr, "%s: %s\n", prog, netx_last_error());
        return 1;
    }

    /* Workflow steps 1 and 2: socket, bind, listen - with the system's longest queue
     * (backlog 0), since thousands of clients may knock at once. The
     * listener is non-blocking, so accepting never waits. */
    s.listener = netx_tcp_listen(host, port, 0);
    if (s.listener < 0 || netx_set_nonblocking(s.listener, 1) != 0 ||
        netx_poller_add(s.poller, s.listener, NETX_READABLE, NULL) != 0) {
        fprintf(stderr, "%s: %s\n", prog, netx_last_error());
        if (s.listener >= 0) {
            netx_close(s.listener);
        }
        netx_poller_free(s.poller);
        return 1;
    }
    netx_addr local;
    char text[NETX_ADDRSTRLEN];
    netx_local_addr(s.listener, &local);
    netx_addr_format(&local, text, sizeof text);
    printf("listening on %s\n", text);
    fflush(stdout);

    int status = run(&s);

    /* Workflow step 5: close every client (the age list holds them all), then the
     * listener; free everything. */
    while (s.lists[BY_AGE].first != NULL) {
        drop_client(&s, s.lists[BY_AGE].first);
    }
    if (s.listener >= 0) {
        netx_poller_del(s.poller, s.listener);
        netx_close(s.listener);
    }
    netx_poller_free(s.poller);
    netx_log_flush();
    return status;
}
