/* Loading plugin files: hash, private copy, dlopen, descriptor checks, init.
 *
 * A plugin is never dlopen'ed from the plugins directory itself: glibc hands
 * back the cached handle for a path (or inode) it already has, and a file
 * overwritten in place would change pages that are mapped. Each load gets a
 * private copy named <file>.<n>.<hash>.so (n counts the copies made). */
#include "plugin/host.h"
#include "util/fs.h"
#include "util/log.h"

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int loom__file_sha256(const char *path, char out[65])
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
    char buf[65536];
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0) EVP_DigestUpdate(ctx, buf, (size_t)n);
    close(fd);
    unsigned char md[32];
    unsigned int mdl = 0;
    EVP_DigestFinal_ex(ctx, md, &mdl);
    EVP_MD_CTX_free(ctx);
    if (n < 0) return -1;
    for (int i = 0; i < 32; i++) sprintf(out + 2 * i, "%02x", md[i]);
    return 0;
}

static int valid_name(const char *s)
{
    if (!s || !*s || strlen(s) > 64) return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_' || *s == '-'))
            return 0;
    return 1;
}

void loom__plugin_discard(loom_plugin *p)
{
    if (!p) return;
    for (size_t i = 0; i < p->nroutes; i++) {
        free(p->routes[i].method);
        free(p->routes[i].pattern);
        free(p->routes[i].name);
    }
    free(p->routes);
    for (size_t i = 0; i < p->nmws; i++) {
        free(p->mws[i].name);
        free(p->mws[i].before);
        free(p->mws[i].after);
    }
    free(p->mws);
    loom__services_free(p);
    json_decref(p->config);
    if (p->dl) dlclose(p->dl);
    if (p->load_path) unlink(p->load_path);
    free(p->load_path);
    free(p->src_path);
    free(p->name);
    free(p->version);
    free(p->last_error);
    free(p);
}

static json_t *plugin_config(loom__host *h, const char *name)
{
    json_t *c = json_object_get(h->cfg->plugins, name);
    json_t *copy = c ? json_deep_copy(c) : json_object();
    json_object_del(copy, "enabled");
    return copy;
}

/* The checks made before a plugin's code runs (beyond its constructors):
 * the entry symbol, magic, ABI version, descriptor size, name, functions and
 * their owner. On success *out holds the descriptor, copied by the kernel-style
 * size rule. On failure err holds the one-line reason and -1 is returned. */
static int check_entry(void *dl, const char *lp, loom_plugin_desc *out, char *err, size_t errlen)
{
    const loom_plugin_desc *(*entry)(void);
    *(void **)&entry = dlsym(dl, "loom_plugin_entry");
    if (!entry) {
        snprintf(err, errlen, "not a loom plugin (no loom_plugin_entry symbol)");
        return -1;
    }
    const loom_plugin_desc *d = entry();
    if (!d || d->magic != LOOM_PLUGIN_MAGIC) {
        snprintf(err, errlen, "not a loom plugin (bad descriptor magic)");
        return -1;
    }
    if (d->abi_major != LOOM_ABI_MAJOR) {
        snprintf(err, errlen,
                 "built for plugin ABI %u.%u; this host speaks %u.%u (the major "
                 "version must be equal)",
                 d->abi_major, d->abi_minor, LOOM_ABI_MAJOR, LOOM_ABI_MINOR);
        return -1;
    }
    if (d->abi_minor > LOOM_ABI_MINOR) {
        snprintf(err, errlen, "built for plugin ABI %u.%u, newer than this host's %u.%u",
                 d->abi_major, d->abi_minor, LOOM_ABI_MAJOR, LOOM_ABI_MINOR);
        return -1;
    }
    size_t need = offsetof(loom_plugin_desc, bind) + sizeof(void *);
    if (d->size < need) {
        snprintf(err, errlen, "descriptor too small (%u bytes, need %zu)", d->size, need);
        return -1;
    }
    /* Kernel-style size rule: read what both know, zero the rest. */
    memset(out, 0, sizeof *out);
    memcpy(out, d, d->size < sizeof *out ? d->size : sizeof *out);
    if (!valid_name(out->name)) {
        snprintf(err, errlen, "bad plugin name (want [a-z0-9_-]{1,64})");
        return -1;
    }
    if (!out->init || !out->bind) {
        snprintf(err, errlen, "descriptor has no init or bind function");
        return -1;
    }
    Dl_info info;
    if (!dladdr((void *)out->init, &info) || !info.dli_fname || strcmp(info.dli_fname, lp) != 0) {
        snprintf(err, errlen, "init function does not belong to the plugin file");
        return -1;
    }
    return 0;
}

loom_plugin *loom__plugin_load(loom__host *h, const char *path, loom__load_opts *o, char *err,
                               size_t errlen)
{
    o->incomplete = 0;
    o->conflict = NULL;
    loom_plugin *p = calloc(1, sizeof *p);
    if (!p) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    p->host = h;
    p->src_path = strdup(path);
    p->load_time = time(NULL);
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    char lp[4096];
    snprintf(lp, sizeof lp, "%s/%.*s.%llu.so", h->private_dir,
             (int)(strlen(base) > 3 ? strlen(base) - 3 : strlen(base)), base,
             (unsigned long long)++h->next_copy);
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", lp);
    if (loom__install_file(path, tmp, lp, 0)) {
        snprintf(err, errlen, "cannot copy to %s: %s", lp, strerror(errno));
        goto fail;
    }
    p->load_path = strdup(lp);
    if (!p->load_path) {
        unlink(lp);
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    /* Everything from here on reads the private copy, which nobody writes:
     * its hash is what is loaded, whatever happens to the file meanwhile. */
    if (loom__file_sha256(lp, p->hash)) {
        snprintf(err, errlen, "cannot read: %s", strerror(errno));
        goto fail;
    }
    /* Named <file>.<n>.<hash>.so, so that a listing of the private
     * directory says what each copy is. */
    char named[4200];
    snprintf(named, sizeof named, "%.*s.%.12s.so", (int)(strlen(lp) - 3), lp, p->hash);
    char *np = strdup(named);
    if (!np || rename(lp, named) != 0) {
        free(np);
        snprintf(err, errlen, "cannot rename %s: %s", lp, strerror(errno));
        goto fail;
    }
    free(p->load_path);
    p->load_path = np;
    if (o->hash && strcmp(o->hash, p->hash) != 0) {
        snprintf(err, errlen, "changed while it was being read");
        o->incomplete = LOOM__CHANGED;
        goto fail;
    }
    int whole = loom__elf_whole(np, err, errlen);
    if (whole != 0) {
        o->incomplete = whole > 0 ? LOOM__TRUNCATED : 0;
        goto fail;
    }
    dlerror();
    p->dl = dlopen(np, RTLD_NOW | RTLD_LOCAL);
    if (!p->dl) {
        const char *e = dlerror();
        const char *colon = e ? strrchr(e, ':') : NULL;
        snprintf(err, errlen, "not a loadable shared object (%s)",
                 colon ? colon + 2 : (e ? e : "unknown"));
        goto fail;
    }
    if (check_entry(p->dl, np, &p->d, err, errlen)) goto fail;
    p->name = strdup(p->d.name);
    p->version = strdup(p->d.version ? p->d.version : "0");
    if (!p->name || !p->version) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    /* A name already in the set refuses the file before its init runs:
     * init may open files or databases the loaded one holds. */
    for (size_t k = 0; k < o->ntaken; k++)
        if (strcmp(o->taken[k]->name, p->name) == 0) {
            snprintf(err, errlen, "plugin name '%s' is already loaded from %s", p->name,
                     o->taken[k]->src_path);
            o->conflict = o->taken[k];
            goto fail;
        }
    p->config = plugin_config(h, p->name);
    char *ctext = json_dumps(p->config, JSON_COMPACT);
    p->d.bind(&loom__api_table);
    p->in_init = 1;
    int32_t rc = p->d.init(p, ctext ? ctext : "{}", ctext ? strlen(ctext) : 2);
    p->in_init = 0;
    free(ctext);
    if (rc != 0) {
        snprintf(err, errlen, "init failed (%d%s%s)", rc, p->last_error ? ": " : "",
                 p->last_error ? p->last_error : "");
        /* What init started before it failed (timers, watchers, fetches,
         * thread-pool jobs) must not outlive the code. */
        loom__plugin_retire(p, 0);
        return NULL;
    }
    p->generation = ++h->next_generation;
    return p;
fail:
    loom__plugin_discard(p);
    return NULL;
}

int loom__plugin_inspect(const char *path, loom_plugin_desc *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    const char *tmpdir = getenv("TMPDIR");
    char dir[4096], lp[4200], tmp[4300];
    snprintf(dir, sizeof dir, "%s/loom-check.XXXXXX", tmpdir && *tmpdir ? tmpdir : "/tmp");
    if (!mkdtemp(dir)) {
        snprintf(err, errlen, "cannot make a directory for the private copy: %s", strerror(errno));
        return -1;
    }
    snprintf(lp, sizeof lp, "%s/plugin.so", dir);
    snprintf(tmp, sizeof tmp, "%s/plugin.so.tmp", dir);
    int rc = -1;
    void *dl = NULL;
    if (loom__install_file(path, tmp, lp, 0)) {
        snprintf(err, errlen, "cannot read: %s", strerror(errno));
        goto done;
    }
    if (loom__elf_whole(lp, err, errlen) != 0) goto done;
    dlerror();
    dl = dlopen(lp, RTLD_NOW | RTLD_LOCAL);
    if (!dl) {
        const char *e = dlerror();
        const char *colon = e ? strrchr(e, ':') : NULL;
        snprintf(err, errlen, "not a loadable shared object (%s)",
                 colon ? colon + 2 : (e ? e : "unknown"));
        goto done;
    }
    loom_plugin_desc d;
    if (check_entry(dl, lp, &d, err, errlen)) goto done;
    *out = d;
    out->name = strdup(d.name);
    out->version = d.version ? strdup(d.version) : NULL;
    out->init = NULL;
    out->fini = NULL;
    out->bind = NULL;
    if (!out->name || (d.version && !out->version)) {
        free((char *)out->name);
        free((char *)out->version);
        memset(out, 0, sizeof *out);
        snprintf(err, errlen, "out of memory");
        goto done;
    }
    rc = 0;
done:
    if (dl) dlclose(dl);
    unlink(lp);
    rmdir(dir);
    return rc;
}

static void timer_closed(uv_handle_t *h)
{
    loom_timer *t = h->data;
    free(t);
}

static void do_unload(loom_plugin *p);

static void on_unload_timer(uv_timer_t *t)
{
    loom__host *h = t->data;
    loom__plugin_unload_queued(h);
    /* After a stop: this unload may be the last thing the host waited for. */
    loom__host_free_if_done(h);
}

void loom__plugin_unload(loom_plugin *p)
{
    loom__host *h = p->host;
    p->unloading = 1; /* no new timers or work from now on */
    loom__session_store_drop(p);
    loom_plugin **q = realloc(h->unload_queue, (h->nunload + 1) * sizeof *q);
    if (!q) {
        loom__err("plugin %s: out of memory queueing the unload; it stays loaded", p->name);
        return;
    }
    h->unload_queue = q;
    q[h->nunload++] = p;
    if (!h->unload_timer) {
        h->unload_timer = malloc(sizeof *h->unload_timer);
        if (!h->unload_timer) return;
        uv_timer_init(h->loop, h->unload_timer);
        h->unload_timer->data = h;
    }
    uv_timer_start(h->unload_timer, on_unload_timer, 0, 0);
}

void loom__plugin_unload_queued(loom__host *h)
{
    while (h->nunload) {
        loom_plugin *p = h->unload_queue[--h->nunload];
        do_unload(p);
    }
}

static void do_unload(loom_plugin *p)
{
    loom__host *h = p->host;
    loom__fetch_cancel_plugin(p);
    loom__ws_plugin_unload(p);
    /* No timer fires from now on; fini may still stop its own. */
    for (loom_timer *t = p->timers; t; t = t->next) uv_timer_stop(&t->t);
    if (p->works > 0) {
        /* Thread-pool jobs still run the plugin's code on its state: fini
         * waits until their completions have run (they see cancelled = 1),
         * and the code stays mapped until then. */
        loom_plugin **z = realloc(h->zombies, (h->nzombies + 1) * sizeof *z);
        if (z) {
            h->zombies = z;
            z[h->nzombies++] = p;
            return;
        }
        /* Out of memory for this small list: unloading now lets a job
         * outlive fini and the unmapping (what the wait is for), a risk
         * taken only here, where nothing could track the instance. */
        loom__warn("plugin %s: out of memory; unloading with %lld jobs running", p->name,
                   (long long)p->works);
    }
    loom__plugin_finish_unload(p);
}

void loom__plugin_retire(loom_plugin *p, int init_ok)
{
    if (!p) return;
    p->unloading = 1; /* no new timers, watchers or work from now on */
    p->retired = 1;
    p->no_fini = !init_ok;
    loom__session_store_drop(p);
    do_unload(p);
}

void loom__plugin_finish_unload(loom_plugin *p)
{
    if (p->d.fini && !p->no_fini) p->d.fini(p);
    loom__io_close_plugin(p); /* watchers the plugin did not stop itself */
    for (loom_timer *t = p->timers, *n; t; t = n) {
        n = t->next;
        uv_timer_stop(&t->t);
        uv_close((uv_handle_t *)&t->t, timer_closed);
    }
    p->timers = NULL;
    if (p->retired)
        loom__debug("plugin %s %s: the instance that was not loaded is finalized", p->name,
                    p->version);
    else
        loom__info("plugin %s %s (generation %llu) unloaded", p->name, p->version,
                   (unsigned long long)p->generation);
    char path[4096];
    snprintf(path, sizeof path, "%s", p->load_path ? p->load_path : "");
    loom__plugin_discard(p);
    /* dlclose may keep an object mapped (NODELETE, unique symbols): say so. */
    void *still = path[0] ? dlopen(path, RTLD_NOW | RTLD_NOLOAD) : NULL;
    if (still) {
        loom__warn("plugin copy %s is still mapped after dlclose (NODELETE?)", path);
        dlclose(still);
    }
}
