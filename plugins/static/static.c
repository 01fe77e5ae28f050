/* static: directories served under URL prefixes.
 *
 * Config:
 *   {"mounts": [{"prefix": "/static", "root": "public", "index": "index.html",
 *                "show_index": false, "max_age": 0}]}
 *
 * Every file is opened relative to the mount's root directory descriptor with
 * openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS), so
 * the kernel refuses any path that leaves the root or crosses a symlink, in
 * one atomic lookup (no check-then-open race). Kernels without openat2 get a
 * component-by-component walk with O_NOFOLLOW, which is equally strict.
 * Before that, the (already percent-decoded, dot-segment-resolved) path is
 * checked: backslashes, an encoded slash, "." and ".." segments answer 400,
 * hidden names ("." first) 404. A symlink answers 403.
 *
 * Responses carry ETag ("size-mtime") and Last-Modified; If-None-Match and
 * If-Modified-Since give 304; one byte range gives 206 (or 416 when it is not
 * satisfiable); 2 to LIMIT_RANGES ranges give a multipart/byteranges 206,
 * with overlapping and adjacent ranges coalesced first (RFC 9110 §14.2,
 * §14.6), and more than LIMIT_RANGES ranges 416. Precompressed files
 * ("precompressed": true, the default, like nginx's gzip_static): when the
 * client accepts br, zstd or gzip and FILE.br, FILE.zst or FILE.gz is beside
 * FILE, that variant is served with Content-Encoding, the type of FILE,
 * Vary: Accept-Encoding and its own ETag; ranges and conditionals apply to
 * the variant's bytes. Small files are read into memory,
 * larger ones go out with loom_resp_file (sendfile). No directory listing
 * unless show_index is true; names in it are HTML-escaped. Opens and stats
 * run on the loop thread: they are local-disk metadata calls, as in nginx. */
#define _GNU_SOURCE
#include <loom/loom.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#ifdef SYS_openat2
#include <linux/openat2.h>
#endif

#define LIMIT_MOUNTS 64
#define LIMIT_RANGES 16
#define LIMIT_PATH 4096
#define LIMIT_LISTING 10000       /* entries shown in a directory listing */
#define SMALL_FILE 16384          /* read into memory up to this size */
#define MULTIPART_MAX (16u << 20) /* a multipart/byteranges body larger than this: 200 */

typedef struct {
    char prefix[256];
    size_t prefix_len;
    char index[256];
    int show_index;
    int precompressed;
    int root_fd;
    int64_t max_age;
} mount;

static mount mounts[LIMIT_MOUNTS];
static size_t nmounts;

/* ---- opening beneath the root ---- */

static int use_openat2 = 1;

/* Opens `rel` (relative, no empty, "." or ".." segments) beneath dirfd.
 * Returns an fd or -errno: ELOOP/EXDEV for a symlink or an escape. */
static int open_beneath(int dirfd, const char *rel, int flags)
{
#ifdef SYS_openat2
    if (use_openat2) {
        struct open_how how;
        memset(&how, 0, sizeof how);
        how.flags = (uint64_t)(flags | O_CLOEXEC | O_NOFOLLOW);
        how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
        long fd = syscall(SYS_openat2, dirfd, rel, &how, sizeof how);
        if (fd >= 0) return (int)fd;
        if (errno != ENOSYS && errno != EPERM) return -errno;
        use_openat2 = 0; /* no openat2 (or a seccomp filter refusing it) */
    }
#endif
    /* The walk: every component opened with O_NOFOLLOW relative to the last. */
    char buf[LIMIT_PATH];
    size_t n = strlen(rel);
    if (n >= sizeof buf) return -ENAMETOOLONG;
    memcpy(buf, rel, n + 1);
    int cur = dup(dirfd);
    if (cur < 0) return -errno;
    char *save = NULL;
    char *comp = strtok_r(buf, "/", &save);
    while (comp) {
        char *next = strtok_r(NULL, "/", &save);
        if (!strcmp(comp, ".") || !strcmp(comp, "..")) {
            close(cur);
            return -EXDEV;
        }
        int f = next ? (O_RDONLY | O_DIRECTORY) : flags;
        int fd = openat(cur, comp, f | O_CLOEXEC | O_NOFOLLOW);
        int e = errno;
        close(cur);
        if (fd < 0) return -e;
        cur = fd;
        comp = next;
    }
    return cur;
}

/* ---- helpers ---- */

static const struct {
    const char *ext, *type;
} types[] = {
    {"html", "text/html; charset=utf-8"},
    {"htm", "text/html; charset=utf-8"},
    {"css", "text/css; charset=utf-8"},
    {"js", "text/javascript; charset=utf-8"},
    {"mjs", "text/javascript; charset=utf-8"},
    {"json", "application/json"},
    {"txt", "text/plain; charset=utf-8"},
    {"xml", "application/xml"},
    {"svg", "image/svg+xml"},
    {"png", "image/png"},
    {"jpg", "image/jpeg"},
    {"jpeg", "image/jpeg"},
    {"gif", "image/gif"},
    {"webp", "image/webp"},
    {"avif", "image/avif"},
    {"ico", "image/vnd.microsoft.icon"},
    {"woff", "font/woff"},
    {"woff2", "font/woff2"},
    {"ttf", "font/ttf"},
    {"otf", "font/otf"},
    {"wasm", "application/wasm"},
    {"pdf", "application/pdf"},
    {"zip", "application/zip"},
    {"gz", "application/gzip"},
    {"mp4", "video/mp4"},
    {"webm", "video/webm"},
    {"mp3", "audio/mpeg"},
    {"ogg", "audio/ogg"},
    {"wav", "audio/wav"},
    {"csv", "text/csv; charset=utf-8"},
    {"md", "text/markdown; charset=utf-8"},
};

static const char *content_type(const char *name)
{
    const char *dot = strrchr(name, '.');
    const char *slash = strrchr(name, '/');
    if (dot && (!slash || dot > slash)) {
        for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
            if (!strcasecmp(dot + 1, types[i].ext)) return types[i].type;
    }
    return "application/octet-stream";
}

static void http_date(time_t t, char out[40])
{
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 40, "%a, %d %b %Y %H:%M:%S GMT", &tm);
}

static int parse_http_date(const char *s, time_t *out)
{
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    const char *end = strptime(s, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    if (!end || *end) return -1;
    *out = timegm(&tm);
    return 0;
}

/* Whether If-None-Match (a list of entity tags, or "*") matches etag, with
 * the weak comparison (W/ ignored) that RFC 9110 asks for here. */
static int etag_matches(const char *inm, const char *etag)
{
    size_t el = strlen(etag);
    const char *p = inm;
    while (*p) {
        while (*p == ' ' || *p == '\t' || *p == ',') p++;
        if (*p == '*') return 1;
        if (p[0] == 'W' && p[1] == '/') p += 2;
        const char *start = p;
        while (*p && *p != ',') p++;
        const char *end = p;
        while (end > start && (end[-1] == ' ' || end[-1] == '\t')) end--;
        if ((size_t)(end - start) == el && !memcmp(start, etag, el)) return 1;
    }
    return 0;
}

typedef struct {
    uint64_t first, last;
} range;

/* Parses a Range header against a file of `size` bytes. Returns the number
 * of satisfiable ranges in out[] (at most LIMIT_RANGES), 0 when none is
 * satisfiable, -1 when the header is not a byte range set we understand
 * (then it is ignored), -2 when it has too many ranges. */
static int parse_ranges(const char *h, uint64_t size, range *out)
{
    if (strncmp(h, "bytes=", 6)) return -1;
    const char *p = h + 6;
    int n = 0, specs = 0;
    for (;;) {
        while (*p == ' ' || *p == '\t') p++;
        if (*p == ',') {
            p++;
            continue;
        }
        if (!*p) break;
        if (++specs > LIMIT_RANGES) return -2;
        uint64_t a = 0, b = 0;
        int has_a = 0, has_b = 0;
        while (*p >= '0' && *p <= '9') {
            if (a > (UINT64_MAX - 9) / 10) return -1;
            a = a * 10 + (uint64_t)(*p++ - '0');
            has_a = 1;
        }
        if (*p++ != '-') return -1;
        while (*p >= '0' && *p <= '9') {
            if (b > (UINT64_MAX - 9) / 10) return -1;
            b = b * 10 + (uint64_t)(*p++ - '0');
            has_b = 1;
        }
        while (*p == ' ' || *p == '\t') p++;
        if (*p && *p != ',') return -1;
        range r;
        if (!has_a) {
            if (!has_b) return -1;
            if (b == 0 || size == 0) continue; /* unsatisfiable */
            r.first = b >= size ? 0 : size - b;
            r.last = size - 1;
        } else {
            if (has_b && b < a) return -1;
            if (a >= size) continue;
            r.first = a;
            r.last = has_b && b < size ? b : size - 1;
        }
        out[n++] = r;
    }
    return specs ? n : -1;
}

static int cmp_range(const void *a, const void *b)
{
    const range *x = a, *y = b;
    return x->first < y->first ? -1 : x->first > y->first;
}

/* Sorts the ranges and merges overlapping and adjacent ones (RFC 9110
 * §14.2 lets a server coalesce them); returns how many are left. */
static int coalesce(range *rs, int n)
{
    qsort(rs, (size_t)n, sizeof *rs, cmp_range);
    int k = 0;
    for (int i = 1; i < n; i++) {
        if (rs[i].first <= rs[k].last + 1) {
            if (rs[i].last > rs[k].last) rs[k].last = rs[i].last;
        } else {
            rs[++k] = rs[i];
        }
    }
    return k + 1;
}

/* ---- precompressed variants ---- */

static const struct {
    const char *suffix, *coding;
} variants[] = {{".br", "br"}, {".zst", "zstd"}, {".gz", "gzip"}};
#define NVARIANTS 3

/* Opens the best variant of `rel` (beneath dirfd) that the client accepts:
 * highest q first, then br, zstd, gzip. Returns its fd (with *st and
 * *coding set), -1 when none is there or acceptable. */
static int open_variant(loom_req *req, int dirfd, const char *rel, struct stat *st,
                        const char **coding)
{
    int32_t q[NVARIANTS];
    int any = 0;
    for (int i = 0; i < NVARIANTS; i++)
        any |= (q[i] = loom_accept_encoding(req, variants[i].coding)) > 0;
    if (!any) return -1;
    char name[LIMIT_PATH + 8];
    for (;;) {
        int best = -1;
        for (int i = 0; i < NVARIANTS; i++)
            if (q[i] > 0 && (best < 0 || q[i] > q[best])) best = i;
        if (best < 0) return -1;
        q[best] = 0;
        if ((size_t)snprintf(name, sizeof name, "%s%s", rel, variants[best].suffix) >= sizeof name)
            return -1;
        int fd = open_beneath(dirfd, name, O_RDONLY);
        if (fd < 0) continue;
        if (fstat(fd, st) == 0 && S_ISREG(st->st_mode)) {
            *coding = variants[best].coding;
            return fd;
        }
        close(fd);
    }
}

/* Reads len bytes at off into buf. Returns 0 or -1. */
static int read_at(int fd, char *buf, uint64_t off, uint64_t len)
{
    uint64_t got = 0;
    while (got < len) {
        ssize_t r = pread(fd, buf + got, (size_t)(len - got), (off_t)(off + got));
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return -1;
        got += (uint64_t)r;
    }
    return 0;
}

/* A multipart/byteranges 206 of the ranges rs[0..n) (n >= 2, coalesced).
 * Returns 1 when the body would pass MULTIPART_MAX (the caller sends the
 * whole file instead), else the handler's result. Takes fd in both cases
 * but the first. */
static int32_t send_multipart(loom_req *req, int fd, const range *rs, int n, uint64_t size,
                              const char *type, const char *etag)
{
    static unsigned counter;
    char boundary[48], part[512];
    unsigned long long h = 1469598103934665603ull;
    for (const char *p = etag; *p; p++) h = (h ^ (unsigned char)*p) * 1099511628211ull;
    snprintf(boundary, sizeof boundary, "loom%016llx%08x", h, ++counter);
    uint64_t total = 0;
    for (int i = 0; i < n; i++) {
        int pl =
            snprintf(part, sizeof part,
                     "%s--%s\r\nContent-Type: %s\r\nContent-Range: bytes %llu-%llu/%llu\r\n\r\n",
                     i ? "\r\n" : "", boundary, type, (unsigned long long)rs[i].first,
                     (unsigned long long)rs[i].last, (unsigned long long)size);
        total += (uint64_t)pl + rs[i].last - rs[i].first + 1;
    }
    total += strlen(boundary) + 8;
    if (total > MULTIPART_MAX) return 1;
    char *body = malloc(total + 1);
    if (!body) {
        close(fd);
        return loom_resp_error(req, 500, "out of memory");
    }
    size_t off = 0;
    for (int i = 0; i < n; i++) {
        int pl =
            snprintf(body + off, total + 1 - off,
                     "%s--%s\r\nContent-Type: %s\r\nContent-Range: bytes %llu-%llu/%llu\r\n\r\n",
                     i ? "\r\n" : "", boundary, type, (unsigned long long)rs[i].first,
                     (unsigned long long)rs[i].last, (unsigned long long)size);
        off += (size_t)pl;
        uint64_t len = rs[i].last - rs[i].first + 1;
        if (read_at(fd, body + off, rs[i].first, len)) {
            free(body);
            close(fd);
            return loom_resp_error(req, 500, "read failed");
        }
        off += (size_t)len;
    }
    off += (size_t)snprintf(body + off, total + 1 - off, "\r\n--%s--\r\n", boundary);
    close(fd);
    char ct[96];
    snprintf(ct, sizeof ct, "multipart/byteranges; boundary=%s", boundary);
    int32_t rc = loom_resp_bytes(req, 206, ct, body, off);
    free(body);
    return rc;
}

/* ---- directory listing ---- */

static void html_escape(char **buf, size_t *len, size_t *cap, const char *s)
{
    for (; *s; s++) {
        const char *rep = NULL;
        char one[2] = {*s, 0};
        switch (*s) {
        case '&':
            rep = "&amp;";
            break;
        case '<':
            rep = "&lt;";
            break;
        case '>':
            rep = "&gt;";
            break;
        case '"':
            rep = "&quot;";
            break;
        case '\'':
            rep = "&#39;";
            break;
        default:
            rep = one;
        }
        size_t rl = strlen(rep);
        if (*len + rl + 1 > *cap) {
            size_t nc = (*cap ? *cap * 2 : 1024) + rl;
            char *nb = realloc(*buf, nc);
            if (!nb) return;
            *buf = nb;
            *cap = nc;
        }
        memcpy(*buf + *len, rep, rl);
        *len += rl;
    }
}

static void put(char **buf, size_t *len, size_t *cap, const char *s)
{
    size_t sl = strlen(s);
    if (*len + sl + 1 > *cap) {
        size_t nc = (*cap ? *cap * 2 : 1024) + sl;
        char *nb = realloc(*buf, nc);
        if (!nb) return;
        *buf = nb;
        *cap = nc;
    }
    memcpy(*buf + *len, s, sl);
    *len += sl;
}

/* Percent-encodes a name for an href, then HTML-escapes nothing more (the
 * encoded form holds no markup characters). */
static void put_href(char **buf, size_t *len, size_t *cap, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    char tmp[4];
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '_' || c == '.' || c == '~') {
            tmp[0] = (char)c;
            tmp[1] = 0;
        } else {
            tmp[0] = '%';
            tmp[1] = hex[c >> 4];
            tmp[2] = hex[c & 15];
            tmp[3] = 0;
        }
        put(buf, len, cap, tmp);
    }
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int32_t listing(loom_req *req, int dirfd, const char *urlpath)
{
    /* A new open file description: a dup() would share (and move) the
     * directory offset of the mount's root descriptor. */
    int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (!d) {
        if (fd >= 0) close(fd);
        return loom_resp_error(req, 500, "cannot read the directory");
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < LIMIT_LISTING) {
        if (e->d_name[0] == '.') continue;
        if (n == cap) {
            size_t nc = cap ? cap * 2 : 64;
            char **nn = realloc(names, nc * sizeof *nn);
            if (!nn) break;
            names = nn;
            cap = nc;
        }
        int isdir = e->d_type == DT_DIR;
        size_t l = strlen(e->d_name);
        char *s = malloc(l + 2);
        if (!s) break;
        memcpy(s, e->d_name, l);
        s[l] = isdir ? '/' : 0;
        s[l + 1] = 0;
        names[n++] = s;
    }
    closedir(d);
    if (n) qsort(names, n, sizeof *names, cmp_names);
    char *b = NULL;
    size_t bl = 0, bc = 0;
    put(&b, &bl, &bc, "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Index of ");
    html_escape(&b, &bl, &bc, urlpath);
    put(&b, &bl, &bc, "</title></head>\n<body><h1>Index of ");
    html_escape(&b, &bl, &bc, urlpath);
    put(&b, &bl, &bc, "</h1>\n<ul>\n");
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(names[i]);
        int isdir = l && names[i][l - 1] == '/';
        if (isdir) names[i][l - 1] = 0;
        put(&b, &bl, &bc, "<li><a href=\"");
        put_href(&b, &bl, &bc, names[i]);
        if (isdir) put(&b, &bl, &bc, "/");
        put(&b, &bl, &bc, "\">");
        html_escape(&b, &bl, &bc, names[i]);
        if (isdir) put(&b, &bl, &bc, "/");
        put(&b, &bl, &bc, "</a></li>\n");
        free(names[i]);
    }
    free(names);
    put(&b, &bl, &bc, "</ul></body></html>\n");
    int32_t rc = b ? loom_resp_bytes(req, 200, "text/html; charset=utf-8", b, bl)
                   : loom_resp_error(req, 500, "out of memory");
    free(b);
    return rc;
}

/* ---- the handler ---- */

static int32_t open_error(loom_req *req, int err)
{
    switch (err) {
    case ELOOP:
    case EXDEV:
    case EACCES:
    case EPERM:
        return loom_resp_error(req, 403, "Forbidden");
    case ENAMETOOLONG:
        return loom_resp_error(req, 414, "path too long");
    default:
        return loom_resp_error(req, 404, "Not Found");
    }
}

/* Serves the regular file fd (`name` beneath dirfd), or its precompressed
 * variant. Takes fd. */
static int32_t serve_file(loom_req *req, const mount *m, int fd, const struct stat *fst, int dirfd,
                          const char *name)
{
    char etag[80], lm[40];
    const char *coding = NULL;
    struct stat vst;
    const struct stat *st = fst;
    if (m->precompressed) {
        int vfd = open_variant(req, dirfd, name, &vst, &coding);
        if (vfd >= 0) {
            close(fd);
            fd = vfd;
            st = &vst;
            loom_resp_header_set(req, "Content-Encoding", coding);
            loom_resp_header_set(req, "Vary", "Accept-Encoding");
        }
    }
    uint64_t size = (uint64_t)st->st_size;
    snprintf(etag, sizeof etag, "\"%llx-%llx%s%s\"", (unsigned long long)size,
             (unsigned long long)st->st_mtim.tv_sec * 1000000000ull +
                 (unsigned long long)st->st_mtim.tv_nsec,
             coding ? "-" : "", coding ? coding : "");
    http_date(st->st_mtime, lm);
    loom_resp_header_set(req, "ETag", etag);
    loom_resp_header_set(req, "Last-Modified", lm);
    loom_resp_header_set(req, "Accept-Ranges", "bytes");
    if (m->max_age > 0) {
        char cc[64];
        snprintf(cc, sizeof cc, "public, max-age=%lld", (long long)m->max_age);
        loom_resp_header_set(req, "Cache-Control", cc);
    }

    /* Conditionals (RFC 9110 13.2.2): If-None-Match wins over If-Modified-Since. */
    const char *inm = loom_req_header(req, "If-None-Match", NULL);
    const char *ims = loom_req_header(req, "If-Modified-Since", NULL);
    int not_modified = 0;
    if (inm) {
        not_modified = etag_matches(inm, etag);
    } else if (ims) {
        time_t t;
        if (parse_http_date(ims, &t) == 0 && st->st_mtime <= t) not_modified = 1;
    }
    if (not_modified) {
        close(fd);
        loom_resp_status(req, 304);
        int32_t rc = loom_respond(req);
        return rc == LOOM_EGONE ? LOOM_DONE : rc;
    }

    uint64_t off = 0, len = size;
    int status = 200;
    const char *rh = loom_req_header(req, "Range", NULL);
    const char *ifr = loom_req_header(req, "If-Range", NULL);
    if (rh && ifr && strcmp(ifr, etag) && strcmp(ifr, lm)) rh = NULL; /* changed: whole file */
    if (rh) {
        range rs[LIMIT_RANGES];
        int n = parse_ranges(rh, size, rs);
        if (n == 0 || n == -2) {
            close(fd);
            char cr[64];
            snprintf(cr, sizeof cr, "bytes */%llu", (unsigned long long)size);
            loom_resp_header_set(req, "Content-Range", cr);
            loom_resp_header_set(req, "Content-Encoding", NULL); /* the error text is not coded */
            return loom_resp_error(req, 416, n == 0 ? "Range Not Satisfiable" : "too many ranges");
        }
        if (n > 1) n = coalesce(rs, n);
        if (n > 1) {
            int32_t rc = send_multipart(req, fd, rs, n, size, content_type(name), etag);
            if (rc != 1) return rc == LOOM_EGONE ? LOOM_DONE : rc;
            /* too large a multipart body: the whole file (200) */
        }
        if (n == 1) {
            char cr[96];
            off = rs[0].first;
            len = rs[0].last - rs[0].first + 1;
            snprintf(cr, sizeof cr, "bytes %llu-%llu/%llu", (unsigned long long)rs[0].first,
                     (unsigned long long)rs[0].last, (unsigned long long)size);
            loom_resp_header_set(req, "Content-Range", cr);
            status = 206;
        }
    }
    loom_resp_status(req, status);
    loom_resp_header_set(req, "Content-Type", content_type(name));
    int32_t rc;
    if (len <= SMALL_FILE) {
        char buf[SMALL_FILE];
        size_t got = 0;
        while (got < len) {
            ssize_t r = pread(fd, buf + got, (size_t)len - got, (off_t)(off + got));
            if (r < 0 && errno == EINTR) continue;
            if (r <= 0) break;
            got += (size_t)r;
        }
        close(fd);
        if (got != len) return loom_resp_error(req, 500, "read failed");
        rc = loom_resp_body(req, buf, len);
    } else {
        rc = loom_resp_file(req, fd, off, len); /* takes fd */
    }
    if (rc == 0) rc = loom_respond(req);
    return rc == LOOM_EGONE ? LOOM_DONE : rc;
}

static int32_t handle(loom_req *req, void *ud)
{
    const mount *m = ud;
    size_t plen;
    const char *path = loom_req_path(req, &plen);
    if (plen < m->prefix_len || memcmp(path, m->prefix, m->prefix_len))
        return loom_resp_error(req, 404, "Not Found");
    const char *rest = path + m->prefix_len;
    if (plen - m->prefix_len >= LIMIT_PATH) return loom_resp_error(req, 414, "path too long");

    /* Build the relative path from the segments, refusing what the kernel
     * must never see. The core already decoded %XX (not %2F), rejected %00
     * and resolved dot segments; this is the second line. */
    char rel[LIMIT_PATH];
    size_t rl = 0;
    int trailing_slash = plen > m->prefix_len && path[plen - 1] == '/';
    const char *p = rest;
    while (*p) {
        while (*p == '/') p++;
        if (!*p) break;
        const char *s = p;
        while (*p && *p != '/') p++;
        size_t sl = (size_t)(p - s);
        if (memchr(s, '\\', sl) || memchr(s, '\0', sl))
            return loom_resp_error(req, 400, "Bad Request");
        for (size_t i = 0; i + 2 < sl; i++)
            if (s[i] == '%' && s[i + 1] == '2' && (s[i + 2] == 'F' || s[i + 2] == 'f'))
                return loom_resp_error(req, 400, "Bad Request");
        if ((sl == 1 && s[0] == '.') || (sl == 2 && s[0] == '.' && s[1] == '.'))
            return loom_resp_error(req, 400, "Bad Request");
        if (s[0] == '.') return loom_resp_error(req, 404, "Not Found");
        if (rl + sl + 2 >= sizeof rel) return loom_resp_error(req, 414, "path too long");
        if (rl) rel[rl++] = '/';
        memcpy(rel + rl, s, sl);
        rl += sl;
    }
    rel[rl] = 0;

    int fd = rl ? open_beneath(m->root_fd, rel, O_RDONLY) : dup(m->root_fd);
    if (fd < 0) return open_error(req, rl ? -fd : errno);
    struct stat st;
    if (fstat(fd, &st) < 0) {
        close(fd);
        return loom_resp_error(req, 404, "Not Found");
    }
    if (S_ISDIR(st.st_mode)) {
        if (!trailing_slash && rl) {
            /* Relative links in an index need the slash. */
            close(fd);
            size_t n = plen + 2;
            char *loc = loom_req_alloc(req, n);
            if (!loc) return loom_resp_error(req, 500, "out of memory");
            memcpy(loc, path, plen);
            loc[plen] = '/';
            loc[plen + 1] = 0;
            if (strchr(loc, '%')) return loom_resp_error(req, 404, "Not Found");
            loom_resp_header_set(req, "Location", loc);
            return loom_resp_text(req, 301, "Moved Permanently");
        }
        if (m->index[0]) {
            int ifd = open_beneath(fd, m->index, O_RDONLY);
            struct stat ist;
            if (ifd >= 0 && fstat(ifd, &ist) == 0 && S_ISREG(ist.st_mode)) {
                int32_t rc = serve_file(req, m, ifd, &ist, fd, m->index);
                close(fd);
                return rc;
            }
            if (ifd >= 0) close(ifd);
            if (ifd == -ELOOP || ifd == -EXDEV) {
                close(fd);
                return open_error(req, ELOOP);
            }
        }
        int32_t rc =
            m->show_index ? listing(req, fd, path) : loom_resp_error(req, 403, "Forbidden");
        close(fd);
        return rc;
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return loom_resp_error(req, 404, "Not Found");
    }
    if (trailing_slash) {
        close(fd);
        return loom_resp_error(req, 404, "Not Found");
    }
    return serve_file(req, m, fd, &st, m->root_fd, rel);
}

/* ---- set-up ---- */

static int32_t fail(loom_plugin *self, const char *msg)
{
    loom_log(self, LOOM_LOG_ERROR, msg);
    return LOOM_EINVAL;
}

static void close_all(void)
{
    for (size_t i = 0; i < nmounts; i++)
        if (mounts[i].root_fd >= 0) close(mounts[i].root_fd);
    nmounts = 0;
}

static int32_t init(loom_plugin *self, const char *config, size_t len)
{
    (void)config;
    (void)len;
    char msg[512];
    const loom_json *cfg = loom_config(self);
    static const char *const top[] = {"mounts", NULL};
    static const char *const mount_keys[] = {"prefix",  "root",          "index", "show_index",
                                             "max_age", "precompressed", NULL};
    if (loom_config_check_keys(self, cfg, NULL, top)) return LOOM_EINVAL;
    const loom_json *ms = cfg ? loom_json_get(cfg, "mounts") : NULL;
    if (!ms) return 0; /* nothing to serve */
    if (loom_json_type(ms) != LOOM_JSON_ARRAY)
        return fail(self, "static: \"mounts\" must be an array");
    size_t n = loom_json_size(ms);
    if (n > LIMIT_MOUNTS) return fail(self, "static: more than 64 \"mounts\"");
    for (size_t i = 0; i < n; i++) {
        const loom_json *mj = loom_json_at(ms, i);
        snprintf(msg, sizeof msg, "mounts[%zu]", i);
        if (loom_config_check_keys(self, mj, msg, mount_keys)) {
            close_all();
            return LOOM_EINVAL;
        }
        mount *m = &mounts[nmounts];
        memset(m, 0, sizeof *m);
        m->root_fd = -1;
        const loom_json *pj = loom_json_get(mj, "prefix"), *rj = loom_json_get(mj, "root");
        const loom_json *ij = loom_json_get(mj, "index"), *sj = loom_json_get(mj, "show_index");
        const loom_json *aj = loom_json_get(mj, "max_age");
        const char *prefix = pj ? loom_json_string(pj, NULL) : NULL;
        const char *root = rj ? loom_json_string(rj, NULL) : NULL;
        if (!prefix || prefix[0] != '/' || strlen(prefix) >= sizeof m->prefix - 16 ||
            strchr(prefix, '{') || strchr(prefix, '}')) {
            snprintf(msg, sizeof msg, "static: mounts[%zu].prefix must be a path starting with '/'",
                     i);
            close_all();
            return fail(self, msg);
        }
        if (!root || !*root) {
            snprintf(msg, sizeof msg, "static: mounts[%zu].root must be a directory", i);
            close_all();
            return fail(self, msg);
        }
        size_t pl = strlen(prefix);
        while (pl > 1 && prefix[pl - 1] == '/') pl--;
        if (pl == 1) pl = 0; /* "/" mounts at the top */
        memcpy(m->prefix, prefix, pl);
        m->prefix[pl] = 0;
        m->prefix_len = pl;
        const char *index = ij ? loom_json_string(ij, NULL) : NULL;
        if (index) {
            if (!*index || strchr(index, '/') || index[0] == '.' ||
                strlen(index) >= sizeof m->index) {
                snprintf(msg, sizeof msg, "static: mounts[%zu].index must be a plain file name", i);
                close_all();
                return fail(self, msg);
            }
            strcpy(m->index, index);
        }
        m->show_index = sj && loom_json_type(sj) == LOOM_JSON_TRUE;
        const loom_json *cj = loom_json_get(mj, "precompressed");
        m->precompressed = !cj || loom_json_type(cj) == LOOM_JSON_TRUE;
        if (cj && loom_json_type(cj) != LOOM_JSON_TRUE && loom_json_type(cj) != LOOM_JSON_FALSE) {
            snprintf(msg, sizeof msg, "static: mounts[%zu].precompressed must be true or false", i);
            close_all();
            return fail(self, msg);
        }
        m->max_age = aj ? loom_json_integer(aj) : 0;
        m->root_fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (m->root_fd < 0) {
            snprintf(msg, sizeof msg, "static: mounts[%zu].root %s: %s", i, root, strerror(errno));
            close_all();
            return fail(self, msg);
        }
        nmounts++;
        char pat[300];
        snprintf(pat, sizeof pat, "%s/{tail:.*}", m->prefix);
        int32_t rc = loom_route_add(self, "GET", pat, handle, m);
        if (rc == 0 && pl) rc = loom_route_add(self, "GET", m->prefix, handle, m);
        if (rc) {
            snprintf(msg, sizeof msg, "static: mounts[%zu]: cannot add route %s", i, pat);
            close_all();
            return fail(self, msg);
        }
    }
    return 0;
}

static void fini(loom_plugin *self)
{
    (void)self;
    close_all();
}

LOOM_PLUGIN("static", "1.0.0", init, fini);
