/* HTTP status reason phrases. */
#ifndef LOOM_HTTP_STATUS_H
#define LOOM_HTTP_STATUS_H

#include <stddef.h>

/* Returns the reason phrase for `status` (a static string, never NULL). */
const char *loom__status_reason(int status);
/* Returns the whole status line, "HTTP/1.1 200 OK\r\n", for a status with a
 * reason phrase of its own, and its length in *len; NULL for the others
 * (whose line the caller builds from loom__status_reason). Precomposed, so
 * that a response head costs one copy for it; LOOM__STATUS_LINE_READ bytes
 * may be read from it (a copy of a fixed size needs no call). */
#define LOOM__STATUS_LINE_READ 48
const char *loom__status_line(int status, size_t *len);

#endif
