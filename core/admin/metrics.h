/* Server metrics: counters kept per worker in memory shared by every
 * process of the server, summed when they are read.
 *
 * The master maps one region (MAP_SHARED | MAP_ANONYMOUS) before it forks,
 * with one slot per worker. A worker writes only its own slot, and only
 * from its loop thread (the thread-pool gauges excepted, which are atomic),
 * so the request path takes no lock and allocates nothing: an update is a
 * load and a store. Whoever answers a scrape (any worker's admin listener)
 * reads every slot and sums; a counter read while it changes is at most one
 * request old. Slots belong to the worker's position, not its process: a
 * respawned worker continues its predecessor's counters (so the sums never
 * go down), and the master clears the gauges of a worker that died.
 *
 * Requests are counted per series: (plugin, route pattern, method), each
 * with its status classes and a latency histogram of fixed buckets. A
 * worker makes a series the first time it answers one; routes cache their
 * series per method (loom__route_meta), so finding it costs nothing after.
 * A worker has LOOM__M_SERIES series at most; requests beyond them are
 * counted in the series route="(other)". */
#ifndef LOOM_ADMIN_METRICS_H
#define LOOM_ADMIN_METRICS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define LOOM__M_SERIES 512
#define LOOM__M_BUCKETS 17 /* 16 bounds and +Inf */
#define LOOM__M_PLUGINS 64 /* per worker, in the plugin table */
#define LOOM__M_METHODS 10 /* method slots (loom__metrics_method_slot) */

/* Protocols of open connections. */
enum { LOOM__P_HTTP1, LOOM__P_H2, LOOM__P_WS, LOOM__P_OTHER, LOOM__NPROTO };
/* Session store operations and their results. */
enum { LOOM__S_LOAD, LOOM__S_SAVE, LOOM__S_DELETE, LOOM__S_TOUCH, LOOM__NSOPS };
/* Client fetch outcomes: 0 ok, 1..30 the LOOM_FETCH_E_* codes negated, then
 * other (a code added later). */
#define LOOM__M_FETCH_OUTCOMES 32

/* The bucket bounds in nanoseconds (the last is +Inf). */
extern const uint64_t loom__m_bounds_ns[LOOM__M_BUCKETS - 1];

typedef struct {
    uint32_t used; /* set last (release): the labels are complete */
    char plugin[48], route[160], method[16];
    uint64_t status[5];               /* 1xx .. 5xx */
    uint64_t bucket[LOOM__M_BUCKETS]; /* not cumulative; +Inf last */
    uint64_t sum_ns;
} loom__mseries;

typedef struct {
    char name[48], version[32], hash[65];
    uint64_t generation;
    int64_t loaded_at;
    uint32_t routes, middleware;
    char last_error[160];
} loom__mplugin;

/* One worker's slot. */
typedef struct {
    int64_t pid;                        /* 0 while the worker is down */
    int64_t started_at;                 /* unix seconds */
    uint64_t up;                        /* 1 while it serves */
    uint64_t inflight;                  /* requests handed to a handler and not answered */
    uint64_t conns[LOOM__NPROTO];       /* open, by protocol */
    uint64_t conns_total[LOOM__NPROTO]; /* accepted (or switched to the protocol) */
    uint64_t bytes_in, bytes_out;
    uint64_t rejected[5]; /* by status class */
    uint64_t reloads, reload_failures, reload_last_ns;
    uint64_t generations;                 /* plugin instances loaded since start */
    uint64_t session_ops[LOOM__NSOPS][2]; /* [op][0 ok, 1 error] */
    uint64_t fetches[LOOM__M_FETCH_OUTCOMES];
    uint64_t pool_queued, pool_running; /* thread-pool jobs (atomic) */
    uint64_t restarts;                  /* written by the master */
    /* The plugins the worker serves with (its current snapshot), under a
     * sequence lock: odd while the worker rewrites it. */
    uint64_t pseq;
    uint32_t nplugins;
    loom__mplugin plugins[LOOM__M_PLUGINS];
    uint32_t nseries;
    loom__mseries series[LOOM__M_SERIES];
} loom__mslot;

/* The shared region. */
typedef struct loom__metrics {
    uint64_t magic;
    int32_t nworkers;
    int64_t master_pid;
    int64_t started_at;
    /* Written by the master when a worker dies: by signal number (0: it
     * exited instead). */
    uint64_t restarts_by_signal[65];
    uint64_t pad[7];
    loom__mslot slot[];
} loom__metrics;

/* The worker's side: its slot, and a private index of its series. */
typedef struct loom__mworker {
    loom__mslot *slot;
    loom__metrics *all;
    uint16_t *index; /* open addressing over series (index + 1; 0 = empty) */
    uint32_t index_cap;
    uint16_t unmatched[LOOM__M_METHODS]; /* series + 1 of route="(unmatched)" per method */
    uint64_t last_generation;            /* the newest plugin generation published */
} loom__mworker;

/* Maps the region for `nworkers` workers. NULL (logged) on failure. */
loom__metrics *loom__metrics_open(int nworkers);
void loom__metrics_close(loom__metrics *m);
/* In worker `id`: its side of the region (clears its gauges). NULL when m is. */
loom__mworker *loom__metrics_worker(loom__metrics *m, int id);
void loom__metrics_worker_free(loom__mworker *mw);
/* The master saw worker `id` die with wait status `status`. */
void loom__metrics_worker_died(loom__metrics *m, int id, int status);

/* Relaxed single-writer updates: a load and a store, no lock prefix. */
static inline void loom__m_add(uint64_t *p, uint64_t n)
{
    __atomic_store_n(p, __atomic_load_n(p, __ATOMIC_RELAXED) + n, __ATOMIC_RELAXED);
}
static inline void loom__m_sub(uint64_t *p, uint64_t n)
{
    __atomic_store_n(p, __atomic_load_n(p, __ATOMIC_RELAXED) - n, __ATOMIC_RELAXED);
}
static inline uint64_t loom__m_get(const uint64_t *p)
{
    return __atomic_load_n(p, __ATOMIC_RELAXED);
}

/* Copies worker slot s's plugin table into out (LOOM__M_PLUGINS entries),
 * consistently (it retries while the worker rewrites it). Returns how many. */
uint32_t loom__metrics_read_plugins(const loom__mslot *s, loom__mplugin *out);

/* The method slot of an llhttp method id. */
static inline unsigned loom__metrics_method_slot(unsigned method_id)
{
    /* DELETE GET HEAD POST PUT CONNECT OPTIONS TRACE, PATCH, other */
    return method_id <= 7 ? method_id : method_id == 28 ? 8 : 9;
}

/* Finds or makes the series (plugin, route, method) of this worker; returns
 * its index + 1, or the "(other)" series' when the table is full. */
uint16_t loom__metrics_series(loom__mworker *mw, const char *plugin, const char *route,
                              const char *method);

/* Counts a request answered with `status` after `ns` nanoseconds in series
 * `sid` (index + 1). */
static inline void loom__metrics_observe(loom__mworker *mw, uint16_t sid, int status, uint64_t ns)
{
    loom__mseries *s = &mw->slot->series[sid - 1];
    unsigned cls = (unsigned)(status / 100) - 1u;
    if (cls < 5) loom__m_add(&s->status[cls], 1);
    unsigned b = 0;
    while (b < LOOM__M_BUCKETS - 1 && ns > loom__m_bounds_ns[b]) b++;
    loom__m_add(&s->bucket[b], 1);
    loom__m_add(&s->sum_ns, ns);
}

/* The per-method series of requests no route matched. */
uint16_t loom__metrics_unmatched(loom__mworker *mw, unsigned method_slot, const char *method);

/* Connection counts: a connection of protocol `p` opened / closed. */
static inline void loom__metrics_conn(loom__mworker *mw, int p, int open)
{
    if (open) {
        loom__m_add(&mw->slot->conns[p], 1);
        loom__m_add(&mw->slot->conns_total[p], 1);
    } else {
        loom__m_sub(&mw->slot->conns[p], 1);
    }
}
/* Bytes received (out = 0) or sent (out = 1) on connections. */
static inline void loom__metrics_bytes(struct loom__mworker *mw, int out, uint64_t n)
{
    if (mw) loom__m_add(out ? &mw->slot->bytes_out : &mw->slot->bytes_in, n);
}
/* A request refused before it reached a handler (parse error, limit, timeout). */
static inline void loom__metrics_rejected(struct loom__mworker *mw, int status)
{
    unsigned cls = (unsigned)(status / 100) - 1u;
    if (mw && cls < 5) loom__m_add(&mw->slot->rejected[cls], 1);
}
/* The protocol index of a protocol's name ("h2", "websocket"). */
int loom__metrics_proto(const char *name);

/* A session store operation finished; `failed` when it returned an error
 * (a missing session is not one). */
void loom__metrics_session(loom__mworker *mw, int op, int failed);
/* A plugin's fetch finished with `error` (LOOM_FETCH_OK or LOOM_FETCH_E_*). */
void loom__metrics_fetch(loom__mworker *mw, int error);

#endif
