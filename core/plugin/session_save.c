/* Saving sessions without lost updates (ABI 1.3).
 *
 * A request works on its own copy of the session: `base` is the state it
 * loaded (or last wrote) with its `version`, `data` what the handler made of
 * it. A save writes `data` with the store's compare-and-set (save_if): it
 * succeeds only if the stored version is still `version`. When another
 * request wrote in between, the store answers with the session as stored now,
 * and the keys are compared three ways (base, data, stored):
 *   - a key this request did not change takes the stored value;
 *   - a key this request changed, whose stored value is still its base
 *     value, takes this request's value;
 *   - a key this request changed whose stored value changed too is a
 *     conflict: both requests acted on the same old value (a counter read as
 *     5 and written as 6 by both), and no merge can be right. Nothing is
 *     written; the handler learns it (LOOM_ECONFLICT from loom_session_save,
 *     or a 409 from the save at the end) and may redo its change.
 * The merged result is written again with the new version, at most
 * MAX_ROUNDS times. A store without the versioned operations (ABI 1.1) gets
 * the old whole-session last-writer-wins save.
 *
 * The same engine runs for loom_session_save (explicit: the handler's
 * callback gets the outcome) and before the response is sent (implicit: a
 * failure replaces a response below 400).
 *
 * Within a worker, compare-and-sets on one ID take turns, in arrival order:
 * the next waits until the one running has finished, including the retries
 * its handler starts from its callback. Without this, n requests racing on
 * one key all go to the store at once, one wins, and the others lose and
 * race again: a request's chance to win is 1/n per round, and 64 clicks at
 * a time left one click in a few hundred runs without a win in 256 tries.
 * Taking turns, a request only races the other workers. */
#include "plugin/session.h"
#include "admin/metrics.h"
#include "http/response.h"
#include "util/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CTX(r) ((loom__rctx *)(r)->host_data)
/* Store round trips of one save: each conflict-free retry is one, and n
 * requests writing different keys of one session at once need at most n. */
#define MAX_ROUNDS 32

typedef loom__sess sess;
typedef loom__sess_host sess_host;

static void step(sess *s);

/* Takes the turn on `id`: 1 when s may go now, 0 when it was queued (step
 * runs again when its turn comes). */
static int lock(sess_host *sh, sess *s, const char *id)
{
    if (s->lock_state == 1 && !strcmp(s->lock_id, id)) return 1;
    int busy = 0;
    sess **pp = &sh->locks;
    for (; *pp; pp = &(*pp)->lock_next)
        if (*pp != s && !strcmp((*pp)->lock_id, id)) busy = 1;
    if (s->lock_state) return 1; /* a session holds one ID at a time: cannot happen */
    memcpy(s->lock_id, id, sizeof s->lock_id);
    s->lock_state = busy ? 2 : 1;
    s->lock_next = NULL;
    *pp = s;
    return !busy;
}

/* Ends s's turn and starts the next waiter's on the same ID, if any. */
static void unlock(sess_host *sh, sess *s)
{
    if (!s->lock_state || !sh) return;
    sess **pp = &sh->locks;
    while (*pp && *pp != s) pp = &(*pp)->lock_next;
    if (*pp) *pp = s->lock_next;
    s->lock_state = 0;
    s->lock_next = NULL;
    for (sess *w = sh->locks; w; w = w->lock_next)
        if (w->lock_state == 2 && !strcmp(w->lock_id, s->lock_id)) {
            w->lock_state = 1;
            w->saving = 0;
            step(w);
            return;
        }
}

static int eq(json_t *a, json_t *b)
{
    return a == b || (a && b && json_equal(a, b));
}

static json_t *base_get(const sess *s, const char *k)
{
    return s->base ? json_object_get(s->base, k) : NULL;
}

/* Whether the handler changed anything against base. */
static int differs(const sess *s)
{
    const char *k;
    json_t *v;
    json_object_foreach(s->data, k, v)
    {
        if (!eq(base_get(s, k), v)) return 1;
    }
    if (s->base) json_object_foreach(s->base, k, v)
        {
            if (!json_object_get(s->data, k)) return 1;
        }
    return 0;
}

static int need_write(const sess *s)
{
    if (!s->id[0]) return s->regenerated || (s->dirty && json_object_size(s->data) > 0);
    return s->dirty && differs(s);
}

/* The session was deleted (or expired) while this request held it: it is not
 * brought back; the request goes on with a fresh empty one. */
static void gone(sess *s)
{
    json_decref(s->base);
    json_decref(s->data);
    s->base = NULL;
    s->data = json_object();
    s->id[0] = s->old_id[0] = 0;
    s->version = s->old_version = 0;
    s->is_new = 1;
    s->dirty = s->regenerated = 0;
    s->conflict_key[0] = 0;
}

/* Merges this request's changes into the stored session `text` (version
 * `ver`). Returns 0 (data is the merge, base the stored state), LOOM_ECONFLICT
 * (the session is now the stored state, this request's changes dropped) or
 * LOOM_EUNAVAIL (the stored text is not a JSON object). */
static int32_t merge(sess *s, const char *text, size_t len, uint64_t ver)
{
    json_t *cur = json_loadb(text, len, 0, NULL);
    if (!json_is_object(cur)) {
        json_decref(cur);
        return LOOM_EUNAVAIL;
    }
    const char *k, *bad = NULL;
    json_t *v;
    json_object_foreach(s->data, k, v)
    {
        json_t *b = base_get(s, k);
        if (!eq(b, v) && !eq(b, json_object_get(cur, k))) {
            bad = k;
            break;
        }
    }
    if (!bad && s->base) json_object_foreach(s->base, k, v)
        {
            if (!json_object_get(s->data, k) && !eq(v, json_object_get(cur, k))) {
                bad = k;
                break;
            }
        }
    if (bad) {
        snprintf(s->conflict_key, sizeof s->conflict_key, "%s", bad);
        json_decref(s->base);
        json_decref(s->data);
        s->base = cur;
        s->data = json_copy(cur);
        if (s->old_id[0]) { /* a regenerate that lost: back on the old ID */
            memcpy(s->id, s->old_id, sizeof s->id);
            s->old_id[0] = 0;
        }
        s->version = ver;
        s->dirty = s->regenerated = 0;
        return s->data ? LOOM_ECONFLICT : LOOM_EUNAVAIL;
    }
    json_t *m = json_copy(cur);
    if (!m) {
        json_decref(cur);
        return LOOM_EUNAVAIL;
    }
    json_object_foreach(s->data, k, v)
    {
        if (!eq(base_get(s, k), v)) json_object_set(m, k, v);
    }
    if (s->base) json_object_foreach(s->base, k, v)
        {
            if (!json_object_get(s->data, k)) json_object_del(m, k);
        }
    json_decref(s->base);
    json_decref(s->data);
    s->base = cur;
    s->data = m;
    return 0;
}

static int status_for(int32_t fail)
{
    return fail == LOOM_ECONFLICT ? 409 : fail == LOOM_ELIMIT ? 500 : 503;
}

/* One line for a session that was not saved (a store failure has its own,
 * from loom__sess_log_failure): what, and what the client got. */
static void report(loom_req *r, sess *s, int32_t fail, int replaced)
{
    char sid[12], outcome[96];
    snprintf(sid, sizeof sid, "%.8s", s->id[0] ? s->id : s->old_id[0] ? s->old_id : "new");
    if (replaced)
        snprintf(outcome, sizeof outcome, "answered %d", status_for(fail));
    else
        snprintf(outcome, sizeof outcome, "its response (%d%s) went out as it was", r->resp.status,
                 r->resp.head_sent ? ", streamed" : "");
    if (fail == LOOM_ECONFLICT)
        loom__warn("sessions: %s%s%s of session %s... was changed by another request meanwhile: "
                   "nothing of %s %s was saved, %s (commit with loom_session_save and retry on "
                   "LOOM_ECONFLICT)",
                   s->conflict_key[0] ? "key \"" : "the session", s->conflict_key,
                   s->conflict_key[0] ? "\"" : "", sid, r->method, r->target, outcome);
    else
        loom__err("sessions: session %s... of %s %s was not saved (%s), %s", sid, r->method,
                  r->target, loom__sess_errname(fail), outcome);
}

/* Replaces a response that is not an error yet: the session it reports on
 * was not saved. Headers the handler set go too (they described that
 * answer); the response phase of the middleware still runs after. */
static void replace_response(loom_req *r, int32_t fail)
{
    r->resp.nheaders = 0;
    loom__dispatch_error_fill(r, status_for(fail),
                              fail == LOOM_ECONFLICT
                                  ? "the session was changed by another request; try again"
                              : fail == LOOM_EUNAVAIL ? "the session store is unavailable"
                                                      : "the session could not be saved");
}

/* The save ended with status st (0, LOOM_ECONFLICT, LOOM_EUNAVAIL, ...). */
static void finish(sess *s, int32_t st)
{
    loom_req *r = s->req;
    loom__rctx *x = CTX(r);
    sess_host *sh = loom__sess_host_of(r);
    s->saving = 0;
    s->attempts = 0;
    if (s->explicit_) {
        s->explicit_ = 0;
        s->failed = st; /* a commit that succeeds clears an earlier failure */
        if (st == 0 && sh && s->cookie_due && s->id[0] && !r->resp.head_sent)
            loom__sess_set_cookie(r, sh, s, 0);
        x->in_call++;
        s->save_fn(r, st, s->save_ud);
        x->in_call--;
        /* A retry started from fn keeps the turn; otherwise the next goes. */
        if (!s->saving) unlock(sh, s);
        if (x->responded && x->in_call == 0) loom__dispatch_complete(r);
        return;
    }
    /* The save before the response: its failure, or a commit's failure that
     * no later write made good, may not go out as a success. */
    int32_t fail = st ? st : s->failed;
    int replace = fail && sh && !r->resp.head_sent && r->resp.status < 400;
    s->finished = 1;
    if (fail && fail != LOOM_EUNAVAIL && (st || replace)) report(r, s, fail, replace);
    if (replace) replace_response(r, fail);
    if (!r->resp.head_sent && sh) {
        if (s->id[0] && s->cookie_due)
            loom__sess_set_cookie(r, sh, s, 0);
        else if (s->invalidated && !s->id[0])
            loom__sess_set_cookie(r, sh, s, 1);
    }
    unlock(sh, s);
    loom__dispatch_complete(r);
}

/* A store call failed or reported a failure. */
static void failed(sess *s, int op, int32_t code)
{
    sess_host *sh = loom__sess_host_of(s->req);
    if (sh) loom__sess_log_failure(sh, op, code, s->req);
    finish(s, LOOM_EUNAVAIL);
}

static void written(sess *s, uint64_t version)
{
    json_t *b = json_copy(s->data);
    json_decref(s->base);
    s->base = b;
    s->version = version;
    s->dirty = s->regenerated = 0;
    s->is_new = 0;
    s->refresh = 0;
    s->cookie_due = 1;
    s->invalidated = 0;
    s->failed = 0;
}

static void on_saved(void *ctx, int32_t st, const char *data, size_t len)
{
    (void)data;
    (void)len;
    sess *s = ctx;
    s->saving = 0;
    loom__metrics_session(CTX(s->req)->mw, LOOM__S_SAVE, st != 0);
    if (st) {
        failed(s, LOOM__SESS_OP_SAVE, st);
        return;
    }
    written(s, 0);
    step(s);
}

/* The store refused a versioned write: the record moved on to version `ver`
 * (its text `data`), or is gone (`data` NULL). Merges this request's changes
 * into what is stored and goes on at that version (*at), or ends with a fresh
 * session when the record is gone. */
static void retry_merged(sess *s, const char *data, size_t len, uint64_t ver, uint64_t *at)
{
    if (!data) {
        gone(s);
        finish(s, LOOM_ECONFLICT);
        return;
    }
    int32_t rc = merge(s, data, len, ver);
    if (rc) {
        finish(s, rc);
        return;
    }
    *at = ver;
    step(s);
}

static void on_saved_v(void *ctx, int32_t st, const char *data, size_t len, uint64_t ver)
{
    sess *s = ctx;
    s->saving = 0;
    /* A conflict is the store doing its job: not an error. */
    loom__metrics_session(CTX(s->req)->mw, LOOM__S_SAVE, st != 0 && st != LOOM_ECONFLICT);
    if (st == 0) {
        written(s, ver);
        step(s);
    } else if (st != LOOM_ECONFLICT) {
        failed(s, LOOM__SESS_OP_SAVE, st);
    } else if (s->version == 0) {
        s->id[0] = 0; /* a new ID that is taken (2^-128): take another */
        step(s);
    } else {
        retry_merged(s, data, len, ver, &s->version);
    }
}

static void on_destroyed(void *ctx, int32_t st, const char *data, size_t len)
{
    (void)data;
    (void)len;
    sess *s = ctx;
    s->saving = 0;
    loom__metrics_session(CTX(s->req)->mw, LOOM__S_DELETE, st != 0 && st != LOOM_ENOTFOUND);
    if (st && st != LOOM_ENOTFOUND) {
        /* a logout that did not happen must not look as if it had */
        failed(s, LOOM__SESS_OP_DELETE, st);
        return;
    }
    s->old_id[0] = 0;
    step(s);
}

static void on_destroyed_v(void *ctx, int32_t st, const char *data, size_t len, uint64_t ver)
{
    sess *s = ctx;
    s->saving = 0;
    loom__metrics_session(CTX(s->req)->mw, LOOM__S_DELETE,
                          st != 0 && st != LOOM_ECONFLICT && st != LOOM_ENOTFOUND);
    if (st == 0) {
        s->old_id[0] = 0;
        step(s);
    } else if (st != LOOM_ECONFLICT) {
        failed(s, LOOM__SESS_OP_DELETE, st);
    } else {
        retry_merged(s, data, len, ver, &s->old_version);
    }
}

static void on_touched(void *ctx, int32_t st, const char *data, size_t len)
{
    (void)data;
    (void)len;
    /* a lost touch costs an earlier expiry, nothing else */
    sess *s = ctx;
    loom__metrics_session(CTX(s->req)->mw, LOOM__S_TOUCH, st != 0);
    s->saving = 0;
    s->refresh = 0;
    s->cookie_due = 1;
    step(s);
}

/* Starts the next store operation of the save, or finishes it. After a store
 * call returned 0 its callback may already have run and freed the request:
 * nothing here touches `s` after such a call. */
static void step(sess *s)
{
    sess_host *sh = loom__sess_host_of(s->req);
    if (!sh || !sh->owner) {
        finish(s, LOOM_EUNAVAIL); /* the store plugin was unloaded */
        return;
    }
    if (++s->attempts > MAX_ROUNDS) {
        loom__warn("sessions: a session kept changing under %s %s: not saved after %d tries",
                   s->req->method, s->req->target, MAX_ROUNDS);
        s->conflict_key[0] = 0;
        finish(s, LOOM_ECONFLICT);
        return;
    }
    const loom_session_store *st = &sh->store;
    int32_t rc;
    if (s->old_id[0]) {
        s->saving = 1;
        if (sh->versioned && !s->discard_old && !lock(sh, s, s->old_id)) return;
        if (sh->versioned && !s->discard_old)
            rc = st->destroy_if(st->ud, s->old_id, s->old_version, on_destroyed_v, s);
        else
            rc = st->destroy(st->ud, s->old_id, on_destroyed, s);
        if (rc) {
            s->saving = 0;
            failed(s, LOOM__SESS_OP_DELETE, rc);
        }
        return;
    }
    int64_t now = (int64_t)time(NULL);
    if (need_write(s)) {
        char *text = json_dumps(s->data, JSON_COMPACT);
        size_t tl = text ? strlen(text) : 0;
        if (!text || tl > sh->max_size) {
            if (text)
                loom__warn("sessions: a session of %zu bytes is over max_size %zu; not saved", tl,
                           sh->max_size);
            free(text);
            finish(s, text ? LOOM_ELIMIT : LOOM_ENOMEM);
            return;
        }
        if (!s->id[0]) {
            if (loom__sess_new_id(s->id)) {
                free(text);
                finish(s, LOOM_ENOMEM);
                return;
            }
            s->issued = now;
            s->version = 0;
        }
        s->expires = loom__sess_expiry(sh, s, now);
        s->saving = 1;
        if (sh->versioned && s->version && !lock(sh, s, s->id)) {
            free(text);
            return;
        }
        if (sh->versioned)
            rc = st->save_if(st->ud, s->id, text, tl, s->expires, s->version, on_saved_v, s);
        else
            rc = st->save(st->ud, s->id, text, tl, s->expires, on_saved, s);
        free(text);
        if (rc) {
            s->saving = 0;
            failed(s, LOOM__SESS_OP_SAVE, rc);
        }
        return;
    }
    if (s->refresh && s->id[0] && !s->explicit_) {
        s->expires = loom__sess_expiry(sh, s, now);
        s->saving = 1;
        rc = st->touch(st->ud, s->id, s->expires, on_touched, s);
        if (rc) {
            s->saving = 0;
            s->refresh = 0;
            step(s);
        }
        return;
    }
    finish(s, 0);
}

void loom__sess_drop_lock(loom__sess *s)
{
    if (s->lock_state) unlock(loom__sess_host_of(s->req), s);
}

int32_t loom__api_session_save(loom_req *r, loom_session_fn fn, void *ud)
{
    loom__rctx *x = CTX(r);
    sess *s = loom__sess_of(r);
    if (!fn) return LOOM_EINVAL;
    if (x->aborted) return LOOM_EGONE;
    if (!s || !s->loaded || s->saving || s->finished) return LOOM_ESTATE;
    if (s->unavailable) return LOOM_EUNAVAIL;
    s->explicit_ = 1;
    s->save_fn = fn;
    s->save_ud = ud;
    s->attempts = 0;
    /* A store that answers at once calls fn inside; the request must not be
     * completed under the caller's feet. */
    x->in_call++;
    step(s);
    x->in_call--;
    if (x->responded && x->in_call == 0 && !s->saving) loom__dispatch_complete(r);
    return LOOM_OK;
}

int loom__session_before_send(loom_req *r)
{
    sess *s = loom__sess_of(r);
    if (!s) return 0;
    if (s->loading) {
        /* The store still holds a pointer to this request's session: the
         * request must outlive the load (finish_load completes it). */
        s->waiting = 1;
        return 1;
    }
    if (s->saving) return 1; /* a loom_session_save is running: its end completes */
    if (s->finished || !s->loaded) return 0;
    sess_host *sh = loom__sess_host_of(r);
    if (!sh || !sh->owner || CTX(r)->aborted || s->unavailable) {
        s->finished = 1;
        if (s->failed && sh && !r->resp.head_sent && r->resp.status < 400 && !CTX(r)->aborted) {
            if (s->failed != LOOM_EUNAVAIL) report(r, s, s->failed, 1);
            replace_response(r, s->failed);
        }
        return 0;
    }
    s->attempts = 0;
    step(s);
    return 1;
}
