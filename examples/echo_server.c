/*
 * echo_server.c - workflow step 4 of the article, "Exchange Data", as a
 * server that keeps going: it accepts one client at a time and sends back
 * every byte that client sends, until the client closes. Then it takes the
 * next one.
 *
 * One client at a time is the point of this example: while one client is
 * being served, the next waits in the listen backlog. threaded_server (a
 * thread per client, guide step 5) and poll_server (one thread, many
 * clients, architecture 4) lift that limit.
 *
 *   $ ./echo_server -p 0
 *   listening on 127.0.0.1:40123
 *   $ ./echo_client -p 40123 hello world
 *   hello
 *   world
 */
#include <errno.h>
#include <netx.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *prog = "echo_server";

static void usage(FILE *out)
{
    fprintf(out,
            "usage: %s [-H HOST] [-p PORT] [-g SECONDS]\n"
            "  Echo every byte back to each client, one client at a time.\n"
            "  -H HOST     address to listen on (default localhost; '' for every interface)\n"
            "  -p PORT     port to listen on, 0 for any free one (default 12345)\n"
            "  -g SECONDS  on SIGINT or SIGTERM, stop accepting and finish the\n"
            "              current client for at most this long, 0 to 3600\n"
            "              (default 5); a second signal stops at once\n"
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

/*
 * Stopping on Ctrl-C (SIGINT) or SIGTERM, gracefully. netx_stop_on() makes
 * the signal end whatever libnetx call is waiting: the accept, a recv, or a
 * send to a client that does not read. It fails with ECANCELED.
 *
 * A stop must not lose what a client already asked for, so the first
 * signal stops accepting but lets the current client finish: we call
 * netx_stop_drain(), which lets the calls wait again, and keep echoing until
 * the client ends its side - for at most the grace period (-g). Then every
 * wait is cancelled for good, as it is at once on a second signal.
 */
static int grace_ms = 5000;
static int listener = -1; /* closed as soon as the stop comes */

/* After a call failed: 1 if a stop cancelled it and we may carry on
 * draining (call it again), 0 if we must give up on this client. */
static int draining(void)
{
    if (errno != ECANCELED) {
        return 0;
    }
    /* Stop accepting at once: closing the listener makes the system refuse
     * new clients, instead of queueing them for an accept that will not
     * come. */
    if (listener >= 0) {
        netx_close(listener);
        listener = -1;
    }
    if (grace_ms == 0 || netx_stop_drain(grace_ms) != 0) {
        return 0;
    }
    netx_log("%s: stopping: finishing the current client for up to %d s "
             "(signal again to stop now)",
             prog, grace_ms / 1000);
    return 1;
}

/* Report a client's failure; a stop is not one. */
static void report(void)
{
    if (netx_last_errno() != ECANCELED) {
        netx_log("%s: %s", prog, netx_last_error());
    }
}

/*
 * Echo one client until it closes its side, fails, or a stop ends it. One
 * client's trouble is reported, and the server goes on with the next.
 */
static void serve(int client)
{
    char buf[4096];

    for (;;) {
        ssize_t n = netx_recv(client, buf, sizeof buf);
        if (n == 0) {
            return; /* the client closed: end of its stream */
        }
        if (n < 0) {
            if (draining()) {
                continue;
            }
            report();
            return;
        }
        /* Whatever recv returned, send it all back: send_all loops until
         * the system has taken every byte. If a stop interrupts it, carry
         * on from where it stopped. */
        size_t done = 0;
        while (netx_send_all(client, buf + done, (size_t)n - done) != 0) {
            done += netx_last_transferred();
            if (!draining()) {
                report();
                return;
            }
        }
    }
}

/* Read whole seconds from 0 to 3600 for -g: digits only. */
static int parse_seconds(const char *text, int *out)
{
    size_t len = strlen(text);
    if (len == 0 || len > 4 || strspn(text, "0123456789") != len || atoi(text) > 3600) {
        return -1;
    }
    *out = atoi(text);
    return 0;
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
    while ((opt = getopt(argc, argv, ":hH:p:g:")) != -1) {
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
        case 'g':
            if (parse_seconds(optarg, &grace_ms) != 0) {
                bad_usage("-g \"%s\": not a number of seconds from 0 to 3600", optarg);
            }
            grace_ms *= 1000;
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

    /* Workflow steps 1-2: socket, bind, listen. */
    listener = netx_tcp_listen(host, port, 0);
    if (listener < 0) {
        fprintf(stderr, "%s: %s\n", prog, netx_last_error());
        return 1;
    }
    netx_addr local;
    char text[NETX_ADDRSTRLEN];
    netx_local_addr(listener, &local);
    netx_addr_format(&local, text, sizeof text);
    printf("listening on %s\n", text);
    fflush(stdout);

    /* Workflow step 3, again and again: accept a client, serve it, close it. */
    while (!netx_stopping()) {
        int client = netx_accept(listener, NULL);
        if (client < 0) {
            if (errno == ECANCELED) {
                break; /* stopped while waiting for a client */
            }
            /* Out of descriptors, say: report, pause so we do not spin,
             * and keep serving. */
            netx_log("%s: %s", prog, netx_last_error());
            nanosleep(&(struct timespec){0, 100 * 1000000L}, NULL);
            continue;
        }
        netx_set_nodelay(client, 1); /* small echoes go out at once */
        serve(client);
        netx_close(client); /* workflow step 5 */
    }
    if (listener >= 0) {
        netx_close(listener); /* not closed yet by a stop */
    }
    netx_log_flush(); /* lines netx_log() held back, counted */
    return 0;
}
