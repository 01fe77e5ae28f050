/* Installing a file whole: the reader of the destination never sees it half
 * written, and a file already mapped by a process is never written over. */
#ifndef LOOM_UTIL_FS_H
#define LOOM_UTIL_FS_H

/* Copies `src` to `tmp` (which must not exist), optionally fsyncs it, then
 * renames it to `dst`. Returns 0, or -1 with errno set (tmp is removed). */
int loom__install_file(const char *src, const char *tmp, const char *dst, int do_fsync);

#endif
