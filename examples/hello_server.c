/*
 * hello_server.c - guide steps 2-4 of the article: a simple TCP server.
 *
 * The article's server.py in C, step for step: create a socket, bind it to
 * localhost:12345, listen, accept one client, send "Hello from server!",
 * print what the client says, close. Pair it with hello_client, or with
 * the article's own client.py (examples/article/client.py):
 *
 *   $ ./hello_server              $ ./hello_client
 *   listening on 127.0.0.1:12345  Server says: Hello from server!
 *   Waiting for connection...
 *   Connected to 127.0.0.1:51234
 *   Client says: Thanks, Server!
 *
 * Run it with NETX_TRACE=1 to see each step as libnetx takes it.
 *
 * Ctrl-C (SIGINT) or SIGTERM stops it, even while it waits: netx_stop_on()
 * makes the signal end the waiting call. Once it talks to the client, it
 * first finishes the exchange (for at most GRACE_MS); a second signal
 * stops it at once.
 */
#include <errno.h>
#include <netx.h>
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
            "  -H HOST  address to listen on (default localhost; '' for every interface)\n"
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

/* How long a stop lets the exchange with the client finish. */
#define GRACE_MS 5000

/* After a call failed: 1 if a stop cancelled it while we talk to the
 * client, and we may finish the exchange (call it again). */
static int finishing(void)
{
    return errno == ECANCELED && netx_stop_drain(GRACE_MS) == 0;
}

int main(int argc, char **argv)
{
    const char *host = "localhost";
    uint16_t port = 12345;
    int opt;

    /* First of all: descriptors 0, 1 and 2 must be open, or our sockets
     * would get those numbers and printf() would write into them. */
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

    /* Workflow steps 1 and 2: create a socket and bind it (server.bind,
     * server.listen(1)). */
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

    /* Workflow step 3: accept the client: a new socket just for this conversation. */
    netx_addr peer;
    int client = netx_accept(server, &peer);
    if (client < 0) {
        int stopped = errno == ECANCELED; /* Ctrl-C before anyone came */
        if (!stopped) {
            fprintf(stderr, "%s: %s\n", prog, netx_last_error());
        }
        netx_close(server);
        return stopped ? 0 : 1;
    }
    netx_addr_format(&peer, text, sizeof text);
    printf("Connected to %s\n", text);
    fflush(stdout);

    /* Workflow step 4: exchange data. send_all sends every byte, even if the system
     * takes them in pieces. */
    const char hello[] = "Hello from server!";
    int status = 0;
    char message[1024 + 1];
    ssize_t n = -1;
    if (netx_send_all(client, hello, sizeof hello - 1) == 0) {
        /* message = client_socket.recv(1024): one read, up to 1024 bytes.
         * (The hello is 18 bytes: a new socket always has room for it, so
         * only this wait can be stopped.) */
        do {
            n = netx_recv(client, message, sizeof message - 1);
        } while (n < 0 && finishing());
    }
    if (n >= 0) {
        message[n] = '\0';
        printf("Client says: %s\n", message);
        fflush(stdout);
    } else if (errno != ECANCELED) {
        fprintf(stderr, "%s: %s\n", prog, netx_last_error());
        status = 1;
    }

    /* Workflow step 5: close both sockets. */
    netx_close(client);
    netx_close(server);
    return status;
}
