/* Unit tests for common/sha1.c: the FIPS 180 / RFC 3174 vectors (the million 'a' one too),
 * lengths on each side of the padding boundaries, and the same digest whatever the pieces the
 * input is fed in. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/sha1.h"

static void hex(const uint8_t d[20], char out[41]) {
  for (int i = 0; i < 20; i++) snprintf(out + 2 * i, 3, "%02x", d[i]);
}

static void expect(const void *p, size_t n, const char *want) {
  uint8_t d[20];
  char h[41];
  sw_sha1(p, n, d);
  hex(d, h);
  if (strcmp(h, want)) fail_msg("sha1 of %zu bytes: %s, want %s", n, h, want);
}

static void test_vectors(void **state) {
  (void)state;
  expect("abc", 3, "a9993e364706816aba3e25717850c26c9cd0d89d");
  expect("", 0, "da39a3ee5e6b4b0d3255bfef95601890afd80709");
  expect(NULL, 0, "da39a3ee5e6b4b0d3255bfef95601890afd80709");
  const char *m = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
  expect(m, strlen(m), "84983e441c3bd26ebaae4aa1f95129e5e54670f1");
  m = "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrl"
      "mnopqrsmnopqrstnopqrstu";
  expect(m, strlen(m), "a49b2446a02c645bf419f995b67091253a04a259");
  /* RFC 3174 TEST4: 80 bytes fed ten times */
  const char *t4 = "0123456701234567012345670123456701234567012345670123456701234567";
  struct sw_sha1 c;
  uint8_t d[20];
  char h[41];
  sw_sha1_init(&c);
  for (int i = 0; i < 10; i++) sw_sha1_update(&c, t4, strlen(t4));
  sw_sha1_final(&c, d);
  hex(d, h);
  assert_string_equal(h, "dea356a2cddd90c7a7ecedc5ebb563934f460452");
}

static void test_million_a(void **state) {
  (void)state;
  char *a = malloc(1000000);
  assert_non_null(a);
  memset(a, 'a', 1000000);
  expect(a, 1000000, "34aa973cd4c4daa4f61eeb2bdbad27316534016f");
  struct sw_sha1 c;
  uint8_t d[20];
  char h[41];
  sw_sha1_init(&c);
  for (size_t off = 0; off < 1000000; off += 777) /* odd pieces: the partial-block path too */
    sw_sha1_update(&c, a + off, off + 777 > 1000000 ? 1000000 - off : 777);
  sw_sha1_final(&c, d);
  hex(d, h);
  assert_string_equal(h, "34aa973cd4c4daa4f61eeb2bdbad27316534016f");
  free(a);
}

/* 55 bytes still fit the length in the last block, 56 need another; likewise 119/120. */
static void test_padding_boundaries(void **state) {
  (void)state;
  static const struct {
    size_t n;
    const char *digest;
  } k[] = {{55, "cef734ba81a024479e09eb5a75b6ddae62e6abf1"},
           {56, "901305367c259952f4e7af8323f480d59f81335b"},
           {63, "0ddc4e0cccd9a12850deb5abb0853a4425559fec"},
           {64, "bb2fa3ee7afb9f54c6dfb5d021f14b1ffe40c163"},
           {119, "4300320394f7ee239bcdce7d3b8bcee173a0cd5c"},
           {120, "ceb2821639c4b6dcb10bce0e522ca2e608ce056d"}};
  char x[128];
  memset(x, 'x', sizeof x);
  for (size_t i = 0; i < sizeof k / sizeof k[0]; i++) expect(x, k[i].n, k[i].digest);
}

static void test_any_split(void **state) {
  (void)state;
  uint8_t msg[200], whole[20], parts[20];
  for (size_t i = 0; i < sizeof msg; i++) msg[i] = (uint8_t)(i * 37 + 11);
  for (size_t len = 0; len <= sizeof msg; len += 13) {
    sw_sha1(msg, len, whole);
    for (size_t step = 1; step <= 70; step += 3) {
      struct sw_sha1 c;
      sw_sha1_init(&c);
      for (size_t off = 0; off < len; off += step)
        sw_sha1_update(&c, msg + off, off + step > len ? len - off : step);
      sw_sha1_final(&c, parts);
      assert_memory_equal(whole, parts, 20);
    }
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_vectors),
      cmocka_unit_test(test_million_a),
      cmocka_unit_test(test_padding_boundaries),
      cmocka_unit_test(test_any_split),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
