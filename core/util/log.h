/* Logging to stderr: one line per event, with time, level and worker id. */
#ifndef LOOM_UTIL_LOG_H
#define LOOM_UTIL_LOG_H

#include <stddef.h>

/* The same values as the plugin ABI's (loom.h). */
#ifndef LOOM_LOG_ERROR
#define LOOM_LOG_ERROR 0
#define LOOM_LOG_WARN 1
#define LOOM_LOG_INFO 2
#define LOOM_LOG_DEBUG 3
#endif

/* Sets the least important level that is printed (default LOOM_LOG_INFO). */
void loom__log_set_level(int level);
int loom__log_get_level(void);
/* Sets the worker id printed on every line; -1 (default) prints "main". */
void loom__log_set_worker(int id);
/* Whether a line at `level` would be printed (to skip formatting work). */
int loom__log_enabled(int level);
/* From now on, this process gathers plugin lines (up to `cap` bytes)
 * instead of writing each at once: any other line writes them with it,
 * and so do loom__log_flush (a timer) and a crash (util/logbuf.h). Returns
 * 0 or -1. */
int loom__log_buffer(size_t cap);
/* Writes the gathered lines. */
void loom__log_flush(void);
/* Opens `path` for appending and makes it this process's stderr (the error
 * log), after writing the gathered lines to the old one. Returns 0, or -1
 * with the reason in `err` (stderr unchanged). */
int loom__log_reopen(const char *path, char *err, size_t errlen);
/* Prints one line at `level`. A trailing newline is added. */
void loom__log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A plugin's line (loom_log): gathered in a buffered process, unless it is
 * an error or a warning. */
void loom__log_plugin(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define loom__err(...) loom__log(LOOM_LOG_ERROR, __VA_ARGS__)
#define loom__warn(...) loom__log(LOOM_LOG_WARN, __VA_ARGS__)
#define loom__info(...) loom__log(LOOM_LOG_INFO, __VA_ARGS__)
#define loom__debug(...) loom__log(LOOM_LOG_DEBUG, __VA_ARGS__)

#endif
