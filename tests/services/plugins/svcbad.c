/* svcbad: registrations the host must refuse, one per build (-DCASE=N):
 * 1 a bad name, 2 version 0, 3 the same name twice, 4 a table whose size
 * is below 4, 5 a second provider of "greeter" (load refused). */
#include <loom/loom.h>

#include "greeter.h"

static const greeter_api table = {sizeof(greeter_api), NULL, NULL};
#if CASE == 4
static const uint32_t tiny = 2;
#endif

static int32_t init(loom_plugin *self, const char *config, size_t len)
{
    (void)config;
    (void)len;
    loom_service_def def = {sizeof def, 1, "greeter", &table};
#if CASE == 1
    def.name = "Bad Name!";
#elif CASE == 2
    def.version = 0;
#elif CASE == 3
    def.name = "twice";
    int32_t rc = loom_service_register(self, &def);
    if (rc) return rc;
#elif CASE == 4
    def.name = "tiny";
    def.table = &tiny;
#endif
    return loom_service_register(self, &def);
}

#define STR2(x) #x
#define STR(x) STR2(x)
LOOM_PLUGIN("svcbad" STR(CASE), "1.0.0", init, NULL)
