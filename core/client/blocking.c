/* loom_client_fetch_sync: one request on a private loop. */
#include "client/client_int.h"

#include <stdlib.h>
#include <string.h>

static void on_done(loom_client_response *resp, void *ud)
{
    *(loom_client_response **)ud = resp;
}

int loom_client_fetch_sync(const char *method, const char *url, const loom_client_opts *opts,
                           const loom_client_config *cfg, loom_client_response **out)
{
    *out = NULL;
    uv_loop_t loop;
    if (uv_loop_init(&loop)) return LOOM_CLIENT_E_NOMEM;
    loom_client *c = loom_client_new(&loop, cfg);
    loom_client_response *resp = NULL;
    if (c && loom_client_send(c, method ? method : "GET", url ? url : "", opts, on_done, &resp)) {
        uv_run(&loop, UV_RUN_DEFAULT);
    } else if (c && (resp = loom__resp_new())) {
        /* refused at once: a bad method or header (or no memory) */
        resp->error = LOOM_CLIENT_E_INVALID_ARGUMENT;
        resp->request_url = strdup(url ? url : "");
        resp->message =
            loom__errmsg(resp->error, url ? url : "", "bad method or header, or out of memory");
    }
    if (c) loom_client_close(c);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    *out = resp;
    return resp ? resp->error : LOOM_CLIENT_E_NOMEM;
}
