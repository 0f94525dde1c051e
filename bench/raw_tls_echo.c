/*
 * raw_tls_echo.c - the baseline tls_server is measured against: an echo
 * server over TLS written directly on OpenSSL and epoll, the way a
 * performance-minded engineer would write it by hand.
 *
 * It does the same job as examples/tls_server.c - one thread, non-blocking
 * sockets, TCP_NODELAY, the handshake step by step as the socket allows,
 * then read what has arrived and send it back encrypted, keeping what TLS
 * could not send until the socket has room - with nothing else: OpenSSL's
 * own socket BIO (SSL_set_fd), no error record, no timeouts, no lists. The
 * configuration is OpenSSL's defaults, as tls_server's is: TLS 1.2 at
 * least, the default ciphers and groups, session tickets as OpenSSL sends
 * them. Whatever tls_server costs beyond this is the price of the library
 * and of the example.
 *
 *   raw_tls_echo -c CERT -k KEY [-H HOST] [-p PORT]
 *       prints "listening on ADDR:PORT"
 *
 * SIGINT or SIGTERM stops it cleanly (a self-pipe in the epoll set).
 * Linux only. Built by `make bench TLS=1` alone, on OpenSSL 3.
 */
#define _GNU_SOURCE /* accept4, pipe2, epoll */

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

#include <openssl/err.h>
#include <openssl/ssl.h>

static const char *prog = "raw_tls_echo";

#define READ_CHUNK     16384 /* a TLS record's worth of plaintext, as tls_server */
#define ACCEPT_BATCH   64    /* accepts per wake-up, as tls_server */
#define READS_PER_TURN 16    /* reads per client per wake-up, as tls_server */
#define MAX_EVENTS     256

/* One client. out holds an echo that SSL_write could not take whole: it is
 * handed to SSL_write again, as it is, when the socket allows. */
struct conn {
    SSL *ssl;
    int fd;
    int shaking;     /* the handshake is not over yet */
    unsigned events; /* what epoll waits for now */
    unsigned char *out;
    size_t out_len;
    unsigned out_wants; /* what that SSL_write waits for */
};

static int stop_pipe[2] = {-1, -1};

static void usage(FILE *out)
{
    fprintf(out,
            "usage: %s -c CERT -k KEY [-H HOST] [-p PORT]\n"
            "  Minimal epoll echo server over TLS on OpenSSL (benchmark baseline).\n"
            "  -c CERT  certificate chain (PEM)\n"
            "  -k KEY   private key (PEM)\n"
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
}

/* Wait for events on c's socket, with an epoll_ctl only when they change. */
static void want(int ep, struct conn *c, unsigned events)
{
    if (events != c->events) {
        struct epoll_event ev = {.events = events, .data.ptr = c};
        epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
        c->events = events;
    }
}

/* A TLS call said it cannot go on now: the readiness it waits for, or 0 if
 * the connection is finished (an error, or the peer's close_notify). */
static unsigned wait_for(SSL *ssl, int rc)
{
    switch (SSL_get_error(ssl, rc)) {
    case SSL_ERROR_WANT_READ:
        return EPOLLIN;
    case SSL_ERROR_WANT_WRITE:
        return EPOLLOUT;
    default:
        return 0;
    }
}

static void drop(int ep, struct conn *c, int clean)
{
    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
    if (clean) {
        SSL_shutdown(c->ssl); /* our close_notify; we do not wait for theirs */
    }
    SSL_free(c->ssl);
    ERR_clear_error();
    close(c->fd);
    free(c->out);
    free(c);
}

/* Hand an echo to TLS; what it cannot take now is kept in c->out. Returns
 * 0, or -1 when the connection failed. */
static int echo(struct conn *c, const unsigned char *data, size_t len)
{
    while (len > 0) {
        size_t n = 0;
        int rc = SSL_write_ex(c->ssl, data, len, &n);
        if (rc != 1) {
            c->out_wants = wait_for(c->ssl, rc);
            if (c->out_wants == 0) {
                return -1;
            }
            /* Keep the rest; it goes again, as it is, when the socket
             * allows (SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER). */
            if (c->out == NULL) {
                c->out = malloc(READ_CHUNK);
                if (c->out == NULL) {
                    return -1;
                }
            }
            if (data != c->out) {
                memmove(c->out, data, len); /* a retry of c->out stays where it is */
            }
            c->out_len = len;
            return 0;
        }
        data += n;
        len -= n;
    }
    return 0;
}

/* One wake-up of client c: the handshake as far as it goes, then what is
 * pending, then read and echo until TLS has nothing more. */
static void serve(int ep, struct conn *c, unsigned char *scratch)
{
    if (c->shaking) {
        int rc = SSL_do_handshake(c->ssl);
        if (rc != 1) {
            unsigned w = wait_for(c->ssl, rc);
            if (w == 0) {
                drop(ep, c, 0);
            } else {
                want(ep, c, w);
            }
            return;
        }
        c->shaking = 0;
    }
    unsigned next = EPOLLIN;
    if (c->out_len > 0) {
        size_t len = c->out_len;
        c->out_len = 0;
        if (echo(c, c->out, len) != 0) {
            drop(ep, c, 0);
            return;
        }
    }
    /* Backpressure: nothing is read while an echo waits. With our buffer
     * as large as a record and no read-ahead, every record is read whole,
     * so nothing decrypted is left inside OpenSSL for epoll not to see. */
    for (int i = 0; i < READS_PER_TURN && c->out_len == 0; i++) {
        size_t n = 0;
        int rc = SSL_read_ex(c->ssl, scratch, READ_CHUNK, &n);
        if (rc != 1) {
            if (SSL_get_error(c->ssl, rc) == SSL_ERROR_ZERO_RETURN) {
                drop(ep, c, 1); /* its close_notify: answer with ours */
                return;
            }
            next = wait_for(c->ssl, rc);
            if (next == 0) {
                drop(ep, c, 0);
                return;
            }
            break;
        }
        if (echo(c, scratch, n) != 0) {
            drop(ep, c, 0);
            return;
        }
    }
    if (c->out_len > 0) {
        next = c->out_wants; /* usually room; TLS may need to read first */
    }
    want(ep, c, next);
}

static void accept_all(int ep, int listener, SSL_CTX *ctx, unsigned char *scratch)
{
    for (int i = 0; i < ACCEPT_BATCH; i++) {
        int fd = accept4(listener, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            return; /* EAGAIN: none left; anything else: try next wake-up */
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        struct conn *c = calloc(1, sizeof *c);
        SSL *ssl = c != NULL ? SSL_new(ctx) : NULL;
        if (ssl == NULL || SSL_set_fd(ssl, fd) != 1) {
            SSL_free(ssl);
            free(c);
            close(fd);
            ERR_clear_error();
            continue;
        }
        SSL_set_accept_state(ssl);
        c->ssl = ssl;
        c->fd = fd;
        c->shaking = 1;
        c->events = EPOLLIN;
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
        if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) != 0) {
            SSL_free(ssl);
            free(c);
            close(fd);
            continue;
        }
        serve(ep, c, scratch); /* its hello may be here already */
    }
}

int main(int argc, char **argv)
{
    const char *host = "localhost";
    const char *port = "12345";
    const char *cert = NULL;
    const char *key = NULL;
    int opt;

    opterr = 0;
    while ((opt = getopt(argc, argv, ":hH:p:c:k:")) != -1) {
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
        case 'c':
            cert = optarg;
            break;
        case 'k':
            key = optarg;
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
    if (cert == NULL || key == NULL) {
        bad_usage("the certificate (-c) and the key (-k) are needed");
    }

    /* OpenSSL's defaults, as tls_server has them: TLS 1.2 at least; a
     * write may end part-way and be retried from a moved buffer. */
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL || SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
        SSL_CTX_use_certificate_chain_file(ctx, cert) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1) {
        fprintf(stderr, "%s: TLS configuration (%s, %s): %s\n", prog, cert, key,
                ERR_reason_error_string(ERR_peek_last_error()));
        return 1;
    }
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);

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
    /* OpenSSL's socket BIO writes with write(2): a client that has gone
     * would raise SIGPIPE. */
    signal(SIGPIPE, SIG_IGN);
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }

    int listener = listen_on(host, port);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    unsigned char *scratch = malloc(READ_CHUNK);
    if (listener < 0 || ep < 0 || scratch == NULL) {
        return 1;
    }
    /* The listener and the stop pipe are told apart from clients by these
     * two addresses. */
    static char listener_tag;
    static char stop_tag;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &stop_tag};
    epoll_ctl(ep, EPOLL_CTL_ADD, stop_pipe[0], &ev);
    ev.data.ptr = &listener_tag;
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
            void *p = events[i].data.ptr;
            if (p == &stop_tag) {
                running = 0;
            } else if (p == &listener_tag) {
                accept_all(ep, listener, ctx, scratch);
            } else {
                serve(ep, p, scratch);
            }
        }
    }
    /* Clients still connected are left to the exit: the benchmark stops us
     * once its load generator has closed all of them. */
    close(listener);
    close(ep);
    free(scratch);
    SSL_CTX_free(ctx);
    return 0;
}
