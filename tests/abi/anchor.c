/* The ABI anchor: a tiny shared object whose one exported function takes
 * every struct of the plugin ABI, so that `abidw` (libabigail) describes
 * them all from its DWARF. LOOM_ABI_HEADER names the header to describe
 * (tests/abi/loom-1.0.h for the committed baseline, sdk/include/loom/loom.h
 * for the check). Types reached through the host table (loom_fetch_opts, ...)
 * come along through its function pointers. */
#include LOOM_ABI_HEADER

__attribute__((visibility("default"))) void loom_abi_anchor(const loom_host_api *api,
                                                            const loom_plugin_desc *desc,
                                                            const loom_middleware_def *mw,
                                                            const loom_cookie *cookie);

void loom_abi_anchor(const loom_host_api *api, const loom_plugin_desc *desc,
                     const loom_middleware_def *mw, const loom_cookie *cookie)
{
    (void)api;
    (void)desc;
    (void)mw;
    (void)cookie;
}
