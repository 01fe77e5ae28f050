/* The io_uring backend of a worker's connection I/O.
 *
 * With it, a connection's reads are one multishot recv that the kernel keeps
 * armed and fills from a ring of worker-owned buffers, and its writes are
 * send operations queued during a loop turn and handed to the kernel together
 * with the wait for the next events: one system call per loop turn instead of
 * an epoll_wait plus a recv and a send per request. On this project's
 * benchmark machine the epoll path takes 1.08-1.10x the server CPU per
 * keep-alive request (docs/decisions.md).
 *
 * The ring leads the loop: the worker waits in io_uring_enter, and libuv
 * (listener, timers, signals, the thread pool, the HTTP client) gets a turn
 * when its epoll fd is readable or its next timer is due. The epoll path
 * (server/conn.c on uv_poll_t) stays for kernels, containers or seccomp
 * policies without io_uring, and for `io = "epoll"`.
 *
 * Everything here runs on the worker's loop thread (the ring is created with
 * IORING_SETUP_SINGLE_ISSUER). */
#ifndef LOOM_SERVER_URING_H
#define LOOM_SERVER_URING_H

/* liburing/io_uring.h (the CQE flags) uses the kernel's timespec type
 * without including its header. */
#include <linux/time_types.h>

#include <liburing/io_uring.h>
#include <stddef.h>
#include <stdint.h>

#include "server/server.h"

/* What a completion is about, in the low bits of its user_data; the rest is
 * the connection's address (connections are at least 8-aligned). */
enum { LOOM__U_IGNORE = 0, LOOM__U_RECV = 1, LOOM__U_SEND = 2, LOOM__U_POLLOUT = 3 };
#define LOOM__U_TAG(ud) ((unsigned)((ud)&7u))
#define LOOM__U_PTR(ud) ((void *)(uintptr_t)((ud) & ~(uint64_t)7u))

/* Creates the worker's ring and its receive buffers, and sets w->ring.
 * Returns 0, or -1 with a one-line reason in `err` (w->ring stays NULL and
 * the worker uses epoll). */
int loom__uring_open(loom__worker *w, char *err, size_t errlen);
/* Releases the ring; operations still in flight are dropped. */
void loom__uring_close(loom__worker *w);
/* Runs the worker's loop until libuv has nothing left alive and every
 * connection is gone (what uv_run(UV_RUN_DEFAULT) does for the epoll path). */
void loom__uring_run(loom__worker *w);

/* One turn without waiting: libuv's, then the ring's completions (see
 * loom__worker_poll). */
void loom__uring_poll(loom__worker *w);

/* Queue an operation; it reaches the kernel with the next wait. `ud` is the
 * connection's address with a LOOM__U_* tag. The completion goes to
 * loom__conn_complete. Each returns 0, or -1 when the ring is full even
 * after a submit (the caller closes the connection). */
int loom__uring_recv(loom__worker *w, int fd, uint64_t ud);
/* `p` must stay valid until the completion. */
int loom__uring_send(loom__worker *w, int fd, const void *p, size_t len, uint64_t ud);
/* One completion when the socket can take more bytes. */
int loom__uring_pollout(loom__worker *w, int fd, uint64_t ud);
/* Cancels every operation on `fd`; each ends with a completion (-ECANCELED
 * or its own result). */
int loom__uring_cancel_fd(loom__worker *w, int fd);
/* Cancels the operation queued with `ud`. */
int loom__uring_cancel(loom__worker *w, uint64_t ud);

/* The receive buffer a recv completion names in its flags, and giving it back
 * once its bytes are consumed (or copied). */
char *loom__uring_buf(loom__worker *w, uint32_t cqe_flags);
void loom__uring_buf_done(loom__worker *w, uint32_t cqe_flags);

/* A buffer for gathering responses: a spare one when there is one. Buffers
 * given back keep their memory for the next response (up to a few). */
void loom__uring_take_buf(loom__worker *w, loom__buf *b);
void loom__uring_give_buf(loom__worker *w, loom__buf *b);

#endif
