/* benchsse: the SSE fan-out workload of bench/run (bench/compress.py).
 * GET /sse opens an event stream (no keep-alive comments during a run);
 * POST /fire sends one event to every open stream, a loop over them as a
 * handler would write it, and answers how many took it. */
#include <loom/loom.h>

#include <stdio.h>
#include <stdlib.h>

typedef struct st {
    loom_sse *sse;
    struct st *prev, *next;
} st;

static st *streams;

static void unlink_st(st *s)
{
    if (s->prev)
        s->prev->next = s->next;
    else
        streams = s->next;
    if (s->next) s->next->prev = s->prev;
    free(s);
}

static void closed(loom_sse *sse, int32_t reason, void *ud)
{
    (void)sse;
    (void)reason;
    unlink_st(ud);
}

static int32_t open_stream(loom_req *req, void *ud)
{
    (void)ud;
    st *s = calloc(1, sizeof *s);
    if (!s) return loom_resp_error(req, 503, "out of memory");
    loom_sse_opts o = {sizeof o, 0, 3600000, 0, closed, s};
    s->sse = loom_sse_open(req, &o);
    if (!s->sse) {
        free(s);
        return loom_resp_error(req, 500, "cannot open the stream");
    }
    s->next = streams;
    if (streams) streams->prev = s;
    streams = s;
    return LOOM_PENDING;
}

static int32_t fire(loom_req *req, void *ud)
{
    (void)ud;
    static const char data[] = "{\"event\":\"fan-out\",\"payload\":\"one event to every stream\"}";
    loom_sse_event ev = {sizeof ev, 0, "news", "1", 0, data, sizeof data - 1};
    long ok = 0, failed = 0;
    st *s = streams, *next;
    for (; s; s = next) {
        next = s->next;
        if (loom_sse_send(s->sse, &ev) == LOOM_OK)
            ok++;
        else
            failed++;
    }
    char body[64];
    int n = snprintf(body, sizeof body, "{\"sent\":%ld,\"failed\":%ld}", ok, failed);
    return loom_resp_json(req, 200, body, (size_t)n);
}

static int32_t init(loom_plugin *self, const char *config, size_t len)
{
    (void)config;
    (void)len;
    int32_t rc = loom_route_add(self, "GET", "/sse", open_stream, NULL);
    return rc ? rc : loom_route_add(self, "POST", "/fire", fire, NULL);
}

LOOM_PLUGIN("benchsse", "1.0.0", init, NULL);
