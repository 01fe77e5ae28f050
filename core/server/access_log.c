#include "server/access_log.h"
#include "util/log.h"
#include "util/logbuf.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define BUFFER (64u * 1024u)

struct loom__access_log {
    int format; /* LOOM__ALOG_* */
    int fd;
    int own_fd;
    int json;
    char *path;       /* for reopening; NULL for stdout */
    loom__logbuf out; /* whole lines on their way to fd */
    loom__buf line;   /* the line being formatted */
    time_t ts_sec;
    char ts[40]; /* Combined: 10/Oct/2000:13:55:36 -0700; JSON: 2000-10-10T13:55:36 */
    char tz[8];  /* JSON: +02:00 */
};

static int open_file(const char *path, char *err, size_t errlen)
{
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) snprintf(err, errlen, "access log '%s': %s", path, strerror(errno));
    return fd;
}

loom__access_log *loom__access_log_open(const char *path, int format, char *err, size_t errlen)
{
    loom__access_log *l = calloc(1, sizeof *l);
    if (!l) return NULL;
    l->format = format;
    l->json = format == LOOM__ALOG_JSON;
    if (strcmp(path, "-") == 0) {
        l->fd = STDOUT_FILENO;
    } else {
        l->fd = open_file(path, err, errlen);
        l->path = strdup(path);
        if (l->fd < 0 || !l->path) {
            if (l->fd >= 0) close(l->fd);
            free(l->path);
            free(l);
            return NULL;
        }
        l->own_fd = 1;
    }
    if (loom__logbuf_init(&l->out, l->fd, BUFFER, "access log")) {
        snprintf(err, errlen, "access log: out of memory");
        if (l->own_fd) close(l->fd);
        free(l->path);
        free(l);
        return NULL;
    }
    l->ts_sec = -1;
    return l;
}

const char *loom__access_log_addr(const loom__conn *c, char *buf, size_t len)
{
    if (c->peer.sa.sa_family == AF_INET)
        inet_ntop(AF_INET, &c->peer.in4.sin_addr, buf, (socklen_t)len);
    else if (c->peer.sa.sa_family == AF_INET6)
        inet_ntop(AF_INET6, &c->peer.in6.sin6_addr, buf, (socklen_t)len);
    else
        snprintf(buf, len, "-");
    return buf;
}

static void timestamp(loom__access_log *l, struct timespec *now)
{
    clock_gettime(CLOCK_REALTIME, now);
    if (now->tv_sec == l->ts_sec) return;
    struct tm tm;
    localtime_r(&now->tv_sec, &tm);
    if (l->json) {
        strftime(l->ts, sizeof l->ts, "%Y-%m-%dT%H:%M:%S", &tm);
        char z[8];
        strftime(z, sizeof z, "%z", &tm); /* +0200 -> +02:00 */
        snprintf(l->tz, sizeof l->tz, "%.3s:%.2s", z, z + 3);
    } else {
        strftime(l->ts, sizeof l->ts, "%d/%b/%Y:%H:%M:%S %z", &tm);
    }
    l->ts_sec = now->tv_sec;
}

/* Quotes a value for a Combined line: '"', '\' and control bytes are
 * escaped, so a client cannot forge log lines. */
static void put_quoted(loom__buf *b, const char *s, size_t n)
{
    loom__buf_append(b, "\"", 1);
    if (!s) {
        loom__buf_append(b, "-", 1);
    } else {
        for (size_t i = 0; i < n; i++) {
            unsigned char ch = (unsigned char)s[i];
            if (ch < 0x20 || ch == '"' || ch == '\\' || ch >= 0x7f)
                loom__buf_printf(b, "\\x%02x", ch);
            else
                loom__buf_append(b, &s[i], 1);
        }
    }
    loom__buf_append(b, "\"", 1);
}

/* The length of the valid UTF-8 sequence at s (1-4), or 0. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    size_t k = c >= 0xf0 && c <= 0xf4 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 && c < 0xe0 ? 2 : 0;
    if (k == 0 || k > n) return 0;
    for (size_t i = 1; i < k; i++)
        if ((s[i] & 0xc0) != 0x80) return 0;
    if (k == 3 && ((c == 0xe0 && s[1] < 0xa0) || (c == 0xed && s[1] > 0x9f))) return 0;
    if (k == 4 && ((c == 0xf0 && s[1] < 0x90) || (c == 0xf4 && s[1] > 0x8f))) return 0;
    return k;
}

/* A JSON string (or null): valid UTF-8 passes, other bytes become \u00XX. */
static void put_json(loom__buf *b, const char *s, size_t n)
{
    if (!s) {
        loom__buf_append(b, "null", 4);
        return;
    }
    loom__buf_append(b, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '"' || ch == '\\') {
            char e[2] = {'\\', (char)ch};
            loom__buf_append(b, e, 2);
        } else if (ch < 0x20 || ch == 0x7f) {
            loom__buf_printf(b, "\\u%04x", ch);
        } else if (ch < 0x80) {
            loom__buf_append(b, &s[i], 1);
        } else {
            size_t k = utf8_len((const unsigned char *)s + i, n - i);
            if (k) {
                loom__buf_append(b, s + i, k);
                i += k - 1;
            } else {
                loom__buf_printf(b, "\\u%04x", ch);
            }
        }
    }
    loom__buf_append(b, "\"", 1);
}

static void put_line(loom__access_log *l)
{
    loom__buf_append(&l->line, "\n", 1);
    loom__logbuf_put(&l->out, l->line.data, l->line.len);
    l->line.len = 0;
    /* A huge line (long headers escaped) leaves a huge buffer: let it go. */
    if (l->line.cap > (256u << 10)) loom__buf_free(&l->line);
}

/* One JSON line: a request `r`, or (r NULL) one refused before it was
 * complete, with what was parsed of its request line (NULL: nothing). */
static void json_line(loom__access_log *l, loom__conn *c, const loom_req *r, int status,
                      const char *line, size_t len)
{
    char addr[64];
    struct timespec now;
    timestamp(l, &now);
    loom__buf *b = &l->line;
    loom__buf_printf(b, "{\"time\":\"%s.%03ld%s\",\"remote\":\"%s\"", l->ts, now.tv_nsec / 1000000L,
                     l->tz, loom__access_log_addr(c, addr, sizeof addr));
    if (!r) {
        loom__buf_printf(b, ",\"status\":%d,\"error\":true,\"request_line\":", status);
        put_json(b, line, len);
        loom__buf_printf(b, ",\"worker\":%d}", c->w->id);
        put_line(l);
        return;
    }
    loom__buf_puts(b, ",\"method\":");
    put_json(b, r->method, r->method_len);
    loom__buf_puts(b, ",\"target\":");
    put_json(b, r->target, r->target_len);
    uint64_t took = uv_now(c->w->loop) - r->start_ms;
    loom__buf_printf(b,
                     ",\"protocol\":\"HTTP/%d.%d\",\"status\":%d,\"bytes_sent\":%lld,"
                     "\"request_ms\":%llu,\"handler_ms\":%.3f,\"route\":",
                     r->http_major, r->http_minor, status, (long long)r->bytes_sent,
                     (unsigned long long)took, (double)r->handler_ns / 1e6);
    put_json(b, r->route, r->route ? strlen(r->route) : 0);
    loom__buf_puts(b, ",\"plugin\":");
    put_json(b, r->plugin, r->plugin ? strlen(r->plugin) : 0);
    size_t rl = 0, ul = 0;
    const char *ref = loom__req_header(r, "referer", 7, &rl);
    const char *ua = loom__req_header(r, "user-agent", 10, &ul);
    loom__buf_puts(b, ",\"referer\":");
    put_json(b, ref, rl);
    loom__buf_puts(b, ",\"user_agent\":");
    put_json(b, ua, ul);
    const loom__conn_tls *t = loom__conn_tls_of(c);
    int tls = t && t->t.ssl;
    loom__buf_puts(b, ",\"tls_version\":");
    put_json(b, tls ? SSL_get_version(t->t.ssl) : NULL,
             tls ? strlen(SSL_get_version(t->t.ssl)) : 0);
    loom__buf_puts(b, ",\"tls_cipher\":");
    put_json(b, tls ? SSL_get_cipher_name(t->t.ssl) : NULL,
             tls ? strlen(SSL_get_cipher_name(t->t.ssl)) : 0);
    loom__buf_printf(b, ",\"worker\":%d}", c->w->id);
    put_line(l);
}

void loom__access_log_write(loom__access_log *l, loom__conn *c, const loom_req *r)
{
    if (l->json) {
        json_line(l, c, r, r->resp.status, NULL, 0);
        return;
    }
    char addr[64];
    struct timespec now;
    timestamp(l, &now);
    loom__buf *b = &l->line;
    loom__buf_printf(b, "%s - - [%s] ", loom__access_log_addr(c, addr, sizeof addr), l->ts);
    char line[8300];
    int n = snprintf(line, sizeof line, "%s %s HTTP/%d.%d", r->method, r->target, r->http_major,
                     r->http_minor);
    if (n < 0) n = 0;
    if (n >= (int)sizeof line) n = (int)sizeof line - 1;
    put_quoted(b, line, (size_t)n);
    if (r->bytes_sent > 0)
        loom__buf_printf(b, " %d %lld ", r->resp.status, (long long)r->bytes_sent);
    else
        loom__buf_printf(b, " %d - ", r->resp.status);
    size_t rl = 0, ul = 0;
    const char *ref = loom__req_header(r, "referer", 7, &rl);
    const char *ua = loom__req_header(r, "user-agent", 10, &ul);
    put_quoted(b, ref, rl);
    loom__buf_append(b, " ", 1);
    put_quoted(b, ua, ul);
    if (l->format == LOOM__ALOG_COMBINED_TLS) {
        const loom__conn_tls *t = loom__conn_tls_of(c);
        if (t && t->t.ssl)
            loom__buf_printf(b, " \"%s\" \"%s\"", SSL_get_version(t->t.ssl),
                             SSL_get_cipher_name(t->t.ssl));
        else
            loom__buf_puts(b, " \"-\" \"-\"");
    }
    put_line(l);
}

void loom__access_log_error(loom__access_log *l, loom__conn *c, int status, const char *line,
                            size_t len)
{
    if (l->json) {
        json_line(l, c, NULL, status, line, len);
        return;
    }
    char addr[64];
    struct timespec now;
    timestamp(l, &now);
    loom__buf *b = &l->line;
    loom__buf_printf(b, "%s - - [%s] ", loom__access_log_addr(c, addr, sizeof addr), l->ts);
    put_quoted(b, line, len);
    loom__buf_printf(b, " %d - \"-\" \"-\"", status);
    put_line(l);
}

void loom__access_log_flush(loom__access_log *l)
{
    loom__logbuf_flush(&l->out);
}

int loom__access_log_reopen(loom__access_log *l, char *err, size_t errlen)
{
    if (!l->own_fd) {
        loom__logbuf_flush(&l->out);
        return 0;
    }
    int fd = open_file(l->path, err, errlen);
    if (fd < 0) return -1;
    loom__logbuf_set_fd(&l->out, fd); /* flushes to the old file first */
    close(l->fd);
    l->fd = fd;
    return 0;
}

void loom__access_log_close(loom__access_log *l)
{
    if (!l) return;
    loom__logbuf_free(&l->out);
    if (l->own_fd) close(l->fd);
    loom__buf_free(&l->line);
    free(l->path);
    free(l);
}
