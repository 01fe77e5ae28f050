/* Logging: a line is formatted whole and written with one write(2), so lines
 * from several worker processes sharing stderr do not interleave. */
#include "util/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int log_level = LOOM_LOG_INFO;
static int log_worker = -1;

void loom__log_set_level(int level)
{
    log_level = level;
}

int loom__log_enabled(int level)
{
    return level <= log_level;
}

void loom__log_set_worker(int id)
{
    log_worker = id;
}

void loom__log(int level, const char *fmt, ...)
{
    static const char *names[] = {"error", "warn", "info", "debug"};
    if (level > log_level) return;
    char line[2048];
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    localtime_r(&ts.tv_sec, &tm);
    int n = (int)strftime(line, sizeof line, "%Y-%m-%d %H:%M:%S", &tm);
    if (log_worker >= 0)
        n += snprintf(line + n, sizeof line - n, ".%03ld [%s] [w%d %d] ", ts.tv_nsec / 1000000L,
                      names[level], log_worker, (int)getpid());
    else
        n += snprintf(line + n, sizeof line - n, ".%03ld [%s] [main %d] ", ts.tv_nsec / 1000000L,
                      names[level], (int)getpid());
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof line - n, fmt, ap);
    va_end(ap);
    if (m < 0) m = 0;
    n += m;
    if (n > (int)sizeof line - 2) n = (int)sizeof line - 2;
    line[n++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, (size_t)n);
    (void)w;
}
