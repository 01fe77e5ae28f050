/* svcuse: a consumer of the "greeter" service and of request watchers.
 *   GET /use         greeter v>=1: its hello and version, or 503
 *   GET /use2        greeter v>=2: its count (an entry of v2), or 503
 *   GET /slow        looks greeter up, waits 700 ms, calls it again: the
 *                    table stays valid across a reload of the provider
 *   GET /watch?id=X[&ms=N]  a watcher that logs "watch X <event>";
 *                    answers after N ms (300); if the client leaves, the
 *                    abort callback checks that a new watcher is told
 *                    LOOM_EGONE
 *   GET /late        loom_service_register outside init (LOOM_ESTATE) */
#include <loom/loom.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "greeter.h"

static loom_plugin *me;

static int32_t use(loom_req *req, void *ud)
{
    (void)ud;
    uint32_t v = 0;
    const greeter_api *g = loom_service_get(req, "greeter", 1, &v);
    if (!g) return loom_resp_text(req, 503, "no greeter");
    char out[96];
    snprintf(out, sizeof out, "%s (v%u)", g->hello(), v);
    return loom_resp_text(req, 200, out);
}

static int32_t use2(loom_req *req, void *ud)
{
    (void)ud;
    const greeter_api *g = loom_service_get(req, "greeter", 2, NULL);
    if (!g || !LOOM_SERVICE_HAS(g, greeter_api, count))
        return loom_resp_text(req, 503, "no greeter v2");
    char out[64];
    snprintf(out, sizeof out, "count %u", g->count());
    return loom_resp_text(req, 200, out);
}

typedef struct {
    loom_req *req;
    const greeter_api *g;
    char first[64];
} slow_state;

static void slow_done(loom_timer *t, void *ud)
{
    (void)t;
    slow_state *s = ud;
    char out[160];
    snprintf(out, sizeof out, "%s / %s", s->first, s->g->hello());
    loom_resp_text(s->req, 200, out);
}

static int32_t slow(loom_req *req, void *ud)
{
    (void)ud;
    slow_state *s = loom_req_alloc(req, sizeof *s);
    s->req = req;
    s->g = loom_service_get(req, "greeter", 1, NULL);
    if (!s->g) return loom_resp_text(req, 503, "no greeter");
    snprintf(s->first, sizeof s->first, "%s", s->g->hello());
    return loom_timer_start(me, 700, 0, slow_done, s) ? LOOM_PENDING : -1;
}

typedef struct {
    loom_req *req;
    loom_timer *t;
    char id[32];
} watch_state;

static void on_event(loom_req *req, int32_t ev, void *ud)
{
    (void)req;
    watch_state *w = ud;
    char msg[96];
    snprintf(msg, sizeof msg, "watch %s %s", w->id,
             ev == LOOM_REQ_ABORTED ? "aborted"
             : ev == LOOM_REQ_DONE  ? "done"
                                    : "?");
    loom_log(me, LOOM_LOG_INFO, msg);
}

static void on_late_event(loom_req *req, int32_t ev, void *ud)
{
    on_event(req, ev, ud);
}

static void on_abort(loom_req *req, void *ud)
{
    watch_state *w = ud;
    int32_t rc = loom_req_watch(req, on_late_event, w);
    char msg[96];
    snprintf(msg, sizeof msg, "watch %s: a watcher added after the abort got %d", w->id, rc);
    loom_log(me, LOOM_LOG_INFO, msg);
}

static void watch_done(loom_timer *t, void *ud)
{
    (void)t;
    watch_state *w = ud;
    loom_resp_text(w->req, 200, "watched");
}

static int32_t watch(loom_req *req, void *ud)
{
    (void)ud;
    watch_state *w = loom_req_alloc(req, sizeof *w);
    const char *id = loom_req_query(req, "id", 0, NULL);
    const char *ms = loom_req_query(req, "ms", 0, NULL);
    w->req = req;
    snprintf(w->id, sizeof w->id, "%s", id ? id : "-");
    if (loom_req_watch(req, on_event, w) != LOOM_OK) return -1;
    loom_req_on_abort(req, on_abort, w);
    uint64_t wait = ms ? strtoull(ms, NULL, 10) : 300;
    if (wait > 10000) wait = 10000;
    return loom_timer_start(me, wait, 0, watch_done, w) ? LOOM_PENDING : -1;
}

static int32_t late(loom_req *req, void *ud)
{
    (void)ud;
    static const uint32_t table = 4;
    loom_service_def def = {sizeof def, 1, "late", &table};
    char out[32];
    snprintf(out, sizeof out, "%d", loom_service_register(me, &def));
    return loom_resp_text(req, 200, out);
}

static int32_t init(loom_plugin *self, const char *config, size_t len)
{
    (void)config;
    (void)len;
    me = self;
    int32_t rc = loom_route_add(self, "GET", "/use", use, NULL);
    if (!rc) rc = loom_route_add(self, "GET", "/use2", use2, NULL);
    if (!rc) rc = loom_route_add(self, "GET", "/slow", slow, NULL);
    if (!rc) rc = loom_route_add(self, "GET", "/watch", watch, NULL);
    if (!rc) rc = loom_route_add(self, "GET", "/late", late, NULL);
    return rc;
}

LOOM_PLUGIN("svcuse", "1.0.0", init, NULL)
