#include "http/response.h"
#include "http/date.h"
#include "http/status.h"
#include "http/token.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int ctl_byte(char c)
{
    return c == '\r' || c == '\n' || c == '\0';
}

/* Whether a value is free of CR, LF and NUL. Eight bytes per step: a word
 * with no byte below 14 holds none of them, and only a word that has one
 * (a tab, say) is looked at byte by byte. */
static int value_ok(const char *v, size_t n)
{
    const uint64_t ones = 0x0101010101010101u, highs = 0x8080808080808080u;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t x;
        memcpy(&x, v + i, 8);
        if (((x - ones * 14) & ~x & highs) == 0) continue;
        for (size_t k = i; k < i + 8; k++)
            if (ctl_byte(v[k])) return 0;
    }
    for (; i < n; i++)
        if (ctl_byte(v[i])) return 0;
    return 1;
}

static int managed(const char *n, size_t l)
{
    return (l == 14 && loom__strncaseeq(n, "content-length", 14)) ||
           (l == 17 && loom__strncaseeq(n, "transfer-encoding", 17)) ||
           (l == 10 && loom__strncaseeq(n, "connection", 10));
}

/* The checks every header name passes, and the head still unsent. */
static int name_ok(const loom_req *r, const char *name, size_t nlen)
{
    if (r->resp.head_sent) return 0;
    /* The SDK's loom_resp_bytes sets this one on nearly every response. */
    if (nlen == 12 && memcmp(name, "Content-Type", 12) == 0) return 1;
    return loom__is_token(name, nlen) && !managed(name, nlen);
}

/* Appends a checked header; name and value share one arena copy. */
static int add(loom_req *r, const char *name, size_t nlen, const char *value, size_t vlen)
{
    loom__resp *s = &r->resp;
    if (s->nheaders == s->cap_headers) {
        uint32_t cap = s->cap_headers ? s->cap_headers * 2 : 8;
        loom__header *h = loom__arena_alloc(&r->arena, cap * sizeof *h);
        if (!h) return -1;
        if (s->nheaders) memcpy(h, s->headers, s->nheaders * sizeof *h);
        s->headers = h;
        s->cap_headers = cap;
    }
    char *n = loom__arena_alloc(&r->arena, nlen + vlen + 2);
    if (!n) return -1;
    char *v = n + nlen + 1;
    memcpy(n, name, nlen);
    n[nlen] = '\0';
    if (vlen) memcpy(v, value, vlen);
    v[vlen] = '\0';
    loom__header *h = &s->headers[s->nheaders++];
    h->name = n;
    h->name_len = (uint32_t)nlen;
    h->value = v;
    h->value_len = (uint32_t)vlen;
    return 0;
}

int loom__resp_header_add(loom_req *r, const char *name, size_t nlen, const char *value,
                          size_t vlen)
{
    if (!name_ok(r, name, nlen) || !value_ok(value, vlen)) return -1;
    return add(r, name, nlen, value, vlen);
}

int loom__resp_header_set(loom_req *r, const char *name, size_t nlen, const char *value,
                          size_t vlen)
{
    loom__resp *s = &r->resp;
    if (!name_ok(r, name, nlen)) return -1;
    uint32_t j = 0;
    for (uint32_t i = 0; i < s->nheaders; i++) {
        loom__header *h = &s->headers[i];
        if (h->name_len == nlen && loom__strncaseeq(h->name, name, nlen)) continue;
        s->headers[j++] = *h;
    }
    s->nheaders = j;
    if (!value) return 0;
    return value_ok(value, vlen) ? add(r, name, nlen, value, vlen) : -1;
}

const char *loom__resp_header_get(const loom_req *r, const char *name, size_t nlen, size_t *vlen)
{
    const loom__resp *s = &r->resp;
    for (uint32_t i = 0; i < s->nheaders; i++) {
        const loom__header *h = &s->headers[i];
        if (h->name_len == nlen && loom__strncaseeq(h->name, name, nlen)) {
            if (vlen) *vlen = h->value_len;
            return h->value;
        }
    }
    return NULL;
}

void loom__resp_body_take(loom_req *r, const void *body, size_t len, void (*free_fn)(void *))
{
    loom__resp *s = &r->resp;
    if (s->body_free) s->body_free((void *)s->body);
    if (s->has_file) close(s->file_fd);
    s->has_file = 0;
    s->body = body;
    s->body_len = len;
    s->body_free = free_fn;
}

int loom__resp_body_copy(loom_req *r, const void *body, size_t len)
{
    void *p;
    void (*fr)(void *) = NULL;
    if (len <= 2048) {
        p = loom__arena_alloc(&r->arena, len ? len : 1);
    } else {
        p = malloc(len);
        fr = free;
    }
    if (!p) return -1;
    if (len) memcpy(p, body, len);
    loom__resp_body_take(r, p, len, fr);
    return 0;
}

void loom__resp_file(loom_req *r, int fd, uint64_t off, uint64_t len)
{
    loom__resp_body_take(r, NULL, 0, NULL);
    loom__resp *s = &r->resp;
    s->has_file = 1;
    s->file_fd = fd;
    s->file_off = off;
    s->file_len = len;
}

static char *put_u64(char *p, uint64_t v)
{
    char tmp[20];
    int n = 0;
    do tmp[n++] = (char)('0' + v % 10);
    while ((v /= 10));
    while (n) *p++ = tmp[--n];
    return p;
}

#define LIT(p, s) (memcpy((p), s, sizeof s - 1), (p) + sizeof s - 1)

/* Writes the head into `out` with room for `extra` bytes behind it, which
 * the caller fills; returns the end of the head (out->len is left to the
 * caller) or NULL. One reserve for the whole response, then plain copies:
 * the appends with a check each cost as much as the rest of the head. */
static char *put_head(loom_req *r, loom__buf *out, int chunked, size_t extra)
{
    loom__resp *s = &r->resp;
    if (!s->status) s->status = 200;
    int st = s->status;
    size_t sl, dl, dsl;
    const char *line = loom__status_line(st, &sl);
    const char *reason = NULL;
    if (!line) {
        reason = loom__status_reason(st);
        sl = strlen(reason);
    }
    const char *ds = loom__date_server_lines(&dl, &dsl);
    /* status line, Date and Server, Content-Length or Transfer-Encoding,
     * Connection, the empty line; the fixed-size copies below write up to
     * their size past what they keep. */
    size_t need =
        LOOM__STATUS_LINE_READ + 15 + sl + LOOM__DATE_SERVER_READ + dsl + 38 + 24 + 2 + extra;
    int has_server = 0;
    for (uint32_t i = 0; i < s->nheaders; i++) {
        const loom__header *h = &s->headers[i];
        need += h->name_len + h->value_len + 4;
        if (h->name_len == 6 && loom__strncaseeq(h->name, "server", 6)) has_server = 1;
    }
    if (loom__buf_reserve(out, need)) return NULL;
    char *p = out->data + out->len;
    if (st < 100 || st > 999) st = 500;
    if (line) {
        memcpy(p, line, LOOM__STATUS_LINE_READ);
        p += sl;
    } else {
        p = LIT(p, "HTTP/1.1 ");
        *p++ = (char)('0' + st / 100);
        *p++ = (char)('0' + st / 10 % 10);
        *p++ = (char)('0' + st % 10);
        *p++ = ' ';
        memcpy(p, reason, sl);
        p += sl;
        p = LIT(p, "\r\n");
    }
    /* A handler's own Server header replaces ours. */
    size_t n = has_server ? dl : dsl;
    if (n <= LOOM__DATE_SERVER_READ)
        memcpy(p, ds, LOOM__DATE_SERVER_READ);
    else
        memcpy(p, ds, n);
    p += n;
    for (uint32_t i = 0; i < s->nheaders; i++) {
        const loom__header *h = &s->headers[i];
        memcpy(p, h->name, h->name_len);
        p += h->name_len;
        *p++ = ':';
        *p++ = ' ';
        memcpy(p, h->value, h->value_len);
        p += h->value_len;
        *p++ = '\r';
        *p++ = '\n';
    }
    int bodyless = st < 200 || st == 204 || st == 304;
    if (!bodyless) {
        if (chunked) {
            p = LIT(p, "Transfer-Encoding: chunked\r\n");
        } else {
            p = LIT(p, "Content-Length: ");
            p = put_u64(p, s->has_file ? s->file_len : s->body_len);
            p = LIT(p, "\r\n");
        }
    }
    if (st == 101)
        p = LIT(p, "Connection: Upgrade\r\n"); /* the Upgrade header is the handler's */
    else if (s->close)
        p = LIT(p, "Connection: close\r\n");
    else if (r->http_minor == 0)
        p = LIT(p, "Connection: keep-alive\r\n");
    p = LIT(p, "\r\n");
    s->head_sent = 1;
    return p;
}

int loom__resp_write_head(loom_req *r, loom__buf *out, int chunked)
{
    char *p = put_head(r, out, chunked, 0);
    if (!p) return -1;
    out->len = (size_t)(p - out->data);
    return 0;
}

int loom__resp_write(loom_req *r, loom__buf *out)
{
    loom__resp *s = &r->resp;
    if (!s->status) s->status = 200;
    /* A file body is sent by the connection after the head. */
    size_t body = !s->has_file && loom__resp_has_body(r) ? s->body_len : 0;
    char *p = put_head(r, out, 0, body);
    if (!p) return -1;
    if (body) memcpy(p, s->body, body);
    out->len = (size_t)(p - out->data) + body;
    return 0;
}

int loom__resp_write_error(loom__buf *out, int status, const char *reason)
{
    size_t dl, dsl;
    const char *ds = loom__date_server_lines(&dl, &dsl);
    char body[256];
    int bl = snprintf(body, sizeof body, "%d %s: %s\n", status, loom__status_reason(status),
                      reason ? reason : "");
    if (bl < 0) bl = 0;
    if (bl >= (int)sizeof body) bl = (int)sizeof body - 1;
    return loom__buf_printf(out,
                            "HTTP/1.1 %03d %s\r\n%.*s"
                            "Content-Type: text/plain; charset=utf-8\r\n"
                            "Content-Length: %d\r\nConnection: close\r\n\r\n%.*s",
                            status, loom__status_reason(status), (int)dsl, ds, bl, bl, body);
}
