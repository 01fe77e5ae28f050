/* corsapi: endpoints for the CORS tests (the cross-origin API). */
#include <loom/loom.h>

#include <stdio.h>
#include <string.h>

static int32_t data(loom_req *req, void *ud)
{
    (void)ud;
    char out[256];
    const char *c = loom_req_cookie(req, "c", NULL);
    snprintf(out, sizeof out, "{\"ok\":true,\"cookie\":\"%s\"}", c && strlen(c) < 64 ? c : "");
    loom_resp_header_set(req, "X-Total", "42");
    loom_resp_header_set(req, "X-Hidden", "h");
    return loom_resp_json(req, 200, out, strlen(out));
}

static int32_t login(loom_req *req, void *ud)
{
    (void)ud;
    loom_cookie ck;
    memset(&ck, 0, sizeof ck);
    ck.size = sizeof ck;
    ck.name = "c";
    ck.value = "s3cret";
    ck.flags = LOOM_COOKIE_HTTP_ONLY;
    ck.same_site = "Lax";
    loom_resp_set_cookie(req, &ck);
    return loom_resp_json(req, 200, "{\"login\":true}", 14);
}

static int32_t put(loom_req *req, void *ud)
{
    (void)ud;
    char out[256];
    const char *t = loom_req_header(req, "X-Token", NULL);
    snprintf(out, sizeof out, "{\"put\":true,\"token\":\"%s\"}", t && strlen(t) < 64 ? t : "");
    return loom_resp_json(req, 200, out, strlen(out));
}

static int32_t options(loom_req *req, void *ud)
{
    (void)ud;
    return loom_resp_text(req, 500, "the OPTIONS handler was reached");
}

static int32_t init(loom_plugin *self, const char *config, size_t len)
{
    (void)config;
    (void)len;
    int32_t rc = loom_route_add(self, "GET", "/api/data", data, NULL);
    if (!rc) rc = loom_route_add(self, "GET", "/api/login", login, NULL);
    if (!rc) rc = loom_route_add(self, "PUT", "/api/item", put, NULL);
    if (!rc) rc = loom_route_add(self, "OPTIONS", "/api/item", options, NULL);
    if (!rc) rc = loom_route_add(self, "GET", "/private/data", data, NULL);
    if (!rc) rc = loom_route_add(self, "GET", "/plain", data, NULL);
    return rc;
}

LOOM_PLUGIN("corsapi", "1.0.0", init, NULL);
