/* tfb: the TechEmpower Framework Benchmarks test types, on the pg service.
 *
 *   GET /json            {"message":"Hello, World!"}
 *   GET /plaintext       Hello, World!
 *   GET /db              one random World row
 *   GET /queries?queries=N   N random rows (N clamped to 1..500; anything
 *                        that is not a number is 1)
 *   GET /fortunes        every Fortune row plus one added now, sorted by
 *                        message, HTML-escaped into TFB's table
 *   GET /updates?queries=N   N random rows read, given new random numbers,
 *                        written back
 *
 * The database is "hello_world" with TFB's tables world(id, randomnumber)
 * and fortune(id, message) (scripts/pgcluster.sh makes one). A request's
 * queries go in one batch (one round trip: libpq pipeline mode); /updates
 * takes two: the reads, then the writes, ordered by id so that concurrent
 * requests on other workers cannot deadlock on the same rows. */
#include <loom/loom.h>
#include <loom/pg.h>

#include <stdlib.h>
#include <string.h>

#define WORLD_ROWS 10000
#define MAX_QUERIES 500

static const char SELECT_WORLD[] = "SELECT id, randomnumber FROM world WHERE id = $1";
static const char UPDATE_WORLD[] = "UPDATE world SET randomnumber = $1 WHERE id = $2";
static const char SELECT_FORTUNE[] = "SELECT id, message FROM fortune";
static const char EXTRA_FORTUNE[] = "Additional fortune added at request time.";

/* xorshift64*: the ids and numbers need to be spread, not secret. */
static uint64_t rng_state;

static uint32_t random_row(void)
{
    uint64_t x = rng_state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    rng_state = x;
    return (uint32_t)(((x * 2685821657736338717ull) >> 33) % WORLD_ROWS) + 1;
}

/* queries=N: 1..500 for a number (clamped), 1 for anything else. */
static uint32_t query_count(loom_req *req)
{
    size_t len = 0;
    const char *s = loom_req_query(req, "queries", 0, &len);
    if (!s || len == 0) return 1;
    uint64_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') return 1;
        if (n < 1000) n = n * 10 + (uint64_t)(s[i] - '0');
    }
    return n < 1 ? 1 : n > MAX_QUERIES ? MAX_QUERIES : (uint32_t)n;
}

static char *put_uint(char *p, uint32_t v)
{
    char tmp[10];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n) *p++ = tmp[--n];
    return p;
}

static char *put_world(char *p, uint32_t id, uint32_t number)
{
    memcpy(p, "{\"id\":", 6);
    p = put_uint(p + 6, id);
    memcpy(p, ",\"randomNumber\":", 16);
    p = put_uint(p + 16, number);
    *p++ = '}';
    return p;
}

/* A request's state: its ids (and new numbers, for /updates). */
typedef struct {
    const loom_pg_api *pg;
    uint32_t n;
    int single; /* /db: an object, not an array */
    uint32_t *id, *number;
} worlds;

static int32_t fail(loom_req *req)
{
    return loom_resp_error(req, 503, "database unavailable");
}

static int32_t json(loom_req *req, void *ud)
{
    (void)ud;
    static const char body[] = "{\"message\":\"Hello, World!\"}";
    return loom_resp_json(req, 200, body, sizeof body - 1);
}

static int32_t plaintext(loom_req *req, void *ud)
{
    (void)ud;
    return loom_resp_bytes(req, 200, "text/plain", "Hello, World!", 13);
}

static void answer_worlds(loom_req *req, const worlds *w)
{
    char *out = loom_req_alloc(req, (size_t)w->n * 40 + 2);
    if (!out) {
        loom_resp_error(req, 500, "out of memory");
        return;
    }
    char *p = out;
    if (!w->single) *p++ = '[';
    for (uint32_t i = 0; i < w->n; i++) {
        if (i) *p++ = ',';
        p = put_world(p, w->id[i], w->number[i]);
    }
    if (!w->single) *p++ = ']';
    loom_resp_json(req, 200, out, (size_t)(p - out));
}

/* The rows came: one per query, in order. */
static void read_done(loom_req *req, const loom_pg_result *res, void *ud)
{
    worlds *w = ud;
    const loom_pg_api *pg = w->pg;
    if (pg->error(res)) {
        loom_pg_resp_error(req, pg, res);
        return;
    }
    for (uint32_t i = 0; i < w->n; i++) {
        int64_t id, number;
        if (pg->nrows(res, i) != 1 || pg->get_int(res, i, 0, 0, &id) ||
            pg->get_int(res, i, 0, 1, &number)) {
            loom_resp_error(req, 500, "unexpected row");
            return;
        }
        w->id[i] = (uint32_t)id;
        w->number[i] = (uint32_t)number;
    }
    answer_worlds(req, w);
}

static worlds *worlds_new(loom_req *req, const loom_pg_api *pg, uint32_t n, int updates)
{
    worlds *w =
        loom_req_alloc(req, sizeof *w + (size_t)n * 2 * sizeof(uint32_t) * (updates ? 2 : 1));
    if (!w) return NULL;
    w->pg = pg;
    w->n = n;
    w->single = 0;
    w->id = (uint32_t *)(w + 1);
    w->number = w->id + n;
    return w;
}

/* Sends n reads of random rows; `done` gets the result. */
static int32_t read_worlds(loom_req *req, uint32_t n, int single, int updates, loom_pg_fn done)
{
    const loom_pg_api *pg = loom_pg(req);
    worlds *w = pg ? worlds_new(req, pg, n, updates) : NULL;
    loom_pg_batch *b = w ? pg->batch(req, NULL) : NULL;
    if (!b) return fail(req);
    w->single = single;
    for (uint32_t i = 0; i < n; i++) {
        loom_pg_value id = loom_pg_int(random_row());
        if (pg->query(b, SELECT_WORLD, &id, 1) < 0) return fail(req);
    }
    /* send frees b on failure */
    if (pg->send(b, done, w)) return fail(req);
    return LOOM_PENDING;
}

static int32_t db(loom_req *req, void *ud)
{
    (void)ud;
    return read_worlds(req, 1, 1, 0, read_done);
}

static int32_t queries(loom_req *req, void *ud)
{
    (void)ud;
    return read_worlds(req, query_count(req), 0, 0, read_done);
}

/* ---- /updates ------------------------------------------------------------ */

static void write_done(loom_req *req, const loom_pg_result *res, void *ud)
{
    worlds *w = ud;
    if (w->pg->error(res)) {
        loom_pg_resp_error(req, w->pg, res);
        return;
    }
    answer_worlds(req, w);
}

static int by_id(const void *a, const void *b)
{
    const uint32_t *x = a, *y = b;
    return (x[0] > y[0]) - (x[0] < y[0]);
}

static void update_read_done(loom_req *req, const loom_pg_result *res, void *ud)
{
    worlds *w = ud;
    const loom_pg_api *pg = w->pg;
    if (pg->error(res)) {
        loom_pg_resp_error(req, pg, res);
        return;
    }
    /* (id, new number) pairs, written in id order. */
    uint32_t *pairs = w->number + w->n;
    for (uint32_t i = 0; i < w->n; i++) {
        int64_t id, old;
        if (pg->nrows(res, i) != 1 || pg->get_int(res, i, 0, 0, &id) ||
            pg->get_int(res, i, 0, 1, &old)) {
            loom_resp_error(req, 500, "unexpected row");
            return;
        }
        uint32_t number = random_row();
        if (number == (uint32_t)old) number = number % WORLD_ROWS + 1; /* a real change */
        w->id[i] = (uint32_t)id;
        w->number[i] = number;
        pairs[2 * i] = (uint32_t)id;
        pairs[2 * i + 1] = number;
    }
    qsort(pairs, w->n, 2 * sizeof(uint32_t), by_id);
    loom_pg_batch *b = pg->batch(req, NULL);
    if (!b) {
        fail(req);
        return;
    }
    for (uint32_t i = 0; i < w->n; i++) {
        loom_pg_value v[2] = {loom_pg_int(pairs[2 * i + 1]), loom_pg_int(pairs[2 * i])};
        if (pg->query(b, UPDATE_WORLD, v, 2) < 0) {
            fail(req);
            return;
        }
    }
    if (pg->send(b, write_done, w)) fail(req);
}

static int32_t updates(loom_req *req, void *ud)
{
    (void)ud;
    return read_worlds(req, query_count(req), 0, 1, update_read_done);
}

/* ---- /fortunes ------------------------------------------------------------ */

typedef struct {
    const char *msg;
    size_t len;
    uint32_t id;
} fortune;

static int by_message(const void *a, const void *b)
{
    const fortune *x = a, *y = b;
    size_t n = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->msg, y->msg, n);
    return c ? c : (x->len > y->len) - (x->len < y->len);
}

static char *escape(char *p, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        switch (s[i]) {
        case '&':
            memcpy(p, "&amp;", 5);
            p += 5;
            break;
        case '<':
            memcpy(p, "&lt;", 4);
            p += 4;
            break;
        case '>':
            memcpy(p, "&gt;", 4);
            p += 4;
            break;
        case '"':
            memcpy(p, "&quot;", 6);
            p += 6;
            break;
        case '\'':
            memcpy(p, "&#39;", 5);
            p += 5;
            break;
        default:
            *p++ = s[i];
        }
    }
    return p;
}

#define PUT(p, lit) (memcpy((p), (lit), sizeof(lit) - 1), (p) += sizeof(lit) - 1)

static void fortunes_done(loom_req *req, const loom_pg_result *res, void *ud)
{
    const loom_pg_api *pg = ud;
    if (pg->error(res)) {
        loom_pg_resp_error(req, pg, res);
        return;
    }
    uint32_t rows = pg->nrows(res, 0);
    fortune *f = loom_req_alloc(req, (rows + 1) * sizeof *f);
    if (!f) {
        loom_resp_error(req, 500, "out of memory");
        return;
    }
    size_t need = 256;
    for (uint32_t i = 0; i < rows; i++) {
        int64_t id;
        f[i].msg = pg->text(res, 0, i, 1, &f[i].len);
        if (!f[i].msg || pg->get_int(res, 0, i, 0, &id) || id < 0 || id > UINT32_MAX) {
            loom_resp_error(req, 500, "unexpected row");
            return;
        }
        f[i].id = (uint32_t)id;
        need += f[i].len * 6 + 40;
    }
    f[rows] = (fortune){EXTRA_FORTUNE, sizeof EXTRA_FORTUNE - 1, 0};
    need += sizeof EXTRA_FORTUNE + 40;
    qsort(f, rows + 1, sizeof *f, by_message);
    char *out = loom_req_alloc(req, need), *p = out;
    if (!out) {
        loom_resp_error(req, 500, "out of memory");
        return;
    }
    PUT(p, "<!DOCTYPE html><html><head><title>Fortunes</title></head><body><table>"
           "<tr><th>id</th><th>message</th></tr>");
    for (uint32_t i = 0; i <= rows; i++) {
        PUT(p, "<tr><td>");
        p = put_uint(p, f[i].id);
        PUT(p, "</td><td>");
        p = escape(p, f[i].msg, f[i].len);
        PUT(p, "</td></tr>");
    }
    PUT(p, "</table></body></html>");
    loom_resp_bytes(req, 200, "text/html; charset=utf-8", out, (size_t)(p - out));
}

static int32_t fortunes(loom_req *req, void *ud)
{
    (void)ud;
    const loom_pg_api *pg = loom_pg(req);
    loom_pg_batch *b = pg ? pg->batch(req, NULL) : NULL;
    if (!b || pg->query(b, SELECT_FORTUNE, NULL, 0) < 0 || pg->send(b, fortunes_done, (void *)pg))
        return fail(req);
    return LOOM_PENDING;
}

static int32_t init(loom_plugin *self, const char *config, size_t len)
{
    (void)config;
    (void)len;
    static const char *const no_keys[] = {NULL};
    if (loom_config_check_keys(self, loom_config(self), NULL, no_keys)) return LOOM_EINVAL;
    rng_state = loom_now_ns() | 1;
    int32_t rc = loom_route_add(self, "GET", "/json", json, NULL);
    if (!rc) rc = loom_route_add(self, "GET", "/plaintext", plaintext, NULL);
    if (!rc) rc = loom_route_add(self, "GET", "/db", db, NULL);
    if (!rc) rc = loom_route_add(self, "GET", "/queries", queries, NULL);
    if (!rc) rc = loom_route_add(self, "GET", "/fortunes", fortunes, NULL);
    if (!rc) rc = loom_route_add(self, "GET", "/updates", updates, NULL);
    return rc;
}

LOOM_PLUGIN("tfb", "1.0.0", init, NULL)
