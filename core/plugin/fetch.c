/* The HTTP client, lent to plugins (ABI 1.1; 1.6: HTTPS settings, cookie
 * jars, proxies). One client per worker, on the worker's loop, shared by
 * every plugin so they share its connection pool; TLS settings, jars and
 * proxies are per fetch (the pool keys connections by them).
 * Each fetch is owned by the host: listed on its plugin instance (cancelled
 * at unload) and on its request, if any (cancelled when the request is
 * answered or aborted), so no callback ever reaches a plugin that cannot
 * take it. */
#include "plugin/host.h"
#include "admin/metrics.h"
#include "util/log.h"

#include <loom/client.h>
#include <stdlib.h>
#include <string.h>

struct loom_fetch_jar {
    loom_cookie_jar *jar;
    loom_plugin *owner;
    loom_fetch_jar *prev, *next; /* on the owner */
    unsigned users;              /* fetches in flight that use it */
    int freed;                   /* the plugin is done with it */
};

struct loom_fetch {
    loom_client_request *creq;
    loom_fetch_jar *jar;
    loom_plugin *owner;
    loom_req *req;
    loom_fetch_fn fn;
    void *ud;
    loom_fetch *prev, *next; /* on the owner */
    loom_fetch *rnext;       /* on the request */
};

#define RES(r) ((loom_client_response *)(r))
#define CRES(r) ((const loom_client_response *)(r))

static void unlink_owner(loom_fetch *f)
{
    if (f->prev)
        f->prev->next = f->next;
    else if (f->owner->fetches == f)
        f->owner->fetches = f->next;
    if (f->next) f->next->prev = f->prev;
    f->prev = f->next = NULL;
}

static void unlink_req(loom_fetch *f)
{
    if (!f->req) return;
    loom__rctx *x = f->req->host_data;
    loom_fetch **pp = (loom_fetch **)&x->fetches;
    while (*pp && *pp != f) pp = &(*pp)->rnext;
    if (*pp) *pp = f->rnext;
    f->req = NULL;
}

static void jar_destroy(loom_fetch_jar *j)
{
    loom_cookie_jar_free(j->jar);
    free(j);
}

static void jar_unuse(loom_fetch *f)
{
    loom_fetch_jar *j = f->jar;
    f->jar = NULL;
    if (j && --j->users == 0 && j->freed) jar_destroy(j);
}

static void on_done(loom_client_response *resp, void *ud)
{
    loom_fetch *f = ud;
    if (f->owner->host && f->owner->host->w)
        loom__metrics_fetch(f->owner->host->w->metrics, loom_client_response_error(resp));
    unlink_owner(f);
    unlink_req(f);
    jar_unuse(f);
    if (!f->owner->unloading) f->fn((const loom_fetch_result *)resp, f->ud);
    loom_client_response_free(resp);
    free(f);
}

loom_fetch *loom__api_fetch(loom_plugin *self, loom_req *req, const loom_fetch_opts *opts_in,
                            loom_fetch_fn fn, void *ud)
{
    loom_fetch_opts o;
    memset(&o, 0, sizeof o);
    if (!opts_in || !fn || opts_in->size < offsetof(loom_fetch_opts, timeout_ms)) return NULL;
    memcpy(&o, opts_in, opts_in->size < sizeof o ? opts_in->size : sizeof o);
    loom__host *h = self->host;
    if (!o.url || !h || self->unloading || h->stopping) return NULL;
    if (req && (!req->host_data || ((loom__rctx *)req->host_data)->responded)) return NULL;
    /* Raw fetches (proxies) pass bodies through undecoded: a client of
     * their own, since decoding is a client setting. */
    int raw = (o.flags & LOOM_FETCH_RAW) != 0;
    struct loom_client **cl = raw ? &h->client_raw : &h->client;
    if (!*cl) {
        loom_client_config cfg;
        memset(&cfg, 0, sizeof cfg);
        cfg.no_decompress = raw;
        *cl = loom_client_new(h->loop, &cfg);
        if (!*cl) return NULL;
    }
    loom_client_header hs[64];
    if (o.nheaders > 64) return NULL;
    for (uint32_t i = 0; i < o.nheaders; i++) {
        hs[i].name = o.headers[2 * i];
        hs[i].value = o.headers[2 * i + 1];
        if (!hs[i].name || !hs[i].value) return NULL;
    }
    loom_client_opts co;
    memset(&co, 0, sizeof co);
    co.headers = hs;
    co.nheaders = o.nheaders;
    co.body = o.body;
    co.body_len = o.body_len;
    co.content_type = o.content_type;
    if (o.timeout_ms) co.total_timeout = (double)o.timeout_ms / 1000.0;
    if (o.connect_timeout_ms) co.connect_timeout = (double)o.connect_timeout_ms / 1000.0;
    if (o.read_timeout_ms) co.read_timeout = (double)o.read_timeout_ms / 1000.0;
    co.raise_for_status = (o.flags & LOOM_FETCH_RAISE_FOR_STATUS) ? 1 : -1;
    if (raw) co.max_redirects = -1;
    /* 1.6 */
    loom_client_tls tls;
    memset(&tls, 0, sizeof tls);
    tls.ca_file = o.ca_file;
    tls.cert_file = o.client_cert;
    tls.key_file = o.client_key;
    tls.insecure = (o.flags & LOOM_FETCH_INSECURE) != 0;
    if (tls.ca_file || tls.cert_file || tls.key_file || tls.insecure) co.tls = &tls;
    if (tls.insecure && !self->warned_insecure) {
        loom__log(LOOM_LOG_WARN, "plugin %s: fetches without verifying servers (insecure)",
                  self->name);
        self->warned_insecure = 1;
    }
    co.proxy = o.proxy;
    co.trust_env = (o.flags & LOOM_FETCH_TRUST_ENV) ? 1 : -1;
    co.allow_downgrade = (o.flags & LOOM_FETCH_ALLOW_DOWNGRADE) ? 1 : -1;
    if (o.cookie_jar) {
        if (o.cookie_jar->freed || o.cookie_jar->owner != self) return NULL;
        co.cookie_jar = o.cookie_jar->jar;
    }
    loom_fetch *f = calloc(1, sizeof *f);
    if (!f) return NULL;
    f->owner = self;
    f->fn = fn;
    f->ud = ud;
    f->creq = loom_client_send(*cl, o.method ? o.method : "GET", o.url, &co, on_done, f);
    if (!f->creq) {
        free(f);
        return NULL;
    }
    if (o.cookie_jar) {
        f->jar = o.cookie_jar;
        f->jar->users++;
    }
    f->next = self->fetches;
    if (self->fetches) self->fetches->prev = f;
    self->fetches = f;
    if (req) {
        loom__rctx *x = req->host_data;
        f->req = req;
        f->rnext = x->fetches;
        x->fetches = f;
    }
    return f;
}

void loom__api_fetch_cancel(loom_fetch *f)
{
    if (!f) return;
    unlink_owner(f);
    unlink_req(f);
    loom_client_cancel(f->creq);
    jar_unuse(f);
    free(f);
}

loom_plugin *loom__fetch_cancel_request(loom_req *r)
{
    loom__rctx *x = r->host_data;
    loom_plugin *owner = NULL;
    while (x && x->fetches) {
        owner = ((loom_fetch *)x->fetches)->owner;
        loom__api_fetch_cancel(x->fetches);
    }
    return owner;
}

void loom__fetch_cancel_plugin(loom_plugin *p)
{
    while (p->fetches) loom__api_fetch_cancel(p->fetches);
    while (p->jars) loom__api_fetch_jar_free(p->jars);
}

/* ---- 1.6: cookie jars ---- */

loom_fetch_jar *loom__api_fetch_jar_new(loom_plugin *self, uint32_t flags)
{
    if (!self || self->unloading) return NULL;
    loom_fetch_jar *j = calloc(1, sizeof *j);
    if (!j) return NULL;
    j->jar = loom_cookie_jar_new((flags & LOOM_FETCH_JAR_UNSAFE) ? LOOM_COOKIE_JAR_UNSAFE : 0);
    if (!j->jar) {
        free(j);
        return NULL;
    }
    j->owner = self;
    j->next = self->jars;
    if (self->jars) self->jars->prev = j;
    self->jars = j;
    return j;
}

void loom__api_fetch_jar_free(loom_fetch_jar *j)
{
    if (!j || j->freed) return;
    j->freed = 1;
    if (j->prev)
        j->prev->next = j->next;
    else
        j->owner->jars = j->next;
    if (j->next) j->next->prev = j->prev;
    j->prev = j->next = NULL;
    if (j->users == 0) jar_destroy(j);
}

int64_t loom__api_fetch_jar_cookies(loom_fetch_jar *j, const char *url, char *buf, size_t len)
{
    if (!j || j->freed || !url) return LOOM_EINVAL;
    if (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0) return LOOM_EINVAL;
    char *h = loom_cookie_jar_header(j->jar, url);
    size_t n = h ? strlen(h) : 0;
    if (buf && len) {
        size_t k = n < len - 1 ? n : len - 1;
        if (k) memcpy(buf, h, k);
        buf[k] = 0;
    }
    free(h);
    return (int64_t)n;
}

int32_t loom__api_fetch_error(const loom_fetch_result *r)
{
    return loom_client_response_error(CRES(r));
}

const char *loom__api_fetch_message(const loom_fetch_result *r)
{
    const char *m = loom_client_response_message(CRES(r));
    return m ? m : "";
}

int32_t loom__api_fetch_status(const loom_fetch_result *r)
{
    return loom_client_response_status(CRES(r));
}

const char *loom__api_fetch_header(const loom_fetch_result *r, const char *name)
{
    return name ? loom_client_response_header(CRES(r), name) : NULL;
}

uint32_t loom__api_fetch_header_count(const loom_fetch_result *r)
{
    return (uint32_t)loom_client_response_header_count(CRES(r));
}

int32_t loom__api_fetch_header_at(const loom_fetch_result *r, uint32_t i, const char **name,
                                  const char **value)
{
    if (i >= loom_client_response_header_count(CRES(r))) return LOOM_ENOTFOUND;
    const char *n, *v;
    loom_client_response_header_at(CRES(r), i, &n, &v);
    if (name) *name = n;
    if (value) *value = v;
    return LOOM_OK;
}

const void *loom__api_fetch_body(const loom_fetch_result *r, size_t *len)
{
    size_t n = 0;
    const char *b = loom_client_response_body(CRES(r), &n);
    if (len) *len = n;
    return b ? b : "";
}
