#include "util/buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int loom__buf_reserve(loom__buf *b, size_t extra)
{
    if (b->cap - b->len >= extra) return 0;
    size_t need = b->len + extra;
    if (need < b->len) return -1;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need) {
        if (cap > ((size_t)-1) / 2) return -1;
        cap *= 2;
    }
    char *p = realloc(b->data, cap);
    if (!p) return -1;
    b->data = p;
    b->cap = cap;
    return 0;
}

int loom__buf_append(loom__buf *b, const void *p, size_t len)
{
    if (len == 0) return 0;
    if (loom__buf_reserve(b, len)) return -1;
    memcpy(b->data + b->len, p, len);
    b->len += len;
    return 0;
}

int loom__buf_puts(loom__buf *b, const char *s)
{
    return loom__buf_append(b, s, strlen(s));
}

int loom__buf_printf(loom__buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || loom__buf_reserve(b, (size_t)n + 1)) return -1;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}

void loom__buf_consume(loom__buf *b, size_t n)
{
    if (n >= b->len) {
        b->len = 0;
        return;
    }
    memmove(b->data, b->data + n, b->len - n);
    b->len -= n;
}

void loom__buf_free(loom__buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}
