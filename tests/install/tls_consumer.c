/*
 * tls_consumer.c - a program outside the libnetx tree that uses TLS, built
 * against an installed copy with `pkg-config --cflags --libs netx-tls`.
 * tests/install.sh (with TLS=1) runs it to prove that netx_tls.h,
 * libnetx_tls and netx-tls.pc are installed and work together.
 *
 * A TLS client and a plain server that is not TLS: the handshake must fail
 * with the library's errno and sentence - which needs both libraries and
 * OpenSSL, found through netx-tls.pc alone. Exit status 0 when it does.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <netx_tls.h>
#include <stdio.h>
#include <string.h>

int main(void)
{
    netx_tls_config *c = netx_tls_client_config();
    int lfd = netx_tcp_listen("127.0.0.1", 0, 1);
    int fd = lfd >= 0 ? netx_tcp_connect("127.0.0.1", (uint16_t)netx_local_port(lfd), 2000) : -1;
    int sfd = fd >= 0 ? netx_accept(lfd, NULL) : -1;
    if (c == NULL || sfd < 0) {
        printf("FAIL - set-up: %s\n", netx_last_error());
        return 1;
    }
    /* The "server" says something that is not TLS and closes. */
    netx_send_all(sfd, "not tls\n", 8);
    netx_close(sfd);
    netx_tls *t = netx_tls_connect(c, fd, "127.0.0.1", 2000);
    int ok = t == NULL && errno == EPROTO &&
             strstr(netx_last_error(), "tls handshake with 127.0.0.1:") != NULL;
    printf("%s - a TLS client refuses a peer that is not TLS: %s\n", ok ? "ok" : "FAIL",
           netx_last_error());
    netx_tls_close(t);
    netx_tls_config_free(c);
    netx_close(lfd);
    return ok ? 0 : 1;
}
