/*
 * test_chaos.c - every blocking call of the library under faults, in bulk.
 *
 * Part one plays over a thousand random fault scripts, each made from a
 * fixed seed, through the wrappers of fault.h: short transfers, EINTR,
 * EAGAIN (on non-blocking sockets, and on blocking ones where netx.h says it
 * means ETIMEDOUT), resets (ECONNRESET, EPIPE) and other injected errors,
 * against netx_send_all/netx_recv_all, netx_send/netx_recv loops, a
 * netx_reader mixing lines and length-prefixed bodies, netx_sendto and
 * netx_recvfrom, netx_connect and netx_tcp_connect, and netx_accept. Every
 * byte is accounted for: what a failed call reports as moved
 * (netx_last_transferred()) must be exactly what the peer received or what
 * is in the buffer, nothing is lost or delivered twice, and the stream ends
 * where it should.
 *
 * Part two uses real signals: SIGALRM from setitimer(), with a handler
 * installed without SA_RESTART so that each one interrupts the call it lands
 * in. A 10 MiB transfer must arrive intact under a signal every millisecond
 * (every 20 ms under valgrind, which cannot keep up with more: see
 * big_interval_us());
 * connect, accept, recvfrom, read_line and send_all must time out at their
 * deadline, not early and not never, while signals keep coming; and a
 * blocking connect(2) interrupted for real must go on to connect, as POSIX
 * says, without a second connect(2).
 *
 * A failing script prints its seed. CHAOS_SEED=0x... in the environment
 * runs that one seed, in each random case, instead of the whole set.
 */
#include "support.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#if defined(__GNUC__) || defined(__clang__)
#define CHAOS_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define CHAOS_PRINTF(f, a)
#endif

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* An errno value no libnetx call has a reason to set. It is stored before
 * each call: a call that succeeds must leave it there (netx.h). */
#define UNTOUCHED EDOM

/* The most steps one script has; fault.c holds many more. */
#define MAX_STEPS 64

/* The largest transfer of one stream script. */
#define STREAM_MAX (16u * 1024u)

/* A bound on the calls one loop may make, so a library that stops making
 * progress fails the script instead of hanging the binary. */
#define CALL_GUARD 100000u

/* How many scripts each random case plays. */
#define SCRIPTS_STREAM_ALL  360
#define SCRIPTS_STREAM_ONCE 240
#define SCRIPTS_READER      300
#define SCRIPTS_UDP         200
#define SCRIPTS_CONNECT     160
#define SCRIPTS_ACCEPT      160

/* Common helpers ------------------------------------------------------------ */

static long long mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    /* Threads that sleep here have SIGALRM blocked, but a sleep cut short
     * by any other signal still sleeps the rest. */
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* errno's text, from the thread-safe strerror_r(). */
static void errno_text(int err, char *buf, size_t cap)
{
    if (strerror_r(err, buf, cap) != 0) {
        snprintf(buf, cap, "error %d", err);
    }
}

static int is_nonblocking(int fd)
{
    int flags = fcntl(fd, F_GETFL);
    return flags >= 0 && (flags & O_NONBLOCK) != 0;
}

static void set_nonblocking_raw(int fd, int on)
{
    int flags = fcntl(fd, F_GETFL);
    assert_true(flags >= 0);
    assert_int_equal(fcntl(fd, F_SETFL, on ? (flags | O_NONBLOCK) : (flags & ~O_NONBLOCK)), 0);
}

/*
 * Wait, as a poll() loop would, until fd is ready for events: at most five
 * seconds; 1 if ready. poll() goes through the fault wrapper like the
 * library's own, so an EINTR a script injects here is retried.
 */
static int wait_fd(int fd, short events)
{
    long long deadline = mono_ms() + 5000;
    for (;;) {
        long long left = deadline - mono_ms();
        if (left <= 0) {
            return 0;
        }
        struct pollfd p = {.fd = fd, .events = events, .revents = 0};
        int n = poll(&p, 1, (int)left);
        if (n > 0) {
            return 1;
        }
        if (n == 0 || errno != EINTR) {
            return 0;
        }
    }
}

/* The local port of a socket, asserted valid. */
static int port_of(int fd)
{
    int port = netx_local_port(fd);
    assert_true(port > 0);
    return port;
}

static int peer_port_of(int fd)
{
    netx_addr a;
    if (netx_peer_addr(fd, &a) != 0) {
        return -1;
    }
    return netx_addr_port(&a);
}

/* Seeds and replay ------------------------------------------------------------ */

/* xorshift32: small and the same on every machine, so a seed replays. */
static uint32_t rnd(uint32_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 17;
    *x ^= *x << 5;
    return *x;
}

static uint32_t below(uint32_t *x, uint32_t n)
{
    return n == 0 ? 0 : rnd(x) % n;
}

/* Spread neighbouring numbers over the whole 32 bits (the finaliser of
 * MurmurHash3), so consecutive scripts start far apart. */
static uint32_t spread(uint32_t h)
{
    h ^= h >> 16;
    h *= 0x85ebca6bu;
    h ^= h >> 13;
    h *= 0xc2b2ae35u;
    h ^= h >> 16;
    return h;
}

/* The seeds a random case plays: n of them made from the case's salt, or
 * the single one named by CHAOS_SEED. */
struct plan {
    uint32_t salt;
    unsigned n;
    int replay;
    uint32_t only;
};

static struct plan plan_for(uint32_t salt, unsigned n)
{
    struct plan p = {salt, n, 0, 0};
    const char *text = getenv("CHAOS_SEED");
    if (text != NULL && text[0] != '\0') {
        char *end = NULL;
        errno = 0;
        unsigned long v = strtoul(text, &end, 0);
        if (errno != 0 || end == text || *end != '\0' || v == 0 || v > 0xffffffffu) {
            fail_msg("CHAOS_SEED=\"%s\" is not a non-zero 32-bit number", text);
        }
        p.replay = 1;
        p.only = (uint32_t)v;
        p.n = 1;
    }
    return p;
}

static uint32_t plan_seed(const struct plan *p, unsigned i)
{
    if (p->replay) {
        return p->only;
    }
    uint32_t s = spread(p->salt + i * 0x9e3779b9u);
    return s != 0 ? s : 1; /* xorshift stays at 0 for ever */
}

/* What one script is doing, and the descriptors it has open: a failure
 * closes them first, so the failure is reported once and not again as a
 * leak by the TEST() teardown. */
struct ctx {
    char what[160];
    uint32_t seed;
    int fds[8];
    size_t nfds;
};

static void ctx_init(struct ctx *cx, uint32_t seed, const char *what)
{
    memset(cx, 0, sizeof *cx);
    cx->seed = seed;
    snprintf(cx->what, sizeof cx->what, "%s", what);
}

static int ctx_track(struct ctx *cx, int fd)
{
    if (fd >= 0 && cx->nfds < COUNT(cx->fds)) {
        cx->fds[cx->nfds++] = fd;
    }
    return fd;
}

static void ctx_close_all(struct ctx *cx)
{
    fault_reset(); /* an armed close script must not keep a descriptor open */
    for (size_t i = 0; i < cx->nfds; i++) {
        close(cx->fds[i]);
    }
    cx->nfds = 0;
}

/* A descriptor the whole case shares (a listener), closed by a failing
 * script too; case_fd_done() when the case closes it itself. */
static int case_fd = -1;

static int case_fd_set(int fd)
{
    case_fd = fd;
    return fd;
}

static void case_fd_done(void)
{
    if (case_fd >= 0) {
        close(case_fd);
        case_fd = -1;
    }
}

static void chaos_fail(struct ctx *cx, int line, const char *fmt, ...) CHAOS_PRINTF(3, 4);

static void chaos_fail(struct ctx *cx, int line, const char *fmt, ...)
{
    char detail[700];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    ctx_close_all(cx);
    case_fd_done();
    fail_msg("%s: %s (test_chaos.c:%d)\n"
             "    script seed 0x%08x; run this binary with CHAOS_SEED=0x%08x to replay it",
             cx->what, detail, line, cx->seed, cx->seed);
}

#define EXPECT(cx, cond)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            chaos_fail((cx), __LINE__, "expected %s", #cond);                                      \
        }                                                                                          \
    } while (0)

/* Scripts ---------------------------------------------------------------------- */

/* Steps taken, by kind, over all the scripts of a case: proof that the
 * scripts were played and not left pending. */
struct tally {
    unsigned long scripts;
    unsigned long taken[FAULT_ERRNO + 1];
};

static size_t count_kind(const struct fault_step *steps, size_t taken, enum fault_kind kind)
{
    size_t n = 0;
    for (size_t i = 0; i < taken; i++) {
        n += steps[i].kind == kind;
    }
    return n;
}

static void tally_add(struct tally *t, const struct fault_step *steps, size_t taken)
{
    for (size_t i = 0; i < taken; i++) {
        t->taken[steps[i].kind]++;
    }
}

/* Each kind in kinds (a bit per enum fault_kind) was taken at least min
 * times over the case; skipped when replaying one seed. */
static void tally_check(const struct tally *t, const struct plan *p, unsigned kinds,
                        unsigned long min)
{
    static const char *const names[] = {"PASS", "SHORT", "EINTR", "EAGAIN", "ERRNO"};
    if (p->replay) {
        return;
    }
    print_message(
        "%lu scripts; steps taken: %lu SHORT, %lu EINTR, %lu EAGAIN, %lu ERRNO, %lu PASS\n",
        t->scripts, t->taken[FAULT_SHORT], t->taken[FAULT_EINTR], t->taken[FAULT_EAGAIN],
        t->taken[FAULT_ERRNO], t->taken[FAULT_PASS]);
    assert_int_equal(t->scripts, p->n);
    for (unsigned k = 0; k <= FAULT_ERRNO; k++) {
        if ((kinds & (1u << k)) != 0 && t->taken[k] < min) {
            fail_msg("only %lu %s steps taken in %lu scripts (want %lu)", t->taken[k], names[k],
                     t->scripts, min);
        }
    }
}

#define KIND(k) (1u << (k))

/* How the last step a call took says the call must end: the step itself,
 * or PASS when it took none. An EINTR as the last step means the retry
 * after it passed through to the system, because the script was used up. */
static struct fault_step last_taken(const struct fault_step *steps, size_t n, size_t pending_before,
                                    size_t pending_after)
{
    struct fault_step pass = {FAULT_PASS, 0};
    if (pending_after >= pending_before) {
        return pass;
    }
    return steps[n - pending_after - 1];
}

/* The calls of the wrapped function one library call should have made: one
 * per step taken, and one more that passed through when it took none or its
 * last was an EINTR (retried). */
static unsigned calls_expected(size_t pending_before, size_t pending_after, struct fault_step last)
{
    unsigned taken = (unsigned)(pending_before - pending_after);
    if (taken == 0 || last.kind == FAULT_EINTR) {
        return taken + 1;
    }
    return taken;
}

/*
 * A random script for one end of a stream: short transfers (of up to a cap
 * that is itself random, from a few bytes to the whole transfer), EINTR,
 * EAGAIN and pass-through steps. reset: 0 for none; 1 for a sender (one
 * script in four ends with ECONNRESET or EPIPE: the sender stops there); 2
 * for a receiver (ECONNRESET anywhere in one script in four: the receiver
 * carries on after it, and must find nothing lost).
 */
static size_t gen_stream_script(uint32_t *rng, struct fault_step *steps, size_t len, int reset)
{
    static const uint32_t caps[] = {4, 64, 1024, STREAM_MAX};
    size_t n = below(rng, 41);
    uint32_t cap = caps[below(rng, COUNT(caps))];
    if (cap > len) {
        cap = (uint32_t)len;
    }
    for (size_t i = 0; i < n; i++) {
        uint32_t r = below(rng, 20);
        steps[i].arg = 0;
        if (r < 9) {
            steps[i].kind = FAULT_SHORT;
            steps[i].arg = 1 + below(rng, cap);
        } else if (r < 14) {
            steps[i].kind = FAULT_EINTR;
        } else if (r < 18) {
            steps[i].kind = FAULT_EAGAIN;
        } else {
            steps[i].kind = FAULT_PASS;
        }
    }
    if (reset != 0 && below(rng, 4) == 0) {
        size_t at = below(rng, (uint32_t)n + 1);
        struct fault_step r = {FAULT_ERRNO, ECONNRESET};
        if (reset == 1) {
            r.arg = below(rng, 2) ? ECONNRESET : EPIPE;
            steps[at] = r;
            n = at + 1;
        } else {
            memmove(steps + at + 1, steps + at, (n - at) * sizeof *steps);
            steps[at] = r;
            n++;
        }
    }
    return n;
}

/* Streams: send/recv loops and the _all calls ----------------------------------- */

/* One end of a stream transfer, as its loop saw it. */
struct side {
    int fd;
    size_t bytes;      /* accounted for: sent, or received into the buffer */
    unsigned timeouts; /* ETIMEDOUT: an injected EAGAIN on a blocking socket */
    unsigned eagains;  /* EAGAIN reported (non-blocking, one-call API) */
    unsigned resets;   /* ECONNRESET or EPIPE reported */
    char why[320];     /* the first breach of the contract, "" if none */
};

static void note(char *why, size_t cap, const char *fmt, ...) CHAOS_PRINTF(3, 4);

static void note(char *why, size_t cap, const char *fmt, ...)
{
    va_list ap;
    if (why[0] != '\0') {
        return; /* the first breach is the one worth reporting */
    }
    va_start(ap, fmt);
    vsnprintf(why, cap, fmt, ap);
    va_end(ap);
}

#define NOTE(sd, ...) note((sd)->why, sizeof(sd)->why, __VA_ARGS__)

/*
 * A call on one side failed with err. Check that the error record agrees,
 * then sort the failure: what the scripts can cause is counted and the loop
 * goes on (1); anything else, EINTR above all, is a breach (0).
 */
static int side_failed(struct side *sd, int err, int nonblocking, int eagain_visible, int sending)
{
    char text[128];
    errno_text(err, text, sizeof text);
    if (netx_last_errno() != err) {
        NOTE(sd, "failed with errno %d (%s) but netx_last_errno() says %d", err, text,
             netx_last_errno());
        return 0;
    }
    if (strstr(netx_last_error(), text) == NULL) {
        NOTE(sd, "sentence \"%s\" does not give the cause \"%s\"", netx_last_error(), text);
        return 0;
    }
    if (err == ETIMEDOUT && !nonblocking) {
        sd->timeouts++;
        return 1;
    }
    if (err == EAGAIN && nonblocking && eagain_visible) {
        sd->eagains++;
        return 1;
    }
    if (err == ECONNRESET || (sending && err == EPIPE)) {
        sd->resets++;
        return 1;
    }
    NOTE(sd, "unexpected failure, errno %d (%s): %s", err, text, netx_last_error());
    return 0;
}

struct stream {
    int once; /* netx_send/netx_recv loops instead of the _all calls */
    int nonblocking;
    size_t len;
    const unsigned char *out;
    unsigned char *in;
    struct side tx, rx;
};

/*
 * The sending loop a careful caller writes: after a timeout (or EAGAIN,
 * once the socket has room) it sends the rest, starting after the bytes
 * the failed call reports as sent; a reset ends the transfer. Then it shuts
 * its side down, so the receiver sees where the stream ends.
 */
static void stream_send(struct stream *st)
{
    struct side *tx = &st->tx;
    for (unsigned guard = 0; tx->bytes < st->len && tx->resets == 0; guard++) {
        size_t want = st->len - tx->bytes;
        size_t moved = 0;
        if (guard == CALL_GUARD) {
            NOTE(tx, "no end after %u calls", guard);
            break;
        }
        errno = UNTOUCHED;
        if (st->once) {
            ssize_t n = netx_send(tx->fd, st->out + tx->bytes, want);
            if (n >= 0) {
                if (n == 0 || (size_t)n > want || errno != UNTOUCHED) {
                    NOTE(tx, "netx_send(%zu bytes) returned %zd with errno %d", want, n, errno);
                    break;
                }
                tx->bytes += (size_t)n;
                continue;
            }
        } else {
            int rc = netx_send_all(tx->fd, st->out + tx->bytes, want);
            if (rc == 0) {
                if (errno != UNTOUCHED) {
                    NOTE(tx, "netx_send_all succeeded but set errno %d", errno);
                }
                tx->bytes = st->len;
                break;
            }
            moved = netx_last_transferred();
        }
        int err = errno;
        if (moved > want) {
            NOTE(tx, "a failed netx_send_all(%zu bytes) claims %zu sent", want, moved);
            break;
        }
        tx->bytes += moved;
        if (!side_failed(tx, err, st->nonblocking, st->once, 1)) {
            break;
        }
        if (err == EAGAIN && !wait_fd(tx->fd, POLLOUT)) {
            NOTE(tx, "no room to send within 5 s after EAGAIN");
            break;
        }
    }
    shutdown(tx->fd, SHUT_WR);
}

static void *stream_send_main(void *arg)
{
    stream_send(arg);
    return NULL;
}

/*
 * The receiving loop: after any failure it reads on from where the bytes
 * the failed call reports end, resets included (injected ones leave the
 * connection working, so the rest of the stream must still be there).
 */
static void stream_recv(struct stream *st)
{
    struct side *rx = &st->rx;
    int eof = 0;
    for (unsigned guard = 0; !eof && rx->bytes < st->len; guard++) {
        size_t want = st->len - rx->bytes;
        size_t moved = 0;
        ssize_t n;
        if (guard == CALL_GUARD) {
            NOTE(rx, "no end after %u calls", guard);
            break;
        }
        errno = UNTOUCHED;
        if (st->once) {
            n = netx_recv(rx->fd, st->in + rx->bytes, want);
        } else {
            n = netx_recv_all(rx->fd, st->in + rx->bytes, want);
        }
        if (n >= 0) {
            if ((size_t)n > want || errno != UNTOUCHED) {
                NOTE(rx, "receive of %zu bytes returned %zd with errno %d", want, n, errno);
                break;
            }
            rx->bytes += (size_t)n;
            /* netx_recv: 0 is the end; netx_recv_all: fewer than asked. */
            eof = st->once ? n == 0 : (size_t)n < want;
            continue;
        }
        if (!st->once) {
            moved = netx_last_transferred();
        }
        int err = errno;
        if (moved > want) {
            NOTE(rx, "a failed netx_recv_all(%zu bytes) claims %zu received", want, moved);
            break;
        }
        rx->bytes += moved;
        if (!side_failed(rx, err, st->nonblocking, st->once, 0)) {
            break;
        }
        if (err == EAGAIN && !wait_fd(rx->fd, POLLIN)) {
            NOTE(rx, "nothing to receive within 5 s after EAGAIN");
            break;
        }
    }
}

/* A loopback pair with a five-second bound on every wait, both ends in the
 * given mode, and the counters zeroed after the setup's own calls. */
static void chaos_pair(struct ctx *cx, int nonblocking, int *a, int *b)
{
    support_tcp_pair("127.0.0.1", a, b);
    ctx_track(cx, *a);
    ctx_track(cx, *b);
    assert_int_equal(netx_set_timeout(*a, 5000), 0);
    assert_int_equal(netx_set_timeout(*b, 5000), 0);
    assert_int_equal(netx_set_nonblocking(*a, nonblocking), 0);
    assert_int_equal(netx_set_nonblocking(*b, nonblocking), 0);
    fault_reset();
}

/* A random number of EINTRs for the poll() calls on fd: the library's own
 * waits (after EINTR or EAGAIN) and the caller's. */
static size_t gen_poll_script(uint32_t *rng, struct fault_step *steps)
{
    size_t n = below(rng, 2) ? below(rng, 6) : 0;
    for (size_t i = 0; i < n; i++) {
        steps[i].kind = FAULT_EINTR;
        steps[i].arg = 0;
    }
    return n;
}

/* After a stream's loops: both ends keep the contract, the counts of what
 * the caller saw match the steps taken, and the receiver holds exactly the
 * bytes the sender accounted for, in order, then the end of the stream. */
static void check_stream(struct ctx *cx, const struct stream *st, const struct fault_step *tx_steps,
                         size_t tx_taken, const struct fault_step *rx_steps, size_t rx_taken,
                         ssize_t tail)
{
    size_t tx_eagain = count_kind(tx_steps, tx_taken, FAULT_EAGAIN);
    size_t rx_eagain = count_kind(rx_steps, rx_taken, FAULT_EAGAIN);
    size_t tx_reset = count_kind(tx_steps, tx_taken, FAULT_ERRNO);
    size_t rx_reset = count_kind(rx_steps, rx_taken, FAULT_ERRNO);

    if (st->tx.why[0] != '\0') {
        chaos_fail(cx, __LINE__, "sender: %s", st->tx.why);
    }
    if (st->rx.why[0] != '\0') {
        chaos_fail(cx, __LINE__, "receiver: %s", st->rx.why);
    }
    if (st->nonblocking) {
        /* EAGAIN is the caller's to see only from the one-call API; the
         * _all calls wait for readiness and go on. */
        EXPECT(cx, st->tx.timeouts == 0 && st->rx.timeouts == 0);
        EXPECT(cx, st->tx.eagains >= (st->once ? tx_eagain : 0));
        EXPECT(cx, st->rx.eagains >= (st->once ? rx_eagain : 0));
    } else {
        /* On a blocking socket each injected EAGAIN is one ETIMEDOUT. */
        EXPECT(cx, st->tx.timeouts == tx_eagain);
        EXPECT(cx, st->rx.timeouts == rx_eagain);
    }
    EXPECT(cx, st->tx.resets == tx_reset);
    EXPECT(cx, st->rx.resets == rx_reset);
    EXPECT(cx, tx_reset == 1 || st->tx.bytes == st->len);
    if (st->rx.bytes != st->tx.bytes) {
        chaos_fail(cx, __LINE__, "the sender accounted for %zu bytes, the receiver got %zu",
                   st->tx.bytes, st->rx.bytes);
    }
    for (size_t i = 0; i < st->rx.bytes; i++) {
        if (st->in[i] != st->out[i]) {
            chaos_fail(cx, __LINE__, "byte %zu of %zu differs from what was sent", i, st->rx.bytes);
        }
    }
    EXPECT(cx, tail == 0);
}

static void run_stream(uint32_t seed, int once, struct tally *ty, unsigned char *out,
                       unsigned char *in)
{
    uint32_t rng = seed;
    struct ctx cx;
    struct stream st;
    struct fault_step tx_steps[MAX_STEPS], rx_steps[MAX_STEPS], poll_steps[8];
    char what[160];
    int a, b;

    memset(&st, 0, sizeof st);
    st.once = once;
    st.nonblocking = (int)below(&rng, 2);
    int concurrent = (int)below(&rng, 2);
    int reverse = (int)below(&rng, 2);
    st.len = 1 + below(&rng, 1u << (4 + below(&rng, 11)));
    size_t n_tx = gen_stream_script(&rng, tx_steps, st.len, 1);
    size_t n_rx = gen_stream_script(&rng, rx_steps, st.len, 2);
    size_t n_poll = gen_poll_script(&rng, poll_steps);
    snprintf(what, sizeof what, "%s, %s, %s, %zu bytes",
             once ? "netx_send/netx_recv loops" : "netx_send_all/netx_recv_all",
             st.nonblocking ? "non-blocking" : "blocking",
             concurrent ? "sender in a thread" : "send then receive", st.len);
    ctx_init(&cx, seed, what);

    chaos_pair(&cx, st.nonblocking, &a, &b);
    st.tx.fd = reverse ? b : a;
    st.rx.fd = reverse ? a : b;
    support_pattern(out, st.len, seed);
    for (size_t i = 0; i < st.len; i++) {
        in[i] = (unsigned char)(out[i] ^ 0xa5); /* unlike every byte expected */
    }
    st.out = out;
    st.in = in;

    fault_script(FAULT_SEND, st.tx.fd, tx_steps, n_tx);
    fault_script(FAULT_RECV, st.rx.fd, rx_steps, n_rx);
    fault_script(FAULT_POLL, st.rx.fd, poll_steps, n_poll);
    if (concurrent) {
        pthread_t t;
        assert_int_equal(pthread_create(&t, NULL, stream_send_main, &st), 0);
        stream_recv(&st);
        pthread_join(t, NULL);
    } else {
        stream_send(&st);
        stream_recv(&st);
    }
    size_t tx_taken = n_tx - fault_pending(FAULT_SEND);
    size_t rx_taken = n_rx - fault_pending(FAULT_RECV);
    fault_reset();

    /* Nothing follows the bytes accounted for: the next receive is the
     * end of the stream. */
    char extra;
    assert_int_equal(netx_set_nonblocking(st.rx.fd, 0), 0);
    ssize_t tail = netx_recv(st.rx.fd, &extra, 1);

    ctx_close_all(&cx);
    check_stream(&cx, &st, tx_steps, tx_taken, rx_steps, rx_taken, tail);
    tally_add(ty, tx_steps, tx_taken);
    tally_add(ty, rx_steps, rx_taken);
    ty->scripts++;
}

static void run_stream_case(uint32_t salt, unsigned n, int once)
{
    struct plan p = plan_for(salt, n);
    struct tally ty;
    unsigned char *out = malloc(STREAM_MAX);
    unsigned char *in = malloc(STREAM_MAX);
    assert_non_null(out);
    assert_non_null(in);
    memset(&ty, 0, sizeof ty);
    for (unsigned i = 0; i < p.n; i++) {
        run_stream(plan_seed(&p, i), once, &ty, out, in);
    }
    free(out);
    free(in);
    tally_check(&ty, &p,
                KIND(FAULT_SHORT) | KIND(FAULT_EINTR) | KIND(FAULT_EAGAIN) | KIND(FAULT_ERRNO),
                p.n / 8);
}

static void chaos_send_all_recv_all_random_faults_every_byte_once(void **state)
{
    (void)state;
    run_stream_case(0x5e11d000u, SCRIPTS_STREAM_ALL, 0);
}

static void chaos_send_recv_loops_random_faults_every_byte_once(void **state)
{
    (void)state;
    run_stream_case(0x0aceda11u, SCRIPTS_STREAM_ONCE, 1);
}

/* The reader: lines and length-prefixed bodies ----------------------------------- */

/*
 * The stream a reader script reads is a random list of records:
 *   LINE   a line that fits (its length up to the limit, '\n' included)
 *   LONG   a line longer than the limit: netx_read_line() says EMSGSIZE
 *          once, and the next line follows
 *   BODY   a 4-byte big-endian length and that many bytes, read with
 *          netx_read_n() (the bytes may include '\n')
 *   HBODY  a header line "#<length>\n" read with netx_read_line(), then the
 *          body with netx_read_n()
 *   TAIL   a last line without '\n', returned as it is at end of stream
 * A BODY never follows a LONG: netx_read_n() after an over-long line reads
 * from wherever the skip had got to, which depends on how the bytes
 * arrived, so a caller that knows its protocol reads a line there.
 */
enum rec_kind { REC_LINE, REC_LONG, REC_BODY, REC_HBODY, REC_TAIL };

struct rec {
    enum rec_kind kind;
    size_t off;  /* where it starts in the stream */
    size_t len;  /* all its bytes */
    size_t body; /* BODY, HBODY: the body's length (the rest is header) */
};

#define READER_STREAM_MAX (32u * 1024u)
#define MAX_RECS          600

static void printable(uint32_t *rng, unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        p[i] = (unsigned char)(' ' + below(rng, 95)); /* never '\n' */
    }
}

static size_t build_records(uint32_t *rng, unsigned char *buf, struct rec *recs, size_t *nrecs,
                            size_t limit, size_t rcap)
{
    size_t target = 1 + below(rng, 1u << (6 + below(rng, 9)));
    size_t used = 0;
    size_t n = 0;
    int after_long = 0;

    while (used < target && n < MAX_RECS - 1) {
        struct rec rc = {REC_LINE, used, 0, 0};
        char head[24];
        size_t head_len = 0;
        uint32_t r = below(rng, 10);
        rc.kind = r < 4 ? REC_LINE : r < 6 ? REC_LONG : r < 8 ? REC_BODY : REC_HBODY;
        if (rc.kind == REC_BODY || rc.kind == REC_HBODY) {
            rc.body = below(rng, 3) == 0 ? below(rng, 8) : below(rng, 3001);
        }
        if (rc.kind == REC_HBODY) {
            head_len = (size_t)snprintf(head, sizeof head, "#%zu\n", rc.body);
            if (head_len > limit) {
                rc.kind = REC_BODY;
            }
        }
        if (rc.kind == REC_BODY && after_long) {
            rc.kind = REC_LINE;
        }
        switch (rc.kind) {
        case REC_LINE:
            rc.len = below(rng, 4) == 0 ? limit : 1 + below(rng, (uint32_t)limit);
            break;
        case REC_LONG:
            rc.len = limit + 1 + (below(rng, 3) == 0 ? 0 : below(rng, (uint32_t)(2 * rcap + 8)));
            break;
        case REC_BODY:
            head_len = 4;
            rc.len = head_len + rc.body;
            break;
        default:
            rc.len = head_len + rc.body;
            break;
        }
        if (used + rc.len > READER_STREAM_MAX) {
            break;
        }
        unsigned char *p = buf + used;
        if (rc.kind == REC_LINE || rc.kind == REC_LONG) {
            printable(rng, p, rc.len - 1);
            p[rc.len - 1] = '\n';
        } else {
            if (rc.kind == REC_BODY) {
                p[0] = (unsigned char)(rc.body >> 24);
                p[1] = (unsigned char)(rc.body >> 16);
                p[2] = (unsigned char)(rc.body >> 8);
                p[3] = (unsigned char)rc.body;
            } else {
                memcpy(p, head, head_len);
            }
            for (size_t i = head_len; i < rc.len; i++) {
                p[i] = (unsigned char)rnd(rng);
            }
        }
        recs[n++] = rc;
        used += rc.len;
        after_long = rc.kind == REC_LONG;
    }
    if (below(rng, 8) == 0 && used + limit <= READER_STREAM_MAX) {
        struct rec rc = {REC_TAIL, used, 1 + below(rng, (uint32_t)limit), 0};
        printable(rng, buf + used, rc.len);
        recs[n++] = rc;
        used += rc.len;
    }
    *nrecs = n;
    return used;
}

struct reader_run {
    netx_reader r;
    int nonblocking;
    struct side sd; /* the counts and the first breach */
};

/*
 * netx_read_line() as a careful caller uses it: a timeout, EAGAIN or a
 * reset loses nothing (netx.h), so after counting one it calls again.
 * Returns the line's length, -1 for EMSGSIZE, -2 after a breach.
 */
static ssize_t rr_line(struct reader_run *rr, char *line, size_t cap)
{
    for (unsigned guard = 0; guard < CALL_GUARD; guard++) {
        errno = UNTOUCHED;
        ssize_t n = netx_read_line(&rr->r, line, cap);
        if (n >= 0) {
            if (errno != UNTOUCHED) {
                NOTE(&rr->sd, "netx_read_line returned %zd but set errno %d", n, errno);
                return -2;
            }
            return n;
        }
        int err = errno;
        if (err == EMSGSIZE) {
            if (line[0] != '\0') {
                NOTE(&rr->sd, "EMSGSIZE but the line is not left empty");
                return -2;
            }
            return -1;
        }
        if (!side_failed(&rr->sd, err, rr->nonblocking, 1, 0)) {
            return -2;
        }
        if (err == EAGAIN && !wait_fd(rr->r.fd, POLLIN)) {
            NOTE(&rr->sd, "nothing to read within 5 s after EAGAIN");
            return -2;
        }
    }
    NOTE(&rr->sd, "netx_read_line made no progress in %u calls", CALL_GUARD);
    return -2;
}

/*
 * netx_read_n() as a careful caller uses it: after a failure the first
 * netx_last_transferred() bytes are in buf and gone from the stream, so it
 * asks for the rest only. 0 once n bytes are in, -1 after a breach.
 */
static int rr_n(struct reader_run *rr, unsigned char *buf, size_t n)
{
    size_t off = 0;
    for (unsigned guard = 0; guard < CALL_GUARD; guard++) {
        size_t want = n - off;
        errno = UNTOUCHED;
        ssize_t got = netx_read_n(&rr->r, buf + off, want);
        if (got >= 0) {
            if ((size_t)got != want || errno != UNTOUCHED) {
                NOTE(&rr->sd, "netx_read_n(%zu) returned %zd (errno %d) before the stream ended",
                     want, got, errno);
                return -1;
            }
            return 0;
        }
        size_t moved = netx_last_transferred();
        int err = errno;
        if (moved >= want) {
            NOTE(&rr->sd, "a failed netx_read_n(%zu) claims %zu bytes", want, moved);
            return -1;
        }
        off += moved;
        if (!side_failed(&rr->sd, err, rr->nonblocking, 1, 0)) {
            return -1;
        }
        if (err == EAGAIN && !wait_fd(rr->r.fd, POLLIN)) {
            NOTE(&rr->sd, "nothing to read within 5 s after EAGAIN");
            return -1;
        }
    }
    NOTE(&rr->sd, "netx_read_n made no progress in %u calls", CALL_GUARD);
    return -1;
}

static size_t body_length(const unsigned char *p)
{
    return (size_t)p[0] << 24 | (size_t)p[1] << 16 | (size_t)p[2] << 8 | (size_t)p[3];
}

/* Read every record in order and compare it with what was sent; then the
 * end of the stream, twice (a line, and an exact read). */
static void read_records(struct reader_run *rr, const unsigned char *stream, const struct rec *recs,
                         size_t nrecs, size_t lcap, unsigned char *scratch)
{
    char line[4100];
    for (size_t i = 0; i < nrecs && rr->sd.why[0] == '\0'; i++) {
        const struct rec *rc = &recs[i];
        const unsigned char *want = stream + rc->off;
        size_t head = rc->len - rc->body;
        ssize_t n;
        switch (rc->kind) {
        case REC_LINE:
        case REC_TAIL:
            n = rr_line(rr, line, lcap);
            if (n == -2) {
                break;
            }
            if (n != (ssize_t)rc->len || memcmp(line, want, rc->len) != 0 || line[n] != '\0') {
                NOTE(&rr->sd, "record %zu: a %zu-byte line came back as %zd bytes", i, rc->len, n);
            }
            break;
        case REC_LONG:
            n = rr_line(rr, line, lcap);
            if (n >= 0) {
                NOTE(&rr->sd, "record %zu: a %zu-byte line over the limit was returned (%zd)", i,
                     rc->len, n);
            }
            break;
        case REC_HBODY:
            n = rr_line(rr, line, lcap);
            if (n == -2) {
                break;
            }
            if (n != (ssize_t)head || memcmp(line, want, head) != 0) {
                NOTE(&rr->sd, "record %zu: header line of %zu bytes came back as %zd", i, head, n);
                break;
            }
            if (rr_n(rr, scratch, rc->body) == 0 && memcmp(scratch, want + head, rc->body) != 0) {
                NOTE(&rr->sd, "record %zu: the %zu-byte body differs", i, rc->body);
            }
            break;
        case REC_BODY:
            if (rr_n(rr, scratch, 4) != 0) {
                break;
            }
            if (memcmp(scratch, want, 4) != 0 || body_length(scratch) != rc->body) {
                NOTE(&rr->sd, "record %zu: the length prefix differs", i);
                break;
            }
            if (rr_n(rr, scratch, rc->body) == 0 && memcmp(scratch, want + 4, rc->body) != 0) {
                NOTE(&rr->sd, "record %zu: the %zu-byte body differs", i, rc->body);
            }
            break;
        }
    }
    if (rr->sd.why[0] == '\0') {
        ssize_t n = rr_line(rr, line, lcap);
        if (n != 0) {
            NOTE(&rr->sd, "after the last record, netx_read_line returned %zd, not 0", n);
        } else if (netx_read_n(&rr->r, scratch, 1) != 0) {
            NOTE(&rr->sd, "after the end, netx_read_n still returned bytes");
        }
    }
}

struct reader_bufs {
    unsigned char stream[READER_STREAM_MAX];
    unsigned char scratch[READER_STREAM_MAX];
    unsigned char storage[4096];
    struct rec recs[MAX_RECS];
};

static void run_reader(uint32_t seed, struct tally *ty, struct reader_bufs *bufs)
{
    static const size_t rcaps[] = {1, 7, 16, 64, 100, 256, 1024, 4096};
    static const size_t lcaps[] = {2, 3, 9, 80, 300, 4097};
    uint32_t rng = seed;
    struct ctx cx;
    struct stream st;
    struct reader_run rr;
    struct fault_step tx_steps[MAX_STEPS], rx_steps[MAX_STEPS], poll_steps[8];
    char what[160];
    size_t nrecs;
    int a, b;

    memset(&st, 0, sizeof st);
    memset(&rr, 0, sizeof rr);
    int nonblocking = (int)below(&rng, 2);
    int concurrent = (int)below(&rng, 2);
    size_t rcap = rcaps[below(&rng, COUNT(rcaps))];
    size_t lcap = lcaps[below(&rng, COUNT(lcaps))];
    size_t limit = lcap - 1 < rcap ? lcap - 1 : rcap;
    size_t total = build_records(&rng, bufs->stream, bufs->recs, &nrecs, limit, rcap);
    st.once = (int)below(&rng, 2);
    size_t n_tx = gen_stream_script(&rng, tx_steps, total, 0);
    size_t n_rx = gen_stream_script(&rng, rx_steps, total, 2);
    size_t n_poll = gen_poll_script(&rng, poll_steps);
    snprintf(what, sizeof what,
             "netx_reader, %s, %s, %zu records in %zu bytes, storage %zu, line buffer %zu",
             nonblocking ? "non-blocking" : "blocking",
             concurrent ? "sender in a thread" : "send then read", nrecs, total, rcap, lcap);
    ctx_init(&cx, seed, what);

    chaos_pair(&cx, nonblocking, &a, &b);
    st.nonblocking = nonblocking;
    st.len = total;
    st.out = bufs->stream;
    st.tx.fd = a;
    rr.nonblocking = nonblocking;
    rr.sd.fd = b;
    assert_int_equal(netx_reader_init(&rr.r, b, bufs->storage, rcap), 0);

    fault_script(FAULT_SEND, a, tx_steps, n_tx);
    fault_script(FAULT_RECV, b, rx_steps, n_rx);
    fault_script(FAULT_POLL, b, poll_steps, n_poll);
    if (concurrent) {
        pthread_t t;
        assert_int_equal(pthread_create(&t, NULL, stream_send_main, &st), 0);
        read_records(&rr, bufs->stream, bufs->recs, nrecs, lcap, bufs->scratch);
        /* A reader that stopped early leaves the sender able to finish:
         * the whole stream fits in the socket buffers. */
        pthread_join(t, NULL);
    } else {
        stream_send(&st);
        read_records(&rr, bufs->stream, bufs->recs, nrecs, lcap, bufs->scratch);
    }
    size_t tx_taken = n_tx - fault_pending(FAULT_SEND);
    size_t rx_taken = n_rx - fault_pending(FAULT_RECV);
    ctx_close_all(&cx);

    if (st.tx.why[0] != '\0') {
        chaos_fail(&cx, __LINE__, "sender: %s", st.tx.why);
    }
    if (rr.sd.why[0] != '\0') {
        chaos_fail(&cx, __LINE__, "reader: %s", rr.sd.why);
    }
    EXPECT(&cx, st.tx.bytes == total && st.tx.resets == 0);
    size_t rx_eagain = count_kind(rx_steps, rx_taken, FAULT_EAGAIN);
    if (nonblocking) {
        EXPECT(&cx, rr.sd.eagains >= rx_eagain && rr.sd.timeouts == 0);
    } else {
        EXPECT(&cx, rr.sd.timeouts == rx_eagain);
    }
    EXPECT(&cx, rr.sd.resets == count_kind(rx_steps, rx_taken, FAULT_ERRNO));
    tally_add(ty, tx_steps, tx_taken);
    tally_add(ty, rx_steps, rx_taken);
    ty->scripts++;
}

static void chaos_reader_lines_and_bodies_random_faults_nothing_lost(void **state)
{
    (void)state;
    struct plan p = plan_for(0x4eade400u, SCRIPTS_READER);
    struct tally ty;
    struct reader_bufs *bufs = malloc(sizeof *bufs);
    assert_non_null(bufs);
    memset(&ty, 0, sizeof ty);
    for (unsigned i = 0; i < p.n; i++) {
        run_reader(plan_seed(&p, i), &ty, bufs);
    }
    free(bufs);
    tally_check(&ty, &p,
                KIND(FAULT_SHORT) | KIND(FAULT_EINTR) | KIND(FAULT_EAGAIN) | KIND(FAULT_ERRNO),
                p.n / 8);
}

/* UDP: netx_sendto and netx_recvfrom ------------------------------------------------ */

#define UDP_MAX_DGRAMS 24
#define UDP_MAX_SIZE   1400

/* Random steps for datagram calls. Sending: EINTR, EAGAIN, and errors that
 * send nothing (an earlier datagram's ICMP refusal, no buffer space).
 * Receiving: EINTR, EAGAIN, a refusal, and short buffers (the kernel then
 * cuts the datagram: EMSGSIZE, and the datagram is gone). */
static size_t gen_udp_script(uint32_t *rng, struct fault_step *steps, int receiving)
{
    size_t n = below(rng, 25);
    for (size_t i = 0; i < n; i++) {
        uint32_t r = below(rng, 20);
        steps[i].arg = 0;
        if (r < 7) {
            steps[i].kind = FAULT_EINTR;
        } else if (r < 12) {
            steps[i].kind = FAULT_EAGAIN;
        } else if (r < 15) {
            steps[i].kind = FAULT_ERRNO;
            steps[i].arg = receiving || below(rng, 2) ? ECONNREFUSED : ENOBUFS;
        } else if (r < 18 && receiving) {
            steps[i].kind = FAULT_SHORT;
            steps[i].arg = below(rng, UDP_MAX_SIZE + 100);
        } else {
            steps[i].kind = FAULT_PASS;
        }
    }
    return n;
}

/* The datagram numbered i of a script: its size and bytes. */
static size_t udp_dgram(uint32_t seed, unsigned i, unsigned char *buf)
{
    uint32_t rng = spread(seed ^ (i + 1) * 0x27d4eb2fu);
    size_t size;
    if (rng == 0) {
        rng = 1;
    }
    switch (below(&rng, 4)) {
    case 0:
        size = below(&rng, 4); /* empty and tiny datagrams too */
        break;
    case 1:
        size = UDP_MAX_SIZE - below(&rng, 100);
        break;
    default:
        size = below(&rng, UDP_MAX_SIZE + 1);
        break;
    }
    for (size_t k = 0; k < size; k++) {
        buf[k] = (unsigned char)rnd(&rng);
    }
    return size;
}

/* A failed datagram call: errno and the record agree, and the sentence
 * names the step. */
static void check_udp_failure(struct ctx *cx, int err, int want, const char *step)
{
    char text[128];
    if (err != want) {
        chaos_fail(cx, __LINE__, "%s failed with errno %d, the script says %d", step, err, want);
    }
    errno_text(err, text, sizeof text);
    EXPECT(cx, netx_last_errno() == err);
    if (strstr(netx_last_error(), step) == NULL || strstr(netx_last_error(), text) == NULL) {
        chaos_fail(cx, __LINE__, "sentence \"%s\" lacks \"%s\" or \"%s\"", netx_last_error(), step,
                   text);
    }
}

static void run_udp(uint32_t seed, struct tally *ty)
{
    uint32_t rng = seed;
    struct ctx cx;
    struct fault_step tx_steps[MAX_STEPS], rx_steps[MAX_STEPS];
    unsigned char dgram[UDP_MAX_SIZE + 100], got[UDP_MAX_SIZE + 200];
    char what[120];
    netx_addr to, from;

    int nonblocking = (int)below(&rng, 2);
    unsigned k = 1 + below(&rng, UDP_MAX_DGRAMS);
    size_t n_tx = gen_udp_script(&rng, tx_steps, 0);
    size_t n_rx = gen_udp_script(&rng, rx_steps, 1);
    snprintf(what, sizeof what, "netx_sendto/netx_recvfrom, %s, %u datagrams",
             nonblocking ? "non-blocking" : "blocking", k);
    ctx_init(&cx, seed, what);

    int rx = ctx_track(&cx, netx_udp_bind("127.0.0.1", 0));
    int tx = ctx_track(&cx, netx_udp_bind("127.0.0.1", 0));
    assert_true(rx >= 0 && tx >= 0);
    assert_int_equal(netx_local_addr(rx, &to), 0);
    int tx_port = port_of(tx);
    assert_int_equal(netx_set_timeout(rx, 2000), 0);
    assert_int_equal(netx_set_timeout(tx, 2000), 0);
    assert_int_equal(netx_set_nonblocking(rx, nonblocking), 0);
    assert_int_equal(netx_set_nonblocking(tx, nonblocking), 0);
    fault_reset();
    fault_script(FAULT_SENDTO, tx, tx_steps, n_tx);
    fault_script(FAULT_RECV, rx, rx_steps, n_rx);

    /* Send each datagram until it goes. What one call must do follows from
     * the last step it took; a datagram that fails is resent, one that
     * succeeds must not be, and the receiver checks both. */
    for (unsigned i = 0; i < k; i++) {
        size_t size = udp_dgram(seed, i, dgram);
        for (unsigned guard = 0;; guard++) {
            EXPECT(&cx, guard < 1000);
            size_t before = fault_pending(FAULT_SENDTO);
            unsigned calls = fault_count(FAULT_SENDTO);
            errno = UNTOUCHED;
            ssize_t n = netx_sendto(tx, dgram, size, &to);
            int err = errno;
            size_t after = fault_pending(FAULT_SENDTO);
            struct fault_step last = last_taken(tx_steps, n_tx, before, after);
            calls = fault_count(FAULT_SENDTO) - calls;
            if (calls != calls_expected(before, after, last)) {
                chaos_fail(&cx, __LINE__, "datagram %u: %u sendto() calls for %zu steps taken", i,
                           calls, before - after);
            }
            if (last.kind == FAULT_EAGAIN || last.kind == FAULT_ERRNO) {
                EXPECT(&cx, n == -1);
                int want = last.kind == FAULT_ERRNO ? (int)last.arg
                           : nonblocking            ? EAGAIN
                                                    : ETIMEDOUT;
                check_udp_failure(&cx, err, want, "sendto 127.0.0.1:");
                continue;
            }
            if (n != (ssize_t)size || err != UNTOUCHED) {
                chaos_fail(&cx, __LINE__,
                           "datagram %u: netx_sendto returned %zd (errno %d) for %zu", i, n, err,
                           size);
            }
            break;
        }
    }

    /* Every datagram is queued at the receiver by now (loopback delivers
     * during sendto), in order. */
    for (unsigned i = 0; i < k; i++) {
        size_t size = udp_dgram(seed, i, dgram);
        for (unsigned guard = 0;; guard++) {
            EXPECT(&cx, guard < 1000);
            size_t before = fault_pending(FAULT_RECV);
            unsigned calls = fault_count(FAULT_RECV);
            errno = UNTOUCHED;
            ssize_t n = netx_recvfrom(rx, got, sizeof got, &from);
            int err = errno;
            size_t after = fault_pending(FAULT_RECV);
            struct fault_step last = last_taken(rx_steps, n_rx, before, after);
            calls = fault_count(FAULT_RECV) - calls;
            if (calls != calls_expected(before, after, last)) {
                chaos_fail(&cx, __LINE__, "datagram %u: %u recvmsg() calls for %zu steps taken", i,
                           calls, before - after);
            }
            if (last.kind == FAULT_EAGAIN || last.kind == FAULT_ERRNO) {
                EXPECT(&cx, n == -1);
                int want = last.kind == FAULT_ERRNO ? (int)last.arg
                           : nonblocking            ? EAGAIN
                                                    : ETIMEDOUT;
                /* EAGAIN is routine for a non-blocking socket: its sentence
                 * skips the address lookup and names the descriptor. */
                check_udp_failure(&cx, err, want,
                                  want == EAGAIN ? "recvfrom on fd" : "recvfrom on 127.0.0.1:");
                continue;
            }
            if (last.kind == FAULT_SHORT && last.arg < size) {
                /* Cut short: its first bytes, its sender, and it is gone. */
                EXPECT(&cx, n == -1);
                check_udp_failure(&cx, err, EMSGSIZE, "recvfrom on 127.0.0.1:");
                EXPECT(&cx, memcmp(got, dgram, last.arg) == 0);
                EXPECT(&cx, netx_addr_port(&from) == tx_port);
                break;
            }
            if (n != (ssize_t)size || err != UNTOUCHED) {
                chaos_fail(&cx, __LINE__,
                           "datagram %u of %zu bytes: netx_recvfrom returned %zd (errno %d)", i,
                           size, n, err);
            }
            if (memcmp(got, dgram, size) != 0) {
                chaos_fail(&cx, __LINE__, "datagram %u differs from what was sent", i);
            }
            EXPECT(&cx, netx_addr_port(&from) == tx_port);
            break;
        }
    }
    size_t tx_taken = n_tx - fault_pending(FAULT_SENDTO);
    size_t rx_taken = n_rx - fault_pending(FAULT_RECV);
    fault_reset();

    /* No datagram twice: nothing is left. */
    assert_int_equal(netx_set_nonblocking(rx, 1), 0);
    errno = 0;
    ssize_t extra = netx_recvfrom(rx, got, sizeof got, NULL);
    int extra_err = errno;
    ctx_close_all(&cx);
    EXPECT(&cx, extra == -1 && extra_err == EAGAIN);
    tally_add(ty, tx_steps, tx_taken);
    tally_add(ty, rx_steps, rx_taken);
    ty->scripts++;
}

static void chaos_sendto_recvfrom_random_faults_each_datagram_once(void **state)
{
    (void)state;
    struct plan p = plan_for(0xd6a6a000u, SCRIPTS_UDP);
    struct tally ty;
    memset(&ty, 0, sizeof ty);
    for (unsigned i = 0; i < p.n; i++) {
        run_udp(plan_seed(&p, i), &ty);
    }
    tally_check(&ty, &p,
                KIND(FAULT_SHORT) | KIND(FAULT_EINTR) | KIND(FAULT_EAGAIN) | KIND(FAULT_ERRNO),
                p.n / 4);
}

/* Connect --------------------------------------------------------------------------- */

/* Accept, from a listener shared by many scripts, the connection whose
 * peer port is port, closing any other found on the way (left by scripts
 * whose connect was failed after the kernel had connected). -1 if it does
 * not come within five seconds. */
static int accept_port(int lfd, int port)
{
    for (int guard = 0; guard < 64; guard++) {
        if (!wait_fd(lfd, POLLIN)) {
            return -1;
        }
        int s = accept(lfd, NULL, NULL);
        if (s < 0) {
            continue;
        }
        if (peer_port_of(s) == port) {
            return s;
        }
        close(s);
    }
    return -1;
}

/* Close whatever waits in a (non-blocking) listener's queue. */
static void drain_listener(int lfd)
{
    for (int guard = 0; guard < 64; guard++) {
        int s = accept(lfd, NULL, NULL);
        if (s < 0) {
            return;
        }
        close(s);
    }
}

/* One byte each way between a and b: the two are really connected. */
static int exchange_byte(int a, int b)
{
    char x = 0;
    if (send(a, "c", 1, MSG_NOSIGNAL) != 1 || recv(b, &x, 1, 0) != 1 || x != 'c') {
        return 0;
    }
    if (send(b, "s", 1, MSG_NOSIGNAL) != 1 || recv(a, &x, 1, 0) != 1 || x != 's') {
        return 0;
    }
    return 1;
}

static void run_connect(uint32_t seed, int lfd, int open_port, int closed_port)
{
    static const int refusals[] = {ECONNREFUSED, ENETUNREACH, EHOSTUNREACH, ETIMEDOUT,
                                   EADDRNOTAVAIL};
    uint32_t rng = seed;
    struct ctx cx;
    struct fault_step conn_step[1], poll_steps[8];
    size_t n_conn = 0, n_poll;
    char what[160], text[32], want_text[96], errtext[128];
    netx_addr addr;

    int via_tcp = (int)below(&rng, 2);
    int nonblocking = via_tcp ? 0 : (int)below(&rng, 2);
    int timeout = below(&rng, 2) ? 2000 : 0;
    int to_closed = below(&rng, 4) == 0;
    int port = to_closed ? closed_port : open_port;
    uint32_t r = below(&rng, 10);
    if (r >= 5) {
        conn_step[0].kind = r < 8 ? FAULT_EINTR : FAULT_ERRNO;
        conn_step[0].arg = r < 8 ? 0 : (size_t)refusals[below(&rng, COUNT(refusals))];
        n_conn = 1;
    }
    n_poll = below(&rng, 5);
    for (size_t i = 0; i < n_poll; i++) {
        poll_steps[i].kind = FAULT_EINTR;
        poll_steps[i].arg = 0;
    }
    int poll_fails = below(&rng, 4) == 0;
    if (poll_fails) {
        poll_steps[n_poll].kind = FAULT_ERRNO;
        poll_steps[n_poll].arg = ENOMEM;
        n_poll++;
    }
    snprintf(what, sizeof what, "%s, %s, timeout %d, to a %s port, connect step %s",
             via_tcp ? "netx_tcp_connect" : "netx_connect",
             nonblocking ? "non-blocking" : "blocking", timeout, to_closed ? "closed" : "open",
             n_conn == 0                        ? "none"
             : conn_step[0].kind == FAULT_EINTR ? "EINTR"
                                                : "an error");
    ctx_init(&cx, seed, what);

    /* What the scripts make of it. An injected error from connect() ends
     * the call at once. Otherwise the call waits in poll() when connect()
     * did not finish at once: with a timeout (the library connects in
     * non-blocking mode), on a non-blocking socket, or after an EINTR from
     * a connect() that was still going (to a closed port it has already
     * failed, and the wrapper passes that failure on). */
    int want_err;
    unsigned want_polls = 0;
    if (n_conn == 1 && conn_step[0].kind == FAULT_ERRNO) {
        want_err = (int)conn_step[0].arg;
    } else {
        int waits = timeout > 0 || nonblocking || (n_conn == 1 && !to_closed);
        want_err = to_closed ? ECONNREFUSED : 0;
        if (waits) {
            want_polls = (unsigned)n_poll + (poll_fails ? 0 : 1);
            if (poll_fails) {
                want_err = ENOMEM;
            }
        }
    }

    snprintf(text, sizeof text, "127.0.0.1:%d", port);
    assert_int_equal(netx_addr_parse(text, &addr), 0);
    int fd = -1;
    if (!via_tcp) {
        fd = ctx_track(&cx, netx_socket(AF_INET, SOCK_STREAM));
        assert_true(fd >= 0);
        assert_int_equal(netx_set_nonblocking(fd, nonblocking), 0);
    }
    assert_int_equal(netx_close(-1), -1); /* a failure for the record to keep */
    int fds_before = support_fd_count();
    fault_reset();
    fault_script(FAULT_CONNECT, via_tcp ? -1 : fd, conn_step, n_conn);
    fault_script(FAULT_POLL, via_tcp ? -1 : fd, poll_steps, n_poll);
    errno = UNTOUCHED;
    int rc;
    if (via_tcp) {
        rc = ctx_track(&cx, netx_tcp_connect("127.0.0.1", (uint16_t)port, timeout));
    } else {
        rc = netx_connect(fd, &addr, timeout);
    }
    int err = errno;
    unsigned connects = fault_count(FAULT_CONNECT);
    unsigned polls = fault_count(FAULT_POLL);
    unsigned closes = fault_count(FAULT_CLOSE);
    fault_reset();

    if (connects != 1 || polls != want_polls) {
        chaos_fail(&cx, __LINE__, "%u connect() and %u poll() calls; want 1 and %u", connects,
                   polls, want_polls);
    }
    int conn_fd = via_tcp ? rc : fd;
    if (want_err == 0) {
        if (rc < 0) {
            chaos_fail(&cx, __LINE__, "failed: %s", netx_last_error());
        }
        /* A success leaves errno and the record alone. */
        EXPECT(&cx, err == UNTOUCHED && netx_last_errno() == EBADF);
        EXPECT(&cx, closes == 0);
        EXPECT(&cx, is_nonblocking(conn_fd) == nonblocking);
        EXPECT(&cx, peer_port_of(conn_fd) == port);
        int s = ctx_track(&cx, accept_port(lfd, port_of(conn_fd)));
        EXPECT(&cx, s >= 0);
        if (nonblocking) {
            set_nonblocking_raw(conn_fd, 0);
        }
        EXPECT(&cx, exchange_byte(conn_fd, s));
    } else {
        EXPECT(&cx, rc == -1);
        if (err != want_err) {
            chaos_fail(&cx, __LINE__, "failed with errno %d (%s), want %d", err, netx_last_error(),
                       want_err);
        }
        errno_text(want_err, errtext, sizeof errtext);
        snprintf(want_text, sizeof want_text, "connect to 127.0.0.1:%d", port);
        EXPECT(&cx, netx_last_errno() == want_err);
        EXPECT(&cx, strstr(netx_last_error(), want_text) != NULL);
        EXPECT(&cx, strstr(netx_last_error(), errtext) != NULL);
        if (via_tcp) {
            /* The socket it made is closed again, once. */
            EXPECT(&cx, closes == 1);
            EXPECT(&cx, support_fd_count() == fds_before);
        } else {
            /* The caller's socket stays open, in the mode it was in. */
            EXPECT(&cx, closes == 0);
            EXPECT(&cx, is_nonblocking(fd) == nonblocking);
        }
    }
    ctx_close_all(&cx);
    drain_listener(lfd);
}

static void chaos_connect_random_faults_outcome_as_scripted(void **state)
{
    (void)state;
    struct plan p = plan_for(0xc0ec7000u, SCRIPTS_CONNECT);
    int lfd = case_fd_set(netx_tcp_listen("127.0.0.1", 0, 0));
    assert_true(lfd >= 0);
    int open_port = port_of(lfd);
    /* A port that was free a moment ago: nothing listens there. */
    int gone = netx_tcp_listen("127.0.0.1", 0, 0);
    assert_true(gone >= 0);
    int closed_port = port_of(gone);
    assert_int_equal(netx_close(gone), 0);
    set_nonblocking_raw(lfd, 1);

    for (unsigned i = 0; i < p.n; i++) {
        run_connect(plan_seed(&p, i), lfd, open_port, closed_port);
    }
    case_fd_done();
}

/* Accept ------------------------------------------------------------------------------ */

static void run_accept(uint32_t seed, int lfd, int lport, struct tally *ty)
{
    /* The errors that belong to one connection, which netx_accept() skips
     * (netx.h), and those it must report. */
    static const int skipped[] = {ECONNABORTED, EPROTO,    ENETDOWN, ENETUNREACH,
                                  EHOSTUNREACH, EHOSTDOWN, ENONET};
    static const int reported[] = {EMFILE, ENFILE, ENOBUFS, ENOMEM};
    uint32_t rng = seed;
    struct ctx cx;
    struct fault_step steps[16];
    char what[120], want_text[64], errtext[128], record[400];
    netx_addr peer;

    int nonblocking = (int)below(&rng, 2);
    int with_client = nonblocking ? below(&rng, 4) != 0 : 1;
    size_t n = below(&rng, 9);
    for (size_t i = 0; i < n; i++) {
        uint32_t r = below(&rng, COUNT(skipped) + 3);
        steps[i].kind = r < COUNT(skipped) ? FAULT_ERRNO : FAULT_EINTR;
        steps[i].arg = r < COUNT(skipped) ? (size_t)skipped[r] : 0;
    }
    int terminal = below(&rng, 2) == 0;
    if (terminal) {
        uint32_t r = below(&rng, COUNT(reported) + 1);
        steps[n].kind = r < COUNT(reported) ? FAULT_ERRNO : FAULT_EAGAIN;
        steps[n].arg = r < COUNT(reported) ? (size_t)reported[r] : 0;
        n++;
    }
    snprintf(what, sizeof what, "netx_accept, %s listener, %s, %zu steps%s",
             nonblocking ? "non-blocking" : "blocking",
             with_client ? "a client waiting" : "no client", n,
             terminal ? " ending in an error" : "");
    ctx_init(&cx, seed, what);

    int want_err = 0;
    if (terminal) {
        want_err = steps[n - 1].kind == FAULT_EAGAIN ? (nonblocking ? EAGAIN : ETIMEDOUT)
                                                     : (int)steps[n - 1].arg;
    } else if (!with_client) {
        want_err = EAGAIN;
    }

    set_nonblocking_raw(lfd, nonblocking);
    int c = -1;
    if (with_client) {
        c = ctx_track(&cx, netx_tcp_connect("127.0.0.1", (uint16_t)lport, 2000));
        assert_true(c >= 0);
        /* Queued before the script starts, so a pass-through accept finds
         * it even on a non-blocking listener. */
        EXPECT(&cx, wait_fd(lfd, POLLIN));
    }
    assert_int_equal(netx_close(-1), -1);
    snprintf(record, sizeof record, "%s", netx_last_error());
    fault_reset();
    fault_script(FAULT_ACCEPT, lfd, steps, n);
    errno = UNTOUCHED;
    int s = ctx_track(&cx, netx_accept(lfd, &peer));
    int err = errno;
    unsigned calls = fault_count(FAULT_ACCEPT);
    size_t pending = fault_pending(FAULT_ACCEPT);
    fault_reset();

    /* Every skippable step is skipped, and a reported one ends the call:
     * one accept4() per step, and one more that passed through unless the
     * last step was the answer. */
    EXPECT(&cx, pending == 0);
    EXPECT(&cx, calls == n + (terminal ? 0 : 1));
    if (want_err == 0) {
        if (s < 0) {
            chaos_fail(&cx, __LINE__, "failed: %s", netx_last_error());
        }
        EXPECT(&cx, err == UNTOUCHED);
        EXPECT(&cx, strcmp(netx_last_error(), record) == 0);
        EXPECT(&cx, netx_addr_port(&peer) == port_of(c));
        EXPECT(&cx, !is_nonblocking(s));
        EXPECT(&cx, (fcntl(s, F_GETFD) & FD_CLOEXEC) != 0);
        EXPECT(&cx, exchange_byte(c, s));
    } else {
        EXPECT(&cx, s == -1);
        if (err != want_err) {
            chaos_fail(&cx, __LINE__, "failed with errno %d (%s), want %d", err, netx_last_error(),
                       want_err);
        }
        errno_text(want_err, errtext, sizeof errtext);
        /* EAGAIN is routine for a non-blocking listener: its sentence
         * skips the address lookup and names the descriptor. */
        if (want_err == EAGAIN) {
            snprintf(want_text, sizeof want_text, "accept on fd %d", lfd);
        } else {
            snprintf(want_text, sizeof want_text, "accept on 127.0.0.1:%d", lport);
        }
        EXPECT(&cx, netx_last_errno() == want_err);
        EXPECT(&cx, strstr(netx_last_error(), want_text) != NULL);
        EXPECT(&cx, strstr(netx_last_error(), errtext) != NULL);
        if (with_client) {
            /* The connection is still queued: the next accept gets it. */
            int again = ctx_track(&cx, netx_accept(lfd, &peer));
            EXPECT(&cx, again >= 0);
            EXPECT(&cx, netx_addr_port(&peer) == port_of(c));
            EXPECT(&cx, exchange_byte(c, again));
        }
    }
    ctx_close_all(&cx);
    tally_add(ty, steps, n);
    ty->scripts++;
}

static void chaos_accept_random_faults_skips_or_reports_as_scripted(void **state)
{
    (void)state;
    struct plan p = plan_for(0xacce9700u, SCRIPTS_ACCEPT);
    struct tally ty;
    memset(&ty, 0, sizeof ty);
    int lfd = case_fd_set(netx_tcp_listen("127.0.0.1", 0, 0));
    assert_true(lfd >= 0);
    int lport = port_of(lfd);
    /* A bound on a blocking accept, so a lost connection fails the script
     * instead of hanging it. */
    assert_int_equal(netx_set_timeout(lfd, 2000), 0);
    for (unsigned i = 0; i < p.n; i++) {
        run_accept(plan_seed(&p, i), lfd, lport, &ty);
    }
    case_fd_done();
    tally_check(&ty, &p, KIND(FAULT_EINTR) | KIND(FAULT_EAGAIN) | KIND(FAULT_ERRNO), p.n / 16);
}

/* Real signals ------------------------------------------------------------------------- */

/*
 * A storm: SIGALRM every interval from setitimer(ITIMER_REAL), caught by a
 * handler installed without SA_RESTART, so each signal interrupts whatever
 * blocking call it lands in with EINTR (or cuts a transfer short). A
 * watchdog thread bounds it: at limit_ms it stops the timer and, if given
 * a socket, shuts it down, so that a call that would wait for ever under
 * signals fails its test instead of hanging it.
 */
static atomic_uint alarms;

static void on_alarm(int sig)
{
    (void)sig;
    atomic_fetch_add_explicit(&alarms, 1, memory_order_relaxed);
}

struct storm {
    struct sigaction old;
    pthread_t watchdog;
    atomic_int done;
    long limit_ms;
    int stop_fd;
    atomic_int expired;
};

static void *storm_watchdog(void *arg)
{
    struct storm *st = arg;
    long long end = mono_ms() + st->limit_ms;
    while (!atomic_load(&st->done)) {
        if (mono_ms() >= end) {
            struct itimerval off;
            memset(&off, 0, sizeof off);
            setitimer(ITIMER_REAL, &off, NULL);
            atomic_store(&st->expired, 1);
            if (st->stop_fd >= 0) {
                shutdown(st->stop_fd, SHUT_RDWR);
            }
            break;
        }
        sleep_ms(2);
    }
    return NULL;
}

/* Start fn in a thread that never takes SIGALRM (it inherits a mask with
 * the signal blocked), so the signals go to the threads under test. */
static int spawn_quiet(pthread_t *t, void *(*fn)(void *), void *arg)
{
    sigset_t block, saved;
    sigemptyset(&block);
    sigaddset(&block, SIGALRM);
    if (pthread_sigmask(SIG_BLOCK, &block, &saved) != 0) {
        return -1;
    }
    int rc = pthread_create(t, NULL, fn, arg);
    pthread_sigmask(SIG_SETMASK, &saved, NULL);
    return rc;
}

static void storm_start(struct storm *st, long interval_us, long limit_ms, int stop_fd)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0; /* no SA_RESTART: every signal interrupts */
    atomic_store(&alarms, 0);
    atomic_store(&st->done, 0);
    atomic_store(&st->expired, 0);
    st->limit_ms = limit_ms;
    st->stop_fd = stop_fd;
    assert_int_equal(sigaction(SIGALRM, &sa, &st->old), 0);
    assert_int_equal(spawn_quiet(&st->watchdog, storm_watchdog, st), 0);
    struct itimerval every;
    every.it_interval.tv_sec = interval_us / 1000000;
    every.it_interval.tv_usec = interval_us % 1000000;
    every.it_value = every.it_interval;
    assert_int_equal(setitimer(ITIMER_REAL, &every, NULL), 0);
}

/* Stop the timer, then put the old disposition back (in that order, so no
 * signal meets the default action, which would end the process). Returns
 * the number of signals delivered. */
static unsigned storm_stop(struct storm *st)
{
    struct itimerval off;
    memset(&off, 0, sizeof off);
    setitimer(ITIMER_REAL, &off, NULL);
    atomic_store(&st->done, 1);
    pthread_join(st->watchdog, NULL);
    sigaction(SIGALRM, &st->old, NULL);
    return atomic_load(&alarms);
}

/* 10 MiB under a signal every millisecond ---------------------------------------------- */

#define BIG_LEN (10u * 1024u * 1024u)

struct big_sender {
    int fd;
    const unsigned char *buf;
    int rc;
    int err;
    size_t transferred;
};

static void *big_sender_main(void *arg)
{
    struct big_sender *bs = arg;
    bs->rc = netx_send_all(bs->fd, bs->buf, BIG_LEN);
    bs->err = errno;
    bs->transferred = bs->rc == 0 ? BIG_LEN : netx_last_transferred();
    shutdown(bs->fd, SHUT_WR);
    return NULL;
}

/*
 * On loopback 10 MiB take a few milliseconds, too few for a signal every
 * millisecond to prove much; so whole 10 MiB transfers are repeated, each
 * checked byte for byte, until BIG_MIN_SIGNALS signals have landed while
 * transfers were under way (or BIG_MAX_ROUNDS transfers are done, which
 * then fails the test). The storm runs around each transfer only, and the
 * signals it delivered are what is counted.
 */
#define BIG_MIN_SIGNALS 100
#define BIG_MAX_ROUNDS  200

/*
 * The storm's period: a signal every millisecond, except under valgrind.
 * There two threads moving megabytes over loopback with raw send(2) and
 * recv(2), no libnetx at all, stop making progress once signals come every
 * 5 ms or faster (valgrind's own handling of signals that interrupt its
 * threads' system calls); every 10 ms they do not. Valgrind announces
 * itself in the client's LD_PRELOAD (vgpreload_*.so), which is how it is
 * recognised without its header. The native and sanitizer runs keep 1 ms.
 */
static long big_interval_us(void)
{
    const char *preload = getenv("LD_PRELOAD");
    if (preload != NULL && strstr(preload, "vgpreload") != NULL) {
        return 20000;
    }
    return 1000;
}

struct big_result {
    unsigned rounds;
    unsigned signals; /* delivered while transfers ran */
    unsigned polls;   /* the library's waits in poll(), over all rounds */
    long long took;   /* time spent transferring */
    char why[200];    /* the first round that went wrong, "" if none */
};

/* One 10 MiB transfer under a storm; 0 if it arrived intact. */
static int big_round(int nonblocking, int timeout_ms, const unsigned char *out, unsigned char *in,
                     struct big_result *res)
{
    struct storm st;
    struct big_sender bs;
    pthread_t t;
    char extra;
    int c, s;

    support_tcp_pair("127.0.0.1", &c, &s);
    assert_int_equal(netx_set_timeout(c, timeout_ms), 0);
    assert_int_equal(netx_set_timeout(s, timeout_ms), 0);
    assert_int_equal(netx_set_nonblocking(c, nonblocking), 0);
    assert_int_equal(netx_set_nonblocking(s, nonblocking), 0);
    memset(in, 0, BIG_LEN);
    bs.fd = c;
    bs.buf = out;
    fault_reset();

    long long t0 = mono_ms();
    /* Both threads take signals: the sender starts after the handler is in
     * place and inherits the unblocked mask. A round stuck for 20 s has its
     * receiving end shut down by the watchdog, which ends both threads. */
    storm_start(&st, big_interval_us(), 20000, s);
    int created = pthread_create(&t, NULL, big_sender_main, &bs);
    ssize_t got = created == 0 ? netx_recv_all(s, in, BIG_LEN) : -1;
    int recv_err = errno;
    if (got != (ssize_t)BIG_LEN) {
        /* A receiver that gave up must not leave the sender blocked for
         * ever: it then fails with EPIPE or ECONNRESET. */
        shutdown(s, SHUT_RDWR);
    }
    if (created == 0) {
        pthread_join(t, NULL);
    }
    res->signals += storm_stop(&st);
    res->took += mono_ms() - t0;
    /* In blocking mode the library calls poll() only to wait after an
     * EINTR, so there this counts interruptions of a call that had copied
     * nothing yet. */
    res->polls += fault_count(FAULT_POLL);
    res->rounds++;

    assert_int_equal(netx_set_nonblocking(s, 0), 0);
    ssize_t tail = netx_recv(s, &extra, 1);
    netx_close(c);
    netx_close(s);
    if (created != 0) {
        NOTE(res, "pthread_create failed");
    } else if (bs.rc != 0 || got != (ssize_t)BIG_LEN) {
        NOTE(res, "round %u: send_all %d (errno %d, %zu bytes), recv_all %zd (errno %d)",
             res->rounds, bs.rc, bs.err, bs.transferred, got, recv_err);
    } else if (memcmp(in, out, BIG_LEN) != 0) {
        NOTE(res, "round %u: the 10 MiB arrived altered", res->rounds);
    } else if (tail != 0) {
        NOTE(res, "round %u: %zd after the 10 MiB instead of the end of the stream", res->rounds,
             tail);
    }
    return res->why[0] != '\0';
}

static void chaos_send_all_recv_all_10mib_under_sigalrm_intact(void **state)
{
    (void)state;
    static const struct {
        int nonblocking;
        int timeout_ms;
        const char *name;
    } variants[] = {
        {0, 0, "blocking, no timeout"},
        {0, 5000, "blocking, timeout 5000 ms"},
        {1, 5000, "non-blocking, timeout 5000 ms"},
    };
    struct big_result res[COUNT(variants)];
    unsigned char *out = malloc(BIG_LEN);
    unsigned char *in = malloc(BIG_LEN);
    assert_non_null(out);
    assert_non_null(in);
    support_pattern(out, BIG_LEN, 1010);
    memset(res, 0, sizeof res);

    for (size_t i = 0; i < COUNT(variants); i++) {
        while (res[i].signals < BIG_MIN_SIGNALS && res[i].rounds < BIG_MAX_ROUNDS) {
            if (big_round(variants[i].nonblocking, variants[i].timeout_ms, out, in, &res[i])) {
                break;
            }
        }
    }
    free(out);
    free(in);
    for (size_t i = 0; i < COUNT(variants); i++) {
        const struct big_result *r = &res[i];
        print_message("10 MiB x %u, %s, a signal every %ld us: %lld ms, %u signals, %u waits in "
                      "poll()\n",
                      r->rounds, variants[i].name, big_interval_us(), r->took, r->signals,
                      r->polls);
        if (r->why[0] != '\0') {
            fail_msg("%s: %s", variants[i].name, r->why);
        }
        if (r->signals < BIG_MIN_SIGNALS) {
            fail_msg("%s: only %u signals in %u transfers", variants[i].name, r->signals,
                     r->rounds);
        }
    }
    /* How many of those signals landed in a send or receive that had
     * copied nothing yet (the printed poll() count in the blocking
     * variants) depends on scheduling, and under ThreadSanitizer it is
     * often none; the deadline cases below are where a real EINTR inside a
     * library call is certain and checked. */
}

/* Deadlines under signals ----------------------------------------------------------------- */

/* The deadline used by the timeout tests below, and how late a call may
 * end after it: wide, because this checks the deadline holds, not how fast
 * the machine is. */
#define DEADLINE_MS 250
#define LATE_MS     750

#define FILL_MAX 16

/* A listener that answers nobody: its accept queue is full. */
struct full_backlog {
    int lfd;
    int port;
    netx_addr addr;
    int queued[FILL_MAX]; /* fillers it answered, which fill its queue */
    int nqueued;
};

static void backlog_release(struct full_backlog *fb)
{
    for (int i = 0; i < fb->nqueued; i++) {
        close(fb->queued[i]);
    }
    fb->nqueued = 0;
    if (fb->lfd >= 0) {
        close(fb->lfd);
        fb->lfd = -1;
    }
}

/*
 * listen(fd, 0), then connect until an attempt gets no answer: the queue
 * is full and the system drops further SYNs, so the next connect waits.
 * That unanswered attempt is closed at once; its retransmitted SYN would
 * otherwise compete with the test's own for a place that frees up.
 */
static void backlog_fill(struct full_backlog *fb)
{
    struct sockaddr_in a;
    char text[32];

    memset(fb, 0, sizeof *fb);
    fb->lfd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fb->lfd >= 0);
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fb->lfd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(fb->lfd, 0), 0);
    fb->port = port_of(fb->lfd);
    a.sin_port = htons((uint16_t)fb->port);
    snprintf(text, sizeof text, "127.0.0.1:%d", fb->port);
    assert_int_equal(netx_addr_parse(text, &fb->addr), 0);

    for (int i = 0; i < FILL_MAX; i++) {
        int f = socket(AF_INET, SOCK_STREAM, 0);
        assert_true(f >= 0);
        set_nonblocking_raw(f, 1);
        if (connect(f, (struct sockaddr *)&a, sizeof a) != 0 && errno != EINPROGRESS) {
            close(f);
            backlog_release(fb);
            fail_msg("filling the queue: connect: %s", strerror(errno));
        }
        struct pollfd p = {.fd = f, .events = POLLOUT, .revents = 0};
        int r = poll(&p, 1, 100);
        if (r == 0) {
            close(f); /* unanswered: the queue is full */
            fault_reset();
            return;
        }
        fb->queued[fb->nqueued++] = f;
    }
    backlog_release(fb);
    fail_msg("the listener answered %d connects with a backlog of 0", FILL_MAX);
}

struct timed {
    int rc;
    int err;
    long long took;
    unsigned signals;
    unsigned connects;
    unsigned polls;
    unsigned closes;
    int nonblocking_after;
    int fds_changed;
    char sentence[400];
};

/* The call failed with ETIMEDOUT near its deadline while many signals
 * arrived; and each blocking call here can only have waited in poll() after
 * a real EINTR, so at least two poll() calls (one after the system call was
 * interrupted, one after poll() itself was) prove the signals reached the
 * library and not only the test. */
static void check_deadline(const char *name, const struct timed *t, const char *want_text)
{
    if (t->rc != -1 || t->err != ETIMEDOUT) {
        fail_msg("%s: returned %d, errno %d (%s); want -1, ETIMEDOUT", name, t->rc, t->err,
                 t->sentence);
    }
    if (t->took < DEADLINE_MS - 5 || t->took > DEADLINE_MS + LATE_MS) {
        fail_msg("%s: timed out after %lld ms; the deadline was %d ms (%u signals)", name, t->took,
                 DEADLINE_MS, t->signals);
    }
    /* 25 signals are due in 250 ms; far fewer means the test proves
     * nothing. */
    if (t->signals < 10) {
        fail_msg("%s: only %u signals arrived in %lld ms", name, t->signals, t->took);
    }
    if (want_text != NULL && strstr(t->sentence, want_text) == NULL) {
        fail_msg("%s: sentence \"%s\" lacks \"%s\"", name, t->sentence, want_text);
    }
    if (t->polls < 2) {
        fail_msg("%s: %u poll() calls; the signals did not interrupt it", name, t->polls);
    }
}

/*
 * POSIX: connect(2) interrupted by a signal fails with EINTR while the
 * connection carries on; the library must wait for it, within its one
 * deadline, and never call connect(2) again. A listener with a full queue
 * keeps the attempt waiting; SIGALRM every 10 ms interrupts the wait over
 * and over.
 */
static void chaos_connect_sigalrm_etimedout_at_deadline(void **state)
{
    (void)state;
    struct full_backlog fb;
    struct timed res[2];
    char want[64];

    backlog_fill(&fb);
    for (int via_tcp = 0; via_tcp < 2; via_tcp++) {
        struct timed *t = &res[via_tcp];
        struct storm st;
        int fd = -1;
        memset(t, 0, sizeof *t);
        if (!via_tcp) {
            fd = netx_socket(AF_INET, SOCK_STREAM);
            assert_true(fd >= 0);
        }
        int before = support_fd_count();
        fault_reset();
        storm_start(&st, 10000, 3000, fd);
        long long t0 = mono_ms();
        errno = 0;
        if (via_tcp) {
            t->rc = netx_tcp_connect("127.0.0.1", (uint16_t)fb.port, DEADLINE_MS);
        } else {
            t->rc = netx_connect(fd, &fb.addr, DEADLINE_MS);
        }
        t->err = errno;
        t->took = mono_ms() - t0;
        t->signals = storm_stop(&st);
        t->connects = fault_count(FAULT_CONNECT);
        t->polls = fault_count(FAULT_POLL);
        t->closes = fault_count(FAULT_CLOSE);
        t->fds_changed = support_fd_count() != before;
        snprintf(t->sentence, sizeof t->sentence, "%s", netx_last_error());
        if (fd >= 0) {
            t->nonblocking_after = is_nonblocking(fd);
            close(fd);
        }
        if (via_tcp && t->rc >= 0) {
            close(t->rc);
        }
    }
    backlog_release(&fb);

    snprintf(want, sizeof want, "connect to 127.0.0.1:%d", fb.port);
    for (int via_tcp = 0; via_tcp < 2; via_tcp++) {
        const struct timed *t = &res[via_tcp];
        const char *name = via_tcp ? "netx_tcp_connect" : "netx_connect";
        print_message("%s: ETIMEDOUT after %lld ms, %u signals, %u polls\n", name, t->took,
                      t->signals, t->polls);
        check_deadline(name, t, want);
        /* One connect(2); the wait was interrupted and resumed. */
        assert_int_equal(t->connects, 1);
        assert_true(t->polls >= 2);
        if (via_tcp) {
            assert_int_equal(t->closes, 1);
            assert_false(t->fds_changed);
        } else {
            assert_false(t->nonblocking_after);
        }
    }
}

struct freer {
    int lfd;
    int accepted[FILL_MAX];
    int naccepted;
};

/* After 100 ms - long after the blocked connect(2) has been interrupted -
 * take the queued fillers, making room for the test's connection. */
static void *freer_main(void *arg)
{
    struct freer *fr = arg;
    sleep_ms(100);
    set_nonblocking_raw(fr->lfd, 1);
    while (fr->naccepted < FILL_MAX) {
        int s = accept(fr->lfd, NULL, NULL);
        if (s < 0) {
            break;
        }
        fr->accepted[fr->naccepted++] = s;
    }
    set_nonblocking_raw(fr->lfd, 0);
    return NULL;
}

/*
 * A blocking connect(2) without a deadline, interrupted for real: with the
 * queue full it waits for an answer, the first signal makes it fail with
 * EINTR, and the connection must go on in the background. Once the queue
 * has room, the SYN the system resends (about a second later) is answered:
 * the same connect succeeds, with connect(2) called once.
 */
static void chaos_connect_blocking_sigalrm_interrupted_still_connects(void **state)
{
    (void)state;
    struct full_backlog fb;
    struct freer fr;
    struct storm st;
    pthread_t t;

    backlog_fill(&fb);
    int fd = netx_socket(AF_INET, SOCK_STREAM);
    assert_true(fd >= 0);
    memset(&fr, 0, sizeof fr);
    fr.lfd = fb.lfd;
    fault_reset();
    storm_start(&st, 10000, 5000, fd);
    assert_int_equal(spawn_quiet(&t, freer_main, &fr), 0);
    long long t0 = mono_ms();
    errno = UNTOUCHED;
    int rc = netx_connect(fd, &fb.addr, 0);
    int err = errno;
    long long took = mono_ms() - t0;
    pthread_join(t, NULL);
    unsigned signals = storm_stop(&st);
    unsigned connects = fault_count(FAULT_CONNECT);
    unsigned polls = fault_count(FAULT_POLL);
    int expired = atomic_load(&st.expired);
    char sentence[400];
    snprintf(sentence, sizeof sentence, "%s", netx_last_error());

    /* It is this connection that the listener now holds. */
    int s = -1;
    if (rc == 0) {
        struct pollfd p = {.fd = fb.lfd, .events = POLLIN, .revents = 0};
        if (poll(&p, 1, 2000) == 1) {
            s = accept(fb.lfd, NULL, NULL);
        }
    }
    int same = s >= 0 && peer_port_of(s) == port_of(fd);
    int works = same && exchange_byte(fd, s);
    if (s >= 0) {
        close(s);
    }
    close(fd);
    for (int i = 0; i < fr.naccepted; i++) {
        close(fr.accepted[i]);
    }
    backlog_release(&fb);

    print_message("blocking connect: %d after %lld ms, %u signals, %u polls\n", rc, took, signals,
                  polls);
    if (rc != 0) {
        fail_msg("netx_connect failed after %lld ms%s: errno %d, %s", took,
                 expired ? " (stopped by the watchdog)" : "", err, sentence);
    }
    assert_int_equal(err, UNTOUCHED);
    assert_int_equal(connects, 1);
    /* Without a deadline on a blocking socket the library polls only after
     * connect(2) said EINTR: at least once, so the signal did interrupt
     * connect(2) itself. */
    assert_true(polls >= 1);
    assert_true(signals >= 10);
    assert_true(same);
    assert_true(works);
}

/* A listener's timeout must hold while signals keep interrupting accept():
 * retrying accept() at once would restart the system's timer each time. */
static void chaos_accept_sigalrm_etimedout_at_deadline(void **state)
{
    (void)state;
    struct storm st;
    struct timed t;
    char want[64];
    memset(&t, 0, sizeof t);
    int lfd = netx_tcp_listen("127.0.0.1", 0, 0);
    assert_true(lfd >= 0);
    assert_int_equal(netx_set_timeout(lfd, DEADLINE_MS), 0);
    snprintf(want, sizeof want, "accept on 127.0.0.1:%d", port_of(lfd));

    fault_reset();
    storm_start(&st, 10000, 3000, -1);
    long long t0 = mono_ms();
    t.rc = netx_accept(lfd, NULL);
    t.err = errno;
    t.took = mono_ms() - t0;
    t.signals = storm_stop(&st);
    t.polls = fault_count(FAULT_POLL);
    snprintf(t.sentence, sizeof t.sentence, "%s", netx_last_error());
    if (t.rc >= 0) {
        close(t.rc);
    }
    netx_close(lfd);
    print_message("accept: %d after %lld ms, %u signals, %u polls\n", t.rc, t.took, t.signals,
                  t.polls);
    check_deadline("netx_accept", &t, want);
}

static void chaos_recvfrom_sigalrm_etimedout_at_deadline(void **state)
{
    (void)state;
    struct storm st;
    struct timed t;
    char buf[64];
    memset(&t, 0, sizeof t);
    int fd = netx_udp_bind("127.0.0.1", 0);
    assert_true(fd >= 0);
    assert_int_equal(netx_set_timeout(fd, DEADLINE_MS), 0);

    fault_reset();
    storm_start(&st, 10000, 3000, -1);
    long long t0 = mono_ms();
    t.rc = (int)netx_recvfrom(fd, buf, sizeof buf, NULL);
    t.err = errno;
    t.took = mono_ms() - t0;
    t.signals = storm_stop(&st);
    t.polls = fault_count(FAULT_POLL);
    snprintf(t.sentence, sizeof t.sentence, "%s", netx_last_error());
    netx_close(fd);
    check_deadline("netx_recvfrom", &t, "recvfrom on 127.0.0.1:");
}

/* A line that stops half-way times out at the deadline under signals, and
 * loses nothing: its first half is still there when the rest comes. */
static void chaos_read_line_sigalrm_etimedout_keeps_partial_line(void **state)
{
    (void)state;
    struct storm st;
    struct timed t;
    netx_reader r;
    unsigned char storage[256];
    char line[64];
    int c, s;
    memset(&t, 0, sizeof t);
    support_tcp_pair("127.0.0.1", &c, &s);
    assert_int_equal(netx_set_timeout(s, DEADLINE_MS), 0);
    assert_int_equal(netx_reader_init(&r, s, storage, sizeof storage), 0);
    assert_int_equal(netx_send_all(c, "half a ", 7), 0);

    fault_reset();
    storm_start(&st, 10000, 3000, -1);
    long long t0 = mono_ms();
    t.rc = (int)netx_read_line(&r, line, sizeof line);
    t.err = errno;
    t.took = mono_ms() - t0;
    t.signals = storm_stop(&st);
    t.polls = fault_count(FAULT_POLL);
    snprintf(t.sentence, sizeof t.sentence, "%s", netx_last_error());

    assert_int_equal(netx_send_all(c, "line\n", 5), 0);
    ssize_t n = netx_read_line(&r, line, sizeof line);
    netx_close(c);
    netx_close(s);
    check_deadline("netx_read_line", &t, "recv from 127.0.0.1:");
    assert_int_equal(n, 12);
    assert_string_equal(line, "half a line\n");
}

/*
 * A send_all to a peer that reads nothing, under signals: it ends with
 * ETIMEDOUT once a wait passes the send timeout, and reports as sent
 * exactly the bytes the peer then finds, in order.
 */
static void chaos_send_all_sigalrm_etimedout_reports_what_peer_gets(void **state)
{
    (void)state;
    const size_t len = 4u * 1024u * 1024u;
    const int small = 32 * 1024;
    struct storm st;
    struct timed t;
    int c, s;
    memset(&t, 0, sizeof t);
    unsigned char *out = malloc(len);
    unsigned char *in = malloc(len);
    assert_non_null(out);
    assert_non_null(in);
    support_pattern(out, len, 4242);
    support_tcp_pair("127.0.0.1", &c, &s);
    /* Small buffers, so the peer's refusal to read stops the sender soon. */
    assert_int_equal(setsockopt(c, SOL_SOCKET, SO_SNDBUF, &small, sizeof small), 0);
    assert_int_equal(setsockopt(s, SOL_SOCKET, SO_RCVBUF, &small, sizeof small), 0);
    assert_int_equal(netx_set_timeout(c, DEADLINE_MS), 0);
    assert_int_equal(netx_set_timeout(s, 5000), 0);

    fault_reset();
    storm_start(&st, 10000, 5000, -1);
    long long t0 = mono_ms();
    t.rc = netx_send_all(c, out, len);
    t.err = errno;
    size_t sent = netx_last_transferred();
    t.took = mono_ms() - t0;
    t.signals = storm_stop(&st);
    t.polls = fault_count(FAULT_POLL);
    snprintf(t.sentence, sizeof t.sentence, "%s", netx_last_error());

    /* The sender is done: whatever it handed the system reaches the peer,
     * then the end of the stream. */
    shutdown(c, SHUT_WR);
    ssize_t got = netx_recv_all(s, in, len);
    int same = got >= 0 && memcmp(in, out, (size_t)got) == 0;
    netx_close(c);
    netx_close(s);
    free(out);
    free(in);

    print_message("send_all: ETIMEDOUT after %lld ms, %zu bytes sent, %u signals, %u polls\n",
                  t.took, sent, t.signals, t.polls);
    if (t.rc != -1 || t.err != ETIMEDOUT) {
        fail_msg("send_all returned %d, errno %d (%s); want -1, ETIMEDOUT", t.rc, t.err,
                 t.sentence);
    }
    /* The timeout bounds each wait, not the whole call (netx.h), so it may
     * end later than one deadline, but not much. */
    assert_true(t.took >= DEADLINE_MS - 5);
    assert_true(t.took < 4 * DEADLINE_MS + LATE_MS);
    assert_true(t.signals >= 10);
    assert_true(t.polls >= 2); /* see check_deadline() */
    assert_true(sent > 0 && sent < len);
    assert_int_equal(got, (ssize_t)sent);
    assert_true(same);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TEST(chaos_send_all_recv_all_random_faults_every_byte_once),
        TEST(chaos_send_recv_loops_random_faults_every_byte_once),
        TEST(chaos_reader_lines_and_bodies_random_faults_nothing_lost),
        TEST(chaos_sendto_recvfrom_random_faults_each_datagram_once),
        TEST(chaos_connect_random_faults_outcome_as_scripted),
        TEST(chaos_accept_random_faults_skips_or_reports_as_scripted),
        TEST(chaos_send_all_recv_all_10mib_under_sigalrm_intact),
        TEST(chaos_connect_sigalrm_etimedout_at_deadline),
        TEST(chaos_connect_blocking_sigalrm_interrupted_still_connects),
        TEST(chaos_accept_sigalrm_etimedout_at_deadline),
        TEST(chaos_recvfrom_sigalrm_etimedout_at_deadline),
        TEST(chaos_read_line_sigalrm_etimedout_keeps_partial_line),
        TEST(chaos_send_all_sigalrm_etimedout_reports_what_peer_gets),
    };
    return cmocka_run_group_tests_name("chaos", tests, NULL, NULL);
}
