/* The server's TLS contexts (see server.h).
 *
 * One context per TLS listener starts its connections (default certificate,
 * that listener's client-certificate rules and session ID context) and one
 * per SNI certificate is switched to in the servername callback. The ALPN
 * and SNI callbacks find the listener through the SSL's ex_data, because
 * after a switch OpenSSL asks the new context's callbacks. */
#include "tls/server.h"
#include "server/proto.h"
#include "tls/certs.h"
#include "tls/tickets.h"
#include "tls/tls.h"
#include "util/log.h"

#include <openssl/err.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Mozilla's "intermediate" TLS 1.2 list, less the DHE suites: forward
 * secrecy from ECDHE only, AEAD ciphers only. */
#define DEFAULT_CIPHERS                                                                            \
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"                                   \
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"                                   \
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"
/* Mozilla's TLS 1.3 order: AES-128-GCM first (the least CPU with AES-NI). */
#define DEFAULT_SUITES "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"
#define DEFAULT_CURVES "X25519:P-256:P-384"
#define DEFAULT_ROTATION_S 3600

typedef struct {
    char **names; /* SNI names it answers ("*.b.example" for one label); none: the default */
    size_t nnames;
    SSL_CTX *ctx;
} tls_cert;

typedef struct {
    loom__tls_server *srv;
    int on;         /* a TLS listener */
    int index;      /* in cfg->listen */
    SSL_CTX *ctx;   /* starts its connections: the default certificate */
    X509_STORE *ca; /* client certificates are checked against it (mTLS), or NULL */
    STACK_OF(X509_NAME) * ca_names;
    int verify_mode;
    unsigned char alpn[16]; /* what it offers, in wire format */
    size_t alpn_len;
    unsigned char sid[32];
    unsigned sid_len;
} tls_listener;

struct loom__tls_server {
    int refs;
    tls_cert *certs; /* chosen by SNI; the default is each listener's own context */
    size_t ncerts;
    tls_listener *ls;
    size_t nls;
    char **files;
    size_t nfiles;
    int watch;
};

typedef struct {
    const char *cert, *key, *ocsp;
    int min_proto, max_proto;
    const char *ciphers, *suites, *curves;
    int prefer_server, tickets, watch;
    uint64_t rotation_s;
} settings;

static int ex_listener = -1;

static void add_file(loom__tls_server *s, const char *path)
{
    if (!path) return;
    for (size_t i = 0; i < s->nfiles; i++)
        if (strcmp(s->files[i], path) == 0) return;
    char **f = realloc(s->files, (s->nfiles + 1) * sizeof *f);
    if (!f) return;
    s->files = f;
    if ((f[s->nfiles] = strdup(path))) s->nfiles++;
}

/* ---- reading the "tls" section ---- */

static int str_key(json_t *o, const char *k, const char **out, char *err, size_t errlen)
{
    json_t *v = json_object_get(o, k);
    if (!v) return 0;
    if (!json_is_string(v) || !*json_string_value(v)) {
        snprintf(err, errlen, "key 'tls.%s': must be a non-empty string", k);
        return -1;
    }
    *out = json_string_value(v);
    return 0;
}

static int bool_key(json_t *o, const char *k, int *out, char *err, size_t errlen)
{
    json_t *v = json_object_get(o, k);
    if (!v) return 0;
    if (!json_is_boolean(v)) {
        snprintf(err, errlen, "key 'tls.%s': must be true or false", k);
        return -1;
    }
    *out = json_is_true(v);
    return 0;
}

static int read_settings(json_t *t, settings *st, char *err, size_t errlen)
{
    static const char *const known[] = {"cert",
                                        "key",
                                        "certs",
                                        "ocsp_file",
                                        "protocols",
                                        "ciphers",
                                        "ciphersuites",
                                        "curves",
                                        "prefer_server_ciphers",
                                        "session_tickets",
                                        "ticket_key_rotation",
                                        "watch",
                                        NULL};
    memset(st, 0, sizeof *st);
    st->min_proto = TLS1_2_VERSION;
    st->max_proto = TLS1_3_VERSION;
    st->ciphers = DEFAULT_CIPHERS;
    st->suites = DEFAULT_SUITES;
    st->curves = DEFAULT_CURVES;
    st->prefer_server = st->tickets = st->watch = 1;
    st->rotation_s = DEFAULT_ROTATION_S;
    const char *k;
    json_t *v;
    json_object_foreach(t, k, v)
    {
        int ok = 0;
        for (int i = 0; known[i]; i++) ok |= strcmp(k, known[i]) == 0;
        if (!ok) {
            snprintf(err, errlen, "key 'tls': unknown key '%s'", k);
            return -1;
        }
    }
    if (str_key(t, "cert", &st->cert, err, errlen) || str_key(t, "key", &st->key, err, errlen) ||
        str_key(t, "ocsp_file", &st->ocsp, err, errlen) ||
        str_key(t, "ciphers", &st->ciphers, err, errlen) ||
        str_key(t, "ciphersuites", &st->suites, err, errlen) ||
        str_key(t, "curves", &st->curves, err, errlen) ||
        bool_key(t, "prefer_server_ciphers", &st->prefer_server, err, errlen) ||
        bool_key(t, "session_tickets", &st->tickets, err, errlen) ||
        bool_key(t, "watch", &st->watch, err, errlen))
        return -1;
    if ((st->cert == NULL) != (st->key == NULL)) {
        snprintf(err, errlen, "key 'tls': 'cert' and 'key' go together");
        return -1;
    }
    json_t *rot = json_object_get(t, "ticket_key_rotation");
    if (rot) {
        if (!json_is_integer(rot) || json_integer_value(rot) < 60 ||
            json_integer_value(rot) > 7 * 86400) {
            snprintf(err, errlen,
                     "key 'tls.ticket_key_rotation': must be whole seconds, 60 to 604800");
            return -1;
        }
        st->rotation_s = (uint64_t)json_integer_value(rot);
    }
    json_t *protos = json_object_get(t, "protocols");
    if (protos) {
        size_t i;
        json_t *e;
        int lo = 0, hi = 0;
        if (!json_is_array(protos) || json_array_size(protos) == 0) goto bad_protos;
        json_array_foreach(protos, i, e)
        {
            const char *p = json_is_string(e) ? json_string_value(e) : "";
            int ver = strcmp(p, "TLSv1.2") == 0   ? TLS1_2_VERSION
                      : strcmp(p, "TLSv1.3") == 0 ? TLS1_3_VERSION
                                                  : 0;
            if (!ver) goto bad_protos;
            if (!lo || ver < lo) lo = ver;
            if (ver > hi) hi = ver;
        }
        st->min_proto = lo;
        st->max_proto = hi;
    }
    return 0;
bad_protos:
    snprintf(err, errlen,
             "key 'tls.protocols': must list \"TLSv1.2\" and/or \"TLSv1.3\" (older versions are "
             "not offered)");
    return -1;
}

uint64_t loom__tls_server_ticket_rotation(const loom__config *cfg)
{
    settings st;
    char err[256];
    if (!cfg->tls || read_settings(cfg->tls, &st, err, sizeof err) || !st.tickets) return 0;
    return st.rotation_s * 1000u;
}

/* ---- callbacks, shared by every context of a server ---- */

static tls_listener *listener_of(SSL *s)
{
    return SSL_get_ex_data(s, ex_listener);
}

/* Exact names first, then one-label wildcards; NULL keeps the default. */
static tls_cert *find_cert(loom__tls_server *srv, const char *name)
{
    for (size_t i = 0; i < srv->ncerts; i++)
        for (size_t j = 0; j < srv->certs[i].nnames; j++)
            if (strcasecmp(srv->certs[i].names[j], name) == 0) return &srv->certs[i];
    const char *dot = strchr(name, '.');
    if (!dot || dot == name) return NULL;
    for (size_t i = 0; i < srv->ncerts; i++)
        for (size_t j = 0; j < srv->certs[i].nnames; j++) {
            const char *n = srv->certs[i].names[j];
            if (n[0] == '*' && n[1] == '.' && strcasecmp(n + 1, dot) == 0) return &srv->certs[i];
        }
    return NULL;
}

/* The listener's client-certificate rules, again after a context switch
 * (SSL_set_SSL_CTX replaces the SSL's certificate settings). */
static void apply_verify(tls_listener *l, SSL *s)
{
    if (!l->ca) return;
    SSL_set_verify(s, l->verify_mode, NULL);
    SSL_set1_verify_cert_store(s, l->ca);
    STACK_OF(X509_NAME) *names = SSL_dup_CA_list(l->ca_names);
    if (names) SSL_set_client_CA_list(s, names);
}

static int on_servername(SSL *s, int *alert, void *arg)
{
    (void)alert;
    (void)arg;
    tls_listener *l = listener_of(s);
    const char *name = SSL_get_servername(s, TLSEXT_NAMETYPE_host_name);
    if (!l || !name) return SSL_TLSEXT_ERR_OK;
    tls_cert *c = find_cert(l->srv, name);
    if (c && c->ctx != SSL_get_SSL_CTX(s)) {
        SSL_set_SSL_CTX(s, c->ctx);
        apply_verify(l, s);
    }
    return SSL_TLSEXT_ERR_OK;
}

static int on_alpn(SSL *s, const unsigned char **out, unsigned char *outlen,
                   const unsigned char *in, unsigned inlen, void *arg)
{
    (void)arg;
    tls_listener *l = listener_of(s);
    unsigned char *sel;
    if (!l || SSL_select_next_proto(&sel, outlen, l->alpn, (unsigned)l->alpn_len, in, inlen) !=
                  OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_NOACK; /* no ALPN: HTTP/1.1, as without the extension */
    *out = sel;
    return SSL_TLSEXT_ERR_OK;
}

/* Settings every context of the server shares. */
static SSL_CTX *new_ctx(const settings *st, char *err, size_t errlen)
{
    char why[160];
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx) {
        snprintf(err, errlen, "tls: %s", loom__tls_errstr(why, sizeof why, "out of memory"));
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, st->min_proto);
    SSL_CTX_set_max_proto_version(ctx, st->max_proto);
    uint64_t opts = SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION;
    if (st->prefer_server) opts |= SSL_OP_CIPHER_SERVER_PREFERENCE;
    if (!st->tickets) opts |= SSL_OP_NO_TICKET;
    SSL_CTX_set_options(ctx, opts);
    /* Stateless tickets only: nothing kept per session in a worker, and any
     * worker resumes any client (tickets.h). 0-RTT stays off (replays). */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_max_early_data(ctx, 0);
    SSL_CTX_set_read_ahead(ctx, 1);
    if (st->tickets) {
        SSL_CTX_set_num_tickets(ctx, 1);
        SSL_CTX_set_timeout(ctx, (long)st->rotation_s);
        if (loom__tickets_ready()) SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, loom__tickets_cb);
    } else {
        SSL_CTX_set_num_tickets(ctx, 0);
    }
    const char *bad = NULL;
    if (SSL_CTX_set_cipher_list(ctx, st->ciphers) != 1)
        bad = "ciphers";
    else if (st->suites && SSL_CTX_set_ciphersuites(ctx, st->suites) != 1)
        bad = "ciphersuites";
    else if (SSL_CTX_set1_groups_list(ctx, st->curves) != 1)
        bad = "curves";
    if (bad) {
        ERR_clear_error();
        snprintf(err, errlen, "key 'tls.%s': OpenSSL accepts none of it", bad);
        SSL_CTX_free(ctx);
        return NULL;
    }
    SSL_CTX_set_tlsext_servername_callback(ctx, on_servername);
    SSL_CTX_set_alpn_select_cb(ctx, on_alpn, NULL);
    return ctx;
}

/* A context with one certificate, its key and its OCSP response. */
static SSL_CTX *cert_ctx(loom__tls_server *s, const settings *st, const char *cert, const char *key,
                         const char *ocsp, char *err, size_t errlen)
{
    SSL_CTX *ctx = new_ctx(st, err, errlen);
    if (!ctx) return NULL;
    add_file(s, cert);
    add_file(s, key);
    add_file(s, ocsp);
    if (loom__tls_load_pair(ctx, cert, key, err, errlen) ||
        (ocsp && loom__tls_load_ocsp(ctx, ocsp, err, errlen) < 0)) {
        loom__tls_free_ocsp(ctx);
        SSL_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

static int add_sni_certs(loom__tls_server *s, const settings *st, json_t *list, char *err,
                         size_t errlen)
{
    size_t i;
    json_t *e;
    if (!json_is_array(list)) {
        snprintf(err, errlen, "key 'tls.certs': must be an array of objects");
        return -1;
    }
    json_array_foreach(list, i, e)
    {
        const char *cert = NULL, *key = NULL, *ocsp = NULL, *k;
        json_t *v, *names = json_object_get(e, "names");
        if (!json_is_object(e)) goto bad;
        json_object_foreach(e, k, v) if (strcmp(k, "names") && strcmp(k, "cert") &&
                                         strcmp(k, "key") && strcmp(k, "ocsp_file"))
        {
            snprintf(err, errlen, "key 'tls.certs[%zu]': unknown key '%s'", i, k);
            return -1;
        }
        cert = json_string_value(json_object_get(e, "cert"));
        key = json_string_value(json_object_get(e, "key"));
        ocsp = json_string_value(json_object_get(e, "ocsp_file"));
        if (!cert || !key || !json_is_array(names) || json_array_size(names) == 0) goto bad;
        tls_cert *c = &s->certs[s->ncerts];
        c->names = calloc(json_array_size(names), sizeof *c->names);
        if (!c->names) goto bad;
        size_t j;
        json_t *n;
        json_array_foreach(names, j, n)
        {
            const char *nm = json_string_value(n);
            if (!nm || !*nm ||
                (strchr(nm, '*') && (nm[0] != '*' || nm[1] != '.' || strchr(nm + 1, '*')))) {
                snprintf(err, errlen,
                         "key 'tls.certs[%zu].names': \"%s\" is not a host name or *.domain", i,
                         nm ? nm : "");
                s->ncerts++;
                return -1;
            }
            c->names[c->nnames++] = strdup(nm);
        }
        s->ncerts++;
        if (!(c->ctx = cert_ctx(s, st, cert, key, ocsp, err, errlen))) return -1;
        continue;
    bad:
        snprintf(err, errlen,
                 "key 'tls.certs[%zu]': needs \"names\" (a non-empty array), \"cert\" and \"key\"",
                 i);
        return -1;
    }
    return 0;
}

static int setup_listener(loom__tls_server *s, const settings *st, tls_listener *l,
                          const loom__listen_cfg *lc, char *err, size_t errlen)
{
    l->srv = s;
    l->on = 1;
    if (!(l->ctx = cert_ctx(s, st, st->cert, st->key, st->ocsp, err, errlen))) return -1;
    size_t n = 0;
    if (lc->http2 && loom__proto_h2_start) {
        memcpy(l->alpn + n, "\x02h2", 3);
        n += 3;
    }
    memcpy(l->alpn + n, "\x08http/1.1", 9);
    l->alpn_len = n + 9;
    /* Sessions resume only on a listener with the same client rules. */
    int k = snprintf((char *)l->sid, sizeof l->sid, "loom:%d:%d", l->index, lc->verify_client);
    l->sid_len = (unsigned)k;
    if (lc->client_ca) {
        char why[160];
        add_file(s, lc->client_ca);
        l->ca = X509_STORE_new();
        l->ca_names = SSL_load_client_CA_file(lc->client_ca);
        if (!l->ca || !l->ca_names || X509_STORE_load_file(l->ca, lc->client_ca) != 1) {
            snprintf(err, errlen, "tls: client_ca %s: %s", lc->client_ca,
                     loom__tls_errstr(why, sizeof why, "no PEM certificates in it"));
            return -1;
        }
        l->verify_mode = lc->verify_client == LOOM__VERIFY_REQUIRE
                             ? SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT
                         : lc->verify_client == LOOM__VERIFY_OPTIONAL ? SSL_VERIFY_PEER
                                                                      : SSL_VERIFY_NONE;
        if (lc->verify_client == LOOM__VERIFY_OFF) {
            X509_STORE_free(l->ca);
            l->ca = NULL;
        }
    }
    return 0;
}

loom__tls_server *loom__tls_server_new(const loom__config *cfg, char *err, size_t errlen)
{
    settings st;
    if (loom__tls_global_init() < 0) {
        snprintf(err, errlen, "tls: OpenSSL did not initialise");
        return NULL;
    }
    if (ex_listener < 0) ex_listener = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
    if (!cfg->tls) {
        snprintf(err, errlen, "tls: no \"tls\" section");
        return NULL;
    }
    if (read_settings(cfg->tls, &st, err, errlen)) return NULL;
    json_t *list = json_object_get(cfg->tls, "certs");
    size_t nsni = json_is_array(list) ? json_array_size(list) : 0;
    if (!st.cert && nsni == 0) {
        snprintf(err, errlen, "key 'tls': needs \"cert\" and \"key\" (or \"certs\")");
        return NULL;
    }
    loom__tls_server *s = calloc(1, sizeof *s);
    if (!s) goto oom;
    s->refs = 1;
    s->watch = st.watch;
    s->certs = calloc(nsni ? nsni : 1, sizeof *s->certs);
    s->ls = calloc(cfg->nlisten, sizeof *s->ls);
    if (!s->certs || !s->ls) goto oom;
    s->nls = cfg->nlisten;
    if (list && add_sni_certs(s, &st, list, err, errlen)) goto fail;
    if (!st.cert) { /* the first SNI certificate is also the default */
        json_t *first = json_array_get(list, 0);
        st.cert = json_string_value(json_object_get(first, "cert"));
        st.key = json_string_value(json_object_get(first, "key"));
        st.ocsp = json_string_value(json_object_get(first, "ocsp_file"));
    }
    for (size_t i = 0; i < cfg->nlisten; i++) {
        s->ls[i].index = (int)i;
        if (cfg->listen[i].tls && setup_listener(s, &st, &s->ls[i], &cfg->listen[i], err, errlen))
            goto fail;
    }
    return s;
oom:
    snprintf(err, errlen, "tls: out of memory");
fail:
    loom__tls_server_unref(s);
    return NULL;
}

void loom__tls_server_ref(loom__tls_server *s)
{
    s->refs++;
}

void loom__tls_server_unref(loom__tls_server *s)
{
    if (!s || --s->refs > 0) return;
    for (size_t i = 0; i < s->ncerts && s->certs; i++) {
        for (size_t j = 0; j < s->certs[i].nnames; j++) free(s->certs[i].names[j]);
        free(s->certs[i].names);
        if (s->certs[i].ctx) loom__tls_free_ocsp(s->certs[i].ctx);
        SSL_CTX_free(s->certs[i].ctx);
    }
    for (size_t i = 0; i < s->nls && s->ls; i++) {
        if (s->ls[i].ctx) loom__tls_free_ocsp(s->ls[i].ctx);
        SSL_CTX_free(s->ls[i].ctx);
        X509_STORE_free(s->ls[i].ca);
        sk_X509_NAME_pop_free(s->ls[i].ca_names, X509_NAME_free);
    }
    for (size_t i = 0; i < s->nfiles; i++) free(s->files[i]);
    free(s->files);
    free(s->certs);
    free(s->ls);
    free(s);
}

SSL_CTX *loom__tls_server_ctx(loom__tls_server *s, int listener)
{
    return s->ls[listener].ctx;
}

int loom__tls_server_setup(loom__tls_server *s, SSL *ssl, int listener)
{
    tls_listener *l = &s->ls[listener];
    if (!l->on || SSL_set_ex_data(ssl, ex_listener, l) != 1 ||
        SSL_set_session_id_context(ssl, l->sid, l->sid_len) != 1)
        return -1;
    apply_verify(l, ssl);
    return 0;
}

const char *const *loom__tls_server_files(const loom__tls_server *s, size_t *n)
{
    *n = s->nfiles;
    return (const char *const *)s->files;
}

int loom__tls_server_watch(const loom__tls_server *s)
{
    return s->watch;
}
