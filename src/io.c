/*
 * io.c - workflow step 4, exchanging data: one send or recv at a time, and
 * the loops that move a whole buffer.
 *
 * send(2) and recv(2) are allowed to move fewer bytes than asked, to be
 * interrupted by signals (EINTR), and to raise SIGPIPE when the peer has
 * gone. Hand-written socket code usually forgets one of these; here each is
 * handled once, for every caller.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/uio.h>

#include "compat.h"
#include "internal.h"

/* As netx__timeout_errno(), with fd's file status flags when the caller
 * has read them already (-1: not yet): one fcntl() per EAGAIN, not two. */
static int timeout_errno_flags(int fd, int err, int flags)
{
    /* SO_RCVTIMEO/SO_SNDTIMEO expiry shows up as EAGAIN on a blocking
     * socket. A blocking socket has no other reason to say EAGAIN, so call
     * it what it is. */
    if (err == EAGAIN || err == EWOULDBLOCK) {
        if (flags < 0) {
            flags = fcntl(fd, F_GETFL);
        }
        if (flags >= 0 && (flags & O_NONBLOCK) == 0) {
            return ETIMEDOUT;
        }
    }
    return err;
}

int netx__timeout_errno(int fd, int err)
{
    return timeout_errno_flags(fd, err, -1);
}

int netx__socket_timeout_ms(int fd, int name)
{
    struct timeval tv;
    socklen_t len = sizeof tv;
    if (getsockopt(fd, SOL_SOCKET, name, &tv, &len) != 0) {
        return -1;
    }
    if (tv.tv_sec == 0 && tv.tv_usec == 0) {
        return -1;
    }
    return (int)(tv.tv_sec * 1000 + tv.tv_usec / 1000);
}

int netx__wait_ready(int fd, short events)
{
    int timeout_ms = netx__socket_timeout_ms(fd, events == POLLOUT ? SO_SNDTIMEO : SO_RCVTIMEO);
    long long deadline = timeout_ms >= 0 ? netx__now_ms() + timeout_ms : -1;
    struct pollfd p[2] = {{.fd = fd, .events = events, .revents = 0}};

    /* Readable, writable, or an error the next call will report; or a stop
     * signal (ECANCELED). */
    int n = netx__poll(p, 1, deadline);
    if (n > 0) {
        return 0;
    }
    if (n == 0) {
        errno = ETIMEDOUT;
    }
    return -1;
}

/*
 * After a send or receive failed with err: 1 if the library should wait for
 * the socket and try again. A signal interrupted it (EINTR), or - while a
 * stop is armed - our own MSG_DONTWAIT (dontwait) made a blocking socket say
 * EAGAIN instead of waiting in the kernel, where no stop could reach it.
 * The file status flags it reads for that go to *flags, for the error's
 * name later (timeout_errno_flags()).
 */
static int must_wait(int fd, int err, int dontwait, int *flags)
{
    if (err == EINTR) {
        return 1;
    }
    if (dontwait == 0 || (err != EAGAIN && err != EWOULDBLOCK)) {
        return 0;
    }
    *flags = fcntl(fd, F_GETFL);
    return *flags >= 0 && (*flags & O_NONBLOCK) == 0;
}

/* The rare paths of a send: failure, or tracing on. Kept out of line so the
 * common path stays short. With report_eagain 0, EAGAIN on a non-blocking
 * socket is traced but not recorded: netx_send_all() waits and goes on, and
 * a call that succeeds must leave the error record alone. */
static ssize_t sent_slow(FILE *t, int fd, ssize_t n, int err, int flags, size_t len,
                         const netx_addr *to, int report_eagain)
{
    char where[NETX_ADDRSTRLEN + 16];
    char text[NETX_ADDRSTRLEN];

    if (n < 0) {
        err = timeout_errno_flags(fd, err, flags);
    }
    if (to != NULL && netx_addr_format(to, text, sizeof text) < 0) {
        strcpy(text, "?");
    }
    if (t != NULL) {
        if (to != NULL) {
            netx__trace_step(t, n, err, NULL, "sendto(%d, %zu bytes, %s)", fd, len, text);
        } else {
            netx__trace_step(t, n, err, NULL, "send(%d, %zu bytes)", fd, len);
        }
    }
    if (n >= 0) {
        return n;
    }
    if (!report_eagain && (err == EAGAIN || err == EWOULDBLOCK)) {
        errno = err;
        return -1;
    }
    if (to != NULL) {
        return netx__fail(err, "sendto %s (fd %d)", text, fd);
    }
    if (err == EAGAIN || err == EWOULDBLOCK) {
        /* Routine for a non-blocking socket in a poll() loop: skip the
         * peer lookup, which would cost a system call. */
        return netx__fail(err, "send on fd %d", fd);
    }
    netx__describe_peer(fd, where, sizeof where);
    return netx__fail(err, "send to %s", where);
}

/* The system call itself: send, or sendto when there is an address.
 * dontwait is netx__stop_flags as the caller read it. */
static ssize_t raw_send(int fd, const void *buf, size_t len, const netx_addr *to, int dontwait)
{
    if (to != NULL) {
        return sendto(fd, buf, len, NETX__SEND_FLAGS | dontwait, (const struct sockaddr *)&to->ss,
                      to->len);
    }
    /* MSG_NOSIGNAL: a closed peer gives EPIPE, not a fatal SIGPIPE. */
    return send(fd, buf, len, NETX__SEND_FLAGS | dontwait);
}

/*
 * Everything after the first send: n is what it returned, with dontwait as
 * its flags. Waits and retries where must_wait() says so, restores the
 * caller's errno (saved) on success, and leaves failures and tracing to
 * sent_slow().
 */
static ssize_t send_finish(int fd, const void *buf, size_t len, const netx_addr *to, ssize_t n,
                           int dontwait, int saved, int report_eagain)
{
    int flags = -1;
    while (n < 0 && must_wait(fd, errno, dontwait, &flags)) {
        /* Wait for room in poll(), with the socket's send timeout as one
         * deadline: after EINTR, calling send() again would restart the
         * timeout from zero, and signals that keep coming would keep us
         * waiting for ever. A stop signal ends this wait (ECANCELED). */
        if (netx__wait_ready(fd, POLLOUT) != 0) {
            break;
        }
        n = raw_send(fd, buf, len, to, dontwait);
    }
    int err = errno;
    if (n >= 0) {
        errno = saved; /* an EINTR retried on the way is not the caller's */
    }
    FILE *t = netx__tracing();
    if (NETX__UNLIKELY(n < 0 || t != NULL)) {
        return sent_slow(t, fd, n, err, flags, len, to, report_eagain);
    }
    return n;
}

static ssize_t send_once(int fd, const void *buf, size_t len, const netx_addr *to,
                         int report_eagain)
{
    int saved = errno;
    if (NETX__UNLIKELY(buf == NULL && len > 0)) {
        return netx__fail(EINVAL, "send on fd %d: buf is NULL", fd);
    }
    int dontwait = atomic_load_explicit(&netx__stop_flags, memory_order_relaxed);
    return send_finish(fd, buf, len, to, raw_send(fd, buf, len, to, dontwait), dontwait, saved,
                       report_eagain);
}

ssize_t netx__send_once(int fd, const void *buf, size_t len, const netx_addr *to)
{
    /* The common case returns at once, as in netx_send() below. */
    int saved = errno;
    if (NETX__LIKELY(buf != NULL)) {
        int dontwait = atomic_load_explicit(&netx__stop_flags, memory_order_relaxed);
        ssize_t n = raw_send(fd, buf, len, to, dontwait);
        if (NETX__LIKELY(n >= 0) &&
            atomic_load_explicit(&netx__trace_out, memory_order_relaxed) == NULL) {
            return n;
        }
        return send_finish(fd, buf, len, to, n, dontwait, saved, 1);
    }
    return send_once(fd, buf, len, to, 1);
}

/* As sent_slow(), for a receive. */
static ssize_t received_slow(FILE *t, int fd, ssize_t n, int err, int flags, size_t cap,
                             netx_addr *from, int truncated, int report_eagain)
{
    char where[NETX_ADDRSTRLEN + 16];
    char text[NETX_ADDRSTRLEN];
    char extra[NETX_ADDRSTRLEN + 8] = "";

    if (n < 0) {
        err = timeout_errno_flags(fd, err, flags);
    } else if (truncated) {
        err = EMSGSIZE;
    }
    if (from != NULL && n >= 0) {
        if (netx_addr_format(from, text, sizeof text) < 0) {
            strcpy(text, "?");
        }
        snprintf(extra, sizeof extra, "  from %s", text);
    }
    if (t != NULL) {
        long shown = (n < 0 || truncated) ? -1 : (long)n;
        netx__trace_step(t, shown, err, extra, "%s(%d, %zu)", from != NULL ? "recvfrom" : "recv",
                         fd, cap);
    }
    if (n >= 0 && !truncated) {
        return n;
    }
    if (!report_eagain && (err == EAGAIN || err == EWOULDBLOCK)) {
        errno = err;
        return -1;
    }
    if (err == EAGAIN || err == EWOULDBLOCK) {
        /* Routine for a non-blocking socket: no peer lookup (see above). */
        return netx__fail(err, "%s on fd %d", from != NULL ? "recvfrom" : "recv", fd);
    }
    if (from != NULL) {
        netx__describe_local(fd, where, sizeof where);
    } else {
        netx__describe_peer(fd, where, sizeof where);
    }
    if (truncated) {
        return netx__fail(err, "%s %s: datagram longer than %zu bytes, cut short",
                          from != NULL ? "recvfrom on" : "recv from", where, cap);
    }
    return netx__fail(err, "%s %s", from != NULL ? "recvfrom on" : "recv from", where);
}

/*
 * Everything after the first recvmsg: n is what it returned, with dontwait
 * as its flags. Waits and retries where must_wait() says so, restores the
 * caller's errno (saved) on success, fills in from, and leaves failures,
 * truncation and tracing to received_slow().
 */
static ssize_t recv_finish(int fd, struct msghdr *msg, size_t cap, netx_addr *from, ssize_t n,
                           int dontwait, int saved, int report_eagain)
{
    int flags = -1;
    while (n < 0 && must_wait(fd, errno, dontwait, &flags)) {
        /* Wait with one deadline in poll(), as for send above. */
        if (netx__wait_ready(fd, POLLIN) != 0) {
            break;
        }
        msg->msg_flags = 0;
        if (from != NULL) {
            msg->msg_namelen = sizeof from->ss;
        }
        n = recvmsg(fd, msg, dontwait);
    }
    int err = errno;
    if (n >= 0) {
        errno = saved; /* an EINTR retried on the way is not the caller's */
    }
    if (from != NULL && n >= 0) {
        from->len = msg->msg_namelen;
    }
    int truncated = n >= 0 && (msg->msg_flags & MSG_TRUNC) != 0;
    FILE *t = netx__tracing();
    if (NETX__UNLIKELY(n < 0 || truncated || t != NULL)) {
        return received_slow(t, fd, n, err, flags, cap, from, truncated, report_eagain);
    }
    return n;
}

static ssize_t recv_once(int fd, void *buf, size_t cap, netx_addr *from, int report_eagain)
{
    int saved = errno;
    struct iovec iov = {.iov_base = buf, .iov_len = cap};
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};

    if (NETX__UNLIKELY(buf == NULL && cap > 0)) {
        return netx__fail(EINVAL, "recv on fd %d: buf is NULL", fd);
    }
    if (from != NULL) {
        memset(from, 0, sizeof *from);
        msg.msg_name = &from->ss;
        msg.msg_namelen = sizeof from->ss;
    }
    if (cap == 0) {
        /* Nothing asked, nothing to wait for: recv(2) would block until
         * data came (or take a datagram and throw it away). */
        FILE *t = netx__tracing();
        if (t != NULL) {
            netx__trace_step(t, 0, 0, NULL, "%s(%d, 0)", from != NULL ? "recvfrom" : "recv", fd);
        }
        return 0;
    }
    /* recvmsg() rather than recv(): its msg_flags tell when a datagram was
     * longer than the buffer (MSG_TRUNC), which recv() would hide. */
    int dontwait = atomic_load_explicit(&netx__stop_flags, memory_order_relaxed);
    return recv_finish(fd, &msg, cap, from, recvmsg(fd, &msg, dontwait), dontwait, saved,
                       report_eagain);
}

ssize_t netx__recv_once(int fd, void *buf, size_t cap, netx_addr *from)
{
    /* The common case returns at once, as in netx_recv() below. */
    int saved = errno;
    if (NETX__LIKELY(buf != NULL && from != NULL && cap > 0)) {
        struct iovec iov = {.iov_base = buf, .iov_len = cap};
        struct msghdr msg = {.msg_iov = &iov,
                             .msg_iovlen = 1,
                             .msg_name = &from->ss,
                             .msg_namelen = sizeof from->ss};
        int dontwait = atomic_load_explicit(&netx__stop_flags, memory_order_relaxed);
        ssize_t n = recvmsg(fd, &msg, dontwait);
        if (NETX__LIKELY(n >= 0) && (msg.msg_flags & MSG_TRUNC) == 0 &&
            atomic_load_explicit(&netx__trace_out, memory_order_relaxed) == NULL) {
            from->len = msg.msg_namelen;
            return n;
        }
        return recv_finish(fd, &msg, cap, from, n, dontwait, saved, 1);
    }
    return recv_once(fd, buf, cap, from, 1);
}

ssize_t netx__send_nowait(int fd, const void *buf, size_t len)
{
    int saved = errno;
    ssize_t n;
    do {
        n = send(fd, buf, len, NETX__SEND_FLAGS | NETX__DONTWAIT);
    } while (n < 0 && errno == EINTR);
    int err = errno;
    FILE *t = netx__tracing();
    if (t != NULL) {
        netx__trace_step(t, n, err, NULL, "send(%d, %zu bytes)", fd, len);
    }
    if (n >= 0) {
        errno = saved;
        return n;
    }
    if (err == EAGAIN || err == EWOULDBLOCK) {
        errno = err; /* full for now: the caller keeps the bytes */
        return -1;
    }
    char where[NETX_ADDRSTRLEN + 16];
    netx__describe_peer(fd, where, sizeof where);
    return netx__fail(err, "send to %s", where);
}

/*
 * netx_send() and netx_recv() are on every program's hot path, so the
 * common case - one system call that succeeds, tracing off - returns at
 * once; anything else (EINTR, a failure, a cut datagram, tracing, a NULL
 * buffer) continues in the same careful code as every other call.
 */
ssize_t netx_send(int fd, const void *buf, size_t len)
{
    int saved = errno;
    if (NETX__LIKELY(buf != NULL)) {
        /* While a stop is armed, MSG_DONTWAIT: see must_wait(). Otherwise 0,
         * so the only cost of netx_stop_on() to a program that never calls
         * it is this one load. */
        int dontwait = atomic_load_explicit(&netx__stop_flags, memory_order_relaxed);
        ssize_t n = send(fd, buf, len, NETX__SEND_FLAGS | dontwait);
        if (NETX__LIKELY(n >= 0) &&
            atomic_load_explicit(&netx__trace_out, memory_order_relaxed) == NULL) {
            return n;
        }
        return send_finish(fd, buf, len, NULL, n, dontwait, saved, 1);
    }
    return send_once(fd, buf, len, NULL, 1);
}

ssize_t netx_recv(int fd, void *buf, size_t cap)
{
    int saved = errno;
    if (NETX__LIKELY(buf != NULL && cap > 0)) {
        struct iovec iov = {.iov_base = buf, .iov_len = cap};
        struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
        int dontwait = atomic_load_explicit(&netx__stop_flags, memory_order_relaxed);
        ssize_t n = recvmsg(fd, &msg, dontwait);
        if (NETX__LIKELY(n >= 0) && (msg.msg_flags & MSG_TRUNC) == 0 &&
            atomic_load_explicit(&netx__trace_out, memory_order_relaxed) == NULL) {
            return n;
        }
        return recv_finish(fd, &msg, cap, NULL, n, dontwait, saved, 1);
    }
    return recv_once(fd, buf, cap, NULL, 1);
}

/* Record a failed wait for readiness (ETIMEDOUT, mostly) in a loop. */
static int wait_failed(int fd, const char *step)
{
    char where[NETX_ADDRSTRLEN + 16];
    int err = errno;
    netx__describe_peer(fd, where, sizeof where);
    return netx__fail(err, "%s %s", step, where);
}

int netx_send_all(int fd, const void *buf, size_t len)
{
    const unsigned char *p = buf;
    size_t done = 0;
    int saved = errno;

    if (buf == NULL && len > 0) {
        return netx__fail(EINVAL, "send_all on fd %d: buf is NULL", fd);
    }
    while (done < len) {
        ssize_t n = send_once(fd, p + done, len - done, NULL, 0);
        if (n > 0) {
            done += (size_t)n; /* a short send: loop for the rest */
            continue;
        }
        /* EAGAIN only comes from a non-blocking socket (a blocking one
         * reports ETIMEDOUT): wait for room, then go on. */
        if (n < 0 && errno == EAGAIN) {
            if (netx__wait_ready(fd, POLLOUT) == 0) {
                continue;
            }
            wait_failed(fd, "send to");
        } else if (n == 0) {
            netx__fail(EIO, "send on fd %d: the system took no bytes", fd);
        }
        netx__set_transferred(done);
        return -1;
    }
    errno = saved; /* EAGAIN and EINTR met on the way were handled */
    return 0;
}

ssize_t netx_recv_all(int fd, void *buf, size_t len)
{
    unsigned char *p = buf;
    size_t done = 0;
    int saved = errno;

    if (buf == NULL && len > 0) {
        return netx__fail(EINVAL, "recv_all on fd %d: buf is NULL", fd);
    }
    while (done < len) {
        ssize_t n = recv_once(fd, p + done, len - done, NULL, 0);
        if (n > 0) {
            done += (size_t)n; /* a short read: loop for the rest */
            continue;
        }
        if (n == 0) {
            break; /* end of stream: report what arrived */
        }
        if (errno == EAGAIN) {
            if (netx__wait_ready(fd, POLLIN) == 0) {
                continue;
            }
            wait_failed(fd, "recv from");
        }
        netx__set_transferred(done);
        return -1;
    }
    errno = saved; /* EAGAIN and EINTR met on the way were handled */
    return (ssize_t)done;
}
