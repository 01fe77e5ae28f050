/* svcprov: offers the "greeter" service, built as version 1 and 2
 * (-DVERSION=N). Version 2 appends an entry, as a service grows. */
#include <loom/loom.h>

#include "greeter.h"

#ifndef VERSION
#define VERSION 1
#endif
#define STR2(x) #x
#define STR(x) STR2(x)

static uint32_t calls;

static const char *hello(void)
{
    calls++;
    return "hello from v" STR(VERSION);
}

#if VERSION >= 2
static uint32_t count(void)
{
    return calls;
}
#endif

static const greeter_api table = {
#if VERSION >= 2
    sizeof(greeter_api),
    hello,
    count,
#else
    offsetof(greeter_api, count),
    hello,
    NULL,
#endif
};

static int32_t init(loom_plugin *self, const char *config, size_t len)
{
    (void)config;
    (void)len;
    loom_service_def def = {sizeof def, VERSION, "greeter", &table};
    return loom_service_register(self, &def);
}

LOOM_PLUGIN("svcprov", "1.0." STR(VERSION), init, NULL)
