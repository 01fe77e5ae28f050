/* The TLS engine (core/tls/engine.c) between two instances of itself, a
 * client and a server, with a certificate made here: handshake fed whole
 * and byte by byte, ALPN, data both ways, record sizes, close_notify, and
 * garbage. */
#include "check.h"
#include "tls/tls.h"

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <string.h>

static EVP_PKEY *key;
static X509 *cert;

static void make_cert(void)
{
    key = EVP_EC_gen("P-256");
    cert = X509_new();
    X509_set_version(cert, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
    X509_gmtime_adj(X509_getm_notBefore(cert), -60);
    X509_gmtime_adj(X509_getm_notAfter(cert), 3600);
    X509_set_pubkey(cert, key);
    X509_NAME *n = X509_get_subject_name(cert);
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)"localhost", -1, -1,
                               0);
    X509_set_issuer_name(cert, n);
    X509_sign(cert, key, EVP_sha256());
}

static int alpn_select(SSL *s, const unsigned char **out, unsigned char *outlen,
                       const unsigned char *in, unsigned inlen, void *arg)
{
    (void)s;
    (void)arg;
    static const unsigned char want[] = "\x08http/1.1";
    return SSL_select_next_proto((unsigned char **)out, outlen, want, sizeof want - 1, in, inlen) ==
                   OPENSSL_NPN_NEGOTIATED
               ? SSL_TLSEXT_ERR_OK
               : SSL_TLSEXT_ERR_NOACK;
}

typedef struct {
    loom__tls t;
    loom__buf out;
} end;

/* Moves what `from` wrote to `to`, `step` bytes at a time (0: all). */
static void pump(end *from, end *to, size_t step)
{
    loom__buf b = from->out;
    memset(&from->out, 0, sizeof from->out);
    size_t off = 0;
    while (off < b.len) {
        size_t n = step && step < b.len - off ? step : b.len - off;
        loom__tls_feed(&to->t, b.data + off, n);
        if (!to->t.done) loom__tls_handshake(&to->t);
        char tmp[64];
        /* the handshake fed whole leaves no application data here */
        if (to->t.done) CHECK(loom__tls_read(&to->t, tmp, sizeof tmp) <= 0, "no data yet");
        CHECK(to->t.in_len == 0, "every fed byte was taken (%zu left)", to->t.in_len);
        off += n;
    }
    loom__buf_free(&b);
}

static void handshake(end *c, end *s, size_t step)
{
    int rounds = 0;
    while ((!c->t.done || !s->t.done) && rounds++ < 10 && !c->t.failed && !s->t.failed) {
        if (!c->t.done) loom__tls_handshake(&c->t);
        pump(c, s, step);
        pump(s, c, step);
    }
    CHECK(c->t.done && s->t.done, "handshake completed (client '%s', server '%s')", c->t.reason,
          s->t.reason);
}

static void pair(SSL_CTX *sctx, SSL_CTX *cctx, end *c, end *s)
{
    memset(c, 0, sizeof *c);
    memset(s, 0, sizeof *s);
    CHECK(loom__tls_open(&s->t, sctx, 1, &s->out) == 0, "server open");
    CHECK(loom__tls_open(&c->t, cctx, 0, &c->out) == 0, "client open");
}

static void finish(end *c, end *s)
{
    loom__tls_close(&c->t);
    loom__tls_close(&s->t);
    loom__buf_free(&c->out);
    loom__buf_free(&s->out);
}

int main(void)
{
    CHECK(loom__tls_global_init() == 0, "init");
    make_cert();
    SSL_CTX *sctx = SSL_CTX_new(TLS_server_method());
    SSL_CTX_use_certificate(sctx, cert);
    SSL_CTX_use_PrivateKey(sctx, key);
    SSL_CTX_set_alpn_select_cb(sctx, alpn_select, NULL);
    SSL_CTX *cctx = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_alpn_protos(cctx, (const unsigned char *)"\x02h2\x08http/1.1", 12);

    for (size_t step = 0; step <= 1; step++) {
        end c, s;
        pair(sctx, cctx, &c, &s);
        handshake(&c, &s, step);
        size_t alen;
        const char *alpn = loom__tls_alpn(&s.t, &alen);
        CHECK(alpn && alen == 8 && memcmp(alpn, "http/1.1", 8) == 0, "ALPN http/1.1 chosen");

        /* 40000 bytes from the server in records of 1400, then read whole */
        static char big[40000], got[40000];
        for (size_t i = 0; i < sizeof big; i++) big[i] = (char)('a' + i % 26);
        CHECK(loom__tls_write(&s.t, big, sizeof big, 1400) == 0, "write");
        /* 29 records of <= 1400 bytes, each with a 5-byte header and a tag */
        CHECK(s.out.len > sizeof big + 29 * 5 && s.out.len < sizeof big + 29 * 40,
              "29 small records (%zu bytes)", s.out.len);
        loom__buf wire = s.out;
        memset(&s.out, 0, sizeof s.out);
        size_t have = 0, off = 0;
        while (off < wire.len) {
            size_t n = step ? 1 : wire.len;
            loom__tls_feed(&c.t, wire.data + off, n);
            off += n;
            ssize_t k;
            while ((k = loom__tls_read(&c.t, got + have, sizeof got - have)) > 0) have += (size_t)k;
            CHECK(k == LOOM__TLS_WANT, "read ends wanting more (%zd)", k);
        }
        CHECK(have == sizeof big && memcmp(got, big, have) == 0, "all bytes back (%zu)", have);
        loom__buf_free(&wire);

        /* client to server, then the client's close_notify */
        CHECK(loom__tls_write(&c.t, "GET / HTTP/1.1\r\n\r\n", 18, 0) == 0, "client write");
        CHECK(loom__tls_shutdown(&c.t) == 0, "shutdown");
        loom__tls_feed(&s.t, c.out.data, c.out.len);
        char req[64];
        ssize_t k = loom__tls_read(&s.t, req, sizeof req);
        CHECK(k == 18 && memcmp(req, "GET / HTTP/1.1\r\n\r\n", 18) == 0, "request (%zd)", k);
        CHECK(loom__tls_read(&s.t, req, sizeof req) == LOOM__TLS_EOF, "close_notify is EOF");
        finish(&c, &s);
    }

    /* A plaintext HTTP request where a ClientHello should be. */
    {
        end c, s;
        pair(sctx, cctx, &c, &s);
        const char *junk = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
        loom__tls_feed(&s.t, junk, strlen(junk));
        CHECK(loom__tls_handshake(&s.t) == LOOM__TLS_FAIL, "garbage fails the handshake");
        CHECK(s.t.reason[0] != '\0', "with a reason");
        printf("garbage: %s\n", s.t.reason);
        finish(&c, &s);
    }

    /* TLS 1.1 only client against a 1.2+ server: refused. */
    {
        SSL_CTX_set_min_proto_version(sctx, TLS1_2_VERSION);
        SSL_CTX *old = SSL_CTX_new(TLS_client_method());
        SSL_CTX_set_security_level(old, 0);
        SSL_CTX_set_min_proto_version(old, TLS1_VERSION);
        SSL_CTX_set_max_proto_version(old, TLS1_1_VERSION);
        end c, s;
        pair(sctx, old, &c, &s);
        loom__tls_handshake(&c.t);
        pump(&c, &s, 0);
        CHECK(s.t.failed, "TLS 1.1 refused: %s", s.t.reason);
        printf("tls1.1: %s\n", s.t.reason);
        finish(&c, &s);
        SSL_CTX_free(old);
    }

    SSL_CTX_free(sctx);
    SSL_CTX_free(cctx);
    X509_free(cert);
    EVP_PKEY_free(key);
    return check_report();
}
