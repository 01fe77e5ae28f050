/* The worker loop: listener, periodic sweep (timeouts, access log), signals
 * and the graceful stop. */
#include "server/access_log.h"
#include "server/conn.h"
#include "server/tls_reload.h"
#include "server/uring.h"
#include "tls/server.h"
#include "tls/tickets.h"
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

/* Out of file descriptors: a pending connection would make the listener
 * ready on every loop turn. Give the spare fd up, take the connection and
 * close it (the client sees a close instead of waiting), then take the
 * spare back. */
static void shed_one(loom__worker *w, int listen_fd)
{
    if (w->spare_fd < 0) return;
    close(w->spare_fd);
    int fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
    if (fd >= 0) close(fd);
    w->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
}

static void on_listener(uv_poll_t *h, int status, int events)
{
    loom__listener *l = h->data;
    loom__worker *w = l->w;
    (void)events;
    if (status < 0) {
        loom__warn("listener: %s", uv_strerror(status));
        return;
    }
    /* A bounded batch: accepting forever would starve the connections. */
    for (int i = 0; i < 64 && w->listening; i++) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof ss;
        int fd = accept4(l->fd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
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
                shed_one(w, l->fd);
                return;
            }
            loom__warn("accept: %s", strerror(errno));
            return;
        }
        loom__conn_accept(w, l, fd, (struct sockaddr *)&ss, sl);
    }
}

/* Stops listening: the poll handles first (they must not watch closed fds). */
void loom__worker_stop_listening(loom__worker *w)
{
    if (!w->listening) return;
    w->listening = 0;
    for (int i = 0; i < w->nls; i++) {
        close_handle((uv_handle_t *)&w->ls[i].poll);
        close(w->ls[i].fd);
        w->ls[i].fd = -1;
    }
    if (w->spare_fd >= 0) close(w->spare_fd);
    w->spare_fd = -1;
}

static void on_sweep(uv_timer_t *t)
{
    loom__worker *w = t->data;
    loom__conn_sweep(w);
    if (w->access_log) loom__access_log_flush(w->access_log);
    loom__log_flush();    /* error log lines a buffered worker gathered */
    loom__tickets_tick(); /* only in the process that owns the keys (--single) */
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
    for (int i = 0; i < 5; i++) close_handle((uv_handle_t *)&w->sig[i]);
    /* Closing the watchers restored the default actions; a late signal
     * (a master repeating its stop) must not kill a worker that is already
     * finishing cleanly. */
    signal(SIGTERM, SIG_IGN);
    signal(SIGINT, SIG_IGN);
    signal(SIGQUIT, SIG_IGN);
    signal(SIGHUP, SIG_IGN);
    signal(SIGUSR1, SIG_IGN);
    loom__worker_stop_listening(w);
    loom__tls_watch_stop(w->tls_watch);
    w->tls_watch = NULL;
    if (w->on_stopped) w->on_stopped(w);
}

void loom__worker_conn_closed(loom__worker *w)
{
    if (w->draining && w->nconns == 0) worker_stopped(w);
}

/* Closes every connection now, requests in flight or not. */
static void close_all(loom__worker *w)
{
    loom__conn *c = w->conns, *next;
    for (; c; c = next) {
        next = c->next;
        loom__conn_close(c);
    }
    if (w->nconns == 0) worker_stopped(w);
}

static void on_shutdown_timeout(uv_timer_t *t)
{
    loom__worker *w = t->data;
    if (w->nconns)
        loom__warn("shutdown_timeout (%.3g s) passed: closing %zu connection%s",
                   (double)w->cfg->shutdown_timeout / 1000.0, w->nconns, w->nconns == 1 ? "" : "s");
    close_all(w);
}

void loom__worker_drain(loom__worker *w)
{
    if (w->draining) return;
    w->draining = 1;
    loom__info("stopping: no new connections; %zu open", w->nconns);
    loom__worker_stop_listening(w);
    if (w->on_drain) w->on_drain(w);
    loom__conn *c = w->conns, *next;
    for (; c; c = next) {
        next = c->next;
        loom__conn_drain(c);
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
    if ((signum == SIGHUP || signum == SIGUSR1) && w->on_ops_signal) w->on_ops_signal(w, signum);
    if (signum == SIGUSR1) return;
    if (signum == SIGHUP) {
        if (w->tls) loom__tls_reload(w, "SIGHUP");
        if (w->on_sighup) w->on_sighup(w);
        return;
    }
    if (w->draining && signum == SIGINT) {
        if (w->nconns)
            loom__warn("second SIGINT: stopping now, closing %zu connection%s", w->nconns,
                       w->nconns == 1 ? "" : "s");
        else
            loom__warn("second SIGINT: stopping now");
        w->exit_code = 1;
        close_all(w);
        return;
    }
    loom__info("%s: graceful stop", strsignal(signum));
    loom__worker_drain(w);
}

int loom__worker_init(loom__worker *w, uv_loop_t *loop, const loom__config *cfg, const int *fds,
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
    int rc = 0;
    if (w->tls) {
        w->plain = malloc(LOOM__TLS_RECORD);
        w->scratch = malloc(64u * 1024u);
        if (!w->plain || !w->scratch) rc = UV_ENOMEM;
        w->tls_watch = loom__tls_watch_start(w);
    }
    for (size_t i = 0; i < cfg->nlisten && rc == 0; i++) {
        loom__listener *l = &w->ls[i];
        l->w = w;
        l->fd = fds[i];
        l->index = (int)i;
        l->cfg = &cfg->listen[i];
        /* uv_poll_init_socket also makes the listener non-blocking, which
         * accept4 relies on. */
        rc = uv_poll_init_socket(loop, &l->poll, l->fd);
        if (rc == 0) {
            l->poll.data = l;
            w->nls++;
            rc = uv_poll_start(&l->poll, UV_READABLE, on_listener);
        }
    }
    if (rc < 0) {
        loom__err("listen: %s", uv_strerror(rc));
        for (int i = 0; i < w->nls; i++) uv_close((uv_handle_t *)&w->ls[i].poll, NULL);
        for (size_t i = 0; i < cfg->nlisten; i++) close(fds[i]);
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
    static const int sigs[5] = {SIGINT, SIGTERM, SIGQUIT, SIGHUP, SIGUSR1};
    for (int i = 0; i < 5; i++) {
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
    loom__tls_server_unref(w->tls);
    w->tls = NULL;
    free(w->plain);
    free(w->scratch);
    loom__arena_trim();
    return w->exit_code;
}
