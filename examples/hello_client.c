/*
 * hello_client.c - Step 3 of the article's guide: a simple TCP client.
 *
 * The article's client.py in C: connect to localhost:12345, print what the
 * server says, answer "Thanks, Server!", close. Start hello_server (or the
 * article's server.py) first.
 *
 *   $ ./hello_client
 *   Server says: Hello from server!
 */
#include <netx.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static const char *prog = "hello_client";

static void usage(FILE *out)
{
    fprintf(out,
            "usage: %s [-H HOST] [-p PORT]\n"
            "  Greet a hello_server the article's way.\n"
            "  -H HOST  server to connect to (default localhost)\n"
            "  -p PORT  its port (default 12345)\n"
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

int main(int argc, char **argv)
{
    const char *host = "localhost";
    uint16_t port = 12345;
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
    if (port == 0) {
        bad_usage("port 0: a client needs the server's port");
    }

    /* Steps 1 and 2: create a socket and connect it (client.connect). Every
     * address "localhost" has is tried, for at most 10 seconds. */
    int fd = netx_tcp_connect(host, port, 10000);
    if (fd < 0) {
        fprintf(stderr, "%s: %s\n", prog, netx_last_error());
        return 1;
    }
    /* Do not wait forever for a server that never speaks. */
    netx_set_timeout(fd, 10000);

    /* Step 4: data = client.recv(1024), then client.send(...). */
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

    /* Step 5: client.close(). */
    netx_close(fd);
    return status;
}
