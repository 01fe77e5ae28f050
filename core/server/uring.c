/* The io_uring backend: the ring, its receive buffers, and the loop that
 * waits on the ring and gives libuv its turns. See uring.h. */
#include "server/uring.h"
#include "server/conn.h"
#include "util/log.h"

#include <errno.h>
#include <liburing.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

/* Receive buffers: the kernel picks one per recv completion. Small ones, so
 * that a few hundred fit in little memory; a request larger than one comes
 * in several completions. How many: the io_recv_buffers key (default 256),
 * rounded up to a power of two as the buffer ring wants. */
#define RBUF_SIZE 4096u
#define SQ_ENTRIES 1024u
#define CQ_ENTRIES 8192u
#define SPARES 64 /* response buffers kept for reuse: about one per connection of a loop turn */
#define SPARE_MAX (16u * 1024u)

/* user_data of the poll on libuv's epoll fd: no connection has address 0. */
#define U_UV ((uint64_t)7)

struct loom__uring {
    struct io_uring ring;
    struct io_uring_buf_ring *br;
    char *bufs;
    unsigned nbufs;    /* a power of two */
    unsigned returned; /* buffers given back since the last advance */
    int uv_armed;      /* the poll on libuv's epoll fd is queued */
    loom__buf spare[SPARES];
    int nspare;
};

/* Receive buffer `bid`. */
static char *rbuf(const loom__uring *u, unsigned bid)
{
    return u->bufs + (size_t)bid * RBUF_SIZE;
}

static size_t br_bytes(const loom__uring *u)
{
    return u->nbufs * sizeof(struct io_uring_buf);
}

int loom__uring_open(loom__worker *w, char *err, size_t errlen)
{
    loom__uring *u = calloc(1, sizeof *u);
    if (!u) {
        snprintf(err, errlen, "io_uring: out of memory");
        return -1;
    }
    struct io_uring_params p;
    memset(&p, 0, sizeof p);
    /* DEFER_TASKRUN: completions are worked only when this thread waits,
     * in one batch, not by interrupting it (measured: most of the gain). */
    p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_CQSIZE;
    p.cq_entries = CQ_ENTRIES;
    int rc = io_uring_queue_init_params(SQ_ENTRIES, &u->ring, &p);
    if (rc < 0) {
        snprintf(err, errlen, "io_uring_setup: %s", strerror(-rc));
        free(u);
        return -1;
    }
    u->nbufs = 1;
    while (u->nbufs < w->cfg->io_recv_buffers) u->nbufs <<= 1;
    u->br = mmap(NULL, br_bytes(u), PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
    u->bufs = malloc((size_t)u->nbufs * RBUF_SIZE);
    if (u->br == MAP_FAILED || !u->bufs) {
        snprintf(err, errlen, "io_uring: out of memory for receive buffers");
        goto fail;
    }
    struct io_uring_buf_reg reg;
    memset(&reg, 0, sizeof reg);
    reg.ring_addr = (unsigned long)u->br;
    reg.ring_entries = u->nbufs;
    reg.bgid = 0;
    rc = io_uring_register_buf_ring(&u->ring, &reg, 0);
    if (rc < 0) {
        snprintf(err, errlen, "io_uring buffer ring: %s", strerror(-rc));
        goto fail;
    }
    io_uring_buf_ring_init(u->br);
    for (unsigned i = 0; i < u->nbufs; i++)
        io_uring_buf_ring_add(u->br, rbuf(u, i), RBUF_SIZE, (unsigned short)i,
                              io_uring_buf_ring_mask(u->nbufs), (int)i);
    io_uring_buf_ring_advance(u->br, (int)u->nbufs);
    w->ring = u;
    return 0;
fail:
    io_uring_queue_exit(&u->ring);
    if (u->br != MAP_FAILED && u->br) munmap(u->br, br_bytes(u));
    free(u->bufs);
    free(u);
    return -1;
}

void loom__uring_close(loom__worker *w)
{
    loom__uring *u = w->ring;
    if (!u) return;
    io_uring_queue_exit(&u->ring);
    munmap(u->br, br_bytes(u));
    free(u->bufs);
    for (int i = 0; i < u->nspare; i++) loom__buf_free(&u->spare[i]);
    free(u);
    w->ring = NULL;
}

/* The next free submission slot, submitting the full queue first if needed. */
static struct io_uring_sqe *sqe_get(loom__uring *u)
{
    struct io_uring_sqe *s = io_uring_get_sqe(&u->ring);
    if (!s) {
        io_uring_submit(&u->ring);
        s = io_uring_get_sqe(&u->ring);
    }
    return s;
}

int loom__uring_recv(loom__worker *w, int fd, uint64_t ud)
{
    struct io_uring_sqe *s = sqe_get(w->ring);
    if (!s) return -1;
    io_uring_prep_recv_multishot(s, fd, NULL, 0, 0);
    s->flags |= IOSQE_BUFFER_SELECT;
    s->buf_group = 0;
    io_uring_sqe_set_data64(s, ud);
    return 0;
}

int loom__uring_send(loom__worker *w, int fd, const void *p, size_t len, uint64_t ud)
{
    struct io_uring_sqe *s = sqe_get(w->ring);
    if (!s) return -1;
    if (len > (1u << 30)) len = 1u << 30; /* the length is 32 bits; the rest goes next */
    io_uring_prep_send(s, fd, p, len, MSG_NOSIGNAL);
    io_uring_sqe_set_data64(s, ud);
    return 0;
}

int loom__uring_pollout(loom__worker *w, int fd, uint64_t ud)
{
    struct io_uring_sqe *s = sqe_get(w->ring);
    if (!s) return -1;
    io_uring_prep_poll_add(s, fd, POLLOUT);
    io_uring_sqe_set_data64(s, ud);
    return 0;
}

int loom__uring_cancel_fd(loom__worker *w, int fd)
{
    struct io_uring_sqe *s = sqe_get(w->ring);
    if (!s) return -1;
    io_uring_prep_cancel_fd(s, fd, IORING_ASYNC_CANCEL_ALL);
    io_uring_sqe_set_data64(s, LOOM__U_IGNORE);
    s->flags |= IOSQE_CQE_SKIP_SUCCESS;
    return 0;
}

int loom__uring_cancel(loom__worker *w, uint64_t ud)
{
    struct io_uring_sqe *s = sqe_get(w->ring);
    if (!s) return -1;
    io_uring_prep_cancel64(s, ud, 0);
    io_uring_sqe_set_data64(s, LOOM__U_IGNORE);
    s->flags |= IOSQE_CQE_SKIP_SUCCESS;
    return 0;
}

char *loom__uring_buf(loom__worker *w, uint32_t cqe_flags)
{
    return rbuf(w->ring, cqe_flags >> IORING_CQE_BUFFER_SHIFT);
}

void loom__uring_buf_done(loom__worker *w, uint32_t cqe_flags)
{
    loom__uring *u = w->ring;
    unsigned bid = cqe_flags >> IORING_CQE_BUFFER_SHIFT;
    io_uring_buf_ring_add(u->br, rbuf(u, bid), RBUF_SIZE, (unsigned short)bid,
                          io_uring_buf_ring_mask(u->nbufs), (int)u->returned);
    u->returned++;
}

void loom__uring_take_buf(loom__worker *w, loom__buf *b)
{
    loom__uring *u = w->ring;
    if (u->nspare) {
        *b = u->spare[--u->nspare];
        b->len = 0;
    } else {
        memset(b, 0, sizeof *b);
    }
}

void loom__uring_give_buf(loom__worker *w, loom__buf *b)
{
    loom__uring *u = w->ring;
    if (b->cap && b->cap <= SPARE_MAX && u->nspare < SPARES)
        u->spare[u->nspare++] = *b;
    else
        loom__buf_free(b);
    memset(b, 0, sizeof *b);
}

/* One poll on libuv's epoll fd: it completes when libuv has something to do
 * (a new connection, a timer's signal, a thread-pool job done, a client
 * socket). One-shot and armed again after each libuv turn, so that events
 * libuv left ready (level-triggered) make it complete at once. */
static void arm_uv(loom__worker *w)
{
    loom__uring *u = w->ring;
    if (u->uv_armed) return;
    struct io_uring_sqe *s = sqe_get(u);
    if (!s) return; /* tried again after libuv's next turn (its timers bound the wait) */
    io_uring_prep_poll_add(s, uv_backend_fd(w->loop), POLLIN);
    io_uring_sqe_set_data64(s, U_UV);
    u->uv_armed = 1;
}

/* Works every completion there is; returns whether libuv's poll completed. */
static int reap(loom__worker *w)
{
    loom__uring *u = w->ring;
    struct io_uring_cqe *cqe;
    unsigned head, n = 0;
    int uv = 0;
    io_uring_for_each_cqe(&u->ring, head, cqe)
    {
        n++;
        if (cqe->user_data == U_UV) {
            u->uv_armed = 0;
            uv = 1;
        } else if (cqe->user_data != LOOM__U_IGNORE) {
            loom__conn_complete(w, cqe->user_data, cqe->res, cqe->flags);
        }
    }
    io_uring_cq_advance(&u->ring, n);
    if (u->returned) {
        io_uring_buf_ring_advance(u->br, (int)u->returned);
        u->returned = 0;
    }
    return uv;
}

void loom__uring_poll(loom__worker *w)
{
    uv_run(w->loop, UV_RUN_NOWAIT);
    loom__conn_reap(w);
    io_uring_submit_and_get_events(&w->ring->ring);
    uv_update_time(w->loop);
    reap(w);
    loom__conn_reap(w);
}

void loom__uring_run(loom__worker *w)
{
    loom__uring *u = w->ring;
    uv_loop_t *loop = w->loop;
    int uv_due = 1;
    for (;;) {
        if (uv_due) {
            uv_due = 0;
            uv_run(loop, UV_RUN_NOWAIT);
            loom__conn_reap(w);
            if (!uv_loop_alive(loop) && w->nconns == 0) break;
            arm_uv(w);
        }
        /* libuv's next timer bounds the wait; 0 means it has work now
         * (pending callbacks, handles closing). */
        int t = uv_loop_alive(loop) ? uv_backend_timeout(loop) : -1;
        int rc;
        if (t == 0) {
            uv_due = 1;
            rc = io_uring_submit_and_get_events(&u->ring);
        } else if (t > 0) {
            struct __kernel_timespec ts = {.tv_sec = t / 1000, .tv_nsec = (t % 1000) * 1000000L};
            struct io_uring_cqe *cqe;
            rc = io_uring_submit_and_wait_timeout(&u->ring, &cqe, 1, &ts, NULL);
            if (rc == -ETIME) uv_due = 1;
        } else {
            rc = io_uring_submit_and_wait(&u->ring, 1);
        }
        if (rc < 0 && rc != -ETIME && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY) {
            loom__err("io_uring_enter: %s", strerror(-rc));
            w->exit_code = 1;
            break;
        }
        uv_update_time(loop);
        if (reap(w)) uv_due = 1;
        loom__conn_reap(w);
    }
}
