/* Absolute http:// and https:// URLs: parsing, resolving a redirect's
 * Location, the query-string encoding of parameters, and proxy URLs. */
#ifndef LOOM_CLIENT_URL_H
#define LOOM_CLIENT_URL_H

#include <stddef.h>

#include "util/buf.h"

typedef struct {
    char *host;     /* without brackets for IPv6, lower case */
    unsigned port;  /* 80 (http) or 443 (https) by default */
    int tls;        /* https */
    char *target;   /* path and query, at least "/"; no fragment */
    char *hostport; /* the Host header: host, or host:port when not the scheme's default */
    char *origin;   /* scheme://hostport, for same-origin checks */
    char *full;     /* origin + target */
} loom__url;

/* Parses `s` (at most 8190 bytes; http or https). Returns 0, or -1 with a
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

/* An HTTP proxy: where to connect, and the Proxy-Authorization value. */
typedef struct {
    char *host; /* NULL = no proxy */
    unsigned port;
    char *auth; /* "Basic ..." or NULL */
    char *url;  /* http://host:port, for messages and pool keys (no credentials) */
} loom__proxy;

/* Parses "http://[user:password@]host[:port][/]" (port 80 by default);
 * `auth` ("user:password"), when not NULL, replaces the URL's credentials.
 * Returns 0, or -1 with a reason in err; -2 when out of memory. */
int loom__proxy_parse(const char *s, const char *auth, loom__proxy *p, char *err, size_t errlen);
/* Copies a proxy (deep). Returns 0 or -2. */
int loom__proxy_copy(const loom__proxy *from, loom__proxy *to);
void loom__proxy_free(loom__proxy *p);
/* Whether `host`:`port` is excluded by a no_proxy list (see client.h). */
int loom__no_proxy_match(const char *list, const char *host, unsigned port);

#endif
