/* crashtest: a plugin that crashes its worker on purpose.
 *   GET /pid    -> the worker's pid
 *   GET /slow   -> the pid, after 500 ms (?ms=N: after N ms, at most 10000)
 *   GET /crash  -> SIGSEGV in the worker
 * Config {"crash_after_ms": N}: crash N ms after every start (a crash loop);
 * with "crash_lock": FILE too, only the worker holding an flock on FILE
 * crashes (the same worker slot each time: the lock frees when it dies). */
#define _POSIX_C_SOURCE 200809L
#include <loom/loom.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/file.h>
#include <unistd.h>

static loom_plugin *me;

static int32_t h_pid(loom_req *req, void *ud)
{
    (void)ud;
    char buf[32];
    snprintf(buf, sizeof buf, "%d", (int)getpid());
    return loom_resp_text(req, 200, buf);
}

static void slow_done(loom_timer *t, void *ud)
{
    (void)t;
    h_pid((loom_req *)ud, NULL);
}

static int32_t h_slow(loom_req *req, void *ud)
{
    (void)ud;
    size_t len = 0;
    const char *arg = loom_req_query(req, "ms", 0, &len);
    long ms = arg ? atol(arg) : 500;
    if (ms < 0 || ms > 10000) return loom_resp_error(req, 400, "ms: 0 to 10000");
    return loom_timer_start(me, (uint64_t)ms, 0, slow_done, req) ? LOOM_PENDING : -1;
}

static void crash(void)
{
    raise(SIGSEGV);
}

static int32_t h_crash(loom_req *req, void *ud)
{
    (void)req;
    (void)ud;
    crash();
    return -1;
}

static void crash_timer(loom_timer *t, void *ud)
{
    (void)t;
    (void)ud;
    crash();
}

static int32_t init(loom_plugin *self, const char *config, size_t len)
{
    (void)config;
    (void)len;
    me = self;
    const loom_json *after = loom_json_get(loom_config(self), "crash_after_ms");
    const char *lock = loom_json_string(loom_json_get(loom_config(self), "crash_lock"), NULL);
    if (after && lock) {
        int fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        if (fd < 0 || flock(fd, LOCK_EX | LOCK_NB) < 0) after = NULL; /* another one crashes */
    }
    if (after) loom_timer_start(self, (uint64_t)loom_json_integer(after), 0, crash_timer, NULL);
    int32_t rc = loom_route_add(self, "GET", "/pid", h_pid, NULL);
    rc |= loom_route_add(self, "GET", "/slow", h_slow, NULL);
    rc |= loom_route_add(self, "GET", "/crash", h_crash, NULL);
    return rc;
}

LOOM_PLUGIN("crashtest", "1.0.0", init, NULL)
