/* The client's cookie jar (core/client/cookies.c) by its public API: RFC
 * 6265 domain and path matching, host-only cookies, public suffixes (from
 * Debian's list through libpsl), IP hosts and the unsafe flag, Secure,
 * Max-Age and Expires, the cookie prefixes, dates, limits, and the Netscape
 * file round trip. */
#include "check.h"
#include "client/cookies.h"

#include <loom/client.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The Cookie header the jar sends to url, or "" (static buffer). */
static const char *sent(loom_cookie_jar *jar, const char *url)
{
    static char buf[4096];
    char *h = loom_cookie_jar_header(jar, url);
    snprintf(buf, sizeof buf, "%s", h ? h : "");
    free(h);
    return buf;
}

#define SENT(jar, url, want)                                                                       \
    do {                                                                                           \
        const char *got_ = sent(jar, url);                                                         \
        CHECK(strcmp(got_, want) == 0, "%s: sent '%s', want '%s'", url, got_, want);               \
    } while (0)

#define SET(jar, url, sc, want)                                                                    \
    do {                                                                                           \
        int rc_ = loom_cookie_jar_set(jar, url, sc);                                               \
        CHECK(rc_ == want, "set '%s' from %s: %d, want %d", sc, url, rc_, want);                   \
    } while (0)

static void domains(void)
{
    loom_cookie_jar *jar = loom_cookie_jar_new(0);
    SET(jar, "http://www.example.com/", "host=1", 1);
    SET(jar, "http://www.example.com/", "dom=2; Domain=example.com", 1);
    SET(jar, "http://www.example.com/", "dot=3; Domain=.EXAMPLE.com", 1);
    SET(jar, "http://www.example.com/", "other=4; Domain=example.org", 0);
    SET(jar, "http://www.example.com/", "sub=5; Domain=a.www.example.com", 0);
    SENT(jar, "http://www.example.com/", "host=1; dom=2; dot=3");
    SENT(jar, "http://a.example.com/", "dom=2; dot=3"); /* host-only stays home */
    SENT(jar, "http://example.com/", "dom=2; dot=3");   /* the domain itself */
    SENT(jar, "http://badexample.com/", "");            /* not a suffix match */
    SENT(jar, "http://www.example.com.evil.net/", "");
    /* public suffixes (ICANN and private sections of the list) */
    SET(jar, "http://www.example.co.uk/", "a=1; Domain=co.uk", 0);
    SET(jar, "http://user.github.io/", "b=1; Domain=github.io", 0);
    SET(jar, "http://www.example.co.uk/", "c=1; Domain=example.co.uk", 1);
    SENT(jar, "http://shop.example.co.uk/", "c=1");
    SENT(jar, "http://other.co.uk/", "");
    /* a public suffix as the request's own host: a host-only cookie */
    SET(jar, "http://co.uk/", "d=1; Domain=co.uk", 1);
    SENT(jar, "http://co.uk/", "d=1");
    SENT(jar, "http://x.co.uk/", "");
    loom_cookie_jar_free(jar);
}

static void ips(void)
{
    loom_cookie_jar *jar = loom_cookie_jar_new(0);
    SET(jar, "http://127.0.0.1/", "a=1", 0); /* aiohttp: refused unless unsafe */
    SET(jar, "http://[::1]:8080/", "a=1", 0);
    CHECK(loom_cookie_jar_count(jar) == 0, "IP cookies refused");
    loom_cookie_jar_free(jar);
    jar = loom_cookie_jar_new(LOOM_COOKIE_JAR_UNSAFE);
    SET(jar, "http://127.0.0.1/", "a=1", 1);
    SET(jar, "http://127.0.0.1/", "b=1; Domain=127.0.0.1", 1);
    SET(jar, "http://127.0.0.1/", "c=1; Domain=0.0.1", 0); /* never the neighbours */
    SET(jar, "http://10.1.2.3/", "n=1; Domain=1.2.3", 0);
    SET(jar, "http://[::1]/", "v6=1", 1);
    SENT(jar, "http://127.0.0.1:9999/x", "a=1; b=1");
    SENT(jar, "http://127.0.0.2/", "");
    SENT(jar, "http://[::1]/", "v6=1");
    loom_cookie_jar_free(jar);
}

static void paths(void)
{
    loom_cookie_jar *jar = loom_cookie_jar_new(0);
    SET(jar, "http://h.example/docs/page", "def=1", 1); /* default path /docs */
    SET(jar, "http://h.example/", "root=1; Path=/", 1);
    SET(jar, "http://h.example/", "deep=1; Path=/docs/api", 1);
    SET(jar, "http://h.example/", "slash=1; Path=/docs/", 1);
    SET(jar, "http://h.example/", "bad=1; Path=relative", 1); /* default path: / */
    SENT(jar, "http://h.example/docs/api/v1?q=1", "deep=1; slash=1; def=1; root=1; bad=1");
    SENT(jar, "http://h.example/docs", "def=1; root=1; bad=1");
    SENT(jar, "http://h.example/docsx", "root=1; bad=1");
    SENT(jar, "http://h.example/", "root=1; bad=1");
    /* same name, domain and path: replaced */
    SET(jar, "http://h.example/", "root=2; Path=/", 1);
    SENT(jar, "http://h.example/", "root=2; bad=1");
    loom_cookie_jar_free(jar);
}

static void secure_and_ages(void)
{
    loom_cookie_jar *jar = loom_cookie_jar_new(0);
    SET(jar, "http://s.example/", "s=1; Secure", 0); /* Secure only set over https */
    SET(jar, "https://s.example/", "s=2; Secure", 1);
    SENT(jar, "https://s.example/", "s=2");
    SENT(jar, "http://s.example/", "");
    SET(jar, "http://s.example/", "s=3", 0); /* plain http cannot shadow it */
    SET(jar, "https://s.example/", "__Secure-a=1", 0);
    SET(jar, "https://s.example/", "__Secure-a=1; Secure", 1);
    SET(jar, "https://s.example/", "__Host-b=1; Secure; Path=/; Domain=s.example", 0);
    SET(jar, "https://s.example/", "__Host-b=1; Secure; Path=/", 1);
    SET(jar, "https://s.example/", "gone=1; Max-Age=0", 1);
    SET(jar, "https://s.example/", "old=1; Expires=Wed, 21 Oct 2015 07:28:00 GMT", 1);
    SET(jar, "https://s.example/", "later=1; Expires=Wed, 21 Oct 2099 07:28:00 GMT", 1);
    SET(jar, "https://s.example/", "maxwins=1; Max-Age=100; Expires=Wed, 21 Oct 2015 07:28:00 GMT",
        1);
    SENT(jar, "https://s.example/", "s=2; __Secure-a=1; __Host-b=1; later=1; maxwins=1");
    /* a later Max-Age=0 removes a cookie */
    SET(jar, "https://s.example/", "later=x; Max-Age=-1", 1);
    SENT(jar, "https://s.example/", "s=2; __Secure-a=1; __Host-b=1; maxwins=1");
    SET(jar, "https://s.example/", "novalue", 0);
    SET(jar, "https://s.example/", "=anon", 0);
    loom_cookie_jar_free(jar);
}

static void dates(void)
{
    int64_t t = 0;
    CHECK(loom__cookie_date("Sun, 06 Nov 1994 08:49:37 GMT", 29, &t) == 0 && t == 784111777,
          "IMF-fixdate %lld", (long long)t);
    const char *rfc850 = "Sunday, 06-Nov-94 08:49:37 GMT";
    CHECK(loom__cookie_date(rfc850, strlen(rfc850), &t) == 0 && t == 784111777, "RFC 850 %lld",
          (long long)t);
    const char *asct = "Sun Nov  6 08:49:37 1994";
    CHECK(loom__cookie_date(asct, strlen(asct), &t) == 0 && t == 784111777, "asctime %lld",
          (long long)t);
    CHECK(loom__cookie_date("tomorrow", 8, &t) == -1, "not a date");
    CHECK(loom__cookie_date("Sun, 32 Nov 1994 08:49:37 GMT", 29, &t) == -1, "day 32");
}

static void limits(void)
{
    loom_cookie_jar *jar = loom_cookie_jar_new(0);
    char sc[5000];
    memset(sc, 'v', sizeof sc);
    memcpy(sc, "big=", 4);
    sc[sizeof sc - 1] = 0;
    SET(jar, "http://l.example/", sc, 0); /* over 4096 bytes */
    for (int i = 0; i < 60; i++) {
        char c[32];
        snprintf(c, sizeof c, "c%d=%d", i, i);
        SET(jar, "http://l.example/", c, 1);
    }
    CHECK(loom_cookie_jar_count(jar) == 50, "50 per domain, got %zu", loom_cookie_jar_count(jar));
    CHECK(strstr(sent(jar, "http://l.example/"), "c0=") == NULL, "the oldest went first");
    loom_cookie_jar_free(jar);
}

static void file_round_trip(void)
{
    char path[] = "/tmp/loom-jar-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0, "mkstemp");
    close(fd);
    loom_cookie_jar *jar = loom_cookie_jar_new(0);
    SET(jar, "https://f.example/app/x", "a=1; HttpOnly", 1);
    SET(jar, "https://f.example/", "b=2; Domain=f.example; Secure; Max-Age=3600", 1);
    char err[256];
    CHECK(loom_cookie_jar_save(jar, path, err, sizeof err) == 0, "save: %s", err);
    loom_cookie_jar_free(jar);
    FILE *f = fopen(path, "a"); /* what curl writes, and junk */
    fputs("# comment\n.curl.example\tTRUE\t/\tFALSE\t0\tc\t3\nnot a cookie line\n"
          "old.example\tFALSE\t/\tFALSE\t1000\told\tx\n",
          f);
    fclose(f);
    jar = loom_cookie_jar_new(0);
    long n = loom_cookie_jar_load(jar, path, err, sizeof err);
    CHECK(n == 3, "loaded %ld (%s)", n, err);
    SENT(jar, "https://f.example/app/y", "a=1; b=2");
    SENT(jar, "http://f.example/app/y", "a=1"); /* still Secure */
    SENT(jar, "https://www.f.example/app/y", "b=2");
    SENT(jar, "http://www.curl.example/", "c=3");
    loom_cookie_jar_free(jar);
    unlink(path);
    jar = loom_cookie_jar_new(0);
    CHECK(loom_cookie_jar_load(jar, "/nonexistent/jar.txt", err, sizeof err) == 0,
          "a missing file is an empty jar");
    CHECK(loom_cookie_jar_load(jar, "/", err, sizeof err) == -1 && strstr(err, "/"),
          "a directory is an error naming it: %s", err);
    CHECK(loom_cookie_jar_save(jar, "/nonexistent/dir/jar.txt", err, sizeof err) == -1 &&
              strstr(err, "/nonexistent/dir/"),
          "unwritable: %s", err);
    loom_cookie_jar_free(jar);
}

int main(void)
{
    domains();
    ips();
    paths();
    secure_and_ages();
    dates();
    limits();
    file_round_trip();
    return check_report();
}
