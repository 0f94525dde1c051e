/*
 * proc.h - start the example programs (and outside programs such as
 * python3, nc, socat) from a test, talk to them, and collect what they
 * printed and how they ended. Every wait here has a deadline; a program
 * still running at the end is killed by its PID.
 */
#ifndef NETX_TEST_PROC_H
#define NETX_TEST_PROC_H

#include <stddef.h>
#include <sys/types.h>

#define PROC_OUT_MAX (256 * 1024)

struct proc {
    pid_t pid;
    int in;  /* write end of its standard input, or -1 */
    int out; /* read end of its standard output, -1 once at end */
    int err; /* read end of its standard error, -1 once at end */
    size_t out_len, err_len;
    char out_buf[PROC_OUT_MAX + 1]; /* all it printed so far, NUL-terminated */
    char err_buf[PROC_OUT_MAX + 1];
    int status; /* its exit code; 128+N if killed by signal N; -1 while running */
};

/* The path of an example program in this build ("build/examples/NAME"). */
const char *proc_example(const char *name, char *buf, size_t cap);

/*
 * proc_example(name) in one of four static buffers used in turn, so that
 * one argv may name up to four programs without a buffer of its own.
 */
const char *proc_path(const char *name);

/* Monotonic time in milliseconds: for deadlines. */
long long proc_now_ms(void);

/* Milliseconds left until deadline (from proc_now_ms()), never negative:
 * a poll() timeout. */
int proc_ms_until(long long deadline);

/* port as decimal text in buf (for an argv); returns buf. */
const char *proc_port_text(int port, char *buf, size_t cap);

/*
 * Start argv[0] (a path, or a command looked up in PATH) with the given
 * arguments. With stdin_pipe, its standard input is a pipe you write to
 * through p->in; otherwise it reads /dev/null. Extra environment settings
 * "NAME=value" may be given in env (NULL-terminated, or NULL).
 * Returns 0, or -1 if it could not be started.
 *
 * Every program started is remembered until proc_finish() collects it, so
 * that one a failed assertion left running can be killed by
 * proc_abandon() or proc_kill_leftovers() instead of living on.
 */
int proc_start(struct proc *p, const char *const argv[], const char *const env[], int stdin_pipe);

/* Wait up to timeout_ms for a line "listening on ADDR:PORT" on its stdout;
 * returns PORT, or -1 (the program's output stays in p for the message). */
int proc_wait_listening(struct proc *p, int timeout_ms);

/* Close its standard input (the program sees end of file). */
void proc_close_stdin(struct proc *p);

/* Read its output until it exits, for at most timeout_ms; then SIGKILL it.
 * Returns p->status (-1 if it had to be killed). */
int proc_finish(struct proc *p, int timeout_ms);

/* Send a signal, then proc_finish(). */
int proc_stop(struct proc *p, int sig, int timeout_ms);

/* Read its output until text appears on stdout or stderr: 0, or -1 after
 * timeout_ms or when both streams have ended without it. */
int proc_wait_output(struct proc *p, const char *text, int timeout_ms);

/*
 * Stop a server at once, as a user does with two Ctrl-C: the first signal
 * starts a graceful stop, and once the server says "stopping:" (it is
 * draining) the second stops it. A server with nothing to drain exits at
 * the first. Then proc_finish().
 */
int proc_stop_now(struct proc *p, int sig, int timeout_ms);

/* Start, feed stdin_text (NULL: none), and finish: for programs that run
 * to completion. Returns the exit status, or -1. */
int proc_run(struct proc *p, const char *const argv[], const char *stdin_text, int timeout_ms);

/*
 * Kill, by its PID, the program in p if it was started and not yet
 * collected (a failed test left it behind), and reap it. Its pipes are
 * kept open, not closed: the descriptor check of the test now running
 * counted them at its start. proc_kill_leftovers() closes them. Does
 * nothing when p holds no running program.
 */
void proc_abandon(struct proc *p);

/*
 * A cmocka group teardown: SIGKILL and reap every started program not
 * yet collected, then close the pipes proc_abandon() kept. Only a child
 * that waitpid() still reports as ours is killed: a PID already reaped
 * may belong to someone else by now. Always returns 0.
 */
int proc_kill_leftovers(void **state);

/* 1 if cmd is found in PATH. */
int proc_have(const char *cmd);

/* Skip the current cmocka test, saying "skipped: CMD is not installed, so
 * WHY" on stderr, when cmd is not in PATH. */
void proc_skip_without(const char *cmd, const char *why);

/*
 * Run the example `name` with the arguments a1 and a2 (a2 may be NULL)
 * through p, and check it rejects them as a bad command line should: exit
 * 2, nothing on stdout, and stderr starting "NAME: REASON\nusage: NAME ".
 * It must end within 10 seconds (generous: it should refuse at once).
 */
void proc_check_bad_usage(struct proc *p, const char *name, const char *a1, const char *a2,
                          const char *reason);

/* The bad command lines every example rejects alike, each checked with
 * proc_check_bad_usage(): -p abc, -p 70000, -p -1, -x, and -p alone. */
void proc_check_common_bad_usage(struct proc *p, const char *name);

/*
 * The rules for -H that every server shares, checked on the server name
 * through p. extra holds the other arguments it needs to start
 * (NULL-terminated, or NULL); type is SOCK_STREAM, or SOCK_DGRAM for a
 * server that echoes datagrams (udp_server).
 *   - A host with a port in it ("127.0.0.1:80", "localhost:8080",
 *     "[::1]:443", ":80") is a bad command line whose line says to give
 *     the port with -p (proc_check_bad_usage()).
 *   - Its -h says what '' means.
 *   - -H '' listens on every interface: it prints the wildcard address
 *     ("[::]", or "0.0.0.0" without IPv6), and is reached on 127.0.0.1
 *     and on ::1. SIGTERM then stops it with status 0.
 *   - With IPv6, -H ::1 is an address, not a host and a port: it listens
 *     on [::1].
 */
void proc_check_server_host(struct proc *p, const char *name, const char *const extra[], int type);

/*
 * Run our echo_client through p against an echo server on 127.0.0.1:port
 * (text), twice: lines given as arguments (an empty one among them), then
 * lines on its standard input (the last without its newline). Each run
 * must exit 0 within 10 seconds, print exactly what it sent, and say
 * nothing on stderr.
 */
void proc_check_echo_client_exact(struct proc *p, const char *port);

/* The number of open descriptors of a running process (/proc/PID/fd), or -1. */
int proc_fd_count(pid_t pid);

/* The number of threads of a running process (/proc/PID/task), or -1. */
int proc_thread_count(pid_t pid);

#endif
