/* WebSocket for plugins (ABI 1.2): the handshake of loom_ws_accept, the
 * handles, channels, and the rules that keep plugin code safe.
 *
 * Safety: on_close is never called from inside a loom_ws_* call or a
 * broadcast. A connection can end in the middle of one (a send that fails
 * closes it at once on the epoll backend), and a plugin that frees its state
 * in on_close while its own loop over connections is still running would
 * crash; so the end is queued and reported from the loop (a 0 ms timer),
 * and so is a broadcast dropped for a full queue. Until then sends fail with
 * LOOM_ESTATE and broadcasts skip the connection.
 *
 * Reload: an accepted connection pins the snapshot its request ran on, so
 * the plugin that owns it stays loaded; each sweep it checks whether its
 * plugin is still current (then it moves to the current snapshot, freeing
 * the old one) or was replaced (then, after ws_drain_timeout, 1001). */
#include "client/ws.h"
#include "http/response.h"
#include "plugin/host.h"
#include "pubsub/pubsub.h"
#include "server/conn.h"
#include "util/log.h"
#include "ws/handshake.h"
#include "ws/server.h"
#include "ws/utf8.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { K_SERVER, K_CLIENT };

typedef struct wsub {
    loom__sub s; /* s.onext: the connection's list */
    size_t len;
    char name[];
} wsub;

struct loom_ws {
    loom__ws e; /* first: the endpoint's callbacks get &e */
    loom_plugin *owner;
    loom__host *host;
    loom__snapshot *snap; /* server: pinned while the connection lives */
    loom_ws_open_fn on_open;
    loom_ws_message_fn on_message;
    loom_ws_close_fn on_close;
    loom_ws_error_fn on_error;
    loom_ws_drain_fn on_drain;
    void *ud, *user;
    char *protocol;
    loom__sub *subs;
    struct loom_ws *next, *prev; /* every connection of this worker */
    struct loom_ws *pnext;       /* queued for the loop (on_close, drops) */
    char *reason;
    uint64_t retired_at;
    uint32_t dropped; /* broadcasts dropped since on_error last said so */
    uint16_t code;
    uint16_t rlen;
    uint8_t kind, opened, pending, closed_seen, close_done, gone;
};

#define WS(e) ((loom_ws *)(e))

static _Thread_local struct {
    loom_ws *all;
    loom_ws *ph, *pt; /* queued */
    uv_timer_t *timer;
    size_t n;
} st;

static void process_pending(uv_timer_t *t);

/* ---- lifetime ---- */

static void ws_free(loom_ws *ws)
{
    if (ws->prev)
        ws->prev->next = ws->next;
    else if (st.all == ws)
        st.all = ws->next;
    if (ws->next) ws->next->prev = ws->prev;
    st.n--;
    free(ws->protocol);
    free(ws->reason);
    free(ws);
}

static void maybe_free(loom_ws *ws)
{
    if (ws->gone && ws->close_done && !ws->pending && loom__ws_release(&ws->e)) ws_free(ws);
}

static void leave_channels(loom_ws *ws);

static void enqueue(loom_ws *ws)
{
    if (ws->pending) return;
    if (!st.timer) {
        /* The host stopped (its plugins are gone): nothing is reported, the
         * connection is only freed. */
        leave_channels(ws);
        ws->close_done = 1;
        maybe_free(ws);
        return;
    }
    ws->pending = 1;
    ws->pnext = NULL;
    if (st.pt)
        st.pt->pnext = ws;
    else
        st.ph = ws;
    st.pt = ws;
    if (st.timer) uv_timer_start(st.timer, process_pending, 0, 0);
}

static void leave_channels(loom_ws *ws)
{
    while (ws->subs) {
        wsub *s = (wsub *)ws->subs;
        ws->subs = s->s.onext;
        loom__pubsub_unsubscribe(&s->s);
        free(s);
    }
}

/* Reports what is queued for one connection, from the loop. */
static void report(loom_ws *ws)
{
    if (ws->close_done) return;
    if (ws->dropped) {
        char m[128];
        snprintf(m, sizeof m, "%u broadcast message%s dropped: the send queue was full",
                 ws->dropped, ws->dropped == 1 ? "" : "s");
        ws->dropped = 0;
        if (ws->on_error) ws->on_error(ws, LOOM_ELIMIT, m, ws->ud);
    }
    if (!ws->closed_seen) return;
    leave_channels(ws);
    ws->close_done = 1;
    if (ws->on_close) ws->on_close(ws, ws->code, ws->reason ? ws->reason : "", ws->rlen, ws->ud);
    /* No plugin code runs for this connection from now on. */
    if (ws->snap) {
        loom__snapshot *s = ws->snap;
        ws->snap = NULL;
        loom__snapshot_unref(ws->host, s);
    }
}

static void process_pending(uv_timer_t *t)
{
    (void)t;
    while (st.ph) {
        loom_ws *ws = st.ph;
        st.ph = ws->pnext;
        if (!st.ph) st.pt = NULL;
        ws->pending = 0;
        report(ws);
        maybe_free(ws);
    }
}

static int ensure_timer(uv_loop_t *loop)
{
    if (st.timer) return 0;
    st.timer = malloc(sizeof *st.timer);
    if (!st.timer) return -1;
    uv_timer_init(loop, st.timer);
    return 0;
}

static void free_handle(uv_handle_t *h)
{
    free(h);
}

void loom__ws_host_stop(loom__host *h)
{
    (void)h;
    process_pending(NULL);
    if (st.timer) uv_close((uv_handle_t *)st.timer, free_handle);
    st.timer = NULL;
}

void loom__ws_plugin_unload(loom_plugin *p)
{
    for (loom_ws *ws = st.all, *next; ws; ws = next) {
        next = ws->next;
        if (ws->owner != p || ws->close_done) continue;
        /* A client connection of a plugin that goes: closed without a
         * word, like its fetches. */
        leave_channels(ws);
        ws->close_done = 1;
        if (ws->kind == K_CLIENT && !ws->gone) loom__wsc_cancel(&ws->e);
        maybe_free(ws);
    }
}

/* ---- what the endpoint tells ---- */

static void up_message(loom__ws *e, int type, const char *p, size_t n)
{
    loom_ws *ws = WS(e);
    if (!ws->close_done && !ws->closed_seen && ws->on_message)
        ws->on_message(ws, type, p, n, ws->ud);
}

static void up_error(loom__ws *e, int code, const char *msg)
{
    loom_ws *ws = WS(e);
    if (!ws->close_done && ws->on_error) ws->on_error(ws, code, msg, ws->ud);
}

static void up_closed(loom__ws *e, int code, const char *reason, size_t n)
{
    loom_ws *ws = WS(e);
    if (ws->closed_seen) return;
    ws->closed_seen = 1;
    ws->code = (uint16_t)code;
    free(ws->reason);
    ws->reason = n ? strndup(reason, n) : NULL;
    ws->rlen = ws->reason ? (uint16_t)n : 0;
    enqueue(ws);
}

static void up_drained(loom__ws *e)
{
    loom_ws *ws = WS(e);
    if (!ws->close_done && ws->on_drain) ws->on_drain(ws, ws->ud);
}

static void up_release(loom__ws *e)
{
    ws_free(WS(e));
}

static void up_gone(loom__ws *e)
{
    loom_ws *ws = WS(e);
    ws->gone = 1;
    maybe_free(ws);
}

static int owns(const loom__snapshot *s, const loom_plugin *p)
{
    for (size_t i = 0; i < s->nplugins; i++)
        if (s->plugins[i] == p) return 1;
    return 0;
}

/* Each sweep: the reload rule (see the top of the file). */
static void up_tick(loom__ws *e)
{
    loom_ws *ws = WS(e);
    loom__host *h = ws->host;
    if (!ws->snap || !h->current || ws->snap == h->current || e->st != LOOM__WS_OPEN) return;
    if (!ws->retired_at) {
        if (owns(h->current, ws->owner)) {
            loom__snapshot *old = ws->snap;
            ws->snap = h->current;
            loom__snapshot_ref(ws->snap);
            loom__snapshot_unref(h, old);
            return;
        }
        uint64_t now = uv_now(h->loop);
        ws->retired_at = now ? now : 1;
    }
    if (uv_now(h->loop) - ws->retired_at >= h->cfg->ws_drain_timeout) {
        loom__debug("plugin %s: a WebSocket of the replaced version closes (ws_drain_timeout)",
                    ws->owner->name);
        loom__ws_close(e, LOOM_WS_GOING_AWAY, "going away: plugin replaced", 27);
    }
}

static const loom__ws_up plugin_up = {up_message, up_error, up_closed, up_drained,
                                      up_release, up_gone,  up_tick};

/* ---- accept ---- */

static loom_ws *ws_new(loom_plugin *self, const loom_ws_opts *o, int kind)
{
    loom_ws *ws = calloc(1, sizeof *ws);
    if (!ws) return NULL;
    if (ensure_timer(self->host->loop)) {
        free(ws);
        return NULL;
    }
    ws->kind = (uint8_t)kind;
    ws->owner = self;
    ws->host = self->host;
    ws->on_open = o->on_open;
    ws->on_message = o->on_message;
    ws->on_close = o->on_close;
    ws->on_error = o->on_error;
    ws->on_drain = o->on_drain;
    ws->ud = o->ud;
    ws->code = LOOM_WS_ABNORMAL;
    ws->next = st.all;
    if (st.all) st.all->prev = ws;
    st.all = ws;
    st.n++;
    return ws;
}

static void settings(loom_ws *ws, const loom_ws_opts *o)
{
    loom__ws *e = &ws->e;
    if (o->max_msg_size) e->max_msg = o->max_msg_size;
    if (o->send_queue_limit) e->send_limit = o->send_queue_limit;
    e->heartbeat = o->heartbeat_ms;
    if (o->close_timeout_ms) e->close_wait = o->close_timeout_ms;
}

static int copy_opts(const loom_ws_opts *in, loom_ws_opts *o)
{
    memset(o, 0, sizeof *o);
    if (!in || in->size < offsetof(loom_ws_opts, ud)) return -1;
    memcpy(o, in, in->size < sizeof *o ? in->size : sizeof *o);
    return o->deflate_window_bits && (o->deflate_window_bits < 9 || o->deflate_window_bits > 15)
               ? -1
               : 0;
}

/* The header's values, joined with commas (they may come in several lines). */
static const char *joined(loom_req *r, const char *name, size_t *len)
{
    size_t nl = strlen(name), total = 0, count = 0;
    const char *one = NULL;
    for (uint32_t i = 0; i < r->nheaders; i++) {
        loom__header *h = &r->headers[i];
        if (h->name_len != nl || !loom__strncaseeq(h->name, name, nl)) continue;
        one = h->value;
        *len = h->value_len;
        total += h->value_len + 2;
        count++;
    }
    if (count <= 1) return one;
    char *out = loom__arena_alloc(&r->arena, total + 1);
    if (!out) return NULL;
    size_t o = 0;
    for (uint32_t i = 0; i < r->nheaders; i++) {
        loom__header *h = &r->headers[i];
        if (h->name_len != nl || !loom__strncaseeq(h->name, name, nl)) continue;
        if (o) out[o++] = ',';
        memcpy(out + o, h->value, h->value_len);
        o += h->value_len;
    }
    out[o] = '\0';
    *len = o;
    return out;
}

static size_t count(loom_req *r, const char *name)
{
    size_t nl = strlen(name), c = 0;
    for (uint32_t i = 0; i < r->nheaders; i++)
        c += r->headers[i].name_len == nl && loom__strncaseeq(r->headers[i].name, name, nl);
    return c;
}

static int origin_allowed(loom_req *r, const char *allowed)
{
    size_t ol = 0, hl = 0;
    const char *origin = loom__req_header(r, "origin", 6, &ol);
    if (!allowed || !origin) return 1;
    while (ol && origin[ol - 1] == '/') ol--;
    if (strcmp(allowed, "*") == 0) return 1;
    if (strcmp(allowed, "same") == 0) {
        const char *host = loom__req_header(r, "host", 4, &hl);
        const char *sep = memmem(origin, ol, "://", 3);
        if (!host || !sep) return 0;
        const char *auth = sep + 3;
        size_t al = ol - (size_t)(auth - origin);
        return al == hl && loom__strncaseeq(auth, host, al);
    }
    char buf[512];
    if (ol >= sizeof buf) return 0;
    memcpy(buf, origin, ol);
    buf[ol] = '\0';
    return loom__ws_list_has(allowed, strlen(allowed), buf);
}

/* The connection has switched (c), or will not (NULL). */
static void take_over(loom__conn *c, void *arg)
{
    loom_ws *ws = arg;
    if (!c) {
        ws->gone = 1;
        up_closed(&ws->e, LOOM_WS_ABNORMAL, "the connection ended before the WebSocket opened", 48);
        return;
    }
    loom__ws_server_start(c, &ws->e);
    ws->opened = 1;
    if (ws->on_open && !ws->closed_seen) ws->on_open(ws, ws->ud);
    loom__ws_server_opened(&ws->e);
}

static int32_t refuse(loom_req *r, int status, const char *why)
{
    loom__dispatch_error(r, status, why);
    return LOOM_EBADREQ;
}

int32_t loom__api_ws_accept(loom_plugin *self, loom_req *r, const loom_ws_opts *in, loom_ws **out)
{
    loom_ws_opts o;
    if (out) *out = NULL;
    if (!self || !r || copy_opts(in, &o)) return LOOM_EINVAL;
    loom__rctx *x = r->host_data;
    if (!x || x->responded || r->resp.head_sent) return LOOM_ESTATE;
    if (x->aborted) {
        loom__dispatch_respond(r);
        return LOOM_EBADREQ;
    }
    size_t n = 0, kl = 0;
    if (r->conn && r->conn->proto) return refuse(r, 400, "WebSocket needs an HTTP/1.1 connection");
    if (r->method_id != 1 /* GET */) return refuse(r, 400, "WebSocket handshake: not a GET");
    if (r->http_minor != 1) return refuse(r, 400, "WebSocket handshake: not HTTP/1.1");
    if ((r->has_content_length && r->content_length) || r->chunked)
        return refuse(r, 400, "WebSocket handshake: a request with a body");
    const char *v = joined(r, "upgrade", &n);
    if (!v || !loom__ws_list_has(v, n, "websocket"))
        return refuse(r, 400, "WebSocket handshake: no \"Upgrade: websocket\"");
    v = joined(r, "connection", &n);
    if (!v || !loom__ws_list_has(v, n, "upgrade"))
        return refuse(r, 400, "WebSocket handshake: no \"Connection: Upgrade\"");
    v = loom__req_header(r, "sec-websocket-version", 21, &n);
    if (!v || n != 2 || memcmp(v, "13", 2) != 0 || count(r, "sec-websocket-version") != 1) {
        loom__resp_header_set(r, "Sec-WebSocket-Version", 21, "13", 2);
        return refuse(r, 426, "WebSocket version 13 only");
    }
    const char *key = loom__req_header(r, "sec-websocket-key", 17, &kl);
    if (!key || !loom__ws_key_valid(key, kl) || count(r, "sec-websocket-key") != 1)
        return refuse(r, 400, "WebSocket handshake: a missing or malformed Sec-WebSocket-Key");
    loom__worker *w = loom__req_worker(r);
    if (!w || w->draining) return refuse(r, 503, "the server is stopping");
    if (!origin_allowed(r, o.allowed_origins))
        return refuse(r, 403, "WebSocket from this origin not allowed");
    char accept[29];
    if (loom__ws_accept_value(key, kl, accept)) return refuse(r, 500, "Internal Server Error");
    loom_ws *ws = ws_new(self, &o, K_SERVER);
    if (!ws) return refuse(r, 500, "Internal Server Error");
    loom__ws_init(&ws->e, NULL, &plugin_up, 0);
    settings(ws, &o);
    char proto[256];
    v = joined(r, "sec-websocket-protocol", &n);
    if (v && o.protocols && loom__ws_pick_protocol(v, n, o.protocols, proto, sizeof proto))
        ws->protocol = strdup(proto);
    char ext[200];
    loom__ws_pmd_cfg pc = {(o.flags & LOOM_WS_DEFLATE) != 0,
                           (o.flags & LOOM_WS_DEFLATE_TAKEOVER) != 0,
                           (uint8_t)o.deflate_window_bits};
    v = joined(r, "sec-websocket-extensions", &n);
    int pmd = v && loom__ws_pmd_accept(v, n, &pc, &ws->e.pmd, ext, sizeof ext);
    r->resp.status = 101;
    loom__resp_header_set(r, "Upgrade", 7, "websocket", 9);
    loom__resp_header_set(r, "Sec-WebSocket-Accept", 20, accept, 28);
    if (ws->protocol)
        loom__resp_header_set(r, "Sec-WebSocket-Protocol", 22, ws->protocol, strlen(ws->protocol));
    if (pmd) loom__resp_header_set(r, "Sec-WebSocket-Extensions", 24, ext, strlen(ext));
    ws->snap = x->snap;
    loom__snapshot_ref(ws->snap);
    r->resp.close = 0;
    r->take_over = take_over;
    r->take_over_arg = ws;
    if (out) *out = ws;
    loom__dispatch_respond(r);
    return LOOM_OK;
}

/* ---- calls on a connection ---- */

static int usable(const loom_ws *ws)
{
    return ws && ws->opened && !ws->closed_seen && !ws->close_done;
}

int32_t loom__api_ws_send(loom_ws *ws, int32_t type, const void *data, size_t len)
{
    if (!ws) return LOOM_EINVAL;
    if (!usable(ws)) return LOOM_ESTATE;
    return loom__ws_send(&ws->e, type, data, len);
}

int32_t loom__api_ws_close(loom_ws *ws, int32_t code, const char *reason)
{
    if (!ws) return LOOM_EINVAL;
    if (ws->kind == K_CLIENT && !ws->opened && !ws->closed_seen && !ws->close_done) {
        /* Still connecting: give it up. */
        loom__wsc_cancel(&ws->e);
        up_closed(&ws->e, LOOM_WS_ABNORMAL, "closed before it opened", 23);
        return LOOM_OK;
    }
    if (!usable(ws)) return LOOM_ESTATE;
    return loom__ws_close(&ws->e, code, reason, reason ? strlen(reason) : 0);
}

void loom__api_ws_set_user(loom_ws *ws, void *user)
{
    if (ws) ws->user = user;
}

void *loom__api_ws_user(loom_ws *ws)
{
    return ws ? ws->user : NULL;
}

const char *loom__api_ws_protocol(loom_ws *ws)
{
    return ws ? ws->protocol : NULL;
}

uint64_t loom__api_ws_queued(loom_ws *ws)
{
    if (!ws || !ws->opened || ws->gone || ws->e.io_gone || !ws->e.io) return 0;
    return ws->e.io->queued(&ws->e);
}

/* ---- channels ---- */

static void prepared_free(void *p)
{
    loom__ws_prepared_free(p);
    free(p);
}

static void deliver(loom__sub *s, loom__pubmsg *m)
{
    loom_ws *ws = s->owner;
    if (!usable(ws)) return;
    if (!m->cache) {
        loom__ws_prepared *pm = malloc(sizeof *pm);
        if (!pm) return;
        loom__ws_prepared_init(pm, m->type, m->data, m->len);
        m->cache = pm;
        m->cache_free = prepared_free;
    }
    if (loom__ws_send_prepared(&ws->e, m->cache) == LOOM__WS_ELIMIT) {
        ws->dropped++;
        enqueue(ws);
    }
}

static int channel_ok(const char *c, size_t *len)
{
    if (!c) return 0;
    *len = strlen(c);
    return *len > 0 && *len <= LOOM__CHANNEL_MAX;
}

int32_t loom__api_ws_subscribe(loom_ws *ws, const char *channel)
{
    size_t n;
    if (!ws || !channel_ok(channel, &n)) return LOOM_EINVAL;
    if (ws->closed_seen || ws->close_done) return LOOM_ESTATE;
    for (loom__sub *s = ws->subs; s; s = s->onext)
        if (((wsub *)s)->len == n && memcmp(((wsub *)s)->name, channel, n) == 0) return LOOM_OK;
    wsub *s = calloc(1, sizeof *s + n + 1);
    if (!s) return LOOM_ENOMEM;
    s->len = n;
    memcpy(s->name, channel, n);
    s->s.fn = deliver;
    s->s.owner = ws;
    if (loom__pubsub_subscribe(&s->s, channel, n)) {
        free(s);
        return LOOM_ENOMEM;
    }
    s->s.onext = ws->subs;
    ws->subs = &s->s;
    return LOOM_OK;
}

int32_t loom__api_ws_unsubscribe(loom_ws *ws, const char *channel)
{
    size_t n;
    if (!ws || !channel_ok(channel, &n)) return LOOM_EINVAL;
    for (loom__sub **pp = &ws->subs; *pp; pp = &(*pp)->onext) {
        wsub *s = (wsub *)*pp;
        if (s->len != n || memcmp(s->name, channel, n) != 0) continue;
        *pp = s->s.onext;
        loom__pubsub_unsubscribe(&s->s);
        free(s);
        return LOOM_OK;
    }
    return LOOM_ENOTFOUND;
}

int32_t loom__api_ws_publish(loom_plugin *self, const char *channel, int32_t type, const void *data,
                             size_t len)
{
    size_t n;
    (void)self;
    if (!channel_ok(channel, &n) || (len && !data)) return LOOM_EINVAL;
    if (type != LOOM_WS_TEXT && type != LOOM_WS_BINARY) return LOOM_EINVAL;
    uint8_t u = LOOM__UTF8_OK;
    if (type == LOOM_WS_TEXT && (loom__utf8_check(&u, data, len) || u != LOOM__UTF8_OK))
        return LOOM_EINVAL;
    return loom__pubsub_publish(channel, n, type, data ? data : "", len) ? LOOM_ENOMEM : LOOM_OK;
}

/* ---- client connections ---- */

static void client_opened(loom__ws *e, const char *protocol)
{
    loom_ws *ws = WS(e);
    ws->opened = 1;
    ws->protocol = protocol ? strdup(protocol) : NULL;
    if (ws->on_open && !ws->close_done) ws->on_open(ws, ws->ud);
}

static void client_failed(loom__ws *e, int code, const char *msg)
{
    loom_ws *ws = WS(e);
    if (!ws->close_done && ws->on_error) ws->on_error(ws, code, msg, ws->ud);
    up_closed(e, LOOM_WS_ABNORMAL, "the WebSocket did not open", 26);
}

loom_ws *loom__api_ws_connect(loom_plugin *self, const char *url, const loom_ws_opts *in)
{
    loom_ws_opts o;
    if (!self || !url || copy_opts(in, &o)) return NULL;
    loom__host *h = self->host;
    if (!h || self->unloading || h->stopping || o.nheaders > 64) return NULL;
    if (!h->client) {
        h->client = loom_client_new(h->loop, NULL);
        if (!h->client) return NULL;
    }
    loom_client_header hs[64];
    for (uint32_t i = 0; i < o.nheaders; i++) {
        hs[i].name = o.headers[2 * i];
        hs[i].value = o.headers[2 * i + 1];
        if (!hs[i].name || !hs[i].value) return NULL;
    }
    loom_ws *ws = ws_new(self, &o, K_CLIENT);
    if (!ws) return NULL;
    loom__wsc_opts co;
    memset(&co, 0, sizeof co);
    co.url = url;
    co.headers = hs;
    co.nheaders = o.nheaders;
    co.protocols = o.protocols;
    co.origin = o.allowed_origins;
    co.pmd.enabled = (o.flags & LOOM_WS_DEFLATE) != 0;
    co.pmd.takeover = (o.flags & LOOM_WS_DEFLATE_TAKEOVER) != 0;
    co.pmd.window_bits = (uint8_t)o.deflate_window_bits;
    co.timeout_ms = o.connect_timeout_ms;
    co.opened = client_opened;
    co.failed = client_failed;
    char err[300];
    if (loom__wsc_start(h->client, &ws->e, &plugin_up, &co, err, sizeof err)) {
        char m[400];
        snprintf(m, sizeof m, "loom_ws_connect: %s", err);
        loom__log(LOOM_LOG_WARN, "plugin %s: %s", self->name, m);
        ws->close_done = 1;
        ws->gone = 1;
        ws_free(ws);
        return NULL;
    }
    settings(ws, &o);
    return ws;
}
