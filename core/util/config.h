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

typedef struct {
    char *host;        /* listen address (IPv4 or IPv6 literal) */
    int port;          /* listen port */
    char *plugins_dir; /* where *.so plugins are loaded from; NULL = none */
    int workers;       /* worker processes; 0 = one per CPU */
    char *access_log;  /* NULL = off, "-" = stdout, else a file path */
    int log_level;     /* LOOM_LOG_* */
    char *pid_file;    /* NULL = none */

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
    int admin;                /* serve GET /_loom/plugins */
    int io;                   /* LOOM__IO_*: how connections do their I/O */
    size_t io_recv_buffers;   /* io_uring: 4 KiB receive buffers per worker (a power of two) */
} loom__config;

/* "io": io_uring when the kernel allows it, else epoll (auto); io_uring or
 * refuse to start (uring); epoll always (epoll). */
enum { LOOM__IO_AUTO, LOOM__IO_URING, LOOM__IO_EPOLL };

/* Fills `c` with the defaults. */
void loom__config_defaults(loom__config *c);
/* Reads the JSON file at `path` over the current values. Returns 0, or -1
 * with a one-line reason in `err` (which names the file and the key). */
int loom__config_load(loom__config *c, const char *path, char *err, size_t errlen);
/* Sets one key from a string (as a CLI flag gives it), with the same checks
 * as the file. Returns 0 or -1 with the reason in `err`. */
int loom__config_set(loom__config *c, const char *key, const char *value, char *err, size_t errlen);
/* Releases what the config owns. */
void loom__config_free(loom__config *c);

#endif
