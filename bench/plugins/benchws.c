/* benchws: WebSocket workloads for bench/ws.py.
 *   GET /ws/sub?ch=C  subscribes the connection to channel C and says "ready";
 *                     a text message "pub C TEXT" publishes TEXT on C. */
#include <loom/loom.h>

#include <stdlib.h>
#include <string.h>

static loom_plugin *me;

static void on_message(loom_ws *ws, int32_t type, const void *data, size_t len, void *ud)
{
    (void)ws;
    (void)ud;
    const char *p = data, *sp;
    if (type != LOOM_WS_TEXT || len < 5 || memcmp(p, "pub ", 4) != 0) return;
    if (!(sp = memchr(p + 4, ' ', len - 4))) return;
    char ch[257];
    size_t cl = (size_t)(sp - (p + 4));
    if (cl == 0 || cl >= sizeof ch) return;
    memcpy(ch, p + 4, cl);
    ch[cl] = 0;
    loom_ws_publish(me, ch, LOOM_WS_TEXT, sp + 1, len - (size_t)(sp + 1 - p));
}

static void on_open(loom_ws *ws, void *ud)
{
    const char *ch = ud;
    if (ch[0]) loom_ws_subscribe(ws, ch);
    loom_ws_send_text(ws, "ready");
}

static void on_close(loom_ws *ws, int32_t code, const char *reason, size_t len, void *ud)
{
    (void)ws;
    (void)code;
    (void)reason;
    (void)len;
    free(ud);
}

static int32_t sub(loom_req *req, void *ud)
{
    (void)ud;
    size_t n = 0;
    const char *ch = loom_req_query(req, "ch", 0, &n);
    char *copy = malloc(n + 1); /* freed in on_close (the request is gone by on_open) */
    if (!copy) return LOOM_ENOMEM;
    if (ch) memcpy(copy, ch, n);
    copy[n] = 0;
    loom_ws_opts o;
    memset(&o, 0, sizeof o);
    o.size = sizeof o;
    o.on_open = on_open;
    o.on_message = on_message;
    o.on_close = on_close;
    o.ud = copy;
    int32_t rc = loom_ws_accept(me, req, &o, NULL);
    if (rc != LOOM_OK) free(copy);
    return rc == LOOM_OK || rc == LOOM_EBADREQ ? LOOM_DONE : rc;
}

static int32_t init(loom_plugin *self, const char *config, size_t len)
{
    (void)config;
    (void)len;
    me = self;
    return loom_route_add(self, "GET", "/ws/sub", sub, NULL);
}

LOOM_PLUGIN("benchws", "1.0.0", init, NULL)
