/*
 * error.c - the per-thread error record and its sentences.
 *
 * errno says what went wrong; it does not say where. Each thread therefore
 * keeps a record of its last failure: errno, the resolver's code, and one
 * sentence naming the step, the address and the cause, such as
 * "connect to localhost:12345 (127.0.0.1): Connection refused".
 *
 * The record is thread-local, so threads never see each other's failures and
 * no lock is needed. docs/errors.md describes the sentences and the errno
 * values.
 */
#include <errno.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

static _Thread_local struct netx__record record;

void netx__record_save(struct netx__record *out)
{
    *out = record;
}

void netx__record_restore(const struct netx__record *in)
{
    record = *in;
}

/*
 * strerror() may use a shared buffer; strerror_r() does not, but it comes
 * in two kinds. POSIX's (XSI) returns an int and fills buf. glibc's, which
 * a program gets as soon as it defines _GNU_SOURCE (in its own CFLAGS, say),
 * returns a char * that may or may not point into buf. _Generic picks the
 * right way to read the answer from the type strerror_r() has here, so the
 * code is right under either, whatever the feature macros.
 */
static const char *xsi_answer(int rc, char *buf)
{
    return rc == 0 ? buf : NULL;
}

static const char *gnu_answer(const char *text, char *buf)
{
    (void)buf;
    return text;
}

#define NETX__STRERROR_ANSWER(err, buf, cap)                                                     \
    _Generic(strerror_r((err), (buf), (cap)), int: xsi_answer, default: gnu_answer)(             \
        strerror_r((err), (buf), (cap)), (buf))

void netx__strerror(int err, char *buf, size_t cap)
{
    const char *text = NETX__STRERROR_ANSWER(err, buf, cap);
    if (text == NULL || text[0] == '\0') {
        snprintf(buf, cap, "error %d", err);
    } else if (text != buf) {
        snprintf(buf, cap, "%s", text);
    }
}

size_t netx__escape(char *dst, size_t cap, const char *src)
{
    static const char hex[] = "0123456789abcdef";
    size_t used = 0;

    if (cap == 0) {
        return 0;
    }
    for (; *src != '\0'; src++) {
        unsigned char c = (unsigned char)*src;
        char esc[5];
        size_t n = 0;
        if (c == '\n' || c == '\r' || c == '\t') {
            esc[n++] = '\\';
            esc[n++] = c == '\n' ? 'n' : c == '\r' ? 'r' : 't';
        } else if (c < 0x20 || c == 0x7f) {
            esc[n++] = '\\';
            esc[n++] = 'x';
            esc[n++] = hex[c >> 4];
            esc[n++] = hex[c & 0xf];
        } else {
            esc[n++] = (char)c;
        }
        if (used + n >= cap) {
            break; /* cut at a whole character, never half an escape */
        }
        memcpy(dst + used, esc, n);
        used += n;
    }
    dst[used] = '\0';
    return used;
}

void netx__cause(int err, char *buf, size_t cap)
{
    /* ECANCELED comes from a stop signal: say which (stop.c). */
    if (err == ECANCELED && netx__stop_cause(buf, cap)) {
        return;
    }
    netx__strerror(err, buf, cap);
}

/* Fill the record: "<what>: <cause>", both escaped, errno err. */
static int record_failure(int err, const char *raw_what, const char *raw_cause)
{
    char what[256];
    char cause[200];

    /* The sentence quotes what callers passed in (a host name, a port as
     * typed): a newline there must not start a second, forged line. */
    netx__escape(what, sizeof what, raw_what);
    netx__escape(cause, sizeof cause, raw_cause);
    record.err = err;
    record.gai = 0;
    record.transferred = 0;
    snprintf(record.text, sizeof record.text, "%s: %s", what, cause);
    errno = err;
    return -1;
}

int netx__fail(int err, const char *fmt, ...)
{
    char raw[256];
    char cause[128];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(raw, sizeof raw, fmt, ap);
    va_end(ap);
    netx__cause(err, cause, sizeof cause);
    return record_failure(err, raw, cause);
}

int netx__fail_because(int err, const char *cause, const char *fmt, ...)
{
    char raw[256];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(raw, sizeof raw, fmt, ap);
    va_end(ap);
    return record_failure(err, raw, cause);
}

int netx__fail_gai(int gai, int sys_err, const char *host)
{
    int err = netx__gai_errno(gai, sys_err);
    char cause[128];
    char name[256];

    if (gai == EAI_SYSTEM) {
        netx__strerror(err, cause, sizeof cause);
    } else {
        snprintf(cause, sizeof cause, "%s", gai_strerror(gai));
    }
    netx__escape(name, sizeof name, host);
    record.err = err;
    record.gai = gai;
    record.transferred = 0;
    snprintf(record.text, sizeof record.text, "resolve %s: %s", name, cause);
    errno = err;
    return -1;
}

void netx__set_transferred(size_t n)
{
    record.transferred = n;
}

const char *netx_last_error(void)
{
    if (record.err == 0) {
        return "no error";
    }
    return record.text;
}

int netx_last_errno(void)
{
    return record.err;
}

int netx_last_gai_error(void)
{
    return record.gai;
}

size_t netx_last_transferred(void)
{
    return record.transferred;
}

void netx_perror(const char *prefix)
{
    if (prefix != NULL && prefix[0] != '\0') {
        fprintf(stderr, "%s: %s\n", prefix, netx_last_error());
    } else {
        fprintf(stderr, "%s\n", netx_last_error());
    }
}

void netx__host_port(const char *host, unsigned port, char *buf, size_t cap)
{
    if (host != NULL && strchr(host, ':') != NULL && host[0] != '[') {
        snprintf(buf, cap, "[%s]:%u", host, port);
    } else {
        snprintf(buf, cap, "%s:%u", host != NULL ? host : "*", port);
    }
}

static void describe(int fd, int peer, char *buf, size_t cap)
{
    netx_addr a;
    char text[NETX_ADDRSTRLEN];
    int saved = errno;
    int rc;

    a.len = sizeof a.ss;
    if (peer) {
        rc = getpeername(fd, (struct sockaddr *)&a.ss, &a.len);
    } else {
        rc = getsockname(fd, (struct sockaddr *)&a.ss, &a.len);
    }

    /* Looking the address up must not disturb the failure being reported. */
    if (rc == 0 && netx_addr_format(&a, text, sizeof text) > 0) {
        snprintf(buf, cap, "%s (fd %d)", text, fd);
    } else {
        snprintf(buf, cap, "fd %d", fd);
    }
    errno = saved;
}

void netx__describe_peer(int fd, char *buf, size_t cap)
{
    describe(fd, 1, buf, cap);
}

void netx__describe_local(int fd, char *buf, size_t cap)
{
    describe(fd, 0, buf, cap);
}
