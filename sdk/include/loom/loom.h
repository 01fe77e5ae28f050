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
#define LOOM_ABI_MINOR 7
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
/* (1.3) Another request changed the same data meanwhile (sessions: see
 * loom_session_save). */
#define LOOM_ECONFLICT (-9)
/* (1.3) A service the call depends on could not answer (a session store that
 * is down); the reason is in the server log. Answer 503. */
#define LOOM_EUNAVAIL (-10)

/* What a handler or middleware returns. */
#define LOOM_DONE 0    /* answered (or handed the request on) */
#define LOOM_PENDING 1 /* will answer later, from a callback, with loom_respond */
#define LOOM_NEXT 2    /* middleware only: run the rest of the chain */

/* (1.2) What loom_req_tls tells about the request's TLS connection. */
#define LOOM_TLS_PROTOCOL 1           /* "TLSv1.3", "TLSv1.2" */
#define LOOM_TLS_CIPHER 2             /* OpenSSL's name, e.g. "TLS_AES_128_GCM_SHA256" */
#define LOOM_TLS_SNI 3                /* the server name the client asked for */
#define LOOM_TLS_ALPN 4               /* the negotiated protocol, e.g. "http/1.1", "h2" */
#define LOOM_TLS_RESUMED 5            /* "1" for a resumed session, "0" for a full handshake */
#define LOOM_TLS_CLIENT_SUBJECT 6     /* the verified client certificate's subject (RFC 2253) */
#define LOOM_TLS_CLIENT_FINGERPRINT 7 /* its SHA-256, 64 lowercase hex digits */
#define LOOM_TLS_CLIENT_VERIFY 8      /* "SUCCESS" (a verified certificate) or "NONE" */

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
/* (1.3) Its routes use sessions: the server says so in one line at start-up
 * when sessions are not configured or their store is missing. */
#define LOOM_PLUGIN_USES_SESSIONS 2u

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
typedef struct loom_io loom_io;   /* (1.1) a host-owned watcher on a plugin's file descriptor */
typedef struct loom_sse loom_sse; /* (1.5) a Server-Sent Events stream on a request */
typedef struct loom_fetch_jar loom_fetch_jar; /* (1.6) a cookie jar for fetches */
typedef struct loom_io loom_io; /* (1.1) a host-owned watcher on a plugin's file descriptor */
typedef struct loom_ws loom_ws; /* (1.7) a WebSocket connection (server or client side) */

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
/* (1.3) A versioned store operation finished (see loom_session_store):
 * status, the stored JSON text (valid during the call only; NULL when there
 * is none) and its version (0 when there is none). */
typedef void (*loom_session_vdone_fn)(void *ctx, int32_t status, const char *data, size_t len,
                                      uint64_t version);
/* (1.1) loom_session_load finished: status 0 (the session is there, maybe a
 * fresh empty one) or (1.3) LOOM_EUNAVAIL (the store could not answer; see
 * loom_session_load). (1.3) loom_session_save finished: 0, LOOM_ECONFLICT or
 * LOOM_EUNAVAIL (see loom_session_save). */
typedef void (*loom_session_fn)(loom_req *req, int32_t status, void *ud);

/* (1.1) A watched descriptor is ready: events is LOOM_IO_READ and/or
 * LOOM_IO_WRITE, or a negative code when polling failed (POLLERR: a reset
 * socket, a pipe whose reader is gone). After a negative code the watcher
 * watches nothing (as after loom_io_update(io, 0)) and stays allocated:
 * loom_io_update with the events wanted watches again (and reports the
 * error again while it lasts), loom_io_stop frees it. */
typedef void (*loom_io_fn)(loom_io *io, int32_t events, void *ud);
#define LOOM_IO_READ 1
#define LOOM_IO_WRITE 2

/* (1.4) A request's lifetime, for services that hold something for it (see
 * loom_req_watch). LOOM_REQ_ABORTED: its client left; the request stays
 * valid until it is answered. LOOM_REQ_DONE: it is being released; the last
 * call, after which `req` must not be used. */
typedef void (*loom_req_watch_fn)(loom_req *req, int32_t event, void *ud);
#define LOOM_REQ_ABORTED 1
#define LOOM_REQ_DONE 2
/* (1.7) WebSocket message types (loom_ws_send, loom_ws_message_fn). */
#define LOOM_WS_TEXT 1   /* UTF-8 text */
#define LOOM_WS_BINARY 2 /* bytes */
#define LOOM_WS_PING 9   /* a ping (at most 125 bytes; the peer answers with a pong) */
#define LOOM_WS_PONG 10  /* an unsolicited pong (a one-way heartbeat) */

/* (1.7) Close codes (RFC 6455 §7.4.1) loom uses or reports. */
#define LOOM_WS_NORMAL 1000
#define LOOM_WS_GOING_AWAY 1001 /* the server stops, or the plugin was replaced */
#define LOOM_WS_PROTOCOL_ERROR 1002
#define LOOM_WS_UNSUPPORTED 1003
#define LOOM_WS_NO_STATUS 1005 /* (reported only) the close frame had no code */
#define LOOM_WS_ABNORMAL 1006  /* (reported only) the connection was lost, no close frame */
#define LOOM_WS_INVALID_DATA 1007
#define LOOM_WS_POLICY 1008
#define LOOM_WS_TOO_BIG 1009
#define LOOM_WS_INTERNAL_ERROR 1011
#define LOOM_WS_TRY_AGAIN 1013

/* (1.7) loom_ws_opts.flags. */
#define LOOM_WS_DEFLATE 1u /* permessage-deflate (RFC 7692) when the client offers it */
#define LOOM_WS_DEFLATE_TAKEOVER                                                                   \
    2u /* ... keeping compression context between messages (better                                 \
          ratio; costs ~300 KiB per connection); by default both                                   \
          sides reset after each message */

/* (1.7) The connection is open: after the 101 for loom_ws_accept, after the
 * handshake for loom_ws_connect. Messages come after it. */
typedef void (*loom_ws_open_fn)(loom_ws *ws, void *ud);
/* (1.7) A whole message: LOOM_WS_TEXT (valid UTF-8) or LOOM_WS_BINARY,
 * reassembled from its frames and inflated. `data` is valid during the call. */
typedef void (*loom_ws_message_fn)(loom_ws *ws, int32_t type, const void *data, size_t len,
                                   void *ud);
/* (1.7) Once, at the end: the peer's close code and reason (LOOM_WS_NO_STATUS
 * when its close frame had no code), or the code we closed with after an
 * error, or LOOM_WS_ABNORMAL when the connection was lost (or never opened).
 * Never called from inside a loom_ws_* call. `ws` is invalid after it. */
typedef void (*loom_ws_close_fn)(loom_ws *ws, int32_t code, const char *reason, size_t len,
                                 void *ud);
/* (1.7) Something went wrong; on_close follows unless code is LOOM_ELIMIT.
 * `code` is the close code we sent when the peer broke the protocol (1002,
 * 1007, 1009), LOOM_WS_ABNORMAL when a heartbeat ping got no pong, a negative
 * LOOM_FETCH_E_* when a loom_ws_connect could not open, or LOOM_ELIMIT when
 * broadcasts were dropped because the send queue was full (the connection
 * stays open; close it with LOOM_WS_TRY_AGAIN if you prefer). */
typedef void (*loom_ws_error_fn)(loom_ws *ws, int32_t code, const char *message, void *ud);
/* (1.7) The send queue emptied after a send failed with LOOM_ELIMIT. */
typedef void (*loom_ws_drain_fn)(loom_ws *ws, void *ud);

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
 * negative status when the work was dropped). A negative status other than
 * LOOM_ENOTFOUND and LOOM_ECONFLICT means "the store could not answer": the
 * host then answers 503 rather than guess, so a store must not report a
 * failure as LOOM_ENOTFOUND, and should log its reason.
 *
 * (1.3) Versioned operations. A store that has them keeps a version with
 * each session: a number >= 1 that changes with every write of that ID. The
 * host then loads with load_versioned, writes with save_if and deletes a
 * regenerated ID with destroy_if; load and save may be NULL. Each compares
 * and acts in one atomic step in the store (shared by every worker and
 * machine that uses it); an expired session counts as absent:
 *  - load_versioned: done(0, data, version), or LOOM_ENOTFOUND.
 *  - save_if: writes data and expires when the stored version is `version`
 *    (0: when there is no session with this ID), then done(0, NULL, 0,
 *    new version). Otherwise it changes nothing and calls done(LOOM_ECONFLICT,
 *    current data, current version), or done(LOOM_ECONFLICT, NULL, 0, 0)
 *    when there is no session.
 *  - destroy_if: deletes the session when its version is `version`, then
 *    done(0, NULL, 0, 0); otherwise done(LOOM_ECONFLICT, ...) as save_if.
 * From these the host builds the session semantics described at
 * loom_session_save. A 1.1 store (without them) still works, with last-
 * writer-wins saves of the whole session, and a warning at registration. */
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
    /* ---- 1.3: versioned operations ---- */
    uint32_t flags; /* LOOM_SESSION_STORE_* */
    uint32_t reserved2;
    int32_t (*load_versioned)(void *ud, const char *id, loom_session_vdone_fn done, void *ctx);
    int32_t (*save_if)(void *ud, const char *id, const char *data, size_t len, int64_t expires,
                       uint64_t version, loom_session_vdone_fn done, void *ctx);
    int32_t (*destroy_if)(void *ud, const char *id, uint64_t version, loom_session_vdone_fn done,
                          void *ctx);
} loom_session_store;
/* (1.3) The store keeps sessions in this process only (session-memory): the
 * server refuses it when it runs more than one worker. */
#define LOOM_SESSION_STORE_PROCESS_LOCAL 1u

/* (1.1) An HTTP client request. Set size = sizeof(loom_fetch_opts). Every
 * pointer needs to stay valid only during loom_fetch (it is copied). */
typedef struct loom_fetch_opts {
    uint32_t size;
    uint32_t flags;             /* LOOM_FETCH_* */
    const char *method;         /* NULL = "GET" */
    const char *url;            /* absolute http:// URL (1.6: or https://) */
    const char *const *headers; /* name, value, name, value, ... */
    uint32_t nheaders;          /* number of pairs */
    uint32_t reserved;
    const void *body;
    size_t body_len;
    const char *content_type;    /* for body (default application/octet-stream) */
    uint64_t timeout_ms;         /* whole request; 0 = 300 s */
    uint64_t connect_timeout_ms; /* 0 = 30 s */
    uint64_t read_timeout_ms;    /* between reads; 0 = none */
    /* ---- 1.6: HTTPS, cookies, proxies (zero/NULL: the 1.1 behaviour) ----
     * A 1.6 host takes https:// URLs in `url`, verified against the system
     * store by default (see <loom/client.h> for the rules and errors). */
    const char *ca_file;        /* https: trust this PEM bundle instead of the system store */
    const char *client_cert;    /* https: a client certificate (PEM) */
    const char *client_key;     /* its private key (PEM); NULL = in client_cert */
    loom_fetch_jar *cookie_jar; /* cookies kept and sent (loom_fetch_jar_new); NULL = none */
    const char *proxy;          /* "http://[user:password@]host[:port]"; NULL = none */
} loom_fetch_opts;
#define LOOM_FETCH_RAW 1u              /* no redirects, no decoding (proxies) */
#define LOOM_FETCH_RAISE_FOR_STATUS 2u /* status >= 400 is an error (LOOM_FETCH_E_STATUS) */
#define LOOM_FETCH_INSECURE 4u         /* (1.6) https: do not verify the server (logged) */
#define LOOM_FETCH_TRUST_ENV 8u        /* (1.6) no `proxy`: http_proxy/https_proxy/no_proxy */
#define LOOM_FETCH_ALLOW_DOWNGRADE 16u /* (1.6) follow https -> http redirects */
#define LOOM_FETCH_JAR_UNSAFE 1u       /* (1.6) loom_fetch_jar_new: keep IP hosts' cookies */

/* (1.4) A service: an API one plugin offers others (loom_service_register).
 * Set size = sizeof(loom_service_def). `table` is the provider's own
 * function table; it must begin with a uint32_t holding its size in bytes
 * (the consumer checks it before calling an entry, as LOOM_HAS does for the
 * host table) and stay valid until the provider's fini. A service grows the
 * way the ABI does: entries are only appended and `version` goes up; a
 * change that breaks callers takes a new name. */
typedef struct loom_service_def {
    uint32_t size;
    uint32_t version;  /* >= 1; consumers ask for a minimum */
    const char *name;  /* [a-z0-9_.-]{1,64}, unique among loaded plugins; copied */
    const void *table; /* begins with uint32_t size */
} loom_service_def;

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
/* (1.6) The values of LOOM_CLIENT_E_* of the same names in <loom/client.h>. */
#define LOOM_FETCH_E_CERT_EXPIRED (-17)      /* expired or not yet valid */
#define LOOM_FETCH_E_CERT_HOSTNAME (-18)     /* for other names (the message lists them) */
#define LOOM_FETCH_E_CERT_UNTRUSTED (-19)    /* self-signed or an unknown CA */
#define LOOM_FETCH_E_CERT_CHAIN (-20)        /* the server left out an intermediate */
#define LOOM_FETCH_E_TLS_VERSION (-21)       /* no TLS 1.2 or 1.3 */
#define LOOM_FETCH_E_TLS_TIMEOUT (-22)       /* handshake not done within the connect timeout */
#define LOOM_FETCH_E_TLS_RESET (-23)         /* closed or reset during the handshake */
#define LOOM_FETCH_E_TLS (-24)               /* any other TLS failure */
#define LOOM_FETCH_E_TLS_CONFIG (-25)        /* ca_file/client_cert/client_key unusable */
#define LOOM_FETCH_E_PROXY_CONNECT (-26)     /* the proxy cannot be reached */
#define LOOM_FETCH_E_PROXY_AUTH (-27)        /* 407 from the proxy */
#define LOOM_FETCH_E_PROXY_TUNNEL (-28)      /* the proxy refused the CONNECT tunnel */
#define LOOM_FETCH_E_DECODED_TOO_LARGE (-29) /* a decompression bomb */
#define LOOM_FETCH_E_DOWNGRADE (-30)         /* an https -> http redirect was refused */

/* ---- 1.5: compression and Server-Sent Events ------------------------------ */

/* (1.5) Where a body filter puts its output: appends `len` bytes (copied).
 * Returns 0 or LOOM_ENOMEM. Safe to call on the thread pool: each run of a
 * filter gets its own `ectx`. */
typedef int32_t (*loom_filter_emit_fn)(void *ectx, const void *data, size_t len);
#define LOOM_FILTER_FLUSH 1u /* make all output so far decodable (a streamed chunk ends) */
#define LOOM_FILTER_END 2u   /* this is the last input: finish the coding */

/* (1.5) A response body filter (e.g. a compressor), installed by middleware
 * with loom_resp_filter, usually from its response phase. Set size =
 * sizeof(loom_body_filter). The host runs it over every body byte of the
 * response: a buffered body (loom_resp_body or a loom_resp_file body) in one
 * call with LOOM_FILTER_FLUSH|LOOM_FILTER_END, each streamed chunk
 * (loom_resp_stream_write, loom_sse_send) with LOOM_FILTER_FLUSH, and the
 * stream's end with LOOM_FILTER_END and no input. The Content-Length is that
 * of the output. */
typedef struct loom_body_filter {
    uint32_t size;
    uint32_t flags; /* none yet: 0 */
    /* Transforms `len` bytes of `in`, writing output through emit(ectx, ...).
     * Runs on the loop thread, or on a thread-pool thread for a buffered body
     * of pool_min bytes or more: it must call no loom function but emit, and
     * touch nothing but its own `ud`. Returns 0, or a negative code: the
     * response then fails (a 500 before the head is out, a closed connection
     * after). */
    int32_t (*run)(void *ud, const void *in, size_t len, uint32_t flags, loom_filter_emit_fn emit,
                   void *ectx);
    /* Called once on the loop thread when the response is done (sent,
     * failed or aborted), also when run never ran. May be NULL. */
    void (*release)(void *ud);
    /* Buffered bodies of at least this many bytes are filtered on the thread
     * pool, so the loop is not blocked; 0 = always on the loop thread. */
    uint64_t pool_min;
    void *ud;
} loom_body_filter;

/* (1.5) Route flags (loom_route_add_flags). */
#define LOOM_ROUTE_DECODE_BODY 1u /* decode a gzip, br or zstd request body before the handler */

/* (1.5) Why an event stream ended (loom_sse_close_fn). */
#define LOOM_SSE_GONE LOOM_EGONE      /* the client left (or stopped reading for write_timeout) */
#define LOOM_SSE_STOPPING LOOM_ESTATE /* the server is stopping gracefully */

/* (1.5) The last call about an event stream: it ended without
 * loom_sse_close (the client left, or the server stops). The handle is freed
 * when this returns; do not use it after. */
typedef void (*loom_sse_close_fn)(loom_sse *s, int32_t reason, void *ud);

/* (1.5) Options of loom_sse_open. Set size = sizeof(loom_sse_opts). */
typedef struct loom_sse_opts {
    uint32_t size;
    uint32_t flags;        /* none yet: 0 */
    uint64_t keepalive_ms; /* a comment line after this much silence; 0 = 15000 */
    uint64_t max_queued;   /* bytes waiting for the client past which sends fail; 0 = 1 MiB */
    loom_sse_close_fn on_close;
    void *ud;
} loom_sse_opts;

/* (1.5) One event. Set size = sizeof(loom_sse_event); NULL fields are left
 * out. */
typedef struct loom_sse_event {
    uint32_t size;
    uint32_t flags;    /* none yet: 0 */
    const char *event; /* the event type; no CR, LF */
    const char *id;    /* the event ID (becomes Last-Event-ID); no CR, LF, NUL */
    int64_t retry_ms;  /* > 0: the client's reconnection delay */
    const char *data;  /* may hold CR, LF or CRLF line breaks: one data field per line */
    size_t data_len;
} loom_sse_event;

/* (1.7) A WebSocket, for loom_ws_accept and loom_ws_connect. Set size =
 * sizeof(loom_ws_opts); every 0 means the default in the comment. The
 * pointers need to stay valid only during the call (copied). */
typedef struct loom_ws_opts {
    uint32_t size;
    uint32_t flags;              /* LOOM_WS_DEFLATE, LOOM_WS_DEFLATE_TAKEOVER */
    const char *protocols;       /* accept: the subprotocols we speak, comma-separated, in our
                                    order of preference (the first the client offers is
                                    chosen; none in common: no subprotocol); connect: offered */
    const char *allowed_origins; /* accept: NULL = any Origin; "same" = the Origin's host
                                    must equal the Host header; else a comma-separated list
                                    of origins ("https://a.example, http://localhost:8080").
                                    A browser's upgrade from another origin gets a 403. A
                                    request without Origin (not a browser) is allowed.
                                    connect: the Origin header to send (NULL: none) */
    uint64_t max_msg_size;       /* larger messages (also once inflated) close with 1009 (4 MiB) */
    uint64_t send_queue_limit;   /* queued bytes past which a send fails with LOOM_ELIMIT (4 MiB) */
    uint32_t heartbeat_ms;       /* ping after this much silence; no pong within half of it
                                    closes the connection (LOOM_WS_ABNORMAL) (0 = none) */
    uint32_t close_timeout_ms;   /* wait for the peer's close frame (5000) */
    uint32_t deflate_window_bits; /* our compressor's window, 9..15 (15) */
    uint32_t nheaders;            /* connect: pairs in headers */
    const char *const *headers;   /* connect: extra request headers: name, value, ... */
    uint64_t connect_timeout_ms;  /* connect: DNS, TCP and handshake (30000) */
    loom_ws_open_fn on_open;
    loom_ws_message_fn on_message;
    loom_ws_close_fn on_close;
    loom_ws_error_fn on_error;
    loom_ws_drain_fn on_drain;
    void *ud; /* passed to every callback */
} loom_ws_opts;

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

    /* ---- 1.2: TLS ---- */
    const char *(*req_scheme)(loom_req *req);
    const char *(*req_tls)(loom_req *req, int32_t what);

    /* ---- 1.3: sessions without lost updates ---- */
    int32_t (*session_save)(loom_req *req, loom_session_fn fn, void *ud);

    /* ---- 1.4: services between plugins ---- */
    int32_t (*service_register)(loom_plugin *self, const loom_service_def *def);
    const void *(*service_get)(loom_req *req, const char *name, uint32_t min_version,
                               uint32_t *version);
    int32_t (*req_watch)(loom_req *req, loom_req_watch_fn fn, void *ud);

    /* ---- 1.5: compression and Server-Sent Events ---- */
    int32_t (*resp_filter)(loom_req *req, const struct loom_body_filter *filter);
    int64_t (*resp_body_size)(loom_req *req);
    int32_t (*route_add_flags)(loom_plugin *self, const char *method, const char *pattern,
                               loom_handler_fn fn, void *ud, const char *name, uint32_t flags);
    loom_sse *(*sse_open)(loom_req *req, const struct loom_sse_opts *opts);
    int32_t (*sse_send)(loom_sse *s, const struct loom_sse_event *ev);
    int32_t (*sse_close)(loom_sse *s);
    const char *(*sse_last_event_id)(loom_sse *s, size_t *len);
    uint64_t (*sse_queued)(loom_sse *s);
    uint64_t (*server_requests)(loom_plugin *self);

    /* ---- 1.6: the client on the real web (cookie jars) ---- */
    loom_fetch_jar *(*fetch_jar_new)(loom_plugin *self, uint32_t flags);
    void (*fetch_jar_free)(loom_fetch_jar *jar);
    int64_t (*fetch_jar_cookies)(loom_fetch_jar *jar, const char *url, char *buf, size_t len);

    /* ---- 1.7: WebSocket ---- */
    int32_t (*ws_accept)(loom_plugin *self, loom_req *req, const loom_ws_opts *opts, loom_ws **out);
    int32_t (*ws_send)(loom_ws *ws, int32_t type, const void *data, size_t len);
    int32_t (*ws_close)(loom_ws *ws, int32_t code, const char *reason);
    void (*ws_set_user)(loom_ws *ws, void *user);
    void *(*ws_user)(loom_ws *ws);
    const char *(*ws_protocol)(loom_ws *ws);
    uint64_t (*ws_queued)(loom_ws *ws);
    int32_t (*ws_subscribe)(loom_ws *ws, const char *channel);
    int32_t (*ws_unsubscribe)(loom_ws *ws, const char *channel);
    int32_t (*ws_publish)(loom_plugin *self, const char *channel, int32_t type, const void *data,
                          size_t len);
    loom_ws *(*ws_connect)(loom_plugin *self, const char *url, const loom_ws_opts *opts);
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
/* Calls fn once if the client leaves before the response is done. A
 * pending request stays allocated until the plugin answers it (the answer
 * then goes nowhere): a plugin whose only pending work is a fetch tied to
 * the request must answer here, because the host cancels that fetch and its
 * callback does not run. */
static inline int32_t loom_req_on_abort(loom_req *req, loom_abort_fn fn, void *ud)
{
    return loom__host_api->req_on_abort(req, fn, ud);
}
/* Monotonic time (ns) at which the request's first byte arrived. */
static inline uint64_t loom_req_start_ns(loom_req *req)
{
    return loom__host_api->req_start_ns(req);
}
/* "HTTP/1.1", "HTTP/1.0" or (a stream of an HTTP/2 connection) "HTTP/2.0". */
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

/* ---- config checking (SDK helper, no table entry: works on any 1.x host) -- */

/* Appends the NUL-terminated `s` to buf (size `cap`, `*n` used), truncating. */
static inline void loom__cfg_cat(char *buf, size_t cap, size_t *n, const char *s)
{
    while (*s && *n + 1 < cap) buf[(*n)++] = *s++;
    buf[*n] = '\0';
}

/* Checks the keys of a config object, so that a typo ("orgins") stops the
 * server instead of being ignored. `obj` is the plugin's config
 * (loom_config) or an object inside it; `where` names it in the message
 * ("routes[2]"; NULL for the plugin's own object); `known` is the
 * NULL-terminated list of the keys the plugin reads there. Returns LOOM_OK
 * when every key of `obj` is known (or `obj` is NULL: absent). Otherwise --
 * an unknown key, or `obj` not an object -- logs one error line that names
 * the plugin, the key, where it is and the keys that are known, and
 * returns LOOM_EINVAL, which init should return:
 *
 *     static const char *const top[] = {"routes", NULL};
 *     if (loom_config_check_keys(self, loom_config(self), NULL, top)) return LOOM_EINVAL;
 *
 * logs: plugin cors: unknown config key "rutes" (known: routes).
 * The key "enabled" is the host's and never reaches the plugin. Messages
 * longer than 512 bytes are cut. */
static inline int32_t loom_config_check_keys(loom_plugin *self, const loom_json *obj,
                                             const char *where, const char *const *known)
{
    char msg[512];
    size_t n = 0;
    msg[0] = '\0';
    if (!obj) return LOOM_OK;
    if (loom_json_type(obj) != LOOM_JSON_OBJECT) {
        loom__cfg_cat(msg, sizeof msg, &n, "config");
        if (where) {
            loom__cfg_cat(msg, sizeof msg, &n, " ");
            loom__cfg_cat(msg, sizeof msg, &n, where);
        }
        loom__cfg_cat(msg, sizeof msg, &n, " must be an object");
        loom_log(self, LOOM_LOG_ERROR, msg);
        return LOOM_EINVAL;
    }
    for (size_t i = 0; i < loom_json_size(obj); i++) {
        const char *key = loom_json_key_at(obj, i, NULL);
        size_t k = 0;
        for (; key && known && known[k]; k++) {
            const char *a = known[k], *b = key;
            while (*a && *a == *b) a++, b++;
            if (*a == *b) break;
        }
        if (!key || (known && known[k])) continue;
        loom__cfg_cat(msg, sizeof msg, &n, "unknown config key \"");
        loom__cfg_cat(msg, sizeof msg, &n, key);
        loom__cfg_cat(msg, sizeof msg, &n, "\"");
        if (where) {
            loom__cfg_cat(msg, sizeof msg, &n, " in ");
            loom__cfg_cat(msg, sizeof msg, &n, where);
        }
        if (!known || !known[0]) {
            loom__cfg_cat(msg, sizeof msg, &n, " (this plugin takes no config)");
        } else {
            loom__cfg_cat(msg, sizeof msg, &n, " (known: ");
            for (k = 0; known[k]; k++) {
                if (k) loom__cfg_cat(msg, sizeof msg, &n, ", ");
                loom__cfg_cat(msg, sizeof msg, &n, known[k]);
            }
            loom__cfg_cat(msg, sizeof msg, &n, ")");
        }
        loom_log(self, LOOM_LOG_ERROR, msg);
        return LOOM_EINVAL;
    }
    return LOOM_OK;
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

/* ---- 1.6: cookie jars for fetches -------------------------------------------
 * A jar keeps the cookies servers set (RFC 6265, as aiohttp's CookieJar:
 * domain and path matching, Secure only over https, public suffixes and IP
 * hosts refused unless LOOM_FETCH_JAR_UNSAFE) and sends them on the fetches
 * given it in loom_fetch_opts.cookie_jar, redirects included. Fetches get
 * no cookies without a jar: the worker's client is shared by all requests,
 * so one end user's cookies never reach another's fetch by default. A jar
 * belongs to the plugin instance that made it and to its worker's thread;
 * it is freed by loom_fetch_jar_free or at unload, whichever comes first. */

/* A new empty jar (flags: LOOM_FETCH_JAR_*), or NULL (out of memory, or a
 * host older than 1.6). */
static inline loom_fetch_jar *loom_fetch_jar_new(loom_plugin *self, uint32_t flags)
{
    return LOOM_HAS(fetch_jar_new) ? loom__host_api->fetch_jar_new(self, flags) : NULL;
}
/* Frees a jar; fetches that use it keep it until they complete. */
static inline void loom_fetch_jar_free(loom_fetch_jar *jar)
{
    if (LOOM_HAS(fetch_jar_free)) loom__host_api->fetch_jar_free(jar);
}
/* Writes the Cookie header value the jar would send to `url` ("a=1; b=2")
 * into buf (NUL-terminated, cut to len - 1). Returns its full length (0:
 * no cookie matches), LOOM_EINVAL for a bad URL, or LOOM_ENOSYS. */
static inline int64_t loom_fetch_jar_cookies(loom_fetch_jar *jar, const char *url, char *buf,
                                             size_t len)
{
    return LOOM_HAS(fetch_jar_cookies) ? loom__host_api->fetch_jar_cookies(jar, url, buf, len)
                                       : LOOM_ENOSYS;
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
 * cookie sent, when the response is done (or earlier, with loom_session_save).
 * A missing, tampered, expired or unknown cookie gives a fresh empty session,
 * never an error; a store that cannot answer gives LOOM_EUNAVAIL, never a
 * fresh session. With a streamed response the head is out before the save,
 * so no new cookie can follow: change the session (or regenerate it) in a
 * response that is not streamed, or commit it with loom_session_save before
 * the stream starts.
 *
 * (1.3) Concurrent requests on one session. Each request works on its own
 * copy, loaded from the store with its version. A save writes only the keys
 * this request changed (set, removed, or all of them after regenerate),
 * merged into the session as stored now, and the store accepts the write
 * only if nobody wrote in between (compare-and-set on the version):
 *  - keys changed only by other requests are kept: the host merges and
 *    retries by itself (a bounded number of times);
 *  - a key this request changed that another request also changed since
 *    this one loaded it is a conflict (two requests both read count 5 and
 *    write 6: one of them must not win silently). Nothing of this request is
 *    written. loom_session_save reports it as LOOM_ECONFLICT, and the
 *    handler rereads and retries; the save when the response is done
 *    replaces a response below 400 with 409 and logs a line naming the key;
 *  - a session deleted meanwhile (logout elsewhere, expiry) is a conflict
 *    too: it is not brought back, and the request's session becomes a fresh
 *    empty one;
 *  - a store that fails while saving: loom_session_save reports
 *    LOOM_EUNAVAIL; the save when the response is done replaces a response
 *    below 400 with 503; both log the store's name and the error.
 * The rule of thumb: a handler that writes what it computed from what it read
 * (a counter, a list it appends to) commits with loom_session_save and
 * retries on LOOM_ECONFLICT; one that only sets values (a user name at login)
 * may rely on the save when the response is done. With a 1.1 store (one
 * without versioned operations) saves write the whole session, last writer
 * wins, and LOOM_ECONFLICT never happens. */

/* A store plugin offers its store (in init). Returns 0 when the host will use
 * it (the "store" key of the sessions config names it; default "sqlite"),
 * LOOM_ESTATE when sessions are not configured, LOOM_ENOTFOUND when another
 * store is chosen (the plugin should then stay idle and return 0 from init),
 * LOOM_EINVAL when the sessions config is invalid (the reason is logged;
 * fail init). (1.3) Also LOOM_EINVAL, logged, for a store flagged
 * LOOM_SESSION_STORE_PROCESS_LOCAL when the server runs more than one worker. */
static inline int32_t loom_session_store_register(loom_plugin *self,
                                                  const loom_session_store *store)
{
    return LOOM_HAS(session_store_register) ? loom__host_api->session_store_register(self, store)
                                            : LOOM_ENOSYS;
}
/* Loads the request's session, then calls fn (on the loop thread; at once
 * when it is already loaded). Return LOOM_PENDING from the handler and answer
 * from fn. LOOM_ESTATE when sessions are not configured (no keys or store).
 * (1.3) fn's status is 0, or LOOM_EUNAVAIL when the store could not answer
 * (the reason is logged): there is then no session -- loom_session_get gives
 * an empty object that cannot be changed (loom_session_set and the others
 * return LOOM_EUNAVAIL), nothing is saved and no cookie is sent. Answer 503;
 * a response below 400 is replaced by a 503 before it is sent, so nothing
 * that needed the session passes for a success. */
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
 * json is NULL. LOOM_EINVAL for invalid JSON, LOOM_ELIMIT beyond max_size,
 * LOOM_ESTATE before the load, during a loom_session_save or once the
 * response is saved, (1.3) LOOM_EUNAVAIL when the store failed to load it.
 * The same results apply to regenerate and invalidate. */
static inline int32_t loom_session_set(loom_req *req, const char *key, const char *json, size_t len)
{
    return LOOM_HAS(session_set) ? loom__host_api->session_set(req, key, json, len) : LOOM_ENOSYS;
}
/* Login: a new session ID for the same data (the old ID is deleted; (1.3)
 * with a versioned store only if nobody changed it meanwhile -- otherwise
 * the changes merge as for a save, or it is a conflict). */
static inline int32_t loom_session_regenerate(loom_req *req)
{
    return LOOM_HAS(session_regenerate) ? loom__host_api->session_regenerate(req) : LOOM_ENOSYS;
}
/* Logout: empties the session, deletes it from the store (whatever other
 * requests wrote to it meanwhile), expires the cookie. */
static inline int32_t loom_session_invalidate(loom_req *req)
{
    return LOOM_HAS(session_invalidate) ? loom__host_api->session_invalidate(req) : LOOM_ENOSYS;
}
/* 1 when the request came without a valid session (a fresh one), 0 if not. */
static inline int32_t loom_session_is_new(loom_req *req)
{
    return LOOM_HAS(session_is_new) ? loom__host_api->session_is_new(req) : LOOM_ENOSYS;
}

/* ---- 1.2: TLS ------------------------------------------------------------------
 * Whether a request came over TLS, and what was negotiated. Strings are
 * copied into the request: they live until its response is done. */

/* "https" for a request that came over TLS, "http" otherwise (also for an
 * HTTP/2 stream: the scheme of its connection). NULL on a 1.1 host. */
static inline const char *loom_req_scheme(loom_req *req)
{
    return LOOM_HAS(req_scheme) ? loom__host_api->req_scheme(req) : NULL;
}
/* One fact about the request's TLS connection (`what` is a LOOM_TLS_*
 * value), or NULL: not over TLS, not known (no SNI, no ALPN), no client
 * certificate (for the LOOM_TLS_CLIENT_* facts but LOOM_TLS_CLIENT_VERIFY,
 * which then says "NONE"), the client already gone, or a 1.1 host. A client
 * certificate is only ever reported verified: a listener with
 * "verify_client" refuses a handshake with a certificate that fails. */
static inline const char *loom_req_tls(loom_req *req, int32_t what)
{
    return LOOM_HAS(req_tls) ? loom__host_api->req_tls(req, what) : NULL;
}

/* ---- 1.3: sessions without lost updates ------------------------------------ */

/* Commits the session's changes now (see "Concurrent requests" above) and
 * then calls fn on the loop thread (at once when there is nothing to write
 * or the store answers at once) with:
 *   0               written (or nothing to write); loom_session_get shows the
 *                   session as stored now, and its cookie is set on the
 *                   response (unless the head is out);
 *   LOOM_ECONFLICT  another request changed a key that this one changed, or
 *                   deleted the session, since it was loaded. Nothing was
 *                   written; the session now holds what is stored (a fresh
 *                   empty one when it was deleted) without this request's
 *                   changes: read it again, make the change again, commit
 *                   again -- a bounded number of times, then answer 409;
 *   LOOM_EUNAVAIL   the store could not answer (logged): answer 503.
 * While the commit runs the session cannot be changed (LOOM_ESTATE). After
 * fn, it may be changed and committed again; what is still uncommitted when
 * the response is done is saved then. A response below 400 is replaced (409
 * or 503) when the last commit failed and none succeeded after it. Returns
 * LOOM_ESTATE when the session is not loaded or a commit is running,
 * LOOM_EUNAVAIL when the store failed to load it, LOOM_EGONE when the client
 * left; fn is not called then. On a 1.1 host: LOOM_ENOSYS (the session is
 * saved when the response is done). */
static inline int32_t loom_session_save(loom_req *req, loom_session_fn fn, void *ud)
{
    return LOOM_HAS(session_save) ? loom__host_api->session_save(req, fn, ud) : LOOM_ENOSYS;
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
/* Changes the events watched (0: none, the watcher stays). After the
 * callback was told an error the watcher watches none, so passing the same
 * events as before starts it again. Returns 0, or LOOM_EINVAL (stopped
 * watcher, or the descriptor cannot be polled). */
static inline int32_t loom_io_update(loom_io *io, int32_t events)
{
    return LOOM_HAS(io_update) ? loom__host_api->io_update(io, events) : LOOM_ENOSYS;
}
/* Stops and frees the watcher; its callback does not run again. */
static inline void loom_io_stop(loom_io *io)
{
    if (LOOM_HAS(io_stop)) loom__host_api->io_stop(io);
}

/* ---- 1.4: services between plugins ------------------------------------------
 * A plugin offers an API to other plugins (a database pool, a cache, a
 * pub/sub channel) as a named, versioned service: a function table of its
 * own, registered in init. Other plugins look it up per request.
 *
 * Lifetimes: a lookup resolves in the registry snapshot the request pinned
 * when it started, and that snapshot holds the provider instance loaded.
 * So the table, and everything the provider hands out for the request,
 * stay valid until the request is done, even when the provider is replaced
 * or removed meanwhile: in-flight requests finish on the old provider, new
 * requests see the new one (or none). Do not keep a table past the request
 * it was looked up for (not in a static, not from init): the next request
 * may need another one. A provider that holds something for a request
 * (a connection, a query) learns when the client leaves and when the
 * request is released through loom_req_watch, and gives it back then. */

/* Offers a service; only during init. Returns 0, LOOM_EINVAL (bad name,
 * version 0, no table or a table whose size is < 4, or the same name twice
 * in this plugin), LOOM_ESTATE (not in init). Two loaded plugins offering
 * the same name is a load error, like two middleware with one name. */
static inline int32_t loom_service_register(loom_plugin *self, const loom_service_def *def)
{
    return LOOM_HAS(service_register) ? loom__host_api->service_register(self, def) : LOOM_ENOSYS;
}
/* The table of service `name` with version >= min_version, in the request's
 * snapshot, or NULL (none loaded, or too old; or a 1.1 host). *version (may
 * be NULL) gets the provider's version. Valid until the request is done. */
static inline const void *loom_service_get(loom_req *req, const char *name, uint32_t min_version,
                                           uint32_t *version)
{
    return LOOM_HAS(service_get) ? loom__host_api->service_get(req, name, min_version, version)
                                 : NULL;
}
/* Whether a service table has entry `field` (a member of its struct type):
 * its size covers it. */
#define LOOM_SERVICE_HAS(table, type, field)                                                       \
    ((table) && offsetof(type, field) + sizeof(((type *)0)->field) <= *(const uint32_t *)(table))

/* Calls fn(req, LOOM_REQ_ABORTED, ud) if the client leaves before the
 * response is done (after the plugin's loom_req_on_abort callback, and only
 * if that did not answer), and fn(req, LOOM_REQ_DONE, ud) when the request
 * is released (answered, and for an aborted request, answered too). Any
 * number of watchers; they run in the order they were added. Meant for
 * services: a watcher must not answer the request on LOOM_REQ_DONE, and
 * should release what it held for the request. Returns 0, LOOM_EGONE (the
 * client already left; fn will only see LOOM_REQ_DONE), LOOM_ESTATE (already
 * answered; fn is not registered), LOOM_ENOMEM. */
static inline int32_t loom_req_watch(loom_req *req, loom_req_watch_fn fn, void *ud)
{
    return LOOM_HAS(req_watch) ? loom__host_api->req_watch(req, fn, ud) : LOOM_ENOSYS;
}

/* ---- 1.5: compression and Server-Sent Events ----------------------------------
 * Each wrapper returns LOOM_ENOSYS (or NULL, 0, -1) on an older host. */

/* Installs a body filter on the response (see loom_body_filter; *filter is
 * copied). One filter per response. Returns 0, LOOM_ESTATE when the head is
 * already out or a filter is installed, LOOM_EINVAL for a bad struct. */
static inline int32_t loom_resp_filter(loom_req *req, const loom_body_filter *filter)
{
    return LOOM_HAS(resp_filter) ? loom__host_api->resp_filter(req, filter) : LOOM_ENOSYS;
}
/* The size of the response body as it stands: the buffered body's length, a
 * file body's length, or -1 when the body is streamed (or the host is old). */
static inline int64_t loom_resp_body_size(loom_req *req)
{
    return LOOM_HAS(resp_body_size) ? loom__host_api->resp_body_size(req) : -1;
}
/* loom_route_add with LOOM_ROUTE_* flags. With LOOM_ROUTE_DECODE_BODY, a
 * request body with Content-Encoding gzip, br or zstd is decoded before the
 * handler runs (the handler sees the decoded body and no Content-Encoding);
 * client_max_size bounds the decoded size (413), a corrupt body gets 400 and
 * another coding 415, all before the handler. */
static inline int32_t loom_route_add_flags(loom_plugin *self, const char *method,
                                           const char *pattern, loom_handler_fn fn, void *ud,
                                           const char *name, uint32_t flags)
{
    return LOOM_HAS(route_add_flags)
               ? loom__host_api->route_add_flags(self, method, pattern, fn, ud, name, flags)
               : LOOM_ENOSYS;
}
/* Opens an event stream on the request (opts may be NULL for the defaults):
 * sends a 200 head with Content-Type: text/event-stream (headers set before
 * stay; the response phase of the middleware runs first) and takes the
 * request over: return LOOM_PENDING from the handler. The stream lives until
 * loom_sse_close, or until opts->on_close reports its end (the client left,
 * the server stops); no request deadline applies to it meanwhile. A comment
 * line goes out after keepalive_ms of silence. Returns NULL when the head is
 * already out, the request was answered or its client is gone: the request
 * is then still the caller's (answer it, e.g. with loom_resp_error). */
static inline loom_sse *loom_sse_open(loom_req *req, const loom_sse_opts *opts)
{
    return LOOM_HAS(sse_open) ? loom__host_api->sse_open(req, opts) : NULL;
}
/* Sends one event (its text is built, passed through the response's body
 * filter, and flushed). Returns 0; LOOM_EINVAL for CR or LF in event or id;
 * LOOM_ELIMIT when the bytes still waiting for the client would pass
 * max_queued (nothing is sent: the client reads too slowly); LOOM_EGONE when
 * the client left. */
static inline int32_t loom_sse_send(loom_sse *s, const loom_sse_event *ev)
{
    return LOOM_HAS(sse_send) ? loom__host_api->sse_send(s, ev) : LOOM_ENOSYS;
}
/* A convenience: sends an event with only data (and an event type, or NULL). */
static inline int32_t loom_sse_send_data(loom_sse *s, const char *event, const char *data,
                                         size_t len)
{
    loom_sse_event ev = {sizeof(loom_sse_event), 0, event, NULL, 0, data, len};
    return loom_sse_send(s, &ev);
}
/* Ends the stream (the response ends; on_close is not called) and frees the
 * handle. Returns 0 or LOOM_EGONE (the client had left). */
static inline int32_t loom_sse_close(loom_sse *s)
{
    return LOOM_HAS(sse_close) ? loom__host_api->sse_close(s) : LOOM_ENOSYS;
}
/* The Last-Event-ID the client sent on (re)connecting, or NULL. Valid as
 * long as the stream. */
static inline const char *loom_sse_last_event_id(loom_sse *s, size_t *len)
{
    return LOOM_HAS(sse_last_event_id) ? loom__host_api->sse_last_event_id(s, len) : NULL;
}
/* Bytes of this stream's connection not yet taken by the client's socket. */
static inline uint64_t loom_sse_queued(loom_sse *s)
{
    return LOOM_HAS(sse_queued) ? loom__host_api->sse_queued(s) : 0;
}
/* Requests this worker process has received since it started. */
static inline uint64_t loom_server_requests(loom_plugin *self)
{
    return LOOM_HAS(server_requests) ? loom__host_api->server_requests(self) : 0;
}

/* How acceptable content coding `coding` (e.g. "gzip", "identity") is to
 * the client, from its Accept-Encoding fields (RFC 9110 §12.5.3): the
 * q-value times 1000 (0 = not acceptable). A coding not listed takes the q of
 * "*"; identity is acceptable unless excluded by "identity;q=0" or by "*;q=0"
 * without an identity entry. No Accept-Encoding field: only identity (1000).
 * Built on loom_req_header_n only (no table entry). */
static inline int32_t loom_accept_encoding(loom_req *req, const char *coding)
{
    size_t cl = 0, vl;
    while (coding[cl]) cl++;
    int is_identity = cl == 8;
    for (size_t i = 0; i < 8 && is_identity; i++) is_identity = coding[i] == "identity"[i];
    int32_t q_coding = -1, q_star = -1, any = 0;
    const char *v;
    for (uint32_t idx = 0; (v = loom_req_header_n(req, "Accept-Encoding", idx, &vl)) != NULL;
         idx++) {
        any = 1;
        size_t i = 0;
        while (i < vl) {
            while (i < vl && (v[i] == ' ' || v[i] == '\t' || v[i] == ',')) i++;
            size_t ts = i;
            while (i < vl && v[i] != ',' && v[i] != ';' && v[i] != ' ' && v[i] != '\t') i++;
            size_t tl = i - ts;
            int32_t q = 1000;
            while (i < vl && v[i] != ',') {
                /* parameters: only q counts */
                while (i < vl && (v[i] == ' ' || v[i] == '\t' || v[i] == ';')) i++;
                if (i + 1 < vl && (v[i] == 'q' || v[i] == 'Q') && v[i + 1] == '=') {
                    i += 2;
                    int32_t w = 0, scale = 1000;
                    if (i < vl && v[i] >= '0' && v[i] <= '1') w = (v[i++] - '0') * 1000;
                    if (i < vl && v[i] == '.') {
                        i++;
                        for (int d = 0; d < 3 && i < vl && v[i] >= '0' && v[i] <= '9'; d++)
                            w += (v[i++] - '0') * (scale /= 10);
                    }
                    q = w > 1000 ? 1000 : w;
                }
                while (i < vl && v[i] != ',' && v[i] != ';') i++;
            }
            if (tl == 0) continue;
            if (tl == 1 && v[ts] == '*') {
                q_star = q;
                continue;
            }
            if (tl != cl) continue;
            int same = 1;
            for (size_t k = 0; k < tl && same; k++) {
                char a = v[ts + k], b = coding[k];
                if (a >= 'A' && a <= 'Z') a = (char)(a + 32);
                if (b >= 'A' && b <= 'Z') b = (char)(b + 32);
                same = a == b;
            }
            if (same) q_coding = q;
        }
    }
    if (q_coding >= 0) return q_coding;
    if (is_identity) return q_star == 0 ? 0 : 1000;
    if (!any) return 0;
    return q_star > 0 ? q_star : 0;
}

/* ---- 1.7: WebSocket -------------------------------------------------------
 * A handler upgrades its request with loom_ws_accept; from then on the
 * connection carries whole messages both ways through the callbacks of
 * loom_ws_opts, with the protocol's rules (masking, fragments, control
 * frames, UTF-8, close codes) kept by loom. Every call here runs on the loop
 * thread: from a callback, a timer, a thread-pool job's done or a fetch's
 * callback. A handle is valid from on_open (or loom_ws_accept's *out) until
 * on_close returns.
 *
 * Hot reload: an open WebSocket stays with the version of the plugin that
 * accepted it, which stays loaded while it lives; new upgrades go to the new
 * version. ws_drain_timeout (config, 60 s) after the version was replaced,
 * its WebSockets that are still open are closed with LOOM_WS_GOING_AWAY. A
 * graceful stop closes every WebSocket with LOOM_WS_GOING_AWAY and waits for
 * the close handshakes within shutdown_timeout.
 *
 * Channels: loom_ws_subscribe puts a connection on a named channel;
 * loom_ws_publish reaches every subscriber in every worker of the server
 * and, with "ws_pubsub": {"redis": "HOST:PORT"} in the config, on every
 * server that shares that Redis. */

/* Answers the WebSocket handshake of `req` (RFC 6455 §4.2): a 101 when the
 * request is a valid version-13 upgrade whose Origin is allowed, and the
 * connection then carries the WebSocket. Middleware has run on the request
 * like on any other, and the response phase runs on the 101 (headers such as
 * Set-Cookie go out with it). Returns:
 *   0              switched (or switching: a session being saved may delay
 *                  the 101); *out (may be NULL) is the handle; on_open
 *                  follows, or on_close with LOOM_WS_ABNORMAL if the client
 *                  left first. The handler returns LOOM_DONE. `req` is
 *                  released with the 101: copy what the connection needs
 *                  (a room, a user) into opts->ud before.
 *   LOOM_EBADREQ   refused, and already answered: 400 (not a GET, not HTTP/1.1,
 *                  no "Upgrade: websocket", a missing or malformed key, a body),
 *                  426 with Sec-WebSocket-Version: 13 (another version), 403
 *                  (an Origin not allowed), 503 (the server is stopping).
 *                  The handler returns LOOM_DONE.
 *   LOOM_EINVAL, LOOM_ESTATE  bad options, or the request was answered
 *                  already: nothing was sent.
 *   LOOM_ENOSYS    a host before 1.2. */
static inline int32_t loom_ws_accept(loom_plugin *self, loom_req *req, const loom_ws_opts *opts,
                                     loom_ws **out)
{
    return LOOM_HAS(ws_accept) ? loom__host_api->ws_accept(self, req, opts, out) : LOOM_ENOSYS;
}
/* Sends a whole message: LOOM_WS_TEXT (must be UTF-8: LOOM_EINVAL if not),
 * LOOM_WS_BINARY, or LOOM_WS_PING / LOOM_WS_PONG (at most 125 bytes). Copied.
 * Returns 0; LOOM_ELIMIT when the queue already holds more than
 * send_queue_limit with it (nothing queued; on_drain tells when it emptied:
 * drop, retry, or close with LOOM_WS_TRY_AGAIN / LOOM_WS_POLICY); LOOM_ESTATE
 * when the connection is closing or closed. */
static inline int32_t loom_ws_send(loom_ws *ws, int32_t type, const void *data, size_t len)
{
    return LOOM_HAS(ws_send) ? loom__host_api->ws_send(ws, type, data, len) : LOOM_ENOSYS;
}
static inline int32_t loom_ws_send_text(loom_ws *ws, const char *text)
{
    size_t n = 0;
    while (text[n]) n++;
    return loom_ws_send(ws, LOOM_WS_TEXT, text, n);
}
/* Starts the close handshake with `code` (1000, 3000-4999, or another the
 * RFC lets an endpoint send; 0 = no code) and `reason` (UTF-8, at most 123
 * bytes; NULL = none). on_close follows with the peer's answer, or after
 * close_timeout. LOOM_EINVAL for a bad code or reason, LOOM_ESTATE when
 * already closing. */
static inline int32_t loom_ws_close(loom_ws *ws, int32_t code, const char *reason)
{
    return LOOM_HAS(ws_close) ? loom__host_api->ws_close(ws, code, reason) : LOOM_ENOSYS;
}
/* The connection's own pointer for the plugin (NULL until set). */
static inline void loom_ws_set_user(loom_ws *ws, void *user)
{
    if (LOOM_HAS(ws_set_user)) loom__host_api->ws_set_user(ws, user);
}
static inline void *loom_ws_user(loom_ws *ws)
{
    return LOOM_HAS(ws_user) ? loom__host_api->ws_user(ws) : NULL;
}
/* The subprotocol chosen in the handshake, or NULL. Valid as the handle. */
static inline const char *loom_ws_protocol(loom_ws *ws)
{
    return LOOM_HAS(ws_protocol) ? loom__host_api->ws_protocol(ws) : NULL;
}
/* Bytes queued for the peer and not yet taken by the socket. */
static inline uint64_t loom_ws_queued(loom_ws *ws)
{
    return LOOM_HAS(ws_queued) ? loom__host_api->ws_queued(ws) : 0;
}
/* Puts the connection on channel `channel` (1..256 bytes; any number of
 * channels per connection). It leaves every channel when it closes. Returns
 * 0 (also when already subscribed), LOOM_EINVAL, LOOM_ENOMEM, LOOM_ESTATE. */
static inline int32_t loom_ws_subscribe(loom_ws *ws, const char *channel)
{
    return LOOM_HAS(ws_subscribe) ? loom__host_api->ws_subscribe(ws, channel) : LOOM_ENOSYS;
}
/* Takes the connection off `channel`. Returns 0 or LOOM_ENOTFOUND. */
static inline int32_t loom_ws_unsubscribe(loom_ws *ws, const char *channel)
{
    return LOOM_HAS(ws_unsubscribe) ? loom__host_api->ws_unsubscribe(ws, channel) : LOOM_ENOSYS;
}
/* Sends a message (LOOM_WS_TEXT or LOOM_WS_BINARY) to every subscriber of
 * `channel`: in this worker at once, in the server's other workers and (with
 * ws_pubsub) on other servers as soon as they read it. The frame is built
 * once for all. A subscriber whose send queue is full misses it (its
 * on_error hears LOOM_ELIMIT). Returns 0, LOOM_EINVAL (bad channel, text not
 * UTF-8), LOOM_ENOMEM. */
static inline int32_t loom_ws_publish(loom_plugin *self, const char *channel, int32_t type,
                                      const void *data, size_t len)
{
    return LOOM_HAS(ws_publish) ? loom__host_api->ws_publish(self, channel, type, data, len)
                                : LOOM_ENOSYS;
}
/* Opens a client WebSocket to `url` (ws:// or wss://, verified against the
 * system's CAs) on the worker's loop, with
 * the same callbacks and calls as an accepted one (opts->protocols is
 * offered, opts->allowed_origins is sent as Origin, opts->headers are added).
 * Failures to connect come through on_error (a LOOM_FETCH_E_* code) and
 * on_close. Closed without callbacks when the plugin is unloaded. Returns
 * the handle, or NULL for a bad URL or options (nothing is called). */
static inline loom_ws *loom_ws_connect(loom_plugin *self, const char *url, const loom_ws_opts *opts)
{
    return LOOM_HAS(ws_connect) ? loom__host_api->ws_connect(self, url, opts) : NULL;
}

#ifdef __cplusplus
}
#endif
#endif /* LOOM_LOOM_H */
