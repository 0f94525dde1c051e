/*
 * reader.c - netx_reader: lines and exact-size reads over a stream.
 *
 * TCP delivers a stream of bytes, not messages: one recv() may return half
 * a line or three lines and a bit. A reader keeps what has arrived but not
 * been asked for yet in a buffer the caller owns, so the next call starts
 * where the last one stopped. Unlike the classic readline() with a static
 * buffer, two readers never share anything, so any number can run in any
 * number of threads.
 *
 * Lines are bounded: a line longer than the caller's buffer is reported
 * (EMSGSIZE) and skipped, never written past the end of anything.
 */
#include <errno.h>
#include <string.h>

#include "internal.h"

int netx_reader_init(netx_reader *r, int fd, void *storage, size_t cap)
{
    if (r == NULL || storage == NULL || cap == 0) {
        return netx__fail(EINVAL, "reader for fd %d: %s", fd,
                          r == NULL         ? "r is NULL"
                          : storage == NULL ? "storage is NULL"
                                            : "cap is 0");
    }
    memset(r, 0, sizeof *r);
    r->fd = fd;
    r->buf = storage;
    r->cap = cap;
    return 0;
}

int netx_reader_init_source(netx_reader *r, int fd,
                            ssize_t (*read_from)(void *source, void *buf, size_t cap),
                            void *source, void *storage, size_t cap)
{
    if (read_from == NULL) {
        return netx__fail(EINVAL, "reader for fd %d: read_from is NULL", fd);
    }
    if (netx_reader_init(r, fd, storage, cap) != 0) {
        return -1;
    }
    r->read_from = read_from;
    r->source = source;
    return 0;
}

/* One receive from where the reader's bytes come from. */
static ssize_t source_recv(netx_reader *r, void *buf, size_t cap)
{
    if (r->read_from != NULL) {
        return r->read_from(r->source, buf, cap);
    }
    return netx_recv(r->fd, buf, cap);
}

/*
 * Receive more bytes at the end of the buffer, first moving the unread ones
 * to the front if the end is full. Returns what netx_recv() returns; at end
 * of stream it also sets r->eof.
 */
static ssize_t fill(netx_reader *r)
{
    if (r->start == r->end) {
        r->start = 0;
        r->end = 0;
    } else if (r->end == r->cap && r->start > 0) {
        memmove(r->buf, r->buf + r->start, r->end - r->start);
        r->end -= r->start;
        r->start = 0;
    }
    ssize_t n = source_recv(r, r->buf + r->end, r->cap - r->end);
    if (n > 0) {
        r->end += (size_t)n;
    } else if (n == 0) {
        r->eof = 1;
    }
    return n;
}

/* Drop bytes up to and including the next '\n'. Returns 1 when the line
 * ended (or the stream did), 0 when more must be received first. */
static int skip_rest_of_line(netx_reader *r)
{
    const unsigned char *nl = memchr(r->buf + r->start, '\n', r->end - r->start);
    if (nl != NULL) {
        r->start = (size_t)(nl - r->buf) + 1;
        r->skipping = 0;
        return 1;
    }
    r->start = 0;
    r->end = 0;
    if (r->eof) {
        r->skipping = 0;
        return 1;
    }
    return 0;
}

ssize_t netx_read_line(netx_reader *r, char *line, size_t cap)
{
    if (r == NULL || line == NULL || cap < 2) {
        return netx__fail(EINVAL, "read_line: %s",
                          r == NULL      ? "r is NULL"
                          : line == NULL ? "line is NULL"
                                         : "cap is less than 2");
    }
    line[0] = '\0';
    /* The longest line, '\n' included, that fits both line (with its NUL)
     * and the reader's storage. */
    size_t limit = cap - 1 < r->cap ? cap - 1 : r->cap;
    size_t scanned = 0; /* bytes after start already searched for '\n' */

    for (;;) {
        if (r->skipping) {
            if (!skip_rest_of_line(r)) {
                if (fill(r) < 0) {
                    return -1;
                }
                continue;
            }
            scanned = 0;
        }
        size_t avail = r->end - r->start;
        const unsigned char *base = r->buf + r->start;
        const unsigned char *nl = memchr(base + scanned, '\n', avail - scanned);
        if (nl != NULL) {
            size_t len = (size_t)(nl - base) + 1;
            r->start += len;
            if (len > limit) {
                return netx__fail(EMSGSIZE, "read_line on fd %d: line longer than %zu bytes", r->fd,
                                  limit);
            }
            memcpy(line, base, len);
            line[len] = '\0';
            return (ssize_t)len;
        }
        scanned = avail;
        if (avail == limit && !r->eof && avail == r->cap) {
            /* Exactly limit bytes, no '\n', and the storage is full: the
             * line still fits if the stream ends right here. One more byte
             * tells: either the '\n' of a line one byte too long, or the
             * first byte of the rest of the line, kept for the skip (or
             * for a netx_read_n() that cancels it). */
            unsigned char next;
            ssize_t n = source_recv(r, &next, 1);
            if (n < 0) {
                return -1; /* what arrived stays buffered for the next call */
            }
            if (n == 0) {
                r->eof = 1;
                continue; /* the last line of the stream: returned below */
            }
            r->start = 0;
            r->end = 0;
            r->skipping = next != '\n';
            if (r->skipping) {
                r->buf[r->end++] = next;
            }
            return netx__fail(EMSGSIZE, "read_line on fd %d: line longer than %zu bytes", r->fd,
                              limit);
        }
        /* Exactly limit bytes with room left in the storage go on to the
         * receive below: its next byte, or the end of the stream, tells
         * whether the line fits. */
        if (avail > limit) {
            /* Too long already, and not finished: drop what we have and
             * skip the rest of the line on the next call. */
            r->start = 0;
            r->end = 0;
            r->skipping = 1;
            return netx__fail(EMSGSIZE, "read_line on fd %d: line longer than %zu bytes", r->fd,
                              limit);
        }
        if (r->eof) {
            /* The last line of the stream, without its '\n'. */
            memcpy(line, base, avail);
            line[avail] = '\0';
            r->start = r->end;
            return (ssize_t)avail;
        }
        if (fill(r) < 0) {
            return -1; /* what arrived stays buffered for the next call */
        }
    }
}

ssize_t netx_read_n(netx_reader *r, void *buf, size_t n)
{
    unsigned char *out = buf;
    size_t done;

    if (r == NULL || (buf == NULL && n > 0)) {
        return netx__fail(EINVAL, "read_n: %s", r == NULL ? "r is NULL" : "buf is NULL");
    }
    r->skipping = 0;
    done = r->end - r->start < n ? r->end - r->start : n;
    if (done > 0) {
        /* Not for 0 bytes: buf may then be NULL, and memcpy() from or to
         * NULL is undefined even for a length of 0. */
        memcpy(out, r->buf + r->start, done);
        r->start += done;
    }

    while (done < n && !r->eof) {
        ssize_t got;
        if (n - done >= r->cap) {
            /* Larger than the buffer: receive straight into the caller's
             * memory and save a copy. */
            got = source_recv(r, out + done, n - done);
            if (got == 0) {
                r->eof = 1;
            }
        } else {
            got = fill(r);
            if (got > 0) {
                size_t take = r->end - r->start < n - done ? r->end - r->start : n - done;
                memcpy(out + done, r->buf + r->start, take);
                r->start += take;
                got = (ssize_t)take;
            }
        }
        if (got < 0) {
            netx__set_transferred(done);
            return -1;
        }
        done += (size_t)got;
    }
    return (ssize_t)done;
}

size_t netx_reader_buffered(const netx_reader *r)
{
    return r != NULL ? r->end - r->start : 0;
}

int netx_reader_rebase(netx_reader *r, void *storage)
{
    if (r == NULL || storage == NULL) {
        return netx__fail(EINVAL, "reader rebase: %s is NULL", r == NULL ? "r" : "storage");
    }
    r->buf = storage;
    return 0;
}
