/* A log buffer: whole lines gathered in memory and written with one
 * write(2) per batch (by size, and by the caller's timer), the way nginx's
 * `access_log ... buffer=` does.
 *
 * Lines are never torn: a line is copied in whole and only then counted
 * (`len`), and a flush writes whole lines; on a pipe or socket it writes at
 * most PIPE_BUF bytes at a time, cut after a newline, so that lines of
 * processes sharing the descriptor do not interleave.
 *
 * A crash of the process (a plugin's SIGSEGV, an abort) must not lose the
 * lines gathered before it: loom__logbuf_catch_crashes installs a handler
 * for the fatal signals that writes every registered buffer's counted
 * bytes (async-signal-safe: write(2) only) and then dies of the same
 * signal, so the master still sees it and a core dump still happens.
 * A SIGKILL loses what is buffered (at most a flush period). */
#ifndef LOOM_UTIL_LOGBUF_H
#define LOOM_UTIL_LOGBUF_H

#include <stddef.h>

typedef struct loom__logbuf {
    int fd;
    int pipe;         /* fd is not a regular file: writes of at most PIPE_BUF */
    int failing;      /* the last write failed; reported once */
    const char *what; /* "access log", "error log": for the failure message */
    char *data;
    size_t cap;
    volatile size_t len; /* whole lines in data; what a crash writes */
} loom__logbuf;

/* Prepares `b` to gather up to `cap` bytes for `fd` and registers it for
 * crash flushing (at most 8 buffers per process). Returns 0 or -1 (out of
 * memory). */
int loom__logbuf_init(loom__logbuf *b, int fd, size_t cap, const char *what);
/* Adds one whole line (with its newline). Flushes first when it would not
 * fit; a line longer than the buffer is written at once. */
void loom__logbuf_put(loom__logbuf *b, const char *line, size_t n);
/* Writes out what is gathered. A write that fails (a full disk) is
 * reported once through the error log; those lines are dropped. */
void loom__logbuf_flush(loom__logbuf *b);
/* Points the buffer at another descriptor (after a reopen), flushing first
 * to the old one. */
void loom__logbuf_set_fd(loom__logbuf *b, int fd);
/* Flushes, unregisters and frees the buffer (the fd is the caller's). */
void loom__logbuf_free(loom__logbuf *b);

/* Installs the fatal-signal handler (SIGSEGV, SIGBUS, SIGFPE, SIGILL,
 * SIGABRT, SIGTRAP, SIGSYS) on an alternate stack, in this process. */
void loom__logbuf_catch_crashes(void);

#endif
