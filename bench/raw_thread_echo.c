/*
 * raw_thread_echo.c - the baseline threaded_server is measured against: a
 * thread-per-connection echo server written straight on system calls.
 *
 * Each client thread does what threaded_server's does - TCP_NODELAY, then
 * recv() into a 16 KiB buffer and send() every byte back, looping over
 * short sends - with nothing else: no error record, no EINTR handling
 * beyond the loop, recv() rather than recvmsg(). Threads get the same
 * 256 KiB stacks. Whatever threaded_server costs beyond this is the price
 * of the library.
 *
 *   raw_thread_echo [-H HOST] [-p PORT] [-n MAX]   prints "listening on ..."
 *
 * SIGINT or SIGTERM ends the blocking accept() (the handler shuts the
 * listener down, and only the main thread takes signals); every client is
 * then shut down and its thread joined.
 */
#define _GNU_SOURCE /* accept4 */

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

static const char *prog = "raw_thread_echo";

struct slot {
    int fd;
    pthread_t thread;
    int in_use;   /* a thread was started here and not joined yet */
    int finished; /* its thread is done with fd (under the lock) */
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct slot *slots;
static int max_slots = 1024;
static volatile sig_atomic_t stop;
static volatile sig_atomic_t listen_fd = -1;

static void usage(FILE *out)
{
    fprintf(out,
            "usage: %s [-H HOST] [-p PORT] [-n MAX]\n"
            "  Thread-per-connection echo server on raw system calls (benchmark baseline).\n"
            "  -H HOST  address to listen on (default localhost)\n"
            "  -p PORT  port, 0 for any free one (default 12345)\n"
            "  -n MAX   most clients at once (default 1024)\n",
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

/* Set the flag, and shut the listener down too: a signal that lands just
 * before accept() blocks would otherwise be missed, while accept() on a
 * shut-down listener fails at once (shutdown is async-signal-safe). */
static void on_signal(int sig)
{
    (void)sig;
    int saved = errno;
    stop = 1;
    if (listen_fd >= 0) {
        shutdown(listen_fd, SHUT_RDWR);
    }
    errno = saved;
}

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
    int fd = socket(pick->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
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

static void *serve(void *arg)
{
    struct slot *s = arg;
    int fd = s->fd;
    char buf[16384];
    int one = 1;

    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    for (;;) {
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            break;
        }
        ssize_t done = 0;
        while (done < n) {
            ssize_t m = send(fd, buf + done, (size_t)(n - done), MSG_NOSIGNAL);
            if (m < 0 && errno == EINTR) {
                continue;
            }
            if (m < 0) {
                goto out;
            }
            done += m;
        }
    }
out:
    /* Say "finished" before closing, so the main thread never shuts down a
     * descriptor number that a new client may already have. */
    pthread_mutex_lock(&lock);
    s->finished = 1;
    pthread_mutex_unlock(&lock);
    close(fd);
    return NULL;
}

/* A free slot (joining its previous thread), or NULL when all are busy. */
static struct slot *take_slot(void)
{
    struct slot *found = NULL;
    pthread_mutex_lock(&lock);
    for (int i = 0; i < max_slots; i++) {
        if (!slots[i].in_use || slots[i].finished) {
            found = &slots[i];
            break;
        }
    }
    pthread_mutex_unlock(&lock);
    if (found != NULL && found->in_use) {
        pthread_join(found->thread, NULL);
        found->in_use = 0;
    }
    return found;
}

int main(int argc, char **argv)
{
    const char *host = "localhost";
    const char *port = "12345";
    int opt;

    opterr = 0;
    while ((opt = getopt(argc, argv, ":hH:p:n:")) != -1) {
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
        case 'n':
            if (strspn(optarg, "0123456789") != strlen(optarg) || strlen(optarg) == 0 ||
                strlen(optarg) > 6 || atol(optarg) < 1 || atol(optarg) > 100000) {
                bad_usage("-n \"%s\": not a number from 1 to 100000", optarg);
            }
            max_slots = (int)atol(optarg);
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
    slots = calloc((size_t)max_slots, sizeof *slots);
    if (slots == NULL) {
        perror(prog);
        return 1;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }

    int listener = listen_on(host, port);
    if (listener < 0) {
        free(slots);
        return 1;
    }
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 256 * 1024);
    sigset_t block;
    sigset_t old;
    sigemptyset(&block);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGTERM);
    listen_fd = listener;
    print_listening(listener);

    while (!stop) {
        int fd = accept4(listener, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0) {
            continue; /* a stop (the flag is set) or a lost connection */
        }
        struct slot *s = take_slot();
        if (s == NULL) {
            close(fd);
            continue;
        }
        s->fd = fd;
        s->finished = 0;
        /* Client threads keep the stop signals blocked, so the handler runs
         * in the main thread and interrupts its accept(). */
        pthread_sigmask(SIG_BLOCK, &block, &old);
        int rc = pthread_create(&s->thread, &attr, serve, s);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        if (rc != 0) {
            close(fd);
            continue;
        }
        s->in_use = 1;
    }

    listen_fd = -1;
    close(listener);
    pthread_mutex_lock(&lock);
    for (int i = 0; i < max_slots; i++) {
        if (slots[i].in_use && !slots[i].finished) {
            shutdown(slots[i].fd, SHUT_RDWR);
        }
    }
    pthread_mutex_unlock(&lock);
    for (int i = 0; i < max_slots; i++) {
        if (slots[i].in_use) {
            pthread_join(slots[i].thread, NULL);
        }
    }
    pthread_attr_destroy(&attr);
    free(slots);
    return 0;
}
