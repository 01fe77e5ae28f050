/* Config keys are listed once, in a table, so the JSON reader, the CLI flags
 * and `--help` agree on names, types and ranges. */
#include "util/config.h"
#include "util/log.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum kind { K_STR, K_STR_OR_NULL, K_INT, K_SIZE, K_MS, K_LEVEL, K_PLUGIN_ERR, K_BOOL, K_IO };

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
    {"admin", K_BOOL, OFF(admin), 0, 0},
    {"io", K_IO, OFF(io), 0, 0},
    {"io_recv_buffers", K_SIZE, OFF(io_recv_buffers), 1, 32768},
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
    case K_LEVEL:
    case K_IO:
    case K_PLUGIN_ERR: {
        if (j && !json_is_string(j)) goto type_str;
        const char *v = j ? json_string_value(j) : s;
        static const char *const levels[] = {"error", "warn", "info", "debug", NULL};
        static const char *const ios[] = {"auto", "uring", "epoll", NULL};
        if (k->kind != K_PLUGIN_ERR)
            return pick((int *)field, k, v, k->kind == K_LEVEL ? levels : ios, err, errlen);
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

int loom__config_set(loom__config *c, const char *key, const char *value, char *err, size_t errlen)
{
    const key_def *k = find_key(key);
    if (!k) {
        snprintf(err, errlen, "unknown key '%s'", key);
        return -1;
    }
    return apply(c, k, NULL, value, err, errlen);
}

int loom__config_load(loom__config *c, const char *path, char *err, size_t errlen)
{
    json_error_t je;
    json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
    if (!root) {
        if (je.line <= 0)
            snprintf(err, errlen, "%s: %s", path, je.text);
        else
            snprintf(err, errlen, "%s:%d:%d: %s", path, je.line, je.column, je.text);
        return -1;
    }
    if (!json_is_object(root)) {
        snprintf(err, errlen, "%s: the top level must be a JSON object", path);
        json_decref(root);
        return -1;
    }
    const char *name;
    json_t *v;
    char why[256];
    json_object_foreach(root, name, v)
    {
        if (strcmp(name, "plugins") == 0) {
            if (!json_is_object(v)) {
                snprintf(err, errlen,
                         "%s: key 'plugins': must be an object of plugin name -> "
                         "config object",
                         path);
                goto fail;
            }
            const char *pn;
            json_t *pv;
            json_object_foreach(v, pn, pv)
            {
                if (!json_is_object(pv)) {
                    snprintf(err, errlen, "%s: key 'plugins.%s': must be an object", path, pn);
                    goto fail;
                }
                json_t *en = json_object_get(pv, "enabled");
                if (en && !json_is_boolean(en)) {
                    snprintf(err, errlen, "%s: key 'plugins.%s.enabled': must be true or false",
                             path, pn);
                    goto fail;
                }
            }
            json_decref(c->plugins);
            c->plugins = json_incref(v);
            continue;
        }
        if (strcmp(name, "plugin_order") == 0) {
            size_t i;
            json_t *e;
            if (!json_is_array(v)) goto bad_order;
            json_array_foreach(v, i, e) if (!json_is_string(e)) goto bad_order;
            json_decref(c->plugin_order);
            c->plugin_order = json_incref(v);
            continue;
        bad_order:
            snprintf(err, errlen, "%s: key 'plugin_order': must be an array of plugin names", path);
            goto fail;
        }
        const key_def *k = find_key(name);
        if (!k) {
            snprintf(err, errlen, "%s: unknown key '%s'", path, name);
            goto fail;
        }
        if (apply(c, k, v, NULL, why, sizeof why)) {
            snprintf(err, errlen, "%s: %s", path, why);
            goto fail;
        }
    }
    json_decref(root);
    return 0;
fail:
    json_decref(root);
    return -1;
}

void loom__config_free(loom__config *c)
{
    free(c->host);
    free(c->plugins_dir);
    free(c->access_log);
    free(c->pid_file);
    json_decref(c->plugins);
    json_decref(c->plugin_order);
    memset(c, 0, sizeof *c);
}
