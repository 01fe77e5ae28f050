/* The pg plugin's insides: one pool per worker (this instance), its
 * connections, batches and transactions. Everything runs on the loop thread
 * except PQcancel, which runs on the thread pool.
 *
 * Ownership: batches and transactions are malloc'd by the pool, not in the
 * request, because a batch the request has let go of may still have results
 * coming on a connection. A request reaches them through small "tickets" in
 * its arena (watched with loom_req_watch); a ticket is cleared when what it
 * points to is freed. */
#ifndef LOOM_PG_INT_H
#define LOOM_PG_INT_H

#include <loom/loom.h>
#include <loom/pg.h>

#include <libpq-fe.h>
#include <stdint.h>

typedef struct pg_conn pg_conn;
typedef struct pg_pool pg_pool;

/* What a connection expects next from the server, in order. */
enum { PEND_PREPARE, PEND_EXEC, PEND_SYNC };
typedef struct {
    uint8_t kind;
    uint32_t q;    /* EXEC/PREPARE: the batch's query index, UINT32_MAX for BEGIN */
    uint32_t stmt; /* PREPARE: the statement id */
    loom_pg_batch *b;
} pg_pend;

typedef struct {
    uint32_t sql_off, sql_len; /* in the batch's buffer */
    uint32_t par_off, npar;    /* parameters, serialised in the buffer */
    uint32_t stmt;             /* statement id, or UINT32_MAX: not cached */
    char tsig[8];              /* parameter types, when npar <= 8 */
    PGresult *res;
} pg_query;

/* A request's handle on a batch or transaction (in the request's arena). */
typedef struct {
    loom_pg_batch *b;
    loom_pg_tx *tx;
    int gone; /* the client left */
} pg_ticket;

enum { B_BUILD, B_QUEUED, B_WAIT_TX, B_SENT, B_DONE };
enum { BK_USER, BK_COMMIT, BK_ROLLBACK };

struct loom_pg_batch {
    pg_pool *pool;
    loom_req *req; /* NULL once detached: results are dropped, fn never runs */
    pg_ticket *ticket;
    loom_pg_tx *tx;
    pg_conn *conn;
    loom_pg_fn fn;
    void *ud;
    int state, kind;
    int32_t err, failed_q;
    char sqlstate[6];
    char *msg;
    uint64_t deadline; /* ms, while queued */
    pg_query *q;
    uint32_t nq, capq;
    char *buf;
    size_t len, cap;
    loom_pg_batch *next, *prev; /* the pool's queue, a tx's wait list, a done list */
};

enum { TX_NEW, TX_ACQUIRING, TX_OPEN, TX_ENDING, TX_ENDED, TX_FAILED };

struct loom_pg_tx {
    pg_pool *pool;
    loom_req *req; /* NULL once the request is done */
    pg_ticket *ticket;
    pg_conn *conn;
    uint32_t flags;
    int state;
    int32_t fail_err;                  /* TX_FAILED: what the later batches get */
    int ending;                        /* commit or rollback sent */
    uint32_t refs;                     /* batches that point to it */
    loom_pg_batch *waitq, *waitq_tail; /* sent before the connection was bound */
};

enum { C_CONNECTING, C_READY, C_DEAD };

struct pg_conn {
    pg_pool *pool;
    PGconn *pg;
    loom_io *io;
    int fd;    /* our dup of libpq's socket: the watcher's, closed by us */
    int pq_fd; /* libpq's socket, to notice when it changes while connecting */
    int state;
    int events; /* LOOM_IO_* watched */
    pg_pend *pend;
    uint32_t phead, ptail, pcap;
    uint32_t nbatches; /* batches in flight */
    loom_pg_tx *tx;    /* the transaction holding this connection */
    uint8_t *prepared; /* per statement id: prepared (or being prepared) here */
    uint32_t nprepared;
    uint64_t since;           /* ms: connect start, or idle since */
    struct pg_cancel *cancel; /* a PQcancel on the thread pool */
    /* ms at which the cancel is sent again (0: none due). A cancel that
     * reaches the backend before it has read the query is ignored by the
     * server, so it is repeated until the batches it was for are done. */
    uint64_t cancel_at;
    uint32_t cancel_tries;
    pg_conn *next, *prev; /* every connection */
    pg_conn *idle_next;   /* the idle stack */
    int idle;
};

struct pg_cancel {
    PGcancel *pc;
    pg_conn *conn; /* NULL once the connection is gone */
    pg_pool *pool;
    char err[256];
    int ok;
};

typedef struct {
    char *key; /* sql NUL type codes */
    size_t klen;
    uint32_t hash;
    uint32_t nparams;
} pg_stmt;

struct pg_pool {
    loom_plugin *self;
    /* config */
    const char **keys, **vals; /* PQconnectStartParams arrays (conninfo + ours) */
    char *target;              /* host:port/dbname, for log lines */
    uint32_t size, min_conns, max_queue, depth, max_batch, max_stmts;
    uint64_t connect_timeout, idle_timeout, queue_timeout, backoff_min, backoff_max;
    /* connections */
    pg_conn *conns;
    uint32_t nconns, nready, nconnecting;
    pg_conn *idle;
    uint32_t nidle;
    /* waiting batches */
    loom_pg_batch *qhead, *qtail;
    uint32_t nqueue;
    /* back-off */
    int down;
    uint32_t failures;
    uint64_t backoff, next_attempt;
    /* prepared statements: open addressing, ids index stmts */
    pg_stmt *stmts;
    uint32_t nstmts;
    uint32_t *slots;
    uint32_t nslots;
    /* callbacks to deliver on the next loop turn, never inside send */
    loom_pg_batch *later, *later_tail;
    loom_timer *later_timer, *tick;
    loom_pg_batch *free_batches;
    uint32_t nfree;
    int stopping;
    uint64_t served, failed;
    uint64_t saturated, saturated_logged; /* E_TIMEOUT/E_BUSY since the last log line */
};

extern pg_pool pg__pool;
extern const loom_pg_api pg__api;

uint64_t pg__now_ms(void);
/* libpq's messages span lines: one line, trimmed, into out. */
const char *pg__oneline(char *out, size_t outlen, const char *msg);
void pg__logf(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* pg.c: starts the pool (timer, min_connections) on first use. */
void pg__pool_start(void);

/* pool.c: connections */
void pg__conn_start(pg_pool *p);
void pg__conn_close(pg_conn *c, const char *why);
int pg__conn_dispatch(pg_conn *c, loom_pg_batch *b);
void pg__conn_fill(pg_conn *c);
void pg__pool_tick(pg_pool *p);
void pg__pool_close_all(pg_pool *p);
/* Starts a PQcancel of what runs on c, on the thread pool, repeated until
 * what runs there is done; c takes no new batch meanwhile. */
void pg__conn_cancel(pg_conn *c);
/* c is cancelling (a PQcancel running or due again): it takes no batch. */
int pg__conn_cancelling(const pg_conn *c);

/* batch.c: the life of batches and transactions */
loom_pg_batch *pg__batch_new(pg_pool *p, loom_req *req, loom_pg_tx *tx, int kind);
void pg__tx_maybe_free(loom_pg_tx *tx);
/* A ticket in req's arena, watched; NULL when the client left (or OOM). */
pg_ticket *pg__ticket_for(loom_req *req);
void pg__submit(loom_pg_batch *b);
void pg__finish(loom_pg_batch *b, int32_t err, const char *why);
void pg__deliver(loom_pg_batch *b);
void pg__batch_free(loom_pg_batch *b);
void pg__record_error(loom_pg_batch *b, const PGresult *r, int32_t q);
void pg__tx_conn_released(loom_pg_tx *tx);
void pg__tx_bound(loom_pg_tx *tx, pg_conn *c);
void pg__tx_fail(loom_pg_tx *tx, int32_t err, const char *why);
void pg__fail_queue(pg_pool *p, int32_t err, const char *why);
/* stmt.c: the statement id of (sql, parameter types), or UINT32_MAX. */
uint32_t pg__stmt_id(pg_pool *p, const char *sql, uint32_t sql_len, const char *types,
                     uint32_t npar);

/* result.c: the result entries of the service table. */
int32_t pg__res_error(const loom_pg_result *r);
const char *pg__res_sqlstate(const loom_pg_result *r);
const char *pg__res_message(const loom_pg_result *r);
int32_t pg__res_failed_query(const loom_pg_result *r);
uint32_t pg__res_nqueries(const loom_pg_result *r);
uint32_t pg__res_nrows(const loom_pg_result *r, uint32_t q);
uint32_t pg__res_ncols(const loom_pg_result *r, uint32_t q);
const char *pg__res_col_name(const loom_pg_result *r, uint32_t q, uint32_t col);
uint32_t pg__res_col_type(const loom_pg_result *r, uint32_t q, uint32_t col);
int32_t pg__res_is_null(const loom_pg_result *r, uint32_t q, uint32_t row, uint32_t col);
const char *pg__res_text(const loom_pg_result *r, uint32_t q, uint32_t row, uint32_t col,
                         size_t *len);
int32_t pg__res_get_int(const loom_pg_result *r, uint32_t q, uint32_t row, uint32_t col,
                        int64_t *out);
int32_t pg__res_get_float(const loom_pg_result *r, uint32_t q, uint32_t row, uint32_t col,
                          double *out);
int32_t pg__res_get_bool(const loom_pg_result *r, uint32_t q, uint32_t row, uint32_t col,
                         int32_t *out);
int64_t pg__res_affected(const loom_pg_result *r, uint32_t q);

#endif
