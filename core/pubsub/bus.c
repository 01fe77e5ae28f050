/* Datagrams between the workers of a machine. Each is
 *   'L' 'B', flags (1: the payload is in the attached memfd), type,
 *   the channel name's length (2 bytes, little-endian), the name, the payload
 * and small ones carry the payload inline. Sends never block the loop: a
 * full peer queue (a worker that stalls) keeps what it could not take in a
 * queue of ours, sent when the socket is writable, up to QUEUE_MAX bytes
 * per peer; past that messages to that worker are dropped, with a warning. */
#include "pubsub/bus.h"
#include "pubsub/pubsub.h"
#include "util/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#define INLINE_MAX (32u << 10) /* larger payloads travel in a memfd */
#define QUEUE_MAX (16u << 20)  /* bytes held per stalled worker */
#define HDR 6

int loom__bus_create(loom__bus *b, int n, char *err, size_t errlen)
{
    memset(b, 0, sizeof *b);
    b->rd = malloc((size_t)n * sizeof *b->rd);
    b->wr = malloc((size_t)n * sizeof *b->wr);
    if (!b->rd || !b->wr) {
        snprintf(err, errlen, "worker bus: out of memory");
        loom__bus_free(b);
        return -1;
    }
    for (int i = 0; i < n; i++) {
        int sv[2];
        if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0) {
            snprintf(err, errlen, "worker bus: socketpair: %s", strerror(errno));
            loom__bus_free(b);
            return -1;
        }
        /* A deeper queue than the default for bursts of broadcasts. */
        int sz = 4 << 20;
        setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz);
        setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &sz, sizeof sz);
        b->rd[i] = sv[0];
        b->wr[i] = sv[1];
        b->n = i + 1;
    }
    return 0;
}

void loom__bus_free(loom__bus *b)
{
    for (int i = 0; i < b->n; i++) {
        close(b->rd[i]);
        close(b->wr[i]);
    }
    free(b->rd);
    free(b->wr);
    memset(b, 0, sizeof *b);
}

typedef struct qmsg {
    struct qmsg *next;
    int fd; /* memfd or -1 */
    size_t len;
    char data[];
} qmsg;

typedef struct {
    uv_poll_t poll; /* writability of wr[i], while q is not empty */
    int polling;
    qmsg *q, **qtail;
    size_t qbytes;
    uint64_t dropped;
} peer;

static _Thread_local struct {
    loom__bus *b;
    int id;
    uv_poll_t *rpoll;
    peer *peers;
    char *rbuf;
    uint64_t drop_logged;
    uv_loop_t *loop;
} bus;

static void on_readable(uv_poll_t *h, int status, int events);

static ssize_t send_one(int fd, const char *p, size_t n, int memfd)
{
    struct iovec iov = {(void *)p, n};
    struct msghdr mh;
    memset(&mh, 0, sizeof mh);
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } cm;
    if (memfd >= 0) {
        mh.msg_control = cm.buf;
        mh.msg_controllen = sizeof cm.buf;
        struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(c), &memfd, sizeof memfd);
    }
    ssize_t r;
    do r = sendmsg(fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
    while (r < 0 && errno == EINTR);
    return r;
}

static void on_writable(uv_poll_t *h, int status, int events);

static void flush_peer(int i)
{
    peer *p = &bus.peers[i];
    while (p->q) {
        qmsg *m = p->q;
        if (send_one(bus.b->wr[i], m->data, m->len, m->fd) < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK) break;
            loom__warn("worker bus: sending to worker %d: %s", i, strerror(errno));
        }
        p->q = m->next;
        p->qbytes -= m->len;
        if (m->fd >= 0) close(m->fd);
        free(m);
    }
    if (!p->q) p->qtail = &p->q;
    int want = p->q != NULL;
    if (want != p->polling) {
        p->polling = want;
        if (want)
            uv_poll_start(&p->poll, UV_WRITABLE, on_writable);
        else
            uv_poll_stop(&p->poll);
    }
}

static void on_writable(uv_poll_t *h, int status, int events)
{
    (void)status;
    (void)events;
    flush_peer((int)((peer *)h->data - bus.peers));
}

static void enqueue(int i, const char *d, size_t n, int memfd)
{
    peer *p = &bus.peers[i];
    qmsg *m = p->qbytes + n <= QUEUE_MAX ? malloc(sizeof *m + n) : NULL;
    if (!m) {
        p->dropped++;
        uint64_t now = uv_now(bus.loop);
        if (!bus.drop_logged || now - bus.drop_logged >= 1000) {
            loom__warn("worker bus: worker %d does not read its broadcasts; %llu dropped", i,
                       (unsigned long long)p->dropped);
            bus.drop_logged = now ? now : 1;
        }
        return;
    }
    m->next = NULL;
    m->fd = memfd >= 0 ? dup(memfd) : -1;
    m->len = n;
    memcpy(m->data, d, n);
    *p->qtail = m;
    p->qtail = &m->next;
    p->qbytes += n;
    flush_peer(i);
}

void loom__bus_send(const char *name, size_t nlen, int type, const void *data, size_t len)
{
    if (!bus.b) return;
    int big = len > INLINE_MAX;
    size_t n = HDR + nlen + (big ? 0 : len);
    char stackbuf[HDR + LOOM__CHANNEL_MAX + INLINE_MAX];
    char *d = stackbuf;
    d[0] = 'L';
    d[1] = 'B';
    d[2] = (char)big;
    d[3] = (char)type;
    d[4] = (char)(nlen & 0xff);
    d[5] = (char)(nlen >> 8);
    memcpy(d + HDR, name, nlen);
    int memfd = -1;
    if (big) {
        memfd = memfd_create("loom-bus", MFD_CLOEXEC);
        if (memfd < 0 || write(memfd, data, len) != (ssize_t)len) {
            loom__warn("worker bus: a %zu-byte message cannot be passed on: %s", len,
                       strerror(errno));
            if (memfd >= 0) close(memfd);
            return;
        }
    } else if (len) {
        memcpy(d + HDR + nlen, data, len);
    }
    for (int i = 0; i < bus.b->n; i++) {
        if (i == bus.id) continue;
        peer *p = &bus.peers[i];
        if (!p->q && send_one(bus.b->wr[i], d, n, memfd) >= 0) continue;
        if (!p->q && errno != EAGAIN && errno != EWOULDBLOCK) {
            loom__warn("worker bus: sending to worker %d: %s", i, strerror(errno));
            continue;
        }
        enqueue(i, d, n, memfd); /* keeps the order behind what waits */
    }
    if (memfd >= 0) close(memfd);
}

/* One datagram from another worker. */
static void received(const char *d, size_t n, int fd)
{
    if (n < HDR || d[0] != 'L' || d[1] != 'B') goto out;
    size_t nlen = (size_t)(uint8_t)d[4] | ((size_t)(uint8_t)d[5] << 8);
    if (HDR + nlen > n) goto out;
    int type = d[3];
    const char *name = d + HDR;
    if (!d[2]) {
        loom__pubsub_deliver(name, nlen, type, d + HDR + nlen, n - HDR - nlen);
        goto out;
    }
    if (fd < 0) goto out;
    off_t size = lseek(fd, 0, SEEK_END);
    if (size < 0) goto out;
    void *m = size ? mmap(NULL, (size_t)size, PROT_READ, MAP_PRIVATE, fd, 0) : NULL;
    if (size && m == MAP_FAILED) goto out;
    loom__pubsub_deliver(name, nlen, type, m ? m : "", (size_t)size);
    if (m) munmap(m, (size_t)size);
out:
    if (fd >= 0) close(fd);
}

static void on_readable(uv_poll_t *h, int status, int events)
{
    (void)h;
    (void)events;
    if (status < 0) return;
    /* A bounded number per turn: the connections get theirs. */
    for (int k = 0; k < 64; k++) {
        struct iovec iov = {bus.rbuf, HDR + LOOM__CHANNEL_MAX + INLINE_MAX};
        union {
            char buf[CMSG_SPACE(sizeof(int))];
            struct cmsghdr align;
        } cm;
        struct msghdr mh;
        memset(&mh, 0, sizeof mh);
        mh.msg_iov = &iov;
        mh.msg_iovlen = 1;
        mh.msg_control = cm.buf;
        mh.msg_controllen = sizeof cm.buf;
        ssize_t r = recvmsg(bus.b->rd[bus.id], &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
        if (r < 0) {
            if (errno == EINTR) continue;
            return;
        }
        int fd = -1;
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
            if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
                memcpy(&fd, CMSG_DATA(c), sizeof fd);
        received(bus.rbuf, (size_t)r, fd);
    }
}

int loom__bus_start(loom__bus *b, int id, uv_loop_t *loop)
{
    bus.b = b;
    bus.id = id;
    bus.loop = loop;
    bus.rbuf = malloc(HDR + LOOM__CHANNEL_MAX + INLINE_MAX);
    bus.peers = calloc((size_t)b->n, sizeof *bus.peers);
    bus.rpoll = malloc(sizeof *bus.rpoll);
    if (!bus.rbuf || !bus.peers || !bus.rpoll) goto fail;
    for (int i = 0; i < b->n; i++) {
        bus.peers[i].qtail = &bus.peers[i].q;
        if (i == id) continue;
        uv_poll_init(loop, &bus.peers[i].poll, b->wr[i]);
        bus.peers[i].poll.data = &bus.peers[i];
    }
    uv_poll_init(loop, bus.rpoll, b->rd[id]);
    uv_poll_start(bus.rpoll, UV_READABLE, on_readable);
    return 0;
fail:
    loom__err("worker bus: out of memory");
    free(bus.rbuf);
    free(bus.peers);
    free(bus.rpoll);
    memset(&bus, 0, sizeof bus);
    return -1;
}

static void free_on_close(uv_handle_t *h)
{
    free(h);
}

/* The peers' watchers live in one array, freed after the last close
 * callback (libuv does not promise their order): its first bytes count. */
typedef struct {
    int pending;
    peer *peers;
} closing;

static void peer_closed(uv_handle_t *h)
{
    closing *c = h->data;
    if (--c->pending == 0) {
        free(c->peers);
        free(c);
    }
}

void loom__bus_stop(void)
{
    if (!bus.b) return;
    uv_close((uv_handle_t *)bus.rpoll, free_on_close);
    closing *cl = malloc(sizeof *cl);
    int n = 0;
    for (int i = 0; i < bus.b->n; i++) {
        peer *p = &bus.peers[i];
        while (p->q) {
            qmsg *m = p->q;
            p->q = m->next;
            if (m->fd >= 0) close(m->fd);
            free(m);
        }
        if (i != bus.id) n++;
    }
    if (!cl) {
        /* Out of memory: keep the array (a few hundred bytes) rather than
         * free it under pending closes. */
        for (int i = 0; i < bus.b->n; i++)
            if (i != bus.id) uv_close((uv_handle_t *)&bus.peers[i].poll, NULL);
    } else if (n == 0) {
        free(cl);
        free(bus.peers);
    } else {
        cl->pending = n;
        cl->peers = bus.peers;
        for (int i = 0; i < bus.b->n; i++) {
            if (i == bus.id) continue;
            bus.peers[i].poll.data = cl;
            uv_close((uv_handle_t *)&bus.peers[i].poll, peer_closed);
        }
    }
    free(bus.rbuf);
    memset(&bus, 0, sizeof bus);
}
