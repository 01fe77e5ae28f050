/* Host start-up and shutdown: scan the plugins directory, load what the
 * config enables, in the configured order, and publish the first snapshot. */
#include "plugin/host.h"

#include <loom/client.h>
#include "util/log.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int make_private_dir(loom__host *h)
{
    char path[4096];
    const char *bases[3] = {getenv("XDG_RUNTIME_DIR"), "/tmp", "/var/tmp"};
    for (int i = 0; i < 3; i++) {
        if (!bases[i]) continue;
        snprintf(path, sizeof path, "%s/loom-plugins-%d-XXXXXX", bases[i], (int)getpid());
        if (mkdtemp(path)) {
            h->private_dir = strdup(path);
            return 0;
        }
    }
    return -1;
}

static void free_handle(uv_handle_t *hd)
{
    free(hd);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int is_enabled(const loom__config *cfg, const char *name)
{
    json_t *o = json_object_get(cfg->plugins, name);
    json_t *e = o ? json_object_get(o, "enabled") : NULL;
    return !(e && json_is_false(e));
}

char **loom__plugin_list(const loom__config *cfg, size_t *n)
{
    *n = 0;
    DIR *d = opendir(cfg->plugins_dir);
    if (!d) {
        loom__err("plugins directory '%s': %s", cfg->plugins_dir, strerror(errno));
        return NULL;
    }
    char **names = NULL;
    size_t cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t l = strlen(e->d_name);
        if (e->d_name[0] == '.' || l < 4 || strcmp(e->d_name + l - 3, ".so") != 0) continue;
        if (*n == cap) {
            cap = cap ? cap * 2 : 16;
            char **nn = realloc(names, cap * sizeof *nn);
            if (!nn) break;
            names = nn;
        }
        names[(*n)++] = strndup(e->d_name, l - 3);
    }
    closedir(d);
    if (*n) qsort(names, *n, sizeof *names, cmp_str);
    /* Move the names of plugin_order to the front, in that order. */
    size_t front = 0;
    size_t i;
    json_t *v;
    if (cfg->plugin_order) {
        json_array_foreach(cfg->plugin_order, i, v)
        {
            const char *want = json_string_value(v);
            for (size_t k = front; k < *n; k++)
                if (strcmp(names[k], want) == 0) {
                    char *t = names[k];
                    memmove(names + front + 1, names + front, (k - front) * sizeof *names);
                    names[front++] = t;
                    break;
                }
        }
    }
    char **paths = calloc(*n ? *n : 1, sizeof *paths);
    size_t m = 0;
    for (size_t k = 0; k < *n; k++) {
        if (paths && is_enabled(cfg, names[k])) {
            size_t pl = strlen(cfg->plugins_dir) + strlen(names[k]) + 8;
            paths[m] = malloc(pl);
            if (paths[m]) snprintf(paths[m++], pl, "%s/%s.so", cfg->plugins_dir, names[k]);
        } else if (!is_enabled(cfg, names[k])) {
            loom__info("plugin %s: disabled in the config", names[k]);
        }
        free(names[k]);
    }
    free(names);
    *n = m;
    return paths;
}

/* Edit distance of two short names (for "did you mean"); capped at 9. */
static size_t distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 64 || lb > 64) return 9;
    size_t row[65];
    for (size_t j = 0; j <= lb; j++) row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t best = diag + (a[i - 1] != b[j - 1]);
            if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
            if (up + 1 < best) best = up + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb] < 9 ? row[lb] : 9;
}

/* Every object under "plugins" must be for a loaded plugin, for a plugin
 * file that is there but skipped, for one that is disabled ("enabled":
 * false), or the core's own "sessions":
 * anything else is a typo that would otherwise be ignored. Returns 0, or -1
 * after logging one line that names the key. */
static int check_plugin_sections(const loom__config *cfg, loom_plugin *const *ps, size_t np)
{
    const char *key;
    json_t *v;
    json_object_foreach(cfg->plugins, key, v)
    {
        if (strcmp(key, "sessions") == 0 || json_is_false(json_object_get(v, "enabled"))) continue;
        size_t i = 0;
        while (i < np && strcmp(ps[i]->name, key) != 0) i++;
        if (i < np) continue;
        char path[4096];
        struct stat st;
        snprintf(path, sizeof path, "%s/%s.so", cfg->plugins_dir, key);
        if (strchr(key, '/') == NULL && stat(path, &st) == 0) continue;
        const char *near = distance(key, "sessions") <= 2 ? "sessions" : NULL;
        for (i = 0; i < np && !near; i++)
            if (distance(key, ps[i]->name) <= 2) near = ps[i]->name;
        loom__err(
            "config: \"plugins\": {\"%s\": ...}: no plugin named '%s' is loaded from %s%s%s%s", key,
            key, cfg->plugins_dir, near ? " (did you mean '" : "", near ? near : "",
            near ? "'?)" : "");
        return -1;
    }
    return 0;
}

static void host_drain(loom__worker *w)
{
    if (w->host) loom__sse_drain(w->host);
}

loom__host *loom__host_start(loom__worker *w, const loom__config *cfg)
{
    loom__host *h = calloc(1, sizeof *h);
    if (!h) return NULL;
    h->w = w;
    h->loop = w->loop;
    h->cfg = cfg;
    w->host = h;
    if (make_private_dir(h)) {
        loom__err("cannot create a private directory for plugin copies: %s", strerror(errno));
        free(h);
        w->host = NULL;
        return NULL;
    }
    size_t n = 0;
    char **paths = cfg->plugins_dir ? loom__plugin_list(cfg, &n) : NULL;
    int failed = cfg->plugins_dir && !paths;
    loom_plugin **ps = calloc(n ? n : 1, sizeof *ps);
    size_t np = 0;
    for (size_t i = 0; i < n; i++) {
        char err[512];
        loom__load_opts o = {.taken = ps, .ntaken = np};
        loom_plugin *p = loom__plugin_load(h, paths[i], &o, err, sizeof err);
        if (!p) {
            loom__err("plugin %s: %s", paths[i], err);
            if (!cfg->on_plugin_error_skip) failed = 1;
            /* Skipped: not tried again until the file changes. */
            char hash[65];
            if (!o.incomplete && loom__file_sha256(paths[i], hash) == 0)
                loom__reload_refuse(h, paths[i], hash, o.conflict ? o.conflict->name : NULL);
        } else {
            ps[np++] = p;
            loom__info("plugin %s %s loaded from %s (%zu routes, %zu middleware)", p->name,
                       p->version, paths[i], p->nroutes, p->nmws);
        }
        free(paths[i]);
    }
    free(paths);
    loom__snapshot *s = NULL;
    int bad_config = !failed && check_plugin_sections(cfg, ps, np) != 0;
    while (!failed && !bad_config) {
        char err[512];
        long culprit;
        s = loom__snapshot_build(h, ps, np, err, sizeof err, &culprit);
        if (s) break;
        loom__err("%s", err);
        if (cfg->on_plugin_error_skip && culprit >= 0) {
            loom__warn("plugin %s: skipped", ps[culprit]->name);
            loom__plugin_retire(ps[culprit], 1);
            memmove(ps + culprit, ps + culprit + 1, (np - (size_t)culprit - 1) * sizeof *ps);
            np--;
            continue;
        }
        failed = 1;
    }
    if (failed || bad_config) {
        if (failed)
            loom__err("not starting: fix or remove the plugins above, or set "
                      "\"on_plugin_error\": \"skip\"");
        for (size_t i = 0; i < np; i++) loom__plugin_retire(ps[i], 1);
        free(ps);
        /* An instance whose thread-pool jobs still run (a store that opened
         * its database in init) is finalized and unmapped by the last job's
         * done: run the loop until then, taking no connection meanwhile. The
         * worker then exits with its start-up error, not a crash. */
        if (h->nzombies) {
            loom__debug("waiting for the thread-pool jobs of %zu plugin%s", h->nzombies,
                        h->nzombies == 1 ? "" : "s");
            loom__worker_stop_listening(w);
            while (h->nzombies) uv_run(h->loop, UV_RUN_ONCE);
        }
        loom__host_free(h); /* sets w->host to NULL */
        return NULL;
    }
    w->on_drain = host_drain;
    h->plugins = ps;
    h->nplugins = np;
    loom__host_publish(h, s);
    loom__session_startup_check(h);
    loom__reload_start(h);
    return h;
}

void loom__host_stop(loom__host *h)
{
    if (!h) return;
    loom__ws_host_stop(h); /* on_close for the last WebSockets, while their code is loaded */
    /* The worker has drained. No repeating plugin timer may keep its loop
     * alive now, not even one of an instance that stays pinned by a request
     * that will never be answered (its client left while its plugin waited
     * for a fetch, which the abort cancelled): the ticker's would hold the
     * stop forever. One-shot timers still fire: a handler whose client left
     * may be waiting on one to answer, and its answer releases the last
     * snapshot (the host is freed after it). Instances that unload below
     * stop their timers and run fini as usual. */
    for (size_t i = 0; i < h->nplugins; i++)
        for (loom_timer *t = h->plugins[i]->timers; t; t = t->next)
            if (t->repeat) uv_timer_stop(&t->t);
    if (h->current) {
        loom__snapshot *s = h->current;
        h->current = NULL;
        loom__snapshot_unref(h, s);
    }
    h->stopping = 1;
    loom__reload_stop(h);
    loom__plugin_unload_queued(h);
    if (h->client) loom_client_close(h->client); /* its handles close on the next turns */
    if (h->client_raw) loom_client_close(h->client_raw);
    free(h->unload_queue);
    h->unload_queue = NULL;
    h->nunload = 0;
    if (h->unload_timer) uv_close((uv_handle_t *)h->unload_timer, free_handle);
    h->unload_timer = NULL;
    /* An instance whose thread-pool jobs still run is finalized and unmapped
     * by the last job's completion (the loop runs until then); the host's
     * state outlives it, since its fini and completions may still use it. */
    loom__host_free_if_done(h);
}

void loom__host_free_if_done(loom__host *h)
{
    if (h && h->stopping && h->nzombies == 0 && h->nunload == 0 && !loom__snapshots_alive())
        loom__host_free(h);
}

void loom__host_free(loom__host *h)
{
    /* An unload queued after the stop (by a late answer) made a timer again. */
    if (h->unload_timer) uv_close((uv_handle_t *)h->unload_timer, free_handle);
    free(h->unload_queue);
    free(h->plugins);
    for (size_t i = 0; i < h->nstates; i++) {
        free(h->states[i].data);
        free(h->states[i].name);
    }
    free(h->states);
    for (size_t i = 0; i < h->nzombies; i++) loom__plugin_discard(h->zombies[i]);
    free(h->zombies);
    loom__reload_forget_refused(h);
    if (h->private_dir) rmdir(h->private_dir);
    loom__session_host_free(h);
    free(h->private_dir);
    h->w->host = NULL;
    free(h);
}
