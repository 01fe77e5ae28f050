/* version: a reloadable plugin for the hot-reload tests, built several times
 * with -DVERSION=N (and -DFAIL_INIT for a version whose init fails).
 *   GET /v      -> "vN", and a middleware adds X-Version: N to every response
 *   GET /slow   -> "slow vN" after 700 ms (a request pending across a reload)
 *   GET /count  -> a counter that survives reloads through the state handoff */
#include <loom/loom.h>
#include <stdio.h>
#include <string.h>

#ifndef VERSION
#define VERSION 1
#endif
#define STR2(x) #x
#define STR(x) STR2(x)

static loom_plugin *me;
static uint64_t counter;

static void tag(loom_req *req, void *ud)
{
    (void)ud;
    loom_resp_header_set(req, "X-Version", STR(VERSION));
}

static int32_t h_v(loom_req *req, void *ud)
{
    (void)ud;
    return loom_resp_text(req, 200, "v" STR(VERSION));
}

static void slow_done(loom_timer *t, void *ud)
{
    (void)t;
    loom_resp_text((loom_req *)ud, 200, "slow v" STR(VERSION));
}

static int32_t h_slow(loom_req *req, void *ud)
{
    (void)ud;
    return loom_timer_start(me, 700, 0, slow_done, req) ? LOOM_PENDING : -1;
}

static int32_t h_count(loom_req *req, void *ud)
{
    (void)ud;
    counter++;
    loom_state_put(me, &counter, sizeof counter);
    char buf[32];
    snprintf(buf, sizeof buf, "%llu", (unsigned long long)counter);
    return loom_resp_text(req, 200, buf);
}

static int32_t init(loom_plugin *self, const char *config, size_t len)
{
    (void)config;
    (void)len;
    me = self;
#ifdef FAIL_INIT
    loom_log(self, LOOM_LOG_ERROR, "refusing to start (test)");
    return -5;
#endif
    size_t n;
    const void *st = loom_state_get(self, &n);
    if (st && n == sizeof counter) memcpy(&counter, st, n);
    loom_middleware_def d = {sizeof d, LOOM_ORDER_MIDDLE, "version-tag", NULL, NULL, NULL, tag,
                             NULL};
    int32_t rc = loom_middleware_add(self, &d);
    rc |= loom_route_add(self, "GET", "/v", h_v, NULL);
    rc |= loom_route_add(self, "GET", "/slow", h_slow, NULL);
    rc |= loom_route_add(self, "GET", "/count", h_count, NULL);
    return rc;
}

LOOM_PLUGIN("version", "1.0." STR(VERSION), init, NULL)
