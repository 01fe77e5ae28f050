/* Watching the plugins directory: inotify on the directory, and a timer that
 * turns a burst of changes into one rescan.
 *
 * The watch is on the directory (a file watch dies on an atomic rename).
 * IN_CLOSE_WRITE, IN_MOVED_TO, IN_MOVED_FROM and IN_DELETE start or extend a
 * burst; IN_CREATE and IN_MODIFY only record that a file is being written,
 * so that the rescan leaves it alone until its IN_CLOSE_WRITE (a linker
 * holds its output open, empty, for as long as link-time optimisation
 * takes). The rescan runs WINDOW_MS after the last change of a burst, but at
 * most CAP_MS after its first one: a directory that changes every 50 ms
 * still reloads. */
#include "plugin/host.h"
#include "util/log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>

#define WINDOW_MS 150
#define CAP_MS 250
#define MAX_EVENTS 256 /* names remembered; the oldest is forgotten first */

static int interesting(const char *name)
{
    size_t l = strlen(name);
    return name[0] != '.' && l > 3 && strcmp(name + l - 3, ".so") == 0;
}

static void on_timer(uv_timer_t *t)
{
    loom__host *h = t->data;
    h->burst_start = 0;
    h->retry_at = 0;
    loom__reload_rescan(h);
}

void loom__watch_arm(loom__host *h)
{
    if (!h->debounce || !h->watching) return;
    uint64_t due = 0;
    if (h->burst_start) {
        due = h->last_change + WINDOW_MS;
        if (due > h->burst_start + CAP_MS) due = h->burst_start + CAP_MS;
    }
    if (h->retry_at && (!due || h->retry_at < due)) due = h->retry_at;
    if (!due) return;
    uint64_t now = uv_now(h->loop);
    uv_timer_start(h->debounce, on_timer, due > now ? due - now : 0, 0);
}

static void record(loom__host *h, const char *name, uint32_t mask, uint64_t now)
{
    size_t i = 0, oldest = 0;
    for (; i < h->nevents; i++) {
        if (strcmp(h->events[i].name, name) == 0) break;
        if (h->events[i].at < h->events[oldest].at) oldest = i;
    }
    if (i == h->nevents) {
        char *copy = strdup(name);
        if (!copy) return;
        if (h->nevents == MAX_EVENTS) {
            i = oldest;
            free(h->events[i].name);
        } else {
            loom__file_event *e = realloc(h->events, (h->nevents + 1) * sizeof *e);
            if (!e) {
                free(copy);
                return;
            }
            h->events = e;
            h->nevents++;
        }
        h->events[i].name = copy;
    }
    h->events[i].at = now;
    h->events[i].mask = mask;
}

static void forget_events(loom__host *h)
{
    for (size_t i = 0; i < h->nevents; i++) free(h->events[i].name);
    free(h->events);
    h->events = NULL;
    h->nevents = 0;
}

uint32_t loom__watch_last(loom__host *h, const char *path, uint64_t *at)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    for (size_t i = 0; i < h->nevents; i++)
        if (strcmp(h->events[i].name, base) == 0) {
            *at = h->events[i].at;
            return h->events[i].mask;
        }
    return 0;
}

void loom__watch_prune(loom__host *h, uint64_t before)
{
    size_t k = 0;
    for (size_t i = 0; i < h->nevents; i++) {
        /* A file being written keeps its mark until its close-write. */
        if (h->events[i].at < before && !(h->events[i].mask & (IN_CREATE | IN_MODIFY)))
            free(h->events[i].name);
        else
            h->events[k++] = h->events[i];
    }
    h->nevents = k;
}

static void on_inotify(uv_poll_t *p, int status, int events)
{
    loom__host *h = p->data;
    (void)events;
    if (status < 0) return;
    char buf[8192] __attribute__((aligned(__alignof__(struct inotify_event))));
    uint64_t now = uv_now(h->loop);
    int change = 0;
    for (;;) {
        ssize_t n = read(h->inotify_fd, buf, sizeof buf);
        if (n <= 0) break;
        for (char *q = buf; q < buf + n;) {
            struct inotify_event *e = (struct inotify_event *)q;
            q += sizeof *e + e->len;
            if (e->mask & IN_Q_OVERFLOW) {
                /* Events were lost: what was being written is unknown, so
                 * rescan everything and judge files by their times. */
                forget_events(h);
                change = 1;
                continue;
            }
            if (!e->len || !interesting(e->name)) continue;
            record(h, e->name, e->mask, now);
            if (e->mask & (IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE)) change = 1;
        }
    }
    if (!change) return;
    if (!h->burst_start) h->burst_start = now;
    h->last_change = now;
    loom__watch_arm(h);
}

static void on_sighup(loom__worker *w)
{
    loom__info("SIGHUP: rescanning plugins (refused files are tried again)");
    if (!w->host) return;
    loom__reload_forget_refused(w->host);
    loom__reload_rescan(w->host);
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
    if (h->inotify_fd < 0 || inotify_add_watch(h->inotify_fd, h->cfg->plugins_dir,
                                               IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM |
                                                   IN_DELETE | IN_CREATE | IN_MODIFY) < 0) {
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
    forget_events(h);
}
