/* benchjson: the JSON workload -- GET /json answers {"message":"Hello, World!"},
 * serialised per request (as TechEmpower requires), not cached: the object is
 * written field by field and its string value escaped as JSON requires. */
#include <loom/loom.h>
#include <string.h>

/* Appends `s` as a JSON string (quotes included) at p; returns the end.
 * The caller leaves 6 bytes of room per input byte plus 2. */
static char *json_string(char *p, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    *p++ = '"';
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            *p++ = '\\';
            *p++ = (char)c;
        } else if (c < 0x20) {
            memcpy(p, "\\u00", 4);
            p[4] = hex[c >> 4];
            p[5] = hex[c & 15];
            p += 6;
        } else {
            *p++ = (char)c;
        }
    }
    *p++ = '"';
    return p;
}

static int32_t h_json(loom_req *req, void *ud)
{
    (void)ud;
    static const char msg[] = "Hello, World!";
    char buf[16 + 6 * sizeof msg];
    char *p = buf;
    *p++ = '{';
    p = json_string(p, "message", 7);
    *p++ = ':';
    p = json_string(p, msg, sizeof msg - 1);
    *p++ = '}';
    return loom_resp_json(req, 200, buf, (size_t)(p - buf));
}

static int32_t init(loom_plugin *self, const char *config, size_t len)
{
    (void)config;
    (void)len;
    return loom_route_add(self, "GET", "/json", h_json, NULL);
}

LOOM_PLUGIN("benchjson", "1.0.0", init, NULL)
