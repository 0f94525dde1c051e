/*
 * test_http_client.c - http_client end to end: against Python's
 * http.server (files byte for byte, a directory listing, -I, -o, a 404, a
 * redirect), against a small Python server written here for what
 * http.server never does (chunked bodies, redirect chains, bodies cut
 * short or stalled, heads too large, bad chunk sizes, an interim answer),
 * over a Unix socket, through its command line, and in the TLS build
 * (make TLS=1, which compiles this file with NETX_HTTP_TLS) over https with
 * a throwaway CA made with the openssl command.
 *
 * Everything stays on loopback and in a temporary directory.
 */
#include "proc.h"
#include "support.h"

#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define WAIT_MS  10000 /* generous: each fetch here takes milliseconds */
#define BIG_SIZE (5 * 1024 * 1024)

static struct proc server, client, helper;

/* The temporary directory: www/ is served, out/ takes -o's files, and the
 * TLS build keeps its certificates beside them. */
static char base[256], www[300], out_dir[300], sock_path[300];

/* Every byte value, 64 times: served as www/bytes.bin. */
static unsigned char all_bytes[256 * 64];

/* ---- the directory, the files, the servers ------------------------------ */

static int write_file(const char *dir, const char *name, const void *data, size_t len)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (f == NULL) {
        return -1;
    }
    size_t w = fwrite(data, 1, len, f);
    return fclose(f) == 0 && w == len ? 0 : -1;
}

/* The contents of path, malloc'd (free it), or NULL; *len its size. */
static unsigned char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        return NULL;
    }
    unsigned char *data = NULL;
    long size = -1;
    if (fseek(f, 0, SEEK_END) == 0) {
        size = ftell(f);
    }
    if (size >= 0 && fseek(f, 0, SEEK_SET) == 0) {
        data = malloc((size_t)size + 1);
    }
    if (data != NULL && fread(data, 1, (size_t)size, f) != (size_t)size) {
        free(data);
        data = NULL;
    }
    fclose(f);
    *len = data != NULL ? (size_t)size : 0;
    return data;
}

/* The number of entries in dir, or -1. */
static int dir_entries(const char *dir)
{
    DIR *d = opendir(dir);
    if (d == NULL) {
        return -1;
    }
    int n = 0;
    for (struct dirent *e = readdir(d); e != NULL; e = readdir(d)) {
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) {
            n++;
        }
    }
    closedir(d);
    return n;
}

/* cmocka group setup: the directory and the files served. */
static int files_make(void **state)
{
    (void)state;
    const char *tmp = getenv("TMPDIR");
    snprintf(base, sizeof base, "%s/netx-http-client-XXXXXX", tmp != NULL && tmp[0] ? tmp : "/tmp");
    if (mkdtemp(base) == NULL) {
        fprintf(stderr, "test_http_client: mkdtemp %s: %s\n", base, strerror(errno));
        return -1;
    }
    snprintf(www, sizeof www, "%s/www", base);
    snprintf(out_dir, sizeof out_dir, "%s/out", base);
    snprintf(sock_path, sizeof sock_path, "%s/http.sock", base);
    char docs[320];
    snprintf(docs, sizeof docs, "%s/docs", www);

    for (size_t i = 0; i < sizeof all_bytes; i++) {
        all_bytes[i] = (unsigned char)i;
    }
    unsigned char *big = malloc(BIG_SIZE);
    int ok =
        big != NULL && mkdir(www, 0700) == 0 && mkdir(out_dir, 0700) == 0 && mkdir(docs, 0700) == 0;
    if (ok) {
        support_pattern(big, BIG_SIZE, 42);
        ok = write_file(www, "hello.txt", "hello\n", 6) == 0 &&
             write_file(www, "bytes.bin", all_bytes, sizeof all_bytes) == 0 &&
             write_file(www, "big.bin", big, BIG_SIZE) == 0 &&
             write_file(docs, "page.txt", "a page\n", 7) == 0;
    }
    free(big);
    if (!ok) {
        fprintf(stderr, "test_http_client: could not make the files in %s\n", base);
        return -1;
    }
    return 0;
}

/* cmocka group teardown: kill what a failed test left running, and
 * remove the directory. */
static int files_remove(void **state)
{
    proc_kill_leftovers(state);
    const char *argv[] = {"rm", "-rf", base, NULL};
    return proc_run(&helper, argv, NULL, WAIT_MS) == 0 ? 0 : -1;
}

/* A port nothing listens on: one the system just gave us, closed again. */
static int free_port(void)
{
    int fd = netx_tcp_listen("127.0.0.1", 0, 0);
    assert_true(fd >= 0);
    int port = netx_local_port(fd);
    netx_close(fd);
    return port;
}

/* Start python3 -m http.server on a free port of 127.0.0.1, serving www/,
 * and return the port once it accepts connections. */
static int start_http_server(void)
{
    proc_skip_without("python3", "http.server cannot be tried");
    int port = free_port();
    char p[8];
    proc_port_text(port, p, sizeof p);
    const char *argv[] = {"python3", "-m",          "http.server", "--bind", "127.0.0.1",
                          p,         "--directory", www,           NULL};
    assert_int_equal(proc_start(&server, argv, NULL, 0), 0);
    /* It says nothing we could wait for on a pipe (its output is buffered):
     * try to connect, every 20 ms, for at most WAIT_MS. */
    for (int tries = 0; tries < WAIT_MS / 20; tries++) {
        int fd = netx_tcp_connect("127.0.0.1", (uint16_t)port, 1000);
        if (fd >= 0) {
            netx_close(fd);
            return port;
        }
        poll(NULL, 0, 20);
    }
    proc_stop(&server, SIGKILL, WAIT_MS);
    fprintf(stderr, "http.server did not accept on port %d: %s\n", port, server.err_buf);
    fail();
    return -1;
}

/*
 * A small HTTP server for what http.server does not do. It listens on a
 * free port of 127.0.0.1 (argv[1] "tcp"), of ::1 ("tcp6"), or on a Unix
 * socket (argv[1] its path); argv[2] is www/; with argv[3] and argv[4], a
 * certificate and its key, it speaks TLS. Each connection gets a thread
 * and one answer, chosen by the request's target.
 */
static const char python_listen[] = "import os, socket, ssl, sys, threading, time\n"
                                    "where, root = sys.argv[1], sys.argv[2]\n"
                                    "tls = None\n"
                                    "if len(sys.argv) > 4:\n"
                                    "    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)\n"
                                    "    tls.load_cert_chain(sys.argv[3], sys.argv[4])\n"
                                    "if where == 'tcp':\n"
                                    "    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)\n"
                                    "    s.bind(('127.0.0.1', 0))\n"
                                    "    name = '127.0.0.1:%d' % s.getsockname()[1]\n"
                                    "elif where == 'tcp6':\n"
                                    "    s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)\n"
                                    "    s.bind(('::1', 0))\n"
                                    "    name = '[::1]:%d' % s.getsockname()[1]\n"
                                    "else:\n"
                                    "    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)\n"
                                    "    s.bind(where)\n"
                                    "    name = 'unix:' + where\n"
                                    "s.listen(16)\n"
                                    "print('listening on ' + name, flush=True)\n";

/* ...its answers, chosen by the request's target... */
static const char python_answers[] =
    "OK = b'HTTP/1.1 200 OK\\r\\n'\n"
    "CHUNKED = OK + b'Transfer-Encoding: chunked\\r\\n\\r\\n'\n"
    "def redirect(status, location):\n"
    "    return b'HTTP/1.1 %s\\r\\nLocation: %s\\r\\nContent-Length: 0\\r\\n\\r\\n' % (\n"
    "        status, location)\n"
    "def answer(method, target, head):\n"
    "    def ok(body, extra=b''):\n"
    "        start = OK + extra + b'Content-Length: %d\\r\\n\\r\\n' % len(body)\n"
    "        return start if method == b'HEAD' else start + body\n"
    "    if target.startswith(b'/echo'):\n"
    "        return ok(head, b'X-Method: ' + method + b'\\r\\n')\n"
    "    if target == b'/chunked':\n"
    "        return (CHUNKED + b'5;name=value\\r\\nhello\\r\\n'\n"
    "                + b'0A ; q=\"a;b\"\\r\\n, chunked!\\r\\n'\n"
    "                + b'0\\r\\nX-Trailer: yes\\r\\n\\r\\n')\n"
    "    if target.startswith(b'/chunked-file/'):\n"
    "        data = open(os.path.join(root, target[14:].decode()), 'rb').read()\n"
    "        parts, at, k = [CHUNKED], 0, 0\n"
    "        while at < len(data):\n"
    "            piece = data[at:at + (1, 100, 4096, 65543, 7)[k % 5]]\n"
    "            parts.append(b'%x\\r\\n%s\\r\\n' % (len(piece), piece))\n"
    "            at, k = at + len(piece), k + 1\n"
    "        return b''.join(parts) + b'0\\r\\n\\r\\n'\n"
    "    if target.startswith(b'/hop/'):\n"
    "        n = int(target[5:])\n"
    "        if n == 0:\n"
    "            return ok(b'arrived\\n')\n"
    "        return redirect(b'307 Temporary Redirect', b'/hop/%d' % (n - 1))\n"
    "    if target == b'/a/start':\n"
    "        host = head.split(b'\\r\\nHost: ')[1].split(b'\\r\\n')[0]\n"
    "        return redirect(b'301 Moved Permanently', b'http://' + host + b'/b/c/next')\n"
    "    if target == b'/b/c/next':\n"
    "        return redirect(b'302 Found', b'../d/end?x=1#top')\n"
    "    if target.startswith(b'/b/d/end'):\n"
    "        return ok(target + b'\\n')\n"
    "    if target in (b'/short', b'/stall'):\n"
    "        return OK + b'Content-Length: 100\\r\\n\\r\\n' + b'x' * 50\n"
    "    if target == b'/toclose':\n"
    "        return OK + b'\\r\\n' + b'read to close\\n' * 5000\n"
    "    if target == b'/long-header':\n"
    "        return ok(b'', b'X-Long: ' + b'a' * 9000 + b'\\r\\n')\n"
    "    if target.startswith(b'/headers/'):\n"
    "        n = int(target[9:])\n"
    "        return ok(b'ok\\n', b''.join(b'X-H%d: %d\\r\\n' % (i, i) for i in range(n - 1)))\n"
    "    if target == b'/bad-chunk':\n"
    "        return CHUNKED + b'zz\\r\\nhello\\r\\n0\\r\\n\\r\\n'\n"
    "    if target == b'/huge-chunk':\n"
    "        return CHUNKED + b'10000000000000000\\r\\nhello\\r\\n0\\r\\n\\r\\n'\n"
    "    if target == b'/long-chunk':\n"
    "        return CHUNKED + b'3\\r\\nhello\\r\\n0\\r\\n\\r\\n'\n"
    "    if target == b'/cut-chunk':\n"
    "        return CHUNKED + b'5\\r\\nhello\\r\\n10\\r\\nonly-part'\n"
    "    if target == b'/cut-size':\n"
    "        return CHUNKED + b'5\\r\\nhello\\r\\n5'\n"
    "    if target == b'/interim':\n"
    "        return b'HTTP/1.1 103 Early Hints\\r\\nLink: </a.css>\\r\\n\\r\\n' + ok(b'final\\n')\n"
    "    if target == b'/not-http':\n"
    "        return b'SSH-2.0-OpenSSH_9.2\\r\\n'\n"
    "    return b'HTTP/1.1 404 Not Found\\r\\nContent-Length: 11\\r\\n\\r\\nerror page\\n'\n";

/* ...and a thread per connection, each reading the head and answering. */
static const char python_serve[] =
    "def serve(c):\n"
    "    try:\n"
    "        c.settimeout(10)\n"
    "        if tls:\n"
    "            c = tls.wrap_socket(c, server_side=True)\n"
    "        head = b''\n"
    "        while b'\\r\\n\\r\\n' not in head and len(head) < 65536:\n"
    "            more = c.recv(65536)\n"
    "            if not more:\n"
    "                return\n"
    "            head += more\n"
    "        method, target = head.split(b' ')[:2]\n"
    "        c.sendall(answer(method, target, head))\n"
    "        if target == b'/stall':\n"
    "            print('stalling', flush=True)\n"
    "            time.sleep(10)\n"
    "    except Exception:\n"
    "        pass  # a client that went away, or refused our certificate\n"
    "    finally:\n"
    "        c.close()\n"
    "while True:\n"
    "    c, _ = s.accept()\n"
    "    threading.Thread(target=serve, args=(c,), daemon=True).start()\n";

/* The three parts joined (ISO C allows string literals of 4095 bytes). */
static char python_server[16384];

/* Start the server above (where: "tcp", "tcp6" or a Unix socket's path;
 * cert and key NULL for plain HTTP) and return its port (0 for a Unix
 * socket). */
static int start_script_server(const char *where, const char *cert, const char *key)
{
    proc_skip_without("python3", "the scripted HTTP server cannot be run");
    snprintf(python_server, sizeof python_server, "%s%s%s", python_listen, python_answers,
             python_serve);
    const char *argv[] = {"python3", "-c", python_server, where, www, cert, key, NULL};
    assert_int_equal(proc_start(&server, argv, NULL, 0), 0);
    int port = 0;
    if (strncmp(where, "tcp", 3) == 0) {
        port = proc_wait_listening(&server, WAIT_MS);
    } else if (proc_wait_output(&server, "listening on unix:", WAIT_MS) != 0) {
        port = -1;
    }
    if (port < 0) {
        fprintf(stderr, "the Python server said: %s%s\n", server.out_buf, server.err_buf);
    }
    assert_true(port >= 0);
    return port;
}

static void stop_server(void)
{
    proc_stop(&server, SIGTERM, WAIT_MS);
}

/* Run http_client with the arguments that follow (NULL ends them, 8 at
 * most) and the environment settings env (or NULL); returns its exit
 * status, its output in client. */
static int run(const char *const env[], ...)
{
    const char *argv[10] = {proc_path("http_client")};
    size_t n = 1;
    va_list ap;
    va_start(ap, env);
    for (const char *a = va_arg(ap, const char *); a != NULL && n < 9;
         a = va_arg(ap, const char *)) {
        argv[n++] = a;
    }
    va_end(ap);
    argv[n] = NULL;
    assert_int_equal(proc_start(&client, argv, env, 0), 0);
    return proc_finish(&client, WAIT_MS);
}

/* "http://127.0.0.1:PORT/PATH" in buf. */
static const char *url(char *buf, size_t cap, int port, const char *path)
{
    snprintf(buf, cap, "http://127.0.0.1:%d%s", port, path);
    return buf;
}

/* Check that the client ended with status and said exactly want on
 * standard error. */
static void check_client(int status, int want_status, const char *want_err)
{
    if (status != want_status || strcmp(client.err_buf, want_err) != 0) {
        fprintf(stderr, "http_client: status %d (want %d), stderr:\n%swanted:\n%s", status,
                want_status, client.err_buf, want_err);
        fail();
    }
}

/* Run http_client on the scripted server's path, which must fail with
 * exit status 1 and exactly the message want ("http_client: " and a
 * newline added). */
static void check_fails(int port, const char *path, const char *want)
{
    char u[128], line[256];
    snprintf(line, sizeof line, "http_client: %s\n", want);
    check_client(run(NULL, url(u, sizeof u, port, path), NULL), 1, line);
}

/* ---- against http.server ------------------------------------------------ */

static void http_client_file_printed_byte_for_byte(void **state)
{
    (void)state;
    int port = start_http_server();
    char u[128];
    int status = run(NULL, url(u, sizeof u, port, "/bytes.bin"), NULL);
    stop_server();
    check_client(status, 0, "");
    assert_int_equal(client.out_len, sizeof all_bytes);
    assert_memory_equal(client.out_buf, all_bytes, sizeof all_bytes);
}

static void http_client_5mib_file_saved_byte_for_byte(void **state)
{
    (void)state;
    int port = start_http_server();
    char u[128], path[400];
    snprintf(path, sizeof path, "%s/big.bin", out_dir);
    int status = run(NULL, "-o", path, url(u, sizeof u, port, "/big.bin"), NULL);
    stop_server();
    check_client(status, 0, "");
    assert_int_equal(client.out_len, 0);

    size_t len = 0;
    unsigned char *got = read_file(path, &len);
    unsigned char *want = malloc(BIG_SIZE);
    int same = got != NULL && want != NULL && len == BIG_SIZE;
    if (same) {
        support_pattern(want, BIG_SIZE, 42);
        same = memcmp(got, want, BIG_SIZE) == 0;
    }
    free(got);
    free(want);
    int entries = dir_entries(out_dir); /* big.bin, and no temporary file */
    unlink(path);
    assert_true(same);
    assert_int_equal(entries, 1);
}

static void http_client_directory_listing_printed(void **state)
{
    (void)state;
    int port = start_http_server();
    char u[128];
    int status = run(NULL, url(u, sizeof u, port, "/"), NULL);
    stop_server();
    check_client(status, 0, "");
    assert_non_null(strstr(client.out_buf, "Directory listing for /"));
    assert_non_null(strstr(client.out_buf, "<a href=\"hello.txt\">hello.txt</a>"));
    assert_non_null(strstr(client.out_buf, "<a href=\"docs/\">docs/</a>"));
}

static void http_client_head_prints_status_and_headers(void **state)
{
    (void)state;
    int port = start_http_server();
    char u[128];
    int status = run(NULL, "-I", url(u, sizeof u, port, "/hello.txt"), NULL);
    stop_server();
    check_client(status, 0, "");
    /* The status line, the headers one a line, the empty line; no body. */
    assert_true(strncmp(client.out_buf, "HTTP/1.0 200 OK\n", 16) == 0);
    assert_non_null(strstr(client.out_buf, "\nContent-Length: 6\n"));
    assert_true(client.out_len > 2);
    assert_string_equal(client.out_buf + client.out_len - 2, "\n\n");
    assert_null(strstr(client.out_buf, "hello"));
}

static void http_client_not_found_exits_one(void **state)
{
    (void)state;
    int port = start_http_server();
    char u[128], want[256], path[400];
    url(u, sizeof u, port, "/nope");
    snprintf(want, sizeof want, "http_client: 404 File not found: %s\n", u);
    check_client(run(NULL, u, NULL), 1, want);
    assert_int_equal(client.out_len, 0); /* not the error page */
    /* The same with -o, and no file. */
    snprintf(path, sizeof path, "%s/nope", out_dir);
    int status = run(NULL, "-o", path, u, NULL);
    stop_server();
    check_client(status, 1, want);
    assert_int_equal(dir_entries(out_dir), 0);
}

static void http_client_directory_redirect_followed(void **state)
{
    (void)state;
    int port = start_http_server();
    char u[128], want[256];
    int status = run(NULL, url(u, sizeof u, port, "/docs"), NULL);
    stop_server();
    snprintf(want, sizeof want, "http_client: 301 Moved Permanently: following %s/\n", u);
    check_client(status, 0, want);
    assert_non_null(strstr(client.out_buf, "Directory listing for /docs/"));
    assert_non_null(strstr(client.out_buf, "page.txt"));
}

/* ---- against the project's own http_server ------------------------------ */

/* The two examples together, as the demo shows them: a file byte for
 * byte, HEAD, a directory's redirect followed (to a 404), a 404, and 5 MiB to a file
 * with -o - over TCP, then the same file over a Unix socket (-U). */
static void http_client_against_http_server(void **state)
{
    (void)state;
    const char *argv[] = {proc_path("http_server"), "-H", "127.0.0.1", "-p", "0", "-r", www, NULL};
    assert_int_equal(proc_start(&server, argv, NULL, 0), 0);
    int port = proc_wait_listening(&server, WAIT_MS);
    assert_true(port > 0);
    char u[128], want[400], path[400];

    check_client(run(NULL, url(u, sizeof u, port, "/bytes.bin"), NULL), 0, "");
    assert_int_equal(client.out_len, sizeof all_bytes);
    assert_memory_equal(client.out_buf, all_bytes, sizeof all_bytes);

    check_client(run(NULL, "-I", url(u, sizeof u, port, "/hello.txt"), NULL), 0, "");
    assert_true(strncmp(client.out_buf, "HTTP/1.1 200 OK\n", 16) == 0);
    assert_non_null(strstr(client.out_buf, "\nContent-Length: 6\n"));
    assert_non_null(strstr(client.out_buf, "\nContent-Type: text/plain; charset=utf-8\n"));

    /* docs/ has no index.html (http_server lists no directory): the
     * redirect is followed, to a 404. */
    url(u, sizeof u, port, "/docs");
    snprintf(want, sizeof want,
             "http_client: 301 Moved Permanently: following %s/\n"
             "http_client: 404 Not Found: %s/\n",
             u, u);
    check_client(run(NULL, u, NULL), 1, want);
    assert_int_equal(client.out_len, 0);

    snprintf(want, sizeof want, "http_client: 404 Not Found: %s\n",
             url(u, sizeof u, port, "/nope"));
    check_client(run(NULL, u, NULL), 1, want);

    snprintf(path, sizeof path, "%s/big.bin", out_dir);
    check_client(run(NULL, "-o", path, url(u, sizeof u, port, "/big.bin"), NULL), 0, "");
    size_t len = 0;
    unsigned char *got = read_file(path, &len);
    unsigned char *pattern = malloc(BIG_SIZE);
    int same = got != NULL && pattern != NULL && len == BIG_SIZE;
    if (same) {
        support_pattern(pattern, BIG_SIZE, 42);
        same = memcmp(got, pattern, BIG_SIZE) == 0;
    }
    free(got);
    free(pattern);
    unlink(path);
    assert_true(same);
    proc_stop(&server, SIGTERM, WAIT_MS);

    const char *uargv[] = {proc_path("http_server"), "-U", sock_path, "-r", www, NULL};
    assert_int_equal(proc_start(&server, uargv, NULL, 0), 0);
    assert_true(proc_wait_listening(&server, WAIT_MS) >= 0);
    check_client(run(NULL, "--unix-socket", sock_path, "http://localhost/hello.txt", NULL), 0,
                 "");
    assert_string_equal(client.out_buf, "hello\n");
    proc_stop(&server, SIGTERM, WAIT_MS);
    unlink(sock_path);
}

/* ---- against the scripted server ---------------------------------------- */

static void http_client_request_has_host_agent_and_close(void **state)
{
    (void)state;
    int port = start_script_server("tcp", NULL, NULL);
    char u[128], want[256], head[256];
    const char *ask = "User-Agent: libnetx-http_client\r\nConnection: close\r\n\r\n";
    int status = run(NULL, url(u, sizeof u, port, "/echo?q=1&r=%20"), NULL);
    check_client(status, 0, "");
    /* The body is our request, as the server read it. */
    snprintf(want, sizeof want, "GET /echo?q=1&r=%%20 HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n%s", port,
             ask);
    assert_string_equal(client.out_buf, want);

    /* -I asks with HEAD, and prints the head as lines. */
    status = run(NULL, "-I", u, NULL);
    stop_server();
    check_client(status, 0, "");
    snprintf(want, sizeof want, "HEAD /echo?q=1&r=%%20 HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n%s", port,
             ask);
    snprintf(head, sizeof head, "HTTP/1.1 200 OK\nX-Method: HEAD\nContent-Length: %zu\n\n",
             strlen(want));
    assert_string_equal(client.out_buf, head);
}

static void http_client_ipv6_literal_connects_and_names_host(void **state)
{
    (void)state;
    if (!support_have_ipv6()) {
        fprintf(stderr, "skipped: no IPv6 loopback here\n");
        skip();
    }
    int port = start_script_server("tcp6", NULL, NULL);
    char u[128], want[64];
    snprintf(u, sizeof u, "http://[::1]:%d/echo", port);
    int status = run(NULL, u, NULL);
    stop_server();
    check_client(status, 0, "");
    snprintf(want, sizeof want, "\r\nHost: [::1]:%d\r\n", port);
    assert_non_null(strstr(client.out_buf, want));
}

static void http_client_chunked_body_decoded(void **state)
{
    (void)state;
    int port = start_script_server("tcp", NULL, NULL);
    char u[128];
    int status = run(NULL, url(u, sizeof u, port, "/chunked"), NULL);
    stop_server();
    check_client(status, 0, "");
    /* The extensions and the trailer are not part of the body. */
    assert_string_equal(client.out_buf, "hello, chunked!");
}

static void http_client_chunked_5mib_saved_byte_for_byte(void **state)
{
    (void)state;
    int port = start_script_server("tcp", NULL, NULL);
    char u[128], path[400];
    snprintf(path, sizeof path, "%s/chunked.bin", out_dir);
    int status = run(NULL, "-o", path, url(u, sizeof u, port, "/chunked-file/big.bin"), NULL);
    stop_server();
    check_client(status, 0, "");
    size_t len = 0;
    unsigned char *got = read_file(path, &len);
    unsigned char *want = malloc(BIG_SIZE);
    int same = got != NULL && want != NULL && len == BIG_SIZE;
    if (same) {
        support_pattern(want, BIG_SIZE, 42);
        same = memcmp(got, want, BIG_SIZE) == 0;
    }
    free(got);
    free(want);
    unlink(path);
    assert_true(same);
}

static void http_client_redirect_chain_followed(void **state)
{
    (void)state;
    int port = start_script_server("tcp", NULL, NULL);
    char u[128], want[512];
    int status = run(NULL, url(u, sizeof u, port, "/a/start"), NULL);
    stop_server();
    /* 301 to an absolute URL, then 302 to "../d/end?x=1#top", relative to
     * /b/c/next: /b/d/end?x=1, the fragment never sent. */
    snprintf(want, sizeof want,
             "http_client: 301 Moved Permanently: following http://127.0.0.1:%d/b/c/next\n"
             "http_client: 302 Found: following http://127.0.0.1:%d/b/d/end?x=1\n",
             port, port);
    check_client(status, 0, want);
    assert_string_equal(client.out_buf, "/b/d/end?x=1\n");
}

static void http_client_five_redirects_followed(void **state)
{
    (void)state;
    int port = start_script_server("tcp", NULL, NULL);
    char u[128], want[1024];
    int status = run(NULL, url(u, sizeof u, port, "/hop/5"), NULL);
    stop_server();
    size_t len = 0;
    for (int hop = 4; hop >= 0; hop--) {
        len += (size_t)snprintf(want + len, sizeof want - len,
                                "http_client: 307 Temporary Redirect: following "
                                "http://127.0.0.1:%d/hop/%d\n",
                                port, hop);
    }
    check_client(status, 0, want);
    assert_string_equal(client.out_buf, "arrived\n");
}

static void http_client_sixth_redirect_exits_one(void **state)
{
    (void)state;
    int port = start_script_server("tcp", NULL, NULL);
    char u[128], want[1024];
    int status = run(NULL, url(u, sizeof u, port, "/hop/6"), NULL);
    stop_server();
    size_t len = 0;
    for (int hop = 5; hop >= 1; hop--) {
        len += (size_t)snprintf(want + len, sizeof want - len,
                                "http_client: 307 Temporary Redirect: following "
                                "http://127.0.0.1:%d/hop/%d\n",
                                port, hop);
    }
    snprintf(want + len, sizeof want - len,
             "http_client: 307 Temporary Redirect: more than 5 redirects, not following "
             "http://127.0.0.1:%d/hop/0\n",
             port);
    check_client(status, 1, want);
}

static void http_client_short_body_exits_one(void **state)
{
    (void)state;
    int port = start_script_server("tcp", NULL, NULL);
    char u[128], path[400];
    const char *want = "http_client: the server closed the connection after 50 of 100 bytes\n";
    url(u, sizeof u, port, "/short");
    /* Standard output has what came, as it came... */
    assert_int_equal(run(NULL, u, NULL), 1);
    assert_string_equal(client.err_buf, want);
    assert_int_equal(client.out_len, 50);
    /* ...and -o leaves no file. */
    snprintf(path, sizeof path, "%s/short", out_dir);
    int status = run(NULL, "-o", path, u, NULL);
    stop_server();
    check_client(status, 1, want);
    assert_int_equal(dir_entries(out_dir), 0);
}

static void http_client_read_to_close_body_complete(void **state)
{
    (void)state;
    int port = start_script_server("tcp", NULL, NULL);
    char u[128];
    int status = run(NULL, url(u, sizeof u, port, "/toclose"), NULL);
    stop_server();
    check_client(status, 0, "");
    assert_int_equal(client.out_len, 14 * 5000);
    for (size_t i = 0; i < 5000; i++) {
        assert_memory_equal(client.out_buf + 14 * i, "read to close\n", 14);
    }
}

static void http_client_stalled_body_times_out(void **state)
{
    (void)state;
    int port = start_script_server("tcp", NULL, NULL);
    char u[128];
    long long t0 = proc_now_ms();
    int status = run(NULL, "-t", "300", url(u, sizeof u, port, "/stall"), NULL);
    long long took = proc_now_ms() - t0;
    stop_server();
    assert_int_equal(status, 1);
    assert_true(strncmp(client.err_buf, "http_client: recv from 127.0.0.1:", 33) == 0);
    assert_non_null(strstr(client.err_buf, "Connection timed out\n"));
    assert_true(took >= 300);
    assert_true(took < 5000);
}

static void http_client_interrupted_download_leaves_no_file(void **state)
{
    (void)state;
    int port = start_script_server("tcp", NULL, NULL);
    char u[128], path[400];
    snprintf(path, sizeof path, "%s/stalled", out_dir);
    const char *argv[] = {proc_path("http_client"), "-o", path, url(u, sizeof u, port, "/stall"),
                          NULL};
    assert_int_equal(proc_start(&client, argv, NULL, 0), 0);
    /* Once the server has answered half the body, as a user would: Ctrl-C. */
    int waited = proc_wait_output(&server, "stalling", WAIT_MS);
    kill(client.pid, SIGINT);
    int status = proc_finish(&client, WAIT_MS);
    stop_server();
    assert_int_equal(waited, 0);
    assert_int_equal(status, 1);
    assert_non_null(strstr(client.err_buf, "stopped by SIGINT\n"));
    assert_int_equal(dir_entries(out_dir), 0);
}

static void http_client_long_header_line_exits_one(void **state)
{
    (void)state;
    int port = start_script_server("tcp", NULL, NULL);
    check_fails(port, "/long-header", "the server sent a line of the head longer than 8192 bytes");
    stop_server();
}

static void http_client_header_count_bounded(void **state)
{
    (void)state;
    int port = start_script_server("tcp", NULL, NULL);
    char u[128];
    int status = run(NULL, url(u, sizeof u, port, "/headers/100"), NULL);
    check_client(status, 0, "");
    assert_string_equal(client.out_buf, "ok\n");
    check_fails(port, "/headers/101", "the server sent more than 100 header lines");
    stop_server();
}

static void http_client_bad_chunk_size_exits_one(void **state)
{
    (void)state;
    int port = start_script_server("tcp", NULL, NULL);
    check_fails(port, "/bad-chunk", "the server sent a bad chunk size");
    check_fails(port, "/huge-chunk", "the server sent a chunk size of 2^64 bytes or more");
    check_fails(port, "/long-chunk", "the server sent a chunk longer than its size");
    stop_server();
    assert_string_equal(client.out_buf, "hel"); /* the 3 bytes of its size came first */
}

static void http_client_cut_chunked_body_exits_one(void **state)
{
    (void)state;
    int port = start_script_server("tcp", NULL, NULL);
    char u[128];
    /* In the middle of a chunk's bytes... */
    int status = run(NULL, url(u, sizeof u, port, "/cut-chunk"), NULL);
    check_client(status, 1,
                 "http_client: the server closed the connection in the middle of the "
                 "chunked body, after 14 bytes\n");
    /* ...and in a size line: the last line, without its line end, is cut. */
    status = run(NULL, url(u, sizeof u, port, "/cut-size"), NULL);
    stop_server();
    check_client(status, 1,
                 "http_client: the server closed the connection in the middle of the "
                 "chunked body\n");
    assert_string_equal(client.out_buf, "hello");
}

static void http_client_interim_answer_skipped(void **state)
{
    (void)state;
    int port = start_script_server("tcp", NULL, NULL);
    char u[128];
    int status = run(NULL, url(u, sizeof u, port, "/interim"), NULL);
    stop_server();
    check_client(status, 0, "");
    assert_string_equal(client.out_buf, "final\n");
}

static void http_client_not_http_exits_one(void **state)
{
    (void)state;
    int port = start_script_server("tcp", NULL, NULL);
    check_fails(port, "/not-http", "the server did not answer with an HTTP/1.x status line");
    stop_server();
}

static void http_client_error_status_body_not_printed(void **state)
{
    (void)state;
    int port = start_script_server("tcp", NULL, NULL);
    char u[128], want[256];
    url(u, sizeof u, port, "/missing");
    snprintf(want, sizeof want, "404 Not Found: %s", u);
    check_fails(port, "/missing", want);
    stop_server();
    assert_int_equal(client.out_len, 0); /* not the server's "error page" */
}

static void http_client_unix_socket_body_arrives(void **state)
{
    (void)state;
    start_script_server(sock_path, NULL, NULL);
    int status = run(NULL, "--unix-socket", sock_path, "http://localhost/echo", NULL);
    stop_server();
    unlink(sock_path);
    check_client(status, 0, "");
    /* The URL's host is still the Host header. */
    assert_true(strncmp(client.out_buf, "GET /echo HTTP/1.1\r\nHost: localhost\r\n", 37) == 0);
}

/* ---- command lines and failures ----------------------------------------- */

static void http_client_bad_urls_exit_two(void **state)
{
    (void)state;
    static const char *const cases[][2] = {
        {"ftp://x/", "URL \"ftp://x/\": unknown scheme \"ftp\""},
        {"localhost:8080/x", "URL \"localhost:8080/x\": no scheme: it must start with http://"},
        {"", "URL \"\": no scheme: it must start with http://"},
        {"http:///x", "URL \"http:///x\": no host"},
        {"http://:80/", "URL \"http://:80/\": no host"},
        {"http://h:/", "URL \"http://h:/\": a bad port: it must be 1 to 65535"},
        {"http://h:0/", "URL \"http://h:0/\": a bad port: it must be 1 to 65535"},
        {"http://h:65536/", "URL \"http://h:65536/\": a bad port: it must be 1 to 65535"},
        {"http://h:8x/", "URL \"http://h:8x/\": a bad port: it must be 1 to 65535"},
        {"http://[::1/", "URL \"http://[::1/\": a bad IPv6 address"},
        {"http://[fe80::1%25eth0]/", "URL \"http://[fe80::1%25eth0]/\": a bad IPv6 address"},
        {"http://user@h/", "URL \"http://user@h/\": a bad host name"},
        {"http://a b/", "the URL has a space, a control character or a byte beyond ASCII at "
                        "byte 9: percent-encode it (a space is %20)"},
        {"http://h/\x1b[2J", "the URL has a space, a control character or a byte beyond "
                             "ASCII at byte 10: percent-encode it (a space is %20)"},
#ifndef NETX_HTTP_TLS
        {"https://127.0.0.1/",
         "URL \"https://127.0.0.1/\": https:// needs the TLS build: make TLS=1"},
#endif
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        proc_check_bad_usage(&client, "http_client", cases[i][0], NULL, cases[i][1]);
    }
    /* A host name of 256 bytes. */
    char long_host[300] = "http://";
    memset(long_host + 7, 'a', 256);
    long_host[263] = '\0';
    assert_int_equal(run(NULL, long_host, NULL), 2);
    const char *start = "http_client: URL \"http://aaaa";
    assert_true(strncmp(client.err_buf, start, strlen(start)) == 0);
    assert_non_null(strstr(client.err_buf, "\": a host name longer than 255 bytes\nusage: "));
}

static void http_client_bad_options_exit_two(void **state)
{
    (void)state;
    const char *name = "http_client";
    proc_check_bad_usage(&client, name, NULL, NULL, "no URL");
    proc_check_bad_usage(&client, name, "http://a/", "http://b/",
                         "unexpected argument \"http://b/\"");
    proc_check_bad_usage(&client, name, "-x", NULL, "unknown option -x");
    proc_check_bad_usage(&client, name, "--insecure", NULL, "unknown option --insecure");
    proc_check_bad_usage(&client, name, "-o", NULL, "option -o needs a value");
    proc_check_bad_usage(&client, name, "--unix-socket", NULL,
                         "option --unix-socket needs a value");
    const char *times[] = {"0", "abc", "-5", " 5", "3600001"};
    for (size_t i = 0; i < sizeof times / sizeof times[0]; i++) {
        char reason[128];
        snprintf(reason, sizeof reason, "-t \"%s\": not a number of milliseconds from 1 to 3600000",
                 times[i]);
        proc_check_bad_usage(&client, name, "-t", times[i], reason);
    }
}

static void http_client_help_exits_zero(void **state)
{
    (void)state;
    int status = run(NULL, "-h", NULL);
    assert_int_equal(status, 0);
    assert_true(strncmp(client.out_buf, "usage: http_client ", 19) == 0);
    assert_string_equal(client.err_buf, "");
}

static void http_client_refused_exits_one(void **state)
{
    (void)state;
    int port = free_port(); /* nothing listens there now */
    char u[128], want[256];
    snprintf(u, sizeof u, "http://localhost:%d/", port);
    snprintf(want, sizeof want,
             "http_client: connect to localhost:%d (127.0.0.1): Connection refused\n", port);
    check_client(run(NULL, u, NULL), 1, want);
}

static void http_client_output_dir_missing_exits_one(void **state)
{
    (void)state;
    int port = free_port(); /* never reached: the file comes first */
    char u[128], path[400], want[512];
    snprintf(path, sizeof path, "%s/no-such-dir/file", out_dir);
    int status = run(NULL, "-o", path, url(u, sizeof u, port, "/"), NULL);
    assert_int_equal(status, 1);
    snprintf(want, sizeof want, "http_client: create %s.", path);
    assert_true(strncmp(client.err_buf, want, strlen(want)) == 0);
    assert_non_null(strstr(client.err_buf, ".part: No such file or directory\n"));
}

/* ---- https (the TLS build) ----------------------------------------------- */

#ifdef NETX_HTTP_TLS
/* A throwaway CA, another CA, and a certificate for the name localhost
 * (not for 127.0.0.1) signed by the first, made once with openssl. */
static char ca_pem[320], other_ca_pem[320], cert_pem[320], key_pem[320];

static void make_certs(void)
{
    static int made;
    proc_skip_without("openssl", "no certificate can be made for the https tests");
    if (made) {
        return;
    }
    char ca_key[320], other_key[320], csr[320], ext[320];
    snprintf(ca_pem, sizeof ca_pem, "%s/ca.pem", base);
    snprintf(ca_key, sizeof ca_key, "%s/ca-key.pem", base);
    snprintf(other_ca_pem, sizeof other_ca_pem, "%s/other-ca.pem", base);
    snprintf(other_key, sizeof other_key, "%s/other-ca-key.pem", base);
    snprintf(cert_pem, sizeof cert_pem, "%s/server.pem", base);
    snprintf(key_pem, sizeof key_pem, "%s/server-key.pem", base);
    snprintf(csr, sizeof csr, "%s/server.csr", base);
    snprintf(ext, sizeof ext, "%s/san.ext", base);
    static const char san[] = "subjectAltName=DNS:localhost\n";
    assert_int_equal(write_file(base, "san.ext", san, sizeof san - 1), 0);

    /* clang-format off */
    const char *ca[] = {"openssl", "req", "-x509", "-newkey", "ec",
                        "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "1",
                        "-subj", "/CN=http_client test CA",
                        "-keyout", ca_key, "-out", ca_pem, NULL};
    const char *other[] = {"openssl", "req", "-x509", "-newkey", "ec",
                           "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "1",
                           "-subj", "/CN=http_client other CA",
                           "-keyout", other_key, "-out", other_ca_pem, NULL};
    const char *req[] = {"openssl", "req", "-newkey", "ec",
                         "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                         "-subj", "/CN=localhost",
                         "-keyout", key_pem, "-out", csr, NULL};
    const char *sign[] = {"openssl", "x509", "-req", "-in", csr,
                          "-CA", ca_pem, "-CAkey", ca_key, "-set_serial", "1", "-days", "1",
                          "-extfile", ext, "-out", cert_pem, NULL};
    /* clang-format on */
    const char *const *steps[] = {ca, other, req, sign};
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        if (proc_run(&helper, steps[i], NULL, WAIT_MS) != 0) {
            fprintf(stderr, "openssl %s said: %s\n", steps[i][1], helper.err_buf);
            fail();
        }
    }
    made = 1;
}

/* Fetch path from the TLS server on port as https://HOST:PORT, trusting
 * the CA in ca; returns the exit status. */
static int run_https(const char *host, int port, const char *path, const char *ca)
{
    char u[128], trust[400];
    snprintf(u, sizeof u, "https://%s:%d%s", host, port, path);
    snprintf(trust, sizeof trust, "SSL_CERT_FILE=%s", ca);
    const char *env[] = {trust, NULL};
    return run(env, u, NULL);
}

static void http_client_https_verified_body_arrives(void **state)
{
    (void)state;
    make_certs();
    int port = start_script_server("tcp", cert_pem, key_pem);
    int status = run_https("localhost", port, "/echo", ca_pem);
    stop_server();
    check_client(status, 0, "");
    char want[128];
    snprintf(want, sizeof want, "GET /echo HTTP/1.1\r\nHost: localhost:%d\r\n", port);
    assert_true(strncmp(client.out_buf, want, strlen(want)) == 0);
}

static void http_client_https_wrong_ca_exits_one(void **state)
{
    (void)state;
    make_certs();
    int port = start_script_server("tcp", cert_pem, key_pem);
    int status = run_https("localhost", port, "/echo", other_ca_pem);
    stop_server();
    assert_int_equal(status, 1);
    assert_int_equal(client.out_len, 0);
    assert_true(strncmp(client.err_buf, "http_client: tls handshake with localhost:", 42) == 0);
    assert_non_null(strstr(client.err_buf, "certificate verify failed"));
}

static void http_client_https_wrong_name_exits_one(void **state)
{
    (void)state;
    make_certs();
    int port = start_script_server("tcp", cert_pem, key_pem);
    /* The certificate is for localhost; 127.0.0.1 is not in it. */
    int status = run_https("127.0.0.1", port, "/echo", ca_pem);
    stop_server();
    assert_int_equal(status, 1);
    assert_int_equal(client.out_len, 0);
    assert_non_null(strstr(client.err_buf, "certificate verify failed"));
    assert_non_null(strstr(client.err_buf, "IP address mismatch"));
}

static void http_client_https_cut_without_close_notify_exits_one(void **state)
{
    (void)state;
    make_certs();
    int port = start_script_server("tcp", cert_pem, key_pem);
    /* A body read to the close, and the server closes without TLS's
     * close_notify: that may be an attacker cutting it, not its end. */
    assert_int_equal(run_https("localhost", port, "/toclose", ca_pem), 1);
    assert_non_null(strstr(client.err_buf, "close_notify"));
    /* A framed body needs none: its end is known. */
    int status = run_https("localhost", port, "/chunked", ca_pem);
    stop_server();
    check_client(status, 0, "");
    assert_string_equal(client.out_buf, "hello, chunked!");
}
#endif

int main(void)
{
    support_offline_resolver(); /* the client looks up "localhost" */
    const struct CMUnitTest tests[] = {
        TEST(http_client_file_printed_byte_for_byte),
        TEST(http_client_5mib_file_saved_byte_for_byte),
        TEST(http_client_directory_listing_printed),
        TEST(http_client_head_prints_status_and_headers),
        TEST(http_client_not_found_exits_one),
        TEST(http_client_directory_redirect_followed),
        TEST(http_client_request_has_host_agent_and_close),
        TEST(http_client_ipv6_literal_connects_and_names_host),
        TEST(http_client_chunked_body_decoded),
        TEST(http_client_chunked_5mib_saved_byte_for_byte),
        TEST(http_client_redirect_chain_followed),
        TEST(http_client_five_redirects_followed),
        TEST(http_client_sixth_redirect_exits_one),
        TEST(http_client_short_body_exits_one),
        TEST(http_client_read_to_close_body_complete),
        TEST(http_client_stalled_body_times_out),
        TEST(http_client_interrupted_download_leaves_no_file),
        TEST(http_client_long_header_line_exits_one),
        TEST(http_client_header_count_bounded),
        TEST(http_client_bad_chunk_size_exits_one),
        TEST(http_client_cut_chunked_body_exits_one),
        TEST(http_client_interim_answer_skipped),
        TEST(http_client_not_http_exits_one),
        TEST(http_client_error_status_body_not_printed),
        TEST(http_client_unix_socket_body_arrives),
        TEST(http_client_against_http_server),
        TEST(http_client_bad_urls_exit_two),
        TEST(http_client_bad_options_exit_two),
        TEST(http_client_help_exits_zero),
        TEST(http_client_refused_exits_one),
        TEST(http_client_output_dir_missing_exits_one),
#ifdef NETX_HTTP_TLS
        TEST(http_client_https_verified_body_arrives),
        TEST(http_client_https_wrong_ca_exits_one),
        TEST(http_client_https_wrong_name_exits_one),
        TEST(http_client_https_cut_without_close_notify_exits_one),
#endif
    };
    return cmocka_run_group_tests_name("http_client", tests, files_make, files_remove);
}
