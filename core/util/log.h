/* Logging to stderr: one line per event, with time, level and worker id. */
#ifndef LOOM_UTIL_LOG_H
#define LOOM_UTIL_LOG_H

/* The same values as the plugin ABI's (loom.h). */
#ifndef LOOM_LOG_ERROR
#define LOOM_LOG_ERROR 0
#define LOOM_LOG_WARN 1
#define LOOM_LOG_INFO 2
#define LOOM_LOG_DEBUG 3
#endif

/* Sets the least important level that is printed (default LOOM_LOG_INFO). */
void loom__log_set_level(int level);
/* Sets the worker id printed on every line; -1 (default) prints "main". */
void loom__log_set_worker(int id);
/* Whether a line at `level` would be printed (to skip formatting work). */
int loom__log_enabled(int level);
/* Prints one line at `level`. A trailing newline is added. */
void loom__log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define loom__err(...) loom__log(LOOM_LOG_ERROR, __VA_ARGS__)
#define loom__warn(...) loom__log(LOOM_LOG_WARN, __VA_ARGS__)
#define loom__info(...) loom__log(LOOM_LOG_INFO, __VA_ARGS__)
#define loom__debug(...) loom__log(LOOM_LOG_DEBUG, __VA_ARGS__)

#endif
