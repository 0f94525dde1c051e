/*
 * tls_loadgen.c - the TLS load generator behind `make bench TLS=1`.
 *
 * It drives TLS echo servers (examples/tls_server.c, and its baseline
 * bench/raw_tls_echo.c) and reports one line of key=value figures on
 * standard output, as bench/loadgen.c does for plain TCP. It is written on
 * OpenSSL and epoll directly, and it is a program of its own so that the
 * plain load generator never links OpenSSL.
 *
 *   tls_loadgen handshake -p PORT [-q PORT] [-c CONNS] [-s BYTES] [-d MS]
 *                         [-w MS] [-S MS]
 *       CONNS connections at a time, each a new TCP connection with a full
 *       handshake (the client keeps no session, so none is ever resumed),
 *       then one BYTES-long message (default 16) and its echo - proof that
 *       the server finished its side - then close_notify and close; then
 *       the next connection in its place. Reports handshakes per second
 *       (rps) and the p50/p99 time of the whole exchange.
 *   tls_loadgen bulk -p PORT [-q PORT] [-s CHUNK] [-d MS]
 *       One TLS connection carries a stream in 16 MiB transfers, written
 *       in CHUNK-sized writes (default 16384, one record) while the echo
 *       is read back in the same thread (one SSL object cannot be used by
 *       two threads at once). Reports MB/s (10^6 bytes per second).
 *
 * With -q, both modes drive two servers in turns, A (-p) and B (-q): 100
 * ms slices (-S) of handshakes, or one transfer each, and every figure is
 * reported for each (keys ending _a and _b), so that whatever the machine
 * does meanwhile lands on both alike.
 *
 * The client does not check the server's certificate chain: the servers
 * are ours, on loopback, and the check would only add to the client's own
 * work. TLS itself still checks the server's signature over the handshake
 * (CertificateVerify) in every handshake. Every byte echoed is compared
 * with what was sent. Every wait is bounded. Exit status 0 when every check
 * passed, 1 when something failed (the reason goes to stderr), 2 for a bad
 * command line.
 *
 * Linux only (epoll). Built by `make bench TLS=1` alone, on OpenSSL 3.
 */
#define _GNU_SOURCE /* epoll, SOCK_NONBLOCK */

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

static const char *prog = "tls_loadgen";

/* Handshake times in a histogram of 1 us buckets up to 200 ms. */
#define BUCKET_NS 1000
#define BUCKETS   200000

/* After the measuring time, or at the end of a slice: how long the
 * exchanges in flight may take to finish. */
#define DRAIN_NS (2000LL * 1000000)

/* One wait for the socket in bulk: longer is a failure. */
#define BULK_WAIT_MS 5000

/* Bulk transfers, alternating between the servers with -q. */
#define BULK_TRANSFER (16LL << 20)

/* The bulk stream repeats a pattern whose period (251, a prime) divides no
 * buffer size, so a byte dropped, doubled or reordered shows up. */
#define PATTERN_PERIOD 251

#define MAX_MESSAGE 16384

struct options {
    const char *mode;
    const char *host;
    uint16_t port;
    uint16_t port_b;
    long conns;     /* -c */
    long size;      /* -s */
    double seconds; /* -d */
    long warmup_ms; /* -w */
    long slice_ms;  /* -S */
};

static void usage(FILE *out)
{
    fprintf(out,
            "usage: %s MODE -p PORT [-q PORT] [-H HOST] [-c N] [-s BYTES] [-d MS]\n"
            "                   [-w MS] [-S MS]\n"
            "  MODE      handshake or bulk\n"
            "  -H HOST   the server's numeric address (default 127.0.0.1)\n"
            "  -p PORT   the server's port\n"
            "  -q PORT   a second server, measured in turns with the first\n"
            "  -c N      handshake: connections at a time (default 16)\n"
            "  -s BYTES  handshake: the message echoed (default 16, at most 16384);\n"
            "            bulk: the size of each write (default 16384)\n"
            "  -d MS     how long to measure, in milliseconds (default 2000)\n"
            "  -w MS     handshake: warm-up before measuring, not counted (default 250)\n"
            "  -S MS     handshake with -q: each server's turn (default 100)\n",
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

static void die(const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s: ", prog);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    unsigned long e = ERR_peek_last_error();
    if (e != 0) {
        char reason[256];
        ERR_error_string_n(e, reason, sizeof reason);
        fprintf(stderr, " (%s)", reason);
    }
    fputc('\n', stderr);
    exit(1);
}

static long parse_long(int opt, const char *text, long lo, long hi)
{
    char *end = NULL;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (end == text || *end != '\0' || errno != 0 || v < lo || v > hi) {
        bad_usage("-%c \"%s\": not a number from %ld to %ld", opt, text, lo, hi);
    }
    return v;
}

static long long now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* The server's address, numeric only: no resolver in the measurement. */
static socklen_t server_addr(const struct options *o, uint16_t port, struct sockaddr_storage *ss)
{
    memset(ss, 0, sizeof *ss);
    struct sockaddr_in *v4 = (struct sockaddr_in *)ss;
    if (inet_pton(AF_INET, o->host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons(port);
        return sizeof *v4;
    }
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET6, o->host, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons(port);
        return sizeof *v6;
    }
    bad_usage("-H \"%s\": not a numeric IPv4 or IPv6 address", o->host);
    return 0;
}

static void set_nodelay(int fd)
{
    int one = 1;
    if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0) {
        die("setsockopt TCP_NODELAY: %s", strerror(errno));
    }
}

/* The client's configuration: OpenSSL's defaults (TLS 1.2 at least), no
 * session cache - every connection a full handshake - and no check of the
 * certificate chain (see the top of the file). */
static SSL_CTX *client_ctx(void)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (ctx == NULL || SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1) {
        die("SSL_CTX_new");
    }
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    return ctx;
}

/* ------------------------------------------------------------------------
 * handshake: new connections, one full handshake each
 * ------------------------------------------------------------------------ */

enum { H_IDLE, H_CONNECTING, H_SHAKING, H_WRITING, H_READING };

struct hconn {
    int fd;
    int state;
    int side;
    long id;
    SSL *ssl;
    unsigned events;    /* what epoll waits for */
    long long start_ns; /* connect() */
    uint64_t seq;       /* connections made in this slot */
    long got;
    unsigned char out[MAX_MESSAGE];
    unsigned char in[MAX_MESSAGE];
};

struct side {
    struct hconn *conns;
    uint32_t *hist;     /* exchange times inside its slices, after the warm-up */
    long long measured; /* handshakes completed inside its slices, after the warm-up */
    long long total;    /* every handshake completed */
    long long busy_ns;  /* time its slices lasted, after the warm-up */
    long in_flight;
};

struct run {
    const struct options *o;
    SSL_CTX *ctx;
    int ep;
    struct side sides[2];
    struct sockaddr_storage addr[2];
    socklen_t addrlen[2];
    int nsides;
    int active;
    int draining;
    long long slice_start;
    long long slice_stop;
    long long measure_from;
    long long deadline;
};

static double quantile(const uint32_t *hist, long long n, double q)
{
    if (n == 0) {
        return 0.0;
    }
    long long want = (long long)(q * (double)n);
    if (want < 1) {
        want = 1;
    }
    long long seen = 0;
    for (long b = 0; b < BUCKETS; b++) {
        seen += hist[b];
        if (seen >= want) {
            return ((double)b + 0.5) * BUCKET_NS / 1000.0;
        }
    }
    return (double)BUCKETS * BUCKET_NS / 1000.0;
}

/* The message of a connection: its bytes depend on the slot and on the
 * connection's number in it, so an echo from the wrong one never matches. */
static void fill(unsigned char *buf, long size, long id, uint64_t seq)
{
    for (long i = 0; i < size; i++) {
        buf[i] = (unsigned char)(id * 131 + (long)(seq * 7) + i);
    }
}

static void set_events(struct run *r, struct hconn *c, unsigned events)
{
    if (events != c->events) {
        struct epoll_event ev = {.events = events, .data.ptr = c};
        if (epoll_ctl(r->ep, EPOLL_CTL_MOD, c->fd, &ev) != 0) {
            die("epoll_ctl: %s", strerror(errno));
        }
        c->events = events;
    }
}

/* Start a new connection in slot c. */
static void h_start(struct run *r, struct hconn *c)
{
    int k = c->side;
    c->fd = socket(r->addr[k].ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        die("socket: %s", strerror(errno));
    }
    c->seq++;
    c->got = 0;
    c->ssl = NULL;
    c->start_ns = now_ns();
    c->state = H_CONNECTING;
    c->events = EPOLLOUT;
    struct epoll_event ev = {.events = EPOLLOUT, .data.ptr = c};
    if (epoll_ctl(r->ep, EPOLL_CTL_ADD, c->fd, &ev) != 0) {
        die("epoll_ctl: %s", strerror(errno));
    }
    if (connect(c->fd, (struct sockaddr *)&r->addr[k], r->addrlen[k]) != 0 &&
        errno != EINPROGRESS) {
        die("connect to server %c: %s", 'A' + k, strerror(errno));
    }
}

/* A TLS call could not go on: wait for what it wants, or fail. */
static void h_wait(struct run *r, struct hconn *c, int rc, const char *what)
{
    switch (SSL_get_error(c->ssl, rc)) {
    case SSL_ERROR_WANT_READ:
        set_events(r, c, EPOLLIN);
        break;
    case SSL_ERROR_WANT_WRITE:
        set_events(r, c, EPOLLOUT);
        break;
    default:
        die("server %c: %s failed (connection %ld.%llu)", 'A' + c->side, what, c->id,
            (unsigned long long)c->seq);
    }
}

/* Connection c made its exchange: count it, close it, start the next one
 * in its place unless its slice is over. */
static void h_done(struct run *r, struct hconn *c)
{
    long long now = now_ns();
    struct side *sd = &r->sides[c->side];
    SSL_shutdown(c->ssl); /* our close_notify; the server answers with its own */
    SSL_free(c->ssl);
    c->ssl = NULL;
    close(c->fd); /* leaves the epoll set with it */
    c->fd = -1;
    c->state = H_IDLE;
    sd->total++;
    if (c->start_ns >= r->measure_from && now <= r->deadline && !r->draining) {
        long long b = (now - c->start_ns) / BUCKET_NS;
        sd->hist[b < BUCKETS ? b : BUCKETS - 1]++;
        sd->measured++;
    }
    if (r->draining) {
        sd->in_flight--;
    } else {
        h_start(r, c);
    }
}

/* Take connection c as far as it goes now. */
static void h_step(struct run *r, struct hconn *c)
{
    long size = r->o->size;
    for (;;) {
        int rc;
        size_t n = 0;
        switch (c->state) {
        case H_CONNECTING: {
            int err = 0;
            socklen_t len = sizeof err;
            getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
            if (err != 0) {
                die("connect to server %c: %s", 'A' + c->side, strerror(err));
            }
            set_nodelay(c->fd);
            c->ssl = SSL_new(r->ctx);
            if (c->ssl == NULL || SSL_set_fd(c->ssl, c->fd) != 1) {
                die("SSL_new");
            }
            SSL_set_connect_state(c->ssl);
            c->state = H_SHAKING;
            break;
        }
        case H_SHAKING:
            rc = SSL_do_handshake(c->ssl);
            if (rc != 1) {
                h_wait(r, c, rc, "the handshake");
                return;
            }
            fill(c->out, size, c->id, c->seq);
            c->state = H_WRITING;
            break;
        case H_WRITING:
            rc = SSL_write_ex(c->ssl, c->out, (size_t)size, &n);
            if (rc != 1) {
                h_wait(r, c, rc, "a write");
                return;
            }
            c->state = H_READING; /* one record: written whole */
            break;
        case H_READING:
            rc = SSL_read_ex(c->ssl, c->in + c->got, (size_t)(size - c->got), &n);
            if (rc != 1) {
                h_wait(r, c, rc, "a read");
                return;
            }
            c->got += (long)n;
            if (c->got == size) {
                if (memcmp(c->in, c->out, (size_t)size) != 0) {
                    die("server %c: the echo differs", 'A' + c->side);
                }
                h_done(r, c);
                return;
            }
            break;
        default:
            return;
        }
    }
}

static void h_slice(struct run *r, int k)
{
    r->active = k;
    r->draining = 0;
    r->slice_start = now_ns();
    for (long i = 0; i < r->o->conns; i++) {
        h_start(r, &r->sides[k].conns[i]);
    }
    r->sides[k].in_flight = r->o->conns;
}

static void close_slice(struct run *r, long long now)
{
    long long from = r->slice_start > r->measure_from ? r->slice_start : r->measure_from;
    long long to = now < r->deadline ? now : r->deadline;
    if (to > from) {
        r->sides[r->active].busy_ns += to - from;
    }
    r->draining = 1;
    r->slice_stop = now;
}

static void run_handshake(const struct options *o)
{
    static struct run r;
    uint16_t ports[2] = {o->port, o->port_b};
    struct epoll_event events[256];

    r.o = o;
    r.ctx = client_ctx();
    r.nsides = o->port_b != 0 ? 2 : 1;
    r.ep = epoll_create1(EPOLL_CLOEXEC);
    if (r.ep < 0) {
        die("epoll_create1: %s", strerror(errno));
    }
    for (int k = 0; k < r.nsides; k++) {
        r.addrlen[k] = server_addr(o, ports[k], &r.addr[k]);
        r.sides[k].conns = calloc((size_t)o->conns, sizeof *r.sides[k].conns);
        r.sides[k].hist = calloc(BUCKETS, sizeof *r.sides[k].hist);
        if (r.sides[k].conns == NULL || r.sides[k].hist == NULL) {
            die("out of memory");
        }
        for (long i = 0; i < o->conns; i++) {
            r.sides[k].conns[i].side = k;
            r.sides[k].conns[i].id = i;
            r.sides[k].conns[i].fd = -1;
        }
    }
    long long slice_ns = r.nsides == 2 ? o->slice_ms * 1000000LL : (long long)4e18;
    r.measure_from = now_ns() + o->warmup_ms * 1000000LL;
    r.deadline = r.measure_from + (long long)(o->seconds * 1e9);
    h_slice(&r, 0);
    for (;;) {
        long long now = now_ns();
        int finished = now >= r.deadline;
        if (!r.draining && (finished || now - r.slice_start >= slice_ns)) {
            close_slice(&r, now);
        }
        if (r.draining && r.sides[r.active].in_flight == 0) {
            if (finished) {
                break;
            }
            h_slice(&r, (r.active + 1) % r.nsides);
        }
        if (r.draining && now - r.slice_stop > DRAIN_NS) {
            die("server %c: %ld handshakes unfinished 2 s after the end of a slice", 'A' + r.active,
                r.sides[r.active].in_flight);
        }
        int n = epoll_wait(r.ep, events, 256, 10);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            die("epoll_wait: %s", strerror(errno));
        }
        for (int i = 0; i < n; i++) {
            h_step(&r, events[i].data.ptr);
        }
    }
    printf("mode=handshake conns=%ld size=%ld seconds=%.3f", o->conns, o->size, o->seconds);
    for (int k = 0; k < r.nsides; k++) {
        const struct side *sd = &r.sides[k];
        const char *sfx = r.nsides == 1 ? "" : (k == 0 ? "_a" : "_b");
        double secs = (double)sd->busy_ns / 1e9;
        printf(" handshakes%s=%lld total%s=%lld rps%s=%.1f p50%s_us=%.1f p99%s_us=%.1f", sfx,
               sd->measured, sfx, sd->total, sfx, secs > 0 ? (double)sd->measured / secs : 0.0, sfx,
               quantile(sd->hist, sd->measured, 0.50), sfx, quantile(sd->hist, sd->measured, 0.99));
    }
    printf(" errors=0\n");
    close(r.ep);
    SSL_CTX_free(r.ctx);
}

/* ------------------------------------------------------------------------
 * bulk: a stream through the echo server over one TLS connection
 * ------------------------------------------------------------------------ */

/* A TLS connection to port, the handshake done (blocking), then made
 * non-blocking for the stream. */
static SSL *bulk_connect(const struct options *o, SSL_CTX *ctx, uint16_t port, int *fd_out)
{
    struct sockaddr_storage ss;
    socklen_t len = server_addr(o, port, &ss);
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&ss, len) != 0) {
        die("connect to port %u: %s", port, strerror(errno));
    }
    set_nodelay(fd);
    SSL *ssl = SSL_new(ctx);
    if (ssl == NULL || SSL_set_fd(ssl, fd) != 1 || SSL_connect(ssl) != 1) {
        die("handshake with port %u", port);
    }
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) != 0) {
        die("fcntl O_NONBLOCK: %s", strerror(errno));
    }
    *fd_out = fd;
    return ssl;
}

/* One transfer of len bytes at stream offset off: written and read back at
 * once, every byte checked. Returns the nanoseconds it took. */
static long long bulk_transfer(SSL *ssl, int fd, long chunk, const unsigned char *pat,
                               unsigned char *buf, long long off, long long len, char which)
{
    long long sent = 0;
    long long got = 0;
    long long t0 = now_ns();
    while (got < len) {
        int progress = 0;
        short wait_events = 0;
        if (sent < len) {
            size_t want = (size_t)(len - sent < chunk ? len - sent : chunk);
            size_t n = 0;
            int rc = SSL_write_ex(ssl, pat + (off + sent) % PATTERN_PERIOD, want, &n);
            if (rc == 1) {
                sent += (long long)n;
                progress = 1;
            } else {
                int e = SSL_get_error(ssl, rc);
                if (e == SSL_ERROR_WANT_WRITE) {
                    wait_events |= POLLOUT;
                } else if (e == SSL_ERROR_WANT_READ) {
                    wait_events |= POLLIN;
                } else {
                    die("bulk: server %c: a write failed after %lld bytes", which, off + sent);
                }
            }
        }
        size_t n = 0;
        int rc = SSL_read_ex(ssl, buf, (size_t)chunk, &n);
        if (rc == 1) {
            if (n > (size_t)(len - got) ||
                memcmp(buf, pat + (off + got) % PATTERN_PERIOD, n) != 0) {
                die("bulk: server %c: the echo differs from the stream near byte %lld", which,
                    off + got);
            }
            got += (long long)n;
            progress = 1;
        } else {
            int e = SSL_get_error(ssl, rc);
            if (e == SSL_ERROR_WANT_READ) {
                wait_events |= POLLIN;
            } else if (e == SSL_ERROR_WANT_WRITE) {
                wait_events |= POLLOUT;
            } else {
                die("bulk: server %c: a read failed after %lld bytes", which, off + got);
            }
        }
        if (!progress) {
            struct pollfd p = {.fd = fd, .events = wait_events, .revents = 0};
            int k = poll(&p, 1, BULK_WAIT_MS);
            if (k == 0) {
                die("bulk: server %c: no progress for %d ms", which, BULK_WAIT_MS);
            }
            if (k < 0 && errno != EINTR) {
                die("poll: %s", strerror(errno));
            }
        }
    }
    return now_ns() - t0;
}

static void run_bulk(const struct options *o)
{
    uint16_t ports[2] = {o->port, o->port_b};
    int nsides = o->port_b != 0 ? 2 : 1;
    long chunk = o->size;
    SSL_CTX *ctx = client_ctx();
    unsigned char *pat = malloc((size_t)chunk + PATTERN_PERIOD);
    unsigned char *buf = malloc((size_t)chunk);
    SSL *ssl[2] = {NULL, NULL};
    int fds[2] = {-1, -1};
    long long bytes[2] = {0, 0};
    long long ns[2] = {0, 0};

    if (pat == NULL || buf == NULL) {
        die("out of memory");
    }
    for (long i = 0; i < chunk + PATTERN_PERIOD; i++) {
        pat[i] = (unsigned char)((i % PATTERN_PERIOD) * 97 + 13);
    }
    for (int k = 0; k < nsides; k++) {
        ssl[k] = bulk_connect(o, ctx, ports[k], &fds[k]);
    }
    long long deadline = now_ns() + (long long)(o->seconds * 1e9);
    for (long t = 0; now_ns() < deadline || t < nsides; t++) {
        int k = (int)(t % nsides);
        ns[k] += bulk_transfer(ssl[k], fds[k], chunk, pat, buf, bytes[k], BULK_TRANSFER,
                               (char)('A' + k));
        bytes[k] += BULK_TRANSFER;
    }
    printf("mode=bulk chunk=%ld seconds=%.3f", chunk, o->seconds);
    for (int k = 0; k < nsides; k++) {
        const char *sfx = nsides == 1 ? "" : (k == 0 ? "_a" : "_b");
        printf(" bytes%s=%lld total%s=%lld mb_s%s=%.1f", sfx, bytes[k], sfx, bytes[k], sfx,
               (double)bytes[k] / 1e6 / ((double)ns[k] / 1e9));
    }
    printf(" errors=0\n");
    for (int k = 0; k < nsides; k++) {
        /* close_notify, then close: the server ends its side cleanly. */
        int fl = fcntl(fds[k], F_GETFL);
        fcntl(fds[k], F_SETFL, fl & ~O_NONBLOCK);
        SSL_shutdown(ssl[k]);
        SSL_free(ssl[k]);
        close(fds[k]);
    }
    SSL_CTX_free(ctx);
    free(pat);
    free(buf);
}

int main(int argc, char **argv)
{
    struct options o = {.host = "127.0.0.1",
                        .conns = 16,
                        .size = -1,
                        .seconds = 2.0,
                        .warmup_ms = 250,
                        .slice_ms = 100};
    int have_port = 0;
    int opt;

    if (argc < 2 || argv[1][0] == '-') {
        if (argc >= 2 && strcmp(argv[1], "-h") == 0) {
            usage(stdout);
            return 0;
        }
        bad_usage("the first argument must be the mode");
    }
    o.mode = argv[1];
    optind = 2;
    opterr = 0;
    while ((opt = getopt(argc, argv, ":hH:p:q:c:s:d:w:S:")) != -1) {
        switch (opt) {
        case 'h':
            usage(stdout);
            return 0;
        case 'H':
            o.host = optarg;
            break;
        case 'p':
            o.port = (uint16_t)parse_long(opt, optarg, 1, 65535);
            have_port = 1;
            break;
        case 'q':
            o.port_b = (uint16_t)parse_long(opt, optarg, 1, 65535);
            break;
        case 'c':
            o.conns = parse_long(opt, optarg, 1, 10000);
            break;
        case 's':
            o.size = parse_long(opt, optarg, 1, MAX_MESSAGE);
            break;
        case 'd':
            o.seconds = (double)parse_long(opt, optarg, 1, 3600000) / 1000.0;
            break;
        case 'w':
            o.warmup_ms = parse_long(opt, optarg, 0, 600000);
            break;
        case 'S':
            o.slice_ms = parse_long(opt, optarg, 1, 600000);
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
    if (!have_port) {
        bad_usage("-p PORT is required");
    }
    /* OpenSSL's socket BIO writes with write(2): a server that has gone
     * must be an error we report, not a SIGPIPE. */
    signal(SIGPIPE, SIG_IGN);
    if (strcmp(o.mode, "handshake") == 0) {
        o.size = o.size < 0 ? 16 : o.size;
        run_handshake(&o);
    } else if (strcmp(o.mode, "bulk") == 0) {
        o.size = o.size < 0 ? 16384 : o.size;
        run_bulk(&o);
    } else {
        bad_usage("unknown mode \"%s\"", o.mode);
    }
    return 0;
}
