/* Unit tests for parsers/docker.c. Every input is parsed from an exactly sized heap copy, so
 * AddressSanitizer reports any read past the line or write past out_cap. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "parsers/docker.h"
#include "parsers/json.h"
#include "parsers/record.h"

#define S(lit) lit, sizeof(lit) - 1
#define T1 "2026-11-23T15:33:52.123456789Z"
#define T1_NS INT64_C(1795448032123456789)

struct ok_case {
  const char *in;
  size_t in_len;
  const char *log; /* expected bytes (may hold NUL) */
  size_t log_len;
  bool partial;
  int stream;
  int64_t ts;
};

static const struct ok_case ok_cases[] = {
    {S("{\"log\":\"hello\\n\",\"stream\":\"stdout\",\"time\":\"" T1 "\"}"), S("hello"), false,
     SW_STREAM_STDOUT, T1_NS},
    {S("{\"log\":\"oops\\n\",\"stream\":\"stderr\",\"time\":\"" T1 "\"}"), S("oops"), false,
     SW_STREAM_STDERR, T1_NS},
    {S("{\"time\":\"" T1 "\",\"stream\":\"stderr\",\"log\":\"reordered\\n\"}"), S("reordered"),
     false, SW_STREAM_STDERR, T1_NS},
    {S("{\"stream\":\"stderr\",\"log\":\"mid\\n\",\"time\":\"2026-11-23T17:33:52.123456789+02:00\"}"),
     S("mid"), false, SW_STREAM_STDERR, T1_NS},
    /* partial pieces and newline handling */
    {S("{\"log\":\"part\",\"stream\":\"stdout\",\"time\":\"" T1 "\"}"), S("part"), true,
     SW_STREAM_STDOUT, T1_NS},
    {S("{\"log\":\"crlf\\r\\n\"}"), S("crlf\r"), false, SW_STREAM_STDOUT, 0},
    {S("{\"log\":\"two\\n\\n\"}"), S("two\n"), false, SW_STREAM_STDOUT, 0},
    {S("{\"log\":\"\\n\"}"), S(""), false, SW_STREAM_STDOUT, 0},
    {S("{\"log\":\"\"}"), S(""), true, SW_STREAM_STDOUT, 0},
    {S("{\"log\":\"cr only\\r\"}"), S("cr only\r"), true, SW_STREAM_STDOUT, 0},
    /* escapes */
    {S("{\"log\":\"a\\\"b\\\\c\\/d\\be\\ff\\ng\\rh\\ti\\n\"}"), S("a\"b\\c/d\be\ff\ng\rh\ti"),
     false, SW_STREAM_STDOUT, 0},
    {S("{\"log\":\"\\u0041\\u00e9\\u20AC\\ud83d\\ude00\"}"),
     S("A\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80"), true, SW_STREAM_STDOUT, 0},
    {S("{\"log\":\"nul\\u0000byte\\u0000\"}"), S("nul\0byte\0"), true, SW_STREAM_STDOUT, 0},
    {S("{\"log\":\"\\u007f\\u0080\\u07ff\\u0800\\uffff\"}"),
     S("\x7F\xC2\x80\xDF\xBF\xE0\xA0\x80\xEF\xBF\xBF"), true, SW_STREAM_STDOUT, 0},
    {S("{\"log\":\"\\udbff\\udfff\"}"), S("\xF4\x8F\xBF\xBF"), true, SW_STREAM_STDOUT, 0},
    /* broken surrogates become U+FFFD (EF BF BD) */
    {S("{\"log\":\"\\ud800x\"}"), S("\xEF\xBF\xBDx"), true, SW_STREAM_STDOUT, 0},
    {S("{\"log\":\"\\udc00\"}"), S("\xEF\xBF\xBD"), true, SW_STREAM_STDOUT, 0},
    {S("{\"log\":\"\\ud800\"}"), S("\xEF\xBF\xBD"), true, SW_STREAM_STDOUT, 0},
    {S("{\"log\":\"\\ud800\\n\"}"), S("\xEF\xBF\xBD"), false, SW_STREAM_STDOUT, 0},
    {S("{\"log\":\"\\ud800\\ud800\\udc00\"}"), S("\xEF\xBF\xBD\xF0\x90\x80\x80"), true,
     SW_STREAM_STDOUT, 0},
    {S("{\"log\":\"\\ud800\\u0041\"}"), S("\xEF\xBF\xBD" "A"), true, SW_STREAM_STDOUT, 0},
    {S("{\"log\":\"\\udc00\\ud800\"}"), S("\xEF\xBF\xBD\xEF\xBF\xBD"), true, SW_STREAM_STDOUT,
     0},
    /* backslashes right before the closing quote */
    {S("{\"log\":\"a\\\\\"}"), S("a\\"), true, SW_STREAM_STDOUT, 0},
    {S("{\"log\":\"a\\\\\\\\\"}"), S("a\\\\"), true, SW_STREAM_STDOUT, 0},
    {S("{\"log\":\"\\\\\"}"), S("\\"), true, SW_STREAM_STDOUT, 0},
    {S("{\"log\":\"\\\\\\\"\"}"), S("\\\""), true, SW_STREAM_STDOUT, 0},
    {S("{\"log\":\"q\\\"\",\"stream\":\"stderr\"}"), S("q\""), true, SW_STREAM_STDERR, 0},
    {S("{\"log\":\"0123456789abcdef\\\"0123456789abcdef\\\\\"}"),
     S("0123456789abcdef\"0123456789abcdef\\"), true, SW_STREAM_STDOUT, 0},
    /* raw bytes are copied as they are: invalid UTF-8 and control characters */
    {S("{\"log\":\"\xFF\xFE\xC3 \xED\xA0\x80\\n\"}"), S("\xFF\xFE\xC3 \xED\xA0\x80"), false,
     SW_STREAM_STDOUT, 0},
    {S("{\"log\":\"tab\there\x01\x1F\"}"), S("tab\there\x01\x1F"), true, SW_STREAM_STDOUT, 0},
    {S("{\"log\":\"raw\nnewline\n\"}"), S("raw\nnewline"), false, SW_STREAM_STDOUT, 0},
    /* other keys are skipped, however nested */
    {S("{\"log\":\"x\\n\",\"attrs\":{\"a\":[1,2,{\"b\":\"x\\\"}]\"}],\"c\":null,\"d\":true,"
       "\"e\":false,\"f\":-1.5e+3,\"g\":[],\"h\":{},\"i\":0,\"j\":[[[]]],\"k\":\"\\u1234\"},"
       "\"stream\":\"stderr\"}"),
     S("x"), false, SW_STREAM_STDERR, 0},
    {S("{\"x\":\"\\\"log\\\":\\\"fake\\\"\",\"log\":\"real\\n\"}"), S("real"), false,
     SW_STREAM_STDOUT, 0},
    {S("{\"a\":0.5E-7,\"b\":-0,\"c\":1e5,\"log\":\"n\\n\"}"), S("n"), false, SW_STREAM_STDOUT,
     0},
    /* stream variants: absent, unknown, non-string, escaped */
    {S("{\"log\":\"s\\n\",\"stream\":\"weird\"}"), S("s"), false, SW_STREAM_STDOUT, 0},
    {S("{\"log\":\"s\\n\",\"stream\":5}"), S("s"), false, SW_STREAM_STDOUT, 0},
    {S("{\"log\":\"s\\n\",\"stream\":{\"x\":[\"stderr\"]}}"), S("s"), false, SW_STREAM_STDOUT,
     0},
    {S("{\"log\":\"s\\n\",\"stream\":\"std\\u0065rr\"}"), S("s"), false, SW_STREAM_STDERR, 0},
    {S("{\"log\":\"s\\n\",\"stream\":\"stderrr\"}"), S("s"), false, SW_STREAM_STDOUT, 0},
    {S("{\"log\":\"s\\n\",\"stream\":\"stderr\",\"stream\":\"stdout\"}"), S("s"), false,
     SW_STREAM_STDOUT, 0},
    /* whitespace everywhere JSON allows it */
    {S(" \t{ \"log\" :\t\"ws\\n\" ,\r\n\"stream\" : \"stderr\" , \"time\" : \"" T1 "\" } \r"),
     S("ws"), false, SW_STREAM_STDERR, T1_NS},
    /* duplicate "log": the last one wins; escaped key names are recognised */
    {S("{\"log\":\"first and longer\\n\",\"log\":\"second\\n\"}"), S("second"), false,
     SW_STREAM_STDOUT, 0},
    {S("{\"l\\u006fg\":\"esc key\\n\",\"\\u0074ime\":\"" T1 "\"}"), S("esc key"), false,
     SW_STREAM_STDOUT, T1_NS},
    {S("{\"logx\":5,\"lo\":6,\"log\":\"k\\n\",\"times\":7,\"Time\":\"bad\"}"), S("k"), false,
     SW_STREAM_STDOUT, 0},
    /* time variants */
    {S("{\"log\":\"t\\n\",\"time\":\"2016-10-06T00:17:09.669794202Z\"}"), S("t"), false,
     SW_STREAM_STDOUT, INT64_C(1475713029669794202)},
    {S("{\"log\":\"t\\n\",\"time\":\"2026-11-23T15:33:52.123456789123456789123456789Z\"}"),
     S("t"), false, SW_STREAM_STDOUT, T1_NS},
    {S("{\"log\":\"t\\n\",\"time\":\"2026-11-23T15:33:52.123456789\\u005a\"}"), S("t"), false,
     SW_STREAM_STDOUT, T1_NS},
};

/* Parses an exactly sized heap copy of in[0..len) into an exactly sized heap out buffer. */
static int parse_copy(const char *in, size_t len, size_t out_cap, char **out,
                      struct sw_docker_line *res) {
  char *line = malloc(len ? len : 1);
  assert_non_null(line);
  memcpy(line, in, len);
  *out = malloc(out_cap ? out_cap : 1);
  assert_non_null(*out);
  int rc = sw_docker_parse(line, len, *out, out_cap, res);
  free(line);
  return rc;
}

static void test_ok_cases(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof ok_cases / sizeof ok_cases[0]; i++) {
    const struct ok_case *c = &ok_cases[i];
    struct sw_docker_line res;
    char *out;
    int rc = parse_copy(c->in, c->in_len, c->in_len, &out, &res);
    if (rc != 0)
      print_error("case %zu: rc %d for %s\n", i, rc, c->in);
    assert_int_equal(rc, 0);
    assert_ptr_equal(res.log, out);
    if (res.log_len != c->log_len)
      print_error("case %zu: log_len %zu want %zu\n", i, res.log_len, c->log_len);
    assert_int_equal(res.log_len, c->log_len);
    assert_memory_equal(res.log, c->log, c->log_len);
    assert_int_equal(res.partial, c->partial);
    assert_int_equal(res.stream, c->stream);
    assert_true(res.ts_ns == c->ts);
    free(out);
  }
}

/* Every proper prefix of a valid line is incomplete: SW_EPARSE, never a crash. */
static void test_prefixes(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof ok_cases / sizeof ok_cases[0]; i++) {
    const struct ok_case *c = &ok_cases[i];
    size_t full = c->in_len;
    while (full > 0 && strchr(" \t\r\n", c->in[full - 1]) != NULL)
      full--; /* a prefix that only drops trailing whitespace is still complete */
    for (size_t k = 0; k < full; k++) {
      struct sw_docker_line res;
      char *out;
      assert_int_equal(parse_copy(c->in, k, k, &out, &res), SW_EPARSE);
      free(out);
    }
  }
}

static const char *const bad_cases[] = {
    "",
    " ",
    "{}",
    "[]",
    "\"log\"",
    "{\"log\":1}",
    "{\"log\":null}",
    "{\"log\":[\"x\"]}",
    "{\"stream\":\"stdout\",\"time\":\"" T1 "\"}",
    "{\"log\":\"x\\n\"",
    "{\"log\":\"x\\n}",
    "{\"log\":\"x\\n\"}}",
    "{\"log\":\"x\\n\"} x",
    "{\"log\":\"x\\n\"}{\"log\":\"y\"}",
    "{\"log\":\"x\\n\",}",
    "{,\"log\":\"x\\n\"}",
    "{\"log\":\"x\\q\"}",
    "{\"log\":\"x\\\"}",
    "{\"log\":\"\\u12\"}",
    "{\"log\":\"\\u12G4\"}",
    "{\"log\":\"\\U0041\"}",
    "{\"log\":\"\\ud800\\u12\"}",
    /* escapes cut short right at the end of the line: no read past it */
    "{\"log\":\"\\u12\"",
    "{\"log\":\"\\u123\"",
    "{\"log\":\"\\ud800\\udc0\"",
    "{\"log\":\"\\ud800\\u\"",
    "{\"log\":\"\\\"",
    /* an escaped "time" longer than the 64-byte scratch is rejected, though valid */
    "{\"log\":\"x\",\"time\":\"2026-11-23T15:33:52.12345678912345678901234567890123456789012345"
    "\\u005a\"}",
    "{\"log\":\"x\",\"time\":\"garbage\"}",
    "{\"log\":\"x\",\"time\":\"\"}",
    "{\"log\":\"x\",\"time\":5}",
    "{\"log\":\"x\",\"time\":null}",
    "{\"log\":\"x\",\"time\":\"2026-11-23T15:33:52\"}",
    "{\"log\":\"x\",\"time\":\"" T1 " \"}",
    "{\"log\":\"x\" \"stream\":\"stdout\"}",
    "{\"log\" \"x\"}",
    "{\"log\"::\"x\"}",
    "{log:\"x\"}",
    "{'log':'x'}",
    "{\"log\":\"x\",\"a\":[1,2}",
    "{\"log\":\"x\",\"a\":{\"b\"}}",
    "{\"log\":\"x\",\"a\":{\"b\":}}",
    "{\"log\":\"x\",\"a\":{\"b\":1,}}",
    "{\"log\":\"x\",\"a\":{1:2}}",
    "{\"log\":\"x\",\"a\":01}",
    "{\"log\":\"x\",\"a\":1.}",
    "{\"log\":\"x\",\"a\":.5}",
    "{\"log\":\"x\",\"a\":-}",
    "{\"log\":\"x\",\"a\":+1}",
    "{\"log\":\"x\",\"a\":1e}",
    "{\"log\":\"x\",\"a\":1e+}",
    "{\"log\":\"x\",\"a\":tru}",
    "{\"log\":\"x\",\"a\":nul}",
    "{\"log\":\"x\",\"a\":falsey}",
    "{\"log\":\"x\",\"a\":[1,]}",
    "{\"log\":\"x\",\"a\":[,1]}",
    "{\"log\":\"x\",\"a\":[1 2]}",
    "{\"log\":\"x\",\"a\":NaN}",
    "{\"log\":\"x\",\"a\":\"\\x\"}",
    "{\"log\":\"x\",\"a\":[}",
    "{\"log\":\"x\",\"a\":]}",
    "{\"log\":\"x\",\"stream\":}",
    "{\"log\":\"x\",\"stream\":\"std",
};

static void test_bad_cases(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
    struct sw_docker_line res;
    char *out;
    size_t n = strlen(bad_cases[i]);
    int rc = parse_copy(bad_cases[i], n, n, &out, &res);
    if (rc != SW_EPARSE)
      print_error("case %zu accepted: %s\n", i, bad_cases[i]);
    assert_int_equal(rc, SW_EPARSE);
    free(out);
  }
}

/* Copies the NUL-terminated s to dst and returns its length. */
static size_t put(char *dst, const char *s) {
  size_t n = strlen(s);
  memcpy(dst, s, n);
  return n;
}

/* {"log":"d\n","a":[[...[]...]]} with `depth` nested arrays. */
static char *nested(size_t depth, size_t *len) {
  char *s = malloc(depth * 2 + 64);
  assert_non_null(s);
  size_t n = put(s, "{\"log\":\"d\\n\",\"a\":");
  memset(s + n, '[', depth);
  memset(s + n + depth, ']', depth);
  n += 2 * depth;
  s[n++] = '}';
  *len = n;
  return s;
}

static void test_depth(void **state) {
  (void)state;
  size_t len;
  struct sw_docker_line res;
  char *out;
  char *s = nested(64, &len);
  assert_int_equal(parse_copy(s, len, len, &out, &res), 0);
  assert_int_equal(res.log_len, 1);
  free(out);
  free(s);
  s = nested(65, &len);
  assert_int_equal(parse_copy(s, len, len, &out, &res), SW_EPARSE);
  free(out);
  free(s);
  s = nested(100000, &len); /* deep nesting is bounded, not recursive */
  assert_int_equal(parse_copy(s, len, len, &out, &res), SW_EPARSE);
  free(out);
  free(s);
}

/* A 1 MiB log, plain and with an escaped quote every 100 bytes, is unescaped exactly. */
static void test_huge_line(void **state) {
  (void)state;
  const size_t body = 1u << 20;
  for (int esc = 0; esc <= 1; esc++) {
    char *line = malloc(body * 2 + 64), *want = malloc(body);
    assert_non_null(line);
    assert_non_null(want);
    size_t n = put(line, "{\"stream\":\"stderr\",\"log\":\"");
    for (size_t i = 0; i < body; i++) {
      want[i] = esc && i % 100 == 99 ? '"' : (char)('a' + i % 26);
      if (want[i] == '"')
        line[n++] = '\\';
      line[n++] = want[i];
    }
    n += put(line + n, "\\n\",\"time\":\"" T1 "\"}");
    struct sw_docker_line res;
    char *out;
    assert_int_equal(parse_copy(line, n, n, &out, &res), 0);
    assert_int_equal(res.log_len, body);
    assert_memory_equal(res.log, want, body);
    assert_false(res.partial);
    assert_int_equal(res.stream, SW_STREAM_STDERR);
    assert_true(res.ts_ns == T1_NS);
    free(out);
    free(line);
    free(want);
  }
}

/* out_cap smaller than the unescaped log is a caller error reported as SW_ETOOBIG; exactly
 * enough room (including the "\n" that is then stripped) works. */
static void test_out_cap(void **state) {
  (void)state;
  static const char line[] = "{\"log\":\"ab\\\"cd\\n\"}";
  struct sw_docker_line res;
  char *out;
  assert_int_equal(parse_copy(S(line), 6, &out, &res), 0);
  assert_int_equal(res.log_len, 5);
  assert_memory_equal(res.log, "ab\"cd", 5);
  free(out);
  assert_int_equal(parse_copy(S(line), 5, &out, &res), SW_ETOOBIG);
  free(out);
  assert_int_equal(parse_copy(S(line), 0, &out, &res), SW_ETOOBIG);
  free(out);
  assert_int_equal(sw_docker_parse(S("{\"log\":\"\"}"), NULL, 0, &res), 0);
  assert_int_equal(res.log_len, 0);
  assert_int_equal(sw_docker_parse(NULL, 0, NULL, 0, &res), SW_EINVAL);
  assert_int_equal(sw_docker_parse(S(line), NULL, 0, NULL), SW_EINVAL);
}

/* An escape at every offset of runs of every length around the 8-byte scanning step, parsed
 * with exactly enough room and with one byte too few: exact bytes, or SW_ETOOBIG. */
static void test_escape_positions(void **state) {
  (void)state;
  static const char *const escs[] = {"\\\"", "\\\\", "\\u00e9", "\\n"};
  static const char *const outs[] = {"\"", "\\", "\xC3\xA9", "\n"};
  for (size_t e = 0; e < 4; e++) {
    for (size_t len = 0; len < 40; len++) {
      for (size_t pos = 0; pos <= len; pos++) {
        char line[128], want[64];
        size_t n = put(line, "{\"log\":\""), w = 0;
        for (size_t i = 0; i <= len; i++) {
          if (i == pos) {
            n += put(line + n, escs[e]);
            w += put(want + w, outs[e]);
          }
          if (i < len)
            line[n++] = want[w++] = (char)('a' + i % 26);
        }
        n += put(line + n, "\"}");
        struct sw_docker_line res;
        char *out;
        bool partial = e != 3 || pos != len;
        size_t need = w;
        assert_int_equal(parse_copy(line, n, need, &out, &res), 0);
        assert_int_equal(res.log_len, partial ? w : w - 1);
        assert_memory_equal(res.log, want, res.log_len);
        assert_int_equal(res.partial, partial);
        free(out);
        assert_int_equal(parse_copy(line, n, need - 1, &out, &res), SW_ETOOBIG);
        free(out);
      }
    }
  }
}

/* Random byte mutations of valid lines: never crash, results stay inside the buffers, and
 * whatever the docker scanner accepts (control bytes aside) is valid JSON. */
static void test_mutations(void **state) {
  (void)state;
  uint64_t x = 88172645463325252u;
  static const char alphabet[] = "{}[]\":,\\u0aen\n \x01\x80\xff";
  for (int iter = 0; iter < 200000; iter++) {
    const struct ok_case *c = &ok_cases[iter % (sizeof ok_cases / sizeof ok_cases[0])];
    char buf[512];
    size_t n = c->in_len < sizeof buf ? c->in_len : sizeof buf;
    memcpy(buf, c->in, n);
    for (int m = 0; m < 1 + iter % 3; m++) {
      x ^= x << 13;
      x ^= x >> 7;
      x ^= x << 17;
      buf[x % n] = alphabet[(x >> 32) % (sizeof alphabet - 1)];
    }
    struct sw_docker_line res;
    char *out;
    int rc = parse_copy(buf, n, n, &out, &res);
    assert_true(rc == 0 || rc == SW_EPARSE);
    if (rc == 0) {
      assert_true(res.log_len <= n);
      bool ctl = false; /* raw control bytes: docker is lenient in strings, JSON is not */
      for (size_t i = 0; i < n; i++)
        ctl |= (unsigned char)buf[i] < 0x20;
      struct sw_json_info info;
      if (!ctl)
        assert_int_equal(sw_json_scan(buf, n, &info), 0);
    }
    free(out);
  }
}

static void test_stream_name(void **state) {
  (void)state;
  assert_string_equal(sw_stream_name(SW_STREAM_STDOUT), "stdout");
  assert_string_equal(sw_stream_name(SW_STREAM_STDERR), "stderr");
  assert_string_equal(sw_stream_name(SW_STREAM_FILE), "file");
  assert_string_equal(sw_stream_name(42), "stdout");
  assert_string_equal(sw_stream_name(-1), "stdout");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_ok_cases),  cmocka_unit_test(test_prefixes),
      cmocka_unit_test(test_bad_cases), cmocka_unit_test(test_depth),
      cmocka_unit_test(test_huge_line), cmocka_unit_test(test_out_cap),
      cmocka_unit_test(test_mutations), cmocka_unit_test(test_stream_name),
      cmocka_unit_test(test_escape_positions),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
