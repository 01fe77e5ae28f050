/* Registry snapshots: the router and the ordered middleware chain built from
 * a set of plugin instances, shared read-only by every request that pinned
 * it. */
#include "plugin/host.h"
#include "admin/admin.h"
#include "util/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int name_in_list(const char *list, const char *name)
{
    if (!list) return 0;
    size_t nl = strlen(name);
    const char *p = list;
    while (*p) {
        while (*p == ' ' || *p == ',') p++;
        const char *e = p;
        while (*e && *e != ',') e++;
        const char *t = e;
        while (t > p && t[-1] == ' ') t--;
        if ((size_t)(t - p) == nl && memcmp(p, name, nl) == 0) return 1;
        p = e;
    }
    return 0;
}

/* Orders middleware: a topological sort of the before/after constraints;
 * among the ready ones, the lowest (order class, load index) goes first. On a
 * cycle, names the middleware left in it. */
static int order_chain(loom__reg_mw *mws, size_t n, char *err, size_t errlen, long *culprit_mw)
{
    if (n == 0) return 0;
    unsigned char *edge = calloc(n * n, 1); /* edge[a*n+b]: a runs before b */
    size_t *indeg = calloc(n, sizeof *indeg);
    int *done = calloc(n, sizeof *done);
    loom__reg_mw *out = malloc(n * sizeof *out);
    int rc = -1;
    if (!edge || !indeg || !done || !out) goto end;
    for (size_t a = 0; a < n; a++)
        for (size_t b = 0; b < n; b++) {
            if (a == b) continue;
            if (name_in_list(mws[a].before, mws[b].name) || name_in_list(mws[b].after, mws[a].name))
                edge[a * n + b] = 1;
        }
    for (size_t a = 0; a < n; a++)
        for (size_t b = 0; b < n; b++) indeg[b] += edge[a * n + b];
    for (size_t k = 0; k < n; k++) {
        long best = -1;
        for (size_t i = 0; i < n; i++) {
            if (done[i] || indeg[i]) continue;
            if (best < 0 || mws[i].order < mws[best].order ||
                (mws[i].order == mws[best].order && mws[i].load_index < mws[best].load_index))
                best = (long)i;
        }
        if (best < 0) {
            size_t o = (size_t)snprintf(err, errlen, "middleware order has a cycle among:");
            for (size_t i = 0; i < n; i++)
                if (!done[i]) {
                    o += (size_t)snprintf(err + o, o < errlen ? errlen - o : 0, " %s (%s)",
                                          mws[i].name, mws[i].owner->name);
                    *culprit_mw = (long)i;
                }
            goto end;
        }
        done[best] = 1;
        out[k] = mws[best];
        for (size_t b = 0; b < n; b++)
            if (edge[(size_t)best * n + b]) indeg[b]--;
    }
    memcpy(mws, out, n * sizeof *out);
    rc = 0;
end:
    free(edge);
    free(indeg);
    free(done);
    free(out);
    return rc;
}

/* Snapshots are built, pinned and freed on the loop thread of their host. */
static _Thread_local loom__snapshot *live;

static void snapshot_free(loom__snapshot *s)
{
    if (s->live_prev)
        s->live_prev->live_next = s->live_next;
    else
        live = s->live_next;
    if (s->live_next) s->live_next->live_prev = s->live_prev;
    loom__router_free(s->router);
    free(s->chain);
    free(s->plugins);
    free(s->services);
    free(s->metas);
    free(s);
}

loom__snapshot *loom__snapshot_build(loom__host *h, loom_plugin **plugins, size_t n, char *err,
                                     size_t errlen, long *culprit)
{
    (void)h;
    *culprit = -1;
    loom__snapshot *s = calloc(1, sizeof *s);
    if (!s) goto oom;
    s->live_next = live;
    if (live) live->live_prev = s;
    live = s;
    s->router = loom__router_new();
    s->plugins = calloc(n ? n : 1, sizeof *s->plugins);
    if (!s->router || !s->plugins) goto oom;
    size_t nmw = 0, nroutes = 0, nmeta = 0;
    for (size_t i = 0; i < n; i++) nmw += plugins[i]->nmws, nroutes += plugins[i]->nroutes;
    s->metas = calloc(nroutes ? nroutes : 1, sizeof *s->metas);
    if (!s->metas) goto oom;
    s->chain = calloc(nmw ? nmw : 1, sizeof *s->chain);
    if (!s->chain) goto oom;
    for (size_t i = 0; i < n; i++) {
        loom_plugin *p = plugins[i];
        p->load_index = (uint32_t)i;
        s->plugins[s->nplugins++] = p;
        for (size_t k = 0; k < p->nroutes; k++) {
            loom__reg_route *r = &p->routes[k];
            loom__route_meta *meta = &s->metas[nmeta++];
            meta->pattern = r->pattern;
            loom__route_target t = {(void *)r->fn, r->ud, p, r->name, r->flags, meta};
            char why[256];
            if (loom__router_add(s->router, r->method, r->pattern, &t, why, sizeof why)) {
                snprintf(err, errlen, "plugin %s: route %s %s: %s", p->name, r->method, r->pattern,
                         why);
                *culprit = (long)i;
                goto fail;
            }
        }
        for (size_t k = 0; k < p->nmws; k++) {
            for (size_t j = 0; j < s->nchain; j++)
                if (strcmp(s->chain[j].name, p->mws[k].name) == 0) {
                    snprintf(err, errlen, "plugin %s: middleware name '%s' is taken by plugin %s",
                             p->name, p->mws[k].name, s->chain[j].owner->name);
                    *culprit = (long)i;
                    goto fail;
                }
            s->chain[s->nchain] = p->mws[k];
            s->chain[s->nchain].load_index = (uint32_t)(i * 1000 + k);
            s->nchain++;
        }
    }
    if (loom__services_index(s, err, errlen, culprit)) goto fail;
    long bad = -1;
    if (order_chain(s->chain, s->nchain, err, errlen, &bad)) {
        if (bad >= 0)
            for (size_t i = 0; i < n; i++)
                if (plugins[i] == s->chain[bad].owner) *culprit = (long)i;
        goto fail;
    }
    for (size_t i = 0; i < n; i++) plugins[i]->refs++;
    s->refs = 0;
    return s;
oom:
    snprintf(err, errlen, "out of memory");
fail:
    if (s) snapshot_free(s);
    return NULL;
}

void loom__snapshot_ref(loom__snapshot *s)
{
    s->refs++;
}

void loom__snapshot_unref(loom__host *h, loom__snapshot *s)
{
    if (--s->refs > 0) return;
    /* A request whose client left no longer knows its worker's host. */
    if (!h && s->nplugins) h = s->plugins[0]->host;
    for (size_t i = 0; i < s->nplugins; i++) {
        loom_plugin *p = s->plugins[i];
        if (--p->refs == 0) loom__plugin_unload(p);
    }
    snapshot_free(s);
    /* The last request pinning a snapshot after the drain (its client left,
     * its handler answered late) may be what a stopping host waited for. */
    if (h && h->stopping) loom__host_free_if_done(h);
}

int loom__snapshots_alive(void)
{
    return live != NULL;
}

int64_t loom__plugin_inflight(const loom_plugin *p)
{
    int64_t n = 0;
    for (const loom__snapshot *s = live; s; s = s->live_next)
        for (size_t i = 0; i < s->nplugins; i++)
            if (s->plugins[i] == p) n += s->requests;
    return n;
}

void loom__host_publish(loom__host *h, loom__snapshot *s)
{
    loom__snapshot *old = h->current;
    loom__snapshot_ref(s);
    h->current = s;
    if (old) loom__snapshot_unref(h, old);
    loom__admin_publish_plugins(h);
}
