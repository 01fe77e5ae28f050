/* systemd integration (see systemd.h). */
#include "server/systemd.h"
#include "util/log.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <systemd/sd-daemon.h>

void loom__sd_notify(const char *fmt, ...)
{
    if (!getenv("NOTIFY_SOCKET")) return;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    /* The variable stays set: the master notifies again (STATUS,
     * STOPPING); workers never do, NotifyAccess=main would ignore them. */
    int rc = sd_notify(0, msg);
    if (rc < 0) loom__debug("sd_notify: %s", strerror(-rc));
}

int loom__sd_listen_fds(int *first)
{
    *first = SD_LISTEN_FDS_START;
    int n = sd_listen_fds(1);
    if (n < 0) {
        loom__warn("socket activation: %s", strerror(-n));
        return 0;
    }
    for (int i = 0; i < n; i++) fcntl(*first + i, F_SETFD, FD_CLOEXEC);
    return n;
}

int loom__sd_socket_is(int fd, const char *host, int port)
{
    struct sockaddr_in a4;
    struct sockaddr_in6 a6;
    memset(&a4, 0, sizeof a4);
    memset(&a6, 0, sizeof a6);
    if (inet_pton(AF_INET, host, &a4.sin_addr) == 1) {
        a4.sin_family = AF_INET;
        a4.sin_port = htons((uint16_t)port);
        return sd_is_socket_sockaddr(fd, SOCK_STREAM, (struct sockaddr *)&a4, sizeof a4, 1) > 0;
    }
    if (inet_pton(AF_INET6, host, &a6.sin6_addr) == 1) {
        a6.sin6_family = AF_INET6;
        a6.sin6_port = htons((uint16_t)port);
        return sd_is_socket_sockaddr(fd, SOCK_STREAM, (struct sockaddr *)&a6, sizeof a6, 1) > 0;
    }
    return 0;
}

const char *loom__sd_socket_name(int fd, char *buf, size_t len)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    char a[INET6_ADDRSTRLEN];
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) < 0) {
        snprintf(buf, len, "not a socket");
    } else if (ss.ss_family == AF_INET) {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
        inet_ntop(AF_INET, &s4->sin_addr, a, sizeof a);
        snprintf(buf, len, "%s:%d", a, ntohs(s4->sin_port));
    } else if (ss.ss_family == AF_INET6) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
        inet_ntop(AF_INET6, &s6->sin6_addr, a, sizeof a);
        snprintf(buf, len, "[%s]:%d", a, ntohs(s6->sin6_port));
    } else if (ss.ss_family == AF_UNIX) {
        snprintf(buf, len, "a unix socket");
    } else {
        snprintf(buf, len, "a socket of family %d", (int)ss.ss_family);
    }
    return buf;
}
