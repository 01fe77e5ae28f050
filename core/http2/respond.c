/* A request's response as HTTP/2 frames: the same response a handler
 * builds for HTTP/1.1 (status, headers, a buffered body, a file, or
 * streamed pieces) becomes a HEADERS frame and DATA frames.
 *
 * Bodies are not copied into nghttp2: the data source answers with
 * NGHTTP2_DATA_FLAG_NO_COPY, and the send callback writes each DATA frame's
 * header and then its bytes straight into the connection's send buffer,
 * from the response body where it lies, from the stream's buffer of
 * written pieces, or (a file) with one pread into the send buffer, so a
 * file's bytes are copied once, from the page cache. nghttp2 asks for no
 * more than the client's windows allow, so flow control is honoured; the
 * high-water mark (session.c) bounds how much is read ahead of the socket.
 *
 * Connection-specific fields a handler sets (Connection, Keep-Alive,
 * Proxy-Connection, Transfer-Encoding, Upgrade, TE) are dropped: HTTP/2
 * forbids them (RFC 9113 §8.2.2). Names are sent lowercase. */
#include "http2/h2.h"
#include "admin/metrics.h"
#include "http/date.h"
#include "http/response.h"
#include "http/status.h"
#include "server/access_log.h"
#include "util/log.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static int connection_specific(const char *n, size_t l)
{
    switch (l) {
    case 2:
        return loom__strncaseeq(n, "te", 2);
    case 7:
        return loom__strncaseeq(n, "upgrade", 7);
    case 10:
        return loom__strncaseeq(n, "connection", 10) || loom__strncaseeq(n, "keep-alive", 10);
    case 16:
        return loom__strncaseeq(n, "proxy-connection", 16);
    case 17:
        return loom__strncaseeq(n, "transfer-encoding", 17);
    default:
        return 0;
    }
}

/* The name in lowercase: itself when it is already, else a copy in the
 * request's arena. NULL when out of memory. */
static const char *lower(loom_req *r, const char *n, size_t l)
{
    size_t i = 0;
    while (i < l && !(n[i] >= 'A' && n[i] <= 'Z')) i++;
    if (i == l) return n;
    char *d = loom__arena_alloc(&r->arena, l + 1);
    if (!d) return NULL;
    for (i = 0; i < l; i++) d[i] = (char)(n[i] >= 'A' && n[i] <= 'Z' ? n[i] | 0x20 : n[i]);
    d[l] = '\0';
    return d;
}

#define NV_REF(nm, nl, v, vl)                                                                      \
    ((nghttp2_nv){(uint8_t *)(nm), (uint8_t *)(v), (nl), (vl),                                     \
                  NGHTTP2_NV_FLAG_NO_COPY_NAME | NGHTTP2_NV_FLAG_NO_COPY_VALUE})

static ssize_t read_body(nghttp2_session *ng, int32_t id, uint8_t *buf, size_t length,
                         uint32_t *flags, nghttp2_data_source *src, void *ud)
{
    loom__h2_stream *s = src->ptr;
    const loom__resp *rs = &s->r->resp;
    uint64_t left;
    (void)ng;
    (void)id;
    (void)buf;
    (void)ud;
    switch (s->body) {
    case H2B_MEM:
        left = rs->body_len - s->off;
        break;
    case H2B_FILE:
        left = rs->file_len - s->off;
        break;
    default:
        left = s->sbuf.len - s->soff;
        if (left == 0 && !s->ended) {
            s->deferred = 1; /* resumed by the next write or the finish */
            return NGHTTP2_ERR_DEFERRED;
        }
        if (!s->ended) {
            size_t n = left < length ? (size_t)left : length;
            *flags |= NGHTTP2_DATA_FLAG_NO_COPY;
            return (ssize_t)n;
        }
        break;
    }
    size_t n = left < length ? (size_t)left : length;
    if (n) *flags |= NGHTTP2_DATA_FLAG_NO_COPY;
    if (n == left) *flags |= NGHTTP2_DATA_FLAG_EOF;
    return (ssize_t)n;
}

int loom__h2_send_data(nghttp2_session *ng, nghttp2_frame *f, const uint8_t *framehd, size_t length,
                       nghttp2_data_source *src, void *ud)
{
    loom__h2 *h = ud;
    loom__h2_stream *s = src->ptr;
    loom_req *r = s->r;
    (void)ng;
    (void)f; /* no padding: no select_padding callback is set */
    if (loom__conn_queued(h->c) >= LOOM__H2_HIGH_WATER) return NGHTTP2_ERR_WOULDBLOCK;
    loom__buf *b = loom__conn_outbuf(h->c);
    if (loom__buf_reserve(b, 9 + length)) return NGHTTP2_ERR_CALLBACK_FAILURE;
    char *dst = b->data + b->len + 9;
    switch (s->body) {
    case H2B_MEM:
        memcpy(dst, r->resp.body + s->off, length);
        break;
    case H2B_FILE: {
        size_t got = 0;
        while (got < length) {
            ssize_t n = pread(r->resp.file_fd, dst + got, length - got,
                              (off_t)(r->resp.file_off + s->off + got));
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) {
                /* The file shrank or failed: nothing of this frame is in
                 * the buffer, so only the stream is reset. */
                loom__warn("HTTP/2 stream %d: %s %s: file read failed (%s)", s->id, r->method,
                           r->target, n < 0 ? strerror(errno) : "the file is shorter");
                return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
            }
            got += (size_t)n;
        }
        break;
    }
    default:
        memcpy(dst, s->sbuf.data + s->soff, length);
        s->soff += length;
        if (s->soff == s->sbuf.len) {
            s->soff = 0;
            s->sbuf.len = 0;
            if (s->sbuf.cap > (64u << 10)) loom__buf_free(&s->sbuf);
        }
        break;
    }
    memcpy(b->data + b->len, framehd, 9);
    b->len += 9 + length;
    s->off += length;
    s->last_out = loom__h2_now(h);
    return 0;
}

/* Submits the HEADERS frame of the response on s, with DATA frames to
 * follow when `body` is set. Returns 0 or -1. */
static int submit(loom__h2_stream *s, int body)
{
    loom_req *r = s->r;
    loom__resp *rs = &r->resp;
    loom__h2 *h = s->h;
    if (!rs->status) rs->status = 200;
    int st = rs->status < 100 || rs->status > 999 ? 500 : rs->status;
    nghttp2_nv *nv = loom__arena_alloc(&r->arena, (rs->nheaders + 4) * sizeof *nv);
    char *num = loom__arena_alloc(&r->arena, 4 + 21);
    if (!nv || !num) return -1;
    size_t n = 0;
    num[0] = (char)('0' + st / 100);
    num[1] = (char)('0' + st / 10 % 10);
    num[2] = (char)('0' + st % 10);
    nv[n++] = NV_REF(":status", 7, num, 3);
    int has_server = 0;
    for (uint32_t i = 0; i < rs->nheaders; i++) {
        const loom__header *x = &rs->headers[i];
        if (connection_specific(x->name, x->name_len)) continue;
        const char *name = lower(r, x->name, x->name_len);
        if (!name) return -1;
        if (x->name_len == 6 && memcmp(name, "server", 6) == 0) has_server = 1;
        nv[n++] = NV_REF(name, x->name_len, x->value, x->value_len);
    }
    if (!(st < 200 || st == 204 || st == 304) && s->body != H2B_STREAM) {
        /* Written backwards from the end of its 21 bytes (snprintf cost
         * as much as the rest of this function). */
        uint64_t v = rs->has_file ? rs->file_len : rs->body_len;
        char *end = num + 4 + 21, *cl = end;
        do *--cl = (char)('0' + v % 10);
        while ((v /= 10));
        nv[n++] = NV_REF("content-length", 14, cl, (size_t)(end - cl));
    }
    /* "Date: <29 bytes>\r\nServer: <name>\r\n": the values are copied by
     * nghttp2, since the line changes every second. */
    size_t dl, dsl;
    const char *ds = loom__date_server_lines(&dl, &dsl);
    nv[n++] =
        (nghttp2_nv){(uint8_t *)"date", (uint8_t *)ds + 6, 4, dl - 8, NGHTTP2_NV_FLAG_NO_COPY_NAME};
    if (!has_server)
        nv[n++] = (nghttp2_nv){(uint8_t *)"server", (uint8_t *)ds + dl + 8, 6, dsl - dl - 10,
                               NGHTTP2_NV_FLAG_NO_COPY_NAME};
    nghttp2_data_provider prd = {.source = {.ptr = s}, .read_callback = read_body};
    rs->head_sent = 1;
    s->last_out = loom__h2_now(h);
    return nghttp2_submit_response(h->ng, s->id, nv, n, body ? &prd : NULL) ? -1 : 0;
}

/* Resets a stream whose response cannot be sent (out of memory). */
static void reset(loom__h2_stream *s)
{
    nghttp2_submit_rst_stream(s->h->ng, NGHTTP2_FLAG_NONE, s->id, NGHTTP2_INTERNAL_ERROR);
}

void loom__h2_req_finish(loom_req *r)
{
    loom__h2_stream *s = r->pstream;
    loom__h2 *h = s->h;
    loom__resp *rs = &r->resp;
    if (s->orphan || s->closed || loom__h2_gone(h)) {
        if (s->orphan) h->orphans--;
        loom__h2_stream_free(s);
        return;
    }
    if (!rs->head_sent) {
        if (!rs->status) rs->status = 200;
        s->body = H2B_NONE;
        if (loom__resp_has_body(r)) {
            if (rs->has_file && rs->file_len)
                s->body = H2B_FILE;
            else if (!rs->has_file && rs->body_len)
                s->body = H2B_MEM;
        }
        r->bytes_sent =
            loom__resp_has_body(r) ? (int64_t)(rs->has_file ? rs->file_len : rs->body_len) : 0;
        if (submit(s, s->body != H2B_NONE)) reset(s);
    } else if (s->body == H2B_STREAM) {
        s->ended = 1;
        if (s->deferred) {
            s->deferred = 0;
            nghttp2_session_resume_data(h->ng, s->id);
        }
    }
    s->phase = H2S_RESPONSE;
    if (h->w->access_log) loom__access_log_write(h->w->access_log, h->c, r);
    loom__h2_schedule(h);
}

int loom__h2_req_stream_head(loom_req *r)
{
    loom__h2_stream *s = r->pstream;
    loom__h2 *h = s->h;
    if (s->orphan || s->closed || loom__h2_gone(h)) return -1;
    if (r->resp.head_sent) return 0;
    r->resp.streaming = 1;
    if (!r->resp.status) r->resp.status = 200;
    int body = loom__resp_has_body(r);
    s->body = body ? H2B_STREAM : H2B_NONE;
    if (submit(s, body)) {
        reset(s);
        return -1;
    }
    loom__h2_schedule(h);
    return 0;
}

int loom__h2_req_stream_write(loom_req *r, const void *data, size_t len)
{
    loom__h2_stream *s = r->pstream;
    loom__h2 *h = s->h;
    if (!r->resp.head_sent && loom__h2_req_stream_head(r)) return -1;
    if (s->orphan || loom__h2_gone(h)) return -1;
    /* HEAD and bodyless statuses: the pieces are not sent, as in HTTP/1.1. */
    if (s->body != H2B_STREAM || len == 0) return 0;
    if (s->closed) return -1;
    /* The write deadline counts from when data starts to wait, not from
     * the last DATA frame of a stream that was quiet for a while. */
    if (s->sbuf.len == s->soff) s->last_out = loom__h2_now(h);
    if (loom__buf_append(&s->sbuf, data, len)) return -1;
    r->bytes_sent += (int64_t)len;
    if (s->deferred) {
        s->deferred = 0;
        nghttp2_session_resume_data(h->ng, s->id);
    }
    loom__h2_schedule(h);
    return 0;
}

size_t loom__h2_req_queued(const loom_req *r)
{
    const loom__h2_stream *s = r->pstream;
    if (!s || loom__h2_gone(s->h)) return 0;
    return (s->sbuf.len - s->soff) + loom__conn_queued(s->h->c);
}

void loom__h2_respond_error(loom__h2_stream *s, int status, const char *why)
{
    loom__h2 *h = s->h;
    loom_req *r = s->r;
    char addr[64], body[256];
    if (s->phase >= H2S_HANDLER || loom__h2_gone(h)) return;
    loom__debug("HTTP/2: client %s: stream %d: %d: %s",
                loom__access_log_addr(h->c, addr, sizeof addr), s->id, status, why);
    r->resp.status = status;
    int n = snprintf(body, sizeof body, "%d %s: %s\n", status, loom__status_reason(status), why);
    if (n < 0) n = 0;
    if (n >= (int)sizeof body) n = (int)sizeof body - 1;
    loom__resp_header_add(r, "Content-Type", 12, "text/plain; charset=utf-8", 25);
    loom__resp_body_copy(r, body, (size_t)n);
    s->body = loom__resp_has_body(r) ? H2B_MEM : H2B_NONE;
    /* The client may still be sending: stop it once it has our answer. */
    s->reset_after = !nghttp2_session_get_stream_remote_close(h->ng, s->id);
    h->nreset_after += s->reset_after;
    r->bytes_sent = s->body == H2B_MEM ? n : 0;
    s->phase = H2S_RESPONSE;
    if (submit(s, s->body != H2B_NONE)) reset(s);
    loom__metrics_rejected(h->w->metrics, status);
    if (h->w->access_log) {
        if (r->method && r->target && r->target_len <= 1024) {
            loom__access_log_write(h->w->access_log, h->c, r);
        } else {
            /* What is known of the request line, as HTTP/1.1 logs an early
             * refusal: a long target cut after 1024 bytes, "-" for none. */
            char line[1200];
            int k = 0;
            if (r->method)
                k = snprintf(line, sizeof line, "%.64s %.1024s%s HTTP/2.0", r->method,
                             r->target ? r->target : "-",
                             r->target && r->target_len > 1024 ? "..." : "");
            if (k < 0) k = 0;
            if (k >= (int)sizeof line) k = (int)sizeof line - 1;
            loom__access_log_error(h->w->access_log, h->c, status, k ? line : NULL, (size_t)k);
        }
    }
    loom__h2_schedule(h);
}

int loom__h2_on_frame_send(nghttp2_session *ng, const nghttp2_frame *f, void *ud)
{
    loom__h2 *h = ud;
    if (!h->nreset_after || (f->hd.type != NGHTTP2_HEADERS && f->hd.type != NGHTTP2_DATA) ||
        !(f->hd.flags & NGHTTP2_FLAG_END_STREAM))
        return 0;
    loom__h2_stream *s = nghttp2_session_get_stream_user_data(ng, f->hd.stream_id);
    if (s && s->reset_after) {
        s->reset_after = 0;
        h->nreset_after--;
        nghttp2_submit_rst_stream(ng, NGHTTP2_FLAG_NONE, f->hd.stream_id, NGHTTP2_NO_ERROR);
    }
    return 0;
}
