/*
 * rtt_insns.c - what one round trip costs the client in instructions, with
 * netx_send + netx_recv and with raw send + recv.
 *
 * A client and an echo peer (a thread) talk over a loopback TCP connection.
 * The client's loop of K round trips is a function of its own for each
 * mode, called through rtt_measured_netx() and rtt_measured_raw() for the
 * measured run only (the warm-up calls the loop directly), so that
 * callgrind can count exactly those K round trips and nothing else:
 *
 *   valgrind --tool=callgrind --toggle-collect=rtt_measured_netx rtt_insns netx
 *   valgrind --tool=callgrind --toggle-collect=rtt_measured_raw  rtt_insns raw
 *
 * The counts are user-space instructions (callgrind does not see inside
 * the kernel), so they are the same on every run on any machine, however
 * noisy: the library's own overhead, which the kernel's share of a round
 * trip then dilutes. Run without valgrind, the program also prints the
 * wall-clock time per round trip of the loop it ran; "both" runs the two
 * loops alternately for that.
 *
 *   rtt_insns netx|raw|both [-k ROUNDTRIPS] [-s BYTES]
 */
#define _GNU_SOURCE /* MSG_NOSIGNAL */

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <netx.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#if defined(__GNUC__) || defined(__clang__)
#define NOINLINE __attribute__((noinline))
#else
#define NOINLINE
#endif

static const char *prog = "rtt_insns";

/* Round trips before the measured loop: the first calls resolve symbols,
 * read NETX_TRACE from the environment and warm the caches; none of that
 * belongs in the figure. */
#define WARMUP 200

static long long now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void fail(const char *what)
{
    fprintf(stderr, "%s: %s: %s\n", prog, what, strerror(errno));
    exit(1);
}

/* The echo peer: raw calls, not measured. */
static void *peer(void *arg)
{
    int fd = *(int *)arg;
    char buf[65536];
    for (;;) {
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            break;
        }
        ssize_t done = 0;
        while (done < n) {
            ssize_t m = send(fd, buf + done, (size_t)(n - done), MSG_NOSIGNAL);
            if (m < 0 && errno == EINTR) {
                continue;
            }
            if (m < 0) {
                return NULL;
            }
            done += m;
        }
    }
    return NULL;
}

/* K round trips with the library: one netx_send, then netx_recv until the
 * whole echo is back. Returns 0, or -1 on any failure. */
static NOINLINE int rtt_loop_netx(int fd, const unsigned char *out, unsigned char *in, size_t size,
                                  long k)
{
    for (long i = 0; i < k; i++) {
        if (netx_send(fd, out, size) != (ssize_t)size) {
            return -1;
        }
        size_t got = 0;
        while (got < size) {
            ssize_t n = netx_recv(fd, in + got, size - got);
            if (n <= 0) {
                return -1;
            }
            got += (size_t)n;
        }
    }
    return 0;
}

/* The same with raw send and recv. */
static NOINLINE int rtt_loop_raw(int fd, const unsigned char *out, unsigned char *in, size_t size,
                                 long k)
{
    for (long i = 0; i < k; i++) {
        if (send(fd, out, size, MSG_NOSIGNAL) != (ssize_t)size) {
            return -1;
        }
        size_t got = 0;
        while (got < size) {
            ssize_t n = recv(fd, in + got, size - got, 0);
            if (n < 0 && errno == EINTR) {
                continue;
            }
            if (n <= 0) {
                return -1;
            }
            got += (size_t)n;
        }
    }
    return 0;
}

/* The measured runs go through these two, which callgrind's
 * --toggle-collect names; the warm-up calls the loops directly. */
static NOINLINE int rtt_measured_netx(int fd, const unsigned char *out, unsigned char *in,
                                      size_t size, long k)
{
    return rtt_loop_netx(fd, out, in, size, k);
}

static NOINLINE int rtt_measured_raw(int fd, const unsigned char *out, unsigned char *in,
                                     size_t size, long k)
{
    return rtt_loop_raw(fd, out, in, size, k);
}

/* Run one loop, check the last echo, and return the nanoseconds taken.
 * measured says whether this run is one callgrind should count. */
static long long timed(int netx, int measured, int fd, const unsigned char *out, unsigned char *in,
                       size_t size, long k)
{
    int rc;
    memset(in, 0, size);
    long long t0 = now_ns();
    if (measured) {
        rc =
            netx ? rtt_measured_netx(fd, out, in, size, k) : rtt_measured_raw(fd, out, in, size, k);
    } else {
        rc = netx ? rtt_loop_netx(fd, out, in, size, k) : rtt_loop_raw(fd, out, in, size, k);
    }
    long long t1 = now_ns();
    if (rc != 0) {
        fail(netx ? "netx round trip" : "raw round trip");
    }
    if (memcmp(in, out, size) != 0) {
        fprintf(stderr, "%s: the echo differs from the message\n", prog);
        exit(1);
    }
    return t1 - t0;
}

int main(int argc, char **argv)
{
    long k = 20000;
    long size = 64;
    int opt;

    if (argc < 2 || (strcmp(argv[1], "netx") != 0 && strcmp(argv[1], "raw") != 0 &&
                     strcmp(argv[1], "both") != 0)) {
        fprintf(stderr, "usage: %s netx|raw|both [-k ROUNDTRIPS] [-s BYTES]\n", prog);
        return 2;
    }
    const char *mode = argv[1];
    optind = 2;
    while ((opt = getopt(argc, argv, "k:s:")) != -1) {
        switch (opt) {
        case 'k':
            k = atol(optarg);
            break;
        case 's':
            size = atol(optarg);
            break;
        default:
            fprintf(stderr, "usage: %s netx|raw|both [-k ROUNDTRIPS] [-s BYTES]\n", prog);
            return 2;
        }
    }
    if (k < 1 || size < 1 || size > 65536) {
        fprintf(stderr, "%s: -k must be at least 1, -s from 1 to 65536\n", prog);
        return 2;
    }

    /* A loopback connection: the listener on port 0, the client connects,
     * the accepted end goes to the peer thread. */
    struct sockaddr_in a;
    socklen_t alen = sizeof a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&a, sizeof a) != 0 || listen(lfd, 1) != 0 ||
        getsockname(lfd, (struct sockaddr *)&a, &alen) != 0) {
        fail("listen");
    }
    int cfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (cfd < 0 || connect(cfd, (struct sockaddr *)&a, sizeof a) != 0) {
        fail("connect");
    }
    int sfd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
    if (sfd < 0) {
        fail("accept");
    }
    close(lfd);
    int one = 1;
    setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    setsockopt(sfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    pthread_t t;
    if (pthread_create(&t, NULL, peer, &sfd) != 0) {
        fail("pthread_create");
    }

    unsigned char *out = malloc((size_t)size);
    unsigned char *in = malloc((size_t)size);
    if (out == NULL || in == NULL) {
        fail("malloc");
    }
    for (long i = 0; i < size; i++) {
        out[i] = (unsigned char)(i * 7 + 1);
    }
    int both = strcmp(mode, "both") == 0;
    int netx = strcmp(mode, "netx") == 0;
    timed(1, 0, cfd, out, in, (size_t)size, WARMUP);
    timed(0, 0, cfd, out, in, (size_t)size, WARMUP);

    if (both) {
        /* Alternate the two, so that drift on a busy machine hits both. */
        long long ns[2] = {0, 0};
        for (int round = 0; round < 6; round++) {
            ns[0] += timed(1, 1, cfd, out, in, (size_t)size, k / 6 + 1);
            ns[1] += timed(0, 1, cfd, out, in, (size_t)size, k / 6 + 1);
        }
        double per = (double)(6 * (k / 6 + 1));
        printf("mode=both k=%ld size=%ld netx_ns_per_rtt=%.0f raw_ns_per_rtt=%.0f ratio=%.3f\n",
               6 * (k / 6 + 1), size, (double)ns[0] / per, (double)ns[1] / per,
               (double)ns[0] / (double)ns[1]);
    } else {
        long long ns = timed(netx, 1, cfd, out, in, (size_t)size, k);
        printf("mode=%s k=%ld size=%ld ns_per_rtt=%.0f\n", mode, k, size, (double)ns / (double)k);
    }

    shutdown(cfd, SHUT_WR);
    pthread_join(t, NULL);
    close(cfd);
    close(sfd);
    free(out);
    free(in);
    return 0;
}
