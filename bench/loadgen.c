/*
 * loadgen.c - the load generator behind `make bench`.
 *
 * It drives an echo server (one of the examples, or one of the raw-syscall
 * baselines next to this file) and reports one line of key=value figures on
 * standard output, so that bench/run.sh can compare two servers doing the
 * same job. It is written directly on system calls and epoll, so that the
 * generator costs as little as possible and the server is what is measured.
 *
 *   loadgen pingpong -p PORT [-c CONNS] [-s BYTES] [-d MS] [-w MS]
 *       CONNS connections, each sending one BYTES-long message and waiting
 *       for its echo before sending the next (a closed loop). Reports
 *       requests per second and the p50/p99 round-trip latency.
 *   loadgen connect -p PORT [-c CONNS] [-s BYTES] [-d MS] [-w MS]
 *       As pingpong, but every request on a new TCP connection: connect,
 *       send one message, read its echo, close; CONNS of them at a time.
 *       What a load balancer mostly does: accept, connect to a backend,
 *       pass a request and its answer, close. The latency counts it all,
 *       from socket() to the echo's last byte.
 *   loadgen abping -p PORT_A -q PORT_B [-r PORT_C] [-s BYTES] [-d MS] [-w MS]
 *       One connection to each of two servers (or three, with -r), round
 *       trips alternating between them (A B B A ...; with three, in all
 *       six orders by turns), so that all are measured under the same
 *       conditions. Reports p50/p99 latency of each.
 *   loadgen bulk -p PORT [-s CHUNK] [-d MS]
 *       One connection carries a stream in 32 MiB transfers: one thread
 *       sends each transfer in CHUNK-sized sends while the other reads the
 *       echo back at the same time. Reports MB/s (10^6 bytes per second).
 *   loadgen udp -p PORT [-c SOCKETS] [-s BYTES] [-d MS] [-w MS]
 *       As pingpong, with datagrams. A datagram may be lost, so a request
 *       unanswered for 200 ms is counted as lost and sent again.
 *   loadgen many -p PORT [-c CONNS] [-s BYTES] [-k SECONDS]
 *       Open CONNS connections at once (raising RLIMIT_NOFILE), complete one
 *       round trip on every one, and keep them all open and idle for -k
 *       seconds (SIGTERM ends it sooner) so that the server's memory can be
 *       read meanwhile.
 *
 *   loadgen httpget -p PORT -u PATH -f FILE
 *       One HTTP/1.1 GET of PATH on a new connection; the answer must be
 *       200 with FILE's length and every byte of FILE. `make bench` checks
 *       with it that http_server and nginx serve the file it measures
 *       (the HTTP load itself comes from wrk).
 *   loadgen freeport
 *       Print a TCP port on the address (-H) that nobody listens on now,
 *       for a server that cannot be told to take any free one (nginx).
 *
 * With -q PORT, pingpong, connect, udp and bulk drive two servers in turns
 * - A (-p) for a 100 ms slice (-S) or one 32 MiB transfer, then B (-q), and
 * so on - and report every figure for each (keys ending _a and _b).
 * Compared that way, the two meet the same conditions; two runs one after
 * the other meet whatever the machine was doing at each time, which on a
 * shared or virtual machine varies by more than the differences being
 * measured.
 *
 * Every byte that comes back is compared with what was sent. Every mode
 * stops by itself: each wait is bounded (-d, plus fixed grace periods), and
 * -n bounds the number of requests too. Exit status 0 when every check
 * passed, 1 when something failed (the reason goes to stderr), 2 for a bad
 * command line.
 *
 * Linux only (epoll), like the raw baselines it is used with.
 */
#define _GNU_SOURCE /* MSG_NOSIGNAL and epoll are Linux's */

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const char *prog = "loadgen";

/* Latencies are counted in a histogram of 100 ns buckets up to 50 ms; a
 * loopback round trip is tens of microseconds, so 100 ns keeps a 5 %
 * difference visible, and anything slower than 50 ms lands in the last
 * bucket (and is still counted). */
#define BUCKET_NS 100
#define BUCKETS   500000

/* A UDP request unanswered this long is taken as lost and sent again. */
#define UDP_RETRY_NS (200LL * 1000000)

/* After the measuring time, how long to wait for echoes still on the way. */
#define DRAIN_NS (1000LL * 1000000)

/* "many": connections being set up at once. The listen queue holds a few
 * thousand; staying well below it means no SYN is dropped and retried a
 * second later, which would measure the kernel's retry timer, not the
 * server. */
#define MANY_CONNECTING 256

/* "many": the whole job must be done within this time. */
#define MANY_LIMIT_NS (60LL * 1000000000)

/* The bulk stream repeats a pattern whose period (251, a prime) does not
 * divide any buffer size, so a byte dropped, doubled or reordered anywhere
 * shows up as a mismatch. */
#define PATTERN_PERIOD 251

struct options {
    const char *mode;
    const char *host;
    uint16_t port;
    uint16_t port_b;   /* -q: the second server, for abping */
    uint16_t port_c;   /* -r: a third one, for abping */
    long conns;        /* -c */
    long size;         /* -s */
    double seconds;    /* -d */
    long warmup_ms;    /* -w */
    long long max_ops; /* -n: 0 means no limit other than time */
    long hold_s;       /* -k */
    long slice_ms;     /* -S: with -q, how long each server's turn lasts */
    const char *path;  /* -u: httpget */
    const char *file;  /* -f: httpget */
};

static void usage(FILE *out)
{
    fprintf(out,
            "usage: %s MODE -p PORT [-q PORT] [-r PORT] [-H HOST] [-c N] [-s BYTES]\n"
            "               [-d MS] [-w MS] [-n MAX] [-k SECONDS] [-S MS] [-u PATH -f FILE]\n"
            "  MODE      pingpong, connect, abping, bulk, udp, many, httpget or freeport\n"
            "  -H HOST   the server's numeric address (default 127.0.0.1)\n"
            "  -p PORT   the server's port\n"
            "  -q PORT   a second server, measured in turns with the first\n"
            "            (pingpong, connect, udp, bulk: slices; abping: round trip by\n"
            "            round trip)\n"
            "  -r PORT   abping: a third server, in turns with the other two\n"
            "  -c N      connections or sockets (default 50; 10000 for many)\n"
            "  -s BYTES  message size (default 64; chunk size 65536 for bulk)\n"
            "  -d MS     how long to measure, in milliseconds (default 2000)\n"
            "  -w MS     warm-up before measuring, not counted (default 250)\n"
            "  -n MAX    stop after MAX requests (default: time only)\n"
            "  -k SEC    many: hold the connections open that long (default 0)\n"
            "  -S MS     with -q, each server's turn in pingpong, connect and udp\n"
            "            (default 100)\n"
            "  -u PATH   httpget: the path to ask for (\"/f1k.bin\")\n"
            "  -f FILE   httpget: the file whose bytes the answer must carry\n",
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

/* Report a failure that ends the run. */
static void die(const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s: ", prog);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
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

/* The server's address, IPv4 or IPv6, numeric only: no resolver in the
 * measurement. */
static socklen_t server_addr_port(const struct options *o, uint16_t port,
                                  struct sockaddr_storage *ss)
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

static socklen_t server_addr(const struct options *o, struct sockaddr_storage *ss)
{
    return server_addr_port(o, o->port, ss);
}

/* Many connections need many descriptors: raise the soft limit as far as
 * the hard limit allows, and say so if that is not enough. */
static void raise_fd_limit(long need)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
        return;
    }
    if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >= (rlim_t)need) {
        return;
    }
    rl.rlim_cur = rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0 ||
        (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < (rlim_t)need)) {
        die("need %ld descriptors, RLIMIT_NOFILE allows %llu", need,
            (unsigned long long)rl.rlim_cur);
    }
}

static void set_nonblocking(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) != 0) {
        die("fcntl O_NONBLOCK: %s", strerror(errno));
    }
}

static void set_nodelay(int fd)
{
    int one = 1;
    if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0) {
        die("setsockopt TCP_NODELAY: %s", strerror(errno));
    }
}

/* A blocking TCP connection to the server, Nagle off. */
static int tcp_connect(const struct sockaddr_storage *ss, socklen_t len)
{
    int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        die("socket: %s", strerror(errno));
    }
    if (connect(fd, (const struct sockaddr *)ss, len) != 0) {
        die("connect: %s", strerror(errno));
    }
    set_nodelay(fd);
    return fd;
}

/* What one request carries: its bytes depend on the connection and on the
 * request's number, so an echo sent to the wrong connection, an old echo or
 * a corrupted one never matches. */
static void fill_message(unsigned char *buf, long size, long id, uint64_t seq)
{
    unsigned char base = (unsigned char)(id * 131 + (long)(seq * 7));
    for (long i = 0; i < size; i++) {
        buf[i] = (unsigned char)(base + i);
    }
    /* The request number in the first bytes too, where it fits, so that two
     * requests 256 apart still differ. */
    size_t n = (size_t)size < sizeof seq ? (size_t)size : sizeof seq;
    memcpy(buf, &seq, n);
}

/* ------------------------------------------------------------------------
 * Latency histogram
 * ------------------------------------------------------------------------ */

struct histogram {
    uint32_t *count; /* BUCKETS buckets of BUCKET_NS */
    uint64_t total;
};

static void hist_init(struct histogram *h)
{
    h->count = calloc(BUCKETS, sizeof *h->count);
    if (h->count == NULL) {
        die("out of memory");
    }
    h->total = 0;
}

static void hist_add(struct histogram *h, long long ns)
{
    long long b = ns / BUCKET_NS;
    if (b >= BUCKETS) {
        b = BUCKETS - 1;
    }
    if (b < 0) {
        b = 0;
    }
    h->count[b]++;
    h->total++;
}

/* The latency below which a fraction q of the requests fall, in
 * microseconds (the middle of the bucket that holds it). */
static double hist_quantile(const struct histogram *h, double q)
{
    if (h->total == 0) {
        return 0.0;
    }
    uint64_t want = (uint64_t)(q * (double)h->total);
    if (want < 1) {
        want = 1;
    }
    uint64_t seen = 0;
    for (long b = 0; b < BUCKETS; b++) {
        seen += h->count[b];
        if (seen >= want) {
            return ((double)b + 0.5) * BUCKET_NS / 1000.0;
        }
    }
    return (double)BUCKETS * BUCKET_NS / 1000.0;
}

/* ------------------------------------------------------------------------
 * Sides and slices: one server, or two measured in alternation
 * ------------------------------------------------------------------------ */

/*
 * With -q, the load generator drives two servers, A (-p) and B (-q), each
 * with its own connections, in alternating time slices (-S): A's
 * connections work while B's sit idle, then the other way round. A slice
 * ends by letting the requests in flight finish, so the next one starts on
 * a quiet machine. Whatever the machine does meanwhile - another program
 * waking up, the host stealing time - lands on both servers alike, a few
 * slices apart, instead of on whichever ran during the disturbance.
 */

struct conn {
    int fd;
    int side; /* which server: 0 (A) or 1 (B) */
    long id;
    uint64_t seq;       /* number of the request in flight */
    long sent;          /* bytes of it sent so far */
    long got;           /* bytes of its echo received so far */
    long long start_ns; /* when its first byte was sent */
    int want_out;       /* EPOLLOUT is on (a send was short) */
    int idle;           /* no request in flight */
    unsigned char *out; /* the request */
    unsigned char *in;  /* its echo */
};

struct side {
    struct conn *conns; /* this server's connections */
    struct histogram h; /* latencies inside its slices, after the warm-up */
    long long measured; /* requests completed inside its slices, after the warm-up */
    long long total;    /* every request completed */
    long long busy_ns;  /* time its slices lasted, after the warm-up */
    long long lost;     /* udp: requests given up after UDP_RETRY_NS */
    long long late;     /* udp: answers that came after being given up */
    long in_flight;
    /* The server's address: connect mode opens a connection to it for
     * every request. */
    struct sockaddr_storage addr;
    socklen_t addrlen;
};

struct schedule {
    int nsides;
    int active;             /* the side whose slice it is */
    int draining;           /* its slice is over: waiting for its requests in flight */
    long long slice_ns;     /* -S, or the whole run with one side */
    long long slice_start;  /* when the active side's slice began */
    long long slice_stop;   /* when it stopped sending new requests */
    long long measure_from; /* end of the warm-up */
    long long deadline;     /* end of the measuring time */
};

/* Is a request started at start and completed at done one to count? It
 * must lie after the warm-up, before the deadline, and inside its slice
 * (not in the drain at the end of it). */
static int counts(const struct schedule *s, long long start, long long done)
{
    if (start < s->measure_from || done > s->deadline) {
        return 0;
    }
    return !s->draining || done <= s->slice_stop;
}

/* The active slice has ended at now: add its length inside the measuring
 * window to its side. */
static void close_slice(struct schedule *s, struct side *sides, long long now)
{
    long long from = s->slice_start > s->measure_from ? s->slice_start : s->measure_from;
    long long to = now < s->deadline ? now : s->deadline;
    if (to > from) {
        sides[s->active].busy_ns += to - from;
    }
    s->draining = 1;
    s->slice_stop = now;
}

static void print_side(const struct side *sd, const char *suffix)
{
    double secs = (double)sd->busy_ns / 1e9;
    printf(" requests%s=%lld total%s=%lld rps%s=%.1f p50%s_us=%.2f p99%s_us=%.2f", suffix,
           sd->measured, suffix, sd->total, suffix, secs > 0 ? (double)sd->measured / secs : 0.0,
           suffix, hist_quantile(&sd->h, 0.50), suffix, hist_quantile(&sd->h, 0.99));
}

static void print_sides(const struct side *sides, int nsides)
{
    if (nsides == 1) {
        print_side(&sides[0], "");
    } else {
        print_side(&sides[0], "_a");
        print_side(&sides[1], "_b");
    }
}

static long long slice_length(const struct options *o)
{
    return o->port_b != 0 ? o->slice_ms * 1000000LL : (long long)4e18;
}

/* ------------------------------------------------------------------------
 * pingpong: CONNS TCP connections, one message in flight on each
 * ------------------------------------------------------------------------ */

static void conn_events(int ep, struct conn *c, int want_out)
{
    struct epoll_event ev = {.events = EPOLLIN | (want_out ? EPOLLOUT : 0u), .data.ptr = c};
    if (epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev) != 0) {
        die("epoll_ctl: %s", strerror(errno));
    }
    c->want_out = want_out;
}

/* Send what is left of the request in flight; switch EPOLLOUT on while the
 * socket has no room. */
static void conn_push(int ep, struct conn *c, long size)
{
    while (c->sent < size) {
        ssize_t n = send(c->fd, c->out + c->sent, (size_t)(size - c->sent), MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                break;
            }
            if (errno == EINTR) {
                continue;
            }
            die("send on connection %ld: %s", c->id, strerror(errno));
        }
        c->sent += n;
    }
    int want_out = c->sent < size;
    if (want_out != c->want_out) {
        conn_events(ep, c, want_out);
    }
}

static void conn_start(int ep, struct conn *c, long size)
{
    c->seq++;
    fill_message(c->out, size, c->id, c->seq);
    c->sent = 0;
    c->got = 0;
    c->idle = 0;
    c->start_ns = now_ns();
    conn_push(ep, c, size);
}

/*
 * connect mode: the next request on a connection of its own. The clock
 * starts before socket(), so the latency counts the whole of it: the
 * handshake, the proxy's accept and its own connect to the backend, the
 * round trip. On loopback the handshake is over by the time a non-blocking
 * connect() returns (it says EINPROGRESS all the same), so the request is
 * sent at once; if it was not, send() says EAGAIN and EPOLLOUT says when.
 */
static void connect_start(int ep, const struct side *sd, struct conn *c, long size)
{
    c->seq++;
    fill_message(c->out, size, c->id, c->seq);
    c->sent = 0;
    c->got = 0;
    c->idle = 0;
    c->start_ns = now_ns();
    c->fd = socket(sd->addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (c->fd < 0) {
        die("socket for connection %ld: %s", c->id, strerror(errno));
    }
    set_nodelay(c->fd);
    if (connect(c->fd, (const struct sockaddr *)&sd->addr, sd->addrlen) != 0 &&
        errno != EINPROGRESS) {
        die("connect (connection %ld): %s", c->id, strerror(errno));
    }
    ssize_t n = send(c->fd, c->out, (size_t)size, MSG_NOSIGNAL);
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
        die("send on connection %ld: %s", c->id, strerror(errno));
    }
    c->sent = n > 0 ? n : 0;
    c->want_out = c->sent < size;
    struct epoll_event ev = {.events = EPOLLIN | (c->want_out ? EPOLLOUT : 0u), .data.ptr = c};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev) != 0) {
        die("epoll_ctl: %s", strerror(errno));
    }
}

/* Start a slice for side k: a request on each of its connections (on a
 * new connection each, in connect mode). */
static void pingpong_slice(int ep, struct schedule *s, struct side *sides, int k, long conns,
                           long size, int reconnect)
{
    s->active = k;
    s->draining = 0;
    s->slice_start = now_ns();
    for (long i = 0; i < conns; i++) {
        if (reconnect) {
            connect_start(ep, &sides[k], &sides[k].conns[i], size);
        } else {
            conn_start(ep, &sides[k].conns[i], size);
        }
    }
    sides[k].in_flight = conns;
}

/* What open_sides() opens for each client. */
enum { OPEN_TCP, OPEN_UDP, OPEN_NONE };

/*
 * Open o->conns connections to each of the nsides servers (ports[k]): TCP
 * connections (OPEN_TCP), connected UDP sockets (OPEN_UDP), or none yet
 * (OPEN_NONE: connect mode opens one per request). Each gets its buffers
 * and is registered with the epoll set ep. Returns the epoll set.
 */
static int open_sides(const struct options *o, const uint16_t ports[2], int nsides,
                      struct side sides[2], int kind)
{
    int udp = kind == OPEN_UDP;
    /* For UDP, one byte more than a request: a longer datagram shows up as
     * a length mismatch instead of being cut to size. */
    size_t bufsize = (size_t)o->size + (udp ? 1 : 0);

    memset(sides, 0, 2 * sizeof *sides);
    raise_fd_limit(o->conns * nsides + 16);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0) {
        die("epoll_create1: %s", strerror(errno));
    }
    for (int k = 0; k < nsides; k++) {
        struct sockaddr_storage ss;
        socklen_t sslen = server_addr_port(o, ports[k], &ss);
        sides[k].addr = ss;
        sides[k].addrlen = sslen;
        sides[k].conns = calloc((size_t)o->conns, sizeof *sides[k].conns);
        if (sides[k].conns == NULL) {
            die("out of memory");
        }
        hist_init(&sides[k].h);
        for (long i = 0; i < o->conns; i++) {
            struct conn *c = &sides[k].conns[i];
            c->side = k;
            c->id = i;
            c->idle = 1;
            c->out = malloc(bufsize);
            c->in = malloc(bufsize);
            if (c->out == NULL || c->in == NULL) {
                die("out of memory");
            }
            if (kind == OPEN_NONE) {
                c->fd = -1;
                continue;
            }
            if (udp) {
                c->fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
                if (c->fd < 0 || connect(c->fd, (struct sockaddr *)&ss, sslen) != 0) {
                    die("udp socket: %s", strerror(errno));
                }
            } else {
                c->fd = tcp_connect(&ss, sslen);
                set_nonblocking(c->fd);
            }
            struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
            if (epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev) != 0) {
                die("epoll_ctl: %s", strerror(errno));
            }
        }
    }
    return ep;
}

/* pingpong, and connect mode (reconnect: a new connection per request,
 * closed by the client once its echo is back). */
static void run_pingpong(const struct options *o, int reconnect)
{
    uint16_t ports[2] = {o->port, o->port_b};
    int nsides = o->port_b != 0 ? 2 : 1;
    long size = o->size;
    struct side sides[2];
    struct epoll_event *events = calloc((size_t)(o->conns * nsides), sizeof *events);

    if (events == NULL) {
        die("out of memory");
    }
    int ep = open_sides(o, ports, nsides, sides, reconnect ? OPEN_NONE : OPEN_TCP);
    long long t0 = now_ns();
    struct schedule s = {.nsides = nsides, .slice_ns = slice_length(o)};
    s.measure_from = t0 + o->warmup_ms * 1000000LL;
    s.deadline = s.measure_from + (long long)(o->seconds * 1e9);
    long long total = 0;
    pingpong_slice(ep, &s, sides, 0, o->conns, size, reconnect);

    for (;;) {
        long long now = now_ns();
        int finished = now >= s.deadline || (o->max_ops > 0 && total >= o->max_ops);
        if (!s.draining && (finished || now - s.slice_start >= s.slice_ns)) {
            close_slice(&s, sides, now);
        }
        if (s.draining && sides[s.active].in_flight == 0) {
            if (finished) {
                break;
            }
            pingpong_slice(ep, &s, sides, (s.active + 1) % nsides, o->conns, size, reconnect);
        }
        if (s.draining && now - s.slice_stop > DRAIN_NS) {
            die("%ld echoes still missing 1 s after the end of a slice", sides[s.active].in_flight);
        }
        int n = epoll_wait(ep, events, (int)(o->conns * nsides), 10);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            die("epoll_wait: %s", strerror(errno));
        }
        for (int e = 0; e < n; e++) {
            struct conn *c = events[e].data.ptr;
            if (c->idle) {
                continue;
            }
            if (events[e].events & EPOLLOUT) {
                conn_push(ep, c, size);
            }
            if (!(events[e].events & (EPOLLIN | EPOLLHUP | EPOLLERR))) {
                continue;
            }
            ssize_t got = recv(c->fd, c->in + c->got, (size_t)(size - c->got), 0);
            if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
                continue;
            }
            if (got < 0) {
                die("recv on connection %ld: %s", c->id, strerror(errno));
            }
            if (got == 0) {
                die("connection %ld: the server closed it", c->id);
            }
            c->got += got;
            if (c->got > c->sent) {
                die("connection %ld: more bytes back than were sent", c->id);
            }
            if (c->got < size) {
                continue;
            }
            if (memcmp(c->in, c->out, (size_t)size) != 0) {
                die("connection %ld: request %llu came back different", c->id,
                    (unsigned long long)c->seq);
            }
            long long done = now_ns();
            struct side *sd = &sides[c->side];
            sd->total++;
            total++;
            if (counts(&s, c->start_ns, done)) {
                sd->measured++;
                hist_add(&sd->h, done - c->start_ns);
            }
            if (reconnect) {
                /* The client closes first (and keeps the TIME_WAIT, which
                 * Linux reuses at once on loopback: tcp_tw_reuse = 2, its
                 * default). close() takes it out of the epoll set too. */
                close(c->fd);
                c->fd = -1;
            }
            if (s.draining) {
                c->idle = 1;
                sd->in_flight--;
            } else if (reconnect) {
                connect_start(ep, sd, c, size);
            } else {
                conn_start(ep, c, size);
            }
        }
    }
    printf("mode=%s conns=%ld size=%ld seconds=%.3f", reconnect ? "connect" : "pingpong", o->conns,
           size, o->seconds);
    print_sides(sides, nsides);
    printf(" errors=0\n");
    for (int k = 0; k < nsides; k++) {
        for (long i = 0; i < o->conns; i++) {
            if (sides[k].conns[i].fd >= 0) {
                close(sides[k].conns[i].fd);
            }
            free(sides[k].conns[i].out);
            free(sides[k].conns[i].in);
        }
        free(sides[k].conns);
        free(sides[k].h.count);
    }
    close(ep);
    free(events);
}

/* ------------------------------------------------------------------------
 * udp: SOCKETS connected UDP sockets, one datagram in flight on each
 * ------------------------------------------------------------------------ */

static void udp_send(struct conn *c, long size)
{
    c->seq++;
    fill_message(c->out, size, c->id, c->seq);
    c->idle = 0;
    c->start_ns = now_ns();
    for (;;) {
        ssize_t n = send(c->fd, c->out, (size_t)size, 0);
        if (n == size) {
            return;
        }
        if (n < 0 && errno == EINTR) {
            continue;
        }
        /* A full socket buffer or ECONNREFUSED from an earlier datagram:
         * treat it as this datagram lost; the retry timer resends. */
        return;
    }
}

static void udp_slice(struct schedule *s, struct side *sides, int k, long conns, long size)
{
    s->active = k;
    s->draining = 0;
    s->slice_start = now_ns();
    for (long i = 0; i < conns; i++) {
        udp_send(&sides[k].conns[i], size);
    }
    sides[k].in_flight = conns;
}

/* An answer that is not the one awaited: fine if it is the exact answer to
 * an earlier request of this socket, given up as lost and answered late. */
static int udp_is_late(const struct conn *c, ssize_t got, long size)
{
    uint64_t old = 0;
    if (got != size || size < (long)sizeof old) {
        return 0;
    }
    memcpy(&old, c->in, sizeof old);
    if (old == 0 || old >= c->seq) {
        return 0;
    }
    unsigned char *expect = malloc((size_t)size);
    if (expect == NULL) {
        die("out of memory");
    }
    fill_message(expect, size, c->id, old);
    int same = memcmp(expect, c->in, (size_t)size) == 0;
    free(expect);
    return same;
}

static void run_udp(const struct options *o)
{
    uint16_t ports[2] = {o->port, o->port_b};
    int nsides = o->port_b != 0 ? 2 : 1;
    long size = o->size;
    struct side sides[2];
    struct epoll_event *events = calloc((size_t)(o->conns * nsides), sizeof *events);

    if (events == NULL) {
        die("out of memory");
    }
    int ep = open_sides(o, ports, nsides, sides, OPEN_UDP);
    long long t0 = now_ns();
    struct schedule s = {.nsides = nsides, .slice_ns = slice_length(o)};
    s.measure_from = t0 + o->warmup_ms * 1000000LL;
    s.deadline = s.measure_from + (long long)(o->seconds * 1e9);
    long long total = 0;
    long long next_scan = t0 + UDP_RETRY_NS / 4;
    udp_slice(&s, sides, 0, o->conns, size);

    for (;;) {
        long long now = now_ns();
        int finished = now >= s.deadline || (o->max_ops > 0 && total >= o->max_ops);
        if (!s.draining && (finished || now - s.slice_start >= s.slice_ns)) {
            close_slice(&s, sides, now);
        }
        if (s.draining && sides[s.active].in_flight == 0) {
            if (finished) {
                break;
            }
            udp_slice(&s, sides, (s.active + 1) % nsides, o->conns, size);
        }
        if (now >= next_scan) {
            /* Requests unanswered for too long are lost: send another in
             * its place, or, when the slice is over, stop waiting. */
            struct side *sd = &sides[s.active];
            for (long i = 0; i < o->conns; i++) {
                struct conn *c = &sd->conns[i];
                if (!c->idle && now - c->start_ns > UDP_RETRY_NS) {
                    sd->lost++;
                    if (s.draining) {
                        c->idle = 1;
                        sd->in_flight--;
                    } else {
                        udp_send(c, size);
                    }
                }
            }
            next_scan = now + UDP_RETRY_NS / 4;
        }
        int n = epoll_wait(ep, events, (int)(o->conns * nsides), 10);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            die("epoll_wait: %s", strerror(errno));
        }
        for (int e = 0; e < n; e++) {
            struct conn *c = events[e].data.ptr;
            struct side *sd = &sides[c->side];
            ssize_t got = recv(c->fd, c->in, (size_t)size + 1, 0);
            if (got < 0) {
                if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
                    continue;
                }
                if (errno == ECONNREFUSED) {
                    die("socket %ld: nothing listens on the server's port", c->id);
                }
                die("recv on socket %ld: %s", c->id, strerror(errno));
            }
            if (got != size || memcmp(c->in, c->out, (size_t)size) != 0) {
                if (udp_is_late(c, got, size)) {
                    sd->late++;
                    continue;
                }
                die("socket %ld: request %llu came back different (%zd bytes)", c->id,
                    (unsigned long long)c->seq, got);
            }
            if (c->idle) {
                continue; /* the answer to a request already given up */
            }
            long long done = now_ns();
            sd->total++;
            total++;
            if (counts(&s, c->start_ns, done)) {
                sd->measured++;
                hist_add(&sd->h, done - c->start_ns);
            }
            if (s.draining) {
                c->idle = 1;
                sd->in_flight--;
            } else {
                udp_send(c, size);
            }
        }
    }
    printf("mode=udp conns=%ld size=%ld seconds=%.3f", o->conns, size, o->seconds);
    print_sides(sides, nsides);
    for (int k = 0; k < nsides; k++) {
        const char *suffix = nsides == 1 ? "" : (k == 0 ? "_a" : "_b");
        printf(" lost%s=%lld late%s=%lld", suffix, sides[k].lost, suffix, sides[k].late);
    }
    printf(" errors=0\n");
    for (int k = 0; k < nsides; k++) {
        for (long i = 0; i < o->conns; i++) {
            close(sides[k].conns[i].fd);
            free(sides[k].conns[i].out);
            free(sides[k].conns[i].in);
        }
        free(sides[k].conns);
        free(sides[k].h.count);
    }
    close(ep);
    free(events);
}

/* ------------------------------------------------------------------------
 * abping: one connection to each of two servers, round trips alternating
 * ------------------------------------------------------------------------ */

/* One round trip on a blocking socket: send the message, read its echo
 * back whole, compare. Returns the nanoseconds it took. */
static long long round_trip(int fd, const unsigned char *out, unsigned char *in, long size,
                            const char *which)
{
    long long t0 = now_ns();
    long sent = 0;
    while (sent < size) {
        ssize_t n = send(fd, out + sent, (size_t)(size - sent), MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            die("abping: send to server %s: %s", which, strerror(errno));
        }
        sent += n;
    }
    long got = 0;
    while (got < size) {
        ssize_t n = recv(fd, in + got, (size_t)(size - got), 0);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            die("abping: recv from server %s: %s", which, n == 0 ? "closed" : strerror(errno));
        }
        got += n;
    }
    long long t1 = now_ns();
    if (memcmp(in, out, (size_t)size) != 0) {
        die("abping: server %s: the echo differs", which);
    }
    return t1 - t0;
}

/*
 * Latency of two servers compared under the same conditions: the round
 * trips alternate between them (A B B A A B ..., so that neither always
 * goes first), so whatever the machine is doing at any moment affects
 * both alike. Two servers measured one after the other would differ by
 * the machine's drift, which on a busy or virtual machine is larger than
 * the few percent being looked for. With a third server (-r), each turn
 * makes one round trip on each of the three, in the six orders by turns
 * (ABC ACB BAC BCA CAB CBA), so that each goes first, second and last as
 * often: `make bench` compares two proxies and the backend behind them.
 */
static void run_abping(const struct options *o)
{
    static const int orders[6][3] = {{0, 1, 2}, {0, 2, 1}, {1, 0, 2},
                                     {1, 2, 0}, {2, 0, 1}, {2, 1, 0}};
    static const char *const names[3] = {"A", "B", "C"};
    uint16_t ports[3] = {o->port, o->port_b, o->port_c};
    int nservers = o->port_c != 0 ? 3 : 2;
    long size = o->size;
    unsigned char *out = malloc((size_t)size);
    unsigned char *in = malloc((size_t)size);
    struct histogram h[3];
    int fds[3];

    if (out == NULL || in == NULL) {
        die("out of memory");
    }
    for (int k = 0; k < nservers; k++) {
        struct sockaddr_storage ss;
        socklen_t len = server_addr_port(o, ports[k], &ss);
        hist_init(&h[k]);
        fds[k] = tcp_connect(&ss, len);
        /* A server that stops answering must not hang the run. */
        struct timeval tv = {.tv_sec = 5, .tv_usec = 0};
        setsockopt(fds[k], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    }

    long long t0 = now_ns();
    long long measure_from = t0 + o->warmup_ms * 1000000LL;
    long long deadline = measure_from + (long long)(o->seconds * 1e9);
    long long pairs = 0;
    long long total = 0;
    for (uint64_t seq = 1;; seq++) {
        long long now = now_ns();
        if (now >= deadline || (o->max_ops > 0 && total >= o->max_ops)) {
            break;
        }
        fill_message(out, size, 0, seq);
        long long d[3];
        for (int i = 0; i < nservers; i++) {
            int k;
            if (nservers == 2) {
                k = ((seq & 2) != 0) != (i == 1); /* A B, B A, A B, B A, ... */
            } else {
                k = orders[seq % 6][i];
            }
            d[k] = round_trip(fds[k], out, in, size, names[k]);
        }
        total++;
        if (now >= measure_from) {
            for (int k = 0; k < nservers; k++) {
                hist_add(&h[k], d[k]);
            }
            pairs++;
        }
    }
    printf("mode=abping size=%ld seconds=%.3f pairs=%lld total=%lld pairs_s=%.1f", size, o->seconds,
           pairs, total, (double)pairs / o->seconds);
    for (int k = 0; k < nservers; k++) {
        printf(" p50_%c_us=%.2f p99_%c_us=%.2f", 'a' + k, hist_quantile(&h[k], 0.50), 'a' + k,
               hist_quantile(&h[k], 0.99));
    }
    printf(" errors=0\n");
    for (int k = 0; k < nservers; k++) {
        close(fds[k]);
        free(h[k].count);
    }
    free(out);
    free(in);
}

/* ------------------------------------------------------------------------
 * bulk: a stream through the echo server, both directions at once
 * ------------------------------------------------------------------------ */

/* The stream goes in transfers of this many bytes: one thread sends a
 * transfer while the other reads its echo back; with -q the transfers
 * alternate between the two servers. */
#define BULK_TRANSFER (32LL << 20)

struct bulk {
    int fd;
    long chunk;
    long long off;            /* stream offset of this transfer */
    long long len;            /* its length */
    const unsigned char *pat; /* chunk + PATTERN_PERIOD bytes of pattern */
    int failed;               /* the sender's errno, 0 if none */
};

/* The sending half of one transfer. */
static void *bulk_sender(void *arg)
{
    struct bulk *b = arg;
    long long done = 0;

    while (done < b->len) {
        long long off = b->off + done;
        size_t want = (size_t)(b->len - done < b->chunk ? b->len - done : b->chunk);
        ssize_t n = send(b->fd, b->pat + off % PATTERN_PERIOD, want, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            b->failed = errno;
            break;
        }
        done += n;
    }
    return NULL;
}

/* One transfer of len bytes at stream offset off through fd: returns the
 * nanoseconds from its first byte sent to its last byte back. */
static long long bulk_transfer(int fd, long chunk, const unsigned char *pat, unsigned char *buf,
                               long long off, long long len, const char *which)
{
    struct bulk b = {.fd = fd, .chunk = chunk, .off = off, .len = len, .pat = pat};
    pthread_t sender;
    long long t0 = now_ns();
    int rc = pthread_create(&sender, NULL, bulk_sender, &b);
    if (rc != 0) {
        die("pthread_create: %s", strerror(rc));
    }
    long long got = 0;
    int failed = 0;
    while (got < len) {
        size_t want = (size_t)(len - got < chunk ? len - got : chunk);
        ssize_t n = recv(fd, buf, want, 0);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            failed = n < 0 ? errno : ECONNRESET;
            break;
        }
        if (memcmp(buf, pat + (off + got) % PATTERN_PERIOD, (size_t)n) != 0) {
            pthread_join(sender, NULL);
            die("bulk: server %s: the echo differs from the stream near byte %lld", which,
                off + got);
        }
        got += n;
    }
    long long t1 = now_ns();
    pthread_join(sender, NULL);
    if (b.failed != 0) {
        die("bulk: server %s: send: %s", which, strerror(b.failed));
    }
    if (failed != 0) {
        die("bulk: server %s: recv after %lld of %lld bytes: %s", which, got, len,
            strerror(failed));
    }
    return t1 - t0;
}

static void run_bulk(const struct options *o)
{
    uint16_t ports[2] = {o->port, o->port_b};
    int nsides = o->port_b != 0 ? 2 : 1;
    const char *names[2] = {"A", "B"};
    long chunk = o->size;
    unsigned char *pat = malloc((size_t)chunk + PATTERN_PERIOD);
    unsigned char *buf = malloc((size_t)chunk);
    int fds[2] = {-1, -1};
    long long bytes[2] = {0, 0};
    long long ns[2] = {0, 0};
    long long offs[2] = {0, 0};

    if (pat == NULL || buf == NULL) {
        die("out of memory");
    }
    for (long i = 0; i < chunk + PATTERN_PERIOD; i++) {
        pat[i] = (unsigned char)((i % PATTERN_PERIOD) * 97 + 13);
    }
    for (int k = 0; k < nsides; k++) {
        struct sockaddr_storage ss;
        socklen_t sslen = server_addr_port(o, ports[k], &ss);
        fds[k] = tcp_connect(&ss, sslen);
        /* Neither side may wait for ever: 5 s without progress fails. */
        struct timeval tv = {.tv_sec = 5, .tv_usec = 0};
        setsockopt(fds[k], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        setsockopt(fds[k], SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    }
    long long limit = o->max_ops > 0 ? o->max_ops * chunk : 0;
    long long deadline = now_ns() + (long long)(o->seconds * 1e9);
    for (long t = 0; now_ns() < deadline || t < nsides; t++) {
        int k = (int)(t % nsides);
        if (limit > 0 && bytes[k] >= limit) {
            break;
        }
        ns[k] += bulk_transfer(fds[k], chunk, pat, buf, offs[k], BULK_TRANSFER, names[k]);
        bytes[k] += BULK_TRANSFER;
        offs[k] += BULK_TRANSFER;
    }
    printf("mode=bulk chunk=%ld seconds=%.3f", chunk, o->seconds);
    for (int k = 0; k < nsides; k++) {
        const char *suffix = nsides == 1 ? "" : (k == 0 ? "_a" : "_b");
        printf(" bytes%s=%lld total%s=%lld mb_s%s=%.1f", suffix, bytes[k], suffix, bytes[k], suffix,
               (double)bytes[k] / 1e6 / ((double)ns[k] / 1e9));
    }
    printf(" errors=0\n");
    for (int k = 0; k < nsides; k++) {
        close(fds[k]);
    }
    free(pat);
    free(buf);
}

/* ------------------------------------------------------------------------
 * many: CONNS connections open at once, one round trip on each
 * ------------------------------------------------------------------------ */

enum { M_NEW, M_CONNECTING, M_WAITING, M_DONE, M_FAILED };

struct mconn {
    int fd;
    int state;
    long got;
};

static void run_many(const struct options *o)
{
    struct sockaddr_storage ss;
    socklen_t sslen = server_addr(o, &ss);
    long n = o->conns;
    long size = o->size;
    struct mconn *m = calloc((size_t)n, sizeof *m);
    struct epoll_event events[256];
    unsigned char *msg = malloc((size_t)size);
    unsigned char *in = malloc((size_t)size);

    raise_fd_limit(n + 32);
    if (m == NULL || msg == NULL || in == NULL) {
        die("out of memory");
    }
    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0) {
        die("epoll_create1: %s", strerror(errno));
    }
    long long t0 = now_ns();
    long next = 0;       /* the next connection to open */
    long connecting = 0; /* in M_CONNECTING */
    long waiting = 0;    /* in M_WAITING */
    long ok = 0;
    long failed = 0;
    int first_err = 0;

    while (ok + failed < n) {
        if (now_ns() - t0 > MANY_LIMIT_NS) {
            fprintf(stderr, "%s: many: gave up after %lld s\n", prog, MANY_LIMIT_NS / 1000000000);
            break;
        }
        /* Keep up to MANY_CONNECTING handshakes under way. */
        while (next < n && connecting < MANY_CONNECTING) {
            struct mconn *c = &m[next];
            c->fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
            if (c->fd < 0) {
                die("socket for connection %ld: %s", next, strerror(errno));
            }
            int rc = connect(c->fd, (struct sockaddr *)&ss, sslen);
            if (rc != 0 && errno != EINPROGRESS) {
                if (first_err == 0) {
                    first_err = errno;
                }
                close(c->fd);
                c->fd = -1;
                c->state = M_FAILED;
                failed++;
                next++;
                continue;
            }
            c->state = M_CONNECTING;
            connecting++;
            struct epoll_event ev = {.events = EPOLLOUT, .data.u64 = (uint64_t)next};
            if (epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev) != 0) {
                die("epoll_ctl: %s", strerror(errno));
            }
            next++;
        }
        int k = epoll_wait(ep, events, 256, 100);
        if (k < 0) {
            if (errno == EINTR) {
                continue;
            }
            die("epoll_wait: %s", strerror(errno));
        }
        for (int e = 0; e < k; e++) {
            long id = (long)events[e].data.u64;
            struct mconn *c = &m[id];
            int fail = 0;
            if (c->state == M_CONNECTING) {
                int soerr = 0;
                socklen_t len = sizeof soerr;
                getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &soerr, &len);
                connecting--;
                if (soerr != 0) {
                    if (first_err == 0) {
                        first_err = soerr;
                    }
                    fail = 1;
                } else {
                    set_nodelay(c->fd);
                    fill_message(msg, size, id, 1);
                    ssize_t s = send(c->fd, msg, (size_t)size, MSG_NOSIGNAL);
                    if (s != size) {
                        if (first_err == 0) {
                            first_err = s < 0 ? errno : EIO;
                        }
                        fail = 1;
                    } else {
                        struct epoll_event ev = {.events = EPOLLIN, .data.u64 = (uint64_t)id};
                        epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
                        c->state = M_WAITING;
                        waiting++;
                    }
                }
            } else if (c->state == M_WAITING) {
                ssize_t r = recv(c->fd, in + c->got, (size_t)(size - c->got), 0);
                if (r < 0 && (errno == EAGAIN || errno == EINTR)) {
                    continue;
                }
                if (r <= 0) {
                    if (first_err == 0) {
                        first_err = r < 0 ? errno : ECONNRESET;
                    }
                    fail = 1;
                } else {
                    c->got += r;
                    if (c->got == size) {
                        fill_message(msg, size, id, 1);
                        if (memcmp(in, msg, (size_t)size) != 0) {
                            die("connection %ld: the echo differs", id);
                        }
                        /* Done: keep it open and idle, out of the epoll set. */
                        epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
                        c->state = M_DONE;
                        waiting--;
                        ok++;
                    }
                }
                if (fail) {
                    waiting--;
                }
            }
            if (fail) {
                epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
                close(c->fd);
                c->fd = -1;
                c->state = M_FAILED;
                failed++;
            }
        }
    }
    double secs = (double)(now_ns() - t0) / 1e9;
    printf("mode=many conns=%ld ok=%ld failed=%ld seconds=%.3f errors=%ld first_error=\"%s\"\n", n,
           ok, failed, secs, n - ok, first_err != 0 ? strerror(first_err) : "none");
    fflush(stdout);

    /* Hold every connection open and idle for -k seconds, so that the
     * server's memory can be read with all of them connected; the runner
     * ends the wait early with SIGTERM once it has what it needs. */
    if (o->hold_s > 0) {
        printf("holding\n");
        fflush(stdout);
        long long until = now_ns() + o->hold_s * 1000000000LL;
        for (;;) {
            long long left = until - now_ns();
            if (left <= 0) {
                break;
            }
            poll(NULL, 0, (int)(left / 1000000 + 1));
        }
    }
    for (long i = 0; i < n; i++) {
        if (m[i].state != M_NEW && m[i].state != M_FAILED) {
            close(m[i].fd);
        }
    }
    close(ep);
    free(m);
    free(msg);
    free(in);
    if (ok != n) {
        exit(1);
    }
}

/* ------------------------------------------------------------------------
 * httpget: one GET, the answer checked byte by byte; freeport
 * ------------------------------------------------------------------------ */

/* The whole of file, or die. */
static unsigned char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    struct stat st;
    if (f == NULL || fstat(fileno(f), &st) != 0 || st.st_size > (64L << 20)) {
        die("httpget: %s: %s", path, f == NULL ? strerror(errno) : "cannot be read whole");
    }
    unsigned char *buf = malloc((size_t)st.st_size + 1);
    if (buf == NULL || fread(buf, 1, (size_t)st.st_size, f) != (size_t)st.st_size) {
        die("httpget: %s: cannot be read", path);
    }
    fclose(f);
    *len = (size_t)st.st_size;
    return buf;
}

static void run_httpget(const struct options *o)
{
    size_t want = 0;
    unsigned char *body = slurp(o->file, &want);
    size_t cap = want + 65536; /* the file and a head */
    unsigned char *in = malloc(cap + 1);
    if (in == NULL) {
        die("out of memory");
    }
    struct sockaddr_storage ss;
    socklen_t sslen = server_addr(o, &ss);
    int fd = tcp_connect(&ss, sslen);
    struct timeval tv = {.tv_sec = 5, .tv_usec = 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char req[1024];
    int n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: %s:%u\r\nConnection: close\r\n\r\n",
                     o->path, o->host, (unsigned)o->port);
    if (n <= 0 || (size_t)n >= sizeof req || send(fd, req, (size_t)n, MSG_NOSIGNAL) != n) {
        die("httpget: sending the request failed");
    }
    /* Connection: close - the answer ends where the stream does. */
    size_t got = 0;
    for (;;) {
        ssize_t r = recv(fd, in + got, cap - got, 0);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r < 0) {
            die("httpget: recv: %s", strerror(errno));
        }
        if (r == 0) {
            break;
        }
        got += (size_t)r;
        if (got == cap) {
            die("httpget: the answer is longer than the file and a head");
        }
    }
    close(fd);
    in[got] = '\0';
    char *end = strstr((char *)in, "\r\n\r\n");
    if (strncmp((char *)in, "HTTP/1.1 200 ", 13) != 0 || end == NULL) {
        die("httpget: %s: not a 200 answer: \"%.40s\"", o->path, (char *)in);
    }
    /* Content-Length, whatever its case, must be the file's length. */
    long length = -1;
    for (char *line = strstr((char *)in, "\r\n"); line != NULL && line < end;
         line = strstr(line + 2, "\r\n")) {
        if (strncasecmp(line + 2, "Content-Length:", 15) == 0) {
            length = strtol(line + 17, NULL, 10);
        }
    }
    size_t head = (size_t)(end + 4 - (char *)in);
    if (length != (long)want || got - head != want || memcmp(in + head, body, want) != 0) {
        die("httpget: %s: the body is not the file's %zu bytes (Content-Length %ld, %zu received)",
            o->path, want, length, got - head);
    }
    printf("mode=httpget status=200 length=%zu errors=0\n", want);
    free(body);
    free(in);
}

/* A port nobody listens on: bound to port 0, read, closed. Another program
 * may take it before the caller does; the caller then tries again. */
static void run_freeport(const struct options *o)
{
    struct sockaddr_storage ss;
    socklen_t len = server_addr_port(o, 0, &ss);
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&ss, len) != 0 ||
        getsockname(fd, (struct sockaddr *)&ss, &len) != 0) {
        die("freeport: %s", strerror(errno));
    }
    uint16_t port = ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                             : ((struct sockaddr_in *)&ss)->sin_port;
    close(fd);
    printf("%u\n", (unsigned)ntohs(port));
}

int main(int argc, char **argv)
{
    struct options o = {.host = "127.0.0.1",
                        .conns = -1,
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
    while ((opt = getopt(argc, argv, ":hH:p:q:r:c:s:d:w:n:k:S:u:f:")) != -1) {
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
        case 'r':
            o.port_c = (uint16_t)parse_long(opt, optarg, 1, 65535);
            break;
        case 'c':
            o.conns = parse_long(opt, optarg, 1, 1000000);
            break;
        case 's':
            o.size = parse_long(opt, optarg, 1, 16L << 20);
            break;
        case 'd':
            o.seconds = (double)parse_long(opt, optarg, 1, 3600000) / 1000.0;
            break;
        case 'w':
            o.warmup_ms = parse_long(opt, optarg, 0, 600000);
            break;
        case 'n':
            o.max_ops = parse_long(opt, optarg, 1, 2000000000L);
            break;
        case 'k':
            o.hold_s = parse_long(opt, optarg, 0, 3600);
            break;
        case 'S':
            o.slice_ms = parse_long(opt, optarg, 1, 600000);
            break;
        case 'u':
            if (optarg[0] != '/' || strpbrk(optarg, " \r\n") != NULL) {
                bad_usage("-u \"%s\": a path starts with / and has no spaces", optarg);
            }
            o.path = optarg;
            break;
        case 'f':
            o.file = optarg;
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
    if (strcmp(o.mode, "freeport") == 0) {
        run_freeport(&o);
        return 0;
    }
    if (!have_port) {
        bad_usage("-p PORT is required");
    }
    if (o.port_c != 0 && (strcmp(o.mode, "abping") != 0 || o.port_b == 0)) {
        bad_usage("-r (a third server) is for abping, with -q");
    }
    if (strcmp(o.mode, "pingpong") == 0) {
        o.conns = o.conns < 0 ? 50 : o.conns;
        o.size = o.size < 0 ? 64 : o.size;
        run_pingpong(&o, 0);
    } else if (strcmp(o.mode, "connect") == 0) {
        o.conns = o.conns < 0 ? 50 : o.conns;
        o.size = o.size < 0 ? 64 : o.size;
        run_pingpong(&o, 1);
    } else if (strcmp(o.mode, "udp") == 0) {
        o.conns = o.conns < 0 ? 50 : o.conns;
        o.size = o.size < 0 ? 64 : o.size;
        if (o.size > 65507) {
            bad_usage("-s %ld: a UDP datagram holds at most 65507 bytes", o.size);
        }
        run_udp(&o);
    } else if (strcmp(o.mode, "bulk") == 0) {
        o.size = o.size < 0 ? 65536 : o.size;
        run_bulk(&o);
    } else if (strcmp(o.mode, "abping") == 0) {
        if (o.port_b == 0) {
            bad_usage("abping needs the second server's port: -q PORT");
        }
        o.size = o.size < 0 ? 64 : o.size;
        run_abping(&o);
    } else if (strcmp(o.mode, "httpget") == 0) {
        if (o.path == NULL || o.file == NULL) {
            bad_usage("httpget needs the path (-u) and the file (-f)");
        }
        run_httpget(&o);
    } else if (strcmp(o.mode, "many") == 0) {
        o.conns = o.conns < 0 ? 10000 : o.conns;
        o.size = o.size < 0 ? 16 : o.size;
        run_many(&o);
    } else {
        bad_usage("unknown mode \"%s\"", o.mode);
    }
    return 0;
}
