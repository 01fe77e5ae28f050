/* The HTTPS parts of <loom/client.h> from C, run by test_client_web.py:
 *
 *   client_tls_api CA_FILE HTTPS_URL STALL_URL EXPIRED_URL
 *
 * HTTPS_URL answers over verified TLS; STALL_URL accepts and never answers
 * the handshake; EXPIRED_URL presents an expired certificate. Checks: the
 * response's TLS version and resumption; a request cancelled in the middle
 * of its handshake never calls back and leaves the loop free at once;
 * loom_client_close() in the middle of a handshake completes the request
 * with LOOM_CLIENT_E_CANCELLED; per-request TLS settings (an insecure
 * request beside verified ones on one client); the error classes. Prints
 * one line per check; exits 1 when one failed. */
#include <loom/client.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failures, checks;

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        checks++;                                                                                  \
        if (!(cond)) {                                                                             \
            failures++;                                                                            \
            printf("FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);                                 \
            printf(__VA_ARGS__);                                                                   \
            printf("\n");                                                                          \
        }                                                                                          \
    } while (0)

static void on_done(loom_client_response *resp, void *ud)
{
    *(loom_client_response **)ud = resp;
}

static loom_client_response *run(uv_loop_t *loop, loom_client *c, const char *url,
                                 const loom_client_opts *o)
{
    loom_client_response *resp = NULL;
    if (!loom_client_send(c, "GET", url, o, on_done, &resp)) return NULL;
    uv_run(loop, UV_RUN_DEFAULT);
    return resp;
}

static int called;
static void never(loom_client_response *resp, void *ud)
{
    (void)ud;
    called++;
    loom_client_response_free(resp);
}

static loom_client_request *to_cancel;
static void cancel_now(uv_timer_t *t)
{
    loom_client_cancel(to_cancel);
    uv_close((uv_handle_t *)t, NULL);
}

static loom_client *to_close;
static void close_now(uv_timer_t *t)
{
    loom_client_close(to_close);
    uv_close((uv_handle_t *)t, NULL);
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: %s CA_FILE HTTPS_URL STALL_URL EXPIRED_URL\n", argv[0]);
        return 2;
    }
    const char *ca = argv[1], *good = argv[2], *stall = argv[3], *expired = argv[4];
    uv_loop_t loop;
    uv_loop_init(&loop);
    loom_client_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.tls.ca_file = ca;
    loom_client *c = loom_client_new(&loop, &cfg);

    /* verified, then on a new connection with the session resumed */
    loom_client_header close_hdr = {"Connection", "close"};
    loom_client_opts o;
    memset(&o, 0, sizeof o);
    o.headers = &close_hdr;
    o.nheaders = 1;
    const char *version = NULL;
    int resumed = -1;
    loom_client_response *r = run(&loop, c, good, &o);
    CHECK(r && loom_client_response_error(r) == 0, "%s", loom_client_response_message(r));
    CHECK(loom_client_response_tls(r, &version, &resumed) == 1, "over TLS");
    CHECK(version && strcmp(version, "TLSv1.3") == 0, "version %s", version ? version : "NULL");
    CHECK(resumed == 0, "first connection: a full handshake");
    loom_client_response_free(r);
    r = run(&loop, c, good, &o);
    CHECK(r && loom_client_response_tls(r, NULL, &resumed) == 1 && resumed == 1,
          "second connection resumed (%d)", resumed);
    loom_client_response_free(r);
    printf("ok   tls version and resumption\n");

    /* the error classes, through the API */
    r = run(&loop, c, expired, NULL);
    CHECK(loom_client_response_error(r) == LOOM_CLIENT_E_CERT_EXPIRED, "%s",
          loom_client_response_message(r));
    CHECK(loom_client_is_tls_error(loom_client_response_error(r)), "a TLS error");
    CHECK(loom_client_is_connection_error(loom_client_response_error(r)), "a connection error");
    loom_client_response_free(r);
    /* the same URL, insecure for this request only, on the same client */
    loom_client_tls insecure;
    memset(&insecure, 0, sizeof insecure);
    insecure.insecure = 1;
    memset(&o, 0, sizeof o);
    o.tls = &insecure;
    r = run(&loop, c, expired, &o);
    CHECK(r && loom_client_response_error(r) == 0 && loom_client_response_status(r) == 200,
          "insecure request: %s", loom_client_response_message(r));
    loom_client_response_free(r);
    r = run(&loop, c, expired, NULL); /* and verified again: not on the insecure connection */
    CHECK(loom_client_response_error(r) == LOOM_CLIENT_E_CERT_EXPIRED, "verified again: %s",
          loom_client_response_message(r));
    loom_client_response_free(r);
    /* a TLS settings file that cannot be read */
    loom_client_tls bad;
    memset(&bad, 0, sizeof bad);
    bad.ca_file = "/nonexistent/ca.pem";
    o.tls = &bad;
    r = run(&loop, c, good, &o);
    CHECK(loom_client_response_error(r) == LOOM_CLIENT_E_TLS_CONFIG &&
              strstr(loom_client_response_message(r), "/nonexistent/ca.pem"),
          "%s", loom_client_response_message(r));
    loom_client_response_free(r);
    printf("ok   error classes and per-request settings\n");

    /* cancelled in the middle of a stalled handshake: no callback, and the
     * loop is free at once (the 10 s connect timeout would hold it) */
    memset(&o, 0, sizeof o);
    o.connect_timeout = 10;
    to_cancel = loom_client_send(c, "GET", stall, &o, never, NULL);
    CHECK(to_cancel != NULL, "send");
    uv_timer_t t;
    uv_timer_init(&loop, &t);
    uv_timer_start(&t, cancel_now, 300, 0);
    uint64_t t0 = uv_hrtime();
    uv_run(&loop, UV_RUN_DEFAULT);
    double secs = (double)(uv_hrtime() - t0) / 1e9;
    CHECK(called == 0, "the callback of a cancelled request ran");
    CHECK(secs < 3, "the loop ran %.2f s after the cancel", secs);
    CHECK(loom_client_pending(c) == 0, "pending %zu", loom_client_pending(c));
    printf("ok   cancel during the handshake (%.2f s)\n", secs);

    /* the client closed in the middle of a handshake */
    loom_client_response *closed = NULL;
    CHECK(loom_client_send(c, "GET", stall, &o, on_done, &closed) != NULL, "send");
    to_close = c;
    uv_timer_init(&loop, &t);
    uv_timer_start(&t, close_now, 300, 0);
    t0 = uv_hrtime();
    uv_run(&loop, UV_RUN_DEFAULT);
    secs = (double)(uv_hrtime() - t0) / 1e9;
    CHECK(closed && loom_client_response_error(closed) == LOOM_CLIENT_E_CANCELLED, "%s",
          closed ? loom_client_response_message(closed) : "no callback");
    CHECK(secs < 3, "closing took %.2f s", secs);
    loom_client_response_free(closed);
    printf("ok   client closed during the handshake\n");

    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    printf("%d checks, %d failures\n", checks, failures);
    return failures ? 1 : 0;
}
