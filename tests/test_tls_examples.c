/*
 * test_tls_examples.c - tls_server and tls_client (the article's guide step 7,
 * "Secure Your Connection") end to end: with each other; with real TLS
 * peers on either side - openssl s_client and s_server, Python's ssl module
 * as the article uses it; against certificates a client must refuse; with
 * peers that speak no TLS or never finish a handshake; with a client that
 * stops reading; through the graceful stop; and through their command lines.
 *
 * The certificates are made when the group starts, with OpenSSL's API (the
 * openssl command cannot date a certificate in the past), in a temporary
 * directory removed when the group ends:
 *
 *   ca.pem          the CA the clients are told to trust (-C)
 *   server.pem      signed by it, CN=localhost, DNS:localhost, IP:127.0.0.1
 *   wrong-ca.pem    the same names, signed by another CA
 *   wrong-name.pem  signed by the CA, for elsewhere.invalid
 *   expired.pem     signed by the CA, for localhost, expired yesterday
 *
 * Every leaf shares one key, server-key.pem. Keys are EC P-256.
 *
 * The programs are the ones in this build (NETX_EXAMPLES_DIR), started from
 * the repository root; the outside peers (openssl, python3) are found in
 * PATH, and the cases that need python3 are skipped without it.
 */
#include "proc.h"
#include "support.h"

#include <netx_tls.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define WAIT_MS 10000 /* for a program to start or end: generous, for ASan */
#define KIB     1024
#define MIB     (1024 * 1024)

static struct proc server, client, peer;

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* ------------------------------------------------------------------------
 * The certificates
 * ------------------------------------------------------------------------ */

enum {
    F_CA,
    F_KEY,
    F_SERVER,
    F_OTHER_CA,
    F_OTHER_KEY,
    F_WRONG_CA,
    F_WRONG_NAME,
    F_EXPIRED,
    F_COUNT
};

static const char *const file_names[F_COUNT] = {
    "ca.pem",           "server-key.pem", "server.pem",     "other-ca.pem",
    "other-ca-key.pem", "wrong-ca.pem",   "wrong-name.pem", "expired.pem"};

static char cert_dir[256];
static char paths[F_COUNT][300];

#define CA_PEM         paths[F_CA]
#define KEY_PEM        paths[F_KEY]
#define SERVER_PEM     paths[F_SERVER]
#define OTHER_KEY_PEM  paths[F_OTHER_KEY]
#define WRONG_CA_PEM   paths[F_WRONG_CA]
#define WRONG_NAME_PEM paths[F_WRONG_NAME]
#define EXPIRED_PEM    paths[F_EXPIRED]

#define DAY (24L * 60 * 60)

/* Add the extension nid = value (in openssl.cnf's words) to cert. */
static int add_ext(X509 *cert, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer, cert, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    int ok = ext != NULL && X509_add_ext(cert, ext, -1) == 1;
    X509_EXTENSION_free(ext);
    return ok;
}

/*
 * A certificate for key, named cn, valid from `from` to `to` seconds from
 * now, signed by issuer's key (NULL: self-signed, a CA). A leaf gets san as
 * its subjectAltName. The extensions are those a strict verifier (Python
 * 3.13's default context) asks for: basic constraints, key usage, key
 * identifiers.
 */
static X509 *make_cert(EVP_PKEY *key, const char *cn, const char *san, X509 *issuer,
                       EVP_PKEY *issuer_key, long from, long to)
{
    static long serial = 1000;
    X509 *x = X509_new();
    if (x == NULL) {
        return NULL;
    }
    X509_NAME *name = X509_get_subject_name(x);
    int ok = X509_set_version(x, 2) == 1 &&
             ASN1_INTEGER_set(X509_get_serialNumber(x), serial++) == 1 &&
             X509_gmtime_adj(X509_getm_notBefore(x), from) != NULL &&
             X509_gmtime_adj(X509_getm_notAfter(x), to) != NULL && X509_set_pubkey(x, key) == 1 &&
             X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1,
                                        0) == 1 &&
             X509_set_issuer_name(x, issuer != NULL ? X509_get_subject_name(issuer) : name) == 1;
    X509 *signer = issuer != NULL ? issuer : x;
    if (ok && issuer == NULL) {
        ok = add_ext(x, signer, NID_basic_constraints, "critical,CA:TRUE") &&
             add_ext(x, signer, NID_key_usage, "critical,keyCertSign,cRLSign") &&
             add_ext(x, signer, NID_subject_key_identifier, "hash");
    } else if (ok) {
        ok = add_ext(x, signer, NID_basic_constraints, "critical,CA:FALSE") &&
             add_ext(x, signer, NID_key_usage, "critical,digitalSignature") &&
             add_ext(x, signer, NID_ext_key_usage, "serverAuth") &&
             add_ext(x, signer, NID_subject_key_identifier, "hash") &&
             add_ext(x, signer, NID_authority_key_identifier, "keyid:always") &&
             add_ext(x, signer, NID_subject_alt_name, san);
    }
    if (ok) {
        ok = X509_sign(x, issuer_key != NULL ? issuer_key : key, EVP_sha256()) > 0;
    }
    if (!ok) {
        X509_free(x);
        return NULL;
    }
    return x;
}

/* Write cert (or, if NULL, key) to file number f as PEM. */
static int write_pem(int f, X509 *cert, EVP_PKEY *key)
{
    FILE *out = fopen(paths[f], "w");
    if (out == NULL) {
        return 0;
    }
    int ok = cert != NULL ? PEM_write_X509(out, cert) == 1
                          : PEM_write_PrivateKey(out, key, NULL, NULL, 0, NULL, NULL) == 1;
    return fclose(out) == 0 && ok;
}

/* The group's setup: the directory and every file in it. */
static int make_certificates(void **state)
{
    (void)state;
    const char *tmp = getenv("TMPDIR");
    snprintf(cert_dir, sizeof cert_dir, "%s/netx-tls-examples-XXXXXX",
             tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp");
    if (mkdtemp(cert_dir) == NULL) {
        fprintf(stderr, "mkdtemp %s: %s\n", cert_dir, strerror(errno));
        cert_dir[0] = '\0';
        return -1;
    }
    for (int f = 0; f < F_COUNT; f++) {
        snprintf(paths[f], sizeof paths[f], "%s/%s", cert_dir, file_names[f]);
    }
    EVP_PKEY *ca_key = EVP_EC_gen("P-256");
    EVP_PKEY *other_key = EVP_EC_gen("P-256");
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509 *ca = NULL, *other = NULL, *leaf[4] = {NULL, NULL, NULL, NULL};
    int ok = ca_key != NULL && other_key != NULL && key != NULL;
    if (ok) {
        ca = make_cert(ca_key, "netx test CA", NULL, NULL, NULL, -DAY, 30 * DAY);
        other = make_cert(other_key, "netx other CA", NULL, NULL, NULL, -DAY, 30 * DAY);
        ok = ca != NULL && other != NULL;
    }
    const char *good = "DNS:localhost,IP:127.0.0.1";
    if (ok) {
        leaf[0] = make_cert(key, "localhost", good, ca, ca_key, -DAY, 30 * DAY);
        leaf[1] = make_cert(key, "localhost", good, other, other_key, -DAY, 30 * DAY);
        leaf[2] = make_cert(key, "elsewhere.invalid", "DNS:elsewhere.invalid", ca, ca_key, -DAY,
                            30 * DAY);
        leaf[3] = make_cert(key, "localhost", good, ca, ca_key, -30 * DAY, -DAY);
        ok = leaf[0] != NULL && leaf[1] != NULL && leaf[2] != NULL && leaf[3] != NULL;
    }
    ok = ok && write_pem(F_CA, ca, NULL) && write_pem(F_KEY, NULL, key) &&
         write_pem(F_SERVER, leaf[0], NULL) && write_pem(F_OTHER_CA, other, NULL) &&
         write_pem(F_OTHER_KEY, NULL, other_key) && write_pem(F_WRONG_CA, leaf[1], NULL) &&
         write_pem(F_WRONG_NAME, leaf[2], NULL) && write_pem(F_EXPIRED, leaf[3], NULL);
    for (int i = 0; i < 4; i++) {
        X509_free(leaf[i]);
    }
    X509_free(ca);
    X509_free(other);
    EVP_PKEY_free(ca_key);
    EVP_PKEY_free(other_key);
    EVP_PKEY_free(key);
    if (!ok) {
        fprintf(stderr, "could not make the test certificates in %s\n", cert_dir);
        return -1;
    }
    return 0;
}

/* The group's teardown: kill what a failed test left running, then remove
 * the certificates and their directory. */
static int remove_certificates(void **state)
{
    proc_kill_leftovers(state);
    if (cert_dir[0] != '\0') {
        for (int f = 0; f < F_COUNT; f++) {
            unlink(paths[f]);
        }
        if (rmdir(cert_dir) != 0) {
            fprintf(stderr, "rmdir %s: %s\n", cert_dir, strerror(errno));
        }
    }
    return 0;
}

/* ------------------------------------------------------------------------
 * Starting the programs
 * ------------------------------------------------------------------------ */

/* An argv built as we go. */
struct args {
    const char *v[48];
    int n;
    char port[8];
};

static void args_add(struct args *a, const char *s)
{
    assert_true(a->n < (int)(sizeof a->v / sizeof a->v[0]) - 1);
    a->v[a->n++] = s;
    a->v[a->n] = NULL;
}

static void args_add_all(struct args *a, const char *const more[])
{
    for (int i = 0; more != NULL && more[i] != NULL; i++) {
        args_add(a, more[i]);
    }
}

/* Start tls_server on 127.0.0.1, any free port, with certificate cert (and
 * the leaves' key) and the options opts (NULL-terminated, or NULL);
 * returns its port. */
static int start_tls_server(const char *cert, const char *const opts[])
{
    struct args a = {.n = 0};
    args_add(&a, proc_path("tls_server"));
    args_add_all(
        &a, (const char *const[]){"-H", "127.0.0.1", "-p", "0", "-c", cert, "-k", KEY_PEM, NULL});
    args_add_all(&a, opts);
    assert_int_equal(proc_start(&server, a.v, NULL, 0), 0);
    int port = proc_wait_listening(&server, WAIT_MS);
    if (port <= 0) {
        proc_stop(&server, SIGKILL, WAIT_MS);
        fail_msg("tls_server did not start: %s%s", server.out_buf, server.err_buf);
    }
    return port;
}

/* SIGTERM: the server must exit 0, having printed only its "listening on"
 * line on stdout, and (if quiet) nothing at all on stderr. */
static void stop_tls_server(int port, int quiet)
{
    int status = proc_stop(&server, SIGTERM, WAIT_MS);
    char want[64];
    snprintf(want, sizeof want, "listening on 127.0.0.1:%d\n", port);
    if (status != 0 || strcmp(server.out_buf, want) != 0 || (quiet && server.err_len != 0)) {
        fail_msg("tls_server on SIGTERM: status %d (wanted 0), stdout \"%s\", stderr \"%s\"%s",
                 status, server.out_buf, server.err_buf, quiet ? " (wanted none)" : "");
    }
}

/* tls_client's argv: -p PORT, the options opts, then the lines (either may
 * be NULL). */
static void client_args(struct args *a, int port, const char *const opts[],
                        const char *const lines[])
{
    a->n = 0;
    args_add(a, proc_path("tls_client"));
    args_add(a, "-p");
    args_add(a, proc_port_text(port, a->port, sizeof a->port));
    args_add_all(a, opts);
    args_add_all(a, lines);
}

/* Run tls_client to its end; input on its standard input (NULL: none).
 * Returns its exit status. */
static int run_client(int port, const char *const opts[], const char *const lines[],
                      const char *input)
{
    struct args a;
    client_args(&a, port, opts, lines);
    return proc_run(&client, a.v, input, WAIT_MS);
}

/* tls_client must have ended with 0, printed exactly want, said nothing. */
static void assert_client_echoed(const char *want)
{
    if (client.status != 0 || strcmp(client.out_buf, want) != 0 || client.err_len != 0) {
        fail_msg("tls_client: status %d, stdout \"%s\", stderr \"%s\"; wanted 0, \"%s\", \"\"",
                 client.status, client.out_buf, client.err_buf, want);
    }
}

/* text is exactly one line, starting with prefix. */
static int one_line_starting(const char *text, const char *prefix)
{
    size_t len = strlen(text);
    return strncmp(text, prefix, strlen(prefix)) == 0 && len > 0 &&
           strchr(text, '\n') == text + len - 1;
}

/* tls_client must have refused the server: exit 1, nothing on stdout, and
 * one line on stderr, "tls_client: tls handshake with HOST:PORT
 * (127.0.0.1): REASON". */
static void assert_client_refused(const char *host, int port, const char *reason)
{
    char want[512];
    snprintf(want, sizeof want, "tls_client: tls handshake with %s:%d (127.0.0.1): %s\n", host,
             port, reason);
    if (client.status != 1 || client.out_len != 0 || strcmp(client.err_buf, want) != 0) {
        fail_msg("tls_client against a server it must refuse: status %d, stdout \"%s\", "
                 "stderr \"%s\"; wanted 1, nothing, and \"%s\"",
                 client.status, client.out_buf, client.err_buf, want);
    }
}

/* Read what is ready on *fd and add it to buf (at most PROC_OUT_MAX kept);
 * the bytes read are also left in chunk. Closes *fd at the end of the
 * stream. Returns how many bytes were read. */
static size_t take(int *fd, char *buf, size_t *len, char *chunk, size_t cap)
{
    ssize_t n = read(*fd, chunk, cap);
    if (n <= 0) {
        if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
            close(*fd);
            *fd = -1;
        }
        return 0;
    }
    size_t keep = PROC_OUT_MAX - *len < (size_t)n ? PROC_OUT_MAX - *len : (size_t)n;
    memcpy(buf + *len, chunk, keep);
    *len += keep;
    buf[*len] = '\0';
    return (size_t)n;
}

/* Write all of data to fd (a pipe to a program); 0, or -1 if it stopped
 * reading (SIGPIPE must be ignored by then). */
static int write_all(int fd, const char *data, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, data, len);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return -1;
        }
        data += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Ignore SIGPIPE while we write to a program that may have died; a program
 * started meanwhile would inherit that, so start it before. */
static void ignore_sigpipe(struct sigaction *old)
{
    struct sigaction ignore;
    memset(&ignore, 0, sizeof ignore);
    ignore.sa_handler = SIG_IGN;
    sigemptyset(&ignore.sa_mask);
    sigaction(SIGPIPE, &ignore, old);
}

/*
 * Write len bytes to p's standard input while reading what it prints, then
 * finish it (as in test_echo.c: an echo client prints as it reads, so we
 * must read while we write). Standard output is compared with data as it
 * arrives: *same says whether every byte matched; the return value is how
 * many came. When stop_at > 0, SIGTERM goes to the server once that many
 * bytes have come back. p->status tells how it ended (-1: killed).
 */
static size_t pipe_through(struct proc *p, const char *data, size_t len, int timeout_ms, int *same,
                           size_t stop_at)
{
    long long deadline = proc_now_ms() + timeout_ms;
    size_t written = 0, seen = 0;
    int signalled = 0;
    static char chunk[16384];
    struct sigaction old;
    ignore_sigpipe(&old);

    *same = 1;
    fcntl(p->in, F_SETFL, fcntl(p->in, F_GETFL) | O_NONBLOCK);
    while ((p->out >= 0 || p->err >= 0) && proc_now_ms() < deadline) {
        struct pollfd fds[3];
        nfds_t n = 0;
        if (p->in >= 0) {
            fds[n++] = (struct pollfd){.fd = p->in, .events = POLLOUT};
        }
        if (p->out >= 0) {
            fds[n++] = (struct pollfd){.fd = p->out, .events = POLLIN};
        }
        if (p->err >= 0) {
            fds[n++] = (struct pollfd){.fd = p->err, .events = POLLIN};
        }
        if (poll(fds, n, proc_ms_until(deadline)) < 0 && errno != EINTR) {
            break;
        }
        for (nfds_t i = 0; i < n; i++) {
            if (fds[i].revents == 0) {
                continue;
            }
            if (fds[i].fd == p->in) {
                size_t want = len - written < sizeof chunk ? len - written : sizeof chunk;
                ssize_t w = write(p->in, data + written, want);
                if (w > 0) {
                    written += (size_t)w;
                }
                if (written == len || (w < 0 && errno != EAGAIN && errno != EINTR)) {
                    proc_close_stdin(p); /* all sent, or it stopped reading */
                }
            } else if (fds[i].fd == p->out) {
                size_t r = take(&p->out, p->out_buf, &p->out_len, chunk, sizeof chunk);
                if (seen + r > len || memcmp(data + seen, chunk, r) != 0) {
                    *same = 0;
                }
                seen += r;
            } else {
                take(&p->err, p->err_buf, &p->err_len, chunk, sizeof chunk);
            }
        }
        if (stop_at > 0 && !signalled && seen >= stop_at) {
            kill(server.pid, SIGTERM);
            signalled = 1;
        }
    }
    sigaction(SIGPIPE, &old, NULL);
    proc_finish(p, proc_ms_until(deadline) + 1);
    return seen;
}

/*
 * About len bytes of lines for an echo: every byte value but '\n' inside
 * them (NUL and bytes above 127 included), lines of many lengths - an empty
 * one, one of exactly 64 KiB with its '\n' (the longest tls_client takes)
 * - and a last line without its '\n'.
 */
static char *make_lines(size_t len)
{
    char *data = malloc(len);
    assert_non_null(data);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)(i * 7 % 251);
        data[i] = c == '\n' ? ' ' : (char)c;
    }
    data[99] = '\n';
    data[100] = '\n'; /* an empty line */
    size_t pos = 100 + 64 * KIB;
    data[pos] = '\n'; /* a line of 64 KiB, its '\n' included */
    size_t step = 7;
    while (pos + step < len - 1) {
        pos += step;
        data[pos] = '\n';
        step = step * 31 % 6007 + 1;
    }
    return data;
}

/* A port that was free a moment ago, for a program that cannot say which
 * port it took. */
static int free_port(void)
{
    int lfd = netx_tcp_listen("127.0.0.1", 0, 0);
    assert_true(lfd >= 0);
    int port = netx_local_port(lfd);
    netx_close(lfd);
    return port;
}

/*
 * Start openssl s_server on 127.0.0.1:port, with the good certificate,
 * -quiet and the options opts, its standard input a pipe. With -quiet it
 * prints nothing but what it decrypts - not even the port - so we wait for
 * it by connecting; that probe ends at once, and s_server (without
 * -naccept) goes on to the next client.
 */
static void start_openssl_server(int port, const char *const opts[])
{
    char accept_on[32];
    snprintf(accept_on, sizeof accept_on, "127.0.0.1:%d", port);
    struct args a = {.n = 0};
    args_add_all(&a, (const char *const[]){"openssl", "s_server", "-accept", accept_on, "-cert",
                                           SERVER_PEM, "-key", KEY_PEM, "-quiet", NULL});
    args_add_all(&a, opts);
    assert_int_equal(proc_start(&peer, a.v, NULL, 1), 0);
    long long deadline = proc_now_ms() + WAIT_MS;
    for (;;) {
        int fd = netx_tcp_connect("127.0.0.1", (uint16_t)port, 1000);
        if (fd >= 0) {
            netx_close(fd);
            return;
        }
        if (proc_now_ms() >= deadline) {
            proc_stop(&peer, SIGKILL, WAIT_MS);
            fail_msg("openssl s_server never listened on %s: %s", accept_on, peer.err_buf);
        }
        sleep_ms(20);
    }
}

/* ------------------------------------------------------------------------
 * tls_server and tls_client together
 * ------------------------------------------------------------------------ */

/* Lines as arguments, an empty one among them, with the certificate
 * checked against the name (localhost) and against the address (127.0.0.1,
 * its IP entry). After "--" every argument is a line, even "--insecure":
 * the check stays on, and no warning is printed. */
static void tls_pair_arguments_echoed_exactly(void **state)
{
    (void)state;
    int port = start_tls_server(SERVER_PEM, NULL);
    const char *const lines[] = {"hello", "", "two words", NULL};
    const char *const by_name[] = {"-C", CA_PEM, NULL};
    run_client(port, by_name, lines, NULL);
    assert_client_echoed("hello\n\ntwo words\n");
    const char *const by_address[] = {"-H", "127.0.0.1", "-C", CA_PEM, NULL};
    run_client(port, by_address, lines, NULL);
    assert_client_echoed("hello\n\ntwo words\n");
    run_client(port, by_name, (const char *const[]){"--", "--insecure", "-x", NULL}, NULL);
    assert_client_echoed("--insecure\n-x\n");
    /* Each client ended with close_notify: the server has nothing to say. */
    stop_tls_server(port, 1);
}

static void tls_pair_stdin_lines_echoed_exactly(void **state)
{
    (void)state;
    int port = start_tls_server(SERVER_PEM, NULL);
    const char *const trust[] = {"-C", CA_PEM, NULL};
    run_client(port, trust, NULL, "alpha\n\tbeta gamma\n\nno newline");
    assert_client_echoed("alpha\n\tbeta gamma\n\nno newline");
    /* No input at all: a handshake, nothing to send, success. */
    run_client(port, trust, NULL, "");
    assert_client_echoed("");
    stop_tls_server(port, 1);
}

static void tls_client_1mib_stdin_echoed_byte_for_byte(void **state)
{
    (void)state;
    int port = start_tls_server(SERVER_PEM, NULL);
    size_t len = MIB;
    char *data = make_lines(len);
    struct args a;
    client_args(&a, port, (const char *const[]){"-C", CA_PEM, NULL}, NULL);
    assert_int_equal(proc_start(&client, a.v, NULL, 1), 0);
    int same = 0;
    size_t got = pipe_through(&client, data, len, 20000, &same, 0);
    free(data);
    if (client.status != 0 || got != len || !same || client.err_len != 0) {
        fail_msg("tls_client with 1 MiB of lines: status %d, %zu of %zu bytes back%s; "
                 "stderr: %s",
                 client.status, got, len, same ? "" : ", not the same", client.err_buf);
    }
    stop_tls_server(port, 1);
}

/* A line longer than tls_client takes (64 KiB with its '\n') is refused,
 * with a sentence, before it is sent. */
static void tls_client_line_over_64kib_exits_one(void **state)
{
    (void)state;
    int port = start_tls_server(SERVER_PEM, NULL);
    size_t len = 64 * KIB + 1;
    char *line = malloc(len);
    assert_non_null(line);
    memset(line, 'x', len);
    line[len - 1] = '\n';
    struct args a;
    client_args(&a, port, (const char *const[]){"-C", CA_PEM, NULL}, NULL);
    assert_int_equal(proc_start(&client, a.v, NULL, 1), 0);
    int same;
    size_t got = pipe_through(&client, line, len, WAIT_MS, &same, 0);
    free(line);
    assert_int_equal(client.status, 1);
    assert_int_equal(got, 0);
    assert_string_equal(client.err_buf, "tls_client: line 1 is longer than 65536 bytes\n");
    stop_tls_server(port, 1);
}

/* ------------------------------------------------------------------------
 * tls_server and real TLS clients
 * ------------------------------------------------------------------------ */

/*
 * openssl s_client verifies the server against our CA and its name
 * (-verify_return_error: a failed check ends it with status 1), on TLS 1.2
 * and on TLS 1.3. -quiet prints only what comes back; it also means
 * "ignore the end of input", which -no_ign_eof undoes, so that closing
 * its standard input ends it (with close_notify).
 */
static void tls_server_openssl_s_client_echoed(void **state)
{
    (void)state;
    proc_skip_without("openssl", "the openssl s_client cannot be tried");
    int port = start_tls_server(SERVER_PEM, NULL);
    char connect_to[32];
    snprintf(connect_to, sizeof connect_to, "127.0.0.1:%d", port);
    const char *const versions[] = {"-tls1_2", "-tls1_3"};
    for (int v = 0; v < 2; v++) {
        const char *argv[] = {"openssl",
                              "s_client",
                              "-connect",
                              connect_to,
                              "-servername",
                              "localhost",
                              "-verify_return_error",
                              "-CAfile",
                              CA_PEM,
                              "-quiet",
                              "-no_ign_eof",
                              versions[v],
                              NULL};
        assert_int_equal(proc_start(&peer, argv, NULL, 1), 0);
        const char line[] = "hello from openssl s_client\n";
        int sent = write_all(peer.in, line, sizeof line - 1) == 0;
        int back = sent && proc_wait_output(&peer, line, WAIT_MS) == 0;
        proc_close_stdin(&peer);
        int status = proc_finish(&peer, WAIT_MS);
        if (!back || status != 0 || strcmp(peer.out_buf, line) != 0) {
            fail_msg("openssl s_client %s: status %d, stdout \"%s\", stderr: %s", versions[v],
                     status, peer.out_buf, peer.err_buf);
        }
    }
    stop_tls_server(port, 1);
}

/*
 * The article's own guide step 7 client, in Python: create_default_context()
 * with our CA, wrap_socket() with server_hostname. A line, then 64 pieces
 * holding every byte value, each echoed exactly; unwrap() sends
 * close_notify and waits for the server's.
 */
static const char python_client[] =
    "import socket, ssl, sys\n"
    "context = ssl.create_default_context(cafile=sys.argv[2])\n"
    "def echo(s, data):\n"
    "    s.sendall(data)\n"
    "    got = b''\n"
    "    while len(got) < len(data):\n"
    "        d = s.recv(65536)\n"
    "        if not d:\n"
    "            break\n"
    "        got += d\n"
    "    return got\n"
    "with socket.create_connection(('127.0.0.1', int(sys.argv[1])), timeout=10) as sock:\n"
    "    with context.wrap_socket(sock, server_hostname='localhost') as s:\n"
    "        sys.stderr.write(s.version() + '\\n')\n"
    "        sys.stdout.buffer.write(echo(s, b'hello from python ssl\\n'))\n"
    "        piece = bytes(range(256)) * 16\n"
    "        for i in range(64):\n"
    "            if echo(s, piece) != piece:\n"
    "                sys.exit('piece %d did not come back exactly' % i)\n"
    "        s.unwrap()\n";

static void tls_server_python_ssl_client_echoed(void **state)
{
    (void)state;
    proc_skip_without("python3", "the Python ssl client cannot be tried");
    int port = start_tls_server(SERVER_PEM, NULL);
    char p[8];
    const char *argv[] = {"python3", "-c", python_client, proc_port_text(port, p, sizeof p),
                          CA_PEM,    NULL};
    int status = proc_run(&peer, argv, NULL, WAIT_MS);
    if (status != 0 || strcmp(peer.out_buf, "hello from python ssl\n") != 0) {
        fail_msg("the Python ssl client: status %d, stdout \"%s\", stderr: %s", status,
                 peer.out_buf, peer.err_buf);
    }
    stop_tls_server(port, 1);
}

/* How many times text occurs in s. */
static int count_of(const char *s, const char *text)
{
    int n = 0;
    for (const char *at = strstr(s, text); at != NULL; at = strstr(at + 1, text)) {
        n++;
    }
    return n;
}

/* Read p's output until text has appeared count times on its standard
 * output and error together: 0, or -1 after ms or when both its streams
 * have ended. */
static int wait_output_count(struct proc *p, const char *text, int count, int ms)
{
    long long deadline = proc_now_ms() + ms;
    static char chunk[4096];
    while (count_of(p->out_buf, text) + count_of(p->err_buf, text) < count) {
        if ((p->out < 0 && p->err < 0) || proc_now_ms() >= deadline) {
            return -1;
        }
        struct pollfd fds[2] = {{.fd = p->out, .events = POLLIN}, {.fd = p->err, .events = POLLIN}};
        if (poll(fds, 2, proc_ms_until(deadline)) < 0 && errno != EINTR) {
            return -1;
        }
        if (fds[0].revents != 0) {
            take(&p->out, p->out_buf, &p->out_len, chunk, sizeof chunk);
        }
        if (fds[1].revents != 0) {
            take(&p->err, p->err_buf, &p->err_len, chunk, sizeof chunk);
        }
    }
    return 0;
}

/*
 * TLS 1.3 key updates from openssl s_client: "K" asks the server to update
 * its keys too, "k" does not. The server must answer with its own
 * KeyUpdate - a write its next read brings about - and echo on. Without
 * -quiet, s_client takes those letters as commands, when one read of its
 * standard input holds nothing else: so each step waits for the last one's
 * effect (the echo, or s_client's "KEYUPDATE") before it is written.
 */
static void tls_server_openssl_key_update_echo_goes_on(void **state)
{
    (void)state;
    proc_skip_without("openssl", "key updates from openssl s_client cannot be tried");
    int port = start_tls_server(SERVER_PEM, NULL);
    char connect_to[32];
    snprintf(connect_to, sizeof connect_to, "127.0.0.1:%d", port);
    const char *argv[] = {"openssl",
                          "s_client",
                          "-connect",
                          connect_to,
                          "-servername",
                          "localhost",
                          "-verify_return_error",
                          "-CAfile",
                          CA_PEM,
                          "-no_ign_eof",
                          "-tls1_3",
                          NULL};
    assert_int_equal(proc_start(&peer, argv, NULL, 1), 0);
    static const struct {
        const char *send, *then;
        int times;
    } steps[] = {{"before\n", "before\n", 1},
                 {"K\n", "KEYUPDATE", 1},
                 {"after K\n", "after K\n", 1},
                 {"k\n", "KEYUPDATE", 2},
                 {"after k\n", "after k\n", 1}};
    size_t done = 0;
    while (done < sizeof steps / sizeof steps[0] &&
           write_all(peer.in, steps[done].send, strlen(steps[done].send)) == 0 &&
           wait_output_count(&peer, steps[done].then, steps[done].times, WAIT_MS) == 0) {
        done++;
    }
    proc_close_stdin(&peer);
    int status = proc_finish(&peer, WAIT_MS);
    if (done < sizeof steps / sizeof steps[0] || status != 0) {
        fail_msg("openssl s_client with key updates: status %d, no \"%s\" after \"%s\"; "
                 "stdout:\n%s\nstderr:\n%s",
                 status, done < 5 ? steps[done].then : "", done < 5 ? steps[done].send : "",
                 peer.out_buf, peer.err_buf);
    }
    stop_tls_server(port, 1);
}

/* ------------------------------------------------------------------------
 * tls_client and real TLS servers
 * ------------------------------------------------------------------------ */

/*
 * The article's own guide step 7 server, in Python: a default context for
 * clients, load_cert_chain(), and wrap_socket(server_socket,
 * server_side=True) on the listening socket, as the article does; then an
 * echo. suppress_ragged_eofs=False makes a client that leaves without
 * close_notify an error here (exit 1): tls_client must say goodbye.
 */
static const char python_server[] =
    "import socket, ssl, sys\n"
    "context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)\n"
    "context.load_cert_chain(sys.argv[1], sys.argv[2])\n"
    "server_socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)\n"
    "server_socket.bind(('127.0.0.1', 0))\n"
    "server_socket.listen(1)\n"
    "server_socket.settimeout(10)\n"
    "with context.wrap_socket(server_socket, server_side=True,\n"
    "                         suppress_ragged_eofs=False) as tls_socket:\n"
    "    print('listening on %s:%d' % tls_socket.getsockname(), flush=True)\n"
    "    for _ in range(int(sys.argv[3])):\n"
    "        conn, _ = tls_socket.accept()\n"
    "        conn.settimeout(10)\n"
    "        with conn:\n"
    "            sys.stderr.write(conn.version() + '\\n')\n"
    "            while True:\n"
    "                data = conn.recv(65536)\n"
    "                if not data:\n"
    "                    break\n"
    "                conn.sendall(data)\n";

static void tls_client_python_ssl_server_echoed(void **state)
{
    (void)state;
    proc_skip_without("python3", "the Python ssl server cannot be tried");
    const char *sargv[] = {"python3", "-c", python_server, SERVER_PEM, KEY_PEM, "2", NULL};
    assert_int_equal(proc_start(&server, sargv, NULL, 0), 0);
    int port = proc_wait_listening(&server, WAIT_MS);
    if (port <= 0) {
        proc_stop(&server, SIGKILL, WAIT_MS);
        fail_msg("the Python ssl server did not start: %s%s", server.out_buf, server.err_buf);
    }
    const char *const trust[] = {"-C", CA_PEM, NULL};
    run_client(port, trust, (const char *const[]){"hello", "", "python", NULL}, NULL);
    assert_client_echoed("hello\n\npython\n");
    run_client(port, trust, NULL, "from stdin\nlast without newline");
    assert_client_echoed("from stdin\nlast without newline");
    /* It served its two clients, each to its close_notify. */
    int status = proc_finish(&server, WAIT_MS);
    if (status != 0) {
        fail_msg("the Python ssl server: status %d: %s", status, server.err_buf);
    }
}

/*
 * Relay for openssl s_server -quiet: it prints exactly what it decrypts
 * and encrypts what it reads, so feeding its output back to its input makes
 * it an echo. Run tls_client (argv) to its end meanwhile.
 */
static void run_client_with_relay(const char *const argv[])
{
    assert_int_equal(proc_start(&client, argv, NULL, 0), 0);
    struct sigaction old;
    ignore_sigpipe(&old);
    static char chunk[16384];
    long long deadline = proc_now_ms() + WAIT_MS;
    int relay_ok = 1;
    while ((client.out >= 0 || client.err >= 0) && proc_now_ms() < deadline) {
        struct pollfd fds[4];
        int *ends[4] = {&peer.out, &peer.err, &client.out, &client.err};
        for (int i = 0; i < 4; i++) {
            fds[i] = (struct pollfd){.fd = *ends[i], .events = POLLIN};
        }
        if (poll(fds, 4, proc_ms_until(deadline)) < 0 && errno != EINTR) {
            break;
        }
        for (int i = 0; i < 4; i++) {
            if (fds[i].fd < 0 || fds[i].revents == 0) {
                continue;
            }
            struct proc *p = i < 2 ? &peer : &client;
            int is_out = i % 2 == 0;
            size_t n = take(ends[i], is_out ? p->out_buf : p->err_buf,
                            is_out ? &p->out_len : &p->err_len, chunk, sizeof chunk);
            if (i == 0 && n > 0 && write_all(peer.in, chunk, n) != 0) {
                relay_ok = 0;
            }
        }
    }
    sigaction(SIGPIPE, &old, NULL);
    proc_finish(&client, proc_ms_until(deadline) + 1);
    assert_true(relay_ok);
}

/*
 * tls_client and openssl s_server, on TLS 1.3 and TLS 1.2 (-tls1_2): the
 * lines s_server decrypted are exactly those sent, and what it encrypted
 * back (the same, through the relay) is what tls_client printed.
 */
static void tls_client_openssl_s_server_echoed_through_relay(void **state)
{
    (void)state;
    proc_skip_without("openssl", "the openssl s_server cannot be tried");
    const char *const versions[][2] = {{NULL, NULL}, {"-tls1_2", NULL}};
    for (int v = 0; v < 2; v++) {
        int port = free_port();
        start_openssl_server(port, versions[v]);
        const char *const lines[] = {"hello openssl", "", "\tthird line ", NULL};
        struct args a;
        client_args(&a, port, (const char *const[]){"-C", CA_PEM, NULL}, lines);
        run_client_with_relay(a.v);
        proc_stop(&peer, SIGTERM, WAIT_MS); /* it serves until told to stop */
        const char *want = "hello openssl\n\n\tthird line \n";
        if (client.status != 0 || strcmp(client.out_buf, want) != 0 || client.err_len != 0 ||
            strcmp(peer.out_buf, want) != 0) {
            fail_msg("tls_client and openssl s_server %s: tls_client status %d, stdout \"%s\", "
                     "stderr \"%s\"; s_server decrypted \"%s\", said: %s",
                     v == 0 ? "(TLS 1.3)" : "-tls1_2", client.status, client.out_buf,
                     client.err_buf, peer.out_buf, peer.err_buf);
        }
    }
}

/*
 * openssl s_server -rev, as shipped: it answers each line reversed. A
 * palindrome comes back as it went, so tls_client accepts those; "abc"
 * comes back "cba", and tls_client must see that this is not its echo.
 */
static void tls_client_openssl_s_server_rev_checks_every_byte(void **state)
{
    (void)state;
    proc_skip_without("openssl", "the openssl s_server cannot be tried");
    int port = free_port();
    start_openssl_server(port, (const char *const[]){"-rev", NULL});
    const char *const trust[] = {"-C", CA_PEM, NULL};
    run_client(port, trust, (const char *const[]){"racecar", "abba", NULL}, NULL);
    assert_client_echoed("racecar\nabba\n");
    run_client(port, trust, (const char *const[]){"level", "abc", NULL}, NULL);
    proc_stop(&peer, SIGTERM, WAIT_MS);
    assert_int_equal(client.status, 1);
    assert_string_equal(client.out_buf, "level\n");
    assert_string_equal(
        client.err_buf,
        "tls_client: the server answered 4 bytes that are not the echo of line 2\n");
}

/* ------------------------------------------------------------------------
 * Certificates tls_client must refuse
 * ------------------------------------------------------------------------ */

static void tls_client_wrong_ca_refused_exits_one(void **state)
{
    (void)state;
    int port = start_tls_server(WRONG_CA_PEM, NULL);
    run_client(port, (const char *const[]){"-C", CA_PEM, NULL}, (const char *const[]){"hi", NULL},
               NULL);
    assert_client_refused("localhost", port,
                          "certificate verify failed: unable to get local issuer certificate");
    stop_tls_server(port, 0);
}

/* Without -C, the system's CAs: they do not know our private CA either. */
static void tls_client_system_cas_refuse_private_ca_exits_one(void **state)
{
    (void)state;
    int port = start_tls_server(SERVER_PEM, NULL);
    run_client(port, NULL, (const char *const[]){"hi", NULL}, NULL);
    assert_client_refused("localhost", port,
                          "certificate verify failed: unable to get local issuer certificate");
    stop_tls_server(port, 0);
}

/* A certificate for elsewhere.invalid, checked as localhost and as the
 * address 127.0.0.1. */
static void tls_client_wrong_name_refused_exits_one(void **state)
{
    (void)state;
    int port = start_tls_server(WRONG_NAME_PEM, NULL);
    run_client(port, (const char *const[]){"-C", CA_PEM, NULL}, (const char *const[]){"hi", NULL},
               NULL);
    assert_client_refused("localhost", port, "certificate verify failed: hostname mismatch");
    run_client(port, (const char *const[]){"-H", "127.0.0.1", "-C", CA_PEM, NULL},
               (const char *const[]){"hi", NULL}, NULL);
    assert_client_refused("127.0.0.1", port, "certificate verify failed: IP address mismatch");
    stop_tls_server(port, 0);
}

static void tls_client_expired_refused_exits_one(void **state)
{
    (void)state;
    int port = start_tls_server(EXPIRED_PEM, NULL);
    run_client(port, (const char *const[]){"-C", CA_PEM, NULL}, (const char *const[]){"hi", NULL},
               NULL);
    assert_client_refused("localhost", port, "certificate verify failed: certificate has expired");
    stop_tls_server(port, 0);
}

/* --insecure talks to the wrong CA's server, and says so on every run. */
static void tls_client_insecure_wrong_ca_works_with_warning(void **state)
{
    (void)state;
    int port = start_tls_server(WRONG_CA_PEM, NULL);
    int status = run_client(port, (const char *const[]){"--insecure", NULL},
                            (const char *const[]){"unchecked", NULL}, NULL);
    assert_int_equal(status, 0);
    assert_string_equal(client.out_buf, "unchecked\n");
    assert_string_equal(client.err_buf,
                        "tls_client: WARNING: --insecure: the server's certificate is not checked; "
                        "anyone in between can read and change this connection\n");
    stop_tls_server(port, 1);
}

/* ------------------------------------------------------------------------
 * Peers that speak no TLS, or never finish
 * ------------------------------------------------------------------------ */

/* Plain text to tls_server: one line in its log for each such client, the
 * connection closed, and the next TLS client served. */
static void tls_server_plain_tcp_client_logged_and_next_served(void **state)
{
    (void)state;
    int port = start_tls_server(SERVER_PEM, NULL);
    static const char *const plain[] = {"hello\n", "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"};
    for (int i = 0; i < 2; i++) {
        int fd = netx_tcp_connect("127.0.0.1", (uint16_t)port, WAIT_MS);
        assert_true(fd >= 0);
        assert_int_equal(netx_set_timeout(fd, 5000), 0);
        assert_int_equal(netx_send_all(fd, plain[i], strlen(plain[i])), 0);
        /* Closed: at once (end of stream, or a reset for the unread rest),
         * not after a timeout. Bounded: at most 64 reads of 5 s. */
        char buf[256];
        ssize_t n = 1;
        int err = 0;
        for (int reads = 0; n > 0 && reads < 64; reads++) {
            n = netx_recv(fd, buf, sizeof buf);
            err = errno;
        }
        netx_close(fd);
        if (n != 0 && !(n < 0 && err == ECONNRESET)) {
            fail_msg("tls_server did not close a client that sent \"%s\": %s", plain[i],
                     n < 0 ? strerror(err) : "still sending");
        }
    }
    const char *const trust[] = {"-C", CA_PEM, NULL};
    run_client(port, trust, (const char *const[]){"still serving", NULL}, NULL);
    assert_client_echoed("still serving\n");
    stop_tls_server(port, 0);
    /* One line for each plain client, naming the handshake and the client. */
    const char *head = "tls_server: tls handshake with 127.0.0.1:";
    const char *second = strchr(server.err_buf, '\n');
    if (second == NULL || strncmp(server.err_buf, head, strlen(head)) != 0 ||
        !one_line_starting(second + 1, head)) {
        fail_msg("tls_server's log for two plain clients, not one line each:\n%s", server.err_buf);
    }
}

/*
 * tls_client against our plain echo_server: its ClientHello comes back as
 * the "answer", which is no ServerHello. Exit 1 at once with the
 * handshake's sentence, which names the likely cause.
 */
static void tls_client_plain_echo_server_exits_one(void **state)
{
    (void)state;
    const char *sargv[] = {proc_path("echo_server"), "-H", "127.0.0.1", "-p", "0", NULL};
    assert_int_equal(proc_start(&server, sargv, NULL, 0), 0);
    int port = proc_wait_listening(&server, WAIT_MS);
    assert_true(port > 0);
    long long t0 = proc_now_ms();
    int status = run_client(port, (const char *const[]){"-C", CA_PEM, "-t", "2", NULL},
                            (const char *const[]){"hi", NULL}, NULL);
    long long took = proc_now_ms() - t0;
    proc_stop(&server, SIGTERM, WAIT_MS);
    char head[96];
    snprintf(head, sizeof head, "tls_client: tls handshake with localhost:%d (127.0.0.1): ", port);
    if (status != 1 || !one_line_starting(client.err_buf, head) || client.out_len != 0 ||
        strstr(client.err_buf, "(does the server speak TLS on this port?)") == NULL ||
        took >= 1900) {
        fail_msg("tls_client against a plain echo server: status %d after %lld ms, stdout "
                 "\"%s\", stderr \"%s\"",
                 status, took, client.out_buf, client.err_buf);
    }
}

/* A server that accepts (the backlog does) and never answers: -t 1 ends
 * the handshake's wait. */
static void tls_client_silent_server_times_out_exits_one(void **state)
{
    (void)state;
    int lfd = netx_tcp_listen("127.0.0.1", 0, 0);
    assert_true(lfd >= 0);
    int port = netx_local_port(lfd);
    long long t0 = proc_now_ms();
    int status = run_client(port, (const char *const[]){"-C", CA_PEM, "-t", "1", NULL},
                            (const char *const[]){"hi", NULL}, NULL);
    long long took = proc_now_ms() - t0;
    netx_close(lfd);
    assert_int_equal(status, 1);
    assert_client_refused("localhost", port, "Connection timed out");
    if (took < 900 || took > 5000) {
        fail_msg("tls_client -t 1 against a silent server ended after %lld ms", took);
    }
}

/*
 * Two clients that never finish their handshake - one sends nothing, one
 * the first bytes of a ClientHello - and tls_server -T 1: a third, real
 * client is served at once, before their time is up; each of the two is
 * closed after about a second (well within 5), with a line in the log.
 */
static void tls_server_stalled_handshakes_closed_after_timeout_others_served(void **state)
{
    (void)state;
    int port = start_tls_server(SERVER_PEM, (const char *const[]){"-T", "1", NULL});
    long long t0 = proc_now_ms();
    int silent = netx_tcp_connect("127.0.0.1", (uint16_t)port, WAIT_MS);
    int partial = netx_tcp_connect("127.0.0.1", (uint16_t)port, WAIT_MS);
    assert_true(silent >= 0 && partial >= 0);
    /* A handshake record of 512 bytes, of which 11 come. */
    static const char start[] = "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03";
    assert_int_equal(netx_send_all(partial, start, sizeof start - 1), 0);

    run_client(port, (const char *const[]){"-C", CA_PEM, NULL},
               (const char *const[]){"not kept waiting", NULL}, NULL);
    long long served = proc_now_ms() - t0;
    struct pollfd both[2] = {{.fd = silent, .events = POLLIN}, {.fd = partial, .events = POLLIN}};
    int closed_already = poll(both, 2, 0);

    long long closed[2] = {-1, -1};
    int fds[2] = {silent, partial};
    for (int i = 0; i < 2; i++) {
        char byte;
        assert_int_equal(netx_set_timeout(fds[i], 5000), 0);
        ssize_t n = netx_recv(fds[i], &byte, 1);
        if (n == 0 || (n < 0 && errno == ECONNRESET)) {
            closed[i] = proc_now_ms() - t0;
        }
        netx_close(fds[i]);
    }
    assert_client_echoed("not kept waiting\n");
    if (closed_already != 0 || served >= 1000) {
        fail_msg("the real client was served after %lld ms, when the stalled handshakes %s: "
                 "it was not served meanwhile",
                 served, closed_already != 0 ? "had been closed already" : "were about to end");
    }
    for (int i = 0; i < 2; i++) {
        if (closed[i] < 900 || closed[i] >= 5000) {
            fail_msg("tls_server -T 1 closed the %s client after %lld ms (-1: not within 5 s)",
                     i == 0 ? "silent" : "half-hello", closed[i]);
        }
    }
    stop_tls_server(port, 0);
    const char line[] =
        "tls_server: a client did not finish its handshake within 1 s; closing it\n";
    char want[2 * sizeof line];
    snprintf(want, sizeof want, "%s%s", line, line);
    assert_string_equal(server.err_buf, want);
}

/* ------------------------------------------------------------------------
 * A client that sends and never reads
 * ------------------------------------------------------------------------ */

#define HOG_MAX ((size_t)256 * MIB)

static unsigned char hog_chunk[65536];

static long rss_kib(pid_t pid)
{
    char file[64];
    snprintf(file, sizeof file, "/proc/%d/status", (int)pid);
    FILE *f = fopen(file, "r");
    assert_non_null(f);
    char line[256];
    long kib = -1;
    while (kib < 0 && fgets(line, sizeof line, f) != NULL) {
        if (strncmp(line, "VmRSS:", 6) == 0) {
            kib = strtol(line + 6, NULL, 10);
        }
    }
    fclose(f);
    assert_true(kib > 0);
    return kib;
}

/* Wait up to ms for what t wants (what it wanted last), or for both when
 * it says nothing. */
static void wait_for_tls(netx_tls *t, int also_write, int ms)
{
    unsigned wants = netx_tls_wants(t);
    short events = POLLIN;
    if (also_write || wants == NETX_WRITABLE) {
        events |= POLLOUT;
    }
    struct pollfd p = {.fd = netx_tls_fd(t), .events = events};
    poll(&p, 1, ms);
}

/*
 * The hog, a TLS client of the test's own (libnetx_tls, verified against
 * our CA): it sends its pattern and never reads, until it cannot send for
 * 300 ms - tls_server has stopped reading from it. On a non-blocking
 * socket a TLS write that waits must be repeated with the same bytes:
 * *pending says one is half-way (at offset *sent).
 */
static netx_tls *hog_fill(int port, size_t *sent, int *pending, int *stalled)
{
    netx_tls_config *config = netx_tls_client_config();
    assert_non_null(config);
    assert_int_equal(netx_tls_config_ca_file(config, CA_PEM), 0);
    int fd = netx_tcp_connect("127.0.0.1", (uint16_t)port, WAIT_MS);
    assert_true(fd >= 0);
    netx_tls *hog = netx_tls_connect(config, fd, "localhost", WAIT_MS);
    netx_tls_config_free(config);
    if (hog == NULL) {
        fail_msg("the hog's handshake: %s", netx_last_error());
    }
    assert_int_equal(netx_set_nonblocking(fd, 1), 0);
    support_pattern(hog_chunk, sizeof hog_chunk, 17);
    *sent = 0;
    *pending = 0;
    *stalled = 0;
    long long deadline = proc_now_ms() + 5000;
    while (!*stalled && *sent < HOG_MAX && proc_now_ms() < deadline) {
        size_t at = *sent % sizeof hog_chunk;
        ssize_t n = netx_tls_send(hog, hog_chunk + at, sizeof hog_chunk - at);
        if (n > 0) {
            *sent += (size_t)n;
            *pending = 0;
            continue;
        }
        if (errno != EAGAIN) {
            fail_msg("the hog, after %zu bytes: %s", *sent, netx_last_error());
        }
        *pending = 1;
        struct pollfd p = {.fd = fd, .events = POLLOUT};
        *stalled = poll(&p, 1, 300) == 0 && *sent >= MIB;
    }
    return hog;
}

/*
 * The hog reads at last: its half-way write goes out, and every byte it
 * sent must come back, in order, within 5 s (it takes well under one). Then it says goodbye
 * (close_notify) and is closed. Returns 0, or -1 with why in `why`.
 */
static int hog_drain(netx_tls *hog, size_t sent, int pending, char *why, size_t cap)
{
    static unsigned char back[65536];
    size_t got = 0;
    long long deadline = proc_now_ms() + 5000;
    why[0] = '\0';
    while ((pending || got < sent) && why[0] == '\0' && proc_now_ms() < deadline) {
        int moved = 0;
        if (pending) {
            size_t at = sent % sizeof hog_chunk;
            ssize_t n = netx_tls_send(hog, hog_chunk + at, sizeof hog_chunk - at);
            if (n > 0) {
                sent += (size_t)n;
                pending = 0;
                moved = 1;
            } else if (errno != EAGAIN) {
                snprintf(why, cap, "its last write: %s", netx_last_error());
            }
        }
        ssize_t n = netx_tls_recv(hog, back, sizeof back);
        if (n == 0 || (n < 0 && errno != EAGAIN)) {
            snprintf(why, cap, "its echo stopped after %zu of %zu bytes: %s", got, sent,
                     n == 0 ? "end of stream" : netx_last_error());
        }
        for (ssize_t i = 0; i < n && why[0] == '\0'; i++) {
            if (back[i] != hog_chunk[(got + (size_t)i) % sizeof hog_chunk]) {
                snprintf(why, cap, "its echo differs at byte %zu", got + (size_t)i);
            }
        }
        if (n > 0) {
            got += (size_t)n;
            moved = 1;
        }
        if (!moved) {
            wait_for_tls(hog, pending, 100);
        }
    }
    if (why[0] == '\0' && (pending || got != sent)) {
        snprintf(why, cap, "it got %zu of the %zu bytes it sent back within 5 s%s", got, sent,
                 pending ? " (and could not finish its last write)" : "");
    }
    netx_set_nonblocking(netx_tls_fd(hog), 0);
    if (netx_tls_close(hog) != 0 && why[0] == '\0') {
        snprintf(why, cap, "its close: %s", netx_last_error());
    }
    return why[0] == '\0' ? 0 : -1;
}

/*
 * With the default cap (-b 65536), a client that sends without reading is
 * held to it: tls_server stops reading from it (the hog's writes stall),
 * its memory grows by far less than the hog sent, another client is served
 * at once, and the hog gets every byte back when it reads at last.
 *
 * The last step guards a mistake easy to make in a TLS event loop: asking
 * the poller, for output still pending, for what netx_tls_wants() says
 * after a read - the last TLS call's wish (READABLE), not the stalled
 * send's (WRITABLE). A server that did so would hold the end of the echo
 * for ever, and this client would never get it.
 */
static void tls_server_slow_reader_capped_others_served(void **state)
{
    (void)state;
    int port = start_tls_server(SERVER_PEM, NULL);
    const char *const trust[] = {"-C", CA_PEM, NULL};
    run_client(port, trust, (const char *const[]){"warming up", NULL}, NULL);
    assert_client_echoed("warming up\n");
    long before = rss_kib(server.pid);

    size_t sent;
    int pending, stalled;
    netx_tls *hog = hog_fill(port, &sent, &pending, &stalled);
    long after = rss_kib(server.pid);

    long long t0 = proc_now_ms();
    run_client(port, trust, (const char *const[]){"not stuck behind the hog", NULL}, NULL);
    long long took = proc_now_ms() - t0;

    char why[256];
    int drained = hog_drain(hog, sent, pending, why, sizeof why); /* closes the hog */
    int status = proc_stop(&server, SIGTERM, WAIT_MS);
    if (!stalled) {
        fail_msg("tls_server went on reading from a client that never reads: %zu bytes taken",
                 sent);
    }
    if (after - before >= 16 * 1024) {
        fail_msg("tls_server grew from %ld KiB to %ld KiB while a client sent %zu bytes and "
                 "read none",
                 before, after, sent);
    }
    assert_client_echoed("not stuck behind the hog\n");
    if (took > 3000) {
        fail_msg("a client next to the hog took %lld ms", took);
    }
    if (drained != 0) {
        fail_msg("the hog, reading at last (%zu bytes sent while it did not read): %s", sent, why);
    }
    assert_int_equal(status, 0);
    assert_string_equal(server.err_buf, "");
}

/*
 * With -b below one TLS record (16 KiB), the server reads a record in
 * pieces of at most -b bytes. What is left of the record is decrypted
 * already and waits inside OpenSSL (netx_tls_pending() > 0), where the
 * poller cannot see it; the socket is empty, since the client waits for
 * its echo. A server that stopped reading with such bytes left, waiting
 * for READABLE, would never wake for them: here -b 1000 and a line of
 * 16384 bytes, which must come back whole, exit 0.
 */
static void tls_server_small_cap_long_line_echoed(void **state)
{
    (void)state;
    int port = start_tls_server(SERVER_PEM, (const char *const[]){"-b", "1000", NULL});
    size_t len = 16 * KIB;
    char *line = malloc(len + 1);
    assert_non_null(line);
    memset(line, 'y', len);
    line[len - 1] = '\n';
    line[len] = '\0';
    run_client(port, (const char *const[]){"-C", CA_PEM, "-t", "2", NULL}, NULL, line);
    int ok = client.status == 0 && client.out_len == len && strcmp(client.out_buf, line) == 0;
    free(line);
    if (!ok) {
        proc_stop(&server, SIGTERM, WAIT_MS);
        fail_msg("tls_server -b 1000 and a line of 16384 bytes (one TLS record): tls_client "
                 "status %d, %zu bytes back, stderr \"%s\"",
                 client.status, client.out_len, client.err_buf);
    }
    stop_tls_server(port, 1);
}

/* ------------------------------------------------------------------------
 * Stopping
 * ------------------------------------------------------------------------ */

/*
 * SIGTERM while a tls_client is in the middle of its conversation: the
 * server stops accepting but goes on serving it - a line sent after the
 * stop still comes back - and exits 0 as soon as it has left, well within
 * the grace period (-g 10).
 */
static void tls_server_sigterm_mid_conversation_client_gets_everything(void **state)
{
    (void)state;
    int port = start_tls_server(SERVER_PEM, (const char *const[]){"-g", "10", NULL});
    struct args a;
    client_args(&a, port, (const char *const[]){"-C", CA_PEM, NULL}, NULL);
    assert_int_equal(proc_start(&client, a.v, NULL, 1), 0);
    const char before[] = "before the stop\n";
    const char after[] = "after the stop\n";
    assert_int_equal(write_all(client.in, before, sizeof before - 1), 0);
    assert_int_equal(proc_wait_output(&client, before, WAIT_MS), 0);

    long long t0 = proc_now_ms();
    assert_int_equal(kill(server.pid, SIGTERM), 0);
    assert_int_equal(proc_wait_output(&server, "stopping:", WAIT_MS), 0);
    int late = netx_tcp_connect("127.0.0.1", (uint16_t)port, 2000);
    int late_err = errno;
    if (late >= 0) {
        netx_close(late);
    }
    assert_int_equal(write_all(client.in, after, sizeof after - 1), 0);
    int after_back = proc_wait_output(&client, after, WAIT_MS) == 0;
    proc_close_stdin(&client);
    proc_finish(&client, WAIT_MS);
    int server_status = proc_finish(&server, WAIT_MS);
    long long took = proc_now_ms() - t0;

    assert_true(after_back);
    assert_client_echoed("before the stop\nafter the stop\n");
    assert_true(late < 0);
    assert_int_equal(late_err, ECONNREFUSED);
    assert_int_equal(server_status, 0);
    assert_string_equal(server.err_buf, "tls_server: stopping: letting 1 clients finish for up "
                                        "to 10 s (signal again to stop now)\n");
    if (took > 5000) {
        fail_msg("tls_server took %lld ms to exit after its last client left", took);
    }
}

/* SIGTERM in the middle of a 1 MiB echo (after 256 KiB): tls_client gets
 * every byte, and the server then exits 0. */
static void tls_server_sigterm_during_1mib_echo_client_gets_all(void **state)
{
    (void)state;
    int port = start_tls_server(SERVER_PEM, (const char *const[]){"-g", "20", NULL});
    size_t len = MIB;
    char *data = make_lines(len);
    struct args a;
    client_args(&a, port, (const char *const[]){"-C", CA_PEM, NULL}, NULL);
    assert_int_equal(proc_start(&client, a.v, NULL, 1), 0);
    int same = 0;
    size_t got = pipe_through(&client, data, len, 20000, &same, 256 * KIB);
    free(data);
    int status = proc_finish(&server, WAIT_MS);
    if (client.status != 0 || got != len || !same) {
        fail_msg("tls_client, its server stopped during a 1 MiB echo: status %d, %zu of %zu "
                 "bytes back%s; stderr: %s; the server said: %s",
                 client.status, got, len, same ? "" : ", not the same", client.err_buf,
                 server.err_buf);
    }
    assert_int_equal(status, 0);
    assert_non_null(strstr(server.err_buf, "tls_server: stopping: "));
}

/* A client that stays, a grace period of a minute, and two signals: the
 * second stops the server at once, with 0. */
static void tls_server_second_signal_stops_at_once(void **state)
{
    (void)state;
    int port = start_tls_server(SERVER_PEM, (const char *const[]){"-g", "60", NULL});
    struct args a;
    client_args(&a, port, (const char *const[]){"-C", CA_PEM, NULL}, NULL);
    assert_int_equal(proc_start(&client, a.v, NULL, 1), 0);
    assert_int_equal(write_all(client.in, "idle after this\n", 16), 0);
    assert_int_equal(proc_wait_output(&client, "idle after this\n", WAIT_MS), 0);
    long long t0 = proc_now_ms();
    int status = proc_stop_now(&server, SIGTERM, WAIT_MS);
    long long took = proc_now_ms() - t0;
    /* The client, its server gone, ends too (how is its own affair). */
    proc_close_stdin(&client);
    proc_finish(&client, WAIT_MS);
    assert_int_equal(status, 0);
    if (took > 3000) {
        fail_msg("tls_server took %lld ms after the second signal", took);
    }
}

/* -g 1 and a client that stays: closed after the grace period, exit 0. */
static void tls_server_grace_period_ends(void **state)
{
    (void)state;
    int port = start_tls_server(SERVER_PEM, (const char *const[]){"-g", "1", NULL});
    struct args a;
    client_args(&a, port, (const char *const[]){"-C", CA_PEM, NULL}, NULL);
    assert_int_equal(proc_start(&client, a.v, NULL, 1), 0);
    assert_int_equal(write_all(client.in, "idle after this\n", 16), 0);
    assert_int_equal(proc_wait_output(&client, "idle after this\n", WAIT_MS), 0);
    long long t0 = proc_now_ms();
    assert_int_equal(kill(server.pid, SIGTERM), 0);
    int status = proc_finish(&server, WAIT_MS);
    long long took = proc_now_ms() - t0;
    proc_close_stdin(&client);
    proc_finish(&client, WAIT_MS);
    assert_int_equal(status, 0);
    if (took < 800 || took > 6000) {
        fail_msg("tls_server -g 1 exited %lld ms after SIGTERM", took);
    }
}

/* ------------------------------------------------------------------------
 * Command lines
 * ------------------------------------------------------------------------ */

static void tls_server_bad_arguments_exit_two(void **state)
{
    (void)state;
    const char *need = "a TLS server needs its certificate (-c) and its key (-k)";
    proc_check_bad_usage(&client, "tls_server", NULL, NULL, need);
    proc_check_bad_usage(&client, "tls_server", "-c", SERVER_PEM, need);
    proc_check_bad_usage(&client, "tls_server", "-k", KEY_PEM, need);
    proc_check_bad_usage(&client, "tls_server", "-T", "0",
                         "-T \"0\": not a number from 1 to 86400");
    proc_check_bad_usage(&client, "tls_server", "-b", "0",
                         "-b \"0\": not a number from 1 to 1073741824");
    proc_check_bad_usage(&client, "tls_server", "-n", "0",
                         "-n \"0\": not a number from 1 to 100000");
    proc_check_bad_usage(&client, "tls_server", "-c", NULL, "option -c needs a value");
    proc_check_bad_usage(&client, "tls_server", "extra", NULL, "unexpected argument \"extra\"");
    proc_check_common_bad_usage(&client, "tls_server");
}

static void tls_client_bad_arguments_exit_two(void **state)
{
    (void)state;
    char with_ca[320];
    snprintf(with_ca, sizeof with_ca, "-C%s", CA_PEM);
    proc_check_bad_usage(&client, "tls_client", "--insecure", with_ca,
                         "-C and --insecure together: -C says whom to trust, --insecure trusts "
                         "anyone");
    proc_check_bad_usage(&client, "tls_client", with_ca, "--insecure",
                         "-C and --insecure together: -C says whom to trust, --insecure trusts "
                         "anyone");
    proc_check_bad_usage(&client, "tls_client", "-p", "0",
                         "port 0: a client needs the server's port");
    proc_check_bad_usage(&client, "tls_client", "-t", "0",
                         "-t \"0\": not a number of seconds from 1 to 3600");
    proc_check_bad_usage(&client, "tls_client", "-C", NULL, "option -C needs a value");
    proc_check_common_bad_usage(&client, "tls_client");
}

/*
 * A certificate or key that cannot be used: exit 1 with the library's
 * sentence naming the file, before listening.
 *
 * A key that is not the certificate's is refused by OpenSSL as it loads
 * it, in its own words ("key values mismatch"); the library says the
 * sentence netx_tls.h documents, "key FILE: does not match the
 * certificate".
 */
static void tls_server_bad_certificate_files_exit_one(void **state)
{
    (void)state;
    char missing[320];
    snprintf(missing, sizeof missing, "%s/missing.pem", cert_dir);
    struct {
        const char *cert, *key, *says;
    } cases[] = {
        {missing, KEY_PEM, "certificate %s: No such file or directory"},
        {SERVER_PEM, missing, "key %s: No such file or directory"},
        {SERVER_PEM, OTHER_KEY_PEM, "key %s: does not match the certificate"},
    };
    const char *named[] = {missing, missing, OTHER_KEY_PEM};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *argv[] = {proc_path("tls_server"), "-H", "127.0.0.1",  "-p", "0", "-c",
                              cases[i].cert,           "-k", cases[i].key, NULL};
        int status = proc_run(&client, argv, NULL, WAIT_MS);
        char says[400], want[480];
        snprintf(says, sizeof says, cases[i].says, named[i]);
        snprintf(want, sizeof want, "tls_server: tls server config: %s\n", says);
        if (status != 1 || strcmp(client.err_buf, want) != 0 || client.out_len != 0) {
            fail_msg("tls_server -c %s -k %s: status %d, stdout \"%s\", stderr \"%s\"; "
                     "wanted 1 and \"%s\"",
                     cases[i].cert, cases[i].key, status, client.out_buf, client.err_buf, want);
        }
    }
}

static void tls_client_missing_ca_file_exits_one(void **state)
{
    (void)state;
    char missing[320];
    snprintf(missing, sizeof missing, "%s/missing-ca.pem", cert_dir);
    const char *argv[] = {proc_path("tls_client"), "-p", "1", "-C", missing, "hi", NULL};
    assert_int_equal(proc_run(&client, argv, NULL, WAIT_MS), 1);
    char want[400];
    snprintf(want, sizeof want, "tls_client: tls ca file %s: No such file or directory\n", missing);
    assert_string_equal(client.err_buf, want);
    assert_string_equal(client.out_buf, "");
}

/*
 * -H as every server takes it: "-H HOST:PORT" is refused with a hint to use
 * -p, '' listens on every interface (IPv4 and IPv6), ::1 is an address.
 */
static void tls_server_host_empty_every_interface_port_hint(void **state)
{
    (void)state;
    const char *const extra[] = {"-c", SERVER_PEM, "-k", KEY_PEM, NULL};
    proc_check_server_host(&client, "tls_server", extra, SOCK_STREAM);
}

static void tls_help_exits_zero(void **state)
{
    (void)state;
    const char *names[] = {"tls_server", "tls_client"};
    for (int i = 0; i < 2; i++) {
        const char *argv[] = {proc_path(names[i]), "-h", NULL};
        assert_int_equal(proc_run(&client, argv, NULL, WAIT_MS), 0);
        char want[64];
        snprintf(want, sizeof want, "usage: %s ", names[i]);
        assert_true(strncmp(client.out_buf, want, strlen(want)) == 0);
        assert_string_equal(client.err_buf, "");
    }
}

int main(void)
{
    /* tls_client looks up "localhost": from /etc/hosts alone. */
    support_offline_resolver();
    const struct CMUnitTest tests[] = {
        TEST(tls_pair_arguments_echoed_exactly),
        TEST(tls_pair_stdin_lines_echoed_exactly),
        TEST(tls_client_1mib_stdin_echoed_byte_for_byte),
        TEST(tls_client_line_over_64kib_exits_one),
        TEST(tls_server_openssl_s_client_echoed),
        TEST(tls_server_python_ssl_client_echoed),
        TEST(tls_server_openssl_key_update_echo_goes_on),
        TEST(tls_client_python_ssl_server_echoed),
        TEST(tls_client_openssl_s_server_echoed_through_relay),
        TEST(tls_client_openssl_s_server_rev_checks_every_byte),
        TEST(tls_client_wrong_ca_refused_exits_one),
        TEST(tls_client_system_cas_refuse_private_ca_exits_one),
        TEST(tls_client_wrong_name_refused_exits_one),
        TEST(tls_client_expired_refused_exits_one),
        TEST(tls_client_insecure_wrong_ca_works_with_warning),
        TEST(tls_server_plain_tcp_client_logged_and_next_served),
        TEST(tls_client_plain_echo_server_exits_one),
        TEST(tls_client_silent_server_times_out_exits_one),
        TEST(tls_server_stalled_handshakes_closed_after_timeout_others_served),
        TEST(tls_server_slow_reader_capped_others_served),
        TEST(tls_server_small_cap_long_line_echoed),
        TEST(tls_server_sigterm_mid_conversation_client_gets_everything),
        TEST(tls_server_sigterm_during_1mib_echo_client_gets_all),
        TEST(tls_server_second_signal_stops_at_once),
        TEST(tls_server_grace_period_ends),
        TEST(tls_server_bad_arguments_exit_two),
        TEST(tls_client_bad_arguments_exit_two),
        TEST(tls_server_bad_certificate_files_exit_one),
        TEST(tls_client_missing_ca_file_exits_one),
        TEST(tls_server_host_empty_every_interface_port_hint),
        TEST(tls_help_exits_zero),
    };
    return cmocka_run_group_tests_name("tls_examples", tests, make_certificates,
                                       remove_certificates);
}
