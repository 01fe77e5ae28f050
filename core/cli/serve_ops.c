/* The operations side of `loom serve` (see serve_ops.h). */
#include "cli/serve_ops.h"
#include "admin/admin.h"
#include "admin/metrics.h"
#include "server/access_log.h"
#include "server/master.h"
#include "server/systemd.h"
#include "util/log.h"
#include "util/logbuf.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>

#define ERROR_LOG_BUFFER (64u * 1024u)

int loom__serve_ops_start(loom__serve_ops *o, const loom__config *cfg, int workers, char *err,
                          size_t errlen)
{
    memset(o, 0, sizeof *o);
    o->cfg = cfg;
    o->workers = workers;
    if (cfg->error_log && loom__log_reopen(cfg->error_log, err, errlen)) return -1;
    if (cfg->admin && !(o->metrics = loom__metrics_open(workers))) {
        snprintf(err, errlen, "admin: cannot map the metrics region");
        return -1;
    }
    return 0;
}

/* SIGHUP: the error log level, read again from the config file (a
 * --log-level flag keeps winning, as it does at start). */
static void reload_level(const loom__config *cfg)
{
    if (!cfg->config_path) return;
    if (cfg->log_level_flag) {
        loom__debug("SIGHUP: log_level stays as --log-level set it");
        return;
    }
    loom__config c;
    loom__config_defaults(&c);
    char err[512];
    if (loom__config_load(&c, cfg->config_path, err, sizeof err)) {
        loom__warn("SIGHUP: log_level not read again: config %s", err);
    } else if (c.log_level != loom__log_get_level()) {
        static const char *const names[] = {"error", "warn", "info", "debug"};
        int was = loom__log_get_level();
        /* Said at the more verbose of the two levels, so that it shows. */
        if (c.log_level > was) loom__log_set_level(c.log_level);
        loom__log(c.log_level > was ? c.log_level : was, "SIGHUP: log_level %s (was %s)",
                  names[c.log_level], names[was]);
        loom__log_set_level(c.log_level);
    }
    loom__config_free(&c);
}

static void reopen_error_log(const loom__config *cfg)
{
    char err[512];
    if (cfg->error_log && loom__log_reopen(cfg->error_log, err, sizeof err))
        loom__err("SIGUSR1: %s; writing to the old file", err);
}

/* The master's hooks: one server per process. */
static loom__serve_ops *master_ops;

static void master_signal(void *arg, int signum)
{
    (void)arg;
    if (signum == SIGUSR1) reopen_error_log(master_ops->cfg);
    if (signum == SIGHUP) reload_level(master_ops->cfg);
}

static void master_worker_exit(void *arg, int id, int status)
{
    (void)arg;
    loom__metrics_worker_died(master_ops->metrics, id, status);
}

static void master_stop(void *arg)
{
    (void)arg;
    loom__sd_notify("STOPPING=1\nSTATUS=stopping");
}

void loom__serve_ops_master(loom__serve_ops *o)
{
    static const loom__master_hooks hooks = {master_signal, master_worker_exit, master_stop};
    master_ops = o;
    loom__master_set_hooks(&hooks);
}

static void worker_signal(loom__worker *w, int signum)
{
    if (signum == SIGHUP) {
        reload_level(w->cfg);
        return;
    }
    /* SIGUSR1: what is gathered goes to the old files, then the paths are
     * opened again (a rotation renamed them). */
    reopen_error_log(w->cfg);
    char err[512];
    if (w->access_log && loom__access_log_reopen(w->access_log, err, sizeof err))
        loom__err("SIGUSR1: %s; writing to the old file", err);
    loom__info("SIGUSR1: log files reopened");
}

void loom__serve_ops_worker(loom__serve_ops *o, loom__worker *w)
{
    w->handle_admin = loom__admin_handle;
    w->on_ops_signal = worker_signal;
    if (o->metrics) w->metrics = loom__metrics_worker(o->metrics, w->id);
    if (loom__log_buffer(ERROR_LOG_BUFFER))
        loom__warn("error log: no memory for a buffer; lines are written one by one");
    loom__logbuf_catch_crashes();
}

void loom__serve_ops_serving(loom__worker *w)
{
    if (w->metrics) __atomic_store_n(&w->metrics->slot->up, 1, __ATOMIC_RELAXED);
}

void loom__serve_ops_worker_end(loom__worker *w)
{
    loom__metrics_worker_free(w->metrics);
    w->metrics = NULL;
    loom__log_flush();
}

void loom__serve_ops_ready(loom__serve_ops *o, const char *status)
{
    (void)o;
    loom__sd_notify("READY=1\nSTATUS=%s", status);
}

void loom__serve_ops_end(loom__serve_ops *o)
{
    loom__metrics_close(o->metrics);
    o->metrics = NULL;
}
