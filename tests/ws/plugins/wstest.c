/* wstest: a WebSocket plugin for tests/ws. GET /ws/t upgrades, with options
 * from the query (deflate=1, heartbeat=MS, max=BYTES, limit=BYTES,
 * close_timeout=MS, proto=LIST, origins=LIST, hello=1); text messages are
 * commands:
 *   sub:C  unsub:C  pub:C TEXT  pubbin:C TEXT   channels (C may hold colons)
 *   close:CODE:REASON                           loom_ws_close
 *   flood:N:SIZE                                N binary sends; answers "flood ok=A limit=B"
 *   later:MS:TEXT                               sends TEXT from a timer
 *   work:TEXT                                   sends TEXT from a thread-pool job's done
 *   ping:TEXT                                   sends a ping
 *   pid                                         answers the worker's pid
 *   user                                        answers the per-connection counter (user data)
 *   anything else                               echoed as "vVERSION:TEXT" (binary echoed as is)
 * GET /ws/events answers the events seen (JSON lines: close, error, drain).
 * GET /ws/connect?url=U&send=T opens a client WebSocket to U (loom_ws_connect),
 * sends T, and answers the first message that comes back (or the error). */
#define _POSIX_C_SOURCE 200809L
#include <loom/loom.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef VERSION
#define VERSION 1
#endif

static loom_plugin *me;
static char events[16384];
static size_t nev;

static void event(const char *fmt, const char *a, long b, const char *c)
{
    char line[512];
    int n = snprintf(line, sizeof line, fmt, a, b, c);
    if (n < 0) return;
    if (nev + (size_t)n + 2 >= sizeof events) nev = 0;
    memcpy(events + nev, line, (size_t)n);
    nev += (size_t)n;
    events[nev++] = '\n';
    events[nev] = 0;
}

typedef struct {
    int counter;
} conn_state;

static void on_open(loom_ws *ws, void *ud)
{
    (void)ud;
    conn_state *s = calloc(1, sizeof *s);
    loom_ws_set_user(ws, s);
    char m[64];
    snprintf(m, sizeof m, "open v%d %s", VERSION,
             loom_ws_protocol(ws) ? loom_ws_protocol(ws) : "-");
    if (strstr((const char *)ud ? (const char *)ud : "", "hello")) loom_ws_send_text(ws, m);
}

static void on_close(loom_ws *ws, int32_t code, const char *reason, size_t len, void *ud)
{
    (void)ud;
    char r[200];
    snprintf(r, sizeof r, "%.*s", (int)(len < 150 ? len : 150), reason);
    event("{\"event\":\"close\",\"v\":\"%s\",\"code\":%ld,\"reason\":\"%s\"}",
          VERSION == 1 ? "1" : "2", (long)code, r);
    free(loom_ws_user(ws));
}

static void on_error(loom_ws *ws, int32_t code, const char *msg, void *ud)
{
    (void)ws;
    (void)ud;
    event("{\"event\":\"error\",\"v\":\"%s\",\"code\":%ld,\"message\":\"%s\"}",
          VERSION == 1 ? "1" : "2", (long)code, msg);
}

static void on_drain(loom_ws *ws, void *ud)
{
    (void)ws;
    (void)ud;
    event("{\"event\":\"drain\",\"v\":\"%s\",\"code\":%ld%s}", VERSION == 1 ? "1" : "2", 0, "");
}

typedef struct {
    loom_ws *ws;
    char text[256];
    loom_timer *t;
} later_t;

/* Connections may close before a timer or a job ends: track them. */
static later_t *pending[256];

static void later_fire(loom_timer *t, void *ud)
{
    (void)t;
    later_t *l = ud;
    for (int i = 0; i < 256; i++)
        if (pending[i] == l) pending[i] = NULL;
    if (l->ws) loom_ws_send_text(l->ws, l->text);
    free(l);
}

static void work_run(void *ud)
{
    later_t *l = ud;
    size_t n = strlen(l->text);
    for (size_t i = 0; i < n / 2; i++) {
        char c = l->text[i];
        l->text[i] = l->text[n - 1 - i];
        l->text[n - 1 - i] = c;
    }
}

static void work_done(void *ud, int32_t cancelled)
{
    later_t *l = ud;
    for (int i = 0; i < 256; i++)
        if (pending[i] == l) pending[i] = NULL;
    if (!cancelled && l->ws) loom_ws_send_text(l->ws, l->text);
    free(l);
}

static later_t *track(loom_ws *ws, const char *text)
{
    for (int i = 0; i < 256; i++)
        if (!pending[i]) {
            later_t *l = calloc(1, sizeof *l);
            l->ws = ws;
            snprintf(l->text, sizeof l->text, "%s", text);
            pending[i] = l;
            return l;
        }
    return NULL;
}

static void forget(loom_ws *ws)
{
    for (int i = 0; i < 256; i++)
        if (pending[i] && pending[i]->ws == ws) pending[i]->ws = NULL;
}

static void on_close_tracked(loom_ws *ws, int32_t code, const char *reason, size_t len, void *ud)
{
    forget(ws);
    on_close(ws, code, reason, len, ud);
}

static void on_message(loom_ws *ws, int32_t type, const void *data, size_t len, void *ud)
{
    (void)ud;
    if (type == LOOM_WS_BINARY) {
        loom_ws_send(ws, type, data, len);
        return;
    }
    char *cmd = malloc(len + 1), out[4200];
    if (!cmd) return;
    memcpy(cmd, data, len);
    cmd[len] = 0;
    if (!strncmp(cmd, "sub:", 4)) {
        int rc = loom_ws_subscribe(ws, cmd + 4);
        snprintf(out, sizeof out, "subscribed %s %d", cmd + 4, rc);
        loom_ws_send_text(ws, out);
    } else if (!strncmp(cmd, "unsub:", 6)) {
        int rc = loom_ws_unsubscribe(ws, cmd + 6);
        snprintf(out, sizeof out, "unsubscribed %s %d", cmd + 6, rc);
        loom_ws_send_text(ws, out);
    } else if (!strncmp(cmd, "pub:", 4) || !strncmp(cmd, "pubbin:", 7)) {
        int bin = cmd[3] == 'b';
        char *c = cmd + (bin ? 7 : 4), *t = strchr(c, ' ');
        if (!t) {
            free(cmd);
            return;
        }
        *t++ = 0;
        loom_ws_publish(me, c, bin ? LOOM_WS_BINARY : LOOM_WS_TEXT, t, strlen(t));
    } else if (!strncmp(cmd, "close:", 6)) {
        char *r = strchr(cmd + 6, ':');
        if (r) *r++ = 0;
        int rc = loom_ws_close(ws, atoi(cmd + 6), r);
        if (rc) {
            snprintf(out, sizeof out, "close refused %d", rc);
            loom_ws_send_text(ws, out);
        }
    } else if (!strncmp(cmd, "flood:", 6)) {
        int n = atoi(cmd + 6), ok = 0, lim = 0;
        char *sz = strchr(cmd + 6, ':');
        size_t size = sz ? (size_t)atol(sz + 1) : 1000;
        char *buf = malloc(size ? size : 1);
        memset(buf, 'f', size);
        for (int i = 0; i < n; i++) {
            int rc = loom_ws_send(ws, LOOM_WS_BINARY, buf, size);
            ok += rc == 0;
            lim += rc == LOOM_ELIMIT;
        }
        free(buf);
        snprintf(out, sizeof out, "flood ok=%d limit=%d", ok, lim);
        /* The answer itself may be refused too: then it goes after the drain. */
        if (loom_ws_send_text(ws, out) == LOOM_ELIMIT)
            event("{\"event\":\"flood\",\"v\":\"%s\",\"code\":%ld,\"result\":\"%s\"}",
                  VERSION == 1 ? "1" : "2", (long)lim, out);
    } else if (!strncmp(cmd, "later:", 6)) {
        char *t = strchr(cmd + 6, ':');
        if (!t) {
            free(cmd);
            return;
        }
        later_t *l = track(ws, t + 1);
        if (l) loom_timer_start(me, (uint64_t)atol(cmd + 6), 0, later_fire, l);
    } else if (!strncmp(cmd, "work:", 5)) {
        later_t *l = track(ws, cmd + 5);
        if (l) loom_work_queue(me, work_run, work_done, l);
    } else if (!strncmp(cmd, "ping:", 5)) {
        loom_ws_send(ws, LOOM_WS_PING, cmd + 5, strlen(cmd + 5));
    } else if (!strcmp(cmd, "pid")) {
        snprintf(out, sizeof out, "pid %d", (int)getpid());
        loom_ws_send_text(ws, out);
    } else if (!strcmp(cmd, "user")) {
        conn_state *s = loom_ws_user(ws);
        snprintf(out, sizeof out, "user %d", s ? ++s->counter : -1);
        loom_ws_send_text(ws, out);
    } else {
        snprintf(out, sizeof out, "v%d:%s", VERSION, cmd);
        loom_ws_send_text(ws, out);
    }
    free(cmd);
}

static uint64_t qnum(loom_req *req, const char *name)
{
    size_t n;
    const char *v = loom_req_query(req, name, 0, &n);
    return v ? (uint64_t)strtoull(v, NULL, 10) : 0;
}

/* ?session=1: the session is loaded first (the upgrade answers later, from
 * the store's callback); the 101 carries its cookie. */
static char visits_msg[64];

static void session_open(loom_ws *ws, void *ud)
{
    on_open(ws, ud);
    loom_ws_send_text(ws, visits_msg);
}

static void fill(loom_req *req, loom_ws_opts *o);

static void session_loaded(loom_req *req, int32_t status, void *ud)
{
    (void)ud;
    const loom_json *v = loom_json_get(loom_session_get(req), "visits");
    long visits = status == 0 && v ? (long)loom_json_integer(v) + 1 : 1;
    char num[32];
    snprintf(num, sizeof num, "%ld", visits);
    loom_session_set(req, "visits", num, strlen(num));
    snprintf(visits_msg, sizeof visits_msg, "session visits=%ld", visits);
    loom_ws_opts o;
    fill(req, &o);
    o.on_open = session_open;
    loom_ws_accept(me, req, &o, NULL);
}

static int32_t upgrade(loom_req *req, void *ud)
{
    (void)ud;
    if (qnum(req, "session")) {
        int32_t rc = loom_session_load(req, session_loaded, NULL);
        return rc == 0 ? LOOM_PENDING : rc;
    }
    loom_ws_opts o;
    fill(req, &o);
    int32_t rc = loom_ws_accept(me, req, &o, NULL);
    return rc == LOOM_OK || rc == LOOM_EBADREQ ? LOOM_DONE : rc;
}

static void fill(loom_req *req, loom_ws_opts *op)
{
    loom_ws_opts o;
    memset(&o, 0, sizeof o);
    o.size = sizeof o;
    size_t n;
    if (qnum(req, "deflate")) o.flags |= LOOM_WS_DEFLATE;
    o.heartbeat_ms = (uint32_t)qnum(req, "heartbeat");
    o.max_msg_size = qnum(req, "max");
    o.send_queue_limit = qnum(req, "limit");
    o.close_timeout_ms = (uint32_t)qnum(req, "close_timeout");
    o.protocols = loom_req_query(req, "proto", 0, &n);
    o.allowed_origins = loom_req_query(req, "origins", 0, &n);
    o.on_open = on_open;
    o.on_message = on_message;
    o.on_close = on_close_tracked;
    o.on_error = on_error;
    o.on_drain = on_drain;
    o.ud = qnum(req, "hello") ? (void *)"hello" : NULL;
    *op = o;
}

static int32_t get_events(loom_req *req, void *ud)
{
    (void)ud;
    return loom_resp_text(req, 200, events);
}

/* ---- a client WebSocket opened by the plugin ---- */

typedef struct {
    loom_req *req;
    char send[512];
    int answered;
} cx;

static void cx_answer(cx *c, const char *text)
{
    if (c->answered || !c->req) return;
    c->answered = 1;
    loom_resp_text(c->req, 200, text);
    c->req = NULL;
}

static void cx_open(loom_ws *ws, void *ud)
{
    cx *c = ud;
    loom_ws_send_text(ws, c->send);
}

static void cx_message(loom_ws *ws, int32_t type, const void *data, size_t len, void *ud)
{
    cx *c = ud;
    char buf[1024];
    snprintf(buf, sizeof buf, "%s %.*s", type == LOOM_WS_TEXT ? "text" : "binary",
             (int)(len < 900 ? len : 900), (const char *)data);
    cx_answer(c, buf);
    loom_ws_close(ws, 1000, "done");
}

static void cx_error(loom_ws *ws, int32_t code, const char *msg, void *ud)
{
    (void)ws;
    char buf[700];
    snprintf(buf, sizeof buf, "error %d %s", (int)code, msg);
    cx_answer(ud, buf);
}

static void cx_close(loom_ws *ws, int32_t code, const char *reason, size_t len, void *ud)
{
    (void)ws;
    cx *c = ud;
    char buf[300];
    snprintf(buf, sizeof buf, "closed %d %.*s", (int)code, (int)(len < 200 ? len : 200), reason);
    event("{\"event\":\"client-close\",\"v\":\"%s\",\"code\":%ld,\"reason\":\"%s\"}",
          VERSION == 1 ? "1" : "2", (long)code, buf);
    cx_answer(c, buf);
    free(c);
}

static void cx_abort(loom_req *req, void *ud)
{
    (void)req;
    cx *c = ud;
    c->req = NULL;
}

static int32_t connect_route(loom_req *req, void *ud)
{
    (void)ud;
    size_t n;
    const char *url = loom_req_query(req, "url", 0, &n);
    const char *send = loom_req_query(req, "send", 0, &n);
    if (!url) return loom_resp_text(req, 400, "url?");
    cx *c = calloc(1, sizeof *c);
    c->req = req;
    snprintf(c->send, sizeof c->send, "%s", send ? send : "hello from a plugin");
    loom_ws_opts o;
    memset(&o, 0, sizeof o);
    o.size = sizeof o;
    if (qnum(req, "deflate")) o.flags |= LOOM_WS_DEFLATE;
    o.protocols = loom_req_query(req, "proto", 0, &n);
    o.on_open = cx_open;
    o.on_message = cx_message;
    o.on_error = cx_error;
    o.on_close = cx_close;
    o.ud = c;
    o.connect_timeout_ms = 5000;
    if (!loom_ws_connect(me, url, &o)) {
        free(c);
        return loom_resp_text(req, 400, "loom_ws_connect refused the URL");
    }
    loom_req_on_abort(req, cx_abort, c);
    return LOOM_PENDING;
}

static int32_t init(loom_plugin *self, const char *config, size_t len)
{
    (void)config;
    (void)len;
    me = self;
    int32_t rc = loom_route_add(self, "GET", "/ws/t", upgrade, NULL);
    if (rc == 0) rc = loom_route_add(self, "GET", "/ws/events", get_events, NULL);
    if (rc == 0) rc = loom_route_add(self, "GET", "/ws/connect", connect_route, NULL);
    return rc;
}

LOOM_PLUGIN("wstest", "1.0.0", init, NULL)
