/* session-redis: sessions in Redis, shared by every loom machine that talks
 * to the same server. hiredis's asynchronous API runs on the worker's loop
 * through the host's descriptor watchers (loom_io_*): the plugin owns no
 * libuv handle and never blocks. Keys are PREFIX + id with a TTL, so Redis
 * itself drops expired sessions. A lost connection fails the operations in
 * flight (the request then gets a fresh session) and is re-opened by the
 * next operation.
 * Config: {"host": "127.0.0.1", "port": 6379, "prefix": "loom:sess:"}. */
#define _POSIX_C_SOURCE 200809L
#include <loom/loom.h>

#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static loom_plugin *me;
static char host[256] = "127.0.0.1";
static int port = 6379;
static char prefix[64] = "loom:sess:";
static redisAsyncContext *ac;
static loom_io *io;
static int io_events;
static int connected_logged;

enum { OP_LOAD, OP_SAVE, OP_DESTROY, OP_TOUCH };

typedef struct {
    int op;
    loom_session_done_fn done;
    void *ctx;
} job;

/* ---- the hiredis adapter on loom's watchers ---- */

static void on_io(loom_io *w, int32_t events, void *ud)
{
    (void)w;
    redisAsyncContext *c = ud;
    if (events < 0) events = LOOM_IO_READ; /* let hiredis see the error */
    if (events & LOOM_IO_READ) {
        redisAsyncHandleRead(c);
        if (ac != c) return; /* freed (disconnected) inside */
    }
    if (events & LOOM_IO_WRITE) redisAsyncHandleWrite(c);
}

static void set_events(int ev)
{
    io_events = ev;
    if (io) loom_io_update(io, ev);
}

static void add_read(void *p)
{
    (void)p;
    set_events(io_events | LOOM_IO_READ);
}
static void del_read(void *p)
{
    (void)p;
    set_events(io_events & ~LOOM_IO_READ);
}
static void add_write(void *p)
{
    (void)p;
    set_events(io_events | LOOM_IO_WRITE);
}
static void del_write(void *p)
{
    (void)p;
    set_events(io_events & ~LOOM_IO_WRITE);
}
static void cleanup(void *p)
{
    (void)p;
    if (io) loom_io_stop(io); /* before hiredis closes the descriptor */
    io = NULL;
    io_events = 0;
}

static void on_connect(const redisAsyncContext *c, int status)
{
    if (status != REDIS_OK) {
        char msg[400];
        snprintf(msg, sizeof msg, "session-redis: cannot connect to %s:%d: %s", host, port,
                 c->errstr);
        loom_log(me, LOOM_LOG_WARN, msg);
        if (ac == c) ac = NULL; /* hiredis frees it after this callback */
        connected_logged = 0;
        return;
    }
    if (!connected_logged) {
        char msg[400];
        snprintf(msg, sizeof msg, "session-redis: connected to %s:%d", host, port);
        loom_log(me, LOOM_LOG_INFO, msg);
        connected_logged = 1;
    }
}

static void on_disconnect(const redisAsyncContext *c, int status)
{
    if (status != REDIS_OK) {
        char msg[400];
        snprintf(msg, sizeof msg, "session-redis: connection to %s:%d lost: %s", host, port,
                 c->errstr);
        loom_log(me, LOOM_LOG_WARN, msg);
    }
    if (ac == c) ac = NULL;
    connected_logged = 0;
}

static redisAsyncContext *conn(void)
{
    if (ac) return ac;
    redisAsyncContext *c = redisAsyncConnect(host, port);
    if (!c) return NULL;
    if (c->err) {
        redisAsyncFree(c);
        return NULL;
    }
    io = loom_io_start(me, c->c.fd, 0, on_io, c);
    if (!io) {
        redisAsyncFree(c);
        return NULL;
    }
    c->ev.data = c;
    c->ev.addRead = add_read;
    c->ev.delRead = del_read;
    c->ev.addWrite = add_write;
    c->ev.delWrite = del_write;
    c->ev.cleanup = cleanup;
    redisAsyncSetConnectCallback(c, on_connect);
    redisAsyncSetDisconnectCallback(c, on_disconnect);
    ac = c;
    return c;
}

/* ---- the store ---- */

static void on_reply(redisAsyncContext *c, void *r, void *privdata)
{
    (void)c;
    redisReply *reply = r;
    job *j = privdata;
    int32_t st = LOOM_EINVAL;
    const char *data = NULL;
    size_t len = 0;
    if (reply && reply->type != REDIS_REPLY_ERROR) {
        switch (j->op) {
        case OP_LOAD:
            if (reply->type == REDIS_REPLY_STRING) {
                st = 0;
                data = reply->str;
                len = reply->len;
            } else if (reply->type == REDIS_REPLY_NIL) {
                st = LOOM_ENOTFOUND;
            }
            break;
        case OP_TOUCH:
            st = reply->type == REDIS_REPLY_INTEGER && reply->integer == 1 ? 0 : LOOM_ENOTFOUND;
            break;
        default:
            st = 0;
        }
    }
    loom_session_done_fn done = j->done;
    void *ctx = j->ctx;
    free(j);
    done(ctx, st, data, len);
}

static int32_t command(int op, loom_session_done_fn done, void *ctx, const char *fmt,
                       const char *id, const char *data, size_t len, long long ttl)
{
    redisAsyncContext *c = conn();
    if (!c) return LOOM_EGONE;
    job *j = malloc(sizeof *j);
    if (!j) return LOOM_ENOMEM;
    j->op = op;
    j->done = done;
    j->ctx = ctx;
    int rc;
    if (op == OP_SAVE)
        rc = redisAsyncCommand(c, on_reply, j, fmt, prefix, id, data, len, ttl);
    else if (op == OP_TOUCH)
        rc = redisAsyncCommand(c, on_reply, j, fmt, prefix, id, ttl);
    else
        rc = redisAsyncCommand(c, on_reply, j, fmt, prefix, id);
    if (rc != REDIS_OK) {
        free(j);
        return LOOM_EGONE;
    }
    return 0;
}

static long long ttl_of(int64_t expires)
{
    long long t = (long long)(expires - (int64_t)time(NULL));
    return t < 1 ? 1 : t;
}

static int32_t st_load(void *ud, const char *id, loom_session_done_fn done, void *ctx)
{
    (void)ud;
    return command(OP_LOAD, done, ctx, "GET %s%s", id, NULL, 0, 0);
}

static int32_t st_save(void *ud, const char *id, const char *data, size_t len, int64_t expires,
                       loom_session_done_fn done, void *ctx)
{
    (void)ud;
    return command(OP_SAVE, done, ctx, "SET %s%s %b EX %lld", id, data, len, ttl_of(expires));
}

static int32_t st_destroy(void *ud, const char *id, loom_session_done_fn done, void *ctx)
{
    (void)ud;
    return command(OP_DESTROY, done, ctx, "DEL %s%s", id, NULL, 0, 0);
}

static int32_t st_touch(void *ud, const char *id, int64_t expires, loom_session_done_fn done,
                        void *ctx)
{
    (void)ud;
    return command(OP_TOUCH, done, ctx, "EXPIRE %s%s %lld", id, NULL, 0, ttl_of(expires));
}

static int32_t init(loom_plugin *self, const char *config, size_t len)
{
    (void)config;
    (void)len;
    me = self;
    const loom_json *c = loom_config(self);
    static const char *const keys[] = {"host", "port", "prefix", NULL};
    if (loom_config_check_keys(self, c, NULL, keys)) return LOOM_EINVAL;
    const loom_json *h = c ? loom_json_get(c, "host") : NULL;
    const loom_json *p = c ? loom_json_get(c, "port") : NULL;
    const loom_json *x = c ? loom_json_get(c, "prefix") : NULL;
    if (h) {
        const char *s = loom_json_string(h, NULL);
        if (!s || !*s || strlen(s) >= sizeof host) {
            loom_log(self, LOOM_LOG_ERROR, "session-redis: \"host\" must be a host name");
            return LOOM_EINVAL;
        }
        strcpy(host, s);
    }
    if (p) {
        int64_t v = loom_json_integer(p);
        if (v < 1 || v > 65535) {
            loom_log(self, LOOM_LOG_ERROR, "session-redis: \"port\" must be 1..65535");
            return LOOM_EINVAL;
        }
        port = (int)v;
    }
    if (x) {
        const char *s = loom_json_string(x, NULL);
        if (!s || strlen(s) >= sizeof prefix || strpbrk(s, " \r\n")) {
            loom_log(self, LOOM_LOG_ERROR, "session-redis: \"prefix\" must be a short key prefix");
            return LOOM_EINVAL;
        }
        strcpy(prefix, s);
    }
    loom_session_store st;
    memset(&st, 0, sizeof st);
    st.size = sizeof st;
    st.name = "redis";
    st.load = st_load;
    st.save = st_save;
    st.destroy = st_destroy;
    st.touch = st_touch;
    int32_t rc = loom_session_store_register(self, &st);
    if (rc == LOOM_ESTATE || rc == LOOM_ENOTFOUND) return 0; /* not in use: stay idle */
    if (rc) return rc;
    conn(); /* connect early; failures are retried by the next operation */
    return 0;
}

static void fini(loom_plugin *self)
{
    (void)self;
    /* Fails what is in flight (each done gets an error) and closes. */
    if (ac) {
        redisAsyncContext *c = ac;
        ac = NULL;
        redisAsyncFree(c);
    }
}

LOOM_PLUGIN("session-redis", "1.0.0", init, fini);
