/*
 * pg.h -- the "pg" service: PostgreSQL for plugins, without blocking the loop.
 *
 * The pg plugin (plugins/pg) offers this service; other plugins look it up
 * per request (loom_pg) and send queries in batches. Everything runs on the
 * worker's loop: libpq in non-blocking pipeline mode, one pool of
 * connections per worker, prepared statements cached per connection. There
 * is no way to build SQL from values: every value is a parameter ($1, $2,
 * ...).
 *
 *     static void got(loom_req *req, const loom_pg_result *res, void *ud)
 *     {
 *         const loom_pg_api *pg = ud;
 *         int64_t n;
 *         if (pg->error(res)) { loom_pg_resp_error(req, pg, res); return; }
 *         pg->get_int(res, 0, 0, 0, &n);
 *         ...answer...
 *     }
 *     static int32_t handler(loom_req *req, void *ud)
 *     {
 *         const loom_pg_api *pg = loom_pg(req);
 *         loom_pg_batch *b = pg ? pg->batch(req, NULL) : NULL;
 *         loom_pg_value id = loom_pg_int(42);
 *         if (!b || pg->query(b, "SELECT randomnumber FROM world WHERE id = $1", &id, 1) ||
 *             pg->send(b, got, (void *)pg))
 *             return loom_resp_error(req, 503, "database unavailable");
 *         return LOOM_PENDING;
 *     }
 *
 * Rules:
 *  - A batch is a list of queries sent together (libpq pipeline mode: one
 *    round trip) and run in order as one implicit transaction: if one fails,
 *    the ones before it are rolled back and the ones after it do not run.
 *  - Its callback runs exactly once per successful send, on the loop thread,
 *    never inside send itself -- unless the request is answered first: then
 *    the batch is dropped (a running query is cancelled on the server) and
 *    the callback never runs. If the request's client leaves, the callback
 *    runs at once with LOOM_PG_E_CANCELLED and the server-side query is
 *    cancelled (on the thread pool: PQcancel would block the loop).
 *  - A batch, a transaction and a result belong to their request: handles
 *    are invalid once the request is done, a result once its callback
 *    returns (copy what you keep).
 *  - A transaction (tx_begin) holds one connection for the request from its
 *    first batch to its commit or rollback; a request that ends with a
 *    transaction still open has it rolled back.
 *  - Errors: query text and SQLSTATE go to the server log (warn); answer the
 *    client with loom_pg_resp_error, which says neither.
 */
#ifndef LOOM_PG_H
#define LOOM_PG_H

#include <loom/loom.h>

#ifdef __cplusplus
extern "C" {
#endif

#define LOOM_PG_SERVICE "pg"
#define LOOM_PG_VERSION 1

typedef struct loom_pg_batch loom_pg_batch;
typedef struct loom_pg_tx loom_pg_tx;
typedef struct loom_pg_result loom_pg_result;

/* Parameter types (loom_pg_value.type). */
#define LOOM_PG_NULL 0  /* SQL NULL */
#define LOOM_PG_INT 1   /* .i, sent as int8 */
#define LOOM_PG_FLOAT 2 /* .f, sent as float8 */
#define LOOM_PG_BOOL 3  /* .i != 0, sent as bool */
#define LOOM_PG_TEXT 4  /* .p/.len, UTF-8 without NUL; the server infers its type */
#define LOOM_PG_BYTES 5 /* .p/.len, sent as bytea (binary) */

/* A parameter value. Build it with loom_pg_int(), loom_pg_text(), ...;
 * the bytes it points to are copied by query(). */
typedef struct loom_pg_value {
    int32_t type;
    uint32_t len;
    int64_t i;
    double f;
    const void *p;
} loom_pg_value;

/* What a batch came to (loom_pg_api.error). */
#define LOOM_PG_OK 0
#define LOOM_PG_E_UNAVAILABLE (-1) /* the database cannot be reached (down, or in back-off) */
#define LOOM_PG_E_TIMEOUT (-2)     /* no connection was free before the queue deadline */
#define LOOM_PG_E_BUSY (-3)        /* the queue of waiting batches is full */
#define LOOM_PG_E_CONNECTION (-4)  /* the connection broke during the batch: outcome unknown */
#define LOOM_PG_E_QUERY (-5)       /* the server refused a query: see sqlstate() */
#define LOOM_PG_E_CANCELLED (-6)   /* the request's client left; the query was cancelled */
#define LOOM_PG_E_STOPPING (-7)    /* the pool is closing (plugin unloading) */

/* Transaction flags (tx_begin). */
#define LOOM_PG_TX_READ_ONLY 1u
#define LOOM_PG_TX_REPEATABLE_READ 2u
#define LOOM_PG_TX_SERIALIZABLE 4u

/* Runs once when a batch is done (see the rules above). */
typedef void (*loom_pg_fn)(loom_req *req, const loom_pg_result *res, void *ud);

/* The service table (version 1). Check LOOM_SERVICE_HAS for entries added
 * after the version you asked for. Query indexes q count the queries of a
 * batch from 0; rows and columns from 0. */
typedef struct loom_pg_api {
    uint32_t size;
    uint32_t reserved;

    /* A new batch for `req`, on transaction `tx` (or NULL: any pooled
     * connection). NULL when out of memory, when the request's client has
     * left, or when tx is committed or rolled back. */
    loom_pg_batch *(*batch)(loom_req *req, loom_pg_tx *tx);
    /* Adds a query: `sql` with $1..$n placeholders and n = nparams values
     * (both copied). Returns its index q (>= 0), or LOOM_EINVAL (empty sql,
     * a TEXT value with a NUL byte, bad type), LOOM_ELIMIT (too many queries
     * in the batch: the pool's max_batch), LOOM_ESTATE (already sent). */
    int32_t (*query)(loom_pg_batch *b, const char *sql, const loom_pg_value *params,
                     uint32_t nparams);
    /* Sends the batch; fn runs later (see the rules). Returns 0, or
     * LOOM_EINVAL (no query, or fn NULL), LOOM_EGONE (the client left),
     * LOOM_ESTATE (sent already, or its tx has ended); fn never runs then.
     * Either way `b` must not be used afterwards. */
    int32_t (*send)(loom_pg_batch *b, loom_pg_fn fn, void *ud);

    /* Starts a transaction for `req` (no I/O yet: BEGIN goes out with its
     * first batch). NULL when out of memory or the client has left. */
    loom_pg_tx *(*tx_begin)(loom_req *req, uint32_t flags);
    /* Ends it; fn runs once with the outcome (LOOM_PG_E_QUERY, SQLSTATE
     * 25P02, when an earlier query failed and the server rolled back). The
     * connection goes back to the pool. Returns like send. */
    int32_t (*tx_commit)(loom_pg_tx *tx, loom_pg_fn fn, void *ud);
    int32_t (*tx_rollback)(loom_pg_tx *tx, loom_pg_fn fn, void *ud);

    /* Results, valid during the callback. LOOM_PG_OK or a LOOM_PG_E_*. */
    int32_t (*error)(const loom_pg_result *r);
    /* The five-character SQLSTATE of the failure ("" if none). */
    const char *(*sqlstate)(const loom_pg_result *r);
    /* A one-line description of the failure ("" if none); for the log. */
    const char *(*message)(const loom_pg_result *r);
    /* The index of the query that failed, or -1. */
    int32_t (*failed_query)(const loom_pg_result *r);
    uint32_t (*nqueries)(const loom_pg_result *r);
    /* Rows and columns of query q (0 when it returned none or did not run). */
    uint32_t (*nrows)(const loom_pg_result *r, uint32_t q);
    uint32_t (*ncols)(const loom_pg_result *r, uint32_t q);
    const char *(*col_name)(const loom_pg_result *r, uint32_t q, uint32_t col);
    /* The column's type OID (23 int4, 20 int8, 25 text, 1043 varchar, ...). */
    uint32_t (*col_type)(const loom_pg_result *r, uint32_t q, uint32_t col);
    /* 1 when the value is SQL NULL (or out of range), else 0. */
    int32_t (*is_null)(const loom_pg_result *r, uint32_t q, uint32_t row, uint32_t col);
    /* The value as text (PostgreSQL's text output), NUL-terminated; NULL for
     * SQL NULL or out of range. */
    const char *(*text)(const loom_pg_result *r, uint32_t q, uint32_t row, uint32_t col,
                        size_t *len);
    /* Typed values: 0, or LOOM_ENOTFOUND (NULL or out of range) or
     * LOOM_EINVAL (not that type). */
    int32_t (*get_int)(const loom_pg_result *r, uint32_t q, uint32_t row, uint32_t col,
                       int64_t *out);
    int32_t (*get_float)(const loom_pg_result *r, uint32_t q, uint32_t row, uint32_t col,
                         double *out);
    int32_t (*get_bool)(const loom_pg_result *r, uint32_t q, uint32_t row, uint32_t col,
                        int32_t *out);
    /* Rows an INSERT/UPDATE/DELETE touched (-1 when not known). */
    int64_t (*affected)(const loom_pg_result *r, uint32_t q);
} loom_pg_api;

/* The pg service of the request's snapshot, or NULL (the pg plugin is not
 * loaded). Valid until the request is done. */
static inline const loom_pg_api *loom_pg(loom_req *req)
{
    return (const loom_pg_api *)loom_service_get(req, LOOM_PG_SERVICE, LOOM_PG_VERSION, NULL);
}

/* Parameter values. */
static inline loom_pg_value loom_pg_int(int64_t v)
{
    loom_pg_value x = {LOOM_PG_INT, 0, v, 0, 0};
    return x;
}
static inline loom_pg_value loom_pg_float(double v)
{
    loom_pg_value x = {LOOM_PG_FLOAT, 0, 0, v, 0};
    return x;
}
static inline loom_pg_value loom_pg_bool(int v)
{
    loom_pg_value x = {LOOM_PG_BOOL, 0, v != 0, 0, 0};
    return x;
}
static inline loom_pg_value loom_pg_textn(const char *s, uint32_t len)
{
    loom_pg_value x = {LOOM_PG_TEXT, len, 0, 0, s};
    return x;
}
static inline loom_pg_value loom_pg_text(const char *s)
{
    uint32_t n = 0;
    while (s[n]) n++;
    return loom_pg_textn(s, n);
}
static inline loom_pg_value loom_pg_bytes(const void *p, uint32_t len)
{
    loom_pg_value x = {LOOM_PG_BYTES, len, 0, 0, p};
    return x;
}
static inline loom_pg_value loom_pg_null(void)
{
    loom_pg_value x = {LOOM_PG_NULL, 0, 0, 0, 0};
    return x;
}

/* The HTTP status for a batch outcome: 503 when the database could not
 * serve it (down, busy, connection lost, cancelled, stopping), 500 for a
 * refused query, 200 for LOOM_PG_OK. */
static inline int32_t loom_pg_http_status(int32_t err)
{
    if (err == LOOM_PG_OK) return 200;
    return err == LOOM_PG_E_QUERY ? 500 : 503;
}
/* Answers the request with the status above and a message that gives away
 * nothing of the query (its details are in the server log). */
static inline int32_t loom_pg_resp_error(loom_req *req, const loom_pg_api *pg,
                                         const loom_pg_result *r)
{
    int32_t st = loom_pg_http_status(pg->error(r));
    return loom_resp_error(req, st == 200 ? 500 : st,
                           st == 503 ? "database unavailable" : "database error");
}

#ifdef __cplusplus
}
#endif
#endif /* LOOM_PG_H */
