/*
 * fault.h - fault injection for what loopback cannot produce on demand:
 * short transfers, EINTR, EAGAIN, resets.
 *
 * The test binaries are linked with -Wl,--wrap=send (and recvmsg, sendto,
 * connect, accept4, poll, close), so every call the library makes to those
 * functions goes through __wrap_send() in fault.c first. With no script
 * armed, a wrapper just calls the real function. A script is a list of
 * steps; each call of that function on that descriptor takes the next step,
 * and once the steps run out the calls pass through again.
 */
#ifndef NETX_TEST_FAULT_H
#define NETX_TEST_FAULT_H

#include <stddef.h>

enum fault_call {
    FAULT_SEND,    /* send(2), used by netx_send() */
    FAULT_RECV,    /* recvmsg(2), used by netx_recv() and netx_recvfrom() */
    FAULT_SENDTO,  /* sendto(2), used by netx_sendto() */
    FAULT_CONNECT, /* connect(2) */
    FAULT_ACCEPT,  /* accept4(2) */
    FAULT_POLL,    /* poll(2) */
    FAULT_CLOSE,   /* close(2) */
    FAULT_NCALLS
};

enum fault_kind {
    FAULT_PASS,   /* call the real function unchanged */
    FAULT_SHORT,  /* transfer at most arg bytes (send/recv/sendto) */
    FAULT_EINTR,  /* fail with EINTR; for connect and close, after doing the
                     real call, as a signal arriving mid-call does */
    FAULT_EAGAIN, /* fail with EAGAIN without calling the real function */
    FAULT_ERRNO   /* fail with errno = arg without calling the real function */
};

struct fault_step {
    enum fault_kind kind;
    size_t arg;
};

/* Arm a script for call on fd (-1: any descriptor). The steps are copied.
 * Arming again replaces the script for that call. */
void fault_script(enum fault_call call, int fd, const struct fault_step *steps, size_t n);

/* Disarm every script and zero the counters. */
void fault_reset(void);

/* How many times call was made (armed or not) since the last reset. */
unsigned fault_count(enum fault_call call);

/* How many steps of call's script are still to be taken. */
size_t fault_pending(enum fault_call call);

#endif
