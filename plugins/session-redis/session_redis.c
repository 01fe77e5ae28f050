/* session-redis: sessions in Redis, shared by every loom machine that talks
 * to the same server. hiredis's asynchronous API runs on the worker's loop
 * through the host's descriptor watchers (loom_io_*): the plugin owns no
 * libuv handle and never blocks. Keys are PREFIX + id with a TTL, so Redis
 * itself drops expired sessions; each is a hash {d: JSON, v: version}. Reads
 * and compare-and-sets run as one Lua script (EVAL), atomic in Redis for
 * every loom process and machine that shares it. A lost connection fails
 * the operations in flight (those requests get 503: no session is better
 * than a wrong one) and is re-opened by the next operation.
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

enum { OP_LOAD, OP_SAVE_IF, OP_DESTROY_IF, OP_DESTROY, OP_TOUCH };

typedef struct {
    int op;
    loom_session_done_fn done;
    loom_session_vdone_fn vdone;
    void *ctx;
} job;

/* KEYS[1] the key; ARGV: op ("get", "set", "del"), the expected version,
 * data, ttl. Returns {done (1/0), data or nil, version}. A plain string
 * (a session written before versions) reads as version 1. */
static const char script[] =
    "local k, op = KEYS[1], ARGV[1]\n"
    "local t = redis.call('TYPE', k).ok\n"
    "local d, v = false, 0\n"
    "if t == 'hash' then\n"
    "  local r = redis.call('HMGET', k, 'd', 'v')\n"
    "  d = r[1]; v = tonumber(r[2]) or 0\n"
    "elseif t == 'string' then\n"
    "  d = redis.call('GET', k); v = 1\n"
    "end\n"
    "if op == 'get' then return {1, d, v} end\n"
    "if v ~= tonumber(ARGV[2]) or (op == 'del' and v == 0) then return {0, d, v} end\n"
    "if op == 'del' then redis.call('DEL', k); return {1, false, 0} end\n"
    "if t == 'string' then redis.call('DEL', k) end\n"
    "redis.call('HSET', k, 'd', ARGV[3], 'v', tostring(v + 1))\n"
    "redis.call('EXPIRE', k, ARGV[4])\n"
    "return {1, false, v + 1}\n";

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

/* While Redis is down every request fails: one line a second says so. */
static int quiet(void)
{
    static int64_t last;
    int64_t now = (int64_t)time(NULL);
    if (now == last) return 1;
    last = now;
    return 0;
}

static void on_connect(const redisAsyncContext *c, int status)
{
    if (status != REDIS_OK) {
        char msg[400];
        snprintf(msg, sizeof msg, "session-redis: cannot connect to %s:%d: %s", host, port,
                 c->errstr);
        if (!quiet()) loom_log(me, LOOM_LOG_ERROR, msg);
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
        char msg[400];
        snprintf(msg, sizeof msg, "session-redis: cannot connect to %s:%d: %s", host, port,
                 c->errstr);
        if (!quiet()) loom_log(me, LOOM_LOG_ERROR, msg);
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

static void fail_log(const redisAsyncContext *c, const redisReply *reply)
{
    char msg[400];
    snprintf(msg, sizeof msg, "session-redis: %s:%d: %s", host, port,
             reply               ? reply->str
             : c && c->errstr[0] ? c->errstr
                                 : "no reply (connection lost)");
    if (!quiet()) loom_log(me, LOOM_LOG_ERROR, msg);
}

static void on_reply(redisAsyncContext *c, void *r, void *privdata)
{
    redisReply *reply = r;
    job *j = privdata;
    int32_t st = LOOM_EUNAVAIL;
    const char *data = NULL;
    size_t len = 0;
    uint64_t ver = 0;
    if (!reply || reply->type == REDIS_REPLY_ERROR) {
        fail_log(c, reply);
    } else if (j->op == OP_TOUCH) {
        st = reply->type == REDIS_REPLY_INTEGER && reply->integer == 1 ? 0 : LOOM_ENOTFOUND;
    } else if (j->op == OP_DESTROY) {
        st = 0;
    } else if (reply->type == REDIS_REPLY_ARRAY && reply->elements == 3 &&
               reply->element[0]->type == REDIS_REPLY_INTEGER &&
               reply->element[2]->type == REDIS_REPLY_INTEGER) {
        int ok = reply->element[0]->integer == 1;
        ver = (uint64_t)reply->element[2]->integer;
        if (reply->element[1]->type == REDIS_REPLY_STRING) {
            data = reply->element[1]->str;
            len = reply->element[1]->len;
        }
        if (j->op == OP_LOAD)
            st = data ? 0 : LOOM_ENOTFOUND;
        else
            st = ok ? 0 : LOOM_ECONFLICT;
        if (st == 0 && j->op != OP_LOAD) data = NULL, len = 0;
    } else {
        fail_log(c, NULL);
    }
    loom_session_done_fn done = j->done;
    loom_session_vdone_fn vdone = j->vdone;
    void *ctx = j->ctx;
    free(j);
    if (vdone)
        vdone(ctx, st, data, len, data || st == 0 ? ver : 0);
    else
        done(ctx, st, NULL, 0);
}

static job *new_job(int op, loom_session_done_fn done, loom_session_vdone_fn vdone, void *ctx)
{
    job *j = malloc(sizeof *j);
    if (!j) return NULL;
    j->op = op;
    j->done = done;
    j->vdone = vdone;
    j->ctx = ctx;
    return j;
}

static long long ttl_of(int64_t expires)
{
    long long t = (long long)(expires - (int64_t)time(NULL));
    return t < 1 ? 1 : t;
}

/* Runs the script; data may be NULL (get, del). */
static int32_t eval(int op, const char *id, uint64_t version, const char *data, size_t len,
                    long long ttl, loom_session_vdone_fn fn, void *ctx)
{
    redisAsyncContext *c = conn();
    if (!c) return LOOM_EUNAVAIL;
    job *j = new_job(op, NULL, fn, ctx);
    if (!j) return LOOM_ENOMEM;
    static const char *const ops[] = {
        [OP_LOAD] = "get", [OP_SAVE_IF] = "set", [OP_DESTROY_IF] = "del"};
    int rc = redisAsyncCommand(c, on_reply, j, "EVAL %s 1 %s%s %s %llu %b %lld", script, prefix, id,
                               ops[op], (unsigned long long)version, data ? data : "",
                               data ? len : (size_t)0, ttl);
    if (rc != REDIS_OK) {
        free(j);
        return LOOM_EUNAVAIL;
    }
    return 0;
}

static int32_t st_load(void *ud, const char *id, loom_session_vdone_fn done, void *ctx)
{
    (void)ud;
    return eval(OP_LOAD, id, 0, NULL, 0, 0, done, ctx);
}

static int32_t st_save_if(void *ud, const char *id, const char *data, size_t len, int64_t expires,
                          uint64_t version, loom_session_vdone_fn done, void *ctx)
{
    (void)ud;
    return eval(OP_SAVE_IF, id, version, data, len, ttl_of(expires), done, ctx);
}

static int32_t st_destroy_if(void *ud, const char *id, uint64_t version, loom_session_vdone_fn done,
                             void *ctx)
{
    (void)ud;
    return eval(OP_DESTROY_IF, id, version, NULL, 0, 0, done, ctx);
}

static int32_t plain(int op, const char *fmt, const char *id, long long ttl,
                     loom_session_done_fn done, void *ctx)
{
    redisAsyncContext *c = conn();
    if (!c) return LOOM_EUNAVAIL;
    job *j = new_job(op, done, NULL, ctx);
    if (!j) return LOOM_ENOMEM;
    int rc = op == OP_TOUCH ? redisAsyncCommand(c, on_reply, j, fmt, prefix, id, ttl)
                            : redisAsyncCommand(c, on_reply, j, fmt, prefix, id);
    if (rc != REDIS_OK) {
        free(j);
        return LOOM_EUNAVAIL;
    }
    return 0;
}

static int32_t st_destroy(void *ud, const char *id, loom_session_done_fn done, void *ctx)
{
    (void)ud;
    return plain(OP_DESTROY, "DEL %s%s", id, 0, done, ctx);
}

static int32_t st_touch(void *ud, const char *id, int64_t expires, loom_session_done_fn done,
                        void *ctx)
{
    (void)ud;
    return plain(OP_TOUCH, "EXPIRE %s%s %lld", id, ttl_of(expires), done, ctx);
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
    st.load_versioned = st_load;
    st.save_if = st_save_if;
    st.destroy_if = st_destroy_if;
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
