/* Router micro-benchmark: the cost of one match at 10 and at 1,000 routes
 * (static, {var} and {var:regex} shapes), for the last route added and for a
 * miss. Prints nanoseconds per match. */
#include "router/router.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static void pattern(int i, char *p, size_t n)
{
    switch (i % 4) {
    case 0:
        snprintf(p, n, "/api/v1/resource%d", i);
        break;
    case 1:
        snprintf(p, n, "/api/v1/resource%d/{id}", i);
        break;
    case 2:
        snprintf(p, n, "/api/v2/items%d/{id:\\d+}/detail", i);
        break;
    default:
        snprintf(p, n, "/static/page%d.html", i);
        break;
    }
}

static double bench(loom__router *rt, const char *path, int iters)
{
    char buf[256];
    const loom__route_target *t;
    loom__capture caps[LOOM__MAX_CAPTURES];
    uint32_t nc;
    char allow[64];
    size_t n = strlen(path);
    memcpy(buf, path, n + 1);
    volatile int sink = 0;
    double t0 = now();
    for (int i = 0; i < iters; i++)
        sink += loom__router_match(rt, "GET", buf, n, &t, caps, &nc, allow, sizeof allow);
    (void)sink;
    return (now() - t0) / iters;
}

int main(void)
{
    int sizes[] = {10, 1000};
    for (int s = 0; s < 2; s++) {
        loom__router *rt = loom__router_new();
        char p[128], err[128];
        for (int i = 0; i < sizes[s]; i++) {
            pattern(i, p, sizeof p);
            loom__route_target t = {(void *)1, NULL, NULL, NULL, 0, NULL};
            loom__router_add(rt, "GET", p, &t, err, sizeof err);
        }
        loom__route_target t = {(void *)1, NULL, NULL, NULL, 0, NULL};
        loom__router_add(rt, "GET", "/", &t, err, sizeof err);
        char last_static[64], last_regex[64];
        snprintf(last_static, sizeof last_static, "/static/page%d.html", sizes[s] - 1);
        snprintf(last_regex, sizeof last_regex, "/api/v2/items%d/12345/detail",
                 sizes[s] - 2 - (sizes[s] - 2) % 4 + 2 > sizes[s] - 1 ? 2 : sizes[s] - 2);
        printf("routes=%d  GET /: %.0f ns  last static: %.0f ns  regex route: %.0f ns  "
               "miss: %.0f ns\n",
               sizes[s] + 1, bench(rt, "/", 2000000), bench(rt, last_static, 2000000),
               bench(rt, last_regex, 1000000), bench(rt, "/nothing/here", 2000000));
        loom__router_free(rt);
    }
    return 0;
}
