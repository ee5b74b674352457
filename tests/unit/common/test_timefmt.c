/* Unit tests for common/timefmt.c. Expected values were computed independently with
 * python3's calendar.timegm, not with the code under test. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/timefmt.h"

/* Parses s from an exactly sized heap copy so ASan catches any read past n. */
static int parse(const char *s, int64_t *ns) {
  size_t n = strlen(s);
  char *copy = malloc(n ? n : 1);
  assert_non_null(copy);
  memcpy(copy, s, n);
  int rc = sw_time_parse_rfc3339(copy, n, ns);
  free(copy);
  return rc;
}

struct ok_case {
  const char *in;
  int64_t ns;
};

static const struct ok_case ok_cases[] = {
    {"2026-11-23T15:33:52.123456789Z", INT64_C(1795448032123456789)},
    {"2026-11-23t15:33:52.123456789z", INT64_C(1795448032123456789)},
    {"2026-11-23 15:33:52.123456789Z", INT64_C(1795448032123456789)},
    {"2026-11-23T17:33:52.123456789+02:00", INT64_C(1795448032123456789)},
    {"2026-11-23T10:03:52.123456789-05:30", INT64_C(1795448032123456789)},
    {"2026-11-23T15:33:52.123456789+00:00", INT64_C(1795448032123456789)},
    {"2026-11-23T15:33:52.123456789-00:00", INT64_C(1795448032123456789)},
    {"2026-11-24T01:33:52.123456789+10:00", INT64_C(1795448032123456789)},
    {"2026-11-23T15:33:52.1234567891234Z", INT64_C(1795448032123456789)}, /* truncated */
    {"2026-11-23T15:33:52.123456789999Z", INT64_C(1795448032123456789)},  /* not rounded */
    {"2016-10-06T00:17:09.669794202Z", INT64_C(1475713029669794202)},
    {"1970-01-01T00:00:00Z", 0},
    {"1970-01-01T00:00:00.1Z", 100000000},
    {"1970-01-01T00:00:00.000000001Z", 1},
    {"1970-01-01T00:00:00.01Z", 10000000},
    {"1970-01-01T01:00:00+01:00", 0},
    {"2024-02-29T12:00:00Z", INT64_C(1709208000000000000)},
    {"2000-02-29T00:00:00Z", INT64_C(951782400000000000)},
    {"1999-12-31T23:59:59.999999999Z", INT64_C(946684799999999999)},
    {"2023-11-14T22:13:20Z", INT64_C(1700000000000000000)},
    {"2016-12-31T23:59:60Z", INT64_C(1483228800000000000)}, /* leap second folds forward */
    {"2262-04-11T23:47:16.854775807Z", INT64_MAX},
    {"2262-04-12T01:47:16.854775807+02:00", INT64_MAX},
};

static void test_parse_ok(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof ok_cases / sizeof ok_cases[0]; i++) {
    int64_t ns = -1;
    int rc = parse(ok_cases[i].in, &ns);
    if (rc != 0 || ns != ok_cases[i].ns)
      print_error("case %zu: %s -> rc %d ns %lld\n", i, ok_cases[i].in, rc, (long long)ns);
    assert_int_equal(rc, 0);
    assert_true(ns == ok_cases[i].ns);
  }
}

static const char *const bad_cases[] = {
    "",
    "2026-11-23T15:33:52",             /* no zone */
    "2026-11-23T15:33:52.123",         /* no zone */
    "2026-11-23T15:33:52.Z",           /* dot without digits */
    "2026-11-23T15:33:52Z ",           /* trailing byte */
    "2026-11-23T15:33:52ZZ",
    "2026-11-23T15:33:52+0200",
    "2026-11-23T15:33:52+02:0",
    "2026-11-23T15:33:52+02:000",
    "2026-11-23T15:33:52+24:00",
    "2026-11-23T15:33:52+02:60",
    "2026-11-23T15:33:52*02:00",
    "2026-11-23X15:33:52Z",
    "2026/11/23T15:33:52Z",
    "2026-11-23T15-33-52Z",
    "2026-13-23T15:33:52Z",
    "2026-00-23T15:33:52Z",
    "2026-11-00T15:33:52Z",
    "2026-11-31T15:33:52Z",
    "2026-01-32T15:33:52Z",
    "2023-02-29T00:00:00Z", /* not a leap year */
    "2100-02-29T00:00:00Z", /* divisible by 100, not by 400 */
    "2026-11-23T24:00:00Z",
    "2026-11-23T23:60:00Z",
    "2026-11-23T23:59:61Z",
    "1969-12-31T23:59:59Z",      /* before the epoch */
    "1970-01-01T00:30:00+01:00", /* before the epoch after applying the offset */
    "0000-01-01T00:00:00Z",
    "2262-04-11T23:47:16.854775808Z", /* one ns past INT64_MAX */
    "2263-01-01T00:00:00Z",
    "9999-12-31T23:59:59Z",
    "2026-11-2T15:33:52Z",
    "20a6-11-23T15:33:52Z",
    "2026-11-23T15:33:5aZ",
    "-026-11-23T15:33:52Z",
    "2026-11-23T15:33:52.12a4Z",
    "2026-11-23T15:33:52,123Z",
};

static void test_parse_bad(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
    int64_t ns = 0;
    int rc = parse(bad_cases[i], &ns);
    if (rc != SW_EPARSE)
      print_error("case %zu: %s accepted as %lld\n", i, bad_cases[i], (long long)ns);
    assert_int_equal(rc, SW_EPARSE);
  }
}

/* Every proper prefix of a valid timestamp is invalid (no zone yet) or, for the fraction
 * digits, never read past n. */
static void test_parse_prefixes(void **state) {
  (void)state;
  const char *full = "2026-11-23T17:33:52.123456789+02:00";
  size_t n = strlen(full);
  for (size_t k = 0; k < n; k++) {
    char *copy = malloc(k ? k : 1);
    assert_non_null(copy);
    memcpy(copy, full, k);
    int64_t ns;
    assert_int_equal(sw_time_parse_rfc3339(copy, k, &ns), SW_EPARSE);
    free(copy);
  }
}

static void test_parse_null(void **state) {
  (void)state;
  int64_t ns;
  assert_int_equal(sw_time_parse_rfc3339(NULL, 30, &ns), SW_EPARSE);
  assert_int_equal(sw_time_parse_rfc3339("2026-11-23T15:33:52Z", 20, NULL), SW_EPARSE);
}

struct fmt_case {
  int64_t ns;
  const char *out;
};

static void test_format(void **state) {
  (void)state;
  static const struct fmt_case cases[] = {
      {0, "1970-01-01T00:00:00.000000000Z"},
      {1, "1970-01-01T00:00:00.000000001Z"},
      {INT64_C(1795448032123456789), "2026-11-23T15:33:52.123456789Z"},
      {INT64_C(1709208000000000000), "2024-02-29T12:00:00.000000000Z"},
      {INT64_C(946684799999999999), "1999-12-31T23:59:59.999999999Z"},
      {INT64_MAX, "2262-04-11T23:47:16.854775807Z"},
      {-1, "1969-12-31T23:59:59.999999999Z"},
      {INT64_MIN, "1677-09-21T00:12:43.145224192Z"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char out[SW_TIME_RFC3339_LEN + 1];
    memset(out, 'x', sizeof out);
    assert_int_equal(sw_time_format_rfc3339(cases[i].ns, out), SW_TIME_RFC3339_LEN);
    assert_string_equal(out, cases[i].out);
  }
}

/* Every calendar day 1970..2262 survives format -> parse, and the formatted date matches a
 * naive day-by-day calendar kept by the test itself, which pins down leap-year handling over
 * the whole representable range. */
static void test_roundtrip_days(void **state) {
  (void)state;
  const int64_t day = INT64_C(86400000000000), noon = INT64_C(43210123456789);
  int y = 1970, m = 1, d = 1;
  for (int64_t ns = noon; ns <= INT64_MAX - day; ns += day) {
    char out[SW_TIME_RFC3339_LEN + 1], want[40];
    sw_time_format_rfc3339(ns, out);
    snprintf(want, sizeof want, "%04d-%02d-%02d", y, m, d);
    assert_memory_equal(out, want, 10);
    assert_memory_equal(out + 10, "T12:00:10.123456789Z", 20);
    int64_t back;
    assert_int_equal(sw_time_parse_rfc3339(out, SW_TIME_RFC3339_LEN, &back), 0);
    assert_true(back == ns);
    static const int dim[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (++d > dim[m - 1] + (m == 2 && leap)) {
      d = 1;
      if (++m > 12) {
        m = 1;
        y++;
      }
    }
  }
  assert_int_equal(y, 2262); /* the loop really covered the whole range */
}

static void test_roundtrip_random(void **state) {
  (void)state;
  uint64_t x = 0x9E3779B97F4A7C15u;
  for (int i = 0; i < 200000; i++) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    int64_t ns = (int64_t)(x >> 1);
    char out[SW_TIME_RFC3339_LEN + 1];
    sw_time_format_rfc3339(ns, out);
    int64_t back;
    assert_int_equal(sw_time_parse_rfc3339(out, SW_TIME_RFC3339_LEN, &back), 0);
    assert_true(back == ns);
  }
}

static void test_leap_years(void **state) {
  (void)state;
  static const struct {
    int year;
    int leap;
  } years[] = {{1970, 0}, {1972, 1}, {2000, 1}, {2023, 0}, {2024, 1}, {2100, 0}, {2200, 0}};
  for (size_t i = 0; i < sizeof years / sizeof years[0]; i++) {
    char a[32], b[32];
    snprintf(a, sizeof a, "%04d-01-01T00:00:00Z", years[i].year);
    snprintf(b, sizeof b, "%04d-12-31T00:00:00Z", years[i].year);
    int64_t na, nb;
    assert_int_equal(sw_time_parse_rfc3339(a, strlen(a), &na), 0);
    assert_int_equal(sw_time_parse_rfc3339(b, strlen(b), &nb), 0);
    assert_true((nb - na) / INT64_C(86400000000000) == 364 + years[i].leap);
  }
}

static void test_now(void **state) {
  (void)state;
  int64_t a = sw_time_now_ns();
  int64_t b = sw_time_now_ns();
  assert_true(a > INT64_C(1700000000000000000)); /* after 2023-11-14 */
  assert_true(b >= a - INT64_C(1000000000));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_parse_ok),       cmocka_unit_test(test_parse_bad),
      cmocka_unit_test(test_parse_prefixes), cmocka_unit_test(test_parse_null),
      cmocka_unit_test(test_format),         cmocka_unit_test(test_roundtrip_days),
      cmocka_unit_test(test_roundtrip_random), cmocka_unit_test(test_leap_years),
      cmocka_unit_test(test_now),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
