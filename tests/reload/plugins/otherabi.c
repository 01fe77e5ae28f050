/* A plugin that claims ABI major 2: the host must refuse it by name. The
 * descriptor is written by hand, as a plugin from a future SDK would. */
#include <loom/loom.h>

static int32_t init(loom_plugin *self, const char *config, size_t len)
{
    (void)self;
    (void)config;
    (void)len;
    return 0;
}

static void bind(const loom_host_api *api)
{
    (void)api;
}

static const loom_plugin_desc desc = {
    LOOM_PLUGIN_MAGIC, 2, 0, sizeof(loom_plugin_desc), 0, "version", "2.0.0", init, NULL, bind};

__attribute__((visibility("default"))) const loom_plugin_desc *loom_plugin_entry(void);
__attribute__((visibility("default"))) const loom_plugin_desc *loom_plugin_entry(void)
{
    return &desc;
}
