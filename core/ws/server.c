/* The proto table of a WebSocket server connection. Each read is a batch:
 * replies made while its frames are read (pongs, an echo, a broadcast to
 * this connection) go out in one send at its end. */
#include "ws/server.h"
#include "server/conn.h"
#include "server/proto.h"

#include <string.h>

#define C(ws) ((loom__conn *)(ws)->io_ctx)

static loom__buf *io_outbuf(loom__ws *ws)
{
    return loom__conn_outbuf(C(ws));
}
static void io_flush(loom__ws *ws)
{
    loom__conn_flush(C(ws));
}
static size_t io_queued(loom__ws *ws)
{
    return loom__conn_queued(C(ws));
}
static void io_pause(loom__ws *ws, int on)
{
    loom__conn_pause(C(ws), on);
}
static void io_end(loom__ws *ws)
{
    loom__conn_end(C(ws));
}
static void io_abort(loom__ws *ws)
{
    loom__conn_close(C(ws));
}
static uint64_t io_now(loom__ws *ws)
{
    return uv_now(C(ws)->w->loop);
}

static const loom__ws_io server_io = {io_outbuf, io_flush, io_queued, io_pause,
                                      io_end,    io_abort, io_now};

static void on_data(loom__conn *c, const char *p, size_t n)
{
    loom__ws *ws = c->pdata;
    if (ws->opening) {
        if (loom__buf_append(&ws->msg, p, n)) loom__conn_close(c);
        return;
    }
    loom__worker *w = c->w;
    loom__conn *prev = w->batch;
    w->batch = c;
    loom__ws_feed(ws, p, n); /* may free ws (never c: its memory outlives this call) */
    w->batch = prev;
    loom__conn_flush(c);
    /* The socket took all of it at once (epoll): no write will end to say
     * so, and a pause made while the batch gathered must end here. */
    if (!c->closed && loom__conn_queued(c) == 0) loom__ws_drained(ws);
}

static void on_eof(loom__conn *c, int err)
{
    (void)err;
    loom__ws_transport_gone(c->pdata);
}

static void on_drain(loom__conn *c)
{
    loom__ws_drained(c->pdata);
}

static void on_close(loom__conn *c)
{
    loom__ws *ws = c->pdata;
    c->pdata = NULL;
    loom__ws_transport_gone(ws);
    ws->up->gone(ws);
}

static void on_sweep(loom__conn *c, uint64_t now)
{
    (void)now;
    loom__ws *ws = c->pdata;
    if (ws->up->tick) {
        ws->up->tick(ws);
        if (c->closed) return;
    }
    loom__ws_tick(ws);
}

static void on_stop(loom__conn *c)
{
    loom__ws *ws = c->pdata;
    /* Going away (RFC 6455 §7.4.1); the close handshake runs within the
     * worker's shutdown_timeout, the endpoint's own close wait first. */
    if (loom__ws_close(ws, 1001, "server stopping", 15) == LOOM__WS_OK) loom__conn_flush(c);
}

/* A WebSocket connection makes no requests: these are never called. */
static void req_finish(loom_req *r)
{
    r->conn = NULL;
    loom__req_finish(r);
}
static int req_stream_head(loom_req *r)
{
    (void)r;
    return -1;
}
static int req_stream_write(loom_req *r, const void *data, size_t len)
{
    (void)r;
    (void)data;
    (void)len;
    return -1;
}

static const loom__proto ws_proto = {
    .name = "websocket",
    .on_data = on_data,
    .on_eof = on_eof,
    .on_drain = on_drain,
    .on_close = on_close,
    .on_sweep = on_sweep,
    .on_stop = on_stop,
    .req_finish = req_finish,
    .req_stream_head = req_stream_head,
    .req_stream_write = req_stream_write,
    /* no requests of its own: req_queued stays NULL */
};

void loom__ws_server_start(loom__conn *c, loom__ws *ws)
{
    ws->io = &server_io;
    ws->io_ctx = c;
    ws->last_rx = uv_now(c->w->loop);
    ws->opening = 1;
    loom__conn_set_proto(c, &ws_proto, ws);
    loom__conn_pause(c, 0); /* a pipelining pause of HTTP/1.1 ends here */
}

void loom__ws_server_opened(loom__ws *ws)
{
    if (!ws->opening) return;
    ws->opening = 0;
    if (ws->io_gone || !ws->msg.len) return;
    loom__buf early = ws->msg;
    memset(&ws->msg, 0, sizeof ws->msg);
    loom__conn *c = C(ws);
    on_data(c, early.data, early.len);
    loom__buf_free(&early);
}
