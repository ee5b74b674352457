/* Unit tests for agent/process/process.c: filters, sampling, rate limits on record time, log
 * metrics and extraction, on a configuration loaded from text. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/config/config.h"
#include "agent/process/process.h"
#include "common/hash.h"

static struct sw_config *load(const char *text) {
  struct sw_config *cfg = NULL;
  struct sw_conf_errors e = {0};
  int rc = sw_config_load_string("/tmp/t.yaml", text, strlen(text), &cfg, &e);
  for (size_t i = 0; i < e.n; i++) fprintf(stderr, "%s\n", e.msgs[i]);
  sw_conf_errors_free(&e);
  assert_int_equal(rc, 0);
  return cfg;
}

#define HEAD "data_dir: /tmp/xd\nhostname: h\nsources:\n  - { name: app, type: file, paths: [/tmp/x/*.log], " \
             "extract: { format: json, fields: { level: lvl, trace_id: t.id }, normalize_level: true } }\n" \
             "  - { name: other, type: cri, paths: [/tmp/y/*.log] }\n"

static size_t xn; /* length of the last record's own labels (not NUL-terminated) */

static int rec(struct sw_process *p, struct sw_process_file *pf, int64_t ts, const char *line, const char **xl) {
  return sw_process_record(p, pf, NULL, ts, 1, line, strlen(line), xl, &xn);
}

static void test_filters(void **state) {
  (void)state;
  struct sw_config *cfg = load(HEAD
      "filters:\n"
      "  - { name: hz, action: drop, match: [source=app], line: 'GET /healthz' }\n"
      "  - { name: dbg, action: drop, match: ['level=~debug|trace'] }\n"
      "  - { name: only, action: keep, match: [source=other], line: 'ERROR' }\n"
      "  - { name: s, action: sample, line: sampled, keep_one_in: 4 }\n");
  struct sw_process *p;
  char err[256];
  assert_int_equal(sw_process_create(cfg, &p, err, sizeof err), 0);
  assert_non_null(p);
  struct sw_process_file *app = sw_process_file_new(p, 0, "{\"host\":\"h\",\"source\":\"app\"}");
  struct sw_process_file *oth = sw_process_file_new(p, 1, "{\"host\":\"h\",\"source\":\"other\"}");
  const char *xl;
  assert_int_equal(rec(p, app, 1, "GET /healthz 200", &xl), 0);
  assert_int_equal(rec(p, oth, 1, "GET /healthz 200", &xl), 0); /* not ERROR: keep drops it */
  assert_int_equal(rec(p, oth, 1, "ERROR x", &xl), 1);
  assert_int_equal(rec(p, app, 1, "{\"lvl\":\"DBG\",\"t\":{\"id\":\"a\"}}", &xl), 0);
  assert_int_equal(rec(p, app, 1, "{\"lvl\":\"W\",\"t\":{\"id\":\"a\"}}", &xl), 1);
  const char *want = "{\"level\":\"warning\",\"trace_id\":\"a\"}";
  assert_int_equal(xn, strlen(want));
  assert_memory_equal(xl, want, xn);
  /* sampling: FNV-1a-64 of the text, then the timestamp's 8 bytes little-endian, mod 4 */
  int kept = 0;
  for (int i = 0; i < 400; i++) {
    char line[64];
    snprintf(line, sizeof line, "sampled %d", i);
    int64_t ts = 1000 + i;
    uint64_t h = sw_fnv1a(SW_FNV1A_INIT, line, strlen(line));
    uint8_t le[8];
    for (int k = 0; k < 8; k++) le[k] = (uint8_t)((uint64_t)ts >> (8 * k));
    h = sw_fnv1a(h, le, 8);
    int got = rec(p, app, ts, line, &xl);
    assert_int_equal(got, h % 4 == 0);
    kept += got;
  }
  assert_true(kept > 60 && kept < 140);
  struct sw_process_filter_stats fs;
  sw_process_filter_stats(p, 0, &fs);
  assert_string_equal(fs.name, "hz");
  assert_int_equal(fs.removed, 1);
  sw_process_filter_stats(p, 2, &fs);
  assert_int_equal(fs.matched, 2);
  assert_int_equal(fs.removed, 1);
  sw_process_filter_stats(p, 3, &fs);
  assert_int_equal(fs.removed, 400 - kept);
  sw_process_file_free(app);
  sw_process_file_free(oth);
  sw_process_destroy(p);
  sw_config_free(cfg);
}

static void test_rate_limit(void **state) {
  (void)state;
  struct sw_config *cfg = load(HEAD
      "filters:\n"
      "  - { name: noisy, action: rate_limit, per: [trace_id], records_per_second: 100, burst: 10 }\n");
  struct sw_process *p;
  char err[256];
  assert_int_equal(sw_process_create(cfg, &p, err, sizeof err), 0);
  struct sw_process_file *app = sw_process_file_new(p, 0, "{\"source\":\"app\"}");
  const char *xl;
  /* 1000 records/s for 2 s of record time per key: burst 10 then 100/s */
  int kept_a = 0, kept_b = 0;
  for (int i = 0; i < 2000; i++) {
    int64_t ts = 5000000000LL + (int64_t)i * 1000000;
    kept_a += rec(p, app, ts, "{\"t\":{\"id\":\"a\"}}", &xl);
    if (i < 50) kept_b += rec(p, app, ts, "{\"t\":{\"id\":\"b\"}}", &xl);
  }
  assert_int_equal(kept_a, 10 + 199); /* 1.999 s of refill at 100/s */
  assert_int_equal(kept_b, 10 + 4);
  /* older records refill nothing */
  assert_int_equal(rec(p, app, 1, "{\"t\":{\"id\":\"a\"}}", &xl), 0);
  sw_process_file_free(app);
  sw_process_destroy(p);
  sw_config_free(cfg);
}

struct seen {
  char v[8][64];
  uint64_t c[8];
  int n;
};

static void collect(void *arg, const char *const *values, uint64_t count) {
  struct seen *s = arg;
  snprintf(s->v[s->n], sizeof s->v[0], "%s/%s", values[0], values[1]);
  s->c[s->n++] = count;
}

static void test_metrics(void **state) {
  (void)state;
  struct sw_config *cfg = load(HEAD
      "filters:\n  - { name: all, action: drop, match: [source=app] }\n"
      "log_metrics:\n"
      "  - { name: errs, match: [level=error], labels: [source, trace_id], max_series: 2 }\n");
  struct sw_process *p;
  char err[256];
  assert_int_equal(sw_process_create(cfg, &p, err, sizeof err), 0);
  struct sw_process_file *app = sw_process_file_new(p, 0, "{\"source\":\"app\"}");
  const char *xl;
  const char *lines[] = {"{\"lvl\":\"E\",\"t\":{\"id\":\"x\"}}", "{\"lvl\":\"error\",\"t\":{\"id\":\"x\"}}",
                         "{\"lvl\":\"error\"}", "{\"lvl\":\"error\",\"t\":{\"id\":\"z\"}}", "{\"lvl\":\"info\"}"};
  for (int i = 0; i < 5; i++) assert_int_equal(rec(p, app, 1, lines[i], &xl), 0); /* dropped, still counted */
  struct seen s = {0};
  sw_process_metric_series(p, 0, collect, &s);
  assert_int_equal(s.n, 2);
  assert_string_equal(s.v[0], "app/x");
  assert_int_equal(s.c[0], 2);
  assert_string_equal(s.v[1], "app/unknown");
  assert_int_equal(s.c[1], 1);
  uint64_t over;
  sw_process_metric(p, 0, &over);
  assert_int_equal(over, 1); /* z: a third series */
  sw_process_file_free(app);
  sw_process_destroy(p);
  sw_config_free(cfg);
}

static void test_config_errors(void **state) {
  (void)state;
  const char *bad[][2] = {
      {HEAD "filters:\n  - { name: a, action: keep, match: [source=x] }\n", "filters[0]: action keep needs line"},
      {HEAD "filters:\n  - { name: a, action: drop }\n", "filters[0]: action drop needs match or line"},
      {HEAD "filters:\n  - { name: a, action: sample, line: x }\n", "filters[0].keep_one_in"},
      {HEAD "filters:\n  - { name: a, action: drop, match: ['bad'] }\n", "filters[0].match[0]: label matcher"},
      {HEAD "filters:\n  - { name: a, action: drop, line: x, keep_one_in: 3 }\n", "filters[0].keep_one_in"},
      {HEAD "log_metrics:\n  - { name: 'a-b' }\n", "log_metrics[0].name"},
      {HEAD "log_metrics:\n  - { name: metric_overflow }\n", "log_metrics[0].name: \"metric_overflow\" is taken"},
      {HEAD "sinks:\n  - { name: s, type: file, path: /tmp/xd/o, match: ['x=~('] }\n", "sinks[0].match[0]"},
      {"data_dir: /tmp/xd\nsources:\n  - { name: a, type: file, paths: [/tmp/x/*.log], extract: { fields: { source: x } } }\n",
       "sources[0].extract.fields.source"},
      {"data_dir: /tmp/xd\nsources:\n  - { name: a, type: file, paths: [/tmp/x/*.log], extract: { format: regex, pattern: 'x' } }\n",
       "named groups"},
      {"data_dir: /tmp/xd\nsources:\n  - { name: a, type: file, paths: [/tmp/x/*.log], extract: { format: regex, pattern: '^(?P<filename>x)' } }\n",
       "sources[0].extract.pattern: group filename: a label every record of its file has already"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    struct sw_config *cfg = NULL;
    struct sw_conf_errors e = {0};
    assert_int_equal(sw_config_load_string("/tmp/t.yaml", bad[i][0], strlen(bad[i][0]), &cfg, &e), SW_ECONFIG);
    assert_int_equal(e.n, 1);
    if (!strstr(e.msgs[0], bad[i][1])) fail_msg("case %zu: %s", i, e.msgs[0]);
    sw_conf_errors_free(&e);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_filters), cmocka_unit_test(test_rate_limit), cmocka_unit_test(test_metrics),
      cmocka_unit_test(test_config_errors),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
