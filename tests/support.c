/*
 * support.c - helpers shared by the test binaries; see support.h.
 */
#include "support.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int support_fd_count(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (d != NULL) {
        int n = 0;
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (e->d_name[0] != '.') {
                n++;
            }
        }
        closedir(d);
        return n - 1; /* the directory's own descriptor */
    }
    /* No /proc: ask each plausible descriptor. */
    int n = 0;
    for (int fd = 0; fd < 4096; fd++) {
        if (fcntl(fd, F_GETFD) != -1) {
            n++;
        }
    }
    return n;
}

static int fds_at_start;

int support_setup(void **state)
{
    (void)state;
    fault_reset();
    fds_at_start = support_fd_count();
    return 0;
}

int support_teardown(void **state)
{
    (void)state;
    fault_reset();
    int now = support_fd_count();
    if (now != fds_at_start) {
        fprintf(stderr, "descriptor count changed: %d before the test, %d after\n", fds_at_start,
                now);
        return -1;
    }
    return 0;
}

int support_have_ipv6(void)
{
    int fd = socket(AF_INET6, SOCK_STREAM, 0);
    if (fd < 0) {
        return 0;
    }
    struct sockaddr_in6 a;
    memset(&a, 0, sizeof a);
    a.sin6_family = AF_INET6;
    a.sin6_addr = in6addr_loopback;
    int ok = bind(fd, (struct sockaddr *)&a, sizeof a) == 0;
    close(fd);
    return ok;
}

void support_tcp_pair(const char *host, int *client, int *server)
{
    if (strchr(host, ':') != NULL && !support_have_ipv6()) {
        skip();
    }
    int lfd = netx_tcp_listen(host, 0, 1);
    assert_true(lfd >= 0);
    int port = netx_local_port(lfd);
    assert_true(port > 0);
    *client = netx_tcp_connect(host, (uint16_t)port, 2000);
    assert_true(*client >= 0);
    *server = netx_accept(lfd, NULL);
    assert_true(*server >= 0);
    assert_int_equal(netx_close(lfd), 0);
}

void support_pattern(unsigned char *buf, size_t len, unsigned seed)
{
    uint32_t x = seed * 2654435761u + 1;
    for (size_t i = 0; i < len; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        buf[i] = (unsigned char)x;
    }
}

static void *echo_main(void *arg)
{
    struct support_echo *e = arg;
    unsigned char buf[16384];
    e->ok = 0;
    for (;;) {
        ssize_t n = recv(e->fd, buf, sizeof buf, 0);
        if (n == 0) {
            e->ok = 1;
            break;
        }
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            break;
        }
        for (ssize_t off = 0; off < n;) {
            ssize_t w = send(e->fd, buf + off, (size_t)(n - off), MSG_NOSIGNAL);
            if (w < 0) {
                if (errno == EINTR) {
                    continue;
                }
                goto out;
            }
            off += w;
            e->bytes += (unsigned long long)w;
        }
    }
out:
    close(e->fd);
    return NULL;
}

void support_echo_start(struct support_echo *e, int fd)
{
    e->fd = fd;
    e->ok = 0;
    e->bytes = 0;
    assert_int_equal(pthread_create(&e->thread, NULL, echo_main, e), 0);
}

void support_echo_join(struct support_echo *e)
{
    pthread_join(e->thread, NULL);
}
