/*
 * test_tls.c - libnetx_tls (netx_tls.h), the article's guide step 7, over real
 * loopback connections: what the handshake checks (the CA, the name or the
 * IP address, the dates) and the sentences of its failures; what the client
 * sends (SNI for a name, none for an address); data through TLS (an echo,
 * 10 MiB byte for byte, lines through a netx_reader, an event loop's
 * netx_writer); the end of a stream (close_notify, and a cut, which is
 * never silent); SIGPIPE; timeouts; the stop signal; non-blocking sockets
 * and the bytes that wait inside the library; configuration errors; the
 * insecure mode; the trace; and errno and the error record after a success.
 *
 * The certificates are made at start-up with OpenSSL's own API (EC P-256
 * keys, quick to make) and written as PEM into a directory of their own,
 * removed at the end: no key lives in the repository, and none outlives
 * the run. enum file lists them.
 *
 * The TLS server of a test runs in a thread (server_start()): it accepts one
 * client, makes the handshake with netx_tls_accept() and then does what the
 * test needs (echo, send and close, cut the connection short). Where a test
 * needs a peer that misbehaves - silent, or speaking no TLS - that peer is a
 * raw socket in the test itself. Every wait is bounded: each socket has a
 * timeout (GUARD_MS), and where a bug could make a call wait for ever, a
 * watchdog cuts its connection so that the test fails instead of hanging.
 * A server thread never calls cmocka's assertions: it writes down what
 * happened, and the test checks that after server_join().
 *
 * Two cases run in a child process: the stop signal (the stop is the
 * process's, and one-way) and SIGPIPE (if it were raised it would kill the
 * process: the child's death is then the test's failure, not the binary's).
 */
#include "support.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "netx_tls.h"

/* Every socket of a test gets this timeout, and every handshake this
 * limit, so a bug fails a test instead of hanging the binary. */
#define GUARD_MS 5000

/* How long a stopped call may take to return (generous: "a few
 * milliseconds" on an idle machine, more under valgrind). */
#define PROMPT_MS 3000

/* A child process gets this long before it is killed. */
#define CHILD_MS 20000

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* 1 if fd is an open descriptor. A failed netx_tls_connect() must have
 * closed its socket; call this before anything else can open a descriptor
 * (and take the number again). */
static int fd_is_open(int fd)
{
    return fcntl(fd, F_GETFD) != -1 || errno != EBADF;
}

/* ------------------------------------------------------------------------
 * Certificates, made for the run
 * ------------------------------------------------------------------------ */

enum file {
    /* The test CA: the one the clients trust. */
    CA_CERT,
    /* The server: CN=localhost, for DNS:localhost, IP:127.0.0.1 and
     * IP:::1, signed by the test CA, valid from a day ago to a day ahead. */
    SERVER_CERT,
    SERVER_KEY,
    /* The same names, signed by another CA that nobody trusts. */
    WRONG_CA_CERT,
    WRONG_CA_KEY,
    /* Signed by the test CA, for DNS:other.example alone. */
    WRONG_NAME_CERT,
    WRONG_NAME_KEY,
    /* localhost, signed by the test CA, valid from 10 days ago to
     * yesterday. */
    EXPIRED_CERT,
    EXPIRED_KEY,
    /* A key that matches none of the certificates. */
    OTHER_KEY,
    /* A file that is not PEM at all. */
    NOT_PEM,
    NFILES
};

static const char *const file_names[NFILES] = {
    "ca.pem",       "server.pem",     "server.key",     "wrong-ca.pem",
    "wrong-ca.key", "wrong-name.pem", "wrong-name.key", "expired.pem",
    "expired.key",  "other.key",      "not-pem.txt",
};

static char dir[256];
static char paths[NFILES][320];

/* A new EC P-256 key. */
static EVP_PKEY *key_new(void)
{
    return EVP_EC_gen("P-256");
}

/* Add one extension to cert, written as in openssl.cnf ("critical,CA:TRUE"),
 * issuer being the certificate that signs it (for authorityKeyIdentifier). */
static int add_ext(X509 *cert, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer, cert, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    if (ext == NULL) {
        return 0;
    }
    int ok = X509_add_ext(cert, ext, -1);
    X509_EXTENSION_free(ext);
    return ok;
}

/*
 * A certificate for key, subject CN=cn, valid from from_days to to_days
 * (days from now; negative is in the past). issuer NULL makes a
 * self-signed CA; otherwise issuer and issuer_key sign a server certificate
 * for the names in san ("DNS:localhost,IP:127.0.0.1").
 */
static X509 *make_cert(EVP_PKEY *key, const char *cn, const char *san, long from_days, long to_days,
                       X509 *issuer, EVP_PKEY *issuer_key)
{
    static long serial = 1;
    X509 *x = X509_new();
    if (x == NULL) {
        return NULL;
    }
    X509_NAME *name = X509_get_subject_name(x);
    int ok = X509_set_version(x, X509_VERSION_3) == 1 &&
             ASN1_INTEGER_set(X509_get_serialNumber(x), serial++) == 1 &&
             X509_gmtime_adj(X509_getm_notBefore(x), from_days * 86400L) != NULL &&
             X509_gmtime_adj(X509_getm_notAfter(x), to_days * 86400L) != NULL &&
             X509_set_pubkey(x, key) == 1 &&
             X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1,
                                        0) == 1 &&
             X509_set_issuer_name(x, issuer != NULL ? X509_get_subject_name(issuer) : name) == 1;
    if (issuer == NULL) {
        ok = ok && add_ext(x, x, NID_basic_constraints, "critical,CA:TRUE") &&
             add_ext(x, x, NID_key_usage, "critical,keyCertSign,cRLSign") &&
             add_ext(x, x, NID_subject_key_identifier, "hash");
    } else {
        ok = ok && add_ext(x, issuer, NID_basic_constraints, "CA:FALSE") &&
             add_ext(x, issuer, NID_key_usage, "critical,digitalSignature") &&
             add_ext(x, issuer, NID_ext_key_usage, "serverAuth") &&
             add_ext(x, issuer, NID_subject_alt_name, san) &&
             add_ext(x, issuer, NID_subject_key_identifier, "hash") &&
             add_ext(x, issuer, NID_authority_key_identifier, "keyid");
    }
    ok = ok && X509_sign(x, issuer_key != NULL ? issuer_key : key, EVP_sha256()) > 0;
    if (!ok) {
        X509_free(x);
        return NULL;
    }
    return x;
}

/* Write a certificate (cert) or a private key (key) as PEM. */
static int write_pem(enum file which, X509 *cert, EVP_PKEY *key)
{
    FILE *f = fopen(paths[which], "w");
    if (f == NULL) {
        return 0;
    }
    int ok = cert != NULL ? PEM_write_X509(f, cert)
                          : PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL);
    return fclose(f) == 0 && ok == 1;
}

/* cmocka group setup: the directory and every file of enum file. */
static int certs_make(void **state)
{
    (void)state;
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/netx-tls-test-XXXXXX", tmp != NULL && tmp[0] ? tmp : "/tmp");
    if (mkdtemp(dir) == NULL) {
        fprintf(stderr, "test_tls: mkdtemp %s: %s\n", dir, strerror(errno));
        return -1;
    }
    for (int i = 0; i < NFILES; i++) {
        snprintf(paths[i], sizeof paths[i], "%s/%s", dir, file_names[i]);
    }
    EVP_PKEY *ca_key = key_new();
    EVP_PKEY *other_ca_key = key_new();
    EVP_PKEY *server_key = key_new();
    EVP_PKEY *wrong_ca_key = key_new();
    EVP_PKEY *wrong_name_key = key_new();
    EVP_PKEY *expired_key = key_new();
    EVP_PKEY *other_key = key_new();
    X509 *ca = NULL, *other_ca = NULL, *server = NULL, *wrong_ca = NULL, *wrong_name = NULL,
         *expired = NULL;
    const char *localhost = "DNS:localhost,IP:127.0.0.1,IP:::1";
    int ok = ca_key && other_ca_key && server_key && wrong_ca_key && wrong_name_key &&
             expired_key && other_key;
    if (ok) {
        ca = make_cert(ca_key, "libnetx test CA", NULL, -30, 30, NULL, NULL);
        other_ca = make_cert(other_ca_key, "libnetx other CA", NULL, -30, 30, NULL, NULL);
        server = make_cert(server_key, "localhost", localhost, -1, 1, ca, ca_key);
        wrong_ca = make_cert(wrong_ca_key, "localhost", localhost, -1, 1, other_ca, other_ca_key);
        wrong_name =
            make_cert(wrong_name_key, "other.example", "DNS:other.example", -1, 1, ca, ca_key);
        expired = make_cert(expired_key, "localhost", localhost, -10, -1, ca, ca_key);
    }
    ok = ok && ca && other_ca && server && wrong_ca && wrong_name && expired &&
         write_pem(CA_CERT, ca, NULL) && write_pem(SERVER_CERT, server, NULL) &&
         write_pem(SERVER_KEY, NULL, server_key) && write_pem(WRONG_CA_CERT, wrong_ca, NULL) &&
         write_pem(WRONG_CA_KEY, NULL, wrong_ca_key) &&
         write_pem(WRONG_NAME_CERT, wrong_name, NULL) &&
         write_pem(WRONG_NAME_KEY, NULL, wrong_name_key) &&
         write_pem(EXPIRED_CERT, expired, NULL) && write_pem(EXPIRED_KEY, NULL, expired_key) &&
         write_pem(OTHER_KEY, NULL, other_key);
    if (ok) {
        FILE *f = fopen(paths[NOT_PEM], "w");
        ok = f != NULL && fputs("this is not a certificate\n", f) >= 0;
        ok = f != NULL && fclose(f) == 0 && ok;
    }
    X509_free(ca);
    X509_free(other_ca);
    X509_free(server);
    X509_free(wrong_ca);
    X509_free(wrong_name);
    X509_free(expired);
    EVP_PKEY_free(ca_key);
    EVP_PKEY_free(other_ca_key);
    EVP_PKEY_free(server_key);
    EVP_PKEY_free(wrong_ca_key);
    EVP_PKEY_free(wrong_name_key);
    EVP_PKEY_free(expired_key);
    EVP_PKEY_free(other_key);
    if (!ok) {
        fprintf(stderr, "test_tls: could not make the test certificates in %s\n", dir);
        return -1;
    }
    return 0;
}

/* cmocka group teardown: remove them again. */
static int certs_remove(void **state)
{
    (void)state;
    for (int i = 0; i < NFILES; i++) {
        unlink(paths[i]);
    }
    if (rmdir(dir) != 0) {
        fprintf(stderr, "test_tls: rmdir %s: %s\n", dir, strerror(errno));
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------------
 * Configurations and the client side
 * ------------------------------------------------------------------------ */

/* A client configuration that trusts the test CA alone; NULL on failure. */
static netx_tls_config *trusting_client(void)
{
    netx_tls_config *c = netx_tls_client_config();
    if (c != NULL && netx_tls_config_ca_file(c, paths[CA_CERT]) != 0) {
        netx_tls_config_free(c);
        return NULL;
    }
    return c;
}

/* A server configuration for one of the certificates and its key. */
static netx_tls_config *server_config(enum file cert, enum file key)
{
    return netx_tls_server_config(paths[cert], paths[key]);
}

/* TCP to host:port, a timeout on the socket, then the TLS handshake as
 * host. *fd receives the socket's number (-1 if TCP failed). */
static netx_tls *client_dial(netx_tls_config *c, const char *host, uint16_t port, int *fd)
{
    *fd = netx_tcp_connect(host, port, GUARD_MS);
    if (*fd < 0) {
        return NULL;
    }
    if (netx_set_timeout(*fd, GUARD_MS) != 0) {
        netx_close(*fd);
        return NULL;
    }
    return netx_tls_connect(c, *fd, host, GUARD_MS);
}

/* ------------------------------------------------------------------------
 * The TLS server: one client, in a thread
 * ------------------------------------------------------------------------ */

struct server;

/* What the server does once the handshake is over; then it closes the
 * connection with netx_tls_close() (close_notify). */
typedef void server_act(struct server *s, netx_tls *t);

/* What happened on the server's side, for the test to check. */
struct server_result {
    int handshake_ok; /* netx_tls_accept() succeeded */
    int err;          /* errno of the first failure (accept, handshake, act) */
    char text[512];   /* and its sentence */
    long act_rc;      /* what the act wants to report */
    int close_rc;     /* netx_tls_close() */
    int close_err;
};

struct server {
    int lfd;
    uint16_t port;
    netx_tls_config *cfg;
    server_act *act;
    const void *data; /* what the act sends */
    size_t len;
    _Atomic int gate; /* 1: wait before the handshake until server_open() */
    pthread_t thread;
    struct server_result r;
};

/* Write down this thread's last failure, unless one is already. */
static void server_note(struct server *s)
{
    if (s->r.err == 0) {
        s->r.err = errno;
        snprintf(s->r.text, sizeof s->r.text, "%s", netx_last_error());
    }
}

static void *server_main(void *arg)
{
    struct server *s = arg;
    int fd = netx_accept(s->lfd, NULL); /* bounded by the listener's timeout */
    if (fd < 0) {
        server_note(s);
        return NULL;
    }
    for (int i = 0; i < GUARD_MS && atomic_load(&s->gate); i++) {
        sleep_ms(1);
    }
    netx_set_timeout(fd, GUARD_MS);
    /* An echo answers a piece with a full record and a small one; Nagle
     * would hold the small one for the client's delayed ACK (40 ms). */
    netx_set_nodelay(fd, 1);
    netx_tls *t = netx_tls_accept(s->cfg, fd, GUARD_MS);
    if (t == NULL) {
        server_note(s);
        return NULL;
    }
    s->r.handshake_ok = 1;
    if (s->act != NULL) {
        s->act(s, t);
    }
    errno = 0;
    s->r.close_rc = netx_tls_close(t);
    s->r.close_err = s->r.close_rc != 0 ? errno : 0;
    return NULL;
}

/*
 * Listen on host, port 0, and serve one client in a thread with cfg, then
 * act (NULL: close at once). gated: the handshake waits for server_open().
 * Returns NULL on failure. No cmocka assertion here: the child processes
 * use it too.
 */
static struct server *server_start(const char *host, netx_tls_config *cfg, server_act *act,
                                   const void *data, size_t len, int gated)
{
    struct server *s = calloc(1, sizeof *s);
    if (s == NULL) {
        return NULL;
    }
    s->cfg = cfg;
    s->act = act;
    s->data = data;
    s->len = len;
    atomic_store(&s->gate, gated);
    s->lfd = netx_tcp_listen(host, 0, 4);
    if (s->lfd < 0) {
        free(s);
        return NULL;
    }
    s->port = (uint16_t)netx_local_port(s->lfd);
    if (netx_set_timeout(s->lfd, GUARD_MS) != 0 ||
        pthread_create(&s->thread, NULL, server_main, s) != 0) {
        netx_close(s->lfd);
        free(s);
        return NULL;
    }
    return s;
}

/* Let a gated server make its handshake. */
static void server_open(struct server *s)
{
    atomic_store(&s->gate, 0);
}

/* Wait for the server to finish, close its listener, hand back what
 * happened (out may be NULL) and free it. */
static void server_join(struct server *s, struct server_result *out)
{
    pthread_join(s->thread, NULL);
    netx_close(s->lfd);
    if (out != NULL) {
        *out = s->r;
    }
    free(s);
}

/* Echo every byte until the client's close_notify. */
static void act_echo(struct server *s, netx_tls *t)
{
    char buf[16384];
    for (;;) {
        ssize_t n = netx_tls_recv(t, buf, sizeof buf);
        if (n == 0) {
            return;
        }
        if (n < 0 || netx_tls_send_all(t, buf, (size_t)n) != 0) {
            server_note(s);
            return;
        }
    }
}

/* Send s->data; the close that follows sends close_notify. */
static void act_send(struct server *s, netx_tls *t)
{
    if (netx_tls_send_all(t, s->data, s->len) != 0) {
        server_note(s);
    }
}

/* Send s->data, then cut the connection WITHOUT close_notify: the socket is
 * shut down under TLS, as a peer that crashes (or an attacker) would. The
 * close_notify that netx_tls_close() then tries cannot go out. */
static void act_send_then_cut(struct server *s, netx_tls *t)
{
    act_send(s, t);
    s->r.act_rc = shutdown(netx_tls_fd(t), SHUT_RDWR);
}

/* Send the NULL-terminated array of strings s->data, one netx_tls_send_all()
 * (one TLS record) each, so the client receives them in those pieces. */
static void act_send_pieces(struct server *s, netx_tls *t)
{
    const char *const *piece = s->data;
    for (; *piece != NULL; piece++) {
        if (netx_tls_send_all(t, *piece, strlen(*piece)) != 0) {
            server_note(s);
            return;
        }
    }
}

/* Read until the client goes: a server that says nothing. */
static void act_drain(struct server *s, netx_tls *t)
{
    char buf[4096];
    for (;;) {
        ssize_t n = netx_tls_recv(t, buf, sizeof buf);
        if (n == 0) {
            return;
        }
        if (n < 0) {
            server_note(s);
            return;
        }
    }
}

/* Send s->data in ONE netx_tls_send() (one record), then drain. */
static void act_send_once_then_drain(struct server *s, netx_tls *t)
{
    s->r.act_rc = (long)netx_tls_send(t, s->data, s->len);
    if (s->r.act_rc < 0) {
        server_note(s);
    }
    act_drain(s, t);
}

/* Receive s->len bytes and compare them with s->data: act_rc 1 if they
 * all came, in order. Then say "k", so the client knows it may close (a
 * close with bytes unread - TLS 1.3's session tickets - resets the
 * connection, and the reset could overtake the last bytes). */
static void act_sink(struct server *s, netx_tls *t)
{
    unsigned char *in = malloc(s->len);
    if (in == NULL) {
        return;
    }
    ssize_t n = netx_tls_recv_all(t, in, s->len);
    if (n < 0) {
        server_note(s);
        n = (ssize_t)netx_last_transferred();
    }
    const unsigned char *want = s->data;
    size_t i = 0;
    while (i < (size_t)n && in[i] == want[i]) {
        i++;
    }
    s->r.act_rc = i == s->len;
    if (i < s->len && s->r.err == 0) {
        snprintf(s->r.text, sizeof s->r.text, "%zd bytes came; the first %zu are right", n, i);
    }
    free(in);
    if (netx_tls_send_all(t, "k", 1) != 0) {
        server_note(s);
    }
}

/* Reset the connection: SO_LINGER of 0 makes the close send RST. */
static void act_reset(struct server *s, netx_tls *t)
{
    struct linger l = {.l_onoff = 1, .l_linger = 0};
    s->r.act_rc = setsockopt(netx_tls_fd(t), SOL_SOCKET, SO_LINGER, &l, sizeof l);
}

/* A TLS echo server on 127.0.0.1 with the good certificate, and a client
 * connected to it as "localhost". */
struct echo_setup {
    netx_tls_config *server_cfg;
    netx_tls_config *client_cfg;
    struct server *server;
    netx_tls *t;
    int fd;
};

static void echo_setup(struct echo_setup *e, server_act *act, const void *data, size_t len)
{
    e->server_cfg = server_config(SERVER_CERT, SERVER_KEY);
    assert_non_null(e->server_cfg);
    e->client_cfg = trusting_client();
    assert_non_null(e->client_cfg);
    e->server = server_start("127.0.0.1", e->server_cfg, act, data, len, 0);
    assert_non_null(e->server);
    e->t = client_dial(e->client_cfg, "localhost", e->server->port, &e->fd);
    if (e->t == NULL) {
        fail_msg("tls connect: %s", netx_last_error());
    }
}

/* Close the client (if not yet), join the server, free the configurations. */
static void echo_teardown(struct echo_setup *e, struct server_result *out)
{
    netx_tls_close(e->t);
    e->t = NULL;
    server_join(e->server, out);
    netx_tls_config_free(e->client_cfg);
    netx_tls_config_free(e->server_cfg);
}

/* ------------------------------------------------------------------------
 * A watchdog: cut a connection that a bug would leave waiting for ever
 * ------------------------------------------------------------------------ */

struct watchdog {
    int fd;
    int ms;
    _Atomic int stop;
    _Atomic int fired;
    pthread_t thread;
};

static void *watchdog_main(void *arg)
{
    struct watchdog *w = arg;
    long long limit = now_ms() + w->ms;
    while (!atomic_load(&w->stop) && now_ms() < limit) {
        sleep_ms(5);
    }
    if (!atomic_load(&w->stop)) {
        atomic_store(&w->fired, 1);
        shutdown(w->fd, SHUT_RDWR);
    }
    return NULL;
}

/* After ms, shut fd down (the peer's socket, or the waiting one). */
static void watchdog_start(struct watchdog *w, int fd, int ms)
{
    w->fd = fd;
    w->ms = ms;
    atomic_store(&w->stop, 0);
    atomic_store(&w->fired, 0);
    assert_int_equal(pthread_create(&w->thread, NULL, watchdog_main, w), 0);
}

/* Call it off; 1 if it had to cut. */
static int watchdog_stop(struct watchdog *w)
{
    atomic_store(&w->stop, 1);
    pthread_join(w->thread, NULL);
    return atomic_load(&w->fired);
}

/* ------------------------------------------------------------------------
 * Child processes: for the stop, and for SIGPIPE
 * ------------------------------------------------------------------------ */

/* In a child: no cmocka (an assertion would jump back into the parent's
 * copy of the test run). A failed check says which, and the child exits 1. */
#define CHILD_CHECK(cond)                                                                          \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "test_tls child, line %d: %s is false (errno %d; last error: %s)\n",   \
                    __LINE__, #cond, errno, netx_last_error());                                    \
            return 1;                                                                              \
        }                                                                                          \
    } while (0)

/* Run fn in a child process; the test fails unless it exits 0 in time. */
static void expect_child_ok(int (*fn)(void))
{
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        _exit(fn());
    }
    int status = 0;
    pid_t r = 0;
    long long limit = now_ms() + CHILD_MS;
    while ((r = waitpid(pid, &status, WNOHANG)) == 0 && now_ms() < limit) {
        sleep_ms(5);
    }
    if (r == 0) {
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        fail_msg("the child was still running after %d ms", CHILD_MS);
    }
    assert_int_equal(r, pid);
    if (WIFSIGNALED(status)) {
        fail_msg("the child was killed by signal %d%s", WTERMSIG(status),
                 WTERMSIG(status) == SIGPIPE ? " (SIGPIPE)" : "");
    }
    assert_true(WIFEXITED(status));
    if (WEXITSTATUS(status) != 0) {
        fail_msg("the child failed (exit status %d; its message is above)", WEXITSTATUS(status));
    }
}

/* ------------------------------------------------------------------------
 * The handshake succeeds, and says what it agreed on
 * ------------------------------------------------------------------------ */

static void tls_connect_localhost_echo_roundtrip(void **state)
{
    (void)state;
    struct echo_setup e;
    char line[16] = "";
    echo_setup(&e, act_echo, NULL, 0);
    assert_int_equal(netx_tls_send_all(e.t, "hello, tls\n", 11), 0);
    assert_int_equal(netx_tls_recv_all(e.t, line, 11), 11);
    assert_string_equal(line, "hello, tls\n");
    echo_teardown(&e, NULL);
}

static void tls_connect_reports_version_cipher_subject(void **state)
{
    (void)state;
    struct echo_setup e;
    echo_setup(&e, act_echo, NULL, 0);
    assert_memory_equal(netx_tls_version(e.t), "TLSv1.", 6);
    assert_true(strlen(netx_tls_cipher(e.t)) > 0);
    assert_non_null(strstr(netx_tls_peer_subject(e.t), "CN=localhost"));
    echo_teardown(&e, NULL);
}

/* On a blocking socket the handshake is over when connect returns. */
static void tls_handshake_after_blocking_connect_returns_0(void **state)
{
    (void)state;
    struct echo_setup e;
    echo_setup(&e, act_echo, NULL, 0);
    errno = 0;
    assert_int_equal(netx_tls_handshake(e.t), 0);
    assert_int_equal(errno, 0);
    assert_int_equal(netx_tls_wants(e.t), 0);
    echo_teardown(&e, NULL);
}

/* 10 MiB out and back through the echo in pieces of odd sizes, checked
 * byte for byte: nothing dropped, repeated or reordered. */
static void tls_echo_10mib_arrives_intact(void **state)
{
    (void)state;
    enum { TOTAL = 10 << 20 };
    static const size_t sizes[] = {1, 4093, 16384, 65536, 16385, 40000, 7, 30011};
    unsigned char *out = malloc(TOTAL);
    unsigned char *in = malloc(TOTAL);
    assert_non_null(out);
    assert_non_null(in);
    support_pattern(out, TOTAL, 7);
    memset(in, 0, TOTAL);
    struct echo_setup e;
    echo_setup(&e, act_echo, NULL, 0);
    assert_int_equal(netx_set_nodelay(e.fd, 1), 0); /* as the server, see server_main() */
    size_t done = 0;
    for (unsigned i = 0; done < TOTAL; i++) {
        size_t piece = sizes[i % (sizeof sizes / sizeof sizes[0])];
        if (piece > TOTAL - done) {
            piece = TOTAL - done;
        }
        assert_int_equal(netx_tls_send_all(e.t, out + done, piece), 0);
        assert_int_equal(netx_tls_recv_all(e.t, in + done, piece), (ssize_t)piece);
        done += piece;
    }
    for (size_t i = 0; i < TOTAL; i++) {
        if (in[i] != out[i]) {
            fail_msg("byte %zu differs: sent 0x%02x, got back 0x%02x", i, out[i], in[i]);
        }
    }
    echo_teardown(&e, NULL);
    free(out);
    free(in);
}

/* An IP literal is checked against the certificate's IP addresses: listen
 * on address, dial it written as host. */
static void expect_literal_verifies(const char *address, const char *host)
{
    if (strchr(address, ':') != NULL && !support_have_ipv6()) {
        skip();
    }
    netx_tls_config *sc = server_config(SERVER_CERT, SERVER_KEY);
    netx_tls_config *cc = trusting_client();
    assert_non_null(sc);
    assert_non_null(cc);
    struct server *s = server_start(address, sc, NULL, NULL, 0, 0);
    assert_non_null(s);
    int fd;
    netx_tls *t = client_dial(cc, host, s->port, &fd);
    if (t == NULL) {
        fail_msg("tls connect to %s: %s", host, netx_last_error());
    }
    assert_non_null(strstr(netx_tls_peer_subject(t), "CN=localhost"));
    netx_tls_close(t);
    server_join(s, NULL);
    netx_tls_config_free(cc);
    netx_tls_config_free(sc);
}

static void tls_connect_ipv4_literal_verifies_ip_san(void **state)
{
    (void)state;
    expect_literal_verifies("127.0.0.1", "127.0.0.1");
}

static void tls_connect_ipv6_literal_verifies_ip_san(void **state)
{
    (void)state;
    expect_literal_verifies("::1", "::1");
}

/* "[::1]", as in a URL, is the address ::1. */
static void tls_connect_bracketed_ipv6_literal_verifies_ip_san(void **state)
{
    (void)state;
    expect_literal_verifies("::1", "[::1]");
}

/* A connection may outlive its configuration ("connections made from it
 * keep what they need"): under ASan or valgrind a use after free shows. */
static void tls_config_free_connection_outlives_it(void **state)
{
    (void)state;
    struct echo_setup e;
    char line[8] = "";
    echo_setup(&e, act_echo, NULL, 0);
    netx_tls_config_free(e.client_cfg);
    e.client_cfg = NULL;
    assert_int_equal(netx_tls_send_all(e.t, "still\n", 6), 0);
    assert_int_equal(netx_tls_recv_all(e.t, line, 6), 6);
    assert_string_equal(line, "still\n");
    echo_teardown(&e, NULL);
}

/* ------------------------------------------------------------------------
 * What the client sends: SNI for a name, never for an IP literal
 * ------------------------------------------------------------------------ */

/*
 * Find extension type in a ClientHello record (hello, len bytes) and return
 * its data (and *ext_len), or NULL. The layout (RFC 8446, 4.1.2): record
 * header (5), handshake header (4), version (2), random (32), session id
 * (1 + n), cipher suites (2 + n), compression methods (1 + n), extensions
 * (2 + n), each of them type (2), length (2), data.
 */
static const unsigned char *hello_extension(const unsigned char *hello, size_t len, unsigned type,
                                            size_t *ext_len)
{
    size_t p = 5 + 4 + 2 + 32;
    if (len < p + 1) {
        return NULL;
    }
    p += 1 + (size_t)hello[p];
    if (len < p + 2) {
        return NULL;
    }
    p += 2 + ((size_t)hello[p] << 8 | hello[p + 1]);
    if (len < p + 1) {
        return NULL;
    }
    p += 1 + (size_t)hello[p];
    if (len < p + 2) {
        return NULL;
    }
    size_t end = p + 2 + ((size_t)hello[p] << 8 | hello[p + 1]);
    p += 2;
    if (end > len) {
        return NULL;
    }
    while (p + 4 <= end) {
        unsigned t = (unsigned)hello[p] << 8 | hello[p + 1];
        size_t n = (size_t)hello[p + 2] << 8 | hello[p + 3];
        p += 4;
        if (p + n > end) {
            return NULL;
        }
        if (t == type) {
            *ext_len = n;
            return hello + p;
        }
        p += n;
    }
    return NULL;
}

#define EXT_SERVER_NAME        0
#define EXT_SUPPORTED_VERSIONS 43

/* Start a handshake as host on a non-blocking socket (it sends its
 * ClientHello and returns), and catch that ClientHello on a raw server
 * socket. Returns its length. */
static size_t capture_client_hello(const char *host, unsigned char *hello, size_t cap)
{
    int lfd = netx_tcp_listen("127.0.0.1", 0, 1);
    assert_true(lfd >= 0);
    int fd = netx_tcp_connect(host, (uint16_t)netx_local_port(lfd), GUARD_MS);
    assert_true(fd >= 0);
    int srv = netx_accept(lfd, NULL);
    assert_true(srv >= 0);
    assert_int_equal(netx_set_timeout(srv, GUARD_MS), 0);
    assert_int_equal(netx_set_nonblocking(fd, 1), 0);
    netx_tls_config *c = trusting_client();
    assert_non_null(c);
    netx_tls *t = netx_tls_connect(c, fd, host, GUARD_MS);
    assert_non_null(t);
    size_t have = 0;
    size_t want = 5;
    while (have < want) {
        ssize_t n = netx_recv(srv, hello + have, cap - have);
        assert_true(n > 0);
        have += (size_t)n;
        if (have >= 5) {
            want = 5 + ((size_t)hello[3] << 8 | hello[4]);
            assert_true(want <= cap);
        }
    }
    assert_int_equal(hello[0], 22); /* a handshake record */
    assert_int_equal(hello[5], 1);  /* a ClientHello */
    netx_tls_close(t);
    netx_tls_config_free(c);
    netx_close(srv);
    netx_close(lfd);
    return have;
}

static void tls_connect_name_sends_sni(void **state)
{
    (void)state;
    unsigned char hello[4096];
    size_t len = capture_client_hello("localhost", hello, sizeof hello);
    size_t n = 0;
    const unsigned char *sni = hello_extension(hello, len, EXT_SERVER_NAME, &n);
    assert_non_null(sni);
    /* list length (2), name type 0 (1), name length (2), the name */
    assert_int_equal(n, 5 + strlen("localhost"));
    assert_int_equal(sni[2], 0);
    assert_memory_equal(sni + 5, "localhost", strlen("localhost"));
}

static void tls_connect_ip_literal_sends_no_sni(void **state)
{
    (void)state;
    unsigned char hello[4096];
    size_t len = capture_client_hello("127.0.0.1", hello, sizeof hello);
    size_t n = 0;
    /* The hello was read right: another extension is there. */
    assert_non_null(hello_extension(hello, len, EXT_SUPPORTED_VERSIONS, &n));
    assert_null(hello_extension(hello, len, EXT_SERVER_NAME, &n));
}

/* ------------------------------------------------------------------------
 * The handshake refuses what it must, and says why
 * ------------------------------------------------------------------------ */

/* Connect as host to a server with cert and key; the handshake must fail
 * with EPROTO, the socket closed, and exactly the sentence
 * "tls handshake with HOST:PORT (127.0.0.1): certificate verify failed: "
 * followed by verify. What the server saw goes to *server (if not NULL). */
static void expect_verify_failure(netx_tls_config *cc, enum file cert, enum file key,
                                  const char *host, const char *verify,
                                  struct server_result *server)
{
    netx_tls_config *sc = server_config(cert, key);
    assert_non_null(sc);
    struct server *s = server_start("127.0.0.1", sc, NULL, NULL, 0, 0);
    assert_non_null(s);
    unsigned port = s->port;
    int fd = netx_tcp_connect(host, s->port, GUARD_MS);
    assert_true(fd >= 0);
    assert_int_equal(netx_set_timeout(fd, GUARD_MS), 0);
    errno = 0;
    netx_tls *t = netx_tls_connect(cc, fd, host, GUARD_MS);
    int err = errno;
    char text[512];
    snprintf(text, sizeof text, "%s", netx_last_error());
    struct server_result r;
    server_join(s, &r);
    netx_tls_config_free(sc);
    assert_null(t);
    assert_int_equal(err, EPROTO);
    assert_false(fd_is_open(fd));
    char want[512];
    snprintf(want, sizeof want,
             "tls handshake with %s:%u (127.0.0.1): certificate verify failed: %s", host, port,
             verify);
    assert_string_equal(text, want);
    if (server != NULL) {
        *server = r;
    }
}

static void tls_connect_wrong_ca_eproto(void **state)
{
    (void)state;
    netx_tls_config *cc = trusting_client();
    assert_non_null(cc);
    expect_verify_failure(cc, WRONG_CA_CERT, WRONG_CA_KEY, "localhost",
                          "unable to get local issuer certificate", NULL);
    netx_tls_config_free(cc);
}

/* The server learns why from the client's alert, and says so. */
static void tls_accept_client_refuses_certificate_eproto(void **state)
{
    (void)state;
    netx_tls_config *cc = trusting_client();
    assert_non_null(cc);
    struct server_result r;
    expect_verify_failure(cc, WRONG_CA_CERT, WRONG_CA_KEY, "localhost",
                          "unable to get local issuer certificate", &r);
    netx_tls_config_free(cc);
    assert_false(r.handshake_ok);
    assert_int_equal(r.err, EPROTO);
    assert_memory_equal(r.text, "tls handshake with 127.0.0.1:", 29);
    const char *alert = strstr(r.text, "): tlsv1 alert unknown ca");
    if (alert == NULL || alert[25] != '\0') {
        fail_msg("the server's sentence: %s", r.text);
    }
}

/* Safe by default: a plain client configuration trusts the system's CAs,
 * and the test CA is not one of them. */
static void tls_connect_default_config_unknown_ca_eproto(void **state)
{
    (void)state;
    netx_tls_config *cc = netx_tls_client_config();
    assert_non_null(cc);
    expect_verify_failure(cc, SERVER_CERT, SERVER_KEY, "localhost",
                          "unable to get local issuer certificate", NULL);
    netx_tls_config_free(cc);
}

static void tls_connect_wrong_name_eproto(void **state)
{
    (void)state;
    netx_tls_config *cc = trusting_client();
    assert_non_null(cc);
    expect_verify_failure(cc, WRONG_NAME_CERT, WRONG_NAME_KEY, "localhost", "hostname mismatch",
                          NULL);
    netx_tls_config_free(cc);
}

/* An IP literal the certificate does not name is refused too (so the
 * IP-literal successes above prove a check, not its absence). */
static void tls_connect_ip_not_in_certificate_eproto(void **state)
{
    (void)state;
    netx_tls_config *cc = trusting_client();
    assert_non_null(cc);
    expect_verify_failure(cc, WRONG_NAME_CERT, WRONG_NAME_KEY, "127.0.0.1", "IP address mismatch",
                          NULL);
    netx_tls_config_free(cc);
}

static void tls_connect_expired_eproto(void **state)
{
    (void)state;
    netx_tls_config *cc = trusting_client();
    assert_non_null(cc);
    expect_verify_failure(cc, EXPIRED_CERT, EXPIRED_KEY, "localhost", "certificate has expired",
                          NULL);
    netx_tls_config_free(cc);
}

/* A NULL or empty host would check no name at all: refused, socket closed. */
static void expect_bad_host(const char *host, const char *why)
{
    int c, s;
    support_tcp_pair("127.0.0.1", &c, &s);
    netx_tls_config *cc = trusting_client();
    assert_non_null(cc);
    errno = 0;
    assert_null(netx_tls_connect(cc, c, host, GUARD_MS));
    assert_int_equal(errno, EINVAL);
    assert_false(fd_is_open(c));
    char want[256];
    snprintf(want, sizeof want, "tls connect on fd %d: %s", c, why);
    assert_non_null(strstr(netx_last_error(), want));
    netx_tls_config_free(cc);
    netx_close(s);
}

static void tls_connect_host_null_einval(void **state)
{
    (void)state;
    expect_bad_host(NULL, "host is NULL: the certificate must be checked against a name");
}

static void tls_connect_host_empty_einval(void **state)
{
    (void)state;
    expect_bad_host("", "host is empty: the certificate must be checked against a name");
}

/* ------------------------------------------------------------------------
 * A peer that speaks no TLS
 * ------------------------------------------------------------------------ */

/* A plain TCP client sends text to a TLS server. */
static void expect_plain_client(const char *text, const char *reason)
{
    netx_tls_config *sc = server_config(SERVER_CERT, SERVER_KEY);
    assert_non_null(sc);
    int lfd = netx_tcp_listen("127.0.0.1", 0, 1);
    assert_true(lfd >= 0);
    int c = netx_tcp_connect("127.0.0.1", (uint16_t)netx_local_port(lfd), GUARD_MS);
    assert_true(c >= 0);
    assert_int_equal(netx_send_all(c, text, strlen(text)), 0);
    int srv = netx_accept(lfd, NULL);
    assert_true(srv >= 0);
    assert_int_equal(netx_set_timeout(srv, GUARD_MS), 0);
    errno = 0;
    assert_null(netx_tls_accept(sc, srv, GUARD_MS));
    assert_int_equal(errno, EPROTO);
    assert_false(fd_is_open(srv));
    char want[256];
    snprintf(want, sizeof want, "tls handshake with 127.0.0.1:%d (fd %d): %s", netx_local_port(c),
             srv, reason);
    assert_string_equal(netx_last_error(), want);
    netx_close(c);
    netx_close(lfd);
    netx_tls_config_free(sc);
}

static void tls_accept_plain_tcp_client_eproto(void **state)
{
    (void)state;
    expect_plain_client("hello\n", "wrong version number");
}

static void tls_accept_plain_http_client_eproto(void **state)
{
    (void)state;
    expect_plain_client("GET / HTTP/1.0\r\n\r\n", "http request");
}

/* A TLS client meets a plain server that greets it with text. */
static void tls_connect_plain_server_eproto(void **state)
{
    (void)state;
    int lfd = netx_tcp_listen("127.0.0.1", 0, 1);
    assert_true(lfd >= 0);
    unsigned port = (unsigned)netx_local_port(lfd);
    int fd = netx_tcp_connect("localhost", (uint16_t)port, GUARD_MS);
    assert_true(fd >= 0);
    int srv = netx_accept(lfd, NULL);
    assert_true(srv >= 0);
    static const char greeting[] = "220 plain text server ready\r\n";
    assert_int_equal(netx_send_all(srv, greeting, sizeof greeting - 1), 0);
    assert_int_equal(netx_set_timeout(fd, GUARD_MS), 0);
    netx_tls_config *cc = trusting_client();
    assert_non_null(cc);
    errno = 0;
    assert_null(netx_tls_connect(cc, fd, "localhost", GUARD_MS));
    assert_int_equal(errno, EPROTO);
    assert_false(fd_is_open(fd));
    char want[128];
    snprintf(want, sizeof want, "tls handshake with localhost:%u (127.0.0.1): wrong version number",
             port);
    const char *text = netx_last_error();
    if (strncmp(text, want, strlen(want)) != 0) { /* a hint may follow */
        fail_msg("\"%s\" does not start with \"%s\"", text, want);
    }
    netx_tls_config_free(cc);
    netx_close(srv);
    netx_close(lfd);
}

/* A server that takes the connection and closes it at once, without a
 * word of TLS: EPROTO (or ECONNRESET, when our hello meets the closed
 * socket first), not a success, nor a hang; with EPROTO the sentence says
 * the handshake was cut, not a stream of data. */
static void tls_connect_server_closes_eproto(void **state)
{
    (void)state;
    int lfd = netx_tcp_listen("127.0.0.1", 0, 1);
    assert_true(lfd >= 0);
    unsigned port = (unsigned)netx_local_port(lfd);
    int fd = netx_tcp_connect("localhost", (uint16_t)port, GUARD_MS);
    assert_true(fd >= 0);
    int srv = netx_accept(lfd, NULL);
    assert_true(srv >= 0);
    assert_int_equal(netx_close(srv), 0);
    assert_int_equal(netx_set_timeout(fd, GUARD_MS), 0);
    netx_tls_config *cc = trusting_client();
    assert_non_null(cc);
    errno = 0;
    assert_null(netx_tls_connect(cc, fd, "localhost", GUARD_MS));
    int err = errno;
    assert_true(err == EPROTO || err == ECONNRESET);
    assert_false(fd_is_open(fd));
    char want[160];
    snprintf(want, sizeof want, "tls handshake with localhost:%u (127.0.0.1): ", port);
    assert_memory_equal(netx_last_error(), want, strlen(want));
    if (err == EPROTO) {
        strcat(want, "the peer closed the connection during the handshake");
        assert_string_equal(netx_last_error(), want);
    }
    netx_tls_config_free(cc);
    netx_close(lfd);
}

/* A client that connects and goes without a word (a port scanner, a
 * health check): the server's handshake fails EPROTO, and says why. */
static void tls_accept_client_closes_eproto(void **state)
{
    (void)state;
    netx_tls_config *sc = server_config(SERVER_CERT, SERVER_KEY);
    assert_non_null(sc);
    int lfd = netx_tcp_listen("127.0.0.1", 0, 1);
    assert_true(lfd >= 0);
    int c = netx_tcp_connect("127.0.0.1", (uint16_t)netx_local_port(lfd), GUARD_MS);
    assert_true(c >= 0);
    int srv = netx_accept(lfd, NULL);
    assert_true(srv >= 0);
    assert_int_equal(netx_close(c), 0);
    assert_int_equal(netx_set_timeout(srv, GUARD_MS), 0);
    errno = 0;
    assert_null(netx_tls_accept(sc, srv, GUARD_MS));
    assert_int_equal(errno, EPROTO);
    assert_non_null(strstr(netx_last_error(), ": the peer closed the connection during the handshake"));
    assert_false(fd_is_open(srv));
    netx_close(lfd);
    netx_tls_config_free(sc);
}

/* ------------------------------------------------------------------------
 * The end of the stream: close_notify, or a cut that is never silent
 * ------------------------------------------------------------------------ */

static const char farewell[] = "the last line\n";
#define FAREWELL_LEN (sizeof farewell - 1)

static void tls_recv_after_close_notify_returns_0(void **state)
{
    (void)state;
    struct echo_setup e;
    char buf[64];
    echo_setup(&e, act_send, farewell, FAREWELL_LEN);
    assert_int_equal(netx_tls_recv_all(e.t, buf, FAREWELL_LEN), (ssize_t)FAREWELL_LEN);
    assert_int_equal(netx_tls_recv(e.t, buf, sizeof buf), 0);
    echo_teardown(&e, NULL);
}

static void tls_recv_all_close_notify_returns_short_count(void **state)
{
    (void)state;
    struct echo_setup e;
    char buf[64];
    echo_setup(&e, act_send, farewell, FAREWELL_LEN);
    assert_int_equal(netx_tls_recv_all(e.t, buf, sizeof buf), (ssize_t)FAREWELL_LEN);
    assert_memory_equal(buf, farewell, FAREWELL_LEN);
    echo_teardown(&e, NULL);
}

/* The server's netx_tls_close() could send its close_notify: 0. */
static void tls_close_sends_close_notify_returns_0(void **state)
{
    (void)state;
    struct echo_setup e;
    char buf[64];
    struct server_result r;
    echo_setup(&e, act_send, farewell, FAREWELL_LEN);
    assert_int_equal(netx_tls_recv_all(e.t, buf, sizeof buf), (ssize_t)FAREWELL_LEN);
    echo_teardown(&e, &r);
    assert_int_equal(r.close_rc, 0);
}

static void tls_recv_truncated_eproto(void **state)
{
    (void)state;
    struct echo_setup e;
    char buf[64];
    echo_setup(&e, act_send_then_cut, farewell, FAREWELL_LEN);
    unsigned port = e.server->port;
    assert_int_equal(netx_tls_recv_all(e.t, buf, FAREWELL_LEN), (ssize_t)FAREWELL_LEN);
    errno = 0;
    assert_int_equal(netx_tls_recv(e.t, buf, sizeof buf), -1);
    assert_int_equal(errno, EPROTO);
    char want[256];
    snprintf(want, sizeof want,
             "tls recv from localhost:%u (127.0.0.1): the peer closed without close_notify: "
             "the data may be cut short",
             port);
    assert_string_equal(netx_last_error(), want);
    echo_teardown(&e, NULL);
}

/* recv_all across the cut: -1 EPROTO, and the bytes that came are counted. */
static void tls_recv_all_truncated_eproto_counts_bytes(void **state)
{
    (void)state;
    struct echo_setup e;
    char buf[64];
    echo_setup(&e, act_send_then_cut, farewell, FAREWELL_LEN);
    errno = 0;
    assert_int_equal(netx_tls_recv_all(e.t, buf, sizeof buf), -1);
    assert_int_equal(errno, EPROTO);
    assert_int_equal(netx_last_transferred(), FAREWELL_LEN);
    assert_memory_equal(buf, farewell, FAREWELL_LEN);
    echo_teardown(&e, NULL);
}

static void tls_recv_truncation_allowed_returns_0(void **state)
{
    (void)state;
    netx_tls_config *sc = server_config(SERVER_CERT, SERVER_KEY);
    netx_tls_config *cc = trusting_client();
    assert_non_null(sc);
    assert_non_null(cc);
    assert_int_equal(netx_tls_config_allow_truncation(cc), 0);
    struct server *s = server_start("127.0.0.1", sc, act_send_then_cut, farewell, FAREWELL_LEN, 0);
    assert_non_null(s);
    int fd;
    netx_tls *t = client_dial(cc, "localhost", s->port, &fd);
    assert_non_null(t);
    char buf[64];
    assert_int_equal(netx_tls_recv_all(t, buf, FAREWELL_LEN), (ssize_t)FAREWELL_LEN);
    assert_int_equal(netx_tls_recv(t, buf, sizeof buf), 0);
    netx_tls_close(t);
    server_join(s, NULL);
    netx_tls_config_free(cc);
    netx_tls_config_free(sc);
}

/* The server cut its own socket: its netx_tls_close() cannot send
 * close_notify and says so, EPIPE - and still closes. */
static void tls_close_after_shutdown_epipe(void **state)
{
    (void)state;
    struct echo_setup e;
    char buf[64];
    struct server_result r;
    echo_setup(&e, act_send_then_cut, farewell, FAREWELL_LEN);
    assert_int_equal(netx_tls_recv_all(e.t, buf, FAREWELL_LEN), (ssize_t)FAREWELL_LEN);
    /* The server's close before ours: our close_notify, reaching a socket
     * shut down for reading, would make its kernel reset the connection,
     * and a slow server (valgrind) would then see ECONNRESET. */
    server_join(e.server, &r);
    netx_tls_close(e.t);
    netx_tls_config_free(e.client_cfg);
    netx_tls_config_free(e.server_cfg);
    assert_int_equal(r.act_rc, 0); /* shutdown() itself worked */
    assert_int_equal(r.close_rc, -1);
    assert_int_equal(r.close_err, EPIPE);
}

/* ------------------------------------------------------------------------
 * No SIGPIPE
 * ------------------------------------------------------------------------ */

/* In a child: SIGPIPE at its default (deadly) disposition, the server
 * resets the connection, the client sends and sends again. */
static int sigpipe_child(void)
{
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    CHILD_CHECK(sigaction(SIGPIPE, &dfl, NULL) == 0);
    netx_tls_config *sc = server_config(SERVER_CERT, SERVER_KEY);
    netx_tls_config *cc = trusting_client();
    CHILD_CHECK(sc != NULL && cc != NULL);
    struct server *s = server_start("127.0.0.1", sc, act_reset, NULL, 0, 0);
    CHILD_CHECK(s != NULL);
    int fd;
    netx_tls *t = client_dial(cc, "localhost", s->port, &fd);
    CHILD_CHECK(t != NULL);
    struct server_result r;
    server_join(s, &r); /* the reset has gone out */
    CHILD_CHECK(r.act_rc == 0);
    static char block[16384];
    int failures = 0;
    for (int i = 0; i < 1000 && failures < 3; i++) {
        if (netx_tls_send(t, block, sizeof block) < 0) {
            CHILD_CHECK(errno == EPIPE || errno == ECONNRESET);
            failures++;
        }
    }
    CHILD_CHECK(failures == 3);
    netx_tls_close(t);
    netx_tls_config_free(cc);
    netx_tls_config_free(sc);
    return 0;
}

static void tls_send_to_reset_peer_no_sigpipe(void **state)
{
    (void)state;
    expect_child_ok(sigpipe_child);
}

/* ------------------------------------------------------------------------
 * Timeouts
 * ------------------------------------------------------------------------ */

/* A call that failed ETIMEDOUT after 300 ms: not before 200, not at the
 * guard. */
static void expect_timed_out(int err, long long took)
{
    assert_int_equal(err, ETIMEDOUT);
    if (took < 200 || took >= 5000) {
        fail_msg("timed out after %lld ms, not about 300", took);
    }
}

/* The server accepts and never speaks: the handshake's own limit. */
static void tls_connect_silent_server_etimedout(void **state)
{
    (void)state;
    int lfd = netx_tcp_listen("127.0.0.1", 0, 1);
    assert_true(lfd >= 0);
    unsigned port = (unsigned)netx_local_port(lfd);
    int fd = netx_tcp_connect("localhost", (uint16_t)port, GUARD_MS);
    assert_true(fd >= 0);
    int srv = netx_accept(lfd, NULL);
    assert_true(srv >= 0);
    netx_tls_config *cc = trusting_client();
    assert_non_null(cc);
    struct watchdog w;
    watchdog_start(&w, srv, GUARD_MS);
    long long start = now_ms();
    errno = 0;
    netx_tls *t = netx_tls_connect(cc, fd, "localhost", 300);
    int err = errno;
    long long took = now_ms() - start;
    assert_false(watchdog_stop(&w));
    assert_null(t);
    expect_timed_out(err, took);
    char want[128];
    snprintf(want, sizeof want, "tls handshake with localhost:%u (127.0.0.1): Connection timed out",
             port);
    assert_string_equal(netx_last_error(), want);
    netx_tls_config_free(cc);
    netx_close(srv);
    netx_close(lfd);
}

/* A client connects and never sends its hello: the server's limit. */
static void tls_accept_silent_client_etimedout(void **state)
{
    (void)state;
    int lfd = netx_tcp_listen("127.0.0.1", 0, 1);
    assert_true(lfd >= 0);
    int c = netx_tcp_connect("127.0.0.1", (uint16_t)netx_local_port(lfd), GUARD_MS);
    assert_true(c >= 0);
    int srv = netx_accept(lfd, NULL);
    assert_true(srv >= 0);
    netx_tls_config *sc = server_config(SERVER_CERT, SERVER_KEY);
    assert_non_null(sc);
    struct watchdog w;
    watchdog_start(&w, c, GUARD_MS);
    long long start = now_ms();
    errno = 0;
    netx_tls *t = netx_tls_accept(sc, srv, 300);
    int err = errno;
    long long took = now_ms() - start;
    assert_false(watchdog_stop(&w));
    assert_null(t);
    expect_timed_out(err, took);
    assert_non_null(strstr(netx_last_error(), "tls handshake with 127.0.0.1:"));
    assert_non_null(strstr(netx_last_error(), ": Connection timed out"));
    netx_tls_config_free(sc);
    netx_close(c);
    netx_close(lfd);
}

/* No limit of its own (0): the socket's timeout bounds the handshake. */
static void tls_connect_socket_timeout_bounds_handshake(void **state)
{
    (void)state;
    int lfd = netx_tcp_listen("127.0.0.1", 0, 1);
    assert_true(lfd >= 0);
    int fd = netx_tcp_connect("localhost", (uint16_t)netx_local_port(lfd), GUARD_MS);
    assert_true(fd >= 0);
    int srv = netx_accept(lfd, NULL);
    assert_true(srv >= 0);
    assert_int_equal(netx_set_timeout(fd, 300), 0);
    netx_tls_config *cc = trusting_client();
    assert_non_null(cc);
    struct watchdog w;
    watchdog_start(&w, srv, GUARD_MS);
    long long start = now_ms();
    errno = 0;
    netx_tls *t = netx_tls_connect(cc, fd, "localhost", 0);
    int err = errno;
    long long took = now_ms() - start;
    assert_false(watchdog_stop(&w));
    assert_null(t);
    expect_timed_out(err, took);
    netx_tls_config_free(cc);
    netx_close(srv);
    netx_close(lfd);
}

/* After the handshake, the socket's timeout bounds a receive. */
static void tls_recv_socket_timeout_etimedout(void **state)
{
    (void)state;
    struct echo_setup e;
    char buf[16];
    echo_setup(&e, act_drain, NULL, 0);
    unsigned port = e.server->port;
    assert_int_equal(netx_set_timeout(e.fd, 300), 0);
    long long start = now_ms();
    errno = 0;
    assert_int_equal(netx_tls_recv(e.t, buf, sizeof buf), -1);
    expect_timed_out(errno, now_ms() - start);
    char want[128];
    snprintf(want, sizeof want, "tls recv from localhost:%u (127.0.0.1): Connection timed out",
             port);
    assert_string_equal(netx_last_error(), want);
    echo_teardown(&e, NULL);
}

/* ------------------------------------------------------------------------
 * The stop signal
 * ------------------------------------------------------------------------ */

/* A netx_tls_recv() in a thread that blocks SIGUSR1, so what ends it is
 * the library's stop, never an EINTR in that thread. */
struct tls_waiter {
    netx_tls *t;
    pthread_t thread;
    _Atomic int started;
    _Atomic int done;
    long rc;
    int err;
    char text[512];
    long long ended_ms;
};

static void *tls_waiter_main(void *arg)
{
    struct tls_waiter *w = arg;
    sigset_t block;
    sigemptyset(&block);
    sigaddset(&block, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &block, NULL);
    char buf[64];
    atomic_store(&w->started, 1);
    w->rc = (long)netx_tls_recv(w->t, buf, sizeof buf);
    w->err = errno;
    snprintf(w->text, sizeof w->text, "%s", netx_last_error());
    w->ended_ms = now_ms();
    atomic_store(&w->done, 1);
    return NULL;
}

static int stop_child(void)
{
    netx_tls_config *sc = server_config(SERVER_CERT, SERVER_KEY);
    netx_tls_config *cc = trusting_client();
    CHILD_CHECK(sc != NULL && cc != NULL);
    struct server *s = server_start("127.0.0.1", sc, act_drain, NULL, 0, 0);
    CHILD_CHECK(s != NULL);
    int fd;
    netx_tls *t = client_dial(cc, "localhost", s->port, &fd);
    CHILD_CHECK(t != NULL);
    CHILD_CHECK(netx_set_timeout(fd, 0) == 0); /* the receive waits for ever */
    CHILD_CHECK(netx_stop_on(SIGUSR1) == 0);

    struct tls_waiter w;
    memset(&w, 0, sizeof w);
    w.t = t;
    CHILD_CHECK(pthread_create(&w.thread, NULL, tls_waiter_main, &w) == 0);
    for (int i = 0; i < 1000 && !atomic_load(&w.started); i++) {
        sleep_ms(1);
    }
    sleep_ms(100);
    CHILD_CHECK(!atomic_load(&w.done)); /* it really waits */
    long long sent = now_ms();
    CHILD_CHECK(kill(getpid(), SIGUSR1) == 0);
    struct watchdog dog; /* as watchdog_start(), which asserts */
    dog.fd = fd;
    dog.ms = GUARD_MS;
    atomic_store(&dog.stop, 0);
    atomic_store(&dog.fired, 0);
    CHILD_CHECK(pthread_create(&dog.thread, NULL, watchdog_main, &dog) == 0);
    long long limit = now_ms() + 2 * GUARD_MS;
    while (!atomic_load(&w.done) && now_ms() < limit) {
        sleep_ms(5); /* the watchdog ends the wait at the latest */
    }
    CHILD_CHECK(atomic_load(&w.done));
    pthread_join(w.thread, NULL);
    CHILD_CHECK(watchdog_stop(&dog) == 0);
    CHILD_CHECK(w.rc == -1);
    CHILD_CHECK(w.err == ECANCELED);
    CHILD_CHECK(w.ended_ms - sent < PROMPT_MS);
    CHILD_CHECK(strstr(w.text, "tls recv from localhost:") == w.text);
    CHILD_CHECK(strstr(w.text, ": stopped by SIGUSR1") != NULL);
    netx_tls_close(t);
    server_join(s, NULL);
    netx_tls_config_free(cc);
    netx_tls_config_free(sc);
    return 0;
}

static void tls_recv_stop_signal_ecanceled(void **state)
{
    (void)state;
    expect_child_ok(stop_child);
}

/* ------------------------------------------------------------------------
 * Non-blocking sockets: EAGAIN, wants, and the bytes inside the library
 * ------------------------------------------------------------------------ */

/* Finish the handshake of a non-blocking connection as an event loop does:
 * poll for what netx_tls_wants() names. 0 when done; else which step
 * failed. */
static int drive_handshake(netx_tls *t)
{
    long long limit = now_ms() + GUARD_MS;
    for (int i = 0; i < 1000 && now_ms() < limit; i++) {
        if (netx_tls_handshake(t) == 0) {
            return 0;
        }
        if (errno != EAGAIN) {
            return -1;
        }
        unsigned wants = netx_tls_wants(t);
        if (wants != NETX_READABLE && wants != NETX_WRITABLE) {
            return -2;
        }
        struct pollfd p = {netx_tls_fd(t), wants == NETX_READABLE ? POLLIN : POLLOUT, 0};
        if (poll(&p, 1, GUARD_MS) != 1) {
            return -3;
        }
    }
    return -4;
}

/* A non-blocking connection to a server that waits for server_open()
 * before its handshake. */
static netx_tls *nonblocking_dial(netx_tls_config *cc, struct server *s)
{
    int fd = netx_tcp_connect("localhost", s->port, GUARD_MS);
    assert_true(fd >= 0);
    assert_int_equal(netx_set_nonblocking(fd, 1), 0);
    netx_tls *t = netx_tls_connect(cc, fd, "localhost", GUARD_MS);
    if (t == NULL) {
        fail_msg("non-blocking tls connect: %s", netx_last_error());
    }
    return t;
}

static void tls_connect_nonblocking_returns_before_handshake(void **state)
{
    (void)state;
    netx_tls_config *sc = server_config(SERVER_CERT, SERVER_KEY);
    netx_tls_config *cc = trusting_client();
    assert_non_null(sc);
    assert_non_null(cc);
    struct server *s = server_start("127.0.0.1", sc, act_drain, NULL, 0, 1);
    assert_non_null(s);
    netx_tls *t = nonblocking_dial(cc, s);
    assert_string_equal(netx_tls_version(t), ""); /* not over */
    errno = 0;
    assert_int_equal(netx_tls_handshake(t), -1);
    assert_int_equal(errno, EAGAIN);
    assert_int_equal(netx_tls_wants(t), NETX_READABLE); /* the server's hello */
    server_open(s);
    netx_tls_close(t);
    server_join(s, NULL);
    netx_tls_config_free(cc);
    netx_tls_config_free(sc);
}

static void tls_handshake_nonblocking_poll_wants_completes(void **state)
{
    (void)state;
    netx_tls_config *sc = server_config(SERVER_CERT, SERVER_KEY);
    netx_tls_config *cc = trusting_client();
    assert_non_null(sc);
    assert_non_null(cc);
    struct server *s = server_start("127.0.0.1", sc, act_drain, NULL, 0, 1);
    assert_non_null(s);
    netx_tls *t = nonblocking_dial(cc, s);
    server_open(s);
    int rc = drive_handshake(t);
    if (rc != 0) {
        fail_msg("drive_handshake: %d (errno %d: %s)", rc, errno, netx_last_error());
    }
    assert_memory_equal(netx_tls_version(t), "TLSv1.", 6);
    assert_non_null(strstr(netx_tls_peer_subject(t), "CN=localhost"));
    netx_tls_close(t);
    server_join(s, NULL);
    netx_tls_config_free(cc);
    netx_tls_config_free(sc);
}

static void tls_recv_nonblocking_nothing_eagain_wants_readable(void **state)
{
    (void)state;
    netx_tls_config *sc = server_config(SERVER_CERT, SERVER_KEY);
    netx_tls_config *cc = trusting_client();
    assert_non_null(sc);
    assert_non_null(cc);
    struct server *s = server_start("127.0.0.1", sc, act_drain, NULL, 0, 1);
    assert_non_null(s);
    netx_tls *t = nonblocking_dial(cc, s);
    server_open(s);
    assert_int_equal(drive_handshake(t), 0);
    char buf[16];
    errno = 0;
    assert_int_equal(netx_tls_recv(t, buf, sizeof buf), -1);
    assert_int_equal(errno, EAGAIN);
    assert_int_equal(netx_tls_wants(t), NETX_READABLE);
    netx_tls_close(t);
    server_join(s, NULL);
    netx_tls_config_free(cc);
    netx_tls_config_free(sc);
}

/* The server sends 1000 bytes in one record; the client reads 10. The other
 * 990 are decrypted and inside the library: pending says so while poll()
 * on the socket does not, and the next recv returns them. */
static void tls_pending_counts_bytes_poll_cannot_see(void **state)
{
    (void)state;
    enum { LEN = 1000, FIRST = 10 };
    unsigned char out[LEN];
    unsigned char in[LEN];
    support_pattern(out, LEN, 3);
    struct echo_setup e;
    struct server_result r;
    echo_setup(&e, act_send_once_then_drain, out, LEN);
    assert_int_equal(netx_set_nonblocking(e.fd, 1), 0);
    ssize_t n = -1;
    for (int i = 0; i < 100 && n != FIRST; i++) {
        struct pollfd p = {e.fd, POLLIN, 0};
        assert_int_equal(poll(&p, 1, GUARD_MS), 1);
        n = netx_tls_recv(e.t, in, FIRST); /* EAGAIN after a session ticket */
        assert_true(n == FIRST || (n == -1 && errno == EAGAIN));
    }
    assert_int_equal(n, FIRST);
    assert_int_equal(netx_tls_pending(e.t), LEN - FIRST);
    struct pollfd p = {e.fd, POLLIN, 0};
    assert_int_equal(poll(&p, 1, 0), 0); /* the socket has nothing */
    assert_int_equal(netx_tls_recv(e.t, in + FIRST, LEN), LEN - FIRST);
    assert_memory_equal(in, out, LEN);
    assert_int_equal(netx_tls_pending(e.t), 0);
    echo_teardown(&e, &r);
    assert_int_equal(r.act_rc, LEN); /* it was one send */
}

/*
 * A netx_writer over TLS in an event loop: 2 MiB queued in pieces on a
 * non-blocking socket with a small send buffer, so TLS says EAGAIN over
 * and over while more bytes queue behind the ones it holds; flushed when
 * poll() says what netx_tls_wants(). The server checks every byte.
 */
static void tls_writer_nonblocking_sends_all_in_order(void **state)
{
    (void)state;
    enum { LEN = 2 << 20, CAP = 256 << 10 };
    static const size_t sizes[] = {65536, 1, 30011, 16384, 777};
    unsigned char *out = malloc(LEN);
    assert_non_null(out);
    support_pattern(out, LEN, 11);
    struct echo_setup e;
    struct server_result r;
    echo_setup(&e, act_sink, out, LEN);
    int small = 16384;
    assert_int_equal(setsockopt(e.fd, SOL_SOCKET, SO_SNDBUF, &small, sizeof small), 0);
    assert_int_equal(netx_set_nonblocking(e.fd, 1), 0);
    netx_writer w;
    assert_int_equal(netx_tls_writer_init(&w, e.t, CAP), 0);
    size_t queued = 0;
    int waited = 0;
    long long limit = now_ms() + GUARD_MS;
    for (unsigned i = 0; (queued < LEN || netx_writer_pending(&w) > 0) && now_ms() < limit;) {
        size_t piece = sizes[i % (sizeof sizes / sizeof sizes[0])];
        if (piece > LEN - queued) {
            piece = LEN - queued;
        }
        if (piece > 0 && piece <= netx_writer_room(&w)) {
            assert_int_equal(netx_writer_send(&w, out + queued, piece), 0);
            queued += piece;
            i++;
            continue;
        }
        /* Full (or all queued): wait for what TLS wants, then flush.
         * Bytes are pending only when TLS could take no more, so it must
         * want something: with a 0 here a loop would wait for nothing. */
        assert_true(netx_writer_pending(&w) > 0);
        unsigned wants = netx_tls_wants(e.t);
        assert_true(wants != 0);
        struct pollfd p = {e.fd, wants == NETX_READABLE ? POLLIN : POLLOUT, 0};
        assert_int_equal(poll(&p, 1, GUARD_MS), 1);
        assert_int_equal(netx_writer_flush(&w), 0);
        waited++;
    }
    assert_int_equal(queued, LEN);
    assert_int_equal(netx_writer_pending(&w), 0);
    assert_true(waited > 0); /* the writer did keep bytes */
    netx_writer_free(&w);
    assert_int_equal(netx_set_nonblocking(e.fd, 0), 0);
    char ack = 0;
    assert_int_equal(netx_tls_recv_all(e.t, &ack, 1), 1);
    echo_teardown(&e, &r);
    free(out);
    if (r.act_rc != 1) {
        fail_msg("the server did not get the 2 MiB intact: %s", r.text);
    }
}

/* ------------------------------------------------------------------------
 * A netx_reader over TLS
 * ------------------------------------------------------------------------ */

static void tls_reader_lines_in_odd_pieces(void **state)
{
    (void)state;
    static const char *const pieces[] = {"first li", "ne\nsec", "o", "nd line\nthi", "rd\n", NULL};
    struct echo_setup e;
    echo_setup(&e, act_send_pieces, pieces, 0);
    char storage[64];
    char line[64];
    netx_reader r;
    assert_int_equal(netx_tls_reader_init(&r, e.t, storage, sizeof storage), 0);
    assert_int_equal(netx_read_line(&r, line, sizeof line), 11);
    assert_string_equal(line, "first line\n");
    assert_int_equal(netx_read_line(&r, line, sizeof line), 12);
    assert_string_equal(line, "second line\n");
    assert_int_equal(netx_read_line(&r, line, sizeof line), 6);
    assert_string_equal(line, "third\n");
    assert_int_equal(netx_read_line(&r, line, sizeof line), 0); /* close_notify */
    echo_teardown(&e, NULL);
}

static void tls_reader_overlong_line_emsgsize_next_intact(void **state)
{
    (void)state;
    static const char *const pieces[] = {"this line is far too long ", "for the reader\n", "ok\n",
                                         NULL};
    struct echo_setup e;
    echo_setup(&e, act_send_pieces, pieces, 0);
    char storage[16];
    char line[64];
    netx_reader r;
    assert_int_equal(netx_tls_reader_init(&r, e.t, storage, sizeof storage), 0);
    errno = 0;
    assert_int_equal(netx_read_line(&r, line, sizeof line), -1);
    assert_int_equal(errno, EMSGSIZE);
    assert_int_equal(netx_read_line(&r, line, sizeof line), 3);
    assert_string_equal(line, "ok\n");
    echo_teardown(&e, NULL);
}

/* ------------------------------------------------------------------------
 * Configuration errors
 * ------------------------------------------------------------------------ */

static void tls_server_config_missing_cert_enoent(void **state)
{
    (void)state;
    char missing[400];
    snprintf(missing, sizeof missing, "%s/missing.pem", dir);
    errno = 0;
    assert_null(netx_tls_server_config(missing, paths[SERVER_KEY]));
    assert_int_equal(errno, ENOENT);
    char want[512];
    snprintf(want, sizeof want, "tls server config: certificate %s: No such file or directory",
             missing);
    assert_string_equal(netx_last_error(), want);
}

static void tls_server_config_missing_key_enoent(void **state)
{
    (void)state;
    char missing[400];
    snprintf(missing, sizeof missing, "%s/missing.key", dir);
    errno = 0;
    assert_null(netx_tls_server_config(paths[SERVER_CERT], missing));
    assert_int_equal(errno, ENOENT);
    char want[512];
    snprintf(want, sizeof want, "tls server config: key %s: No such file or directory", missing);
    assert_string_equal(netx_last_error(), want);
}

static void tls_server_config_cert_not_pem_eproto(void **state)
{
    (void)state;
    errno = 0;
    assert_null(netx_tls_server_config(paths[NOT_PEM], paths[SERVER_KEY]));
    assert_int_equal(errno, EPROTO);
    char want[512];
    snprintf(want, sizeof want, "tls server config: certificate %s: ", paths[NOT_PEM]);
    assert_memory_equal(netx_last_error(), want, strlen(want));
}

static void tls_server_config_key_not_pem_eproto(void **state)
{
    (void)state;
    errno = 0;
    assert_null(netx_tls_server_config(paths[SERVER_CERT], paths[NOT_PEM]));
    assert_int_equal(errno, EPROTO);
    char want[512];
    snprintf(want, sizeof want, "tls server config: key %s: ", paths[NOT_PEM]);
    assert_memory_equal(netx_last_error(), want, strlen(want));
}

/* OpenSSL 3's SSL_CTX_use_PrivateKey_file() compares the key with the
 * certificate itself and fails in its own words, "key values mismatch";
 * the sentence must still be the documented one. */
static void tls_server_config_key_mismatch_eproto(void **state)
{
    (void)state;
    errno = 0;
    assert_null(netx_tls_server_config(paths[SERVER_CERT], paths[OTHER_KEY]));
    assert_int_equal(errno, EPROTO);
    char want[512];
    snprintf(want, sizeof want, "tls server config: key %s: does not match the certificate",
             paths[OTHER_KEY]);
    assert_string_equal(netx_last_error(), want);
}

static void tls_server_config_null_einval(void **state)
{
    (void)state;
    errno = 0;
    assert_null(netx_tls_server_config(NULL, paths[SERVER_KEY]));
    assert_int_equal(errno, EINVAL);
    assert_non_null(strstr(netx_last_error(), "cert_file is NULL"));
    errno = 0;
    assert_null(netx_tls_server_config(paths[SERVER_CERT], NULL));
    assert_int_equal(errno, EINVAL);
    assert_non_null(strstr(netx_last_error(), "key_file is NULL"));
}

static void tls_config_ca_file_missing_enoent(void **state)
{
    (void)state;
    char missing[400];
    snprintf(missing, sizeof missing, "%s/missing-ca.pem", dir);
    netx_tls_config *c = netx_tls_client_config();
    assert_non_null(c);
    errno = 0;
    assert_int_equal(netx_tls_config_ca_file(c, missing), -1);
    assert_int_equal(errno, ENOENT);
    char want[512];
    snprintf(want, sizeof want, "tls ca file %s: No such file or directory", missing);
    assert_string_equal(netx_last_error(), want);
    netx_tls_config_free(c);
}

static void tls_config_ca_file_not_pem_eproto(void **state)
{
    (void)state;
    netx_tls_config *c = netx_tls_client_config();
    assert_non_null(c);
    errno = 0;
    assert_int_equal(netx_tls_config_ca_file(c, paths[NOT_PEM]), -1);
    assert_int_equal(errno, EPROTO);
    char want[512];
    snprintf(want, sizeof want, "tls ca file %s: ", paths[NOT_PEM]);
    assert_memory_equal(netx_last_error(), want, strlen(want));
    netx_tls_config_free(c);
}

static void tls_config_null_arguments_einval(void **state)
{
    (void)state;
    netx_tls_config *c = netx_tls_client_config();
    netx_tls_config *sc = server_config(SERVER_CERT, SERVER_KEY);
    assert_non_null(c);
    assert_non_null(sc);
    errno = 0;
    assert_int_equal(netx_tls_config_ca_file(NULL, paths[CA_CERT]), -1);
    assert_int_equal(errno, EINVAL);
    errno = 0;
    assert_int_equal(netx_tls_config_ca_file(c, NULL), -1);
    assert_int_equal(errno, EINVAL);
    errno = 0;
    assert_int_equal(netx_tls_config_insecure_no_verify(NULL), -1);
    assert_int_equal(errno, EINVAL);
    errno = 0;
    assert_int_equal(netx_tls_config_insecure_no_verify(sc), -1); /* a server's */
    assert_int_equal(errno, EINVAL);
    errno = 0;
    assert_int_equal(netx_tls_config_allow_truncation(NULL), -1);
    assert_int_equal(errno, EINVAL);
    netx_tls_config_free(NULL); /* allowed */
    netx_tls_config_free(c);
    netx_tls_config_free(sc);
}

/* The connection functions refuse NULL where they must, and answer for a
 * NULL connection without crashing. */
static void tls_connection_null_arguments_einval(void **state)
{
    (void)state;
    char buf[4];
    netx_reader r;
    errno = 0;
    assert_int_equal(netx_tls_send(NULL, "x", 1), -1);
    assert_int_equal(errno, EINVAL);
    errno = 0;
    assert_int_equal(netx_tls_recv(NULL, buf, sizeof buf), -1);
    assert_int_equal(errno, EINVAL);
    errno = 0;
    assert_int_equal(netx_tls_send_all(NULL, "x", 1), -1);
    assert_int_equal(errno, EINVAL);
    errno = 0;
    assert_int_equal(netx_tls_recv_all(NULL, buf, sizeof buf), -1);
    assert_int_equal(errno, EINVAL);
    errno = 0;
    assert_int_equal(netx_tls_handshake(NULL), -1);
    assert_int_equal(errno, EINVAL);
    errno = 0;
    assert_int_equal(netx_tls_reader_init(&r, NULL, buf, sizeof buf), -1);
    assert_int_equal(errno, EINVAL);
    assert_int_equal(netx_tls_close(NULL), 0);
    assert_int_equal(netx_tls_fd(NULL), -1);
    assert_int_equal(netx_tls_pending(NULL), 0);
    assert_int_equal(netx_tls_wants(NULL), 0);
    assert_string_equal(netx_tls_version(NULL), "");
    assert_string_equal(netx_tls_cipher(NULL), "");
    assert_string_equal(netx_tls_peer_subject(NULL), "");
}

/* The wrong side's configuration: EINVAL, and the socket closed all the
 * same (the connection owned it). */
static void tls_connect_server_or_null_config_einval_closes_fd(void **state)
{
    (void)state;
    int c, s;
    support_tcp_pair("127.0.0.1", &c, &s);
    netx_tls_config *sc = server_config(SERVER_CERT, SERVER_KEY);
    assert_non_null(sc);
    errno = 0;
    assert_null(netx_tls_connect(sc, c, "localhost", GUARD_MS));
    assert_int_equal(errno, EINVAL);
    assert_false(fd_is_open(c));
    assert_non_null(strstr(netx_last_error(), "a server configuration"));
    int c2 = dup(s); /* any descriptor: NULL is refused before it is used */
    assert_true(c2 >= 0);
    errno = 0;
    assert_null(netx_tls_connect(NULL, c2, "localhost", GUARD_MS));
    assert_int_equal(errno, EINVAL);
    assert_false(fd_is_open(c2));
    netx_tls_config_free(sc);
    netx_close(s);
}

static void tls_accept_client_or_null_config_einval_closes_fd(void **state)
{
    (void)state;
    int c, s;
    support_tcp_pair("127.0.0.1", &c, &s);
    netx_tls_config *cc = trusting_client();
    assert_non_null(cc);
    errno = 0;
    assert_null(netx_tls_accept(cc, s, GUARD_MS));
    assert_int_equal(errno, EINVAL);
    assert_false(fd_is_open(s));
    assert_non_null(strstr(netx_last_error(), "a client configuration"));
    int s2 = dup(c); /* any descriptor: NULL is refused before it is used */
    assert_true(s2 >= 0);
    errno = 0;
    assert_null(netx_tls_accept(NULL, s2, GUARD_MS));
    assert_int_equal(errno, EINVAL);
    assert_false(fd_is_open(s2));
    netx_tls_config_free(cc);
    netx_close(c);
}

/* ------------------------------------------------------------------------
 * The insecure mode, and the trace
 * ------------------------------------------------------------------------ */

/* Everything a trace file holds (at most cap - 1 bytes), as a string. */
static void trace_read(FILE *f, char *buf, size_t cap)
{
    fflush(f);
    rewind(f);
    size_t n = fread(buf, 1, cap - 1, f);
    buf[n] = '\0';
}

/* Connect to a server with cert and key, with cc, tracing into *trace;
 * the client's descriptor goes to *fd. */
static netx_tls *traced_dial(netx_tls_config *cc, struct server *s, FILE *trace, int *fd)
{
    *fd = netx_tcp_connect("localhost", s->port, GUARD_MS);
    assert_true(*fd >= 0);
    assert_int_equal(netx_set_timeout(*fd, GUARD_MS), 0);
    netx_trace(trace);
    netx_tls *t = netx_tls_connect(cc, *fd, "localhost", GUARD_MS);
    netx_trace(NULL);
    return t;
}

static void tls_connect_insecure_wrong_ca_connects(void **state)
{
    (void)state;
    netx_tls_config *sc = server_config(WRONG_CA_CERT, WRONG_CA_KEY);
    netx_tls_config *cc = trusting_client();
    assert_non_null(sc);
    assert_non_null(cc);
    assert_int_equal(netx_tls_config_insecure_no_verify(cc), 0);
    struct server *s = server_start("127.0.0.1", sc, act_echo, NULL, 0, 0);
    assert_non_null(s);
    int fd;
    netx_tls *t = client_dial(cc, "localhost", s->port, &fd);
    if (t == NULL) {
        fail_msg("insecure tls connect: %s", netx_last_error());
    }
    char line[8] = "";
    assert_int_equal(netx_tls_send_all(t, "anyone\n", 7), 0);
    assert_int_equal(netx_tls_recv_all(t, line, 7), 7);
    assert_string_equal(line, "anyone\n");
    netx_tls_close(t);
    server_join(s, NULL);
    netx_tls_config_free(cc);
    netx_tls_config_free(sc);
}

static void tls_trace_insecure_warns_not_checked(void **state)
{
    (void)state;
    netx_tls_config *sc = server_config(WRONG_CA_CERT, WRONG_CA_KEY);
    netx_tls_config *cc = trusting_client();
    assert_non_null(sc);
    assert_non_null(cc);
    assert_int_equal(netx_tls_config_insecure_no_verify(cc), 0);
    struct server *s = server_start("127.0.0.1", sc, act_drain, NULL, 0, 0);
    assert_non_null(s);
    FILE *trace = tmpfile();
    assert_non_null(trace);
    int fd;
    netx_tls *t = traced_dial(cc, s, trace, &fd);
    assert_non_null(t);
    netx_tls_close(t);
    server_join(s, NULL); /* its trace lines are written before we read */
    char text[8192];
    trace_read(trace, text, sizeof text);
    fclose(trace);
    char want[128];
    snprintf(want, sizeof want, "tls WARNING: fd %d: the server's certificate is NOT checked", fd);
    if (strstr(text, want) == NULL) {
        fail_msg("no warning in the trace:\n%s", text);
    }
    snprintf(want, sizeof want, "netx: tls handshake(%d) = 0  TLSv1.", fd);
    const char *line = strstr(text, want);
    assert_non_null(line);
    const char *end = strchr(line, '\n');
    assert_non_null(end);
    const char *nv = strstr(line, "NOT verified CN=localhost");
    assert_true(nv != NULL && nv < end);
    netx_tls_config_free(cc);
    netx_tls_config_free(sc);
}

static void tls_trace_handshake_shows_version_and_verified_subject(void **state)
{
    (void)state;
    netx_tls_config *sc = server_config(SERVER_CERT, SERVER_KEY);
    netx_tls_config *cc = trusting_client();
    assert_non_null(sc);
    assert_non_null(cc);
    struct server *s = server_start("127.0.0.1", sc, act_drain, NULL, 0, 0);
    assert_non_null(s);
    FILE *trace = tmpfile();
    assert_non_null(trace);
    int fd;
    netx_tls *t = traced_dial(cc, s, trace, &fd);
    assert_non_null(t);
    netx_tls_close(t);
    server_join(s, NULL);
    char text[8192];
    trace_read(trace, text, sizeof text);
    fclose(trace);
    char want[128];
    snprintf(want, sizeof want, "netx: tls handshake(%d) = 0  TLSv1.", fd);
    const char *line = strstr(text, want);
    if (line == NULL) {
        fail_msg("no handshake line for fd %d in the trace:\n%s", fd, text);
    }
    const char *end = strchr(line, '\n');
    assert_non_null(end);
    const char *v = strstr(line, ", verified CN=localhost");
    assert_true(v != NULL && v < end);
    assert_null(strstr(text, "WARNING"));
    netx_tls_config_free(cc);
    netx_tls_config_free(sc);
}

/* ------------------------------------------------------------------------
 * A success leaves errno and the error record alone
 * ------------------------------------------------------------------------ */

static void tls_success_keeps_errno(void **state)
{
    (void)state;
    netx_tls_config *sc = server_config(SERVER_CERT, SERVER_KEY);
    netx_tls_config *cc = trusting_client();
    assert_non_null(sc);
    assert_non_null(cc);
    struct server *s = server_start("127.0.0.1", sc, act_echo, NULL, 0, 0);
    assert_non_null(s);
    int fd = netx_tcp_connect("localhost", s->port, GUARD_MS);
    assert_true(fd >= 0);
    assert_int_equal(netx_set_timeout(fd, GUARD_MS), 0);
    char line[8] = "";
    errno = 4242;
    netx_tls *t = netx_tls_connect(cc, fd, "localhost", GUARD_MS);
    assert_non_null(t);
    assert_int_equal(errno, 4242);
    assert_int_equal(netx_tls_send(t, "same\n", 5), 5);
    assert_int_equal(errno, 4242);
    assert_int_equal(netx_tls_recv_all(t, line, 5), 5); /* waits for the echo */
    assert_int_equal(errno, 4242);
    assert_int_equal(netx_tls_send_all(t, "x", 1), 0);
    assert_int_equal(errno, 4242);
    assert_int_equal(netx_tls_recv(t, line, 1), 1);
    assert_int_equal(errno, 4242);
    assert_int_equal(netx_tls_close(t), 0);
    assert_int_equal(errno, 4242);
    server_join(s, NULL);
    netx_tls_config_free(cc);
    netx_tls_config_free(sc);
}

static void tls_success_keeps_error_record(void **state)
{
    (void)state;
    netx_tls_config *sc = server_config(SERVER_CERT, SERVER_KEY);
    netx_tls_config *cc = trusting_client();
    assert_non_null(sc);
    assert_non_null(cc);
    struct server *s = server_start("127.0.0.1", sc, act_echo, NULL, 0, 0);
    assert_non_null(s);
    int fd = netx_tcp_connect("localhost", s->port, GUARD_MS);
    assert_true(fd >= 0);
    assert_int_equal(netx_set_timeout(fd, GUARD_MS), 0);
    /* A failure to remember. */
    assert_int_equal(netx_tls_config_ca_file(NULL, NULL), -1);
    char before[512];
    snprintf(before, sizeof before, "%s", netx_last_error());
    char line[8] = "";
    netx_tls *t = netx_tls_connect(cc, fd, "localhost", GUARD_MS);
    assert_non_null(t);
    assert_int_equal(netx_tls_send_all(t, "same\n", 5), 0);
    assert_int_equal(netx_tls_recv_all(t, line, 5), 5);
    assert_int_equal(netx_tls_close(t), 0);
    assert_string_equal(netx_last_error(), before);
    assert_int_equal(netx_last_errno(), EINVAL);
    server_join(s, NULL);
    netx_tls_config_free(cc);
    netx_tls_config_free(sc);
}

int main(void)
{
    support_offline_resolver();
    const struct CMUnitTest tests[] = {
        TEST(tls_connect_localhost_echo_roundtrip),
        TEST(tls_connect_reports_version_cipher_subject),
        TEST(tls_handshake_after_blocking_connect_returns_0),
        TEST(tls_echo_10mib_arrives_intact),
        TEST(tls_connect_ipv4_literal_verifies_ip_san),
        TEST(tls_connect_ipv6_literal_verifies_ip_san),
        TEST(tls_connect_bracketed_ipv6_literal_verifies_ip_san),
        TEST(tls_config_free_connection_outlives_it),
        TEST(tls_connect_name_sends_sni),
        TEST(tls_connect_ip_literal_sends_no_sni),
        TEST(tls_connect_wrong_ca_eproto),
        TEST(tls_accept_client_refuses_certificate_eproto),
        TEST(tls_connect_default_config_unknown_ca_eproto),
        TEST(tls_connect_wrong_name_eproto),
        TEST(tls_connect_ip_not_in_certificate_eproto),
        TEST(tls_connect_expired_eproto),
        TEST(tls_connect_host_null_einval),
        TEST(tls_connect_host_empty_einval),
        TEST(tls_accept_plain_tcp_client_eproto),
        TEST(tls_accept_plain_http_client_eproto),
        TEST(tls_connect_plain_server_eproto),
        TEST(tls_connect_server_closes_eproto),
        TEST(tls_accept_client_closes_eproto),
        TEST(tls_recv_after_close_notify_returns_0),
        TEST(tls_recv_all_close_notify_returns_short_count),
        TEST(tls_close_sends_close_notify_returns_0),
        TEST(tls_recv_truncated_eproto),
        TEST(tls_recv_all_truncated_eproto_counts_bytes),
        TEST(tls_recv_truncation_allowed_returns_0),
        TEST(tls_close_after_shutdown_epipe),
        TEST(tls_send_to_reset_peer_no_sigpipe),
        TEST(tls_connect_silent_server_etimedout),
        TEST(tls_accept_silent_client_etimedout),
        TEST(tls_connect_socket_timeout_bounds_handshake),
        TEST(tls_recv_socket_timeout_etimedout),
        TEST(tls_recv_stop_signal_ecanceled),
        TEST(tls_connect_nonblocking_returns_before_handshake),
        TEST(tls_handshake_nonblocking_poll_wants_completes),
        TEST(tls_recv_nonblocking_nothing_eagain_wants_readable),
        TEST(tls_pending_counts_bytes_poll_cannot_see),
        TEST(tls_writer_nonblocking_sends_all_in_order),
        TEST(tls_reader_lines_in_odd_pieces),
        TEST(tls_reader_overlong_line_emsgsize_next_intact),
        TEST(tls_server_config_missing_cert_enoent),
        TEST(tls_server_config_missing_key_enoent),
        TEST(tls_server_config_cert_not_pem_eproto),
        TEST(tls_server_config_key_not_pem_eproto),
        TEST(tls_server_config_key_mismatch_eproto),
        TEST(tls_server_config_null_einval),
        TEST(tls_config_ca_file_missing_enoent),
        TEST(tls_config_ca_file_not_pem_eproto),
        TEST(tls_config_null_arguments_einval),
        TEST(tls_connection_null_arguments_einval),
        TEST(tls_connect_server_or_null_config_einval_closes_fd),
        TEST(tls_accept_client_or_null_config_einval_closes_fd),
        TEST(tls_connect_insecure_wrong_ca_connects),
        TEST(tls_trace_insecure_warns_not_checked),
        TEST(tls_trace_handshake_shows_version_and_verified_subject),
        TEST(tls_success_keeps_errno),
        TEST(tls_success_keeps_error_record),
    };
    return cmocka_run_group_tests_name("tls", tests, certs_make, certs_remove);
}
