/* cycle: two middleware that each want to run before the other. The host
 * must refuse to load it and name both. */
#include <loom/loom.h>

static int32_t pass(loom_req *req, void *ud)
{
    (void)req;
    (void)ud;
    return LOOM_NEXT;
}

static int32_t init(loom_plugin *self, const char *config, size_t len)
{
    (void)config;
    (void)len;
    loom_middleware_def a = {sizeof a, LOOM_ORDER_MIDDLE, "mw-a", "mw-b", NULL, pass, NULL, NULL};
    loom_middleware_def b = {sizeof b, LOOM_ORDER_MIDDLE, "mw-b", "mw-a", NULL, pass, NULL, NULL};
    int32_t rc = loom_middleware_add(self, &a);
    return rc ? rc : loom_middleware_add(self, &b);
}

LOOM_PLUGIN("cycle", "1.0.0", init, NULL)
