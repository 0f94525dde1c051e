/*
 * tls.c - libnetx_tls: the article's guide step 7, TLS on OpenSSL 3, with the
 * promises of the rest of libnetx (see netx_tls.h).
 *
 * Three things here are what raw OpenSSL code usually gets wrong:
 *
 *  - Safe by default. The client checks the chain and the name (an IP
 *    literal as an IP address), sends SNI except for IP literals, and
 *    refuses an empty name, which would turn OpenSSL's check off.
 *  - OpenSSL's socket BIO writes with write(2), which raises SIGPIPE on a
 *    closed peer. Ours sends with MSG_NOSIGNAL, and never waits: every
 *    read and write is MSG_DONTWAIT, and when OpenSSL needs the socket
 *    readable or writable we wait in netx__poll() - where timeouts say
 *    ETIMEDOUT and a stop signal reaches us - or, on a non-blocking socket,
 *    return EAGAIN and say which readiness is wanted.
 *  - Errors: OpenSSL's error queue is cleared before every call (or an old
 *    error would be reported for a new call), and each failure becomes
 *    errno plus one sentence with OpenSSL's reason and, for a certificate,
 *    the verify result. A peer that closes without close_notify is EPROTO,
 *    never a quiet end of stream.
 */
#if defined(__linux__) && !defined(_GNU_SOURCE)
#define _GNU_SOURCE
#endif

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "compat.h"
#include "internal.h"
#include "netx_tls.h"

/* "host:port" as the caller named it, in sentences (netx__host_port()). */
#define WHERE_MAX 300

struct netx_tls_config {
    SSL_CTX *ctx;
    int server;
    int verify;           /* 0 after netx_tls_config_insecure_no_verify() */
    int allow_truncation; /* netx_tls_config_allow_truncation() */
};

struct netx_tls {
    SSL *ssl;
    int fd;
    int server;
    int verify;
    int allow_truncation;
    int handshaken; /* the handshake is over */
    int broken;     /* a fatal error: no close_notify can be sent */
    unsigned wants; /* NETX_READABLE / NETX_WRITABLE after EAGAIN */
    int io_err;     /* errno of the last send or recv that failed */
    int eof;        /* the socket's end of stream was read */
    char who[WHERE_MAX + NETX_ADDRSTRLEN + 3]; /* "localhost:8443 (127.0.0.1)" */
    char why[256];  /* the reason of the last failure, for the sentence */
    char version[32];
    char cipher[96];
    char subject[256];
};

/* Which TLS call run() makes. */
enum op { OP_HANDSHAKE, OP_READ, OP_WRITE, OP_SHUTDOWN };

/* ------------------------------------------------------------------------
 * The BIO: send and recv on the socket, never waiting, never SIGPIPE
 * ------------------------------------------------------------------------ */

static int bio_write(BIO *b, const char *buf, size_t len, size_t *written)
{
    netx_tls *t = BIO_get_data(b);
    BIO_clear_retry_flags(b);
    for (;;) {
        ssize_t n = send(t->fd, buf, len, NETX__SEND_FLAGS | NETX__DONTWAIT);
        if (n >= 0) {
            *written = (size_t)n;
            return 1;
        }
        if (errno == EINTR) {
            continue;
        }
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            BIO_set_retry_write(b);
        }
        t->io_err = errno;
        return 0;
    }
}

static int bio_read(BIO *b, char *buf, size_t cap, size_t *got)
{
    netx_tls *t = BIO_get_data(b);
    BIO_clear_retry_flags(b);
    for (;;) {
        ssize_t n = recv(t->fd, buf, cap, NETX__DONTWAIT);
        if (n > 0) {
            *got = (size_t)n;
            return 1;
        }
        if (n == 0) {
            t->eof = 1; /* BIO_eof() now says so: OpenSSL tells truncation */
            return 0;
        }
        if (errno == EINTR) {
            continue;
        }
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            BIO_set_retry_read(b);
        }
        t->io_err = errno;
        return 0;
    }
}

static long bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    (void)num;
    (void)ptr;
    netx_tls *t = BIO_get_data(b);
    switch (cmd) {
    case BIO_CTRL_FLUSH:
        return 1; /* nothing is buffered here */
    case BIO_CTRL_EOF:
        return t != NULL && t->eof;
    default:
        return 0;
    }
}

static int bio_create(BIO *b)
{
    BIO_set_init(b, 1);
    return 1;
}

/* The method, made once for the process, whichever thread comes first. */
static _Atomic(BIO_METHOD *) method;

static BIO_METHOD *bio_method(void)
{
    BIO_METHOD *m = atomic_load(&method);
    if (m != NULL) {
        return m;
    }
    m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "netx socket");
    if (m == NULL || BIO_meth_set_write_ex(m, bio_write) != 1 ||
        BIO_meth_set_read_ex(m, bio_read) != 1 || BIO_meth_set_ctrl(m, bio_ctrl) != 1 ||
        BIO_meth_set_create(m, bio_create) != 1) {
        BIO_meth_free(m);
        return NULL;
    }
    BIO_METHOD *expected = NULL;
    if (!atomic_compare_exchange_strong(&method, &expected, m)) {
        BIO_meth_free(m); /* another thread made one first */
        return expected;
    }
    return m;
}

/* ------------------------------------------------------------------------
 * Errors
 * ------------------------------------------------------------------------ */

/* OpenSSL's reason for its last error, "certificate verify failed", into
 * buf; "" when the queue is empty. */
static void openssl_reason(char *buf, size_t cap)
{
    unsigned long e = ERR_peek_last_error();
    const char *reason = e != 0 ? ERR_reason_error_string(e) : NULL;
    if (reason != NULL) {
        snprintf(buf, cap, "%s", reason);
    } else if (e != 0) {
        ERR_error_string_n(e, buf, cap);
    } else {
        buf[0] = '\0';
    }
}

/* Record a failure of step ("tls handshake with") on t: the reason in
 * t->why when there is one, else strerror(err). */
static int tls_fail(netx_tls *t, int err, const char *step)
{
    if (err == EPROTO && t->why[0] != '\0') {
        return netx__fail_because(err, t->why, "%s %s", step, t->who);
    }
    return netx__fail(err, "%s %s", step, t->who);
}

/*
 * A TLS call failed with SSL_get_error() code e: set t->why and return the
 * errno it means, or 0 for the end of the stream (close_notify, or a
 * truncation the configuration allows).
 */
static int classify(netx_tls *t, int e, enum op op)
{
    t->why[0] = '\0';
    if (e == SSL_ERROR_ZERO_RETURN) {
        return 0; /* the peer's close_notify: a clean end */
    }
    t->broken = 1; /* after SYSCALL or SSL errors, no SSL_shutdown */
    if (e == SSL_ERROR_SYSCALL) {
        /* The socket failed (reset, broken pipe); with no errno, the peer
         * closed in the middle of a record. */
        if (t->io_err != 0 && t->io_err != EAGAIN) {
            return t->io_err;
        }
        snprintf(t->why, sizeof t->why, "the peer closed the connection in the middle of TLS");
        return EPROTO;
    }
    unsigned long err = ERR_peek_last_error();
    if (ERR_GET_LIB(err) == ERR_LIB_SSL &&
        ERR_GET_REASON(err) == SSL_R_UNEXPECTED_EOF_WHILE_READING && op == OP_HANDSHAKE) {
        snprintf(t->why, sizeof t->why, "the peer closed the connection during the handshake");
        return EPROTO;
    }
    if (ERR_GET_LIB(err) == ERR_LIB_SSL &&
        ERR_GET_REASON(err) == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
        if (op == OP_READ && t->allow_truncation) {
            return 0; /* allowed for this peer: a plain end of stream */
        }
        snprintf(t->why, sizeof t->why,
                 "the peer closed without close_notify: the data may be cut short");
        return EPROTO;
    }
    char reason[160];
    openssl_reason(reason, sizeof reason);
    long verify = SSL_get_verify_result(t->ssl);
    if (op == OP_HANDSHAKE && verify != X509_V_OK) {
        snprintf(t->why, sizeof t->why, "%s: %s", reason[0] ? reason : "certificate verify failed",
                 X509_verify_cert_error_string(verify));
    } else if (op == OP_HANDSHAKE && !t->server && ERR_GET_LIB(err) == ERR_LIB_SSL &&
               (ERR_GET_REASON(err) == SSL_R_WRONG_VERSION_NUMBER ||
                ERR_GET_REASON(err) == SSL_R_UNEXPECTED_MESSAGE ||
                ERR_GET_REASON(err) == SSL_R_PACKET_LENGTH_TOO_LONG)) {
        /* What a client reads when the server answers in plain text (or
         * echoes the hello back): OpenSSL's words name the symptom, say
         * the likely cause too. */
        snprintf(t->why, sizeof t->why, "%s (does the server speak TLS on this port?)", reason);
    } else {
        snprintf(t->why, sizeof t->why, "%s", reason[0] ? reason : "TLS error");
    }
    if (t->io_err == ECONNRESET || t->io_err == EPIPE) {
        return t->io_err; /* the socket failed under the protocol */
    }
    return EPROTO;
}

/* ------------------------------------------------------------------------
 * Running one TLS call to its end
 * ------------------------------------------------------------------------ */

/* How run() waits when TLS needs the socket. */
enum waiting {
    WAIT_IF_BLOCKING, /* a blocking socket waits; a non-blocking one: EAGAIN */
    WAIT_ALWAYS,      /* the _all calls: wait on either kind */
};

/*
 * Make TLS call op until it is done. Returns 0 with *done set (bytes read
 * or written; 0 at the end of the stream for a read), or -1 with errno set
 * (not recorded): EAGAIN with t->wants, ETIMEDOUT, ECANCELED, or the
 * classified failure. deadline (netx__now_ms() time, -1: none) bounds the
 * whole call; each wait is also bounded by the socket's own timeout.
 */
static int run(netx_tls *t, enum op op, void *buf, size_t len, size_t *done,
               long long deadline, enum waiting waiting)
{
    for (;;) {
        size_t n = 0;
        int rc;
        ERR_clear_error();
        t->io_err = 0;
        t->wants = 0;
        switch (op) {
        case OP_HANDSHAKE:
            rc = SSL_do_handshake(t->ssl);
            break;
        case OP_READ:
            rc = SSL_read_ex(t->ssl, buf, len, &n);
            break;
        case OP_WRITE:
            rc = SSL_write_ex(t->ssl, buf, len, &n);
            break;
        default:
            rc = SSL_shutdown(t->ssl);
            if (rc == 0) {
                rc = 1; /* ours is sent; we do not wait for the peer's */
            }
            break;
        }
        if (rc == 1) {
            *done = n;
            return 0;
        }
        int e = SSL_get_error(t->ssl, rc);
        if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
            int err = classify(t, e, op);
            ERR_clear_error();
            if (err == 0) {
                *done = 0;
                return 0;
            }
            errno = err;
            return -1;
        }
        /* TLS needs the socket: a read may need it writable. */
        t->wants = e == SSL_ERROR_WANT_READ ? NETX_READABLE : NETX_WRITABLE;
        int flags = fcntl(t->fd, F_GETFL);
        if (waiting == WAIT_IF_BLOCKING && flags >= 0 && (flags & O_NONBLOCK) != 0) {
            errno = EAGAIN;
            return -1;
        }
        short events = t->wants == NETX_READABLE ? POLLIN : POLLOUT;
        int own = netx__socket_timeout_ms(t->fd, events == POLLIN ? SO_RCVTIMEO : SO_SNDTIMEO);
        long long until = deadline;
        if (own >= 0 && (until < 0 || netx__now_ms() + own < until)) {
            until = netx__now_ms() + own;
        }
        struct pollfd p[2] = {{.fd = t->fd, .events = events, .revents = 0}};
        int ready = netx__poll(p, 1, until);
        if (ready < 0) {
            return -1; /* ECANCELED, or poll's own */
        }
        if (ready == 0) {
            errno = ETIMEDOUT;
            return -1;
        }
    }
}

/* ------------------------------------------------------------------------
 * Configurations
 * ------------------------------------------------------------------------ */

static netx_tls_config *config_new(int server)
{
    netx_tls_config *c = calloc(1, sizeof *c);
    if (c == NULL) {
        netx__fail(ENOMEM, "tls %s config", server ? "server" : "client");
        return NULL;
    }
    ERR_clear_error();
    c->ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
    if (c->ctx == NULL || SSL_CTX_set_min_proto_version(c->ctx, TLS1_2_VERSION) != 1) {
        char reason[160];
        openssl_reason(reason, sizeof reason);
        netx__fail_because(EPROTO, reason[0] ? reason : "SSL_CTX_new failed", "tls %s config",
                           server ? "server" : "client");
        SSL_CTX_free(c->ctx);
        free(c);
        return NULL;
    }
    /* Our BIO never waits; AUTO_RETRY would make OpenSSL loop inside a read
     * where only we know how to wait. A write may end part-way, as send()
     * does, and may be retried from a moved buffer with the same bytes. */
    SSL_CTX_clear_mode(c->ctx, SSL_MODE_AUTO_RETRY);
    SSL_CTX_set_mode(c->ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    c->server = server;
    c->verify = !server;
    return c;
}

netx_tls_config *netx_tls_client_config(void)
{
    netx_tls_config *c = config_new(0);
    if (c == NULL) {
        return NULL;
    }
    SSL_CTX_set_verify(c->ctx, SSL_VERIFY_PEER, NULL);
    /* The system's CAs (or SSL_CERT_FILE / SSL_CERT_DIR). This succeeds
     * even when there are none: a server is then simply not trusted, and
     * the handshake says "unable to get local issuer certificate". */
    SSL_CTX_set_default_verify_paths(c->ctx);
    ERR_clear_error();
    return c;
}

/* errno for a file OpenSSL could not load: the system's reason if the file
 * cannot even be opened, else EPROTO with OpenSSL's. */
static int file_fail(const char *what, const char *file)
{
    FILE *f = fopen(file, "r");
    if (f == NULL) {
        return netx__fail(errno, "%s %s", what, file);
    }
    fclose(f);
    char reason[160];
    openssl_reason(reason, sizeof reason);
    ERR_clear_error();
    return netx__fail_because(EPROTO, reason[0] ? reason : "not a PEM file", "%s %s", what, file);
}

netx_tls_config *netx_tls_server_config(const char *cert_file, const char *key_file)
{
    if (cert_file == NULL || key_file == NULL) {
        netx__fail(EINVAL, "tls server config: %s is NULL",
                   cert_file == NULL ? "cert_file" : "key_file");
        return NULL;
    }
    netx_tls_config *c = config_new(1);
    if (c == NULL) {
        return NULL;
    }
    ERR_clear_error();
    if (SSL_CTX_use_certificate_chain_file(c->ctx, cert_file) != 1) {
        file_fail("tls server config: certificate", cert_file);
    } else if (SSL_CTX_use_PrivateKey_file(c->ctx, key_file, SSL_FILETYPE_PEM) != 1) {
        /* OpenSSL compares the key with the certificate as it loads it,
         * and says "key values mismatch": say it as documented. */
        if (ERR_GET_LIB(ERR_peek_last_error()) == ERR_LIB_X509 &&
            ERR_GET_REASON(ERR_peek_last_error()) == X509_R_KEY_VALUES_MISMATCH) {
            ERR_clear_error();
            netx__fail_because(EPROTO, "does not match the certificate",
                               "tls server config: key %s", key_file);
        } else {
            file_fail("tls server config: key", key_file);
        }
    } else if (SSL_CTX_check_private_key(c->ctx) != 1) {
        ERR_clear_error();
        netx__fail_because(EPROTO, "does not match the certificate", "tls server config: key %s",
                           key_file);
    } else {
        return c;
    }
    netx_tls_config_free(c);
    return NULL;
}

int netx_tls_config_ca_file(netx_tls_config *c, const char *file)
{
    if (c == NULL || file == NULL) {
        return netx__fail(EINVAL, "tls ca file: %s is NULL", c == NULL ? "config" : "file");
    }
    /* A store of its own, holding this file alone: "instead of the
     * system's", not "as well as". */
    X509_STORE *store = X509_STORE_new();
    ERR_clear_error();
    if (store == NULL || X509_STORE_load_file(store, file) != 1) {
        X509_STORE_free(store);
        return file_fail("tls ca file", file);
    }
    SSL_CTX_set_cert_store(c->ctx, store);
    return 0;
}

int netx_tls_config_insecure_no_verify(netx_tls_config *c)
{
    if (c == NULL || c->server) {
        return netx__fail(EINVAL, "tls insecure no verify: %s",
                          c == NULL ? "config is NULL" : "a server configuration");
    }
    c->verify = 0;
    SSL_CTX_set_verify(c->ctx, SSL_VERIFY_NONE, NULL);
    return 0;
}

int netx_tls_config_allow_truncation(netx_tls_config *c)
{
    if (c == NULL) {
        return netx__fail(EINVAL, "tls allow truncation: config is NULL");
    }
    c->allow_truncation = 1;
    return 0;
}

void netx_tls_config_free(netx_tls_config *c)
{
    if (c != NULL) {
        SSL_CTX_free(c->ctx); /* reference counted: live connections keep it */
        free(c);
    }
}

/* ------------------------------------------------------------------------
 * Connections
 * ------------------------------------------------------------------------ */

/* 1 if host is an IP address, not a name ("127.0.0.1", "::1"). */
static int is_ip_literal(const char *host)
{
    unsigned char addr[16];
    return inet_pton(AF_INET, host, addr) == 1 || inet_pton(AF_INET6, host, addr) == 1;
}

/* Free t and close its socket, keeping errno and the record. */
static void discard(netx_tls *t)
{
    int saved = errno;
    struct netx__record r;
    netx__record_save(&r);
    SSL_free(t->ssl);
    netx_close(t->fd);
    free(t);
    ERR_clear_error();
    netx__record_restore(&r);
    errno = saved;
}

static netx_tls *tls_new(netx_tls_config *c, int fd)
{
    netx_tls *t = calloc(1, sizeof *t);
    BIO_METHOD *m = bio_method();
    if (t == NULL || m == NULL) {
        free(t);
        netx__fail(ENOMEM, "tls on fd %d", fd);
        return NULL;
    }
    t->fd = fd;
    t->server = c->server;
    t->verify = c->verify;
    t->allow_truncation = c->allow_truncation;
    ERR_clear_error();
    t->ssl = SSL_new(c->ctx);
    BIO *bio = t->ssl != NULL ? BIO_new(m) : NULL;
    if (bio == NULL) {
        SSL_free(t->ssl);
        free(t);
        ERR_clear_error();
        netx__fail(ENOMEM, "tls on fd %d", fd);
        return NULL;
    }
    BIO_set_data(bio, t);
    SSL_set_bio(t->ssl, bio, bio);
    return t;
}

/* After the handshake: what the trace and the accessors show. */
static void note_session(netx_tls *t)
{
    t->handshaken = 1;
    snprintf(t->version, sizeof t->version, "%s", SSL_get_version(t->ssl));
    const char *cipher = SSL_get_cipher_name(t->ssl);
    snprintf(t->cipher, sizeof t->cipher, "%s", cipher != NULL ? cipher : "");
    X509 *peer = SSL_get1_peer_certificate(t->ssl);
    t->subject[0] = '\0';
    if (peer != NULL) {
        BIO *mem = BIO_new(BIO_s_mem());
        if (mem != NULL &&
            X509_NAME_print_ex(mem, X509_get_subject_name(peer), 0, XN_FLAG_RFC2253) >= 0) {
            int n = BIO_read(mem, t->subject, (int)sizeof t->subject - 1);
            t->subject[n > 0 ? n : 0] = '\0';
        }
        BIO_free(mem);
        X509_free(peer);
    }
    FILE *out = netx__tracing();
    if (out != NULL) {
        char extra[480];
        snprintf(extra, sizeof extra, "  %s %s, %s%s", t->version, t->cipher,
                 t->server ? "client certificate: " : (t->verify ? "verified " : "NOT verified "),
                 t->subject[0] ? t->subject : "none");
        netx__trace_step(out, 0, 0, extra, "tls handshake(%d)", t->fd);
    }
}

/* The handshake, to its end (blocking socket) or as far as it goes now. */
static int handshake(netx_tls *t, long long deadline)
{
    size_t unused;
    if (t->handshaken) {
        return 0;
    }
    if (run(t, OP_HANDSHAKE, NULL, 0, &unused, deadline, WAIT_IF_BLOCKING) != 0) {
        int err = errno;
        FILE *out = netx__tracing();
        if (out != NULL && err != EAGAIN) {
            char extra[sizeof t->why + 2];
            snprintf(extra, sizeof extra, "%s%s", t->why[0] ? "  " : "", t->why);
            netx__trace_step(out, -1, err, extra, "tls handshake(%d)", t->fd);
        }
        if (err == EAGAIN) {
            errno = EAGAIN;
            return -1;
        }
        return tls_fail(t, err, "tls handshake with");
    }
    note_session(t);
    return 0;
}

/* Start (and, on a blocking socket, finish) the handshake of a new t. */
static netx_tls *start(netx_tls *t, int timeout_ms)
{
    long long deadline = timeout_ms > 0 ? netx__now_ms() + timeout_ms : -1;
    int saved = errno;
    if (handshake(t, deadline) != 0 && errno != EAGAIN) {
        discard(t);
        return NULL;
    }
    errno = saved; /* EAGAIN of a non-blocking start is not a failure */
    return t;
}

netx_tls *netx_tls_connect(netx_tls_config *c, int fd, const char *host, int timeout_ms)
{
    if (c == NULL || c->server || host == NULL || host[0] == '\0') {
        netx__fail(EINVAL, "tls connect on fd %d: %s", fd,
                   c == NULL       ? "config is NULL"
                   : c->server     ? "a server configuration"
                   : host == NULL  ? "host is NULL: the certificate must be checked against a name"
                                   : "host is empty: the certificate must be checked against "
                                     "a name");
        netx_close(fd);
        return NULL;
    }
    netx_tls *t = tls_new(c, fd);
    if (t == NULL) {
        netx_close(fd);
        return NULL;
    }
    /* For sentences: the name asked for, the address reached. */
    netx_addr peer;
    char address[NETX_ADDRSTRLEN];
    char where[WHERE_MAX];
    unsigned port = 0;
    if (netx_peer_addr(fd, &peer) == 0 && netx_addr_port(&peer) >= 0) {
        port = (unsigned)netx_addr_port(&peer);
        netx__address_only(&peer, address, sizeof address);
    } else {
        snprintf(address, sizeof address, "fd %d", fd);
    }
    netx__host_port(host, port, where, sizeof where);
    snprintf(t->who, sizeof t->who, "%s (%s)", where, address);

    char bare[256];
    size_t len = strlen(host);
    const char *name = host;
    if (len >= 2 && host[0] == '[' && host[len - 1] == ']' && len - 2 < sizeof bare) {
        memcpy(bare, host + 1, len - 2); /* "[::1]" is the address ::1 */
        bare[len - 2] = '\0';
        name = bare;
    }
    int ip = is_ip_literal(name);
    int ok = 1;
    ERR_clear_error();
    if (!ip) {
        /* SNI: which site we want, for a server with several. Never for an
         * IP literal (RFC 6066). */
        ok = SSL_set_tlsext_host_name(t->ssl, name) == 1;
    }
    if (ok && t->verify) {
        if (ip) {
            ok = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(t->ssl), name) == 1;
        } else {
            SSL_set_hostflags(t->ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
            ok = SSL_set1_host(t->ssl, name) == 1;
        }
    }
    if (!ok) {
        char reason[160];
        openssl_reason(reason, sizeof reason);
        snprintf(t->why, sizeof t->why, "%s", reason[0] ? reason : "bad host name");
        tls_fail(t, EPROTO, "tls connect to");
        discard(t);
        return NULL;
    }
    if (!t->verify) {
        FILE *out = netx__tracing();
        if (out != NULL) {
            netx__trace_text(out,
                             "tls WARNING: fd %d: the server's certificate is NOT checked "
                             "(insecure_no_verify): anyone in between can read and change "
                             "this connection",
                             fd);
        }
    }
    SSL_set_connect_state(t->ssl);
    return start(t, timeout_ms);
}

netx_tls *netx_tls_accept(netx_tls_config *c, int fd, int timeout_ms)
{
    if (c == NULL || !c->server) {
        netx__fail(EINVAL, "tls accept on fd %d: %s", fd,
                   c == NULL ? "config is NULL" : "a client configuration");
        netx_close(fd);
        return NULL;
    }
    netx_tls *t = tls_new(c, fd);
    if (t == NULL) {
        netx_close(fd);
        return NULL;
    }
    netx__describe_peer(fd, t->who, sizeof t->who);
    SSL_set_accept_state(t->ssl);
    return start(t, timeout_ms);
}

int netx_tls_handshake(netx_tls *t)
{
    if (t == NULL) {
        return netx__fail(EINVAL, "tls handshake: t is NULL");
    }
    int saved = errno;
    if (handshake(t, -1) != 0) {
        return -1;
    }
    errno = saved;
    return 0;
}

/* Trace one send or receive; record its failure. */
static ssize_t transferred(netx_tls *t, const char *name, size_t len, int rc, size_t n,
                           const char *step)
{
    int err = errno;
    FILE *out = netx__tracing();
    if (out != NULL) {
        netx__trace_step(out, rc == 0 ? (long)n : -1, err, NULL, "%s(%d, %zu)", name, t->fd, len);
    }
    if (rc == 0) {
        return (ssize_t)n;
    }
    if (err == EAGAIN) {
        /* Routine in an event loop: no sentence to build. */
        return netx__fail(EAGAIN, "%s on fd %d", name, t->fd);
    }
    return tls_fail(t, err, step);
}

ssize_t netx_tls_send(netx_tls *t, const void *buf, size_t len)
{
    if (t == NULL || (buf == NULL && len > 0)) {
        return netx__fail(EINVAL, "tls send: %s", t == NULL ? "t is NULL" : "buf is NULL");
    }
    if (len == 0) {
        return 0;
    }
    int saved = errno;
    size_t n = 0;
    if (handshake(t, -1) != 0) {
        return -1;
    }
    int rc = run(t, OP_WRITE, (void *)buf, len, &n, -1, WAIT_IF_BLOCKING);
    ssize_t r = transferred(t, "tls_send", len, rc, n, "tls send to");
    if (r >= 0) {
        errno = saved;
    }
    return r;
}

ssize_t netx_tls_recv(netx_tls *t, void *buf, size_t cap)
{
    if (t == NULL || (buf == NULL && cap > 0)) {
        return netx__fail(EINVAL, "tls recv: %s", t == NULL ? "t is NULL" : "buf is NULL");
    }
    if (cap == 0) {
        return 0;
    }
    int saved = errno;
    size_t n = 0;
    if (handshake(t, -1) != 0) {
        return -1;
    }
    int rc = run(t, OP_READ, buf, cap, &n, -1, WAIT_IF_BLOCKING);
    ssize_t r = transferred(t, "tls_recv", cap, rc, n, "tls recv from");
    if (r >= 0) {
        errno = saved;
    }
    return r;
}

int netx_tls_send_all(netx_tls *t, const void *buf, size_t len)
{
    if (t == NULL || (buf == NULL && len > 0)) {
        return netx__fail(EINVAL, "tls send_all: %s", t == NULL ? "t is NULL" : "buf is NULL");
    }
    int saved = errno;
    const unsigned char *p = buf;
    size_t done = 0;
    if (handshake(t, -1) != 0) {
        return -1;
    }
    while (done < len) {
        size_t n = 0;
        int rc = run(t, OP_WRITE, (void *)(p + done), len - done, &n, -1, WAIT_ALWAYS);
        if (transferred(t, "tls_send", len - done, rc, n, "tls send to") < 0) {
            netx__set_transferred(done);
            return -1;
        }
        done += n;
    }
    errno = saved;
    return 0;
}

ssize_t netx_tls_recv_all(netx_tls *t, void *buf, size_t len)
{
    if (t == NULL || (buf == NULL && len > 0)) {
        return netx__fail(EINVAL, "tls recv_all: %s", t == NULL ? "t is NULL" : "buf is NULL");
    }
    int saved = errno;
    unsigned char *p = buf;
    size_t done = 0;
    if (handshake(t, -1) != 0) {
        return -1;
    }
    while (done < len) {
        size_t n = 0;
        int rc = run(t, OP_READ, p + done, len - done, &n, -1, WAIT_ALWAYS);
        if (transferred(t, "tls_recv", len - done, rc, n, "tls recv from") < 0) {
            netx__set_transferred(done);
            return -1;
        }
        if (n == 0) {
            break; /* end of stream */
        }
        done += n;
    }
    errno = saved;
    return (ssize_t)done;
}

static ssize_t reader_read_from(void *source, void *buf, size_t cap)
{
    return netx_tls_recv(source, buf, cap);
}

int netx_tls_reader_init(netx_reader *r, netx_tls *t, void *storage, size_t cap)
{
    if (t == NULL) {
        return netx__fail(EINVAL, "tls reader: t is NULL");
    }
    return netx_reader_init_source(r, t->fd, reader_read_from, t, storage, cap);
}

/*
 * A writer's send: records until all is taken or TLS must wait. One
 * SSL_write() takes at most a record (16 KiB); stopping there would leave
 * bytes pending with nothing to wait for (netx_tls_wants() 0), and cost a
 * wake-up per record. What an SSL_write() that said EAGAIN had taken
 * comes back with the next call, from the same byte: the writer's next
 * flush starts where this count ends.
 */
static ssize_t writer_write_to(void *sink, const void *buf, size_t len)
{
    const unsigned char *p = buf;
    size_t done = 0;
    while (done < len) {
        ssize_t n = netx_tls_send(sink, p + done, len - done);
        if (n < 0) {
            return done > 0 && errno == EAGAIN ? (ssize_t)done : -1;
        }
        done += (size_t)n;
    }
    return (ssize_t)done;
}

int netx_tls_writer_init(netx_writer *w, netx_tls *t, size_t cap)
{
    if (t == NULL) {
        return netx__fail(EINVAL, "tls writer: t is NULL");
    }
    return netx_writer_init_sink(w, t->fd, writer_write_to, t, cap);
}

unsigned netx_tls_wants(const netx_tls *t)
{
    return t != NULL ? t->wants : 0;
}

size_t netx_tls_pending(const netx_tls *t)
{
    if (t == NULL) {
        return 0;
    }
    int n = SSL_pending(t->ssl);
    return n > 0 ? (size_t)n : 0;
}

int netx_tls_fd(const netx_tls *t)
{
    return t != NULL ? t->fd : -1;
}

const char *netx_tls_version(const netx_tls *t)
{
    return t != NULL ? t->version : "";
}

const char *netx_tls_cipher(const netx_tls *t)
{
    return t != NULL ? t->cipher : "";
}

const char *netx_tls_peer_subject(const netx_tls *t)
{
    return t != NULL ? t->subject : "";
}

int netx_tls_close(netx_tls *t)
{
    if (t == NULL) {
        return 0;
    }
    int rc = 0;
    if (t->handshaken && !t->broken) {
        /* close_notify: the peer learns the stream ended here, on purpose,
         * and was not cut. */
        size_t unused;
        int saved = errno;
        if (run(t, OP_SHUTDOWN, NULL, 0, &unused, -1, WAIT_IF_BLOCKING) != 0) {
            rc = tls_fail(t, errno, "tls close_notify to");
        } else {
            errno = saved;
        }
    }
    FILE *out = netx__tracing();
    if (out != NULL) {
        netx__trace_step(out, rc, errno, NULL, "tls close(%d)%s", t->fd,
                         t->handshaken && !t->broken ? "" : " without close_notify");
    }
    SSL_free(t->ssl);
    ERR_clear_error();
    if (netx_close(t->fd) != 0 && rc == 0) {
        rc = -1;
    }
    free(t);
    return rc;
}
