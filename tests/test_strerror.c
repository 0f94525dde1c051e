/*
 * test_strerror.c - the cause at the end of every sentence when the
 * library is compiled with _GNU_SOURCE, as it is when a user's CFLAGS say
 * -D_GNU_SOURCE.
 *
 * strerror_r() comes in two kinds: POSIX's returns an int, glibc's (what
 * _GNU_SOURCE declares) a char *. Code written for one kind and compiled
 * under the other still compiles, and then reads every answer wrong:
 * "error 111" instead of "Connection refused". src/error.c is where the
 * library calls strerror_r(), so that is the file to build this way.
 *
 * The other tests see error.c as the Makefile builds it, without
 * _GNU_SOURCE. This file defines _GNU_SOURCE before any header and then
 * compiles src/error.c into itself. The linker takes the library's own
 * error.o from libnetx.a only for a symbol still missing, and every symbol
 * it defines is here already: so the whole library in this one binary
 * records its errors through the copy built with _GNU_SOURCE. A rule in the
 * Makefile that built error.c a second way would do the same; including it
 * here needs no special case there, and the test runs wherever the others
 * do (make test, SANITIZE=1, under valgrind).
 */
#define _GNU_SOURCE

#include "error.c"

#include "support.h"

#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>

/* 1 if strerror_r() is glibc's here (a char *, not POSIX's int); without
 * it this file tests nothing new (other C libraries declare POSIX's
 * whatever the macros). */
static int have_gnu_strerror_r(void)
{
    char buf[8];
    /* (clang-format would split the associations of _Generic.) */
    /* clang-format off */
    return _Generic(strerror_r(0, buf, sizeof buf), int: 0, default: 1);
    /* clang-format on */
}

static void skip_unless_gnu_strerror_r(void)
{
    if (!have_gnu_strerror_r()) {
        fprintf(stderr, "skipped: strerror_r() is POSIX's even with _GNU_SOURCE here\n");
        skip();
    }
}

/* Fail unless sentence ends with ": " and the C library's text for err. */
static void assert_cause(const char *sentence, int err)
{
    char want[160];
    snprintf(want, sizeof want, ": %s", strerror(err));
    size_t len = strlen(sentence);
    size_t tail = strlen(want);
    if (len < tail || strcmp(sentence + len - tail, want) != 0) {
        fail_msg("\"%s\" does not end with \"%s\"", sentence, want);
    }
}

/* A real refusal on loopback: the sentence ends with the system's words. */
static void strerror_gnu_refused_connect_names_cause(void **state)
{
    (void)state;
    skip_unless_gnu_strerror_r();
    int lfd = netx_tcp_listen("127.0.0.1", 0, 0);
    assert_true(lfd >= 0);
    int port = netx_local_port(lfd);
    assert_true(port > 0);
    assert_int_equal(netx_close(lfd), 0);

    assert_int_equal(netx_tcp_connect("127.0.0.1", (uint16_t)port, 2000), -1);
    assert_int_equal(errno, ECONNREFUSED);
    assert_cause(netx_last_error(), ECONNREFUSED);
}

/* Every errno, known or not, reads as strerror() says; 4242 is no errno
 * ("Unknown error 4242", which glibc writes into the caller's buffer). */
static void strerror_gnu_fail_names_cause_of_each_errno(void **state)
{
    (void)state;
    static const int errs[] = {ECONNREFUSED, ECONNRESET, ETIMEDOUT, EADDRINUSE, EINVAL, 4242};
    skip_unless_gnu_strerror_r();
    for (size_t i = 0; i < sizeof errs / sizeof errs[0]; i++) {
        assert_int_equal(netx__fail(errs[i], "step %zu", i), -1);
        assert_int_equal(errno, errs[i]);
        assert_cause(netx_last_error(), errs[i]);
    }
}

/* A resolver failure of the system kind (EAI_SYSTEM) names errno's cause. */
static void strerror_gnu_fail_gai_system_names_cause(void **state)
{
    (void)state;
    skip_unless_gnu_strerror_r();
    assert_int_equal(netx__fail_gai(EAI_SYSTEM, EMFILE, "localhost"), -1);
    assert_int_equal(errno, EMFILE);
    assert_cause(netx_last_error(), EMFILE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TEST(strerror_gnu_refused_connect_names_cause),
        TEST(strerror_gnu_fail_names_cause_of_each_errno),
        TEST(strerror_gnu_fail_gai_system_names_cause),
    };
    return cmocka_run_group_tests_name("strerror", tests, NULL, NULL);
}
