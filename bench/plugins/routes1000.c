/* routes1000: 1,000 extra routes of the shapes real APIs have (static,
 * {id}, {id:\d+}), so that the plaintext request to GET / is routed through
 * a large table. */
#include <loom/loom.h>
#include <stdio.h>

static int32_t h_any(loom_req *req, void *ud)
{
    (void)ud;
    return loom_resp_text(req, 200, "route");
}

static int32_t init(loom_plugin *self, const char *config, size_t len)
{
    (void)config;
    (void)len;
    char p[128];
    for (int i = 0; i < 1000; i++) {
        switch (i % 4) {
        case 0:
            snprintf(p, sizeof p, "/api/v1/resource%d", i);
            break;
        case 1:
            snprintf(p, sizeof p, "/api/v1/resource%d/{id}", i);
            break;
        case 2:
            snprintf(p, sizeof p, "/api/v2/items%d/{id:\\d+}/detail", i);
            break;
        default:
            snprintf(p, sizeof p, "/static/page%d.html", i);
            break;
        }
        int32_t rc = loom_route_add(self, "GET", p, h_any, NULL);
        if (rc) return rc;
    }
    return 0;
}

LOOM_PLUGIN("routes1000", "1.0.0", init, NULL)
