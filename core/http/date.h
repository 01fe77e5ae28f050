/* The Date header, formatted at most once a second per thread. */
#ifndef LOOM_HTTP_DATE_H
#define LOOM_HTTP_DATE_H

#include <stddef.h>

/* Returns "Date: <IMF-fixdate>\r\n" for the current second (37 bytes, static
 * per thread, valid until the next call; not NUL-terminated after them) and
 * its length in *len. */
const char *loom__date_line(size_t *len);
/* Returns the Date line followed by "Server: loom/<version>\r\n" (static per
 * thread, valid until the next call); *date_len is the length of the Date
 * line alone, *len (may be NULL) that of both. */
const char *loom__date_server_lines(size_t *date_len, size_t *len);
/* How many bytes may be read from what loom__date_server_lines returns
 * (more than it holds, so that a copy of a fixed size covers it). */
#define LOOM__DATE_SERVER_READ 64
/* Formats `t` (seconds since the epoch) as an IMF-fixdate into out[32]. */
void loom__http_date(long long t, char out[32]);

#endif
