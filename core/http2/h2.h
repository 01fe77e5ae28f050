/* HTTP/2 on nghttp2: the state shared by the files of core/http2.
 *
 *   session.c  the connection: nghttp2 set-up, the protocol table
 *              (server/proto.h), sending (one write per loop turn), idle
 *              and graceful ends
 *   stream.c   a stream as a request: headers and body in, limits and
 *              deadlines per stream, dispatch, RST_STREAM as an abort
 *   respond.c  a request's response as HEADERS and DATA frames: bodies read
 *              in place, files read straight into the send buffer,
 *              streaming responses
 *   defence.c  the flood defences that nghttp2 leaves to its user
 *   mem.c      nghttp2's allocator: small blocks on per-thread free lists
 *
 * A stream is a loom_req like an HTTP/1.1 request, so routes, middleware and
 * every plugin serve it unchanged. Its stream state lives in the request's
 * arena (r->pstream) and lives as long as the request: until the handler
 * has finished it AND nghttp2 has closed the stream (the response is sent,
 * or either side reset it). */
#ifndef LOOM_HTTP2_H2_H
#define LOOM_HTTP2_H2_H

#include <nghttp2/nghttp2.h>
#include <stdint.h>

#include "server/conn.h"
#include "server/proto.h"

/* The decoded header list of one request (RFC 9113 §6.5.2: name + value
 * + 32 per field) and the HPACK-encoded header block that carries it: a
 * bigger list is a 431, a bigger block (after the CONTINUATION frames nghttp2
 * bounds by count) a GOAWAY ENHANCE_YOUR_CALM. Advertised as
 * SETTINGS_MAX_HEADER_LIST_SIZE. */
#define LOOM__H2_HEADER_LIST (64u * 1024u)
#define LOOM__H2_HEADER_BLOCK (LOOM__H2_HEADER_LIST + 16u * 1024u)
/* CONTINUATION frames after one HEADERS frame (CVE-2024-27316), as
 * nghttp2_option_set_max_continuations takes it. */
#define LOOM__H2_MAX_CONTINUATIONS 8
/* SETTINGS and PING acknowledgements nghttp2 may hold queued for a client
 * that does not read them before it ends the connection. */
#define LOOM__H2_MAX_OUTBOUND_ACK 1000
/* Bytes queued on the connection (gathered, in flight, encrypted) beyond
 * which nghttp2 waits for the socket: what one write per turn carries. */
#define LOOM__H2_HIGH_WATER (256u * 1024u)

typedef struct loom__h2 loom__h2;
typedef struct loom__h2_stream loom__h2_stream;

/* A token bucket over loop time (defence.c). */
typedef struct {
    double tokens;
    uint64_t at; /* loop time of the last refill; 0 = full */
} loom__h2_bucket;

enum {
    H2S_HEAD,     /* HEADERS arrived, the header block is being read */
    H2S_BODY,     /* the head is complete, the body is arriving */
    H2S_HANDLER,  /* handed to w->handle, not finished */
    H2S_RESPONSE, /* finished: the response is submitted and being sent */
};

enum { H2B_NONE, H2B_MEM, H2B_FILE, H2B_STREAM };

struct loom__h2_stream {
    loom_req *r;
    loom__h2 *h;
    loom__h2_stream *prev, *next; /* the session's list of streams with a request */
    int32_t id;
    uint8_t phase;       /* H2S_* */
    uint8_t closed;      /* nghttp2 closed the stream */
    uint8_t orphan;      /* reset while its handler ran: waits for the handler to finish */
    uint8_t reset_after; /* the request was not read to its end: RST_STREAM(NO_ERROR) after the
                            response */
    uint8_t body;        /* H2B_*: where the DATA frames come from */
    uint8_t ended;       /* streaming: the handler finished, the buffer is the rest */
    uint8_t deferred;    /* the data source waits for nghttp2_session_resume_data */
    uint8_t has_host;    /* a Host header came (beside :authority) */
    uint16_t error;      /* answer this status instead of dispatching (0: none) */
    const char *why;     /* ... and this reason */
    const char *authority;
    uint32_t authority_len;
    uint32_t list_bytes; /* decoded header list so far (RFC 9113 size) */
    uint32_t ncookies;   /* cookie fields, joined into one at the end of the head */
    uint64_t opened;     /* loop time of its HEADERS frame */
    uint64_t last_in;    /* loop time its last bytes arrived */
    uint64_t last_out;   /* loop time its last DATA went out (or its response was submitted) */
    uint64_t off;        /* response body bytes sent */
    loom__buf sbuf;      /* streaming: bytes written and not yet in DATA frames */
    size_t soff;         /* how many of them are sent */
};

struct loom__h2 {
    nghttp2_session *ng;
    loom__conn *c;
    loom__worker *w;
    loom__h2_stream *streams; /* streams that hold a request */
    loom__h2_stream
        *cur; /* the stream whose header block is being read (a lookup saved per field) */
    uint32_t nstreams;
    uint32_t orphans;        /* reset streams whose handlers still run */
    uint32_t max_streams;    /* SETTINGS_MAX_CONCURRENT_STREAMS */
    uint32_t block;          /* encoded bytes of the header block being read */
    uint32_t nreset_after;   /* streams answered early that wait to be reset (an upper bound) */
    uint64_t started;        /* loop time the connection became HTTP/2 */
    uint64_t last_active;    /* loop time of the last frame or stream activity */
    uint64_t nreq;           /* streams handed to handlers */
    loom__h2_bucket resets;  /* RST_STREAM from the client */
    loom__h2_bucket empties; /* DATA frames that carry nothing */
    uint8_t in_recv;         /* inside nghttp2_session_mem_recv: sending waits for its end */
    uint8_t sending;         /* inside nghttp2_session_send */
    uint8_t scheduled;       /* a send at the end of this loop turn is scheduled */
    uint8_t stopping;        /* GOAWAY(NO_ERROR) submitted: a graceful stop or idle */
    uint8_t calm;            /* GOAWAY(ENHANCE_YOUR_CALM) submitted */
    uint8_t dead;            /* the connection closed: only the handles' closing is left */
    uint8_t handles;         /* uv handles not closed yet (the struct is freed after) */
    uv_check_t check;        /* sends what the loop turn produced */
    uv_idle_t idle;          /* ... without letting the loop block before it */
};

/* Whether the session is over: the connection closed, or nghttp2 failed
 * for good (loom__h2_fail) and only the last bytes are being written. */
static inline int loom__h2_gone(const loom__h2 *h)
{
    return h->dead || !h->ng;
}

/* session.c */
/* Sends what nghttp2 has queued (as far as the socket takes it), flushes,
 * and ends a connection that has nothing left to do. */
void loom__h2_pump(loom__h2 *h);
/* Asks for a send at the end of this loop turn (or of the current read). */
void loom__h2_schedule(loom__h2 *h);
/* Writes a GOAWAY frame with `code` past nghttp2 (after it failed for good)
 * and ends the connection. */
void loom__h2_fail(loom__h2 *h, uint32_t code, const char *why);
/* Loop time now. */
uint64_t loom__h2_now(const loom__h2 *h);

/* mem.c: the allocator nghttp2 sessions use (per-thread free lists). */
nghttp2_mem *loom__h2_mem(void);

/* stream.c: nghttp2 callbacks of the receiving side. */
int loom__h2_on_begin_headers(nghttp2_session *ng, const nghttp2_frame *f, void *ud);
int loom__h2_on_header(nghttp2_session *ng, const nghttp2_frame *f, const uint8_t *name,
                       size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
                       void *ud);
int loom__h2_on_frame_recv(nghttp2_session *ng, const nghttp2_frame *f, void *ud);
int loom__h2_on_data_chunk(nghttp2_session *ng, uint8_t flags, int32_t id, const uint8_t *data,
                           size_t len, void *ud);
int loom__h2_on_stream_close(nghttp2_session *ng, int32_t id, uint32_t code, void *ud);
/* Takes a stream out of the session's list and frees its request. */
void loom__h2_stream_free(loom__h2_stream *s);
/* Per-stream deadlines (header, request, read, write); called every sweep. */
void loom__h2_streams_sweep(loom__h2 *h, uint64_t now);
/* The connection closed: every request is detached (a running handler's
 * abort fires), the rest freed. */
void loom__h2_streams_close(loom__h2 *h);

/* respond.c */
/* Answers `status` with a short text body for a stream that is not handed
 * to a handler (a limit or a deadline), and resets it after the response
 * when its request is not read to the end. */
void loom__h2_respond_error(loom__h2_stream *s, int status, const char *why);
int loom__h2_on_frame_send(nghttp2_session *ng, const nghttp2_frame *f, void *ud);
int loom__h2_send_data(nghttp2_session *ng, nghttp2_frame *f, const uint8_t *framehd, size_t length,
                       nghttp2_data_source *src, void *ud);
void loom__h2_req_finish(loom_req *r);
int loom__h2_req_stream_head(loom_req *r);
int loom__h2_req_stream_write(loom_req *r, const void *data, size_t len);
size_t loom__h2_req_queued(const loom_req *r);

/* defence.c */
/* Takes a token; returns 0, or -1 when the bucket is empty. */
int loom__h2_bucket_take(loom__h2_bucket *b, double burst, double per_s, uint64_t now);
/* Ends the connection with GOAWAY(ENHANCE_YOUR_CALM) after the streams it
 * already processed (logged once, with the client's address and `why`). */
void loom__h2_calm(loom__h2 *h, const char *why);
/* A frame header arrived: bounds header blocks in bytes. Returns 0. */
int loom__h2_on_begin_frame(nghttp2_session *ng, const nghttp2_frame_hd *hd, void *ud);
/* A new stream is about to be handed a request: returns 0, or -1 after
 * calming a client whose reset streams still hold handlers. */
int loom__h2_admit(loom__h2 *h);
/* The client reset a stream / sent a DATA frame with nothing in it. */
void loom__h2_count_reset(loom__h2 *h);
void loom__h2_count_empty(loom__h2 *h);

#endif
