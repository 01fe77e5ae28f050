/* Logging: a line is formatted whole and written with one write(2), so lines
 * from several worker processes sharing stderr do not interleave.
 *
 * In a worker, plugin lines (loom_log) are gathered (loom__log_buffer) and
 * written by size and by the worker's sweep timer (loom__log_flush), like
 * the access log: a plugin that logs every request then costs one write per
 * batch, not per line. The core's own lines are events (a reload, a worker
 * start, an error): each is written at once, with the plugin lines gathered
 * before it in the same write, so the order holds and nothing waits; so is
 * a plugin's error or warning. */
#include "util/log.h"
#include "util/logbuf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int log_level = LOOM_LOG_INFO;
static int log_worker = -1;
static loom__logbuf logbuf;
static int buffered;

void loom__log_set_level(int level)
{
    log_level = level;
}

int loom__log_get_level(void)
{
    return log_level;
}

int loom__log_enabled(int level)
{
    return level <= log_level;
}

void loom__log_set_worker(int id)
{
    log_worker = id;
}

int loom__log_buffer(size_t cap)
{
    if (buffered) return 0;
    if (loom__logbuf_init(&logbuf, STDERR_FILENO, cap, "error log")) return -1;
    buffered = 1;
    return 0;
}

void loom__log_flush(void)
{
    if (buffered) loom__logbuf_flush(&logbuf);
}

int loom__log_reopen(const char *path, char *err, size_t errlen)
{
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    if (fd < 0) {
        snprintf(err, errlen, "error log '%s': %s", path, strerror(errno));
        return -1;
    }
    loom__log_flush();
    if (fd != STDERR_FILENO) {
        dup2(fd, STDERR_FILENO);
        close(fd);
    }
    if (buffered) loom__logbuf_set_fd(&logbuf, STDERR_FILENO); /* a file now, maybe not before */
    return 0;
}

/* The time and level prefix; the date and time change once a second. */
static int prefix(char *line, size_t cap, int level)
{
    static const char *names[] = {"error", "warn", "info", "debug"};
    static time_t cached_sec = -1;
    static char cached[24];
    static int cached_len;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    if (ts.tv_sec != cached_sec) {
        struct tm tm;
        localtime_r(&ts.tv_sec, &tm);
        cached_len = (int)strftime(cached, sizeof cached, "%Y-%m-%d %H:%M:%S", &tm);
        cached_sec = ts.tv_sec;
    }
    memcpy(line, cached, (size_t)cached_len);
    int n = cached_len;
    if (log_worker >= 0)
        n += snprintf(line + n, cap - (size_t)n, ".%03ld [%s] [w%d %d] ", ts.tv_nsec / 1000000L,
                      names[level], log_worker, (int)getpid());
    else
        n += snprintf(line + n, cap - (size_t)n, ".%03ld [%s] [main %d] ", ts.tv_nsec / 1000000L,
                      names[level], (int)getpid());
    return n;
}

static void emit(int level, int gather, const char *fmt, va_list ap)
{
    char line[2048];
    int n = prefix(line, sizeof line, level);
    int m = vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
    if (m < 0) m = 0;
    n += m;
    if (n > (int)sizeof line - 2) n = (int)sizeof line - 2;
    line[n++] = '\n';
    if (buffered) {
        loom__logbuf_put(&logbuf, line, (size_t)n);
        if (!gather || level <= LOOM_LOG_WARN) loom__logbuf_flush(&logbuf);
        return;
    }
    ssize_t w = write(STDERR_FILENO, line, (size_t)n);
    (void)w;
}

void loom__log(int level, const char *fmt, ...)
{
    if (level > log_level) return;
    va_list ap;
    va_start(ap, fmt);
    emit(level, 0, fmt, ap);
    va_end(ap);
}

void loom__log_plugin(int level, const char *fmt, ...)
{
    if (level > log_level) return;
    va_list ap;
    va_start(ap, fmt);
    emit(level, 1, fmt, ap);
    va_end(ap);
}
