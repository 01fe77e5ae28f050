/* benchjson: the JSON workload -- GET /json answers {"message":"Hello, World!"},
 * serialised per request (as TechEmpower requires), not cached. */
#include <loom/loom.h>
#include <stdio.h>

static int32_t h_json(loom_req *req, void *ud)
{
    (void)ud;
    char buf[64];
    int n = snprintf(buf, sizeof buf, "{\"message\":\"%s\"}", "Hello, World!");
    return loom_resp_json(req, 200, buf, (size_t)n);
}

static int32_t init(loom_plugin *self, const char *config, size_t len)
{
    (void)config;
    (void)len;
    return loom_route_add(self, "GET", "/json", h_json, NULL);
}

LOOM_PLUGIN("benchjson", "1.0.0", init, NULL)
