/*
 * internal.h - what the files of src/ share and nobody else sees.
 *
 * Every name here starts with netx__ (two underscores) and is hidden from
 * the shared library's symbol table - except the few marked NETX__SHARED,
 * which libnetx_tls (a library of its own, src/tls.c) calls in libnetx.so.
 * They are still not part of the API: netx.h does not declare them.
 */
#ifndef NETX_INTERNAL_H
#define NETX_INTERNAL_H

#include <stdatomic.h>
#include <stdio.h>

#include "netx.h"

#if defined(__GNUC__) || defined(__clang__)
#define NETX__SHARED       __attribute__((visibility("default")))
#define NETX__PRINTF(f, a) __attribute__((format(printf, f, a)))
#define NETX__UNLIKELY(x)  __builtin_expect(!!(x), 0)
#define NETX__LIKELY(x)    __builtin_expect(!!(x), 1)
#else
#define NETX__SHARED
#define NETX__PRINTF(f, a)
#define NETX__UNLIKELY(x) (x)
#define NETX__LIKELY(x)   (x)
#endif

/* error.c ---------------------------------------------------------------- */

/* This thread's error record: what netx_last_error() and friends report. */
struct netx__record {
    int err;            /* errno of the last failure, 0 if none */
    int gai;            /* EAI_* code if it was the resolver's */
    size_t transferred; /* bytes moved before it, for the *_all calls */
    char text[512];     /* the sentence */
};

/*
 * Copy this thread's record out and back. A call that tries several
 * addresses saves the record first and restores it when a later address
 * succeeds: the earlier failures are not the caller's.
 */
NETX__SHARED void netx__record_save(struct netx__record *out);
NETX__SHARED void netx__record_restore(const struct netx__record *in);

/*
 * Record a failure in this thread's error record as "<what>: <strerror(err)>",
 * where <what> is formatted from fmt, set errno to err and return -1, so a
 * failing function can end with `return netx__fail(...)`.
 */
NETX__SHARED int netx__fail(int err, const char *fmt, ...) NETX__PRINTF(2, 3);

/* As netx__fail(), with cause in place of strerror(err): for a failure the
 * errno alone does not explain (a TLS alert, a certificate that does not
 * verify). */
NETX__SHARED int netx__fail_because(int err, const char *cause, const char *fmt, ...) NETX__PRINTF(3, 4);

/*
 * Record a resolver failure for host: errno becomes the documented mapping
 * of gai (sys_err is errno as it was, for EAI_SYSTEM). Returns -1.
 */
int netx__fail_gai(int gai, int sys_err, const char *host);

/* strerror(err) into buf, whichever strerror_r() the C library declares
 * (POSIX's or glibc's). */
void netx__strerror(int err, char *buf, size_t cap);

/* The cause at the end of a sentence: strerror(err), or for ECANCELED the
 * stop signal that caused it ("stopped by SIGINT"). */
void netx__cause(int err, char *buf, size_t cap);

/* Copy src into dst (cap bytes, NUL included) with every control character
 * escaped ("\n", "\x1b"), so that text from outside - a host name, a port
 * as typed - cannot break a sentence or a trace line in two. Cut at a whole
 * character when dst is too small. Returns the length written. */
size_t netx__escape(char *dst, size_t cap, const char *src);

/* Set how many bytes moved before the failure just recorded. */
NETX__SHARED void netx__set_transferred(size_t n);

/* Describe a connected socket for a message: "127.0.0.1:80 (fd 4)" or
 * "fd 4" when it has no peer (any more). */
NETX__SHARED void netx__describe_peer(int fd, char *buf, size_t cap);

/* Describe a bound socket: "127.0.0.1:80 (fd 3)" or "fd 3". */
void netx__describe_local(int fd, char *buf, size_t cap);

/* "host:port", with brackets around an IPv6 literal. */
NETX__SHARED void netx__host_port(const char *host, unsigned port, char *buf, size_t cap);

/* trace.c ---------------------------------------------------------------- */

/* Where trace lines go, NULL when tracing is off (the common case). */
extern NETX__SHARED _Atomic(FILE *) netx__trace_out;

NETX__SHARED FILE *netx__trace_slow(FILE *seen);

/*
 * The stream to trace to, or NULL. Off, this is one relaxed load and one
 * predictable branch: cheap enough for every send and recv.
 */
static inline FILE *netx__tracing(void)
{
    FILE *out = atomic_load_explicit(&netx__trace_out, memory_order_relaxed);
    if (out == NULL) {
        return NULL;
    }
    return netx__trace_slow(out);
}

/*
 * Write one line "netx: <step> = <rc>" (or "= -1 (<strerror(err)>)" when rc
 * is -1), then extra if not NULL. Keeps errno.
 */
NETX__SHARED void netx__trace_step(FILE *out, long rc, int err, const char *extra, const char *fmt, ...)
    NETX__PRINTF(5, 6);

/* Write one line "netx: <text>" as formatted. Keeps errno. */
NETX__SHARED void netx__trace_text(FILE *out, const char *fmt, ...) NETX__PRINTF(2, 3);

/* Names for trace lines: "AF_INET", "SOCK_STREAM", "SHUT_WR". */
const char *netx__family_name(int family);
const char *netx__type_name(int type);

/* stop.c ----------------------------------------------------------------- */

struct pollfd;

/* 0 while no stop is armed, else MSG_DONTWAIT: or-ed into the flags of
 * every send and receive, so a call that would block returns and waits in
 * netx__poll() instead, where a stop reaches it. */
extern _Atomic int netx__stop_flags;

/*
 * poll() fds[0..n-1] until deadline (netx__now_ms() time; -1: none), also
 * watching the stop pipe in fds[n] when a stop is armed: the caller's array
 * must have n + 1 elements. Returns the number ready, 0 at the deadline, or
 * -1 with errno set: ECANCELED when a stop signal ends the wait (or the
 * grace period of a drain is over), else poll's own. Retries EINTR with the
 * same deadline. Does not record an error.
 */
NETX__SHARED int netx__poll(struct pollfd *fds, int n, long long deadline);

/*
 * The same, for a wait that is not a poll() (netx_poller's epoll): begin
 * once, then before each wait netx__stop_next() returns -2 with errno
 * ECANCELED if the wait must end, -1 when no stop is armed, else the stop
 * pipe to watch beside the caller's descriptors (readable: ECANCELED). It
 * also shortens *until (netx__now_ms() time, -1: none) to the end of a
 * drain's grace period; a wait that ends then, and not at the caller's own
 * deadline, asks netx__stop_next() again.
 */
struct netx__stop_watch {
    int armed; /* a stop was armed when the wait began */
    int began; /* the stop's phase then */
};
void netx__stop_begin(struct netx__stop_watch *w);
int netx__stop_next(const struct netx__stop_watch *w, long long *until);

/* Milliseconds from now until `until` (netx__now_ms() time), for poll() and
 * epoll_wait(): -1 for none, 0 if passed, at most INT_MAX. */
int netx__wait_ms(long long until);

/* For a sentence: "stopped by SIGINT" into buf, 1; 0 if no stop came. */
int netx__stop_cause(char *buf, size_t cap);

/* "SIGINT" for the common signals, else NULL. */
const char *netx__signal_name(int signo);

/* Back to RUNNING, with the pipes emptied: for the tests only, which need
 * many stops in one process. */
void netx__stop_reset(void);

/* socket.c --------------------------------------------------------------- */

/* Make fd close-on-exec and SIGPIPE-free where the system needs a separate
 * call for that. Returns 0 or -1 with errno set. */
int netx__prepare_fd(int fd);

/* Milliseconds on a monotonic clock. */
NETX__SHARED long long netx__now_ms(void);

/* connect(2) with a deadline, EINTR handled as POSIX says; does not record
 * an error. timeout_ms <= 0: no deadline. */
int netx__connect_wait(int fd, const netx_addr *addr, int timeout_ms);

/* The two halves of it, for a caller that waits for several attempts in one
 * poll(): connect(2) once, returning 0 when connected at once, EINPROGRESS
 * while the attempt is under way (EINTR counts as that, as POSIX says), else
 * the errno of the failure; and, once poll() says the attempt is over, its
 * outcome from SO_ERROR: 0 or the errno. Neither records an error. */
int netx__connect_start(int fd, const netx_addr *addr);
int netx__connect_result(int fd);

/* io.c ------------------------------------------------------------------- */

/* The receive (SO_RCVTIMEO) or send (SO_SNDTIMEO) timeout set on fd, in
 * milliseconds; -1 if none. */
NETX__SHARED int netx__socket_timeout_ms(int fd, int name);

/* If a blocking socket says EAGAIN, its timeout expired: ETIMEDOUT. */
int netx__timeout_errno(int fd, int err);

/* Wait until fd is ready for events (POLLIN or POLLOUT), for at most the
 * socket's own receive or send timeout. 0 when ready, -1 with errno set
 * (ETIMEDOUT on expiry). Does not record an error. */
int netx__wait_ready(int fd, short events);

/* One send or sendto (to != NULL), and one recvmsg (filling from when not
 * NULL): EINTR retried, errors recorded, traced. */
ssize_t netx__send_once(int fd, const void *buf, size_t len, const netx_addr *to);
ssize_t netx__recv_once(int fd, void *buf, size_t cap, netx_addr *from);

/* One send that never waits, whatever the socket's mode (MSG_DONTWAIT):
 * the count, or -1 with errno EAGAIN (not recorded: the caller keeps the
 * bytes) or another errno (recorded). EINTR retried; traced. */
ssize_t netx__send_nowait(int fd, const void *buf, size_t len);

/* addr.c ----------------------------------------------------------------- */

/* Resolve for a socket type; passive means wildcard for a NULL host.
 * Records the error. Returns the count or -1. */
int netx__resolve(const char *host, uint16_t port, int socktype, netx_addr *out, int max);

/* The errno documented for a resolver failure (netx.h, docs/errors.md). */
int netx__gai_errno(int gai, int sys_err);

/* The address without its port, for messages: "127.0.0.1", "::1". */
NETX__SHARED void netx__address_only(const netx_addr *a, char *buf, size_t cap);

/* Reorder addresses so IPv4 ones come first, keeping the order within each
 * family. */
void netx__ipv4_first(netx_addr *addrs, int n);

/* unix.c ----------------------------------------------------------------- */

/* Fill out with the Unix address of path ("/run/x.sock", or "@name" in
 * Linux's abstract namespace). Records "<step> ...: <why>" on failure
 * (ENAMETOOLONG: longer than sun_path holds; never cut short). */
int netx__unix_addr(const char *path, netx_addr *out, const char *step);

/* "unix:/run/x.sock", "unix:@name", "unix:(unnamed)": what
 * netx_addr_format() writes for AF_UNIX; snprintf's return value. */
int netx__format_unix(const netx_addr *addr, char *buf, size_t cap);

/* tcp.c ------------------------------------------------------------------ */

/* The shared worker of netx_tcp_listen() and netx_udp_bind(): a socket of
 * type bound to host:port (listening when type is SOCK_STREAM). */
int netx__open_bound(const char *host, uint16_t port, int type, int backlog);

#endif /* NETX_INTERNAL_H */
