/* The pure WebSocket pieces (agent/http/ws.c): the handshake key (RFC 6455's own example),
 * server frame headers at each length boundary, the client frame parser fed every prefix of
 * masked frames, and the frames it must refuse at once with which close code. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "agent/http/ws.h"

static void accept_key(void **state) {
  (void)state;
  char out[29];
  const char *key = "dGhlIHNhbXBsZSBub25jZQ==";
  assert_int_equal(sw_ws_accept_key(key, strlen(key), out), SW_OK);
  assert_string_equal(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="); /* RFC 6455 section 1.3 */
  key = "x3JJHMbDL1EzLkh9GBhXDw=="; /* RFC 6455 section 1.2's second example */
  assert_int_equal(sw_ws_accept_key(key, strlen(key), out), SW_OK);
  assert_string_equal(out, "HSmrc0sMlYUkAGmm5OPpG2HaGWk=");
  static const char *const bad[] = {
      "dGhlIHNhbXBsZSBub25jZQ=",   /* 23 */
      "dGhlIHNhbXBsZSBub25jZQ===", /* 25 */
      "dGhlIHNhbXBsZSBub25jZQAA",  /* 18 bytes, not 16 */
      "dGhlIHNhbXBsZSBub25j?Q==",  /* not base64 */
      "dGhlIHNhbXBsZSBub2=jZQ==",  /* padding inside */
      "",
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    memcpy(out, "untouched", 10);
    assert_int_equal(sw_ws_accept_key(bad[i], strlen(bad[i]), out), SW_EINVAL);
    assert_string_equal(out, "untouched");
  }
  /* the length counts, not a NUL */
  assert_int_equal(sw_ws_accept_key("dGhlIHNhbXBsZSBub25jZQ==xx", 24, out), SW_OK);
  assert_string_equal(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
  assert_int_equal(sw_ws_accept_key("dGhlIHNhbXBsZSBub\0jZQ==", 24, out), SW_EINVAL);
}

static void frame_headers(void **state) {
  (void)state;
  static const struct {
    uint64_t len;
    size_t hl;
    uint8_t bytes[10];
  } k[] = {
      {0, 2, {0x81, 0}},
      {5, 2, {0x81, 5}},
      {125, 2, {0x81, 125}},
      {126, 4, {0x81, 126, 0, 126}},
      {65535, 4, {0x81, 126, 0xff, 0xff}},
      {65536, 10, {0x81, 127, 0, 0, 0, 0, 0, 1, 0, 0}},
      {(uint64_t)1 << 40 | 0x0203, 10, {0x81, 127, 0, 0, 1, 0, 0, 0, 2, 3}},
  };
  for (size_t i = 0; i < sizeof k / sizeof k[0]; i++) {
    uint8_t out[10];
    memset(out, 0xee, sizeof out);
    size_t hl = sw_ws_frame_header(out, SW_WS_TEXT, k[i].len);
    assert_int_equal(hl, k[i].hl);
    assert_memory_equal(out, k[i].bytes, hl);
  }
  uint8_t out[10];
  assert_int_equal(sw_ws_frame_header(out, SW_WS_CLOSE, 2), 2);
  assert_int_equal(out[0], 0x88);
  assert_int_equal(sw_ws_frame_header(out, SW_WS_PONG, 0), 2);
  assert_int_equal(out[0], 0x8a);
}

/* A masked client frame of payload p[0..n) into buf; returns its length. */
static size_t client_frame(uint8_t *buf, int fin, int opcode, const uint8_t *p, size_t n) {
  static const uint8_t mask[4] = {0x37, 0xfa, 0x21, 0x3d};
  size_t hl = sw_ws_frame_header(buf, opcode, n);
  if (!fin) buf[0] &= 0x7f;
  buf[1] |= 0x80;
  memcpy(buf + hl, mask, 4);
  memcpy(buf + hl + 4, p, n);
  sw_ws_unmask(buf + hl + 4, n, mask, 0);
  return hl + 4 + n;
}

static void rfc_example(void **state) {
  (void)state;
  /* RFC 6455 section 5.7: a masked "Hello" */
  uint8_t hello[] = {0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58, 'x'};
  struct sw_ws_frame f;
  assert_int_equal(sw_ws_parse(hello, sizeof hello, &f), SW_WS_COMPLETE); /* 'x' not looked at */
  assert_int_equal(f.opcode, SW_WS_TEXT);
  assert_true(f.fin);
  assert_true(f.masked);
  assert_int_equal(f.off, 6);
  assert_int_equal(f.len, 5);
  sw_ws_unmask(hello + f.off, f.len, f.mask, 0);
  assert_memory_equal(hello + f.off, "Hello", 5);
  /* the same frame unmasked is a server frame: refused from a client */
  const uint8_t plain[] = {0x81, 0x05, 'H', 'e', 'l', 'l', 'o'};
  assert_int_equal(sw_ws_parse(plain, sizeof plain, &f), SW_WS_BAD);
  assert_int_equal(f.code, SW_WS_PROTOCOL_ERROR);
}

static void every_split(void **state) {
  (void)state;
  static const struct {
    int fin, opcode;
    size_t n;
  } k[] = {{1, SW_WS_TEXT, 0},     {1, SW_WS_TEXT, 5},    {1, SW_WS_BINARY, 125},
           {1, SW_WS_TEXT, 126},   {0, SW_WS_TEXT, 300},  {1, SW_WS_CONT, 65535},
           {1, SW_WS_TEXT, 65536}, {1, SW_WS_PING, 0},    {1, SW_WS_PING, 125},
           {1, SW_WS_CLOSE, 2},    {1, SW_WS_PONG, 3}};
  uint8_t *payload = malloc(65536), *buf = malloc(65536 + 14), *copy = malloc(65536);
  assert_non_null(payload);
  assert_non_null(buf);
  assert_non_null(copy);
  for (size_t i = 0; i < 65536; i++) payload[i] = (uint8_t)(i * 7 + 3);
  for (size_t t = 0; t < sizeof k / sizeof k[0]; t++) {
    size_t total = client_frame(buf, k[t].fin, k[t].opcode, payload, k[t].n);
    size_t hl = total - k[t].n;
    struct sw_ws_frame f;
    /* every prefix needs more; once the header is in, where the payload lies is known */
    size_t step = k[t].n > 1000 ? 97 : 1;
    for (size_t len = 0; len < total; len += len < hl + 2 ? 1 : step) {
      int rc = sw_ws_parse(buf, len, &f);
      if (rc != SW_WS_NEED_MORE) fail_msg("frame %zu, %zu of %zu bytes: %d", t, len, total, rc);
      assert_int_equal(f.off, len >= hl ? hl : 0);
      if (len >= hl) assert_int_equal(f.len, k[t].n);
    }
    assert_int_equal(sw_ws_parse(buf, total, &f), SW_WS_COMPLETE);
    assert_int_equal(f.opcode, k[t].opcode);
    assert_int_equal(f.fin, k[t].fin);
    assert_true(f.masked);
    assert_int_equal(f.off, hl);
    assert_int_equal(f.len, k[t].n);
    /* unmasked in pieces of odd sizes it is the payload again */
    memcpy(copy, buf + f.off, f.len);
    for (size_t pos = 0; pos < f.len; pos += 13)
      sw_ws_unmask(copy + pos, f.len - pos < 13 ? f.len - pos : 13, f.mask, pos);
    assert_memory_equal(copy, payload, f.len);
  }
  free(payload);
  free(buf);
  free(copy);
}

static void expect_bad(const uint8_t *b, size_t n, int code, const char *what) {
  struct sw_ws_frame f;
  int rc = sw_ws_parse(b, n, &f);
  if (rc != SW_WS_BAD || f.code != code)
    fail_msg("%s: rc %d code %d, want code %d", what, rc, f.code, code);
  assert_non_null(f.why);
}

static void refused(void **state) {
  (void)state;
  /* each is refused from the bytes given, without waiting for the rest */
  const uint8_t unmasked[] = {0x81, 0x05};
  expect_bad(unmasked, 2, SW_WS_PROTOCOL_ERROR, "unmasked");
  for (int rsv = 0x10; rsv <= 0x40; rsv <<= 1) {
    const uint8_t r[] = {(uint8_t)(0x81 | rsv)};
    expect_bad(r, 1, SW_WS_PROTOCOL_ERROR, "reserved bit");
  }
  static const int unknown[] = {3, 4, 5, 6, 7, 0xb, 0xc, 0xd, 0xe, 0xf};
  for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
    const uint8_t u[] = {(uint8_t)(0x80 | unknown[i])};
    expect_bad(u, 1, SW_WS_PROTOCOL_ERROR, "unknown opcode");
  }
  const uint8_t frag_ping[] = {0x09};
  expect_bad(frag_ping, 1, SW_WS_PROTOCOL_ERROR, "fragmented ping");
  const uint8_t long_ping[] = {0x89, 0x80 | 126, 0, 126};
  expect_bad(long_ping, 2, SW_WS_PROTOCOL_ERROR, "ping over 125 bytes");
  const uint8_t short16[] = {0x82, 0x80 | 126, 0, 125};
  expect_bad(short16, 4, SW_WS_PROTOCOL_ERROR, "16-bit length under 126");
  const uint8_t short64[] = {0x82, 0x80 | 127, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  expect_bad(short64, 10, SW_WS_PROTOCOL_ERROR, "64-bit length under 65536");
  const uint8_t top[] = {0x82, 0x80 | 127, 0x80, 0, 0, 0, 0, 0, 0, 0};
  expect_bad(top, 10, SW_WS_PROTOCOL_ERROR, "64-bit length with the top bit");
  const uint8_t big[] = {0x82, 0x80 | 127, 0, 0, 0, 0, 0, 1, 0, 1};
  expect_bad(big, 10, SW_WS_TOO_BIG, "65537 bytes");
  const uint8_t huge[] = {0x81, 0x80 | 127, 0, 0, 0x10, 0, 0, 0, 0, 0};
  expect_bad(huge, 10, SW_WS_TOO_BIG, "1 TiB");
  /* the limit itself is fine */
  const uint8_t max[] = {0x82, 0x80 | 127, 0, 0, 0, 0, 0, 1, 0, 0, 1, 2, 3, 4};
  struct sw_ws_frame f;
  assert_int_equal(sw_ws_parse(max, sizeof max, &f), SW_WS_NEED_MORE);
  assert_int_equal(f.off, 14);
  assert_int_equal(f.len, 65536);
  /* nothing yet is not bad */
  assert_int_equal(sw_ws_parse(max, 0, &f), SW_WS_NEED_MORE);
  assert_int_equal(f.off, 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(accept_key), cmocka_unit_test(frame_headers),
      cmocka_unit_test(rfc_example), cmocka_unit_test(every_split),
      cmocka_unit_test(refused)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
