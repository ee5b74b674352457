/* Unit tests for agent/http/promtext.c: exact exposition bytes, escaping, validation, duplicates.
 * Expected texts are written out by hand from the exposition format specification. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "agent/http/promtext.h"

static void expect_text(struct sw_buf *b, const char *want) {
  assert_int_equal(b->len, strlen(want));
  assert_memory_equal(b->data, want, b->len);
}

static void test_counter_and_gauge(void **state) {
  (void)state;
  struct sw_buf b;
  sw_buf_init(&b, 1 << 20);
  struct sw_prom p;
  sw_prom_init(&p, &b);
  struct sw_prom_label l[] = {{"source", "app"}, {"path", "/var/log/a.log"}};
  sw_prom_family(&p, "spillway_source_records_total", SW_PROM_COUNTER, "Records read.");
  sw_prom_sample_u64(&p, "", l, 1, UINT64_C(18446744073709551615));
  sw_prom_family(&p, "spillway_file_lag_bytes", SW_PROM_GAUGE, "Lag.");
  sw_prom_sample(&p, "", l, 2, 0.5);
  sw_prom_sample(&p, "", NULL, 0, 1e21);
  sw_prom_sample(&p, "", l, 1, INFINITY);
  sw_prom_sample(&p, "", (struct sw_prom_label[]){{"x", "1"}}, 1, NAN);
  assert_int_equal(sw_prom_finish(&p), SW_OK);
  expect_text(&b, "# HELP spillway_source_records_total Records read.\n"
                  "# TYPE spillway_source_records_total counter\n"
                  "spillway_source_records_total{source=\"app\"} 18446744073709551615\n"
                  "# HELP spillway_file_lag_bytes Lag.\n"
                  "# TYPE spillway_file_lag_bytes gauge\n"
                  "spillway_file_lag_bytes{source=\"app\",path=\"/var/log/a.log\"} 0.5\n"
                  "spillway_file_lag_bytes 1e+21\n"
                  "spillway_file_lag_bytes{source=\"app\"} +Inf\n"
                  "spillway_file_lag_bytes{x=\"1\"} NaN\n");
  sw_prom_free(&p);
  sw_buf_free(&b);
}

static void test_escaping(void **state) {
  (void)state;
  struct sw_buf b;
  sw_buf_init(&b, 1 << 20);
  struct sw_prom p;
  sw_prom_init(&p, &b);
  sw_prom_family(&p, "m", SW_PROM_GAUGE, "a \\ back\nslash \"quoted\"");
  sw_prom_sample_u64(&p, "", (struct sw_prom_label[]){{"path", "C:\\x\n\"y\"}"}}, 1, 3);
  assert_int_equal(sw_prom_finish(&p), SW_OK);
  expect_text(&b, "# HELP m a \\\\ back\\nslash \"quoted\"\n"
                  "# TYPE m gauge\n"
                  "m{path=\"C:\\\\x\\n\\\"y\\\"}\"} 3\n");
  sw_prom_free(&p);
  sw_buf_free(&b);
}

static void test_histogram(void **state) {
  (void)state;
  struct sw_buf b;
  sw_buf_init(&b, 1 << 20);
  struct sw_prom p;
  sw_prom_init(&p, &b);
  const double bounds[] = {0.01, 0.5};
  const uint64_t counts[] = {2, 0, 1}; /* per bucket, last = +Inf */
  sw_prom_family(&p, "lat_seconds", SW_PROM_HISTOGRAM, "h");
  sw_prom_histogram(&p, (struct sw_prom_label[]){{"sink", "loki"}}, 1, bounds, counts, 2, 3.25);
  assert_int_equal(sw_prom_finish(&p), SW_OK);
  expect_text(&b, "# HELP lat_seconds h\n# TYPE lat_seconds histogram\n"
                  "lat_seconds_bucket{sink=\"loki\",le=\"0.01\"} 2\n"
                  "lat_seconds_bucket{sink=\"loki\",le=\"0.5\"} 2\n"
                  "lat_seconds_bucket{sink=\"loki\",le=\"+Inf\"} 3\n"
                  "lat_seconds_sum{sink=\"loki\"} 3.25\n"
                  "lat_seconds_count{sink=\"loki\"} 3\n");
  sw_prom_free(&p);
  sw_buf_free(&b);
}

static void test_duplicates_dropped(void **state) {
  (void)state;
  struct sw_buf b;
  sw_buf_init(&b, 1 << 20);
  struct sw_prom p;
  sw_prom_init(&p, &b);
  sw_prom_family(&p, "g", SW_PROM_GAUGE, "h");
  /* Enough series to make the set grow several times. */
  char v[16];
  for (int round = 0; round < 2; round++)
    for (int i = 0; i < 1000; i++) {
      snprintf(v, sizeof v, "%d", i);
      sw_prom_sample_u64(&p, "", (struct sw_prom_label[]){{"i", v}}, 1, (uint64_t)i);
    }
  /* Same text split differently between name and value is another series. */
  sw_prom_sample_u64(&p, "", (struct sw_prom_label[]){{"a", "bc"}}, 1, 1);
  sw_prom_sample_u64(&p, "", (struct sw_prom_label[]){{"ab", "c"}}, 1, 1);
  assert_int_equal(sw_prom_finish(&p), SW_OK);
  assert_int_equal(p.duplicates, 1000);
  size_t lines = 0;
  for (size_t i = 0; i < b.len; i++) lines += b.data[i] == '\n';
  assert_int_equal(lines, 2 + 1000 + 2);
  sw_prom_free(&p);
  sw_buf_free(&b);
}

static void test_invalid_names_and_sticky_error(void **state) {
  (void)state;
  struct sw_buf b;
  sw_buf_init(&b, 1 << 20);
  const char *bad_metric[] = {"", "1abc", "a-b", "a b", "é"};
  for (size_t i = 0; i < sizeof bad_metric / sizeof *bad_metric; i++) {
    struct sw_prom p;
    sw_prom_init(&p, &b);
    sw_prom_family(&p, bad_metric[i], SW_PROM_GAUGE, "h");
    assert_int_equal(sw_prom_finish(&p), SW_EINVAL);
    sw_prom_free(&p);
  }
  const char *bad_label[] = {"", "a:b", "__x", "9"};
  for (size_t i = 0; i < sizeof bad_label / sizeof *bad_label; i++) {
    struct sw_prom p;
    sw_prom_init(&p, &b);
    sw_prom_family(&p, "ok:name_1", SW_PROM_GAUGE, "h");
    assert_int_equal(sw_prom_finish(&p), SW_OK);
    sw_prom_sample_u64(&p, "", (struct sw_prom_label[]){{bad_label[i], "v"}}, 1, 1);
    assert_int_equal(sw_prom_finish(&p), SW_EINVAL);
    size_t len = b.len;
    sw_prom_family(&p, "other", SW_PROM_GAUGE, "h"); /* sticky: nothing more is written */
    assert_int_equal(b.len, len);
    sw_prom_free(&p);
  }
  struct sw_prom p;
  sw_buf_reset(&b);
  sw_prom_init(&p, &b);
  sw_prom_sample_u64(&p, "", NULL, 0, 1); /* a sample without a family */
  assert_int_equal(sw_prom_finish(&p), SW_EINVAL);
  sw_prom_free(&p);
  sw_prom_init(&p, &b);
  sw_prom_family(&p, "twice", SW_PROM_GAUGE, "h");
  sw_prom_family(&p, "twice", SW_PROM_GAUGE, "h");
  assert_int_equal(sw_prom_finish(&p), SW_EINVAL);
  sw_prom_free(&p);
  sw_buf_free(&b);
}

static void test_size_cap(void **state) {
  (void)state;
  struct sw_buf b;
  sw_buf_init(&b, 100);
  struct sw_prom p;
  sw_prom_init(&p, &b);
  sw_prom_family(&p, "g", SW_PROM_GAUGE, "h");
  for (int i = 0; i < 50; i++) sw_prom_sample_u64(&p, "", NULL, 0, 1); /* 49 duplicates */
  sw_prom_family(&p, "a_rather_long_metric_name_that_does_not_fit", SW_PROM_GAUGE,
                 "help text that goes past the cap of one hundred bytes");
  assert_int_equal(sw_prom_finish(&p), SW_ETOOBIG);
  assert_true(b.len <= 100);
  sw_prom_free(&p);
  sw_buf_free(&b);
}

static void test_parse_roundtrip(void **state) {
  (void)state;
  struct sw_buf b;
  sw_buf_init(&b, 1 << 20);
  struct sw_prom p;
  sw_prom_init(&p, &b);
  sw_prom_family(&p, "spillway_file_lag_bytes", SW_PROM_GAUGE, "h");
  sw_prom_sample_u64(&p, "", (struct sw_prom_label[]){{"source", "a"}, {"path", "/x/we\"ird\\n\nl"}}, 2, 42);
  sw_prom_sample(&p, "", NULL, 0, INFINITY);
  assert_int_equal(sw_prom_finish(&p), SW_OK);
  sw_prom_free(&p);
  assert_int_equal(sw_buf_putc(&b, 0), SW_OK);
  char *line = b.data, *nl;
  struct sw_prom_parsed s;
  for (int i = 0; i < 2; i++) { /* HELP and TYPE */
    nl = strchr(line, '\n');
    *nl = 0;
    assert_int_equal(sw_prom_parse_line(line, &s), 1);
    line = nl + 1;
  }
  nl = strchr(line, '\n');
  *nl = 0;
  assert_int_equal(sw_prom_parse_line(line, &s), 0);
  assert_string_equal(s.name, "spillway_file_lag_bytes");
  assert_int_equal(s.nlabels, 2);
  assert_string_equal(sw_prom_label_value(&s, "source"), "a");
  assert_string_equal(sw_prom_label_value(&s, "path"), "/x/we\"ird\\n\nl");
  assert_null(sw_prom_label_value(&s, "nope"));
  assert_true(s.value == 42);
  line = nl + 1;
  nl = strchr(line, '\n');
  *nl = 0;
  assert_int_equal(sw_prom_parse_line(line, &s), 0);
  assert_int_equal(s.nlabels, 0);
  assert_true(isinf(s.value) && s.value > 0);
  const char *bad[] = {"1abc 3", "m{a=\"x} 1", "m{a=x} 1", "m{a=\"\\q\"} 1", "m{a=\"x\"}1",
                       "m", "m{a=\"1\",b=\"2\",c=\"3\",d=\"4\",e=\"5\",f=\"6\",g=\"7\",h=\"8\",i=\"9\"} 1"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    char copy[256];
    snprintf(copy, sizeof copy, "%s", bad[i]);
    assert_int_equal(sw_prom_parse_line(copy, &s), SW_EPARSE);
  }
  char blank[] = "";
  assert_int_equal(sw_prom_parse_line(blank, &s), 1);
  sw_buf_free(&b);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_counter_and_gauge),  cmocka_unit_test(test_escaping),
      cmocka_unit_test(test_histogram),          cmocka_unit_test(test_duplicates_dropped),
      cmocka_unit_test(test_invalid_names_and_sticky_error), cmocka_unit_test(test_size_cap),
      cmocka_unit_test(test_parse_roundtrip),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
