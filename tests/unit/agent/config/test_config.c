/* test_config.c - the config loader: every error message, defaults, ${ENV}, secrets, paths.
 *
 * Most tests are tables of (config text, exact messages expected). Messages are compared whole
 * and in order, so a changed wording fails here first.
 */
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

#include "agent/config/config.h"
#include "agent/config/schema.h"

#include "../../alloc_inject.h"

#include "config_cases.h"

/* ---- parsing ---- */

static void test_yaml_errors(void **state) {
  (void)state;
  static const struct err_case cases[] = {
      {"a: [1, 2\n", {F "line 2, column 1: did not find expected ',' or ']'"}},
      {"log:\n\tlevel: info\n",
       {F "line 2, column 1: found character that cannot start any token (YAML is indented with spaces, not tabs)"}},
      {"log: {}\nlog: {}\n", {F "log: duplicate key (line 2, column 1)"}},
      {"buffer:\n  max_bytes: 1GiB\n  max_bytes: 2GiB\n", {F "buffer.max_bytes: duplicate key (line 3, column 3)"}},
      {"sources:\n  - name: a\n    name: b\n", {F "sources[0].name: duplicate key (line 3, column 5)"}},
      {"log: {level: info, level: warn}\nserver: {listen: a, listen: b}\n",
       {F "log.level: duplicate key (line 1, column 20)", F "server.listen: duplicate key (line 2, column 21)"}},
      {"log: {}\n---\nlog: {}\n", {F "line 2, column 1: more than one document (\"---\") in the file"}},
      {"log: *x\n", {F "line 1, column 6: unknown alias \"*x\""}},
      {"log: &x {level: *x}\n", {F "line 1, column 17: unknown alias \"*x\""}},
      {"log: !!binary abc\n", {F "line 1, column 6: unsupported tag \"tag:yaml.org,2002:binary\""}},
      {"log: !custom {}\n", {F "line 1, column 6: unsupported tag \"!custom\""}},
      {"sources: !!set [a]\n", {F "line 1, column 10: unsupported tag \"tag:yaml.org,2002:set\""}},
      {"? [a]\n: 1\n", {F "line 1, column 3: only strings can be mapping keys"}},
      {"hostname: \"a\\0b\"\n", {F "line 1, column 11: NUL characters are not allowed"}},
      {"- a\n- b\n", {F "expected a mapping at the top level, got a list"}},
      {"just text\n", {F "expected a mapping at the top level, got \"just text\""}},
      {".Inf", {F "expected a mapping at the top level, got inf"}}, /* fuzz: cast of inf to long long */
      {"<<: 5\n", {F "line 1, column 5: the value of \"<<\" must be a mapping or a list of mappings"}},
      {"log: {<<: {level: info}, <<: {format: text}}\n", {F "log.<<: duplicate key (line 1, column 26)"}},
      {"log: \xff\n", {F "line 1, column 6: invalid leading UTF-8 octet"}},
      {"{\n  \"log\": {\"level\": \"info\",\n  \"format\" \"json\"}\n}\n",
       {F "line 3, column 12: did not find expected ',' or '}'"}},
      {"{\"log\": {\"level\": \"info\"}, \"log\": {}}", {F "log: duplicate key (line 1, column 28)"}},
  };
  RUN(cases);
}

static void test_yaml_limits(void **state) {
  (void)state;
  /* billion laughs: 9^9 strings if expanded; stops at the node limit, fast */
  const char *bomb = "a: &a [lol,lol,lol,lol,lol,lol,lol,lol,lol]\n"
                     "b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\n"
                     "c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n"
                     "d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\n"
                     "e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\n"
                     "f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\n"
                     "g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]\n"
                     "h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]\n"
                     "i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]\n";
  const char *w1[] = {F "line 5, column 34: document too large: more than 100000 nodes (aliases included)", NULL};
  assert_true(fails_with(NAME, bomb, strlen(bomb), w1));

  /* a chain of aliases, each one level deeper than the last */
  char chain[8192];
  size_t o = (size_t)snprintf(chain, sizeof chain, "x-0: &a0 [x]\n");
  for (int i = 1; i < 80; i++) o += (size_t)snprintf(chain + o, sizeof chain - o, "x-%d: &a%d [*a%d]\n", i, i, i - 1);
  const char *w2[] = {F "line 64, column 13: nesting deeper than 64 levels (aliases included)", NULL};
  assert_true(fails_with(NAME, chain, o, w2));

  char deep[200];
  memset(deep, '[', 70);
  memset(deep + 70, ']', 70);
  memcpy(deep + 140, "\n", 2);
  const char *w3[] = {F "line 1, column 72: nesting deeper than 64 levels", NULL}; /* 63 "[" + the root */
  char doc[256];
  snprintf(doc, sizeof doc, "x-deep: %s", deep);
  assert_true(fails_with(NAME, doc, strlen(doc), w3));

  size_t big = 4 * 1024 * 1024 + 1;
  char *huge = malloc(big);
  assert_non_null(huge);
  memset(huge, '#', big);
  const char *w4[] = {F "larger than 4MiB", NULL};
  assert_true(fails_with(NAME, huge, big, w4));
  free(huge);
}

static void test_yaml_features(void **state) {
  (void)state;
  struct sw_config *cfg = load_ok(NAME,
                                  "# comment\n"
                                  "x-labels: &labels {team: a, tier: \"1\"}\n"
                                  "x-base: &base {type: file, read_from: tail}\n"
                                  "hostname: &h node-7   # trailing comment\n"
                                  "sources:\n"
                                  "  - <<: *base\n"
                                  "    name: one\n"
                                  "    paths: [/a/*.log, '/b/*.log']\n"
                                  "    labels: *labels\n"
                                  "  - <<: [*base, {format: json}]\n"
                                  "    read_from: head\n"
                                  "    name: two\n"
                                  "    paths: /c/*.log\n"
                                  "    labels:\n"
                                  "      host_alias: *h\n"
                                  "      note: |\n"
                                  "        line one\n"
                                  "        line two\n"
                                  "sinks: [{name: out, type: file, path: \"/o.ndjson\"}]\n"
                                  "log: {level: warn, format: text}\n"
                                  "buffer: {chunk: {max_records: \"42\"}}\n");
  assert_string_equal(cfg->hostname, "node-7");
  assert_int_equal(cfg->nsources, 2);
  assert_int_equal(cfg->sources[0].read_from, SW_READ_TAIL);
  assert_int_equal(cfg->sources[0].npaths, 2);
  assert_string_equal(cfg->sources[0].paths[1], "/b/*.log");
  assert_int_equal(cfg->sources[0].nlabels, 2);
  assert_string_equal(cfg->sources[0].labels[1].key, "tier");
  assert_string_equal(cfg->sources[0].labels[1].value, "1");
  assert_int_equal(cfg->sources[1].read_from, SW_READ_HEAD); /* explicit beats merged */
  assert_int_equal(cfg->sources[1].format, SW_FORMAT_JSON);
  assert_int_equal(cfg->sources[1].npaths, 1);
  assert_string_equal(cfg->sources[1].paths[0], "/c/*.log");
  assert_string_equal(cfg->sources[1].labels[0].value, "node-7");
  assert_string_equal(cfg->sources[1].labels[1].value, "line one\nline two\n");
  assert_int_equal(cfg->log.level, SW_LOG_WARN);
  assert_int_equal(cfg->log.format, SW_LOG_FORMAT_TEXT);
  assert_int_equal(cfg->buffer.chunk_max_records, 42);
  sw_config_free(cfg);
}

static void test_yaml_scalars(void **state) {
  (void)state;
  struct sw_config *cfg = load_ok(NAME,
                                  "hostname: ! 123\n"
                                  "data_dir: !!str /d\n"
                                  "buffer:\n"
                                  "  max_bytes: 0x40000000\n"
                                  "  chunk: {max_records: 0o17, max_bytes: +8192}\n"
                                  "sources:\n"
                                  "  - name: a\n"
                                  "    type: file\n"
                                  "    paths: ['/c/[ab]*.log', '/q/\\*.log', '/e/[]x]/?.log']\n"
                                  "    multiline: {max_lines: 1e2}\n");
  assert_string_equal(cfg->hostname, "123");
  assert_string_equal(cfg->data_dir, "/d");
  assert_int_equal(cfg->buffer.max_bytes, 1u << 30);
  assert_int_equal(cfg->buffer.chunk_max_records, 15);
  assert_int_equal(cfg->buffer.chunk_max_bytes, 8192);
  assert_string_equal(cfg->sources[0].paths[1], "/q/\\*.log");
  assert_int_equal(cfg->sources[0].multiline.max_lines, 100);
  sw_config_free(cfg);

  static const struct err_case cases[] = {
      {"buffer: {chunk: {max_records: .inf}}\n", {F "buffer.chunk.max_records: expected an integer, got inf"}},
      {"buffer: {chunk: {max_records: -.inf}}\n", {F "buffer.chunk.max_records: expected an integer, got -inf"}},
      {"buffer: {chunk: {max_records: 0x}}\n", {F "buffer.chunk.max_records: expected an integer, got \"0x\""}},
      {"buffer: {chunk: {max_records: 1e}}\n", {F "buffer.chunk.max_records: expected an integer, got \"1e\""}},
      {"buffer: {chunk: {max_records: '12'}}\nlog: {level: null}\nserver: ~\n", {NULL}},
      {"x-a: &a k\n*a : 1\n", {F "line 2, column 1: only strings can be mapping keys"}},
      {"hostname: \"a\\nb\"\nbuffer: {max_bytes: \"a\\nb\"}\n",
       {F "buffer.max_bytes: expected a size like 64KiB, got \"a\\nb\""}},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    if (!cases[i].want[0]) {
      sw_config_free(load_ok(NAME, cases[i].text));
      continue;
    }
    assert_true(fails_with(NAME, cases[i].text, strlen(cases[i].text), cases[i].want));
  }
}

static void test_yaml_big(void **state) {
  (void)state;
  /* 16MiB of text through aliases of a 1MiB string: the anchor's copy and 14 aliases fit */
  size_t mib = 1u << 20, o = 0;
  char *text = malloc(mib + 4096);
  assert_non_null(text);
  o += (size_t)sprintf(text, "x-a: &a '");
  memset(text + o, 'x', mib - 1);
  o += mib - 1;
  o += (size_t)sprintf(text + o, "'\nx-b: [");
  for (int i = 0; i < 16; i++) o += (size_t)sprintf(text + o, "*a, ");
  o += (size_t)sprintf(text + o, "]\n");
  const char *w1[] = {F "line 2, column 63: document too large: more than 16MiB of text (aliases included)", NULL};
  assert_true(fails_with(NAME, text, o, w1));

  /* keys per mapping are capped (duplicate detection is a linear scan) */
  o = (size_t)sprintf(text, "x-big:\n");
  for (int i = 0; i <= 10000; i++) o += (size_t)sprintf(text + o, "  k%d: 1\n", i);
  const char *w2[] = {F "line 10002, column 3: more than 10000 keys in one mapping", NULL};
  assert_true(fails_with(NAME, text, o, w2));

  /* long key paths are cut */
  char k[80];
  memset(k, 'k', 79);
  k[79] = '\0';
  o = (size_t)sprintf(text, "x-%s: {%s: {%s: {%s: {%s: 1, %s: 2}}}}\n", k, k, k, k, k, k);
  struct sw_config *cfg = NULL;
  struct sw_conf_errors e = {0};
  assert_int_equal(sw_config_load_string(NAME, text, o, &cfg, &e), SW_ECONFIG);
  assert_int_equal(e.n, 1);
  assert_true(strlen(e.msgs[0]) < 256 + 100);
  assert_non_null(strstr(e.msgs[0], "kkk...: duplicate key (line 1, column 4"));
  sw_conf_errors_free(&e);
  free(text);
}

static void test_json(void **state) {
  (void)state;
  struct sw_config *cfg = load_ok(NAME,
                                  "{\n\t\"data_dir\": \"/d\",\n\t\"buffer\": {\"max_bytes\":1073741824,\"chunk\":{\"max_records\":10}},\n"
                                  "\t\"sources\": [{\"name\": \"a\", \"type\": \"file\", \"paths\": [\"/x/*.log\"], "
                                  "\"format\": \"logfmt\", \"labels\": {\"k\": \"v\\u00e9\"}}],\n"
                                  "\t\"sinks\": [{\"name\": \"f\", \"type\": \"file\", \"path\": \"/f\"}],\n"
                                  "\t\"server\": {\"listen\": \"\"}\n}\n");
  assert_string_equal(cfg->data_dir, "/d");
  assert_int_equal(cfg->buffer.max_bytes, 1073741824);
  assert_int_equal(cfg->buffer.chunk_max_records, 10);
  assert_int_equal(cfg->sources[0].format, SW_FORMAT_LOGFMT);
  assert_string_equal(cfg->sources[0].labels[0].value, "v\xc3\xa9");
  assert_string_equal(cfg->server.listen, "");
  sw_config_free(cfg);
}

/* ---- keys ---- */

static void test_unknown_keys(void **state) {
  (void)state;
  static const struct err_case cases[] = {
      {"data_dri: /x\n", {F "data_dri: unknown key (did you mean \"data_dir\"?)"}},
      {"frobnicate: 1\n", {F "frobnicate: unknown key"}},
      {"x-anything: {whatever: 1}\nbuffer: {x-no: 1}\n", {F "buffer.x-no: unknown key"}},
      {"buffer: {max_byts: 1GiB}\n", {F "buffer.max_byts: unknown key (did you mean \"max_bytes\"?)"}},
      {"buffer: {chunk: {max_wiat: 1s}}\n", {F "buffer.chunk.max_wiat: unknown key (did you mean \"max_wait\"?)"}},
      {SRC ", nmae: b" SRC_END, {F "sources[0].nmae: unknown key (did you mean \"name\"?)"}},
      {SRC ", multiline: {strat: x}" SRC_END, {F "sources[0].multiline.strat: unknown key (did you mean \"start\"?)"}},
      {"sinks: [{name: f, type: file, path: /f, pth: /g}]\n", {F "sinks[0].pth: unknown key (did you mean \"path\"?)"}},
      {"sinks: [{name: l, type: loki, url: 'http://l', tls: {ca_fiel: /c}}]\n",
       {F "sinks[0].tls.ca_fiel: unknown key (did you mean \"ca_file\"?)"}},
      {"sinks: [{name: l, type: loki, url: 'http://l', batch: {max_wait: 1s, wait: 1s}}]\n",
       {F "sinks[0].batch.wait: unknown key"}},
      {"sinks: [{name: s, type: s3, bucket: b, object: {compresion: gzip}}]\n",
       {F "sinks[0].object.compresion: unknown key (did you mean \"compression\"?)"}},
      {"server: {listne: ':1'}\n", {F "server.listne: unknown key (did you mean \"listen\"?)"}},
      {"log: {levle: info}\n", {F "log.levle: unknown key (did you mean \"level\"?)"}},
      /* only keys of the sink's type are suggested */
      {"sinks: [{name: l, type: loki, url: 'http://l', indx: a}]\n", {F "sinks[0].indx: unknown key"}},
      {"sinks: [{name: l, type: loki, url: 'http://l', index: a}]\n",
       {F "sinks[0].index: key \"index\" is not valid for sink type loki"}},
      {"sinks: [{name: f, type: file, path: /f, bucket: b, tls: {}}]\n",
       {F "sinks[0].bucket: key \"bucket\" is not valid for sink type file",
        F "sinks[0].tls: key \"tls\" is not valid for sink type file"}},
      {"sources: [{name: d, type: docker, paths: /d, format: json}]\n",
       {F "sources[0].format: key \"format\" is not valid for source type docker"}},
      /* with the type unknown, type-specific keys are neither checked nor required */
      {"sinks: [{name: b, type: bogus, index: x}]\n", {F "sinks[0].type: must be one of: file, loki, elasticsearch, s3"}},
  };
  RUN(cases);
}

static void test_type_errors(void **state) {
  (void)state;
  static const struct err_case cases[] = {
      {"hostname: [a]\n", {F "hostname: expected a string, got a list"}},
      {"hostname: 5\n", {F "hostname: expected a string, got 5"}},
      {"hostname: \"\"\n", {F "hostname: must not be empty"}},
      {"data_dir: {a: 1}\n", {F "data_dir: expected a string, got a mapping"}},
      {"buffer: 5\n", {F "buffer: expected a mapping, got 5"}},
      {"buffer: [1]\n", {F "buffer: expected a mapping, got a list"}},
      {"sources: {a: 1}\n", {F "sources: expected a list, got a mapping"}},
      {"sources: [5, x]\n", {F "sources[0]: expected a mapping, got 5", F "sources[1]: expected a mapping, got \"x\""}},
      {"buffer: {when_full: maybe}\n", {F "buffer.when_full: must be one of: block, drop_oldest"}},
      {"buffer: {when_full: 5}\n", {F "buffer.when_full: must be one of: block, drop_oldest"}},
      {"log: {level: verbose, format: xml}\n",
       {F "log.level: must be one of: debug, info, warn, error", F "log.format: must be one of: json, text"}},
      {"buffer: {chunk: {max_records: 0}}\n", {F "buffer.chunk.max_records: must be at least 1"}},
      {"buffer: {chunk: {max_records: -3}}\n", {F "buffer.chunk.max_records: must be at least 1"}},
      {"buffer: {chunk: {max_records: 2000000}}\n", {F "buffer.chunk.max_records: must be at most 1000000"}},
      {"buffer: {chunk: {max_records: 1e30}}\n", {F "buffer.chunk.max_records: must be at most 1000000"}},
      {"buffer: {chunk: {max_records: \"99999999999999999999999\"}}\n",
       {F "buffer.chunk.max_records: must be at most 1000000"}},
      {"buffer: {chunk: {max_records: abc}}\n", {F "buffer.chunk.max_records: expected an integer, got \"abc\""}},
      {"buffer: {chunk: {max_records: 1.5}}\n", {F "buffer.chunk.max_records: expected an integer, got 1.5"}},
      {"buffer: {chunk: {max_records: true}}\n", {F "buffer.chunk.max_records: expected an integer, got true"}},
      {"buffer: {chunk: {max_records: .nan}}\n", {F "buffer.chunk.max_records: expected an integer, got nan"}},
      {"buffer: {compression: {level: 0, long_distance: maybe}}\n",
       {F "buffer.compression.level: must be at least 1",
        F "buffer.compression.long_distance: expected true or false, got \"maybe\""}},
      {"buffer: {compression: {level: -3}, recent_in_memory: 2GiB}\n",
       {F "buffer.compression.level: must be at least 1", F "buffer.recent_in_memory: must be at most 1GiB"}},
      {"buffer: {compression: {level: 20}}\n", {F "buffer.compression.level: must be at most 19"}},
      {"sinks: [{name: s, type: s3, bucket: b, tls: {insecure_skip_verify: yes}}]\n",
       {F "sinks[0].tls.insecure_skip_verify: expected true or false, got \"yes\""}},
      {"sinks: [{name: s, type: s3, bucket: b, tls: {insecure_skip_verify: 1}}]\n",
       {F "sinks[0].tls.insecure_skip_verify: expected true or false, got 1"}},
      {"server: {listen: localhost}\n", {F "server.listen: expected HOST:PORT like 127.0.0.1:2020, got \"localhost\""}},
      {"server: {listen: ':70000'}\n", {F "server.listen: expected HOST:PORT like 127.0.0.1:2020, got \":70000\""}},
      {"server: {listen: '::1:80'}\n", {F "server.listen: expected HOST:PORT like 127.0.0.1:2020, got \"::1:80\""}},
      {"server: {listen: 'a b:80'}\n", {F "server.listen: expected HOST:PORT like 127.0.0.1:2020, got \"a b:80\""}},
      /* all problems are reported, not just the first */
      {"data_dir: ''\nbuffer: {max_bytes: x, chunk: {max_wait: 0ms}}\nlog: {level: x}\nwhat: 1\n",
       {F "data_dir: must not be empty", F "buffer.max_bytes: expected a size like 64KiB, got \"x\"",
        F "buffer.chunk.max_wait: must be at least 1ms", F "log.level: must be one of: debug, info, warn, error",
        F "what: unknown key"}},
      /* values are quoted and cut in messages */
      {"hostname: [1]\nlog: {level: \"a\\tb\\u0001c\\\"d\"}\n",
       {F "hostname: expected a string, got a list", F "log.level: must be one of: debug, info, warn, error"}},
      {"buffer: {max_bytes: \"x\\ty\\\"012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789\"}\n",
       {F "buffer.max_bytes: expected a size like 64KiB, got "
          "\"x\\x09y\\\"01234567890123456789012345678901234567890123456789012345678901234567890...\""}},
      /* cut between UTF-8 characters, never inside one */
      {"buffer: {max_bytes: " E10 E10 E10 E10 E10 "}\n",
       {F "buffer.max_bytes: expected a size like 64KiB, got \"" E10 E10 E10 E10 "...\""}},
  };
  RUN(cases);
  struct sw_config *cfg = load_ok(NAME, "server: {listen: '[::1]:2020'}\n");
  sw_config_free(cfg);
  cfg = load_ok(NAME, "server: {listen: ':9'}\n");
  sw_config_free(cfg);
  cfg = load_ok(NAME, "server: {listen: '0'}\n");
  assert_string_equal(cfg->server.listen, "0");
  sw_config_free(cfg);
}

static void test_sizes_durations_in_config(void **state) {
  (void)state;
  static const struct err_case cases[] = {
      {"buffer: {max_bytes: 12XB}\n", {F "buffer.max_bytes: expected a size like 64KiB, got \"12XB\""}},
      {"buffer: {max_bytes: 10MB}\n", {F "buffer.max_bytes: expected a size like 64KiB, got \"10MB\" (use KiB/MiB/GiB)"}},
      {"buffer: {max_bytes: 1 gb}\n", {F "buffer.max_bytes: expected a size like 64KiB, got \"1 gb\" (use KiB/MiB/GiB)"}},
      {"buffer: {max_bytes: 1.5GiB}\n", {F "buffer.max_bytes: expected a size like 64KiB, got \"1.5GiB\""}},
      {"buffer: {max_bytes: -5}\n", {F "buffer.max_bytes: expected a size like 64KiB, got -5"}},
      {"buffer: {max_bytes: [1]}\n", {F "buffer.max_bytes: expected a size like 64KiB, got a list"}},
      {"buffer: {max_bytes: 99999999999TiB}\n", {F "buffer.max_bytes: size \"99999999999TiB\" is too large"}},
      {"buffer: {max_bytes: 99999999999999999999999}\n", {F "buffer.max_bytes: size 1e+23 is too large"}},
      {"buffer: {max_bytes: 1KiB}\n", {F "buffer.max_bytes: must be at least 1MiB"}},
      {"buffer: {chunk: {max_bytes: 1KiB}}\n", {F "buffer.chunk.max_bytes: must be at least 4KiB"}},
      {"buffer: {chunk: {max_bytes: 65MiB}}\n", {F "buffer.chunk.max_bytes: must be at most 64MiB"}},
      {"buffer: {max_bytes: 1MiB, chunk: {max_bytes: 64MiB}}\n",
       {F "buffer.max_bytes: must be at least buffer.chunk.max_bytes (64MiB)"}},
      {SRC ", max_record_bytes: 1000" SRC_END, {F "sources[0].max_record_bytes: must be at least 1KiB"}},
      {"buffer: {chunk: {max_wait: 5 parsecs}}\n",
       {F "buffer.chunk.max_wait: expected a duration like 500ms, 2s, 5m, 1h, 7d, got \"5 parsecs\""}},
      {"buffer: {chunk: {max_wait: 5}}\n",
       {F "buffer.chunk.max_wait: expected a duration like 500ms, 2s, 5m, 1h, 7d, got 5 (add a unit, e.g. 5s)"}},
      {"buffer: {chunk: {max_wait: \"30\"}}\n",
       {F "buffer.chunk.max_wait: expected a duration like 500ms, 2s, 5m, 1h, 7d, got \"30\" (add a unit, e.g. 30s)"}},
      {"buffer: {chunk: {max_wait: 30s1m}}\n",
       {F "buffer.chunk.max_wait: expected a duration like 500ms, 2s, 5m, 1h, 7d, got \"30s1m\" "
          "(write units from largest to smallest, like 1h30m)"}},
      {"buffer: {chunk: {max_wait: 1.5s}}\n",
       {F "buffer.chunk.max_wait: expected a duration like 500ms, 2s, 5m, 1h, 7d, got \"1.5s\""}},
      {"buffer: {chunk: {max_wait: {}}}\n",
       {F "buffer.chunk.max_wait: expected a duration like 500ms, 2s, 5m, 1h, 7d, got a mapping"}},
      {"buffer: {chunk: {max_wait: 999999999999999d}}\n",
       {F "buffer.chunk.max_wait: duration \"999999999999999d\" is too large"}},
      {"buffer: {chunk: {max_wait: 0s}}\n", {F "buffer.chunk.max_wait: must be at least 1ms"}},
      {"sinks: [{name: s, type: s3, bucket: b, object: {max_wait: 10ms, max_bytes: 6GiB}}]\n",
       {F "sinks[0].object.max_wait: must be at least 1s", F "sinks[0].object.max_bytes: must be at most 5GiB"}},
  };
  RUN(cases);
  struct sw_config *cfg = load_ok(NAME,
                                  "buffer: {max_bytes: 2 GiB, chunk: {max_bytes: 65536, max_wait: 1m30s}}\n"
                                  SRC ", multiline: {timeout: 1s500ms}, max_record_bytes: \"2048\"" SRC_END);
  assert_int_equal(cfg->buffer.max_bytes, 2ull << 30);
  assert_int_equal(cfg->buffer.chunk_max_bytes, 65536);
  assert_int_equal(cfg->buffer.chunk_max_wait_ms, 90000);
  assert_int_equal(cfg->sources[0].multiline.timeout_ms, 1500);
  assert_int_equal(cfg->sources[0].max_record_bytes, 2048);
  sw_config_free(cfg);
}

/* ---- sources and sinks ---- */

static void test_source_errors(void **state) {
  (void)state;
  static const struct err_case cases[] = {
      /* Without a type, whether paths is required (not for journald) is unknown. */
      {"sources: [{}]\n", {F "sources[0].name: required", F "sources[0].type: required"}},
      {"sources: [{name: ~, type: null, paths: }]\n", {F "sources[0].name: required", F "sources[0].type: required"}},
      {"sources: [{name: a, type: file}]\n", {F "sources[0].paths: required"}},
      {"sources: [{name: a, type: journald, paths: [/x]}]\n", {F "sources[0].paths: key \"paths\" is not valid for source type journald"}},
      {"sources: [{name: a, type: journald, fields: [_PID, pid, MESSAGE, _PID]}]\n",
       {F "sources[0].fields: \"pid\" is not a journal field name (upper-case letters, digits and _, as in `_PID`)",
        F "sources[0].fields: \"MESSAGE\" is a label already (line, unit, identifier, level, boot_id, host)",
        F "sources[0].fields: \"_PID\" is listed twice"}},
      {"sources: [{name: a, type: journald, units: [''], identifiers: [x]}]\n",
       {F "sources[0].units: an empty value matches nothing"}},
      {"sources: [{name: 'a b', type: file, paths: /x}]\n",
       {F "sources[0].name: invalid name \"a b\": use letters, digits, '_', '.', '-'"}},
      {"sources: [{name: a, type: file, paths: /x}, {name: b, type: cri, paths: /y}, {name: a, type: docker, paths: /z}]\n",
       {F "sources[2].name: duplicate source name \"a\""}},
      {"sources: [{name: a, type: file, paths: {x: 1}}]\n", {F "sources[0].paths: expected a list of strings"}},
      {"sources: [{name: a, type: file, paths: 5}]\n", {F "sources[0].paths: expected a list of strings"}},
      {"sources: [{name: a, type: file, paths: []}]\n", {F "sources[0].paths: must not be empty"}},
      {"sources: [{name: a, type: file, paths: [/ok, 1, [x]]}]\n",
       {F "sources[0].paths[1]: expected a string, got 1", F "sources[0].paths[2]: expected a string, got a list"}},
      {"sources: [{name: a, type: file, paths: /x}, {name: b, type: file, paths: [/y, \"/var/[log\"]}]\n",
       {F "sources[1].paths[1]: bad glob \"/var/[log\": unterminated ["}},
      {"sources: [{name: a, type: file, paths: [\"/var/**/x.log\", \"\", \"a\\\\\"], exclude: [\"[!\"]}]\n",
       {F "sources[0].paths[0]: bad glob \"/var/**/x.log\": \"**\" is not supported",
        F "sources[0].paths[1]: bad glob \"\": empty pattern", F "sources[0].paths[2]: bad glob \"a\\\\\": trailing backslash",
        F "sources[0].exclude[0]: bad glob \"[!\": unterminated ["}},
      {SRC "}\n  - {name: b, type: file, paths: /x, multiline: {start: \"x\"}}\n"
           "  - {name: c, type: file, paths: /x, multiline: {start: \"(abc\", max_lines: 0}}\n",
       {F "sources[2].multiline.start: bad pattern at offset 4: missing closing parenthesis",
        F "sources[2].multiline.max_lines: must be at least 1"}},
      {SRC ", multiline: {start: \"a)\"}" SRC_END,
       {F "sources[0].multiline.start: bad pattern at offset 1: unmatched closing parenthesis"}},
      {SRC ", multiline: {start: ''}" SRC_END, {F "sources[0].multiline.start: must not be empty"}},
      {SRC ", labels: {bad-name: x, 9lives: y, ok: [1], fine: z}" SRC_END,
       {F "sources[0].labels.bad-name: invalid label name: use letters, digits and '_', not starting with a digit",
        F "sources[0].labels.9lives: invalid label name: use letters, digits and '_', not starting with a digit",
        F "sources[0].labels.ok: expected a string, got a list"}},
      {SRC ", labels: {version: 2}" SRC_END, {F "sources[0].labels.version: expected a string, got 2"}},
      {SRC ", labels: [a]" SRC_END, {F "sources[0].labels: expected a mapping of strings, got a list"}},
      {SRC ", read_from: end" SRC_END, {F "sources[0].read_from: must be one of: head, tail"}},
      {SRC ", format: xml" SRC_END, {F "sources[0].format: must be one of: text, json, logfmt"}},
  };
  RUN(cases);
}

static void test_sink_errors(void **state) {
  (void)state;
  static const struct err_case cases[] = {
      {"sinks: [{name: f, type: file}]\n", {F "sinks[0].path: required"}},
      {"sinks: [{name: l, type: loki}]\n", {F "sinks[0].url: required"}},
      {"sinks: [{name: e, type: elasticsearch}]\n", {F "sinks[0].url: required"}},
      {"sinks: [{name: s, type: s3}]\n", {F "sinks[0].bucket: required"}},
      {"sinks: [{type: file, path: /f}, {name: f, type: file, path: /f}, {name: f, type: file, path: /g}]\n",
       {F "sinks[0].name: required", F "sinks[2].name: duplicate sink name \"f\""}},
      {"sinks: [{name: e, type: elasticsearch, url: 'ftp://x'}]\n",
       {F "sinks[0].url: expected an http:// or https:// URL"}},
      {"sinks: [{name: s, type: s3, bucket: b, endpoint: minio:9000}]\n",
       {F "sinks[0].endpoint: expected an http:// or https:// URL"}},
      {"sinks: [{name: l, type: loki, url: 'http://l', compression: zstd, labels: {a-b: c}}]\n",
       {F "sinks[0].compression: must be one of: gzip, none",
        F "sinks[0].labels.a-b: invalid label name: use letters, digits and '_', not starting with a digit"}},
      {"sinks: [{name: s, type: s3, bucket: '', region: '', object: {compression: none}}]\n",
       {F "sinks[0].bucket: must not be empty", F "sinks[0].region: must not be empty",
        F "sinks[0].object.compression: must be one of: zstd, gzip"}},
      {"sinks: [{name: l, type: loki, url: 'http://l', username: u}]\n",
       {F "sinks[0].password_file: required when username is set"}},
      {"sinks: [{name: l, type: loki, url: 'http://l', password_file: /nonexistent/pw}]\n",
       {F "sinks[0].password_file: cannot read secret file \"/nonexistent/pw\": No such file or directory",
        F "sinks[0].username: required when password_file is set"}},
      {"sinks: [{name: s, type: s3, bucket: b, access_key_file: ~, secret_key_file: ''}, "
       "{name: t, type: s3, bucket: b, access_key_file: /nonexistent/a}]\n",
       {F "sinks[0].secret_key_file: must not be empty", F "sinks[0].access_key_file: required when secret_key_file is set",
        F "sinks[1].access_key_file: cannot read secret file \"/nonexistent/a\": No such file or directory",
        F "sinks[1].secret_key_file: required when access_key_file is set"}},
      {"sinks: [{name: s, type: s3, bucket: b, secret_key_file: 5}]\n",
       {F "sinks[0].secret_key_file: expected a string, got 5",
        F "sinks[0].access_key_file: required when secret_key_file is set"}},
      {"sinks: [{name: e, type: elasticsearch, url: 'https://e', api_key_file: /nonexistent/k, bearer_token_file: ''}]\n",
       {F "sinks[0].api_key_file: cannot read secret file \"/nonexistent/k\": No such file or directory",
        F "sinks[0].bearer_token_file: must not be empty",
        F "sinks[0]: use only one of username/password_file, bearer_token_file, api_key_file"}},
      {"sinks: [{name: l, type: loki, url: 'http://l', tls: {ca_file: /nonexistent/ca.pem}}]\n",
       {F "sinks[0].tls.ca_file: cannot read \"/nonexistent/ca.pem\": No such file or directory"}},
  };
  RUN(cases);
}

/* ---- ${ENV} ---- */

static void test_env(void **state) {
  (void)state;
  setenv("SW_T_HOST", "web-1", 1);
  setenv("SW_T_N", "77", 1);
  setenv("SW_T_EMPTY", "", 1);
  setenv("SW_T_NESTED", "${SW_T_HOST}", 1);
  unsetenv("SW_T_UNSET");
  struct sw_config *cfg = load_ok(NAME,
                                  "hostname: ${SW_T_HOST}\n"
                                  "data_dir: \"/d/$${SW_T_HOST}/$x/${SW_T_UNSET:-fallback}/${SW_T_EMPTY:-e}/$\"\n"
                                  "buffer:\n  chunk:\n    max_records: ${SW_T_N}   # block style: no quotes needed\n"
                                  SRC ", labels: {n: '${SW_T_NESTED}', e: '${SW_T_EMPTY}'}" SRC_END);
  assert_string_equal(cfg->hostname, "web-1");
  assert_string_equal(cfg->data_dir, "/d/${SW_T_HOST}/$x/fallback/e/$");
  assert_int_equal(cfg->buffer.chunk_max_records, 77);
  assert_string_equal(cfg->sources[0].labels[0].value, "${SW_T_HOST}"); /* not expanded twice */
  assert_string_equal(cfg->sources[0].labels[1].value, "");
  sw_config_free(cfg);

  static const struct err_case cases[] = {
      {"hostname: ${SW_T_UNSET}\n", {F "hostname: environment variable SW_T_UNSET is not set"}},
      {"sources:\n  - {name: a, type: file, paths: /x}\n  - {name: b, type: file, paths: [/y, \"${SW_T_UNSET}/*.log\"]}\n",
       {F "sources[1].paths[1]: environment variable SW_T_UNSET is not set"}},
      {"hostname: a${SW_T_HOST\n", {F "hostname: unterminated \"${\" (write \"$$\" for a literal \"$\")"}},
      {"hostname: \"abcdef${\"\n", /* fuzz: read past the end after this error */
       {F "hostname: unterminated \"${\" (write \"$$\" for a literal \"$\")"}},
      {"hostname: ${1X}\ndata_dir: ${A-b}\nlog: {level: '${}'}\n",
       {F "hostname: bad environment variable reference \"${1X}\"",
        F "data_dir: bad environment variable reference \"${A-b}\"",
        F "log.level: bad environment variable reference \"${}\""}},
      /* the failed value is not checked again, the rest still is */
      {SRC ", labels: {a: '${SW_T_UNSET}'}, multiline: {max_lines: '${SW_T_UNSET}'}, read_from: x" SRC_END,
       {F "sources[0].labels.a: environment variable SW_T_UNSET is not set",
        F "sources[0].multiline.max_lines: environment variable SW_T_UNSET is not set",
        F "sources[0].read_from: must be one of: head, tail"}},
      /* keys are not expanded */
      {"${SW_T_HOST}: 1\n", {F "${SW_T_HOST}: unknown key"}},
  };
  RUN(cases);

  /* expansion output is capped */
  char *big = malloc(600 * 1024 + 1);
  assert_non_null(big);
  memset(big, 'v', 600 * 1024);
  big[600 * 1024] = '\0';
  setenv("SW_T_BIG", big, 1);
  free(big);
  const char *text = "hostname: ${SW_T_BIG}\nlog: {level: \"${SW_T_BIG}${SW_T_BIG}\"}\n";
  const char *want[] = {F "log.level: value is longer than 1MiB after ${...} expansion", NULL};
  assert_true(fails_with(NAME, text, strlen(text), want));
  unsetenv("SW_T_BIG");
}

/* ---- secrets and paths ---- */

static void test_secrets(void **state) {
  (void)state;
  char dir[] = "/tmp/sw_test_config_XXXXXX";
  assert_non_null(mkdtemp(dir));
  char tmpl[PATH_MAX];
  snprintf(tmpl, sizeof tmpl, "%s/stemp_XXXXXX", dir);
  int fd = mkstemp(tmpl);
  assert_true(fd >= 0);
  assert_int_equal(write(fd, "s3cr3t-key\r\n", 12), 12);
  close(fd);
  write_file(dir, "pw", "hunter2\n", 8);
  write_file(dir, "two", "tok\n\n", 5);
  write_file(dir, "empty", "", 0);
  write_file(dir, "nl", "\n", 1);
  write_file(dir, "nul", "a\0b", 3);
  char *big = malloc(70000);
  assert_non_null(big);
  memset(big, 'k', 70000);
  write_file(dir, "big", big, 70000);
  free(big);

  char name[PATH_MAX], text[3 * PATH_MAX];
  snprintf(name, sizeof name, "%s/spillway.yaml", dir);
  snprintf(text, sizeof text,
           "sinks:\n"
           "  - {name: l, type: loki, url: 'http://l', username: u, password_file: pw}\n"
           "  - {name: e, type: elasticsearch, url: 'http://e', api_key_file: ./two}\n"
           "  - {name: s, type: s3, bucket: b, access_key_file: %s, secret_key_file: pw}\n"
           "  - {name: t, type: loki, url: 'http://t', bearer_token_file: %s/pw, tls: {ca_file: pw}}\n",
           tmpl, dir);
  struct sw_config *cfg = load_ok(name, text);
  assert_string_equal(cfg->sinks[0].password, "hunter2");
  assert_string_equal(cfg->sinks[1].api_key, "tok\n"); /* only one newline is stripped */
  assert_string_equal(cfg->sinks[2].access_key, "s3cr3t-key");
  assert_string_equal(cfg->sinks[2].secret_key, "hunter2");
  assert_string_equal(cfg->sinks[3].bearer_token, "hunter2");
  char want[PATH_MAX];
  snprintf(want, sizeof want, "%s/pw", dir);
  assert_string_equal(cfg->sinks[3].tls.ca_file, want);
  sw_config_free(cfg);

  /* failures: the message names the file, never its content */
  snprintf(text, sizeof text,
           "sinks:\n"
           "  - {name: a, type: loki, url: 'http://l', bearer_token_file: empty}\n"
           "  - {name: b, type: loki, url: 'http://l', bearer_token_file: nl}\n"
           "  - {name: c, type: loki, url: 'http://l', bearer_token_file: nul}\n"
           "  - {name: d, type: loki, url: 'http://l', bearer_token_file: big}\n"
           "  - {name: e, type: loki, url: 'http://l', bearer_token_file: /}\n"
           "  - {name: f, type: loki, url: 'http://l', bearer_token_file: missing}\n"
           "  - {name: g, type: loki, url: 'http://l', bearer_token_file: pw, username: x}\n");
  char w[8][PATH_MAX + 128];
  snprintf(w[0], sizeof w[0], "%s: sinks[0].bearer_token_file: secret file \"%s/empty\" is empty", name, dir);
  snprintf(w[1], sizeof w[1], "%s: sinks[1].bearer_token_file: secret file \"%s/nl\" is empty", name, dir);
  snprintf(w[2], sizeof w[2], "%s: sinks[2].bearer_token_file: secret file \"%s/nul\" contains a NUL byte", name, dir);
  snprintf(w[3], sizeof w[3], "%s: sinks[3].bearer_token_file: secret file \"%s/big\" is larger than 64KiB", name, dir);
  snprintf(w[4], sizeof w[4], "%s: sinks[4].bearer_token_file: cannot read secret file \"/\": not a regular file", name);
  snprintf(w[5], sizeof w[5], "%s: sinks[5].bearer_token_file: cannot read secret file \"%s/missing\": No such file or directory",
           name, dir);
  snprintf(w[6], sizeof w[6], "%s: sinks[6].password_file: required when username is set", name);
  snprintf(w[7], sizeof w[7], "%s: sinks[6]: use only one of username/password_file, bearer_token_file", name);
  const char *want_errs[] = {w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7]};
  assert_true(fails_with(name, text, strlen(text), want_errs));

  struct sw_config *none = NULL;
  struct sw_conf_errors e = {0};
  assert_int_equal(sw_config_load_string(name, text, strlen(text), &none, &e), SW_ECONFIG);
  for (size_t i = 0; i < e.n; i++) assert_null(strstr(e.msgs[i], "hunter2"));
  sw_conf_errors_free(&e);

  const char *files[] = {"pw", "two", "empty", "nl", "nul", "big"};
  for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s/%s", dir, files[i]);
    unlink(p);
  }
  unlink(tmpl);
  rmdir(dir);
}

static void test_relative_paths(void **state) {
  (void)state;
  struct sw_config *cfg = load_ok("/etc/spillway/spillway.yaml",
                                  "data_dir: data\n"
                                  "sources: [{name: a, type: file, paths: [logs/*.log, ./b.log, /abs/*.log, './/c/?.log'], "
                                  "exclude: [logs/skip*]}]\n"
                                  "sinks: [{name: f, type: file, path: out/shipped.ndjson}]\n");
  assert_string_equal(cfg->file, "/etc/spillway/spillway.yaml");
  assert_string_equal(cfg->data_dir, "/etc/spillway/data");
  assert_string_equal(cfg->sources[0].paths[0], "/etc/spillway/logs/*.log");
  assert_string_equal(cfg->sources[0].paths[1], "/etc/spillway/b.log");
  assert_string_equal(cfg->sources[0].paths[2], "/abs/*.log");
  assert_string_equal(cfg->sources[0].paths[3], "/etc/spillway/c/?.log");
  assert_string_equal(cfg->sources[0].exclude[0], "/etc/spillway/logs/skip*");
  assert_string_equal(cfg->sinks[0].path, "/etc/spillway/out/shipped.ndjson");
  sw_config_free(cfg);

  /* the config's directory is literal inside globs */
  cfg = load_ok("/srv/a[1]/*/s.yaml", "sources: [{name: a, type: file, paths: x*.log}]\ndata_dir: d\n");
  assert_string_equal(cfg->sources[0].paths[0], "/srv/a\\[1]/\\*/x*.log");
  assert_string_equal(cfg->data_dir, "/srv/a[1]/*/d");
  sw_config_free(cfg);

  /* a relative config name resolves against the working directory */
  char cwd[PATH_MAX], want[PATH_MAX + 16];
  assert_non_null(getcwd(cwd, sizeof cwd));
  cfg = load_ok("spillway.yaml", "data_dir: d\n");
  snprintf(want, sizeof want, "%s/d", cwd);
  assert_string_equal(cfg->data_dir, want);
  sw_config_free(cfg);
  cfg = load_ok("conf/spillway.yaml", "data_dir: d\n");
  snprintf(want, sizeof want, "%s/conf/d", cwd);
  assert_string_equal(cfg->data_dir, want);
  sw_config_free(cfg);
  cfg = load_ok("/spillway.yaml", "data_dir: d\n");
  assert_string_equal(cfg->data_dir, "/d");
  sw_config_free(cfg);
}

/* ---- defaults ---- */

static void test_defaults(void **state) {
  (void)state;
  char host[256] = "";
  assert_int_equal(gethostname(host, sizeof host - 1), 0);
  const char *empties[] = {"", "# nothing\n", "---\n", "{}", "~\n"};
  for (size_t i = 0; i < sizeof empties / sizeof empties[0]; i++) {
    struct sw_config *cfg = load_ok(NAME, empties[i]);
    assert_string_equal(cfg->file, NAME);
    assert_string_equal(cfg->data_dir, "/var/lib/spillway");
    assert_string_equal(cfg->hostname, host);
    assert_int_equal(cfg->buffer.max_bytes, 1ull << 30);
    assert_int_equal(cfg->buffer.when_full, SW_WHEN_FULL_BLOCK);
    assert_int_equal(cfg->buffer.chunk_max_records, 5000);
    assert_int_equal(cfg->buffer.chunk_max_bytes, 256u << 10);
    assert_int_equal(cfg->buffer.recent_in_memory, 2u << 20);
    assert_int_equal(cfg->buffer.zstd_level, 1);
    assert_false(cfg->buffer.zstd_long);
    assert_int_equal(cfg->buffer.chunk_max_wait_ms, 1000);
    assert_null(cfg->sources);
    assert_int_equal(cfg->nsources, 0);
    assert_null(cfg->sinks);
    assert_int_equal(cfg->nsinks, 0);
    assert_string_equal(cfg->server.listen, "127.0.0.1:2020");
    assert_int_equal(cfg->log.level, SW_LOG_INFO);
    assert_int_equal(cfg->log.format, SW_LOG_FORMAT_JSON);
    sw_config_free(cfg);
  }

  struct sw_config *cfg = load_ok(NAME,
                                  "sources:\n"
                                  "  - {name: f, type: file, paths: /f/*.log, multiline: }\n"
                                  "  - {name: d, type: docker, paths: [/d/*.log], exclude: [], labels: {}}\n"
                                  "sinks:\n"
                                  "  - {name: f, type: file, path: /o}\n"
                                  "  - {name: l, type: loki, url: 'http://l'}\n"
                                  "  - {name: e, type: elasticsearch, url: 'http://e'}\n"
                                  "  - {name: s, type: s3, bucket: b}\n");
  for (size_t i = 0; i < 2; i++) {
    const struct sw_source_conf *s = &cfg->sources[i];
    assert_int_equal(s->type, i == 0 ? SW_SOURCE_FILE : SW_SOURCE_DOCKER);
    assert_int_equal(s->npaths, 1);
    assert_null(s->exclude);
    assert_int_equal(s->nexclude, 0);
    assert_int_equal(s->format, SW_FORMAT_TEXT);
    assert_int_equal(s->read_from, SW_READ_HEAD);
    assert_null(s->multiline.start);
    assert_int_equal(s->multiline.max_lines, 500);
    assert_int_equal(s->multiline.timeout_ms, 2000);
    assert_int_equal(s->max_record_bytes, 1u << 20);
    assert_null(s->labels);
    assert_int_equal(s->nlabels, 0);
  }
  const struct sw_sink_conf *k = cfg->sinks;
  assert_int_equal(cfg->nsinks, 4);
  for (size_t i = 0; i < 4; i++) { /* nothing set that the type does not use */
    assert_null(k[i].tenant);
    assert_null(k[i].labels);
    assert_null(k[i].username);
    assert_null(k[i].password);
    assert_null(k[i].bearer_token);
    assert_null(k[i].api_key);
    assert_null(k[i].access_key);
    assert_null(k[i].secret_key);
    assert_null(k[i].tls.ca_file);
    assert_false(k[i].tls.insecure_skip_verify);
    assert_int_equal(!!k[i].path, i == 0);
    assert_int_equal(!!k[i].url, i == 1 || i == 2);
    assert_null(k[i].endpoint);
    assert_null(k[i].prefix);
  }
  assert_int_equal(k[0].type, SW_SINK_FILE);
  assert_string_equal(k[0].path, "/o");
  assert_null(k[0].compression);
  assert_int_equal(k[0].batch_max_bytes, 0);
  assert_int_equal(k[0].object_max_bytes, 0);
  for (size_t i = 1; i <= 2; i++) {
    assert_int_equal(k[i].type, i == 1 ? SW_SINK_LOKI : SW_SINK_ELASTICSEARCH);
    assert_string_equal(k[i].compression, "gzip");
    assert_int_equal(k[i].batch_max_bytes, i == 1 ? 512u << 10 : 256u << 10);
    assert_int_equal(k[i].batch_max_wait_ms, 1000);
    assert_int_equal(k[i].object_max_bytes, 0);
    assert_null(k[i].bucket);
    assert_null(k[i].region);
  }
  assert_null(k[1].index);
  assert_string_equal(k[2].index, "logs-%Y.%m.%d");
  assert_int_equal(k[3].type, SW_SINK_S3);
  assert_string_equal(k[3].bucket, "b");
  assert_string_equal(k[3].region, "us-east-1");
  assert_null(k[3].index);
  assert_string_equal(k[3].compression, "zstd");
  assert_int_equal(k[3].object_max_bytes, 64u << 20);
  assert_int_equal(k[3].object_max_wait_ms, 300000);
  assert_int_equal(k[3].batch_max_bytes, 0);
  sw_config_free(cfg);
}

/* ---- sizes and durations, the public parsers ---- */

static void test_parse_size(void **state) {
  (void)state;
  static const struct { const char *s; int rc; uint64_t v; } t[] = {
      {"0", 0, 0}, {"512", 0, 512}, {"512B", 0, 512}, {"64KiB", 0, 65536}, {"1 MiB", 0, 1u << 20},
      {"2GiB", 0, 2ull << 30}, {"1TiB", 0, 1ull << 40}, {"18446744073709551615", 0, UINT64_MAX},
      {"16777215TiB", 0, 16777215ull << 40}, {"18446744073709551616", SW_EPARSE, 0},
      {"16777216TiB", SW_EPARSE, 0}, {"99999999999999999999999KiB", SW_EPARSE, 0}, {"", SW_EPARSE, 0},
      {"KiB", SW_EPARSE, 0}, {"1KB", SW_EPARSE, 0}, {"1kib", SW_EPARSE, 0}, {"1.5MiB", SW_EPARSE, 0},
      {"-1", SW_EPARSE, 0}, {" 1", SW_EPARSE, 0}, {"1  KiB", SW_EPARSE, 0}, {"1KiB ", SW_EPARSE, 0},
      {"1K", SW_EPARSE, 0}, {"0x10", SW_EPARSE, 0},
  };
  uint64_t x = 7;
  assert_int_equal(sw_parse_size(NULL, &x), SW_EPARSE);
  assert_int_equal(sw_parse_duration(NULL, &x), SW_EPARSE);
  assert_int_equal(x, 7);
  for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
    uint64_t v = 12345;
    int rc = sw_parse_size(t[i].s, &v);
    if (rc != t[i].rc || (!rc && v != t[i].v)) fail_msg("sw_parse_size(\"%s\") = %d, %llu", t[i].s, rc, (unsigned long long)v);
  }
}

static void test_parse_duration(void **state) {
  (void)state;
  static const struct { const char *s; int rc; uint64_t v; } t[] = {
      {"250ms", 0, 250}, {"1s", 0, 1000}, {"5m", 0, 300000}, {"2h", 0, 7200000}, {"7d", 0, 604800000},
      {"0ms", 0, 0}, {"1h30m", 0, 5400000}, {"1m30s", 0, 90000}, {"1s500ms", 0, 1500},
      {"1d2h3m4s5ms", 0, 93784005}, {"213503982334d", 0, 213503982334ull * 86400000},
      {"213503982335d", SW_EPARSE, 0}, {"18446744073709551615ms", 0, UINT64_MAX},
      {"18446744073709551616ms", SW_EPARSE, 0}, {"5", SW_EPARSE, 0}, {"", SW_EPARSE, 0},
      {"s", SW_EPARSE, 0}, {"1.5s", SW_EPARSE, 0}, {"1m1h", SW_EPARSE, 0}, {"1s1s", SW_EPARSE, 0},
      {"1ms1s", SW_EPARSE, 0}, {"1 s", SW_EPARSE, 0}, {"1w", SW_EPARSE, 0}, {"1S", SW_EPARSE, 0},
      {"-1s", SW_EPARSE, 0}, {"1s ", SW_EPARSE, 0}, {"1h30", SW_EPARSE, 0},
  };
  for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
    uint64_t v = 12345;
    int rc = sw_parse_duration(t[i].s, &v);
    if (rc != t[i].rc || (!rc && v != t[i].v))
      fail_msg("sw_parse_duration(\"%s\") = %d, %llu", t[i].s, rc, (unsigned long long)v);
  }
}

/* ---- files, error cap, docs ---- */

static void test_load_file(void **state) {
  (void)state;
  struct sw_config *cfg = NULL;
  struct sw_conf_errors e = {0};
  assert_int_equal(sw_config_load("/nonexistent/spillway.yaml", &cfg, &e), SW_ECONFIG);
  assert_null(cfg);
  assert_int_equal(e.n, 1);
  assert_string_equal(e.msgs[0], "/nonexistent/spillway.yaml: cannot read: No such file or directory");
  sw_conf_errors_free(&e);
  assert_int_equal(sw_config_load("/", &cfg, &e), SW_ECONFIG);
  assert_string_equal(e.msgs[0], "/: cannot read: not a regular file");
  sw_conf_errors_free(&e);

  char dir[] = "/tmp/sw_test_config_XXXXXX";
  assert_non_null(mkdtemp(dir));
  write_file(dir, "s.yaml", "data_dir: db\nlog: {level: debug}\n", 32);
  char p[PATH_MAX], want[PATH_MAX];
  snprintf(p, sizeof p, "%s/s.yaml", dir);
  assert_int_equal(sw_config_load(p, &cfg, &e), 0);
  assert_int_equal(e.n, 0);
  snprintf(want, sizeof want, "%s/db", dir);
  assert_string_equal(cfg->data_dir, want);
  assert_string_equal(cfg->file, p);
  assert_int_equal(cfg->log.level, SW_LOG_DEBUG);
  sw_config_free(cfg);
  unlink(p);
  rmdir(dir);
}

static void test_error_cap(void **state) {
  (void)state;
  char text[8192];
  size_t o = 0;
  for (int i = 0; i < 150; i++) o += (size_t)snprintf(text + o, sizeof text - o, "zz%d: 1\n", i);
  struct sw_config *cfg = NULL;
  struct sw_conf_errors e = {0};
  assert_int_equal(sw_config_load_string(NAME, text, o, &cfg, &e), SW_ECONFIG);
  assert_int_equal(e.n, 101);
  assert_string_equal(e.msgs[99], F "zz99: unknown key");
  assert_string_equal(e.msgs[100], F "too many errors, stopping here");
  sw_conf_errors_free(&e);
  sw_conf_errors_free(NULL);
}

/* ---- redact ---- */

static void test_docs(void **state) {
  (void)state;
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  assert_non_null(f);
  sw_config_write_docs(f);
  assert_int_equal(fclose(f), 0);
  const char *must[] = {
      "# Configuration reference\n",
      "\n## `buffer.chunk`\n",
      "| `max_records` | integer, 1–1000000 | `5000` | A chunk is closed when it holds this many records. |\n",
      "| `when_full` | `block` \\| `drop_oldest` | `block` |",
      "\n## `sources[].multiline`\n",
      "| `name` | name | **required** |",
      "| `index` | string | `logs-%Y.%m.%d` | *Only for type `elasticsearch`.*",
      "| `tls` | mapping | — | *Only for types `loki`, `elasticsearch`, `s3`.*",
      "| `redact` | mapping | — | See below. |",
      "\n## `redact.rules[]`\n",
      "| `pattern` | PCRE2 pattern | **required** |",
      "| `replace` | string | `[REDACTED]` |",
      "\n## `redact.fields`\n",
      "| `action` | `mask` \\| `hash` \\| `drop` | `mask` |",
      "| `hostname` | string | the system's host name |",
      "\n## `sinks[].object`\n",
      "\n## `log`\n",
  };
  for (size_t i = 0; i < sizeof must / sizeof must[0]; i++)
    if (!strstr(buf, must[i])) fail_msg("docs lack: %s", must[i]);
  free(buf);
}

/* Fails every allocation in turn: each load must return SW_ENOMEM and free everything. */
static void test_alloc_failures(void **state) {
  (void)state;
#if INJECT_ALLOC
  char dir[] = "/tmp/sw_test_config_XXXXXX";
  assert_non_null(mkdtemp(dir));
  write_file(dir, "pw", "hunter2\n", 8);
  char name[PATH_MAX], pw[PATH_MAX];
  snprintf(name, sizeof name, "%s/s.yaml", dir);
  snprintf(pw, sizeof pw, "%s/pw", dir);
  setenv("SW_T_HOST", "web-1", 1);
  const char *texts[] = {
      ("x-t: &t {insecure_skip_verify: true}\n"
       "hostname: ${SW_T_HOST}\ndata_dir: d\n"
       "buffer: {max_bytes: 2GiB, when_full: drop_oldest, chunk: {max_records: 10, max_wait: 1m30s}}\n"
       "sources:\n"
       "  - {name: a, type: file, paths: [x/*.log, '/y/[ab].log'], exclude: z, format: json,\n"
       "     multiline: {start: '^\\d{4}-', timeout: 1s}, labels: {app: a, env: \"${SW_T_UNSET:-dev}\"}}\n"
       "  - {<<: {type: cri, paths: /p/*.log}, name: b}\n"
       "sinks:\n"
       "  - {name: f, type: file, path: out.ndjson}\n"
       "  - {name: l, type: loki, url: 'http://l', username: u, password_file: pw, labels: {job: s}, tls: *t}\n"
       "  - {name: s, type: s3, bucket: b, access_key_file: pw, secret_key_file: pw, object: {compression: gzip}}\n"
       "server: {listen: ':1'}\nlog: {level: debug}\n"
       "redact: {builtin: [email, jwt], rules: [{name: r, pattern: 'a(?<g>b)', replace: 'x$${g}'}],\n"
       "  fields: {keys: [password], action: hash}, hash_salt_file: pw}\n"),
      ("data_dri: x\nbuffer: {max_bytes: 10MB}\nsources: [{name: 'a b', type: file, paths: ['[x'],\n"
       "  multiline: {start: '(x'}}, {}]\nhostname: ${SW_T_UNSET}\nredact: {}\n"),
      "log: {level: info, level: warn}\n",
      "a: [1, 2\n",
  };
  for (size_t t = 0; t < sizeof texts / sizeof texts[0]; t++) {
    for (long n = 0;; n++) {
      struct sw_config *cfg = NULL;
      struct sw_conf_errors e = {0};
      long live = alloc_live;
      alloc_count = 0;
      alloc_fail_at = n;
      int rc = sw_config_load_string(name, texts[t], strlen(texts[t]), &cfg, &e);
      alloc_fail_at = -1;
      bool injected = alloc_count > n;
      if (!rc && t == 0) assert_string_equal(cfg->sinks[1].password, "hunter2");
      sw_config_free(cfg);
      sw_conf_errors_free(&e);
      if (alloc_live != live) fail_msg("text %zu, failing allocation %ld: %ld blocks leaked", t, n, alloc_live - live);
      if (!injected) {
        assert_int_equal(rc, t == 0 ? 0 : SW_ECONFIG);
        break;
      }
      if (rc != SW_ENOMEM) fail_msg("text %zu, failing allocation %ld: rc %d", t, n, rc);
    }
  }
  unlink(pw);
  rmdir(dir);
#else
  skip();
#endif
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_yaml_errors),
      cmocka_unit_test(test_yaml_limits),
      cmocka_unit_test(test_yaml_features),
      cmocka_unit_test(test_yaml_scalars),
      cmocka_unit_test(test_yaml_big),
      cmocka_unit_test(test_json),
      cmocka_unit_test(test_unknown_keys),
      cmocka_unit_test(test_type_errors),
      cmocka_unit_test(test_sizes_durations_in_config),
      cmocka_unit_test(test_source_errors),
      cmocka_unit_test(test_sink_errors),
      cmocka_unit_test(test_env),
      cmocka_unit_test(test_secrets),
      cmocka_unit_test(test_relative_paths),
      cmocka_unit_test(test_defaults),
      cmocka_unit_test(test_parse_size),
      cmocka_unit_test(test_parse_duration),
      cmocka_unit_test(test_load_file),
      cmocka_unit_test(test_error_cap),
      cmocka_unit_test(test_docs),
      cmocka_unit_test(test_alloc_failures),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
