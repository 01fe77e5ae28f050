/* Reloading a worker's TLS certificates: on SIGHUP and when their files
 * change (see tls_reload.c). */
#ifndef LOOM_SERVER_TLS_RELOAD_H
#define LOOM_SERVER_TLS_RELOAD_H

#include "server/server.h"

typedef struct loom__tls_watch loom__tls_watch;

/* Rebuilds w->tls from the config's files. On success the new contexts
 * serve new handshakes (returns 0); on failure the reason is logged, the
 * old ones stay (returns -1). `why` is said in the log line. */
int loom__tls_reload(loom__worker *w, const char *why);
/* Watches the directories of the certificate files for changes (when the
 * "watch" setting is on). Returns the watcher, or NULL when there is none. */
loom__tls_watch *loom__tls_watch_start(loom__worker *w);
/* Stops and frees the watcher (its handles close on the loop). */
void loom__tls_watch_stop(loom__tls_watch *tw);

#endif
