/* config_cases.h - table helpers shared by the config loader's unit tests: load a config text
 * and compare every error message, exactly and in order. Include after cmocka.h. */
#ifndef SW_TEST_CONFIG_CASES_H
#define SW_TEST_CONFIG_CASES_H

#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "agent/config/config.h"

#define NAME "/etc/spillway/t.yaml"
#define F NAME ": "
#define MAXW 8

struct err_case {
  const char *text;
  const char *want[MAXW]; /* exact messages, in order */
};

/* Loads text (name as the file name); true when it fails with exactly `want`. */
static inline bool fails_with(const char *name, const char *text, size_t len, const char *const *want) {
  struct sw_config *cfg = NULL;
  struct sw_conf_errors e = {0};
  int rc = sw_config_load_string(name, text, len, &cfg, &e);
  size_t nwant = 0;
  while (nwant < MAXW && want[nwant]) nwant++;
  bool ok = rc == SW_ECONFIG && !cfg && e.n == nwant;
  for (size_t i = 0; ok && i < nwant; i++) ok = !strcmp(e.msgs[i], want[i]);
  if (!ok) {
    print_message("---- input:\n%.400s\n---- rc=%d, got %zu messages:\n", text, rc, e.n);
    for (size_t i = 0; i < e.n; i++) print_message("  %s\n", e.msgs[i]);
    print_message("---- wanted:\n");
    for (size_t i = 0; i < nwant; i++) print_message("  %s\n", want[i]);
  }
  sw_config_free(cfg);
  sw_conf_errors_free(&e);
  return ok;
}

static inline void run_cases(const struct err_case *cases, size_t n) {
  size_t failed = 0;
  for (size_t i = 0; i < n; i++)
    if (!fails_with(NAME, cases[i].text, strlen(cases[i].text), cases[i].want)) failed++;
  assert_int_equal(failed, 0);
}
#define RUN(cases) run_cases(cases, sizeof cases / sizeof cases[0])

static inline struct sw_config *load_ok(const char *name, const char *text) {
  struct sw_config *cfg = NULL;
  struct sw_conf_errors e = {0};
  int rc = sw_config_load_string(name, text, strlen(text), &cfg, &e);
  for (size_t i = 0; i < e.n; i++) print_message("unexpected: %s\n", e.msgs[i]);
  assert_int_equal(rc, 0);
  assert_int_equal(e.n, 0);
  assert_non_null(cfg);
  sw_conf_errors_free(&e);
  return cfg;
}

#define SRC "sources:\n  - {name: a, type: file, paths: [\"/x/*.log\"]"
#define SRC_END "}\n"
#define E10 "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9" /* 10 x U+00E9 */

static inline void write_file(const char *dir, const char *name, const char *data, size_t len) {
  char p[PATH_MAX];
  snprintf(p, sizeof p, "%s/%s", dir, name);
  FILE *f = fopen(p, "wb");
  assert_non_null(f);
  assert_int_equal(fwrite(data, 1, len, f), len);
  assert_int_equal(fclose(f), 0);
  assert_int_equal(chmod(p, 0600), 0); /* as secrets should be: no "readable by" warnings */
}

#endif
