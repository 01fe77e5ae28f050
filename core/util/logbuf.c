/* Log buffers (see logbuf.h). */
#include "util/logbuf.h"
#include "util/log.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_BUFS 8

static loom__logbuf *volatile registered[MAX_BUFS];

static void reg(loom__logbuf *b, int on)
{
    for (int i = 0; i < MAX_BUFS; i++)
        if (on ? registered[i] == NULL : registered[i] == b) {
            registered[i] = on ? b : NULL;
            return;
        }
}

static void point_at(loom__logbuf *b, int fd)
{
    struct stat st;
    b->fd = fd;
    b->pipe = fstat(fd, &st) == 0 && !S_ISREG(st.st_mode);
}

int loom__logbuf_init(loom__logbuf *b, int fd, size_t cap, const char *what)
{
    memset(b, 0, sizeof *b);
    b->data = malloc(cap);
    if (!b->data) return -1;
    b->cap = cap;
    b->what = what;
    point_at(b, fd);
    reg(b, 1);
    return 0;
}

/* Writes [p, p+n) whole (retrying short writes). Returns 0, or -1 with
 * errno set. Safe in a signal handler. */
static int write_all(int fd, int pipe, const char *p, size_t n)
{
    while (n > 0) {
        size_t chunk = n;
        if (pipe && chunk > PIPE_BUF) {
            /* Up to the last newline within PIPE_BUF, so each write is
             * atomic and ends a line; a longer line goes in one write. */
            size_t k = PIPE_BUF;
            while (k > 0 && p[k - 1] != '\n') k--;
            if (k) chunk = k;
        }
        ssize_t w = write(fd, p, chunk);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            if (w == 0) errno = EIO;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static void write_out(loom__logbuf *b, const char *p, size_t n)
{
    if (write_all(b->fd, b->pipe, p, n) == 0) {
        if (b->failing) {
            b->failing = 0;
            loom__info("%s: writing again", b->what);
        }
        return;
    }
    if (!b->failing) {
        b->failing = 1;
        loom__err("%s: write failed: %s; dropping lines until it works again", b->what,
                  strerror(errno));
    }
}

void loom__logbuf_flush(loom__logbuf *b)
{
    size_t n = b->len;
    if (n == 0) return;
    /* Counted as gone before the write: a crash in it must not write the
     * lines twice. */
    b->len = 0;
    write_out(b, b->data, n);
}

void loom__logbuf_put(loom__logbuf *b, const char *line, size_t n)
{
    if (b->len + n > b->cap) loom__logbuf_flush(b);
    if (n > b->cap) {
        write_out(b, line, n);
        return;
    }
    memcpy(b->data + b->len, line, n);
    __atomic_signal_fence(__ATOMIC_SEQ_CST); /* the bytes before the count */
    b->len += n;
}

void loom__logbuf_set_fd(loom__logbuf *b, int fd)
{
    if (b->data) loom__logbuf_flush(b);
    point_at(b, fd);
}

void loom__logbuf_free(loom__logbuf *b)
{
    if (!b->data) return;
    loom__logbuf_flush(b);
    reg(b, 0);
    free(b->data);
    b->data = NULL;
}

static void on_fatal(int sig)
{
    int saved = errno;
    for (int i = 0; i < MAX_BUFS; i++) {
        loom__logbuf *b = registered[i];
        if (!b || !b->data) continue;
        size_t n = b->len;
        b->len = 0;
        if (n && n <= b->cap) write_all(b->fd, b->pipe, b->data, n);
    }
    errno = saved;
    /* SA_RESETHAND restored the default action: die of the same signal. */
    raise(sig);
}

void loom__logbuf_catch_crashes(void)
{
    static char altstack[64 * 1024];
    stack_t ss = {.ss_sp = altstack, .ss_size = sizeof altstack, .ss_flags = 0};
    sigaltstack(&ss, NULL);
    static const int sigs[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT, SIGTRAP, SIGSYS};
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_fatal;
    sa.sa_flags = SA_RESETHAND | SA_ONSTACK | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) sigaction(sigs[i], &sa, NULL);
}
