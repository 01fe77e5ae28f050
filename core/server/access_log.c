#include "server/access_log.h"
#include "util/log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct loom__access_log {
    int format; /* LOOM__ALOG_* */
    int fd;
    int own_fd;
    int failing; /* the last write failed; reported once */
    loom__buf buf;
    time_t ts_sec;
    char ts[32];
};

loom__access_log *loom__access_log_open(const char *path, int format, char *err, size_t errlen)
{
    loom__access_log *l = calloc(1, sizeof *l);
    if (!l) return NULL;
    l->format = format;
    if (strcmp(path, "-") == 0) {
        l->fd = STDOUT_FILENO;
    } else {
        l->fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
        if (l->fd < 0) {
            snprintf(err, errlen, "access log '%s': %s", path, strerror(errno));
            free(l);
            return NULL;
        }
        l->own_fd = 1;
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

static const char *timestamp(loom__access_log *l)
{
    time_t now = time(NULL);
    if (now != l->ts_sec) {
        struct tm tm;
        localtime_r(&now, &tm);
        strftime(l->ts, sizeof l->ts, "%d/%b/%Y:%H:%M:%S %z", &tm);
        l->ts_sec = now;
    }
    return l->ts;
}

/* Quotes a header value for the log: '"' and control bytes are escaped, so
 * a client cannot forge log lines. */
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

void loom__access_log_write(loom__access_log *l, loom__conn *c, const loom_req *r)
{
    char addr[64];
    loom__buf *b = &l->buf;
    loom__buf_printf(b, "%s - - [%s] ", loom__access_log_addr(c, addr, sizeof addr), timestamp(l));
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
    loom__buf_append(b, "\n", 1);
    if (b->len > 32768) loom__access_log_flush(l);
}

void loom__access_log_error(loom__access_log *l, loom__conn *c, int status, const char *line,
                            size_t len)
{
    char addr[64];
    loom__buf *b = &l->buf;
    loom__buf_printf(b, "%s - - [%s] ", loom__access_log_addr(c, addr, sizeof addr), timestamp(l));
    put_quoted(b, line, len);
    loom__buf_printf(b, " %d - \"-\" \"-\"\n", status);
}

void loom__access_log_flush(loom__access_log *l)
{
    size_t off = 0;
    if (l->buf.len == 0) return; /* nothing written proves nothing: stay "failing" */
    while (off < l->buf.len) {
        ssize_t n = write(l->fd, l->buf.data + off, l->buf.len - off);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            if (!l->failing)
                loom__err("access log: write failed: %s; dropping lines until it works again",
                          n < 0 ? strerror(errno) : "short write");
            l->failing = 1;
            l->buf.len = 0;
            return;
        }
        off += (size_t)n;
    }
    if (l->failing) loom__info("access log: writing again");
    l->failing = 0;
    l->buf.len = 0;
}

void loom__access_log_close(loom__access_log *l)
{
    if (!l) return;
    loom__access_log_flush(l);
    if (l->own_fd) close(l->fd);
    loom__buf_free(&l->buf);
    free(l);
}
