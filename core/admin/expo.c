/* The Prometheus text exposition format, version 0.0.4: one HELP and TYPE
 * per family, then its samples; label values escaped (backslash, double
 * quote, newline); histogram buckets cumulative, ending with le="+Inf",
 * and _sum and _count beside them. Every family is printed even with no
 * sample, so that a scrape's set of families does not depend on traffic. */
#include "admin/admin.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>

#ifndef LOOM_VERSION
#define LOOM_VERSION "0"
#endif

static const char *const proto_names[LOOM__NPROTO] = {"http/1.1", "h2", "websocket", "other"};
static const char *const sop_names[LOOM__NSOPS] = {"load", "save", "delete", "touch"};
static const char *const fetch_names[LOOM__M_FETCH_OUTCOMES] = {"ok",
                                                                "invalid_url",
                                                                "dns",
                                                                "connection_refused",
                                                                "connect",
                                                                "connect_timeout",
                                                                "read_timeout",
                                                                "total_timeout",
                                                                "server_disconnected",
                                                                "payload",
                                                                "too_many_redirects",
                                                                "status",
                                                                "cancelled",
                                                                "bad_response",
                                                                "too_large",
                                                                "nomem",
                                                                "invalid_argument",
                                                                "cert_expired",
                                                                "cert_hostname",
                                                                "cert_untrusted",
                                                                "cert_chain",
                                                                "tls_version",
                                                                "tls_timeout",
                                                                "tls_reset",
                                                                "tls",
                                                                "tls_config",
                                                                "proxy_connect",
                                                                "proxy_auth",
                                                                "proxy_tunnel",
                                                                "decoded_too_large",
                                                                "downgrade",
                                                                "other"};

static void family(loom__buf *b, const char *name, const char *type, const char *help)
{
    loom__buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A label value, escaped. */
static void esc(loom__buf *b, const char *s)
{
    for (; *s; s++) {
        if (*s == '\\')
            loom__buf_append(b, "\\\\", 2);
        else if (*s == '"')
            loom__buf_append(b, "\\\"", 2);
        else if (*s == '\n')
            loom__buf_append(b, "\\n", 2);
        else
            loom__buf_append(b, s, 1);
    }
}

/* `{route="..",method="..",plugin=".."` without the closing brace. */
static void series_labels(loom__buf *b, const char *name, const loom__mseries *s)
{
    loom__buf_printf(b, "%s{route=\"", name);
    esc(b, s->route);
    loom__buf_puts(b, "\",method=\"");
    esc(b, s->method);
    loom__buf_puts(b, "\",plugin=\"");
    esc(b, s->plugin);
    loom__buf_puts(b, "\"");
}

typedef struct {
    const loom__mseries *s; /* labels */
    uint64_t status[5], bucket[LOOM__M_BUCKETS], sum_ns;
} merged;

static int cmp_series(const void *a, const void *b)
{
    const loom__mseries *x = *(const loom__mseries *const *)a,
                        *y = *(const loom__mseries *const *)b;
    int c = strcmp(x->route, y->route);
    if (!c) c = strcmp(x->method, y->method);
    if (!c) c = strcmp(x->plugin, y->plugin);
    return c;
}

static uint64_t sum_slots(const loom__metrics *m, size_t off)
{
    uint64_t t = 0;
    for (int w = 0; w < m->nworkers; w++)
        t += loom__m_get((const uint64_t *)((const char *)&m->slot[w] + off));
    return t;
}
#define SUM(field) sum_slots(m, offsetof(loom__mslot, field))

/* Every worker's series, the same labels summed. Returns a malloc'd array
 * (n entries) or NULL. */
static merged *merge_series(const loom__metrics *m, size_t *n)
{
    size_t total = 0;
    for (int w = 0; w < m->nworkers; w++) {
        uint32_t k = __atomic_load_n(&m->slot[w].nseries, __ATOMIC_ACQUIRE);
        total += k > LOOM__M_SERIES ? LOOM__M_SERIES : k;
    }
    *n = 0;
    const loom__mseries **all = malloc((total ? total : 1) * sizeof *all);
    merged *out = calloc(total ? total : 1, sizeof *out);
    if (!all || !out) {
        free(all);
        free(out);
        return NULL;
    }
    size_t na = 0;
    for (int w = 0; w < m->nworkers; w++) {
        uint32_t k = __atomic_load_n(&m->slot[w].nseries, __ATOMIC_ACQUIRE);
        if (k > LOOM__M_SERIES) k = LOOM__M_SERIES;
        for (uint32_t i = 0; i < k && na < total; i++)
            if (__atomic_load_n(&m->slot[w].series[i].used, __ATOMIC_ACQUIRE))
                all[na++] = &m->slot[w].series[i];
    }
    qsort(all, na, sizeof *all, cmp_series);
    for (size_t i = 0; i < na; i++) {
        if (*n == 0 || cmp_series(&all[i], &out[*n - 1].s) != 0) out[(*n)++].s = all[i];
        merged *g = &out[*n - 1];
        for (int c = 0; c < 5; c++) g->status[c] += loom__m_get(&all[i]->status[c]);
        for (int c = 0; c < LOOM__M_BUCKETS; c++) g->bucket[c] += loom__m_get(&all[i]->bucket[c]);
        g->sum_ns += loom__m_get(&all[i]->sum_ns);
    }
    free(all);
    return out;
}

static void requests(const loom__metrics *m, loom__buf *b)
{
    size_t n;
    merged *g = merge_series(m, &n);
    family(b, "loom_http_requests_total", "counter",
           "Requests answered, by route pattern, method, plugin and status class.");
    for (size_t i = 0; g && i < n; i++)
        for (int c = 0; c < 5; c++) {
            if (!g[i].status[c]) continue;
            series_labels(b, "loom_http_requests_total", g[i].s);
            loom__buf_printf(b, ",status=\"%dxx\"} %llu\n", c + 1,
                             (unsigned long long)g[i].status[c]);
        }
    family(b, "loom_http_request_duration_seconds", "histogram",
           "Time from handing a request to its plugin to its answer, by route pattern.");
    for (size_t i = 0; g && i < n; i++) {
        uint64_t cum = 0;
        for (int k = 0; k < LOOM__M_BUCKETS; k++) {
            cum += g[i].bucket[k];
            series_labels(b, "loom_http_request_duration_seconds_bucket", g[i].s);
            if (k < LOOM__M_BUCKETS - 1)
                loom__buf_printf(b, ",le=\"%g\"} %llu\n", (double)loom__m_bounds_ns[k] / 1e9,
                                 (unsigned long long)cum);
            else
                loom__buf_printf(b, ",le=\"+Inf\"} %llu\n", (unsigned long long)cum);
        }
        series_labels(b, "loom_http_request_duration_seconds_sum", g[i].s);
        loom__buf_printf(b, "} %.9f\n", (double)g[i].sum_ns / 1e9);
        series_labels(b, "loom_http_request_duration_seconds_count", g[i].s);
        loom__buf_printf(b, "} %llu\n", (unsigned long long)cum);
    }
    free(g);
}

/* Each worker's plugins: generation, and an info series with version and
 * hash. These are per worker (a sum of generations means nothing). */
static void plugins(const loom__metrics *m, loom__buf *b)
{
    loom__mplugin *ps = malloc(LOOM__M_PLUGINS * sizeof *ps);
    uint32_t *np = calloc((size_t)m->nworkers, sizeof *np);
    loom__mplugin **tab = calloc((size_t)m->nworkers, sizeof *tab);
    for (int w = 0; ps && np && tab && w < m->nworkers; w++) {
        np[w] = loom__metrics_read_plugins(&m->slot[w], ps);
        if (np[w] && (tab[w] = malloc(np[w] * sizeof *ps))) memcpy(tab[w], ps, np[w] * sizeof *ps);
    }
    family(b, "loom_plugin_generation", "gauge",
           "The generation of each plugin each worker serves with.");
    for (int w = 0; np && tab && w < m->nworkers; w++)
        for (uint32_t i = 0; tab[w] && i < np[w]; i++) {
            loom__buf_printf(b, "loom_plugin_generation{worker=\"%d\",plugin=\"", w);
            esc(b, tab[w][i].name);
            loom__buf_printf(b, "\"} %llu\n", (unsigned long long)tab[w][i].generation);
        }
    family(b, "loom_plugin_info", "gauge",
           "The plugins each worker serves with: version and sha256 of the file (always 1).");
    for (int w = 0; np && tab && w < m->nworkers; w++)
        for (uint32_t i = 0; tab[w] && i < np[w]; i++) {
            loom__buf_printf(b, "loom_plugin_info{worker=\"%d\",plugin=\"", w);
            esc(b, tab[w][i].name);
            loom__buf_puts(b, "\",version=\"");
            esc(b, tab[w][i].version);
            loom__buf_puts(b, "\",sha256=\"");
            esc(b, tab[w][i].hash);
            loom__buf_puts(b, "\"} 1\n");
        }
    for (int w = 0; tab && w < m->nworkers; w++) free(tab[w]);
    free(tab);
    free(np);
    free(ps);
}

void loom__admin_metrics_text(const loom__metrics *m, loom__buf *b)
{
    family(b, "loom_build_info", "gauge", "The running loom version.");
    loom__buf_printf(b, "loom_build_info{version=\"%s\"} 1\n", LOOM_VERSION);
    family(b, "loom_start_time_seconds", "gauge", "When the server started (unix time).");
    loom__buf_printf(b, "loom_start_time_seconds %lld\n", (long long)m->started_at);
    family(b, "loom_workers", "gauge", "Worker processes configured.");
    loom__buf_printf(b, "loom_workers %d\n", m->nworkers);
    family(b, "loom_workers_up", "gauge", "Worker processes serving now.");
    loom__buf_printf(b, "loom_workers_up %llu\n", (unsigned long long)SUM(up));
    family(b, "loom_worker_restarts_total", "counter",
           "Workers that died and were respawned, by the signal that ended them "
           "(\"none\": they exited).");
    for (int s = 0; s <= 64; s++) {
        uint64_t v = loom__m_get(&m->restarts_by_signal[s]);
        if (!v) continue;
        const char *abbrev = s ? sigabbrev_np(s) : NULL;
        if (s == 0)
            loom__buf_printf(b, "loom_worker_restarts_total{signal=\"none\"} %llu\n",
                             (unsigned long long)v);
        else if (abbrev)
            loom__buf_printf(b, "loom_worker_restarts_total{signal=\"SIG%s\"} %llu\n", abbrev,
                             (unsigned long long)v);
        else
            loom__buf_printf(b, "loom_worker_restarts_total{signal=\"%d\"} %llu\n", s,
                             (unsigned long long)v);
    }
    requests(m, b);
    family(b, "loom_http_requests_in_flight", "gauge",
           "Requests handed to a plugin and not answered yet.");
    loom__buf_printf(b, "loom_http_requests_in_flight %llu\n", (unsigned long long)SUM(inflight));
    family(b, "loom_http_rejected_total", "counter",
           "Requests refused before a plugin saw them (malformed, over a limit, too slow), "
           "by status class.");
    for (int c = 0; c < 5; c++) {
        uint64_t v = sum_slots(m, offsetof(loom__mslot, rejected) + (size_t)c * sizeof(uint64_t));
        if (v)
            loom__buf_printf(b, "loom_http_rejected_total{status=\"%dxx\"} %llu\n", c + 1,
                             (unsigned long long)v);
    }
    family(b, "loom_connections_open", "gauge", "Open client connections, by protocol.");
    for (int p = 0; p < LOOM__NPROTO; p++)
        loom__buf_printf(b, "loom_connections_open{protocol=\"%s\"} %llu\n", proto_names[p],
                         (unsigned long long)sum_slots(m, offsetof(loom__mslot, conns) +
                                                              (size_t)p * sizeof(uint64_t)));
    family(b, "loom_connections_total", "counter",
           "Client connections accepted (or switched to the protocol), by protocol.");
    for (int p = 0; p < LOOM__NPROTO; p++)
        loom__buf_printf(b, "loom_connections_total{protocol=\"%s\"} %llu\n", proto_names[p],
                         (unsigned long long)sum_slots(m, offsetof(loom__mslot, conns_total) +
                                                              (size_t)p * sizeof(uint64_t)));
    family(b, "loom_received_bytes_total", "counter",
           "Bytes received on client connections (TLS: ciphertext).");
    loom__buf_printf(b, "loom_received_bytes_total %llu\n", (unsigned long long)SUM(bytes_in));
    family(b, "loom_sent_bytes_total", "counter",
           "Bytes sent on client connections (TLS: ciphertext).");
    loom__buf_printf(b, "loom_sent_bytes_total %llu\n", (unsigned long long)SUM(bytes_out));
    family(b, "loom_plugin_reloads_total", "counter",
           "Plugin reloads that swapped in new code, summed over the workers.");
    loom__buf_printf(b, "loom_plugin_reloads_total %llu\n", (unsigned long long)SUM(reloads));
    family(b, "loom_plugin_reload_failures_total", "counter",
           "Plugin files refused at a reload (the loaded version kept serving), and reloads "
           "refused whole.");
    loom__buf_printf(b, "loom_plugin_reload_failures_total %llu\n",
                     (unsigned long long)SUM(reload_failures));
    family(b, "loom_plugin_reload_last_duration_seconds", "gauge",
           "How long each worker's last successful reload took.");
    for (int w = 0; w < m->nworkers; w++)
        loom__buf_printf(b, "loom_plugin_reload_last_duration_seconds{worker=\"%d\"} %.6f\n", w,
                         (double)loom__m_get(&m->slot[w].reload_last_ns) / 1e9);
    family(b, "loom_plugin_generations_loaded_total", "counter",
           "Plugin instances (generations) that went into service, summed over the workers.");
    loom__buf_printf(b, "loom_plugin_generations_loaded_total %llu\n",
                     (unsigned long long)SUM(generations));
    plugins(m, b);
    family(b, "loom_session_store_operations_total", "counter",
           "Session store operations, by operation and result.");
    for (int o = 0; o < LOOM__NSOPS; o++)
        for (int e = 0; e < 2; e++) {
            uint64_t v = sum_slots(m, offsetof(loom__mslot, session_ops) +
                                          ((size_t)o * 2 + (size_t)e) * sizeof(uint64_t));
            if (v)
                loom__buf_printf(b,
                                 "loom_session_store_operations_total{op=\"%s\",result=\"%s\"} "
                                 "%llu\n",
                                 sop_names[o], e ? "error" : "ok", (unsigned long long)v);
        }
    family(b, "loom_client_fetches_total", "counter",
           "Client requests made by plugins, by outcome.");
    for (int o = 0; o < LOOM__M_FETCH_OUTCOMES; o++) {
        uint64_t v = sum_slots(m, offsetof(loom__mslot, fetches) + (size_t)o * sizeof(uint64_t));
        if (v)
            loom__buf_printf(b, "loom_client_fetches_total{outcome=\"%s\"} %llu\n", fetch_names[o],
                             (unsigned long long)v);
    }
    family(b, "loom_threadpool_jobs", "gauge",
           "Plugin jobs on the thread pool: waiting for a thread, and running.");
    loom__buf_printf(b, "loom_threadpool_jobs{state=\"queued\"} %llu\n",
                     (unsigned long long)SUM(pool_queued));
    loom__buf_printf(b, "loom_threadpool_jobs{state=\"running\"} %llu\n",
                     (unsigned long long)SUM(pool_running));
}
