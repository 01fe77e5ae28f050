/* Absolute http:// URLs: parsing, resolving a redirect's Location, and the
 * query-string encoding of parameters. */
#ifndef LOOM_CLIENT_URL_H
#define LOOM_CLIENT_URL_H

#include <stddef.h>

#include "util/buf.h"

typedef struct {
    char *host;     /* without brackets for IPv6, lower case */
    unsigned port;  /* 80 by default */
    char *target;   /* path and query, at least "/"; no fragment */
    char *hostport; /* the Host header: host, or host:port when not 80 */
    char *origin;   /* http://hostport, for same-origin checks */
    char *full;     /* origin + target */
} loom__url;

/* Parses `s` (at most 8190 bytes; http scheme only). Returns 0, or -1 with a
 * reason in err; -2 when out of memory. The caller frees `u` with
 * loom__url_free. */
int loom__url_parse(const char *s, loom__url *u, char *err, size_t errlen);
/* Resolves `ref` (absolute, scheme-relative, absolute-path or relative) against
 * `base` into `out`. Same returns as loom__url_parse. */
int loom__url_resolve(const loom__url *base, const char *ref, loom__url *out, char *err,
                      size_t errlen);
void loom__url_free(loom__url *u);
/* Appends `s` percent-encoded for a query component (space as %20). */
int loom__url_encode(loom__buf *b, const char *s);

#endif
