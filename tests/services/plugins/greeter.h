/* The "greeter" test service's table: version 1 has hello, version 2 adds
 * count (a consumer checks it with LOOM_SERVICE_HAS). */
#ifndef GREETER_H
#define GREETER_H
#include <stddef.h>
#include <stdint.h>

typedef struct greeter_api {
    uint32_t size;
    const char *(*hello)(void);
    uint32_t (*count)(void); /* version 2 */
} greeter_api;

#endif
