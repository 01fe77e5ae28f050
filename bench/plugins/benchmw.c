/* benchmw: a middleware chain of one plugin for the benchmarks: a request
 * phase that passes the request on and a response phase that reads the
 * status, so both phases are on the measured path. */
#include <loom/loom.h>

static int32_t on_request(loom_req *req, void *ud)
{
    (void)req;
    (void)ud;
    return LOOM_NEXT;
}

static void on_response(loom_req *req, void *ud)
{
    (void)ud;
    (void)loom_resp_get_status(req);
}

static int32_t init(loom_plugin *self, const char *config, size_t len)
{
    (void)config;
    (void)len;
    loom_middleware_def d = {sizeof d, LOOM_ORDER_MIDDLE, "benchmw",   NULL,
                             NULL,     on_request,        on_response, NULL};
    return loom_middleware_add(self, &d);
}

LOOM_PLUGIN("benchmw", "1.0.0", init, NULL)
