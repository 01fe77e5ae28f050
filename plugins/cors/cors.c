/* cors: Cross-Origin Resource Sharing as middleware, configured per route
 * pattern like aiohttp-cors.
 *
 * Config:
 *   {"routes": [{"path": "/api/ *" (no space): exact, or a prefix ending in a star
 *                "origins": ["https://app.example"], or "*"
 *                "allow_credentials": false,
 *                "allow_headers": ["X-Token"],        or "*"
 *                "expose_headers": ["X-Total"],       or "*"
 *                "allow_methods": ["GET", "PUT"],     or "*" (default: GET, HEAD, POST)
 *                "max_age": 600}]}
 * The first rule whose path matches the request applies.
 *
 * - A preflight (OPTIONS with Origin and Access-Control-Request-Method) on a
 *   matching path is answered here and never reaches a handler: 204 with the
 *   CORS headers when origin, method and headers are allowed, else 403
 *   without any CORS header.
 * - Other requests go on; on the way back, an allowed origin gets
 *   Access-Control-Allow-Origin (the origin itself), -Allow-Credentials and
 *   -Expose-Headers; a disallowed one gets none.
 * - Every response on a matching path carries Vary: Origin (caches must not
 *   hand one origin's answer to another).
 * - "origins": "*" together with "allow_credentials": true is refused when
 *   the config is loaded: browsers reject it, and echoing any origin with
 *   credentials would hand every site the user's session. */
#define _GNU_SOURCE
#include <loom/loom.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define LIMIT_RULES 256
#define LIMIT_LIST 64
#define LIMIT_ITEM 256

typedef struct {
    char *items[LIMIT_LIST];
    size_t n;
    int any; /* "*" */
} list;

typedef struct {
    char *path;
    size_t path_len;
    int prefix; /* path ended in '*' */
    list origins, headers, expose, methods;
    int credentials;
    int64_t max_age;
    char *expose_joined; /* for Access-Control-Expose-Headers */
} rule;

static rule rules[LIMIT_RULES];
static size_t nrules;

static void list_free(list *l)
{
    for (size_t i = 0; i < l->n; i++) free(l->items[i]);
    l->n = 0;
}

static void rules_free(void)
{
    for (size_t i = 0; i < nrules; i++) {
        rule *r = &rules[i];
        free(r->path);
        free(r->expose_joined);
        list_free(&r->origins);
        list_free(&r->headers);
        list_free(&r->expose);
        list_free(&r->methods);
    }
    nrules = 0;
}

static int list_has(const list *l, const char *s, size_t n, int nocase)
{
    if (l->any) return 1;
    for (size_t i = 0; i < l->n; i++) {
        const char *it = l->items[i];
        if (strlen(it) == n && (nocase ? !strncasecmp(it, s, n) : !memcmp(it, s, n))) return 1;
    }
    return 0;
}

static const rule *find_rule(loom_req *req)
{
    size_t plen;
    const char *path = loom_req_path(req, &plen);
    for (size_t i = 0; i < nrules; i++) {
        const rule *r = &rules[i];
        if (r->prefix ? plen >= r->path_len && !memcmp(path, r->path, r->path_len)
                      : plen == r->path_len && !memcmp(path, r->path, plen))
            return r;
    }
    return NULL;
}

static void add_vary_origin(loom_req *req)
{
    const char *v = loom_resp_header_get(req, "Vary");
    if (!v) {
        loom_resp_header_set(req, "Vary", "Origin");
        return;
    }
    if (strcasestr(v, "origin") || !strcmp(v, "*")) return;
    size_t n = strlen(v) + 9;
    char *nv = loom_req_alloc(req, n);
    if (!nv) return;
    snprintf(nv, n, "%s, Origin", v);
    loom_resp_header_set(req, "Vary", nv);
}

/* Whether every name of a comma-separated header list is allowed. */
static int headers_allowed(const rule *r, const char *h)
{
    const char *p = h;
    while (*p) {
        while (*p == ' ' || *p == '\t' || *p == ',') p++;
        const char *s = p;
        while (*p && *p != ',') p++;
        const char *e = p;
        while (e > s && (e[-1] == ' ' || e[-1] == '\t')) e--;
        if (e > s && !list_has(&r->headers, s, (size_t)(e - s), 1)) return 0;
    }
    return 1;
}

static int32_t on_request(loom_req *req, void *ud)
{
    (void)ud;
    size_t olen;
    const char *origin = loom_req_header(req, "Origin", &olen);
    const char *acrm = loom_req_header(req, "Access-Control-Request-Method", NULL);
    if (!origin || !acrm || strcmp(loom_req_method(req), "OPTIONS")) return LOOM_NEXT;
    const rule *r = find_rule(req);
    if (!r) return LOOM_NEXT;
    /* A preflight: answered here. */
    add_vary_origin(req);
    const char *acrh = loom_req_header(req, "Access-Control-Request-Headers", NULL);
    if (!list_has(&r->origins, origin, olen, 0) || !list_has(&r->methods, acrm, strlen(acrm), 0) ||
        (acrh && !headers_allowed(r, acrh))) {
        return loom_resp_text(req, 403, "CORS preflight refused");
    }
    loom_resp_header_set(req, "Access-Control-Allow-Origin", origin);
    if (r->credentials) loom_resp_header_set(req, "Access-Control-Allow-Credentials", "true");
    loom_resp_header_set(req, "Access-Control-Allow-Methods", acrm);
    if (acrh && *acrh) loom_resp_header_set(req, "Access-Control-Allow-Headers", acrh);
    if (r->max_age > 0) {
        char ma[32];
        snprintf(ma, sizeof ma, "%lld", (long long)r->max_age);
        loom_resp_header_set(req, "Access-Control-Max-Age", ma);
    }
    loom_resp_status(req, 204);
    int32_t rc = loom_respond(req);
    return rc == LOOM_EGONE ? LOOM_DONE : rc;
}

static void on_response(loom_req *req, void *ud)
{
    (void)ud;
    const rule *r = find_rule(req);
    if (!r) return;
    add_vary_origin(req);
    size_t olen;
    const char *origin = loom_req_header(req, "Origin", &olen);
    if (!origin || loom_resp_header_get(req, "Access-Control-Allow-Origin")) return;
    if (!strcmp(loom_req_method(req), "OPTIONS") &&
        loom_req_header(req, "Access-Control-Request-Method", NULL))
        return; /* a preflight: decided in the request phase */
    if (!list_has(&r->origins, origin, olen, 0)) return;
    loom_resp_header_set(req, "Access-Control-Allow-Origin", origin);
    if (r->credentials) loom_resp_header_set(req, "Access-Control-Allow-Credentials", "true");
    if (r->expose_joined)
        loom_resp_header_set(req, "Access-Control-Expose-Headers", r->expose_joined);
}

/* ---- config ---- */

/* Logs msg (unless NULL: already logged), frees the rules, fails init. */
static int32_t fail(loom_plugin *self, const char *msg)
{
    if (msg) loom_log(self, LOOM_LOG_ERROR, msg);
    rules_free();
    return LOOM_EINVAL;
}

/* Reads "*" or an array of strings into l. Returns 0 or -1. */
static int read_list(const loom_json *j, list *l)
{
    memset(l, 0, sizeof *l);
    if (loom_json_type(j) == LOOM_JSON_STRING) {
        const char *s = loom_json_string(j, NULL);
        if (strcmp(s, "*")) return -1;
        l->any = 1;
        return 0;
    }
    if (loom_json_type(j) != LOOM_JSON_ARRAY || loom_json_size(j) > LIMIT_LIST) return -1;
    for (size_t i = 0; i < loom_json_size(j); i++) {
        const loom_json *e = loom_json_at(j, i);
        size_t n;
        const char *s = loom_json_type(e) == LOOM_JSON_STRING ? loom_json_string(e, &n) : NULL;
        if (!s || !n || n > LIMIT_ITEM || strpbrk(s, "\r\n,")) return -1;
        if (!strcmp(s, "*")) {
            l->any = 1;
            continue;
        }
        l->items[l->n] = strdup(s);
        if (!l->items[l->n]) return -1;
        l->n++;
    }
    return 0;
}

static int32_t init(loom_plugin *self, const char *config, size_t len)
{
    (void)config;
    (void)len;
    char msg[512];
    const loom_json *cfg = loom_config(self);
    static const char *const top[] = {"routes", NULL};
    static const char *const route_keys[] = {
        "path",          "origins",           "allow_headers", "expose_headers",
        "allow_methods", "allow_credentials", "max_age",       NULL};
    if (loom_config_check_keys(self, cfg, NULL, top)) return LOOM_EINVAL;
    const loom_json *rs = cfg ? loom_json_get(cfg, "routes") : NULL;
    if (!rs) return 0;
    if (loom_json_type(rs) != LOOM_JSON_ARRAY || loom_json_size(rs) > LIMIT_RULES)
        return fail(self, "cors: \"routes\" must be an array of at most 256 rules");
    static const char *keys[] = {"origins", "allow_headers", "expose_headers", "allow_methods"};
    for (size_t i = 0; i < loom_json_size(rs); i++) {
        const loom_json *rj = loom_json_at(rs, i);
        snprintf(msg, sizeof msg, "routes[%zu]", i);
        if (loom_config_check_keys(self, rj, msg, route_keys)) return fail(self, NULL);
        rule *r = &rules[nrules++];
        memset(r, 0, sizeof *r);
        const loom_json *pj = loom_json_get(rj, "path");
        const char *path = pj ? loom_json_string(pj, NULL) : NULL;
        if (!path || path[0] != '/') {
            snprintf(msg, sizeof msg, "cors: routes[%zu].path must be a path starting with '/'", i);
            return fail(self, msg);
        }
        r->path = strdup(path);
        if (!r->path) return fail(self, "cors: out of memory");
        r->path_len = strlen(path);
        if (r->path[r->path_len - 1] == '*') {
            r->prefix = 1;
            r->path[--r->path_len] = 0;
        }
        list *lists[] = {&r->origins, &r->headers, &r->expose, &r->methods};
        for (size_t k = 0; k < 4; k++) {
            const loom_json *lj = loom_json_get(rj, keys[k]);
            if (!lj) {
                memset(lists[k], 0, sizeof *lists[k]);
                continue;
            }
            if (read_list(lj, lists[k])) {
                snprintf(msg, sizeof msg,
                         "cors: routes[%zu].%s must be \"*\" or an array of header-safe strings", i,
                         keys[k]);
                return fail(self, msg);
            }
        }
        if (!loom_json_get(rj, "allow_methods")) {
            static const char *simple[] = {"GET", "HEAD", "POST"};
            for (size_t k = 0; k < 3; k++) r->methods.items[r->methods.n++] = strdup(simple[k]);
        }
        const loom_json *cj = loom_json_get(rj, "allow_credentials");
        r->credentials = cj && loom_json_type(cj) == LOOM_JSON_TRUE;
        if (r->credentials && r->origins.any) {
            snprintf(msg, sizeof msg,
                     "cors: routes[%zu].origins \"*\" with allow_credentials true is refused: "
                     "list the allowed origins",
                     i);
            return fail(self, msg);
        }
        const loom_json *mj = loom_json_get(rj, "max_age");
        r->max_age = mj ? loom_json_integer(mj) : 0;
        if (r->expose.any) {
            r->expose_joined = strdup("*");
        } else if (r->expose.n) {
            size_t n = 1;
            for (size_t k = 0; k < r->expose.n; k++) n += strlen(r->expose.items[k]) + 2;
            r->expose_joined = malloc(n);
            if (!r->expose_joined) return fail(self, "cors: out of memory");
            r->expose_joined[0] = 0;
            for (size_t k = 0; k < r->expose.n; k++) {
                if (k) strcat(r->expose_joined, ", ");
                strcat(r->expose_joined, r->expose.items[k]);
            }
        }
    }
    loom_middleware_def def;
    memset(&def, 0, sizeof def);
    def.size = sizeof def;
    def.order = LOOM_ORDER_FIRST;
    def.name = "cors";
    def.on_request = on_request;
    def.on_response = on_response;
    int32_t rc = loom_middleware_add(self, &def);
    if (rc) return fail(self, "cors: cannot add the middleware");
    return 0;
}

static void fini(loom_plugin *self)
{
    (void)self;
    rules_free();
}

LOOM_PLUGIN("cors", "1.0.0", init, fini);
