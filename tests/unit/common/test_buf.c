/* JSON string escaping (the hot path of every NDJSON output) against a byte-at-a-time
 * reference, with the special byte at every offset of the 16-byte vector steps. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "common/buf.h"

/* The reference: escapes, valid UTF-8 copied, each invalid byte -> U+FFFD. */
static size_t reference(const unsigned char *s, size_t n, char *out, int *invalid) {
  size_t o = 0;
  for (size_t i = 0; i < n;) {
    unsigned char c = s[i];
    if (c == '"' || c == '\\') {
      out[o++] = '\\';
      out[o++] = (char)c;
    } else if (c == '\n') {
      o += (size_t)sprintf(out + o, "\\n");
    } else if (c == '\r') {
      o += (size_t)sprintf(out + o, "\\r");
    } else if (c == '\t') {
      o += (size_t)sprintf(out + o, "\\t");
    } else if (c < 0x20) {
      o += (size_t)sprintf(out + o, "\\u%04x", c);
    } else if (c < 0x80) {
      out[o++] = (char)c;
    } else if (c == 0xC3 && i + 1 < n && (s[i + 1] & 0xC0) == 0x80) { /* the only valid pair used */
      out[o++] = (char)c;
      out[o++] = (char)s[i + 1];
      i += 2;
      continue;
    } else {
      memcpy(out + o, "\xef\xbf\xbd", 3);
      o += 3;
      *invalid = 1;
    }
    i++;
  }
  return o;
}

static void escapes_at_every_offset(void **state) {
  (void)state;
  const char *specials[] = {"\"", "\\", "\n", "\r", "\t", "\x01", "\x1f", "\x7f", "\xc3\xa9", "\xff", "\xc3"};
  unsigned char in[80];
  char want[512];
  struct sw_buf b;
  sw_buf_init(&b, SIZE_MAX);
  for (size_t len = 0; len <= 48; len++)
    for (size_t k = 0; k < sizeof specials / sizeof specials[0]; k++)
      for (size_t at = 0; at <= len; at++) {
        size_t sl = strlen(specials[k]);
        memset(in, 'a', sizeof in);
        memcpy(in + at, specials[k], sl);
        size_t n = len + sl;
        int inv_want = 0, inv_got = 0;
        size_t wl = reference(in, n, want, &inv_want);
        sw_buf_reset(&b);
        assert_int_equal(sw_buf_put_json_str(&b, (const char *)in, n, &inv_got), 0);
        if (b.len != wl || memcmp(b.data, want, wl) != 0)
          fail_msg("special %zu at %zu of %zu: %.*s vs %.*s", k, at, n, (int)b.len, b.data, (int)wl, want);
        assert_int_equal(inv_got, inv_want);
      }
  sw_buf_free(&b);
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(escapes_at_every_offset)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
