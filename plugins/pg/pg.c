/* The pg plugin: offers the "pg" service (sdk/include/loom/pg.h) to other
 * plugins, backed by one pool of libpq connections per worker.
 *
 * Config ("plugins": {"pg": {...}}), every key optional:
 *   conninfo            libpq connection string or URI ("" = libpq's
 *                       defaults and PG* environment variables)
 *   pool_size           connections per worker (8)
 *   min_connections     kept open once the pool has started (1)
 *   connect_timeout_ms  (5000)
 *   idle_timeout_ms     an idle connection beyond min_connections closes (60000)
 *   queue_timeout_ms    how long a batch waits for a connection, then 503 (2000)
 *   max_queue           batches waiting at most, then 503 at once (4096)
 *   pipeline_depth      batches of different requests in flight on one
 *                       connection (1: a connection serves one request at a time)
 *   max_batch           queries in one batch (1000)
 *   statements          prepared statements cached per connection (256)
 *   backoff_min_ms, backoff_max_ms   reconnect back-off (100, 5000)
 *   application_name    shown in pg_stat_activity ("loom")
 *
 * The pool starts with the first request that uses it: init does no I/O
 * (a reload the host refuses after init must leave nothing running). */
#define _GNU_SOURCE /* getaddrinfo, strdup, F_DUPFD_CLOEXEC */
#include "pg_int.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

pg_pool pg__pool;

static PQconninfoOption *conninfo_opts;
static char resolved_addr[INET6_ADDRSTRLEN];
static char app_name[64];
static int started;

uint64_t pg__now_ms(void)
{
    return loom_now_ns() / 1000000u;
}

const char *pg__oneline(char *out, size_t outlen, const char *msg)
{
    size_t o = 0;
    int space = 0;
    for (const char *s = msg ? msg : ""; *s && o + 1 < outlen; s++) {
        if (*s == '\n' || *s == '\r' || *s == '\t' || *s == ' ') {
            space = o > 0;
            continue;
        }
        if (space && o + 2 < outlen) out[o++] = ' ';
        space = 0;
        out[o++] = *s;
    }
    out[o] = '\0';
    return out;
}

void pg__logf(int level, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    loom_log(pg__pool.self, level, buf);
}

static void on_tick(loom_timer *t, void *ud)
{
    (void)t;
    (void)ud;
    pg__pool_tick(&pg__pool);
}

void pg__pool_start(void)
{
    pg_pool *p = &pg__pool;
    if (started || p->stopping) return;
    started = 1;
    p->tick = loom_timer_start(p->self, 100, 100, on_tick, NULL);
    for (uint32_t i = 0; i < p->min_conns && i < p->size; i++) pg__conn_start(p);
}

/* ---- config ------------------------------------------------------------ */

static int bad(const char *key, const char *why)
{
    pg__logf(LOOM_LOG_ERROR, "config key \"%s\": %s", key, why);
    return LOOM_EINVAL;
}

static int get_uint(const loom_json *cfg, const char *key, uint64_t lo, uint64_t hi, uint64_t *out)
{
    const loom_json *v = loom_json_get(cfg, key);
    if (!v) return 0;
    char why[96];
    snprintf(why, sizeof why, "want an integer from %llu to %llu", (unsigned long long)lo,
             (unsigned long long)hi);
    if (loom_json_type(v) != LOOM_JSON_INTEGER) return bad(key, why);
    int64_t n = loom_json_integer(v);
    if (n < (int64_t)lo || (uint64_t)n > hi) return bad(key, why);
    *out = (uint64_t)n;
    return 0;
}

static const char *opt(const char *key)
{
    for (PQconninfoOption *o = conninfo_opts; o && o->keyword; o++)
        if (strcmp(o->keyword, key) == 0) return o->val;
    return NULL;
}

/* libpq resolves a host name inside PQconnectStart, on the loop: resolve a
 * single host name once here instead (hostaddr), keeping host for TLS. */
static int resolve_host(void)
{
    const char *host = opt("host");
    if (!host || !*host || opt("hostaddr") || host[0] == '/' || host[0] == '@' || strchr(host, ','))
        return 0;
    unsigned char buf[sizeof(struct in6_addr)];
    if (inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1) return 0;
    struct addrinfo hints, *ai = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    int rc = getaddrinfo(host, NULL, &hints, &ai);
    if (rc || !ai) {
        pg__logf(LOOM_LOG_WARN, "cannot resolve host \"%s\" (%s); libpq will try at connect time",
                 host, gai_strerror(rc));
        return 0;
    }
    const void *a = ai->ai_family == AF_INET
                        ? (const void *)&((struct sockaddr_in *)ai->ai_addr)->sin_addr
                        : (const void *)&((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr;
    inet_ntop(ai->ai_family, a, resolved_addr, sizeof resolved_addr);
    freeaddrinfo(ai);
    pg__logf(LOOM_LOG_INFO, "host \"%s\" is %s (resolved once, at load)", host, resolved_addr);
    return 1;
}

static int build_params(pg_pool *p, const char *appname)
{
    size_t n = 0;
    for (PQconninfoOption *o = conninfo_opts; o->keyword; o++) n++;
    p->keys = calloc(n + 4, sizeof *p->keys);
    p->vals = calloc(n + 4, sizeof *p->vals);
    if (!p->keys || !p->vals) return -1;
    size_t k = 0;
    for (PQconninfoOption *o = conninfo_opts; o->keyword; o++)
        if (o->val) {
            p->keys[k] = o->keyword;
            p->vals[k++] = o->val;
        }
    if (resolve_host()) {
        p->keys[k] = "hostaddr";
        p->vals[k++] = resolved_addr;
    }
    if (!opt("application_name")) {
        /* An instance's connections are told apart in pg_stat_activity. */
        snprintf(app_name, sizeof app_name, "%s:%d:%llx", appname, (int)getpid(),
                 (unsigned long long)(loom_now_ns() & 0xffffffffffull));
        p->keys[k] = "application_name";
        p->vals[k++] = app_name;
    }
    if (!opt("client_encoding")) {
        p->keys[k] = "client_encoding";
        p->vals[k++] = "UTF8";
    }
    const char *host = opt("host"), *port = opt("port"), *db = opt("dbname");
    char t[300];
    snprintf(t, sizeof t, "%s:%s/%s", host && *host ? host : "(default host)",
             port && *port ? port : "5432", db && *db ? db : "(default database)");
    p->target = strdup(t);
    return p->target ? 0 : -1;
}

static int configure(pg_pool *p, const loom_json *cfg)
{
    static const char *known[] = {"conninfo",         "pool_size",
                                  "min_connections",  "connect_timeout_ms",
                                  "idle_timeout_ms",  "queue_timeout_ms",
                                  "max_queue",        "pipeline_depth",
                                  "max_batch",        "statements",
                                  "backoff_min_ms",   "backoff_max_ms",
                                  "application_name", NULL};
    for (size_t i = 0; i < loom_json_size(cfg); i++) {
        const char *k = loom_json_key_at(cfg, i, NULL);
        int ok = 0;
        for (size_t j = 0; known[j]; j++) ok |= strcmp(k, known[j]) == 0;
        if (!ok) return bad(k, "unknown key (see plugins/pg/pg.c or the README)");
    }
    uint64_t v[12] = {8, 1, 5000, 60000, 2000, 4096, 1, 1000, 256, 100, 5000};
    if (get_uint(cfg, "pool_size", 1, 1000, &v[0]) ||
        get_uint(cfg, "min_connections", 0, 1000, &v[1]) ||
        get_uint(cfg, "connect_timeout_ms", 100, 600000, &v[2]) ||
        get_uint(cfg, "idle_timeout_ms", 100, 86400000, &v[3]) ||
        get_uint(cfg, "queue_timeout_ms", 1, 600000, &v[4]) ||
        get_uint(cfg, "max_queue", 0, 1000000, &v[5]) ||
        get_uint(cfg, "pipeline_depth", 1, 64, &v[6]) ||
        get_uint(cfg, "max_batch", 1, 100000, &v[7]) ||
        get_uint(cfg, "statements", 0, 100000, &v[8]) ||
        get_uint(cfg, "backoff_min_ms", 1, 600000, &v[9]) ||
        get_uint(cfg, "backoff_max_ms", 1, 3600000, &v[10]))
        return LOOM_EINVAL;
    if (v[1] > v[0]) return bad("min_connections", "must not be above pool_size");
    if (v[9] > v[10]) return bad("backoff_min_ms", "must not be above backoff_max_ms");
    p->size = (uint32_t)v[0];
    p->min_conns = (uint32_t)v[1];
    p->connect_timeout = v[2];
    p->idle_timeout = v[3];
    p->queue_timeout = v[4];
    p->max_queue = (uint32_t)v[5];
    p->depth = (uint32_t)v[6];
    p->max_batch = (uint32_t)v[7];
    p->max_stmts = (uint32_t)v[8];
    p->backoff_min = v[9];
    p->backoff_max = v[10];

    const char *conninfo = "", *appname = "loom";
    const loom_json *ci = loom_json_get(cfg, "conninfo");
    if (ci) {
        conninfo = loom_json_string(ci, NULL);
        if (!conninfo)
            return bad("conninfo", "want a string (libpq keywords or a postgresql:// URI)");
    }
    const loom_json *an = loom_json_get(cfg, "application_name");
    if (an) {
        appname = loom_json_string(an, NULL);
        if (!appname || strlen(appname) > 40)
            return bad("application_name", "want a string of up to 40 bytes");
    }
    char *err = NULL;
    conninfo_opts = PQconninfoParse(conninfo, &err);
    if (!conninfo_opts) {
        char why[300];
        pg__oneline(why, sizeof why, err ? err : "out of memory");
        PQfreemem(err);
        return bad("conninfo", why);
    }
    if (build_params(p, appname)) return LOOM_ENOMEM;
    if (p->max_stmts) {
        p->stmts = calloc(p->max_stmts, sizeof *p->stmts);
        uint32_t ns = 16;
        while (ns < 2 * p->max_stmts) ns *= 2;
        p->slots = calloc(ns, sizeof *p->slots);
        p->nslots = ns;
        if (!p->stmts || !p->slots) return LOOM_ENOMEM;
    }
    return 0;
}

/* ---- plugin ------------------------------------------------------------ */

static void release_all(pg_pool *p)
{
    for (uint32_t i = 0; i < p->nstmts; i++) free(p->stmts[i].key);
    free(p->stmts);
    free(p->slots);
    while (p->free_batches) {
        loom_pg_batch *b = p->free_batches;
        p->free_batches = b->next;
        free(b->q);
        free(b->buf);
        free(b);
    }
    free(p->keys);
    free(p->vals);
    free(p->target);
    if (conninfo_opts) PQconninfoFree(conninfo_opts);
    conninfo_opts = NULL;
}

static int32_t init(loom_plugin *self, const char *config, size_t len)
{
    (void)config;
    (void)len;
    pg_pool *p = &pg__pool;
    memset(p, 0, sizeof *p);
    p->self = self;
    int32_t rc = configure(p, loom_config(self));
    if (rc == 0) {
        loom_service_def def = {sizeof def, LOOM_PG_VERSION, LOOM_PG_SERVICE, &pg__api};
        rc = loom_service_register(self, &def);
    }
    if (rc) {
        release_all(p);
        return rc;
    }
    pg__logf(LOOM_LOG_INFO, "service \"pg\" v%d: %s, pool of %u per worker, libpq %d",
             LOOM_PG_VERSION, p->target, p->size, PQlibVersion());
    return 0;
}

static void fini(loom_plugin *self)
{
    (void)self;
    pg_pool *p = &pg__pool;
    p->stopping = 1;
    /* No request holds this instance any more: what is left is detached. */
    pg__fail_queue(p, LOOM_PG_E_STOPPING, "the pool is closing");
    pg__pool_close_all(p);
    while (p->later) {
        loom_pg_batch *b = p->later;
        p->later = b->next;
        b->next = NULL;
        pg__deliver(b);
    }
    if (p->served || p->failed)
        pg__logf(LOOM_LOG_INFO, "served %llu batches, %llu failed", (unsigned long long)p->served,
                 (unsigned long long)p->failed);
    release_all(p);
}

/* PG_BUILD_TAG: the tests build a second, otherwise identical, pg.so. */
#ifdef PG_BUILD_TAG
#define PG_PLUGIN_VERSION "1.0.0+" PG_BUILD_TAG
#else
#define PG_PLUGIN_VERSION "1.0.0"
#endif
LOOM_PLUGIN("pg", PG_PLUGIN_VERSION, init, fini)
