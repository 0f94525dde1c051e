/*
 * test_reader.c - netx_reader over a real loopback TCP pair: bounded lines
 * (the cap - 1 limit, over-long lines and recovery after them, the
 * reader's own storage as a second limit), lines split over many receives
 * or packed into one, the last line without '\n', exact reads mixed with
 * lines, timeouts that lose nothing, argument checks, and two readers side
 * by side.
 *
 * To split input over many receives, a fault script makes every recvmsg()
 * on the reading descriptor return at most one byte.
 */
#include "support.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* A bound on every blocking call, so a bug fails a test instead of hanging
 * the binary. */
#define READER_GUARD_MS 5000

/* Bytes after the line buffer that must never be written. */
#define GUARD_LEN  8
#define GUARD_BYTE 0x5a

/* A pair where *w writes and *r is read through a reader. */
static void reader_pair(int *w, int *r)
{
    support_tcp_pair("127.0.0.1", w, r);
    assert_int_equal(netx_set_timeout(*w, READER_GUARD_MS), 0);
    assert_int_equal(netx_set_timeout(*r, READER_GUARD_MS), 0);
}

static void send_text(int fd, const char *text)
{
    assert_int_equal(netx_send_all(fd, text, strlen(text)), 0);
}

/* Make each of the next n receives on fd return at most one byte. */
static void one_byte_per_recv(int fd, size_t n)
{
    static struct fault_step steps[4096];
    assert_true(n <= sizeof steps / sizeof steps[0]);
    for (size_t i = 0; i < n; i++) {
        steps[i].kind = FAULT_SHORT;
        steps[i].arg = 1;
    }
    fault_script(FAULT_RECV, fd, steps, n);
}

/* Wait (bounded) until fd has something to read, so that what the test
 * sent is in the socket before the reader looks. */
static void wait_readable(int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLIN, .revents = 0};
    assert_int_equal(poll(&p, 1, READER_GUARD_MS), 1);
}

/* A line buffer of cap bytes followed by guard bytes. */
static char *guarded_line(char *area, size_t cap)
{
    memset(area, 'X', cap);
    memset(area + cap, GUARD_BYTE, GUARD_LEN);
    return area;
}

static void assert_guard_intact(const char *area, size_t cap)
{
    for (size_t i = 0; i < GUARD_LEN; i++) {
        assert_int_equal((unsigned char)area[cap + i], GUARD_BYTE);
    }
}

/* ------------------------------------------------------------------------ */

static void reader_line_of_cap_minus_1_fits(void **state)
{
    (void)state;
    int w, r;
    netx_reader rd;
    unsigned char storage[256];
    char area[16 + GUARD_LEN];
    reader_pair(&w, &r);
    assert_int_equal(netx_reader_init(&rd, r, storage, sizeof storage), 0);

    /* 14 letters and '\n': cap - 1 bytes, the longest line cap 16 takes. */
    send_text(w, "abcdefghijklmn\n");
    char *line = guarded_line(area, 16);
    assert_int_equal(netx_read_line(&rd, line, 16), 15);
    assert_string_equal(line, "abcdefghijklmn\n");
    assert_guard_intact(area, 16);
    netx_close(w);
    netx_close(r);
}

static void reader_line_of_cap_minus_1_fits_bytewise(void **state)
{
    (void)state;
    int w, r;
    netx_reader rd;
    unsigned char storage[256];
    char area[16 + GUARD_LEN];
    reader_pair(&w, &r);
    assert_int_equal(netx_reader_init(&rd, r, storage, sizeof storage), 0);

    /* Arriving a byte at a time, the line reaches cap - 1 bytes only with
     * its '\n': the reader must not give up one byte early. */
    one_byte_per_recv(r, 15);
    send_text(w, "abcdefghijklmn\n");
    char *line = guarded_line(area, 16);
    assert_int_equal(netx_read_line(&rd, line, 16), 15);
    assert_string_equal(line, "abcdefghijklmn\n");
    assert_guard_intact(area, 16);
    assert_int_equal(fault_pending(FAULT_RECV), 0);
    netx_close(w);
    netx_close(r);
}

/* Lines of cap and cap + 1 bytes, then a short one, read with cap 16. */
static void overlong_lines_then_next(int bytewise)
{
    int w, r;
    netx_reader rd;
    unsigned char storage[256];
    char area[16 + GUARD_LEN];
    const char *text = "0123456789abcde\n"  /* 16 bytes: cap */
                       "0123456789abcdef\n" /* 17 bytes: cap + 1 */
                       "next\n";
    reader_pair(&w, &r);
    assert_int_equal(netx_reader_init(&rd, r, storage, sizeof storage), 0);
    if (bytewise) {
        one_byte_per_recv(r, strlen(text));
    }
    send_text(w, text);

    char *line = guarded_line(area, 16);
    assert_int_equal(netx_read_line(&rd, line, 16), -1);
    assert_int_equal(errno, EMSGSIZE);
    assert_string_equal(line, ""); /* nothing but an empty string */
    assert_guard_intact(area, 16);

    line = guarded_line(area, 16);
    assert_int_equal(netx_read_line(&rd, line, 16), -1);
    assert_int_equal(errno, EMSGSIZE);
    assert_string_equal(line, "");
    assert_guard_intact(area, 16);

    /* The reader is still usable: the following line comes out whole. */
    line = guarded_line(area, 16);
    assert_int_equal(netx_read_line(&rd, line, 16), 5);
    assert_string_equal(line, "next\n");
    assert_guard_intact(area, 16);
    netx_close(w);
    netx_close(r);
}

static void reader_line_of_cap_emsgsize_next_line_intact(void **state)
{
    (void)state;
    overlong_lines_then_next(0);
}

static void reader_line_of_cap_emsgsize_next_line_intact_bytewise(void **state)
{
    (void)state;
    overlong_lines_then_next(1);
}

static void reader_line_longer_than_storage_emsgsize(void **state)
{
    (void)state;
    int w, r;
    netx_reader rd;
    unsigned char storage[16];
    char line[64];
    reader_pair(&w, &r);
    assert_int_equal(netx_reader_init(&rd, r, storage, sizeof storage), 0);

    /* line has room for 63 bytes, the reader for only 16: the reader's
     * storage is the limit, and recovery still works. */
    send_text(w, "a line of forty bytes, past the storage\n"
                 "ok\n");
    assert_int_equal(netx_read_line(&rd, line, sizeof line), -1);
    assert_int_equal(errno, EMSGSIZE);
    assert_int_equal(netx_read_line(&rd, line, sizeof line), 3);
    assert_string_equal(line, "ok\n");
    netx_close(w);
    netx_close(r);
}

static void reader_line_of_storage_size_fits_after_shift(void **state)
{
    (void)state;
    int w, r;
    netx_reader rd;
    unsigned char storage[16];
    char line[64];
    reader_pair(&w, &r);
    assert_int_equal(netx_reader_init(&rd, r, storage, sizeof storage), 0);

    /* The first line leaves the start of the second at offset 3 of a full
     * storage; the reader must move it to the front to make room for a
     * line exactly as long as its storage. */
    send_text(w, "ab\n"
                 "fifteen chars..\n");
    wait_readable(r);
    assert_int_equal(netx_read_line(&rd, line, sizeof line), 3);
    assert_string_equal(line, "ab\n");
    assert_int_equal(netx_read_line(&rd, line, sizeof line), 16);
    assert_string_equal(line, "fifteen chars..\n");
    netx_close(w);
    netx_close(r);
}

static void reader_line_split_across_recvs_assembled(void **state)
{
    (void)state;
    int w, r;
    netx_reader rd;
    unsigned char storage[128];
    char line[128];
    const char *text = "one line, delivered a byte at a time\n";
    reader_pair(&w, &r);
    assert_int_equal(netx_reader_init(&rd, r, storage, sizeof storage), 0);

    one_byte_per_recv(r, strlen(text));
    send_text(w, text);
    assert_int_equal(netx_read_line(&rd, line, sizeof line), (ssize_t)strlen(text));
    assert_string_equal(line, text);
    /* Every scripted one-byte receive was used: the line really came in
     * pieces. */
    assert_int_equal(fault_pending(FAULT_RECV), 0);
    assert_true(fault_count(FAULT_RECV) >= strlen(text));
    netx_close(w);
    netx_close(r);
}

static void reader_several_lines_in_one_recv_returned_one_by_one(void **state)
{
    (void)state;
    int w, r;
    netx_reader rd;
    unsigned char storage[128];
    char line[64];
    reader_pair(&w, &r);
    assert_int_equal(netx_reader_init(&rd, r, storage, sizeof storage), 0);

    send_text(w, "one\ntwo\nthree\n");
    wait_readable(r);
    fault_reset(); /* count the receives of the reads below only */
    assert_int_equal(netx_read_line(&rd, line, sizeof line), 4);
    assert_string_equal(line, "one\n");
    assert_int_equal(netx_read_line(&rd, line, sizeof line), 4);
    assert_string_equal(line, "two\n");
    assert_int_equal(netx_read_line(&rd, line, sizeof line), 6);
    assert_string_equal(line, "three\n");
    /* One receive brought all three; the others came from the buffer. */
    assert_int_equal(fault_count(FAULT_RECV), 1);
    netx_close(w);
    netx_close(r);
}

static void reader_last_line_without_newline_then_0(void **state)
{
    (void)state;
    int w, r;
    netx_reader rd;
    unsigned char storage[128];
    char line[64];
    reader_pair(&w, &r);
    assert_int_equal(netx_reader_init(&rd, r, storage, sizeof storage), 0);

    send_text(w, "first\nlast");
    netx_close(w);
    assert_int_equal(netx_read_line(&rd, line, sizeof line), 6);
    assert_string_equal(line, "first\n");
    assert_int_equal(netx_read_line(&rd, line, sizeof line), 4);
    assert_string_equal(line, "last");
    assert_int_equal(netx_read_line(&rd, line, sizeof line), 0);
    assert_string_equal(line, "");
    /* End of stream stays end of stream. */
    assert_int_equal(netx_read_line(&rd, line, sizeof line), 0);
    netx_close(r);
}

static void reader_last_line_of_cap_minus_1_without_newline_returned(void **state)
{
    (void)state;
    int w, r;
    netx_reader rd;
    unsigned char storage[256];
    char area[16 + GUARD_LEN];
    reader_pair(&w, &r);
    assert_int_equal(netx_reader_init(&rd, r, storage, sizeof storage), 0);

    /* 15 bytes and then the end of the stream: a last line of cap - 1
     * bytes, which fits cap 16 with its NUL. */
    send_text(w, "abcdefghijklmno");
    netx_close(w);
    char *line = guarded_line(area, 16);
    assert_int_equal(netx_read_line(&rd, line, 16), 15);
    assert_string_equal(line, "abcdefghijklmno");
    assert_guard_intact(area, 16);
    assert_int_equal(netx_read_line(&rd, line, 16), 0);
    netx_close(r);
}

static void reader_last_line_of_storage_size_without_newline_returned(void **state)
{
    (void)state;
    int w, r;
    netx_reader rd;
    unsigned char storage[16];
    char line[64];
    reader_pair(&w, &r);
    assert_int_equal(netx_reader_init(&rd, r, storage, sizeof storage), 0);

    /* The storage fills up with the whole last line: only the end of the
     * stream that follows says that it fits. */
    send_text(w, "sixteen bytes..!");
    netx_close(w);
    assert_int_equal(netx_read_line(&rd, line, sizeof line), 16);
    assert_string_equal(line, "sixteen bytes..!");
    assert_int_equal(netx_read_line(&rd, line, sizeof line), 0);
    netx_close(r);
}

static void reader_line_one_past_storage_emsgsize_next_line_intact(void **state)
{
    (void)state;
    int w, r;
    netx_reader rd;
    unsigned char storage[16];
    char line[64];
    reader_pair(&w, &r);
    assert_int_equal(netx_reader_init(&rd, r, storage, sizeof storage), 0);

    /* 16 bytes fill the storage, and the 17th is the '\n' of a line one
     * byte too long: reported, and the line after it is untouched. */
    send_text(w, "0123456789abcdef\n"
                 "next\n");
    wait_readable(r);
    assert_int_equal(netx_read_line(&rd, line, sizeof line), -1);
    assert_int_equal(errno, EMSGSIZE);
    assert_int_equal(netx_read_line(&rd, line, sizeof line), 5);
    assert_string_equal(line, "next\n");
    netx_close(w);
    netx_close(r);
}

static void reader_full_storage_timeout_then_eof_returns_line(void **state)
{
    (void)state;
    int w, r;
    netx_reader rd;
    unsigned char storage[16];
    char line[64];
    reader_pair(&w, &r);
    assert_int_equal(netx_set_timeout(r, 100), 0);
    assert_int_equal(netx_reader_init(&rd, r, storage, sizeof storage), 0);

    /* While the reader waits to learn whether a storage-sized line ends,
     * the timeout expires: the sixteen bytes must stay buffered, and the
     * end of the stream then completes the line. */
    send_text(w, "sixteen bytes..!");
    assert_int_equal(netx_read_line(&rd, line, sizeof line), -1);
    assert_int_equal(errno, ETIMEDOUT);
    netx_close(w);
    assert_int_equal(netx_read_line(&rd, line, sizeof line), 16);
    assert_string_equal(line, "sixteen bytes..!");
    netx_close(r);
}

static void reader_read_n_mixed_with_lines(void **state)
{
    (void)state;
    int w, r;
    netx_reader rd;
    unsigned char storage[128];
    char line[64];
    char body[10];
    reader_pair(&w, &r);
    assert_int_equal(netx_reader_init(&rd, r, storage, sizeof storage), 0);

    /* One send, so the first read_line buffers the body and the trailer
     * too: read_n must take the body from the buffer, and the next
     * read_line must start right after it. */
    send_text(w, "LEN 10\n0123456789after\n");
    wait_readable(r);
    assert_int_equal(netx_read_line(&rd, line, sizeof line), 7);
    assert_string_equal(line, "LEN 10\n");
    assert_int_equal(netx_read_n(&rd, body, sizeof body), 10);
    assert_memory_equal(body, "0123456789", 10);
    assert_int_equal(netx_read_line(&rd, line, sizeof line), 6);
    assert_string_equal(line, "after\n");
    netx_close(w);
    netx_close(r);
}

static void reader_read_n_larger_than_storage_intact(void **state)
{
    (void)state;
    enum { BODY = 10000 };
    int w, r;
    netx_reader rd;
    unsigned char storage[64];
    char line[64];
    unsigned char *out = malloc(BODY);
    unsigned char *in = malloc(BODY);
    assert_non_null(out);
    assert_non_null(in);
    support_pattern(out, BODY, 7);
    memset(in, 0, BODY);
    reader_pair(&w, &r);
    assert_int_equal(netx_reader_init(&rd, r, storage, sizeof storage), 0);

    send_text(w, "HDR\n");
    assert_int_equal(netx_send_all(w, out, BODY), 0);
    send_text(w, "END\n");
    wait_readable(r);
    fault_reset();

    assert_int_equal(netx_read_line(&rd, line, sizeof line), 4);
    assert_string_equal(line, "HDR\n");
    assert_int_equal(netx_read_n(&rd, in, BODY), BODY);
    assert_memory_equal(in, out, BODY);
    assert_int_equal(netx_read_line(&rd, line, sizeof line), 4);
    assert_string_equal(line, "END\n");
    /* Through the 64-byte storage alone it would take over 150 receives;
     * reading straight into the caller's buffer takes a handful. */
    assert_true(fault_count(FAULT_RECV) < 50);

    netx_close(w);
    netx_close(r);
    free(out);
    free(in);
}

static void reader_read_n_at_eof_returns_fewer(void **state)
{
    (void)state;
    int w, r;
    netx_reader rd;
    unsigned char storage[64];
    char buf[20];
    reader_pair(&w, &r);
    assert_int_equal(netx_reader_init(&rd, r, storage, sizeof storage), 0);

    send_text(w, "ten bytes!");
    netx_close(w);
    assert_int_equal(netx_read_n(&rd, buf, sizeof buf), 10);
    assert_memory_equal(buf, "ten bytes!", 10);
    assert_int_equal(netx_read_n(&rd, buf, sizeof buf), 0);
    netx_close(r);
}

static void reader_read_n_after_overlong_line_continues(void **state)
{
    (void)state;
    int w, r;
    netx_reader rd;
    unsigned char storage[8];
    char line[64];
    char buf[5];
    reader_pair(&w, &r);
    assert_int_equal(netx_reader_init(&rd, r, storage, sizeof storage), 0);

    /* The storage takes 8 bytes, so the over-long line is reported after
     * "01234567" was consumed; read_n cancels the skip and reads on from
     * there. */
    send_text(w, "0123456789ABCDEF\n");
    wait_readable(r);
    assert_int_equal(netx_read_line(&rd, line, sizeof line), -1);
    assert_int_equal(errno, EMSGSIZE);
    assert_int_equal(netx_read_n(&rd, buf, sizeof buf), 5);
    assert_memory_equal(buf, "89ABC", 5);
    netx_close(w);
    netx_close(r);
}

static void reader_timeout_mid_line_loses_nothing(void **state)
{
    (void)state;
    int w, r;
    netx_reader rd;
    unsigned char storage[64];
    char line[64];
    reader_pair(&w, &r);
    assert_int_equal(netx_set_timeout(r, 100), 0);
    assert_int_equal(netx_reader_init(&rd, r, storage, sizeof storage), 0);

    send_text(w, "hello ");
    assert_int_equal(netx_read_line(&rd, line, sizeof line), -1);
    assert_int_equal(errno, ETIMEDOUT);
    send_text(w, "world\n");
    assert_int_equal(netx_read_line(&rd, line, sizeof line), 12);
    assert_string_equal(line, "hello world\n");
    netx_close(w);
    netx_close(r);
}

static void reader_init_bad_args_einval(void **state)
{
    (void)state;
    netx_reader rd;
    unsigned char storage[16];
    assert_int_equal(netx_reader_init(&rd, 0, storage, 0), -1);
    assert_int_equal(errno, EINVAL);
    assert_int_equal(netx_reader_init(&rd, 0, NULL, sizeof storage), -1);
    assert_int_equal(errno, EINVAL);
    assert_int_equal(netx_reader_init(NULL, 0, storage, sizeof storage), -1);
    assert_int_equal(errno, EINVAL);
}

static void reader_read_line_cap_below_2_einval(void **state)
{
    (void)state;
    int w, r;
    netx_reader rd;
    unsigned char storage[16];
    char line[4] = "abc";
    reader_pair(&w, &r);
    assert_int_equal(netx_reader_init(&rd, r, storage, sizeof storage), 0);
    /* A line is waiting, so only the check can make these fail. */
    send_text(w, "\n");
    assert_int_equal(netx_read_line(&rd, line, 1), -1);
    assert_int_equal(errno, EINVAL);
    assert_int_equal(netx_read_line(&rd, line, 0), -1);
    assert_int_equal(errno, EINVAL);
    /* Nothing was consumed: cap 2 gets the line. */
    assert_int_equal(netx_read_line(&rd, line, 2), 1);
    assert_string_equal(line, "\n");
    netx_close(w);
    netx_close(r);
}

static void reader_null_args_einval(void **state)
{
    (void)state;
    int w, r;
    netx_reader rd;
    unsigned char storage[16];
    char buf[16];
    reader_pair(&w, &r);
    assert_int_equal(netx_reader_init(&rd, r, storage, sizeof storage), 0);
    assert_int_equal(netx_read_line(NULL, buf, sizeof buf), -1);
    assert_int_equal(errno, EINVAL);
    assert_int_equal(netx_read_line(&rd, NULL, sizeof buf), -1);
    assert_int_equal(errno, EINVAL);
    assert_int_equal(netx_read_n(NULL, buf, sizeof buf), -1);
    assert_int_equal(errno, EINVAL);
    assert_int_equal(netx_read_n(&rd, NULL, 4), -1);
    assert_int_equal(errno, EINVAL);
    netx_close(w);
    netx_close(r);
}

static void reader_two_readers_do_not_interfere(void **state)
{
    (void)state;
    int wa, ra, wb, rb;
    netx_reader a, b;
    unsigned char sa[64], sb[64];
    char line[64];
    reader_pair(&wa, &ra);
    reader_pair(&wb, &rb);
    assert_int_equal(netx_reader_init(&a, ra, sa, sizeof sa), 0);
    assert_int_equal(netx_reader_init(&b, rb, sb, sizeof sb), 0);

    /* Each reader is left holding half a line while the other reads. */
    send_text(wa, "a1\na");
    send_text(wb, "b1\nb");
    assert_int_equal(netx_read_line(&a, line, sizeof line), 3);
    assert_string_equal(line, "a1\n");
    assert_int_equal(netx_read_line(&b, line, sizeof line), 3);
    assert_string_equal(line, "b1\n");
    send_text(wb, "2\n");
    send_text(wa, "2\n");
    assert_int_equal(netx_read_line(&b, line, sizeof line), 3);
    assert_string_equal(line, "b2\n");
    assert_int_equal(netx_read_line(&a, line, sizeof line), 3);
    assert_string_equal(line, "a2\n");

    netx_close(wa);
    netx_close(ra);
    netx_close(wb);
    netx_close(rb);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TEST(reader_line_of_cap_minus_1_fits),
        TEST(reader_line_of_cap_minus_1_fits_bytewise),
        TEST(reader_line_of_cap_emsgsize_next_line_intact),
        TEST(reader_line_of_cap_emsgsize_next_line_intact_bytewise),
        TEST(reader_line_longer_than_storage_emsgsize),
        TEST(reader_line_of_storage_size_fits_after_shift),
        TEST(reader_line_split_across_recvs_assembled),
        TEST(reader_several_lines_in_one_recv_returned_one_by_one),
        TEST(reader_last_line_without_newline_then_0),
        TEST(reader_last_line_of_cap_minus_1_without_newline_returned),
        TEST(reader_last_line_of_storage_size_without_newline_returned),
        TEST(reader_line_one_past_storage_emsgsize_next_line_intact),
        TEST(reader_full_storage_timeout_then_eof_returns_line),
        TEST(reader_read_n_mixed_with_lines),
        TEST(reader_read_n_larger_than_storage_intact),
        TEST(reader_read_n_at_eof_returns_fewer),
        TEST(reader_read_n_after_overlong_line_continues),
        TEST(reader_timeout_mid_line_loses_nothing),
        TEST(reader_init_bad_args_einval),
        TEST(reader_read_line_cap_below_2_einval),
        TEST(reader_null_args_einval),
        TEST(reader_two_readers_do_not_interfere),
    };
    return cmocka_run_group_tests_name("reader", tests, NULL, NULL);
}
