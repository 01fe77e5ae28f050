/* The request object that the parser fills and handlers read, with the
 * response that handlers build on it.
 *
 * A request owns an arena that holds itself, a copy of its head (method,
 * target, headers) and everything handlers allocate for it; it is freed in one
 * go when the response is finished and nobody references it. It does not
 * point into the connection's read buffer, so a handler may answer later,
 * after the connection has read other bytes or gone away. */
#ifndef LOOM_HTTP_REQUEST_H
#define LOOM_HTTP_REQUEST_H

#include <stddef.h>
#include <stdint.h>

#include "util/arena.h"
#include "util/buf.h"

typedef struct {
    const char *name;
    const char *value;
    uint32_t name_len;
    uint32_t value_len;
} loom__header;

typedef struct {
    int status;
    loom__header *headers; /* in the request arena */
    uint32_t nheaders, cap_headers;
    const char *body; /* body bytes: in the arena, static, or owned (body_free) */
    size_t body_len;
    void (*body_free)(void *);
    uint8_t streaming; /* chunked, written piece by piece */
    uint8_t head_sent; /* status line and headers are written */
    uint8_t done;      /* the whole response is written or queued */
    uint8_t close;     /* send Connection: close and close after it */
    uint8_t has_file;  /* the body is file_len bytes of file_fd from file_off (sendfile) */
    int file_fd;       /* owned while has_file: closed with the request or by the conn */
    uint64_t file_off, file_len;
} loom__resp;

struct loom__conn;

typedef struct loom_req {
    loom__arena arena;
    struct loom__conn *conn; /* NULL once the connection is gone */

    /* Request line. Pointers are into the arena, NUL-terminated. */
    const char *method;
    uint32_t method_len;
    uint8_t method_id; /* llhttp_method_t */
    uint8_t http_major, http_minor;
    const char *target; /* raw request-target */
    uint32_t target_len;
    const char *path; /* raw path (no query); for absolute-form, the path part */
    uint32_t path_len;
    const char *query; /* raw query after '?', or NULL */
    uint32_t query_len;

    loom__header *headers; /* in arena order, as received */
    uint32_t nheaders, cap_headers;

    uint64_t content_length;
    uint8_t has_content_length;
    uint8_t chunked;
    uint8_t keep_alive;      /* the client allows another request after this one */
    uint8_t expect_continue; /* "Expect: 100-continue" */
    uint8_t upgrade;         /* an Upgrade request: answered, then the connection closes
                                (unless a 101 hands it to another protocol: take_over) */
    uint8_t complete;        /* the whole body has arrived */
    uint8_t is_head;
    uint8_t tls; /* it came over TLS (set when dispatched) */

    loom__buf body; /* request body; owned, freed with the request */

    loom__resp resp;
    uint64_t start_ms;  /* loop time when its first byte arrived */
    int64_t bytes_sent; /* body bytes, for the access log */

    void *host_data; /* the server's per-request state (routing, plugins) */

    /* Set by a protocol that takes the connection over after this request's
     * 101 (WebSocket): called once, when the response is finished, with the
     * connection once the 101's head is queued and the request released,
     * or with NULL when there is nothing to take over (the client left, the
     * response is not a 101 after all, the server is stopping). */
    void (*take_over)(struct loom__conn *c, void *arg);
    void *take_over_arg;
    void *pstream; /* the protocol's per-request state: its HTTP/2 stream (NULL: HTTP/1.1) */
    /* Who answered, for the access log: the route pattern ("(unmatched)",
     * "(middleware)") and the plugin, or NULL. Set before the answer is
     * sent; they live as long as the request. */
    const char *route;
    const char *plugin;
    uint64_t handler_ns; /* from handing it to its plugin to the answer (with metrics or a log) */
} loom_req;

/* Allocates a new request with its own arena. NULL when out of memory. */
loom_req *loom__req_new(void);
/* Frees the request, its arena and its body. */
void loom__req_free(loom_req *r);
/* Case-insensitive lookup of the first header called `name`; sets *len.
 * Returns NULL when absent. The pointer lives as long as the request. */
const char *loom__req_header(const loom_req *r, const char *name, size_t name_len, size_t *len);
/* Case-insensitive ASCII comparison of two byte strings of equal length.
 * Inline, and equal bytes skip the case folding: header names are compared
 * several times per request, mostly against names spelled the same way. */
static inline int loom__strncaseeq(const char *a, const char *b, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char x = (unsigned char)a[i], y = (unsigned char)b[i];
        if (x == y) continue;
        if (x >= 'A' && x <= 'Z') x |= 0x20;
        if (y >= 'A' && y <= 'Z') y |= 0x20;
        if (x != y) return 0;
    }
    return 1;
}

#endif
