/* The master process: forks N workers, each serving on its own SO_REUSEPORT
 * listener, respawns a worker that dies (with a growing back-off when it
 * keeps dying), forwards SIGHUP, and stops them gracefully.
 *
 * The listeners are created by the master before any fork and kept open, so
 * a respawned worker takes over the same socket and the connections waiting
 * in its backlog (the nginx way). */
#ifndef LOOM_SERVER_MASTER_H
#define LOOM_SERVER_MASTER_H

#include "util/config.h"

/* The body of a worker process: serves on `listen_fd` as worker `id`, writes
 * one byte to `ready_fd` once it serves (then closes it), and returns the
 * process exit status. */
typedef int (*loom__worker_main)(void *arg, int id, int listen_fd, int ready_fd);

/* Exit status of a worker that cannot start (a bad plugin, ...): the master
 * then stops instead of respawning it forever. */
#define LOOM__EXIT_CONFIG 78

/* Runs the master until a stop. `fds` holds one listener per worker. Returns
 * the exit status for the whole server (0 when every worker stopped cleanly). */
int loom__master_run(const loom__config *cfg, const int *fds, int n, loom__worker_main fn,
                     void *arg);

#endif
