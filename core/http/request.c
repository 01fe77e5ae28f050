#include "http/request.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

loom_req *loom__req_new(void)
{
    loom__arena a = {0};
    loom_req *r = loom__arena_alloc(&a, sizeof *r);
    if (!r) return NULL;
    memset(r, 0, sizeof *r);
    r->arena = a;
    return r;
}

void loom__req_free(loom_req *r)
{
    if (!r) return;
    if (r->body.data) loom__buf_free(&r->body);
    if (r->resp.body_free) r->resp.body_free((void *)r->resp.body);
    if (r->resp.has_file) close(r->resp.file_fd);
    loom__arena a = r->arena; /* r itself lives in the arena */
    loom__arena_reset(&a);
}

const char *loom__req_header(const loom_req *r, const char *name, size_t name_len, size_t *len)
{
    for (uint32_t i = 0; i < r->nheaders; i++) {
        const loom__header *h = &r->headers[i];
        if (h->name_len == name_len && loom__strncaseeq(h->name, name, name_len)) {
            if (len) *len = h->value_len;
            return h->value;
        }
    }
    return NULL;
}
