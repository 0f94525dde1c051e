/*
 * consumer.c - a program outside the libnetx tree, built against an
 * installed copy with `pkg-config --cflags --libs netx`. tests/install.sh
 * runs it to prove that what `make install` puts in place is complete and
 * works: it uses only <netx.h> and libc.
 *
 * Each check prints "ok - <what>" or "FAIL - <what>: <netx_last_error()>";
 * the exit status is the number of failures.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <netx.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define MIB (1024 * 1024)

static int failures;
static int checks;

static void check(int ok, const char *what)
{
    checks++;
    if (ok) {
        printf("ok - %s\n", what);
    } else {
        printf("FAIL - %s: %s\n", what, netx_last_error());
        failures++;
    }
}

/* The child side of the TCP checks: take 1 MiB, send it back, close. */
static void echo_child(int lfd)
{
    static unsigned char buf[MIB];
    int c = netx_accept(lfd, NULL);
    if (c < 0 || netx_recv_all(c, buf, MIB) != MIB || netx_send_all(c, buf, MIB) != 0) {
        _exit(1);
    }
    netx_close(c);
    _exit(0);
}

static void tcp_checks(void)
{
    static unsigned char out[MIB], in[MIB];
    char want[64];

    int lfd = netx_tcp_listen("localhost", 0, 0);
    check(lfd >= 0, "listen on localhost port 0");
    if (lfd < 0) {
        return;
    }
    int port = netx_local_port(lfd);
    check(port > 0, "netx_local_port tells the chosen port");

    pid_t pid = fork();
    if (pid == 0) {
        echo_child(lfd);
    }
    int fd = netx_tcp_connect("127.0.0.1", (uint16_t)port, 2000);
    check(fd >= 0, "dial the localhost listener at 127.0.0.1");
    for (size_t i = 0; i < MIB; i++) {
        out[i] = (unsigned char)(i * 7 + i / 251);
    }
    check(netx_send_all(fd, out, MIB) == 0, "send 1 MiB with netx_send_all");
    check(netx_recv_all(fd, in, MIB) == MIB && memcmp(in, out, MIB) == 0,
          "receive the same 1 MiB with netx_recv_all");
    char byte;
    check(netx_recv(fd, &byte, 1) == 0, "see end of stream when the peer closes");

    /* The peer is gone: writing must fail with an error, not kill us. */
    int rc = 0;
    for (int i = 0; i < 50 && rc == 0; i++) {
        rc = netx_send_all(fd, out, 4096);
    }
    check(rc == -1 && (errno == EPIPE || errno == ECONNRESET),
          "EPIPE/ECONNRESET (no SIGPIPE) writing to a closed peer");
    netx_close(fd);
    int status = 0;
    waitpid(pid, &status, 0);
    check(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the echo child moved every byte");

    /* Nobody accepts this second connection's data: the timeout fires. */
    fd = netx_tcp_connect("localhost", (uint16_t)port, 2000);
    check(fd >= 0 && netx_set_timeout(fd, 200) == 0, "set a 200 ms timeout");
    check(netx_recv(fd, &byte, 1) == -1 && errno == ETIMEDOUT, "recv times out with ETIMEDOUT");
    netx_close(fd);
    netx_close(lfd);

    /* The port is closed now: the refusal names host and port. */
    snprintf(want, sizeof want, "localhost:%d", port);
    check(netx_tcp_connect("localhost", (uint16_t)port, 2000) == -1 &&
              strstr(netx_last_error(), want) != NULL,
          "a refused connect names host and port");
    check(netx_tcp_connect("no-such-host.invalid", 80, 2000) == -1 &&
              strstr(netx_last_error(), "no-such-host.invalid") != NULL,
          "an unknown host is named in the error");
}

static void udp_checks(void)
{
    char buf[64];
    netx_addr from;

    int server = netx_udp_bind("localhost", 0);
    check(server >= 0, "bind a UDP socket on localhost port 0");
    int port = netx_local_port(server);
    int client = netx_udp_connect("localhost", (uint16_t)port);
    check(client >= 0, "connect a UDP socket to it");
    check(netx_send(client, "hello", 5) == 5, "send a datagram");
    ssize_t n = netx_recvfrom(server, buf, sizeof buf, &from);
    check(n == 5 && memcmp(buf, "hello", 5) == 0, "recvfrom gets it whole");
    check(netx_sendto(server, buf, (size_t)n, &from) == 5, "sendto echoes it back");
    check(netx_recv(client, buf, sizeof buf) == 5 && memcmp(buf, "hello", 5) == 0,
          "the client receives the echo");
    netx_close(client);
    netx_close(server);
}

int main(void)
{
    struct sigaction before;
    sigaction(SIGPIPE, NULL, &before);
    tcp_checks();
    udp_checks();
    struct sigaction after;
    sigaction(SIGPIPE, NULL, &after);
    check(before.sa_handler == after.sa_handler, "SIGPIPE's disposition is untouched");
    printf("%d passed, %d failed\n", checks - failures, failures);
    return failures;
}
