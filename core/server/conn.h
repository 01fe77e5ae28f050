/* A client connection: the transport (plaintext or TLS, on io_uring or
 * epoll) and HTTP/1.1, which reads, parses, dispatches requests one at a
 * time in order, writes the responses, and enforces the timeouts. Another
 * protocol (HTTP/2, WebSocket) takes the connection over through a table
 * (server/proto.h). */
#ifndef LOOM_SERVER_CONN_H
#define LOOM_SERVER_CONN_H

#include <netinet/in.h>
#include <sys/socket.h>

#include "server/server.h"
#include "tls/tls.h"

enum { T_NONE, T_IDLE, T_REQUEST, T_WRITE, T_LINGER, T_HANDSHAKE };

typedef struct loom__proto loom__proto;

/* The TLS side of a connection, allocated only for TLS listeners. */
typedef struct {
    loom__tls t;
    struct loom__tls_server *srv; /* the contexts it started on (a reference) */
    loom__buf cout;               /* ciphertext made but not handed to the socket yet */
    uint64_t burst_at;            /* loop time the current burst of writes began */
    size_t burst;                 /* bytes written in small records in this burst */
} loom__conn_tls;

struct loom__conn {
    uv_poll_t poll; /* readiness of fd; the I/O itself is recv/send (see conn.c) */
    int fd;         /* owned: closed after the poll handle */
    int events;     /* the UV_READABLE/UV_WRITABLE set poll is started with */
    loom__parser parser;
    loom__worker *w;
    loom__conn *prev, *next;
    loom__buf in;     /* bytes kept between reads: a partial head, or unparsed requests */
    size_t in_parsed; /* how many bytes at the front of `in` the parser has seen */
    loom_req *active; /* handed to a handler and not finished */
    loom__buf pend;   /* response bytes queued behind a write in flight */
    loom__buf wq;     /* the write in flight: bytes the socket has not taken yet */
    size_t wq_off;    /* how many of them it has taken */
    uint64_t deadline, req_start, last_io;
    uint32_t nreq;
    uint8_t kind;
    uint8_t writing, closing, lingering, closed, paused;
    uint8_t sending;     /* a file body is being sent (sendfile, or pread + write) */
    uint8_t file_wait;   /* sending, and waiting for the socket to take more */
    uint8_t no_sendfile; /* the file is copied through memory (sendfile refused it) */
    /* io_uring backend only (w->ring): what is queued on the ring for this
     * connection. It is freed only once `rops` is back to 0. */
    uint8_t rops;             /* operations whose last completion has not come */
    uint8_t recv_on;          /* the multishot recv is armed */
    uint8_t recv_stop;        /* ... and its cancel is queued (paused) */
    uint8_t send_on;          /* a send of wq is queued */
    uint8_t send_wait;        /* that send said EAGAIN: waiting for POLLOUT to send again */
    uint8_t pollout_on;       /* a POLLOUT poll is queued */
    uint8_t sniff;            /* the first bytes are still to be looked at (TLS, h2c) */
    uint8_t draining;         /* a graceful stop: answers carry Connection: close */
    uint8_t mproto;           /* the protocol it is counted under (admin/metrics.h) */
    loom__listener *l;        /* the listener it came from */
    loom__conn_tls *tls;      /* NULL: plaintext */
    const loom__proto *proto; /* NULL: HTTP/1.1 */
    void *pdata;              /* the protocol's per-connection state */
    /* A 101 was answered while a read was being processed: the protocol
     * takes over at the end of that batch (loom_req.take_over). */
    void (*take_over)(loom__conn *c, void *arg);
    void *take_over_arg;
    int file_fd; /* owned while sending */
    uint64_t file_off, file_left;
    size_t file_pre; /* bytes at the front of pend that go before the file (its head) */
    union {
        struct sockaddr sa;
        struct sockaddr_in in4;
        struct sockaddr_in6 in6;
    } peer;
};

/* Takes over `fd`, a connection just accepted from listener `l`
 * (non-blocking, close-on-exec), with its peer address. Closes the fd itself
 * when it cannot serve it. */
void loom__conn_accept(loom__worker *w, loom__listener *l, int fd, const struct sockaddr *peer,
                       socklen_t peer_len);
/* Closes the connection now (aborting its request, if any). */
void loom__conn_close(loom__conn *c);
/* Whether the connection is between requests with nothing buffered. */
int loom__conn_idle(const loom__conn *c);
/* A graceful stop reached the connection: an idle one closes now, a busy
 * HTTP/1.1 one closes after its response (which says Connection: close),
 * another protocol is told (proto->on_stop). */
void loom__conn_drain(loom__conn *c);

/* ---- for protocols (server/proto.h) ---- */

/* Hands the connection to protocol `p` with its state `pdata`. Bytes that
 * arrived after the last HTTP/1.1 request (c->in) go to p->on_data at once.
 * Deadlines become the protocol's (on_sweep). */
void loom__conn_set_proto(loom__conn *c, const loom__proto *p, void *pdata);
/* Where to append bytes to send. Valid until the next call on c. */
loom__buf *loom__conn_outbuf(loom__conn *c);
/* Sends what was appended (encrypted first on TLS), or schedules it for the
 * end of the current batch of reads. */
void loom__conn_flush(loom__conn *c);
/* Bytes appended but not taken by the socket yet (for backpressure). */
size_t loom__conn_queued(const loom__conn *c);
/* Stops (1) or resumes (0) reading from the peer. */
void loom__conn_pause(loom__conn *c, int paused);
/* Ends the connection once everything queued is sent (TLS: with a
 * close_notify), then closes it. */
void loom__conn_end(loom__conn *c);
/* Whether the connection came over TLS; its TLS state or NULL. */
const loom__conn_tls *loom__conn_tls_of(const loom__conn *c);
/* Acts on expired deadlines of every connection. */
void loom__conn_sweep(loom__worker *w);
/* io_uring backend: a completion for a connection (`ud` as queued, see
 * server/uring.h), with the CQE's result and flags. */
void loom__conn_complete(loom__worker *w, uint64_t ud, int res, uint32_t flags);
/* io_uring backend: frees the closed connections whose operations all ended. */
void loom__conn_reap(loom__worker *w);

#endif
