/* The access log in Combined Log Format, to stdout or a file.
 *
 * Lines are gathered in memory and written at most every quarter second (and
 * at exit), so logging costs one write(2) per batch, not per request. A write
 * that fails (a full disk) is reported once in the error log; the lines are
 * dropped and the server keeps serving. */
#ifndef LOOM_SERVER_ACCESS_LOG_H
#define LOOM_SERVER_ACCESS_LOG_H

#include <stddef.h>

#include "server/conn.h"

/* Opens the log: "-" is stdout, anything else a file opened for appending.
 * `format` is a LOOM__ALOG_* (config.h): Combined Log Format, or the same
 * with the TLS protocol and cipher after the user agent ("-" "-" for
 * plaintext). Returns NULL with the reason in `err` when the file cannot be
 * opened. */
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
/* Flushes and closes. */
void loom__access_log_close(loom__access_log *l);
/* Formats the connection's peer address into buf; returns buf. */
const char *loom__access_log_addr(const loom__conn *c, char *buf, size_t len);

#endif
