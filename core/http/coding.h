/* Content codings of message bodies: gzip (zlib), br (libbrotli) and zstd
 * (libzstd), decoded in one go with a cap on the decoded size, so that a
 * small compressed body cannot expand into memory without bound. */
#ifndef LOOM_HTTP_CODING_H
#define LOOM_HTTP_CODING_H

#include <stddef.h>

#include "util/buf.h"

enum {
    LOOM__CODING_OK = 0,
    LOOM__CODING_UNKNOWN = -1,   /* not gzip, x-gzip, br or zstd */
    LOOM__CODING_CORRUPT = -2,   /* not a complete, valid stream of that coding */
    LOOM__CODING_TOO_LARGE = -3, /* the decoded size would pass the cap */
    LOOM__CODING_NOMEM = -4,
};

/* Decodes `len` bytes of `in`, coded with `coding` (a content-coding name,
 * case-insensitive, `clen` bytes), appending at most `cap` bytes to `out`.
 * Returns LOOM__CODING_OK or one of the errors above (out then holds a
 * partial result, which the caller frees). */
int loom__coding_decode(const char *coding, size_t clen, const void *in, size_t len, size_t cap,
                        loom__buf *out);

#endif
