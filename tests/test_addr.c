/*
 * test_addr.c - addresses: netx_resolve() of literals, names and the
 * wildcard; netx_addr_parse() and netx_addr_format() and their round trip;
 * netx_parse_port() (one to five digits); netx_addr_port(); and the
 * addresses of real sockets (netx_peer_addr(), netx_local_addr(),
 * netx_local_port()) with their errors.
 */
#include "support.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

/* Assert that a holds the IPv4 address text and port. */
static void assert_ipv4(const netx_addr *a, const char *text, int port)
{
    const struct sockaddr_in *sin = (const struct sockaddr_in *)&a->ss;
    struct in_addr want;
    assert_int_equal(inet_pton(AF_INET, text, &want), 1);
    assert_int_equal(a->ss.ss_family, AF_INET);
    assert_int_equal(a->len, sizeof *sin);
    assert_int_equal(sin->sin_addr.s_addr, want.s_addr);
    assert_int_equal(ntohs(sin->sin_port), port);
}

/* Assert that a holds the IPv6 address text and port. */
static void assert_ipv6(const netx_addr *a, const char *text, int port)
{
    const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&a->ss;
    struct in6_addr want;
    assert_int_equal(inet_pton(AF_INET6, text, &want), 1);
    assert_int_equal(a->ss.ss_family, AF_INET6);
    assert_int_equal(a->len, sizeof *sin6);
    assert_memory_equal(&sin6->sin6_addr, &want, sizeof want);
    assert_int_equal(ntohs(sin6->sin6_port), port);
}

static void make_ipv4(netx_addr *a, const char *text, int port)
{
    struct sockaddr_in *sin = (struct sockaddr_in *)&a->ss;
    memset(a, 0, sizeof *a);
    sin->sin_family = AF_INET;
    sin->sin_port = htons((uint16_t)port);
    assert_int_equal(inet_pton(AF_INET, text, &sin->sin_addr), 1);
    a->len = sizeof *sin;
}

static void make_ipv6(netx_addr *a, const char *text, int port, uint32_t scope)
{
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&a->ss;
    memset(a, 0, sizeof *a);
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons((uint16_t)port);
    sin6->sin6_scope_id = scope;
    assert_int_equal(inet_pton(AF_INET6, text, &sin6->sin6_addr), 1);
    a->len = sizeof *sin6;
}

/* netx_resolve ------------------------------------------------------------ */

static void addr_resolve_ipv4_literal_one_address(void **state)
{
    (void)state;
    netx_addr a[4];
    assert_int_equal(netx_resolve("127.0.0.1", 80, a, 4), 1);
    assert_ipv4(&a[0], "127.0.0.1", 80);
}

static void addr_resolve_ipv6_literal_one_address(void **state)
{
    (void)state;
    netx_addr a[4];
    assert_int_equal(netx_resolve("::1", 8080, a, 4), 1);
    assert_ipv6(&a[0], "::1", 8080);
}

static void addr_resolve_bracketed_ipv6_strips_brackets(void **state)
{
    (void)state;
    netx_addr a[4];
    assert_int_equal(netx_resolve("[::1]", 8080, a, 4), 1);
    assert_ipv6(&a[0], "::1", 8080);
}

static void addr_resolve_localhost_gives_loopback(void **state)
{
    (void)state;
    netx_addr a[8];
    int have_127 = 0;
    int n = netx_resolve("localhost", 4242, a, 8);
    assert_true(n >= 1);
    for (int i = 0; i < n; i++) {
        assert_int_equal(netx_addr_port(&a[i]), 4242);
        if (a[i].ss.ss_family == AF_INET) {
            const struct sockaddr_in *sin = (const struct sockaddr_in *)&a[i].ss;
            /* All of 127.0.0.0/8 is loopback. */
            assert_int_equal(ntohl(sin->sin_addr.s_addr) >> 24, 127);
            have_127 = have_127 || ntohl(sin->sin_addr.s_addr) == INADDR_LOOPBACK;
        } else {
            assert_int_equal(a[i].ss.ss_family, AF_INET6);
            const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&a[i].ss;
            assert_true(IN6_IS_ADDR_LOOPBACK(&sin6->sin6_addr));
        }
    }
    /* Every system's localhost has 127.0.0.1; the article's client uses it. */
    assert_true(have_127);
}

static void addr_resolve_null_host_gives_wildcard(void **state)
{
    (void)state;
    netx_addr a[8];
    int n = netx_resolve(NULL, 9999, a, 8);
    assert_true(n >= 1);
    for (int i = 0; i < n; i++) {
        assert_int_equal(netx_addr_port(&a[i]), 9999);
        if (a[i].ss.ss_family == AF_INET) {
            const struct sockaddr_in *sin = (const struct sockaddr_in *)&a[i].ss;
            assert_int_equal(sin->sin_addr.s_addr, htonl(INADDR_ANY));
        } else {
            assert_int_equal(a[i].ss.ss_family, AF_INET6);
            const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&a[i].ss;
            assert_true(IN6_IS_ADDR_UNSPECIFIED(&sin6->sin6_addr));
        }
    }
}

static void addr_resolve_max_bounds_count(void **state)
{
    (void)state;
    netx_addr a[2];

    /* The wildcard has an IPv4 and an IPv6 form on most systems; with room
     * for one, one is stored and the slot after it is never touched. */
    memset(&a[1], 0xAB, sizeof a[1]);
    assert_int_equal(netx_resolve(NULL, 80, a, 1), 1);
    unsigned char untouched[sizeof a[1]];
    memset(untouched, 0xAB, sizeof untouched);
    assert_memory_equal(&a[1], untouched, sizeof untouched);
}

static void addr_resolve_bad_arguments_einval(void **state)
{
    (void)state;
    netx_addr a;
    errno = 0;
    assert_int_equal(netx_resolve("127.0.0.1", 80, &a, 0), -1);
    assert_int_equal(errno, EINVAL);
    errno = 0;
    assert_int_equal(netx_resolve("127.0.0.1", 80, &a, -3), -1);
    assert_int_equal(errno, EINVAL);
    errno = 0;
    assert_int_equal(netx_resolve("127.0.0.1", 80, NULL, 1), -1);
    assert_int_equal(errno, EINVAL);
}

/* netx_addr_parse --------------------------------------------------------- */

static void addr_parse_accepts_ipv4_and_bracketed_ipv6(void **state)
{
    (void)state;
    netx_addr a;

    assert_int_equal(netx_addr_parse("127.0.0.1:80", &a), 0);
    assert_ipv4(&a, "127.0.0.1", 80);
    assert_int_equal(netx_addr_parse("[::1]:8080", &a), 0);
    assert_ipv6(&a, "::1", 8080);
    assert_int_equal(netx_addr_parse("[::1]:0", &a), 0);
    assert_ipv6(&a, "::1", 0);
    assert_int_equal(netx_addr_parse("1.2.3.4:65535", &a), 0);
    assert_ipv4(&a, "1.2.3.4", 65535);
}

static void addr_parse_rejects_malformed_einval(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "127.0.0.1",       /* no port */
        "::1:80",          /* IPv6 without brackets */
        "[::1]80",         /* no colon after the bracket */
        "127.0.0.1:65536", /* port out of range */
        "127.0.0.1:-1",    /* negative port */
        "127.0.0.1:8x",    /* not a number */
        "127.1:80",        /* shorthand IPv4 is not numeric enough */
        "[127.0.0.1]:80",  /* brackets are for IPv6 */
        "",                /* nothing */
        ":80",             /* no address */
        "127.0.0.1:",      /* empty port */
        "[::1:80",         /* unclosed bracket */
        "localhost:80",    /* a name: parse never resolves */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        netx_addr a;
        errno = 0;
        int rc = netx_addr_parse(bad[i], &a);
        if (rc != -1 || errno != EINVAL) {
            fail_msg("netx_addr_parse(\"%s\") = %d, errno %d; want -1, EINVAL", bad[i], rc, errno);
        }
    }
}

/* A port is one to five digits: leading zeros are fine up to five ("00080"
 * is 80), but a run of zeros longer than any port is text no one typed. */
static void addr_parse_port_more_than_five_digits_einval(void **state)
{
    (void)state;
    static const char *const too_long[] = {
        "000080",                 /* six digits, value 80 */
        "0000000000000000000080", /* twenty-two digits, value 80 */
        "000000",                 /* six zeros */
        "065535",                 /* six digits, value 65535 */
    };
    uint16_t port = 1;

    for (size_t i = 0; i < sizeof too_long / sizeof too_long[0]; i++) {
        errno = 0;
        int rc = netx_parse_port(too_long[i], &port);
        if (rc != -1 || errno != EINVAL) {
            fail_msg("netx_parse_port(\"%s\") = %d (port %u), errno %d; want -1, EINVAL",
                     too_long[i], rc, (unsigned)port, errno);
        }
    }
    /* The boundary from the other side: five digits are read. */
    assert_int_equal(netx_parse_port("00080", &port), 0);
    assert_int_equal(port, 80);
    assert_int_equal(netx_parse_port("65535", &port), 0);
    assert_int_equal(port, 65535);
    assert_int_equal(netx_parse_port("0", &port), 0);
    assert_int_equal(port, 0);
}

/* The port inside an address follows the same rule as netx_parse_port(). */
static void addr_parse_port_of_six_digits_einval(void **state)
{
    (void)state;
    netx_addr a;

    errno = 0;
    assert_int_equal(netx_addr_parse("127.0.0.1:000080", &a), -1);
    assert_int_equal(errno, EINVAL);
    errno = 0;
    assert_int_equal(netx_addr_parse("[::1]:0000000000000000000080", &a), -1);
    assert_int_equal(errno, EINVAL);
    /* Five digits, leading zeros included, are a port. */
    assert_int_equal(netx_addr_parse("127.0.0.1:00080", &a), 0);
    assert_ipv4(&a, "127.0.0.1", 80);
    assert_int_equal(netx_addr_parse("[::1]:08080", &a), 0);
    assert_ipv6(&a, "::1", 8080);
}

static void addr_parse_null_arguments_einval(void **state)
{
    (void)state;
    netx_addr a;
    errno = 0;
    assert_int_equal(netx_addr_parse(NULL, &a), -1);
    assert_int_equal(errno, EINVAL);
    errno = 0;
    assert_int_equal(netx_addr_parse("127.0.0.1:80", NULL), -1);
    assert_int_equal(errno, EINVAL);
}

/* netx_addr_format -------------------------------------------------------- */

static void addr_format_ipv4_dotted_with_port(void **state)
{
    (void)state;
    netx_addr a;
    char buf[NETX_ADDRSTRLEN];
    make_ipv4(&a, "127.0.0.1", 80);
    assert_int_equal(netx_addr_format(&a, buf, sizeof buf), (int)strlen("127.0.0.1:80"));
    assert_string_equal(buf, "127.0.0.1:80");
}

static void addr_format_ipv6_bracketed(void **state)
{
    (void)state;
    netx_addr a;
    char buf[NETX_ADDRSTRLEN];
    make_ipv6(&a, "::1", 8080, 0);
    assert_int_equal(netx_addr_format(&a, buf, sizeof buf), (int)strlen("[::1]:8080"));
    assert_string_equal(buf, "[::1]:8080");
}

static void addr_format_v4mapped_prints_ipv4(void **state)
{
    (void)state;
    netx_addr a;
    char buf[NETX_ADDRSTRLEN];
    make_ipv6(&a, "::ffff:127.0.0.1", 51234, 0);
    assert_int_equal(netx_addr_format(&a, buf, sizeof buf), (int)strlen("127.0.0.1:51234"));
    assert_string_equal(buf, "127.0.0.1:51234");
}

static void addr_format_small_buffer_enospc(void **state)
{
    (void)state;
    netx_addr a;
    char buf[NETX_ADDRSTRLEN];
    const char *want = "127.0.0.1:80";
    size_t len = strlen(want);

    make_ipv4(&a, "127.0.0.1", 80);
    /* One byte short of the NUL: refused, and buf is left empty. */
    memset(buf, 'x', sizeof buf);
    errno = 0;
    assert_int_equal(netx_addr_format(&a, buf, len), -1);
    assert_int_equal(errno, ENOSPC);
    assert_string_equal(buf, "");
    /* Exactly enough: accepted. */
    assert_int_equal(netx_addr_format(&a, buf, len + 1), (int)len);
    assert_string_equal(buf, want);
}

/* A family that is not IPv4, IPv6 or Unix: EAFNOSUPPORT, naming it, and
 * an empty buffer. (Unix addresses format as "unix:PATH": test_unix.c.) */
static void addr_format_other_family_eafnosupport(void **state)
{
    (void)state;
    netx_addr a;
    char buf[NETX_ADDRSTRLEN];

    memset(&a, 0, sizeof a);
    a.ss.ss_family = AF_UNSPEC;
    a.len = sizeof a.ss;
    memset(buf, 'x', sizeof buf);
    errno = 0;
    assert_int_equal(netx_addr_format(&a, buf, sizeof buf), -1);
    assert_int_equal(errno, EAFNOSUPPORT);
    assert_string_equal(buf, "");
    assert_string_equal(netx_last_error(),
                        "format address: family 0 is not IPv4, IPv6 or Unix: "
                        "Address family not supported by protocol");
}

static void addr_format_parse_roundtrip(void **state)
{
    (void)state;
    netx_addr in[6];
    make_ipv4(&in[0], "127.0.0.1", 80);
    make_ipv4(&in[1], "0.0.0.0", 0);
    make_ipv4(&in[2], "255.255.255.255", 65535);
    make_ipv6(&in[3], "::1", 8080, 0);
    make_ipv6(&in[4], "2001:db8::42", 65535, 0);
    make_ipv6(&in[5], "fe80::1", 443, 3); /* a zone, kept as its index */

    for (size_t i = 0; i < sizeof in / sizeof in[0]; i++) {
        char text[NETX_ADDRSTRLEN];
        netx_addr out;
        assert_true(netx_addr_format(&in[i], text, sizeof text) > 0);
        if (netx_addr_parse(text, &out) != 0) {
            fail_msg("netx_addr_parse(\"%s\") failed: %s", text, netx_last_error());
        }
        assert_int_equal(out.len, in[i].len);
        assert_memory_equal(&out.ss, &in[i].ss, in[i].len);
    }
}

/* netx_addr_port ---------------------------------------------------------- */

static void addr_port_reads_host_order(void **state)
{
    (void)state;
    netx_addr a;
    make_ipv4(&a, "10.0.0.1", 51234);
    assert_int_equal(netx_addr_port(&a), 51234);
    make_ipv6(&a, "::1", 65535, 0);
    assert_int_equal(netx_addr_port(&a), 65535);
    make_ipv6(&a, "::1", 0, 0);
    assert_int_equal(netx_addr_port(&a), 0);
}

static void addr_port_bad_address_fails(void **state)
{
    (void)state;
    netx_addr a;
    memset(&a, 0, sizeof a);
    a.ss.ss_family = AF_UNIX;
    errno = 0;
    assert_int_equal(netx_addr_port(&a), -1);
    assert_int_equal(errno, EAFNOSUPPORT);
    errno = 0;
    assert_int_equal(netx_addr_port(NULL), -1);
    assert_int_equal(errno, EINVAL);
}

/* Addresses of real sockets ----------------------------------------------- */

static void addr_peer_and_local_match_across_pair(void **state)
{
    (void)state;
    netx_addr c_local, c_peer, s_local, s_peer;
    char a_text[NETX_ADDRSTRLEN], b_text[NETX_ADDRSTRLEN];
    int c, s;

    support_tcp_pair("127.0.0.1", &c, &s);
    assert_int_equal(netx_local_addr(c, &c_local), 0);
    assert_int_equal(netx_peer_addr(c, &c_peer), 0);
    assert_int_equal(netx_local_addr(s, &s_local), 0);
    assert_int_equal(netx_peer_addr(s, &s_peer), 0);

    /* What one end calls "mine", the other calls "the peer's". */
    assert_true(netx_addr_format(&c_local, a_text, sizeof a_text) > 0);
    assert_true(netx_addr_format(&s_peer, b_text, sizeof b_text) > 0);
    assert_string_equal(a_text, b_text);
    assert_true(netx_addr_format(&c_peer, a_text, sizeof a_text) > 0);
    assert_true(netx_addr_format(&s_local, b_text, sizeof b_text) > 0);
    assert_string_equal(a_text, b_text);
    assert_ipv4(&c_peer, "127.0.0.1", netx_local_port(s));
    assert_int_equal(netx_local_port(c), netx_addr_port(&s_peer));
    assert_true(netx_local_port(c) > 0);

    netx_close(c);
    netx_close(s);
}

static void addr_peer_unconnected_enotconn(void **state)
{
    (void)state;
    netx_addr a;
    int fd = netx_socket(AF_INET, SOCK_STREAM);
    assert_true(fd >= 0);
    errno = 0;
    assert_int_equal(netx_peer_addr(fd, &a), -1);
    assert_int_equal(errno, ENOTCONN);
    assert_int_equal(netx_last_errno(), ENOTCONN);
    netx_close(fd);
}

static void addr_local_port_unbound_is_zero(void **state)
{
    (void)state;
    int fd = netx_socket(AF_INET, SOCK_STREAM);
    assert_true(fd >= 0);
    assert_int_equal(netx_local_port(fd), 0);
    netx_close(fd);
}

static void addr_local_port_unix_socket_eafnosupport(void **state)
{
    (void)state;
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    errno = 0;
    assert_int_equal(netx_local_port(sv[0]), -1);
    assert_int_equal(errno, EAFNOSUPPORT);
    close(sv[0]);
    close(sv[1]);
}

static void addr_closed_descriptor_ebadf(void **state)
{
    (void)state;
    netx_addr a;
    int fd = netx_socket(AF_INET, SOCK_STREAM);
    assert_true(fd >= 0);
    assert_int_equal(netx_close(fd), 0);

    /* This test makes no descriptors in between, so fd stays closed. */
    errno = 0;
    assert_int_equal(netx_peer_addr(fd, &a), -1);
    assert_int_equal(errno, EBADF);
    errno = 0;
    assert_int_equal(netx_local_addr(fd, &a), -1);
    assert_int_equal(errno, EBADF);
    errno = 0;
    assert_int_equal(netx_local_port(fd), -1);
    assert_int_equal(errno, EBADF);
}

static void addr_socket_queries_null_out_einval(void **state)
{
    (void)state;
    int fd = netx_socket(AF_INET, SOCK_STREAM);
    assert_true(fd >= 0);
    errno = 0;
    assert_int_equal(netx_peer_addr(fd, NULL), -1);
    assert_int_equal(errno, EINVAL);
    errno = 0;
    assert_int_equal(netx_local_addr(fd, NULL), -1);
    assert_int_equal(errno, EINVAL);
    netx_close(fd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TEST(addr_resolve_ipv4_literal_one_address),
        TEST(addr_resolve_ipv6_literal_one_address),
        TEST(addr_resolve_bracketed_ipv6_strips_brackets),
        TEST(addr_resolve_localhost_gives_loopback),
        TEST(addr_resolve_null_host_gives_wildcard),
        TEST(addr_resolve_max_bounds_count),
        TEST(addr_resolve_bad_arguments_einval),
        TEST(addr_parse_accepts_ipv4_and_bracketed_ipv6),
        TEST(addr_parse_rejects_malformed_einval),
        TEST(addr_parse_port_more_than_five_digits_einval),
        TEST(addr_parse_port_of_six_digits_einval),
        TEST(addr_parse_null_arguments_einval),
        TEST(addr_format_ipv4_dotted_with_port),
        TEST(addr_format_ipv6_bracketed),
        TEST(addr_format_v4mapped_prints_ipv4),
        TEST(addr_format_small_buffer_enospc),
        TEST(addr_format_other_family_eafnosupport),
        TEST(addr_format_parse_roundtrip),
        TEST(addr_port_reads_host_order),
        TEST(addr_port_bad_address_fails),
        TEST(addr_peer_and_local_match_across_pair),
        TEST(addr_peer_unconnected_enotconn),
        TEST(addr_local_port_unbound_is_zero),
        TEST(addr_local_port_unix_socket_eafnosupport),
        TEST(addr_closed_descriptor_ebadf),
        TEST(addr_socket_queries_null_out_einval),
    };
    return cmocka_run_group_tests_name("addr", tests, NULL, NULL);
}
