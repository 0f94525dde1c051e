/*
 * echo_client.c - workflow step 4 of the article, "Exchange Data", from
 * the client's side: send lines to an echo server, check that each comes
 * back exactly, and print it.
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
 * An echo server sends back exactly the bytes it was sent, so what comes
 * back is compared with what went out, byte for byte. Anything else is not
 * printed as if it were the echo, but quoted in a message, with exit status
 * 1; a full threaded_server, for one, answers "server busy":
 *
 *   $ ./echo_client -p 40123 hello
 *   echo_client: the server answered "server busy" instead of the echo of line 1
 *
 * A server that closes early, or stays silent for longer than -t SECONDS
 * (default 10), is reported too, with exit status 1.
 */
#include <errno.h>
#include <netx.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A long line goes out in pieces of this many bytes (see echo()). */
#define PIECE (64 * 1024)

/* At most this many bytes of a wrong answer are quoted; each takes up to 4
 * characters (\x1b), and the quotes, a "..." and the NUL 6 more. */
#define QUOTE_MAX   60
#define QUOTED_SIZE (QUOTE_MAX * 4 + 6)

static const char *prog = "echo_client";

static void usage(FILE *out)
{
    fprintf(out,
            "usage: %s [-H HOST] [-p PORT] [-t SECONDS] [LINE...]\n"
            "  Send each LINE (or each line of standard input) to an echo server,\n"
            "  check that it comes back exactly, and print it.\n"
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

/*
 * Write the first line of a server's answer (len bytes, not NUL-terminated)
 * into out, QUOTED_SIZE bytes, in double quotes: at most QUOTE_MAX bytes of
 * it, then "..." if there was more. The answer may be any bytes at all: a
 * megabyte without a newline, or escape sequences that would take over the
 * terminal. So '"', '\' and every byte outside printable ASCII are escaped
 * (\t, \r, \x1b), and the message stays one short, readable line.
 */
static void quote(char *out, const char *answer, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    const char *nl = memchr(answer, '\n', len);
    size_t n = nl != NULL ? (size_t)(nl - answer) : len;
    size_t o = 0;

    out[o++] = '"';
    for (size_t i = 0; i < n && i < QUOTE_MAX; i++) {
        unsigned char c = (unsigned char)answer[i];
        if (c == '"' || c == '\\') {
            out[o++] = '\\';
            out[o++] = (char)c;
        } else if (c == '\t' || c == '\r') {
            out[o++] = '\\';
            out[o++] = c == '\t' ? 't' : 'r';
        } else if (c < 0x20 || c > 0x7e) {
            out[o++] = '\\';
            out[o++] = 'x';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 0xf];
        } else {
            out[o++] = (char)c;
        }
    }
    out[o++] = '"';
    if (n > QUOTE_MAX) {
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o] = '\0';
}

/*
 * Send one line (len bytes, its '\n' included when it has one) on fd, and
 * check that exactly those bytes come back through r, printing them as they
 * do. number counts the lines, for messages. Returns 0, or -1 after printing
 * why.
 *
 * A long line goes out in pieces, each echo read back before the next piece
 * is sent. Sending a whole 16 MiB line first would deadlock: the server
 * blocks sending echoes we are not reading yet, so it stops reading, and our
 * send blocks too. A piece smaller than the sockets' buffers always fits.
 *
 * The echo of a piece is read up to each '\n' as a line, with
 * netx_read_line(): an answer that is not the echo shows as soon as its own
 * line ends, whatever its length, and the reader's storage bounds how much
 * of it we take in. The bytes after a piece's last '\n' (the middle of a
 * long line, or a last line without one) have no line end to wait for, so
 * they are read by count, with netx_read_n().
 */
static int echo(int fd, netx_reader *r, const char *line, size_t len, unsigned long number)
{
    static char back[PIECE + 1]; /* one piece, and the NUL netx_read_line() adds */

    for (size_t done = 0; done < len;) {
        size_t end = len - done < PIECE ? len : done + PIECE;
        if (netx_send_all(fd, line + done, end - done) != 0) {
            fprintf(stderr, "%s: %s\n", prog, netx_last_error());
            return -1;
        }
        while (done < end) {
            const char *want = line + done;
            const char *nl = memchr(want, '\n', end - done);
            size_t expect = nl != NULL ? (size_t)(nl - want) + 1 : end - done;
            ssize_t n =
                nl != NULL ? netx_read_line(r, back, sizeof back) : netx_read_n(r, back, expect);
            if (n < 0 && errno == EMSGSIZE) {
                fprintf(stderr,
                        "%s: the server answered a line of more than %d bytes instead of the "
                        "echo of line %lu\n",
                        prog, PIECE, number);
                return -1;
            }
            if (n < 0) {
                fprintf(stderr, "%s: %s\n", prog, netx_last_error());
                return -1;
            }
            /* Not the echo: other bytes, or a line longer than ours. A
             * shorter line differs too: its '\n' comes where ours has none. */
            if ((size_t)n > expect || memcmp(back, want, (size_t)n) != 0) {
                char quoted[QUOTED_SIZE];
                quote(quoted, back, (size_t)n);
                fprintf(stderr, "%s: the server answered %s instead of the echo of line %lu\n",
                        prog, quoted, number);
                return -1;
            }
            if ((size_t)n < expect) { /* the right bytes, then the end of the stream */
                fprintf(stderr,
                        "%s: the server closed the connection after %zu of the %zu bytes of "
                        "line %lu\n",
                        prog, done + (size_t)n, len, number);
                return -1;
            }
            fwrite(back, 1, expect, stdout);
            done += expect;
        }
    }
    fflush(stdout);
    return 0;
}

int main(int argc, char **argv)
{
    const char *host = "localhost";
    uint16_t port = 12345;
    int timeout_ms = 10 * 1000;
    int opt;

    opterr = 0; /* we print our own messages */
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
    if (port == 0) {
        bad_usage("port 0: a client needs the server's port");
    }

    /* Workflow steps 1-2: create a socket and connect, trying each address of host,
     * all within the timeout. */
    int fd = netx_tcp_connect(host, port, timeout_ms);
    if (fd < 0) {
        fprintf(stderr, "%s: %s\n", prog, netx_last_error());
        return 1;
    }
    netx_set_nodelay(fd, 1); /* each line goes out at once */
    /* A server that never answers (or a listener that never accepts us)
     * must not leave us waiting for ever: bound each receive and send. */
    if (netx_set_timeout(fd, timeout_ms) != 0) {
        fprintf(stderr, "%s: %s\n", prog, netx_last_error());
        netx_close(fd);
        return 1;
    }

    /* The echoes are read through a reader: it keeps what arrived after a
     * line's end for the next line. Its storage bounds the longest line it
     * returns; static, because 64 KiB is a lot for a stack. Nothing here is
     * NULL or 0, so netx_reader_init() cannot fail. */
    static char storage[PIECE];
    netx_reader reader;
    netx_reader_init(&reader, fd, storage, sizeof storage);

    /* Workflow step 4: one line out, its echo back, until there are no more. */
    int status = 0;
    unsigned long number = 0;
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
            status = echo(fd, &reader, line, len + 1, ++number) == 0 ? 0 : 1;
            free(line);
        }
    } else {
        char *line = NULL;
        size_t cap = 0;
        ssize_t len;
        /* getline() reads a whole line of any length, '\n' included. */
        while (status == 0 && (len = getline(&line, &cap, stdin)) > 0) {
            status = echo(fd, &reader, line, (size_t)len, ++number) == 0 ? 0 : 1;
        }
        free(line);
    }

    /* Workflow step 5: close. */
    netx_close(fd);
    return status;
}
