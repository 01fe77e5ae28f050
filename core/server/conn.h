/* A client connection: reads, parses, dispatches requests one at a time in
 * order, writes the responses, and enforces the timeouts. */
#ifndef LOOM_SERVER_CONN_H
#define LOOM_SERVER_CONN_H

#include <netinet/in.h>

#include "server/server.h"

enum { T_NONE, T_IDLE, T_REQUEST, T_WRITE, T_LINGER };

struct loom__conn {
    uv_tcp_t tcp;
    loom__parser parser;
    loom__worker *w;
    loom__conn *prev, *next;
    loom__buf in;     /* bytes kept between reads: a partial head, or unparsed requests */
    size_t in_parsed; /* how many bytes at the front of `in` the parser has seen */
    loom_req *active; /* handed to a handler and not finished */
    loom__buf pend;   /* response bytes queued behind a write in flight */
    uint64_t deadline, req_start, last_io;
    uint32_t nreq;
    uint8_t kind;
    uint8_t writing, closing, lingering, closed, paused;
    uint8_t sending; /* a file body is being sent (sendfile, or pread + write) */
    int file_fd;     /* owned while sending */
    uint64_t file_off, file_left;
    size_t file_pre; /* bytes at the front of pend that go before the file (its head) */
    union {
        struct sockaddr sa;
        struct sockaddr_in in4;
        struct sockaddr_in6 in6;
    } peer;
};

/* Accepts one connection from the worker's listener. */
void loom__conn_accept(loom__worker *w);
/* Closes the connection now (aborting its request, if any). */
void loom__conn_close(loom__conn *c);
/* Whether the connection is between requests with nothing buffered. */
int loom__conn_idle(const loom__conn *c);
/* Acts on expired deadlines of every connection. */
void loom__conn_sweep(loom__worker *w);

#endif
