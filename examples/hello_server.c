/*
 * hello_server.c - Steps 2-4 of the article's guide: a simple TCP server.
 *
 * The article's server.py in C, step for step: create a socket, bind it to
 * localhost:12345, listen, accept one client, send "Hello from server!",
 * print what the client says, close. Pair it with hello_client (or the
 * article's client.py):
 *
 *   $ ./hello_server              $ ./hello_client
 *   listening on 127.0.0.1:12345  Server says: Hello from server!
 *   Waiting for connection...
 *   Connected to 127.0.0.1:51234
 *   Client says: Thanks, Server!
 *
 * Run it with NETX_TRACE=1 to see each step as libnetx takes it.
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
#include <unistd.h>

static const char *prog = "hello_server";

static void usage(FILE *out)
{
    fprintf(out,
            "usage: %s [-H HOST] [-p PORT]\n"
            "  Serve one client the article's way: say hello, print its answer.\n"
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
 * Stopping on Ctrl-C (SIGINT) or SIGTERM. libnetx retries a call that a
 * signal interrupts, so a flag set by the handler would not wake us; instead
 * the handler writes a byte to a pipe, and we wait with poll() on the socket
 * and on that pipe together (the "self-pipe trick").
 */
static int stop_pipe[2] = {-1, -1};

static void on_signal(int sig)
{
    (void)sig;
    int saved = errno; /* a handler must not disturb the code it interrupts */
    ssize_t ignored = write(stop_pipe[1], "", 1);
    (void)ignored;
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

    /* Steps 1 and 2: create a socket and bind it (server.bind, server.listen(1)). */
    int server = netx_tcp_listen(host, port, 1);
    if (server < 0) {
        fprintf(stderr, "%s: %s\n", prog, netx_last_error());
        return 1;
    }
    netx_addr local;
    char text[NETX_ADDRSTRLEN];
    netx_local_addr(server, &local);
    netx_addr_format(&local, text, sizeof text);
    printf("listening on %s\n", text);
    printf("Waiting for connection...\n");
    fflush(stdout);

    /* Step 3: accept the client: a new socket just for this conversation. */
    if (!wait_readable(server)) {
        netx_close(server);
        return 0; /* stopped by a signal before anyone came */
    }
    netx_addr peer;
    int client = netx_accept(server, &peer);
    if (client < 0) {
        fprintf(stderr, "%s: %s\n", prog, netx_last_error());
        netx_close(server);
        return 1;
    }
    netx_addr_format(&peer, text, sizeof text);
    printf("Connected to %s\n", text);
    fflush(stdout);

    /* Step 4: exchange data. send_all sends every byte, even if the system
     * takes them in pieces. */
    const char hello[] = "Hello from server!";
    int status = 0;
    char message[1024 + 1];
    if (netx_send_all(client, hello, sizeof hello - 1) != 0) {
        status = 1;
    } else if (wait_readable(client)) {
        /* message = client_socket.recv(1024): one read, up to 1024 bytes. */
        ssize_t n = netx_recv(client, message, sizeof message - 1);
        if (n < 0) {
            status = 1;
        } else {
            message[n] = '\0';
            printf("Client says: %s\n", message);
            fflush(stdout);
        }
    }
    if (status != 0) {
        fprintf(stderr, "%s: %s\n", prog, netx_last_error());
    }

    /* Step 5: close both sockets. */
    netx_close(client);
    netx_close(server);
    return status;
}
