/* Unit tests for common/sha256.c: the SHA-extension blocks agree with the portable ones, for
 * random data at every split and alignment; and the FIPS 180-4 vectors. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/sha256.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
void sw__sha256_blocks_portable(uint32_t h[8], const uint8_t *p, size_t n);
int sw__sha256_blocks_fast(uint32_t h[8], const uint8_t *p, size_t n);
#define HAVE_BOTH 1
#endif

static void test_fips_vectors(void **state) {
  (void)state;
  char hex[65];
  sw_sha256_hex("abc", 3, hex);
  assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  sw_sha256_hex("", 0, hex);
  assert_string_equal(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  const char *m = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
  sw_sha256_hex(m, strlen(m), hex);
  assert_string_equal(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  char *a = malloc(1000000);
  memset(a, 'a', 1000000);
  struct sw_sha256 c;
  uint8_t d[32];
  sw_sha256_init(&c);
  for (size_t off = 0; off < 1000000; off += 777) /* odd pieces: the partial-block path too */
    sw_sha256_update(&c, a + off, off + 777 > 1000000 ? 1000000 - off : 777);
  sw_sha256_final(&c, d);
  for (int i = 0; i < 32; i++) snprintf(hex + 2 * i, 3, "%02x", d[i]);
  assert_string_equal(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
  free(a);
}

static void test_fast_blocks_equal_portable(void **state) {
  (void)state;
#ifdef HAVE_BOTH
  uint8_t buf[64 * 40 + 16];
  srand(7);
  for (size_t i = 0; i < sizeof buf; i++) buf[i] = (uint8_t)rand();
  uint32_t h0[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
  int ran = 0;
  for (size_t align = 0; align < 16; align += 3)
    for (size_t n = 1; n <= 40; n += 7) {
      uint32_t a[8], b[8];
      memcpy(a, h0, sizeof a);
      memcpy(b, h0, sizeof b);
      sw__sha256_blocks_portable(a, buf + align, n);
      ran = sw__sha256_blocks_fast(b, buf + align, n);
      if (ran) assert_memory_equal(a, b, sizeof a);
    }
  if (!ran) print_message("this CPU has no SHA extensions: only the portable blocks were checked\n");
#else
  skip();
#endif
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_fips_vectors),
      cmocka_unit_test(test_fast_blocks_equal_portable),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
