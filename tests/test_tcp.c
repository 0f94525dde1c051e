/*
 * test_tcp.c - netx_tcp_listen() and netx_tcp_connect() over real loopback
 * sockets: every address of a name, dual-stack, refusals, timeouts.
 */
#include "support.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void tcp_listen_port0_picks_free_port(void **state)
{
    (void)state;
    int lfd = netx_tcp_listen("127.0.0.1", 0, 0);
    assert_true(lfd >= 0);
    assert_true(netx_local_port(lfd) > 0);
    assert_int_equal(netx_close(lfd), 0);
}

static void tcp_roundtrip_ipv4_succeeds(void **state)
{
    (void)state;
    int c, s;
    char buf[16];
    support_tcp_pair("127.0.0.1", &c, &s);
    assert_int_equal(netx_send_all(c, "ping", 4), 0);
    assert_int_equal(netx_recv_all(s, buf, 4), 4);
    assert_memory_equal(buf, "ping", 4);
    netx_close(c);
    netx_close(s);
}

static void tcp_localhost_listener_reached_via_127_0_0_1(void **state)
{
    (void)state;
    int lfd = netx_tcp_listen("localhost", 0, 0);
    assert_true(lfd >= 0);
    int port = netx_local_port(lfd);
    int c = netx_tcp_connect("127.0.0.1", (uint16_t)port, 2000);
    assert_true(c >= 0);
    int s = netx_accept(lfd, NULL);
    assert_true(s >= 0);
    netx_close(c);
    netx_close(s);
    netx_close(lfd);
}

static void tcp_connect_refused_names_host_and_address(void **state)
{
    (void)state;
    /* A port that was just free: bind, note it, close. */
    int lfd = netx_tcp_listen("127.0.0.1", 0, 0);
    int port = netx_local_port(lfd);
    netx_close(lfd);
    int c = netx_tcp_connect("localhost", (uint16_t)port, 2000);
    assert_int_equal(c, -1);
    assert_int_equal(errno, ECONNREFUSED);
    char want[128];
    snprintf(want, sizeof want, "connect to localhost:%d (", port);
    assert_non_null(strstr(netx_last_error(), want));
    assert_non_null(strstr(netx_last_error(), "Connection refused"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TEST(tcp_listen_port0_picks_free_port),
        TEST(tcp_roundtrip_ipv4_succeeds),
        TEST(tcp_localhost_listener_reached_via_127_0_0_1),
        TEST(tcp_connect_refused_names_host_and_address),
    };
    return cmocka_run_group_tests_name("tcp", tests, NULL, NULL);
}
