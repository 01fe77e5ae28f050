/* Config keys are listed once, in a table, so the JSON reader, the CLI flags
 * and `--help` agree on names, types and ranges. */
#include "util/config.h"
#include "util/log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum kind {
    K_STR,
    K_STR_OR_NULL,
    K_INT,
    K_SIZE,
    K_MS,
    K_LEVEL,
    K_PLUGIN_ERR,
    K_BOOL,
    K_IO,
    K_ADMIN,
    K_ALOG
};

typedef struct {
    const char *name;
    enum kind kind;
    size_t off;
    double min, max;
} key_def;

#define OFF(f) offsetof(loom__config, f)
static const key_def keys[] = {
    {"host", K_STR, OFF(host), 0, 0},
    {"port", K_INT, OFF(port), 0, 65535},
    {"plugins_dir", K_STR_OR_NULL, OFF(plugins_dir), 0, 0},
    {"workers", K_INT, OFF(workers), 0, 1024},
    {"access_log", K_STR_OR_NULL, OFF(access_log), 0, 0},
    {"access_log_format", K_ALOG, OFF(access_log_format), 0, 0},
    {"log_level", K_LEVEL, OFF(log_level), 0, 0},
    {"pid_file", K_STR_OR_NULL, OFF(pid_file), 0, 0},
    {"max_line_size", K_SIZE, OFF(max_line_size), 64, 1 << 20},
    {"max_field_size", K_SIZE, OFF(max_field_size), 64, 1 << 20},
    {"max_headers", K_SIZE, OFF(max_headers), 1, 10000},
    {"client_max_size", K_SIZE, OFF(client_max_size), 0, 1ull << 40},
    {"max_pipeline", K_SIZE, OFF(max_pipeline), 1024, 1 << 26},
    {"max_connections", K_SIZE, OFF(max_connections), 1, 1 << 24},
    {"header_timeout", K_MS, OFF(header_timeout), 0.001, 86400},
    {"request_timeout", K_MS, OFF(request_timeout), 0.001, 86400},
    {"read_timeout", K_MS, OFF(read_timeout), 0.001, 86400},
    {"write_timeout", K_MS, OFF(write_timeout), 0.001, 86400},
    {"keepalive_timeout", K_MS, OFF(keepalive_timeout), 0.001, 86400},
    {"shutdown_timeout", K_MS, OFF(shutdown_timeout), 0, 86400},
    {"linger_timeout", K_MS, OFF(linger_timeout), 0, 3600},
    {"on_plugin_error", K_PLUGIN_ERR, OFF(on_plugin_error_skip), 0, 0},
    {"admin", K_ADMIN, OFF(admin), 0, 0},
    {"error_log", K_STR_OR_NULL, OFF(error_log), 0, 0},
    {"io", K_IO, OFF(io), 0, 0},
    {"io_recv_buffers", K_SIZE, OFF(io_recv_buffers), 1, 32768},
    {"handshake_timeout", K_MS, OFF(handshake_timeout), 0.001, 3600},
    {"ws_drain_timeout", K_MS, OFF(ws_drain_timeout), 0, 86400},
    {"http2_max_streams", K_SIZE, OFF(http2_max_streams), 1, 10000},
};

void loom__config_defaults(loom__config *c)
{
    memset(c, 0, sizeof *c);
    c->host = strdup("127.0.0.1");
    c->port = 8080;
    c->workers = 0;
    c->log_level = LOOM_LOG_INFO;
    c->max_line_size = 8190;
    c->max_field_size = 8190;
    c->max_headers = 128;
    c->client_max_size = 1024 * 1024;
    c->max_pipeline = 256 * 1024;
    c->max_connections = 20000;
    c->header_timeout = 60000;
    c->request_timeout = 300000;
    c->read_timeout = 60000;
    c->write_timeout = 60000;
    c->keepalive_timeout = 75000;
    c->shutdown_timeout = 60000;
    c->linger_timeout = 2000;
    c->io_recv_buffers = 256;
    c->handshake_timeout = 10000;
    c->ws_drain_timeout = 60000;
    c->http2_max_streams = 100;
    c->plugins = json_object();
}

static const key_def *find_key(const char *name)
{
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        if (strcmp(keys[i].name, name) == 0) return &keys[i];
    return NULL;
}

static void set_str(char **slot, const char *v)
{
    free(*slot);
    *slot = v ? strdup(v) : NULL;
}

/* Sets `*field` to the index of `v` in `names` (NULL-terminated). Returns 0,
 * or -1 with the names in `err`. */
static int pick(int *field, const key_def *k, const char *v, const char *const *names, char *err,
                size_t errlen)
{
    char list[128] = "";
    for (int i = 0; names[i]; i++) {
        if (strcmp(v, names[i]) == 0) {
            *field = i;
            return 0;
        }
        snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i ? ", " : "", names[i]);
    }
    snprintf(err, errlen, "key '%s': must be one of %s (got '%s')", k->name, list, v);
    return -1;
}

/* "admin": true, false, "HOST:PORT" (a flag) or {"listen": "HOST:PORT",
 * "token": "..."}. The address is checked by loom__config_finish. */
static int apply_admin(loom__config *c, json_t *j, const char *s, char *err, size_t errlen)
{
    if (j && json_is_boolean(j)) {
        c->admin = json_is_true(j);
        return 0;
    }
    if (!j) {
        if (strcmp(s, "true") == 0 || strcmp(s, "1") == 0 || strcmp(s, "false") == 0 ||
            strcmp(s, "0") == 0) {
            c->admin = s[0] == 't' || s[0] == '1';
            return 0;
        }
        if (!*s || !strchr(s, ':')) {
            snprintf(err, errlen, "key 'admin': must be true, false or HOST:PORT (got '%s')", s);
            return -1;
        }
        c->admin = 1;
        set_str(&c->admin_listen, s);
        return 0;
    }
    if (!json_is_object(j)) {
        snprintf(err, errlen,
                 "key 'admin': must be true, false or an object {\"listen\": \"HOST:PORT\", "
                 "\"token\": \"...\"}");
        return -1;
    }
    const char *k;
    json_t *v;
    json_object_foreach(j, k, v)
    {
        if (strcmp(k, "listen") != 0 && strcmp(k, "token") != 0) {
            snprintf(err, errlen, "key 'admin': unknown key '%s' (listen, token)", k);
            return -1;
        }
        if (!json_is_string(v) || !*json_string_value(v)) {
            snprintf(err, errlen, "key 'admin.%s': must be a non-empty string", k);
            return -1;
        }
    }
    const char *tok = json_string_value(json_object_get(j, "token"));
    if (tok) {
        size_t n = strlen(tok);
        for (size_t i = 0; i < n; i++)
            if (tok[i] <= ' ' || tok[i] > '~') {
                snprintf(err, errlen,
                         "key 'admin.token': only printable ASCII without spaces may be used");
                return -1;
            }
        if (n < 16) {
            snprintf(err, errlen, "key 'admin.token': at least 16 characters (got %zu)", n);
            return -1;
        }
    }
    const char *l = json_string_value(json_object_get(j, "listen"));
    set_str(&c->admin_listen, l);
    set_str(&c->admin_token, tok);
    c->admin = 1;
    return 0;
}

/* Applies a value given either as JSON (`j`) or as CLI text (`s`). */
static int apply(loom__config *c, const key_def *k, json_t *j, const char *s, char *err,
                 size_t errlen)
{
    char *field = (char *)c + k->off;
    switch (k->kind) {
    case K_STR:
    case K_STR_OR_NULL:
        if (j && (json_is_null(j) || json_is_false(j)) && k->kind == K_STR_OR_NULL) {
            set_str((char **)field, NULL);
            return 0;
        }
        if (j && !json_is_string(j)) goto type_str;
        if (!j && !s) goto type_str;
        {
            const char *v = j ? json_string_value(j) : s;
            if (!*v) {
                snprintf(err, errlen, "key '%s': must not be empty", k->name);
                return -1;
            }
            set_str((char **)field, v);
        }
        return 0;
    case K_BOOL:
        if (j) {
            if (!json_is_boolean(j)) goto type_bool;
            *(int *)field = json_is_true(j);
        } else if (strcmp(s, "true") == 0 || strcmp(s, "1") == 0) {
            *(int *)field = 1;
        } else if (strcmp(s, "false") == 0 || strcmp(s, "0") == 0) {
            *(int *)field = 0;
        } else {
            goto type_bool;
        }
        return 0;
    case K_ADMIN:
        return apply_admin(c, j, s, err, errlen);
    case K_LEVEL:
    case K_IO:
    case K_ALOG:
    case K_PLUGIN_ERR: {
        if (j && !json_is_string(j)) goto type_str;
        const char *v = j ? json_string_value(j) : s;
        static const char *const levels[] = {"error", "warn", "info", "debug", NULL};
        static const char *const ios[] = {"auto", "uring", "epoll", NULL};
        static const char *const alogs[] = {"combined", "combined_tls", "json", NULL};
        if (k->kind != K_PLUGIN_ERR)
            return pick((int *)field, k, v,
                        k->kind == K_LEVEL ? levels
                        : k->kind == K_IO  ? ios
                                           : alogs,
                        err, errlen);
        if (strcmp(v, "fail") == 0 || strcmp(v, "skip") == 0) {
            *(int *)field = strcmp(v, "skip") == 0;
            return 0;
        }
        snprintf(err, errlen, "key '%s': must be \"fail\" or \"skip\" (got '%s')", k->name, v);
        return -1;
    }
    case K_INT:
    case K_SIZE:
    case K_MS: {
        double d;
        if (j) {
            if (!json_is_number(j)) goto type_num;
            d = json_number_value(j);
        } else {
            char *end;
            errno = 0;
            d = strtod(s, &end);
            if (errno || end == s || *end) goto type_num;
        }
        if (!isfinite(d) || d < k->min || d > k->max) {
            snprintf(err, errlen, "key '%s': %g is out of range (%g to %g)", k->name, d, k->min,
                     k->max);
            return -1;
        }
        if (k->kind != K_MS && d != floor(d)) goto type_num;
        if (k->kind == K_INT)
            *(int *)field = (int)d;
        else if (k->kind == K_SIZE)
            *(size_t *)field = (size_t)d;
        else
            *(uint64_t *)field = (uint64_t)llround(d * 1000.0);
        return 0;
    }
    }
    return 0;
type_str:
    snprintf(err, errlen, "key '%s': must be a string", k->name);
    return -1;
type_bool:
    snprintf(err, errlen, "key '%s': must be true or false", k->name);
    return -1;
type_num:
    snprintf(err, errlen, "key '%s': must be a %s", k->name,
             k->kind == K_MS ? "number of seconds" : "whole number");
    return -1;
}

/* host and port make the shorthand listener, which "listen" replaces. */
static void note_key(loom__config *c, const key_def *k)
{
    if (k->off == OFF(host) || k->off == OFF(port)) c->host_set = 1;
}

int loom__config_set(loom__config *c, const char *key, const char *value, char *err, size_t errlen)
{
    if (strcmp(key, "listen") == 0) return loom__config_add_listen(c, value, err, errlen);
    if (strcmp(key, "tls_cert") == 0 || strcmp(key, "tls_key") == 0) {
        /* --tls-cert/--tls-key: the "tls" section's default certificate. */
        if (!*value) {
            snprintf(err, errlen, "key '%s': must not be empty", key);
            return -1;
        }
        if (!c->tls && !(c->tls = json_object())) return -1;
        return json_object_set_new(c->tls, key[4] == 'c' ? "cert" : "key", json_string(value));
    }
    const key_def *k = find_key(key);
    if (!k) {
        snprintf(err, errlen, "unknown key '%s'", key);
        return -1;
    }
    note_key(c, k);
    if (k->off == OFF(log_level)) c->log_level_flag = 1;
    return apply(c, k, NULL, value, err, errlen);
}

/* Appends a listener with its defaults; NULL when there are too many. */
static loom__listen_cfg *new_listen(loom__config *c, char *err, size_t errlen)
{
    if (c->nlisten >= LOOM__MAX_LISTEN) {
        snprintf(err, errlen, "key 'listen': at most %d listeners", LOOM__MAX_LISTEN);
        return NULL;
    }
    loom__listen_cfg *l = realloc(c->listen, (c->nlisten + 1) * sizeof *l);
    if (!l) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    c->listen = l;
    l = &c->listen[c->nlisten++];
    memset(l, 0, sizeof *l);
    l->http2 = 1;
    c->listen_set = 1;
    return l;
}

/* "HOST:PORT" or "[V6]:PORT", with an optional ":tls"; `what` names it in errors. */
static int parse_addr(loom__listen_cfg *l, const char *spec, const char *what, char *err,
                      size_t errlen)
{
    char host[64];
    const char *p = spec, *colon;
    size_t hl;
    if (*p == '[') {
        const char *close = strchr(p, ']');
        if (!close || close[1] != ':') goto bad;
        hl = (size_t)(close - p - 1);
        p++;
        colon = close + 1;
    } else {
        colon = strchr(p, ':');
        if (!colon) goto bad;
        hl = (size_t)(colon - p);
    }
    if (hl == 0 || hl >= sizeof host) goto bad;
    memcpy(host, p, hl);
    host[hl] = '\0';
    char *end;
    errno = 0;
    long port = strtol(colon + 1, &end, 10);
    if (errno || end == colon + 1 || port < 0 || port > 65535) goto bad;
    if (strcmp(end, ":tls") == 0)
        l->tls = 1;
    else if (*end)
        goto bad;
    l->host = strdup(host);
    l->port = (int)port;
    return l->host ? 0 : -1;
bad:
    snprintf(err, errlen, "%s: '%s' is not HOST:PORT or HOST:PORT:tls (IPv6: [::1]:8443)", what,
             spec);
    return -1;
}

int loom__config_add_listen(loom__config *c, const char *spec, char *err, size_t errlen)
{
    loom__listen_cfg *l = new_listen(c, err, errlen);
    if (!l) return -1;
    if (parse_addr(l, spec, "--listen", err, errlen)) {
        c->nlisten--;
        return -1;
    }
    return 0;
}

/* One entry of "listen": "HOST:PORT[:tls]" or an object. */
static int load_listen(loom__config *c, json_t *e, size_t i, char *err, size_t errlen)
{
    char what[48];
    snprintf(what, sizeof what, "key 'listen[%zu]'", i);
    loom__listen_cfg *l = new_listen(c, err, errlen);
    if (!l) return -1;
    if (json_is_string(e)) return parse_addr(l, json_string_value(e), what, err, errlen);
    if (!json_is_object(e)) {
        snprintf(err, errlen, "%s: must be \"HOST:PORT[:tls]\" or an object", what);
        return -1;
    }
    const char *k;
    json_t *v;
    json_object_foreach(e, k, v)
    {
        int is_bool = strcmp(k, "tls") == 0 || strcmp(k, "http2") == 0 || strcmp(k, "h2c") == 0;
        if (is_bool) {
            if (!json_is_boolean(v)) goto bool_fail;
            int b = json_is_true(v);
            if (k[0] == 't')
                l->tls = b;
            else if (k[1] == 't')
                l->http2 = b;
            else
                l->h2c = b;
        } else if (strcmp(k, "host") == 0 || strcmp(k, "client_ca") == 0) {
            if (!json_is_string(v) || !*json_string_value(v)) {
                snprintf(err, errlen, "%s: '%s' must be a non-empty string", what, k);
                return -1;
            }
            char **slot = k[0] == 'h' ? &l->host : &l->client_ca;
            free(*slot);
            *slot = strdup(json_string_value(v));
        } else if (strcmp(k, "port") == 0) {
            if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > 65535) {
                snprintf(err, errlen, "%s: 'port' must be a whole number from 0 to 65535", what);
                return -1;
            }
            l->port = (int)json_integer_value(v);
        } else if (strcmp(k, "redirect_to_https") == 0) {
            if (json_is_boolean(v)) {
                l->redirect_to_https = json_is_true(v) ? -1 : 0;
            } else if (json_is_integer(v) && json_integer_value(v) > 0 &&
                       json_integer_value(v) <= 65535) {
                l->redirect_to_https = (int)json_integer_value(v);
            } else {
                snprintf(err, errlen,
                         "%s: 'redirect_to_https' must be true, false or a port number", what);
                return -1;
            }
        } else if (strcmp(k, "verify_client") == 0) {
            static const char *const modes[] = {"off", "optional", "require"};
            const char *m = json_is_string(v) ? json_string_value(v) : "";
            int found = -1;
            for (int j = 0; j < 3; j++)
                if (strcmp(m, modes[j]) == 0) found = j;
            if (found < 0) {
                snprintf(err, errlen,
                         "%s: 'verify_client' must be \"off\", \"optional\" or \"require\"", what);
                return -1;
            }
            l->verify_client = found;
        } else {
            snprintf(err, errlen, "%s: unknown key '%s'", what, k);
            return -1;
        }
        continue;
    bool_fail:
        snprintf(err, errlen, "%s: '%s' must be true or false", what, k);
        return -1;
    }
    if (!l->host) {
        snprintf(err, errlen, "%s: 'host' is missing", what);
        return -1;
    }
    if (!json_object_get(e, "port")) {
        snprintf(err, errlen, "%s: 'port' is missing", what);
        return -1;
    }
    return 0;
}

/* Formats one problem and hands it to the reporter; returns its verdict
 * (nonzero: stop). */
static int say(loom__config_report report, void *ud, int *count, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int say(loom__config_report report, void *ud, int *count, const char *fmt, ...)
{
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    (*count)++;
    return report(ud, msg);
}

int loom__is_loopback(const char *host)
{
    struct in_addr a4;
    struct in6_addr a6;
    if (inet_pton(AF_INET, host, &a4) == 1) return (ntohl(a4.s_addr) >> 24) == 127;
    if (inet_pton(AF_INET6, host, &a6) == 1) {
        if (IN6_IS_ADDR_LOOPBACK(&a6)) return 1;
        /* ::ffff:127.x.x.x */
        return IN6_IS_ADDR_V4MAPPED(&a6) && a6.s6_addr[12] == 127;
    }
    return 0;
}

/* Appends the admin listener ("admin") after the others. */
static int add_admin(loom__config *c, loom__config_report report, void *ud, int *n)
{
    char err[256];
    int was_set = c->listen_set;
    loom__listen_cfg *l = new_listen(c, err, sizeof err);
    c->listen_set = was_set;
    if (!l) return say(report, ud, n, "%s", err);
    const char *spec = c->admin_listen ? c->admin_listen : LOOM__ADMIN_DEFAULT;
    if (parse_addr(l, spec, "key 'admin.listen'", err, sizeof err) || l->tls) {
        if (l->tls)
            snprintf(err, sizeof err, "key 'admin.listen': the admin listener is plaintext");
        free(l->host);
        c->nlisten--;
        return say(report, ud, n, "%s", err);
    }
    l->admin = 1;
    l->http2 = 0;
    /* Never public by accident: another address needs a token. */
    if (!loom__is_loopback(l->host) && !c->admin_token &&
        say(report, ud, n,
            "key 'admin': %s is not a loopback address: set \"token\" too, or listen on "
            "127.0.0.1",
            spec))
        return 1;
    return 0;
}

int loom__config_finish_each(loom__config *c, loom__config_report report, void *ud)
{
    int n = 0;
    char err[256];
#define SAY(...)                                                                                   \
    do {                                                                                           \
        if (say(report, ud, &n, __VA_ARGS__)) return n;                                            \
    } while (0)
    if (c->listen_set && c->host_set)
        SAY("'listen' and 'host'/'port' are both set: list every address in 'listen'");
    if (!c->listen_set) {
        loom__listen_cfg *l = new_listen(c, err, sizeof err);
        if (!l || !(l->host = strdup(c->host))) SAY("%s", l ? "out of memory" : err);
        l->port = c->port;
        c->listen_set = 0;
    }
    int tls_port = -1;
    for (size_t i = 0; i < c->nlisten; i++) {
        loom__listen_cfg *l = &c->listen[i];
        if (l->tls && tls_port < 0) tls_port = l->port;
        if (l->tls && !c->tls)
            SAY("listener %s:%d has \"tls\": true but there is no \"tls\" section "
                "(certificate and key)",
                l->host, l->port);
        if (!l->tls && (l->client_ca || l->verify_client))
            SAY("listener %s:%d: 'client_ca' and 'verify_client' need \"tls\"", l->host, l->port);
        if (l->tls && l->redirect_to_https)
            SAY("listener %s:%d: 'redirect_to_https' is for plaintext listeners", l->host, l->port);
        if (l->verify_client && !l->client_ca)
            SAY("listener %s:%d: 'verify_client' needs 'client_ca'", l->host, l->port);
        if (l->tls && l->h2c)
            SAY("listener %s:%d: 'h2c' is for plaintext listeners (TLS offers "
                "h2 by ALPN)",
                l->host, l->port);
    }
    for (size_t i = 0; i < c->nlisten; i++) {
        loom__listen_cfg *l = &c->listen[i];
        if (l->redirect_to_https == -1) {
            if (tls_port < 0)
                SAY("listener %s:%d: 'redirect_to_https' needs a TLS listener to send to", l->host,
                    l->port);
            l->redirect_to_https = tls_port;
        }
    }
    if (c->admin && add_admin(c, report, ud, &n)) return n;
    /* The same address twice would split its connections between two
     * kinds of listener (and the admin one must not share a public port). */
    for (size_t i = 0; i < c->nlisten; i++)
        for (size_t k = i + 1; k < c->nlisten; k++)
            if (c->listen[i].port && c->listen[i].port == c->listen[k].port &&
                strcmp(c->listen[i].host, c->listen[k].host) == 0)
                SAY("%s%s:%d is listed twice", c->listen[k].admin ? "the admin listener " : "",
                    c->listen[k].host, c->listen[k].port);
#undef SAY
    return n;
}

/* Keeps the first problem and stops there. */
typedef struct {
    char *err;
    size_t errlen;
} first_problem;

static int keep_first(void *ud, const char *problem)
{
    first_problem *f = ud;
    snprintf(f->err, f->errlen, "%s", problem);
    return 1;
}

int loom__config_finish(loom__config *c, char *err, size_t errlen)
{
    first_problem f = {err, errlen};
    return loom__config_finish_each(c, keep_first, &f) ? -1 : 0;
}

/* One top-level key of the file. Returns 0, or -1 with the reason in `why`. */
/* "ws_pubsub": {"redis": "HOST:PORT" | {"host", "port", "prefix", "password"}}. */
static int load_ws_pubsub(loom__config *c, json_t *v, char *err, size_t errlen)
{
    if (!json_is_object(v)) {
        snprintf(err, errlen, "key 'ws_pubsub': must be an object ({\"redis\": \"HOST:PORT\"})");
        return -1;
    }
    const char *k;
    json_t *e;
    json_object_foreach(v, k, e)
    {
        if (strcmp(k, "redis") != 0) {
            snprintf(err, errlen, "key 'ws_pubsub.%s': unknown (the one key is \"redis\")", k);
            return -1;
        }
    }
    json_t *r = json_object_get(v, "redis");
    if (!r || json_is_null(r)) return 0;
    char host[256];
    int port = 6379;
    const char *prefix = "loom:ws:", *password = NULL;
    if (json_is_string(r)) {
        const char *s = json_string_value(r), *colon = strrchr(s, ':');
        size_t hl = colon ? (size_t)(colon - s) : strlen(s);
        char *end = NULL;
        if (colon) port = (int)strtol(colon + 1, &end, 10);
        if (hl == 0 || hl >= sizeof host || (colon && (*end || port < 1 || port > 65535))) {
            snprintf(err, errlen, "key 'ws_pubsub.redis': must be \"HOST:PORT\" (got '%s')", s);
            return -1;
        }
        memcpy(host, s, hl);
        host[hl] = '\0';
    } else if (json_is_object(r)) {
        json_object_foreach(r, k, e)
        {
            int is_port = strcmp(k, "port") == 0;
            if (strcmp(k, "host") && !is_port && strcmp(k, "prefix") && strcmp(k, "password")) {
                snprintf(err, errlen,
                         "key 'ws_pubsub.redis.%s': unknown (host, port, prefix, password)", k);
                return -1;
            }
            if (is_port ? !json_is_integer(e) || json_integer_value(e) < 1 ||
                              json_integer_value(e) > 65535
                        : !json_is_string(e) || !*json_string_value(e)) {
                snprintf(err, errlen, "key 'ws_pubsub.redis.%s': must be %s", k,
                         is_port ? "a port number" : "a non-empty string");
                return -1;
            }
        }
        json_t *h = json_object_get(r, "host");
        snprintf(host, sizeof host, "%s", h ? json_string_value(h) : "127.0.0.1");
        if (json_object_get(r, "port")) port = (int)json_integer_value(json_object_get(r, "port"));
        if (json_object_get(r, "prefix")) prefix = json_string_value(json_object_get(r, "prefix"));
        if (json_object_get(r, "password"))
            password = json_string_value(json_object_get(r, "password"));
    } else {
        snprintf(err, errlen, "key 'ws_pubsub.redis': must be \"HOST:PORT\" or an object");
        return -1;
    }
    set_str(&c->ws_pubsub_redis, host);
    c->ws_pubsub_redis_port = port;
    set_str(&c->ws_pubsub_redis_prefix, prefix);
    set_str(&c->ws_pubsub_redis_password, password);
    return 0;
}

static int load_key(loom__config *c, const char *name, json_t *v, size_t *listen_entry, char *why,
                    size_t whylen)
{
    if (strcmp(name, "plugins") == 0) {
        if (!json_is_object(v)) {
            snprintf(why, whylen,
                     "key 'plugins': must be an object of plugin name -> config object");
            return -1;
        }
        const char *pn;
        json_t *pv;
        json_object_foreach(v, pn, pv)
        {
            if (!json_is_object(pv)) {
                snprintf(why, whylen, "key 'plugins.%s': must be an object", pn);
                return -1;
            }
            json_t *en = json_object_get(pv, "enabled");
            if (en && !json_is_boolean(en)) {
                snprintf(why, whylen, "key 'plugins.%s.enabled': must be true or false", pn);
                return -1;
            }
        }
        json_decref(c->plugins);
        c->plugins = json_incref(v);
        return 0;
    }
    if (strcmp(name, "listen") == 0) {
        /* Entries are reported one by one: *listen_entry is the next one. */
        json_t *e;
        if (!json_is_array(v) || json_array_size(v) == 0) {
            *listen_entry = SIZE_MAX;
            snprintf(why, whylen, "key 'listen': must be a non-empty array");
            return -1;
        }
        for (; *listen_entry < json_array_size(v); (*listen_entry)++) {
            e = json_array_get(v, *listen_entry);
            size_t before = c->nlisten;
            if (load_listen(c, e, *listen_entry, why, whylen)) {
                /* A bad entry is not kept (its fields may be half set). */
                for (size_t i = before; i < c->nlisten; i++) {
                    free(c->listen[i].host);
                    free(c->listen[i].client_ca);
                }
                c->nlisten = before;
                (*listen_entry)++;
                return -1;
            }
        }
        *listen_entry = SIZE_MAX;
        return 0;
    }
    if (strcmp(name, "tls") == 0) {
        if (!json_is_object(v)) {
            snprintf(why, whylen, "key 'tls': must be an object");
            return -1;
        }
        json_decref(c->tls);
        c->tls = json_incref(v);
        return 0;
    }
    if (strcmp(name, "ws_pubsub") == 0) return load_ws_pubsub(c, v, why, whylen);
    if (strcmp(name, "plugin_order") == 0) {
        size_t i;
        json_t *e;
        if (!json_is_array(v)) goto bad_order;
        json_array_foreach(v, i, e) if (!json_is_string(e)) goto bad_order;
        json_decref(c->plugin_order);
        c->plugin_order = json_incref(v);
        return 0;
    bad_order:
        snprintf(why, whylen, "key 'plugin_order': must be an array of plugin names");
        return -1;
    }
    const key_def *k = find_key(name);
    if (!k) {
        snprintf(why, whylen, "unknown key '%s'", name);
        return -1;
    }
    note_key(c, k);
    return apply(c, k, v, NULL, why, whylen);
}

int loom__config_load_each(loom__config *c, const char *path, loom__config_report report, void *ud)
{
    int n = 0;
    json_error_t je;
    json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
    if (!root) {
        if (je.line <= 0)
            say(report, ud, &n, "%s: %s", path, je.text);
        else
            say(report, ud, &n, "%s:%d:%d: %s", path, je.line, je.column, je.text);
        return n;
    }
    if (!json_is_object(root)) {
        say(report, ud, &n, "%s: the top level must be a JSON object", path);
        json_decref(root);
        return n;
    }
    set_str(&c->config_path, path);
    const char *name;
    json_t *v;
    char why[512];
    json_object_foreach(root, name, v)
    {
        size_t entry = 0;
        do {
            if (load_key(c, name, v, &entry, why, sizeof why) == 0) break;
            if (say(report, ud, &n, "%s: %s", path, why)) goto stop;
        } while (entry != 0 && entry != SIZE_MAX && entry < json_array_size(v));
    }
stop:
    json_decref(root);
    return n;
}

int loom__config_load(loom__config *c, const char *path, char *err, size_t errlen)
{
    first_problem f = {err, errlen};
    return loom__config_load_each(c, path, keep_first, &f) ? -1 : 0;
}

void loom__config_free(loom__config *c)
{
    free(c->host);
    for (size_t i = 0; i < c->nlisten; i++) {
        free(c->listen[i].host);
        free(c->listen[i].client_ca);
    }
    free(c->listen);
    json_decref(c->tls);
    free(c->plugins_dir);
    free(c->access_log);
    free(c->pid_file);
    free(c->admin_listen);
    free(c->admin_token);
    free(c->error_log);
    free(c->config_path);
    json_decref(c->plugins);
    json_decref(c->plugin_order);
    free(c->ws_pubsub_redis);
    free(c->ws_pubsub_redis_prefix);
    free(c->ws_pubsub_redis_password);
    memset(c, 0, sizeof *c);
}
