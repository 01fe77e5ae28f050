/* Hot reload: watch the plugins directory, and on a change (or SIGHUP) load
 * new and changed files into fresh instances, build a new snapshot, and swap
 * it in. Requests in flight keep the snapshot they started with; an instance
 * is unloaded when the last snapshot holding it is released.
 *
 * The watch is on the directory, for IN_CLOSE_WRITE and IN_MOVED_TO (a file
 * watch dies on an atomic rename, and IN_CREATE fires on half-written files),
 * and events are debounced so that a burst of writes causes one rescan. */
#include "plugin/host.h"
#include "admin/admin.h"
#include "util/log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>

#define DEBOUNCE_MS 150

static int interesting(const char *name)
{
    size_t l = strlen(name);
    return name[0] != '.' && l > 3 && strcmp(name + l - 3, ".so") == 0;
}

static void on_debounce(uv_timer_t *t)
{
    loom__reload_rescan(t->data);
}

static void on_inotify(uv_poll_t *p, int status, int events)
{
    loom__host *h = p->data;
    (void)events;
    if (status < 0) return;
    char buf[8192] __attribute__((aligned(__alignof__(struct inotify_event))));
    int hit = 0;
    for (;;) {
        ssize_t n = read(h->inotify_fd, buf, sizeof buf);
        if (n <= 0) break;
        for (char *q = buf; q < buf + n;) {
            struct inotify_event *e = (struct inotify_event *)q;
            if (e->len && interesting(e->name)) hit = 1;
            q += sizeof *e + e->len;
        }
    }
    if (hit) uv_timer_start(h->debounce, on_debounce, DEBOUNCE_MS, 0);
}

static void on_sighup(loom__worker *w)
{
    loom__info("SIGHUP: rescanning plugins");
    if (w->host) loom__reload_rescan(w->host);
}

void loom__reload_start(loom__host *h)
{
    h->inotify_fd = -1;
    h->w->on_sighup = on_sighup;
    h->debounce = malloc(sizeof *h->debounce);
    if (!h->debounce) return;
    uv_timer_init(h->loop, h->debounce);
    h->debounce->data = h;
    h->watching = 1;
    if (!h->cfg->plugins_dir) return;
    h->inotify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (h->inotify_fd < 0 ||
        inotify_add_watch(h->inotify_fd, h->cfg->plugins_dir,
                          IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE) < 0) {
        loom__warn("cannot watch %s (%s): reload with SIGHUP", h->cfg->plugins_dir,
                   strerror(errno));
        if (h->inotify_fd >= 0) close(h->inotify_fd);
        h->inotify_fd = -1;
        return;
    }
    h->watch = malloc(sizeof *h->watch);
    if (!h->watch) {
        close(h->inotify_fd);
        h->inotify_fd = -1;
        return;
    }
    uv_poll_init(h->loop, h->watch, h->inotify_fd);
    h->watch->data = h;
    uv_poll_start(h->watch, UV_READABLE, on_inotify);
}

static void free_handle(uv_handle_t *hd)
{
    free(hd);
}

void loom__reload_stop(loom__host *h)
{
    if (!h->watching) return;
    h->watching = 0;
    h->w->on_sighup = NULL;
    uv_close((uv_handle_t *)h->debounce, free_handle);
    if (h->inotify_fd >= 0) {
        /* uv_close stops polling at once, so the fd may be closed now. */
        uv_close((uv_handle_t *)h->watch, free_handle);
        close(h->inotify_fd);
        h->inotify_fd = -1;
    }
}

static loom_plugin *find_by_path(loom__host *h, const char *path)
{
    for (size_t i = 0; i < h->nplugins; i++)
        if (strcmp(h->plugins[i]->src_path, path) == 0) return h->plugins[i];
    return NULL;
}

void loom__reload_rescan(loom__host *h)
{
    uint64_t t0 = uv_hrtime();
    int failures = 0;
    size_t n = 0;
    char **paths = loom__plugin_list(h->cfg, &n);
    if (!paths) return;
    loom_plugin **next = calloc(n + 1, sizeof *next);
    loom_plugin **fresh = calloc(n + 1, sizeof *fresh);
    size_t nn = 0, nf = 0;
    int changed = 0;
    for (size_t i = 0; i < n && next && fresh; i++) {
        loom_plugin *old = find_by_path(h, paths[i]);
        char hash[65];
        if (loom__file_sha256(paths[i], hash)) {
            loom__warn("plugin %s: cannot read (%s)%s", paths[i], strerror(errno),
                       old ? "; keeping the loaded version" : "");
            if (old) next[nn++] = old;
            continue;
        }
        if (old && strcmp(old->hash, hash) == 0) {
            next[nn++] = old; /* unchanged */
            continue;
        }
        char err[512];
        loom_plugin *p = loom__plugin_load(h, paths[i], hash, err, sizeof err);
        if (p && loom__plugin_name_taken(p, next, nn, err, sizeof err)) {
            loom__plugin_discard(p);
            p = NULL;
        }
        if (p && old && strcmp(old->name, p->name) != 0) {
            /* A file that now holds another plugin: treat as a new one. */
            loom__info("plugin file %s now holds %s (was %s)", paths[i], p->name, old->name);
        }
        if (!p) {
            failures++;
            loom__err("plugin %s: %s%s", paths[i], err,
                      old ? "; the loaded version keeps serving" : "; not loaded");
            if (old) {
                free(old->last_error);
                old->last_error = strdup(err);
                next[nn++] = old;
            }
            continue;
        }
        fresh[nf++] = p;
        next[nn++] = p;
        changed = 1;
    }
    for (size_t i = 0; i < n; i++) free(paths[i]);
    free(paths);
    /* Loaded plugins whose file is gone (or now disabled) are dropped. */
    for (size_t i = 0; i < h->nplugins; i++) {
        int kept = 0;
        for (size_t k = 0; k < nn; k++)
            kept |= next[k] == h->plugins[i] || strcmp(next[k]->name, h->plugins[i]->name) == 0;
        if (!kept) {
            loom__info("plugin %s: file removed, unloading after its requests finish",
                       h->plugins[i]->name);
            changed = 1;
        }
    }
    if (!changed || !next || !fresh) {
        free(next);
        free(fresh);
        loom__admin_reload_done(h, 0, failures, 0);
        return;
    }
    char err[512];
    long culprit;
    loom__snapshot *s = loom__snapshot_build(h, next, nn, err, sizeof err, &culprit);
    if (!s) {
        loom__err("reload refused: %s; the loaded plugins keep serving", err);
        for (size_t i = 0; i < nf; i++) loom__plugin_discard(fresh[i]);
        free(next);
        free(fresh);
        loom__admin_reload_done(h, 0, failures + 1, 0);
        return;
    }
    for (size_t i = 0; i < nf; i++)
        loom__info("plugin %s %s loaded from %s (generation %llu, sha256 %.12s)", fresh[i]->name,
                   fresh[i]->version, fresh[i]->src_path, (unsigned long long)fresh[i]->generation,
                   fresh[i]->hash);
    free(h->plugins);
    h->plugins = next;
    h->nplugins = nn;
    h->reloads++;
    free(fresh);
    loom__host_publish(h, s);
    loom__admin_reload_done(h, 1, failures, uv_hrtime() - t0);
}

char *loom__host_listing(loom__host *h)
{
    json_t *arr = json_array();
    for (size_t i = 0; i < h->nplugins; i++) {
        loom_plugin *p = h->plugins[i];
        json_array_append_new(
            arr, json_pack("{s:s,s:s,s:I,s:I,s:s,s:s,s:I,s:s?,s:i,s:i}", "name", p->name, "version",
                           p->version, "generation", (json_int_t)p->generation, "inflight",
                           (json_int_t)loom__plugin_inflight(p), "file", p->src_path, "sha256",
                           p->hash, "loaded_at", (json_int_t)p->load_time, "last_error",
                           p->last_error, "routes", (int)p->nroutes, "middleware", (int)p->nmws));
    }
    json_t *root = json_pack("{s:i,s:I,s:o}", "worker", h->w->id, "reloads", (json_int_t)h->reloads,
                             "plugins", arr);
    char *t = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    return t;
}
