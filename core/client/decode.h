/* Compressed response bodies, decoded as they stream in: gzip and deflate
 * (zlib), br (libbrotli) and zstd (libzstd) when the build has them, with a
 * cap on the decoded size against decompression bombs. */
#ifndef LOOM_CLIENT_DECODE_H
#define LOOM_CLIENT_DECODE_H

#include <stddef.h>
#include <zlib.h>

enum { LOOM__ENC_GZIP = 1, LOOM__ENC_DEFLATE, LOOM__ENC_BR, LOOM__ENC_ZSTD };

typedef struct {
    z_stream zs;
    void *br;   /* BrotliDecoderState */
    void *zstd; /* ZSTD_DStream */
    int kind;   /* LOOM__ENC_* */
    int inited, ended;
    size_t out_total, cap;
} loom__decoder;

/* Where decoded bytes go; returns 0 or a LOOM_CLIENT_E_* code to stop. */
typedef int (*loom__decode_sink)(void *ud, const char *data, size_t len);

/* Chooses the decoding for a Content-Encoding value: returns 1 (a coding
 * this build decodes: the decoder is set up), or 0 otherwise (the body is
 * handed over as it came). */
int loom__decoder_init(loom__decoder *d, const char *encoding, size_t cap);
/* Decodes `len` bytes into `sink`. Returns 0, LOOM_CLIENT_E_PAYLOAD (corrupt
 * data), LOOM_CLIENT_E_DECODED_TOO_LARGE (decoded size over cap),
 * LOOM_CLIENT_E_NOMEM, or sink's code. */
int loom__decoder_feed(loom__decoder *d, const char *in, size_t len, loom__decode_sink sink,
                       void *ud);
/* At the end of the body: 0 when the stream was complete, else LOOM_CLIENT_E_PAYLOAD. */
int loom__decoder_finish(loom__decoder *d);
void loom__decoder_free(loom__decoder *d);
/* The coding's name ("gzip", "br", ...), for messages. */
const char *loom__decoder_name(const loom__decoder *d);

#endif
