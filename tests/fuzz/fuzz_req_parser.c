/* fuzz_req_parser: the request parser (llhttp strict plus loom's checks)
 * under the production limits, fed the way the connection feeds it: in
 * reads whose sizes the input chooses, with the bytes of an unfinished head
 * kept in front of the next read in a buffer that moves every time (so a
 * stale pointer into an old buffer is caught by ASan).
 *
 * Input: byte 0 chooses the split mode, bytes 1-2 seed the splits, the rest
 * is the byte stream of one connection.
 *
 * Invariants on every request the parser hands over: the method, target and
 * header strings are NUL-terminated at their lengths; the body length equals
 * Content-Length, or the sum of the chunk sizes as decoded independently
 * here from the raw bytes; the request ends exactly where its framing says. */
#include <string.h>

#include "fuzz_common.h"
#include "http/parser.h"
#include "util/config.h"

static loom__limits limits;

static void init_limits(void)
{
    if (limits.max_line_size) return;
    loom__config c;
    loom__config_defaults(&c);
    limits.max_line_size = c.max_line_size;
    limits.max_field_size = c.max_field_size;
    limits.max_headers = c.max_headers;
    limits.client_max_size = c.client_max_size;
    limits.max_chunk_ext = 4096; /* as loom__worker_init sets it */
    loom__config_free(&c);
}

static const char *find(const char *s, const char *end, const char *pat, size_t n)
{
    return end - s >= (ptrdiff_t)n ? memmem(s, (size_t)(end - s), pat, n) : NULL;
}

/* Decodes the chunked body that starts at `s`; returns the end of the
 * message (after the trailers) and the sum of the chunk sizes, or NULL. */
static const char *chunked_end(const char *s, const char *end, uint64_t *sum)
{
    *sum = 0;
    for (;;) {
        uint64_t size = 0;
        int digits = 0;
        for (; s < end; s++, digits++) {
            int v = *s >= '0' && *s <= '9'   ? *s - '0'
                    : *s >= 'a' && *s <= 'f' ? *s - 'a' + 10
                    : *s >= 'A' && *s <= 'F' ? *s - 'A' + 10
                                             : -1;
            if (v < 0) break;
            size = size * 16 + (uint64_t)v;
        }
        if (!digits) return NULL;
        const char *eol = find(s, end, "\r\n", 2);
        if (!eol) return NULL;
        s = eol + 2;
        if (size == 0) break;
        if ((uint64_t)(end - s) < size + 2) return NULL;
        s += size;
        if (s[0] != '\r' || s[1] != '\n') return NULL;
        s += 2;
        *sum += size;
    }
    /* trailer lines, then the empty line */
    for (;;) {
        const char *eol = find(s, end, "\r\n", 2);
        if (!eol) return NULL;
        if (eol == s) return s + 2;
        s = eol + 2;
    }
}

static void check_request(const loom_req *r, const char *stream, size_t start, size_t stop)
{
    FUZZ_CHECK(r->complete);
    FUZZ_CHECK(r->method && strlen(r->method) == r->method_len);
    FUZZ_CHECK(r->target && strlen(r->target) == r->target_len);
    FUZZ_CHECK(r->path && r->path_len >= 1 && r->path[0] == '/');
    for (uint32_t i = 0; i < r->nheaders; i++) {
        FUZZ_CHECK(strlen(r->headers[i].name) == r->headers[i].name_len);
        FUZZ_CHECK(strlen(r->headers[i].value) == r->headers[i].value_len);
    }
    FUZZ_CHECK(!(r->chunked && r->has_content_length));
    /* The head ends at the first empty line after the request's start (a
     * strict head has no bare LF and no CR inside a line). */
    const char *s = stream + start, *end = stream + stop;
    while (s < end && (*s == '\r' || *s == '\n')) s++; /* empty lines before a request */
    const char *he = find(s, end, "\r\n\r\n", 4);
    FUZZ_CHECK(he);
    const char *body = he + 4;
    if (r->chunked) {
        uint64_t sum;
        const char *e = chunked_end(body, end, &sum);
        FUZZ_CHECK(e == end);
        FUZZ_CHECK(sum == r->body.len);
    } else if (r->has_content_length) {
        FUZZ_CHECK(r->body.len == r->content_length);
        FUZZ_CHECK((uint64_t)(end - body) == r->content_length);
    } else {
        FUZZ_CHECK(r->body.len == 0);
        FUZZ_CHECK(body == end);
    }
    FUZZ_CHECK(r->body.len <= limits.client_max_size);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    init_limits();
    if (size < 3) return 0;
    uint8_t mode = data[0];
    fuzz_rng rng = {(uint32_t)data[1] << 8 | data[2]};
    const char *stream = (const char *)data + 3;
    size_t len = size - 3;

    loom__parser p;
    loom__parser_init(&p, &limits);
    char *buf = NULL;  /* kept bytes + the new read, always a fresh copy */
    size_t blen = 0;   /* bytes in buf */
    size_t parsed = 0; /* bytes at the front of buf the parser has seen */
    size_t abs0 = 0;   /* stream offset of buf[0] */
    size_t req_start = 0;
    size_t pos = 0;
    int stop = 0;
    while (pos < len && !stop) {
        size_t n = fuzz_split(&rng, mode, len - pos);
        const char *start;
        size_t base_off = 0;
        int pending = (int)loom__parser_pending(&p, &start);
        if (pending) base_off = (size_t)(start - buf);
        char *nb = malloc(blen + n);
        FUZZ_CHECK(nb);
        if (blen) memcpy(nb, buf, blen);
        memcpy(nb + blen, stream + pos, n);
        free(buf);
        buf = nb;
        blen += n;
        pos += n;
        if (pending) loom__parser_rebase(&p, buf + base_off);

        size_t off = parsed;
        while (off < blen) {
            size_t used = 0;
            int rc = loom__parser_feed(&p, buf + off, blen - off, &used);
            FUZZ_CHECK(used <= blen - off);
            off += used;
            if (rc == LOOM__PARSE_REQUEST) {
                loom_req *r = loom__parser_take(&p);
                FUZZ_CHECK(r);
                size_t req_end = abs0 + off;
                /* An Upgrade request hands over what it has and stops. */
                if (!r->upgrade) check_request(r, stream, req_start, req_end);
                req_start = req_end;
                int upgrade = r->upgrade;
                loom__req_free(r);
                if (upgrade) {
                    stop = 1;
                    break;
                }
            } else if (rc == LOOM__PARSE_ERROR) {
                const char *why = NULL;
                int st = loom__parser_error_status(&p, &why);
                FUZZ_CHECK(st >= 400 && st <= 505 && why);
                stop = 1;
                break;
            } else {
                FUZZ_CHECK(off == blen);
                break;
            }
        }
        if (stop) break;
        /* Keep the unfinished head (the parser's pending bytes) only, in a
         * new buffer, as the connection does. */
        size_t keep_from = blen;
        parsed = 0;
        if (loom__parser_pending(&p, &start)) {
            keep_from = (size_t)(start - buf);
            FUZZ_CHECK(keep_from <= blen);
            parsed = blen - keep_from;
        }
        size_t keep = blen - keep_from;
        char *kb = keep ? malloc(keep) : NULL;
        if (keep) memcpy(kb, buf + keep_from, keep);
        free(buf);
        buf = kb;
        blen = keep;
        abs0 += keep_from;
        if (parsed) loom__parser_rebase(&p, buf);
    }
    free(buf);
    loom__parser_free(&p);
    return 0;
}
