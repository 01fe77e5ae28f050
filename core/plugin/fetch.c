/* The HTTP client, lent to plugins (ABI 1.1). One client per worker, on the
 * worker's loop, shared by every plugin so they share its connection pool.
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

struct loom_fetch {
    loom_client_request *creq;
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

static void on_done(loom_client_response *resp, void *ud)
{
    loom_fetch *f = ud;
    if (f->owner->host && f->owner->host->w)
        loom__metrics_fetch(f->owner->host->w->metrics, loom_client_response_error(resp));
    unlink_owner(f);
    unlink_req(f);
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
    free(f);
}

void loom__fetch_cancel_request(loom_req *r)
{
    loom__rctx *x = r->host_data;
    while (x && x->fetches) loom__api_fetch_cancel(x->fetches);
}

void loom__fetch_cancel_plugin(loom_plugin *p)
{
    while (p->fetches) loom__api_fetch_cancel(p->fetches);
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
