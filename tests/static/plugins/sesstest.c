/* sesstest: the session API driven over HTTP, for the store conformance test.
 *   GET  /s              -> {"new": bool, "data": {...}}
 *   POST /s?k=K&v=JSON   -> sets K (v absent: removes it), then as GET
 *   POST /s/regenerate   -> new ID, same data
 *   POST /s/invalidate   -> empty, cookie expired
 *   GET  /s/none         -> loads the session and changes nothing
 *   POST /s/hold?k=K&v=JSON&until=PATH[&commit=1]
 *                        -> loads the session, creates PATH.loaded, waits
 *                           until the file PATH
 *                           exists (the test's go signal, seen by every
 *                           worker), then sets K; with commit=1 it commits
 *                           with loom_session_save and answers 200
 *                           {"status": 0, "data": ...}, or 409 with the
 *                           status (-9: LOOM_ECONFLICT) and the session as
 *                           it is after the conflict; without, it answers
 *                           200 and leaves the save to the end.
 *   GET  /s/ignore       -> as GET, but ignores the load's status (a handler
 *                           written for ABI 1.1): the host must still not
 *                           let it answer 200 without a session.
 * A store that cannot answer gives 503. */
#include <loom/loom.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { GET, SET, REGEN, INVAL, NONE, IGNORE };

static loom_plugin *me;

static void loaded(loom_req *req, int32_t status, void *ud)
{
    int op = (int)(intptr_t)ud;
    int32_t rc = 0;
    if (status && op != IGNORE) {
        loom_resp_error(req, status == LOOM_EUNAVAIL ? 503 : 500, "session load failed");
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

/* ---- /s/hold ---- */

typedef struct {
    loom_req *req;
    char until[512];
    int polls;
    loom_timer *t;
} hold;

static void answer(loom_req *req, int status, int32_t rc)
{
    size_t dl;
    const char *d = loom_json_dump(req, loom_session_get(req), &dl);
    size_t n = dl + 64;
    char *out = loom_req_alloc(req, n);
    int len = snprintf(out, n, "{\"status\":%d,\"data\":%.*s}", (int)rc, (int)dl, d);
    loom_resp_json(req, status, out, (size_t)len);
}

static void committed(loom_req *req, int32_t status, void *ud)
{
    (void)ud;
    answer(req, status == 0 ? 200 : status == LOOM_ECONFLICT ? 409 : 503, status);
}

static void go(loom_timer *t, void *ud)
{
    hold *h = ud;
    if (access(h->until, F_OK) != 0 && ++h->polls < 1000) return; /* 10 s at most */
    loom_timer_stop(t);
    loom_req *req = h->req;
    size_t kl, vl, cl;
    const char *k = loom_req_query(req, "k", 0, &kl);
    const char *v = loom_req_query(req, "v", 0, &vl);
    const char *c = loom_req_query(req, "commit", 0, &cl);
    int32_t rc = k && v ? loom_session_set(req, k, v, vl) : LOOM_EINVAL;
    if (rc) {
        answer(req, 400, rc);
        return;
    }
    if (c && !strcmp(c, "1")) {
        rc = loom_session_save(req, committed, NULL);
        if (rc) answer(req, 500, rc);
        return;
    }
    answer(req, 200, 0);
}

static void held(loom_req *req, int32_t status, void *ud)
{
    (void)ud;
    if (status) {
        loom_resp_error(req, 503, "session load failed");
        return;
    }
    size_t ul;
    const char *u = loom_req_query(req, "until", 0, &ul);
    hold *h = loom_req_alloc(req, sizeof *h);
    if (!u || !h || ul >= sizeof h->until) {
        loom_resp_error(req, 400, "until=PATH");
        return;
    }
    memset(h, 0, sizeof *h);
    h->req = req;
    memcpy(h->until, u, ul);
    char mark[600]; /* tells the test that the session is loaded */
    snprintf(mark, sizeof mark, "%s.loaded", h->until);
    FILE *f = fopen(mark, "w");
    if (f) fclose(f);
    h->t = loom_timer_start(me, 10, 10, go, h);
    if (!h->t) loom_resp_error(req, 500, "no timer");
}

static int32_t hold_route(loom_req *req, void *ud)
{
    (void)ud;
    int32_t rc = loom_session_load(req, held, NULL);
    if (rc) return loom_resp_error(req, 503, "sessions are not configured");
    return LOOM_PENDING;
}

static int32_t init(loom_plugin *self, const char *config, size_t len)
{
    (void)config;
    (void)len;
    me = self;
    int32_t rc = loom_route_add(self, "GET", "/s", handle, (void *)(intptr_t)GET);
    if (!rc) rc = loom_route_add(self, "POST", "/s", handle, (void *)(intptr_t)SET);
    if (!rc) rc = loom_route_add(self, "POST", "/s/regenerate", handle, (void *)(intptr_t)REGEN);
    if (!rc) rc = loom_route_add(self, "POST", "/s/invalidate", handle, (void *)(intptr_t)INVAL);
    if (!rc) rc = loom_route_add(self, "GET", "/s/none", handle, (void *)(intptr_t)NONE);
    if (!rc) rc = loom_route_add(self, "GET", "/s/ignore", handle, (void *)(intptr_t)IGNORE);
    if (!rc) rc = loom_route_add(self, "GET", "/s/early", early, NULL);
    if (!rc) rc = loom_route_add(self, "POST", "/s/hold", hold_route, NULL);
    return rc;
}

LOOM_PLUGIN("sesstest", "1.0.0", init, NULL);
