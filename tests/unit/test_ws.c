/* Unit tests of the WebSocket codec pieces (core/ws): UTF-8 across splits,
 * the handshake values, frame headers and masking, and permessage-deflate's
 * negotiation, round trip and inflate limit. The protocol rules over whole
 * connections are the corpus's (tests/conformance/ws). */
#include "check.h"
#include "ws/deflate.h"
#include "ws/frame.h"
#include "ws/handshake.h"
#include "ws/utf8.h"

#include <stdlib.h>
#include <string.h>

/* Valid or not as a whole, and the same at every split into two calls. */
static void utf8_case(const char *s, size_t n, int valid)
{
    uint8_t st = 0;
    int ok = loom__utf8_check(&st, s, n) == 0 && st == LOOM__UTF8_OK;
    CHECK(ok == valid, "%s as a whole: %d", valid ? "valid" : "invalid", ok);
    for (size_t k = 0; k <= n; k++) {
        st = 0;
        int r1 = loom__utf8_check(&st, s, k);
        int r2 = r1 ? -1 : loom__utf8_check(&st, s + k, n - k);
        int okk = r1 == 0 && r2 == 0 && st == LOOM__UTF8_OK;
        CHECK(okk == valid, "split at %zu of %zu: %d", k, n, okk);
    }
}

static void test_utf8(void)
{
    utf8_case("", 0, 1);
    utf8_case("plain ASCII, more than eight bytes long", 39, 1);
    utf8_case("\xc3\xa9t\xc3\xa9", 6, 1); /* été */
    utf8_case("\xe2\x82\xac", 3, 1);      /* € */
    utf8_case("\xf0\x9f\x98\x80", 4, 1);  /* U+1F600 */
    utf8_case("\xf4\x8f\xbf\xbf", 4, 1);  /* U+10FFFF */
    utf8_case("\xed\x9f\xbf", 3, 1);      /* U+D7FF */
    utf8_case("\xee\x80\x80", 3, 1);      /* U+E000 */
    utf8_case("\xc0\x80", 2, 0);          /* overlong NUL */
    utf8_case("\xc1\xbf", 2, 0);          /* overlong */
    utf8_case("\xe0\x9f\xbf", 3, 0);      /* overlong 3-byte */
    utf8_case("\xf0\x8f\xbf\xbf", 4, 0);  /* overlong 4-byte */
    utf8_case("\xed\xa0\x80", 3, 0);      /* U+D800 */
    utf8_case("\xed\xbf\xbf", 3, 0);      /* U+DFFF */
    utf8_case("\xf4\x90\x80\x80", 4, 0);  /* U+110000 */
    utf8_case("\xf5\x80\x80\x80", 4, 0);
    utf8_case("\xff", 1, 0);
    utf8_case("\x80", 1, 0);     /* a lone continuation */
    utf8_case("\xe2\x82", 2, 0); /* cut short */
    utf8_case("abcdefgh\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5", 19, 1); /* κόσμε */
    utf8_case("abcdefghijklmnop\xe2\x28\xa1", 19, 0);
}

static void test_handshake(void)
{
    char acc[29];
    CHECK(loom__ws_accept_value("dGhlIHNhbXBsZSBub25jZQ==", 24, acc) == 0, "accept");
    CHECK(strcmp(acc, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=") == 0, "RFC 6455 §1.3: %s", acc);
    CHECK(loom__ws_key_valid("dGhlIHNhbXBsZSBub25jZQ==", 24), "valid key");
    CHECK(!loom__ws_key_valid("dGhlIHNhbXBsZSBub25jZQ=", 23), "short key");
    CHECK(!loom__ws_key_valid("dGhlIHNhbXBsZSBub25jZR==", 24), "bits past 16 bytes");
    CHECK(!loom__ws_key_valid("dGhlIHNhbXBsZSBub25j*Q==", 24), "bad character");
    char k[25];
    CHECK(loom__ws_new_key(k) == 0 && loom__ws_key_valid(k, 24), "new key %s", k);
    CHECK(loom__ws_list_has("keep-alive, Upgrade", 19, "upgrade"), "list");
    CHECK(!loom__ws_list_has("keep-alive, Upgrades", 20, "upgrade"), "whole tokens");
    char p[64];
    CHECK(loom__ws_pick_protocol("chat, superchat", 15, "superchat, chat", p, sizeof p) == 9 &&
              strcmp(p, "superchat") == 0,
          "our preference wins: %s", p);
    CHECK(loom__ws_pick_protocol("Chat", 4, "chat", p, sizeof p) == 0, "case-sensitive");
}

static void test_frames(void)
{
    uint8_t h[LOOM__WS_HEAD_MAX];
    CHECK(loom__ws_frame_head(h, 1, 0, 1, 5, NULL) == 2 && h[0] == 0x81 && h[1] == 5, "small");
    CHECK(loom__ws_frame_head(h, 1, 1, 2, 126, NULL) == 4 && h[0] == 0xc2 && h[1] == 126 &&
              h[2] == 0 && h[3] == 126,
          "16-bit");
    CHECK(loom__ws_frame_head(h, 0, 0, 0, 65536, NULL) == 10 && h[0] == 0 && h[1] == 127 &&
              h[7] == 1 && h[8] == 0,
          "64-bit");
    uint8_t key[4] = {1, 2, 3, 4};
    CHECK(loom__ws_frame_head(h, 1, 0, 9, 0, key) == 6 && h[1] == 0x80 && h[5] == 4, "mask");
    uint8_t src[37], a[37], b[37];
    for (int i = 0; i < 37; i++) src[i] = (uint8_t)(i * 7);
    loom__ws_mask(a, src, 37, key, 0);
    /* In two pieces at an odd position: the same bytes. */
    loom__ws_mask(b, src, 3, key, 0);
    loom__ws_mask(b + 3, src + 3, 34, key, 3);
    int same = memcmp(a, b, 37) == 0;
    for (int i = 0; i < 37; i++) same &= a[i] == (uint8_t)(src[i] ^ key[i % 4]);
    CHECK(same, "masking at any offset");
    CHECK(loom__ws_close_code_ok(1000) && loom__ws_close_code_ok(1014) &&
              loom__ws_close_code_ok(3000) && loom__ws_close_code_ok(4999),
          "valid codes");
    CHECK(!loom__ws_close_code_ok(999) && !loom__ws_close_code_ok(1004) &&
              !loom__ws_close_code_ok(1005) && !loom__ws_close_code_ok(1006) &&
              !loom__ws_close_code_ok(1015) && !loom__ws_close_code_ok(2999) &&
              !loom__ws_close_code_ok(5000),
          "invalid codes");
}

static void accept_case(const char *offer, const loom__ws_pmd_cfg *cfg, const char *want)
{
    loom__ws_pmd p;
    char resp[200] = "";
    int ok = loom__ws_pmd_accept(offer, strlen(offer), cfg, &p, resp, sizeof resp);
    if (!want)
        CHECK(!ok, "'%s' declined (got '%s')", offer, resp);
    else
        CHECK(ok && strcmp(resp, want) == 0, "'%s' -> '%s' (want '%s')", offer, resp, want);
}

static void test_pmd(void)
{
    loom__ws_pmd_cfg on = {1, 0, 0}, take = {1, 1, 0}, off = {0, 0, 0}, small = {1, 1, 10};
    const char *both = "permessage-deflate; server_no_context_takeover; client_no_context_takeover";
    accept_case("permessage-deflate", &on, both);
    accept_case("permessage-deflate; client_max_window_bits", &on, both);
    accept_case("permessage-deflate", &take, "permessage-deflate");
    accept_case("permessage-deflate", &off, NULL);
    accept_case("x-webkit-deflate-frame", &on, NULL);
    accept_case("permessage-deflate; server_max_window_bits=10", &take,
                "permessage-deflate; server_max_window_bits=10");
    accept_case("permessage-deflate", &small, "permessage-deflate; server_max_window_bits=10");
    accept_case("permessage-deflate; server_max_window_bits=8", &on, NULL);
    accept_case("permessage-deflate; server_max_window_bits=8, permessage-deflate", &on, both);
    accept_case("permessage-deflate; foo", &on, NULL);
    accept_case("permessage-deflate; server_max_window_bits=016", &on, NULL);
    accept_case("permessage-deflate; client_max_window_bits=\"12\"", &on, both);
    accept_case("permessage-deflate; server_no_context_takeover; server_no_context_takeover", &on,
                NULL);
    loom__ws_pmd a;
    char err[128];
    const char *ans = "permessage-deflate; client_max_window_bits=10";
    CHECK(loom__ws_pmd_answer(ans, strlen(ans), &take, &a, err, sizeof err) == 0 && a.on &&
              a.client_bits == 10,
          "answer");
    ans = "permessage-deflate; client_max_window_bits=8";
    CHECK(loom__ws_pmd_answer(ans, strlen(ans), &take, &a, err, sizeof err) == -1, "8 refused");
    ans = "permessage-deflate; mystery";
    CHECK(loom__ws_pmd_answer(ans, strlen(ans), &take, &a, err, sizeof err) == -1, "unknown");
    CHECK(loom__ws_pmd_answer("", 0, &take, &a, err, sizeof err) == 0 && !a.on, "none");

    /* Round trips, both roles, shared (reset) and own (context) streams. */
    for (int client = 0; client < 2; client++)
        for (int keep = 0; keep < 2; keep++) {
            loom__ws_pmd p = {1, (uint8_t)!keep, (uint8_t)!keep, 15, 15};
            loom__ws_z *mine = NULL, *theirs = NULL;
            for (int round = 0; round < 3; round++) {
                char msg[3000];
                for (size_t i = 0; i < sizeof msg; i++) msg[i] = (char)("abcab"[i % 5] + round);
                loom__buf z = {0}, out = {0};
                CHECK(loom__ws_z_compress(&mine, &p, client, msg, sizeof msg, &z) == 0, "deflate");
                CHECK(z.len < sizeof msg / 4, "compressed to %zu", z.len);
                CHECK(loom__ws_z_inflate(&theirs, &p, !client, z.data, z.len, &out, 1 << 20) == 0,
                      "inflate");
                CHECK(out.len == sizeof msg && memcmp(out.data, msg, sizeof msg) == 0,
                      "round trip %d/%d/%d", client, keep, round);
                loom__buf_free(&z);
                loom__buf_free(&out);
            }
            loom__ws_z_free(mine);
            loom__ws_z_free(theirs);
        }
    /* A bomb: 10 MB of zeros to ~10 KB, inflated with a 1 MB limit. */
    loom__ws_pmd p = {1, 1, 1, 15, 15};
    size_t big = 10u << 20;
    char *zeros = calloc(1, big);
    loom__buf z = {0}, out = {0};
    CHECK(zeros && loom__ws_z_compress(NULL, &p, 1, zeros, big, &z) == 0, "bomb made");
    CHECK(loom__ws_z_inflate(NULL, &p, 0, z.data, z.len, &out, 1 << 20) == -2, "bomb stopped");
    CHECK(out.cap <= (2u << 20), "bounded memory: %zu", out.cap);
    CHECK(loom__ws_z_inflate(NULL, &p, 0, "\xff\xff\xff", 3, &out, 1 << 20) == -1, "garbage");
    free(zeros);
    loom__buf_free(&z);
    loom__buf_free(&out);
    loom__ws_z_thread_free();
}

int main(void)
{
    test_utf8();
    test_handshake();
    test_frames();
    test_pmd();
    return check_report();
}
