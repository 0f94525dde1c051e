/*
 * test_writer.c - netx_writer (the sending side of a connection in an event
 * loop), the reader in a loop (non-blocking reads keep a partial line,
 * netx_reader_buffered(), a reader whose storage moved) and
 * netx_accept_nonblocking(), over real loopback sockets.
 *
 * A peer that does not read is how the tests fill a socket: its receive
 * buffer and our send buffer fill up, and the next send takes nothing.
 */
#include "support.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define MIB (1024 * 1024)

/* A connected pair whose sending side (*c) is non-blocking. */
static void nonblocking_pair(int *c, int *s)
{
    support_tcp_pair("127.0.0.1", c, s);
    assert_int_equal(netx_set_nonblocking(*c, 1), 0);
}

/* Read exactly len bytes from fd (blocking, with a timeout) into buf. */
static void read_exactly(int fd, unsigned char *buf, size_t len)
{
    assert_int_equal(netx_set_timeout(fd, 5000), 0);
    assert_int_equal(netx_recv_all(fd, buf, len), (ssize_t)len);
}

/* ------------------------------------------------------------------------
 * netx_writer
 * ------------------------------------------------------------------------ */

static void writer_send_small_goes_at_once_nothing_kept(void **state)
{
    (void)state;
    int c, s;
    unsigned char got[5];
    netx_writer w;
    nonblocking_pair(&c, &s);
    assert_int_equal(netx_writer_init(&w, c, 1024), 0);
    errno = 4242;
    assert_int_equal(netx_writer_send(&w, "hello", 5), 0);
    assert_int_equal(errno, 4242); /* a success leaves errno alone */
    assert_int_equal(netx_writer_pending(&w), 0);
    assert_null(w.buf); /* nothing kept, nothing allocated */
    assert_int_equal(netx_writer_room(&w), 1024);
    read_exactly(s, got, 5);
    assert_memory_equal(got, "hello", 5);
    netx_writer_free(&w);
    netx_close(c);
    netx_close(s);
}

/*
 * The peer does not read: what the socket does not take is kept, in order,
 * and netx_writer_flush() sends it as the peer reads. Every byte arrives
 * once, in order, and the buffer is freed when all has gone.
 */
static void writer_full_socket_keeps_rest_flush_delivers_in_order(void **state)
{
    (void)state;
    int c, s;
    enum { LEN = 8 * MIB };
    unsigned char *data = malloc(LEN);
    unsigned char *got = malloc(LEN);
    assert_non_null(data);
    assert_non_null(got);
    support_pattern(data, LEN, 3);
    nonblocking_pair(&c, &s);
    netx_writer w;
    assert_int_equal(netx_writer_init(&w, c, LEN), 0);

    /* Four sends: the first fills the socket, the rest queue behind it. */
    for (int i = 0; i < 4; i++) {
        assert_int_equal(netx_writer_send(&w, data + (size_t)i * (LEN / 4), LEN / 4), 0);
    }
    assert_true(netx_writer_pending(&w) > 0);
    assert_true(netx_writer_pending(&w) < LEN);

    /* Read on the other side while flushing on this one, in turns. */
    size_t have = 0;
    assert_int_equal(netx_set_nonblocking(s, 1), 0);
    for (int turn = 0; turn < 100000 && have < LEN; turn++) {
        assert_int_equal(netx_writer_flush(&w), 0);
        ssize_t n = netx_recv(s, got + have, LEN - have);
        if (n > 0) {
            have += (size_t)n;
        } else {
            assert_int_equal(errno, EAGAIN);
            struct pollfd p = {.fd = s, .events = POLLIN, .revents = 0};
            poll(&p, 1, 10);
        }
    }
    assert_int_equal(have, LEN);
    assert_memory_equal(got, data, LEN);
    assert_int_equal(netx_writer_pending(&w), 0);
    assert_null(w.buf); /* freed once empty */
    netx_writer_free(&w);
    netx_close(c);
    netx_close(s);
    free(data);
    free(got);
}

/* Over the cap: refused whole (ENOBUFS), nothing sent or kept; what fits
 * the room still goes. */
static void writer_over_cap_enobufs_nothing_taken(void **state)
{
    (void)state;
    int c, s;
    static unsigned char big[4 * MIB];
    nonblocking_pair(&c, &s);
    netx_writer w;
    assert_int_equal(netx_writer_init(&w, c, 64 * 1024), 0);
    /* Fill the socket so everything else is kept. */
    for (int i = 0; i < 1000 && netx_send(c, big, sizeof big) > 0; i++) {
    }
    assert_int_equal(netx_writer_send(&w, big, 60 * 1024), 0);
    assert_int_equal(netx_writer_pending(&w), 60 * 1024);
    assert_int_equal(netx_writer_room(&w), 4 * 1024);
    assert_int_equal(netx_writer_send(&w, big, 4 * 1024 + 1), -1);
    assert_int_equal(errno, ENOBUFS);
    assert_non_null(strstr(netx_last_error(), "do not fit (61440 pending, cap 65536)"));
    assert_int_equal(netx_writer_pending(&w), 60 * 1024);
    assert_int_equal(netx_writer_send(&w, big, 4 * 1024), 0);
    assert_int_equal(netx_writer_room(&w), 0);
    netx_writer_free(&w);
    assert_int_equal(netx_writer_pending(&w), 0);
    netx_close(c);
    netx_close(s);
}

/* A peer that has gone: the send says so (EPIPE or ECONNRESET), no SIGPIPE
 * (the test binary would die of it). */
static void writer_peer_gone_epipe_no_sigpipe(void **state)
{
    (void)state;
    int c, s;
    nonblocking_pair(&c, &s);
    netx_writer w;
    assert_int_equal(netx_writer_init(&w, c, 1024), 0);
    netx_close(s);
    int rc = 0;
    for (int i = 0; i < 100 && rc == 0; i++) {
        rc = netx_writer_send(&w, "x", 1);
        if (rc == 0) {
            struct pollfd p = {.fd = c, .events = POLLIN, .revents = 0};
            poll(&p, 1, 10); /* let the peer's reset arrive */
        }
    }
    assert_int_equal(rc, -1);
    assert_true(errno == EPIPE || errno == ECONNRESET);
    netx_writer_free(&w);
    netx_close(c);
}

/* A blocking socket: the writer never waits on it either (MSG_DONTWAIT). */
static void writer_blocking_socket_never_waits(void **state)
{
    (void)state;
    int c, s;
    static unsigned char big[1 * MIB];
    support_tcp_pair("127.0.0.1", &c, &s); /* both blocking */
    netx_writer w;
    assert_int_equal(netx_writer_init(&w, c, 64 * MIB), 0);
    for (int i = 0; i < 32; i++) { /* 32 MiB, far more than the buffers */
        assert_int_equal(netx_writer_send(&w, big, sizeof big), 0);
    }
    assert_true(netx_writer_pending(&w) > 0);
    assert_int_equal(netx_writer_flush(&w), 0); /* full: not an error */
    netx_writer_free(&w);
    netx_close(c);
    netx_close(s);
}

static void writer_printf_formats_short_and_long(void **state)
{
    (void)state;
    int c, s;
    nonblocking_pair(&c, &s);
    netx_writer w;
    assert_int_equal(netx_writer_init(&w, c, 1 * MIB), 0);
    assert_int_equal(netx_writer_printf(&w, "%s %d\n", "line", 42), 0);
    char got[2048];
    read_exactly(s, (unsigned char *)got, 8);
    assert_memory_equal(got, "line 42\n", 8);
    /* Longer than the writer's stack buffer: formatted whole all the same. */
    char text[1200];
    memset(text, 'a', sizeof text - 1);
    text[sizeof text - 1] = '\0';
    assert_int_equal(netx_writer_printf(&w, "<%s>", text), 0);
    read_exactly(s, (unsigned char *)got, 1201);
    assert_int_equal(got[0], '<');
    assert_int_equal(got[1200], '>');
    assert_int_equal(got[600], 'a');
    netx_writer_free(&w);
    netx_close(c);
    netx_close(s);
}

static void writer_bad_arguments_einval(void **state)
{
    (void)state;
    netx_writer w;
    assert_int_equal(netx_writer_init(NULL, 3, 10), -1);
    assert_int_equal(errno, EINVAL);
    assert_int_equal(netx_writer_init(&w, 3, 0), -1);
    assert_int_equal(errno, EINVAL);
    assert_int_equal(netx_writer_init(&w, 3, 10), 0);
    assert_int_equal(netx_writer_send(&w, NULL, 1), -1);
    assert_int_equal(errno, EINVAL);
    assert_int_equal(netx_writer_send(&w, NULL, 0), 0); /* nothing to send */
    assert_int_equal(netx_writer_send(NULL, "x", 1), -1);
    assert_int_equal(netx_writer_flush(NULL), -1);
    assert_int_equal(netx_writer_printf(&w, NULL), -1);
    assert_int_equal(netx_writer_pending(NULL), 0);
    assert_int_equal(netx_writer_room(NULL), 0);
    netx_writer_free(NULL);
}

/* A sink that is not a socket: it takes at most `room` bytes, then says
 * EAGAIN, and remembers every byte it took and what it was offered. */
struct counting_sink {
    char got[64];
    size_t len;
    size_t room;
    const char *offered_first; /* what the last call started with */
};

static ssize_t sink_write(void *sink, const void *buf, size_t len)
{
    struct counting_sink *k = sink;
    k->offered_first = buf;
    if (k->room == 0) {
        errno = EAGAIN;
        return -1;
    }
    size_t n = len < k->room ? len : k->room;
    memcpy(k->got + k->len, buf, n);
    k->len += n;
    k->room -= n;
    return (ssize_t)n;
}

/* Through a sink, as over TLS: what it does not take is kept, and offered
 * again from its first byte, in order. */
static void writer_sink_keeps_rest_offers_it_again_in_order(void **state)
{
    (void)state;
    struct counting_sink k = {.len = 0, .room = 4};
    netx_writer w;
    assert_int_equal(netx_writer_init_sink(&w, 9, sink_write, &k, 64), 0);
    assert_int_equal(netx_writer_send(&w, "abcdefgh", 8), 0);
    assert_int_equal(k.len, 4);
    assert_int_equal(netx_writer_pending(&w), 4);
    assert_int_equal(netx_writer_send(&w, "ij", 2), 0); /* behind the rest */
    assert_int_equal(netx_writer_pending(&w), 6);
    assert_int_equal(netx_writer_flush(&w), 0); /* EAGAIN: kept, no error */
    assert_int_equal(k.offered_first[0], 'e');
    k.room = 64;
    assert_int_equal(netx_writer_flush(&w), 0);
    assert_int_equal(netx_writer_pending(&w), 0);
    assert_memory_equal(k.got, "abcdefghij", 10);
    assert_int_equal(netx_writer_init_sink(&w, 9, NULL, &k, 64), -1);
    assert_int_equal(errno, EINVAL);
}

/* ------------------------------------------------------------------------
 * The reader in an event loop
 * ------------------------------------------------------------------------ */

/* Non-blocking: a line that has not all arrived gives EAGAIN and is kept;
 * the rest completes it. */
static void reader_nonblocking_partial_line_eagain_kept(void **state)
{
    (void)state;
    int c, s;
    char storage[64];
    char line[64];
    netx_reader r;
    support_tcp_pair("127.0.0.1", &c, &s);
    assert_int_equal(netx_set_nonblocking(s, 1), 0);
    assert_int_equal(netx_reader_init(&r, s, storage, sizeof storage), 0);
    assert_int_equal(netx_send_all(c, "hel", 3), 0);
    struct pollfd p = {.fd = s, .events = POLLIN, .revents = 0};
    assert_int_equal(poll(&p, 1, 5000), 1);
    assert_int_equal(netx_read_line(&r, line, sizeof line), -1);
    assert_int_equal(errno, EAGAIN);
    assert_int_equal(netx_reader_buffered(&r), 3);
    assert_int_equal(netx_send_all(c, "lo\nnext\n", 8), 0);
    assert_int_equal(poll(&p, 1, 5000), 1);
    assert_int_equal(netx_read_line(&r, line, sizeof line), 6);
    assert_string_equal(line, "hello\n");
    /* "next\n" came in the same recv: it is buffered, and the socket is not
     * readable for it any more - which is why a loop must ask. */
    assert_int_equal(netx_reader_buffered(&r), 5);
    assert_int_equal(poll(&p, 1, 0), 0);
    assert_int_equal(netx_read_line(&r, line, sizeof line), 5);
    assert_string_equal(line, "next\n");
    assert_int_equal(netx_reader_buffered(&r), 0);
    assert_int_equal(netx_reader_buffered(NULL), 0);
    netx_close(c);
    netx_close(s);
}

/* A connection struct holding its reader and the reader's storage, moved
 * (as realloc moves an array of them): after netx_reader_rebase() the
 * reader goes on where it was. */
struct conn {
    netx_reader r;
    char storage[32];
};

static void reader_rebase_after_move_continues(void **state)
{
    (void)state;
    int c, s;
    char line[32];
    support_tcp_pair("127.0.0.1", &c, &s);
    assert_int_equal(netx_set_timeout(s, 5000), 0);
    struct conn *a = malloc(sizeof *a);
    assert_non_null(a);
    assert_int_equal(netx_reader_init(&a->r, s, a->storage, sizeof a->storage), 0);
    assert_int_equal(netx_send_all(c, "one\ntwo\n", 8), 0);
    assert_int_equal(netx_read_line(&a->r, line, sizeof line), 4);
    assert_int_equal(netx_reader_buffered(&a->r), 4); /* "two\n" waits */

    struct conn *b = malloc(sizeof *b);
    assert_non_null(b);
    memcpy(b, a, sizeof *a);
    memset(a, 0xee, sizeof *a); /* the old place is gone */
    free(a);
    assert_int_equal(netx_reader_rebase(&b->r, b->storage), 0);
    assert_int_equal(netx_read_line(&b->r, line, sizeof line), 4);
    assert_string_equal(line, "two\n");
    assert_int_equal(netx_reader_rebase(NULL, b->storage), -1);
    assert_int_equal(errno, EINVAL);
    free(b);
    netx_close(c);
    netx_close(s);
}

/* A source of bytes that is not a socket: a string, three bytes a call. */
struct text_source {
    const char *text;
    size_t at;
};

static ssize_t text_read(void *source, void *buf, size_t cap)
{
    struct text_source *t = source;
    size_t left = strlen(t->text) - t->at;
    size_t n = left < 3 ? left : 3;
    n = n < cap ? n : cap;
    memcpy(buf, t->text + t->at, n);
    t->at += n;
    return (ssize_t)n;
}

static void reader_init_source_reads_lines_from_it(void **state)
{
    (void)state;
    struct text_source t = {.text = "first line\nsecond\nlast", .at = 0};
    char storage[16];
    char line[16];
    netx_reader r;
    assert_int_equal(netx_reader_init_source(&r, 7, text_read, &t, storage, sizeof storage), 0);
    assert_int_equal(netx_read_line(&r, line, sizeof line), 11);
    assert_string_equal(line, "first line\n");
    assert_int_equal(netx_read_line(&r, line, sizeof line), 7);
    assert_string_equal(line, "second\n");
    assert_int_equal(netx_read_line(&r, line, sizeof line), 4);
    assert_string_equal(line, "last");
    assert_int_equal(netx_read_line(&r, line, sizeof line), 0);
    assert_int_equal(netx_reader_init_source(&r, 7, NULL, &t, storage, sizeof storage), -1);
    assert_int_equal(errno, EINVAL);
}

/* ------------------------------------------------------------------------
 * netx_accept_nonblocking
 * ------------------------------------------------------------------------ */

static void accept_nonblocking_new_socket_nonblocking_cloexec(void **state)
{
    (void)state;
    int lfd = netx_tcp_listen("127.0.0.1", 0, 0);
    assert_true(lfd >= 0);
    assert_int_equal(netx_set_nonblocking(lfd, 1), 0);
    /* Nobody yet: EAGAIN at once. */
    assert_int_equal(netx_accept_nonblocking(lfd, NULL), -1);
    assert_int_equal(errno, EAGAIN);
    int c = netx_tcp_connect("127.0.0.1", (uint16_t)netx_local_port(lfd), 5000);
    assert_true(c >= 0);
    struct pollfd p = {.fd = lfd, .events = POLLIN, .revents = 0};
    assert_int_equal(poll(&p, 1, 5000), 1);
    netx_addr peer;
    int s = netx_accept_nonblocking(lfd, &peer);
    assert_true(s >= 0);
    assert_true((fcntl(s, F_GETFL) & O_NONBLOCK) != 0);
    assert_true((fcntl(s, F_GETFD) & FD_CLOEXEC) != 0);
    assert_int_equal(netx_addr_port(&peer) > 0, 1);
    char byte;
    assert_int_equal(netx_recv(s, &byte, 1), -1); /* nothing yet: no wait */
    assert_int_equal(errno, EAGAIN);
    /* The plain accept still gives a blocking socket. */
    int c2 = netx_tcp_connect("127.0.0.1", (uint16_t)netx_local_port(lfd), 5000);
    assert_true(c2 >= 0);
    assert_int_equal(poll(&p, 1, 5000), 1);
    int s2 = netx_accept(lfd, NULL);
    assert_true(s2 >= 0);
    assert_int_equal(fcntl(s2, F_GETFL) & O_NONBLOCK, 0);
    netx_close(c);
    netx_close(s);
    netx_close(c2);
    netx_close(s2);
    netx_close(lfd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TEST(writer_send_small_goes_at_once_nothing_kept),
        TEST(writer_full_socket_keeps_rest_flush_delivers_in_order),
        TEST(writer_over_cap_enobufs_nothing_taken),
        TEST(writer_peer_gone_epipe_no_sigpipe),
        TEST(writer_blocking_socket_never_waits),
        TEST(writer_printf_formats_short_and_long),
        TEST(writer_bad_arguments_einval),
        TEST(writer_sink_keeps_rest_offers_it_again_in_order),
        TEST(reader_nonblocking_partial_line_eagain_kept),
        TEST(reader_rebase_after_move_continues),
        TEST(reader_init_source_reads_lines_from_it),
        TEST(accept_nonblocking_new_socket_nonblocking_cloexec),
    };
    return cmocka_run_group_tests_name("writer", tests, NULL, NULL);
}
