/* The server configuration: defaults, the JSON file, then CLI flags.
 *
 * Every key is checked when it is read: an unknown key, a value of the wrong
 * type or out of range is reported in one line that names the key, and the
 * server does not start. */
#ifndef LOOM_UTIL_CONFIG_H
#define LOOM_UTIL_CONFIG_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* "verify_client" of a TLS listener. */
enum { LOOM__VERIFY_OFF, LOOM__VERIFY_OPTIONAL, LOOM__VERIFY_REQUIRE };

/* One listening address ("listen": [{...}] or --listen HOST:PORT[:tls]). */
typedef struct {
    char *host;            /* IPv4 or IPv6 literal */
    int port;              /* 0 picks a free port */
    int tls;               /* HTTPS (needs the "tls" section) */
    int redirect_to_https; /* plaintext only: 308 to https; -1 = the first TLS listener's port */
    int http2;             /* offer HTTP/2 (ALPN h2; h2c where enabled); default on */
    int h2c;               /* plaintext: HTTP/2 with prior knowledge */
    char *client_ca;       /* TLS: CA file for client certificates (mTLS) */
    int verify_client;     /* TLS: LOOM__VERIFY_* */
    int admin;             /* the admin listener: its requests go to the admin handler */
} loom__listen_cfg;

#define LOOM__MAX_LISTEN 16

typedef struct {
    char *host;               /* the shorthand listener's address (IPv4 or IPv6 literal) */
    int port;                 /* ... and port */
    loom__listen_cfg *listen; /* every listener (after loom__config_finish) */
    size_t nlisten;
    int listen_set;             /* "listen" or --listen was given */
    int host_set;               /* "host"/"port" or --host/--port was given */
    json_t *tls;                /* the "tls" section, checked by core/tls; owned; NULL = none */
    uint64_t handshake_timeout; /* ms for a TLS handshake */
    char *plugins_dir;          /* where *.so plugins are loaded from; NULL = none */
    int workers;                /* worker processes; 0 = one per CPU */
    char *access_log;           /* NULL = off, "-" = stdout, else a file path */
    int access_log_format;      /* LOOM__ALOG_*: Combined, or Combined + TLS protocol and cipher */
    int log_level;              /* LOOM_LOG_* */
    char *pid_file;             /* NULL = none */

    /* Parser limits (aiohttp's defaults). */
    size_t max_line_size;   /* request line; over it: 414 */
    size_t max_field_size;  /* one header line; over it: 431 */
    size_t max_headers;     /* header count; over it: 431 */
    size_t client_max_size; /* request body; over it: 413 */
    size_t max_pipeline;    /* bytes of unhandled pipelined requests held per connection */
    size_t max_connections; /* per worker; more are accepted and closed at once */

    /* Timeouts, in milliseconds. */
    uint64_t header_timeout;    /* first byte of a request to the end of its header: 408 */
    uint64_t request_timeout;   /* first byte of a request to the end of its body: 408 */
    uint64_t read_timeout;      /* silence while a request is partly received: 408 */
    uint64_t write_timeout;     /* a response that the client does not read: close */
    uint64_t keepalive_timeout; /* idle between requests: close */
    uint64_t shutdown_timeout;  /* graceful stop: in-flight requests get this long */
    uint64_t linger_timeout;    /* after an error response: read and discard this long */

    int on_plugin_error_skip; /* 0 = refuse to start on a bad plugin, 1 = skip it */
    json_t *plugins;          /* "plugins": {"name": {...}}; owned; never NULL */
    json_t *plugin_order;     /* "plugin_order": ["a", ...] or NULL; owned */
    int admin;                /* the admin listener is on (the last entry of `listen`) */
    char *admin_listen;       /* its "HOST:PORT" (default LOOM__ADMIN_DEFAULT) */
    char *admin_token;        /* bearer token it requires, or NULL */
    char *error_log;          /* NULL = stderr, else a file (reopened on SIGUSR1) */
    char *config_path;        /* the file read (SIGHUP reads log_level from it again) */
    int log_level_flag;       /* log_level came from a flag, which SIGHUP leaves alone */
    int io;                   /* LOOM__IO_*: how connections do their I/O */
    size_t io_recv_buffers;   /* io_uring: 4 KiB receive buffers per worker (a power of two) */

    /* WebSocket. */
    uint64_t ws_drain_timeout; /* a reloaded plugin's open WebSockets get this long, then 1001 */
    /* "ws_pubsub": {"redis": "HOST:PORT" or {"host", "port", "prefix", "password"}}:
     * channels shared by every machine on that Redis. NULL host = off. */
    char *ws_pubsub_redis;          /* host */
    int ws_pubsub_redis_port;       /* 6379 */
    char *ws_pubsub_redis_prefix;   /* "loom:ws:" */
    char *ws_pubsub_redis_password; /* NULL = no AUTH */

    /* HTTP/2. */
    size_t http2_max_streams; /* HTTP/2: SETTINGS_MAX_CONCURRENT_STREAMS per connection */
} loom__config;

/* "admin": true listens here. */
#define LOOM__ADMIN_DEFAULT "127.0.0.1:9090"

/* "access_log_format": Combined, Combined + TLS protocol and cipher, JSON lines. */
enum { LOOM__ALOG_COMBINED, LOOM__ALOG_COMBINED_TLS, LOOM__ALOG_JSON };

/* "io": io_uring when the kernel allows it, else epoll (auto); io_uring or
 * refuse to start (uring); epoll always (epoll). */
enum { LOOM__IO_AUTO, LOOM__IO_URING, LOOM__IO_EPOLL };

/* Receives one problem (a line without newline); returns nonzero to stop
 * at this one. */
typedef int (*loom__config_report)(void *ud, const char *problem);

/* Fills `c` with the defaults. */
void loom__config_defaults(loom__config *c);
/* Reads the JSON file at `path` over the current values. Returns 0, or -1
 * with a one-line reason in `err` (which names the file and the key). */
int loom__config_load(loom__config *c, const char *path, char *err, size_t errlen);
/* As loom__config_load, but reports every problem of the file to `report`
 * (one line each, until it asks to stop) instead of the first. Returns the
 * number reported. */
int loom__config_load_each(loom__config *c, const char *path, loom__config_report report, void *ud);
/* Sets one key from a string (as a CLI flag gives it), with the same checks
 * as the file. Returns 0 or -1 with the reason in `err`. */
int loom__config_set(loom__config *c, const char *key, const char *value, char *err, size_t errlen);
/* Adds a listener from "HOST:PORT" or "HOST:PORT:tls" ("[::1]:8443:tls"
 * for IPv6), as --listen gives it. Returns 0 or -1 with the reason. */
int loom__config_add_listen(loom__config *c, const char *spec, char *err, size_t errlen);
/* Checks what single keys cannot: the listeners against host/port and the
 * "tls" section, and makes the shorthand listener when "listen" is absent.
 * Call once, after the file and the flags. Returns 0 or -1 with the reason. */
int loom__config_finish(loom__config *c, char *err, size_t errlen);
/* As loom__config_finish, reporting every problem. Returns their number. */
int loom__config_finish_each(loom__config *c, loom__config_report report, void *ud);
/* Whether `host` (an IPv4 or IPv6 literal) is a loopback address. */
int loom__is_loopback(const char *host);
/* Releases what the config owns. */
void loom__config_free(loom__config *c);

#endif
