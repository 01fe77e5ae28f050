/* The client API against real servers: the aiohttp fixture (fixture_server.py),
 * its raw-bytes companion, and `loom serve`. Run by test_client.py:
 *
 *   client_api HTTP_PORT RAW_PORT LOOM_PORT
 *
 * Prints one line per check; exits 1 when any check failed. */
#include <loom/client.h>

#include "client/client_int.h" /* the DNS cache, seen from inside */
#include "client/url.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failures, checks;
static int http_port, raw_port, loom_port;

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        checks++;                                                                                  \
        if (!(cond)) {                                                                             \
            failures++;                                                                            \
            printf("FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);                                 \
            printf(__VA_ARGS__);                                                                   \
            printf("\n");                                                                          \
        }                                                                                          \
    } while (0)

static char *url(int port, const char *path)
{
    static char buf[8][256];
    static int i;
    i = (i + 1) % 8;
    snprintf(buf[i], sizeof buf[i], "http://127.0.0.1:%d%s", port, path);
    return buf[i];
}

static void on_done(loom_client_response *resp, void *ud)
{
    *(loom_client_response **)ud = resp;
}

/* Runs one request on client c to completion. */
static loom_client_response *run(uv_loop_t *loop, loom_client *c, const char *method, const char *u,
                                 const loom_client_opts *o)
{
    loom_client_response *resp = NULL;
    loom_client_request *r = loom_client_send(c, method, u, o, on_done, &resp);
    if (!r) return NULL;
    CHECK(resp == NULL, "callback ran before loom_client_send returned");
    uv_run(loop, UV_RUN_DEFAULT);
    return resp;
}

static int contains(const char *hay, const char *needle)
{
    return hay && strstr(hay, needle) != NULL;
}

/* Checks that `u` fails with `code` and that the message names the URL. */
static void expect_error(uv_loop_t *loop, loom_client *c, const char *u, const loom_client_opts *o,
                         int code, const char *url_in_msg)
{
    loom_client_response *r = run(loop, c, "GET", u, o);
    CHECK(r, "no response for %s", u);
    if (!r) return;
    int e = loom_client_response_error(r);
    const char *msg = loom_client_response_message(r);
    CHECK(e == code, "%s: got %d (%s), want %d (%s)", u, e, msg, code, loom_client_strerror(code));
    const char *want = url_in_msg ? url_in_msg : u;
    CHECK(contains(msg, want), "message '%s' does not name %s", msg ? msg : "(none)",
          want ? want : "(none)");
    CHECK(contains(msg, loom_client_strerror(code)), "message '%s' lacks the kind", msg);
    printf("ok   %-20s %s\n", loom_client_strerror(code), msg);
    loom_client_response_free(r);
}

static size_t chunks_seen;
static char streamed[256];

static int on_chunk(loom_client_response *resp, const char *data, size_t len, void *ud)
{
    (void)ud;
    CHECK(loom_client_response_status(resp) == 200, "status not known when streaming");
    size_t have = strlen(streamed);
    if (have + len < sizeof streamed) memcpy(streamed + have, data, len);
    streamed[have + len < sizeof streamed ? have + len : have] = 0;
    chunks_seen++;
    return 0;
}

static int stop_chunk(loom_client_response *resp, const char *data, size_t len, void *ud)
{
    (void)resp, (void)data, (void)len, (void)ud;
    return 1;
}

static json_t *json_of(loom_client_response *r)
{
    json_error_t e;
    json_t *j = loom_client_response_json(r, &e);
    CHECK(j, "not JSON: %s", e.text);
    return j;
}

static const char *jstr(json_t *j, const char *path1, const char *path2)
{
    json_t *v = json_object_get(j, path1);
    if (path2) v = json_object_get(v, path2);
    return json_string_value(v);
}

static void test_basics(uv_loop_t *loop)
{
    loom_client_header dh[] = {{"X-Default", "d"}, {"X-Over", "client"}};
    loom_client_config cfg = {.headers = dh, .nheaders = 2};
    loom_client *c = loom_client_new(loop, &cfg);

    loom_client_response *r = run(loop, c, "GET", url(http_port, "/text"), NULL);
    CHECK(r && !loom_client_response_error(r), "GET /text: %s", loom_client_response_message(r));
    CHECK(loom_client_response_status(r) == 200, "status %d", loom_client_response_status(r));
    CHECK(!strcmp(loom_client_response_reason(r), "OK"), "reason");
    CHECK(!strcmp(loom_client_response_body(r, NULL), "Hello from aiohttp"), "body");
    CHECK(contains(loom_client_response_header(r, "content-type"), "text/plain"), "header");
    CHECK(loom_client_response_header_count(r) >= 3, "header count");
    loom_client_response_free(r);

    /* loom's own server */
    r = run(loop, c, "GET", url(loom_port, "/"), NULL);
    CHECK(r && !strcmp(loom_client_response_body(r, NULL), "Hello, World!"), "loom serve body");
    loom_client_response_free(r);

    /* headers: default, per-request override, query params */
    loom_client_header h[] = {{"X-Over", "request"}, {"X-Extra", "e"}};
    loom_client_header p[] = {{"q", "a b&c"}, {"n", "1"}};
    loom_client_opts o = {.headers = h, .nheaders = 2, .params = p, .nparams = 2};
    r = run(loop, c, "GET", url(http_port, "/headers?x=1"), &o);
    json_t *j = json_of(r);
    CHECK(!strcmp(jstr(j, "X-Default", NULL), "d"), "default header");
    CHECK(!strcmp(jstr(j, "X-Over", NULL), "request"), "per-request header overrides");
    CHECK(!strcmp(jstr(j, "X-Extra", NULL), "e"), "per-request header");
    CHECK(contains(jstr(j, "Accept-Encoding", NULL), "gzip"), "Accept-Encoding");
    json_decref(j);
    loom_client_response_free(r);
    r = run(loop, c, "GET", url(http_port, "/echo?x=1"), &o);
    j = json_of(r);
    CHECK(jstr(j, "query", "q") && !strcmp(jstr(j, "query", "q"), "a b&c"), "param q");
    CHECK(jstr(j, "query", "x") && !strcmp(jstr(j, "query", "x"), "1"), "param x kept");
    json_decref(j);
    loom_client_response_free(r);

    /* bodies */
    loom_client_opts oj = {.json = "{\"key1\":\"value1\"}"};
    r = run(loop, c, "POST", url(http_port, "/echo"), &oj);
    j = json_of(r);
    CHECK(!strcmp(jstr(j, "method", NULL), "POST"), "method");
    CHECK(jstr(j, "json", "key1") && !strcmp(jstr(j, "json", "key1"), "value1"), "json body");
    json_decref(j);
    loom_client_response_free(r);
    loom_client_header form[] = {{"a", "1 2"}, {"b", "x&y=z"}};
    loom_client_opts of = {.form = form, .nform = 2};
    r = run(loop, c, "POST", url(http_port, "/echo"), &of);
    j = json_of(r);
    CHECK(jstr(j, "form", "b") && !strcmp(jstr(j, "form", "b"), "x&y=z"), "form body");
    json_decref(j);
    loom_client_response_free(r);
    loom_client_opts ot = {.text = "plain text"};
    r = run(loop, c, "PUT", url(http_port, "/echo"), &ot);
    j = json_of(r);
    CHECK(!strcmp(jstr(j, "method", NULL), "PUT") && !strcmp(jstr(j, "body", NULL), "plain text"),
          "PUT text");
    CHECK(!strcmp(jstr(j, "content_type", NULL), "text/plain"), "text content type");
    json_decref(j);
    loom_client_response_free(r);
    loom_client_opts ob = {.body = "\x01\x02", .body_len = 2};
    r = run(loop, c, "PATCH", url(http_port, "/echo"), &ob);
    j = json_of(r);
    CHECK(!strcmp(jstr(j, "method", NULL), "PATCH"), "PATCH");
    CHECK(!strcmp(jstr(j, "content_type", NULL), "application/octet-stream"), "bytes type");
    json_decref(j);
    loom_client_response_free(r);
    const char *methods[] = {"DELETE", "OPTIONS"};
    for (int i = 0; i < 2; i++) {
        r = run(loop, c, methods[i], url(http_port, "/echo"), NULL);
        j = json_of(r);
        CHECK(jstr(j, "method", NULL) && !strcmp(jstr(j, "method", NULL), methods[i]), "%s",
              methods[i]);
        json_decref(j);
        loom_client_response_free(r);
    }
    r = run(loop, c, "HEAD", url(http_port, "/text"), NULL);
    size_t len = 99;
    loom_client_response_body(r, &len);
    CHECK(loom_client_response_status(r) == 200 && len == 0, "HEAD: %d %zu",
          loom_client_response_status(r), len);
    loom_client_response_free(r);
    /* the pool still works after HEAD */
    r = run(loop, c, "GET", url(http_port, "/text"), NULL);
    CHECK(!loom_client_response_error(r), "GET after HEAD: %s", loom_client_response_message(r));
    loom_client_response_free(r);

    /* chunked, buffered and streamed */
    r = run(loop, c, "GET", url(http_port, "/chunked"), NULL);
    CHECK(!strcmp(loom_client_response_body(r, NULL), "chunk0;chunk1;chunk2;chunk3;chunk4;"),
          "chunked body '%s'", loom_client_response_body(r, NULL));
    loom_client_response_free(r);
    loom_client_opts os = {.on_chunk = on_chunk};
    r = run(loop, c, "GET", url(http_port, "/chunked"), &os);
    CHECK(!loom_client_response_error(r), "%s", loom_client_response_message(r));
    CHECK(!strcmp(streamed, "chunk0;chunk1;chunk2;chunk3;chunk4;"), "streamed '%s'", streamed);
    CHECK(chunks_seen >= 1, "chunks %zu", chunks_seen);
    loom_client_response_body(r, &len);
    CHECK(len == 0, "streamed body also buffered");
    loom_client_response_free(r);
    loom_client_opts ostop = {.on_chunk = stop_chunk};
    r = run(loop, c, "GET", url(http_port, "/chunked"), &ostop);
    CHECK(loom_client_response_error(r) == LOOM_CLIENT_E_CANCELLED, "stop from chunk cb");
    loom_client_response_free(r);

    /* compressed */
    const char *enc[] = {"/gzip", "/deflate", "/rawdeflate"};
    for (int i = 0; i < 3; i++) {
        r = run(loop, c, "GET", url(http_port, enc[i]), NULL);
        const char *b = loom_client_response_body(r, &len);
        CHECK(!loom_client_response_error(r) && len > 60000 &&
                  !strncmp(b, "line 0 of the compressed body\n", 30) &&
                  contains(b, "line 1999 of the compressed body\n"),
              "%s: %s len %zu", enc[i], loom_client_response_message(r), len);
        loom_client_response_free(r);
    }
    /* redirects */
    r = run(loop, c, "GET", url(http_port, "/redirect/3"), NULL);
    CHECK(!loom_client_response_error(r) &&
              !strcmp(loom_client_response_body(r, NULL), "redirects done"),
          "redirect chain");
    CHECK(loom_client_response_history_count(r) == 3, "history %zu",
          loom_client_response_history_count(r));
    CHECK(loom_client_response_history_status(r, 0) == 302, "history status");
    CHECK(contains(loom_client_response_history_url(r, 1), "/redirect/2"), "history url");
    CHECK(contains(loom_client_response_url(r), "/redirect/0"), "final url %s",
          loom_client_response_url(r));
    CHECK(contains(loom_client_response_request_url(r), "/redirect/3"), "request url");
    loom_client_response_free(r);
    loom_client_opts onr = {.max_redirects = -1};
    r = run(loop, c, "GET", url(http_port, "/redirect/3"), &onr);
    CHECK(loom_client_response_status(r) == 302 && !loom_client_response_error(r), "no follow");
    loom_client_response_free(r);
    r = run(loop, c, "POST", url(http_port, "/redirect303"), &oj);
    j = json_of(r);
    CHECK(jstr(j, "method", NULL) && !strcmp(jstr(j, "method", NULL), "GET"), "303 -> GET");
    json_decref(j);
    loom_client_response_free(r);
    /* credentials: kept on the same origin, dropped across origins */
    loom_client_header cred[] = {{"Authorization", "Bearer secret"}, {"Cookie", "s=1"}};
    loom_client_opts oc = {.headers = cred, .nheaders = 2};
    r = run(loop, c, "GET", url(http_port, "/same"), &oc);
    j = json_of(r);
    CHECK(jstr(j, "Authorization", NULL) && jstr(j, "Cookie", NULL), "same-origin kept");
    json_decref(j);
    loom_client_response_free(r);
    r = run(loop, c, "GET", url(http_port, "/cross"), &oc);
    CHECK(!loom_client_response_error(r), "cross: %s", loom_client_response_message(r));
    CHECK(contains(loom_client_response_url(r), "http://localhost:"), "went to localhost");
    j = json_of(r);
    CHECK(!jstr(j, "Authorization", NULL) && !jstr(j, "Cookie", NULL),
          "Authorization/Cookie dropped across origins");
    CHECK(jstr(j, "X-Default", NULL) != NULL, "other headers kept");
    json_decref(j);
    loom_client_response_free(r);

    /* statuses: not errors unless raise_for_status */
    r = run(loop, c, "GET", url(http_port, "/status/404"), NULL);
    CHECK(!loom_client_response_error(r) && loom_client_response_status(r) == 404, "404 plain");
    loom_client_response_free(r);
    loom_client_opts orfs = {.raise_for_status = 1};
    expect_error(loop, c, url(http_port, "/status/404"), &orfs, LOOM_CLIENT_E_STATUS, NULL);
    expect_error(loop, c, url(http_port, "/status/500"), &orfs, LOOM_CLIENT_E_STATUS, NULL);
    r = run(loop, c, "GET", url(http_port, "/status/500"), &orfs);
    CHECK(loom_client_response_status(r) == 500 &&
              !strcmp(loom_client_response_reason(r), "Internal Server Error") &&
              contains(loom_client_response_message(r), "500 Internal Server Error"),
          "status error keeps the response");
    loom_client_response_free(r);

    /* many at once over one pool (asyncio.gather) */
    enum { N = 200 };
    loom_client_response *rs[N] = {0};
    for (int i = 0; i < N; i++)
        loom_client_send(c, "GET", url(i % 2 ? http_port : loom_port, i % 2 ? "/text" : "/"), NULL,
                         on_done, &rs[i]);
    CHECK(loom_client_pending(c) == N, "pending %zu", loom_client_pending(c));
    uv_run(loop, UV_RUN_DEFAULT);
    int ok = 0;
    for (int i = 0; i < N; i++) {
        ok += rs[i] && !loom_client_response_error(rs[i]);
        loom_client_response_free(rs[i]);
    }
    CHECK(ok == N, "gather: %d of %d", ok, N);
    loom_client_close(c);
    uv_run(loop, UV_RUN_DEFAULT);
    printf("ok   basics\n");
}

static void test_url(void)
{
    static const struct {
        const char *base, *ref, *want;
    } cases[] = {
        {"http://h/a/b/c", "../d", "http://h/a/d"},
        {"http://h/a/b/c", "./x", "http://h/a/b/x"},
        {"http://h/a/b/c", "x?y=1", "http://h/a/b/x?y=1"},
        {"http://h/a/b/c", "/../x", "http://h/x"},
        {"http://h/a/b/c", "../../../../x", "http://h/x"},
        {"http://h/a/b/c", "/p/./q/../r/", "http://h/p/r/"},
        {"http://h/a/b/c?q=1", "?z=2", "http://h/a/b/c?z=2"},
        {"http://h:8080/a", "//other:81/z#frag", "http://other:81/z"},
        {"http://h/a", "HTTP://Upper.Example:80/x", "http://upper.example/x"},
        {"http://h/a", "http://[::1]:8080/v6", "http://[::1]:8080/v6"},
        {"http://h/a", "/path with space", "http://h/path%20with%20space"},
        {"http://h/a", "/a/..", "http://h/"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        loom__url b, out;
        char err[128];
        CHECK(loom__url_parse(cases[i].base, &b, err, sizeof err) == 0, "base %s", cases[i].base);
        int rc = loom__url_resolve(&b, cases[i].ref, &out, err, sizeof err);
        CHECK(rc == 0 && !strcmp(out.full, cases[i].want), "%s + %s = %s, want %s", cases[i].base,
              cases[i].ref, rc == 0 ? out.full : err, cases[i].want);
        if (rc == 0) loom__url_free(&out);
        loom__url_free(&b);
    }
    const char *bad[] = {"",
                         "http://",
                         "http://:80/",
                         "http://h:0/",
                         "http://h:65536/",
                         "http://u@h/",
                         "ftp://h/",
                         "https://h:99999/",
                         "http://h h/",
                         "http://[::1/",
                         "mailto:x"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        loom__url u;
        char err[128];
        CHECK(loom__url_parse(bad[i], &u, err, sizeof err) == -1, "'%s' accepted", bad[i]);
    }
    printf("ok   url\n");
}

/* A pooled connection the server closed right after its response: the next
 * request, sent from the first one's callback, grabs it before the EOF is
 * read, and must be retried on a fresh connection, invisibly. */
static loom_client_response *second;
static loom_client *retry_client;

static void send_second(loom_client_response *resp, void *ud)
{
    CHECK(!loom_client_response_error(resp), "first: %s", loom_client_response_message(resp));
    loom_client_response_free(resp);
    loom_client_send(retry_client, "GET", (const char *)ud, NULL, on_done, &second);
}

static void test_stale_retry(uv_loop_t *loop)
{
    retry_client = loom_client_new(loop, NULL);
    for (int i = 0; i < 5; i++) {
        second = NULL;
        char *u = url(raw_port, "/interim");
        loom_client_send(retry_client, "GET", u, NULL, send_second, u);
        uv_run(loop, UV_RUN_DEFAULT);
        CHECK(second && !loom_client_response_error(second) &&
                  !strcmp(loom_client_response_body(second, NULL), "ok"),
              "second request on a closed pooled connection: %s",
              loom_client_response_message(second));
        loom_client_response_free(second);
    }
    loom_client_close(retry_client);
    uv_run(loop, UV_RUN_DEFAULT);
    printf("ok   stale connection retry\n");
}

/* Keep-alive reuse and the per-host limit, seen from the server: /peer
 * answers with the client's port. */
static void test_pool(uv_loop_t *loop)
{
    loom_client *c = loom_client_new(loop, NULL);
    loom_client_response *a = run(loop, c, "GET", url(http_port, "/peer"), NULL);
    loom_client_response *b = run(loop, c, "GET", url(http_port, "/peer"), NULL);
    CHECK(!strcmp(loom_client_response_body(a, NULL), loom_client_response_body(b, NULL)),
          "keep-alive: ports %s and %s", loom_client_response_body(a, NULL),
          loom_client_response_body(b, NULL));
    loom_client_response_free(a);
    loom_client_response_free(b);
    loom_client_close(c);
    uv_run(loop, UV_RUN_DEFAULT);

    loom_client_config cfg = {.limit_per_host = 2};
    c = loom_client_new(loop, &cfg);
    enum { N = 10 };
    loom_client_response *rs[N] = {0};
    for (int i = 0; i < N; i++)
        loom_client_send(c, "GET", url(http_port, "/peer?d=0.05"), NULL, on_done, &rs[i]);
    uv_run(loop, UV_RUN_DEFAULT);
    char ports[N][16];
    int distinct = 0, ok = 0;
    for (int i = 0; i < N; i++) {
        ok += !loom_client_response_error(rs[i]);
        snprintf(ports[i], sizeof ports[i], "%s", loom_client_response_body(rs[i], NULL));
        int seen = 0;
        for (int k = 0; k < i; k++) seen |= !strcmp(ports[k], ports[i]);
        distinct += !seen;
        loom_client_response_free(rs[i]);
    }
    CHECK(ok == N && distinct == 2, "limit_per_host 2: %d ok, %d connections", ok, distinct);
    loom_client_close(c);
    uv_run(loop, UV_RUN_DEFAULT);

    loom_client_config cfg1 = {.limit = 3};
    c = loom_client_new(loop, &cfg1);
    for (int i = 0; i < N; i++)
        loom_client_send(c, "GET", url(i % 2 ? http_port : loom_port, i % 2 ? "/peer?d=0.05" : "/"),
                         NULL, on_done, &rs[i]);
    uv_run(loop, UV_RUN_DEFAULT);
    ok = 0;
    for (int i = 0; i < N; i++) {
        ok += !loom_client_response_error(rs[i]);
        loom_client_response_free(rs[i]);
    }
    CHECK(ok == N, "limit 3 over two hosts: %d ok", ok);
    loom_client_close(c);
    uv_run(loop, UV_RUN_DEFAULT);
    /* the DNS cache: one entry per host and port, failures not kept */
    c = loom_client_new(loop, NULL);
    char lu[64];
    snprintf(lu, sizeof lu, "http://localhost:%d/text", http_port);
    for (int i = 0; i < 3; i++) {
        loom_client_response *x = run(loop, c, "GET", lu, NULL);
        CHECK(!loom_client_response_error(x), "localhost: %s", loom_client_response_message(x));
        loom_client_response_free(x);
    }
    CHECK(c->ndns == 1, "DNS cache entries: %zu", c->ndns);
    /* a label over 63 bytes: refused by the resolver without a query */
    char longhost[128] = "http://";
    memset(longhost + 7, 'c', 70);
    strcpy(longhost + 77, ".invalid/");
    loom_client_response *x = run(loop, c, "GET", longhost, NULL);
    CHECK(loom_client_response_error(x) == LOOM_CLIENT_E_DNS, "dns failure");
    loom_client_response_free(x);
    CHECK(c->ndns == 1, "a failed lookup is not cached: %zu", c->ndns);
    loom_client_close(c);
    uv_run(loop, UV_RUN_DEFAULT);
    loom_client_config nocache = {.dns_ttl = -1};
    c = loom_client_new(loop, &nocache);
    x = run(loop, c, "GET", lu, NULL);
    CHECK(!loom_client_response_error(x) && c->ndns == 0, "dns_ttl < 0: %zu entries", c->ndns);
    loom_client_response_free(x);
    loom_client_close(c);
    uv_run(loop, UV_RUN_DEFAULT);
    for (int code = 0; code >= -16; code--)
        CHECK(strcmp(loom_client_strerror(code), "unknown error") != 0, "no name for %d", code);
    printf("ok   pool\n");
}

static void test_errors(uv_loop_t *loop)
{
    loom_client *c = loom_client_new(loop, NULL);
    expect_error(loop, c, "ftp://127.0.0.1/", NULL, LOOM_CLIENT_E_INVALID_URL, NULL);
    expect_error(loop, c, "http://127.0.0.1:99999/", NULL, LOOM_CLIENT_E_INVALID_URL, NULL);
    expect_error(loop, c, "not a url", NULL, LOOM_CLIENT_E_INVALID_URL, NULL);
    /* a label over 63 bytes: the resolver refuses it without sending a query */
    char host[128];
    memset(host, 'a', 70);
    strcpy(host + 70, ".invalid");
    char u[160];
    snprintf(u, sizeof u, "http://%s/", host);
    expect_error(loop, c, u, NULL, LOOM_CLIENT_E_DNS, NULL);
    /* a port nobody listens on: the fixture's raw port + nothing; use port 1 */
    expect_error(loop, c, "http://127.0.0.1:1/", NULL, LOOM_CLIENT_E_CONNECTION_REFUSED, NULL);
    expect_error(loop, c, url(raw_port, "/drop"), NULL, LOOM_CLIENT_E_SERVER_DISCONNECTED, NULL);
    expect_error(loop, c, url(raw_port, "/halfhead"), NULL, LOOM_CLIENT_E_SERVER_DISCONNECTED,
                 NULL);
    expect_error(loop, c, url(raw_port, "/truncated"), NULL, LOOM_CLIENT_E_PAYLOAD, NULL);
    expect_error(loop, c, url(raw_port, "/badchunk"), NULL, LOOM_CLIENT_E_PAYLOAD, NULL);
    expect_error(loop, c, url(raw_port, "/cutchunk"), NULL, LOOM_CLIENT_E_PAYLOAD, NULL);
    expect_error(loop, c, url(raw_port, "/badgzip"), NULL, LOOM_CLIENT_E_PAYLOAD, NULL);
    expect_error(loop, c, url(raw_port, "/cutgzip"), NULL, LOOM_CLIENT_E_PAYLOAD, NULL);
    expect_error(loop, c, url(raw_port, "/garbage"), NULL, LOOM_CLIENT_E_BAD_RESPONSE, NULL);
    expect_error(loop, c, url(raw_port, "/hugeheader"), NULL, LOOM_CLIENT_E_BAD_RESPONSE, NULL);
    expect_error(loop, c, url(raw_port, "/manyheaders"), NULL, LOOM_CLIENT_E_BAD_RESPONSE, NULL);
    expect_error(loop, c, url(http_port, "/redirect/12"), NULL, LOOM_CLIENT_E_TOO_MANY_REDIRECTS,
                 NULL);
    loom_client_opts ot = {.total_timeout = 0.3};
    expect_error(loop, c, url(http_port, "/slow-headers?d=2"), &ot, LOOM_CLIENT_E_TOTAL_TIMEOUT,
                 NULL);
    loom_client_opts orr = {.read_timeout = 0.3};
    expect_error(loop, c, url(http_port, "/slow-body?d=2"), &orr, LOOM_CLIENT_E_READ_TIMEOUT, NULL);
    expect_error(loop, c, url(http_port, "/slow-headers?d=2"), &orr, LOOM_CLIENT_E_READ_TIMEOUT,
                 NULL);
    CHECK(loom_client_is_timeout(LOOM_CLIENT_E_TOTAL_TIMEOUT) &&
              loom_client_is_timeout(LOOM_CLIENT_E_READ_TIMEOUT) &&
              !loom_client_is_timeout(LOOM_CLIENT_E_PAYLOAD),
          "is_timeout");
    CHECK(loom_client_is_connection_error(LOOM_CLIENT_E_CONNECTION_REFUSED) &&
              loom_client_is_connection_error(LOOM_CLIENT_E_SERVER_DISCONNECTED) &&
              !loom_client_is_connection_error(LOOM_CLIENT_E_STATUS),
          "is_connection_error");
    CHECK(loom_client_is_payload_error(LOOM_CLIENT_E_PAYLOAD), "is_payload_error");

    /* body-until-close and an interim 100 response are fine */
    loom_client_response *r = run(loop, c, "GET", url(raw_port, "/eofbody"), NULL);
    CHECK(!strcmp(loom_client_response_body(r, NULL), "body until close"), "eof body");
    loom_client_response_free(r);
    r = run(loop, c, "GET", url(raw_port, "/interim"), NULL);
    CHECK(loom_client_response_status(r) == 200 &&
              !strcmp(loom_client_response_body(r, NULL), "ok"),
          "100 then 200");
    loom_client_response_free(r);
    loom_client_close(c);
    uv_run(loop, UV_RUN_DEFAULT);

    /* the caps */
    loom_client_config small = {.max_body_size = 1 << 20};
    c = loom_client_new(loop, &small);
    expect_error(loop, c, url(http_port, "/bomb"), NULL, LOOM_CLIENT_E_DECODED_TOO_LARGE, NULL);
    expect_error(loop, c, url(http_port, "/big?n=2000000"), NULL, LOOM_CLIENT_E_TOO_LARGE, NULL);
    r = run(loop, c, "GET", url(http_port, "/big?n=1000000"), NULL);
    CHECK(!loom_client_response_error(r), "under the cap: %s", loom_client_response_message(r));
    loom_client_response_free(r);
    loom_client_close(c);
    uv_run(loop, UV_RUN_DEFAULT);

    /* connect timeout: with one connection, the second request waits for the
     * pool longer than its connect timeout (aiohttp counts that wait too) */
    loom_client_config one = {.limit = 1};
    c = loom_client_new(loop, &one);
    loom_client_response *slow = NULL, *waiting = NULL;
    loom_client_send(c, "GET", url(http_port, "/slow-headers?d=1"), NULL, on_done, &slow);
    loom_client_opts oc = {.connect_timeout = 0.2};
    loom_client_send(c, "GET", url(http_port, "/text"), &oc, on_done, &waiting);
    uv_run(loop, UV_RUN_DEFAULT);
    CHECK(loom_client_response_error(waiting) == LOOM_CLIENT_E_CONNECT_TIMEOUT,
          "connect timeout: %s", loom_client_response_message(waiting));
    CHECK(contains(loom_client_response_message(waiting), "/text"), "names the URL");
    printf("ok   %-20s %s\n", "connect timeout", loom_client_response_message(waiting));
    CHECK(!loom_client_response_error(slow), "the slow one finished");
    loom_client_response_free(slow);
    loom_client_response_free(waiting);
    loom_client_close(c);
    uv_run(loop, UV_RUN_DEFAULT);
}

static int fired;
static void must_not_fire(loom_client_response *resp, void *ud)
{
    (void)ud;
    fired++;
    loom_client_response_free(resp);
}

static void on_cancel_timer(uv_timer_t *t)
{
    loom_client_cancel(t->data);
    uv_close((uv_handle_t *)t, NULL);
}

static void test_cancel(uv_loop_t *loop)
{
    loom_client *c = loom_client_new(loop, NULL);
    /* at once */
    loom_client_request *r =
        loom_client_send(c, "GET", url(http_port, "/text"), NULL, must_not_fire, NULL);
    loom_client_cancel(r);
    /* while waiting for the response head */
    r = loom_client_send(c, "GET", url(http_port, "/slow-headers?d=1"), NULL, must_not_fire, NULL);
    uv_timer_t t;
    uv_timer_init(loop, &t);
    t.data = r;
    uv_timer_start(&t, on_cancel_timer, 100, 0);
    uv_run(loop, UV_RUN_DEFAULT);
    CHECK(fired == 0, "a cancelled request's callback ran");
    CHECK(loom_client_pending(c) == 0, "pending after cancel");
    /* the pool still works */
    loom_client_response *resp = run(loop, c, "GET", url(http_port, "/text"), NULL);
    CHECK(!loom_client_response_error(resp), "after cancel: %s",
          loom_client_response_message(resp));
    loom_client_response_free(resp);
    /* close with requests in flight: they complete with CANCELLED, during the close */
    loom_client_response *a = NULL, *b = NULL;
    loom_client_send(c, "GET", url(http_port, "/slow-headers?d=1"), NULL, on_done, &a);
    loom_client_send(c, "GET", url(http_port, "/text"), NULL, on_done, &b);
    uv_run(loop, UV_RUN_NOWAIT);
    loom_client_close(c);
    CHECK(a && b, "close completes the pending requests");
    CHECK(loom_client_response_error(a) == LOOM_CLIENT_E_CANCELLED, "cancelled by close");
    loom_client_response_free(a);
    loom_client_response_free(b);
    uv_run(loop, UV_RUN_DEFAULT);
    printf("ok   cancel\n");
}

/* Closing the client from inside callbacks. */
static loom_client *closing_client;
static int close_cb_runs, cancelled_runs;

static void close_in_done(loom_client_response *resp, void *ud)
{
    (void)ud;
    close_cb_runs++;
    if (loom_client_response_error(resp) == LOOM_CLIENT_E_CANCELLED) cancelled_runs++;
    loom_client_response_free(resp);
    if (closing_client) {
        loom_client *c = closing_client;
        closing_client = NULL;
        loom_client_close(c);
    }
}

static int close_in_chunk(loom_client_response *resp, const char *d, size_t n, void *ud)
{
    (void)resp, (void)d, (void)n, (void)ud;
    if (closing_client) {
        loom_client *c = closing_client;
        closing_client = NULL;
        loom_client_close(c);
    }
    return 0;
}

static void test_reentrancy(uv_loop_t *loop)
{
    closing_client = loom_client_new(loop, NULL);
    loom_client_send(closing_client, "GET", url(http_port, "/text"), NULL, close_in_done, NULL);
    loom_client_send(closing_client, "GET", url(http_port, "/slow-headers?d=1"), NULL,
                     close_in_done, NULL);
    loom_client_send(closing_client, "GET", url(http_port, "/slow-body?d=1"), NULL, close_in_done,
                     NULL);
    uv_run(loop, UV_RUN_DEFAULT);
    CHECK(close_cb_runs == 3 && cancelled_runs == 2, "close in callback: %d runs, %d cancelled",
          close_cb_runs, cancelled_runs);
    close_cb_runs = cancelled_runs = 0;
    closing_client = loom_client_new(loop, NULL);
    loom_client_opts o = {.on_chunk = close_in_chunk};
    loom_client_send(closing_client, "GET", url(http_port, "/chunked"), &o, close_in_done, NULL);
    loom_client_send(closing_client, "GET", url(http_port, "/slow-headers?d=1"), NULL,
                     close_in_done, NULL);
    uv_run(loop, UV_RUN_DEFAULT);
    CHECK(close_cb_runs == 2 && cancelled_runs == 2,
          "close in chunk callback: %d runs, %d cancelled", close_cb_runs, cancelled_runs);
    printf("ok   close from callbacks\n");
}

static void test_sync(void)
{
    loom_client_response *r;
    int e = loom_client_fetch_sync("GET", url(loom_port, "/"), NULL, NULL, &r);
    CHECK(e == 0 && !strcmp(loom_client_response_body(r, NULL), "Hello, World!"), "sync: %s",
          loom_client_response_message(r));
    loom_client_response_free(r);
    e = loom_client_fetch_sync("GET", "http://127.0.0.1:1/", NULL, NULL, &r);
    CHECK(e == LOOM_CLIENT_E_CONNECTION_REFUSED, "sync refused");
    loom_client_response_free(r);
    e = loom_client_fetch_sync("GET", "http//x", NULL, NULL, &r);
    CHECK(e == LOOM_CLIENT_E_INVALID_URL && contains(loom_client_response_message(r), "http//x"),
          "sync invalid URL");
    loom_client_response_free(r);
    e = loom_client_fetch_sync("GE T", url(loom_port, "/"), NULL, NULL, &r);
    CHECK(e == LOOM_CLIENT_E_INVALID_ARGUMENT, "bad method: %d", e);
    loom_client_response_free(r);
    loom_client_header inj[] = {{"X-A", "1\r\nX-Injected: 1"}};
    loom_client_opts o = {.headers = inj, .nheaders = 1};
    e = loom_client_fetch_sync("GET", url(loom_port, "/"), &o, NULL, &r);
    CHECK(e == LOOM_CLIENT_E_INVALID_ARGUMENT && contains(loom_client_response_message(r), "/"),
          "header injection refused: %d", e);
    loom_client_response_free(r);
    printf("ok   sync\n");
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: %s HTTP_PORT RAW_PORT LOOM_PORT\n", argv[0]);
        return 2;
    }
    http_port = atoi(argv[1]);
    raw_port = atoi(argv[2]);
    loom_port = atoi(argv[3]);
    uv_loop_t loop;
    uv_loop_init(&loop);
    test_url();
    test_basics(&loop);
    test_pool(&loop);
    test_stale_retry(&loop);
    test_errors(&loop);
    test_cancel(&loop);
    test_reentrancy(&loop);
    test_sync();
    int rc = uv_loop_close(&loop);
    CHECK(rc == 0, "loop has handles left: %s", uv_strerror(rc));
    printf("%d checks, %d failed\n", checks, failures);
    return failures ? 1 : 0;
}
