/*
 * chat_server.c - the article's use case 2, real-time applications: "Chat
 * applications ... use WebSockets or UDP for minimal latency". A line chat
 * over TCP: every line a client sends goes to every other client, with its
 * name in front. Works with nc as the client, or with chat_client.
 *
 *   $ ./chat_server -p 0                 $ nc localhost 41234
 *   listening on 127.0.0.1:41234         * welcome, guest1. Commands: ...
 *                                        /nick ada
 *                                        * you are now ada
 *                                        hello
 *   (everyone else sees "ada: hello")
 *
 * Commands: /nick NAME (1 to 20 letters, digits, '_' or '-', not taken),
 * /who (who is here), /quit. Joins, leaves and renames are announced.
 *
 * The classic teaching chats fail under stress in three ways, and this one
 * does not:
 *
 *  - "One read is one line" is false on TCP. Lines are framed by a
 *    netx_reader, and bounded: a line over 1024 bytes is refused with a
 *    notice, and the client stays. One read may also be many lines: those
 *    the reader holds have left the socket, so the poller will never report
 *    them, and a client whose turn ends with lines still held is served
 *    again without waiting.
 *  - A broadcast that send()s to every client blocks on the first one that
 *    does not read, and the whole room stops. Here each client's output is a
 *    netx_writer with a cap (-b): what it has not read waits there, and a
 *    client whose backlog passes the cap is disconnected, with the reason
 *    logged. It never delays anyone else.
 *  - Removing a client while the broadcast loop walks the list skips or
 *    revisits one. Here a client found broken during a broadcast is only
 *    marked, and removed after the loop.
 *
 * The rest is event_server's: one thread on netx_poller, -n, -t, -d, and the
 * graceful stop, which tells everyone the server is going away.
 */
#include <ctype.h>
#include <errno.h>
#include <netx.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h> /* strcasecmp */
#include <time.h>
#include <unistd.h>

static const char *prog = "chat_server";

#define LINE_MAX_BYTES 1024 /* the longest line a client may send */
#define NAME_MAX_BYTES 20
#define MAX_EVENTS     256
#define ACCEPT_BATCH   64
#define FD_PAUSE_MS    100
#define LINES_PER_TURN 32 /* one client's lines per wake-up, so none starves the room */

#define MAX_CLIENTS_LIMIT 100000UL
#define OUT_CAP_LIMIT     (1UL << 30)
#define SECONDS_LIMIT     86400UL
#define GRACE_LIMIT       3600UL

struct client {
    int fd;
    netx_reader in;
    netx_writer out;
    char name[NAME_MAX_BYTES + 1];
    char peer[NETX_ADDRSTRLEN];
    const char *doomed;  /* why it must go, once the broadcast is over */
    char why[160];       /* the sentence doomed may point to */
    int leaving;         /* /quit or a stop: close when its output is out */
    int more;            /* its turn ended with lines still in its reader */
    unsigned long round; /* the round of the loop that last read its lines */
    long long active_ms; /* last line from it, for -t */
    long long since_ms;  /* when it joined, for -d */
    struct client *link[2][2];
    char storage[LINE_MAX_BYTES + 3]; /* its reader's: a line, "\r\n", NUL */
};

enum { BY_AGE = 0, BY_IDLE = 1 };

struct list {
    struct client *first;
    struct client *last;
};

struct server {
    netx_poller *poller;
    int listener;
    size_t nclients;
    size_t max_clients;
    size_t out_cap;
    long long idle_ms;
    long long life_ms;
    long long grace_ms;
    struct list lists[2]; /* BY_AGE holds every client: the room */
    unsigned long next_guest;
    long long now;
    long long accepts_paused_until;
    int fd_warned;
    int draining;
    unsigned long round; /* one per wake-up of the loop */
    size_t waiting;      /* clients with lines left in their reader (more) */
    char line[LINE_MAX_BYTES + 3];
    char said[LINE_MAX_BYTES + NAME_MAX_BYTES + 8];
};

static void usage(FILE *out)
{
    fprintf(out,
            "usage: %s [-H HOST] [-p PORT] [-n MAX] [-b BYTES] [-t SECONDS]\n"
            "       [-d SECONDS] [-g SECONDS]\n"
            "  A line chat: each line goes to every other client, with its name.\n"
            "  Clients may use nc; commands: /nick NAME, /who, /quit.\n"
            "  -H HOST     address to listen on (default localhost; '' for every interface)\n"
            "  -p PORT     port to listen on, 0 for any free one (default 12345)\n"
            "  -n MAX      most clients at once, 1 to 100000 (default 1000)\n"
            "  -b BYTES    most bytes waiting for one client, 1 to 1073741824\n"
            "              (default 65536); a client past it is disconnected\n"
            "  -t SECONDS  disconnect a client silent for that long, 0 to 86400\n"
            "              (default 0: never)\n"
            "  -d SECONDS  disconnect a client connected for that long, 0 to\n"
            "              86400 (default 0: never)\n"
            "  -g SECONDS  on SIGINT or SIGTERM, tell everyone and let them have\n"
            "              what was said for at most this long, 0 to 3600\n"
            "              (default 5); a second signal stops at once\n"
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

/* ------------------------------------------------------------------------
 * The room: the age list holds every client (as in event_server)
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

/* ------------------------------------------------------------------------
 * Saying things
 * ------------------------------------------------------------------------ */

static const char too_slow[] = "it did not read: its output passed the cap (-b)";

/* Queue text for c. Past its cap, c is doomed: it does not read, and the
 * room must not wait for it (nor keep more than the cap for it). */
static void tell(struct client *c, const char *text, size_t len)
{
    if (c->doomed != NULL) {
        return;
    }
    if (netx_writer_send(&c->out, text, len) != 0) {
        if (errno == ENOBUFS) {
            c->doomed = too_slow;
        } else {
            /* Copied: the error record's sentence changes with the next failure. */
            snprintf(c->why, sizeof c->why, "%s", netx_last_error());
            c->doomed = c->why;
        }
    }
}

static void tellf(struct client *c, const char *fmt, ...)
{
    char text[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    if (n > 0) {
        tell(c, text, (size_t)n < sizeof text ? (size_t)n : sizeof text - 1);
    }
}

/* Everyone but from (NULL: everyone) gets text. Nobody is removed here:
 * a client that cannot take it is only marked (see drop_doomed()). */
static void broadcast(struct server *s, const struct client *from, const char *text, size_t len)
{
    for (struct client *c = s->lists[BY_AGE].first; c != NULL; c = c->link[BY_AGE][1]) {
        if (c != from && !c->leaving) {
            tell(c, text, len);
        }
    }
}

static void announce(struct server *s, const struct client *about, const char *fmt, ...)
{
    char text[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    if (n > 0) {
        broadcast(s, about, text, (size_t)n < sizeof text ? (size_t)n : sizeof text - 1);
    }
}

/* ------------------------------------------------------------------------
 * Clients coming and going
 * ------------------------------------------------------------------------ */

static void remove_client(struct server *s, struct client *c)
{
    netx_poller_del(s->poller, c->fd); /* before the close */
    list_remove(s, BY_AGE, c);
    list_remove(s, BY_IDLE, c);
    netx_writer_free(&c->out);
    netx_close(c->fd);
    free(c);
    s->nclients--;
}

/*
 * A client leaves, and it is removed. why (NULL: it left by itself) goes to
 * the log in full; the others are told `told`, a few words: a system
 * error's sentence names descriptors and calls, which are the log's
 * business, not the room's.
 */
static void leave(struct server *s, struct client *c, const char *why, const char *told)
{
    if (why != NULL) {
        netx_log("%s: disconnected %s (%s): %s", prog, c->name, c->peer, why);
        announce(s, c, "* %s was disconnected (%s)\n", c->name, told);
    } else {
        announce(s, c, "* %s left\n", c->name);
    }
    remove_client(s, c);
}

/* Remove the clients a broadcast marked. Leaving can mark others (its
 * notice may be the line that fills someone's cap), so go round until none
 * is left; each round removes at least one, so it ends. */
static void drop_doomed(struct server *s)
{
    for (;;) {
        struct client *c = s->lists[BY_AGE].first;
        while (c != NULL && c->doomed == NULL) {
            c = c->link[BY_AGE][1];
        }
        if (c == NULL) {
            return;
        }
        leave(s, c, c->doomed, c->doomed == too_slow ? "too slow" : "error");
    }
}

/* ------------------------------------------------------------------------
 * What a client says
 * ------------------------------------------------------------------------ */

/* 1 if name may be a nick: 1 to 20 letters, digits, '_' or '-'. */
static int valid_name(const char *name)
{
    size_t len = strlen(name);
    if (len == 0 || len > NAME_MAX_BYTES) {
        return 0;
    }
    for (size_t i = 0; i < len; i++) {
        if (!isalnum((unsigned char)name[i]) && name[i] != '_' && name[i] != '-') {
            return 0;
        }
    }
    return 1;
}

static int name_taken(const struct server *s, const char *name)
{
    for (const struct client *c = s->lists[BY_AGE].first; c != NULL; c = c->link[BY_AGE][1]) {
        if (strcasecmp(c->name, name) == 0) {
            return 1;
        }
    }
    return 0;
}

static void command(struct server *s, struct client *c, const char *line)
{
    if (strncmp(line, "/nick ", 6) == 0) {
        const char *name = line + 6;
        if (!valid_name(name)) {
            tellf(c, "* a name is 1 to %d letters, digits, '_' or '-'\n", NAME_MAX_BYTES);
        } else if (name_taken(s, name) && strcasecmp(name, c->name) != 0) {
            tellf(c, "* %s is taken\n", name);
        } else {
            announce(s, c, "* %s is now known as %s\n", c->name, name);
            snprintf(c->name, sizeof c->name, "%s", name);
            tellf(c, "* you are now %s\n", c->name);
        }
    } else if (strcmp(line, "/who") == 0) {
        tellf(c, "* %zu here:", s->nclients);
        for (struct client *o = s->lists[BY_AGE].first; o != NULL; o = o->link[BY_AGE][1]) {
            tellf(c, " %s", o->name);
        }
        tell(c, "\n", 1);
    } else if (strcmp(line, "/quit") == 0) {
        tell(c, "* bye\n", 6);
        c->leaving = 1;
    } else {
        tellf(c, "* unknown command %.40s (try /nick NAME, /who, /quit)\n", line);
    }
}

/*
 * One line of len bytes from c (its '\n' and any '\r' taken off): a
 * command, or a line for everyone. Control characters become '?': a client
 * must not be able to send the others' terminals escape sequences. NUL is
 * one of them, so the walk goes by len, not to the first NUL: a NUL left
 * in place would silently cut the line there.
 */
static void said(struct server *s, struct client *c, char *line, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char b = (unsigned char)line[i];
        if ((b < 0x20 && b != '\t') || b == 0x7f) {
            line[i] = '?';
        }
    }
    if (line[0] == '\0') {
        return; /* an empty line says nothing */
    }
    if (line[0] == '/') {
        command(s, c, line);
        return;
    }
    int n = snprintf(s->said, sizeof s->said, "%s: %s\n", c->name, line);
    broadcast(s, c, s->said, (size_t)n);
}

/* ------------------------------------------------------------------------
 * The loop's work for one client
 * ------------------------------------------------------------------------ */

static void set_events(struct server *s, struct client *c)
{
    unsigned events = c->leaving ? 0 : NETX_READABLE;
    if (netx_writer_pending(&c->out) > 0) {
        events |= NETX_WRITABLE;
    }
    netx_poller_mod(s->poller, c->fd, events, c);
}

/* Read c's lines while they are there, LINES_PER_TURN at most. Returns a
 * reason to disconnect it, "" when it closed (a plain leave), or NULL to
 * keep it. */
static const char *read_lines(struct server *s, struct client *c)
{
    c->round = s->round; /* its turn in this round */
    c->more = 0;
    for (int i = 0; !c->leaving && c->doomed == NULL; i++) {
        if (i == LINES_PER_TURN) {
            /* Its turn is over, but one recv() may have brought many lines:
             * those in the reader have left the socket, so the poller will
             * not report them. Mark it, and the loop comes back to it
             * without waiting (serve_waiting()); else they would sit there
             * until the client sends again. */
            c->more = netx_reader_buffered(&c->in) > 0;
            return NULL;
        }
        ssize_t n = netx_read_line(&c->in, s->line, sizeof s->line);
        if (n == 0) {
            return ""; /* it closed the connection */
        }
        if (n < 0) {
            if (errno == EAGAIN) {
                return NULL;
            }
            if (errno == EMSGSIZE) {
                /* The reader skips the rest of that line; the client stays. */
                tellf(c, "* that line was longer than %d bytes: not sent\n", LINE_MAX_BYTES);
                continue;
            }
            return netx_last_error(); /* a reset */
        }
        size_t len = (size_t)n;
        while (len > 0 && (s->line[len - 1] == '\n' || s->line[len - 1] == '\r')) {
            s->line[--len] = '\0';
        }
        if (len > LINE_MAX_BYTES) {
            /* The storage fits the limit with "\r\n" (nc -C, telnet), so
             * a line one byte longer with just "\n" gets here. */
            tellf(c, "* that line was longer than %d bytes: not sent\n", LINE_MAX_BYTES);
            continue;
        }
        c->active_ms = s->now;
        if (s->idle_ms > 0) {
            list_remove(s, BY_IDLE, c);
            list_append(s, BY_IDLE, c);
        }
        said(s, c, s->line, len);
    }
    return NULL;
}

static void serve(struct server *s, struct client *c, unsigned events)
{
    const char *gone = NULL;
    if (events & NETX_READABLE) {
        gone = read_lines(s, c);
    }
    if (gone == NULL && netx_writer_flush(&c->out) != 0) {
        gone = netx_last_error();
    }
    if (gone == NULL && c->leaving && netx_writer_pending(&c->out) == 0) {
        gone = ""; /* /quit, and it has had everything */
    }
    if (gone != NULL) {
        leave(s, c, gone[0] != '\0' ? gone : NULL, "error");
    } else if (c->doomed == NULL) {
        set_events(s, c);
    }
}

/* A turn more for each client whose last turn ended with lines still in
 * its reader (see read_lines()), unless this round served it already: one
 * turn a round each, so none starves the room. */
static void serve_waiting(struct server *s)
{
    struct client *c = s->lists[BY_AGE].first;
    while (c != NULL) {
        struct client *next = c->link[BY_AGE][1]; /* c may go */
        if (c->more && c->round != s->round && c->doomed == NULL) {
            serve(s, c, NETX_READABLE);
        }
        c = next;
    }
}

/* After a batch: what the broadcasts marked goes, a client that is leaving
 * and has had everything goes, and every other client with new output
 * waits for WRITABLE. The clients with lines still in their reader are
 * counted: while there are any, the loop must not sleep. */
static void after_batch(struct server *s)
{
    drop_doomed(s);
    s->waiting = 0;
    struct client *c = s->lists[BY_AGE].first;
    while (c != NULL) {
        struct client *next = c->link[BY_AGE][1]; /* c may go */
        if (c->leaving && netx_writer_pending(&c->out) == 0) {
            leave(s, c, NULL, NULL);
        } else {
            set_events(s, c);
            s->waiting += c->more && !c->leaving;
        }
        c = next;
    }
    drop_doomed(s); /* a leave's notice may have filled someone's cap */
}

/* ------------------------------------------------------------------------
 * Accepting, time limits, the loop
 * ------------------------------------------------------------------------ */

static void join(struct server *s, int fd, const netx_addr *peer)
{
    struct client *c = calloc(1, sizeof *c);
    if (c == NULL) {
        netx_close(fd);
        return;
    }
    c->fd = fd;
    c->active_ms = c->since_ms = s->now;
    netx_addr_format(peer, c->peer, sizeof c->peer);
    /* Guests are numbered; skip a number someone took with /nick. */
    do {
        snprintf(c->name, sizeof c->name, "guest%lu", ++s->next_guest);
    } while (name_taken(s, c->name));
    netx_reader_init(&c->in, fd, c->storage, sizeof c->storage);
    netx_writer_init(&c->out, fd, s->out_cap);
    if (netx_poller_add(s->poller, fd, NETX_READABLE, c) != 0) {
        netx_close(fd);
        free(c);
        return;
    }
    announce(s, NULL, "* %s joined\n", c->name);
    list_append(s, BY_AGE, c);
    if (s->idle_ms > 0) {
        list_append(s, BY_IDLE, c);
    }
    s->nclients++;
    tellf(c, "* welcome, %s. Commands: /nick NAME, /who, /quit\n", c->name);
}

static int accept_clients(struct server *s)
{
    for (int i = 0; i < ACCEPT_BATCH; i++) {
        netx_addr peer;
        int fd = netx_accept_nonblocking(s->listener, &peer);
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
        netx_set_nodelay(fd, 1); /* a chat line should not wait for Nagle */
        if (s->nclients >= s->max_clients) {
            static const char full[] = "* the room is full; try again later\n";
            (void)netx_send(fd, full, sizeof full - 1);
            netx_shutdown(fd, SHUT_WR);
            netx_close(fd);
            netx_log("%s: refused a client: the room is full (-n %zu)", prog, s->max_clients);
        } else {
            join(s, fd, &peer);
        }
    }
    return 0;
}

static void expire(struct server *s)
{
    while (s->idle_ms > 0 && s->lists[BY_IDLE].first != NULL &&
           s->now - s->lists[BY_IDLE].first->active_ms >= s->idle_ms) {
        struct client *c = s->lists[BY_IDLE].first;
        tell(c, "* you were silent too long: goodbye\n", 36);
        netx_writer_flush(&c->out);
        leave(s, c, "silent too long (-t)", "silent too long");
    }
    while (s->life_ms > 0 && s->lists[BY_AGE].first != NULL &&
           s->now - s->lists[BY_AGE].first->since_ms >= s->life_ms) {
        struct client *c = s->lists[BY_AGE].first;
        tell(c, "* you were here too long: goodbye\n", 34);
        netx_writer_flush(&c->out);
        leave(s, c, "connected too long (-d)", "here too long");
    }
}

static int wait_timeout(const struct server *s)
{
    if (s->waiting > 0) {
        return 0; /* lines wait in a reader: serve them, do not sleep */
    }
    const struct client *i = s->lists[BY_IDLE].first;
    const struct client *a = s->lists[BY_AGE].first;
    long long d[3] = {s->idle_ms > 0 && i != NULL ? i->active_ms + s->idle_ms : -1,
                      s->life_ms > 0 && a != NULL ? a->since_ms + s->life_ms : -1,
                      s->accepts_paused_until > 0 ? s->accepts_paused_until : -1};
    long long due = -1;
    for (int k = 0; k < 3; k++) {
        if (d[k] >= 0 && (due < 0 || d[k] < due)) {
            due = d[k];
        }
    }
    if (due < 0) {
        return -1;
    }
    return due <= s->now ? 0 : (int)(due - s->now);
}

/* The first stop signal: no newcomers; everyone is told, and has until the
 * grace period ends to receive what was said. */
static int start_drain(struct server *s)
{
    netx_poller_del(s->poller, s->listener);
    netx_close(s->listener);
    s->listener = -1;
    s->accepts_paused_until = 0;
    broadcast(s, NULL, "* the server is going away\n", 27);
    for (struct client *c = s->lists[BY_AGE].first; c != NULL; c = c->link[BY_AGE][1]) {
        c->leaving = 1; /* close each once its output is out */
    }
    drop_doomed(s);
    if (s->nclients == 0 || s->grace_ms == 0 || netx_stop_drain((int)s->grace_ms) != 0) {
        return 0;
    }
    s->draining = 1;
    netx_log("%s: stopping: %zu client%s get what was said, for up to %lld s "
             "(signal again to stop now)",
             prog, s->nclients, s->nclients == 1 ? "" : "s", s->grace_ms / 1000);
    after_batch(s);
    /* Those whose notice went out at once are gone already. If that is
     * everyone, stop now: the loop looks for an empty room only after its
     * next wait, and with nobody left that wait lasts the whole grace. */
    return s->nclients > 0;
}

static int run(struct server *s)
{
    static netx_event events[MAX_EVENTS];

    for (;;) {
        int n = netx_poller_wait(s->poller, events, MAX_EVENTS, wait_timeout(s));
        s->now = now_ms();
        s->round++;
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
                continue; /* dropped in this batch */
            }
            if (events[i].fd == s->listener) {
                if (accept_clients(s) != 0) {
                    return 1;
                }
                continue;
            }
            struct client *c = events[i].data;
            if (c->doomed == NULL) {
                serve(s, c, events[i].events);
            }
        }
        serve_waiting(s);
        after_batch(s);
        if (s->accepts_paused_until > 0 && s->now >= s->accepts_paused_until) {
            s->accepts_paused_until = 0;
            netx_poller_mod(s->poller, s->listener, NETX_READABLE, NULL);
        }
        expire(s);
        after_batch(s);
        if (s->draining && s->nclients == 0) {
            return 0;
        }
    }
}

int main(int argc, char **argv)
{
    const char *host = "localhost";
    uint16_t port = 12345;
    unsigned long max_clients = 1000;
    unsigned long out_cap = 65536;
    unsigned long idle_s = 0;
    unsigned long life_s = 0;
    unsigned long grace_s = 5;
    int opt;

    if (netx_stdio_reserve() != 0) {
        return 1;
    }
    opterr = 0;
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
            break;
        case 'b':
            out_cap = parse_number(opt, optarg, 1, OUT_CAP_LIMIT);
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
    if (netx_stop_on(SIGINT) != 0 || netx_stop_on(SIGTERM) != 0) {
        fprintf(stderr, "%s: %s\n", prog, netx_last_error());
        return 1;
    }
    static struct server s;
    s.max_clients = max_clients;
    s.out_cap = out_cap;
    s.idle_ms = (long long)idle_s * 1000;
    s.life_ms = (long long)life_s * 1000;
    s.grace_ms = (long long)grace_s * 1000;
    s.now = now_ms();
    s.poller = netx_poller_new();
    s.listener = s.poller != NULL ? netx_tcp_listen(host, port, 0) : -1;
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

    while (s.lists[BY_AGE].first != NULL) {
        remove_client(&s, s.lists[BY_AGE].first);
    }
    if (s.listener >= 0) {
        netx_poller_del(s.poller, s.listener);
        netx_close(s.listener);
    }
    netx_poller_free(s.poller);
    netx_log_flush();
    return status;
}
