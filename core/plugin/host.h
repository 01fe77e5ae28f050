/* The plugin host: loaded plugin instances, the immutable registry snapshot
 * that dispatch reads, and the per-request state of the pipeline.
 *
 * A snapshot (router + middleware chain + the instances they point into) is
 * built whole from a set of instances and never changed afterwards. Each
 * request pins the snapshot it started with until its response is done, so
 * a reload can swap the current pointer while older requests finish on the
 * code they started with. */
#ifndef LOOM_PLUGIN_HOST_H
#define LOOM_PLUGIN_HOST_H

#include <jansson.h>
#include <stdint.h>
#include <time.h>
#include <uv.h>

#include <loom/loom.h>

#include "http/request.h"
#include "router/router.h"
#include "server/server.h"

typedef struct loom__host loom__host;
typedef struct loom__filter loom__filter;

typedef struct {
    char *method, *pattern, *name;
    loom_handler_fn fn;
    void *ud;
    uint32_t flags; /* LOOM_ROUTE_* */
} loom__reg_route;

typedef struct {
    loom_plugin *owner;
    char *name, *before, *after;
    uint32_t order;
    uint32_t load_index;
    loom_mw_request_fn on_request;
    loom_mw_response_fn on_response;
    void *ud;
} loom__reg_mw;

/* A service a plugin offered in init (service.c). */
typedef struct {
    loom_plugin *owner;
    char *name;
    uint32_t version;
    const void *table;
} loom__reg_service;

/* A request's watcher (loom_req_watch), in the request's arena. */
typedef struct loom__watch {
    loom_req_watch_fn fn;
    void *ud;
    struct loom__watch *next;
    int late; /* added after the client left: told only LOOM_REQ_DONE */
} loom__watch;

struct loom_timer {
    uv_timer_t t;
    loom_plugin *owner;
    loom_timer_fn fn;
    void *ud;
    struct loom_timer *prev, *next;
    int repeat;
    int stopped;
};

struct loom_io {
    uv_poll_t poll;
    loom_plugin *owner;
    loom_io_fn fn;
    void *ud;
    struct loom_io *prev, *next;
    int events;
    int stopped;
};

struct loom_plugin {
    loom_plugin_desc d; /* the descriptor, normalised to this host's size */
    loom__host *host;
    void *dl;
    char *name, *version;
    char *src_path;  /* the file in the plugins directory */
    char *load_path; /* the private copy that was dlopen'ed */
    char hash[65];   /* sha256 of the file */
    uint64_t generation;
    time_t load_time;
    uint32_t load_index;
    int refs; /* snapshots that hold it */
    int in_init;
    json_t *config;
    loom__reg_route *routes;
    size_t nroutes;
    loom__reg_mw *mws;
    size_t nmws;
    loom_timer *timers;
    loom_io *ios;                /* descriptor watchers (api.c) */
    loom_fetch *fetches;         /* client requests in flight (fetch.c) */
    loom_fetch_jar *jars;        /* (1.6) cookie jars made by the plugin (fetch.c) */
    int64_t works;               /* thread-pool jobs not done yet */
    loom__reg_service *services; /* offered in init (service.c) */
    size_t nservices;
    int unloading;
    int retired;         /* refused or init failed: never served (loom__plugin_retire) */
    int no_fini;         /* its init failed: fini is not called */
    int warned_insecure; /* (1.6) an insecure fetch was logged once */
    int warned_pinned;   /* a request left pinned by a cancelled fetch was logged once */
    char *last_error;
};

/* What a route of a snapshot leads to beyond its handler (router target's
 * meta): its pattern, and its metrics series per method slot (made on first
 * use by the worker that owns the snapshot). */
typedef struct {
    const char *pattern; /* the plugin's copy */
    uint16_t series[10]; /* LOOM__M_METHODS; index + 1, 0 = not made yet */
} loom__route_meta;

typedef struct loom__snapshot {
    int refs;                                     /* the host's current pointer counts as one */
    int64_t requests;                             /* pinned by requests right now */
    struct loom__snapshot *live_prev, *live_next; /* every snapshot of this thread */
    uint64_t generation;
    loom__router *router;
    loom__reg_mw *chain; /* ordered */
    size_t nchain;
    loom_plugin **plugins;
    size_t nplugins;
    loom__reg_service *services; /* every plugin's, by name (service.c) */
    size_t nservices;
    loom__route_meta *metas; /* one per route of its plugins */
} loom__snapshot;

/* What inotify said last about one file name of the plugins directory
 * (watch.c): IN_CREATE or IN_MODIFY means someone is writing it. */
typedef struct {
    char *name;
    uint64_t at;   /* loop time, ms */
    uint32_t mask; /* the event's IN_* bits */
} loom__file_event;

/* A file that was refused (not a plugin, init failed, its name taken): it is
 * not tried again until its content changes (reload.c). */
typedef struct {
    char *path;
    char hash[65];
    char *conflict; /* the name it collided with (retried once that is gone), or NULL */
} loom__refused;

struct loom__host {
    loom__worker *w;
    uv_loop_t *loop;
    const loom__config *cfg;
    loom__snapshot *current;
    loom_plugin **plugins; /* the current set, in load order */
    size_t nplugins;
    char *private_dir;
    uint64_t next_generation; /* counts successful loads */
    uint64_t next_copy;       /* names private copies */
    loom_plugin **zombies;    /* unloaded but waiting for timers/work to finish */
    size_t nzombies;
    struct {
        char *name;
        void *data;
        size_t len;
    } * states; /* state handoff blobs, by plugin name */
    size_t nstates;
    int inotify_fd;
    uv_poll_t *watch;     /* heap handles: freed by their close callbacks, */
    uv_timer_t *debounce; /* which may run after the host is gone */
    int watching;
    uint64_t burst_start; /* loop time of the first change of this burst; 0 = none */
    uint64_t last_change; /* loop time of the latest change */
    uint64_t retry_at;    /* a rescan for files that were not ready; 0 = none */
    loom__file_event *events;
    size_t nevents;
    loom__refused *refused;
    size_t nrefused;
    uint64_t reloads;               /* successful swaps, for the admin listing */
    struct loom_client *client;     /* lent to plugins (fetch.c), created on first use */
    struct loom_client *client_raw; /* the same, without decoding (LOOM_FETCH_RAW) */
    int stopping;
    loom_plugin **unload_queue; /* released instances, unloaded from a clean stack */
    size_t nunload;
    uv_timer_t *unload_timer;
    void *sessions; /* session config and the registered store (session.c) */
    loom_sse *sse;  /* open event streams (sse.c), ended when the worker drains */
};

/* Per-request pipeline state, in the request's arena. */
typedef struct {
    loom__snapshot *snap;
    uint32_t mw_next;  /* next middleware for the request phase */
    uint32_t mw_ran;   /* how many request phases ran (response phase unwinds these) */
    uint8_t responded; /* loom_respond was called (or the response phase began) */
    uint8_t aborted;
    uint8_t in_call;
    uint8_t timed; /* metrics or the access log want the handler's time */
    const loom__route_target *route;
    uint32_t ncaps;
    char *path; /* decoded path, NUL-terminated */
    size_t path_len;
    loom_abort_fn abort_fn;
    void *abort_ud;
    loom_fetch *fetches; /* client requests tied to this request */
    json_t **jsons;      /* parsed JSON to release with the request */
    size_t njsons;
    void *form;                      /* parsed form fields (form.c) */
    void *session;                   /* the request's session, once loaded (session.c) */
    loom__watch *watch, *watch_tail; /* loom_req_watch, in order (service.c) */
    loom__filter *filter;            /* the response body filter (filter.c), or NULL */
    loom_sse *sse;                   /* the event stream this request carries (sse.c), or NULL */
    uint64_t start_ns;
    loom_plugin *by;          /* the plugin answering: the route's, or a middleware's */
    struct loom__mworker *mw; /* the worker's metrics, when they are on */
    /* Not zeroed for a new request (loom__dispatch): only caps[0..ncaps) and
     * remote up to its NUL are ever read. */
    char remote[64]; /* "" until formatted */
    loom__capture caps[LOOM__MAX_CAPTURES];
} loom__rctx;

/* The one host function table. */
extern const loom_host_api loom__api_table;

/* Creates the host for worker `w` and loads the plugins directory. Returns
 * NULL after logging one line per bad plugin when the server must not start. */
loom__host *loom__host_start(loom__worker *w, const loom__config *cfg);
/* Unloads everything (after the worker drained). Frees the host at once,
 * or later, once nothing may still call into it: when the last thread-pool
 * job of an unloading plugin is done, and when the last request that still
 * pins a snapshot is answered (a handler whose client left may answer after
 * the drain, from a timer, a job or a service). The caller must not use `h`
 * after. */
void loom__host_stop(loom__host *h);
/* Frees a stopping host if nothing may call into it any more (see above). */
void loom__host_free_if_done(loom__host *h);
void loom__host_free(loom__host *h);
/* Whether any registry snapshot of this thread is still alive. */
int loom__snapshots_alive(void);

/* The plugin files to load, in load order: names from plugin_order first,
 * then the rest alphabetically; disabled ones left out. Returns a malloc'd
 * array of malloc'd paths, or NULL (logged) when the directory is unreadable. */
char **loom__plugin_list(const loom__config *cfg, size_t *n);
/* Starts watching the plugins directory (inotify, debounced). */
void loom__reload_start(loom__host *h);
/* Stops the watcher. */
void loom__reload_stop(loom__host *h);
/* (Re)arms the rescan timer for the earliest of: the end of the current
 * burst of changes, and h->retry_at. */
void loom__watch_arm(loom__host *h);
/* The IN_* bits of the last event seen for the file at `path` (0 when none)
 * and its loop time in *at. */
uint32_t loom__watch_last(loom__host *h, const char *path, uint64_t *at);
/* Forgets the events of names older than `before` (loop time, ms). */
void loom__watch_prune(loom__host *h, uint64_t before);
/* Rescans the plugins directory now: loads new files, reloads changed ones,
 * unloads deleted ones. A bad new version leaves the old one serving; a file
 * still being written is tried again later; a refused file is remembered by
 * its hash and not tried again until it changes. */
void loom__reload_rescan(loom__host *h);
/* Remembers that the file at `path` with content `hash` was refused;
 * `conflict` is the name it collided with, or NULL. */
void loom__reload_refuse(loom__host *h, const char *path, const char *hash, const char *conflict);
/* Forgets every refused file (SIGHUP retries them all). */
void loom__reload_forget_refused(loom__host *h);
/* The admin listing of loaded plugins as JSON text (malloc'd). */
char *loom__host_listing(loom__host *h);

/* Options and results of loom__plugin_load. */
enum { LOOM__TRUNCATED = 1, LOOM__CHANGED = 2 };
typedef struct {
    const char *hash;          /* the sha256 the caller read, or NULL */
    loom_plugin *const *taken; /* instances whose names the new one must not have */
    size_t ntaken;
    int incomplete;              /* out: LOOM__TRUNCATED or LOOM__CHANGED while read, else 0 */
    const loom_plugin *conflict; /* out: the instance whose name it has */
} loom__load_opts;

/* Loads one plugin file into a new instance: copies it to the private
 * directory, checks that the copy is a whole ELF file (loom__elf_whole),
 * dlopens it, checks the descriptor and that its name is not taken, and runs
 * its init. Returns NULL with the reason in `err` (and o->incomplete or
 * o->conflict set when that is the reason). */
loom_plugin *loom__plugin_load(loom__host *h, const char *path, loom__load_opts *o, char *err,
                               size_t errlen);
/* Whether the ELF file at `path` is whole: 0 when its headers and segments
 * fit in it (or it is no ELF file at all: dlopen says why), 1 when it is
 * shorter than they say or its header is still zero (being written), -1
 * when it cannot be read. `err` holds the reason when not 0. */
int loom__elf_whole(const char *path, char *err, size_t errlen);
/* Opens a private copy of a plugin file and makes the loader's checks
 * without running its init (for `loom check-plugin`). On success *out is the
 * descriptor with name and version strdup'ed (the caller frees them) and the
 * function pointers cleared (the code is unmapped again). Returns 0, or -1
 * with the one-line reason in `err`. */
int loom__plugin_inspect(const char *path, loom_plugin_desc *out, char *err, size_t errlen);
/* Queues an instance whose last snapshot is gone for unloading. The unload
 * itself (fini, cancel its timers and work, dlclose) runs from the loop on a
 * later turn: the release may happen inside one of the plugin's own
 * callbacks, and returning into unmapped code would crash. */
void loom__plugin_unload(loom_plugin *p);
/* Unloads every queued instance now (at shutdown, or from the timer). An
 * instance with thread-pool jobs still running waits, its timers stopped,
 * until the last one's completion: loom__plugin_finish_unload then runs its
 * fini and unmaps it. */
void loom__plugin_unload_queued(loom__host *h);
void loom__plugin_finish_unload(loom_plugin *p);
/* An instance that will not serve, now (called from the host's own code,
 * never from a plugin callback): its init failed (init_ok 0: no fini), or it
 * is refused after a successful init (a name clash, a snapshot that cannot
 * be built, a start given up; fini runs). Its fetches are cancelled, its
 * timers stopped; like an unload, an instance with thread-pool jobs waits in
 * h->zombies for the last one's done, then fini runs, its watchers and
 * timers are closed and it is unmapped. */
void loom__plugin_retire(loom_plugin *p, int init_ok);
/* Frees the memory of an instance whose code and handles are settled (its
 * timers, watchers, fetches and jobs gone): what loom__plugin_retire and
 * loom__plugin_finish_unload end with, and the load's failures before init. */
void loom__plugin_discard(loom_plugin *p);
/* sha256 of a file as hex. Returns 0 or -1. */
int loom__file_sha256(const char *path, char out[65]);

/* Builds a snapshot over `plugins`. Returns NULL with the reason in `err`
 * and, when one plugin is to blame, its index in *culprit. */
loom__snapshot *loom__snapshot_build(loom__host *h, loom_plugin **plugins, size_t n, char *err,
                                     size_t errlen, long *culprit);
/* Takes and drops a reference; the last drop frees the snapshot and drops
 * its plugins (unloading those no snapshot holds). */
void loom__snapshot_ref(loom__snapshot *s);
void loom__snapshot_unref(loom__host *h, loom__snapshot *s);
/* Makes `s` current (the host keeps one reference). */
void loom__host_publish(loom__host *h, loom__snapshot *s);
/* Requests in the snapshots that hold `p` right now, for the admin listing.
 * Counted per snapshot rather than per plugin, so that a request does not
 * touch every loaded plugin twice. */
int64_t loom__plugin_inflight(const loom_plugin *p);

/* The worker's request handler and abort hook. */
void loom__dispatch(loom__worker *w, loom_req *r);
void loom__dispatch_abort(loom__worker *w, loom_req *r);
/* loom_respond. */
int32_t loom__dispatch_respond(loom_req *r);
/* loom_next. */
int32_t loom__dispatch_next(loom_req *r);
/* Runs the response-phase middleware once (before the head is sent). */
void loom__dispatch_response_phase(loom_req *r);
/* The client for plugins (ABI 1.1): table entries and cancellation. */
loom_fetch *loom__api_fetch(loom_plugin *self, loom_req *req, const loom_fetch_opts *opts,
                            loom_fetch_fn fn, void *ud);
void loom__api_fetch_cancel(loom_fetch *f);
int32_t loom__api_fetch_error(const loom_fetch_result *r);
const char *loom__api_fetch_message(const loom_fetch_result *r);
int32_t loom__api_fetch_status(const loom_fetch_result *r);
const char *loom__api_fetch_header(const loom_fetch_result *r, const char *name);
uint32_t loom__api_fetch_header_count(const loom_fetch_result *r);
int32_t loom__api_fetch_header_at(const loom_fetch_result *r, uint32_t i, const char **name,
                                  const char **value);
const void *loom__api_fetch_body(const loom_fetch_result *r, size_t *len);
/* Closes every descriptor watcher of an instance (at unload). */
void loom__io_close_plugin(loom_plugin *p);
/* Sessions (ABI 1.1, session.c). */
int32_t loom__api_session_store_register(loom_plugin *self, const loom_session_store *store);
int32_t loom__api_session_load(loom_req *req, loom_session_fn fn, void *ud);
const loom_json *loom__api_session_get(loom_req *req);
int32_t loom__api_session_set(loom_req *req, const char *key, const char *json, size_t len);
int32_t loom__api_session_regenerate(loom_req *req);
int32_t loom__api_session_invalidate(loom_req *req);
int32_t loom__api_session_is_new(loom_req *req);
int32_t loom__api_session_save(loom_req *req, loom_session_fn fn, void *ud);
/* Before a response is sent: starts saving a changed session. Returns 1 when
 * it went asynchronous (loom__dispatch_complete is called again when done),
 * 0 when the response may go now. */
int loom__session_before_send(loom_req *r);
/* Releases the request's session data. */
void loom__session_free(loom_req *r);
/* Forgets the store of an instance that is being unloaded. */
void loom__session_store_drop(loom_plugin *p);
void loom__session_host_free(loom__host *h);
/* At start-up (worker 0): one line when plugins that use sessions find them
 * not configured, or when the configured store is missing. */
void loom__session_startup_check(loom__host *h);
/* Finishes a response (response phase, send); also after a session save. */
void loom__dispatch_complete(loom_req *r);
/* Cancels the fetches tied to a request / owned by a plugin instance (and
 * frees the instance's cookie jars). loom__fetch_cancel_request returns the
 * plugin instance of a fetch it cancelled, or NULL when there was none. */
loom_plugin *loom__fetch_cancel_request(loom_req *r);
void loom__fetch_cancel_plugin(loom_plugin *p);
/* 1.6: cookie jars for fetches. */
loom_fetch_jar *loom__api_fetch_jar_new(loom_plugin *self, uint32_t flags);
void loom__api_fetch_jar_free(loom_fetch_jar *jar);
int64_t loom__api_fetch_jar_cookies(loom_fetch_jar *jar, const char *url, char *buf, size_t len);

/* Services and request watchers (ABI 1.4, service.c). */
int32_t loom__api_service_register(loom_plugin *self, const loom_service_def *def);
const void *loom__api_service_get(loom_req *req, const char *name, uint32_t min_version,
                                  uint32_t *version);
int32_t loom__api_req_watch(loom_req *req, loom_req_watch_fn fn, void *ud);
/* Indexes the services of snapshot s's plugins. Returns 0, or -1 with the
 * reason in err and the index of the plugin to blame in *culprit. */
int loom__services_index(loom__snapshot *s, char *err, size_t errlen, long *culprit);
/* Frees what an instance registered. */
void loom__services_free(loom_plugin *p);
/* Runs the request's watchers for `event` (LOOM_REQ_ABORTED or _DONE). */
void loom__watch_fire(loom_req *r, int32_t event);
/* Response body filters (ABI 1.5, filter.c). */
int32_t loom__filter_install(loom_req *r, const loom_body_filter *def);
/* Before the response is written: filters a buffered body (or finishes a
 * streamed one). Returns 1 when a thread-pool job took it over
 * (loom__dispatch_complete is called again when done), 0 to go on. */
int loom__filter_before_send(loom_req *r);
/* Sends a streamed chunk through the filter (or as it is, without one).
 * Returns 0, LOOM_EGONE or the filter's error. */
int32_t loom__filter_chunk(loom_req *r, const void *data, size_t len, uint32_t flags);
/* Whether a thread-pool job is filtering the body right now (the body must
 * not change under it). */
int loom__filter_busy(const loom_req *r);
/* Calls the filter's release (once the response is done). */
void loom__filter_release(loom_req *r);
/* Server-Sent Events (ABI 1.5, sse.c). */
loom_sse *loom__sse_open(loom_req *r, const loom_sse_opts *opts);
int32_t loom__sse_send(loom_sse *s, const loom_sse_event *ev);
int32_t loom__sse_close(loom_sse *s);
const char *loom__sse_last_event_id(loom_sse *s, size_t *len);
uint64_t loom__sse_queued(loom_sse *s);
/* The request's client left: on_close, then the stream ends. */
void loom__sse_abort(loom_req *r);
/* The worker drains: ends every open stream (on_close first). */
void loom__sse_drain(loom__host *h);
/* Decodes a request body with Content-Encoding for a route that allows it
 * (LOOM_ROUTE_DECODE_BODY). Returns 0 to go on, or 1 after answering the
 * error (400, 413 or 415). */
int loom__dispatch_decode_body(loom_req *r);

/* WebSocket (ABI 1.2, ws.c). */
int32_t loom__api_ws_accept(loom_plugin *self, loom_req *r, const loom_ws_opts *opts,
                            loom_ws **out);
int32_t loom__api_ws_send(loom_ws *ws, int32_t type, const void *data, size_t len);
int32_t loom__api_ws_close(loom_ws *ws, int32_t code, const char *reason);
void loom__api_ws_set_user(loom_ws *ws, void *user);
void *loom__api_ws_user(loom_ws *ws);
const char *loom__api_ws_protocol(loom_ws *ws);
uint64_t loom__api_ws_queued(loom_ws *ws);
int32_t loom__api_ws_subscribe(loom_ws *ws, const char *channel);
int32_t loom__api_ws_unsubscribe(loom_ws *ws, const char *channel);
int32_t loom__api_ws_publish(loom_plugin *self, const char *channel, int32_t type, const void *data,
                             size_t len);
loom_ws *loom__api_ws_connect(loom_plugin *self, const char *url, const loom_ws_opts *opts);
/* Closes an unloading instance's client WebSockets without callbacks. */
void loom__ws_plugin_unload(loom_plugin *p);
/* At host stop: reports what is still queued, and frees the timer. */
void loom__ws_host_stop(loom__host *h);

/* The client's address as text (formatted on first use; "-" when gone). */
const char *loom__dispatch_remote(loom_req *r);
/* Answers an error (JSON when the client accepts it) and responds. */
int32_t loom__dispatch_error(loom_req *r, int status, const char *message);
/* Sets status, Content-Type and body of an error answer (as above) without
 * responding: for a response that is being replaced before it is sent. */
void loom__dispatch_error_fill(loom_req *r, int status, const char *message);

#endif
