/* Unit tests for parsers/extract.c and parsers/labelmatch.c: exact values out of payloads,
 * label matchers, and the flat label-object reader. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pcre2.h>
#include <string.h>

#include "parsers/extract.h"
#include "parsers/labelmatch.h"

static void run(struct sw_extract_spec *sp, const char *line, struct sw_extract_out *o) {
  sw_extract(sp, line, strlen(line), NULL, o);
}

static void expect_v(const struct sw_extract_out *o, size_t i, const char *want) {
  if (!want) {
    assert_null(o->v[i]);
    return;
  }
  assert_non_null(o->v[i]);
  assert_int_equal(o->len[i], strlen(want));
  assert_memory_equal(o->v[i], want, strlen(want));
}

static void test_json_paths(void **state) {
  (void)state;
  static struct sw_extract_out o;
  struct sw_extract_spec sp = {.format = SW_EXTRACT_JSON, .n = 5, .level_at = 0, .normalize_level = 1,
                               .name = {"level", "trace_id", "code", "deep", "obj"},
                               .path = {"level", "trace.id", "http.code", "a.b.c", "http"}};
  run(&sp, "{\"msg\":\"x\\\"}\",\"level\":\"WARN\",\"trace\":{\"span\":[1,{\"id\":\"no\"}],\"id\":\"ab\\u00e9\\n\"},"
           "\"http\":{\"code\":503},\"a\":{\"b\":null}}", &o);
  expect_v(&o, 0, "warning");
  expect_v(&o, 1, "ab\xc3\xa9\n");
  expect_v(&o, 2, "503");
  expect_v(&o, 3, NULL); /* a.b is null: no c */
  expect_v(&o, 4, "{\"code\":503}");
  assert_int_equal(o.found, 4);
  /* not JSON, truncated, an array: nothing, never a crash */
  run(&sp, "level=error", &o);
  assert_int_equal(o.found, 0);
  run(&sp, "{\"level\":\"err", &o);
  assert_int_equal(o.found, 0);
  run(&sp, "[{\"level\":\"error\"}]", &o);
  assert_int_equal(o.found, 0);
  /* unknown level values stay as they are */
  run(&sp, "{\"level\":\"Loud\"}", &o);
  expect_v(&o, 0, "Loud");
  /* values are cut at SW_EXTRACT_MAX_VALUE, at a character start */
  static char big[4000];
  strcpy(big, "{\"trace\":{\"id\":\"");
  size_t at = strlen(big);
  for (int i = 0; i < 1200; i++) big[at++] = i % 2 ? '\xa9' : '\xc3';
  strcpy(big + at, "\"}}");
  run(&sp, big, &o);
  assert_true(o.len[1] <= SW_EXTRACT_MAX_VALUE && o.len[1] % 2 == 0);
}

static void test_logfmt_and_regex(void **state) {
  (void)state;
  static struct sw_extract_out o;
  struct sw_extract_spec sp = {.format = SW_EXTRACT_LOGFMT, .n = 3, .level_at = 0, .normalize_level = 1,
                               .name = {"level", "user", "q"}, .path = {"lvl", "user", "q"}};
  run(&sp, "ts=1 lvl=E user=\"a b\\\"c\" q= x=1", &o);
  expect_v(&o, 0, "error");
  expect_v(&o, 1, "a b\"c");
  expect_v(&o, 2, "");
  int ec;
  PCRE2_SIZE off;
  struct sw_extract_spec rx = {.format = SW_EXTRACT_REGEX, .normalize_level = 1};
  rx.re = pcre2_compile((PCRE2_SPTR) "^(?P<level>\\w+) (?:(?P<user>u\\d+) )?", PCRE2_ZERO_TERMINATED, 0, &ec, &off, NULL);
  assert_non_null(rx.re);
  assert_int_equal(sw_extract_regex_names(&rx), 0);
  assert_int_equal(rx.n, 2);
  pcre2_match_data *md = pcre2_match_data_create_from_pattern(rx.re, NULL);
  sw_extract(&rx, "FATAL u7 boom", 13, md, &o);
  expect_v(&o, rx.level_at, "critical");
  expect_v(&o, 1 - rx.level_at, "u7");
  sw_extract(&rx, "info boom", 9, md, &o);
  expect_v(&o, rx.level_at, "info");
  expect_v(&o, 1 - rx.level_at, NULL); /* the group did not take part */
  pcre2_match_data_free(md);
  pcre2_code_free(rx.re);
}

static void test_levels(void **state) {
  (void)state;
  const char *cases[][2] = {{"W", "warning"}, {"warn", "warning"}, {"WARNING", "warning"}, {"Err", "error"},
                            {"FATAL", "critical"}, {"panic", "critical"}, {"trace", "debug"}, {"DBG", "debug"},
                            {"notice", "info"}, {"4", "warning"}, {"3", "error"}, {"7", "debug"}};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
    assert_string_equal(sw_extract_level(cases[i][0], strlen(cases[i][0])), cases[i][1]);
  assert_null(sw_extract_level("warnx", 5));
}

static void test_matchers(void **state) {
  (void)state;
  struct sw_label_match m;
  char err[256];
  assert_int_equal(sw_label_match_parse(&m, "level=~debug|trace", err, sizeof err), 0);
  assert_true(sw_label_match_test(&m, "trace", 5, NULL));
  assert_false(sw_label_match_test(&m, "tracex", 6, NULL)); /* anchored */
  assert_false(sw_label_match_test(&m, NULL, 0, NULL));
  sw_label_match_free(&m);
  assert_int_equal(sw_label_match_parse(&m, "app!=web", err, sizeof err), 0);
  assert_true(sw_label_match_test(&m, NULL, 0, NULL)); /* missing is "" */
  assert_false(sw_label_match_test(&m, "web", 3, NULL));
  sw_label_match_free(&m);
  /* the whole value is one regex, anchored at both ends: ")" cannot close an added group */
  assert_int_equal(sw_label_match_parse(&m, "k=~x)|(y", err, sizeof err), SW_EINVAL);
  assert_int_equal(sw_label_match_parse(&m, "k=~a|b.*", err, sizeof err), 0);
  assert_true(sw_label_match_test(&m, "a", 1, NULL));
  assert_false(sw_label_match_test(&m, "ax", 2, NULL));
  assert_true(sw_label_match_test(&m, "bx", 2, NULL));
  sw_label_match_free(&m);
  assert_int_equal(sw_label_match_parse(&m, "x!~(", err, sizeof err), SW_EINVAL);
  assert_non_null(strstr(err, "x!~("));
  assert_int_equal(sw_label_match_parse(&m, "=v", err, sizeof err), SW_EINVAL);
  assert_int_equal(sw_label_match_parse(&m, "novalue", err, sizeof err), SW_EINVAL);
}

static void test_lookup(void **state) {
  (void)state;
  const char *j = "{\"a\":\"x\",\"b\":\"q\\\"\\u00e9\\ud83d\\ude00\",\"c\":\"\"}";
  char v[64];
  assert_int_equal(sw_label_lookup(j, strlen(j), "a", v, sizeof v), 1);
  assert_string_equal(v, "x");
  assert_int_equal(sw_label_lookup(j, strlen(j), "b", v, sizeof v), 8);
  assert_string_equal(v, "q\"\xc3\xa9\xf0\x9f\x98\x80");
  assert_int_equal(sw_label_lookup(j, strlen(j), "c", v, sizeof v), 0);
  assert_int_equal(sw_label_lookup(j, strlen(j), "d", v, sizeof v), -1);
  assert_int_equal(sw_label_lookup("{\"a\":", 5, "a", v, sizeof v), -1);
  assert_int_equal(sw_label_lookup(NULL, 0, "a", v, sizeof v), -1);
  assert_int_equal(sw_label_lookup(j, strlen(j), "b", v, 3), 2); /* cut */
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_json_paths), cmocka_unit_test(test_logfmt_and_regex), cmocka_unit_test(test_levels),
      cmocka_unit_test(test_matchers),   cmocka_unit_test(test_lookup),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
