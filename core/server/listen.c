/* Listening sockets (see listen.h). */
#include "server/listen.h"
#include "server/systemd.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int loom__listen_socket(const char *host, int port, int reuseport, char *err, size_t errlen)
{
    struct sockaddr_storage ss;
    socklen_t sl;
    memset(&ss, 0, sizeof ss);
    struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons((uint16_t)port);
        sl = sizeof *a4;
    } else if (inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)port);
        sl = sizeof *a6;
    } else {
        snprintf(err, errlen, "host '%s': not an IPv4 or IPv6 address", host);
        return -1;
    }
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errlen, "socket: %s", strerror(errno));
        return -1;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (reuseport) setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    if (ss.ss_family == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    if (bind(fd, (struct sockaddr *)&ss, sl) < 0) {
        snprintf(err, errlen, "cannot listen on %s port %d: %s", host, port, strerror(errno));
        close(fd);
        return -1;
    }
    if (listen(fd, 4096) < 0) {
        snprintf(err, errlen, "listen: %s", strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

int loom__socket_port(int fd)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) < 0) return -1;
    if (ss.ss_family == AF_INET) return ntohs(((struct sockaddr_in *)&ss)->sin_port);
    if (ss.ss_family == AF_INET6) return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return -1;
}

const int *loom__listen_set_worker(const loom__listen_set *s, int w)
{
    return s->fds + (size_t)w * (size_t)s->nlisten;
}

int loom__listen_set_rebind(loom__listen_set *s, int w, char *err, size_t errlen)
{
    int *row = s->fds + (size_t)w * (size_t)s->nlisten;
    for (int l = 0; l < s->nlisten; l++) {
        if (row[l] >= 0) continue;
        if (s->inherited && s->inherited[l] >= 0) {
            row[l] = fcntl(s->inherited[l], F_DUPFD_CLOEXEC, 3);
            if (row[l] < 0) {
                snprintf(err, errlen, "socket activation: dup: %s", strerror(errno));
                loom__listen_set_close_worker(s, w);
                return -1;
            }
            continue;
        }
        const loom__listen_cfg *lc = &s->cfg->listen[l];
        int port = s->ports[l] ? s->ports[l] : lc->port;
        row[l] = loom__listen_socket(lc->host, port, s->reuseport, err, errlen);
        if (row[l] < 0) {
            loom__listen_set_close_worker(s, w);
            return -1;
        }
        if (!s->ports[l]) s->ports[l] = loom__socket_port(row[l]);
    }
    return 0;
}

void loom__listen_set_close_worker(loom__listen_set *s, int w)
{
    int *row = s->fds + (size_t)w * (size_t)s->nlisten;
    for (int l = 0; l < s->nlisten; l++) {
        if (row[l] >= 0) close(row[l]);
        row[l] = -1;
    }
}

/* Matches the sockets systemd passed to the listeners, by address. */
static int take_inherited(loom__listen_set *s, char *err, size_t errlen)
{
    int first, n = loom__sd_listen_fds(&first);
    if (n == 0) return 0;
    s->inherited = malloc((size_t)s->nlisten * sizeof *s->inherited);
    if (!s->inherited) {
        snprintf(err, errlen, "out of memory");
        for (int i = 0; i < n; i++) close(first + i);
        return -1;
    }
    for (int l = 0; l < s->nlisten; l++) s->inherited[l] = -1;
    int rc = 0;
    for (int i = 0; i < n; i++) {
        int fd = first + i, used = 0;
        for (int l = 0; l < s->nlisten && !used && rc == 0; l++) {
            const loom__listen_cfg *lc = &s->cfg->listen[l];
            if (s->inherited[l] < 0 && loom__sd_socket_is(fd, lc->host, lc->port)) {
                s->inherited[l] = fd;
                s->ports[l] = lc->port;
                s->ninherited++;
                used = 1;
            }
        }
        if (!used && rc == 0) {
            char name[96];
            snprintf(err, errlen,
                     "socket activation: the socket systemd passed on %s (fd %d) matches no "
                     "listener of the config",
                     loom__sd_socket_name(fd, name, sizeof name), fd);
            rc = -1;
        }
        if (!used) close(fd);
    }
    return rc;
}

int loom__listen_set_open(loom__listen_set *s, const loom__config *cfg, int nworkers, int reuseport,
                          char *err, size_t errlen)
{
    memset(s, 0, sizeof *s);
    s->cfg = cfg;
    s->nworkers = nworkers;
    s->nlisten = (int)cfg->nlisten;
    s->reuseport = reuseport;
    size_t n = (size_t)nworkers * cfg->nlisten;
    s->fds = malloc(n * sizeof *s->fds);
    s->ports = calloc(cfg->nlisten, sizeof *s->ports);
    if (!s->fds || !s->ports) {
        snprintf(err, errlen, "out of memory");
        loom__listen_set_free(s);
        return -1;
    }
    for (size_t i = 0; i < n; i++) s->fds[i] = -1;
    if (take_inherited(s, err, errlen)) {
        loom__listen_set_free(s);
        return -1;
    }
    for (int w = 0; w < nworkers; w++) {
        if (loom__listen_set_rebind(s, w, err, errlen)) {
            loom__listen_set_free(s);
            return -1;
        }
    }
    return 0;
}

void loom__listen_set_free(loom__listen_set *s)
{
    if (s->fds)
        for (int w = 0; w < s->nworkers; w++) loom__listen_set_close_worker(s, w);
    if (s->inherited)
        for (int l = 0; l < s->nlisten; l++)
            if (s->inherited[l] >= 0) close(s->inherited[l]);
    free(s->fds);
    free(s->ports);
    free(s->inherited);
    s->fds = NULL;
    s->ports = NULL;
    s->inherited = NULL;
}
