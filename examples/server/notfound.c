/* The seed's catch-all 404 route, as a plugin:
 *
 *   async def handle_404(request):
 *       return web.Response(status=404, text="Not Found")
 *   app.router.add_get('/{tail:.*}', handle_404)
 *
 * Static routes of other plugins still win: the router tries them first. */
#include <loom/loom.h>

static int32_t handle_404(loom_req *req, void *ud)
{
    (void)ud;
    return loom_resp_text(req, 404, "Not Found");
}

static int32_t init(loom_plugin *self, const char *config, size_t len)
{
    (void)config;
    (void)len;
    return loom_route_add(self, "GET", "/{tail:.*}", handle_404, NULL);
}

LOOM_PLUGIN("notfound", "1.0.0", init, NULL)
