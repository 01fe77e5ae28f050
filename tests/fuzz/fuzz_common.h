/* Small helpers shared by the fuzz targets. */
#ifndef LOOM_FUZZ_COMMON_H
#define LOOM_FUZZ_COMMON_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* A failed invariant: report and abort, so libFuzzer keeps the input. */
#define FUZZ_CHECK(cond)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #cond);           \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* A tiny deterministic generator seeded by the input, to pick read splits. */
typedef struct {
    uint32_t s;
} fuzz_rng;

static inline uint32_t fuzz_next(fuzz_rng *r)
{
    uint32_t x = r->s ? r->s : 0x9e3779b9u;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    r->s = x;
    return x;
}

/* The size of the next read: `mode` (from the input) picks whole, byte by
 * byte, small or random pieces. */
static inline size_t fuzz_split(fuzz_rng *r, uint8_t mode, size_t left)
{
    size_t n;
    switch (mode & 3) {
    case 0:
        n = left;
        break;
    case 1:
        n = 1;
        break;
    case 2:
        n = 1 + fuzz_next(r) % 8;
        break;
    default:
        n = 1 + fuzz_next(r) % 512;
        break;
    }
    return n < left ? n : left;
}

#endif
