/* opstest: routes that move every metric the admin listener reports.
 *   GET /o/ok               200
 *   GET /o/fail             500 (loom_resp_error)
 *   GET /o/slow             200 after 30 ms (a timer): the latency histogram
 *   GET /o/work?ms=N        200 after N ms (default 300, at most 10000) on the
 *                           thread pool: its gauges
 *   GET /o/fetch            fetches config "upstream" (ok), then 200
 *   GET /o/fetchbad         fetches config "closed" (connection refused), then 502
 *   GET /o/sess             loads the session, sets a key: a load and a save
 *   GET /o/log?n=N          logs N lines "opstest line I of N (pid P)", then 200
 *   GET /o/crash            logs "opstest: about to crash (pid P)", then SIGSEGV
 *   GET /o/esc/{v:[a"\\]+}  200: a pattern whose label needs escaping */
#define _POSIX_C_SOURCE 200809L
#include <loom/loom.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static loom_plugin *me;
static char upstream[256], closed[256];

static int32_t h_ok(loom_req *req, void *ud)
{
    (void)ud;
    return loom_resp_text(req, 200, "ok");
}

static int32_t h_fail(loom_req *req, void *ud)
{
    (void)ud;
    return loom_resp_error(req, 500, "failing on purpose");
}

static void slow_done(loom_timer *t, void *ud)
{
    (void)t;
    loom_resp_text((loom_req *)ud, 200, "slow");
}

static int32_t h_slow(loom_req *req, void *ud)
{
    (void)ud;
    return loom_timer_start(me, 30, 0, slow_done, req) ? LOOM_PENDING : -1;
}

typedef struct {
    loom_req *req;
    long ms;
} work;

static void work_run(void *ud)
{
    long ms = ((work *)ud)->ms;
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void work_done(void *ud, int32_t cancelled)
{
    loom_resp_text(((work *)ud)->req, cancelled ? 503 : 200, "worked");
}

static int32_t h_work(loom_req *req, void *ud)
{
    (void)ud;
    /* Read on the loop thread: the pool thread may call no loom function. */
    size_t len = 0;
    const char *ms = loom_req_query(req, "ms", 0, &len);
    work *w = loom_req_alloc(req, sizeof *w);
    if (!w) return -1;
    w->req = req;
    w->ms = ms ? atol(ms) : 300;
    if (w->ms < 0 || w->ms > 10000) return loom_resp_error(req, 400, "ms: 0 to 10000");
    return loom_work_queue(me, work_run, work_done, w) == LOOM_OK ? LOOM_PENDING : -1;
}

static void fetched(const loom_fetch_result *res, void *ud)
{
    loom_req *req = ud;
    int32_t e = loom_fetch_error(res);
    if (e == LOOM_FETCH_OK)
        loom_resp_text(req, 200, "fetched");
    else
        loom_resp_error(req, 502, loom_fetch_message(res));
}

static int32_t fetch_to(loom_req *req, const char *url)
{
    loom_fetch_opts o;
    memset(&o, 0, sizeof o);
    o.size = sizeof o;
    o.url = url;
    o.timeout_ms = 5000;
    return loom_fetch_start(me, req, &o, fetched, req) ? LOOM_PENDING : -1;
}

static int32_t h_fetch(loom_req *req, void *ud)
{
    return fetch_to(req, ud ? closed : upstream);
}

static void sess_loaded(loom_req *req, int32_t status, void *ud)
{
    (void)ud;
    if (status || loom_session_set(req, "seen", "true", 4)) {
        loom_resp_error(req, 500, "session failed");
        return;
    }
    loom_resp_text(req, 200, "session");
}

static int32_t h_sess(loom_req *req, void *ud)
{
    (void)ud;
    return loom_session_load(req, sess_loaded, NULL) ? loom_resp_error(req, 503, "no sessions")
                                                     : LOOM_PENDING;
}

static int32_t h_log(loom_req *req, void *ud)
{
    (void)ud;
    size_t nl = 0;
    const char *ns = loom_req_query(req, "n", 0, &nl);
    int n = ns ? atoi(ns) : 1;
    for (int i = 1; i <= n; i++) {
        char line[128];
        snprintf(line, sizeof line, "opstest line %d of %d (pid %d)", i, n, (int)getpid());
        loom_log(me, LOOM_LOG_INFO, line);
    }
    return loom_resp_text(req, 200, "logged");
}

static int32_t h_crash(loom_req *req, void *ud)
{
    (void)req;
    (void)ud;
    char line[128];
    snprintf(line, sizeof line, "opstest: about to crash (pid %d)", (int)getpid());
    loom_log(me, LOOM_LOG_INFO, line);
    raise(SIGSEGV);
    return -1;
}

static void copy_conf(const char *key, char *out, size_t cap)
{
    const loom_json *c = loom_config(me);
    const char *v = c ? loom_json_string(loom_json_get(c, key), NULL) : NULL;
    snprintf(out, cap, "%s", v ? v : "http://127.0.0.1:1/");
}

static int32_t init(loom_plugin *self, const char *config, size_t len)
{
    (void)config;
    (void)len;
    me = self;
    copy_conf("upstream", upstream, sizeof upstream);
    copy_conf("closed", closed, sizeof closed);
    int32_t rc = loom_route_add(self, "GET", "/o/ok", h_ok, NULL);
    if (!rc) rc = loom_route_add(self, "GET", "/o/fail", h_fail, NULL);
    if (!rc) rc = loom_route_add(self, "GET", "/o/slow", h_slow, NULL);
    if (!rc) rc = loom_route_add(self, "GET", "/o/work", h_work, NULL);
    if (!rc) rc = loom_route_add(self, "GET", "/o/fetch", h_fetch, NULL);
    if (!rc) rc = loom_route_add(self, "GET", "/o/fetchbad", h_fetch, (void *)1);
    if (!rc) rc = loom_route_add(self, "GET", "/o/sess", h_sess, NULL);
    if (!rc) rc = loom_route_add(self, "GET", "/o/log", h_log, NULL);
    if (!rc) rc = loom_route_add(self, "GET", "/o/crash", h_crash, NULL);
    if (!rc) rc = loom_route_add(self, "GET", "/o/esc/{v:[a\"\\\\]+}", h_ok, NULL);
    return rc;
}

LOOM_PLUGIN("opstest", "1.0.0", init, NULL)
