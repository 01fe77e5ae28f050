/* old10: a plugin compiled from the frozen 1.0 header (tests/abi/loom-1.0.h),
 * as a plugin built the day ABI 1.0 shipped would be. It must load and serve
 * in every later 1.x host: the test of the append-only promise that runs real
 * code through the old table offsets. */
#include "loom-1.0.h"

#include <stdio.h>

static int32_t greet(loom_req *req, void *ud)
{
    (void)ud;
    size_t nlen = 0, qlen = 0, hlen = 0;
    const char *name = loom_req_match(req, "name", &nlen);
    const char *q = loom_req_query(req, "q", 0, &qlen);
    const char *h = loom_req_header(req, "X-Old", &hlen);
    const char *fmt =
        "{\"abi\":\"1.0\",\"name\":\"%s\",\"q\":\"%s\",\"h\":\"%s\",\"method\":\"%s\"}";
    size_t cap = 128 + nlen + qlen + hlen;
    char *out = loom_req_alloc(req, cap);
    if (!out) return LOOM_ENOMEM;
    int n = snprintf(out, cap, fmt, name ? name : "", q ? q : "", h ? h : "", loom_req_method(req));
    if (n < 0 || (size_t)n >= cap) return LOOM_EINVAL;
    loom_resp_header_set(req, "X-Plugin-Abi", "1.0");
    return loom_resp_json(req, 200, out, (size_t)n);
}

static int32_t init(loom_plugin *self, const char *config, size_t len)
{
    (void)config;
    (void)len;
    loom_log(self, LOOM_LOG_INFO, "old10: built against the frozen 1.0 header");
    return loom_route_add(self, "GET", "/old10/{name}", greet, NULL);
}

LOOM_PLUGIN("old10", "1.0.0", init, NULL)
