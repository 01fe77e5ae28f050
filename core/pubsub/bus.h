/* The workers of one machine, joined for broadcasts: each worker has a
 * datagram socketpair made by the master before the first fork; the others
 * send to one end, the worker reads the other. A worker that dies and is
 * respawned finds its pair where it was (the master keeps both ends), so
 * nothing is set up again.
 *
 * Why not through the master: it is a plain POSIX process that waits in
 * sigtimedwait, and a relay there would cost a second hop and a process
 * switch per message. Why not a shared ring: a worker that crashes while
 * writing to shared memory leaves it to be repaired by the others, and the
 * kernel's datagram queues give order, atomicity and a bound per worker for
 * free. A message is one datagram per other worker (one for the fan-out to
 * any number of subscribers); a payload too large for one datagram travels
 * in a memfd passed along with it. docs/decisions.md has the figures. */
#ifndef LOOM_PUBSUB_BUS_H
#define LOOM_PUBSUB_BUS_H

#include <stddef.h>
#include <uv.h>

typedef struct loom__bus {
    int n;   /* workers */
    int *rd; /* rd[i]: worker i reads */
    int *wr; /* wr[i]: the others send to worker i */
} loom__bus;

/* Makes the pairs for n workers (in the master, before forking). Returns 0
 * or -1 with the reason in err. */
int loom__bus_create(loom__bus *b, int n, char *err, size_t errlen);
/* Closes every end (in the master, at exit). */
void loom__bus_free(loom__bus *b);

/* Worker side: starts reading worker `id`'s end on `loop`; messages go to
 * loom__pubsub_deliver. Returns 0 or -1 (logged). */
int loom__bus_start(loom__bus *b, int id, uv_loop_t *loop);
/* Sends a message to every other worker. A worker whose queue is full gets
 * it later (a bounded queue per worker, then dropped with a warning). */
void loom__bus_send(const char *name, size_t nlen, int type, const void *data, size_t len);
/* Stops the watchers (at worker stop). */
void loom__bus_stop(void);

#endif
