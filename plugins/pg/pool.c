/* Connections of the pool: connect with PQconnectStart/PQconnectPoll, then
 * libpq in non-blocking pipeline mode, driven by a host watcher on a dup of
 * the socket (we close our dup ourselves, so libpq replacing its socket
 * while connecting never leaves a watcher on a closed descriptor).
 *
 * A connection runs batches in order. Each batch sends its statements
 * (prepare where the connection has not prepared it yet, then execute) and
 * one Sync; `pend` lists the results the connection still expects, so each
 * result goes to its batch and the Sync's marks the batch done. */
#define _GNU_SOURCE /* getaddrinfo, strdup, F_DUPFD_CLOEXEC */
#include "pg_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void on_io(loom_io *io, int32_t events, void *ud);

static void quiet_notice(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}

static int set_events(pg_conn *c, int ev)
{
    if (ev == c->events) return 0;
    c->events = ev;
    return loom_io_update(c->io, ev) ? -1 : 0;
}

/* Watches libpq's current socket through a dup of our own. */
static int watch_socket(pg_conn *c, int events)
{
    if (c->io) loom_io_stop(c->io);
    c->io = NULL;
    if (c->fd >= 0) close(c->fd);
    c->pq_fd = PQsocket(c->pg);
    c->fd = c->pq_fd >= 0 ? fcntl(c->pq_fd, F_DUPFD_CLOEXEC, 0) : -1;
    if (c->fd < 0) return -1;
    c->events = events;
    c->io = loom_io_start(c->pool->self, c->fd, events, on_io, c);
    return c->io ? 0 : -1;
}

static void idle_remove(pg_conn *c)
{
    pg_pool *p = c->pool;
    if (!c->idle) return;
    for (pg_conn **pp = &p->idle; *pp; pp = &(*pp)->idle_next)
        if (*pp == c) {
            *pp = c->idle_next;
            break;
        }
    c->idle = 0;
    c->idle_next = NULL;
    p->nidle--;
}

static int pend_push(pg_conn *c, int kind, uint32_t q, uint32_t stmt, loom_pg_batch *b)
{
    if (c->ptail - c->phead == c->pcap) {
        uint32_t ncap = c->pcap ? c->pcap * 2 : 64;
        pg_pend *np = malloc(ncap * sizeof *np);
        if (!np) return -1;
        for (uint32_t i = c->phead; i != c->ptail; i++)
            np[i - c->phead] = c->pend[i % (c->pcap ? c->pcap : 1)];
        free(c->pend);
        c->ptail -= c->phead;
        c->phead = 0;
        c->pend = np;
        c->pcap = ncap;
    }
    c->pend[c->ptail % c->pcap] = (pg_pend){(uint8_t)kind, q, stmt, b};
    c->ptail++;
    return 0;
}

void pg__conn_close(pg_conn *c, const char *why_raw)
{
    pg_pool *p = c->pool;
    if (c->state == C_DEAD) return;
    char line[300];
    const char *why = why_raw ? pg__oneline(line, sizeof line, why_raw) : NULL;
    int was_ready = c->state == C_READY;
    if (c->state == C_CONNECTING)
        p->nconnecting--;
    else
        p->nready--;
    c->state = C_DEAD;
    idle_remove(c);
    /* The batches still expecting results here fail, each through its Sync
     * entry (the last one a batch has; finishing may free it). */
    uint32_t failed = 0;
    for (uint32_t i = c->phead; i != c->ptail; i++) {
        if (c->pend[i % c->pcap].kind != PEND_SYNC) continue;
        loom_pg_batch *b = c->pend[i % c->pcap].b;
        b->conn = NULL;
        if (b->req) failed++;
        pg__finish(b, LOOM_PG_E_CONNECTION, why ? why : "connection closed");
    }
    if (c->tx) {
        loom_pg_tx *tx = c->tx;
        c->tx = NULL;
        tx->conn = NULL;
        tx->refs++; /* failing its waiting batches must not free it under us */
        pg__tx_fail(tx, LOOM_PG_E_CONNECTION, why ? why : "connection closed");
        tx->refs--;
        pg__tx_conn_released(tx);
    }
    if (c->cancel) c->cancel->conn = NULL;
    if (why && was_ready && !p->stopping)
        pg__logf(LOOM_LOG_WARN, "connection to %s lost (%s); %u batch%s failed", p->target, why,
                 failed, failed == 1 ? "" : "es");
    if (c->prev)
        c->prev->next = c->next;
    else
        p->conns = c->next;
    if (c->next) c->next->prev = c->prev;
    p->nconns--;
    if (c->io) loom_io_stop(c->io);
    if (c->fd >= 0) close(c->fd);
    PQfinish(c->pg);
    free(c->pend);
    free(c->prepared);
    free(c);
    /* Batches still waiting need a connection. */
    if (!p->stopping && p->qhead && p->nconnecting == 0 &&
        (!p->down || pg__now_ms() >= p->next_attempt))
        pg__conn_start(p);
}

/* The database could not be reached: back off, and if no connection is
 * left, the waiting batches fail now rather than at their deadline. */
static void connect_failed(pg_conn *c, const char *msg)
{
    pg_pool *p = c->pool;
    char line[300];
    pg__oneline(line, sizeof line, msg && *msg ? msg : "unknown error");
    p->failures++;
    p->down = 1;
    p->backoff = p->backoff ? p->backoff * 2 : p->backoff_min;
    if (p->backoff > p->backoff_max) p->backoff = p->backoff_max;
    /* Up to 1/4 less, so that the workers do not retry in step. */
    uint64_t jitter = p->backoff / 4 ? (pg__now_ms() * 2654435761u) % (p->backoff / 4) : 0;
    p->next_attempt = pg__now_ms() + p->backoff - jitter;
    if (p->failures == 1 || p->failures % 20 == 0)
        pg__logf(p->failures == 1 ? LOOM_LOG_ERROR : LOOM_LOG_WARN,
                 "cannot connect to %s: %s (attempt %u; next in %llu ms; requests get 503 "
                 "meanwhile)",
                 p->target, line, p->failures, (unsigned long long)(p->backoff - jitter));
    pg__conn_close(c, NULL);
    if (p->nready == 0 && p->nconnecting == 0) pg__fail_queue(p, LOOM_PG_E_UNAVAILABLE, line);
}

static void conn_ready(pg_conn *c)
{
    pg_pool *p = c->pool;
    if (PQsetnonblocking(c->pg, 1) != 0 || PQenterPipelineMode(c->pg) != 1) {
        connect_failed(c, PQerrorMessage(c->pg));
        return;
    }
    PQsetNoticeProcessor(c->pg, quiet_notice, NULL);
    c->prepared = calloc(p->max_stmts ? p->max_stmts : 1, 1);
    if (!c->prepared) {
        connect_failed(c, "out of memory");
        return;
    }
    c->nprepared = p->max_stmts;
    c->state = C_READY;
    p->nconnecting--;
    p->nready++;
    if (p->down)
        pg__logf(LOOM_LOG_INFO, "connected to %s after %u failed attempt%s", p->target, p->failures,
                 p->failures == 1 ? "" : "s");
    p->down = 0;
    p->failures = 0;
    p->backoff = 0;
    if (set_events(c, LOOM_IO_READ)) {
        pg__conn_close(c, "cannot watch the socket");
        return;
    }
    pg__conn_fill(c);
    /* More waiting than this connection will take: open another. */
    if (p->qhead && p->nconnecting == 0 && p->nconns < p->size) pg__conn_start(p);
}

void pg__conn_start(pg_pool *p)
{
    if (p->stopping || p->nconns >= p->size) return;
    pg_conn *c = calloc(1, sizeof *c);
    if (!c) return;
    c->pool = p;
    c->fd = -1;
    c->pq_fd = -1;
    c->state = C_CONNECTING;
    c->since = pg__now_ms();
    c->next = p->conns;
    if (p->conns) p->conns->prev = c;
    p->conns = c;
    p->nconns++;
    p->nconnecting++;
    c->pg = PQconnectStartParams(p->keys, p->vals, 0);
    if (!c->pg) {
        connect_failed(c, "out of memory");
        return;
    }
    if (PQstatus(c->pg) == CONNECTION_BAD) {
        connect_failed(c, PQerrorMessage(c->pg));
        return;
    }
    /* The documented start: as if PQconnectPoll had said "writing". */
    if (watch_socket(c, LOOM_IO_WRITE)) connect_failed(c, "cannot watch the socket");
}

static void connect_poll(pg_conn *c)
{
    PostgresPollingStatusType st = PQconnectPoll(c->pg);
    int ev = st == PGRES_POLLING_READING ? LOOM_IO_READ : LOOM_IO_WRITE;
    if (st == PGRES_POLLING_FAILED) {
        connect_failed(c, PQerrorMessage(c->pg));
        return;
    }
    if (PQsocket(c->pg) != c->pq_fd) {
        if (watch_socket(c, ev)) {
            connect_failed(c, "cannot watch the socket");
            return;
        }
    }
    if (st == PGRES_POLLING_OK) {
        conn_ready(c);
        return;
    }
    if (set_events(c, ev)) connect_failed(c, "cannot watch the socket");
}

/* Sends what libpq has buffered; watches for writability while some is
 * left. Returns -1 after closing c. */
static int flush(pg_conn *c)
{
    int f = PQflush(c->pg);
    if (f < 0) {
        pg__conn_close(c, PQerrorMessage(c->pg));
        return -1;
    }
    if (set_events(c, LOOM_IO_READ | (f ? LOOM_IO_WRITE : 0))) {
        pg__conn_close(c, "cannot watch the socket");
        return -1;
    }
    return 0;
}

static const char *begin_sql(uint32_t flags)
{
    if (flags & LOOM_PG_TX_SERIALIZABLE)
        return flags & LOOM_PG_TX_READ_ONLY ? "BEGIN ISOLATION LEVEL SERIALIZABLE READ ONLY"
                                            : "BEGIN ISOLATION LEVEL SERIALIZABLE";
    if (flags & LOOM_PG_TX_REPEATABLE_READ)
        return flags & LOOM_PG_TX_READ_ONLY ? "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"
                                            : "BEGIN ISOLATION LEVEL REPEATABLE READ";
    return flags & LOOM_PG_TX_READ_ONLY ? "BEGIN READ ONLY" : "BEGIN";
}

static uint32_t type_oid(char t)
{
    switch (t) {
    case 'i':
        return 20; /* int8 */
    case 'f':
        return 701; /* float8 */
    case 'b':
        return 16; /* bool */
    case 'x':
        return 17; /* bytea */
    default:
        return 0; /* let the server infer it (text, NULL) */
    }
}

/* "loom_<id>", the name a statement is prepared under on every connection. */
static void stmt_name(char out[24], uint32_t id)
{
    char tmp[12];
    int n = 0;
    memcpy(out, "loom_", 5);
    do {
        tmp[n++] = (char)('0' + id % 10);
        id /= 10;
    } while (id);
    char *p = out + 5;
    while (n) *p++ = tmp[--n];
    *p = '\0';
}

#define PG_STACK_PARAMS 16

/* Queues one query of b on c (prepare if needed, then execute). */
static int send_query(pg_conn *c, loom_pg_batch *b, uint32_t qi)
{
    pg_query *q = &b->q[qi];
    const char *sql = b->buf + q->sql_off;
    const char *values[PG_STACK_PARAMS];
    int lengths[PG_STACK_PARAMS], formats[PG_STACK_PARAMS];
    Oid types[PG_STACK_PARAMS];
    const char **pv = values;
    int *pl = lengths, *pf = formats;
    Oid *pt = types;
    void *heap = NULL;
    if (q->npar > PG_STACK_PARAMS) {
        heap = malloc(q->npar * (sizeof(char *) + 2 * sizeof(int) + sizeof(Oid)));
        if (!heap) return -1;
        pv = heap;
        pl = (int *)(pv + q->npar);
        pf = pl + q->npar;
        pt = (Oid *)(pf + q->npar);
    }
    /* Each parameter: type char, 4-byte length (-1 = NULL), the bytes, NUL. */
    const char *s = b->buf + q->par_off;
    for (uint32_t i = 0; i < q->npar; i++) {
        char t = s[0];
        int32_t len;
        memcpy(&len, s + 1, 4);
        s += 5;
        pt[i] = type_oid(t);
        pf[i] = t == 'x';
        pl[i] = len < 0 ? 0 : len;
        pv[i] = len < 0 ? NULL : s;
        if (len > 0) s += len;
        if (len >= 0) s++;
    }
    int ok;
    char name[24];
    if (q->stmt != UINT32_MAX && q->stmt < c->nprepared) {
        stmt_name(name, q->stmt);
        ok = 1;
        if (!c->prepared[q->stmt]) {
            ok = PQsendPrepare(c->pg, name, sql, (int)q->npar, pt) &&
                 pend_push(c, PEND_PREPARE, qi, q->stmt, b) == 0;
            c->prepared[q->stmt] = 1;
        }
        ok = ok && PQsendQueryPrepared(c->pg, name, (int)q->npar, pv, pl, pf, 0);
    } else {
        ok = PQsendQueryParams(c->pg, sql, (int)q->npar, pt, pv, pl, pf, 0);
    }
    free(heap);
    if (!ok || pend_push(c, PEND_EXEC, qi, 0, b)) return -1;
    return 0;
}

int pg__conn_dispatch(pg_conn *c, loom_pg_batch *b)
{
    pg_pool *p = c->pool;
    idle_remove(c);
    b->conn = c;
    b->state = B_SENT;
    c->nbatches++;
    int bind = b->tx && b->tx->state == TX_ACQUIRING;
    int ok = 1;
    if (bind) {
        b->tx->conn = c;
        b->tx->state = TX_OPEN;
        c->tx = b->tx;
        ok = PQsendQueryParams(c->pg, begin_sql(b->tx->flags), 0, NULL, NULL, NULL, NULL, 0) &&
             pend_push(c, PEND_EXEC, UINT32_MAX, 0, b) == 0;
    }
    for (uint32_t i = 0; ok && i < b->nq; i++) ok = send_query(c, b, i) == 0;
    ok = ok && PQpipelineSync(c->pg) && pend_push(c, PEND_SYNC, 0, 0, b) == 0;
    if (!ok) {
        /* b has no Sync entry to be failed through: fail it here. */
        char why[256];
        snprintf(why, sizeof why, "%s", PQerrorMessage(c->pg));
        c->nbatches--;
        b->conn = NULL;
        pg__finish(b, LOOM_PG_E_CONNECTION, why);
        pg__conn_close(c, why);
        return -1;
    }
    if (flush(c)) return -1;
    if (bind) pg__tx_bound(b->tx, c);
    (void)p;
    return 0;
}

void pg__conn_fill(pg_conn *c)
{
    pg_pool *p = c->pool;
    if (c->state != C_READY || pg__conn_cancelling(c) || c->tx) return;
    while (p->qhead && c->nbatches < p->depth) {
        loom_pg_batch *b = p->qhead;
        /* A transaction needs the connection to itself. */
        if (b->tx && c->nbatches) break;
        p->qhead = b->next;
        if (p->qhead)
            p->qhead->prev = NULL;
        else
            p->qtail = NULL;
        p->nqueue--;
        b->next = b->prev = NULL;
        if (pg__conn_dispatch(c, b)) return;
        if (c->tx) return;
    }
    if (c->nbatches || c->idle) return;
    if (PQtransactionStatus(c->pg) != PQTRANS_IDLE) {
        pg__logf(LOOM_LOG_WARN, "a batch left its connection inside a transaction (use "
                                "tx_begin); closing that connection");
        pg__conn_close(c, NULL);
        return;
    }
    c->idle = 1;
    c->since = pg__now_ms();
    c->idle_next = p->idle;
    p->idle = c;
    p->nidle++;
}

/* Takes the results that have arrived. Batches whose Sync came are moved
 * to *done (their callbacks run after this connection is settled). Returns
 * -1 after closing c. */
static int read_results(pg_conn *c, loom_pg_batch **done, loom_pg_batch **done_tail)
{
    while (c->phead != c->ptail && !PQisBusy(c->pg)) {
        PGresult *r = PQgetResult(c->pg);
        pg_pend *e = &c->pend[c->phead % c->pcap];
        if (!r) {
            if (e->kind == PEND_SYNC) break; /* nothing more until the Sync's result */
            c->phead++;
            continue;
        }
        ExecStatusType st = PQresultStatus(r);
        loom_pg_batch *b = e->b;
        if (st == PGRES_PIPELINE_SYNC) {
            PQclear(r);
            if (e->kind != PEND_SYNC) {
                pg__conn_close(c, "protocol out of step (unexpected Sync)");
                return -1;
            }
            c->phead++;
            c->nbatches--;
            b->conn = NULL;
            b->state = B_DONE;
            if ((b->kind == BK_COMMIT || b->kind == BK_ROLLBACK) && b->tx && b->tx->conn == c) {
                loom_pg_tx *tx = b->tx;
                tx->conn = NULL;
                tx->state = TX_ENDED;
                c->tx = NULL;
                pg__tx_conn_released(tx);
            }
            b->next = NULL;
            if (*done_tail)
                (*done_tail)->next = b;
            else
                *done = b;
            *done_tail = b;
            continue;
        }
        if (e->kind == PEND_SYNC) {
            /* The server ending the session reports it after the batch's
             * own results: a connection error, not a protocol one. */
            if (st == PGRES_FATAL_ERROR) pg__record_error(b, r, -1);
            PQclear(r);
            pg__conn_close(c, PQstatus(c->pg) == CONNECTION_BAD || st == PGRES_FATAL_ERROR
                                  ? PQerrorMessage(c->pg)
                                  : "protocol out of step (a result where a Sync was due)");
            return -1;
        }
        if (st == PGRES_FATAL_ERROR) {
            if (e->kind == PEND_PREPARE && e->stmt < c->nprepared) c->prepared[e->stmt] = 0;
            pg__record_error(b, r, e->q == UINT32_MAX ? -1 : (int32_t)e->q);
            PQclear(r);
        } else if (e->kind == PEND_EXEC && e->q != UINT32_MAX && b->req &&
                   st != PGRES_PIPELINE_ABORTED && !b->q[e->q].res) {
            if (b->kind == BK_COMMIT && strcmp(PQcmdStatus(r), "COMMIT") != 0 && !b->err) {
                b->err = LOOM_PG_E_QUERY;
                memcpy(b->sqlstate, "25P02", 6);
                free(b->msg);
                b->msg = strdup("the transaction was rolled back: a query in it had failed");
            }
            b->q[e->q].res = r;
        } else {
            PQclear(r);
        }
    }
    return 0;
}

static void on_io(loom_io *io, int32_t events, void *ud)
{
    pg_conn *c = ud;
    (void)io;
    /* A polling error (a refused connect, a reset) is libpq's to explain:
     * let it try the socket and say what went wrong. */
    if (c->state == C_CONNECTING) {
        connect_poll(c);
        return;
    }
    loom_pg_batch *done = NULL, *done_tail = NULL;
    if (events < 0) {
        /* libuv stops a watcher that saw an error: this connection hears
         * nothing more. Take what arrived, then close it. */
        int ok = PQconsumeInput(c->pg);
        if (read_results(c, &done, &done_tail) == 0)
            pg__conn_close(c, ok ? "socket error" : PQerrorMessage(c->pg));
        goto deliver;
    }
    if ((events & LOOM_IO_WRITE) && flush(c)) return;
    if (events & LOOM_IO_READ) {
        if (!PQconsumeInput(c->pg)) {
            /* Take what came before the error (a FATAL from the server). */
            if (read_results(c, &done, &done_tail) == 0) pg__conn_close(c, PQerrorMessage(c->pg));
            goto deliver;
        }
        if (read_results(c, &done, &done_tail)) goto deliver;
        if (PQstatus(c->pg) == CONNECTION_BAD) {
            pg__conn_close(c, PQerrorMessage(c->pg));
            goto deliver;
        }
        /* Notifications are not offered yet: drop them. */
        PGnotify *n;
        while ((n = PQnotifies(c->pg))) PQfreemem(n);
        /* What a cancel was for is done: no need to send it again. */
        if (c->cancel_at && c->nbatches == 0) c->cancel_at = 0;
        pg__conn_fill(c);
    }
deliver:
    while (done) {
        loom_pg_batch *b = done;
        done = b->next;
        b->next = NULL;
        pg__deliver(b);
    }
}

/* ---- cancelling a query, on the thread pool ---------------------------
 *
 * PostgreSQL ignores a cancel request that reaches the backend while it is
 * reading a command: a cancel sent right after the query (a request that
 * answered at once, a client that left at once) can arrive before the
 * backend has read it, and the query then runs to its end. So the cancel is
 * sent again, at growing intervals, until the batches it was for are done;
 * meanwhile the connection takes no new batch, so a late cancel cannot hit
 * someone else's query (PQcancel returns once the server has signalled the
 * backend). */

#define CANCEL_MAX_TRIES 12   /* about 8 s of repeats, then the query may finish */
#define CANCEL_MAX_DELAY 1000 /* ms between repeats, at most */

int pg__conn_cancelling(const pg_conn *c)
{
    return c->cancel != NULL || c->cancel_at != 0;
}

static void cancel_run(void *ud)
{
    struct pg_cancel *k = ud;
    k->ok = PQcancel(k->pc, k->err, sizeof k->err);
}

static void cancel_done(void *ud, int32_t cancelled)
{
    struct pg_cancel *k = ud;
    PQfreeCancel(k->pc);
    pg_conn *c = k->conn;
    if (c) {
        c->cancel = NULL;
        if (!k->ok)
            pg__logf(LOOM_LOG_WARN, "cancelling a query on %s failed: %s", c->pool->target, k->err);
        if (k->ok && !cancelled && c->state == C_READY && c->nbatches &&
            c->cancel_tries < CANCEL_MAX_TRIES) {
            /* Still running: maybe the cancel came before the query did. */
            uint64_t delay = 50u << (c->cancel_tries < 5 ? c->cancel_tries : 5);
            c->cancel_at = pg__now_ms() + (delay < CANCEL_MAX_DELAY ? delay : CANCEL_MAX_DELAY);
        } else {
            if (c->nbatches && c->cancel_tries >= CANCEL_MAX_TRIES)
                pg__logf(LOOM_LOG_WARN,
                         "a query on %s kept running after %u cancel requests; the connection "
                         "waits for it",
                         c->pool->target, c->cancel_tries);
            c->cancel_at = 0;
        }
        pg__conn_fill(c);
    }
    free(k);
}

static void cancel_send(pg_conn *c)
{
    struct pg_cancel *k = calloc(1, sizeof *k);
    if (!k) return;
    k->pc = PQgetCancel(c->pg);
    k->conn = c;
    k->pool = c->pool;
    if (!k->pc) {
        free(k);
        return;
    }
    c->cancel = k;
    c->cancel_at = 0;
    c->cancel_tries++;
    pg__logf(LOOM_LOG_DEBUG, "cancelling a query on %s: nobody waits for it (request %u)",
             c->pool->target, c->cancel_tries);
    if (loom_work_queue(c->pool->self, cancel_run, cancel_done, k)) {
        PQfreeCancel(k->pc);
        c->cancel = NULL;
        free(k);
    }
}

void pg__conn_cancel(pg_conn *c)
{
    if (pg__conn_cancelling(c) || c->state != C_READY) return;
    c->cancel_tries = 0;
    cancel_send(c);
}

/* A repeat that is due, or no longer needed (filling c may close it). */
static void cancel_tick(pg_conn *c, uint64_t now)
{
    if (c->state != C_READY || c->nbatches == 0) {
        c->cancel_at = 0;
        pg__conn_fill(c);
    } else if (now >= c->cancel_at) {
        cancel_send(c);
    }
}

/* ---- time ------------------------------------------------------------- */

void pg__pool_tick(pg_pool *p)
{
    uint64_t now = pg__now_ms();
    for (pg_conn *c = p->conns, *n; c; c = n) {
        n = c->next;
        if (c->cancel_at && !c->cancel) {
            cancel_tick(c, now); /* busy, not idle: nothing else to do for it */
            continue;
        }
        if (c->state == C_CONNECTING && now - c->since >= p->connect_timeout) {
            char why[64];
            snprintf(why, sizeof why, "timed out after %llu ms",
                     (unsigned long long)p->connect_timeout);
            connect_failed(c, why);
        } else if (c->idle && now - c->since >= p->idle_timeout && p->nready > p->min_conns) {
            pg__conn_close(c, NULL);
        }
    }
    while (p->qhead && p->qhead->deadline <= now) {
        loom_pg_batch *b = p->qhead;
        p->qhead = b->next;
        if (p->qhead)
            p->qhead->prev = NULL;
        else
            p->qtail = NULL;
        p->nqueue--;
        b->next = b->prev = NULL;
        pg__finish(b, LOOM_PG_E_TIMEOUT, "no connection was free before the queue deadline");
    }
    int may = !p->down || now >= p->next_attempt;
    /* While the database is down, one attempt at a time. */
    if (may && !(p->down && p->nconnecting) && p->nconns < p->size &&
        (p->nconns < p->min_conns || (p->qhead && p->nconnecting == 0)))
        pg__conn_start(p);
}

void pg__pool_close_all(pg_pool *p)
{
    uint32_t n = p->nconns;
    while (p->conns) pg__conn_close(p->conns, NULL);
    if (n) pg__logf(LOOM_LOG_INFO, "closed %u connection%s to %s", n, n == 1 ? "" : "s", p->target);
}
