/* Certificates, keys and OCSP responses for server contexts (see certs.h). */
#include "tls/certs.h"
#include "tls/tls.h"
#include "util/log.h"

#include <errno.h>
#include <openssl/err.h>
#include <openssl/ocsp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define EXPIRY_WARN_DAYS 14

/* "Mar  1 12:00:00 2027 GMT" */
static const char *asn1_date(const ASN1_TIME *t, char *buf, size_t len)
{
    BIO *b = BIO_new(BIO_s_mem());
    buf[0] = '\0';
    if (b && ASN1_TIME_print(b, t)) {
        int n = BIO_read(b, buf, (int)len - 1);
        buf[n > 0 ? n : 0] = '\0';
    }
    BIO_free(b);
    return buf;
}

/* A file that does not open gets the system's reason, not OpenSSL's. */
static int readable(const char *what, const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "tls: %s %s: %s", what, path, strerror(errno));
        return 0;
    }
    fclose(f);
    return 1;
}

int loom__tls_load_pair(SSL_CTX *ctx, const char *cert, const char *key, char *err, size_t errlen)
{
    char why[160], d[64];
    if (!readable("cert", cert, err, errlen) || !readable("key", key, err, errlen)) return -1;
    ERR_clear_error();
    if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
        snprintf(err, errlen, "tls: cert %s: %s", cert,
                 loom__tls_errstr(why, sizeof why, "not a PEM certificate chain"));
        return -1;
    }
    X509 *x = SSL_CTX_get0_certificate(ctx);
    FILE *f = fopen(key, "rb");
    EVP_PKEY *pk = f ? PEM_read_PrivateKey(f, NULL, NULL, NULL) : NULL;
    if (f) fclose(f);
    if (!pk) {
        snprintf(err, errlen, "tls: key %s: %s", key,
                 loom__tls_errstr(why, sizeof why, "not a PEM private key"));
        return -1;
    }
    if (X509_check_private_key(x, pk) != 1) {
        ERR_clear_error();
        EVP_PKEY_free(pk);
        snprintf(err, errlen, "tls: key %s does not match the certificate in %s", key, cert);
        return -1;
    }
    int used = SSL_CTX_use_PrivateKey(ctx, pk);
    EVP_PKEY_free(pk);
    if (used != 1) {
        snprintf(err, errlen, "tls: key %s: %s", key,
                 loom__tls_errstr(why, sizeof why, "cannot be used"));
        return -1;
    }
    if (X509_cmp_current_time(X509_get0_notAfter(x)) <= 0) {
        snprintf(err, errlen, "tls: cert %s expired on %s", cert,
                 asn1_date(X509_get0_notAfter(x), d, sizeof d));
        return -1;
    }
    if (X509_cmp_current_time(X509_get0_notBefore(x)) >= 0) {
        snprintf(err, errlen, "tls: cert %s is not valid before %s", cert,
                 asn1_date(X509_get0_notBefore(x), d, sizeof d));
        return -1;
    }
    time_t soon = time(NULL) + (time_t)EXPIRY_WARN_DAYS * 86400;
    if (X509_cmp_time(X509_get0_notAfter(x), &soon) <= 0)
        loom__warn("tls: cert %s expires on %s (within %d days): renew it", cert,
                   asn1_date(X509_get0_notAfter(x), d, sizeof d), EXPIRY_WARN_DAYS);
    struct stat st;
    if (stat(key, &st) == 0 && (st.st_mode & (S_IRGRP | S_IROTH)))
        loom__warn("tls: key %s is readable by other users (mode %04o): chmod 600 it", key,
                   (unsigned)(st.st_mode & 07777));
    return 0;
}

typedef struct {
    unsigned char *der;
    long len;
} ocsp_blob;

static int staple(SSL *s, void *arg)
{
    ocsp_blob *b = arg;
    if (!b || SSL_get_tlsext_status_type(s) != TLSEXT_STATUSTYPE_ocsp) return SSL_TLSEXT_ERR_NOACK;
    unsigned char *copy = OPENSSL_memdup(b->der, (size_t)b->len);
    if (!copy) return SSL_TLSEXT_ERR_NOACK;
    SSL_set_tlsext_status_ocsp_resp(s, copy, b->len); /* the SSL frees it */
    return SSL_TLSEXT_ERR_OK;
}

/* Whether `resp` is a good, current answer about ctx's leaf. */
static int ocsp_usable(SSL_CTX *ctx, OCSP_RESPONSE *resp, const char *path)
{
    X509 *leaf = SSL_CTX_get0_certificate(ctx);
    STACK_OF(OPENSSL_STRING) *urls = X509_get1_ocsp(leaf);
    int has_responder = urls && sk_OPENSSL_STRING_num(urls) > 0;
    X509_email_free(urls);
    if (!has_responder) {
        loom__warn("tls: ocsp_file %s ignored: the certificate names no OCSP responder", path);
        return 0;
    }
    if (OCSP_response_status(resp) != OCSP_RESPONSE_STATUS_SUCCESSFUL) {
        loom__warn("tls: ocsp_file %s ignored: the response is not successful", path);
        return 0;
    }
    /* The response must speak of this certificate: its serial number and
     * its issuer's name (the issuer itself may be a root the chain file
     * leaves out, so its key hash is the client's to check). */
    OCSP_BASICRESP *basic = OCSP_response_get1_basic(resp);
    OCSP_SINGLERESP *single = NULL;
    for (int i = 0; basic && i < OCSP_resp_count(basic) && !single; i++) {
        OCSP_SINGLERESP *sr = OCSP_resp_get0(basic, i);
        ASN1_OCTET_STRING *name_hash = NULL;
        ASN1_OBJECT *md = NULL;
        ASN1_INTEGER *serial = NULL;
        unsigned char h[EVP_MAX_MD_SIZE];
        unsigned hl = 0;
        const EVP_MD *dg = NULL;
        if (OCSP_id_get0_info(&name_hash, &md, NULL, &serial,
                              (OCSP_CERTID *)OCSP_SINGLERESP_get0_id(sr)) == 1 &&
            (dg = EVP_get_digestbyobj(md)) &&
            X509_NAME_digest(X509_get_issuer_name(leaf), dg, h, &hl) == 1 &&
            ASN1_INTEGER_cmp(serial, X509_get0_serialNumber(leaf)) == 0 &&
            (unsigned)ASN1_STRING_length(name_hash) == hl &&
            memcmp(ASN1_STRING_get0_data(name_hash), h, hl) == 0)
            single = sr;
    }
    int status = -1, reason;
    ASN1_GENERALIZEDTIME *rev, *thisupd = NULL, *nextupd = NULL;
    if (single) status = OCSP_single_get0_status(single, &reason, &rev, &thisupd, &nextupd);
    const char *why = NULL;
    if (!single)
        why = "it is not about this certificate";
    else if (status != V_OCSP_CERTSTATUS_GOOD)
        why = "it does not say the certificate is good";
    else if (OCSP_check_validity(thisupd, nextupd, 300, -1) != 1)
        why = "it is out of date";
    OCSP_BASICRESP_free(basic);
    ERR_clear_error();
    if (why) loom__warn("tls: ocsp_file %s ignored: %s", path, why);
    return why == NULL;
}

int loom__tls_load_ocsp(SSL_CTX *ctx, const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "tls: ocsp_file %s: %s", path, strerror(errno));
        return -1;
    }
    unsigned char buf[65536];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    const unsigned char *p = buf;
    OCSP_RESPONSE *resp = d2i_OCSP_RESPONSE(NULL, &p, (long)n);
    if (!resp) {
        ERR_clear_error();
        snprintf(err, errlen, "tls: ocsp_file %s: not a DER OCSP response", path);
        return -1;
    }
    int ok = ocsp_usable(ctx, resp, path);
    OCSP_RESPONSE_free(resp);
    if (!ok) return 0;
    ocsp_blob *b = malloc(sizeof *b);
    if (!b || !(b->der = OPENSSL_memdup(buf, n))) {
        free(b);
        snprintf(err, errlen, "tls: ocsp_file %s: out of memory", path);
        return -1;
    }
    b->len = (long)n;
    SSL_CTX_set_tlsext_status_cb(ctx, staple);
    SSL_CTX_set_tlsext_status_arg(ctx, b);
    return 1;
}

void loom__tls_free_ocsp(SSL_CTX *ctx)
{
    void *arg = NULL;
    SSL_CTX_get_tlsext_status_arg(ctx, &arg);
    ocsp_blob *b = arg;
    if (!b) return;
    OPENSSL_free(b->der);
    free(b);
    SSL_CTX_set_tlsext_status_arg(ctx, NULL);
}
