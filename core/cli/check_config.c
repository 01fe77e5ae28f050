/* `loom check-config FILE`: every problem of a config, one line each,
 * without starting anything (no socket is bound, no plugin's init runs). */
#include "cli/cli.h"
#include "plugin/host.h"
#include "tls/server.h"
#include "util/config.h"
#include "util/log.h"

#include <dirent.h>
#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct {
    int n;
    const char *file; /* prefixed to problems that do not name it */
} problems;

static int report(void *ud, const char *problem)
{
    problems *p = ud;
    p->n++;
    if (p->file)
        fprintf(stderr, "%s: %s\n", p->file, problem);
    else
        fprintf(stderr, "%s\n", problem);
    return 0; /* go on: every problem is wanted */
}

/* A log file must be writable, or its directory must let it be made. */
static void check_log_path(problems *p, const char *file, const char *key, const char *path)
{
    if (!path || strcmp(path, "-") == 0) return;
    if (access(path, F_OK) == 0) {
        struct stat st;
        if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
            fprintf(stderr, "%s: key '%s': '%s' is a directory\n", file, key, path), p->n++;
        else if (access(path, W_OK) != 0)
            fprintf(stderr, "%s: key '%s': '%s' is not writable: %s\n", file, key, path,
                    strerror(errno)),
                p->n++;
        return;
    }
    char *copy = strdup(path);
    const char *dir = copy ? dirname(copy) : ".";
    if (access(dir, W_OK | X_OK) != 0)
        fprintf(stderr, "%s: key '%s': cannot create '%s' in %s: %s\n", file, key, path, dir,
                strerror(errno)),
            p->n++;
    free(copy);
}

/* Each plugin file the server would load: the loader's checks without its
 * init. And each "plugins" section must name a plugin there. */
static size_t check_plugins(problems *p, const char *file, const loom__config *cfg)
{
    if (!cfg->plugins_dir) return 0;
    DIR *d = opendir(cfg->plugins_dir);
    if (!d) {
        fprintf(stderr, "%s: key 'plugins_dir': '%s': %s\n", file, cfg->plugins_dir,
                strerror(errno));
        p->n++;
        return 0;
    }
    closedir(d);
    /* loom__plugin_list logs disabled plugins at info: not wanted here. */
    int level = loom__log_get_level();
    loom__log_set_level(LOOM_LOG_WARN);
    size_t n = 0;
    char **paths = loom__plugin_list(cfg, &n);
    loom__log_set_level(level);
    json_t *names = json_object();
    for (size_t i = 0; paths && i < n; i++) {
        loom_plugin_desc desc;
        char err[512];
        if (loom__plugin_inspect(paths[i], &desc, err, sizeof err)) {
            fprintf(stderr, "%s: plugin %s: %s\n", file, paths[i], err);
            p->n++;
        } else {
            if (json_object_get(names, desc.name)) {
                fprintf(stderr, "%s: plugin %s: the name '%s' is taken by %s\n", file, paths[i],
                        desc.name, json_string_value(json_object_get(names, desc.name)));
                p->n++;
            }
            json_object_set_new(names, desc.name, json_string(paths[i]));
            free((char *)desc.name);
            free((char *)desc.version);
        }
        free(paths[i]);
    }
    free(paths);
    const char *key;
    json_t *v;
    json_object_foreach(cfg->plugins, key, v)
    {
        if (strcmp(key, "sessions") == 0 || json_is_false(json_object_get(v, "enabled"))) continue;
        if (!json_object_get(names, key)) {
            fprintf(stderr, "%s: key 'plugins.%s': no plugin named '%s' in %s\n", file, key, key,
                    cfg->plugins_dir);
            p->n++;
        }
    }
    size_t count = json_object_size(names);
    json_decref(names);
    return count;
}

int loom__cmd_check_config(int argc, char **argv)
{
    if (argc != 1 || strcmp(argv[0], "--help") == 0 || strcmp(argv[0], "-h") == 0) {
        int help = argc == 1;
        fprintf(help ? stdout : stderr,
                "usage: loom check-config FILE\n"
                "Checks a server config as `loom serve --config FILE` would read it, and more:\n"
                "every key, the listeners (and the admin listener), the TLS certificates and\n"
                "keys, that the log files can be written, and each plugin file in plugins_dir\n"
                "(loaded to read its descriptor; its init is not run). Prints every problem,\n"
                "one line each, to stderr, and exits 1 if there is one; otherwise prints one\n"
                "line saying what the config serves, and exits 0. Nothing is started.\n");
        return help ? 0 : 2;
    }
    const char *file = argv[0];
    problems p = {0};
    loom__config cfg;
    loom__config_defaults(&cfg);
    loom__log_set_level(LOOM_LOG_WARN);
    if (access(file, R_OK) != 0) {
        fprintf(stderr, "%s: %s\n", file, strerror(errno));
        loom__config_free(&cfg);
        return 1;
    }
    loom__config_load_each(&cfg, file, report, &p);
    /* The rest makes sense once the file is a JSON object at all. */
    if (cfg.config_path) {
        p.file = file; /* the checks across keys name no file */
        loom__config_finish_each(&cfg, report, &p);
        check_log_path(&p, file, "access_log", cfg.access_log);
        check_log_path(&p, file, "error_log", cfg.error_log);
        check_log_path(&p, file, "pid_file", cfg.pid_file);
        int any_tls = 0;
        for (size_t i = 0; i < cfg.nlisten; i++) any_tls |= cfg.listen[i].tls;
        if (any_tls && cfg.tls) {
            char err[512];
            loom__tls_server *t = loom__tls_server_new(&cfg, err, sizeof err);
            if (!t) fprintf(stderr, "%s: key 'tls': %s\n", file, err), p.n++;
            loom__tls_server_unref(t);
        }
        size_t np = check_plugins(&p, file, &cfg);
        if (p.n == 0) {
            size_t pub = cfg.nlisten - (cfg.admin ? 1 : 0);
            printf("%s: ok (%zu listener%s%s, %zu plugin%s)\n", file, pub, pub == 1 ? "" : "s",
                   cfg.admin ? " and the admin listener" : "", np, np == 1 ? "" : "s");
        }
    }
    loom__config_free(&cfg);
    return p.n ? 1 : 0;
}
