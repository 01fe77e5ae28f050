/* `loom ws URL`: a WebSocket from the command line, like websocat: every
 * line of stdin goes out as a text message, every message that arrives is
 * printed on a line of its own. At the end of stdin the connection is
 * closed with 1000 and the command waits for the server's answer. */
#include "cli/cli.h"
#include "util/buf.h"
#include "ws/utf8.h"

#include <loom/client.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char ws_usage[] =
    "usage: loom ws [options] URL\n"
    "\n"
    "Connects a WebSocket to URL (ws:// or wss://host[:port]/path), sends each line of\n"
    "stdin as a text message and prints each message that arrives on a line.\n"
    "At the end of stdin it waits until no message arrived for a while (--linger),\n"
    "then closes with 1000 and waits for the server's close.\n"
    "\n"
    "options:\n"
    "  -p, --protocol P     offer subprotocol P (repeat for several)\n"
    "  -H, --header 'N: V'  send a request header (repeat)\n"
    "  --origin ORIGIN      send an Origin header\n"
    "  --deflate            offer permessage-deflate\n"
    "  --heartbeat S        ping after S seconds of silence; give up after S/2 more\n"
    "  --timeout S          connect and handshake within S seconds (30)\n"
    "  --max-msg-size N     largest message accepted, in bytes (4194304)\n"
    "  --cacert FILE        wss://: trust the CAs in FILE instead of the system's\n"
    "  -k, --insecure       wss://: do not verify the server\n"
    "  --proxy URL          through this HTTP proxy (a CONNECT tunnel)\n"
    "  --trust-env          the proxy from http_proxy/https_proxy (no_proxy respected)\n"
    "  --linger S           quiet time after the end of stdin before closing (0.3)\n"
    "  -n, --no-close       at the end of stdin keep printing until the server closes\n"
    "  -q, --quiet          do not print the open and close lines on stderr\n"
    "\n"
    "exit status: 0 after a normal close (1000, 1001, 1005), 1 after a failure\n"
    "(connection, handshake, protocol error, abnormal close), 2 for bad usage.\n";

typedef struct {
    loom_client *client;
    loom_client_ws *ws;
    uv_loop_t *loop;
    uv_pipe_t in;
    uv_tty_t tty;
    uv_stream_t *stream;
    int stream_on, open, failed, no_close, quiet, eof;
    int code;
    uv_timer_t quiet_timer; /* after the end of stdin: closes once no message came for linger */
    uint64_t linger_ms;
    loom__buf line;
    char rbuf[65536];
} ctx;

static void send_line(ctx *x, const char *p, size_t n)
{
    if (n && p[n - 1] == '\r') n--;
    uint8_t st = 0;
    if (loom__utf8_check(&st, p, n) || st) {
        fprintf(stderr, "loom ws: a line of stdin is not UTF-8: not sent\n");
        return;
    }
    int rc = loom_client_ws_send(x->ws, LOOM_CLIENT_WS_TEXT, p, n);
    if (rc) fprintf(stderr, "loom ws: cannot send (%d)\n", rc);
}

static void input(ctx *x, const char *p, size_t n)
{
    loom__buf_append(&x->line, p, n);
    size_t start = 0;
    for (size_t i = 0; i < x->line.len; i++)
        if (x->line.data[i] == '\n') {
            send_line(x, x->line.data + start, i - start);
            start = i + 1;
        }
    loom__buf_consume(&x->line, start);
}

static void on_quiet(uv_timer_t *t)
{
    ctx *x = t->data;
    loom_client_ws_close(x->ws, 1000, NULL);
}

static void end_of_input(ctx *x)
{
    if (x->eof) return;
    x->eof = 1;
    if (x->line.len) send_line(x, x->line.data, x->line.len);
    x->line.len = 0;
    /* Answers to the last lines may still be on their way. */
    if (!x->no_close) uv_timer_start(&x->quiet_timer, on_quiet, x->linger_ms, 0);
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
    (void)hint;
    ctx *x = h->data;
    *b = uv_buf_init(x->rbuf, sizeof x->rbuf);
}

static void stop_stdin(ctx *x)
{
    if (!x->stream_on) return;
    x->stream_on = 0;
    uv_read_stop(x->stream);
    uv_close((uv_handle_t *)x->stream, NULL);
}

static void on_stdin(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    ctx *x = s->data;
    if (n > 0) {
        input(x, b->base, (size_t)n);
    } else if (n < 0) {
        stop_stdin(x);
        end_of_input(x);
    }
}

static void on_open(loom_client_ws *ws, void *ud)
{
    ctx *x = ud;
    x->open = 1;
    if (!x->quiet)
        fprintf(stderr, "loom ws: connected%s%s\n",
                loom_client_ws_protocol(ws) ? ", protocol " : "",
                loom_client_ws_protocol(ws) ? loom_client_ws_protocol(ws) : "");
    struct stat st;
    if (fstat(0, &st) == 0 && S_ISREG(st.st_mode)) {
        /* A file: libuv cannot watch it; it is read at once. */
        ssize_t n;
        while ((n = read(0, x->rbuf, sizeof x->rbuf)) > 0) input(x, x->rbuf, (size_t)n);
        end_of_input(x);
        return;
    }
    uv_handle_type t = uv_guess_handle(0);
    int rc;
    if (t == UV_TTY) {
        rc = uv_tty_init(x->loop, &x->tty, 0, 1);
        x->stream = (uv_stream_t *)&x->tty;
    } else {
        rc = uv_pipe_init(x->loop, &x->in, 0);
        if (rc == 0) rc = uv_pipe_open(&x->in, 0);
        x->stream = (uv_stream_t *)&x->in;
    }
    if (rc == 0) {
        x->stream->data = x;
        x->stream_on = 1;
        rc = uv_read_start(x->stream, on_alloc, on_stdin);
    }
    if (rc < 0) {
        stop_stdin(x);
        end_of_input(x); /* no stdin (closed, /dev/null): just close */
    }
}

static void on_message(loom_client_ws *ws, int type, const void *data, size_t len, void *ud)
{
    (void)ws;
    (void)type;
    ctx *x = ud;
    if (x->eof && !x->no_close) uv_timer_start(&x->quiet_timer, on_quiet, x->linger_ms, 0);
    fwrite(data, 1, len, stdout);
    fputc('\n', stdout);
    fflush(stdout);
}

static void on_error(loom_client_ws *ws, int code, const char *msg, void *ud)
{
    (void)ws;
    ctx *x = ud;
    x->failed = 1;
    if (code < 0)
        fprintf(stderr, "loom ws: %s\n", msg);
    else
        fprintf(stderr, "loom ws: %d: %s\n", code, msg);
}

static void on_close(loom_client_ws *ws, int code, const char *reason, size_t len, void *ud)
{
    (void)ws;
    ctx *x = ud;
    x->code = code;
    if (!x->quiet && x->open)
        fprintf(stderr, "loom ws: closed %d%s%.*s\n", code, len ? " " : "", (int)len, reason);
    stop_stdin(x);
    uv_close((uv_handle_t *)&x->quiet_timer, NULL);
    loom_client_close(x->client);
}

int loom__cmd_ws(int argc, char **argv)
{
    ctx x;
    memset(&x, 0, sizeof x);
    x.linger_ms = 300;
    loom_client_ws_opts o;
    memset(&o, 0, sizeof o);
    loom_client_header hs[64];
    size_t nh = 0;
    loom_client_config ccfg;
    memset(&ccfg, 0, sizeof ccfg);
    char protos[1024] = "";
    const char *url = NULL;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(ws_usage, stdout);
            return 0;
        } else if (!strcmp(a, "--deflate")) {
            o.deflate = 1;
        } else if (!strcmp(a, "-n") || !strcmp(a, "--no-close")) {
            x.no_close = 1;
        } else if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) {
            x.quiet = 1;
        } else if (!strcmp(a, "-k") || !strcmp(a, "--insecure")) {
            ccfg.tls.insecure = 1;
        } else if (!strcmp(a, "--trust-env")) {
            ccfg.trust_env = 1;
        } else if (a[0] == '-' && a[1]) {
            if (!v) {
                fprintf(stderr, "loom ws: %s needs a value\n", a);
                return 2;
            }
            i++;
            char *end = NULL;
            if (!strcmp(a, "-p") || !strcmp(a, "--protocol")) {
                size_t l = strlen(protos);
                snprintf(protos + l, sizeof protos - l, "%s%s", l ? ", " : "", v);
            } else if (!strcmp(a, "-H") || !strcmp(a, "--header")) {
                const char *colon = strchr(v, ':');
                if (!colon || colon == v || nh == 64) {
                    fprintf(stderr, "loom ws: --header wants 'Name: value', got '%s'\n", v);
                    return 2;
                }
                char *name = strndup(v, (size_t)(colon - v));
                const char *val = colon + 1;
                while (*val == ' ') val++;
                hs[nh].name = name;
                hs[nh++].value = val;
            } else if (!strcmp(a, "--origin")) {
                o.origin = v;
            } else if (!strcmp(a, "--cacert")) {
                ccfg.tls.ca_file = v;
            } else if (!strcmp(a, "--proxy")) {
                ccfg.proxy = v;
            } else if (!strcmp(a, "--linger")) {
                double d = strtod(v, &end);
                if (!end || *end || d < 0) {
                    fprintf(stderr, "loom ws: --linger wants a number of seconds, got '%s'\n", v);
                    return 2;
                }
                x.linger_ms = (uint64_t)(d * 1000.0);
            } else if (!strcmp(a, "--heartbeat") || !strcmp(a, "--timeout")) {
                double d = strtod(v, &end);
                if (!end || *end || d <= 0) {
                    fprintf(stderr, "loom ws: %s wants a number of seconds, got '%s'\n", a, v);
                    return 2;
                }
                if (a[2] == 'h')
                    o.heartbeat = d;
                else
                    o.timeout = d;
            } else if (!strcmp(a, "--max-msg-size")) {
                unsigned long long n = strtoull(v, &end, 10);
                if (!end || *end || n == 0) {
                    fprintf(stderr, "loom ws: --max-msg-size wants bytes, got '%s'\n", v);
                    return 2;
                }
                o.max_msg_size = (size_t)n;
            } else {
                fprintf(stderr, "loom ws: unknown option '%s' (see loom ws --help)\n", a);
                return 2;
            }
        } else if (!url) {
            url = a;
        } else {
            fprintf(stderr, "loom ws: one URL only (got '%s' too)\n", a);
            return 2;
        }
    }
    if (!url) {
        fputs(ws_usage, stderr);
        return 2;
    }
    if (protos[0]) o.protocols = protos;
    o.headers = hs;
    o.nheaders = nh;
    o.on_open = on_open;
    o.on_message = on_message;
    o.on_error = on_error;
    o.on_close = on_close;
    o.ud = &x;
    x.code = 1006;
    uv_loop_t loop;
    uv_loop_init(&loop);
    x.loop = &loop;
    uv_timer_init(&loop, &x.quiet_timer);
    x.quiet_timer.data = &x;
    x.client = loom_client_new(&loop, &ccfg);
    char err[512];
    int rc = 1;
    if (!x.client) {
        fprintf(stderr, "loom ws: out of memory\n");
    } else if (!(x.ws = loom_client_ws_connect(x.client, url, &o, err, sizeof err))) {
        fprintf(stderr, "loom ws: %s\n", err);
        loom_client_close(x.client);
    } else {
        uv_run(&loop, UV_RUN_DEFAULT);
        rc = !x.failed && (x.code == 1000 || x.code == 1001 || x.code == 1005) ? 0 : 1;
    }
    if (!uv_is_closing((uv_handle_t *)&x.quiet_timer))
        uv_close((uv_handle_t *)&x.quiet_timer, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    loom__buf_free(&x.line);
    for (size_t i = 0; i < nh; i++) free((char *)hs[i].name);
    return rc;
}
