/*
 * addr.c - names and addresses: resolving "localhost" into 127.0.0.1,
 * parsing and formatting "127.0.0.1:80" and "[::1]:80".
 *
 * Everything here works on netx_addr, a sockaddr_storage with its length, so
 * IPv4 and IPv6 travel through the same code.
 */
#if defined(__linux__) && !defined(_GNU_SOURCE)
/* glibc declares EAI_NODATA and EAI_ADDRFAMILY, which getaddrinfo() does
 * return, only with _GNU_SOURCE. */
#define _GNU_SOURCE
#endif

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h> /* strncasecmp */
#include <sys/un.h>
#include <unistd.h>

#include "internal.h"

/* Brackets are how people write IPv6 next to a port; the resolver wants
 * them off. Returns host itself, or a copy without them in buf. */
static const char *strip_brackets(const char *host, char *buf, size_t cap)
{
    size_t len = strlen(host);
    if (len >= 2 && host[0] == '[' && host[len - 1] == ']' && len - 2 < cap) {
        memcpy(buf, host + 1, len - 2);
        buf[len - 2] = '\0';
        return buf;
    }
    return host;
}

static int same_addr(const netx_addr *a, const struct addrinfo *ai)
{
    return a->len == ai->ai_addrlen && memcmp(&a->ss, ai->ai_addr, a->len) == 0;
}

/*
 * getaddrinfo() reports failures in its own EAI_* codes, which are not errno
 * values. Callers of libnetx check errno alone, so each code is mapped to the
 * errno that means the nearest thing; the exact code stays available from
 * netx_last_gai_error(). This table is the one in docs/errors.md.
 */
int netx__gai_errno(int gai, int sys_err)
{
    switch (gai) {
    case EAI_NONAME:
#ifdef EAI_NODATA
    case EAI_NODATA:
#endif
#ifdef EAI_ADDRFAMILY
    case EAI_ADDRFAMILY:
#endif
        return ENOENT;
    case EAI_AGAIN:
        return EAGAIN;
    case EAI_MEMORY:
        return ENOMEM;
    case EAI_FAMILY:
        return EAFNOSUPPORT;
    case EAI_BADFLAGS:
    case EAI_SERVICE:
    case EAI_SOCKTYPE:
        return EINVAL;
    case EAI_SYSTEM:
        return sys_err != 0 ? sys_err : EIO;
    default:
        return EIO;
    }
}

/* The address alone, without brackets or port: "127.0.0.1", "::1". */
void netx__address_only(const netx_addr *a, char *buf, size_t cap)
{
    const void *raw = NULL;
    if (a->ss.ss_family == AF_INET) {
        raw = &((const struct sockaddr_in *)&a->ss)->sin_addr;
    } else if (a->ss.ss_family == AF_INET6) {
        raw = &((const struct sockaddr_in6 *)&a->ss)->sin6_addr;
    }
    if (raw == NULL || inet_ntop(a->ss.ss_family, raw, buf, (socklen_t)cap) == NULL) {
        snprintf(buf, cap, "?");
    }
}

/* EMFILE or ENFILE if this process cannot open one more descriptor, else
 * 0: asked after the resolver failed, to tell that apart from a name that
 * does not exist. */
static int out_of_descriptors(void)
{
    int saved = errno;
    int fd = open("/", O_RDONLY | O_CLOEXEC);
    int err = fd < 0 && (errno == EMFILE || errno == ENFILE) ? errno : 0;
    if (fd >= 0) {
        close(fd);
    }
    errno = saved;
    return err;
}

/* 1 if host is "HOST:PORT" or "[V6]:PORT": a port where only a host goes
 * ("127.0.0.1:80" given as a host). An IPv6 address has colons of its own
 * ("::1", "fe80::1"), so only a single colon, or one right after a
 * bracketed address, starts a port. */
static int port_in_host(const char *host)
{
    const char *colon = strrchr(host, ':');
    if (colon == NULL || colon[1] == '\0' || colon[1 + strspn(colon + 1, "0123456789")] != '\0') {
        return 0;
    }
    if (colon > host && colon[-1] == ']') {
        return host[0] == '[';
    }
    return strchr(host, ':') == colon;
}

/* 1 if name is in the domain "invalid" ("invalid", "no-such.invalid",
 * with or without the final dot, in any case). RFC 6761 reserves it for
 * names that never exist and asks resolver libraries to answer no at once:
 * asked, the system's resolver would send the question to a DNS server. */
static int in_invalid_domain(const char *name)
{
    static const char tld[] = "invalid";
    size_t n = sizeof tld - 1;
    size_t len = strlen(name);
    if (len > 0 && name[len - 1] == '.') {
        len--;
    }
    if (len < n || strncasecmp(name + len - n, tld, n) != 0) {
        return 0;
    }
    return len == n || name[len - n - 1] == '.';
}

int netx__resolve(const char *host, uint16_t port, int socktype, netx_addr *out, int max)
{
    char service[8];
    char bare[256]; /* longest DNS name is 253 */
    struct addrinfo hints;
    struct addrinfo *list = NULL;
    int count = 0;

    if (out == NULL || max < 1) {
        return netx__fail(EINVAL, "resolve %s: %s", host != NULL ? host : "(any)",
                          out == NULL ? "out is NULL" : "max is less than 1");
    }
    if (host != NULL && port_in_host(host)) {
        /* Said at once, rather than asked of the resolver - which would
         * look the whole text up as a name, DNS included, and answer "Name
         * or service not known". */
        return netx__fail_because(EINVAL, "a port in the host name: give the host and the port "
                                          "apart",
                                  "resolve %s", host);
    }
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = socktype;
    /* No AI_ADDRCONFIG: it hides ::1 on machines whose only IPv6 address is
     * the loopback one, and loopback is exactly where people test. */
    hints.ai_flags = AI_NUMERICSERV | (host == NULL ? AI_PASSIVE : 0);
    snprintf(service, sizeof service, "%u", (unsigned)port);

    const char *name = host != NULL ? strip_brackets(host, bare, sizeof bare) : NULL;
    int saved = errno; /* the resolver may set errno even when it succeeds */
    int gai = name != NULL && in_invalid_domain(name) ? EAI_NONAME
                                                      : getaddrinfo(name, service, &hints, &list);
    if (gai != 0) {
        int sys_err = errno;
        int no_fds = gai != EAI_SYSTEM ? out_of_descriptors() : 0;
        if (no_fds != 0) {
            /* glibc's resolver needs descriptors (/etc/hosts, a socket to
             * the DNS server); without any it says "Name or service not
             * known", which sends people hunting for a typo. */
            gai = EAI_SYSTEM;
            sys_err = no_fds;
        }
        netx__fail_gai(gai, sys_err, host != NULL ? host : "(any)");
        FILE *t = netx__tracing();
        if (t != NULL) {
            char cause[128];
            if (gai == EAI_SYSTEM) {
                netx__strerror(errno, cause, sizeof cause);
            } else {
                snprintf(cause, sizeof cause, "%s", gai_strerror(gai));
            }
            netx__trace_text(t, "resolve(%s) = -1 (%s)", host != NULL ? host : "(any)", cause);
        }
        return -1;
    }
    errno = saved;
    for (struct addrinfo *ai = list; ai != NULL && count < max; ai = ai->ai_next) {
        if (ai->ai_addrlen > sizeof out[0].ss) {
            continue;
        }
        int dup = 0;
        for (int i = 0; i < count; i++) {
            dup = dup || same_addr(&out[i], ai);
        }
        if (!dup) {
            memset(&out[count], 0, sizeof out[count]);
            memcpy(&out[count].ss, ai->ai_addr, ai->ai_addrlen);
            out[count].len = ai->ai_addrlen;
            count++;
        }
    }
    freeaddrinfo(list);

    FILE *t = netx__tracing();
    if (t != NULL) {
        /* "resolve(localhost) = 127.0.0.1, ::1": the addresses, in order. */
        char list_text[4 * NETX_ADDRSTRLEN] = "";
        size_t used = 0;
        for (int i = 0; i < count && i < 4; i++) {
            char text[NETX_ADDRSTRLEN];
            netx__address_only(&out[i], text, sizeof text);
            int w = snprintf(list_text + used, sizeof list_text - used, "%s%s", i == 0 ? "" : ", ",
                             text);
            if (w < 0 || (size_t)w >= sizeof list_text - used) {
                break;
            }
            used += (size_t)w;
        }
        netx__trace_text(t, "resolve(%s) = %s%s", host != NULL ? host : "*", list_text,
                         count > 4 ? ", ..." : "");
    }
    if (count == 0) {
        return netx__fail(ENOENT, "resolve %s: no usable address", host != NULL ? host : "(any)");
    }
    return count;
}

int netx_resolve(const char *host, uint16_t port, netx_addr *out, int max)
{
    return netx__resolve(host, port, SOCK_STREAM, out, max);
}

void netx__ipv4_first(netx_addr *addrs, int n)
{
    /* A stable partition: insertion sort on "is IPv4", n is small. */
    for (int i = 1; i < n; i++) {
        if (addrs[i].ss.ss_family != AF_INET) {
            continue;
        }
        netx_addr moving = addrs[i];
        int j = i;
        while (j > 0 && addrs[j - 1].ss.ss_family != AF_INET) {
            addrs[j] = addrs[j - 1];
            j--;
        }
        addrs[j] = moving;
    }
}

/* A decimal number from 0 to max, digits only (leading zeros allowed).
 * Returns 0 with the value in *out, or -1 if s is not one. The bound is
 * checked before each digit is added, so no input can overflow. */
static int parse_decimal(const char *s, unsigned long max, unsigned long *out)
{
    unsigned long v = 0;
    if (*s == '\0') {
        return -1;
    }
    for (; *s != '\0'; s++) {
        if (*s < '0' || *s > '9') {
            return -1;
        }
        unsigned long digit = (unsigned long)(*s - '0');
        if (v > (max - digit) / 10) {
            return -1;
        }
        v = v * 10 + digit;
    }
    *out = v;
    return 0;
}

/* A decimal port, 0 to 65535: one to five digits, nothing else ("00080" is
 * 80; "000000080" is refused, as no one types it). Returns -1 if it is not
 * one. */
static long parse_port(const char *s)
{
    unsigned long v;
    if (strlen(s) > 5) {
        return -1;
    }
    return parse_decimal(s, 65535, &v) == 0 ? (long)v : -1;
}

int netx_parse_port(const char *text, uint16_t *out)
{
    long port = text != NULL ? parse_port(text) : -1;
    if (port < 0 || out == NULL) {
        return netx__fail(EINVAL, "port \"%.20s\": not a number from 0 to 65535",
                          text != NULL ? text : "(null)");
    }
    *out = (uint16_t)port;
    return 0;
}

/* "fe80::1%eth0" or "fe80::1%2": split off the zone and turn it into the
 * interface index. */
static int parse_ipv6(char *text, struct sockaddr_in6 *sin6)
{
    char *zone = strchr(text, '%');
    if (zone != NULL) {
        *zone++ = '\0';
        /* Any index a sin6_scope_id can hold, so that what
         * netx_addr_format() writes ("%4000000000") always reads back. */
        unsigned long idx;
        if (parse_decimal(zone, UINT32_MAX, &idx) != 0) {
            unsigned named = if_nametoindex(zone);
            if (named == 0) {
                return -1;
            }
            idx = named;
        }
        sin6->sin6_scope_id = (uint32_t)idx;
    }
    return inet_pton(AF_INET6, text, &sin6->sin6_addr) == 1 ? 0 : -1;
}

int netx_addr_parse(const char *text, netx_addr *out)
{
    char host[NETX_ADDRSTRLEN];
    const char *port_text;
    size_t host_len;

    if (text == NULL || out == NULL) {
        return netx__fail(EINVAL, "parse address: %s is NULL", text == NULL ? "text" : "out");
    }
    if (strncmp(text, "unix:", 5) == 0) {
        return netx__unix_addr(text + 5, out, "parse address");
    }
    if (text[0] == '[') {
        const char *close = strchr(text, ']');
        if (close == NULL || close[1] != ':') {
            goto bad;
        }
        host_len = (size_t)(close - text - 1);
        if (host_len == 0 || host_len >= sizeof host) {
            goto bad;
        }
        memcpy(host, text + 1, host_len);
        port_text = close + 2;
    } else {
        const char *colon = strrchr(text, ':');
        if (colon == NULL) {
            goto bad;
        }
        host_len = (size_t)(colon - text);
        if (host_len == 0 || host_len >= sizeof host) {
            goto bad;
        }
        memcpy(host, text, host_len);
        port_text = colon + 1;
    }
    host[host_len] = '\0';
    long port = parse_port(port_text);
    if (port < 0) {
        goto bad;
    }

    memset(out, 0, sizeof *out);
    if (text[0] == '[') {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&out->ss;
        if (parse_ipv6(host, sin6) != 0) {
            goto bad;
        }
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons((uint16_t)port);
        out->len = sizeof *sin6;
    } else {
        struct sockaddr_in *sin = (struct sockaddr_in *)&out->ss;
        if (inet_pton(AF_INET, host, &sin->sin_addr) != 1) {
            goto bad;
        }
        sin->sin_family = AF_INET;
        sin->sin_port = htons((uint16_t)port);
        out->len = sizeof *sin;
    }
    return 0;

bad:
    /* Keep the sentence one line and bounded whatever text holds. */
    return netx__fail(EINVAL, "parse address \"%.60s\": expected 1.2.3.4:PORT or [::1]:PORT", text);
}

int netx_addr_format(const netx_addr *addr, char *buf, size_t cap)
{
    char host[INET6_ADDRSTRLEN];
    char zone[16] = "";
    unsigned port;
    int n;

    if (buf != NULL && cap > 0) {
        buf[0] = '\0';
    }
    if (addr == NULL || buf == NULL) {
        return netx__fail(EINVAL, "format address: %s is NULL", addr == NULL ? "addr" : "buf");
    }
    if (addr->ss.ss_family == AF_INET) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)&addr->ss;
        inet_ntop(AF_INET, &sin->sin_addr, host, sizeof host);
        port = ntohs(sin->sin_port);
        n = snprintf(buf, cap, "%s:%u", host, port);
    } else if (addr->ss.ss_family == AF_INET6) {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&addr->ss;
        port = ntohs(sin6->sin6_port);
        if (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr)) {
            /* An IPv4 client of a dual-stack socket: show it as IPv4. */
            inet_ntop(AF_INET, &sin6->sin6_addr.s6_addr[12], host, sizeof host);
            n = snprintf(buf, cap, "%s:%u", host, port);
        } else {
            inet_ntop(AF_INET6, &sin6->sin6_addr, host, sizeof host);
            if (sin6->sin6_scope_id != 0) {
                snprintf(zone, sizeof zone, "%%%u", (unsigned)sin6->sin6_scope_id);
            }
            n = snprintf(buf, cap, "[%s%s]:%u", host, zone, port);
        }
    } else if (addr->ss.ss_family == AF_UNIX) {
        n = netx__format_unix(addr, buf, cap);
    } else {
        return netx__fail(EAFNOSUPPORT, "format address: family %d is not IPv4, IPv6 or Unix",
                          (int)addr->ss.ss_family);
    }
    if (n < 0 || (size_t)n >= cap) {
        if (cap > 0) {
            buf[0] = '\0';
        }
        return netx__fail(ENOSPC, "format address: %zu bytes are too few", cap);
    }
    return n;
}

int netx_addr_port(const netx_addr *addr)
{
    if (addr == NULL) {
        return netx__fail(EINVAL, "address port: addr is NULL");
    }
    if (addr->ss.ss_family == AF_INET) {
        return ntohs(((const struct sockaddr_in *)&addr->ss)->sin_port);
    }
    if (addr->ss.ss_family == AF_INET6) {
        return ntohs(((const struct sockaddr_in6 *)&addr->ss)->sin6_port);
    }
    return netx__fail(EAFNOSUPPORT, "address port: family %d is not IPv4 or IPv6",
                      (int)addr->ss.ss_family);
}

int netx_peer_addr(int fd, netx_addr *out)
{
    if (out == NULL) {
        return netx__fail(EINVAL, "peer address of fd %d: out is NULL", fd);
    }
    memset(out, 0, sizeof *out);
    out->len = sizeof out->ss;
    if (getpeername(fd, (struct sockaddr *)&out->ss, &out->len) != 0) {
        return netx__fail(errno, "peer address of fd %d", fd);
    }
    return 0;
}

int netx_local_addr(int fd, netx_addr *out)
{
    if (out == NULL) {
        return netx__fail(EINVAL, "local address of fd %d: out is NULL", fd);
    }
    memset(out, 0, sizeof *out);
    out->len = sizeof out->ss;
    if (getsockname(fd, (struct sockaddr *)&out->ss, &out->len) != 0) {
        return netx__fail(errno, "local address of fd %d", fd);
    }
    return 0;
}

int netx_local_port(int fd)
{
    netx_addr a;
    if (netx_local_addr(fd, &a) != 0) {
        return -1;
    }
    return netx_addr_port(&a);
}
