/* Drives <loom/client.h>'s WebSocket for tests/ws: connects to argv[1],
 * sends the messages given, prints what happens, one line per event:
 *   open PROTOCOL|- deflate=0|1
 *   text TEXT | binary LEN FIRSTBYTES(hex) | error CODE MESSAGE | close CODE REASON
 * Options: --deflate, --proto LIST, --heartbeat S, --max BYTES, --timeout S,
 * --text T, --binary N (N bytes 0..255 repeating), --ping T, --wait N (messages
 * to wait for before closing), --close CODE[:REASON], --no-close. */
#include <loom/client.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    int kind; /* 't', 'b', 'p' */
    const char *arg;
} msg;

static msg msgs[64];
static int nmsgs, wait_for = -1, got, close_code = 1000, no_close;
static const char *close_reason = "done";
static loom_client *client;

static void maybe_close(loom_client_ws *ws)
{
    if (!no_close && got >= wait_for) loom_client_ws_close(ws, close_code, close_reason);
}

static void on_open(loom_client_ws *ws, void *ud)
{
    (void)ud;
    printf("open %s deflate=%d\n", loom_client_ws_protocol(ws) ? loom_client_ws_protocol(ws) : "-",
           loom_client_ws_deflate(ws));
    for (int i = 0; i < nmsgs; i++) {
        int rc;
        if (msgs[i].kind == 'b') {
            size_t n = (size_t)atol(msgs[i].arg);
            unsigned char *b = malloc(n ? n : 1);
            for (size_t k = 0; k < n; k++) b[k] = (unsigned char)k;
            rc = loom_client_ws_send(ws, LOOM_CLIENT_WS_BINARY, b, n);
            free(b);
        } else {
            rc = loom_client_ws_send(
                ws, msgs[i].kind == 'p' ? LOOM_CLIENT_WS_PING : LOOM_CLIENT_WS_TEXT, msgs[i].arg,
                strlen(msgs[i].arg));
        }
        if (rc) printf("send-error %d\n", rc);
    }
    if (wait_for < 0) wait_for = nmsgs;
    maybe_close(ws);
    fflush(stdout);
}

static void on_message(loom_client_ws *ws, int type, const void *data, size_t len, void *ud)
{
    (void)ud;
    if (type == LOOM_CLIENT_WS_TEXT) {
        printf("text %.*s\n", (int)(len > 200 ? 200 : len), (const char *)data);
    } else {
        printf("binary %zu ", len);
        for (size_t i = 0; i < len && i < 8; i++) printf("%02x", ((const unsigned char *)data)[i]);
        printf("\n");
    }
    got++;
    maybe_close(ws);
    fflush(stdout);
}

static void on_error(loom_client_ws *ws, int code, const char *m, void *ud)
{
    (void)ws;
    (void)ud;
    printf("error %d %s\n", code, m);
    fflush(stdout);
}

static void on_close(loom_client_ws *ws, int code, const char *reason, size_t len, void *ud)
{
    (void)ws;
    (void)ud;
    printf("close %d %.*s\n", code, (int)len, reason);
    fflush(stdout);
    loom_client_close(client);
}

int main(int argc, char **argv)
{
    if (argc < 2) return 2;
    loom_client_ws_opts o;
    memset(&o, 0, sizeof o);
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : "";
        if (!strcmp(a, "--deflate"))
            o.deflate = 1;
        else if (!strcmp(a, "--no-close"))
            no_close = 1;
        else if (!strcmp(a, "--proto"))
            o.protocols = v, i++;
        else if (!strcmp(a, "--heartbeat"))
            o.heartbeat = atof(v), i++;
        else if (!strcmp(a, "--timeout"))
            o.timeout = atof(v), i++;
        else if (!strcmp(a, "--max"))
            o.max_msg_size = (size_t)atol(v), i++;
        else if (!strcmp(a, "--wait"))
            wait_for = atoi(v), i++;
        else if (!strcmp(a, "--close")) {
            close_code = atoi(v);
            const char *c = strchr(v, ':');
            close_reason = c ? c + 1 : NULL;
            i++;
        } else if (nmsgs < 64 &&
                   (!strcmp(a, "--text") || !strcmp(a, "--binary") || !strcmp(a, "--ping"))) {
            msgs[nmsgs].kind = a[2] == 'b' ? 'b' : a[2] == 'p' ? 'p' : 't';
            msgs[nmsgs++].arg = v;
            i++;
        } else {
            fprintf(stderr, "unknown option %s\n", a);
            return 2;
        }
    }
    o.on_open = on_open;
    o.on_message = on_message;
    o.on_error = on_error;
    o.on_close = on_close;
    uv_loop_t loop;
    uv_loop_init(&loop);
    client = loom_client_new(&loop, NULL);
    char err[256];
    if (!loom_client_ws_connect(client, argv[1], &o, err, sizeof err)) {
        printf("refused %s\n", err);
        loom_client_close(client);
        uv_run(&loop, UV_RUN_DEFAULT);
        uv_loop_close(&loop);
        return 1;
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_run(&loop, UV_RUN_DEFAULT);
    return uv_loop_close(&loop) == 0 ? 0 : 3;
}
