/*
 * raw_udp_echo.c - the baseline udp_server is measured against: a UDP echo
 * server written straight on system calls.
 *
 * One blocking recvfrom() and one sendto() per datagram, with a 64 KiB
 * buffer as in udp_server, and nothing else. Whatever udp_server costs
 * beyond this is the price of the library and of how the example waits.
 *
 *   raw_udp_echo [-H HOST] [-p PORT]    prints "listening on ADDR:PORT"
 *
 * SIGINT or SIGTERM stops it: the handler is installed without SA_RESTART,
 * so a blocked recvfrom() fails with EINTR, and it also shuts the socket
 * down, so a signal that lands just before recvfrom() blocks is not missed
 * (recvfrom() on a shut-down socket returns at once). Linux only.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static const char *prog = "raw_udp_echo";

static volatile sig_atomic_t stop;
static volatile sig_atomic_t sock_fd = -1;

static void usage(FILE *out)
{
    fprintf(out,
            "usage: %s [-H HOST] [-p PORT]\n"
            "  UDP echo server on raw system calls (benchmark baseline).\n"
            "  -H HOST  address to receive on (default localhost)\n"
            "  -p PORT  port, 0 for any free one (default 12345)\n",
            prog);
}

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

static void on_signal(int sig)
{
    (void)sig;
    int saved = errno;
    stop = 1;
    if (sock_fd >= 0) {
        shutdown(sock_fd, SHUT_RDWR);
    }
    errno = saved;
}

static int bind_on(const char *host, const char *port)
{
    struct addrinfo hints;
    struct addrinfo *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_socktype = SOCK_DGRAM;
    hints.ai_flags = AI_PASSIVE;
    int gai = getaddrinfo(host, port, &hints, &res);
    if (gai != 0) {
        fprintf(stderr, "%s: resolve %s: %s\n", prog, host, gai_strerror(gai));
        return -1;
    }
    struct addrinfo *pick = res;
    for (struct addrinfo *a = res; a != NULL; a = a->ai_next) {
        if (a->ai_family == AF_INET) {
            pick = a;
            break;
        }
    }
    int fd = socket(pick->ai_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || bind(fd, pick->ai_addr, pick->ai_addrlen) != 0) {
        fprintf(stderr, "%s: bind to %s:%s: %s\n", prog, host, port, strerror(errno));
        if (fd >= 0) {
            close(fd);
        }
        freeaddrinfo(res);
        return -1;
    }
    freeaddrinfo(res);
    return fd;
}

int main(int argc, char **argv)
{
    const char *host = "localhost";
    const char *port = "12345";
    int opt;

    opterr = 0;
    while ((opt = getopt(argc, argv, ":hH:p:")) != -1) {
        switch (opt) {
        case 'h':
            usage(stdout);
            return 0;
        case 'H':
            host = optarg;
            break;
        case 'p':
            if (strspn(optarg, "0123456789") != strlen(optarg) || strlen(optarg) == 0 ||
                strlen(optarg) > 5 || atol(optarg) > 65535) {
                bad_usage("port \"%s\": not a number from 0 to 65535", optarg);
            }
            port = optarg;
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
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    int fd = bind_on(host, port);
    if (fd < 0) {
        return 1;
    }
    sock_fd = fd;

    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    char text[INET6_ADDRSTRLEN];
    getsockname(fd, (struct sockaddr *)&ss, &len);
    if (ss.ss_family == AF_INET6) {
        struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&ss;
        inet_ntop(AF_INET6, &v6->sin6_addr, text, sizeof text);
        printf("listening on [%s]:%d\n", text, ntohs(v6->sin6_port));
    } else {
        struct sockaddr_in *v4 = (struct sockaddr_in *)&ss;
        inet_ntop(AF_INET, &v4->sin_addr, text, sizeof text);
        printf("listening on %s:%d\n", text, ntohs(v4->sin_port));
    }
    fflush(stdout);

    static char buf[65536];
    while (!stop) {
        struct sockaddr_storage from;
        socklen_t fromlen = sizeof from;
        ssize_t n = recvfrom(fd, buf, sizeof buf, 0, (struct sockaddr *)&from, &fromlen);
        if (n < 0) {
            continue; /* EINTR (a stop) or an ICMP error from an earlier reply */
        }
        if (stop) {
            break; /* the shutdown's wake-up, not a datagram */
        }
        sendto(fd, buf, (size_t)n, 0, (struct sockaddr *)&from, fromlen);
    }
    sock_fd = -1;
    close(fd);
    return 0;
}
