/* A stream as a request: nghttp2's receiving callbacks build a loom_req
 * from the header block and the DATA frames, check it against the same
 * limits as an HTTP/1.1 request (max_line_size, max_field_size,
 * max_headers, client_max_size, and the header, request and read
 * deadlines), and hand it to the worker's handler once the client ended the
 * stream.
 *
 * nghttp2's HTTP messaging checks are on: a request with an uppercase or
 * connection-specific header name, a missing or repeated pseudo-header, or
 * a body that disagrees with its content-length is reset (PROTOCOL_ERROR)
 * before any callback here sees it complete, so no handler ever does.
 *
 * A RST_STREAM from the client detaches the request from a running
 * handler: its abort fires (loom_req_on_abort, fetches cancelled) and the
 * request stays as an orphan until the handler finishes it, counted so that
 * a client cannot make handler work pile up (defence.c). */
#include "http2/h2.h"
#include "http/parser.h"
#include "http/response.h"
#include "server/access_log.h"
#include "util/log.h"

#include <string.h>

static loom__h2_stream *stream_of(nghttp2_session *ng, int32_t id)
{
    return nghttp2_session_get_stream_user_data(ng, id);
}

/* The stream of a header block: the one that began last, since blocks do
 * not interleave (RFC 9113 §6.10); nghttp2's lookup is the fallback. */
static loom__h2_stream *block_stream(loom__h2 *h, nghttp2_session *ng, int32_t id)
{
    if (h->cur && h->cur->id == id) return h->cur;
    return stream_of(ng, id);
}

static void link_stream(loom__h2 *h, loom__h2_stream *s)
{
    s->prev = NULL;
    s->next = h->streams;
    if (h->streams) h->streams->prev = s;
    h->streams = s;
    h->nstreams++;
}

static void unlink_stream(loom__h2_stream *s)
{
    loom__h2 *h = s->h;
    if (h->cur == s) h->cur = NULL;
    if (s->prev)
        s->prev->next = s->next;
    else
        h->streams = s->next;
    if (s->next) s->next->prev = s->prev;
    s->prev = s->next = NULL;
    h->nstreams--;
}

void loom__h2_stream_free(loom__h2_stream *s)
{
    loom_req *r = s->r;
    unlink_stream(s);
    loom__buf_free(&s->sbuf);
    r->conn = NULL;
    r->pstream = NULL;
    loom__req_free(r); /* s lives in its arena */
}

/* Records the status the stream will be answered with instead of being
 * handed to a handler; the first one wins. */
static int refuse(loom__h2_stream *s, int status, const char *why)
{
    if (!s->error) {
        s->error = (uint16_t)status;
        s->why = why;
    }
    return 0;
}

int loom__h2_on_begin_headers(nghttp2_session *ng, const nghttp2_frame *f, void *ud)
{
    loom__h2 *h = ud;
    if (f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST) return 0;
    /* A calmed connection takes no new work; nghttp2 ignores the stream
     * once the GOAWAY is queued. */
    if (h->calm || loom__h2_admit(h)) return 0;
    loom_req *r = loom__req_new();
    loom__h2_stream *s = r ? loom__arena_alloc(&r->arena, sizeof *s) : NULL;
    if (!s) {
        loom__req_free(r);
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* RST_STREAM(INTERNAL_ERROR) */
    }
    memset(s, 0, sizeof *s);
    s->r = r;
    s->h = h;
    s->id = f->hd.stream_id;
    s->phase = H2S_HEAD;
    s->opened = s->last_in = loom__h2_now(h);
    r->pstream = s;
    r->conn = h->c;
    r->http_major = 2;
    r->http_minor = 0;
    r->keep_alive = 1;
    link_stream(h, s);
    h->cur = s;
    h->last_active = s->opened;
    nghttp2_session_set_stream_user_data(ng, s->id, s);
    return 0;
}

/* Appends a header (name and value copied into the request's arena,
 * NUL-terminated). Returns 0 or -1 (out of memory). */
static int add_header(loom_req *r, const char *name, size_t nl, const char *value, size_t vl)
{
    if (r->nheaders == r->cap_headers) {
        uint32_t cap = r->cap_headers ? r->cap_headers * 2 : 16;
        loom__header *hs = loom__arena_alloc(&r->arena, cap * sizeof *hs);
        if (!hs) return -1;
        if (r->nheaders) memcpy(hs, r->headers, r->nheaders * sizeof *hs);
        r->headers = hs;
        r->cap_headers = cap;
    }
    char *n = loom__arena_alloc(&r->arena, nl + vl + 2);
    if (!n) return -1;
    memcpy(n, name, nl);
    n[nl] = '\0';
    char *v = n + nl + 1;
    if (vl) memcpy(v, value, vl);
    v[vl] = '\0';
    loom__header *x = &r->headers[r->nheaders++];
    x->name = n;
    x->name_len = (uint32_t)nl;
    x->value = v;
    x->value_len = (uint32_t)vl;
    return 0;
}

#define IS(lit) (nl == sizeof(lit) - 1 && memcmp(name, lit, sizeof(lit) - 1) == 0)

/* The method as llhttp numbers it (what dispatch and the HTTP/1.1 parser
 * use); -1 for a method HTTP/1.1 would not take either. */
static int method_id(const char *m, size_t n)
{
    static const struct {
        const char *name;
        uint8_t id;
    } table[] = {
#define XX(num, name, string) {#string, num},
        HTTP_METHOD_MAP(XX)
#undef XX
    };
    if (n == 3 && memcmp(m, "GET", 3) == 0) return HTTP_GET;
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        if (strlen(table[i].name) == n && memcmp(table[i].name, m, n) == 0) return table[i].id;
    return -1;
}

static int pseudo(loom__h2_stream *s, const char *name, size_t nl, const char *value, size_t vl)
{
    loom_req *r = s->r;
    const loom__config *cfg = s->h->w->cfg;
    if (IS(":method")) {
        r->method = loom__arena_strndup(&r->arena, value, vl);
        r->method_len = (uint32_t)vl;
        r->is_head = vl == 4 && memcmp(value, "HEAD", 4) == 0;
        if (!r->method) return refuse(s, 500, "out of memory");
    } else if (IS(":path")) {
        /* Too long: its start is kept for the access log, as HTTP/1.1 does. */
        int too_long = vl > cfg->max_line_size;
        r->target = loom__arena_strndup(&r->arena, value, too_long ? 1024 : vl);
        r->target_len = (uint32_t)vl;
        if (!r->target) return refuse(s, 500, "out of memory");
        if (too_long) return refuse(s, 414, "request-target too long");
    } else if (IS(":authority")) {
        s->authority = loom__arena_strndup(&r->arena, value, vl);
        s->authority_len = (uint32_t)vl;
        if (!s->authority) return refuse(s, 500, "out of memory");
    }
    /* :scheme is checked by nghttp2 and not needed here; :protocol
     * (extended CONNECT) is not enabled, so nghttp2 refuses it. */
    return 0;
}

int loom__h2_on_header(nghttp2_session *ng, const nghttp2_frame *f, const uint8_t *uname, size_t nl,
                       const uint8_t *uvalue, size_t vl, uint8_t flags, void *ud)
{
    loom__h2 *h = ud;
    const char *name = (const char *)uname, *value = (const char *)uvalue;
    (void)flags;
    loom__h2_stream *s = block_stream(h, ng, f->hd.stream_id);
    if (!s || s->error || s->phase >= H2S_HANDLER) return 0;
    /* The decoded list is bounded whatever HPACK made of it (an HPACK bomb
     * names one big table entry many times). */
    s->list_bytes += (uint32_t)(nl + vl + 32);
    if (s->list_bytes > LOOM__H2_HEADER_LIST)
        return refuse(s, 431, "request header list too large");
    if (f->headers.cat != NGHTTP2_HCAT_REQUEST) return 0; /* trailers: bounded, then dropped */
    if (nl && name[0] == ':') return pseudo(s, name, nl, value, vl);
    const loom__config *cfg = h->w->cfg;
    loom_req *r = s->r;
    if (nl + vl > cfg->max_field_size) return refuse(s, 431, "header field too large");
    if (r->nheaders >= cfg->max_headers) return refuse(s, 431, "too many headers");
    if (add_header(r, name, nl, value, vl)) return refuse(s, 500, "out of memory");
    if (IS("cookie")) {
        s->ncookies++;
    } else if (IS("host")) {
        if (s->has_host) return refuse(s, 400, "duplicate Host header");
        s->has_host = 1;
    } else if (IS("content-length")) {
        /* nghttp2 checked that it is digits and matches the DATA frames. */
        uint64_t v = 0;
        for (size_t i = 0; i < vl && v < (1ull << 60); i++) v = v * 10 + (uint64_t)(value[i] - '0');
        if (vl > 1 && value[0] == '0') return refuse(s, 400, "Content-Length with a leading zero");
        r->has_content_length = 1;
        r->content_length = v;
        if (v > cfg->client_max_size) return refuse(s, 413, "request body too large");
    } else if (IS("expect")) {
        /* No interim responses over HTTP/2: the client sends the body
         * anyway (RFC 9110 §10.1.1), so 100-continue needs nothing. */
        if (!(vl == 12 && loom__strncaseeq(value, "100-continue", 12)))
            return refuse(s, 417, "unsupported expectation");
    } else if (IS("content-type")) {
        for (uint32_t i = 0; i + 1 < r->nheaders; i++)
            if (r->headers[i].name_len == 12 && memcmp(r->headers[i].name, "content-type", 12) == 0)
                return refuse(s, 400, "duplicate Content-Type header");
    }
    return 0;
}

/* An HTTP/2 client may split Cookie into several fields; a server hands
 * them on joined with "; " (RFC 9113 §8.2.3), as plugins read one. */
static int join_cookies(loom_req *r)
{
    size_t total = 0, n = 0;
    for (uint32_t i = 0; i < r->nheaders; i++)
        if (r->headers[i].name_len == 6 && memcmp(r->headers[i].name, "cookie", 6) == 0)
            total += r->headers[i].value_len + 2;
    char *v = loom__arena_alloc(&r->arena, total + 1);
    if (!v) return -1;
    uint32_t j = 0, first = UINT32_MAX;
    for (uint32_t i = 0; i < r->nheaders; i++) {
        loom__header *x = &r->headers[i];
        if (x->name_len == 6 && memcmp(x->name, "cookie", 6) == 0) {
            if (n) {
                memcpy(v + n, "; ", 2);
                n += 2;
            }
            memcpy(v + n, x->value, x->value_len);
            n += x->value_len;
            if (first != UINT32_MAX) continue; /* dropped: joined into the first */
            first = j;
        }
        r->headers[j++] = *x;
    }
    v[n] = '\0';
    r->nheaders = j;
    r->headers[first].value = v;
    r->headers[first].value_len = (uint32_t)n;
    return 0;
}

/* The header block is complete: the request line and Host from the
 * pseudo-headers, the checks HTTP/1.1's parser makes on a request line. */
static void head_done(loom__h2_stream *s)
{
    loom_req *r = s->r;
    if (s->error) return;
    if (!r->method) {
        refuse(s, 400, "missing :method");
        return;
    }
    int id = method_id(r->method, r->method_len);
    if (id < 0) {
        refuse(s, 501, "method not implemented");
        return;
    }
    r->method_id = (uint8_t)id;
    if (id == HTTP_CONNECT) {
        refuse(s, 501, "CONNECT is not supported");
        return;
    }
    const char *t = r->target;
    if (!t || !(t[0] == '/' || (r->target_len == 1 && t[0] == '*' && id == HTTP_OPTIONS))) {
        refuse(s, 400, "invalid :path");
        return;
    }
    if (t[0] == '*' && id != HTTP_OPTIONS) {
        refuse(s, 400, "'*' target with a method other than OPTIONS");
        return;
    }
    const char *q = memchr(t, '?', r->target_len);
    if (!q) {
        r->path = t;
        r->path_len = r->target_len;
    } else {
        r->path = loom__arena_strndup(&r->arena, t, (size_t)(q - t));
        r->path_len = (uint32_t)(q - t);
        r->query = q + 1;
        r->query_len = (uint32_t)(r->target_len - (uint32_t)(q - t) - 1);
        if (!r->path) {
            refuse(s, 500, "out of memory");
            return;
        }
    }
    if (s->ncookies > 1 && join_cookies(r)) {
        refuse(s, 500, "out of memory");
        return;
    }
    /* Plugins read the host from Host, as in HTTP/1.1. */
    if (s->authority && s->has_host) {
        size_t hl;
        const char *hv = loom__req_header(r, "host", 4, &hl);
        if (hl != s->authority_len || !loom__strncaseeq(hv, s->authority, hl))
            refuse(s, 400, "Host and :authority differ");
    } else if (s->authority) {
        if (r->nheaders >= s->h->w->cfg->max_headers) {
            refuse(s, 431, "too many headers");
            return;
        }
        if (add_header(r, "host", 4, s->authority, s->authority_len))
            refuse(s, 500, "out of memory");
    }
}

static void dispatch(loom__h2_stream *s)
{
    loom__h2 *h = s->h;
    loom_req *r = s->r;
    s->phase = H2S_HANDLER;
    r->complete = 1;
    r->start_ms = s->opened;
    h->nreq++;
    h->w->requests++;
    h->w->handle(h->w, r);
}

/* The client ended the stream: the request is whole. */
static void request_done(loom__h2_stream *s)
{
    if (s->phase != H2S_BODY) return;
    if (s->error)
        loom__h2_respond_error(s, s->error, s->why);
    else
        dispatch(s);
}

int loom__h2_on_frame_recv(nghttp2_session *ng, const nghttp2_frame *f, void *ud)
{
    loom__h2 *h = ud;
    loom__h2_stream *s;
    int end = (f->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;
    switch (f->hd.type) {
    case NGHTTP2_HEADERS:
        s = block_stream(h, ng, f->hd.stream_id);
        if (!s) return 0;
        h->last_active = s->last_in = loom__h2_now(h);
        if (f->headers.cat == NGHTTP2_HCAT_REQUEST && s->phase == H2S_HEAD) {
            head_done(s);
            s->phase = H2S_BODY;
            /* Refused at the head: answered now, without waiting for a
             * body nobody will read (the stream is reset after). */
            if (s->error && !end) {
                loom__h2_respond_error(s, s->error, s->why);
                return 0;
            }
        }
        if (end) request_done(s);
        return 0;
    case NGHTTP2_DATA:
        if (f->hd.length == f->data.padlen && !end) loom__h2_count_empty(h);
        s = stream_of(ng, f->hd.stream_id);
        if (!s) return 0;
        h->last_active = loom__h2_now(h);
        if (end) request_done(s);
        return 0;
    case NGHTTP2_RST_STREAM:
        loom__h2_count_reset(h);
        return 0;
    default:
        return 0;
    }
}

int loom__h2_on_data_chunk(nghttp2_session *ng, uint8_t flags, int32_t id, const uint8_t *data,
                           size_t len, void *ud)
{
    loom__h2 *h = ud;
    (void)flags;
    loom__h2_stream *s = stream_of(ng, id);
    if (!s || s->phase != H2S_BODY || s->error) return 0;
    loom_req *r = s->r;
    s->last_in = loom__h2_now(h);
    if (r->body.len + len > h->w->cfg->client_max_size) {
        loom__buf_free(&r->body);
        loom__h2_respond_error(s, 413, "request body too large");
        return 0;
    }
    if (!r->body.cap && r->has_content_length) {
        /* Trust a declared length only as far as a small first buffer. */
        size_t want = r->content_length < 65536 ? (size_t)r->content_length : 65536;
        if (loom__buf_reserve(&r->body, want)) goto nomem;
    }
    if (loom__buf_append(&r->body, data, len)) goto nomem;
    return 0;
nomem:
    loom__buf_free(&r->body);
    loom__h2_respond_error(s, 500, "out of memory");
    return 0;
}

int loom__h2_on_stream_close(nghttp2_session *ng, int32_t id, uint32_t code, void *ud)
{
    loom__h2 *h = ud;
    loom__h2_stream *s = stream_of(ng, id);
    (void)code;
    if (!s) return 0;
    nghttp2_session_set_stream_user_data(ng, id, NULL);
    s->closed = 1;
    h->last_active = loom__h2_now(h);
    if (s->phase != H2S_HANDLER) {
        loom__h2_stream_free(s);
        return 0;
    }
    loom_req *r = s->r;
    /* A streamed response to HEAD (or a 204) ended with its HEADERS while
     * the handler still runs: that is no abort. */
    if (r->resp.head_sent && s->body == H2B_NONE) return 0;
    s->orphan = 1;
    h->orphans++;
    loom__buf_free(&s->sbuf);
    if (h->w->on_abort) h->w->on_abort(h->w, r);
    return 0;
}

void loom__h2_streams_sweep(loom__h2 *h, uint64_t now)
{
    const loom__config *cfg = h->w->cfg;
    int acted = 0;
    for (loom__h2_stream *s = h->streams, *next; s && !loom__h2_gone(h); s = next) {
        next = s->next;
        if (s->closed) continue;
        if (s->phase == H2S_HEAD) {
            /* Until the header block ends no other frame may come: the
             * whole connection waits on this client. */
            if (now >= s->opened + cfg->header_timeout || now >= s->last_in + cfg->read_timeout) {
                loom__h2_calm(h, "header block not complete in time");
                acted = 1;
            }
        } else if (s->phase == H2S_BODY) {
            if (now >= s->opened + cfg->request_timeout || now >= s->last_in + cfg->read_timeout) {
                loom__h2_respond_error(s, 408, "request not received in time");
                acted = 1;
            }
        } else if ((s->phase == H2S_RESPONSE || s->sbuf.len > s->soff) &&
                   now >= s->last_out + cfg->write_timeout) {
            /* Response data waits on a window the client does not open. */
            char addr[64];
            loom__debug("HTTP/2: client %s: stream %d: no progress within write_timeout: reset",
                        loom__access_log_addr(h->c, addr, sizeof addr), s->id);
            nghttp2_submit_rst_stream(h->ng, NGHTTP2_FLAG_NONE, s->id, NGHTTP2_CANCEL);
            s->last_out = now;
            acted = 1;
        }
    }
    if (acted) loom__h2_pump(h);
}

void loom__h2_streams_close(loom__h2 *h)
{
    loom__h2_stream *s;
    /* One at a time from the head: an abort may finish other requests of
     * this connection, which takes them out of the list. */
    while ((s = h->streams)) {
        loom_req *r = s->r;
        loom__buf_free(&s->sbuf);
        if (s->phase == H2S_HANDLER && !s->orphan && !s->closed) {
            unlink_stream(s);
            r->conn = NULL;
            if (h->w->on_abort) h->w->on_abort(h->w, r);
        } else if (s->phase == H2S_HANDLER) {
            /* Its abort fired (or it needs none); the handler's finish frees it. */
            unlink_stream(s);
            r->conn = NULL;
        } else {
            loom__h2_stream_free(s);
        }
    }
}
