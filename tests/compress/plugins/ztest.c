/* ztest: routes that exercise ABI 1.5 for tests/compress (not shipped).
 *
 *   GET  /z/body?size=N&ct=T&status=S&cc=V&etag=E&ce=C  a body of N bytes
 *   GET  /z/stream?chunks=N&delay=MS                    a streamed body, a chunk per delay
 *   GET  /z/sse?n=N&interval=MS&keepalive=MS            an event stream: the edge
 *        events first, then n ticks, then loom_sse_close
 *   GET  /z/flood?max_queued=B                          an event stream that sends 16 KiB
 *        events every 2 ms until LOOM_ELIMIT, and stays open
 *   GET  /z/stats                                       counters, JSON
 *   POST /z/decoded (LOOM_ROUTE_DECODE_BODY), POST /z/raw  echo the body they see
 */
#include <loom/loom.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static loom_plugin *me;
static struct {
    int64_t open, gone, stopping, elimit, einval, closed, max_queued_seen;
    char last_id[64];
} st;

static int64_t qint(loom_req *req, const char *name, int64_t def)
{
    size_t n;
    const char *v = loom_req_query(req, name, 0, &n);
    return v && n ? strtoll(v, NULL, 10) : def;
}

static const char *qstr(loom_req *req, const char *name)
{
    return loom_req_query(req, name, 0, NULL);
}

static int32_t body(loom_req *req, void *ud)
{
    (void)ud;
    int64_t size = qint(req, "size", 4096);
    if (size < 0 || size > (64 << 20)) return loom_resp_error(req, 400, "size");
    char *b = malloc((size_t)size + 1);
    if (!b) return loom_resp_error(req, 500, "oom");
    static const char rec[] = "{\"id\":12345,\"name\":\"loom test record\",\"ok\":true},";
    for (int64_t i = 0; i < size; i++) b[i] = rec[i % (int64_t)(sizeof rec - 1)];
    const char *v;
    if ((v = qstr(req, "cc"))) loom_resp_header_set(req, "Cache-Control", v);
    if ((v = qstr(req, "etag"))) loom_resp_header_set(req, "ETag", v);
    if ((v = qstr(req, "ce"))) loom_resp_header_set(req, "Content-Encoding", v);
    if ((v = qstr(req, "vary"))) loom_resp_header_set(req, "Vary", v);
    const char *ct = qstr(req, "ct");
    int32_t rc = loom_resp_bytes(req, (int32_t)qint(req, "status", 200),
                                 ct ? ct : "application/json", b, (size_t)size);
    free(b);
    return rc;
}

/* ---- a streamed body ---- */

typedef struct {
    loom_req *req;
    loom_timer *t;
    int64_t left, i;
} streamer;

static void stream_abort(loom_req *req, void *ud)
{
    streamer *s = ud;
    loom_timer_stop(s->t);
    loom_respond(req);
}

static void stream_tick(loom_timer *t, void *ud)
{
    (void)t;
    streamer *s = ud;
    char chunk[200];
    int n =
        snprintf(chunk, sizeof chunk, "chunk %lld: the quick brown fox jumps over the lazy dog\n",
                 (long long)s->i++);
    loom_resp_stream_write(s->req, chunk, (size_t)n);
    if (--s->left <= 0) {
        loom_timer_stop(s->t);
        loom_resp_stream_end(s->req);
    }
}

static int32_t stream(loom_req *req, void *ud)
{
    (void)ud;
    streamer *s = loom_req_alloc(req, sizeof *s);
    s->req = req;
    s->left = qint(req, "chunks", 3);
    s->i = 0;
    int64_t delay = qint(req, "delay", 200);
    loom_resp_status(req, 200);
    loom_resp_header_set(req, "Content-Type", "text/plain; charset=utf-8");
    loom_resp_stream_start(req);
    s->t = loom_timer_start(me, (uint64_t)delay, (uint64_t)delay, stream_tick, s);
    loom_req_on_abort(req, stream_abort, s);
    return LOOM_PENDING;
}

/* ---- event streams ---- */

typedef struct {
    loom_sse *sse;
    loom_timer *t;
    int64_t left, i;
} ticker;

static void sse_closed(loom_sse *s, int32_t reason, void *ud)
{
    (void)s;
    ticker *k = ud;
    if (reason == LOOM_SSE_GONE) st.gone++;
    if (reason == LOOM_SSE_STOPPING) st.stopping++;
    st.open--;
    if (k) {
        loom_timer_stop(k->t);
        free(k);
    }
}

static void sse_tick(loom_timer *t, void *ud)
{
    (void)t;
    ticker *k = ud;
    char data[64], id[24];
    int n = snprintf(data, sizeof data, "tick %lld", (long long)k->i);
    snprintf(id, sizeof id, "t%lld", (long long)k->i++);
    loom_sse_event ev = {sizeof ev, 0, "tick", id, 0, data, (size_t)n};
    if (loom_sse_send(k->sse, &ev) == LOOM_EGONE) return; /* sse_closed freed k */
    if (--k->left <= 0) {
        loom_timer_stop(k->t);
        loom_sse_close(k->sse);
        st.open--;
        st.closed++;
        free(k);
    }
}

static int32_t sse(loom_req *req, void *ud)
{
    (void)ud;
    ticker *k = calloc(1, sizeof *k);
    loom_sse_opts o = {sizeof o, 0, (uint64_t)qint(req, "keepalive", 0), 0, sse_closed, k};
    k->sse = loom_sse_open(req, &o);
    if (!k->sse) {
        free(k);
        return loom_resp_error(req, 500, "sse_open failed");
    }
    st.open++;
    size_t idl;
    const char *last = loom_sse_last_event_id(k->sse, &idl);
    snprintf(st.last_id, sizeof st.last_id, "%s", last ? last : "");
    /* The edge cases, in order: a multi-line event with every line break,
     * then refused fields (counted), then an empty data line. */
    static const char multi[] = "line one\r\nline two\nline three\rline four";
    loom_sse_event ev = {sizeof ev, 0, "multi", "m1", 2500, multi, sizeof multi - 1};
    loom_sse_send(k->sse, &ev);
    loom_sse_event bad1 = {sizeof bad1, 0, "bad\nevent", NULL, 0, "x", 1};
    loom_sse_event bad2 = {sizeof bad2, 0, NULL, "bad\rid", 0, "x", 1};
    if (loom_sse_send(k->sse, &bad1) == LOOM_EINVAL) st.einval++;
    if (loom_sse_send(k->sse, &bad2) == LOOM_EINVAL) st.einval++;
    loom_sse_event empty = {sizeof empty, 0, "empty", NULL, 0, "", 0};
    loom_sse_send(k->sse, &empty);
    k->left = qint(req, "n", 3);
    int64_t iv = qint(req, "interval", 100);
    k->t = loom_timer_start(me, (uint64_t)iv, (uint64_t)iv, sse_tick, k);
    return LOOM_PENDING;
}

typedef struct {
    loom_sse *sse;
    loom_timer *t;
    uint64_t max;
    int limited;
} flooder;

static void flood_closed(loom_sse *s, int32_t reason, void *ud)
{
    sse_closed(s, reason, NULL);
    flooder *f = ud;
    loom_timer_stop(f->t);
    free(f);
}

static void flood_tick(loom_timer *t, void *ud)
{
    (void)t;
    flooder *f = ud;
    static char big[16384];
    if (!big[0]) memset(big, 'z', sizeof big);
    for (int i = 0; i < 8; i++) {
        int32_t rc = loom_sse_send_data(f->sse, NULL, big, sizeof big);
        uint64_t q = loom_sse_queued(f->sse);
        if ((int64_t)q > st.max_queued_seen) st.max_queued_seen = (int64_t)q;
        if (rc == LOOM_ELIMIT) {
            if (!f->limited) st.elimit++;
            f->limited = 1;
            return;
        }
        if (rc != LOOM_OK) return;
    }
}

static int32_t flood(loom_req *req, void *ud)
{
    (void)ud;
    flooder *f = calloc(1, sizeof *f);
    f->max = (uint64_t)qint(req, "max_queued", 65536);
    loom_sse_opts o = {sizeof o, 0, 0, f->max, flood_closed, f};
    f->sse = loom_sse_open(req, &o);
    if (!f->sse) {
        free(f);
        return loom_resp_error(req, 500, "sse_open failed");
    }
    st.open++;
    f->t = loom_timer_start(me, 2, 2, flood_tick, f);
    return LOOM_PENDING;
}

static int32_t stats(loom_req *req, void *ud)
{
    (void)ud;
    char b[400];
    int n = snprintf(
        b, sizeof b,
        "{\"open\":%lld,\"gone\":%lld,\"stopping\":%lld,\"elimit\":%lld,\"einval\":%lld,"
        "\"closed\":%lld,\"max_queued_seen\":%lld,\"last_id\":\"%s\"}",
        (long long)st.open, (long long)st.gone, (long long)st.stopping, (long long)st.elimit,
        (long long)st.einval, (long long)st.closed, (long long)st.max_queued_seen, st.last_id);
    loom_resp_header_set(req, "Cache-Control", "no-store, no-transform");
    return loom_resp_json(req, 200, b, (size_t)n);
}

static int32_t echo(loom_req *req, void *ud)
{
    (void)ud;
    size_t n;
    const void *b = loom_req_body(req, &n);
    const char *ce = loom_req_header(req, "Content-Encoding", NULL);
    loom_resp_header_set(req, "X-Seen-Content-Encoding", ce ? ce : "-");
    loom_resp_header_set(req, "Cache-Control", "no-transform");
    return loom_resp_bytes(req, 200, "application/octet-stream", b, n);
}

static int32_t init(loom_plugin *self, const char *config, size_t len)
{
    (void)config;
    (void)len;
    me = self;
    int32_t rc = loom_route_add(self, "GET", "/z/body", body, NULL);
    if (!rc) rc = loom_route_add(self, "GET", "/z/stream", stream, NULL);
    if (!rc) rc = loom_route_add(self, "GET", "/z/sse", sse, NULL);
    if (!rc) rc = loom_route_add(self, "GET", "/z/flood", flood, NULL);
    if (!rc) rc = loom_route_add(self, "GET", "/z/stats", stats, NULL);
    if (!rc)
        rc = loom_route_add_flags(self, "POST", "/z/decoded", echo, NULL, NULL,
                                  LOOM_ROUTE_DECODE_BODY);
    if (!rc) rc = loom_route_add(self, "POST", "/z/raw", echo, NULL);
    return rc;
}

LOOM_PLUGIN("ztest", "1.0.0", init, NULL);
