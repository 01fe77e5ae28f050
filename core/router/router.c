#include "router/router.h"

#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { M_GET, M_HEAD, M_POST, M_PUT, M_PATCH, M_DELETE, M_OPTIONS, M_ANY, M_COUNT };
static const char *method_names[M_COUNT] = {"GET",   "HEAD",   "POST",    "PUT",
                                            "PATCH", "DELETE", "OPTIONS", "*"};

typedef struct node node;
struct node {
    char *seg; /* static text, or the variable name */
    size_t seg_len;
    regex_t re;
    char *re_src; /* the regex as written, to tell variables apart */
    int has_re, is_tail;
    node **statics; /* sorted by seg */
    size_t nstatics;
    node **vars; /* in insertion order */
    size_t nvars;
    loom__route_target *ep[M_COUNT];
};

typedef struct {
    char *name;
    char *pattern;
} named;

struct loom__router {
    node root;
    named *names;
    size_t nnames;
    size_t count;
};

loom__router *loom__router_new(void)
{
    return calloc(1, sizeof(loom__router));
}

static void node_free(node *n)
{
    for (size_t i = 0; i < n->nstatics; i++) {
        node_free(n->statics[i]);
        free(n->statics[i]);
    }
    for (size_t i = 0; i < n->nvars; i++) {
        node_free(n->vars[i]);
        free(n->vars[i]);
    }
    free(n->statics);
    free(n->vars);
    for (int m = 0; m < M_COUNT; m++) {
        if (n->ep[m]) free((char *)n->ep[m]->name);
        free(n->ep[m]);
    }
    if (n->has_re) regfree(&n->re);
    free(n->re_src);
    free(n->seg);
}

void loom__router_free(loom__router *rt)
{
    if (!rt) return;
    node_free(&rt->root);
    for (size_t i = 0; i < rt->nnames; i++) {
        free(rt->names[i].name);
        free(rt->names[i].pattern);
    }
    free(rt->names);
    free(rt);
}

size_t loom__router_count(const loom__router *rt)
{
    return rt->count;
}

static int method_index(const char *m)
{
    /* GET first, without a call: it is most requests. */
    if (m[0] == 'G' && m[1] == 'E' && m[2] == 'T' && m[3] == '\0') return M_GET;
    for (int i = 0; i < M_COUNT; i++)
        if (strcmp(m, method_names[i]) == 0) return i;
    return -1;
}

/* POSIX ERE lacks the Perl shorthands aiohttp users write; expand them. */
static char *translate_regex(const char *re, size_t len)
{
    size_t cap = len * 16 + 8;
    char *out = malloc(cap), *o = out;
    if (!out) return NULL;
    o += sprintf(o, "^(");
    for (size_t i = 0; i < len; i++) {
        if (re[i] == '\\' && i + 1 < len) {
            const char *rep = NULL;
            switch (re[i + 1]) {
            case 'd':
                rep = "[0-9]";
                break;
            case 'D':
                rep = "[^0-9]";
                break;
            case 'w':
                rep = "[A-Za-z0-9_]";
                break;
            case 'W':
                rep = "[^A-Za-z0-9_]";
                break;
            case 's':
                rep = "[[:space:]]";
                break;
            case 'S':
                rep = "[^[:space:]]";
                break;
            }
            if (rep) {
                o += sprintf(o, "%s", rep);
                i++;
                continue;
            }
            *o++ = re[i++];
        }
        *o++ = re[i];
    }
    sprintf(o, ")$");
    return out;
}

/* glibc compiles a repetition by copying the repeated tree ("a+" is "aa*",
 * "x{2,9}" nine copies), so stacked or nested repetitions grow exponentially:
 * "(a+++...+)" or "((a{1,99}){1,99}){1,99}" take gigabytes in regcomp, and
 * "a???...?" minutes. This estimates the size of the compiled ERE (each
 * quantifier doubles what it repeats, a bound multiplies it) and refuses
 * stacked quantifiers, so such patterns are refused with a clear error. */
#define RE_BUDGET 20000

static size_t sat_add(size_t a, size_t b)
{
    return a + b > RE_BUDGET ? RE_BUDGET + 1 : a + b;
}

static size_t sat_mul(size_t a, size_t b)
{
    return b && a > RE_BUDGET / b ? RE_BUDGET + 1 : a * b;
}

static size_t re_cost(const char **sp, const char *end, int depth)
{
    const char *s = *sp;
    size_t total = 0;
    while (s < end && *s != ')' && total <= RE_BUDGET) {
        size_t atom = 1;
        if (*s == '(') {
            s++;
            if (depth > 64) return RE_BUDGET + 1;
            atom = sat_add(re_cost(&s, end, depth + 1), 1);
            if (s < end) s++; /* ')' */
        } else if (*s == '[') {
            s++;
            if (s < end && *s == '^') s++;
            if (s < end && *s == ']') s++;
            while (s < end && *s != ']') {
                if (*s == '[' && s + 1 < end && (s[1] == ':' || s[1] == '.' || s[1] == '=')) {
                    char k = s[1];
                    for (s += 2; s + 1 < end && !(s[0] == k && s[1] == ']'); s++) {
                    }
                    s = s + 1 < end ? s + 2 : end;
                } else {
                    s++;
                }
            }
            if (s < end) s++;
        } else if (*s == '\\' && s + 1 < end) {
            s += 2;
        } else {
            s++;
        }
        /* One quantifier per atom: POSIX leaves stacked ones ("a+*", "a??")
         * undefined, and glibc takes exponential time over them. */
        if (s < end && (*s == '*' || *s == '?' || *s == '+')) {
            s++;
            atom = sat_mul(atom, 2);
        } else if (s < end && *s == '{') {
            size_t m = 0, n = 0;
            const char *q = s + 1;
            for (; q < end && *q >= '0' && *q <= '9'; q++)
                m = m > RE_BUDGET ? m : m * 10 + (size_t)(*q - '0');
            n = m;
            if (q < end && *q == ',') {
                for (q++, n = 0; q < end && *q >= '0' && *q <= '9'; q++)
                    n = n > RE_BUDGET ? n : n * 10 + (size_t)(*q - '0');
                if (n < m) n = m;
            }
            if (q < end && *q == '}') {
                s = q + 1;
                atom = sat_mul(atom, n + 1);
            }
        }
        if (s < end && (*s == '*' || *s == '?' || *s == '+' || *s == '{')) return RE_BUDGET + 1;
        total = sat_add(total, atom);
    }
    *sp = s;
    return total;
}

static int re_too_complex(const char *re)
{
    const char *s = re, *end = re + strlen(re);
    size_t total = 0;
    while (s < end && total <= RE_BUDGET) {
        total = sat_add(total, re_cost(&s, end, 0));
        if (s < end) s++; /* an unmatched ')' */
    }
    return total > RE_BUDGET;
}

static int cmp_seg(const char *a, size_t al, const char *b, size_t bl)
{
    size_t n = al < bl ? al : bl;
    int c = n ? memcmp(a, b, n) : 0;
    if (c) return c;
    return al < bl ? -1 : al > bl;
}

/* Binary search among static children; returns the index or -(insert)-1. */
static long find_static(const node *n, const char *s, size_t len)
{
    long lo = 0, hi = (long)n->nstatics - 1;
    while (lo <= hi) {
        long mid = (lo + hi) / 2;
        int c = cmp_seg(n->statics[mid]->seg, n->statics[mid]->seg_len, s, len);
        if (c == 0) return mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid - 1;
    }
    return -lo - 1;
}

static node *add_static(node *n, const char *s, size_t len)
{
    long i = find_static(n, s, len);
    if (i >= 0) return n->statics[i];
    size_t at = (size_t)(-i - 1);
    node **arr = realloc(n->statics, (n->nstatics + 1) * sizeof *arr);
    node *c = calloc(1, sizeof *c);
    if (!arr || !c) {
        free(c);
        if (arr) n->statics = arr;
        return NULL;
    }
    n->statics = arr;
    memmove(arr + at + 1, arr + at, (n->nstatics - at) * sizeof *arr);
    c->seg = strndup(s, len);
    c->seg_len = len;
    arr[at] = c;
    n->nstatics++;
    return c;
}

static node *add_var(node *n, const char *name, size_t nl, const char *re, size_t rl, int tail,
                     char *err, size_t errlen)
{
    for (size_t i = 0; i < n->nvars; i++) {
        node *v = n->vars[i];
        /* Same variable shape: share the node, as a static segment would. */
        if (v->seg_len == nl && memcmp(v->seg, name, nl) == 0 && v->is_tail == tail &&
            v->has_re == (re != NULL) &&
            (!re || (strlen(v->re_src) == rl && memcmp(v->re_src, re, rl) == 0)))
            return v;
    }
    node *c = calloc(1, sizeof *c);
    node **arr = realloc(n->vars, (n->nvars + 1) * sizeof *arr);
    if (!c || !arr) {
        free(c);
        if (arr) n->vars = arr;
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    n->vars = arr;
    c->seg = strndup(name, nl);
    c->seg_len = nl;
    c->is_tail = tail;
    if (re) {
        char *x = translate_regex(re, rl);
        if (x && re_too_complex(x)) {
            snprintf(err, errlen,
                     "regex '%.*s' for {%.*s} is too complex (stacked or nested repetitions)",
                     (int)rl, re, (int)nl, name);
            free(x);
            free(c->seg);
            free(c);
            return NULL;
        }
        int rc = x ? regcomp(&c->re, x, REG_EXTENDED | REG_NOSUB) : REG_ESPACE;
        free(x);
        if (rc) {
            char why[128];
            regerror(rc, &c->re, why, sizeof why);
            snprintf(err, errlen, "bad regex '%.*s' for {%.*s}: %s", (int)rl, re, (int)nl, name,
                     why);
            free(c->seg);
            free(c);
            return NULL;
        }
        c->has_re = 1;
        c->re_src = strndup(re, rl);
    }
    arr[n->nvars++] = c;
    return c;
}

int loom__router_add(loom__router *rt, const char *method, const char *pattern,
                     const loom__route_target *t, char *err, size_t errlen)
{
    int m = method_index(method);
    if (m < 0) {
        snprintf(err, errlen,
                 "unknown method '%s' (GET, HEAD, POST, PUT, PATCH, DELETE, "
                 "OPTIONS or *)",
                 method);
        return -1;
    }
    if (pattern[0] != '/') {
        snprintf(err, errlen, "pattern '%s' must start with '/'", pattern);
        return -1;
    }
    if (t->name) {
        for (size_t i = 0; i < rt->nnames; i++)
            if (strcmp(rt->names[i].name, t->name) == 0) {
                snprintf(err, errlen, "duplicate route name '%s'", t->name);
                return -1;
            }
    }
    node *n = &rt->root;
    const char *p = pattern + 1;
    for (;;) {
        const char *s = p;
        if (*s == '{') {
            /* A variable: {name} or {name:regex}; braces may nest in the regex. */
            int depth = 0;
            const char *e = s;
            for (; *e; e++) {
                if (*e == '{') depth++;
                if (*e == '}' && --depth == 0) break;
            }
            if (!*e) {
                snprintf(err, errlen, "pattern '%s': unclosed '{'", pattern);
                return -1;
            }
            const char *colon = memchr(s, ':', (size_t)(e - s));
            const char *name = s + 1;
            size_t nl = (size_t)((colon ? colon : e) - name);
            if (nl == 0) {
                snprintf(err, errlen, "pattern '%s': empty variable name", pattern);
                return -1;
            }
            for (size_t i = 0; i < nl; i++)
                if (!(name[i] == '_' || (name[i] >= 'a' && name[i] <= 'z') ||
                      (name[i] >= 'A' && name[i] <= 'Z') || (name[i] >= '0' && name[i] <= '9'))) {
                    snprintf(err, errlen, "pattern '%s': bad variable name '%.*s'", pattern,
                             (int)nl, name);
                    return -1;
                }
            if (e[1] != '/' && e[1] != '\0') {
                snprintf(err, errlen, "pattern '%s': a variable must fill a whole segment",
                         pattern);
                return -1;
            }
            int last = e[1] == '\0';
            n = add_var(n, name, nl, colon ? colon + 1 : NULL, colon ? (size_t)(e - colon - 1) : 0,
                        last && colon, err, errlen);
            if (!n) return -1;
            p = e + 1;
        } else {
            const char *e = strchr(s, '/');
            if (!e) e = s + strlen(s);
            if (memchr(s, '}', (size_t)(e - s)) || memchr(s, '{', (size_t)(e - s))) {
                snprintf(err, errlen, "pattern '%s': '{' or '}' inside a static segment", pattern);
                return -1;
            }
            n = add_static(n, s, (size_t)(e - s));
            if (!n) {
                snprintf(err, errlen, "out of memory");
                return -1;
            }
            p = e;
        }
        if (*p == '\0') break;
        p++; /* skip '/' */
    }
    if (n->ep[m]) {
        snprintf(err, errlen, "duplicate route %s %s", method, pattern);
        return -1;
    }
    loom__route_target *copy = malloc(sizeof *copy);
    if (!copy) return -1;
    *copy = *t;
    copy->name = t->name ? strdup(t->name) : NULL;
    n->ep[m] = copy;
    if (t->name) {
        named *nn = realloc(rt->names, (rt->nnames + 1) * sizeof *nn);
        if (!nn) return -1;
        rt->names = nn;
        nn[rt->nnames].name = strdup(t->name);
        nn[rt->nnames].pattern = strdup(pattern);
        rt->nnames++;
    }
    rt->count++;
    return 0;
}

typedef struct {
    int m;
    loom__capture *caps;
    uint32_t ncaps;
    unsigned allow; /* methods of path matches that lacked the method */
    const loom__route_target *found;
} match_state;

static const loom__route_target *pick(const node *n, match_state *st)
{
    if (n->ep[st->m]) return n->ep[st->m];
    if (st->m == M_HEAD && n->ep[M_GET]) return n->ep[M_GET];
    if (n->ep[M_ANY]) return n->ep[M_ANY];
    for (int i = 0; i < M_ANY; i++)
        if (n->ep[i]) st->allow |= 1u << i;
    return NULL;
}

static int re_full(const regex_t *re, char *s, size_t len)
{
    char save = s[len];
    s[len] = '\0';
    int ok = regexec(re, s, 0, NULL, 0) == 0;
    s[len] = save;
    return ok;
}

/* `s` is the rest of the path after a '/', `end` its end. */
static int walk(const node *n, char *s, char *end, match_state *st)
{
    char *e = s < end ? memchr(s, '/', (size_t)(end - s)) : NULL; /* "/" ends at s */
    if (!e) e = end;
    size_t len = (size_t)(e - s);
    int last = e == end;
    long i = find_static(n, s, len);
    if (i >= 0) {
        const node *c = n->statics[i];
        if (last) {
            if ((st->found = pick(c, st))) return 1;
        } else if (walk(c, e + 1, end, st)) {
            return 1;
        }
    }
    for (size_t k = 0; k < n->nvars; k++) {
        const node *v = n->vars[k];
        if (st->ncaps >= LOOM__MAX_CAPTURES) break;
        loom__capture *cap = &st->caps[st->ncaps];
        cap->name = v->seg;
        cap->value = s;
        if (v->is_tail) {
            size_t rl = (size_t)(end - s);
            if (!re_full(&v->re, s, rl)) continue;
            cap->len = rl;
            st->ncaps++;
            if ((st->found = pick(v, st))) return 1;
            st->ncaps--;
            continue;
        }
        if (len == 0 || (v->has_re && !re_full(&v->re, s, len))) continue;
        cap->len = len;
        st->ncaps++;
        if (last) {
            if ((st->found = pick(v, st))) return 1;
        } else if (walk(v, e + 1, end, st)) {
            return 1;
        }
        st->ncaps--;
    }
    return 0;
}

int loom__router_match(const loom__router *rt, const char *method, char *path, size_t path_len,
                       const loom__route_target **target, loom__capture *caps, uint32_t *ncaps,
                       char *allow, size_t allowlen)
{
    match_state st = {0};
    st.m = method_index(method);
    if (st.m < 0) st.m = M_ANY; /* other methods only reach any-method routes */
    st.caps = caps;
    *ncaps = 0;
    if (path_len == 0 || path[0] != '/') return LOOM__ROUTE_NOT_FOUND;
    if (walk(&rt->root, path + 1, path + path_len, &st)) {
        *target = st.found;
        *ncaps = st.ncaps;
        return LOOM__ROUTE_FOUND;
    }
    if (!st.allow) return LOOM__ROUTE_NOT_FOUND;
    if (st.allow & (1u << M_GET)) st.allow |= 1u << M_HEAD;
    size_t o = 0;
    allow[0] = '\0';
    for (int i = 0; i < M_ANY; i++)
        if (st.allow & (1u << i))
            o += (size_t)snprintf(allow + o, o < allowlen ? allowlen - o : 0, "%s%s", o ? ", " : "",
                                  method_names[i]);
    return LOOM__ROUTE_NO_METHOD;
}

static int put(char *out, size_t outlen, size_t *o, const char *s, size_t n)
{
    if (*o + n + 1 > outlen) return -3;
    memcpy(out + *o, s, n);
    *o += n;
    out[*o] = '\0';
    return 0;
}

int loom__router_url_for(const loom__router *rt, const char *name, const char *const *params,
                         uint32_t n, char *out, size_t outlen)
{
    const char *pattern = NULL;
    for (size_t i = 0; i < rt->nnames; i++)
        if (strcmp(rt->names[i].name, name) == 0) pattern = rt->names[i].pattern;
    if (!pattern) return -1;
    size_t o = 0;
    if (outlen) out[0] = '\0';
    for (const char *p = pattern; *p;) {
        if (*p != '{') {
            const char *e = strchr(p, '{');
            size_t l = e ? (size_t)(e - p) : strlen(p);
            if (put(out, outlen, &o, p, l)) return -3;
            p += l;
            continue;
        }
        int depth = 0;
        const char *e = p;
        for (; *e; e++) {
            if (*e == '{') depth++;
            if (*e == '}' && --depth == 0) break;
        }
        const char *colon = memchr(p, ':', (size_t)(e - p));
        size_t nl = (size_t)((colon ? colon : e) - p - 1);
        const char *val = NULL;
        for (uint32_t k = 0; k < n; k++)
            if (strlen(params[2 * k]) == nl && memcmp(params[2 * k], p + 1, nl) == 0)
                val = params[2 * k + 1];
        if (!val) return -1;
        int tail = colon && e[1] == '\0';
        if (colon) {
            char *x = translate_regex(colon + 1, (size_t)(e - colon - 1));
            regex_t re;
            int ok = x && regcomp(&re, x, REG_EXTENDED | REG_NOSUB) == 0;
            free(x);
            if (!ok) return -2;
            int m = regexec(&re, val, 0, NULL, 0) == 0;
            regfree(&re);
            if (!m) return -2;
        }
        for (const char *v = val; *v; v++) {
            unsigned char c = (unsigned char)*v;
            char enc[4];
            if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                strchr("-._~!$&'()*+,;=:@", c) || (tail && c == '/')) {
                if (put(out, outlen, &o, (const char *)v, 1)) return -3;
            } else {
                snprintf(enc, sizeof enc, "%%%02X", c);
                if (put(out, outlen, &o, enc, 3)) return -3;
            }
        }
        p = e + 1;
    }
    return 0;
}
