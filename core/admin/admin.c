/* The admin listener's requests (see admin.h). */
#include "admin/admin.h"
#include "http/response.h"
#include "plugin/host.h"
#include "util/log.h"

#include <jansson.h>
#include <openssl/crypto.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* The page, generated from core/admin/dashboard.html (core/CMakeLists.txt). */
#include "loom_dashboard.h"

static const char *const proto_names[LOOM__NPROTO] = {"http/1.1", "h2", "websocket", "other"};

static void answer(loom_req *r, int status, const char *ctype, const char *body, size_t len,
                   void (*free_fn)(void *))
{
    r->resp.status = status;
    loom__resp_header_set(r, "Content-Type", 12, ctype, strlen(ctype));
    loom__resp_header_set(r, "Cache-Control", 13, "no-store", 8);
    loom__resp_header_set(r, "X-Content-Type-Options", 22, "nosniff", 7);
    loom__resp_body_take(r, body, len, free_fn);
    loom__req_finish(r);
}

static void answer_text(loom_req *r, int status, const char *text)
{
    answer(r, status, "text/plain; charset=utf-8", text, strlen(text), NULL);
}

/* "Authorization: Bearer <token>", the token compared in constant time. */
static int authorized(const loom__config *cfg, const loom_req *r)
{
    const char *want = cfg->admin_token;
    if (!want) return 1;
    size_t al = 0;
    const char *a = loom__req_header(r, "authorization", 13, &al);
    if (!a || al < 7 || !loom__strncaseeq(a, "bearer ", 7)) return 0;
    a += 7;
    al -= 7;
    while (al && *a == ' ') a++, al--;
    size_t wl = strlen(want);
    /* Equal lengths are compared without an early exit; a different length
     * still costs one comparison, of the token with itself. */
    int same_len = al == wl;
    int eq = CRYPTO_memcmp(same_len ? a : want, want, wl) == 0;
    return same_len && eq;
}

static json_t *worker_json(const loom__mslot *s, int id, loom__mplugin *ps, json_t *totals_status,
                           uint64_t *total_requests)
{
    uint64_t req = 0;
    uint32_t ns = __atomic_load_n(&s->nseries, __ATOMIC_ACQUIRE);
    if (ns > LOOM__M_SERIES) ns = LOOM__M_SERIES;
    for (uint32_t i = 0; i < ns; i++) {
        if (!__atomic_load_n(&s->series[i].used, __ATOMIC_ACQUIRE)) continue;
        for (int c = 0; c < 5; c++) {
            uint64_t v = loom__m_get(&s->series[i].status[c]);
            req += v;
            char k[4] = {(char)('1' + c), 'x', 'x', 0};
            json_t *o = json_object_get(totals_status, k);
            json_object_set_new(totals_status, k,
                                json_integer((json_int_t)(json_integer_value(o) + (json_int_t)v)));
        }
    }
    *total_requests += req;
    json_t *conns = json_object();
    for (int p = 0; p < LOOM__NPROTO; p++)
        json_object_set_new(conns, proto_names[p],
                            json_integer((json_int_t)loom__m_get(&s->conns[p])));
    json_t *plugins = json_array();
    uint32_t np = loom__metrics_read_plugins(s, ps);
    for (uint32_t i = 0; i < np; i++)
        json_array_append_new(
            plugins, json_pack("{s:s,s:s,s:I,s:s,s:I,s:i,s:i,s:s?}", "name", ps[i].name, "version",
                               ps[i].version, "generation", (json_int_t)ps[i].generation, "sha256",
                               ps[i].hash, "loaded_at", (json_int_t)ps[i].loaded_at, "routes",
                               (int)ps[i].routes, "middleware", (int)ps[i].middleware, "last_error",
                               ps[i].last_error[0] ? ps[i].last_error : NULL));
    int64_t pid = __atomic_load_n(&s->pid, __ATOMIC_RELAXED);
    return json_pack("{s:i,s:I,s:b,s:I,s:I,s:I,s:I,s:o,s:I,s:I,s:f,s:o}", "id", id, "pid",
                     (json_int_t)pid, "up", loom__m_get(&s->up) != 0, "started_at",
                     (json_int_t)s->started_at, "restarts", (json_int_t)loom__m_get(&s->restarts),
                     "requests", (json_int_t)req, "inflight", (json_int_t)loom__m_get(&s->inflight),
                     "connections", conns, "reloads", (json_int_t)loom__m_get(&s->reloads),
                     "reload_failures", (json_int_t)loom__m_get(&s->reload_failures),
                     "reload_last_seconds", (double)loom__m_get(&s->reload_last_ns) / 1e9,
                     "plugins", plugins);
}

/* The whole server as JSON: what `loom status` prints and the dashboard
 * draws. Latency buckets are summed over every series of every worker. */
static char *status_json(loom__worker *w)
{
    const loom__metrics *m = w->metrics->all;
    loom__mplugin *ps = malloc(LOOM__M_PLUGINS * sizeof *ps);
    if (!ps) return NULL;
    json_t *status = json_object();
    for (int c = 0; c < 5; c++) {
        char k[4] = {(char)('1' + c), 'x', 'x', 0};
        json_object_set_new(status, k, json_integer(0));
    }
    json_t *workers = json_array();
    uint64_t requests = 0, inflight = 0, bytes_in = 0, bytes_out = 0, rejected = 0, up = 0;
    uint64_t conns[LOOM__NPROTO] = {0}, buckets[LOOM__M_BUCKETS] = {0}, sum_ns = 0;
    for (int i = 0; i < m->nworkers; i++) {
        const loom__mslot *s = &m->slot[i];
        json_array_append_new(workers, worker_json(s, i, ps, status, &requests));
        inflight += loom__m_get(&s->inflight);
        bytes_in += loom__m_get(&s->bytes_in);
        bytes_out += loom__m_get(&s->bytes_out);
        up += loom__m_get(&s->up) != 0;
        for (int c = 0; c < 5; c++) rejected += loom__m_get(&s->rejected[c]);
        for (int p = 0; p < LOOM__NPROTO; p++) conns[p] += loom__m_get(&s->conns[p]);
        uint32_t ns = __atomic_load_n(&s->nseries, __ATOMIC_ACQUIRE);
        if (ns > LOOM__M_SERIES) ns = LOOM__M_SERIES;
        for (uint32_t k = 0; k < ns; k++) {
            if (!__atomic_load_n(&s->series[k].used, __ATOMIC_ACQUIRE)) continue;
            for (int b = 0; b < LOOM__M_BUCKETS; b++)
                buckets[b] += loom__m_get(&s->series[k].bucket[b]);
            sum_ns += loom__m_get(&s->series[k].sum_ns);
        }
    }
    free(ps);
    json_t *jc = json_object(), *jb = json_array(), *jbounds = json_array(), *jr = json_object();
    for (int p = 0; p < LOOM__NPROTO; p++)
        json_object_set_new(jc, proto_names[p], json_integer((json_int_t)conns[p]));
    for (int b = 0; b < LOOM__M_BUCKETS; b++)
        json_array_append_new(jb, json_integer((json_int_t)buckets[b]));
    for (int b = 0; b < LOOM__M_BUCKETS - 1; b++)
        json_array_append_new(jbounds, json_real((double)loom__m_bounds_ns[b] / 1e9));
    for (int sg = 0; sg <= 64; sg++) {
        uint64_t v = loom__m_get(&m->restarts_by_signal[sg]);
        if (!v) continue;
        char name[32];
        const char *ab = sg ? sigabbrev_np(sg) : NULL;
        if (sg == 0)
            snprintf(name, sizeof name, "none");
        else if (ab)
            snprintf(name, sizeof name, "SIG%s", ab);
        else
            snprintf(name, sizeof name, "%d", sg);
        json_object_set_new(jr, name, json_integer((json_int_t)v));
    }
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    json_t *totals = json_pack(
        "{s:I,s:o,s:I,s:I,s:o,s:I,s:I,s:o,s:o,s:f}", "requests", (json_int_t)requests, "status",
        status, "rejected", (json_int_t)rejected, "inflight", (json_int_t)inflight, "connections",
        jc, "bytes_in", (json_int_t)bytes_in, "bytes_out", (json_int_t)bytes_out, "latency_buckets",
        jb, "latency_bounds", jbounds, "latency_sum_seconds", (double)sum_ns / 1e9);
    json_t *root =
        json_pack("{s:s,s:I,s:I,s:f,s:i,s:I,s:i,s:o,s:o,s:o}", "version", LOOM_VERSION,
                  "master_pid", (json_int_t)m->master_pid, "started_at", (json_int_t)m->started_at,
                  "now", (double)now.tv_sec + (double)now.tv_nsec / 1e9, "workers_configured",
                  m->nworkers, "workers_up", (json_int_t)up, "answered_by", w->id, "restarts", jr,
                  "totals", totals, "workers", workers);
    char *t = root ? json_dumps(root, JSON_COMPACT) : NULL;
    json_decref(root);
    return t;
}

static char *listing(loom__worker *w)
{
    if (w->host) return loom__host_listing(w->host);
    json_t *j = json_pack("{s:i,s:i,s:[]}", "worker", w->id, "reloads", 0, "plugins");
    char *t = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    return t;
}

static int path_is(const loom_req *r, const char *p)
{
    size_t n = strlen(p);
    return r->path_len == n && memcmp(r->path, p, n) == 0;
}

void loom__admin_handle(loom__worker *w, loom_req *r)
{
    if (r->method_id != 1 /* GET */ && r->method_id != 2 /* HEAD */) {
        loom__resp_header_set(r, "Allow", 5, "GET, HEAD", 9);
        answer_text(r, 405, "405: the admin listener answers GET and HEAD\n");
        return;
    }
    if (path_is(r, "/")) {
        /* The page holds no data: it asks for it with the token. */
        loom__resp_header_set(
            r, "Content-Security-Policy", 23,
            "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
            "connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'",
            strlen(
                "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
                "connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'"));
        answer(r, 200, "text/html; charset=utf-8", loom__dashboard_html,
               sizeof loom__dashboard_html - 1, NULL);
        return;
    }
    if (!authorized(w->cfg, r)) {
        loom__resp_header_set(r, "WWW-Authenticate", 16, "Bearer realm=\"loom admin\"", 25);
        answer_text(r, 401, "401: this admin listener needs \"Authorization: Bearer <token>\"\n");
        return;
    }
    if (path_is(r, "/metrics")) {
        loom__buf b = {0};
        loom__admin_metrics_text(w->metrics->all, &b);
        answer(r, 200, "text/plain; version=0.0.4; charset=utf-8", b.data, b.len, free);
        return;
    }
    char *t = NULL;
    if (path_is(r, "/api/status"))
        t = status_json(w);
    else if (path_is(r, "/plugins") || path_is(r, "/_loom/plugins"))
        t = listing(w);
    else {
        answer_text(r, 404, "404: not an admin path (/, /metrics, /api/status, /plugins)\n");
        return;
    }
    if (!t) {
        answer_text(r, 500, "500: out of memory\n");
        return;
    }
    answer(r, 200, "application/json", t, strlen(t), free);
}

void loom__admin_publish_plugins(struct loom__host *h)
{
    loom__mworker *mw = h->w->metrics;
    if (!mw) return;
    loom__mslot *s = mw->slot;
    __atomic_store_n(&s->pseq, s->pseq + 1, __ATOMIC_RELEASE); /* odd: being written */
    __atomic_thread_fence(__ATOMIC_RELEASE);
    uint32_t n = 0;
    for (size_t i = 0; i < h->nplugins && n < LOOM__M_PLUGINS; i++) {
        const loom_plugin *p = h->plugins[i];
        loom__mplugin *e = &s->plugins[n++];
        memset(e, 0, sizeof *e);
        snprintf(e->name, sizeof e->name, "%s", p->name);
        snprintf(e->version, sizeof e->version, "%s", p->version ? p->version : "");
        snprintf(e->hash, sizeof e->hash, "%s", p->hash);
        e->generation = p->generation;
        e->loaded_at = (int64_t)p->load_time;
        e->routes = (uint32_t)p->nroutes;
        e->middleware = (uint32_t)p->nmws;
        if (p->last_error) snprintf(e->last_error, sizeof e->last_error, "%s", p->last_error);
        if (p->generation > mw->last_generation) {
            loom__m_add(&s->generations, 1);
        }
    }
    for (size_t i = 0; i < h->nplugins; i++)
        if (h->plugins[i]->generation > mw->last_generation)
            mw->last_generation = h->plugins[i]->generation;
    __atomic_store_n(&s->nplugins, n, __ATOMIC_RELAXED);
    __atomic_store_n(&s->pseq, s->pseq + 1, __ATOMIC_RELEASE);
}

void loom__admin_reload_done(struct loom__host *h, int ok, int failures, uint64_t ns)
{
    loom__mworker *mw = h->w->metrics;
    if (!mw) return;
    if (failures) {
        loom__m_add(&mw->slot->reload_failures, (uint64_t)failures);
        if (!ok) loom__admin_publish_plugins(h); /* the refusals (last_error) */
    }
    if (ok) {
        loom__m_add(&mw->slot->reloads, 1);
        __atomic_store_n(&mw->slot->reload_last_ns, ns, __ATOMIC_RELAXED);
    }
}
