/* Unit tests for parsers/jsonflat.c: the members LogQL's `| json` gets, exactly. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "common/buf.h"
#include "parsers/jsonflat.h"

/* "name=value;" per member, in order */
static int collect(void *arg, const char *name, size_t nlen, const char *value, size_t vlen) {
  struct sw_buf *out = arg;
  assert_int_equal(sw_buf_append(out, name, nlen), 0);
  assert_int_equal(sw_buf_putc(out, '='), 0);
  assert_int_equal(sw_buf_append(out, value, vlen), 0);
  assert_int_equal(sw_buf_putc(out, ';'), 0);
  return 0;
}

static int upper(struct sw_buf *out, const char *k, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (sw_buf_putc(out, k[i] >= 'a' && k[i] <= 'z' ? (char)(k[i] - 32) : k[i])) return SW_ENOMEM;
  return 0;
}

static int flat(const char *line, int (*key)(struct sw_buf *, const char *, size_t), char *got, size_t cap) {
  struct sw_buf name, val, out;
  sw_buf_init(&name, SIZE_MAX);
  sw_buf_init(&val, SIZE_MAX);
  sw_buf_init(&out, SIZE_MAX);
  int rc = sw_json_flatten(line, strlen(line), &name, &val, key, collect, &out);
  snprintf(got, cap, "%.*s", (int)out.len, out.data ? out.data : "");
  sw_buf_free(&name);
  sw_buf_free(&val);
  sw_buf_free(&out);
  return rc;
}

static void test_members(void **state) {
  (void)state;
  char got[512];
  assert_int_equal(flat("{\"a\":\"x\",\"n\":1.50,\"t\":true,\"f\":false,\"z\":null,\"arr\":[1,{\"q\":2}],"
                        "\"o\":{\"b\":{\"c\":-3e2},\"d\":\"y\"},\"e\":{}}", NULL, got, sizeof got), 0);
  assert_string_equal(got, "a=x;n=1.50;t=true;f=false;o_b_c=-3e2;o_d=y;");
  /* escapes decoded, in names and values; a surrogate pair; spaces around everything */
  assert_int_equal(flat(" { \"k\\u00e9\" : \"a\\\"b\\\\c\\n\\ud83d\\ude00\" , \"\":\"skipped\" } ", NULL, got, sizeof got), 0);
  assert_string_equal(got, "k\xc3\xa9=a\"b\\c\n\xf0\x9f\x98\x80;");
  /* the key callback shapes every part of the name */
  assert_int_equal(flat("{\"ab\":{\"cd\":\"1\"}}", upper, got, sizeof got), 0);
  assert_string_equal(got, "AB_CD=1;");
  /* an empty object, a string with braces */
  assert_int_equal(flat("{}", NULL, got, sizeof got), 0);
  assert_string_equal(got, "");
  assert_int_equal(flat("{\"s\":\"}{][,\",\"t\":2}", NULL, got, sizeof got), 0);
  assert_string_equal(got, "s=}{][,;t=2;");
}

static void test_refused(void **state) {
  (void)state;
  char got[64];
  const char *bad[] = {"", "[1]", "\"s\"", "42", "{\"a\":1", "{\"a\":1}x", "{\"a\" 1}", "{'a':1}", "{\"a\":\"\\x\"}",
                       "{\"a\":tru}", "{\"a\":01}"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    assert_int_equal(flat(bad[i], NULL, got, sizeof got), SW_EPARSE);
    assert_string_equal(got, ""); /* nothing reported before the line is known to be valid */
  }
}

static int stop(void *arg, const char *name, size_t nlen, const char *value, size_t vlen) {
  (void)name, (void)nlen, (void)value, (void)vlen;
  return ++*(int *)arg == 2 ? 7 : 0;
}

static void test_stop(void **state) {
  (void)state;
  struct sw_buf name, val;
  sw_buf_init(&name, SIZE_MAX);
  sw_buf_init(&val, SIZE_MAX);
  int n = 0;
  const char *l = "{\"a\":1,\"b\":2,\"c\":3}";
  assert_int_equal(sw_json_flatten(l, strlen(l), &name, &val, NULL, stop, &n), 7);
  assert_int_equal(n, 2);
  sw_buf_free(&name);
  sw_buf_free(&val);
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_members), cmocka_unit_test(test_refused),
                                     cmocka_unit_test(test_stop)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
