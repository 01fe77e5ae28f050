/* bgfetch: starts a fetch that belongs to the plugin, not to a request, and
 * answers at once; the fetch must be cancelled when the plugin is unloaded.
 *   GET /bg?url=U  -> "started" (fetch of U in the background)
 *   GET /bgdone    -> how many background fetches completed
 *   GET /tied?url=U -> the answer of a fetch of U tied to the request, with
 *                      no abort callback (the host warns when the client
 *                      leaves first: nothing answers the request then)
 *   GET /release   -> answers the request /tied left pinned: "released RC" */
#include <loom/loom.h>
#include <stdio.h>
#include <string.h>

static loom_plugin *me;
static int completed;

static void done(const loom_fetch_result *res, void *ud)
{
    (void)res;
    (void)ud;
    completed++;
}

static int32_t h_bg(loom_req *req, void *ud)
{
    (void)ud;
    const char *url = loom_req_query(req, "url", 0, NULL);
    if (!url) return loom_resp_error(req, 400, "want ?url=");
    loom_fetch_opts o;
    memset(&o, 0, sizeof o);
    o.size = sizeof o;
    o.url = url;
    o.timeout_ms = 60000;
    if (!loom_fetch_start(me, NULL, &o, done, NULL)) return loom_resp_error(req, 500, "no fetch");
    return loom_resp_text(req, 200, "started");
}

static loom_req *tied; /* the request of /tied while it waits */

static void tied_done(const loom_fetch_result *res, void *ud)
{
    (void)res;
    tied = NULL;
    loom_resp_text(ud, 200, "fetched");
}

static int32_t h_release(loom_req *req, void *ud)
{
    (void)ud;
    char buf[32];
    loom_req *r = tied;
    tied = NULL;
    /* The request stays valid until answered; on an aborted one the answer
     * just releases it (LOOM_EGONE). */
    snprintf(buf, sizeof buf, "released %d", r ? (int)loom_resp_text(r, 200, "late") : 1);
    return loom_resp_text(req, 200, buf);
}

static int32_t h_tied(loom_req *req, void *ud)
{
    (void)ud;
    const char *url = loom_req_query(req, "url", 0, NULL);
    if (!url) return loom_resp_error(req, 400, "want ?url=");
    loom_fetch_opts o;
    memset(&o, 0, sizeof o);
    o.size = sizeof o;
    o.url = url;
    o.timeout_ms = 60000;
    if (!loom_fetch_start(me, req, &o, tied_done, req))
        return loom_resp_error(req, 500, "no fetch");
    tied = req;
    return LOOM_PENDING;
}

static int32_t h_done(loom_req *req, void *ud)
{
    (void)ud;
    char buf[16];
    snprintf(buf, sizeof buf, "%d", completed);
    return loom_resp_text(req, 200, buf);
}

static int32_t init(loom_plugin *self, const char *config, size_t len)
{
    (void)config;
    (void)len;
    me = self;
    int32_t rc = loom_route_add(self, "GET", "/bg", h_bg, NULL);
    if (!rc) rc = loom_route_add(self, "GET", "/tied", h_tied, NULL);
    if (!rc) rc = loom_route_add(self, "GET", "/release", h_release, NULL);
    return rc ? rc : loom_route_add(self, "GET", "/bgdone", h_done, NULL);
}

LOOM_PLUGIN("bgfetch", "1.0.0", init, NULL)
