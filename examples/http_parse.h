/*
 * http_parse.h - the part of http_server that reads untrusted bytes: the
 * request line, the header lines, the request target and HTTP dates. Kept
 * apart from the server so that it can be read on its own, and so that a
 * fuzzer (tests/fuzz/fuzz_http.c, `make fuzz`) can feed it every byte
 * sequence there is.
 *
 * Every function here is a pure function of its arguments: no I/O, no
 * global state, no allocation. Lines arrive whole from a netx_reader, which
 * already bounds their length; these functions bound everything else.
 *
 * HTTP/1.1 is RFC 9112 (message syntax) and RFC 9110 (semantics).
 */
#ifndef HTTP_PARSE_H
#define HTTP_PARSE_H

#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* A request line longer than this is answered 414 (URI Too Long); a header
 * line longer, or a head with more headers than HTTP_MAX_HEADERS, 431. */
#define HTTP_LINE_MAX    8192
#define HTTP_MAX_HEADERS 100
#define HTTP_METHOD_MAX  16

/* What the server needs to know of a request. */
struct http_request {
    char method[HTTP_METHOD_MAX + 1];
    char target[HTTP_LINE_MAX]; /* as sent: "/docs/a%20b.html?x=1" */
    int minor;                  /* HTTP/1.0 or HTTP/1.1 */
    int keep_alive;             /* the connection stays open after it */
    int headers;                /* header lines seen */
    int has_host;               /* a Host header came (required in 1.1) */
    int has_body;               /* Content-Length > 0 or Transfer-Encoding */
    int bad_length;             /* a Content-Length that is not a number */
    time_t if_modified_since;   /* -1: none, or not a date we read */
};

/* 1 for the methods of RFC 9110 (and PATCH): GET and HEAD http_server
 * serves, the others it answers 405; a method it does not know, 501. */
static inline int http_method_known(const char *method)
{
    static const char *const known[] = {"GET",     "HEAD",  "POST",  "PUT",    "DELETE",
                                        "OPTIONS", "PATCH", "TRACE", "CONNECT"};
    for (size_t k = 0; k < sizeof known / sizeof known[0]; k++) {
        if (strcmp(method, known[k]) == 0) {
            return 1;
        }
    }
    return 0;
}

/* A token character (RFC 9110 5.6.2): what methods and header names are
 * made of. */
static inline int http_tchar(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

/* line without its "\n" (and "\r" before it, if any): its length. */
static inline size_t http_trim_eol(const char *line, size_t len)
{
    if (len > 0 && line[len - 1] == '\n') {
        len--;
    }
    if (len > 0 && line[len - 1] == '\r') {
        len--;
    }
    return len;
}

/* Start a request: everything unknown yet. */
static inline void http_request_reset(struct http_request *req)
{
    memset(req, 0, sizeof *req);
    req->if_modified_since = -1;
}

/*
 * The request line, "GET /path HTTP/1.1\r\n" (len bytes, "\n" included).
 * Returns 0, or the status to answer: 400 (not a request line), 505 (not
 * HTTP/1.x), 414 (a target longer than we keep).
 */
static inline int http_parse_request_line(const char *line, size_t len, struct http_request *req)
{
    len = http_trim_eol(line, len);
    size_t i = 0;
    size_t m = 0;
    while (i < len && http_tchar((unsigned char)line[i])) {
        if (m == HTTP_METHOD_MAX) {
            return 400; /* no method is that long */
        }
        req->method[m++] = line[i++];
    }
    req->method[m] = '\0';
    if (m == 0 || i >= len || line[i] != ' ') {
        return 400;
    }
    i++;
    size_t start = i;
    while (i < len && line[i] != ' ') {
        unsigned char c = (unsigned char)line[i];
        if (c <= 0x20 || c == 0x7f) {
            return 400; /* control characters and NUL have no place in a target */
        }
        i++;
    }
    size_t tlen = i - start;
    if (tlen == 0 || i >= len) {
        return 400;
    }
    if (tlen >= sizeof req->target) {
        return 414;
    }
    memcpy(req->target, line + start, tlen);
    req->target[tlen] = '\0';
    i++;
    /* "HTTP/1.1" exactly: a server that guesses at other versions answers
     * what it does not understand. */
    if (len - i != 8 || memcmp(line + i, "HTTP/1.", 7) != 0) {
        return len - i >= 5 && memcmp(line + i, "HTTP/", 5) == 0 ? 505 : 400;
    }
    char minor = line[i + 7];
    if (minor != '0' && minor != '1') {
        return 505;
    }
    req->minor = minor - '0';
    req->keep_alive = req->minor == 1; /* HTTP/1.1 keeps the connection by default */
    return 0;
}

/* 1 if the header value (already trimmed) lists token, case-insensitively,
 * as one of its comma-separated elements ("keep-alive, Upgrade"). */
static inline int http_lists(const char *value, size_t len, const char *token)
{
    size_t tl = strlen(token);
    size_t i = 0;
    while (i < len) {
        while (i < len && (value[i] == ' ' || value[i] == '\t' || value[i] == ',')) {
            i++;
        }
        size_t start = i;
        while (i < len && value[i] != ',') {
            i++;
        }
        size_t end = i;
        while (end > start && (value[end - 1] == ' ' || value[end - 1] == '\t')) {
            end--;
        }
        if (end - start == tl) {
            size_t k = 0;
            while (k < tl && ((value[start + k] | 0x20) == (token[k] | 0x20))) {
                k++;
            }
            if (k == tl) {
                return 1;
            }
        }
    }
    return 0;
}

static inline time_t http_parse_date(const char *text, size_t len);

/* Case-insensitive equality of a header name (n bytes) and want. */
static inline int http_name_is(const char *name, size_t n, const char *want)
{
    if (n != strlen(want)) {
        return 0;
    }
    for (size_t k = 0; k < n; k++) {
        if ((name[k] | 0x20) != (want[k] | 0x20)) {
            return 0;
        }
    }
    return 1;
}

/*
 * One header line, "Name: value\r\n". Returns 0, or the status to answer:
 * 400 (not a header line: no colon, space before the colon - RFC 9112
 * forbids it, it is how request smuggling starts -, a line that starts with
 * white space: the obsolete line folding), 431 (too many headers).
 */
static inline int http_parse_header(const char *line, size_t len, struct http_request *req)
{
    len = http_trim_eol(line, len);
    if (++req->headers > HTTP_MAX_HEADERS) {
        return 431;
    }
    size_t n = 0;
    while (n < len && http_tchar((unsigned char)line[n])) {
        n++;
    }
    if (n == 0 || n >= len || line[n] != ':') {
        return 400;
    }
    size_t v = n + 1;
    while (v < len && (line[v] == ' ' || line[v] == '\t')) {
        v++;
    }
    size_t end = len;
    while (end > v && (line[end - 1] == ' ' || line[end - 1] == '\t')) {
        end--;
    }
    for (size_t k = v; k < end; k++) {
        unsigned char c = (unsigned char)line[k];
        if ((c < 0x20 && c != '\t') || c == 0x7f) {
            return 400; /* no NUL, CR or other control byte in a value */
        }
    }
    const char *value = line + v;
    size_t vlen = end - v;
    if (http_name_is(line, n, "Host")) {
        if (req->has_host) {
            return 400; /* two Hosts: which one? (RFC 9112 3.2) */
        }
        req->has_host = 1;
    } else if (http_name_is(line, n, "Connection")) {
        if (http_lists(value, vlen, "close")) {
            req->keep_alive = 0;
        } else if (http_lists(value, vlen, "keep-alive")) {
            req->keep_alive = 1;
        }
    } else if (http_name_is(line, n, "Content-Length")) {
        size_t k = 0;
        int nonzero = 0;
        while (k < vlen && value[k] >= '0' && value[k] <= '9') {
            nonzero = nonzero || value[k] != '0';
            k++;
        }
        if (k == 0 || k != vlen) {
            req->bad_length = 1;
        } else if (nonzero) {
            req->has_body = 1;
        }
    } else if (http_name_is(line, n, "Transfer-Encoding")) {
        req->has_body = 1;
    } else if (http_name_is(line, n, "If-Modified-Since")) {
        req->if_modified_since = http_parse_date(value, vlen);
    }
    return 0;
}

/* ------------------------------------------------------------------------
 * The request target: from "/a%20b/c.html?x" to a path under the root
 * ------------------------------------------------------------------------ */

static inline int http_hex(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f') {
        return (c | 0x20) - 'a' + 10;
    }
    return -1;
}

/*
 * Turn the target into a relative path under the document root ("a b/c.html";
 * "" for the root itself) in out (cap bytes). Returns 0, or -1 when the
 * target must be refused - one answer for every way out of the root, so
 * that none tells an attacker more than another:
 *
 *  - anything but origin-form ("/path"): "http://host/x" (absolute-form),
 *    "*", "host:port";
 *  - a %XX that is not hex, or that decodes to NUL or to '/' (an encoded
 *    slash would hide a ".." segment from a check made before decoding);
 *  - a ".." segment, after decoding ("/%2e%2e/" is "/../");
 *  - a result that does not fit.
 *
 * The query ("?...") and fragment are dropped. Repeated slashes collapse,
 * and "." segments vanish. Symbolic links are the file system's business:
 * the server opens the result beneath the root (openat2's RESOLVE_BENEATH,
 * or a check of the real path), so a link cannot lead out either.
 */
static inline int http_target_path(const char *target, char *out, size_t cap)
{
    if (target[0] != '/' || cap == 0) {
        return -1;
    }
    size_t o = 0;
    size_t seg = 0; /* where the current segment starts in out */
    for (size_t i = 1;; i++) {
        char c = target[i];
        if (c == '%') {
            int hi = http_hex(target[i + 1]);
            int lo = hi >= 0 ? http_hex(target[i + 2]) : -1;
            if (lo < 0) {
                return -1;
            }
            c = (char)(hi * 16 + lo);
            if (c == '\0' || c == '/') {
                return -1;
            }
            i += 2;
        } else if (c == '\0' || c == '?' || c == '#' || c == '/') {
            /* The end of a segment: drop "." and refuse "..". */
            size_t n = o - seg;
            if (n == 1 && out[seg] == '.') {
                o = seg;
            } else if (n == 2 && out[seg] == '.' && out[seg + 1] == '.') {
                return -1;
            } else if (n > 0 && c == '/') {
                if (o + 1 >= cap) {
                    return -1;
                }
                out[o++] = '/';
            }
            seg = o;
            if (c != '/') {
                break;
            }
            continue;
        }
        if (o + 1 >= cap) {
            return -1;
        }
        out[o++] = c;
    }
    /* A trailing "/" stays: it says "a directory" (the server adds
     * index.html). */
    out[o] = '\0';
    return 0;
}

/* ------------------------------------------------------------------------
 * HTTP dates: "Sun, 06 Nov 1994 08:49:37 GMT" (IMF-fixdate, RFC 9110 5.6.7)
 * ------------------------------------------------------------------------ */

/* "Jan" .. "Dec", and "Sun" .. "Sat". */
static inline const char *http_month_name(int m)
{
    static const char names[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                      "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    return names[m % 12];
}

static inline const char *http_day_name(int d)
{
    static const char names[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    return names[d % 7];
}

/* Days since 1970-01-01 of a date in the proleptic Gregorian calendar
 * (Howard Hinnant's days_from_civil): timegm() is not in POSIX. */
static inline long long http_days_from_civil(long long y, int m, int d)
{
    y -= m <= 2;
    long long era = (y >= 0 ? y : y - 399) / 400;
    long long yoe = y - era * 400;
    long long doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    long long doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* Write t as an IMF-fixdate into out (at least 30 bytes). */
static inline void http_format_date(time_t t, char *out, size_t cap)
{
    struct tm tm;
    if (gmtime_r(&t, &tm) == NULL) {
        snprintf(out, cap, "Thu, 01 Jan 1970 00:00:00 GMT");
        return;
    }
    snprintf(out, cap, "%s, %02d %s %04d %02d:%02d:%02d GMT", http_day_name(tm.tm_wday),
             tm.tm_mday, http_month_name(tm.tm_mon), tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
             tm.tm_sec);
}

/* Read an IMF-fixdate (the only form a server must send); -1 if text is not
 * one. The two obsolete forms are not read: If-Modified-Since with one of
 * them is then ignored, which costs a full response, never a wrong 304. */
static inline time_t http_parse_date(const char *text, size_t len)
{
    /* "Sun, 06 Nov 1994 08:49:37 GMT": exactly 29 bytes. */
    if (len != 29 || text[3] != ',' || text[4] != ' ' || text[7] != ' ' || text[11] != ' ' ||
        text[16] != ' ' || text[19] != ':' || text[22] != ':' || text[25] != ' ' ||
        memcmp(text + 26, "GMT", 3) != 0) {
        return -1;
    }
    int digits[] = {5, 6, 12, 13, 14, 15, 17, 18, 20, 21, 23, 24};
    for (size_t k = 0; k < sizeof digits / sizeof digits[0]; k++) {
        if (text[digits[k]] < '0' || text[digits[k]] > '9') {
            return -1;
        }
    }
    int month = -1;
    for (int k = 0; k < 12; k++) {
        if (memcmp(text + 8, http_month_name(k), 3) == 0) {
            month = k + 1;
        }
    }
    int day = (text[5] - '0') * 10 + (text[6] - '0');
    int year = (text[12] - '0') * 1000 + (text[13] - '0') * 100 + (text[14] - '0') * 10 +
               (text[15] - '0');
    int hour = (text[17] - '0') * 10 + (text[18] - '0');
    int min = (text[20] - '0') * 10 + (text[21] - '0');
    int sec = (text[23] - '0') * 10 + (text[24] - '0');
    /* A date that exists: no 31 February, no leap second (an unreadable
     * If-Modified-Since only costs a full response). */
    static const int month_days[12] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    if (month < 0 || day < 1 || day > month_days[month - 1] ||
        (month == 2 && day == 29 && !leap) || hour > 23 || min > 59 || sec > 59) {
        return -1;
    }
    long long days = http_days_from_civil(year, month, day);
    return (time_t)(days * 86400 + hour * 3600 + min * 60 + sec);
}

/* ------------------------------------------------------------------------
 * Content types, by extension
 * ------------------------------------------------------------------------ */

static inline const char *http_content_type(const char *path)
{
    static const struct {
        const char *ext;
        const char *type;
    } types[] = {
        {".html", "text/html; charset=utf-8"},
        {".htm", "text/html; charset=utf-8"},
        {".css", "text/css; charset=utf-8"},
        {".js", "text/javascript; charset=utf-8"},
        {".mjs", "text/javascript; charset=utf-8"},
        {".json", "application/json"},
        {".svg", "image/svg+xml"},
        {".png", "image/png"},
        {".jpg", "image/jpeg"},
        {".jpeg", "image/jpeg"},
        {".gif", "image/gif"},
        {".ico", "image/x-icon"},
        {".webp", "image/webp"},
        {".txt", "text/plain; charset=utf-8"},
        {".md", "text/markdown; charset=utf-8"},
        {".c", "text/plain; charset=utf-8"},
        {".h", "text/plain; charset=utf-8"},
        {".wasm", "application/wasm"},
        {".pdf", "application/pdf"},
        {".xml", "application/xml"},
    };
    const char *dot = strrchr(path, '.');
    const char *slash = strrchr(path, '/');
    if (dot != NULL && (slash == NULL || dot > slash)) {
        for (size_t k = 0; k < sizeof types / sizeof types[0]; k++) {
            size_t n = strlen(types[k].ext);
            size_t have = strlen(dot);
            size_t j = 0;
            while (j < n && j < have && (dot[j] | 0x20) == types[k].ext[j]) {
                j++;
            }
            if (j == n && have == n) {
                return types[k].type;
            }
        }
    }
    return "application/octet-stream";
}

#endif /* HTTP_PARSE_H */
