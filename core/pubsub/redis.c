/* Channels across machines through Redis pub/sub ("ws_pubsub": {"redis":
 * ...}), with hiredis on the worker's loop through a libuv adapter (below).
 *
 * Each worker keeps two connections: one publishes, one subscribes to the
 * channels that have subscribers in this worker (SUBSCRIBE when a channel
 * gets its first, UNSUBSCRIBE when it loses its last). A message is
 * delivered here and to the other workers of this machine by the bus at
 * once, and published on Redis with this server's instance id in front, so
 * that the workers of this machine skip it when Redis brings it back: other
 * machines hear it once, this one is not slowed by the round trip, and a
 * Redis outage loses only the other machines' copies (a warning says so; the
 * connections are made again every second). Redis channel names are
 * prefix + channel. Payload: 8 bytes of instance id, 1 byte of type, the
 * data. */
#include "pubsub/pubsub.h"
#include "util/buf.h"
#include "util/log.h"

#include <stdlib.h>
#include <string.h>

#ifdef LOOM_HAVE_HIREDIS
#include <hiredis/async.h>
#include <hiredis/hiredis.h>

/* hiredis's own libuv adapter (hiredis/adapters/libuv.h, 0.14) returns
 * when libuv reports a socket error: a refused connection then never gets
 * its callback and the context hangs forever (fixed upstream in 1.0). This is
 * the same adapter with that case handled: an error goes to hiredis, which
 * reads the socket's error and fails the connection. */
typedef struct {
    redisAsyncContext *ac;
    uv_poll_t poll;
    int events;
} uvev;

static void ev_poll(uv_poll_t *h, int status, int events)
{
    uvev *e = h->data;
    if (status < 0)
        events = (e->ac && (e->ac->c.flags & REDIS_CONNECTED)) ? UV_READABLE : UV_WRITABLE;
    if (e->ac && (events & UV_READABLE)) redisAsyncHandleRead(e->ac);
    if (e->ac && (events & UV_WRITABLE)) redisAsyncHandleWrite(e->ac);
}

static void ev_set(uvev *e, int events)
{
    e->events = events;
    if (events)
        uv_poll_start(&e->poll, events, ev_poll);
    else
        uv_poll_stop(&e->poll);
}
static void ev_add_read(void *p)
{
    ev_set(p, ((uvev *)p)->events | UV_READABLE);
}
static void ev_del_read(void *p)
{
    ev_set(p, ((uvev *)p)->events & ~UV_READABLE);
}
static void ev_add_write(void *p)
{
    ev_set(p, ((uvev *)p)->events | UV_WRITABLE);
}
static void ev_del_write(void *p)
{
    ev_set(p, ((uvev *)p)->events & ~UV_WRITABLE);
}
static void ev_closed(uv_handle_t *h)
{
    free(h->data);
}
static void ev_cleanup(void *p)
{
    uvev *e = p;
    e->ac = NULL;
    uv_close((uv_handle_t *)&e->poll, ev_closed);
}

static int ev_attach(redisAsyncContext *ac, uv_loop_t *loop)
{
    uvev *e = calloc(1, sizeof *e);
    if (!e) return REDIS_ERR;
    if (uv_poll_init_socket(loop, &e->poll, ac->c.fd) != 0) {
        free(e);
        return REDIS_ERR;
    }
    e->ac = ac;
    e->poll.data = e;
    ac->ev.data = e;
    ac->ev.addRead = ev_add_read;
    ac->ev.delRead = ev_del_read;
    ac->ev.addWrite = ev_add_write;
    ac->ev.delWrite = ev_del_write;
    ac->ev.cleanup = ev_cleanup;
    return REDIS_OK;
}

static _Thread_local struct {
    uv_loop_t *loop;
    const loom__config *cfg;
    uint64_t instance;
    redisAsyncContext *pub, *sub;
    uv_timer_t *retry;
    int stopping;
    uint64_t warned;
    int up_logged;
    loom__buf msg;
} rs;

static void connect_all(void);

/* The first failure is said at once, then at most every 30 s while Redis
 * stays away (retries are every second). */
static void warn_rarely(const char *what, const char *why)
{
    uint64_t now = uv_now(rs.loop);
    if (rs.warned && now - rs.warned < 30000) return;
    rs.warned = now ? now : 1;
    loom__warn("ws_pubsub: redis %s:%d: %s%s%s", rs.cfg->ws_pubsub_redis,
               rs.cfg->ws_pubsub_redis_port, what, why ? ": " : "", why ? why : "");
}

static void on_retry(uv_timer_t *t)
{
    (void)t;
    connect_all();
}

static void lost(redisAsyncContext *c, const char *what)
{
    if (rs.pub == c) rs.pub = NULL;
    if (rs.sub == c) rs.sub = NULL;
    rs.up_logged = 0;
    if (rs.stopping) return;
    warn_rarely(what, c->errstr[0] ? c->errstr : NULL);
    uv_timer_start(rs.retry, on_retry, 1000, 0);
}

static void on_connect(const redisAsyncContext *c, int status)
{
    if (status != REDIS_OK) lost((redisAsyncContext *)c, "cannot connect");
}

static void on_disconnect(const redisAsyncContext *c, int status)
{
    (void)status;
    lost((redisAsyncContext *)c, "connection lost");
}

static void on_message(redisAsyncContext *c, void *r, void *priv)
{
    (void)c;
    (void)priv;
    redisReply *reply = r;
    if (!reply || reply->type != REDIS_REPLY_ARRAY || reply->elements != 3) return;
    redisReply *kind = reply->element[0], *ch = reply->element[1], *pl = reply->element[2];
    if (kind->type != REDIS_REPLY_STRING || strcmp(kind->str, "message") != 0) {
        if (kind->type == REDIS_REPLY_STRING && strcmp(kind->str, "subscribe") == 0 &&
            !rs.up_logged) {
            loom__info("ws_pubsub: subscribed on redis %s:%d", rs.cfg->ws_pubsub_redis,
                       rs.cfg->ws_pubsub_redis_port);
            rs.up_logged = 1;
        }
        return;
    }
    if (ch->type != REDIS_REPLY_STRING || pl->type != REDIS_REPLY_STRING || pl->len < 9) return;
    size_t plen = strlen(rs.cfg->ws_pubsub_redis_prefix);
    if ((size_t)ch->len < plen) return;
    uint64_t origin;
    memcpy(&origin, pl->str, 8);
    if (origin == rs.instance) return; /* ours: the bus brought it already */
    loom__pubsub_deliver(ch->str + plen, (size_t)ch->len - plen, (uint8_t)pl->str[8], pl->str + 9,
                         (size_t)pl->len - 9);
}

static void on_auth(redisAsyncContext *c, void *r, void *priv)
{
    (void)priv;
    redisReply *reply = r;
    if (reply && reply->type == REDIS_REPLY_ERROR)
        loom__warn("ws_pubsub: redis AUTH refused: %s", reply->str);
    (void)c;
}

static void on_ping(redisAsyncContext *c, void *r, void *priv)
{
    (void)priv;
    redisReply *reply = r;
    if (reply && reply->type != REDIS_REPLY_ERROR) rs.warned = 0;
    if (reply && reply->type != REDIS_REPLY_ERROR && c == rs.pub)
        loom__debug("ws_pubsub: connected to redis %s:%d", rs.cfg->ws_pubsub_redis,
                    rs.cfg->ws_pubsub_redis_port);
}

static redisAsyncContext *open_one(void)
{
    redisAsyncContext *c = redisAsyncConnect(rs.cfg->ws_pubsub_redis, rs.cfg->ws_pubsub_redis_port);
    if (!c) return NULL;
    if (c->err) {
        warn_rarely("cannot connect", c->errstr);
        redisAsyncFree(c);
        return NULL;
    }
    if (ev_attach(c, rs.loop) != REDIS_OK) {
        redisAsyncFree(c);
        return NULL;
    }
    redisAsyncSetConnectCallback(c, on_connect);
    redisAsyncSetDisconnectCallback(c, on_disconnect);
    if (rs.cfg->ws_pubsub_redis_password)
        redisAsyncCommand(c, on_auth, NULL, "AUTH %s", rs.cfg->ws_pubsub_redis_password);
    /* hiredis 0.14 starts connecting only once a command waits: this one
     * makes the connection (and a failure to make it) happen now. */
    redisAsyncCommand(c, on_ping, NULL, "PING");
    return c;
}

static void subscribe_one(const char *name, size_t len, void *arg)
{
    (void)arg;
    loom__pubsub_redis_interest(name, len, 1);
}

static void connect_all(void)
{
    if (rs.stopping) return;
    if (!rs.pub) rs.pub = open_one();
    if (!rs.sub) {
        rs.sub = open_one();
        if (rs.sub) loom__pubsub_each_channel(subscribe_one, NULL);
    }
    if (!rs.pub || !rs.sub) uv_timer_start(rs.retry, on_retry, 1000, 0);
}

int loom__pubsub_redis_start(uv_loop_t *loop, const loom__config *cfg, uint64_t instance)
{
    memset(&rs, 0, sizeof rs);
    rs.loop = loop;
    rs.cfg = cfg;
    rs.instance = instance;
    rs.retry = malloc(sizeof *rs.retry);
    if (!rs.retry) return -1;
    uv_timer_init(loop, rs.retry);
    uv_unref((uv_handle_t *)rs.retry);
    connect_all();
    return 0;
}

static void free_handle(uv_handle_t *h)
{
    free(h);
}

void loom__pubsub_redis_stop(void)
{
    rs.stopping = 1;
    if (rs.pub) redisAsyncFree(rs.pub);
    if (rs.sub) redisAsyncFree(rs.sub);
    rs.pub = rs.sub = NULL;
    if (rs.retry) uv_close((uv_handle_t *)rs.retry, free_handle);
    rs.retry = NULL;
    loom__buf_free(&rs.msg);
}

void loom__pubsub_redis_publish(const char *name, size_t nlen, int type, const void *data,
                                size_t len)
{
    if (!rs.pub) {
        warn_rarely("not connected; a message did not reach other machines", NULL);
        return;
    }
    const char *pre = rs.cfg->ws_pubsub_redis_prefix;
    size_t pl = strlen(pre);
    rs.msg.len = 0;
    if (loom__buf_reserve(&rs.msg, pl + nlen + 9 + len)) return;
    char *ch = rs.msg.data, *body = ch + pl + nlen;
    memcpy(ch, pre, pl);
    memcpy(ch + pl, name, nlen);
    memcpy(body, &rs.instance, 8);
    body[8] = (char)type;
    if (len) memcpy(body + 9, data, len);
    redisAsyncCommand(rs.pub, NULL, NULL, "PUBLISH %b %b", ch, pl + nlen, body, 9 + len);
    if (rs.msg.cap > (1u << 20)) loom__buf_free(&rs.msg);
}

void loom__pubsub_redis_interest(const char *name, size_t nlen, int on)
{
    if (!rs.sub || rs.stopping) return; /* (re)connecting subscribes to every channel */
    const char *pre = rs.cfg->ws_pubsub_redis_prefix;
    size_t pl = strlen(pre);
    char ch[512];
    if (pl + nlen > sizeof ch) return;
    memcpy(ch, pre, pl);
    memcpy(ch + pl, name, nlen);
    if (on)
        redisAsyncCommand(rs.sub, on_message, NULL, "SUBSCRIBE %b", ch, pl + nlen);
    else
        redisAsyncCommand(rs.sub, on_message, NULL, "UNSUBSCRIBE %b", ch, pl + nlen);
}

#else /* built without hiredis */

int loom__pubsub_redis_start(uv_loop_t *loop, const loom__config *cfg, uint64_t instance)
{
    (void)loop;
    (void)cfg;
    (void)instance;
    loom__err("ws_pubsub.redis: this loom was built without hiredis (libhiredis-dev)");
    return -1;
}
void loom__pubsub_redis_stop(void) {}
void loom__pubsub_redis_publish(const char *name, size_t nlen, int type, const void *data,
                                size_t len)
{
    (void)name;
    (void)nlen;
    (void)type;
    (void)data;
    (void)len;
}
void loom__pubsub_redis_interest(const char *name, size_t nlen, int on)
{
    (void)name;
    (void)nlen;
    (void)on;
}
#endif
