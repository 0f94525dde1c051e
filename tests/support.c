/*
 * support.c - helpers shared by the test binaries; see support.h.
 */
#if defined(__linux__) && !defined(_GNU_SOURCE)
#define _GNU_SOURCE /* unshare(), CLONE_NEWNS, CLONE_NEWNET, struct ifreq */
#endif

#include "support.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#ifdef __linux__
#include <net/if.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#endif

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

static int offline = -1; /* -1 not tried, 0 not possible, 1 in effect */

int support_offline_resolver(void)
{
    if (offline >= 0) {
        return offline;
    }
    offline = 0;
#ifdef __linux__
    static const char conf[] = "hosts: files\n";
    char path[] = "/tmp/netx-test-nsswitch-XXXXXX";
    if (unshare(CLONE_NEWNS) != 0) {
        fprintf(stderr, "offline resolver: unshare(CLONE_NEWNS): %s\n", strerror(errno));
        return 0;
    }
    /* Private, so the bind mount below stays in this namespace. */
    if (mount("none", "/", "none", MS_REC | MS_PRIVATE, NULL) != 0) {
        fprintf(stderr, "offline resolver: mount / private: %s\n", strerror(errno));
        return 0;
    }
    int fd = mkstemp(path);
    if (fd < 0) {
        fprintf(stderr, "offline resolver: mkstemp: %s\n", strerror(errno));
        return 0;
    }
    ssize_t w = write(fd, conf, sizeof conf - 1);
    close(fd);
    int rc = w == (ssize_t)(sizeof conf - 1)
                 ? mount(path, "/etc/nsswitch.conf", "none", MS_BIND, NULL)
                 : -1;
    int err = errno;
    unlink(path); /* the mount keeps the file itself */
    if (rc != 0) {
        fprintf(stderr, "offline resolver: bind mount over /etc/nsswitch.conf: %s\n",
                strerror(err));
        return 0;
    }
    offline = 1;
#endif
    return offline;
}

void support_require_offline_resolver(void)
{
    if (offline != 1) {
        fprintf(stderr, "skipped: no private resolver (see above), and looking up a name "
                        "that does not exist would ask a DNS server beyond loopback\n");
        skip();
    }
}

#ifdef __linux__
/* Write text to a file of /proc (a user namespace's maps). */
static int write_proc(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) {
        return -1;
    }
    ssize_t n = write(fd, text, strlen(text));
    close(fd);
    return n == (ssize_t)strlen(text) ? 0 : -1;
}
#endif

int support_private_network(void)
{
#ifndef __linux__
    errno = ENOSYS;
    return -1;
#else
    if (unshare(CLONE_NEWNET) != 0) {
        char map[64];
        unsigned uid = (unsigned)geteuid();
        unsigned gid = (unsigned)getegid();
        if (unshare(CLONE_NEWUSER | CLONE_NEWNET) != 0) {
            return -1;
        }
        /* Only one id maps, our own, to root in the namespace; setgroups
         * must be denied before an unprivileged gid_map is written. */
        snprintf(map, sizeof map, "0 %u 1\n", uid);
        if (write_proc("/proc/self/setgroups", "deny") != 0 && errno != ENOENT) {
            return -1;
        }
        if (write_proc("/proc/self/uid_map", map) != 0) {
            return -1;
        }
        snprintf(map, sizeof map, "0 %u 1\n", gid);
        if (write_proc("/proc/self/gid_map", map) != 0) {
            return -1;
        }
    }
    /* A new namespace's loopback interface is down: bring it up. */
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return -1;
    }
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "lo");
    int rc = ioctl(fd, SIOCGIFFLAGS, &ifr);
    if (rc == 0) {
        ifr.ifr_flags |= IFF_UP;
        rc = ioctl(fd, SIOCSIFFLAGS, &ifr);
    }
    int err = errno;
    close(fd);
    errno = err;
    return rc;
#endif
}
