/*
 * netx.h - libnetx, a small socket library that follows the steps of
 * network programming: create a socket, bind or connect, accept, exchange
 * data, close.
 *
 * This header is the API reference; the man pages are made from it, one per
 * function (netx(3) lists them). Functions are grouped under the step of
 * the article they belong to, in the order a learner meets them. The
 * article has a workflow of five steps - workflow step 1, create a socket;
 * 2, bind or connect; 3, accept; 4, exchange data; 5, close - and a guide
 * of seven, whose guide step 5 adds threads, guide step 6 UDP and guide
 * step 7 TLS. TLS is a library of its own, libnetx_tls: netx_tls.h,
 * netx_tls(3).
 *
 * Conventions that hold for every function below:
 *
 *  - Sockets are plain file descriptors (int), as returned by socket(2).
 *  - A function that fails returns -1 (or NULL) and sets errno, exactly like
 *    the system call it wraps. It also fills this thread's error record, so
 *    netx_last_error() can tell you in one sentence which step failed, on
 *    which address, and why. A successful call leaves errno and the record
 *    alone.
 *  - Resolver failures (unknown host, ...) set errno to the values listed
 *    under netx_resolve(); docs/errors.md has the full table.
 *  - EINTR is retried inside the library: no function here fails with EINTR.
 *    To let Ctrl-C end a call that waits, use netx_stop_on(): the call then
 *    fails with ECANCELED.
 *  - No function raises SIGPIPE or changes a signal's disposition, except
 *    netx_stop_on(), which installs a handler for the signal it is given.
 *  - Every descriptor the library creates is close-on-exec.
 *  - Every function may be called from any thread. The error record is per
 *    thread. Two threads may use the same socket only as the system calls
 *    allow (one sending while another receives is fine); a netx_reader
 *    belongs to one thread at a time.
 *  - The library never prints, except in trace mode (netx_trace()) and when
 *    asked to (netx_perror(), netx_log()), and never exits.
 *  - Text from outside (a host name, a port as typed) is quoted in sentences
 *    and trace lines with its control characters escaped ("\n", "\x1b"), so
 *    every sentence is one line.
 *
 * ENVIRONMENT
 *   NETX_TRACE   set to anything but "" or "0" (NETX_TRACE=1): trace mode
 *                on standard error, one line per step, from the first step
 *                the library takes (see netx_trace(), which overrides it).
 *   NETX_POLLER  "poll" or "epoll": the backend netx_poller_new() uses
 *                (poll(2) on Linux too, to compare the two); unset or
 *                empty: the best the system has, epoll on Linux. Any other
 *                value makes netx_poller_new() fail with EINVAL.
 *
 * EXAMPLE
 *   The article's workflow in one server: it greets each client on
 *   127.0.0.1:12345, one at a time, until Ctrl-C. Build it with
 *   cc -std=c11 hello.c $(pkg-config --cflags --libs netx), run it, and
 *   try it with nc 127.0.0.1 12345.
 *
 *     #define _POSIX_C_SOURCE 200809L
 *     #include <netx.h>
 *     #include <signal.h>
 *     #include <stdio.h>
 *
 *     int main(void)
 *     {
 *         netx_stop_on(SIGINT); // Ctrl-C ends the wait in netx_accept()
 *         // Workflow steps 1 and 2: create a socket, bind it, listen.
 *         int server = netx_tcp_listen("127.0.0.1", 12345, 0);
 *         if (server == -1) {
 *             netx_perror("hello");
 *             return 1;
 *         }
 *         for (;;) {
 *             netx_addr peer;
 *             int client = netx_accept(server, &peer); // step 3
 *             if (client == -1) {
 *                 break; // Ctrl-C (ECANCELED), or a failure
 *             }
 *             char who[NETX_ADDRSTRLEN], msg[NETX_ADDRSTRLEN + 16];
 *             netx_addr_format(&peer, who, sizeof who);
 *             int len = snprintf(msg, sizeof msg, "hello, %s\n", who);
 *             netx_send_all(client, msg, (size_t)len); // step 4
 *             netx_close(client);                      // step 5
 *         }
 *         int failed = !netx_stopping();
 *         if (failed) {
 *             netx_perror("hello");
 *         }
 *         netx_close(server);
 *         return failed;
 *     }
 *
 * SEE ALSO
 *   netx_tls(3); socket(2), socket(7), ip(7), ipv6(7), tcp(7), udp(7),
 *   unix(7), getaddrinfo(3), poll(2), epoll(7).
 */
#ifndef NETX_H
#define NETX_H

#include <stddef.h>     /* size_t */
#include <stdint.h>     /* uint16_t */
#include <stdio.h>      /* FILE, for netx_trace() */
#include <sys/socket.h> /* struct sockaddr_storage, socklen_t */
#include <sys/types.h>  /* ssize_t */

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__) || defined(__clang__)
#define NETX_API __attribute__((visibility("default")))
#else
#define NETX_API
#endif

#define NETX_VERSION_MAJOR 0
#define NETX_VERSION_MINOR 1
#define NETX_VERSION_PATCH 0

/* ------------------------------------------------------------------------
 * Addresses
 * ------------------------------------------------------------------------ */

/*
 * netx_addr - one socket address, IPv4 or IPv6, with its port.
 *
 * It is large enough for any address family (struct sockaddr_storage), so it
 * can live on the stack or inside your own structures. Pass
 * (struct sockaddr *)&a.ss and a.len straight to any system call that takes
 * an address.
 *
 * EXAMPLE: see netx_addr_parse()
 */
typedef struct netx_addr {
    struct sockaddr_storage ss; /* the address itself */
    socklen_t len;              /* how many bytes of ss are in use */
} netx_addr;

/*
 * NETX_ADDRSTRLEN - a buffer of this size holds any string that
 * netx_addr_format() writes, terminating NUL included
 * ("[ffff:...:ffff%interface]:65535", or "unix:" and a socket's path).
 */
#define NETX_ADDRSTRLEN 128

/*
 * netx_resolve - turn a host name and a port into socket addresses.
 *
 *   host   a name ("localhost", "example.org") or a numeric address
 *          ("127.0.0.1", "::1", "[::1]"). NULL means "every local
 *          interface": the wildcard addresses a server binds to.
 *   port   the port, in host byte order; 0 is allowed.
 *   out    an array that receives up to max addresses, in the order the
 *          system's resolver prefers them (getaddrinfo(3) order), without
 *          duplicates.
 *   max    the number of elements in out; at least 1.
 *
 * RETURN VALUE
 *   The number of addresses stored (1 to max), or -1 with errno set.
 *   A name with more than max addresses yields the first max.
 *
 * ERRORS
 *   ENOENT   the name does not exist, or has no address (EAI_NONAME,
 *            EAI_NODATA, EAI_ADDRFAMILY). A name in the domain reserved
 *            for names that never exist ("no-such-host.invalid", RFC 6761)
 *            gets EAI_NONAME at once, without asking the resolver - which
 *            would ask a DNS server.
 *   EAGAIN   the resolver failed for now; trying later may work (EAI_AGAIN).
 *   ENOMEM   out of memory (EAI_MEMORY).
 *   EINVAL   out is NULL, max is less than 1, or the resolver refused the
 *            request (EAI_BADFLAGS, EAI_SERVICE, EAI_SOCKTYPE); or host
 *            has a port in it ("127.0.0.1:80", "[::1]:80"), said at once
 *            without asking the resolver: "resolve 127.0.0.1:80: a port in
 *            the host name: give the host and the port apart".
 *   EAFNOSUPPORT  the address family is not supported (EAI_FAMILY).
 *   EIO      any other resolver failure (EAI_FAIL, ...).
 *   Any errno of the system itself when the resolver reports EAI_SYSTEM.
 *   netx_last_gai_error() returns the resolver's own EAI_* code, and
 *   netx_last_error() carries its gai_strerror(3) text:
 *   "resolve no-such-host.invalid: Name or service not known".
 *
 * BLOCKING
 *   Blocks while the resolver works (DNS may take seconds; numeric
 *   addresses never block).
 *
 * THREAD SAFETY
 *   Safe from any thread.
 *
 * EXAMPLE
 *     // Print every address of a name, in the order the resolver prefers.
 *     int print_addresses(const char *host, uint16_t port)
 *     {
 *         netx_addr addrs[8];
 *         int n = netx_resolve(host, port, addrs, 8);
 *         if (n == -1) {
 *             netx_perror(NULL); // "resolve HOST: Name or service not known"
 *             return -1;
 *         }
 *         for (int i = 0; i < n; i++) {
 *             char text[NETX_ADDRSTRLEN];
 *             if (netx_addr_format(&addrs[i], text, sizeof text) != -1) {
 *                 printf("%s\n", text); // "[::1]:80", "127.0.0.1:80"
 *             }
 *         }
 *         return n;
 *     }
 */
NETX_API int netx_resolve(const char *host, uint16_t port, netx_addr *out, int max);

/*
 * netx_addr_parse - parse a numeric "address:port" string, without DNS.
 *
 *   text   "127.0.0.1:8080", "[::1]:8080" or "[fe80::1%eth0]:8080". The
 *          brackets around an IPv6 address are required, the port is
 *          required and must be 0 to 65535 in decimal. A Unix socket is
 *          "unix:/run/app.sock" (or "unix:@name" in Linux's abstract
 *          namespace).
 *   out    receives the address.
 *
 * RETURN VALUE
 *   0, or -1 with errno set.
 *
 * ERRORS
 *   EINVAL   text or out is NULL, or text is not of that form.
 *   ENAMETOOLONG  a Unix path too long for the address.
 *
 * BLOCKING, THREAD SAFETY
 *   Never blocks; safe from any thread.
 *
 * EXAMPLE
 *     // Connect to an address typed as "127.0.0.1:8080", "[::1]:8080" or
 *     // "unix:/run/app.sock", without DNS, waiting 5 seconds at most.
 *     int dial(const char *text)
 *     {
 *         netx_addr addr;
 *         if (netx_addr_parse(text, &addr) == -1) {
 *             return -1;
 *         }
 *         int fd = netx_socket(addr.ss.ss_family, SOCK_STREAM);
 *         if (fd == -1) {
 *             return -1;
 *         }
 *         if (netx_connect(fd, &addr, 5000) == -1) {
 *             netx_close(fd); // a close that works leaves errno alone
 *             return -1;
 *         }
 *         return fd;
 *     }
 */
NETX_API int netx_addr_parse(const char *text, netx_addr *out);

/*
 * netx_parse_port - read a port number given as text, as on a command line.
 *
 *   text  one to five decimal digits, 0 to 65535 ("8080", "00080"); no
 *         sign, no spaces, no more digits ("000080" is refused).
 *   out   receives the port.
 *
 * RETURN VALUE
 *   0, or -1 with errno EINVAL, and a sentence that quotes the text:
 *   port "70000": not a number from 0 to 65535: Invalid argument
 *
 * BLOCKING, THREAD SAFETY
 *   Never blocks; safe from any thread.
 *
 * EXAMPLE
 *     // "-p 8080" on a command line: anything but a port is refused.
 *     int port_option(const char *arg, uint16_t *port)
 *     {
 *         // -p: port "80a": not a number from 0 to 65535: Invalid argument
 *         if (netx_parse_port(arg, port) == -1) {
 *             netx_perror("-p");
 *             return -1;
 *         }
 *         return 0;
 *     }
 */
NETX_API int netx_parse_port(const char *text, uint16_t *out);

/*
 * netx_addr_format - write an address as text: "127.0.0.1:80", "[::1]:80".
 *
 *   addr   the address to format.
 *   buf    where to write; NETX_ADDRSTRLEN bytes are always enough.
 *   cap    the size of buf in bytes.
 *
 * An IPv4 address seen through a dual-stack IPv6 socket (::ffff:127.0.0.1)
 * is written the way people write it: "127.0.0.1:51234". A Unix socket is
 * "unix:/run/app.sock", "unix:@name" (abstract), or "unix:(unnamed)" for a
 * client that bound no name. The output can be read back with
 * netx_addr_parse() (but for "unix:(unnamed)").
 *
 * RETURN VALUE
 *   The length of the string written (without its NUL), or -1 with errno
 *   set; on failure buf holds an empty string when cap > 0.
 *
 * ERRORS
 *   EINVAL        addr or buf is NULL.
 *   EAFNOSUPPORT  addr is not IPv4, IPv6 or Unix.
 *   ENOSPC        cap is too small for the text.
 *
 * BLOCKING, THREAD SAFETY
 *   Never blocks (no reverse DNS); safe from any thread.
 *
 * EXAMPLE: see netx_resolve()
 */
NETX_API int netx_addr_format(const netx_addr *addr, char *buf, size_t cap);

/*
 * netx_addr_port - the port of an address, in host byte order.
 *
 * RETURN VALUE
 *   0 to 65535, or -1 with errno EINVAL (NULL) or EAFNOSUPPORT (not IPv4
 *   or IPv6).
 *
 * EXAMPLE
 *     // The port a client connected from, or -1.
 *     int peer_port(int fd)
 *     {
 *         netx_addr peer;
 *         if (netx_peer_addr(fd, &peer) == -1) {
 *             return -1;
 *         }
 *         return netx_addr_port(&peer);
 *     }
 */
NETX_API int netx_addr_port(const netx_addr *addr);

/*
 * netx_peer_addr - the address of the other end of a connected socket
 * (getpeername(2)).
 *
 * RETURN VALUE
 *   0, or -1 with errno set: EBADF, ENOTSOCK, ENOTCONN (not connected, or
 *   the peer has already gone), EINVAL (out is NULL).
 *
 * EXAMPLE
 *     // Print where a connection comes from and where it arrives; on a
 *     // server: "127.0.0.1:40000 -> 127.0.0.1:8080".
 *     int print_ends(int fd)
 *     {
 *         netx_addr local, peer;
 *         char l[NETX_ADDRSTRLEN], p[NETX_ADDRSTRLEN];
 *         if (netx_local_addr(fd, &local) == -1 ||
 *             netx_peer_addr(fd, &peer) == -1 ||
 *             netx_addr_format(&local, l, sizeof l) == -1 ||
 *             netx_addr_format(&peer, p, sizeof p) == -1) {
 *             return -1;
 *         }
 *         printf("%s -> %s\n", p, l);
 *         return 0;
 *     }
 */
NETX_API int netx_peer_addr(int fd, netx_addr *out);

/*
 * netx_local_addr - the address a socket is bound to (getsockname(2)).
 *
 * RETURN VALUE
 *   0, or -1 with errno set: EBADF, ENOTSOCK, EINVAL (out is NULL).
 *
 * EXAMPLE: see netx_peer_addr()
 */
NETX_API int netx_local_addr(int fd, netx_addr *out);

/*
 * netx_local_port - the port a socket is bound to. After listening on port
 * 0 this tells you which port the system picked.
 *
 * RETURN VALUE
 *   The port (1 to 65535, or 0 for an unbound socket), or -1 with errno set
 *   (EBADF, ENOTSOCK, EAFNOSUPPORT).
 *
 * EXAMPLE
 *     // Listen on a port the system picks, and say which one.
 *     int listen_anywhere(void)
 *     {
 *         int server = netx_tcp_listen("127.0.0.1", 0, 0);
 *         if (server == -1) {
 *             return -1;
 *         }
 *         printf("listening on port %d\n", netx_local_port(server));
 *         return server;
 *     }
 */
NETX_API int netx_local_port(int fd);

/* ------------------------------------------------------------------------
 * Workflow step 1: create a socket
 * ------------------------------------------------------------------------ */

/*
 * netx_socket - create a socket (socket(2)), close-on-exec, and on systems
 * without MSG_NOSIGNAL set so that writing to a closed peer does not raise
 * SIGPIPE.
 *
 *   family  AF_INET (IPv4) or AF_INET6 (IPv6); AF_UNIX for a Unix domain
 *           socket.
 *   type    SOCK_STREAM (TCP) or SOCK_DGRAM (UDP).
 *
 * RETURN VALUE
 *   The new descriptor, or -1 with errno set.
 *
 * ERRORS
 *   Those of socket(2): EAFNOSUPPORT, EPROTONOSUPPORT, EINVAL, EMFILE,
 *   ENFILE, ENOBUFS, ENOMEM, EACCES.
 *
 * BLOCKING, THREAD SAFETY
 *   Never blocks; safe from any thread.
 *
 * EXAMPLE
 *     // Workflow steps 1 and 2 by hand. netx_tcp_listen() does the same,
 *     // and more: SO_REUSEADDR, and every address of a name.
 *     int listen_by_hand(uint16_t port)
 *     {
 *         netx_addr addr;
 *         if (netx_resolve("127.0.0.1", port, &addr, 1) == -1) {
 *             return -1;
 *         }
 *         int fd = netx_socket(addr.ss.ss_family, SOCK_STREAM); // step 1
 *         if (fd == -1) {
 *             return -1;
 *         }
 *         // Step 2. "listen: bind to 127.0.0.1:8080 (127.0.0.1): Address
 *         // already in use" when another socket has the port.
 *         if (netx_bind(fd, &addr) == -1 || netx_listen(fd, 0) == -1) {
 *             netx_perror("listen");
 *             netx_close(fd);
 *             return -1;
 *         }
 *         return fd;
 *     }
 */
NETX_API int netx_socket(int family, int type);

/* ------------------------------------------------------------------------
 * Workflow step 2: bind or connect
 * ------------------------------------------------------------------------ */

/*
 * netx_bind - give a socket its local address (bind(2)).
 *
 * RETURN VALUE
 *   0, or -1 with errno set.
 *
 * ERRORS
 *   EADDRINUSE     another socket has the address; with a listener you can
 *                  also expect this from netx_listen() on some systems.
 *   EADDRNOTAVAIL  the address is not one of this machine's.
 *   EACCES         the port is privileged (below 1024) and you are not.
 *   EINVAL         addr is NULL, or the socket is already bound.
 *   EBADF, ENOTSOCK, EAFNOSUPPORT.
 *
 * EXAMPLE: see netx_socket()
 */
NETX_API int netx_bind(int fd, const netx_addr *addr);

/*
 * netx_listen - mark a bound TCP socket as accepting connections
 * (listen(2)).
 *
 *   backlog  how many finished connections may wait for netx_accept();
 *            0 or less picks the system's maximum (SOMAXCONN).
 *
 * RETURN VALUE
 *   0, or -1 with errno set (EADDRINUSE, EBADF, ENOTSOCK, EOPNOTSUPP).
 *
 * EXAMPLE: see netx_socket()
 */
NETX_API int netx_listen(int fd, int backlog);

/*
 * netx_connect - connect a socket to one address (connect(2)), waiting at
 * most timeout_ms milliseconds.
 *
 *   timeout_ms  the longest wait. 0 or less: the socket's own send timeout
 *               (netx_set_timeout()) if it has one, else as long as the
 *               system waits (minutes for an unanswered SYN).
 *
 * The socket's blocking mode is the same afterwards as before. If a signal
 * interrupts the wait, the connection attempt carries on (as POSIX says it
 * does after connect(2) fails with EINTR) and netx_connect() keeps waiting
 * for its outcome.
 *
 * RETURN VALUE
 *   0 once connected, or -1 with errno set.
 *
 * ERRORS
 *   ETIMEDOUT      no answer within timeout_ms (or the socket's send
 *                  timeout, or the system's limit).
 *   ECANCELED      a stop signal (netx_stop_on()) ended the wait; the
 *                  attempt may still be under way: close the socket.
 *   ECONNREFUSED   nothing listens there.
 *   ENETUNREACH, EHOSTUNREACH  no route to the address.
 *   EADDRNOTAVAIL  no local port left.
 *   EINVAL         addr is NULL. Also EBADF, ENOTSOCK, EISCONN, EAFNOSUPPORT.
 *
 * BLOCKING
 *   Blocks up to timeout_ms.
 *
 * EXAMPLE: see netx_addr_parse()
 */
NETX_API int netx_connect(int fd, const netx_addr *addr, int timeout_ms);

/*
 * netx_connect_start - start connecting fd to addr without waiting, for an
 * event loop (a proxy dialling its backends, say): the first half of a
 * non-blocking connect(2). fd is made non-blocking and stays so.
 *
 * A TCP connection takes a round trip to set up, and nothing in an event
 * loop may wait for one. So: start it, register fd with the poller for
 * NETX_WRITABLE, and when it is writable call netx_connect_finish(), which
 * reads the outcome. A connection that can be made at once (Unix sockets,
 * sometimes loopback) is made at once.
 *
 * RETURN VALUE
 *   0 when connected already; -1 with errno EINPROGRESS when under way
 *   (not a failure: wait for NETX_WRITABLE); -1 with another errno when it
 *   failed at once, with the sentence "connect to 127.0.0.1:9002: Network
 *   is unreachable".
 *
 * ERRORS
 *   EINPROGRESS   under way (see above).
 *   ECONNREFUSED, ENETUNREACH, EADDRNOTAVAIL, EAFNOSUPPORT, EBADF, EINVAL
 *   (addr is NULL): as for netx_connect().
 *
 * EXAMPLE
 *     #include <errno.h>
 *
 *     // In an event loop: start connecting, and hear of the outcome as
 *     // NETX_WRITABLE, without waiting for the round trip.
 *     int dial_start(netx_poller *p, int fd, const netx_addr *to)
 *     {
 *         if (netx_connect_start(fd, to) == -1 && errno != EINPROGRESS) {
 *             return -1; // it failed at once
 *         }
 *         return netx_poller_add(p, fd, NETX_WRITABLE, NULL);
 *     }
 *
 *     // When the poller reports fd: 1 connected, 0 not yet, -1 failed.
 *     int dial_finish(netx_poller *p, int fd, const netx_addr *to)
 *     {
 *         if (netx_connect_finish(fd, to) == 0) {
 *             int rc = netx_poller_mod(p, fd, NETX_READABLE, NULL);
 *             return rc == 0 ? 1 : -1;
 *         }
 *         if (errno == EINPROGRESS) {
 *             return 0;
 *         }
 *         netx_perror("backend"); // backend: connect to 127.0.0.1:9002: ...
 *         netx_poller_del(p, fd);
 *         netx_close(fd);
 *         return -1;
 *     }
 */
NETX_API int netx_connect_start(int fd, const netx_addr *addr);

/*
 * netx_connect_finish - the outcome of a connect started by
 * netx_connect_start(), once the poller says fd is writable (or has an
 * error). addr is only for the sentence (NULL is allowed).
 *
 * RETURN VALUE
 *   0 when connected; -1 with errno EINPROGRESS when not over yet (wait for
 *   writability again); -1 with the attempt's errno when it failed, read
 *   from SO_ERROR, with the library's sentence:
 *   "connect to 127.0.0.1:9002: Connection refused".
 *
 * ERRORS
 *   ECONNREFUSED  nothing listens there.
 *   ETIMEDOUT     the system gave up (the caller's own deadline is the
 *                 caller's: close fd when it passes).
 *   ENETUNREACH, EHOSTUNREACH, and the others of netx_connect().
 *
 * EXAMPLE: see netx_connect_start()
 */
NETX_API int netx_connect_finish(int fd, const netx_addr *addr);

/* ------------------------------------------------------------------------
 * Workflow steps 1-3 in one call, done right
 * ------------------------------------------------------------------------ */

/*
 * netx_tcp_listen - create a TCP socket, bind it to host:port with
 * SO_REUSEADDR and listen: a listening socket, ready for netx_accept().
 *
 *   host     the address to listen on. NULL or "" listens on every
 *            interface, IPv6 and IPv4 together (dual-stack) where the system
 *            has IPv6, and IPv4 alone where it has not.
 *            A name with both IPv4 and IPv6 addresses ("localhost") is
 *            bound on its first IPv4 address: a client that dials the name
 *            tries all of its addresses and reaches it, and so does one that
 *            dials 127.0.0.1, as the article's Python client does. If that
 *            address cannot exist here (EADDRNOTAVAIL, EAFNOSUPPORT), the
 *            others are tried in the resolver's order; any other failure,
 *            such as a port in use, is the answer.
 *   port     the port; 0 lets the system pick a free one (ask it with
 *            netx_local_port()).
 *   backlog  as for netx_listen(); 0 or less picks SOMAXCONN.
 *
 * RETURN VALUE
 *   The listening descriptor, or -1 with errno set. On failure nothing is
 *   left open.
 *
 * ERRORS
 *   Those of netx_resolve(), netx_socket(), netx_bind() (EADDRINUSE,
 *   EACCES, EADDRNOTAVAIL) and netx_listen(). When every address fails, the
 *   error is the last one's.
 *
 * BLOCKING
 *   Only while resolving host.
 *
 * EXAMPLE
 *     // Wait for one client on port 8080 of every interface, and greet it.
 *     int greet_one(void)
 *     {
 *         int server = netx_tcp_listen(NULL, 8080, 0);
 *         if (server == -1) {
 *             // listen: bind to *:8080 (::): Address already in use
 *             netx_perror("listen");
 *             return -1;
 *         }
 *         netx_addr peer;
 *         int client = netx_accept(server, &peer);
 *         netx_close(server);
 *         if (client == -1) {
 *             netx_perror("accept");
 *             return -1;
 *         }
 *         char who[NETX_ADDRSTRLEN];
 *         netx_addr_format(&peer, who, sizeof who);
 *         printf("greeting %s\n", who);
 *         int rc = netx_send_all(client, "hello\n", 6);
 *         netx_close(client);
 *         return rc;
 *     }
 */
NETX_API int netx_tcp_listen(const char *host, uint16_t port, int backlog);

/*
 * netx_tcp_connect - resolve host and connect to the first of its addresses
 * that answers.
 *
 *   host        the name or numeric address to dial; not NULL.
 *   port        the port, 1 to 65535.
 *   timeout_ms  one deadline for connecting, counted from when host is
 *               resolved. 0 or less: no deadline of our own; each attempt
 *               lasts as long as the system lets it (minutes for an
 *               unanswered SYN).
 *
 * The addresses race, as RFC 8305 ("Happy Eyeballs") describes. They are
 * tried in the resolver's order (its first 16) with the families
 * alternated, starting with the family of its first address: IPv6, IPv4,
 * IPv6, ... The first attempt starts at once. The next starts when an
 * attempt fails, or when the one started last has had 250 ms without an
 * answer. Near the deadline that wait is shorter: never more than the time
 * left divided by the number of addresses from the one just started to the
 * last, so every address is started before the deadline (with two
 * addresses and a timeout of 1 ms, both start at once). Earlier attempts
 * go on meanwhile; the first to connect wins, and every other is closed.
 * A name with one address is simply netx_connect() with the whole timeout.
 *
 * With tracing on (netx_trace()), each attempt shows when it started, how
 * it ended, and which one won:
 *
 *   netx: connect(3, [::1]:80) started
 *   netx: connect(4, 127.0.0.1:80) started, 250 ms after the first
 *   netx: connect(4, 127.0.0.1:80) = 0  first to connect, after 251 ms
 *   netx: connect(3, [::1]:80) abandoned: fd 4 connected first
 *
 * RETURN VALUE
 *   A connected, blocking TCP socket, or -1 with errno set. On failure
 *   nothing is left open, and the error is that of the last attempt to
 *   fail, with its address: "connect to localhost:12345 (127.0.0.1):
 *   Connection refused". At the deadline the attempts still waiting fail
 *   with ETIMEDOUT, and the one started last is reported.
 *
 * ERRORS
 *   Those of netx_resolve(), netx_socket() and netx_connect(); ECANCELED
 *   when a stop signal (netx_stop_on()) ends the wait; EINVAL when host is
 *   NULL or port is 0.
 *
 * BLOCKING
 *   Up to timeout_ms, plus the time the resolver takes.
 *
 * EXAMPLE
 *     #include <string.h>
 *
 *     // Ask a line-based server a question, and print its one-line answer.
 *     int ask(const char *host, uint16_t port, const char *question)
 *     {
 *         // ask: connect to localhost:12345 (127.0.0.1): Connection refused
 *         int fd = netx_tcp_connect(host, port, 5000);
 *         if (fd == -1) {
 *             netx_perror("ask");
 *             return -1;
 *         }
 *         char storage[4096], answer[1024];
 *         netx_reader r;
 *         netx_reader_init(&r, fd, storage, sizeof storage);
 *         ssize_t n = -1;
 *         if (netx_send_all(fd, question, strlen(question)) == 0) {
 *             n = netx_read_line(&r, answer, sizeof answer);
 *         }
 *         if (n > 0) {
 *             fputs(answer, stdout);
 *         }
 *         netx_close(fd);
 *         return n > 0 ? 0 : -1;
 *     }
 */
NETX_API int netx_tcp_connect(const char *host, uint16_t port, int timeout_ms);

/* ------------------------------------------------------------------------
 * Local connections: Unix domain sockets
 * ------------------------------------------------------------------------ */

/*
 * netx_unix_listen - a listening Unix domain stream socket at path: the
 * socket, bind and listen of netx_tcp_listen(), named by a file instead of
 * an address and a port. Local servers sit behind these (a web application
 * behind nginx); the file's permissions say who may connect.
 *
 *   path     "/run/app.sock"; or, on Linux, "@name": the abstract
 *            namespace, a name with no file, gone with its last socket.
 *   backlog  as for netx_listen().
 *
 * A socket file left behind by a server that died - nobody accepts on it -
 * is removed and bound again. A live one is not touched: EADDRINUSE. A file
 * that is not a socket is never removed. Remove the file yourself when the
 * server ends (unlink(path)), or the next start finds it stale.
 *
 * netx_accept(), netx_peer_addr(), the reader and the writer work on these
 * sockets as on TCP ones; addresses are written "unix:/run/app.sock".
 *
 * RETURN VALUE
 *   The listening descriptor, or -1 with errno set; nothing left open on
 *   failure.
 *
 * ERRORS
 *   ENAMETOOLONG  path is longer than a Unix address holds (107 bytes on
 *                 Linux): an error, never cut short.
 *   EADDRINUSE    a server is listening at path already, or path is a file
 *                 that is not a socket.
 *   ENOENT, EACCES  the directory does not exist, or may not be written.
 *   EINVAL        path is NULL or empty.
 *   EAFNOSUPPORT  "@name" on a system without an abstract namespace.
 *
 * EXAMPLE
 *     #include <unistd.h>
 *
 *     // A local service at /tmp/greeter.sock: greet one client, then go.
 *     int greeter(void)
 *     {
 *         int server = netx_unix_listen("/tmp/greeter.sock", 0);
 *         if (server == -1) {
 *             netx_perror("greeter");
 *             return -1;
 *         }
 *         int client = netx_accept(server, NULL);
 *         if (client != -1) {
 *             netx_send_all(client, "hello\n", 6);
 *             netx_close(client);
 *         }
 *         netx_close(server);
 *         unlink("/tmp/greeter.sock"); // the file is ours to remove
 *         return client == -1 ? -1 : 0;
 *     }
 *
 *     // Its client: what the greeter says, in buf.
 *     ssize_t greeter_client(char *buf, size_t cap)
 *     {
 *         int fd = netx_unix_connect("/tmp/greeter.sock", 1000);
 *         if (fd == -1) {
 *             return -1; // ENOENT: no greeter has started
 *         }
 *         ssize_t n = netx_recv_all(fd, buf, cap);
 *         netx_close(fd);
 *         return n;
 *     }
 */
NETX_API int netx_unix_listen(const char *path, int backlog);

/*
 * netx_unix_connect - connect to the Unix domain stream socket at path
 * ("/run/app.sock", or "@name"), waiting at most timeout_ms (0 or less: as
 * long as the system does; a full backlog makes a connect wait).
 *
 * RETURN VALUE
 *   A connected, blocking socket, or -1 with errno set:
 *   "unix connect to unix:/run/app.sock: No such file or directory".
 *
 * ERRORS
 *   ENOENT        no socket at path (no server started).
 *   ECONNREFUSED  a socket file nobody accepts on (the server died).
 *   EACCES        the file's permissions do not let us connect.
 *   ENAMETOOLONG, EINVAL  as for netx_unix_listen().
 *   ETIMEDOUT, ECANCELED  as for netx_connect().
 *
 * EXAMPLE: see netx_unix_listen()
 */
NETX_API int netx_unix_connect(const char *path, int timeout_ms);

/* ------------------------------------------------------------------------
 * Workflow step 3: accept
 * ------------------------------------------------------------------------ */

/*
 * netx_accept - take the next connection from a listening socket
 * (accept(2)).
 *
 *   peer  if not NULL, receives the client's address.
 *
 * The new socket is close-on-exec and in blocking mode, whatever the mode of
 * the listening socket. A connection that failed before it was accepted
 * (ECONNABORTED: the client reset it; on Linux also EPROTO, ENETDOWN,
 * ENETUNREACH, EHOSTUNREACH, EHOSTDOWN, ENONET: its network failed) is
 * skipped, and accepting goes on.
 *
 * RETURN VALUE
 *   The connected descriptor, or -1 with errno set.
 *
 * ERRORS
 *   EAGAIN     the listening socket is non-blocking and no connection waits.
 *   ETIMEDOUT  a timeout set with netx_set_timeout() expired.
 *   EMFILE, ENFILE  out of descriptors: the connection stays queued; close
 *              something, or wait, before accepting again (a server that
 *              retries at once spins).
 *   ECANCELED  a stop signal ended the wait (netx_stop_on()).
 *   EINVAL     the socket is not listening.
 *   EOPNOTSUPP the socket is not a TCP socket. Also EBADF, ENOTSOCK, ENOBUFS,
 *              ENOMEM.
 *
 * BLOCKING
 *   Blocks until a client connects, unless the socket is non-blocking.
 *
 * EXAMPLE: see netx_tcp_listen()
 */
NETX_API int netx_accept(int listen_fd, netx_addr *peer);

/*
 * netx_accept_nonblocking - netx_accept() for an event loop: the new
 * socket is non-blocking (and close-on-exec) from the start, in one system
 * call where the system allows it (accept4 with SOCK_NONBLOCK), instead of
 * an accept and two fcntl calls.
 *
 * Give it a non-blocking listener (netx_set_nonblocking()): it then never
 * waits, and says EAGAIN when no client is waiting. (On a blocking one it
 * waits in accept(2) as the system call does, where a stop signal of
 * netx_stop_on() cannot reach it: use netx_accept() there.) Errors are
 * those of netx_accept().
 *
 * EXAMPLE
 *     #include <errno.h>
 *
 *     // The poller says the non-blocking listener is readable: take every
 *     // client that waits, each non-blocking, and watch it.
 *     void accept_all(netx_poller *p, int server)
 *     {
 *         for (;;) {
 *             int client = netx_accept_nonblocking(server, NULL);
 *             if (client == -1) {
 *                 if (errno != EAGAIN) { // EAGAIN: no one else waits
 *                     netx_log("accept: %s", netx_last_error());
 *                 }
 *                 return;
 *             }
 *             if (netx_poller_add(p, client, NETX_READABLE, NULL) == -1) {
 *                 netx_close(client);
 *             }
 *         }
 *     }
 */
NETX_API int netx_accept_nonblocking(int listen_fd, netx_addr *peer);

/* ------------------------------------------------------------------------
 * Workflow step 4: exchange data
 * ------------------------------------------------------------------------ */

/*
 * netx_send - send bytes once (send(2)): the system may take fewer than len.
 *
 * Writing to a peer that has gone fails with EPIPE or ECONNRESET; SIGPIPE is
 * never raised.
 *
 * RETURN VALUE
 *   The number of bytes the system took (1 to len; 0 only when len is 0), or
 *   -1 with errno set.
 *
 * ERRORS
 *   EPIPE, ECONNRESET  the peer closed or reset the connection.
 *   ETIMEDOUT  the send timeout (netx_set_timeout()) expired with nothing
 *              sent.
 *   EAGAIN     the socket is non-blocking and its send buffer is full.
 *   ECANCELED  a stop signal ended the wait (netx_stop_on()).
 *   EMSGSIZE   a datagram too large for the protocol.
 *   ECONNREFUSED  (UDP) an earlier datagram was refused by the peer's port.
 *   EINVAL (buf is NULL with len > 0), EBADF, ENOTSOCK, ENOTCONN.
 *
 * BLOCKING
 *   Until the system takes some bytes, unless non-blocking or timed out.
 *
 * EXAMPLE
 *     // What netx_send_all() does for you: netx_send() may take fewer
 *     // bytes than it is given, so send the rest until none is left.
 *     int send_everything(int fd, const char *p, size_t len)
 *     {
 *         while (len > 0) {
 *             ssize_t n = netx_send(fd, p, len);
 *             if (n == -1) {
 *                 return -1;
 *             }
 *             p += n;
 *             len -= (size_t)n;
 *         }
 *         return 0;
 *     }
 */
NETX_API ssize_t netx_send(int fd, const void *buf, size_t len);

/*
 * netx_recv - receive bytes once (recv(2)): whatever has arrived, up to cap.
 *
 * RETURN VALUE
 *   The number of bytes received (1 to cap); 0 means the peer closed the
 *   connection (end of stream), or cap is 0 - then it returns at once,
 *   without a system call and without waiting; -1 with errno set on
 *   failure.
 *
 * ERRORS
 *   ECONNRESET  the peer reset the connection.
 *   ETIMEDOUT   the receive timeout expired with nothing received.
 *   EAGAIN      the socket is non-blocking and nothing has arrived.
 *   ECANCELED   a stop signal ended the wait (netx_stop_on()).
 *   EMSGSIZE    (datagram sockets) the datagram was longer than cap. The
 *               first cap bytes are in buf; the rest is gone. Truncation is
 *               never silent.
 *   ECONNREFUSED (connected UDP) the peer's port refused an earlier datagram.
 *   EINVAL (buf is NULL with cap > 0), EBADF, ENOTSOCK, ENOTCONN.
 *
 * BLOCKING
 *   Until something arrives, unless non-blocking or timed out.
 *
 * EXAMPLE
 *     // Workflow step 4: send back every byte the client sends, until it
 *     // closes. netx_recv() returns what has come, however little.
 *     int echo(int fd)
 *     {
 *         char buf[4096];
 *         for (;;) {
 *             ssize_t n = netx_recv(fd, buf, sizeof buf);
 *             if (n <= 0) {
 *                 return (int)n; // 0: the client closed; -1: an error
 *             }
 *             if (netx_send_all(fd, buf, (size_t)n) == -1) {
 *                 return -1;
 *             }
 *         }
 *     }
 */
NETX_API ssize_t netx_recv(int fd, void *buf, size_t cap);

/*
 * netx_send_all - send every one of len bytes, looping over short sends.
 *
 * On a non-blocking socket it waits for room with poll(2), for at most the
 * send timeout set with netx_set_timeout() (forever if none).
 *
 * RETURN VALUE
 *   0 once every byte has been handed to the system, or -1 with errno set.
 *   A success means the kernel has the bytes, not that the peer has read
 *   them. After a failure, netx_last_transferred() tells how many bytes were
 *   sent before it.
 *
 * ERRORS
 *   As for netx_send(); ETIMEDOUT when the timeout expires between two
 *   pieces; EIO if the system ever takes no bytes at all from a non-empty
 *   buffer.
 *
 * BLOCKING
 *   Until all is sent, an error, or a timeout.
 *
 * EXAMPLE: see netx_recv()
 */
NETX_API int netx_send_all(int fd, const void *buf, size_t len);

/*
 * netx_recv_all - receive exactly len bytes, looping over short receives,
 * unless the stream ends first.
 *
 * On a non-blocking socket it waits for data with poll(2), for at most the
 * receive timeout set with netx_set_timeout() (forever if none).
 *
 * RETURN VALUE
 *   len; fewer than len (possibly 0) if the peer closed the connection
 *   first; -1 with errno set on failure. After a failure,
 *   netx_last_transferred() tells how many bytes arrived (they are in buf).
 *
 * ERRORS
 *   As for netx_recv().
 *
 * BLOCKING
 *   Until len bytes, end of stream, an error, or a timeout.
 *
 * EXAMPLE
 *     // A message framed by its length: 4 bytes, big-endian, then the rest.
 *     // Returns the message length, 0 when the peer closed first, or -1.
 *     ssize_t read_message(int fd, unsigned char *buf, size_t cap)
 *     {
 *         unsigned char head[4];
 *         ssize_t n = netx_recv_all(fd, head, sizeof head);
 *         if (n != (ssize_t)sizeof head) {
 *             return n == -1 ? -1 : 0;
 *         }
 *         size_t len = (size_t)head[0] << 24 | (size_t)head[1] << 16 |
 *                      (size_t)head[2] << 8 | (size_t)head[3];
 *         if (len > cap) {
 *             return -1;
 *         }
 *         n = netx_recv_all(fd, buf, len);
 *         return n == (ssize_t)len ? n : -1;
 *     }
 */
NETX_API ssize_t netx_recv_all(int fd, void *buf, size_t len);

/* ------------------------------------------------------------------------
 * Reading lines and exact sizes: netx_reader
 * ------------------------------------------------------------------------ */

/*
 * netx_reader - a buffered reader for one connection.
 *
 * You own it and its storage: put it on the stack or in your connection
 * structure, and give it a buffer with netx_reader_init(). There is no hidden
 * or static state, so any number of readers may work in any number of
 * threads. netx_read_line() and netx_read_n() can be mixed freely on one
 * reader: bytes buffered by one are seen by the other.
 *
 * The fields are public so that the structure can be declared anywhere; do
 * not change them yourself.
 *
 * Moving it: the reader points at its storage, not into itself, so you may
 * copy or move the netx_reader struct (an array of connections that grows
 * with realloc) as long as the storage stays where it is. If the storage
 * moves too (it is an array inside the struct you move), call
 * netx_reader_rebase() with its new address before the next read.
 *
 * On a non-blocking socket, in an event loop: netx_read_line() and
 * netx_read_n() fail with EAGAIN when the rest has not arrived yet, and keep
 * what has (a partial line, the first bytes of an exact read) for the next
 * call. Call again when the socket is readable. netx_reader_buffered() says
 * how many bytes wait in the reader: a loop must keep reading lines while it
 * is above 0 before it waits for the socket again, since those bytes will
 * not make the socket readable.
 *
 * EXAMPLE: see netx_read_n()
 */
typedef struct netx_reader {
    int fd;             /* the connection read from */
    unsigned char *buf; /* the caller's storage */
    size_t cap;         /* its size */
    size_t start;       /* first unread byte in buf */
    size_t end;         /* one past the last unread byte */
    int eof;            /* the peer closed the connection */
    int skipping;       /* discarding the rest of an over-long line */
    ssize_t (*read_from)(void *source, void *buf, size_t cap); /* NULL: netx_recv */
    void *source; /* handed to read_from */
} netx_reader;

/*
 * netx_reader_init - prepare a reader for fd, buffering in storage.
 *
 *   storage  cap bytes that the reader uses until you stop using it.
 *            Its size bounds the longest line netx_read_line() can return.
 *
 * RETURN VALUE
 *   0, or -1 with errno EINVAL (r or storage is NULL, or cap is 0).
 *
 * EXAMPLE: see netx_read_line()
 */
NETX_API int netx_reader_init(netx_reader *r, int fd, void *storage, size_t cap);

/*
 * netx_reader_init_source - prepare a reader that takes its bytes from
 * read_from(source, buf, cap) instead of netx_recv(fd, ...): a TLS connection
 * (netx_tls_reader_init() in netx_tls.h uses it), or anything else that
 * reads like netx_recv() - the count, 0 at end of stream, or -1 with errno
 * set. fd only names the connection in sentences.
 *
 * A failure of read_from is returned as it is: errno says why, and
 * netx_last_error() has its sentence only if read_from is a libnetx call
 * (netx_recv(), TLS), which records one; your own cannot, and the record
 * then still holds an earlier failure.
 *
 * RETURN VALUE
 *   0, or -1 with errno EINVAL (r, read_from or storage is NULL, or cap
 *   is 0).
 *
 * EXAMPLE
 *     #include <errno.h>
 *     #include <unistd.h>
 *
 *     // read(2) behind a reader, for a pipe or a file, which recv(2)
 *     // cannot read. It retries EINTR, as netx_recv() does.
 *     static ssize_t read_fd(void *source, void *buf, size_t cap)
 *     {
 *         ssize_t n;
 *         do {
 *             n = read(*(const int *)source, buf, cap);
 *         } while (n == -1 && errno == EINTR);
 *         return n;
 *     }
 *
 *     // Print the lines that come down a pipe: 0 at its end, or -1 (errno
 *     // says why; netx_last_error() knows nothing of read(2)).
 *     int print_lines(int fd)
 *     {
 *         char storage[4096], line[1024];
 *         netx_reader r;
 *         if (netx_reader_init_source(&r, fd, read_fd, &fd, storage,
 *                                     sizeof storage) == -1) {
 *             return -1;
 *         }
 *         for (;;) {
 *             ssize_t n = netx_read_line(&r, line, sizeof line);
 *             if (n <= 0) {
 *                 return (int)n;
 *             }
 *             fputs(line, stdout);
 *         }
 *     }
 */
NETX_API int netx_reader_init_source(netx_reader *r, int fd,
                                     ssize_t (*read_from)(void *source, void *buf, size_t cap),
                                     void *source, void *storage, size_t cap);

/*
 * netx_read_line - read one line, up to and including its '\n'.
 *
 *   line  receives the line, '\n' included, followed by a NUL byte.
 *   cap   the size of line. The longest line that fits has cap - 1 bytes
 *         counting its '\n' (and at most the reader's storage size).
 *
 * The last line of a stream may lack its '\n'; it is returned as it is.
 * A line too long for line or for the reader is an error, EMSGSIZE: nothing
 * is written but an empty string, and the reader stays usable, because the
 * next netx_read_line() call first skips the rest of that line. A timeout or
 * any other error loses no data: what was received stays buffered for the
 * next call.
 *
 * RETURN VALUE
 *   The line's length in bytes ('\n' included, NUL not), at least 1; 0 at
 *   end of stream; -1 with errno set.
 *
 * ERRORS
 *   EMSGSIZE  the line is longer than cap - 1 bytes or than the reader's
 *             storage.
 *   EINVAL    r or line is NULL, or cap is less than 2.
 *   Those of netx_recv() (ECONNRESET, ETIMEDOUT, EAGAIN, ...).
 *
 * BLOCKING
 *   Until a whole line has arrived, the stream ends, or an error.
 *
 * EXAMPLE
 *     #include <errno.h>
 *
 *     // Send each line back, until the client closes. A line longer than
 *     // 511 bytes fails with EMSGSIZE and is skipped: the reader goes on.
 *     int echo_lines(int fd)
 *     {
 *         char storage[4096], line[512];
 *         netx_reader r;
 *         if (netx_reader_init(&r, fd, storage, sizeof storage) == -1) {
 *             return -1;
 *         }
 *         for (;;) {
 *             ssize_t n = netx_read_line(&r, line, sizeof line);
 *             if (n == -1 && errno == EMSGSIZE) {
 *                 continue;
 *             }
 *             if (n <= 0) {
 *                 return (int)n; // 0: the client closed; -1: an error
 *             }
 *             if (netx_send_all(fd, line, (size_t)n) == -1) {
 *                 return -1;
 *             }
 *         }
 *     }
 */
NETX_API ssize_t netx_read_line(netx_reader *r, char *line, size_t cap);

/*
 * netx_read_n - read exactly n bytes through the reader, unless the stream
 * ends first. Bytes already buffered come first; large reads go straight
 * into buf. If it follows an over-long line, it reads what follows the part
 * already consumed (and the pending skip is cancelled).
 *
 * RETURN VALUE
 *   n; fewer (possibly 0) at end of stream; -1 with errno set. After a
 *   failure netx_last_transferred() tells how many bytes are in buf.
 *
 * ERRORS
 *   EINVAL (r is NULL, or buf is NULL with n > 0); those of netx_recv().
 *
 * BLOCKING
 *   Until n bytes, end of stream, or an error.
 *
 * EXAMPLE
 *     // A reply in two parts through one netx_reader: a line "SIZE 1234",
 *     // then exactly that many bytes, which may have come with the line.
 *     ssize_t read_reply(netx_reader *r, void *body, size_t cap)
 *     {
 *         char line[64];
 *         unsigned long size;
 *         if (netx_read_line(r, line, sizeof line) <= 0 ||
 *             sscanf(line, "SIZE %lu", &size) != 1 || size > cap) {
 *             return -1;
 *         }
 *         return netx_read_n(r, body, size); // fewer: the peer closed
 *     }
 */
NETX_API ssize_t netx_read_n(netx_reader *r, void *buf, size_t n);

/*
 * netx_reader_buffered - how many bytes have been received into the reader
 * and not yet returned (0 for NULL), including the rest of an over-long
 * line that the next netx_read_line() will skip.
 *
 * EXAMPLE
 *     #include <errno.h>
 *
 *     // In an event loop, when the socket is readable: handle every whole
 *     // line, those already in the reader too (they will not make the
 *     // socket readable again). 0: wait again; -1: close the connection.
 *     int on_readable(netx_reader *r)
 *     {
 *         char line[512];
 *         do {
 *             ssize_t n = netx_read_line(r, line, sizeof line);
 *             if (n == -1 && errno == EAGAIN) {
 *                 return 0; // the rest of the line has not come yet
 *             }
 *             if (n <= 0) {
 *                 return -1; // the peer closed, or an error
 *             }
 *             fputs(line, stdout);
 *         } while (netx_reader_buffered(r) > 0);
 *         return 0;
 *     }
 */
NETX_API size_t netx_reader_buffered(const netx_reader *r);

/*
 * netx_reader_rebase - tell the reader its storage has moved: storage now
 * holds what the old storage held (you moved or copied it, with the struct
 * around it). The reader goes on where it was.
 *
 * RETURN VALUE
 *   0, or -1 with errno EINVAL (r or storage is NULL).
 *
 * EXAMPLE
 *     #include <stdlib.h>
 *
 *     struct conn {
 *         netx_reader r;
 *         char storage[1024]; // the reader's storage moves with the struct
 *     };
 *
 *     // Grow an array of connections: after realloc each reader is told
 *     // where its storage went.
 *     struct conn *grow(struct conn *conns, size_t n, size_t new_n)
 *     {
 *         struct conn *bigger = realloc(conns, new_n * sizeof *bigger);
 *         if (bigger == NULL) {
 *             return NULL;
 *         }
 *         for (size_t i = 0; i < n; i++) {
 *             netx_reader_rebase(&bigger[i].r, bigger[i].storage);
 *         }
 *         return bigger;
 *     }
 */
NETX_API int netx_reader_rebase(netx_reader *r, void *storage);

/* ------------------------------------------------------------------------
 * Sending in an event loop: netx_writer
 * ------------------------------------------------------------------------ */

/*
 * netx_writer - the sending side of one connection in an event loop: the
 * reader's twin.
 *
 * A send on a non-blocking socket takes what fits in the socket's buffer
 * and no more. The writer sends what the socket takes now, keeps the rest,
 * in order, and sends it when you call netx_writer_flush() (when the poller
 * says the socket is writable); nothing ever waits. It holds at most cap
 * bytes: a peer that does not read cannot make you keep more. Check
 * netx_writer_room() before you read from the peer and read no more than
 * that, and you have backpressure: you stop reading from a peer that does
 * not read what you send it.
 *
 * The buffer is allocated while bytes wait and freed when they have gone:
 * an idle connection costs sizeof(netx_writer) and nothing more. Sends use
 * MSG_DONTWAIT, so the writer never blocks even on a blocking socket.
 *
 * You own it: declare it in your connection structure (it may be moved),
 * netx_writer_init() it, netx_writer_free() it when the connection ends (it
 * does not close the socket). A writer belongs to one thread at a time.
 *
 * EXAMPLE: see netx_writer_send()
 */
typedef struct netx_writer {
    int fd;             /* the connection written to */
    unsigned char *buf; /* pending bytes; NULL when none wait */
    size_t start;       /* first pending byte in buf */
    size_t end;         /* one past the last */
    size_t size;        /* bytes allocated at buf */
    size_t cap;         /* the most it may hold */
    ssize_t (*write_to)(void *sink, const void *buf, size_t len); /* NULL: send */
    void *sink; /* handed to write_to */
} netx_writer;

/*
 * netx_writer_init - prepare a writer for fd that holds at most cap bytes.
 *
 * RETURN VALUE
 *   0, or -1 with errno EINVAL (w is NULL, or cap is 0).
 *
 * EXAMPLE: see netx_writer_send()
 */
NETX_API int netx_writer_init(netx_writer *w, int fd, size_t cap);

/*
 * netx_writer_init_sink - prepare a writer that sends through
 * write_to(sink, buf, len) instead of a send on fd: a TLS connection
 * (netx_tls_writer_init() in netx_tls.h uses it), or anything that sends
 * like netx_send() on a non-blocking socket - the count taken, or -1 with
 * errno EAGAIN when nothing can be taken now (not an error), or another
 * errno. The pending bytes are always handed to it again from their first
 * one, as TLS requires after EAGAIN. fd only names the connection in
 * sentences. A failure of write_to is returned as it is: netx_last_error()
 * has its sentence only if write_to is a libnetx call, which records one.
 *
 * RETURN VALUE
 *   0, or -1 with errno EINVAL (w or write_to is NULL, or cap is 0).
 *
 * EXAMPLE
 *     // A sink that counts what the socket took: netx_send() on the
 *     // non-blocking socket c->fd, which says EAGAIN when it is full.
 *     struct counted {
 *         int fd;
 *         size_t sent;
 *     };
 *
 *     static ssize_t send_counted(void *sink, const void *buf, size_t len)
 *     {
 *         struct counted *c = sink;
 *         ssize_t n = netx_send(c->fd, buf, len);
 *         if (n > 0) {
 *             c->sent += (size_t)n;
 *         }
 *         return n;
 *     }
 *
 *     int counted_writer_init(netx_writer *w, struct counted *c)
 *     {
 *         c->sent = 0;
 *         return netx_writer_init_sink(w, c->fd, send_counted, c, 65536);
 *     }
 */
NETX_API int netx_writer_init_sink(netx_writer *w, int fd,
                                   ssize_t (*write_to)(void *sink, const void *buf, size_t len),
                                   void *sink, size_t cap);

/*
 * netx_writer_send - send len bytes, or keep what the socket does not take
 * now, behind what is already pending.
 *
 * When nothing is pending, the bytes are sent at once (one send); only what
 * the socket did not take is copied. When bytes are pending, these go
 * behind them, in order: call netx_writer_flush() when the socket is
 * writable. It is all or nothing: bytes that would take the writer past
 * its cap are refused, and none of them is sent or kept.
 *
 * RETURN VALUE
 *   0 when every byte was sent or kept; -1 with errno set otherwise.
 *
 * ERRORS
 *   ENOBUFS     len is more than netx_writer_room(): nothing was taken.
 *   EPIPE, ECONNRESET  the connection is gone (as netx_send()).
 *   ENOMEM      no memory to keep the bytes.
 *   EINVAL      w is NULL, or data is NULL with len > 0.
 *
 * EXAMPLE
 *     #include <errno.h>
 *
 *     // One connection of an event-loop echo server: what the peer sends
 *     // goes back through the writer. It asks for NETX_WRITABLE only while
 *     // bytes wait, and reads no more than the writer has room for.
 *     struct conn {
 *         int fd;  // non-blocking
 *         int eof; // the peer has sent all it will
 *         netx_writer out;
 *     };
 *
 *     int conn_init(struct conn *c, int fd)
 *     {
 *         c->fd = fd;
 *         c->eof = 0;
 *         return netx_writer_init(&c->out, fd, 64 * 1024);
 *     }
 *
 *     // The poller reported c->fd with these events. -1: end it (it failed,
 *     // or the peer is done and has every byte back).
 *     int conn_ready(netx_poller *p, struct conn *c, unsigned events)
 *     {
 *         netx_writer *w = &c->out;
 *         if ((events & NETX_WRITABLE) && netx_writer_flush(w) == -1) {
 *             return -1;
 *         }
 *         size_t room = netx_writer_room(w);
 *         if ((events & NETX_READABLE) && !c->eof && room > 0) {
 *             char buf[4096];
 *             size_t max = room < sizeof buf ? room : sizeof buf;
 *             ssize_t n = netx_recv(c->fd, buf, max);
 *             if (n == 0) {
 *                 c->eof = 1;
 *             } else if (n == -1 && errno != EAGAIN) {
 *                 return -1;
 *             } else if (n > 0 &&
 *                        netx_writer_send(w, buf, (size_t)n) == -1) {
 *                 return -1;
 *             }
 *         }
 *         if (c->eof && netx_writer_pending(w) == 0) {
 *             return -1;
 *         }
 *         unsigned want = 0;
 *         if (!c->eof && netx_writer_room(w) > 0) {
 *             want |= NETX_READABLE;
 *         }
 *         if (netx_writer_pending(w) > 0) {
 *             want |= NETX_WRITABLE;
 *         }
 *         return netx_poller_mod(p, c->fd, want, c);
 *     }
 *
 *     // After netx_poller_del(): drop what is pending, close.
 *     void conn_end(struct conn *c)
 *     {
 *         netx_writer_free(&c->out);
 *         netx_close(c->fd);
 *     }
 */
NETX_API int netx_writer_send(netx_writer *w, const void *data, size_t len);

/*
 * netx_writer_printf - format as printf(3) does and netx_writer_send() the
 * text (no NUL): a reply built and queued in one call.
 *
 * RETURN VALUE, ERRORS
 *   As netx_writer_send(); EINVAL also when fmt is NULL.
 *
 * EXAMPLE
 *     // Queue a status line built as printf(3) does: "200 1234 bytes\r\n".
 *     int queue_status(netx_writer *w, int code, size_t len)
 *     {
 *         return netx_writer_printf(w, "%d %zu bytes\r\n", code, len);
 *     }
 */
NETX_API int netx_writer_printf(netx_writer *w, const char *fmt, ...)
#if defined(__GNUC__) || defined(__clang__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/*
 * netx_writer_flush - send as much of what is pending as the socket takes
 * now. Call it when the poller reports the socket writable. A socket that
 * is full again is not an error: the rest stays pending.
 *
 * RETURN VALUE
 *   0 (check netx_writer_pending() to see whether all went), or -1 with
 *   errno set: EPIPE, ECONNRESET (the connection is gone), EINVAL (w is
 *   NULL).
 *
 * EXAMPLE: see netx_writer_send()
 */
NETX_API int netx_writer_flush(netx_writer *w);

/*
 * netx_writer_pending - bytes kept and not yet sent (0 for NULL). While it
 * is above 0, ask the poller for NETX_WRITABLE; when it drops to 0, stop
 * asking.
 *
 * EXAMPLE: see netx_writer_send()
 */
NETX_API size_t netx_writer_pending(const netx_writer *w);

/*
 * netx_writer_room - how many more bytes netx_writer_send() would take:
 * cap minus what is pending (0 for NULL).
 *
 * EXAMPLE: see netx_writer_send()
 */
NETX_API size_t netx_writer_room(const netx_writer *w);

/*
 * netx_writer_free - drop what is pending and free the buffer. The socket
 * is not closed. The writer can be used again, with the same fd and cap.
 *
 * EXAMPLE: see netx_writer_send()
 */
NETX_API void netx_writer_free(netx_writer *w);

/* ------------------------------------------------------------------------
 * Workflow step 5: close
 * ------------------------------------------------------------------------ */

/*
 * netx_shutdown - end one or both directions of a connection
 * (shutdown(2)) while keeping the descriptor.
 *
 *   how  SHUT_WR: "I have finished sending" - the peer reads end of stream,
 *        and can still send to you. SHUT_RD, SHUT_RDWR as in shutdown(2).
 *
 * RETURN VALUE
 *   0, or -1 with errno set (ENOTCONN, EBADF, ENOTSOCK, EINVAL).
 *
 * EXAMPLE
 *     // Send a whole request, then say it is all (the server reads end of
 *     // stream), and read the reply until the server closes.
 *     ssize_t request(int fd, const char *req, size_t len, char *reply,
 *                     size_t cap)
 *     {
 *         if (netx_send_all(fd, req, len) == -1 ||
 *             netx_shutdown(fd, SHUT_WR) == -1) {
 *             return -1;
 *         }
 *         return netx_recv_all(fd, reply, cap); // fewer: it closed
 *     }
 */
NETX_API int netx_shutdown(int fd, int how);

/*
 * netx_close_graceful - close a connection only once the peer has finished
 * with it, waiting at most timeout_ms.
 *
 * A successful send means the kernel has the bytes, not that the peer has
 * read them: close() right after it may even make the kernel reset the
 * connection and throw unsent data away, if bytes from the peer are still
 * unread. This does the careful thing instead: shutdown(SHUT_WR) (the peer
 * reads end of stream after all our data), then read and discard whatever
 * the peer still sends until it closes its side too, then wait until the
 * peer's TCP has acknowledged every byte we sent, then close.
 *
 *   timeout_ms  the longest wait for all of that; 0 or less waits as long
 *               as it takes.
 *
 * RETURN VALUE
 *   0 when, in time, the peer ended its side (we read its end of stream)
 *   and its TCP acknowledged all our bytes and our end of stream (on Linux,
 *   our send queue is empty: SIOCOUTQ; on the BSDs FIONWRITE; elsewhere the
 *   peer's end of stream alone). 0 proves the peer's kernel has every byte;
 *   it does not prove the peer's program read them - only an answer in your
 *   own protocol can. A peer that half-closed first and never reads leaves
 *   bytes unacknowledged, and the call times out. -1 with errno set
 *   otherwise. The descriptor is closed in every case.
 *
 * ERRORS
 *   ETIMEDOUT   the peer did not close, or did not acknowledge everything,
 *               within timeout_ms; the sentence then says how many bytes
 *               were left: "graceful close of 127.0.0.1:5000 (fd 4): 32768
 *               bytes not acknowledged by the peer: Connection timed out".
 *   ECONNRESET  the peer reset the connection (also when shutdown(2) finds
 *               it already reset): data may have been lost.
 *   ECANCELED   a stop signal (netx_stop_on()) ended the wait.
 *   ENOTCONN, EBADF, ENOTSOCK  from shutdown(2).
 *
 * BLOCKING
 *   Up to timeout_ms.
 *
 * EXAMPLE
 *     // The last words to a client, then a close that waits (5 s at most)
 *     // until the client has them all: a plain close right after a send
 *     // can lose them.
 *     int say_goodbye(int fd)
 *     {
 *         if (netx_send_all(fd, "bye\n", 4) == -1) {
 *             netx_close(fd);
 *             return -1;
 *         }
 *         return netx_close_graceful(fd, 5000); // closes fd in any case
 *     }
 */
NETX_API int netx_close_graceful(int fd, int timeout_ms);

/*
 * netx_close - close a socket (close(2)).
 *
 * Never retried on EINTR: on Linux the descriptor is closed whatever close
 * returns, and retrying could close a descriptor another thread just opened.
 * EINTR is therefore reported as success.
 *
 * RETURN VALUE
 *   0, or -1 with errno set (EBADF; EIO).
 *
 * EXAMPLE: see netx_tcp_listen()
 */
NETX_API int netx_close(int fd);

/* ------------------------------------------------------------------------
 * Socket options
 * ------------------------------------------------------------------------ */

/*
 * netx_set_timeout - bound every blocking send and receive on fd (and
 * netx_accept() on a listener) to timeout_ms milliseconds
 * (SO_SNDTIMEO, SO_RCVTIMEO).
 *
 *   timeout_ms  the limit for each call; 0 removes it.
 *
 * A call that waits longer fails with ETIMEDOUT (never a bare EAGAIN). The
 * limit applies to each wait, not to a whole netx_send_all(): a peer that
 * keeps trickling bytes keeps it going.
 *
 * RETURN VALUE
 *   0, or -1 with errno set (EINVAL: timeout_ms is negative; EBADF,
 *   ENOTSOCK).
 *
 * EXAMPLE
 *     // A silent server gets 10 seconds per receive, not for ever.
 *     ssize_t recv_within(int fd, void *buf, size_t cap)
 *     {
 *         if (netx_set_timeout(fd, 10000) == -1) {
 *             return -1;
 *         }
 *         return netx_recv(fd, buf, cap); // -1 with ETIMEDOUT after 10 s
 *     }
 */
NETX_API int netx_set_timeout(int fd, int timeout_ms);

/*
 * netx_set_nonblocking - turn O_NONBLOCK on (on != 0) or off.
 *
 * In non-blocking mode netx_send(), netx_recv() and netx_accept() fail with
 * EAGAIN instead of waiting, which is what a poll(2) loop wants.
 *
 * RETURN VALUE
 *   0, or -1 with errno set (EBADF).
 *
 * EXAMPLE
 *     // A listener for an event loop: non-blocking, so accept never waits.
 *     int loop_listener(netx_poller *p, uint16_t port)
 *     {
 *         int server = netx_tcp_listen(NULL, port, 0);
 *         if (server == -1) {
 *             return -1;
 *         }
 *         if (netx_set_nonblocking(server, 1) == -1 ||
 *             netx_poller_add(p, server, NETX_READABLE, NULL) == -1) {
 *             netx_close(server);
 *             return -1;
 *         }
 *         return server;
 *     }
 */
NETX_API int netx_set_nonblocking(int fd, int on);

/*
 * netx_set_nodelay - turn Nagle's algorithm off (on != 0: TCP_NODELAY) so
 * small writes go out at once, or back on.
 *
 * RETURN VALUE
 *   0, or -1 with errno set (EBADF, ENOTSOCK; ENOPROTOOPT on Linux, or
 *   EOPNOTSUPP elsewhere, for a socket that is not TCP).
 *
 * EXAMPLE
 *     // An interactive connection: small writes go out at once, and a
 *     // peer that vanishes is noticed: after 60 s of silence, 3 probes
 *     // 20 s apart.
 *     int tune(int fd)
 *     {
 *         if (netx_set_nodelay(fd, 1) == -1 ||
 *             netx_set_keepalive(fd, 60) == -1) {
 *             netx_perror("tune");
 *             return -1;
 *         }
 *         return 0;
 *     }
 */
NETX_API int netx_set_nodelay(int fd, int on);

/*
 * netx_set_keepalive - probe an idle TCP connection so a vanished peer is
 * noticed.
 *
 *   idle_s  seconds of silence before the first probe; 0 turns keepalive
 *           off. The system default (two hours on Linux) is too long to be
 *           useful, so you choose. Where the system allows, probes then go
 *           every idle_s / 3 seconds (at least 1) and the connection fails
 *           with ETIMEDOUT after 3 unanswered ones.
 *
 * RETURN VALUE
 *   0, or -1 with errno set (EINVAL: idle_s negative, or more than the
 *   system allows - 32767 on Linux; EBADF, ENOTSOCK). A failure after
 *   SO_KEEPALIVE was turned on leaves it on.
 *
 * EXAMPLE: see netx_set_nodelay()
 */
NETX_API int netx_set_keepalive(int fd, int idle_s);

/* ------------------------------------------------------------------------
 * Guide step 6: UDP
 * ------------------------------------------------------------------------ */

/*
 * netx_udp_bind - create a UDP socket bound to host:port, ready for
 * netx_recvfrom() and netx_sendto().
 *
 *   host, port  as for netx_tcp_listen(): NULL is every interface
 *               (dual-stack), a name with IPv4 and IPv6 addresses binds its
 *               first IPv4 one, port 0 picks a free port.
 *
 * RETURN VALUE
 *   The descriptor, or -1 with errno set; nothing is left open on failure.
 *
 * ERRORS
 *   Those of netx_resolve(), netx_socket() and netx_bind().
 *
 * EXAMPLE
 *     #include <errno.h>
 *
 *     // A UDP echo server on port 9000: each datagram back to its sender.
 *     int udp_echo(void)
 *     {
 *         int fd = netx_udp_bind(NULL, 9000);
 *         if (fd == -1) {
 *             netx_perror("udp");
 *             return -1;
 *         }
 *         for (;;) {
 *             char buf[1500];
 *             netx_addr from;
 *             ssize_t n = netx_recvfrom(fd, buf, sizeof buf, &from);
 *             if (n == -1 && errno == EMSGSIZE) {
 *                 continue; // longer than buf: cut, so not echoed
 *             }
 *             if (n == -1) {
 *                 break;
 *             }
 *             netx_sendto(fd, buf, (size_t)n, &from); // lost or not: UDP
 *         }
 *         netx_close(fd);
 *         return -1;
 *     }
 */
NETX_API int netx_udp_bind(const char *host, uint16_t port);

/*
 * netx_udp_connect - create a UDP socket whose peer is host:port, so that
 * netx_send() and netx_recv() talk to that peer only.
 *
 * Connecting a UDP socket sends nothing, so there is no answer that could
 * choose between a name's addresses: like netx_udp_bind(), it takes the
 * name's first IPv4 address when it has one (so "localhost" meets a server
 * bound with netx_udp_bind("localhost", ...)), else its first address.
 *
 * RETURN VALUE
 *   The descriptor, or -1 with errno set; nothing is left open on failure.
 *
 * ERRORS
 *   Those of netx_resolve(), netx_socket() and connect(2); EINVAL when host
 *   is NULL or port is 0.
 *
 * EXAMPLE
 *     #include <string.h>
 *
 *     // Ask a UDP server once. The question or the answer may be lost, so
 *     // wait one second at most.
 *     ssize_t udp_ask(const char *host, uint16_t port, const char *q,
 *                     char *a, size_t cap)
 *     {
 *         int fd = netx_udp_connect(host, port);
 *         if (fd == -1) {
 *             return -1;
 *         }
 *         ssize_t n = -1;
 *         if (netx_set_timeout(fd, 1000) == 0 &&
 *             netx_send(fd, q, strlen(q)) != -1) {
 *             // ETIMEDOUT: lost; ECONNREFUSED: no server at that port
 *             n = netx_recv(fd, a, cap);
 *         }
 *         netx_close(fd);
 *         return n;
 *     }
 */
NETX_API int netx_udp_connect(const char *host, uint16_t port);

/*
 * netx_sendto - send one datagram to an address (sendto(2)); NULL sends to
 * the connected peer.
 *
 * RETURN VALUE
 *   len (a datagram goes whole or not at all), or -1 with errno set.
 *
 * ERRORS
 *   EMSGSIZE  len is larger than a datagram can be.
 *   EAFNOSUPPORT, EINVAL  the address does not suit the socket.
 *   EDESTADDRREQ  to is NULL and the socket is not connected.
 *   Those of netx_send().
 *
 * EXAMPLE: see netx_udp_bind()
 */
NETX_API ssize_t netx_sendto(int fd, const void *buf, size_t len, const netx_addr *to);

/*
 * netx_recvfrom - receive one datagram (recvfrom(2)).
 *
 *   from  if not NULL, receives the sender's address (reply to it with
 *         netx_sendto()).
 *
 * RETURN VALUE
 *   The datagram's length (0 for an empty datagram), or -1 with errno set.
 *   With cap 0 it returns 0 at once and takes nothing: the next datagram
 *   stays queued (from is zeroed).
 *
 * ERRORS
 *   EMSGSIZE  the datagram was longer than cap: buf holds its first cap
 *             bytes, from is filled, the rest is gone.
 *   ETIMEDOUT, EAGAIN, ECONNREFUSED and the others of netx_recv().
 *
 * EXAMPLE: see netx_udp_bind()
 */
NETX_API ssize_t netx_recvfrom(int fd, void *buf, size_t cap, netx_addr *from);

/* ------------------------------------------------------------------------
 * Architecture: many connections in one thread (netx_poller)
 * ------------------------------------------------------------------------ */

/*
 * netx_poller - which of many descriptors are ready to read or write, in
 * one call: the heart of an event-driven server ("thousands of
 * simultaneous connections" with non-blocking sockets).
 *
 * Register each descriptor with the events you want to hear about, then
 * call netx_poller_wait() in a loop and serve exactly the descriptors it
 * returns. Level-triggered: a descriptor that stays readable is reported on
 * every wait until you read it, so reading only part of what came loses
 * nothing.
 *
 * Backends: epoll on Linux (an idle descriptor costs nothing per wait);
 * poll(2) elsewhere, and on Linux too when NETX_POLLER=poll is in the
 * environment when the poller is made (each wait then costs a little per
 * registered descriptor). netx_poller_backend() says which one is in use.
 * The BSDs and macOS use poll for now.
 *
 * A poller belongs to one thread at a time, as a netx_reader does.
 *
 * EXAMPLE: see netx_poller_new()
 */
typedef struct netx_poller netx_poller;

/* Events: bit flags. Ask for NETX_READABLE and/or NETX_WRITABLE; a hang-up
 * or an error is always reported, and then as readable and writable too,
 * so that your next recv or send says exactly what happened. */
#define NETX_READABLE 0x1u /* recv (or accept) will not wait */
#define NETX_WRITABLE 0x2u /* send will not wait */
#define NETX_HANGUP   0x4u /* the connection is closed in both directions */
#define NETX_ERROR    0x8u /* the socket has an error pending */

/*
 * netx_event - one ready descriptor, as netx_poller_wait() reports it.
 *
 * An event whose events field is 0 was dropped by netx_poller_del() after
 * the wait returned it: skip it.
 *
 * EXAMPLE: see netx_poller_new()
 */
typedef struct netx_event {
    int fd;          /* the descriptor that is ready; -1 if dropped (see del) */
    unsigned events; /* NETX_READABLE | NETX_WRITABLE | NETX_HANGUP | NETX_ERROR;
                        0 if dropped */
    void *data;      /* what was given to netx_poller_add() or _mod() */
} netx_event;

/*
 * netx_poller_new - make a poller, with the backend of this system (or the
 * one NETX_POLLER names: "epoll", "poll").
 *
 * RETURN VALUE
 *   The poller (free it with netx_poller_free()), or NULL with errno set:
 *   EINVAL (NETX_POLLER names a backend this system has not), ENOMEM,
 *   EMFILE (epoll needs a descriptor of its own; close-on-exec).
 *
 * EXAMPLE
 *     // An event loop that greets every client and closes: one thread, any
 *     // number of clients. server is a non-blocking listener.
 *     int greet_all(int server)
 *     {
 *         netx_poller *p = netx_poller_new();
 *         if (p == NULL ||
 *             netx_poller_add(p, server, NETX_READABLE, NULL) == -1) {
 *             netx_poller_free(p);
 *             return -1;
 *         }
 *         printf("waiting with %s\n", netx_poller_backend(p)); // "epoll"
 *         netx_event ev[64]; // outside the loop: netx_poller_del() blanks it
 *         int n;
 *         do {
 *             n = netx_poller_wait(p, ev, 64, -1); // -1: a stop signal?
 *             for (int i = 0; i < n; i++) {
 *                 if (ev[i].events == 0) {
 *                     continue; // dropped by netx_poller_del()
 *                 }
 *                 if (ev[i].fd == server) {
 *                     int c = netx_accept_nonblocking(server, NULL);
 *                     if (c != -1 &&
 *                         netx_poller_add(p, c, NETX_WRITABLE, NULL) == -1) {
 *                         netx_close(c);
 *                     }
 *                 } else {
 *                     netx_send(ev[i].fd, "hello\n", 6);
 *                     netx_poller_del(p, ev[i].fd); // before the close
 *                     netx_close(ev[i].fd);
 *                 }
 *             }
 *         } while (n != -1);
 *         netx_poller_free(p); // closes none of the registered descriptors
 *         return 0;
 *     }
 */
NETX_API netx_poller *netx_poller_new(void);

/*
 * netx_poller_add - start watching fd for events (NETX_READABLE,
 * NETX_WRITABLE, both, or 0: only hang-ups and errors), with data handed
 * back in each of its events (a pointer to your connection, say).
 *
 * RETURN VALUE
 *   0, or -1 with errno set and a sentence such as
 *   "poller add fd 7 (epoll): File exists".
 *
 * ERRORS
 *   EEXIST  fd is registered already (use netx_poller_mod()).
 *   EINVAL  events has a bit other than NETX_READABLE and NETX_WRITABLE,
 *           or p is NULL.
 *   EBADF   fd is not an open descriptor.
 *   EPERM   (epoll) fd cannot be watched: a regular file, say.
 *   EINVAL  (epoll) fd is the poller's own descriptor.
 *   ENOMEM, ENOSPC (epoll's limit on watched descriptors).
 *
 * EXAMPLE: see netx_poller_new()
 */
NETX_API int netx_poller_add(netx_poller *p, int fd, unsigned events, void *data);

/*
 * netx_poller_mod - change the events and data of a registered descriptor.
 * Ask for NETX_WRITABLE only while you have bytes waiting to be sent:
 * a socket with room in its send buffer is writable almost always, and a
 * loop that asks for it all the time never sleeps. Setting the events they
 * already have costs no system call.
 *
 * RETURN VALUE
 *   0, or -1 with errno set: ENOENT (fd is not registered), EINVAL (as for
 *   add), ENOMEM.
 *
 * EXAMPLE: see netx_writer_send()
 */
NETX_API int netx_poller_mod(netx_poller *p, int fd, unsigned events, void *data);

/*
 * netx_poller_del - stop watching fd. Call it BEFORE close(fd): with epoll,
 * a descriptor leaves the set only when every copy of it is closed, and a
 * closed descriptor's number may be handed out again at once.
 *
 * Events of fd that the last netx_poller_wait() put in your array and you
 * have not handled yet are dropped: their fd becomes -1, their events 0 and
 * their data NULL. So a loop that closes connection B while handling
 * connection A never acts on B's stale event, nor on a new connection that
 * got B's descriptor number. Skip events whose events are 0. (The poller
 * remembers your array until the next wait for this: keep it alive until
 * then.)
 *
 * RETURN VALUE
 *   0, or -1 with errno set: ENOENT (fd is not registered), EBADF (fd is
 *   negative), EINVAL (p is NULL).
 *
 * EXAMPLE: see netx_poller_new()
 */
NETX_API int netx_poller_del(netx_poller *p, int fd);

/*
 * netx_poller_wait - wait until some registered descriptors are ready, or
 * timeout_ms milliseconds pass, and put their events in out.
 *
 *   out         an array of max events, filled from the start. Keep it
 *               alive until the next wait: netx_poller_del() blanks the
 *               events it holds for the descriptor it drops (declare it
 *               outside the loop, not in the loop's body).
 *   timeout_ms  the longest wait; 0 returns at once; -1 (or less) waits as
 *               long as it takes.
 *
 * When more than max descriptors are ready, the others are reported by the
 * next wait (level-triggered: nothing is lost), and the poll backend starts
 * its next scan after the last one reported, so none is starved. A signal
 * that interrupts the wait (EINTR) is not an error: it waits again for the
 * time left. A stop signal (netx_stop_on()) ends it with ECANCELED, as it
 * ends every wait; during a drain (netx_stop_drain()) the wait lasts no
 * longer than the grace period.
 *
 * Trace mode shows each wait: "netx: epoll_wait(5, 64, 1000 ms) = 3".
 *
 * RETURN VALUE
 *   The number of events in out (1 to max), 0 when the time ran out, or -1
 *   with errno set.
 *
 * ERRORS
 *   ECANCELED  a stop signal; the sentence names it:
 *              "poller wait (epoll): stopped by SIGINT".
 *   EINVAL     p or out is NULL, or max is less than 1.
 *   ENOMEM.
 *
 * EXAMPLE: see netx_poller_new()
 */
NETX_API int netx_poller_wait(netx_poller *p, netx_event *out, int max, int timeout_ms);

/*
 * netx_poller_backend - "epoll" or "poll": which backend p uses ("none" for
 * NULL).
 *
 * EXAMPLE: see netx_poller_new()
 */
NETX_API const char *netx_poller_backend(const netx_poller *p);

/*
 * netx_poller_free - free the poller and its descriptor. The descriptors
 * registered in it are not closed: they are yours. NULL is allowed.
 *
 * EXAMPLE: see netx_poller_new()
 */
NETX_API void netx_poller_free(netx_poller *p);

/* ------------------------------------------------------------------------
 * Stopping: Ctrl-C and the blocking calls
 * ------------------------------------------------------------------------ */

/*
 * netx_stop_on - let signo (SIGINT for Ctrl-C, SIGTERM from kill or a
 * service manager) stop every blocking libnetx call in the process.
 *
 * libnetx retries a call that a signal interrupts (EINTR), so a handler that
 * only sets a flag cannot get a program out of a netx_accept() waiting for a
 * client. After netx_stop_on(SIGINT), it can: when SIGINT arrives, every
 * libnetx call that is waiting - in any thread - gives up within a few
 * milliseconds with -1, errno ECANCELED and a sentence that names the step
 * and the signal: "accept on 127.0.0.1:12345 (fd 3): stopped by SIGINT".
 * That covers netx_accept(), netx_connect(), netx_tcp_connect(), send and
 * receive and their _all forms, netx_read_line() and netx_read_n(), UDP,
 * netx_close_graceful(), and calls with or without a timeout. A call that
 * need not wait (data is there, the socket has room) still succeeds.
 *
 * There is no race: a signal that arrives just before a call starts to wait
 * still ends that wait. A stoppable program takes two lines:
 *
 *   netx_stop_on(SIGINT);
 *   netx_stop_on(SIGTERM);
 *   while (!netx_stopping()) {
 *       int client = netx_accept(server, NULL);  // -1, ECANCELED on Ctrl-C
 *       ...
 *   }
 *
 * How a stop goes, process-wide:
 *   1. The first stop signal cancels every wait, and every later one, until
 *      the program calls netx_stop_drain(). A program that just exits never
 *      calls it.
 *   2. netx_stop_drain(grace_ms) lets a server finish what it owes: waits
 *      work again, but none lasts past the grace period.
 *   3. A second stop signal, or the end of the grace period, cancels every
 *      wait again, for good.
 *
 * This is the one place libnetx changes a signal's disposition, and only
 * when asked: it installs its own handler for signo (without SA_RESTART, so
 * the waits really end), replacing any handler the program had. Resolving a
 * name (getaddrinfo(3)) cannot be cancelled; it ends when the resolver's own
 * timeout does.
 *
 * COST
 *   Before netx_stop_on(), none beyond one load of a process-wide flag per
 *   call: calls make the same system calls as without it. After it, a send
 *   or receive on a blocking socket that has to wait does so in poll(2),
 *   where the stop can reach it: three more system calls per wait (fcntl,
 *   getsockopt for the socket's timeout, poll). A call that need not wait
 *   costs what it did. netx_accept() on a blocking listener adds fcntl,
 *   getsockopt and poll to every call.
 *
 *   One case cannot be reached: several threads blocked in netx_accept() on
 *   one blocking listener, when poll() says a client is waiting and another
 *   thread takes it first; the thread then waits in accept(2) for the next
 *   client. Give such a listener netx_set_nonblocking() and wait with
 *   netx_stop_fd() in your own poll().
 *
 * RETURN VALUE
 *   0, or -1 with errno set.
 *
 * ERRORS
 *   EINVAL  signo is not a signal a program can catch (SIGKILL, SIGSTOP, or
 *           not a signal at all).
 *   EMFILE, ENFILE  no descriptors left for the two pipes the stop uses
 *           (made once, close-on-exec, numbered 3 or above).
 *
 * THREAD SAFETY
 *   Safe from any thread; the stop is the process's. The signal may land in
 *   any thread.
 *
 * EXAMPLE
 *     #include <signal.h>
 *
 *     // A server that Ctrl-C or kill(1) stops: the netx_accept() waiting
 *     // then fails with ECANCELED, and the loop ends.
 *     int serve_until_stopped(int server)
 *     {
 *         if (netx_stop_on(SIGINT) == -1 || netx_stop_on(SIGTERM) == -1) {
 *             return -1;
 *         }
 *         for (;;) {
 *             int client = netx_accept(server, NULL);
 *             if (client == -1) {
 *                 break;
 *             }
 *             netx_send_all(client, "hello\n", 6);
 *             netx_close(client);
 *         }
 *         if (!netx_stopping()) {
 *             netx_perror("accept"); // a failure, not a stop
 *             return -1;
 *         }
 *         return 0;
 *     }
 */
NETX_API int netx_stop_on(int signo);

/*
 * netx_stopping - 1 once a stop signal (see netx_stop_on()) has arrived,
 * else 0. It stays 1 while the program drains.
 *
 * EXAMPLE: see netx_stop_on()
 */
NETX_API int netx_stopping(void);

/*
 * netx_stop_drain - after the first stop signal, let the program finish
 * what it owes before it exits.
 *
 * A server that stops accepting may still owe its clients the replies to
 * what they sent. Call this when you see the first ECANCELED (or
 * netx_stopping() turns 1): waits work again, until grace_ms milliseconds
 * from the first call have passed or a second stop signal arrives. Then
 * every wait fails with ECANCELED again, for good. Any thread may call it,
 * as often as it likes: the first call sets the deadline, later ones return
 * 0 and change nothing - so a thread whose wait was cancelled can simply
 * call it and carry on when it returns 0.
 *
 *   grace_ms  the most time the drain may take; 0 or less: no limit of its
 *             own (a second signal still ends it).
 *
 * RETURN VALUE
 *   0 while draining: carry on, and retry the call that was cancelled.
 *   -1 with errno set otherwise.
 *
 * ERRORS
 *   ECANCELED  a second stop signal arrived, or the grace period is over:
 *              stop now.
 *   EINVAL     no stop signal has arrived yet.
 *
 * EXAMPLE
 *     #include <errno.h>
 *
 *     // A receive that lets a client finish: a first stop signal cancels
 *     // the wait, the drain gives 5 s more, and the receive goes on.
 *     ssize_t recv_draining(int fd, void *buf, size_t cap)
 *     {
 *         for (;;) {
 *             ssize_t n = netx_recv(fd, buf, cap);
 *             if (n != -1 || errno != ECANCELED ||
 *                 netx_stop_drain(5000) == -1) {
 *                 return n;
 *             }
 *         }
 *     }
 */
NETX_API int netx_stop_drain(int grace_ms);

/*
 * netx_stop_fd - a descriptor that turns readable when a stop signal
 * arrives, for programs that wait in poll(2) themselves: add it to your
 * pollfd array (POLLIN), and when it is readable, netx_stopping() is 1.
 * Never read from it or close it. After netx_stop_drain() the descriptor to
 * watch changes (it then turns readable at the second signal), so ask again.
 *
 * RETURN VALUE
 *   The descriptor, or -1 with errno EINVAL before netx_stop_on().
 *
 * EXAMPLE
 *     #include <errno.h>
 *     #include <poll.h>
 *
 *     // Your own poll(2), stoppable: 1 when fd is readable, 0 when a stop
 *     // signal came, -1 on error (before netx_stop_on() too).
 *     int wait_readable(int fd)
 *     {
 *         struct pollfd pfd[2] = {{.fd = fd, .events = POLLIN},
 *                                 {.fd = netx_stop_fd(), .events = POLLIN}};
 *         if (pfd[1].fd == -1) {
 *             return -1;
 *         }
 *         while (poll(pfd, 2, -1) == -1) {
 *             if (errno != EINTR) { // EINTR: a signal; poll again
 *                 return -1;
 *             }
 *         }
 *         return pfd[1].revents != 0 ? 0 : 1;
 *     }
 */
NETX_API int netx_stop_fd(void);

/* ------------------------------------------------------------------------
 * For servers: standard descriptors, and a log that never blocks
 * ------------------------------------------------------------------------ */

/*
 * netx_stdio_reserve - make sure descriptors 0, 1 and 2 are open, opening
 * /dev/null on any that is closed. Call it first thing in main(), as
 * daemons do.
 *
 * A program started with standard input, output or error closed (some
 * service managers and careless scripts do that) hands those numbers to the
 * next socket or pipe it makes; its printf() then writes into a client's
 * connection, or into its own pipe. With the numbers taken, that cannot
 * happen.
 *
 * RETURN VALUE
 *   0, or -1 with errno set (those of open(2): EMFILE, ENOENT, ...).
 *
 * EXAMPLE
 *     int main(void)
 *     {
 *         // First thing: with standard output closed by whoever started
 *         // us, printf() would write into the first socket we open.
 *         if (netx_stdio_reserve() == -1) {
 *             return 1;
 *         }
 *         printf("started\n");
 *         return 0;
 *     }
 */
NETX_API int netx_stdio_reserve(void);

/*
 * netx_log - write one line to standard error, formatted as printf(3)
 * does, the way a server must: never blocking, never raising SIGPIPE, never
 * flooding.
 *
 *  - The line is written only if standard error can take it at once (a
 *    pipe nobody reads, a stopped terminal, a closed reader cannot stall
 *    the server). A line it cannot take is dropped and counted; the count
 *    goes out with the next line written.
 *  - SIGPIPE is never raised, even when the reader goes away mid-write.
 *  - Each call site (told apart by its format string, so pass a literal)
 *    writes at most one line a second. The lines it would have written in
 *    between are counted and the count is added to its next line:
 *    "threaded_server: told 127.0.0.1:40000 the server is busy (and 848
 *    more like this in the last 2 s)". Once that second is over, the held
 *    lines go out as one line - the last of them, with the count of the
 *    others - at the next netx_log() call or at netx_log_flush().
 *  - Control characters in the text are escaped, so the line stays one
 *    line. A newline is added; do not end fmt with one. Lines are cut at
 *    about 400 bytes.
 *  - errno is left as it was, so netx_log("%s", netx_last_error()) and
 *    perror-style code after it still work.
 *
 * This and netx_perror() are the only functions that write anything
 * outside trace mode, and only when called. Not for signal handlers.
 *
 * THREAD SAFETY
 *   Safe from any thread; lines from different threads never mix.
 *
 * EXAMPLE
 *     // A client refused: a line a second at most, however many are
 *     // refused (those in between are counted in the next line).
 *     void refused(const char *client)
 *     {
 *         netx_log("refused %s: the server is busy", client);
 *     }
 *
 *     // A backend going down is rare, and each time matters: a line each.
 *     void backend_down(const char *name)
 *     {
 *         netx_log_each("backend %s is DOWN", name);
 *     }
 *
 *     // Before exiting: the lines netx_log() held back.
 *     void before_exit(void)
 *     {
 *         netx_log_flush();
 *     }
 */
NETX_API void netx_log(const char *fmt, ...)
#if defined(__GNUC__) || defined(__clang__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;

/*
 * netx_log_each - netx_log() without the limit of a line a second: every
 * call writes its line (when standard error can take it; else it is
 * dropped and counted, as for netx_log()). For lines that are rare by
 * nature and must each be seen - a backend going DOWN, then UP - not for
 * anything a client can make happen at will.
 *
 * EXAMPLE: see netx_log()
 */
NETX_API void netx_log_each(const char *fmt, ...)
#if defined(__GNUC__) || defined(__clang__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;

/*
 * netx_log_flush - write, for each call site of netx_log(), the lines it
 * held back: the last of them, with the count of the others; and, if lines
 * were dropped since the last line written, a line that says how many.
 * Call it before the program exits (and now and then in a long quiet
 * spell, if you like): netx_log() itself writes them only when it is
 * called again. Never blocks.
 *
 * EXAMPLE: see netx_log()
 */
NETX_API void netx_log_flush(void);

/* ------------------------------------------------------------------------
 * Errors
 * ------------------------------------------------------------------------ */

/*
 * netx_last_error - this thread's last failure as one sentence naming the
 * step, the address and the cause:
 *   "connect to localhost:12345 (127.0.0.1): Connection refused"
 *   "resolve no-such-host.invalid: Name or service not known"
 *   "recv from 127.0.0.1:5000 (fd 4): Connection timed out"
 *
 * RETURN VALUE
 *   The sentence, or "no error" if nothing has failed in this thread. The
 *   string belongs to the thread and stays valid until its next failing
 *   netx call; successful calls do not change it.
 *
 * EXAMPLE
 *     #include <errno.h>
 *
 *     // Connect, or say why in one sentence. -2 tells "nobody listens
 *     // there" from the other failures (-1) by the errno of the failure,
 *     // which the calls made since have not changed.
 *     int connect_or_say(const char *host, uint16_t port)
 *     {
 *         int fd = netx_tcp_connect(host, port, 5000);
 *         if (fd != -1) {
 *             return fd;
 *         }
 *         if (netx_last_gai_error() != 0) {
 *             // resolve nosuch.invalid: Name or service not known (EAI ...)
 *             fprintf(stderr, "%s (EAI %d)\n", netx_last_error(),
 *                     netx_last_gai_error());
 *             return -1;
 *         }
 *         // client: connect to localhost:1 (127.0.0.1): Connection refused
 *         netx_perror("client");
 *         return netx_last_errno() == ECONNREFUSED ? -2 : -1;
 *     }
 */
NETX_API const char *netx_last_error(void);

/*
 * netx_last_errno - the errno of this thread's last failure (0 if none).
 * Useful when other calls have overwritten errno since.
 *
 * EXAMPLE: see netx_last_error()
 */
NETX_API int netx_last_errno(void);

/*
 * netx_last_gai_error - the resolver's EAI_* code (getaddrinfo(3)) if this
 * thread's last failure was in resolving a name, else 0.
 *
 * EXAMPLE: see netx_last_error()
 */
NETX_API int netx_last_gai_error(void);

/*
 * netx_last_transferred - how many bytes netx_send_all(), netx_recv_all() or
 * netx_read_n() had moved before this thread's last failure (0 for any other
 * failure). Read it right after the failing call: like the rest of the
 * record, it keeps its value through later successful calls.
 *
 * For netx_send_all() it counts bytes the local kernel accepted. After
 * ETIMEDOUT the connection is still usable, and sending the rest from
 * buf + transferred resumes exactly; after EPIPE or ECONNRESET some of those
 * bytes may never have reached the peer. For netx_recv_all() and
 * netx_read_n() the bytes are in buf (and taken out of the reader): to
 * retry, ask for n - transferred bytes into buf + transferred.
 *
 * EXAMPLE
 *     #include <errno.h>
 *
 *     // Send a large buffer, in 3 tries: after a timeout (see
 *     // netx_set_timeout()), go on from the first byte that did not go.
 *     int send_patiently(int fd, const char *buf, size_t len)
 *     {
 *         for (int tries = 0; tries < 3; tries++) {
 *             if (netx_send_all(fd, buf, len) == 0) {
 *                 return 0;
 *             }
 *             if (errno != ETIMEDOUT) {
 *                 return -1;
 *             }
 *             size_t sent = netx_last_transferred();
 *             buf += sent;
 *             len -= sent;
 *         }
 *         return -1;
 *     }
 */
NETX_API size_t netx_last_transferred(void);

/*
 * netx_perror - print "prefix: sentence" and a newline on stderr, the
 * sentence being netx_last_error(). With a NULL or empty prefix, the
 * sentence alone.
 *
 * EXAMPLE: see netx_last_error()
 */
NETX_API void netx_perror(const char *prefix);

/* ------------------------------------------------------------------------
 * Trace mode
 * ------------------------------------------------------------------------ */

/*
 * netx_trace - print one line per step to out, so you can watch the
 * article's steps happen:
 *
 *   netx: socket(AF_INET, SOCK_STREAM) = 3
 *   netx: bind(3, 127.0.0.1:12345) = 0
 *   netx: connect(3, 127.0.0.1:12345) = -1 (Connection refused)
 *
 * Trace mode is also turned on, on stderr, by NETX_TRACE=1 in the
 * environment (read at the library's first traced step). netx_trace(NULL)
 * turns it off. Each line is written whole with one call, so lines from
 * different threads do not mix. The setting is process-wide.
 *
 * EXAMPLE
 *     // Watch one connect step by step on standard error; here, one run
 *     // of traced_connect("localhost", 1) where localhost is 127.0.0.1:
 *     //   netx: resolve(localhost) = 127.0.0.1
 *     //   netx: socket(AF_INET, SOCK_STREAM) = 3
 *     //   netx: connect(3, 127.0.0.1:1) = -1 (Connection refused)
 *     //   netx: close(3) = 0
 *     int traced_connect(const char *host, uint16_t port)
 *     {
 *         netx_trace(stderr);
 *         int fd = netx_tcp_connect(host, port, 5000);
 *         netx_trace(NULL);
 *         return fd;
 *     }
 */
NETX_API void netx_trace(FILE *out);

#ifdef __cplusplus
}
#endif

#endif /* NETX_H */
