/* The life of batches and transactions: how a batch waits for a
 * connection, how it ends (callback or dropped), and what happens when its
 * client leaves or its request is done first. */
#define _GNU_SOURCE /* strdup */
#include "pg_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FREE_BATCHES 64

/* ---- allocation -------------------------------------------------------- */

loom_pg_batch *pg__batch_new(pg_pool *p, loom_req *req, loom_pg_tx *tx, int kind)
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

void pg__tx_maybe_free(loom_pg_tx *tx)
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
        pg__tx_maybe_free(tx);
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
    pg__tx_maybe_free(tx);
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
            if (c->state == C_READY && !c->tx && !pg__conn_cancelling(c) &&
                c->nbatches < p->depth && (!best || c->nbatches < best->nbatches))
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
        loom_pg_batch *b = pg__batch_new(p, NULL, tx, BK_ROLLBACK);
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
    pg__tx_maybe_free(tx);
}

static void on_watch(loom_req *req, int32_t ev, void *ud)
{
    pg_ticket *t = ud;
    (void)req;
    if (ev == LOOM_REQ_ABORTED) t->gone = 1;
    if (t->b) batch_let_go(t, ev);
    if (t->tx) tx_let_go(t, ev);
}

pg_ticket *pg__ticket_for(loom_req *req)
{
    pg_ticket *t = loom_req_alloc(req, sizeof *t);
    if (!t) return NULL;
    memset(t, 0, sizeof *t);
    int32_t rc = loom_req_watch(req, on_watch, t);
    if (rc == LOOM_OK) return t;
    return NULL; /* registered for DONE only when the client left: harmless */
}
