/* mwtest: middleware for tests -- an early 401, a request rewrite, an
 * asynchronous middleware, a response rewrite and a failing middleware. */
#include <loom/loom.h>
#include <string.h>

static loom_plugin *me;

static int32_t auth(loom_req *req, void *ud)
{
    (void)ud;
    size_t n;
    const char *p = loom_req_path(req, &n);
    if (strncmp(p, "/secret", 7) == 0) {
        const char *a = loom_req_header(req, "Authorization", NULL);
        if (!a || strcmp(a, "Bearer yes") != 0) return loom_resp_error(req, 401, "who are you?");
    }
    if (strcmp(p, "/old-q") == 0) loom_req_set_path(req, "/q");
    if (strcmp(p, "/mwfail") == 0) return -7;
    return LOOM_NEXT;
}

static void tag(loom_req *req, void *ud)
{
    loom_resp_header_add(req, "X-Order", (const char *)ud);
}

static void resume(loom_timer *t, void *ud)
{
    (void)t;
    loom_next((loom_req *)ud);
}

static int32_t slow(loom_req *req, void *ud)
{
    (void)ud;
    if (strcmp(loom_req_path(req, NULL), "/slowmw/q") != 0) return LOOM_NEXT;
    loom_req_set_path(req, "/q");
    return loom_timer_start(me, 30, 0, resume, req) ? LOOM_PENDING : -1;
}

static void rewrite(loom_req *req, void *ud)
{
    (void)ud;
    if (loom_resp_get_status(req) == 404) {
        loom_resp_status(req, 404);
        loom_resp_header_set(req, "Content-Type", "text/plain");
        loom_resp_body(req, "nothing here (mw)", 17);
    }
}

static int32_t init(loom_plugin *self, const char *config, size_t len)
{
    (void)config;
    (void)len;
    me = self;
    loom_middleware_def a = {sizeof a, LOOM_ORDER_MIDDLE, "auth", NULL, "outer", auth, tag, "auth"};
    loom_middleware_def o = {sizeof o, LOOM_ORDER_FIRST, "outer", NULL, NULL, NULL, tag, "outer"};
    loom_middleware_def s = {sizeof s, LOOM_ORDER_LAST, "slow", NULL, NULL, slow, rewrite, NULL};
    int32_t rc = loom_middleware_add(self, &a);
    if (rc == 0) rc = loom_middleware_add(self, &o);
    if (rc == 0) rc = loom_middleware_add(self, &s);
    return rc;
}

LOOM_PLUGIN("mwtest", "1.0.0", init, NULL)
