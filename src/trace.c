/*
 * trace.c - NETX_TRACE: one line per step, so a learner sees the article's
 * steps happen:
 *
 *   netx: socket(AF_INET, SOCK_STREAM) = 3
 *   netx: bind(3, 127.0.0.1:12345) = 0
 *
 * Tracing is off unless NETX_TRACE is set (to anything but "" or "0") or
 * netx_trace() is called. The stream pointer is atomic because any thread
 * may trace while another switches tracing on or off.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "internal.h"

/*
 * Before the environment has been read, the stream holds this marker rather
 * than NULL, so netx__tracing() takes its slow path exactly once. The marker
 * is a max_align_t so that the pointer conversion is correctly aligned.
 */
static max_align_t unread_marker;
#define NETX__UNREAD ((FILE *)(void *)&unread_marker)

_Atomic(FILE *) netx__trace_out = NETX__UNREAD;

FILE *netx__trace_slow(FILE *seen)
{
    if (seen != NETX__UNREAD) {
        return seen;
    }
    const char *env = getenv("NETX_TRACE");
    FILE *want = NULL;
    if (env != NULL && env[0] != '\0' && strcmp(env, "0") != 0) {
        want = stderr;
    }
    /* Only replace the marker: a netx_trace() call in another thread wins. */
    FILE *expected = NETX__UNREAD;
    if (atomic_compare_exchange_strong(&netx__trace_out, &expected, want)) {
        return want;
    }
    return expected;
}

void netx_trace(FILE *out)
{
    atomic_store(&netx__trace_out, out);
}

void netx__trace_step(FILE *out, long rc, int err, const char *extra, const char *fmt, ...)
{
    int saved = errno;
    char raw[400];
    char line[768];
    char cause[128];
    size_t used;
    va_list ap;

    used = (size_t)snprintf(line, sizeof line, "netx: ");
    va_start(ap, fmt);
    vsnprintf(raw, sizeof raw, fmt, ap);
    va_end(ap);
    /* One step, one line, whatever a host name holds. */
    used += netx__escape(line + used, 400, raw);
    /* What follows fits in the rest: the result, a cause of at most 127
     * bytes, extra (an address) and the newline. */
    if (rc == -1) {
        netx__cause(err, cause, sizeof cause);
        snprintf(line + used, sizeof line - used, " = -1 (%s)%s\n", cause,
                 extra != NULL ? extra : "");
    } else {
        snprintf(line + used, sizeof line - used, " = %ld%s\n", rc, extra != NULL ? extra : "");
    }
    /* One fputs per line: stdio locks the stream for the call, so lines
     * from different threads never interleave. */
    fputs(line, out);
    fflush(out);
    errno = saved;
}

void netx__trace_text(FILE *out, const char *fmt, ...)
{
    int saved = errno;
    char raw[400];
    char line[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(raw, sizeof raw, fmt, ap);
    va_end(ap);
    netx__escape(line, sizeof line, raw);
    fprintf(out, "netx: %s\n", line);
    fflush(out);
    errno = saved;
}

const char *netx__family_name(int family)
{
    switch (family) {
    case AF_INET:
        return "AF_INET";
    case AF_INET6:
        return "AF_INET6";
    case AF_UNSPEC:
        return "AF_UNSPEC";
    case AF_UNIX:
        return "AF_UNIX";
    default:
        return "AF_?";
    }
}

const char *netx__type_name(int type)
{
    switch (type) {
    case SOCK_STREAM:
        return "SOCK_STREAM";
    case SOCK_DGRAM:
        return "SOCK_DGRAM";
    default:
        return "SOCK_?";
    }
}
