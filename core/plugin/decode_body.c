/* Request bodies with a Content-Encoding, decoded for routes that ask for it
 * (LOOM_ROUTE_DECODE_BODY) before their handler runs.
 *
 * The route opts in, not the server: a proxy or an upload store wants the
 * bytes as they came, and decoding costs CPU that an attacker chooses. The
 * coded body was read within client_max_size like any body; the decoded size
 * is held to the same limit, so a "bomb" (a few KiB that inflate to
 * gigabytes) stops at the limit and gets 413. The whole body was read, so
 * the connection's framing is intact and it stays open for the next request.
 * Decoding runs on the loop thread: it is bounded by client_max_size (1 MiB
 * by default, a few milliseconds of inflate at most). */
#include "http/coding.h"
#include "plugin/host.h"
#include "util/log.h"

#include <stdio.h>
#include <string.h>

int loom__dispatch_decode_body(loom_req *r)
{
    size_t vl = 0;
    const char *v = loom__req_header(r, "content-encoding", 16, &vl);
    if (!v) return 0;
    /* One coding (surrounding blanks aside); "identity" is no coding. */
    while (vl && (*v == ' ' || *v == '\t')) v++, vl--;
    while (vl && (v[vl - 1] == ' ' || v[vl - 1] == '\t')) vl--;
    if (vl == 0 || (vl == 8 && loom__strncaseeq(v, "identity", 8))) return 0;
    if (memchr(v, ',', vl)) {
        loom__dispatch_error(r, 415, "only one Content-Encoding (gzip, br or zstd) is supported");
        return 1;
    }
    loom__worker *w = loom__req_worker(r);
    size_t cap = w ? w->cfg->client_max_size : 0;
    loom__buf out = {0};
    int rc = loom__coding_decode(v, vl, r->body.data ? r->body.data : "", r->body.len, cap, &out);
    if (rc != LOOM__CODING_OK) {
        loom__buf_free(&out);
        char msg[160];
        switch (rc) {
        case LOOM__CODING_UNKNOWN:
            snprintf(msg, sizeof msg, "unsupported Content-Encoding %.*s (gzip, br or zstd)",
                     (int)(vl > 40 ? 40 : vl), v);
            loom__dispatch_error(r, 415, msg);
            break;
        case LOOM__CODING_TOO_LARGE:
            snprintf(msg, sizeof msg, "request body too large once decoded (over %zu bytes)", cap);
            loom__dispatch_error(r, 413, msg);
            break;
        case LOOM__CODING_NOMEM:
            loom__dispatch_error(r, 500, "out of memory");
            break;
        default:
            loom__dispatch_error(r, 400, "request body is not valid for its Content-Encoding");
        }
        return 1;
    }
    loom__buf_free(&r->body);
    r->body = out;
    /* The handler sees the body as if it had come decoded. */
    char len[24];
    snprintf(len, sizeof len, "%zu", out.len);
    loom__api_table.req_header_set(r, "Content-Encoding", NULL);
    loom__api_table.req_header_set(r, "Content-Length", len);
    r->content_length = out.len;
    return 0;
}
