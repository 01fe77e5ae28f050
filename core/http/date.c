#include "http/date.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#define SERVER_LINE "Server: loom/" LOOM_VERSION "\r\n"

/* "Date: ...\r\n" followed by the Server line: a response without a Server
 * header of its own takes both with one copy. */
static _Thread_local time_t cached_sec = -1;
static _Thread_local char cached[64 + sizeof SERVER_LINE];
_Static_assert(sizeof cached >= LOOM__DATE_SERVER_READ, "LOOM__DATE_SERVER_READ");
static _Thread_local size_t cached_len;

void loom__http_date(long long t, char out[32])
{
    static const char *days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char *mons[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                 "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    snprintf(out, 32, "%s, %02d %s %04d %02d:%02d:%02d GMT", days[tm.tm_wday], tm.tm_mday,
             mons[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

const char *loom__date_server_lines(size_t *date_len, size_t *len)
{
    /* time() is a vDSO call: cheaper than any cache invalidation scheme. */
    time_t now = time(NULL);
    if (now != cached_sec) {
        char d[32];
        loom__http_date(now, d);
        cached_len = (size_t)snprintf(cached, 64, "Date: %s\r\n", d);
        memcpy(cached + cached_len, SERVER_LINE, sizeof SERVER_LINE);
        cached_sec = now;
    }
    *date_len = cached_len;
    if (len) *len = cached_len + sizeof SERVER_LINE - 1;
    return cached;
}

const char *loom__date_line(size_t *len)
{
    return loom__date_server_lines(len, NULL);
}
