/* UTF-8 validation that can stop anywhere: a text message arrives in
 * frames and reads of any size, and RFC 6455 §8.1 wants it failed as soon
 * as its bytes cannot be UTF-8 (RFC 3629: no overlong forms, no surrogates,
 * nothing above U+10FFFF). */
#ifndef LOOM_WS_UTF8_H
#define LOOM_WS_UTF8_H

#include <stddef.h>
#include <stdint.h>

#define LOOM__UTF8_OK 0 /* the state between whole characters */

/* Checks `n` more bytes, continuing from *state (LOOM__UTF8_OK at the start
 * of a text). Returns 0 while the bytes so far can still be UTF-8 (a
 * character may be cut at the end: *state says so), -1 as soon as they
 * cannot. Text is complete and valid when the last call returned 0 with
 * *state == LOOM__UTF8_OK. */
int loom__utf8_check(uint8_t *state, const void *p, size_t n);

#endif
