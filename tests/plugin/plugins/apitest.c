/* apitest: a plugin that exercises every part of the request and response
 * API, for tests/integration/test_plugin_api.py. */
#define _POSIX_C_SOURCE 200809L /* nanosleep */
#include <loom/loom.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static loom_plugin *me;
static int aborted_count;
static int hung_count; /* GET /hang requests in their handler so far */

static int32_t reply(loom_req *req, const char *fmt, const char *a, const char *b)
{
    char buf[1024];
    snprintf(buf, sizeof buf, fmt, a ? a : "(null)", b ? b : "(null)");
    return loom_resp_text(req, 200, buf);
}

static int32_t h_query(loom_req *req, void *ud)
{
    (void)ud;
    return reply(req, "a=%s a2=%s", loom_req_query(req, "a", 0, NULL),
                 loom_req_query(req, "a", 1, NULL));
}

static int32_t h_header(loom_req *req, void *ud)
{
    (void)ud;
    return reply(req, "x-a=%s x-a2=%s", loom_req_header_n(req, "X-A", 0, NULL),
                 loom_req_header_n(req, "x-a", 1, NULL));
}

static int32_t h_cookie(loom_req *req, void *ud)
{
    (void)ud;
    return reply(req, "sid=%s other=%s", loom_req_cookie(req, "sid", NULL),
                 loom_req_cookie(req, "other", NULL));
}

static int32_t h_user(loom_req *req, void *ud)
{
    return reply(req, "%s %s", (const char *)ud, loom_req_match(req, "id", NULL));
}

static int32_t h_files(loom_req *req, void *ud)
{
    (void)ud;
    return reply(req, "path=%s%s", loom_req_match(req, "path", NULL), "");
}

static int32_t h_url(loom_req *req, void *ud)
{
    (void)ud;
    char out[128];
    const char *params[] = {"id", "42"};
    int32_t rc = loom_url_for(req, "user", params, 1, out, sizeof out);
    const char *bad[] = {"id", "x y"};
    int32_t rc2 = loom_url_for(req, "user", bad, 1, out + 64, 64);
    char buf[256];
    snprintf(buf, sizeof buf, "%s rc=%d bad=%d", rc == 0 ? out : "-", rc, rc2);
    return loom_resp_text(req, 200, buf);
}

static int32_t h_form(loom_req *req, void *ud)
{
    (void)ud;
    const char *fn = NULL, *ct = NULL;
    const void *data = NULL;
    size_t len = 0;
    char buf[512];
    int frc = loom_req_form_file(req, "upload", &fn, &ct, &data, &len);
    snprintf(buf, sizeof buf, "name=%s tag=%s tag2=%s file=%s type=%s len=%zu body=%.*s",
             loom_req_form(req, "name", 0, NULL), loom_req_form(req, "tag", 0, NULL),
             loom_req_form(req, "tag", 1, NULL), frc == 0 ? fn : "-", frc == 0 ? ct : "-", len,
             (int)(len > 64 ? 64 : len), frc == 0 ? (const char *)data : "");
    return loom_resp_text(req, 200, buf);
}

static int32_t h_setcookie(loom_req *req, void *ud)
{
    (void)ud;
    loom_cookie c = {sizeof c, LOOM_COOKIE_HTTP_ONLY | LOOM_COOKIE_SECURE | LOOM_COOKIE_MAX_AGE,
                     "sid",    "abc123",
                     "/app",   "example.test",
                     "Lax",    3600,
                     0};
    int32_t rc = loom_resp_set_cookie(req, &c);
    loom_cookie bad = {sizeof bad, 0, "x", "a;b", NULL, NULL, NULL, 0, 0};
    int32_t rc2 = loom_resp_set_cookie(req, &bad);
    int32_t rc3 = loom_resp_header_add(req, "X-Evil", "a\r\nInjected: 1");
    char buf[64];
    snprintf(buf, sizeof buf, "rc=%d bad=%d inject=%d", rc, rc2, rc3);
    return loom_resp_text(req, 200, buf);
}

static int32_t h_stream(loom_req *req, void *ud)
{
    (void)ud;
    loom_resp_header_set(req, "Content-Type", "text/plain");
    loom_resp_stream_start(req);
    loom_resp_stream_write(req, "one,", 4);
    loom_resp_stream_write(req, "two,", 4);
    loom_resp_stream_write(req, "three", 5);
    return loom_resp_stream_end(req) == LOOM_OK ? LOOM_DONE : LOOM_DONE;
}

static void timer_done(loom_timer *t, void *ud)
{
    (void)t;
    loom_resp_text((loom_req *)ud, 200, "from timer");
}

static int32_t h_timer(loom_req *req, void *ud)
{
    (void)ud;
    if (!loom_timer_start(me, 50, 0, timer_done, req)) return -1;
    return LOOM_PENDING;
}

/* GET /io-error: a watcher that sees POLLERR (a pipe whose reader is gone),
 * then asks for the same events again: it must be told the error again
 * (libuv stopped the poll; the host must know). Answers with the number of
 * error callbacks, 2, or 1 when the second never came (a timer's answer). */
typedef struct {
    loom_req *req;
    loom_io *io;
    loom_timer *t;
    int fd, errors;
    int32_t update_rc;
} ioerr_t;

static void ioerr_answer(ioerr_t *x)
{
    char buf[64];
    snprintf(buf, sizeof buf, "errors=%d update=%d", x->errors, (int)x->update_rc);
    loom_io_stop(x->io);
    close(x->fd);
    if (x->t) loom_timer_stop(x->t);
    loom_resp_text(x->req, 200, buf);
    free(x);
}

static void ioerr_timeout(loom_timer *t, void *ud)
{
    ioerr_t *x = ud;
    (void)t;
    x->t = NULL; /* a one-shot timer is freed after its callback */
    ioerr_answer(x);
}

static void ioerr_fire(loom_io *io, int32_t events, void *ud)
{
    ioerr_t *x = ud;
    if (events >= 0) return; /* only the error is of interest */
    if (++x->errors == 1) {
        x->update_rc = loom_io_update(io, LOOM_IO_WRITE);
        return;
    }
    ioerr_answer(x);
}

static int32_t h_io_error(loom_req *req, void *ud)
{
    (void)ud;
    int p[2];
    if (pipe(p)) return -1;
    close(p[0]);
    ioerr_t *x = calloc(1, sizeof *x);
    if (!x) return -1;
    x->req = req;
    x->fd = p[1];
    x->io = loom_io_start(me, p[1], LOOM_IO_WRITE, ioerr_fire, x);
    x->t = loom_timer_start(me, 1000, 0, ioerr_timeout, x);
    if (!x->io || !x->t) {
        loom_io_stop(x->io);
        loom_timer_stop(x->t);
        close(x->fd);
        free(x);
        return -1;
    }
    return LOOM_PENDING;
}

typedef struct {
    loom_req *req;
    long sum;
} work_t;

static void work_run(void *ud)
{
    work_t *w = ud;
    for (long i = 1; i <= 1000; i++) w->sum += i;
}

static void work_done(void *ud, int32_t cancelled)
{
    work_t *w = ud;
    char buf[64];
    snprintf(buf, sizeof buf, "sum=%ld cancelled=%d", w->sum, cancelled);
    loom_resp_text(w->req, 200, buf);
}

static int32_t h_work(loom_req *req, void *ud)
{
    (void)ud;
    work_t *w = loom_req_alloc(req, sizeof *w);
    w->req = req;
    w->sum = 0;
    return loom_work_queue(me, work_run, work_done, w) == LOOM_OK ? LOOM_PENDING : -1;
}

/* A job that outlives its request and writes into state that fini frees:
 * fini must come after it (the test stops the server while it runs). */
static atomic_int jobs_in_flight;
static char *job_state;

static void slow_run(void *ud)
{
    (void)ud;
    struct timespec ts = {0, 400 * 1000 * 1000};
    while (nanosleep(&ts, &ts) != 0) {
    }
    if (job_state) job_state[0] = 'x';
    atomic_fetch_sub(&jobs_in_flight, 1);
}

static void slow_done(void *ud, int32_t cancelled)
{
    (void)ud;
    (void)cancelled;
}

static int32_t h_slow_work(loom_req *req, void *ud)
{
    (void)ud;
    atomic_fetch_add(&jobs_in_flight, 1);
    if (loom_work_queue(me, slow_run, slow_done, NULL) != LOOM_OK) {
        atomic_fetch_sub(&jobs_in_flight, 1);
        return -1;
    }
    return loom_resp_text(req, 200, "queued");
}

static void fini(loom_plugin *self)
{
    char msg[64];
    snprintf(msg, sizeof msg, "apitest fini: %d jobs in flight", atomic_load(&jobs_in_flight));
    loom_log(self, LOOM_LOG_INFO, msg);
    free(job_state);
    job_state = NULL;
}

static int32_t h_fail(loom_req *req, void *ud)
{
    (void)req;
    (void)ud;
    return -1;
}

static int32_t h_noanswer(loom_req *req, void *ud)
{
    (void)req;
    (void)ud;
    return LOOM_DONE;
}

static void on_abort(loom_req *req, void *ud)
{
    (void)ud;
    aborted_count++;
    /* Answering an aborted request is a safe no-op that releases it. */
    loom_resp_text(req, 200, "too late");
}

static int32_t h_hang(loom_req *req, void *ud)
{
    (void)ud;
    loom_req_on_abort(req, on_abort, NULL);
    hung_count++;
    return LOOM_PENDING;
}

static int32_t h_hung(loom_req *req, void *ud)
{
    (void)ud;
    char buf[32];
    snprintf(buf, sizeof buf, "%d", hung_count);
    return loom_resp_text(req, 200, buf);
}

static int32_t h_aborted(loom_req *req, void *ud)
{
    (void)ud;
    char buf[32];
    snprintf(buf, sizeof buf, "%d", aborted_count);
    return loom_resp_text(req, 200, buf);
}

static int32_t h_teapot(loom_req *req, void *ud)
{
    (void)ud;
    return loom_resp_error(req, 418, "short and stout");
}

static int32_t h_any(loom_req *req, void *ud)
{
    (void)ud;
    return reply(req, "any %s%s", loom_req_method(req), "");
}

static int32_t h_info(loom_req *req, void *ud)
{
    (void)ud;
    size_t pl, rl;
    const char *p = loom_req_path(req, &pl);
    const char *raw = loom_req_raw_path(req, &rl);
    char buf[512];
    snprintf(buf, sizeof buf, "path=%s raw=%s remote=%s version=%s headers=%u", p, raw,
             loom_req_remote(req), loom_req_http_version(req), loom_req_header_count(req));
    return loom_resp_text(req, 200, buf);
}

static int32_t h_json(loom_req *req, void *ud)
{
    (void)ud;
    const loom_json *j;
    if (loom_req_json(req, &j) != LOOM_OK) return LOOM_DONE;
    const loom_json *name = loom_json_get(j, "name");
    const loom_json *n = loom_json_get(j, "n");
    char buf[256];
    snprintf(buf, sizeof buf, "{\"name\":\"%s\",\"n2\":%lld,\"keys\":%zu}",
             name ? loom_json_string(name, NULL) : "", n ? (long long)loom_json_integer(n) * 2 : 0,
             loom_json_size(j));
    return loom_resp_json(req, 201, buf, strlen(buf));
}

static int32_t h_config(loom_req *req, void *ud)
{
    (void)ud;
    const loom_json *g = loom_json_get(loom_config(me), "greeting");
    return loom_resp_text(req, 200, g ? loom_json_string(g, NULL) : "none");
}

static int32_t init(loom_plugin *self, const char *config, size_t len)
{
    (void)config;
    (void)len;
    me = self;
    if (!job_state && !(job_state = malloc(16))) return -1;
    int32_t rc = 0;
    rc |= loom_route_add(self, "GET", "/q", h_query, NULL);
    rc |= loom_route_add(self, "GET", "/h", h_header, NULL);
    rc |= loom_route_add(self, "GET", "/cookie", h_cookie, NULL);
    rc |= loom_route_add_named(self, "GET", "/users/{id:\\d+}", h_user, "user", "user");
    rc |= loom_route_add(self, "GET", "/users/me", h_user, "me");
    rc |= loom_route_add(self, "GET", "/users/{id}/posts", h_user, "posts");
    rc |= loom_route_add(self, "GET", "/files/{path:.*}", h_files, NULL);
    rc |= loom_route_add(self, "GET", "/url", h_url, NULL);
    rc |= loom_route_add(self, "POST", "/form", h_form, NULL);
    rc |= loom_route_add(self, "GET", "/setcookie", h_setcookie, NULL);
    rc |= loom_route_add(self, "GET", "/stream", h_stream, NULL);
    rc |= loom_route_add(self, "GET", "/timer", h_timer, NULL);
    rc |= loom_route_add(self, "GET", "/work", h_work, NULL);
    rc |= loom_route_add(self, "GET", "/io-error", h_io_error, NULL);
    rc |= loom_route_add(self, "GET", "/slow-work", h_slow_work, NULL);
    rc |= loom_route_add(self, "GET", "/fail", h_fail, NULL);
    rc |= loom_route_add(self, "GET", "/noanswer", h_noanswer, NULL);
    rc |= loom_route_add(self, "GET", "/hang", h_hang, NULL);
    rc |= loom_route_add(self, "GET", "/aborted", h_aborted, NULL);
    rc |= loom_route_add(self, "GET", "/hung", h_hung, NULL);
    rc |= loom_route_add(self, "GET", "/teapot", h_teapot, NULL);
    rc |= loom_route_add(self, "*", "/any", h_any, NULL);
    rc |= loom_route_add(self, "GET", "/info/{rest:.*}", h_info, NULL);
    rc |= loom_route_add(self, "POST", "/json", h_json, NULL);
    rc |= loom_route_add(self, "PUT", "/json", h_json, NULL);
    rc |= loom_route_add(self, "GET", "/config", h_config, NULL);
    /* Registration outside init and bad patterns are refused. */
    if (loom_route_add(self, "BREW", "/x", h_any, NULL) != LOOM_EINVAL) return -100;
    if (loom_route_add(self, "GET", "no-slash", h_any, NULL) != LOOM_EINVAL) return -101;
    return rc;
}

LOOM_PLUGIN("apitest", "1.2.3", init, fini)
