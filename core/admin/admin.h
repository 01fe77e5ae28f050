/* The admin listener: Prometheus metrics, the dashboard, and the server's
 * status and plugin listing as JSON, for `loom status` and `loom plugins`.
 *
 * The admin listener is one more entry of the config's listeners (marked
 * admin, always plaintext, loopback unless a token is set), bound per
 * worker like the others; the connection layer sends every request that
 * came on it here, and nothing else: no path on a public listener reaches
 * this code.
 *
 *   GET /             the dashboard (HTML, CSS and JavaScript in the binary)
 *   GET /metrics      Prometheus text format 0.0.4, summed over the workers
 *   GET /api/status   every worker, its plugins and the totals (JSON)
 *   GET /plugins      the answering worker's plugin listing (also at
 *                     /_loom/plugins, the path `loom plugins` asks for)
 *
 * With "admin": {"token": "..."} every path but the dashboard page needs
 * "Authorization: Bearer <token>" (compared in constant time); the page
 * reads the token from its URL fragment (#token=...), which browsers never
 * send. */
#ifndef LOOM_ADMIN_ADMIN_H
#define LOOM_ADMIN_ADMIN_H

#include "admin/metrics.h"
#include "http/request.h"
#include "server/server.h"
#include "util/buf.h"

struct loom__host;

/* The worker's handler for admin requests (answers at once). */
void loom__admin_handle(loom__worker *w, loom_req *r);

/* Writes the metrics of every worker in Prometheus text format to `out`. */
void loom__admin_metrics_text(const loom__metrics *m, loom__buf *out);

/* After a snapshot is published: the worker's plugin table in the shared
 * region (what /api/status and the dashboard show for that worker). */
void loom__admin_publish_plugins(struct loom__host *h);

/* A rescan ended: `ok` (a new snapshot serves), or `failures` files or a
 * snapshot refused; `ns` is how long it took. */
void loom__admin_reload_done(struct loom__host *h, int ok, int failures, uint64_t ns);

#endif
