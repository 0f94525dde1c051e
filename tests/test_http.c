/*
 * test_http.c - http_server end to end: the static file server of
 * examples/http_server.c, started as the real program on 127.0.0.1 (or a
 * Unix socket), serving a document root this test makes in a temporary
 * directory and removes at the end. Its clients are of three kinds:
 *
 *  - curl, the way people use a web server: every content type, HEAD,
 *    If-Modified-Since, directories, 403/404/405/501, keep-alive, a
 *    100 MiB file byte for byte, a Unix socket, the access log;
 *  - this process's own sockets, for what curl would tidy away before
 *    sending: every way out of the root (each must get the same 404),
 *    a NUL byte, pipelining, the bounds on lines, headers and bodies,
 *    slowloris, resets, a client that never reads, a descriptor limit,
 *    and the graceful stop;
 *  - a real browser, headless Chromium, loading a page whose script
 *    reports whether its stylesheet and its image arrived. Chromium looks
 *    names up on its own (accounts.google.com, say), whatever flags it is
 *    given, so it runs in a network namespace of its own that holds
 *    nothing but a loopback interface: the server runs there beside it.
 *
 * Each case asserts one behaviour. Those that once found a bug in
 * http_server say what it was, so that it stays found.
 */
#include "proc.h"
#include "support.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <regex.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define WAIT_MS 10000 /* for a program to start or end: generous, for ASan */
#define IO_MS   5000  /* the longest one send or recv of a test may block */
#define MIB     (1024 * 1024)

static struct proc server, client;

/* The temporary directory: root/ is the document root, outside/ holds a
 * file the server must never give away, and the rest is scratch. */
static char base[64];

/* The bytes of the file outside the root: no response may contain them. */
static const char secret[] = "NETX-SECRET-OUTSIDE-THE-ROOT\n";

static const char hello[] = "hello, world\n"; /* root/a.txt */

/* root/old.txt was last modified at 1000000000 (2001-09-09 01:46:40 UTC). */
#define OLD_MTIME 1000000000
#define OLD_DATE  "Sun, 09 Sep 2001 01:46:40 GMT"

#define BIG_MIB 32 /* root/big.bin: more than any socket buffer holds */

/* ------------------------------------------------------------------------
 * The document root
 * ------------------------------------------------------------------------ */

/* base/rel, in one of four static buffers used in turn (as proc_path). */
static const char *at(const char *rel)
{
    static char buf[4][256];
    static int next;
    next = (next + 1) % 4;
    snprintf(buf[next], sizeof buf[next], "%s/%s", base, rel);
    return buf[next];
}

static void put_file(const char *rel, const void *data, size_t len)
{
    FILE *f = fopen(at(rel), "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
    assert_int_equal(chmod(at(rel), 0644), 0); /* whatever the umask */
}

static void put_text(const char *rel, const char *text)
{
    put_file(rel, text, strlen(text));
}

static void make_dir(const char *rel)
{
    assert_int_equal(mkdir(at(rel), 0755), 0);
    assert_int_equal(chmod(at(rel), 0755), 0);
}

static void make_link(const char *target, const char *rel)
{
    assert_int_equal(symlink(target, at(rel)), 0);
}

/*
 * Large files are made of 1 MiB blocks, block i filled by support_pattern()
 * with seed + i: a transfer that drops, repeats or reorders bytes, or
 * swaps two blocks, does not match.
 */
static void pattern_block(unsigned char *buf, size_t index, unsigned seed)
{
    support_pattern(buf, MIB, seed + (unsigned)index);
}

static void put_pattern_file(const char *rel, size_t blocks, unsigned seed)
{
    unsigned char *buf = malloc(MIB);
    assert_non_null(buf);
    FILE *f = fopen(at(rel), "wb");
    assert_non_null(f);
    for (size_t i = 0; i < blocks; i++) {
        pattern_block(buf, i, seed);
        assert_int_equal(fwrite(buf, 1, MIB, f), MIB);
    }
    assert_int_equal(fclose(f), 0);
    free(buf);
}

/* Checks a stream of bytes against the pattern, piece by piece. */
struct pattern_check {
    unsigned seed;
    unsigned char *block; /* the expected block the offset is in */
    size_t index;         /* which block that is; -1 before the first */
    unsigned long long off;
    int bad;
};

static void pattern_check_init(struct pattern_check *k, unsigned seed)
{
    k->seed = seed;
    k->block = malloc(MIB);
    assert_non_null(k->block);
    k->index = (size_t)-1;
    k->off = 0;
    k->bad = 0;
}

static void pattern_check_bytes(struct pattern_check *k, const unsigned char *data, size_t n)
{
    while (n > 0 && !k->bad) {
        size_t index = (size_t)(k->off / MIB);
        size_t in = (size_t)(k->off % MIB);
        if (index != k->index) {
            pattern_block(k->block, index, k->seed);
            k->index = index;
        }
        size_t take = MIB - in < n ? MIB - in : n;
        if (memcmp(k->block + in, data, take) != 0) {
            k->bad = 1;
        }
        k->off += take;
        data += take;
        n -= take;
    }
}

/* Remove path and everything under it (it holds only what we made). */
static void remove_tree(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0) {
        return;
    }
    if (S_ISDIR(st.st_mode)) {
        DIR *d = opendir(path);
        if (d != NULL) {
            struct dirent *e;
            while ((e = readdir(d)) != NULL) {
                if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) {
                    char child[512];
                    snprintf(child, sizeof child, "%s/%s", path, e->d_name);
                    remove_tree(child);
                }
            }
            closedir(d);
        }
        rmdir(path);
    } else {
        unlink(path);
    }
}

/* A 1x1 PNG (RGBA), with correct CRCs: browsers refuse a broken one. */
static const unsigned char png_1x1[] = {
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48,
    0x44, 0x52, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00,
    0x00, 0x1f, 0x15, 0xc4, 0x89, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x44, 0x41, 0x54, 0x78,
    0x9c, 0x63, 0x10, 0x50, 0x30, 0xf8, 0x0f, 0x00, 0x02, 0x04, 0x01, 0x60, 0x8d, 0xbc,
    0xbb, 0x71, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82,
};

/* The files served with each content type, and what it must be. */
static const struct {
    const char *name;
    const char *type;
} types[] = {
    {"t.html", "text/html; charset=utf-8"},
    {"t.css", "text/css; charset=utf-8"},
    {"t.js", "text/javascript; charset=utf-8"},
    {"t.json", "application/json"},
    {"t.svg", "image/svg+xml"},
    {"t.png", "image/png"},
    {"t.jpeg", "image/jpeg"},
    {"t.jpg", "image/jpeg"},
    {"t.gif", "image/gif"},
    {"t.ico", "image/x-icon"},
    {"t.txt", "text/plain; charset=utf-8"},
    {"t.wasm", "application/wasm"},
    {"t.xyz", "application/octet-stream"},
    {"noextension", "application/octet-stream"},
};

#define TYPE_SIZE(i) (1000 + 37 * (size_t)(i)) /* each file a size of its own */

/*
 * The group's setup: the document root and what lies outside it.
 *
 *   root/index.html a.txt one.txt two.txt three.txt old.txt mid.bin big.bin
 *   root/types/     a file per content type, binary bytes (NULs too)
 *   root/dir/index.html   root/empty/ (no index)   root/sub/
 *   root/inlink.txt -> a.txt            root/sub/up.txt -> ../a.txt
 *   root/outlink.txt -> ../outside/secret.txt   root/outdir -> ../outside
 *   root/abslink.txt -> BASE/outside/secret.txt (absolute)
 *   outside/secret.txt
 *   web/            the browser's page
 */
static int make_site(void **state)
{
    (void)state;
    snprintf(base, sizeof base, "/tmp/netx-http-XXXXXX");
    if (mkdtemp(base) == NULL) {
        fprintf(stderr, "mkdtemp %s: %s\n", base, strerror(errno));
        return -1;
    }
    /* Readable by all: the 403 case may run the server as the user nobody. */
    chmod(base, 0755);
    make_dir("root");
    make_dir("outside");
    put_text("outside/secret.txt", secret);
    put_text("root/index.html", "<!doctype html>\n<title>the root</title>\n");
    put_text("root/a.txt", hello);
    put_text("root/one.txt", "one\n");
    put_text("root/two.txt", "two\n");
    put_text("root/three.txt", "three\n");
    put_text("root/old.txt", "an old file\n");
    struct timespec times[2] = {{OLD_MTIME, 0}, {OLD_MTIME, 0}};
    assert_int_equal(utimensat(AT_FDCWD, at("root/old.txt"), times, 0), 0);
    make_dir("root/types");
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        unsigned char data[2000];
        assert_true(TYPE_SIZE(i) <= sizeof data);
        support_pattern(data, TYPE_SIZE(i), 100u + (unsigned)i);
        data[i % 7] = 0; /* a NUL among the bytes, for every file */
        char rel[64];
        snprintf(rel, sizeof rel, "root/types/%s", types[i].name);
        put_file(rel, data, TYPE_SIZE(i));
    }
    unsigned char mid[20000];
    support_pattern(mid, sizeof mid, 77);
    put_file("root/mid.bin", mid, sizeof mid);
    put_pattern_file("root/big.bin", BIG_MIB, 500);
    make_dir("root/dir");
    put_text("root/dir/index.html", "<p>the index of dir</p>\n");
    make_dir("root/empty");
    make_dir("root/sub");
    make_link("a.txt", "root/inlink.txt");
    make_link("../a.txt", "root/sub/up.txt");
    make_link("../outside/secret.txt", "root/outlink.txt");
    make_link("../outside", "root/outdir");
    make_link(at("outside/secret.txt"), "root/abslink.txt");

    /* The browser's page: its script adds the marker only if the
     * stylesheet applied (the paragraph's colour) and the image decoded
     * (its natural width). The icon is inline, so that the browser asks
     * for nothing but these four. */
    make_dir("web");
    put_text("web/index.html", "<!doctype html>\n"
                               "<html><head><meta charset=\"utf-8\"><title>libnetx</title>\n"
                               "<link rel=\"icon\" href=\"data:,\">\n"
                               "<link rel=\"stylesheet\" href=\"style.css\">\n"
                               "<script src=\"app.js\"></script>\n"
                               "</head><body><p id=\"probe\">probe</p>"
                               "<img id=\"pic\" src=\"pixel.png\" alt=\"\"></body></html>\n");
    put_text("web/style.css", "#probe { color: rgb(1, 2, 3); }\n");
    put_text("web/app.js",
             "window.onload = function () {\n"
             "  var color = getComputedStyle(document.getElementById('probe')).color;\n"
             "  var img = document.getElementById('pic');\n"
             "  var ok = color === 'rgb(1, 2, 3)' && img.complete && img.naturalWidth === 1;\n"
             "  var marker = document.createElement('div');\n"
             "  marker.id = 'marker';\n"
             "  marker.textContent = ok ? 'netx-page-complete'\n"
             "                          : 'netx-page-broken ' + color + ' ' + img.naturalWidth;\n"
             "  document.body.appendChild(marker);\n"
             "};\n");
    put_file("web/pixel.png", png_1x1, sizeof png_1x1);
    return 0;
}

static int end_group(void **state)
{
    proc_kill_leftovers(state);
    if (base[0] != '\0') {
        remove_tree(base);
    }
    return 0;
}

/* ------------------------------------------------------------------------
 * The server
 * ------------------------------------------------------------------------ */

/*
 * Start http_server serving dir (under base) on 127.0.0.1, a free port,
 * with the options in opts (NULL-terminated, or NULL), under the command
 * in wrap (prlimit, setpriv; NULL: none). Returns its port.
 */
static int start_server_with(const char *const wrap[], const char *dir, const char *const opts[])
{
    proc_abandon(&server);
    const char *argv[40];
    int n = 0;
    for (int i = 0; wrap != NULL && wrap[i] != NULL; i++) {
        argv[n++] = wrap[i];
    }
    argv[n++] = proc_path("http_server");
    argv[n++] = "-r";
    argv[n++] = at(dir);
    argv[n++] = "-H";
    argv[n++] = "127.0.0.1";
    argv[n++] = "-p";
    argv[n++] = "0";
    for (int i = 0; opts != NULL && opts[i] != NULL && n < 39; i++) {
        argv[n++] = opts[i];
    }
    argv[n] = NULL;
    assert_int_equal(proc_start(&server, argv, NULL, 0), 0);
    int port = proc_wait_listening(&server, WAIT_MS);
    if (port <= 0) {
        fail_msg("http_server did not start: %s%s", server.out_buf, server.err_buf);
    }
    return port;
}

static int start_server(const char *const opts[])
{
    return start_server_with(NULL, "root", opts);
}

/* SIGTERM the server: it must exit 0. */
static void stop_server(void)
{
    int status = proc_stop(&server, SIGTERM, WAIT_MS);
    if (status != 0) {
        fail_msg("http_server ended with %d; its stderr:\n%s", status, server.err_buf);
    }
}

/* Read what the server printed so far, without waiting (proc.c reads only
 * while a test waits in proc_*(); a busy server must not fill the pipe). */
static void drain_stream(int *fd, char *buf, size_t *len)
{
    for (int i = 0; i < 64 && *fd >= 0; i++) {
        struct pollfd p = {.fd = *fd, .events = POLLIN};
        if (poll(&p, 1, 0) <= 0) {
            return;
        }
        char scratch[4096];
        ssize_t n = read(*fd, scratch, sizeof scratch);
        if (n > 0) {
            size_t take = (size_t)n < PROC_OUT_MAX - *len ? (size_t)n : PROC_OUT_MAX - *len;
            memcpy(buf + *len, scratch, take);
            *len += take;
            buf[*len] = '\0';
        } else if (n == 0 || errno != EINTR) {
            close(*fd);
            *fd = -1;
        }
    }
}

static void drain_server(void)
{
    drain_stream(&server.out, server.out_buf, &server.out_len);
    drain_stream(&server.err, server.err_buf, &server.err_len);
}

static void pause_ms(int ms)
{
    long long deadline = proc_now_ms() + ms;
    while (proc_now_ms() < deadline) {
        drain_server();
        int left = proc_ms_until(deadline);
        poll(NULL, 0, left < 50 ? left : 50);
    }
}

static int server_fds(void)
{
    drain_server();
    int n = proc_fd_count(server.pid);
    assert_true(n > 0);
    return n;
}

/* Wait up to timeout_ms for the server to hold `want` descriptors again. */
static void assert_server_fds(int want, int timeout_ms)
{
    long long deadline = proc_now_ms() + timeout_ms;
    int n = server_fds();
    while (n != want && proc_now_ms() < deadline) {
        poll(NULL, 0, 20);
        n = server_fds();
    }
    if (n != want) {
        fail_msg("http_server holds %d descriptors, %d expected", n, want);
    }
}

/* ------------------------------------------------------------------------
 * Raw HTTP from this process's own sockets
 * ------------------------------------------------------------------------ */

/* A client connection, and the bytes it received but has not used yet
 * (the start of the next pipelined response). */
struct conn {
    int fd;
    size_t len;
    unsigned char buf[65536];
};

/* One response, as read. */
struct reply {
    int status;
    char head[8192];     /* status line and headers, each ending "\r\n" */
    unsigned char *body; /* body_len bytes, then a NUL; malloc'd */
    size_t body_len;
};

static void reply_free(struct reply *r)
{
    free(r->body);
    r->body = NULL;
}

static int connect_port(int port)
{
    int fd = netx_tcp_connect("127.0.0.1", (uint16_t)port, IO_MS);
    if (fd < 0) {
        fail_msg("connect to 127.0.0.1:%d: %s", port, netx_last_error());
    }
    assert_int_equal(netx_set_timeout(fd, IO_MS), 0);
    return fd;
}

static void conn_open(struct conn *c, int port)
{
    c->fd = connect_port(port);
    c->len = 0;
}

static void send_bytes(int fd, const void *data, size_t len)
{
    if (netx_send_all(fd, data, len) != 0) {
        fail_msg("send of %zu bytes: %s", len, netx_last_error());
    }
}

static void send_text(int fd, const char *text)
{
    send_bytes(fd, text, strlen(text));
}

/* Close with SO_LINGER {1, 0}: the connection ends with a reset (RST). */
static void reset_close(int fd)
{
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg), 0);
    assert_int_equal(netx_close(fd), 0);
}

/* The length of the head at the start of data, blank line included; 0
 * while it is incomplete. */
static size_t head_length(const unsigned char *data, size_t len)
{
    for (size_t i = 0; i + 4 <= len; i++) {
        if (memcmp(data + i, "\r\n\r\n", 4) == 0) {
            return i + 4;
        }
    }
    return 0;
}

/* The value of header `name` in head, into out: 1 if there is one. */
static int header_value(const char *head, const char *name, char *out, size_t cap)
{
    size_t n = strlen(name);
    for (const char *line = strstr(head, "\r\n"); line != NULL; line = strstr(line, "\r\n")) {
        line += 2;
        if (strncasecmp(line, name, n) == 0 && line[n] == ':') {
            const char *v = line + n + 1;
            while (*v == ' ') {
                v++;
            }
            const char *end = strstr(v, "\r\n");
            size_t vlen = end != NULL ? (size_t)(end - v) : strlen(v);
            snprintf(out, cap, "%.*s", (int)vlen, v);
            return 1;
        }
    }
    return 0;
}

static void assert_header(const struct reply *r, const char *name, const char *want)
{
    char got[512];
    if (!header_value(r->head, name, got, sizeof got)) {
        fail_msg("no %s header in:\n%s", name, r->head);
    }
    if (strcmp(got, want) != 0) {
        fail_msg("%s: \"%s\", expected \"%s\"; the head:\n%s", name, got, want, r->head);
    }
}

/* The head in data (head_len bytes): into r, status and all. */
static void take_head(struct reply *r, const unsigned char *data, size_t head_len)
{
    size_t keep = head_len - 2; /* without the blank line */
    if (keep >= sizeof r->head) {
        fail_msg("a response head of %zu bytes", head_len);
    }
    memcpy(r->head, data, keep);
    r->head[keep] = '\0';
    r->status = 0;
    if (strncmp(r->head, "HTTP/1.1 ", 9) == 0) {
        r->status = atoi(r->head + 9);
    }
    if (r->status < 100 || r->status > 599) {
        fail_msg("not an HTTP/1.1 status line: %.80s", r->head);
    }
}

/* The body length the head announces: 0 for HEAD and 304. */
static size_t body_length(const struct reply *r, int head_only)
{
    char value[64];
    if (head_only || r->status == 304 ||
        !header_value(r->head, "Content-Length", value, sizeof value)) {
        return 0;
    }
    return (size_t)strtoull(value, NULL, 10);
}

/*
 * Read the next response on c into r (head_only: the answer to a HEAD).
 * 0, or -1 if the connection ended, failed or timed out first (errno then
 * says which; 0 for the end of the stream).
 */
static int read_reply(struct conn *c, struct reply *r, int head_only)
{
    memset(r, 0, sizeof *r);
    size_t h;
    while ((h = head_length(c->buf, c->len)) == 0) {
        if (c->len == sizeof c->buf) {
            fail_msg("no end of head in %zu bytes", c->len);
        }
        ssize_t n = netx_recv(c->fd, c->buf + c->len, sizeof c->buf - c->len);
        if (n <= 0) {
            if (n == 0) {
                errno = 0;
            }
            return -1;
        }
        c->len += (size_t)n;
    }
    take_head(r, c->buf, h);
    size_t want = body_length(r, head_only);
    r->body = malloc(want + 1);
    assert_non_null(r->body);
    size_t have = c->len - h < want ? c->len - h : want;
    memcpy(r->body, c->buf + h, have);
    memmove(c->buf, c->buf + h + have, c->len - h - have);
    c->len -= h + have;
    if (have < want) {
        ssize_t n = netx_recv_all(c->fd, r->body + have, want - have);
        if (n != (ssize_t)(want - have)) {
            if (n >= 0) {
                errno = 0;
            }
            reply_free(r);
            return -1;
        }
    }
    r->body_len = want;
    r->body[want] = '\0';
    return 0;
}

static void must_read_reply(struct conn *c, struct reply *r, int head_only)
{
    if (read_reply(c, r, head_only) != 0) {
        fail_msg("no complete response: %s (%zu bytes came: %.*s)",
                 errno != 0 ? strerror(errno) : "the server closed the connection", c->len,
                 (int)c->len, (const char *)c->buf);
    }
}

/*
 * After a response: does the server close the connection within ms, with
 * nothing more? 1: it closed (end of stream, or a reset: a server that
 * closes with unread request bytes resets), 0: more bytes came (left in
 * c->buf), -1: it stayed open and silent.
 */
static int closes_within(struct conn *c, int ms)
{
    if (c->len > 0) {
        return 0;
    }
    struct pollfd p = {.fd = c->fd, .events = POLLIN};
    if (poll(&p, 1, ms) <= 0) {
        return -1;
    }
    ssize_t n = netx_recv(c->fd, c->buf, sizeof c->buf);
    if (n > 0) {
        c->len = (size_t)n;
        return 0;
    }
    return 1;
}

static void assert_closes(struct conn *c, int ms)
{
    int closed = closes_within(c, ms);
    if (closed == 0) {
        fail_msg("more bytes after the response instead of the end: %.*s", (int)c->len,
                 (const char *)c->buf);
    }
    if (closed < 0) {
        fail_msg("the connection stayed open %d ms after the response", ms);
    }
}

static void assert_stays_open(struct conn *c, int ms)
{
    int closed = closes_within(c, ms);
    if (closed != -1) {
        fail_msg("the connection did not stay open after the response (%s)",
                 closed == 0 ? "more bytes came" : "it was closed");
    }
}

/* "METHOD target HTTP/1.1", with Host and "Connection: close". */
static const char *get_request(const char *method, const char *target)
{
    static char buf[16384];
    snprintf(buf, sizeof buf, "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
             method, target);
    return buf;
}

/* Send request on a new connection; read the one response into r. */
static void exchange(int port, const void *request, size_t len, struct reply *r, struct conn *c)
{
    conn_open(c, port);
    send_bytes(c->fd, request, len);
    must_read_reply(c, r, strncmp(request, "HEAD ", 5) == 0);
}

/* 1 if the len bytes at data hold the text needle (NULs and all). */
static int contains(const char *data, size_t len, const char *needle)
{
    size_t n = strlen(needle);
    for (size_t i = 0; i + n <= len; i++) {
        if (memcmp(data + i, needle, n) == 0) {
            return 1;
        }
    }
    return 0;
}

/* The whole answer to GET target: what the server sent until it closed,
 * with the Date line taken out (two answers a second apart may differ in
 * it alone). */
static void whole_answer(int port, const char *target, char *out, size_t cap)
{
    struct conn c;
    conn_open(&c, port);
    send_text(c.fd, get_request("GET", target));
    size_t len = 0;
    for (;;) {
        assert_true(len + 1 < cap);
        ssize_t n = netx_recv(c.fd, out + len, cap - 1 - len);
        if (n < 0) {
            fail_msg("GET %s: %s after %zu bytes", target, netx_last_error(), len);
        }
        if (n == 0) {
            break;
        }
        len += (size_t)n;
    }
    out[len] = '\0';
    assert_int_equal(netx_close(c.fd), 0);
    if (contains(out, len, secret)) {
        fail_msg("GET %s gave away the file outside the root:\n%s", target, out);
    }
    char *date = strstr(out, "\r\nDate: ");
    if (date != NULL) {
        char *eol = strstr(date + 2, "\r\n");
        assert_non_null(eol);
        memmove(date, eol, strlen(eol) + 1);
    }
}

/* ------------------------------------------------------------------------
 * curl
 * ------------------------------------------------------------------------ */

/* http://127.0.0.1:PORT/PATH in one of four static buffers. */
static const char *url(int port, const char *path)
{
    static char buf[4][512];
    static int next;
    next = (next + 1) % 4;
    snprintf(buf[next], sizeof buf[next], "http://127.0.0.1:%d%s", port, path);
    return buf[next];
}

/*
 * Run curl with args (NULL-terminated) through `client`; its exit status.
 * -q first: no ~/.curlrc. --noproxy '*': an http_proxy in the environment
 * would send the request off this machine instead of to loopback.
 */
static int run_curl(const char *const args[])
{
    const char *argv[48];
    int n = 0;
    static const char *const fixed[] = {"curl",       "-q", "--silent",  "--show-error",
                                        "--max-time", "20", "--noproxy", "*"};
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++) {
        argv[n++] = fixed[i];
    }
    for (int i = 0; args[i] != NULL && n < 47; i++) {
        argv[n++] = args[i];
    }
    argv[n] = NULL;
    return proc_run(&client, argv, NULL, 30000);
}

static void need_curl(void)
{
    proc_skip_without("curl", "http_server cannot be tried with curl");
}

/* curl --include: its output parsed into r (the body is what follows the
 * first head). */
static void curl_reply(const char *const args[], struct reply *r)
{
    int status = run_curl(args);
    if (status != 0) {
        fail_msg("curl exited %d: %s", status, client.err_buf);
    }
    const unsigned char *out = (const unsigned char *)client.out_buf;
    size_t h = head_length(out, client.out_len);
    if (h == 0) {
        fail_msg("curl printed no response head: %s", client.out_buf);
    }
    memset(r, 0, sizeof *r);
    take_head(r, out, h);
    r->body_len = client.out_len - h;
    r->body = malloc(r->body_len + 1);
    assert_non_null(r->body);
    memcpy(r->body, out + h, r->body_len);
    r->body[r->body_len] = '\0';
}

static void curl_get(int port, const char *path, struct reply *r)
{
    const char *args[] = {"--include", url(port, path), NULL};
    curl_reply(args, r);
}

/* 1 if value is an IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT") of a
 * second from `from` to `to`. Formatted here with strftime() in the C
 * locale, not with the server's own code. */
static int is_date_between(const char *value, time_t from, time_t to)
{
    for (time_t t = from; t <= to; t++) {
        struct tm tm;
        char want[64];
        gmtime_r(&t, &tm);
        strftime(want, sizeof want, "%a, %d %b %Y %H:%M:%S GMT", &tm);
        if (strcmp(value, want) == 0) {
            return 1;
        }
    }
    return 0;
}

/* ========================================================================
 * 1. curl against http_server
 * ======================================================================== */

/* A file comes back as its exact bytes, with Content-Type, Content-Length,
 * a Date of now, and its Last-Modified. */
static void http_get_file_exact_bytes_and_headers(void **state)
{
    (void)state;
    need_curl();
    int port = start_server(NULL);
    struct stat st;
    assert_int_equal(stat(at("root/a.txt"), &st), 0);
    time_t before = time(NULL);
    struct reply r;
    curl_get(port, "/a.txt", &r);
    time_t after = time(NULL);

    assert_int_equal(r.status, 200);
    assert_int_equal(r.body_len, strlen(hello));
    assert_memory_equal(r.body, hello, strlen(hello));
    assert_header(&r, "Content-Type", "text/plain; charset=utf-8");
    assert_header(&r, "Content-Length", "13");
    char date[128];
    assert_true(header_value(r.head, "Date", date, sizeof date));
    if (!is_date_between(date, before - 1, after + 1)) {
        fail_msg("Date: \"%s\" is not now as an IMF-fixdate", date);
    }
    char modified[64];
    struct tm tm;
    gmtime_r(&st.st_mtime, &tm);
    strftime(modified, sizeof modified, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    assert_header(&r, "Last-Modified", modified);
    reply_free(&r);
    stop_server();
}

/* Every extension gets its Content-Type (and an unknown one, or none,
 * application/octet-stream), and every file its exact bytes, NULs
 * included. */
static void http_get_content_type_by_extension(void **state)
{
    (void)state;
    need_curl();
    int port = start_server(NULL);
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        char path[64];
        snprintf(path, sizeof path, "/types/%s", types[i].name);
        struct reply r;
        curl_get(port, path, &r);
        if (r.status != 200) {
            fail_msg("GET %s: %d", path, r.status);
        }
        assert_header(&r, "Content-Type", types[i].type);
        char length[32];
        snprintf(length, sizeof length, "%zu", TYPE_SIZE(i));
        assert_header(&r, "Content-Length", length);
        unsigned char want[2000];
        support_pattern(want, TYPE_SIZE(i), 100u + (unsigned)i);
        want[i % 7] = 0;
        if (r.body_len != TYPE_SIZE(i) || memcmp(r.body, want, TYPE_SIZE(i)) != 0) {
            fail_msg("GET %s: %zu bytes, not its %zu", path, r.body_len, TYPE_SIZE(i));
        }
        reply_free(&r);
    }
    stop_server();
}

/* The head of a file without its Date line. */
static void head_without_date(const struct reply *r, char *out, size_t cap)
{
    snprintf(out, cap, "%s", r->head);
    char *date = strstr(out, "\r\nDate: ");
    assert_non_null(date);
    char *eol = strstr(date + 2, "\r\n");
    memmove(date, eol, strlen(eol) + 1);
}

/* HEAD (curl -I) gets the headers GET gets, and no body: after the head
 * of a "Connection: close" HEAD, the next thing is the end of the stream. */
static void http_head_same_headers_no_body(void **state)
{
    (void)state;
    need_curl();
    int port = start_server(NULL);
    struct reply get;
    struct reply head;
    curl_get(port, "/types/t.png", &get);
    const char *args[] = {"--head", url(port, "/types/t.png"), NULL};
    curl_reply(args, &head);
    assert_int_equal(head.status, 200);
    char a[8192];
    char b[8192];
    head_without_date(&get, a, sizeof a);
    head_without_date(&head, b, sizeof b);
    assert_string_equal(b, a);
    reply_free(&get);
    reply_free(&head);

    /* curl -I does not read a body even if one came: ask directly. */
    struct conn c;
    struct reply r;
    const char *req = get_request("HEAD", "/types/t.png");
    exchange(port, req, strlen(req), &r, &c);
    assert_int_equal(r.status, 200);
    assert_closes(&c, IO_MS);
    reply_free(&r);
    assert_int_equal(netx_close(c.fd), 0);
    stop_server();
}

/* If-Modified-Since the file's own date: 304, with no body at all. */
static void http_if_modified_since_same_date_not_modified(void **state)
{
    (void)state;
    int port = start_server(NULL);
    struct conn c;
    struct reply r;
    const char *req = "GET /old.txt HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                      "If-Modified-Since: " OLD_DATE "\r\nConnection: close\r\n\r\n";
    exchange(port, req, strlen(req), &r, &c);
    assert_int_equal(r.status, 304);
    assert_header(&r, "Last-Modified", OLD_DATE);
    assert_closes(&c, IO_MS); /* nothing between the head and the end */
    reply_free(&r);
    assert_int_equal(netx_close(c.fd), 0);
    stop_server();
}

/* curl -z with a date before the file's: the whole file, 200. (And a date
 * after it: 304, nothing downloaded.) */
static void http_if_modified_since_older_date_full(void **state)
{
    (void)state;
    need_curl();
    int port = start_server(NULL);
    const char *older[] = {"--include", "-z", "Sat, 08 Sep 2001 01:46:40 GMT",
                           url(port, "/old.txt"), NULL};
    struct reply r;
    curl_reply(older, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal((const char *)r.body, "an old file\n");
    assert_header(&r, "Last-Modified", OLD_DATE);
    reply_free(&r);
    const char *newer[] = {"--include", "-z", "Mon, 10 Sep 2001 01:46:40 GMT",
                           url(port, "/old.txt"), NULL};
    curl_reply(newer, &r);
    assert_int_equal(r.status, 304);
    assert_int_equal(r.body_len, 0);
    reply_free(&r);
    stop_server();
}

/* /dir/ is dir/index.html. */
static void http_dir_slash_serves_index(void **state)
{
    (void)state;
    need_curl();
    int port = start_server(NULL);
    struct reply r;
    curl_get(port, "/dir/", &r);
    assert_int_equal(r.status, 200);
    assert_header(&r, "Content-Type", "text/html; charset=utf-8");
    assert_string_equal((const char *)r.body, "<p>the index of dir</p>\n");
    reply_free(&r);
    stop_server();
}

/* /dir without its slash: 301 to /dir/, so that the page's relative links
 * resolve inside it (the query kept). */
static void http_dir_no_slash_redirects(void **state)
{
    (void)state;
    need_curl();
    int port = start_server(NULL);
    struct reply r;
    curl_get(port, "/dir", &r);
    assert_int_equal(r.status, 301);
    assert_header(&r, "Location", "/dir/");
    reply_free(&r);
    curl_get(port, "/dir?x=1", &r);
    assert_int_equal(r.status, 301);
    assert_header(&r, "Location", "/dir/?x=1");
    reply_free(&r);
    stop_server();
}

/*
 * The Location of a directory's 301 is made from the path as resolved,
 * not from the target as sent: "GET //dir" answered "Location: //dir/"
 * would be a network-path reference (RFC 3986 4.2), which a browser takes
 * to http://dir/ - another host, an open redirect. The same file system
 * path must redirect to itself: "/dir/".
 */
static void http_dir_double_slash_redirect_stays_on_site(void **state)
{
    (void)state;
    int port = start_server(NULL);
    struct conn c;
    struct reply r;
    const char *req = get_request("GET", "//dir");
    exchange(port, req, strlen(req), &r, &c);
    assert_int_equal(r.status, 301);
    char location[256];
    assert_true(header_value(r.head, "Location", location, sizeof location));
    reply_free(&r);
    assert_int_equal(netx_close(c.fd), 0);
    stop_server();
    if (strncmp(location, "//", 2) == 0) {
        fail_msg("GET //dir: \"Location: %s\" sends the browser to the host \"dir\"", location);
    }
}

/* A directory without index.html: 404 (no listing). */
static void http_dir_without_index_not_found(void **state)
{
    (void)state;
    need_curl();
    int port = start_server(NULL);
    struct reply r;
    curl_get(port, "/empty/", &r);
    assert_int_equal(r.status, 404);
    reply_free(&r);
    stop_server();
}

static void http_missing_file_not_found(void **state)
{
    (void)state;
    need_curl();
    int port = start_server(NULL);
    struct reply r;
    curl_get(port, "/no-such-file.txt", &r);
    assert_int_equal(r.status, 404);
    assert_header(&r, "Content-Type", "text/html; charset=utf-8");
    assert_non_null(strstr((const char *)r.body, "404 Not Found"));
    reply_free(&r);
    stop_server();
}

#define NOBODY "65534"

/*
 * A file that exists but may not be read (mode 000): 403. Root reads any
 * file, so as root the server runs as the user nobody instead (setpriv);
 * where that is not possible the case is skipped.
 */
static void http_unreadable_file_forbidden(void **state)
{
    (void)state;
    need_curl();
    put_text("root/locked.txt", "locked\n");
    assert_int_equal(chmod(at("root/locked.txt"), 0), 0);
    const char *const *wrap = NULL;
    static const char *const as_nobody[] = {"setpriv", "--reuid=" NOBODY, "--regid=" NOBODY,
                                            "--clear-groups", NULL};
    if (access(at("root/locked.txt"), R_OK) == 0) {
        /* Permissions do not apply to us: try as nobody. */
        const char *probe[] = {"setpriv",
                               "--reuid=" NOBODY,
                               "--regid=" NOBODY,
                               "--clear-groups",
                               "test",
                               "-x",
                               proc_path("http_server"),
                               "-a",
                               "-r",
                               at("root/a.txt"),
                               NULL};
        if (!proc_have("setpriv") || proc_run(&client, probe, NULL, WAIT_MS) != 0) {
            unlink(at("root/locked.txt"));
            fprintf(stderr, "skipped: a mode 000 file is readable here (root), and the server "
                            "cannot be run as the user nobody (setpriv, directory rights)\n");
            skip();
        }
        wrap = as_nobody;
    }
    int port = start_server_with(wrap, "root", NULL);
    struct reply r;
    curl_get(port, "/locked.txt", &r);
    unlink(at("root/locked.txt"));
    assert_int_equal(r.status, 403);
    reply_free(&r);
    curl_get(port, "/a.txt", &r); /* the same server reads what it may */
    assert_int_equal(r.status, 200);
    reply_free(&r);
    stop_server();
}

/*
 * A FIFO in the root is refused, 403, at once. Opened for reading
 * without O_NONBLOCK, a FIFO blocks the open until a writer comes - and
 * with it the whole event loop, every client. (If the server does hang,
 * the test opens the FIFO for writing, to set it free.)
 */
static void http_fifo_forbidden_no_hang(void **state)
{
    (void)state;
    assert_int_equal(mkfifo(at("root/fifo"), 0644), 0);
    int port = start_server(NULL);
    struct conn c;
    conn_open(&c, port);
    assert_int_equal(netx_set_timeout(c.fd, 3000), 0);
    send_text(c.fd, get_request("GET", "/fifo"));
    struct reply r;
    int rc = read_reply(&c, &r, 0);
    int err = errno;
    if (rc != 0) {
        /* Set the server free (a writer opens the FIFO: its open returns)
         * so that it can be stopped, then report. */
        int w = open(at("root/fifo"), O_WRONLY | O_NONBLOCK);
        if (w >= 0) {
            close(w);
        }
        assert_int_equal(netx_close(c.fd), 0);
        unlink(at("root/fifo"));
        stop_server();
        fail_msg("GET /fifo: no answer within 3 s (%s): the server hung opening the FIFO",
                 err != 0 ? strerror(err) : "closed");
    }
    unlink(at("root/fifo"));
    assert_int_equal(r.status, 403);
    reply_free(&r);
    assert_int_equal(netx_close(c.fd), 0);
    stop_server();
}

/* POST, PUT and DELETE: 405, with Allow: GET, HEAD. */
static void http_other_methods_not_allowed(void **state)
{
    (void)state;
    need_curl();
    int port = start_server(NULL);
    static const char *const methods[] = {"POST", "PUT", "DELETE"};
    for (size_t i = 0; i < 3; i++) {
        const char *args[] = {"--include", "-X", methods[i], url(port, "/a.txt"), NULL};
        struct reply r;
        curl_reply(args, &r);
        if (r.status != 405) {
            fail_msg("%s /a.txt: %d, not 405", methods[i], r.status);
        }
        assert_header(&r, "Allow", "GET, HEAD");
        reply_free(&r);
    }
    stop_server();
}

/* A method nobody knows: 501, with Allow too. */
static void http_unknown_method_not_implemented(void **state)
{
    (void)state;
    need_curl();
    int port = start_server(NULL);
    const char *args[] = {"--include", "-X", "FROB", url(port, "/a.txt"), NULL};
    struct reply r;
    curl_reply(args, &r);
    assert_int_equal(r.status, 501);
    assert_header(&r, "Allow", "GET, HEAD");
    reply_free(&r);
    stop_server();
}

/*
 * The body of a request answered 405 is never read as the next request:
 * the server does not read it, so it closes after the answer. Kept, the
 * connection would answer whatever request the body holds - request
 * smuggling, behind a proxy that shares connections.
 */
static void http_post_body_not_read_as_request(void **state)
{
    (void)state;
    int port = start_server(NULL);
    static const char body[] = "GET /inlink.txt HTTP/1.1\r\nHost: smuggled\r\n\r\n";
    char req[512];
    snprintf(req, sizeof req,
             "POST /a.txt HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: %zu\r\n\r\n%s",
             sizeof body - 1, body);
    struct conn c;
    struct reply r;
    exchange(port, req, strlen(req), &r, &c);
    assert_int_equal(r.status, 405);
    reply_free(&r);
    int more = closes_within(&c, 1000) == 0;
    assert_int_equal(netx_close(c.fd), 0);
    stop_server();
    if (more) {
        fail_msg("after the 405, the POST's body was answered as a request:\n%.*s", (int)c.len,
                 (const char *)c.buf);
    }
}

/* Two URLs in one curl command: the second reuses the first's
 * connection (curl's num_connects is 0 for it). */
static void http_keep_alive_connection_reused(void **state)
{
    (void)state;
    need_curl();
    int port = start_server(NULL);
    const char *args[] = {"-o",
                          "/dev/null",
                          "-o",
                          "/dev/null",
                          "-w",
                          "%{num_connects}\n",
                          url(port, "/a.txt"),
                          url(port, "/inlink.txt"),
                          NULL};
    assert_int_equal(run_curl(args), 0);
    assert_string_equal(client.out_buf, "1\n0\n");
    stop_server();
}

/* HTTP/1.0 without "Connection: keep-alive": closed after the response. */
static void http_http10_closed_after_response(void **state)
{
    (void)state;
    int port = start_server(NULL);
    struct conn c;
    struct reply r;
    const char *req = "GET /a.txt HTTP/1.0\r\n\r\n";
    exchange(port, req, strlen(req), &r, &c);
    assert_int_equal(r.status, 200);
    assert_string_equal((const char *)r.body, hello);
    assert_closes(&c, 2000);
    reply_free(&r);
    assert_int_equal(netx_close(c.fd), 0);
    stop_server();
}

/* HTTP/1.0 that asks for keep-alive keeps it, and is told so. */
static void http_http10_keep_alive_stays_open(void **state)
{
    (void)state;
    int port = start_server(NULL);
    struct conn c;
    struct reply r;
    const char *req = "GET /a.txt HTTP/1.0\r\nConnection: keep-alive\r\n\r\n";
    exchange(port, req, strlen(req), &r, &c);
    assert_int_equal(r.status, 200);
    assert_header(&r, "Connection", "keep-alive");
    reply_free(&r);
    assert_stays_open(&c, 300);
    send_text(c.fd, req);
    must_read_reply(&c, &r, 0);
    assert_string_equal((const char *)r.body, hello);
    reply_free(&r);
    assert_int_equal(netx_close(c.fd), 0);
    stop_server();
}

/* HTTP/1.1 with "Connection: close": answered with it, then closed. */
static void http_connection_close_honoured(void **state)
{
    (void)state;
    int port = start_server(NULL);
    struct conn c;
    struct reply r;
    const char *req = get_request("GET", "/a.txt");
    exchange(port, req, strlen(req), &r, &c);
    assert_int_equal(r.status, 200);
    assert_header(&r, "Connection", "close");
    assert_closes(&c, 2000);
    reply_free(&r);
    assert_int_equal(netx_close(c.fd), 0);
    stop_server();
}

/* -t 1: a kept-alive connection left idle is closed after about a second
 * (0.9 to 3 s allows for a slow build). */
static void http_idle_keep_alive_closed_after_timeout(void **state)
{
    (void)state;
    static const char *const opts[] = {"-t", "1", NULL};
    int port = start_server(opts);
    struct conn c;
    conn_open(&c, port);
    send_text(c.fd, "GET /a.txt HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    struct reply r;
    must_read_reply(&c, &r, 0);
    assert_int_equal(r.status, 200);
    reply_free(&r);
    long long t0 = proc_now_ms();
    assert_closes(&c, 3000);
    long long after = proc_now_ms() - t0;
    if (after < 900) {
        fail_msg("the idle connection was closed after %lld ms with -t 1", after);
    }
    assert_int_equal(netx_close(c.fd), 0);
    stop_server();
}

/* -d 1: a connection is closed a second after it was accepted, however
 * busy: a client asking every 100 ms is cut off within 0.9 to 3 s. */
static void http_lifetime_closes_busy_connection(void **state)
{
    (void)state;
    static const char *const opts[] = {"-d", "1", NULL};
    int port = start_server(opts);
    static const char req[] = "GET /a.txt HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    struct conn c;
    conn_open(&c, port);
    long long t0 = proc_now_ms();
    int answered = 0;
    long long gone = 0;
    for (int i = 0; i < 30 && gone == 0; i++) {
        if (netx_send_all(c.fd, req, sizeof req - 1) != 0) {
            gone = proc_now_ms(); /* EPIPE or ECONNRESET: closed */
            break;
        }
        struct reply r;
        if (read_reply(&c, &r, 0) != 0) {
            gone = proc_now_ms();
            break;
        }
        assert_int_equal(r.status, 200);
        reply_free(&r);
        answered++;
        pause_ms(100);
    }
    assert_int_equal(netx_close(c.fd), 0);
    stop_server();
    if (gone == 0) {
        fail_msg("a busy connection lived over 3 s with -d 1 (%d answers)", answered);
    }
    if (gone - t0 < 900 || answered == 0) {
        fail_msg("the connection was closed after %lld ms and %d answers, with -d 1", gone - t0,
                 answered);
    }
}

#define HUGE_MIB 100

/* A 100 MiB file arrives byte for byte (curl -o, then compared with the
 * pattern it was made of). */
static void http_large_file_100_mib_exact(void **state)
{
    (void)state;
    need_curl();
    put_pattern_file("root/huge.bin", HUGE_MIB, 9000);
    int port = start_server(NULL);
    const char *args[] = {
        "-o", at("huge.download"), "-w", "%{http_code} %{size_download}", url(port, "/huge.bin"),
        NULL};
    int status = run_curl(args);
    unlink(at("root/huge.bin"));
    if (status != 0) {
        unlink(at("huge.download"));
        fail_msg("curl exited %d: %s", status, client.err_buf);
    }
    char want[64];
    snprintf(want, sizeof want, "200 %d", HUGE_MIB * MIB);
    assert_string_equal(client.out_buf, want);

    struct pattern_check k;
    pattern_check_init(&k, 9000);
    FILE *f = fopen(at("huge.download"), "rb");
    assert_non_null(f);
    unsigned char *buf = malloc(MIB);
    assert_non_null(buf);
    size_t n;
    while ((n = fread(buf, 1, MIB, f)) > 0) {
        pattern_check_bytes(&k, buf, n);
    }
    fclose(f);
    free(buf);
    free(k.block);
    unlink(at("huge.download"));
    assert_false(k.bad);
    assert_int_equal(k.off, (unsigned long long)HUGE_MIB * MIB);
    stop_server();
}

#define CROWD 200

/* 200 clients connected at once, each asking for the 20000-byte mid.bin
 * before any is read: each gets its exact bytes. */
static void http_crowd_of_200_each_served_exactly(void **state)
{
    (void)state;
    int port = start_server(NULL);
    static int fds[CROWD];
    static unsigned char *got[CROWD];
    static size_t len[CROWD];
    static int done[CROWD];
    const size_t cap = 24000;
    for (int i = 0; i < CROWD; i++) {
        fds[i] = connect_port(port);
        got[i] = malloc(cap);
        assert_non_null(got[i]);
        len[i] = 0;
        done[i] = 0;
    }
    const char *req = get_request("GET", "/mid.bin");
    for (int i = 0; i < CROWD; i++) {
        send_text(fds[i], req);
    }
    int n_done = 0;
    long long deadline = proc_now_ms() + 15000;
    while (n_done < CROWD && proc_now_ms() < deadline) {
        static struct pollfd p[CROWD];
        static int owner[CROWD];
        int k = 0;
        for (int i = 0; i < CROWD; i++) {
            if (!done[i]) {
                p[k] = (struct pollfd){.fd = fds[i], .events = POLLIN};
                owner[k++] = i;
            }
        }
        int r = poll(p, (nfds_t)k, 100);
        assert_true(r >= 0);
        for (int j = 0; j < k; j++) {
            int i = owner[j];
            if (p[j].revents == 0) {
                continue;
            }
            if (len[i] == cap) {
                fail_msg("client %d: more than %zu bytes", i, cap);
            }
            ssize_t n = netx_recv(fds[i], got[i] + len[i], cap - len[i]);
            if (n < 0) {
                fail_msg("client %d: %s", i, netx_last_error());
            }
            if (n == 0) {
                done[i] = 1;
                n_done++;
            }
            len[i] += (size_t)n;
        }
    }
    if (n_done != CROWD) {
        fail_msg("%d of %d clients had their whole answer within 15 s", n_done, CROWD);
    }
    unsigned char want[20000];
    support_pattern(want, sizeof want, 77);
    for (int i = 0; i < CROWD; i++) {
        size_t h = head_length(got[i], len[i]);
        if (h == 0 || strncmp((const char *)got[i], "HTTP/1.1 200 ", 13) != 0 ||
            len[i] - h != sizeof want || memcmp(got[i] + h, want, sizeof want) != 0) {
            fail_msg("client %d: %zu bytes, not a 200 and the 20000 bytes of mid.bin", i, len[i]);
        }
        free(got[i]);
        assert_int_equal(netx_close(fds[i]), 0);
    }
    stop_server();
}

/* -U PATH: served over a Unix domain socket (curl --unix-socket). */
static void http_unix_socket_served(void **state)
{
    (void)state;
    need_curl();
    proc_abandon(&server);
    const char *path = at("http.sock");
    const char *argv[] = {proc_path("http_server"), "-r", at("root"), "-U", path, NULL};
    assert_int_equal(proc_start(&server, argv, NULL, 0), 0);
    char want[300];
    snprintf(want, sizeof want, "listening on unix:%s\n", path);
    if (proc_wait_output(&server, want, WAIT_MS) != 0) {
        fail_msg("http_server -U did not say \"%s\": %s%s", want, server.out_buf, server.err_buf);
    }
    const char *args[] = {"--include", "--unix-socket", path, "http://localhost/a.txt", NULL};
    struct reply r;
    curl_reply(args, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal((const char *)r.body, hello);
    reply_free(&r);
    stop_server();
}

/* -l: one Common Log Format line per request on standard output. */
static void http_access_log_common_format(void **state)
{
    (void)state;
    need_curl();
    static const char *const opts[] = {"-l", NULL};
    int port = start_server(opts);
    const char *args[] = {
        "-o", "/dev/null", "-o", "/dev/null", url(port, "/a.txt"), url(port, "/missing.txt"), NULL};
    assert_int_equal(run_curl(args), 0);
    stop_server();

    const char *lines = strchr(server.out_buf, '\n');
    assert_non_null(lines);
    lines++;
    static const char pattern[] =
        "^127\\.0\\.0\\.1 - - \\[[0-3][0-9]/[A-Z][a-z][a-z]/[0-9]{4}:[0-2][0-9]:[0-5][0-9]:"
        "[0-6][0-9] \\+0000\\] \"GET /a\\.txt HTTP/1\\.1\" 200 13\n"
        "127\\.0\\.0\\.1 - - \\[[0-3][0-9]/[A-Z][a-z][a-z]/[0-9]{4}:[0-2][0-9]:[0-5][0-9]:"
        "[0-6][0-9] \\+0000\\] \"GET /missing\\.txt HTTP/1\\.1\" 404 [1-9][0-9]*\n$";
    regex_t re;
    assert_int_equal(regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB), 0);
    int rc = regexec(&re, lines, 0, NULL, 0);
    regfree(&re);
    if (rc != 0) {
        fail_msg("the access log is not two Common Log Format lines:\n%s", lines);
    }
}

/* ========================================================================
 * 2. Raw sockets: what curl would not send
 * ======================================================================== */

/*
 * Every way out of the root gets the same answer as a file that is not
 * there, byte for byte but the Date: no answer tells an attacker more
 * than another. And none gives away the file outside.
 */
static void http_traversal_forms_same_404(void **state)
{
    (void)state;
    int port = start_server(NULL);
    static const char *const targets[] = {
        "/../etc/passwd",
        "/%2e%2e/%2e%2e/etc/passwd",
        "/%2E%2E/%2E%2E/etc/passwd",
        "/.%2e/.%2E/etc/passwd",
        "/a/%2e%2e/%2e%2e/b",
        "/..%2fetc",
        "/%2fetc%2fpasswd",
        "/a%00b",
        "http://127.0.0.1/index.html", /* absolute-form: index.html exists */
        "/../outside/secret.txt",
        "/%2e%2e/outside/secret.txt",
        "/sub/../../outside/secret.txt",
        "/outlink.txt",       /* a link to the file outside */
        "/outdir/secret.txt", /* through a link to the directory outside */
        "/abslink.txt",       /* an absolute link outside */
    };
    static char baseline[4096];
    static char got[4096];
    whole_answer(port, "/no-such-file", baseline, sizeof baseline);
    assert_true(strncmp(baseline, "HTTP/1.1 404 ", 13) == 0);
    for (size_t i = 0; i < sizeof targets / sizeof targets[0]; i++) {
        whole_answer(port, targets[i], got, sizeof got);
        if (strcmp(got, baseline) != 0) {
            fail_msg("GET %s was answered:\n%s\nnot as a missing file:\n%s", targets[i], got,
                     baseline);
        }
    }
    stop_server();
}

/* A raw NUL byte in the target: the request line is malformed, 400, and
 * the connection closed. */
static void http_nul_byte_in_target_bad_request(void **state)
{
    (void)state;
    int port = start_server(NULL);
    static const char req[] = "GET /a\0.txt HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    struct conn c;
    struct reply r;
    exchange(port, req, sizeof req - 1, &r, &c);
    assert_int_equal(r.status, 400);
    assert_closes(&c, 2000);
    reply_free(&r);
    assert_int_equal(netx_close(c.fd), 0);
    stop_server();
}

/* Links that stay inside the root are followed: to a file beside, and to
 * one a level up ("../a.txt" from sub/). */
static void http_symlink_inside_root_served(void **state)
{
    (void)state;
    int port = start_server(NULL);
    static const char *const targets[] = {"/inlink.txt", "/sub/up.txt"};
    for (size_t i = 0; i < 2; i++) {
        struct conn c;
        struct reply r;
        const char *req = get_request("GET", targets[i]);
        exchange(port, req, strlen(req), &r, &c);
        if (r.status != 200) {
            fail_msg("GET %s: %d", targets[i], r.status);
        }
        assert_string_equal((const char *)r.body, hello);
        reply_free(&r);
        assert_int_equal(netx_close(c.fd), 0);
    }
    stop_server();
}

/* Three requests in one send: three responses, in order, on the one
 * connection; a fourth after a pause is still answered (keep-alive). */
static void http_pipelined_requests_answered_in_order(void **state)
{
    (void)state;
    int port = start_server(NULL);
    struct conn c;
    conn_open(&c, port);
    send_text(c.fd, "GET /one.txt HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
                    "GET /two.txt HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
                    "GET /three.txt HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    static const char *const bodies[] = {"one\n", "two\n", "three\n"};
    for (int i = 0; i < 3; i++) {
        struct reply r;
        must_read_reply(&c, &r, 0);
        assert_int_equal(r.status, 200);
        assert_string_equal((const char *)r.body, bodies[i]);
        reply_free(&r);
    }
    assert_stays_open(&c, 300);
    send_text(c.fd, "GET /a.txt HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    struct reply r;
    must_read_reply(&c, &r, 0);
    assert_int_equal(r.status, 200);
    assert_string_equal((const char *)r.body, hello);
    reply_free(&r);
    assert_int_equal(netx_close(c.fd), 0);
    stop_server();
}

/* Send a bad request (len bytes): the answer must be `status`, with
 * "Connection: close", and the connection closed. */
static void check_refused(const void *request, size_t len, int status)
{
    int port = start_server(NULL);
    struct conn c;
    struct reply r;
    exchange(port, request, len, &r, &c);
    if (r.status != status) {
        fail_msg("answered %d, not %d:\n%s", r.status, status, r.head);
    }
    assert_header(&r, "Connection", "close");
    assert_closes(&c, 2000);
    reply_free(&r);
    assert_int_equal(netx_close(c.fd), 0);
    /* The server is well, and serves the next client. */
    const char *req = get_request("GET", "/a.txt");
    exchange(port, req, strlen(req), &r, &c);
    assert_int_equal(r.status, 200);
    reply_free(&r);
    assert_int_equal(netx_close(c.fd), 0);
    stop_server();
}

static void check_refused_text(const char *request, int status)
{
    check_refused(request, strlen(request), status);
}

/* A request line over 8 KiB: 414, and closed. */
static void http_long_request_line_uri_too_long(void **state)
{
    (void)state;
    static char req[9000 + 64];
    memcpy(req, "GET /", 5);
    memset(req + 5, 'a', 9000);
    strcpy(req + 9005, " HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    check_refused_text(req, 414);
}

/* A header line over 8 KiB: 431, and closed. */
static void http_long_header_line_too_large(void **state)
{
    (void)state;
    static char req[9000 + 128];
    int n = snprintf(req, sizeof req, "GET /a.txt HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Long: ");
    memset(req + n, 'b', 9000);
    strcpy(req + n + 9000, "\r\n\r\n");
    check_refused_text(req, 431);
}

/* 100 headers are served; 101 are 431, and closed. */
static void http_101_headers_too_large(void **state)
{
    (void)state;
    static char req[8192];
    size_t n = (size_t)snprintf(req, sizeof req, "GET /a.txt HTTP/1.1\r\nHost: 127.0.0.1\r\n");
    for (int i = 0; i < 99; i++) {
        n += (size_t)snprintf(req + n, sizeof req - n, "X-H%d: v\r\n", i);
    }
    snprintf(req + n, sizeof req - n, "Connection: close\r\n\r\n"); /* the 101st */
    check_refused_text(req, 431);

    /* The 100th header was Connection: close; with one fewer X-H, 100 in
     * all, it is served. */
    n = (size_t)snprintf(req, sizeof req, "GET /a.txt HTTP/1.1\r\nHost: 127.0.0.1\r\n");
    for (int i = 0; i < 98; i++) {
        n += (size_t)snprintf(req + n, sizeof req - n, "X-H%d: v\r\n", i);
    }
    snprintf(req + n, sizeof req - n, "Connection: close\r\n\r\n");
    int port = start_server(NULL);
    struct conn c;
    struct reply r;
    exchange(port, req, strlen(req), &r, &c);
    assert_int_equal(r.status, 200);
    reply_free(&r);
    assert_int_equal(netx_close(c.fd), 0);
    stop_server();
}

/* A request with a body (a GET with Content-Length: 5): 413, and closed. */
static void http_request_body_too_large(void **state)
{
    (void)state;
    check_refused_text("GET /a.txt HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 5\r\n\r\nhello",
                       413);
}

/* HTTP/1.1 requires Host: 400 without it. */
static void http_no_host_bad_request(void **state)
{
    (void)state;
    check_refused_text("GET /a.txt HTTP/1.1\r\n\r\n", 400);
}

static void http_version_2_not_supported(void **state)
{
    (void)state;
    check_refused_text("GET /a.txt HTTP/2.0\r\nHost: 127.0.0.1\r\n\r\n", 505);
}

/* Bytes that are no request at all (a TLS ClientHello's start): 400. */
static void http_garbage_bad_request(void **state)
{
    (void)state;
    static const unsigned char junk[] = {0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc,
                                         0x03, 0x03, 0x00, 0xff, '\r', '\n', '\r', '\n'};
    check_refused(junk, sizeof junk, 400);
}

/* White space between a header's name and its colon: 400 (RFC 9112 5.1:
 * how request smuggling starts). */
static void http_space_before_colon_bad_request(void **state)
{
    (void)state;
    check_refused_text("GET /a.txt HTTP/1.1\r\nHost : 127.0.0.1\r\n\r\n", 400);
}

/* ========================================================================
 * Clients that mean harm, or break (the ideas of test_hostile.c)
 * ======================================================================== */

/*
 * Slowloris with -T 1: a client sends half a head and waits. Another is
 * served at once meanwhile; the slow one gets 408 and the end of its
 * connection after about a second (1 to 5 s allows for a slow build).
 */
static void http_slowloris_timed_out_others_served(void **state)
{
    (void)state;
    static const char *const opts[] = {"-T", "1", NULL};
    int port = start_server(opts);
    struct conn slow;
    conn_open(&slow, port);
    send_text(slow.fd, "GET /a.txt HTTP/1.1\r\nHost: 127.0.0.1\r\n");
    long long start = proc_now_ms();

    long long t0 = proc_now_ms();
    struct conn c;
    struct reply r;
    const char *req = get_request("GET", "/a.txt");
    exchange(port, req, strlen(req), &r, &c);
    long long took = proc_now_ms() - t0;
    assert_int_equal(r.status, 200);
    reply_free(&r);
    assert_int_equal(netx_close(c.fd), 0);
    if (took > 1000) {
        fail_msg("a normal client took %lld ms beside the slow one", took);
    }

    must_read_reply(&slow, &r, 0);
    assert_int_equal(r.status, 408);
    reply_free(&r);
    assert_closes(&slow, 2000);
    long long after = proc_now_ms() - start;
    if (after < 900 || after >= 5000) {
        fail_msg("the half head was closed after %lld ms with -T 1", after);
    }
    assert_int_equal(netx_close(slow.fd), 0);
    stop_server();
}

/* Clients that reset: at once, or mid-request. The server closes its
 * side of each and answers the next client promptly. */
static void http_reset_mid_request_others_served(void **state)
{
    (void)state;
    int port = start_server(NULL);
    int baseline = server_fds();
    for (int i = 0; i < 20; i++) {
        reset_close(connect_port(port));
        int fd = connect_port(port);
        send_text(fd, "GET /big.bin HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Half: ");
        reset_close(fd);
        fd = connect_port(port);
        send_text(fd, "GET /big.bin HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
        pause_ms(5); /* the response under way */
        reset_close(fd);
    }
    long long t0 = proc_now_ms();
    struct conn c;
    struct reply r;
    const char *req = get_request("GET", "/a.txt");
    exchange(port, req, strlen(req), &r, &c);
    assert_int_equal(r.status, 200);
    assert_string_equal((const char *)r.body, hello);
    reply_free(&r);
    assert_int_equal(netx_close(c.fd), 0);
    assert_true(proc_now_ms() - t0 < 1000);
    assert_server_fds(baseline, 3000);
    stop_server();
}

/* A client asks for 32 MiB and never reads: the server's socket fills,
 * and it serves another client promptly meanwhile. */
static void http_never_reading_client_others_served(void **state)
{
    (void)state;
    int port = start_server(NULL);
    int baseline = server_fds();
    int hog = connect_port(port);
    send_text(hog, "GET /big.bin HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    pause_ms(300);
    long long t0 = proc_now_ms();
    struct conn c;
    struct reply r;
    const char *req = get_request("GET", "/a.txt");
    exchange(port, req, strlen(req), &r, &c);
    long long took = proc_now_ms() - t0;
    assert_int_equal(r.status, 200);
    reply_free(&r);
    assert_int_equal(netx_close(c.fd), 0);
    if (took > 1000) {
        fail_msg("a normal client took %lld ms beside a client that never reads", took);
    }
    reset_close(hog);
    assert_server_fds(baseline, 3000);
    stop_server();
}

/* -n 2: a third connection is answered 503 and closed. */
static void http_cap_extra_client_busy(void **state)
{
    (void)state;
    static const char *const opts[] = {"-n", "2", NULL};
    int port = start_server(opts);
    struct conn held[2];
    for (int i = 0; i < 2; i++) {
        conn_open(&held[i], port);
        send_text(held[i].fd, "GET /a.txt HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
        struct reply r;
        must_read_reply(&held[i], &r, 0); /* served: it holds its place */
        reply_free(&r);
    }
    struct conn c;
    conn_open(&c, port);
    struct reply r;
    must_read_reply(&c, &r, 0);
    assert_int_equal(r.status, 503);
    assert_closes(&c, 2000);
    reply_free(&r);
    assert_int_equal(netx_close(c.fd), 0);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(netx_close(held[i].fd), 0);
    }
    stop_server();
    /* The refusal is in the log, too: a server turning clients away must
     * say so. */
    assert_non_null(
        strstr(server.err_buf, "http_server: refused a client with 503: at the limit of -n 2 "
                               "connections\n"));
}

/* The server's CPU time so far (user + system), in clock ticks, from
 * /proc/PID/stat; -1 if it cannot be read. */
static long long cpu_ticks(pid_t pid)
{
    char name[64];
    snprintf(name, sizeof name, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(name, "r");
    if (f == NULL) {
        return -1;
    }
    char buf[1024];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *rest = strrchr(buf, ')'); /* the name may hold spaces */
    unsigned long long utime = 0;
    unsigned long long stime = 0;
    if (rest == NULL || sscanf(rest + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
                               &utime, &stime) != 2) {
        return -1;
    }
    return (long long)(utime + stime);
}

#define FD_LIMIT   64
#define FREE_SLOTS 10 /* descriptors left for clients: fewer than -n allows */

/*
 * Start http_server under a descriptor limit of 64 (prlimit), with all but
 * FREE_SLOTS of them taken by descriptors it inherited, as from a careless
 * parent (a shell, a supervisor). From a clean start it fits its clients
 * to its limit (-n becomes 16 here) and never meets EMFILE; the inherited
 * ones eat that margin. How many it opens itself is counted first, on a
 * run without the limit. Returns its port.
 */
static int start_starved_server(void)
{
    if (!proc_have("prlimit")) {
        fprintf(stderr, "skipped: prlimit (util-linux) is not installed, so no descriptor "
                        "limit can be imposed\n");
        skip();
    }
    start_server(NULL);
    int own = server_fds();
    stop_server();
    int inherit = FD_LIMIT - own - FREE_SLOTS;
    assert_true(inherit > 0 && inherit <= 64);
    int extra[64];
    for (int i = 0; i < inherit; i++) {
        extra[i] = open("/dev/null", O_RDONLY); /* no O_CLOEXEC: inherited */
        assert_true(extra[i] >= 0);
    }
    static const char *const wrap[] = {"prlimit", "--nofile=64:64", "--", NULL};
    int port = start_server_with(wrap, "root", NULL);
    for (int i = 0; i < inherit; i++) {
        close(extra[i]);
    }
    return port;
}

/* Connect n clients (into fds) and wait until the server says it ran out
 * of descriptors. */
static void exhaust_descriptors(int port, int *fds, int n)
{
    for (int i = 0; i < n; i++) {
        fds[i] = connect_port(port);
    }
    long long deadline = proc_now_ms() + 5000;
    while (strstr(server.err_buf, "Too many open files") == NULL && proc_now_ms() < deadline) {
        pause_ms(20);
    }
    if (strstr(server.err_buf, "Too many open files") == NULL) {
        fail_msg("http_server never met EMFILE with %d clients; stderr:\n%s", n, server.err_buf);
    }
    pause_ms(300); /* it has taken what it will take */
}

#define HELD 60

/*
 * Out of descriptors, with 60 clients connected: accept() fails with
 * EMFILE. The server says so once and pauses its accepts instead of
 * spinning on a listener that stays readable (well under 20% of a CPU),
 * and once the clients leave, it serves a newcomer.
 */
static void http_fd_limit_no_spin_recovers(void **state)
{
    (void)state;
    int port = start_starved_server();
    int baseline = server_fds();
    int held[HELD];
    exhaust_descriptors(port, held, HELD);

    long long tps = sysconf(_SC_CLK_TCK);
    long long t0 = proc_now_ms();
    long long c0 = cpu_ticks(server.pid);
    assert_true(c0 >= 0 && tps > 0);
    pause_ms(1000);
    long long c1 = cpu_ticks(server.pid);
    long long limit = tps * (proc_now_ms() - t0) / 1000 / 5;
    if (c1 - c0 >= limit) {
        fail_msg("http_server used %lld ticks of CPU in a second with its descriptors "
                 "exhausted (limit %lld)",
                 c1 - c0, limit);
    }
    for (int i = 0; i < HELD; i++) {
        assert_int_equal(netx_close(held[i]), 0);
    }
    /* The clients it never accepted are still queued, closed by now: it
     * goes through them, then serves the newcomer. */
    long long t1 = proc_now_ms();
    struct conn c;
    struct reply r;
    const char *req = get_request("GET", "/a.txt");
    exchange(port, req, strlen(req), &r, &c);
    long long took = proc_now_ms() - t1;
    assert_int_equal(r.status, 200);
    reply_free(&r);
    assert_int_equal(netx_close(c.fd), 0);
    if (took > 2000) {
        fail_msg("the newcomer took %lld ms once the clients had gone", took);
    }
    assert_server_fds(baseline, 5000);
    stop_server();
}

/*
 * Out of descriptors, a file that exists is answered 503 (try again
 * later), never 404: a client - and every cache on the way, 404 being
 * cacheable by default - would be told the file is gone when the server
 * is only busy.
 */
static void http_fd_limit_existing_file_not_404(void **state)
{
    (void)state;
    int port = start_starved_server();
    int held[30];
    exhaust_descriptors(port, held, 30);
    struct conn c;
    c.fd = held[0]; /* the first was accepted: it holds a place */
    c.len = 0;
    send_text(c.fd, "GET /a.txt HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    struct reply r;
    must_read_reply(&c, &r, 0);
    int status = r.status;
    reply_free(&r);
    for (int i = 0; i < 30; i++) {
        assert_int_equal(netx_close(held[i]), 0);
    }
    stop_server();
    if (status < 500) {
        fail_msg("GET /a.txt (which exists) with no descriptor left to open it: %d, not 5xx",
                 status);
    }
}

/* ========================================================================
 * Graceful stop
 * ======================================================================== */

/*
 * Read a whole response to GET /big.bin on c (its head already sent for),
 * checking every byte against the pattern; then wait for the end of the
 * stream. Returns the time from the last body byte to the end (ms), or -1
 * if the end did not come within 3 s.
 */
static long long read_big_then_end(struct conn *c)
{
    struct reply r;
    memset(&r, 0, sizeof r);
    size_t h;
    while ((h = head_length(c->buf, c->len)) == 0) {
        ssize_t n = netx_recv(c->fd, c->buf + c->len, sizeof c->buf - c->len);
        if (n <= 0) {
            fail_msg("no head for /big.bin: %s", n == 0 ? "closed" : netx_last_error());
        }
        c->len += (size_t)n;
    }
    take_head(&r, c->buf, h);
    assert_int_equal(r.status, 200);
    unsigned long long want = (unsigned long long)BIG_MIB * MIB;
    assert_int_equal(body_length(&r, 0), want);
    struct pattern_check k;
    pattern_check_init(&k, 500);
    pattern_check_bytes(&k, c->buf + h, c->len - h);
    c->len = 0;
    static unsigned char buf[1 << 18];
    while (k.off < want) {
        size_t cap = want - k.off < sizeof buf ? (size_t)(want - k.off) : sizeof buf;
        ssize_t n = netx_recv(c->fd, buf, cap);
        if (n <= 0) {
            free(k.block);
            fail_msg("/big.bin ended after %llu of %llu bytes: %s", k.off, want,
                     n == 0 ? "closed" : netx_last_error());
        }
        pattern_check_bytes(&k, buf, (size_t)n);
    }
    free(k.block);
    assert_false(k.bad);
    long long last = proc_now_ms();
    int closed = closes_within(c, 3000);
    if (closed == 0) {
        fail_msg("bytes after the whole of /big.bin: %.*s", (int)c->len, (const char *)c->buf);
    }
    return closed == 1 ? proc_now_ms() - last : -1;
}

/*
 * A response under way when SIGTERM comes is finished - every byte - and
 * then the connection is closed at once and the server exits 0 at once,
 * rather than waiting out the grace period (-g 30 here) for a next
 * request that may not come.
 */
static void http_sigterm_large_response_finished_exit_zero(void **state)
{
    (void)state;
    static const char *const opts[] = {"-g", "30", NULL};
    int port = start_server(opts);
    struct conn c;
    conn_open(&c, port);
    send_text(c.fd, "GET /big.bin HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    ssize_t n = netx_recv_all(c.fd, c.buf, sizeof c.buf); /* a start: 64 KiB */
    assert_int_equal(n, (ssize_t)sizeof c.buf);
    c.len = (size_t)n;
    assert_int_equal(kill(server.pid, SIGTERM), 0);
    /* It says it is draining: the response was under way. */
    assert_int_equal(proc_wait_output(&server, "stopping:", WAIT_MS), 0);

    long long to_end = read_big_then_end(&c);
    assert_int_equal(netx_close(c.fd), 0);
    if (to_end < 0 || to_end > 2000) {
        proc_stop(&server, SIGKILL, WAIT_MS); /* it would wait out its 30 s */
        fail_msg("after the last byte of the response, the connection stayed open %s, "
                 "and the server with it (a stop, with -g 30)",
                 to_end < 0 ? "for more than 3 s" : "over 2 s");
    }
    long long t0 = proc_now_ms();
    int status = proc_finish(&server, WAIT_MS);
    long long to_exit = proc_now_ms() - t0;
    assert_int_equal(status, 0);
    if (to_exit > 3000) {
        fail_msg("http_server took %lld ms to exit once its last client was served", to_exit);
    }
}

/* An idle keep-alive connection at the stop is closed at once, and the
 * server exits 0 at once, without waiting for the grace period. */
static void http_sigterm_idle_keep_alive_closed_at_once(void **state)
{
    (void)state;
    static const char *const opts[] = {"-g", "30", NULL};
    int port = start_server(opts);
    struct conn c;
    conn_open(&c, port);
    send_text(c.fd, "GET /a.txt HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    struct reply r;
    must_read_reply(&c, &r, 0);
    assert_int_equal(r.status, 200);
    reply_free(&r);
    assert_stays_open(&c, 200); /* kept alive, and idle */

    long long t0 = proc_now_ms();
    assert_int_equal(kill(server.pid, SIGTERM), 0);
    assert_closes(&c, 2000);
    int status = proc_finish(&server, WAIT_MS);
    long long took = proc_now_ms() - t0;
    assert_int_equal(status, 0);
    if (took > 2000) {
        fail_msg("http_server took %lld ms to stop with one idle connection (-g 30)", took);
    }
    assert_int_equal(netx_close(c.fd), 0);
}

/* A second signal stops at once, even with a response that cannot finish
 * (its client never reads). */
static void http_second_signal_stops_at_once(void **state)
{
    (void)state;
    static const char *const opts[] = {"-g", "30", NULL};
    int port = start_server(opts);
    int hog = connect_port(port);
    send_text(hog, "GET /big.bin HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    pause_ms(200);
    long long t0 = proc_now_ms();
    int status = proc_stop_now(&server, SIGTERM, WAIT_MS);
    long long took = proc_now_ms() - t0;
    assert_non_null(strstr(server.err_buf, "stopping:")); /* it was draining */
    assert_int_equal(status, 0);
    if (took > 3000) {
        fail_msg("http_server took %lld ms to stop at the second signal", took);
    }
    reset_close(hog);
}

/* ========================================================================
 * The command line
 * ======================================================================== */

static void http_missing_root_exits_one(void **state)
{
    (void)state;
    const char *missing = at("no-such-directory");
    const char *argv[] = {
        proc_path("http_server"), "-r", missing, "-H", "127.0.0.1", "-p", "0", NULL};
    assert_int_equal(proc_run(&client, argv, NULL, WAIT_MS), 1);
    char want[300];
    snprintf(want, sizeof want, "http_server: document root %s: No such file or directory\n",
             missing);
    assert_string_equal(client.err_buf, want);
    assert_string_equal(client.out_buf, "");
}

/*
 * -H as every server takes it: "-H HOST:PORT" is refused with a hint to use
 * -p, '' listens on every interface (IPv4 and IPv6), ::1 is an address.
 */
static void http_server_host_empty_every_interface_port_hint(void **state)
{
    (void)state;
    proc_check_server_host(&client, "http_server", NULL, SOCK_STREAM);
}

static void http_bad_flags_exit_two(void **state)
{
    (void)state;
    proc_check_common_bad_usage(&client, "http_server");
    proc_check_bad_usage(&client, "http_server", "-T", "0",
                         "-T \"0\": not a number from 1 to 86400");
    proc_check_bad_usage(&client, "http_server", "-n", "0",
                         "-n \"0\": not a number from 1 to 100000");
    proc_check_bad_usage(&client, "http_server", "-g", "3601",
                         "-g \"3601\": not a number from 0 to 3600");
    proc_check_bad_usage(&client, "http_server", "-t", "1s",
                         "-t \"1s\": not a number from 0 to 86400");
    proc_check_bad_usage(&client, "http_server", "-r", NULL, "option -r needs a value");
    proc_check_bad_usage(&client, "http_server", "extra", NULL, "unexpected argument \"extra\"");
}

/* ========================================================================
 * 3. A real browser
 * ======================================================================== */

#ifdef __linux__

/* Write len bytes of text to base/rel (the browser child's results). */
static void save(const char *rel, const char *text, size_t len)
{
    FILE *f = fopen(at(rel), "wb");
    if (f != NULL) {
        fwrite(text, 1, len, f);
        fclose(f);
    }
}

enum { BROWSER_RAN = 0, BROWSER_NO_NAMESPACE = 10, BROWSER_NO_SERVER = 11 };

/*
 * The browser's run, in a child process of the test: it moves into a
 * network namespace of its own, starts http_server -l on web/ there and
 * Chromium against it, and leaves what they printed in browser-*.txt
 * for the test to check. Never returns: the child must not go back into
 * cmocka.
 */
static void browser_child(void)
{
    if (support_private_network() != 0) {
        char why[256];
        int n = snprintf(why, sizeof why, "%s", strerror(errno));
        save("browser-why.txt", why, (size_t)n);
        _exit(BROWSER_NO_NAMESPACE);
    }
    const char *argv[] = {
        proc_path("http_server"), "-r", at("web"), "-H", "127.0.0.1", "-p", "0", "-l", NULL};
    if (proc_start(&server, argv, NULL, 0) != 0) {
        _exit(BROWSER_NO_SERVER);
    }
    int port = proc_wait_listening(&server, WAIT_MS);
    if (port <= 0) {
        proc_stop(&server, SIGKILL, WAIT_MS);
        save("browser-why.txt", server.err_buf, server.err_len);
        _exit(BROWSER_NO_SERVER);
    }
    char page[64];
    snprintf(page, sizeof page, "http://127.0.0.1:%d/", port);
    char profile[300];
    char home[300];
    snprintf(profile, sizeof profile, "--user-data-dir=%s", at("browser-profile"));
    snprintf(home, sizeof home, "HOME=%s", at("browser-home"));
    mkdir(at("browser-profile"), 0700); /* new and empty */
    mkdir(at("browser-home"), 0700);
    /* A home of its own, so nothing is left in the user's. */
    const char *env[] = {home, NULL};
    const char *chromium[] = {"chromium",
                              "--headless",
                              "--no-sandbox",
                              "--disable-gpu",
                              "--disable-quic",
                              "--no-first-run",
                              "--disable-background-networking",
                              "--disable-component-update",
                              "--disable-sync",
                              "--no-proxy-server",
                              profile,
                              "--virtual-time-budget=5000",
                              "--dump-dom",
                              page,
                              NULL};
    int status = -1;
    if (proc_start(&client, chromium, env, 0) == 0) {
        status = proc_finish(&client, 30000); /* killed by its PID after 30 s */
    }
    int server_status = proc_stop(&server, SIGTERM, WAIT_MS);
    char said[64];
    int n = snprintf(said, sizeof said, "%d %d", status, server_status);
    save("browser-status.txt", said, (size_t)n);
    save("browser-dom.txt", client.out_buf, client.out_len);
    save("browser-stderr.txt", client.err_buf, client.err_len);
    save("browser-log.txt", server.out_buf, server.out_len);
    save("browser-server-stderr.txt", server.err_buf, server.err_len);
    _exit(BROWSER_RAN);
}

/* The text of base/rel into buf (cap bytes, NUL-terminated); "" if none. */
static void load(const char *rel, char *buf, size_t cap)
{
    buf[0] = '\0';
    FILE *f = fopen(at(rel), "rb");
    if (f != NULL) {
        size_t n = fread(buf, 1, cap - 1, f);
        buf[n] = '\0';
        fclose(f);
    }
}

/* The last lines of text, for a message. */
static const char *tail_of(const char *text, size_t n)
{
    size_t len = strlen(text);
    return len > n ? text + len - n : text;
}

#endif /* __linux__ */

/*
 * Headless Chromium loads index.html, which links a stylesheet, a script
 * and an image: the script marks the page only if the stylesheet applied
 * and the image decoded. The server's access log shows each of them
 * served with 200.
 */
static void http_browser_loads_page_with_assets(void **state)
{
    (void)state;
#ifndef __linux__
    fprintf(stderr, "skipped: the browser runs in a Linux network namespace of its own\n");
    skip();
#else
    proc_skip_without("chromium", "no real browser loads a page from http_server");
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        browser_child();
    }
    int wstatus = 0;
    long long deadline = proc_now_ms() + 50000;
    pid_t got = 0;
    while ((got = waitpid(pid, &wstatus, WNOHANG)) == 0 && proc_now_ms() < deadline) {
        poll(NULL, 0, 50);
    }
    if (got == 0) {
        kill(pid, SIGKILL);
        waitpid(pid, &wstatus, 0);
        fail_msg("the browser's run did not end within 50 s");
    }
    static char text[PROC_OUT_MAX + 1];
    int code = WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : -1;
    if (code == BROWSER_NO_NAMESPACE) {
        load("browser-why.txt", text, sizeof text);
        fprintf(stderr,
                "skipped: no network namespace of its own for the browser (%s); Chromium "
                "looks names up beyond loopback whatever its flags say, so it runs only "
                "where it can reach nothing else\n",
                text);
        skip();
    }
    if (code != BROWSER_RAN) {
        load("browser-why.txt", text, sizeof text);
        fail_msg("the browser's run ended with %d: %s", code, text);
    }
    load("browser-status.txt", text, sizeof text);
    int status = -1;
    int server_status = -1;
    if (sscanf(text, "%d %d", &status, &server_status) != 2) {
        fail_msg("the browser's run left no statuses: \"%s\"", text);
    }
    static char stderr_text[PROC_OUT_MAX + 1];
    load("browser-stderr.txt", stderr_text, sizeof stderr_text);
    if (status != 0) {
        fail_msg("chromium ended with %d (-1: killed after 30 s); its stderr ends:\n%s", status,
                 tail_of(stderr_text, 2000));
    }
    load("browser-dom.txt", text, sizeof text);
    if (strstr(text, "netx-page-complete") == NULL) {
        fail_msg("the page's script did not see its stylesheet and image; the DOM:\n%s\n"
                 "chromium's stderr ends:\n%s",
                 text, tail_of(stderr_text, 2000));
    }
    load("browser-server-stderr.txt", stderr_text, sizeof stderr_text);
    if (server_status != 0) {
        fail_msg("http_server ended with %d; its stderr:\n%s", server_status, stderr_text);
    }
    load("browser-log.txt", text, sizeof text);
    static const char *const served[] = {
        "\"GET / HTTP/1.1\" 200 ", "\"GET /style.css HTTP/1.1\" 200 ",
        "\"GET /app.js HTTP/1.1\" 200 ", "\"GET /pixel.png HTTP/1.1\" 200 "};
    for (size_t i = 0; i < sizeof served / sizeof served[0]; i++) {
        if (strstr(text, served[i]) == NULL) {
            fail_msg("the access log has no %s line:\n%s", served[i], text);
        }
    }
#endif
}

int main(void)
{
    support_offline_resolver();
    const struct CMUnitTest tests[] = {
        TEST(http_get_file_exact_bytes_and_headers),
        TEST(http_get_content_type_by_extension),
        TEST(http_head_same_headers_no_body),
        TEST(http_if_modified_since_same_date_not_modified),
        TEST(http_if_modified_since_older_date_full),
        TEST(http_dir_slash_serves_index),
        TEST(http_dir_no_slash_redirects),
        TEST(http_dir_double_slash_redirect_stays_on_site),
        TEST(http_dir_without_index_not_found),
        TEST(http_missing_file_not_found),
        TEST(http_unreadable_file_forbidden),
        TEST(http_fifo_forbidden_no_hang),
        TEST(http_other_methods_not_allowed),
        TEST(http_unknown_method_not_implemented),
        TEST(http_post_body_not_read_as_request),
        TEST(http_keep_alive_connection_reused),
        TEST(http_http10_closed_after_response),
        TEST(http_http10_keep_alive_stays_open),
        TEST(http_connection_close_honoured),
        TEST(http_idle_keep_alive_closed_after_timeout),
        TEST(http_lifetime_closes_busy_connection),
        TEST(http_large_file_100_mib_exact),
        TEST(http_crowd_of_200_each_served_exactly),
        TEST(http_unix_socket_served),
        TEST(http_access_log_common_format),
        TEST(http_traversal_forms_same_404),
        TEST(http_nul_byte_in_target_bad_request),
        TEST(http_symlink_inside_root_served),
        TEST(http_pipelined_requests_answered_in_order),
        TEST(http_long_request_line_uri_too_long),
        TEST(http_long_header_line_too_large),
        TEST(http_101_headers_too_large),
        TEST(http_request_body_too_large),
        TEST(http_no_host_bad_request),
        TEST(http_version_2_not_supported),
        TEST(http_garbage_bad_request),
        TEST(http_space_before_colon_bad_request),
        TEST(http_slowloris_timed_out_others_served),
        TEST(http_reset_mid_request_others_served),
        TEST(http_never_reading_client_others_served),
        TEST(http_cap_extra_client_busy),
        TEST(http_fd_limit_no_spin_recovers),
        TEST(http_fd_limit_existing_file_not_404),
        TEST(http_sigterm_large_response_finished_exit_zero),
        TEST(http_sigterm_idle_keep_alive_closed_at_once),
        TEST(http_second_signal_stops_at_once),
        TEST(http_missing_root_exits_one),
        TEST(http_server_host_empty_every_interface_port_hint),
        TEST(http_bad_flags_exit_two),
        TEST(http_browser_loads_page_with_assets),
    };
    return cmocka_run_group_tests_name("http", tests, make_site, end_group);
}
