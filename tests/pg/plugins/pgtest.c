/* pgtest: a consumer of the pg service for the tests, built twice
 * (-DVERSION=1 and 2) so that a consumer can be reloaded with queries in
 * flight. Every answer carries X-Pgtest: vN.
 *
 *   GET /pg/sleep?s=S          SELECT pg_sleep(S) -> "slept"
 *   GET /pg/error              a query on a missing table -> the pg error answer
 *   GET /pg/types              typed parameters and values, as JSON
 *   GET /pg/multi?k=K          a batch of three (insert K, fail, insert K2):
 *                              answers the failed query index and SQLSTATE
 *   GET /pg/tx?k=K&end=E[&s=S] a transaction: insert K, (pg_sleep S), then E:
 *                              commit, rollback, open (answer without ending),
 *                              fail (a failing query, then commit)
 *   GET /pg/early?s=S          sends pg_sleep(S), answers at once
 *   GET /pg/service            the service version, or 503 without it
 *   GET /pg/rows?n=N           generate_series(1, N): the row count and sum
 *   GET /pg/big?n=N            N queries in one batch (N > max_batch fails) */
#include <loom/loom.h>
#include <loom/pg.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef VERSION
#define VERSION 1
#endif
#define STR2(x) #x
#define STR(x) STR2(x)

static int32_t text(loom_req *req, int32_t status, const char *body)
{
    loom_resp_header_set(req, "X-Pgtest", "v" STR(VERSION));
    return loom_resp_text(req, status, body);
}

static int32_t unavailable(loom_req *req)
{
    loom_resp_header_set(req, "X-Pgtest", "v" STR(VERSION));
    return loom_resp_error(req, 503, "database unavailable");
}

static void pg_error(loom_req *req, const loom_pg_api *pg, const loom_pg_result *r)
{
    loom_resp_header_set(req, "X-Pgtest", "v" STR(VERSION));
    char code[16];
    snprintf(code, sizeof code, "%d", pg->error(r));
    loom_resp_header_set(req, "X-Pg-Error", code);
    loom_pg_resp_error(req, pg, r);
}

static double arg_num(loom_req *req, const char *name, double dflt)
{
    const char *s = loom_req_query(req, name, 0, NULL);
    return s ? atof(s) : dflt;
}

/* One batch of one query; `done` gets the result, ud the table. */
static int32_t one(loom_req *req, const char *sql, const loom_pg_value *v, uint32_t n,
                   loom_pg_fn done)
{
    const loom_pg_api *pg = loom_pg(req);
    loom_pg_batch *b = pg ? pg->batch(req, NULL) : NULL;
    if (!b || pg->query(b, sql, v, n) < 0 || pg->send(b, done, (void *)pg)) return unavailable(req);
    return LOOM_PENDING;
}

static void slept(loom_req *req, const loom_pg_result *r, void *ud)
{
    const loom_pg_api *pg = ud;
    if (pg->error(r))
        pg_error(req, pg, r);
    else
        text(req, 200, "slept");
}

static int32_t h_sleep(loom_req *req, void *ud)
{
    (void)ud;
    loom_pg_value s = loom_pg_float(arg_num(req, "s", 0.1));
    return one(req, "SELECT pg_sleep($1)", &s, 1, slept);
}

static int32_t h_error(loom_req *req, void *ud)
{
    (void)ud;
    return one(req, "SELECT * FROM no_such_table_here", NULL, 0, slept);
}

/* s as the inside of a JSON string (quotes and backslashes escaped). */
static const char *json_str(loom_req *req, const char *s, size_t n)
{
    char *o = loom_req_alloc(req, 2 * n + 1), *p = o;
    if (!o) return "";
    for (size_t i = 0; s && i < n; i++) {
        if (s[i] == '"' || s[i] == '\\') *p++ = '\\';
        *p++ = s[i];
    }
    *p = '\0';
    return o;
}

static void typed(loom_req *req, const loom_pg_result *r, void *ud)
{
    const loom_pg_api *pg = ud;
    if (pg->error(r)) {
        pg_error(req, pg, r);
        return;
    }
    int64_t i = 0, big = 0;
    double f = 0;
    int32_t b = -1, bad_int = pg->get_int(r, 0, 0, 3, &big);
    pg->get_int(r, 0, 0, 0, &i);
    pg->get_float(r, 0, 0, 1, &f);
    pg->get_bool(r, 0, 0, 2, &b);
    size_t tl = 0, xl = 0;
    const char *t = pg->text(r, 0, 0, 3, &tl);
    const char *x = pg->text(r, 0, 0, 4, &xl);
    char out[512];
    snprintf(out, sizeof out,
             "{\"int\":%lld,\"float\":%.17g,\"bool\":%d,\"text\":\"%s\",\"bytes\":\"%s\","
             "\"null\":%d,\"text_as_int\":%d,\"ncols\":%u,\"col0\":\"%s\",\"type0\":%u,"
             "\"type3\":%u,\"nrows\":%u,\"nqueries\":%u,\"missing\":%d}",
             (long long)i, f, b, json_str(req, t, tl), json_str(req, x, xl),
             pg->is_null(r, 0, 0, 5), bad_int, pg->ncols(r, 0), pg->col_name(r, 0, 0),
             pg->col_type(r, 0, 0), pg->col_type(r, 0, 3), pg->nrows(r, 0), pg->nqueries(r),
             pg->get_int(r, 0, 5, 0, &i));
    loom_resp_header_set(req, "X-Pgtest", "v" STR(VERSION));
    loom_resp_json(req, 200, out, strlen(out));
}

static int32_t h_types(loom_req *req, void *ud)
{
    (void)ud;
    static const unsigned char raw[3] = {0x00, 0xff, 0x41};
    loom_pg_value v[6] = {
        loom_pg_int(-9007199254740993LL),         loom_pg_float(0.5),    loom_pg_bool(1),
        loom_pg_text("it's \"quoted\" \xc3\xa9"), loom_pg_bytes(raw, 3), loom_pg_null()};
    return one(req, "SELECT $1 AS i, $2 AS f, $3 AS b, $4::text AS t, $5 AS x, $6::int AS n", v, 6,
               typed);
}

static void multi_done(loom_req *req, const loom_pg_result *r, void *ud)
{
    const loom_pg_api *pg = ud;
    char out[128];
    snprintf(out, sizeof out, "%d %d %s", pg->error(r), pg->failed_query(r), pg->sqlstate(r));
    text(req, 200, out);
}

static int32_t h_multi(loom_req *req, void *ud)
{
    (void)ud;
    const char *k = loom_req_query(req, "k", 0, NULL);
    const loom_pg_api *pg = loom_pg(req);
    loom_pg_batch *b = pg && k ? pg->batch(req, NULL) : NULL;
    if (!b) return unavailable(req);
    char k2[128];
    snprintf(k2, sizeof k2, "%s-2", k);
    loom_pg_value a = loom_pg_text(k), c = loom_pg_text(k2);
    if (pg->query(b, "INSERT INTO kv (k, v) VALUES ($1, 1)", &a, 1) != 0 ||
        pg->query(b, "SELECT 1 / 0", NULL, 0) != 1 ||
        pg->query(b, "INSERT INTO kv (k, v) VALUES ($1, 1)", &c, 1) != 2 ||
        pg->send(b, multi_done, (void *)pg))
        return unavailable(req);
    return LOOM_PENDING;
}

/* ---- transactions ---- */

typedef struct {
    const loom_pg_api *pg;
    loom_pg_tx *tx;
    const char *end;
    double sleep;
} txstate;

static void tx_ended(loom_req *req, const loom_pg_result *r, void *ud)
{
    txstate *t = ud;
    if (t->pg->error(r)) {
        pg_error(req, t->pg, r);
        return;
    }
    text(req, 200, t->end);
}

static void tx_step_failed(loom_req *req, const loom_pg_result *r, void *ud);

static void tx_step(loom_req *req, const loom_pg_result *r, void *ud)
{
    txstate *t = ud;
    const loom_pg_api *pg = t->pg;
    if (pg->error(r)) {
        pg_error(req, pg, r);
        return;
    }
    if (strcmp(t->end, "open") == 0) {
        text(req, 200, "open"); /* the pool must roll it back */
        return;
    }
    if (strcmp(t->end, "fail") == 0) {
        /* A failing query in its own batch, then commit (the server rolls back). */
        loom_pg_batch *b = pg->batch(req, t->tx);
        if (!b || pg->query(b, "SELECT 1 / 0", NULL, 0) < 0 || pg->send(b, tx_step_failed, t)) {
            unavailable(req);
        }
        return;
    }
    int32_t rc = strcmp(t->end, "commit") == 0 ? pg->tx_commit(t->tx, tx_ended, t)
                                               : pg->tx_rollback(t->tx, tx_ended, t);
    if (rc) unavailable(req);
}

static int32_t h_tx(loom_req *req, void *ud)
{
    (void)ud;
    const char *k = loom_req_query(req, "k", 0, NULL);
    const char *end = loom_req_query(req, "end", 0, NULL);
    const loom_pg_api *pg = loom_pg(req);
    txstate *t = loom_req_alloc(req, sizeof *t);
    if (!pg || !k || !end || !t) return unavailable(req);
    t->pg = pg;
    t->end = end;
    t->sleep = arg_num(req, "s", 0);
    t->tx = pg->tx_begin(req, 0);
    loom_pg_batch *b = t->tx ? pg->batch(req, t->tx) : NULL;
    if (!b) return unavailable(req);
    loom_pg_value key = loom_pg_text(k), s = loom_pg_float(t->sleep);
    if (pg->query(b, "INSERT INTO kv (k, v) VALUES ($1, 1)", &key, 1) < 0 ||
        (t->sleep > 0 && pg->query(b, "SELECT pg_sleep($1)", &s, 1) < 0) || pg->send(b, tx_step, t))
        return unavailable(req);
    return LOOM_PENDING;
}

/* The failing query's batch came back (with its error); commit anyway. */
static void tx_step_failed(loom_req *req, const loom_pg_result *r, void *ud)
{
    txstate *t = ud;
    (void)r;
    t->end = "commit";
    if (t->pg->tx_commit(t->tx, tx_ended, t)) unavailable(req);
}

static void early_done(loom_req *req, const loom_pg_result *r, void *ud)
{
    (void)req;
    (void)r;
    (void)ud;
    /* Never runs: the request was answered first. */
    abort();
}

static int32_t h_early(loom_req *req, void *ud)
{
    (void)ud;
    const loom_pg_api *pg = loom_pg(req);
    loom_pg_batch *b = pg ? pg->batch(req, NULL) : NULL;
    loom_pg_value s = loom_pg_float(arg_num(req, "s", 1));
    if (!b || pg->query(b, "SELECT pg_sleep($1)", &s, 1) < 0 || pg->send(b, early_done, NULL))
        return unavailable(req);
    return text(req, 200, "early");
}

static int32_t h_service(loom_req *req, void *ud)
{
    (void)ud;
    uint32_t v = 0;
    const void *t = loom_service_get(req, LOOM_PG_SERVICE, 1, &v);
    if (!t) return text(req, 503, "no pg service");
    if (loom_service_get(req, LOOM_PG_SERVICE, v + 1, NULL))
        return text(req, 500, "newer than itself");
    char out[64];
    snprintf(out, sizeof out, "pg v%u size %u", v, *(const uint32_t *)t);
    return text(req, 200, out);
}

static void rows_done(loom_req *req, const loom_pg_result *r, void *ud)
{
    const loom_pg_api *pg = ud;
    if (pg->error(r)) {
        pg_error(req, pg, r);
        return;
    }
    int64_t sum = 0, v;
    uint32_t n = pg->nrows(r, 0);
    for (uint32_t i = 0; i < n; i++)
        if (pg->get_int(r, 0, i, 0, &v) == 0) sum += v;
    char out[64];
    snprintf(out, sizeof out, "%u %lld", n, (long long)sum);
    text(req, 200, out);
}

static int32_t h_rows(loom_req *req, void *ud)
{
    (void)ud;
    loom_pg_value n = loom_pg_int((int64_t)arg_num(req, "n", 10));
    return one(req, "SELECT generate_series(1, $1)", &n, 1, rows_done);
}

static void big_done(loom_req *req, const loom_pg_result *r, void *ud)
{
    const loom_pg_api *pg = ud;
    if (pg->error(r)) {
        pg_error(req, pg, r);
        return;
    }
    char out[64];
    snprintf(out, sizeof out, "%u", pg->nqueries(r));
    text(req, 200, out);
}

static int32_t h_big(loom_req *req, void *ud)
{
    (void)ud;
    uint32_t n = (uint32_t)arg_num(req, "n", 10);
    const loom_pg_api *pg = loom_pg(req);
    loom_pg_batch *b = pg ? pg->batch(req, NULL) : NULL;
    if (!b) return unavailable(req);
    for (uint32_t i = 0; i < n; i++) {
        loom_pg_value v = loom_pg_int(i);
        int32_t rc = pg->query(b, "SELECT $1", &v, 1);
        if (rc == LOOM_ELIMIT) return text(req, 413, "too many queries");
        if (rc < 0) return unavailable(req);
    }
    if (pg->send(b, big_done, (void *)pg)) return unavailable(req);
    return LOOM_PENDING;
}

static int32_t init(loom_plugin *self, const char *config, size_t len)
{
    (void)config;
    (void)len;
    static const struct {
        const char *path;
        loom_handler_fn fn;
    } routes[] = {{"/pg/sleep", h_sleep},     {"/pg/error", h_error}, {"/pg/types", h_types},
                  {"/pg/multi", h_multi},     {"/pg/tx", h_tx},       {"/pg/early", h_early},
                  {"/pg/service", h_service}, {"/pg/rows", h_rows},   {"/pg/big", h_big}};
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        int32_t rc = loom_route_add(self, "GET", routes[i].path, routes[i].fn, NULL);
        if (rc) return rc;
    }
    return 0;
}

LOOM_PLUGIN("pgtest", "1.0." STR(VERSION), init, NULL)
