/* A growable byte buffer. Owns its memory; `loom__buf_free` releases it. */
#ifndef LOOM_UTIL_BUF_H
#define LOOM_UTIL_BUF_H

#include <stddef.h>

typedef struct {
    char *data;
    size_t len;
    size_t cap;
} loom__buf;

/* Makes room for `extra` more bytes. Returns 0, or -1 when out of memory
 * (the buffer is unchanged then). */
int loom__buf_reserve(loom__buf *b, size_t extra);
/* Appends `len` bytes. Returns 0 or -1 (out of memory). */
int loom__buf_append(loom__buf *b, const void *p, size_t len);
/* Appends a NUL-terminated string, without the NUL. */
int loom__buf_puts(loom__buf *b, const char *s);
/* Appends printf-formatted text. Returns 0 or -1. */
int loom__buf_printf(loom__buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Drops the first `n` bytes, moving the rest to the front. */
void loom__buf_consume(loom__buf *b, size_t n);
/* Releases the memory and empties the buffer. */
void loom__buf_free(loom__buf *b);

#endif
