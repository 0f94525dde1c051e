/*
 * udp_client.c - guide step 6 of the article, "Switch to UDP", from the
 * client's side: send datagrams and wait for their echoes.
 *
 * UDP promises nothing: a datagram may be lost, duplicated or delayed, and
 * nobody tells you. So the client waits a limited time for each echo, sends
 * again if none comes, and gives up after a few tries, saying so. With no
 * arguments, each line of standard input is sent as one datagram.
 *
 *   $ ./udp_client -p 50001 -t 500 -r 3 hello
 *   hello
 *   $ ./udp_client -p 50002 hello          (nobody there)
 *   udp_client: no reply to "hello" (try 1 of 3): recv from ...: Connection refused
 *   ...
 *   udp_client: giving up on "hello" after 3 tries
 */
#include <errno.h>
#include <netx.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *prog = "udp_client";

static void usage(FILE *out)
{
    fprintf(out,
            "usage: %s [-H HOST] [-p PORT] [-t MS] [-r TRIES] [MESSAGE...]\n"
            "  Send each MESSAGE (or each line of standard input) as one datagram\n"
            "  and print its echo.\n"
            "  -H HOST   server to send to (default localhost)\n"
            "  -p PORT   its port (default 12345)\n"
            "  -t MS     how long to wait for each echo, in milliseconds (default 1000)\n"
            "  -r TRIES  how many times to send before giving up (default 3)\n"
            "  -h        show this help\n",
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

/* A whole number from lo to hi, or a usage error naming the option. */
static int parse_count(char option, const char *text, int lo, int hi)
{
    char *end = NULL;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || v < lo || v > hi) {
        bad_usage("-%c \"%s\": not a number from %d to %d", option, text, lo, hi);
    }
    return (int)v;
}

/* Milliseconds on a clock that never jumps. */
static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * Send one datagram and wait up to timeout_ms for the same bytes to come
 * back, trying up to tries times. Returns 0 once the echo is printed, -1
 * after giving up.
 */
static int echo(int fd, const char *msg, size_t len, int timeout_ms, int tries)
{
    static char reply[65536];
    int shown = (int)(len < 60 ? len : 60); /* quote at most 60 bytes */

    for (int attempt = 1; attempt <= tries; attempt++) {
        if (netx_send(fd, msg, len) < 0) {
            fprintf(stderr, "%s: %s\n", prog, netx_last_error());
            return -1;
        }
        /* Wait for the echo. A reply that is not ours (a late echo of an
         * earlier try, say) is skipped, but does not buy more time: the
         * wait has one deadline. Any failure - the timeout, or the
         * "Connection refused" that comes back when nobody listens on that
         * port - counts as no reply. */
        long long deadline = now_ms() + timeout_ms;
        for (;;) {
            long long left = deadline - now_ms();
            /* At least 1 ms: a timeout of 0 would mean "wait forever". */
            netx_set_timeout(fd, left > 0 ? (int)left : 1);
            ssize_t n = netx_recv(fd, reply, sizeof reply);
            if (n >= 0 && (size_t)n == len && memcmp(reply, msg, len) == 0) {
                fwrite(reply, 1, len, stdout);
                fputc('\n', stdout);
                fflush(stdout);
                return 0;
            }
            if (n < 0) {
                fprintf(stderr, "%s: no reply to \"%.*s\" (try %d of %d): %s\n", prog, shown, msg,
                        attempt, tries, netx_last_error());
                break;
            }
        }
    }
    fprintf(stderr, "%s: giving up on \"%.*s\" after %d tries\n", prog, shown, msg, tries);
    return -1;
}

int main(int argc, char **argv)
{
    const char *host = "localhost";
    uint16_t port = 12345;
    int timeout_ms = 1000;
    int tries = 3;
    int opt;

    opterr = 0; /* we print our own messages */
    while ((opt = getopt(argc, argv, ":hH:p:t:r:")) != -1) {
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
            timeout_ms = parse_count('t', optarg, 1, 3600000);
            break;
        case 'r':
            tries = parse_count('r', optarg, 1, 1000);
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

    /* A connected UDP socket: netx_send/netx_recv talk to that server only,
     * and datagrams from anyone else are filtered out by the system. */
    int fd = netx_udp_connect(host, port);
    if (fd < 0) {
        fprintf(stderr, "%s: %s\n", prog, netx_last_error());
        return 1;
    }

    int status = 0;
    if (optind < argc) {
        for (int i = optind; i < argc && status == 0; i++) {
            status = echo(fd, argv[i], strlen(argv[i]), timeout_ms, tries) == 0 ? 0 : 1;
        }
    } else {
        char *line = NULL;
        size_t cap = 0;
        ssize_t len;
        while (status == 0 && (len = getline(&line, &cap, stdin)) > 0) {
            if (line[len - 1] == '\n') {
                len--; /* the datagram is the line's text */
            }
            status = echo(fd, line, (size_t)len, timeout_ms, tries) == 0 ? 0 : 1;
        }
        free(line);
    }
    netx_close(fd);
    return status;
}
