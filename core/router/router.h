/* The router: route patterns in a segment trie.
 *
 * Patterns are paths whose segments are static text, `{name}` (one segment)
 * or `{name:regex}` (one segment; or, when it is the last segment, the rest
 * of the path, slashes included, so `/{tail:.*}` catches everything). Static
 * children are found by binary search and tried first, so static segments
 * win over variables and matching 1,000 routes costs a few comparisons per
 * segment, not a scan of regexes. */
#ifndef LOOM_ROUTER_ROUTER_H
#define LOOM_ROUTER_ROUTER_H

#include <stddef.h>
#include <stdint.h>

typedef struct loom__router loom__router;

/* What a route leads to; opaque to the router. */
typedef struct {
    void *fn;
    void *ud;
    void *owner;
    const char *name; /* route name or NULL (copied by the router) */
    uint32_t flags;   /* the plugin's LOOM_ROUTE_* flags */
    void *meta;       /* the owner's, not looked at by the router */
} loom__route_target;

typedef struct {
    const char *name;  /* variable name (owned by the router) */
    const char *value; /* points into the path given to loom__router_match */
    size_t len;
} loom__capture;

#define LOOM__MAX_CAPTURES 16

enum { LOOM__ROUTE_FOUND = 200, LOOM__ROUTE_NOT_FOUND = 404, LOOM__ROUTE_NO_METHOD = 405 };

/* A new, empty router. NULL when out of memory. */
loom__router *loom__router_new(void);
/* Frees the router and everything it owns. */
void loom__router_free(loom__router *rt);
/* Adds a route for `method` ("GET" ... or "*" for any). Returns 0, or -1
 * with a one-line reason in `err` (bad pattern, bad regex, bad method,
 * duplicate route or route name). */
int loom__router_add(loom__router *rt, const char *method, const char *pattern,
                     const loom__route_target *t, char *err, size_t errlen);
/* Matches `path` (decoded, starting with '/'; the bytes are modified during
 * the call and restored before it returns). On LOOM__ROUTE_FOUND sets
 * *target and caps[0..*ncaps). On LOOM__ROUTE_NO_METHOD fills `allow` with
 * the methods the path has, e.g. "GET, HEAD, POST". */
int loom__router_match(const loom__router *rt, const char *method, char *path, size_t path_len,
                       const loom__route_target **target, loom__capture *caps, uint32_t *ncaps,
                       char *allow, size_t allowlen);
/* Builds the path of the route named `name`, filling variables from
 * params (name, value pairs; n pairs), percent-encoded. Returns 0, -1 (no
 * such route or variable missing), -2 (a value does not match its regex) or
 * -3 (out too small). */
int loom__router_url_for(const loom__router *rt, const char *name, const char *const *params,
                         uint32_t n, char *out, size_t outlen);
/* Number of routes added. */
size_t loom__router_count(const loom__router *rt);

#endif
