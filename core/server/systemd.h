/* systemd integration: readiness and status notifications (Type=notify)
 * and the listening sockets systemd passes (socket activation), through
 * libsystemd.
 *
 * Both work without systemd too: the protocol is two environment variables
 * (NOTIFY_SOCKET; LISTEN_FDS with LISTEN_PID), which tests set themselves.
 * Without them every call here does nothing. */
#ifndef LOOM_SERVER_SYSTEMD_H
#define LOOM_SERVER_SYSTEMD_H

#include <stddef.h>

/* Sends a notification ("READY=1", "STATUS=...", "STOPPING=1", ...) to the
 * service manager when NOTIFY_SOCKET is set. Never fails the caller; a
 * failure is logged at debug level. */
void loom__sd_notify(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The sockets passed by socket activation (LISTEN_FDS, for this pid): sets
 * *first to the first descriptor (3) and returns how many, 0 when none.
 * The variables are removed from the environment, so that nothing started
 * later takes them for its own. Each socket is made close-on-exec. */
int loom__sd_listen_fds(int *first);

/* Whether `fd` is a listening TCP socket bound to host:port (host an IPv4
 * or IPv6 literal). */
int loom__sd_socket_is(int fd, const char *host, int port);

/* Describes the address `fd` is bound to ("127.0.0.1:8080", "[::1]:80", or
 * "a unix socket" / "not a TCP socket") into buf. */
const char *loom__sd_socket_name(int fd, char *buf, size_t len);

#endif
