/* hello: the seed's first server. GET / answers "Hello, World!". */
#include <loom/loom.h>

static int32_t hello(loom_req *req, void *ud)
{
    (void)ud;
    return loom_resp_text(req, 200, "Hello, World!");
}

static int32_t init(loom_plugin *self, const char *config, size_t len)
{
    (void)config;
    (void)len;
    static const char *const no_keys[] = {NULL};
    if (loom_config_check_keys(self, loom_config(self), NULL, no_keys)) return LOOM_EINVAL;
    return loom_route_add(self, "GET", "/", hello, NULL);
}

LOOM_PLUGIN("hello", "1.0.0", init, NULL)
