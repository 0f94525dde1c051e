/*
 * fuzz_http.c - libFuzzer target for http_server's parser
 * (examples/http_parse.h): the request line, header lines, the request
 * target and HTTP dates - every byte of which comes from the network.
 *
 * Each input is split into lines at '\n' and fed as http_server feeds a
 * request's head: the first line to http_parse_request_line(), the others
 * to http_parse_header(), each in a buffer of exactly its size (so that
 * AddressSanitizer sees a read past it). The checks are the parser's
 * promises:
 *
 *  - a status it returns is one of those documented (400, 414, 431, 505);
 *  - what it accepts is well formed: a method of token characters, a
 *    target without control bytes or spaces, HTTP/1.0 or 1.1, at most
 *    HTTP_MAX_HEADERS headers;
 *  - http_target_path() never yields a path with a ".." segment, a NUL, or
 *    one that starts with '/' - nothing that could leave the root - and
 *    never writes past its buffer;
 *  - a date that parses formats back to the same text.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http_parse.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_http.c:%d: check failed: %s\n", __LINE__, #cond);                \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* The path a target names must stay beneath the root. */
static void check_path(const char *target)
{
    /* A buffer of each size from 1 to 64 (and a large one): too small is a
     * refusal, never a write past the end. */
    for (size_t cap = 1; cap <= 64; cap += 7) {
        char *small = malloc(cap);
        CHECK(small != NULL);
        if (http_target_path(target, small, cap) == 0) {
            CHECK(strlen(small) < cap);
        }
        free(small);
    }
    char path[HTTP_LINE_MAX];
    if (http_target_path(target, path, sizeof path) != 0) {
        return;
    }
    CHECK(path[0] != '/');
    /* No ".." segment anywhere: "..", "../x", "x/..", "x/../y". */
    for (const char *p = path; (p = strstr(p, "..")) != NULL; p++) {
        int starts = p == path || p[-1] == '/';
        int ends = p[2] == '\0' || p[2] == '/';
        CHECK(!(starts && ends));
    }
    for (const char *p = path; *p != '\0'; p++) {
        CHECK(!(p[0] == '/' && p[1] == '/')); /* slashes collapsed */
    }
}

static void check_date(const char *text, size_t len)
{
    time_t t = http_parse_date(text, len);
    if (t < 0) {
        return;
    }
    char back[40];
    http_format_date(t, back, sizeof back);
    /* The weekday is not checked on the way in; the rest must come back. */
    CHECK(strlen(back) == 29 && memcmp(back + 5, text + 5, 24) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct http_request req;
    http_request_reset(&req);
    size_t start = 0;
    int line_no = 0;
    int failed = 0;
    while (start < size && line_no < 2 * HTTP_MAX_HEADERS) {
        const uint8_t *nl = memchr(data + start, '\n', size - start);
        size_t len = nl != NULL ? (size_t)(nl - (data + start)) + 1 : size - start;
        char *line = malloc(len + 1);
        CHECK(line != NULL);
        memcpy(line, data + start, len);
        line[len] = '\0';
        start += len;
        check_date(line, http_trim_eol(line, len));
        if (!failed) {
            int status = line_no == 0 ? http_parse_request_line(line, len, &req)
                                      : http_parse_header(line, len, &req);
            CHECK(status == 0 || status == 400 || status == 414 || status == 431 ||
                  status == 505);
            if (status != 0) {
                failed = 1;
            } else if (line_no == 0) {
                CHECK(req.method[0] != '\0' && strlen(req.method) <= HTTP_METHOD_MAX);
                for (const char *m = req.method; *m != '\0'; m++) {
                    CHECK(http_tchar((unsigned char)*m));
                }
                CHECK(req.minor == 0 || req.minor == 1);
                for (const char *t = req.target; *t != '\0'; t++) {
                    CHECK((unsigned char)*t > 0x20 && *t != 0x7f);
                }
                check_path(req.target);
            } else {
                CHECK(req.headers <= HTTP_MAX_HEADERS);
            }
        }
        /* Every line is a target too, as a hostile one would be. */
        check_path(line);
        free(line);
        line_no++;
    }
    http_content_type((const char *)req.target);
    return 0;
}
