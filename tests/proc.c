/*
 * proc.c - see proc.h.
 */
#include "proc.h"
#include "support.h" /* cmocka, for the helpers that skip or assert */

#include <dirent.h>
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

#ifndef NETX_EXAMPLES_DIR
#define NETX_EXAMPLES_DIR "build/examples"
#endif

extern char **environ;

/*
 * The programs started and not yet collected by proc_finish(), and the
 * pipes of those proc_abandon() killed. Fixed arrays, so that keeping
 * track opens no descriptor and allocates nothing the tests would see.
 */
#define MAX_STARTED 128
static pid_t started[MAX_STARTED]; /* 0: a free slot */
static int kept_fds[64];
static int n_kept;

long long proc_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int proc_ms_until(long long deadline)
{
    long long left = deadline - proc_now_ms();
    return left > 0 ? (int)left : 0;
}

const char *proc_example(const char *name, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s/%s", NETX_EXAMPLES_DIR, name);
    return buf;
}

const char *proc_path(const char *name)
{
    static char buf[4][256];
    static int next;
    next = (next + 1) % 4;
    return proc_example(name, buf[next], sizeof buf[next]);
}

const char *proc_port_text(int port, char *buf, size_t cap)
{
    snprintf(buf, cap, "%d", port);
    return buf;
}

/* Remember pid as started; a full table only loses the clean-up. */
static void remember(pid_t pid)
{
    for (int i = 0; i < MAX_STARTED; i++) {
        if (started[i] == 0) {
            started[i] = pid;
            return;
        }
    }
}

/* Forget pid once it is collected; returns 1 if it was remembered. */
static int forget(pid_t pid)
{
    for (int i = 0; pid > 0 && i < MAX_STARTED; i++) {
        if (started[i] == pid) {
            started[i] = 0;
            return 1;
        }
    }
    return 0;
}

static void keep_fd(int fd)
{
    if (fd >= 0 && n_kept < (int)(sizeof kept_fds / sizeof kept_fds[0])) {
        kept_fds[n_kept++] = fd;
    }
}

void proc_abandon(struct proc *p)
{
    if (!forget(p->pid)) {
        return;
    }
    kill(p->pid, SIGKILL);
    waitpid(p->pid, NULL, 0); /* SIGKILL cannot be ignored: this ends */
    keep_fd(p->out);
    keep_fd(p->err);
    keep_fd(p->in);
    p->out = p->err = p->in = -1;
    p->status = 128 + SIGKILL;
}

int proc_kill_leftovers(void **state)
{
    (void)state;
    for (int i = 0; i < MAX_STARTED; i++) {
        int status;
        if (started[i] > 0 && waitpid(started[i], &status, WNOHANG) == 0) {
            kill(started[i], SIGKILL);
            waitpid(started[i], &status, 0);
        }
        started[i] = 0;
    }
    for (int i = 0; i < n_kept; i++) {
        close(kept_fds[i]);
    }
    n_kept = 0;
    return 0;
}

int proc_have(const char *cmd)
{
    const char *path = getenv("PATH");
    char dir[4096];
    char full[4200];
    if (path == NULL) {
        return 0;
    }
    while (*path != '\0') {
        size_t n = strcspn(path, ":");
        if (n < sizeof dir) {
            memcpy(dir, path, n);
            dir[n] = '\0';
            snprintf(full, sizeof full, "%s/%s", n > 0 ? dir : ".", cmd);
            if (access(full, X_OK) == 0) {
                return 1;
            }
        }
        path += n;
        if (*path == ':') {
            path++;
        }
    }
    return 0;
}

void proc_skip_without(const char *cmd, const char *why)
{
    if (!proc_have(cmd)) {
        fprintf(stderr, "skipped: %s is not installed, so %s\n", cmd, why);
        skip();
    }
}

static int cloexec_pipe(int fds[2])
{
    if (pipe(fds) != 0) {
        return -1;
    }
    fcntl(fds[0], F_SETFD, FD_CLOEXEC);
    fcntl(fds[1], F_SETFD, FD_CLOEXEC);
    return 0;
}

int proc_start(struct proc *p, const char *const argv[], const char *const env[], int stdin_pipe)
{
    int in[2] = {-1, -1}, out[2], err[2];

    memset(p, 0, sizeof *p);
    p->in = p->out = p->err = -1;
    p->status = -1;
    if (cloexec_pipe(out) != 0) {
        return -1;
    }
    if (cloexec_pipe(err) != 0) {
        close(out[0]);
        close(out[1]);
        return -1;
    }
    if (stdin_pipe && cloexec_pipe(in) != 0) {
        close(out[0]);
        close(out[1]);
        close(err[0]);
        close(err[1]);
        return -1;
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        /* The child: wire up its standard streams, then become argv[0]. */
        if (stdin_pipe) {
            dup2(in[0], 0);
        } else {
            int null = open("/dev/null", O_RDONLY);
            dup2(null, 0);
        }
        dup2(out[1], 1);
        dup2(err[1], 2);
        for (int i = 0; env != NULL && env[i] != NULL; i++) {
            char setting[1024];
            snprintf(setting, sizeof setting, "%s", env[i]);
            char *eq = strchr(setting, '=');
            if (eq != NULL) {
                *eq = '\0';
                setenv(setting, eq + 1, 1);
            }
        }
        execvp(argv[0], (char *const *)argv);
        fprintf(stderr, "proc: cannot run %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    close(out[1]);
    close(err[1]);
    if (stdin_pipe) {
        close(in[0]);
        p->in = in[1];
    }
    if (pid < 0) {
        close(out[0]);
        close(err[0]);
        if (stdin_pipe) {
            close(in[1]);
        }
        p->in = -1;
        return -1;
    }
    p->pid = pid;
    p->out = out[0];
    p->err = err[0];
    remember(pid);
    return 0;
}

/* Read what is ready on fd into buf; close fd at end of file. */
static void drain(int *fd, char *buf, size_t *len)
{
    char scratch[4096];
    ssize_t n = read(*fd, scratch, sizeof scratch);
    if (n > 0) {
        size_t room = PROC_OUT_MAX - *len;
        size_t take = (size_t)n < room ? (size_t)n : room;
        memcpy(buf + *len, scratch, take);
        *len += take;
        buf[*len] = '\0';
    } else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
        close(*fd);
        *fd = -1;
    }
}

/* Wait for output on stdout/stderr until the deadline; returns 0 when
 * something was read or a stream ended, -1 at the deadline. */
static int pump(struct proc *p, long long deadline)
{
    struct pollfd fds[2];
    int n = 0;
    if (p->out >= 0) {
        fds[n++] = (struct pollfd){.fd = p->out, .events = POLLIN};
    }
    if (p->err >= 0) {
        fds[n++] = (struct pollfd){.fd = p->err, .events = POLLIN};
    }
    if (n == 0) {
        return -1;
    }
    long long left = deadline - proc_now_ms();
    if (left <= 0) {
        return -1;
    }
    int r = poll(fds, (nfds_t)n, (int)left);
    if (r <= 0) {
        return r < 0 && errno == EINTR ? 0 : -1;
    }
    for (int i = 0; i < n; i++) {
        if (fds[i].revents == 0) {
            continue;
        }
        if (fds[i].fd == p->out) {
            drain(&p->out, p->out_buf, &p->out_len);
        } else {
            drain(&p->err, p->err_buf, &p->err_len);
        }
    }
    return 0;
}

int proc_wait_listening(struct proc *p, int timeout_ms)
{
    long long deadline = proc_now_ms() + timeout_ms;
    for (;;) {
        const char *line = strstr(p->out_buf, "listening on ");
        if (line != NULL) {
            const char *eol = strchr(line, '\n');
            if (eol != NULL) {
                const char *colon = eol;
                while (colon > line && *colon != ':') {
                    colon--;
                }
                return atoi(colon + 1);
            }
        }
        if (pump(p, deadline) != 0) {
            return -1;
        }
    }
}

void proc_close_stdin(struct proc *p)
{
    if (p->in >= 0) {
        close(p->in);
        p->in = -1;
    }
}

static int decode(int status)
{
    if (WIFEXITED(status)) {
        return WEXITSTATUS(status);
    }
    if (WIFSIGNALED(status)) {
        return 128 + WTERMSIG(status);
    }
    return -1;
}

int proc_finish(struct proc *p, int timeout_ms)
{
    long long deadline = proc_now_ms() + timeout_ms;
    proc_close_stdin(p);
    /* Read until both streams end (the program exited, or closed them). */
    while ((p->out >= 0 || p->err >= 0) && pump(p, deadline) == 0) {
    }
    int status;
    for (;;) {
        pid_t r = waitpid(p->pid, &status, WNOHANG);
        if (r == p->pid) {
            p->status = decode(status);
            break;
        }
        if (proc_now_ms() >= deadline) {
            kill(p->pid, SIGKILL);
            waitpid(p->pid, &status, 0);
            p->status = -1;
            break;
        }
        poll(NULL, 0, 5);
    }
    forget(p->pid);
    if (p->out >= 0) {
        close(p->out);
        p->out = -1;
    }
    if (p->err >= 0) {
        close(p->err);
        p->err = -1;
    }
    return p->status;
}

int proc_stop(struct proc *p, int sig, int timeout_ms)
{
    kill(p->pid, sig);
    return proc_finish(p, timeout_ms);
}

int proc_wait_output(struct proc *p, const char *text, int timeout_ms)
{
    long long deadline = proc_now_ms() + timeout_ms;
    while (strstr(p->err_buf, text) == NULL && strstr(p->out_buf, text) == NULL) {
        if (pump(p, deadline) != 0 || (p->out < 0 && p->err < 0)) {
            return -1;
        }
    }
    return 0;
}

int proc_stop_now(struct proc *p, int sig, int timeout_ms)
{
    kill(p->pid, sig);
    /* Two signals sent at once may arrive as one: send the second only once
     * the server says it is draining (or has gone). */
    if (proc_wait_output(p, "stopping:", timeout_ms) == 0) {
        kill(p->pid, sig);
    }
    return proc_finish(p, timeout_ms);
}

int proc_run(struct proc *p, const char *const argv[], const char *stdin_text, int timeout_ms)
{
    if (proc_start(p, argv, NULL, stdin_text != NULL) != 0) {
        return -1;
    }
    if (stdin_text != NULL) {
        size_t len = strlen(stdin_text);
        size_t off = 0;
        while (off < len) {
            ssize_t n = write(p->in, stdin_text + off, len - off);
            if (n <= 0) {
                break;
            }
            off += (size_t)n;
        }
    }
    return proc_finish(p, timeout_ms);
}

static int count_dir(const char *path)
{
    DIR *d = opendir(path);
    if (d == NULL) {
        return -1;
    }
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] != '.') {
            n++;
        }
    }
    closedir(d);
    return n;
}

int proc_fd_count(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/fd", (int)pid);
    return count_dir(path);
}

int proc_thread_count(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
    return count_dir(path);
}

void proc_check_bad_usage(struct proc *p, const char *name, const char *a1, const char *a2,
                          const char *reason)
{
    const char *argv[] = {proc_path(name), a1, a2, NULL};
    assert_int_equal(proc_run(p, argv, NULL, 10000), 2);
    char want[160];
    snprintf(want, sizeof want, "%s: %s\nusage: %s ", name, reason, name);
    if (strncmp(p->err_buf, want, strlen(want)) != 0) {
        fprintf(stderr, "expected stderr to start with:\n%sgot:\n%s\n", want, p->err_buf);
        fail();
    }
    assert_string_equal(p->out_buf, "");
}

void proc_check_common_bad_usage(struct proc *p, const char *name)
{
    proc_check_bad_usage(p, name, "-p", "abc",
                         "port \"abc\": not a number from 0 to 65535: Invalid argument");
    proc_check_bad_usage(p, name, "-p", "70000",
                         "port \"70000\": not a number from 0 to 65535: Invalid argument");
    proc_check_bad_usage(p, name, "-p", "-1",
                         "port \"-1\": not a number from 0 to 65535: Invalid argument");
    proc_check_bad_usage(p, name, "-x", NULL, "unknown option -x");
    proc_check_bad_usage(p, name, "-p", NULL, "option -p needs a value");
}

/* Start name with extra, then "-H" host "-p" "0"; returns the port it
 * says it listens on, after checking it names want_addr ("[::]" ...). */
static int start_with_host(struct proc *p, const char *name, const char *const extra[],
                           const char *host, const char *want_addr)
{
    const char *argv[24];
    int n = 0;
    argv[n++] = proc_path(name);
    for (int i = 0; extra != NULL && extra[i] != NULL && n < 19; i++) {
        argv[n++] = extra[i];
    }
    argv[n++] = "-H";
    argv[n++] = host;
    argv[n++] = "-p";
    argv[n++] = "0";
    argv[n] = NULL;
    assert_int_equal(proc_start(p, argv, NULL, 0), 0);
    int port = proc_wait_listening(p, 10000);
    char want[80];
    snprintf(want, sizeof want, "listening on %s:%d\n", want_addr, port);
    if (port <= 0 || strstr(p->out_buf, want) == NULL) {
        fprintf(stderr, "%s -H \"%s\": wanted \"%s\", it said:\n%s%s\n", name, host, want,
                p->out_buf, p->err_buf);
        proc_abandon(p);
        fail();
    }
    return port;
}

/* Reach port on each of hosts (n of them): connect to each, all before
 * closing any (hello_server serves one client, then stops listening), or
 * for SOCK_DGRAM, a datagram that must come back. */
static void reach(struct proc *p, int type, const char *const hosts[], int n, int port)
{
    int fds[2] = {-1, -1};
    int ok = 1;
    for (int i = 0; i < n && ok; i++) {
        if (type == SOCK_DGRAM) {
            char buf[8];
            fds[i] = netx_udp_connect(hosts[i], (uint16_t)port);
            ok = fds[i] >= 0 && netx_set_timeout(fds[i], 5000) == 0 &&
                 netx_send(fds[i], "here", 4) == 4 && netx_recv(fds[i], buf, sizeof buf) == 4 &&
                 memcmp(buf, "here", 4) == 0;
        } else {
            fds[i] = netx_tcp_connect(hosts[i], (uint16_t)port, 5000);
            ok = fds[i] >= 0;
        }
        if (!ok) {
            fprintf(stderr, "reaching %s port %d: %s\n", hosts[i], port, netx_last_error());
        }
    }
    for (int i = 0; i < n; i++) {
        if (fds[i] >= 0 && type == SOCK_STREAM) {
            /* Leave as a polite client does: our end, then theirs. A close
             * with the server's greeting unread would reset the connection,
             * and a server in the middle of its exchange (hello_server)
             * would fail on it - a race, not what is tested here. */
            char buf[512];
            netx_shutdown(fds[i], SHUT_WR);
            netx_set_timeout(fds[i], 5000);
            for (int k = 0; k < 64 && netx_recv(fds[i], buf, sizeof buf) > 0; k++) {
            }
        }
        if (fds[i] >= 0) {
            netx_close(fds[i]);
        }
    }
    if (!ok) {
        proc_abandon(p);
        fail();
    }
}

void proc_check_server_host(struct proc *p, const char *name, const char *const extra[], int type)
{
    static const char *const with_port[][2] = {
        {"127.0.0.1:80", "use -H 127.0.0.1 -p 80"},
        {"localhost:8080", "use -H localhost -p 8080"},
        {"[::1]:443", "use -H ::1 -p 443"},
        {":80", "use -H '' -p 80"},
    };
    for (size_t i = 0; i < sizeof with_port / sizeof with_port[0]; i++) {
        char reason[128];
        snprintf(reason, sizeof reason, "-H \"%s\" has a port in it: %s", with_port[i][0],
                 with_port[i][1]);
        proc_check_bad_usage(p, name, "-H", with_port[i][0], reason);
    }

    const char *help[] = {proc_path(name), "-h", NULL};
    assert_int_equal(proc_run(p, help, NULL, 10000), 0);
    if (strstr(p->out_buf, "  -H HOST ") == NULL ||
        strstr(p->out_buf, "on (default localhost; '' for every") == NULL) {
        fprintf(stderr, "%s -h does not say what -H '' means:\n%s", name, p->out_buf);
        fail();
    }

    int ipv6 = support_have_ipv6();
    const char *const hosts[] = {"127.0.0.1", "::1"};
    int port = start_with_host(p, name, extra, "", ipv6 ? "[::]" : "0.0.0.0");
    reach(p, type, hosts, ipv6 ? 2 : 1, port);
    assert_int_equal(proc_stop(p, SIGTERM, 10000), 0);

    if (ipv6) {
        port = start_with_host(p, name, extra, "::1", "[::1]");
        reach(p, type, hosts + 1, 1, port);
        assert_int_equal(proc_stop(p, SIGTERM, 10000), 0);
    }
}

void proc_check_echo_client_exact(struct proc *p, const char *port)
{
    const char *echo = proc_path("echo_client");

    /* Lines given as arguments, an empty one among them. */
    const char *argv[] = {echo,    "-H",        "127.0.0.1", "-p",   port,
                          "hello", "two words", "",          "last", NULL};
    assert_int_equal(proc_run(p, argv, NULL, 10000), 0);
    assert_string_equal(p->out_buf, "hello\ntwo words\n\nlast\n");
    assert_string_equal(p->err_buf, "");

    /* Lines read from standard input, the last without its newline. */
    const char *argv2[] = {echo, "-H", "127.0.0.1", "-p", port, NULL};
    assert_int_equal(proc_run(p, argv2, "alpha\n\tbeta gamma\nno newline", 10000), 0);
    assert_string_equal(p->out_buf, "alpha\n\tbeta gamma\nno newline");
    assert_string_equal(p->err_buf, "");
}
