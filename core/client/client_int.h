/* The client's internals, shared by the files in core/client/. The public API
 * is sdk/include/loom/client.h. */
#ifndef LOOM_CLIENT_CLIENT_INT_H
#define LOOM_CLIENT_CLIENT_INT_H

#include <loom/client.h>

#include <llhttp.h>
#include <stdint.h>
#include <uv.h>

#include "client/cookies.h"
#include "client/decode.h"
#include "client/url.h"
#include "tls/client.h"
#include "util/buf.h"

#define LOOM__CLIENT_MAX_LINE 8190
#define LOOM__CLIENT_MAX_HEADERS 128
#define LOOM__CLIENT_MAX_ADDRS 4
#define LOOM__CLIENT_DNS_MAX_ENTRIES 1000
#define LOOM__CLIENT_READ_BUF 65536

typedef struct loom__cconn loom__cconn;
typedef struct loom__hostpool loom__hostpool;
typedef struct loom__dns_entry loom__dns_entry;
typedef struct loom__dns_waiter loom__dns_waiter;
typedef struct loom__tlsconf loom__tlsconf;

/* ---- DNS (dns.c) ---- */

struct loom__dns_waiter {
    loom__dns_waiter *next, *prev;
    loom__dns_entry *entry; /* set while waiting */
    /* status: 0 or a libuv error; the addresses are in entry (valid during the call) */
    void (*cb)(loom__dns_waiter *w, int status, const struct sockaddr_storage *addrs,
               size_t naddrs);
};

struct loom__dns_entry {
    loom__dns_entry *next, *prev;
    loom_client *client;
    char *host;
    unsigned port;
    struct sockaddr_storage addrs[LOOM__CLIENT_MAX_ADDRS];
    size_t naddrs;
    uint64_t expires; /* loop time in ms; 0 = not resolved */
    int resolving;
    uv_getaddrinfo_t gai;
    loom__dns_waiter waiters; /* sentinel */
};

/* Resolves host:port, from the cache or with uv_getaddrinfo. Numeric
 * addresses answer at once. w->cb runs exactly once unless cancelled, maybe
 * before this returns. */
void loom__dns_resolve(loom_client *c, const char *host, unsigned port, loom__dns_waiter *w);
/* Stops waiting: w->cb will not run. */
void loom__dns_cancel(loom__dns_waiter *w);
/* Drops the cache and cancels lookups in flight (at client close). */
void loom__dns_shutdown(loom_client *c);

/* ---- pool (pool.c) ---- */

struct loom__hostpool {
    loom__hostpool *next;
    char *key;         /* scheme, host, port, TLS settings, proxy (loom__req's pool_key) */
    size_t nconns;     /* open connections (idle or busy) */
    loom__cconn *idle; /* most recently used first */
    loom__tls_session_slot slot; /* the TLS session to resume on the next connection */
};

struct loom__cconn {
    uv_tcp_t tcp;
    uv_connect_t connect_req;
    uv_write_t write_req;
    llhttp_t parser;
    loom_client *client;
    loom__hostpool *hp;
    loom__cconn *next, *prev; /* idle list */
    loom_client_request *req; /* the request using it; NULL when idle */
    loom__buf wbuf;
    loom__buf field, value; /* a response head's name/value (or reason) being read */
    uint64_t idle_since;
    unsigned requests; /* requests served so far */
    int connected, closing, writing;
    /* https (transport.c): ciphertext to send (tout) and being sent
     * (tsending); a CONNECT tunnel's answer (thead); decrypted bytes (plain) */
    int is_tls, tunneling, handshaking, tls_resumed;
    const char *tls_version;
    loom__tls tls;
    loom__buf tout, tsending, thead;
    char *plain;
    char rbuf[LOOM__CLIENT_READ_BUF];
};

/* Gets a connection for req (req->url) : an idle pooled one, a new one, or
 * queues req until one frees up. Calls loom__req_on_conn when it has one. */
void loom__pool_acquire(loom_client *c, loom_client_request *req);
/* Removes req from the wait queue, if queued. */
void loom__pool_unqueue(loom_client *c, loom_client_request *req);
/* Hands a connection back after a complete response: to the idle list when
 * `reuse`, else closes it. Detaches it from its request. */
void loom__pool_release(loom__cconn *conn, int reuse);
/* Closes a connection (detached from its request). */
void loom__cconn_close(loom__cconn *conn);
/* Closes idle connections and frees the host pools (at client close). */
void loom__pool_shutdown(loom_client *c);
/* Closes idle connections older than the keep-alive timeout. */
void loom__pool_sweep(loom_client *c);

/* ---- transport (transport.c): plain, TLS, CONNECT tunnels ---- */

/* The TCP connection is up: starts the tunnel and/or the TLS handshake,
 * or tells the request at once for plain http. */
void loom__conn_start(loom__cconn *conn);
/* Sends conn->wbuf (the request), encrypted on TLS connections. */
void loom__conn_send(loom__cconn *conn);
/* Bytes (or EOF/error) on a TLS or tunnelling connection. */
void loom__conn_on_bytes(loom__cconn *conn, ssize_t nread, const char *data);
/* Frees what the transport holds (at close). */
void loom__conn_free(loom__cconn *conn);

/* ---- TLS settings (client.c) ---- */

struct loom__tlsconf {
    loom__tlsconf *next;
    char *key;
    loom__tls_client_conf conf; /* strings owned */
    SSL_CTX *ctx;               /* made at first use */
    char *err;                  /* why ctx could not be made */
};

/* The shared settings object for `t` (NULL = the client's). NULL when out
 * of memory. */
loom__tlsconf *loom__client_tlsconf(loom_client *c, const loom_client_tls *t);
/* Makes conf's context if not yet tried. Returns it, or NULL (conf->err). */
SSL_CTX *loom__tlsconf_ctx(loom__tlsconf *tc);

/* ---- the client ---- */

struct loom_client {
    uv_loop_t *loop;
    /* settings, resolved */
    size_t limit, limit_per_host;
    uint64_t keepalive_ms, dns_ttl_ms;
    double total, connect, read; /* seconds, 0 = none */
    int raise_for_status, max_redirects, no_decompress, allow_downgrade;
    size_t max_body;
    char *user_agent;
    loom__tlsconf *tlsconfs; /* every distinct set of TLS settings; the first is the client's */
    size_t ntlsconfs;
    loom_cookie_jar *jar;            /* not owned */
    loom__proxy proxy;               /* config's proxy, for every URL */
    loom__proxy env_http, env_https; /* trust_env */
    char *no_proxy;
    char *proxy_err; /* a bad proxy setting: every request fails with it */
    int trust_env;   /* the default for requests */
    int env_loaded;  /* env_http, env_https, no_proxy read (at first need) */
    char *env_err;   /* a bad http_proxy/https_proxy */
    char **hnames, **hvalues;
    size_t nheaders;
    /* state */
    size_t refs; /* open handles and lookups; freed at 0 once closing */
    int closing;
    size_t nconns; /* open connections */
    size_t pending;
    loom__hostpool *pools;
    loom_client_request *queue_head, *queue_tail; /* waiting for a connection */
    loom_client_request *reqs;                    /* all pending requests */
    loom__dns_entry dns;                          /* sentinel */
    size_t ndns;
    uv_timer_t sweep;
    struct loom__wsc *wscs; /* WebSockets (ws.c), for loom_client_close */
};

void loom__client_unref(loom_client *c);
/* Reads http_proxy, https_proxy and no_proxy once. Returns 0, -1 (a bad
 * value: c->env_err) or -2 (out of memory). */
int loom__client_env_proxies(loom_client *c);

/* ---- requests (request.c) ---- */

typedef struct {
    char *name, *value;
} loom__kv;

struct loom_client_response {
    int error;
    int is_tls, tls_resumed;
    const char *tls_version; /* static (OpenSSL's) */
    char *message;
    int status;
    int version_minor;
    char *reason;
    char *request_url, *url;
    loom__kv *headers;
    size_t nheaders, cap_headers;
    loom__buf body;
    struct {
        char *url;
        int status;
    } * history;
    size_t nhistory;
    double elapsed;
};

enum {
    LOOM__REQ_START,
    LOOM__REQ_RESOLVING,
    LOOM__REQ_QUEUED,
    LOOM__REQ_CONNECTING,
    LOOM__REQ_SENT,
};

struct loom_client_request {
    loom_client *client;
    loom_client_request *next, *prev;   /* in client->reqs */
    loom_client_request *qnext, *qprev; /* in client->queue */
    int queued;
    loom_client_done_cb cb;
    void *ud;
    loom_client_response *resp;
    char *method;
    loom__url url;
    loom__kv *headers; /* merged default + request headers */
    size_t nheaders;
    char *body;
    size_t body_len;
    char *content_type;
    loom_client_chunk_cb on_chunk;
    void *chunk_ud;
    uint64_t total_ms, connect_ms, read_ms; /* 0 = none */
    int raise_for_status, max_redirects;
    int state;
    int retried;
    int pending_error; /* reported on the next timer tick */
    uint64_t start_ms;
    uint64_t total_deadline, phase_deadline; /* loop ms, 0 = none */
    uint64_t armed_at;                       /* when the timer is due, 0 = stopped */
    int phase_is_connect;
    uv_timer_t timer;
    int timer_closing;
    loom__dns_waiter dw;
    struct sockaddr_storage addrs[LOOM__CLIENT_MAX_ADDRS];
    size_t naddrs, addr_idx;
    loom__cconn *conn;
    /* parsing one response (the head's pieces collect in conn->field/value) */
    int in_value;
    int head_done, got_bytes, redirecting, skip_body, message_done, stop_err;
    char stop_msg[160];
    size_t raw_body;
    loom__decoder dec;
    int decoding;
    struct timespec t0;
    /* https, cookies, proxies */
    loom__tlsconf *tc;
    loom_cookie_jar *jar;
    int allow_downgrade;
    int trust_env;
    int own_proxy_set; /* opts.proxy given: own_proxy (maybe empty) replaces the client's */
    loom__proxy own_proxy;
    const loom__proxy *proxy; /* this hop's proxy, or NULL */
    char *pool_key;
};

/* The pool has a connection for req (connected or not). */
void loom__req_on_conn(loom_client_request *req, loom__cconn *conn);
/* The connection finished connecting (status 0) or failed (libuv error). */
void loom__req_on_connected(loom_client_request *req, int status);
/* Bytes (nread > 0) or EOF/error (nread < 0) on req's connection. */
void loom__req_on_read(loom_client_request *req, ssize_t nread, const char *data);
/* The request head/body write finished. */
void loom__req_on_written(loom_client_request *req, int status);
/* Completes req with `code` and a detail line (printf-style). */
void loom__req_fail(loom_client_request *req, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Fails req (at client close) with LOOM_CLIENT_E_CANCELLED. */
void loom__req_fail_cancelled(loom_client_request *req);
/* Empties the status, reason, headers and body (for the next response). */
void loom__resp_clear_head(loom_client_response *resp);
/* Allocates a response; NULL when out of memory. */
loom_client_response *loom__resp_new(void);

/* llhttp callbacks for responses (request.c) */
extern const llhttp_settings_t loom__client_parser_settings;

/* errors.c */
char *loom__errmsg(int code, const char *url, const char *detail);

#endif
