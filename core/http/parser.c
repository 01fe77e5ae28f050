/* llhttp glue. Everything here runs inside llhttp callbacks; a callback that
 * finds a problem records the status and reason and returns -1, which stops
 * llhttp with an HPE_CB_* error that loom__parser_feed maps back. */
#include "http/parser.h"
#include "http/token.h"

#include <stdio.h>
#include <string.h>

#define P(ll) ((loom__parser *)(ll))

enum { TE_CHUNKED = 1, TE_AFTER_CHUNKED = 2, TE_UNKNOWN = 4, TE_REPEATED = 8 };

static int fail(loom__parser *p, int status, const char *reason)
{
    if (!p->status) {
        p->status = status;
        p->reason = reason;
    }
    return -1;
}

static uint32_t off_of(loom__parser *p, const char *at, size_t len)
{
    uint32_t off = (uint32_t)(at - p->base);
    if (off + len > p->head_end) p->head_end = off + (uint32_t)len;
    return off;
}

static int on_message_begin(llhttp_t *ll)
{
    loom__parser *p = P(ll);
    if (p->req) loom__parser_free(p);
    p->req = loom__req_new();
    if (!p->req) return fail(p, 500, "out of memory");
    p->base = NULL;
    p->head_end = p->line_len = p->field_len = p->value_len = 0;
    p->trailer_bytes = p->trailer_count = p->ext_bytes = 0;
    p->url_off = p->url_len = 0;
    p->in_header = p->headers_done = 0;
    p->host_count = p->cl_count = p->te_count = 0;
    p->te_state = 0;
    p->connection_close_seen = 0;
    p->in_trailers = 0;
    return 0;
}

static int on_method(llhttp_t *ll, const char *at, size_t len)
{
    loom__parser *p = P(ll);
    if (!p->base) p->base = at;
    p->req->method_len += (uint32_t)len;
    off_of(p, at, len);
    p->line_len += (uint32_t)len;
    if (p->line_len > p->limits->max_line_size) return fail(p, 414, "request line too long");
    return 0;
}

static int on_url(llhttp_t *ll, const char *at, size_t len)
{
    loom__parser *p = P(ll);
    uint32_t off = off_of(p, at, len);
    if (p->url_len == 0) p->url_off = off;
    p->url_len += (uint32_t)len;
    p->line_len += (uint32_t)len;
    if (p->line_len > p->limits->max_line_size) return fail(p, 414, "request-target too long");
    return 0;
}

static int on_version(llhttp_t *ll, const char *at, size_t len)
{
    loom__parser *p = P(ll);
    off_of(p, at, len);
    p->line_len += (uint32_t)len;
    if (p->line_len > p->limits->max_line_size) return fail(p, 414, "request line too long");
    return 0;
}

static int on_header_field(llhttp_t *ll, const char *at, size_t len)
{
    loom__parser *p = P(ll);
    loom_req *r = p->req;
    if (p->headers_done) { /* trailers: bounded, then dropped */
        p->trailer_bytes += (uint32_t)len;
        if (p->trailer_bytes > p->limits->max_field_size) return fail(p, 431, "trailers too large");
        return 0;
    }
    uint32_t off = off_of(p, at, len);
    if (p->in_header != 1) {
        p->in_header = 1;
        p->field_len = p->value_len = 0;
        if (r->nheaders >= p->limits->max_headers) return fail(p, 431, "too many headers");
        if (r->nheaders == r->cap_headers) {
            uint32_t cap = r->cap_headers ? r->cap_headers * 2 : 16;
            loom__header *h = loom__arena_alloc(&r->arena, cap * sizeof *h);
            if (!h) return fail(p, 500, "out of memory");
            if (r->nheaders) memcpy(h, r->headers, r->nheaders * sizeof *h);
            r->headers = h;
            r->cap_headers = cap;
        }
        loom__header *h = &r->headers[r->nheaders++];
        h->name = (const char *)(uintptr_t)off;
        h->name_len = 0;
        h->value = NULL;
        h->value_len = 0;
    }
    p->field_len += (uint32_t)len;
    r->headers[r->nheaders - 1].name_len = p->field_len;
    if (p->field_len > p->limits->max_field_size) return fail(p, 431, "header field too large");
    return 0;
}

static int on_header_value(llhttp_t *ll, const char *at, size_t len)
{
    loom__parser *p = P(ll);
    if (p->headers_done) {
        p->trailer_bytes += (uint32_t)len;
        if (p->trailer_bytes > p->limits->max_field_size) return fail(p, 431, "trailers too large");
        return 0;
    }
    /* llhttp 8 hands over a value with an empty name. */
    if (p->in_header == 0) return fail(p, 400, "empty header name");
    /* An empty value ("X:" or "X: ") comes as an empty span that llhttp
     * places at the start of the next line: nothing to keep or check (RFC
     * 9110 allows empty field values). */
    if (len == 0) return 0;
    loom__header *h = &p->req->headers[p->req->nheaders - 1];
    uint32_t off = off_of(p, at, len);
    if (p->in_header != 2) {
        p->in_header = 2;
        h->value = (const char *)(uintptr_t)off;
        /* Only blanks may sit between the colon and the value; a line break
         * there is an obs-fold of an empty first line ("X:\r\n chunked"). */
        const char *q = at;
        while (q > p->base && (q[-1] == ' ' || q[-1] == '\t')) q--;
        if (q == p->base || q[-1] != ':') return fail(p, 400, "obs-fold in a header");
    } else if (off != (uint32_t)(uintptr_t)h->value + p->value_len) {
        /* llhttp 8 folds "X: a\r\n b" into one value in two pieces with the
         * line break between them: obs-fold, which a server must reject or
         * rewrite (RFC 9112 §5.2). We reject. */
        return fail(p, 400, "obs-fold in a header");
    }
    p->value_len += (uint32_t)len;
    h->value_len = p->value_len;
    if (p->field_len + p->value_len > p->limits->max_field_size)
        return fail(p, 431, "header line too large");
    return 0;
}

#define NAME_IS(h, lit)                                                                            \
    ((h)->name_len == sizeof(lit) - 1 && loom__strncaseeq(name, lit, sizeof(lit) - 1))

/* reg-name, IP-literal and port characters (RFC 3986), as a table: this
 * runs on every request. */
static const unsigned char host_char[256] = {
    ['-'] = 1,  ['.'] = 1, ['_'] = 1, ['~'] = 1, ['%'] = 1, ['!'] = 1, ['$'] = 1, ['&'] = 1,
    ['\''] = 1, ['('] = 1, [')'] = 1, ['*'] = 1, ['+'] = 1, [';'] = 1, ['='] = 1, [':'] = 1,
    ['['] = 1,  [']'] = 1, ['0'] = 1, ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1, ['5'] = 1,
    ['6'] = 1,  ['7'] = 1, ['8'] = 1, ['9'] = 1, ['A'] = 1, ['B'] = 1, ['C'] = 1, ['D'] = 1,
    ['E'] = 1,  ['F'] = 1, ['G'] = 1, ['H'] = 1, ['I'] = 1, ['J'] = 1, ['K'] = 1, ['L'] = 1,
    ['M'] = 1,  ['N'] = 1, ['O'] = 1, ['P'] = 1, ['Q'] = 1, ['R'] = 1, ['S'] = 1, ['T'] = 1,
    ['U'] = 1,  ['V'] = 1, ['W'] = 1, ['X'] = 1, ['Y'] = 1, ['Z'] = 1, ['a'] = 1, ['b'] = 1,
    ['c'] = 1,  ['d'] = 1, ['e'] = 1, ['f'] = 1, ['g'] = 1, ['h'] = 1, ['i'] = 1, ['j'] = 1,
    ['k'] = 1,  ['l'] = 1, ['m'] = 1, ['n'] = 1, ['o'] = 1, ['p'] = 1, ['q'] = 1, ['r'] = 1,
    ['s'] = 1,  ['t'] = 1, ['u'] = 1, ['v'] = 1, ['w'] = 1, ['x'] = 1, ['y'] = 1, ['z'] = 1,
};

/* Four bytes per step and no early exit, like loom__is_token. */
static int valid_host(const char *v, size_t n)
{
    const unsigned char *u = (const unsigned char *)v;
    unsigned ok = n != 0;
    size_t i = 0;
    for (; i + 4 <= n; i += 4)
        ok &= host_char[u[i]] & host_char[u[i + 1]] & host_char[u[i + 2]] & host_char[u[i + 3]];
    for (; i < n; i++) ok &= host_char[u[i]];
    return (int)ok;
}

/* Transfer-Encoding is a comma-separated list; empty elements are allowed
 * (RFC 9110 §5.6.1). Only "chunked", once and last, is a framing we speak. */
static void classify_te(loom__parser *p, const char *v, size_t n)
{
    size_t i = 0;
    while (i < n) {
        while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ',')) i++;
        size_t s = i;
        while (i < n && v[i] != ',') i++;
        size_t e = i;
        while (e > s && (v[e - 1] == ' ' || v[e - 1] == '\t')) e--;
        if (e == s) continue;
        if (e - s == 7 && loom__strncaseeq(v + s, "chunked", 7)) {
            if (p->te_state & TE_CHUNKED) p->te_state |= TE_REPEATED;
            p->te_state |= TE_CHUNKED;
            p->te_state &= (uint8_t)~TE_AFTER_CHUNKED;
        } else {
            if (p->te_state & TE_CHUNKED) p->te_state |= TE_AFTER_CHUNKED;
            p->te_state |= TE_UNKNOWN;
        }
    }
}

static int on_header_value_complete(llhttp_t *ll)
{
    loom__parser *p = P(ll);
    if (p->headers_done) {
        if (++p->trailer_count > p->limits->max_headers) return fail(p, 431, "too many trailers");
        return 0;
    }
    loom_req *r = p->req;
    if (p->in_header == 0 || r->nheaders == 0) return fail(p, 400, "empty header name");
    loom__header *h = &r->headers[r->nheaders - 1];
    if (h->name_len == 0) return fail(p, 400, "empty header name");
    const char *name = p->base + (uintptr_t)h->name;
    const char *value = h->value ? p->base + (uintptr_t)h->value : "";
    /* llhttp drops leading whitespace; drop the trailing kind too. */
    while (h->value_len && (value[h->value_len - 1] == ' ' || value[h->value_len - 1] == '\t'))
        h->value_len--;
    p->in_header = 0;
    switch (h->name_len) {
    case 4:
        if (NAME_IS(h, "host")) {
            if (++p->host_count > 1) return fail(p, 400, "duplicate Host header");
            if (!valid_host(value, h->value_len)) return fail(p, 400, "invalid Host header");
        }
        break;
    case 6:
        if (NAME_IS(h, "expect")) {
            if (h->value_len == 12 && loom__strncaseeq(value, "100-continue", 12))
                r->expect_continue = 1;
            else
                return fail(p, 417, "unsupported expectation");
        }
        break;
    case 12:
        if (NAME_IS(h, "content-type")) {
            for (uint32_t i = 0; i + 1 < r->nheaders; i++) {
                loom__header *o = &r->headers[i];
                if (o->name_len == 12 &&
                    loom__strncaseeq(p->base + (uintptr_t)o->name, "content-type", 12))
                    return fail(p, 400, "duplicate Content-Type header");
            }
        }
        break;
    case 14:
        if (NAME_IS(h, "content-length")) {
            p->cl_count++;
            /* llhttp reads "010" as 10; others read octal or refuse. */
            if (h->value_len > 1 && value[0] == '0')
                return fail(p, 400, "Content-Length with a leading zero");
        }
        break;
    case 17:
        if (NAME_IS(h, "transfer-encoding")) {
            p->te_count++;
            classify_te(p, value, h->value_len);
        }
        break;
    }
    return 0;
}

/* Copies the head out of the read buffer into the request's arena and turns
 * the recorded offsets into NUL-terminated strings. */
static int copy_head(loom__parser *p)
{
    loom_req *r = p->req;
    char *h = loom__arena_alloc(&r->arena, (size_t)p->head_end + 1);
    if (!h) return -1;
    memcpy(h, p->base, p->head_end);
    h[p->head_end] = '\0';
    r->method = h;
    h[r->method_len] = '\0';
    r->target = h + p->url_off;
    r->target_len = p->url_len;
    ((char *)r->target)[r->target_len] = '\0';
    for (uint32_t i = 0; i < r->nheaders; i++) {
        loom__header *x = &r->headers[i];
        x->name = h + (uintptr_t)x->name;
        ((char *)x->name)[x->name_len] = '\0';
        if (x->value) {
            x->value = h + (uintptr_t)x->value;
            ((char *)x->value)[x->value_len] = '\0';
        } else {
            x->value = "";
        }
    }
    /* origin-form "/p?q" or absolute-form "http://host/p?q" */
    const char *t = r->target, *end = t + r->target_len;
    if (*t != '/') {
        const char *s = strstr(t, "://");
        t = s ? s + 3 : end;
        while (t < end && *t != '/' && *t != '?') t++;
    }
    const char *q = memchr(t, '?', (size_t)(end - t));
    const char *pe = q ? q : end;
    if (t == pe) {
        r->path = "/";
        r->path_len = 1;
    } else if (pe == end && t == r->target) {
        r->path = t;
        r->path_len = (uint32_t)(pe - t);
    } else {
        r->path = loom__arena_strndup(&r->arena, t, (size_t)(pe - t));
        if (!r->path) return -1;
        r->path_len = (uint32_t)(pe - t);
    }
    if (q) {
        r->query = q + 1;
        r->query_len = (uint32_t)(end - q - 1);
    }
    return 0;
}

/* llhttp 8 accepts runs of spaces between the parts of the request line and a
 * line without a version (HTTP/0.9). Requires exactly
 * "method SP target SP HTTP/d.d CRLF"; the whole head is in memory from
 * p->base on, and each test stops at the first byte that differs. */
static int valid_request_line(const loom__parser *p)
{
    const char *b = p->base;
    uint32_t m = p->req->method_len;
    if (!b || p->url_len == 0 || b[m] != ' ' || p->url_off != m + 1) return 0;
    const char *v = b + p->url_off + p->url_len;
    return v[0] == ' ' && v[1] == 'H' && v[2] == 'T' && v[3] == 'T' && v[4] == 'P' && v[5] == '/' &&
           v[6] >= '0' && v[6] <= '9' && v[7] == '.' && v[8] >= '0' && v[8] <= '9' &&
           v[9] == '\r' && v[10] == '\n';
}

static int on_headers_complete(llhttp_t *ll)
{
    loom__parser *p = P(ll);
    loom_req *r = p->req;
    if (!valid_request_line(p)) return fail(p, 400, "malformed request line");
    r->http_major = ll->http_major;
    r->http_minor = ll->http_minor;
    r->method_id = ll->method;
    if (ll->http_major != 1 || ll->http_minor > 1)
        return fail(p, 505, "HTTP version not supported");
    if (ll->method == HTTP_CONNECT) return fail(p, 501, "CONNECT is not supported");
    if (p->host_count == 0 && ll->http_minor == 1) return fail(p, 400, "missing Host header");
    /* An HTTP/1.0 client knows no interim responses (RFC 9110 §10.1.1). */
    if (ll->http_minor == 0) r->expect_continue = 0;
    if (p->te_count) {
        if (ll->http_minor == 0) return fail(p, 400, "Transfer-Encoding in an HTTP/1.0 request");
        if (p->cl_count) return fail(p, 400, "both Content-Length and Transfer-Encoding");
        if (p->te_state & (TE_REPEATED | TE_AFTER_CHUNKED))
            return fail(p, 400, "chunked must be the last transfer coding, once");
        if (p->te_state & TE_UNKNOWN) return fail(p, 501, "unsupported transfer coding");
    }
    if (p->url_len == 1 && p->base[p->url_off] == '*' && ll->method != HTTP_OPTIONS)
        return fail(p, 400, "'*' target with a method other than OPTIONS");
    if (ll->flags & F_CONTENT_LENGTH) {
        r->has_content_length = 1;
        r->content_length = ll->content_length;
        if (r->content_length > p->limits->client_max_size)
            return fail(p, 413, "request body too large");
    }
    r->chunked = (ll->flags & F_CHUNKED) != 0;
    r->upgrade = ll->upgrade;
    r->keep_alive = (uint8_t)llhttp_should_keep_alive(ll);
    r->is_head = ll->method == HTTP_HEAD;
    if (copy_head(p)) return fail(p, 500, "out of memory");
    p->headers_done = 1;
    return 0;
}

static int on_body(llhttp_t *ll, const char *at, size_t len)
{
    loom__parser *p = P(ll);
    loom_req *r = p->req;
    if (r->body.len + len > p->limits->client_max_size)
        return fail(p, 413, "request body too large");
    if (!r->body.cap && r->has_content_length) {
        /* Trust a declared length only as far as a small first buffer. */
        size_t want = r->content_length < 65536 ? (size_t)r->content_length : 65536;
        if (loom__buf_reserve(&r->body, want)) return fail(p, 500, "out of memory");
    }
    if (loom__buf_append(&r->body, at, len)) return fail(p, 500, "out of memory");
    return 0;
}

static int on_chunk_header(llhttp_t *ll)
{
    loom__parser *p = P(ll);
    p->ext_bytes = 0;
    if (ll->content_length == 0) {
        /* The last chunk: stop so that loom__parser_feed scans the trailers
         * for bare LFs before llhttp reads them. */
        p->in_trailers = 1;
        return HPE_PAUSED;
    }
    if (p->req->body.len + ll->content_length > p->limits->client_max_size)
        return fail(p, 413, "request body too large");
    return 0;
}

static int on_chunk_ext(llhttp_t *ll, const char *at, size_t len)
{
    loom__parser *p = P(ll);
    (void)at;
    p->ext_bytes += (uint32_t)len;
    if (p->ext_bytes > p->limits->max_chunk_ext) return fail(p, 400, "chunk extension too long");
    return 0;
}

static int on_message_complete(llhttp_t *ll)
{
    loom__parser *p = P(ll);
    p->req->complete = 1;
    return HPE_PAUSED;
}

static const llhttp_settings_t settings = {
    .on_message_begin = on_message_begin,
    .on_method = on_method,
    .on_url = on_url,
    .on_version = on_version,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_header_value_complete = on_header_value_complete,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_chunk_header = on_chunk_header,
    .on_chunk_extension_name = on_chunk_ext,
    .on_chunk_extension_value = on_chunk_ext,
    .on_message_complete = on_message_complete,
};

void loom__parser_init(loom__parser *p, const loom__limits *limits)
{
    memset(p, 0, sizeof *p);
    llhttp_init(&p->ll, HTTP_REQUEST, &settings);
    p->limits = limits;
}

void loom__parser_free(loom__parser *p)
{
    loom__req_free(p->req);
    p->req = NULL;
}

enum { MTOK_START, MTOK_IN, MTOK_SP, MTOK_BAD };

/* Follows the method token, so that an unknown but well-formed method gets
 * 501 and a malformed one 400 however the bytes were split into reads. Runs
 * only once llhttp has refused the method (it keeps no span of a refused
 * method): from the start of the request, then on the bytes that follow
 * while the token is not complete. */
static void track_method(loom__parser *p, const char *data, size_t len)
{
    uint8_t st = p->mtok_state;
    uint32_t n = p->mtok_len;
    for (size_t i = 0; i < len && st < MTOK_SP; i++) {
        unsigned char c = (unsigned char)data[i];
        if (loom__tchar[c]) {
            st = MTOK_IN;
            n++;
        } else if (st != MTOK_START || (c != '\r' && c != '\n')) {
            st = st == MTOK_IN && c == ' ' ? MTOK_SP : MTOK_BAD;
        }
    }
    p->mtok_state = st;
    p->mtok_len = n;
}

/* Sets the status for a refused method; 0 while the token may still go on. */
static int classify_method(loom__parser *p)
{
    if (p->mtok_len > p->limits->max_line_size) {
        p->status = 414;
        p->reason = "request line too long";
    } else if (p->mtok_state == MTOK_SP) {
        p->status = 501;
        p->reason = "method not implemented";
    } else if (p->mtok_state == MTOK_BAD) {
        p->status = 400;
        p->reason = "invalid method";
    } else {
        return 0;
    }
    return 1;
}

/* llhttp rejects both a malformed and an unknown method with one error; an
 * unknown but well-formed one deserves 501, the rest 400. Likewise a
 * well-formed but unsupported version gets 505. */
static void map_error(loom__parser *p, const char *data, size_t len, llhttp_errno_t e)
{
    const char *s = data, *end = data + len;
    switch (e) {
    case HPE_INVALID_METHOD:
        if (!classify_method(p)) {
            p->status = 400;
            p->reason = "invalid method";
        }
        return;
    case HPE_INVALID_VERSION: {
        /* The request line may have come in several reads: look back to
         * its start, which the caller keeps in front of `data`. */
        const char *pos = llhttp_get_error_pos(&p->ll);
        if (p->base && p->base <= data) s = p->base;
        const char *v = pos && pos >= s && pos <= end ? pos : end;
        while (v > s && v[-1] != ' ') v--;
        if (end - v >= 8 && memcmp(v, "HTTP/", 5) == 0 && v[5] >= '0' && v[5] <= '9' &&
            v[6] == '.' && v[7] >= '0' && v[7] <= '9' && (end - v == 8 || v[8] == '\r')) {
            p->status = 505;
            p->reason = "HTTP version not supported";
        } else {
            p->status = 400;
            p->reason = "invalid HTTP version";
        }
        return;
    }
    case HPE_INVALID_TRANSFER_ENCODING:
        p->status = (p->te_state & TE_UNKNOWN) && !(p->te_state & TE_AFTER_CHUNKED) ? 501 : 400;
        p->reason = "invalid Transfer-Encoding";
        return;
    default:
        p->status = 400;
        p->reason = llhttp_get_error_reason(&p->ll);
        if (!p->reason) p->reason = llhttp_errno_name(e);
        return;
    }
}

/* Whether the parser is between requests, in a head or in trailers: where
 * every line must end in CRLF. */
static int in_head(const loom__parser *p)
{
    return !p->req || !p->headers_done || p->in_trailers;
}

/* Scans a head (or trailers) from data[from] for the first LF without a CR
 * before it: returns its offset and sets *bare; or returns the offset just past
 * the first empty line (CRLF right after LF), where a head or trailer section
 * ends; or len. llhttp 8 in strict mode still takes a bare LF after the
 * request line and as the empty line that ends a head or the trailers; we
 * refuse it there (RFC 9112 §2.2 allows either; a lone LF is a smuggling
 * vector). Stopping at the empty line keeps the scan to the head: the bytes
 * after it (a body, pipelined requests) are not scanned for every request. */
static size_t scan_head(const loom__parser *p, const char *data, size_t from, size_t len, int *bare)
{
    *bare = 0;
    while (from < len) {
        const char *q = memchr(data + from, '\n', len - from);
        if (!q) break;
        size_t i = (size_t)(q - data);
        int cr = i > 0 ? data[i - 1] == '\r' : p->prev_cr;
        if (!cr) {
            *bare = 1;
            return i;
        }
        if (i >= 2 && data[i - 2] == '\n') return i + 1;
        from = i + 1;
    }
    return len;
}

int loom__parser_feed(loom__parser *p, const char *data, size_t len, size_t *consumed)
{
    if (p->mtok_wait) {
        /* llhttp has refused the method; read on only to tell 501 from 400. */
        track_method(p, data, len);
        *consumed = len;
        return classify_method(p) ? LOOM__PARSE_ERROR : LOOM__PARSE_MORE;
    }
    if (p->status) return LOOM__PARSE_ERROR;
    llhttp_errno_t e = HPE_OK;
    size_t done = 0;
    /* Heads and trailers are executed up to their end (or a bare LF, which
     * is an error there); bodies in one go. */
    for (;;) {
        int bare = 0;
        size_t stop = in_head(p) ? scan_head(p, data, done, len, &bare) : len;
        e = llhttp_execute(&p->ll, data + done, stop - done);
        if (e == HPE_PAUSED && p->req && !p->req->complete && p->in_trailers == 1) {
            /* on_chunk_header paused at the last chunk: scan the trailers. */
            const char *pos = llhttp_get_error_pos(&p->ll);
            p->in_trailers = 2;
            llhttp_resume(&p->ll);
            done = pos && pos >= data && pos <= data + len ? (size_t)(pos - data) : stop;
            continue;
        }
        if (e != HPE_OK || stop == len) break;
        if (bare && in_head(p)) {
            *consumed = stop;
            fail(p, 400, "bare LF in the request head");
            return LOOM__PARSE_ERROR;
        }
        done = stop;
    }
    if (e == HPE_OK) {
        *consumed = len;
        if (len) p->prev_cr = data[len - 1] == '\r';
        return LOOM__PARSE_MORE;
    }
    const char *pos = llhttp_get_error_pos(&p->ll);
    *consumed = pos && pos >= data && pos <= data + len ? (size_t)(pos - data) : len;
    if (*consumed) p->prev_cr = data[*consumed - 1] == '\r';
    if (e == HPE_PAUSED && p->req && p->req->complete) {
        llhttp_resume(&p->ll);
        return LOOM__PARSE_REQUEST;
    }
    if (e == HPE_PAUSED_UPGRADE && p->req && p->req->complete) {
        /* We do not switch protocols: answer, then close (req->upgrade). */
        p->status = 400;
        p->reason = "no bytes may follow an Upgrade request";
        return LOOM__PARSE_REQUEST;
    }
    if (e == HPE_INVALID_METHOD && !p->status) {
        /* A method that began in an earlier read was handed to on_method
         * there, so its bytes are still in front of `data`, from p->base. */
        const char *s = p->base && p->base <= data ? p->base : data;
        track_method(p, s, (size_t)(data + len - s));
        if (!classify_method(p)) {
            p->mtok_wait = 1;
            *consumed = len;
            return LOOM__PARSE_MORE;
        }
    }
    if (!p->status) map_error(p, data, len, e);
    return LOOM__PARSE_ERROR;
}

loom_req *loom__parser_take(loom__parser *p)
{
    loom_req *r = p->req;
    p->req = NULL;
    p->base = NULL;
    p->mtok_state = MTOK_START;
    p->mtok_len = 0;
    return r;
}

int loom__parser_error_status(const loom__parser *p, const char **reason)
{
    if (reason) *reason = p->reason ? p->reason : "bad request";
    return p->status ? p->status : 400;
}

size_t loom__parser_request_line(const loom__parser *p, char *buf, size_t len, size_t max_target)
{
    const loom_req *r = p->req;
    if (!r || len == 0) return 0;
    const char *method, *target;
    size_t mlen, tlen;
    int major = -1, minor = -1;
    if (p->headers_done) { /* copied into the request */
        method = r->method;
        mlen = r->method_len;
        target = r->target;
        tlen = r->target_len;
        major = r->http_major;
        minor = r->http_minor;
    } else {
        /* Still in the caller's buffer, from p->base (loom__parser_pending):
         * the method is whole once the target has begun. */
        if (!p->base || p->url_len == 0 || r->method_len == 0) return 0;
        method = p->base;
        mlen = r->method_len;
        target = p->base + p->url_off;
        tlen = p->url_len;
        const char *v = target + tlen;
        if (p->url_off + p->url_len + 9 <= p->head_end && v[0] == ' ' &&
            memcmp(v + 1, "HTTP/", 5) == 0 && v[6] >= '0' && v[6] <= '9' && v[7] == '.' &&
            v[8] >= '0' && v[8] <= '9') {
            major = v[6] - '0';
            minor = v[8] - '0';
        }
    }
    /* A target that was cut here, or not seen to its end, ends in "...". */
    int cut = tlen > max_target || major < 0;
    if (tlen > max_target) tlen = max_target;
    int n;
    if (major < 0)
        n = snprintf(buf, len, "%.*s %.*s%s", (int)mlen, method, (int)tlen, target,
                     cut ? "..." : "");
    else
        n = snprintf(buf, len, "%.*s %.*s%s HTTP/%d.%d", (int)mlen, method, (int)tlen, target,
                     cut ? "..." : "", major, minor);
    if (n < 0) return 0;
    return (size_t)n < len ? (size_t)n : len - 1;
}
