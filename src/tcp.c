/*
 * tcp.c - workflow steps 1 to 3 in one call each, done right: a listening
 * socket from a host and a port, and a connected socket from a host and a
 * port.
 *
 * The individual steps live in socket.c; what this file adds is the
 * knowledge of which steps to take in which order, and what to do when a
 * name has several addresses: a listener binds one of them, a client races
 * connection attempts to all of them (RFC 8305, "Happy Eyeballs").
 */
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "internal.h"

/* Enough addresses for any real host name; the rest are ignored. */
#define NETX__MAX_ADDRS 16

/* RFC 8305's "connection attempt delay": how long an attempt has to answer
 * before the next address is tried beside it. 250 ms is the value the RFC
 * recommends; curl waits 200 ms, Go 300 ms. */
#define NETX__ATTEMPT_DELAY_MS 250

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

    /* "" is every interface too: it is what a server's "-H ''" on a command
     * line hands over, and no name resolves to "". */
    if (host != NULL && host[0] == '\0') {
        host = NULL;
    }
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

/*
 * Order addresses as RFC 8305 section 4 says: alternate the address
 * families, starting with the family of the resolver's first address, and
 * keep the resolver's order within each family. Then a name whose IPv6
 * addresses are all unreachable costs one attempt delay before an IPv4
 * address is tried, not one delay per IPv6 address.
 */
static void interleave_families(netx_addr *addrs, int n)
{
    netx_addr first[NETX__MAX_ADDRS];
    netx_addr other[NETX__MAX_ADDRS];
    int nfirst = 0;
    int nother = 0;

    for (int i = 0; i < n; i++) {
        if (addrs[i].ss.ss_family == addrs[0].ss.ss_family) {
            first[nfirst++] = addrs[i];
        } else {
            other[nother++] = addrs[i];
        }
    }
    int k = 0;
    for (int i = 0; i < nfirst || i < nother; i++) {
        if (i < nfirst) {
            addrs[k++] = first[i];
        }
        if (i < nother) {
            addrs[k++] = other[i];
        }
    }
}

/*
 * A race of connection attempts, one per address, as RFC 8305 ("Happy
 * Eyeballs") describes: the attempts in flight, each a non-blocking socket
 * in one poll() set, and the failure to report if none connects.
 */
struct race {
    const netx_addr *addrs;               /* in the order they are tried */
    int n;                                /* how many */
    int started;                          /* addresses started so far */
    int live;                             /* attempts in flight: p[0..live-1] */
    struct pollfd p[NETX__MAX_ADDRS + 1]; /* + 1: netx__poll() puts the stop pipe there */
    int addr_of[NETX__MAX_ADDRS];         /* the address each attempt dials */
    long long first_ms;                   /* when the first attempt started */
    FILE *trace;                          /* netx__tracing(), asked once */
    /* The failure to report if no attempt connects: the last one. */
    int err;          /* its errno */
    int failed;       /* the index of its address */
    const char *step; /* "connect to", or "socket to connect to" */
};

/* "127.0.0.1:80", the address of attempt i, for a trace line. */
static void attempt_addr(const struct race *r, int i, char *buf, size_t cap)
{
    if (netx_addr_format(&r->addrs[r->addr_of[i]], buf, cap) < 0) {
        snprintf(buf, cap, "?");
    }
}

/* Take attempt i out of the poll set, keeping the others in the order they
 * started, so that of several failing together the last one started is the
 * one reported. */
static void forget_attempt(struct race *r, int i)
{
    for (int j = i + 1; j < r->live; j++) {
        r->p[j - 1] = r->p[j];
        r->addr_of[j - 1] = r->addr_of[j];
    }
    r->live--;
}

/* Attempt i failed with err: trace it, close its socket, and make it the
 * failure to report. */
static void fail_attempt(struct race *r, int i, int err)
{
    int fd = r->p[i].fd;
    if (r->trace != NULL) {
        char text[NETX_ADDRSTRLEN];
        attempt_addr(r, i, text, sizeof text);
        netx__trace_step(r->trace, -1, err, NULL, "connect(%d, %s)", fd, text);
    }
    r->err = err;
    r->failed = r->addr_of[i];
    r->step = "connect to";
    forget_attempt(r, i);
    netx_close(fd);
}

/* Attempt i connected first: trace it, close every other attempt, and
 * return its socket. */
static int win_attempt(struct race *r, int i)
{
    int fd = r->p[i].fd;
    char text[NETX_ADDRSTRLEN];
    if (r->trace != NULL) {
        char extra[64];
        attempt_addr(r, i, text, sizeof text);
        snprintf(extra, sizeof extra, "  first to connect, after %lld ms",
                 netx__now_ms() - r->first_ms);
        netx__trace_step(r->trace, 0, 0, extra, "connect(%d, %s)", fd, text);
    }
    forget_attempt(r, i);
    while (r->live > 0) {
        if (r->trace != NULL) {
            attempt_addr(r, 0, text, sizeof text);
            netx__trace_text(r->trace, "connect(%d, %s) abandoned: fd %d connected first",
                             r->p[0].fd, text, fd);
        }
        netx_close(r->p[0].fd);
        forget_attempt(r, 0);
    }
    return fd;
}

/*
 * Start an attempt on the next address: a close-on-exec socket, made
 * non-blocking so that every attempt can wait in the same poll(), and
 * connect(2) on it; now is the time. Returns 1 if it connected at once
 * (some systems do, on loopback; it is then the last in the poll set), 0
 * while it is under way, and -1 if it failed at once (it is then the
 * failure to report).
 */
static int start_attempt(struct race *r, long long now)
{
    int k = r->started++;
    if (k == 0) {
        r->first_ms = now;
    }
    int fd = netx_socket(r->addrs[k].ss.ss_family, SOCK_STREAM);
    if (fd < 0) {
        r->err = errno;
        r->failed = k;
        r->step = "socket to connect to";
        return -1;
    }
    int i = r->live++;
    r->p[i] = (struct pollfd){.fd = fd, .events = POLLOUT, .revents = 0};
    r->addr_of[i] = k;
    int err = netx_set_nonblocking(fd, 1) == 0 ? netx__connect_start(fd, &r->addrs[k]) : errno;
    if (err == 0) {
        return 1;
    }
    if (err != EINPROGRESS) {
        fail_attempt(r, i, err);
        return -1;
    }
    if (r->trace != NULL) {
        char text[NETX_ADDRSTRLEN];
        attempt_addr(r, i, text, sizeof text);
        if (k == 0) {
            netx__trace_text(r->trace, "connect(%d, %s) started", fd, text);
        } else {
            netx__trace_text(r->trace, "connect(%d, %s) started, %lld ms after the first", fd, text,
                             now - r->first_ms);
        }
    }
    return 0;
}

/*
 * How long the attempt just started at now has before the next address
 * starts beside it: RFC 8305's connection attempt delay, but never more
 * than an equal share of the time left for each address that had not
 * started before it (itself and those after it), so that every address
 * starts before the deadline.
 */
static long long attempt_delay(const struct race *r, long long now, long long deadline)
{
    long long delay = NETX__ATTEMPT_DELAY_MS;
    if (deadline >= 0) {
        long long left = deadline > now ? deadline - now : 0;
        long long share = left / (r->n - r->started + 1);
        if (share < delay) {
            delay = share;
        }
    }
    return delay;
}

/*
 * Run the race until an attempt connects (its socket, still non-blocking)
 * or every attempt has failed (-1, with the failure to report in r).
 * deadline is netx__now_ms() time, -1 for none.
 */
static int race_run(struct race *r, long long deadline)
{
    long long next_ms = 0; /* when the next address starts, if nothing fails before */

    for (;;) {
        long long now = netx__now_ms();
        /* The next address starts when the delay is over, or at once when
         * no attempt is in flight. */
        if (r->started < r->n && (r->live == 0 || now >= next_ms)) {
            int started = start_attempt(r, now);
            if (started > 0) {
                return win_attempt(r, r->live - 1);
            }
            /* One under way has its delay; one that failed at once lets the
             * next address start at once. */
            next_ms = started == 0 ? now + attempt_delay(r, now, deadline) : now;
            continue;
        }
        if (r->live == 0) {
            return -1; /* every address failed */
        }
        /* Wait for any attempt to end: until the next address is due, and
         * once all have started, until the deadline (the delays never reach
         * past it). */
        int ready = netx__poll(r->p, r->live, r->started < r->n ? next_ms : deadline);
        if (ready < 0 || (ready == 0 && r->started == r->n)) {
            /* A stop signal (ECANCELED), a failing poll(), or the deadline
             * (ETIMEDOUT) ends every attempt still in flight. */
            int err = ready < 0 ? errno : ETIMEDOUT;
            while (r->live > 0) {
                fail_attempt(r, 0, err);
            }
            return -1;
        }
        for (int i = 0; i < r->live;) {
            if (r->p[i].revents == 0) {
                i++;
                continue;
            }
            int result = netx__connect_result(r->p[i].fd);
            if (result == 0) {
                return win_attempt(r, i);
            }
            fail_attempt(r, i, result);
            next_ms = now; /* a failure lets the next address start at once */
        }
    }
}

int netx_tcp_connect(const char *host, uint16_t port, int timeout_ms)
{
    netx_addr addrs[NETX__MAX_ADDRS];
    char where[300];
    char addr_text[NETX_ADDRSTRLEN];
    struct netx__record before;
    int saved_errno = errno;
    int fd;

    if (host == NULL || port == 0) {
        return netx__fail(EINVAL, "connect: %s", host == NULL ? "host is NULL" : "port is 0");
    }
    netx__record_save(&before);
    netx__host_port(host, port, where, sizeof where);
    int n = netx__resolve(host, port, SOCK_STREAM, addrs, NETX__MAX_ADDRS);
    if (n < 0) {
        return -1;
    }
    interleave_families(addrs, n);
    struct race r = {.addrs = addrs, .n = n, .err = ETIMEDOUT, .step = "connect to"};
    if (n == 1) {
        /* One address: nothing to race. netx_connect() gives it the whole
         * timeout, and traces it in the one line a learner expects. */
        fd = netx_socket(addrs[0].ss.ss_family, SOCK_STREAM);
        if (fd < 0) {
            r.err = errno;
            r.step = "socket to connect to";
        } else if (netx_connect(fd, &addrs[0], timeout_ms) != 0) {
            r.err = errno;
            netx_close(fd);
            fd = -1;
        }
    } else {
        /* The deadline counts from here: the resolver's time cannot be
         * bounded (netx.h says so), the connecting can. */
        r.trace = netx__tracing();
        fd = race_run(&r, timeout_ms > 0 ? netx__now_ms() + timeout_ms : -1);
        /* The caller expects a blocking socket, as socket(2) makes. */
        if (fd >= 0 && netx_set_nonblocking(fd, 0) != 0) {
            int err = errno;
            netx_close(fd);
            errno = err;
            return -1; /* recorded: "fcntl F_SETFL O_NONBLOCK (fd 4): ..." */
        }
    }
    if (fd >= 0) {
        /* Addresses that failed before this one are not the caller's
         * failure: leave errno and the record as they were. */
        netx__record_restore(&before);
        errno = saved_errno;
        return fd;
    }
    netx__address_only(&addrs[r.failed], addr_text, sizeof addr_text);
    return netx__fail(r.err, "%s %s (%s)", r.step, where, addr_text);
}
