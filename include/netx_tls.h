/*
 * netx_tls.h - libnetx_tls: the article's Step 7, TLS over a libnetx
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
 */
#ifndef NETX_TLS_H
#define NETX_TLS_H

#include "netx.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * netx_tls_config - what every connection made from it has in common:
 * client or server, what it trusts, its certificate (server). Opaque.
 */
typedef struct netx_tls_config netx_tls_config;

/*
 * netx_tls - one TLS connection over a connected socket. Opaque.
 */
typedef struct netx_tls netx_tls;

/* ------------------------------------------------------------------------
 * Configurations
 * ------------------------------------------------------------------------ */

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
 */
NETX_API netx_tls_config *netx_tls_server_config(const char *cert_file, const char *key_file);

/*
 * netx_tls_config_ca_file - trust the CA certificates in file (PEM) instead
 * of the system's (a client), for a private CA or a test.
 *
 * RETURN VALUE
 *   0, or -1 with errno set (ENOENT, EACCES, EPROTO: not PEM; EINVAL).
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
 */
NETX_API int netx_tls_config_allow_truncation(netx_tls_config *c);

/*
 * netx_tls_config_free - free a configuration. Connections made from it
 * keep what they need and may outlive it. NULL is allowed.
 */
NETX_API void netx_tls_config_free(netx_tls_config *c);

/* ------------------------------------------------------------------------
 * Connections
 * ------------------------------------------------------------------------ */

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
 */
NETX_API int netx_tls_send_all(netx_tls *t, const void *buf, size_t len);

/*
 * netx_tls_recv_all - receive exactly len bytes unless the stream ends
 * first (as netx_recv_all()).
 *
 * RETURN VALUE
 *   len, fewer at end of stream, or -1 with errno set (then
 *   netx_last_transferred() says how many bytes are in buf).
 */
NETX_API ssize_t netx_tls_recv_all(netx_tls *t, void *buf, size_t len);

/*
 * netx_tls_reader_init - a netx_reader that reads through t: lines
 * (netx_read_line()) and exact sizes (netx_read_n()) over TLS, with
 * storage as for netx_reader_init().
 *
 * RETURN VALUE
 *   0, or -1 with errno EINVAL.
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
 */
NETX_API int netx_tls_writer_init(netx_writer *w, netx_tls *t, size_t cap);

/*
 * netx_tls_wants - after a call failed with EAGAIN: what the socket must
 * be before calling again, NETX_READABLE or NETX_WRITABLE (it may be the
 * other way round from the call: a read that has a handshake message to
 * send wants the socket writable). 0 when the last call did not wait.
 */
NETX_API unsigned netx_tls_wants(const netx_tls *t);

/*
 * netx_tls_pending - bytes already received and decrypted, waiting inside
 * the library: netx_tls_recv() returns them without the socket being
 * readable. An event loop must read them before it waits again, or it may
 * wait for ever for data it already has.
 */
NETX_API size_t netx_tls_pending(const netx_tls *t);

/*
 * netx_tls_fd - the socket under the connection (for netx_poller_add()),
 * or -1 for NULL.
 */
NETX_API int netx_tls_fd(const netx_tls *t);

/*
 * netx_tls_version - the protocol the handshake agreed on ("TLSv1.3"), or
 * "" before it is over. The string belongs to t.
 */
NETX_API const char *netx_tls_version(const netx_tls *t);

/*
 * netx_tls_cipher - the cipher suite the handshake agreed on
 * ("TLS_AES_256_GCM_SHA384"), or "" before it is over.
 */
NETX_API const char *netx_tls_cipher(const netx_tls *t);

/*
 * netx_tls_peer_subject - the subject of the peer's certificate
 * ("CN=localhost"), checked unless the configuration is insecure; "" when
 * there is none (a client that sent no certificate to a server).
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
 */
NETX_API int netx_tls_close(netx_tls *t);

#ifdef __cplusplus
}
#endif

#endif /* NETX_TLS_H */
