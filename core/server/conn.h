/* A client connection: reads, parses, dispatches requests one at a time in
 * order, writes the responses, and enforces the timeouts. */
#ifndef LOOM_SERVER_CONN_H
#define LOOM_SERVER_CONN_H

#include <netinet/in.h>
#include <sys/socket.h>

#include "server/server.h"

enum { T_NONE, T_IDLE, T_REQUEST, T_WRITE, T_LINGER };

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
    uint8_t rops;       /* operations whose last completion has not come */
    uint8_t recv_on;    /* the multishot recv is armed */
    uint8_t recv_stop;  /* ... and its cancel is queued (paused) */
    uint8_t send_on;    /* a send of wq is queued */
    uint8_t send_wait;  /* that send said EAGAIN: waiting for POLLOUT to send again */
    uint8_t pollout_on; /* a POLLOUT poll is queued */
    int file_fd;        /* owned while sending */
    uint64_t file_off, file_left;
    size_t file_pre; /* bytes at the front of pend that go before the file (its head) */
    union {
        struct sockaddr sa;
        struct sockaddr_in in4;
        struct sockaddr_in6 in6;
    } peer;
};

/* Takes over `fd`, a connection just accepted from the worker's listener
 * (non-blocking, close-on-exec), with its peer address. Closes the fd itself
 * when it cannot serve it. */
void loom__conn_accept(loom__worker *w, int fd, const struct sockaddr *peer, socklen_t peer_len);
/* Closes the connection now (aborting its request, if any). */
void loom__conn_close(loom__conn *c);
/* Whether the connection is between requests with nothing buffered. */
int loom__conn_idle(const loom__conn *c);
/* Acts on expired deadlines of every connection. */
void loom__conn_sweep(loom__worker *w);
/* io_uring backend: a completion for a connection (`ud` as queued, see
 * server/uring.h), with the CQE's result and flags. */
void loom__conn_complete(loom__worker *w, uint64_t ud, int res, uint32_t flags);
/* io_uring backend: frees the closed connections whose operations all ended. */
void loom__conn_reap(loom__worker *w);

#endif
