/* HTTP status reason phrases. */
#ifndef LOOM_HTTP_STATUS_H
#define LOOM_HTTP_STATUS_H

/* Returns the reason phrase for `status` (a static string, never NULL). */
const char *loom__status_reason(int status);

#endif
