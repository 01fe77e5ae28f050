/* The worker loop: listener, periodic sweep (timeouts, access log), signals
 * and the graceful stop. */
#include "server/access_log.h"
#include "server/conn.h"
#include "server/uring.h"
#include "util/arena.h"
#include "util/log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define SWEEP_MS 250

static void close_handle(uv_handle_t *h);

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

/* Out of file descriptors: a pending connection would make the listener
 * ready on every loop turn. Give the spare fd up, take the connection and
 * close it (the client sees a close instead of waiting), then take the
 * spare back. */
static void shed_one(loom__worker *w)
{
    if (w->spare_fd < 0) return;
    close(w->spare_fd);
    int fd = accept4(w->listen_fd, NULL, NULL, SOCK_CLOEXEC);
    if (fd >= 0) close(fd);
    w->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
}

static void on_listener(uv_poll_t *h, int status, int events)
{
    loom__worker *w = h->data;
    (void)events;
    if (status < 0) {
        loom__warn("listener: %s", uv_strerror(status));
        return;
    }
    /* A bounded batch: accepting forever would starve the connections. */
    for (int i = 0; i < 64 && w->listening; i++) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof ss;
        int fd = accept4(w->listen_fd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) return;
            if (errno == EMFILE || errno == ENFILE) {
                uint64_t now = uv_now(w->loop);
                if (!w->shed_logged || now - w->shed_logged >= 1000) {
                    loom__warn("accept: %s: closing new connections until some end",
                               strerror(errno));
                    w->shed_logged = now ? now : 1;
                }
                shed_one(w);
                return;
            }
            loom__warn("accept: %s", strerror(errno));
            return;
        }
        loom__conn_accept(w, fd, (struct sockaddr *)&ss, sl);
    }
}

/* Stops listening: the poll handle first (it must not watch a closed fd). */
static void stop_listening(loom__worker *w)
{
    if (!w->listening) return;
    w->listening = 0;
    close_handle((uv_handle_t *)&w->listener);
    close(w->listen_fd);
    w->listen_fd = -1;
    if (w->spare_fd >= 0) close(w->spare_fd);
    w->spare_fd = -1;
}

static void on_sweep(uv_timer_t *t)
{
    loom__worker *w = t->data;
    loom__conn_sweep(w);
    if (w->access_log) loom__access_log_flush(w->access_log);
}

static void close_handle(uv_handle_t *h)
{
    if (!uv_is_closing(h)) uv_close(h, NULL);
}

/* Everything is drained: close the worker's own handles so uv_run returns. */
static void worker_stopped(loom__worker *w)
{
    if (w->stopping) return;
    w->stopping = 1;
    close_handle((uv_handle_t *)&w->sweep);
    close_handle((uv_handle_t *)&w->shutdown_timer);
    for (int i = 0; i < 4; i++) close_handle((uv_handle_t *)&w->sig[i]);
    /* Closing the watchers restored the default actions; a late signal
     * (a master repeating its stop) must not kill a worker that is already
     * finishing cleanly. */
    signal(SIGTERM, SIG_IGN);
    signal(SIGINT, SIG_IGN);
    signal(SIGQUIT, SIG_IGN);
    signal(SIGHUP, SIG_IGN);
    stop_listening(w);
    if (w->on_stopped) w->on_stopped(w);
}

void loom__worker_conn_closed(loom__worker *w)
{
    if (w->draining && w->nconns == 0) worker_stopped(w);
}

static void on_shutdown_timeout(uv_timer_t *t)
{
    loom__worker *w = t->data;
    if (w->nconns) loom__warn("shutdown timeout: closing %zu connections", w->nconns);
    loom__conn *c = w->conns, *next;
    for (; c; c = next) {
        next = c->next;
        loom__conn_close(c);
    }
    if (w->nconns == 0) worker_stopped(w);
}

void loom__worker_drain(loom__worker *w)
{
    if (w->draining) return;
    w->draining = 1;
    loom__info("stopping: no new connections; %zu open", w->nconns);
    stop_listening(w);
    if (w->on_drain) w->on_drain(w);
    loom__conn *c = w->conns, *next;
    for (; c; c = next) {
        next = c->next;
        if (loom__conn_idle(c)) loom__conn_close(c);
    }
    if (w->nconns == 0) {
        worker_stopped(w);
        return;
    }
    uv_timer_start(&w->shutdown_timer, on_shutdown_timeout, w->cfg->shutdown_timeout, 0);
}

static void on_signal(uv_signal_t *s, int signum)
{
    loom__worker *w = s->data;
    if (signum == SIGHUP) {
        if (w->on_sighup) w->on_sighup(w);
        return;
    }
    if (w->draining && signum == SIGINT) {
        loom__warn("second SIGINT: stopping now");
        w->exit_code = 1;
        on_shutdown_timeout(&w->shutdown_timer);
        return;
    }
    loom__info("%s: graceful stop", strsignal(signum));
    loom__worker_drain(w);
}

int loom__worker_init(loom__worker *w, uv_loop_t *loop, const loom__config *cfg, int listen_fd,
                      int id)
{
    w->loop = loop;
    w->cfg = cfg;
    w->id = id;
    w->limits.max_line_size = cfg->max_line_size;
    w->limits.max_field_size = cfg->max_field_size;
    w->limits.max_headers = cfg->max_headers;
    w->limits.client_max_size = cfg->client_max_size;
    w->limits.max_chunk_ext = 4096;
    w->listen_fd = listen_fd;
    if (cfg->io != LOOM__IO_EPOLL) {
        char why[256];
        if (loom__uring_open(w, why, sizeof why) < 0) {
            if (cfg->io == LOOM__IO_URING) {
                loom__err("io \"uring\": %s", why);
                return UV_ENOSYS;
            }
            /* Containers and seccomp policies often refuse io_uring. */
            if (id <= 0)
                loom__info("io_uring not available (%s): connections use epoll", why);
            else
                loom__debug("io_uring not available (%s): connections use epoll", why);
        }
    }
    loom__debug("worker %d: connections on %s", id, w->ring ? "io_uring" : "epoll");
    w->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    /* uv_poll_init_socket also makes the listener non-blocking, which
     * accept4 relies on. */
    int rc = uv_poll_init_socket(loop, &w->listener, listen_fd);
    if (rc == 0) {
        w->listener.data = w;
        rc = uv_poll_start(&w->listener, UV_READABLE, on_listener);
        if (rc < 0) uv_close((uv_handle_t *)&w->listener, NULL);
    }
    if (rc < 0) {
        loom__err("listen: %s", uv_strerror(rc));
        if (w->spare_fd >= 0) close(w->spare_fd);
        loom__uring_close(w);
        return rc;
    }
    w->listening = 1;
    uv_timer_init(loop, &w->sweep);
    w->sweep.data = w;
    uv_timer_start(&w->sweep, on_sweep, SWEEP_MS, SWEEP_MS);
    uv_timer_init(loop, &w->shutdown_timer);
    w->shutdown_timer.data = w;
    static const int sigs[4] = {SIGINT, SIGTERM, SIGQUIT, SIGHUP};
    for (int i = 0; i < 4; i++) {
        uv_signal_init(loop, &w->sig[i]);
        w->sig[i].data = w;
        uv_signal_start(&w->sig[i], on_signal, sigs[i]);
    }
    signal(SIGPIPE, SIG_IGN);
    return 0;
}

void loom__worker_poll(loom__worker *w)
{
    if (w->ring)
        loom__uring_poll(w);
    else
        uv_run(w->loop, UV_RUN_NOWAIT);
}

int loom__worker_run(loom__worker *w)
{
    if (w->ring)
        loom__uring_run(w);
    else
        uv_run(w->loop, UV_RUN_DEFAULT);
    if (w->access_log) loom__access_log_flush(w->access_log);
    loom__buf_free(&w->out);
    loom__uring_close(w);
    loom__arena_trim();
    return w->exit_code;
}
