/* The master process: forks N workers, each serving on its own SO_REUSEPORT
 * listener, respawns a worker that dies (with a growing back-off when it
 * keeps dying), forwards SIGHUP, and stops them gracefully.
 *
 * The listeners are bound by the master before any fork (server/listen.h).
 * A worker that dies has its sockets closed at once, so that the kernel
 * routes new connections to the live workers instead of a queue nobody
 * accepts from (with the crash back-off, clients would wait seconds); the
 * respawned worker gets sockets bound anew. Connections that were already
 * in the dead worker's queue are reset (Linux can move them to a live
 * socket instead: sysctl net.ipv4.tcp_migrate_req=1). */
#ifndef LOOM_SERVER_MASTER_H
#define LOOM_SERVER_MASTER_H

#include "server/listen.h"
#include "util/config.h"

/* The body of a worker process: serves on `fds` (one socket per configured
 * listener) as worker `id`, writes one byte to `ready_fd` once it serves
 * (then closes it), and returns the process exit status. */
typedef int (*loom__worker_main)(void *arg, int id, const int *fds, int ready_fd);

/* Exit status of a worker that cannot start (a bad plugin, ...): the master
 * then stops instead of respawning it forever. */
#define LOOM__EXIT_CONFIG 78

/* What the master tells the server's operations side (metrics, logs,
 * systemd); every hook is optional. */
typedef struct {
    /* SIGHUP or SIGUSR1 arrived; called before the master forwards it to
     * the workers (SIGUSR1: reopen log files). */
    void (*on_signal)(void *arg, int signum);
    /* Worker `id` died with wait status `status` while serving (it will be
     * respawned). */
    void (*on_worker_exit)(void *arg, int id, int status);
    /* A stop began (SIGTERM, SIGINT, SIGQUIT). */
    void (*on_stop)(void *arg);
} loom__master_hooks;

/* Sets the hooks loom__master_run calls (with its `arg`); NULL for none. */
void loom__master_set_hooks(const loom__master_hooks *hooks);

/* Runs the master until a stop, with one worker per row of `ls`. Calls
 * `on_ready(arg)` once every worker serves (before that, a worker that
 * cannot start stops the server). Returns the exit status for the whole
 * server (0 when every worker stopped cleanly). Closes the sockets of `ls`. */
int loom__master_run(const loom__config *cfg, loom__listen_set *ls, loom__worker_main fn,
                     void (*on_ready)(void *arg), void *arg);

#endif
