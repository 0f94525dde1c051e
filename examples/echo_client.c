/*
 * echo_client.c - Step 4 of the article's workflow, "Exchange Data", from
 * the client's side: send lines to an echo server and print what comes
 * back.
 *
 * Each argument is sent as one line. With no arguments, the lines of
 * standard input are sent instead, so it works in a pipeline:
 *
 *   $ ./echo_client -p 40123 hello world
 *   hello
 *   world
 *   $ printf 'one\ntwo\n' | ./echo_client -p 40123
 *   one
 *   two
 *
 * An echo server sends back exactly the bytes it was sent, so after sending
 * a line of n bytes we read exactly n bytes back: TCP may deliver them in
 * several pieces, and netx_recv_all() puts them together.
 */
#include <netx.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *prog = "echo_client";

static void usage(FILE *out)
{
    fprintf(out,
            "usage: %s [-H HOST] [-p PORT] [LINE...]\n"
            "  Send each LINE (or each line of standard input) to an echo server\n"
            "  and print each echo.\n"
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

/*
 * Send len bytes and print the echo. Returns 0, or -1 after printing why.
 *
 * A long line goes out in pieces, each echo read back before the next piece
 * is sent. Sending a whole 16 MiB line first would deadlock: the server
 * blocks sending echoes we are not reading yet, so it stops reading, and our
 * send blocks too. A piece smaller than the sockets' buffers always fits.
 */
static int echo(int fd, const char *line, size_t len)
{
    static char back[64 * 1024];

    for (size_t done = 0; done < len;) {
        size_t piece = len - done < sizeof back ? len - done : sizeof back;
        if (netx_send_all(fd, line + done, piece) != 0) {
            fprintf(stderr, "%s: %s\n", prog, netx_last_error());
            return -1;
        }
        ssize_t n = netx_recv_all(fd, back, piece);
        if (n < 0) {
            fprintf(stderr, "%s: %s\n", prog, netx_last_error());
            return -1;
        }
        if ((size_t)n < piece) {
            fprintf(stderr, "%s: the server closed the connection after %zu of %zu bytes\n", prog,
                    done + (size_t)n, len);
            return -1;
        }
        fwrite(back, 1, piece, stdout);
        done += piece;
    }
    fflush(stdout);
    return 0;
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
    if (port == 0) {
        bad_usage("port 0: a client needs the server's port");
    }

    /* Steps 1-2: create a socket and connect, trying each address of host. */
    int fd = netx_tcp_connect(host, port, 10000);
    if (fd < 0) {
        fprintf(stderr, "%s: %s\n", prog, netx_last_error());
        return 1;
    }
    netx_set_nodelay(fd, 1);     /* each line goes out at once */
    netx_set_timeout(fd, 10000); /* and a silent server does not hang us */

    /* Step 4: one line out, its echo back, until there are no more. */
    int status = 0;
    if (optind < argc) {
        for (int i = optind; i < argc && status == 0; i++) {
            size_t len = strlen(argv[i]);
            char *line = malloc(len + 2);
            if (line == NULL) {
                fprintf(stderr, "%s: out of memory\n", prog);
                status = 1;
                break;
            }
            memcpy(line, argv[i], len);
            line[len] = '\n';
            status = echo(fd, line, len + 1) == 0 ? 0 : 1;
            free(line);
        }
    } else {
        char *line = NULL;
        size_t cap = 0;
        ssize_t len;
        /* getline() reads a whole line of any length, '\n' included. */
        while (status == 0 && (len = getline(&line, &cap, stdin)) > 0) {
            status = echo(fd, line, (size_t)len) == 0 ? 0 : 1;
        }
        free(line);
    }

    /* Step 5: close. */
    netx_close(fd);
    return status;
}
