/* test_config_sections.c - the config loader's `redact`, `retention` and `disk_pressure`
 * sections: defaults, every error message, and that a loaded redact section compiles. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config_cases.h"

static void test_redact_section(void **state) {
  (void)state;
  char dir[] = "/tmp/sw_test_config_XXXXXX";
  assert_non_null(mkdtemp(dir));
  write_file(dir, "salt", "pepper\n", 7);
  char name[PATH_MAX], salt[PATH_MAX];
  snprintf(name, sizeof name, "%s/spillway.yaml", dir);
  snprintf(salt, sizeof salt, "%s/salt", dir);
  struct sw_config *cfg = load_ok(name,
                                  "redact:\n"
                                  "  builtin: [email, credit_card]\n"
                                  "  rules:\n"
                                  "    - {name: ssn, pattern: '\\b(\\d{3})-\\d{2}-\\d{4}\\b', replace: '$1-**-****'}\n"
                                  "    - {name: ticket, pattern: 'T-[0-9]+'}\n"
                                  "  fields: {keys: [password, Token], action: hash}\n"
                                  "  hash_salt_file: salt\n");
  const struct sw_redact_section *rs = &cfg->redact;
  assert_int_equal(rs->nbuiltin, 2);
  assert_string_equal(rs->builtin[1], "credit_card");
  assert_int_equal(rs->nrules, 2);
  assert_string_equal(rs->rules[0].replace, "$1-**-****");
  assert_string_equal(rs->rules[1].replace, "[REDACTED]"); /* the default */
  assert_int_equal(rs->nkeys, 2);
  assert_string_equal(rs->keys[1], "Token");
  assert_int_equal(rs->action, SW_REDACT_HASH);
  assert_string_equal(rs->hash_salt, "pepper");
  /* the section compiles into the engine the agent runs */
  struct sw_redactor *r = NULL;
  char err[256];
  assert_int_equal(sw_config_redactor(cfg, &r, err, sizeof err), 0);
  assert_int_equal(sw_redactor_nrules(r), 5);
  assert_string_equal(sw_redactor_rule_name(r, 0), "fields");
  assert_string_equal(sw_redactor_rule_name(r, 3), "ssn");
  struct sw_redact_ctx *ctx = sw_redact_ctx_create(r);
  assert_non_null(ctx);
  const char *out;
  size_t n;
  const char *in = "ssn 123-45-6789 mail a@b.example T-42";
  assert_int_equal(sw_redact_line(ctx, in, strlen(in), 0, &out, &n), 0);
  assert_int_equal(n, strlen("ssn 123-**-**** mail [REDACTED:email] [REDACTED]"));
  assert_memory_equal(out, "ssn 123-**-**** mail [REDACTED:email] [REDACTED]", n);
  sw_redact_ctx_destroy(ctx);
  sw_redactor_destroy(r);
  sw_config_free(cfg);

  /* no section: nothing to do */
  cfg = load_ok(name, "log: {level: info}\n");
  assert_int_equal(cfg->redact.nbuiltin + cfg->redact.nrules + cfg->redact.nkeys, 0);
  assert_int_equal(cfg->redact.action, SW_REDACT_MASK);
  sw_config_free(cfg);
  unlink(salt);
  rmdir(dir);
}

static void test_redact_errors(void **state) {
  (void)state;
  static const struct err_case cases[] = {
      {"redact: {builtin: [email, emial]}\n",
       {F "redact.builtin[1]: unknown pack \"emial\" (did you mean \"email\"?)"}},
      {"redact: {builtin: [frobnicator]}\n", {F "redact.builtin[0]: unknown pack \"frobnicator\""}},
      {"redact: {builtin: [jwt, ipv4, jwt]}\n", {F "redact.builtin[2]: pack \"jwt\" is listed twice"}},
      {"redact: {builtin: 5}\n", {F "redact.builtin: expected a list of strings"}},
      {"redact: {rules: [{name: a, pattern: 'ab(c'}]}\n",
       {F "redact.rules[0].pattern: bad pattern at offset 4: missing closing parenthesis"}},
      {"redact: {rules: [{name: a}, {pattern: x}, {name: 'a b', pattern: x}]}\n",
       {F "redact.rules[0].pattern: required", F "redact.rules[1].name: required",
        F "redact.rules[2].name: invalid name \"a b\": use letters, digits, '_', '.', '-'"}},
      {"redact: {rules: [{name: a, pattern: x, replace: 'x$3'}]}\n",
       {F "redact.rules[0].replace: group $3 does not exist (the pattern has 0)"}},
      /* ${...} is environment expansion first: a named group is written $${name} */
      {"redact: {rules: [{name: a, pattern: '(?<user>x)', replace: '$${usr}'}]}\n",
       {F "redact.rules[0].replace: unknown group name \"usr\""}},
      {"redact: {rules: [{name: a, pattern: x, replace: 'US$ 5'}]}\n",
       {F "redact.rules[0].replace: \"$\" at offset 2 must be followed by a digit, {name} or $ (write $$ for a $)"}},
      {"redact: {rules: [{name: a, pattern: x}, {name: a, pattern: y}]}\n",
       {F "redact.rules[1].name: duplicate rule name \"a\""}},
      {"redact: {builtin: [email], rules: [{name: email, pattern: y}]}\n",
       {F "redact.rules[0].name: duplicate rule name \"email\""}},
      {"redact: {fields: {keys: [password], action: hash}}\n",
       {F "redact.hash_salt_file: required when fields.action is hash"}},
      {"redact: {fields: {keys: [a, ''], action: scramble}}\n",
       {F "redact.fields.action: must be one of: mask, hash, drop", F "redact.fields.keys[1]: must not be empty"}},
      {"redact: {fields: {key: [a]}, rule: []}\n",
       {F "redact.fields.key: unknown key (did you mean \"keys\"?)", F "redact.rule: unknown key (did you mean \"rules\"?)"}},
  };
  RUN(cases);
}

/* ---- retention, disk_pressure, truncate_shipped ---- */

static void test_retention_section(void **state) {
  (void)state;
  struct sw_config *cfg = load_ok(NAME, "retention: [{name: app, paths: [logs/*.log]}]\n");
  const struct sw_retention_conf *r = cfg->retention;
  assert_int_equal(cfg->nretention, 1);
  assert_string_equal(r->paths[0], "/etc/spillway/logs/*.log"); /* relative to the config */
  assert_int_equal(r->max_size, 0);                             /* no size rule */
  assert_int_equal(r->max_age_ms, 0);
  assert_int_equal(r->method, SW_ROTATE_RENAME);
  assert_null(r->signal_pid_file);
  assert_int_equal(r->signal, SW_SIG_HUP);
  assert_int_equal(r->codec, SW_CODEC_ZSTD);
  assert_int_equal(r->level, 3);
  assert_false(r->delay_compress);
  assert_int_equal(r->keep_count, 7);
  assert_int_equal(r->keep_max_age_ms, 0);
  assert_int_equal(r->keep_max_total_bytes, 0);
  assert_null(cfg->disk_pressure.path); /* absent: off, defaults still filled */
  assert_int_equal(cfg->disk_pressure.soft_percent, 80);
  assert_int_equal(cfg->disk_pressure.hard_percent, 90);
  assert_int_equal(cfg->disk_pressure.interval_ms, 10000);
  assert_int_equal(cfg->disk_pressure.rotate_min_size, 1u << 20);
  assert_false(cfg->disk_pressure.drop_unshipped);
  sw_config_free(cfg);

  cfg = load_ok(NAME,
                "retention:\n"
                "  - name: app\n"
                "    paths: [/var/log/app/*.log]\n"
                "    exclude: [/var/log/app/keep.log]\n"
                "    rotate: {max_size: 100MiB, max_age: 1d, method: rename,\n"
                "             postrotate_signal: {pid_file: run/app.pid, signal: USR1}}\n"
                "    compress: {codec: zstd, level: 9, delay_compress: true}\n"
                "    keep: {count: 0, max_age: 7d, max_total_bytes: 2GiB}\n"
                "  - {name: web, paths: /w.log, rotate: {method: copytruncate}, compress: {codec: none}}\n"
                "disk_pressure: {path: /var, soft_percent: 70, hard_percent: 85, interval: 2s,\n"
                "                rotate_min_size: 4MiB, drop_unshipped: true}\n"
                "sources: [{name: d, type: docker, paths: /d/*.log, truncate_shipped: 256MiB}]\n");
  r = cfg->retention;
  assert_int_equal(cfg->nretention, 2);
  assert_int_equal(r[0].nexclude, 1);
  assert_int_equal(r[0].max_size, 100u << 20);
  assert_int_equal(r[0].max_age_ms, 86400000);
  assert_string_equal(r[0].signal_pid_file, "/etc/spillway/run/app.pid");
  assert_int_equal(r[0].signal, SW_SIG_USR1);
  assert_int_equal(r[0].level, 9);
  assert_true(r[0].delay_compress);
  assert_int_equal(r[0].keep_count, 0);
  assert_int_equal(r[0].keep_max_age_ms, 7 * 86400000ull);
  assert_int_equal(r[0].keep_max_total_bytes, 2ull << 30);
  assert_int_equal(r[1].method, SW_ROTATE_COPYTRUNCATE);
  assert_int_equal(r[1].codec, SW_CODEC_NONE);
  assert_int_equal(r[1].npaths, 1);
  assert_string_equal(cfg->disk_pressure.path, "/var");
  assert_int_equal(cfg->disk_pressure.soft_percent, 70);
  assert_int_equal(cfg->disk_pressure.hard_percent, 85);
  assert_int_equal(cfg->disk_pressure.interval_ms, 2000);
  assert_int_equal(cfg->disk_pressure.rotate_min_size, 4u << 20);
  assert_true(cfg->disk_pressure.drop_unshipped);
  assert_int_equal(cfg->sources[0].truncate_shipped, 256u << 20);
  sw_config_free(cfg);

  static const struct err_case cases[] = {
      {"retention: [{paths: [/x]}]\n", {F "retention[0].name: required"}},
      {"retention: [{name: a}]\n", {F "retention[0].paths: required"}},
      {"retention: [{name: a, paths: [/x], rotate: {method: move}}]\n",
       {F "retention[0].rotate.method: must be one of: rename, copytruncate"}},
      {"retention: [{name: a, paths: [/x], rotate: {max_age: 10}}]\n",
       {F "retention[0].rotate.max_age: expected a duration like 500ms, 2s, 5m, 1h, 7d, got 10 (add a unit, e.g. 10s)"}},
      {"retention: [{name: a, paths: [/x], rotate: {max_age: 10ms}}]\n",
       {F "retention[0].rotate.max_age: must be at least 1s"}},
      {"retention: [{name: a, paths: [/x], rotate: {postrotate_signal: {pid_file: /p, signal: KILL}}}]\n",
       {F "retention[0].rotate.postrotate_signal.signal: must be one of: HUP, USR1, USR2, INT, TERM, QUIT, WINCH"}},
      {"retention: [{name: a, paths: [/x], rotate: {method: copytruncate, postrotate_signal: {pid_file: /p}}}]\n",
       {F "retention[0].rotate.postrotate_signal: only for method rename (copytruncate keeps the writer's file)"}},
      {"retention: [{name: a, paths: [/x], compress: {codec: gzip, level: 0}}]\n",
       {F "retention[0].compress.codec: must be one of: zstd, none", F "retention[0].compress.level: must be at least 1"}},
      {"retention: [{name: a, paths: [/x], keep: {count: -1, max_total_bytes: 0}}]\n",
       {F "retention[0].keep.count: must be at least 0", F "retention[0].keep.max_total_bytes: must be at least 1B"}},
      {"retention: [{name: a, paths: [/x]}, {name: a, paths: [/y]}]\n",
       {F "retention[1].name: duplicate retention name \"a\""}},
      {"retention: [{name: a, paths: [\"/var/[x\"]}]\n",
       {F "retention[0].paths[0]: bad glob \"/var/[x\": unterminated ["}},
      {"disk_pressure: {}\n", {F "disk_pressure.path: required"}},
      {"disk_pressure: {path: /v, soft_percent: 90, hard_percent: 90}\n",
       {F "disk_pressure.hard_percent: must be above soft_percent (90)"}},
      {"disk_pressure: {path: /v, hard_percent: 100, interval: 10ms}\n",
       {F "disk_pressure.hard_percent: must be at most 99", F "disk_pressure.interval: must be at least 100ms"}},
      {"sources: [{name: f, type: file, paths: /f, truncate_shipped: 1MiB}]\n",
       {F "sources[0].truncate_shipped: key \"truncate_shipped\" is not valid for source type file"}},
      {"sources: [{name: c, type: cri, paths: /c, truncate_shipped: 100}]\n",
       {F "sources[0].truncate_shipped: must be at least 1KiB"}},
  };
  RUN(cases);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_redact_section),
      cmocka_unit_test(test_redact_errors),
      cmocka_unit_test(test_retention_section),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
