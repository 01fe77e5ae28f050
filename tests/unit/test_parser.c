/* Unit tests of the parser glue (core/http/parser.h): requests, pipelining,
 * every limit at its boundary, the strict checks, and the error state.
 *
 * Every input is parsed three ways: in one piece, one byte per feed, and in
 * pieces of 7 bytes. Between feeds the bytes the parser still needs are moved
 * to a freshly allocated buffer and the parser is rebased, as the connection
 * does, so a stale pointer shows up under ASan. The three results must be
 * identical. */
#include "http/parser.h"

#include "check.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAXREQ 16

typedef struct {
    int nreq;
    loom_req *req[MAXREQ];
    int error; /* status, or 0 */
    int more;  /* ended wanting more bytes */
    size_t error_at;
} result;

static void result_free(result *r)
{
    for (int i = 0; i < r->nreq; i++) loom__req_free(r->req[i]);
    memset(r, 0, sizeof *r);
}

/* Feeds `data` in pieces of `step` bytes (0 = all at once). */
static void run(const loom__limits *lim, const char *data, size_t len, size_t step, result *out)
{
    loom__parser p;
    loom__parser_init(&p, lim);
    memset(out, 0, sizeof *out);
    char *buf = NULL; /* the bytes kept: [0, blen) */
    size_t blen = 0;  /* of which [0, parsed) were fed already */
    size_t parsed = 0;
    size_t sent = 0;
    if (step == 0) step = len ? len : 1;
    while (sent < len || (sent == len && len == 0)) {
        size_t n = len - sent < step ? len - sent : step;
        /* A new buffer each time, with the kept bytes in front. */
        char *nb = malloc(blen + n + 1);
        const char *start;
        int pend = loom__parser_pending(&p, &start) != 0;
        size_t base_off = pend ? (size_t)(start - buf) : 0;
        if (blen) memcpy(nb, buf, blen);
        memcpy(nb + blen, data + sent, n);
        free(buf);
        buf = nb;
        blen += n;
        sent += n;
        if (pend) loom__parser_rebase(&p, buf + base_off);
        size_t off = parsed;
        int rc = LOOM__PARSE_MORE;
        while (off < blen) {
            size_t used = 0;
            rc = loom__parser_feed(&p, buf + off, blen - off, &used);
            off += used;
            if (rc == LOOM__PARSE_REQUEST) {
                loom_req *r = loom__parser_take(&p);
                if (out->nreq < MAXREQ)
                    out->req[out->nreq++] = r;
                else
                    loom__req_free(r);
                continue;
            }
            if (rc == LOOM__PARSE_ERROR) {
                out->error = loom__parser_error_status(&p, NULL);
                out->error_at = sent - (blen - off);
                /* Nothing more is parsed once an error is reported. */
                size_t u = 0;
                int again = loom__parser_feed(&p, "GET / HTTP/1.1\r\nHost: a\r\n\r\n", 27, &u);
                CHECK(again == LOOM__PARSE_ERROR, "feed after error returned %d", again);
                loom__parser_free(&p);
                free(buf);
                return;
            }
            break;
        }
        /* Keep what is unparsed, or the head in progress. */
        size_t from = off;
        if (off == blen && loom__parser_pending(&p, &start)) from = (size_t)(start - buf);
        memmove(buf, buf + from, blen - from);
        if (off == blen && loom__parser_pending(&p, &start)) loom__parser_rebase(&p, buf);
        parsed = off - from;
        blen -= from;
        if (len == 0) break;
    }
    out->more = loom__parser_in_request(&p) || blen > parsed;
    loom__parser_free(&p);
    free(buf);
}

static int same_req(const loom_req *a, const loom_req *b)
{
    if (strcmp(a->method, b->method) || strcmp(a->target, b->target) ||
        a->nheaders != b->nheaders || a->body.len != b->body.len ||
        a->keep_alive != b->keep_alive || a->path_len != b->path_len ||
        memcmp(a->path, b->path, a->path_len))
        return 0;
    if (a->body.len && memcmp(a->body.data, b->body.data, a->body.len)) return 0;
    for (uint32_t i = 0; i < a->nheaders; i++)
        if (strcmp(a->headers[i].name, b->headers[i].name) ||
            strcmp(a->headers[i].value, b->headers[i].value))
            return 0;
    return 1;
}

/* Parses `data` the three ways; checks they agree; leaves the whole-piece
 * result in *out. */
static void parse3(const loom__limits *lim, const char *data, size_t len, result *out,
                   const char *name)
{
    static const size_t steps[] = {1, 7};
    run(lim, data, len, 0, out);
    for (size_t k = 0; k < sizeof steps / sizeof *steps; k++) {
        result o;
        run(lim, data, len, steps[k], &o);
        CHECK(o.error == out->error, "%s: step %zu error %d, whole %d", name, steps[k], o.error,
              out->error);
        CHECK(o.nreq == out->nreq, "%s: step %zu %d requests, whole %d", name, steps[k], o.nreq,
              out->nreq);
        for (int i = 0; i < o.nreq && i < out->nreq; i++)
            CHECK(same_req(o.req[i], out->req[i]), "%s: step %zu request %d differs", name,
                  steps[k], i);
        result_free(&o);
    }
}

static loom__limits defaults = {8190, 8190, 128, 1048576, 4096};

/* Expects `nreq` requests then `status` (0 = no error). */
static void expect(const loom__limits *lim, const char *data, size_t len, int nreq, int status,
                   const char *name)
{
    result r;
    parse3(lim, data, len, &r, name);
    CHECK(r.nreq == nreq, "%s: %d requests, want %d", name, r.nreq, nreq);
    CHECK(r.error == status, "%s: status %d, want %d", name, r.error, status);
    result_free(&r);
}

#define EXPECT(data, nreq, status) expect(&defaults, data, sizeof(data) - 1, nreq, status, data)
#define EXPECT_L(lim, data, nreq, status) expect(lim, data, strlen(data), nreq, status, data)

static const char *hdr(const loom_req *r, const char *name)
{
    size_t n;
    const char *v = loom__req_header(r, name, strlen(name), &n);
    return v;
}

static void test_simple_get(void)
{
    static const char s[] = "GET /p/q?x=1&y HTTP/1.1\r\nHost: example.com\r\nX-A:  b c \t\r\n\r\n";
    result r;
    parse3(&defaults, s, sizeof s - 1, &r, "simple");
    CHECK(r.nreq == 1 && r.error == 0, "simple GET: %d %d", r.nreq, r.error);
    if (r.nreq == 1) {
        loom_req *q = r.req[0];
        CHECK(strcmp(q->method, "GET") == 0, "method %s", q->method);
        CHECK(strcmp(q->target, "/p/q?x=1&y") == 0, "target %s", q->target);
        CHECK(q->path_len == 4 && memcmp(q->path, "/p/q", 4) == 0, "path %.*s", (int)q->path_len,
              q->path);
        CHECK(q->query && q->query_len == 5 && memcmp(q->query, "x=1&y", 5) == 0, "query");
        CHECK(q->http_major == 1 && q->http_minor == 1, "version");
        CHECK(q->keep_alive == 1, "keep-alive by default in 1.1");
        CHECK(q->nheaders == 2, "nheaders %u", q->nheaders);
        CHECK(hdr(q, "host") && strcmp(hdr(q, "HOST"), "example.com") == 0, "host");
        CHECK(hdr(q, "x-a") && strcmp(hdr(q, "x-a"), "b c") == 0, "x-a trimmed: '%s'",
              hdr(q, "x-a"));
        CHECK(q->complete && q->body.len == 0 && !q->has_content_length && !q->chunked, "no body");
    }
    result_free(&r);
}

static void test_absolute_form_and_http10(void)
{
    static const char s[] = "GET http://a.example/x/y?z HTTP/1.1\r\nHost: b\r\n\r\n"
                            "GET / HTTP/1.0\r\n\r\n";
    result r;
    parse3(&defaults, s, sizeof s - 1, &r, "absolute");
    CHECK(r.nreq == 2 && r.error == 0, "absolute: %d %d", r.nreq, r.error);
    if (r.nreq == 2) {
        CHECK(r.req[0]->path_len == 4 && memcmp(r.req[0]->path, "/x/y", 4) == 0, "abs path");
        CHECK(r.req[1]->http_minor == 0 && r.req[1]->keep_alive == 0, "1.0 closes by default");
    }
    result_free(&r);
    static const char k[] = "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n";
    parse3(&defaults, k, sizeof k - 1, &r, "1.0 keep-alive");
    CHECK(r.nreq == 1 && r.req[0]->keep_alive == 1, "1.0 with keep-alive");
    result_free(&r);
    static const char c[] = "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n";
    parse3(&defaults, c, sizeof c - 1, &r, "close");
    CHECK(r.nreq == 1 && r.req[0]->keep_alive == 0, "Connection: close");
    result_free(&r);
}

static void test_bodies(void)
{
    static const char cl[] = "POST /u HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\nhello world";
    result r;
    parse3(&defaults, cl, sizeof cl - 1, &r, "cl body");
    CHECK(r.nreq == 1 && r.error == 0, "cl body: %d %d", r.nreq, r.error);
    if (r.nreq == 1) {
        CHECK(r.req[0]->has_content_length && r.req[0]->content_length == 11, "cl");
        CHECK(r.req[0]->body.len == 11 && memcmp(r.req[0]->body.data, "hello world", 11) == 0,
              "cl body bytes");
    }
    CHECK(!r.more, "a body that ends the input completes the request");
    result_free(&r);

    static const char ch[] = "POST /u HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
                             "5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\n"
                             "Content-Length: 50\r\nHost: evil\r\nX-Trailer: t\r\n\r\n";
    parse3(&defaults, ch, sizeof ch - 1, &r, "chunked");
    CHECK(r.nreq == 1 && r.error == 0, "chunked: %d %d", r.nreq, r.error);
    if (r.nreq == 1) {
        loom_req *q = r.req[0];
        CHECK(q->chunked && q->body.len == 11 && memcmp(q->body.data, "hello world", 11) == 0,
              "chunked body");
        /* Trailers never reach the headers. */
        CHECK(q->nheaders == 2, "trailers kept out of headers: %u", q->nheaders);
        CHECK(hdr(q, "content-length") == NULL && hdr(q, "x-trailer") == NULL, "no trailers");
        CHECK(strcmp(hdr(q, "host"), "a") == 0, "host not replaced by a trailer");
    }
    result_free(&r);

    /* GET with a body: the body is framed, then the next request parses. */
    EXPECT("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhelloGET / HTTP/1.1\r\nHost: "
           "a\r\n\r\n",
           2, 0);
    /* LF bytes inside bodies are data. */
    EXPECT("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\n\n\n\n\nGET / "
           "HTTP/1.1\r\nHost: a\r\n\r\n",
           2, 0);
    EXPECT("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n\n\n\r\n0\r\n\r\n",
           1, 0);
}

static void test_pipelining(void)
{
    static const char s[] = "GET /1 HTTP/1.1\r\nHost: a\r\n\r\n"
                            "POST /2 HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc"
                            "HEAD /3 HTTP/1.1\r\nHost: a\r\n\r\n"
                            "\r\nGET /4 HTTP/1.1\r\nHost: a\r\n\r\n";
    result r;
    parse3(&defaults, s, sizeof s - 1, &r, "pipelining");
    CHECK(r.nreq == 4 && r.error == 0, "pipelining: %d %d", r.nreq, r.error);
    for (int i = 0; i < r.nreq; i++) {
        char want[4] = {'/', (char)('1' + i), 0};
        CHECK(strcmp(r.req[i]->target, want) == 0, "order: %s at %d", r.req[i]->target, i);
    }
    if (r.nreq == 4) CHECK(r.req[2]->is_head, "HEAD flagged");
    result_free(&r);
    /* A good request, then garbage: one request, then 400; no resync. */
    EXPECT("GET / HTTP/1.1\r\nHost: a\r\n\r\nINVALID\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", 1,
           400);
}

static void test_limits(void)
{
    loom__limits l = {32, 24, 4, 16, 8};
    char b[512];
    /* Request line: method + target + version bytes ("GET" + t + "1.1"). */
    char t[64];
    memset(t, 'a', sizeof t);
    t[0] = '/';
    snprintf(b, sizeof b, "GET %.*s HTTP/1.1\r\nHost: a\r\n\r\n", 26, t);
    EXPECT_L(&l, b, 1, 0);
    snprintf(b, sizeof b, "GET %.*s HTTP/1.1\r\nHost: a\r\n\r\n", 27, t);
    EXPECT_L(&l, b, 0, 414);
    /* A long method counts towards the line too (llhttp refuses it first). */
    EXPECT_L(&l, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA / HTTP/1.1\r\nHost: a\r\n\r\n", 0, 414);
    /* Header field: name + value bytes. */
    EXPECT_L(&l, "GET / HTTP/1.1\r\nHost: a\r\nX: 12345678901234567890123\r\n\r\n", 1, 0);
    EXPECT_L(&l, "GET / HTTP/1.1\r\nHost: a\r\nX: 123456789012345678901234\r\n\r\n", 0, 431);
    EXPECT_L(&l, "GET / HTTP/1.1\r\nHost: a\r\nXXXXXXXXXXXXXXXXXXXXXXXXX: 1\r\n\r\n", 0, 431);
    /* Header count. */
    EXPECT_L(&l, "GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 1\r\nC: 1\r\n\r\n", 1, 0);
    EXPECT_L(&l, "GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 1\r\nC: 1\r\nD: 1\r\n\r\n", 0, 431);
    /* Body, declared: refused from the head, before any body byte. */
    EXPECT_L(&l, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 16\r\n\r\n0123456789abcdef", 1, 0);
    EXPECT_L(&l, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 17\r\n\r\n", 0, 413);
    EXPECT_L(&l, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 17\r\nExpect: 100-continue\r\n\r\n",
             0, 413);
    /* Body, chunked: refused from the chunk size that crosses the limit. */
    EXPECT_L(&l,
             "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
             "8\r\n01234567\r\n8\r\n01234567\r\n0\r\n\r\n",
             1, 0);
    EXPECT_L(&l,
             "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
             "8\r\n01234567\r\n9\r\n",
             0, 413);
    /* Chunk extensions. */
    EXPECT_L(&l,
             "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
             "1;abc=defgh\r\nx\r\n0\r\n\r\n",
             1, 0);
    EXPECT_L(&l,
             "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
             "1;abcd=defgh\r\nx\r\n0\r\n\r\n",
             0, 400);
    /* Trailers are bounded by the field size. */
    EXPECT_L(&l,
             "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
             "0\r\nX: 1234567890123456789012345\r\n\r\n",
             0, 431);
    /* A declared body larger than memory is not allocated up front. */
    loom__limits big = {8190, 8190, 128, (size_t)1 << 40, 4096};
    result r;
    static const char huge[] =
        "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 999999999999\r\n\r\nab";
    run(&big, huge, sizeof huge - 1, 0, &r);
    CHECK(r.error == 0 && r.nreq == 0 && r.more, "huge declared body waits for bytes");
    result_free(&r);
}

static void test_rejected(void)
{
    /* Host */
    EXPECT("GET / HTTP/1.1\r\n\r\n", 0, 400);
    EXPECT("GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", 0, 400);
    EXPECT("GET / HTTP/1.1\r\nHost: a, b\r\n\r\n", 0, 400);
    EXPECT("GET / HTTP/1.1\r\nHost: u@a\r\n\r\n", 0, 400);
    EXPECT("GET / HTTP/1.0\r\n\r\n", 1, 0);
    /* framing */
    EXPECT("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 0, 400);
    EXPECT("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nTransfer-Encoding: "
           "chunked\r\n\r\n0\r\n\r\n",
           0, 400);
    EXPECT("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: "
           "1\r\n\r\n0\r\n\r\n",
           0, 400);
    EXPECT("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", 0, 501);
    EXPECT("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", 0, 400);
    EXPECT("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", 0, 400);
    EXPECT("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: ,Chunked\r\n\r\n0\r\n\r\n", 1, 0);
    EXPECT("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\na", 0, 400);
    EXPECT("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 010\r\n\r\n", 0, 400);
    EXPECT("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n", 1, 0);
    /* request line */
    EXPECT("GET / HTTP/1.2\r\nHost: a\r\n\r\n", 0, 505);
    EXPECT("GET / HTTP/2.0\r\nHost: a\r\n\r\n", 0, 505);
    EXPECT("GET / HTTP/1\r\nHost: a\r\n\r\n", 0, 400);
    EXPECT("GET / http/1.1\r\nHost: a\r\n\r\n", 0, 400);
    EXPECT("GET /\r\n\r\n", 0, 400);
    EXPECT("GET  / HTTP/1.1\r\nHost: a\r\n\r\n", 0, 400);
    EXPECT("GET /  HTTP/1.1\r\nHost: a\r\n\r\n", 0, 400);
    EXPECT("GET * HTTP/1.1\r\nHost: a\r\n\r\n", 0, 400);
    EXPECT("OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", 1, 0);
    EXPECT("FOOBAR / HTTP/1.1\r\nHost: a\r\n\r\n", 0, 501);
    EXPECT("G=\":<>(e)\" / HTTP/1.1\r\nHost: a\r\n\r\n", 0, 400);
    EXPECT("CONNECT a:1 HTTP/1.1\r\nHost: a:1\r\n\r\n", 0, 501);
    /* header syntax */
    EXPECT("GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n", 0, 400);
    EXPECT("GET / HTTP/1.1\r\nHost: a\r\nX:\r\n b\r\n\r\n", 0, 400);
    EXPECT("GET / HTTP/1.1\r\nHost: a\r\n: x\r\n\r\n", 0, 400);
    EXPECT("GET / HTTP/1.1\r\n: x\r\nHost: a\r\n\r\n", 0, 400);
    EXPECT("GET / HTTP/1.1\r\nHost : a\r\n\r\n", 0, 400);
    EXPECT("GET / HTTP/1.1\r\nHost: a\r\nX: a\001b\r\n\r\n", 0, 400);
    EXPECT("GET / HTTP/1.1\r\nHost: a\r\nExpect: nope\r\n\r\n", 0, 417);
    /* bare LF and CR */
    EXPECT("GET / HTTP/1.1\nHost: a\r\n\r\n", 0, 400);
    EXPECT("GET / HTTP/1.1\r\nHost: a\n\r\n", 0, 400);
    EXPECT("GET / HTTP/1.1\r\nHost: a\r\n\n", 0, 400);
    EXPECT("\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", 0, 400);
    EXPECT("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\n", 0, 400);
    EXPECT("GET / HTTP/1.1\r\nHost: a\r\nX: \rx\r\n\r\n", 0, 400);
    EXPECT("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX: a\r\n\n", 0,
           400);
    EXPECT("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX: a\n\r\n", 0,
           400);
    EXPECT("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX: "
           "a\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
           2, 0);
    /* chunk syntax */
    EXPECT(
        "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0x5\r\nhello\r\n0\r\n\r\n",
        0, 400);
    EXPECT("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: "
           "chunked\r\n\r\nFFFFFFFFFFFFFFFFF\r\n",
           0, 400);
    EXPECT("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello!!\r\n", 0,
           400);
}

static void test_state(void)
{
    loom__parser p;
    loom__parser_init(&p, &defaults);
    size_t used;
    CHECK(!loom__parser_in_request(&p) && !loom__parser_in_body(&p), "fresh parser idle");
    static const char h[] = "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nExpect: "
                            "100-continue\r\n\r\nab";
    const char *start = NULL;
    int rc = loom__parser_feed(&p, h, 10, &used);
    CHECK(rc == LOOM__PARSE_MORE && used == 10, "partial head");
    CHECK(loom__parser_in_request(&p) && !loom__parser_in_body(&p), "in head");
    CHECK(loom__parser_pending(&p, &start) && start == h, "head pending from its first byte");
    rc = loom__parser_feed(&p, h + 10, sizeof h - 1 - 10, &used);
    CHECK(rc == LOOM__PARSE_MORE && used == sizeof h - 1 - 10, "body started");
    CHECK(loom__parser_in_body(&p) && p.req->expect_continue == 1, "in body, expect 100");
    CHECK(!loom__parser_pending(&p, &start), "body bytes are copied: nothing pending");
    /* An HTTP/1.0 client is sent no 100 Continue. */
    {
        static const char h10[] = "POST / HTTP/1.0\r\nContent-Length: 2\r\nExpect: "
                                  "100-continue\r\n\r\n";
        loom__parser q;
        loom__parser_init(&q, &defaults);
        rc = loom__parser_feed(&q, h10, sizeof h10 - 1, &used);
        CHECK(rc == LOOM__PARSE_MORE && q.req && q.req->expect_continue == 0,
              "Expect ignored in HTTP/1.0");
        loom__parser_free(&q);
    }
    rc = loom__parser_feed(&p, "cd", 2, &used);
    CHECK(rc == LOOM__PARSE_REQUEST && used == 2, "complete on its last byte");
    loom_req *r = loom__parser_take(&p);
    CHECK(r && r->body.len == 4 && memcmp(r->body.data, "abcd", 4) == 0, "body");
    loom__req_free(r);
    CHECK(!loom__parser_in_request(&p), "idle after take");
    /* Error state sticks; status and reason are reported. */
    rc = loom__parser_feed(&p, "GET / HTTP/1.1\r\n\r\n", 18, &used);
    const char *why = NULL;
    CHECK(rc == LOOM__PARSE_ERROR && loom__parser_error_status(&p, &why) == 400 && why,
          "missing host");
    rc = loom__parser_feed(&p, "GET / HTTP/1.1\r\nHost: a\r\n\r\n", 27, &used);
    CHECK(rc == LOOM__PARSE_ERROR, "sticky error");
    loom__parser_free(&p);
}

/* Pipelined requests in one buffer are parsed in linear time: each request
 * costs its own bytes, not a scan of everything behind it. */
static void test_pipelined_linear(void)
{
    static const char g[] = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";
    static const char post[] = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: "
                               "chunked\r\n\r\n1\r\n\n\r\n0\r\n\r\n";
    size_t n = 40000, gl = sizeof g - 1, pl = sizeof post - 1, len = 0;
    char *buf = malloc(n * pl);
    for (size_t i = 0; i < n; i++) {
        /* GETs, and a POST with a bare LF in its body at the very end. */
        const char *x = i == n - 1 ? post : g;
        size_t xl = i == n - 1 ? pl : gl;
        memcpy(buf + len, x, xl);
        len += xl;
    }
    loom__parser p;
    loom__parser_init(&p, &defaults);
    struct timespec t0, t1;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t0);
    size_t off = 0, got = 0;
    while (off < len) {
        size_t used = 0;
        int rc = loom__parser_feed(&p, buf + off, len - off, &used);
        off += used;
        if (rc != LOOM__PARSE_REQUEST) break;
        loom__req_free(loom__parser_take(&p));
        got++;
    }
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    CHECK(got == n, "pipelined: %zu of %zu requests", got, n);
    /* Linear takes milliseconds (tens under ASan); a rescan of the rest of the
     * buffer per request takes seconds. */
    CHECK(secs < 1.5, "pipelined parse took %.2fs", secs);
    loom__parser_free(&p);
    free(buf);
}

int main(void)
{
    test_pipelined_linear();
    test_simple_get();
    test_absolute_form_and_http10();
    test_bodies();
    test_pipelining();
    test_limits();
    test_rejected();
    test_state();
    return check_report();
}
