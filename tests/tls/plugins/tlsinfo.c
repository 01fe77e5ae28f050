/* tlsinfo: answers GET /tls with what the ABI (1.2) tells about the
 * request's TLS connection, as JSON, and the worker's pid. */
#include <loom/loom.h>

#include <stdio.h>
#include <string.h>
#include <unistd.h>

static const char *or_null(const char *s, char *buf, size_t len)
{
    if (!s) return "null";
    snprintf(buf, len, "\"%s\"", s);
    return buf;
}

static int32_t info(loom_req *req, void *ud)
{
    (void)ud;
    static const int32_t what[] = {LOOM_TLS_PROTOCOL,
                                   LOOM_TLS_CIPHER,
                                   LOOM_TLS_SNI,
                                   LOOM_TLS_ALPN,
                                   LOOM_TLS_RESUMED,
                                   LOOM_TLS_CLIENT_SUBJECT,
                                   LOOM_TLS_CLIENT_FINGERPRINT,
                                   LOOM_TLS_CLIENT_VERIFY};
    static const char *const names[] = {"protocol", "cipher",  "sni",         "alpn",
                                        "resumed",  "subject", "fingerprint", "verify"};
    char out[2048], v[600];
    int n = snprintf(out, sizeof out, "{\"pid\":%d,\"scheme\":%s", (int)getpid(),
                     or_null(loom_req_scheme(req), v, sizeof v));
    for (size_t i = 0; i < sizeof what / sizeof what[0]; i++)
        n += snprintf(out + n, sizeof out - (size_t)n, ",\"%s\":%s", names[i],
                      or_null(loom_req_tls(req, what[i]), v, sizeof v));
    n += snprintf(out + n, sizeof out - (size_t)n, "}");
    return loom_resp_json(req, 200, out, (size_t)n);
}

static int32_t init(loom_plugin *self, const char *config, size_t len)
{
    (void)config;
    (void)len;
    return loom_route_add(self, "GET", "/tls", info, NULL);
}

LOOM_PLUGIN("tlsinfo", "1.0.0", init, NULL)
