/* Server-Sent Events (ABI 1.5): an event stream is a streamed response that
 * the host keeps open for the plugin, with the event framing of the HTML
 * standard ("text/event-stream"), a keep-alive comment on a timer, and a
 * byte limit on what may wait for a slow client.
 *
 * The stream's request stays active on its connection, so no request
 * deadline applies (only write_timeout, when the client stops reading). It
 * ends in one of three ways: the plugin closes it (loom_sse_close), the
 * client leaves (the connection's abort), or the server drains (every open
 * stream is ended, each with its on_close called first). What the core's
 * connection layer has to provide for it is small: the bytes queued on a
 * request's connection (loom__req_queued), the abort of a request whose
 * client left (w->on_abort) and the start of a drain (w->on_drain); an
 * HTTP/2 stream provides the same three. */
#include "http/response.h"
#include "plugin/host.h"
#include "util/log.h"

#include <stdlib.h>
#include <string.h>

#define CTX(r) ((loom__rctx *)(r)->host_data)
#define DEFAULT_KEEPALIVE 15000
#define DEFAULT_MAX_QUEUED (1u << 20)

struct loom_sse {
    uv_timer_t timer;
    loom__host *host;
    loom_req *req;
    loom_sse *prev, *next; /* the host's open streams */
    loom_sse_close_fn on_close;
    void *ud;
    uint64_t keepalive, max_queued;
    const char *last_id;
    size_t last_id_len;
    uint8_t ended;
};

static void freed(uv_handle_t *h)
{
    free(h->data);
}

static void unlink_stream(loom_sse *s)
{
    if (s->prev)
        s->prev->next = s->next;
    else if (s->host->sse == s)
        s->host->sse = s->next;
    if (s->next) s->next->prev = s->prev;
    s->prev = s->next = NULL;
}

/* Writes bytes through the body filter, with the request pinned: a write
 * that finds the client gone aborts the request inside this call, and the
 * release that follows must wait until the write has returned. Returns 0,
 * LOOM_EGONE or the filter's error. */
static int32_t put(loom_req *r, const char *p, size_t len, uint32_t flags)
{
    loom__rctx *x = CTX(r);
    x->in_call++;
    int32_t rc = x->aborted ? LOOM_EGONE : loom__filter_chunk(r, p, len, flags);
    x->in_call--;
    if (x->aborted && rc == 0) rc = LOOM_EGONE;
    return rc;
}

/* Ends the stream: the response ends (if its client is still there) and the
 * handle is freed on the next loop turn. */
static void end_stream(loom_sse *s)
{
    loom_req *r = s->req;
    s->ended = 1;
    uv_timer_stop(&s->timer);
    unlink_stream(s);
    uv_close((uv_handle_t *)&s->timer, freed);
    CTX(r)->sse = NULL;
    loom__dispatch_respond(r);
}

static void keepalive(uv_timer_t *t)
{
    loom_sse *s = t->data;
    loom_req *r = s->req;
    /* A comment line: a client or proxy that counts silence sees traffic.
     * Skipped while earlier bytes still wait for the client. */
    if (loom__req_queued(r) == 0) put(r, ": keep-alive\n\n", 14, 0);
    if (CTX(r)->responded && !CTX(r)->in_call) loom__dispatch_complete(r);
}

loom_sse *loom__sse_open(loom_req *r, const loom_sse_opts *opts)
{
    loom__rctx *x = CTX(r);
    loom__worker *w = loom__req_worker(r);
    if (x->responded || x->aborted || r->resp.head_sent || x->sse || !w) return NULL;
    loom_sse_opts o;
    memset(&o, 0, sizeof o);
    if (opts) {
        if (opts->size < offsetof(loom_sse_opts, on_close)) return NULL;
        memcpy(&o, opts, opts->size < sizeof o ? opts->size : sizeof o);
    }
    loom_sse *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->host = w->host;
    s->req = r;
    s->on_close = o.on_close;
    s->ud = o.ud;
    s->keepalive = o.keepalive_ms ? o.keepalive_ms : DEFAULT_KEEPALIVE;
    s->max_queued = o.max_queued ? o.max_queued : DEFAULT_MAX_QUEUED;
    s->last_id = loom__req_header(r, "last-event-id", 13, &s->last_id_len);
    r->resp.status = 200; /* EventSource treats any other status as a failure */
    loom__resp_header_set(r, "Content-Type", 12, "text/event-stream", 17);
    if (!loom__resp_header_get(r, "Cache-Control", 13, NULL))
        loom__resp_header_set(r, "Cache-Control", 13, "no-cache", 8);
    /* nginx in front would otherwise buffer the stream. */
    loom__resp_header_set(r, "X-Accel-Buffering", 17, "no", 2);
    uv_timer_init(w->loop, &s->timer);
    s->timer.data = s;
    r->resp.streaming = 1; /* the response phase sees a streamed body (size -1) */
    loom__dispatch_response_phase(r);
    x->in_call++;
    int bad = loom__req_stream_head(r);
    x->in_call--;
    if (bad || x->aborted) {
        /* The client left (or no memory for the head): the request is
         * still the caller's to answer, which releases it. */
        uv_close((uv_handle_t *)&s->timer, freed);
        return NULL;
    }
    x->sse = s;
    s->next = s->host->sse;
    if (s->next) s->next->prev = s;
    s->host->sse = s;
    uv_timer_start(&s->timer, keepalive, s->keepalive, s->keepalive);
    return s;
}

static int line_ok(const char *v)
{
    for (; *v; v++)
        if (*v == '\r' || *v == '\n') return 0;
    return 1;
}

/* Appends `data` as data fields: one per line, whatever the line break
 * (CRLF, LF or CR), as the event-stream grammar reads them. */
static void put_data(loom__buf *b, const char *d, size_t n)
{
    size_t i = 0;
    for (;;) {
        size_t s = i;
        while (i < n && d[i] != '\r' && d[i] != '\n') i++;
        loom__buf_append(b, "data: ", 6);
        loom__buf_append(b, d + s, i - s);
        loom__buf_append(b, "\n", 1);
        if (i >= n) break;
        if (d[i] == '\r' && i + 1 < n && d[i + 1] == '\n') i++;
        i++;
        if (i >= n) break; /* a trailing line break adds no empty line */
    }
}

int32_t loom__sse_send(loom_sse *s, const loom_sse_event *ev)
{
    if (!s || !ev || ev->size < offsetof(loom_sse_event, data)) return LOOM_EINVAL;
    if (s->ended) return LOOM_EGONE;
    loom_sse_event e;
    memset(&e, 0, sizeof e);
    memcpy(&e, ev, ev->size < sizeof e ? ev->size : sizeof e);
    if ((e.event && !line_ok(e.event)) || (e.id && !line_ok(e.id))) return LOOM_EINVAL;
    loom_req *r = s->req;
    if (CTX(r)->aborted) return LOOM_EGONE;
    loom__buf b = {0};
    if (e.event) loom__buf_printf(&b, "event: %s\n", e.event);
    if (e.id) loom__buf_printf(&b, "id: %s\n", e.id);
    if (e.retry_ms > 0) loom__buf_printf(&b, "retry: %lld\n", (long long)e.retry_ms);
    if (e.data) put_data(&b, e.data, e.data_len);
    loom__buf_append(&b, "\n", 1);
    if (!b.data) return LOOM_ENOMEM;
    int32_t rc = LOOM_OK;
    if (loom__req_queued(r) + b.len > s->max_queued)
        rc = LOOM_ELIMIT;
    else
        rc = put(r, b.data, b.len, 0);
    loom__buf_free(&b);
    if (rc == LOOM_OK) uv_timer_again(&s->timer);
    /* The client left during the write: the abort ran on_close; the
     * request is released now that the write returned. */
    if (CTX(r)->responded && !CTX(r)->in_call) loom__dispatch_complete(r);
    return rc;
}

int32_t loom__sse_close(loom_sse *s)
{
    if (!s || s->ended) return LOOM_EGONE;
    int gone = CTX(s->req)->aborted;
    end_stream(s);
    return gone ? LOOM_EGONE : LOOM_OK;
}

const char *loom__sse_last_event_id(loom_sse *s, size_t *len)
{
    if (len) *len = s && s->last_id ? s->last_id_len : 0;
    return s ? s->last_id : NULL;
}

uint64_t loom__sse_queued(loom_sse *s)
{
    return s && !s->ended ? loom__req_queued(s->req) : 0;
}

/* Tells the plugin, then ends the stream. */
static void finish(loom_sse *s, int32_t reason)
{
    loom__rctx *x = CTX(s->req);
    s->ended = 1;
    if (s->on_close) {
        x->in_call++;
        s->on_close(s, reason, s->ud);
        x->in_call--;
    }
    end_stream(s);
}

void loom__sse_abort(loom_req *r)
{
    loom_sse *s = CTX(r)->sse;
    if (s && !s->ended) finish(s, LOOM_SSE_GONE);
}

void loom__sse_drain(loom__host *h)
{
    int n = 0;
    while (h->sse) {
        loom_sse *s = h->sse;
        /* The connection closes once the end of the stream is out. */
        s->req->resp.close = 1;
        finish(s, LOOM_SSE_STOPPING);
        n++;
    }
    if (n) loom__info("stopping: ended %d event streams", n);
}
