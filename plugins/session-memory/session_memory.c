/* session-memory: a session store in this worker's memory. For development
 * and tests: sessions live in one process (the server refuses it with more
 * than one worker: run with --single or --workers 1) and are gone on
 * restart. Each session has a version for the host's compare-and-set saves;
 * one loop thread runs every operation, so each is atomic by construction.
 * Expired entries are dropped on lookup and by a sweep every minute.
 * Config: {"max_sessions": 100000}. */
#define _POSIX_C_SOURCE 200809L
#include <loom/loom.h>

#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NBUCKETS 4096

typedef struct entry {
    struct entry *next;
    char *id;
    char *data;
    size_t len;
    int64_t expires;
    uint64_t version;
} entry;

static entry *buckets[NBUCKETS];
static size_t count, max_sessions = 100000;
static uint64_t last_version; /* versions never repeat, even for a re-created ID */
static loom_timer *sweeper;

static size_t hash(const char *s)
{
    size_t h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h % NBUCKETS;
}

static int64_t now(void)
{
    return (int64_t)time(NULL);
}

static void drop(entry **pp)
{
    entry *e = *pp;
    *pp = e->next;
    free(e->id);
    free(e->data);
    free(e);
    count--;
}

static entry **find(const char *id)
{
    entry **pp = &buckets[hash(id)];
    while (*pp) {
        if ((*pp)->expires <= now()) {
            drop(pp);
            continue;
        }
        if (!strcmp((*pp)->id, id)) return pp;
        pp = &(*pp)->next;
    }
    return NULL;
}

static int32_t st_load(void *ud, const char *id, loom_session_vdone_fn done, void *ctx)
{
    (void)ud;
    entry **pp = find(id);
    if (!pp) {
        done(ctx, LOOM_ENOTFOUND, NULL, 0, 0);
        return 0;
    }
    done(ctx, 0, (*pp)->data, (*pp)->len, (*pp)->version);
    return 0;
}

/* The stored state of a compare that failed. */
static void conflict(entry **pp, loom_session_vdone_fn done, void *ctx)
{
    if (pp)
        done(ctx, LOOM_ECONFLICT, (*pp)->data, (*pp)->len, (*pp)->version);
    else
        done(ctx, LOOM_ECONFLICT, NULL, 0, 0);
}

static int32_t st_save_if(void *ud, const char *id, const char *data, size_t len, int64_t expires,
                          uint64_t version, loom_session_vdone_fn done, void *ctx)
{
    (void)ud;
    entry **pp = find(id);
    if (pp ? (*pp)->version != version : version != 0) {
        conflict(pp, done, ctx);
        return 0;
    }
    char *copy = malloc(len + 1);
    if (!copy) return LOOM_ENOMEM;
    memcpy(copy, data, len);
    copy[len] = 0;
    entry *e;
    if (pp) {
        e = *pp;
        free(e->data);
    } else {
        e = calloc(1, sizeof *e);
        char *eid = strdup(id);
        if (!e || !eid || count >= max_sessions) {
            free(e);
            free(eid);
            free(copy);
            return count >= max_sessions ? LOOM_ELIMIT : LOOM_ENOMEM;
        }
        e->id = eid;
        size_t b = hash(id);
        e->next = buckets[b];
        buckets[b] = e;
        count++;
    }
    e->data = copy;
    e->len = len;
    e->expires = expires;
    e->version = ++last_version;
    done(ctx, 0, NULL, 0, e->version);
    return 0;
}

static int32_t st_destroy_if(void *ud, const char *id, uint64_t version, loom_session_vdone_fn done,
                             void *ctx)
{
    (void)ud;
    entry **pp = find(id);
    if (!pp || (*pp)->version != version) {
        conflict(pp, done, ctx);
        return 0;
    }
    drop(pp);
    done(ctx, 0, NULL, 0, 0);
    return 0;
}

static int32_t st_destroy(void *ud, const char *id, loom_session_done_fn done, void *ctx)
{
    (void)ud;
    entry **pp = find(id);
    if (pp) drop(pp);
    done(ctx, 0, NULL, 0);
    return 0;
}

static int32_t st_touch(void *ud, const char *id, int64_t expires, loom_session_done_fn done,
                        void *ctx)
{
    (void)ud;
    entry **pp = find(id);
    if (pp) (*pp)->expires = expires;
    done(ctx, pp ? 0 : LOOM_ENOTFOUND, NULL, 0);
    return 0;
}

static void sweep(loom_timer *t, void *ud)
{
    (void)t;
    (void)ud;
    int64_t n = now();
    for (size_t b = 0; b < NBUCKETS; b++) {
        entry **pp = &buckets[b];
        while (*pp) {
            if ((*pp)->expires <= n)
                drop(pp);
            else
                pp = &(*pp)->next;
        }
    }
}

static int32_t init(loom_plugin *self, const char *config, size_t len)
{
    (void)config;
    (void)len;
    const loom_json *c = loom_config(self);
    static const char *const keys[] = {"max_sessions", NULL};
    if (loom_config_check_keys(self, c, NULL, keys)) return LOOM_EINVAL;
    const loom_json *m = c ? loom_json_get(c, "max_sessions") : NULL;
    if (m && loom_json_integer(m) > 0) max_sessions = (size_t)loom_json_integer(m);
    loom_session_store st;
    memset(&st, 0, sizeof st);
    st.size = sizeof st;
    st.name = "memory";
    st.flags = LOOM_SESSION_STORE_PROCESS_LOCAL;
    st.load_versioned = st_load;
    st.save_if = st_save_if;
    st.destroy_if = st_destroy_if;
    st.destroy = st_destroy;
    st.touch = st_touch;
    int32_t rc = loom_session_store_register(self, &st);
    if (rc == LOOM_ESTATE || rc == LOOM_ENOTFOUND) return 0; /* not in use: stay idle */
    if (rc) return rc;
    sweeper = loom_timer_start(self, 60000, 60000, sweep, NULL);
    return 0;
}

static void fini(loom_plugin *self)
{
    (void)self;
    for (size_t b = 0; b < NBUCKETS; b++)
        while (buckets[b]) drop(&buckets[b]);
}

LOOM_PLUGIN("session-memory", "1.0.0", init, fini);
