/* The cookie jar (RFC 6265, with RFC 6265bis's Secure rules and prefixes),
 * and the Netscape cookie file curl reads and writes. */
#include "client/cookies.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <libpsl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAX_COOKIE_BYTES 4096
#define MAX_PER_DOMAIN 50
#define MAX_COOKIES 3000

typedef struct {
    char *name, *value, *domain, *path;
    int64_t expires; /* Unix time; 0 = a session cookie */
    uint64_t created, used;
    unsigned host_only : 1, secure : 1, http_only : 1;
} cookie;

struct loom_cookie_jar {
    cookie *v;
    size_t n, cap;
    int flags;
    uint64_t seq;
};

static const psl_ctx_t *psl;
static pthread_once_t psl_once = PTHREAD_ONCE_INIT;

/* The newest of libpsl's built-in list and Debian's publicsuffix file. */
static void psl_load(void)
{
    psl = psl_latest(NULL);
    if (!psl) psl = psl_builtin();
}

static int is_public_suffix(const char *domain)
{
    pthread_once(&psl_once, psl_load);
    return psl ? psl_is_public_suffix2(psl, domain, PSL_TYPE_ANY) : 0;
}

static int is_ip(const char *host)
{
    unsigned char b[16];
    return inet_pton(AF_INET, host, b) == 1 || inet_pton(AF_INET6, host, b) == 1;
}

static int64_t wall_now(void)
{
    return (int64_t)time(NULL);
}

static void cookie_free(cookie *c)
{
    free(c->name);
    free(c->value);
    free(c->domain);
    free(c->path);
}

static void remove_at(loom_cookie_jar *jar, size_t i)
{
    cookie_free(&jar->v[i]);
    jar->v[i] = jar->v[--jar->n];
}

static void drop_expired(loom_cookie_jar *jar, int64_t now)
{
    for (size_t i = 0; i < jar->n;)
        if (jar->v[i].expires && jar->v[i].expires <= now)
            remove_at(jar, i);
        else
            i++;
}

loom_cookie_jar *loom_cookie_jar_new(int flags)
{
    loom_cookie_jar *jar = calloc(1, sizeof *jar);
    if (jar) jar->flags = flags;
    return jar;
}

void loom_cookie_jar_free(loom_cookie_jar *jar)
{
    if (!jar) return;
    for (size_t i = 0; i < jar->n; i++) cookie_free(&jar->v[i]);
    free(jar->v);
    free(jar);
}

size_t loom_cookie_jar_count(loom_cookie_jar *jar)
{
    if (!jar) return 0;
    drop_expired(jar, wall_now());
    return jar->n;
}

/* ---- dates (RFC 6265 §5.1.1) ---- */

static int delim(unsigned char c)
{
    return c == 0x09 || (c >= 0x20 && c <= 0x2f) || (c >= 0x3b && c <= 0x40) ||
           (c >= 0x5b && c <= 0x60) || (c >= 0x7b && c <= 0x7e);
}

int loom__cookie_date(const char *s, size_t n, int64_t *t)
{
    static const char months[] = "janfebmaraprmayjunjulaugsepoctnovdec";
    int hh = -1, mi = -1, ss = -1, day = -1, mon = -1, year = -1;
    size_t i = 0;
    while (i < n) {
        while (i < n && delim((unsigned char)s[i])) i++;
        size_t b = i;
        while (i < n && !delim((unsigned char)s[i])) i++;
        size_t len = i - b;
        if (!len) continue;
        char tmp[32];
        if (len >= sizeof tmp) continue;
        memcpy(tmp, s + b, len);
        tmp[len] = 0;
        size_t digits = 0;
        while (digits < len && isdigit((unsigned char)tmp[digits])) digits++;
        int a, bb, c;
        if (hh < 0 && sscanf(tmp, "%2d:%2d:%2d", &a, &bb, &c) == 3) {
            hh = a, mi = bb, ss = c;
        } else if (day < 0 && digits >= 1 && digits <= 2) {
            day = atoi(tmp);
        } else if (mon < 0 && len >= 3 && !digits) {
            for (int k = 0; k < 12 && mon < 0; k++)
                if (strncasecmp(tmp, months + 3 * k, 3) == 0) mon = k;
        } else if (year < 0 && digits >= 2 && digits <= 4) {
            year = atoi(tmp);
        }
    }
    if (year >= 70 && year <= 99) year += 1900;
    if (year >= 0 && year <= 69) year += 2000;
    if (day < 1 || day > 31 || mon < 0 || year < 1601 || hh < 0 || hh > 23 || mi < 0 || mi > 59 ||
        ss < 0 || ss > 59)
        return -1;
    struct tm tm = {0};
    tm.tm_year = year - 1900;
    tm.tm_mon = mon;
    tm.tm_mday = day;
    tm.tm_hour = hh;
    tm.tm_min = mi;
    tm.tm_sec = ss;
    *t = (int64_t)timegm(&tm);
    return 0;
}

/* ---- matching ---- */

static int domain_match(const char *host, const char *domain)
{
    size_t hl = strlen(host), dl = strlen(domain);
    if (hl == dl) return strcmp(host, domain) == 0;
    return hl > dl && host[hl - dl - 1] == '.' && strcmp(host + hl - dl, domain) == 0 &&
           !is_ip(host);
}

static int path_match(const char *rpath, size_t rlen, const char *cpath)
{
    size_t cl = strlen(cpath);
    if (cl > rlen || strncmp(rpath, cpath, cl) != 0) return 0;
    return cl == rlen || cpath[cl - 1] == '/' || rpath[cl] == '/';
}

/* The default path (§5.1.4): the request path up to its last '/'. */
static char *default_path(const loom__url *u)
{
    size_t pl = strcspn(u->target, "?");
    if (pl == 0 || u->target[0] != '/') return strdup("/");
    size_t last = 0;
    for (size_t i = 0; i < pl; i++)
        if (u->target[i] == '/') last = i;
    return last == 0 ? strdup("/") : strndup(u->target, last);
}

/* ---- storing ---- */

static char *trimmed(const char *s, size_t n)
{
    while (n && (*s == ' ' || *s == '\t')) s++, n--;
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t')) n--;
    return strndup(s, n);
}

static int attr_is(const char *s, size_t n, const char *name)
{
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t')) n--;
    while (n && (*s == ' ' || *s == '\t')) s++, n--;
    return strlen(name) == n && strncasecmp(s, name, n) == 0;
}

/* Keeps the jar within its limits: the least recently used go first. */
static void evict(loom_cookie_jar *jar, const char *domain)
{
    size_t count = 0, oldest = SIZE_MAX;
    for (size_t i = 0; i < jar->n; i++) {
        if (strcmp(jar->v[i].domain, domain) != 0) continue;
        count++;
        if (oldest == SIZE_MAX || jar->v[i].used < jar->v[oldest].used) oldest = i;
    }
    if (count >= MAX_PER_DOMAIN && oldest != SIZE_MAX) remove_at(jar, oldest);
    if (jar->n < MAX_COOKIES) return;
    oldest = 0;
    for (size_t i = 1; i < jar->n; i++)
        if (jar->v[i].used < jar->v[oldest].used) oldest = i;
    remove_at(jar, oldest);
}

/* Puts `c` in the jar (taking its strings), replacing one of the same
 * name, domain and path. `expired`: only remove that one. */
static int put(loom_cookie_jar *jar, cookie *c, int expired)
{
    for (size_t i = 0; i < jar->n; i++) {
        cookie *o = &jar->v[i];
        if (strcmp(o->name, c->name) || strcmp(o->domain, c->domain) || strcmp(o->path, c->path))
            continue;
        c->created = o->created;
        remove_at(jar, i);
        break;
    }
    if (expired) {
        cookie_free(c);
        return 1;
    }
    evict(jar, c->domain);
    if (jar->n == jar->cap) {
        size_t cap = jar->cap ? jar->cap * 2 : 16;
        void *v = realloc(jar->v, cap * sizeof *jar->v);
        if (!v) {
            cookie_free(c);
            return -1;
        }
        jar->v = v;
        jar->cap = cap;
    }
    if (!c->created) c->created = ++jar->seq;
    c->used = ++jar->seq;
    jar->v[jar->n++] = *c;
    return 1;
}

int loom__jar_store(loom_cookie_jar *jar, const loom__url *u, const char *sc, int64_t now)
{
    cookie c;
    memset(&c, 0, sizeof c);
    size_t nv = strcspn(sc, ";");
    const char *eq = memchr(sc, '=', nv);
    if (!eq) return 0; /* no name=value: ignored (§5.2 step 2) */
    c.name = trimmed(sc, (size_t)(eq - sc));
    c.value = trimmed(eq + 1, nv - (size_t)(eq + 1 - sc));
    int rc = 0, has_max_age = 0, secure_attr = 0;
    int64_t max_age = 0, expires = 0;
    int has_expires = 0;
    char *domain = NULL, *path = NULL;
    if (!c.name || !c.value) goto oom;
    if (!c.name[0] || strlen(c.name) + strlen(c.value) > MAX_COOKIE_BYTES) goto refuse;
    for (const char *p = sc + nv; *p == ';';) {
        p++;
        size_t al = strcspn(p, ";");
        const char *aeq = memchr(p, '=', al);
        size_t kl = aeq ? (size_t)(aeq - p) : al;
        const char *v = aeq ? aeq + 1 : p + al;
        size_t vl = aeq ? al - kl - 1 : 0;
        if (attr_is(p, kl, "expires")) {
            has_expires = loom__cookie_date(v, vl, &expires) == 0;
        } else if (attr_is(p, kl, "max-age")) {
            char *t = trimmed(v, vl);
            if (!t) goto oom;
            char *end;
            long long ma = strtoll(t, &end, 10);
            if (t[0] && !*end && (isdigit((unsigned char)t[0]) || t[0] == '-')) {
                has_max_age = 1;
                max_age = ma;
            }
            free(t);
        } else if (attr_is(p, kl, "domain")) {
            free(domain);
            domain = trimmed(v, vl);
            if (!domain) goto oom;
            char *d = domain[0] == '.' ? domain + 1 : domain;
            memmove(domain, d, strlen(d) + 1);
            for (char *q = domain; *q; q++) *q = (char)tolower((unsigned char)*q);
            if (!domain[0]) {
                free(domain);
                domain = NULL;
            }
        } else if (attr_is(p, kl, "path")) {
            free(path);
            path = trimmed(v, vl);
            if (!path) goto oom;
            if (path[0] != '/') {
                free(path);
                path = NULL;
            }
        } else if (attr_is(p, kl, "secure")) {
            secure_attr = 1;
        } else if (attr_is(p, kl, "httponly")) {
            c.http_only = 1;
        }
        p += al;
    }
    /* Secure cookies are set over https only (RFC 6265bis §5.7 step 8). */
    if (secure_attr && !u->tls) goto refuse;
    c.secure = (unsigned)secure_attr;
    if (strncmp(c.name, "__Secure-", 9) == 0 && !secure_attr) goto refuse;
    if (strncmp(c.name, "__Host-", 7) == 0 &&
        (!secure_attr || domain || !path || strcmp(path, "/") != 0))
        goto refuse;
    if (is_ip(u->host)) {
        /* aiohttp refuses cookies from IP hosts unless unsafe; even then,
         * a Domain can only be the address itself, never its neighbours. */
        if (!(jar->flags & LOOM_COOKIE_JAR_UNSAFE)) goto refuse;
        if (domain && strcmp(domain, u->host) != 0) goto refuse;
        c.host_only = 1;
        c.domain = strdup(u->host);
    } else if (domain) {
        if (is_public_suffix(domain)) {
            if (strcmp(domain, u->host) != 0) goto refuse;
            c.host_only = 1; /* §5.3 step 5 */
            c.domain = strdup(u->host);
        } else {
            if (!domain_match(u->host, domain)) goto refuse;
            c.domain = domain;
            domain = NULL;
        }
    } else {
        c.host_only = 1;
        c.domain = strdup(u->host);
    }
    c.path = path ? path : default_path(u);
    path = NULL;
    if (!c.domain || !c.path) goto oom;
    /* A plain-http response cannot shadow a Secure cookie (6265bis §5.7 step 14). */
    if (!u->tls) {
        for (size_t i = 0; i < jar->n; i++) {
            cookie *o = &jar->v[i];
            if (o->secure && strcmp(o->name, c.name) == 0 &&
                (domain_match(c.domain, o->domain) || domain_match(o->domain, c.domain)) &&
                path_match(c.path, strlen(c.path), o->path))
                goto refuse;
        }
    }
    int expired = 0;
    if (has_max_age) {
        if (max_age <= 0)
            expired = 1;
        else
            c.expires = now + (max_age > INT32_MAX ? INT32_MAX : max_age);
    } else if (has_expires) {
        if (expires <= now)
            expired = 1;
        else
            c.expires = expires;
    }
    free(domain);
    return put(jar, &c, expired);
refuse:
    rc = 0;
    goto out;
oom:
    rc = -1;
out:
    free(domain);
    free(path);
    cookie_free(&c);
    return rc;
}

int loom_cookie_jar_set(loom_cookie_jar *jar, const char *url, const char *set_cookie)
{
    if (!jar || !url || !set_cookie) return -1;
    loom__url u;
    char err[128];
    if (loom__url_parse(url, &u, err, sizeof err)) return -1;
    int rc = loom__jar_store(jar, &u, set_cookie, wall_now());
    loom__url_free(&u);
    return rc;
}

/* ---- sending ---- */

typedef struct {
    cookie *c;
    size_t plen;
} pick;

static int by_path_then_age(const void *a, const void *b)
{
    const pick *x = a, *y = b;
    if (x->plen != y->plen) return x->plen > y->plen ? -1 : 1;
    return x->c->created < y->c->created ? -1 : x->c->created > y->c->created;
}

int loom__jar_header(loom_cookie_jar *jar, const loom__url *u, loom__buf *out, int64_t now)
{
    if (!jar || !jar->n) return 0;
    drop_expired(jar, now);
    size_t rlen = strcspn(u->target, "?");
    pick *picks = malloc((jar->n ? jar->n : 1) * sizeof *picks);
    if (!picks) return -1;
    size_t np = 0;
    for (size_t i = 0; i < jar->n; i++) {
        cookie *c = &jar->v[i];
        if (c->host_only ? strcmp(u->host, c->domain) != 0 : !domain_match(u->host, c->domain))
            continue;
        if (!path_match(u->target, rlen, c->path) || (c->secure && !u->tls)) continue;
        picks[np].c = c;
        picks[np].plen = strlen(c->path);
        np++;
    }
    qsort(picks, np, sizeof *picks, by_path_then_age);
    int e = 0;
    for (size_t i = 0; i < np; i++) {
        if (out->len) e |= loom__buf_puts(out, "; ");
        e |= loom__buf_puts(out, picks[i].c->name) | loom__buf_puts(out, "=") |
             loom__buf_puts(out, picks[i].c->value);
        picks[i].c->used = ++jar->seq;
    }
    free(picks);
    return e ? -1 : (int)np;
}

char *loom_cookie_jar_header(loom_cookie_jar *jar, const char *url)
{
    if (!jar || !url) return NULL;
    loom__url u;
    char err[128];
    if (loom__url_parse(url, &u, err, sizeof err)) return NULL;
    loom__buf b = {0};
    int n = loom__jar_header(jar, &u, &b, wall_now());
    loom__url_free(&u);
    if (n <= 0 || loom__buf_append(&b, "", 1)) {
        loom__buf_free(&b);
        return NULL;
    }
    return b.data;
}

/* ---- the Netscape cookie file ---- */

static int field_ok(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f) return 0;
    return 1;
}

long loom_cookie_jar_load(loom_cookie_jar *jar, const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        if (errno == ENOENT) return 0;
        snprintf(err, errlen, "cookie file %s: %s", path, strerror(errno));
        return -1;
    }
    char line[MAX_COOKIE_BYTES + 1024];
    long count = 0;
    int64_t now = wall_now();
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\r\n")] = 0;
        char *p = line;
        int http_only = 0;
        if (strncmp(p, "#HttpOnly_", 10) == 0) {
            http_only = 1;
            p += 10;
        } else if (p[0] == '#' || !p[0]) {
            continue;
        }
        char *f7[7];
        int k = 0;
        for (char *q = p; k < 7; k++) {
            f7[k] = q;
            char *tab = k < 6 ? strchr(q, '\t') : NULL;
            if (k < 6 && !tab) break;
            if (tab) *tab = 0, q = tab + 1;
        }
        if (k < 7 || !f7[0][0] || !f7[5][0] || f7[2][0] != '/') continue;
        for (int i = 0; i < 7; i++)
            if (!field_ok(f7[i])) goto next;
        {
            char *end;
            long long exp = strtoll(f7[4], &end, 10);
            if (*end || exp < 0 || (exp && exp <= now)) continue;
            cookie c;
            memset(&c, 0, sizeof c);
            const char *dom = f7[0][0] == '.' ? f7[0] + 1 : f7[0];
            c.domain = strdup(dom);
            for (char *q = c.domain; q && *q; q++) *q = (char)tolower((unsigned char)*q);
            c.host_only = strcasecmp(f7[1], "TRUE") != 0;
            c.path = strdup(f7[2]);
            c.secure = strcasecmp(f7[3], "TRUE") == 0;
            c.expires = exp;
            c.name = strdup(f7[5]);
            c.value = strdup(f7[6]);
            c.http_only = (unsigned)http_only;
            if (!c.domain || !c.path || !c.name || !c.value) {
                cookie_free(&c);
                fclose(f);
                snprintf(err, errlen, "cookie file %s: out of memory", path);
                return -1;
            }
            if (put(jar, &c, 0) < 0) {
                fclose(f);
                snprintf(err, errlen, "cookie file %s: out of memory", path);
                return -1;
            }
            count++;
        }
    next:;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        snprintf(err, errlen, "cookie file %s: read error", path);
        return -1;
    }
    return count;
}

int loom_cookie_jar_save(loom_cookie_jar *jar, const char *path, char *err, size_t errlen)
{
    drop_expired(jar, wall_now());
    size_t pl = strlen(path);
    char *tmp = malloc(pl + 32);
    if (!tmp) {
        snprintf(err, errlen, "cookie file %s: out of memory", path);
        return -1;
    }
    snprintf(tmp, pl + 32, "%s.%ld.tmp", path, (long)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (!f) {
        snprintf(err, errlen, "cookie file %s: %s", tmp, strerror(errno));
        if (fd >= 0) close(fd);
        free(tmp);
        return -1;
    }
    fputs("# Netscape HTTP Cookie File\n# Written by loom. Edit at your own risk.\n\n", f);
    for (size_t i = 0; i < jar->n; i++) {
        const cookie *c = &jar->v[i];
        fprintf(f, "%s%s%s\t%s\t%s\t%s\t%lld\t%s\t%s\n", c->http_only ? "#HttpOnly_" : "",
                c->host_only ? "" : ".", c->domain, c->host_only ? "FALSE" : "TRUE", c->path,
                c->secure ? "TRUE" : "FALSE", (long long)c->expires, c->name, c->value);
    }
    int bad = ferror(f);
    bad |= fclose(f) != 0;
    if (bad || rename(tmp, path) != 0) {
        snprintf(err, errlen, "cookie file %s: %s", path, strerror(errno ? errno : EIO));
        unlink(tmp);
        free(tmp);
        return -1;
    }
    free(tmp);
    return 0;
}
