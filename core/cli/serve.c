/* `loom serve`: read the configuration, bind, and run the server. */
#include "cli/cli.h"
#include "cli/serve_ops.h"
#include "http/response.h"
#include "plugin/host.h"
#include "pubsub/bus.h"
#include "pubsub/pubsub.h"
#include "server/access_log.h"
#include "server/listen.h"
#include "server/master.h"
#include "server/server.h"
#include "server/uring.h"
#include "tls/server.h"
#include "tls/tickets.h"
#include "util/config.h"
#include "util/log.h"
#include "ws/endpoint.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

static const char serve_usage[] =
    "usage: loom serve [options]\n"
    "\n"
    "Serve HTTP/1.1 with the plugins found in the plugins directory.\n"
    "\n"
    "options (each overrides the config file):\n"
    "  --config FILE        read settings from a JSON file (keys below)\n"
    "  --host ADDR          listen address, IPv4 or IPv6 literal (default 127.0.0.1)\n"
    "  --port N             listen port (default 8080; 0 picks a free one)\n"
    "  --listen HOST:PORT[:tls]  listen there, plaintext or HTTPS; repeat for several\n"
    "                       addresses (replaces --host/--port; IPv6: [::1]:8443:tls)\n"
    "  --tls-cert FILE      certificate chain (PEM) of the TLS listeners (tls.cert)\n"
    "  --tls-key FILE       its private key (PEM) (tls.key); `loom dev-cert` makes a pair\n"
    "  --plugins-dir DIR    load *.so plugins from DIR\n"
    "  --workers N          worker processes (default 0 = one per CPU)\n"
    "  --single             one process, no master (for debuggers and tests)\n"
    "  --access-log FILE    Combined Log Format access log; '-' for stdout (default off)\n"
    "  --error-log FILE     write the error log to FILE instead of stderr\n"
    "  --admin HOST:PORT    serve metrics, the dashboard and status on an admin listener\n"
    "  --pid-file FILE      write the server's pid to FILE\n"
    "  --log-level LEVEL    error, warn, info (default) or debug\n"
    "  --set KEY=VALUE      set any config key, e.g. --set header_timeout=5\n"
    "  -h, --help           show this help\n"
    "\n"
    "config keys (JSON; times in seconds, sizes in bytes):\n"
    "  host, port, plugins_dir, workers, access_log, pid_file, log_level,\n"
    "  access_log_format (\"combined\"; \"combined_tls\": with TLS protocol and cipher;\n"
    "    \"json\": one object per line with timings, route pattern and plugin),\n"
    "  listen ([{\"host\", \"port\", \"tls\", \"redirect_to_https\", \"http2\", \"h2c\",\n"
    "    \"client_ca\", \"verify_client\": \"off\"|\"optional\"|\"require\"}] or\n"
    "    [\"HOST:PORT[:tls]\"]),\n"
    "  tls ({\"cert\", \"key\", \"certs\": [{\"names\", \"cert\", \"key\"}], ...}: see README),\n"
    "  handshake_timeout (10),\n"
    "  max_line_size (8190: 414 beyond), max_field_size (8190: 431 beyond),\n"
    "  max_headers (128: 431 beyond), client_max_size (1048576: 413 beyond),\n"
    "  max_pipeline (262144 bytes of queued pipelined requests per connection),\n"
    "  max_connections (20000 per worker),\n"
    "  header_timeout (60), request_timeout (300), read_timeout (60): 408 when exceeded,\n"
    "  write_timeout (60), keepalive_timeout (75), shutdown_timeout (60), linger_timeout (2),\n"
    "  on_plugin_error (\"fail\" or \"skip\"), admin (false), plugin_order ([names]),\n"
    "  io (\"auto\": io_uring where the kernel allows it, else epoll; \"uring\"; \"epoll\"),\n"
    "  io_recv_buffers (256 receive buffers of 4 KiB per worker on io_uring; rounded up\n"
    "    to a power of two; more for many connections sending at once),\n"
    "  http2_max_streams (100: SETTINGS_MAX_CONCURRENT_STREAMS of each HTTP/2 connection),\n"
    "  plugins ({\"name\": {\"enabled\": true, ...plugin config}}),\n"
    "  admin (false; true listens on 127.0.0.1:9090; {\"listen\": \"HOST:PORT\", \"token\":\n"
    "    \"...\"}: Prometheus /metrics, the dashboard at /, /api/status; an address that is\n"
    "    not loopback needs a token),\n"
    "  error_log (stderr; a file is reopened on SIGUSR1),\n"
    "  ws_drain_timeout (60: a replaced plugin's open WebSockets get this long, then 1001),\n"
    "  ws_pubsub ({\"redis\": \"HOST:PORT\"} or {\"redis\": {\"host\", \"port\", \"prefix\",\n"
    "    \"password\"}}: WebSocket channels shared with every server on that Redis)\n"
    "\n"
    "signals: SIGTERM, SIGINT graceful stop (a second SIGINT: at once); SIGHUP rescans\n"
    "plugins, reloads TLS certificates and reads log_level again from the config file;\n"
    "SIGUSR1 reopens the log files (after a rotation).\n"
    "systemd: Type=notify readiness (NOTIFY_SOCKET) and socket activation (LISTEN_FDS,\n"
    "matched to the listeners by address) work when systemd provides them.\n";

static void builtin_hello(loom__worker *w, loom_req *r)
{
    (void)w;
    if (r->path_len == 1 && r->path[0] == '/') {
        if (r->method_id == 1 /* GET */ || r->method_id == 2 /* HEAD */) {
            r->resp.status = 200;
            loom__resp_header_add(r, "Content-Type", 12, "text/plain; charset=utf-8", 25);
            loom__resp_body_take(r, "Hello, World!", 13, NULL);
        } else {
            r->resp.status = 405;
            loom__resp_header_add(r, "Allow", 5, "GET, HEAD", 9);
            loom__resp_body_take(r, "405: Method Not Allowed", 23, NULL);
        }
    } else {
        r->resp.status = 404;
        loom__resp_header_add(r, "Content-Type", 12, "text/plain; charset=utf-8", 25);
        loom__resp_body_take(r, "404: Not Found", 14, NULL);
    }
    loom__req_finish(r);
}

static void stop_host(loom__worker *w)
{
    loom__host_stop(w->host);
    loom__pubsub_stop();
}

static void stop_no_host(loom__worker *w)
{
    (void)w;
    loom__pubsub_stop();
}

static void close_walk(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h)) uv_close(h, NULL);
}

static const struct {
    const char *flag, *key;
} flag_keys[] = {
    {"--host", "host"},
    {"--port", "port"},
    {"--plugins-dir", "plugins_dir"},
    {"--workers", "workers"},
    {"--access-log", "access_log"},
    {"--pid-file", "pid_file"},
    {"--log-level", "log_level"},
    {"--listen", "listen"},
    {"--error-log", "error_log"},
    {"--admin", "admin"},
    {"--tls-cert", "tls_cert"},
    {"--tls-key", "tls_key"},
};

static int parse_args(loom__config *cfg, int argc, char **argv, int *single)
{
    char err[512];
    /* The file first, so that every flag overrides it whatever the order. */
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--config") == 0) {
            if (i + 1 >= argc) {
                fprintf(stderr, "loom serve: --config needs a file name\n");
                return -1;
            }
            if (loom__config_load(cfg, argv[i + 1], err, sizeof err)) {
                fprintf(stderr, "loom serve: config %s\n", err);
                return -1;
            }
        }
    }
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--config") == 0) {
            i++;
            continue;
        }
        if (strcmp(a, "--single") == 0) {
            *single = 1;
            continue;
        }
        const char *key = NULL;
        for (size_t k = 0; k < sizeof flag_keys / sizeof flag_keys[0]; k++)
            if (strcmp(a, flag_keys[k].flag) == 0) key = flag_keys[k].key;
        if (key || strcmp(a, "--set") == 0) {
            if (i + 1 >= argc) {
                fprintf(stderr, "loom serve: %s needs a value\n", a);
                return -1;
            }
            const char *v = argv[++i];
            char kbuf[64];
            if (!key) {
                const char *eq = strchr(v, '=');
                if (!eq || eq == v || (size_t)(eq - v) >= sizeof kbuf) {
                    fprintf(stderr, "loom serve: --set wants KEY=VALUE, got '%s'\n", v);
                    return -1;
                }
                memcpy(kbuf, v, (size_t)(eq - v));
                kbuf[eq - v] = '\0';
                key = kbuf;
                v = eq + 1;
            }
            if (loom__config_set(cfg, key, v, err, sizeof err)) {
                fprintf(stderr, "loom serve: %s: %s\n", a, err);
                return -1;
            }
            continue;
        }
        fprintf(stderr, "loom serve: unknown option '%s' (see loom serve --help)\n", a);
        return -1;
    }
    return 0;
}

typedef struct {
    loom__config *cfg;
    loom__listen_set ls;
    int single, workers;
    loom__tls_server *tls; /* checked before binding; NULL without TLS listeners */
    loom__bus bus;         /* WebSocket broadcasts between workers (n = 0: one worker) */
    uint64_t instance;     /* this server, for Redis pub/sub (its own messages come back) */
    loom__serve_ops ops;   /* metrics, log files, systemd (serve_ops.h) */
} serve_ctx;

/* Said once every worker serves (plugins loaded), not before: a server
 * that refuses a bad plugin never claimed to listen. */
static void announce(void *arg)
{
    serve_ctx *sc = arg;
    for (int l = 0; l < sc->ls.nlisten; l++) {
        const loom__listen_cfg *lc = &sc->cfg->listen[l];
        int v6 = strchr(lc->host, ':') != NULL;
        loom__info("loom %s listening on %s://%s%s%s:%d/ (%s)", LOOM_VERSION,
                   lc->tls ? "https" : "http", v6 ? "[" : "", lc->host, v6 ? "]" : "",
                   sc->ls.ports[l],
                   lc->admin          ? "admin"
                   : sc->single       ? "single process"
                   : sc->workers == 1 ? "1 worker"
                                      : "workers");
    }
    char status[64];
    snprintf(status, sizeof status, "serving with %d worker%s", sc->workers,
             sc->workers == 1 ? "" : "s");
    loom__serve_ops_ready(&sc->ops, status);
}

/* The signals that stop or reload the server, or reopen its logs. */
static sigset_t *stop_signals(sigset_t *set)
{
    sigemptyset(set);
    sigaddset(set, SIGINT);
    sigaddset(set, SIGTERM);
    sigaddset(set, SIGQUIT);
    sigaddset(set, SIGHUP);
    sigaddset(set, SIGUSR1);
    return set;
}

/* One worker: its own loop, listeners, access log and plugin instances. */
static int run_worker(void *arg, int id, const int *fds, int ready_fd)
{
    serve_ctx *sc = arg;
    const loom__config *cfg = sc->cfg;
    char err[512];
    loom__access_log *alog = NULL;
    if (cfg->access_log &&
        !(alog = loom__access_log_open(cfg->access_log, cfg->access_log_format, err, sizeof err))) {
        loom__err("%s", err);
        return LOOM__EXIT_CONFIG;
    }
    uv_loop_t loop;
    uv_loop_init(&loop);
    loom__worker w;
    memset(&w, 0, sizeof w);
    /* Without a plugins directory a built-in page answers GET /, so a bare
     * `loom serve` shows that it works. */
    w.handle = builtin_hello;
    w.access_log = alog;
    if (sc->tls) {
        /* Built again from the files: a worker respawned after a reload
         * must not serve the certificates the master read at start. If the
         * files are broken now, the master's checked set serves. */
        w.tls = id > 0 || !sc->single ? loom__tls_server_new(cfg, err, sizeof err) : NULL;
        if (!w.tls) {
            if (!sc->single) loom__warn("TLS: %s; serving the certificates read at start", err);
            w.tls = sc->tls;
            loom__tls_server_ref(w.tls);
        }
    }
    int rc = LOOM__EXIT_CONFIG;
    if (loom__worker_init(&w, &loop, cfg, fds, id) < 0) goto out;
    w.on_stopped = stop_no_host;
    if (loom__pubsub_start(&loop, cfg, sc->bus.n ? &sc->bus : NULL, id, sc->instance)) goto out;
    if (ready_fd < 0) {
        /* --single: the loop's signal handlers are in place; a stop signal
         * held since the port was bound is delivered to them now. */
        sigset_t stops;
        sigprocmask(SIG_UNBLOCK, stop_signals(&stops), NULL);
    }
    loom__serve_ops_worker(&sc->ops, &w);
    if (cfg->plugins_dir) {
        if (!loom__host_start(&w, cfg)) goto out;
        w.handle = loom__dispatch;
        w.on_abort = loom__dispatch_abort;
        w.on_stopped = stop_host;
    }
    loom__serve_ops_serving(&w);
    if (ready_fd >= 0) {
        ssize_t wr = write(ready_fd, "r", 1);
        (void)wr;
        close(ready_fd);
    } else {
        announce(sc);
    }
    rc = loom__worker_run(&w);
    loom__info("stopped after %llu requests", (unsigned long long)w.requests);
out:
    if (rc == LOOM__EXIT_CONFIG) {
        loom__pubsub_stop();
        /* Close what init opened, so the loop can be closed cleanly. */
        uv_walk(&loop, close_walk, NULL);
        uv_run(&loop, UV_RUN_DEFAULT);
        loom__uring_close(&w);
    }
    uv_loop_close(&loop);
    loom__access_log_close(alog);
    loom__ws_thread_free();
    loom__serve_ops_worker_end(&w);
    return rc;
}

/* Writes this process's pid to `path` by a rename. Returns 0 or -1. */
static int write_pid_file(const char *path)
{
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.%d.tmp", path, (int)getpid());
    FILE *f = fopen(tmp, "w");
    if (!f) return -1;
    int ok = fprintf(f, "%d\n", (int)getpid()) > 0;
    ok &= fclose(f) == 0;
    if (!ok || rename(tmp, path) < 0) {
        unlink(tmp);
        return -1;
    }
    return 0;
}

int loom__cmd_serve(int argc, char **argv)
{
    for (int i = 0; i < argc; i++)
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            fputs(serve_usage, stdout);
            return 0;
        }
    loom__config cfg;
    loom__config_defaults(&cfg);
    int single = 0, rc = 2, opened = 0, pid_written = 0;
    serve_ctx sc;
    memset(&sc, 0, sizeof sc);
    if (parse_args(&cfg, argc, argv, &single)) goto out;
    loom__log_set_level(cfg.log_level);
    char err[512];
    if (cfg.access_log) {
        /* Opened here once only to report a bad path before binding. */
        loom__access_log *probe =
            loom__access_log_open(cfg.access_log, cfg.access_log_format, err, sizeof err);
        if (!probe) {
            fprintf(stderr, "loom serve: %s\n", err);
            goto out;
        }
        loom__access_log_close(probe);
    }
    if (loom__config_finish(&cfg, err, sizeof err)) {
        fprintf(stderr, "loom serve: %s\n", err);
        goto out;
    }
    int workers = cfg.workers ? cfg.workers : (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (workers < 1) workers = 1;
    if (single) workers = 1;
    cfg.workers = workers; /* from here on: the number that runs (a store may refuse > 1) */
    int any_tls = 0;
    for (size_t i = 0; i < cfg.nlisten; i++) any_tls |= cfg.listen[i].tls;
    if (any_tls) {
        uint64_t rot = loom__tls_server_ticket_rotation(&cfg);
        if (rot && loom__tickets_open(rot, err, sizeof err)) {
            fprintf(stderr, "loom serve: %s\n", err);
            goto out;
        }
        if (!(sc.tls = loom__tls_server_new(&cfg, err, sizeof err))) {
            fprintf(stderr, "loom serve: %s\n", err);
            goto out;
        }
    } else if (cfg.tls) {
        loom__warn("the \"tls\" section is not used: no listener has \"tls\": true");
    }
    sc.cfg = &cfg;
    sc.single = single;
    if (getrandom(&sc.instance, sizeof sc.instance, 0) != sizeof sc.instance)
        sc.instance = ((uint64_t)getpid() << 32) ^ (uint64_t)time(NULL);
    sc.workers = workers;
    /* Once the port accepts, a stop signal must stop us gracefully, not by
     * its default action: hold them until the master (sigtimedwait) or the
     * single worker (its loop's handlers) takes them. */
    sigset_t stops;
    sigprocmask(SIG_BLOCK, stop_signals(&stops), NULL);
    /* The pid file is whole before the port accepts: whoever sees the port
     * answer can read it (written under a temporary name, then renamed). */
    if (cfg.pid_file) {
        if (write_pid_file(cfg.pid_file) < 0) {
            fprintf(stderr, "loom serve: pid file '%s': cannot write\n", cfg.pid_file);
            goto out;
        }
        pid_written = 1;
    }
    /* Every worker gets its own socket per listener, all bound with
     * SO_REUSEPORT so the kernel spreads connections; port 0 binds the
     * first and reuses its port. */
    if (loom__listen_set_open(&sc.ls, &cfg, workers, !single, err, sizeof err)) {
        fprintf(stderr, "loom serve: %s\n", err);
        goto out;
    }
    opened = 1;
    if (loom__serve_ops_start(&sc.ops, &cfg, workers, err, sizeof err)) {
        fprintf(stderr, "loom serve: %s\n", err);
        goto out;
    }
    if (single) {
        rc = run_worker(&sc, 0, loom__listen_set_worker(&sc.ls, 0), -1);
        for (int l = 0; l < sc.ls.nlisten; l++) sc.ls.fds[l] = -1; /* the worker closed them */
        if (rc == LOOM__EXIT_CONFIG) rc = 1;
    } else {
        if (workers > 1 && loom__bus_create(&sc.bus, workers, err, sizeof err)) {
            fprintf(stderr, "loom serve: %s\n", err);
            goto out;
        }
        loom__info("starting %d worker%s", workers, workers == 1 ? "" : "s");
        loom__serve_ops_master(&sc.ops);
        rc = loom__master_run(&cfg, &sc.ls, run_worker, announce, &sc);
    }
out:
    loom__bus_free(&sc.bus);
    if (pid_written) unlink(cfg.pid_file);
    loom__serve_ops_end(&sc.ops);
    if (opened) loom__listen_set_free(&sc.ls);
    loom__tls_server_unref(sc.tls);
    loom__config_free(&cfg);
    return rc;
}
