#include "http/date.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

static _Thread_local time_t cached_sec = -1;
static _Thread_local char cached[64];
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

const char *loom__date_line(size_t *len)
{
    /* time() is a vDSO call: cheaper than any cache invalidation scheme. */
    time_t now = time(NULL);
    if (now != cached_sec) {
        char d[32];
        loom__http_date(now, d);
        cached_len = (size_t)snprintf(cached, sizeof cached, "Date: %s\r\n", d);
        cached_sec = now;
    }
    *len = cached_len;
    return cached;
}
