/* One worker: a libuv loop, a listener, its connections and their timers.
 *
 * A worker is self-contained: `loom serve --single` runs one in the main
 * process, and the supervisor (master) forks N of them. Everything here runs
 * on the worker's loop thread. */
#ifndef LOOM_SERVER_SERVER_H
#define LOOM_SERVER_SERVER_H

#include <stdint.h>
#include <uv.h>

#include "http/parser.h"
#include "util/buf.h"
#include "util/config.h"

typedef struct loom__conn loom__conn;
typedef struct loom__worker loom__worker;
typedef struct loom__access_log loom__access_log;
typedef struct loom__uring loom__uring;

/* Called for each complete request. The handler answers now or later with
 * loom__req_finish; the request is the handler's until then. */
typedef void (*loom__handler)(loom__worker *w, loom_req *r);
/* Called when the client of an unfinished request went away. */
typedef void (*loom__abort_fn)(loom__worker *w, loom_req *r);

/* One of the worker's listening sockets. */
typedef struct loom__listener {
    uv_poll_t poll; /* readiness of fd; accept4 takes the connections */
    int fd;         /* owned: closed when the worker stops listening */
    int index;      /* in cfg->listen */
    const loom__listen_cfg *cfg;
    loom__worker *w;
} loom__listener;

struct loom__worker {
    uv_loop_t *loop;
    const loom__config *cfg;
    loom__limits limits;
    int id;
    loom__listener ls[LOOM__MAX_LISTEN];
    int nls;
    int spare_fd;         /* held open to be given up when accept hits the fd limit */
    uint64_t shed_logged; /* when that was last logged (at most once a second) */
    int listening;
    uv_timer_t sweep;
    uv_timer_t shutdown_timer;
    uv_signal_t sig[5];
    loom__conn *conns; /* doubly linked list */
    size_t nconns;
    uint64_t requests; /* served, for stats */
    int draining;
    int stopping;
    int exit_code;

    loom__buf out;                /* response bytes being gathered for one connection */
    loom__conn *out_conn;         /* whose bytes `out` holds */
    loom__conn *batch;            /* connection whose read is being processed */
    char readbuf[65536];          /* shared by all connections: one read at a time */
    loom__uring *ring;            /* connection I/O on io_uring (server/uring.h); NULL: epoll */
    struct loom__tls_server *tls; /* TLS contexts (tls/server.h); NULL without TLS listeners */
    char *plain;                  /* TLS: one record of decrypted bytes at a time (16 KiB) */
    char *scratch;                /* TLS: a file chunk on its way to encryption (64 KiB) */
    struct loom__tls_watch *tls_watch; /* reloads certificates when their files change */
    loom__conn *dead;                  /* closed, freed once their ring operations end */

    loom__access_log *access_log;
    struct loom__mworker *metrics; /* admin/metrics.h; NULL: metrics are off */
    loom__handler handle_admin;    /* requests that came on the admin listener */
    /* SIGHUP and SIGUSR1, before the worker's own handling of them. */
    void (*on_ops_signal)(loom__worker *w, int signum);
    loom__handler handle;
    loom__abort_fn on_abort;
    void (*on_sighup)(loom__worker *w);
    void (*on_stopped)(loom__worker *w);
    /* A graceful stop begins (before idle connections close): long-lived
     * responses such as event streams end themselves here. */
    void (*on_drain)(loom__worker *w);
    void *host; /* plugin host state */
};

/* Prepares a worker on `loop` that will serve with `cfg` (which must outlive
 * it). `fds` holds one bound, listening socket per cfg->listen entry, which
 * the worker owns from now on (it closes them, on failure too). The caller zeroes `w` and may set
 * the hooks (handle, on_abort, on_sighup, on_stopped, access_log) before or after. Returns 0 or a
 * negative uv error, with the reason logged. */
int loom__worker_init(loom__worker *w, uv_loop_t *loop, const loom__config *cfg, const int *fds,
                      int id);
/* Runs the loop until a graceful stop finishes. Returns the exit status. */
int loom__worker_run(loom__worker *w);
/* Runs one turn of the worker's loop without waiting, whichever backend its
 * connections use (tests and fuzzers drive a worker turn by turn). */
void loom__worker_poll(loom__worker *w);
/* Starts a graceful stop: stop accepting, close idle connections, let
 * requests in flight finish within shutdown_timeout. */
void loom__worker_drain(loom__worker *w);
/* Stops accepting connections and closes the listening sockets (a worker
 * that will not serve: its start was given up). */
void loom__worker_stop_listening(loom__worker *w);

/* Called by a connection's close callback: ends a drain after the last one. */
void loom__worker_conn_closed(loom__worker *w);

/* Finishes the response of `r`: writes it to its connection (if still there)
 * and releases the request. The request must not be used afterwards. */
void loom__req_finish(loom_req *r);
/* Sends the head of a streaming (chunked) response. Returns 0 or -1. */
int loom__req_stream_head(loom_req *r);
/* Sends one chunk of a streaming response. Returns 0 or -1 (gone). */
int loom__req_stream_write(loom_req *r, const void *data, size_t len);
/* Response bytes of the request's connection that its socket has not taken
 * yet (queued behind a write, or in flight); 0 when the connection is gone.
 * Event streams bound what waits for a slow client with it. */
size_t loom__req_queued(const loom_req *r);
/* The peer address of the request's connection as text ("-" when gone). */
const char *loom__req_remote(const loom_req *r, char *buf, size_t len);
/* One fact (LOOM_TLS_* of loom.h) about the TLS connection of `r`, written
 * into buf; NULL when r did not come over TLS, the fact is not known, or
 * the connection is gone. */
const char *loom__req_tls_info(const loom_req *r, int what, char *buf, size_t len);
/* The worker that a live request belongs to, or NULL when its connection is gone. */
loom__worker *loom__req_worker(const loom_req *r);

#endif
