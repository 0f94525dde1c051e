/*
 * fuzz_addr.c - libFuzzer target for the address text functions:
 * netx_addr_parse(), netx_parse_port() and netx_addr_format().
 *
 * Each input is used three ways:
 *  - as text (a NUL-terminated copy) for netx_parse_port(), checked against
 *    the contract written out here (decimal digits only, 0 to 65535);
 *  - as text for netx_addr_parse(); what parses must format, and the text
 *    formatted must parse back to the same address and format to the same
 *    text again;
 *  - as the raw bytes of a sockaddr_in, sockaddr_in6 or sockaddr_un (the
 *    first byte chooses which, or some other family), which
 *    netx_addr_format() must write in at most NETX_ADDRSTRLEN bytes, as
 *    text that parses back (IPv4, IPv6) or starts "unix:".
 * Every address formatted is also formatted into buffers of every size from
 * 0 to NETX_ADDRSTRLEN, each allocated to exactly that size so that
 * AddressSanitizer sees a byte written past it: too small must be ENOSPC
 * with an empty string, large enough must be the same text.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stddef.h>
#include <sys/un.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "netx.h"

/* See fuzz_reader.c: abort() is a crash libFuzzer reports and keeps. */
#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_addr.c:%d: check failed: %s\n", __LINE__, #cond);                \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* Inputs longer than this say nothing new about text this short. */
#define MAX_TEXT 256

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/*
 * An address reduced to what its text form can carry. An IPv4 address seen
 * through IPv6 (::ffff:a.b.c.d) is written as plain IPv4, as netx.h says, so
 * it reduces to that IPv4 address; its zone, meaningless for IPv4, is not
 * kept.
 */
struct canon {
    int family;
    unsigned char addr[16];
    uint32_t scope;
    unsigned port;
};

static struct canon canonical(const netx_addr *a)
{
    struct canon c;
    memset(&c, 0, sizeof c);
    c.family = a->ss.ss_family;
    if (c.family == AF_INET) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)&a->ss;
        CHECK(a->len == sizeof *sin);
        memcpy(c.addr, &sin->sin_addr, 4);
        c.port = ntohs(sin->sin_port);
    } else {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&a->ss;
        CHECK(c.family == AF_INET6 && a->len == sizeof *sin6);
        c.port = ntohs(sin6->sin6_port);
        if (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr)) {
            c.family = AF_INET;
            memcpy(c.addr, &sin6->sin6_addr.s6_addr[12], 4);
        } else {
            memcpy(c.addr, &sin6->sin6_addr, 16);
            c.scope = sin6->sin6_scope_id;
        }
    }
    return c;
}

static int same_canon(const struct canon *x, const struct canon *y)
{
    return x->family == y->family && memcmp(x->addr, y->addr, sizeof x->addr) == 0 &&
           x->scope == y->scope && x->port == y->port;
}

/* The contract of netx_parse_port(), on its own: one or more decimal
 * digits whose value is 0 to 65535. Returns the value or -1. */
static long model_port(const char *s)
{
    unsigned long v = 0;
    if (*s == '\0' || strlen(s) > 5) {
        return -1; /* one to five digits: "000080" is refused */
    }
    for (; *s != '\0'; s++) {
        if (*s < '0' || *s > '9') {
            return -1;
        }
        v = v * 10 + (unsigned long)(*s - '0');
        if (v > 65535) {
            return -1;
        }
    }
    return (long)v;
}

/*
 * Format a into buffers of every size from 0 to NETX_ADDRSTRLEN: each must
 * agree with want (the text of length n written into a large buffer).
 */
static void check_every_cap(const netx_addr *a, const char *want, int n)
{
    for (size_t cap = 0; cap <= NETX_ADDRSTRLEN; cap++) {
        char *buf = malloc(cap);
        CHECK(buf != NULL || cap == 0);
        if (buf == NULL) {
            continue;
        }
        if (cap > 0) {
            memset(buf, 'x', cap);
        }
        errno = 0;
        int rc = netx_addr_format(a, buf, cap);
        if (cap > (size_t)n) {
            CHECK(rc == n);
            CHECK(memcmp(buf, want, (size_t)n + 1) == 0);
        } else {
            CHECK(rc == -1 && errno == ENOSPC);
            CHECK(cap == 0 || buf[0] == '\0');
        }
        free(buf);
    }
}

/*
 * Format a: it must succeed in NETX_ADDRSTRLEN bytes, parse back to the same
 * address, and format again to the same text. Returns the text's length.
 */
static int check_round_trip(const netx_addr *a, char *text)
{
    int n = netx_addr_format(a, text, NETX_ADDRSTRLEN);
    CHECK(n > 0 && n < NETX_ADDRSTRLEN);
    CHECK(strlen(text) == (size_t)n);

    netx_addr back;
    if (netx_addr_parse(text, &back) != 0) {
        fprintf(stderr, "formatted \"%s\" does not parse: %s\n", text, netx_last_error());
        abort();
    }
    struct canon x = canonical(a);
    struct canon y = canonical(&back);
    CHECK(same_canon(&x, &y));
    CHECK(netx_addr_port(a) == (int)x.port);

    char again[NETX_ADDRSTRLEN];
    CHECK(netx_addr_format(&back, again, sizeof again) == n);
    CHECK(strcmp(again, text) == 0);

    check_every_cap(a, text, n);
    return n;
}

static void fuzz_parse_port(const char *text)
{
    uint16_t port = 0;
    long want = model_port(text);
    errno = 0;
    int rc = netx_parse_port(text, &port);
    if (want < 0) {
        CHECK(rc == -1 && errno == EINVAL);
        /* The sentence quotes the text, bounded whatever its length. */
        CHECK(strlen(netx_last_error()) < 512);
    } else {
        CHECK(rc == 0 && port == (uint16_t)want);
    }
}

static void fuzz_parse_text(const char *text)
{
    netx_addr a;
    char out[NETX_ADDRSTRLEN];

    errno = 0;
    if (netx_addr_parse(text, &a) != 0) {
        CHECK(errno == EINVAL || (errno == ENAMETOOLONG && strncmp(text, "unix:", 5) == 0));
        CHECK(strlen(netx_last_error()) < 512);
        return;
    }
    if (strncmp(text, "unix:", 5) == 0) {
        /* A Unix socket's path: it formats back as it came. */
        CHECK(a.ss.ss_family == AF_UNIX);
        CHECK(netx_addr_format(&a, out, sizeof out) > 0);
        CHECK(strcmp(out, text) == 0 || memchr(text, '\0', strlen(text)) != NULL);
        return;
    }
    /* The port is the decimal number after the text's last ':', and the
     * brackets are there exactly for IPv6. */
    const char *colon = strrchr(text, ':');
    CHECK(colon != NULL);
    long port = model_port(colon + 1);
    CHECK(port >= 0 && netx_addr_port(&a) == port);
    CHECK((text[0] == '[') == (a.ss.ss_family == AF_INET6));
    check_round_trip(&a, out);
}

/* The input's bytes as a socket address of the family its first byte
 * chooses. */
static void fuzz_raw(const uint8_t *data, size_t size)
{
    netx_addr a;
    char out[NETX_ADDRSTRLEN];

    if (size == 0) {
        return;
    }
    memset(&a, 0, sizeof a);
    size_t rest = size - 1;
    unsigned choice = data[0] % 4;
    if (choice == 0) {
        struct sockaddr_in sin;
        memset(&sin, 0, sizeof sin);
        memcpy(&sin, data + 1, rest < sizeof sin ? rest : sizeof sin);
        sin.sin_family = AF_INET;
        memcpy(&a.ss, &sin, sizeof sin);
        a.len = sizeof sin;
    } else if (choice == 1) {
        struct sockaddr_in6 sin6;
        memset(&sin6, 0, sizeof sin6);
        memcpy(&sin6, data + 1, rest < sizeof sin6 ? rest : sizeof sin6);
        sin6.sin6_family = AF_INET6;
        memcpy(&a.ss, &sin6, sizeof sin6);
        a.len = sizeof sin6;
    } else if (choice == 2) {
        /* A Unix address: any bytes in sun_path, any length the kernel
         * could report. It formats, within NETX_ADDRSTRLEN, as "unix:...". */
        struct sockaddr_un sun;
        memset(&sun, 0, sizeof sun);
        size_t path_bytes = rest < sizeof sun.sun_path ? rest : sizeof sun.sun_path;
        memcpy(sun.sun_path, data + 1, path_bytes);
        sun.sun_family = AF_UNIX;
        memcpy(&a.ss, &sun, sizeof sun);
        a.len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + path_bytes);
        int n = netx_addr_format(&a, out, sizeof out);
        CHECK(n >= 5 && (size_t)n < sizeof out && strncmp(out, "unix:", 5) == 0);
        CHECK(netx_addr_port(&a) == -1 && errno == EAFNOSUPPORT);
        return;
    } else {
        /* Any other family: refused, leaving an empty string. */
        memcpy(&a.ss, data + 1, rest < sizeof a.ss ? rest : sizeof a.ss);
        if (a.ss.ss_family == AF_INET || a.ss.ss_family == AF_INET6 ||
            a.ss.ss_family == AF_UNIX) {
            return;
        }
        a.len = sizeof a.ss;
        memset(out, 'x', sizeof out);
        errno = 0;
        CHECK(netx_addr_format(&a, out, sizeof out) == -1 && errno == EAFNOSUPPORT);
        CHECK(out[0] == '\0');
        CHECK(netx_addr_port(&a) == -1 && errno == EAFNOSUPPORT);
        return;
    }
    check_round_trip(&a, out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char text[MAX_TEXT + 1];
    size_t len = size < MAX_TEXT ? size : MAX_TEXT;

    if (len > 0) {
        memcpy(text, data, len);
    }
    text[len] = '\0';
    fuzz_parse_port(text);
    fuzz_parse_text(text);
    fuzz_raw(data, size);
    return 0;
}
