/* Compressed response bodies: gzip, deflate, br, zstd. */
#include "client/decode.h"

#include <loom/client.h>

#include <stdint.h>
#include <string.h>
#include <strings.h>

#ifdef LOOM_HAVE_BROTLI
#include <brotli/decode.h>
#endif
#ifdef LOOM_HAVE_ZSTD
#include <zstd.h>
/* RFC 8878 §3.1.1.1.2: an HTTP zstd decoder needs windows up to 8 MiB only;
 * a frame asking for more is refused instead of making us allocate it. */
#define ZSTD_WINDOW_LOG_MAX 23
#endif

const char *loom_client_accept_encoding(void)
{
    return "gzip, deflate"
#ifdef LOOM_HAVE_BROTLI
           ", br"
#endif
#ifdef LOOM_HAVE_ZSTD
           ", zstd"
#endif
        ;
}

static int is(const char *s, size_t n, const char *name)
{
    return strlen(name) == n && strncasecmp(s, name, n) == 0;
}

int loom__decoder_init(loom__decoder *d, const char *encoding, size_t cap)
{
    memset(d, 0, sizeof *d);
    d->cap = cap;
    if (!encoding) return 0;
    while (*encoding == ' ' || *encoding == '\t') encoding++;
    size_t n = strcspn(encoding, " \t;,");
    if (is(encoding, n, "gzip") || is(encoding, n, "x-gzip"))
        d->kind = LOOM__ENC_GZIP;
    else if (is(encoding, n, "deflate"))
        d->kind = LOOM__ENC_DEFLATE;
#ifdef LOOM_HAVE_BROTLI
    else if (is(encoding, n, "br"))
        d->kind = LOOM__ENC_BR;
#endif
#ifdef LOOM_HAVE_ZSTD
    else if (is(encoding, n, "zstd"))
        d->kind = LOOM__ENC_ZSTD;
#endif
    else
        return 0;
    return 1;
}

const char *loom__decoder_name(const loom__decoder *d)
{
    static const char *const names[] = {"identity", "gzip", "deflate", "br", "zstd"};
    return d->kind >= 0 && d->kind <= LOOM__ENC_ZSTD ? names[d->kind] : "?";
}

/* Hands `got` decoded bytes on, after the cap check. */
static int emit(loom__decoder *d, const char *out, size_t got, loom__decode_sink sink, void *ud)
{
    if (!got) return 0;
    d->out_total += got;
    if (d->cap && d->out_total > d->cap) return LOOM_CLIENT_E_DECODED_TOO_LARGE;
    return sink(ud, out, got);
}

static int feed_zlib(loom__decoder *d, const char *in, size_t len, loom__decode_sink sink, void *ud)
{
    if (!d->inited) {
        int wbits;
        if (d->kind == LOOM__ENC_GZIP) {
            wbits = 16 + MAX_WBITS;
        } else {
            /* "deflate" is meant to be zlib-wrapped; some servers send raw deflate. */
            unsigned char b0 = (unsigned char)in[0];
            int zlib = (b0 & 0x0f) == 8 && (b0 >> 4) <= 7;
            if (zlib && len >= 2) zlib = ((b0 << 8) | (unsigned char)in[1]) % 31 == 0;
            wbits = zlib ? MAX_WBITS : -MAX_WBITS;
        }
        if (inflateInit2(&d->zs, wbits) != Z_OK) return LOOM_CLIENT_E_NOMEM;
        d->inited = 1;
    }
    char out[16384];
    d->zs.next_in = (Bytef *)(uintptr_t)in;
    d->zs.avail_in = (uInt)len;
    do {
        d->zs.next_out = (Bytef *)out;
        d->zs.avail_out = sizeof out;
        int rc = inflate(&d->zs, Z_NO_FLUSH);
        if (rc == Z_STREAM_END)
            d->ended = 1;
        else if (rc == Z_BUF_ERROR)
            break; /* no progress possible: needs more input */
        else if (rc != Z_OK)
            return LOOM_CLIENT_E_PAYLOAD;
        int e = emit(d, out, sizeof out - d->zs.avail_out, sink, ud);
        if (e) return e;
    } while (!d->ended && (d->zs.avail_in > 0 || d->zs.avail_out == 0));
    return 0;
}

#ifdef LOOM_HAVE_BROTLI
static int feed_br(loom__decoder *d, const char *in, size_t len, loom__decode_sink sink, void *ud)
{
    if (!d->inited) {
        d->br = BrotliDecoderCreateInstance(NULL, NULL, NULL);
        if (!d->br) return LOOM_CLIENT_E_NOMEM;
        d->inited = 1;
    }
    char out[16384];
    const uint8_t *next_in = (const uint8_t *)in;
    size_t avail_in = len;
    for (;;) {
        uint8_t *next_out = (uint8_t *)out;
        size_t avail_out = sizeof out;
        BrotliDecoderResult r =
            BrotliDecoderDecompressStream(d->br, &avail_in, &next_in, &avail_out, &next_out, NULL);
        if (r == BROTLI_DECODER_RESULT_ERROR) return LOOM_CLIENT_E_PAYLOAD;
        int e = emit(d, out, sizeof out - avail_out, sink, ud);
        if (e) return e;
        if (r == BROTLI_DECODER_RESULT_SUCCESS) {
            d->ended = 1;
            return 0;
        }
        if (r == BROTLI_DECODER_RESULT_NEEDS_MORE_INPUT) return 0;
        /* NEEDS_MORE_OUTPUT: go round with an empty buffer */
    }
}
#endif

#ifdef LOOM_HAVE_ZSTD
static int feed_zstd(loom__decoder *d, const char *in, size_t len, loom__decode_sink sink, void *ud)
{
    if (!d->inited) {
        d->zstd = ZSTD_createDStream();
        if (!d->zstd) return LOOM_CLIENT_E_NOMEM;
        d->inited = 1;
        if (ZSTD_isError(ZSTD_DCtx_setParameter(d->zstd, ZSTD_d_windowLogMax, ZSTD_WINDOW_LOG_MAX)))
            return LOOM_CLIENT_E_NOMEM;
    }
    char out[16384];
    ZSTD_inBuffer ib = {in, len, 0};
    for (;;) {
        ZSTD_outBuffer ob = {out, sizeof out, 0};
        size_t r = ZSTD_decompressStream(d->zstd, &ob, &ib);
        if (ZSTD_isError(r)) return LOOM_CLIENT_E_PAYLOAD;
        /* 0: a frame ended; another may follow (concatenated frames are one body) */
        d->ended = r == 0;
        int e = emit(d, out, ob.pos, sink, ud);
        if (e) return e;
        if (ib.pos == ib.size && ob.pos < ob.size) return 0;
    }
}
#endif

int loom__decoder_feed(loom__decoder *d, const char *in, size_t len, loom__decode_sink sink,
                       void *ud)
{
    if (len == 0) return 0;
    switch (d->kind) {
    case LOOM__ENC_GZIP:
    case LOOM__ENC_DEFLATE:
        if (d->ended) return 0; /* bytes after the end of the stream are ignored */
        return feed_zlib(d, in, len, sink, ud);
#ifdef LOOM_HAVE_BROTLI
    case LOOM__ENC_BR:
        if (d->ended) return LOOM_CLIENT_E_PAYLOAD; /* brotli allows nothing after its end */
        return feed_br(d, in, len, sink, ud);
#endif
#ifdef LOOM_HAVE_ZSTD
    case LOOM__ENC_ZSTD:
        return feed_zstd(d, in, len, sink, ud);
#endif
    default:
        return sink(ud, in, len);
    }
}

int loom__decoder_finish(loom__decoder *d)
{
    if (!d->inited) return 0; /* empty body */
    return d->ended ? 0 : LOOM_CLIENT_E_PAYLOAD;
}

void loom__decoder_free(loom__decoder *d)
{
    if (d->inited && (d->kind == LOOM__ENC_GZIP || d->kind == LOOM__ENC_DEFLATE))
        inflateEnd(&d->zs);
#ifdef LOOM_HAVE_BROTLI
    if (d->br) BrotliDecoderDestroyInstance(d->br);
#endif
#ifdef LOOM_HAVE_ZSTD
    if (d->zstd) ZSTD_freeDStream(d->zstd);
#endif
    d->br = d->zstd = NULL;
    d->inited = 0;
}
