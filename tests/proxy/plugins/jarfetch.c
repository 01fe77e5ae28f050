/* jarfetch: the 1.6 fetch options from a plugin.
 *   GET /jar?set=U1&then=U2 -> fetches U1 then U2 with the plugin's cookie
 *       jar (LOOM_FETCH_JAR_UNSAFE: the test hosts are IP addresses) and
 *       answers U2's body, a newline, and what loom_fetch_jar_cookies says
 *       the jar sends to U2
 *   GET /via?url=U[&proxy=P][&ca=FILE] -> fetches U (through proxy P,
 *       trusting the CA in FILE) and answers "<error> <status> <message>" */
#include <loom/loom.h>
#include <stdio.h>
#include <string.h>

static loom_plugin *me;
static loom_fetch_jar *jar;

typedef struct {
    loom_req *req;
    char then[1024];
} step;

static void start(loom_req *req, const char *url, loom_fetch_fn fn, void *ud, const char *proxy,
                  const char *ca)
{
    loom_fetch_opts o;
    memset(&o, 0, sizeof o);
    o.size = sizeof o;
    o.url = url;
    o.timeout_ms = 10000;
    o.cookie_jar = jar;
    o.proxy = proxy;
    o.ca_file = ca;
    if (!loom_fetch_start(me, req, &o, fn, ud)) loom_resp_error(req, 500, "no fetch");
}

static void second(const loom_fetch_result *res, void *ud)
{
    step *s = ud;
    size_t len;
    const char *body = loom_fetch_body(res, &len);
    char cookies[512];
    int64_t n = loom_fetch_jar_cookies(jar, s->then, cookies, sizeof cookies);
    char *out = loom_req_alloc(s->req, len + sizeof cookies + 32);
    int k = snprintf(out, len + sizeof cookies + 32, "%.*s\n%s (%lld)", (int)len, body,
                     n >= 0 ? cookies : "?", (long long)n);
    loom_resp_bytes(s->req, 200, "text/plain", out, (size_t)k);
}

static void first(const loom_fetch_result *res, void *ud)
{
    step *s = ud;
    if (loom_fetch_error(res)) {
        loom_resp_error(s->req, 502, loom_fetch_message(res));
        return;
    }
    start(s->req, s->then, second, s, NULL, NULL);
}

static int32_t h_jar(loom_req *req, void *ud)
{
    (void)ud;
    const char *set = loom_req_query(req, "set", 0, NULL);
    const char *then = loom_req_query(req, "then", 0, NULL);
    if (!set || !then || strlen(then) >= 1024) return loom_resp_error(req, 400, "want set, then");
    step *s = loom_req_alloc(req, sizeof *s);
    s->req = req;
    snprintf(s->then, sizeof s->then, "%s", then);
    start(req, set, first, s, NULL, NULL);
    return LOOM_PENDING;
}

static void report(const loom_fetch_result *res, void *ud)
{
    loom_req *req = ud;
    char buf[700];
    snprintf(buf, sizeof buf, "%d %d %s", (int)loom_fetch_error(res), (int)loom_fetch_status(res),
             loom_fetch_message(res));
    loom_resp_text(req, 200, buf);
}

static int32_t h_via(loom_req *req, void *ud)
{
    (void)ud;
    const char *proxy = loom_req_query(req, "proxy", 0, NULL);
    const char *url = loom_req_query(req, "url", 0, NULL);
    if (!url) return loom_resp_error(req, 400, "want url");
    start(req, url, report, req, proxy, loom_req_query(req, "ca", 0, NULL));
    return LOOM_PENDING;
}

static int32_t init(loom_plugin *self, const char *config, size_t len)
{
    (void)config;
    (void)len;
    me = self;
    jar = loom_fetch_jar_new(self, LOOM_FETCH_JAR_UNSAFE);
    if (!jar) return LOOM_ENOMEM;
    int32_t rc = loom_route_add(self, "GET", "/jar", h_jar, NULL);
    return rc ? rc : loom_route_add(self, "GET", "/via", h_via, NULL);
}

LOOM_PLUGIN("jarfetch", "1.0.0", init, NULL)
