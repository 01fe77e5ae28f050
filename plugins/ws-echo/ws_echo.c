/* ws-echo: answers WebSocket upgrades at /ws/echo and sends every message
 * back with its type (text as text, binary as binary).
 *
 * Config (all optional):
 *   "max_msg_size": 16777216   bytes; larger messages close with 1009
 *   "deflate": false           permessage-deflate when the client offers it
 *   "heartbeat": 0             seconds of silence before a ping (0 = none)
 *   "allowed_origins": null    "same", or "https://a.example, ..." (403 otherwise)
 *   "protocols": null          subprotocols spoken, e.g. "echo, chat"
 * A client that does not read its echoes is closed with 1013 once its send
 * queue (32 MiB, two of the largest messages) is full. */
#include <loom/loom.h>

#include <stdio.h>
#include <string.h>

static loom_plugin *me;
static uint64_t max_msg = 16u << 20;
static int deflate;
static uint32_t heartbeat_ms;
static char origins[1024];
static char protocols[256];

static void on_message(loom_ws *ws, int32_t type, const void *data, size_t len, void *ud)
{
    (void)ud;
    if (loom_ws_send(ws, type, data, len) == LOOM_ELIMIT)
        loom_ws_close(ws, LOOM_WS_TRY_AGAIN, "not reading: send queue full");
}

static int32_t upgrade(loom_req *req, void *ud)
{
    (void)ud;
    loom_ws_opts o;
    memset(&o, 0, sizeof o);
    o.size = sizeof o;
    o.flags = deflate ? LOOM_WS_DEFLATE : 0;
    o.max_msg_size = max_msg;
    o.send_queue_limit = 2 * max_msg;
    o.heartbeat_ms = heartbeat_ms;
    o.allowed_origins = origins[0] ? origins : NULL;
    o.protocols = protocols[0] ? protocols : NULL;
    o.on_message = on_message;
    int32_t rc = loom_ws_accept(me, req, &o, NULL);
    return rc == LOOM_OK || rc == LOOM_EBADREQ ? LOOM_DONE : rc;
}

static int copy_str(const loom_json *v, char *dst, size_t cap, const char *key)
{
    size_t n;
    const char *s = loom_json_string(v, &n);
    if (!s || n >= cap) {
        char m[128];
        snprintf(m, sizeof m, "config \"%s\": must be a string shorter than %zu bytes", key, cap);
        loom_log(me, LOOM_LOG_ERROR, m);
        return -1;
    }
    memcpy(dst, s, n + 1);
    return 0;
}

static int32_t init(loom_plugin *self, const char *config, size_t len)
{
    (void)config;
    (void)len;
    me = self;
    static const char *const keys[] = {"max_msg_size",    "deflate",   "heartbeat",
                                       "allowed_origins", "protocols", NULL};
    const loom_json *c = loom_config(self), *v;
    if (loom_config_check_keys(self, c, NULL, keys)) return LOOM_EINVAL;
    if ((v = loom_json_get(c, "max_msg_size"))) {
        if (loom_json_type(v) != LOOM_JSON_INTEGER || loom_json_integer(v) < 1) {
            loom_log(self, LOOM_LOG_ERROR, "config \"max_msg_size\": must be a positive integer");
            return LOOM_EINVAL;
        }
        max_msg = (uint64_t)loom_json_integer(v);
    }
    if ((v = loom_json_get(c, "deflate"))) deflate = loom_json_type(v) == LOOM_JSON_TRUE;
    if ((v = loom_json_get(c, "heartbeat"))) {
        int t = loom_json_type(v);
        if ((t != LOOM_JSON_INTEGER && t != LOOM_JSON_REAL) || loom_json_real(v) < 0) {
            loom_log(self, LOOM_LOG_ERROR, "config \"heartbeat\": must be seconds (a number >= 0)");
            return LOOM_EINVAL;
        }
        heartbeat_ms = (uint32_t)(loom_json_real(v) * 1000.0);
    }
    if ((v = loom_json_get(c, "allowed_origins")) && loom_json_type(v) != LOOM_JSON_NULL &&
        copy_str(v, origins, sizeof origins, "allowed_origins"))
        return LOOM_EINVAL;
    if ((v = loom_json_get(c, "protocols")) && loom_json_type(v) != LOOM_JSON_NULL &&
        copy_str(v, protocols, sizeof protocols, "protocols"))
        return LOOM_EINVAL;
    return loom_route_add(self, "GET", "/ws/echo", upgrade, NULL);
}

LOOM_PLUGIN("ws-echo", "1.0.0", init, NULL)
