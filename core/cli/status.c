/* `loom status`: a running server as its admin listener sees it (every
 * worker, the totals, the plugins), from GET /api/status. */
#include "cli/admin_client.h"
#include "cli/cli.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static long long geti(json_t *o, const char *k)
{
    return (long long)json_integer_value(json_object_get(o, k));
}

static const char *gets(json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s ? s : "-";
}

static void duration(char *buf, size_t len, long long s)
{
    if (s < 0) s = 0;
    if (s >= 86400)
        snprintf(buf, len, "%lldd %lldh", s / 86400, s % 86400 / 3600);
    else if (s >= 3600)
        snprintf(buf, len, "%lldh %lldm", s / 3600, s % 3600 / 60);
    else if (s >= 60)
        snprintf(buf, len, "%lldm %llds", s / 60, s % 60);
    else
        snprintf(buf, len, "%llds", s);
}

static void bytes(char *buf, size_t len, double b)
{
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    int u = 0;
    while (b >= 1024 && u < 4) b /= 1024, u++;
    snprintf(buf, len, u ? "%.1f %s" : "%.0f %s", b, units[u]);
}

/* A worker's plugins as one comparable string (name, generation, hash). */
static char *plugin_key(json_t *w)
{
    size_t i;
    json_t *p;
    char *k = strdup("");
    json_array_foreach(json_object_get(w, "plugins"), i, p)
    {
        char *n = NULL;
        if (asprintf(&n, "%s%s/%lld/%s;", k ? k : "", gets(p, "name"), geti(p, "generation"),
                     gets(p, "sha256")) < 0)
            n = NULL;
        free(k);
        k = n;
    }
    return k;
}

static void print_plugins(json_t *w)
{
    size_t i;
    json_t *p;
    printf("  %-20s %-10s %10s  %-12s  %s\n", "NAME", "VERSION", "GENERATION", "SHA256",
           "LOADED AT");
    json_array_foreach(json_object_get(w, "plugins"), i, p)
    {
        char when[32] = "-";
        time_t t = (time_t)geti(p, "loaded_at");
        struct tm tm;
        if (localtime_r(&t, &tm)) strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", &tm);
        printf("  %-20s %-10s %10lld  %.12s  %s\n", gets(p, "name"), gets(p, "version"),
               geti(p, "generation"), gets(p, "sha256"), when);
        if (json_is_string(json_object_get(p, "last_error")))
            printf("    last reload refused: %s\n", gets(p, "last_error"));
    }
}

static void print_status(json_t *st)
{
    double now = json_number_value(json_object_get(st, "now"));
    long long started = geti(st, "started_at");
    char up[32], in[32], out[32];
    duration(up, sizeof up, (long long)now - started);
    printf("loom %s, master pid %lld, up %s\n", gets(st, "version"), geti(st, "master_pid"), up);
    json_t *t = json_object_get(st, "totals");
    json_t *status = json_object_get(t, "status");
    printf("requests: %lld (", geti(t, "requests"));
    const char *k;
    json_t *v;
    int first = 1;
    json_object_foreach(status, k, v)
    {
        if (!json_integer_value(v)) continue;
        printf("%s%s %lld", first ? "" : ", ", k, (long long)json_integer_value(v));
        first = 0;
    }
    printf("%s), %lld in flight, %lld refused before a plugin\n", first ? "none yet" : "",
           geti(t, "inflight"), geti(t, "rejected"));
    bytes(in, sizeof in, (double)geti(t, "bytes_in"));
    bytes(out, sizeof out, (double)geti(t, "bytes_out"));
    printf("connections:");
    first = 1;
    json_object_foreach(json_object_get(t, "connections"), k, v)
    {
        if (!json_integer_value(v) && strcmp(k, "http/1.1") != 0) continue;
        printf("%s %lld %s", first ? "" : ",", (long long)json_integer_value(v), k);
        first = 0;
    }
    printf(" open; %s in, %s out\n", in, out);
    json_t *rs = json_object_get(st, "restarts");
    if (json_object_size(rs)) {
        printf("worker restarts:");
        json_object_foreach(rs, k, v) printf(" %s %lld", k, (long long)json_integer_value(v));
        printf("\n");
    }
    json_t *ws = json_object_get(st, "workers");
    printf("workers: %lld of %lld up\n", geti(st, "workers_up"), geti(st, "workers_configured"));
    printf("  %-6s %8s  %-8s %8s %10s %9s %11s %8s %7s\n", "WORKER", "PID", "STATE", "UP FOR",
           "REQUESTS", "IN FLIGHT", "CONNECTIONS", "RESTARTS", "RELOADS");
    size_t i;
    json_t *w;
    json_array_foreach(ws, i, w)
    {
        long long conns = 0;
        json_object_foreach(json_object_get(w, "connections"), k, v) conns += json_integer_value(v);
        int isup = json_is_true(json_object_get(w, "up"));
        char wup[32] = "-", id[16];
        if (isup) duration(wup, sizeof wup, (long long)now - geti(w, "started_at"));
        snprintf(id, sizeof id, "w%lld", geti(w, "id"));
        printf("  %-6s %8lld  %-8s %8s %10lld %9lld %11lld %8lld %7lld\n", id, geti(w, "pid"),
               isup ? "serving" : "down", wup, geti(w, "requests"), geti(w, "inflight"), conns,
               geti(w, "restarts"), geti(w, "reloads"));
    }
    /* The plugins once when every worker serves the same generations. */
    char *k0 = NULL;
    int same = 1;
    json_array_foreach(ws, i, w)
    {
        char *kk = plugin_key(w);
        if (!k0)
            k0 = kk;
        else {
            same &= kk && k0 && strcmp(kk, k0) == 0;
            free(kk);
        }
    }
    free(k0);
    if (json_array_size(ws) == 0) return;
    if (same) {
        printf("plugins (every worker):\n");
        print_plugins(json_array_get(ws, 0));
    } else {
        json_array_foreach(ws, i, w)
        {
            printf("plugins of worker %lld:\n", geti(w, "id"));
            print_plugins(w);
        }
    }
}

int loom__cmd_status(int argc, char **argv)
{
    loom__admin_addr a = {0};
    int as_json = 0;
    static const char usage[] =
        "usage: loom status [--admin HOST:PORT] [--config FILE] [--token TOKEN] [--json]\n"
        "Shows a running server as its admin listener sees it: version and uptime,\n"
        "requests by status class, connections, bytes, each worker (pid, state,\n"
        "requests, restarts, reloads) and the plugins they serve (GET /api/status).\n"
        "\n" LOOM__ADMIN_OPTIONS "  --json             print the server's answer as it is\n";
    int rc = loom__admin_args(&a, argc, argv, "status", usage, &as_json);
    if (rc >= 0) return rc;
    char *body = NULL;
    rc = loom__admin_get(&a, "/api/status", "status", &body);
    loom__admin_addr_free(&a);
    if (rc) return 1;
    if (as_json) {
        printf("%s\n", body);
        free(body);
        return 0;
    }
    json_error_t je;
    json_t *st = json_loads(body, 0, &je);
    free(body);
    if (!json_is_object(st)) {
        fprintf(stderr, "loom status: the answer is not loom's status JSON (%s)\n", je.text);
        json_decref(st);
        return 1;
    }
    print_status(st);
    json_decref(st);
    return 0;
}
