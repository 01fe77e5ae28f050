/* The entries a request calls: build a batch, send it, and hold a
 * transaction; the service table. */
#define _GNU_SOURCE /* strdup */
#include "pg_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static loom_pg_batch *api_batch(loom_req *req, loom_pg_tx *tx)
{
    if (!req) return NULL;
    if (tx && (tx->ending || tx->req != req)) return NULL;
    pg__pool_start();
    pg_ticket *t = pg__ticket_for(req);
    if (!t) return NULL;
    loom_pg_batch *b = pg__batch_new(&pg__pool, req, tx, BK_USER);
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
    pg_ticket *t = pg__ticket_for(req);
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
    pg_ticket *t = pg__ticket_for(tx->req);
    loom_pg_batch *b = t ? pg__batch_new(tx->pool, tx->req, tx, kind) : NULL;
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

const loom_pg_api pg__api = {
    .size = sizeof(loom_pg_api),
    .batch = api_batch,
    .query = api_query,
    .send = api_send,
    .tx_begin = api_tx_begin,
    .tx_commit = api_tx_commit,
    .tx_rollback = api_tx_rollback,
    .error = pg__res_error,
    .sqlstate = pg__res_sqlstate,
    .message = pg__res_message,
    .failed_query = pg__res_failed_query,
    .nqueries = pg__res_nqueries,
    .nrows = pg__res_nrows,
    .ncols = pg__res_ncols,
    .col_name = pg__res_col_name,
    .col_type = pg__res_col_type,
    .is_null = pg__res_is_null,
    .text = pg__res_text,
    .get_int = pg__res_get_int,
    .get_float = pg__res_get_float,
    .get_bool = pg__res_get_bool,
    .affected = pg__res_affected,
};
