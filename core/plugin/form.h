/* Query strings, urlencoded and multipart form bodies, and cookies. All
 * results are decoded copies in the request arena. */
#ifndef LOOM_PLUGIN_FORM_H
#define LOOM_PLUGIN_FORM_H

#include <stddef.h>
#include <stdint.h>

#include "http/request.h"

/* The idx-th value of `name` in an application/x-www-form-urlencoded string
 * (a query string or a body). NULL when absent. */
const char *loom__urlencoded_get(loom_req *r, const char *s, size_t n, const char *name,
                                 uint32_t idx, size_t *len);
/* A field of a multipart/form-data body: text (filename NULL) or file. Returns
 * 0 or -1 when absent or the body is malformed. At most 1,000 parts are read. */
int loom__multipart_get(loom_req *r, const char *name, uint32_t idx, const char **filename,
                        const char **ctype, const char **data, size_t *len);
/* The value of cookie `name` in the Cookie header(s). */
const char *loom__cookie_get(loom_req *r, const char *name, size_t *len);
/* Percent-decodes (and '+' to space when `plus`) into the arena. */
char *loom__pct_decode(loom_req *r, const char *s, size_t n, int plus, size_t *outlen);

#endif
