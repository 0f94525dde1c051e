/*
 * tcp_proxy.c - the article's architecture 6: load balancing, "distributing
 * traffic among multiple servers and handling failovers transparently". A
 * layer-4 (TCP) load balancer: each client is connected to one of the
 * backend servers, and every byte is passed on both ways.
 *
 *   $ ./tcp_proxy -p 8000 -b 127.0.0.1:9001 -b 127.0.0.1:9002 --backup 127.0.0.1:9009
 *   listening on 127.0.0.1:8000
 *   tcp_proxy: backend 127.0.0.1:9002 DOWN after 3 failed checks: connect to 127.0.0.1:9002: Connection refused
 *
 * What it does, as HAProxy does it (mode tcp):
 *
 *  - Round robin over the backends that are up. A connect to a backend
 *    that fails (refused, or no answer within -c) is retried on the next one
 *    before any byte of the client's is passed on, so the client never sees
 *    a failover. When no backend is up, the backup (--backup); when nothing
 *    is up, the client is closed at once, and a line says why.
 *  - Health checks: every --check-ms milliseconds each backend gets a TCP
 *    connect (started without waiting, netx_connect_start(); its outcome
 *    read when the socket is writable, netx_connect_finish()). A backend
 *    goes DOWN after --fall failed checks in a row and UP after --rise good
 *    ones (3 and 2, as HAProxy's), so one lost check does not make it flap.
 *    A client's connect that fails counts as a failed check too (a passive
 *    check). Each change of state is one line on standard error.
 *  - Every byte passed on, both ways, through a netx_writer per direction,
 *    each capped (-B): we read from one side no more than the other side's
 *    writer has room for, so a slow side slows its peer instead of growing
 *    our memory. A side that ends its sending (shutdown(SHUT_WR), as nc -N
 *    does) has its end passed on to the other side, which may go on
 *    sending the other way.
 *  - An idle timeout (-t), a cap on connections (-n), and the graceful stop
 *    (-g): no new clients, and those under way finish.
 *
 * One thread, netx_poller: two sockets per client, and one per health
 * check in progress.
 */
#include <errno.h>
#include <netx.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *prog = "tcp_proxy";

#define MAX_BACKENDS  32
#define MAX_EVENTS    256
#define ACCEPT_BATCH  64
#define FD_PAUSE_MS   100
#define READ_CHUNK    65536

#define MAX_CONNS_LIMIT 100000UL
#define BUF_CAP_LIMIT   (1UL << 30)
#define SECONDS_LIMIT   86400UL
#define GRACE_LIMIT     3600UL

/* What a registration in the poller is: one of the two sides of a client's
 * connection, or a backend's health check. */
enum kind { CLIENT_SIDE, BACKEND_SIDE, CHECK };

struct side {
    enum kind kind;
    void *owner; /* the struct conn, or the struct backend */
};

struct backend {
    char name[NETX_ADDRSTRLEN]; /* "127.0.0.1:9002": as logged */
    netx_addr addr;
    int backup;        /* --backup: only when no other is up */
    int up;            /* its state */
    int good, bad;     /* checks in a row that went well, and badly */
    int check_fd;      /* a check in progress, or -1 */
    long long check_deadline;
    long long next_check;
    struct side side;
};

struct conn {
    int client_fd;
    int backend_fd;         /* -1 until a connect is started */
    int backend;            /* which one */
    unsigned tried;         /* the backends tried for this client (a bit each) */
    int connecting;         /* the connect to the backend is under way */
    long long connect_deadline;
    netx_writer to_client;  /* what the backend sent, not yet taken by the client */
    netx_writer to_backend; /* what the client sent, not yet taken by the backend */
    int client_ended;       /* the client has finished sending */
    int backend_ended;      /* the backend has finished sending */
    int backend_told;       /* its end passed on: shutdown(SHUT_WR) to the backend */
    int client_told;        /* and to the client */
    int client_hup;         /* the poller said its socket is closed both ways */
    int backend_hup;
    int client_watched;     /* its socket is in the poller now (see watch()) */
    int backend_watched;
    long long active_ms;
    char peer[NETX_ADDRSTRLEN];
    struct side sides[2];
    struct conn *link[2][2];
};

enum { BY_AGE = 0, BY_IDLE = 1 };

struct list {
    struct conn *first;
    struct conn *last;
};

struct proxy {
    netx_poller *poller;
    int listener;
    struct backend backends[MAX_BACKENDS];
    int nbackends;
    int next_rr;        /* round robin: where the next search starts */
    int check_ms;
    int connect_ms;     /* -c: how long a backend may take to answer */
    int rise, fall;
    size_t nconns;
    size_t max_conns;
    size_t buf_cap;
    long long idle_ms;
    long long grace_ms;
    struct list lists[2];
    unsigned char scratch[READ_CHUNK];
    long long now;
    long long accepts_paused_until;
    int fd_warned;
    int draining;
};

static void usage(FILE *out)
{
    fprintf(out,
            "usage: %s -b HOST:PORT [-b HOST:PORT ...] [--backup HOST:PORT]\n"
            "       [-H HOST] [-p PORT] [--check-ms MS] [--rise N] [--fall N] [-c MS]\n"
            "       [-n MAX] [-B BYTES] [-t SECONDS] [-g SECONDS]\n"
            "  A TCP load balancer: each client goes to the next backend that is up.\n"
            "  -b HOST:PORT       a backend (up to %d, round robin)\n"
            "  --backup HOST:PORT used only when no backend is up\n"
            "  -H HOST            address to listen on (default localhost; '' for every\n"
            "                     interface)\n"
            "  -p PORT            port to listen on, 0 for any free one (default 12345)\n"
            "  --check-ms MS      a health check of each backend this often, 10 to\n"
            "                     3600000 ms (default 2000)\n"
            "  --rise N           good checks in a row to be UP, 1 to 100 (default 2)\n"
            "  --fall N           failed checks in a row to be DOWN, 1 to 100 (default 3)\n"
            "  -c MS              a backend must answer a connect within this, 10 to\n"
            "                     600000 ms (default 1000)\n"
            "  -n MAX             most clients at once, 1 to 100000 (default 1000)\n"
            "  -B BYTES           most bytes held each way for a connection, 1 to\n"
            "                     1073741824 (default 65536)\n"
            "  -t SECONDS         close a connection idle for that long, 0 to 86400\n"
            "                     (default 0: never)\n"
            "  -g SECONDS         on SIGINT or SIGTERM, stop accepting and let the\n"
            "                     connections finish for at most this long, 0 to 3600\n"
            "                     (default 5); a second signal stops at once\n"
            "  -h                 show this help\n",
            prog, MAX_BACKENDS);
}

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

static unsigned long parse_number(const char *flag, const char *text, unsigned long lo,
                                  unsigned long hi)
{
    char *end = NULL;
    unsigned long value = 0;

    errno = 0;
    /* strtoul() would take "-1" (as a huge number) and " 5": digits only. */
    if (text[0] >= '0' && text[0] <= '9') {
        value = strtoul(text, &end, 10);
    }
    if (end == NULL || *end != '\0' || errno != 0 || value < lo || value > hi) {
        bad_usage("%s \"%s\": not a number from %lu to %lu", flag, text, lo, hi);
    }
    return value;
}

/* The value of a long option (the word after it): a missing one is said
 * as getopt() says it for a short option, not taken for an empty number. */
static const char *long_value(const char *flag, const char *value)
{
    if (value == NULL) {
        bad_usage("option %s needs a value", flag);
    }
    return value;
}

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* "HOST:PORT" (or "[::1]:PORT") into a backend: a numeric address as it
 * is, a name through the resolver (its first address). */
static void add_backend(struct proxy *p, const char *text, int backup)
{
    if (p->nbackends == MAX_BACKENDS) {
        bad_usage("more than %d backends", MAX_BACKENDS);
    }
    struct backend *b = &p->backends[p->nbackends];
    char host[256];
    const char *colon = strrchr(text, ':');
    uint16_t port;
    if (colon == NULL || colon == text || (size_t)(colon - text) >= sizeof host ||
        netx_parse_port(colon + 1, &port) != 0 || port == 0) {
        bad_usage("backend \"%s\": not HOST:PORT", text);
    }
    memcpy(host, text, (size_t)(colon - text));
    host[colon - text] = '\0';
    if (netx_addr_parse(text, &b->addr) != 0 && netx_resolve(host, port, &b->addr, 1) != 1) {
        fprintf(stderr, "%s: backend %s: %s\n", prog, text, netx_last_error());
        exit(1);
    }
    netx_addr_format(&b->addr, b->name, sizeof b->name);
    b->backup = backup;
    b->up = 1; /* until the checks say otherwise, as HAProxy starts */
    b->check_fd = -1;
    b->side = (struct side){.kind = CHECK, .owner = b};
    p->nbackends++;
}

/* ------------------------------------------------------------------------
 * Backends: state, checks, choice
 * ------------------------------------------------------------------------ */

/* A check (or a client's connect: a passive check) came back: count it, and
 * change the state after enough in a row, saying so in one line. */
static void check_result(struct proxy *p, struct backend *b, int ok, const char *why)
{
    if (ok) {
        b->bad = 0;
        b->good++;
        if (!b->up && b->good >= p->rise) {
            b->up = 1;
            netx_log_each("%s: backend %s UP after %d good checks", prog, b->name, b->good);
        }
    } else {
        b->good = 0;
        b->bad++;
        if (b->up && b->bad >= p->fall) {
            b->up = 0;
            netx_log_each("%s: backend %s DOWN after %d failed checks: %s", prog, b->name,
                          b->bad, why);
        }
    }
}

static void end_check(struct proxy *p, struct backend *b)
{
    netx_poller_del(p->poller, b->check_fd);
    netx_close(b->check_fd);
    b->check_fd = -1;
}

/* Start the checks that are due, and fail those that took too long. */
static void run_checks(struct proxy *p)
{
    for (int i = 0; i < p->nbackends; i++) {
        struct backend *b = &p->backends[i];
        if (b->check_fd >= 0 && p->now >= b->check_deadline) {
            end_check(p, b);
            check_result(p, b, 0, "no answer to a connect within -c");
        }
        if (b->check_fd >= 0 || p->now < b->next_check) {
            continue;
        }
        b->next_check = p->now + p->check_ms;
        int fd = netx_socket(b->addr.ss.ss_family, SOCK_STREAM);
        if (fd < 0) {
            continue; /* out of descriptors: try at the next interval */
        }
        int rc = netx_connect_start(fd, &b->addr);
        if (rc == 0) {
            netx_close(fd);
            check_result(p, b, 1, NULL);
        } else if (errno != EINPROGRESS) {
            char why[256];
            snprintf(why, sizeof why, "%s", netx_last_error());
            netx_close(fd);
            check_result(p, b, 0, why);
        } else if (netx_poller_add(p->poller, fd, NETX_WRITABLE, &b->side) != 0) {
            netx_close(fd);
        } else {
            b->check_fd = fd;
            b->check_deadline = p->now + p->connect_ms;
        }
    }
}

/* The check's socket is writable: its connect is over. */
static void check_done(struct proxy *p, struct backend *b)
{
    int rc = netx_connect_finish(b->check_fd, &b->addr);
    if (rc != 0 && errno == EINPROGRESS) {
        return; /* not yet */
    }
    char why[256];
    snprintf(why, sizeof why, "%s", rc != 0 ? netx_last_error() : "");
    end_check(p, b);
    check_result(p, b, rc == 0, why);
}

/* The backend for a new connection (or its next try): round robin over
 * those up and not tried yet; else an untried backup that is up; -1 when
 * nothing is left. */
static int choose(struct proxy *p, unsigned tried)
{
    for (int pass = 0; pass < 2; pass++) {
        for (int k = 0; k < p->nbackends; k++) {
            int i = (p->next_rr + k) % p->nbackends;
            const struct backend *b = &p->backends[i];
            if (b->up && b->backup == pass && (tried & (1u << i)) == 0) {
                if (pass == 0) {
                    p->next_rr = i + 1;
                }
                return i;
            }
        }
    }
    return -1;
}

/* ------------------------------------------------------------------------
 * Connections
 * ------------------------------------------------------------------------ */

static void list_remove(struct proxy *p, int which, struct conn *c)
{
    struct list *l = &p->lists[which];
    struct conn *prev = c->link[which][0];
    struct conn *next = c->link[which][1];
    if (prev != NULL) {
        prev->link[which][1] = next;
    } else if (l->first == c) {
        l->first = next;
    }
    if (next != NULL) {
        next->link[which][0] = prev;
    } else if (l->last == c) {
        l->last = prev;
    }
    c->link[which][0] = c->link[which][1] = NULL;
}

static void list_append(struct proxy *p, int which, struct conn *c)
{
    struct list *l = &p->lists[which];
    c->link[which][0] = l->last;
    c->link[which][1] = NULL;
    if (l->last != NULL) {
        l->last->link[which][1] = c;
    } else {
        l->first = c;
    }
    l->last = c;
}

static void touch(struct proxy *p, struct conn *c)
{
    c->active_ms = p->now;
    if (p->idle_ms > 0 && p->lists[BY_IDLE].last != c) {
        list_remove(p, BY_IDLE, c);
        list_append(p, BY_IDLE, c);
    }
}

static void close_conn(struct proxy *p, struct conn *c)
{
    if (c->client_watched) {
        netx_poller_del(p->poller, c->client_fd);
    }
    netx_close(c->client_fd);
    if (c->backend_watched) {
        netx_poller_del(p->poller, c->backend_fd);
    }
    if (c->backend_fd >= 0) {
        netx_close(c->backend_fd);
    }
    list_remove(p, BY_AGE, c);
    list_remove(p, BY_IDLE, c);
    netx_writer_free(&c->to_client);
    netx_writer_free(&c->to_backend);
    free(c);
    p->nconns--;
}

/*
 * Connect c to its next backend (none of its bytes has been passed on
 * yet). Returns 0 when a connect is under way or done, -1 when no backend
 * is left (the client is then closed with a line saying so).
 */
static int dial(struct proxy *p, struct conn *c)
{
    for (;;) {
        int i = choose(p, c->tried);
        if (i < 0) {
            netx_log("%s: no backend is up: closed client %s", prog, c->peer);
            return -1;
        }
        struct backend *b = &p->backends[i];
        c->tried |= 1u << i;
        c->backend = i;
        int fd = netx_socket(b->addr.ss.ss_family, SOCK_STREAM);
        if (fd < 0) {
            netx_log("%s: %s", prog, netx_last_error());
            return -1;
        }
        int rc = netx_connect_start(fd, &b->addr);
        if (rc != 0 && errno != EINPROGRESS) {
            char why[256];
            snprintf(why, sizeof why, "%s", netx_last_error());
            netx_close(fd);
            check_result(p, b, 0, why); /* a passive check */
            continue;                   /* the client sees nothing: next one */
        }
        if (netx_poller_add(p->poller, fd, NETX_WRITABLE, &c->sides[1]) != 0) {
            netx_close(fd);
            return -1;
        }
        netx_set_nodelay(fd, 1);
        c->backend_fd = fd;
        c->backend_watched = 1;
        c->connecting = 1;
        c->connect_deadline = p->now + p->connect_ms;
        netx_writer_init(&c->to_backend, fd, p->buf_cap);
        return 0;
    }
}

/* The connect under way failed (refused, or no answer in time): count it
 * against the backend, and try the next. */
static int redial(struct proxy *p, struct conn *c, const char *why)
{
    netx_poller_del(p->poller, c->backend_fd);
    netx_close(c->backend_fd);
    c->backend_fd = -1;
    c->backend_watched = 0;
    c->connecting = 0;
    check_result(p, &p->backends[c->backend], 0, why);
    return dial(p, c);
}

/*
 * Ask the poller for `events` on one side's socket. A socket closed both
 * ways (its peer sent its end, and we ours) is reported hung up
 * (NETX_HANGUP) at every wait, whatever we ask for - even nothing. When we
 * want nothing from it yet (the other direction still has bytes on their
 * way: a backend that answered and closed, its answer going to a client
 * that reads slowly), each wait would return at once and the loop would
 * spin, a whole CPU, until the client caught up. So a hung-up socket we
 * want nothing from leaves the poller, and comes back when we want
 * something again. A socket still open stays in with nothing asked: a
 * reset on it (NETX_ERROR) must still end the connection at once.
 * Returns 0, or -1 when the poller failed.
 */
static int watch(struct proxy *p, int fd, unsigned events, struct side *s, int hung_up,
                 int *watched)
{
    if (events == 0 && hung_up) {
        if (*watched) {
            netx_poller_del(p->poller, fd);
            *watched = 0;
        }
        return 0;
    }
    if (!*watched) {
        if (netx_poller_add(p->poller, fd, events, s) != 0) {
            return -1;
        }
        *watched = 1;
        return 0;
    }
    return netx_poller_mod(p->poller, fd, events, s);
}

/* What each side waits for now. Returns 0, or -1 when the poller failed
 * (the connection must then be closed: nothing would wake it again). */
static int set_events(struct proxy *p, struct conn *c)
{
    unsigned client = 0;
    unsigned backend = 0;
    if (c->connecting) {
        backend = NETX_WRITABLE; /* the connect's outcome */
    } else {
        /* Read a side only while the other side's writer has room:
         * backpressure, both ways. */
        if (!c->client_ended && netx_writer_room(&c->to_backend) > 0) {
            client |= NETX_READABLE;
        }
        if (!c->backend_ended && netx_writer_room(&c->to_client) > 0) {
            backend |= NETX_READABLE;
        }
        if (netx_writer_pending(&c->to_backend) > 0) {
            backend |= NETX_WRITABLE;
        }
    }
    if (netx_writer_pending(&c->to_client) > 0) {
        client |= NETX_WRITABLE;
    }
    if (watch(p, c->client_fd, client, &c->sides[0], c->client_hup, &c->client_watched) != 0) {
        return -1;
    }
    return watch(p, c->backend_fd, backend, &c->sides[1], c->backend_hup, &c->backend_watched);
}

/* Pass what one side sent to the other: one read, no more than the other
 * writer's room. Returns 0, or -1 when the connection failed. */
static int pass_on(struct proxy *p, struct conn *c, int from_fd, netx_writer *to, int *ended)
{
    size_t room = netx_writer_room(to);
    if (*ended || room == 0) {
        return 0;
    }
    ssize_t n = netx_recv(from_fd, p->scratch, room < READ_CHUNK ? room : READ_CHUNK);
    if (n < 0) {
        return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
    }
    if (n == 0) {
        *ended = 1; /* its end goes on once what it sent has */
        return 0;
    }
    touch(p, c);
    return netx_writer_send(to, p->scratch, (size_t)n);
}

/* Pass on each side's end of sending, once what it sent before has gone:
 * half-close through the proxy. Returns 1 when both directions are over. */
static int pass_ends(struct conn *c)
{
    /* Both sides have ended and every byte has gone on: the connection is
     * over, and the close() that follows sends each side its end (a FIN)
     * itself, so a shutdown() first would be a system call for nothing.
     * Most connections end this way: the client ends, its end goes on to
     * the backend (below), and the backend's own end closes both. */
    if (c->client_ended && c->backend_ended && netx_writer_pending(&c->to_backend) == 0 &&
        netx_writer_pending(&c->to_client) == 0) {
        return 1;
    }
    if (c->client_ended && !c->backend_told && netx_writer_pending(&c->to_backend) == 0) {
        netx_shutdown(c->backend_fd, SHUT_WR);
        c->backend_told = 1;
    }
    if (c->backend_ended && !c->client_told && netx_writer_pending(&c->to_client) == 0) {
        netx_shutdown(c->client_fd, SHUT_WR);
        c->client_told = 1;
    }
    return c->backend_told && c->client_told;
}

static void serve(struct proxy *p, struct conn *c, enum kind which, unsigned events)
{
    int rc = 0;
    if (which == CLIENT_SIDE && (events & (NETX_ERROR | NETX_HANGUP)) != 0 &&
        (c->connecting || (events & NETX_ERROR) != 0)) {
        /* The client reset its connection (or, while its backend is being
         * dialled, is gone): nothing more can be passed either way. The
         * poller says so at every wait until we act, even for a socket
         * we are not reading. */
        close_conn(p, c);
        return;
    }
    if (which == BACKEND_SIDE && !c->connecting && (events & NETX_ERROR) != 0) {
        close_conn(p, c); /* the backend reset: its answer is lost */
        return;
    }
    if (c->connecting) {
        if (which == BACKEND_SIDE) {
            int done = netx_connect_finish(c->backend_fd, &p->backends[c->backend].addr);
            if (done == 0) {
                c->connecting = 0;
                check_result(p, &p->backends[c->backend], 1, NULL);
            } else if (errno != EINPROGRESS) {
                char why[256];
                snprintf(why, sizeof why, "%s", netx_last_error());
                rc = redial(p, c, why);
            }
        }
    } else {
        /* Closed both ways: remembered, so that watch() can take the
         * socket out of the poller once we want nothing more from it. */
        if ((events & NETX_HANGUP) != 0 && which == CLIENT_SIDE) {
            c->client_hup = 1;
        } else if ((events & NETX_HANGUP) != 0) {
            c->backend_hup = 1;
        }
        /* Read only the side the poller says is readable (a hang-up comes
         * as readable too). The other side's bytes, if any, come with an
         * event of their own: the poller reports a socket for as long as
         * it is readable. Reading it as well, on the chance, mostly finds
         * nothing: about one receive per request that says EAGAIN (and
         * two fcntl calls the library makes after it while a stop is
         * armed), which put the proxy's CPU per request up by a third
         * (docs/performance.md, section 9). */
        if ((events & NETX_READABLE) != 0 && which == CLIENT_SIDE) {
            rc = pass_on(p, c, c->client_fd, &c->to_backend, &c->client_ended);
        } else if ((events & NETX_READABLE) != 0) {
            rc = pass_on(p, c, c->backend_fd, &c->to_client, &c->backend_ended);
        }
        if (rc == 0 && (netx_writer_flush(&c->to_backend) != 0 ||
                        netx_writer_flush(&c->to_client) != 0)) {
            rc = -1;
        }
        /* Last, after every flush: a writer that has just emptied lets
         * its side's end go on now. (A flush after this one could empty
         * it unseen, and the end would wait for an event that never
         * comes: the client would hang, waiting for its end of stream.) */
        if (rc == 0 && pass_ends(c)) {
            rc = -1; /* both ways are over: close */
        }
    }
    if (rc != 0 || set_events(p, c) != 0) {
        close_conn(p, c);
    }
}

static void add_conn(struct proxy *p, int fd, const netx_addr *peer)
{
    struct conn *c = calloc(1, sizeof *c);
    if (c == NULL) {
        netx_close(fd);
        return;
    }
    c->client_fd = fd;
    c->backend_fd = -1;
    c->active_ms = p->now;
    c->sides[0] = (struct side){.kind = CLIENT_SIDE, .owner = c};
    c->sides[1] = (struct side){.kind = BACKEND_SIDE, .owner = c};
    netx_addr_format(peer, c->peer, sizeof c->peer);
    netx_writer_init(&c->to_client, fd, p->buf_cap);
    if (netx_poller_add(p->poller, fd, 0, &c->sides[0]) != 0) {
        netx_close(fd);
        free(c);
        return;
    }
    c->client_watched = 1;
    list_append(p, BY_AGE, c);
    if (p->idle_ms > 0) {
        list_append(p, BY_IDLE, c);
    }
    p->nconns++;
    if (dial(p, c) != 0 || set_events(p, c) != 0) {
        close_conn(p, c); /* nothing up: closed at once, never left hanging */
    }
}

static int accept_clients(struct proxy *p)
{
    for (int i = 0; i < ACCEPT_BATCH; i++) {
        netx_addr peer;
        int fd = netx_accept_nonblocking(p->listener, &peer);
        if (fd < 0) {
            int err = errno;
            if (err == EAGAIN || err == EWOULDBLOCK) {
                return 0;
            }
            if (err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM) {
                if (!p->fd_warned) {
                    netx_log("%s: %s; pausing accepts for %d ms (reported once)", prog,
                             netx_last_error(), FD_PAUSE_MS);
                    p->fd_warned = 1;
                }
                netx_poller_mod(p->poller, p->listener, 0, NULL);
                p->accepts_paused_until = p->now + FD_PAUSE_MS;
                return 0;
            }
            if (err == EBADF || err == EINVAL || err == ENOTSOCK) {
                netx_log("%s: %s", prog, netx_last_error());
                return -1;
            }
            continue;
        }
        netx_set_nodelay(fd, 1);
        if (p->nconns >= p->max_conns) {
            netx_close(fd);
            netx_log("%s: refused a client: at the limit of -n %zu connections", prog,
                     p->max_conns);
        } else {
            add_conn(p, fd, &peer);
        }
    }
    return 0;
}

/* ------------------------------------------------------------------------
 * Time, and the loop
 * ------------------------------------------------------------------------ */

static void expire(struct proxy *p)
{
    /* A backend that does not answer a client's connect: the next one. The
     * age list is not in deadline order for this (a redial restarts the
     * clock), so look at the connecting ones: few at any time. */
    struct conn *c = p->lists[BY_AGE].first;
    while (c != NULL) {
        struct conn *next = c->link[BY_AGE][1];
        if (c->connecting && p->now >= c->connect_deadline) {
            if (redial(p, c, "no answer to a connect within -c") != 0 ||
                set_events(p, c) != 0) {
                close_conn(p, c);
            }
        }
        c = next;
    }
    while (p->idle_ms > 0 && p->lists[BY_IDLE].first != NULL &&
           p->now - p->lists[BY_IDLE].first->active_ms >= p->idle_ms) {
        close_conn(p, p->lists[BY_IDLE].first);
    }
}

static int wait_timeout(const struct proxy *p)
{
    long long due = -1;
    for (int i = 0; i < p->nbackends; i++) {
        const struct backend *b = &p->backends[i];
        long long d = b->check_fd >= 0 ? b->check_deadline : b->next_check;
        due = due < 0 || d < due ? d : due;
    }
    for (const struct conn *c = p->lists[BY_AGE].first; c != NULL; c = c->link[BY_AGE][1]) {
        if (c->connecting && (due < 0 || c->connect_deadline < due)) {
            due = c->connect_deadline;
        }
    }
    if (p->idle_ms > 0 && p->lists[BY_IDLE].first != NULL) {
        long long d = p->lists[BY_IDLE].first->active_ms + p->idle_ms;
        due = due < 0 || d < due ? d : due;
    }
    if (p->accepts_paused_until > 0 && (due < 0 || p->accepts_paused_until < due)) {
        due = p->accepts_paused_until;
    }
    if (due < 0) {
        return -1;
    }
    return due <= p->now ? 0 : (int)(due - p->now);
}

static int start_drain(struct proxy *p)
{
    netx_poller_del(p->poller, p->listener);
    netx_close(p->listener);
    p->listener = -1;
    p->accepts_paused_until = 0;
    if (p->nconns == 0 || p->grace_ms == 0 || netx_stop_drain((int)p->grace_ms) != 0) {
        return 0;
    }
    p->draining = 1;
    netx_log("%s: stopping: letting %zu connections finish for up to %lld s "
             "(signal again to stop now)",
             prog, p->nconns, p->grace_ms / 1000);
    return 1;
}

static int run(struct proxy *p)
{
    static netx_event events[MAX_EVENTS];

    for (;;) {
        p->now = now_ms();
        run_checks(p);
        int n = netx_poller_wait(p->poller, events, MAX_EVENTS, wait_timeout(p));
        p->now = now_ms();
        if (n < 0) {
            if (errno != ECANCELED) {
                netx_log("%s: %s", prog, netx_last_error());
                return 1;
            }
            if (p->draining || !start_drain(p)) {
                return 0;
            }
            continue;
        }
        for (int i = 0; i < n; i++) {
            if (events[i].events == 0) {
                continue; /* dropped in this batch */
            }
            if (events[i].fd == p->listener) {
                if (accept_clients(p) != 0) {
                    return 1;
                }
                continue;
            }
            struct side *s = events[i].data;
            if (s->kind == CHECK) {
                check_done(p, s->owner);
            } else {
                serve(p, s->owner, s->kind, events[i].events);
            }
        }
        if (p->accepts_paused_until > 0 && p->now >= p->accepts_paused_until) {
            p->accepts_paused_until = 0;
            netx_poller_mod(p->poller, p->listener, NETX_READABLE, NULL);
        }
        expire(p);
        if (p->draining && p->nconns == 0) {
            return 0;
        }
    }
}

int main(int argc, char **argv)
{
    static struct proxy p;
    const char *host = "localhost";
    uint16_t port = 12345;
    unsigned long max_conns = 1000;
    unsigned long buf_cap = 65536;
    unsigned long idle_s = 0;
    unsigned long grace_s = 5;
    p.check_ms = 2000;
    p.connect_ms = 1000;
    p.rise = 2;
    p.fall = 3;

    if (netx_stdio_reserve() != 0) {
        return 1;
    }
    /* The long options first (getopt() knows only short ones): each takes
     * the next word as its value; what is left goes to getopt(). */
    int kept = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *value = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--backup") == 0) {
            add_backend(&p, long_value(a, value), 1);
            i++;
        } else if (strcmp(a, "--check-ms") == 0) {
            p.check_ms = (int)parse_number(a, long_value(a, value), 10, 3600000);
            i++;
        } else if (strcmp(a, "--rise") == 0) {
            p.rise = (int)parse_number(a, long_value(a, value), 1, 100);
            i++;
        } else if (strcmp(a, "--fall") == 0) {
            p.fall = (int)parse_number(a, long_value(a, value), 1, 100);
            i++;
        } else if (strncmp(a, "--", 2) == 0 && a[2] != '\0') {
            bad_usage("unknown option %s", a);
        } else {
            argv[kept++] = argv[i];
        }
    }
    argc = kept;
    argv[argc] = NULL;

    int opt;
    opterr = 0;
    while ((opt = getopt(argc, argv, ":hH:p:b:c:n:B:t:g:")) != -1) {
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
        case 'b':
            add_backend(&p, optarg, 0);
            break;
        case 'c':
            p.connect_ms = (int)parse_number("-c", optarg, 10, 600000);
            break;
        case 'n':
            max_conns = parse_number("-n", optarg, 1, MAX_CONNS_LIMIT);
            break;
        case 'B':
            buf_cap = parse_number("-B", optarg, 1, BUF_CAP_LIMIT);
            break;
        case 't':
            idle_s = parse_number("-t", optarg, 0, SECONDS_LIMIT);
            break;
        case 'g':
            grace_s = parse_number("-g", optarg, 0, GRACE_LIMIT);
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
    int regular = 0;
    for (int i = 0; i < p.nbackends; i++) {
        regular += !p.backends[i].backup;
    }
    if (regular == 0) {
        bad_usage("at least one backend (-b HOST:PORT) is needed");
    }
    if (netx_stop_on(SIGINT) != 0 || netx_stop_on(SIGTERM) != 0) {
        fprintf(stderr, "%s: %s\n", prog, netx_last_error());
        return 1;
    }
    p.max_conns = max_conns;
    p.buf_cap = buf_cap;
    p.idle_ms = (long long)idle_s * 1000;
    p.grace_ms = (long long)grace_s * 1000;
    p.now = now_ms();
    p.poller = netx_poller_new();
    p.listener = p.poller != NULL ? netx_tcp_listen(host, port, 0) : -1;
    if (p.listener < 0 || netx_set_nonblocking(p.listener, 1) != 0 ||
        netx_poller_add(p.poller, p.listener, NETX_READABLE, NULL) != 0) {
        fprintf(stderr, "%s: %s\n", prog, netx_last_error());
        if (p.listener >= 0) {
            netx_close(p.listener);
        }
        netx_poller_free(p.poller);
        return 1;
    }
    netx_addr local;
    char text[NETX_ADDRSTRLEN];
    netx_local_addr(p.listener, &local);
    netx_addr_format(&local, text, sizeof text);
    printf("listening on %s\n", text);
    fflush(stdout);

    int status = run(&p);

    while (p.lists[BY_AGE].first != NULL) {
        close_conn(&p, p.lists[BY_AGE].first);
    }
    for (int i = 0; i < p.nbackends; i++) {
        if (p.backends[i].check_fd >= 0) {
            end_check(&p, &p.backends[i]);
        }
    }
    if (p.listener >= 0) {
        netx_poller_del(p.poller, p.listener);
        netx_close(p.listener);
    }
    netx_poller_free(p.poller);
    netx_log_flush();
    return status;
}
