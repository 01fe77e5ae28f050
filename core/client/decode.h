/* gzip and deflate response bodies (zlib), with a cap on the decoded size. */
#ifndef LOOM_CLIENT_DECODE_H
#define LOOM_CLIENT_DECODE_H

#include <stddef.h>
#include <zlib.h>

typedef struct {
    z_stream zs;
    int kind; /* 1 gzip, 2 deflate */
    int inited, ended;
    size_t out_total, cap;
} loom__decoder;

/* Where decoded bytes go; returns 0 or a LOOM_CLIENT_E_* code to stop. */
typedef int (*loom__decode_sink)(void *ud, const char *data, size_t len);

/* Chooses the decoding for a Content-Encoding value: returns 1 (gzip or
 * deflate: the decoder is set up), or 0 when the value is not one of those. */
int loom__decoder_init(loom__decoder *d, const char *encoding, size_t cap);
/* Decodes `len` bytes into `sink`. Returns 0, LOOM_CLIENT_E_PAYLOAD (corrupt
 * data), LOOM_CLIENT_E_TOO_LARGE (decoded size over cap), or sink's code. */
int loom__decoder_feed(loom__decoder *d, const char *in, size_t len, loom__decode_sink sink,
                       void *ud);
/* At the end of the body: 0 when the stream was complete, else LOOM_CLIENT_E_PAYLOAD. */
int loom__decoder_finish(loom__decoder *d);
void loom__decoder_free(loom__decoder *d);

#endif
