/*
 * tls_server.c - guide step 7 of the article, "Secure Your Connection":
 * the echo server over TLS, for many clients at once, on the event loop.
 *
 * The article wraps the server's socket with Python's ssl module
 * (context.wrap_socket(server_socket, server_side=True)). Here each
 * accepted socket is wrapped with netx_tls_accept(), with the certificate
 * and key given by -c and -k, and everything is echoed back encrypted:
 *
 *   $ ./tls_server -p 0 -c server.pem -k server-key.pem
 *   listening on 127.0.0.1:44300
 *   $ ./tls_client -p 44300 -C ca.pem hello
 *   hello
 *
 * It is event_server over TLS, and TLS changes three things in an event
 * loop, which this file shows:
 *
 *  - The handshake takes several round trips. With non-blocking sockets it
 *    goes step by step: netx_tls_handshake() says EAGAIN and
 *    netx_tls_wants() says what to wait for. A client that connects and
 *    never finishes its handshake is closed after -T seconds: it cannot
 *    hold a place for ever.
 *  - A TLS read may need the socket WRITABLE (to send a handshake or
 *    key-update message), and a write READABLE: we wait for what
 *    netx_tls_wants() says, not for what the call's name suggests.
 *  - Bytes TLS has already decrypted wait inside the library, where the
 *    poller cannot see them (netx_tls_pending()): we read until the
 *    library says EAGAIN, not until the socket looks empty.
 *
 * Output goes through a netx_writer over TLS (netx_tls_writer_init()),
 * capped by -b: a client that does not read its echoes costs at most the
 * cap, and we stop reading from it meanwhile. The other flags are
 * event_server's: -n, -t, -d, and the graceful stop (-g).
 */
#include <errno.h>
#include <netx_tls.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

static const char *prog = "tls_server";

#define RESERVED_FDS 16
#define MAX_EVENTS   256
#define ACCEPT_BATCH 64
#define FD_PAUSE_MS  100
#define READ_CHUNK   16384 /* one TLS record's worth of plaintext */
/* One wake-up serves a client at most this many reads, so a client that
 * sends without pause cannot starve the others. */
#define READS_PER_TURN 16

#define MAX_CLIENTS_LIMIT 100000UL
#define OUT_CAP_LIMIT     (1UL << 30)
#define SECONDS_LIMIT     86400UL
#define GRACE_LIMIT       3600UL

/* One client: its TLS connection, its output, its place in the lists. */
struct client {
    netx_tls *tls;
    int fd;
    int handshaking;     /* the handshake is not over yet */
    int eof;             /* it has ended its side (close_notify) */
    unsigned read_wants; /* what its next read waits for */
    unsigned write_wants; /* what its stalled echo waits for */
    netx_writer out;     /* its echo, what TLS has not taken yet */
    long long active_ms; /* the last time it sent or took bytes */
    long long since_ms;  /* when it was accepted */
    struct client *link[3][2];
};

/* The lists a client is on, each in the order its time runs out. */
enum { BY_AGE = 0, BY_IDLE = 1, BY_HANDSHAKE = 2 };

struct list {
    struct client *first;
    struct client *last;
};

struct server {
    netx_poller *poller;
    netx_tls_config *tls_config;
    int listener;
    size_t nclients;
    size_t max_clients;  /* -n */
    size_t out_cap;      /* -b */
    long long idle_ms;   /* -t; 0: none */
    long long life_ms;   /* -d; 0: none */
    long long shake_ms;  /* -T: the longest a handshake may take */
    long long grace_ms;  /* -g */
    struct list lists[3];
    unsigned char scratch[READ_CHUNK];
    long long now;
    long long accepts_paused_until;
    int fd_warned;
    int draining;
};

static void usage(FILE *out)
{
    fprintf(out,
            "usage: %s -c CERT -k KEY [-H HOST] [-p PORT] [-n MAX] [-b BYTES]\n"
            "       [-T SECONDS] [-t SECONDS] [-d SECONDS] [-g SECONDS]\n"
            "  Echo server over TLS for many clients in one thread.\n"
            "  -c CERT     the server's certificate chain (PEM, leaf first)\n"
            "  -k KEY      its private key (PEM)\n"
            "  -H HOST     address to listen on (default localhost; '' for every interface)\n"
            "  -p PORT     port to listen on, 0 for any free one (default 12345)\n"
            "  -n MAX      most clients at once, 1 to 100000 (default 1000);\n"
            "              more are closed at once\n"
            "  -b BYTES    most echo bytes held for a client that reads slowly,\n"
            "              1 to 1073741824 (default 65536)\n"
            "  -T SECONDS  close a client whose handshake is not over after that\n"
            "              long, 1 to 86400 (default 10)\n"
            "  -t SECONDS  close a client silent for that long, 0 to 86400\n"
            "              (default 0: never)\n"
            "  -d SECONDS  close a client connected for that long, 0 to 86400\n"
            "              (default 0: never)\n"
            "  -g SECONDS  on SIGINT or SIGTERM, stop accepting and let the clients\n"
            "              finish for at most this long, 0 to 3600 (default 5);\n"
            "              a second signal stops at once\n"
            "  -h          show this help\n",
            prog);
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

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Raise the descriptor limit as far as -n needs and the hard limit allows;
 * return how many clients fit. */
static size_t fit_fd_limit(size_t max_clients)
{
    struct rlimit rl;
    rlim_t need = (rlim_t)max_clients + RESERVED_FDS;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY ||
        rl.rlim_cur >= need) {
        return max_clients;
    }
    struct rlimit raised = rl;
    raised.rlim_cur = rl.rlim_max != RLIM_INFINITY && rl.rlim_max < need ? rl.rlim_max : need;
    if (setrlimit(RLIMIT_NOFILE, &raised) == 0) {
        rl.rlim_cur = raised.rlim_cur;
    }
    if (rl.rlim_cur >= need) {
        return max_clients;
    }
    return rl.rlim_cur > RESERVED_FDS + 1 ? (size_t)rl.rlim_cur - RESERVED_FDS : 1;
}

/* ------------------------------------------------------------------------
 * The lists, in the order the clients' time runs out (as in event_server)
 * ------------------------------------------------------------------------ */

static void list_remove(struct server *s, int which, struct client *c)
{
    struct list *l = &s->lists[which];
    struct client *prev = c->link[which][0];
    struct client *next = c->link[which][1];
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

static void touch(struct server *s, struct client *c)
{
    c->active_ms = s->now;
    if (s->idle_ms > 0 && !c->handshaking && s->lists[BY_IDLE].last != c) {
        list_remove(s, BY_IDLE, c);
        list_append(s, BY_IDLE, c);
    }
}

/* ------------------------------------------------------------------------
 * Clients
 * ------------------------------------------------------------------------ */

static void drop_client(struct server *s, struct client *c)
{
    netx_poller_del(s->poller, c->fd); /* before the close */
    list_remove(s, BY_AGE, c);
    list_remove(s, BY_IDLE, c);
    list_remove(s, BY_HANDSHAKE, c);
    netx_writer_free(&c->out);
    /* close_notify when the session is healthy, then close the socket. */
    netx_tls_close(c->tls);
    free(c);
    s->nclients--;
}

/* What to wait for: during the handshake, what it wants; after it, what
 * the next read wants (while we may read) and, with output pending, what
 * the writer's TLS wants. */
static void set_events(struct server *s, struct client *c)
{
    unsigned events;
    if (c->handshaking) {
        events = netx_tls_wants(c->tls);
    } else {
        events = 0;
        if (!c->eof && netx_writer_room(&c->out) > 0) {
            events |= c->read_wants;
        }
        if (netx_writer_pending(&c->out) > 0) {
            events |= c->write_wants; /* not netx_tls_wants(): that is the last call's, a read's */
        }
    }
    netx_poller_mod(s->poller, c->fd, events, c);
}

/* A client's failure, in the library's sentence; a stop is not one. */
static void report(void)
{
    if (netx_last_errno() != ECANCELED) {
        netx_log("%s: %s", prog, netx_last_error());
    }
}

/* The handshake goes on: 0 to keep the client, -1 to drop it. */
static int go_on_with_handshake(struct server *s, struct client *c)
{
    if (netx_tls_handshake(c->tls) != 0) {
        if (errno == EAGAIN) {
            return 0; /* set_events() waits for what it wants */
        }
        report(); /* a client that speaks no TLS, or no cipher we share */
        return -1;
    }
    c->handshaking = 0;
    list_remove(s, BY_HANDSHAKE, c);
    if (s->idle_ms > 0) {
        list_append(s, BY_IDLE, c);
    }
    touch(s, c);
    return 0;
}

/*
 * Read what has arrived - from the socket and from inside the library - no
 * more than the writer has room for, and echo it through the writer. 0 to
 * keep the client, -1 to drop it.
 */
static int echo_some(struct server *s, struct client *c)
{
    /* A few reads at a time, to be fair to the others - and on while TLS
     * holds bytes it has decrypted already: the socket may be empty, and
     * then no poller would wake us for them. They are at most a record. */
    for (int i = 0; !c->eof && (i < READS_PER_TURN || netx_tls_pending(c->tls) > 0); i++) {
        size_t room = netx_writer_room(&c->out);
        if (room == 0) {
            break; /* backpressure: read again when the client has read */
        }
        ssize_t n = netx_tls_recv(c->tls, s->scratch, room < READ_CHUNK ? room : READ_CHUNK);
        if (n < 0) {
            if (errno == EAGAIN) {
                c->read_wants = netx_tls_wants(c->tls);
                break;
            }
            report(); /* a reset, or the end without close_notify */
            return -1;
        }
        if (n == 0) {
            c->eof = 1; /* its close_notify: finish the echo, then close */
            break;
        }
        touch(s, c);
        if (netx_writer_send(&c->out, s->scratch, (size_t)n) != 0) {
            report();
            return -1;
        }
    }
    return 0;
}

static void serve(struct server *s, struct client *c)
{
    int rc = 0;
    if (c->handshaking) {
        rc = go_on_with_handshake(s, c);
    }
    if (rc == 0 && !c->handshaking) {
        size_t before = netx_writer_pending(&c->out);
        if (netx_writer_flush(&c->out) != 0) {
            report();
            rc = -1;
        } else if (netx_writer_pending(&c->out) < before) {
            touch(s, c);
        }
        if (rc == 0) {
            rc = echo_some(s, c);
        }
        /* Echo left over waits for what TLS's send wants (usually
         * WRITABLE). netx_tls_wants() answers for the last call, which
         * was echo_some()'s read: flush once more, so it is a send's. */
        if (rc == 0 && netx_writer_pending(&c->out) > 0) {
            if (netx_writer_flush(&c->out) != 0) {
                report();
                rc = -1;
            }
            unsigned w = netx_tls_wants(c->tls);
            c->write_wants = w != 0 ? w : NETX_WRITABLE;
        }
        if (rc == 0 && c->eof && netx_writer_pending(&c->out) == 0) {
            rc = -1; /* it said goodbye and has every byte back */
        }
    }
    if (rc != 0) {
        drop_client(s, c);
    } else {
        set_events(s, c);
    }
}

/* Close clients whose time is up: the head of each list, while expired. */
static void expire(struct server *s)
{
    while (s->lists[BY_HANDSHAKE].first != NULL &&
           s->now - s->lists[BY_HANDSHAKE].first->since_ms >= s->shake_ms) {
        netx_log("%s: a client did not finish its handshake within %lld s; closing it", prog,
                 s->shake_ms / 1000);
        drop_client(s, s->lists[BY_HANDSHAKE].first);
    }
    while (s->idle_ms > 0 && s->lists[BY_IDLE].first != NULL &&
           s->now - s->lists[BY_IDLE].first->active_ms >= s->idle_ms) {
        drop_client(s, s->lists[BY_IDLE].first);
    }
    while (s->life_ms > 0 && s->lists[BY_AGE].first != NULL &&
           s->now - s->lists[BY_AGE].first->since_ms >= s->life_ms) {
        drop_client(s, s->lists[BY_AGE].first);
    }
}

/* Until the next expiry or the end of an accept pause; -1: none. */
static int wait_timeout(const struct server *s)
{
    long long due = -1;
    const struct client *h = s->lists[BY_HANDSHAKE].first;
    const struct client *i = s->lists[BY_IDLE].first;
    const struct client *a = s->lists[BY_AGE].first;
    long long d[4] = {h != NULL ? h->since_ms + s->shake_ms : -1,
                      s->idle_ms > 0 && i != NULL ? i->active_ms + s->idle_ms : -1,
                      s->life_ms > 0 && a != NULL ? a->since_ms + s->life_ms : -1,
                      s->accepts_paused_until > 0 ? s->accepts_paused_until : -1};
    for (int k = 0; k < 4; k++) {
        if (d[k] >= 0 && (due < 0 || d[k] < due)) {
            due = d[k];
        }
    }
    if (due < 0) {
        return -1;
    }
    return due <= s->now ? 0 : (int)(due - s->now);
}

/* ------------------------------------------------------------------------
 * Accepting
 * ------------------------------------------------------------------------ */

static int add_client(struct server *s, int fd)
{
    struct client *c = calloc(1, sizeof *c);
    if (c == NULL) {
        netx_close(fd);
        return -1;
    }
    /* Guide step 7: wrap the socket. It is non-blocking, so this only starts the
     * handshake; the loop finishes it. The TLS connection owns fd now. */
    c->tls = netx_tls_accept(s->tls_config, fd, 0);
    if (c->tls == NULL) {
        report();
        free(c);
        return -1;
    }
    c->fd = fd;
    c->handshaking = 1;
    c->read_wants = NETX_READABLE;
    c->active_ms = c->since_ms = s->now;
    netx_tls_writer_init(&c->out, c->tls, s->out_cap);
    if (netx_poller_add(s->poller, fd, NETX_READABLE, c) != 0) {
        report();
        netx_tls_close(c->tls);
        free(c);
        return -1;
    }
    list_append(s, BY_AGE, c);
    list_append(s, BY_HANDSHAKE, c);
    s->nclients++;
    /* The client may have sent its hello already: try at once. */
    serve(s, c);
    return 0;
}

static int accept_clients(struct server *s)
{
    for (int i = 0; i < ACCEPT_BATCH; i++) {
        int fd = netx_accept_nonblocking(s->listener, NULL);
        if (fd < 0) {
            int err = errno;
            if (err == EAGAIN || err == EWOULDBLOCK) {
                return 0;
            }
            if (err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM) {
                if (!s->fd_warned) {
                    netx_log("%s: %s; pausing accepts for %d ms (reported once)", prog,
                             netx_last_error(), FD_PAUSE_MS);
                    s->fd_warned = 1;
                }
                netx_poller_mod(s->poller, s->listener, 0, NULL);
                s->accepts_paused_until = s->now + FD_PAUSE_MS;
                return 0;
            }
            if (err == EBADF || err == EINVAL || err == ENOTSOCK) {
                netx_log("%s: %s", prog, netx_last_error());
                return -1;
            }
            continue;
        }
        netx_set_nodelay(fd, 1);
        if (s->nclients >= s->max_clients) {
            /* Full: close at once. (No "server busy" in plain text: a TLS
             * client could not read it.) */
            netx_close(fd);
            netx_log("%s: refused a client: %zu clients already (limit -n)", prog,
                     s->max_clients);
        } else {
            add_client(s, fd);
        }
    }
    return 0;
}

/* ------------------------------------------------------------------------
 * The event loop
 * ------------------------------------------------------------------------ */

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
                serve(s, events[i].data);
            }
        }
        if (s->accepts_paused_until > 0 && s->now >= s->accepts_paused_until) {
            s->accepts_paused_until = 0;
            netx_poller_mod(s->poller, s->listener, NETX_READABLE, NULL);
        }
        expire(s);
        if (s->draining && s->nclients == 0) {
            return 0;
        }
    }
}

int main(int argc, char **argv)
{
    const char *host = "localhost";
    const char *cert = NULL;
    const char *key = NULL;
    uint16_t port = 12345;
    unsigned long max_clients = 1000;
    unsigned long out_cap = 65536;
    unsigned long shake_s = 10;
    unsigned long idle_s = 0;
    unsigned long life_s = 0;
    unsigned long grace_s = 5;
    int opt;

    if (netx_stdio_reserve() != 0) {
        return 1;
    }
    opterr = 0;
    while ((opt = getopt(argc, argv, ":hH:p:c:k:n:b:T:t:d:g:")) != -1) {
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
        case 'c':
            cert = optarg;
            break;
        case 'k':
            key = optarg;
            break;
        case 'n':
            max_clients = parse_number(opt, optarg, 1, MAX_CLIENTS_LIMIT);
            break;
        case 'b':
            out_cap = parse_number(opt, optarg, 1, OUT_CAP_LIMIT);
            break;
        case 'T':
            shake_s = parse_number(opt, optarg, 1, SECONDS_LIMIT);
            break;
        case 't':
            idle_s = parse_number(opt, optarg, 0, SECONDS_LIMIT);
            break;
        case 'd':
            life_s = parse_number(opt, optarg, 0, SECONDS_LIMIT);
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
    if (cert == NULL || key == NULL) {
        bad_usage("a TLS server needs its certificate (-c) and its key (-k)");
    }
    if (netx_stop_on(SIGINT) != 0 || netx_stop_on(SIGTERM) != 0) {
        fprintf(stderr, "%s: %s\n", prog, netx_last_error());
        return 1;
    }

    static struct server s;
    s.max_clients = fit_fd_limit(max_clients);
    s.out_cap = out_cap;
    s.shake_ms = (long long)shake_s * 1000;
    s.idle_ms = (long long)idle_s * 1000;
    s.life_ms = (long long)life_s * 1000;
    s.grace_ms = (long long)grace_s * 1000;
    s.now = now_ms();
    s.listener = -1;

    /* The certificate and key are read once, before we listen: a wrong
     * file is the command line's fault, said at once. */
    s.tls_config = netx_tls_server_config(cert, key);
    s.poller = s.tls_config != NULL ? netx_poller_new() : NULL;
    if (s.poller != NULL) {
        s.listener = netx_tcp_listen(host, port, 0);
    }
    if (s.listener < 0 || netx_set_nonblocking(s.listener, 1) != 0 ||
        netx_poller_add(s.poller, s.listener, NETX_READABLE, NULL) != 0) {
        fprintf(stderr, "%s: %s\n", prog, netx_last_error());
        if (s.listener >= 0) {
            netx_close(s.listener);
        }
        netx_poller_free(s.poller);
        netx_tls_config_free(s.tls_config);
        return 1;
    }
    netx_addr local;
    char text[NETX_ADDRSTRLEN];
    netx_local_addr(s.listener, &local);
    netx_addr_format(&local, text, sizeof text);
    printf("listening on %s\n", text);
    fflush(stdout);

    int status = run(&s);

    while (s.lists[BY_AGE].first != NULL) {
        drop_client(&s, s.lists[BY_AGE].first);
    }
    if (s.listener >= 0) {
        netx_poller_del(s.poller, s.listener);
        netx_close(s.listener);
    }
    netx_poller_free(s.poller);
    netx_tls_config_free(s.tls_config);
    netx_log_flush();
    return status;
}
