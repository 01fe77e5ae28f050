/* A client connection's transport: plain TCP, TLS over the engine in
 * core/tls (ciphertext in conn->rbuf fed in place, ciphertext out through
 * conn->tout), and the CONNECT tunnel through an HTTP proxy that comes
 * before TLS for https:// URLs. The request code sees plaintext only. */
#include "client/client_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PLAIN_BUF LOOM__TLS_RECORD
#define TUNNEL_HEAD_MAX 16384

static void flush(loom__cconn *conn);

static void on_write(uv_write_t *wr, int status)
{
    loom__cconn *conn = wr->data;
    conn->writing = 0;
    conn->tsending.len = 0;
    if (status == UV_ECANCELED || conn->closing) return;
    if (status) {
        if (conn->req)
            loom__req_on_written(conn->req, status);
        else
            loom__cconn_close(conn);
        return;
    }
    flush(conn);
}

/* Sends what is waiting in tout, in order, one write at a time (the engine's
 * ordering rule: bytes appended later never overtake earlier ones). */
static void flush(loom__cconn *conn)
{
    if (conn->writing || conn->closing || conn->tout.len == 0) return;
    loom__buf b = conn->tsending;
    conn->tsending = conn->tout;
    conn->tout = b;
    conn->tout.len = 0;
    uv_buf_t buf = uv_buf_init(conn->tsending.data, (unsigned)conn->tsending.len);
    int rc = uv_write(&conn->write_req, (uv_stream_t *)&conn->tcp, &buf, 1, on_write);
    if (rc) {
        conn->tsending.len = 0;
        if (conn->req)
            loom__req_on_written(conn->req, rc);
        else
            loom__cconn_close(conn);
        return;
    }
    conn->writing = 1;
}

void loom__conn_send(loom__cconn *conn)
{
    if (conn->is_tls) {
        if (loom__tls_write(&conn->tls, conn->wbuf.data, conn->wbuf.len, 0)) {
            loom__req_fail(conn->req, LOOM_CLIENT_E_TLS, "TLS write failed: %s", conn->tls.reason);
            return;
        }
        flush(conn);
        return;
    }
    uv_buf_t buf = uv_buf_init(conn->wbuf.data, (unsigned)conn->wbuf.len);
    int rc = uv_write(&conn->write_req, (uv_stream_t *)&conn->tcp, &buf, 1, on_write);
    if (rc) {
        loom__req_on_written(conn->req, rc);
        return;
    }
    conn->writing = 1;
}

void loom__conn_free(loom__cconn *conn)
{
    loom__tls_close(&conn->tls);
    loom__buf_free(&conn->tout);
    loom__buf_free(&conn->tsending);
    loom__buf_free(&conn->thead);
    free(conn->plain);
    conn->plain = NULL;
}

/* ---- the TLS handshake ---- */

static const int tls_codes[] = {
    [LOOM__TLSC_OTHER] = LOOM_CLIENT_E_TLS,
    [LOOM__TLSC_EXPIRED] = LOOM_CLIENT_E_CERT_EXPIRED,
    [LOOM__TLSC_HOSTNAME] = LOOM_CLIENT_E_CERT_HOSTNAME,
    [LOOM__TLSC_UNTRUSTED] = LOOM_CLIENT_E_CERT_UNTRUSTED,
    [LOOM__TLSC_CHAIN] = LOOM_CLIENT_E_CERT_CHAIN,
    [LOOM__TLSC_VERSION] = LOOM_CLIENT_E_TLS_VERSION,
    [LOOM__TLSC_NOT_TLS] = LOOM_CLIENT_E_TLS,
};

static void handshake_failed(loom__cconn *conn)
{
    char why[512];
    int cls = loom__tls_client_diagnose(&conn->tls, why, sizeof why);
    int code = cls > 0 && cls < (int)(sizeof tls_codes / sizeof tls_codes[0]) ? tls_codes[cls]
                                                                              : LOOM_CLIENT_E_TLS;
    loom__req_fail(conn->req, code, "%s", why);
}

/* Drives the handshake with what was fed. Returns 1 once done (the request
 * was told), 0 to wait for more, -1 when the request failed. */
static int handshake(loom__cconn *conn)
{
    int r = loom__tls_handshake(&conn->tls);
    flush(conn);
    if (conn->closing) return -1;
    if (r == LOOM__TLS_WANT) return 0;
    if (r != LOOM__TLS_DONE) {
        handshake_failed(conn);
        return -1;
    }
    conn->handshaking = 0;
    conn->tls_resumed = loom__tls_resumed(&conn->tls);
    conn->tls_version = loom__tls_version(&conn->tls);
    loom__req_on_connected(conn->req, 0); /* sends the request */
    return conn->closing ? -1 : 1;
}

static void tls_begin(loom__cconn *conn)
{
    loom_client_request *req = conn->req;
    SSL_CTX *ctx = loom__tlsconf_ctx(req->tc);
    if (!ctx) {
        loom__req_fail(req, LOOM_CLIENT_E_TLS_CONFIG, "%s", req->tc->err);
        return;
    }
    conn->plain = malloc(PLAIN_BUF);
    if (!conn->plain || loom__tls_open(&conn->tls, ctx, 0, &conn->tout) ||
        loom__tls_client_prepare(&conn->tls, req->url.host, &conn->hp->slot)) {
        loom__req_fail(req, conn->plain ? LOOM_CLIENT_E_TLS : LOOM_CLIENT_E_NOMEM, "%s",
                       conn->tls.reason[0] ? conn->tls.reason : "out of memory");
        return;
    }
    conn->handshaking = 1;
    handshake(conn); /* writes the ClientHello */
}

/* ---- the CONNECT tunnel ---- */

static void tunnel_begin(loom__cconn *conn)
{
    loom_client_request *req = conn->req;
    const loom__proxy *p = req->proxy;
    loom__buf *b = &conn->tout;
    int v6 = strchr(req->url.host, ':') != NULL;
    int e = loom__buf_printf(b, "CONNECT %s%s%s:%u HTTP/1.1\r\nHost: %s%s%s:%u\r\n", v6 ? "[" : "",
                             req->url.host, v6 ? "]" : "", req->url.port, v6 ? "[" : "",
                             req->url.host, v6 ? "]" : "", req->url.port);
    if (p->auth) e |= loom__buf_printf(b, "Proxy-Authorization: %s\r\n", p->auth);
    e |= loom__buf_printf(b, "User-Agent: %s\r\n\r\n", req->client->user_agent);
    if (e) {
        loom__req_fail(req, LOOM_CLIENT_E_NOMEM, "building CONNECT");
        return;
    }
    flush(conn);
}

/* The proxy's answer to CONNECT: 2xx opens the tunnel. */
static void tunnel_read(loom__cconn *conn, ssize_t nread, const char *data)
{
    loom_client_request *req = conn->req;
    const char *purl = req->proxy ? req->proxy->url : "the proxy";
    if (nread < 0) {
        loom__req_fail(req, LOOM_CLIENT_E_PROXY_TUNNEL,
                       "proxy %s closed the connection instead of answering CONNECT (%s)", purl,
                       uv_strerror((int)nread));
        return;
    }
    size_t before = conn->thead.len;
    if (loom__buf_append(&conn->thead, data, (size_t)nread)) {
        loom__req_fail(req, LOOM_CLIENT_E_NOMEM, "CONNECT answer");
        return;
    }
    const char *h = conn->thead.data;
    const char *end = NULL;
    for (size_t i = before >= 3 ? before - 3 : 0; i + 3 < conn->thead.len; i++)
        if (memcmp(h + i, "\r\n\r\n", 4) == 0) {
            end = h + i + 4;
            break;
        }
    if (!end) {
        if (conn->thead.len > TUNNEL_HEAD_MAX)
            loom__req_fail(req, LOOM_CLIENT_E_PROXY_TUNNEL,
                           "proxy %s answered CONNECT with a head longer than %d bytes", purl,
                           TUNNEL_HEAD_MAX);
        return;
    }
    int status = 0;
    char reason[64] = "";
    if (conn->thead.len < 12 || strncmp(h, "HTTP/1.", 7) != 0 ||
        sscanf(h + 9, "%3d %63[^\r\n]", &status, reason) < 1 || status < 100) {
        loom__req_fail(req, LOOM_CLIENT_E_PROXY_TUNNEL,
                       "proxy %s answered CONNECT with something that is not HTTP", purl);
        return;
    }
    /* 407 is the rule; some proxies (tinyproxy) answer 401 to CONNECT when
     * the credentials are wrong: the server was not reached, so it is the
     * proxy's authentication too. */
    if (status == 407 || status == 401) {
        loom__req_fail(req, LOOM_CLIENT_E_PROXY_AUTH, "proxy %s %s: %d %s", purl,
                       req->proxy && req->proxy->auth ? "refused the credentials"
                                                      : "wants credentials",
                       status, reason);
        return;
    }
    if (status < 200 || status > 299) {
        loom__req_fail(req, LOOM_CLIENT_E_PROXY_TUNNEL,
                       "proxy %s refused the tunnel to %s:%u: %d %s", purl, req->url.host,
                       req->url.port, status, reason);
        return;
    }
    /* Nothing may follow a 2xx answer before our ClientHello. */
    if (end != h + conn->thead.len) {
        loom__req_fail(req, LOOM_CLIENT_E_PROXY_TUNNEL,
                       "proxy %s sent bytes after its CONNECT answer", purl);
        return;
    }
    conn->tunneling = 0;
    loom__buf_free(&conn->thead);
    tls_begin(conn);
}

/* ---- reading ---- */

void loom__conn_start(loom__cconn *conn)
{
    if (conn->tunneling)
        tunnel_begin(conn);
    else if (conn->is_tls)
        tls_begin(conn);
    else
        loom__req_on_connected(conn->req, 0);
}

void loom__conn_on_bytes(loom__cconn *conn, ssize_t nread, const char *data)
{
    if (!conn->req && (conn->tunneling || conn->handshaking || nread < 0)) {
        loom__cconn_close(conn);
        return;
    }
    if (conn->tunneling) {
        tunnel_read(conn, nread, data);
        return;
    }
    if (nread < 0) {
        if (conn->handshaking)
            loom__req_fail(conn->req, LOOM_CLIENT_E_TLS_RESET,
                           "the server %s the connection during the TLS handshake",
                           nread == UV_EOF ? "closed" : "reset");
        else
            loom__req_on_read(conn->req, nread, NULL);
        return;
    }
    loom__tls_feed(&conn->tls, data, (size_t)nread);
    if (conn->handshaking && handshake(conn) <= 0) return;
    /* Every fed byte must be taken before returning (the engine reads
     * conn->rbuf in place), so read until the engine wants more. */
    for (;;) {
        ssize_t n = loom__tls_read(&conn->tls, conn->plain, PLAIN_BUF);
        flush(conn); /* e.g. a KeyUpdate answer */
        if (n == LOOM__TLS_WANT || conn->closing) return;
        loom_client_request *req = conn->req;
        if (!req) {
            /* an idle connection: the server closed it, or sent bytes unasked */
            loom__cconn_close(conn);
            return;
        }
        if (n > 0) {
            loom__req_on_read(req, n, conn->plain);
            if (conn->closing) return;
            continue;
        }
        if (n == LOOM__TLS_EOF) {
            loom__req_on_read(req, UV_EOF, NULL);
        } else if (!req->got_bytes) {
            loom__req_fail(req, LOOM_CLIENT_E_TLS, "TLS error: %s", conn->tls.reason);
        } else {
            loom__req_on_read(req, UV_EPROTO, NULL);
        }
        return;
    }
}
