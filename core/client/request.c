/* One request from loom_client_send() to its callback: resolve, get a pooled
 * connection (through a proxy, over TLS: transport.c), write, parse the
 * response with llhttp (HTTP_RESPONSE), decode, keep cookies, follow
 * redirects, enforce the timeouts. */
#include "client/client_int.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define container_of(p, type, member) ((type *)((char *)(p)-offsetof(type, member)))

static void start_hop(loom_client *c, loom_client_request *req);
static void send_request(loom_client_request *req);

/* ---- completion ---- */

static double since(const struct timespec *t0)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)(t.tv_sec - t0->tv_sec) + (double)(t.tv_nsec - t0->tv_nsec) / 1e9;
}

/* Everything a request owns but itself. */
static void release_fields(loom_client_request *req)
{
    loom__url_free(&req->url);
    for (size_t i = 0; i < req->nheaders; i++) {
        free(req->headers[i].name);
        free(req->headers[i].value);
    }
    free(req->headers);
    free(req->method);
    free(req->body);
    free(req->content_type);
    free(req->pool_key);
    loom__proxy_free(&req->own_proxy);
    loom__decoder_free(&req->dec);
    loom_client_response_free(req->resp);
}

static void free_req(loom_client_request *req)
{
    release_fields(req);
    loom_client *c = req->client;
    free(req);
    loom__client_unref(c);
}

static void on_timer_close(uv_handle_t *h)
{
    free_req(h->data);
}

/* Detaches req from everything (connection, DNS, queue, client list). */
static void detach(loom_client_request *req)
{
    loom_client *c = req->client;
    if (req->timer_closing) return;
    /* First take req out of every list, so that callbacks run by closing its
     * connection (a queued request failing, the user closing the client)
     * cannot see it; its memory lives until the timer's close callback. */
    req->timer_closing = 1;
    loom__dns_cancel(&req->dw);
    loom__pool_unqueue(c, req);
    if (req->prev)
        req->prev->next = req->next;
    else
        c->reqs = req->next;
    if (req->next) req->next->prev = req->prev;
    req->next = req->prev = NULL;
    c->pending--;
    uv_timer_stop(&req->timer);
    uv_close((uv_handle_t *)&req->timer, on_timer_close);
    if (req->conn) {
        loom__cconn *conn = req->conn;
        req->conn = NULL;
        conn->req = NULL;
        loom__cconn_close(conn);
    }
}

static void finish(loom_client_request *req, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void finish(loom_client_request *req, int code, const char *fmt, ...)
{
    if (req->timer_closing) return; /* completed or cancelled already */
    loom_client_response *resp = req->resp;
    req->resp = NULL;
    if (code) {
        char detail[512] = "";
        if (fmt) {
            va_list ap;
            va_start(ap, fmt);
            vsnprintf(detail, sizeof detail, fmt, ap);
            va_end(ap);
        }
        resp->error = code;
        free(resp->message);
        const char *url = req->url.full ? req->url.full : resp->request_url;
        if (code == LOOM_CLIENT_E_TOO_MANY_REDIRECTS) url = resp->request_url;
        resp->message = loom__errmsg(code, url, detail);
    }
    resp->elapsed = since(&req->t0);
    detach(req);
    req->cb(resp, req->ud);
}

void loom__req_fail(loom_client_request *req, int code, const char *fmt, ...)
{
    char detail[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    finish(req, code, "%s", detail);
}

void loom__req_fail_cancelled(loom_client_request *req)
{
    finish(req, LOOM_CLIENT_E_CANCELLED, "the client was closed");
}

void loom_client_cancel(loom_client_request *req)
{
    if (!req || req->timer_closing) return;
    detach(req);
}

/* ---- timers ---- */

static void on_timer(uv_timer_t *t);

/* Arms the timer for the nearest deadline. Lazily: a timer already due
 * earlier is left alone (it fires early and re-arms), which saves a timer
 * heap update at every step of every request. */
static void arm_timer(loom_client_request *req)
{
    uint64_t next = req->total_deadline;
    if (req->phase_deadline && (!next || req->phase_deadline < next)) next = req->phase_deadline;
    if (!next) {
        if (req->armed_at) uv_timer_stop(&req->timer);
        req->armed_at = 0;
        return;
    }
    if (req->armed_at && req->armed_at <= next) return;
    uint64_t now = uv_now(req->client->loop);
    uv_timer_start(&req->timer, on_timer, next > now ? next - now : 0, 0);
    req->armed_at = next;
}

static uint64_t to_ms(double s)
{
    if (s <= 0) return 0;
    uint64_t ms = (uint64_t)(s * 1000 + 0.5);
    return ms ? ms : 1;
}

static void on_timer(uv_timer_t *t)
{
    loom_client_request *req = t->data;
    req->armed_at = 0;
    if (req->state == LOOM__REQ_START) {
        if (req->pending_error) {
            finish(req, req->pending_error, "%s", req->stop_msg);
            return;
        }
        start_hop(req->client, req);
        return;
    }
    uint64_t now = uv_now(req->client->loop);
    if (req->total_deadline && now >= req->total_deadline) {
        finish(req, LOOM_CLIENT_E_TOTAL_TIMEOUT, "no complete response within %g s",
               (double)req->total_ms / 1000);
        return;
    }
    if (req->phase_deadline && now >= req->phase_deadline) {
        loom__cconn *conn = req->conn;
        if (req->phase_is_connect && conn && conn->handshaking)
            finish(req, LOOM_CLIENT_E_TLS_TIMEOUT,
                   "the TLS handshake did not complete within the connect timeout (%g s)",
                   (double)req->connect_ms / 1000);
        else if (req->phase_is_connect && conn && conn->tunneling)
            finish(req, LOOM_CLIENT_E_CONNECT_TIMEOUT,
                   "proxy %s did not open the tunnel within %g s", req->proxy->url,
                   (double)req->connect_ms / 1000);
        else if (req->phase_is_connect && req->proxy)
            finish(req, LOOM_CLIENT_E_CONNECT_TIMEOUT, "not connected to proxy %s within %g s",
                   req->proxy->url, (double)req->connect_ms / 1000);
        else if (req->phase_is_connect)
            finish(req, LOOM_CLIENT_E_CONNECT_TIMEOUT, "not connected within %g s",
                   (double)req->connect_ms / 1000);
        else
            finish(req, LOOM_CLIENT_E_READ_TIMEOUT, "nothing received for %g s",
                   (double)req->read_ms / 1000);
        return;
    }
    arm_timer(req);
}

/* ---- the steps ---- */

static void on_dns(loom__dns_waiter *w, int status, const struct sockaddr_storage *addrs, size_t n)
{
    loom_client_request *req = container_of(w, loom_client_request, dw);
    if (status) {
        if (status == UV_ENOMEM)
            finish(req, LOOM_CLIENT_E_NOMEM, "resolving %s", req->url.host);
        else if (req->proxy)
            finish(req, LOOM_CLIENT_E_PROXY_CONNECT, "cannot resolve proxy host %s: %s",
                   req->proxy->host, uv_strerror(status));
        else
            finish(req, LOOM_CLIENT_E_DNS, "cannot resolve host %s: %s", req->url.host,
                   uv_strerror(status));
        return;
    }
    if (n > LOOM__CLIENT_MAX_ADDRS) n = LOOM__CLIENT_MAX_ADDRS;
    memcpy(req->addrs, addrs, n * sizeof addrs[0]);
    req->naddrs = n;
    req->addr_idx = 0;
    req->state = LOOM__REQ_QUEUED;
    loom__pool_acquire(req->client, req);
}

/* This hop's proxy: the request's own, the client's, or the environment's
 * (unless no_proxy names the host). -1 with the request failed. */
static int choose_proxy(loom_client_request *req)
{
    loom_client *c = req->client;
    req->proxy = NULL;
    if (req->own_proxy_set) {
        req->proxy = req->own_proxy.host ? &req->own_proxy : NULL;
        return 0;
    }
    if (c->proxy_err) {
        finish(req, LOOM_CLIENT_E_INVALID_URL, "%s", c->proxy_err);
        return -1;
    }
    if (c->proxy.host) {
        req->proxy = &c->proxy;
        return 0;
    }
    if (!req->trust_env) return 0;
    int rc = loom__client_env_proxies(c);
    if (rc) {
        if (rc == -2)
            finish(req, LOOM_CLIENT_E_NOMEM, "reading the proxy environment");
        else
            finish(req, LOOM_CLIENT_E_INVALID_URL, "%s", c->env_err);
        return -1;
    }
    const loom__proxy *p = req->url.tls ? &c->env_https : &c->env_http;
    if (p->host &&
        !(c->no_proxy && loom__no_proxy_match(c->no_proxy, req->url.host, req->url.port)))
        req->proxy = p;
    return 0;
}

static void start_hop(loom_client *c, loom_client_request *req)
{
    free(req->resp->url);
    req->resp->url = strdup(req->url.full);
    req->state = LOOM__REQ_RESOLVING;
    req->retried = 0;
    req->phase_is_connect = 1;
    req->phase_deadline = req->connect_ms ? uv_now(c->loop) + req->connect_ms : 0;
    arm_timer(req);
    if (choose_proxy(req)) return;
    if (req->url.tls && !loom__tlsconf_ctx(req->tc)) {
        finish(req, LOOM_CLIENT_E_TLS_CONFIG, "%s", req->tc->err);
        return;
    }
    /* Connections are shared only between requests that would make the
     * same one: same scheme, host, port, TLS settings and proxy. */
    loom__buf k = {0};
    int e = loom__buf_printf(&k, "%s|%s|%u|%p|%s|%s", req->url.tls ? "https" : "http",
                             req->url.host, req->url.port, req->url.tls ? (void *)req->tc : NULL,
                             req->proxy ? req->proxy->url : "",
                             req->proxy && req->proxy->auth ? req->proxy->auth : "");
    free(req->pool_key);
    req->pool_key = e ? NULL : k.data;
    if (e) loom__buf_free(&k);
    if (e || !req->resp->url) {
        finish(req, LOOM_CLIENT_E_NOMEM, "starting the request");
        return;
    }
    if (req->proxy)
        loom__dns_resolve(c, req->proxy->host, req->proxy->port, &req->dw);
    else
        loom__dns_resolve(c, req->url.host, req->url.port, &req->dw);
}

void loom__req_on_conn(loom_client_request *req, loom__cconn *conn)
{
    if (!conn) {
        finish(req, LOOM_CLIENT_E_NOMEM, "no memory for a connection");
        return;
    }
    req->conn = conn;
    if (conn->connected)
        send_request(req);
    else
        req->state = LOOM__REQ_CONNECTING;
}

static const char *addr_str(const struct sockaddr_storage *ss, char *buf, size_t len)
{
    char ip[64] = "?";
    unsigned port = 0;
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *s = (const struct sockaddr_in *)ss;
        inet_ntop(AF_INET, &s->sin_addr, ip, sizeof ip);
        port = ntohs(s->sin_port);
        snprintf(buf, len, "%s:%u", ip, port);
    } else {
        const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)ss;
        inet_ntop(AF_INET6, &s->sin6_addr, ip, sizeof ip);
        port = ntohs(s->sin6_port);
        snprintf(buf, len, "[%s]:%u", ip, port);
    }
    return buf;
}

void loom__req_on_connected(loom_client_request *req, int status)
{
    if (status == 0) {
        send_request(req);
        return;
    }
    char a[96];
    addr_str(&req->addrs[req->addr_idx], a, sizeof a);
    if (req->addr_idx + 1 < req->naddrs) {
        /* try the next address */
        loom__cconn *conn = req->conn;
        req->conn = NULL;
        conn->req = NULL;
        loom__cconn_close(conn);
        req->addr_idx++;
        req->state = LOOM__REQ_QUEUED;
        loom__pool_acquire(req->client, req);
        return;
    }
    if (req->proxy)
        finish(req, LOOM_CLIENT_E_PROXY_CONNECT, "cannot connect to proxy %s: %s %s: %s",
               req->proxy->url, uv_err_name(status), a, uv_strerror(status));
    else
        finish(req,
               status == UV_ECONNREFUSED ? LOOM_CLIENT_E_CONNECTION_REFUSED : LOOM_CLIENT_E_CONNECT,
               "connect %s %s: %s", uv_err_name(status), a, uv_strerror(status));
}

static int has_header(const loom_client_request *req, const char *name)
{
    for (size_t i = 0; i < req->nheaders; i++)
        if (strcasecmp(req->headers[i].name, name) == 0) return 1;
    return 0;
}

static int puts3(loom__buf *b, const char *x, const char *y, const char *z)
{
    return loom__buf_puts(b, x) | loom__buf_puts(b, y) | loom__buf_puts(b, z);
}

static void reset_parse(loom_client_request *req)
{
    loom__resp_clear_head(req->resp);
    req->conn->field.len = req->conn->value.len = 0;
    req->head_done = req->got_bytes = req->redirecting = req->skip_body = 0;
    req->message_done = req->stop_err = 0;
    req->stop_msg[0] = 0;
    req->raw_body = 0;
    loom__decoder_free(&req->dec);
    req->decoding = 0;
}

static void send_request(loom_client_request *req)
{
    loom_client *c = req->client;
    loom__cconn *conn = req->conn;
    req->state = LOOM__REQ_SENT;
    req->phase_is_connect = 0;
    req->phase_deadline = req->read_ms ? uv_now(c->loop) + req->read_ms : 0;
    arm_timer(req);
    reset_parse(req);
    loom_client_response *resp = req->resp;
    resp->is_tls = conn->is_tls;
    resp->tls_version = conn->tls_version;
    resp->tls_resumed = conn->tls_resumed;
    loom__buf *b = &conn->wbuf;
    b->len = 0;
    /* plain appends: this runs once per request on the hot path. Through a
     * proxy (without a tunnel) the target is the absolute URL. */
    int absolute = req->proxy && !req->url.tls;
    int e = puts3(b, req->method, " ", absolute ? req->url.full : req->url.target) |
            loom__buf_puts(b, " HTTP/1.1\r\n");
    if (!has_header(req, "Host")) e |= puts3(b, "Host: ", req->url.hostport, "\r\n");
    if (!has_header(req, "User-Agent")) e |= puts3(b, "User-Agent: ", c->user_agent, "\r\n");
    if (!has_header(req, "Accept")) e |= loom__buf_puts(b, "Accept: */*\r\n");
    if (!c->no_decompress && !has_header(req, "Accept-Encoding"))
        e |= puts3(b, "Accept-Encoding: ", loom_client_accept_encoding(), "\r\n");
    if (absolute && req->proxy->auth && !has_header(req, "Proxy-Authorization"))
        e |= puts3(b, "Proxy-Authorization: ", req->proxy->auth, "\r\n");
    const char *user_cookie = NULL;
    for (size_t i = 0; i < req->nheaders; i++) {
        if (req->jar && strcasecmp(req->headers[i].name, "Cookie") == 0) {
            user_cookie = req->headers[i].value;
            continue;
        }
        e |=
            puts3(b, req->headers[i].name, ": ", req->headers[i].value) | loom__buf_puts(b, "\r\n");
    }
    if (req->jar) {
        /* the caller's Cookie header first, then the jar's cookies for this URL */
        loom__buf ck = {0};
        if (user_cookie) e |= loom__buf_puts(&ck, user_cookie);
        if (loom__jar_header(req->jar, &req->url, &ck, (int64_t)time(NULL)) < 0) e = 1;
        if (ck.len)
            e |= loom__buf_puts(b, "Cookie: ") | loom__buf_append(b, ck.data, ck.len) |
                 loom__buf_puts(b, "\r\n");
        loom__buf_free(&ck);
    }
    int wants_len = req->body || strcmp(req->method, "POST") == 0 ||
                    strcmp(req->method, "PUT") == 0 || strcmp(req->method, "PATCH") == 0;
    if (wants_len && !has_header(req, "Content-Length"))
        e |= loom__buf_printf(b, "Content-Length: %zu\r\n", req->body_len);
    if (req->body && req->content_type && !has_header(req, "Content-Type"))
        e |= puts3(b, "Content-Type: ", req->content_type, "\r\n");
    e |= loom__buf_puts(b, "\r\n");
    if (req->body_len) e |= loom__buf_append(b, req->body, req->body_len);
    if (e) {
        finish(req, LOOM_CLIENT_E_NOMEM, "building the request");
        return;
    }
    loom__conn_send(conn);
}

static int idempotent(const char *m)
{
    return !strcmp(m, "GET") || !strcmp(m, "HEAD") || !strcmp(m, "OPTIONS") || !strcmp(m, "PUT") ||
           !strcmp(m, "DELETE") || !strcmp(m, "TRACE");
}

/* The connection broke before any response byte. A pooled connection the
 * server had closed while idle gets one retry on a fresh connection. */
static void disconnected(loom_client_request *req, int status)
{
    loom__cconn *conn = req->conn;
    if (conn && conn->requests > 0 && !req->got_bytes && !req->retried && idempotent(req->method)) {
        req->conn = NULL;
        conn->req = NULL;
        loom__cconn_close(conn);
        req->retried = 1;
        req->state = LOOM__REQ_QUEUED;
        loom__pool_acquire(req->client, req);
        return;
    }
    if (status == UV_EOF)
        finish(req, LOOM_CLIENT_E_SERVER_DISCONNECTED,
               "the server closed the connection before the end of the response head");
    else
        finish(req, LOOM_CLIENT_E_SERVER_DISCONNECTED, "%s: %s", uv_err_name(status),
               uv_strerror(status));
}

void loom__req_on_written(loom_client_request *req, int status)
{
    if (status == 0) return;
    if (req->head_done) return; /* the server answered already: let it finish */
    disconnected(req, status);
}

/* ---- redirects and the end of a response ---- */

static void drop_header(loom_client_request *req, const char *name)
{
    for (size_t i = 0; i < req->nheaders;) {
        if (strcasecmp(req->headers[i].name, name) == 0) {
            free(req->headers[i].name);
            free(req->headers[i].value);
            memmove(&req->headers[i], &req->headers[i + 1],
                    (req->nheaders - i - 1) * sizeof req->headers[0]);
            req->nheaders--;
        } else {
            i++;
        }
    }
}

static void follow_redirect(loom_client_request *req)
{
    loom_client_response *resp = req->resp;
    int status = resp->status;
    const char *loc = loom_client_response_header(resp, "Location");
    void *h = realloc(resp->history, (resp->nhistory + 1) * sizeof resp->history[0]);
    if (!h) {
        finish(req, LOOM_CLIENT_E_NOMEM, "redirect history");
        return;
    }
    resp->history = h;
    resp->history[resp->nhistory].url = strdup(req->url.full);
    resp->history[resp->nhistory].status = status;
    resp->nhistory++;
    if ((int)resp->nhistory > req->max_redirects) {
        finish(req, LOOM_CLIENT_E_TOO_MANY_REDIRECTS, "more than %d redirects, last to %.300s",
               req->max_redirects, loc);
        return;
    }
    loom__url next;
    char err[160];
    int rc = loom__url_resolve(&req->url, loc, &next, err, sizeof err);
    if (rc == -2) {
        finish(req, LOOM_CLIENT_E_NOMEM, "redirect");
        return;
    }
    if (rc) {
        finish(req, LOOM_CLIENT_E_INVALID_URL, "redirect to '%.300s': %s", loc, err);
        return;
    }
    if (req->url.tls && !next.tls && !req->allow_downgrade) {
        loom__url_free(&next);
        finish(req, LOOM_CLIENT_E_DOWNGRADE,
               "redirect from https to http refused: %.300s (allow_downgrade to follow it)", loc);
        return;
    }
    if (strcmp(next.origin, req->url.origin) != 0) {
        /* credentials of one origin never go to another; the jar's cookies
         * for the new URL are added when it is sent */
        drop_header(req, "Authorization");
        drop_header(req, "Cookie");
        drop_header(req, "Proxy-Authorization");
    }
    if ((status == 303 && strcmp(req->method, "HEAD") != 0) ||
        ((status == 301 || status == 302) && strcmp(req->method, "POST") == 0)) {
        free(req->method);
        req->method = strdup("GET");
        free(req->body);
        req->body = NULL;
        req->body_len = 0;
        drop_header(req, "Content-Type");
        drop_header(req, "Content-Length");
        if (!req->method) {
            loom__url_free(&next);
            finish(req, LOOM_CLIENT_E_NOMEM, "redirect");
            return;
        }
    }
    loom__url_free(&req->url);
    req->url = next;
    start_hop(req->client, req);
}

/* A complete response was parsed. `clean`: no stray bytes after it. */
static void message_complete(loom_client_request *req, int clean)
{
    loom__cconn *conn = req->conn;
    if (req->decoding) {
        int e = loom__decoder_finish(&req->dec);
        if (e) {
            finish(req, e, "the %s body ends before the end of its compressed stream",
                   loom__decoder_name(&req->dec));
            return;
        }
    }
    int reuse = clean && llhttp_should_keep_alive(&conn->parser) && !conn->writing;
    req->conn = NULL;
    loom__pool_release(conn, reuse);
    if (req->timer_closing) return; /* the client was closed meanwhile */
    loom_client_response *resp = req->resp;
    if (req->redirecting) {
        follow_redirect(req);
        return;
    }
    if (resp->status == 407 && req->proxy && !req->url.tls) {
        finish(req, LOOM_CLIENT_E_PROXY_AUTH, "proxy %s %s: 407 %s", req->proxy->url,
               req->proxy->auth ? "refused the credentials" : "wants credentials",
               loom_client_response_reason(resp));
        return;
    }
    if (req->raise_for_status && resp->status >= 400) {
        finish(req, LOOM_CLIENT_E_STATUS, "%d %s", resp->status, loom_client_response_reason(resp));
        return;
    }
    finish(req, 0, NULL);
}

void loom__req_on_read(loom_client_request *req, ssize_t nread, const char *data)
{
    loom__cconn *conn = req->conn;
    if (nread > 0) {
        req->got_bytes = 1;
        if (req->read_ms) req->phase_deadline = uv_now(req->client->loop) + req->read_ms;
        llhttp_errno_t err = llhttp_execute(&conn->parser, data, (size_t)nread);
        if (req->timer_closing) return; /* closed from a chunk callback */
        if (err == HPE_OK) return;
        if (err == HPE_PAUSED && req->message_done) {
            const char *pos = llhttp_get_error_pos(&conn->parser);
            message_complete(req, pos == data + nread);
            return;
        }
        if (err == HPE_PAUSED_UPGRADE) {
            message_complete(req, 0);
            return;
        }
        if (req->stop_err) {
            finish(req, req->stop_err, "%s", req->stop_msg);
            return;
        }
        const char *why = llhttp_get_error_reason(&conn->parser);
        if (!why) why = llhttp_errno_name(err);
        if (!req->head_done)
            finish(req, LOOM_CLIENT_E_BAD_RESPONSE, "invalid response head: %s", why);
        else
            finish(req, LOOM_CLIENT_E_PAYLOAD, "invalid body framing: %s", why);
        return;
    }
    if (!req->got_bytes) {
        disconnected(req, (int)nread);
        return;
    }
    if (nread == UV_EOF) {
        llhttp_finish(&conn->parser);
        if (req->message_done) {
            message_complete(req, 0);
            return;
        }
        if (req->stop_err) {
            finish(req, req->stop_err, "%s", req->stop_msg);
            return;
        }
    }
    if (!req->head_done) {
        finish(req, LOOM_CLIENT_E_SERVER_DISCONNECTED, "%s in the middle of the response head",
               nread == UV_EOF ? "connection closed" : uv_strerror((int)nread));
        return;
    }
    if (conn->parser.flags & F_CHUNKED)
        finish(req, LOOM_CLIENT_E_PAYLOAD, "%s inside the chunked body after %zu bytes",
               nread == UV_EOF ? "connection closed" : uv_strerror((int)nread), req->raw_body);
    else
        finish(req, LOOM_CLIENT_E_PAYLOAD,
               "%s before the end of the body: %zu bytes received, %llu missing",
               nread == UV_EOF ? "connection closed" : uv_strerror((int)nread), req->raw_body,
               (unsigned long long)conn->parser.content_length);
}

/* ---- llhttp callbacks ---- */

static int stop(loom_client_request *req, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int stop(loom_client_request *req, int code, const char *fmt, ...)
{
    req->stop_err = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(req->stop_msg, sizeof req->stop_msg, fmt, ap);
    va_end(ap);
    return -1;
}

static loom_client_request *req_of(llhttp_t *p)
{
    loom__cconn *conn = p->data;
    return conn->req;
}

static int on_status(llhttp_t *p, const char *at, size_t len)
{
    loom_client_request *req = req_of(p);
    if (!req) return -1;
    if (req->conn->value.len + len > LOOM__CLIENT_MAX_LINE)
        return stop(req, LOOM_CLIENT_E_BAD_RESPONSE, "status line longer than 8190 bytes");
    return loom__buf_append(&req->conn->value, at, len) ? stop(req, LOOM_CLIENT_E_NOMEM, "head")
                                                        : 0;
}

static int on_status_complete(llhttp_t *p)
{
    loom_client_request *req = req_of(p);
    if (!req) return -1;
    free(req->resp->reason);
    req->resp->reason =
        strndup(req->conn->value.data ? req->conn->value.data : "", req->conn->value.len);
    req->conn->value.len = 0;
    return req->resp->reason ? 0 : stop(req, LOOM_CLIENT_E_NOMEM, "head");
}

static int on_header_field(llhttp_t *p, const char *at, size_t len)
{
    loom_client_request *req = req_of(p);
    if (!req) return -1;
    if (req->conn->field.len + len > LOOM__CLIENT_MAX_LINE)
        return stop(req, LOOM_CLIENT_E_BAD_RESPONSE, "header line longer than 8190 bytes");
    return loom__buf_append(&req->conn->field, at, len) ? stop(req, LOOM_CLIENT_E_NOMEM, "head")
                                                        : 0;
}

static int on_header_value(llhttp_t *p, const char *at, size_t len)
{
    loom_client_request *req = req_of(p);
    if (!req) return -1;
    if (req->conn->field.len + req->conn->value.len + len > LOOM__CLIENT_MAX_LINE)
        return stop(req, LOOM_CLIENT_E_BAD_RESPONSE, "header line longer than 8190 bytes");
    return loom__buf_append(&req->conn->value, at, len) ? stop(req, LOOM_CLIENT_E_NOMEM, "head")
                                                        : 0;
}

static int on_header_value_complete(llhttp_t *p)
{
    loom_client_request *req = req_of(p);
    if (!req) return -1;
    loom_client_response *r = req->resp;
    if (r->nheaders >= LOOM__CLIENT_MAX_HEADERS)
        return stop(req, LOOM_CLIENT_E_BAD_RESPONSE, "more than 128 header lines");
    if (r->nheaders == r->cap_headers) {
        size_t cap = r->cap_headers ? r->cap_headers * 2 : 16;
        void *h = realloc(r->headers, cap * sizeof r->headers[0]);
        if (!h) return stop(req, LOOM_CLIENT_E_NOMEM, "head");
        r->headers = h;
        r->cap_headers = cap;
    }
    loom__kv *kv = &r->headers[r->nheaders];
    /* one allocation: name, NUL, value, NUL (the value is not freed on its own) */
    kv->name = malloc(req->conn->field.len + req->conn->value.len + 2);
    if (!kv->name) return stop(req, LOOM_CLIENT_E_NOMEM, "head");
    if (req->conn->field.len) memcpy(kv->name, req->conn->field.data, req->conn->field.len);
    kv->name[req->conn->field.len] = 0;
    kv->value = kv->name + req->conn->field.len + 1;
    if (req->conn->value.len) memcpy(kv->value, req->conn->value.data, req->conn->value.len);
    kv->value[req->conn->value.len] = 0;
    req->conn->field.len = req->conn->value.len = 0;
    r->nheaders++;
    return 0;
}

static int on_headers_complete(llhttp_t *p)
{
    loom_client_request *req = req_of(p);
    if (!req) return -1;
    loom_client_response *r = req->resp;
    r->status = llhttp_get_status_code(p);
    r->version_minor = llhttp_get_http_minor(p);
    /* llhttp takes "HTTP/1.1 20 OK" or "HTTP/1.1 0 OK"; a status code is
     * three digits (RFC 9110 §15). */
    if (r->status < 100 || r->status > 999)
        return stop(req, LOOM_CLIENT_E_BAD_RESPONSE, "invalid status code %d", r->status);
    if (r->status >= 100 && r->status < 200 && r->status != 101) return 0; /* interim */
    req->head_done = 1;
    if (req->jar) {
        int64_t now = (int64_t)time(NULL);
        for (size_t i = 0; i < r->nheaders; i++)
            if (strcasecmp(r->headers[i].name, "Set-Cookie") == 0 &&
                loom__jar_store(req->jar, &req->url, r->headers[i].value, now) < 0)
                return stop(req, LOOM_CLIENT_E_NOMEM, "cookie jar");
    }
    int s = r->status;
    if ((s == 301 || s == 302 || s == 303 || s == 307 || s == 308) && req->max_redirects >= 0 &&
        loom_client_response_header(r, "Location"))
        req->redirecting = 1;
    if (!req->redirecting && !req->client->no_decompress && strcmp(req->method, "HEAD") != 0) {
        const char *enc = loom_client_response_header(r, "Content-Encoding");
        req->decoding = loom__decoder_init(&req->dec, enc, req->client->max_body);
    }
    return strcmp(req->method, "HEAD") == 0 ? 1 : 0;
}

static int sink(void *ud, const char *data, size_t len)
{
    loom_client_request *req = ud;
    if (req->on_chunk) {
        if (req->on_chunk(req->resp, data, len, req->chunk_ud) || req->timer_closing)
            return LOOM_CLIENT_E_CANCELLED;
        return 0;
    }
    if (req->resp->body.len + len > req->client->max_body) return LOOM_CLIENT_E_TOO_LARGE;
    /* keep room for a NUL */
    if (loom__buf_reserve(&req->resp->body, len + 1)) return LOOM_CLIENT_E_NOMEM;
    memcpy(req->resp->body.data + req->resp->body.len, data, len);
    req->resp->body.len += len;
    req->resp->body.data[req->resp->body.len] = 0;
    return 0;
}

static int on_body(llhttp_t *p, const char *at, size_t len)
{
    loom_client_request *req = req_of(p);
    if (!req) return -1;
    req->raw_body += len;
    if (req->redirecting) return 0;
    if (!req->on_chunk && req->raw_body > req->client->max_body)
        return stop(req, LOOM_CLIENT_E_TOO_LARGE, "body larger than %zu bytes",
                    req->client->max_body);
    int e = req->decoding ? loom__decoder_feed(&req->dec, at, len, sink, req) : sink(req, at, len);
    if (!e) return 0;
    if (e == LOOM_CLIENT_E_TOO_LARGE)
        return stop(req, e, "body larger than %zu bytes", req->client->max_body);
    if (e == LOOM_CLIENT_E_DECODED_TOO_LARGE)
        return stop(req, e,
                    "the %s body decodes to more than %zu bytes after %zu compressed bytes "
                    "(a decompression bomb?)",
                    loom__decoder_name(&req->dec), req->client->max_body, req->raw_body);
    if (e == LOOM_CLIENT_E_PAYLOAD)
        return stop(req, e, "cannot decode the %s body", loom__decoder_name(&req->dec));
    if (e == LOOM_CLIENT_E_CANCELLED) return stop(req, e, "stopped by the chunk callback");
    return stop(req, e, "body");
}

static int on_message_complete(llhttp_t *p)
{
    loom_client_request *req = req_of(p);
    if (!req) return -1;
    if (!req->head_done) {
        /* an interim 1xx response: forget it and read the real one */
        loom__resp_clear_head(req->resp);
        return 0;
    }
    req->message_done = 1;
    return HPE_PAUSED;
}

const llhttp_settings_t loom__client_parser_settings = {
    .on_status = on_status,
    .on_status_complete = on_status_complete,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_header_value_complete = on_header_value_complete,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

/* ---- starting ---- */

static int bad_text(const char *s)
{
    for (; *s; s++)
        if (*s == '\r' || *s == '\n') return 1;
    return 0;
}

/* RFC 9110 token: the method, and a header name. */
static int is_token(const char *s)
{
    if (!*s) return 0;
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch <= 0x20 || ch >= 0x7f || strchr("\"(),/:;<=>?@[\\]{}", ch)) return 0;
    }
    return 1;
}

static int add_header(loom_client_request *req, const char *name, const char *value)
{
    if (!name || !is_token(name) || bad_text(value ? value : "")) return -1;
    drop_header(req, name);
    void *h = realloc(req->headers, (req->nheaders + 1) * sizeof req->headers[0]);
    if (!h) return -2;
    req->headers = h;
    loom__kv *kv = &req->headers[req->nheaders];
    kv->name = strdup(name);
    kv->value = strdup(value ? value : "");
    if (!kv->name || !kv->value) {
        free(kv->name);
        free(kv->value);
        return -2;
    }
    req->nheaders++;
    return 0;
}

static int set_body(loom_client_request *req, const void *data, size_t len, const char *ctype)
{
    req->body = malloc(len ? len : 1);
    req->content_type = strdup(ctype);
    if (!req->body || !req->content_type) return -2;
    if (len) memcpy(req->body, data, len);
    req->body_len = len;
    return 0;
}

static int build_form(loom_client_request *req, const loom_client_header *form, size_t n)
{
    loom__buf b = {0};
    for (size_t i = 0; i < n; i++) {
        if (i) loom__buf_append(&b, "&", 1);
        loom__url_encode(&b, form[i].name ? form[i].name : "");
        loom__buf_append(&b, "=", 1);
        if (loom__url_encode(&b, form[i].value ? form[i].value : "")) {
            loom__buf_free(&b);
            return -2;
        }
    }
    int rc = set_body(req, b.data, b.len, "application/x-www-form-urlencoded");
    loom__buf_free(&b);
    return rc;
}

static double pick(double per_req, double client)
{
    if (per_req < 0) return 0;
    return per_req > 0 ? per_req : client;
}

loom_client_request *loom_client_send(loom_client *c, const char *method, const char *url,
                                      const loom_client_opts *opts, loom_client_done_cb cb,
                                      void *ud)
{
    static const loom_client_opts none;
    if (!c || !method || !url || !cb || c->closing) return NULL;
    if (!is_token(method)) return NULL;
    if (!opts) opts = &none;
    loom_client_request *req = calloc(1, sizeof *req);
    if (!req) return NULL;
    req->resp = loom__resp_new();
    req->method = strdup(method);
    if (!req->resp || !req->method) goto fail;
    req->resp->request_url = strdup(url);
    if (!req->resp->request_url) goto fail;
    req->client = c;
    req->cb = cb;
    req->ud = ud;
    req->dw.next = req->dw.prev = &req->dw;
    req->dw.cb = on_dns;
    clock_gettime(CLOCK_MONOTONIC, &req->t0);
    req->total_ms = to_ms(pick(opts->total_timeout, c->total));
    req->connect_ms = to_ms(pick(opts->connect_timeout, c->connect));
    req->read_ms = to_ms(pick(opts->read_timeout, c->read));
    req->raise_for_status = opts->raise_for_status > 0   ? 1
                            : opts->raise_for_status < 0 ? 0
                                                         : c->raise_for_status;
    req->max_redirects = opts->max_redirects > 0   ? opts->max_redirects
                         : opts->max_redirects < 0 ? -1
                                                   : c->max_redirects;
    req->on_chunk = opts->on_chunk;
    req->chunk_ud = opts->chunk_ud;
    req->jar = opts->cookie_jar ? opts->cookie_jar : c->jar;
    req->allow_downgrade = opts->allow_downgrade > 0   ? 1
                           : opts->allow_downgrade < 0 ? 0
                                                       : c->allow_downgrade;
    req->trust_env = opts->trust_env > 0 ? 1 : opts->trust_env < 0 ? 0 : c->trust_env;
    req->tc = loom__client_tlsconf(c, opts->tls);
    if (!req->tc) goto fail;
    for (size_t i = 0; i < c->nheaders; i++)
        if (add_header(req, c->hnames[i], c->hvalues[i])) goto fail;
    for (size_t i = 0; i < opts->nheaders; i++)
        if (add_header(req, opts->headers[i].name, opts->headers[i].value)) goto fail;
    int rc = 0;
    if (opts->body)
        rc = set_body(req, opts->body, opts->body_len,
                      opts->content_type ? opts->content_type : "application/octet-stream");
    else if (opts->json)
        rc = set_body(req, opts->json, strlen(opts->json), "application/json");
    else if (opts->text)
        rc = set_body(req, opts->text, strlen(opts->text), "text/plain; charset=utf-8");
    else if (opts->form)
        rc = build_form(req, opts->form, opts->nform);
    if (rc) goto fail;

    /* the URL, with the query parameters */
    loom__buf u = {0};
    loom__buf_puts(&u, url);
    if (opts->nparams) {
        size_t hash = strcspn(url, "#");
        u.len = hash;
        loom__buf_append(&u, memchr(url, '?', hash) ? "&" : "?", 1);
        for (size_t i = 0; i < opts->nparams; i++) {
            if (i) loom__buf_append(&u, "&", 1);
            loom__url_encode(&u, opts->params[i].name ? opts->params[i].name : "");
            loom__buf_append(&u, "=", 1);
            loom__url_encode(&u, opts->params[i].value ? opts->params[i].value : "");
        }
    }
    if (loom__buf_append(&u, "", 1)) {
        loom__buf_free(&u);
        goto fail;
    }
    char err[128];
    rc = loom__url_parse(u.data, &req->url, err, sizeof err);
    loom__buf_free(&u);
    if (rc == -2) goto fail;
    if (rc) {
        req->pending_error = LOOM_CLIENT_E_INVALID_URL;
        snprintf(req->stop_msg, sizeof req->stop_msg, "%s", err);
    }
    if (opts->proxy) {
        req->own_proxy_set = 1;
        if (opts->proxy[0]) {
            rc = loom__proxy_parse(opts->proxy, opts->proxy_auth, &req->own_proxy, err, sizeof err);
            if (rc == -2) goto fail;
            if (rc && !req->pending_error) {
                req->pending_error = LOOM_CLIENT_E_INVALID_URL;
                snprintf(req->stop_msg, sizeof req->stop_msg, "%s", err);
            }
        }
    }

    uv_timer_init(c->loop, &req->timer);
    req->timer.data = req;
    c->refs++;
    req->next = c->reqs;
    if (c->reqs) c->reqs->prev = req;
    c->reqs = req;
    c->pending++;
    req->state = LOOM__REQ_START;
    if (req->total_ms) req->total_deadline = uv_now(c->loop) + req->total_ms;
    uv_timer_start(&req->timer, on_timer, 0, 0); /* starts on the next loop iteration */
    req->armed_at = uv_now(c->loop);
    return req;
fail:
    req->client = NULL;
    release_fields(req);
    free(req);
    return NULL;
}
