/*
 * tcp.c - steps 1 to 3 in one call each, done right: a listening socket
 * from a host and a port, and a connected socket from a host and a port.
 *
 * The individual steps live in socket.c; what this file adds is the
 * knowledge of which steps to take in which order, and what to do when a
 * name has several addresses.
 */
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

#include "internal.h"

/* Enough addresses for any real host name; the rest are ignored. */
#define NETX__MAX_ADDRS 16

/*
 * Create a socket for one address, bind it and (for TCP) listen. On failure
 * nothing stays open, errno is set and *step says which step failed.
 */
static int bind_one(const netx_addr *a, int type, int backlog, int dual_stack, const char **step)
{
    *step = "socket for";
    int fd = netx_socket(a->ss.ss_family, type);
    if (fd < 0) {
        return -1;
    }
    int one = 1;
    int zero = 0;
    /* SO_REUSEADDR lets a restarted server bind its port at once, while the
     * connections of its previous run are still in TIME_WAIT. Only for TCP:
     * on UDP it would let two sockets share one port. */
    if (type == SOCK_STREAM && setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0) {
        *step = "setsockopt SO_REUSEADDR for";
        goto fail;
    }
    /* The wildcard IPv6 address serves IPv4 clients too unless V6ONLY is on;
     * some systems turn it on by default, so say what we want. */
    if (dual_stack && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero) != 0) {
        *step = "setsockopt IPV6_V6ONLY for";
        goto fail;
    }
    *step = "bind to";
    if (netx_bind(fd, a) != 0) {
        goto fail;
    }
    *step = "listen on";
    if (type == SOCK_STREAM && netx_listen(fd, backlog) != 0) {
        goto fail;
    }
    return fd;

fail:;
    int err = errno;
    netx_close(fd);
    errno = err;
    return -1;
}

int netx__open_bound(const char *host, uint16_t port, int type, int backlog)
{
    netx_addr addrs[NETX__MAX_ADDRS];
    char where[300];
    char addr_text[NETX_ADDRSTRLEN];
    const char *step = "bind to";
    int err = 0;
    int fd = -1;
    int last = 0;
    struct netx__record before;
    int saved_errno = errno;

    netx__record_save(&before);
    netx__host_port(host, port, where, sizeof where);
    if (host == NULL) {
        /* Every interface: one IPv6 socket that takes IPv4 too, or plain
         * IPv4 where the system has no IPv6. */
        struct sockaddr_in6 *any6 = (struct sockaddr_in6 *)&addrs[0].ss;
        memset(&addrs[0], 0, sizeof addrs[0]);
        any6->sin6_family = AF_INET6;
        any6->sin6_addr = in6addr_any;
        any6->sin6_port = htons(port);
        addrs[0].len = sizeof *any6;
        fd = bind_one(&addrs[0], type, backlog, 1, &step);
        if (fd >= 0 || (errno != EAFNOSUPPORT && errno != EPROTONOSUPPORT)) {
            err = errno;
        } else {
            struct sockaddr_in *any4 = (struct sockaddr_in *)&addrs[0].ss;
            memset(&addrs[0], 0, sizeof addrs[0]);
            any4->sin_family = AF_INET;
            any4->sin_addr.s_addr = htonl(INADDR_ANY);
            any4->sin_port = htons(port);
            addrs[0].len = sizeof *any4;
            fd = bind_one(&addrs[0], type, backlog, 0, &step);
            err = errno;
        }
    } else {
        int n = netx__resolve(host, port, type, addrs, NETX__MAX_ADDRS);
        if (n < 0) {
            return -1;
        }
        /* IPv4 first: see netx_tcp_listen() in netx.h for why. */
        netx__ipv4_first(addrs, n);
        for (int i = 0; i < n && fd < 0; i++) {
            fd = bind_one(&addrs[i], type, backlog, 0, &step);
            err = errno;
            last = i;
            /* Go on to the next address only if this one cannot exist
             * here. A taken port (EADDRINUSE) or a refused one (EACCES) is
             * the answer: listening quietly on [::1] instead would hide a
             * server that dialers of 127.0.0.1 still reach. */
            if (fd < 0 && err != EAFNOSUPPORT && err != EPROTONOSUPPORT && err != EADDRNOTAVAIL) {
                break;
            }
        }
    }
    if (fd >= 0) {
        /* An address that failed before this one is not the caller's
         * failure: leave errno and the record as they were. */
        netx__record_restore(&before);
        errno = saved_errno;
        return fd;
    }
    netx__address_only(&addrs[last], addr_text, sizeof addr_text);
    return netx__fail(err, "%s %s (%s)", step, where, addr_text);
}

int netx_tcp_listen(const char *host, uint16_t port, int backlog)
{
    return netx__open_bound(host, port, SOCK_STREAM, backlog);
}

int netx_tcp_connect(const char *host, uint16_t port, int timeout_ms)
{
    netx_addr addrs[NETX__MAX_ADDRS];
    char where[300];
    char addr_text[NETX_ADDRSTRLEN];
    long long deadline = timeout_ms > 0 ? netx__now_ms() + timeout_ms : 0;
    int err = ETIMEDOUT;
    int last = 0;
    const char *step = "connect to";
    struct netx__record before;
    int saved_errno = errno;

    if (host == NULL || port == 0) {
        return netx__fail(EINVAL, "connect: %s", host == NULL ? "host is NULL" : "port is 0");
    }
    netx__record_save(&before);
    netx__host_port(host, port, where, sizeof where);
    int n = netx__resolve(host, port, SOCK_STREAM, addrs, NETX__MAX_ADDRS);
    if (n < 0) {
        return -1;
    }
    for (int i = 0; i < n; i++) {
        int budget = 0;
        if (timeout_ms > 0) {
            long long left = deadline - netx__now_ms();
            if (left <= 0) {
                break; /* the deadline passed: report the last failure */
            }
            /* An equal share of what is left, so an address that never
             * answers cannot starve the ones after it. */
            budget = (int)(left / (n - i));
            if (budget < 1) {
                budget = 1;
            }
        }
        last = i;
        int fd = netx_socket(addrs[i].ss.ss_family, SOCK_STREAM);
        if (fd < 0) {
            err = errno;
            step = "socket to connect to";
            continue;
        }
        if (netx_connect(fd, &addrs[i], budget) == 0) {
            /* Addresses that failed before this one are not the caller's
             * failure: leave errno and the record as they were. */
            netx__record_restore(&before);
            errno = saved_errno;
            return fd;
        }
        err = errno;
        step = "connect to";
        netx_close(fd);
    }
    netx__address_only(&addrs[last], addr_text, sizeof addr_text);
    return netx__fail(err, "%s %s (%s)", step, where, addr_text);
}
