/*
 * test_udp.c - guide step 6, datagrams, over real loopback sockets: echo
 * through a connected socket and through sendto/recvfrom, IPv6, truncation
 * that is reported (EMSGSIZE) rather than silent, empty datagrams, datagram
 * boundaries, ICMP refusals (ECONNREFUSED), timeouts, argument checks,
 * "localhost" on both sides, and "" for every interface.
 */
#include "support.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* A bound on every receive, so a lost datagram fails a test instead of
 * hanging the binary. */
#define UDP_GUARD_MS 2000

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A UDP socket bound to host on a free port, with a receive guard. */
static int bound(const char *host)
{
    int fd = netx_udp_bind(host, 0);
    assert_true(fd >= 0);
    assert_int_equal(netx_set_timeout(fd, UDP_GUARD_MS), 0);
    return fd;
}

/* A UDP socket connected to the socket server (bound to host). */
static int connected_to(const char *host, int server)
{
    int port = netx_local_port(server);
    assert_true(port > 0);
    int fd = netx_udp_connect(host, (uint16_t)port);
    assert_true(fd >= 0);
    assert_int_equal(netx_set_timeout(fd, UDP_GUARD_MS), 0);
    return fd;
}

/* The address of a socket, to send to it. */
static netx_addr address_of(int fd)
{
    netx_addr a;
    assert_int_equal(netx_local_addr(fd, &a), 0);
    return a;
}

/* A port on which, a moment ago, nothing was bound. */
static uint16_t free_udp_port(void)
{
    int fd = netx_udp_bind("127.0.0.1", 0);
    assert_true(fd >= 0);
    int port = netx_local_port(fd);
    assert_true(port > 0);
    assert_int_equal(netx_close(fd), 0);
    return (uint16_t)port;
}

/* ------------------------------------------------------------------------ */

static void udp_connected_echo_roundtrip(void **state)
{
    (void)state;
    char buf[64];
    netx_addr from;
    int server = bound("127.0.0.1");
    int client = connected_to("127.0.0.1", server);

    assert_int_equal(netx_send(client, "ping", 4), 4);
    assert_int_equal(netx_recvfrom(server, buf, sizeof buf, &from), 4);
    assert_memory_equal(buf, "ping", 4);
    assert_int_equal(netx_sendto(server, buf, 4, &from), 4);
    assert_int_equal(netx_recv(client, buf, sizeof buf), 4);
    assert_memory_equal(buf, "ping", 4);
    netx_close(client);
    netx_close(server);
}

static void udp_recvfrom_reports_sender_port(void **state)
{
    (void)state;
    char buf[64];
    netx_addr from;
    int a = bound("127.0.0.1");
    int b = bound("127.0.0.1");
    netx_addr to_b = address_of(b);

    assert_int_equal(netx_sendto(a, "hi b", 4, &to_b), 4);
    assert_int_equal(netx_recvfrom(b, buf, sizeof buf, &from), 4);
    assert_memory_equal(buf, "hi b", 4);
    assert_int_equal(from.ss.ss_family, AF_INET);
    assert_int_equal(netx_addr_port(&from), netx_local_port(a));

    /* Replying to from reaches a, and a sees b's port in turn. */
    assert_int_equal(netx_sendto(b, "hi a", 4, &from), 4);
    assert_int_equal(netx_recvfrom(a, buf, sizeof buf, &from), 4);
    assert_memory_equal(buf, "hi a", 4);
    assert_int_equal(netx_addr_port(&from), netx_local_port(b));
    netx_close(a);
    netx_close(b);
}

static void udp_sendto_null_uses_connected_peer(void **state)
{
    (void)state;
    char buf[16];
    int server = bound("127.0.0.1");
    int client = connected_to("127.0.0.1", server);
    assert_int_equal(netx_sendto(client, "peer", 4, NULL), 4);
    assert_int_equal(netx_recvfrom(server, buf, sizeof buf, NULL), 4);
    assert_memory_equal(buf, "peer", 4);
    netx_close(client);
    netx_close(server);
}

static void udp_roundtrip_ipv6_succeeds(void **state)
{
    (void)state;
    char buf[64];
    netx_addr from;
    if (!support_have_ipv6()) {
        skip();
    }
    int server = bound("::1");
    int client = connected_to("::1", server);

    assert_int_equal(netx_send(client, "six", 3), 3);
    assert_int_equal(netx_recvfrom(server, buf, sizeof buf, &from), 3);
    assert_memory_equal(buf, "six", 3);
    assert_int_equal(from.ss.ss_family, AF_INET6);
    assert_int_equal(netx_addr_port(&from), netx_local_port(client));
    assert_int_equal(netx_sendto(server, "back", 4, &from), 4);
    assert_int_equal(netx_recv(client, buf, sizeof buf), 4);
    assert_memory_equal(buf, "back", 4);
    netx_close(client);
    netx_close(server);
}

static void udp_recv_truncated_emsgsize(void **state)
{
    (void)state;
    unsigned char big[100];
    unsigned char buf[10];
    support_pattern(big, sizeof big, 11);
    memset(buf, 0, sizeof buf);
    int server = bound("127.0.0.1");
    int client = connected_to("127.0.0.1", server);
    netx_addr to_client = address_of(client);

    assert_int_equal(netx_sendto(server, big, sizeof big, &to_client), 100);
    assert_int_equal(netx_recv(client, buf, sizeof buf), -1);
    assert_int_equal(errno, EMSGSIZE);
    assert_memory_equal(buf, big, sizeof buf);
    netx_close(client);
    netx_close(server);
}

static void udp_recvfrom_truncated_emsgsize_fills_from(void **state)
{
    (void)state;
    unsigned char big[100];
    unsigned char buf[10];
    netx_addr from;
    support_pattern(big, sizeof big, 12);
    memset(buf, 0, sizeof buf);
    memset(&from, 0, sizeof from);
    int server = bound("127.0.0.1");
    int client = connected_to("127.0.0.1", server);

    assert_int_equal(netx_send(client, big, sizeof big), 100);
    assert_int_equal(netx_recvfrom(server, buf, sizeof buf, &from), -1);
    assert_int_equal(errno, EMSGSIZE);
    assert_memory_equal(buf, big, sizeof buf);
    assert_int_equal(netx_addr_port(&from), netx_local_port(client));
    netx_close(client);
    netx_close(server);
}

static void udp_truncated_rest_is_discarded(void **state)
{
    (void)state;
    unsigned char big[100];
    unsigned char buf[10];
    support_pattern(big, sizeof big, 13);
    int server = bound("127.0.0.1");
    int client = connected_to("127.0.0.1", server);

    assert_int_equal(netx_send(client, big, sizeof big), 100);
    assert_int_equal(netx_send(client, "next", 4), 4);
    assert_int_equal(netx_recv(server, buf, sizeof buf), -1);
    assert_int_equal(errno, EMSGSIZE);
    /* The next receive is the next datagram, not the rest of the cut one. */
    assert_int_equal(netx_recv(server, buf, sizeof buf), 4);
    assert_memory_equal(buf, "next", 4);
    netx_close(client);
    netx_close(server);
}

static void udp_empty_datagram_returns_0(void **state)
{
    (void)state;
    char buf[16];
    netx_addr from;
    int server = bound("127.0.0.1");
    int client = connected_to("127.0.0.1", server);

    assert_int_equal(netx_send(client, "", 0), 0);
    /* The receive guard turns "nothing was sent" into ETIMEDOUT, so 0 here
     * can only be the empty datagram. */
    assert_int_equal(netx_recvfrom(server, buf, sizeof buf, &from), 0);
    assert_int_equal(netx_addr_port(&from), netx_local_port(client));
    netx_close(client);
    netx_close(server);
}

static void udp_datagrams_arrive_whole(void **state)
{
    (void)state;
    static const size_t sizes[] = {1, 2, 17, 100, 511, 1472, 1473, 4000, 8192, 3};
    enum { COUNT = sizeof sizes / sizeof sizes[0], MAX = 8192 };
    unsigned char *out = malloc(MAX);
    unsigned char *in = malloc(MAX + 1);
    assert_non_null(out);
    assert_non_null(in);
    int server = bound("127.0.0.1");
    int client = connected_to("127.0.0.1", server);

    for (size_t i = 0; i < COUNT; i++) {
        support_pattern(out, sizes[i], (unsigned)i + 100);
        assert_int_equal(netx_send(client, out, sizes[i]), (ssize_t)sizes[i]);
    }
    /* Each receive, with room for more, gets one datagram: its own size
     * and its own bytes, never two glued together. */
    for (size_t i = 0; i < COUNT; i++) {
        support_pattern(out, sizes[i], (unsigned)i + 100);
        assert_int_equal(netx_recv(server, in, MAX + 1), (ssize_t)sizes[i]);
        assert_memory_equal(in, out, sizes[i]);
    }
    netx_close(client);
    netx_close(server);
    free(out);
    free(in);
}

static void udp_connected_no_listener_econnrefused(void **state)
{
    (void)state;
    char buf[16];
    uint16_t port = free_udp_port();
    int fd = netx_udp_connect("127.0.0.1", port);
    assert_true(fd >= 0);
    assert_int_equal(netx_set_timeout(fd, UDP_GUARD_MS), 0);

    /* The datagram goes out; the ICMP "port unreachable" that comes back
     * is reported by the next call on the socket. */
    assert_int_equal(netx_send(fd, "anyone?", 7), 7);
    assert_int_equal(netx_recv(fd, buf, sizeof buf), -1);
    assert_int_equal(errno, ECONNREFUSED);
    netx_close(fd);
}

static void udp_recv_timeout_etimedout(void **state)
{
    (void)state;
    char buf[16];
    netx_addr from;
    int fd = bound("127.0.0.1");
    assert_int_equal(netx_set_timeout(fd, 100), 0);
    long long t0 = now_ms();
    assert_int_equal(netx_recvfrom(fd, buf, sizeof buf, &from), -1);
    long long took = now_ms() - t0;
    assert_int_equal(errno, ETIMEDOUT);
    assert_true(took >= 50);
    assert_true(took < 2000);
    netx_close(fd);
}

static void udp_connect_null_host_einval(void **state)
{
    (void)state;
    assert_int_equal(netx_udp_connect(NULL, 9), -1);
    assert_int_equal(errno, EINVAL);
}

static void udp_connect_port_0_einval(void **state)
{
    (void)state;
    assert_int_equal(netx_udp_connect("127.0.0.1", 0), -1);
    assert_int_equal(errno, EINVAL);
}

static void udp_localhost_bind_and_connect_meet(void **state)
{
    (void)state;
    char buf[16];
    netx_addr from;
    int server = bound("localhost");
    int client = connected_to("localhost", server);

    assert_int_equal(netx_send(client, "meet", 4), 4);
    assert_int_equal(netx_recvfrom(server, buf, sizeof buf, &from), 4);
    assert_memory_equal(buf, "meet", 4);
    assert_int_equal(netx_sendto(server, "met", 3, &from), 3);
    assert_int_equal(netx_recv(client, buf, sizeof buf), 3);
    assert_memory_equal(buf, "met", 3);
    netx_close(client);
    netx_close(server);
}

/* "" binds every interface, as NULL does: datagrams to 127.0.0.1 and
 * (with IPv6) to ::1 both arrive, and the answer goes back to each. */
static void udp_bind_empty_host_every_interface(void **state)
{
    (void)state;
    const char *hosts[2] = {"127.0.0.1", "::1"};
    int nhosts = support_have_ipv6() ? 2 : 1;
    char buf[16];
    netx_addr from;
    int server = bound("");
    for (int i = 0; i < nhosts; i++) {
        int client = connected_to(hosts[i], server);
        assert_int_equal(netx_send(client, "any", 3), 3);
        assert_int_equal(netx_recvfrom(server, buf, sizeof buf, &from), 3);
        assert_memory_equal(buf, "any", 3);
        assert_int_equal(netx_sendto(server, "all", 3, &from), 3);
        assert_int_equal(netx_recv(client, buf, sizeof buf), 3);
        assert_memory_equal(buf, "all", 3);
        netx_close(client);
    }
    netx_close(server);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TEST(udp_connected_echo_roundtrip),        TEST(udp_recvfrom_reports_sender_port),
        TEST(udp_sendto_null_uses_connected_peer), TEST(udp_roundtrip_ipv6_succeeds),
        TEST(udp_recv_truncated_emsgsize),         TEST(udp_recvfrom_truncated_emsgsize_fills_from),
        TEST(udp_truncated_rest_is_discarded),     TEST(udp_empty_datagram_returns_0),
        TEST(udp_datagrams_arrive_whole),          TEST(udp_connected_no_listener_econnrefused),
        TEST(udp_recv_timeout_etimedout),          TEST(udp_connect_null_host_einval),
        TEST(udp_connect_port_0_einval),           TEST(udp_localhost_bind_and_connect_meet),
        TEST(udp_bind_empty_host_every_interface),
    };
    return cmocka_run_group_tests_name("udp", tests, NULL, NULL);
}
