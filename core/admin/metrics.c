/* The shared metrics region (see metrics.h). */
#include "admin/metrics.h"
#include "util/log.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAGIC 0x6c6f6f6d6d657472ull /* "loommetr" */

/* 0.1 ms to 10 s. */
const uint64_t loom__m_bounds_ns[LOOM__M_BUCKETS - 1] = {
    100000,        250000,        500000,        1000000,       2500000,   5000000,
    10000000,      25000000,      50000000,      100000000,     250000000, 500000000,
    1000000000ull, 2500000000ull, 5000000000ull, 10000000000ull};

static uint32_t hash3(const char *a, const char *b, const char *c)
{
    uint32_t h = 2166136261u;
    const char *parts[3] = {a, b, c};
    for (int i = 0; i < 3; i++) {
        for (const char *p = parts[i]; *p; p++) h = (h ^ (unsigned char)*p) * 16777619u;
        h = (h ^ 0xff) * 16777619u;
    }
    return h;
}

/* Copies src into a label field, cut at a character boundary. */
static void put_label(char *dst, size_t cap, const char *src)
{
    size_t n = strlen(src);
    if (n >= cap) {
        n = cap - 1;
        while (n > 0 && ((unsigned char)src[n] & 0xc0) == 0x80) n--;
    }
    memcpy(dst, src, n);
    dst[n] = '\0';
}

static size_t region_size(int nworkers)
{
    return sizeof(loom__metrics) + (size_t)nworkers * sizeof(loom__mslot);
}

loom__metrics *loom__metrics_open(int nworkers)
{
    size_t sz = region_size(nworkers);
    /* Pages are taken as they are touched: a worker's unused series cost
     * address space, not memory. */
    void *p =
        mmap(NULL, sz, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) {
        loom__err("metrics: cannot map %zu bytes: %s", sz, strerror(errno));
        return NULL;
    }
    loom__metrics *m = p;
    m->magic = MAGIC;
    m->nworkers = nworkers;
    m->master_pid = getpid();
    m->started_at = time(NULL);
    return m;
}

void loom__metrics_close(loom__metrics *m)
{
    if (m) munmap(m, region_size(m->nworkers));
}

static void clear_gauges(loom__mslot *s)
{
    __atomic_store_n(&s->up, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&s->pid, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&s->inflight, 0, __ATOMIC_RELAXED);
    for (int i = 0; i < LOOM__NPROTO; i++) __atomic_store_n(&s->conns[i], 0, __ATOMIC_RELAXED);
    __atomic_store_n(&s->pool_queued, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&s->pool_running, 0, __ATOMIC_RELAXED);
}

loom__mworker *loom__metrics_worker(loom__metrics *m, int id)
{
    if (!m || id < 0 || id >= m->nworkers) return NULL;
    loom__mworker *mw = calloc(1, sizeof *mw);
    if (!mw) return NULL;
    mw->all = m;
    mw->slot = &m->slot[id];
    mw->index_cap = 2 * LOOM__M_SERIES;
    mw->index = calloc(mw->index_cap, sizeof *mw->index);
    if (!mw->index) {
        free(mw);
        return NULL;
    }
    loom__mslot *s = mw->slot;
    clear_gauges(s);
    /* Series a predecessor made stay (their counters are the sums'
     * history); index them, and drop one it left half made. */
    uint32_t n = __atomic_load_n(&s->nseries, __ATOMIC_ACQUIRE);
    if (n > LOOM__M_SERIES) n = LOOM__M_SERIES;
    while (n > 0 && !__atomic_load_n(&s->series[n - 1].used, __ATOMIC_ACQUIRE)) n--;
    s->nseries = n;
    uint32_t mask = mw->index_cap - 1;
    for (uint32_t k = 0; k < n; k++) {
        loom__mseries *e = &s->series[k];
        if (k == LOOM__M_SERIES - 1) break; /* "(other)" is found by position */
        uint32_t i = hash3(e->plugin, e->route, e->method) & mask;
        while (mw->index[i]) i = (i + 1) & mask;
        mw->index[i] = (uint16_t)(k + 1);
    }
    /* The plugin table is the new process's to write. */
    __atomic_store_n(&s->pseq, (s->pseq + 1) | 1, __ATOMIC_RELEASE);
    s->nplugins = 0;
    __atomic_store_n(&s->pseq, s->pseq + 1, __ATOMIC_RELEASE);
    s->started_at = time(NULL);
    __atomic_store_n(&s->pid, (int64_t)getpid(), __ATOMIC_RELAXED);
    return mw;
}

void loom__metrics_worker_free(loom__mworker *mw)
{
    if (!mw) return;
    clear_gauges(mw->slot);
    free(mw->index);
    free(mw);
}

void loom__metrics_worker_died(loom__metrics *m, int id, int status)
{
    if (!m || id < 0 || id >= m->nworkers) return;
    loom__mslot *s = &m->slot[id];
    clear_gauges(s);
    int sig = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
    if (sig < 0 || sig > 64) sig = 0;
    loom__m_add(&m->restarts_by_signal[sig], 1);
    loom__m_add(&s->restarts, 1);
}

static int same(const loom__mseries *e, const char *plugin, const char *route, const char *method)
{
    /* Labels are stored cut to their field: compare the same way. */
    char p[sizeof e->plugin], r[sizeof e->route], m[sizeof e->method];
    put_label(p, sizeof p, plugin);
    put_label(r, sizeof r, route);
    put_label(m, sizeof m, method);
    return strcmp(e->plugin, p) == 0 && strcmp(e->route, r) == 0 && strcmp(e->method, m) == 0;
}

uint16_t loom__metrics_series(loom__mworker *mw, const char *plugin, const char *route,
                              const char *method)
{
    loom__mslot *s = mw->slot;
    uint32_t mask = mw->index_cap - 1, i = hash3(plugin, route, method) & mask;
    for (;; i = (i + 1) & mask) {
        uint16_t v = mw->index[i];
        if (!v) break;
        if (same(&s->series[v - 1], plugin, route, method)) return v;
    }
    if (s->nseries >= LOOM__M_SERIES - 1) {
        /* Full: the last series is "(other)". */
        loom__mseries *o = &s->series[LOOM__M_SERIES - 1];
        if (!o->used) {
            put_label(o->plugin, sizeof o->plugin, "");
            put_label(o->route, sizeof o->route, "(other)");
            put_label(o->method, sizeof o->method, "other");
            __atomic_store_n(&o->used, 1, __ATOMIC_RELEASE);
            __atomic_store_n(&s->nseries, LOOM__M_SERIES, __ATOMIC_RELEASE);
            loom__warn("metrics: more than %d series (plugin, route, method); the rest are "
                       "counted as route \"(other)\"",
                       LOOM__M_SERIES - 1);
        }
        return LOOM__M_SERIES;
    }
    uint32_t k = s->nseries;
    loom__mseries *e = &s->series[k];
    /* Readers see series below nseries only, so this one may be written
     * whole (a predecessor may have left it half made). */
    __atomic_store_n(&e->used, 0, __ATOMIC_RELAXED);
    memset(e, 0, sizeof *e);
    put_label(e->plugin, sizeof e->plugin, plugin);
    put_label(e->route, sizeof e->route, route);
    put_label(e->method, sizeof e->method, method);
    __atomic_store_n(&e->used, 1, __ATOMIC_RELEASE);
    __atomic_store_n(&s->nseries, k + 1, __ATOMIC_RELEASE);
    mw->index[i] = (uint16_t)(k + 1);
    return (uint16_t)(k + 1);
}

uint16_t loom__metrics_unmatched(loom__mworker *mw, unsigned method_slot, const char *method)
{
    if (method_slot >= LOOM__M_METHODS) method_slot = LOOM__M_METHODS - 1;
    if (!mw->unmatched[method_slot])
        mw->unmatched[method_slot] = loom__metrics_series(
            mw, "", "(unmatched)", method_slot == LOOM__M_METHODS - 1 ? "other" : method);
    return mw->unmatched[method_slot];
}

int loom__metrics_proto(const char *name)
{
    if (!name) return LOOM__P_HTTP1;
    if (strcmp(name, "h2") == 0) return LOOM__P_H2;
    if (strcmp(name, "websocket") == 0) return LOOM__P_WS;
    return LOOM__P_OTHER;
}

void loom__metrics_session(loom__mworker *mw, int op, int failed)
{
    if (!mw || op < 0 || op >= LOOM__NSOPS) return;
    loom__m_add(&mw->slot->session_ops[op][failed ? 1 : 0], 1);
}

void loom__metrics_fetch(loom__mworker *mw, int error)
{
    if (!mw) return;
    int i = -error;
    if (i < 0 || i >= LOOM__M_FETCH_OUTCOMES - 1) i = LOOM__M_FETCH_OUTCOMES - 1;
    loom__m_add(&mw->slot->fetches[i], 1);
}

uint32_t loom__metrics_read_plugins(const loom__mslot *s, loom__mplugin *out)
{
    for (int tries = 0; tries < 1000; tries++) {
        uint64_t seq = __atomic_load_n(&s->pseq, __ATOMIC_ACQUIRE);
        if (seq & 1) continue;
        uint32_t n = __atomic_load_n(&s->nplugins, __ATOMIC_RELAXED);
        if (n > LOOM__M_PLUGINS) n = LOOM__M_PLUGINS;
        memcpy(out, s->plugins, n * sizeof *out);
        __atomic_thread_fence(__ATOMIC_ACQUIRE);
        if (__atomic_load_n(&s->pseq, __ATOMIC_RELAXED) == seq) {
            for (uint32_t i = 0; i < n; i++) { /* never trust a string's end */
                out[i].name[sizeof out[i].name - 1] = '\0';
                out[i].version[sizeof out[i].version - 1] = '\0';
                out[i].hash[sizeof out[i].hash - 1] = '\0';
                out[i].last_error[sizeof out[i].last_error - 1] = '\0';
            }
            return n;
        }
    }
    return 0;
}
