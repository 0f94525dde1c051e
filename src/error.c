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

/* strerror() may use a shared buffer; the XSI strerror_r() does not. */
static void cause_text(int err, char *buf, size_t cap)
{
    if (strerror_r(err, buf, cap) != 0) {
        snprintf(buf, cap, "error %d", err);
    }
}

int netx__fail(int err, const char *fmt, ...)
{
    char what[256];
    char cause[128];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    cause_text(err, cause, sizeof cause);

    record.err = err;
    record.gai = 0;
    record.transferred = 0;
    snprintf(record.text, sizeof record.text, "%s: %s", what, cause);
    errno = err;
    return -1;
}

int netx__fail_gai(int gai, int sys_err, const char *host)
{
    int err = netx__gai_errno(gai, sys_err);
    char cause[128];

    if (gai == EAI_SYSTEM) {
        cause_text(err, cause, sizeof cause);
    } else {
        snprintf(cause, sizeof cause, "%s", gai_strerror(gai));
    }
    record.err = err;
    record.gai = gai;
    record.transferred = 0;
    snprintf(record.text, sizeof record.text, "resolve %s: %s", host, cause);
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
