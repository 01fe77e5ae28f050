/* The channel registry of this worker: a hash table of channel names, each
 * with its list of subscribers. Publishing delivers here first, then tells
 * the other workers (bus.c) and Redis (redis.c). */
#include "pubsub/pubsub.h"
#include "pubsub/bus.h"
#include "util/log.h"

#include <stdlib.h>
#include <string.h>

typedef struct loom__chan {
    struct loom__chan *hnext; /* in its bucket */
    loom__sub *subs;
    size_t n;      /* live subscribers */
    uint32_t busy; /* deliveries in progress */
    uint8_t dead;  /* subscribers left during a delivery: unlink after it */
    uint32_t hash;
    size_t len;
    char name[];
} loom__chan;

static _Thread_local struct {
    loom__chan **b;
    size_t nb, nchan;
    loom__bus *bus;
    int redis;
} reg;

static uint32_t hash(const char *s, size_t n)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (size_t i = 0; i < n; i++) h = (h ^ (uint8_t)s[i]) * 16777619u;
    return h;
}

static loom__chan *find(const char *name, size_t len, uint32_t h)
{
    if (!reg.nb) return NULL;
    for (loom__chan *c = reg.b[h & (reg.nb - 1)]; c; c = c->hnext)
        if (c->hash == h && c->len == len && memcmp(c->name, name, len) == 0) return c;
    return NULL;
}

static int grow(void)
{
    size_t nb = reg.nb ? reg.nb * 2 : 64;
    loom__chan **b = calloc(nb, sizeof *b);
    if (!b) return -1;
    for (size_t i = 0; i < reg.nb; i++)
        for (loom__chan *c = reg.b[i], *n; c; c = n) {
            n = c->hnext;
            c->hnext = b[c->hash & (nb - 1)];
            b[c->hash & (nb - 1)] = c;
        }
    free(reg.b);
    reg.b = b;
    reg.nb = nb;
    return 0;
}

static void chan_free(loom__chan *c)
{
    loom__chan **pp = &reg.b[c->hash & (reg.nb - 1)];
    while (*pp != c) pp = &(*pp)->hnext;
    *pp = c->hnext;
    reg.nchan--;
    if (reg.redis) loom__pubsub_redis_interest(c->name, c->len, 0);
    free(c);
}

static int name_ok(const char *name, size_t len)
{
    return name && len > 0 && len <= LOOM__CHANNEL_MAX;
}

int loom__pubsub_subscribe(loom__sub *s, const char *name, size_t len)
{
    if (!name_ok(name, len)) return -1;
    uint32_t h = hash(name, len);
    loom__chan *c = find(name, len, h);
    if (!c) {
        if (reg.nchan >= reg.nb && grow()) return -2;
        c = calloc(1, sizeof *c + len + 1);
        if (!c) return -2;
        c->hash = h;
        c->len = len;
        memcpy(c->name, name, len);
        c->hnext = reg.b[h & (reg.nb - 1)];
        reg.b[h & (reg.nb - 1)] = c;
        reg.nchan++;
        if (reg.redis) loom__pubsub_redis_interest(name, len, 1);
    }
    s->chan = c;
    s->prev = NULL;
    s->next = c->subs;
    if (c->subs) c->subs->prev = s;
    c->subs = s;
    c->n++;
    return 0;
}

static void unlink_sub(loom__chan *c, loom__sub *s)
{
    if (s->prev)
        s->prev->next = s->next;
    else
        c->subs = s->next;
    if (s->next) s->next->prev = s->prev;
    s->prev = s->next = NULL;
}

void loom__pubsub_unsubscribe(loom__sub *s)
{
    loom__chan *c = s->chan;
    if (!c) return;
    s->chan = NULL;
    c->n--;
    if (c->busy) {
        /* A delivery walks the list: this one is skipped and unlinked after. */
        s->fn = NULL;
        c->dead = 1;
        return;
    }
    unlink_sub(c, s);
    if (!c->subs) chan_free(c);
}

/* Unlinks what left during a delivery. Such a sub is still in the list
 * until then, so its owner must keep it allocated: ws.c unsubscribes only
 * from its deferred close, which runs from the loop and never inside a
 * delivery, so in practice the list is never walked while one leaves. */
static void sweep_dead(loom__chan *c)
{
    for (loom__sub *s = c->subs, *n; s; s = n) {
        n = s->next;
        if (!s->fn) unlink_sub(c, s);
    }
    c->dead = 0;
    if (!c->subs) chan_free(c);
}

void loom__pubsub_deliver(const char *name, size_t nlen, int type, const void *data, size_t len)
{
    loom__chan *c = find(name, nlen, hash(name, nlen));
    if (!c) return;
    loom__pubmsg m = {type, data, len, NULL, NULL};
    c->busy++;
    for (loom__sub *s = c->subs; s; s = s->next)
        if (s->fn) s->fn(s, &m);
    c->busy--;
    if (m.cache_free) m.cache_free(m.cache);
    if (!c->busy && c->dead) sweep_dead(c);
}

int loom__pubsub_publish(const char *name, size_t nlen, int type, const void *data, size_t len)
{
    if (!name_ok(name, nlen)) return -1;
    loom__pubsub_deliver(name, nlen, type, data, len);
    if (reg.bus) loom__bus_send(name, nlen, type, data, len);
    if (reg.redis) loom__pubsub_redis_publish(name, nlen, type, data, len);
    return 0;
}

size_t loom__pubsub_count(const char *name, size_t nlen)
{
    loom__chan *c = name_ok(name, nlen) ? find(name, nlen, hash(name, nlen)) : NULL;
    return c ? c->n : 0;
}

void loom__pubsub_each_channel(void (*fn)(const char *name, size_t len, void *arg), void *arg)
{
    for (size_t i = 0; i < reg.nb; i++)
        for (loom__chan *c = reg.b[i]; c; c = c->hnext)
            if (c->n) fn(c->name, c->len, arg);
}

int loom__pubsub_start(uv_loop_t *loop, const loom__config *cfg, loom__bus *bus, int id,
                       uint64_t instance)
{
    if (bus && bus->n > 1) {
        if (loom__bus_start(bus, id, loop)) return -1;
        reg.bus = bus;
    }
    loom__debug("channels: %s%s%s", bus && bus->n > 1 ? "worker bus" : "this worker only",
                cfg->ws_pubsub_redis ? ", redis " : "",
                cfg->ws_pubsub_redis ? cfg->ws_pubsub_redis : "");
    if (cfg->ws_pubsub_redis) {
        if (loom__pubsub_redis_start(loop, cfg, instance)) return -1;
        reg.redis = 1;
    }
    return 0;
}

void loom__pubsub_stop(void)
{
    if (reg.bus) loom__bus_stop();
    reg.bus = NULL;
    if (reg.redis) loom__pubsub_redis_stop();
    reg.redis = 0;
    /* Channels outlive nobody: every subscriber left with its connection. */
    for (size_t i = 0; i < reg.nb; i++)
        for (loom__chan *c = reg.b[i], *n; c; c = n) {
            n = c->hnext;
            free(c);
        }
    free(reg.b);
    memset(&reg, 0, sizeof reg);
}
