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
    char *cur, *end;         /* the free bytes of head */
} loom__arena;

/* The part of loom__arena_alloc that takes a new block. */
void *loom__arena_alloc_slow(loom__arena *a, size_t size);

/* Returns `size` bytes aligned to 16, valid until loom__arena_reset. NULL
 * when out of memory. An empty arena (all zero) is valid. Inline: a request
 * makes about ten of these, and the call cost as much as the bump. */
static inline void *loom__arena_alloc(loom__arena *a, size_t size)
{
    size = (size + 15) & ~(size_t)15;
    /* size - 1 sends a zero size (from an empty arena too) to the slow path,
     * which returns a real pointer for it. */
    if (size - 1 < (size_t)(a->end - a->cur)) {
        void *p = a->cur;
        a->cur += size;
        return p;
    }
    return loom__arena_alloc_slow(a, size);
}

/* Like loom__arena_alloc, then copies `len` bytes and adds a NUL. */
char *loom__arena_strndup(loom__arena *a, const char *s, size_t len);
/* Returns every block to the free list; the arena is empty afterwards. */
void loom__arena_reset(loom__arena *a);
/* Frees the calling thread's cached blocks (at worker exit, for leak checkers). */
void loom__arena_trim(void);

#endif
