/*
 * raw_epoll_echo.c - the baseline poll_server is measured against: a
 * minimal event-driven echo server written straight on system calls, with
 * epoll, the way a performance-minded engineer would write it by hand.
 *
 * It does the same job as examples/poll_server.c - one thread, non-blocking
 * sockets, TCP_NODELAY, read what has arrived and send it back, keep what
 * the socket does not take until it has room - with nothing else: no error
 * record, no tracing, and accept4() creates each socket already
 * non-blocking. Whatever poll_server costs beyond this is the price of the
 * library and of poll(2).
 *
 *   raw_epoll_echo [-H HOST] [-p PORT]    prints "listening on ADDR:PORT"
 *
 * SIGINT or SIGTERM stops it cleanly (a self-pipe in the epoll set).
 * Linux only.
 */
#define _GNU_SOURCE /* accept4, epoll */

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

static const char *prog = "raw_epoll_echo";

#define READ_CHUNK   65536 /* the shared read buffer, as in poll_server */
#define ACCEPT_BATCH 64    /* accepts per wakeup, as in poll_server */
#define MAX_EVENTS   256

/* Pending output of one connection; the table is indexed by descriptor. An
 * idle connection costs these few bytes and nothing else. */
struct conn {
    unsigned char *out;
    size_t off;
    size_t len;
    int open; /* the descriptor is one of our connections */
};

static struct conn *conns;
static size_t nconns; /* entries in conns */

static int stop_pipe[2] = {-1, -1};

static void usage(FILE *out)
{
    fprintf(out,
            "usage: %s [-H HOST] [-p PORT]\n"
            "  Minimal epoll echo server on raw system calls (benchmark baseline).\n"
            "  -H HOST  address to listen on (default localhost)\n"
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
    ssize_t ignored = write(stop_pipe[1], "", 1);
    (void)ignored;
    errno = saved;
}

/* Bind and listen on host:port, the first IPv4 address first, as the
 * examples do. Returns the listening socket (non-blocking) or -1. */
static int listen_on(const char *host, const char *port)
{
    struct addrinfo hints;
    struct addrinfo *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_socktype = SOCK_STREAM;
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
    int fd = socket(pick->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        bind(fd, pick->ai_addr, pick->ai_addrlen) != 0 || listen(fd, SOMAXCONN) != 0) {
        fprintf(stderr, "%s: listen on %s:%s: %s\n", prog, host, port, strerror(errno));
        if (fd >= 0) {
            close(fd);
        }
        freeaddrinfo(res);
        return -1;
    }
    freeaddrinfo(res);
    return fd;
}

static void print_listening(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    char text[INET6_ADDRSTRLEN];
    int port = 0;
    getsockname(fd, (struct sockaddr *)&ss, &len);
    if (ss.ss_family == AF_INET6) {
        struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&ss;
        inet_ntop(AF_INET6, &v6->sin6_addr, text, sizeof text);
        port = ntohs(v6->sin6_port);
        printf("listening on [%s]:%d\n", text, port);
    } else {
        struct sockaddr_in *v4 = (struct sockaddr_in *)&ss;
        inet_ntop(AF_INET, &v4->sin_addr, text, sizeof text);
        port = ntohs(v4->sin_port);
        printf("listening on %s:%d\n", text, port);
    }
    fflush(stdout);
}

/* A connection per descriptor needs a descriptor limit to match. */
static void raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

static struct conn *conn_of(int fd)
{
    if ((size_t)fd >= nconns) {
        size_t n = nconns > 0 ? nconns : 1024;
        while (n <= (size_t)fd) {
            n *= 2;
        }
        struct conn *p = realloc(conns, n * sizeof *p);
        if (p == NULL) {
            return NULL;
        }
        memset(p + nconns, 0, (n - nconns) * sizeof *p);
        conns = p;
        nconns = n;
    }
    return &conns[fd];
}

static void drop(int ep, int fd)
{
    struct conn *c = &conns[fd];
    epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
    close(fd);
    free(c->out);
    c->out = NULL;
    c->off = c->len = 0;
    c->open = 0;
}

static void want(int ep, int fd, unsigned events)
{
    struct epoll_event ev = {.events = events, .data.fd = fd};
    epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev);
}

/* Readable: one recv into the shared buffer, one send back; keep what the
 * socket did not take and wait for room (no more reading meanwhile: that
 * is the backpressure). Returns 0, or -1 when the connection is finished. */
static int on_readable(int ep, int fd, unsigned char *scratch)
{
    ssize_t n = recv(fd, scratch, READ_CHUNK, 0);
    if (n < 0) {
        return errno == EAGAIN || errno == EINTR ? 0 : -1;
    }
    if (n == 0) {
        return -1;
    }
    ssize_t sent = send(fd, scratch, (size_t)n, MSG_NOSIGNAL);
    if (sent < 0) {
        if (errno != EAGAIN) {
            return -1;
        }
        sent = 0;
    }
    if (sent < n) {
        struct conn *c = &conns[fd];
        c->len = (size_t)(n - sent);
        c->off = 0;
        c->out = malloc(c->len);
        if (c->out == NULL) {
            return -1;
        }
        memcpy(c->out, scratch + sent, c->len);
        want(ep, fd, EPOLLOUT);
    }
    return 0;
}

static int on_writable(int ep, int fd)
{
    struct conn *c = &conns[fd];
    ssize_t sent = send(fd, c->out + c->off, c->len - c->off, MSG_NOSIGNAL);
    if (sent < 0) {
        return errno == EAGAIN || errno == EINTR ? 0 : -1;
    }
    c->off += (size_t)sent;
    if (c->off == c->len) {
        free(c->out);
        c->out = NULL;
        c->off = c->len = 0;
        want(ep, fd, EPOLLIN);
    }
    return 0;
}

static void accept_all(int ep, int listener)
{
    for (int i = 0; i < ACCEPT_BATCH; i++) {
        int fd = accept4(listener, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            return; /* EAGAIN: none left; anything else: try next wakeup */
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
        struct conn *c = conn_of(fd);
        if (c == NULL || epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) != 0) {
            close(fd);
            continue;
        }
        c->open = 1;
    }
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
    if (pipe2(stop_pipe, O_CLOEXEC | O_NONBLOCK) != 0) {
        perror(prog);
        return 1;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    raise_fd_limit();

    int listener = listen_on(host, port);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    unsigned char *scratch = malloc(READ_CHUNK);
    if (listener < 0 || ep < 0 || scratch == NULL) {
        return 1;
    }
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = stop_pipe[0]};
    epoll_ctl(ep, EPOLL_CTL_ADD, stop_pipe[0], &ev);
    ev.data.fd = listener;
    epoll_ctl(ep, EPOLL_CTL_ADD, listener, &ev);
    print_listening(listener);

    struct epoll_event events[MAX_EVENTS];
    int running = 1;
    while (running) {
        int n = epoll_wait(ep, events, MAX_EVENTS, -1);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            perror("epoll_wait");
            break;
        }
        for (int i = 0; i < n; i++) {
            int fd = events[i].data.fd;
            unsigned what = events[i].events;
            if (fd == stop_pipe[0]) {
                running = 0;
            } else if (fd == listener) {
                accept_all(ep, listener);
            } else if (conns[fd].out != NULL) {
                if (what & (EPOLLERR | EPOLLHUP | EPOLLOUT)) {
                    if (on_writable(ep, fd) != 0) {
                        drop(ep, fd);
                    }
                }
            } else if (what & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
                if (on_readable(ep, fd, scratch) != 0) {
                    drop(ep, fd);
                }
            }
        }
    }
    /* Close every connection still open, then the rest. */
    for (size_t fd = 0; fd < nconns; fd++) {
        if (conns[fd].open) {
            close((int)fd);
        }
        free(conns[fd].out);
    }
    free(conns);
    free(scratch);
    close(ep);
    close(listener);
    close(stop_pipe[0]);
    close(stop_pipe[1]);
    return 0;
}
