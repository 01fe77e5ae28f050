/* The protocol a connection speaks once it is not HTTP/1.1.
 *
 * A connection is a transport (plaintext or TLS, on io_uring or epoll:
 * conn.c) carrying a protocol. HTTP/1.1 is conn.c's own and needs no table;
 * HTTP/2 (chosen by ALPN or the h2c preface) and WebSocket (after a 101)
 * install one with loom__conn_set_proto. Requests stay one type: a protocol
 * makes loom_req objects (an HTTP/2 stream is one), hands them to
 * w->handle, and gets them back through req_finish and the stream calls,
 * which conn.c forwards for every request whose connection has a protocol.
 *
 * What a protocol may call on its connection (all on the loop thread):
 * loom__conn_outbuf + loom__conn_flush to send, loom__conn_queued for
 * backpressure, loom__conn_pause to stop reading, loom__conn_end and
 * loom__conn_close to finish (conn.h). */
#ifndef LOOM_SERVER_PROTO_H
#define LOOM_SERVER_PROTO_H

#include <stddef.h>
#include <stdint.h>

#include "server/server.h"

typedef struct loom__proto {
    const char *name; /* "h2", "websocket": for logs */
    /* Bytes arrived (plaintext, after TLS). The protocol takes all of them:
     * what it cannot use yet it keeps itself. It may close the connection. */
    void (*on_data)(loom__conn *c, const char *p, size_t n);
    /* The peer closed (err is UV_EOF) or the socket failed; the connection
     * closes right after this returns. */
    void (*on_eof)(loom__conn *c, int err);
    /* Everything queued reached the socket: more may be produced (flow
     * control, a stream waiting on backpressure). */
    void (*on_drain)(loom__conn *c);
    /* The connection is closing (for any reason): detach every request
     * (their aborts fire), free the protocol's state. Called once. */
    void (*on_close)(loom__conn *c);
    /* Every sweep (a few times a second): the protocol's own deadlines. */
    void (*on_sweep)(loom__conn *c, uint64_t now);
    /* A graceful stop began: announce it (GOAWAY, a close frame), let what
     * runs finish, and end the connection when it is idle. */
    void (*on_stop)(loom__conn *c);
    /* The request side, for requests this protocol made (r->conn == c). */
    void (*req_finish)(loom_req *r);
    int (*req_stream_head)(loom_req *r);
    int (*req_stream_write)(loom_req *r, const void *data, size_t len);
    /* Bytes written for r and not taken by the socket yet (what
     * loom__req_queued says, for an event stream's backpressure): an HTTP/2
     * stream's own unsent data beside the connection's queue. NULL: the
     * connection's queue. */
    size_t (*req_queued)(const loom_req *r);
} loom__proto;

/* HTTP/2 (core/http2), when it is built in: takes connection `c` over
 * (its state, then every byte from now on). NULL without HTTP/2; then ALPN
 * offers only http/1.1 and the h2c preface is an HTTP/1.1 parse error. */
extern void (*loom__proto_h2_start)(loom__conn *c);

#endif
