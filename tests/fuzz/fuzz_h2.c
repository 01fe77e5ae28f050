/* fuzz_h2: the HTTP/2 input path. The client preface and then the input's
 * bytes go over a loopback TCP connection to an h2c listener of a worker on
 * this thread: conn.c's sniffing hands the connection to core/http2, whose
 * nghttp2 session, stream/request mapping, limits and defences read the
 * frames, and whose handler answers the way plugins do: at once, later from
 * a timer, streamed, with 70 KB, from a file, or echoing the body.
 *
 * Input: byte 0 = split mode (bits 0-1), how the client ends (bit 2: reset
 * with SO_LINGER 0 instead of a half-close; bit 3: reset before all bytes
 * are sent) and bit 4: no automatic preface (the input brings its own);
 * bytes 1-2 seed the splits; the rest is what follows the preface.
 *
 * Invariants: no sanitizer report; the server closes the connection once
 * the client is done (no hang, no connection left behind); every request
 * handed to the handler is finished exactly once. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
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
static loom_req *waiting[256];
static size_t nwaiting;
static char file_path[64];
static long handed, finished;

static void finish(loom_req *r)
{
    finished++;
    loom__req_finish(r);
}

static void answer(loom_req *r, int kind)
{
    static char big[70000];
    if (!big[0]) memset(big, 'x', sizeof big);
    switch (kind) {
    case 's': /* streamed */
        loom__resp_header_add(r, "Content-Type", 12, "text/plain", 10);
        loom__req_stream_write(r, "hello ", 6);
        loom__req_stream_write(r, big, 20000);
        finish(r);
        return;
    case 'b':
        r->resp.status = 200;
        loom__resp_body_take(r, big, sizeof big, NULL);
        finish(r);
        return;
    case 'f': {
        int fd = open(file_path, O_RDONLY | O_CLOEXEC);
        r->resp.status = 200;
        if (fd >= 0) loom__resp_file(r, fd, 100, 40000);
        finish(r);
        return;
    }
    case 'h': /* headers HTTP/2 must drop, and a mixed-case name */
        loom__resp_header_add(r, "Keep-Alive", 10, "5", 1);
        loom__resp_header_add(r, "X-Mixed", 7, "v", 1);
        r->resp.status = 204;
        finish(r);
        return;
    default: {
        char body[64];
        int n = snprintf(body, sizeof body, "%s %zu\n", r->method, r->body.len);
        r->resp.status = 200;
        loom__resp_header_add(r, "Content-Type", 12, "text/plain", 10);
        loom__resp_body_copy(r, body, (size_t)n);
        finish(r);
        return;
    }
    }
}

static void on_later(uv_timer_t *t)
{
    (void)t;
    size_t n = nwaiting;
    nwaiting = 0;
    for (size_t i = 0; i < n; i++) answer(waiting[i], i % 2 ? 's' : 0);
}

static void handle(loom__worker *w, loom_req *r)
{
    (void)w;
    handed++;
    char k = r->path_len > 1 ? r->path[1] : 0;
    if (k == 'a' && nwaiting < sizeof waiting / sizeof waiting[0]) {
        waiting[nwaiting++] = r;
        uv_timer_start(&later, on_later, 0, 0);
        return;
    }
    answer(r, k);
}

static void on_abort(loom__worker *w, loom_req *r)
{
    (void)w;
    (void)r; /* a waiting request is finished by the timer */
}

static void setup(void)
{
    if (worker.loop) return;
    uv_loop_init(&loop);
    loom__config_defaults(&cfg);
    cfg.linger_timeout = 50;
    cfg.client_max_size = 100000;
    char err[200];
    const char *io = getenv("LOOM_TEST_IO");
    if (io) FUZZ_CHECK(loom__config_set(&cfg, "io", io, err, sizeof err) == 0);
    FUZZ_CHECK(loom__config_add_listen(&cfg, "127.0.0.1:0", err, sizeof err) == 0);
    cfg.listen[0].h2c = 1;
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
    snprintf(file_path, sizeof file_path, "/tmp/loom-fuzz-h2-%d", (int)getpid());
    int f = open(file_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    FUZZ_CHECK(f >= 0);
    static char chunk[50000];
    memset(chunk, 'f', sizeof chunk);
    FUZZ_CHECK(write(f, chunk, sizeof chunk) == (ssize_t)sizeof chunk);
    close(f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    setup();
    if (size < 3) return 0;
    uint8_t mode = data[0];
    fuzz_rng rng = {(uint32_t)data[1] << 8 | data[2]};
    size_t plen = (mode & 16) ? 0 : sizeof preface - 1;
    size_t len = plen + size - 3;
    char *in = malloc(len ? len : 1);
    FUZZ_CHECK(in != NULL);
    memcpy(in, preface, plen);
    memcpy(in + plen, data + 3, size - 3);
    fuzz_drive(&worker, &addr, in, len, mode, &rng);
    free(in);
    /* Requests answered later are done with. */
    while (nwaiting) loom__worker_poll(&worker);
    FUZZ_CHECK(handed == finished); /* every request handed over was finished once */
    return 0;
}
