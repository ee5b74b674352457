/* Unit tests for parsers/ndjsonrec.c: the file sink's NDJSON lines read back. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "agent/buffer/chunk.h"
#include "parsers/ndjsonrec.h"
#include "parsers/record.h"
#include "sinks/ndjson.h"

#define S(lit) lit, sizeof(lit) - 1

static int parse(const char *s, size_t n, struct sw_ndjson_rec *r) {
  char *copy = malloc(n ? n : 1); /* exactly sized: a read past the end is caught by ASan */
  memcpy(copy, s, n);
  int rc = sw_ndjson_rec_parse(copy, n, r);
  free(copy);
  return rc;
}

static void test_what_the_sink_writes_reads_back(void **state) {
  (void)state;
  struct sw_ndjson_state st;
  sw_ndjson_state_init(&st);
  struct sw_buf out, line;
  sw_buf_init(&out, SIZE_MAX);
  sw_buf_init(&line, SIZE_MAX);
  static const char text[] = "tab\there \"quoted\" \\ back \x01 ctl \xC3\xA9 \xE2\x80\xA8 sep";
  struct sw_record_view v = {.ts_ns = INT64_C(1795448032123456789), .stream = SW_STREAM_STDERR,
                             .line = text, .len = sizeof text - 1};
  const char *labels = "{\"host\":\"h\",\"k\":\"a\\\"b\"}";
  assert_int_equal(sw_ndjson_record(&st, labels, strlen(labels), "docker", &v, &out), 0);
  assert_true(out.len > 0 && out.data[out.len - 1] == '\n');
  struct sw_ndjson_rec r;
  assert_int_equal(sw_ndjson_rec_parse(out.data, out.len - 1, &r), 0);
  assert_true(r.ts_ns == v.ts_ns);
  assert_int_equal(r.stream, SW_STREAM_STDERR);
  assert_int_equal(r.labels_len, strlen(labels));
  assert_memory_equal(r.labels, labels, r.labels_len);
  assert_true(r.line_escaped);
  assert_int_equal(sw_ndjson_rec_line(&r, &line), 0);
  assert_int_equal(line.len, sizeof text - 1);
  assert_memory_equal(line.data, text, line.len);
  sw_buf_free(&out);
  sw_buf_free(&line);
  sw_ndjson_state_free(&st);
}

static void test_order_and_unknown_members(void **state) {
  (void)state;
  struct sw_ndjson_rec r;
  assert_int_equal(parse(S("{\"line\":\"x\",\"extra\":[1,{\"a\":null}],\"labels\":{},\"ts\":\"2026-11-23T15:33:52Z\"}"), &r), 0);
  assert_int_equal(r.stream, SW_STREAM_STDOUT);
  assert_int_equal(r.line_len, 1);
  assert_false(r.line_escaped);
  assert_int_equal(parse(S(" { \"ts\" : \"2026-11-23T15:33:52Z\" , \"labels\" : { \"a\" : \"b\" } , \"stream\" : \"file\" , \"line\" : \"\" } "), &r), 0);
  assert_int_equal(r.stream, SW_STREAM_FILE);
  assert_int_equal(r.line_len, 0);
}

static void test_bad_lines(void **state) {
  (void)state;
  static const struct {
    const char *s;
    size_t n;
  } bad[] = {
      {S("")},
      {S("{}")},
      {S("{\"ts\":\"2026-11-23T15:33:52Z\",\"labels\":{}}")},                         /* no line */
      {S("{\"ts\":\"yesterday\",\"labels\":{},\"line\":\"x\"}")},                    /* bad time */
      {S("{\"ts\":\"2026-11-23T15:33:52Z\",\"labels\":\"x\",\"line\":\"x\"}")},      /* labels not an object */
      {S("{\"ts\":\"2026-11-23T15:33:52Z\",\"labels\":{},\"line\":1}")},            /* line not a string */
      {S("{\"ts\":\"2026-11-23T15:33:52Z\",\"labels\":{},\"line\":\"x\"")},          /* cut */
      {S("{\"ts\":\"2026-11-23T15:33:52Z\",\"labels\":{},\"line\":\"x\"} trailing")},
      {S("{\"ts\":\"2026-11-23T15:33:52Z\",\"labels\":{,},\"line\":\"x\"}")},
      {S("{\"ts\":\"2026-11-23T15:33:52Z\",\"labels\":{},\"line\":\"a\x01\"}")},     /* raw control byte */
      {S("[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[")},
  };
  struct sw_ndjson_rec r;
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) assert_int_equal(parse(bad[i].s, bad[i].n, &r), SW_ECORRUPT);
  /* A line whose escape is cut short decodes to an error, not past its end. */
  assert_int_equal(parse(S("{\"ts\":\"2026-11-23T15:33:52Z\",\"labels\":{},\"line\":\"a\\u12\"}"), &r), SW_ECORRUPT);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_what_the_sink_writes_reads_back),
      cmocka_unit_test(test_order_and_unknown_members),
      cmocka_unit_test(test_bad_lines),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
