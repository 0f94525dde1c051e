/*
 * http_client.c - the article's use case 1, the web, from the browser's
 * side: fetch a URL with HTTP/1.1 and print what the server sent.
 *
 *   $ ./http_client http://127.0.0.1:8080/hello.txt
 *   hello
 *   $ ./http_client -o page.html http://127.0.0.1:8080/docs
 *   http_client: 301 Moved Permanently: following http://127.0.0.1:8080/docs/
 *   $ ./http_client http://127.0.0.1:8080/nope
 *   http_client: 404 Not Found: http://127.0.0.1:8080/nope
 *
 * The request is a few lines of text. Connection: close says this
 * connection carries one request, so the server closes it after its
 * answer, and nothing is left to keep track of between requests:
 *
 *   GET /hello.txt HTTP/1.1
 *   Host: 127.0.0.1:8080
 *   User-Agent: libnetx-http_client
 *   Connection: close
 *
 * The answer starts with a head - a status line ("HTTP/1.1 200 OK") and
 * header lines, up to an empty line - read line by line with
 * netx_read_line(). Then comes the body, and the head says where it ends,
 * in one of three ways (its framing):
 *
 *   Content-Length: N           exactly N bytes; fewer is an error, never a
 *                               shorter file passed off as the whole one
 *   Transfer-Encoding: chunked  chunks, each after a line with its size in
 *                               hex, up to a chunk of size 0 (RFC 9112, 7.1)
 *   neither                     the body ends when the connection does
 *
 * A server's bytes are bounded before they are believed, so a broken or
 * hostile server can make us fail but not hang or eat memory: a head line
 * (or chunk-size line) of at most 8 KiB, at most 100 header lines, a chunk
 * size that fits in 64 bits (checked before it can overflow), at most 5
 * redirects (two URLs redirecting to each other would go on for ever), and
 * -t MS for connecting and for each send and receive (a server that stops
 * in the middle of the body is an error after MS, not a wait for ever).
 * The body itself is never held whole: it goes out 64 KiB at a time.
 *
 * Redirects (301, 302, 303, 307, 308) are followed to their Location,
 * absolute or relative to the URL, and said on standard error. A status of
 * 400 or more prints nothing but one line on standard error, and exits 1
 * (as `curl -f` does): a script never takes an error page for the file it
 * asked for. Any status below 400 exits 0.
 *
 * -o FILE writes to a temporary file beside FILE and renames it to FILE
 * once the body is complete, so FILE is never half a download; Ctrl-C ends
 * the wait (netx_stop_on()) and the temporary file is removed.
 *
 * --unix-socket PATH connects to a Unix socket instead of HOST:PORT, as
 * curl's option does, for a web application behind a local socket; the
 * request is the same, Host header and all.
 *
 * https:// needs the TLS build (make TLS=1), which compiles this file with
 * NETX_HTTP_TLS: the server's certificate is then checked against the
 * system's CAs (or those in the file SSL_CERT_FILE names) and against the
 * URL's host. Over TLS a body without a length must end with TLS's
 * close_notify: a connection merely cut is not taken for the end.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <netx.h>
#ifdef NETX_HTTP_TLS
#include <netx_tls.h>
#endif
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h> /* strcasecmp, strncasecmp */
#include <unistd.h>

#define LINE_MAX_BYTES 8192 /* the longest head line, its line end included */
#define HEADERS_MAX    100  /* the most header lines in one head */
#define INTERIM_MAX    5    /* the most 1xx answers before the real one */
#define REDIRECTS_MAX  5
#define HOST_MAX       255  /* the longest host name DNS allows */
#define URL_MAX        8192 /* the longest URL we take (a Location is a head line) */
#define UNTIL_CLOSE    ULLONG_MAX

#define ALNUM "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

#ifdef NETX_HTTP_TLS
#define HTTPS_HELP                                                                                 \
    "  https:// too: the certificate is checked against the system's CAs (or\n"                    \
    "  SSL_CERT_FILE's) and the URL's host.\n"
#else
#define HTTPS_HELP "  (https:// needs the TLS build: make TLS=1)\n"
#endif

static const char *prog = "http_client";

static void usage(FILE *out)
{
    fprintf(out,
            "usage: %s [-I] [-o FILE] [-t MS] [--unix-socket PATH] URL\n"
            "  Fetch URL (http://HOST[:PORT]/PATH?QUERY) with HTTP/1.1 and print its\n"
            "  body. Redirects are followed, 5 at most; a status of 400 or more prints\n"
            "  nothing but one line on standard error, and exits 1.\n" HTTPS_HELP
            "  -I                  ask for the head only (HEAD) and print the status line\n"
            "                      and the headers\n"
            "  -o FILE             write to FILE, which appears only once complete\n"
            "  -t MS               give up when connecting, or any receive or send, takes\n"
            "                      longer than MS milliseconds, 1 to 3600000 (default 10000)\n"
            "  --unix-socket PATH  connect to the Unix socket PATH instead of HOST:PORT\n"
            "  -h                  show this help\n",
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

/* A failure at run time: one line saying why; returns -1 for the caller. */
static int fail(const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s: ", prog);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return -1;
}

/* The -t value: whole milliseconds from 1 to 3600000, digits only, so
 * " 5", "+5" and "5x" are refused (strtol() alone would take them). */
static int parse_ms(const char *text)
{
    size_t len = strlen(text);
    long ms = -1;
    if (len > 0 && len <= 9 && strspn(text, "0123456789") == len) {
        ms = strtol(text, NULL, 10);
    }
    if (ms < 1 || ms > 3600000) {
        bad_usage("-t \"%s\": not a number of milliseconds from 1 to 3600000", text);
    }
    return (int)ms;
}

/* ---- URLs -------------------------------------------------------------- */

struct url {
    int tls;                       /* https:// */
    char host[HOST_MAX + 1];       /* to connect to: "example.org", "::1" */
    uint16_t port;                 /* 80 or 443 unless the URL says */
    char authority[HOST_MAX + 16]; /* for the Host header: "[::1]:8080" */
    char target[URL_MAX + 2];      /* the path and query: "/docs/?s=1" */
    char text[URL_MAX + 16];       /* the whole URL, for messages */
};

/*
 * Take the dot segments out of path, in place, as RFC 3986 (5.2.4) does:
 * "/a/b/../c/./d" becomes "/a/c/d", so a relative Location "../c" works.
 * path starts with '/'; it never grows.
 */
static void remove_dot_segments(char *path)
{
    char *out = path;      /* the end of what is kept */
    const char *in = path; /* at the '/' before the next segment */
    while (*in != '\0') {
        const char *segment = in + 1;
        size_t len = strcspn(segment, "/");
        int dot = len == 1 && segment[0] == '.';
        int dotdot = len == 2 && segment[0] == '.' && segment[1] == '.';
        if (dotdot) {
            while (out > path && *--out != '/') { /* drop the segment kept last */
            }
        }
        if (!dot && !dotdot) {
            memmove(out, in, len + 1); /* keep "/segment" */
            out += len + 1;
        } else if (segment[len] == '\0') {
            *out++ = '/'; /* "/a/." and "/a/b/.." end in a directory: "/a/" */
        }
        in = segment + len;
    }
    *out = '\0';
}

/*
 * Parse text, an absolute URL, into u. Returns 0, or -1 with the reason in
 * why (one line).
 */
static int url_parse(struct url *u, const char *text, char *why, size_t cap)
{
    size_t len = strlen(text);
    /* First of all, as the URL goes into the request line and into
     * messages: no space, control character or byte beyond ASCII. */
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)text[i];
        if (c <= ' ' || c >= 0x7f) {
            snprintf(why, cap,
                     "the URL has a space, a control character or a byte beyond ASCII at "
                     "byte %zu: percent-encode it (a space is %%20)",
                     i + 1);
            return -1;
        }
    }
    if (len > URL_MAX) {
        snprintf(why, cap, "the URL is longer than %d bytes", URL_MAX);
        return -1;
    }

    /* The scheme: http or https, in any case, then "://". */
    const char *sep = strstr(text, "://");
    size_t scheme_len = sep != NULL ? (size_t)(sep - text) : 0;
    if (scheme_len == 0 || strspn(text, ALNUM "+-.") < scheme_len) {
        snprintf(why, cap, "URL \"%s\": no scheme: it must start with http://", text);
        return -1;
    }
    if (scheme_len == 4 && strncasecmp(text, "http", 4) == 0) {
        u->tls = 0;
        u->port = 80;
    } else if (scheme_len == 5 && strncasecmp(text, "https", 5) == 0) {
#ifdef NETX_HTTP_TLS
        u->tls = 1;
        u->port = 443;
#else
        snprintf(why, cap, "URL \"%s\": https:// needs the TLS build: make TLS=1", text);
        return -1;
#endif
    } else {
        snprintf(why, cap, "URL \"%s\": unknown scheme \"%.*s\"", text, (int)scheme_len, text);
        return -1;
    }

    /* The authority, up to the path: a name, an IPv4 address or an IPv6
     * one in brackets, then ":PORT" perhaps. User names ("user@host") and
     * IPv6 zones ("%eth0") are refused with the other strange hosts. */
    const char *auth = sep + 3;
    size_t auth_len = strcspn(auth, "/?#");
    const char *host = auth;
    size_t host_len;
    const char *after; /* the first byte after the host */
    if (auth[0] == '[') {
        const char *bracket = memchr(auth, ']', auth_len);
        host = auth + 1;
        host_len = bracket != NULL ? (size_t)(bracket - host) : 0;
        if (bracket == NULL || strspn(host, "0123456789abcdefABCDEF:.") < host_len) {
            snprintf(why, cap, "URL \"%s\": a bad IPv6 address", text);
            return -1;
        }
        after = bracket + 1;
    } else {
        host_len = strcspn(auth, ":/?#");
        if (strspn(host, ALNUM "-._") < host_len) {
            snprintf(why, cap, "URL \"%s\": a bad host name", text);
            return -1;
        }
        after = host + host_len;
    }
    if (host_len == 0 || host_len > HOST_MAX) {
        snprintf(why, cap, "URL \"%s\": %s", text,
                 host_len == 0 ? "no host" : "a host name longer than 255 bytes");
        return -1;
    }
    if (after < auth + auth_len) {
        size_t port_len = (size_t)(auth + auth_len - after) - 1; /* after the ':' */
        char port_text[8] = "";
        if (port_len < sizeof port_text) {
            memcpy(port_text, after + 1, port_len);
            port_text[port_len] = '\0';
        }
        if (*after != ':' || port_len == 0 || port_len >= sizeof port_text ||
            netx_parse_port(port_text, &u->port) != 0 || u->port == 0) {
            snprintf(why, cap, "URL \"%s\": a bad port: it must be 1 to 65535", text);
            return -1;
        }
    }
    snprintf(u->host, sizeof u->host, "%.*s", (int)host_len, host);
    snprintf(u->authority, sizeof u->authority, "%.*s", (int)auth_len, auth);

    /* The target: the path without its dot segments ("/" when there is
     * none), then the query. A fragment ("#top") is never sent. */
    const char *path = auth + auth_len;
    size_t path_len = strcspn(path, "?#");
    size_t query_len = strcspn(path + path_len, "#");
    snprintf(u->target, sizeof u->target, "%s%.*s", path[0] == '/' ? "" : "/", (int)path_len, path);
    remove_dot_segments(u->target);
    size_t used = strlen(u->target);
    snprintf(u->target + used, sizeof u->target - used, "%.*s", (int)query_len, path + path_len);
    snprintf(u->text, sizeof u->text, "%s://%s%s", u->tls ? "https" : "http", u->authority,
             u->target);
    return 0;
}

/*
 * The URL a Location header names, seen from base (RFC 3986, 5.2):
 * absolute ("http://host/x"), without a scheme ("//host/x"), an absolute
 * path ("/x"), a query ("?x"), or relative to base's directory ("x",
 * "../x"). Returns 0, or -1 with the reason in why.
 */
static int url_resolve(struct url *out, const struct url *base, const char *location, char *why,
                       size_t cap)
{
    char joined[URL_MAX + 1];
    const char *scheme = base->tls ? "https" : "http";
    size_t scheme_len = strspn(location, ALNUM "+-.");
    int n;
    if (isalpha((unsigned char)location[0]) && location[scheme_len] == ':') {
        n = snprintf(joined, sizeof joined, "%s", location);
    } else if (location[0] == '/' && location[1] == '/') {
        n = snprintf(joined, sizeof joined, "%s:%s", scheme, location);
    } else {
        /* How much of base's target comes before location: none for an
         * absolute path, the path for a query, up to the last '/' of the
         * path for a relative one, all of it for "" or a fragment. */
        size_t keep = strlen(base->target);
        if (location[0] == '/') {
            keep = 0;
        } else if (location[0] == '?') {
            keep = strcspn(base->target, "?");
        } else if (location[0] != '\0' && location[0] != '#') {
            keep = strcspn(base->target, "?");
            while (base->target[keep - 1] != '/') { /* the target starts with '/' */
                keep--;
            }
        }
        n = snprintf(joined, sizeof joined, "%s://%s%.*s%s", scheme, base->authority, (int)keep,
                     base->target, location);
    }
    if (n < 0 || (size_t)n >= sizeof joined) {
        snprintf(why, cap, "the URL is longer than %d bytes", URL_MAX);
        return -1;
    }
    return url_parse(out, joined, why, cap);
}

/* ---- Where the body goes ------------------------------------------------ */

/*
 * Standard output, or with -o FILE a temporary file beside FILE (the same
 * directory, so the same file system: rename(2) then replaces FILE in one
 * step), renamed to FILE once complete.
 */
struct output {
    FILE *f;
    const char *name; /* FILE, or NULL for standard output */
    char tmp[4096];   /* "FILE.PID.part" */
};

static int output_open(struct output *o, const char *name)
{
    o->f = stdout;
    o->name = name;
    if (name == NULL) {
        return 0;
    }
    int n = snprintf(o->tmp, sizeof o->tmp, "%s.%ld.part", name, (long)getpid());
    if (n < 0 || (size_t)n >= sizeof o->tmp) {
        return fail("-o %s: the name is too long", name);
    }
    /* "x": never write over a file that is there already (C11). */
    o->f = fopen(o->tmp, "wbx");
    if (o->f == NULL) {
        return fail("create %s: %s", o->tmp, strerror(errno));
    }
    return 0;
}

static int output_write(struct output *o, const void *buf, size_t len)
{
    if (fwrite(buf, 1, len, o->f) != len) {
        return fail("write %s: %s", o->name != NULL ? o->tmp : "standard output", strerror(errno));
    }
    return 0;
}

/* A line of the head, for -I. */
static int output_line(struct output *o, const char *line, size_t len)
{
    if (output_write(o, line, len) != 0 || output_write(o, "\n", 1) != 0) {
        return -1;
    }
    return 0;
}

/* A failure: whatever went to standard output stays; the temporary file
 * goes. */
static void output_abandon(struct output *o)
{
    if (o->name == NULL) {
        fflush(stdout);
        return;
    }
    fclose(o->f);
    unlink(o->tmp);
}

/* All is there: flush it, and give FILE its name. */
static int output_finish(struct output *o)
{
    if (o->name == NULL) {
        return fflush(stdout) == 0 ? 0 : fail("write standard output: %s", strerror(errno));
    }
    /* fsync(2) before the rename: after a crash, FILE is whole or absent. */
    int err = 0;
    if (fflush(o->f) != 0 || fsync(fileno(o->f)) != 0) {
        err = errno;
    }
    if (fclose(o->f) != 0 && err == 0) {
        err = errno;
    }
    if (err == 0 && rename(o->tmp, o->name) != 0) {
        err = errno;
    }
    if (err != 0) {
        unlink(o->tmp);
        return fail("write %s: %s", o->name, strerror(err));
    }
    return 0;
}

/* ---- The connection ---------------------------------------------------- */

struct conn {
    int fd;
    netx_reader reader; /* the answer is read through it: lines and bytes */
#ifdef NETX_HTTP_TLS
    netx_tls *tls; /* for https://; NULL for http:// */
#endif
};

/*
 * Workflow steps 1-2: connect to u's host and port (or to the Unix socket at
 * unix_path), and for https:// make the TLS handshake. Returns 0, or -1
 * with the library's error recorded (netx_last_error()).
 */
static int conn_open(struct conn *c, const struct url *u, const char *unix_path, int timeout_ms)
{
    /* One connection at a time uses it; 64 KiB is a lot for a stack. */
    static char storage[64 * 1024];

    c->fd = unix_path != NULL ? netx_unix_connect(unix_path, timeout_ms)
                              : netx_tcp_connect(u->host, u->port, timeout_ms);
    if (c->fd < 0) {
        return -1;
    }
    /* A server that stops answering must not keep us for ever: bound each
     * receive and send. */
    if (netx_set_timeout(c->fd, timeout_ms) != 0) {
        netx_close(c->fd);
        return -1;
    }
#ifdef NETX_HTTP_TLS
    c->tls = NULL;
    if (u->tls) {
        netx_tls_config *config = netx_tls_client_config(); /* the system's CAs */
        if (config == NULL) {
            netx_close(c->fd);
            return -1;
        }
        /* From here on the TLS connection owns fd; on failure it is closed. */
        c->tls = netx_tls_connect(config, c->fd, u->host, timeout_ms);
        netx_tls_config_free(config);
        if (c->tls == NULL) {
            return -1;
        }
        /* Nothing here is NULL or 0: the reader's init cannot fail. */
        netx_tls_reader_init(&c->reader, c->tls, storage, sizeof storage);
        return 0;
    }
#endif
    netx_reader_init(&c->reader, c->fd, storage, sizeof storage);
    return 0;
}

static int conn_send(struct conn *c, const char *buf, size_t len)
{
#ifdef NETX_HTTP_TLS
    if (c->tls != NULL) {
        return netx_tls_send_all(c->tls, buf, len);
    }
#endif
    return netx_send_all(c->fd, buf, len);
}

/* Workflow step 5. Over TLS, close_notify first. Its failure does not matter here:
 * what we read is complete, or we have said why not. */
static void conn_close(struct conn *c)
{
#ifdef NETX_HTTP_TLS
    if (c->tls != NULL) {
        netx_tls_close(c->tls);
        return;
    }
#endif
    netx_close(c->fd);
}

/*
 * One line of the head, or of a chunked body's framing (part names which,
 * for messages), into line (LINE_MAX_BYTES + 1 bytes), without its line
 * end: "\r\n", or a bare "\n", which RFC 9112 lets a client accept.
 * Returns its length, or -1 after saying why.
 */
static ssize_t read_line(struct conn *c, char *line, const char *part)
{
    ssize_t n = netx_read_line(&c->reader, line, LINE_MAX_BYTES + 1);
    if (n < 0 && errno == EMSGSIZE) {
        return fail("the server sent a line of %s longer than %d bytes", part, LINE_MAX_BYTES);
    }
    if (n < 0) {
        return fail("%s", netx_last_error());
    }
    /* The last line of a stream may come without its '\n': cut short. */
    if (n == 0 || line[n - 1] != '\n') {
        return fail("the server closed the connection in the middle of %s", part);
    }
    line[--n] = '\0';
    if (n > 0 && line[n - 1] == '\r') {
        line[--n] = '\0';
    }
    return n;
}

/* ---- The answer -------------------------------------------------------- */

struct response {
    int status;                        /* 200 */
    char status_text[80];              /* "200 OK", made printable */
    long long length;                  /* Content-Length, or -1: none */
    int chunked;                       /* Transfer-Encoding: chunked */
    char location[LINE_MAX_BYTES + 1]; /* Location, or "" */
};

/* The answers we follow: the URL moved, the Location header says where. */
static int is_redirect(int status)
{
    return status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
}

/* The answers whose head (-I) or body we print: the final ones below 400. */
static int is_printed(int status)
{
    return status >= 200 && status < 400 && !is_redirect(status);
}

/* "HTTP/1.1 404 Not Found" into r. Returns 0, or -1 if it is not that. */
static int parse_status(struct response *r, const char *line)
{
    if (strncmp(line, "HTTP/1.", 7) != 0 || !isdigit((unsigned char)line[7]) || line[8] != ' ' ||
        strspn(line + 9, "0123456789") != 3 || (line[12] != ' ' && line[12] != '\0') ||
        line[9] == '0') {
        return -1;
    }
    r->status = (line[9] - '0') * 100 + (line[10] - '0') * 10 + (line[11] - '0');
    /* "404 Not Found" goes into our messages, and the reason phrase is
     * the server's text: printable ASCII only, so a message stays one
     * clean line, and cut short if need be. */
    size_t i = 0;
    for (const char *p = line + 9; *p != '\0' && i < sizeof r->status_text - 1; p++) {
        unsigned char c = (unsigned char)*p;
        r->status_text[i++] = c >= ' ' && c < 0x7f ? (char)c : '?';
    }
    r->status_text[i] = '\0';
    return 0;
}

/* One header line, "Name: value": keep what the framing and redirects
 * need. Returns 0, or -1 after saying why. */
static int parse_header(struct response *r, char *line)
{
    /* No space before the colon (RFC 9112, 5.1), which also refuses the
     * obsolete continuation lines that start with a space. */
    char *colon = strchr(line, ':');
    if (colon == NULL || colon == line || strcspn(line, " \t") < (size_t)(colon - line)) {
        return fail("the server sent a header line that is not \"Name: value\"");
    }
    *colon = '\0';
    char *value = colon + 1 + strspn(colon + 1, " \t");
    size_t len = strlen(value);
    while (len > 0 && (value[len - 1] == ' ' || value[len - 1] == '\t')) {
        value[--len] = '\0';
    }

    if (strcasecmp(line, "Content-Length") == 0) {
        /* Digits only, few enough to fit; and two different lengths
         * would leave the end of the body to a guess (RFC 9112, 6.3). */
        long long length = -1;
        if (len > 0 && len <= 18 && strspn(value, "0123456789") == len) {
            length = strtoll(value, NULL, 10);
        }
        if (length < 0 || (r->length >= 0 && length != r->length)) {
            return fail("the server sent a bad Content-Length");
        }
        r->length = length;
    } else if (strcasecmp(line, "Transfer-Encoding") == 0) {
        if (strcasecmp(value, "chunked") != 0) {
            return fail("the server sent a Transfer-Encoding other than chunked, which this "
                        "client does not decode");
        }
        r->chunked = 1;
    } else if (strcasecmp(line, "Location") == 0) {
        memcpy(r->location, value, len + 1);
    }
    return 0;
}

/*
 * Read the head of the answer into r: its status line and headers. With
 * show (for -I), print them there, when the answer is one we print.
 * Interim answers (1xx, such as 103 Early Hints) may come first, each
 * with a head of its own: they are read and passed over. Returns 0, or -1
 * after saying why.
 */
static int read_head(struct conn *c, struct response *r, struct output *show)
{
    char line[LINE_MAX_BYTES + 1];
    for (int interim = 0;; interim++) {
        ssize_t n = read_line(c, line, "the head");
        if (n < 0) {
            return -1;
        }
        if (parse_status(r, line) != 0) {
            return fail("the server did not answer with an HTTP/1.x status line");
        }
        /* With -I, each line is printed as it came (before parse_header()
         * takes it apart), up to the empty line that ends the head. */
        struct output *print = is_printed(r->status) ? show : NULL;
        if (print != NULL && output_line(print, line, (size_t)n) != 0) {
            return -1;
        }
        r->length = -1;
        r->chunked = 0;
        r->location[0] = '\0';
        for (int headers = 0;; headers++) {
            n = read_line(c, line, "the head");
            if (n < 0 || (print != NULL && output_line(print, line, (size_t)n) != 0)) {
                return -1;
            }
            if (n == 0) {
                break;
            }
            if (headers == HEADERS_MAX) {
                return fail("the server sent more than %d header lines", HEADERS_MAX);
            }
            if (parse_header(r, line) != 0) {
                return -1;
            }
        }
        if (r->status >= 200) {
            return 0;
        }
        if (interim == INTERIM_MAX) {
            return fail("the server sent more than %d interim (1xx) answers", INTERIM_MAX);
        }
    }
}

/*
 * Copy body bytes to out: n of them, or all until the server closes the
 * connection when n is UNTIL_CLOSE. Adds to *copied what it copied.
 * Returns 0 when it got n bytes or the stream ended (the caller compares),
 * or -1 after saying why.
 */
static int copy_body(struct conn *c, struct output *out, unsigned long long n,
                     unsigned long long *copied)
{
    static char buf[64 * 1024];
    while (n > 0) {
        size_t want = n < sizeof buf ? (size_t)n : sizeof buf;
        /* netx_read_n() waits for all of want, each receive bounded by -t. */
        ssize_t got = netx_read_n(&c->reader, buf, want);
        if (got < 0) {
            return fail("%s", netx_last_error());
        }
        if (output_write(out, buf, (size_t)got) != 0) {
            return -1;
        }
        *copied += (unsigned long long)got;
        if ((size_t)got < want) {
            return 0; /* the end of the stream */
        }
        n -= (unsigned long long)got;
    }
    return 0;
}

/*
 * A chunked body (RFC 9112, 7.1): chunks, each a line with its size in
 * hex (and perhaps ";name=value" extensions, which we pass over), that
 * many bytes and a line end; then a chunk of size 0, trailer lines (passed
 * over too) and an empty line. Returns 0, or -1 after saying why.
 */
static int copy_chunked(struct conn *c, struct output *out)
{
    char line[LINE_MAX_BYTES + 1];
    unsigned long long copied = 0;
    for (;;) {
        if (read_line(c, line, "the chunked body") < 0) {
            return -1;
        }
        const char *p = line;
        unsigned long long size = 0;
        if (!isxdigit((unsigned char)*p)) {
            return fail("the server sent a bad chunk size");
        }
        for (; isxdigit((unsigned char)*p); p++) {
            if ((size >> 60) != 0) { /* one more digit would not fit */
                return fail("the server sent a chunk size of 2^64 bytes or more");
            }
            int digit =
                isdigit((unsigned char)*p) ? *p - '0' : tolower((unsigned char)*p) - 'a' + 10;
            size = size * 16 + (unsigned)digit;
        }
        p += strspn(p, " \t");
        if (*p != '\0' && *p != ';') {
            return fail("the server sent a bad chunk size");
        }
        if (size == 0) {
            break;
        }
        unsigned long long before = copied;
        if (copy_body(c, out, size, &copied) != 0) {
            return -1;
        }
        if (copied - before < size) {
            return fail("the server closed the connection in the middle of the chunked body, "
                        "after %llu bytes",
                        copied);
        }
        ssize_t n = read_line(c, line, "the chunked body");
        if (n < 0) {
            return -1;
        }
        if (n > 0) {
            return fail("the server sent a chunk longer than its size");
        }
    }
    /* The trailer lines, bounded as headers are, up to the empty line. */
    for (int trailers = 0;; trailers++) {
        ssize_t n = read_line(c, line, "the chunked body");
        if (n <= 0) {
            return (int)n;
        }
        if (trailers == HEADERS_MAX) {
            return fail("the server sent more than %d trailer lines", HEADERS_MAX);
        }
    }
}

/* The body of r, as its head frames it, to out. Returns 0, or -1 after
 * saying why. */
static int read_body(struct conn *c, const struct response *r, struct output *out)
{
    unsigned long long copied = 0;
    if (r->status == 204 || r->status == 304) {
        return 0; /* never a body */
    }
    if (r->chunked) { /* chunked wins over a Content-Length (RFC 9112, 6.3) */
        return copy_chunked(c, out);
    }
    if (r->length < 0) {
        return copy_body(c, out, UNTIL_CLOSE, &copied);
    }
    if (copy_body(c, out, (unsigned long long)r->length, &copied) != 0) {
        return -1;
    }
    if (copied < (unsigned long long)r->length) {
        return fail("the server closed the connection after %llu of %lld bytes", copied, r->length);
    }
    return 0;
}

/*
 * Fetch url, following redirects, into out: one connection, one request,
 * one answer each. Returns 0, or -1 after saying why.
 */
static int fetch(struct url *url, const char *unix_path, int head_only, int timeout_ms,
                 struct output *out)
{
    static struct response r; /* static: 8 KiB of Location */
    static struct url next;
    char why[URL_MAX + 256];

    for (int redirects = 0;; redirects++) {
        /* Always fits: the target is at most URL_MAX + 1 bytes. */
        char request[URL_MAX + 512];
        int len = snprintf(request, sizeof request,
                           "%s %s HTTP/1.1\r\n"
                           "Host: %s\r\n"
                           "User-Agent: libnetx-http_client\r\n"
                           "Connection: close\r\n"
                           "\r\n",
                           head_only ? "HEAD" : "GET", url->target, url->authority);

        struct conn c;
        if (conn_open(&c, url, unix_path, timeout_ms) != 0) {
            return fail("%s", netx_last_error());
        }
        int rc = conn_send(&c, request, (size_t)len);
        if (rc != 0) {
            fail("%s", netx_last_error());
        } else {
            rc = read_head(&c, &r, head_only ? out : NULL);
        }
        if (rc == 0 && !head_only && is_printed(r.status)) {
            rc = read_body(&c, &r, out);
        }
        conn_close(&c);
        if (rc != 0) {
            return -1;
        }
        if (r.status >= 400) {
            return fail("%s: %s", r.status_text, url->text);
        }
        if (!is_redirect(r.status)) {
            return 0;
        }

        /* A redirect; its body, if any, is not read: we closed instead. */
        if (r.location[0] == '\0') {
            return fail("%s without a Location header: %s", r.status_text, url->text);
        }
        if (url_resolve(&next, url, r.location, why, sizeof why) != 0) {
            return fail("%s: a bad Location: %s", r.status_text, why);
        }
        if (redirects == REDIRECTS_MAX) {
            return fail("%s: more than %d redirects, not following %s", r.status_text,
                        REDIRECTS_MAX, next.text);
        }
        fprintf(stderr, "%s: %s: following %s\n", prog, r.status_text, next.text);
        *url = next;
    }
}

int main(int argc, char **argv)
{
    static struct url url;
    char why[URL_MAX + 256];
    const char *unix_path = NULL;
    const char *out_name = NULL;
    int head_only = 0;
    int timeout_ms = 10 * 1000;
    int opt;

    /* getopt() knows only short options: take --unix-socket PATH out of
     * argv first. */
    int kept = 1;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0) {
            while (i < argc) {
                argv[kept++] = argv[i++];
            }
            break;
        }
        if (strcmp(argv[i], "--unix-socket") == 0) {
            if (i + 1 == argc) {
                bad_usage("option --unix-socket needs a value");
            }
            unix_path = argv[++i];
        } else if (strncmp(argv[i], "--", 2) == 0) {
            bad_usage("unknown option %s", argv[i]);
        } else {
            argv[kept++] = argv[i];
        }
    }
    argc = kept;
    argv[argc] = NULL;

    opterr = 0; /* we print our own messages */
    while ((opt = getopt(argc, argv, ":hIo:t:")) != -1) {
        switch (opt) {
        case 'h':
            usage(stdout);
            return 0;
        case 'I':
            head_only = 1;
            break;
        case 'o':
            out_name = optarg;
            break;
        case 't':
            timeout_ms = parse_ms(optarg);
            break;
        case ':':
            bad_usage("option -%c needs a value", optopt);
            break;
        default:
            bad_usage("unknown option -%c", optopt);
        }
    }
    if (optind == argc) {
        bad_usage("no URL");
    }
    if (optind + 1 < argc) {
        bad_usage("unexpected argument \"%s\"", argv[optind + 1]);
    }
    if (url_parse(&url, argv[optind], why, sizeof why) != 0) {
        bad_usage("%s", why);
    }

    /* Ctrl-C (or SIGTERM) ends the wait we are in, with ECANCELED, so that
     * the temporary file of -o is removed, not left behind. */
    netx_stop_on(SIGINT);
    netx_stop_on(SIGTERM);

    struct output out;
    if (output_open(&out, out_name) != 0) {
        return 1;
    }
    if (fetch(&url, unix_path, head_only, timeout_ms, &out) != 0) {
        output_abandon(&out);
        return 1;
    }
    return output_finish(&out) == 0 ? 0 : 1;
}
