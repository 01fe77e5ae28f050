/* An HTTP/2 connection: nghttp2 as a server over a loom connection, the
 * protocol table conn.c calls (server/proto.h), and sending.
 *
 * Receiving: every byte the connection reads goes to
 * nghttp2_session_mem_recv; its callbacks (stream.c) build the requests and
 * hand them to the worker's handler, which may answer at once. Nothing is
 * sent from inside: nghttp2 forbids it, and waiting lets all the streams
 * answered by one read share one write.
 *
 * Sending: nghttp2_session_send serialises frames into the connection's
 * send buffer (send_cb; DATA frames through respond.c's send callback,
 * which copies a body from where it lies, or reads a file straight there),
 * then the connection writes it. Frames are produced at the end of each
 * read (conn.c holds the write until the whole read is taken, TLS records
 * included), when a write completed (on_drain: flow control, big bodies),
 * and, for answers given later (timers, the thread pool, the client), once
 * at the end of the loop turn: a uv_check, with a uv_idle so that the loop
 * does not block before the check runs. Past LOOM__H2_HIGH_WATER queued
 * bytes nghttp2 waits for the socket, so a large body never sits in memory
 * whole and a client that does not read holds a bounded amount. */
#include "http2/h2.h"
#include "server/access_log.h"
#include "util/log.h"

#include <stdlib.h>
#include <string.h>

uint64_t loom__h2_now(const loom__h2 *h)
{
    return uv_now(h->w->loop);
}

static ssize_t send_cb(nghttp2_session *ng, const uint8_t *data, size_t len, int flags, void *ud)
{
    loom__h2 *h = ud;
    (void)ng;
    (void)flags;
    if (loom__conn_queued(h->c) >= LOOM__H2_HIGH_WATER) return NGHTTP2_ERR_WOULDBLOCK;
    if (loom__buf_append(loom__conn_outbuf(h->c), data, len)) return NGHTTP2_ERR_CALLBACK_FAILURE;
    return (ssize_t)len;
}

static int error_cb(nghttp2_session *ng, int code, const char *msg, size_t len, void *ud)
{
    loom__h2 *h = ud;
    char addr[64];
    (void)ng;
    loom__debug("HTTP/2: client %s: %.*s (%s)", loom__access_log_addr(h->c, addr, sizeof addr),
                (int)len, msg, nghttp2_strerror(code));
    return 0;
}

/* Callbacks and options are the same for every connection: made once per
 * process (nghttp2 copies them into each session). */
static nghttp2_session_callbacks *callbacks;
static nghttp2_option *options;

static int setup(void)
{
    if (callbacks) return 0;
    nghttp2_session_callbacks *cb;
    nghttp2_option *opt;
    if (nghttp2_session_callbacks_new(&cb)) return -1;
    if (nghttp2_option_new(&opt)) {
        nghttp2_session_callbacks_del(cb);
        return -1;
    }
    nghttp2_session_callbacks_set_send_callback(cb, send_cb);
    nghttp2_session_callbacks_set_send_data_callback(cb, loom__h2_send_data);
    nghttp2_session_callbacks_set_on_begin_frame_callback(cb, loom__h2_on_begin_frame);
    nghttp2_session_callbacks_set_on_begin_headers_callback(cb, loom__h2_on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(cb, loom__h2_on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, loom__h2_on_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, loom__h2_on_data_chunk);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, loom__h2_on_stream_close);
    nghttp2_session_callbacks_set_on_frame_send_callback(cb, loom__h2_on_frame_send);
    nghttp2_session_callbacks_set_error_callback2(cb, error_cb);
    /* Closed streams are not kept for a priority tree (we announce
     * SETTINGS_NO_RFC7540_PRIORITIES). */
    nghttp2_option_set_no_closed_streams(opt, 1);
    nghttp2_option_set_max_outbound_ack(opt, LOOM__H2_MAX_OUTBOUND_ACK);
    nghttp2_option_set_max_continuations(opt, LOOM__H2_MAX_CONTINUATIONS);
    /* Our own reset limit (defence.c) answers ENHANCE_YOUR_CALM first;
     * nghttp2's, looser, stays as a backstop. */
    nghttp2_option_set_stream_reset_rate_limit(opt, 4000, 1000);
    /* The encoder's table: 4 KiB holds a response's repeated fields
     * (content-type, server, date, cache headers) many times over. */
    nghttp2_option_set_max_deflate_dynamic_table_size(opt, 4096);
    callbacks = cb;
    options = opt;
    return 0;
}

/* ---- sending ---- */

static void on_check(uv_check_t *t)
{
    loom__h2 *h = t->data;
    uv_check_stop(&h->check);
    uv_idle_stop(&h->idle);
    h->scheduled = 0;
    loom__h2_pump(h);
}

static void on_idle(uv_idle_t *t)
{
    (void)t; /* it exists so that the loop does not wait before the check */
}

void loom__h2_schedule(loom__h2 *h)
{
    /* Inside a read or a send, its end sends. */
    if (h->dead || h->scheduled || h->in_recv || h->sending) return;
    h->scheduled = 1;
    uv_check_start(&h->check, on_check);
    uv_idle_start(&h->idle, on_idle);
}

/* Sending several times the high-water mark in one turn is enough: the
 * rest waits for the next turn, so that other connections get theirs. */
#define PUMP_ROUNDS 32

void loom__h2_pump(loom__h2 *h)
{
    if (h->dead || h->sending || h->in_recv || !h->ng) return;
    loom__conn *c = h->c;
    for (int i = 0;; i++) {
        h->sending = 1;
        int rv = nghttp2_session_send(h->ng);
        h->sending = 0;
        if (h->dead) return;
        if (rv) {
            loom__h2_fail(h, NGHTTP2_INTERNAL_ERROR, nghttp2_strerror(rv));
            return;
        }
        loom__conn_flush(c);
        if (h->dead) return;
        /* When the socket took everything there is no write whose end
         * would call us again. */
        if (!nghttp2_session_want_write(h->ng) || loom__conn_queued(c) >= LOOM__H2_HIGH_WATER)
            break;
        if (i == PUMP_ROUNDS) {
            loom__h2_schedule(h);
            return;
        }
    }
    if (!nghttp2_session_want_read(h->ng) && !nghttp2_session_want_write(h->ng)) loom__conn_end(c);
}

void loom__h2_fail(loom__h2 *h, uint32_t code, const char *why)
{
    char addr[64];
    if (h->dead || !h->ng) return;
    int32_t last = nghttp2_session_get_last_proc_stream_id(h->ng);
    loom__info("HTTP/2: client %s: %s: GOAWAY %s", loom__access_log_addr(h->c, addr, sizeof addr),
               why, nghttp2_http2_strerror(code));
    /* nghttp2 must not be used again; the bytes so far end on a frame
     * boundary (every frame is written whole), so a GOAWAY can follow. */
    nghttp2_session_del(h->ng);
    h->ng = NULL;
    uint8_t f[17] = {0, 0, 8, NGHTTP2_GOAWAY, 0, 0, 0, 0, 0};
    f[9] = (uint8_t)((uint32_t)last >> 24 & 0x7f);
    f[10] = (uint8_t)(last >> 16);
    f[11] = (uint8_t)(last >> 8);
    f[12] = (uint8_t)last;
    f[13] = (uint8_t)(code >> 24);
    f[14] = (uint8_t)(code >> 16);
    f[15] = (uint8_t)(code >> 8);
    f[16] = (uint8_t)code;
    loom__buf_append(loom__conn_outbuf(h->c), f, sizeof f);
    loom__conn_end(h->c);
}

/* ---- the protocol table ---- */

static uint32_t fatal_code(ssize_t rv)
{
    switch (rv) {
    case NGHTTP2_ERR_FLOODED:
    case NGHTTP2_ERR_TOO_MANY_CONTINUATIONS:
        return NGHTTP2_ENHANCE_YOUR_CALM;
    case NGHTTP2_ERR_NOMEM:
    case NGHTTP2_ERR_CALLBACK_FAILURE:
        return NGHTTP2_INTERNAL_ERROR;
    default:
        return NGHTTP2_PROTOCOL_ERROR;
    }
}

static void h2_data(loom__conn *c, const char *p, size_t n)
{
    loom__h2 *h = c->pdata;
    if (h->dead || !h->ng) return;
    h->in_recv = 1;
    ssize_t rv = nghttp2_session_mem_recv(h->ng, (const uint8_t *)p, n);
    h->in_recv = 0;
    if (h->dead) return;
    if (rv < 0) {
        loom__h2_fail(h, fatal_code(rv), nghttp2_strerror((int)rv));
        return;
    }
    loom__h2_pump(h);
}

static void h2_eof(loom__conn *c, int err)
{
    loom__h2 *h = c->pdata;
    char addr[64];
    uint32_t open = h->nstreams - h->orphans;
    if (open)
        loom__info("client %s %s with %u HTTP/2 stream%s open",
                   loom__access_log_addr(c, addr, sizeof addr),
                   err == UV_EOF ? "closed the connection" : "lost the connection", open,
                   open == 1 ? "" : "s");
}

static void h2_drain(loom__conn *c)
{
    loom__h2 *h = c->pdata;
    if (h->dead || !h->ng) return;
    loom__h2_pump(h);
}

static void handle_closed(uv_handle_t *hd)
{
    loom__h2 *h = hd->data;
    if (--h->handles == 0) free(h);
}

static void h2_close(loom__conn *c)
{
    loom__h2 *h = c->pdata;
    h->dead = 1;
    loom__h2_streams_close(h);
    if (h->ng) nghttp2_session_del(h->ng);
    h->ng = NULL;
    c->pdata = NULL;
    uv_close((uv_handle_t *)&h->check, handle_closed);
    uv_close((uv_handle_t *)&h->idle, handle_closed);
}

static void h2_sweep(loom__conn *c, uint64_t now)
{
    loom__h2 *h = c->pdata;
    const loom__config *cfg = h->w->cfg;
    if (h->dead || !h->ng) return;
    loom__h2_streams_sweep(h, now);
    if (h->dead || !h->ng || h->stopping || h->calm || h->nstreams > h->orphans) return;
    /* No stream: the header deadline until the first request, then the
     * keep-alive one, as for HTTP/1.1. */
    uint64_t end =
        h->nreq == 0 ? h->started + cfg->header_timeout : h->last_active + cfg->keepalive_timeout;
    if (now < end || loom__conn_queued(c)) return;
    char addr[64];
    loom__debug("HTTP/2: client %s idle: GOAWAY", loom__access_log_addr(c, addr, sizeof addr));
    h->stopping = 1;
    nghttp2_submit_goaway(h->ng, NGHTTP2_FLAG_NONE, nghttp2_session_get_last_proc_stream_id(h->ng),
                          NGHTTP2_NO_ERROR, NULL, 0);
    loom__h2_pump(h);
}

/* A graceful stop (or a worker's reload): GOAWAY with the last stream
 * taken; the streams up to it finish, then the connection ends. */
static void h2_stop(loom__conn *c)
{
    loom__h2 *h = c->pdata;
    if (h->dead || !h->ng) return;
    if (!h->stopping && !h->calm) {
        h->stopping = 1;
        nghttp2_submit_goaway(h->ng, NGHTTP2_FLAG_NONE,
                              nghttp2_session_get_last_proc_stream_id(h->ng), NGHTTP2_NO_ERROR,
                              NULL, 0);
    }
    loom__h2_pump(h);
}

static const loom__proto h2_proto = {
    .name = "h2",
    .on_data = h2_data,
    .on_eof = h2_eof,
    .on_drain = h2_drain,
    .on_close = h2_close,
    .on_sweep = h2_sweep,
    .on_stop = h2_stop,
    .req_finish = loom__h2_req_finish,
    .req_stream_head = loom__h2_req_stream_head,
    .req_stream_write = loom__h2_req_stream_write,
    .req_queued = loom__h2_req_queued,
};

/* ALPN chose h2, or the h2c preface came: the connection is ours. On
 * failure (out of memory) it stays HTTP/1.1, which refuses the preface. */
static void h2_start(loom__conn *c)
{
    loom__worker *w = c->w;
    loom__h2 *h = calloc(1, sizeof *h);
    if (!h || setup() ||
        nghttp2_session_server_new3(&h->ng, callbacks, h, options, loom__h2_mem())) {
        loom__warn("HTTP/2: cannot start a session (out of memory)");
        free(h);
        return;
    }
    h->c = c;
    h->w = w;
    h->max_streams = (uint32_t)w->cfg->http2_max_streams;
    h->started = h->last_active = uv_now(w->loop);
    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, h->max_streams},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, LOOM__H2_HEADER_LIST},
        {NGHTTP2_SETTINGS_NO_RFC7540_PRIORITIES, 1},
    };
    nghttp2_submit_settings(h->ng, NGHTTP2_FLAG_NONE, iv, sizeof iv / sizeof iv[0]);
    uv_check_init(w->loop, &h->check);
    uv_idle_init(w->loop, &h->idle);
    h->check.data = h->idle.data = h;
    h->handles = 2;
    loom__conn_set_proto(c, &h2_proto, h);
    /* The server preface goes out with the answers to the first read, or
     * at the end of this turn if none comes with it. */
    loom__h2_schedule(h);
}

void (*loom__proto_h2_start)(loom__conn *c) = h2_start;
