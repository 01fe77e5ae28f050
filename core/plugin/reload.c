/* Hot reload: on a change in the plugins directory (see watch.c) or SIGHUP,
 * load new and changed files into fresh instances, build a new snapshot, and
 * swap it in. Requests in flight keep the snapshot they started with; an
 * instance is unloaded when the last snapshot holding it is released.
 *
 * A file is loaded only when it is ready: not while someone is writing it
 * (an IN_CREATE or IN_MODIFY with no IN_CLOSE_WRITE since), not when it was
 * written in place less than WINDOW_MS ago, and not while its copy is a
 * truncated ELF file. Such a file is tried again later and never reported
 * as broken, unless it stays truncated and untouched for SETTLE_MS. A file
 * that arrived by rename (IN_MOVED_TO) is whole by construction. A refused
 * file is remembered by its hash and not tried again until it changes. */
#include "plugin/host.h"
#include "admin/admin.h"
#include "util/log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define WINDOW_MS 150   /* as watch.c: a file written in place this recently may go on */
#define SETTLE_MS 2000  /* a truncated file untouched this long is broken */
#define FORGET_MS 60000 /* events older than this say nothing any more */

static loom_plugin *find_by_path(loom__host *h, const char *path)
{
    for (size_t i = 0; i < h->nplugins; i++)
        if (strcmp(h->plugins[i]->src_path, path) == 0) return h->plugins[i];
    return NULL;
}

static loom__refused *find_refused(loom__host *h, const char *path)
{
    for (size_t i = 0; i < h->nrefused; i++)
        if (strcmp(h->refused[i].path, path) == 0) return &h->refused[i];
    return NULL;
}

static void drop_refused(loom__host *h, size_t i)
{
    free(h->refused[i].path);
    free(h->refused[i].conflict);
    h->refused[i] = h->refused[--h->nrefused];
}

void loom__reload_refuse(loom__host *h, const char *path, const char *hash, const char *conflict)
{
    loom__refused *r = find_refused(h, path);
    if (!r) {
        char *p = strdup(path);
        loom__refused *n = p ? realloc(h->refused, (h->nrefused + 1) * sizeof *n) : NULL;
        if (!n) {
            free(p);
            return; /* forgetting costs only a repeated attempt */
        }
        h->refused = n;
        r = &n[h->nrefused++];
        r->path = p;
        r->conflict = NULL;
    }
    memcpy(r->hash, hash, 65);
    free(r->conflict);
    r->conflict = conflict ? strdup(conflict) : NULL;
}

void loom__reload_forget_refused(loom__host *h)
{
    while (h->nrefused) drop_refused(h, h->nrefused - 1);
    free(h->refused);
    h->refused = NULL;
}

/* Whether the refusal of `path` with content `hash` still stands: same
 * content, and for a name collision, the other plugin still loaded. */
static int still_refused(loom__host *h, const char *path, const char *hash)
{
    loom__refused *r = find_refused(h, path);
    if (!r || strcmp(r->hash, hash) != 0) return 0;
    if (!r->conflict) return 1;
    for (size_t i = 0; i < h->nplugins; i++)
        if (strcmp(h->plugins[i]->name, r->conflict) == 0 &&
            strcmp(h->plugins[i]->src_path, path) != 0)
            return 1;
    return 0;
}

static void retry_in(loom__host *h, int64_t ms)
{
    uint64_t at = uv_now(h->loop) + (uint64_t)(ms > 10 ? ms : 10);
    if (!h->retry_at || at < h->retry_at) h->retry_at = at;
}

/* Milliseconds since the file's content last changed (its mtime). */
static int64_t age_ms(const struct stat *st)
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    return (int64_t)(now.tv_sec - st->st_mtim.tv_sec) * 1000 +
           (now.tv_nsec - st->st_mtim.tv_nsec) / 1000000;
}

void loom__reload_rescan(loom__host *h)
{
    uint64_t t0 = uv_hrtime();
    int failures = 0;
    size_t n = 0;
    char **paths = loom__plugin_list(h->cfg, &n);
    if (!paths) return;
    uint64_t now = uv_now(h->loop);
    h->retry_at = 0; /* this scan decides what still waits */
    loom__watch_prune(h, now > FORGET_MS ? now - FORGET_MS : 0);
    /* Refusals of files that are gone are forgotten. */
    for (size_t i = 0; i < h->nrefused;) {
        int listed = 0;
        for (size_t k = 0; k < n && !listed; k++) listed = !strcmp(paths[k], h->refused[i].path);
        if (listed)
            i++;
        else
            drop_refused(h, i);
    }
    loom_plugin **next = calloc(n + 1, sizeof *next);
    loom_plugin **fresh = calloc(n + 1, sizeof *fresh);
    size_t nn = 0, nf = 0;
    int changed = 0;
    for (size_t i = 0; i < n && next && fresh; i++) {
        loom_plugin *old = find_by_path(h, paths[i]);
        char hash[65];
        struct stat st;
        if (stat(paths[i], &st) != 0 || loom__file_sha256(paths[i], hash)) {
            /* Gone since the listing: its delete or rename event rescans. */
            loom__log(errno == ENOENT ? LOOM_LOG_DEBUG : LOOM_LOG_WARN,
                      "plugin %s: cannot read (%s)%s", paths[i], strerror(errno),
                      old ? "; keeping the loaded version" : "");
            if (old) next[nn++] = old;
            continue;
        }
        if ((old && strcmp(old->hash, hash) == 0) || still_refused(h, paths[i], hash)) {
            if (old) next[nn++] = old; /* unchanged, or known to be refused */
            continue;
        }
        uint64_t ev_at = 0;
        uint32_t ev = loom__watch_last(h, paths[i], &ev_at);
        int64_t age = age_ms(&st);
        const char *wait = NULL;
        if (ev & (IN_CREATE | IN_MODIFY)) {
            wait = "is being written"; /* its close-write starts a rescan */
        } else if (!(ev & IN_MOVED_TO) && age < WINDOW_MS) {
            wait = "was written just now";
            retry_in(h, WINDOW_MS - age);
        }
        char err[512];
        loom_plugin *p = NULL;
        loom__load_opts o = {.hash = hash, .taken = next, .ntaken = nn};
        if (!wait) {
            p = loom__plugin_load(h, paths[i], &o, err, sizeof err);
            if (!p && o.incomplete == LOOM__CHANGED) {
                /* Replaced while it was copied: its event rescans. */
                wait = err;
                retry_in(h, WINDOW_MS);
            } else if (!p && o.incomplete && !(ev & IN_MOVED_TO) && age < SETTLE_MS) {
                /* Truncated: someone is still writing it, unless it came
                 * by rename or nobody touched it for a while. */
                wait = err;
                retry_in(h, SETTLE_MS - age);
            }
        }
        if (wait) {
            loom__debug("plugin %s: not ready (%s); trying again later", paths[i], wait);
            if (old) next[nn++] = old;
            continue;
        }
        if (p && old && strcmp(old->name, p->name) != 0) {
            /* A file that now holds another plugin: treat as a new one. */
            loom__info("plugin file %s now holds %s (was %s)", paths[i], p->name, old->name);
        }
        if (!p) {
            failures++;
            loom__err("plugin %s: %s%s", paths[i], err,
                      old ? "; the loaded version keeps serving" : "; not loaded");
            loom__reload_refuse(h, paths[i], hash, o.conflict ? o.conflict->name : NULL);
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
    loom__watch_arm(h);
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
        /* A conflict between plugins, not a bad file: not remembered, since
         * a change of another file may resolve it. */
        loom__err("reload refused: %s; the loaded plugins keep serving", err);
        for (size_t i = 0; i < nf; i++) loom__plugin_retire(fresh[i], 1);
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
    json_t *root =
        json_pack("{s:i,s:i,s:i,s:I,s:o}", "worker", h->w->id, "workers", h->cfg->workers, "pid",
                  (int)getpid(), "reloads", (json_int_t)h->reloads, "plugins", arr);
    char *t = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    return t;
}
