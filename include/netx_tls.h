/*
 * netx_tls.h - libnetx_tls: the article's guide step 7, TLS over a libnetx
 * socket, safe by default.
 *
 * A separate library (libnetx_tls, built by `make TLS=1`, on OpenSSL 3), so
 * that a program that does not use TLS never links OpenSSL. Link with
 * `pkg-config --libs netx-tls`.
 *
 * The shape is libnetx's: make a configuration once (client or server),
 * then wrap each connected socket - the one netx_tcp_connect() or
 * netx_accept() gave you - and send and receive through the wrapper, with
 * the same return values, errno and sentences as netx_send() and
 * netx_recv(). The promises hold over TLS too:
 *
 *  - The client checks the server's certificate chain against the system's
 *    CAs (or a CA file) and its name (a host name or an IP literal), sends
 *    SNI (never for an IP literal), and speaks TLS 1.2 or later. Turning
 *    the check off is one loudly named call, and the trace warns about it.
 *  - A failure is -1 and errno, and one sentence naming the step, the
 *    address and OpenSSL's reason, the verify result included:
 *    "tls handshake with localhost:8443 (127.0.0.1): certificate verify
 *    failed: unable to get local issuer certificate". TLS failures are
 *    EPROTO; timeouts ETIMEDOUT (in the handshake too); a peer that went
 *    away EPIPE or ECONNRESET; a stop signal ECANCELED (netx_stop_on()).
 *  - No SIGPIPE: the library sends with MSG_NOSIGNAL, never write(2).
 *  - EINTR is retried; a stop signal ends every wait.
 *  - Truncation is never silent: a peer that closes the connection without
 *    TLS's close_notify is an error (EPROTO), not an end of stream, unless
 *    the configuration allows it (netx_tls_config_allow_truncation()).
 *  - Trace mode shows the handshake: version, cipher, verified subject.
 *
 * Blocking and non-blocking: on a blocking socket each call waits (in
 * poll(2), bounded by the socket's timeouts from netx_set_timeout() and by
 * the call's own, if it has one). On a non-blocking socket - an event loop -
 * a call that would wait fails with EAGAIN instead, and netx_tls_wants()
 * says what to wait for: a TLS read may need the socket WRITABLE (a
 * handshake message to send) and a write READABLE. And bytes that TLS has
 * already decrypted wait inside the library, where poll cannot see them:
 * netx_tls_pending() counts them; read them before you wait again.
 *
 * A netx_tls belongs to one thread at a time; configurations may be shared
 * by any number of threads once made.
 *
 * ENVIRONMENT
 *   SSL_CERT_FILE, SSL_CERT_DIR  OpenSSL's: the CAs a client configuration
 *                trusts, instead of the system's (netx_tls_client_config()).
 *   NETX_TRACE   as for libnetx (netx(3)); trace mode also shows each
 *                handshake: the version, the cipher, the verified subject.
 *
 * EXAMPLE
 *   A TLS client: it sends a line to localhost:8443 and prints the answer,
 *   after checking the server's certificate against the CA in ca.pem and
 *   its name, localhost. The tls_server example is such a server. Build it
 *   with cc -std=c11 client.c $(pkg-config --cflags --libs netx-tls).
 *
 *     #define _POSIX_C_SOURCE 200809L
 *     #include <netx_tls.h>
 *     #include <stdio.h>
 *
 *     int main(void)
 *     {
 *         netx_tls_config *cfg = netx_tls_client_config();
 *         if (cfg == NULL || netx_tls_config_ca_file(cfg, "ca.pem") == -1) {
 *             netx_perror("client");
 *             netx_tls_config_free(cfg);
 *             return 1;
 *         }
 *         netx_tls *t = NULL;
 *         int fd = netx_tcp_connect("localhost", 8443, 5000);
 *         if (fd != -1) {
 *             t = netx_tls_connect(cfg, fd, "localhost", 5000);
 *         }
 *         netx_tls_config_free(cfg); // t keeps what it needs
 *         char buf[4096];
 *         ssize_t n = -1;
 *         if (t != NULL && netx_tls_send_all(t, "hello\n", 6) == 0) {
 *             n = netx_tls_recv(t, buf, sizeof buf);
 *         }
 *         if (n == -1) {
 *             // client: tls handshake with localhost:8443 (127.0.0.1):
 *             // certificate verify failed: ...
 *             netx_perror("client");
 *         } else {
 *             fwrite(buf, 1, (size_t)n, stdout);
 *         }
 *         netx_tls_close(t); // close_notify, then close; NULL is fine
 *         return n > 0 ? 0 : 1;
 *     }
 *
 * SEE ALSO
 *   netx(3), ssl(7).
 */
#ifndef NETX_TLS_H
#define NETX_TLS_H

#include "netx.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------
 * Guide step 7: TLS configurations
 * ------------------------------------------------------------------------ */

/*
 * netx_tls_config - what every connection made from it has in common:
 * client or server, what it trusts, its certificate (server). Opaque.
 *
 * EXAMPLE: see netx_tls_client_config()
 */
typedef struct netx_tls_config netx_tls_config;

/*
 * netx_tls_client_config - a client configuration, safe by default: the
 * server's certificate is checked against the system's trusted CAs (or the
 * files SSL_CERT_FILE and SSL_CERT_DIR name), its name against the host
 * given to netx_tls_connect(), TLS 1.2 at least.
 *
 * RETURN VALUE
 *   The configuration (free it with netx_tls_config_free()), or NULL with
 *   errno set: ENOMEM, EPROTO (OpenSSL could not make it; the sentence
 *   says why).
 *
 * EXAMPLE
 *     // A client that trusts a private CA (ca.pem) and checks that the
 *     // server is "localhost"; then it says what the handshake agreed on.
 *     netx_tls *dial_localhost(uint16_t port)
 *     {
 *         netx_tls_config *cfg = netx_tls_client_config();
 *         if (cfg == NULL || netx_tls_config_ca_file(cfg, "ca.pem") == -1) {
 *             netx_tls_config_free(cfg);
 *             return NULL;
 *         }
 *         netx_tls *t = NULL;
 *         int fd = netx_tcp_connect("localhost", port, 5000);
 *         if (fd != -1) {
 *             // From here t owns fd (and on failure fd is closed).
 *             t = netx_tls_connect(cfg, fd, "localhost", 5000);
 *         }
 *         netx_tls_config_free(cfg); // t keeps what it needs
 *         if (t != NULL) {
 *             printf("%s %s, server %s\n", netx_tls_version(t),
 *                    netx_tls_cipher(t), netx_tls_peer_subject(t));
 *         }
 *         return t;
 *     }
 */
NETX_API netx_tls_config *netx_tls_client_config(void);

/*
 * netx_tls_server_config - a server configuration: the certificate chain
 * (PEM, leaf first) and its private key (PEM), TLS 1.2 at least.
 *
 * RETURN VALUE
 *   The configuration, or NULL with errno set and a sentence naming the
 *   file: "tls server config: certificate server.pem: No such file or
 *   directory", "... key key.pem: does not match the certificate".
 *
 * ERRORS
 *   ENOENT, EACCES  a file cannot be read.
 *   EPROTO  a file is not PEM, or the key does not match the certificate.
 *   EINVAL  cert_file or key_file is NULL.
 *
 * EXAMPLE
 *     // A TLS server that greets each client, one at a time.
 *     int tls_greeter(uint16_t port)
 *     {
 *         netx_tls_config *cfg;
 *         cfg = netx_tls_server_config("cert.pem", "key.pem");
 *         if (cfg == NULL) {
 *             // tls server config: certificate cert.pem: No such file or ...
 *             netx_perror(NULL);
 *             return -1;
 *         }
 *         int server = netx_tcp_listen(NULL, port, 0);
 *         while (server != -1) {
 *             int fd = netx_accept(server, NULL);
 *             if (fd == -1) {
 *                 break;
 *             }
 *             netx_tls *t = netx_tls_accept(cfg, fd, 5000); // owns fd now
 *             if (t == NULL) {
 *                 netx_perror("handshake"); // fd is closed already
 *                 continue;
 *             }
 *             netx_tls_send_all(t, "hello\n", 6);
 *             netx_tls_close(t); // close_notify, then close fd
 *         }
 *         netx_close(server);
 *         netx_tls_config_free(cfg);
 *         return -1;
 *     }
 */
NETX_API netx_tls_config *netx_tls_server_config(const char *cert_file, const char *key_file);

/*
 * netx_tls_config_ca_file - trust the CA certificates in file (PEM) instead
 * of the system's (a client), for a private CA or a test.
 *
 * RETURN VALUE
 *   0, or -1 with errno set (ENOENT, EACCES, EPROTO: not PEM; EINVAL).
 *
 * EXAMPLE: see netx_tls_client_config()
 */
NETX_API int netx_tls_config_ca_file(netx_tls_config *c, const char *file);

/*
 * netx_tls_config_insecure_no_verify - DANGER: do not check the server's
 * certificate or name. Anyone between client and server can then read and
 * change everything: the connection is encrypted, to whoever answered.
 * Only for tests against a server whose certificate cannot be checked.
 * Every handshake made with it prints a warning in trace mode.
 *
 * RETURN VALUE
 *   0, or -1 with errno EINVAL (c is NULL or a server configuration).
 *
 * EXAMPLE
 *     // A test against a server whose certificate cannot be checked.
 *     // Anyone in between could read and change everything: never use it in
 *     // a real client.
 *     netx_tls *dial_test_server(int fd)
 *     {
 *         netx_tls_config *cfg = netx_tls_client_config();
 *         if (cfg == NULL ||
 *             netx_tls_config_insecure_no_verify(cfg) == -1) {
 *             netx_tls_config_free(cfg);
 *             netx_close(fd);
 *             return NULL;
 *         }
 *         netx_tls *t = netx_tls_connect(cfg, fd, "localhost", 5000);
 *         netx_tls_config_free(cfg);
 *         return t;
 *     }
 */
NETX_API int netx_tls_config_insecure_no_verify(netx_tls_config *c);

/*
 * netx_tls_config_allow_truncation - accept a peer that closes the
 * connection without close_notify as a plain end of stream (0 from
 * netx_tls_recv()). Only for peers known to do so, and a protocol that
 * finds a cut itself (a length before the data, HTTP's Content-Length):
 * otherwise an attacker who cuts the connection cuts the data, unseen.
 *
 * RETURN VALUE
 *   0, or -1 with errno EINVAL (c is NULL).
 *
 * EXAMPLE
 *     // For HTTP/1.0 servers that close without close_notify: the body's
 *     // Content-Length finds a cut instead, so a close may end the stream.
 *     netx_tls_config *http10_config(void)
 *     {
 *         netx_tls_config *cfg = netx_tls_client_config();
 *         if (cfg != NULL && netx_tls_config_allow_truncation(cfg) == -1) {
 *             netx_tls_config_free(cfg);
 *             return NULL;
 *         }
 *         return cfg;
 *     }
 */
NETX_API int netx_tls_config_allow_truncation(netx_tls_config *c);

/*
 * netx_tls_config_free - free a configuration. Connections made from it
 * keep what they need and may outlive it. NULL is allowed.
 *
 * EXAMPLE: see netx_tls_client_config()
 */
NETX_API void netx_tls_config_free(netx_tls_config *c);

/* ------------------------------------------------------------------------
 * Guide step 7: TLS connections
 * ------------------------------------------------------------------------ */

/*
 * netx_tls - one TLS connection over a connected socket. Opaque.
 */
typedef struct netx_tls netx_tls;

/*
 * netx_tls_connect - TLS client over the connected socket fd: the
 * handshake with host, its certificate and name checked.
 *
 *   host        the server's name as the client knows it ("localhost",
 *               "example.org", or an IP literal "127.0.0.1", "::1"): sent
 *               as SNI (not for an IP literal) and checked against the
 *               certificate. Not NULL or empty - that would check nothing.
 *   timeout_ms  the longest the handshake may take; 0 or less: only the
 *               socket's own timeouts bound it.
 *
 * The connection owns fd from now on: netx_tls_close() closes it, and on
 * failure it is closed already. On a non-blocking socket, netx_tls_connect()
 * only starts: it returns the connection, and netx_tls_handshake() finishes
 * the handshake when the socket is ready.
 *
 * RETURN VALUE
 *   The connection, or NULL with errno set.
 *
 * ERRORS
 *   EPROTO     the handshake failed: the certificate was not trusted, for
 *              another name, expired; the server speaks no TLS, or no
 *              version or cipher in common. The sentence gives OpenSSL's
 *              reason and the verify result; when the answer was not TLS
 *              at all, it adds "(does the server speak TLS on this port?)".
 *   ETIMEDOUT  the handshake took longer than timeout_ms (or a socket
 *              timeout).
 *   ECONNRESET, EPIPE  the server went away.
 *   ECANCELED  a stop signal.
 *   EINVAL     c is NULL or a server configuration, host is NULL or empty.
 *   ENOMEM.
 *
 * EXAMPLE: see netx_tls_client_config()
 */
NETX_API netx_tls *netx_tls_connect(netx_tls_config *c, int fd, const char *host,
                                    int timeout_ms);

/*
 * netx_tls_accept - TLS server over the socket fd that netx_accept() gave:
 * the handshake with the client.
 *
 * As netx_tls_connect() in all else: the connection owns fd; on a
 * non-blocking socket it only starts, and netx_tls_handshake() finishes.
 * A client that connects and never finishes its handshake is bounded by
 * timeout_ms: give one.
 *
 * RETURN VALUE, ERRORS
 *   As netx_tls_connect(). A client that speaks plain TCP gives EPROTO
 *   ("... wrong version number" or "http request").
 *
 * EXAMPLE: see netx_tls_server_config()
 */
NETX_API netx_tls *netx_tls_accept(netx_tls_config *c, int fd, int timeout_ms);

/*
 * netx_tls_handshake - go on with the handshake of a connection on a
 * non-blocking socket (see netx_tls_connect()). On a blocking socket the
 * handshake is over when connect or accept returns, and this returns 0.
 *
 * RETURN VALUE
 *   0 once the handshake is done; -1 with errno EAGAIN when it must wait
 *   (netx_tls_wants() says for what); -1 with another errno when it failed
 *   (as netx_tls_connect()): close the connection.
 *
 * EXAMPLE
 *     #include <errno.h>
 *
 *     // A non-blocking TLS connection in an event loop, when the poller
 *     // reports it: finish the handshake, then read. Wait for what TLS
 *     // wants, and read what it already holds before waiting. -1: close it.
 *     int tls_ready(netx_poller *p, netx_tls *t)
 *     {
 *         char buf[4096];
 *         if (netx_tls_handshake(t) == 0) {
 *             do {
 *                 ssize_t n = netx_tls_recv(t, buf, sizeof buf);
 *                 if (n == -1 && errno == EAGAIN) {
 *                     break;
 *                 }
 *                 if (n <= 0) {
 *                     return -1; // the end, or an error
 *                 }
 *                 fwrite(buf, 1, (size_t)n, stdout);
 *             } while (netx_tls_pending(t) > 0); // unseen by the poller
 *         } else if (errno != EAGAIN) {
 *             return -1; // the handshake failed
 *         }
 *         unsigned want = netx_tls_wants(t); // 0: the last call did not wait
 *         if (want == 0) {
 *             want = NETX_READABLE;
 *         }
 *         return netx_poller_mod(p, netx_tls_fd(t), want, t);
 *     }
 */
NETX_API int netx_tls_handshake(netx_tls *t);

/*
 * netx_tls_send - send up to len bytes once (SSL_write): the number taken
 * may be fewer than len, as for netx_send().
 *
 * On a non-blocking socket a call that fails with EAGAIN must be repeated
 * with the same buf and len (TLS has already encrypted part of them).
 *
 * RETURN VALUE
 *   The number of bytes taken (1 to len; 0 when len is 0), or -1 with errno
 *   set: EPIPE, ECONNRESET, ETIMEDOUT, EAGAIN, ECANCELED, EPROTO, EINVAL.
 *
 * EXAMPLE
 *     // What netx_tls_send_all() does for you: netx_tls_send() may take
 *     // fewer bytes than it is given.
 *     int tls_send_everything(netx_tls *t, const char *p, size_t len)
 *     {
 *         while (len > 0) {
 *             ssize_t n = netx_tls_send(t, p, len);
 *             if (n == -1) {
 *                 return -1;
 *             }
 *             p += n;
 *             len -= (size_t)n;
 *         }
 *         return 0;
 *     }
 */
NETX_API ssize_t netx_tls_send(netx_tls *t, const void *buf, size_t len);

/*
 * netx_tls_recv - receive what has arrived, up to cap bytes (SSL_read).
 *
 * RETURN VALUE
 *   The number of bytes (1 to cap); 0 at the end of the stream - the peer
 *   sent close_notify (or closed without it, when the configuration allows
 *   truncation), or cap is 0; -1 with errno set.
 *
 * ERRORS
 *   EPROTO      the peer closed the connection without close_notify: the
 *               data may have been cut short ("... closed without
 *               close_notify: the data may be cut short"); or the stream
 *               is not valid TLS.
 *   ECONNRESET, ETIMEDOUT, EAGAIN, ECANCELED, EINVAL.
 *
 * EXAMPLE
 *     // Print what the server sends until its close_notify (0). A
 *     // connection cut without one is an error, EPROTO: data may be lost.
 *     int print_all(netx_tls *t)
 *     {
 *         char buf[4096];
 *         for (;;) {
 *             ssize_t n = netx_tls_recv(t, buf, sizeof buf);
 *             if (n <= 0) {
 *                 return (int)n;
 *             }
 *             fwrite(buf, 1, (size_t)n, stdout);
 *         }
 *     }
 */
NETX_API ssize_t netx_tls_recv(netx_tls *t, void *buf, size_t cap);

/*
 * netx_tls_send_all - send every one of len bytes (as netx_send_all()).
 * On a non-blocking socket it waits for the socket with poll(2), for at
 * most its send timeout.
 *
 * RETURN VALUE
 *   0, or -1 with errno set; netx_last_transferred() then says how many
 *   bytes went.
 *
 * EXAMPLE
 *     // A fixed-size exchange over TLS: 16 bytes out, 16 bytes back.
 *     int exchange(netx_tls *t, const unsigned char req[16],
 *                  unsigned char ans[16])
 *     {
 *         if (netx_tls_send_all(t, req, 16) == -1) {
 *             return -1;
 *         }
 *         // Fewer than 16 bytes back: the server ended the stream first.
 *         return netx_tls_recv_all(t, ans, 16) == 16 ? 0 : -1;
 *     }
 */
NETX_API int netx_tls_send_all(netx_tls *t, const void *buf, size_t len);

/*
 * netx_tls_recv_all - receive exactly len bytes unless the stream ends
 * first (as netx_recv_all()).
 *
 * RETURN VALUE
 *   len, fewer at end of stream, or -1 with errno set (then
 *   netx_last_transferred() says how many bytes are in buf).
 *
 * EXAMPLE: see netx_tls_send_all()
 */
NETX_API ssize_t netx_tls_recv_all(netx_tls *t, void *buf, size_t len);

/*
 * netx_tls_reader_init - a netx_reader that reads through t: lines
 * (netx_read_line()) and exact sizes (netx_read_n()) over TLS, with
 * storage as for netx_reader_init().
 *
 * RETURN VALUE
 *   0, or -1 with errno EINVAL.
 *
 * EXAMPLE
 *     // Print the lines a TLS peer sends, until it ends the stream.
 *     int print_tls_lines(netx_tls *t)
 *     {
 *         char storage[4096], line[1024];
 *         netx_reader r;
 *         if (netx_tls_reader_init(&r, t, storage, sizeof storage) == -1) {
 *             return -1;
 *         }
 *         for (;;) {
 *             ssize_t n = netx_read_line(&r, line, sizeof line);
 *             if (n <= 0) {
 *                 return (int)n;
 *             }
 *             fputs(line, stdout);
 *         }
 *     }
 */
NETX_API int netx_tls_reader_init(netx_reader *r, netx_tls *t, void *storage, size_t cap);

/*
 * netx_tls_writer_init - a netx_writer that sends through t, for an event
 * loop: what TLS cannot take now is kept (up to cap bytes) and handed to
 * TLS again, from its first byte, by netx_writer_flush(). Use it on a
 * non-blocking socket; when bytes stay pending, wait for what
 * netx_tls_wants() says (usually NETX_WRITABLE) - asked right after the
 * flush, since it answers for the last TLS call, which a read since would
 * have changed.
 *
 * RETURN VALUE
 *   0, or -1 with errno EINVAL.
 *
 * EXAMPLE
 *     // The output of a non-blocking TLS connection in an event loop.
 *     int tls_out_init(netx_writer *w, netx_tls *t)
 *     {
 *         return netx_tls_writer_init(w, t, 65536);
 *     }
 *
 *     // Queue a reply. With bytes left pending, flush once more, so that
 *     // the last TLS call is a send, and wait for what that send wants.
 *     int tls_reply(netx_poller *p, netx_tls *t, netx_writer *w,
 *                   const char *msg, size_t len)
 *     {
 *         if (netx_writer_send(w, msg, len) == -1) {
 *             return -1;
 *         }
 *         if (netx_writer_pending(w) > 0 && netx_writer_flush(w) == -1) {
 *             return -1;
 *         }
 *         unsigned want = NETX_READABLE;
 *         if (netx_writer_pending(w) > 0) {
 *             unsigned tls = netx_tls_wants(t); // usually NETX_WRITABLE
 *             want |= tls != 0 ? tls : NETX_WRITABLE;
 *         }
 *         return netx_poller_mod(p, netx_tls_fd(t), want, t);
 *     }
 */
NETX_API int netx_tls_writer_init(netx_writer *w, netx_tls *t, size_t cap);

/*
 * netx_tls_wants - after a call failed with EAGAIN: what the socket must
 * be before calling again, NETX_READABLE or NETX_WRITABLE (it may be the
 * other way round from the call: a read that has a handshake message to
 * send wants the socket writable). 0 when the last call did not wait.
 *
 * EXAMPLE: see netx_tls_handshake()
 */
NETX_API unsigned netx_tls_wants(const netx_tls *t);

/*
 * netx_tls_pending - bytes already received and decrypted, waiting inside
 * the library: netx_tls_recv() returns them without the socket being
 * readable. An event loop must read them before it waits again, or it may
 * wait for ever for data it already has.
 *
 * EXAMPLE: see netx_tls_handshake()
 */
NETX_API size_t netx_tls_pending(const netx_tls *t);

/*
 * netx_tls_fd - the socket under the connection (for netx_poller_add()),
 * or -1 for NULL.
 *
 * EXAMPLE: see netx_tls_handshake()
 */
NETX_API int netx_tls_fd(const netx_tls *t);

/*
 * netx_tls_version - the protocol the handshake agreed on ("TLSv1.3"), or
 * "" before it is over. The string belongs to t.
 *
 * EXAMPLE: see netx_tls_client_config()
 */
NETX_API const char *netx_tls_version(const netx_tls *t);

/*
 * netx_tls_cipher - the cipher suite the handshake agreed on
 * ("TLS_AES_256_GCM_SHA384"), or "" before it is over.
 *
 * EXAMPLE: see netx_tls_client_config()
 */
NETX_API const char *netx_tls_cipher(const netx_tls *t);

/*
 * netx_tls_peer_subject - the subject of the peer's certificate
 * ("CN=localhost"), checked unless the configuration is insecure; "" when
 * there is none (a client that sent no certificate to a server).
 *
 * EXAMPLE: see netx_tls_client_config()
 */
NETX_API const char *netx_tls_peer_subject(const netx_tls *t);

/*
 * netx_tls_close - end the TLS connection properly - send close_notify, so
 * the peer knows the data was not cut - then close the socket and free t.
 * After a failure that broke the connection (EPROTO, ECONNRESET), no
 * close_notify is sent: there is no TLS session left to end.
 *
 * It does not wait for the peer's close_notify; a peer that sends one is
 * not kept waiting either.
 *
 * On a non-blocking socket whose send buffer is full, close_notify cannot
 * go and is not waited for (EAGAIN): the peer then sees the connection
 * cut. In an event loop, close once your output is sent
 * (netx_writer_pending() is 0), and it goes.
 *
 * RETURN VALUE
 *   0, or -1 with errno set (close_notify could not be sent: EPIPE,
 *   ECONNRESET, ETIMEDOUT, EAGAIN). t is freed and the socket closed in
 *   every case. NULL is allowed (0).
 *
 * EXAMPLE: see netx_tls_server_config()
 */
NETX_API int netx_tls_close(netx_tls *t);

#ifdef __cplusplus
}
#endif

#endif /* NETX_TLS_H */
