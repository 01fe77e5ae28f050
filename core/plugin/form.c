#include "plugin/form.h"

#include <stdio.h>
#include <string.h>

static int hexv(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

char *loom__pct_decode(loom_req *r, const char *s, size_t n, int plus, size_t *outlen)
{
    char *d = loom__arena_alloc(&r->arena, n + 1);
    if (!d) return NULL;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '%' && i + 2 < n && hexv(s[i + 1]) >= 0 && hexv(s[i + 2]) >= 0) {
            d[o++] = (char)(hexv(s[i + 1]) * 16 + hexv(s[i + 2]));
            i += 2;
        } else if (plus && s[i] == '+') {
            d[o++] = ' ';
        } else {
            d[o++] = s[i];
        }
    }
    d[o] = '\0';
    if (outlen) *outlen = o;
    return d;
}

const char *loom__urlencoded_get(loom_req *r, const char *s, size_t n, const char *name,
                                 uint32_t idx, size_t *len)
{
    size_t nl = strlen(name);
    const char *p = s, *end = s + n;
    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *e = amp ? amp : end;
        const char *eq = memchr(p, '=', (size_t)(e - p));
        const char *ke = eq ? eq : e;
        size_t kl;
        char *k = loom__pct_decode(r, p, (size_t)(ke - p), 1, &kl);
        if (k && kl == nl && memcmp(k, name, nl) == 0) {
            if (idx == 0) {
                const char *vs = eq ? eq + 1 : e;
                return loom__pct_decode(r, vs, (size_t)(e - vs), 1, len);
            }
            idx--;
        }
        p = e + 1;
    }
    return NULL;
}

/* Finds a parameter like name="x" in a header value; returns an arena copy. */
static char *header_param(loom_req *r, const char *v, size_t vl, const char *param)
{
    size_t pl = strlen(param);
    for (size_t i = 0; i + pl + 1 < vl; i++) {
        if ((i == 0 || v[i - 1] == ';' || v[i - 1] == ' ') && loom__strncaseeq(v + i, param, pl) &&
            v[i + pl] == '=') {
            const char *s = v + i + pl + 1, *end = v + vl;
            if (s < end && *s == '"') {
                const char *q = memchr(s + 1, '"', (size_t)(end - s - 1));
                if (!q) return NULL;
                return loom__arena_strndup(&r->arena, s + 1, (size_t)(q - s - 1));
            }
            const char *e = s;
            while (e < end && *e != ';' && *e != ' ') e++;
            return loom__arena_strndup(&r->arena, s, (size_t)(e - s));
        }
    }
    return NULL;
}

int loom__multipart_get(loom_req *r, const char *name, uint32_t idx, const char **filename,
                        const char **ctype, const char **data, size_t *len)
{
    size_t cl;
    const char *ct = loom__req_header(r, "content-type", 12, &cl);
    if (!ct || cl < 19 || !loom__strncaseeq(ct, "multipart/form-data", 19)) return -1;
    char *b = header_param(r, ct, cl, "boundary");
    if (!b || !*b || strlen(b) > 70) return -1;
    char delim[80];
    size_t dl = (size_t)snprintf(delim, sizeof delim, "--%s", b);
    const char *body = r->body.data;
    if (!body) return -1; /* no body: and NULL + 0 is undefined */
    const char *end = body + r->body.len;
    const char *p = memmem(body, r->body.len, delim, dl);
    for (int parts = 0; p && parts < 1000; parts++) {
        p += dl;
        if (end - p >= 2 && p[0] == '-' && p[1] == '-') return -1; /* closing delimiter */
        if (end - p < 2 || p[0] != '\r' || p[1] != '\n') return -1;
        p += 2;
        const char *hend = memmem(p, (size_t)(end - p), "\r\n\r\n", 4);
        if (!hend) return -1;
        char *pname = NULL, *fname = NULL, *pct = NULL;
        for (const char *l = p; l < hend;) {
            const char *le = memmem(l, (size_t)(hend + 2 - l), "\r\n", 2);
            if (!le) le = hend;
            const char *colon = memchr(l, ':', (size_t)(le - l));
            if (colon) {
                size_t hn = (size_t)(colon - l);
                const char *v = colon + 1;
                while (v < le && *v == ' ') v++;
                if (hn == 19 && loom__strncaseeq(l, "content-disposition", 19)) {
                    pname = header_param(r, v, (size_t)(le - v), "name");
                    fname = header_param(r, v, (size_t)(le - v), "filename");
                } else if (hn == 12 && loom__strncaseeq(l, "content-type", 12)) {
                    pct = loom__arena_strndup(&r->arena, v, (size_t)(le - v));
                }
            }
            l = le + 2;
        }
        const char *ds = hend + 4;
        char nd[84];
        size_t ndl = (size_t)snprintf(nd, sizeof nd, "\r\n%s", delim);
        const char *de = memmem(ds, (size_t)(end - ds), nd, ndl);
        if (!de) return -1;
        if (pname && strcmp(pname, name) == 0) {
            if (idx == 0) {
                if (filename) *filename = fname;
                if (ctype) *ctype = pct;
                *data = ds;
                *len = (size_t)(de - ds);
                return 0;
            }
            idx--;
        }
        p = de + 2;
    }
    return -1;
}

const char *loom__cookie_get(loom_req *r, const char *name, size_t *len)
{
    size_t nl = strlen(name);
    for (uint32_t i = 0; i < r->nheaders; i++) {
        loom__header *h = &r->headers[i];
        if (h->name_len != 6 || !loom__strncaseeq(h->name, "cookie", 6)) continue;
        const char *p = h->value, *end = h->value + h->value_len;
        while (p < end) {
            while (p < end && (*p == ' ' || *p == ';')) p++;
            const char *e = memchr(p, ';', (size_t)(end - p));
            if (!e) e = end;
            const char *eq = memchr(p, '=', (size_t)(e - p));
            if (eq && (size_t)(eq - p) == nl && memcmp(p, name, nl) == 0) {
                const char *v = eq + 1, *ve = e;
                while (ve > v && ve[-1] == ' ') ve--;
                if (ve - v >= 2 && *v == '"' && ve[-1] == '"') {
                    v++;
                    ve--;
                }
                if (len) *len = (size_t)(ve - v);
                return loom__arena_strndup(&r->arena, v, (size_t)(ve - v));
            }
            p = e;
        }
    }
    return NULL;
}
