/* Search matcher: per-record semantics, the whole-text fast path against record-by-record
 * matching, label matchers, time parsing. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parsers/record.h"
#include "search/query.h"

struct hits {
  size_t n;
  char lines[64][64];
};

/* The chunk-level verdict when no source extracts a label: every matcher decided from the
 * chunk's own label set (a missing label is ""). */
static int chunk_labels_match(const struct sw_search_query *q, const char *labels_json) {
  struct sw_search_query c = *q;
  c.xknown = 1;
  c.xmask = 0;
  uint64_t deferred;
  int ok = sw_search_labels_plan(&c, labels_json, &deferred);
  assert_int_equal(deferred, 0);
  return ok;
}

static int on_hit(void *arg, const struct sw_record_view *v) {
  struct hits *h = arg;
  if (h->n < 64) snprintf(h->lines[h->n++], 64, "%.*s", (int)v->len, v->line);
  return 0;
}

static void build(struct sw_buf *raw, const char *const *lines, size_t n) {
  struct sw_chunk_builder cb;
  sw_chunk_builder_init(&cb, 1 << 20);
  for (size_t i = 0; i < n; i++)
    assert_int_equal(sw_chunk_add(&cb, (int64_t)(100 + i), (int)(i % 2), 0, lines[i], strlen(lines[i])), 0);
  sw_buf_init(raw, SIZE_MAX);
  assert_int_equal(sw_chunk_finish(&cb, raw), 0);
  sw_chunk_builder_free(&cb);
}

static const char *const k_lines[] = {
    "GET /a 200",       "POST /b 500",     "",          "multi\nline record\nGET inside",
    "ends with GET",    "xGETx",           "timeout",   "user session",
    "\xff\xfe invalid", "caf\xc3\xa9 ok",  "GET",       "a\nb",
};
#define NL (sizeof k_lines / sizeof k_lines[0])

/* The query's hits in a raw chunk (scratch made and freed here). */
static struct hits scan(const struct sw_search_query *q, const struct sw_buf *raw) {
  struct sw_search_scratch s;
  assert_int_equal(sw_search_scratch_init(&s, q), 0);
  struct hits h = {0};
  assert_int_equal(sw_search_chunk(q, &s, raw->data, raw->len, on_hit, &h), 0);
  sw_search_scratch_free(&s);
  return h;
}

static struct hits run(const char *pattern, int flags, int slow) {
  struct sw_search_query q;
  char err[256];
  assert_int_equal(sw_search_query_init(&q, pattern, flags, err, sizeof err), 0);
  if (slow) { /* force record by record: the reference */
    pcre2_code_free(q.re_text);
    q.re_text = NULL;
  }
  struct sw_buf raw;
  build(&raw, k_lines, NL);
  struct hits h = scan(&q, &raw);
  sw_buf_free(&raw);
  sw_search_query_free(&q);
  return h;
}

/* The fast path gives exactly the record-by-record answer, for anchors, empty matches,
 * patterns that could span records, lookaround and atomic groups. */
static void fast_path_equals_reference(void **state) {
  (void)state;
  const char *pats[] = {"GET", "^GET", "GET$", "^$", "", "^", "$", "x*", "ine\\nGET",
                        "record\\n", "b\\s*$", "\\bGET\\b", "\\BGET\\B", "0\\n", "^line",
                        "(?<=x)GET", "GET(?!x)", "(?>GE)T", "\\s++GET", "\\AGET", "GET\\z",
                        "caf.", "\\xff", "^.{3}$", "(?s)a.b", "(?m)^line", "[^x]GET", "ok$|^GET"};
  for (size_t i = 0; i < sizeof pats / sizeof pats[0]; i++) {
    struct hits a = run(pats[i], 0, 0), b = run(pats[i], 0, 1);
    if (a.n != b.n) fail_msg("pattern %s: fast %zu hits, reference %zu", pats[i], a.n, b.n);
    for (size_t k = 0; k < a.n; k++) assert_string_equal(a.lines[k], b.lines[k]);
  }
}

static void per_record_semantics(void **state) {
  (void)state;
  struct hits h = run("^GET", 0, 0);
  assert_int_equal(h.n, 2); /* "GET /a 200" and "GET": not the line inside the multi-line record */
  assert_string_equal(h.lines[0], "GET /a 200");
  assert_string_equal(h.lines[1], "GET");
  h = run("GET$", 0, 0);
  assert_int_equal(h.n, 2);
  h = run("^$", 0, 0);
  assert_int_equal(h.n, 1);
  h = run("", 0, 0);
  assert_int_equal(h.n, NL);
  h = run("get", SW_SEARCH_ICASE, 0);
  assert_int_equal(h.n, 5);
  h = run("café", 0, 0);
  assert_int_equal(h.n, 1);
  h = run("b$", 0, 0); /* "a\nb" ends in b; "POST /b 500" does not */
  assert_int_equal(h.n, 1);
  assert_string_equal(h.lines[0], "a\nb");
}

static void filters_and_labels(void **state) {
  (void)state;
  struct sw_search_query q;
  char err[256];
  assert_int_equal(sw_search_query_init(&q, "", 0, err, sizeof err), 0);
  q.since = 102;
  q.until = 106;
  assert_int_equal(sw_search_query_stream(&q, "stderr"), 0);
  struct sw_buf raw;
  build(&raw, k_lines, NL);
  struct hits h = scan(&q, &raw);
  assert_int_equal(h.n, 2); /* ts 103 and 105 are stderr (odd index) within [102, 106) */
  assert_string_equal(h.lines[0], "multi\nline record\nGET inside");
  assert_string_equal(h.lines[1], "xGETx");
  /* a damaged chunk is an error, never a crash */
  struct sw_search_scratch s;
  assert_int_equal(sw_search_scratch_init(&s, &q), 0);
  for (size_t cut = 0; cut < raw.len; cut += 3) {
    struct hits x = {0};
    int rc = sw_search_chunk(&q, &s, raw.data, cut, on_hit, &x);
    assert_true(rc == SW_ECORRUPT || rc == 0);
  }
  sw_buf_free(&raw);
  sw_search_scratch_free(&s);

  assert_int_equal(sw_search_query_label(&q, "app=web", err, sizeof err), 0);
  assert_int_equal(sw_search_query_label(&q, "pod=~api-.*", err, sizeof err), 0);
  assert_int_equal(sw_search_query_label(&q, "ns!=kube-system", err, sizeof err), 0);
  assert_int_equal(sw_search_query_label(&q, "zone!~eu.*", err, sizeof err), 0);
  assert_true(chunk_labels_match(&q, "{\"app\":\"web\",\"pod\":\"api-1\",\"ns\":\"prod\"}"));
  assert_false(chunk_labels_match(&q, "{\"app\":\"web\",\"pod\":\"xapi-1\"}")); /* anchored */
  assert_false(chunk_labels_match(&q, "{\"app\":\"web\",\"pod\":\"api-1\",\"ns\":\"kube-system\"}"));
  assert_false(chunk_labels_match(&q, "{\"app\":\"web\",\"pod\":\"api-1\",\"zone\":\"eu-1\"}"));
  assert_false(chunk_labels_match(&q, "not json"));
  assert_int_equal(sw_search_query_label(&q, "novalue", err, sizeof err), SW_EINVAL);
  assert_int_equal(sw_search_query_label(&q, "=x", err, sizeof err), SW_EINVAL);
  assert_int_equal(sw_search_query_label(&q, "a=~(", err, sizeof err), SW_EINVAL);
  assert_non_null(strstr(err, "missing closing parenthesis"));
  assert_int_equal(sw_search_query_stream(&q, "stdin"), SW_EINVAL);
  sw_search_query_free(&q);
  assert_int_equal(sw_search_query_init(&q, "a(b", 0, err, sizeof err), SW_EINVAL);
  assert_non_null(strstr(err, "at offset 3"));
}

static void times(void **state) {
  (void)state;
  int64_t now = 2000000000000000000, t;
  assert_int_equal(sw_search_parse_time("1h", now, &t), 0);
  assert_true(t == now - 3600000000000LL);
  assert_int_equal(sw_search_parse_time("90s", now, &t), 0);
  assert_true(t == now - 90000000000LL);
  assert_int_equal(sw_search_parse_time("2026-11-23T15:33:52.5Z", now, &t), 0);
  assert_true(t == 1795448032500000000LL);
  assert_int_equal(sw_search_parse_time("yesterday", now, &t), SW_EINVAL);
  assert_int_equal(sw_search_parse_time("", now, &t), SW_EINVAL);
}

static size_t count_hits(const char *pattern, const struct sw_buf *raw, int *may) {
  struct sw_search_query q;
  char err[256];
  assert_int_equal(sw_search_query_init(&q, pattern, 0, err, sizeof err), 0);
  struct sw_buf g;
  sw_buf_init(&g, SIZE_MAX);
  assert_int_equal(sw_chunk_grams(raw->data, raw->len, &g), 0);
  assert_true(g.len >= 1024 && (g.len & (g.len - 1)) == 0);
  *may = sw_search_grams_match(&q, g.data, g.len);
  struct hits h = scan(&q, raw);
  sw_search_query_free(&q);
  sw_buf_free(&g);
  return h.n;
}

/* The trigram filter never rules out a chunk that holds a match, and rules out chunks that
 * lack a long required literal. */
static void trigram_filter(void **state) {
  (void)state;
  const char *words[] = {"GET", "POST", "timeout", "retry", "user", "session", "db", "query",
                         "commit", "café", "42", "/api/v1/items", "200", "500"};
  struct sw_chunk_builder cb;
  sw_chunk_builder_init(&cb, 1 << 20);
  unsigned seed = 7;
  char line[256];
  for (int r = 0; r < 400; r++) {
    size_t n = 0;
    for (int w = 0; w < 8; w++) {
      seed = seed * 1103515245u + 12345u;
      n += (size_t)snprintf(line + n, sizeof line - n, "%s ", words[(seed >> 16) % 14]);
    }
    assert_int_equal(sw_chunk_add(&cb, r, 0, 0, line, n - 1), 0);
  }
  struct sw_buf raw;
  sw_buf_init(&raw, SIZE_MAX);
  assert_int_equal(sw_chunk_finish(&cb, &raw), 0);
  sw_chunk_builder_free(&cb);
  const char *present[] = {"timeout retry", "GET /api/v1/items", "caf\u00e9?", "café", "commit [a-z]+",
                           "^POST", "db query$", "se+ssion", "x?user", "(?i)TIMEOUT", "GET|nothing",
                           "\\/api\\/v1", "ti.eout", "500 2"};
  const char *absent[] = {"connection refused by", "timeouts", "/api/v2/items", "cafe ", "qwerty uiop"};
  int may;
  for (size_t i = 0; i < sizeof present / sizeof present[0]; i++) {
    size_t n = count_hits(present[i], &raw, &may);
    if (n == 0) fail_msg("%s: no hits, the test data is wrong", present[i]);
    if (!may) fail_msg("%s: the filter ruled out a chunk with %zu hits", present[i], n);
  }
  int ruled_out = 0;
  for (size_t i = 0; i < sizeof absent / sizeof absent[0]; i++) {
    assert_int_equal(count_hits(absent[i], &raw, &may), 0);
    ruled_out += !may;
  }
  assert_true(ruled_out >= 4); /* a filter that never skips would pass the first half */
  /* small chunks carry no filter */
  struct sw_buf small, g;
  build(&small, k_lines, NL);
  sw_buf_init(&g, SIZE_MAX);
  assert_int_equal(sw_chunk_grams(small.data, small.len, &g), 0);
  assert_int_equal(g.len, 0);
  sw_buf_free(&small);
  sw_buf_free(&g);
  sw_buf_free(&raw);
}

/* A record the regex gives up on (PCRE2's match limit) is skipped and counted, the others are
 * still answered, on the whole-text path and record by record alike. */
static void match_limit_skips_the_record(void **state) {
  (void)state;
  char bad[64];
  memset(bad, 'a', 40);
  snprintf(bad + 40, sizeof bad - 40, "b");
  const char *const lines[] = {"aaaa", bad, "nothing", bad, "tail aaa"};
  struct sw_buf raw;
  build(&raw, lines, 5);
  for (int slow = 0; slow < 2; slow++) {
    struct sw_search_query q;
    char err[256];
    assert_int_equal(sw_search_query_init(&q, "(a+)+$", 0, err, sizeof err), 0);
    if (slow) {
      pcre2_code_free(q.re_text);
      q.re_text = NULL;
    }
    struct sw_search_scratch s;
    assert_int_equal(sw_search_scratch_init(&s, &q), 0);
    struct hits h = {0};
    assert_int_equal(sw_search_chunk(&q, &s, raw.data, raw.len, on_hit, &h), 0);
    assert_int_equal(h.n, 2);
    assert_string_equal(h.lines[0], "aaaa");
    assert_string_equal(h.lines[1], "tail aaa");
    assert_int_equal(s.limit_skipped, 2);
    sw_search_scratch_free(&s);
    sw_search_query_free(&q);
  }
  sw_buf_free(&raw);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(match_limit_skips_the_record),
      cmocka_unit_test(fast_path_equals_reference), cmocka_unit_test(per_record_semantics),
      cmocka_unit_test(filters_and_labels), cmocka_unit_test(times),
      cmocka_unit_test(trigram_filter)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
