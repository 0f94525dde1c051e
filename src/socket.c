/*
 * socket.c - the article's workflow one call at a time: create a socket
 * (workflow step 1), bind or connect it (workflow step 2), listen and accept
 * (workflow step 3), close it (workflow step 5); and the socket options a
 * program commonly needs.
 *
 * Each function is the system call plus what the call alone gets wrong:
 * close-on-exec, EINTR, SIGPIPE, timeouts that say ETIMEDOUT, and an error
 * record that names the step and the address.
 */
#if defined(__linux__) && !defined(_GNU_SOURCE)
#define _GNU_SOURCE /* accept4(), a Linux extension also found in the BSDs */
#endif

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#ifdef __linux__
#include <linux/sockios.h> /* SIOCOUTQ */
#endif

#include "compat.h"
#include "internal.h"

int netx__prepare_fd(int fd)
{
    if (NETX__SOCK_CLOEXEC == 0) {
        int flags = fcntl(fd, F_GETFD);
        if (flags < 0 || fcntl(fd, F_SETFD, flags | FD_CLOEXEC) < 0) {
            return -1;
        }
    }
#if NETX__NEED_NOSIGPIPE
    int one = 1;
    if (setsockopt(fd, SOL_SOCKET, SO_NOSIGPIPE, &one, sizeof one) < 0) {
        return -1;
    }
#endif
    return 0;
}

int netx_socket(int family, int type)
{
    int fd = socket(family, type | NETX__SOCK_CLOEXEC, 0);
    int err = errno;

    if (fd >= 0 && netx__prepare_fd(fd) != 0) {
        err = errno;
        close(fd);
        fd = -1;
    }
    FILE *t = netx__tracing();
    if (t != NULL) {
        netx__trace_step(t, fd, err, NULL, "socket(%s, %s)", netx__family_name(family),
                         netx__type_name(type));
    }
    if (fd < 0) {
        return netx__fail(err, "socket(%s, %s)", netx__family_name(family), netx__type_name(type));
    }
    return fd;
}

int netx_bind(int fd, const netx_addr *addr)
{
    char text[NETX_ADDRSTRLEN];

    if (addr == NULL) {
        return netx__fail(EINVAL, "bind fd %d: addr is NULL", fd);
    }
    int rc = bind(fd, (const struct sockaddr *)&addr->ss, addr->len);
    int err = errno;
    if (netx_addr_format(addr, text, sizeof text) < 0) {
        strcpy(text, "?");
    }
    FILE *t = netx__tracing();
    if (t != NULL) {
        netx__trace_step(t, rc, err, NULL, "bind(%d, %s)", fd, text);
    }
    if (rc != 0) {
        return netx__fail(err, "bind to %s (fd %d)", text, fd);
    }
    return 0;
}

int netx_listen(int fd, int backlog)
{
    if (backlog <= 0) {
        backlog = SOMAXCONN;
    }
    int rc = listen(fd, backlog);
    int err = errno;
    FILE *t = netx__tracing();
    if (t != NULL) {
        netx__trace_step(t, rc, err, NULL, "listen(%d, %d)", fd, backlog);
    }
    if (rc != 0) {
        char where[NETX_ADDRSTRLEN + 16];
        netx__describe_local(fd, where, sizeof where);
        return netx__fail(err, "listen on %s", where);
    }
    return 0;
}

long long netx__now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int netx__connect_start(int fd, const netx_addr *addr)
{
    if (connect(fd, (const struct sockaddr *)&addr->ss, addr->len) == 0) {
        return 0;
    }
    /*
     * EINPROGRESS: the non-blocking connect has started. EINTR: a signal
     * interrupted a blocking connect, but POSIX says the connection is still
     * being established asynchronously; calling connect() again would fail
     * with EALREADY. Both mean the attempt is under way.
     */
    return errno == EINTR ? EINPROGRESS : errno;
}

int netx__connect_result(int fd)
{
    int soerr = 0;
    socklen_t len = sizeof soerr;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) != 0) {
        return errno;
    }
    return soerr;
}

/*
 * Wait for a connection attempt already under way to finish, then read its
 * outcome from SO_ERROR. Returns 0 when connected, else the errno value
 * (ECANCELED when a stop signal ends the wait).
 */
static int wait_connected(int fd, int timeout_ms)
{
    long long deadline = timeout_ms > 0 ? netx__now_ms() + timeout_ms : -1;
    struct pollfd p[2] = {{.fd = fd, .events = POLLOUT, .revents = 0}};

    int n = netx__poll(p, 1, deadline);
    if (n < 0) {
        return errno;
    }
    if (n == 0) {
        return ETIMEDOUT;
    }
    return netx__connect_result(fd);
}

int netx__connect_wait(int fd, const netx_addr *addr, int timeout_ms)
{
    /* connect(2) says EINPROGRESS (or EINTR) on its way to a success; a
     * successful netx call must leave the caller's errno as it was. */
    int saved = errno;
    int flags = fcntl(fd, F_GETFL);
    int switched = 0;

    if (flags < 0) {
        return -1;
    }
    /* No limit of the call's own: the socket's send timeout (set with
     * netx_set_timeout()) is the limit, as it is for a blocking connect(2)
     * on Linux - which then says EINPROGRESS, not ETIMEDOUT, and leaves the
     * attempt running. Waiting for it ourselves keeps the limit and says
     * ETIMEDOUT. */
    if (timeout_ms <= 0) {
        timeout_ms = netx__socket_timeout_ms(fd, SO_SNDTIMEO);
    }
    /* To bound the wait, or to let a stop signal end it, we connect in
     * non-blocking mode and wait in poll(). */
    int stop_armed = atomic_load_explicit(&netx__stop_flags, memory_order_relaxed) != 0;
    if ((timeout_ms > 0 || stop_armed) && (flags & O_NONBLOCK) == 0) {
        if (fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0) {
            return -1;
        }
        switched = 1;
    }
    int err = netx__connect_start(fd, addr);
    if (err == EINPROGRESS) {
        err = wait_connected(fd, timeout_ms);
    }
    if (switched) {
        fcntl(fd, F_SETFL, flags);
    }
    if (err != 0) {
        errno = err;
        return -1;
    }
    errno = saved;
    return 0;
}

int netx_connect(int fd, const netx_addr *addr, int timeout_ms)
{
    char text[NETX_ADDRSTRLEN];

    if (addr == NULL) {
        return netx__fail(EINVAL, "connect fd %d: addr is NULL", fd);
    }
    int rc = netx__connect_wait(fd, addr, timeout_ms);
    int err = errno;
    if (netx_addr_format(addr, text, sizeof text) < 0) {
        strcpy(text, "?");
    }
    FILE *t = netx__tracing();
    if (t != NULL) {
        netx__trace_step(t, rc, err, NULL, "connect(%d, %s)", fd, text);
    }
    if (rc != 0) {
        return netx__fail(err, "connect to %s", text);
    }
    return 0;
}

/* The sentence of a failed connect: "connect to 127.0.0.1:9002". */
static int connect_failed(int fd, const netx_addr *addr, int err)
{
    char text[NETX_ADDRSTRLEN];
    if (addr == NULL || netx_addr_format(addr, text, sizeof text) < 0) {
        snprintf(text, sizeof text, "fd %d", fd);
    }
    FILE *t = netx__tracing();
    if (t != NULL) {
        netx__trace_step(t, -1, err, NULL, "connect(%d, %s)", fd, text);
    }
    return netx__fail(err, "connect to %s", text);
}

int netx_connect_start(int fd, const netx_addr *addr)
{
    if (addr == NULL) {
        return netx__fail(EINVAL, "connect fd %d: addr is NULL", fd);
    }
    int saved = errno;
    if (netx_set_nonblocking(fd, 1) != 0) {
        return -1;
    }
    int err = netx__connect_start(fd, addr);
    if (err != 0 && err != EINPROGRESS) {
        return connect_failed(fd, addr, err);
    }
    FILE *t = netx__tracing();
    if (t != NULL) {
        char text[NETX_ADDRSTRLEN];
        netx_addr_format(addr, text, sizeof text);
        netx__trace_text(t, "connect(%d, %s) %s", fd, text,
                         err == 0 ? "= 0" : "started (EINPROGRESS): wait until writable");
    }
    if (err == EINPROGRESS) {
        errno = EINPROGRESS; /* as connect(2) says it: not a failure */
        return -1;
    }
    errno = saved;
    return 0;
}

int netx_connect_finish(int fd, const netx_addr *addr)
{
    int saved = errno;
    int err = netx__connect_result(fd);
    if (err == 0) {
        /* SO_ERROR is 0 before the attempt ends too: a peer address says
         * it really is connected. */
        struct sockaddr_storage peer;
        socklen_t len = sizeof peer;
        if (getpeername(fd, (struct sockaddr *)&peer, &len) != 0) {
            if (errno == ENOTCONN) {
                errno = EINPROGRESS; /* not yet: wait until writable again */
                return -1;
            }
            err = errno;
        }
    }
    if (err != 0) {
        return connect_failed(fd, addr, err);
    }
    FILE *t = netx__tracing();
    if (t != NULL) {
        char text[NETX_ADDRSTRLEN];
        if (addr == NULL || netx_addr_format(addr, text, sizeof text) < 0) {
            snprintf(text, sizeof text, "fd %d", fd);
        }
        netx__trace_step(t, 0, 0, NULL, "connect(%d, %s)", fd, text);
    }
    errno = saved;
    return 0;
}

/* accept(2) errors that concern the new connection only. */
static int connection_error(int err)
{
    switch (err) {
    case ECONNABORTED:
    case EPROTO:
    case ENETDOWN:
    case ENETUNREACH:
    case EHOSTUNREACH:
#ifdef EHOSTDOWN
    case EHOSTDOWN:
#endif
#ifdef ENONET
    case ENONET:
#endif
        return 1;
    default:
        return 0;
    }
}

/* Trace and record a failed accept. */
static int accept_failed(int listen_fd, int err)
{
    FILE *t = netx__tracing();
    if (t != NULL) {
        netx__trace_step(t, -1, err, NULL, "accept(%d)", listen_fd);
    }
    if (err == EAGAIN || err == EWOULDBLOCK) {
        /* Routine for a non-blocking listener in a poll() loop: skip the
         * address lookup, which would cost a system call. */
        return netx__fail(err, "accept on fd %d", listen_fd);
    }
    char where[NETX_ADDRSTRLEN + 16];
    netx__describe_local(listen_fd, where, sizeof where);
    return netx__fail(err, "accept on %s", where);
}

/* netx_accept() and netx_accept_nonblocking(): the new socket blocking, or
 * not (nonblock). */
static int accept_one(int listen_fd, netx_addr *peer, int nonblock)
{
    netx_addr scratch;
    netx_addr *a = peer != NULL ? peer : &scratch;
    int saved = errno; /* EINTR or ECONNABORTED skipped below is not the caller's */
    int fd;

    for (;;) {
        /* While a stop is armed, a blocking listener is waited on in poll(),
         * where a stop signal reaches us; accept(2) would wait in the
         * kernel, out of its reach. (netx_accept_nonblocking() is for a
         * non-blocking listener, which never waits: it skips the check, a
         * system call per connection.) */
        if (NETX__UNLIKELY(atomic_load_explicit(&netx__stop_flags, memory_order_relaxed) != 0) &&
            !nonblock && (fcntl(listen_fd, F_GETFL) & O_NONBLOCK) == 0 &&
            netx__wait_ready(listen_fd, POLLIN) != 0) {
            return accept_failed(listen_fd, errno);
        }
        memset(a, 0, sizeof *a);
        a->len = sizeof a->ss;
#if NETX__HAVE_ACCEPT4
        fd = accept4(listen_fd, (struct sockaddr *)&a->ss, &a->len,
                     SOCK_CLOEXEC | (nonblock ? SOCK_NONBLOCK : 0));
#else
        fd = accept(listen_fd, (struct sockaddr *)&a->ss, &a->len);
        if (fd >= 0) {
            /* BSD-derived systems pass O_NONBLOCK on to the new socket, and
             * others do not: say what we want either way. */
            int fl = fcntl(fd, F_GETFL);
            if (fl >= 0) {
                fcntl(fd, F_SETFL, nonblock ? (fl | O_NONBLOCK) : (fl & ~O_NONBLOCK));
            }
        }
#endif
        if (fd >= 0) {
            break;
        }
        int err = errno;
        /* EINTR: a signal arrived while waiting. Calling accept() again at
         * once would start the listener's timeout (SO_RCVTIMEO) from zero,
         * and signals that keep coming would keep us waiting for ever; so a
         * blocking listener waits for a client with one deadline, as send
         * and recv do. A non-blocking one has nothing to wait for. */
        if (err == EINTR && (fcntl(listen_fd, F_GETFL) & O_NONBLOCK) == 0) {
            if (netx__wait_ready(listen_fd, POLLIN) == 0) {
                continue;
            }
            err = errno; /* ETIMEDOUT, or poll() failed */
        } else if (err == EINTR || connection_error(err)) {
            /* The others belong to one connection, not to the listener: a
             * client reset its connection before we took it (ECONNABORTED),
             * or - on Linux, which passes a new connection's pending network
             * error on through accept() - its network failed. Keep
             * accepting. */
            continue;
        } else {
            err = netx__timeout_errno(listen_fd, err);
        }
        return accept_failed(listen_fd, err);
    }
    if (netx__prepare_fd(fd) != 0) {
        int err = errno;
        close(fd);
        return netx__fail(err, "accept on fd %d: preparing the new socket", listen_fd);
    }
    FILE *t = netx__tracing();
    if (t != NULL) {
        char text[NETX_ADDRSTRLEN];
        char extra[NETX_ADDRSTRLEN + 8];
        if (netx_addr_format(a, text, sizeof text) < 0) {
            strcpy(text, "?");
        }
        snprintf(extra, sizeof extra, "  peer %s", text);
        netx__trace_step(t, fd, 0, extra, "accept(%d)", listen_fd);
    }
    errno = saved;
    return fd;
}

int netx_accept(int listen_fd, netx_addr *peer)
{
    return accept_one(listen_fd, peer, 0);
}

int netx_accept_nonblocking(int listen_fd, netx_addr *peer)
{
    return accept_one(listen_fd, peer, 1);
}

static const char *how_name(int how)
{
    switch (how) {
    case SHUT_RD:
        return "SHUT_RD";
    case SHUT_WR:
        return "SHUT_WR";
    case SHUT_RDWR:
        return "SHUT_RDWR";
    default:
        return "SHUT_?";
    }
}

int netx_shutdown(int fd, int how)
{
    int rc = shutdown(fd, how);
    int err = errno;
    FILE *t = netx__tracing();
    if (t != NULL) {
        netx__trace_step(t, rc, err, NULL, "shutdown(%d, %s)", fd, how_name(how));
    }
    if (rc != 0) {
        char where[NETX_ADDRSTRLEN + 16];
        netx__describe_peer(fd, where, sizeof where);
        return netx__fail(err, "shutdown(%s) of %s", how_name(how), where);
    }
    return 0;
}

int netx_close(int fd)
{
    int saved = errno;
    int rc = close(fd);
    int err = errno;
    /* Never retry close(): on Linux the descriptor is gone even when close()
     * says EINTR, and a retry could close one another thread just opened. */
    if (rc != 0 && err == EINTR) {
        rc = 0;
        errno = saved; /* a success leaves errno as it was */
    }
    FILE *t = netx__tracing();
    if (t != NULL) {
        netx__trace_step(t, rc, err, NULL, "close(%d)", fd);
    }
    if (rc != 0) {
        return netx__fail(err, "close fd %d", fd);
    }
    return 0;
}

/*
 * Bytes sent on fd that the peer's TCP has not acknowledged yet (our FIN
 * counts as one), or -1 where the system cannot tell.
 */
static int unacknowledged(int fd)
{
    int queued = -1;
#if defined(SIOCOUTQ)
    if (ioctl(fd, SIOCOUTQ, &queued) != 0) {
        queued = -1;
    }
#elif defined(FIONWRITE)
    if (ioctl(fd, FIONWRITE, &queued) != 0) {
        queued = -1;
    }
#else
    (void)fd;
#endif
    return queued;
}

/*
 * Wait until the peer's TCP has acknowledged everything we sent, or the
 * deadline. No event says "send queue empty", so look at it after pauses
 * that grow from 1 ms to 50 ms. Returns 0, or the errno value.
 */
static int wait_acknowledged(int fd, long long deadline, int *left)
{
    int pause_ms = 1;
    struct pollfd stop_only[1];

    for (;;) {
        *left = unacknowledged(fd);
        if (*left <= 0) {
            return 0; /* all acknowledged, or the system cannot tell */
        }
        long long now = netx__now_ms();
        if (deadline >= 0 && now >= deadline) {
            return ETIMEDOUT;
        }
        long long until = now + pause_ms;
        if (deadline >= 0 && until > deadline) {
            until = deadline;
        }
        /* A pause that a stop signal can end (no descriptors of our own). */
        if (netx__poll(stop_only, 0, until) < 0) {
            return errno;
        }
        pause_ms = pause_ms < 25 ? pause_ms * 2 : 50;
    }
}

int netx_close_graceful(int fd, int timeout_ms)
{
    long long deadline = timeout_ms > 0 ? netx__now_ms() + timeout_ms : -1;
    char sink[4096];
    int err = 0;
    int left = 0;

    if (netx_shutdown(fd, SHUT_WR) != 0) {
        err = errno;
        if (err == ENOTCONN) {
            /* The connection is gone already. A reset from the peer is
             * waiting in SO_ERROR, unless a recv or send took it: say so. */
            int soerr = 0;
            socklen_t len = sizeof soerr;
            if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) == 0 && soerr != 0) {
                err = soerr;
            }
        }
    }
    /* Read until the peer's end of stream, throwing the bytes away: the
     * caller has said it is done with this connection. */
    while (err == 0) {
        struct pollfd p[2] = {{.fd = fd, .events = POLLIN, .revents = 0}};
        int ready = netx__poll(p, 1, deadline);
        if (ready < 0) {
            err = errno;
            break;
        }
        if (ready == 0) {
            err = ETIMEDOUT;
            break;
        }
        ssize_t n = netx_recv(fd, sink, sizeof sink);
        if (n == 0) {
            break; /* the peer closed its side */
        }
        if (n < 0 && errno != EAGAIN) {
            err = errno;
        }
    }
    /* The peer's end of stream says it has finished sending, not that it
     * has our bytes: a peer that half-closed first and never reads leaves
     * them in our send queue. Wait until its TCP has acknowledged them. */
    if (err == 0) {
        err = wait_acknowledged(fd, deadline, &left);
    }
    if (err != 0) {
        char where[NETX_ADDRSTRLEN + 16];
        netx__describe_peer(fd, where, sizeof where);
        netx_close(fd);
        if (left > 0) {
            return netx__fail(err, "graceful close of %s: %d bytes not acknowledged by the peer",
                              where, left);
        }
        return netx__fail(err, "graceful close of %s", where);
    }
    return netx_close(fd);
}

/* Socket options ----------------------------------------------------------- */

/* setsockopt() with an int value, recording "setsockopt NAME (fd N)". */
static int set_int_option(int fd, int level, int name, int value, const char *label)
{
    if (setsockopt(fd, level, name, &value, sizeof value) != 0) {
        return netx__fail(errno, "setsockopt %s (fd %d)", label, fd);
    }
    return 0;
}

int netx_set_timeout(int fd, int timeout_ms)
{
    if (timeout_ms < 0) {
        return netx__fail(EINVAL, "set timeout on fd %d: %d ms is negative", fd, timeout_ms);
    }
    struct timeval tv;
    tv.tv_sec = timeout_ms / 1000;
    tv.tv_usec = (timeout_ms % 1000) * 1000;
    if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) != 0) {
        return netx__fail(errno, "setsockopt SO_RCVTIMEO (fd %d)", fd);
    }
    if (setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) != 0) {
        return netx__fail(errno, "setsockopt SO_SNDTIMEO (fd %d)", fd);
    }
    return 0;
}

int netx_set_nonblocking(int fd, int on)
{
    int flags = fcntl(fd, F_GETFL);
    if (flags < 0) {
        return netx__fail(errno, "fcntl F_GETFL (fd %d)", fd);
    }
    int want = on ? (flags | O_NONBLOCK) : (flags & ~O_NONBLOCK);
    if (want != flags && fcntl(fd, F_SETFL, want) != 0) {
        return netx__fail(errno, "fcntl F_SETFL O_NONBLOCK (fd %d)", fd);
    }
    return 0;
}

int netx_set_nodelay(int fd, int on)
{
    return set_int_option(fd, IPPROTO_TCP, TCP_NODELAY, on != 0, "TCP_NODELAY");
}

int netx_set_keepalive(int fd, int idle_s)
{
    if (idle_s < 0) {
        return netx__fail(EINVAL, "set keepalive on fd %d: %d s is negative", fd, idle_s);
    }
    if (set_int_option(fd, SOL_SOCKET, SO_KEEPALIVE, idle_s > 0, "SO_KEEPALIVE") != 0) {
        return -1;
    }
    if (idle_s == 0) {
        return 0;
    }
    /* The system default waits two hours before the first probe, which is
     * more or less never; use the caller's figure instead. */
    int interval = idle_s / 3 > 0 ? idle_s / 3 : 1;
    (void)interval;
#if defined(TCP_KEEPIDLE)
    if (set_int_option(fd, IPPROTO_TCP, TCP_KEEPIDLE, idle_s, "TCP_KEEPIDLE") != 0) {
        return -1;
    }
#elif defined(TCP_KEEPALIVE)
    if (set_int_option(fd, IPPROTO_TCP, TCP_KEEPALIVE, idle_s, "TCP_KEEPALIVE") != 0) {
        return -1;
    }
#endif
#if defined(TCP_KEEPINTVL)
    if (set_int_option(fd, IPPROTO_TCP, TCP_KEEPINTVL, interval, "TCP_KEEPINTVL") != 0) {
        return -1;
    }
#endif
#if defined(TCP_KEEPCNT)
    if (set_int_option(fd, IPPROTO_TCP, TCP_KEEPCNT, 3, "TCP_KEEPCNT") != 0) {
        return -1;
    }
#endif
    return 0;
}
