/* Building a response on a request and turning it into bytes.
 *
 * Handlers set a status, headers and a body; loom adds Date, Server,
 * Content-Length (or chunked framing) and Connection itself, so a handler
 * cannot get framing wrong. Header names and values are checked: a CR, LF or
 * NUL (response splitting) is refused. */
#ifndef LOOM_HTTP_RESPONSE_H
#define LOOM_HTTP_RESPONSE_H

#include <stddef.h>
#include <stdint.h>

#include "http/request.h"
#include "util/buf.h"

/* Appends a response header (copied into the request arena). Returns 0, or
 * -1 when the name is not a token or the value holds CR, LF or NUL, or the
 * response head is already sent. Content-Length, Transfer-Encoding and
 * Connection are managed by loom and refused here. */
int loom__resp_header_add(loom_req *r, const char *name, size_t nlen, const char *value,
                          size_t vlen);
/* Replaces every header called `name` by one with `value` (or removes them
 * when value is NULL). Same rules and result as loom__resp_header_add. */
int loom__resp_header_set(loom_req *r, const char *name, size_t nlen, const char *value,
                          size_t vlen);
/* Looks up a response header; NULL when absent. */
const char *loom__resp_header_get(const loom_req *r, const char *name, size_t nlen, size_t *vlen);
/* Sets the body to a copy of `len` bytes (in the request arena, or on the heap
 * when large). Returns 0 or -1 (out of memory). */
int loom__resp_body_copy(loom_req *r, const void *body, size_t len);
/* Sets the body to `body` without copying; `free_fn` (may be NULL for static
 * data) is called on it when the request is freed. */
void loom__resp_body_take(loom_req *r, const void *body, size_t len, void (*free_fn)(void *));
/* Sets the body to `len` bytes of the open file `fd` from `off`, taking
 * ownership of fd (closed with the request, or by the connection once sent).
 * The connection writes the head, then sendfile(2)s the range. */
void loom__resp_file(loom_req *r, int fd, uint64_t off, uint64_t len);
/* Whether the response to `r` carries a body (not HEAD, 1xx, 204 or 304). */
static inline int loom__resp_has_body(const loom_req *r)
{
    int st = r->resp.status;
    return !r->is_head && st >= 200 && st != 204 && st != 304;
}
/* Appends the status line and headers to `out`. `chunked` selects
 * Transfer-Encoding: chunked instead of Content-Length. Returns 0 or -1. */
int loom__resp_write_head(loom_req *r, loom__buf *out, int chunked);
/* Appends a complete simple response (head and body). Returns 0 or -1. */
int loom__resp_write(loom_req *r, loom__buf *out);
/* Appends an error response for a request that could not be parsed: `status`,
 * a text body naming `reason`, and Connection: close. */
int loom__resp_write_error(loom__buf *out, int status, const char *reason);

#endif
