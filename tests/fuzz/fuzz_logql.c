/* libFuzzer harness for the LogQL subset (search/logql_lex.c, logql_parse_log.c, logql_parse.c,
 * logql_eval.c): the query of /loki/api/v1/query_range and the tail, which anyone who reaches the
 * API writes. The input (a NUL-terminated copy) is parsed as a query; when it parses, its
 * pipeline runs over a few fixed entries and over the input itself as a line, with one scratch
 * and one label set reused as the scan reuses them. Invariants: a parse fails only with SW_EINVAL
 * and a message; a kept entry's line is readable and its labels serialise; a line the pipeline
 * keeps matches the scan pattern (which compiles as the scan compiles it); when the labels are
 * fixed, labels-once plus the line filters per line answer as the whole pipeline does. Label sets
 * from a chunk's JSON, durations and sample values are fed the same bytes. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <pcre2.h>

#include "parsers/regex.h"
#include "search/logql.h"

#define CHECK(c) ((c) ? (void)0 : abort())

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const k_lines[] = {
    "{\"level\":\"error\",\"n\":5,\"a\":{\"b\":\"c\",\"d\":[1,2]},\"t\":true,\"app\":\"y\",\"msg\":\"GET /a\"}",
    "level=warn n=3 msg=\"hi \\\"there\\\"\" d=1m30s size=10KB app=z",
    "GET /a 200 12ms 1.5KiB",
    "",
    "\xff\xfe caf\xc3\xa9 {\"x\":1} a=b",
};

/* The stream labels every entry starts with. */
static int stream_labels(struct sw_lq_labels *l) {
  sw_lq_labels_reset(l);
  return sw_lq_labels_set(l, "app", "x", 1) || sw_lq_labels_set(l, "a", "b", 1) ||
         sw_lq_labels_set(l, "level", "info", 4) || sw_lq_labels_set(l, "n", "7", 1);
}

static void touch(const char *p, size_t n) {
  volatile unsigned char sink = 0;
  for (size_t i = 0; i < n; i++) sink ^= (unsigned char)p[i];
  (void)sink;
}

/* One entry through the pipeline; line is a heap copy of exactly len bytes (ASan sees over-reads). */
static void run_entry(const struct sw_lq_query *q, struct sw_lq_scratch *s, struct sw_lq_labels *l, struct sw_buf *js,
                      void *scan_re, void *md, const char *line, size_t len) {
  CHECK(stream_labels(l) == 0);
  const char *ln = line;
  size_t n = len;
  int rc = sw_lq_eval(&q->log, s, l, &ln, &n);
  CHECK(rc == 0 || rc == 1);
  if (rc == 1) {
    touch(ln, n);
    js->len = 0;
    CHECK(sw_lq_labels_json(l, js) == 0);
    CHECK(js->len >= 2 && js->data[0] == '{' && js->data[js->len - 1] == '}');
    if (scan_re) CHECK(pcre2_match(scan_re, (PCRE2_SPTR)(len ? line : ""), len, 0, 0, md, NULL) >= 0);
  }
  if (sw_lq_labels_fixed(&q->log)) {
    CHECK(stream_labels(l) == 0);
    int k = sw_lq_eval_labels(&q->log, s, l);
    CHECK(k == 0 || k == 1);
    CHECK((k && sw_lq_line_pass(&q->log, s, line, len)) == rc);
  }
}

static void run_query(const char *text, const uint8_t *data, size_t size) {
  struct sw_lq_query q;
  char err[512];
  err[0] = 0;
  int rc = sw_lq_parse(text, &q, err, sizeof err);
  if (rc) {
    CHECK(rc == SW_EINVAL && err[0] && strlen(err) < sizeof err);
    CHECK(!q.metric && !q.log.sel && !q.log.st);
    return;
  }
  CHECK(q.has_log || q.metric);
  CHECK(!q.has_log || q.log.nsel > 0);

  char *pattern = sw_lq_scan_pattern(&q);
  void *scan_re = NULL, *md = NULL;
  if (pattern) {
    char msg[200];
    scan_re = sw_re_compile(pattern, 0, msg, sizeof msg, NULL);
    CHECK(scan_re != NULL); /* a pattern the scan cannot compile fails the query */
    md = pcre2_match_data_create_from_pattern(scan_re, NULL);
    CHECK(md != NULL);
  }

  if (q.has_log) {
    struct sw_lq_scratch s;
    CHECK(sw_lq_scratch_init(&s) == 0);
    struct sw_lq_labels l;
    sw_lq_labels_init(&l);
    struct sw_buf js;
    sw_buf_init(&js, SIZE_MAX);
    for (size_t i = 0; i <= sizeof k_lines / sizeof k_lines[0]; i++) {
      const char *src = i < sizeof k_lines / sizeof k_lines[0] ? k_lines[i] : (const char *)data;
      size_t len = i < sizeof k_lines / sizeof k_lines[0] ? strlen(k_lines[i]) : size;
      char *line = malloc(len ? len : 1);
      CHECK(line != NULL);
      if (len) memcpy(line, src, len);
      run_entry(&q, &s, &l, &js, scan_re, md, line, len);
      free(line);
    }
    sw_buf_free(&js);
    sw_lq_labels_free(&l);
    sw_lq_scratch_free(&s);
  }
  if (md) pcre2_match_data_free(md);
  if (scan_re) pcre2_code_free(scan_re);
  free(pattern);
  sw_lq_free(&q);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *text = malloc(size + 1);
  CHECK(text != NULL);
  memcpy(text, data, size);
  text[size] = 0;
  run_query(text, data, size);
  free(text);

  /* a chunk's label set as JSON */
  struct sw_lq_labels l;
  sw_lq_labels_init(&l);
  char *copy = malloc(size ? size : 1);
  CHECK(copy != NULL);
  if (size) memcpy(copy, data, size);
  int rc = sw_lq_labels_add_json(&l, copy, size);
  CHECK(rc == 0);
  struct sw_buf js;
  sw_buf_init(&js, SIZE_MAX);
  CHECK(sw_lq_labels_json(&l, &js) == 0);
  sw_buf_free(&js);
  sw_lq_labels_free(&l);

  /* a duration */
  int64_t ns = -1;
  if (sw_lq_parse_duration(copy, size, &ns) == 0) CHECK(ns >= 0);
  free(copy);

  /* a sample value: no exponent, and it reads back */
  if (size >= sizeof(double)) {
    double v;
    memcpy(&v, data, sizeof v);
    struct sw_buf b;
    sw_buf_init(&b, SIZE_MAX);
    CHECK(sw_lq_put_value(&b, v) == 0);
    CHECK(sw_buf_putc(&b, 0) == 0);
    if (isnan(v)) CHECK(!strcmp(b.data, "NaN"));
    else if (isinf(v)) CHECK(!strcmp(b.data, v > 0 ? "+Inf" : "-Inf"));
    else CHECK(!strchr(b.data, 'e') && strtod(b.data, NULL) == v && b.len - 1 <= 343);
    sw_buf_free(&b);
  }
  return 0;
}
