/* bench_ws_load: the client side of bench/ws.py's WebSocket workloads, on
 * loom's own client (<loom/client.h>), one loop.
 *
 *   echo URL CONNS SECONDS SIZE   CONNS connections each send a SIZE-byte text
 *                                 message and send the next when its echo is
 *                                 back; prints "connected", then after SECONDS
 *                                 {"messages": N, "seconds": S, "errors": E}
 *   idle URL N                    opens N connections, prints "ready N", keeps
 *                                 them until stdin closes
 *   fanout URL N ROUNDS           N subscribers (URL?ch=fan) and a publisher:
 *                                 each round publishes one message and times
 *                                 until every subscriber has it; prints
 *                                 {"subscribers": N, "ms": [...]}
 * Connections are opened at most 256 at a time (a listen backlog is finite). */
#include <loom/client.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

static uv_loop_t loop;
static loom_client *client;
static const char *mode, *url;
static int conns, opened, failed, ready, rounds, round_no;
static size_t msg_size;
static char *msg;
static uint64_t messages, errors, seconds, got_this_round;
static uint64_t t_round;
static loom_client_ws **all;
static int next_to_open;
static double ms_list[64];
static uv_timer_t timer;
static uv_pipe_t in;
static int measuring;

static void open_more(void);

static void on_open(loom_client_ws *ws, void *ud)
{
    (void)ud;
    opened++;
    if (!strcmp(mode, "echo")) loom_client_ws_send(ws, LOOM_CLIENT_WS_TEXT, msg, msg_size);
    open_more();
    if (!strcmp(mode, "echo") && opened == conns) {
        printf("connected\n");
        fflush(stdout);
        measuring = 1;
        messages = 0;
    }
}

static void on_message(loom_client_ws *ws, int type, const void *data, size_t len, void *ud)
{
    (void)type;
    (void)data;
    intptr_t idx = (intptr_t)ud;
    if (!strcmp(mode, "echo")) {
        messages++;
        if (loom_client_ws_send(ws, LOOM_CLIENT_WS_TEXT, msg, msg_size)) errors++;
        return;
    }
    if (len == 5 && !memcmp(data, "ready", 5)) {
        ready++;
        return;
    }
    if (!strcmp(mode, "fanout") && idx < conns && ++got_this_round == (uint64_t)conns) {
        ms_list[round_no] = (double)(uv_hrtime() - t_round) / 1e6;
        round_no++;
    }
}

static void on_error(loom_client_ws *ws, int code, const char *m, void *ud)
{
    (void)ws;
    (void)ud;
    errors++;
    if (errors <= 3) fprintf(stderr, "bench_ws_load: %d %s\n", code, m);
}

static void on_close(loom_client_ws *ws, int code, const char *reason, size_t len, void *ud)
{
    (void)ws;
    (void)code;
    (void)reason;
    (void)len;
    (void)ud;
    failed++;
}

static loom_client_ws *open_one(const char *u, intptr_t idx)
{
    loom_client_ws_opts o;
    memset(&o, 0, sizeof o);
    o.on_open = on_open;
    o.on_message = on_message;
    o.on_error = on_error;
    o.on_close = on_close;
    o.ud = (void *)idx;
    o.timeout = 60;
    char err[256];
    loom_client_ws *ws = loom_client_ws_connect(client, u, &o, err, sizeof err);
    if (!ws) fprintf(stderr, "bench_ws_load: %s\n", err);
    return ws;
}

static void open_more(void)
{
    char u[1024];
    snprintf(u, sizeof u, "%s%s", url, !strcmp(mode, "fanout") ? "?ch=fan" : "");
    while (next_to_open < conns && next_to_open - opened - failed < 256) {
        all[next_to_open] = open_one(u, next_to_open);
        next_to_open++;
    }
}

static void on_stdin(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    free(b->base);
    if (n < 0) {
        uv_close((uv_handle_t *)s, NULL);
        uv_timer_stop(&timer);
        uv_close((uv_handle_t *)&timer, NULL);
        loom_client_close(client);
    }
}

static void alloc_cb(uv_handle_t *h, size_t n, uv_buf_t *b)
{
    (void)h;
    *b = uv_buf_init(malloc(n), (unsigned)n);
}

static uint64_t t_start;

static void tick(uv_timer_t *t)
{
    (void)t;
    uint64_t now = uv_hrtime();
    if (!strcmp(mode, "echo")) {
        if (!measuring) return;
        if (!t_start) t_start = now;
        if (now - t_start >= seconds * 1000000000ull) {
            printf("{\"messages\": %llu, \"seconds\": %.3f, \"errors\": %llu}\n",
                   (unsigned long long)messages, (double)(now - t_start) / 1e9,
                   (unsigned long long)errors);
            fflush(stdout);
            uv_timer_stop(&timer);
            uv_close((uv_handle_t *)&timer, NULL);
            loom_client_close(client);
        }
        return;
    }
    if (!strcmp(mode, "idle")) {
        if (ready == conns && !measuring) {
            measuring = 1;
            printf("ready %d\n", ready);
            fflush(stdout);
            uv_pipe_init(&loop, &in, 0);
            uv_pipe_open(&in, 0);
            uv_read_start((uv_stream_t *)&in, alloc_cb, on_stdin);
        }
        return;
    }
    /* fanout */
    if (ready < conns + 1) {
        if (ready == conns && !all[conns]) all[conns] = open_one(url, conns);
        return;
    }
    if (round_no >= rounds) {
        printf("{\"subscribers\": %d, \"ms\": [", conns);
        for (int i = 0; i < rounds; i++) printf("%s%.3f", i ? ", " : "", ms_list[i]);
        printf("], \"errors\": %llu}\n", (unsigned long long)errors);
        fflush(stdout);
        uv_timer_stop(&timer);
        uv_close((uv_handle_t *)&timer, NULL);
        loom_client_close(client);
        return;
    }
    if (t_round && got_this_round < (uint64_t)conns) return; /* this round still runs */
    if (t_round && now - t_round < 300000000ull) return;     /* a pause between rounds */
    char p[64];
    int n = snprintf(p, sizeof p, "pub fan round %d", round_no);
    got_this_round = 0;
    t_round = uv_hrtime();
    loom_client_ws_send(all[conns], LOOM_CLIENT_WS_TEXT, p, (size_t)n);
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: bench_ws_load echo|idle|fanout URL N [SECONDS SIZE | ROUNDS]\n");
        return 2;
    }
    mode = argv[1];
    url = argv[2];
    conns = atoi(argv[3]);
    seconds = argc > 4 ? (uint64_t)atoi(argv[4]) : 2;
    msg_size = argc > 5 ? (size_t)atol(argv[5]) : 32;
    rounds = argc > 4 ? atoi(argv[4]) : 5;
    if (rounds > 64) rounds = 64;
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    msg = malloc(msg_size ? msg_size : 1);
    memset(msg, 'm', msg_size);
    all = calloc((size_t)conns + 1, sizeof *all);
    uv_loop_init(&loop);
    client = loom_client_new(&loop, NULL);
    uv_timer_init(&loop, &timer);
    uv_timer_start(&timer, tick, 20, 20);
    open_more();
    uv_run(&loop, UV_RUN_DEFAULT);
    return errors ? 1 : 0;
}
