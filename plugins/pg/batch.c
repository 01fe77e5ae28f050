/* Batches and transactions: what a request builds and sends, how it waits
 * for a connection, how it ends (callback or dropped), and what happens
 * when its client leaves or the request is done first. */
#define _GNU_SOURCE /* getaddrinfo, strdup, F_DUPFD_CLOEXEC */
#include "pg_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FREE_BATCHES 64

/* ---- allocation -------------------------------------------------------- */

static loom_pg_batch *batch_new(pg_pool *p, loom_req *req, loom_pg_tx *tx, int kind)
{
    loom_pg_batch *b = p->free_batches;
    if (b) {
        p->free_batches = b->next;
        p->nfree--;
        pg_query *q = b->q;
        uint32_t capq = b->capq;
        char *buf = b->buf;
        size_t cap = b->cap;
        memset(b, 0, sizeof *b);
        b->q = q;
        b->capq = capq;
        b->buf = buf;
        b->cap = cap;
    } else {
        b = calloc(1, sizeof *b);
        if (!b) return NULL;
    }
    b->pool = p;
    b->req = req;
    b->tx = tx;
    b->kind = kind;
    b->failed_q = -1;
    if (tx) tx->refs++;
    return b;
}

static void tx_maybe_free(loom_pg_tx *tx)
{
    if (!tx->req && !tx->conn && tx->refs == 0) free(tx);
}

void pg__batch_free(loom_pg_batch *b)
{
    pg_pool *p = b->pool;
    for (uint32_t i = 0; i < b->nq; i++)
        if (b->q[i].res) PQclear(b->q[i].res);
    free(b->msg);
    if (b->ticket) b->ticket->b = NULL;
    loom_pg_tx *tx = b->tx;
    if (tx) {
        tx->refs--;
        tx_maybe_free(tx);
    }
    if (p->nfree < FREE_BATCHES && b->cap <= 65536 && b->capq <= 1024) {
        b->nq = 0;
        b->len = 0;
        b->next = p->free_batches;
        p->free_batches = b;
        p->nfree++;
        return;
    }
    free(b->q);
    free(b->buf);
    free(b);
}

static void clear_results(loom_pg_batch *b)
{
    for (uint32_t i = 0; i < b->nq; i++)
        if (b->q[i].res) {
            PQclear(b->q[i].res);
            b->q[i].res = NULL;
        }
}

/* ---- ending ------------------------------------------------------------ */

static void later_fire(loom_timer *t, void *ud)
{
    pg_pool *p = ud;
    (void)t;
    p->later_timer = NULL;
    loom_pg_batch *b = p->later;
    p->later = p->later_tail = NULL;
    while (b) {
        loom_pg_batch *n = b->next;
        b->next = NULL;
        pg__deliver(b);
        b = n;
    }
}

void pg__finish(loom_pg_batch *b, int32_t err, const char *why)
{
    pg_pool *p = b->pool;
    int was_queued = b->state == B_QUEUED;
    b->state = B_DONE;
    if (!b->err && err) {
        char line[300];
        b->err = err;
        free(b->msg);
        b->msg = strdup(pg__oneline(line, sizeof line, why));
        if (err == LOOM_PG_E_TIMEOUT || err == LOOM_PG_E_BUSY) {
            /* Saturation is worth a line, but not one per request. */
            uint64_t now = pg__now_ms();
            p->saturated++;
            if (now - p->saturated_logged >= 1000) {
                pg__logf(LOOM_LOG_WARN,
                         "pool exhausted: %llu request%s answered 503 (%s; %u connections, %u "
                         "waiting, queue_timeout_ms %llu, max_queue %u)",
                         (unsigned long long)p->saturated, p->saturated == 1 ? "" : "s", line,
                         p->nready, p->nqueue, (unsigned long long)p->queue_timeout, p->max_queue);
                p->saturated = 0;
                p->saturated_logged = now;
            }
        }
    }
    if (was_queued && b->tx && b->tx->state == TX_ACQUIRING) pg__tx_fail(b->tx, err, why);
    if (!b->req || p->stopping) {
        pg__deliver(b);
        return;
    }
    /* Never inside the caller's send: on the next loop turn. */
    b->next = NULL;
    if (p->later_tail)
        p->later_tail->next = b;
    else
        p->later = b;
    p->later_tail = b;
    if (!p->later_timer) p->later_timer = loom_timer_start(p->self, 0, 0, later_fire, p);
}

void pg__deliver(loom_pg_batch *b)
{
    pg_pool *p = b->pool;
    loom_req *req = b->req;
    if (b->ticket) b->ticket->b = NULL;
    b->ticket = NULL;
    b->req = NULL;
    if (req && b->fn) {
        if (b->err)
            p->failed++;
        else
            p->served++;
        b->fn(req, (const loom_pg_result *)b, b->ud);
    }
    pg__batch_free(b);
}

void pg__record_error(loom_pg_batch *b, const PGresult *r, int32_t q)
{
    if (b->err) return; /* the first failure is the one that counts */
    const char *st = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    const char *msg = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
    if (!msg) msg = PQresultErrorMessage(r);
    if (!st) st = "";
    /* The server ending the session (pg_terminate_backend, shutdown) or a
     * connection failure class: the database, not the query. */
    int conn = strncmp(st, "08", 2) == 0 || strcmp(st, "57P01") == 0 || strcmp(st, "57P02") == 0 ||
               strcmp(st, "57P03") == 0;
    b->err = conn ? LOOM_PG_E_CONNECTION : LOOM_PG_E_QUERY;
    snprintf(b->sqlstate, sizeof b->sqlstate, "%s", st);
    free(b->msg);
    b->msg = strdup(msg);
    if (b->msg)
        for (char *s = b->msg; *s; s++)
            if (*s == '\n' || *s == '\r') *s = ' ';
    b->failed_q = q;
    char sql[160];
    if (q < 0 || (uint32_t)q >= b->nq)
        snprintf(sql, sizeof sql, "BEGIN");
    else
        snprintf(sql, sizeof sql, "%s", b->buf + b->q[q].sql_off);
    for (char *s = sql; *s; s++)
        if (*s == '\n' || *s == '\r' || *s == '\t') *s = ' ';
    pg__logf(b->req ? LOOM_LOG_WARN : LOOM_LOG_DEBUG,
             "query failed: SQLSTATE %s: %s (query %d of %u: %s%s)", st, b->msg ? b->msg : "", q,
             b->nq, sql, strlen(sql) == sizeof sql - 1 ? "..." : "");
}

void pg__fail_queue(pg_pool *p, int32_t err, const char *why)
{
    while (p->qhead) {
        loom_pg_batch *b = p->qhead;
        p->qhead = b->next;
        p->nqueue--;
        b->next = b->prev = NULL;
        pg__finish(b, err, why);
    }
    p->qtail = NULL;
}

static void unqueue(pg_pool *p, loom_pg_batch *b)
{
    if (b->prev)
        b->prev->next = b->next;
    else
        p->qhead = b->next;
    if (b->next)
        b->next->prev = b->prev;
    else
        p->qtail = b->prev;
    b->next = b->prev = NULL;
    p->nqueue--;
}

/* ---- transactions ------------------------------------------------------ */

static void tx_unwait(loom_pg_tx *tx, loom_pg_batch *b)
{
    loom_pg_batch **pp = &tx->waitq;
    tx->waitq_tail = NULL;
    for (loom_pg_batch *x = tx->waitq; x; x = x->next) {
        if (x == b)
            *pp = x->next;
        else {
            pp = &x->next;
            tx->waitq_tail = x;
        }
    }
    b->next = NULL;
}

void pg__tx_fail(loom_pg_tx *tx, int32_t err, const char *why)
{
    tx->state = TX_FAILED;
    tx->fail_err = err;
    /* Finishing a batch may free tx (its last reference): take the list. */
    loom_pg_batch *b = tx->waitq;
    tx->waitq = tx->waitq_tail = NULL;
    while (b) {
        loom_pg_batch *n = b->next;
        b->next = NULL;
        pg__finish(b, err, why);
        b = n;
    }
}

void pg__tx_bound(loom_pg_tx *tx, pg_conn *c)
{
    while (tx->waitq && tx->conn == c) {
        loom_pg_batch *b = tx->waitq;
        tx->waitq = b->next;
        if (!tx->waitq) tx->waitq_tail = NULL;
        b->next = NULL;
        if (pg__conn_dispatch(c, b)) return;
    }
}

void pg__tx_conn_released(loom_pg_tx *tx)
{
    tx_maybe_free(tx);
}

/* ---- submitting --------------------------------------------------------- */

void pg__submit(loom_pg_batch *b)
{
    pg_pool *p = b->pool;
    loom_pg_tx *tx = b->tx;
    if (p->stopping) {
        pg__finish(b, LOOM_PG_E_STOPPING, "the pool is closing");
        return;
    }
    if (tx) {
        switch (tx->state) {
        case TX_OPEN:
            pg__conn_dispatch(tx->conn, b);
            return;
        case TX_ACQUIRING:
            b->state = B_WAIT_TX;
            b->next = NULL;
            if (tx->waitq_tail)
                tx->waitq_tail->next = b;
            else
                tx->waitq = b;
            tx->waitq_tail = b;
            return;
        case TX_NEW:
            tx->state = TX_ACQUIRING;
            break;
        default:
            pg__finish(b, tx->fail_err ? tx->fail_err : LOOM_PG_E_CONNECTION,
                       "the transaction's connection is gone");
            return;
        }
    }
    if (p->idle) {
        pg_conn *c = p->idle;
        pg__conn_dispatch(c, b);
        return;
    }
    if (!tx && p->depth > 1 && !p->qhead) {
        pg_conn *best = NULL;
        for (pg_conn *c = p->conns; c; c = c->next)
            if (c->state == C_READY && !c->tx && !c->cancel && c->nbatches < p->depth &&
                (!best || c->nbatches < best->nbatches))
                best = c;
        if (best) {
            pg__conn_dispatch(best, b);
            return;
        }
    }
    uint64_t now = pg__now_ms();
    if (p->down && p->nready == 0 && p->nconnecting == 0 && now < p->next_attempt) {
        pg__finish(b, LOOM_PG_E_UNAVAILABLE, "the database is unavailable (reconnecting)");
        return;
    }
    if (p->nqueue >= p->max_queue) {
        pg__finish(b, LOOM_PG_E_BUSY, "too many batches waiting for a connection");
        return;
    }
    b->state = B_QUEUED;
    b->deadline = now + p->queue_timeout;
    b->next = NULL;
    b->prev = p->qtail;
    if (p->qtail)
        p->qtail->next = b;
    else
        p->qhead = b;
    p->qtail = b;
    p->nqueue++;
    /* While the database is down, a single probe at a time. */
    if (p->nconns < p->size && p->nconnecting < p->nqueue && !(p->down && p->nconnecting))
        pg__conn_start(p);
}

/* ---- the request's side: tickets ---------------------------------------- */

/* Every batch on c belongs to a request that let it go: nobody waits for
 * what runs there, so stop it on the server. */
static void maybe_cancel(pg_conn *c)
{
    for (uint32_t i = c->phead; i != c->ptail; i++) {
        const pg_pend *e = &c->pend[i % c->pcap];
        if (e->kind == PEND_SYNC && e->b->req) return;
    }
    pg__conn_cancel(c);
}

static void batch_let_go(pg_ticket *t, int32_t ev)
{
    loom_pg_batch *b = t->b;
    pg_pool *p = b->pool;
    int tell = ev == LOOM_REQ_ABORTED;
    switch (b->state) {
    case B_BUILD:
        if (!tell) {
            b->req = NULL;
            pg__batch_free(b);
        }
        return;
    case B_QUEUED:
    case B_WAIT_TX:
        if (b->state == B_QUEUED)
            unqueue(p, b);
        else
            tx_unwait(b->tx, b);
        if (b->state == B_QUEUED && b->tx && b->tx->state == TX_ACQUIRING)
            pg__tx_fail(b->tx, LOOM_PG_E_CANCELLED, "the client left");
        b->state = B_DONE;
        b->err = LOOM_PG_E_CANCELLED;
        if (!tell) b->req = NULL;
        pg__deliver(b);
        return;
    case B_SENT: {
        /* b stays on its connection until its Sync, its results dropped;
         * the callback gets a result of its own, since b may be gone by
         * the time the callback returns (its connection closing meanwhile). */
        loom_req *req = b->req;
        loom_pg_fn fn = b->fn;
        void *fud = b->ud;
        t->b = NULL;
        b->ticket = NULL;
        b->req = NULL;
        clear_results(b);
        if (b->conn && b->conn->state == C_READY) maybe_cancel(b->conn);
        if (tell && fn) {
            loom_pg_batch gone;
            memset(&gone, 0, sizeof gone);
            gone.pool = p;
            gone.err = LOOM_PG_E_CANCELLED;
            gone.failed_q = -1;
            gone.msg = (char *)"the client left";
            p->failed++;
            fn(req, (const loom_pg_result *)&gone, fud);
        }
        return;
    }
    default:
        /* Done, waiting on the later list: an abort lets it be delivered
         * there; a finished request drops it. */
        if (!tell) {
            t->b = NULL;
            b->ticket = NULL;
            b->req = NULL;
        }
        return;
    }
}

static void tx_let_go(pg_ticket *t, int32_t ev)
{
    loom_pg_tx *tx = t->tx;
    pg_pool *p = tx->pool;
    if (ev != LOOM_REQ_DONE) return;
    t->tx = NULL;
    tx->ticket = NULL;
    tx->req = NULL;
    if (!tx->ending && tx->state == TX_OPEN && tx->conn && !p->stopping) {
        /* The request ended with its transaction open: roll it back, then
         * the connection goes back to the pool. */
        tx->refs++; /* a failing dispatch may drop every other reference */
        loom_pg_batch *b = batch_new(p, NULL, tx, BK_ROLLBACK);
        tx->ending = 1;
        if (b && pg__api.query(b, "ROLLBACK", NULL, 0) == 0) {
            b->fn = NULL;
            pg__conn_dispatch(tx->conn, b);
        } else {
            if (b) pg__batch_free(b);
            pg__conn_close(tx->conn, "out of memory rolling back a transaction");
        }
        tx->refs--;
    }
    tx_maybe_free(tx);
}

static void on_watch(loom_req *req, int32_t ev, void *ud)
{
    pg_ticket *t = ud;
    (void)req;
    if (ev == LOOM_REQ_ABORTED) t->gone = 1;
    if (t->b) batch_let_go(t, ev);
    if (t->tx) tx_let_go(t, ev);
}

static pg_ticket *ticket_for(loom_req *req)
{
    pg_ticket *t = loom_req_alloc(req, sizeof *t);
    if (!t) return NULL;
    memset(t, 0, sizeof *t);
    int32_t rc = loom_req_watch(req, on_watch, t);
    if (rc == LOOM_OK) return t;
    return NULL; /* registered for DONE only when the client left: harmless */
}

/* ---- the service entries ------------------------------------------------ */

static loom_pg_batch *api_batch(loom_req *req, loom_pg_tx *tx)
{
    if (!req) return NULL;
    if (tx && (tx->ending || tx->req != req)) return NULL;
    pg__pool_start();
    pg_ticket *t = ticket_for(req);
    if (!t) return NULL;
    loom_pg_batch *b = batch_new(&pg__pool, req, tx, BK_USER);
    if (!b) return NULL;
    t->b = b;
    b->ticket = t;
    return b;
}

static int grow(loom_pg_batch *b, size_t more)
{
    if (b->len + more <= b->cap) return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + more) cap *= 2;
    char *nb = realloc(b->buf, cap);
    if (!nb) return -1;
    b->buf = nb;
    b->cap = cap;
    return 0;
}

static int put(loom_pg_batch *b, const void *d, size_t n)
{
    if (grow(b, n)) return -1;
    memcpy(b->buf + b->len, d, n);
    b->len += n;
    return 0;
}

static int put_param(loom_pg_batch *b, char t, const void *d, int32_t len)
{
    char head[5];
    head[0] = t;
    memcpy(head + 1, &len, 4);
    if (put(b, head, 5)) return -1;
    if (len < 0) return 0;
    if (len > 0 && put(b, d, (size_t)len)) return -1;
    return put(b, "", 1);
}

/* Decimal text of v (no snprintf: this runs for every parameter). */
static int format_int(char *out, int64_t v)
{
    char tmp[24];
    int n = 0, o = 0;
    uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
    do {
        tmp[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0) out[o++] = '-';
    while (n) out[o++] = tmp[--n];
    out[o] = '\0';
    return o;
}

static int32_t api_query(loom_pg_batch *b, const char *sql, const loom_pg_value *params,
                         uint32_t nparams)
{
    if (!b || !sql || !*sql || (nparams && !params) || nparams > 65535) return LOOM_EINVAL;
    if (b->state != B_BUILD) return LOOM_ESTATE;
    pg_pool *p = b->pool;
    if (b->nq >= p->max_batch) return LOOM_ELIMIT;
    size_t sl = strlen(sql);
    if (sl > (1u << 30)) return LOOM_EINVAL;
    if (b->len > (1u << 30)) return LOOM_ELIMIT; /* offsets are 32-bit */
    if (b->nq == b->capq) {
        uint32_t nc = b->capq ? b->capq * 2 : 8;
        pg_query *nq = realloc(b->q, nc * sizeof *nq);
        if (!nq) return LOOM_ENOMEM;
        b->q = nq;
        b->capq = nc;
    }
    size_t mark = b->len;
    pg_query *q = &b->q[b->nq];
    memset(q, 0, sizeof *q);
    q->sql_len = (uint32_t)sl;
    /* A batch often repeats one statement (TFB's /queries): the text is
     * kept once, and its statement id found once. */
    const pg_query *prev = b->nq ? &b->q[b->nq - 1] : NULL;
    int same_sql = prev && prev->sql_len == sl && memcmp(b->buf + prev->sql_off, sql, sl) == 0;
    char types_local[64];
    char *types = nparams <= sizeof types_local ? types_local : malloc(nparams);
    if (!types) goto oom;
    if (same_sql) {
        q->sql_off = prev->sql_off;
    } else {
        q->sql_off = (uint32_t)b->len;
        if (put(b, sql, sl + 1)) goto oom;
    }
    q->par_off = (uint32_t)b->len;
    q->npar = nparams;
    for (uint32_t i = 0; i < nparams; i++) {
        const loom_pg_value *v = &params[i];
        char num[64];
        int n, rc;
        switch (v->type) {
        case LOOM_PG_NULL:
            types[i] = 'n';
            rc = put_param(b, 'n', NULL, -1);
            break;
        case LOOM_PG_INT:
            types[i] = 'i';
            n = format_int(num, v->i);
            rc = put_param(b, 'i', num, n);
            break;
        case LOOM_PG_FLOAT:
            types[i] = 'f';
            if (v->f != v->f)
                n = snprintf(num, sizeof num, "NaN");
            else if (v->f > 1.7976931348623157e308)
                n = snprintf(num, sizeof num, "Infinity");
            else if (v->f < -1.7976931348623157e308)
                n = snprintf(num, sizeof num, "-Infinity");
            else
                n = snprintf(num, sizeof num, "%.17g", v->f);
            rc = put_param(b, 'f', num, n);
            break;
        case LOOM_PG_BOOL:
            types[i] = 'b';
            rc = put_param(b, 'b', v->i ? "t" : "f", 1);
            break;
        case LOOM_PG_TEXT:
        case LOOM_PG_BYTES:
            if ((v->len && !v->p) || v->len > (1u << 30) ||
                (v->type == LOOM_PG_TEXT && v->len && memchr(v->p, 0, v->len))) {
                b->len = mark;
                if (types != types_local) free(types);
                return LOOM_EINVAL;
            }
            types[i] = v->type == LOOM_PG_TEXT ? 't' : 'x';
            rc = put_param(b, types[i], v->p, (int32_t)v->len);
            break;
        default:
            b->len = mark;
            if (types != types_local) free(types);
            return LOOM_EINVAL;
        }
        if (rc) goto oom;
    }
    if (nparams <= sizeof q->tsig) memcpy(q->tsig, types, nparams);
    if (same_sql && nparams <= sizeof q->tsig && prev->npar == nparams &&
        memcmp(prev->tsig, types, nparams) == 0)
        q->stmt = prev->stmt;
    else
        q->stmt = pg__stmt_id(p, sql, (uint32_t)sl, types, nparams);
    if (types != types_local) free(types);
    return (int32_t)b->nq++;
oom:
    b->len = mark;
    if (types && types != types_local) free(types);
    return LOOM_ENOMEM;
}

static void drop(loom_pg_batch *b)
{
    b->req = NULL;
    pg__batch_free(b);
}

static int32_t api_send(loom_pg_batch *b, loom_pg_fn fn, void *ud)
{
    if (!b) return LOOM_EINVAL;
    if (b->state != B_BUILD) return LOOM_ESTATE;
    int32_t rc = LOOM_OK;
    if (!fn || b->nq == 0)
        rc = LOOM_EINVAL;
    else if (b->ticket && b->ticket->gone)
        rc = LOOM_EGONE;
    else if (b->tx && (b->tx->ending || b->tx->state == TX_ENDED))
        rc = LOOM_ESTATE;
    if (rc) {
        drop(b);
        return rc;
    }
    b->fn = fn;
    b->ud = ud;
    pg__submit(b);
    return LOOM_OK;
}

static loom_pg_tx *api_tx_begin(loom_req *req, uint32_t flags)
{
    if (!req) return NULL;
    pg__pool_start();
    pg_ticket *t = ticket_for(req);
    loom_pg_tx *tx = t ? calloc(1, sizeof *tx) : NULL;
    if (!tx) return NULL;
    tx->pool = &pg__pool;
    tx->req = req;
    tx->flags = flags;
    tx->state = TX_NEW;
    tx->ticket = t;
    t->tx = tx;
    return tx;
}

static int32_t tx_end(loom_pg_tx *tx, int kind, loom_pg_fn fn, void *ud)
{
    if (!tx || !fn) return LOOM_EINVAL;
    if (tx->ending || !tx->req) return LOOM_ESTATE;
    if (tx->ticket && tx->ticket->gone) return LOOM_EGONE;
    pg_ticket *t = ticket_for(tx->req);
    loom_pg_batch *b = t ? batch_new(tx->pool, tx->req, tx, kind) : NULL;
    if (!b) return LOOM_ENOMEM;
    t->b = b;
    b->ticket = t;
    b->fn = fn;
    b->ud = ud;
    tx->ending = 1;
    if (tx->state == TX_NEW || tx->state == TX_FAILED) {
        /* Nothing was sent (nothing to end), or the connection is gone. */
        int32_t err = tx->state == TX_NEW ? LOOM_PG_OK : tx->fail_err;
        tx->state = tx->state == TX_NEW ? TX_ENDED : TX_FAILED;
        pg__finish(b, err, err ? "the transaction's connection is gone" : NULL);
        return LOOM_OK;
    }
    if (api_query(b, kind == BK_COMMIT ? "COMMIT" : "ROLLBACK", NULL, 0) < 0) {
        tx->ending = 0;
        drop(b);
        return LOOM_ENOMEM;
    }
    pg__submit(b);
    return LOOM_OK;
}

static int32_t api_tx_commit(loom_pg_tx *tx, loom_pg_fn fn, void *ud)
{
    return tx_end(tx, BK_COMMIT, fn, ud);
}

static int32_t api_tx_rollback(loom_pg_tx *tx, loom_pg_fn fn, void *ud)
{
    return tx_end(tx, BK_ROLLBACK, fn, ud);
}

/* ---- results ----------------------------------------------------------- */

#define B(r) ((const loom_pg_batch *)(r))

static int32_t api_error(const loom_pg_result *r)
{
    return B(r)->err;
}

static const char *api_sqlstate(const loom_pg_result *r)
{
    return B(r)->sqlstate;
}

static const char *api_message(const loom_pg_result *r)
{
    return B(r)->msg ? B(r)->msg : "";
}

static int32_t api_failed_query(const loom_pg_result *r)
{
    return B(r)->err ? B(r)->failed_q : -1;
}

static uint32_t api_nqueries(const loom_pg_result *r)
{
    return B(r)->nq;
}

static const PGresult *res_of(const loom_pg_result *r, uint32_t q)
{
    return q < B(r)->nq ? B(r)->q[q].res : NULL;
}

static uint32_t api_nrows(const loom_pg_result *r, uint32_t q)
{
    const PGresult *x = res_of(r, q);
    return x ? (uint32_t)PQntuples(x) : 0;
}

static uint32_t api_ncols(const loom_pg_result *r, uint32_t q)
{
    const PGresult *x = res_of(r, q);
    return x ? (uint32_t)PQnfields(x) : 0;
}

static const char *api_col_name(const loom_pg_result *r, uint32_t q, uint32_t col)
{
    const PGresult *x = res_of(r, q);
    return x && col < (uint32_t)PQnfields(x) ? PQfname(x, (int)col) : NULL;
}

static uint32_t api_col_type(const loom_pg_result *r, uint32_t q, uint32_t col)
{
    const PGresult *x = res_of(r, q);
    return x && col < (uint32_t)PQnfields(x) ? (uint32_t)PQftype(x, (int)col) : 0;
}

static const char *value(const loom_pg_result *r, uint32_t q, uint32_t row, uint32_t col,
                         size_t *len)
{
    const PGresult *x = res_of(r, q);
    if (!x || row >= (uint32_t)PQntuples(x) || col >= (uint32_t)PQnfields(x) ||
        PQgetisnull(x, (int)row, (int)col))
        return NULL;
    if (len) *len = (size_t)PQgetlength(x, (int)row, (int)col);
    return PQgetvalue(x, (int)row, (int)col);
}

static int32_t api_is_null(const loom_pg_result *r, uint32_t q, uint32_t row, uint32_t col)
{
    return value(r, q, row, col, NULL) == NULL;
}

static const char *api_text(const loom_pg_result *r, uint32_t q, uint32_t row, uint32_t col,
                            size_t *len)
{
    return value(r, q, row, col, len);
}

static int32_t api_get_int(const loom_pg_result *r, uint32_t q, uint32_t row, uint32_t col,
                           int64_t *out)
{
    const char *s = value(r, q, row, col, NULL);
    if (!s) return LOOM_ENOTFOUND;
    /* The hot path of every query result: parse by hand. */
    const char *p = s;
    int neg = *p == '-';
    if (neg || *p == '+') p++;
    if (!*p) return LOOM_EINVAL;
    uint64_t v = 0;
    for (; *p; p++) {
        if (*p < '0' || *p > '9') return LOOM_EINVAL;
        uint64_t d = (uint64_t)(*p - '0');
        if (v > (UINT64_MAX - d) / 10) return LOOM_EINVAL;
        v = v * 10 + d;
    }
    if (neg ? v > (uint64_t)INT64_MAX + 1 : v > (uint64_t)INT64_MAX) return LOOM_EINVAL;
    if (out) *out = neg ? (int64_t)(0 - v) : (int64_t)v;
    return LOOM_OK;
}

static int32_t api_get_float(const loom_pg_result *r, uint32_t q, uint32_t row, uint32_t col,
                             double *out)
{
    const char *s = value(r, q, row, col, NULL);
    if (!s) return LOOM_ENOTFOUND;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || *end || errno == ERANGE) return LOOM_EINVAL;
    if (out) *out = v;
    return LOOM_OK;
}

static int32_t api_get_bool(const loom_pg_result *r, uint32_t q, uint32_t row, uint32_t col,
                            int32_t *out)
{
    const char *s = value(r, q, row, col, NULL);
    if (!s) return LOOM_ENOTFOUND;
    if ((s[0] != 't' && s[0] != 'f') || s[1]) return LOOM_EINVAL;
    if (out) *out = s[0] == 't';
    return LOOM_OK;
}

static int64_t api_affected(const loom_pg_result *r, uint32_t q)
{
    const PGresult *x = res_of(r, q);
    const char *s = x ? PQcmdTuples((PGresult *)x) : "";
    if (!*s) return -1;
    return strtoll(s, NULL, 10);
}

const loom_pg_api pg__api = {
    .size = sizeof(loom_pg_api),
    .batch = api_batch,
    .query = api_query,
    .send = api_send,
    .tx_begin = api_tx_begin,
    .tx_commit = api_tx_commit,
    .tx_rollback = api_tx_rollback,
    .error = api_error,
    .sqlstate = api_sqlstate,
    .message = api_message,
    .failed_query = api_failed_query,
    .nqueries = api_nqueries,
    .nrows = api_nrows,
    .ncols = api_ncols,
    .col_name = api_col_name,
    .col_type = api_col_type,
    .is_null = api_is_null,
    .text = api_text,
    .get_int = api_get_int,
    .get_float = api_get_float,
    .get_bool = api_get_bool,
    .affected = api_affected,
};

/* ---- prepared statements ------------------------------------------------ */

uint32_t pg__stmt_id(pg_pool *p, const char *sql, uint32_t sql_len, const char *types,
                     uint32_t npar)
{
    if (!p->nslots) return UINT32_MAX;
    uint32_t h = 2166136261u;
    for (uint32_t i = 0; i < sql_len; i++) h = (h ^ (uint8_t)sql[i]) * 16777619u;
    h = (h ^ 0xff) * 16777619u;
    for (uint32_t i = 0; i < npar; i++) h = (h ^ (uint8_t)types[i]) * 16777619u;
    size_t klen = (size_t)sql_len + 1 + npar;
    uint32_t mask = p->nslots - 1;
    for (uint32_t i = h & mask;; i = (i + 1) & mask) {
        uint32_t s = p->slots[i];
        if (s == 0) {
            if (p->nstmts >= p->max_stmts) return UINT32_MAX; /* not cached: unnamed */
            char *key = malloc(klen);
            if (!key) return UINT32_MAX;
            memcpy(key, sql, sql_len);
            key[sql_len] = '\0';
            memcpy(key + sql_len + 1, types, npar);
            pg_stmt *st = &p->stmts[p->nstmts];
            *st = (pg_stmt){key, klen, h, npar};
            p->slots[i] = ++p->nstmts;
            return p->nstmts - 1;
        }
        const pg_stmt *st = &p->stmts[s - 1];
        if (st->hash == h && st->klen == klen && memcmp(st->key, sql, sql_len) == 0 &&
            st->key[sql_len] == '\0' && memcmp(st->key + sql_len + 1, types, npar) == 0)
            return s - 1;
    }
}
