/* A client WebSocket: its own TCP connection (not the pool's: it is never
 * handed back), through the client's HTTP proxy when one applies (a CONNECT
 * tunnel, for ws:// as for wss://), TLS for wss:// on the engine of
 * core/tls with the client's verification settings (the contexts the HTTP
 * requests use), the handshake read and checked with llhttp, then an
 * endpoint. Nothing is called back from inside a call into it: the first
 * step runs from a timer, writes complete through libuv, and the end comes
 * from the handles' close callbacks. */
#include "client/ws.h"
#include "client/client_int.h"
#include "http/request.h"
#include "http/token.h"
#include "ws/handshake.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HEAD_MAX (16u << 10)
#define TICK_MS 250

enum { W_START, W_RESOLVE, W_CONNECT, W_TUNNEL, W_TLS, W_HANDSHAKE, W_OPEN };

typedef struct loom__wsc {
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_connect_t creq;
    uv_write_t wreq;
    loom_client *client;
    struct loom__wsc *next, *prev;
    loom__ws *e;
    const loom__ws_up *up;
    void (*opened)(loom__ws *e, const char *protocol);
    void (*failed)(loom__ws *e, int code, const char *msg);
    loom__url url;
    char key[25];
    char *protocols;
    char *shown; /* the URL as given (ws:// or wss://), for messages */
    loom__ws_pmd_cfg pmd;
    uint64_t deadline;
    int state, closing, handles, writing, ending, reported, tcp_on;
    loom__dns_waiter dw;
    loom__buf out, wbuf, head;
    loom__buf request;           /* the upgrade request, sent once the way is open */
    const loom__proxy *proxy;    /* the client's proxy for this URL, or NULL */
    int tls_on, tls_ready;       /* wss://; its handshake is done */
    loom__tls tls;               /* wss:// */
    loom__tls_session_slot slot; /* the engine wants one (no resumption across sockets) */
    loom__buf tout;              /* TLS: ciphertext not yet written */
    char *plain;                 /* TLS: one record of plaintext */
    /* the response head, as llhttp reads it */
    llhttp_t parser;
    loom__buf field, value;
    int nproto, nupgrade, nconn, naccept;
    char upgrade[64], connection[256], accept[64], protocol[256];
    loom__buf ext;
} loom__wsc;

static _Thread_local char readbuf[65536];

#define W(e) ((loom__wsc *)(e)->io_ctx)

static void close_transport(loom__wsc *w);
static void start_write(loom__wsc *w);

/* ---- io for the endpoint ---- */

static loom__buf *io_outbuf(loom__ws *e)
{
    return &W(e)->out;
}
static void io_flush(loom__ws *e)
{
    loom__wsc *w = W(e);
    if (!w->writing && (w->out.len || w->tout.len) && !w->closing) start_write(w);
}
static size_t io_queued(loom__ws *e)
{
    loom__wsc *w = W(e);
    return w->out.len + w->tout.len + (w->writing ? w->wbuf.len : 0);
}
static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b);
static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b);
static void io_pause(loom__ws *e, int on)
{
    loom__wsc *w = W(e);
    if (w->closing || w->state != W_OPEN) return;
    if (on)
        uv_read_stop((uv_stream_t *)&w->tcp);
    else
        uv_read_start((uv_stream_t *)&w->tcp, on_alloc, on_read);
}
static void io_end(loom__ws *e)
{
    loom__wsc *w = W(e);
    w->ending = 1;
    if (!w->writing && (w->out.len || w->tout.len) && !w->closing)
        start_write(w); /* the close frame */
    if (!w->writing && !w->out.len && !w->tout.len) close_transport(w);
}
static void io_abort(loom__ws *e)
{
    close_transport(W(e));
}
static uint64_t io_now(loom__ws *e)
{
    return uv_now(W(e)->client->loop);
}

static const loom__ws_io client_io = {io_outbuf, io_flush, io_queued, io_pause,
                                      io_end,    io_abort, io_now};

/* ---- the end ---- */

static void handle_closed(uv_handle_t *h)
{
    loom__wsc *w = h->data;
    if (--w->handles > 0) return;
    loom_client *c = w->client;
    if (w->prev)
        w->prev->next = w->next;
    else
        c->wscs = w->next;
    if (w->next) w->next->prev = w->prev;
    loom__ws *e = w->e;
    const loom__ws_up *up = w->up;
    loom__url_free(&w->url);
    loom__buf_free(&w->out);
    loom__buf_free(&w->wbuf);
    loom__buf_free(&w->head);
    loom__buf_free(&w->field);
    loom__buf_free(&w->value);
    loom__buf_free(&w->ext);
    loom__buf_free(&w->request);
    loom__buf_free(&w->tout);
    loom__tls_close(&w->tls);
    loom__tls_session_slot_clear(&w->slot);
    free(w->plain);
    free(w->protocols);
    free(w->shown);
    free(w);
    e->io_ctx = NULL;
    up->gone(e); /* the owner frees e */
    loom__client_unref(c);
}

static void close_transport(loom__wsc *w)
{
    if (w->closing) return;
    w->closing = 1;
    if (w->state == W_RESOLVE) loom__dns_cancel(&w->dw);
    loom__ws_transport_gone(w->e);
    uv_timer_stop(&w->timer);
    uv_close((uv_handle_t *)&w->timer, handle_closed);
    if (w->tcp_on) uv_close((uv_handle_t *)&w->tcp, handle_closed);
}

/* The connection could not be opened. */
static void fail(loom__wsc *w, int code, const char *detail)
{
    if (w->closing) return;
    if (!w->reported) {
        w->reported = 1;
        char msg[600];
        snprintf(msg, sizeof msg, "%s: %s%s%s", loom_client_strerror(code), w->shown,
                 detail ? " (" : "", detail ? detail : "");
        if (detail) snprintf(msg + strlen(msg), sizeof msg - strlen(msg), ")");
        w->e->st = LOOM__WS_CLOSED; /* nothing to close: no `closed` report */
        w->failed(w->e, code, msg);
    }
    close_transport(w);
}

/* ---- writing ---- */

static void on_written(uv_write_t *req, int status)
{
    loom__wsc *w = req->data;
    w->writing = 0;
    w->wbuf.len = 0;
    if (w->closing) return;
    if (status < 0) {
        if (w->state != W_OPEN)
            fail(w, LOOM_CLIENT_E_SERVER_DISCONNECTED, uv_strerror(status));
        else
            close_transport(w);
        return;
    }
    if (w->out.len || w->tout.len) {
        start_write(w);
        return;
    }
    if (w->wbuf.cap > (1u << 20)) loom__buf_free(&w->wbuf);
    if (w->ending) {
        close_transport(w);
        return;
    }
    if (w->state == W_OPEN) loom__ws_drained(w->e);
}

/* Writes what waits, one write at a time: the plaintext gathered in `out`
 * (sealed into `tout` first on wss://, once its handshake is done), or the
 * engine's own bytes in `tout`. */
static void start_write(loom__wsc *w)
{
    loom__buf *src = &w->out;
    if (w->tls_on && w->tls_ready && w->out.len) {
        if (loom__tls_write(&w->tls, w->out.data, w->out.len, 0)) {
            w->out.len = 0;
            close_transport(w);
            return;
        }
        w->out.len = 0;
    }
    if (w->tls_on && w->state != W_TUNNEL) src = &w->tout;
    if (!src->len) return;
    loom__buf t = w->wbuf;
    w->wbuf = *src;
    *src = t;
    src->len = 0;
    uv_buf_t b = uv_buf_init(w->wbuf.data, (unsigned)w->wbuf.len);
    w->wreq.data = w;
    if (uv_write(&w->wreq, (uv_stream_t *)&w->tcp, &b, 1, on_written) < 0) {
        w->wbuf.len = 0;
        if (w->state != W_OPEN)
            fail(w, LOOM_CLIENT_E_SERVER_DISCONNECTED, "cannot write");
        else
            close_transport(w);
        return;
    }
    w->writing = 1;
}

/* ---- the handshake ---- */

static int on_hfield(llhttp_t *p, const char *at, size_t len)
{
    loom__wsc *w = p->data;
    return loom__buf_append(&w->field, at, len);
}
static int on_hvalue(llhttp_t *p, const char *at, size_t len)
{
    loom__wsc *w = p->data;
    return loom__buf_append(&w->value, at, len);
}

static int name_is(loom__wsc *w, const char *n)
{
    size_t l = strlen(n);
    return w->field.len == l && loom__strncaseeq(w->field.data, n, l);
}

static void keep(char *dst, size_t cap, const loom__buf *v)
{
    size_t n = v->len < cap - 1 ? v->len : cap - 1;
    memcpy(dst, v->data ? v->data : "", n);
    dst[n] = '\0';
}

static int on_hvalue_done(llhttp_t *p)
{
    loom__wsc *w = p->data;
    if (name_is(w, "upgrade")) {
        w->nupgrade++;
        keep(w->upgrade, sizeof w->upgrade, &w->value);
    } else if (name_is(w, "connection")) {
        w->nconn++;
        keep(w->connection, sizeof w->connection, &w->value);
    } else if (name_is(w, "sec-websocket-accept")) {
        w->naccept++;
        keep(w->accept, sizeof w->accept, &w->value);
    } else if (name_is(w, "sec-websocket-protocol")) {
        w->nproto++;
        keep(w->protocol, sizeof w->protocol, &w->value);
    } else if (name_is(w, "sec-websocket-extensions")) {
        if (w->ext.len) loom__buf_append(&w->ext, ", ", 2);
        loom__buf_append(&w->ext, w->value.data ? w->value.data : "", w->value.len);
    }
    w->field.len = 0;
    w->value.len = 0;
    return 0;
}

static const llhttp_settings_t head_settings = {
    .on_header_field = on_hfield,
    .on_header_value = on_hvalue,
    .on_header_value_complete = on_hvalue_done,
};

/* The head of the answer is in w->head[0, n). Returns 0 when it opens the
 * connection, or -1 after failing it. */
static int check_head(loom__wsc *w, size_t n)
{
    llhttp_init(&w->parser, HTTP_RESPONSE, &head_settings);
    w->parser.data = w;
    llhttp_errno_t rc = llhttp_execute(&w->parser, w->head.data, n);
    int status = w->parser.status_code;
    char why[320];
    if (rc != HPE_OK && rc != HPE_PAUSED_UPGRADE && !(status && status != 101)) {
        snprintf(why, sizeof why, "bad response head: %s", llhttp_errno_name(rc));
        fail(w, LOOM_CLIENT_E_BAD_RESPONSE, why);
        return -1;
    }
    if (status != 101) {
        snprintf(why, sizeof why, "WebSocket handshake answered %d, not 101", status);
        fail(w, LOOM_CLIENT_E_STATUS, why);
        return -1;
    }
    char expect[29];
    const char *bad = NULL;
    if (w->nupgrade != 1 || !loom__ws_list_has(w->upgrade, strlen(w->upgrade), "websocket"))
        bad = "no Upgrade: websocket";
    else if (!loom__ws_list_has(w->connection, strlen(w->connection), "upgrade"))
        bad = "no Connection: upgrade";
    else if (w->naccept != 1 || loom__ws_accept_value(w->key, 24, expect) ||
             strcmp(expect, w->accept) != 0)
        bad = "wrong Sec-WebSocket-Accept";
    else if (w->nproto > 1 ||
             (w->nproto && (!w->protocols ||
                            !loom__ws_list_has(w->protocols, strlen(w->protocols), w->protocol))))
        bad = "a Sec-WebSocket-Protocol that was not offered";
    if (bad) {
        snprintf(why, sizeof why, "WebSocket handshake: %s", bad);
        fail(w, LOOM_CLIENT_E_BAD_RESPONSE, why);
        return -1;
    }
    char err[160];
    loom__ws_pmd pmd;
    if (loom__ws_pmd_answer(w->ext.data, w->ext.len, &w->pmd, &pmd, err, sizeof err)) {
        snprintf(why, sizeof why, "WebSocket handshake: %s", err);
        fail(w, LOOM_CLIENT_E_BAD_RESPONSE, why);
        return -1;
    }
    w->e->pmd = pmd;
    return 0;
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
    (void)h;
    (void)hint;
    *b = uv_buf_init(readbuf, sizeof readbuf);
}

static void handshake_bytes(loom__wsc *w, const char *p, size_t n)
{
    if (loom__buf_append(&w->head, p, n)) {
        fail(w, LOOM_CLIENT_E_NOMEM, NULL);
        return;
    }
    char *end = memmem(w->head.data, w->head.len, "\r\n\r\n", 4);
    if (!end) {
        if (w->head.len > HEAD_MAX) fail(w, LOOM_CLIENT_E_BAD_RESPONSE, "response head too large");
        return;
    }
    size_t hn = (size_t)(end - w->head.data) + 4;
    if (check_head(w, hn)) return;
    w->state = W_OPEN;
    loom__buf rest = w->head;
    memset(&w->head, 0, sizeof w->head);
    w->e->last_rx = uv_now(w->client->loop);
    w->opened(w->e, w->nproto ? w->protocol : NULL);
    if (!w->closing && rest.len > hn) loom__ws_feed(w->e, rest.data + hn, rest.len - hn);
    loom__buf_free(&rest);
}

/* Plaintext from the server (after TLS, when there is TLS). */
static void plain_bytes(loom__wsc *w, const char *p, size_t n)
{
    if (w->state == W_OPEN)
        loom__ws_feed(w->e, p, n);
    else
        handshake_bytes(w, p, n);
}

static void send_request(loom__wsc *w)
{
    w->state = W_HANDSHAKE;
    if (loom__buf_append(&w->out, w->request.data, w->request.len)) {
        fail(w, LOOM_CLIENT_E_NOMEM, NULL);
        return;
    }
    loom__buf_free(&w->request);
    if (!w->writing) start_write(w);
}

static const int tls_codes[] = {
    [LOOM__TLSC_OTHER] = LOOM_CLIENT_E_TLS,
    [LOOM__TLSC_EXPIRED] = LOOM_CLIENT_E_CERT_EXPIRED,
    [LOOM__TLSC_HOSTNAME] = LOOM_CLIENT_E_CERT_HOSTNAME,
    [LOOM__TLSC_UNTRUSTED] = LOOM_CLIENT_E_CERT_UNTRUSTED,
    [LOOM__TLSC_CHAIN] = LOOM_CLIENT_E_CERT_CHAIN,
    [LOOM__TLSC_VERSION] = LOOM_CLIENT_E_TLS_VERSION,
    [LOOM__TLSC_NOT_TLS] = LOOM_CLIENT_E_TLS,
};

/* wss://: ciphertext arrived. The engine reads it in place, so all of it is
 * taken before this returns. */
static void tls_bytes(loom__wsc *w, const char *p, size_t n)
{
    loom__tls_feed(&w->tls, p, n);
    if (!w->tls_ready) {
        int r = loom__tls_handshake(&w->tls);
        if (!w->writing && w->tout.len) start_write(w);
        if (w->closing || r == LOOM__TLS_WANT) return;
        if (r != LOOM__TLS_DONE) {
            char why[512];
            int cls = loom__tls_client_diagnose(&w->tls, why, sizeof why);
            int ncodes = (int)(sizeof tls_codes / sizeof tls_codes[0]);
            fail(w, cls > 0 && cls < ncodes ? tls_codes[cls] : LOOM_CLIENT_E_TLS, why);
            return;
        }
        w->tls_ready = 1;
        send_request(w);
        if (w->closing) return;
    }
    for (;;) {
        ssize_t k = loom__tls_read(&w->tls, w->plain, LOOM__TLS_RECORD);
        if (!w->writing && w->tout.len && !w->closing) start_write(w); /* a KeyUpdate answer */
        if (k == LOOM__TLS_WANT || w->closing) return;
        if (k > 0) {
            plain_bytes(w, w->plain, (size_t)k);
            if (w->closing) return;
            continue;
        }
        if (w->state != W_OPEN)
            fail(w, LOOM_CLIENT_E_TLS,
                 k == LOOM__TLS_EOF ? "closed (close_notify) before the "
                                      "handshake's answer"
                                    : w->tls.reason);
        else
            close_transport(w);
        return;
    }
}

static void tls_begin(loom__wsc *w)
{
    w->state = W_TLS;
    loom__tlsconf *tc = w->client->tlsconfs;
    SSL_CTX *ctx = tc ? loom__tlsconf_ctx(tc) : NULL;
    if (!ctx) {
        fail(w, LOOM_CLIENT_E_TLS_CONFIG, tc ? tc->err : "no TLS settings");
        return;
    }
    w->plain = malloc(LOOM__TLS_RECORD);
    if (!w->plain || loom__tls_open(&w->tls, ctx, 0, &w->tout) ||
        loom__tls_client_prepare(&w->tls, w->url.host, &w->slot)) {
        fail(w, w->plain ? LOOM_CLIENT_E_TLS : LOOM_CLIENT_E_NOMEM,
             w->tls.reason[0] ? w->tls.reason : "out of memory");
        return;
    }
    loom__tls_handshake(&w->tls); /* the ClientHello */
    if (!w->writing) start_write(w);
}

/* The way to the server is open (TCP, or the proxy's tunnel). */
static void way_open(loom__wsc *w)
{
    if (w->tls_on)
        tls_begin(w);
    else
        send_request(w);
}

/* The proxy's answer to CONNECT: 2xx opens the tunnel, and nothing may
 * follow it before our first bytes. */
static void tunnel_bytes(loom__wsc *w, const char *p, size_t n)
{
    const char *purl = w->proxy->url;
    if (loom__buf_append(&w->head, p, n)) {
        fail(w, LOOM_CLIENT_E_NOMEM, NULL);
        return;
    }
    char *end = memmem(w->head.data, w->head.len, "\r\n\r\n", 4);
    char why[400];
    if (!end) {
        if (w->head.len > HEAD_MAX) {
            snprintf(why, sizeof why, "proxy %s answered CONNECT with a head too long", purl);
            fail(w, LOOM_CLIENT_E_PROXY_TUNNEL, why);
        }
        return;
    }
    int status = 0;
    char reason[64] = "";
    const char *h = w->head.data;
    if (w->head.len < 12 || strncmp(h, "HTTP/1.", 7) != 0 ||
        sscanf(h + 9, "%3d %63[^\r\n]", &status, reason) < 1) {
        snprintf(why, sizeof why, "proxy %s answered CONNECT with something that is not HTTP",
                 purl);
        fail(w, LOOM_CLIENT_E_PROXY_TUNNEL, why);
        return;
    }
    if (status == 407 || status == 401) {
        snprintf(why, sizeof why, "proxy %s %s: %d %s", purl,
                 w->proxy->auth ? "refused the credentials" : "wants credentials", status, reason);
        fail(w, LOOM_CLIENT_E_PROXY_AUTH, why);
        return;
    }
    if (status < 200 || status > 299 || end + 4 != h + w->head.len) {
        snprintf(why, sizeof why, "proxy %s refused the tunnel to %s:%u: %d %s", purl, w->url.host,
                 w->url.port, status, reason);
        fail(w, LOOM_CLIENT_E_PROXY_TUNNEL, why);
        return;
    }
    w->head.len = 0;
    way_open(w);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    loom__wsc *w = s->data;
    if (w->closing || n == 0) return;
    if (n < 0) {
        if (w->state == W_TUNNEL)
            fail(w, LOOM_CLIENT_E_PROXY_TUNNEL,
                 "the proxy closed the connection instead of "
                 "answering CONNECT");
        else if (w->state == W_TLS)
            fail(w, LOOM_CLIENT_E_TLS_RESET,
                 "the server closed the connection during the TLS "
                 "handshake");
        else if (w->state != W_OPEN)
            fail(w, LOOM_CLIENT_E_SERVER_DISCONNECTED,
                 n == UV_EOF ? "closed before the handshake's answer" : uv_strerror((int)n));
        else
            close_transport(w);
        return;
    }
    if (w->state == W_TUNNEL)
        tunnel_bytes(w, b->base, (size_t)n);
    else if (w->tls_on)
        tls_bytes(w, b->base, (size_t)n);
    else
        plain_bytes(w, b->base, (size_t)n);
}

/* ---- connecting ---- */

static void on_tick(uv_timer_t *t);

static void on_connect(uv_connect_t *req, int status)
{
    loom__wsc *w = req->data;
    if (w->closing) return;
    if (status < 0) {
        if (w->proxy) {
            char why[300];
            snprintf(why, sizeof why, "cannot connect to proxy %s: %s", w->proxy->url,
                     uv_strerror(status));
            fail(w, LOOM_CLIENT_E_PROXY_CONNECT, why);
        } else {
            fail(w,
                 status == UV_ECONNREFUSED ? LOOM_CLIENT_E_CONNECTION_REFUSED
                                           : LOOM_CLIENT_E_CONNECT,
                 uv_strerror(status));
        }
        return;
    }
    uv_tcp_nodelay(&w->tcp, 1);
    w->tcp.data = w;
    uv_read_start((uv_stream_t *)&w->tcp, on_alloc, on_read);
    if (w->proxy) {
        /* A tunnel for ws:// as for wss:// (a proxy does not pass an
         * Upgrade on in absolute form). */
        int v6 = strchr(w->url.host, ':') != NULL;
        w->state = W_TUNNEL;
        loom__buf_printf(&w->out, "CONNECT %s%s%s:%u HTTP/1.1\r\nHost: %s%s%s:%u\r\n",
                         v6 ? "[" : "", w->url.host, v6 ? "]" : "", w->url.port, v6 ? "[" : "",
                         w->url.host, v6 ? "]" : "", w->url.port);
        if (w->proxy->auth)
            loom__buf_printf(&w->out, "Proxy-Authorization: %s\r\n", w->proxy->auth);
        loom__buf_printf(&w->out, "User-Agent: %s\r\n\r\n", w->client->user_agent);
        if (!w->writing) start_write(w);
        return;
    }
    way_open(w);
}

static void on_resolved(loom__dns_waiter *dw, int status, const struct sockaddr_storage *addrs,
                        size_t naddrs)
{
    loom__wsc *w = (loom__wsc *)((char *)dw - offsetof(loom__wsc, dw));
    if (status < 0 || naddrs == 0) {
        if (w->proxy) {
            char why[300];
            snprintf(why, sizeof why, "cannot resolve proxy host %s: %s", w->proxy->host,
                     status < 0 ? uv_strerror(status) : "no address");
            fail(w, LOOM_CLIENT_E_PROXY_CONNECT, why);
            return;
        }
        fail(w, LOOM_CLIENT_E_DNS, status < 0 ? uv_strerror(status) : "no address");
        return;
    }
    if (uv_tcp_init(w->client->loop, &w->tcp) < 0) {
        fail(w, LOOM_CLIENT_E_CONNECT, "cannot make a socket");
        return;
    }
    w->tcp_on = 1;
    w->handles++;
    w->tcp.data = w;
    w->state = W_CONNECT;
    w->creq.data = w;
    int rc = uv_tcp_connect(&w->creq, &w->tcp, (const struct sockaddr *)&addrs[0], on_connect);
    if (rc < 0)
        fail(w, rc == UV_ECONNREFUSED ? LOOM_CLIENT_E_CONNECTION_REFUSED : LOOM_CLIENT_E_CONNECT,
             uv_strerror(rc));
}

static void on_tick(uv_timer_t *t)
{
    loom__wsc *w = t->data;
    if (w->closing) return;
    uint64_t now = uv_now(w->client->loop);
    if (w->state == W_START) {
        w->state = W_RESOLVE;
        w->dw.cb = on_resolved;
        if (w->proxy)
            loom__dns_resolve(w->client, w->proxy->host, w->proxy->port, &w->dw);
        else
            loom__dns_resolve(w->client, w->url.host, w->url.port, &w->dw);
        return;
    }
    if (w->state == W_OPEN) {
        loom__ws_tick(w->e);
        return;
    }
    if (w->deadline && now >= w->deadline)
        fail(w,
             w->state == W_HANDSHAKE ? LOOM_CLIENT_E_READ_TIMEOUT
             : w->state == W_TLS     ? LOOM_CLIENT_E_TLS_TIMEOUT
                                     : LOOM_CLIENT_E_CONNECT_TIMEOUT,
             "no WebSocket within the timeout");
}

/* The client's proxy for this URL: its own setting, or the environment's
 * with trust_env (except hosts in no_proxy), as its HTTP requests choose.
 * Returns 0, or -1 with the reason in err (a bad proxy setting). */
static int pick_proxy(loom_client *c, loom__wsc *w, char *err, size_t errlen)
{
    w->proxy = NULL;
    if (c->proxy_err) {
        snprintf(err, errlen, "%s", c->proxy_err);
        return -1;
    }
    if (c->proxy.host) {
        w->proxy = &c->proxy;
        return 0;
    }
    if (!c->trust_env) return 0;
    int rc = loom__client_env_proxies(c);
    if (rc) {
        snprintf(err, errlen, "%s", rc == -1 && c->env_err ? c->env_err : "out of memory");
        return -1;
    }
    const loom__proxy *p = w->url.tls ? &c->env_https : &c->env_http;
    if (p->host && !(c->no_proxy && loom__no_proxy_match(c->no_proxy, w->url.host, w->url.port)))
        w->proxy = p;
    return 0;
}

static int header_ok(const char *n, const char *v)
{
    if (!n || !*n || !v || !loom__is_token(n, strlen(n))) return 0;
    return strpbrk(v, "\r\n") == NULL;
}

int loom__wsc_start(loom_client *client, loom__ws *e, const loom__ws_up *up,
                    const loom__wsc_opts *o, char *err, size_t errlen)
{
    if (!client || client->closing || !o->url) {
        snprintf(err, errlen, "no client or URL");
        return -1;
    }
    char url[8200];
    const char *u = o->url;
    if (strncmp(u, "ws://", 5) == 0) {
        snprintf(url, sizeof url, "http://%s", u + 5);
    } else if (strncmp(u, "wss://", 6) == 0) {
        snprintf(url, sizeof url, "https://%s", u + 6);
    } else {
        snprintf(err, errlen, "%s: not a ws:// or wss:// URL", u);
        return -1;
    }
    loom__wsc *w = calloc(1, sizeof *w);
    if (!w) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    char why[200];
    if (loom__url_parse(url, &w->url, why, sizeof why)) {
        snprintf(err, errlen, "%s: %s", u, why);
        free(w);
        return -1;
    }
    for (size_t i = 0; i < o->nheaders; i++)
        if (!header_ok(o->headers[i].name, o->headers[i].value)) {
            snprintf(err, errlen, "%s: malformed header '%s'", u,
                     o->headers[i].name ? o->headers[i].name : "(null)");
            goto bad;
        }
    if ((o->protocols && strpbrk(o->protocols, "\r\n")) ||
        (o->origin && strpbrk(o->origin, "\r\n"))) {
        snprintf(err, errlen, "%s: malformed protocols or origin", u);
        goto bad;
    }
    if (loom__ws_new_key(w->key)) {
        snprintf(err, errlen, "no random bytes for the key");
        goto bad;
    }
    w->tls_on = w->url.tls;
    if (pick_proxy(client, w, err, errlen)) goto bad;
    loom__buf *b = &w->request;
    loom__buf_printf(b,
                     "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\nUser-Agent: %s\r\n",
                     w->url.target, w->url.hostport, w->key, client->user_agent);
    if (o->protocols && *o->protocols)
        loom__buf_printf(b, "Sec-WebSocket-Protocol: %s\r\n", o->protocols);
    if (o->pmd.enabled) {
        char offer[160];
        loom__ws_pmd_offer(&o->pmd, offer, sizeof offer);
        loom__buf_printf(b, "Sec-WebSocket-Extensions: %s\r\n", offer);
    }
    if (o->origin) loom__buf_printf(b, "Origin: %s\r\n", o->origin);
    for (size_t i = 0; i < client->nheaders; i++)
        loom__buf_printf(b, "%s: %s\r\n", client->hnames[i], client->hvalues[i]);
    for (size_t i = 0; i < o->nheaders; i++)
        loom__buf_printf(b, "%s: %s\r\n", o->headers[i].name, o->headers[i].value);
    if (loom__buf_puts(b, "\r\n") || (o->protocols && !(w->protocols = strdup(o->protocols))) ||
        !(w->shown = strdup(u))) {
        snprintf(err, errlen, "out of memory");
        goto bad;
    }
    loom__ws_init(e, NULL, up, 1);
    e->io = &client_io;
    e->io_ctx = w;
    w->e = e;
    w->up = up;
    w->opened = o->opened;
    w->failed = o->failed;
    w->pmd = o->pmd;
    w->client = client;
    client->refs++;
    uint64_t tmo = o->timeout_ms ? o->timeout_ms : 30000;
    w->deadline = uv_now(client->loop) + tmo;
    uv_timer_init(client->loop, &w->timer);
    w->timer.data = w;
    w->handles = 1;
    uv_timer_start(&w->timer, on_tick, 0, TICK_MS);
    w->next = client->wscs;
    if (client->wscs) client->wscs->prev = w;
    client->wscs = w;
    return 0;
bad:
    loom__url_free(&w->url);
    loom__buf_free(&w->request);
    free(w->shown);
    free(w->protocols);
    free(w);
    return -1;
}

void loom__wsc_cancel(loom__ws *e)
{
    loom__wsc *w = W(e);
    if (!w) return;
    w->reported = 1;
    e->st = LOOM__WS_CLOSED;
    close_transport(w);
}

void loom__wsc_close_all(loom_client *client)
{
    for (loom__wsc *w = client->wscs; w; w = w->next) {
        if (w->state == W_OPEN)
            close_transport(w);
        else
            fail(w, LOOM_CLIENT_E_CANCELLED, "the client was closed");
    }
}
