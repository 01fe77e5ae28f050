#include "util/arena.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define BLOCK_SIZE 4096
#define FREE_MAX 256

struct loom__arena_block {
    loom__arena_block *next;
    size_t size; /* usable bytes after the header */
    max_align_t data[];
};

static _Thread_local loom__arena_block *free_list;
static _Thread_local unsigned free_count;

static loom__arena_block *block_new(size_t min)
{
    if (min <= BLOCK_SIZE && free_list) {
        loom__arena_block *b = free_list;
        free_list = b->next;
        free_count--;
        return b;
    }
    size_t size = min <= BLOCK_SIZE ? BLOCK_SIZE : min;
    loom__arena_block *b = malloc(sizeof *b + size);
    if (!b) return NULL;
    b->size = size;
    return b;
}

void *loom__arena_alloc_slow(loom__arena *a, size_t size)
{
    size = (size + 15) & ~(size_t)15;
    if (a->head && (size_t)(a->end - a->cur) >= size) { /* a zero size that fits */
        void *p = a->cur;
        a->cur += size;
        return p;
    }
    loom__arena_block *b = block_new(size);
    if (!b) return NULL;
    b->next = a->head;
    a->head = b;
    a->cur = (char *)b->data + size;
    a->end = (char *)b->data + b->size;
    return b->data;
}

char *loom__arena_strndup(loom__arena *a, const char *s, size_t len)
{
    char *p = loom__arena_alloc(a, len + 1);
    if (!p) return NULL;
    if (len) memcpy(p, s, len);
    p[len] = '\0';
    return p;
}

void loom__arena_reset(loom__arena *a)
{
    loom__arena_block *b = a->head;
    while (b) {
        loom__arena_block *next = b->next;
        if (b->size == BLOCK_SIZE && free_count < FREE_MAX) {
            b->next = free_list;
            free_list = b;
            free_count++;
        } else {
            free(b);
        }
        b = next;
    }
    a->head = NULL;
    a->cur = a->end = NULL;
}

void loom__arena_trim(void)
{
    while (free_list) {
        loom__arena_block *b = free_list;
        free_list = b->next;
        free(b);
    }
    free_count = 0;
}
