/* Named channels for broadcasts: a subscriber in this worker hears every
 * message published on its channel by any worker of this machine (through
 * the bus, bus.h) and, with "ws_pubsub": {"redis": ...}, by any machine
 * that shares the Redis server (redis.c).
 *
 * Subscribers are of any kind (a WebSocket today): each brings a delivery
 * function, and a message carries a cache slot that a kind may fill once per
 * message (a WebSocket frame built once for every connection). Everything
 * runs on the worker's loop thread. */
#ifndef LOOM_PUBSUB_PUBSUB_H
#define LOOM_PUBSUB_PUBSUB_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "util/config.h"

#define LOOM__CHANNEL_MAX 256 /* bytes of a channel name */

typedef struct loom__pubmsg {
    int type; /* 1 text, 2 binary (the ABI's LOOM_WS_TEXT/BINARY) */
    const char *data;
    size_t len;
    void *cache; /* a subscriber kind's per-message state, freed with cache_free */
    void (*cache_free)(void *cache);
} loom__pubmsg;

typedef struct loom__sub loom__sub;
typedef void (*loom__sub_fn)(loom__sub *s, loom__pubmsg *m);

struct loom__sub {
    loom__sub *prev, *next; /* in its channel */
    struct loom__chan *chan;
    loom__sub *onext; /* the subscriber's own list (free for its kind to use) */
    loom__sub_fn fn;  /* NULL once unsubscribed during a delivery */
    void *owner;
};

/* Starts this worker's channels: `bus` (NULL with one worker) joins the
 * other workers, `instance` names this server (messages it published come
 * back from Redis and are skipped), Redis when cfg->ws_pubsub says so.
 * Returns 0, or -1 with the reason logged. */
struct loom__bus;
int loom__pubsub_start(uv_loop_t *loop, const loom__config *cfg, struct loom__bus *bus, int id,
                       uint64_t instance);
/* Stops (at worker stop): closes the bus watcher and the Redis connections. */
void loom__pubsub_stop(void);

/* Subscribes `s` (fn and owner set by the caller) to channel `name`
 * (1..LOOM__CHANNEL_MAX bytes). Returns 0, -1 (bad name) or -2 (out of
 * memory). A sub is on one channel at a time. */
int loom__pubsub_subscribe(loom__sub *s, const char *name, size_t len);
/* Takes `s` off its channel (safe during a delivery). */
void loom__pubsub_unsubscribe(loom__sub *s);
/* Publishes to every subscriber of `name` here, in the other workers and
 * on other machines. Returns 0, -1 (bad name) or -2 (out of memory). */
int loom__pubsub_publish(const char *name, size_t nlen, int type, const void *data, size_t len);
/* Delivers to this worker's subscribers only (what the bus and Redis bring). */
void loom__pubsub_deliver(const char *name, size_t nlen, int type, const void *data, size_t len);
/* Subscribers of `name` in this worker. */
size_t loom__pubsub_count(const char *name, size_t nlen);
/* Channels with subscribers here, for Redis (re)subscribing: calls fn for each. */
void loom__pubsub_each_channel(void (*fn)(const char *name, size_t len, void *arg), void *arg);

/* Redis (redis.c): started by loom__pubsub_start when configured. */
int loom__pubsub_redis_start(uv_loop_t *loop, const loom__config *cfg, uint64_t instance);
void loom__pubsub_redis_stop(void);
void loom__pubsub_redis_publish(const char *name, size_t nlen, int type, const void *data,
                                size_t len);
/* A channel got its first (on = 1) or lost its last (0) subscriber here. */
void loom__pubsub_redis_interest(const char *name, size_t nlen, int on);

#endif
