/*
 * chat_client.c - the client side of the article's use case 2: a chat
 * client for chat_server (or any line chat), and the client side of
 * event-driven programming.
 *
 *   $ ./chat_client -p 41234 -n ada
 *   * welcome, guest1. Commands: /nick NAME, /who, /quit
 *   * you are now ada
 *   hello                       (typed: everyone else sees "ada: hello")
 *   bob: hi ada                 (arrives while you type)
 *
 * A chat client must do two things at once: take what you type, and show
 * what others say the moment it arrives. Waiting for a line on standard
 * input would freeze the conversation until you press Enter; waiting on
 * the socket would freeze your typing. So one thread waits for both with
 * netx_poller - standard input and the socket in one set - and serves
 * whichever is ready: the same event loop as the servers, seen from the
 * other end.
 *
 * Lines are framed with a netx_reader on each side (the socket's, and one
 * over standard input that never waits), and what you type goes out through
 * a netx_writer, so a server that stops reading cannot freeze your typing
 * either. At the end of your input (Ctrl-D, or the end of a file) the
 * client sends what it has, ends its side, and exits when the server has
 * closed; when the server goes, it says so and exits.
 */
#include <errno.h>
#include <netx.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *prog = "chat_client";

#define LINE_MAX_BYTES 4096
#define OUT_CAP        (256 * 1024) /* what you typed that the server has not taken */

static void usage(FILE *out)
{
    fprintf(out,
            "usage: %s [-H HOST] [-p PORT] [-n NAME] [-t SECONDS]\n"
            "  Chat: send each line you type (or of standard input), show each line\n"
            "  the server sends, at the same time.\n"
            "  -H HOST     server to connect to (default localhost)\n"
            "  -p PORT     its port (default 12345)\n"
            "  -n NAME     your name (sends /nick NAME first)\n"
            "  -t SECONDS  give up connecting after this long, and after the end of\n"
            "              your input wait this long for the server, 1 to 3600\n"
            "              (default 10)\n"
            "  -h          show this help\n",
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

static int parse_seconds(const char *text)
{
    size_t len = strlen(text);
    long seconds = -1;
    if (len > 0 && len <= 9 && strspn(text, "0123456789") == len) {
        seconds = strtol(text, NULL, 10);
    }
    if (seconds < 1 || seconds > 3600) {
        bad_usage("-t \"%s\": not a number of seconds from 1 to 3600", text);
    }
    return (int)seconds;
}

/*
 * Standard input, read so that it never waits: a read() only when poll()
 * says there is something (or the end) to read. The reader over it then
 * says EAGAIN, as over a non-blocking socket, instead of freezing the loop
 * on a half-typed line. (Making standard input itself non-blocking would
 * change it for the shell that shares it.)
 */
static ssize_t stdin_read(void *source, void *buf, size_t cap)
{
    (void)source;
    struct pollfd p = {.fd = 0, .events = POLLIN, .revents = 0};
    if (poll(&p, 1, 0) == 0) {
        errno = EAGAIN;
        return -1;
    }
    ssize_t n;
    do {
        n = read(0, buf, cap);
    } while (n < 0 && errno == EINTR);
    return n;
}

/* 1 if name can be sent as "/nick NAME": 1 to 64 bytes, no space or
 * control character. (The server has its own, stricter rules; it says.) */
static int one_word(const char *name)
{
    size_t len = strlen(name);
    for (size_t i = 0; i < len; i++) {
        unsigned char b = (unsigned char)name[i];
        if (b <= ' ' || b == 0x7f) {
            return 0;
        }
    }
    return len > 0 && len <= 64;
}

/* 1 if the line typed is the /quit command (as the server reads it: the
 * line without its end), after which the server closes and says bye. */
static int is_quit(const char *line, size_t len)
{
    while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) {
        len--;
    }
    return len == 5 && memcmp(line, "/quit", 5) == 0;
}

int main(int argc, char **argv)
{
    const char *host = "localhost";
    const char *name = NULL;
    uint16_t port = 12345;
    int timeout_ms = 10 * 1000;
    int opt;

    opterr = 0;
    while ((opt = getopt(argc, argv, ":hH:p:n:t:")) != -1) {
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
        case 'n':
            name = optarg;
            if (!one_word(name)) {
                /* Not echoed: a newline in it would break the line. */
                bad_usage("-n: a name is one word (no spaces or control characters) of at "
                          "most 64 bytes");
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
    /* Ctrl-C ends the loop's wait (ECANCELED), and we leave cleanly. */
    netx_stop_on(SIGINT);
    netx_stop_on(SIGTERM);

    int fd = netx_tcp_connect(host, port, timeout_ms);
    if (fd < 0) {
        fprintf(stderr, "%s: %s\n", prog, netx_last_error());
        return 1;
    }
    netx_set_nodelay(fd, 1);
    netx_set_nonblocking(fd, 1);

    static char from_server_storage[LINE_MAX_BYTES];
    static char typed_storage[LINE_MAX_BYTES];
    static char line[LINE_MAX_BYTES + 1];
    netx_reader from_server;
    netx_reader typed;
    netx_writer to_server;
    netx_reader_init(&from_server, fd, from_server_storage, sizeof from_server_storage);
    netx_reader_init_source(&typed, 0, stdin_read, NULL, typed_storage, sizeof typed_storage);
    netx_writer_init(&to_server, fd, OUT_CAP);

    netx_poller *poller = netx_poller_new();
    if (poller == NULL || netx_poller_add(poller, fd, NETX_READABLE, NULL) != 0) {
        fprintf(stderr, "%s: %s\n", prog, netx_last_error());
        netx_poller_free(poller);
        netx_close(fd);
        return 1;
    }
    /* A terminal or a pipe can be watched; a regular file cannot (epoll
     * says EPERM), but it is always readable, so we just read it. */
    int stdin_watched = netx_poller_add(poller, 0, NETX_READABLE, NULL) == 0;
    int stdin_done = 0;   /* the end of the input: we ended our side */
    int quit_typed = 0;   /* we sent /quit: the server's close is expected */
    int status = 0;
    long long give_up = -1; /* after the input ends: how long to wait */
    /* Declared out here, not in the loop: the poller remembers the array of
     * its last wait until the next one (netx_poller_del() clears the events
     * of a descriptor it drops from it), so the array must outlive one turn
     * of the loop. */
    netx_event ev[2];

    if (name != NULL) {
        netx_writer_printf(&to_server, "/nick %s\n", name);
    }
    for (;;) {
        /* Take what was typed: whole lines, as long as there are any. */
        while (!stdin_done && netx_writer_room(&to_server) > LINE_MAX_BYTES) {
            ssize_t n = netx_read_line(&typed, line, sizeof line);
            if (n > 0) {
                netx_writer_send(&to_server, line, (size_t)n);
                quit_typed = quit_typed || is_quit(line, (size_t)n);
            } else if (n == 0) {
                stdin_done = 1; /* the end of the input */
                if (stdin_watched) {
                    netx_poller_del(poller, 0);
                }
            } else if (errno == EMSGSIZE) {
                fprintf(stderr, "%s: a line longer than %d bytes was not sent\n", prog,
                        LINE_MAX_BYTES);
            } else {
                break; /* EAGAIN: nothing more typed yet */
            }
        }
        if (netx_writer_flush(&to_server) != 0) {
            fprintf(stderr, "%s: %s\n", prog, netx_last_error());
            status = 1;
            break;
        }
        if (stdin_done && give_up < 0 && netx_writer_pending(&to_server) == 0) {
            /* All we had is sent: end our side, and wait for the server's. */
            netx_shutdown(fd, SHUT_WR);
            give_up = timeout_ms;
        }
        unsigned events = NETX_READABLE;
        if (netx_writer_pending(&to_server) > 0) {
            events |= NETX_WRITABLE;
        }
        netx_poller_mod(poller, fd, events, NULL);
        /* Backpressure: while the server has not taken what we typed, stop
         * taking more (and stop asking whether there is more). */
        int can_type = !stdin_done && netx_writer_room(&to_server) > LINE_MAX_BYTES;
        if (stdin_watched && !stdin_done) {
            netx_poller_mod(poller, 0, can_type ? NETX_READABLE : 0, NULL);
        }
        int wait = stdin_done ? (int)give_up : (!stdin_watched && can_type) ? 0 : -1;
        int n = netx_poller_wait(poller, ev, 2, wait);
        if (n < 0) {
            if (errno != ECANCELED) {
                fprintf(stderr, "%s: %s\n", prog, netx_last_error());
                status = 1;
            }
            break; /* Ctrl-C: leave */
        }
        if (n == 0 && stdin_done) {
            fprintf(stderr, "%s: the server did not close within %d s after our input ended\n",
                    prog, timeout_ms / 1000);
            status = 1;
            break;
        }
        /* Show what the server said, a whole line at a time. */
        int server_gone = 0;
        for (;;) {
            ssize_t got = netx_read_line(&from_server, line, sizeof line);
            if (got > 0) {
                fwrite(line, 1, (size_t)got, stdout);
                continue;
            }
            if (got == 0) {
                server_gone = 1;
            } else if (errno == EMSGSIZE) {
                continue; /* an over-long line from the server: skipped */
            } else if (errno != EAGAIN) {
                fprintf(stderr, "%s: %s\n", prog, netx_last_error());
                status = 1;
                server_gone = 1;
            }
            break;
        }
        fflush(stdout);
        if (server_gone) {
            if (!stdin_done && !quit_typed && status == 0) {
                fprintf(stderr, "%s: the server closed the connection\n", prog);
            }
            break;
        }
    }
    netx_writer_free(&to_server);
    netx_poller_free(poller);
    netx_close(fd);
    return status;
}
