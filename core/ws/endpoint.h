/* One end of a WebSocket connection (RFC 6455), apart from its transport:
 * reads frames as bytes arrive, reassembles messages, answers pings, keeps
 * the close handshake and the heartbeat, and writes frames. The server
 * (ws/server.c, on a loom__conn) and the client (client/ws.c, on its own
 * socket) each give it a table to reach their transport and a table to hear
 * from it; everything else is shared, so both follow the same rules.
 *
 * Strictness, each a close code (the corpus in tests/conformance/ws checks
 * one case per rule): a server's peer must mask its frames and a client's
 * must not (1002); RSV bits only for a negotiated extension (RSV1 on the
 * first frame of a compressed message) (1002); reserved opcodes (1002);
 * control frames at most 125 bytes and never fragmented (1002); a
 * continuation without a message, or a new message inside one (1002);
 * lengths in their shortest form (1002); text is UTF-8, checked as it
 * arrives across frames, and so is a close reason (1007); close codes of
 * RFC 6455 §7.4 and the IANA registry only, and no 1-byte close payload
 * (1002); a message larger than max_msg, compressed or not, is refused at
 * the first frame that passes the limit (1009). A failed connection sends
 * its close frame and then closes TCP. Pings are answered at once, also
 * between the frames of a message. */
#ifndef LOOM_WS_ENDPOINT_H
#define LOOM_WS_ENDPOINT_H

#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"
#include "ws/deflate.h"
#include "ws/frame.h"

/* Results: the plugin ABI's values (loom.h), so that wrappers pass them on. */
#define LOOM__WS_OK 0
#define LOOM__WS_EINVAL (-1)
#define LOOM__WS_ENOMEM (-2)
#define LOOM__WS_ESTATE (-3) /* closing or closed */
#define LOOM__WS_ELIMIT (-6) /* the send queue is over its limit */

/* Message types given to the owner, as the ABI's LOOM_WS_TEXT/BINARY. */
#define LOOM__WS_TEXT 1
#define LOOM__WS_BINARY 2

enum { LOOM__WS_OPEN, LOOM__WS_CLOSING, LOOM__WS_CLOSED };

typedef struct loom__ws loom__ws;

/* How the endpoint reaches its transport. */
typedef struct {
    loom__buf *(*outbuf)(loom__ws *ws);  /* where to append bytes to send (valid until flush) */
    void (*flush)(loom__ws *ws);         /* send what was appended (or at the end of a batch) */
    size_t (*queued)(loom__ws *ws);      /* bytes appended and not yet taken by the socket */
    void (*pause)(loom__ws *ws, int on); /* stop (1) or resume (0) reading */
    void (*end)(loom__ws *ws);           /* close TCP once what is queued is sent */
    void (*abort)(loom__ws *ws);         /* close TCP now */
    uint64_t (*now)(loom__ws *ws);       /* loop time, milliseconds */
} loom__ws_io;

/* What the endpoint tells its owner. None of these may free the endpoint
 * (see release). */
typedef struct {
    /* A whole message; `p` is valid during the call only. */
    void (*message)(loom__ws *ws, int type, const char *p, size_t n);
    /* The connection failed (a protocol error by the peer: `code` is the
     * close code we sent; or 1006: it was lost, or did not answer a ping in
     * time). Comes before `closed`. */
    void (*error)(loom__ws *ws, int code, const char *msg);
    /* Once: the connection is over for messages. `code` and `reason` are
     * the peer's close frame's (1005 when it had no code), or what error
     * said when it failed, or 1006 when it was lost. */
    void (*closed)(loom__ws *ws, int code, const char *reason, size_t n);
    /* The send queue emptied after a send was refused with ELIMIT. May be NULL. */
    void (*drained)(loom__ws *ws);
    /* The endpoint left its last call after the owner asked to free it
     * while it was busy (loom__ws_release). */
    void (*release)(loom__ws *ws);
    /* The transport is gone for good (after `closed`): no io call follows.
     * The owner frees the endpoint when it is done with it. */
    void (*gone)(loom__ws *ws);
    /* Called by the transport's periodic tick before the endpoint's own
     * deadlines (the owner's, e.g. a reload's drain). May be NULL. */
    void (*tick)(loom__ws *ws);
} loom__ws_up;

struct loom__ws {
    const loom__ws_io *io;
    const loom__ws_up *up;
    void *io_ctx;    /* the transport's (a loom__conn, the client's socket) */
    uint8_t opening; /* the owner has not seen the connection yet: bytes wait in msg */
    /* settings (the owner sets them after init) */
    uint64_t max_msg;    /* largest message accepted (1009 beyond) */
    uint64_t send_limit; /* queued bytes past which a send is refused */
    uint32_t heartbeat;  /* ms of silence before a ping; 0 = none */
    uint32_t close_wait; /* ms to wait for the peer's close frame (and, client, its FIN) */
    loom__ws_pmd pmd;    /* permessage-deflate as negotiated */
    loom__ws_z *z;       /* our own zlib streams, when a side keeps context */
    /* state */
    uint8_t client; /* we are the client: we mask, the peer must not */
    uint8_t st;     /* LOOM__WS_OPEN, _CLOSING, _CLOSED */
    uint8_t busy;   /* inside feed or tick */
    uint8_t freeing, io_gone, paused, want_drain, got_close;
    /* the frame being read */
    uint8_t hdr[LOOM__WS_HEAD_MAX];
    uint8_t hlen, hneed; /* header bytes so far, and needed */
    uint8_t fop, ffin, frsv1, fmasked;
    uint8_t key[4];
    uint64_t flen, fpos; /* payload length and bytes read of it */
    /* the message being reassembled */
    uint8_t mop;  /* LOOM__WS_OP_TEXT/BINARY, 0 = none */
    uint8_t mz;   /* compressed (RSV1 on its first frame) */
    uint8_t utf8; /* validation state of an uncompressed text */
    uint8_t ctl_len;
    uint16_t peer_code;
    loom__buf msg; /* payload so far (compressed bytes for a compressed message) */
    uint8_t *ctl;  /* a control frame's payload while it arrives (malloc'd: idle, none) */
    /* time */
    uint64_t last_rx;  /* when bytes last arrived */
    uint64_t ping_at;  /* a heartbeat ping is out since then (0 = none) */
    uint64_t close_at; /* deadline of the close handshake (0 = none) */
};

/* Starts an open connection (after the handshake). `client` as above. `io`
 * may be NULL when the transport sets it later (ws/server.h). */
void loom__ws_init(loom__ws *ws, const loom__ws_io *io, const loom__ws_up *up, int client);
/* Bytes arrived from the peer. */
void loom__ws_feed(loom__ws *ws, const char *p, size_t n);
/* Sends a whole message (LOOM__WS_TEXT or _BINARY), a ping or a pong
 * (LOOM__WS_OP_PING/PONG, at most 125 bytes). Text must be UTF-8. Returns
 * LOOM__WS_OK, _EINVAL, _ENOMEM, _ESTATE (closing) or _ELIMIT (the queue
 * holds more than send_limit with this message: nothing was queued; the
 * owner hears `drained` when it has emptied). */
int loom__ws_send(loom__ws *ws, int type, const void *p, size_t n);
/* Starts the close handshake with `code` (0: a close frame without one)
 * and a reason of at most 123 bytes of UTF-8. Returns LOOM__WS_OK, _EINVAL
 * (a code one may not send, a bad reason) or _ESTATE (already closing). */
int loom__ws_close(loom__ws *ws, int code, const char *reason, size_t n);
/* Once in a while (the server's sweep, the client's timer): heartbeat and
 * close deadlines. */
void loom__ws_tick(loom__ws *ws);
/* The transport sent everything queued. */
void loom__ws_drained(loom__ws *ws);
/* The peer closed TCP or the transport failed (`closed` with 1006 unless
 * the close handshake was done). After it the transport is gone. */
void loom__ws_transport_gone(loom__ws *ws);
/* Frees the endpoint's buffers now, or, while it is busy (inside feed or
 * tick, a callback of its owner asked), once it returns: up->release is then
 * called and the owner frees its memory there. Returns 1 when freed now. */
int loom__ws_release(loom__ws *ws);

/* Frees this thread's scratch buffers and shared zlib streams (at exit). */
void loom__ws_thread_free(void);

/* One message built once for many connections (a broadcast): the frame as
 * it goes to a server's peers, and compressed variants made on first use. */
typedef struct {
    int type;
    const void *data;
    size_t len;
    loom__buf plain; /* header + payload */
    loom__buf z[16]; /* compressed frames by window bits (for peers that reset) */
    uint8_t zfail[16];
} loom__ws_prepared;

void loom__ws_prepared_init(loom__ws_prepared *pm, int type, const void *data, size_t len);
void loom__ws_prepared_free(loom__ws_prepared *pm);
/* Sends a prepared message on a server connection (as loom__ws_send). */
int loom__ws_send_prepared(loom__ws *ws, loom__ws_prepared *pm);

#endif
