/* Absolute http:// and https:// URLs, and proxy URLs. */
#include "client/url.h"

#include <arpa/inet.h>
#include <openssl/evp.h>

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define URL_MAX 8190

void loom__url_free(loom__url *u)
{
    free(u->host);
    free(u->target);
    free(u->hostport);
    free(u->origin);
    free(u->full);
    memset(u, 0, sizeof *u);
}

static int fail(char *err, size_t errlen, const char *why)
{
    snprintf(err, errlen, "%s", why);
    return -1;
}

static char *cat3(const char *x, const char *y, const char *z)
{
    size_t a = strlen(x), b = strlen(y), c = strlen(z);
    char *p = malloc(a + b + c + 1);
    if (!p) return NULL;
    memcpy(p, x, a);
    memcpy(p + a, y, b);
    memcpy(p + a + b, z, c + 1);
    return p;
}

/* Fills hostport/origin/full from host, port, target. */
static int finish(loom__url *u)
{
    int v6 = strchr(u->host, ':') != NULL;
    char port[8] = "";
    if (u->port != (u->tls ? 443u : 80u)) snprintf(port, sizeof port, ":%u", u->port);
    u->hostport = v6 ? cat3("[", u->host, "]") : cat3(u->host, "", "");
    if (!u->hostport) return -2;
    if (port[0]) {
        char *hp = cat3(u->hostport, port, "");
        free(u->hostport);
        u->hostport = hp;
        if (!hp) return -2;
    }
    u->origin = cat3(u->tls ? "https://" : "http://", u->hostport, "");
    if (!u->origin) return -2;
    u->full = cat3(u->origin, u->target, "");
    return u->full ? 0 : -2;
}

/* Copies a path+query, dropping the fragment and percent-encoding bytes that
 * may not appear raw in a request target. */
static char *clean_target(const char *p, size_t n)
{
    loom__buf b = {0};
    if (n == 0 || p[0] != '/') loom__buf_append(&b, "/", 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)p[i];
        if (ch == '#') break;
        if (ch <= 0x20 || ch >= 0x7f || ch == '"' || ch == '<' || ch == '>' || ch == '\\' ||
            ch == '^' || ch == '`' || ch == '{' || ch == '|' || ch == '}') {
            if (loom__buf_printf(&b, "%%%02X", ch)) goto oom;
        } else if (loom__buf_append(&b, &p[i], 1)) {
            goto oom;
        }
    }
    if (loom__buf_append(&b, "", 1)) goto oom;
    return b.data;
oom:
    loom__buf_free(&b);
    return NULL;
}

int loom__url_parse(const char *s, loom__url *u, char *err, size_t errlen)
{
    memset(u, 0, sizeof *u);
    size_t len = strlen(s);
    if (len == 0) return fail(err, errlen, "empty URL");
    if (len > URL_MAX) return fail(err, errlen, "URL longer than 8190 bytes");
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch < 0x20 || ch == 0x7f) return fail(err, errlen, "control character in URL");
    }
    const char *colon = strstr(s, "://");
    if (!colon) return fail(err, errlen, "not an absolute URL (no scheme://)");
    size_t slen = (size_t)(colon - s);
    int tls = slen == 5 && strncasecmp(s, "https", 5) == 0;
    if (!tls && (slen != 4 || strncasecmp(s, "http", 4) != 0))
        return fail(err, errlen, "unsupported scheme (http and https only)");
    const char *a = colon + 3;
    size_t alen = strcspn(a, "/?#");
    const char *rest = a + alen;
    const char *at = memchr(a, '@', alen);
    if (at) return fail(err, errlen, "user information in URL is not supported");
    const char *h = a;
    size_t hlen;
    const char *portp = NULL;
    size_t portlen = 0;
    if (alen > 0 && a[0] == '[') {
        const char *close = memchr(a, ']', alen);
        if (!close) return fail(err, errlen, "unclosed '[' in host");
        h = a + 1;
        hlen = (size_t)(close - h);
        const char *after = close + 1;
        if (after < a + alen) {
            if (*after != ':') return fail(err, errlen, "bad character after ']'");
            portp = after + 1;
            portlen = (size_t)(a + alen - portp);
        }
        if (hlen == 0) return fail(err, errlen, "empty host");
        for (size_t i = 0; i < hlen; i++)
            if (!isxdigit((unsigned char)h[i]) && h[i] != ':' && h[i] != '.')
                return fail(err, errlen, "bad IPv6 address");
    } else {
        const char *pc = memchr(a, ':', alen);
        hlen = pc ? (size_t)(pc - a) : alen;
        if (pc) {
            portp = pc + 1;
            portlen = (size_t)(a + alen - portp);
        }
        if (hlen == 0) return fail(err, errlen, "empty host");
        for (size_t i = 0; i < hlen; i++) {
            unsigned char ch = (unsigned char)h[i];
            if (!isalnum(ch) && ch != '-' && ch != '.' && ch != '_')
                return fail(err, errlen, "bad character in host");
        }
        if (hlen > 253) return fail(err, errlen, "host name longer than 253 bytes");
    }
    unsigned port = tls ? 443 : 80;
    if (portp) {
        if (portlen == 0 || portlen > 5) return fail(err, errlen, "bad port");
        port = 0;
        for (size_t i = 0; i < portlen; i++) {
            if (!isdigit((unsigned char)portp[i])) return fail(err, errlen, "bad port");
            port = port * 10 + (unsigned)(portp[i] - '0');
        }
        if (port == 0 || port > 65535) return fail(err, errlen, "port out of range");
    }
    u->port = port;
    u->tls = tls;
    u->host = strndup(h, hlen);
    u->target = clean_target(rest, strlen(rest));
    if (!u->host || !u->target) goto oom;
    for (char *p = u->host; *p; p++) *p = (char)tolower((unsigned char)*p);
    if (finish(u)) goto oom;
    return 0;
oom:
    loom__url_free(u);
    return -2;
}

/* Removes "." and ".." segments from an absolute path (RFC 3986 5.2.4). */
static void remove_dots(char *path)
{
    char *q = strchr(path, '?');
    size_t plen = q ? (size_t)(q - path) : strlen(path);
    char *out = malloc(plen + 2);
    if (!out) return;
    size_t o = 0;
    const char *in = path, *end = path + plen;
    while (in < end) {
        const char *seg = in + 1;
        const char *next = memchr(seg, '/', (size_t)(end - seg));
        if (!next) next = end;
        size_t sl = (size_t)(next - seg);
        if (sl == 1 && seg[0] == '.') {
            if (next == end) out[o++] = '/';
        } else if (sl == 2 && seg[0] == '.' && seg[1] == '.') {
            while (o > 0 && out[--o] != '/') {
            }
            if (next == end) out[o++] = '/';
        } else {
            out[o++] = '/';
            memcpy(out + o, seg, sl);
            o += sl;
        }
        in = next;
    }
    if (o == 0) out[o++] = '/';
    size_t qlen = q ? strlen(q) : 0;
    /* o <= plen + 1 only when the path was "" — never here (starts with '/') */
    if (o <= plen) {
        memmove(path + o, q ? q : path + plen, qlen + 1);
        memcpy(path, out, o);
    }
    free(out);
}

int loom__url_resolve(const loom__url *base, const char *ref, loom__url *out, char *err,
                      size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (strstr(ref, "://") && strcspn(ref, "/?#") > (size_t)(strstr(ref, "://") - ref))
        return loom__url_parse(ref, out, err, errlen);
    loom__buf b = {0};
    if (ref[0] == '/' && ref[1] == '/') {
        loom__buf_printf(&b, "%s:%s", base->tls ? "https" : "http", ref);
    } else if (ref[0] == '/') {
        loom__buf_printf(&b, "%s%s", base->origin, ref);
    } else if (ref[0] == '?') {
        size_t pl = strcspn(base->target, "?");
        loom__buf_printf(&b, "%s%.*s%s", base->origin, (int)pl, base->target, ref);
    } else if (ref[0] == '\0' || ref[0] == '#') {
        loom__buf_puts(&b, base->full);
    } else {
        size_t pl = strcspn(base->target, "?");
        const char *slash = base->target;
        for (size_t i = 0; i < pl; i++)
            if (base->target[i] == '/') slash = base->target + i;
        loom__buf_printf(&b, "%s%.*s%s", base->origin, (int)(slash - base->target + 1),
                         base->target, ref);
    }
    if (loom__buf_append(&b, "", 1)) {
        loom__buf_free(&b);
        return -2;
    }
    int rc = loom__url_parse(b.data, out, err, errlen);
    loom__buf_free(&b);
    if (rc == 0) {
        remove_dots(out->target);
        free(out->full);
        out->full = malloc(strlen(out->origin) + strlen(out->target) + 1);
        if (!out->full) {
            loom__url_free(out);
            return -2;
        }
        strcpy(out->full, out->origin);
        strcat(out->full, out->target);
    }
    return rc;
}

int loom__url_encode(loom__buf *b, const char *s)
{
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (isalnum(ch) || ch == '-' || ch == '_' || ch == '.' || ch == '~') {
            if (loom__buf_append(b, s, 1)) return -1;
        } else if (loom__buf_printf(b, "%%%02X", ch)) {
            return -1;
        }
    }
    return 0;
}

/* ---- proxies ---- */

void loom__proxy_free(loom__proxy *p)
{
    free(p->host);
    free(p->auth);
    free(p->url);
    memset(p, 0, sizeof *p);
}

int loom__proxy_copy(const loom__proxy *from, loom__proxy *to)
{
    memset(to, 0, sizeof *to);
    if (!from->host) return 0;
    to->port = from->port;
    to->host = strdup(from->host);
    to->url = strdup(from->url);
    to->auth = from->auth ? strdup(from->auth) : NULL;
    if (!to->host || !to->url || (from->auth && !to->auth)) {
        loom__proxy_free(to);
        return -2;
    }
    return 0;
}

static int unhex(int c)
{
    if (c >= '0' && c <= '9') return c - '0';
    c |= 0x20;
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Percent-decodes n bytes of s onto b. Returns 0, -1 (bad escape) or -2. */
static int pct_decode(loom__buf *b, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (ch == '%') {
            if (i + 2 >= n) return -1;
            int hi = unhex((unsigned char)s[i + 1]), lo = unhex((unsigned char)s[i + 2]);
            if (hi < 0 || lo < 0) return -1;
            ch = (char)(hi * 16 + lo);
            i += 2;
        }
        if (loom__buf_append(b, &ch, 1)) return -2;
    }
    return 0;
}

static char *basic(const char *userpass, size_t n)
{
    char *out = malloc(6 + 4 * ((n + 2) / 3) + 1);
    if (!out) return NULL;
    memcpy(out, "Basic ", 6);
    EVP_EncodeBlock((unsigned char *)out + 6, (const unsigned char *)userpass, (int)n);
    return out;
}

int loom__proxy_parse(const char *s, const char *auth, loom__proxy *p, char *err, size_t errlen)
{
    memset(p, 0, sizeof *p);
    if (strncasecmp(s, "https://", 8) == 0)
        return fail(err, errlen, "proxy: https:// proxies are not supported (use http://)");
    if (strncasecmp(s, "http://", 7) != 0)
        return fail(err, errlen, "proxy: needs http://host[:port]");
    const char *a = s + 7;
    size_t alen = strcspn(a, "/?#");
    if (a[alen] && strcmp(a + alen, "/") != 0)
        return fail(err, errlen, "proxy: a path, query or fragment is not allowed");
    const char *at = NULL;
    for (size_t i = 0; i < alen; i++)
        if (a[i] == '@') at = a + i;
    loom__buf creds = {0};
    if (at) {
        int rc = pct_decode(&creds, a, (size_t)(at - a));
        if (rc == -2 || loom__buf_append(&creds, "", 1)) {
            loom__buf_free(&creds);
            return -2;
        }
        if (rc || !strchr(creds.data, ':')) {
            loom__buf_free(&creds);
            return fail(err, errlen, "proxy: credentials must be user:password");
        }
        alen -= (size_t)(at + 1 - a);
        a = at + 1;
    }
    char *hp = strndup(a, alen);
    if (!hp) {
        loom__buf_free(&creds);
        return -2;
    }
    loom__buf u = {0};
    loom__url url;
    int rc =
        loom__buf_printf(&u, "http://%s/", hp) ? -2 : loom__url_parse(u.data, &url, err, errlen);
    free(hp);
    loom__buf_free(&u);
    if (rc) {
        loom__buf_free(&creds);
        if (rc == -1) {
            char why[128];
            snprintf(why, sizeof why, "proxy: %s", err);
            snprintf(err, errlen, "%s", why);
        }
        return rc;
    }
    p->host = url.host;
    url.host = NULL;
    p->port = url.port;
    p->url = url.origin;
    url.origin = NULL;
    loom__url_free(&url);
    const char *cred = auth ? auth : creds.data;
    if (auth && !strchr(auth, ':')) {
        loom__buf_free(&creds);
        loom__proxy_free(p);
        return fail(err, errlen, "proxy: credentials must be user:password");
    }
    if (cred) {
        p->auth = basic(cred, strlen(cred));
        if (!p->auth) {
            loom__buf_free(&creds);
            loom__proxy_free(p);
            return -2;
        }
    }
    loom__buf_free(&creds);
    if (!p->host || !p->url) {
        loom__proxy_free(p);
        return -2;
    }
    return 0;
}

int loom__no_proxy_match(const char *list, const char *host, unsigned port)
{
    size_t hl = strlen(host);
    for (const char *p = list; p && *p;) {
        while (*p == ' ' || *p == ',') p++;
        size_t n = strcspn(p, ", ");
        const char *e = p;
        p += n;
        if (n == 0) continue;
        if (n == 1 && e[0] == '*') return 1;
        /* an optional :port (not inside a bare IPv6 address) */
        size_t en = n, colons = 0;
        const char *colon = NULL;
        for (size_t i = 0; i < n; i++)
            if (e[i] == ':') colons++, colon = e + i;
        if (e[0] == '[') {
            const char *close = memchr(e, ']', n);
            if (!close) continue;
            en = (size_t)(close - e) + 1;
            colon = en < n && close[1] == ':' ? close + 1 : NULL;
        } else if (colons == 1) {
            en = (size_t)(colon - e);
        } else {
            colon = NULL;
        }
        if (colon && (unsigned)strtoul(colon + 1, NULL, 10) != port) continue;
        const char *name = e;
        if (name[0] == '[' && en >= 2) {
            name++;
            en -= 2;
        }
        if (en && name[0] == '.') {
            name++;
            en--;
        }
        if (en == 0 || en > hl) continue;
        if (strncasecmp(host + hl - en, name, en) != 0) continue;
        if (en == hl || host[hl - en - 1] == '.') {
            /* an address matches only whole */
            unsigned char b[16];
            if (en != hl && (inet_pton(AF_INET, host, b) == 1 || inet_pton(AF_INET6, host, b) == 1))
                continue;
            return 1;
        }
    }
    return 0;
}
