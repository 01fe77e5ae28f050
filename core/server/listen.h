/* The listening sockets: one per worker for every configured listener, each
 * bound with SO_REUSEPORT so that the kernel spreads a listener's
 * connections over the workers.
 *
 * The master binds them all before it forks. When a worker dies its sockets
 * are closed at once, so that the kernel stops routing new connections to a
 * queue nobody accepts from (clients would wait for the respawn, seconds
 * with the crash back-off); the respawned worker gets freshly bound ones.
 *
 * Socket activation: a listener whose address matches a socket systemd
 * passed (LISTEN_FDS) is not bound; every worker accepts from that one
 * socket (a duplicate of it), which the master keeps open for its whole
 * life. It is the socket that outlives a restart of the service, so it
 * must be the one accepted from; per-worker sockets beside it would die
 * with each restart and reset the connections queued on them. */
#ifndef LOOM_SERVER_LISTEN_H
#define LOOM_SERVER_LISTEN_H

#include "util/config.h"

typedef struct {
    const loom__config *cfg;
    int nworkers;
    int nlisten;
    int reuseport;
    int *fds;       /* [worker * nlisten + listener]; -1 when closed */
    int *ports;     /* each listener's bound port (a configured 0 resolved by the first bind) */
    int *inherited; /* each listener's socket from systemd, or -1 (bound by loom) */
    int ninherited;
} loom__listen_set;

/* Binds `nworkers` sockets for each of cfg's listeners (with SO_REUSEPORT
 * when `reuseport`), or takes the socket systemd passed for it. A passed
 * socket that matches no listener is an error. Returns 0, or -1 with a
 * one-line reason in `err` and nothing left open. */
int loom__listen_set_open(loom__listen_set *s, const loom__config *cfg, int nworkers, int reuseport,
                          char *err, size_t errlen);
/* The sockets of worker `w` (nlisten of them, in the config's order). */
const int *loom__listen_set_worker(const loom__listen_set *s, int w);
/* Binds worker `w`'s sockets again (after loom__listen_set_close_worker).
 * Returns 0, or -1 with the reason (its sockets stay closed). */
int loom__listen_set_rebind(loom__listen_set *s, int w, char *err, size_t errlen);
/* Closes worker `w`'s sockets (this process's copies). */
void loom__listen_set_close_worker(loom__listen_set *s, int w);
/* Closes every socket and frees the set. */
void loom__listen_set_free(loom__listen_set *s);

/* Opens a TCP listening socket on host:port with SO_REUSEADDR (and
 * SO_REUSEPORT when `reuseport`). Returns the fd, or -1 with the reason in
 * `err`. */
int loom__listen_socket(const char *host, int port, int reuseport, char *err, size_t errlen);
/* The port a socket is bound to, or -1. */
int loom__socket_port(int fd);

#endif
