/* proxy: forwards a path prefix to an upstream over the server's pooled
 * client connections.
 *
 *   "plugins": {"proxy": {"routes": [
 *       {"prefix": "/api", "upstream": "http://127.0.0.1:9000", "timeout": 30},
 *       {"prefix": "/pay", "upstream": "https://pay.internal:8443",
 *        "ca_file": "/etc/loom/internal-ca.pem"}]}}
 *
 * An https upstream is verified (its certificate and host name) against the
 * system's CAs, or against the route's "ca_file"; "client_cert" and
 * "client_key" present a client certificate; "insecure": true turns the
 * verification off (logged at start). Needs a host with plugin ABI 1.6.
 *
 * The request goes upstream with its method, path and query, body and
 * headers -- less the hop-by-hop ones (Connection and what it names,
 * Keep-Alive, TE, Trailer, Transfer-Encoding, Upgrade, Proxy-*) -- plus
 * X-Forwarded-For. The answer comes back the same way. An upstream that
 * cannot be reached or breaks the exchange gives 502; one that is too slow
 * gives 504. If the client leaves, the upstream request is cancelled. */
#include <loom/loom.h>
#include <stdio.h>
#include <string.h>

#define MAX_ROUTES 32
#define MAX_HEADERS 64

typedef struct {
    char prefix[256];
    char upstream[512];
    uint64_t timeout_ms;
    char ca_file[512], client_cert[512], client_key[512]; /* "" = none */
    int insecure;
} route;

static loom_plugin *me;
static route routes[MAX_ROUTES];
static int nroutes;

static int ieq(const char *a, const char *b)
{
    for (; *a && *b; a++, b++) {
        char x = (char)(*a | 0x20), y = (char)(*b | 0x20);
        if (x != y) return 0;
    }
    return *a == *b;
}

/* Whether `name` appears in the comma-separated list `list`. */
static int in_list(const char *list, const char *name)
{
    size_t nl = strlen(name);
    for (const char *p = list; p && *p;) {
        while (*p == ' ' || *p == ',') p++;
        const char *e = p;
        while (*e && *e != ',' && *e != ' ') e++;
        if ((size_t)(e - p) == nl) {
            size_t i = 0;
            while (i < nl && ((p[i] | 0x20) == (name[i] | 0x20))) i++;
            if (i == nl) return 1;
        }
        p = e;
    }
    return 0;
}

static int hop_by_hop(const char *name, const char *connection)
{
    static const char *const hop[] = {"connection",
                                      "keep-alive",
                                      "te",
                                      "trailer",
                                      "transfer-encoding",
                                      "upgrade",
                                      "proxy-authenticate",
                                      "proxy-authorization",
                                      "proxy-connection",
                                      NULL};
    for (int i = 0; hop[i]; i++)
        if (ieq(name, hop[i])) return 1;
    return connection && in_list(connection, name);
}

static void on_upstream(const loom_fetch_result *res, void *ud)
{
    loom_req *req = ud;
    int32_t err = loom_fetch_error(res);
    if (err != LOOM_FETCH_OK) {
        int timeout = err == LOOM_FETCH_E_TOTAL_TIMEOUT || err == LOOM_FETCH_E_READ_TIMEOUT ||
                      err == LOOM_FETCH_E_CONNECT_TIMEOUT || err == LOOM_FETCH_E_TLS_TIMEOUT;
        loom_log(me, LOOM_LOG_WARN, loom_fetch_message(res));
        loom_resp_error(req, timeout ? 504 : 502,
                        timeout ? "upstream timed out" : "upstream unavailable");
        return;
    }
    loom_resp_status(req, loom_fetch_status(res));
    const char *conn = loom_fetch_header(res, "Connection");
    uint32_t n = loom_fetch_header_count(res);
    for (uint32_t i = 0; i < n; i++) {
        const char *name, *value;
        if (loom_fetch_header_at(res, i, &name, &value) != LOOM_OK) continue;
        if (hop_by_hop(name, conn) || ieq(name, "content-length") || ieq(name, "date") ||
            ieq(name, "server"))
            continue;
        loom_resp_header_add(req, name, value);
    }
    size_t len;
    const void *body = loom_fetch_body(res, &len);
    loom_resp_body(req, body, len);
    loom_respond(req);
}

/* The client left: the host cancelled the upstream fetch (its callback will
 * not run), so the request is released here; the answer goes nowhere. */
static void on_abort(loom_req *req, void *ud)
{
    (void)ud;
    loom_respond(req);
}

static int32_t handle(loom_req *req, void *ud)
{
    const route *r = ud;
    size_t rpl, ql;
    const char *raw = loom_req_raw_path(req, &rpl);
    const char *q = loom_req_query_string(req, &ql);
    char url[8192 + 600];
    int n = snprintf(url, sizeof url, "%s%.*s%s%.*s", r->upstream, (int)rpl, raw, q ? "?" : "",
                     q ? (int)ql : 0, q ? q : "");
    if (n < 0 || (size_t)n >= sizeof url) return loom_resp_error(req, 414, "URL too long");

    const char *hv[2 * MAX_HEADERS + 2];
    uint32_t nh = 0;
    const char *conn = loom_req_header(req, "Connection", NULL);
    const char *xff = NULL;
    uint32_t count = loom_req_header_count(req);
    for (uint32_t i = 0; i < count && nh < MAX_HEADERS; i++) {
        const char *name, *value;
        size_t vl;
        loom_req_header_at(req, i, &name, &value, &vl);
        if (hop_by_hop(name, conn) || ieq(name, "host") || ieq(name, "content-length")) continue;
        if (ieq(name, "x-forwarded-for")) {
            xff = value;
            continue;
        }
        hv[2 * nh] = name;
        hv[2 * nh + 1] = value;
        nh++;
    }
    const char *remote = loom_req_remote(req);
    char *fwd = loom_req_alloc(req, (xff ? strlen(xff) : 0) + strlen(remote) + 4);
    if (!fwd) return LOOM_ENOMEM;
    sprintf(fwd, "%s%s%s", xff ? xff : "", xff ? ", " : "", remote);
    hv[2 * nh] = "X-Forwarded-For";
    hv[2 * nh + 1] = fwd;
    nh++;

    size_t bl;
    const void *body = loom_req_body(req, &bl);
    loom_fetch_opts o;
    memset(&o, 0, sizeof o);
    o.size = sizeof o;
    o.flags = LOOM_FETCH_RAW;
    o.method = loom_req_method(req);
    o.url = url;
    o.headers = hv;
    o.nheaders = nh;
    o.body = bl ? body : NULL;
    o.body_len = bl;
    o.content_type = loom_req_header(req, "Content-Type", NULL);
    o.timeout_ms = r->timeout_ms;
    if (r->ca_file[0]) o.ca_file = r->ca_file;
    if (r->client_cert[0]) o.client_cert = r->client_cert;
    if (r->client_key[0]) o.client_key = r->client_key;
    if (r->insecure) o.flags |= LOOM_FETCH_INSECURE;
    if (!loom_fetch_start(me, req, &o, on_upstream, req))
        return loom_resp_error(req, 502, "cannot start the upstream request");
    loom_req_on_abort(req, on_abort, NULL);
    return LOOM_PENDING;
}

static int32_t init(loom_plugin *self, const char *config, size_t len)
{
    (void)config;
    (void)len;
    me = self;
    if (!LOOM_HAS(fetch)) {
        loom_log(self, LOOM_LOG_ERROR, "needs a host with the 1.1 client");
        return LOOM_ENOSYS;
    }
    static const char *const top[] = {"routes", NULL};
    static const char *const route_keys[] = {"prefix",      "upstream",   "timeout",  "ca_file",
                                             "client_cert", "client_key", "insecure", NULL};
    if (loom_config_check_keys(self, loom_config(self), NULL, top)) return LOOM_EINVAL;
    const loom_json *rs = loom_json_get(loom_config(self), "routes");
    nroutes = 0;
    for (size_t i = 0; rs && i < loom_json_size(rs) && nroutes < MAX_ROUTES; i++) {
        const loom_json *e = loom_json_at(rs, i);
        char where[32];
        snprintf(where, sizeof where, "routes[%zu]", i);
        if (loom_config_check_keys(self, e, where, route_keys)) return LOOM_EINVAL;
        const char *prefix = loom_json_string(loom_json_get(e, "prefix"), NULL);
        const char *up = loom_json_string(loom_json_get(e, "upstream"), NULL);
        const loom_json *t = loom_json_get(e, "timeout");
        int https = up && strncmp(up, "https://", 8) == 0;
        if (!prefix || prefix[0] != '/' || !up || (!https && strncmp(up, "http://", 7) != 0)) {
            loom_log(self, LOOM_LOG_ERROR,
                     "config: each route needs \"prefix\": \"/...\" and \"upstream\": "
                     "\"http://...\" or \"https://...\"");
            return LOOM_EINVAL;
        }
        route *r = &routes[nroutes++];
        memset(r, 0, sizeof *r);
        if (https && !LOOM_HAS(fetch_jar_new)) {
            loom_log(self, LOOM_LOG_ERROR, "https upstreams need a host with plugin ABI 1.6");
            return LOOM_ENOSYS;
        }
        static const char *const files[] = {"ca_file", "client_cert", "client_key"};
        char *dst[] = {r->ca_file, r->client_cert, r->client_key};
        for (int k = 0; k < 3; k++) {
            const loom_json *v = loom_json_get(e, files[k]);
            if (!v) continue;
            const char *path = loom_json_string(v, NULL);
            FILE *f = path ? fopen(path, "r") : NULL;
            if (!f || strlen(path) >= sizeof r->ca_file) {
                char msg[700];
                snprintf(msg, sizeof msg, "config: route %s: \"%s\" %s%s", prefix, files[k],
                         path ? "cannot be read: " : "must be a file name", path ? path : "");
                loom_log(self, LOOM_LOG_ERROR, msg);
                if (f) fclose(f);
                return LOOM_EINVAL;
            }
            fclose(f);
            snprintf(dst[k], sizeof r->ca_file, "%s", path);
        }
        r->insecure = loom_json_type(loom_json_get(e, "insecure")) == LOOM_JSON_TRUE;
        if (r->insecure) {
            char msg[400];
            snprintf(msg, sizeof msg,
                     "route %s: upstream %s is not verified (\"insecure\": true): anyone on the "
                     "path can read and change this traffic",
                     prefix, up);
            loom_log(self, LOOM_LOG_WARN, msg);
        }
        snprintf(r->prefix, sizeof r->prefix, "%s", prefix);
        snprintf(r->upstream, sizeof r->upstream, "%s", up);
        size_t ul = strlen(r->upstream);
        if (ul && r->upstream[ul - 1] == '/') r->upstream[ul - 1] = '\0';
        double secs = t ? (loom_json_type(t) == LOOM_JSON_INTEGER ? (double)loom_json_integer(t)
                                                                  : loom_json_real(t))
                        : 30.0;
        r->timeout_ms = (uint64_t)(secs * 1000.0);
        size_t pl = strlen(r->prefix);
        if (pl > 1 && r->prefix[pl - 1] == '/') r->prefix[--pl] = '\0';
        char pattern[300];
        snprintf(pattern, sizeof pattern, "%s/{tail:.*}", pl == 1 ? "" : r->prefix);
        int32_t rc = loom_route_add(self, "*", pattern, handle, r);
        if (rc == 0 && pl > 1) rc = loom_route_add(self, "*", r->prefix, handle, r);
        if (rc) return rc;
    }
    return 0;
}

LOOM_PLUGIN("proxy", "1.0.0", init, NULL)
