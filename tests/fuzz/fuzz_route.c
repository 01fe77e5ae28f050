/* fuzz_route: route patterns and paths.
 *
 * Input: lines. Up to 24 lines before the first empty line are routes,
 * "<m><pattern>" where the byte <m> picks the method (and whether the route
 * is named); the lines after it are paths to match, "<m><path>", or url_for
 * calls, "=<name index> <var>=<value>...".
 *
 * Invariants: no sanitizer report or crash for any pattern or path; a route
 * without variables always matches its own pattern as a path with its own
 * method and leads to its own target; a match leaves the path bytes as they
 * were; captures point into the path. */
#include <string.h>

#include "fuzz_common.h"
#include "router/router.h"

static const char *methods[8] = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "*"};

#define MAX_ROUTES 24
#define MAX_LINE 200

typedef struct {
    char *pattern;
    int m;
    int is_static;
} added;

static void match_one(loom__router *rt, const char *method, const char *path, size_t n,
                      const loom__route_target **t, int *status)
{
    /* The router writes path[len] during the call (NUL-terminated paths,
     * as dispatch passes them): give it exactly that. */
    char *p = malloc(n + 1);
    memcpy(p, path, n);
    p[n] = '\0';
    loom__capture caps[LOOM__MAX_CAPTURES];
    uint32_t ncaps = 0;
    char allow[128];
    *t = NULL;
    *status = loom__router_match(rt, method, p, n, t, caps, &ncaps, allow, sizeof allow);
    FUZZ_CHECK(memcmp(p, path, n) == 0 && p[n] == '\0');
    FUZZ_CHECK(ncaps <= LOOM__MAX_CAPTURES);
    if (*status == LOOM__ROUTE_FOUND) {
        FUZZ_CHECK(*t);
        for (uint32_t i = 0; i < ncaps; i++)
            FUZZ_CHECK(caps[i].value >= p && caps[i].value + caps[i].len <= p + n && caps[i].name);
    } else if (*status == LOOM__ROUTE_NO_METHOD) {
        FUZZ_CHECK(strlen(allow) < sizeof allow);
    } else {
        FUZZ_CHECK(*status == LOOM__ROUTE_NOT_FOUND);
    }
    free(p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    loom__router *rt = loom__router_new();
    FUZZ_CHECK(rt);
    added routes[MAX_ROUTES];
    size_t nroutes = 0;
    const char *s = (const char *)data, *end = s + size;
    int in_paths = 0;
    char err[256];
    while (s < end) {
        const char *e = memchr(s, '\n', (size_t)(end - s));
        if (!e) e = end;
        size_t n = (size_t)(e - s);
        const char *line = s;
        s = e + 1;
        if (n == 0) {
            in_paths = 1;
            continue;
        }
        if (n > MAX_LINE) n = MAX_LINE; /* keep regexes and paths small */
        uint8_t m = (uint8_t)line[0];
        if (!in_paths) {
            if (nroutes == MAX_ROUTES) continue;
            char *pat = strndup(line + 1, n - 1);
            char name[16];
            snprintf(name, sizeof name, "r%zu", nroutes);
            loom__route_target t = {
                (void *)(uintptr_t)(nroutes + 1), NULL, NULL, (m & 8) ? name : NULL, 0, NULL};
            if (strlen(pat) == n - 1 &&
                loom__router_add(rt, methods[m & 7], pat, &t, err, sizeof err) == 0) {
                routes[nroutes].pattern = pat;
                routes[nroutes].m = m & 7;
                routes[nroutes].is_static = strchr(pat, '{') == NULL;
                nroutes++;
            } else {
                FUZZ_CHECK(strlen(err) < sizeof err);
                free(pat);
            }
            continue;
        }
        if (line[0] == '=' && n > 1) {
            /* url_for("r<i>", vars...) */
            char buf[MAX_LINE + 1];
            memcpy(buf, line + 1, n - 1);
            buf[n - 1] = '\0';
            const char *params[16];
            uint32_t np = 0;
            char *save = NULL, *tok = strtok_r(buf, " ", &save);
            char name[16];
            snprintf(name, sizeof name, "r%u", tok ? (unsigned)(tok[0] % MAX_ROUTES) : 0u);
            while ((tok = strtok_r(NULL, " ", &save)) && np < 8) {
                char *eq = strchr(tok, '=');
                if (!eq) continue;
                *eq = '\0';
                params[2 * np] = tok;
                params[2 * np + 1] = eq + 1;
                np++;
            }
            char out[64];
            int rc = loom__router_url_for(rt, name, params, np, out, sizeof out);
            FUZZ_CHECK(rc <= 0 && rc >= -3);
            if (rc == 0) FUZZ_CHECK(strlen(out) < sizeof out);
            continue;
        }
        const loom__route_target *t;
        int st;
        match_one(rt, methods[m & 7], line + 1, n - 1, &t, &st);
    }
    /* Every static route matches itself. */
    for (size_t i = 0; i < nroutes; i++) {
        if (!routes[i].is_static) continue;
        const loom__route_target *t;
        int st;
        match_one(rt, methods[routes[i].m], routes[i].pattern, strlen(routes[i].pattern), &t, &st);
        FUZZ_CHECK(st == LOOM__ROUTE_FOUND);
        FUZZ_CHECK(t->fn == (void *)(uintptr_t)(i + 1));
    }
    for (size_t i = 0; i < nroutes; i++) free(routes[i].pattern);
    loom__router_free(rt);
    return 0;
}
