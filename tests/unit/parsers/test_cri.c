/* Unit tests for parsers/cri.c; inputs are parsed from exactly sized heap copies. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "parsers/cri.h"
#include "parsers/record.h"

#define S(lit) lit, sizeof(lit) - 1
#define T0 "2016-10-06T00:17:09.669794202Z"
#define T0_NS INT64_C(1475713029669794202)

struct ok_case {
  const char *in;
  size_t in_len;
  int64_t ts;
  int stream;
  bool partial;
  size_t content_off; /* where content must start in the input */
  const char *content;
  size_t content_len;
};

static const struct ok_case ok_cases[] = {
    {S(T0 " stdout F message text"), T0_NS, SW_STREAM_STDOUT, false, 40, S("message text")},
    {S(T0 " stderr P part"), T0_NS, SW_STREAM_STDERR, true, 40, S("part")},
    {S(T0 " stdout F"), T0_NS, SW_STREAM_STDOUT, false, 39, S("")},
    {S(T0 " stdout F "), T0_NS, SW_STREAM_STDOUT, false, 40, S("")},
    {S(T0 " stdout P"), T0_NS, SW_STREAM_STDOUT, true, 39, S("")},
    {S(T0 " stdout F  two leading spaces "), T0_NS, SW_STREAM_STDOUT, false, 40,
     S(" two leading spaces ")},
    {S(T0 " stdout F:x tagged"), T0_NS, SW_STREAM_STDOUT, false, 42, S("tagged")},
    {S(T0 " stdout P:a:b,c tagged"), T0_NS, SW_STREAM_STDOUT, true, 46, S("tagged")},
    {S(T0 " stdout F:"), T0_NS, SW_STREAM_STDOUT, false, 40, S("")},
    {S(T0 " stdout F:x"), T0_NS, SW_STREAM_STDOUT, false, 41, S("")},
    {S(T0 " stdout F {\"json\":\"as is \\\"\"}"), T0_NS, SW_STREAM_STDOUT, false, 40,
     S("{\"json\":\"as is \\\"\"}")},
    {S(T0 " stdout F bin\0nul\xFF\xFE\t\r"), T0_NS, SW_STREAM_STDOUT, false, 40,
     S("bin\0nul\xFF\xFE\t\r")},
    {S("2026-11-23T17:33:52.123456789+02:00 stdout F off"), INT64_C(1795448032123456789),
     SW_STREAM_STDOUT, false, 45, S("off")},
    {S("2026-11-23T15:33:52Z stderr F x"), INT64_C(1795448032000000000), SW_STREAM_STDERR,
     false, 30, S("x")},
};

static int parse_copy(const char *in, size_t len, struct sw_cri_line *res, char **copy) {
  *copy = malloc(len ? len : 1);
  assert_non_null(*copy);
  memcpy(*copy, in, len);
  return sw_cri_parse(*copy, len, res);
}

static void test_ok_cases(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof ok_cases / sizeof ok_cases[0]; i++) {
    const struct ok_case *c = &ok_cases[i];
    struct sw_cri_line res;
    char *copy;
    int rc = parse_copy(c->in, c->in_len, &res, &copy);
    if (rc != 0)
      print_error("case %zu: rc %d for %s\n", i, rc, c->in);
    assert_int_equal(rc, 0);
    assert_true(res.ts_ns == c->ts);
    assert_int_equal(res.stream, c->stream);
    assert_int_equal(res.partial, c->partial);
    assert_ptr_equal(res.content, copy + c->content_off);
    assert_int_equal(res.content_len, c->content_len);
    assert_memory_equal(res.content, c->content, c->content_len);
    free(copy);
  }
}

static const char *const bad_cases[] = {
    "",
    " ",
    T0,
    T0 " ",
    T0 " stdout",
    T0 " stdout ",
    T0 " stdout  F x",  /* two spaces: empty tag */
    T0 "  stdout F x",  /* two spaces: empty stream */
    T0 " stdin F x",
    T0 " stdoutF x",
    T0 " Stdout F x",
    T0 " stdouts F x",
    T0 " stdout X x",
    T0 " stdout FX x",
    T0 " stdout PF x",
    T0 " stdout f x",
    T0 " stdout \tF x",
    "2016-10-06T00:17:09.669794202 stdout F no zone",
    "2016-10-06 00:17:09.669794202Z stdout F space separated",
    "2016-13-06T00:17:09.669794202Z stdout F bad month",
    "garbage stdout F x",
    " " T0 " stdout F leading space",
    "stdout F x",
};

static void test_bad_cases(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
    struct sw_cri_line res;
    char *copy;
    int rc = parse_copy(bad_cases[i], strlen(bad_cases[i]), &res, &copy);
    if (rc != SW_EPARSE)
      print_error("case %zu accepted: %s\n", i, bad_cases[i]);
    assert_int_equal(rc, SW_EPARSE);
    free(copy);
  }
}

/* Every prefix of a valid line is SW_EPARSE or a valid result whose content lies inside it. */
static void test_prefixes(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof ok_cases / sizeof ok_cases[0]; i++) {
    const struct ok_case *c = &ok_cases[i];
    for (size_t k = 0; k <= c->in_len; k++) {
      struct sw_cri_line res;
      char *copy;
      int rc = parse_copy(c->in, k, &res, &copy);
      assert_true(rc == 0 || rc == SW_EPARSE);
      if (rc == 0) {
        assert_true(res.content >= copy && res.content <= copy + k);
        assert_true(res.content + res.content_len == copy + k);
        assert_true(k >= 29); /* at least "YYYY-MM-DDTHH:MM:SSZ stdout F" */
      }
      free(copy);
    }
  }
}

static void test_huge_line(void **state) {
  (void)state;
  size_t n = (1u << 20) + 40;
  char *line = malloc(n);
  assert_non_null(line);
  memcpy(line, T0 " stderr P ", 40);
  memset(line + 40, 'z', n - 40);
  struct sw_cri_line res;
  assert_int_equal(sw_cri_parse(line, n, &res), 0);
  assert_true(res.partial);
  assert_int_equal(res.stream, SW_STREAM_STDERR);
  assert_int_equal(res.content_len, 1u << 20);
  assert_ptr_equal(res.content, line + 40);
  free(line);
}

static void test_null(void **state) {
  (void)state;
  struct sw_cri_line res;
  assert_int_equal(sw_cri_parse(NULL, 0, &res), SW_EINVAL);
  assert_int_equal(sw_cri_parse(S(T0 " stdout F x"), NULL), SW_EINVAL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_ok_cases), cmocka_unit_test(test_bad_cases),
      cmocka_unit_test(test_prefixes), cmocka_unit_test(test_huge_line),
      cmocka_unit_test(test_null),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
