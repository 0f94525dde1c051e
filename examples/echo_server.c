/*
 * echo_server.c - Step 4 of the article's workflow, "Exchange Data", as a
 * server that keeps going: it accepts one client at a time and sends back
 * every byte that client sends, until the client closes. Then it takes the
 * next one.
 *
 * One client at a time is the point of this example: while one client is
 * being served, the next waits in the listen backlog. Step 5's
 * threaded_server (a thread per client) and poll_server (one thread,
 * many clients) lift that limit.
 *
 *   $ ./echo_server -p 0
 *   listening on 127.0.0.1:40123
 *   $ ./echo_client -p 40123 hello world
 *   hello
 *   world
 */
#include <errno.h>
#include <fcntl.h>
#include <netx.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static const char *prog = "echo_server";

static void usage(FILE *out)
{
    fprintf(out,
            "usage: %s [-H HOST] [-p PORT]\n"
            "  Echo every byte back to each client, one client at a time.\n"
            "  -H HOST  address to listen on (default localhost)\n"
            "  -p PORT  port to listen on, 0 for any free one (default 12345)\n"
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
 * Stopping on Ctrl-C (SIGINT) or SIGTERM: libnetx retries a call that a
 * signal interrupts, so the handler writes a byte to a pipe, and we wait
 * with poll() on the socket and on that pipe together (the self-pipe trick).
 *
 * One wait is not a poll(): sending the echo to a client that does not read
 * blocks in netx_send_all() until the client makes room. So the handler
 * also shuts the current client's connection down - shutdown() is one of
 * the calls a signal handler may make - and the blocked send fails at once.
 */
static int stop_pipe[2] = {-1, -1};
static volatile sig_atomic_t current_client = -1;

static void on_signal(int sig)
{
    (void)sig;
    int saved = errno; /* a handler must not disturb the code it interrupts */
    ssize_t ignored = write(stop_pipe[1], "", 1);
    (void)ignored;
    if (current_client >= 0) {
        shutdown(current_client, SHUT_RDWR);
    }
    errno = saved;
}

/* Close the pipe when the program ends, whichever way out of main() it
 * takes, so no descriptor is left open behind us. */
static void close_stop_pipe(void)
{
    close(stop_pipe[0]);
    close(stop_pipe[1]);
}

static int catch_stop_signals(void)
{
    if (pipe(stop_pipe) != 0) {
        return -1;
    }
    atexit(close_stop_pipe);
    for (int i = 0; i < 2; i++) {
        fcntl(stop_pipe[i], F_SETFD, FD_CLOEXEC);
        fcntl(stop_pipe[i], F_SETFL, O_NONBLOCK);
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGINT, &sa, NULL) != 0 || sigaction(SIGTERM, &sa, NULL) != 0) {
        return -1;
    }
    return 0;
}

/* Wait until fd has something to read: 1, or 0 once a stop was asked for. */
static int wait_readable(int fd)
{
    struct pollfd p[2] = {{.fd = fd, .events = POLLIN}, {.fd = stop_pipe[0], .events = POLLIN}};
    for (;;) {
        if (poll(p, 2, -1) < 0) {
            if (errno == EINTR) {
                continue; /* our own signal: the pipe now says why */
            }
            return 0;
        }
        if (p[1].revents != 0) {
            return 0;
        }
        if (p[0].revents != 0) {
            return 1;
        }
    }
}

/* 1 once a stop signal has arrived (its byte is waiting in the pipe). */
static int stop_requested(void)
{
    struct pollfd p = {.fd = stop_pipe[0], .events = POLLIN};
    return poll(&p, 1, 0) > 0;
}

/*
 * Echo one client until it closes. Returns 0 when the client is done (or
 * failed: one client's trouble is reported and the server goes on), -1 when
 * the server was asked to stop.
 */
static int serve(int client)
{
    char buf[4096];

    for (;;) {
        if (!wait_readable(client)) {
            return -1;
        }
        ssize_t n = netx_recv(client, buf, sizeof buf);
        if (n == 0) {
            return 0; /* the client closed: end of its stream */
        }
        /* Whatever recv returned, send it all back: send_all loops until
         * the system has taken every byte. */
        if (n < 0 || netx_send_all(client, buf, (size_t)n) != 0) {
            if (stop_requested()) {
                return -1; /* the handler shut the connection: we are stopping */
            }
            fprintf(stderr, "%s: %s\n", prog, netx_last_error());
            return 0;
        }
    }
}

int main(int argc, char **argv)
{
    const char *host = "localhost";
    uint16_t port = 12345;
    int opt;

    opterr = 0; /* we print our own messages */
    while ((opt = getopt(argc, argv, ":hH:p:")) != -1) {
        switch (opt) {
        case 'h':
            usage(stdout);
            return 0;
        case 'H':
            host = optarg;
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
    if (catch_stop_signals() != 0) {
        perror(prog);
        return 1;
    }

    /* Steps 1-2: socket, bind, listen. */
    int server = netx_tcp_listen(host, port, 0);
    if (server < 0) {
        fprintf(stderr, "%s: %s\n", prog, netx_last_error());
        return 1;
    }
    netx_addr local;
    char text[NETX_ADDRSTRLEN];
    netx_local_addr(server, &local);
    netx_addr_format(&local, text, sizeof text);
    printf("listening on %s\n", text);
    fflush(stdout);

    /* Step 3, again and again: accept a client, serve it, close it. */
    int stopping = 0;
    while (!stopping && wait_readable(server)) {
        int client = netx_accept(server, NULL);
        if (client < 0) {
            /* Out of descriptors, say: report, pause so we do not spin,
             * and keep serving. */
            fprintf(stderr, "%s: %s\n", prog, netx_last_error());
            poll(NULL, 0, 100);
            continue;
        }
        netx_set_nodelay(client, 1); /* small echoes go out at once */
        current_client = client;
        stopping = serve(client) != 0;
        current_client = -1;
        netx_close(client); /* Step 5 */
    }
    netx_close(server);
    return 0;
}
