/* Responses: what a completed request hands to its callback. */
#include "client/client_int.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

loom_client_response *loom__resp_new(void)
{
    return calloc(1, sizeof(loom_client_response));
}

int loom_client_response_error(const loom_client_response *r)
{
    return r ? r->error : LOOM_CLIENT_E_NOMEM;
}

const char *loom_client_response_message(const loom_client_response *r)
{
    return r && r->message ? r->message : "";
}

int loom_client_response_status(const loom_client_response *r)
{
    return r ? r->status : 0;
}

const char *loom_client_response_reason(const loom_client_response *r)
{
    return r && r->reason ? r->reason : "";
}

const char *loom_client_response_request_url(const loom_client_response *r)
{
    return r && r->request_url ? r->request_url : "";
}

const char *loom_client_response_url(const loom_client_response *r)
{
    return r && r->url ? r->url : loom_client_response_request_url(r);
}

size_t loom_client_response_header_count(const loom_client_response *r)
{
    return r ? r->nheaders : 0;
}

void loom_client_response_header_at(const loom_client_response *r, size_t i, const char **name,
                                    const char **value)
{
    if (!r || i >= r->nheaders) {
        if (name) *name = NULL;
        if (value) *value = NULL;
        return;
    }
    if (name) *name = r->headers[i].name;
    if (value) *value = r->headers[i].value;
}

const char *loom_client_response_header(const loom_client_response *r, const char *name)
{
    if (!r || !name) return NULL;
    for (size_t i = 0; i < r->nheaders; i++)
        if (strcasecmp(r->headers[i].name, name) == 0) return r->headers[i].value;
    return NULL;
}

const char *loom_client_response_body(const loom_client_response *r, size_t *len)
{
    if (len) *len = r ? r->body.len : 0;
    if (!r || !r->body.data) return "";
    return r->body.data;
}

json_t *loom_client_response_json(const loom_client_response *r, json_error_t *err)
{
    size_t len;
    const char *b = loom_client_response_body(r, &len);
    json_error_t e;
    json_t *j = json_loadb(b, len, JSON_DECODE_ANY, err ? err : &e);
    return j;
}

size_t loom_client_response_history_count(const loom_client_response *r)
{
    return r ? r->nhistory : 0;
}

const char *loom_client_response_history_url(const loom_client_response *r, size_t i)
{
    return r && i < r->nhistory ? r->history[i].url : NULL;
}

int loom_client_response_history_status(const loom_client_response *r, size_t i)
{
    return r && i < r->nhistory ? r->history[i].status : 0;
}

int loom_client_response_tls(const loom_client_response *r, const char **version, int *resumed)
{
    int tls = r && r->is_tls;
    if (version) *version = tls && r->tls_version ? r->tls_version : NULL;
    if (resumed) *resumed = tls && r->tls_resumed;
    return tls;
}

double loom_client_response_elapsed(const loom_client_response *r)
{
    return r ? r->elapsed : 0;
}

void loom__resp_clear_head(loom_client_response *r)
{
    for (size_t i = 0; i < r->nheaders; i++) free(r->headers[i].name); /* value shares it */
    r->nheaders = 0;
    free(r->reason);
    r->reason = NULL;
    r->status = 0;
    r->body.len = 0;
}

void loom_client_response_free(loom_client_response *r)
{
    if (!r) return;
    loom__resp_clear_head(r);
    free(r->headers);
    free(r->message);
    free(r->request_url);
    free(r->url);
    loom__buf_free(&r->body);
    for (size_t i = 0; i < r->nhistory; i++) free(r->history[i].url);
    free(r->history);
    free(r);
}
