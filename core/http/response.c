#include "http/response.h"
#include "http/date.h"
#include "http/status.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SERVER_LINE "Server: loom/" LOOM_VERSION "\r\n"

/* RFC 9110 tchar, as a table: this runs for every response header. */
static const unsigned char tchar[256] = {
    ['!'] = 1, ['#'] = 1, ['$'] = 1, ['%'] = 1, ['&'] = 1, ['\''] = 1, ['*'] = 1, ['+'] = 1,
    ['-'] = 1, ['.'] = 1, ['^'] = 1, ['_'] = 1, ['`'] = 1, ['|'] = 1,  ['~'] = 1, ['0'] = 1,
    ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1, ['5'] = 1, ['6'] = 1,  ['7'] = 1, ['8'] = 1,
    ['9'] = 1, ['A'] = 1, ['B'] = 1, ['C'] = 1, ['D'] = 1, ['E'] = 1,  ['F'] = 1, ['G'] = 1,
    ['H'] = 1, ['I'] = 1, ['J'] = 1, ['K'] = 1, ['L'] = 1, ['M'] = 1,  ['N'] = 1, ['O'] = 1,
    ['P'] = 1, ['Q'] = 1, ['R'] = 1, ['S'] = 1, ['T'] = 1, ['U'] = 1,  ['V'] = 1, ['W'] = 1,
    ['X'] = 1, ['Y'] = 1, ['Z'] = 1, ['a'] = 1, ['b'] = 1, ['c'] = 1,  ['d'] = 1, ['e'] = 1,
    ['f'] = 1, ['g'] = 1, ['h'] = 1, ['i'] = 1, ['j'] = 1, ['k'] = 1,  ['l'] = 1, ['m'] = 1,
    ['n'] = 1, ['o'] = 1, ['p'] = 1, ['q'] = 1, ['r'] = 1, ['s'] = 1,  ['t'] = 1, ['u'] = 1,
    ['v'] = 1, ['w'] = 1, ['x'] = 1, ['y'] = 1, ['z'] = 1,
};

static int is_token(const char *s, size_t n)
{
    if (n == 0) return 0;
    for (size_t i = 0; i < n; i++)
        if (!tchar[(unsigned char)s[i]]) return 0;
    return 1;
}

static int managed(const char *n, size_t l)
{
    return (l == 14 && loom__strncaseeq(n, "content-length", 14)) ||
           (l == 17 && loom__strncaseeq(n, "transfer-encoding", 17)) ||
           (l == 10 && loom__strncaseeq(n, "connection", 10));
}

int loom__resp_header_add(loom_req *r, const char *name, size_t nlen, const char *value,
                          size_t vlen)
{
    loom__resp *s = &r->resp;
    if (s->head_sent || !is_token(name, nlen) || managed(name, nlen)) return -1;
    for (size_t i = 0; i < vlen; i++)
        if (value[i] == '\r' || value[i] == '\n' || value[i] == '\0') return -1;
    if (s->nheaders == s->cap_headers) {
        uint32_t cap = s->cap_headers ? s->cap_headers * 2 : 8;
        loom__header *h = loom__arena_alloc(&r->arena, cap * sizeof *h);
        if (!h) return -1;
        if (s->nheaders) memcpy(h, s->headers, s->nheaders * sizeof *h);
        s->headers = h;
        s->cap_headers = cap;
    }
    char *n = loom__arena_strndup(&r->arena, name, nlen);
    char *v = loom__arena_strndup(&r->arena, value, vlen);
    if (!n || !v) return -1;
    loom__header *h = &s->headers[s->nheaders++];
    h->name = n;
    h->name_len = (uint32_t)nlen;
    h->value = v;
    h->value_len = (uint32_t)vlen;
    return 0;
}

int loom__resp_header_set(loom_req *r, const char *name, size_t nlen, const char *value,
                          size_t vlen)
{
    loom__resp *s = &r->resp;
    if (s->head_sent || !is_token(name, nlen) || managed(name, nlen)) return -1;
    uint32_t j = 0;
    for (uint32_t i = 0; i < s->nheaders; i++) {
        loom__header *h = &s->headers[i];
        if (h->name_len == nlen && loom__strncaseeq(h->name, name, nlen)) continue;
        s->headers[j++] = *h;
    }
    s->nheaders = j;
    return value ? loom__resp_header_add(r, name, nlen, value, vlen) : 0;
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

void loom__resp_file(loom_req *r, int fd, uint64_t off, uint64_t len)
{
    loom__resp_body_take(r, NULL, 0, NULL);
    loom__resp *s = &r->resp;
    s->has_file = 1;
    s->file_fd = fd;
    s->file_off = off;
    s->file_len = len;
}

int loom__resp_has_body(const loom_req *r)
{
    int st = r->resp.status;
    return !r->is_head && st >= 200 && st != 204 && st != 304;
}

static int put_u64(loom__buf *b, unsigned long long v)
{
    char tmp[24];
    int n = 0;
    do tmp[sizeof tmp - 1 - n++] = (char)('0' + v % 10);
    while ((v /= 10) && n < 23);
    return loom__buf_append(b, tmp + sizeof tmp - n, (size_t)n);
}

int loom__resp_write_head(loom_req *r, loom__buf *out, int chunked)
{
    loom__resp *s = &r->resp;
    if (!s->status) s->status = 200;
    int st = s->status;
    const char *reason = loom__status_reason(st);
    size_t dl;
    const char *date = loom__date_line(&dl);
    size_t need = 64 + strlen(reason) + dl + sizeof SERVER_LINE + 64;
    for (uint32_t i = 0; i < s->nheaders; i++)
        need += s->headers[i].name_len + s->headers[i].value_len + 4;
    if (loom__buf_reserve(out, need)) return -1;
    char *p = out->data + out->len;
    /* The status line by hand: printf was the largest user-space cost. */
    if (st < 100 || st > 999) st = 500;
    memcpy(p, "HTTP/1.1 ", 9);
    p[9] = (char)('0' + st / 100);
    p[10] = (char)('0' + st / 10 % 10);
    p[11] = (char)('0' + st % 10);
    p[12] = ' ';
    p += 13;
    size_t rl = strlen(reason);
    memcpy(p, reason, rl);
    p += rl;
    *p++ = '\r';
    *p++ = '\n';
    memcpy(p, date, dl);
    p += dl;
    int has_server = loom__resp_header_get(r, "server", 6, NULL) != NULL;
    if (!has_server) {
        memcpy(p, SERVER_LINE, sizeof SERVER_LINE - 1);
        p += sizeof SERVER_LINE - 1;
    }
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
    out->len = (size_t)(p - out->data);
    int bodyless = st < 200 || st == 204 || st == 304;
    if (!bodyless) {
        if (chunked) {
            loom__buf_puts(out, "Transfer-Encoding: chunked\r\n");
        } else {
            loom__buf_puts(out, "Content-Length: ");
            put_u64(out, s->has_file ? s->file_len : s->body_len);
            loom__buf_puts(out, "\r\n");
        }
    }
    if (s->close)
        loom__buf_puts(out, "Connection: close\r\n");
    else if (r->http_minor == 0)
        loom__buf_puts(out, "Connection: keep-alive\r\n");
    s->head_sent = 1;
    return loom__buf_append(out, "\r\n", 2);
}

int loom__resp_write(loom_req *r, loom__buf *out)
{
    if (loom__resp_write_head(r, out, 0)) return -1;
    if (r->resp.has_file) return 0; /* the connection sends the file after the head */
    if (loom__resp_has_body(r)) return loom__buf_append(out, r->resp.body, r->resp.body_len);
    return 0;
}

int loom__resp_write_error(loom__buf *out, int status, const char *reason)
{
    size_t dl;
    const char *date = loom__date_line(&dl);
    char body[256];
    int bl = snprintf(body, sizeof body, "%d %s: %s\n", status, loom__status_reason(status),
                      reason ? reason : "");
    if (bl < 0) bl = 0;
    if (bl >= (int)sizeof body) bl = (int)sizeof body - 1;
    return loom__buf_printf(out,
                            "HTTP/1.1 %03d %s\r\n%.*s" SERVER_LINE
                            "Content-Type: text/plain; charset=utf-8\r\n"
                            "Content-Length: %d\r\nConnection: close\r\n\r\n%.*s",
                            status, loom__status_reason(status), (int)dl, date, bl, bl, body);
}
