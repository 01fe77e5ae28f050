#include "ws/deflate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "http/request.h" /* loom__strncaseeq */

/* ---- negotiation ---- */

/* One extension element of a Sec-WebSocket-Extensions list, as far as
 * permessage-deflate needs it. A window-bits value of -1 means absent and 0
 * present without a value. */
typedef struct {
    int is_pmd;
    int bad; /* a parameter we do not know, repeated, or with a bad value */
    int snt, cnt;
    int sbits, cbits;
} element;

static int tchar(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c && strchr("!#$%&'*+-.^_`|~", c));
}

static void ows(const char *s, size_t n, size_t *i)
{
    while (*i < n && (s[*i] == ' ' || s[*i] == '\t')) (*i)++;
}

/* Reads a token at *i into [*t, *t + *tl). Returns 0, or -1 when none. */
static int token(const char *s, size_t n, size_t *i, const char **t, size_t *tl)
{
    size_t b = *i;
    while (*i < n && tchar(s[*i])) (*i)++;
    *t = s + b;
    *tl = *i - b;
    return *tl ? 0 : -1;
}

static int is(const char *t, size_t tl, const char *lit)
{
    size_t l = strlen(lit);
    return tl == l && loom__strncaseeq(t, lit, l);
}

/* A window-bits value: 8..15, digits only, no leading zero (RFC 7692 §7.1.2). */
static int bits_value(const char *v, size_t vl)
{
    if (vl == 1 && v[0] == '8') return 8;
    if (vl == 1 && v[0] == '9') return 9;
    if (vl == 2 && v[0] == '1' && v[1] >= '0' && v[1] <= '5') return 10 + (v[1] - '0');
    return -1;
}

/* Parses one element from *i (up to the next top-level comma). Returns 0,
 * or -1 when the list itself is malformed. */
static int parse_element(const char *s, size_t n, size_t *i, element *e)
{
    const char *t;
    size_t tl;
    memset(e, 0, sizeof *e);
    e->sbits = e->cbits = -1;
    ows(s, n, i);
    if (token(s, n, i, &t, &tl)) return -1;
    e->is_pmd = is(t, tl, "permessage-deflate");
    for (;;) {
        ows(s, n, i);
        if (*i >= n || s[*i] == ',') return 0;
        if (s[*i] != ';') return -1;
        (*i)++;
        ows(s, n, i);
        const char *pn;
        size_t pl;
        if (token(s, n, i, &pn, &pl)) return -1;
        ows(s, n, i);
        const char *v = NULL;
        size_t vl = 0;
        char qbuf[16];
        if (*i < n && s[*i] == '=') {
            (*i)++;
            ows(s, n, i);
            if (*i < n && s[*i] == '"') {
                /* A quoted value (RFC 7692 §7.1.2.1 allows one for window bits). */
                (*i)++;
                size_t q = 0;
                while (*i < n && s[*i] != '"') {
                    if (s[*i] == '\\' && *i + 1 < n) (*i)++;
                    if (q < sizeof qbuf) qbuf[q] = s[*i];
                    q++;
                    (*i)++;
                }
                if (*i >= n) return -1;
                (*i)++;
                v = qbuf;
                vl = q <= sizeof qbuf ? q : sizeof qbuf + 1;
            } else if (token(s, n, i, &v, &vl)) {
                return -1;
            }
        }
        if (!e->is_pmd) continue;
        if (is(pn, pl, "server_no_context_takeover")) {
            if (v || e->snt) e->bad = 1;
            e->snt = 1;
        } else if (is(pn, pl, "client_no_context_takeover")) {
            if (v || e->cnt) e->bad = 1;
            e->cnt = 1;
        } else if (is(pn, pl, "server_max_window_bits")) {
            int b = v && vl <= sizeof qbuf ? bits_value(v, vl) : -1;
            if (b < 0 || e->sbits >= 0) e->bad = 1;
            e->sbits = b;
        } else if (is(pn, pl, "client_max_window_bits")) {
            int b = !v ? 0 : vl <= sizeof qbuf ? bits_value(v, vl) : -1;
            if (b < 0 || e->cbits >= 0) e->bad = 1;
            e->cbits = b;
        } else {
            e->bad = 1;
        }
    }
}

static int cfg_bits(const loom__ws_pmd_cfg *cfg)
{
    return cfg->window_bits >= 9 && cfg->window_bits <= 15 ? cfg->window_bits : 15;
}

int loom__ws_pmd_accept(const char *s, size_t n, const loom__ws_pmd_cfg *cfg, loom__ws_pmd *out,
                        char *resp, size_t resplen)
{
    memset(out, 0, sizeof *out);
    if (!cfg->enabled || !s) return 0;
    size_t i = 0;
    while (i < n) {
        element e;
        if (parse_element(s, n, &i, &e)) return 0; /* a malformed header: no extension */
        if (i < n) i++;                            /* the comma */
        /* zlib cannot compress with a 256-byte window (it uses 512): an
         * offer that asks for one cannot be honoured. */
        if (!e.is_pmd || e.bad || e.sbits == 8) continue;
        int mine = cfg_bits(cfg);
        out->on = 1;
        out->server_no_takeover = (uint8_t)(e.snt || !cfg->takeover);
        out->client_no_takeover = (uint8_t)(e.cnt || !cfg->takeover);
        out->server_bits = (uint8_t)(e.sbits > 0 && e.sbits < mine ? e.sbits : mine);
        out->client_bits = (uint8_t)(e.cbits > 0 ? (e.cbits < 9 ? 9 : e.cbits) : 15);
        int w = snprintf(resp, resplen, "permessage-deflate%s%s",
                         out->server_no_takeover ? "; server_no_context_takeover" : "",
                         out->client_no_takeover ? "; client_no_context_takeover" : "");
        if (w > 0 && (size_t)w < resplen && (e.sbits > 0 || out->server_bits < 15))
            snprintf(resp + w, resplen - (size_t)w, "; server_max_window_bits=%d",
                     out->server_bits);
        return 1;
    }
    return 0;
}

void loom__ws_pmd_offer(const loom__ws_pmd_cfg *cfg, char *out, size_t len)
{
    snprintf(out, len, "permessage-deflate; client_max_window_bits%s",
             cfg->takeover ? "" : "; server_no_context_takeover; client_no_context_takeover");
}

int loom__ws_pmd_answer(const char *s, size_t n, const loom__ws_pmd_cfg *cfg, loom__ws_pmd *out,
                        char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    size_t i = 0;
    ows(s, n, &i);
    if (!s || i >= n) return 0;
    if (!cfg->enabled) {
        snprintf(err, errlen, "the server answered with an extension that was not offered");
        return -1;
    }
    element e;
    if (parse_element(s, n, &i, &e) || i < n) {
        snprintf(err, errlen, "Sec-WebSocket-Extensions: not one permessage-deflate answer");
        return -1;
    }
    if (!e.is_pmd || e.bad || e.cbits == 0) {
        snprintf(err, errlen, "Sec-WebSocket-Extensions: parameters not acceptable");
        return -1;
    }
    if (e.cbits == 8) {
        snprintf(err, errlen, "client_max_window_bits=8 is not supported (zlib)");
        return -1;
    }
    int mine = cfg_bits(cfg);
    out->on = 1;
    out->server_no_takeover = (uint8_t)e.snt;
    out->client_no_takeover = (uint8_t)(e.cnt || !cfg->takeover);
    out->server_bits = (uint8_t)(e.sbits > 0 ? e.sbits : 15);
    out->client_bits = (uint8_t)(e.cbits > 0 && e.cbits < mine ? e.cbits : mine);
    return 0;
}

/* ---- streams ---- */

struct loom__ws_z {
    z_stream *def; /* our compressor, when we keep its context */
    z_stream *inf; /* the peer's inflater, when the peer keeps its context */
};

static _Thread_local z_stream *shared_def[16]; /* by window bits */
static _Thread_local z_stream *shared_inf;

static z_stream *new_def(int bits)
{
    z_stream *s = calloc(1, sizeof *s);
    if (s &&
        deflateInit2(s, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -bits, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
        free(s);
        s = NULL;
    }
    return s;
}

static z_stream *new_inf(void)
{
    z_stream *s = calloc(1, sizeof *s);
    if (s && inflateInit2(s, -15) != Z_OK) { /* 15 reads any window up to 32 KiB */
        free(s);
        s = NULL;
    }
    return s;
}

static int own(loom__ws_z **z)
{
    if (!*z) *z = calloc(1, sizeof **z);
    return *z ? 0 : -1;
}

int loom__ws_z_compress(loom__ws_z **z, const loom__ws_pmd *p, int client, const void *in, size_t n,
                        loom__buf *out)
{
    int reset = client ? p->client_no_takeover : p->server_no_takeover;
    int bits = client ? p->client_bits : p->server_bits;
    if (bits < 9 || bits > 15) bits = 15;
    z_stream *s;
    if (reset) {
        if (!shared_def[bits]) shared_def[bits] = new_def(bits);
        s = shared_def[bits];
    } else {
        if (own(z)) return -1;
        if (!(*z)->def) (*z)->def = new_def(bits);
        s = (*z)->def;
    }
    if (!s) return -1;
    size_t start = out->len;
    s->next_in = (Bytef *)(uintptr_t)in;
    s->avail_in = (uInt)n;
    int rc;
    do {
        size_t room = n / 2 + 64;
        if (loom__buf_reserve(out, room)) {
            rc = Z_MEM_ERROR;
            break;
        }
        s->next_out = (Bytef *)out->data + out->len;
        s->avail_out = (uInt)(out->cap - out->len);
        size_t before = s->avail_out;
        rc = deflate(s, Z_SYNC_FLUSH);
        out->len += before - s->avail_out;
    } while ((rc == Z_OK || rc == Z_BUF_ERROR) && (s->avail_in > 0 || s->avail_out == 0));
    if (reset) deflateReset(s);
    if (rc != Z_OK && rc != Z_BUF_ERROR) {
        out->len = start;
        return -1;
    }
    /* The sync flush's empty stored block ends the message (§7.2.1). */
    if (out->len - start >= 4 && memcmp(out->data + out->len - 4, "\0\0\xff\xff", 4) == 0)
        out->len -= 4;
    return 0;
}

int loom__ws_z_inflate(loom__ws_z **z, const loom__ws_pmd *p, int client, const void *in, size_t n,
                       loom__buf *out, uint64_t max)
{
    int reset = client ? p->server_no_takeover : p->client_no_takeover;
    z_stream *s;
    if (reset) {
        if (!shared_inf) shared_inf = new_inf();
        s = shared_inf;
    } else {
        if (own(z)) return -3;
        if (!(*z)->inf) (*z)->inf = new_inf();
        s = (*z)->inf;
    }
    if (!s) return -3;
    static const unsigned char tail[4] = {0, 0, 0xff, 0xff};
    out->len = 0;
    int result = 0;
    for (int part = 0; part < 2 && result == 0; part++) {
        s->next_in = (Bytef *)(uintptr_t)(part ? (const void *)tail : in);
        s->avail_in = (uInt)(part ? 4 : n);
        while (s->avail_in > 0) {
            size_t room = out->cap - out->len;
            if (room < 4096) {
                size_t want = n * 2 + 4096;
                if (out->len + want > max + 1) want = max + 1 - out->len;
                if (want < 256) want = 256;
                if (loom__buf_reserve(out, want)) {
                    result = -3;
                    break;
                }
            }
            s->next_out = (Bytef *)out->data + out->len;
            s->avail_out = (uInt)(out->cap - out->len);
            size_t before = s->avail_out;
            int rc = inflate(s, Z_SYNC_FLUSH);
            out->len += before - s->avail_out;
            if (out->len > max) {
                result = -2;
                break;
            }
            if (rc == Z_STREAM_END) {
                /* A final block: the stream starts again with the next
                 * message; nothing may follow it in this one. */
                inflateReset(s);
                if (s->avail_in > 0 && part == 0) result = -1;
                s->avail_in = 0;
                part = 1;
                break;
            }
            if (rc == Z_BUF_ERROR && before == s->avail_out) break; /* no progress: done */
            if (rc != Z_OK && rc != Z_BUF_ERROR) {
                result = rc == Z_MEM_ERROR ? -3 : -1;
                break;
            }
        }
    }
    if (reset || result) inflateReset(s);
    return result;
}

void loom__ws_z_free(loom__ws_z *z)
{
    if (!z) return;
    if (z->def) {
        deflateEnd(z->def);
        free(z->def);
    }
    if (z->inf) {
        inflateEnd(z->inf);
        free(z->inf);
    }
    free(z);
}

void loom__ws_z_thread_free(void)
{
    for (int i = 0; i < 16; i++) {
        if (!shared_def[i]) continue;
        deflateEnd(shared_def[i]);
        free(shared_def[i]);
        shared_def[i] = NULL;
    }
    if (shared_inf) {
        inflateEnd(shared_inf);
        free(shared_inf);
        shared_inf = NULL;
    }
}
