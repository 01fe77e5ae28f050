/* old11: a plugin compiled from the frozen 1.1 header (tests/abi/loom-1.1.h),
 * the header of the last release before this one's additions. It uses the
 * entries at the end of the 1.1 table (the descriptor watchers), so a host
 * that moved them would call the wrong function. */
#include "loom-1.1.h"

#include <stdio.h>
#include <unistd.h>

typedef struct {
    loom_req *req;
    int fds[2];
    loom_io *io;
} watch;

static void readable(loom_io *io, int32_t events, void *ud)
{
    watch *w = ud;
    char c = 0;
    ssize_t n = read(w->fds[0], &c, 1);
    loom_io_stop(io);
    close(w->fds[0]);
    close(w->fds[1]);
    char body[64];
    snprintf(body, sizeof body, "{\"abi\":\"1.1\",\"events\":%d,\"byte\":\"%c\"}", (int)events,
             n == 1 ? c : '?');
    loom_resp_header_set(w->req, "X-Plugin-Abi", "1.1");
    size_t blen = 0;
    while (body[blen]) blen++;
    loom_resp_json(w->req, 200, body, blen);
}

static int32_t handler(loom_req *req, void *ud)
{
    loom_plugin *self = ud;
    watch *w = loom_req_alloc(req, sizeof *w);
    if (!w || pipe(w->fds) < 0) return LOOM_ENOMEM;
    w->req = req;
    if (write(w->fds[1], "x", 1) != 1) return LOOM_EINVAL;
    w->io = loom_io_start(self, w->fds[0], LOOM_IO_READ, readable, w);
    return w->io ? LOOM_PENDING : LOOM_EINVAL;
}

static int32_t init(loom_plugin *self, const char *config, size_t len)
{
    (void)config;
    (void)len;
    return loom_route_add(self, "GET", "/old11", handler, self);
}

LOOM_PLUGIN("old11", "1.1.0", init, NULL)
