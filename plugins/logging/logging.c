/* logging: the seed's logging middleware. Logs the method and path before
 * the handler, and the status with the time taken after it.
 *
 *   Request: GET /
 *   Response status: 200 (0.041 ms)
 */
#include <loom/loom.h>
#include <stdio.h>

static loom_plugin *me;

static int32_t on_request(loom_req *req, void *ud)
{
    (void)ud;
    char line[600];
    snprintf(line, sizeof line, "Request: %s %.500s", loom_req_method(req),
             loom_req_path(req, NULL));
    loom_log(me, LOOM_LOG_INFO, line);
    return LOOM_NEXT;
}

static void on_response(loom_req *req, void *ud)
{
    (void)ud;
    char line[128];
    double ms = (double)(loom_now_ns() - loom_req_start_ns(req)) / 1e6;
    snprintf(line, sizeof line, "Response status: %d (%.3f ms)", loom_resp_get_status(req), ms);
    loom_log(me, LOOM_LOG_INFO, line);
}

static int32_t init(loom_plugin *self, const char *config, size_t len)
{
    (void)config;
    (void)len;
    me = self;
    static const char *const no_keys[] = {NULL};
    if (loom_config_check_keys(self, loom_config(self), NULL, no_keys)) return LOOM_EINVAL;
    loom_middleware_def def = {sizeof def, LOOM_ORDER_FIRST, "logging",   NULL,
                               NULL,       on_request,       on_response, NULL};
    return loom_middleware_add(self, &def);
}

LOOM_PLUGIN("logging", "1.0.0", init, NULL)
