/* The client side of the connection fuzz targets (fuzz_conn, fuzz_tls,
 * fuzz_h2): one loopback TCP connection to a worker that runs on this
 * thread, turn by turn, without waiting. */
#ifndef LOOM_FUZZ_DRIVE_H
#define LOOM_FUZZ_DRIVE_H

#include <errno.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "fuzz_common.h"
#include "server/server.h"

static inline double fuzz_now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* Sends in[0..len) to the worker at addr in pieces that mode's bits 0-1 pick
 * (seeded by rng), reading whatever comes back, then ends the way mode says:
 * bit 2, a reset (SO_LINGER 0) instead of a half-close; bit 3, a reset at a
 * point rng picks before everything is sent. Returns once the server has
 * closed and the worker holds no connection; aborts (an invariant) if either
 * takes over 10 s. Returns the bytes received. */
static inline size_t fuzz_drive(loom__worker *w, const struct sockaddr_in *addr, const char *in,
                                size_t len, uint8_t mode, fuzz_rng *rng)
{
    size_t sent = 0, got = 0;
    size_t reset_at = (mode & 8) ? fuzz_next(rng) % (len + 1) : len + 1;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    FUZZ_CHECK(fd >= 0);
    int rc = connect(fd, (const struct sockaddr *)addr, sizeof *addr);
    FUZZ_CHECK(rc == 0 || errno == EINPROGRESS);
    int wr_done = 0, eof = 0;
    double deadline = fuzz_now_s() + 10;
    char rb[65536];
    while (!eof) {
        loom__worker_poll(w);
        if (!wr_done) {
            size_t n = fuzz_split(rng, mode, len - sent);
            if (sent + n > reset_at) n = reset_at - sent;
            ssize_t k = n ? send(fd, in + sent, n, MSG_NOSIGNAL) : 0;
            if (k > 0) sent += (size_t)k;
            if (k < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != ENOTCONN)
                wr_done = 1; /* the server closed on us */
            if (sent == len || sent == reset_at) {
                wr_done = 1;
                if ((mode & 4) || sent == reset_at) {
                    struct linger lg = {1, 0};
                    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
                    close(fd);
                    fd = -1;
                    break;
                }
                shutdown(fd, SHUT_WR);
            }
        }
        ssize_t r = recv(fd, rb, sizeof rb, 0);
        if (r > 0) got += (size_t)r;
        if (r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != ENOTCONN))
            eof = 1;
        FUZZ_CHECK(fuzz_now_s() < deadline); /* the server must close: no hang */
    }
    if (fd >= 0) close(fd);
    /* The server side must go away too (after a reset, once it notices). */
    deadline = fuzz_now_s() + 10;
    while (w->nconns > 0) {
        loom__worker_poll(w);
        FUZZ_CHECK(fuzz_now_s() < deadline);
    }
    if (getenv("FUZZ_VERBOSE")) fprintf(stderr, "sent %zu, received %zu\n", sent, got);
    return got;
}

#endif
