/* test_ownfiles.c - the agent's own files: which globs can reach data_dir or a file sink's
 * output (lexically), which names are retention temporaries or compressed archives, and the
 * config errors that refuse such globs. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/config/config.h"
#include "agent/tail/ownfiles.h"

#include "../config/config_cases.h"

static void test_glob_reaches(void **state) {
  (void)state;
  static const struct {
    const char *glob, *dir;
    int want;
  } cases[] = {
      {"/w/data/*", "/w/data", 1},
      {"/w/*/*", "/w/data", 1},
      {"/w/d[a-z]ta/sub/*.log", "/w/data", 0}, /* needs a subdirectory the agent never makes */
      {"/w/data/sub/*.log", "/w/data", 1},     /* spells data_dir out */
      {"/var/lib/*/containers/*/*-json.log", "/var/lib/spillway", 0},
      {"/w/*", "/w/data", 0},          /* only the directory itself, never a file in it */
      {"/w/out/*", "/w/data", 0},
      {"/w/app/../data/*", "/w/data", 1},
      {"/w/./data//x", "/w/data/", 1},
      {"/w/.*/*", "/w/data", 0},
      {"/w/*/*", "/w/.data", 0},       /* glob's * does not match a leading dot */
      {"/w/.d*/*", "/w/.data", 1},
      {"/var/log/pods/*/*/*.log", "/var/lib/spillway", 0},
      {"/*/*/*/*", "/var/lib/spillway", 1},
      {"/x", "/", 1},
      {"/w/data\\*/*", "/w/data*", 1}, /* an escaped star is a literal one */
      {"/w/data\\*/*", "/w/datax", 0},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
    if (sw_own_glob_reaches(cases[i].glob, cases[i].dir) != cases[i].want)
      fail_msg("reaches(%s, %s) != %d", cases[i].glob, cases[i].dir, cases[i].want);
}

static void test_glob_matches(void **state) {
  (void)state;
  assert_int_equal(sw_own_glob_matches("/w/out/*", "/w/out/shipped.ndjson"), 1);
  assert_int_equal(sw_own_glob_matches("/w/out/*.log", "/w/out/shipped.ndjson"), 0);
  assert_int_equal(sw_own_glob_matches("/w/*", "/w/out/shipped.ndjson"), 0);
  assert_int_equal(sw_own_glob_matches("/w/x/../out/s*", "/w/out/shipped.ndjson"), 1);
}

static void test_names(void **state) {
  (void)state;
  static const struct {
    const char *path;
    int skipped;
  } cases[] = {
      {"/a/app.log.1.zst.tmp-AbC123", 1}, {"/a/app.log.2.tmp-000xyz", 1}, {"/a/app.log.1.zst", 1},
      {"/a/app.log.3.gz", 1},            {"/a/x.xz", 1},                 {"/a/app.log", 0},
      {"/a/app.log.1", 0},               {"/a/app.tmp-abcdef", 0},       {"/a/app.log.1.tmp-abc", 0},
      {"/a/zst", 0},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
    if ((sw_own_name_why(cases[i].path) != NULL) != cases[i].skipped)
      fail_msg("%s: skipped should be %d", cases[i].path, cases[i].skipped);
}

static void test_config_refuses(void **state) {
  (void)state;
  static const struct err_case cases[] = {
      {"data_dir: /w/data\n"
       "sources: [{name: a, type: file, paths: [/w/out/*, /w/data/*, /w/app/*.log]}]\n"
       "sinks: [{name: local, type: file, path: /w/out/shipped.ndjson}]\n",
       {F "sources[0].paths[0]: matches \"/w/out/shipped.ndjson\", the output of file sink \"local\": "
          "the agent would read what it writes; narrow the glob or add the file to exclude",
        F "sources[0].paths[1]: matches files under data_dir \"/w/data\" (spillway.db, its -wal and "
          "-shm: the agent's own buffer); narrow the glob or move data_dir"}},
      {"data_dir: /w/data\n"
       "sources: [{name: a, type: file, paths: [/w/out/*], exclude: [/w/out/*.ndjson]}]\n"
       "sinks: [{name: local, type: file, path: /w/out/shipped.ndjson}]\n",
       {NULL}},
      {"data_dir: /w/data\n"
       "sources: [{name: a, type: file, paths: [/w/app/*.log]},\n"
       "          {name: b, type: file, paths: [/w/x/*, '/*/*/*']}]\n",
       {F "sources[1].paths[1]: matches files under data_dir \"/w/data\" (spillway.db, its -wal and "
          "-shm: the agent's own buffer); narrow the glob or move data_dir"}},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    if (!cases[i].want[0]) {
      sw_config_free(load_ok(NAME, cases[i].text));
      continue;
    }
    assert_true(fails_with(NAME, cases[i].text, strlen(cases[i].text), cases[i].want));
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_glob_reaches),
      cmocka_unit_test(test_glob_matches),
      cmocka_unit_test(test_names),
      cmocka_unit_test(test_config_refuses),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
