/* oldstore: a session store as a plugin built for ABI 1.1 registers it --
 * load, save, destroy and touch only, the struct's size ending before the
 * 1.3 members -- named "old", in this process's memory (64 sessions). The
 * host must keep serving it, with whole-session saves and one warning. */
#include <loom/loom.h>

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#define SLOTS 64

static struct {
    char id[40];
    char *data;
    size_t len;
} slot[SLOTS];

static int find(const char *id, int make)
{
    for (int i = 0; i < SLOTS; i++)
        if (slot[i].data && !strcmp(slot[i].id, id)) return i;
    for (int i = 0; make && i < SLOTS; i++)
        if (!slot[i].data && strlen(id) < sizeof slot[i].id) {
            strcpy(slot[i].id, id);
            return i;
        }
    return -1;
}

static int32_t st_load(void *ud, const char *id, loom_session_done_fn done, void *ctx)
{
    (void)ud;
    int i = find(id, 0);
    done(ctx, i < 0 ? LOOM_ENOTFOUND : 0, i < 0 ? NULL : slot[i].data, i < 0 ? 0 : slot[i].len);
    return 0;
}

static int32_t st_save(void *ud, const char *id, const char *data, size_t len, int64_t expires,
                       loom_session_done_fn done, void *ctx)
{
    (void)ud;
    (void)expires;
    int i = find(id, 1);
    char *copy = malloc(len + 1);
    if (i < 0 || !copy) {
        free(copy);
        return LOOM_ELIMIT;
    }
    memcpy(copy, data, len);
    free(slot[i].data);
    slot[i].data = copy;
    slot[i].len = len;
    done(ctx, 0, NULL, 0);
    return 0;
}

static int32_t st_destroy(void *ud, const char *id, loom_session_done_fn done, void *ctx)
{
    (void)ud;
    int i = find(id, 0);
    if (i >= 0) {
        free(slot[i].data);
        slot[i].data = NULL;
    }
    done(ctx, 0, NULL, 0);
    return 0;
}

static int32_t st_touch(void *ud, const char *id, int64_t expires, loom_session_done_fn done,
                        void *ctx)
{
    (void)ud;
    (void)expires;
    done(ctx, find(id, 0) < 0 ? LOOM_ENOTFOUND : 0, NULL, 0);
    return 0;
}

static int32_t init(loom_plugin *self, const char *config, size_t len)
{
    (void)config;
    (void)len;
    loom_session_store st;
    memset(&st, 0, sizeof st);
    st.size = (uint32_t)offsetof(loom_session_store, flags); /* what a 1.1 build has */
    st.name = "old";
    st.load = st_load;
    st.save = st_save;
    st.destroy = st_destroy;
    st.touch = st_touch;
    int32_t rc = loom_session_store_register(self, &st);
    return rc == LOOM_ESTATE || rc == LOOM_ENOTFOUND ? 0 : rc;
}

static void fini(loom_plugin *self)
{
    (void)self;
    for (int i = 0; i < SLOTS; i++) free(slot[i].data);
}

LOOM_PLUGIN("oldstore", "1.0.0", init, fini);
