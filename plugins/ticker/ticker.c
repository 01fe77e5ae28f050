/* ticker: a live page fed by Server-Sent Events (ABI 1.5).
 *
 * GET /ticker/ is an HTML page whose EventSource reads /ticker/events; every
 * interval_ms one "tick" event goes to every open stream with the server
 * time and this worker's request count. Event IDs count ticks, so a client
 * that reconnects sends Last-Event-ID and is told which tick it resumed
 * from. The broadcast is a loop over the open streams; a stream whose client
 * reads too slowly (LOOM_ELIMIT) skips ticks rather than piling them up.
 *
 * Config (optional): {"interval_ms": 1000, "retry_ms": 1000,
 *                     "max_events": 0,      end a stream after this many
 *                                           ticks (0: never; the client
 *                                           then reconnects)
 *                     "keepalive_ms": 15000} */
#define _GNU_SOURCE
#include <loom/loom.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct stream {
    loom_sse *sse;
    uint64_t sent;
    char resumed[32]; /* the Last-Event-ID it came with, or "" */
    struct stream *prev, *next;
} stream;

static stream *streams;
static uint64_t ticks, interval_ms = 1000, retry_ms = 1000, max_events, keepalive_ms;
static loom_timer *timer;
static loom_plugin *me;

static const char page[] =
    "<!DOCTYPE html>\n"
    "<html><head><meta charset=\"utf-8\"><title>loom ticker</title>\n"
    "<style>body{font:16px system-ui,sans-serif;margin:2em}b{font-variant-numeric:"
    "tabular-nums}</style></head>\n"
    "<body><h1>loom ticker</h1>\n"
    "<p>Server time: <b id=\"time\">connecting...</b></p>\n"
    "<p>Requests served by this worker: <b id=\"requests\">-</b></p>\n"
    "<p>Event <b id=\"id\">-</b>; connections opened: <b id=\"opens\">0</b>; "
    "resumed from event: <b id=\"resumed\">-</b></p>\n"
    "<script>\n"
    "let opens = 0;\n"
    "const es = new EventSource('/ticker/events');\n"
    "const $ = (id) => document.getElementById(id);\n"
    "es.onopen = () => { $('opens').textContent = String(++opens); };\n"
    "es.addEventListener('tick', (e) => {\n"
    "  const d = JSON.parse(e.data);\n"
    "  $('time').textContent = d.time;\n"
    "  $('requests').textContent = String(d.requests);\n"
    "  $('id').textContent = e.lastEventId;\n"
    "  if (d.resumed) $('resumed').textContent = d.resumed;\n"
    "});\n"
    "</script></body></html>\n";

static int32_t serve_page(loom_req *req, void *ud)
{
    (void)ud;
    loom_resp_header_set(req, "Cache-Control", "no-cache");
    return loom_resp_bytes(req, 200, "text/html; charset=utf-8", page, sizeof page - 1);
}

static void drop(stream *st)
{
    if (st->prev)
        st->prev->next = st->next;
    else
        streams = st->next;
    if (st->next) st->next->prev = st->prev;
    free(st);
}

/* The client left or the server stops: the handle goes with this call. */
static void on_close(loom_sse *s, int32_t reason, void *ud)
{
    (void)s;
    (void)reason;
    drop(ud);
}

static int send_tick(stream *st)
{
    char data[160], id[24];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    int n = snprintf(data, sizeof data,
                     "{\"time\":\"%02d:%02d:%02d.%03ld UTC\",\"requests\":%llu,\"tick\":%llu,"
                     "\"resumed\":\"%s\"}",
                     tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000,
                     (unsigned long long)loom_server_requests(me), (unsigned long long)ticks,
                     st->resumed);
    snprintf(id, sizeof id, "%llu", (unsigned long long)ticks);
    loom_sse_event ev = {sizeof ev, 0, "tick", id, (int64_t)retry_ms, data, (size_t)n};
    int32_t rc = loom_sse_send(st->sse, &ev);
    if (rc == LOOM_OK) st->sent++;
    if (rc == LOOM_EGONE) return -1; /* on_close ran: st is gone */
    if (max_events && st->sent >= max_events) {
        loom_sse_close(st->sse);
        drop(st);
        return -1;
    }
    return 0;
}

static void tick(loom_timer *t, void *ud)
{
    (void)t;
    (void)ud;
    ticks++;
    stream *st = streams, *next;
    for (; st; st = next) {
        next = st->next;
        send_tick(st);
    }
}

static int32_t events(loom_req *req, void *ud)
{
    (void)ud;
    stream *st = calloc(1, sizeof *st);
    if (!st) return loom_resp_error(req, 503, "out of memory");
    loom_sse_opts o = {sizeof o, 0, keepalive_ms, 0, on_close, st};
    st->sse = loom_sse_open(req, &o);
    if (!st->sse) {
        free(st);
        return loom_resp_error(req, 500, "cannot open the event stream");
    }
    size_t len = 0;
    const char *last = loom_sse_last_event_id(st->sse, &len);
    if (last && len < sizeof st->resumed) {
        /* Only digits are echoed back into the JSON. */
        size_t i = 0;
        while (i < len && last[i] >= '0' && last[i] <= '9') i++;
        if (i == len) memcpy(st->resumed, last, len + 1);
    }
    st->next = streams;
    if (streams) streams->prev = st;
    streams = st;
    send_tick(st); /* the page shows something at once */
    return LOOM_PENDING;
}

static uint64_t opt(const loom_json *c, const char *key, uint64_t def)
{
    const loom_json *v = c ? loom_json_get(c, key) : NULL;
    return v && loom_json_type(v) == LOOM_JSON_INTEGER && loom_json_integer(v) >= 0
               ? (uint64_t)loom_json_integer(v)
               : def;
}

static int32_t init(loom_plugin *self, const char *config, size_t len)
{
    (void)config;
    (void)len;
    me = self;
    const loom_json *c = loom_config(self);
    static const char *const keys[] = {"interval_ms", "retry_ms", "max_events", "keepalive_ms",
                                       NULL};
    if (loom_config_check_keys(self, c, NULL, keys)) return LOOM_EINVAL;
    interval_ms = opt(c, "interval_ms", 1000);
    retry_ms = opt(c, "retry_ms", 1000);
    max_events = opt(c, "max_events", 0);
    keepalive_ms = opt(c, "keepalive_ms", 15000);
    if (interval_ms < 10) {
        loom_log(self, LOOM_LOG_ERROR, "ticker: \"interval_ms\" must be at least 10");
        return LOOM_EINVAL;
    }
    int32_t rc = loom_route_add(self, "GET", "/ticker/", serve_page, NULL);
    if (rc == 0) rc = loom_route_add(self, "GET", "/ticker/events", events, NULL);
    if (rc) return rc;
    timer = loom_timer_start(self, interval_ms, interval_ms, tick, NULL);
    return timer ? 0 : LOOM_ENOMEM;
}

static void fini(loom_plugin *self)
{
    (void)self;
    /* Every stream ended before fini (their requests pin the plugin). */
    while (streams) drop(streams);
}

LOOM_PLUGIN("ticker", "1.0.0", init, fini);
