/* fuzz_client_resp: the client's response parsing, curl-fuzzer style. A
 * scripted server on this thread's loop (127.0.0.1) answers the client's
 * request with the input's bytes, written in pieces the input chooses, and
 * the real client (pool, llhttp response parser and its callbacks, chunked
 * and gzip/deflate decoding, size caps, keep-alive reuse) reads them. Every
 * Location header is also resolved against the request URL with the same
 * function redirects use (redirects are not followed: they could lead to a
 * host name and a DNS lookup).
 *
 * Input: byte 0 = flags: bits 0-1 split mode, bit 2 HEAD instead of GET,
 * bit 3 no_decompress, bit 4 stream the body through on_chunk, bit 5 a
 * second request after the first completes (pool reuse), bit 6 the server
 * keeps the connection open after its bytes, bit 7 a 100-byte body cap;
 * bytes 1-2 seed the splits; the rest is what the server sends.
 *
 * Invariants: no sanitizer report; every request completes exactly once,
 * within the timeouts; a successful response has a status in 100-999 and
 * a body no larger than the cap. */
#include <arpa/inet.h>
#include <string.h>
#include <strings.h>

#include "client/client_int.h"
#include "fuzz_common.h"

static uv_loop_t loop;
static uv_tcp_t listener;
static int port;
static uv_timer_t watchdog;

static const char *script;
static size_t script_len;
static uint8_t flags;
static fuzz_rng rng;
static int live_sconns;

typedef struct {
    uv_tcp_t tcp;
    uv_timer_t next;
    size_t off;
    int writing, closing, started;
} sconn;

static void s_closed(uv_handle_t *h)
{
    sconn *s = h->data;
    if (h == (uv_handle_t *)&s->tcp)
        uv_close((uv_handle_t *)&s->next, s_closed);
    else {
        live_sconns--;
        free(s);
    }
}

static void s_close(sconn *s)
{
    if (s->closing) return;
    s->closing = 1;
    uv_timer_stop(&s->next);
    uv_close((uv_handle_t *)&s->tcp, s_closed);
}

static void s_send_piece(uv_timer_t *t);

static void s_written(uv_write_t *w, int status)
{
    sconn *s = w->data;
    free(w);
    s->writing = 0;
    if (s->closing) return;
    if (status < 0) {
        s_close(s);
        return;
    }
    if (s->off < script_len) {
        uv_timer_start(&s->next, s_send_piece, 0, 0); /* a loop turn between pieces */
    } else if (!(flags & 64)) {
        s_close(s);
    }
}

static void s_send_piece(uv_timer_t *t)
{
    sconn *s = t->data;
    if (s->closing) return;
    size_t n = fuzz_split(&rng, flags, script_len - s->off);
    if (n == 0) {
        if (!(flags & 64)) s_close(s);
        return;
    }
    uv_write_t *w = malloc(sizeof *w);
    w->data = s;
    uv_buf_t b = uv_buf_init((char *)script + s->off, (unsigned)n);
    s->off += n;
    if (uv_write(w, (uv_stream_t *)&s->tcp, &b, 1, s_written) < 0) {
        free(w);
        s_close(s);
        return;
    }
    s->writing = 1;
}

static void s_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
    (void)h;
    (void)hint;
    static char buf[65536];
    *b = uv_buf_init(buf, sizeof buf);
}

static void s_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b)
{
    (void)b;
    sconn *s = st->data;
    if (n < 0) {
        s_close(s);
        return;
    }
    if (n > 0 && !s->started) { /* the request arrived: answer */
        s->started = 1;
        s_send_piece(&s->next);
    }
}

static void on_conn(uv_stream_t *l, int status)
{
    if (status < 0) return;
    sconn *s = calloc(1, sizeof *s);
    live_sconns++;
    uv_tcp_init(&loop, &s->tcp);
    uv_timer_init(&loop, &s->next);
    s->tcp.data = s->next.data = s;
    if (uv_accept(l, (uv_stream_t *)&s->tcp) < 0) {
        s_close(s);
        return;
    }
    uv_read_start((uv_stream_t *)&s->tcp, s_alloc, s_read);
}

static void on_watchdog(uv_timer_t *t)
{
    (void)t;
    FUZZ_CHECK(!"the client did not finish within 10 s");
}

static void setup(void)
{
    if (port) return;
    uv_loop_init(&loop);
    uv_tcp_init(&loop, &listener);
    struct sockaddr_in a;
    uv_ip4_addr("127.0.0.1", 0, &a);
    FUZZ_CHECK(uv_tcp_bind(&listener, (struct sockaddr *)&a, 0) == 0);
    FUZZ_CHECK(uv_listen((uv_stream_t *)&listener, 128, on_conn) == 0);
    struct sockaddr_storage ss;
    int sl = sizeof ss;
    uv_tcp_getsockname(&listener, (struct sockaddr *)&ss, &sl);
    port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
    uv_unref((uv_handle_t *)&listener);
    uv_timer_init(&loop, &watchdog);
    uv_unref((uv_handle_t *)&watchdog);
}

static loom_client *client;
static int requests_left, done_count;
static char url[64];
static loom__url base;

static int on_chunk(loom_client_response *resp, const char *d, size_t len, void *ud)
{
    (void)resp;
    (void)ud;
    FUZZ_CHECK(len == 0 || d);
    return len > 0 && d[0] == '!'; /* sometimes stop early */
}

static void send_one(void);

static void on_done(loom_client_response *resp, void *ud)
{
    (void)ud;
    done_count++;
    int e = loom_client_response_error(resp);
    if (!e) {
        int st = loom_client_response_status(resp);
        FUZZ_CHECK(st >= 100 && st <= 999);
        size_t bl;
        const char *b = loom_client_response_body(resp, &bl);
        FUZZ_CHECK(b && bl <= ((flags & 128) ? 100u : (size_t)64 << 20));
        FUZZ_CHECK(loom_client_response_reason(resp) != NULL);
    } else {
        FUZZ_CHECK(loom_client_response_message(resp)[0] != '\0');
    }
    for (size_t i = 0; i < loom_client_response_header_count(resp); i++) {
        const char *n, *v;
        loom_client_response_header_at(resp, i, &n, &v);
        FUZZ_CHECK(n && v);
        if (strcasecmp(n, "location") == 0) {
            loom__url out;
            char err[160];
            if (loom__url_resolve(&base, v, &out, err, sizeof err) == 0) {
                FUZZ_CHECK(out.full && out.host && out.target && out.target[0] == '/');
                loom__url_free(&out);
            }
        }
    }
    loom_client_response_free(resp);
    if (--requests_left > 0)
        send_one();
    else
        loom_client_close(client);
}

static void send_one(void)
{
    loom_client_opts o;
    memset(&o, 0, sizeof o);
    if (flags & 16) o.on_chunk = on_chunk;
    loom_client_request *r =
        loom_client_send(client, (flags & 4) ? "HEAD" : "GET", url, &o, on_done, NULL);
    FUZZ_CHECK(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    setup();
    if (size < 3) return 0;
    flags = data[0];
    rng.s = (uint32_t)data[1] << 8 | data[2];
    script = (const char *)data + 3;
    script_len = size - 3;

    loom_client_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.total_timeout = 2;
    cfg.read_timeout = 0.05;
    cfg.max_redirects = -1;
    cfg.no_decompress = (flags & 8) != 0;
    cfg.max_body_size = (flags & 128) ? 100 : 0;
    client = loom_client_new(&loop, &cfg);
    FUZZ_CHECK(client);
    snprintf(url, sizeof url, "http://127.0.0.1:%d/fuzz?x=1", port);
    char err[160];
    FUZZ_CHECK(loom__url_parse(url, &base, err, sizeof err) == 0);
    requests_left = (flags & 32) ? 2 : 1;
    int expect = requests_left;
    done_count = 0;
    send_one();
    uv_timer_start(&watchdog, on_watchdog, 10000, 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_timer_stop(&watchdog);
    FUZZ_CHECK(done_count == expect);
    FUZZ_CHECK(live_sconns == 0);
    loom__url_free(&base);
    return 0;
}
