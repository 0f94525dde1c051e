/*
 * writer.c - netx_writer: the sending side of a connection in an event
 * loop, the reader's twin.
 *
 * In a loop that serves many connections, nothing may wait on one of them.
 * A send on a non-blocking socket takes what fits in the socket's buffer
 * and no more; the rest must be kept and sent when the socket is writable
 * again, in order, while the loop serves everyone else. That is all a
 * writer does. It also has a cap: a peer that never reads cannot make us
 * keep more than that for it, and a program that checks the room left
 * before reading from the peer (netx_writer_room()) gets backpressure for
 * free - an echo server that stops reading from a client that does not
 * read its echoes.
 *
 * The buffer exists only while bytes are pending, and is freed as soon as
 * they have gone: an idle connection costs the struct alone.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* The first buffer a writer allocates; it doubles from there up to cap. */
#define FIRST_SIZE 4096

int netx_writer_init(netx_writer *w, int fd, size_t cap)
{
    if (w == NULL || cap == 0) {
        return netx__fail(EINVAL, "writer for fd %d: %s", fd,
                          w == NULL ? "w is NULL" : "cap is 0");
    }
    memset(w, 0, sizeof *w);
    w->fd = fd;
    w->cap = cap;
    return 0;
}

int netx_writer_init_sink(netx_writer *w, int fd,
                          ssize_t (*write_to)(void *sink, const void *buf, size_t len), void *sink,
                          size_t cap)
{
    if (write_to == NULL) {
        return netx__fail(EINVAL, "writer for fd %d: write_to is NULL", fd);
    }
    if (netx_writer_init(w, fd, cap) != 0) {
        return -1;
    }
    w->write_to = write_to;
    w->sink = sink;
    return 0;
}

/* One send that does not wait: on the socket, or through the sink. */
static ssize_t send_now(netx_writer *w, const void *data, size_t len)
{
    if (w->write_to != NULL) {
        return w->write_to(w->sink, data, len);
    }
    return netx__send_nowait(w->fd, data, len);
}

size_t netx_writer_pending(const netx_writer *w)
{
    return w != NULL ? w->end - w->start : 0;
}

size_t netx_writer_room(const netx_writer *w)
{
    return w != NULL ? w->cap - (w->end - w->start) : 0;
}

void netx_writer_free(netx_writer *w)
{
    if (w != NULL) {
        free(w->buf);
        w->buf = NULL;
        w->start = w->end = w->size = 0;
    }
}

/* Make room for want more bytes behind what is pending (pending + want <=
 * cap): the room already behind them if there is enough; else the pending
 * bytes move to the front, and the buffer grows if that is not enough.
 * (Moving them on every append would copy each byte many times over, as
 * a peer takes a little at a time.) */
static int reserve(netx_writer *w, size_t want)
{
    size_t pending = w->end - w->start;
    if (w->size - w->end >= want) {
        return 0;
    }
    if (w->start > 0) {
        memmove(w->buf, w->buf + w->start, pending);
        w->start = 0;
        w->end = pending;
    }
    if (w->size - w->end >= want) {
        return 0;
    }
    size_t size = w->size > 0 ? w->size : FIRST_SIZE;
    while (size < pending + want) {
        size *= 2;
    }
    if (size > w->cap) {
        size = w->cap;
    }
    unsigned char *grown = realloc(w->buf, size);
    if (grown == NULL) {
        return -1;
    }
    w->buf = grown;
    w->size = size;
    return 0;
}

/* Send pending bytes once; EAGAIN is not a failure. */
static int send_pending(netx_writer *w)
{
    ssize_t n = send_now(w, w->buf + w->start, w->end - w->start);
    if (n < 0) {
        return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
    }
    w->start += (size_t)n;
    if (w->start == w->end) {
        /* All gone: give the memory back, so an idle connection costs
         * nothing but the struct. */
        netx_writer_free(w);
    }
    return 0;
}

int netx_writer_flush(netx_writer *w)
{
    if (w == NULL) {
        return netx__fail(EINVAL, "writer flush: w is NULL");
    }
    int saved = errno; /* EAGAIN on the way is not the caller's */
    if (w->end == w->start || send_pending(w) == 0) {
        errno = saved;
        return 0;
    }
    return -1;
}

int netx_writer_send(netx_writer *w, const void *data, size_t len)
{
    if (w == NULL || (data == NULL && len > 0)) {
        return netx__fail(EINVAL, "writer send: %s", w == NULL ? "w is NULL" : "data is NULL");
    }
    size_t pending = w->end - w->start;
    if (len > w->cap - pending) {
        /* All or nothing: a half-queued message would be worse than none. */
        return netx__fail(ENOBUFS,
                          "writer for fd %d: %zu bytes do not fit (%zu pending, cap %zu)", w->fd,
                          len, pending, w->cap);
    }
    const unsigned char *p = data;
    int saved = errno; /* EAGAIN on the way is not the caller's */
    if (pending == 0 && len > 0) {
        /* Nothing waits before these bytes: send at once, and keep only
         * what the socket did not take - usually nothing. */
        ssize_t n = send_now(w, p, len);
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
            return -1;
        }
        if (n > 0) {
            p += n;
            len -= (size_t)n;
        }
    }
    if (len > 0) {
        if (reserve(w, len) != 0) {
            return netx__fail(ENOMEM, "writer for fd %d: keeping %zu bytes", w->fd, len);
        }
        memcpy(w->buf + w->end, p, len);
        w->end += len;
    }
    errno = saved;
    return 0;
}

int netx_writer_printf(netx_writer *w, const char *fmt, ...)
{
    char small[512];
    va_list ap;

    if (w == NULL || fmt == NULL) {
        return netx__fail(EINVAL, "writer printf: %s", w == NULL ? "w is NULL" : "fmt is NULL");
    }
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) {
        return netx__fail(EINVAL, "writer printf: the format cannot be written");
    }
    if ((size_t)n < sizeof small) {
        return netx_writer_send(w, small, (size_t)n);
    }
    /* Longer than the stack buffer: format again, into memory of its size. */
    char *big = malloc((size_t)n + 1);
    if (big == NULL) {
        return netx__fail(ENOMEM, "writer printf: %d bytes", n);
    }
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    int rc = netx_writer_send(w, big, (size_t)n);
    free(big);
    return rc;
}
