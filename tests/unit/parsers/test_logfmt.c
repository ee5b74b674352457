/* Unit tests for parsers/logfmt.c; inputs are parsed from exactly sized heap copies. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "parsers/logfmt.h"

#define S(lit) lit, sizeof(lit) - 1
#define T1 "2026-11-23T15:33:52.123456789Z"
#define T1_NS INT64_C(1795448032123456789)

struct ok_case {
  const char *in;
  size_t len;
  size_t npairs;
  int64_t ts;
};

static const struct ok_case ok_cases[] = {
    {S("level=info msg=hello"), 2, 0},
    {S("a=1"), 1, 0},
    {S("ts=" T1 " level=info"), 2, T1_NS},
    {S("level=info time=\"" T1 "\" msg=\"a \\\"quoted\\\" b\\\\\""), 3, T1_NS},
    {S("timestamp=2026-11-23T17:33:52.123456789+02:00"), 1, T1_NS},
    {S("debug level=info"), 2, 0},
    {S("a= b="), 2, 0},
    {S("a=\"\""), 1, 0},
    {S("  a=1\t b=2 \r"), 2, 0},
    {S("\xC3\xA9=\xC3\xBC \xFF=\xFE"), 2, 0},
    {S("ts=garbage time=" T1), 2, T1_NS},
    {S("time=" T1 " ts=2016-10-06T00:17:09.669794202Z"), 2, T1_NS},
    {S("ts=\"2026-11-23T15:33:52.123456789\\u005a\""), 1, 0},
    {S("ts time=" T1), 2, T1_NS},
    {S("tss=" T1 " Time=" T1), 2, 0},
    {S("msg=\"\\u00e9\\t\\n\\/\\b\\f\\r\" x=\"=\" y=\"a b\""), 3, 0},
    {S("path=/a/b?c url=http://x:80/ k.v-w_x[0]=1"), 3, 0},
    {S("msg=\"\xFF raw bytes \x7F\""), 1, 0},
};

static int scan_copy(const char *in, size_t len, struct sw_logfmt_info *res) {
  char *copy = malloc(len ? len : 1);
  assert_non_null(copy);
  memcpy(copy, in, len);
  int rc = sw_logfmt_scan(copy, len, res);
  free(copy);
  return rc;
}

static void test_ok_cases(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof ok_cases / sizeof ok_cases[0]; i++) {
    struct sw_logfmt_info res = {.ts_ns = -1};
    int rc = scan_copy(ok_cases[i].in, ok_cases[i].len, &res);
    if (rc != 0)
      print_error("case %zu: %s -> rc %d\n", i, ok_cases[i].in, rc);
    assert_int_equal(rc, 0);
    assert_int_equal(res.npairs, ok_cases[i].npairs);
    assert_true(res.ts_ns == ok_cases[i].ts);
  }
}

static const char *const bad_cases[] = {
    "",
    "   ",
    "\t\r",
    "=x",
    "a=b=c",
    "a=b\"c",
    "\"a\"=1",
    "a\"b=1",
    "a=\"unterminated",
    "a=\"x\\\"",
    "a=\"x\"b=1",
    "a=\"\\q\"",
    "a=\"\\u12\"",
    "a=\"\\u12g4\"",
    "a=\"tab\there\"",
    "a=\"nl\nhere\"",
    "a=\x01",
    "a\x01=1",
    "a=1\x7F",
    "a =1",
    "a= =b",
    "a=1 =",
    "a=1 b=\"",
    "ok=1 \x02",
};

static void test_bad_cases(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
    struct sw_logfmt_info res;
    int rc = scan_copy(bad_cases[i], strlen(bad_cases[i]), &res);
    if (rc != SW_EPARSE)
      print_error("case %zu accepted: %s\n", i, bad_cases[i]);
    assert_int_equal(rc, SW_EPARSE);
  }
}

/* Prefixes: only 0 or SW_EPARSE, never more pairs than the full line, no overreads. */
static void test_prefixes(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof ok_cases / sizeof ok_cases[0]; i++) {
    for (size_t k = 0; k <= ok_cases[i].len; k++) {
      struct sw_logfmt_info res;
      int rc = scan_copy(ok_cases[i].in, k, &res);
      assert_true(rc == 0 || rc == SW_EPARSE);
      if (rc == 0)
        assert_true(res.npairs >= 1 && res.npairs <= ok_cases[i].npairs);
    }
  }
}

static void test_huge_line(void **state) {
  (void)state;
  size_t body = 1u << 20;
  char *line = malloc(body + 64);
  assert_non_null(line);
  size_t n = 0;
  memcpy(line, "ts=" T1 " msg=\"", 39);
  n = 39;
  for (size_t i = 0; i < body; i++)
    line[n++] = i % 64 == 63 ? ' ' : (char)('a' + i % 26);
  line[n++] = '"';
  struct sw_logfmt_info res;
  assert_int_equal(scan_copy(line, n, &res), 0);
  assert_int_equal(res.npairs, 2);
  assert_true(res.ts_ns == T1_NS);
  assert_int_equal(scan_copy(line, n - 1, &res), SW_EPARSE); /* unterminated */
  free(line);
}

static void test_mutations(void **state) {
  (void)state;
  uint64_t x = 88172645463325252u;
  static const char alphabet[] = "=\" \\u0a\t\x01\x80";
  for (int iter = 0; iter < 100000; iter++) {
    const struct ok_case *c = &ok_cases[iter % (sizeof ok_cases / sizeof ok_cases[0])];
    char buf[256];
    size_t n = c->len < sizeof buf ? c->len : sizeof buf;
    memcpy(buf, c->in, n);
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    buf[x % n] = alphabet[(x >> 32) % (sizeof alphabet - 1)];
    struct sw_logfmt_info res;
    int rc = scan_copy(buf, n, &res);
    assert_true(rc == 0 || rc == SW_EPARSE);
    if (rc == 0)
      assert_true(res.npairs >= 1 && res.npairs <= n);
  }
}

static void test_null(void **state) {
  (void)state;
  struct sw_logfmt_info res;
  assert_int_equal(sw_logfmt_scan(NULL, 0, &res), SW_EINVAL);
  assert_int_equal(sw_logfmt_scan(S("a=1"), NULL), SW_EINVAL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_ok_cases),  cmocka_unit_test(test_bad_cases),
      cmocka_unit_test(test_prefixes),  cmocka_unit_test(test_huge_line),
      cmocka_unit_test(test_mutations), cmocka_unit_test(test_null),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
