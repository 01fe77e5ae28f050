/* chat: a small chat room over WebSockets, the example of loom's channels.
 *
 *   GET /chat                   the page (HTML and JavaScript, no files)
 *   GET /chat/ws?room=R&name=N  the WebSocket: every text message is said to
 *                               everyone in room R, in every worker of the
 *                               server (and, with "ws_pubsub": {"redis": ...},
 *                               on every server sharing that Redis)
 *
 * What goes to the browsers is JSON: {"type":"hello","worker":PID} to each
 * new connection, then {"type":"say"|"join"|"leave","name":N,"text":T,
 * "worker":PID} on the room's channel "chat:R".
 *
 * Config (all optional):
 *   "allowed_origins": "same"  pages of other sites cannot open the socket (403)
 *   "max_msg_size": 4096       bytes per message (1009 beyond)
 *   "heartbeat": 30            seconds: dead browsers are found and dropped */
#include <loom/loom.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static loom_plugin *me;
static char origins[512] = "same";
static uint64_t max_msg = 4096;
static uint32_t heartbeat_ms = 30000;

typedef struct {
    char room[64];
    char name[64];
    int joined;
} member;

static const char page[] =
    "<!doctype html><html><head><meta charset=utf-8><title>loom chat</title>"
    "<style>body{font:15px sans-serif;max-width:40em;margin:2em auto}#log{list-style:none;"
    "padding:0}#log li{padding:2px 0}.n{font-weight:bold}.sys{color:#888}</style></head><body>"
    "<h1>loom chat <small id=room></small></h1><p id=status>connecting...</p><ul id=log></ul>"
    "<form id=f><input id=t autocomplete=off size=50 autofocus><button>Send</button></form>"
    "<script>\n"
    "const q = new URLSearchParams(location.search);\n"
    "const room = q.get('room') || 'lobby', name = q.get('name') || 'guest' + (Math.random() * "
    "1000 | 0);\n"
    "document.getElementById('room').textContent = '#' + room + ' as ' + name;\n"
    "const log = document.getElementById('log');\n"
    "function line(cls, who, text) { const li = document.createElement('li'); li.className = "
    "cls;\n"
    "  if (who) { const b = document.createElement('span'); b.className = 'n'; b.textContent = "
    "who + ': '; li.appendChild(b); }\n"
    "  li.appendChild(document.createTextNode(text)); log.appendChild(li); }\n"
    "const ws = new WebSocket((location.protocol === 'https:' ? 'wss://' : 'ws://') + "
    "location.host + '/chat/ws?room=' + encodeURIComponent(room) + '&name=' + "
    "encodeURIComponent(name));\n"
    "ws.onmessage = (e) => { const m = JSON.parse(e.data);\n"
    "  if (m.type === 'hello') { document.body.dataset.worker = m.worker; "
    "document.getElementById('status').textContent = 'connected (worker ' + m.worker + ')'; }\n"
    "  else if (m.type === 'say') line('say', m.name, m.text);\n"
    "  else line('sys', '', m.name + (m.type === 'join' ? ' joined' : ' left') + ' (worker ' + "
    "m.worker + ')'); };\n"
    "ws.onclose = (e) => { document.getElementById('status').textContent = 'closed ' + e.code; "
    "};\n"
    "function send(text) { ws.send(text); }\n"
    "document.getElementById('f').onsubmit = (e) => { e.preventDefault(); const t = "
    "document.getElementById('t'); if (t.value) { send(t.value); t.value = ''; } };\n"
    "</script></body></html>\n";

/* Appends `s` as a JSON string's content. */
static size_t json_escape(char *out, size_t cap, const char *s, size_t n)
{
    size_t o = 0;
    for (size_t i = 0; i < n && o + 7 < cap; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            out[o++] = '\\';
            out[o++] = (char)c;
        } else if (c < 0x20) {
            o += (size_t)snprintf(out + o, cap - o, "\\u%04x", c);
        } else {
            out[o++] = (char)c;
        }
    }
    out[o] = 0;
    return o;
}

static void say(member *m, const char *type, const char *text, size_t len)
{
    size_t cap = 2 * 6 * (len + 128) + 256;
    char *buf = malloc(cap), *t = malloc(6 * len + 1), nm[6 * 64 + 1];
    if (!buf || !t) {
        free(buf);
        free(t);
        return;
    }
    json_escape(t, 6 * len + 1, text, len);
    json_escape(nm, sizeof nm, m->name, strlen(m->name));
    int n = snprintf(buf, cap, "{\"type\":\"%s\",\"name\":\"%s\",\"text\":\"%s\",\"worker\":%d}",
                     type, nm, t, (int)getpid());
    char channel[80];
    snprintf(channel, sizeof channel, "chat:%s", m->room);
    if (n > 0) loom_ws_publish(me, channel, LOOM_WS_TEXT, buf, (size_t)n);
    free(buf);
    free(t);
}

static void on_open(loom_ws *ws, void *ud)
{
    member *m = ud;
    loom_ws_set_user(ws, m);
    char channel[80], hello[64];
    snprintf(channel, sizeof channel, "chat:%s", m->room);
    loom_ws_subscribe(ws, channel);
    snprintf(hello, sizeof hello, "{\"type\":\"hello\",\"worker\":%d}", (int)getpid());
    loom_ws_send_text(ws, hello);
    m->joined = 1;
    say(m, "join", "", 0);
}

static void on_message(loom_ws *ws, int32_t type, const void *data, size_t len, void *ud)
{
    (void)ws;
    if (type == LOOM_WS_TEXT) say(ud, "say", data, len);
}

static void on_close(loom_ws *ws, int32_t code, const char *reason, size_t len, void *ud)
{
    (void)ws;
    (void)code;
    (void)reason;
    (void)len;
    member *m = ud;
    if (m->joined) say(m, "leave", "", 0);
    free(m);
}

/* Room and name: letters, digits, - and _ only, at most 32 bytes. */
static int clean(const char *v, size_t n, char *out, size_t cap, const char *def)
{
    if (!v || n == 0) v = def, n = strlen(def);
    if (n > 32 || n >= cap) return -1;
    for (size_t i = 0; i < n; i++) {
        char c = v[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_'))
            return -1;
    }
    memcpy(out, v, n);
    out[n] = 0;
    return 0;
}

static int32_t chat_ws(loom_req *req, void *ud)
{
    (void)ud;
    size_t rl = 0, nl = 0;
    const char *room = loom_req_query(req, "room", 0, &rl);
    const char *name = loom_req_query(req, "name", 0, &nl);
    member *m = calloc(1, sizeof *m);
    if (!m) return LOOM_ENOMEM;
    if (clean(room, rl, m->room, sizeof m->room, "lobby") ||
        clean(name, nl, m->name, sizeof m->name, "guest")) {
        free(m);
        return loom_resp_error(req, 400, "room and name: letters, digits, - and _, up to 32");
    }
    loom_ws_opts o;
    memset(&o, 0, sizeof o);
    o.size = sizeof o;
    o.allowed_origins = origins[0] ? origins : NULL;
    o.max_msg_size = max_msg;
    o.heartbeat_ms = heartbeat_ms;
    o.on_open = on_open;
    o.on_message = on_message;
    o.on_close = on_close;
    o.ud = m;
    int32_t rc = loom_ws_accept(me, req, &o, NULL);
    if (rc != LOOM_OK) free(m); /* answered (400/403/426/503): no callback will run */
    return rc == LOOM_OK || rc == LOOM_EBADREQ ? LOOM_DONE : rc;
}

static int32_t chat_page(loom_req *req, void *ud)
{
    (void)ud;
    return loom_resp_bytes(req, 200, "text/html; charset=utf-8", page, sizeof page - 1);
}

static int32_t init(loom_plugin *self, const char *config, size_t len)
{
    (void)config;
    (void)len;
    me = self;
    static const char *const keys[] = {"allowed_origins", "max_msg_size", "heartbeat", NULL};
    const loom_json *c = loom_config(self), *v;
    if (loom_config_check_keys(self, c, NULL, keys)) return LOOM_EINVAL;
    if ((v = loom_json_get(c, "allowed_origins"))) {
        size_t n;
        const char *s = loom_json_string(v, &n);
        if (loom_json_type(v) == LOOM_JSON_NULL) {
            origins[0] = 0;
        } else if (!s || n >= sizeof origins) {
            loom_log(self, LOOM_LOG_ERROR, "config \"allowed_origins\": must be a string or null");
            return LOOM_EINVAL;
        } else {
            memcpy(origins, s, n + 1);
        }
    }
    if ((v = loom_json_get(c, "max_msg_size"))) {
        if (loom_json_type(v) != LOOM_JSON_INTEGER || loom_json_integer(v) < 1) {
            loom_log(self, LOOM_LOG_ERROR, "config \"max_msg_size\": must be a positive integer");
            return LOOM_EINVAL;
        }
        max_msg = (uint64_t)loom_json_integer(v);
    }
    if ((v = loom_json_get(c, "heartbeat"))) {
        int t = loom_json_type(v);
        if ((t != LOOM_JSON_INTEGER && t != LOOM_JSON_REAL) || loom_json_real(v) < 0) {
            loom_log(self, LOOM_LOG_ERROR, "config \"heartbeat\": must be seconds (a number >= 0)");
            return LOOM_EINVAL;
        }
        heartbeat_ms = (uint32_t)(loom_json_real(v) * 1000.0);
    }
    int32_t rc = loom_route_add(self, "GET", "/chat", chat_page, NULL);
    if (rc == 0) rc = loom_route_add(self, "GET", "/chat/ws", chat_ws, NULL);
    return rc;
}

LOOM_PLUGIN("chat", "1.0.0", init, NULL)
