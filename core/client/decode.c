/* gzip and deflate response bodies. */
#include "client/decode.h"

#include <loom/client.h>

#include <string.h>
#include <strings.h>

int loom__decoder_init(loom__decoder *d, const char *encoding, size_t cap)
{
    memset(d, 0, sizeof *d);
    d->cap = cap;
    if (!encoding) return 0;
    while (*encoding == ' ' || *encoding == '\t') encoding++;
    size_t n = strcspn(encoding, " \t;,");
    if ((n == 4 && strncasecmp(encoding, "gzip", 4) == 0) ||
        (n == 6 && strncasecmp(encoding, "x-gzip", 6) == 0))
        d->kind = 1;
    else if (n == 7 && strncasecmp(encoding, "deflate", 7) == 0)
        d->kind = 2;
    else
        return 0;
    return 1;
}

int loom__decoder_feed(loom__decoder *d, const char *in, size_t len, loom__decode_sink sink,
                       void *ud)
{
    if (len == 0 || d->ended) return 0; /* bytes after the end of the stream are ignored */
    if (!d->inited) {
        int wbits;
        if (d->kind == 1) {
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
        size_t got = sizeof out - d->zs.avail_out;
        if (got) {
            d->out_total += got;
            if (d->cap && d->out_total > d->cap) return LOOM_CLIENT_E_TOO_LARGE;
            int e = sink(ud, out, got);
            if (e) return e;
        }
    } while (!d->ended && (d->zs.avail_in > 0 || d->zs.avail_out == 0));
    return 0;
}

int loom__decoder_finish(loom__decoder *d)
{
    if (!d->inited) return 0; /* empty body */
    return d->ended ? 0 : LOOM_CLIENT_E_PAYLOAD;
}

void loom__decoder_free(loom__decoder *d)
{
    if (d->inited) inflateEnd(&d->zs);
    d->inited = 0;
}
