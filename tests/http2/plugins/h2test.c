/* h2test: handlers for the HTTP/2 tests (tests/http2), written as any
 * plugin is: nothing in here knows which protocol carries the request.
 *
 *   GET  /h2/slow?ms=N    answers after N ms; ignores its abort (work that
 *                         cannot stop early, for the Rapid Reset defence)
 *   GET  /h2/wait         never answers by itself: its abort stops its timer
 *   GET  /h2/fetch?url=U  answers with what a fetch of U got; a fetch of the
 *                         request, cancelled by the host on abort
 *   GET  /h2/stream?n=&size=&ms=[&type=text]  streams n pieces of size bytes,
 *                         ms apart (octet-stream, or text/plain)
 *   GET  /h2/big?size=N   a buffered body of N bytes (a known pattern)
 *   POST /h2/echo         the body back, with what the handler saw
 *   GET  /h2/info         method, path, query, version, Host, Cookie as JSON
 *   GET  /h2/headers      response headers HTTP/2 must not carry, and mixed case
 *   GET  /h2/stats        the counters below, as JSON
 */
#include <loom/loom.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static loom_plugin *me;
static struct {
    long slow_started, slow_finished, running;
    long wait_started, wait_aborted, timers_cancelled, timers_fired;
    long fetch_started, fetch_done, fetch_aborted;
    long stream_started, stream_aborted;
} st;

static uint64_t qnum(loom_req *req, const char *name, uint64_t def)
{
    const char *v = loom_req_query(req, name, 0, NULL);
    return v ? strtoull(v, NULL, 10) : def;
}

/* ---- /h2/slow ---- */

static void slow_done(loom_timer *t, void *ud)
{
    (void)t;
    loom_req *req = ud;
    st.slow_finished++;
    st.running--;
    loom_resp_text(req, 200, "slow done");
}

static int32_t h_slow(loom_req *req, void *ud)
{
    (void)ud;
    st.slow_started++;
    st.running++;
    if (!loom_timer_start(me, qnum(req, "ms", 1000), 0, slow_done, req)) return LOOM_ENOMEM;
    return LOOM_PENDING;
}

/* ---- /h2/wait ---- */

typedef struct {
    loom_timer *t;
} waiter;

static void wait_fired(loom_timer *t, void *ud)
{
    (void)t;
    loom_req *req = ud;
    st.timers_fired++;
    loom_resp_text(req, 200, "waited");
}

static void wait_abort(loom_req *req, void *ud)
{
    waiter *w = ud;
    st.wait_aborted++;
    if (w->t) {
        loom_timer_stop(w->t);
        w->t = NULL;
        st.timers_cancelled++;
    }
    loom_respond(req); /* releases it */
}

static int32_t h_wait(loom_req *req, void *ud)
{
    (void)ud;
    waiter *w = loom_req_alloc(req, sizeof *w);
    if (!w) return LOOM_ENOMEM;
    st.wait_started++;
    w->t = loom_timer_start(me, 30000, 0, wait_fired, req);
    loom_req_on_abort(req, wait_abort, w);
    return LOOM_PENDING;
}

/* ---- /h2/fetch ---- */

static void fetch_done(const loom_fetch_result *res, void *ud)
{
    loom_req *req = ud;
    size_t len = 0;
    const void *body = loom_fetch_body(res, &len);
    st.fetch_done++;
    loom_resp_bytes(req, loom_fetch_error(res) ? 502 : 200, "text/plain", body, len);
}

static void fetch_abort(loom_req *req, void *ud)
{
    (void)ud;
    st.fetch_aborted++;
    loom_respond(req);
}

static int32_t h_fetch(loom_req *req, void *ud)
{
    (void)ud;
    loom_fetch_opts o;
    memset(&o, 0, sizeof o);
    o.size = sizeof o;
    o.url = loom_req_query(req, "url", 0, NULL);
    if (!o.url) return loom_resp_text(req, 400, "url?");
    loom_req_on_abort(req, fetch_abort, NULL);
    if (!loom_fetch_start(me, req, &o, fetch_done, req)) return loom_resp_text(req, 500, "fetch");
    st.fetch_started++;
    return LOOM_PENDING;
}

/* ---- /h2/stream ---- */

typedef struct {
    loom_req *req;
    loom_timer *t;
    uint64_t n, size;
    char *piece;
} streamer;

static void stream_tick(loom_timer *t, void *ud)
{
    (void)t;
    streamer *s = ud;
    if (loom_resp_stream_write(s->req, s->piece, s->size) != LOOM_OK || --s->n == 0) {
        loom_timer_stop(s->t);
        loom_resp_stream_end(s->req);
    }
}

static void stream_abort(loom_req *req, void *ud)
{
    (void)req;
    streamer *s = ud;
    st.stream_aborted++;
    loom_timer_stop(s->t);
    loom_resp_stream_end(s->req);
}

static int32_t h_stream(loom_req *req, void *ud)
{
    (void)ud;
    streamer *s = loom_req_alloc(req, sizeof *s);
    if (!s) return LOOM_ENOMEM;
    s->req = req;
    s->n = qnum(req, "n", 3);
    s->size = qnum(req, "size", 10);
    uint64_t ms = qnum(req, "ms", 20);
    if (s->n == 0 || s->size == 0 || s->size > (1u << 20)) return loom_resp_text(req, 400, "n?");
    s->piece = loom_req_alloc(req, s->size);
    if (!s->piece) return LOOM_ENOMEM;
    for (uint64_t i = 0; i < s->size; i++) s->piece[i] = (char)('a' + i % 26);
    st.stream_started++;
    const char *type = loom_req_query(req, "type", 0, NULL);
    loom_resp_header_set(req, "Content-Type",
                         type && strcmp(type, "text") == 0 ? "text/plain"
                                                           : "application/octet-stream");
    loom_resp_stream_start(req);
    loom_req_on_abort(req, stream_abort, s);
    s->t = loom_timer_start(me, ms, ms, stream_tick, s);
    return LOOM_PENDING;
}

/* ---- buffered ---- */

static int32_t h_big(loom_req *req, void *ud)
{
    (void)ud;
    uint64_t n = qnum(req, "size", 100000);
    if (n > (64u << 20)) return loom_resp_text(req, 400, "too big");
    char *b = malloc(n ? n : 1);
    if (!b) return LOOM_ENOMEM;
    for (uint64_t i = 0; i < n; i++) b[i] = (char)('0' + (i * 7 + i / 1000) % 10);
    int32_t rc = loom_resp_bytes(req, 200, "application/octet-stream", b, n);
    free(b);
    return rc;
}

static void put_json_str(char *out, size_t cap, size_t *n, const char *key, const char *v)
{
    *n += (size_t)snprintf(out + *n, cap - *n, "%s\"%s\":", *n > 1 ? "," : "", key);
    if (!v) {
        *n += (size_t)snprintf(out + *n, cap - *n, "null");
        return;
    }
    *n += (size_t)snprintf(out + *n, cap - *n, "\"");
    for (; *v && *n + 8 < cap; v++) {
        if (*v == '"' || *v == '\\')
            *n += (size_t)snprintf(out + *n, cap - *n, "\\%c", *v);
        else if ((unsigned char)*v < 0x20)
            *n += (size_t)snprintf(out + *n, cap - *n, "\\u%04x", *v);
        else
            out[(*n)++] = *v;
    }
    *n += (size_t)snprintf(out + *n, cap - *n, "\"");
}

static int32_t h_info(loom_req *req, void *ud)
{
    (void)ud;
    size_t cap = 16384, n = 1;
    char *out = loom_req_alloc(req, cap);
    if (!out) return LOOM_ENOMEM;
    out[0] = '{';
    put_json_str(out, cap, &n, "method", loom_req_method(req));
    put_json_str(out, cap, &n, "path", loom_req_path(req, NULL));
    put_json_str(out, cap, &n, "query", loom_req_query_string(req, NULL));
    put_json_str(out, cap, &n, "version", loom_req_http_version(req));
    put_json_str(out, cap, &n, "host", loom_req_header(req, "Host", NULL));
    put_json_str(out, cap, &n, "cookie", loom_req_header(req, "Cookie", NULL));
    put_json_str(out, cap, &n, "a", loom_req_cookie(req, "a", NULL));
    put_json_str(out, cap, &n, "b", loom_req_cookie(req, "b", NULL));
    put_json_str(out, cap, &n, "remote", loom_req_remote(req));
    n += (size_t)snprintf(out + n, cap - n, ",\"headers\":%u}", loom_req_header_count(req));
    return loom_resp_json(req, 200, out, n);
}

static int32_t h_echo(loom_req *req, void *ud)
{
    (void)ud;
    size_t len = 0;
    const void *body = loom_req_body(req, &len);
    char v[32];
    snprintf(v, sizeof v, "%zu", len);
    loom_resp_header_set(req, "X-Body-Length", v);
    loom_resp_header_set(req, "X-Version", loom_req_http_version(req));
    return loom_resp_bytes(req, 200, "application/octet-stream", body, len);
}

static int32_t h_headers(loom_req *req, void *ud)
{
    (void)ud;
    /* What HTTP/1.1 would carry and HTTP/2 forbids (RFC 9113 §8.2.2). */
    loom_resp_header_set(req, "Keep-Alive", "timeout=5");
    loom_resp_header_set(req, "Upgrade", "h2c");
    loom_resp_header_set(req, "Proxy-Connection", "keep-alive");
    loom_resp_header_set(req, "TE", "trailers");
    loom_resp_header_set(req, "X-Mixed-Case", "Value Kept");
    loom_resp_header_add(req, "Set-Cookie", "a=1");
    loom_resp_header_add(req, "Set-Cookie", "b=2");
    return loom_resp_text(req, 200, "headers");
}

static int32_t h_stats(loom_req *req, void *ud)
{
    (void)ud;
    char out[640];
    int n = snprintf(out, sizeof out,
                     "{\"slow_started\":%ld,\"slow_finished\":%ld,\"running\":%ld,"
                     "\"wait_started\":%ld,\"wait_aborted\":%ld,\"timers_cancelled\":%ld,"
                     "\"timers_fired\":%ld,\"fetch_started\":%ld,\"fetch_done\":%ld,"
                     "\"fetch_aborted\":%ld,\"stream_started\":%ld,\"stream_aborted\":%ld}",
                     st.slow_started, st.slow_finished, st.running, st.wait_started,
                     st.wait_aborted, st.timers_cancelled, st.timers_fired, st.fetch_started,
                     st.fetch_done, st.fetch_aborted, st.stream_started, st.stream_aborted);
    return loom_resp_json(req, 200, out, (size_t)n);
}

static int32_t init(loom_plugin *self, const char *config, size_t len)
{
    (void)config;
    (void)len;
    me = self;
    int32_t rc = 0;
    rc |= loom_route_add(self, "GET", "/h2/slow", h_slow, NULL);
    rc |= loom_route_add(self, "GET", "/h2/wait", h_wait, NULL);
    rc |= loom_route_add(self, "GET", "/h2/fetch", h_fetch, NULL);
    rc |= loom_route_add(self, "GET", "/h2/stream", h_stream, NULL);
    rc |= loom_route_add(self, "GET", "/h2/big", h_big, NULL);
    rc |= loom_route_add(self, "GET", "/h2/info", h_info, NULL);
    rc |= loom_route_add(self, "POST", "/h2/echo", h_echo, NULL);
    rc |= loom_route_add(self, "GET", "/h2/headers", h_headers, NULL);
    rc |= loom_route_add(self, "GET", "/h2/stats", h_stats, NULL);
    return rc ? LOOM_EINVAL : LOOM_OK;
}

LOOM_PLUGIN("h2test", "1.0.0", init, NULL)
