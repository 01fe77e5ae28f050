/* <loom/client.h>'s WebSocket: an endpoint on a client transport
 * (client/ws.h), reporting through the caller's callbacks. on_close waits
 * for the transport to be gone, so the handle is never used after it. */
#include "client/client_int.h"
#include "client/ws.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct loom_client_ws {
    loom__ws e; /* first: the endpoint's callbacks get &e */
    loom_client_ws_opts o;
    char *protocol;
    int code; /* for on_close */
    char reason[LOOM__WS_CONTROL_MAX];
    size_t rlen;
    int cancelled; /* closed by the caller before it opened */
    int is_open;   /* the handshake succeeded */
};

#define CW(e) ((loom_client_ws *)(e))

static void up_message(loom__ws *e, int type, const char *p, size_t n)
{
    loom_client_ws *ws = CW(e);
    if (ws->o.on_message) ws->o.on_message(ws, type, p, n, ws->o.ud);
}

static void up_error(loom__ws *e, int code, const char *msg)
{
    loom_client_ws *ws = CW(e);
    if (ws->o.on_error) ws->o.on_error(ws, code, msg, ws->o.ud);
}

static void up_closed(loom__ws *e, int code, const char *reason, size_t n)
{
    loom_client_ws *ws = CW(e);
    ws->code = code;
    ws->rlen = n < sizeof ws->reason ? n : sizeof ws->reason - 1;
    memcpy(ws->reason, reason, ws->rlen);
    ws->reason[ws->rlen] = '\0';
}

static void up_drained(loom__ws *e)
{
    loom_client_ws *ws = CW(e);
    if (ws->o.on_drain) ws->o.on_drain(ws, ws->o.ud);
}

static void up_release(loom__ws *e)
{
    loom_client_ws *ws = CW(e);
    free(ws->protocol);
    free(ws);
}

static void up_gone(loom__ws *e)
{
    loom_client_ws *ws = CW(e);
    if (ws->cancelled && ws->o.on_error)
        ws->o.on_error(ws, LOOM_CLIENT_E_CANCELLED, "cancelled before the WebSocket opened",
                       ws->o.ud);
    if (ws->o.on_close) ws->o.on_close(ws, ws->code, ws->reason, ws->rlen, ws->o.ud);
    if (loom__ws_release(e)) up_release(e);
}

static const loom__ws_up client_up = {up_message, up_error, up_closed, up_drained,
                                      up_release, up_gone,  NULL};

static void opened(loom__ws *e, const char *protocol)
{
    loom_client_ws *ws = CW(e);
    ws->protocol = protocol ? strdup(protocol) : NULL;
    ws->is_open = 1;
    if (ws->o.on_open) ws->o.on_open(ws, ws->o.ud);
}

static void failed(loom__ws *e, int code, const char *msg)
{
    up_error(e, code, msg);
}

static uint64_t ms(double s, uint64_t def)
{
    if (s < 0) return 0;
    return s > 0 ? (uint64_t)(s * 1000.0 + 0.5) : def;
}

loom_client_ws *loom_client_ws_connect(loom_client *client, const char *url,
                                       const loom_client_ws_opts *opts, char *err, size_t errlen)
{
    static const loom_client_ws_opts none;
    char why[256];
    if (!opts) opts = &none;
    loom_client_ws *ws = calloc(1, sizeof *ws);
    if (!ws) {
        if (err && errlen) snprintf(err, errlen, "out of memory");
        return NULL;
    }
    ws->o = *opts;
    ws->code = 1006;
    loom__wsc_opts o;
    memset(&o, 0, sizeof o);
    o.url = url;
    o.headers = opts->headers;
    o.nheaders = opts->nheaders;
    o.protocols = opts->protocols;
    o.origin = opts->origin;
    o.pmd.enabled = opts->deflate != 0;
    o.pmd.takeover = opts->deflate_takeover != 0;
    o.timeout_ms = ms(opts->timeout, 30000);
    o.opened = opened;
    o.failed = failed;
    if (loom__wsc_start(client, &ws->e, &client_up, &o, why, sizeof why)) {
        if (err && errlen) snprintf(err, errlen, "%s", why);
        free(ws);
        return NULL;
    }
    ws->e.heartbeat = (uint32_t)ms(opts->heartbeat, 0);
    ws->e.close_wait = (uint32_t)ms(opts->close_timeout, 5000);
    if (opts->max_msg_size) ws->e.max_msg = opts->max_msg_size;
    if (opts->send_queue_limit) ws->e.send_limit = opts->send_queue_limit;
    return ws;
}

static int opened_now(const loom_client_ws *ws)
{
    /* While connecting the endpoint says OPEN, but nothing may be sent. */
    return ws->is_open && ws->e.st == LOOM__WS_OPEN && !ws->e.io_gone;
}

int loom_client_ws_send(loom_client_ws *ws, int type, const void *data, size_t len)
{
    if (!ws) return LOOM_CLIENT_WS_EINVAL;
    if (!opened_now(ws)) return LOOM_CLIENT_WS_ESTATE;
    return loom__ws_send(&ws->e, type, data, len);
}

int loom_client_ws_close(loom_client_ws *ws, int code, const char *reason)
{
    if (!ws) return LOOM_CLIENT_WS_EINVAL;
    if (ws->e.st == LOOM__WS_OPEN && !opened_now(ws)) {
        if (ws->cancelled) return LOOM_CLIENT_WS_ESTATE;
        ws->cancelled = 1;
        loom__wsc_cancel(&ws->e);
        return 0;
    }
    return loom__ws_close(&ws->e, code, reason, reason ? strlen(reason) : 0);
}

const char *loom_client_ws_protocol(const loom_client_ws *ws)
{
    return ws ? ws->protocol : NULL;
}

size_t loom_client_ws_queued(const loom_client_ws *ws)
{
    return ws && ws->e.io_ctx && !ws->e.io_gone ? ws->e.io->queued((loom__ws *)&ws->e) : 0;
}

int loom_client_ws_deflate(const loom_client_ws *ws)
{
    return ws && ws->e.pmd.on;
}
