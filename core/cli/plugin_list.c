/* `loom plugins`: what a running server has loaded, per worker.
 *
 * The listing is GET /_loom/plugins on the server's admin listener (found
 * as `loom status` finds it: cli/admin_client.h), answered by whichever
 * worker the kernel hands the connection to. Each answer says how many
 * workers there are, so the command connects again (a new source port
 * lands on another SO_REUSEPORT listener by hash) until it has heard from
 * every worker or MAX_TRIES per worker have gone by. */
#include "cli/admin_client.h"
#include "cli/cli.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_TRIES 16 /* connections per worker before giving up on the rest */
#define MAX_WORKERS 1024

/* One GET /_loom/plugins. Returns the parsed body, or NULL after printing
 * why (not reachable, a token wanted, not 200, not JSON). */
static json_t *fetch_listing(const loom__admin_addr *a)
{
    char *body = NULL;
    if (loom__admin_get(a, "/_loom/plugins", "plugins", &body)) return NULL;
    json_error_t je;
    json_t *j = json_loads(body, 0, &je);
    free(body);
    if (!json_is_object(j) || !json_is_integer(json_object_get(j, "worker"))) {
        fprintf(stderr, "loom plugins: the listing is not what loom sends (%s)\n",
                j ? "no worker id" : je.text);
        json_decref(j);
        return NULL;
    }
    return j;
}

static const char *str(json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s ? s : "-";
}

/* A cell padded to its column; the last one ends the line, unpadded. */
static void put_cell(const char *text, int last, int right, int width)
{
    if (last && !right)
        printf("%s\n", text);
    else if (last)
        printf("%*s\n", width, text);
    else
        printf("%*s  ", right ? width : -width, text);
}

/* One worker as a table, like `ls -l`: a heading line, then one row per
 * plugin (columns as wide as their widest cell), and its last reload error
 * indented under a row that has one. */
static void print_table(json_t *w)
{
    json_t *ps = json_object_get(w, "plugins");
    size_t np = json_array_size(ps);
    json_int_t reloads = json_integer_value(json_object_get(w, "reloads"));
    json_t *pid = json_object_get(w, "pid");
    printf("worker %lld", (long long)json_integer_value(json_object_get(w, "worker")));
    if (json_is_integer(pid)) printf(" (pid %lld)", (long long)json_integer_value(pid));
    printf(": %zu plugin%s, %lld reload%s\n", np, np == 1 ? "" : "s", (long long)reloads,
           reloads == 1 ? "" : "s");
    enum { NCOL = 6 };
    static const char *head[NCOL] = {"NAME", "VERSION", "GEN", "SHA256", "IN FLIGHT", "LOADED AT"};
    static const int right[NCOL] = {0, 0, 1, 0, 1, 0};
    char(*cell)[NCOL][80] = calloc(np ? np : 1, sizeof *cell);
    if (!cell) return;
    int width[NCOL];
    for (int c = 0; c < NCOL; c++) width[c] = (int)strlen(head[c]);
    for (size_t i = 0; i < np; i++) {
        json_t *p = json_array_get(ps, i);
        snprintf(cell[i][0], 80, "%s", str(p, "name"));
        snprintf(cell[i][1], 80, "%s", str(p, "version"));
        snprintf(cell[i][2], 80, "%lld",
                 (long long)json_integer_value(json_object_get(p, "generation")));
        snprintf(cell[i][3], 80, "%.12s", str(p, "sha256"));
        snprintf(cell[i][4], 80, "%lld",
                 (long long)json_integer_value(json_object_get(p, "inflight")));
        time_t t = (time_t)json_integer_value(json_object_get(p, "loaded_at"));
        struct tm tm;
        if (!localtime_r(&t, &tm) || !strftime(cell[i][5], 80, "%Y-%m-%d %H:%M:%S", &tm))
            snprintf(cell[i][5], 80, "-");
        for (int c = 0; c < NCOL; c++)
            if ((int)strlen(cell[i][c]) > width[c]) width[c] = (int)strlen(cell[i][c]);
    }
    for (int c = 0; c < NCOL; c++) put_cell(head[c], c + 1 == NCOL, right[c], width[c]);
    for (size_t i = 0; i < np; i++) {
        for (int c = 0; c < NCOL; c++) put_cell(cell[i][c], c + 1 == NCOL, right[c], width[c]);
        const char *e = json_string_value(json_object_get(json_array_get(ps, i), "last_error"));
        if (e) printf("  last reload refused: %s\n", e);
    }
    free(cell);
}

/* Hears from every worker (or gives up after MAX_TRIES each) and prints a
 * table (or a JSON line) per worker. Returns the exit status. */
static int list(const loom__admin_addr *a, int as_json)
{
    json_t *first = fetch_listing(a);
    if (!first) return 1;
    json_int_t nw = json_integer_value(json_object_get(first, "workers"));
    if (nw < 1 || nw > MAX_WORKERS) nw = 1; /* an older server does not say */
    json_t **seen = calloc((size_t)nw, sizeof *seen);
    if (!seen) {
        json_decref(first);
        return 1;
    }
    size_t nseen = 0;
    json_t *j = first;
    for (long tries = 1;; tries++) {
        json_int_t id = json_integer_value(json_object_get(j, "worker"));
        if (id >= 0 && id < nw && !seen[id]) {
            seen[id] = j;
            nseen++;
        } else {
            json_decref(j);
        }
        if (nseen == (size_t)nw || tries >= MAX_TRIES * nw) break;
        if (!(j = fetch_listing(a))) break;
    }
    for (json_int_t id = 0; id < nw; id++) {
        if (!seen[id]) continue;
        if (as_json) {
            char *t = json_dumps(seen[id], JSON_COMPACT);
            if (t) printf("%s\n", t);
            free(t);
        } else {
            if (id && seen[id - 1]) printf("\n");
            print_table(seen[id]);
        }
    }
    for (json_int_t id = 0; id < nw; id++)
        if (!seen[id])
            fprintf(stderr, "loom plugins: worker %lld did not answer in %lld connections\n",
                    (long long)id, (long long)(MAX_TRIES * nw));
    for (json_int_t id = 0; id < nw; id++) json_decref(seen[id]);
    free(seen);
    return nseen == (size_t)nw ? 0 : 1;
}

int loom__cmd_plugins(int argc, char **argv)
{
    loom__admin_addr a = {0};
    int as_json = 0;
    static const char usage[] =
        "usage: loom plugins [--admin HOST:PORT] [--config FILE] [--token TOKEN] [--json]\n"
        "Lists the plugins each worker of a running server has loaded, one table\n"
        "per worker: name, version, generation, file hash (sha256, first 12 hex\n"
        "digits), requests in flight, load time, and the last refused reload.\n"
        "--json prints each worker's listing as the server sends it, one line\n"
        "per worker. It asks the server's admin listener (GET /_loom/plugins).\n"
        "\n" LOOM__ADMIN_OPTIONS "  --host ADDR, --port N  the admin address in two parts\n"
        "  --json             print the listings as the server sends them\n";
    int rc = loom__admin_args(&a, argc, argv, "plugins", usage, &as_json);
    if (rc >= 0) return rc;
    rc = list(&a, as_json);
    loom__admin_addr_free(&a);
    return rc;
}
