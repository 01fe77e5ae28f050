/* The client object: settings, lifetime, and closing. */
#include "client/client_int.h"
#include "client/ws.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef LOOM_VERSION
#define LOOM_VERSION "0"
#endif

static void on_sweep(uv_timer_t *t)
{
    loom__pool_sweep(t->data);
}

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

static void tlsconf_free(loom__tlsconf *tc)
{
    free(tc->key);
    free((char *)tc->conf.ca_file);
    free((char *)tc->conf.ca_path);
    free((char *)tc->conf.cert_file);
    free((char *)tc->conf.key_file);
    if (tc->ctx) SSL_CTX_free(tc->ctx);
    free(tc->err);
    free(tc);
}

/* Requests with the same TLS settings share one context (and so one pool
 * entry per host); at most this many distinct settings per client. */
#define MAX_TLSCONFS 64

loom__tlsconf *loom__client_tlsconf(loom_client *c, const loom_client_tls *t)
{
    if (!t) return c->tlsconfs;
    loom__buf k = {0};
    if (loom__buf_printf(&k, "%s\x1f%s\x1f%s\x1f%s\x1f%d", t->ca_file ? t->ca_file : "",
                         t->ca_path ? t->ca_path : "", t->cert_file ? t->cert_file : "",
                         t->key_file ? t->key_file : "", t->insecure != 0))
        return NULL;
    loom__tlsconf *tc;
    for (tc = c->tlsconfs; tc; tc = tc->next)
        if (strcmp(tc->key, k.data) == 0) break;
    if (tc || c->ntlsconfs >= MAX_TLSCONFS) {
        loom__buf_free(&k);
        return tc ? tc : c->tlsconfs; /* beyond the cap: see loom__tlsconf_ctx */
    }
    tc = calloc(1, sizeof *tc);
    if (!tc) {
        loom__buf_free(&k);
        return NULL;
    }
    tc->key = k.data;
    tc->conf.ca_file = dup_or_null(t->ca_file);
    tc->conf.ca_path = dup_or_null(t->ca_path);
    tc->conf.cert_file = dup_or_null(t->cert_file);
    tc->conf.key_file = dup_or_null(t->key_file);
    tc->conf.insecure = t->insecure != 0;
    if ((t->ca_file && !tc->conf.ca_file) || (t->ca_path && !tc->conf.ca_path) ||
        (t->cert_file && !tc->conf.cert_file) || (t->key_file && !tc->conf.key_file)) {
        tlsconf_free(tc);
        return NULL;
    }
    /* after the client's own (the list's head) */
    if (c->tlsconfs) {
        tc->next = c->tlsconfs->next;
        c->tlsconfs->next = tc;
    } else {
        c->tlsconfs = tc;
    }
    c->ntlsconfs++;
    return tc;
}

SSL_CTX *loom__tlsconf_ctx(loom__tlsconf *tc)
{
    if (tc->ctx || tc->err) return tc->ctx;
    char err[400];
    tc->ctx = loom__tls_client_ctx_new(&tc->conf, err, sizeof err);
    if (!tc->ctx) tc->err = strdup(err);
    if (!tc->ctx && !tc->err) tc->err = strdup("out of memory");
    return tc->ctx;
}

/* trust_env: lower-case names first; HTTP_PROXY only outside CGI, where a
 * request's "Proxy:" header would arrive as that variable (httpoxy). */
static const char *env_proxy(int https)
{
    const char *v = getenv(https ? "https_proxy" : "http_proxy");
    if (!v || !*v)
        v = (https || !getenv("REQUEST_METHOD")) ? getenv(https ? "HTTPS_PROXY" : "HTTP_PROXY")
                                                 : NULL;
    return v && *v ? v : NULL;
}

int loom__client_env_proxies(loom_client *c)
{
    if (c->env_loaded) return c->env_err ? -1 : 0;
    c->env_loaded = 1;
    char why[200], err[260];
    int rc = 0;
    const char *np = getenv("no_proxy");
    if (!np || !*np) np = getenv("NO_PROXY");
    if (np && *np && !(c->no_proxy = strdup(np))) goto oom;
    const char *hp = env_proxy(0), *sp = env_proxy(1);
    if (hp) rc = loom__proxy_parse(hp, NULL, &c->env_http, why, sizeof why);
    if (rc == -1) snprintf(err, sizeof err, "http_proxy: %s", why);
    if (rc == 0 && sp) {
        rc = loom__proxy_parse(sp, NULL, &c->env_https, why, sizeof why);
        if (rc == -1) snprintf(err, sizeof err, "https_proxy: %s", why);
    }
    if (rc == -2) goto oom;
    if (rc == -1 && !(c->env_err = strdup(err))) goto oom;
    return rc;
oom:
    c->env_err = NULL;
    c->env_loaded = 0;
    return -2;
}

static void free_client(loom_client *c)
{
    while (c->tlsconfs) {
        loom__tlsconf *tc = c->tlsconfs;
        c->tlsconfs = tc->next;
        tlsconf_free(tc);
    }
    loom__proxy_free(&c->proxy);
    loom__proxy_free(&c->env_http);
    loom__proxy_free(&c->env_https);
    free(c->no_proxy);
    free(c->proxy_err);
    free(c->env_err);
    for (size_t i = 0; i < c->nheaders; i++) {
        free(c->hnames[i]);
        free(c->hvalues[i]);
    }
    free(c->hnames);
    free(c->hvalues);
    free(c->user_agent);
    free(c);
}

void loom__client_unref(loom_client *c)
{
    if (--c->refs == 0 && c->closing) free_client(c);
}

static void on_sweep_close(uv_handle_t *h)
{
    loom__client_unref(h->data);
}

static double secs(double v, double def)
{
    if (v < 0) return 0;
    return v > 0 ? v : def;
}

loom_client *loom_client_new(uv_loop_t *loop, const loom_client_config *cfg)
{
    static const loom_client_config defaults;
    if (!loop) return NULL;
    if (!cfg) cfg = &defaults;
    loom_client *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->loop = loop;
    c->limit = cfg->limit ? cfg->limit : 100;
    c->limit_per_host = cfg->limit_per_host;
    double ka = cfg->keepalive_timeout > 0 ? cfg->keepalive_timeout : 15;
    c->keepalive_ms = (uint64_t)(ka * 1000);
    double ttl = cfg->dns_ttl < 0 ? 0 : cfg->dns_ttl > 0 ? cfg->dns_ttl : 10;
    c->dns_ttl_ms = (uint64_t)(ttl * 1000);
    c->total = secs(cfg->total_timeout, 300);
    c->connect = secs(cfg->connect_timeout, 30);
    c->read = secs(cfg->read_timeout, 0);
    c->raise_for_status = cfg->raise_for_status > 0;
    c->max_redirects = cfg->max_redirects < 0 ? -1 : cfg->max_redirects ? cfg->max_redirects : 10;
    c->max_body = cfg->max_body_size ? cfg->max_body_size : (size_t)64 << 20;
    c->no_decompress = cfg->no_decompress;
    c->allow_downgrade = cfg->allow_downgrade > 0;
    c->jar = cfg->cookie_jar;
    c->trust_env = cfg->trust_env > 0;
    if (!loom__client_tlsconf(c, &cfg->tls)) goto oom;
    if (cfg->proxy) {
        char err[200];
        int rc = loom__proxy_parse(cfg->proxy, cfg->proxy_auth, &c->proxy, err, sizeof err);
        if (rc == -2 || (rc == -1 && !(c->proxy_err = strdup(err)))) goto oom;
    }
    c->user_agent = strdup(cfg->user_agent ? cfg->user_agent : "loom/" LOOM_VERSION);
    c->dns.next = c->dns.prev = &c->dns;
    if (!c->user_agent) goto oom;
    if (cfg->nheaders) {
        c->hnames = calloc(cfg->nheaders, sizeof *c->hnames);
        c->hvalues = calloc(cfg->nheaders, sizeof *c->hvalues);
        if (!c->hnames || !c->hvalues) goto oom;
        for (size_t i = 0; i < cfg->nheaders; i++) {
            c->nheaders++;
            c->hnames[i] = strdup(cfg->headers[i].name ? cfg->headers[i].name : "");
            c->hvalues[i] = strdup(cfg->headers[i].value ? cfg->headers[i].value : "");
            if (!c->hnames[i] || !c->hvalues[i]) goto oom;
        }
    }
    uv_timer_init(loop, &c->sweep);
    c->sweep.data = c;
    c->refs = 1;
    uint64_t every = c->keepalive_ms / 4 ? c->keepalive_ms / 4 : 1;
    if (every > 1000) every = 1000;
    uv_timer_start(&c->sweep, on_sweep, every, every);
    uv_unref((uv_handle_t *)&c->sweep);
    return c;
oom:
    free_client(c);
    return NULL;
}

void loom_client_close(loom_client *c)
{
    if (!c || c->closing) return;
    c->closing = 1;
    c->refs++; /* hold the client while the callbacks run */
    while (c->reqs) loom__req_fail_cancelled(c->reqs);
    loom__wsc_close_all(c);
    loom__pool_shutdown(c);
    loom__dns_shutdown(c);
    uv_close((uv_handle_t *)&c->sweep, on_sweep_close);
    loom__client_unref(c);
}

size_t loom_client_pending(const loom_client *c)
{
    return c ? c->pending : 0;
}
