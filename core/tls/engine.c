/* TLS over buffers (see tls.h): a BIO that reads from a view of received
 * bytes and appends what OpenSSL writes to the owner's buffer.
 *
 * Why a BIO of our own rather than BIO_s_mem: a memory BIO copies the
 * received ciphertext into its own chain of buffers and the ciphertext to
 * send into another, and the owner copies it out again; ours reads the
 * bytes where the socket put them and writes straight into the buffer that
 * becomes the send. */
#include "tls/tls.h"

#include <openssl/err.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

static BIO_METHOD *bio_method;
static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static int init_failed;

static int bio_write(BIO *b, const char *p, size_t n, size_t *written)
{
    loom__tls *t = BIO_get_data(b);
    BIO_clear_retry_flags(b);
    if (!t || !t->out || loom__buf_append(t->out, p, n)) return 0;
    *written = n;
    return 1;
}

static int bio_read(BIO *b, char *p, size_t n, size_t *got)
{
    loom__tls *t = BIO_get_data(b);
    BIO_clear_retry_flags(b);
    if (!t || t->in_len == 0) {
        BIO_set_retry_read(b);
        *got = 0;
        return 0;
    }
    size_t k = n < t->in_len ? n : t->in_len;
    memcpy(p, t->in, k);
    t->in += k;
    t->in_len -= k;
    *got = k;
    return 1;
}

static long bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    (void)num;
    (void)ptr;
    loom__tls *t = BIO_get_data(b);
    switch (cmd) {
    case BIO_CTRL_FLUSH:
        return 1; /* the owner sends `out` in order: nothing is held here */
    case BIO_CTRL_PENDING:
        return t ? (long)t->in_len : 0;
    case BIO_CTRL_WPENDING:
        return 0;
    default:
        return 0;
    }
}

static int bio_create(BIO *b)
{
    BIO_set_init(b, 1);
    return 1;
}

static int bio_destroy(BIO *b)
{
    BIO_set_data(b, NULL);
    return 1;
}

static void global_init(void)
{
    if (OPENSSL_init_ssl(OPENSSL_INIT_LOAD_SSL_STRINGS | OPENSSL_INIT_LOAD_CRYPTO_STRINGS, NULL) !=
        1) {
        init_failed = 1;
        return;
    }
    bio_method = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "loom buffers");
    if (!bio_method || !BIO_meth_set_write_ex(bio_method, bio_write) ||
        !BIO_meth_set_read_ex(bio_method, bio_read) || !BIO_meth_set_ctrl(bio_method, bio_ctrl) ||
        !BIO_meth_set_create(bio_method, bio_create) ||
        !BIO_meth_set_destroy(bio_method, bio_destroy))
        init_failed = 1;
}

int loom__tls_global_init(void)
{
    pthread_once(&init_once, global_init);
    return init_failed ? -1 : 0;
}

const char *loom__tls_errstr(char *buf, size_t len, const char *fallback)
{
    unsigned long e = ERR_get_error();
    if (!e) {
        snprintf(buf, len, "%s", fallback);
        return buf;
    }
    const char *reason = ERR_reason_error_string(e);
    if (reason)
        snprintf(buf, len, "%s", reason);
    else
        ERR_error_string_n(e, buf, len);
    ERR_clear_error();
    return buf;
}

int loom__tls_open(loom__tls *t, SSL_CTX *ctx, int server, loom__buf *out)
{
    memset(t, 0, sizeof *t);
    t->out = out;
    if (loom__tls_global_init() < 0) {
        snprintf(t->reason, sizeof t->reason, "OpenSSL did not initialise");
        return -1;
    }
    BIO *b = BIO_new(bio_method);
    t->ssl = b ? SSL_new(ctx) : NULL;
    if (!t->ssl) {
        BIO_free(b);
        loom__tls_errstr(t->reason, sizeof t->reason, "out of memory");
        return -1;
    }
    BIO_set_data(b, t);
    SSL_set_bio(t->ssl, b, b); /* one BIO for both ways: the SSL owns it */
    /* Idle connections give their read and write buffers back (nginx does
     * the same): memory per idle connection is a benchmark figure. */
    SSL_set_mode(t->ssl, SSL_MODE_RELEASE_BUFFERS);
    if (server)
        SSL_set_accept_state(t->ssl);
    else
        SSL_set_connect_state(t->ssl);
    return 0;
}

void loom__tls_close(loom__tls *t)
{
    if (t->ssl) SSL_free(t->ssl);
    t->ssl = NULL;
    t->in = NULL;
    t->in_len = 0;
}

void loom__tls_feed(loom__tls *t, const void *p, size_t n)
{
    t->in = p;
    t->in_len = n;
}

/* After a failed SSL call: sorts WANT / EOF / FAIL and keeps the reason. */
static int classify(loom__tls *t, int rc)
{
    int e = SSL_get_error(t->ssl, rc);
    switch (e) {
    case SSL_ERROR_WANT_READ:
    case SSL_ERROR_WANT_WRITE: /* never from our BIO; treated as "later" */
        return LOOM__TLS_WANT;
    case SSL_ERROR_ZERO_RETURN:
        t->eof = 1;
        return LOOM__TLS_EOF;
    case SSL_ERROR_SYSCALL:
        /* With our BIO there is no system call: an EOF in the middle of a
         * record as OpenSSL sees it, or an internal error. */
        loom__tls_errstr(t->reason, sizeof t->reason, "unexpected end of stream");
        break;
    default: {
        loom__tls_errstr(t->reason, sizeof t->reason, "TLS error");
        long v = SSL_get_verify_result(t->ssl);
        if (v != X509_V_OK && strstr(t->reason, "certificate verify failed")) {
            size_t l = strlen(t->reason);
            snprintf(t->reason + l, sizeof t->reason - l, " (%s)",
                     X509_verify_cert_error_string(v));
        }
        break;
    }
    }
    t->failed = 1;
    return LOOM__TLS_FAIL;
}

int loom__tls_handshake(loom__tls *t)
{
    if (t->failed) return LOOM__TLS_FAIL;
    if (t->done) return LOOM__TLS_DONE;
    ERR_clear_error();
    int rc = SSL_do_handshake(t->ssl);
    if (rc == 1) {
        t->done = 1;
        return LOOM__TLS_DONE;
    }
    int r = classify(t, rc);
    return r == LOOM__TLS_EOF ? LOOM__TLS_FAIL : r;
}

ssize_t loom__tls_read(loom__tls *t, void *dst, size_t cap)
{
    if (t->failed) return LOOM__TLS_FAIL;
    if (t->eof) return LOOM__TLS_EOF;
    size_t got = 0;
    ERR_clear_error();
    int rc = SSL_read_ex(t->ssl, dst, cap, &got);
    if (rc == 1) return (ssize_t)got;
    return classify(t, rc);
}

int loom__tls_write(loom__tls *t, const void *p, size_t n, size_t record)
{
    if (t->failed) return -1;
    if (record == 0 || record > LOOM__TLS_RECORD) record = LOOM__TLS_RECORD;
    const char *s = p;
    ERR_clear_error();
    /* Room for all the records at once (29 bytes of framing and tag each
     * for TLS 1.3, less for 1.2): growing the buffer record by record
     * copied it over and over, 5% of the CPU of serving files over HTTP/2. */
    if (t->out && loom__buf_reserve(t->out, n + (n / record + 1) * 32)) {
        snprintf(t->reason, sizeof t->reason, "out of memory");
        t->failed = 1;
        return -1;
    }
    while (n > 0) {
        size_t k = n < record ? n : record, done = 0;
        if (SSL_write_ex(t->ssl, s, k, &done) != 1 || done != k) {
            classify(t, 0);
            if (!t->reason[0]) snprintf(t->reason, sizeof t->reason, "write failed");
            t->failed = 1;
            return -1;
        }
        s += k;
        n -= k;
    }
    return 0;
}

int loom__tls_shutdown(loom__tls *t)
{
    if (!t->ssl || t->failed || !t->done) return -1;
    if (SSL_get_shutdown(t->ssl) & SSL_SENT_SHUTDOWN) return 0;
    ERR_clear_error();
    /* 0: sent, the peer's close_notify not seen yet (we do not wait for it);
     * 1: both done. */
    return SSL_shutdown(t->ssl) >= 0 ? 0 : -1;
}

const char *loom__tls_alpn(const loom__tls *t, size_t *len)
{
    const unsigned char *p = NULL;
    unsigned l = 0;
    if (t->ssl) SSL_get0_alpn_selected(t->ssl, &p, &l);
    *len = l;
    return l ? (const char *)p : NULL;
}

int loom__tls_resumed(const loom__tls *t)
{
    return t->ssl && SSL_session_reused(t->ssl);
}
