/* `loom plugins`: what a running server has loaded, per worker.
 *
 * The listing is GET /_loom/plugins (with "admin": true, loopback only),
 * answered by whichever worker the kernel hands the connection to. Each
 * answer says how many workers there are, so the command connects again
 * (a new source port lands on another SO_REUSEPORT listener by hash) until
 * it has heard from every worker or MAX_TRIES per worker have gone by. */
#include "cli/cli.h"

#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define MAX_TRIES 16 /* connections per worker before giving up on the rest */
#define MAX_WORKERS 1024

/* One GET /_loom/plugins. Returns the parsed body, or NULL after printing
 * why (connect failure, not 200, not JSON). */
static json_t *fetch_listing(const struct sockaddr_in *a, const char *host)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        fprintf(stderr, "loom plugins: socket: %s\n", strerror(errno));
        return NULL;
    }
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (connect(fd, (const struct sockaddr *)a, sizeof *a) < 0) {
        fprintf(stderr, "loom plugins: cannot connect to %s:%d: %s\n", host, ntohs(a->sin_port),
                strerror(errno));
        close(fd);
        return NULL;
    }
    char req[256];
    int rl = snprintf(req, sizeof req,
                      "GET /_loom/plugins HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", host);
    if (write(fd, req, (size_t)rl) != rl) {
        fprintf(stderr, "loom plugins: cannot send the request: %s\n", strerror(errno));
        close(fd);
        return NULL;
    }
    static char resp[1 << 20];
    size_t got = 0;
    ssize_t n;
    while (got < sizeof resp - 1 && (n = read(fd, resp + got, sizeof resp - 1 - got)) > 0)
        got += (size_t)n;
    close(fd);
    resp[got] = '\0';
    char *body = strstr(resp, "\r\n\r\n");
    if (strncmp(resp, "HTTP/1.1 200", 12) != 0 || !body) {
        char *eol = strchr(resp, '\r');
        if (eol) *eol = '\0';
        fprintf(stderr, "loom plugins: the server answered '%s' (is \"admin\": true set?)\n",
                got ? resp : "nothing");
        return NULL;
    }
    json_error_t je;
    json_t *j = json_loads(body + 4, 0, &je);
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

int loom__cmd_plugins(int argc, char **argv)
{
    const char *host = "127.0.0.1";
    int port = 8080, as_json = 0;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--host") == 0 && i + 1 < argc) {
            host = argv[++i];
        } else if (strcmp(argv[i], "--port") == 0 && i + 1 < argc) {
            port = atoi(argv[++i]);
        } else if (strcmp(argv[i], "--json") == 0) {
            as_json = 1;
        } else {
            int help = strcmp(argv[i], "--help") == 0;
            fprintf(help ? stdout : stderr,
                    "usage: loom plugins [--host ADDR] [--port N] [--json]\n"
                    "Lists the plugins each worker of a running server has loaded, one table\n"
                    "per worker: name, version, generation, file hash (sha256, first 12 hex\n"
                    "digits), requests in flight, load time, and the last refused reload.\n"
                    "--json prints each worker's listing as the server sends it, one line\n"
                    "per worker. The server must run with \"admin\": true (GET /_loom/plugins,\n"
                    "loopback only).\n");
            return help ? 0 : 2;
        }
    }
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    if (port < 1 || port > 65535) {
        fprintf(stderr, "loom plugins: --port '%d': not a port\n", port);
        return 2;
    }
    a.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, host, &a.sin_addr) != 1) {
        fprintf(stderr, "loom plugins: --host '%s': not an IPv4 address\n", host);
        return 2;
    }
    json_t *first = fetch_listing(&a, host);
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
        if (!(j = fetch_listing(&a, host))) break;
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
