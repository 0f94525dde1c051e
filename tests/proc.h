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
 * Start argv[0] (a path, or a command looked up in PATH) with the given
 * arguments. With stdin_pipe, its standard input is a pipe you write to
 * through p->in; otherwise it reads /dev/null. Extra environment settings
 * "NAME=value" may be given in env (NULL-terminated, or NULL).
 * Returns 0, or -1 if it could not be started.
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

/* Start, feed stdin_text (NULL: none), and finish: for programs that run
 * to completion. Returns the exit status, or -1. */
int proc_run(struct proc *p, const char *const argv[], const char *stdin_text, int timeout_ms);

/* 1 if cmd is found in PATH. */
int proc_have(const char *cmd);

/* The number of open descriptors of a running process (/proc/PID/fd), or -1. */
int proc_fd_count(pid_t pid);

/* The number of threads of a running process (/proc/PID/task), or -1. */
int proc_thread_count(pid_t pid);

#endif
