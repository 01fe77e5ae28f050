/* RFC 9110 tokens: the characters of header names and methods. */
#ifndef LOOM_HTTP_TOKEN_H
#define LOOM_HTTP_TOKEN_H

#include <stddef.h>

/* 1 for a tchar, 0 for every other byte. */
extern const unsigned char loom__tchar[256];

/* Whether s[0..n) is a token (empty is not). Four bytes per step and no
 * early exit: it runs for every header a handler sets, and those names are
 * short and valid. */
static inline int loom__is_token(const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    unsigned ok = n != 0;
    size_t i = 0;
    for (; i + 4 <= n; i += 4)
        ok &= loom__tchar[u[i]] & loom__tchar[u[i + 1]] & loom__tchar[u[i + 2]] &
              loom__tchar[u[i + 3]];
    for (; i < n; i++) ok &= loom__tchar[u[i]];
    return (int)ok;
}

#endif
