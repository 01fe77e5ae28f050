/* nghttp2's allocator: small blocks kept on per-thread free lists.
 *
 * nghttp2 allocates and frees a handful of small blocks for every stream
 * (the stream, its outbound items, the copied header list, decoded header
 * buffers); through malloc that was 3-4% of the server's CPU per HTTP/2
 * request. Here a block is rounded up to a power of two from 32 to 4096
 * bytes and taken from (given back to) a free list of that size; larger
 * blocks go to malloc. A 16-byte header in front of each block holds its
 * size class, since nghttp2's free and realloc do not pass the size. Each
 * list keeps at most LIST_MAX blocks, so the memory held is bounded; the
 * lists are per thread because a worker's loop is single-threaded, and
 * nghttp2 is only called from it. The sanitizer build keeps malloc (ASan
 * must see nghttp2's blocks come and go). */
#include "http2/h2.h"

#include <stdlib.h>
#include <string.h>

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define LOOM_H2_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define LOOM_H2_ASAN 1
#endif

#define MIN_SHIFT 5 /* 32 bytes */
#define NCLASS 8    /* ... to 4096 */
#define LIST_MAX 512
#define HDR 16
#define BIG 0xff

typedef struct block {
    struct block *next;
} block;

static __thread block *lists[NCLASS];
static __thread unsigned counts[NCLASS];

static int class_of(size_t size)
{
    int c = 0;
    size_t cap = (size_t)1 << MIN_SHIFT;
    while (cap < size && c < NCLASS) {
        cap <<= 1;
        c++;
    }
    return c < NCLASS ? c : BIG;
}

static size_t class_size(int c)
{
    return (size_t)1 << (MIN_SHIFT + c);
}

static void *mem_malloc(size_t size, void *ud)
{
    (void)ud;
    int c = class_of(size);
    unsigned char *p;
    if (c != BIG && lists[c]) {
        p = (unsigned char *)lists[c];
        lists[c] = lists[c]->next;
        counts[c]--;
    } else {
        p = malloc(HDR + (c == BIG ? size : class_size(c)));
        if (!p) return NULL;
    }
    p[0] = (unsigned char)c;
    return p + HDR;
}

static void mem_free(void *ptr, void *ud)
{
    (void)ud;
    if (!ptr) return;
    unsigned char *p = (unsigned char *)ptr - HDR;
    int c = p[0];
    if (c == BIG || counts[c] >= LIST_MAX) {
        free(p);
        return;
    }
    block *b = (block *)p;
    b->next = lists[c];
    lists[c] = b;
    counts[c]++;
}

static void *mem_calloc(size_t n, size_t size, void *ud)
{
    if (size && n > ((size_t)-1 - HDR) / size) return NULL;
    void *p = mem_malloc(n * size, ud);
    if (p) memset(p, 0, n * size);
    return p;
}

static void *mem_realloc(void *ptr, size_t size, void *ud)
{
    if (!ptr) return mem_malloc(size, ud);
    if (size == 0) {
        mem_free(ptr, ud);
        return NULL;
    }
    unsigned char *p = (unsigned char *)ptr - HDR;
    int c = p[0];
    if (c == BIG) { /* stays a big block, even when it shrinks */
        unsigned char *q = realloc(p, HDR + size);
        return q ? q + HDR : NULL;
    }
    if (size <= class_size(c)) return ptr;
    void *n = mem_malloc(size, ud);
    if (!n) return NULL;
    memcpy(n, ptr, class_size(c));
    mem_free(ptr, ud);
    return n;
}

static nghttp2_mem mem = {NULL, mem_malloc, mem_free, mem_calloc, mem_realloc};

nghttp2_mem *loom__h2_mem(void)
{
#ifdef LOOM_H2_ASAN
    /* The sanitizer build uses malloc, so that ASan sees every block. */
    (void)mem;
    return NULL;
#else
    return &mem;
#endif
}
