/* echo: the seed's POST /data ("Received data: {...}") and a JSON echo.
 *
 *   POST /data  {"key1": "value1"}  ->  200 text: Received data: {"key1":"value1"}
 *   POST /echo  any JSON             ->  200 application/json, the same value
 *
 * Invalid JSON gets loom's 400, which says why. */
#include <loom/loom.h>
#include <stdio.h>
#include <string.h>

static int32_t post_data(loom_req *req, void *ud)
{
    (void)ud;
    const loom_json *data;
    if (loom_req_json(req, &data) != LOOM_OK) return LOOM_DONE; /* 400 already sent */
    size_t n;
    const char *text = loom_json_dump(req, data, &n);
    size_t cap = n + 32;
    char *out = loom_req_alloc(req, cap);
    if (!text || !out) return LOOM_ENOMEM;
    snprintf(out, cap, "Received data: %s", text);
    return loom_resp_text(req, 200, out);
}

static int32_t echo_json(loom_req *req, void *ud)
{
    (void)ud;
    const loom_json *data;
    if (loom_req_json(req, &data) != LOOM_OK) return LOOM_DONE;
    size_t n;
    const char *text = loom_json_dump(req, data, &n);
    if (!text) return LOOM_ENOMEM;
    return loom_resp_json(req, 200, text, n);
}

static int32_t init(loom_plugin *self, const char *config, size_t len)
{
    (void)config;
    (void)len;
    static const char *const no_keys[] = {NULL};
    if (loom_config_check_keys(self, loom_config(self), NULL, no_keys)) return LOOM_EINVAL;
    int32_t rc = loom_route_add(self, "POST", "/data", post_data, NULL);
    if (rc == LOOM_OK) rc = loom_route_add(self, "POST", "/echo", echo_json, NULL);
    return rc;
}

LOOM_PLUGIN("echo", "1.0.0", init, NULL)
