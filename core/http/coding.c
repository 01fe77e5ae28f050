#include "http/coding.h"
#include "http/request.h"

#include <brotli/decode.h>
#include <stdint.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>

#define STEP (64u * 1024u)

/* Room for the next piece of output: at most STEP, never past the cap
 * (plus one byte, so that output beyond the cap is seen). */
static int room(loom__buf *out, size_t cap, size_t *avail)
{
    size_t left = cap + 1 - out->len;
    size_t want = left < STEP ? left : STEP;
    if (loom__buf_reserve(out, want)) return LOOM__CODING_NOMEM;
    *avail = want;
    return 0;
}

static int gunzip(const uint8_t *in, size_t len, size_t cap, loom__buf *out)
{
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    if (inflateInit2(&zs, 15 + 16) != Z_OK) return LOOM__CODING_NOMEM;
    int rc = LOOM__CODING_CORRUPT;
    zs.next_in = (Bytef *)in;
    zs.avail_in = (uInt)len;
    for (;;) {
        size_t avail;
        if (room(out, cap, &avail)) {
            rc = LOOM__CODING_NOMEM;
            break;
        }
        zs.next_out = (Bytef *)out->data + out->len;
        zs.avail_out = (uInt)avail;
        int z = inflate(&zs, Z_NO_FLUSH);
        out->len += avail - zs.avail_out;
        if (out->len > cap) {
            rc = LOOM__CODING_TOO_LARGE;
            break;
        }
        if (z == Z_STREAM_END) {
            /* Another gzip member may follow (RFC 1952 allows several). */
            if (zs.avail_in == 0) {
                rc = LOOM__CODING_OK;
                break;
            }
            if (inflateReset(&zs) != Z_OK) break;
            continue;
        }
        if (z != Z_OK && !(z == Z_BUF_ERROR && zs.avail_out == 0)) break;
        if (zs.avail_in == 0 && zs.avail_out != 0) break; /* truncated */
    }
    inflateEnd(&zs);
    return rc;
}

static int unbrotli(const uint8_t *in, size_t len, size_t cap, loom__buf *out)
{
    BrotliDecoderState *st = BrotliDecoderCreateInstance(NULL, NULL, NULL);
    if (!st) return LOOM__CODING_NOMEM;
    int rc = LOOM__CODING_CORRUPT;
    size_t avail_in = len;
    const uint8_t *next_in = in;
    for (;;) {
        size_t avail;
        if (room(out, cap, &avail)) {
            rc = LOOM__CODING_NOMEM;
            break;
        }
        size_t avail_out = avail;
        uint8_t *next_out = (uint8_t *)out->data + out->len;
        BrotliDecoderResult res =
            BrotliDecoderDecompressStream(st, &avail_in, &next_in, &avail_out, &next_out, NULL);
        out->len += avail - avail_out;
        if (out->len > cap) {
            rc = LOOM__CODING_TOO_LARGE;
            break;
        }
        if (res == BROTLI_DECODER_RESULT_SUCCESS) {
            rc = avail_in == 0 ? LOOM__CODING_OK : LOOM__CODING_CORRUPT;
            break;
        }
        if (res != BROTLI_DECODER_RESULT_NEEDS_MORE_OUTPUT) break; /* error or truncated */
    }
    BrotliDecoderDestroyInstance(st);
    return rc;
}

static int unzstd(const uint8_t *in, size_t len, size_t cap, loom__buf *out)
{
    ZSTD_DCtx *d = ZSTD_createDCtx();
    if (!d) return LOOM__CODING_NOMEM;
    /* A frame may ask for a window of up to 2 GiB: stay at 8 MiB, as HTTP
     * decoders do (RFC 8878 §3.1.1.1.2). */
    ZSTD_DCtx_setParameter(d, ZSTD_d_windowLogMax, 23);
    int rc = LOOM__CODING_CORRUPT;
    ZSTD_inBuffer ib = {in, len, 0};
    size_t last = 1;
    for (;;) {
        size_t avail;
        if (room(out, cap, &avail)) {
            rc = LOOM__CODING_NOMEM;
            break;
        }
        ZSTD_outBuffer ob = {out->data + out->len, avail, 0};
        last = ZSTD_decompressStream(d, &ob, &ib);
        out->len += ob.pos;
        if (ZSTD_isError(last)) break;
        if (out->len > cap) {
            rc = LOOM__CODING_TOO_LARGE;
            break;
        }
        if (ib.pos == ib.size && ob.pos < ob.size) {
            rc = last == 0 ? LOOM__CODING_OK : LOOM__CODING_CORRUPT;
            break;
        }
    }
    ZSTD_freeDCtx(d);
    return rc;
}

static int is(const char *c, size_t n, const char *name)
{
    size_t l = strlen(name);
    return n == l && loom__strncaseeq(c, name, n);
}

int loom__coding_decode(const char *coding, size_t clen, const void *in, size_t len, size_t cap,
                        loom__buf *out)
{
    if (is(coding, clen, "gzip") || is(coding, clen, "x-gzip")) return gunzip(in, len, cap, out);
    if (is(coding, clen, "br")) return unbrotli(in, len, cap, out);
    if (is(coding, clen, "zstd")) return unzstd(in, len, cap, out);
    return LOOM__CODING_UNKNOWN;
}
