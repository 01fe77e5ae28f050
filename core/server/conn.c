/* The connection state machine.
 *
 * Reads land in the worker's shared buffer and are parsed in place; only the
 * bytes of a request that is not complete yet are copied into the
 * connection's own buffer, so an idle connection holds no buffer at all.
 * Responses produced while one read is processed are gathered in the
 * worker's output buffer and written with one send; only what the socket
 * does not take is copied and queued.
 *
 * Two I/O backends share this state machine. With io_uring (w->ring, see
 * server/uring.h) reads arrive as completions of a multishot recv, and a
 * flush hands the gathered bytes to a queued send, so a response is in
 * flight (c->writing) until its completion comes in the next loop turn.
 * Without it, libuv tells readiness (a uv_poll_t per connection) and the I/O
 * is recv(2) and send(2) on the fd: measured against uv_read_start/
 * uv_try_write, which use read(2)/write(2), that is about 0.3 us less
 * kernel time per request (the socket calls skip the VFS layer and its
 * file-position lock), ~3% of a keep-alive request. poll_update is where
 * the two part. See docs/decisions.md.
 *
 * TLS sits between the two: received ciphertext is decrypted (core/tls,
 * read in place) into the worker's scratch buffer and goes on from there as
 * if it had been read; plaintext to send is gathered as for any connection
 * and encrypted when it becomes the write in flight (seal), so the bytes on
 * the wire keep the order they were produced in. Files go through memory in
 * records of 16 KiB (sendfile cannot encrypt).
 *
 * A connection that speaks another protocol (HTTP/2, WebSocket) hands every
 * byte it reads to that protocol's table (server/proto.h) instead of the
 * HTTP/1.1 parser below. */
#include "server/conn.h"
#include "http/response.h"
#include "server/access_log.h"
#include "admin/metrics.h"
#include "server/proto.h"
#include "server/uring.h"
#include "tls/server.h"
#include "util/log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/tcp.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <unistd.h>

static void process_pending(loom__conn *c);
static void update_deadline(loom__conn *c);
static void conn_read_start(loom__conn *c);
static void poll_update(loom__conn *c);

static loom__buf *outbuf(loom__conn *c);
static void flush(loom__conn *c);
static void file_pump(loom__conn *c);
static void conn_shutdown(loom__conn *c);
static void deliver(loom__conn *c, const char *p, size_t n);
static void on_read(loom__conn *c, ssize_t n, const uv_buf_t *buf);
static ssize_t send_some(loom__conn *c, const char *p, size_t len);
static void log_write_failed(loom__conn *c, int err);
static void send_error(loom__conn *c, int status, const char *reason);

int loom__conn_idle(const loom__conn *c)
{
    return !c->proto && !c->active && !c->writing && !c->sending && c->in.len == 0 &&
           !loom__parser_in_request(&c->parser) && !(c->tls && c->tls->cout.len);
}

static void conn_free(loom__conn *c)
{
    loom__worker *w = c->w;
    loom__buf_free(&c->in);
    loom__buf_free(&c->pend);
    loom__buf_free(&c->wq);
    if (c->tls) {
        loom__tls_close(&c->tls->t);
        loom__buf_free(&c->tls->cout);
        loom__tls_server_unref(c->tls->srv);
        free(c->tls);
    }
    if (c->sending) close(c->file_fd);
    close(c->fd);
    if (w->metrics) loom__metrics_conn(w->metrics, c->mproto, 0);
    free(c);
    w->nconns--;
    loom__worker_conn_closed(w);
}

static void on_close(uv_handle_t *h)
{
    conn_free(h->data);
}

void loom__conn_reap(loom__worker *w)
{
    loom__conn *list = w->dead, *c;
    w->dead = NULL;
    while (list) {
        c = list;
        list = c->next;
        if (c->rops) {
            c->next = w->dead;
            w->dead = c;
        } else {
            conn_free(c);
        }
    }
}

void loom__conn_close(loom__conn *c)
{
    if (c->closed) return;
    loom__worker *w = c->w;
    c->closed = 1;
    if (c->prev)
        c->prev->next = c->next;
    else
        w->conns = c->next;
    if (c->next) c->next->prev = c->prev;
    if (w->out_conn == c) {
        w->out.len = 0;
        w->out_conn = NULL;
    }
    if (c->proto && c->proto->on_close) c->proto->on_close(c);
    c->proto = NULL;
    if (c->take_over) {
        /* Closed between a 101 and the end of its batch. */
        void (*take_over)(loom__conn *, void *) = c->take_over;
        c->take_over = NULL;
        take_over(NULL, c->take_over_arg);
    }
    loom_req *r = c->active;
    c->active = NULL;
    loom__parser_free(&c->parser);
    if (w->ring) {
        /* Its operations end with completions that name it: it is freed
         * after the last (loom__conn_reap), the fd with it. */
        if (c->rops && loom__uring_cancel_fd(w, c->fd) < 0)
            loom__warn("io_uring: cannot cancel a closed connection's operations");
        c->next = w->dead;
        w->dead = c;
    } else {
        /* Closing the poll handle stops it at once; the fd goes in on_close. */
        uv_close((uv_handle_t *)&c->poll, on_close);
    }
    if (r) {
        r->conn = NULL;
        if (w->on_abort) w->on_abort(w, r);
    }
}

/* Called once nothing is in flight: the response is all in the socket. */
static void start_cipher(loom__conn *c);

static void conn_shutdown(loom__conn *c)
{
    if (c->tls && c->tls->t.done && !c->tls->t.failed &&
        !(SSL_get_shutdown(c->tls->t.ssl) & SSL_SENT_SHUTDOWN)) {
        /* The close_notify goes out first; its write's end comes back here. */
        if (loom__tls_shutdown(&c->tls->t) == 0 && c->tls->cout.len) {
            c->closing = 1;
            start_cipher(c);
            return;
        }
    }
    if (shutdown(c->fd, SHUT_WR) < 0 || c->w->cfg->linger_timeout == 0) {
        loom__conn_close(c);
        return;
    }
    /* Read and drop what the client still sends, so that it sees our answer
     * rather than a reset (RFC 9112 §9.6). */
    c->lingering = 1;
    c->kind = T_LINGER;
    c->deadline = uv_now(c->w->loop) + c->w->cfg->linger_timeout;
}

/* A client that goes away in the middle of a request, or before its response
 * is written, is worth a line in the log (nginx says "client prematurely
 * closed connection" at info); one that leaves between requests is not.
 * Returns whether it logged. */
static int log_gone(loom__conn *c, int err)
{
    char addr[64], what[96], phase[96];
    const loom_req *pr = c->parser.req;
    if (c->closing || c->lingering) return 0;
    if (c->tls && !c->tls->t.done) {
        loom__debug("client %s left during the TLS handshake (%s)",
                    loom__access_log_addr(c, addr, sizeof addr), uv_strerror(err));
        return 1;
    }
    if (c->writing || c->pend.len || (c->active && c->active->resp.head_sent)) {
        snprintf(phase, sizeof phase, "while its response was being sent");
    } else if (c->active) {
        snprintf(phase, sizeof phase, "before its response was ready");
    } else if (loom__parser_in_body(&c->parser)) {
        if (pr->has_content_length)
            snprintf(phase, sizeof phase, "in the middle of a request body (%zu of %llu bytes)",
                     pr->body.len, (unsigned long long)pr->content_length);
        else
            snprintf(phase, sizeof phase, "in the middle of a chunked request body (%zu bytes)",
                     pr->body.len);
    } else if (loom__parser_in_request(&c->parser) || c->in.len) {
        snprintf(phase, sizeof phase, "in the middle of a request head (%zu bytes)", c->in.len);
    } else {
        return 0;
    }
    if (err == UV_EOF)
        snprintf(what, sizeof what, "closed the connection");
    else if (err == UV_ECONNRESET)
        snprintf(what, sizeof what, "reset the connection");
    else
        snprintf(what, sizeof what, "lost the connection (%s)", uv_strerror(err));
    loom__info("client %s %s %s", loom__access_log_addr(c, addr, sizeof addr), what, phase);
    return 1;
}

/* A write to the client failed: says so when a response was cut short. */
static void log_write_failed(loom__conn *c, int err)
{
    char addr[64];
    loom__info("client %s: write failed (%s) while its response was being sent",
               loom__access_log_addr(c, addr, sizeof addr), uv_strerror(err));
}

static void start_write(loom__conn *c, const char *p, size_t len);

/* Once the socket took everything in flight: sends what queued up behind it,
 * or starts the close of a connection that ends. Returns 1 if it did either
 * (the caller then waits for that to finish). */
static int drain_queued(loom__conn *c)
{
    if (c->pend.len) {
        loom__buf p = c->pend;
        start_write(c, p.data, p.len);
        c->pend.len = 0;
        return 1;
    }
    if (c->tls && c->tls->cout.len) { /* made while a write was in flight */
        start_cipher(c);
        return 1;
    }
    if (c->closing) {
        conn_shutdown(c);
        return 1;
    }
    return 0;
}

/* The write in flight ended: all of it is in the socket (status 0) or the
 * socket failed (a negative uv error). */
static void write_done(loom__conn *c, int status)
{
    c->writing = 0;
    if (c->w->ring)
        loom__uring_give_buf(c->w, &c->wq);
    else
        loom__buf_free(&c->wq);
    c->wq_off = 0;
    poll_update(c);
    if (c->closed) return;
    if (status < 0) {
        if (!c->lingering) log_write_failed(c, status);
        loom__conn_close(c);
        return;
    }
    c->last_io = uv_now(c->w->loop);
    if (c->sending && c->file_pre) {
        /* The file's head was queued behind the write that just ended. */
        size_t n = c->file_pre;
        c->file_pre = 0;
        start_write(c, c->pend.data, n);
        loom__buf_consume(&c->pend, n);
        return;
    }
    if (c->sending) {
        file_pump(c);
        return;
    }
    if (drain_queued(c)) return;
    if (c->proto) {
        if (c->proto->on_drain) c->proto->on_drain(c);
        if (!c->closed) update_deadline(c);
        return;
    }
    process_pending(c);
    update_deadline(c);
}

/* Records of at most this many plaintext bytes start a burst of writes: a
 * browser can use the first TCP segment (MSS 1460 on most paths, less the
 * 29 bytes of a TLS 1.3 record's framing and tag) before the rest arrive.
 * After SMALL_BURST bytes, or for a connection busy for a while, records
 * are full (16 KiB): one header and tag per 16 KiB costs the least CPU. A
 * burst starts again after a second without writes (docs/decisions.md). */
#define SMALL_RECORD 1400u
#define SMALL_BURST (16u * 1024u)
#define BURST_IDLE_MS 1000u

/* TLS: encrypts `len` plaintext bytes onto the end of cout. Returns 0, or
 * -1 after closing the connection. */
static int seal(loom__conn *c, const char *p, size_t len)
{
    loom__conn_tls *t = c->tls;
    uint64_t now = uv_now(c->w->loop);
    if (now - c->last_io >= BURST_IDLE_MS || t->burst_at == 0) {
        t->burst_at = now ? now : 1;
        t->burst = 0;
    }
    while (len > 0) {
        size_t small = t->burst < SMALL_BURST ? SMALL_BURST - t->burst : 0;
        size_t n = small ? (len < small ? len : small) : len;
        if (loom__tls_write(&t->t, p, n, small ? SMALL_RECORD : LOOM__TLS_RECORD)) {
            loom__debug("TLS write: %s", t->t.reason);
            loom__conn_close(c);
            return -1;
        }
        t->burst += n;
        p += n;
        len -= n;
    }
    return 0;
}

/* TLS: the ciphertext in cout becomes the write in flight (nothing may be
 * in flight). */
static void start_cipher(loom__conn *c)
{
    loom__buf spare = c->wq;
    spare.len = 0;
    c->wq = c->tls->cout;
    c->wq_off = 0;
    c->tls->cout = spare;
    c->writing = 1;
    c->last_io = uv_now(c->w->loop);
    poll_update(c);
}

/* Queues bytes the socket did not take (encrypted first on TLS); they go
 * when it is writable. Only called with nothing in flight. */
static void start_write(loom__conn *c, const char *p, size_t len)
{
    if (c->tls) {
        if (seal(c, p, len) == 0) start_cipher(c);
        return;
    }
    c->wq.len = 0;
    c->wq_off = 0;
    if (loom__buf_append(&c->wq, p, len)) {
        loom__conn_close(c);
        return;
    }
    c->writing = 1;
    c->last_io = uv_now(c->w->loop);
    poll_update(c);
}

/* Sends `len` bytes; returns how many the socket took (maybe 0), or a
 * negative uv error. */
static ssize_t send_some(loom__conn *c, const char *p, size_t len)
{
    for (;;) {
        ssize_t n = send(c->fd, p, len, MSG_NOSIGNAL);
        if (n >= 0) {
            loom__metrics_bytes(c->w->metrics, 1, (size_t)n);
            return n;
        }
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
        return uv_translate_sys_error(errno);
    }
}

/* The socket is writable: more of the write in flight, or more of a file. */
static void on_writable(loom__conn *c)
{
    if (c->writing) {
        ssize_t n = send_some(c, c->wq.data + c->wq_off, c->wq.len - c->wq_off);
        if (n < 0) {
            write_done(c, (int)n);
            return;
        }
        c->wq_off += (size_t)n;
        if (n > 0) c->last_io = uv_now(c->w->loop);
        if (c->wq_off == c->wq.len) write_done(c, 0);
        return;
    }
    if (c->file_wait) {
        c->file_wait = 0;
        poll_update(c);
        file_pump(c);
    }
}

static loom__buf *outbuf(loom__conn *c)
{
    loom__worker *w = c->w;
    if (c->writing || c->sending) return &c->pend;
    if (w->out_conn && w->out_conn != c) flush(w->out_conn);
    w->out_conn = c;
    return &w->out;
}

static void flush(loom__conn *c)
{
    loom__worker *w = c->w;
    if (w->out_conn != c) return;
    size_t len = w->out.len;
    w->out_conn = NULL;
    if (c->tls) {
        /* Sealed now, behind any ciphertext the engine made on its own. */
        w->out.len = 0;
        if (len && seal(c, w->out.data, len)) return;
        if (c->tls->cout.len && !c->writing) {
            if (w->ring) {
                start_cipher(c);
            } else {
                loom__buf *o = &c->tls->cout;
                ssize_t n = send_some(c, o->data, o->len);
                if (n < 0) {
                    log_write_failed(c, (int)n);
                    loom__conn_close(c);
                    return;
                }
                c->last_io = uv_now(w->loop);
                if ((size_t)n < o->len) {
                    start_cipher(c);
                    c->wq_off = (size_t)n;
                } else if (o->cap > (64u << 10)) {
                    loom__buf_free(o);
                } else {
                    o->len = 0;
                }
            }
        }
        if (w->out.cap > (1u << 20)) loom__buf_free(&w->out);
    } else if (len && w->ring) {
        /* The gathered bytes become the write in flight as they are, and
         * gathering goes on in a spare buffer: the send reaches the kernel
         * with the loop's next wait. */
        if (c->wq.cap) loom__uring_give_buf(w, &c->wq);
        c->wq = w->out;
        c->wq_off = 0;
        loom__uring_take_buf(w, &w->out);
        c->writing = 1;
        c->last_io = uv_now(w->loop);
        poll_update(c);
    } else if (len) {
        w->out.len = 0;
        ssize_t n = send_some(c, w->out.data, len);
        if (n < 0) {
            log_write_failed(c, (int)n);
            loom__conn_close(c);
            return;
        }
        c->last_io = uv_now(w->loop);
        if ((size_t)n < len) start_write(c, w->out.data + n, len - (size_t)n);
        /* Do not keep a large buffer around after a big response. */
        if (w->out.cap > (1u << 20)) loom__buf_free(&w->out);
    }
    if (!c->closed && !c->writing && !c->sending && c->closing && !c->lingering) conn_shutdown(c);
}

/* Sends the rest of a file body: sendfile(2) while the socket takes it; on
 * EAGAIN (and after FILE_TURN bytes, to let other connections in) it waits
 * for the socket to be writable and is called again. Where sendfile cannot
 * be used, one chunk read into memory goes out as a queued write, whose end
 * calls this again. Never called while a write is in flight. When the file
 * is done, what queued behind it goes. */
#define FILE_CHUNK (64u * 1024u)
#define FILE_TURN (8u * 1024u * 1024u) /* bytes sent per loop turn before yielding */
static void file_pump(loom__conn *c)
{
    uint64_t turn = 0;
    while (c->file_left > 0) {
        size_t want = c->file_left > (1u << 20) ? (1u << 20) : (size_t)c->file_left;
        if (turn >= FILE_TURN) {
            c->file_wait = 1;
            poll_update(c);
            update_deadline(c);
            return;
        }
        if (c->tls) c->no_sendfile = 1; /* the kernel would send it unencrypted */
        if (!c->no_sendfile) {
            off_t off = (off_t)c->file_off;
            ssize_t n = sendfile(c->fd, c->file_fd, &off, want);
            if (n > 0) {
                loom__metrics_bytes(c->w->metrics, 1, (size_t)n);
                c->file_off += (uint64_t)n;
                c->file_left -= (uint64_t)n;
                turn += (uint64_t)n;
                c->last_io = uv_now(c->w->loop);
                continue;
            }
            if (n == 0) { /* the file shrank under us: the framing is broken */
                loom__conn_close(c);
                return;
            }
            if (errno == EINTR) continue;
            if (errno == EAGAIN) {
                c->file_wait = 1;
                poll_update(c);
                update_deadline(c);
                return;
            }
            if (errno != EINVAL && errno != ENOSYS) {
                if (!c->lingering) log_write_failed(c, uv_translate_sys_error(errno));
                loom__conn_close(c);
                return;
            }
            c->no_sendfile = 1; /* a file sendfile cannot read: copy it through memory */
        }
        size_t len = want > FILE_CHUNK ? FILE_CHUNK : want;
        c->wq.len = 0;
        c->wq_off = 0;
        char *dst = c->tls ? c->w->scratch : NULL;
        if (!dst) {
            if (loom__buf_reserve(&c->wq, len)) {
                loom__conn_close(c);
                return;
            }
            dst = c->wq.data;
        }
        ssize_t n;
        do n = pread(c->file_fd, dst, len, (off_t)c->file_off);
        while (n < 0 && errno == EINTR);
        if (n <= 0) {
            loom__conn_close(c);
            return;
        }
        if (c->tls) {
            /* The chunk in records, behind what the engine made already. */
            if (seal(c, dst, (size_t)n)) return;
            loom__buf spare = c->wq;
            c->wq = c->tls->cout;
            c->tls->cout = spare;
        } else {
            c->wq.len = (size_t)n;
        }
        c->file_off += (uint64_t)n;
        c->file_left -= (uint64_t)n;
        turn += (uint64_t)n;
        ssize_t sent = send_some(c, c->wq.data, c->wq.len);
        if (sent < 0) {
            if (!c->lingering) log_write_failed(c, (int)sent);
            loom__conn_close(c);
            return;
        }
        c->last_io = uv_now(c->w->loop);
        if ((size_t)sent < c->wq.len) {
            /* The rest waits for writability; its end calls this again. */
            c->wq_off = (size_t)sent;
            c->writing = 1;
            poll_update(c);
            update_deadline(c);
            return;
        }
    }
    loom__buf_free(&c->wq);
    close(c->file_fd);
    c->sending = 0;
    if (drain_queued(c)) return;
    if (c->w->batch != c) {
        process_pending(c);
        if (!c->closed) update_deadline(c);
    }
}

static void send_error(loom__conn *c, int status, const char *reason)
{
    loom__buf *b = outbuf(c);
    loom__resp_write_error(b, status, reason);
    c->closing = 1;
    loom__debug("closing connection after %d: %s", status, reason);
    loom__metrics_rejected(c->w->metrics, status);
    if (c->w->access_log) {
        char line[1200]; /* what was parsed of the request line */
        size_t n = loom__parser_request_line(&c->parser, line, sizeof line, 1024);
        loom__access_log_error(c->w->access_log, c, status, n ? line : NULL, n);
    }
}

/* A plaintext listener with "redirect_to_https": every request gets a 308
 * to the same target on the TLS port, without reaching the plugins. */
static void redirect_https(loom__conn *c, loom_req *r)
{
    size_t hl = 0;
    const char *host = loom__req_header(r, "host", 4, &hl);
    if (!host) {
        r->resp.status = 400;
        loom__resp_body_take(r, "400: a Host header is needed to redirect to https", 49, NULL);
        loom__req_finish(r);
        return;
    }
    /* Host without its port: "[v6]:p" keeps its brackets. */
    size_t n = hl;
    if (host[0] == '[') {
        const char *e = memchr(host, ']', hl);
        n = e ? (size_t)(e - host) + 1 : hl;
    } else {
        const char *colon = memchr(host, ':', hl);
        if (colon) n = (size_t)(colon - host);
    }
    int port = c->l->cfg->redirect_to_https;
    char *loc = loom__arena_alloc(&r->arena, n + r->target_len + 32);
    if (!loc) {
        loom__conn_close(c);
        return;
    }
    int len = port == 443 ? snprintf(loc, n + 32, "https://%.*s", (int)n, host)
                          : snprintf(loc, n + 32, "https://%.*s:%d", (int)n, host, port);
    memcpy(loc + len, r->target, r->target_len);
    r->resp.status = 308;
    loom__resp_header_add(r, "Location", 8, loc, (size_t)len + r->target_len);
    loom__resp_header_add(r, "Content-Type", 12, "text/plain; charset=utf-8", 25);
    loom__resp_body_take(r, "308: Permanent Redirect", 23, NULL);
    loom__req_finish(r);
}

static void dispatch(loom__conn *c, loom_req *r)
{
    loom__worker *w = c->w;
    c->active = r;
    r->conn = c;
    r->tls = c->tls != NULL;
    r->start_ms = c->req_start;
    c->req_start = uv_now(w->loop);
    c->nreq++;
    w->requests++;
    if (!r->keep_alive || r->upgrade || w->draining) r->resp.close = 1;
    if (c->l->cfg->redirect_to_https) {
        redirect_https(c, r);
        return;
    }
    if (c->l->cfg->admin)
        w->handle_admin(w, r);
    else
        w->handle(w, r);
}

/* Parses and dispatches requests from `data` while the connection may take
 * another; returns how many bytes were consumed. */
static size_t parse_loop(loom__conn *c, const char *data, size_t len)
{
    size_t off = 0;
    while (off < len && !c->active && !c->closing && !c->writing && !c->sending && !c->closed &&
           !c->take_over) {
        size_t used = 0;
        int rc = loom__parser_feed(&c->parser, data + off, len - off, &used);
        off += used;
        if (rc == LOOM__PARSE_REQUEST) {
            dispatch(c, loom__parser_take(&c->parser));
        } else if (rc == LOOM__PARSE_ERROR) {
            const char *why;
            int st = loom__parser_error_status(&c->parser, &why);
            send_error(c, st, why);
            return len;
        } else {
            break;
        }
    }
    return off;
}

/* After parsing [data, data+len) up to `off`: keeps the bytes the next read
 * must find in front of it, in the connection's own buffer. */
static void keep_leftover(loom__conn *c, const char *data, size_t len, size_t off)
{
    const char *end = data + len, *from = end, *start;
    size_t parsed = 0;
    if (c->closing || c->closed) {
        loom__buf_free(&c->in);
        c->in_parsed = 0;
        return;
    }
    if (off < len) {
        from = data + off;
    } else if (loom__parser_pending(&c->parser, &start)) {
        from = start;
        parsed = (size_t)(end - start);
    }
    size_t keep = (size_t)(end - from);
    if (keep == 0) {
        loom__buf_free(&c->in);
        c->in_parsed = 0;
        return;
    }
    if (c->in.data && from >= c->in.data && from <= c->in.data + c->in.len) {
        loom__buf_consume(&c->in, (size_t)(from - c->in.data));
    } else {
        c->in.len = 0;
        if (loom__buf_append(&c->in, from, keep)) {
            loom__conn_close(c);
            return;
        }
    }
    c->in_parsed = parsed;
    if (parsed) loom__parser_rebase(&c->parser, c->in.data);
    /* Unhandled pipelined requests beyond the limit: stop reading until the
     * handler catches up. */
    if (c->in.len - c->in_parsed > c->w->cfg->max_pipeline && !c->paused) {
        c->paused = 1;
        poll_update(c);
    }
}

static void send_continue(loom__conn *c)
{
    loom_req *pr = c->parser.req;
    if (pr && pr->expect_continue == 1 && loom__parser_in_body(&c->parser) && pr->body.len == 0 &&
        !c->closing) {
        loom__buf_puts(outbuf(c), "HTTP/1.1 100 Continue\r\n\r\n");
        pr->expect_continue = 2;
    }
}

static void run_batch(loom__conn *c, const char *data, size_t len)
{
    loom__worker *w = c->w;
    w->batch = c;
    size_t off = parse_loop(c, data, len);
    if (!c->closed) {
        keep_leftover(c, data, len, off);
        send_continue(c);
    }
    if (!c->closed && c->take_over) {
        /* A 101 was answered in this batch: what followed the request is
         * in c->in now, and goes to the protocol that takes over. */
        void (*take_over)(loom__conn *, void *) = c->take_over;
        c->take_over = NULL;
        take_over(c, c->take_over_arg);
    }
    w->batch = NULL;
    if (!c->closed) flush(c);
}

/* Continues with requests already buffered, once the connection is free. */
static void process_pending(loom__conn *c)
{
    if (c->closed || c->active || c->writing || c->sending || c->closing || c->proto) return;
    if (c->in.len > c->in_parsed) {
        run_batch(c, c->in.data + c->in_parsed, c->in.len - c->in_parsed);
        if (c->closed) return;
    }
    if (c->paused && !c->closing && c->in.len - c->in_parsed <= c->w->cfg->max_pipeline) {
        c->paused = 0;
        conn_read_start(c);
    }
}

/* HTTP/1.1: `n` plaintext bytes arrived at `p` (the worker's read or
 * scratch buffer: what must outlive this call is copied). */
static void h1_data(loom__conn *c, const char *p, size_t n)
{
    uint64_t now = c->last_io;
    if (c->in.len == 0 && !loom__parser_in_request(&c->parser)) c->req_start = now;
    if (c->in.len == 0) {
        run_batch(c, p, n);
    } else {
        const char *start;
        size_t base_off = 0;
        int pending = loom__parser_pending(&c->parser, &start);
        if (pending) base_off = (size_t)(start - c->in.data);
        size_t cap = c->w->cfg->max_pipeline + c->w->cfg->max_line_size +
                     c->w->cfg->max_headers * (c->w->cfg->max_field_size + 4);
        int busy = c->active || c->writing;
        /* The cap bounds a head in progress. Bytes queued behind a busy
         * connection are pipelined requests: they are bounded by pausing
         * reads below, not refused. */
        if (!busy && c->in.len + n > cap) {
            send_error(c, 431, "request head too large");
            flush(c);
            return;
        }
        if (loom__buf_append(&c->in, p, n)) {
            loom__conn_close(c);
            return;
        }
        if (pending) loom__parser_rebase(&c->parser, c->in.data + base_off);
        if (!busy) {
            run_batch(c, c->in.data + c->in_parsed, c->in.len - c->in_parsed);
        } else if (c->in.len - c->in_parsed > c->w->cfg->max_pipeline && !c->paused) {
            /* A client that pipelines faster than it reads: stop reading
             * until the responses drain (process_pending resumes). */
            c->paused = 1;
            poll_update(c);
        }
    }
}

/* Plaintext bytes for whichever protocol the connection speaks. */
static void deliver(loom__conn *c, const char *p, size_t n)
{
    if (c->proto)
        c->proto->on_data(c, p, n);
    else
        h1_data(c, p, n);
}

/* TLS: sends what the engine made (handshake flights, tickets, alerts)
 * unless a write is in flight (its end sends it) or a batch gathers. */
static void tls_kick(loom__conn *c)
{
    if (c->closed || c->writing || c->sending || !c->tls->cout.len) return;
    if (c->w->batch == c) return;
    outbuf(c);
    flush(c);
}

/* TLS: the handshake completed: pick the protocol ALPN chose, and the
 * request deadlines start now. */
static void handshake_done(loom__conn *c)
{
    loom__conn_tls *t = c->tls;
    const char *name = SSL_get_servername(t->t.ssl, TLSEXT_NAMETYPE_host_name);
    c->req_start = uv_now(c->w->loop);
    size_t alen;
    const char *alpn = loom__tls_alpn(&t->t, &alen);
    if (loom__log_enabled(LOOM_LOG_DEBUG)) {
        char addr[64];
        loom__debug("TLS: %s %s with %s%s%s, ALPN %.*s%s", SSL_get_version(t->t.ssl),
                    SSL_get_cipher_name(t->t.ssl), loom__access_log_addr(c, addr, sizeof addr),
                    name ? " for " : "", name ? name : "", (int)alen, alpn ? alpn : "none",
                    loom__tls_resumed(&t->t) ? " (resumed)" : "");
    }
    if (alpn && alen == 2 && memcmp(alpn, "h2", 2) == 0 && loom__proto_h2_start)
        loom__proto_h2_start(c);
}

/* TLS: ciphertext arrived. Decrypts it into the worker's plain buffer, one
 * record at a time, and delivers each piece. */
static void tls_in(loom__conn *c, const char *p, size_t n)
{
    loom__conn_tls *t = c->tls;
    loom__worker *w = c->w;
    char addr[64];
    loom__tls_feed(&t->t, p, n);
    if (!t->t.done) {
        int rc = loom__tls_handshake(&t->t);
        if (rc == LOOM__TLS_FAIL) {
            loom__debug("TLS handshake with %s failed: %s",
                        loom__access_log_addr(c, addr, sizeof addr), t->t.reason);
            /* The alert, if the socket takes it now; nothing waits for it. */
            if (t->cout.len && !c->writing) send_some(c, t->cout.data, t->cout.len);
            loom__conn_close(c);
            return;
        }
        if (rc == LOOM__TLS_WANT) {
            tls_kick(c);
            if (!c->closed) update_deadline(c);
            return;
        }
        handshake_done(c);
        if (c->closed) return;
    }
    for (;;) {
        ssize_t k = loom__tls_read(&t->t, w->plain, LOOM__TLS_RECORD);
        if (k > 0) {
            deliver(c, w->plain, (size_t)k);
            if (c->closed) return;
            continue;
        }
        if (k == LOOM__TLS_WANT) break;
        if (k == LOOM__TLS_EOF) {
            /* close_notify: the client will not send more, as with a FIN. */
            on_read(c, UV_EOF, NULL);
            return;
        }
        loom__debug("TLS error from %s: %s", loom__access_log_addr(c, addr, sizeof addr),
                    t->t.reason);
        loom__conn_close(c);
        return;
    }
    tls_kick(c);
}

/* The first bytes of a connection. On a TLS listener they must start a
 * handshake record: a plaintext HTTP request gets a 400 in clear text (as
 * nginx does) and anything else is closed at once. On an h2c listener the
 * HTTP/2 preface hands the connection to HTTP/2. Returns 1 when the bytes
 * are handled here. */
static int sniff(loom__conn *c, const char *p, size_t n)
{
    static const char preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    c->sniff = 0;
    if (c->tls) {
        if ((unsigned char)p[0] == 0x16) return 0;
        char addr[64];
        loom__access_log_addr(c, addr, sizeof addr);
        loom__tls_close(&c->tls->t);
        loom__buf_free(&c->tls->cout);
        loom__tls_server_unref(c->tls->srv);
        free(c->tls);
        c->tls = NULL;
        if (p[0] >= 'A' && p[0] <= 'Z') {
            loom__debug("plaintext HTTP from %s on a TLS port: 400", addr);
            send_error(c, 400, "The plain HTTP request was sent to HTTPS port");
            flush(c);
        } else {
            loom__debug("not TLS from %s on a TLS port (first byte 0x%02x): closed", addr,
                        (unsigned char)p[0]);
            loom__conn_close(c);
        }
        return 1;
    }
    if (!(c->l->cfg->h2c && c->l->cfg->http2 && loom__proto_h2_start)) return 0;
    /* The preface may come over several reads: the bytes so far wait in
     * c->in, where HTTP/1.1 finds them if it turns out not to be one. */
    size_t have = c->in.len, want = sizeof preface - 1;
    size_t k = n < want - have ? n : want - have;
    if (memcmp(p, preface + have, k) != 0) return 0; /* HTTP/1.1 (with c->in first) */
    if (have + k < want) {
        c->sniff = 1;
        if (loom__buf_append(&c->in, p, n)) loom__conn_close(c);
        return 1;
    }
    loom__proto_h2_start(c); /* takes c->in; the rest of the preface follows */
    return 0;
}

/* The end of a read on a connection of another protocol: what it produced
 * goes out, and when nothing is left in flight it hears so (on_drain), as
 * after a write: it may have stopped at its high-water mark. */
static void proto_batch_end(loom__conn *c)
{
    loom__worker *w = c->w;
    if (w->batch == c) w->batch = NULL;
    if (c->closed) return;
    if (w->out_conn == c) flush(c);
    if (!c->closed && c->tls) tls_kick(c);
    if (!c->closed && !c->writing && !c->sending && c->proto && c->proto->on_drain)
        c->proto->on_drain(c);
}

/* `n` bytes arrived in `buf` (a read buffer of the worker), or the read
 * ended: n is UV_EOF or another negative uv error. */
static void on_read(loom__conn *c, ssize_t n, const uv_buf_t *buf)
{
    loom__worker *w = c->w;
    if (n == 0 || c->closed) return;
    if (n < 0) {
        /* EOF or error. A request still being handled is aborted: the
         * client is gone (or will not read the answer). */
        if (c->proto) {
            if (c->proto->on_eof) c->proto->on_eof(c, (int)n);
        } else if (!log_gone(c, (int)n) && n != UV_EOF && !c->lingering) {
            loom__debug("connection read error: %s", uv_strerror((int)n));
        }
        loom__conn_close(c);
        return;
    }
    c->last_io = uv_now(w->loop);
    loom__metrics_bytes(w->metrics, 0, (size_t)n);
    if (c->lingering || c->closing) return; /* discard */
    if (c->sniff && sniff(c, buf->base, (size_t)n)) return;
    /* A protocol's frames for a whole read go out in one write (TLS hands
     * it over record by record): loom__conn_flush waits for its end. */
    int batch = c->proto != NULL;
    if (batch) w->batch = c;
    if (c->tls)
        tls_in(c, buf->base, (size_t)n);
    else
        deliver(c, buf->base, (size_t)n);
    if (batch) proto_batch_end(c);
    if (!c->closed) update_deadline(c);
}

/* A socket error reported by poll (POLLERR), as a uv error. */
static int socket_error(int fd)
{
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0) err = errno;
    return err ? uv_translate_sys_error(err) : UV_ECONNRESET;
}

/* One recv per readiness, as libuv does, and more only while each one fills
 * the buffer: the other connections of this loop turn get their turn. */
static void do_read(loom__conn *c)
{
    loom__worker *w = c->w;
    for (int i = 0; i < 16 && (c->events & UV_READABLE) && !c->closed; i++) {
        ssize_t n = recv(c->fd, w->readbuf, sizeof w->readbuf, 0);
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) return;
            on_read(c, uv_translate_sys_error(errno), NULL);
            return;
        }
        uv_buf_t b = uv_buf_init(w->readbuf, (unsigned)n);
        on_read(c, n ? n : UV_EOF, &b);
        if ((size_t)n < sizeof w->readbuf) return;
    }
}

static void on_poll(uv_poll_t *h, int status, int events)
{
    loom__conn *c = h->data;
    if (c->closed) return;
    if (status < 0) {
        /* libuv stopped the handle; the socket failed (a reset, mostly). */
        c->events = 0;
        on_read(c, socket_error(c->fd), NULL);
        return;
    }
    if (events & UV_WRITABLE) {
        on_writable(c);
        if (c->closed) return;
    }
    if (events & UV_READABLE) do_read(c);
}

/* The io_uring side of poll_update: queues what the connection waits on
 * and is not queued yet. */
static void ring_update(loom__conn *c)
{
    loom__worker *w = c->w;
    uint64_t ud = (uint64_t)(uintptr_t)c;
    int rc = 0;
    if (!c->paused && !c->recv_on) {
        rc = loom__uring_recv(w, c->fd, ud | LOOM__U_RECV);
        if (rc == 0) c->recv_on = 1, c->rops++;
    } else if (c->paused && c->recv_on && !c->recv_stop) {
        rc = loom__uring_cancel(w, ud | LOOM__U_RECV);
        if (rc == 0) c->recv_stop = 1;
    }
    if (rc == 0 && c->writing && !c->send_on && !c->send_wait) {
        rc = loom__uring_send(w, c->fd, c->wq.data + c->wq_off, c->wq.len - c->wq_off,
                              ud | LOOM__U_SEND);
        if (rc == 0) c->send_on = 1, c->rops++;
    }
    if (rc == 0 && (c->file_wait || c->send_wait) && !c->pollout_on) {
        rc = loom__uring_pollout(w, c->fd, ud | LOOM__U_POLLOUT);
        if (rc == 0) c->pollout_on = 1, c->rops++;
    }
    if (rc < 0) {
        loom__warn("io_uring: submission queue full; closing a connection");
        loom__conn_close(c);
    }
}

void loom__conn_complete(loom__worker *w, uint64_t ud, int res, uint32_t flags)
{
    loom__conn *c = LOOM__U_PTR(ud);
    switch (LOOM__U_TAG(ud)) {
    case LOOM__U_RECV:
        if (!(flags & IORING_CQE_F_MORE)) {
            c->recv_on = 0;
            c->recv_stop = 0;
            c->rops--;
        }
        if (res > 0) {
            if (!c->closed) {
                uv_buf_t b = uv_buf_init(loom__uring_buf(w, flags), (unsigned)res);
                on_read(c, res, &b);
            }
            loom__uring_buf_done(w, flags);
            /* Bytes that came while paused: the cancel may have missed
             * the recv; queue another (a spare cancel finds nothing). */
            if (!c->closed && c->paused && c->recv_on) c->recv_stop = 0;
        } else if (res == 0) {
            if (!c->closed) on_read(c, UV_EOF, NULL);
        } else if (res == -ENOBUFS) {
            /* Every buffer was taken: they are back once this batch is
             * worked, and the recv is queued again below. */
            loom__debug("io_uring: receive buffers ran out; recv queued again");
        } else if (res != -ECANCELED && !c->closed) {
            on_read(c, uv_translate_sys_error(-res), NULL);
        }
        if (!c->closed) ring_update(c);
        break;
    case LOOM__U_SEND:
        c->send_on = 0;
        c->rops--;
        if (c->closed) return;
        if (res == -EAGAIN) {
            c->send_wait = 1;
            ring_update(c);
        } else if (res < 0) {
            write_done(c, uv_translate_sys_error(-res));
        } else {
            c->wq_off += (size_t)res;
            loom__metrics_bytes(w->metrics, 1, (size_t)res);
            if (res > 0) c->last_io = uv_now(w->loop);
            if (c->wq_off >= c->wq.len)
                write_done(c, 0);
            else
                ring_update(c);
        }
        break;
    case LOOM__U_POLLOUT:
        c->pollout_on = 0;
        c->rops--;
        if (c->closed) return;
        if (c->send_wait) {
            c->send_wait = 0;
            ring_update(c);
        }
        if (c->file_wait) on_writable(c);
        break;
    default:
        break;
    }
}

/* Starts poll for what the connection waits on: reads unless paused, and
 * writability while bytes or a file wait for the socket. */
static void poll_update(loom__conn *c)
{
    if (c->closed) return;
    if (c->w->ring) {
        ring_update(c);
        return;
    }
    int want = (c->paused ? 0 : UV_READABLE) | (c->writing || c->file_wait ? UV_WRITABLE : 0);
    if (want == c->events) return;
    c->events = want;
    int rc = want ? uv_poll_start(&c->poll, want, on_poll) : uv_poll_stop(&c->poll);
    if (rc < 0) loom__conn_close(c);
}

static void conn_read_start(loom__conn *c)
{
    poll_update(c);
}

/* loom__proto_h2_start (server/proto.h) is defined by core/http2/session.c,
 * which the reference from here pulls into any program that links libloom. */

static void on_close_unused(uv_handle_t *h)
{
    free(h->data);
}

/* TLS: the engine for a new connection on listener l. Returns 0 or -1. */
static int tls_start(loom__conn *c)
{
    loom__worker *w = c->w;
    if (!w->tls) return -1;
    c->tls = calloc(1, sizeof *c->tls);
    if (!c->tls) return -1;
    if (loom__tls_open(&c->tls->t, loom__tls_server_ctx(w->tls, c->l->index), 1, &c->tls->cout) <
            0 ||
        loom__tls_server_setup(w->tls, c->tls->t.ssl, c->l->index) < 0) {
        loom__warn("TLS: cannot start a connection: %s", c->tls->t.reason);
        loom__tls_close(&c->tls->t);
        free(c->tls);
        c->tls = NULL;
        return -1;
    }
    c->tls->srv = w->tls;
    loom__tls_server_ref(w->tls);
    return 0;
}

void loom__conn_accept(loom__worker *w, loom__listener *l, int fd, const struct sockaddr *peer,
                       socklen_t peer_len)
{
    if (w->nconns >= w->cfg->max_connections || w->draining) {
        close(fd);
        return;
    }
    loom__conn *c = calloc(1, sizeof *c);
    if (!c || (!w->ring && uv_poll_init_socket(w->loop, &c->poll, fd) < 0)) {
        free(c);
        close(fd);
        return;
    }
    c->w = w;
    c->l = l;
    c->fd = fd;
    c->poll.data = c;
    if (l->cfg->tls && tls_start(c) < 0) {
        if (!w->ring)
            uv_close((uv_handle_t *)&c->poll, on_close_unused);
        else
            free(c);
        close(fd);
        return;
    }
    c->sniff = l->cfg->tls || (l->cfg->h2c && l->cfg->http2);
    w->nconns++;
    if (w->metrics) loom__metrics_conn(w->metrics, LOOM__P_HTTP1, 1);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (peer_len > 0 && peer_len <= sizeof c->peer)
        memcpy(&c->peer, peer, peer_len);
    else
        c->peer.sa.sa_family = AF_UNSPEC;
    loom__parser_init(&c->parser, &w->limits);
    c->next = w->conns;
    if (w->conns) w->conns->prev = c;
    w->conns = c;
    c->last_io = c->req_start = uv_now(w->loop);
    update_deadline(c);
    conn_read_start(c);
}

static void update_deadline(loom__conn *c)
{
    const loom__config *cfg = c->w->cfg;
    if (c->closed || c->lingering) return;
    if (c->tls && !c->tls->t.done) {
        c->kind = T_HANDSHAKE;
        c->deadline = c->req_start + cfg->handshake_timeout;
    } else if (c->writing || c->sending) {
        c->kind = T_WRITE;
        c->deadline = c->last_io + cfg->write_timeout;
    } else if (c->proto) {
        c->kind = T_NONE; /* the protocol keeps its own (on_sweep) */
        c->deadline = 0;
    } else if (c->active) {
        c->kind = T_NONE;
        c->deadline = 0;
    } else if (c->closing) {
        /* shutdown sets its own deadline */
    } else if (loom__parser_in_request(&c->parser) || c->in.len) {
        uint64_t d = c->req_start + cfg->request_timeout;
        if (!loom__parser_in_body(&c->parser) && c->req_start + cfg->header_timeout < d)
            d = c->req_start + cfg->header_timeout;
        if (c->last_io + cfg->read_timeout < d) d = c->last_io + cfg->read_timeout;
        c->kind = T_REQUEST;
        c->deadline = d;
    } else if (c->nreq == 0) {
        /* Not one byte of a request yet: the header deadline, not the
         * keep-alive one (a connection opened and left costs a slot). */
        c->kind = T_IDLE;
        c->deadline = c->req_start + cfg->header_timeout;
    } else {
        c->kind = T_IDLE;
        c->deadline = c->last_io + cfg->keepalive_timeout;
    }
}

void loom__conn_sweep(loom__worker *w)
{
    uint64_t now = uv_now(w->loop);
    loom__conn *c = w->conns, *next;
    for (; c; c = next) {
        next = c->next;
        if (c->proto && c->proto->on_sweep && !c->closed) c->proto->on_sweep(c, now);
        if (!c->deadline || now < c->deadline || c->closed) continue;
        switch (c->kind) {
        case T_HANDSHAKE: {
            char addr[64];
            loom__debug("TLS handshake with %s not done within handshake_timeout: closed",
                        loom__access_log_addr(c, addr, sizeof addr));
            loom__conn_close(c);
            break;
        }
        case T_REQUEST:
            loom__debug("request timeout");
            w->batch = NULL;
            send_error(c, 408, "request not received in time");
            c->deadline = 0;
            flush(c);
            break;
        case T_IDLE:
        case T_WRITE:
        case T_LINGER:
            loom__conn_close(c);
            break;
        default:
            break;
        }
    }
}

/* ---- the request side of the response path ---- */

loom__worker *loom__req_worker(const loom_req *r)
{
    return r->conn ? r->conn->w : NULL;
}

size_t loom__req_queued(const loom_req *r)
{
    const loom__conn *c = r->conn;
    if (!c) return 0;
    if (c->proto && c->proto->req_queued) return c->proto->req_queued(r);
    size_t n = c->pend.len + (c->writing ? c->wq.len - c->wq_off : 0);
    if (c->w->out_conn == c) n += c->w->out.len;
    if (c->tls) n += c->tls->cout.len;
    return n;
}

const char *loom__req_remote(const loom_req *r, char *buf, size_t len)
{
    if (!r->conn) return "-";
    return loom__access_log_addr(r->conn, buf, len);
}

void loom__req_finish(loom_req *r)
{
    loom__conn *c = r->conn;
    if (!c) {
        if (r->take_over) r->take_over(NULL, r->take_over_arg);
        loom__req_free(r);
        return;
    }
    if (c->proto) {
        c->proto->req_finish(r);
        return;
    }
    loom__worker *w = c->w;
    /* Once a stop has begun, every answer says the connection ends. */
    if (w->draining || c->draining) r->resp.close = 1;
    /* A 101 hands the connection to another protocol once its head is
     * queued; any other answer to an upgrade request ends it. */
    int switching = r->take_over && r->resp.status == 101 && !r->resp.close && !r->resp.head_sent;
    if (r->take_over && !switching) r->resp.close = 1;
    if (!r->resp.head_sent) {
        if (!r->resp.status) r->resp.status = 200;
        int bad = loom__resp_write(r, outbuf(c));
        if (bad) r->resp.close = 1;
        r->bytes_sent = loom__resp_has_body(r) ? (int64_t)r->resp.body_len : 0;
        if (r->resp.has_file && loom__resp_has_body(r) && !bad) {
            /* The head is queued; the connection takes the file over. */
            r->bytes_sent = (int64_t)r->resp.file_len;
            c->sending = 1;
            c->file_fd = r->resp.file_fd;
            c->file_off = r->resp.file_off;
            c->file_left = r->resp.file_len;
            c->file_pre = c->writing ? c->pend.len : 0; /* the head went into pend */
            r->resp.has_file = 0;
        } else if (r->resp.has_file && loom__resp_has_body(r)) {
            /* The head could not be built: nothing of the file can follow. */
            r->resp.close = 1;
        }
    } else if (r->resp.streaming && loom__resp_has_body(r)) {
        if (r->http_minor == 1) loom__buf_append(outbuf(c), "0\r\n\r\n", 5);
    }
    if (w->access_log && !c->l->cfg->admin) loom__access_log_write(w->access_log, c, r);
    int close = r->resp.close;
    void (*take_over)(loom__conn *, void *) = r->take_over;
    void *take_over_arg = r->take_over_arg;
    c->active = NULL;
    r->conn = NULL;
    loom__req_free(r);
    if (close) c->closing = 1;
    if (take_over && (close || !switching)) {
        take_over(NULL, take_over_arg);
    } else if (take_over) {
        if (w->batch == c) {
            /* The rest of this read goes to the new protocol: run_batch
             * stops parsing and hands it over at its end. */
            c->take_over = take_over;
            c->take_over_arg = take_over_arg;
            return;
        }
        take_over(c, take_over_arg); /* c->in goes to the protocol at once */
        if (c->closed) return;
        flush(c);
        if (!c->closed) update_deadline(c);
        return;
    }
    if (c->sending) {
        /* The head first (even inside a batch), then the file. */
        if (w->out_conn == c) flush(c);
        if (!c->closed && !c->writing) file_pump(c);
        if (!c->closed) update_deadline(c);
        return;
    }
    if (w->batch != c) {
        flush(c);
        if (c->closed) return;
        process_pending(c);
        if (!c->closed) update_deadline(c);
    }
}

int loom__req_stream_head(loom_req *r)
{
    loom__conn *c = r->conn;
    if (!c) return -1;
    if (c->proto) return c->proto->req_stream_head(r);
    if (r->resp.head_sent) return 0;
    if (c->w->draining || c->draining) r->resp.close = 1;
    r->resp.streaming = 1;
    /* HTTP/1.0 has no chunked coding: the body ends when the connection does. */
    if (r->http_minor == 0) r->resp.close = 1;
    if (loom__resp_write_head(r, outbuf(c), r->http_minor == 1)) return -1;
    if (c->w->batch != c) flush(c);
    return 0;
}

int loom__req_stream_write(loom_req *r, const void *data, size_t len)
{
    loom__conn *c = r->conn;
    if (!c) return -1;
    if (c->proto) return c->proto->req_stream_write(r, data, len);
    if (!r->resp.head_sent && loom__req_stream_head(r)) return -1;
    if (!loom__resp_has_body(r) || len == 0) return 0;
    c = r->conn;
    if (!c) return -1;
    loom__buf *b = outbuf(c);
    if (r->http_minor == 1) loom__buf_printf(b, "%zx\r\n", len);
    loom__buf_append(b, data, len);
    if (r->http_minor == 1) loom__buf_append(b, "\r\n", 2);
    r->bytes_sent += (int64_t)len;
    if (c->w->batch != c) flush(c);
    return 0;
}

/* ---- for graceful stops and other protocols ---- */

void loom__conn_drain(loom__conn *c)
{
    if (c->closed) return;
    c->draining = 1;
    if (c->proto) {
        if (c->proto->on_stop) c->proto->on_stop(c);
    } else if (loom__conn_idle(c) || (c->tls && !c->tls->t.done)) {
        loom__conn_close(c);
    }
}

void loom__conn_set_proto(loom__conn *c, const loom__proto *p, void *pdata)
{
    if (c->w->metrics) {
        loom__metrics_conn(c->w->metrics, c->mproto, 0);
        c->mproto = (uint8_t)loom__metrics_proto(p->name);
        loom__metrics_conn(c->w->metrics, c->mproto, 1);
    }
    c->proto = p;
    c->pdata = pdata;
    c->sniff = 0;
    loom__parser_free(&c->parser);
    update_deadline(c);
    if (c->in.len) {
        /* Bytes the client sent right behind the last HTTP/1.1 request. */
        loom__buf in = c->in;
        memset(&c->in, 0, sizeof c->in);
        c->in_parsed = 0;
        p->on_data(c, in.data, in.len);
        loom__buf_free(&in);
    }
}

loom__buf *loom__conn_outbuf(loom__conn *c)
{
    return outbuf(c);
}

void loom__conn_flush(loom__conn *c)
{
    if (c->closed || c->w->batch == c) return;
    flush(c);
    if (!c->closed) update_deadline(c);
}

size_t loom__conn_queued(const loom__conn *c)
{
    size_t n = c->pend.len + (c->writing ? c->wq.len - c->wq_off : 0);
    if (c->w->out_conn == c) n += c->w->out.len;
    if (c->tls) n += c->tls->cout.len;
    return n;
}

void loom__conn_pause(loom__conn *c, int paused)
{
    if (c->closed || c->paused == (uint8_t)(paused != 0)) return;
    c->paused = paused != 0;
    poll_update(c);
}

void loom__conn_end(loom__conn *c)
{
    if (c->closed || c->closing) return;
    c->closing = 1;
    if (c->w->out_conn == c) flush(c);
    if (!c->closed && !c->writing && !c->sending && !c->lingering) conn_shutdown(c);
}

const loom__conn_tls *loom__conn_tls_of(const loom__conn *c)
{
    return c ? c->tls : NULL;
}
