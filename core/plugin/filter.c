/* Response body filters (ABI 1.5): a middleware's transform of the body
 * bytes, e.g. a compressor.
 *
 * A buffered body (or a file body, read here) goes through the filter once,
 * just before the response is written: on the loop thread when it is small,
 * on the thread pool from the filter's pool_min up, so compressing a large
 * body does not stall the other connections of the worker. The request waits
 * meanwhile like one whose session is being saved: the pipeline completes it
 * again when the job is done. A streamed body goes through the filter chunk
 * by chunk, each flushed, on the loop thread. */
#include "http/response.h"
#include "plugin/host.h"
#include "util/log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CTX(r) ((loom__rctx *)(r)->host_data)
#define FILE_CHUNK (256u * 1024u)

struct loom__filter {
    loom_body_filter def;
    uint8_t state; /* 0 idle, 1 a pool job runs, 2 the buffered body is done */
    uint8_t ended; /* a streamed body got its LOOM_FILTER_END */
    uint8_t failed;
};

static int32_t emit(void *ectx, const void *data, size_t len)
{
    return loom__buf_append(ectx, data, len) ? LOOM_ENOMEM : LOOM_OK;
}

int32_t loom__filter_install(loom_req *r, const loom_body_filter *def)
{
    loom__rctx *x = CTX(r);
    if (!def || def->size < offsetof(loom_body_filter, release)) return LOOM_EINVAL;
    if (r->resp.head_sent || x->filter) return LOOM_ESTATE;
    loom_body_filter d;
    memset(&d, 0, sizeof d);
    memcpy(&d, def, def->size < sizeof d ? def->size : sizeof d);
    if (!d.run) return LOOM_EINVAL;
    loom__filter *f = loom__arena_alloc(&r->arena, sizeof *f);
    if (!f) return LOOM_ENOMEM;
    memset(f, 0, sizeof *f);
    f->def = d;
    x->filter = f;
    return LOOM_OK;
}

int loom__filter_busy(const loom_req *r)
{
    const loom__filter *f = CTX(r)->filter;
    return f && f->state == 1;
}

void loom__filter_release(loom_req *r)
{
    loom__filter *f = CTX(r)->filter;
    if (!f) return;
    CTX(r)->filter = NULL;
    if (f->def.release) f->def.release(f->def.ud);
}

/* Runs the filter over the whole buffered or file body into `out`. Returns 0
 * or a negative code. Thread-safe: touches only the job's own data. */
static int32_t filter_whole(loom__filter *f, const void *body, size_t len, int fd, uint64_t off,
                            uint64_t flen, loom__buf *out)
{
    const uint32_t last = LOOM_FILTER_FLUSH | LOOM_FILTER_END;
    if (fd < 0) return f->def.run(f->def.ud, body, len, last, emit, out);
    char *chunk = malloc(FILE_CHUNK);
    if (!chunk) return LOOM_ENOMEM;
    int32_t rc = 0;
    uint64_t done = 0;
    do {
        size_t want = flen - done > FILE_CHUNK ? FILE_CHUNK : (size_t)(flen - done);
        ssize_t n = 0;
        if (want) {
            do n = pread(fd, chunk, want, (off_t)(off + done));
            while (n < 0 && errno == EINTR);
            if (n <= 0) { /* the file shrank or failed under us */
                rc = LOOM_EINVAL;
                break;
            }
        }
        done += (uint64_t)n;
        rc = f->def.run(f->def.ud, chunk, (size_t)n, done == flen ? last : 0, emit, out);
    } while (rc == 0 && done < flen);
    free(chunk);
    return rc;
}

/* The filtered body replaces the old one; a failure answers 500 instead. */
static void filter_result(loom_req *r, int32_t rc, loom__buf *out)
{
    loom__filter *f = CTX(r)->filter;
    f->state = 2;
    if (rc == 0) {
        loom__resp_body_take(r, out->data ? out->data : "", out->len, out->data ? free : NULL);
        return;
    }
    loom__buf_free(out);
    loom__err("a response body filter failed (%d): answering 500 for %s %s", rc, r->method,
              r->target);
    loom__resp_body_take(r, NULL, 0, NULL);
    r->resp.status = 500;
    loom__resp_header_set(r, "Content-Encoding", 16, NULL, 0);
    loom__resp_header_set(r, "Content-Type", 12, "text/plain; charset=utf-8", 25);
    static const char msg[] = "500: Internal Server Error";
    loom__resp_body_take(r, msg, sizeof msg - 1, NULL);
}

typedef struct {
    uv_work_t work;
    loom_req *r;
    loom__filter *f;
    const void *body;
    size_t len;
    int fd;
    uint64_t off, flen;
    loom__buf out;
    int32_t rc;
} job;

static void job_run(uv_work_t *w)
{
    job *j = (job *)w;
    j->rc = filter_whole(j->f, j->body, j->len, j->fd, j->off, j->flen, &j->out);
}

static void job_done(uv_work_t *w, int status)
{
    job *j = (job *)w;
    loom_req *r = j->r;
    filter_result(r, status == 0 ? j->rc : LOOM_ESTATE, &j->out);
    free(j);
    loom__dispatch_complete(r);
}

int loom__filter_before_send(loom_req *r)
{
    loom__rctx *x = CTX(r);
    loom__filter *f = x->filter;
    if (f && f->state == 1) return 1; /* the job completes the request */
    if (!f || f->state || x->aborted || !r->conn) return 0;
    if (r->resp.head_sent) {
        /* A streamed body: finish the coding (also when the plugin answered
         * with loom_respond instead of loom_resp_stream_end). */
        if (r->resp.streaming && !f->ended) loom__filter_chunk(r, NULL, 0, LOOM_FILTER_END);
        return 0;
    }
    if (!loom__resp_has_body(r)) {
        f->state = 2;
        return 0;
    }
    int fd = r->resp.has_file ? r->resp.file_fd : -1;
    uint64_t size = fd >= 0 ? r->resp.file_len : r->resp.body_len;
    loom__worker *w = loom__req_worker(r);
    if (f->def.pool_min && size >= f->def.pool_min && w) {
        job *j = calloc(1, sizeof *j);
        if (j) {
            j->r = r;
            j->f = f;
            j->body = r->resp.body;
            j->len = r->resp.body_len;
            j->fd = fd;
            j->off = r->resp.file_off;
            j->flen = r->resp.file_len;
            if (uv_queue_work(w->loop, &j->work, job_run, job_done) == 0) {
                f->state = 1;
                return 1;
            }
            free(j);
        }
    }
    loom__buf out = {0};
    int32_t rc = filter_whole(f, r->resp.body, r->resp.body_len, fd, r->resp.file_off,
                              r->resp.file_len, &out);
    filter_result(r, rc, &out);
    return 0;
}

int32_t loom__filter_chunk(loom_req *r, const void *data, size_t len, uint32_t flags)
{
    loom__rctx *x = CTX(r);
    loom__filter *f = x->filter;
    if (!f) return loom__req_stream_write(r, data, len) ? LOOM_EGONE : LOOM_OK;
    if (f->failed || f->ended) return f->failed ? LOOM_EINVAL : LOOM_ESTATE;
    loom__buf out = {0};
    int32_t rc = f->def.run(f->def.ud, data, len, flags | LOOM_FILTER_FLUSH, emit, &out);
    if (flags & LOOM_FILTER_END) f->ended = 1;
    if (rc) {
        /* The client holds part of a coded stream: it cannot be finished
         * cleanly, so the connection closes after this response. */
        f->failed = 1;
        r->resp.close = 1;
        loom__buf_free(&out);
        loom__err("a response body filter failed (%d) mid-stream: closing %s %s", rc, r->method,
                  r->target);
        return rc;
    }
    int gone = out.len ? loom__req_stream_write(r, out.data, out.len) : 0;
    loom__buf_free(&out);
    return gone ? LOOM_EGONE : LOOM_OK;
}
