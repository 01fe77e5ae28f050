/* What a request can learn about its TLS connection (loom_req_tls). */
#include <loom/loom.h>

#include "server/conn.h"

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <string.h>

static const char *copy(const char *s, char *buf, size_t len)
{
    if (!s) return NULL;
    snprintf(buf, len, "%s", s);
    return buf;
}

const char *loom__req_tls_info(const loom_req *r, int what, char *buf, size_t len)
{
    const loom__conn_tls *t = r->conn ? loom__conn_tls_of(r->conn) : NULL;
    if (!t || !t->t.ssl || len == 0) return NULL;
    SSL *ssl = t->t.ssl;
    switch (what) {
    case LOOM_TLS_PROTOCOL:
        return copy(SSL_get_version(ssl), buf, len);
    case LOOM_TLS_CIPHER:
        return copy(SSL_get_cipher_name(ssl), buf, len);
    case LOOM_TLS_SNI:
        return copy(SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name), buf, len);
    case LOOM_TLS_ALPN: {
        size_t n;
        const char *p = loom__tls_alpn(&t->t, &n);
        if (!p || n >= len) return NULL;
        memcpy(buf, p, n);
        buf[n] = '\0';
        return buf;
    }
    case LOOM_TLS_RESUMED:
        return copy(loom__tls_resumed(&t->t) ? "1" : "0", buf, len);
    default:
        break;
    }
    /* The client certificate: reported only when it was verified (a
     * listener without verify_client never asks for one). */
    X509 *x = SSL_get0_peer_certificate(ssl);
    int ok = x && SSL_get_verify_result(ssl) == X509_V_OK;
    if (what == LOOM_TLS_CLIENT_VERIFY) return copy(ok ? "SUCCESS" : "NONE", buf, len);
    if (!ok) return NULL;
    if (what == LOOM_TLS_CLIENT_SUBJECT) {
        BIO *b = BIO_new(BIO_s_mem());
        if (!b) return NULL;
        X509_NAME_print_ex(b, X509_get_subject_name(x), 0, XN_FLAG_RFC2253);
        int n = BIO_read(b, buf, (int)len - 1);
        BIO_free(b);
        if (n < 0) return NULL;
        buf[n] = '\0';
        return buf;
    }
    if (what == LOOM_TLS_CLIENT_FINGERPRINT) {
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned n = 0;
        if (len < 65 || X509_digest(x, EVP_sha256(), md, &n) != 1) return NULL;
        for (unsigned i = 0; i < n; i++) snprintf(buf + 2 * i, 3, "%02x", md[i]);
        return buf;
    }
    return NULL;
}
