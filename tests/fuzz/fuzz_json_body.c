/* fuzz_json_body: JSON request bodies through the host's JSON entry points
 * (loom_json_parse and the read-only accessors of the plugin ABI table, on a
 * request as a handler sees it), as a plugin walks a body it was sent.
 *
 * Input: the body.
 *
 * Invariants: no sanitizer report; a body that parses is walked entirely
 * through the accessors (the walk agrees with the sizes); its compact dump
 * parses again to an equal value; the parsed values are released with the
 * request. */
#include <jansson.h>
#include <string.h>

#include "fuzz_common.h"
#include "plugin/host.h"

static const loom_host_api *api = &loom__api_table;

static void walk(loom_req *r, const loom_json *j, int depth)
{
    FUZZ_CHECK(depth < 4096);
    int32_t t = api->json_type(j);
    FUZZ_CHECK(t >= LOOM_JSON_OBJECT && t <= LOOM_JSON_NULL);
    size_t n = api->json_size(j);
    if (t == LOOM_JSON_OBJECT) {
        size_t i = 0;
        const loom_json *v;
        const char *k;
        for (; (k = api->json_key_at(j, i, &v)); i++) {
            FUZZ_CHECK(api->json_get(j, k) == v);
            walk(r, v, depth + 1);
            if (i > 64) break; /* key_at is linear: keep the walk small */
        }
        FUZZ_CHECK(i == n || i == 65);
    } else if (t == LOOM_JSON_ARRAY) {
        for (size_t i = 0; i < n; i++) walk(r, api->json_at(j, i), depth + 1);
        FUZZ_CHECK(api->json_at(j, n) == NULL);
    } else if (t == LOOM_JSON_STRING) {
        size_t len = 0;
        const char *s = api->json_string(j, &len);
        FUZZ_CHECK(s && s[len] == '\0');
    } else {
        FUZZ_CHECK(api->json_string(j, NULL) == NULL);
        (void)api->json_integer(j);
        (void)api->json_real(j);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    loom_req *r = loom__req_new();
    FUZZ_CHECK(r);
    loom__rctx *x = loom__arena_alloc(&r->arena, sizeof *x);
    memset(x, 0, sizeof *x);
    r->host_data = x;
    /* The body as the parser leaves it: an owned buffer of exactly its bytes. */
    loom__buf_append(&r->body, data, size);
    const loom_json *j = NULL;
    char err[200];
    if (api->json_parse(r, r->body.data ? r->body.data : "", r->body.len, &j, err, sizeof err) ==
        LOOM_OK) {
        FUZZ_CHECK(j && x->njsons == 1);
        walk(r, j, 0);
        size_t dl = 0;
        const char *dump = api->json_dump(r, j, &dl);
        if (dump) {
            FUZZ_CHECK(strlen(dump) == dl);
            const loom_json *j2 = NULL;
            FUZZ_CHECK(api->json_parse(r, dump, dl, &j2, err, sizeof err) == LOOM_OK);
            FUZZ_CHECK(json_equal((json_t *)j, (json_t *)j2));
        }
    } else {
        FUZZ_CHECK(strlen(err) < sizeof err && x->njsons == 0);
    }
    for (size_t i = 0; i < x->njsons; i++) json_decref(x->jsons[i]);
    loom__req_free(r);
    return 0;
}
