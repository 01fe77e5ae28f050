/* Client contexts and connections (see client.h): verification on by
 * default, and a record of the first certificate problem the verifier met,
 * so a failed handshake can say "expired on ..." or "for a.example, not
 * b.example" instead of "certificate verify failed". */
#include "tls/client.h"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

/* What the verifier saw, per connection (SSL ex_data, freed with the SSL). */
typedef struct {
    loom__tls_session_slot *slot;
    char host[256];
    int verr;  /* the first X509_V_ERR_* met, 0 = none */
    int depth; /* where in the chain */
    int aia;   /* that certificate names where its issuer can be fetched */
    char subject[160], issuer[160];
    char not_before[40], not_after[40];
    char names[320]; /* the leaf's DNS and IP names */
} conn_info;

static int info_idx = -1;
static pthread_once_t idx_once = PTHREAD_ONCE_INIT;

static void info_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
    (void)parent, (void)ad, (void)idx, (void)argl, (void)argp;
    free(ptr);
}

static void make_idx(void)
{
    info_idx = SSL_get_ex_new_index(0, NULL, NULL, NULL, info_free);
}

static conn_info *info_of(const SSL *ssl)
{
    return info_idx < 0 ? NULL : SSL_get_ex_data(ssl, info_idx);
}

static void name_line(X509_NAME *n, char *buf, size_t len)
{
    buf[0] = 0;
    if (!n) return;
    BIO *b = BIO_new(BIO_s_mem());
    if (!b) return;
    X509_NAME_print_ex(b, n, 0, XN_FLAG_ONELINE & ~ASN1_STRFLGS_ESC_MSB);
    int k = BIO_read(b, buf, (int)len - 1);
    buf[k > 0 ? k : 0] = 0;
    BIO_free(b);
}

static void time_line(const ASN1_TIME *t, char *buf, size_t len)
{
    buf[0] = 0;
    BIO *b = BIO_new(BIO_s_mem());
    if (!b || !t) {
        BIO_free(b);
        return;
    }
    ASN1_TIME_print(b, t);
    int k = BIO_read(b, buf, (int)len - 1);
    buf[k > 0 ? k : 0] = 0;
    BIO_free(b);
}

static void add_name(char *buf, size_t len, const char *name, size_t nlen)
{
    size_t l = strlen(buf);
    if (l + nlen + 3 >= len) return;
    if (l) {
        memcpy(buf + l, ", ", 2);
        l += 2;
    }
    memcpy(buf + l, name, nlen);
    buf[l + nlen] = 0;
}

/* The names a certificate is for: its DNS and IP subjectAltNames, else its CN. */
static void cert_names(X509 *x, char *buf, size_t len)
{
    buf[0] = 0;
    GENERAL_NAMES *sans = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
    for (int i = 0; sans && i < sk_GENERAL_NAME_num(sans); i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(sans, i);
        if (g->type == GEN_DNS) {
            add_name(buf, len, (const char *)ASN1_STRING_get0_data(g->d.dNSName),
                     (size_t)ASN1_STRING_length(g->d.dNSName));
        } else if (g->type == GEN_IPADD) {
            char ip[INET6_ADDRSTRLEN] = "";
            int l = ASN1_STRING_length(g->d.iPAddress);
            const unsigned char *p = ASN1_STRING_get0_data(g->d.iPAddress);
            if (l == 4 || l == 16) inet_ntop(l == 4 ? AF_INET : AF_INET6, p, ip, sizeof ip);
            add_name(buf, len, ip, strlen(ip));
        }
    }
    GENERAL_NAMES_free(sans);
    if (buf[0]) return;
    X509_NAME *subj = X509_get_subject_name(x);
    int i = X509_NAME_get_index_by_NID(subj, NID_commonName, -1);
    if (i < 0) return;
    ASN1_STRING *cn = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subj, i));
    add_name(buf, len, (const char *)ASN1_STRING_get0_data(cn), (size_t)ASN1_STRING_length(cn));
}

/* Whether a certificate says where its issuer can be fetched (AIA
 * caIssuers): public CAs put it in every leaf they issue. */
static int has_ca_issuers(X509 *x)
{
    AUTHORITY_INFO_ACCESS *aia = X509_get_ext_d2i(x, NID_info_access, NULL, NULL);
    int found = 0;
    for (int i = 0; aia && i < sk_ACCESS_DESCRIPTION_num(aia); i++)
        if (OBJ_obj2nid(sk_ACCESS_DESCRIPTION_value(aia, i)->method) == NID_ad_ca_issuers)
            found = 1;
    AUTHORITY_INFO_ACCESS_free(aia);
    return found;
}

static int verify_cb(int ok, X509_STORE_CTX *x)
{
    if (ok) return 1;
    SSL *ssl = X509_STORE_CTX_get_ex_data(x, SSL_get_ex_data_X509_STORE_CTX_idx());
    conn_info *ci = ssl ? info_of(ssl) : NULL;
    if (!ci || ci->verr) return 0;
    ci->verr = X509_STORE_CTX_get_error(x);
    ci->depth = X509_STORE_CTX_get_error_depth(x);
    X509 *cur = X509_STORE_CTX_get_current_cert(x);
    X509 *leaf = X509_STORE_CTX_get0_cert(x);
    if (!cur) cur = leaf;
    if (cur) {
        name_line(X509_get_subject_name(cur), ci->subject, sizeof ci->subject);
        name_line(X509_get_issuer_name(cur), ci->issuer, sizeof ci->issuer);
        time_line(X509_get0_notBefore(cur), ci->not_before, sizeof ci->not_before);
        time_line(X509_get0_notAfter(cur), ci->not_after, sizeof ci->not_after);
        ci->aia = has_ca_issuers(cur);
    }
    if (leaf) cert_names(leaf, ci->names, sizeof ci->names);
    return 0;
}

/* The slot keeps a copy: OpenSSL marks a connection's own session object
 * not resumable when the SSL is freed without a close_notify sent (as when
 * the server closes first, or an idle connection is dropped), and that
 * would spoil the session for the next connection. */
static int new_session_cb(SSL *ssl, SSL_SESSION *sess)
{
    conn_info *ci = info_of(ssl);
    if (!ci || !ci->slot || !SSL_SESSION_is_resumable(sess)) return 0;
    SSL_SESSION *copy = SSL_SESSION_dup(sess);
    if (!copy) return 0;
    if (ci->slot->session) SSL_SESSION_free(ci->slot->session);
    ci->slot->session = copy;
    return 0; /* the original stays OpenSSL's */
}

static SSL_CTX *ctx_fail(SSL_CTX *ctx, char *err, size_t errlen, const char *what, const char *file)
{
    char why[160];
    loom__tls_errstr(why, sizeof why, "cannot be read");
    snprintf(err, errlen, "%s %s: %s", what, file, why);
    SSL_CTX_free(ctx);
    return NULL;
}

SSL_CTX *loom__tls_client_ctx_new(const loom__tls_client_conf *conf, char *err, size_t errlen)
{
    static const loom__tls_client_conf none;
    if (!conf) conf = &none;
    if (loom__tls_global_init() < 0) {
        snprintf(err, errlen, "OpenSSL did not initialise");
        return NULL;
    }
    pthread_once(&idx_once, make_idx);
    if (info_idx < 0) {
        snprintf(err, errlen, "OpenSSL: no ex_data index");
        return NULL;
    }
    ERR_clear_error();
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx) {
        loom__tls_errstr(err, errlen, "out of memory");
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    static const unsigned char alpn[] = "\x08http/1.1";
    if (SSL_CTX_set_alpn_protos(ctx, alpn, sizeof alpn - 1) != 0) /* 0 is success here */
        return ctx_fail(ctx, err, errlen, "ALPN", "http/1.1");
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(ctx, new_session_cb);
    if (conf->insecure) {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    } else {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, verify_cb);
        if (conf->ca_path) {
            struct stat st;
            if (stat(conf->ca_path, &st) != 0 || !S_ISDIR(st.st_mode)) {
                snprintf(err, errlen, "CA directory %s: not a directory", conf->ca_path);
                SSL_CTX_free(ctx);
                return NULL;
            }
        }
        if (conf->ca_file || conf->ca_path) {
            if (SSL_CTX_load_verify_locations(ctx, conf->ca_file, conf->ca_path) != 1)
                return ctx_fail(ctx, err, errlen, conf->ca_file ? "CA file" : "CA directory",
                                conf->ca_file ? conf->ca_file : conf->ca_path);
        } else if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
            return ctx_fail(ctx, err, errlen, "the system trust store", "(default paths)");
        }
    }
    if (conf->cert_file) {
        if (SSL_CTX_use_certificate_chain_file(ctx, conf->cert_file) != 1)
            return ctx_fail(ctx, err, errlen, "client certificate", conf->cert_file);
        const char *key = conf->key_file ? conf->key_file : conf->cert_file;
        if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
            if (ERR_GET_REASON(ERR_peek_last_error()) == X509_R_KEY_VALUES_MISMATCH) {
                ERR_clear_error();
                snprintf(err, errlen, "client key %s does not match the certificate %s", key,
                         conf->cert_file);
                SSL_CTX_free(ctx);
                return NULL;
            }
            return ctx_fail(ctx, err, errlen, "client key", key);
        }
        if (SSL_CTX_check_private_key(ctx) != 1)
            return ctx_fail(ctx, err, errlen, "client key does not match the certificate", key);
    } else if (conf->key_file) {
        snprintf(err, errlen, "client key %s given without a client certificate", conf->key_file);
        SSL_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

static int is_ip(const char *host)
{
    unsigned char b[16];
    return inet_pton(AF_INET, host, b) == 1 || inet_pton(AF_INET6, host, b) == 1;
}

int loom__tls_client_prepare(loom__tls *t, const char *host, loom__tls_session_slot *slot)
{
    conn_info *ci = calloc(1, sizeof *ci);
    if (!ci || !SSL_set_ex_data(t->ssl, info_idx, ci)) {
        free(ci);
        snprintf(t->reason, sizeof t->reason, "out of memory");
        return -1;
    }
    ci->slot = slot;
    snprintf(ci->host, sizeof ci->host, "%s", host);
    ERR_clear_error();
    int ok;
    if (is_ip(host)) {
        ok = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(t->ssl), host);
    } else {
        SSL_set_hostflags(t->ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        ok = SSL_set_tlsext_host_name(t->ssl, host) == 1 && SSL_set1_host(t->ssl, host) == 1;
    }
    if (!ok) {
        loom__tls_errstr(t->reason, sizeof t->reason, "bad host name for TLS");
        return -1;
    }
    if (slot && slot->session && SSL_SESSION_is_resumable(slot->session)) {
        /* a copy again: the connection's session object is spoiled when the
         * connection ends without close_notify (see new_session_cb), and the
         * slot's must stay good for the connections after this one */
        SSL_SESSION *copy = SSL_SESSION_dup(slot->session);
        if (copy) {
            SSL_set_session(t->ssl, copy);
            SSL_SESSION_free(copy);
        }
    }
    return 0;
}

void loom__tls_client_detach(loom__tls *t)
{
    conn_info *ci = t->ssl ? info_of(t->ssl) : NULL;
    if (ci) ci->slot = NULL;
}

void loom__tls_session_slot_clear(loom__tls_session_slot *slot)
{
    if (slot->session) SSL_SESSION_free(slot->session);
    slot->session = NULL;
}

/* Whether the engine's reason starts with OpenSSL's text for SSL reason `r`. */
static int reason_is(const loom__tls *t, int r)
{
    const char *s = ERR_reason_error_string(ERR_PACK(ERR_LIB_SSL, 0, r));
    return s && strncasecmp(t->reason, s, strlen(s)) == 0;
}

static const char *where(const conn_info *ci)
{
    return ci->depth > 0 ? " (an intermediate CA certificate)" : "";
}

int loom__tls_client_diagnose(const loom__tls *t, char *msg, size_t len)
{
    conn_info *ci = t->ssl ? info_of(t->ssl) : NULL;
    if (ci && ci->verr) {
        switch (ci->verr) {
        case X509_V_ERR_CERT_HAS_EXPIRED:
            snprintf(msg, len, "certificate %s%s expired on %s", ci->subject, where(ci),
                     ci->not_after);
            return LOOM__TLSC_EXPIRED;
        case X509_V_ERR_CERT_NOT_YET_VALID:
            snprintf(msg, len, "certificate %s%s is not valid before %s", ci->subject, where(ci),
                     ci->not_before);
            return LOOM__TLSC_EXPIRED;
        case X509_V_ERR_HOSTNAME_MISMATCH:
        case X509_V_ERR_IP_ADDRESS_MISMATCH:
            snprintf(msg, len, "certificate is for %s, not for %s",
                     ci->names[0] ? ci->names : "no name", ci->host);
            return LOOM__TLSC_HOSTNAME;
        case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
            snprintf(msg, len, "self-signed certificate %s (not trusted here: --cacert?)",
                     ci->subject);
            return LOOM__TLSC_UNTRUSTED;
        case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
            snprintf(msg, len, "the chain ends in a self-signed CA not trusted here: %s",
                     ci->subject);
            return LOOM__TLSC_UNTRUSTED;
        case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
        case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
        case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
            if (ci->aia) {
                snprintf(msg, len,
                         "incomplete chain: the server did not send the intermediate "
                         "certificate %s that issued %s",
                         ci->issuer, ci->subject);
                return LOOM__TLSC_CHAIN;
            }
            snprintf(msg, len, "unknown issuer: %s is issued by %s, a CA not trusted here",
                     ci->subject, ci->issuer);
            return LOOM__TLSC_UNTRUSTED;
        default:
            snprintf(msg, len, "certificate %s: %s", ci->subject,
                     X509_verify_cert_error_string(ci->verr));
            return LOOM__TLSC_OTHER;
        }
    }
    if (reason_is(t, SSL_R_UNSUPPORTED_PROTOCOL) ||
        reason_is(t, SSL_R_TLSV1_ALERT_PROTOCOL_VERSION) ||
        reason_is(t, SSL_R_NO_PROTOCOLS_AVAILABLE) || reason_is(t, SSL_R_VERSION_TOO_LOW) ||
        reason_is(t, SSL_R_UNSUPPORTED_SSL_VERSION)) {
        snprintf(msg, len,
                 "no protocol version in common: the server offers none of TLS 1.2 "
                 "and 1.3 (%s)",
                 t->reason);
        return LOOM__TLSC_VERSION;
    }
    if (reason_is(t, SSL_R_WRONG_VERSION_NUMBER) || reason_is(t, SSL_R_PACKET_LENGTH_TOO_LONG)) {
        snprintf(msg, len, "the server does not speak TLS on this port (%s)", t->reason);
        return LOOM__TLSC_NOT_TLS;
    }
    snprintf(msg, len, "TLS handshake failed: %s", t->reason[0] ? t->reason : "unknown reason");
    return LOOM__TLSC_OTHER;
}

const char *loom__tls_version(const loom__tls *t)
{
    return t->ssl && t->done ? SSL_get_version(t->ssl) : NULL;
}
