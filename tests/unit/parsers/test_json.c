/* Unit tests for parsers/json.c; inputs are parsed from exactly sized heap copies. Expected
 * times were computed with python3's decimal module. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "parsers/json.h"

#define S(lit) lit, sizeof(lit) - 1
#define T1 "2026-11-23T15:33:52.123456789Z"
#define T1_NS INT64_C(1795448032123456789)
#define E9 INT64_C(1700000000000000000)

struct ok_case {
  const char *in;
  size_t len;
  int64_t ts;
};

static const struct ok_case ok_cases[] = {
    /* structure */
    {S("{}"), 0},
    {S(" \t\r\n{ }\n "), 0},
    {S("{\"a\":[1,2,{\"b\":null}],\"c\":\"\\u00e9\\ud800\",\"d\":true,\"e\":false}"), 0},
    {S("{\"a\":-0,\"b\":0.5e+10,\"c\":1E5,\"d\":-12.25E-3,\"e\":0e0,\"f\":[[],{},[{}]]}"), 0},
    {S("{\"raw\":\"\xC3\xA9 \xFF\xFE invalid utf-8 is not checked here\"}"), 0},
    {S("{\"nul\":\"\\u0000\",\"esc\":\"\\\"\\\\\\/\\b\\f\\n\\r\\t\",\"\":\"\"}"), 0},
    {S("{\"a\\\\\":\"b\\\\\",\"c\":\"\\\\\\\"\"}"), 0},
    {S("{\"dup\":1,\"dup\":2}"), 0},
    /* time keys: strings */
    {S("{\"time\":\"" T1 "\",\"msg\":\"x\"}"), T1_NS},
    {S("{\"msg\":\"x\",\"@timestamp\":\"2026-11-23T17:33:52.123456789+02:00\"}"), T1_NS},
    {S("{\"timestamp\":\"" T1 "\"}"), T1_NS},
    {S("{\"ts\":\"" T1 "\"}"), T1_NS},
    {S("{\"t\\u0073\":\"" T1 "\"}"), T1_NS},
    {S("{\"ts\":\"2026-11-23T15:33:52.123456789\\u005A\"}"), T1_NS},
    /* time keys: numbers in s / ms / ns */
    {S("{\"ts\":1700000000}"), E9},
    {S("{\"ts\":1700000000.123456789}"), INT64_C(1700000000123456789)},
    {S("{\"ts\":1700000000.1234567891234}"), INT64_C(1700000000123456789)},
    {S("{\"ts\":1700000000123}"), INT64_C(1700000000123000000)},
    {S("{\"ts\":1700000000123.456}"), INT64_C(1700000000123456000)},
    {S("{\"ts\":1700000000123456789}"), INT64_C(1700000000123456789)},
    {S("{\"ts\":1.7e9}"), E9},
    {S("{\"ts\":17E8}"), E9},
    {S("{\"ts\":1.700000000123e12}"), INT64_C(1700000000123000000)},
    {S("{\"ts\":100000000001}"), INT64_C(100000000001000000)},
    {S("{\"ts\":100000000000.5}"), INT64_C(100000000000500000)},
    /* > 1e11 only through a digit beyond the 19 that are kept: still milliseconds */
    {S("{\"ts\":100000000000.0000000001}"), INT64_C(100000000000000000)},
    {S("{\"ts\":0.000000001}"), 1},
    {S("{\"ts\":9223372036854775807}"), INT64_MAX},
    {S("{\"ts\":0}"), 0},
    {S("{\"ts\":-0.0,\"time\":1}"), 0}, /* -0 is 0, a usable (if odd) time */
    /* unusable values: ignored, line still valid */
    {S("{\"ts\":9223372036854775808}"), 0},
    {S("{\"ts\":99999999999}"), 0}, /* seconds, but beyond year 2262 */
    {S("{\"ts\":1e400}"), 0},
    {S("{\"ts\":1e-400}"), 0},
    {S("{\"ts\":123456789012345678901234567890}"), 0},
    {S("{\"ts\":-5}"), 0},
    {S("{\"ts\":-0.000000001,\"time\":1}"), INT64_C(1000000000)},
    {S("{\"ts\":null}"), 0},
    {S("{\"ts\":[1700000000]}"), 0},
    {S("{\"time\":{\"ts\":1700000000}}"), 0},
    {S("{\"a\":{\"time\":\"" T1 "\"}}"), 0},
    {S("{\"a\":[{\"ts\":1700000000}]}"), 0},
    {S("{\"Time\":\"" T1 "\",\"tss\":1700000000}"), 0},
    /* document order; the first usable one wins */
    {S("{\"ts\":1700000000,\"time\":\"" T1 "\"}"), E9},
    {S("{\"time\":\"" T1 "\",\"ts\":1700000000}"), T1_NS},
    {S("{\"time\":true,\"ts\":1700000000}"), E9},
    {S("{\"time\":\"garbage\",\"ts\":1}"), INT64_C(1000000000)},
    {S("{\"time\":{\"x\":1},\"ts\":1700000000}"), E9},
};

static int scan_copy(const char *in, size_t len, struct sw_json_info *res) {
  char *copy = malloc(len ? len : 1);
  assert_non_null(copy);
  memcpy(copy, in, len);
  int rc = sw_json_scan(copy, len, res);
  free(copy);
  return rc;
}

static void test_ok_cases(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof ok_cases / sizeof ok_cases[0]; i++) {
    struct sw_json_info res = {.ts_ns = -1};
    int rc = scan_copy(ok_cases[i].in, ok_cases[i].len, &res);
    if (rc != 0 || res.ts_ns != ok_cases[i].ts)
      print_error("case %zu: %s -> rc %d ts %lld\n", i, ok_cases[i].in, rc,
                  (long long)res.ts_ns);
    assert_int_equal(rc, 0);
    assert_true(res.ts_ns == ok_cases[i].ts);
  }
}

/* Proper prefixes of a valid object (trailing whitespace aside) never validate. */
static void test_prefixes(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof ok_cases / sizeof ok_cases[0]; i++) {
    size_t full = ok_cases[i].len;
    while (full > 0 && strchr(" \t\r\n", ok_cases[i].in[full - 1]) != NULL)
      full--;
    for (size_t k = 0; k < full; k++) {
      struct sw_json_info res;
      assert_int_equal(scan_copy(ok_cases[i].in, k, &res), SW_EPARSE);
    }
  }
}

struct bad_case {
  const char *in;
  size_t len;
};

static const struct bad_case bad_cases[] = {
    {S("")},
    {S(" ")},
    {S("[]")},
    {S("\"x\"")},
    {S("1")},
    {S("null")},
    {S("{")},
    {S("}")},
    {S("{\"a\"}")},
    {S("{\"a\":}")},
    {S("{\"a\":1,}")},
    {S("{,}")},
    {S("{\"a\":1}x")},
    {S("{\"a\":1}{}")},
    {S("{\"a\":1}}")},
    {S("{'a':1}")},
    {S("{a:1}")},
    {S("{1:1}")},
    {S("{\"a\":01}")},
    {S("{\"a\":1.}")},
    {S("{\"a\":.1}")},
    {S("{\"a\":-}")},
    {S("{\"a\":+1}")},
    {S("{\"a\":1e}")},
    {S("{\"a\":1e+}")},
    {S("{\"a\":0x10}")},
    {S("{\"a\":NaN}")},
    {S("{\"a\":Infinity}")},
    {S("{\"a\":tru}")},
    {S("{\"a\":True}")},
    {S("{\"a\":[1,]}")},
    {S("{\"a\":[,]}")},
    {S("{\"a\":[1 2]}")},
    {S("{\"a\":1 \"b\":2}")},
    {S("{\"a\" 1}")},
    {S("{\"a\"::1}")},
    {S("{\"a\":[}")},
    {S("{\"a\":]}")},
    {S("{\"a\":{]}")},
    {S("{\"a\":[}]")},
    {S("{\"a\":1]")},
    {S("{\"a\":[1}")},
    {S("{\"a\":\"\t\"}")},
    {S("{\"a\":\"\x01\"}")},
    {S("{\"a\":\"\x1F\"}")},
    {S("{\"a\":\"\x01n\"}")}, /* a control byte is not a backslash */
    {S("{\"a\":\"\x1Fu0041\"}")},
    {S("{\"a\":\"\n\"}")},
    {S("{\"a\":\"\0\"}")},
    {S("{\"a\":\"\\x\"}")},
    {S("{\"a\":\"\\u12\"}")},
    {S("{\"a\":\"\\u12g4\"}")},
    {S("{\"a\":\"\\\"}")},
    {S("{\"a\":\"x}")},
    {S("{/*c*/}")},
    {S("{\"a\":1}//c")},
    {S("{\"ts\":01}")},
    {S("{\"ts\":1.}")},
    {S("{\"ts\":\"\x01\"}")},
    {S("\xEF\xBB\xBF{}")}, /* a UTF-8 BOM is not JSON whitespace */
};

static void test_bad_cases(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
    struct sw_json_info res;
    int rc = scan_copy(bad_cases[i].in, bad_cases[i].len, &res);
    if (rc != SW_EPARSE)
      print_error("case %zu accepted: %s\n", i, bad_cases[i].in);
    assert_int_equal(rc, SW_EPARSE);
  }
}

/* {"a":[[...]]} with total container depth `depth` (the top-level object counts). */
static char *nested(size_t depth, size_t *len) {
  char *s = malloc(depth * 2 + 16);
  assert_non_null(s);
  memcpy(s, "{\"a\":", 5);
  memset(s + 5, '[', depth - 1);
  memset(s + 5 + depth - 1, ']', depth - 1);
  s[5 + 2 * (depth - 1)] = '}';
  *len = 6 + 2 * (depth - 1);
  return s;
}

static void test_depth(void **state) {
  (void)state;
  struct sw_json_info res;
  size_t len;
  char *s = nested(SW_JSON_MAX_DEPTH, &len);
  assert_int_equal(scan_copy(s, len, &res), 0);
  free(s);
  s = nested(SW_JSON_MAX_DEPTH + 1, &len);
  assert_int_equal(scan_copy(s, len, &res), SW_EPARSE);
  free(s);
  s = nested(1000000, &len);
  assert_int_equal(scan_copy(s, len, &res), SW_EPARSE);
  free(s);
}

static void test_huge_line(void **state) {
  (void)state;
  size_t body = 1u << 20, n = 0;
  char *line = malloc(body + 64);
  assert_non_null(line);
  memcpy(line, "{\"msg\":\"", 8);
  n = 8;
  for (size_t i = 0; i < body; i++)
    line[n++] = i % 64 == 63 ? ' ' : (char)('a' + i % 26);
  memcpy(line + n, "\",\"ts\":1700000000}", 18);
  n += 18;
  struct sw_json_info res;
  assert_int_equal(scan_copy(line, n, &res), 0);
  assert_true(res.ts_ns == E9);
  line[8 + body / 2] = '\x02';
  assert_int_equal(scan_copy(line, n, &res), SW_EPARSE);
  free(line);
}

/* Random mutations: only 0 or SW_EPARSE, and no out-of-bounds access (ASan). */
static void test_mutations(void **state) {
  (void)state;
  uint64_t x = 88172645463325252u;
  static const char alphabet[] = "{}[]\":,\\u0aen1.-e+ \x01\x80";
  for (int iter = 0; iter < 200000; iter++) {
    const struct ok_case *c = &ok_cases[iter % (sizeof ok_cases / sizeof ok_cases[0])];
    char buf[256];
    size_t n = c->len < sizeof buf ? c->len : sizeof buf;
    memcpy(buf, c->in, n);
    for (int m = 0; m < 1 + iter % 3; m++) {
      x ^= x << 13;
      x ^= x >> 7;
      x ^= x << 17;
      buf[x % n] = alphabet[(x >> 32) % (sizeof alphabet - 1)];
    }
    struct sw_json_info res;
    int rc = scan_copy(buf, (size_t)(x >> 40) % (n + 1), &res);
    assert_true(rc == 0 || rc == SW_EPARSE);
  }
}

static void test_null(void **state) {
  (void)state;
  struct sw_json_info res;
  assert_int_equal(sw_json_scan(NULL, 0, &res), SW_EINVAL);
  assert_int_equal(sw_json_scan(S("{}"), NULL), SW_EINVAL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_ok_cases), cmocka_unit_test(test_prefixes),
      cmocka_unit_test(test_bad_cases), cmocka_unit_test(test_depth),
      cmocka_unit_test(test_huge_line), cmocka_unit_test(test_mutations),
      cmocka_unit_test(test_null),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
