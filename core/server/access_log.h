/* The access log, to stdout or a file: one line per request, in Combined
 * Log Format or as a JSON object (access_log_format "json": timings, the
 * route pattern and the plugin that answered).
 *
 * Lines are gathered in a per-worker buffer (util/logbuf.h: 64 KiB) and
 * written when it is full, at most every quarter second (the worker's
 * sweep) and at exit, so logging costs one write(2) per batch, not per
 * request; a crash of the worker writes what is gathered before it dies.
 * A write that fails (a full disk) is reported once in the error log; the
 * lines are dropped and the server keeps serving. SIGUSR1 reopens the file
 * (loom__access_log_reopen), for log rotation. */
#ifndef LOOM_SERVER_ACCESS_LOG_H
#define LOOM_SERVER_ACCESS_LOG_H

#include <stddef.h>

#include "server/conn.h"

/* Opens the log: "-" is stdout, anything else a file opened for appending.
 * `format` is a LOOM__ALOG_* (config.h): Combined Log Format, the same with
 * the TLS protocol and cipher after the user agent ("-" "-" for plaintext),
 * or JSON lines. Returns NULL with the reason in `err` when the file cannot
 * be opened. */
loom__access_log *loom__access_log_open(const char *path, int format, char *err, size_t errlen);
/* Adds the line for a finished request. */
void loom__access_log_write(loom__access_log *l, loom__conn *c, const loom_req *r);
/* Adds a line for a request refused before it was complete: `line` is what
 * was parsed of its request line (len bytes; quoted and escaped here), or
 * NULL for "-". */
void loom__access_log_error(loom__access_log *l, loom__conn *c, int status, const char *line,
                            size_t len);
/* Writes out what is gathered. */
void loom__access_log_flush(loom__access_log *l);
/* Writes out what is gathered to the current file, then opens the path
 * again (a new file after a rename). Returns 0, or -1 with the reason in
 * `err` (the log keeps its current file). Stdout is left alone. */
int loom__access_log_reopen(loom__access_log *l, char *err, size_t errlen);
/* Flushes and closes. */
void loom__access_log_close(loom__access_log *l);
/* Formats the connection's peer address into buf; returns buf. */
const char *loom__access_log_addr(const loom__conn *c, char *buf, size_t len);

#endif
