/* The flood defences nghttp2 leaves to its user.
 *
 * nghttp2 (Debian's 1.52 with its security patches) already bounds: the
 * CONTINUATION frames of one header block (nghttp2_option_set_max_continuations,
 * CVE-2024-27316), the SETTINGS and PING acknowledgements it holds for a
 * client that does not read (max_outbound_ack: the session fails as
 * flooded), SETTINGS entries per frame, and window updates past 2^31-1
 * (FLOW_CONTROL_ERROR). session.c configures those; here is the rest:
 *
 * - Rapid Reset (CVE-2023-44487). A reset stream leaves the client's
 *   concurrency budget at once, but its handler may still run: such
 *   orphans are counted, and a client that opens a stream while it holds as
 *   many orphans as SETTINGS_MAX_CONCURRENT_STREAMS gets GOAWAY
 *   ENHANCE_YOUR_CALM, so handler work never piles up beyond one budget per
 *   connection. Resets are also rate-limited (a token bucket of twice the
 *   stream limit, refilled by the stream limit per second), so that a
 *   client cannot make handlers start and stop at the rate it can send
 *   frames.
 * - Header blocks bounded in bytes (LOOM__H2_HEADER_BLOCK) as well as in
 *   frames: a bigger block is a GOAWAY ENHANCE_YOUR_CALM.
 * - DATA frames that carry nothing and do not end the stream (empty or
 *   padding only): a bucket of 100, refilled by 10 a second.
 *
 * Each of these ends the connection after the streams already taken
 * (nghttp2_session_terminate_session: GOAWAY with the last processed
 * stream id); new streams in the same read are ignored. */
#include "http2/h2.h"
#include "server/access_log.h"
#include "util/log.h"

#define EMPTY_BURST 100.0
#define EMPTY_PER_S 10.0

int loom__h2_bucket_take(loom__h2_bucket *b, double burst, double per_s, uint64_t now)
{
    if (b->at == 0) {
        b->tokens = burst;
    } else {
        b->tokens += (double)(now - b->at) * per_s / 1000.0;
        if (b->tokens > burst) b->tokens = burst;
    }
    b->at = now ? now : 1;
    if (b->tokens < 1.0) return -1;
    b->tokens -= 1.0;
    return 0;
}

void loom__h2_calm(loom__h2 *h, const char *why)
{
    char addr[64];
    if (h->calm || loom__h2_gone(h)) return;
    h->calm = 1;
    loom__info("HTTP/2: client %s: %s: GOAWAY ENHANCE_YOUR_CALM",
               loom__access_log_addr(h->c, addr, sizeof addr), why);
    if (nghttp2_session_terminate_session(h->ng, NGHTTP2_ENHANCE_YOUR_CALM)) {
        loom__h2_fail(h, NGHTTP2_ENHANCE_YOUR_CALM, why);
        return;
    }
    loom__h2_schedule(h);
}

int loom__h2_on_begin_frame(nghttp2_session *ng, const nghttp2_frame_hd *hd, void *ud)
{
    loom__h2 *h = ud;
    (void)ng;
    if (hd->type == NGHTTP2_HEADERS) {
        h->block = (uint32_t)hd->length;
    } else if (hd->type == NGHTTP2_CONTINUATION) {
        h->block += (uint32_t)hd->length;
        if (h->block > LOOM__H2_HEADER_BLOCK) loom__h2_calm(h, "header block too large");
    }
    return 0;
}

int loom__h2_admit(loom__h2 *h)
{
    if (h->orphans < h->max_streams) return 0;
    loom__h2_calm(h, "streams reset while their handlers still run, beyond the stream limit");
    return -1;
}

void loom__h2_count_reset(loom__h2 *h)
{
    double burst = 2.0 * h->max_streams, per_s = h->max_streams;
    if (loom__h2_bucket_take(&h->resets, burst, per_s, loom__h2_now(h)))
        loom__h2_calm(h, "streams reset too fast");
}

void loom__h2_count_empty(loom__h2 *h)
{
    if (loom__h2_bucket_take(&h->empties, EMPTY_BURST, EMPTY_PER_S, loom__h2_now(h)))
        loom__h2_calm(h, "too many empty DATA frames");
}
