/*
 * unix.c - Unix domain sockets: a stream socket named by a path in the file
 * system ("/run/app.sock") instead of an address and a port. Local web
 * servers sit behind them (nginx passes requests to an application on one),
 * and they cost less than loopback TCP: no ports, no TCP, and the file's
 * permissions say who may connect.
 *
 * Three things hand-written code gets wrong:
 *
 *  - sun_path is about 108 bytes. A longer path must be an error: copying
 *    what fits (as redis's anet does) binds or dials another path.
 *  - A server that died leaves its socket file behind, and bind() then
 *    says EADDRINUSE for ever. A stale file - nobody accepts on it - is
 *    removed and bound again; a live one is not touched (EADDRINUSE).
 *  - Linux has an abstract namespace (a name that starts with a NUL byte,
 *    written "@name" here): no file at all, gone when the last socket
 *    closes.
 */
#include <errno.h>
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "compat.h"
#include "internal.h"

/* The room for a name in sun_path, its NUL included. */
#define SUN_PATH_SIZE (sizeof(((struct sockaddr_un *)0)->sun_path))

int netx__unix_addr(const char *path, netx_addr *out, const char *step)
{
    if (path == NULL || out == NULL) {
        return netx__fail(EINVAL, "%s: %s is NULL", step, path == NULL ? "path" : "out");
    }
    size_t len = strlen(path);
    memset(out, 0, sizeof *out);
    struct sockaddr_un *sun = (struct sockaddr_un *)&out->ss;
    sun->sun_family = AF_UNIX;
    if (path[0] == '@') {
#ifdef __linux__
        /* Abstract: a NUL byte, then the name, with no NUL after it; the
         * address's length says where the name ends. */
        if (len < 2 || len > SUN_PATH_SIZE) {
            return netx__fail(len < 2 ? EINVAL : ENAMETOOLONG,
                              "%s unix:%.40s: an abstract name is 1 to %zu bytes", step, path,
                              SUN_PATH_SIZE - 1);
        }
        memcpy(sun->sun_path + 1, path + 1, len - 1);
        out->len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
        return 0;
#else
        return netx__fail(EAFNOSUPPORT, "%s unix:%.40s: no abstract names on this system", step,
                          path);
#endif
    }
    if (len == 0) {
        return netx__fail(EINVAL, "%s: the path is empty", step);
    }
    if (len >= SUN_PATH_SIZE) {
        /* Never cut short: the first bytes of a path are another path. */
        return netx__fail(ENAMETOOLONG, "%s unix:%.60s...: %zu bytes, the most is %zu", step,
                          path, len, SUN_PATH_SIZE - 1);
    }
    memcpy(sun->sun_path, path, len + 1);
    out->len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + 1);
    return 0;
}

int netx__format_unix(const netx_addr *addr, char *buf, size_t cap)
{
    const struct sockaddr_un *sun = (const struct sockaddr_un *)&addr->ss;
    size_t offset = offsetof(struct sockaddr_un, sun_path);
    size_t n = addr->len > offset ? addr->len - offset : 0;
    if (n == 0) {
        /* A client that never bound a name: what accept() says of it. */
        return snprintf(buf, cap, "unix:(unnamed)");
    }
    if (sun->sun_path[0] == '\0') {
        return snprintf(buf, cap, "unix:@%.*s", (int)(n - 1), sun->sun_path + 1);
    }
    /* A path, NUL-terminated within n bytes (or exactly n bytes long). */
    size_t path_len = strnlen(sun->sun_path, n < SUN_PATH_SIZE ? n : SUN_PATH_SIZE);
    return snprintf(buf, cap, "unix:%.*s", (int)path_len, sun->sun_path);
}

/* 1 if someone accepts connections on the socket file at a (a path). */
static int live(const netx_addr *a)
{
    int probe = socket(AF_UNIX, SOCK_STREAM | NETX__SOCK_CLOEXEC, 0);
    if (probe < 0) {
        return 1; /* cannot tell: do not touch the file */
    }
    int rc = connect(probe, (const struct sockaddr *)&a->ss, a->len);
    int err = errno;
    close(probe);
    /* ECONNREFUSED: a socket file nobody listens on; ENOENT: gone meanwhile.
     * Anything else (a full backlog: EAGAIN) means a live server. */
    return rc == 0 || (err != ECONNREFUSED && err != ENOENT);
}

int netx_unix_listen(const char *path, int backlog)
{
    netx_addr a;
    char where[NETX_ADDRSTRLEN];
    int saved = errno;
    struct netx__record before;

    if (netx__unix_addr(path, &a, "unix listen on") != 0) {
        return -1;
    }
    netx_addr_format(&a, where, sizeof where);
    netx__record_save(&before);
    int fd = netx_socket(AF_UNIX, SOCK_STREAM);
    if (fd < 0) {
        return -1;
    }
    int rc = netx_bind(fd, &a);
    if (rc != 0 && errno == EADDRINUSE && path[0] != '@') {
        /* A file is in the way. If it is a socket nobody accepts on - left
         * by a server that died - it may go; anything else stays. */
        struct stat st;
        if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode) && !live(&a)) {
            unlink(path);
            rc = netx_bind(fd, &a);
        } else {
            errno = EADDRINUSE;
        }
    }
    if (rc == 0) {
        rc = netx_listen(fd, backlog);
    }
    if (rc != 0) {
        int err = errno;
        netx_close(fd);
        return netx__fail(err, "unix listen on %s", where);
    }
    netx__record_restore(&before); /* a stale file replaced is not a failure */
    errno = saved;
    return fd;
}

int netx_unix_connect(const char *path, int timeout_ms)
{
    netx_addr a;
    char where[NETX_ADDRSTRLEN];

    if (netx__unix_addr(path, &a, "unix connect to") != 0) {
        return -1;
    }
    netx_addr_format(&a, where, sizeof where);
    int fd = netx_socket(AF_UNIX, SOCK_STREAM);
    if (fd < 0) {
        return -1;
    }
    if (netx_connect(fd, &a, timeout_ms) != 0) {
        int err = errno;
        netx_close(fd);
        return netx__fail(err, "unix connect to %s", where);
    }
    return fd;
}
