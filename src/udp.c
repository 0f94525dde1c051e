/*
 * udp.c - guide step 6: datagrams. "Change SOCK_STREAM to SOCK_DGRAM, and use
 * sendto()/recvfrom()": there is no listen and no accept, each datagram
 * carries the address it came from, and one arrives whole or not at all.
 */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>

#include "internal.h"

#define NETX__MAX_ADDRS 16

int netx_udp_bind(const char *host, uint16_t port)
{
    return netx__open_bound(host, port, SOCK_DGRAM, 0);
}

int netx_udp_connect(const char *host, uint16_t port)
{
    netx_addr addrs[NETX__MAX_ADDRS];
    char where[300];
    char text[NETX_ADDRSTRLEN];

    if (host == NULL || port == 0) {
        return netx__fail(EINVAL, "udp connect: %s", host == NULL ? "host is NULL" : "port is 0");
    }
    int n = netx__resolve(host, port, SOCK_DGRAM, addrs, NETX__MAX_ADDRS);
    if (n < 0) {
        return -1;
    }
    /* Connecting a UDP socket sends nothing, so no answer can tell which of
     * the name's addresses is served: take IPv4 first, as netx_udp_bind()
     * does, so that the two meet on "localhost". */
    netx__ipv4_first(addrs, n);
    int fd = netx_socket(addrs[0].ss.ss_family, SOCK_DGRAM);
    if (fd < 0) {
        return -1;
    }
    if (netx_connect(fd, &addrs[0], 0) != 0) {
        int err = errno;
        netx_close(fd);
        netx__host_port(host, port, where, sizeof where);
        netx__address_only(&addrs[0], text, sizeof text);
        return netx__fail(err, "udp connect to %s (%s)", where, text);
    }
    return fd;
}

ssize_t netx_sendto(int fd, const void *buf, size_t len, const netx_addr *to)
{
    return netx__send_once(fd, buf, len, to);
}

ssize_t netx_recvfrom(int fd, void *buf, size_t cap, netx_addr *from)
{
    netx_addr scratch;
    return netx__recv_once(fd, buf, cap, from != NULL ? from : &scratch);
}
