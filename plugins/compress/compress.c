/* compress: responses compressed with br, zstd or gzip, as the client
 * accepts them (RFC 9110 §8.4, §12.5.3).
 *
 * Config (every key optional; these are the defaults):
 *   {"encodings": ["br", "zstd", "gzip"],     the server's preference, best first
 *    "types": [...],                            media types to compress: every
 *                                              text type, JSON, JavaScript, XML,
 *                                              SVG, wasm, and the +json and +xml
 *                                              suffix types (see default_types)
 *    "min_length": 1024,                       smaller bodies go as they are
 *    "levels": {"gzip": 5, "br": 4, "zstd": 3},
 *    "pool_min": 65536}                        buffered bodies from this size
 *                                              compress on the thread pool
 *
 * A middleware of order "first", so that its response phase runs last and
 * sees the response as every other middleware left it. It chooses a coding,
 * sets Content-Encoding and Vary, weakens a strong ETag and installs a body
 * filter (ABI 1.5): the host runs it over a buffered body once (on the
 * thread pool when large) and over each streamed chunk with a flush, so a
 * stream or an event stream still arrives piece by piece.
 *
 * Left alone: HEAD, 1xx/204/304, 206 and requests with Range (byte ranges
 * of the coded form would not be those the client asked for), a response
 * that has a Content-Encoding already (a precompressed file), one with
 * Cache-Control: no-transform, a type not in the list, and a body under
 * min_length. The levels are chosen by measurement (docs/decisions.md). */
#define _GNU_SOURCE
#include <loom/loom.h>

#include <brotli/encode.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <zlib.h>
#include <zstd.h>

enum { C_BR, C_ZSTD, C_GZIP, NCODINGS };
static const char *const coding_names[NCODINGS] = {"br", "zstd", "gzip"};

#define MAX_TYPES 64

static struct {
    int order[NCODINGS]; /* codings by preference */
    int ncodings;
    char *types[MAX_TYPES];
    int ntypes;
    uint64_t min_length;
    int level[NCODINGS];
    uint64_t pool_min;
} cfg;

/* ---- the coders: one per response, created on first use ---- */

typedef struct {
    int coding, level;
    int started;
    z_stream zs;
    BrotliEncoderState *br;
    ZSTD_CCtx *zstd;
    char buf[16384];
} coder;

static int32_t run_gzip(coder *c, const void *in, size_t len, uint32_t flags,
                        loom_filter_emit_fn emit, void *ectx)
{
    if (!c->started) {
        /* windowBits 15 + 16: the gzip wrapper */
        if (deflateInit2(&c->zs, c->level, Z_DEFLATED, 31, 8, Z_DEFAULT_STRATEGY) != Z_OK)
            return LOOM_ENOMEM;
        c->started = 1;
    }
    int mode = (flags & LOOM_FILTER_END)     ? Z_FINISH
               : (flags & LOOM_FILTER_FLUSH) ? Z_SYNC_FLUSH
                                             : Z_NO_FLUSH;
    c->zs.next_in = (Bytef *)in;
    c->zs.avail_in = (uInt)len;
    for (;;) {
        c->zs.next_out = (Bytef *)c->buf;
        c->zs.avail_out = sizeof c->buf;
        int z = deflate(&c->zs, mode);
        if (z == Z_STREAM_ERROR) return LOOM_EINVAL;
        size_t n = sizeof c->buf - c->zs.avail_out;
        if (n && emit(ectx, c->buf, n)) return LOOM_ENOMEM;
        if (mode == Z_FINISH ? z == Z_STREAM_END : (c->zs.avail_out != 0 && c->zs.avail_in == 0))
            return LOOM_OK;
    }
}

static int32_t run_br(coder *c, const void *in, size_t len, uint32_t flags,
                      loom_filter_emit_fn emit, void *ectx)
{
    if (!c->started) {
        c->br = BrotliEncoderCreateInstance(NULL, NULL, NULL);
        if (!c->br) return LOOM_ENOMEM;
        BrotliEncoderSetParameter(c->br, BROTLI_PARAM_QUALITY, (uint32_t)c->level);
        /* 4 MiB window (the default): decoders must support it (RFC 7932). */
        BrotliEncoderSetParameter(c->br, BROTLI_PARAM_LGWIN, 22);
        BrotliEncoderSetParameter(c->br, BROTLI_PARAM_MODE, BROTLI_MODE_TEXT);
        c->started = 1;
    }
    BrotliEncoderOperation op = (flags & LOOM_FILTER_END)     ? BROTLI_OPERATION_FINISH
                                : (flags & LOOM_FILTER_FLUSH) ? BROTLI_OPERATION_FLUSH
                                                              : BROTLI_OPERATION_PROCESS;
    size_t avail_in = len;
    const uint8_t *next_in = in;
    for (;;) {
        size_t avail_out = sizeof c->buf;
        uint8_t *next_out = (uint8_t *)c->buf;
        if (!BrotliEncoderCompressStream(c->br, op, &avail_in, &next_in, &avail_out, &next_out,
                                         NULL))
            return LOOM_EINVAL;
        size_t n = sizeof c->buf - avail_out;
        if (n && emit(ectx, c->buf, n)) return LOOM_ENOMEM;
        if (avail_in == 0 && !BrotliEncoderHasMoreOutput(c->br)) {
            if (op == BROTLI_OPERATION_FINISH && !BrotliEncoderIsFinished(c->br)) continue;
            return LOOM_OK;
        }
    }
}

static int32_t run_zstd(coder *c, const void *in, size_t len, uint32_t flags,
                        loom_filter_emit_fn emit, void *ectx)
{
    if (!c->started) {
        c->zstd = ZSTD_createCCtx();
        if (!c->zstd) return LOOM_ENOMEM;
        ZSTD_CCtx_setParameter(c->zstd, ZSTD_c_compressionLevel, c->level);
        /* An 8 MiB window at most: what HTTP decoders accept (RFC 8878). */
        ZSTD_CCtx_setParameter(c->zstd, ZSTD_c_windowLog, 23);
        ZSTD_CCtx_setParameter(c->zstd, ZSTD_c_checksumFlag, 1);
        c->started = 1;
    }
    ZSTD_EndDirective op = (flags & LOOM_FILTER_END)     ? ZSTD_e_end
                           : (flags & LOOM_FILTER_FLUSH) ? ZSTD_e_flush
                                                         : ZSTD_e_continue;
    ZSTD_inBuffer ib = {in, len, 0};
    for (;;) {
        ZSTD_outBuffer ob = {c->buf, sizeof c->buf, 0};
        size_t left = ZSTD_compressStream2(c->zstd, &ob, &ib, op);
        if (ZSTD_isError(left)) return LOOM_EINVAL;
        if (ob.pos && emit(ectx, c->buf, ob.pos)) return LOOM_ENOMEM;
        if (op == ZSTD_e_continue ? ib.pos == ib.size : left == 0) return LOOM_OK;
    }
}

/* The filter's run: on the loop thread or a pool thread; no loom call. */
static int32_t coder_run(void *ud, const void *in, size_t len, uint32_t flags,
                         loom_filter_emit_fn emit, void *ectx)
{
    coder *c = ud;
    switch (c->coding) {
    case C_GZIP:
        return run_gzip(c, in, len, flags, emit, ectx);
    case C_BR:
        return run_br(c, in, len, flags, emit, ectx);
    default:
        return run_zstd(c, in, len, flags, emit, ectx);
    }
}

static void coder_release(void *ud)
{
    coder *c = ud;
    if (c->started) {
        if (c->coding == C_GZIP) deflateEnd(&c->zs);
        if (c->br) BrotliEncoderDestroyInstance(c->br);
        if (c->zstd) ZSTD_freeCCtx(c->zstd);
    }
    free(c);
}

/* ---- the decision ---- */

static int has_token(const char *v, const char *tok)
{
    size_t tl = strlen(tok);
    const char *p = v;
    while (*p) {
        while (*p == ' ' || *p == '\t' || *p == ',') p++;
        const char *s = p;
        while (*p && *p != ',' && *p != '=' && *p != ' ' && *p != '\t' && *p != ';') p++;
        if ((size_t)(p - s) == tl && !strncasecmp(s, tok, tl)) return 1;
        while (*p && *p != ',') p++;
    }
    return 0;
}

/* Whether the media type (parameters aside) is in the list. An entry
 * "major/" + "*" takes every type of that major type; "application/" +
 * "*+json" every type with the +json suffix. */
static int type_listed(const char *ct)
{
    size_t n = 0;
    while (ct[n] && ct[n] != ';' && ct[n] != ' ' && ct[n] != '\t') n++;
    const char *slash = memchr(ct, '/', n);
    if (!slash) return 0;
    size_t major = (size_t)(slash - ct);
    for (int i = 0; i < cfg.ntypes; i++) {
        const char *t = cfg.types[i];
        size_t tl = strlen(t);
        if (tl == n && !strncasecmp(t, ct, n)) return 1;
        if (tl == major + 2 && t[major + 1] == '*' && !strncasecmp(t, ct, major + 1)) return 1;
        const char *plus = strstr(t, "/*+");
        if (plus && (size_t)(plus - t) == major && !strncasecmp(t, ct, major + 1)) {
            const char *suffix = plus + 2; /* "+json" */
            size_t sl = strlen(suffix);
            if (n > sl && !strncasecmp(ct + n - sl, suffix, sl)) return 1;
        }
    }
    return 0;
}

static void add_vary(loom_req *req)
{
    const char *v = loom_resp_header_get(req, "Vary");
    if (!v) {
        loom_resp_header_set(req, "Vary", "Accept-Encoding");
        return;
    }
    if (has_token(v, "accept-encoding") || has_token(v, "*")) return;
    size_t n = strlen(v);
    char *nv = loom_req_alloc(req, n + 20);
    if (!nv) return;
    snprintf(nv, n + 20, "%s, Accept-Encoding", v);
    loom_resp_header_set(req, "Vary", nv);
}

static void on_response(loom_req *req, void *ud)
{
    (void)ud;
    int32_t st = loom_resp_get_status(req);
    const char *method = loom_req_method(req);
    if (st < 200 || st == 204 || st == 304 || st == 206 || !strcmp(method, "HEAD")) return;
    if (loom_req_header(req, "Range", NULL)) return;
    if (loom_resp_header_get(req, "Content-Encoding")) return;
    const char *cc = loom_resp_header_get(req, "Cache-Control");
    if (cc && has_token(cc, "no-transform")) return;
    const char *ct = loom_resp_header_get(req, "Content-Type");
    int listed = ct && type_listed(ct);
    int64_t size = loom_resp_body_size(req);
    int identity_ok = loom_accept_encoding(req, "identity") > 0;
    /* Without identity the client must get a coding, whatever the type or
     * size (RFC 9110 §12.5.3). */
    if (identity_ok && (!listed || (size >= 0 && (uint64_t)size < cfg.min_length))) {
        if (listed) add_vary(req); /* a larger body of this type would vary */
        return;
    }
    int best = -1;
    int32_t best_q = 0;
    for (int i = 0; i < cfg.ncodings; i++) {
        int32_t q = loom_accept_encoding(req, coding_names[cfg.order[i]]);
        if (q > best_q) { /* ties go to the server's preference */
            best_q = q;
            best = cfg.order[i];
        }
    }
    add_vary(req);
    if (best < 0) {
        if (!identity_ok) {
            /* Nothing the client takes: 406 (RFC 9110 §12.5.3). */
            static const char msg[] = "406: no acceptable content coding (br, zstd, gzip)";
            loom_resp_status(req, 406);
            loom_resp_header_set(req, "Content-Type", "text/plain; charset=utf-8");
            loom_resp_header_set(req, "ETag", NULL);
            loom_resp_body(req, msg, sizeof msg - 1);
        }
        return;
    }
    coder *c = calloc(1, sizeof *c);
    if (!c) return;
    c->coding = best;
    c->level = cfg.level[best];
    loom_body_filter f = {sizeof(loom_body_filter), 0, coder_run, coder_release, cfg.pool_min, c};
    if (loom_resp_filter(req, &f) != LOOM_OK) {
        free(c);
        return;
    }
    loom_resp_header_set(req, "Content-Encoding", coding_names[best]);
    loom_resp_header_set(req, "Accept-Ranges", NULL);
    /* The coded bytes are not the bytes a strong validator promised. */
    const char *etag = loom_resp_header_get(req, "ETag");
    if (etag && etag[0] == '"') {
        size_t n = strlen(etag);
        char *w = loom_req_alloc(req, n + 3);
        if (w) {
            memcpy(w, "W/", 2);
            memcpy(w + 2, etag, n + 1);
            loom_resp_header_set(req, "ETag", w);
        }
    }
}

/* ---- set-up ---- */

static void free_types(void)
{
    for (int i = 0; i < cfg.ntypes; i++) free(cfg.types[i]);
    cfg.ntypes = 0;
}

static int32_t fail(loom_plugin *self, const char *msg)
{
    char line[300];
    snprintf(line, sizeof line, "compress: %s", msg);
    loom_log(self, LOOM_LOG_ERROR, line);
    free_types();
    return LOOM_EINVAL;
}

static int coding_index(const char *name)
{
    for (int i = 0; i < NCODINGS; i++)
        if (!strcmp(name, coding_names[i])) return i;
    return -1;
}

static int32_t init(loom_plugin *self, const char *config, size_t len)
{
    (void)config;
    (void)len;
    static const char *const default_types[] = {"text/*",
                                                "application/json",
                                                "application/javascript",
                                                "application/xml",
                                                "image/svg+xml",
                                                "application/*+json",
                                                "application/*+xml",
                                                "application/wasm",
                                                "application/manifest+json"};
    static const int levels[NCODINGS] = {4, 3, 5}; /* br, zstd, gzip: see docs/decisions.md */
    char msg[256];
    memset(&cfg, 0, sizeof cfg);
    for (int i = 0; i < NCODINGS; i++) {
        cfg.order[i] = i;
        cfg.level[i] = levels[i];
    }
    cfg.ncodings = NCODINGS;
    cfg.min_length = 1024;
    cfg.pool_min = 65536;
    const loom_json *c = loom_config(self), *v;
    static const char *const keys[] = {"encodings", "types",  "min_length",
                                       "pool_min",  "levels", NULL};
    if (loom_config_check_keys(self, c, NULL, keys)) return LOOM_EINVAL;

    if ((v = loom_json_get(c, "encodings"))) {
        if (loom_json_type(v) != LOOM_JSON_ARRAY || loom_json_size(v) == 0 ||
            loom_json_size(v) > NCODINGS)
            return fail(self, "\"encodings\" must be a list of br, zstd and gzip");
        cfg.ncodings = 0;
        for (size_t i = 0; i < loom_json_size(v); i++) {
            const char *s = loom_json_string(loom_json_at(v, i), NULL);
            int k = s ? coding_index(s) : -1;
            if (k < 0) {
                snprintf(msg, sizeof msg, "\"encodings\"[%zu]: %s is not br, zstd or gzip", i,
                         s ? s : "(not a string)");
                return fail(self, msg);
            }
            cfg.order[cfg.ncodings++] = k;
        }
    }
    v = loom_json_get(c, "types");
    if (v && (loom_json_type(v) != LOOM_JSON_ARRAY || loom_json_size(v) > MAX_TYPES))
        return fail(self, "\"types\" must be a list of at most 64 media types");
    size_t nt = v ? loom_json_size(v) : sizeof default_types / sizeof default_types[0];
    for (size_t i = 0; i < nt; i++) {
        const char *s = v ? loom_json_string(loom_json_at(v, i), NULL) : default_types[i];
        if (!s || !strchr(s, '/')) {
            snprintf(msg, sizeof msg, "\"types\"[%zu] must be a media type such as text/html", i);
            return fail(self, msg);
        }
        if (!(cfg.types[cfg.ntypes++] = strdup(s))) return fail(self, "out of memory");
    }
    if ((v = loom_json_get(c, "min_length"))) {
        if (loom_json_type(v) != LOOM_JSON_INTEGER || loom_json_integer(v) < 0)
            return fail(self, "\"min_length\" must be a number of bytes (>= 0)");
        cfg.min_length = (uint64_t)loom_json_integer(v);
    }
    if ((v = loom_json_get(c, "pool_min"))) {
        if (loom_json_type(v) != LOOM_JSON_INTEGER || loom_json_integer(v) < 0)
            return fail(self, "\"pool_min\" must be a number of bytes (>= 0; 0 = never)");
        cfg.pool_min = (uint64_t)loom_json_integer(v);
    }
    if ((v = loom_json_get(c, "levels"))) {
        static const int lo[NCODINGS] = {0, 1, 1}, hi[NCODINGS] = {11, 19, 9};
        if (loom_json_type(v) != LOOM_JSON_OBJECT)
            return fail(self, "\"levels\" must be an object such as {\"gzip\": 5}");
        const loom_json *lv;
        const char *k;
        for (size_t i = 0; (k = loom_json_key_at(v, i, &lv)); i++) {
            int ci = coding_index(k);
            if (ci < 0) {
                snprintf(msg, sizeof msg, "\"levels\": %s is not br, zstd or gzip", k);
                return fail(self, msg);
            }
            int64_t l = loom_json_type(lv) == LOOM_JSON_INTEGER ? loom_json_integer(lv) : -1;
            if (l < lo[ci] || l > hi[ci]) {
                snprintf(msg, sizeof msg, "\"levels\".%s must be an integer from %d to %d", k,
                         lo[ci], hi[ci]);
                return fail(self, msg);
            }
            cfg.level[ci] = (int)l;
        }
    }
    loom_middleware_def mw = {sizeof mw, LOOM_ORDER_FIRST, "compress", NULL, NULL,
                              NULL,      on_response,      NULL};
    int32_t rc = loom_middleware_add(self, &mw);
    if (rc) free_types();
    return rc;
}

static void fini(loom_plugin *self)
{
    (void)self;
    free_types();
}

LOOM_PLUGIN("compress", "1.0.0", init, fini);
