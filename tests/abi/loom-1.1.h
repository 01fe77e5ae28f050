/*
 * loom.h -- the loom plugin ABI, version 1. This header is the specification.
 *
 * A plugin is a shared object that exports exactly one symbol,
 * `loom_plugin_entry`, written by LOOM_PLUGIN(...). The server calls it,
 * checks the descriptor it returns (magic, ABI major and minor, size), then
 * calls the plugin's `init` with a table of host functions. Everything a
 * plugin does -- register routes and middleware, read requests, answer them,
 * start timers and thread-pool work -- goes through that table, wrapped here
 * in `static inline` functions so that plugin code reads as a plain API:
 *
 *     static int32_t hello(loom_req *req, void *ud)
 *     {
 *         return loom_resp_text(req, 200, "Hello, World!");
 *     }
 *     static int32_t init(loom_plugin *self, const char *config, size_t len)
 *     {
 *         return loom_route_add(self, "GET", "/", hello, NULL);
 *     }
 *     LOOM_PLUGIN("hello", "1.0.0", init, NULL);
 *
 * Rules of the ABI (see sdk/ABI.md for the promise and the symbol register):
 *  - Plugins link against nothing of loom. Only opaque handles, fixed-width
 *    integers, size_t lengths and (pointer, length) strings cross; no libuv,
 *    llhttp or jansson type does.
 *  - The host table only grows at the end. A plugin built against ABI 1.N
 *    loads into any host 1.M with M >= N. Structs passed to the host begin
 *    with their size; the host reads what the size covers and zero-fills the
 *    rest.
 *  - Functions return 0 (LOOM_OK) or a negative LOOM_E* code, unless their
 *    comment says otherwise. A call that fails never fires its callback.
 *  - Everything runs on the worker's loop thread, except the `run` function
 *    of loom_work_queue, which runs on the thread pool and must not call any
 *    loom function.
 *  - Strings the host returns are NUL-terminated and owned by the host; their
 *    lifetime is stated per function (usually: until the response is done).
 */
#ifndef LOOM_LOOM_H
#define LOOM_LOOM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define LOOM_ABI_MAJOR 1
#define LOOM_ABI_MINOR 1
#define LOOM_PLUGIN_MAGIC 0x4d4f4f4cu /* "LOOM" little-endian */

/* ---- results ---------------------------------------------------------- */

#define LOOM_OK 0
#define LOOM_EINVAL (-1)    /* an argument is invalid */
#define LOOM_ENOMEM (-2)    /* out of memory */
#define LOOM_ESTATE (-3)    /* not allowed now (e.g. headers already sent) */
#define LOOM_EGONE (-4)     /* the request was aborted: its client left */
#define LOOM_ENOTFOUND (-5) /* no such item */
#define LOOM_ELIMIT (-6)    /* a configured limit was reached */
#define LOOM_EBADREQ (-7)   /* the request is malformed; a 400 was already sent */
#define LOOM_ENOSYS (-8)    /* the host does not have this function */

/* What a handler or middleware returns. */
#define LOOM_DONE 0    /* answered (or handed the request on) */
#define LOOM_PENDING 1 /* will answer later, from a callback, with loom_respond */
#define LOOM_NEXT 2    /* middleware only: run the rest of the chain */

/* Log levels for loom_log. */
#define LOOM_LOG_ERROR 0
#define LOOM_LOG_WARN 1
#define LOOM_LOG_INFO 2
#define LOOM_LOG_DEBUG 3

/* Middleware order classes (see loom_middleware_def). */
#define LOOM_ORDER_FIRST 0
#define LOOM_ORDER_MIDDLE 1
#define LOOM_ORDER_LAST 2

/* Plugin flags (descriptor). */
#define LOOM_PLUGIN_RELOADABLE 1u /* may be replaced while the server runs */

/* JSON value types (loom_json_type). */
#define LOOM_JSON_INVALID 0
#define LOOM_JSON_OBJECT 1
#define LOOM_JSON_ARRAY 2
#define LOOM_JSON_STRING 3
#define LOOM_JSON_INTEGER 4
#define LOOM_JSON_REAL 5
#define LOOM_JSON_TRUE 6
#define LOOM_JSON_FALSE 7
#define LOOM_JSON_NULL 8

/* ---- opaque handles ---------------------------------------------------- */

typedef struct loom_plugin loom_plugin; /* one loaded instance of a plugin */
typedef struct loom_req loom_req;       /* a request and its response */
typedef struct loom_json loom_json;     /* a read-only JSON value */
typedef struct loom_timer loom_timer;   /* a host-owned timer */
typedef struct loom_fetch loom_fetch;   /* (1.1) an HTTP client request started by a plugin */
typedef struct loom_fetch_result loom_fetch_result; /* (1.1) its outcome, during the callback */
typedef struct loom_io loom_io; /* (1.1) a host-owned watcher on a plugin's file descriptor */

/* ---- callbacks ---------------------------------------------------------- */

/* A route handler. Returns LOOM_DONE after answering (loom_resp_text, ...,
 * or loom_respond), LOOM_PENDING when it will answer later, or a negative
 * code: the request then gets a 500 and is logged. */
typedef int32_t (*loom_handler_fn)(loom_req *req, void *ud);

/* Middleware, request phase. Returns LOOM_NEXT to go on down the chain,
 * LOOM_DONE after answering early (e.g. a 401), LOOM_PENDING to suspend the
 * chain (resume it later with loom_next, or answer), or a negative code (a
 * 500, the chain unwinds). */
typedef int32_t (*loom_mw_request_fn)(loom_req *req, void *ud);
/* Middleware, response phase: runs in reverse order once the response is
 * ready and before it is sent; may change status, headers and body. Runs only
 * for middleware whose request phase ran. */
typedef void (*loom_mw_response_fn)(loom_req *req, void *ud);

/* Fires once when the client of a pending request goes away. The request
 * stays valid until the plugin answers it (which is then a no-op). */
typedef void (*loom_abort_fn)(loom_req *req, void *ud);
typedef void (*loom_timer_fn)(loom_timer *t, void *ud);
/* Thread-pool work: `run` on a pool thread (no loom calls allowed), then
 * `done` on the loop thread. `cancelled` is 1 when the plugin is being
 * unloaded and the work result must be dropped; fini runs only after every
 * job's `done`. */
typedef void (*loom_work_run_fn)(void *ud);
typedef void (*loom_work_done_fn)(void *ud, int32_t cancelled);

/* (1.1) Called once when a fetch completes (successfully or not), on the
 * loop thread. `res` is valid during the call only. Not called after
 * loom_fetch_cancel, nor after the fetch was cancelled by the host (its
 * request answered or aborted, or the plugin unloaded). */
typedef void (*loom_fetch_fn)(const loom_fetch_result *res, void *ud);

/* (1.1) A session store operation finished. status: 0, LOOM_ENOTFOUND (load:
 * no such session, or it expired) or another negative code. For load, data
 * is the stored JSON text (valid during the call only). */
typedef void (*loom_session_done_fn)(void *ctx, int32_t status, const char *data, size_t len);
/* (1.1) The session of a request is loaded (status 0) or could not be
 * (negative; the request then has a fresh empty session anyway). */
typedef void (*loom_session_fn)(loom_req *req, int32_t status, void *ud);

/* (1.1) A watched descriptor is ready: events is LOOM_IO_READ and/or
 * LOOM_IO_WRITE, or a negative code when polling failed. */
typedef void (*loom_io_fn)(loom_io *io, int32_t events, void *ud);
#define LOOM_IO_READ 1
#define LOOM_IO_WRITE 2

/* ---- size-prefixed structs ---------------------------------------------- */

/* A middleware registration. Set size = sizeof(loom_middleware_def). */
typedef struct loom_middleware_def {
    uint32_t size;
    uint32_t order;                  /* LOOM_ORDER_FIRST, _MIDDLE or _LAST */
    const char *name;                /* unique among middleware; copied */
    const char *before;              /* comma-separated names this must run before, or NULL */
    const char *after;               /* comma-separated names this must run after, or NULL */
    loom_mw_request_fn on_request;   /* may be NULL */
    loom_mw_response_fn on_response; /* may be NULL */
    void *ud;
} loom_middleware_def;

/* A Set-Cookie. Set size = sizeof(loom_cookie); zero fields are left out. */
typedef struct loom_cookie {
    uint32_t size;
    uint32_t flags; /* LOOM_COOKIE_* */
    const char *name;
    const char *value;
    const char *path; /* NULL = "/" */
    const char *domain;
    const char *same_site; /* "Lax", "Strict", "None" or NULL */
    int64_t max_age;       /* seconds; used when LOOM_COOKIE_MAX_AGE is set */
    int64_t expires;       /* Unix time; used when LOOM_COOKIE_EXPIRES is set */
} loom_cookie;
#define LOOM_COOKIE_SECURE 1u
#define LOOM_COOKIE_HTTP_ONLY 2u
#define LOOM_COOKIE_MAX_AGE 4u
#define LOOM_COOKIE_EXPIRES 8u
#define LOOM_COOKIE_PARTITIONED 16u

/* (1.1) A session store, registered by a plugin with loom_session_store_
 * register. Set size = sizeof(loom_session_store). Each operation returns 0
 * and then calls done exactly once on the loop thread (possibly before it
 * returns), or returns a negative code and never calls done. `id` is a
 * NUL-terminated string of [0-9a-f]; `expires` is the Unix time after which
 * the store may drop the session (and must not return it from load). A store
 * that is being unloaded still calls done for what it accepted (with a
 * negative status when the work was dropped). */
typedef struct loom_session_store {
    uint32_t size;
    uint32_t reserved;
    const char *name; /* e.g. "sqlite"; copied */
    int32_t (*load)(void *ud, const char *id, loom_session_done_fn done, void *ctx);
    int32_t (*save)(void *ud, const char *id, const char *data, size_t len, int64_t expires,
                    loom_session_done_fn done, void *ctx);
    int32_t (*destroy)(void *ud, const char *id, loom_session_done_fn done, void *ctx);
    int32_t (*touch)(void *ud, const char *id, int64_t expires, loom_session_done_fn done,
                     void *ctx);
    void *ud;
} loom_session_store;

/* (1.1) An HTTP client request. Set size = sizeof(loom_fetch_opts). Every
 * pointer needs to stay valid only during loom_fetch (it is copied). */
typedef struct loom_fetch_opts {
    uint32_t size;
    uint32_t flags;             /* LOOM_FETCH_* */
    const char *method;         /* NULL = "GET" */
    const char *url;            /* absolute http:// URL */
    const char *const *headers; /* name, value, name, value, ... */
    uint32_t nheaders;          /* number of pairs */
    uint32_t reserved;
    const void *body;
    size_t body_len;
    const char *content_type;    /* for body (default application/octet-stream) */
    uint64_t timeout_ms;         /* whole request; 0 = 300 s */
    uint64_t connect_timeout_ms; /* 0 = 30 s */
    uint64_t read_timeout_ms;    /* between reads; 0 = none */
} loom_fetch_opts;
#define LOOM_FETCH_RAW 1u              /* no redirects, no gzip/deflate decoding (proxies) */
#define LOOM_FETCH_RAISE_FOR_STATUS 2u /* status >= 400 is an error (LOOM_FETCH_E_STATUS) */

/* (1.1) What went wrong with a fetch (loom_fetch_error), in the spirit of
 * aiohttp's exceptions; loom_fetch_message says it in a line naming the URL. */
#define LOOM_FETCH_OK 0
#define LOOM_FETCH_E_INVALID_URL (-1)
#define LOOM_FETCH_E_DNS (-2)
#define LOOM_FETCH_E_CONNECTION_REFUSED (-3)
#define LOOM_FETCH_E_CONNECT (-4)
#define LOOM_FETCH_E_CONNECT_TIMEOUT (-5)
#define LOOM_FETCH_E_READ_TIMEOUT (-6)
#define LOOM_FETCH_E_TOTAL_TIMEOUT (-7)
#define LOOM_FETCH_E_SERVER_DISCONNECTED (-8)
#define LOOM_FETCH_E_PAYLOAD (-9)
#define LOOM_FETCH_E_TOO_MANY_REDIRECTS (-10)
#define LOOM_FETCH_E_STATUS (-11)
#define LOOM_FETCH_E_CANCELLED (-12)
#define LOOM_FETCH_E_BAD_RESPONSE (-13)
#define LOOM_FETCH_E_TOO_LARGE (-14)
#define LOOM_FETCH_E_NOMEM (-15)

/* ---- the host function table -------------------------------------------- */

/* Entries are only ever appended; `size` tells how many this host has. Use the
 * inline wrappers below, which check LOOM_HAS(). */
typedef struct loom_host_api {
    uint32_t size;
    uint16_t abi_major;
    uint16_t abi_minor;

    /* 1.0: plugin */
    void (*log)(loom_plugin *self, int32_t level, const char *msg);
    const loom_json *(*config)(loom_plugin *self);
    int32_t (*route_add)(loom_plugin *self, const char *method, const char *pattern,
                         loom_handler_fn fn, void *ud, const char *name);
    int32_t (*middleware_add)(loom_plugin *self, const loom_middleware_def *def);
    int32_t (*state_put)(loom_plugin *self, const void *data, size_t len);
    const void *(*state_get)(loom_plugin *self, size_t *len);
    const char *(*plugin_name)(loom_plugin *self);

    /* 1.0: request */
    const char *(*req_method)(loom_req *req);
    const char *(*req_path)(loom_req *req, size_t *len);
    const char *(*req_raw_path)(loom_req *req, size_t *len);
    const char *(*req_query_string)(loom_req *req, size_t *len);
    const char *(*req_query)(loom_req *req, const char *name, uint32_t idx, size_t *len);
    const char *(*req_header)(loom_req *req, const char *name, uint32_t idx, size_t *len);
    uint32_t (*req_header_count)(loom_req *req);
    int32_t (*req_header_at)(loom_req *req, uint32_t i, const char **name, const char **value,
                             size_t *vlen);
    const char *(*req_cookie)(loom_req *req, const char *name, size_t *len);
    const char *(*req_match)(loom_req *req, const char *name, size_t *len);
    const char *(*req_remote)(loom_req *req);
    const void *(*req_body)(loom_req *req, size_t *len);
    int32_t (*req_json)(loom_req *req, const loom_json **out);
    const char *(*req_form)(loom_req *req, const char *name, uint32_t idx, size_t *len);
    int32_t (*req_form_file)(loom_req *req, const char *name, const char **filename,
                             const char **content_type, const void **data, size_t *len);
    void *(*req_alloc)(loom_req *req, size_t size);
    int32_t (*req_on_abort)(loom_req *req, loom_abort_fn fn, void *ud);
    uint64_t (*req_start_ns)(loom_req *req);
    const char *(*req_http_version)(loom_req *req);
    int32_t (*req_set_path)(loom_req *req, const char *path);
    int32_t (*req_header_set)(loom_req *req, const char *name, const char *value);
    int32_t (*url_for)(loom_req *req, const char *route_name, const char *const *params,
                       uint32_t nparams, char *out, size_t outlen);

    /* 1.0: response */
    int32_t (*resp_status)(loom_req *req, int32_t status);
    int32_t (*resp_get_status)(loom_req *req);
    int32_t (*resp_header_add)(loom_req *req, const char *name, const char *value);
    int32_t (*resp_header_set)(loom_req *req, const char *name, const char *value);
    const char *(*resp_header_get)(loom_req *req, const char *name);
    int32_t (*resp_body)(loom_req *req, const void *data, size_t len);
    const void *(*resp_get_body)(loom_req *req, size_t *len);
    int32_t (*resp_set_cookie)(loom_req *req, const loom_cookie *cookie);
    int32_t (*respond)(loom_req *req);
    int32_t (*resp_error)(loom_req *req, int32_t status, const char *message);
    int32_t (*resp_stream_start)(loom_req *req);
    int32_t (*resp_stream_write)(loom_req *req, const void *data, size_t len);
    int32_t (*resp_stream_end)(loom_req *req);
    int32_t (*next)(loom_req *req);

    /* 1.0: async */
    loom_timer *(*timer_start)(loom_plugin *self, uint64_t ms, uint64_t repeat_ms, loom_timer_fn fn,
                               void *ud);
    void (*timer_stop)(loom_timer *t);
    int32_t (*work_queue)(loom_plugin *self, loom_work_run_fn run, loom_work_done_fn done,
                          void *ud);
    uint64_t (*now_ns)(void);

    /* 1.0: JSON (read-only values owned by the host) */
    int32_t (*json_parse)(loom_req *req, const char *text, size_t len, const loom_json **out,
                          char *err, size_t errlen);
    int32_t (*json_type)(const loom_json *j);
    const loom_json *(*json_get)(const loom_json *j, const char *key);
    const loom_json *(*json_at)(const loom_json *j, size_t idx);
    size_t (*json_size)(const loom_json *j);
    const char *(*json_string)(const loom_json *j, size_t *len);
    int64_t (*json_integer)(const loom_json *j);
    double (*json_real)(const loom_json *j);
    const char *(*json_key_at)(const loom_json *j, size_t idx, const loom_json **value);
    const char *(*json_dump)(loom_req *req, const loom_json *j, size_t *len);

    /* 1.1: client */
    loom_fetch *(*fetch)(loom_plugin *self, loom_req *req, const loom_fetch_opts *opts,
                         loom_fetch_fn fn, void *ud);
    void (*fetch_cancel)(loom_fetch *f);
    int32_t (*fetch_error)(const loom_fetch_result *r);
    const char *(*fetch_message)(const loom_fetch_result *r);
    int32_t (*fetch_status)(const loom_fetch_result *r);
    const char *(*fetch_header)(const loom_fetch_result *r, const char *name);
    uint32_t (*fetch_header_count)(const loom_fetch_result *r);
    int32_t (*fetch_header_at)(const loom_fetch_result *r, uint32_t i, const char **name,
                               const char **value);
    const void *(*fetch_body)(const loom_fetch_result *r, size_t *len);

    /* 1.1: file bodies */
    int32_t (*resp_file)(loom_req *req, int32_t fd, uint64_t offset, uint64_t len);

    /* 1.1: sessions */
    int32_t (*session_store_register)(loom_plugin *self, const loom_session_store *store);
    int32_t (*session_load)(loom_req *req, loom_session_fn fn, void *ud);
    const loom_json *(*session_get)(loom_req *req);
    int32_t (*session_set)(loom_req *req, const char *key, const char *json, size_t len);
    int32_t (*session_regenerate)(loom_req *req);
    int32_t (*session_invalidate)(loom_req *req);
    int32_t (*session_is_new)(loom_req *req);

    /* 1.1: descriptor watchers */
    loom_io *(*io_start)(loom_plugin *self, int32_t fd, int32_t events, loom_io_fn fn, void *ud);
    int32_t (*io_update)(loom_io *io, int32_t events);
    void (*io_stop)(loom_io *io);
} loom_host_api;

/* The plugin's descriptor, returned by loom_plugin_entry(). */
typedef struct loom_plugin_desc {
    uint32_t magic;     /* LOOM_PLUGIN_MAGIC */
    uint16_t abi_major; /* LOOM_ABI_MAJOR the plugin was built with */
    uint16_t abi_minor; /* LOOM_ABI_MINOR the plugin was built with */
    uint32_t size;      /* sizeof(loom_plugin_desc) */
    uint32_t flags;     /* LOOM_PLUGIN_* */
    const char *name;   /* [a-z0-9_-]+, unique in a server */
    const char *version;
    /* Registers routes and middleware. `config` is the plugin's JSON object
     * from the server config ("{}" when none), valid during init. Returns 0,
     * or a negative code: the plugin is not loaded (its registrations are
     * dropped). Called by the host with the table already bound. */
    int32_t (*init)(loom_plugin *self, const char *config, size_t config_len);
    /* Called once before the plugin is unloaded, after its last request and
     * after the `done` of its last thread-pool job (so no `run` is still
     * using what fini frees). May be NULL. */
    void (*fini)(loom_plugin *self);
    /* Set by LOOM_PLUGIN: stores the host table for the inline wrappers. */
    void (*bind)(const loom_host_api *api);
} loom_plugin_desc;

/* The table this plugin was given; set by the host before init. */
extern const loom_host_api *loom__host_api __attribute__((visibility("hidden")));

#define LOOM_HAS(fn)                                                                               \
    (loom__host_api && offsetof(loom_host_api, fn) + sizeof(void *) <= loom__host_api->size)

/* Writes the one exported symbol. `init` and `fini` are the plugin's own. */
#define LOOM_PLUGIN_FLAGS(NAME, VERSION, FLAGS, INIT, FINI)                                        \
    const loom_host_api *loom__host_api __attribute__((visibility("hidden")));                     \
    static void loom__bind(const loom_host_api *api)                                               \
    {                                                                                              \
        loom__host_api = api;                                                                      \
    }                                                                                              \
    static const loom_plugin_desc loom__desc = {LOOM_PLUGIN_MAGIC,                                 \
                                                LOOM_ABI_MAJOR,                                    \
                                                LOOM_ABI_MINOR,                                    \
                                                sizeof(loom_plugin_desc),                          \
                                                (FLAGS),                                           \
                                                (NAME),                                            \
                                                (VERSION),                                         \
                                                (INIT),                                            \
                                                (FINI),                                            \
                                                loom__bind};                                       \
    __attribute__((visibility("default"))) const loom_plugin_desc *loom_plugin_entry(void);        \
    __attribute__((visibility("default"))) const loom_plugin_desc *loom_plugin_entry(void)         \
    {                                                                                              \
        return &loom__desc;                                                                        \
    }
#define LOOM_PLUGIN(NAME, VERSION, INIT, FINI)                                                     \
    LOOM_PLUGIN_FLAGS(NAME, VERSION, LOOM_PLUGIN_RELOADABLE, INIT, FINI)

/* ---- the API, as plugins call it ---------------------------------------- */

/* Writes `msg` to the server log, prefixed with the plugin's name. */
static inline void loom_log(loom_plugin *self, int32_t level, const char *msg)
{
    loom__host_api->log(self, level, msg);
}
/* The plugin's config object, parsed; owned by the host, valid until fini. */
static inline const loom_json *loom_config(loom_plugin *self)
{
    return loom__host_api->config(self);
}
/* The plugin's name as loaded. */
static inline const char *loom_plugin_name(loom_plugin *self)
{
    return loom__host_api->plugin_name(self);
}

/* Registers a route; only during init. `method` is "GET", "HEAD", "POST",
 * "PUT", "PATCH", "DELETE", "OPTIONS" or "*" (any). A GET route also answers
 * HEAD. `pattern` is a path with `{name}` (one segment) and `{name:regex}`
 * variables (POSIX ERE; \d \w \s are understood; a regex variable at the end
 * may span slashes, so "/{tail:.*}" catches everything). Static segments win
 * over variables. Returns 0, LOOM_EINVAL (bad pattern, method or a duplicate
 * route), LOOM_ESTATE (not in init). */
static inline int32_t loom_route_add(loom_plugin *self, const char *method, const char *pattern,
                                     loom_handler_fn fn, void *ud)
{
    return loom__host_api->route_add(self, method, pattern, fn, ud, NULL);
}
/* Like loom_route_add, and names the route for loom_url_for. */
static inline int32_t loom_route_add_named(loom_plugin *self, const char *method,
                                           const char *pattern, loom_handler_fn fn, void *ud,
                                           const char *name)
{
    return loom__host_api->route_add(self, method, pattern, fn, ud, name);
}
/* Registers middleware; only during init. The chain is ordered by class
 * (first, middle, last), then by the before/after constraints, then by plugin
 * load order. A cycle or an unknown name fails the load with the names in
 * the message. Returns 0 or LOOM_EINVAL / LOOM_ESTATE. */
static inline int32_t loom_middleware_add(loom_plugin *self, const loom_middleware_def *def)
{
    return loom__host_api->middleware_add(self, def);
}
/* State handoff across a hot reload. loom_state_put stores a blob (copied)
 * under the plugin's name, at any time -- when the state changes, or in fini;
 * the host keeps the latest one for the life of the server. A new version of
 * the plugin reads it in init with loom_state_get (NULL when none). The old
 * version may still be draining requests when the new one loads, so state
 * that keeps changing should be put as it changes. */
static inline int32_t loom_state_put(loom_plugin *self, const void *data, size_t len)
{
    return loom__host_api->state_put(self, data, len);
}
static inline const void *loom_state_get(loom_plugin *self, size_t *len)
{
    return loom__host_api->state_get(self, len);
}

/* The request method ("GET", ...). Valid until the response is done. */
static inline const char *loom_req_method(loom_req *req)
{
    return loom__host_api->req_method(req);
}
/* The path, percent-decoded (except %2F, kept as is), without the query. */
static inline const char *loom_req_path(loom_req *req, size_t *len)
{
    return loom__host_api->req_path(req, len);
}
/* The path as received. */
static inline const char *loom_req_raw_path(loom_req *req, size_t *len)
{
    return loom__host_api->req_raw_path(req, len);
}
/* The raw query string without '?', or NULL. */
static inline const char *loom_req_query_string(loom_req *req, size_t *len)
{
    return loom__host_api->req_query_string(req, len);
}
/* The idx-th value of query argument `name`, decoded; NULL when absent. */
static inline const char *loom_req_query(loom_req *req, const char *name, uint32_t idx, size_t *len)
{
    return loom__host_api->req_query(req, name, idx, len);
}
/* The idx-th value of header `name` (case-insensitive); NULL when absent. */
static inline const char *loom_req_header(loom_req *req, const char *name, size_t *len)
{
    return loom__host_api->req_header(req, name, 0, len);
}
static inline const char *loom_req_header_n(loom_req *req, const char *name, uint32_t idx,
                                            size_t *len)
{
    return loom__host_api->req_header(req, name, idx, len);
}
static inline uint32_t loom_req_header_count(loom_req *req)
{
    return loom__host_api->req_header_count(req);
}
/* The i-th header as received. Returns 0 or LOOM_ENOTFOUND. */
static inline int32_t loom_req_header_at(loom_req *req, uint32_t i, const char **name,
                                         const char **value, size_t *vlen)
{
    return loom__host_api->req_header_at(req, i, name, value, vlen);
}
/* The value of cookie `name` from the Cookie header; NULL when absent. */
static inline const char *loom_req_cookie(loom_req *req, const char *name, size_t *len)
{
    return loom__host_api->req_cookie(req, name, len);
}
/* The value of route variable `name`, decoded; NULL when absent. */
static inline const char *loom_req_match(loom_req *req, const char *name, size_t *len)
{
    return loom__host_api->req_match(req, name, len);
}
/* The client's address ("127.0.0.1", "::1"). */
static inline const char *loom_req_remote(loom_req *req)
{
    return loom__host_api->req_remote(req);
}
/* The whole body (already bounded by client_max_size); len 0 when none. */
static inline const void *loom_req_body(loom_req *req, size_t *len)
{
    return loom__host_api->req_body(req, len);
}
/* Parses the body as JSON. Returns 0 with *out set, or LOOM_EBADREQ after
 * answering 400 with the reason (the handler then returns LOOM_DONE). */
static inline int32_t loom_req_json(loom_req *req, const loom_json **out)
{
    return loom__host_api->req_json(req, out);
}
/* The idx-th value of form field `name`, from an application/x-www-form-
 * urlencoded or multipart/form-data body (text fields). NULL when absent. */
static inline const char *loom_req_form(loom_req *req, const char *name, uint32_t idx, size_t *len)
{
    return loom__host_api->req_form(req, name, idx, len);
}
/* A multipart file field. Returns 0 or LOOM_ENOTFOUND. */
static inline int32_t loom_req_form_file(loom_req *req, const char *name, const char **filename,
                                         const char **content_type, const void **data, size_t *len)
{
    return loom__host_api->req_form_file(req, name, filename, content_type, data, len);
}
/* Memory that lives until the response is done (16-byte aligned). */
static inline void *loom_req_alloc(loom_req *req, size_t size)
{
    return loom__host_api->req_alloc(req, size);
}
/* Calls fn once if the client leaves before the response is done. */
static inline int32_t loom_req_on_abort(loom_req *req, loom_abort_fn fn, void *ud)
{
    return loom__host_api->req_on_abort(req, fn, ud);
}
/* Monotonic time (ns) at which the request's first byte arrived. */
static inline uint64_t loom_req_start_ns(loom_req *req)
{
    return loom__host_api->req_start_ns(req);
}
/* "HTTP/1.1" or "HTTP/1.0". */
static inline const char *loom_req_http_version(loom_req *req)
{
    return loom__host_api->req_http_version(req);
}
/* Middleware: rewrites the (decoded) path before routing. Copied. */
static inline int32_t loom_req_set_path(loom_req *req, const char *path)
{
    return loom__host_api->req_set_path(req, path);
}
/* Middleware: replaces (value NULL: removes) a request header. Copied. */
static inline int32_t loom_req_header_set(loom_req *req, const char *name, const char *value)
{
    return loom__host_api->req_header_set(req, name, value);
}
/* Builds the URL of named route `route_name`, filling its variables from
 * params (name, value, name, value, ...; nparams counts pairs), values
 * percent-encoded. Returns 0, LOOM_ENOTFOUND (no such route or variable),
 * LOOM_EINVAL (a value does not match its regex) or LOOM_ELIMIT (outlen). */
static inline int32_t loom_url_for(loom_req *req, const char *route_name, const char *const *params,
                                   uint32_t nparams, char *out, size_t outlen)
{
    return loom__host_api->url_for(req, route_name, params, nparams, out, outlen);
}

/* Response. Setters fail with LOOM_ESTATE once the head is sent. */
static inline int32_t loom_resp_status(loom_req *req, int32_t status)
{
    return loom__host_api->resp_status(req, status);
}
static inline int32_t loom_resp_get_status(loom_req *req)
{
    return loom__host_api->resp_get_status(req);
}
/* Adds a header (copied). LOOM_EINVAL for CR/LF/NUL in it or a framing
 * header (Content-Length, Transfer-Encoding, Connection), which loom sets. */
static inline int32_t loom_resp_header_add(loom_req *req, const char *name, const char *value)
{
    return loom__host_api->resp_header_add(req, name, value);
}
/* Replaces every header `name` (value NULL: removes them). */
static inline int32_t loom_resp_header_set(loom_req *req, const char *name, const char *value)
{
    return loom__host_api->resp_header_set(req, name, value);
}
static inline const char *loom_resp_header_get(loom_req *req, const char *name)
{
    return loom__host_api->resp_header_get(req, name);
}
/* Sets the body (copied). */
static inline int32_t loom_resp_body(loom_req *req, const void *data, size_t len)
{
    return loom__host_api->resp_body(req, data, len);
}
static inline const void *loom_resp_get_body(loom_req *req, size_t *len)
{
    return loom__host_api->resp_get_body(req, len);
}
/* Adds a Set-Cookie header built from `cookie` (values checked). */
static inline int32_t loom_resp_set_cookie(loom_req *req, const loom_cookie *cookie)
{
    return loom__host_api->resp_set_cookie(req, cookie);
}
/* Finishes the response: the response phase of the middleware runs, then it
 * is sent. After it, `req` must not be used. On an aborted request it just
 * releases the request and returns LOOM_EGONE. */
static inline int32_t loom_respond(loom_req *req)
{
    return loom__host_api->respond(req);
}
/* Answers an HTTP error: JSON {"error": {"status": N, "message": "..."}} when
 * the client accepts application/json, else text. Then loom_respond. */
static inline int32_t loom_resp_error(loom_req *req, int32_t status, const char *message)
{
    return loom__host_api->resp_error(req, status, message);
}
/* Streaming: sends the head (chunked on HTTP/1.1), then pieces, then the end
 * (which also releases the request, like loom_respond). */
static inline int32_t loom_resp_stream_start(loom_req *req)
{
    return loom__host_api->resp_stream_start(req);
}
static inline int32_t loom_resp_stream_write(loom_req *req, const void *data, size_t len)
{
    return loom__host_api->resp_stream_write(req, data, len);
}
static inline int32_t loom_resp_stream_end(loom_req *req)
{
    return loom__host_api->resp_stream_end(req);
}
/* Middleware that returned LOOM_PENDING resumes the chain with this. */
static inline int32_t loom_next(loom_req *req)
{
    return loom__host_api->next(req);
}

/* Sets status, Content-Type and body, then responds. Return it from a
 * handler: it gives LOOM_DONE (or a negative code). */
static inline int32_t loom_resp_bytes(loom_req *req, int32_t status, const char *content_type,
                                      const void *data, size_t len)
{
    int32_t rc = loom_resp_status(req, status);
    if (rc == 0 && content_type) rc = loom_resp_header_set(req, "Content-Type", content_type);
    if (rc == 0) rc = loom_resp_body(req, data, len);
    if (rc == 0) rc = loom_respond(req);
    return rc == LOOM_EGONE ? LOOM_DONE : rc;
}
static inline int32_t loom_resp_text(loom_req *req, int32_t status, const char *text)
{
    size_t n = 0;
    while (text[n]) n++;
    return loom_resp_bytes(req, status, "text/plain; charset=utf-8", text, n);
}
static inline int32_t loom_resp_json(loom_req *req, int32_t status, const char *json, size_t len)
{
    return loom_resp_bytes(req, status, "application/json", json, len);
}

/* A timer owned by the host for this plugin instance: cancelled when the
 * instance is unloaded. repeat_ms 0 = once (the handle is freed after the
 * callback). Returns NULL on error. */
static inline loom_timer *loom_timer_start(loom_plugin *self, uint64_t ms, uint64_t repeat_ms,
                                           loom_timer_fn fn, void *ud)
{
    return loom__host_api->timer_start(self, ms, repeat_ms, fn, ud);
}
/* Stops and frees a timer; its callback will not run again. */
static inline void loom_timer_stop(loom_timer *t)
{
    loom__host_api->timer_stop(t);
}
/* Runs `run` on the thread pool, then `done` on the loop thread. */
static inline int32_t loom_work_queue(loom_plugin *self, loom_work_run_fn run,
                                      loom_work_done_fn done, void *ud)
{
    return loom__host_api->work_queue(self, run, done, ud);
}
/* Monotonic time in nanoseconds. */
static inline uint64_t loom_now_ns(void)
{
    return loom__host_api->now_ns();
}

/* JSON: values live as long as the request they were parsed for (or, for
 * loom_config, the plugin instance). */
static inline int32_t loom_json_parse(loom_req *req, const char *text, size_t len,
                                      const loom_json **out, char *err, size_t errlen)
{
    return loom__host_api->json_parse(req, text, len, out, err, errlen);
}
static inline int32_t loom_json_type(const loom_json *j)
{
    return loom__host_api->json_type(j);
}
/* Object member (NULL when absent or not an object). */
static inline const loom_json *loom_json_get(const loom_json *j, const char *key)
{
    return loom__host_api->json_get(j, key);
}
static inline const loom_json *loom_json_at(const loom_json *j, size_t idx)
{
    return loom__host_api->json_at(j, idx);
}
/* Members of an object or elements of an array. */
static inline size_t loom_json_size(const loom_json *j)
{
    return loom__host_api->json_size(j);
}
static inline const char *loom_json_string(const loom_json *j, size_t *len)
{
    return loom__host_api->json_string(j, len);
}
static inline int64_t loom_json_integer(const loom_json *j)
{
    return loom__host_api->json_integer(j);
}
static inline double loom_json_real(const loom_json *j)
{
    return loom__host_api->json_real(j);
}
/* The idx-th key of an object (in document order) and its value. */
static inline const char *loom_json_key_at(const loom_json *j, size_t idx, const loom_json **value)
{
    return loom__host_api->json_key_at(j, idx, value);
}
/* Compact JSON text of `j`, in request memory. */
static inline const char *loom_json_dump(loom_req *req, const loom_json *j, size_t *len)
{
    return loom__host_api->json_dump(req, j, len);
}

/* ---- 1.1: the HTTP client -------------------------------------------------
 * The server's own client (connection pool, DNS cache, timeouts, redirects,
 * gzip) on the worker's loop. Each wrapper returns LOOM_ENOSYS-like results
 * (NULL / negative) on a 1.0 host: check LOOM_HAS(fetch) to support both. */

/* Starts a request. When `req` is not NULL the fetch belongs to that request:
 * it is cancelled (fn never runs) if the request is answered or its client
 * leaves first. Every fetch is cancelled when the plugin is unloaded. Returns
 * a handle valid until fn starts, or NULL (fn never runs) for bad options or
 * when out of memory. Errors of the request itself (bad URL, refused, ...)
 * arrive through fn. */
static inline loom_fetch *loom_fetch_start(loom_plugin *self, loom_req *req,
                                           const loom_fetch_opts *opts, loom_fetch_fn fn, void *ud)
{
    return LOOM_HAS(fetch) ? loom__host_api->fetch(self, req, opts, fn, ud) : NULL;
}
/* Cancels a fetch whose callback has not run; fn will not run. */
static inline void loom_fetch_cancel(loom_fetch *f)
{
    if (LOOM_HAS(fetch_cancel)) loom__host_api->fetch_cancel(f);
}
/* LOOM_FETCH_OK or a LOOM_FETCH_E_* code. */
static inline int32_t loom_fetch_error(const loom_fetch_result *r)
{
    return loom__host_api->fetch_error(r);
}
/* A one-line description of the error, naming the URL ("" on success). */
static inline const char *loom_fetch_message(const loom_fetch_result *r)
{
    return loom__host_api->fetch_message(r);
}
/* The response status (0 when no response arrived). */
static inline int32_t loom_fetch_status(const loom_fetch_result *r)
{
    return loom__host_api->fetch_status(r);
}
/* A response header (case-insensitive), or NULL. */
static inline const char *loom_fetch_header(const loom_fetch_result *r, const char *name)
{
    return loom__host_api->fetch_header(r, name);
}
static inline uint32_t loom_fetch_header_count(const loom_fetch_result *r)
{
    return loom__host_api->fetch_header_count(r);
}
static inline int32_t loom_fetch_header_at(const loom_fetch_result *r, uint32_t i,
                                           const char **name, const char **value)
{
    return loom__host_api->fetch_header_at(r, i, name, value);
}
/* The response body (decoded unless LOOM_FETCH_RAW). */
static inline const void *loom_fetch_body(const loom_fetch_result *r, size_t *len)
{
    return loom__host_api->fetch_body(r, len);
}

/* ---- 1.1: file bodies ------------------------------------------------------ */

/* Sets the body to `len` bytes of the open regular file `fd` from `offset`
 * (Content-Length is len); loom sends it with sendfile(2) after the head,
 * falling back to reads and writes, without blocking the loop on the socket.
 * The host takes ownership of fd in every case (it is closed when the
 * response is done, replaced by another body, or the call fails). Then call
 * loom_respond. LOOM_ENOSYS on a 1.0 host (fd is then still the caller's). */
static inline int32_t loom_resp_file(loom_req *req, int32_t fd, uint64_t offset, uint64_t len)
{
    return LOOM_HAS(resp_file) ? loom__host_api->resp_file(req, fd, offset, len) : LOOM_ENOSYS;
}

/* ---- 1.1: sessions ---------------------------------------------------------
 * Configured under "plugins": {"sessions": {...}} (keys, cookie, timeouts; see
 * README) and backed by a store plugin (session-memory, session-sqlite,
 * session-redis). A handler loads the session of its request, reads it as a
 * JSON object and changes it; changed sessions are saved, and the signed
 * cookie sent, when the response is done. A missing, tampered, expired or
 * unknown cookie gives a fresh empty session, never an error. With a streamed
 * response the head is out before the save, so no new cookie can follow:
 * change the session (or regenerate it) in a response that is not streamed. */

/* A store plugin offers its store (in init). Returns 0 when the host will use
 * it (the "store" key of the sessions config names it; default "sqlite"),
 * LOOM_ESTATE when sessions are not configured, LOOM_ENOTFOUND when another
 * store is chosen (the plugin should then stay idle and return 0 from init),
 * LOOM_EINVAL when the sessions config is invalid (the reason is logged;
 * fail init). */
static inline int32_t loom_session_store_register(loom_plugin *self,
                                                  const loom_session_store *store)
{
    return LOOM_HAS(session_store_register) ? loom__host_api->session_store_register(self, store)
                                            : LOOM_ENOSYS;
}
/* Loads the request's session, then calls fn (on the loop thread; at once
 * when it is already loaded). Return LOOM_PENDING from the handler and answer
 * from fn. LOOM_ESTATE when sessions are not configured (no keys or store). */
static inline int32_t loom_session_load(loom_req *req, loom_session_fn fn, void *ud)
{
    return LOOM_HAS(session_load) ? loom__host_api->session_load(req, fn, ud) : LOOM_ENOSYS;
}
/* The session data, a JSON object (never NULL once loaded); valid until the
 * next change to the session. NULL before loom_session_load completed. */
static inline const loom_json *loom_session_get(loom_req *req)
{
    return LOOM_HAS(session_get) ? loom__host_api->session_get(req) : NULL;
}
/* Sets key to the JSON value `json` (len bytes; copied), or removes it when
 * json is NULL. LOOM_EINVAL for invalid JSON, LOOM_ELIMIT beyond max_size. */
static inline int32_t loom_session_set(loom_req *req, const char *key, const char *json, size_t len)
{
    return LOOM_HAS(session_set) ? loom__host_api->session_set(req, key, json, len) : LOOM_ENOSYS;
}
/* Login: a new session ID for the same data (the old ID is deleted). */
static inline int32_t loom_session_regenerate(loom_req *req)
{
    return LOOM_HAS(session_regenerate) ? loom__host_api->session_regenerate(req) : LOOM_ENOSYS;
}
/* Logout: empties the session, deletes it from the store, expires the cookie. */
static inline int32_t loom_session_invalidate(loom_req *req)
{
    return LOOM_HAS(session_invalidate) ? loom__host_api->session_invalidate(req) : LOOM_ENOSYS;
}
/* 1 when the request came without a valid session (a fresh one), 0 if not. */
static inline int32_t loom_session_is_new(loom_req *req)
{
    return LOOM_HAS(session_is_new) ? loom__host_api->session_is_new(req) : LOOM_ENOSYS;
}

/* ---- 1.1: descriptor watchers -------------------------------------------------
 * For client libraries with their own sockets (hiredis, libpq, ...): the host
 * polls a descriptor the plugin owns, on the worker's loop. The watcher is
 * tracked per plugin instance and closed when the instance is unloaded; the
 * plugin must stop it before closing the descriptor. */

/* Starts watching fd for `events` (LOOM_IO_READ | LOOM_IO_WRITE, or 0 for
 * none yet). Returns NULL on error. */
static inline loom_io *loom_io_start(loom_plugin *self, int32_t fd, int32_t events, loom_io_fn fn,
                                     void *ud)
{
    return LOOM_HAS(io_start) ? loom__host_api->io_start(self, fd, events, fn, ud) : NULL;
}
/* Changes the events watched (0: none, the watcher stays). */
static inline int32_t loom_io_update(loom_io *io, int32_t events)
{
    return LOOM_HAS(io_update) ? loom__host_api->io_update(io, events) : LOOM_ENOSYS;
}
/* Stops and frees the watcher; its callback does not run again. */
static inline void loom_io_stop(loom_io *io)
{
    if (LOOM_HAS(io_stop)) loom__host_api->io_stop(io);
}

#ifdef __cplusplus
}
#endif
#endif /* LOOM_LOOM_H */
