/*
 * test_unix.c - Unix domain sockets: netx_unix_listen(), netx_unix_connect()
 * and their addresses, over real sockets in a private temporary directory
 * (and Linux's abstract namespace).
 */
#include "support.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

static char dir[64]; /* the test's own directory, made by main() */

static const char *path_in_dir(const char *name, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s/%s", dir, name);
    return buf;
}

static int exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

static void unix_listen_connect_accept_exchange(void **state)
{
    (void)state;
    char path[128];
    path_in_dir("echo.sock", path, sizeof path);
    int lfd = netx_unix_listen(path, 0);
    assert_true(lfd >= 0);
    int c = netx_unix_connect(path, 2000);
    assert_true(c >= 0);
    netx_addr peer;
    int s = netx_accept(lfd, &peer);
    assert_true(s >= 0);
    char text[NETX_ADDRSTRLEN];
    assert_true(netx_addr_format(&peer, text, sizeof text) > 0);
    assert_string_equal(text, "unix:(unnamed)"); /* the client bound no name */
    netx_addr local;
    assert_int_equal(netx_local_addr(lfd, &local), 0);
    assert_true(netx_addr_format(&local, text, sizeof text) > 0);
    char want[160];
    snprintf(want, sizeof want, "unix:%s", path);
    assert_string_equal(text, want);

    /* The reader works on it unchanged. */
    char storage[64];
    char line[64];
    netx_reader r;
    assert_int_equal(netx_reader_init(&r, s, storage, sizeof storage), 0);
    assert_int_equal(netx_send_all(c, "over unix\nsecond\n", 17), 0);
    assert_int_equal(netx_read_line(&r, line, sizeof line), 10);
    assert_string_equal(line, "over unix\n");
    assert_int_equal(netx_read_line(&r, line, sizeof line), 7);
    netx_close(c);
    netx_close(s);
    netx_close(lfd);
    unlink(path);
}

static void unix_path_too_long_enametoolong_never_cut(void **state)
{
    (void)state;
    char path[300];
    int n = snprintf(path, sizeof path, "%s/", dir);
    memset(path + n, 'x', 200);
    path[n + 200] = '\0';
    assert_int_equal(netx_unix_listen(path, 0), -1);
    assert_int_equal(errno, ENAMETOOLONG);
    char want[200];
    snprintf(want, sizeof want,
             "unix listen on unix:%.60s...: %zu bytes, the most is %zu: File name too long",
             path, strlen(path), sizeof(((struct sockaddr_un *)0)->sun_path) - 1);
    assert_string_equal(netx_last_error(), want);
    assert_int_equal(netx_unix_connect(path, 1000), -1);
    assert_int_equal(errno, ENAMETOOLONG);
    assert_memory_equal(netx_last_error(), "unix connect to unix:", 21);
    /* Nothing was made under a shorter name. */
    char cut[sizeof(((struct sockaddr_un *)0)->sun_path)];
    memcpy(cut, path, sizeof cut - 1);
    cut[sizeof cut - 1] = '\0';
    assert_false(exists(cut));
}

/* A server that died left its socket file; the next start replaces it. */
static void unix_stale_socket_file_replaced(void **state)
{
    (void)state;
    char path[128];
    path_in_dir("stale.sock", path, sizeof path);
    int dead = netx_unix_listen(path, 0);
    assert_true(dead >= 0);
    netx_close(dead); /* the file stays: as after a crash */
    assert_true(exists(path));
    assert_int_equal(netx_unix_connect(path, 1000), -1);
    assert_int_equal(errno, ECONNREFUSED);
    errno = 4242;
    int lfd = netx_unix_listen(path, 0);
    assert_true(lfd >= 0);
    assert_int_equal(errno, 4242); /* a success, though bind failed once */
    int c = netx_unix_connect(path, 1000);
    assert_true(c >= 0);
    netx_close(c);
    netx_close(lfd);
    unlink(path);
}

/* A live server's socket is not taken over. */
static void unix_live_socket_eaddrinuse_left_alone(void **state)
{
    (void)state;
    char path[128];
    path_in_dir("live.sock", path, sizeof path);
    int first = netx_unix_listen(path, 0);
    assert_true(first >= 0);
    assert_int_equal(netx_unix_listen(path, 0), -1);
    assert_int_equal(errno, EADDRINUSE);
    char want[256];
    snprintf(want, sizeof want, "unix listen on unix:%s: Address already in use", path);
    assert_string_equal(netx_last_error(), want);
    /* The first server still has its clients. */
    int c = netx_unix_connect(path, 1000);
    assert_true(c >= 0);
    int s = netx_accept(first, NULL);
    assert_true(s >= 0);
    netx_close(c);
    netx_close(s);
    netx_close(first);
    unlink(path);
}

/* A file that is not a socket is never removed. */
static void unix_regular_file_never_removed(void **state)
{
    (void)state;
    char path[128];
    path_in_dir("notes.txt", path, sizeof path);
    int fd = open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "keep me", 7), 7);
    close(fd);
    assert_int_equal(netx_unix_listen(path, 0), -1);
    assert_int_equal(errno, EADDRINUSE);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_size, 7);
    unlink(path);
}

static void unix_connect_missing_enoent_names_path(void **state)
{
    (void)state;
    char path[128];
    path_in_dir("nobody.sock", path, sizeof path);
    assert_int_equal(netx_unix_connect(path, 1000), -1);
    assert_int_equal(errno, ENOENT);
    char want[200];
    snprintf(want, sizeof want, "unix connect to unix:%s: No such file or directory", path);
    assert_string_equal(netx_last_error(), want);
}

static void unix_abstract_name_listen_connect(void **state)
{
    (void)state;
#ifndef __linux__
    skip();
#else
    char name[64];
    snprintf(name, sizeof name, "@netx-test-%d", (int)getpid());
    int lfd = netx_unix_listen(name, 0);
    assert_true(lfd >= 0);
    netx_addr local;
    char text[NETX_ADDRSTRLEN];
    assert_int_equal(netx_local_addr(lfd, &local), 0);
    assert_true(netx_addr_format(&local, text, sizeof text) > 0);
    char want[80];
    snprintf(want, sizeof want, "unix:%s", name);
    assert_string_equal(text, want);
    int c = netx_unix_connect(name, 1000);
    assert_true(c >= 0);
    int s = netx_accept(lfd, NULL);
    assert_true(s >= 0);
    assert_int_equal(netx_send_all(c, "hi", 2), 0);
    char got[2];
    assert_int_equal(netx_recv_all(s, got, 2), 2);
    netx_close(c);
    netx_close(s);
    netx_close(lfd);
    /* No file, and the name is free again once its socket is closed. */
    lfd = netx_unix_listen(name, 0);
    assert_true(lfd >= 0);
    netx_close(lfd);
#endif
}

static void unix_addr_parse_format_round_trip(void **state)
{
    (void)state;
    const char *texts[] = {"unix:/run/app.sock", "unix:relative.sock"
#ifdef __linux__
                           ,
                           "unix:@abstract-name"
#endif
    };
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        netx_addr a;
        char back[NETX_ADDRSTRLEN];
        assert_int_equal(netx_addr_parse(texts[i], &a), 0);
        assert_int_equal(a.ss.ss_family, AF_UNIX);
        assert_true(netx_addr_format(&a, back, sizeof back) > 0);
        assert_string_equal(back, texts[i]);
        assert_int_equal(netx_addr_port(&a), -1);
        assert_int_equal(errno, EAFNOSUPPORT);
    }
    netx_addr a;
    assert_int_equal(netx_addr_parse("unix:", &a), -1);
    assert_int_equal(errno, EINVAL);
}

static void unix_trace_and_sentences_show_path(void **state)
{
    (void)state;
    char path[128];
    char text[4096];
    path_in_dir("traced.sock", path, sizeof path);
    FILE *f = tmpfile();
    assert_non_null(f);
    netx_trace(f);
    int lfd = netx_unix_listen(path, 0);
    netx_trace(NULL);
    rewind(f);
    size_t n = fread(text, 1, sizeof text - 1, f);
    text[n] = '\0';
    fclose(f);
    assert_true(lfd >= 0);
    assert_non_null(strstr(text, "socket(AF_UNIX, SOCK_STREAM) = "));
    char want[200];
    snprintf(want, sizeof want, ", unix:%s) = 0\n", path);
    assert_non_null(strstr(text, want));
    netx_close(lfd);
    unlink(path);
}

int main(void)
{
    snprintf(dir, sizeof dir, "/tmp/netx-unix-XXXXXX");
    if (mkdtemp(dir) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    const struct CMUnitTest tests[] = {
        TEST(unix_listen_connect_accept_exchange),
        TEST(unix_path_too_long_enametoolong_never_cut),
        TEST(unix_stale_socket_file_replaced),
        TEST(unix_live_socket_eaddrinuse_left_alone),
        TEST(unix_regular_file_never_removed),
        TEST(unix_connect_missing_enoent_names_path),
        TEST(unix_abstract_name_listen_connect),
        TEST(unix_addr_parse_format_round_trip),
        TEST(unix_trace_and_sentences_show_path),
    };
    int failed = cmocka_run_group_tests_name("unix", tests, NULL, NULL);
    rmdir(dir);
    return failed;
}
