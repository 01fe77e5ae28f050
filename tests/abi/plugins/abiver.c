/* A plugin that claims another ABI version than the header it was built
 * with: ABIVER_MAJOR_DELTA / ABIVER_MINOR_DELTA are added to the header's
 * LOOM_ABI_MAJOR / LOOM_ABI_MINOR in its descriptor (LOOM_PLUGIN expands
 * them where it is used, so redefining them here is enough). The host must
 * refuse it before init, naming both versions. */
#include <loom/loom.h>

enum { built_major = LOOM_ABI_MAJOR, built_minor = LOOM_ABI_MINOR };
#undef LOOM_ABI_MAJOR
#undef LOOM_ABI_MINOR
#define LOOM_ABI_MAJOR (built_major + ABIVER_MAJOR_DELTA)
#define LOOM_ABI_MINOR (built_minor + ABIVER_MINOR_DELTA)

static int32_t handler(loom_req *req, void *ud)
{
    (void)ud;
    return loom_resp_text(req, 200, "must not be served");
}

static int32_t init(loom_plugin *self, const char *config, size_t len)
{
    (void)config;
    (void)len;
    return loom_route_add(self, "GET", "/" ABIVER_NAME, handler, NULL);
}

LOOM_PLUGIN(ABIVER_NAME, "1.0.0", init, NULL)
