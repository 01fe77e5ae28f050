/* The keep-alive connection pool: idle lists per (scheme, host, port, TLS
 * settings, proxy), a limit in total and per host, and a FIFO of requests
 * waiting for a connection. */
#include "client/client_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static loom__hostpool *hostpool_get(loom_client *c, const loom_client_request *req)
{
    for (loom__hostpool *hp = c->pools; hp; hp = hp->next)
        if (strcmp(hp->key, req->pool_key) == 0) return hp;
    loom__hostpool *hp = calloc(1, sizeof *hp);
    if (!hp || !(hp->key = strdup(req->pool_key))) {
        free(hp);
        return NULL;
    }
    hp->next = c->pools;
    c->pools = hp;
    return hp;
}

static void idle_remove(loom__cconn *conn)
{
    if (conn->prev)
        conn->prev->next = conn->next;
    else
        conn->hp->idle = conn->next;
    if (conn->next) conn->next->prev = conn->prev;
    conn->next = conn->prev = NULL;
}

static int can_open(loom_client *c, loom__hostpool *hp)
{
    return c->nconns < c->limit && (!c->limit_per_host || hp->nconns < c->limit_per_host);
}

/* At the total limit: closes the oldest idle connection of another host. */
static int steal_idle(loom_client *c, loom__hostpool *except)
{
    for (loom__hostpool *hp = c->pools; hp; hp = hp->next) {
        if (hp == except || !hp->idle) continue;
        loom__cconn *last = hp->idle;
        while (last->next) last = last->next;
        loom__cconn_close(last);
        return 1;
    }
    return 0;
}

static void on_close(uv_handle_t *h)
{
    loom__cconn *conn = h->data;
    loom_client *c = conn->client;
    loom__buf_free(&conn->wbuf);
    loom__buf_free(&conn->field);
    loom__buf_free(&conn->value);
    loom__conn_free(conn);
    free(conn);
    loom__client_unref(c);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    loom__cconn *conn = h->data;
    buf->base = conn->rbuf;
    buf->len = sizeof conn->rbuf;
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    loom__cconn *conn = s->data;
    if (nread == 0) return;
    if (conn->is_tls || conn->tunneling) {
        loom__conn_on_bytes(conn, nread, buf->base);
        return;
    }
    if (conn->req) {
        loom__req_on_read(conn->req, nread, buf->base);
        return;
    }
    /* An idle connection: the server closed it, or sent bytes nobody asked for. */
    loom__cconn_close(conn);
}

static void on_connect(uv_connect_t *cr, int status)
{
    loom__cconn *conn = cr->data;
    if (status == UV_ECANCELED || conn->closing) return;
    conn->connected = status == 0;
    if (status == 0) {
        uv_tcp_nodelay(&conn->tcp, 1);
        int rc = uv_read_start((uv_stream_t *)&conn->tcp, on_alloc, on_read);
        if (rc) status = rc;
    }
    if (!conn->req)
        loom__cconn_close(conn);
    else if (status)
        loom__req_on_connected(conn->req, status);
    else
        loom__conn_start(conn);
}

/* Opens a new connection for req to req->addrs[req->addr_idx]. */
static void open_conn(loom_client *c, loom__hostpool *hp, loom_client_request *req)
{
    loom__cconn *conn = malloc(sizeof *conn);
    if (!conn) {
        loom__req_on_conn(req, NULL);
        return;
    }
    memset(conn, 0, offsetof(loom__cconn, rbuf));
    conn->client = c;
    conn->hp = hp;
    conn->is_tls = req->url.tls;
    conn->tunneling = req->url.tls && req->proxy; /* CONNECT first */
    uv_tcp_init(c->loop, &conn->tcp);
    conn->tcp.data = conn;
    conn->connect_req.data = conn;
    conn->write_req.data = conn;
    c->refs++;
    c->nconns++;
    hp->nconns++;
    conn->req = req;
    llhttp_init(&conn->parser, HTTP_RESPONSE, &loom__client_parser_settings);
    conn->parser.data = conn;
    int rc = uv_tcp_connect(&conn->connect_req, &conn->tcp,
                            (const struct sockaddr *)&req->addrs[req->addr_idx], on_connect);
    loom__req_on_conn(req, conn);
    if (rc && conn->req == req) loom__req_on_connected(req, rc);
}

static void enqueue(loom_client *c, loom_client_request *req)
{
    req->queued = 1;
    req->qnext = NULL;
    req->qprev = c->queue_tail;
    if (c->queue_tail)
        c->queue_tail->qnext = req;
    else
        c->queue_head = req;
    c->queue_tail = req;
}

void loom__pool_unqueue(loom_client *c, loom_client_request *req)
{
    if (!req->queued) return;
    if (req->qprev)
        req->qprev->qnext = req->qnext;
    else
        c->queue_head = req->qnext;
    if (req->qnext)
        req->qnext->qprev = req->qprev;
    else
        c->queue_tail = req->qprev;
    req->queued = 0;
    req->qnext = req->qprev = NULL;
}

static int has_idle_elsewhere(loom_client *c, loom__hostpool *except)
{
    for (loom__hostpool *hp = c->pools; hp; hp = hp->next)
        if (hp != except && hp->idle) return 1;
    return 0;
}

/* 1 when a request for hp can get a connection now. */
static int can_serve(loom_client *c, loom__hostpool *hp)
{
    if (hp->idle || can_open(c, hp)) return 1;
    return c->nconns >= c->limit && (!c->limit_per_host || hp->nconns < c->limit_per_host) &&
           has_idle_elsewhere(c, hp);
}

/* Gives req a connection; can_serve(c, hp) must be true. */
static void acquire_now(loom_client *c, loom__hostpool *hp, loom_client_request *req)
{
    if (hp->idle) {
        loom__cconn *conn = hp->idle;
        idle_remove(conn);
        conn->req = req;
        uv_ref((uv_handle_t *)&conn->tcp);
        loom__req_on_conn(req, conn);
        return;
    }
    if (!can_open(c, hp)) steal_idle(c, hp);
    open_conn(c, hp, req);
}

static int same_host(const loom_client_request *a, const loom_client_request *b)
{
    return strcmp(a->pool_key, b->pool_key) == 0;
}

void loom__pool_acquire(loom_client *c, loom_client_request *req)
{
    loom__hostpool *hp = hostpool_get(c, req);
    if (!hp) {
        loom__req_on_conn(req, NULL);
        return;
    }
    /* Keep the order: a new request does not overtake queued ones for its host. */
    for (loom_client_request *q = c->queue_head; q; q = q->qnext) {
        if (same_host(q, req)) {
            enqueue(c, req);
            return;
        }
    }
    if (can_serve(c, hp))
        acquire_now(c, hp, req);
    else
        enqueue(c, req);
}

/* Serves queued requests while connections are available. */
static void dequeue(loom_client *c)
{
    if (c->closing) return;
    loom_client_request *q = c->queue_head;
    while (q) {
        loom__hostpool *hp = hostpool_get(c, q);
        if (!hp || !can_serve(c, hp)) {
            q = q->qnext;
            continue;
        }
        loom__pool_unqueue(c, q);
        acquire_now(c, hp, q);
        q = c->queue_head; /* the callbacks may have changed the queue */
    }
}

void loom__pool_release(loom__cconn *conn, int reuse)
{
    loom_client *c = conn->client;
    conn->req = NULL;
    conn->requests++;
    if (!reuse || c->closing || conn->closing) {
        loom__cconn_close(conn);
        return;
    }
    llhttp_reset(&conn->parser);
    /* A request waiting for this host takes the connection at once. */
    for (loom_client_request *q = c->queue_head; q; q = q->qnext) {
        if (strcmp(q->pool_key, conn->hp->key) == 0) {
            loom__pool_unqueue(c, q);
            conn->req = q;
            loom__req_on_conn(q, conn);
            return;
        }
    }
    conn->idle_since = uv_now(c->loop);
    conn->prev = NULL;
    conn->next = conn->hp->idle;
    if (conn->next) conn->next->prev = conn;
    conn->hp->idle = conn;
    uv_unref((uv_handle_t *)&conn->tcp);
}

void loom__cconn_close(loom__cconn *conn)
{
    if (conn->closing) return;
    loom_client *c = conn->client;
    conn->closing = 1;
    if (!conn->req) {
        /* idle: it is on the idle list */
        for (loom__cconn *i = conn->hp->idle; i; i = i->next) {
            if (i == conn) {
                idle_remove(conn);
                break;
            }
        }
    }
    conn->req = NULL;
    conn->hp->nconns--;
    c->nconns--;
    loom__tls_client_detach(&conn->tls); /* no session stored into a pool that may go */
    uv_close((uv_handle_t *)&conn->tcp, on_close);
    dequeue(c);
}

void loom__pool_sweep(loom_client *c)
{
    uint64_t now = uv_now(c->loop);
    for (loom__hostpool *hp = c->pools; hp; hp = hp->next) {
        loom__cconn *conn = hp->idle;
        while (conn) {
            loom__cconn *next = conn->next;
            if (now - conn->idle_since >= c->keepalive_ms) loom__cconn_close(conn);
            conn = next;
        }
    }
}

void loom__pool_shutdown(loom_client *c)
{
    for (loom__hostpool *hp = c->pools; hp; hp = hp->next)
        while (hp->idle) loom__cconn_close(hp->idle);
    while (c->pools) {
        loom__hostpool *hp = c->pools;
        c->pools = hp->next;
        loom__tls_session_slot_clear(&hp->slot);
        free(hp->key);
        free(hp);
    }
}
