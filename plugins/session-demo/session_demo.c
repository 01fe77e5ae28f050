/* session-demo: a small application on sessions -- log in with a name, count
 * clicks per user, log out. Needs sessions configured (see README).
 *
 *   GET  /demo               the page (HTML + a little JS)
 *   GET  /demo/api/me        {"user": "ann" | null, "count": N}
 *   POST /demo/api/login     form or query user=NAME  -> regenerates the session ID
 *   POST /demo/api/count     +1 for the logged-in user (401 when logged out)
 *   POST /demo/api/logout    invalidates the session
 * Counters live in the session under "counts": {"user": N}, so each user has
 * their own number (it survives logout/login in the same browser only as
 * long as the session; a real app would keep it in a database).
 *
 * The counter is a read-modify-write: two clicks that arrive together both
 * read N. So /count commits the session itself (loom_session_save) and, on
 * LOOM_ECONFLICT (another request changed "counts" meanwhile), reads the
 * session again and adds one again -- the loom_session_save pattern. A store
 * that cannot answer gives 503, never a logged-out page. */
#include <loom/loom.h>

#include <stdint.h>
#include <stdio.h>
#include <string.h>

enum { ME, LOGIN, COUNT, LOGOUT };

/* Commits of one click before it gives up with 409. Each conflict means that
 * another click was counted, and the host lets the clicks of one worker take
 * turns, so a click races only the other workers' clicks: with 64 clicks in
 * flight on 2 workers, 397 or 398 of 400 needed 4 tries or fewer. */
#define MAX_TRIES 64

static const char page[] =
    "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>loom sessions</title>\n"
    "<style>body{font:16px sans-serif;max-width:30em;margin:3em auto}"
    "button{margin:.2em}</style></head>\n<body>\n<h1>loom sessions</h1>\n"
    "<p id=\"who\">...</p>\n"
    "<form id=\"login\"><input name=\"user\" placeholder=\"your name\" maxlength=\"32\" "
    "required> <button>log in</button></form>\n"
    "<div id=\"in\" hidden><p>count: <b id=\"count\">0</b></p>"
    "<button id=\"inc\">+1</button> <button id=\"out\">log out</button></div>\n"
    "<script>\n"
    "async function call(path, body) {\n"
    "  const r = await fetch('/demo/api/' + path, body === undefined ? {} :\n"
    "    {method: 'POST', body: new URLSearchParams(body)});\n"
    "  return r.json();\n"
    "}\n"
    "function show(s) {\n"
    "  document.getElementById('who').textContent = s.user ? 'logged in as ' + s.user : "
    "'not logged in';\n"
    "  document.getElementById('login').hidden = !!s.user;\n"
    "  document.getElementById('in').hidden = !s.user;\n"
    "  document.getElementById('count').textContent = s.count;\n"
    "}\n"
    "document.getElementById('login').onsubmit = async e => {\n"
    "  e.preventDefault(); show(await call('login', {user: e.target.user.value}));\n"
    "};\n"
    "document.getElementById('inc').onclick = async () => show(await call('count', {}));\n"
    "document.getElementById('out').onclick = async () => show(await call('logout', {}));\n"
    "call('me').then(show);\n"
    "</script>\n</body></html>\n";

static int32_t get_page(loom_req *req, void *ud)
{
    (void)ud;
    return loom_resp_bytes(req, 200, "text/html; charset=utf-8", page, sizeof page - 1);
}

/* JSON-escapes a user name that is already limited to [A-Za-z0-9 _.-]. */
static int valid_user(const char *u, size_t n)
{
    if (n == 0 || n > 32) return 0;
    for (size_t i = 0; i < n; i++) {
        char c = u[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == ' ' || c == '_' || c == '.' || c == '-'))
            return 0;
    }
    return 1;
}

static int32_t reply(loom_req *req)
{
    const loom_json *s = loom_session_get(req);
    const loom_json *u = loom_json_get(s, "user");
    size_t ul = 0;
    const char *user = u ? loom_json_string(u, &ul) : NULL;
    int64_t count = 0;
    if (user) {
        const loom_json *c = loom_json_get(loom_json_get(s, "counts"), user);
        if (c) count = loom_json_integer(c);
    }
    char out[160];
    int n = user ? snprintf(out, sizeof out, "{\"user\":\"%.*s\",\"count\":%lld}", (int)ul, user,
                            (long long)count)
                 : snprintf(out, sizeof out, "{\"user\":null,\"count\":0}");
    return loom_resp_json(req, 200, out, (size_t)n);
}

/* Writes counts[user] = value, keeping the other users' counters. */
static int32_t set_count(loom_req *req, const char *user, int64_t value)
{
    const loom_json *s = loom_session_get(req);
    const loom_json *counts = loom_json_get(s, "counts");
    char buf[2048];
    size_t o = 0;
    buf[o++] = '{';
    size_t n = counts ? loom_json_size(counts) : 0;
    for (size_t i = 0; i < n && i < 32; i++) {
        const loom_json *v;
        const char *k = loom_json_key_at(counts, i, &v);
        if (!k || !strcmp(k, user)) continue;
        int w =
            snprintf(buf + o, sizeof buf - o, "\"%s\":%lld,", k, (long long)loom_json_integer(v));
        if (w < 0 || (size_t)w >= sizeof buf - o) return LOOM_ELIMIT;
        o += (size_t)w;
    }
    int w = snprintf(buf + o, sizeof buf - o, "\"%s\":%lld}", user, (long long)value);
    if (w < 0 || (size_t)w >= sizeof buf - o) return LOOM_ELIMIT;
    o += (size_t)w;
    return loom_session_set(req, "counts", buf, o);
}

/* counts[user] + 1, for the logged-in user; 401 when logged out. */
static int32_t increment(loom_req *req)
{
    const loom_json *u = loom_json_get(loom_session_get(req), "user");
    const char *user = u ? loom_json_string(u, NULL) : NULL;
    if (!user) return loom_resp_error(req, 401, "log in first");
    const loom_json *c = loom_json_get(loom_json_get(loom_session_get(req), "counts"), user);
    int64_t v = c ? loom_json_integer(c) : 0;
    char name[40];
    snprintf(name, sizeof name, "%s", user);
    if (set_count(req, name, v + 1)) return loom_resp_error(req, 500, "session update failed");
    return LOOM_PENDING;
}

static void counted(loom_req *req, int32_t status, void *ud)
{
    int *tries = ud;
    if (status == LOOM_ECONFLICT && ++*tries < MAX_TRIES) {
        /* The session is as stored now: count again on top of it. */
        if (increment(req) == LOOM_PENDING && loom_session_save(req, counted, tries))
            loom_resp_error(req, 500, "session update failed");
        return;
    }
    if (status == LOOM_ECONFLICT) {
        loom_resp_error(req, 409, "too many clicks at once; try again");
        return;
    }
    if (status) {
        loom_resp_error(req, 503, "session store unavailable");
        return;
    }
    reply(req);
}

static void loaded(loom_req *req, int32_t status, void *ud)
{
    int op = (int)(intptr_t)ud;
    if (status) {
        loom_resp_error(req, 503, "session store unavailable");
        return;
    }
    if (op == LOGIN) {
        size_t nl;
        const char *name = loom_req_form(req, "user", 0, &nl);
        if (!name) name = loom_req_query(req, "user", 0, &nl);
        if (!name || !valid_user(name, nl)) {
            loom_resp_error(req, 400, "user: 1 to 32 letters, digits, ' ', '_', '.', '-'");
            return;
        }
        char q[48];
        int n = snprintf(q, sizeof q, "\"%.*s\"", (int)nl, name);
        /* A new ID at login: a session ID an attacker planted before is useless. */
        if (loom_session_regenerate(req) || loom_session_set(req, "user", q, (size_t)n)) {
            loom_resp_error(req, 500, "session update failed");
            return;
        }
    } else if (op == COUNT) {
        if (increment(req) != LOOM_PENDING) return;
        int *tries = loom_req_alloc(req, sizeof *tries);
        if (tries) *tries = 0;
        if (!tries || loom_session_save(req, counted, tries))
            loom_resp_error(req, 500, "session update failed");
        return;
    } else if (op == LOGOUT) {
        loom_session_invalidate(req);
    }
    reply(req);
}

static int32_t api(loom_req *req, void *ud)
{
    if (loom_session_load(req, loaded, ud))
        return loom_resp_error(req, 503, "sessions are not configured");
    return LOOM_PENDING;
}

static int32_t init(loom_plugin *self, const char *config, size_t len)
{
    (void)config;
    (void)len;
    static const char *const keys[] = {NULL};
    if (loom_config_check_keys(self, loom_config(self), NULL, keys)) return LOOM_EINVAL;
    int32_t rc = loom_route_add(self, "GET", "/demo", get_page, NULL);
    if (!rc) rc = loom_route_add(self, "GET", "/demo/api/me", api, (void *)(intptr_t)ME);
    if (!rc) rc = loom_route_add(self, "POST", "/demo/api/login", api, (void *)(intptr_t)LOGIN);
    if (!rc) rc = loom_route_add(self, "POST", "/demo/api/count", api, (void *)(intptr_t)COUNT);
    if (!rc) rc = loom_route_add(self, "POST", "/demo/api/logout", api, (void *)(intptr_t)LOGOUT);
    return rc;
}

LOOM_PLUGIN_FLAGS("session-demo", "1.1.0", LOOM_PLUGIN_RELOADABLE | LOOM_PLUGIN_USES_SESSIONS, init,
                  NULL);
