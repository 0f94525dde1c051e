/*
 * test_chat.c - the article's use case 2, real-time chat, end to end: the
 * real chat_server, with this process's own sockets as its clients (so
 * every byte each client receives can be accounted for), with nc, and with
 * the real chat_client.
 *
 *  - 50 clients x 100 lines: every client gets every other client's lines
 *    exactly once, in each sender's order, and never its own; the join and
 *    rename notices too.
 *  - A client that never reads is cut off once its output passes -b, the
 *    server says why in its log, and the others' lines are not delayed
 *    behind it.
 *  - Names (/nick: unique, bounded, letters, digits, '_' and '-' only),
 *    /who, /quit, an unknown command; control bytes (NUL included) never
 *    reach anyone's terminal; an over-long line is refused and its sender
 *    stays.
 *  - nc and chat_client as clients.
 *  - Hostile clients (resets, garbage, half a line then a reset), -t and
 *    -d: the server stays usable and its descriptors come back.
 *  - The graceful stop (everyone told, then the end of the stream; the
 *    grace period; a second signal), -n, and the command line.
 *
 * Every wait has a deadline. Times are asserted only as generous bounds:
 * "does not hang", "is not delayed behind a slow client", and, for -t and
 * the grace period, "not long before its time".
 */
#include "proc.h"
#include "support.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define WAIT_MS 10000 /* for a program to start or end, or a line to come: generous, for ASan */
#define IO_MS   5000  /* for a connect */

static struct proc server, ann, bob, helper;

static const char welcome_tail[] = ". Commands: /nick NAME, /who, /quit\n";

/* ------------------------------------------------------------------------
 * The server
 * ------------------------------------------------------------------------ */

/* Start chat_server on 127.0.0.1, on a free port, with the extra options
 * in opts (NULL-terminated, or NULL); returns its port. */
static int start_server(const char *const opts[])
{
    const char *argv[24];
    int n = 0;
    argv[n++] = proc_path("chat_server");
    argv[n++] = "-H";
    argv[n++] = "127.0.0.1";
    argv[n++] = "-p";
    argv[n++] = "0";
    for (int i = 0; opts != NULL && opts[i] != NULL && n < 23; i++) {
        argv[n++] = opts[i];
    }
    argv[n] = NULL;
    assert_int_equal(proc_start(&server, argv, NULL, 0), 0);
    int port = proc_wait_listening(&server, WAIT_MS);
    if (port <= 0) {
        fail_msg("chat_server did not start: %s%s", server.out_buf, server.err_buf);
    }
    return port;
}

/* SIGTERM, and it must exit 0. */
static void stop_server(void)
{
    int status = proc_stop(&server, SIGTERM, WAIT_MS);
    if (status != 0) {
        fail_msg("chat_server ended with %d; its stderr:\n%s", status, server.err_buf);
    }
}

/* Wait up to timeout_ms for the server to have `want` descriptors open; fail
 * with both numbers if it does not. */
static void assert_server_fds(int want, int timeout_ms, const char *when)
{
    long long deadline = proc_now_ms() + timeout_ms;
    int n = proc_fd_count(server.pid);
    while (n != want && proc_now_ms() < deadline) {
        poll(NULL, 0, 20);
        n = proc_fd_count(server.pid);
    }
    if (n != want) {
        fail_msg("chat_server has %d descriptors open %s, expected %d", n, when, want);
    }
}

/* Wait for text in what the server printed (its log); fail if it never
 * comes. */
static void assert_server_said(const char *text)
{
    if (proc_wait_output(&server, text, WAIT_MS) != 0) {
        fail_msg("chat_server never said \"%s\"; its stderr:\n%s", text, server.err_buf);
    }
}

/* ------------------------------------------------------------------------
 * Clients of our own: the room
 * ------------------------------------------------------------------------ */

/*
 * One client of the test: a non-blocking socket, everything it received
 * (NUL-terminated), and what it has still to send. Every peer that is not
 * deaf is read whenever any wait pumps, so no server ever finds one of
 * ours slow by accident; a deaf peer is never read at all.
 */
struct peer {
    int used;
    int fd;
    int deaf;
    char name[32]; /* the server's name for it (or a label, for messages) */
    char *in;      /* all received, NUL-terminated */
    size_t in_len, in_cap;
    size_t seen; /* what the test has taken from in */
    char *out;   /* to send */
    size_t out_len, out_off, out_cap;
    int eof;      /* the stream ended (end of stream or a reset) */
    int send_err; /* errno of a failed send, or 0 */
};

#define MAX_PEERS 64
static struct peer room[MAX_PEERS];

static void *grow(void *buf, size_t *cap, size_t need)
{
    if (need <= *cap) {
        return buf;
    }
    size_t cap2 = *cap < 4096 ? 4096 : *cap;
    while (cap2 < need) {
        cap2 *= 2;
    }
    void *b = realloc(buf, cap2);
    assert_non_null(b);
    *cap = cap2;
    return b;
}

/* Send what the socket takes now. */
static void peer_flush(struct peer *p)
{
    while (p->out_off < p->out_len && p->send_err == 0) {
        ssize_t n =
            send(p->fd, p->out + p->out_off, p->out_len - p->out_off, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0) {
            p->out_off += (size_t)n;
        } else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
            return;
        } else {
            p->send_err = n < 0 ? errno : EIO;
        }
    }
    if (p->out_off == p->out_len) {
        p->out_off = p->out_len = 0;
    }
}

/* Receive what has come, up to 256 KiB a call. */
static void peer_receive(struct peer *p)
{
    for (int i = 0; i < 4 && !p->eof; i++) {
        p->in = grow(p->in, &p->in_cap, p->in_len + 65536 + 1);
        ssize_t n = recv(p->fd, p->in + p->in_len, 65536, MSG_DONTWAIT);
        if (n > 0) {
            p->in_len += (size_t)n;
            p->in[p->in_len] = '\0';
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
            return;
        }
        p->eof = 1; /* the end of the stream, or a reset */
    }
}

/* One poll() over every peer that reads or has something to send: at most
 * timeout_ms. */
static void pump(int timeout_ms)
{
    struct pollfd fds[MAX_PEERS];
    struct peer *who[MAX_PEERS];
    int n = 0;
    for (int i = 0; i < MAX_PEERS; i++) {
        struct peer *p = &room[i];
        if (!p->used || p->fd < 0) {
            continue;
        }
        short ev = 0;
        if (!p->deaf && !p->eof) {
            ev |= POLLIN;
        }
        if (p->out_len > p->out_off && p->send_err == 0) {
            ev |= POLLOUT;
        }
        if (ev != 0) {
            fds[n] = (struct pollfd){.fd = p->fd, .events = ev};
            who[n++] = p;
        }
    }
    int r = poll(fds, (nfds_t)n, timeout_ms);
    if (r < 0 && errno != EINTR) {
        fail_msg("poll: %s", strerror(errno));
    }
    for (int i = 0; r > 0 && i < n; i++) {
        if (fds[i].revents & POLLOUT) {
            peer_flush(who[i]);
        }
        if ((fds[i].revents & (POLLIN | POLLHUP | POLLERR)) && !who[i]->deaf) {
            peer_receive(who[i]);
        }
    }
}

/* A connected peer, without waiting for anything; rcvbuf > 0 sets
 * SO_RCVBUF first (before the connect, so the window is small from the
 * start). */
static struct peer *peer_connect(int port, int rcvbuf)
{
    struct peer *p = NULL;
    for (int i = 0; i < MAX_PEERS && p == NULL; i++) {
        if (!room[i].used) {
            p = &room[i];
        }
    }
    assert_non_null(p);
    memset(p, 0, sizeof *p);
    char text[32];
    snprintf(text, sizeof text, "127.0.0.1:%d", port);
    netx_addr addr;
    assert_int_equal(netx_addr_parse(text, &addr), 0);
    p->fd = netx_socket(AF_INET, SOCK_STREAM);
    assert_true(p->fd >= 0);
    p->used = 1;
    if (rcvbuf > 0) {
        assert_int_equal(setsockopt(p->fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf), 0);
    }
    if (netx_connect(p->fd, &addr, IO_MS) != 0) {
        fail_msg("connect to %s: %s", text, netx_last_error());
    }
    assert_int_equal(netx_set_nonblocking(p->fd, 1), 0);
    p->in = grow(NULL, &p->in_cap, 4096);
    p->in[0] = '\0';
    return p;
}

static void peer_close(struct peer *p)
{
    if (p->fd >= 0) {
        assert_int_equal(netx_close(p->fd), 0);
    }
    free(p->in);
    free(p->out);
    memset(p, 0, sizeof *p);
    p->fd = -1;
}

/* Close with SO_LINGER {1, 0}: the connection ends with a reset (RST). */
static void peer_reset(struct peer *p)
{
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    assert_int_equal(setsockopt(p->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg), 0);
    peer_close(p);
}

/* A teardown that closes what a failed test left open, then checks the
 * descriptors as every test does. */
static int chat_teardown(void **state)
{
    for (int i = 0; i < MAX_PEERS; i++) {
        if (room[i].used) {
            peer_close(&room[i]);
        }
    }
    proc_abandon(&server);
    proc_abandon(&ann);
    proc_abandon(&bob);
    proc_abandon(&helper);
    return support_teardown(state);
}

#define TEST_CHAT(f) cmocka_unit_test_setup_teardown(f, support_setup, chat_teardown)

/* Queue bytes for p and send what goes now. */
static void peer_send(struct peer *p, const void *data, size_t len)
{
    p->out = grow(p->out, &p->out_cap, p->out_len + len);
    memcpy(p->out + p->out_len, data, len);
    p->out_len += len;
    peer_flush(p);
}

static void peer_say(struct peer *p, const char *text)
{
    peer_send(p, text, strlen(text));
}

/* text, with control bytes shown as \xNN, cut at 300 bytes: for messages. */
static const char *shown(const char *text, size_t len)
{
    static char buf[4][1300];
    static int next;
    next = (next + 1) % 4;
    static const char hex[] = "0123456789abcdef";
    char *o = buf[next];
    size_t k = 0;
    for (size_t i = 0; i < len && i < 300; i++) {
        unsigned char b = (unsigned char)text[i];
        if (b == '\n') {
            o[k++] = '\\';
            o[k++] = 'n';
        } else if (b < 0x20 || b >= 0x7f) {
            o[k++] = '\\';
            o[k++] = 'x';
            o[k++] = hex[b >> 4];
            o[k++] = hex[b & 15];
        } else {
            o[k++] = (char)b;
        }
    }
    if (len > 300) {
        memcpy(o + k, "...", 3);
        k += 3;
    }
    o[k] = '\0'; /* at most 300 * 4 + 4 bytes */
    return o;
}

/* The server's log so far, for a failure's message: what it printed, read
 * for a moment more (proc.c reads only while a test waits in proc_*()). */
static const char *server_log(void)
{
    if (server.pid > 0 && server.err >= 0) {
        proc_wait_output(&server, "\n\n(never printed)", 100);
    }
    return server.err_buf;
}

/* What p received and the test has not taken yet. */
static const char *unseen(const struct peer *p)
{
    return shown(p->in + p->seen, p->in_len - p->seen);
}

/*
 * The next bytes p receives are exactly text: nothing before it, nothing
 * else in its place. Waits (pumping everyone) for that many bytes.
 */
static void expect(struct peer *p, const char *text)
{
    size_t len = strlen(text);
    long long deadline = proc_now_ms() + WAIT_MS;
    while (p->in_len - p->seen < len && !p->eof && proc_now_ms() < deadline) {
        pump(proc_ms_until(deadline) < 50 ? proc_ms_until(deadline) : 50);
    }
    size_t have = p->in_len - p->seen;
    if (have < len || memcmp(p->in + p->seen, text, len) != 0) {
        fail_msg("%s: expected \"%s\", got \"%s\"%s; the server's log:\n%s", p->name,
                 shown(text, len), unseen(p), p->eof ? " and the end of the stream" : "",
                 server_log());
    }
    p->seen += len;
}

/* text arrives at p, after whatever else: skips to just after it. */
static void wait_for(struct peer *p, const char *text)
{
    long long deadline = proc_now_ms() + WAIT_MS;
    const char *at = strstr(p->in + p->seen, text);
    while (at == NULL && !p->eof && proc_now_ms() < deadline) {
        pump(50);
        at = strstr(p->in + p->seen, text);
    }
    if (at == NULL) {
        fail_msg("%s: \"%s\" never came; got \"%s\"%s; the server's log:\n%s", p->name,
                 shown(text, strlen(text)), unseen(p), p->eof ? " and the end of the stream" : "",
                 server_log());
    }
    p->seen = (size_t)(at - p->in) + strlen(text);
}

/* The server ends p's stream, and nothing came before the end that the
 * test has not taken. */
static void expect_end(struct peer *p)
{
    long long deadline = proc_now_ms() + WAIT_MS;
    while (!p->eof && proc_now_ms() < deadline) {
        pump(50);
    }
    if (!p->eof || p->in_len != p->seen) {
        fail_msg("%s: expected the end of the stream, got \"%s\"%s; the server's log:\n%s", p->name,
                 unseen(p), p->eof ? " first" : " and no end", server_log());
    }
}

/* p leaves with /quit: it is told goodbye, and the server closes first.
 * (A close of ours with bytes unread would reset the connection, and the
 * others would hear of an error instead of a leave.) */
static void peer_quit(struct peer *p)
{
    peer_say(p, "/quit\n");
    wait_for(p, "* bye\n");
    expect_end(p);
    peer_close(p);
}

/* p has received nothing more yet (call after a sync that proves it would
 * have). */
static void expect_nothing(struct peer *p)
{
    if (p->in_len != p->seen) {
        fail_msg("%s: unexpected \"%s\"", p->name, unseen(p));
    }
}

/* Take the next whole line p received (without its '\n') into line: 1, or
 * 0 when none has come yet. */
static int take_line(struct peer *p, char *line, size_t cap)
{
    const char *start = p->in + p->seen;
    const char *nl = memchr(start, '\n', p->in_len - p->seen);
    if (nl == NULL) {
        return 0;
    }
    size_t len = (size_t)(nl - start);
    if (len >= cap) {
        fail_msg("%s: a line of %zu bytes: \"%s\"", p->name, len, shown(start, len));
    }
    memcpy(line, start, len);
    line[len] = '\0';
    p->seen += len + 1;
    return 1;
}

/* A client that has joined: connected, and welcomed. The name it was given
 * is in ->name. */
static struct peer *peer_join(int port)
{
    struct peer *p = peer_connect(port, 0);
    snprintf(p->name, sizeof p->name, "a newcomer");
    long long deadline = proc_now_ms() + WAIT_MS;
    while (memchr(p->in, '\n', p->in_len) == NULL && !p->eof && proc_now_ms() < deadline) {
        pump(50);
    }
    char line[256];
    if (!take_line(p, line, sizeof line)) {
        fail_msg("no welcome: \"%s\"", unseen(p));
    }
    /* "* welcome, guest7. Commands: /nick NAME, /who, /quit" */
    size_t tail = strlen(welcome_tail) - 1; /* its '\n' is taken off */
    size_t len = strlen(line);
    if (strncmp(line, "* welcome, ", 11) != 0 || len <= 11 + tail ||
        strncmp(line + len - tail, welcome_tail, tail) != 0 || len - tail - 11 >= sizeof p->name) {
        fail_msg("not a welcome: \"%s\"", shown(line, len));
    }
    snprintf(p->name, sizeof p->name, "%.*s", (int)(len - tail - 11), line + 11);
    return p;
}

/* p takes name with /nick; it is told so, and each of the others, who must
 * have nothing else pending, is told the new name. NULL ends others. */
static void rename_peer(struct peer *p, const char *name, struct peer *const others[])
{
    char text[128];
    snprintf(text, sizeof text, "/nick %s\n", name);
    peer_say(p, text);
    snprintf(text, sizeof text, "* you are now %s\n", name);
    expect(p, text);
    snprintf(text, sizeof text, "* %s is now known as %s\n", p->name, name);
    for (int i = 0; others != NULL && others[i] != NULL; i++) {
        expect(others[i], text);
    }
    snprintf(p->name, sizeof p->name, "%s", name);
}

/*
 * Two newcomers join and chat, a line each way, within 4 s in all: the
 * server is usable. `watchers` (NULL-terminated, or NULL) see them join,
 * talk and leave. Both leave again.
 */
static void assert_pair_chats(int port, struct peer *const watchers[])
{
    char text[160];
    long long start = proc_now_ms();
    struct peer *a = peer_join(port);
    snprintf(text, sizeof text, "* %s joined\n", a->name);
    for (int i = 0; watchers != NULL && watchers[i] != NULL; i++) {
        expect(watchers[i], text);
    }
    struct peer *b = peer_join(port);
    snprintf(text, sizeof text, "* %s joined\n", b->name);
    expect(a, text);
    for (int i = 0; watchers != NULL && watchers[i] != NULL; i++) {
        expect(watchers[i], text);
    }
    peer_say(a, "ping\n");
    snprintf(text, sizeof text, "%s: ping\n", a->name);
    expect(b, text);
    peer_say(b, "pong\n");
    snprintf(text, sizeof text, "%s: pong\n", b->name);
    expect(a, text);
    for (int i = 0; watchers != NULL && watchers[i] != NULL; i++) {
        snprintf(text, sizeof text, "%s: ping\n", a->name);
        expect(watchers[i], text);
        snprintf(text, sizeof text, "%s: pong\n", b->name);
        expect(watchers[i], text);
    }
    long long took = proc_now_ms() - start;
    if (took > 4000) {
        fail_msg("two newcomers took %lld ms to join and exchange a line each way", took);
    }
    char left[2][64];
    snprintf(left[0], sizeof left[0], "* %s left\n", a->name);
    snprintf(left[1], sizeof left[1], "* %s left\n", b->name);
    peer_quit(a);
    expect(b, left[0]);
    peer_quit(b);
    for (int i = 0; watchers != NULL && watchers[i] != NULL; i++) {
        expect(watchers[i], left[0]);
        expect(watchers[i], left[1]);
    }
}

/* ------------------------------------------------------------------------
 * Fifty clients, a hundred lines each
 * ------------------------------------------------------------------------ */

#define CROWD 50
#define LINES 100

/* Client i's line k: its padding differs from line to line, so a line cut
 * or glued to another shows. */
static int crowd_line(char *buf, size_t cap, int i, int k)
{
    return snprintf(buf, cap, "line %03d of c%02d %.*s", k, i, (i * 7 + k * 3) % 41,
                    "=========================================");
}

/* 1 if line is "* NAME" then tail, NAME one word; NAME into name. */
static int notice_about(const char *line, const char *tail, char *name, size_t cap)
{
    size_t len = strlen(line);
    size_t tail_len = strlen(tail);
    if (strncmp(line, "* ", 2) != 0 || len <= 2 + tail_len ||
        strcmp(line + len - tail_len, tail) != 0) {
        return 0;
    }
    size_t n = len - 2 - tail_len;
    if (n >= cap || memchr(line + 2, ' ', n) != NULL) {
        return 0;
    }
    memcpy(name, line + 2, n);
    name[n] = '\0';
    return 1;
}

/* The index of the guest called name, or -1. */
static int guest_index(char guest[][32], const char *name)
{
    for (int i = 0; i < CROWD; i++) {
        if (strcmp(guest[i], name) == 0) {
            return i;
        }
    }
    return -1;
}

/* The index of the crowd member called name ("c07"), or -1. */
static int crowd_index(const char *name)
{
    char *end = NULL;
    if (name[0] != 'c' || strlen(name) != 3) {
        return -1;
    }
    long i = strtol(name + 1, &end, 10);
    return *end == '\0' && i >= 0 && i < CROWD ? (int)i : -1;
}

static void chat_fifty_clients_every_line_once_in_order(void **state)
{
    (void)state;
    /* A roomy cap: this case is about delivery, and under valgrind this
     * process may read slowly. */
    static const char *const opts[] = {"-n", "100", "-b", "4194304", NULL};
    int port = start_server(opts);
    int baseline = proc_fd_count(server.pid);

    /* They join one after the other, so each sees the later ones join. */
    struct peer *crowd[CROWD];
    char guest[CROWD][32];
    for (int i = 0; i < CROWD; i++) {
        crowd[i] = peer_join(port);
        snprintf(guest[i], sizeof guest[i], "%s", crowd[i]->name);
    }
    assert_server_fds(baseline + CROWD, 5000, "with 50 clients");

    /* Each renames itself, and sends its 100 lines at once: the server
     * gets many lines in one read. */
    for (int i = 0; i < CROWD; i++) {
        char text[128];
        snprintf(text, sizeof text, "/nick c%02d\n", i);
        peer_say(crowd[i], text);
        for (int k = 0; k < LINES; k++) {
            int n = crowd_line(text, sizeof text - 1, i, k);
            text[n] = '\n';
            peer_send(crowd[i], text, (size_t)n + 1);
        }
    }

    /* What each one has had from each other one. */
    static int joins[CROWD]; /* next newcomer it must see join */
    static int renamed[CROWD][CROWD];
    static int got[CROWD][CROWD]; /* lines */
    static int self_renamed[CROWD];
    memset(renamed, 0, sizeof renamed);
    memset(got, 0, sizeof got);
    memset(self_renamed, 0, sizeof self_renamed);
    for (int j = 0; j < CROWD; j++) {
        joins[j] = j + 1;
    }
    long total = 0;
    const long want = (long)CROWD * (CROWD - 1) * LINES;
    long long deadline = proc_now_ms() + 60000;
    while (total < want && proc_now_ms() < deadline) {
        pump(100);
        for (int j = 0; j < CROWD; j++) {
            struct peer *p = crowd[j];
            char line[256];
            while (take_line(p, line, sizeof line)) {
                char name[64];
                if (notice_about(line, " joined", name, sizeof name)) {
                    /* Only later ones, in the order they came. */
                    if (joins[j] >= CROWD || strcmp(name, guest[joins[j]]) != 0) {
                        fail_msg("c%02d: \"%s\" out of order", j, line);
                    }
                    joins[j]++;
                } else if (strncmp(line, "* you are now ", 14) == 0) {
                    char mine[16];
                    snprintf(mine, sizeof mine, "c%02d", j);
                    if (strcmp(line + 14, mine) != 0 || self_renamed[j]++) {
                        fail_msg("c%02d: \"%s\"", j, line);
                    }
                } else if (strncmp(line, "* ", 2) == 0) {
                    /* "* guest7 is now known as c06": once, after its join,
                     * before its lines. */
                    char old[64];
                    char now[64];
                    if (sscanf(line, "* %63s is now known as %63s", old, now) != 2) {
                        fail_msg("c%02d: unexpected \"%s\"", j, line);
                    }
                    int i = guest_index(guest, old);
                    char theirs[16];
                    snprintf(theirs, sizeof theirs, "c%02d", i);
                    if (i < 0 || i == j || strcmp(now, theirs) != 0 || renamed[j][i] ||
                        (i > j && joins[j] <= i)) {
                        fail_msg("c%02d: \"%s\" unexpected here", j, line);
                    }
                    renamed[j][i] = 1;
                } else {
                    /* "c06: line 042 of c06 ====": the next of c06's lines. */
                    const char *colon = strstr(line, ": ");
                    if (colon == NULL || (size_t)(colon - line) >= sizeof name) {
                        fail_msg("c%02d: unexpected \"%s\"", j, line);
                    }
                    snprintf(name, sizeof name, "%.*s", (int)(colon - line), line);
                    int i = crowd_index(name);
                    if (i < 0) {
                        fail_msg("c%02d: \"%s\" from %s%s", j, line, name,
                                 guest_index(guest, name) >= 0 ? ", still under its guest name"
                                                               : "");
                    }
                    if (i == j) {
                        fail_msg("c%02d: its own line came back: \"%s\"", j, line);
                    }
                    if (!renamed[j][i]) {
                        fail_msg("c%02d: \"%s\" before the notice of its sender's name", j, line);
                    }
                    int k = got[j][i];
                    char expected[128];
                    crowd_line(expected, sizeof expected, i, k);
                    if (k >= LINES || strcmp(colon + 2, expected) != 0) {
                        fail_msg("c%02d: from c%02d, expected \"%s\" (line %d), got \"%s\"", j, i,
                                 k < LINES ? expected : "nothing more", k, colon + 2);
                    }
                    got[j][i]++;
                    total++;
                }
            }
            if (p->eof) {
                fail_msg("c%02d: the server closed its connection", j);
            }
        }
    }
    if (total < want) {
        fail_msg("after 60 s, %ld of %ld lines had arrived; c00 has %d lines of c01, %d of c49",
                 total, want, got[0][1], got[0][CROWD - 1]);
    }
    for (int j = 0; j < CROWD; j++) {
        if (joins[j] != CROWD || !self_renamed[j]) {
            fail_msg("c%02d: saw %d of %d joins, %s", j, joins[j] - j - 1, CROWD - j - 1,
                     self_renamed[j] ? "and its own rename" : "not its own rename");
        }
        for (int i = 0; i < CROWD; i++) {
            assert_int_equal(renamed[j][i], i != j);
        }
    }

    /* Nothing more is on its way: /who goes through each one's queue
     * behind anything else for it, and is then all it gets. */
    char who[1024];
    int len = snprintf(who, sizeof who, "* %d here:", CROWD);
    for (int i = 0; i < CROWD; i++) {
        len += snprintf(who + len, sizeof who - (size_t)len, " c%02d", i);
    }
    snprintf(who + len, sizeof who - (size_t)len, "\n");
    for (int j = 0; j < CROWD; j++) {
        peer_say(crowd[j], "/who\n");
    }
    for (int j = 0; j < CROWD; j++) {
        expect(crowd[j], who);
    }
    for (int j = 0; j < CROWD; j++) {
        peer_close(crowd[j]);
    }
    assert_server_fds(baseline, 5000, "after the 50 clients left");
    stop_server();
}

/* ------------------------------------------------------------------------
 * A client that never reads
 * ------------------------------------------------------------------------ */

#define WINDOW 64 /* lines a talker may have on their way to the other */
#define PAD    200

struct talker {
    struct peer *p;
    struct talker *other;
    unsigned long sent; /* lines sent */
    unsigned long got;  /* lines received from the other */
    int saw_cut;        /* saw the notice that the slow one was cut off */
    long long worst_ms; /* longest a line took to reach it, before that */
};

static void talker_send(struct talker *t, long long t0)
{
    while (t->sent - t->other->got < WINDOW) {
        char line[PAD + 64];
        int n = snprintf(line, 64, "%06lu %lld ", t->sent, proc_now_ms() - t0);
        assert_true(n > 0 && n < 64);
        memset(line + n, '.', PAD);
        line[n + PAD] = '\n';
        peer_send(t->p, line, (size_t)n + PAD + 1);
        t->sent++;
    }
}

/* Take t's lines: the other's, in order, once each, with their delay; the
 * notice about the slow one. Anything else fails. */
static void talker_receive(struct talker *t, long long t0, const char *cut)
{
    char line[PAD + 128];
    char prefix[40];
    int plen = snprintf(prefix, sizeof prefix, "%s: ", t->other->p->name);
    while (take_line(t->p, line, sizeof line)) {
        if (strcmp(line, cut) == 0 && !t->saw_cut) {
            t->saw_cut = 1;
            continue;
        }
        unsigned long seq = 0;
        long long stamp = 0;
        if (strncmp(line, prefix, (size_t)plen) != 0 ||
            sscanf(line + plen, "%lu %lld", &seq, &stamp) != 2 || seq != t->got) {
            fail_msg("%s: expected line %lu of %s, got \"%s\"", t->p->name, t->got,
                     t->other->p->name, shown(line, strlen(line)));
        }
        t->got++;
        long long delay = proc_now_ms() - t0 - stamp;
        if (!t->saw_cut && delay > t->worst_ms) {
            t->worst_ms = delay;
        }
    }
    if (t->p->eof) {
        fail_msg("%s was disconnected", t->p->name);
    }
}

static void chat_slow_reader_cut_off_others_not_delayed(void **state)
{
    (void)state;
    static const char *const opts[] = {"-b", "4096", NULL};
    int port = start_server(opts);
    int baseline = proc_fd_count(server.pid);

    struct peer *a = peer_join(port);
    struct peer *b = peer_join(port);
    expect(a, "* guest2 joined\n");
    /* The slow one: a small receive buffer, and the test never reads it. */
    struct peer *slow = peer_connect(port, 4096);
    slow->deaf = 1;
    expect(a, "* guest3 joined\n");
    expect(b, "* guest3 joined\n");
    peer_say(slow, "/nick slow\n");
    expect(a, "* guest3 is now known as slow\n");
    expect(b, "* guest3 is now known as slow\n");
    rename_peer(a, "ann", (struct peer *const[]){b, NULL});
    rename_peer(b, "bob", (struct peer *const[]){a, NULL});

    /* Ann and Bob talk as fast as the other reads, each with WINDOW lines
     * on their way at most, until both are told the slow one is gone. */
    struct talker ta = {.p = a};
    struct talker tb = {.p = b};
    ta.other = &tb;
    tb.other = &ta;
    const char *cut = "* slow was disconnected (too slow)";
    long long t0 = proc_now_ms();
    long long deadline = t0 + 30000;
    while (!(ta.saw_cut && tb.saw_cut) && proc_now_ms() < deadline && ta.sent + tb.sent < 1000000) {
        talker_send(&ta, t0);
        talker_send(&tb, t0);
        pump(50);
        talker_receive(&ta, t0, cut);
        talker_receive(&tb, t0, cut);
    }
    if (!(ta.saw_cut && tb.saw_cut)) {
        fail_msg("after %lu lines of %d bytes in %lld ms, the slow client was not cut off; "
                 "stderr:\n%s",
                 ta.sent + tb.sent, PAD + 16, proc_now_ms() - t0, server.err_buf);
    }
    /* The server says why, naming it and its address. */
    assert_server_said("chat_server: disconnected slow (127.0.0.1:");
    assert_server_said("): it did not read: its output passed the cap (-b)\n");
    /* And its connection is closed on the server's side. */
    assert_server_fds(baseline + 2, 5000, "after the slow client was cut off");

    /* Before the cut, no line to Ann or Bob waited behind the slow one: a
     * generous bound, far above a line's trip, far below a stall. */
    long long worst = ta.worst_ms > tb.worst_ms ? ta.worst_ms : tb.worst_ms;
    if (worst > 2000) {
        fail_msg("while the slow client was connected, a line took %lld ms to arrive", worst);
    }

    /* Every line still in flight arrives, and they go on talking: a
     * window more each way. */
    for (int round = 0; round < 2; round++) {
        long long until = proc_now_ms() + WAIT_MS;
        while ((ta.got < tb.sent || tb.got < ta.sent) && proc_now_ms() < until) {
            pump(50);
            talker_receive(&ta, t0, cut);
            talker_receive(&tb, t0, cut);
        }
        assert_int_equal(ta.got, tb.sent);
        assert_int_equal(tb.got, ta.sent);
        if (round == 0) {
            talker_send(&ta, t0);
            talker_send(&tb, t0);
        }
    }
    peer_close(slow);
    peer_quit(a);
    expect(b, "* ann left\n");
    peer_close(b);
    assert_server_fds(baseline, 5000, "after everyone left");
    stop_server();
}

/* ------------------------------------------------------------------------
 * Names and commands
 * ------------------------------------------------------------------------ */

static void chat_nick_taken_refused_keeps_old_name(void **state)
{
    (void)state;
    int port = start_server(NULL);
    struct peer *a = peer_join(port);
    struct peer *b = peer_join(port);
    assert_string_equal(a->name, "guest1");
    assert_string_equal(b->name, "guest2");
    expect(a, "* guest2 joined\n");
    rename_peer(a, "ada", (struct peer *const[]){b, NULL});

    /* Taken, in any case: refused with a notice, to the asker alone. */
    peer_say(b, "/nick ada\n");
    expect(b, "* ada is taken\n");
    peer_say(b, "/nick ADA\n");
    expect(b, "* ADA is taken\n");
    /* It keeps its old name. */
    peer_say(b, "still guest2\n");
    expect(a, "guest2: still guest2\n");

    /* One's own name in another case is not taken from oneself. */
    rename_peer(a, "Ada", (struct peer *const[]){b, NULL});

    /* A freed name is free again. */
    peer_say(a, "/quit\n");
    expect(a, "* bye\n");
    expect_end(a);
    expect(b, "* Ada left\n");
    rename_peer(b, "ada", NULL);

    /* Guest numbers skip a name someone took. */
    rename_peer(b, "guest3", NULL);
    struct peer *c = peer_join(port);
    assert_string_equal(c->name, "guest4");
    expect(b, "* guest4 joined\n");
    expect_nothing(b);
    expect_nothing(c);
    peer_close(a);
    peer_close(b);
    peer_close(c);
    stop_server();
}

static void chat_nick_length_and_characters_checked(void **state)
{
    (void)state;
    int port = start_server(NULL);
    struct peer *a = peer_join(port);
    struct peer *b = peer_join(port);
    expect(a, "* guest2 joined\n");

    /* 20 bytes is the longest; letters, digits, '_' and '-'. */
    rename_peer(a, "abcdefghij0123456789", (struct peer *const[]){b, NULL});
    rename_peer(a, "Ok_name-2", (struct peer *const[]){b, NULL});

    static const char *const bad[] = {
        "/nick abcdefghij0123456789x\n", /* 21 bytes */
        "/nick \n",                      /* empty */
        "/nick two words\n",
        "/nick tab\there\n",
        "/nick bell\x07\n",
        "/nick esc\x1b[0m\n",
        "/nick del\x7f\n",
        "/nick nul\0x\n",
        "/nick caf\xc3\xa9\n", /* not ASCII */
        "/nick dot.ted\n",
        "/nick q?\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        /* strlen() would stop at the NUL of "nul\0x": find the '\n'. */
        size_t len = (size_t)((const char *)memchr(bad[i], '\n', 64) - bad[i]) + 1;
        peer_send(a, bad[i], len);
        expect(a, "* a name is 1 to 20 letters, digits, '_' or '-'\n");
    }
    /* "/nick" alone is not the command /nick NAME. */
    peer_say(a, "/nick\n");
    expect(a, "* unknown command /nick (try /nick NAME, /who, /quit)\n");
    /* A line ending in CRLF (nc -C, telnet) is a line like any other. */
    rename_peer(a, "crlf", NULL);
    peer_say(a, "/nick fine\r\n");
    expect(a, "* you are now fine\n");

    /* The other saw the two renames that worked, and nothing of the rest. */
    peer_say(a, "done\n");
    expect(b, "* Ok_name-2 is now known as crlf\n");
    expect(b, "* crlf is now known as fine\n");
    expect(b, "fine: done\n");
    expect_nothing(a);
    peer_close(a);
    peer_close(b);
    stop_server();
}

static void chat_who_quit_and_unknown_command(void **state)
{
    (void)state;
    int port = start_server(NULL);
    struct peer *a = peer_join(port);
    struct peer *b = peer_join(port);
    struct peer *c = peer_join(port);
    expect(a, "* guest2 joined\n* guest3 joined\n");
    expect(b, "* guest3 joined\n");
    rename_peer(a, "ada", (struct peer *const[]){b, c, NULL});
    rename_peer(b, "bob", (struct peer *const[]){a, c, NULL});

    /* /who: how many, and who, in the order they came. */
    peer_say(a, "/who\n");
    expect(a, "* 3 here: ada bob guest3\n");

    /* Unknown commands: a notice to the sender alone, the command cut at
     * 40 bytes; commands are case-sensitive. */
    peer_say(c, "/dance\n");
    expect(c, "* unknown command /dance (try /nick NAME, /who, /quit)\n");
    peer_say(c, "/WHO\n");
    expect(c, "* unknown command /WHO (try /nick NAME, /who, /quit)\n");
    peer_say(c, "/0123456789012345678901234567890123456789overflow\n");
    expect(c, "* unknown command /012345678901234567890123456789012345678 (try /nick NAME, "
              "/who, /quit)\n");

    /* /quit: a goodbye, then the end of the stream; the others are told. */
    peer_say(b, "/quit\n");
    expect(b, "* bye\n");
    expect_end(b);
    expect(a, "* bob left\n");
    expect(c, "* bob left\n");
    peer_say(c, "/who\n");
    expect(c, "* 2 here: ada guest3\n");

    /* Nobody else saw any of it. */
    peer_say(c, "sync\n");
    expect(a, "guest3: sync\n");
    expect_nothing(a);
    expect_nothing(c);
    peer_close(a);
    peer_close(b);
    peer_close(c);
    stop_server();
}

/* Control bytes, NUL included, become '?' (a tab stays): no client can
 * send escape sequences to the others' terminals, nor cut a line short. */
static void chat_control_bytes_become_question_marks(void **state)
{
    (void)state;
    int port = start_server(NULL);
    struct peer *a = peer_join(port);
    struct peer *b = peer_join(port);
    expect(a, "* guest2 joined\n");
    static const char line[] = "red \x1b[31mALERT\x1b[0m\tbell\x07 del\x7f nul\0after \xc3\xa9\r\n";
    peer_send(a, line, sizeof line - 1);
    expect(b, "guest1: red ?[31mALERT?[0m\tbell? del? nul?after \xc3\xa9\n");
    /* A line of nothing but CRLF says nothing; "\r" inside is a control
     * byte. */
    peer_say(a, "\r\n\r\nmid\rline\n");
    expect(b, "guest1: mid?line\n");
    expect_nothing(a);
    peer_close(a);
    peer_close(b);
    stop_server();
}

/* ------------------------------------------------------------------------
 * Over-long lines
 * ------------------------------------------------------------------------ */

static void chat_overlong_line_refused_sender_stays(void **state)
{
    (void)state;
    int port = start_server(NULL);
    struct peer *a = peer_join(port);
    struct peer *b = peer_join(port);
    expect(a, "* guest2 joined\n");
    static const char notice[] = "* that line was longer than 1024 bytes: not sent\n";
    static char big[65536 + 2];

    /* One byte too many. */
    memset(big, 'x', 1025);
    big[1025] = '\n';
    peer_send(a, big, 1026);
    expect(a, notice);

    /* The longest that goes: 1024 bytes and its '\n'. */
    memset(big, 'y', 1024);
    big[1024] = '\n';
    peer_send(a, big, 1025);
    char want[1100];
    snprintf(want, sizeof want, "guest1: %.*s\n", 1024, big);
    expect(b, want);

    /* The same with "\r\n" (nc -C, telnet): the '\r' is not the line's. */
    big[1024] = '\r';
    big[1025] = '\n';
    peer_send(a, big, 1026);
    expect(b, want);

    /* And one byte too many with "\r\n". */
    memset(big, 'v', 1025);
    big[1025] = '\r';
    big[1026] = '\n';
    peer_send(a, big, 1027);
    expect(a, notice);

    /* 64 KiB in one line, arriving in many pieces: one notice. */
    memset(big, 'z', 65536);
    big[65536] = '\n';
    peer_send(a, big, 65537);
    expect(a, notice);

    /* Half of a long line, a pause, the rest: still one line, refused. */
    memset(big, 'w', 1500);
    big[1500] = '\n';
    peer_send(a, big, 700);
    pump(100);
    peer_send(a, big + 700, 801);
    expect(a, notice);

    /* The sender is still here and can go on chatting; the other saw the
     * line that fitted, this, and no part of the others. */
    peer_say(a, "still here\n");
    expect(b, "guest1: still here\n");
    peer_say(b, "welcome back\n");
    expect(a, "guest2: welcome back\n");
    expect_nothing(a);
    expect_nothing(b);
    peer_close(a);
    peer_close(b);
    stop_server();
}

/* ------------------------------------------------------------------------
 * Other clients: nc and chat_client
 * ------------------------------------------------------------------------ */

/* Write text to p's standard input. SIGPIPE is held back for the write (a
 * program that has exited must fail the test, not kill it) and taken back
 * if it was raised; the mask is this thread's alone, so programs started
 * later do not inherit it. */
static void feed(struct proc *p, const char *text)
{
    sigset_t pipe_only;
    sigset_t old;
    sigemptyset(&pipe_only);
    sigaddset(&pipe_only, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_only, &old);
    size_t len = strlen(text);
    ssize_t n = write(p->in, text, len);
    int err = errno;
    sigset_t pending;
    sigpending(&pending);
    if (sigismember(&pending, SIGPIPE)) {
        int sig;
        sigwait(&pipe_only, &sig);
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (n != (ssize_t)len) {
        fail_msg("writing to pid %d: %s", (int)p->pid, n < 0 ? strerror(err) : "short write");
    }
}

/* p ends within WAIT_MS with exit status want. */
static void assert_exits(struct proc *p, const char *who, int want)
{
    int status = proc_finish(p, WAIT_MS);
    if (status != want) {
        fail_msg("%s exited %d, expected %d; stdout:\n%s\nstderr:\n%s", who, status, want,
                 p->out_buf, p->err_buf);
    }
}

/* text appears in p's output. */
static void proc_expect(struct proc *p, const char *who, const char *text)
{
    if (proc_wait_output(p, text, WAIT_MS) != 0) {
        fail_msg("%s never printed \"%s\"; stdout:\n%s\nstderr:\n%s", who,
                 shown(text, strlen(text)), p->out_buf, p->err_buf);
    }
}

static void chat_nc_clients_talk(void **state)
{
    (void)state;
    if (!proc_have("nc")) {
        fprintf(stderr, "skipped: nc is not installed (Debian: netcat-openbsd), so nc cannot be "
                        "tried as a chat client\n");
        skip();
    }
    /* -N (shut the connection down at the end of input) is
     * netcat-openbsd's. */
    const char *help[] = {"nc", "-h", NULL};
    proc_run(&helper, help, NULL, WAIT_MS);
    if (strstr(helper.err_buf, "-N") == NULL && strstr(helper.out_buf, "-N") == NULL) {
        fprintf(stderr, "skipped: this nc has no -N option (netcat-openbsd has)\n");
        skip();
    }
    char port[8];
    proc_port_text(start_server(NULL), port, sizeof port);
    const char *argv[] = {"nc", "-N", "127.0.0.1", port, NULL};
    assert_int_equal(proc_start(&ann, argv, NULL, 1), 0);
    proc_expect(&ann, "the first nc", "* welcome, guest1. Commands: /nick NAME, /who, /quit\n");
    assert_int_equal(proc_start(&bob, argv, NULL, 1), 0);
    proc_expect(&bob, "the second nc", "* welcome, guest2. Commands: /nick NAME, /who, /quit\n");
    proc_expect(&ann, "the first nc", "* guest2 joined\n");

    feed(&ann, "/nick ncA\nhello from A\n");
    proc_expect(&bob, "the second nc", "ncA: hello from A\n");
    feed(&bob, "/nick ncB\nhi A\n");
    proc_expect(&ann, "the first nc", "ncB: hi A\n");

    /* The end of A's input: nc shuts down its side, the server closes, nc
     * exits 0; B is told. */
    assert_exits(&ann, "the first nc", 0);
    proc_expect(&bob, "the second nc", "* ncA left\n");
    assert_exits(&bob, "the second nc", 0);

    /* Exactly what each saw: no line of its own came back. */
    assert_string_equal(ann.out_buf, "* welcome, guest1. Commands: /nick NAME, /who, /quit\n"
                                     "* guest2 joined\n"
                                     "* you are now ncA\n"
                                     "* guest2 is now known as ncB\n"
                                     "ncB: hi A\n");
    assert_string_equal(bob.out_buf, "* welcome, guest2. Commands: /nick NAME, /who, /quit\n"
                                     "* guest1 is now known as ncA\n"
                                     "ncA: hello from A\n"
                                     "* you are now ncB\n"
                                     "* ncA left\n");
    stop_server();
}

/* chat_client -n name on 127.0.0.1:port, its standard input a pipe. */
static void start_chat_client(struct proc *p, const char *port, const char *name)
{
    const char *argv[] = {
        proc_path("chat_client"), "-H", "127.0.0.1", "-p", port, "-n", name, NULL};
    assert_int_equal(proc_start(p, argv, NULL, 1), 0);
}

static void chat_client_two_talk_and_exit_at_end_of_input(void **state)
{
    (void)state;
    char port[8];
    proc_port_text(start_server(NULL), port, sizeof port);
    int baseline = proc_fd_count(server.pid);
    start_chat_client(&ann, port, "ann");
    proc_expect(&ann, "chat_client ann", "* you are now ann\n");
    start_chat_client(&bob, port, "bob");
    proc_expect(&bob, "chat_client bob", "* you are now bob\n");
    proc_expect(&ann, "chat_client ann", "* guest2 is now known as bob\n");

    feed(&ann, "hello bob\n");
    proc_expect(&bob, "chat_client bob", "ann: hello bob\n");
    feed(&bob, "hi ann\n");
    proc_expect(&ann, "chat_client ann", "bob: hi ann\n");

    /* Many lines at once, the last without its '\n', then the end of the
     * input: all of them arrive, in order, and ann exits 0 in silence. */
    char lines[200 * 16];
    char want[200 * 24];
    size_t n = 0;
    size_t w = 0;
    for (int i = 0; i < 200; i++) {
        n += (size_t)snprintf(lines + n, sizeof lines - n, i < 199 ? "line %d\n" : "line %d", i);
        w += (size_t)snprintf(want + w, sizeof want - w, "ann: line %d\n", i);
    }
    feed(&ann, lines);
    assert_exits(&ann, "chat_client ann", 0);
    assert_string_equal(ann.err_buf, "");
    assert_string_equal(ann.out_buf, "* welcome, guest1. Commands: /nick NAME, /who, /quit\n"
                                     "* you are now ann\n"
                                     "* guest2 joined\n"
                                     "* guest2 is now known as bob\n"
                                     "bob: hi ann\n");
    proc_expect(&bob, "chat_client bob", "* ann left\n");
    char bob_saw[200 * 24 + 256];
    snprintf(bob_saw, sizeof bob_saw,
             "* welcome, guest2. Commands: /nick NAME, /who, /quit\n"
             "* you are now bob\n"
             "ann: hello bob\n"
             "%s"
             "* ann left\n",
             want);
    assert_string_equal(bob.out_buf, bob_saw);

    proc_close_stdin(&bob);
    assert_exits(&bob, "chat_client bob", 0);
    assert_string_equal(bob.err_buf, "");
    assert_server_fds(baseline, 5000, "after both clients left");
    stop_server();
}

static void chat_client_server_stop_told_and_exits(void **state)
{
    (void)state;
    char port[8];
    proc_port_text(start_server(NULL), port, sizeof port);
    start_chat_client(&ann, port, "ann");
    proc_expect(&ann, "chat_client ann", "* you are now ann\n");
    start_chat_client(&bob, port, "bob");
    proc_expect(&bob, "chat_client bob", "* you are now bob\n");
    proc_expect(&ann, "chat_client ann", "* guest2 is now known as bob\n");

    /* The server stops: each client shows its notice, says the server
     * closed, and exits 0; so does the server. */
    assert_int_equal(kill(server.pid, SIGTERM), 0);
    proc_expect(&ann, "chat_client ann", "* the server is going away\n");
    proc_expect(&bob, "chat_client bob", "* the server is going away\n");
    /* Before their input is closed (proc_finish() does that, and a client
     * at the end of its input expects the server to close, so says
     * nothing). */
    proc_expect(&ann, "chat_client ann", "chat_client: the server closed the connection\n");
    proc_expect(&bob, "chat_client bob", "chat_client: the server closed the connection\n");
    assert_exits(&ann, "chat_client ann", 0);
    assert_exits(&bob, "chat_client bob", 0);
    assert_exits(&server, "chat_server", 0);
    assert_string_equal(ann.err_buf, "chat_client: the server closed the connection\n");
    assert_string_equal(bob.err_buf, "chat_client: the server closed the connection\n");
    assert_string_equal(bob.out_buf, "* welcome, guest2. Commands: /nick NAME, /who, /quit\n"
                                     "* you are now bob\n"
                                     "* the server is going away\n");
}

/* /quit typed, with the input still open: the server says bye and closes,
 * as asked, and the client exits 0 without calling the close a surprise. */
static void chat_client_quit_leaves_in_silence(void **state)
{
    (void)state;
    char port[8];
    proc_port_text(start_server(NULL), port, sizeof port);
    start_chat_client(&ann, port, "ann");
    proc_expect(&ann, "chat_client ann", "* you are now ann\n");
    feed(&ann, "/quit\n");
    proc_expect(&ann, "chat_client ann", "* bye\n");
    /* Until it exits, with its input still open: both its streams end. */
    assert_int_equal(proc_wait_output(&ann, "(never printed)", WAIT_MS), -1);
    assert_exits(&ann, "chat_client ann", 0);
    assert_string_equal(ann.err_buf, "");
    stop_server();
}

/* ------------------------------------------------------------------------
 * Hostile clients, and the time limits
 * ------------------------------------------------------------------------ */

/* Deterministic bytes, for garbage. */
static unsigned next_random(unsigned *state)
{
    *state = *state * 1103515245u + 12345u;
    return (*state >> 8) & 0xffffff;
}

/*
 * 4 KiB of garbage in lines of at most 200 bytes, NUL and other control
 * bytes, '\r' and bytes over 0x7f among them (never a '/' first, so no
 * line is a command), into buf; the lines the others must see for it, as
 * the server turns them (control bytes to '?', trailing '\r's off, empty
 * lines dropped), into want. Returns the garbage's length.
 */
static size_t make_garbage(unsigned seed, const char *name, char *buf, size_t cap, char *want,
                           size_t want_cap)
{
    static const unsigned char spice[] = {0, 0, 1, 7, 8, 9, 0x1b, 0x7f, '\r', 0x80, 0xff, 0xc3};
    size_t len = 0;
    size_t w = 0;
    while (len + 202 < cap && len < 4096) {
        size_t start = len;
        size_t n = next_random(&seed) % 200;
        for (size_t i = 0; i < n; i++) {
            unsigned r = next_random(&seed);
            unsigned char b = r % 3 == 0 ? spice[(r / 3) % sizeof spice] : (unsigned char)(r % 256);
            if (b == '\n' || (i == 0 && b == '/')) {
                b = 'x';
            }
            buf[len++] = (char)b;
        }
        buf[len++] = '\n';
        /* What the server makes of it. */
        size_t end = len - 1;
        while (end > start && buf[end - 1] == '\r') {
            end--;
        }
        if (end > start) {
            w += (size_t)snprintf(want + w, want_cap - w, "%s: ", name);
            for (size_t i = start; i < end; i++) {
                unsigned char b = (unsigned char)buf[i];
                want[w++] = (b < 0x20 && b != '\t') || b == 0x7f ? '?' : (char)b;
            }
            want[w++] = '\n';
            assert_true(w + 256 < want_cap);
        }
    }
    want[w] = '\0';
    return len;
}

static void chat_hostile_clients_server_recovers(void **state)
{
    (void)state;
    int port = start_server(NULL);
    int baseline = proc_fd_count(server.pid);
    struct peer *w = peer_join(port); /* watches everything */

    /* 200 connect and reset at once, often before the server has accepted
     * them. Then a marker joins: the listen queue is first in, first out,
     * so by its welcome the server has taken (or dropped) all 200. The
     * watcher sees each one the server took join and be disconnected, and
     * nothing else. */
    for (int i = 0; i < 200; i++) {
        peer_reset(peer_connect(port, 0));
    }
    struct peer *marker = peer_join(port);
    char text[160];
    char marker_joined[64];
    snprintf(marker_joined, sizeof marker_joined, "* %s joined", marker->name);
    static int joined[400];
    memset(joined, 0, sizeof joined);
    int n_joined = 0;
    int n_gone = 0;
    int marker_seen = 0;
    long long deadline = proc_now_ms() + WAIT_MS;
    while (!(marker_seen && n_gone == n_joined) && proc_now_ms() < deadline) {
        pump(50);
        while (take_line(w, text, sizeof text)) {
            int g;
            char tail[64];
            if (strcmp(text, marker_joined) == 0 && !marker_seen) {
                marker_seen = 1;
                continue;
            }
            if (sscanf(text, "* guest%d %63[^\n]", &g, tail) == 2 && g >= 2 && g < 400) {
                if (strcmp(tail, "joined") == 0 && joined[g] == 0 && !marker_seen) {
                    joined[g] = 1;
                    n_joined++;
                    continue;
                }
                if (strcmp(tail, "was disconnected (error)") == 0 && joined[g] == 1) {
                    joined[g] = 2;
                    n_gone++;
                    continue;
                }
            }
            fail_msg("the watcher: unexpected \"%s\"", text);
        }
    }
    if (!marker_seen || n_joined != n_gone || n_joined > 200) {
        fail_msg("the watcher saw %d of the 200 reset clients join and %d go%s", n_joined, n_gone,
                 marker_seen ? "" : ", and not the marker");
    }
    snprintf(text, sizeof text, "* %s left\n", marker->name);
    peer_quit(marker);
    expect(w, text);
    expect_nothing(w);
    assert_server_fds(baseline + 1, 5000, "after 200 connect-and-reset clients");
    assert_pair_chats(port, (struct peer *const[]){w, NULL});

    /* Binary garbage, NUL bytes and all, from 20 clients in turn: the
     * watcher sees each line, its control bytes made '?', and nothing
     * else. */
    static char junk[8192];
    static char want[16384];
    for (int i = 0; i < 20; i++) {
        struct peer *g = peer_join(port);
        snprintf(text, sizeof text, "* %s joined\n", g->name);
        expect(w, text);
        size_t len =
            make_garbage(1000u + (unsigned)i, g->name, junk, sizeof junk, want, sizeof want);
        peer_send(g, junk, len);
        snprintf(text, sizeof text, "* %s left\n", g->name);
        peer_close(g);
        expect(w, want);
        expect(w, text);
    }
    assert_server_fds(baseline + 1, 5000, "after 20 garbage clients");
    assert_pair_chats(port, (struct peer *const[]){w, NULL});

    /* Half a line, then a reset: the half line goes to nobody. */
    for (int i = 0; i < 10; i++) {
        struct peer *h = peer_join(port);
        snprintf(text, sizeof text, "* %s joined\n", h->name);
        expect(w, text);
        snprintf(text, sizeof text, "* %s was disconnected (error)\n", h->name);
        peer_say(h, "half a li");
        pump(i * 5); /* sometimes before the server has read it */
        peer_reset(h);
        expect(w, text);
    }
    expect_nothing(w);
    assert_server_fds(baseline + 1, 5000, "after 10 half lines and resets");
    assert_pair_chats(port, (struct peer *const[]){w, NULL});
    peer_close(w);
    assert_server_fds(baseline, 5000, "after everyone left");
    stop_server();
}

/* -t 1: a silent client is told why and disconnected; one that talks is
 * kept longer than that. */
static void chat_idle_timeout_disconnects_silent_client(void **state)
{
    (void)state;
    static const char *const opts[] = {"-t", "1", NULL};
    int port = start_server(opts);
    int baseline = proc_fd_count(server.pid);
    struct peer *quiet = peer_join(port);
    struct peer *chatty = peer_join(port);
    expect(quiet, "* guest2 joined\n");
    long long start = proc_now_ms();
    long long cut_at = -1;

    /* Chatty says a line every 300 ms, 8 times: it outlives -t. Meanwhile
     * see when the quiet one is cut off. */
    for (int i = 0; i < 8; i++) {
        long long next = start + 300 * (i + 1);
        while (proc_now_ms() < next) {
            pump(proc_ms_until(next) < 20 ? proc_ms_until(next) : 20);
            if (quiet->eof && cut_at < 0) {
                cut_at = proc_now_ms() - start;
            }
        }
        peer_say(chatty, "still here\n");
    }
    wait_for(quiet, "* you were silent too long: goodbye\n");
    expect_end(quiet);
    if (cut_at < 0) {
        cut_at = proc_now_ms() - start;
    }
    wait_for(chatty, "* guest1 was disconnected (silent too long)\n");
    assert_false(chatty->eof);
    assert_server_said("chat_server: disconnected guest1 (127.0.0.1:");
    assert_server_said("): silent too long (-t)\n");
    /* Not before its time; and not much later (generous, for ASan). */
    if (cut_at < 500 || cut_at > 5000) {
        fail_msg("with -t 1, the silent client was cut off after %lld ms", cut_at);
    }
    assert_server_fds(baseline + 1, 5000, "with the chatty client alone");
    peer_close(quiet);
    peer_close(chatty);
    assert_server_fds(baseline, 5000, "after both left");
    assert_pair_chats(port, NULL);
    assert_server_fds(baseline, 5000, "after the pair left");
    stop_server();
}

/* -d 2: a client connected that long is disconnected, however much it
 * talks. */
static void chat_deadline_disconnects_even_chatty_client(void **state)
{
    (void)state;
    static const char *const opts[] = {"-d", "2", NULL};
    int port = start_server(opts);
    int baseline = proc_fd_count(server.pid);
    struct peer *old = peer_join(port);
    long long start = proc_now_ms();
    /* The watcher comes a second later, so it is still there when the
     * first one's time is up. */
    while (proc_now_ms() < start + 1000) {
        pump(100);
        peer_say(old, "tick\n");
    }
    struct peer *w = peer_join(port);
    long long deadline = start + 8000;
    while (!old->eof && proc_now_ms() < deadline) {
        peer_say(old, "tick\n");
        pump(100);
    }
    wait_for(old, "* you were here too long: goodbye\n");
    expect_end(old);
    wait_for(w, "* guest1 was disconnected (here too long)\n");
    assert_server_said("chat_server: disconnected guest1 (127.0.0.1:");
    assert_server_said("): connected too long (-d)\n");
    peer_close(old);
    peer_close(w);
    assert_server_fds(baseline, 5000, "after both left");
    assert_pair_chats(port, NULL);
    assert_server_fds(baseline, 5000, "after the pair left");
    stop_server();
}

/* ------------------------------------------------------------------------
 * Stopping, and the cap on clients
 * ------------------------------------------------------------------------ */

static void chat_sigterm_everyone_told_then_end_of_stream(void **state)
{
    (void)state;
    static const char *const opts[] = {"-g", "5", NULL};
    int port = start_server(opts);
    struct peer *c[10];
    for (int i = 0; i < 10; i++) {
        c[i] = peer_join(port);
    }
    char text[64];
    snprintf(text, sizeof text, "* %s joined\n", c[9]->name);
    wait_for(c[0], text);
    long long t = proc_now_ms();
    assert_int_equal(kill(server.pid, SIGTERM), 0);
    for (int i = 0; i < 10; i++) {
        wait_for(c[i], "* the server is going away\n");
        expect_end(c[i]);
    }
    int status = proc_finish(&server, WAIT_MS);
    long long took = proc_now_ms() - t;
    assert_int_equal(status, 0);
    /* Everyone had it at once: no need to wait for the grace period. */
    if (took > 4000) {
        fail_msg("with every client reading, the stop took %lld ms (-g 5)", took);
    }
    assert_non_null(strstr(server.err_buf, "chat_server: stopping: 10 clients get what was "
                                           "said, for up to 5 s (signal again to stop now)\n"));
    for (int i = 0; i < 10; i++) {
        peer_close(c[i]);
    }
}

/* tcp_wmem's largest send buffer: what the kernel may hold for the server
 * on a socket before its own queue (-b) is used. */
static long max_send_buffer(void)
{
    FILE *f = fopen("/proc/sys/net/ipv4/tcp_wmem", "r");
    long lo = 0;
    long def = 0;
    long hi = 0;
    if (f != NULL) {
        if (fscanf(f, "%ld %ld %ld", &lo, &def, &hi) != 3) {
            hi = 0;
        }
        fclose(f);
    }
    return hi > 0 ? hi : 4 * 1024 * 1024;
}

/*
 * A client that never reads, with more waiting for it in the server than
 * its socket can hold, keeps the server draining after SIGTERM: to the end
 * of the grace period (grace "1"), or until a second signal (grace "60").
 * The other client is told, and sees the end of the stream, at once.
 */
static void check_stop_with_slow_reader(const char *grace, int second_signal)
{
    long push = max_send_buffer() + 2 * 1024 * 1024;
    char cap[32];
    snprintf(cap, sizeof cap, "%ld", push + 1024 * 1024);
    const char *const opts[] = {"-g", grace, "-b", cap, NULL};
    int port = start_server(opts);
    struct peer *talker = peer_join(port);
    struct peer *slow = peer_connect(port, 4096);
    slow->deaf = 1;
    expect(talker, "* guest2 joined\n");

    /* More than the kernel holds for the slow one; /who's answer says the
     * server has read it all. */
    static char line[1001];
    memset(line, 'm', 1000);
    line[1000] = '\n';
    for (long sent = 0; sent < push; sent += 1001) {
        peer_send(talker, line, sizeof line);
        if (talker->out_len - talker->out_off > 1024 * 1024) {
            pump(50);
        }
    }
    peer_say(talker, "/who\n");
    long long deadline = proc_now_ms() + 30000;
    while (strstr(talker->in + talker->seen, "* 2 here:") == NULL && proc_now_ms() < deadline) {
        pump(50);
    }
    wait_for(talker, "* 2 here: guest1 guest2\n");

    long long t = proc_now_ms();
    int status;
    if (second_signal) {
        status = proc_stop_now(&server, SIGTERM, WAIT_MS);
    } else {
        assert_int_equal(kill(server.pid, SIGTERM), 0);
        expect(talker, "* the server is going away\n");
        expect_end(talker);
        status = proc_finish(&server, WAIT_MS);
    }
    long long took = proc_now_ms() - t;
    if (status != 0) {
        fail_msg("chat_server exited %d; stderr:\n%s", status, server.err_buf);
    }
    assert_non_null(strstr(server.err_buf, "chat_server: stopping: 2 clients get what was said"));
    if (second_signal) {
        if (took > 3000) {
            fail_msg("after the second signal, chat_server took %lld ms to stop (-g 60)", took);
        }
    } else if (took < 800 || took > 6000) {
        fail_msg("with -g 1 and a client that never reads, chat_server exited %lld ms after "
                 "SIGTERM",
                 took);
    }
    peer_close(talker);
    peer_close(slow);
}

static void chat_grace_period_ends_for_client_that_never_reads(void **state)
{
    (void)state;
    check_stop_with_slow_reader("1", 0);
}

static void chat_second_signal_stops_at_once(void **state)
{
    (void)state;
    check_stop_with_slow_reader("60", 1);
}

static void chat_max_clients_extra_refused(void **state)
{
    (void)state;
    static const char *const opts[] = {"-n", "3", NULL};
    int port = start_server(opts);
    int baseline = proc_fd_count(server.pid);
    struct peer *a = peer_join(port);
    struct peer *b = peer_join(port);
    struct peer *c = peer_join(port);
    expect(a, "* guest2 joined\n* guest3 joined\n");
    expect(b, "* guest3 joined\n");

    /* The fourth is told the room is full, then the stream ends. */
    struct peer *d = peer_connect(port, 0);
    snprintf(d->name, sizeof d->name, "the fourth");
    expect(d, "* the room is full; try again later\n");
    expect_end(d);
    peer_close(d);
    assert_server_said("chat_server: refused a client: the room is full (-n 3)\n");
    assert_server_fds(baseline + 3, 5000, "with 3 clients and one refused");

    /* Nobody saw it come; when one leaves, a newcomer gets its place. */
    peer_say(b, "sync\n");
    expect(a, "guest2: sync\n");
    expect_nothing(a);
    peer_quit(c);
    expect(a, "* guest3 left\n");
    expect(b, "* guest3 left\n");
    assert_server_fds(baseline + 2, 5000, "after one left");
    struct peer *e = peer_join(port);
    assert_string_equal(e->name, "guest4");
    expect(a, "* guest4 joined\n");
    peer_close(a);
    peer_close(b);
    peer_close(e);
    stop_server();
}

/* ------------------------------------------------------------------------
 * Command lines
 * ------------------------------------------------------------------------ */

/*
 * name (-H 127.0.0.1 -p P first, so that a program that wrongly starts
 * anyway takes no fixed port) with a1 a2: exit 2, nothing on stdout, and
 * stderr "NAME: REASON\nusage: NAME ...": one line naming what was wrong,
 * then the usage.
 */
static void check_bad_usage(const char *name, const char *port, const char *a1, const char *a2,
                            const char *reason)
{
    const char *argv[] = {proc_path(name), "-H", "127.0.0.1", "-p", port, a1, a2, NULL};
    int status = proc_run(&helper, argv, NULL, WAIT_MS);
    char want[256];
    snprintf(want, sizeof want, "%s: %s\nusage: %s ", name, reason, name);
    if (status != 2 || strncmp(helper.err_buf, want, strlen(want)) != 0) {
        fail_msg("%s %s %s: exit %d, expected 2 and stderr starting:\n%s\ngot:\n%s", name, a1,
                 a2 != NULL ? a2 : "", status, want, helper.err_buf);
    }
    assert_string_equal(helper.out_buf, "");
}

static void chat_server_bad_usage_exits_two(void **state)
{
    (void)state;
    static const struct {
        const char *a1, *a2, *reason;
    } bad[] = {
        {"-n", "0", "-n \"0\": not a number from 1 to 100000"},
        {"-n", "100001", "-n \"100001\": not a number from 1 to 100000"},
        {"-n", "12x", "-n \"12x\": not a number from 1 to 100000"},
        {"-n", "", "-n \"\": not a number from 1 to 100000"},
        {"-b", "0", "-b \"0\": not a number from 1 to 1073741824"},
        {"-b", "1073741825", "-b \"1073741825\": not a number from 1 to 1073741824"},
        {"-b", "-1", "-b \"-1\": not a number from 1 to 1073741824"},
        {"-t", "86401", "-t \"86401\": not a number from 0 to 86400"},
        {"-t", " 5", "-t \" 5\": not a number from 0 to 86400"},
        {"-d", "86401", "-d \"86401\": not a number from 0 to 86400"},
        {"-d", "2s", "-d \"2s\": not a number from 0 to 86400"},
        {"-g", "3601", "-g \"3601\": not a number from 0 to 3600"},
        {"-g", "99999999999999999999999",
         "-g \"99999999999999999999999\": not a number from 0 "
         "to 3600"},
        {"-p", "70000", "port \"70000\": not a number from 0 to 65535: Invalid argument"},
        {"-p", "abc", "port \"abc\": not a number from 0 to 65535: Invalid argument"},
        {"-x", NULL, "unknown option -x"},
        {"-n", NULL, "option -n needs a value"},
        {"extra", NULL, "unexpected argument \"extra\""},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        check_bad_usage("chat_server", "0", bad[i].a1, bad[i].a2, bad[i].reason);
    }
}

static void chat_client_bad_usage_exits_two(void **state)
{
    (void)state;
#define NAME_RULE "-n: a name is one word (no spaces or control characters) of at most 64 bytes"
    static const struct {
        const char *a1, *a2, *reason;
    } bad[] = {
        {"-t", "0", "-t \"0\": not a number of seconds from 1 to 3600"},
        {"-t", "3601", "-t \"3601\": not a number of seconds from 1 to 3600"},
        {"-t", "1.5", "-t \"1.5\": not a number of seconds from 1 to 3600"},
        {"-n", "", NAME_RULE},
        {"-n", "a\nb", NAME_RULE},
        {"-n", "a b", NAME_RULE},
        {"-n", "a\tb", NAME_RULE},
        {"-n", "0123456789012345678901234567890123456789012345678901234567890123x", NAME_RULE},
        {"-p", "70000", "port \"70000\": not a number from 0 to 65535: Invalid argument"},
        {"-x", NULL, "unknown option -x"},
        {"-t", NULL, "option -t needs a value"},
        {"extra", NULL, "unexpected argument \"extra\""},
    };
    /* Port 1 on loopback: a client that wrongly starts is refused there. */
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        check_bad_usage("chat_client", "1", bad[i].a1, bad[i].a2, bad[i].reason);
    }
    check_bad_usage("chat_client", "0", NULL, NULL, "port 0: a client needs the server's port");
}

/*
 * -H as every server takes it: "-H HOST:PORT" is refused with a hint to use
 * -p, '' listens on every interface (IPv4 and IPv6), ::1 is an address.
 */
static void chat_server_host_empty_every_interface_port_hint(void **state)
{
    (void)state;
    proc_check_server_host(&helper, "chat_server", NULL, SOCK_STREAM);
}

static void chat_help_exits_zero(void **state)
{
    (void)state;
    static const char *const names[] = {"chat_server", "chat_client"};
    static const char *const flags[][5] = {
        {"-n MAX", "-b BYTES", "-t SECONDS", "-d SECONDS", "-g SECONDS"},
        {"-H HOST", "-p PORT", "-n NAME", "-t SECONDS", "-h"}};
    for (int i = 0; i < 2; i++) {
        const char *argv[] = {proc_path(names[i]), "-h", NULL};
        assert_int_equal(proc_run(&helper, argv, NULL, WAIT_MS), 0);
        char usage[64];
        snprintf(usage, sizeof usage, "usage: %s ", names[i]);
        assert_true(strncmp(helper.out_buf, usage, strlen(usage)) == 0);
        for (int f = 0; f < 5; f++) {
            assert_non_null(strstr(helper.out_buf, flags[i][f]));
        }
        assert_string_equal(helper.err_buf, "");
    }
}

int main(void)
{
    for (int i = 0; i < MAX_PEERS; i++) {
        room[i].fd = -1;
    }
    const struct CMUnitTest tests[] = {
        TEST_CHAT(chat_fifty_clients_every_line_once_in_order),
        TEST_CHAT(chat_slow_reader_cut_off_others_not_delayed),
        TEST_CHAT(chat_nick_taken_refused_keeps_old_name),
        TEST_CHAT(chat_nick_length_and_characters_checked),
        TEST_CHAT(chat_who_quit_and_unknown_command),
        TEST_CHAT(chat_control_bytes_become_question_marks),
        TEST_CHAT(chat_overlong_line_refused_sender_stays),
        TEST_CHAT(chat_nc_clients_talk),
        TEST_CHAT(chat_client_two_talk_and_exit_at_end_of_input),
        TEST_CHAT(chat_client_server_stop_told_and_exits),
        TEST_CHAT(chat_client_quit_leaves_in_silence),
        TEST_CHAT(chat_hostile_clients_server_recovers),
        TEST_CHAT(chat_idle_timeout_disconnects_silent_client),
        TEST_CHAT(chat_deadline_disconnects_even_chatty_client),
        TEST_CHAT(chat_sigterm_everyone_told_then_end_of_stream),
        TEST_CHAT(chat_grace_period_ends_for_client_that_never_reads),
        TEST_CHAT(chat_second_signal_stops_at_once),
        TEST_CHAT(chat_max_clients_extra_refused),
        TEST_CHAT(chat_server_bad_usage_exits_two),
        TEST_CHAT(chat_client_bad_usage_exits_two),
        TEST_CHAT(chat_server_host_empty_every_interface_port_hint),
        TEST_CHAT(chat_help_exits_zero),
    };
    return cmocka_run_group_tests_name("chat", tests, NULL, proc_kill_leftovers);
}
