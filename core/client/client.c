/* The client object: settings, lifetime, and closing. */
#include "client/client_int.h"
#include "client/ws.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#ifndef LOOM_VERSION
#define LOOM_VERSION "0"
#endif

static void on_sweep(uv_timer_t *t)
{
    loom__pool_sweep(t->data);
}

static void free_client(loom_client *c)
{
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
