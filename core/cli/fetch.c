/* `loom fetch`: the client's command-line face. One URL prints the response;
 * several (or -n) are fetched concurrently over one pool and summarised. */
#include "cli/cli.h"
#include "client/client_int.h"

#include <loom/client.h>

#include <math.h>
#include <stdint.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char fetch_usage[] =
    "usage: loom fetch [options] URL...\n"
    "\n"
    "Fetch http:// and https:// URLs. With one URL, print the status line, the\n"
    "headers (-i) and the body. With several URLs (or -n), fetch them concurrently\n"
    "over one keep-alive pool and print a summary: successes, errors by kind,\n"
    "requests per second and latency percentiles. Each failure is one line on\n"
    "stderr naming the URL and the reason.\n"
    "\n"
    "options:\n"
    "  -X METHOD            request method (default GET, or POST with --json/--data)\n"
    "  -H 'Name: value'     add a request header (repeatable)\n"
    "  --json DATA          send DATA as application/json\n"
    "  -d, --data DATA      send DATA as text/plain\n"
    "  --timeout S          total timeout per request, seconds (default 300)\n"
    "  --connect-timeout S  connect timeout, seconds (default 30)\n"
    "  --read-timeout S     socket read timeout, seconds (default none)\n"
    "  -c N                 requests in flight at once (default 10)\n"
    "  -n N                 total requests, cycling over the URLs (default: one each)\n"
    "  -i                   print the response headers too\n"
    "  -q                   do not print the body (single URL)\n"
    "  -f, --fail           treat a status >= 400 as a failure (raise_for_status)\n"
    "  --max-body BYTES     cap on a body, received or decoded (default 64 MiB)\n"
    "  --max-redirects N    follow at most N redirects (default 10; 0 = do not follow)\n"
    "  --allow-downgrade    follow redirects from https:// to http://\n"
    "  -v                   say on stderr how each response came (TLS version, resumed)\n"
    "\n"
    "HTTPS (verified against the system's CAs by default):\n"
    "  --cacert FILE|DIR    trust these CAs (PEM bundle, or hashed directory) instead\n"
    "  --cert FILE          client certificate (PEM)\n"
    "  --key FILE           its private key (PEM; default: in --cert)\n"
    "  -k, --insecure       do not verify the server (warned about every time)\n"
    "\n"
    "cookies and proxies:\n"
    "  --cookie-jar FILE    read cookies from FILE (Netscape format, as curl's) and\n"
    "                       write them back at the end\n"
    "  --unsafe-cookies     keep cookies from hosts given as IP addresses\n"
    "  --proxy URL          http://[user:password@]host[:port] for every URL\n"
    "  --proxy-user U:P     proxy credentials (Basic)\n"
    "  --trust-env          use http_proxy, https_proxy and no_proxy\n"
    "  -h, --help           show this help\n"
    "\n"
    "exit status: 0 all succeeded; 2 usage error; else the class of the failure\n"
    "of the earliest URL on the command line that failed:\n"
    "   1 any other failure (connect, DNS, timeout, payload, status with -f, ...)\n"
    "  10 certificate expired or not yet valid   11 certificate host name mismatch\n"
    "  12 certificate self-signed or unknown CA   13 incomplete certificate chain\n"
    "  14 no TLS version in common (TLS 1.2+)     15 TLS handshake timeout\n"
    "  16 connection closed during the handshake  17 other TLS failure\n"
    "  18 unusable --cacert/--cert/--key          20 proxy unreachable\n"
    "  21 proxy authentication required (407)     22 proxy refused the tunnel\n"
    "  23 decoded body too large (decompression bomb)\n"
    "  24 https -> http redirect refused\n"
    "  25 cookie jar file unreadable or unwritable\n";

/* The exit status for a failure (see the usage text). */
static int exit_code(int e)
{
    switch (e) {
    case LOOM_CLIENT_E_CERT_EXPIRED:
        return 10;
    case LOOM_CLIENT_E_CERT_HOSTNAME:
        return 11;
    case LOOM_CLIENT_E_CERT_UNTRUSTED:
        return 12;
    case LOOM_CLIENT_E_CERT_CHAIN:
        return 13;
    case LOOM_CLIENT_E_TLS_VERSION:
        return 14;
    case LOOM_CLIENT_E_TLS_TIMEOUT:
        return 15;
    case LOOM_CLIENT_E_TLS_RESET:
        return 16;
    case LOOM_CLIENT_E_TLS:
        return 17;
    case LOOM_CLIENT_E_TLS_CONFIG:
        return 18;
    case LOOM_CLIENT_E_PROXY_CONNECT:
        return 20;
    case LOOM_CLIENT_E_PROXY_AUTH:
        return 21;
    case LOOM_CLIENT_E_PROXY_TUNNEL:
        return 22;
    case LOOM_CLIENT_E_DECODED_TOO_LARGE:
        return 23;
    case LOOM_CLIENT_E_DOWNGRADE:
        return 24;
    default:
        return e ? 1 : 0;
    }
}

#define MAX_HEADERS 64

typedef struct {
    loom_client *client;
    loom_client_opts opts;
    const char *method;
    char **urls;
    size_t nurls;
    size_t total, started, done, inflight, concurrency;
    size_t ok, failed;
    size_t errs[32];        /* by -code */
    size_t status_class[6]; /* 1xx..5xx */
    double *lat;
    size_t errors_shown;
    size_t tls, resumed;
    int first_error;     /* of the earliest request (in start order) that failed */
    size_t first_failed; /* its index + 1 (0: none yet) */
    int progress;
    uv_timer_t progress_timer;
    struct timespec t0;
} run_state;

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void start_more(run_state *st);
static run_state *running; /* one run per process; requests carry their index */

/* The exit status follows the earliest failed request in the order they were
 * started (the URLs' order), not the first to complete, so it does not
 * depend on timing. */
static void note_failure(run_state *st, size_t idx, int e)
{
    if (!st->first_failed || idx + 1 < st->first_failed) {
        st->first_failed = idx + 1;
        st->first_error = e;
    }
}

static void on_done_many(loom_client_response *resp, void *ud)
{
    run_state *st = running;
    size_t idx = (size_t)(uintptr_t)ud;
    st->inflight--;
    int e = loom_client_response_error(resp);
    st->lat[st->done++] = loom_client_response_elapsed(resp);
    int resumed = 0;
    if (loom_client_response_tls(resp, NULL, &resumed)) {
        st->tls++;
        st->resumed += resumed != 0;
    }
    if (e) {
        note_failure(st, idx, e);
        st->failed++;
        if (-e < 32) st->errs[-e]++;
        if (st->errors_shown < 10) {
            if (st->progress) fputs("\r\033[K", stderr);
            fprintf(stderr, "loom fetch: %s\n", loom_client_response_message(resp));
        }
        st->errors_shown++;
    } else {
        st->ok++;
    }
    int s = loom_client_response_status(resp);
    if (s >= 100 && s < 600) st->status_class[s / 100]++;
    loom_client_response_free(resp);
    start_more(st);
}

static void start_more(run_state *st)
{
    while (st->started < st->total && st->inflight < st->concurrency) {
        const char *url = st->urls[st->started % st->nurls];
        void *idx = (void *)(uintptr_t)st->started;
        st->started++;
        if (!loom_client_send(st->client, st->method, url, &st->opts, on_done_many, idx)) {
            fprintf(stderr,
                    "loom fetch: cannot start %s (bad method or header, or out of memory)\n", url);
            st->lat[st->done++] = 0;
            note_failure(st, (size_t)(uintptr_t)idx, LOOM_CLIENT_E_INVALID_ARGUMENT);
            st->failed++;
            continue;
        }
        st->inflight++;
    }
    if (st->done == st->total && st->progress) uv_close((uv_handle_t *)&st->progress_timer, NULL);
}

static void draw_progress(run_state *st)
{
    const int width = 40;
    double frac = st->total ? (double)st->done / (double)st->total : 1;
    int fill = (int)(frac * width);
    char bar[64];
    for (int i = 0; i < width; i++) bar[i] = i < fill ? '#' : '.';
    bar[width] = 0;
    fprintf(stderr, "\r[%s] %zu/%zu  %zu failed", bar, st->done, st->total, st->failed);
    fflush(stderr);
}

static void on_progress(uv_timer_t *t)
{
    draw_progress(t->data);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double pct(const double *v, size_t n, double p)
{
    if (n == 0) return 0;
    size_t i = (size_t)ceil(p / 100.0 * (double)n);
    if (i > 0) i--;
    if (i >= n) i = n - 1;
    return v[i];
}

static int run_many(run_state *st, uv_loop_t *loop)
{
    running = st;
    st->lat = calloc(st->total ? st->total : 1, sizeof *st->lat);
    if (!st->lat) return 1;
    st->progress = isatty(2);
    if (st->progress) {
        uv_timer_init(loop, &st->progress_timer);
        st->progress_timer.data = st;
        uv_timer_start(&st->progress_timer, on_progress, 100, 100);
    }
    double t0 = now_s();
    start_more(st);
    uv_run(loop, UV_RUN_DEFAULT);
    double dt = now_s() - t0;
    if (st->progress) {
        draw_progress(st);
        fputc('\n', stderr);
    }
    if (st->errors_shown > 10)
        fprintf(stderr, "loom fetch: ... and %zu more errors\n", st->errors_shown - 10);
    qsort(st->lat, st->done, sizeof *st->lat, cmp_double);
    printf("requests: %zu  succeeded: %zu  failed: %zu\n", st->total, st->ok, st->failed);
    printf("status:");
    for (int i = 1; i < 6; i++)
        if (st->status_class[i]) printf("  %dxx=%zu", i, st->status_class[i]);
    printf("\n");
    if (st->failed) {
        printf("errors:");
        for (int i = 1; i < 32; i++)
            if (st->errs[i]) printf("  %s=%zu", loom_client_strerror(-i), st->errs[i]);
        printf("\n");
    }
    if (st->tls) printf("tls: %zu responses, %zu on resumed sessions\n", st->tls, st->resumed);
    printf("time: %.3f s  requests/s: %.1f\n", dt, dt > 0 ? (double)st->done / dt : 0.0);
    printf("latency: p50 %.2f ms  p90 %.2f ms  p99 %.2f ms  max %.2f ms\n",
           pct(st->lat, st->done, 50) * 1e3, pct(st->lat, st->done, 90) * 1e3,
           pct(st->lat, st->done, 99) * 1e3, st->done ? st->lat[st->done - 1] * 1e3 : 0.0);
    free(st->lat);
    return st->failed ? exit_code(st->first_error) : 0;
}

typedef struct {
    int show_headers, quiet, verbose;
    int rc;
} one_state;

static void on_done_one(loom_client_response *resp, void *ud)
{
    one_state *os = ud;
    int e = loom_client_response_error(resp);
    int s = loom_client_response_status(resp);
    if (e && s == 0) {
        fprintf(stderr, "loom fetch: %s\n", loom_client_response_message(resp));
        os->rc = exit_code(e);
        loom_client_response_free(resp);
        return;
    }
    const char *tlsv;
    int resumed;
    if (os->verbose && loom_client_response_tls(resp, &tlsv, &resumed))
        fprintf(stderr, "loom fetch: %s, %s session\n", tlsv ? tlsv : "TLS",
                resumed ? "resumed" : "new");
    printf("HTTP/1.%d %d %s\n", resp->version_minor, s, loom_client_response_reason(resp));
    if (os->show_headers) {
        for (size_t i = 0; i < loom_client_response_header_count(resp); i++) {
            const char *n, *v;
            loom_client_response_header_at(resp, i, &n, &v);
            printf("%s: %s\n", n, v);
        }
    }
    printf("\n");
    /* a body cut at the size limit (a bomb's zeros) is not worth printing */
    if (!os->quiet && e != LOOM_CLIENT_E_TOO_LARGE && e != LOOM_CLIENT_E_DECODED_TOO_LARGE) {
        size_t len;
        const char *body = loom_client_response_body(resp, &len);
        fwrite(body, 1, len, stdout);
        if (len && body[len - 1] != '\n' && isatty(1)) putchar('\n');
    }
    fflush(stdout);
    if (e) {
        fprintf(stderr, "loom fetch: %s\n", loom_client_response_message(resp));
        os->rc = exit_code(e);
    }
    loom_client_response_free(resp);
}

static int num_arg(const char *flag, const char *v, double *out)
{
    char *end;
    double d = v ? strtod(v, &end) : 0;
    if (!v || *end || end == v || d < 0) {
        fprintf(stderr, "loom fetch: %s needs a non-negative number\n", flag);
        return -1;
    }
    *out = d;
    return 0;
}

int loom__cmd_fetch(int argc, char **argv)
{
    const char *method = NULL;
    loom_client_header headers[MAX_HEADERS];
    char *hbuf[MAX_HEADERS];
    size_t nheaders = 0;
    loom_client_opts opts;
    memset(&opts, 0, sizeof opts);
    loom_client_config cfg;
    memset(&cfg, 0, sizeof cfg);
    double conc = 10, count = 0, d;
    int show_headers = 0, quiet = 0, verbose = 0, unsafe_cookies = 0, rc = 2;
    const char *jar_file = NULL;
    loom_cookie_jar *jar = NULL;
    char **urls = calloc((size_t)argc + 1, sizeof *urls);
    size_t nurls = 0;
    if (!urls) return 1;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(fetch_usage, stdout);
            rc = 0;
            goto out;
        } else if (!strcmp(a, "-X")) {
            if (!v) goto missing;
            method = v;
            i++;
        } else if (!strcmp(a, "-H")) {
            if (!v) goto missing;
            const char *colon = strchr(v, ':');
            if (!colon || colon == v || nheaders == MAX_HEADERS) {
                fprintf(stderr, "loom fetch: -H needs 'Name: value' (got '%s')\n", v);
                goto out;
            }
            hbuf[nheaders] = strndup(v, (size_t)(colon - v));
            const char *val = colon + 1;
            while (*val == ' ' || *val == '\t') val++;
            headers[nheaders].name = hbuf[nheaders];
            headers[nheaders].value = val;
            nheaders++;
            i++;
        } else if (!strcmp(a, "--json")) {
            if (!v) goto missing;
            opts.json = v;
            i++;
        } else if (!strcmp(a, "-d") || !strcmp(a, "--data")) {
            if (!v) goto missing;
            opts.text = v;
            i++;
        } else if (!strcmp(a, "--timeout")) {
            if (num_arg(a, v, &d)) goto out;
            opts.total_timeout = d > 0 ? d : -1;
            i++;
        } else if (!strcmp(a, "--connect-timeout")) {
            if (num_arg(a, v, &d)) goto out;
            opts.connect_timeout = d > 0 ? d : -1;
            i++;
        } else if (!strcmp(a, "--read-timeout")) {
            if (num_arg(a, v, &d)) goto out;
            opts.read_timeout = d > 0 ? d : -1;
            i++;
        } else if (!strcmp(a, "--max-redirects")) {
            if (num_arg(a, v, &d)) goto out;
            opts.max_redirects = d >= 1 ? (int)d : -1;
            i++;
        } else if (!strcmp(a, "--max-body")) {
            if (num_arg(a, v, &d) || d < 1) goto out;
            cfg.max_body_size = (size_t)d;
            i++;
        } else if (!strcmp(a, "-c")) {
            if (num_arg(a, v, &conc) || conc < 1) {
                fprintf(stderr, "loom fetch: -c needs a number >= 1\n");
                goto out;
            }
            i++;
        } else if (!strcmp(a, "-n")) {
            if (num_arg(a, v, &count) || count < 1) {
                fprintf(stderr, "loom fetch: -n needs a number >= 1\n");
                goto out;
            }
            i++;
        } else if (!strcmp(a, "--cacert")) {
            if (!v) goto missing;
            struct stat sb;
            if (stat(v, &sb) == 0 && S_ISDIR(sb.st_mode))
                cfg.tls.ca_path = v;
            else
                cfg.tls.ca_file = v;
            i++;
        } else if (!strcmp(a, "--cert")) {
            if (!v) goto missing;
            cfg.tls.cert_file = v;
            i++;
        } else if (!strcmp(a, "--key")) {
            if (!v) goto missing;
            cfg.tls.key_file = v;
            i++;
        } else if (!strcmp(a, "-k") || !strcmp(a, "--insecure")) {
            cfg.tls.insecure = 1;
        } else if (!strcmp(a, "--cookie-jar")) {
            if (!v) goto missing;
            jar_file = v;
            i++;
        } else if (!strcmp(a, "--unsafe-cookies")) {
            unsafe_cookies = 1;
        } else if (!strcmp(a, "--proxy")) {
            if (!v) goto missing;
            cfg.proxy = v;
            i++;
        } else if (!strcmp(a, "--proxy-user")) {
            if (!v) goto missing;
            cfg.proxy_auth = v;
            i++;
        } else if (!strcmp(a, "--trust-env")) {
            cfg.trust_env = 1;
        } else if (!strcmp(a, "--allow-downgrade")) {
            cfg.allow_downgrade = 1;
        } else if (!strcmp(a, "-v")) {
            verbose = 1;
        } else if (!strcmp(a, "-i")) {
            show_headers = 1;
        } else if (!strcmp(a, "-q")) {
            quiet = 1;
        } else if (!strcmp(a, "-f") || !strcmp(a, "--fail")) {
            opts.raise_for_status = 1;
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "loom fetch: unknown option '%s' (see loom fetch --help)\n", a);
            goto out;
        } else {
            urls[nurls++] = argv[i];
        }
        continue;
    missing:
        fprintf(stderr, "loom fetch: %s needs a value\n", a);
        goto out;
    }
    if (nurls == 0) {
        fputs(fetch_usage, stderr);
        goto out;
    }
    if (!method) method = (opts.json || opts.text) ? "POST" : "GET";
    if (cfg.proxy_auth && !cfg.proxy) {
        fprintf(stderr, "loom fetch: --proxy-user needs --proxy\n");
        goto out;
    }
    if (cfg.tls.insecure)
        fprintf(stderr, "loom fetch: warning: --insecure: server certificates are not verified; "
                        "anyone on the path can read and change this traffic\n");
    if (jar_file || unsafe_cookies) {
        jar = loom_cookie_jar_new(unsafe_cookies ? LOOM_COOKIE_JAR_UNSAFE : 0);
        char jerr[512];
        if (!jar) {
            fprintf(stderr, "loom fetch: out of memory\n");
            rc = 1;
            goto out;
        }
        if (jar_file && loom_cookie_jar_load(jar, jar_file, jerr, sizeof jerr) < 0) {
            fprintf(stderr, "loom fetch: %s\n", jerr);
            rc = 25;
            goto out;
        }
        cfg.cookie_jar = jar;
    }
    opts.headers = headers;
    opts.nheaders = nheaders;
    uv_loop_t loop;
    uv_loop_init(&loop);
    if (conc > 100) cfg.limit = (size_t)conc;
    loom_client *client = loom_client_new(&loop, &cfg);
    if (!client) {
        fprintf(stderr, "loom fetch: out of memory\n");
        rc = 1;
        uv_loop_close(&loop);
        goto out;
    }
    if (nurls == 1 && count <= 1) {
        one_state os = {show_headers, quiet, verbose, 0};
        if (!loom_client_send(client, method, urls[0], &opts, on_done_one, &os)) {
            fprintf(stderr, "loom fetch: cannot start %s %s (bad method or header?)\n", method,
                    urls[0]);
            os.rc = 1;
        }
        uv_run(&loop, UV_RUN_DEFAULT);
        rc = os.rc;
    } else {
        run_state st;
        memset(&st, 0, sizeof st);
        st.client = client;
        st.opts = opts;
        st.method = method;
        st.urls = urls;
        st.nurls = nurls;
        st.total = count >= 1 ? (size_t)count : nurls;
        st.concurrency = (size_t)conc;
        rc = run_many(&st, &loop);
    }
    loom_client_close(client);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    if (jar_file) {
        char jerr[512];
        if (loom_cookie_jar_save(jar, jar_file, jerr, sizeof jerr)) {
            fprintf(stderr, "loom fetch: %s\n", jerr);
            if (rc == 0) rc = 25;
        }
    }
out:
    loom_cookie_jar_free(jar);
    for (size_t i = 0; i < nheaders; i++) free(hbuf[i]);
    free(urls);
    return rc;
}
