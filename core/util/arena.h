/* A bump allocator for everything that lives exactly as long as one request.
 *
 * Blocks come from a small per-thread free list, so a keep-alive connection
 * serving request after request does not call malloc on the hot path, and an
 * idle connection holds no arena memory at all. */
#ifndef LOOM_UTIL_ARENA_H
#define LOOM_UTIL_ARENA_H

#include <stddef.h>

typedef struct loom__arena_block loom__arena_block;

typedef struct {
    loom__arena_block *head; /* current block; older ones chained behind it */
    size_t used;             /* bytes used in head */
} loom__arena;

/* Returns `size` bytes aligned to 16, valid until loom__arena_reset. NULL
 * when out of memory. An empty arena (all zero) is valid. */
void *loom__arena_alloc(loom__arena *a, size_t size);
/* Like loom__arena_alloc, then copies `len` bytes and adds a NUL. */
char *loom__arena_strndup(loom__arena *a, const char *s, size_t len);
/* Returns every block to the free list; the arena is empty afterwards. */
void loom__arena_reset(loom__arena *a);
/* Frees the calling thread's cached blocks (at worker exit, for leak checkers). */
void loom__arena_trim(void);

#endif
