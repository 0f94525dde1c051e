/*
 * udp_server.c - guide step 6 of the article, "Switch to UDP": change
 * SOCK_STREAM to SOCK_DGRAM, and use sendto()/recvfrom().
 *
 * A datagram echo server. There is no listen() and no accept(): one socket
 * receives every client's datagrams, each with the address it came from,
 * and the reply goes back to that address. Each datagram arrives whole or
 * not at all, so there is no stream to put together.
 *
 *   $ ./udp_server -p 0
 *   listening on 127.0.0.1:50001
 *   $ ./udp_client -p 50001 hello
 *   hello
 */
#include <errno.h>
#include <netx.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *prog = "udp_server";

static void usage(FILE *out)
{
    fprintf(out,
            "usage: %s [-H HOST] [-p PORT]\n"
            "  Send every datagram back to where it came from.\n"
            "  -H HOST  address to receive on (default localhost; '' for every interface)\n"
            "  -p PORT  port to receive on, 0 for any free one (default 12345)\n"
            "  -h       show this help\n",
            prog);
}

/* A bad command line: one line saying why, the usage, exit status 2. */
static void bad_usage(const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s: ", prog);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    usage(stderr);
    exit(2);
}

/*
 * "-H 127.0.0.1:80" puts a port where only a host goes, a common slip: say
 * where the port goes rather than fail to resolve it. An IPv6 address has
 * colons of its own ("::1", "fe80::1"), so only a single colon, or one
 * after a bracketed address ("[::1]:80"), starts a port.
 */
static void check_listen_host(const char *host)
{
    const char *colon = strrchr(host, ':');
    size_t digits = colon != NULL ? strspn(colon + 1, "0123456789") : 0;
    if (colon == NULL || digits == 0 || colon[1 + digits] != '\0') {
        return;
    }
    int bracketed = host[0] == '[' && colon > host && colon[-1] == ']';
    if (!bracketed && strchr(host, ':') != colon) {
        return; /* an IPv6 address, such as ::1 */
    }
    int len = (int)(colon - host) - 2 * bracketed;
    bad_usage("-H \"%s\" has a port in it: use -H %.*s -p %s", host, len > 0 ? len : 2,
              len > 0 ? host + bracketed : "''", colon + 1);
}

/*
 * Stopping on Ctrl-C (SIGINT) or SIGTERM. A datagram server has a single
 * socket, so it needs no poll(): it waits in recvfrom() itself, and
 * netx_stop_on() makes the signal end that wait (ECANCELED). Two system
 * calls per datagram (recvfrom and sendto), as in a server written on the
 * bare system calls.
 *
 * Stopping gracefully, for datagrams: there are no connections to finish,
 * but datagrams that arrived before the stop are still queued in the
 * socket. We answer those - reading until the queue is empty, never waiting
 * for more - and then exit.
 */
static void answer_queued(int fd, char *buf, size_t cap)
{
    if (netx_stop_drain(2000) != 0 || netx_set_nonblocking(fd, 1) != 0) {
        return; /* a second signal: stop at once */
    }
    for (int i = 0; i < 100000; i++) { /* bounded: new ones may keep coming */
        netx_addr from;
        ssize_t n = netx_recvfrom(fd, buf, cap, &from);
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ECANCELED) {
                return; /* the queue is empty, or a second signal came */
            }
            continue; /* one bad datagram (cut short, refused): the next */
        }
        netx_sendto(fd, buf, (size_t)n, &from);
    }
}

int main(int argc, char **argv)
{
    const char *host = "localhost";
    uint16_t port = 12345;
    int opt;

    /* First of all: descriptors 0, 1 and 2 must be open, or our socket
     * would get one of those numbers and printf() would write into it. */
    if (netx_stdio_reserve() != 0) {
        return 1;
    }
    opterr = 0; /* we print our own messages */
    while ((opt = getopt(argc, argv, ":hH:p:")) != -1) {
        switch (opt) {
        case 'h':
            usage(stdout);
            return 0;
        case 'H':
            host = optarg;
            check_listen_host(host);
            break;
        case 'p':
            if (netx_parse_port(optarg, &port) != 0) {
                bad_usage("%s", netx_last_error());
            }
            break;
        case ':':
            bad_usage("option -%c needs a value", optopt);
            break;
        default:
            bad_usage("unknown option -%c", optopt);
        }
    }
    if (optind < argc) {
        bad_usage("unexpected argument \"%s\"", argv[optind]);
    }
    /* The two lines that make a libnetx program stoppable. */
    if (netx_stop_on(SIGINT) != 0 || netx_stop_on(SIGTERM) != 0) {
        fprintf(stderr, "%s: %s\n", prog, netx_last_error());
        return 1;
    }

    /* Workflow steps 1-2: a SOCK_DGRAM socket, bound to host:port. */
    int fd = netx_udp_bind(host, port);
    if (fd < 0) {
        fprintf(stderr, "%s: %s\n", prog, netx_last_error());
        return 1;
    }
    netx_addr local;
    char text[NETX_ADDRSTRLEN];
    netx_local_addr(fd, &local);
    netx_addr_format(&local, text, sizeof text);
    printf("listening on %s\n", text);
    fflush(stdout);

    /* Workflow step 4 for datagrams: recvfrom tells who sent it; sendto answers. The
     * buffer holds the largest datagram UDP can carry (65507 bytes over
     * IPv4), so nothing is ever cut short. */
    static char buf[65536];
    for (;;) {
        netx_addr from;
        ssize_t n = netx_recvfrom(fd, buf, sizeof buf, &from);
        if (n < 0) {
            if (errno == ECANCELED) {
                answer_queued(fd, buf, sizeof buf); /* SIGINT or SIGTERM */
                break;
            }
            /* One bad datagram is not the end of the server. netx_log()
             * never blocks, and a flood of bad ones makes one line a
             * second. */
            netx_log("%s: %s", prog, netx_last_error());
            continue;
        }
        if (netx_sendto(fd, buf, (size_t)n, &from) < 0) {
            netx_log("%s: %s", prog, netx_last_error());
        }
    }
    netx_close(fd);
    netx_log_flush(); /* lines netx_log() held back, counted */
    return 0;
}
