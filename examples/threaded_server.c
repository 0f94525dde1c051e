/*
 * threaded_server.c - guide step 5 of the article: "Enhance with Threads
 * (Multi-Client Support)".
 *
 * hello_server serves one client and stops. A real server talks to many at
 * once, and the simplest way to do that is the one the article names: give
 * each client a thread of its own. The main thread only accepts; each client
 * thread runs the article's workflow step 4 (exchange data) for its client -
 * here an echo: every byte the client sends comes back - and workflow step 5
 * (close) when the client is done.
 *
 *   $ ./threaded_server -n 64 -t 30       $ nc localhost 12345
 *   listening on 127.0.0.1:12345          hello
 *                                         hello
 *
 * A thread per client is easy to read, but every thread costs memory and a
 * place in the scheduler, so the server caps how many clients it serves at
 * once (-n): a client beyond the cap is told "server busy" and closed at once.
 * A client that stays silent too long can be closed too (-t), so idle clients
 * cannot hold every place forever. A client that is never quite silent - one
 * that trickles a byte every few seconds, the "slowloris" attack - defeats
 * that, so a total deadline (-d) closes any client connected for too long,
 * whatever it does. On SIGINT (Ctrl-C) or SIGTERM the server stops
 * accepting, lets every client finish what it asked for (for at most the
 * grace period, -g), waits for every thread and exits 0; a second signal
 * stops it at once.
 *
 * Run it with NETX_TRACE=1 to see each step as libnetx takes it.
 */
#include <errno.h>
#include <fcntl.h>
#include <netx.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *prog = "threaded_server";

static void usage(FILE *out)
{
    fprintf(out,
            "usage: %s [-H HOST] [-p PORT] [-n MAX] [-t SECONDS] [-d SECONDS]\n"
            "       [-g SECONDS]\n"
            "  Echo every client's bytes back to it, one thread per client.\n"
            "  -H HOST     address to listen on (default localhost; '' for every interface)\n"
            "  -p PORT     port to listen on, 0 for any free one (default 12345)\n"
            "  -n MAX      most clients served at once, 1 to 10000 (default 64);\n"
            "              one more is told \"server busy\" and closed\n"
            "  -t SECONDS  close a client silent for that long, 0 to 86400\n"
            "              (default 0: never)\n"
            "  -d SECONDS  close a client connected for that long, whatever it\n"
            "              does, 0 to 86400 (default 0: never)\n"
            "  -g SECONDS  on SIGINT or SIGTERM, stop accepting and let the clients\n"
            "              finish for at most this long, 0 to 3600 (default 5);\n"
            "              a second signal stops at once\n"
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
 * Read a whole number from min to max given as text: decimal digits only, so
 * "", "-1", "+5", "5x" and " 5" are all refused, as netx_parse_port() refuses
 * them for a port.
 */
static int parse_number(const char *text, long min, long max, long *out)
{
    size_t len = strlen(text);
    if (len == 0 || len > 9) {
        return -1; /* nine digits are more than any of our limits */
    }
    for (size_t i = 0; i < len; i++) {
        if (text[i] < '0' || text[i] > '9') {
            return -1;
        }
    }
    long value = strtol(text, NULL, 10);
    if (value < min || value > max) {
        return -1;
    }
    *out = value;
    return 0;
}

/* A clock that never jumps (the wall clock can be set back), in ms. */
static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * Stopping on Ctrl-C (SIGINT) or SIGTERM, gracefully.
 *
 * The other servers call netx_stop_on(), which lets a signal end any libnetx
 * call that waits, in any thread. It does so by waiting in poll() beside a
 * pipe the signal writes to - for a thread blocked in recv(), three more
 * system calls per request (docs/performance.md measured the cost: 0.7 of
 * the requests per second). A thread-per-client server does not need it:
 * the main thread knows every client socket, and can end a client thread's
 * wait itself with shutdown(). So here the handler only writes a byte to a
 * pipe (the "self-pipe trick"), the main thread waits on the listener and
 * that pipe together, and the client threads block the two signals, so
 * their recv() and send() are plain blocking calls.
 *
 * The first signal: the main thread closes the listener and lets the
 * clients finish - each until its client ends its side - for at most the
 * grace period (-g). Then, or at once on a second signal, it shuts every
 * remaining connection down, which ends every thread's wait.
 */
static int grace_ms = 5000;
static int stop_pipe[2] = {-1, -1};

static void on_signal(int sig)
{
    (void)sig;
    int saved = errno; /* a handler must not disturb the code it interrupts */
    ssize_t ignored = write(stop_pipe[1], "", 1);
    (void)ignored;
    errno = saved;
}

static int catch_stop_signals(void)
{
    if (pipe(stop_pipe) != 0) {
        return -1;
    }
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

/*
 * Wait until fd is readable (1) or a stop signal comes (0). fd -1: just wait
 * up to timeout_ms (1 when the time is up). Each stop signal is taken from
 * the pipe as it is seen, so the next wait sees the next signal.
 */
static int wait_readable(int fd, int timeout_ms)
{
    struct pollfd p[2] = {{.fd = stop_pipe[0], .events = POLLIN, .revents = 0},
                          {.fd = fd, .events = POLLIN, .revents = 0}};
    for (;;) {
        int n = poll(p, fd >= 0 ? 2 : 1, timeout_ms);
        if (n < 0) {
            if (errno == EINTR) {
                continue; /* our own signal: the pipe now says so */
            }
            return 0;
        }
        if (p[0].revents != 0) {
            char sink[16];
            ssize_t ignored = read(stop_pipe[0], sink, sizeof sink);
            (void)ignored;
            return 0;
        }
        return 1;
    }
}

/* ------------------------------------------------------------------------
 * The clients being served, shared by the main thread and the client threads
 * ------------------------------------------------------------------------ */

/*
 * One place in the table for each client that may be served at once. A
 * client thread gets the address of its own place, which nobody else uses
 * until that thread has ended and been joined.
 */
struct client {
    int fd;                     /* the client's connected socket */
    char peer[NETX_ADDRSTRLEN]; /* its address, for messages */
    long long deadline_ms;      /* now_ms() when -d closes it; 0 for never */
    pthread_t thread;           /* the thread serving it */
    int in_use;                 /* a thread was started here and not yet joined
                                   (read and written by the main thread only) */
    int finished;               /* the thread is done with fd (under the lock) */
};

static struct {
    pthread_mutex_t lock; /* guards active, stopping and every finished */
    int active;           /* clients being served now */
    int stopping;         /* the server is shutting down */
    int max;              /* -n: the cap on active */
    int idle_timeout_s;   /* -t: 0 for none */
    int deadline_s;       /* -d: 0 for none */
    struct client *table; /* max places */
} clients = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* Why serving a client stopped, or that it has not. */
enum ending {
    SERVING,  /* not stopped: carry on */
    LEFT,     /* the client closed the connection */
    FAILED,   /* a call failed; netx_last_error() says which and why */
    SILENT,   /* -t: it sent nothing, or took nothing, for too long */
    OVERTIME, /* -d: it has been connected for too long */
};

/*
 * The two time limits, and why one call is not enough for them.
 *
 * netx_set_timeout() bounds each wait of a recv or a send: that is the idle
 * timeout (-t) exactly, a limit on silence. But a client that trickles one
 * byte every few seconds is never silent for long, so each of its waits ends
 * in time, and it can hold its thread for ever - the "slowloris" attack. The
 * deadline (-d) bounds the whole connection instead. So before each wait we
 * set the timeout again, to the idle limit or to what is left of the
 * deadline, whichever is shorter, and remember which of the two it was: when
 * the wait then times out, that says which limit ran out. (Asking the clock
 * afterwards could guess wrong: the system's timer may fire a few
 * milliseconds before the deadline we computed.)
 */
struct limit {
    long long armed_ms; /* the timeout set on the socket now; 0 for none */
    int is_deadline;    /* it is what was left of the deadline */
};

/* Set the limit for the next wait on c's socket: SERVING, or OVERTIME when
 * nothing is left of the deadline, or FAILED. */
static enum ending arm_limit(const struct client *c, struct limit *lim)
{
    long long ms = (long long)clients.idle_timeout_s * 1000;
    int is_deadline = 0;
    if (c->deadline_ms != 0) {
        long long left = c->deadline_ms - now_ms();
        if (left <= 0) {
            return OVERTIME;
        }
        if (ms == 0 || left < ms) {
            ms = left;
            is_deadline = 1;
        }
    }
    /* Setting the timeout costs two system calls, as much as the echo
     * itself, so keep the one already set while it is right to within a
     * second: the deadline then fires at most a second late (poll_server
     * checks its deadlines once a second too). */
    if (ms == lim->armed_ms && lim->is_deadline == is_deadline) {
        return SERVING; /* already set (or no limit at all) */
    }
    if (lim->armed_ms != 0 && lim->is_deadline == is_deadline && lim->armed_ms >= ms &&
        lim->armed_ms - ms < 1000) {
        return SERVING;
    }
    if (netx_set_timeout(c->fd, (int)ms) != 0) {
        return FAILED;
    }
    lim->armed_ms = ms;
    lim->is_deadline = is_deadline;
    return SERVING;
}

/* A recv or send failed: which limit ran out, if either did. */
static enum ending why_failed(const struct limit *lim)
{
    if (errno != ETIMEDOUT) {
        return FAILED;
    }
    return lim->is_deadline ? OVERTIME : SILENT;
}

/*
 * Send len bytes of echo. send() may take fewer bytes than we give it, so
 * we loop until the kernel has every one - as netx_send_all() would, except
 * that we set the limit again before each send, so that a client that reads
 * its echo one byte at a time cannot stretch the deadline either.
 */
static enum ending send_echo(const struct client *c, const char *buf, size_t len, struct limit *lim)
{
    size_t off = 0;
    while (off < len) {
        enum ending e = arm_limit(c, lim);
        if (e != SERVING) {
            return e;
        }
        ssize_t n = netx_send(c->fd, buf + off, len - off);
        if (n < 0) {
            return why_failed(lim);
        }
        off += (size_t)n;
    }
    return SERVING;
}

/*
 * What a client thread does: workflow steps 4 and 5 for one client.
 * Echo what arrives until the client closes, fails, stays silent too long
 * or reaches its deadline.
 */
static void *serve_client(void *arg)
{
    struct client *c = arg;
    int fd = c->fd;
    char buf[16384];

    /* Small requests and replies: send each reply at once instead of letting
     * Nagle's algorithm hold it back waiting for more. Only a matter of
     * speed, so a failure here is not a reason to drop the client. */
    netx_set_nodelay(fd, 1);

    /* The limits bound each send too, so a client that sends but never
     * reads its echoes cannot keep this thread blocked in send() forever. */
    struct limit lim = {.armed_ms = 0, .is_deadline = 0};
    enum ending end = SERVING;
    while (end == SERVING) {
        end = arm_limit(c, &lim);
        if (end != SERVING) {
            break;
        }
        /* One recv: whatever has arrived, up to the size of buf. */
        ssize_t n = netx_recv(fd, buf, sizeof buf);
        if (n == 0) {
            end = LEFT; /* the client closed the connection: we are done */
        } else if (n < 0) {
            end = why_failed(&lim);
        } else {
            end = send_echo(c, buf, (size_t)n, &lim);
        }
    }

    /* Give our place back. The table must never hold a descriptor that is
     * already closed: its number could be reused at once by a new client,
     * and a shutdown meant for us would then hit that client. So first say
     * "finished" under the lock, and only then close. */
    pthread_mutex_lock(&clients.lock);
    c->finished = 1;
    clients.active--;
    int stopping = clients.stopping;
    pthread_mutex_unlock(&clients.lock);

    /* One client's error ends that client only, never the server. Once
     * the server shuts the connections down, the errors are ours, so stay
     * quiet. netx_log() never blocks: a standard error that nobody reads
     * cannot stall this thread. */
    if (!stopping) {
        if (end == SILENT) {
            netx_log("%s: %s was silent for %d s, closing it", prog, c->peer,
                     clients.idle_timeout_s);
        } else if (end == OVERTIME) {
            netx_log("%s: %s was connected for %d s, the most allowed (-d); closing it", prog,
                     c->peer, clients.deadline_s);
        } else if (end == FAILED) {
            netx_log("%s: %s", prog, netx_last_error());
        }
    }
    netx_close(fd);
    return NULL;
}

/*
 * Take a place in the table for a new client, counted in clients.active:
 * its index, or -1 when the server is full.
 */
static int take_place(void)
{
    int place = -1;
    pthread_mutex_lock(&clients.lock);
    if (clients.active < clients.max) {
        for (int i = 0; i < clients.max; i++) {
            if (!clients.table[i].in_use || clients.table[i].finished) {
                place = i;
                break;
            }
        }
        /* active counts the places in use and not finished, and there are
         * max places, so one is free; the check is only for safety. */
        if (place >= 0) {
            clients.active++;
        }
    }
    pthread_mutex_unlock(&clients.lock);
    return place;
}

/*
 * Too many clients already: say so and close at once. The client is not left
 * waiting in the listen backlog, and costs no thread.
 */
static void refuse_client(int fd, const char *peer)
{
    static const char busy[] = "server busy\n";

    /* A new socket's send buffer is empty, so these few bytes never block. */
    netx_send_all(fd, busy, sizeof busy - 1);
    /* Send our FIN right behind the message. Closing a socket with bytes
     * still unread makes the kernel answer with a reset; the FIN already on
     * its way means the client reads "server busy" and then the end of the
     * stream, not "connection reset". */
    netx_shutdown(fd, SHUT_WR);
    netx_close(fd);
    /* A flood of clients makes a flood of these: netx_log() writes one a
     * second and counts the rest. */
    netx_log("%s: told %s the server is busy (limit: %d clients)", prog, peer, clients.max);
}

/*
 * Start a thread for a client that has place `place`. On failure the client
 * is closed and its place given back; the server carries on.
 */
static void start_client(int place, int fd, const char *peer, const pthread_attr_t *attr)
{
    struct client *c = &clients.table[place];

    /* The place was used before. Its thread is done with its client
     * (take_place() saw to that) and at most closing the socket, so joining
     * it takes no time, and frees the thread's stack. */
    if (c->in_use) {
        pthread_join(c->thread, NULL);
        c->in_use = 0;
    }
    c->fd = fd;
    c->finished = 0;
    snprintf(c->peer, sizeof c->peer, "%s", peer);
    /* The deadline counts from now, the moment the client was accepted. */
    c->deadline_ms = clients.deadline_s > 0 ? now_ms() + (long long)clients.deadline_s * 1000 : 0;

    /*
     * The classic bug is
     *
     *     int client = accept(server, NULL, NULL);
     *     pthread_create(&t, NULL, serve, &client);
     *
     * which passes the address of the loop's own variable. The new thread
     * reads it some time later - by then the loop may have accepted the next
     * client into the same variable, and two threads serve one client while
     * the other is never served and its descriptor never closed. Each thread
     * must get storage of its own: here its place in the table, which is not
     * touched again until that thread has been joined.
     *
     *
     * The thread starts with the signal mask of the thread that creates it,
     * so block SIGINT and SIGTERM just for the call: the new thread keeps
     * them blocked, and they always go to the main thread's handler.
     */
    sigset_t stop_signals;
    sigset_t old;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop_signals, &old);
    int rc = pthread_create(&c->thread, attr, serve_client, c);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        /* Out of threads or memory: this client only is closed. pthread
         * functions return their error instead of setting errno. */
        netx_log("%s: pthread_create for %s: %s; closing it", prog, peer, strerror(rc));
        pthread_mutex_lock(&clients.lock);
        clients.active--;
        pthread_mutex_unlock(&clients.lock);
        netx_close(fd);
        return;
    }
    c->in_use = 1;
}

/* How many clients are being served now. */
static int active_clients(void)
{
    pthread_mutex_lock(&clients.lock);
    int n = clients.active;
    pthread_mutex_unlock(&clients.lock);
    return n;
}

/*
 * Stop serving and wait for every client thread.
 *
 * graceful (after a stop signal): first let the clients finish, for at most
 * the grace period or until a second signal. Then wake every thread still
 * serving: shutdown(SHUT_RDWR) ends the connection in both directions
 * without closing the descriptor (which the thread still owns), so its
 * recv() returns 0 at once and a blocked send() fails. Each thread then
 * closes its own socket and ends.
 *
 * pthread_join() waits until a thread has really ended and frees its stack,
 * so when this returns no thread is left running and nothing is leaked.
 * (A detached thread that signals "done" on a condition variable may still
 * be running its last instructions when main() returns, and its memory is
 * then never freed.)
 */
static void stop_clients(int graceful)
{
    int waiting = active_clients();
    if (graceful && waiting > 0 && grace_ms > 0) {
        netx_log("%s: stopping: letting %d clients finish for up to %d s "
                 "(signal again to stop now)",
                 prog, waiting, grace_ms / 1000);
        long long deadline = now_ms() + grace_ms;
        /* Look again every 50 ms: the threads that finish need no signal. */
        while (active_clients() > 0 && now_ms() < deadline) {
            long long left = deadline - now_ms();
            if (!wait_readable(-1, left < 50 ? (int)left : 50)) {
                break; /* a second signal: stop now */
            }
        }
    }
    pthread_mutex_lock(&clients.lock);
    clients.stopping = 1;
    for (int i = 0; i < clients.max; i++) {
        struct client *c = &clients.table[i];
        if (c->in_use && !c->finished) {
            netx_shutdown(c->fd, SHUT_RDWR);
        }
    }
    pthread_mutex_unlock(&clients.lock);

    for (int i = 0; i < clients.max; i++) {
        if (clients.table[i].in_use) {
            pthread_join(clients.table[i].thread, NULL);
            clients.table[i].in_use = 0;
        }
    }
}

/* accept() failed because the listener itself is unusable: give up. Other
 * failures belong to one connection or to a passing shortage. */
static int listener_broken(int err)
{
    return err == EBADF || err == ENOTSOCK || err == EINVAL || err == EFAULT;
}

int main(int argc, char **argv)
{
    const char *host = "localhost";
    uint16_t port = 12345;
    long max_clients = 64;
    long idle_timeout_s = 0;
    long deadline_s = 0;
    long grace_s = 5;
    int opt;

    /* First of all: descriptors 0, 1 and 2 must be open, or our sockets
     * would get those numbers and printf() would write into them. */
    if (netx_stdio_reserve() != 0) {
        return 1;
    }
    opterr = 0; /* we print our own messages */
    while ((opt = getopt(argc, argv, ":hH:p:n:t:d:g:")) != -1) {
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
        case 'n':
            if (parse_number(optarg, 1, 10000, &max_clients) != 0) {
                bad_usage("-n \"%s\": not a number from 1 to 10000", optarg);
            }
            break;
        case 't':
            if (parse_number(optarg, 0, 86400, &idle_timeout_s) != 0) {
                bad_usage("-t \"%s\": not a number of seconds from 0 to 86400", optarg);
            }
            break;
        case 'd':
            if (parse_number(optarg, 0, 86400, &deadline_s) != 0) {
                bad_usage("-d \"%s\": not a number of seconds from 0 to 86400", optarg);
            }
            break;
        case 'g':
            if (parse_number(optarg, 0, 3600, &grace_s) != 0) {
                bad_usage("-g \"%s\": not a number of seconds from 0 to 3600", optarg);
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
    grace_ms = (int)grace_s * 1000;

    clients.max = (int)max_clients;
    clients.idle_timeout_s = (int)idle_timeout_s;
    clients.deadline_s = (int)deadline_s;
    clients.table = calloc((size_t)clients.max, sizeof *clients.table);
    if (clients.table == NULL) {
        perror(prog);
        return 1;
    }
    /* Each thread gets a stack of its own, 8 MiB by default on Linux. An echo
     * needs a few dozen KiB, and with thousands of clients the default adds
     * up to gigabytes of address space, so ask for less. */
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 256 * 1024);

    /* Workflow steps 1 and 2: create a socket, bind it and listen. The backlog (0:
     * the system's largest) only holds clients for the moment between their
     * arrival and our accept(); the cap on clients is ours, below. */
    int server = netx_tcp_listen(host, port, 0);
    if (server < 0) {
        fprintf(stderr, "%s: %s\n", prog, netx_last_error());
        pthread_attr_destroy(&attr);
        free(clients.table);
        return 1;
    }
    /* poll() says a client is waiting, but it may reset its connection
     * before we accept it; a blocking accept() would then wait for the next
     * one and could not notice a stop. Non-blocking, accept() says EAGAIN and
     * we go back to poll(). (Accepted sockets are blocking all the same.) */
    netx_set_nonblocking(server, 1);

    netx_addr local;
    char text[NETX_ADDRSTRLEN];
    netx_local_addr(server, &local);
    netx_addr_format(&local, text, sizeof text);
    printf("listening on %s\n", text);
    fflush(stdout);

    /* Workflow step 3, over and over: accept each client and hand it to a thread,
     * until a stop signal. */
    int status = 0;
    int out_of_descriptors = 0;
    while (wait_readable(server, -1)) {
        netx_addr peer;
        int fd = netx_accept(server, &peer);
        if (fd < 0) {
            int err = errno;
            if (err == EAGAIN || err == EWOULDBLOCK) {
                continue; /* that client went away: wait for the next */
            }
            if (err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM) {
                /* Out of descriptors (or memory). The client stays queued,
                 * so accepting again at once would fail again at once: a
                 * spin. Pause, and try again when clients may have gone. */
                if (!out_of_descriptors) {
                    netx_log("%s: %s; pausing 100 ms between accepts", prog, netx_last_error());
                    out_of_descriptors = 1;
                }
                if (!wait_readable(-1, 100)) {
                    break;
                }
                continue;
            }
            if (listener_broken(err)) {
                netx_log("%s: %s", prog, netx_last_error());
                status = 1;
                break;
            }
            /* Linux passes on errors of the new connection (ENETUNREACH,
             * EPROTO, ...); that connection is gone, the listener is fine. */
            netx_log("%s: %s", prog, netx_last_error());
            continue;
        }
        out_of_descriptors = 0;

        char name[NETX_ADDRSTRLEN];
        netx_addr_format(&peer, name, sizeof name);
        int place = take_place();
        if (place < 0) {
            refuse_client(fd, name);
        } else {
            start_client(place, fd, name, &attr);
        }
    }

    /* Stop: close the listener first, so that clients arriving now are
     * refused by the system instead of waiting for an accept that will not
     * come; then let every client finish and wait for its thread. */
    netx_close(server);
    stop_clients(status == 0);
    pthread_attr_destroy(&attr);
    free(clients.table);
    close(stop_pipe[0]);
    close(stop_pipe[1]);
    netx_log_flush(); /* lines netx_log() held back, counted */
    return status;
}
