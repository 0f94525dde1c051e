/*
 * compat.h - the platform differences libnetx cares about, in one place.
 *
 * Linux is where libnetx is tested; macOS and the BSDs differ in three ways
 * that matter here:
 *  - SIGPIPE: Linux suppresses it per call with MSG_NOSIGNAL; macOS has no
 *    such flag and suppresses it per socket with SO_NOSIGPIPE instead.
 *  - Close-on-exec: Linux and the BSDs create sockets close-on-exec
 *    atomically with SOCK_CLOEXEC and accept4(); elsewhere we fall back to
 *    fcntl(FD_CLOEXEC) right after creation (a tiny window remains in which
 *    a fork+exec in another thread could inherit the descriptor).
 *  - Shared libraries are built with -dynamiclib on macOS (see Makefile).
 */
#ifndef NETX_COMPAT_H
#define NETX_COMPAT_H

#include <sys/socket.h>

#ifdef MSG_NOSIGNAL
#define NETX__SEND_FLAGS MSG_NOSIGNAL
#else
#define NETX__SEND_FLAGS 0
#endif

/* Per-call non-blocking sends and receives. Where a system lacks the flag,
 * the socket's own O_NONBLOCK has to do. */
#ifdef MSG_DONTWAIT
#define NETX__DONTWAIT MSG_DONTWAIT
#else
#define NETX__DONTWAIT 0
#endif

#if defined(SO_NOSIGPIPE) && !defined(MSG_NOSIGNAL)
#define NETX__NEED_NOSIGPIPE 1
#else
#define NETX__NEED_NOSIGPIPE 0
#endif

#if defined(__linux__) || defined(__FreeBSD__) || defined(__NetBSD__) || defined(__OpenBSD__) ||   \
    defined(__DragonFly__)
#define NETX__HAVE_ACCEPT4 1
#else
#define NETX__HAVE_ACCEPT4 0
#endif

#ifdef SOCK_CLOEXEC
#define NETX__SOCK_CLOEXEC SOCK_CLOEXEC
#else
#define NETX__SOCK_CLOEXEC 0
#endif

#endif /* NETX_COMPAT_H */
