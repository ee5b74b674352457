/* Unit tests for common/log.c: JSON lines and the limiting of repeated lines (with a fake
 * clock; stderr is redirected to a temporary file and read back). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"

static int64_t fake_now;
static int64_t fake_clock(void) { return fake_now; }

static FILE *capture;
static int saved_fd = -1;

static int setup(void **state) {
  (void)state;
  fflush(stderr);
  capture = tmpfile();
  assert_non_null(capture);
  saved_fd = dup(2);
  assert_true(dup2(fileno(capture), 2) >= 0);
  fake_now = INT64_C(1000) * 1000000000;
  sw_log_set_clock(fake_clock);
  sw_log_setup(SW_L_DEBUG, 1);
  return 0;
}

static int teardown(void **state) {
  (void)state;
  fflush(stderr);
  dup2(saved_fd, 2);
  close(saved_fd);
  fclose(capture);
  sw_log_set_clock(NULL);
  sw_log_setup(SW_L_INFO, 1);
  return 0;
}

/* Everything written since the last call. */
static char *take(void) {
  static long off;
  fflush(stderr);
  fseek(capture, 0, SEEK_END);
  long end = ftell(capture);
  char *s = calloc(1, (size_t)(end - off) + 1);
  fseek(capture, off, SEEK_SET);
  assert_int_equal(fread(s, 1, (size_t)(end - off), capture), (size_t)(end - off));
  off = end;
  return s;
}

static int count(const char *s, const char *needle) {
  int n = 0;
  for (const char *p = s; (p = strstr(p, needle)) != NULL; p += strlen(needle)) n++;
  return n;
}

static void test_repeats_are_limited(void **state) {
  (void)state;
  free(take());
  for (int i = 0; i < 20; i++) sw_log(SW_L_WARN, "tail", "read %s: %s", "/x.log", "Input/output error");
  for (int i = 0; i < 3; i++) sw_log(SW_L_WARN, "tail", "read /y.log: Input/output error");
  char *out = take();
  assert_int_equal(count(out, "\"msg\":\"read /x.log: Input/output error\"}\n"), SW_LOG_BURST);
  assert_int_equal(count(out, "read /y.log"), 3); /* another message is another kind */
  assert_int_equal(count(out, "suppressed"), 0);
  free(out);
  /* Same window: still dropped. */
  fake_now += SW_LOG_WINDOW_NS - 1;
  sw_log(SW_L_WARN, "tail", "read /x.log: Input/output error");
  out = take();
  assert_string_equal(out, "");
  free(out);
  /* Next window: printed again, with the count of what was dropped. */
  fake_now += 1;
  sw_log(SW_L_WARN, "tail", "read /x.log: Input/output error");
  sw_log(SW_L_WARN, "tail", "read /x.log: Input/output error");
  out = take();
  assert_int_equal(count(out, "\"msg\":\"read /x.log: Input/output error\",\"suppressed\":16}\n"), 1);
  assert_int_equal(count(out, "\"msg\":\"read /x.log: Input/output error\"}\n"), 1);
  free(out);
}

static void test_level_and_component_are_part_of_the_kind(void **state) {
  (void)state;
  free(take());
  for (int i = 0; i < 10; i++) {
    sw_log(SW_L_ERROR, "sink", "same text");
    sw_log(SW_L_WARN, "sink", "same text");
    sw_log(SW_L_WARN, "http", "same text");
    sw_log(SW_L_DEBUG, "http", "same text"); /* debug lines are never limited */
  }
  char *out = take();
  assert_int_equal(count(out, "\"level\":\"error\",\"component\":\"sink\""), SW_LOG_BURST);
  assert_int_equal(count(out, "\"level\":\"warn\",\"component\":\"sink\""), SW_LOG_BURST);
  assert_int_equal(count(out, "\"level\":\"warn\",\"component\":\"http\""), SW_LOG_BURST);
  assert_int_equal(count(out, "\"level\":\"debug\""), 10);
  free(out);
}

static void test_many_kinds_and_text_format(void **state) {
  (void)state;
  free(take());
  /* More kinds than the table holds: each distinct message prints (none is a repeat). */
  for (int i = 0; i < 500; i++) sw_log(SW_L_INFO, "tail", "following /var/log/%d.log", i);
  char *out = take();
  assert_int_equal(count(out, "following /var/log/"), 500);
  free(out);
  sw_log_setup(SW_L_INFO, 0);
  for (int i = 0; i < 7; i++) sw_log(SW_L_INFO, "agent", "plain");
  fake_now += SW_LOG_WINDOW_NS;
  sw_log(SW_L_INFO, "agent", "plain");
  sw_log(SW_L_DEBUG, "agent", "below the level");
  out = take();
  assert_int_equal(count(out, " info  agent: plain\n"), SW_LOG_BURST);
  assert_int_equal(count(out, " info  agent: plain (2 similar lines suppressed)\n"), 1);
  assert_int_equal(count(out, "below the level"), 0);
  free(out);
  sw_log_setup(SW_L_DEBUG, 1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_repeats_are_limited),
      cmocka_unit_test(test_level_and_component_are_part_of_the_kind),
      cmocka_unit_test(test_many_kinds_and_text_format),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
