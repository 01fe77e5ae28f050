/* sesstest: the session API driven over HTTP, for the store conformance test.
 *   GET  /s              -> {"new": bool, "data": {...}}
 *   POST /s?k=K&v=JSON   -> sets K (v absent: removes it), then as GET
 *   POST /s/regenerate   -> new ID, same data
 *   POST /s/invalidate   -> empty, cookie expired
 *   GET  /s/none         -> loads the session and changes nothing */
#include <loom/loom.h>

#include <stdio.h>
#include <string.h>

enum { GET, SET, REGEN, INVAL, NONE };

static void loaded(loom_req *req, int32_t status, void *ud)
{
    int op = (int)(intptr_t)ud;
    int32_t rc = 0;
    if (status) {
        loom_resp_error(req, 500, "session load failed");
        return;
    }
    if (op == SET) {
        size_t kl, vl;
        const char *k = loom_req_query(req, "k", 0, &kl);
        const char *v = loom_req_query(req, "v", 0, &vl);
        rc = k ? loom_session_set(req, k, v, v ? vl : 0) : LOOM_EINVAL;
    } else if (op == REGEN) {
        rc = loom_session_regenerate(req);
    } else if (op == INVAL) {
        rc = loom_session_invalidate(req);
    }
    if (rc) {
        char msg[64];
        snprintf(msg, sizeof msg, "session call failed: %d", rc);
        loom_resp_error(req, rc == LOOM_ELIMIT ? 413 : 400, msg);
        return;
    }
    size_t dl;
    const char *d = loom_json_dump(req, loom_session_get(req), &dl);
    size_t n = dl + 64;
    char *out = loom_req_alloc(req, n);
    int len = snprintf(out, n, "{\"new\":%s,\"data\":%.*s}",
                       loom_session_is_new(req) == 1 ? "true" : "false", (int)dl, d);
    loom_resp_json(req, 200, out, (size_t)len);
}

static int32_t handle(loom_req *req, void *ud)
{
    int32_t rc = loom_session_load(req, loaded, ud);
    if (rc) return loom_resp_error(req, 503, "sessions are not configured");
    return LOOM_PENDING;
}

/* Starts a load and answers at once, without waiting for it. */
static int32_t early(loom_req *req, void *ud)
{
    (void)ud;
    int32_t rc = loom_session_load(req, loaded, (void *)(intptr_t)GET);
    if (rc) return loom_resp_error(req, 503, "sessions are not configured");
    return loom_resp_text(req, 202, "answered early");
}

static int32_t init(loom_plugin *self, const char *config, size_t len)
{
    (void)config;
    (void)len;
    int32_t rc = loom_route_add(self, "GET", "/s", handle, (void *)(intptr_t)GET);
    if (!rc) rc = loom_route_add(self, "POST", "/s", handle, (void *)(intptr_t)SET);
    if (!rc) rc = loom_route_add(self, "POST", "/s/regenerate", handle, (void *)(intptr_t)REGEN);
    if (!rc) rc = loom_route_add(self, "POST", "/s/invalidate", handle, (void *)(intptr_t)INVAL);
    if (!rc) rc = loom_route_add(self, "GET", "/s/none", handle, (void *)(intptr_t)NONE);
    if (!rc) rc = loom_route_add(self, "GET", "/s/early", early, NULL);
    return rc;
}

LOOM_PLUGIN("sesstest", "1.0.0", init, NULL);
