/*
 * test_stop.c - netx_stop_on(), netx_stopping(), netx_stop_drain() and
 * netx_stop_fd(): a stop signal ends every blocking wait, in any thread,
 * without the race where it lands just before the wait starts.
 *
 * The calls under test wait in a thread of their own that BLOCKS the stop
 * signal, so the signal is delivered to another thread: what ends the wait
 * is the library's stop, never an EINTR in the waiting thread. If a wait is
 * not ended, a watchdog shuts its socket down after WATCHDOG_MS so the test
 * fails instead of hanging.
 *
 * A stop is process-wide and one-way, so each test ends with
 * netx__stop_reset() (src/internal.h), which the tests alone use.
 */
#include "support.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

/* The signal most tests stop on: nothing else in the process uses it. */
#define STOP_SIG SIGUSR1

/* How long a cancelled call may take to return (generous: "a few
 * milliseconds" on an idle machine, more under sanitizers and valgrind). */
#define PROMPT_MS 3000

/* After this long the watchdog gives up on the stop and frees the call. */
#define WATCHDOG_MS 8000

#define CHILD_ARG "--child-closed-stdio"

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static int teardown(void **state)
{
    netx__stop_reset();
    return support_teardown(state);
}

#define STOP_TEST(f) cmocka_unit_test_setup_teardown(f, support_setup, teardown)

/* ------------------------------------------------------------------------
 * A call that waits, in a thread that blocks the stop signal
 * ------------------------------------------------------------------------ */

enum call_kind { CALL_ACCEPT, CALL_RECV, CALL_SEND_ALL, CALL_READ_LINE, CALL_RECVFROM, CALL_GRACEFUL };

struct waiter {
    enum call_kind kind;
    int fd;
    pthread_t thread;
    _Atomic int started; /* the thread is about to make its call */
    _Atomic int done;
    long rc;
    int err;
    char text[400];
    size_t transferred;
    long long ended_ms;
};

static void *waiter_main(void *arg)
{
    struct waiter *w = arg;
    sigset_t block;
    sigemptyset(&block);
    sigaddset(&block, STOP_SIG);
    sigaddset(&block, SIGINT);
    pthread_sigmask(SIG_BLOCK, &block, NULL);

    char buf[256];
    static unsigned char big[8 << 20]; /* more than any socket buffer */
    w->started = 1;
    switch (w->kind) {
    case CALL_ACCEPT:
        w->rc = netx_accept(w->fd, NULL);
        break;
    case CALL_RECV:
        w->rc = netx_recv(w->fd, buf, sizeof buf);
        break;
    case CALL_SEND_ALL:
        w->rc = netx_send_all(w->fd, big, sizeof big);
        break;
    case CALL_READ_LINE: {
        char storage[64];
        netx_reader r;
        netx_reader_init(&r, w->fd, storage, sizeof storage);
        w->rc = netx_read_line(&r, buf, sizeof buf);
        break;
    }
    case CALL_RECVFROM: {
        netx_addr from;
        w->rc = netx_recvfrom(w->fd, buf, sizeof buf, &from);
        break;
    }
    case CALL_GRACEFUL:
        w->rc = netx_close_graceful(w->fd, 0); /* no deadline of its own */
        break;
    }
    w->err = errno;
    w->transferred = netx_last_transferred();
    snprintf(w->text, sizeof w->text, "%s", netx_last_error());
    w->ended_ms = now_ms();
    w->done = 1;
    return NULL;
}

/* Start the call and give it time to settle into its wait. */
static void waiter_start(struct waiter *w, enum call_kind kind, int fd)
{
    memset(w, 0, sizeof *w);
    w->kind = kind;
    w->fd = fd;
    assert_int_equal(pthread_create(&w->thread, NULL, waiter_main, w), 0);
    for (int i = 0; i < 1000 && !w->started; i++) {
        sleep_ms(1);
    }
    sleep_ms(100);
    assert_int_equal(w->done, 0); /* it really waits */
}

/* Wait for the call to end; the watchdog frees it after WATCHDOG_MS. */
static void waiter_join(struct waiter *w)
{
    long long limit = now_ms() + WATCHDOG_MS;
    while (!w->done && now_ms() < limit) {
        sleep_ms(5);
    }
    int stuck = !w->done;
    if (stuck) {
        shutdown(w->fd, SHUT_RDWR);
    }
    pthread_join(w->thread, NULL);
    if (stuck) {
        fail_msg("the call was still waiting %d ms after the stop signal", WATCHDOG_MS);
    }
}

/* Send the stop signal to the process (not to a thread): it lands in a
 * thread that does not block it, never the waiting one. Then check the call
 * ended promptly with ECANCELED and a sentence naming step and signal. */
static void stop_and_expect_cancel(struct waiter *w, const char *step, const char *signame)
{
    long long sent = now_ms();
    assert_int_equal(kill(getpid(), STOP_SIG), 0);
    waiter_join(w);
    assert_int_equal(w->rc, -1);
    assert_int_equal(w->err, ECANCELED);
    assert_true(w->ended_ms - sent < PROMPT_MS);
    assert_non_null(strstr(w->text, step));
    char want[64];
    snprintf(want, sizeof want, ": stopped by %s", signame);
    assert_non_null(strstr(w->text, want));
    assert_int_equal(netx_stopping(), 1);
}

/* ------------------------------------------------------------------------
 * Every kind of wait ends
 * ------------------------------------------------------------------------ */

static void stop_accept_without_timeout_ecanceled(void **state)
{
    (void)state;
    struct waiter w;
    int lfd = netx_tcp_listen("127.0.0.1", 0, 0);
    assert_true(lfd >= 0);
    assert_int_equal(netx_stop_on(STOP_SIG), 0);
    waiter_start(&w, CALL_ACCEPT, lfd);
    stop_and_expect_cancel(&w, "accept on 127.0.0.1:", "SIGUSR1");
    netx_close(lfd);
}

static void stop_recv_without_timeout_ecanceled(void **state)
{
    (void)state;
    struct waiter w;
    int c, s;
    support_tcp_pair("127.0.0.1", &c, &s);
    assert_int_equal(netx_stop_on(STOP_SIG), 0);
    waiter_start(&w, CALL_RECV, s);
    stop_and_expect_cancel(&w, "recv from 127.0.0.1:", "SIGUSR1");
    netx_close(c);
    netx_close(s);
}

static void stop_recv_with_timeout_ecanceled_before_it(void **state)
{
    (void)state;
    struct waiter w;
    int c, s;
    support_tcp_pair("127.0.0.1", &c, &s);
    assert_int_equal(netx_set_timeout(s, 60000), 0);
    assert_int_equal(netx_stop_on(STOP_SIG), 0);
    waiter_start(&w, CALL_RECV, s);
    stop_and_expect_cancel(&w, "recv from", "SIGUSR1");
    netx_close(c);
    netx_close(s);
}

/* The chat server's trap: blocked sending to a client that does not read. */
static void stop_send_all_to_peer_not_reading_ecanceled(void **state)
{
    (void)state;
    struct waiter w;
    int c, s;
    support_tcp_pair("127.0.0.1", &c, &s);
    assert_int_equal(netx_stop_on(STOP_SIG), 0);
    waiter_start(&w, CALL_SEND_ALL, s);
    stop_and_expect_cancel(&w, "send to 127.0.0.1:", "SIGUSR1");
    /* What went out before the stop is counted, as for any failure. */
    assert_true(w.transferred > 0);
    assert_true(w.transferred < (8u << 20));
    netx_close(c);
    netx_close(s);
}

static void stop_read_line_ecanceled_keeps_partial_line(void **state)
{
    (void)state;
    struct waiter w;
    int c, s;
    support_tcp_pair("127.0.0.1", &c, &s);
    assert_int_equal(netx_send_all(c, "no newline yet", 14), 0);
    assert_int_equal(netx_stop_on(STOP_SIG), 0);
    waiter_start(&w, CALL_READ_LINE, s);
    stop_and_expect_cancel(&w, "recv from", "SIGUSR1");
    netx_close(c);
    netx_close(s);
}

static void stop_udp_recvfrom_ecanceled(void **state)
{
    (void)state;
    struct waiter w;
    int u = netx_udp_bind("127.0.0.1", 0);
    assert_true(u >= 0);
    assert_int_equal(netx_stop_on(STOP_SIG), 0);
    waiter_start(&w, CALL_RECVFROM, u);
    stop_and_expect_cancel(&w, "recvfrom on 127.0.0.1:", "SIGUSR1");
    netx_close(u);
}

static void stop_close_graceful_peer_silent_ecanceled(void **state)
{
    (void)state;
    struct waiter w;
    int c, s;
    support_tcp_pair("127.0.0.1", &c, &s);
    assert_int_equal(netx_stop_on(STOP_SIG), 0);
    waiter_start(&w, CALL_GRACEFUL, s); /* closes s whatever happens */
    stop_and_expect_cancel(&w, "graceful close of", "SIGUSR1");
    netx_close(c);
}

/* SIGINT, the Ctrl-C of the issue, with the sentence it names. */
static void stop_on_sigint_sentence_names_step_and_signal(void **state)
{
    (void)state;
    int lfd = netx_tcp_listen("127.0.0.1", 0, 0);
    assert_true(lfd >= 0);
    assert_int_equal(netx_stop_on(SIGINT), 0);
    assert_int_equal(raise(SIGINT), 0);
    assert_int_equal(netx_accept(lfd, NULL), -1);
    assert_int_equal(errno, ECANCELED);
    char want[64];
    snprintf(want, sizeof want, "(fd %d): stopped by SIGINT", lfd);
    assert_non_null(strstr(netx_last_error(), "accept on 127.0.0.1:"));
    assert_non_null(strstr(netx_last_error(), want));
    netx_close(lfd);
    /* Ctrl-C must kill the next test binary's way as before: give SIGINT
     * back to the system's default. */
    signal(SIGINT, SIG_DFL);
}

/* ------------------------------------------------------------------------
 * No race, and nothing changed for calls that need not wait
 * ------------------------------------------------------------------------ */

/* The signal lands before the call starts to wait: the wait must still end
 * (a flag checked before a blocking recv() would miss it). */
static void stop_signal_before_wait_still_cancels(void **state)
{
    (void)state;
    int c, s;
    char buf[16];
    support_tcp_pair("127.0.0.1", &c, &s);
    assert_int_equal(netx_stop_on(STOP_SIG), 0);
    assert_int_equal(raise(STOP_SIG), 0);
    long long start = now_ms();
    assert_int_equal(netx_recv(s, buf, sizeof buf), -1);
    assert_int_equal(errno, ECANCELED);
    assert_true(now_ms() - start < PROMPT_MS);
    assert_int_equal(netx_recv_all(s, buf, sizeof buf), -1);
    assert_int_equal(errno, ECANCELED);
    netx_close(c);
    netx_close(s);
}

/* One signal ends the waits of every thread at once. */
static void stop_waits_in_many_threads_all_end(void **state)
{
    (void)state;
    enum { N = 6 };
    struct waiter w[N];
    int c[N], s[N];
    for (int i = 0; i < N; i++) {
        support_tcp_pair("127.0.0.1", &c[i], &s[i]);
    }
    assert_int_equal(netx_stop_on(STOP_SIG), 0);
    for (int i = 0; i < N; i++) {
        waiter_start(&w[i], CALL_RECV, s[i]);
    }
    assert_int_equal(kill(getpid(), STOP_SIG), 0);
    for (int i = 0; i < N; i++) {
        waiter_join(&w[i]);
        assert_int_equal(w[i].rc, -1);
        assert_int_equal(w[i].err, ECANCELED);
    }
    for (int i = 0; i < N; i++) {
        netx_close(c[i]);
        netx_close(s[i]);
    }
}

/* A call that finds its data there does not wait, and succeeds. */
static void stop_call_that_need_not_wait_succeeds(void **state)
{
    (void)state;
    int c, s;
    char buf[16];
    support_tcp_pair("127.0.0.1", &c, &s);
    assert_int_equal(netx_stop_on(STOP_SIG), 0);
    assert_int_equal(netx_send_all(c, "ready", 5), 0);
    assert_int_equal(raise(STOP_SIG), 0);
    assert_int_equal(netx_recv_all(s, buf, 5), 5);
    assert_memory_equal(buf, "ready", 5);
    assert_int_equal(netx_send(s, "x", 1), 1);
    netx_close(c);
    netx_close(s);
}

/* Armed, a non-blocking socket still says EAGAIN at once, and a blocking
 * one with a timeout still says ETIMEDOUT: the stop changes nothing else. */
static void stop_armed_nonblocking_eagain_and_timeout_etimedout(void **state)
{
    (void)state;
    int c, s;
    char buf[16];
    support_tcp_pair("127.0.0.1", &c, &s);
    assert_int_equal(netx_stop_on(STOP_SIG), 0);

    assert_int_equal(netx_set_timeout(s, 150), 0);
    long long start = now_ms();
    assert_int_equal(netx_recv(s, buf, sizeof buf), -1);
    assert_int_equal(errno, ETIMEDOUT);
    assert_true(now_ms() - start >= 100);

    assert_int_equal(netx_set_nonblocking(s, 1), 0);
    assert_int_equal(netx_recv(s, buf, sizeof buf), -1);
    assert_int_equal(errno, EAGAIN);
    assert_int_equal(netx_accept(s, NULL), -1); /* not a listener: its own error */
    assert_int_equal(errno, EINVAL);
    netx_close(c);
    netx_close(s);
}

/* Armed, a blocking send larger than the socket buffer still arrives whole
 * when nobody stops it (the wait in poll() replaces the kernel's). */
static void stop_armed_transfers_arrive_whole(void **state)
{
    (void)state;
    int c, s;
    enum { LEN = 4 << 20 };
    unsigned char *out = malloc(LEN);
    unsigned char *in = malloc(LEN);
    assert_non_null(out);
    assert_non_null(in);
    support_pattern(out, LEN, 7);
    support_tcp_pair("127.0.0.1", &c, &s);
    assert_int_equal(netx_stop_on(STOP_SIG), 0);
    struct support_echo e;
    support_echo_start(&e, s);
    assert_int_equal(netx_set_timeout(c, 10000), 0);
    /* Send in pieces, reading each echo back, so neither side blocks on
     * the other. */
    for (size_t off = 0; off < LEN; off += 256 * 1024) {
        assert_int_equal(netx_send_all(c, out + off, 256 * 1024), 0);
        assert_int_equal(netx_recv_all(c, in + off, 256 * 1024), 256 * 1024);
    }
    assert_memory_equal(in, out, LEN);
    netx_shutdown(c, SHUT_WR);
    support_echo_join(&e);
    assert_int_equal(e.ok, 1);
    netx_close(c);
    free(out);
    free(in);
}

/* ------------------------------------------------------------------------
 * Draining: the first signal cancels, the program drains, the second ends
 * ------------------------------------------------------------------------ */

static void stop_drain_before_any_signal_einval(void **state)
{
    (void)state;
    assert_int_equal(netx_stop_on(STOP_SIG), 0);
    assert_int_equal(netx_stopping(), 0);
    assert_int_equal(netx_stop_drain(1000), -1);
    assert_int_equal(errno, EINVAL);
}

static void stop_drain_lets_waits_work_until_second_signal(void **state)
{
    (void)state;
    struct waiter w;
    int c, s;
    char buf[16];
    support_tcp_pair("127.0.0.1", &c, &s);
    assert_int_equal(netx_stop_on(STOP_SIG), 0);

    /* First signal: every wait is cancelled, later ones too. */
    assert_int_equal(raise(STOP_SIG), 0);
    assert_int_equal(netx_recv(s, buf, sizeof buf), -1);
    assert_int_equal(errno, ECANCELED);
    assert_int_equal(netx_recv(s, buf, sizeof buf), -1);
    assert_int_equal(errno, ECANCELED);

    /* Drain: a wait works again, and gets what arrives. */
    assert_int_equal(netx_stop_drain(60000), 0);
    assert_int_equal(netx_stop_drain(1), 0); /* later calls change nothing */
    assert_int_equal(netx_stopping(), 1);
    waiter_start(&w, CALL_RECV, s);
    assert_int_equal(netx_send_all(c, "owed", 4), 0);
    waiter_join(&w);
    assert_int_equal(w.rc, 4);

    /* Second signal: waits end again, for good. */
    waiter_start(&w, CALL_RECV, s);
    stop_and_expect_cancel(&w, "recv from", "SIGUSR1");
    assert_int_equal(netx_stop_drain(1000), -1);
    assert_int_equal(errno, ECANCELED);
    assert_int_equal(netx_recv(s, buf, sizeof buf), -1);
    assert_int_equal(errno, ECANCELED);
    netx_close(c);
    netx_close(s);
}

/* Another thread starts the drain right after the signal, before a waiting
 * thread has woken up: that wait was waiting at the moment of the signal,
 * so it still ends (the main thread's accept, say, must see the stop). */
static void stop_wait_ends_even_if_drain_started_first(void **state)
{
    (void)state;
    struct waiter w;
    int c, s;
    support_tcp_pair("127.0.0.1", &c, &s);
    assert_int_equal(netx_stop_on(STOP_SIG), 0);
    waiter_start(&w, CALL_RECV, s);
    assert_int_equal(kill(getpid(), STOP_SIG), 0); /* handled by this thread */
    assert_int_equal(netx_stop_drain(60000), 0);
    waiter_join(&w);
    assert_int_equal(w.rc, -1);
    assert_int_equal(w.err, ECANCELED);
    netx_close(c);
    netx_close(s);
}

static void stop_drain_grace_period_over_ecanceled(void **state)
{
    (void)state;
    int c, s;
    char buf[16];
    support_tcp_pair("127.0.0.1", &c, &s);
    assert_int_equal(netx_stop_on(STOP_SIG), 0);
    assert_int_equal(raise(STOP_SIG), 0);
    assert_int_equal(netx_stop_drain(200), 0);
    long long start = now_ms();
    assert_int_equal(netx_recv(s, buf, sizeof buf), -1); /* no timeout of its own */
    long long took = now_ms() - start;
    assert_int_equal(errno, ECANCELED);
    assert_true(took >= 150);
    assert_true(took < PROMPT_MS);
    assert_non_null(strstr(netx_last_error(), "stopped by SIGUSR1: the grace period is over"));
    /* Over for good: a program that asks to drain again is told to stop,
     * or it would spin. */
    assert_int_equal(netx_stop_drain(200), -1);
    assert_int_equal(errno, ECANCELED);
    assert_int_equal(netx_recv(s, buf, sizeof buf), -1);
    assert_int_equal(errno, ECANCELED);
    netx_close(c);
    netx_close(s);
}

/* A socket timeout shorter than the grace period is still the caller's
 * ETIMEDOUT. */
static void stop_drain_own_timeout_first_etimedout(void **state)
{
    (void)state;
    int c, s;
    char buf[16];
    support_tcp_pair("127.0.0.1", &c, &s);
    assert_int_equal(netx_stop_on(STOP_SIG), 0);
    assert_int_equal(raise(STOP_SIG), 0);
    assert_int_equal(netx_stop_drain(60000), 0);
    assert_int_equal(netx_set_timeout(s, 100), 0);
    assert_int_equal(netx_recv(s, buf, sizeof buf), -1);
    assert_int_equal(errno, ETIMEDOUT);
    netx_close(c);
    netx_close(s);
}

/* ------------------------------------------------------------------------
 * netx_stop_fd() for a program's own poll()
 * ------------------------------------------------------------------------ */

static int readable(int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLIN, .revents = 0};
    return poll(&p, 1, 0) == 1;
}

static void stop_fd_turns_readable_and_changes_after_drain(void **state)
{
    (void)state;
    assert_int_equal(netx_stop_on(STOP_SIG), 0);
    int first = netx_stop_fd();
    assert_true(first > 2);
    assert_int_equal(readable(first), 0);
    assert_int_equal(raise(STOP_SIG), 0);
    assert_int_equal(readable(first), 1);
    assert_int_equal(netx_stop_drain(60000), 0);
    int second = netx_stop_fd();
    assert_true(second > 2);
    assert_int_not_equal(second, first);
    assert_int_equal(readable(second), 0);
    assert_int_equal(raise(STOP_SIG), 0);
    assert_int_equal(readable(second), 1);
}

static void stop_on_uncatchable_signal_einval(void **state)
{
    (void)state;
    assert_int_equal(netx_stop_on(SIGKILL), -1);
    assert_int_equal(errno, EINVAL);
    assert_non_null(strstr(netx_last_error(), "stop on signal 9"));
    assert_int_equal(netx_stop_on(0), -1);
    assert_int_equal(errno, EINVAL);
    assert_int_equal(netx_stop_on(-3), -1);
    assert_int_equal(errno, EINVAL);
}

static void stop_trace_shows_stopped_step(void **state)
{
    (void)state;
    int c, s;
    char buf[16];
    char text[2048];
    support_tcp_pair("127.0.0.1", &c, &s);
    FILE *f = tmpfile();
    assert_non_null(f);
    netx_trace(f);
    assert_int_equal(netx_stop_on(STOP_SIG), 0);
    assert_int_equal(raise(STOP_SIG), 0);
    assert_int_equal(netx_recv(s, buf, sizeof buf), -1);
    netx_trace(NULL);
    rewind(f);
    size_t n = fread(text, 1, sizeof text - 1, f);
    text[n] = '\0';
    fclose(f);
    assert_non_null(strstr(text, "netx: stop_on(SIGUSR1) = 0\n"));
    char want[64];
    snprintf(want, sizeof want, "netx: recv(%d, 16) = -1 (stopped by SIGUSR1)\n", s);
    assert_non_null(strstr(text, want));
    netx_close(c);
    netx_close(s);
}

/*
 * Started with descriptors 0, 1 and 2 closed, a program's pipe() gets
 * exactly those numbers; a printf() would then write into the stop pipe
 * and stop the program. The stop's pipes must stay above 2. Run in a fresh
 * process (this binary again, with CHILD_ARG), since the pipes are made
 * once per process.
 */
static int child_closed_stdio(void)
{
    close(0);
    close(1);
    close(2);
    if (netx_stop_on(STOP_SIG) != 0) {
        return 1;
    }
    int fd = netx_stop_fd();
    if (fd <= 2) {
        return 2;
    }
    /* Nothing may be open on 0, 1 or 2 because of us. */
    for (int i = 0; i <= 2; i++) {
        if (fcntl(i, F_GETFD) != -1) {
            return 3;
        }
    }
    return 0;
}

static void stop_pipes_stay_above_stdio_when_it_is_closed(void **state)
{
    (void)state;
    char self[4096];
    ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
    if (len <= 0) {
        skip();
    }
    self[len] = '\0';
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        execl(self, self, CHILD_ARG, (char *)NULL);
        _exit(127);
    }
    int status = 0;
    long long limit = now_ms() + 10000;
    pid_t r = 0;
    while ((r = waitpid(pid, &status, WNOHANG)) == 0 && now_ms() < limit) {
        sleep_ms(5);
    }
    if (r == 0) {
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        fail_msg("the child did not finish");
    }
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], CHILD_ARG) == 0) {
        return child_closed_stdio();
    }
    /* The stop's pipes are made once per process: make them before the
     * first test counts descriptors. */
    if (netx_stop_on(STOP_SIG) != 0) {
        fprintf(stderr, "netx_stop_on: %s\n", netx_last_error());
        return 1;
    }
    const struct CMUnitTest tests[] = {
        STOP_TEST(stop_accept_without_timeout_ecanceled),
        STOP_TEST(stop_recv_without_timeout_ecanceled),
        STOP_TEST(stop_recv_with_timeout_ecanceled_before_it),
        STOP_TEST(stop_send_all_to_peer_not_reading_ecanceled),
        STOP_TEST(stop_read_line_ecanceled_keeps_partial_line),
        STOP_TEST(stop_udp_recvfrom_ecanceled),
        STOP_TEST(stop_close_graceful_peer_silent_ecanceled),
        STOP_TEST(stop_on_sigint_sentence_names_step_and_signal),
        STOP_TEST(stop_signal_before_wait_still_cancels),
        STOP_TEST(stop_waits_in_many_threads_all_end),
        STOP_TEST(stop_call_that_need_not_wait_succeeds),
        STOP_TEST(stop_armed_nonblocking_eagain_and_timeout_etimedout),
        STOP_TEST(stop_armed_transfers_arrive_whole),
        STOP_TEST(stop_drain_before_any_signal_einval),
        STOP_TEST(stop_drain_lets_waits_work_until_second_signal),
        STOP_TEST(stop_wait_ends_even_if_drain_started_first),
        STOP_TEST(stop_drain_grace_period_over_ecanceled),
        STOP_TEST(stop_drain_own_timeout_first_etimedout),
        STOP_TEST(stop_fd_turns_readable_and_changes_after_drain),
        STOP_TEST(stop_on_uncatchable_signal_einval),
        STOP_TEST(stop_trace_shows_stopped_step),
        STOP_TEST(stop_pipes_stay_above_stdio_when_it_is_closed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
