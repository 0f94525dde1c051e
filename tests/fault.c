/*
 * fault.c - the --wrap shims behind fault.h. See there for how they work.
 */
#include "fault.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

#define FAULT_MAX_STEPS 4096

struct script {
    int fd;
    size_t n;
    size_t next;
    struct fault_step steps[FAULT_MAX_STEPS];
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct script scripts[FAULT_NCALLS];
static unsigned counts[FAULT_NCALLS];

void fault_script(enum fault_call call, int fd, const struct fault_step *steps, size_t n)
{
    if (n > FAULT_MAX_STEPS) {
        abort(); /* a test asking for more steps than we hold is a bug */
    }
    pthread_mutex_lock(&lock);
    scripts[call].fd = fd;
    scripts[call].n = n;
    scripts[call].next = 0;
    memcpy(scripts[call].steps, steps, n * sizeof *steps);
    pthread_mutex_unlock(&lock);
}

void fault_reset(void)
{
    pthread_mutex_lock(&lock);
    for (int i = 0; i < FAULT_NCALLS; i++) {
        scripts[i].n = 0;
        scripts[i].next = 0;
        counts[i] = 0;
    }
    pthread_mutex_unlock(&lock);
}

unsigned fault_count(enum fault_call call)
{
    pthread_mutex_lock(&lock);
    unsigned c = counts[call];
    pthread_mutex_unlock(&lock);
    return c;
}

size_t fault_pending(enum fault_call call)
{
    pthread_mutex_lock(&lock);
    size_t left = scripts[call].n - scripts[call].next;
    pthread_mutex_unlock(&lock);
    return left;
}

/* The step for this call on fd: the script's next one, or PASS. */
static struct fault_step next_step(enum fault_call call, int fd)
{
    struct fault_step s = {FAULT_PASS, 0};
    pthread_mutex_lock(&lock);
    counts[call]++;
    struct script *sc = &scripts[call];
    if (sc->next < sc->n && (sc->fd == -1 || sc->fd == fd)) {
        s = sc->steps[sc->next++];
    }
    pthread_mutex_unlock(&lock);
    return s;
}

/* Returns 1 (with errno set) if the step is a failure to report at once. */
static int fails_now(struct fault_step s)
{
    switch (s.kind) {
    case FAULT_EINTR:
        errno = EINTR;
        return 1;
    case FAULT_EAGAIN:
        errno = EAGAIN;
        return 1;
    case FAULT_ERRNO:
        errno = (int)s.arg;
        return 1;
    default:
        return 0;
    }
}

static size_t shorten(struct fault_step s, size_t len)
{
    if (s.kind == FAULT_SHORT && s.arg < len) {
        return s.arg;
    }
    return len;
}

ssize_t __real_send(int fd, const void *buf, size_t len, int flags);
ssize_t __real_recvmsg(int fd, struct msghdr *msg, int flags);
ssize_t __real_sendto(int fd, const void *buf, size_t len, int flags, const struct sockaddr *to,
                      socklen_t tolen);
int __real_connect(int fd, const struct sockaddr *addr, socklen_t len);
int __real_accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags);
int __real_poll(struct pollfd *fds, nfds_t n, int timeout);
int __real_close(int fd);

ssize_t __wrap_send(int fd, const void *buf, size_t len, int flags);
ssize_t __wrap_recvmsg(int fd, struct msghdr *msg, int flags);
ssize_t __wrap_sendto(int fd, const void *buf, size_t len, int flags, const struct sockaddr *to,
                      socklen_t tolen);
int __wrap_connect(int fd, const struct sockaddr *addr, socklen_t len);
int __wrap_accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags);
int __wrap_poll(struct pollfd *fds, nfds_t n, int timeout);
int __wrap_close(int fd);

ssize_t __wrap_send(int fd, const void *buf, size_t len, int flags)
{
    struct fault_step s = next_step(FAULT_SEND, fd);
    if (fails_now(s)) {
        return -1;
    }
    return __real_send(fd, buf, shorten(s, len), flags);
}

ssize_t __wrap_recvmsg(int fd, struct msghdr *msg, int flags)
{
    struct fault_step s = next_step(FAULT_RECV, fd);
    if (fails_now(s)) {
        return -1;
    }
    if (s.kind == FAULT_SHORT && msg->msg_iovlen >= 1) {
        /* Offer the kernel a smaller first buffer, then put it back. */
        size_t keep = msg->msg_iov[0].iov_len;
        msg->msg_iov[0].iov_len = shorten(s, keep);
        size_t iovlen = msg->msg_iovlen;
        msg->msg_iovlen = 1;
        ssize_t n = __real_recvmsg(fd, msg, flags);
        int err = errno;
        msg->msg_iov[0].iov_len = keep;
        msg->msg_iovlen = iovlen;
        errno = err;
        return n;
    }
    return __real_recvmsg(fd, msg, flags);
}

ssize_t __wrap_sendto(int fd, const void *buf, size_t len, int flags, const struct sockaddr *to,
                      socklen_t tolen)
{
    struct fault_step s = next_step(FAULT_SENDTO, fd);
    if (fails_now(s)) {
        return -1;
    }
    return __real_sendto(fd, buf, shorten(s, len), flags, to, tolen);
}

int __wrap_connect(int fd, const struct sockaddr *addr, socklen_t len)
{
    struct fault_step s = next_step(FAULT_CONNECT, fd);
    if (s.kind == FAULT_EINTR) {
        /* A signal that interrupts connect() does not stop the connection:
         * it goes on in the background. Start it for real, then say EINTR. */
        int rc = __real_connect(fd, addr, len);
        if (rc == 0 || errno == EINPROGRESS) {
            errno = EINTR;
        }
        return -1;
    }
    if (fails_now(s)) {
        return -1;
    }
    return __real_connect(fd, addr, len);
}

int __wrap_accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags)
{
    struct fault_step s = next_step(FAULT_ACCEPT, fd);
    if (fails_now(s)) {
        return -1;
    }
    return __real_accept4(fd, addr, len, flags);
}

int __wrap_poll(struct pollfd *fds, nfds_t n, int timeout)
{
    struct fault_step s = next_step(FAULT_POLL, n > 0 ? fds[0].fd : -1);
    if (fails_now(s)) {
        return -1;
    }
    return __real_poll(fds, n, timeout);
}

int __wrap_close(int fd)
{
    struct fault_step s = next_step(FAULT_CLOSE, fd);
    if (s.kind == FAULT_EINTR) {
        /* Linux closes the descriptor even when close() says EINTR. */
        __real_close(fd);
        errno = EINTR;
        return -1;
    }
    if (fails_now(s)) {
        return -1;
    }
    return __real_close(fd);
}
