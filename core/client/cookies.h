/* The cookie jar's inside (cookies.c), for the request code. The public
 * API and the rules are in <loom/client.h>. */
#ifndef LOOM_CLIENT_COOKIES_H
#define LOOM_CLIENT_COOKIES_H

#include <loom/client.h>
#include <stdint.h>

#include "client/url.h"
#include "util/buf.h"

/* Stores one Set-Cookie value received from `u` at wall-clock time `now`.
 * Returns 1 stored (or removed, when expired), 0 refused, -1 no memory. */
int loom__jar_store(loom_cookie_jar *jar, const loom__url *u, const char *set_cookie, int64_t now);
/* Appends the cookies for `u` to `out` as "a=1; b=2" (after "; " when `out`
 * is not empty). Returns the number appended, or -1 when out of memory. */
int loom__jar_header(loom_cookie_jar *jar, const loom__url *u, loom__buf *out, int64_t now);
/* Parses a cookie date (RFC 6265 §5.1.1). Returns 0 with *t (Unix time),
 * or -1 when it is not a date. */
int loom__cookie_date(const char *s, size_t n, int64_t *t);

#endif
