/* fuzz_conn: a whole connection, h2o/nginx style. The input's bytes go over
 * a loopback TCP connection into the real connection state machine
 * (core/server/conn.c: parser glue, pipelining, 100-continue, error
 * responses, lingering close) of a worker running on this thread, whose
 * handler answers the way plugins do: at once, later from a timer,
 * streamed, or with a large body.
 *
 * Input: byte 0 = split mode (bits 0-1) and how the client ends (bit 2:
 * reset with SO_LINGER 0 instead of a half-close; bit 3: reset before all
 * bytes are sent); bytes 1-2 seed the splits; the rest is what the client
 * sends.
 *
 * Invariants: no sanitizer report; the server closes the connection once the
 * client is done (no hang, no connection left behind). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "fuzz_drive.h"
#include "http/response.h"
#include "server/conn.h"
#include "server/listen.h"
#include "server/server.h"

static uv_loop_t loop;
static loom__worker worker;
static loom__config cfg;
static struct sockaddr_in addr;
static uv_timer_t later;
static loom_req *waiting[64];
static size_t nwaiting;

static void answer(loom_req *r, int kind)
{
    static char big[70000];
    if (!big[0]) memset(big, 'x', sizeof big);
    if (!r->conn) { /* the client went away: finishing just frees */
        loom__req_finish(r);
        return;
    }
    switch (kind) {
    case 's': /* streamed */
        loom__resp_header_add(r, "Content-Type", 12, "text/plain", 10);
        loom__req_stream_write(r, "hello ", 6);
        loom__req_stream_write(r, big, 3000);
        loom__req_finish(r);
        return;
    case 'b': /* larger than a socket buffer takes at once */
        r->resp.status = 200;
        loom__resp_body_take(r, big, sizeof big, NULL);
        loom__req_finish(r);
        return;
    case 'c':
        r->resp.status = 204;
        r->resp.close = 1;
        loom__req_finish(r);
        return;
    default: {
        char body[64];
        int n = snprintf(body, sizeof body, "%s %zu\n", r->method, r->body.len);
        r->resp.status = 200;
        loom__resp_header_add(r, "Content-Type", 12, "text/plain", 10);
        loom__resp_body_copy(r, body, (size_t)n);
        loom__req_finish(r);
        return;
    }
    }
}

static void on_later(uv_timer_t *t)
{
    (void)t;
    size_t n = nwaiting;
    nwaiting = 0;
    for (size_t i = 0; i < n; i++) answer(waiting[i], 0);
}

static void handle(loom__worker *w, loom_req *r)
{
    (void)w;
    char k = r->path_len > 1 ? r->path[1] : 0;
    if (k == 'a' && nwaiting < 64) { /* answered later, from the loop */
        waiting[nwaiting++] = r;
        uv_timer_start(&later, on_later, 0, 0);
        return;
    }
    answer(r, k);
}

static void on_abort(loom__worker *w, loom_req *r)
{
    (void)w;
    (void)r; /* a pending request is finished (freed) by the timer */
}

#ifdef FUZZ_CONN_TLS
void fuzz_tls_setup(loom__config *cfg, loom__worker *w); /* fuzz_tls.c */
#endif

static void setup(void)
{
    if (worker.loop) return;
    uv_loop_init(&loop);
    loom__config_defaults(&cfg);
    cfg.linger_timeout = 50;
    char err[200];
    /* Both I/O backends: LOOM_TEST_IO=epoll (or uring) picks one. */
    const char *io = getenv("LOOM_TEST_IO");
    if (io) FUZZ_CHECK(loom__config_set(&cfg, "io", io, err, sizeof err) == 0);
#ifdef FUZZ_CONN_TLS
    fuzz_tls_setup(&cfg, &worker);
#endif
    int fd = loom__listen_socket("127.0.0.1", 0, 0, err, sizeof err);
    FUZZ_CHECK(fd >= 0);
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)loom__socket_port(fd));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    FUZZ_CHECK(loom__config_finish(&cfg, err, sizeof err) == 0);
    FUZZ_CHECK(loom__worker_init(&worker, &loop, &cfg, &fd, 0) == 0);
    worker.handle = handle;
    worker.on_abort = on_abort;
    uv_timer_init(&loop, &later);
    /* The loop is only ever run turn by turn, without waiting. */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    setup();
    if (size < 3) return 0;
    uint8_t mode = data[0];
    fuzz_rng rng = {(uint32_t)data[1] << 8 | data[2]};
    const char *in = (const char *)data + 3;
    size_t len = size - 3;
    fuzz_drive(&worker, &addr, in, len, mode, &rng);
    /* Requests answered later are done with. */
    while (nwaiting) loom__worker_poll(&worker);
    return 0;
}
