/*
 * hello_client.c - guide step 3 of the article: a simple TCP client.
 *
 * The article's client.py in C: connect to localhost:12345, print what the
 * server says, answer "Thanks, Server!", close. Start hello_server, or the
 * article's own server.py (examples/article/server.py), first.
 *
 *   $ ./hello_client
 *   Server says: Hello from server!
 *
 * Unlike client.py, it never waits for ever: connecting, and each receive
 * and send, may take at most -t SECONDS (default 10). A server that never
 * answers, or never even accepts, is reported, and the exit status is 1:
 *
 *   $ ./hello_client -t 2
 *   hello_client: recv from 127.0.0.1:12345 (fd 3): Connection timed out
 */
#include <netx.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *prog = "hello_client";

static void usage(FILE *out)
{
    fprintf(out,
            "usage: %s [-H HOST] [-p PORT] [-t SECONDS]\n"
            "  Greet a hello_server the article's way.\n"
            "  -H HOST     server to connect to (default localhost)\n"
            "  -p PORT     its port (default 12345)\n"
            "  -t SECONDS  give up when connecting, or any receive or send, takes\n"
            "              longer than this, 1 to 3600 (default 10)\n"
            "  -h          show this help\n",
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
 * The -t value: whole seconds from 1 to 3600. Decimal digits only, so "",
 * "-1", "+5", "5x" and " 5" are refused, as netx_parse_port() refuses them
 * for a port (strtol() alone would take " 5" and "+5"). 0 is refused too:
 * to a socket it would mean "no limit", the very thing -t is there to avoid.
 */
static int parse_seconds(const char *text)
{
    size_t len = strlen(text);
    long seconds = -1;
    /* Nine digits at most, so strtol() cannot overflow. */
    if (len > 0 && len <= 9 && strspn(text, "0123456789") == len) {
        seconds = strtol(text, NULL, 10);
    }
    if (seconds < 1 || seconds > 3600) {
        bad_usage("-t \"%s\": not a number of seconds from 1 to 3600", text);
    }
    return (int)seconds;
}

int main(int argc, char **argv)
{
    const char *host = "localhost";
    uint16_t port = 12345;
    int timeout_ms = 10 * 1000;
    int opt;

    opterr = 0;
    while ((opt = getopt(argc, argv, ":hH:p:t:")) != -1) {
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
        case 't':
            timeout_ms = parse_seconds(optarg) * 1000;
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
    if (port == 0) {
        bad_usage("port 0: a client needs the server's port");
    }

    /* Workflow steps 1 and 2: create a socket and connect it (client.connect). Every
     * address "localhost" has is tried, all within the timeout: a server
     * whose backlog is full drops our handshake, and connect(2) alone would
     * keep retrying for minutes. */
    int fd = netx_tcp_connect(host, port, timeout_ms);
    if (fd < 0) {
        fprintf(stderr, "%s: %s\n", prog, netx_last_error());
        return 1;
    }
    /* A connected socket is no promise of an answer: a server that listens
     * but never accepts, or accepts and never speaks, would leave recv()
     * waiting for ever. Bound each receive and send; the one that runs out
     * fails with ETIMEDOUT and a sentence naming it. */
    if (netx_set_timeout(fd, timeout_ms) != 0) {
        fprintf(stderr, "%s: %s\n", prog, netx_last_error());
        netx_close(fd);
        return 1;
    }

    /* Workflow step 4: data = client.recv(1024), then client.send(...). */
    char data[1024 + 1];
    ssize_t n = netx_recv(fd, data, sizeof data - 1);
    int status = 0;
    if (n < 0) {
        status = 1;
    } else {
        data[n] = '\0';
        printf("Server says: %s\n", data);
        fflush(stdout);
        const char thanks[] = "Thanks, Server!";
        if (netx_send_all(fd, thanks, sizeof thanks - 1) != 0) {
            status = 1;
        }
    }
    if (status != 0) {
        fprintf(stderr, "%s: %s\n", prog, netx_last_error());
    }

    /* Workflow step 5: client.close(). */
    netx_close(fd);
    return status;
}
