/* The admin listener's client side (see admin_client.h). */
#include "cli/admin_client.h"
#include "util/config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#define DEFAULT_CONFIG "/etc/loom/loom.json"
#define MAX_RESPONSE (16u << 20)

/* "HOST:PORT" or "[V6]:PORT" into a. Returns 0 or -1. */
static int parse_addr(loom__admin_addr *a, const char *spec)
{
    const char *p = spec, *colon;
    size_t hl;
    if (*p == '[') {
        const char *close = strchr(p, ']');
        if (!close || close[1] != ':') return -1;
        hl = (size_t)(close - p - 1);
        p++;
        colon = close + 1;
    } else {
        colon = strrchr(p, ':');
        if (!colon) return -1;
        hl = (size_t)(colon - p);
    }
    if (hl == 0 || hl >= sizeof a->host) return -1;
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (end == colon + 1 || *end || port < 1 || port > 65535) return -1;
    memcpy(a->host, p, hl);
    a->host[hl] = '\0';
    a->port = (int)port;
    a->set = 1;
    return 0;
}

/* The admin listener of a config file. Returns 0, or -1 after printing. */
static int from_config(loom__admin_addr *a, const char *path, const char *cmd, int quiet)
{
    loom__config c;
    loom__config_defaults(&c);
    char err[512];
    int rc = -1;
    if (loom__config_load(&c, path, err, sizeof err)) {
        if (!quiet) fprintf(stderr, "loom %s: config %s\n", cmd, err);
    } else if (!c.admin) {
        if (!quiet)
            fprintf(stderr,
                    "loom %s: %s has no admin listener (set \"admin\": {\"listen\": "
                    "\"127.0.0.1:9090\"} there)\n",
                    cmd, path);
    } else if (parse_addr(a, c.admin_listen ? c.admin_listen : LOOM__ADMIN_DEFAULT)) {
        if (!quiet)
            fprintf(stderr, "loom %s: %s: key 'admin.listen' is not HOST:PORT\n", cmd, path);
    } else {
        if (c.admin_token && !a->token) a->token = strdup(c.admin_token);
        a->from = path;
        rc = 0;
    }
    loom__config_free(&c);
    return rc;
}

int loom__admin_option(loom__admin_addr *a, int argc, char **argv, int *i, const char *cmd)
{
    const char *o = argv[*i];
    int is = strcmp(o, "--admin") == 0 || strcmp(o, "--config") == 0 || strcmp(o, "--token") == 0 ||
             strcmp(o, "--host") == 0 || strcmp(o, "--port") == 0;
    if (!is) return 0;
    if (*i + 1 >= argc) {
        fprintf(stderr, "loom %s: %s needs a value\n", cmd, o);
        return -1;
    }
    const char *v = argv[++*i];
    if (strcmp(o, "--admin") == 0) {
        if (parse_addr(a, v)) {
            fprintf(stderr, "loom %s: --admin '%s' is not HOST:PORT ([::1]:9090 for IPv6)\n", cmd,
                    v);
            return -1;
        }
        a->from = "--admin";
    } else if (strcmp(o, "--config") == 0) {
        if (from_config(a, v, cmd, 0)) return -1;
    } else if (strcmp(o, "--token") == 0) {
        free(a->token);
        a->token = strdup(v);
    } else if (strcmp(o, "--host") == 0) {
        /* The old spelling of `loom plugins`: --host and --port. */
        snprintf(a->host, sizeof a->host, "%s", v);
        if (!a->port) a->port = 9090;
        a->set = 1;
        a->from = "--host/--port";
    } else {
        char *end;
        long p = strtol(v, &end, 10);
        if (end == v || *end || p < 1 || p > 65535) {
            fprintf(stderr, "loom %s: --port '%s' is not a port number\n", cmd, v);
            return -1;
        }
        if (!a->host[0]) snprintf(a->host, sizeof a->host, "127.0.0.1");
        a->port = (int)p;
        a->set = 1;
        a->from = "--host/--port";
    }
    return 1;
}

int loom__admin_finish(loom__admin_addr *a, const char *cmd)
{
    (void)cmd;
    if (!a->set && (access(DEFAULT_CONFIG, R_OK) != 0 || from_config(a, DEFAULT_CONFIG, cmd, 1))) {
        parse_addr(a, LOOM__ADMIN_DEFAULT);
        a->from = "the default address";
    }
    const char *env = getenv("LOOM_ADMIN_TOKEN");
    if (!a->token && env && *env) a->token = strdup(env);
    return 0;
}

int loom__admin_args(loom__admin_addr *a, int argc, char **argv, const char *cmd, const char *usage,
                     int *as_json)
{
    for (int i = 0; i < argc; i++) {
        int t = loom__admin_option(a, argc, argv, &i, cmd);
        if (t < 0) {
            loom__admin_addr_free(a);
            return 2;
        }
        if (t) continue;
        if (strcmp(argv[i], "--json") == 0) {
            *as_json = 1;
            continue;
        }
        int help = strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0;
        fputs(usage, help ? stdout : stderr);
        loom__admin_addr_free(a);
        return help ? 0 : 2;
    }
    loom__admin_finish(a, cmd);
    return -1;
}

void loom__admin_addr_free(loom__admin_addr *a)
{
    free(a->token);
    a->token = NULL;
}

static int connect_to(const loom__admin_addr *a, char *why, size_t whylen)
{
    struct sockaddr_storage ss;
    socklen_t sl;
    memset(&ss, 0, sizeof ss);
    struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, a->host, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons((uint16_t)a->port);
        sl = sizeof *a4;
    } else if (inet_pton(AF_INET6, a->host, &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)a->port);
        sl = sizeof *a6;
    } else {
        snprintf(why, whylen, "'%s' is not an IPv4 or IPv6 address", a->host);
        return -1;
    }
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(why, whylen, "socket: %s", strerror(errno));
        return -1;
    }
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (connect(fd, (struct sockaddr *)&ss, sl) < 0) {
        snprintf(why, whylen, "%s", strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

int loom__admin_get(const loom__admin_addr *a, const char *path, const char *cmd, char **body)
{
    char where[96], why[160];
    int v6 = strchr(a->host, ':') != NULL;
    snprintf(where, sizeof where, "%s%s%s:%d", v6 ? "[" : "", a->host, v6 ? "]" : "", a->port);
    int fd = connect_to(a, why, sizeof why);
    if (fd < 0) {
        fprintf(stderr,
                "loom %s: the admin endpoint %s (%s) is not reachable: %s; is loom running "
                "with \"admin\" on?\n",
                cmd, where, a->from ? a->from : "given", why);
        return 1;
    }
    char req[1024];
    int rl =
        snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: %s\r\n%s%s%sConnection: close\r\n\r\n",
                 path, where, a->token ? "Authorization: Bearer " : "", a->token ? a->token : "",
                 a->token ? "\r\n" : "");
    if (rl <= 0 || rl >= (int)sizeof req || write(fd, req, (size_t)rl) != rl) {
        fprintf(stderr, "loom %s: cannot send the request to %s: %s\n", cmd, where,
                rl >= (int)sizeof req ? "the token is too long" : strerror(errno));
        close(fd);
        return 1;
    }
    size_t cap = 65536, got = 0;
    char *resp = malloc(cap + 1);
    ssize_t n = 0;
    while (resp && (n = read(fd, resp + got, cap - got)) > 0) {
        got += (size_t)n;
        if (got == cap) {
            char *bigger = cap < MAX_RESPONSE ? realloc(resp, cap * 2 + 1) : NULL;
            if (!bigger) break;
            resp = bigger;
            cap *= 2;
        }
    }
    int timed_out = n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
    close(fd);
    if (!resp) return 1;
    resp[got] = '\0';
    char *eol = strstr(resp, "\r\n");
    char *start = strstr(resp, "\r\n\r\n");
    if (got == 0 || !eol) {
        fprintf(stderr, "loom %s: the admin endpoint %s %s\n", cmd, where,
                timed_out ? "did not answer within 5 s" : "closed without an answer");
        free(resp);
        return 1;
    }
    *eol = '\0';
    if (strncmp(resp, "HTTP/1.1 401", 12) == 0) {
        fprintf(stderr,
                "loom %s: the admin endpoint %s %s: give --token, set LOOM_ADMIN_TOKEN, "
                "or --config with the server's config\n",
                cmd, where, a->token ? "refused the token" : "wants a token");
        free(resp);
        return 1;
    }
    if (strncmp(resp, "HTTP/1.1 200", 12) != 0 || !start) {
        fprintf(stderr, "loom %s: the admin endpoint %s answered '%s' to GET %s\n", cmd, where,
                resp, path);
        free(resp);
        return 1;
    }
    memmove(resp, start + 4, got - (size_t)(start + 4 - resp) + 1);
    *body = resp;
    return 0;
}
