/* Unit tests for common/text.c: plural suffixes, sizes for people, and control characters made
 * visible (what a terminal must never receive raw from log content). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "common/text.h"

static void test_plural(void **state) {
  (void)state;
  assert_string_equal(sw_plural(0), "s");
  assert_string_equal(sw_plural(1), "");
  assert_string_equal(sw_plural(3), "s");
}

static void test_human_bytes(void **state) {
  (void)state;
  char b[SW_HUMAN_BYTES_LEN];
  assert_string_equal(sw_human_bytes(0, b), "0 B");
  assert_string_equal(sw_human_bytes(1023, b), "1023 B");
  assert_string_equal(sw_human_bytes(1024, b), "1.0 KiB");
  assert_string_equal(sw_human_bytes(253767, b), "247.8 KiB");
  assert_string_equal(sw_human_bytes(268435456, b), "256.0 MiB");
  assert_string_equal(sw_human_bytes(1610612736, b), "1.5 GiB");
  assert_string_equal(sw_human_bytes(2199023255552.0, b), "2.0 TiB");
  assert_string_equal(sw_human_bytes(-5, b), "0 B");
}

/* Escapes in from an exactly sized heap copy, so ASan catches a read past n. */
static char *visible(const char *in, size_t n, int flags) {
  char *copy = malloc(n ? n : 1);
  assert_non_null(copy);
  memcpy(copy, in, n);
  struct sw_buf b;
  sw_buf_init(&b, 1 << 20);
  assert_int_equal(sw_buf_put_visible(&b, copy, n, flags), SW_OK);
  assert_int_equal(sw_buf_putc(&b, '\0'), SW_OK);
  free(copy);
  return b.data;
}

struct vcase {
  const char *in;
  size_t n; /* 0: strlen */
  int flags;
  const char *out;
};

static void test_visible(void **state) {
  (void)state;
  static const struct vcase cases[] = {
      {"plain text, 100% ascii", 0, 0, "plain text, 100% ascii"},
      {"clear\x1b[2Jscreen", 0, 0, "clear\\e[2Jscreen"},
      {"\x1b]0;pwned title\x07", 0, 0, "\\e]0;pwned title\\a"},
      {"\x1b]52;c;ZXZpbA==\x1b\\", 0, 0, "\\e]52;c;ZXZpbA==\\e\\"},
      {"ok\rFAKE", 0, 0, "ok\\rFAKE"},
      {"abc\b\b\bxyz", 0, 0, "abc\\b\\b\\bxyz"},
      {"csi\xc2\x9b" "31m", 0, 0, "csi\\u009b31m"},          /* C1 CSI as UTF-8 */
      {"del\x7f", 0, 0, "del\\x7f"},
      {"nul\0mid", 7, 0, "nul\\x00mid"},
      {"a\nb\tc", 0, 0, "a\\nb\\tc"},                          /* file names, labels */
      {"a\nb\tc", 0, SW_VISIBLE_KEEP_NEWLINES, "a\nb\tc"},     /* multi-line records */
      {"a\r\nb", 0, SW_VISIBLE_KEEP_NEWLINES, "a\\r\nb"},
      {"caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80", 0, 0,
       "caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80"}, /* valid UTF-8 stays */
      {"bad\xff byte", 0, 0, "bad\\xff byte"},
      {"cut\xe6\x97", 0, 0, "cut\\xe6\\x97"},                   /* truncated sequence */
      {"over\xc0\xaf", 0, 0, "over\\xc0\\xaf"},                 /* overlong '/' */
      {"sur\xed\xa0\x80", 0, 0, "sur\\xed\\xa0\\x80"},          /* UTF-16 surrogate */
      {"rtl\xe2\x80\xaegnp.exe", 0, 0, "rtl\\u202egnp.exe"},    /* bidi override */
      {"iso\xe2\x81\xa6x\xe2\x81\xa9", 0, 0, "iso\\u2066x\\u2069"},
      {"back\\slash", 0, 0, "back\\slash"},
      {"", 0, 0, ""},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    const struct vcase *c = &cases[i];
    char *got = visible(c->in, c->n ? c->n : strlen(c->in), c->flags);
    if (strcmp(got, c->out)) fail_msg("case %zu: got \"%s\", want \"%s\"", i, got, c->out);
    free(got);
  }
}

/* Whatever the bytes, the output holds no byte a terminal acts on. */
static void test_visible_never_emits_controls(void **state) {
  (void)state;
  unsigned char in[4096];
  uint32_t x = 12345;
  for (int round = 0; round < 200; round++) {
    for (size_t i = 0; i < sizeof in; i++) {
      x = x * 1103515245u + 12345u;
      in[i] = (unsigned char)(x >> 16);
    }
    char *got = visible((const char *)in, sizeof in, round & 1 ? SW_VISIBLE_KEEP_NEWLINES : 0);
    for (const unsigned char *p = (const unsigned char *)got; *p; p++) {
      assert_false(*p < 0x20 && !(round & 1 && (*p == '\n' || *p == '\t')));
      assert_false(*p == 0x7f);
      assert_false(p[0] == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f);
    }
    free(got);
  }
}

static void test_listen_split(void **state) {
  (void)state;
  char host[16];
  unsigned port;
  assert_int_equal(sw_listen_split("127.0.0.1:2020", host, sizeof host, &port), 0);
  assert_string_equal(host, "127.0.0.1");
  assert_int_equal(port, 2020);
  assert_int_equal(sw_listen_split("[::1]:0", host, sizeof host, &port), 0);
  assert_string_equal(host, "::1");
  assert_int_equal(port, 0);
  assert_int_equal(sw_listen_split(":80", host, sizeof host, &port), 0); /* every address */
  assert_string_equal(host, "");
  const char *bad[] = {"", "127.0.0.1", "127.0.0.1:", "::1:80", "[::1]80", "h:65536", "h:+80",
                       "h:80x", "h :80", "averyveryverylonghostname:80"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    assert_int_equal(sw_listen_split(bad[i], host, sizeof host, &port), -1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_plural),
      cmocka_unit_test(test_human_bytes),
      cmocka_unit_test(test_visible),
      cmocka_unit_test(test_listen_split),
      cmocka_unit_test(test_visible_never_emits_controls),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
