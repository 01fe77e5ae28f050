/* Sessions (ABI 1.1): signed cookies in the core, data in a store plugin.
 *
 * The core owns what must be right once for everyone: the session ID (128
 * bits from getrandom(2)), the cookie (id.issued.expires.mac, the MAC an
 * HMAC-SHA256 over "id|issued|expires" with the newest key of the ring,
 * checked against every key with CRYPTO_memcmp), the idle and absolute
 * timeouts, and the rule that only changed sessions are written. A store
 * plugin (loom_session_store) only keeps JSON text under an ID until a time,
 * with (1.3) a version it compares and sets atomically; session_save.c builds
 * the no-lost-update saves on that.
 *
 * Sessions are loaded on demand (loom_session_load, the analogue of
 * aiohttp-session's `await get_session(request)`), so requests that do not
 * use them cost nothing; the save runs when the response is complete and
 * before it is sent (loom__session_before_send), so the next request of the
 * same client finds what this one wrote.
 *
 * Config, under "plugins": {"sessions": {...}}:
 *   keys              array of secrets, newest first (each >= 32 bytes); required
 *   store             the store's name: "sqlite" (default), "memory", "redis"
 *   enabled           false turns sessions off
 *   cookie_name       "loom_session"
 *   secure            false (true over TLS)   http_only  true   same_site "Lax"
 *   max_age           cookie Max-Age in s (0: a browser-session cookie; default 0)
 *   idle_timeout      s without a request before the session ends (1800)
 *   absolute_timeout  s after creation when it ends anyway (86400)
 *   max_size          bytes of session JSON (16384) */
#include "plugin/session.h"
#include "http/response.h"
#include "admin/metrics.h"
#include "util/log.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#define CTX(r) ((loom__rctx *)(r)->host_data)
#define ID_BYTES LOOM__SESS_ID_BYTES
#define ID_HEX LOOM__SESS_ID_HEX
#define MAX_KEYS 8
#define MAX_COOKIE 4096
#define MAC_HEX 64

typedef loom__sess_host sess_host;
typedef loom__sess sess;

static sess_host *shost(loom__host *h)
{
    return h ? h->sessions : NULL;
}

static void cfg_fail(sess_host *sh, const char *msg)
{
    loom__err("sessions: %s", msg);
    sh->configured = -1;
}

static int64_t get_int(json_t *o, const char *k, int64_t def)
{
    json_t *v = json_object_get(o, k);
    return json_is_integer(v) ? (int64_t)json_integer_value(v) : def;
}

static const char *const known_keys[] = {
    "keys",      "store",   "enabled",      "cookie_name",      "secure",   "http_only",
    "same_site", "max_age", "idle_timeout", "absolute_timeout", "max_size", NULL};

static void configure(loom__host *h, sess_host *sh)
{
    json_t *c = json_object_get(h->cfg->plugins, "sessions");
    if (!json_is_object(c) || json_is_false(json_object_get(c, "enabled"))) {
        sh->configured = -2; /* sessions are off */
        return;
    }
    const char *key;
    json_t *val;
    json_object_foreach(c, key, val)
    {
        size_t i = 0;
        while (known_keys[i] && strcmp(known_keys[i], key)) i++;
        if (!known_keys[i]) {
            char msg[200];
            snprintf(msg, sizeof msg,
                     "unknown key \"%.64s\" (see the sessions section of the README)", key);
            cfg_fail(sh, msg);
            return;
        }
    }
    json_t *keys = json_object_get(c, "keys");
    if (!json_is_array(keys) || json_array_size(keys) == 0 || json_array_size(keys) > MAX_KEYS) {
        cfg_fail(sh, "\"keys\" must be an array of 1 to 8 secrets (newest first)");
        return;
    }
    for (size_t i = 0; i < json_array_size(keys); i++) {
        const char *k = json_string_value(json_array_get(keys, i));
        if (!k || strlen(k) < 32) {
            cfg_fail(sh, "every entry of \"keys\" must be a string of at least 32 bytes");
            return;
        }
        sh->key_len[i] = strlen(k);
        sh->keys[i] = (unsigned char *)strdup(k);
        if (!sh->keys[i]) {
            cfg_fail(sh, "out of memory");
            return;
        }
        sh->nkeys = i + 1;
    }
    const char *s = json_string_value(json_object_get(c, "store"));
    snprintf(sh->store_name, sizeof sh->store_name, "%s", s ? s : "sqlite");
    s = json_string_value(json_object_get(c, "cookie_name"));
    snprintf(sh->cookie_name, sizeof sh->cookie_name, "%s", s ? s : "loom_session");
    for (const char *p = sh->cookie_name; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '_' || *p == '-')) {
            cfg_fail(sh, "\"cookie_name\" must be letters, digits, '_' or '-'");
            return;
        }
    sh->secure = json_is_true(json_object_get(c, "secure"));
    sh->http_only = !json_is_false(json_object_get(c, "http_only"));
    s = json_string_value(json_object_get(c, "same_site"));
    if (s && strcmp(s, "Lax") && strcmp(s, "Strict") && strcmp(s, "None")) {
        cfg_fail(sh, "\"same_site\" must be \"Lax\", \"Strict\" or \"None\"");
        return;
    }
    snprintf(sh->same_site, sizeof sh->same_site, "%s", s ? s : "Lax");
    if (!strcmp(sh->same_site, "None") && !sh->secure) {
        cfg_fail(sh, "\"same_site\": \"None\" needs \"secure\": true");
        return;
    }
    sh->max_age = get_int(c, "max_age", 0);
    sh->idle = get_int(c, "idle_timeout", 1800);
    sh->absolute = get_int(c, "absolute_timeout", 86400);
    int64_t ms = get_int(c, "max_size", 16384);
    if (sh->idle <= 0 || sh->absolute <= 0 || sh->max_age < 0 || ms <= 0 || ms > (1 << 20)) {
        cfg_fail(sh, "timeouts must be > 0 and \"max_size\" in 1..1048576");
        return;
    }
    sh->max_size = (size_t)ms;
    sh->configured = 1;
}

static sess_host *ensure_host(loom__host *h)
{
    if (!h->sessions) {
        h->sessions = calloc(1, sizeof(sess_host));
        if (!h->sessions) return NULL;
    }
    sess_host *sh = h->sessions;
    if (!sh->configured) configure(h, sh);
    return sh;
}

/* Ready to serve sessions: configured and a store registered. */
static sess_host *ready(loom_req *r)
{
    loom__worker *w = loom__req_worker(r);
    if (!w || !w->host) return NULL;
    sess_host *sh = ensure_host(w->host);
    if (!sh || sh->configured != 1 || !sh->owner) return NULL;
    return sh;
}

loom__sess_host *loom__sess_host_of(loom_req *r)
{
    loom__worker *w = loom__req_worker(r);
    return w ? shost(w->host) : NULL;
}

loom__sess *loom__sess_of(loom_req *r)
{
    return CTX(r) ? CTX(r)->session : NULL;
}

void loom__session_host_free(loom__host *h)
{
    sess_host *sh = shost(h);
    if (!sh) return;
    for (size_t i = 0; i < sh->nkeys; i++) {
        OPENSSL_cleanse(sh->keys[i], sh->key_len[i]);
        free(sh->keys[i]);
    }
    free(sh->name);
    free(sh);
    h->sessions = NULL;
}

void loom__session_store_drop(loom_plugin *p)
{
    sess_host *sh = p->host ? shost(p->host) : NULL;
    if (sh && sh->owner == p) {
        sh->owner = NULL;
        sh->versioned = 0;
        memset(&sh->store, 0, sizeof sh->store);
    }
}

int32_t loom__api_session_store_register(loom_plugin *self, const loom_session_store *store)
{
    if (!self || !self->host || !store || store->size < offsetof(loom_session_store, ud))
        return LOOM_EINVAL;
    loom_session_store s;
    memset(&s, 0, sizeof s);
    memcpy(&s, store, store->size < sizeof s ? store->size : sizeof s);
    int versioned = s.load_versioned && s.save_if && s.destroy_if;
    if (!s.name || !*s.name || !s.destroy || !s.touch || (!versioned && (!s.load || !s.save)))
        return LOOM_EINVAL;
    sess_host *sh = ensure_host(self->host);
    if (!sh) return LOOM_ENOMEM;
    if (sh->configured == -2) return LOOM_ESTATE;              /* sessions are off */
    if (sh->configured != 1) return LOOM_EINVAL;               /* the reason is logged */
    if (strcmp(sh->store_name, s.name)) return LOOM_ENOTFOUND; /* not the chosen store */
    const loom__config *cfg = self->host->cfg;
    if ((s.flags & LOOM_SESSION_STORE_PROCESS_LOCAL) && cfg->workers > 1) {
        loom__err("sessions: store \"%s\" (plugin %s) keeps sessions inside one process, so it "
                  "cannot serve %d workers: run with --single (or --workers 1), or use the sqlite "
                  "or redis store",
                  s.name, self->name, cfg->workers);
        return LOOM_EINVAL;
    }
    char *n = strdup(s.name);
    if (!n) return LOOM_ENOMEM;
    free(sh->name);
    sh->name = n;
    s.name = sh->name;
    sh->store = s;
    sh->versioned = versioned;
    sh->owner = self;
    if (!versioned && (!self->host->w || self->host->w->id == 0))
        loom__warn("sessions: store \"%s\" (plugin %s) has no versioned operations (a store built "
                   "for ABI 1.1): each save writes the whole session and the last writer wins, so "
                   "concurrent requests on one session can lose updates",
                   s.name, self->name);
    return LOOM_OK;
}

void loom__session_startup_check(loom__host *h)
{
    if (!h || (h->w && h->w->id != 0)) return; /* one line per server, not per worker */
    sess_host *sh = ensure_host(h);
    if (!sh) return;
    char users[256] = "";
    size_t o = 0;
    for (size_t i = 0; i < h->nplugins; i++) {
        if (!(h->plugins[i]->d.flags & LOOM_PLUGIN_USES_SESSIONS)) continue;
        int w = snprintf(users + o, sizeof users - o, "%s%s", o ? ", " : "", h->plugins[i]->name);
        if (w > 0 && (size_t)w < sizeof users - o) o += (size_t)w;
    }
    if (sh->configured == -2 && o)
        loom__warn("sessions: plugin %s uses sessions, but they are not configured: its session "
                   "routes answer 503 (add \"sessions\": {\"keys\": [...]} and a store under "
                   "\"plugins\"; see the README)",
                   users);
    else if (sh->configured == 1 && !sh->owner)
        loom__warn("sessions: the store \"%s\" is configured, but no loaded plugin provides it: "
                   "session routes answer 503 (put session-%s.so in the plugins directory)",
                   sh->store_name, sh->store_name);
}

const char *loom__sess_errname(int32_t code)
{
    switch (code) {
    case LOOM_EINVAL:
        return "LOOM_EINVAL";
    case LOOM_ENOMEM:
        return "LOOM_ENOMEM";
    case LOOM_ESTATE:
        return "LOOM_ESTATE";
    case LOOM_EGONE:
        return "LOOM_EGONE";
    case LOOM_ENOTFOUND:
        return "LOOM_ENOTFOUND";
    case LOOM_ELIMIT:
        return "LOOM_ELIMIT";
    case LOOM_ENOSYS:
        return "LOOM_ENOSYS";
    case LOOM_ECONFLICT:
        return "LOOM_ECONFLICT";
    case LOOM_EUNAVAIL:
        return "LOOM_EUNAVAIL";
    default:
        return "an unknown error";
    }
}

void loom__sess_log_failure(loom__sess_host *sh, int op, int32_t code, loom_req *r)
{
    static const char *const what[] = {"load a session", "save a session", "delete a session"};
    int64_t now = (int64_t)time(NULL);
    if (now == sh->fail_logged_at[op]) {
        sh->fail_quiet[op]++; /* a store that is down fails every request: one line a second */
        return;
    }
    char more[64] = "";
    if (sh->fail_quiet[op])
        snprintf(more, sizeof more, " (and %llu more since the last line)",
                 (unsigned long long)sh->fail_quiet[op]);
    loom__err("sessions: store \"%s\" could not %s (%s, %d) for %s %s: no session, 503%s",
              sh->name ? sh->name : "-", what[op], loom__sess_errname(code), (int)code, r->method,
              r->target, more);
    sh->fail_logged_at[op] = now;
    sh->fail_quiet[op] = 0;
}

/* ---- the cookie ---- */

static void hex(const unsigned char *b, size_t n, char *out)
{
    static const char d[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = d[b[i] >> 4];
        out[2 * i + 1] = d[b[i] & 15];
    }
    out[2 * n] = 0;
}

int loom__sess_new_id(char out[ID_HEX + 1])
{
    unsigned char b[ID_BYTES];
    size_t got = 0;
    while (got < sizeof b) {
        ssize_t n = getrandom(b + got, sizeof b - got, 0);
        if (n < 0) return -1;
        got += (size_t)n;
    }
    hex(b, sizeof b, out);
    return 0;
}

static void mac(const sess_host *sh, size_t k, const char *id, int64_t issued, int64_t expires,
                unsigned char out[32])
{
    char msg[128];
    int n = snprintf(msg, sizeof msg, "%s|%lld|%lld", id, (long long)issued, (long long)expires);
    unsigned int len = 32;
    HMAC(EVP_sha256(), sh->keys[k], (int)sh->key_len[k], (unsigned char *)msg, (size_t)n, out,
         &len);
}

static int unhex(const char *s, size_t n, unsigned char *out)
{
    for (size_t i = 0; i < n / 2; i++) {
        int v = 0;
        for (int j = 0; j < 2; j++) {
            char c = s[2 * i + (size_t)j];
            int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
            if (d < 0) return -1;
            v = v * 16 + d;
        }
        out[i] = (unsigned char)v;
    }
    return 0;
}

static int parse_num(const char *s, size_t n, int64_t *out)
{
    if (n == 0 || n > 18) return -1;
    int64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return -1;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}

/* Checks a cookie value; fills id/issued/expires when valid and current. */
static int verify(const sess_host *sh, const char *v, size_t len, sess *s, int64_t now)
{
    if (len > MAX_COOKIE) return -1;
    const char *p[4];
    size_t l[4];
    size_t k = 0;
    const char *start = v;
    for (size_t i = 0; i <= len && k < 4; i++) {
        if (i == len || v[i] == '.') {
            p[k] = start;
            l[k] = (size_t)(v + i - start);
            k++;
            start = v + i + 1;
        }
    }
    if (k != 4 || start != v + len + 1) return -1;
    if (l[0] != ID_HEX || l[3] != MAC_HEX) return -1;
    for (size_t i = 0; i < ID_HEX; i++)
        if (!((p[0][i] >= '0' && p[0][i] <= '9') || (p[0][i] >= 'a' && p[0][i] <= 'f'))) return -1;
    int64_t issued, expires;
    if (parse_num(p[1], l[1], &issued) || parse_num(p[2], l[2], &expires)) return -1;
    unsigned char got[32];
    if (unhex(p[3], MAC_HEX, got)) return -1;
    char id[ID_HEX + 1];
    memcpy(id, p[0], ID_HEX);
    id[ID_HEX] = 0;
    int ok = 0;
    for (size_t i = 0; i < sh->nkeys; i++) {
        unsigned char want[32];
        mac(sh, i, id, issued, expires, want);
        if (CRYPTO_memcmp(want, got, 32) == 0) ok = 1; /* no early exit: same time for all */
    }
    if (!ok) return -1;
    if (now >= expires || now >= issued + sh->absolute || issued > now + 60) return -1;
    memcpy(s->id, id, sizeof id);
    s->issued = issued;
    s->expires = expires;
    return 0;
}

int64_t loom__sess_expiry(const sess_host *sh, const sess *s, int64_t now)
{
    int64_t e = now + sh->idle;
    if (e > s->issued + sh->absolute) e = s->issued + sh->absolute;
    return e;
}

void loom__sess_set_cookie(loom_req *r, const sess_host *sh, sess *s, int clear)
{
    /* Set once per value: a commit followed by the save at the end would
     * otherwise send the same cookie twice. */
    if (!clear && !strcmp(s->sent_id, s->id) && s->sent_expires == s->expires) return;
    char value[ID_HEX + 2 * 20 + MAC_HEX + 8];
    loom_cookie c;
    memset(&c, 0, sizeof c);
    c.size = sizeof c;
    c.name = sh->cookie_name;
    c.same_site = sh->same_site;
    /* Secure when configured, and always when the request came over TLS. */
    c.flags = (sh->secure || r->tls ? LOOM_COOKIE_SECURE : 0) |
              (sh->http_only ? LOOM_COOKIE_HTTP_ONLY : 0);
    if (clear) {
        c.value = "";
        c.flags |= LOOM_COOKIE_MAX_AGE;
        c.max_age = 0;
    } else {
        unsigned char m[32];
        char mh[MAC_HEX + 1];
        mac(sh, 0, s->id, s->issued, s->expires, m);
        hex(m, 32, mh);
        snprintf(value, sizeof value, "%s.%lld.%lld.%s", s->id, (long long)s->issued,
                 (long long)s->expires, mh);
        c.value = value;
        memcpy(s->sent_id, s->id, sizeof s->id);
        s->sent_expires = s->expires;
        if (sh->max_age > 0) {
            c.flags |= LOOM_COOKIE_MAX_AGE;
            c.max_age = sh->max_age;
        }
    }
    loom__api_table.resp_set_cookie(r, &c);
    loom__resp_header_set(r, "Cache-Control", 13, "no-store", 8);
}

/* ---- loading ---- */

static void fresh(sess *s)
{
    json_decref(s->data);
    json_decref(s->base);
    s->base = NULL;
    s->data = json_object();
    s->id[0] = 0;
    s->version = 0;
    s->is_new = 1;
}

static void finish_load(sess *s, int32_t status)
{
    s->loaded = 1;
    s->loading = 0;
    if (s->waiting) {
        /* Answered without waiting for the session: nobody is told; the
         * response that was held for this load goes now. */
        s->finished = 1;
        loom__dispatch_complete(s->req);
        return;
    }
    if (status) s->failed = status; /* the response may not pass for a success */
    loom__rctx *x = CTX(s->req);
    x->in_call++;
    s->fn(s->req, status, s->ud);
    x->in_call--;
    if (x->responded && x->in_call == 0) loom__dispatch_complete(s->req);
}

/* The store failed: there is no session (an empty one that cannot change). */
static void unavailable(sess *s, int32_t code)
{
    fresh(s);
    s->is_new = 0;
    s->unavailable = 1;
    sess_host *sh = loom__sess_host_of(s->req);
    if (sh && !s->waiting) loom__sess_log_failure(sh, LOOM__SESS_OP_LOAD, code, s->req);
}

static void loaded(sess *s, int32_t status, const char *data, size_t len, uint64_t version)
{
    json_t *j = NULL;
    loom__metrics_session(CTX(s->req)->mw, LOOM__S_LOAD, status != 0 && status != LOOM_ENOTFOUND);
    if (status == 0) j = json_loadb(data, len, 0, NULL);
    if (j && json_is_object(j)) {
        json_decref(s->base);
        json_decref(s->data);
        s->base = j;
        s->data = json_copy(j); /* shallow: values are replaced, never changed in place */
        s->version = version;
        s->is_new = 0;
        if (!s->data) {
            unavailable(s, LOOM_ENOMEM);
            finish_load(s, LOOM_EUNAVAIL);
            return;
        }
        /* Keep an active session alive: re-issue the cookie (and touch the
         * store) once a quarter of the idle timeout has passed. */
        sess_host *sh = loom__sess_host_of(s->req);
        int64_t now = (int64_t)time(NULL);
        if (sh && s->expires - now < sh->idle - sh->idle / 4 &&
            loom__sess_expiry(sh, s, now) > s->expires)
            s->refresh = 1;
    } else if (status == 0 || status == LOOM_ENOTFOUND) {
        /* Unknown or expired (or unreadable: the store answered, the data is
         * bad): a fresh empty session, under a new ID when it is saved. */
        if (j || status == 0)
            loom__warn("sessions: a stored session is not a JSON object; a fresh one is used");
        json_decref(j);
        fresh(s);
    } else {
        unavailable(s, status);
        finish_load(s, LOOM_EUNAVAIL);
        return;
    }
    finish_load(s, 0);
}

static void on_loaded(void *ctx, int32_t status, const char *data, size_t len)
{
    loaded(ctx, status, data, len, 0);
}

static void on_loaded_v(void *ctx, int32_t status, const char *data, size_t len, uint64_t version)
{
    loaded(ctx, status, data, len, version);
}

static void tell(loom_req *r, loom_session_fn fn, void *ud, int32_t status)
{
    loom__rctx *x = CTX(r);
    x->in_call++;
    fn(r, status, ud);
    x->in_call--;
}

int32_t loom__api_session_load(loom_req *r, loom_session_fn fn, void *ud)
{
    loom__rctx *x = CTX(r);
    if (!fn) return LOOM_EINVAL;
    if (x->responded) return LOOM_ESTATE;
    if (x->aborted) return LOOM_EGONE;
    sess *s = loom__sess_of(r);
    if (s && s->loading) return LOOM_ESTATE;
    if (s && s->loaded) {
        tell(r, fn, ud, s->unavailable ? LOOM_EUNAVAIL : 0);
        return LOOM_OK;
    }
    sess_host *sh = ready(r);
    if (!sh) return LOOM_ESTATE;
    s = loom__arena_alloc(&r->arena, sizeof *s);
    if (!s) return LOOM_ENOMEM;
    memset(s, 0, sizeof *s);
    s->req = r;
    s->fn = fn;
    s->ud = ud;
    x->session = s;
    size_t cl;
    const char *cv = loom__api_table.req_cookie(r, sh->cookie_name, &cl);
    int64_t now = (int64_t)time(NULL);
    if (!cv || verify(sh, cv, cl, s, now)) {
        fresh(s);
        s->loaded = 1;
        tell(r, fn, ud, 0);
        return LOOM_OK;
    }
    s->data = json_object();
    s->loading = 1;
    int32_t rc = sh->versioned ? sh->store.load_versioned(sh->store.ud, s->id, on_loaded_v, s)
                               : sh->store.load(sh->store.ud, s->id, on_loaded, s);
    if (rc != 0) {
        s->loading = 0;
        s->loaded = 1;
        unavailable(s, rc);
        s->failed = LOOM_EUNAVAIL;
        tell(r, fn, ud, LOOM_EUNAVAIL);
    }
    return LOOM_OK;
}

/* The request's session if handlers may still change it; else NULL with the
 * reason in *rc. */
static sess *changeable(loom_req *r, int32_t *rc)
{
    sess *s = loom__sess_of(r);
    *rc = LOOM_ESTATE;
    if (!s || !s->loaded || s->saving || s->finished) return NULL;
    if (s->unavailable) {
        *rc = LOOM_EUNAVAIL;
        return NULL;
    }
    return s;
}

/* Drops the current ID (a new one is made at save) and remembers the first
 * one, whose stored record is deleted at the save. */
static void retire_id(sess *s)
{
    if (s->id[0] && !s->old_id[0]) {
        memcpy(s->old_id, s->id, sizeof s->id);
        s->old_version = s->version;
    }
    s->id[0] = 0;
    s->version = 0;
}

const loom_json *loom__api_session_get(loom_req *r)
{
    sess *s = loom__sess_of(r);
    return s && s->loaded ? (const loom_json *)s->data : NULL;
}

int32_t loom__api_session_set(loom_req *r, const char *key, const char *text, size_t len)
{
    int32_t rc;
    sess *s = changeable(r, &rc);
    if (!s) return rc;
    if (!key || !*key) return LOOM_EINVAL;
    if (!text) {
        if (json_object_del(s->data, key) == 0) s->dirty = 1;
        return LOOM_OK;
    }
    sess_host *sh = loom__sess_host_of(r);
    if (!sh || len > sh->max_size) return LOOM_ELIMIT;
    json_t *v = json_loadb(text, len, JSON_DECODE_ANY, NULL);
    if (!v) return LOOM_EINVAL;
    json_t *prev = json_object_get(s->data, key);
    json_incref(prev);
    if (json_object_set_new(s->data, key, v)) {
        json_decref(prev);
        return LOOM_ENOMEM;
    }
    if (json_dumpb(s->data, NULL, 0, JSON_COMPACT) > sh->max_size) {
        /* over the limit: the session stays as it was */
        if (prev)
            json_object_set(s->data, key, prev);
        else
            json_object_del(s->data, key);
        json_decref(prev);
        return LOOM_ELIMIT;
    }
    json_decref(prev);
    s->dirty = 1;
    s->invalidated = 0;
    return LOOM_OK;
}

int32_t loom__api_session_regenerate(loom_req *r)
{
    int32_t rc;
    sess *s = changeable(r, &rc);
    if (!s) return rc;
    retire_id(s);
    s->regenerated = 1;
    s->dirty = 1;
    return LOOM_OK;
}

int32_t loom__api_session_invalidate(loom_req *r)
{
    int32_t rc;
    sess *s = changeable(r, &rc);
    if (!s) return rc;
    retire_id(s);
    json_object_clear(s->data);
    s->invalidated = 1;
    s->discard_old = 1; /* deleted whatever others wrote meanwhile: it is a logout */
    s->dirty = 0;
    s->regenerated = 0;
    return LOOM_OK;
}

int32_t loom__api_session_is_new(loom_req *r)
{
    sess *s = loom__sess_of(r);
    if (!s || !s->loaded) return LOOM_ESTATE;
    if (s->unavailable) return LOOM_EUNAVAIL;
    return s->is_new;
}

void loom__session_free(loom_req *r)
{
    sess *s = loom__sess_of(r);
    if (!s) return;
    loom__sess_drop_lock(s);
    json_decref(s->data);
    json_decref(s->base);
    s->data = NULL;
    s->base = NULL;
    CTX(r)->session = NULL;
}
