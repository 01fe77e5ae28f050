/* The host function table: the only way plugin code reaches the core. Each
 * entry is a thin trampoline onto core functions, with the argument checks a
 * plugin author would otherwise trip over at run time. */
#include "http/date.h"
#include "http/response.h"
#include "plugin/form.h"
#include "plugin/host.h"
#include "admin/metrics.h"
#include "util/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CTX(r) ((loom__rctx *)(r)->host_data)

/* ---- plugin ---- */

static void api_log(loom_plugin *self, int32_t level, const char *msg)
{
    if (level < 0) level = 0;
    if (level > 3) level = 3;
    loom__log_plugin(level, "plugin %s: %s", self ? self->name : "?", msg ? msg : "");
}

static const loom_json *api_config(loom_plugin *self)
{
    return (const loom_json *)self->config;
}

static const char *api_plugin_name(loom_plugin *self)
{
    return self->name;
}

static int32_t set_error(loom_plugin *self, const char *fmt, const char *a, const char *b)
{
    char buf[512];
    snprintf(buf, sizeof buf, fmt, a, b);
    free(self->last_error);
    self->last_error = strdup(buf);
    loom__err("plugin %s: %s", self->name ? self->name : self->d.name, buf);
    return LOOM_EINVAL;
}

static int32_t api_route_add_flags(loom_plugin *self, const char *method, const char *pattern,
                                   loom_handler_fn fn, void *ud, const char *name, uint32_t flags)
{
    if (!self->in_init) return LOOM_ESTATE;
    if (!method || !pattern || !fn || (flags & ~(uint32_t)LOOM_ROUTE_DECODE_BODY))
        return LOOM_EINVAL;
    /* Check the pattern now, so init fails with the reason rather than the
     * snapshot later. */
    loom__router *probe = loom__router_new();
    loom__route_target t = {(void *)fn, ud, self, NULL, flags, NULL};
    char err[256];
    int bad = probe ? loom__router_add(probe, method, pattern, &t, err, sizeof err) : -1;
    loom__router_free(probe);
    if (bad) return set_error(self, "route %s: %s", pattern, probe ? err : "out of memory");
    loom__reg_route *rs = realloc(self->routes, (self->nroutes + 1) * sizeof *rs);
    if (!rs) return LOOM_ENOMEM;
    self->routes = rs;
    loom__reg_route *r = &rs[self->nroutes++];
    r->method = strdup(method);
    r->pattern = strdup(pattern);
    r->name = name ? strdup(name) : NULL;
    r->fn = fn;
    r->ud = ud;
    r->flags = flags;
    return LOOM_OK;
}

static int32_t api_route_add(loom_plugin *self, const char *method, const char *pattern,
                             loom_handler_fn fn, void *ud, const char *name)
{
    return api_route_add_flags(self, method, pattern, fn, ud, name, 0);
}

static int32_t api_middleware_add(loom_plugin *self, const loom_middleware_def *def)
{
    if (!self->in_init) return LOOM_ESTATE;
    loom_middleware_def d;
    memset(&d, 0, sizeof d);
    if (!def || def->size < offsetof(loom_middleware_def, ud)) return LOOM_EINVAL;
    memcpy(&d, def, def->size < sizeof d ? def->size : sizeof d);
    if (!d.name || !*d.name || d.order > LOOM_ORDER_LAST) return LOOM_EINVAL;
    loom__reg_mw *ms = realloc(self->mws, (self->nmws + 1) * sizeof *ms);
    if (!ms) return LOOM_ENOMEM;
    self->mws = ms;
    loom__reg_mw *m = &ms[self->nmws++];
    memset(m, 0, sizeof *m);
    m->owner = self;
    m->name = strdup(d.name);
    m->before = d.before ? strdup(d.before) : NULL;
    m->after = d.after ? strdup(d.after) : NULL;
    m->order = d.order;
    m->on_request = d.on_request;
    m->on_response = d.on_response;
    m->ud = d.ud;
    return LOOM_OK;
}

/* Blobs are kept by the host per plugin name, so the next version finds the
 * latest one whenever it loads, even while the old version still drains. */
static int32_t api_state_put(loom_plugin *self, const void *data, size_t len)
{
    loom__host *h = self->host;
    if (!h || !self->name) return LOOM_ESTATE;
    if (len > (64u << 20)) return LOOM_ELIMIT;
    void *copy = malloc(len ? len : 1);
    if (!copy) return LOOM_ENOMEM;
    if (len) memcpy(copy, data, len);
    for (size_t i = 0; i < h->nstates; i++)
        if (strcmp(h->states[i].name, self->name) == 0) {
            free(h->states[i].data);
            h->states[i].data = copy;
            h->states[i].len = len;
            return LOOM_OK;
        }
    void *ns = realloc(h->states, (h->nstates + 1) * sizeof *h->states);
    if (!ns) {
        free(copy);
        return LOOM_ENOMEM;
    }
    h->states = ns;
    h->states[h->nstates].name = strdup(self->name);
    if (!h->states[h->nstates].name) {
        free(copy);
        return LOOM_ENOMEM;
    }
    h->states[h->nstates].data = copy;
    h->states[h->nstates].len = len;
    h->nstates++;
    return LOOM_OK;
}

static const void *api_state_get(loom_plugin *self, size_t *len)
{
    loom__host *h = self->host;
    if (len) *len = 0;
    if (!h || !self->name) return NULL;
    for (size_t i = 0; i < h->nstates; i++)
        if (strcmp(h->states[i].name, self->name) == 0) {
            if (len) *len = h->states[i].len;
            return h->states[i].data;
        }
    return NULL;
}

/* ---- request ---- */

static const char *api_req_method(loom_req *r)
{
    return r->method;
}

static const char *api_req_path(loom_req *r, size_t *len)
{
    if (len) *len = CTX(r)->path_len;
    return CTX(r)->path;
}

static const char *api_req_raw_path(loom_req *r, size_t *len)
{
    if (len) *len = r->path_len;
    if (r->path[r->path_len] == '\0') return r->path;
    return loom__arena_strndup(&r->arena, r->path, r->path_len);
}

static const char *api_req_query_string(loom_req *r, size_t *len)
{
    if (len) *len = r->query_len;
    return r->query;
}

static const char *api_req_query(loom_req *r, const char *name, uint32_t idx, size_t *len)
{
    if (!r->query || !name) return NULL;
    return loom__urlencoded_get(r, r->query, r->query_len, name, idx, len);
}

static const char *api_req_header(loom_req *r, const char *name, uint32_t idx, size_t *len)
{
    size_t nl = name ? strlen(name) : 0;
    for (uint32_t i = 0; i < r->nheaders; i++) {
        loom__header *h = &r->headers[i];
        if (h->name_len == nl && loom__strncaseeq(h->name, name, nl) && idx-- == 0) {
            if (len) *len = h->value_len;
            return h->value;
        }
    }
    return NULL;
}

static uint32_t api_req_header_count(loom_req *r)
{
    return r->nheaders;
}

static int32_t api_req_header_at(loom_req *r, uint32_t i, const char **name, const char **value,
                                 size_t *vlen)
{
    if (i >= r->nheaders) return LOOM_ENOTFOUND;
    if (name) *name = r->headers[i].name;
    if (value) *value = r->headers[i].value;
    if (vlen) *vlen = r->headers[i].value_len;
    return LOOM_OK;
}

static const char *api_req_cookie(loom_req *r, const char *name, size_t *len)
{
    return name ? loom__cookie_get(r, name, len) : NULL;
}

static const char *api_req_match(loom_req *r, const char *name, size_t *len)
{
    loom__rctx *x = CTX(r);
    for (uint32_t i = 0; i < x->ncaps; i++)
        if (strcmp(x->caps[i].name, name) == 0)
            return loom__pct_decode(r, x->caps[i].value, x->caps[i].len, 0, len);
    return NULL;
}

static const char *api_req_remote(loom_req *r)
{
    return loom__dispatch_remote(r);
}

static const char *api_req_scheme(loom_req *r)
{
    return r->tls ? "https" : "http";
}

static const char *api_req_tls(loom_req *r, int32_t what)
{
    char buf[1024];
    const char *v = loom__req_tls_info(r, what, buf, sizeof buf);
    if (!v) return NULL;
    size_t n = strlen(v);
    char *out = loom__arena_alloc(&r->arena, n + 1);
    if (!out) return NULL;
    memcpy(out, v, n + 1);
    return out;
}

static const void *api_req_body(loom_req *r, size_t *len)
{
    if (len) *len = r->body.len;
    return r->body.data ? r->body.data : "";
}

static void keep_json(loom_req *r, json_t *j)
{
    loom__rctx *x = CTX(r);
    json_t **a = loom__arena_alloc(&r->arena, (x->njsons + 1) * sizeof *a);
    if (!a) {
        json_decref(j);
        return;
    }
    if (x->njsons) memcpy(a, x->jsons, x->njsons * sizeof *a);
    a[x->njsons++] = j;
    x->jsons = a;
}

static int32_t api_json_parse(loom_req *r, const char *text, size_t len, const loom_json **out,
                              char *err, size_t errlen)
{
    json_error_t je;
    json_t *j = json_loadb(text, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &je);
    if (!j) {
        if (err && errlen)
            snprintf(err, errlen, "%s at line %d column %d", je.text, je.line, je.column);
        return LOOM_EINVAL;
    }
    keep_json(r, j);
    *out = (const loom_json *)j;
    return LOOM_OK;
}

static int32_t api_req_json(loom_req *r, const loom_json **out)
{
    char why[200], msg[256];
    if (r->body.len == 0) {
        loom__dispatch_error(r, 400, "invalid JSON body: the body is empty");
        return LOOM_EBADREQ;
    }
    if (api_json_parse(r, r->body.data, r->body.len, out, why, sizeof why) == 0) return LOOM_OK;
    snprintf(msg, sizeof msg, "invalid JSON body: %s", why);
    loom__dispatch_error(r, 400, msg);
    return LOOM_EBADREQ;
}

static const char *api_req_form(loom_req *r, const char *name, uint32_t idx, size_t *len)
{
    size_t cl;
    const char *ct = loom__req_header(r, "content-type", 12, &cl);
    if (!ct || !name) return NULL;
    if (cl >= 33 && loom__strncaseeq(ct, "application/x-www-form-urlencoded", 33))
        return r->body.data ? loom__urlencoded_get(r, r->body.data, r->body.len, name, idx, len)
                            : NULL;
    const char *fn, *data;
    size_t dl;
    for (uint32_t k = idx;; k++) {
        if (loom__multipart_get(r, name, k, &fn, NULL, &data, &dl)) return NULL;
        if (fn) continue; /* files are read with loom_req_form_file */
        if (len) *len = dl;
        return loom__arena_strndup(&r->arena, data, dl);
    }
}

static int32_t api_req_form_file(loom_req *r, const char *name, const char **filename,
                                 const char **content_type, const void **data, size_t *len)
{
    const char *fn, *ct, *d;
    size_t dl;
    for (uint32_t k = 0;; k++) {
        if (loom__multipart_get(r, name, k, &fn, &ct, &d, &dl)) return LOOM_ENOTFOUND;
        if (!fn) continue;
        if (filename) *filename = fn;
        if (content_type) *content_type = ct ? ct : "application/octet-stream";
        if (data) *data = d;
        if (len) *len = dl;
        return LOOM_OK;
    }
}

static void *api_req_alloc(loom_req *r, size_t size)
{
    return loom__arena_alloc(&r->arena, size);
}

static int32_t api_req_on_abort(loom_req *r, loom_abort_fn fn, void *ud)
{
    CTX(r)->abort_fn = fn;
    CTX(r)->abort_ud = ud;
    return LOOM_OK;
}

static uint64_t api_req_start_ns(loom_req *r)
{
    return CTX(r)->start_ns;
}

static const char *api_req_http_version(loom_req *r)
{
    if (r->http_major == 2) return "HTTP/2.0";
    return r->http_minor == 0 ? "HTTP/1.0" : "HTTP/1.1";
}

static int32_t api_req_set_path(loom_req *r, const char *path)
{
    if (!path || path[0] != '/') return LOOM_EINVAL;
    size_t n = strlen(path);
    char *p = loom__arena_strndup(&r->arena, path, n);
    if (!p) return LOOM_ENOMEM;
    CTX(r)->path = p;
    CTX(r)->path_len = n;
    return LOOM_OK;
}

static int32_t api_req_header_set(loom_req *r, const char *name, const char *value)
{
    if (!name) return LOOM_EINVAL;
    size_t nl = strlen(name), vl = value ? strlen(value) : 0;
    for (size_t i = 0; i < vl; i++)
        if (value[i] == '\r' || value[i] == '\n') return LOOM_EINVAL;
    loom__header *h = loom__arena_alloc(&r->arena, (r->nheaders + 1) * sizeof *h);
    if (!h) return LOOM_ENOMEM;
    uint32_t n = 0;
    for (uint32_t i = 0; i < r->nheaders; i++)
        if (!(r->headers[i].name_len == nl && loom__strncaseeq(r->headers[i].name, name, nl)))
            h[n++] = r->headers[i];
    if (value) {
        h[n].name = loom__arena_strndup(&r->arena, name, nl);
        h[n].value = loom__arena_strndup(&r->arena, value, vl);
        h[n].name_len = (uint32_t)nl;
        h[n].value_len = (uint32_t)vl;
        if (!h[n].name || !h[n].value) return LOOM_ENOMEM;
        n++;
    }
    r->headers = h;
    r->nheaders = r->cap_headers = n;
    return LOOM_OK;
}

static int32_t api_url_for(loom_req *r, const char *name, const char *const *params, uint32_t n,
                           char *out, size_t outlen)
{
    int rc = loom__router_url_for(CTX(r)->snap->router, name, params, n, out, outlen);
    return rc == 0 ? LOOM_OK : rc == -1 ? LOOM_ENOTFOUND : rc == -2 ? LOOM_EINVAL : LOOM_ELIMIT;
}

/* ---- response ---- */

static int32_t api_resp_status(loom_req *r, int32_t status)
{
    if (r->resp.head_sent) return LOOM_ESTATE;
    if (status < 200 || status > 599) return LOOM_EINVAL;
    r->resp.status = status;
    return LOOM_OK;
}

static int32_t api_resp_get_status(loom_req *r)
{
    return r->resp.status ? r->resp.status : 200;
}

static int32_t api_resp_header_add(loom_req *r, const char *name, const char *value)
{
    if (r->resp.head_sent) return LOOM_ESTATE;
    if (!name || !value) return LOOM_EINVAL;
    return loom__resp_header_add(r, name, strlen(name), value, strlen(value)) ? LOOM_EINVAL
                                                                              : LOOM_OK;
}

static int32_t api_resp_header_set(loom_req *r, const char *name, const char *value)
{
    if (r->resp.head_sent) return LOOM_ESTATE;
    if (!name) return LOOM_EINVAL;
    return loom__resp_header_set(r, name, strlen(name), value, value ? strlen(value) : 0)
               ? LOOM_EINVAL
               : LOOM_OK;
}

static const char *api_resp_header_get(loom_req *r, const char *name)
{
    return name ? loom__resp_header_get(r, name, strlen(name), NULL) : NULL;
}

static int32_t api_resp_body(loom_req *r, const void *data, size_t len)
{
    if (r->resp.head_sent || loom__filter_busy(r)) return LOOM_ESTATE;
    return loom__resp_body_copy(r, data, len) ? LOOM_ENOMEM : LOOM_OK;
}

static int32_t api_resp_file(loom_req *r, int32_t fd, uint64_t offset, uint64_t len)
{
    if (fd < 0) return LOOM_EINVAL;
    if (r->resp.head_sent || CTX(r)->responded) {
        close(fd);
        return LOOM_ESTATE;
    }
    loom__resp_file(r, fd, offset, len);
    return LOOM_OK;
}

static const void *api_resp_get_body(loom_req *r, size_t *len)
{
    if (len) *len = r->resp.body_len;
    return r->resp.body;
}

static int cookie_octets(const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c <= 0x20 || c >= 0x7f || c == '"' || c == ',' || c == ';' || c == '\\') return 0;
    }
    return 1;
}

static int32_t api_resp_set_cookie(loom_req *r, const loom_cookie *cookie)
{
    loom_cookie c;
    memset(&c, 0, sizeof c);
    if (!cookie || cookie->size < offsetof(loom_cookie, same_site)) return LOOM_EINVAL;
    memcpy(&c, cookie, cookie->size < sizeof c ? cookie->size : sizeof c);
    if (!c.name || !*c.name || !cookie_octets(c.name) || strchr(c.name, '=')) return LOOM_EINVAL;
    const char *value = c.value ? c.value : "";
    if (!cookie_octets(value)) return LOOM_EINVAL;
    if ((c.path && !cookie_octets(c.path)) || (c.domain && !cookie_octets(c.domain)))
        return LOOM_EINVAL;
    if (c.same_site && strcmp(c.same_site, "Lax") && strcmp(c.same_site, "Strict") &&
        strcmp(c.same_site, "None"))
        return LOOM_EINVAL;
    loom__buf b = {0};
    loom__buf_printf(&b, "%s=%s; Path=%s", c.name, value, c.path ? c.path : "/");
    if (c.domain) loom__buf_printf(&b, "; Domain=%s", c.domain);
    if (c.flags & LOOM_COOKIE_MAX_AGE) loom__buf_printf(&b, "; Max-Age=%lld", (long long)c.max_age);
    if (c.flags & LOOM_COOKIE_EXPIRES) {
        char d[32];
        loom__http_date(c.expires, d);
        loom__buf_printf(&b, "; Expires=%s", d);
    }
    if (c.flags & LOOM_COOKIE_SECURE) loom__buf_puts(&b, "; Secure");
    if (c.flags & LOOM_COOKIE_HTTP_ONLY) loom__buf_puts(&b, "; HttpOnly");
    if (c.same_site) loom__buf_printf(&b, "; SameSite=%s", c.same_site);
    if (c.flags & LOOM_COOKIE_PARTITIONED) loom__buf_puts(&b, "; Partitioned");
    int rc = b.data ? loom__resp_header_add(r, "Set-Cookie", 10, b.data, b.len) : -1;
    loom__buf_free(&b);
    return rc ? LOOM_EINVAL : LOOM_OK;
}

static int32_t api_respond(loom_req *r)
{
    return loom__dispatch_respond(r);
}

static int32_t api_resp_error(loom_req *r, int32_t status, const char *message)
{
    return loom__dispatch_error(r, status, message);
}

static int32_t api_stream_start(loom_req *r)
{
    if (CTX(r)->responded) return LOOM_ESTATE;
    if (CTX(r)->aborted) return LOOM_EGONE;
    r->resp.streaming = 1; /* the response phase sees a streamed body (size -1) */
    loom__dispatch_response_phase(r);
    return loom__req_stream_head(r) ? LOOM_EGONE : LOOM_OK;
}

static int32_t api_stream_write(loom_req *r, const void *data, size_t len)
{
    if (CTX(r)->responded) return LOOM_ESTATE;
    if (CTX(r)->aborted) return LOOM_EGONE;
    if (CTX(r)->sse) return LOOM_ESTATE; /* an event stream writes with loom_sse_send */
    if (!r->resp.head_sent) {
        r->resp.streaming = 1;
        loom__dispatch_response_phase(r);
        if (loom__req_stream_head(r)) return LOOM_EGONE;
    }
    if (len == 0) return LOOM_OK;
    return loom__filter_chunk(r, data, len, 0);
}

static int32_t api_stream_end(loom_req *r)
{
    if (!r->resp.head_sent && !CTX(r)->aborted) {
        int32_t rc = api_stream_start(r);
        if (rc && rc != LOOM_EGONE) return rc;
    }
    return loom__dispatch_respond(r);
}

static int32_t api_resp_filter(loom_req *r, const loom_body_filter *filter)
{
    if (CTX(r)->responded && !CTX(r)->in_call) return LOOM_ESTATE;
    return loom__filter_install(r, filter);
}

static int64_t api_resp_body_size(loom_req *r)
{
    if (r->resp.streaming || r->resp.head_sent) return -1;
    return r->resp.has_file ? (int64_t)r->resp.file_len : (int64_t)r->resp.body_len;
}

static uint64_t api_server_requests(loom_plugin *self)
{
    loom__host *h = self ? self->host : NULL;
    return h && h->w ? h->w->requests : 0;
}

static int32_t api_next(loom_req *r)
{
    return loom__dispatch_next(r);
}

/* ---- async ---- */

static void timer_closed(uv_handle_t *h)
{
    free(h->data);
}

static void timer_unlink(loom_timer *t)
{
    if (t->prev)
        t->prev->next = t->next;
    else if (t->owner->timers == t)
        t->owner->timers = t->next;
    if (t->next) t->next->prev = t->prev;
    t->prev = t->next = NULL;
}

static void timer_fire(uv_timer_t *ut)
{
    loom_timer *t = ut->data;
    if (!t->repeat) {
        timer_unlink(t);
        t->stopped = 1;
        t->fn(t, t->ud);
        uv_close((uv_handle_t *)&t->t, timer_closed);
        return;
    }
    t->fn(t, t->ud);
}

static loom_timer *api_timer_start(loom_plugin *self, uint64_t ms, uint64_t repeat_ms,
                                   loom_timer_fn fn, void *ud)
{
    if (!fn || self->unloading || !self->host) return NULL;
    loom_timer *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    uv_timer_init(self->host->loop, &t->t);
    t->t.data = t;
    t->owner = self;
    t->fn = fn;
    t->ud = ud;
    t->repeat = repeat_ms != 0;
    t->next = self->timers;
    if (self->timers) self->timers->prev = t;
    self->timers = t;
    uv_timer_start(&t->t, timer_fire, ms, repeat_ms);
    return t;
}

static void api_timer_stop(loom_timer *t)
{
    if (!t || t->stopped) return;
    t->stopped = 1;
    timer_unlink(t);
    uv_timer_stop(&t->t);
    uv_close((uv_handle_t *)&t->t, timer_closed);
}

/* ---- descriptor watchers ---- */

static void io_closed(uv_handle_t *h)
{
    free(h->data);
}

static void io_unlink(loom_io *io)
{
    if (io->prev)
        io->prev->next = io->next;
    else if (io->owner->ios == io)
        io->owner->ios = io->next;
    if (io->next) io->next->prev = io->prev;
    io->prev = io->next = NULL;
}

static void io_fire(uv_poll_t *h, int status, int events)
{
    loom_io *io = h->data;
    if (io->stopped) return;
    /* libuv stops a poll handle that saw an error (POLLERR): the watcher
     * now watches nothing, so that loom_io_update with the same events
     * starts it again instead of being taken for "no change". */
    if (status < 0) io->events = 0;
    int32_t ev = status < 0 ? LOOM_EINVAL
                            : ((events & UV_READABLE) ? LOOM_IO_READ : 0) |
                                  ((events & UV_WRITABLE) ? LOOM_IO_WRITE : 0);
    io->fn(io, ev, io->ud);
}

static int uv_events(int32_t events)
{
    return ((events & LOOM_IO_READ) ? UV_READABLE : 0) |
           ((events & LOOM_IO_WRITE) ? UV_WRITABLE : 0);
}

static loom_io *api_io_start(loom_plugin *self, int32_t fd, int32_t events, loom_io_fn fn, void *ud)
{
    if (!fn || fd < 0 || !self || self->unloading || !self->host) return NULL;
    loom_io *io = calloc(1, sizeof *io);
    if (!io) return NULL;
    if (uv_poll_init_socket(self->host->loop, &io->poll, fd) < 0) {
        free(io);
        return NULL;
    }
    io->poll.data = io;
    io->owner = self;
    io->fn = fn;
    io->ud = ud;
    io->next = self->ios;
    if (self->ios) self->ios->prev = io;
    self->ios = io;
    io->events = uv_events(events);
    if (io->events) uv_poll_start(&io->poll, io->events, io_fire);
    return io;
}

static int32_t api_io_update(loom_io *io, int32_t events)
{
    if (!io || io->stopped) return LOOM_EINVAL;
    int ev = uv_events(events);
    if (ev == io->events) return LOOM_OK;
    io->events = ev;
    int rc = ev ? uv_poll_start(&io->poll, ev, io_fire) : uv_poll_stop(&io->poll);
    return rc < 0 ? LOOM_EINVAL : LOOM_OK;
}

static void api_io_stop(loom_io *io)
{
    if (!io || io->stopped) return;
    io->stopped = 1;
    io_unlink(io);
    uv_poll_stop(&io->poll);
    uv_close((uv_handle_t *)&io->poll, io_closed);
}

void loom__io_close_plugin(loom_plugin *p)
{
    while (p->ios) api_io_stop(p->ios);
}

typedef struct {
    uv_work_t w;
    loom_plugin *owner;
    loom_work_run_fn run;
    loom_work_done_fn done;
    void *ud;
    loom__mslot *m; /* the worker's metrics slot (queued/running jobs), or NULL */
    int ran;
} work_item;

static void work_run(uv_work_t *w)
{
    work_item *it = (work_item *)w;
    if (it->m) { /* on a pool thread: atomic, unlike the loop's counters */
        __atomic_fetch_sub(&it->m->pool_queued, 1, __ATOMIC_RELAXED);
        __atomic_fetch_add(&it->m->pool_running, 1, __ATOMIC_RELAXED);
    }
    it->ran = 1;
    it->run(it->ud);
}

static void work_after(uv_work_t *w, int status)
{
    work_item *it = (work_item *)w;
    loom_plugin *p = it->owner;
    p->works--;
    if (it->m)
        __atomic_fetch_sub(it->ran ? &it->m->pool_running : &it->m->pool_queued, 1,
                           __ATOMIC_RELAXED);
    if (it->done) it->done(it->ud, p->unloading || status == UV_ECANCELED);
    free(it);
    if (p->unloading && p->works == 0) {
        loom__host *h = p->host;
        for (size_t i = 0; i < h->nzombies; i++)
            if (h->zombies[i] == p) {
                h->zombies[i] = h->zombies[--h->nzombies];
                loom__plugin_finish_unload(p); /* fini, then dlclose */
                loom__host_free_if_done(h);
                break;
            }
    }
}

static int32_t api_work_queue(loom_plugin *self, loom_work_run_fn run, loom_work_done_fn done,
                              void *ud)
{
    if (!run || self->unloading || !self->host) return LOOM_EINVAL;
    work_item *it = calloc(1, sizeof *it);
    if (!it) return LOOM_ENOMEM;
    it->owner = self;
    it->run = run;
    it->done = done;
    it->ud = ud;
    it->m = self->host->w && self->host->w->metrics ? self->host->w->metrics->slot : NULL;
    if (it->m) __atomic_fetch_add(&it->m->pool_queued, 1, __ATOMIC_RELAXED);
    if (uv_queue_work(self->host->loop, &it->w, work_run, work_after) < 0) {
        if (it->m) __atomic_fetch_sub(&it->m->pool_queued, 1, __ATOMIC_RELAXED);
        free(it);
        return LOOM_EINVAL;
    }
    self->works++;
    return LOOM_OK;
}

static uint64_t api_now_ns(void)
{
    return uv_hrtime();
}

/* ---- JSON ---- */

#define J(j) ((json_t *)(j))

static int32_t api_json_type(const loom_json *j)
{
    if (!j) return LOOM_JSON_INVALID;
    switch (json_typeof(J(j))) {
    case JSON_OBJECT:
        return LOOM_JSON_OBJECT;
    case JSON_ARRAY:
        return LOOM_JSON_ARRAY;
    case JSON_STRING:
        return LOOM_JSON_STRING;
    case JSON_INTEGER:
        return LOOM_JSON_INTEGER;
    case JSON_REAL:
        return LOOM_JSON_REAL;
    case JSON_TRUE:
        return LOOM_JSON_TRUE;
    case JSON_FALSE:
        return LOOM_JSON_FALSE;
    case JSON_NULL:
        return LOOM_JSON_NULL;
    }
    return LOOM_JSON_INVALID;
}

static const loom_json *api_json_get(const loom_json *j, const char *key)
{
    return j && key ? (const loom_json *)json_object_get(J(j), key) : NULL;
}

static const loom_json *api_json_at(const loom_json *j, size_t idx)
{
    return j ? (const loom_json *)json_array_get(J(j), idx) : NULL;
}

static size_t api_json_size(const loom_json *j)
{
    if (!j) return 0;
    return json_is_object(J(j)) ? json_object_size(J(j)) : json_array_size(J(j));
}

static const char *api_json_string(const loom_json *j, size_t *len)
{
    if (!j || !json_is_string(J(j))) return NULL;
    if (len) *len = json_string_length(J(j));
    return json_string_value(J(j));
}

static int64_t api_json_integer(const loom_json *j)
{
    return j ? (int64_t)json_integer_value(J(j)) : 0;
}

static double api_json_real(const loom_json *j)
{
    return j ? json_number_value(J(j)) : 0.0;
}

static const char *api_json_key_at(const loom_json *j, size_t idx, const loom_json **value)
{
    if (!j || !json_is_object(J(j))) return NULL;
    const char *k;
    json_t *v;
    size_t i = 0;
    json_object_foreach(J(j), k, v)
    {
        if (i++ == idx) {
            if (value) *value = (const loom_json *)v;
            return k;
        }
    }
    return NULL;
}

static const char *api_json_dump(loom_req *r, const loom_json *j, size_t *len)
{
    if (!j) return NULL;
    char *t = json_dumps(J(j), JSON_COMPACT | JSON_ENCODE_ANY | JSON_PRESERVE_ORDER);
    if (!t) return NULL;
    size_t n = strlen(t);
    char *c = loom__arena_strndup(&r->arena, t, n);
    free(t);
    if (len) *len = n;
    return c;
}

const loom_host_api loom__api_table = {
    .size = sizeof(loom_host_api),
    .abi_major = LOOM_ABI_MAJOR,
    .abi_minor = LOOM_ABI_MINOR,
    .log = api_log,
    .config = api_config,
    .route_add = api_route_add,
    .middleware_add = api_middleware_add,
    .state_put = api_state_put,
    .state_get = api_state_get,
    .plugin_name = api_plugin_name,
    .req_method = api_req_method,
    .req_path = api_req_path,
    .req_raw_path = api_req_raw_path,
    .req_query_string = api_req_query_string,
    .req_query = api_req_query,
    .req_header = api_req_header,
    .req_header_count = api_req_header_count,
    .req_header_at = api_req_header_at,
    .req_cookie = api_req_cookie,
    .req_match = api_req_match,
    .req_remote = api_req_remote,
    .req_body = api_req_body,
    .req_json = api_req_json,
    .req_form = api_req_form,
    .req_form_file = api_req_form_file,
    .req_alloc = api_req_alloc,
    .req_on_abort = api_req_on_abort,
    .req_start_ns = api_req_start_ns,
    .req_http_version = api_req_http_version,
    .req_set_path = api_req_set_path,
    .req_header_set = api_req_header_set,
    .url_for = api_url_for,
    .resp_status = api_resp_status,
    .resp_get_status = api_resp_get_status,
    .resp_header_add = api_resp_header_add,
    .resp_header_set = api_resp_header_set,
    .resp_header_get = api_resp_header_get,
    .resp_body = api_resp_body,
    .resp_get_body = api_resp_get_body,
    .resp_set_cookie = api_resp_set_cookie,
    .respond = api_respond,
    .resp_error = api_resp_error,
    .resp_stream_start = api_stream_start,
    .resp_stream_write = api_stream_write,
    .resp_stream_end = api_stream_end,
    .next = api_next,
    .timer_start = api_timer_start,
    .timer_stop = api_timer_stop,
    .work_queue = api_work_queue,
    .now_ns = api_now_ns,
    .json_parse = api_json_parse,
    .json_type = api_json_type,
    .json_get = api_json_get,
    .json_at = api_json_at,
    .json_size = api_json_size,
    .json_string = api_json_string,
    .json_integer = api_json_integer,
    .json_real = api_json_real,
    .json_key_at = api_json_key_at,
    .json_dump = api_json_dump,
    .fetch = loom__api_fetch,
    .fetch_cancel = loom__api_fetch_cancel,
    .fetch_error = loom__api_fetch_error,
    .fetch_message = loom__api_fetch_message,
    .fetch_status = loom__api_fetch_status,
    .fetch_header = loom__api_fetch_header,
    .fetch_header_count = loom__api_fetch_header_count,
    .fetch_header_at = loom__api_fetch_header_at,
    .fetch_body = loom__api_fetch_body,
    .resp_file = api_resp_file,
    .session_store_register = loom__api_session_store_register,
    .session_load = loom__api_session_load,
    .session_get = loom__api_session_get,
    .session_set = loom__api_session_set,
    .session_regenerate = loom__api_session_regenerate,
    .session_invalidate = loom__api_session_invalidate,
    .session_is_new = loom__api_session_is_new,
    .io_start = api_io_start,
    .io_update = api_io_update,
    .io_stop = api_io_stop,
    .req_scheme = api_req_scheme,
    .req_tls = api_req_tls,
    .session_save = loom__api_session_save,

    .service_register = loom__api_service_register,
    .service_get = loom__api_service_get,
    .req_watch = loom__api_req_watch,

    .resp_filter = api_resp_filter,
    .resp_body_size = api_resp_body_size,
    .route_add_flags = api_route_add_flags,
    .sse_open = loom__sse_open,
    .sse_send = loom__sse_send,
    .sse_close = loom__sse_close,
    .sse_last_event_id = loom__sse_last_event_id,
    .sse_queued = loom__sse_queued,
    .server_requests = api_server_requests,

    .fetch_jar_new = loom__api_fetch_jar_new,
    .fetch_jar_free = loom__api_fetch_jar_free,
    .fetch_jar_cookies = loom__api_fetch_jar_cookies,

    .ws_accept = loom__api_ws_accept,
    .ws_send = loom__api_ws_send,
    .ws_close = loom__api_ws_close,
    .ws_set_user = loom__api_ws_set_user,
    .ws_user = loom__api_ws_user,
    .ws_protocol = loom__api_ws_protocol,
    .ws_queued = loom__api_ws_queued,
    .ws_subscribe = loom__api_ws_subscribe,
    .ws_unsubscribe = loom__api_ws_unsubscribe,
    .ws_publish = loom__api_ws_publish,
    .ws_connect = loom__api_ws_connect,
};
