/*
 * fuzz_reader.c - libFuzzer target for netx_reader: netx_read_line() and
 * netx_read_n(), mixed in any order, over a stream that arrives in pieces.
 *
 * The input is a script. Its header chooses the reader's storage size, the
 * line buffer's size, a list of calls, and how each recvmsg() the reader
 * makes behaves (cut short to a few bytes, interrupted by EINTR, failing
 * with ECONNRESET or EAGAIN) through the shims of tests/fault.c; the rest of
 * the input is the stream. The stream is written into one end of an AF_UNIX
 * socketpair whose write side is then shut, so every receive finds bytes or
 * the end of the stream and nothing can block.
 *
 * Every call is checked against a model of the contract in netx.h, written
 * here on its own: a line is the stream's next bytes up to and including
 * '\n' (or up to the end for the last line); a line longer than the limit
 * fails with EMSGSIZE and the next netx_read_line() resumes after it; an
 * exact read returns the next n bytes or what is left; an injected error
 * loses nothing; a call that succeeds leaves errno and the error record
 * alone. Every returned byte is compared with the stream at the model's
 * position, and only EMSGSIZE moves the position without returning bytes
 * (to the end of that line, or, when netx_read_n() comes next, to wherever
 * inside the line the reader stopped), so everything returned plus what
 * EMSGSIZE skipped is the stream. The reader's buffered bytes are also
 * checked against the stream after every call, using its public fields and
 * the bytes still queued in the socket (FIONREAD).
 *
 * Input layout (2-byte numbers big-endian; missing bytes read as 0):
 *   2 bytes  storage size, 1 + (n % 512)
 *   2 bytes  line buffer size, 2 + (n % 599)
 *   1 byte   number of calls, n % 65; then 3 bytes per call:
 *              kind % 4: 0 read_line, 1 read_line with cap = arg % 602,
 *                        2 read_n(arg % 1100), 3 read_n(arg)
 *              2 bytes arg
 *   2 bytes  number of receive steps, n % 1025; then 1 byte per step:
 *              0xff ECONNRESET, 0xfe EAGAIN, 0xfd EINTR, 0xfc pass,
 *              anything else b: at most 1 + b bytes
 *   the rest the stream, at most 64 KiB
 * After the calls, netx_read_line() drains the stream to its end.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fault.h"
#include "netx.h"

#define MAX_STORAGE 512
#define MAX_LINE    600
#define MAX_CALLS   64
#define MAX_STEPS   1024
#define MAX_STREAM  (64 * 1024)

/* A failed check stops the run where libFuzzer can see it and keep the
 * input: abort() raises SIGABRT, which it reports as a crash. */
#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_reader.c:%d: check failed: %s\n", __LINE__, #cond);              \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Reads the header one field at a time; past the end everything is 0. */
struct cursor {
    const uint8_t *p;
    size_t left;
};

static unsigned take8(struct cursor *c)
{
    if (c->left == 0) {
        return 0;
    }
    c->left--;
    return *c->p++;
}

static unsigned take16(struct cursor *c)
{
    unsigned hi = take8(c);
    return hi << 8 | take8(c);
}

enum call_kind { CALL_LINE, CALL_LINE_CAP, CALL_READ_N, CALL_READ_N_LARGE };

struct call {
    enum call_kind kind;
    unsigned arg;
};

/* One run: the reader under test and the model of where it should be. */
struct run {
    netx_reader r;
    int fd;                 /* the reading end */
    const unsigned char *s; /* the stream, as written */
    size_t len;             /* its length */
    size_t rcap;            /* the reader's storage size */
    size_t pos;             /* bytes of the stream the model has consumed */
    int skip_pending;       /* an EMSGSIZE line whose rest is still to skip */
    size_t skip_to;         /* where that line ends ('\n' included) */
    struct fault_step steps[MAX_STEPS];
    size_t nsteps;
};

/* The errno a caller must see for an injected receive failure: a blocking
 * socket's EAGAIN is its timeout expiring, reported as ETIMEDOUT. */
static int injected_errno(const struct fault_step *st)
{
    if (st->kind == FAULT_EAGAIN) {
        return ETIMEDOUT;
    }
    if (st->kind == FAULT_ERRNO) {
        return (int)st->arg;
    }
    return 0;
}

/*
 * Which injected failure, if any, the call that took the receive steps
 * between pending counts before and after met. A failed receive ends the
 * call at once, so a failure can only be the last step taken.
 */
static int failure_taken(const struct run *run, size_t before, size_t after)
{
    CHECK(after <= before && before <= run->nsteps);
    size_t first = run->nsteps - before;
    size_t end = run->nsteps - after;
    for (size_t i = first; i + 1 < end; i++) {
        CHECK(injected_errno(&run->steps[i]) == 0);
    }
    return end > first ? injected_errno(&run->steps[end - 1]) : 0;
}

/*
 * Where the reader stands in the stream: the bytes that left the socket,
 * less those still buffered. The buffered bytes must be the stream's own.
 */
static size_t reader_position(const struct run *run)
{
    int queued = -1;
    CHECK(ioctl(run->fd, FIONREAD, &queued) == 0);
    CHECK(queued >= 0 && (size_t)queued <= run->len);
    size_t delivered = run->len - (size_t)queued;
    const netx_reader *r = &run->r;
    CHECK(r->buf != NULL && r->cap == run->rcap);
    CHECK(r->start <= r->end && r->end <= r->cap);
    size_t buffered = r->end - r->start;
    CHECK(buffered <= delivered);
    size_t at = delivered - buffered;
    CHECK(memcmp(r->buf + r->start, run->s + at, buffered) == 0);
    return at;
}

/* The model's position must be the reader's: exactly, or anywhere inside
 * the over-long line whose skip is pending. */
static void check_position(const struct run *run)
{
    size_t at = reader_position(run);
    if (run->skip_pending) {
        CHECK(at >= run->pos && at <= run->skip_to);
    } else {
        CHECK(at == run->pos);
    }
}

/* One past the end of the line that starts at pos: after its '\n', or the
 * end of the stream for a last line without one. */
static size_t line_end(const struct run *run, size_t pos)
{
    const unsigned char *nl = memchr(run->s + pos, '\n', run->len - pos);
    return nl != NULL ? (size_t)(nl - run->s) + 1 : run->len;
}

/* A successful call leaves errno and this thread's error record alone. */
static void check_untouched(int err, int record_before)
{
    CHECK(err == EDOM);
    CHECK(netx_last_errno() == record_before);
}

/* netx_read_line(cap) against the model; returns what it returned. */
static ssize_t call_read_line(struct run *run, size_t cap)
{
    /* Exactly cap bytes, so that writing one more is a heap overflow
     * AddressSanitizer reports (malloc(0) included). */
    char *line = malloc(cap);
    CHECK(line != NULL || cap == 0);
    size_t before = fault_pending(FAULT_RECV);
    int record_before = netx_last_errno();

    errno = EDOM;
    ssize_t rc = netx_read_line(&run->r, line, cap);
    int err = errno;

    size_t after = fault_pending(FAULT_RECV);
    int injected = failure_taken(run, before, after);

    if (cap < 2) {
        /* Refused before anything is received or written. */
        CHECK(rc == -1 && err == EINVAL && after == before);
        check_position(run);
        free(line);
        return rc;
    }
    CHECK(rc >= -1 && rc <= (ssize_t)(cap - 1));
    if (rc >= 0) {
        CHECK(line[rc] == '\0');
    }
    if (rc > 0) {
        CHECK(memchr(line, '\n', (size_t)rc - 1) == NULL);
    }
    if (injected != 0) {
        /* The failure is reported as it is, and nothing is lost: the model
         * stays where it was (with its skip still pending, if any). */
        CHECK(rc == -1 && err == injected);
        check_position(run);
        free(line);
        return rc;
    }

    if (run->skip_pending) {
        run->pos = run->skip_to;
        run->skip_pending = 0;
    }
    if (run->pos == run->len) {
        CHECK(rc == 0);
        check_untouched(err, record_before);
    } else {
        size_t end = line_end(run, run->pos);
        size_t want = end - run->pos;
        size_t limit = cap - 1 < run->rcap ? cap - 1 : run->rcap;
        if (want <= limit) {
            CHECK(rc == (ssize_t)want);
            CHECK(memcmp(line, run->s + run->pos, want) == 0);
            check_untouched(err, record_before);
            run->pos = end;
        } else {
            CHECK(rc == -1 && err == EMSGSIZE);
            CHECK(netx_last_errno() == EMSGSIZE);
            CHECK(line[0] == '\0');
            run->skip_pending = 1;
            run->skip_to = end;
        }
    }
    check_position(run);
    free(line);
    return rc;
}

/* netx_read_n(n) against the model. */
static void call_read_n(struct run *run, size_t n)
{
    /* A NULL buffer is allowed when n is 0. */
    unsigned char *buf = n > 0 ? malloc(n) : NULL;
    CHECK(n == 0 || buf != NULL);

    /* After an EMSGSIZE, read_n starts wherever the reader stopped inside
     * the long line; the contract only says it is inside it. */
    if (run->skip_pending) {
        size_t at = reader_position(run);
        CHECK(at >= run->pos && at <= run->skip_to);
        run->pos = at;
        run->skip_pending = 0;
    }

    size_t before = fault_pending(FAULT_RECV);
    int record_before = netx_last_errno();

    errno = EDOM;
    ssize_t rc = netx_read_n(&run->r, buf, n);
    int err = errno;

    size_t after = fault_pending(FAULT_RECV);
    int injected = failure_taken(run, before, after);
    size_t left = run->len - run->pos;

    CHECK(rc >= -1 && rc <= (ssize_t)n);
    if (injected != 0) {
        /* What arrived before the failure is in buf and consumed. */
        CHECK(rc == -1 && err == injected);
        size_t moved = netx_last_transferred();
        CHECK(moved < n && moved <= left);
        CHECK(moved == 0 || memcmp(buf, run->s + run->pos, moved) == 0);
        run->pos += moved;
    } else {
        size_t want = n < left ? n : left;
        CHECK(rc == (ssize_t)want);
        CHECK(want == 0 || memcmp(buf, run->s + run->pos, want) == 0);
        check_untouched(err, record_before);
        run->pos += want;
    }
    check_position(run);
    free(buf);
}

/* Decode a receive step from one input byte. */
static struct fault_step decode_step(unsigned b)
{
    struct fault_step st;
    switch (b) {
    case 0xff:
        st.kind = FAULT_ERRNO;
        st.arg = ECONNRESET;
        break;
    case 0xfe:
        st.kind = FAULT_EAGAIN;
        st.arg = 0;
        break;
    case 0xfd:
        st.kind = FAULT_EINTR;
        st.arg = 0;
        break;
    case 0xfc:
        st.kind = FAULT_PASS;
        st.arg = 0;
        break;
    default:
        /* Never 0 bytes: a receive of 0 bytes would be end of stream. */
        st.kind = FAULT_SHORT;
        st.arg = 1 + (size_t)b;
        break;
    }
    return st;
}

/* Write the stream into w without blocking; returns how much went in (all
 * of it, unless the socket buffer is smaller than 64 KiB). */
static size_t write_stream(int w, const unsigned char *s, size_t len)
{
    size_t done = 0;
    CHECK(fcntl(w, F_SETFL, O_NONBLOCK) == 0);
    while (done < len) {
        ssize_t n = send(w, s + done, len - done, 0);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            CHECK(errno == EAGAIN || errno == EWOULDBLOCK);
            break;
        }
        done += (size_t)n;
    }
    return done;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* Static because its steps take 16 KiB; libFuzzer runs one input at a
     * time, so nothing else uses it meanwhile. */
    static struct run run;
    struct call calls[MAX_CALLS];
    struct cursor c = {data, size};

    memset(&run, 0, sizeof run);
    run.rcap = 1 + take16(&c) % MAX_STORAGE;
    size_t line_cap = 2 + take16(&c) % (MAX_LINE - 1);
    size_t ncalls = take8(&c) % (MAX_CALLS + 1);
    for (size_t i = 0; i < ncalls; i++) {
        calls[i].kind = (enum call_kind)(take8(&c) % 4);
        calls[i].arg = take16(&c);
    }
    run.nsteps = take16(&c) % (MAX_STEPS + 1);
    for (size_t i = 0; i < run.nsteps; i++) {
        run.steps[i] = decode_step(take8(&c));
    }
    size_t len = c.left < MAX_STREAM ? c.left : MAX_STREAM;

    int sv[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    run.s = c.p;
    run.len = write_stream(sv[0], c.p, len);
    CHECK(shutdown(sv[0], SHUT_WR) == 0);
    run.fd = sv[1];

    /* The storage is exactly rcap bytes, so AddressSanitizer sees any
     * access past it. */
    unsigned char *storage = malloc(run.rcap);
    CHECK(storage != NULL);
    CHECK(netx_reader_init(&run.r, run.fd, storage, run.rcap) == 0);
    fault_reset();
    fault_script(FAULT_RECV, run.fd, run.steps, run.nsteps);

    for (size_t i = 0; i < ncalls; i++) {
        switch (calls[i].kind) {
        case CALL_LINE:
            call_read_line(&run, line_cap);
            break;
        case CALL_LINE_CAP:
            call_read_line(&run, calls[i].arg % (MAX_LINE + 2));
            break;
        case CALL_READ_N:
            call_read_n(&run, calls[i].arg % 1100);
            break;
        case CALL_READ_N_LARGE:
            call_read_n(&run, calls[i].arg);
            break;
        }
    }

    /* Drain: each call returns a line, skips one, or takes a failing step,
     * so this many calls always reach the end. */
    size_t bound = 2 * run.len + run.nsteps + 4;
    ssize_t rc = -1;
    for (size_t i = 0; i < bound && rc != 0; i++) {
        rc = call_read_line(&run, line_cap);
    }
    CHECK(rc == 0);
    CHECK(run.pos == run.len && !run.skip_pending);

    /* At the end of the stream both calls keep saying so. */
    fault_reset();
    run.nsteps = 0;
    call_read_n(&run, 16);
    CHECK(call_read_line(&run, line_cap) == 0);

    free(storage);
    CHECK(close(sv[0]) == 0);
    CHECK(close(sv[1]) == 0);
    return 0;
}
