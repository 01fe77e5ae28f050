/* Unit tests of response heads (core/http/response.h): the exact bytes of
 * the status line, Date and Server, handler headers, framing and
 * Connection; and the checks on header names and values. */
#include "http/date.h"
#include "http/response.h"

#include "check.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>

#define SERVER "Server: loom/" LOOM_VERSION "\r\n"

static loom_req *req(int http_minor)
{
    loom_req *r = loom__req_new();
    if (!r) abort();
    r->http_major = 1;
    r->http_minor = (uint8_t)http_minor;
    return r;
}

/* `want` with "@" standing for the Date line. */
static void expect(const loom__buf *b, const char *want, int line)
{
    size_t dl;
    const char *d = loom__date_line(&dl);
    char full[4096];
    size_t n = 0;
    for (const char *w = want; *w && n + dl < sizeof full; w++) {
        if (*w == '@') {
            memcpy(full + n, d, dl);
            n += dl;
        } else {
            full[n++] = *w;
        }
    }
    int ok = b->len == n && memcmp(b->data, full, n) == 0;
    checks++;
    if (!ok) {
        failures++;
        fprintf(stderr, "%s:%d: got\n%.*s\nwant\n%.*s\n", __FILE__, line, (int)b->len, b->data,
                (int)n, full);
    }
}
#define EXPECT(b, want) expect(b, want, __LINE__)

/* Writes r's response into a fresh buffer, expects `want` there (as
 * EXPECT), and frees r. */
static void write_expect(loom_req *r, const char *want, int line)
{
    loom__buf b = {0};
    int rc = loom__resp_write(r, &b);
    checks++;
    if (rc != 0) {
        failures++;
        fprintf(stderr, "%s:%d: loom__resp_write returned %d\n", __FILE__, line, rc);
    }
    expect(&b, want, line);
    loom__buf_free(&b);
    loom__req_free(r);
}
#define WRITE_EXPECT(r, want) write_expect(r, want, __LINE__)

#define ADD(r, n, v) loom__resp_header_add(r, n, strlen(n), v, strlen(v))
#define SET(r, n, v) loom__resp_header_set(r, n, strlen(n), v, strlen(v))

static void test_simple(void)
{
    loom__buf b = {0};
    loom_req *r = req(1);
    r->resp.status = 200;
    CHECK(SET(r, "Content-Type", "text/plain; charset=utf-8") == 0, "set");
    CHECK(loom__resp_body_copy(r, "Hello, World!", 13) == 0, "body");
    CHECK(loom__resp_write(r, &b) == 0, "write");
    EXPECT(&b, "HTTP/1.1 200 OK\r\n@" SERVER "Content-Type: text/plain; charset=utf-8\r\n"
               "Content-Length: 13\r\n\r\nHello, World!");
    CHECK(r->resp.head_sent, "head_sent");
    CHECK(SET(r, "X-Late", "1") == -1, "a header after the head");
    CHECK(ADD(r, "X-Late", "1") == -1, "a header after the head");
    loom__req_free(r);

    /* An unset status is 200. */
    r = req(1);
    b.len = 0;
    CHECK(loom__resp_write(r, &b) == 0, "write");
    CHECK(r->resp.status == 200, "status %d", r->resp.status);
    EXPECT(&b, "HTTP/1.1 200 OK\r\n@" SERVER "Content-Length: 0\r\n\r\n");
    loom__req_free(r);

    /* Appends behind what the buffer holds. */
    r = req(1);
    CHECK(loom__resp_write(r, &b) == 0, "write");
    EXPECT(&b, "HTTP/1.1 200 OK\r\n@" SERVER "Content-Length: 0\r\n\r\n"
               "HTTP/1.1 200 OK\r\n@" SERVER "Content-Length: 0\r\n\r\n");
    loom__req_free(r);
    loom__buf_free(&b);
}

static void test_connection(void)
{
    loom_req *r = req(0);
    r->resp.status = 201;
    loom__resp_body_copy(r, "x", 1);
    WRITE_EXPECT(r, "HTTP/1.1 201 Created\r\n@" SERVER "Content-Length: 1\r\n"
                    "Connection: keep-alive\r\n\r\nx");

    r = req(1);
    r->resp.status = 200;
    r->resp.close = 1;
    WRITE_EXPECT(r, "HTTP/1.1 200 OK\r\n@" SERVER "Content-Length: 0\r\nConnection: close\r\n\r\n");

    r = req(0);
    r->resp.status = 200;
    r->resp.close = 1;
    WRITE_EXPECT(r, "HTTP/1.1 200 OK\r\n@" SERVER "Content-Length: 0\r\nConnection: close\r\n\r\n");
}

static void test_statuses(void)
{
    static const struct {
        int status;
        const char *want;
    } cases[] = {
        {204, "HTTP/1.1 204 No Content\r\n@" SERVER "\r\n"},
        {304, "HTTP/1.1 304 Not Modified\r\n@" SERVER "\r\n"},
        /* A 101 names the upgrade in Connection (RFC 9110 §7.8); Upgrade is the handler's. */
        {101, "HTTP/1.1 101 Switching Protocols\r\n@" SERVER "Connection: Upgrade\r\n\r\n"},
        {299, "HTTP/1.1 299 Success\r\n@" SERVER "Content-Length: 4\r\n\r\nbody"},
        {418, "HTTP/1.1 418 Client Error\r\n@" SERVER "Content-Length: 4\r\n\r\nbody"},
        {431, "HTTP/1.1 431 Request Header Fields Too Large\r\n@" SERVER
              "Content-Length: 4\r\n\r\nbody"},
        {505,
         "HTTP/1.1 505 HTTP Version Not Supported\r\n@" SERVER "Content-Length: 4\r\n\r\nbody"},
        {599, "HTTP/1.1 599 Server Error\r\n@" SERVER "Content-Length: 4\r\n\r\nbody"},
        {1000, "HTTP/1.1 500 Server Error\r\n@" SERVER "Content-Length: 4\r\n\r\nbody"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        loom_req *r = req(1);
        r->resp.status = cases[i].status;
        loom__resp_body_copy(r, "body", 4);
        WRITE_EXPECT(r, cases[i].want);
    }
    /* HEAD: the length of the body that a GET would get, and no body. */
    loom_req *r = req(1);
    r->is_head = 1;
    r->resp.status = 200;
    loom__resp_body_copy(r, "body", 4);
    WRITE_EXPECT(r, "HTTP/1.1 200 OK\r\n@" SERVER "Content-Length: 4\r\n\r\n");
}

static void test_framing(void)
{
    loom__buf b = {0};
    loom_req *r = req(1);
    r->resp.status = 200;
    CHECK(loom__resp_write_head(r, &b, 1) == 0, "head");
    EXPECT(&b, "HTTP/1.1 200 OK\r\n@" SERVER "Transfer-Encoding: chunked\r\n\r\n");
    loom__req_free(r);

    /* A file: its length, and the head alone (the connection sends it). */
    int fd = open("/dev/null", O_RDONLY);
    r = req(1);
    r->resp.status = 206;
    loom__resp_body_copy(r, "ignored", 7);
    loom__resp_file(r, fd, 10, 18446744073709551615u);
    b.len = 0;
    CHECK(loom__resp_write(r, &b) == 0, "write");
    EXPECT(&b, "HTTP/1.1 206 Partial Content\r\n@" SERVER
               "Content-Length: 18446744073709551615\r\n\r\n");
    loom__req_free(r);

    /* A large body goes out whole behind the head. */
    size_t big = 100000;
    char *body = malloc(big);
    memset(body, 'a', big);
    r = req(1);
    r->resp.status = 200;
    loom__resp_body_copy(r, body, big);
    b.len = 0;
    CHECK(loom__resp_write(r, &b) == 0, "write");
    const char *h = "HTTP/1.1 200 OK\r\n";
    CHECK(b.len > big && memcmp(b.data, h, strlen(h)) == 0 &&
              memcmp(b.data + b.len - big, body, big) == 0 &&
              memmem(b.data, b.len - big, "Content-Length: 100000\r\n\r\n", 26),
          "large body");
    loom__req_free(r);
    free(body);
    loom__buf_free(&b);
}

static void test_headers(void)
{
    loom__buf b = {0};
    loom_req *r = req(1);
    r->resp.status = 200;
    /* More than the first array holds, in order. */
    char n[16], v[16];
    for (int i = 0; i < 20; i++) {
        snprintf(n, sizeof n, "X-H%d", i);
        snprintf(v, sizeof v, "v%d", i);
        CHECK(ADD(r, n, v) == 0, "add %s", n);
    }
    CHECK(ADD(r, "x-h3", "again") == 0, "add");
    size_t vl = 0;
    CHECK(strcmp(loom__resp_header_get(r, "X-H3", 4, &vl), "v3") == 0 && vl == 2, "get");
    CHECK(SET(r, "X-h3", "one") == 0, "set");
    CHECK(strcmp(loom__resp_header_get(r, "x-H3", 4, NULL), "one") == 0, "set replaces all");
    CHECK(loom__resp_header_set(r, "x-h5", 4, NULL, 0) == 0, "remove");
    CHECK(loom__resp_header_get(r, "X-H5", 4, NULL) == NULL, "removed");
    CHECK(r->resp.nheaders == 19, "%u headers", r->resp.nheaders);
    /* A value that is not NUL-terminated at its length. */
    CHECK(loom__resp_header_add(r, "X-Part", 6, "abcdef", 3) == 0, "add");
    CHECK(strcmp(loom__resp_header_get(r, "x-part", 6, NULL), "abc") == 0, "terminated");
    CHECK(ADD(r, "X-Empty", "") == 0, "empty value");
    loom__resp_write(r, &b);
    EXPECT(&b, "HTTP/1.1 200 OK\r\n@" SERVER "X-H0: v0\r\nX-H1: v1\r\nX-H2: v2\r\nX-H4: v4\r\n"
               "X-H6: v6\r\nX-H7: v7\r\nX-H8: v8\r\nX-H9: v9\r\nX-H10: v10\r\nX-H11: v11\r\n"
               "X-H12: v12\r\nX-H13: v13\r\nX-H14: v14\r\nX-H15: v15\r\nX-H16: v16\r\n"
               "X-H17: v17\r\nX-H18: v18\r\nX-H19: v19\r\nX-h3: one\r\nX-Part: abc\r\n"
               "X-Empty: \r\nContent-Length: 0\r\n\r\n");
    loom__req_free(r);
    loom__buf_free(&b);

    /* A Server header of the handler's replaces loom's, where it was set. */
    r = req(1);
    r->resp.status = 200;
    ADD(r, "X-A", "1");
    ADD(r, "sErVeR", "mine");
    WRITE_EXPECT(r, "HTTP/1.1 200 OK\r\n@X-A: 1\r\nsErVeR: mine\r\nContent-Length: 0\r\n\r\n");

    /* ... and loom's comes back when it is removed. */
    r = req(1);
    r->resp.status = 200;
    ADD(r, "Server", "mine");
    loom__resp_header_set(r, "server", 6, NULL, 0);
    WRITE_EXPECT(r, "HTTP/1.1 200 OK\r\n@" SERVER "Content-Length: 0\r\n\r\n");
}

static void test_refused(void)
{
    loom_req *r = req(1);
    static const char *bad_names[] = {"",
                                      "X Y",
                                      "X:Y",
                                      "X\tY",
                                      "(x)",
                                      "\x80",
                                      "a/b",
                                      "X\"",
                                      "Content-Length",
                                      "content-length",
                                      "CONTENT-LENGTH",
                                      "Transfer-Encoding",
                                      "transfer-encoding",
                                      "Connection",
                                      "connectioN"};
    for (size_t i = 0; i < sizeof bad_names / sizeof bad_names[0]; i++) {
        CHECK(ADD(r, bad_names[i], "v") == -1, "name '%s' added", bad_names[i]);
        CHECK(SET(r, bad_names[i], "v") == -1, "name '%s' set", bad_names[i]);
    }
    CHECK(loom__resp_header_add(r, "X\0Y", 3, "v", 1) == -1, "NUL in a name");
    /* Names that only resemble managed ones are fine. */
    CHECK(ADD(r, "Content-Lengths", "1") == 0, "near miss");
    CHECK(ADD(r, "Connectio", "1") == 0, "near miss");
    CHECK(ADD(r, "!#$%&'*+-.^_`|~09AZaz", "1") == 0, "every tchar kind");
    /* CR, LF and NUL anywhere in a value; short and long values, so both the
     * word-wise and the byte-wise checks see them. */
    static const char bad[] = {'\r', '\n', '\0'};
    for (size_t len = 1; len < 40; len++) {
        for (size_t at = 0; at < len; at++) {
            for (size_t k = 0; k < sizeof bad; k++) {
                char v[40];
                memset(v, 'a', len);
                v[at] = bad[k];
                CHECK(loom__resp_header_add(r, "X-V", 3, v, len) == -1,
                      "byte %d at %zu of %zu added", bad[k], at, len);
            }
        }
        char v[40];
        memset(v, '\t', len); /* a tab and others below CR are allowed */
        v[0] = 0x0b;
        v[len - 1] = 0x0e;
        CHECK(loom__resp_header_add(r, "X-V", 3, v, len) == 0, "tabs of %zu refused", len);
        memset(v, 0xff, len);
        CHECK(loom__resp_header_add(r, "X-V", 3, v, len) == 0, "obs-text of %zu refused", len);
    }
    CHECK(SET(r, "X-Keep", "a\r\nb") == -1, "set a bad value");
    loom__req_free(r);
}

static void test_error(void)
{
    loom__buf b = {0};
    loom__resp_write_error(&b, 431, "too many headers");
    EXPECT(&b, "HTTP/1.1 431 Request Header Fields Too Large\r\n@" SERVER
               "Content-Type: text/plain; charset=utf-8\r\nContent-Length: 54\r\n"
               "Connection: close\r\n\r\n"
               "431 Request Header Fields Too Large: too many headers\n");
    loom__buf_free(&b);
}

int main(void)
{
    test_simple();
    test_connection();
    test_statuses();
    test_framing();
    test_headers();
    test_refused();
    test_error();
    loom__arena_trim();
    return check_report();
}
