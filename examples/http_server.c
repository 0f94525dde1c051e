/*
 * http_server.c - the article's use case 1, the web: "Web browsers
 * communicate with servers using HTTP requests." A static file server for
 * HTTP/1.1, on the event loop, that curl and a browser are happy with.
 *
 *   $ ./http_server -r public -p 8080          (serve the directory public/)
 *   listening on 127.0.0.1:8080
 *   $ curl http://localhost:8080/index.html
 *
 * It is event_server's loop (netx_poller, netx_writer, the same flags and
 * graceful stop) with HTTP on top:
 *
 *  - Requests are read line by line with a netx_reader: the request line
 *    and each header line are bounded by the reader's storage (8 KiB: 414
 *    or 431 beyond), the number of headers too (431), and the time a
 *    request's head may take (-T: 408, against slowloris). The parsing of
 *    those untrusted lines is in http_parse.h, which a fuzzer drives.
 *  - GET and HEAD; other methods 405, unknown ones 501, both with Allow.
 *    HTTP/1.1 keeps the connection open (and 1.0 with "Connection:
 *    keep-alive"); requests that arrive together (pipelining) are answered
 *    in order, one at a time.
 *  - A file goes out with sendfile(2) on Linux: the kernel copies it from
 *    the page cache to the socket, and it never passes through this
 *    program's memory; elsewhere 64 KiB at a time. Never a whole file in
 *    memory either way.
 *  - Nothing outside the root (-r) is ever served. Every target that would
 *    lead out - "..", "%2e%2e", an encoded "/" ("%2f"), a NUL byte, an
 *    absolute-form target ("http://host/..."), a symbolic link that points
 *    out - gets the same answer: 404 Not Found, so that none tells more
 *    than another. The file is opened beneath the root with openat2()'s
 *    RESOLVE_BENEATH where Linux has it (the kernel refuses any way out,
 *    links included), and else checked with realpath().
 *  - An access log in Common Log Format on standard output (-l), written
 *    only when standard output can take it: a log that blocks never blocks
 *    the server (lines are dropped and counted instead).
 *
 * -U PATH listens on a Unix domain socket instead of TCP, as an application
 * behind a front server does (curl --unix-socket PATH http://localhost/).
 */
#if defined(__linux__) && !defined(_GNU_SOURCE)
#define _GNU_SOURCE /* sendfile, openat2 */
#endif

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netx.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#ifdef __linux__
#include <sys/sendfile.h>
#include <sys/syscall.h>
#ifdef SYS_openat2
#include <linux/openat2.h>
#endif
#endif

#include "http_parse.h"

static const char *prog = "http_server";

#define RESERVED_FDS   32
#define MAX_EVENTS     256
#define ACCEPT_BATCH   64
#define FD_PAUSE_MS    100
#define FILE_CHUNK     65536  /* read-and-send when there is no sendfile */
#define OUT_CAP        131072 /* a response's head, an error page, a chunk */
#define REQUESTS_AT_ONCE 8    /* pipelined requests answered per wake-up */
#define LOG_CAP        65536  /* access log lines waiting for stdout */

#define MAX_CLIENTS_LIMIT 100000UL
#define SECONDS_LIMIT     86400UL
#define GRACE_LIMIT       3600UL

/* Where a connection is in its request/response cycle. */
enum phase {
    READING,   /* reading a request's head */
    SENDING,   /* sending a response (its head, then its file) */
    CLOSING,   /* sending a last response, then closing */
};

struct conn {
    int fd;
    enum phase phase;
    netx_reader in;
    netx_writer out;
    struct http_request req;
    int head_lines;         /* lines of the current head read so far */
    long long head_since;   /* when its first byte came; -1: none yet */
    long long active_ms;    /* last activity, for -t */
    long long since_ms;     /* accepted, for -d */
    int file;               /* the file being sent, or -1 */
    off_t file_off;         /* where the rest of it starts */
    off_t file_left;        /* bytes of it still to send */
    int keep;               /* keep the connection after this response */
    int status;             /* for the access log */
    long long sent_body;    /* body bytes, for the access log */
    char request_line[160]; /* the start of it, for the access log */
    char peer[NETX_ADDRSTRLEN];
    struct conn *link[3][2];
    char storage[HTTP_LINE_MAX]; /* the reader's: bounds every line */
};

enum { BY_AGE = 0, BY_IDLE = 1, BY_HEAD = 2 };

struct list {
    struct conn *first;
    struct conn *last;
};

struct server {
    netx_poller *poller;
    int listener;
    const char *unix_path; /* -U: removed at exit */
    int root;              /* the document root, an open directory */
    char root_real[PATH_MAX];
    size_t nconns;
    size_t max_conns;   /* -n */
    long long idle_ms;  /* -t */
    long long life_ms;  /* -d */
    long long head_ms;  /* -T */
    long long grace_ms; /* -g */
    int log_on;         /* -l */
    struct list lists[3];
    long long now;
    long long accepts_paused_until;
    int fd_warned;
    int draining;
    char line[HTTP_LINE_MAX + 1];
    unsigned char chunk[FILE_CHUNK];
    char log[LOG_CAP];
    size_t log_len;
    unsigned long log_dropped;
};

static void usage(FILE *out)
{
    fprintf(out,
            "usage: %s [-r DIR] [-H HOST] [-p PORT | -U PATH] [-l] [-n MAX]\n"
            "       [-T SECONDS] [-t SECONDS] [-d SECONDS] [-g SECONDS]\n"
            "  Serve the files under DIR over HTTP/1.1 (GET and HEAD), e.g.:\n"
            "    %s -r public -p 8080     then open http://localhost:8080/\n"
            "  -r DIR      the document root (default: the current directory)\n"
            "  -H HOST     address to listen on (default localhost; '' for every interface)\n"
            "  -p PORT     port to listen on, 0 for any free one (default 12345)\n"
            "  -U PATH     listen on a Unix domain socket at PATH instead\n"
            "  -l          write an access log (Common Log Format) on stdout\n"
            "  -n MAX      most connections at once, 1 to 100000 (default 1000);\n"
            "              more are answered 503 and closed\n"
            "  -T SECONDS  the longest a request's head may take to arrive, 1 to\n"
            "              86400 (default 10): slower ones get 408 and are closed\n"
            "  -t SECONDS  close a kept-alive connection idle for that long, 0 to\n"
            "              86400 (default 60; 0: never)\n"
            "  -d SECONDS  close a connection open for that long, 0 to 86400\n"
            "              (default 0: never)\n"
            "  -g SECONDS  on SIGINT or SIGTERM, stop accepting and finish the\n"
            "              requests under way for at most this long, 0 to 3600\n"
            "              (default 5); a second signal stops at once\n"
            "  -h          show this help\n",
            prog, prog);
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

static size_t fit_fd_limit(size_t max_conns)
{
    struct rlimit rl;
    rlim_t need = (rlim_t)max_conns * 2 + RESERVED_FDS; /* a socket and a file each */
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY ||
        rl.rlim_cur >= need) {
        return max_conns;
    }
    struct rlimit raised = rl;
    raised.rlim_cur = rl.rlim_max != RLIM_INFINITY && rl.rlim_max < need ? rl.rlim_max : need;
    if (setrlimit(RLIMIT_NOFILE, &raised) == 0) {
        rl.rlim_cur = raised.rlim_cur;
    }
    if (rl.rlim_cur >= need) {
        return max_conns;
    }
    return rl.rlim_cur > RESERVED_FDS + 2 ? ((size_t)rl.rlim_cur - RESERVED_FDS) / 2 : 1;
}

/* ------------------------------------------------------------------------
 * The access log: never blocks the server
 * ------------------------------------------------------------------------ */

/* Write what the log holds, as far as standard output takes it now. */
static void log_flush(struct server *s)
{
    while (s->log_len > 0) {
        struct pollfd p = {.fd = 1, .events = POLLOUT, .revents = 0};
        if (poll(&p, 1, 0) != 1 || (p.revents & (POLLERR | POLLHUP | POLLNVAL)) != 0) {
            return; /* full, or nobody reads: keep the lines for later */
        }
        /* After POLLOUT a pipe takes PIPE_BUF bytes without waiting. */
        size_t n = s->log_len < PIPE_BUF ? s->log_len : PIPE_BUF;
        ssize_t w = write(1, s->log, n);
        if (w <= 0) {
            return;
        }
        memmove(s->log, s->log + w, s->log_len - (size_t)w);
        s->log_len -= (size_t)w;
    }
}

/* One Common Log Format line for the request c just answered:
 * 127.0.0.1 - - [29/Nov/2026:04:41:02 +0000] "GET / HTTP/1.1" 200 1234 */
static void log_request(struct server *s, const struct conn *c)
{
    if (!s->log_on) {
        return;
    }
    char when[40];
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    snprintf(when, sizeof when, "%02d/%s/%04d:%02d:%02d:%02d +0000", tm.tm_mday,
             http_month_name(tm.tm_mon), tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
    char line[512];
    int n = snprintf(line, sizeof line, "%s - - [%s] \"%s\" %d %lld\n", c->peer, when,
                     c->request_line, c->status, c->sent_body);
    if (n <= 0 || (size_t)n >= sizeof line || s->log_len + (size_t)n > LOG_CAP) {
        s->log_dropped++;
        return;
    }
    memcpy(s->log + s->log_len, line, (size_t)n);
    s->log_len += (size_t)n;
    log_flush(s);
}

/* ------------------------------------------------------------------------
 * Lists in the order the connections' time runs out (as in event_server)
 * ------------------------------------------------------------------------ */

static void list_remove(struct server *s, int which, struct conn *c)
{
    struct list *l = &s->lists[which];
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

static void list_append(struct server *s, int which, struct conn *c)
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

static void touch(struct server *s, struct conn *c)
{
    c->active_ms = s->now;
    if (s->idle_ms > 0 && s->lists[BY_IDLE].last != c) {
        list_remove(s, BY_IDLE, c);
        list_append(s, BY_IDLE, c);
    }
}

/* ------------------------------------------------------------------------
 * Connections
 * ------------------------------------------------------------------------ */

static void drop_conn(struct server *s, struct conn *c)
{
    netx_poller_del(s->poller, c->fd);
    for (int k = 0; k < 3; k++) {
        list_remove(s, k, c);
    }
    if (c->file >= 0) {
        close(c->file);
    }
    netx_writer_free(&c->out);
    netx_close(c->fd);
    free(c);
    s->nconns--;
}

/* Wait for what the phase needs: request bytes while reading, room while
 * sending. (While a response goes out, pipelined requests wait in the
 * socket: they are answered in order.) */
static void set_events(struct server *s, struct conn *c)
{
    unsigned events = c->phase == READING ? NETX_READABLE : NETX_WRITABLE;
    netx_poller_mod(s->poller, c->fd, events, c);
}

/* The start of the next request: its head timer is not running yet. */
static void await_request(struct server *s, struct conn *c)
{
    c->phase = READING;
    c->head_lines = 0;
    c->head_since = -1;
    list_remove(s, BY_HEAD, c);
    http_request_reset(&c->req);
}

static const char *reason(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 301:
        return "Moved Permanently";
    case 304:
        return "Not Modified";
    case 400:
        return "Bad Request";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 413:
        return "Content Too Large";
    case 414:
        return "URI Too Long";
    case 431:
        return "Request Header Fields Too Large";
    case 501:
        return "Not Implemented";
    case 503:
        return "Service Unavailable";
    case 505:
        return "HTTP Version Not Supported";
    default:
        return "Internal Server Error";
    }
}

/* Append to a response's head being built; -1 when it would not fit. */
static int head_add(char *head, size_t cap, size_t *len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(head + *len, cap - *len, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= cap - *len) {
        return -1;
    }
    *len += (size_t)n;
    return 0;
}

/*
 * A response's head - the status line, the headers every response has,
 * extra (one more header line without its CRLF, or NULL), the blank line -
 * and then body_len bytes of body, all handed to the writer at once. One
 * send, one TCP segment: a send per header line would put each on the wire
 * by itself (TCP_NODELAY) and cost a system call each.
 */
static int put_head(struct conn *c, int status, const char *type, long long length,
                    const char *extra, const char *body, size_t body_len)
{
    char head[HTTP_LINE_MAX + 1024]; /* extra may be a Location of a whole line */
    size_t len = 0;
    char date[40];
    http_format_date(time(NULL), date, sizeof date);
    c->status = status;
    const char *connection = !c->keep ? "close" : c->req.minor == 0 ? "keep-alive" : NULL;
    int rc = head_add(head, sizeof head, &len,
                      "HTTP/1.1 %d %s\r\n"
                      "Date: %s\r\n"
                      "Server: libnetx-http_server\r\n",
                      status, reason(status), date);
    if (rc == 0 && type != NULL) {
        rc = head_add(head, sizeof head, &len, "Content-Type: %s\r\n", type);
    }
    if (rc == 0 && length >= 0) {
        rc = head_add(head, sizeof head, &len, "Content-Length: %lld\r\n", length);
    }
    if (rc == 0 && connection != NULL) {
        rc = head_add(head, sizeof head, &len, "Connection: %s\r\n", connection);
    }
    if (rc == 0 && extra != NULL) {
        rc = head_add(head, sizeof head, &len, "%s\r\n", extra);
    }
    if (rc == 0) {
        rc = head_add(head, sizeof head, &len, "\r\n");
    }
    if (rc == 0 && body_len > sizeof head - len) {
        rc = -1;
    }
    if (rc != 0) {
        errno = ENOBUFS;
        return -1; /* cannot happen with the lines we make; drop, never cut */
    }
    if (body_len > 0) {
        memcpy(head + len, body, body_len);
        len += body_len;
    }
    return netx_writer_send(&c->out, head, len);
}

/* An answer with a small HTML page of its own: every error, and 301. */
static int answer(struct conn *c, int status, const char *extra_header)
{
    char body[256];
    int n = snprintf(body, sizeof body, "<!doctype html>\n<title>%d %s</title>\n<h1>%d %s</h1>\n",
                     status, reason(status), status, reason(status));
    int head_only = strcmp(c->req.method, "HEAD") == 0;
    if (status >= 400 && status != 404 && status != 405 && status != 403) {
        c->keep = 0; /* the request itself was wrong: do not trust what follows */
    }
    c->sent_body = head_only ? 0 : n;
    return put_head(c, status, "text/html; charset=utf-8", n, extra_header, body,
                    head_only ? 0 : (size_t)n);
}

/* The answer to an open() that failed with err: 403 for what may not be
 * read, 503 when we are out of descriptors or memory (the file may well be
 * there: try again later), and 404 for the rest - what is not there, and
 * every way out of the root. */
static int open_status(int err)
{
    if (err == EACCES || err == EPERM) {
        return 403;
    }
    if (err == EMFILE || err == ENFILE || err == ENOMEM) {
        return 503;
    }
    return 404;
}

/*
 * Open the file a target names, beneath the root: the descriptor, or -1
 * with the status to answer in *status (open_status()). O_NONBLOCK: a FIFO
 * would otherwise block the open - and the whole server - until a writer
 * came; with it the open returns, and fstat() then refuses what is not a
 * regular file. (It changes nothing for reading regular files.)
 */
static int open_beneath(struct server *s, const char *rel, int *status)
{
    const char *name = rel[0] != '\0' ? rel : ".";
    int fd = -1;
#if defined(SYS_openat2) && defined(RESOLVE_BENEATH)
    struct open_how how;
    memset(&how, 0, sizeof how);
    how.flags = O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK;
    how.resolve = RESOLVE_BENEATH; /* the kernel refuses every way out */
    fd = (int)syscall(SYS_openat2, s->root, name, &how, sizeof how);
    if (fd >= 0 || errno != ENOSYS) {
        *status = fd >= 0 ? 200 : open_status(errno);
        return fd;
    }
#endif
    /* No openat2: resolve every link ourselves, and check that the result
     * is still under the root before opening it. */
    char full[PATH_MAX];
    char real[PATH_MAX];
    size_t root_len = strlen(s->root_real);
    if (snprintf(full, sizeof full, "%s/%s", s->root_real, name) >= (int)sizeof full ||
        realpath(full, real) == NULL) {
        *status = open_status(errno);
        return -1;
    }
    if (strncmp(real, s->root_real, root_len) != 0 ||
        (real[root_len] != '/' && real[root_len] != '\0')) {
        *status = 404; /* a link that leads out */
        return -1;
    }
    fd = open(real, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    *status = fd >= 0 ? 200 : open_status(errno);
    return fd;
}

/*
 * The Location header for the directory rel ("docs", as http_target_path()
 * made it: decoded, no dot segments, no repeated slash), into buf:
 * "Location: /docs/" and the target's query. Built from rel, not from the
 * target as sent: "//docs" would give "//docs/", which a browser reads as
 * the host "docs" - a redirect off the site. Every byte but letters,
 * digits, "-._~" and "/" is percent-encoded again. Returns -1 when it does
 * not fit in cap.
 */
static int directory_location(const char *target, const char *rel, char *buf, size_t cap)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = (size_t)snprintf(buf, cap, "Location: /");
    for (const unsigned char *p = (const unsigned char *)rel; *p != '\0'; p++) {
        if (o + 4 > cap) {
            return -1;
        }
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
            strchr("-._~/", *p) != NULL) {
            buf[o++] = (char)*p;
        } else {
            buf[o++] = '%';
            buf[o++] = hex[*p >> 4];
            buf[o++] = hex[*p & 15];
        }
    }
    const char *q = strchr(target, '?');
    int n = snprintf(buf + o, cap - o, "%s%s", buf[o - 1] == '/' ? "" : "/", q != NULL ? q : "");
    return n >= 0 && (size_t)n < cap - o ? 0 : -1;
}

/* Answer the request whose head c has read. Returns 0, or -1 to drop c. */
static int respond(struct server *s, struct conn *c)
{
    struct http_request *r = &c->req;
    int get = strcmp(r->method, "GET") == 0;
    int head = strcmp(r->method, "HEAD") == 0;
    char rel[HTTP_LINE_MAX];
    c->keep = r->keep_alive && !s->draining;
    c->sent_body = 0;

    if (!get && !head) {
        if (r->has_body) {
            /* Its body is not read: left on the connection, it would be
             * taken for the next request (a smuggled one). Close after. */
            c->keep = 0;
        }
        return answer(c, http_method_known(r->method) ? 405 : 501, "Allow: GET, HEAD");
    }
    if (r->minor == 1 && !r->has_host) {
        return answer(c, 400, NULL); /* HTTP/1.1 requires Host */
    }
    if (r->bad_length) {
        return answer(c, 400, NULL);
    }
    if (r->has_body) {
        return answer(c, 413, NULL); /* a GET has no body: and we would have to read it */
    }
    if (http_target_path(r->target, rel, sizeof rel - sizeof "index.html") != 0) {
        return answer(c, 404, NULL); /* out of the root, in any of its forms */
    }
    size_t len = strlen(rel);
    if (len == 0 || rel[len - 1] == '/') {
        memcpy(rel + len, "index.html", sizeof "index.html");
    }
    int status;
    int fd = open_beneath(s, rel, &status);
    if (fd < 0) {
        return answer(c, status, NULL);
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        close(fd);
        return answer(c, 500, NULL);
    }
    if (S_ISDIR(st.st_mode)) {
        /* "/docs" is a directory: send the browser to "/docs/", so that the
         * page's relative links resolve inside it. */
        close(fd);
        char location[HTTP_LINE_MAX + 16]; /* as much as a head has room for */
        if (directory_location(r->target, rel, location, sizeof location) != 0) {
            return answer(c, 414, NULL); /* encoded again, it is too long */
        }
        return answer(c, 301, location);
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return answer(c, 403, NULL); /* a device, a socket, a pipe: never */
    }
    char modified[60];
    memcpy(modified, "Last-Modified: ", sizeof "Last-Modified: ");
    http_format_date(st.st_mtime, modified + strlen(modified), sizeof modified - strlen(modified));
    if (r->if_modified_since >= 0 && st.st_mtime <= r->if_modified_since) {
        close(fd);
        return put_head(c, 304, NULL, -1, modified, NULL, 0);
    }
    int rc = put_head(c, 200, http_content_type(rel), (long long)st.st_size, modified, NULL, 0);
    if (rc != 0 || head || st.st_size == 0) {
        close(fd);
        return rc;
    }
    c->file = fd;
    c->file_off = 0;
    c->file_left = st.st_size;
    return 0;
}

/* Send as much of the response as the socket takes now. 1 when all of it
 * is gone, 0 when some waits, -1 when the connection failed. */
static int send_response(struct server *s, struct conn *c)
{
    if (netx_writer_flush(&c->out) != 0) {
        return -1;
    }
    while (netx_writer_pending(&c->out) == 0 && c->file_left > 0) {
        ssize_t n;
#ifdef __linux__
        size_t want = c->file_left < (off_t)(1 << 20) ? (size_t)c->file_left : (size_t)1 << 20;
        n = sendfile(c->fd, c->file, &c->file_off, want);
        if (n < 0 && errno == EAGAIN) {
            return 0; /* the socket is full: wait for it */
        }
#else
        size_t want = c->file_left < FILE_CHUNK ? (size_t)c->file_left : FILE_CHUNK;
        n = pread(c->file, s->chunk, want, c->file_off);
        if (n > 0 && netx_writer_send(&c->out, s->chunk, (size_t)n) != 0) {
            return -1;
        }
        if (n > 0) {
            c->file_off += n;
        }
#endif
        if (n <= 0) {
            /* EPIPE, ECONNRESET; or the file shrank under us (0): the
             * Content-Length we sent is a promise we cannot keep. */
            return -1;
        }
        c->file_left -= n;
        c->sent_body += n;
        touch(s, c);
    }
    (void)s;
    if (netx_writer_pending(&c->out) > 0 || c->file_left > 0) {
        return 0;
    }
    if (c->file >= 0) {
        close(c->file);
        c->file = -1;
    }
    return 1;
}

/*
 * Read request lines while they are there. When a head is complete, answer
 * it. Returns 0 to keep the connection, -1 to drop it.
 */
static int read_requests(struct server *s, struct conn *c)
{
    for (int served = 0; served < REQUESTS_AT_ONCE && c->phase == READING;) {
        ssize_t n = netx_read_line(&c->in, s->line, sizeof s->line);
        if (n == 0) {
            return -1; /* the client closed (between requests, or mid-head) */
        }
        if (n < 0) {
            if (errno == EAGAIN) {
                if (c->head_since < 0 && netx_reader_buffered(&c->in) > 0) {
                    /* The first bytes of a request: its head timer starts. */
                    c->head_since = s->now;
                    list_append(s, BY_HEAD, c);
                }
                return 0;
            }
            if (errno != EMSGSIZE) {
                return -1; /* a reset: nothing to answer */
            }
            /* A line too long: the request line is 414, a header 431. */
            snprintf(c->request_line, sizeof c->request_line, "-");
            c->keep = 0;
            c->phase = CLOSING;
            return answer(c, c->head_lines == 0 ? 414 : 431, NULL);
        }
        touch(s, c);
        if (c->head_since < 0) {
            c->head_since = s->now;
            list_append(s, BY_HEAD, c);
        }
        size_t len = http_trim_eol(s->line, (size_t)n);
        int status = 0;
        if (c->head_lines == 0) {
            if (len == 0) {
                continue; /* RFC 9112 2.2: empty lines before a request are ignored */
            }
            snprintf(c->request_line, sizeof c->request_line, "%.*s", (int)len, s->line);
            status = http_parse_request_line(s->line, (size_t)n, &c->req);
        } else if (len > 0) {
            status = http_parse_header(s->line, (size_t)n, &c->req);
        }
        c->head_lines++;
        if (status != 0) {
            c->keep = 0;
            c->phase = CLOSING;
            return answer(c, status, NULL);
        }
        if (len == 0) {
            /* The blank line: the head is complete. */
            list_remove(s, BY_HEAD, c);
            served++;
            if (respond(s, c) != 0) {
                return -1;
            }
            c->phase = c->keep ? SENDING : CLOSING;
        }
    }
    return 0;
}

/* Serve one event of c; drops c when it is done. */
static void serve(struct server *s, struct conn *c)
{
    int rc = 0;
    for (int turns = 0; turns < REQUESTS_AT_ONCE && rc == 0; turns++) {
        if (c->phase == READING) {
            rc = read_requests(s, c);
            if (rc != 0 || c->phase == READING) {
                break; /* nothing more to read now */
            }
        }
        int done = send_response(s, c);
        if (done < 0) {
            rc = -1;
        } else if (done == 0) {
            break; /* the socket is full: wait for WRITABLE */
        } else {
            log_request(s, c);
            if (c->phase == CLOSING || !c->keep) {
                rc = -1; /* the answer is out (and a stop came): now close */
            } else {
                /* Keep-alive: the next request may be buffered already
                 * (pipelining); go round and read it. If nothing is, wait
                 * for the poller to say it came: a receive now would
                 * almost always find nothing (EAGAIN), a system call per
                 * request for nothing. */
                await_request(s, c);
                if (netx_reader_buffered(&c->in) == 0) {
                    break;
                }
            }
        }
    }
    if (rc != 0) {
        drop_conn(s, c);
    } else {
        set_events(s, c);
    }
}

/* Close what has run out of time. A head that takes too long is answered
 * 408 first. */
static void expire(struct server *s)
{
    while (s->lists[BY_HEAD].first != NULL &&
           s->now - s->lists[BY_HEAD].first->head_since >= s->head_ms) {
        struct conn *c = s->lists[BY_HEAD].first;
        list_remove(s, BY_HEAD, c);
        snprintf(c->request_line, sizeof c->request_line, "-");
        c->keep = 0;
        c->phase = CLOSING;
        if (answer(c, 408, NULL) != 0 || send_response(s, c) != 0) {
            log_request(s, c);
            drop_conn(s, c); /* sent at once (or failed): close */
        } else {
            set_events(s, c);
        }
    }
    while (s->idle_ms > 0 && s->lists[BY_IDLE].first != NULL &&
           s->now - s->lists[BY_IDLE].first->active_ms >= s->idle_ms) {
        drop_conn(s, s->lists[BY_IDLE].first);
    }
    while (s->life_ms > 0 && s->lists[BY_AGE].first != NULL &&
           s->now - s->lists[BY_AGE].first->since_ms >= s->life_ms) {
        drop_conn(s, s->lists[BY_AGE].first);
    }
}

static int wait_timeout(const struct server *s)
{
    const struct conn *h = s->lists[BY_HEAD].first;
    const struct conn *i = s->lists[BY_IDLE].first;
    const struct conn *a = s->lists[BY_AGE].first;
    long long d[4] = {h != NULL ? h->head_since + s->head_ms : -1,
                      s->idle_ms > 0 && i != NULL ? i->active_ms + s->idle_ms : -1,
                      s->life_ms > 0 && a != NULL ? a->since_ms + s->life_ms : -1,
                      s->accepts_paused_until > 0 ? s->accepts_paused_until : -1};
    long long due = -1;
    for (int k = 0; k < 4; k++) {
        if (d[k] >= 0 && (due < 0 || d[k] < due)) {
            due = d[k];
        }
    }
    if (s->log_len > 0 && (due < 0 || due > s->now + 100)) {
        due = s->now + 100; /* try the access log again soon */
    }
    if (due < 0) {
        return -1;
    }
    return due <= s->now ? 0 : (int)(due - s->now);
}

/* ------------------------------------------------------------------------
 * Accepting
 * ------------------------------------------------------------------------ */

static void add_conn(struct server *s, int fd, const netx_addr *peer)
{
    struct conn *c = calloc(1, sizeof *c);
    if (c == NULL) {
        netx_close(fd);
        return;
    }
    c->fd = fd;
    c->file = -1;
    c->active_ms = c->since_ms = s->now;
    if (netx_addr_format(peer, c->peer, sizeof c->peer) < 0) {
        snprintf(c->peer, sizeof c->peer, "-");
    }
    /* "127.0.0.1:51234" -> "127.0.0.1", as Common Log Format has it. */
    char *colon = strrchr(c->peer, ':');
    if (colon != NULL && peer->ss.ss_family != AF_UNIX) {
        *colon = '\0';
    }
    netx_reader_init(&c->in, fd, c->storage, sizeof c->storage);
    netx_writer_init(&c->out, fd, OUT_CAP);
    await_request(s, c);
    if (netx_poller_add(s->poller, fd, NETX_READABLE, c) != 0) {
        netx_close(fd);
        free(c);
        return;
    }
    list_append(s, BY_AGE, c);
    if (s->idle_ms > 0) {
        list_append(s, BY_IDLE, c);
    }
    s->nconns++;
}

/* Too many connections: one short answer, then close. */
static void refuse(int fd)
{
    static const char busy[] = "HTTP/1.1 503 Service Unavailable\r\n"
                               "Content-Length: 0\r\nConnection: close\r\nRetry-After: 1\r\n\r\n";
    (void)netx_send(fd, busy, sizeof busy - 1); /* a new socket has room */
    netx_shutdown(fd, SHUT_WR);
    netx_close(fd);
}

static int accept_conns(struct server *s)
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
        if (peer.ss.ss_family != AF_UNIX) {
            netx_set_nodelay(fd, 1);
        }
        if (s->nconns >= s->max_conns) {
            refuse(fd);
            netx_log("%s: refused a client with 503: at the limit of -n %zu connections", prog,
                     s->max_conns);
        } else {
            add_conn(s, fd, &peer);
        }
    }
    return 0;
}

/* ------------------------------------------------------------------------
 * The event loop
 * ------------------------------------------------------------------------ */

/* The first stop signal: stop accepting, close the connections that wait
 * for a request that has not begun, let the others finish theirs. */
static int start_drain(struct server *s)
{
    netx_poller_del(s->poller, s->listener);
    netx_close(s->listener);
    s->listener = -1;
    s->accepts_paused_until = 0;
    struct conn *c = s->lists[BY_AGE].first;
    while (c != NULL) {
        struct conn *next = c->link[BY_AGE][1];
        if (c->phase == READING && c->head_since < 0 && netx_reader_buffered(&c->in) == 0) {
            drop_conn(s, c); /* idle: nothing asked, nothing owed */
        } else {
            c->keep = 0; /* finish this request, then close */
        }
        c = next;
    }
    if (s->nconns == 0 || s->grace_ms == 0 || netx_stop_drain((int)s->grace_ms) != 0) {
        return 0;
    }
    s->draining = 1;
    netx_log("%s: stopping: letting %zu requests finish for up to %lld s "
             "(signal again to stop now)",
             prog, s->nconns, s->grace_ms / 1000);
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
                continue; /* dropped in this batch */
            }
            if (events[i].fd == s->listener) {
                if (accept_conns(s) != 0) {
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
        log_flush(s);
        if (s->draining && s->nconns == 0) {
            return 0;
        }
    }
}

int main(int argc, char **argv)
{
    const char *host = "localhost";
    const char *root = ".";
    uint16_t port = 12345;
    unsigned long max_conns = 1000;
    unsigned long head_s = 10;
    unsigned long idle_s = 60;
    unsigned long life_s = 0;
    unsigned long grace_s = 5;
    int opt;

    if (netx_stdio_reserve() != 0) {
        return 1;
    }
    static struct server s;
    opterr = 0;
    while ((opt = getopt(argc, argv, ":hH:p:U:r:ln:T:t:d:g:")) != -1) {
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
        case 'U':
            s.unix_path = optarg;
            break;
        case 'r':
            root = optarg;
            break;
        case 'l':
            s.log_on = 1;
            break;
        case 'n':
            max_conns = parse_number(opt, optarg, 1, MAX_CLIENTS_LIMIT);
            break;
        case 'T':
            head_s = parse_number(opt, optarg, 1, SECONDS_LIMIT);
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
    /* The root: a directory we can open, once; every file is opened
     * beneath this descriptor. */
    s.root = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (s.root < 0 || realpath(root, s.root_real) == NULL) {
        fprintf(stderr, "%s: document root %s: %s\n", prog, root, strerror(errno));
        return 1;
    }
    if (netx_stop_on(SIGINT) != 0 || netx_stop_on(SIGTERM) != 0) {
        fprintf(stderr, "%s: %s\n", prog, netx_last_error());
        return 1;
    }
#ifdef __linux__
    /* sendfile(2) has no MSG_NOSIGNAL: a client that goes away while its
     * file is being sent would raise SIGPIPE, whose default action ends
     * the server. Ignored, sendfile() fails with EPIPE instead, and only
     * that connection is dropped. (The library's own sends never raise it.) */
    signal(SIGPIPE, SIG_IGN);
#endif
    s.max_conns = fit_fd_limit(max_conns);
    s.head_ms = (long long)head_s * 1000;
    s.idle_ms = (long long)idle_s * 1000;
    s.life_ms = (long long)life_s * 1000;
    s.grace_ms = (long long)grace_s * 1000;
    s.now = now_ms();
    s.poller = netx_poller_new();
    s.listener = -1;
    if (s.poller != NULL) {
        s.listener = s.unix_path != NULL ? netx_unix_listen(s.unix_path, 0)
                                         : netx_tcp_listen(host, port, 0);
    }
    if (s.listener < 0 || netx_set_nonblocking(s.listener, 1) != 0 ||
        netx_poller_add(s.poller, s.listener, NETX_READABLE, NULL) != 0) {
        fprintf(stderr, "%s: %s\n", prog, netx_last_error());
        if (s.listener >= 0) {
            netx_close(s.listener);
        }
        netx_poller_free(s.poller);
        close(s.root);
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
        drop_conn(&s, s.lists[BY_AGE].first);
    }
    if (s.listener >= 0) {
        netx_poller_del(s.poller, s.listener);
        netx_close(s.listener);
    }
    if (s.unix_path != NULL && s.unix_path[0] != '@') {
        unlink(s.unix_path); /* ours: the next start must not find it stale */
    }
    log_flush(&s);
    if (s.log_dropped > 0) {
        netx_log("%s: %lu access log lines were dropped: standard output was not taking them",
                 prog, s.log_dropped);
    }
    netx_poller_free(s.poller);
    close(s.root);
    netx_log_flush();
    return status;
}
