/* clash: a plugin whose init starts what a plugin may start there (a
 * repeating timer, a thread-pool job) and succeeds, but whose middleware
 * name is the one version.so registers: a server with both refuses the new
 * snapshot after init. The host must then stop what init started, wait for
 * the job, and run fini before unmapping the code. Built with -DFAIL_INIT
 * its init fails after starting them (no fini then, the rest the same). */
#define _POSIX_C_SOURCE 200809L /* nanosleep */
#include <loom/loom.h>
#include <stdio.h>
#include <time.h>

static loom_plugin *me;
static loom_timer *timer;
static unsigned ticks;
static int job_done = -1; /* -1: not yet, else its `cancelled` */

static void tick(loom_timer *t, void *ud)
{
    (void)t;
    (void)ud;
    ticks++;
}

static void job_run(void *ud)
{
    (void)ud;
    struct timespec ts = {0, 300 * 1000000L};
    nanosleep(&ts, NULL);
}

static void job_after(void *ud, int32_t cancelled)
{
    (void)ud;
    char b[64];
    job_done = cancelled;
    snprintf(b, sizeof b, "clash: job done (cancelled=%d)", (int)cancelled);
    loom_log(me, LOOM_LOG_INFO, b);
}

#ifndef FAIL_INIT
static void tag(loom_req *req, void *ud)
{
    (void)req;
    (void)ud;
}
#endif

static int32_t init(loom_plugin *self, const char *config, size_t len)
{
    (void)config;
    (void)len;
    me = self;
    timer = loom_timer_start(self, 5, 5, tick, NULL);
    if (!timer || loom_work_queue(self, job_run, job_after, NULL)) return -1;
#ifdef FAIL_INIT
    return -5;
#else
    loom_middleware_def d = {sizeof d, LOOM_ORDER_MIDDLE, "version-tag", NULL, NULL, NULL, tag,
                             NULL};
    return loom_middleware_add(self, &d);
#endif
}

static void fini(loom_plugin *self)
{
    char b[96];
    snprintf(b, sizeof b, "clash: fini (job %s, %s ticks)",
             job_done < 0 ? "running"
             : job_done   ? "cancelled"
                          : "done",
             ticks ? "some" : "no");
    loom_log(self, LOOM_LOG_INFO, b);
    loom_timer_stop(timer);
}

LOOM_PLUGIN("clash", "1.0.0", init, fini)
