/* The operations side of `loom serve`: the admin listener's metrics region,
 * the error log file and its buffering, log reopening (SIGUSR1), the log
 * level on SIGHUP, and systemd notifications. serve.c calls these at the
 * points of a server's life; each does nothing where it has nothing to do. */
#ifndef LOOM_CLI_SERVE_OPS_H
#define LOOM_CLI_SERVE_OPS_H

#include <stddef.h>

#include "server/server.h"
#include "util/config.h"

struct loom__metrics;

typedef struct {
    const loom__config *cfg;
    struct loom__metrics *metrics; /* NULL: the admin listener is off */
    int workers;
} loom__serve_ops;

/* In the process that will be master (or the single process), before any
 * listener is bound: opens the error log file as stderr and maps the
 * metrics region. Returns 0, or -1 with the reason in `err`. */
int loom__serve_ops_start(loom__serve_ops *o, const loom__config *cfg, int workers, char *err,
                          size_t errlen);
/* Installs the master's hooks (signals, worker deaths, stop). */
void loom__serve_ops_master(loom__serve_ops *o);
/* In a worker, once its loop exists: its metrics slot, the admin handler,
 * buffered error log lines, the crash flush, and its SIGHUP/SIGUSR1 hook. */
void loom__serve_ops_worker(loom__serve_ops *o, loom__worker *w);
/* The worker serves (its plugins are loaded). */
void loom__serve_ops_serving(loom__worker *w);
/* The worker's loop ended: write what is gathered, release its side. */
void loom__serve_ops_worker_end(loom__worker *w);
/* Every worker serves: READY=1 for systemd. */
void loom__serve_ops_ready(loom__serve_ops *o, const char *status);
/* The server ends (in the master). */
void loom__serve_ops_end(loom__serve_ops *o);

#endif
