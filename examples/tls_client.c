/*
 * tls_client.c - guide step 7 of the article, "Secure Your Connection",
 * from the client's side: echo_client over TLS.
 *
 * The article wraps the socket with Python's ssl module; here the same
 * step is netx_tls_connect() on the socket netx_tcp_connect() gave. What
 * the article leaves to the default context, libnetx does by default too:
 * the server's certificate must be signed by a CA we trust (the system's,
 * or the one -C names) and be for the name we dialled, TLS 1.2 at least.
 *
 *   $ ./tls_server -p 0 -c server.pem -k server-key.pem
 *   listening on 127.0.0.1:44300
 *   $ ./tls_client -p 44300 -C ca.pem hello
 *   hello
 *   $ ./tls_client -p 44300 hello             (the system's CAs do not know it)
 *   tls_client: tls handshake with localhost:44300 (127.0.0.1): certificate
 *   verify failed: unable to get local issuer certificate
 *
 * --insecure skips the check, for a test server whose certificate cannot be
 * checked; it says so on every run, because then anyone between us and the
 * server can read and change what we send.
 *
 * Each line is sent, and its echo must come back exactly (read through a
 * netx_reader over TLS); anything else is reported, with exit status 1.
 */
#include <errno.h>
#include <netx_tls.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The longest line sent and checked. */
#define LINE_MAX_BYTES (64 * 1024)

static const char *prog = "tls_client";

static void usage(FILE *out)
{
    fprintf(out,
            "usage: %s [-H HOST] [-p PORT] [-C CAFILE] [--insecure] [-t SECONDS]\n"
            "       [LINE...]\n"
            "  Send each LINE (or each line of standard input) to a TLS echo server,\n"
            "  check that it comes back exactly, and print it.\n"
            "  -H HOST     server to connect to (default localhost); its certificate\n"
            "              must be for this name\n"
            "  -p PORT     its port (default 12345)\n"
            "  -C CAFILE   trust the CA certificates in CAFILE (PEM) instead of the\n"
            "              system's\n"
            "  --insecure  DANGER: do not check the server's certificate at all\n"
            "  -t SECONDS  give up when connecting, the handshake, or any receive or\n"
            "              send takes longer than this, 1 to 3600 (default 10)\n"
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

/* The -t value: whole seconds from 1 to 3600, digits only. */
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

/* Say why the connection failed, in the library's sentence, and give 1. */
static int failed(void)
{
    fprintf(stderr, "%s: %s\n", prog, netx_last_error());
    return 1;
}

/*
 * Send one line (its '\n' included) and check that exactly it comes back.
 * Returns 0, or -1 after saying why.
 */
static int echo(netx_tls *tls, netx_reader *r, const char *line, size_t len, unsigned long number)
{
    static char back[LINE_MAX_BYTES + 1];

    if (len > LINE_MAX_BYTES) {
        fprintf(stderr, "%s: line %lu is longer than %d bytes\n", prog, number, LINE_MAX_BYTES);
        return -1;
    }
    if (netx_tls_send_all(tls, line, len) != 0) {
        failed();
        return -1;
    }
    /* A line comes back up to its '\n'; the last line of the input may have
     * none, and then comes back by count. */
    ssize_t n = line[len - 1] == '\n' ? netx_read_line(r, back, sizeof back)
                                      : netx_read_n(r, back, len);
    if (n < 0) {
        failed();
        return -1;
    }
    if ((size_t)n != len || memcmp(back, line, len) != 0) {
        if (n == 0) {
            fprintf(stderr, "%s: the server closed the connection before the echo of line %lu\n",
                    prog, number);
        } else {
            fprintf(stderr, "%s: the server answered %zd bytes that are not the echo of line %lu\n",
                    prog, n, number);
        }
        return -1;
    }
    fwrite(back, 1, len, stdout);
    fflush(stdout);
    return 0;
}

int main(int argc, char **argv)
{
    const char *host = "localhost";
    const char *ca_file = NULL;
    uint16_t port = 12345;
    int timeout_ms = 10 * 1000;
    int insecure = 0;
    int opt;

    /* --insecure has a long name on purpose, so nobody types it by chance.
     * getopt() knows only short options: take it out of argv first. */
    int kept = 1;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0) {
            while (i < argc) {
                argv[kept++] = argv[i++];
            }
            break;
        }
        if (strcmp(argv[i], "--insecure") == 0) {
            insecure = 1;
        } else {
            argv[kept++] = argv[i];
        }
    }
    argc = kept;
    argv[argc] = NULL;

    opterr = 0; /* we print our own messages */
    while ((opt = getopt(argc, argv, ":hH:p:C:t:")) != -1) {
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
        case 'C':
            ca_file = optarg;
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
    if (insecure && ca_file != NULL) {
        bad_usage("-C and --insecure together: -C says whom to trust, --insecure trusts anyone");
    }

    /* What we trust: safe by default, made once for every connection. */
    netx_tls_config *config = netx_tls_client_config();
    if (config == NULL) {
        return failed();
    }
    if (ca_file != NULL && netx_tls_config_ca_file(config, ca_file) != 0) {
        netx_tls_config_free(config);
        return failed();
    }
    if (insecure) {
        fprintf(stderr, "%s: WARNING: --insecure: the server's certificate is not checked; "
                        "anyone in between can read and change this connection\n",
                prog);
        netx_tls_config_insecure_no_verify(config);
    }

    /* Workflow steps 1-2: connect, then guide step 7: the TLS handshake over that socket,
     * each within the timeout. From here on the TLS connection owns fd. */
    int fd = netx_tcp_connect(host, port, timeout_ms);
    if (fd < 0) {
        netx_tls_config_free(config);
        return failed();
    }
    netx_set_nodelay(fd, 1);
    netx_set_timeout(fd, timeout_ms);
    netx_tls *tls = netx_tls_connect(config, fd, host, timeout_ms);
    netx_tls_config_free(config); /* the connection keeps what it needs */
    if (tls == NULL) {
        return failed();
    }

    /* Workflow step 4 over TLS: one line out, its echo back. */
    static char storage[LINE_MAX_BYTES];
    netx_reader reader;
    netx_tls_reader_init(&reader, tls, storage, sizeof storage);
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
            status = echo(tls, &reader, line, len + 1, ++number) == 0 ? 0 : 1;
            free(line);
        }
    } else {
        char *line = NULL;
        size_t cap = 0;
        for (;;) {
            ssize_t len = getline(&line, &cap, stdin);
            if (len <= 0 || status != 0) {
                break;
            }
            status = echo(tls, &reader, line, (size_t)len, ++number) == 0 ? 0 : 1;
        }
        free(line);
    }

    /* Workflow step 5 over TLS: close_notify, so the server knows we ended the
     * conversation on purpose, then close the socket. */
    if (netx_tls_close(tls) != 0 && status == 0) {
        status = failed();
    }
    return status;
}
