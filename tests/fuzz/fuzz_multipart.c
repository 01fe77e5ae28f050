/* fuzz_multipart: form parsing (core/plugin/form.c) on a request as the
 * parser builds it: multipart/form-data and urlencoded bodies through the
 * ABI's req_form and req_form_file, the query string, cookies and
 * percent-decoding.
 *
 * Input: four lines, then the body: the Content-Type value, the Cookie
 * header value, the query string, a field name; everything after the fourth
 * '\n' is the body.
 *
 * Invariants: no sanitizer report; a multipart value lies inside the body;
 * every string returned is NUL-terminated at its length. */
#include <string.h>

#include "fuzz_common.h"
#include "plugin/form.h"
#include "plugin/host.h"

static const char *take_line(const char **s, const char *end, size_t *n)
{
    const char *l = *s;
    const char *e = memchr(l, '\n', (size_t)(end - l));
    if (!e) e = end;
    *n = (size_t)(e - l);
    *s = e < end ? e + 1 : end;
    return l;
}

static void add_header(loom_req *r, const char *name, const char *v, size_t n)
{
    loom__header *h = &r->headers[r->nheaders++];
    h->name = name;
    h->name_len = (uint32_t)strlen(name);
    h->value = loom__arena_strndup(&r->arena, v, n);
    h->value_len = (uint32_t)n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data, *end = s + size;
    size_t ctl, ckl, ql, nl;
    const char *ct = take_line(&s, end, &ctl);
    const char *ck = take_line(&s, end, &ckl);
    const char *q = take_line(&s, end, &ql);
    const char *nm = take_line(&s, end, &nl);
    /* Header values hold no NUL, CR or LF once parsed. */
    if (memchr(ct, 0, ctl) || memchr(ck, 0, ckl) || memchr(ct, '\r', ctl) || memchr(ck, '\r', ckl))
        return 0;

    loom_req *r = loom__req_new();
    FUZZ_CHECK(r);
    loom__rctx *x = loom__arena_alloc(&r->arena, sizeof *x);
    memset(x, 0, sizeof *x);
    r->host_data = x;
    r->headers = loom__arena_alloc(&r->arena, 4 * sizeof *r->headers);
    r->cap_headers = 4;
    add_header(r, "Content-Type", ct, ctl);
    add_header(r, "Cookie", ck, ckl);
    add_header(r, "cookie", ck, ckl / 2);
    r->query = loom__arena_strndup(&r->arena, q, ql);
    r->query_len = (uint32_t)ql;
    loom__buf_append(&r->body, s, (size_t)(end - s));
    char *name = loom__arena_strndup(&r->arena, nm, nl);
    const loom_host_api *api = &loom__api_table;
    const char *body = r->body.data ? r->body.data : "", *bend = body + r->body.len;

    for (uint32_t idx = 0; idx < 3; idx++) {
        size_t len = 0;
        const char *v = api->req_form(r, name, idx, &len);
        if (v) FUZZ_CHECK(strlen(v) <= len && v[len] == '\0');
        const char *fn = NULL, *fct = NULL, *d = NULL;
        if (loom__multipart_get(r, name, idx, &fn, &fct, &d, &len) == 0) {
            FUZZ_CHECK(d >= body && d + len <= bend);
            if (fn) FUZZ_CHECK(strlen(fn) < r->body.len + 1);
        }
        v = loom__urlencoded_get(r, r->query, r->query_len, name, idx, &len);
        if (v) FUZZ_CHECK(v[len] == '\0');
    }
    const void *fd = NULL;
    const char *fn = NULL, *fct = NULL;
    size_t fl = 0;
    if (api->req_form_file(r, name, &fn, &fct, &fd, &fl) == LOOM_OK)
        FUZZ_CHECK(fn && fct && (const char *)fd >= body && (const char *)fd + fl <= bend);
    size_t cl = 0;
    const char *c = loom__cookie_get(r, name, &cl);
    if (c) FUZZ_CHECK(c[cl] == '\0');
    size_t dl = 0;
    char *dec = loom__pct_decode(r, body, r->body.len, 1, &dl);
    FUZZ_CHECK(dec && dl <= r->body.len && dec[dl] == '\0');
    loom__req_free(r);
    return 0;
}
