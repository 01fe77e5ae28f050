/* Certificates reloaded while the worker serves: on SIGHUP, and when a
 * watched certificate, key, OCSP or client-CA file changes.
 *
 * The directories of those files are watched (not the files: certbot and
 * `install` replace a file by a rename, and certbot's live/ names are
 * symlinks that are swapped), and a change waits RELOAD_DEBOUNCE_MS for the
 * rest of a renewal (the key after the certificate) before the contexts are
 * rebuilt. A new set that fails its checks is logged with the file and the
 * reason, and the old one keeps serving; a rebuild that works is swapped in
 * for new handshakes, while open connections keep the set they started on. */
#include "server/tls_reload.h"
#include "tls/server.h"
#include "util/log.h"

#include <libgen.h>
#include <stdlib.h>
#include <string.h>

#define RELOAD_DEBOUNCE_MS 200
#define MAX_DIRS 32

struct loom__tls_watch {
    loom__worker *w;
    uv_fs_event_t ev[MAX_DIRS];
    int nev;
    uv_timer_t timer;
    int closing, pending_closes;
};

int loom__tls_reload(loom__worker *w, const char *why)
{
    char err[512];
    loom__tls_server *s = loom__tls_server_new(w->cfg, err, sizeof err);
    if (!s) {
        loom__err("TLS reload (%s) failed: %s; the previous certificates keep serving", why, err);
        return -1;
    }
    loom__tls_server_unref(w->tls);
    w->tls = s;
    loom__info("TLS certificates reloaded (%s)", why);
    return 0;
}

static void on_timer(uv_timer_t *t)
{
    loom__tls_watch *tw = t->data;
    loom__tls_reload(tw->w, "a certificate file changed");
}

/* Whether `name` in directory `dir` (as watched) is one of the files in use. */
static int watched(loom__tls_server *s, const char *dir, const char *name)
{
    size_t n;
    const char *const *files = loom__tls_server_files(s, &n);
    for (size_t i = 0; i < n; i++) {
        char a[4096], b[4096];
        snprintf(a, sizeof a, "%s", files[i]);
        snprintf(b, sizeof b, "%s", files[i]);
        if (strcmp(basename(a), name) == 0 && strcmp(dirname(b), dir) == 0) return 1;
    }
    return 0;
}

static void on_event(uv_fs_event_t *h, const char *name, int events, int status)
{
    loom__tls_watch *tw = h->data;
    (void)events;
    if (status < 0 || !name || tw->closing) return;
    char dir[4096];
    size_t len = sizeof dir;
    if (uv_fs_event_getpath(h, dir, &len) != 0) return;
    if (!tw->w->tls || !watched(tw->w->tls, dir, name)) return;
    uv_timer_start(&tw->timer, on_timer, RELOAD_DEBOUNCE_MS, 0);
}

loom__tls_watch *loom__tls_watch_start(loom__worker *w)
{
    if (!w->tls || !loom__tls_server_watch(w->tls)) return NULL;
    loom__tls_watch *tw = calloc(1, sizeof *tw);
    if (!tw) return NULL;
    tw->w = w;
    uv_timer_init(w->loop, &tw->timer);
    tw->timer.data = tw;
    size_t n;
    const char *const *files = loom__tls_server_files(w->tls, &n);
    char dirs[MAX_DIRS][4096];
    for (size_t i = 0; i < n && tw->nev < MAX_DIRS; i++) {
        char copy[4096];
        snprintf(copy, sizeof copy, "%s", files[i]);
        const char *d = dirname(copy);
        int seen = 0;
        for (int j = 0; j < tw->nev; j++) seen |= strcmp(dirs[j], d) == 0;
        if (seen) continue;
        snprintf(dirs[tw->nev], sizeof dirs[0], "%s", d);
        uv_fs_event_t *e = &tw->ev[tw->nev];
        uv_fs_event_init(w->loop, e);
        e->data = tw;
        int rc = uv_fs_event_start(e, on_event, d, 0);
        tw->nev++;
        if (rc < 0) loom__warn("TLS: cannot watch %s for changes: %s", d, uv_strerror(rc));
    }
    return tw;
}

static void on_closed(uv_handle_t *h)
{
    loom__tls_watch *tw = h->data;
    if (--tw->pending_closes == 0) free(tw);
}

void loom__tls_watch_stop(loom__tls_watch *tw)
{
    if (!tw || tw->closing) return;
    tw->closing = 1;
    tw->pending_closes = tw->nev + 1;
    for (int i = 0; i < tw->nev; i++) uv_close((uv_handle_t *)&tw->ev[i], on_closed);
    uv_close((uv_handle_t *)&tw->timer, on_closed);
}
