/* The request parser: llhttp in strict mode, plus the checks llhttp leaves to
 * its user (Host, sizes and counts, HTTP/1.0 with Transfer-Encoding, transfer
 * codings, chunk extensions, trailers kept out of the headers).
 *
 * The parser is fed bytes as they arrive and stops after every complete
 * request, so the caller handles pipelined requests one at a time and in
 * order. It never resynchronises: after an error the connection is done. */
#ifndef LOOM_HTTP_PARSER_H
#define LOOM_HTTP_PARSER_H

#include <llhttp.h>
#include <stddef.h>
#include <stdint.h>

#include "http/request.h"

/* The small queries below are inline: the connection asks them several
 * times per request. */

typedef struct {
    size_t max_line_size;   /* request line: 414 */
    size_t max_field_size;  /* one header line (name and value): 431 */
    size_t max_headers;     /* number of header lines: 431 */
    size_t client_max_size; /* body: 413 */
    size_t max_chunk_ext;   /* chunk-extension bytes per chunk: 400 */
} loom__limits;

typedef struct {
    llhttp_t ll;
    const loom__limits *limits;
    loom_req *req;     /* the request being parsed; handed to the caller when complete */
    const char *base;  /* first byte of the request in the buffer being parsed */
    uint32_t head_end; /* offset past the last head byte seen */
    uint32_t line_len, field_len, value_len;
    uint32_t trailer_bytes, trailer_count, ext_bytes;
    uint32_t url_off, url_len;
    uint8_t in_header; /* 1 = reading a field, 2 = reading a value */
    uint8_t headers_done;
    uint8_t host_count, cl_count, te_count;
    uint8_t te_chunked, te_state; /* see parser.c */
    uint8_t connection_close_seen;
    uint8_t in_trailers; /* the last chunk was seen: trailer lines follow */
    uint8_t prev_cr;     /* the last byte fed was CR (a bare LF is found across reads) */
    uint8_t mtok_state;  /* the method token as bytes arrive, to tell 501 from 400 */
    uint8_t mtok_wait;   /* llhttp failed on the method; the token is not complete yet */
    uint32_t mtok_len;
    int status;         /* error status chosen by loom (0 = map llhttp's error) */
    const char *reason; /* error text for logs and the error body */
} loom__parser;

enum {
    LOOM__PARSE_MORE = 0,    /* all bytes consumed; the request (if any) is incomplete */
    LOOM__PARSE_REQUEST = 1, /* a request is complete: take it with loom__parser_take */
    LOOM__PARSE_ERROR = -1,  /* framing error: answer loom__parser_error_status, then close */
};

/* Prepares `p` to parse requests under `limits` (which must outlive it). */
void loom__parser_init(loom__parser *p, const loom__limits *limits);
/* Releases the request being parsed, if any. */
void loom__parser_free(loom__parser *p);
/* Parses up to `len` bytes of `data`, which must continue the bytes given
 * before: when a request spans calls, the caller passes the same buffer with
 * the earlier bytes still in front (see loom__parser_pending). Sets *consumed
 * to the bytes used. Returns LOOM__PARSE_*. */
int loom__parser_feed(loom__parser *p, const char *data, size_t len, size_t *consumed);
/* After LOOM__PARSE_REQUEST: hands over the request (the caller owns it) and
 * readies the parser for the next one. */
loom_req *loom__parser_take(loom__parser *p);
/* Whether the caller must keep bytes of an unfinished request in front of the
 * next bytes it feeds: returns 1 and sets *start when the head is partly
 * parsed (keep everything from *start to the end of what was fed); returns 0
 * between requests and in a body, whose bytes are already copied. */
static inline size_t loom__parser_pending(const loom__parser *p, const char **start)
{
    if (!p->req || p->headers_done || !p->base) return 0;
    *start = p->base;
    return 1;
}
/* Tells the parser its pending bytes now start at `base` (after the caller
 * moved them). */
static inline void loom__parser_rebase(loom__parser *p, const char *base)
{
    p->base = base;
}
/* After LOOM__PARSE_ERROR: the HTTP status to answer (400, 413, 414, 431,
 * 501, 505) and a short reason. */
int loom__parser_error_status(const loom__parser *p, const char **reason);
/* The request line as far as the parser has it, for the access log of a
 * request refused before it was handed over (413, 414, 431, 408, ...):
 * "METHOD TARGET HTTP/x.y" into `buf` (NUL-terminated), the target cut
 * after `max_target` bytes, and "..." after a target that was cut or not
 * seen to its end. Valid right after loom__parser_feed returned, or while
 * the pending bytes are kept (loom__parser_pending). Returns the length, or
 * 0 when not even the method is known. */
size_t loom__parser_request_line(const loom__parser *p, char *buf, size_t len, size_t max_target);
/* True once a request's head is complete and its body is still arriving. */
static inline int loom__parser_in_body(const loom__parser *p)
{
    return p->req && p->headers_done && !p->req->complete;
}
/* True when some bytes of a request have been seen and it is not complete. */
static inline int loom__parser_in_request(const loom__parser *p)
{
    return p->req && !p->req->complete;
}

#endif
