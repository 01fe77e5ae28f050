/* The request pipeline: pin the snapshot, run the middleware request phase
 * in order, route, call the handler, run the response phase in reverse, send.
 *
 * A plugin may answer from inside one of its callbacks. Freeing the request
 * then would pull it from under the host's own frame, so an answer given
 * during a callback is only recorded, and completed when the callback
 * returns. */
#include "plugin/host.h"
#include "admin/metrics.h"
#include "http/response.h"
#include "http/status.h"
#include "util/log.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void route(loom_req *r);

static loom__rctx *ctx(loom_req *r)
{
    return r->host_data;
}

/* Who answered (for the access log) and the request's metrics. */
static void note_answer(loom_req *r, loom__rctx *x)
{
    const loom__route_meta *m = x->route ? x->route->meta : NULL;
    r->plugin = x->by ? x->by->name : NULL;
    r->route = m ? m->pattern : x->by ? "(middleware)" : "(unmatched)";
    loom__mworker *mw = x->mw;
    if (!x->timed) return;
    r->handler_ns = uv_hrtime() - x->start_ns;
    if (!mw) return;
    unsigned ms = loom__metrics_method_slot(r->method_id);
    uint16_t sid;
    if (m) {
        loom__route_meta *wm = (loom__route_meta *)m;
        if (!(sid = wm->series[ms]))
            sid = wm->series[ms] =
                loom__metrics_series(mw, r->plugin, m->pattern, ms == 9 ? "other" : r->method);
    } else if (x->by) {
        sid = loom__metrics_series(mw, r->plugin, "(middleware)", ms == 9 ? "other" : r->method);
    } else {
        sid = loom__metrics_unmatched(mw, ms, r->method);
    }
    /* 499: the client left before the answer (as nginx logs it). */
    int st = x->aborted ? 499 : r->resp.status ? r->resp.status : 200;
    loom__metrics_observe(mw, sid, st, r->handler_ns);
    loom__m_sub(&mw->slot->inflight, 1);
}

static void complete(loom_req *r)
{
    loom__rctx *x = ctx(r);
    if (x->session) {
        if (loom__session_before_send(r)) return; /* saving; called again after */
        loom__session_free(r);
    }
    if (!x->aborted) loom__dispatch_response_phase(r);
    if (x->filter && loom__filter_before_send(r)) return; /* on the pool; called again after */
    loom__snapshot *s = x->snap;
    loom__worker *w = loom__req_worker(r);
    loom__host *h = w ? w->host : NULL;
    note_answer(r, x);
    if (x->fetches) loom__fetch_cancel_request(r);
    /* Services give back what they held for the request while the snapshot
     * still holds them loaded. */
    if (x->watch) loom__watch_fire(r, LOOM_REQ_DONE);
    for (size_t i = 0; i < x->njsons; i++) json_decref(x->jsons[i]);
    x->njsons = 0;
    s->requests--;
    /* Every body byte went through the filter by now; its code lives in a
     * plugin, which the snapshot keeps loaded until just below. */
    if (x->filter) loom__filter_release(r);
    loom__req_finish(r);
    loom__snapshot_unref(h, s);
}

void loom__dispatch_complete(loom_req *r)
{
    complete(r);
}

void loom__dispatch_response_phase(loom_req *r)
{
    loom__rctx *x = ctx(r);
    if (r->resp.head_sent) return;
    while (x->mw_ran > 0) {
        loom__reg_mw *m = &x->snap->chain[--x->mw_ran];
        if (!m->on_response) continue;
        x->in_call++;
        m->on_response(r, m->ud);
        x->in_call--;
    }
}

int32_t loom__dispatch_respond(loom_req *r)
{
    loom__rctx *x = ctx(r);
    if (x->responded) return LOOM_ESTATE;
    x->responded = 1;
    if (x->in_call) return x->aborted ? LOOM_EGONE : LOOM_OK;
    int gone = x->aborted;
    complete(r);
    return gone ? LOOM_EGONE : LOOM_OK;
}

int32_t loom__dispatch_error(loom_req *r, int status, const char *message)
{
    loom__rctx *x = ctx(r);
    if (x->responded || r->resp.head_sent) return LOOM_ESTATE;
    loom__dispatch_error_fill(r, status, message);
    return loom__dispatch_respond(r);
}

void loom__dispatch_error_fill(loom_req *r, int status, const char *message)
{
    if (status < 400 || status > 599) status = 500;
    if (!message) message = loom__status_reason(status);
    r->resp.status = status;
    size_t al = 0;
    const char *accept = loom__req_header(r, "accept", 6, &al);
    char buf[1024];
    int n;
    if (accept && memmem(accept, al, "application/json", 16)) {
        json_t *j = json_pack("{s:{s:i,s:s}}", "error", "status", status, "message", message);
        char *t = j ? json_dumps(j, JSON_COMPACT) : NULL;
        json_decref(j);
        loom__resp_header_set(r, "Content-Type", 12, "application/json", 16);
        loom__resp_body_copy(r, t ? t : "{}", t ? strlen(t) : 2);
        free(t);
    } else {
        n = snprintf(buf, sizeof buf, "%d: %s", status, message);
        if (n < 0) n = 0;
        if (n >= (int)sizeof buf) n = (int)sizeof buf - 1;
        loom__resp_header_set(r, "Content-Type", 12, "text/plain; charset=utf-8", 25);
        loom__resp_body_copy(r, buf, (size_t)n);
    }
}

const char *loom__dispatch_remote(loom_req *r)
{
    loom__rctx *x = ctx(r);
    /* Formatted on first use: inet_ntop costs more than the rest of a
     * request's routing. */
    if (!x->remote[0]) {
        const char *a = loom__req_remote(r, x->remote, sizeof x->remote);
        if (a != x->remote) snprintf(x->remote, sizeof x->remote, "%s", a);
    }
    return x->remote;
}

static void log_failure(loom_req *r, const char *who, const char *what, int32_t rc)
{
    loom__rctx *x = ctx(r);
    loom__dispatch_remote(r);
    loom__err("%s: %s %s%s%s from %s: %s (%d)", who, r->method, r->target, "", "",
              x->remote[0] ? x->remote : "-", what, rc);
}

/* Runs the request phase from where it stopped, then routes. */
static void run_chain(loom_req *r)
{
    loom__rctx *x = ctx(r);
    while (x->mw_next < x->snap->nchain) {
        loom__reg_mw *m = &x->snap->chain[x->mw_next++];
        x->mw_ran = x->mw_next;
        if (!m->on_request) continue;
        x->by = m->owner; /* until it passes the request on */
        x->in_call++;
        int32_t rc = m->on_request(r, m->ud);
        x->in_call--;
        if (x->responded) {
            complete(r);
            return;
        }
        if (rc == LOOM_NEXT) continue;
        if (rc == LOOM_PENDING) return;
        char who[160];
        snprintf(who, sizeof who, "plugin %s: middleware %s", m->owner->name, m->name);
        log_failure(r, who, rc == LOOM_DONE ? "returned LOOM_DONE without answering" : "failed",
                    rc);
        loom__dispatch_error(r, 500, "Internal Server Error");
        return;
    }
    route(r);
}

int32_t loom__dispatch_next(loom_req *r)
{
    loom__rctx *x = ctx(r);
    if (x->responded) return LOOM_ESTATE;
    if (x->aborted) {
        /* Nobody is waiting: release the request. */
        loom__dispatch_respond(r);
        return LOOM_EGONE;
    }
    run_chain(r);
    return LOOM_OK;
}

static void route(loom_req *r)
{
    loom__rctx *x = ctx(r);
    const loom__route_target *t = NULL;
    char allow[128];
    x->by = NULL;
    int st = loom__router_match(x->snap->router, r->method, x->path, x->path_len, &t, x->caps,
                                &x->ncaps, allow, sizeof allow);
    if (st == LOOM__ROUTE_NOT_FOUND) {
        loom__dispatch_error(r, 404, "Not Found");
        return;
    }
    if (st == LOOM__ROUTE_NO_METHOD) {
        loom__resp_header_set(r, "Allow", 5, allow, strlen(allow));
        loom__dispatch_error(r, 405, "Method Not Allowed");
        return;
    }
    x->route = t;
    x->by = t->owner;
    if ((t->flags & LOOM_ROUTE_DECODE_BODY) && loom__dispatch_decode_body(r)) return;
    x->in_call++;
    int32_t rc = ((loom_handler_fn)t->fn)(r, t->ud);
    x->in_call--;
    if (x->responded) {
        complete(r);
        return;
    }
    if (rc == LOOM_PENDING) return;
    char who[128];
    snprintf(who, sizeof who, "plugin %s: handler", ((loom_plugin *)t->owner)->name);
    log_failure(r, who, rc == LOOM_DONE ? "returned LOOM_DONE without answering" : "failed", rc);
    loom__dispatch_error(r, 500, "Internal Server Error");
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Percent-decodes the path (keeping %2F, so a slash in a name does not become
 * a segment break) and resolves dot segments. Returns -1 for a NUL byte or
 * ".." above the root. */
static int decode_path(loom_req *r, char **out, size_t *outlen)
{
    const char *s = r->path;
    size_t n = r->path_len;
    char *d = loom__arena_alloc(&r->arena, n + 1);
    if (!d) return -1;
    /* Most paths have no escape and no dot segment: they decode to
     * themselves. */
    int plain = n > 0 && s[0] == '/';
    for (size_t i = 0; i < n && plain; i++)
        plain = s[i] != '%' && !(s[i] == '.' && s[i - 1] == '/');
    if (plain) {
        memcpy(d, s, n);
        d[n] = '\0';
        *out = d;
        *outlen = n;
        return 0;
    }
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '%' && i + 2 < n && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
            int v = hexval(s[i + 1]) * 16 + hexval(s[i + 2]);
            if (v == 0) return -1;
            if (v == '/') {
                memcpy(d + o, s + i, 3);
                o += 3;
            } else {
                d[o++] = (char)v;
            }
            i += 2;
        } else {
            d[o++] = s[i];
        }
    }
    d[o] = '\0';
    /* Remove dot segments (RFC 3986 §5.2.4), in place. */
    char *w = d;
    size_t wl = 0;
    const char *p = d;
    while (*p) {
        const char *seg = p + 1;
        const char *e = strchr(seg, '/');
        size_t sl = e ? (size_t)(e - seg) : strlen(seg);
        if (sl == 1 && seg[0] == '.') {
            if (!e) w[wl++] = '/';
        } else if (sl == 2 && seg[0] == '.' && seg[1] == '.') {
            if (wl == 0) return -1;
            while (wl > 0 && w[wl - 1] != '/') wl--;
            if (wl > 0) wl--;
            if (!e) w[wl++] = '/';
        } else {
            w[wl++] = '/';
            memmove(w + wl, seg, sl);
            wl += sl;
        }
        p = e ? e : seg + sl;
    }
    if (wl == 0) w[wl++] = '/';
    w[wl] = '\0';
    *out = w;
    *outlen = wl;
    return 0;
}

void loom__dispatch(loom__worker *w, loom_req *r)
{
    loom__host *h = w->host;
    loom__rctx *x = loom__arena_alloc(&r->arena, sizeof *x);
    if (!x) {
        r->resp.status = 500;
        r->resp.close = 1;
        loom__req_finish(r);
        return;
    }
    /* The fields before remote; the rest is most of the struct and is
     * written before it is read. */
    memset(x, 0, offsetof(loom__rctx, remote));
    x->remote[0] = '\0';
    r->host_data = x;
    x->snap = h->current;
    loom__snapshot_ref(x->snap);
    x->snap->requests++;
    x->start_ns = uv_hrtime();
    if ((x->mw = w->metrics)) loom__m_add(&x->mw->slot->inflight, 1);
    x->timed = x->mw || w->access_log;
    if (decode_path(r, &x->path, &x->path_len)) {
        x->path = (char *)"/";
        x->path_len = 1;
        loom__dispatch_error(r, 400, "invalid path");
        return;
    }
    run_chain(r);
}

/* The client left while the plugin waited for a fetch tied to the request,
 * and nothing of the plugin hears of it: the fetch is cancelled (loom.h:
 * its callback does not run), so unless the plugin answers some other way
 * the request stays pinned, and its snapshot and instances with it. The
 * ABI keeps the request valid until the plugin answers, so the host cannot
 * release it; it says so, once per instance (a plugin bug: loom.h asks for
 * an abort callback that answers), then at debug level. */
static void pinned_by_fetch(loom_req *r, const loom__rctx *x, loom_plugin *p)
{
    int first = !p->warned_pinned;
    p->warned_pinned = 1;
    /* The decoded path may hold anything: one printable line of it. */
    char path[128];
    size_t n = 0;
    for (const char *c = x->path ? x->path : "?"; *c && n < sizeof path - 1; c++)
        path[n++] = (unsigned char)*c < 0x20 || *c == 0x7f ? '?' : *c;
    path[n] = '\0';
    loom__log(first ? LOOM_LOG_WARN : LOOM_LOG_DEBUG,
              "plugin %s: the client of %.*s %s left while the plugin waited for a fetch, and "
              "the plugin set no loom_req_on_abort: the fetch is cancelled (its callback does "
              "not run), so the request stays pinned, with plugin generation %llu, until the "
              "plugin answers it",
              p->name, (int)r->method_len, r->method, path, (unsigned long long)p->generation);
}

void loom__dispatch_abort(loom__worker *w, loom_req *r)
{
    (void)w;
    loom__rctx *x = ctx(r);
    if (!x || x->aborted) return;
    x->aborted = 1;
    loom_plugin *fetcher = loom__fetch_cancel_request(r);
    if (x->sse) {
        /* An event stream's on_close stands for on_abort. */
        loom__sse_abort(r);
        return;
    }
    if (!x->abort_fn && !x->watch) {
        if (fetcher) pinned_by_fetch(r, x, fetcher);
        return;
    }
    x->in_call++;
    if (x->abort_fn) x->abort_fn(r, x->abort_ud);
    /* Then the services (a query in flight is cancelled and its callback
     * told, which usually answers), unless the plugin already answered:
     * their LOOM_REQ_DONE comes next anyway. */
    if (!x->responded && x->watch) loom__watch_fire(r, LOOM_REQ_ABORTED);
    x->in_call--;
    if (x->responded) complete(r);
}
