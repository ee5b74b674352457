/* LogQL subset (search/logql.h): the parser's AST and its errors, the scan pattern, one entry
 * through the pipeline (sw_lq_eval), label sets, sample values and durations. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parsers/regex.h"
#include "search/logql.h"

/* ---- helpers ---- */

static void parse_ok(const char *text, struct sw_lq_query *q) {
  char err[512] = "";
  int rc = sw_lq_parse(text, q, err, sizeof err);
  if (rc) fail_msg("query %s: rc %d: %s", text, rc, err);
}

/* Parses text expecting SW_EINVAL with an error containing `needle`; the query is left empty. */
static void parse_err(const char *text, const char *needle) {
  struct sw_lq_query q;
  char err[512] = "";
  int rc = sw_lq_parse(text, &q, err, sizeof err);
  if (rc != SW_EINVAL) {
    if (!rc) sw_lq_free(&q);
    fail_msg("query %s: rc %d, expected SW_EINVAL", text, rc);
  }
  if (!strstr(err, needle)) fail_msg("query %s: error \"%s\" lacks \"%s\"", text, err, needle);
  assert_null(q.metric);
  assert_null(q.log.sel);
  assert_null(q.log.st);
}

static void parse_err_prefix(const char *text, const char *prefix) {
  struct sw_lq_query q;
  char err[512] = "";
  int rc = sw_lq_parse(text, &q, err, sizeof err);
  if (rc != SW_EINVAL) {
    if (!rc) sw_lq_free(&q);
    fail_msg("query %s: rc %d, expected SW_EINVAL", text, rc);
  }
  if (strncmp(err, prefix, strlen(prefix))) fail_msg("query %s: error \"%s\" does not start with \"%s\"", text, err, prefix);
}

/* One entry through a log query. labels: name, value pairs ending with NULL. Returns sw_lq_eval's
 * result; *json gets the resulting label set (canonical), *out_line the resulting line. */
struct entry {
  int rc;
  char json[1024];
  char line[1024];
};

static struct entry eval_entry(const char *query, const char *const *labels, const char *line) {
  struct sw_lq_query q;
  parse_ok(query, &q);
  assert_null(q.metric);
  struct sw_lq_scratch s;
  assert_int_equal(sw_lq_scratch_init(&s), 0);
  struct sw_lq_labels l;
  sw_lq_labels_init(&l);
  for (size_t i = 0; labels && labels[i]; i += 2)
    assert_int_equal(sw_lq_labels_set(&l, labels[i], labels[i + 1], strlen(labels[i + 1])), 0);
  struct entry e = {0};
  const char *ln = line;
  size_t len = strlen(line);
  e.rc = sw_lq_eval(&q.log, &s, &l, &ln, &len);
  if (e.rc == 1) {
    snprintf(e.line, sizeof e.line, "%.*s", (int)len, ln);
    struct sw_buf b;
    sw_buf_init(&b, SIZE_MAX);
    assert_int_equal(sw_lq_labels_json(&l, &b), 0);
    snprintf(e.json, sizeof e.json, "%.*s", (int)b.len, b.data);
    sw_buf_free(&b);
  }
  sw_lq_labels_free(&l);
  sw_lq_scratch_free(&s);
  sw_lq_free(&q);
  return e;
}

static void expect_kept(const char *query, const char *const *labels, const char *line, const char *json,
                        const char *out_line) {
  struct entry e = eval_entry(query, labels, line);
  if (e.rc != 1) fail_msg("query %s on \"%s\": rc %d, expected kept", query, line, e.rc);
  if (json && strcmp(e.json, json)) fail_msg("query %s on \"%s\": labels %s, expected %s", query, line, e.json, json);
  if (out_line && strcmp(e.line, out_line))
    fail_msg("query %s on \"%s\": line \"%s\", expected \"%s\"", query, line, e.line, out_line);
}

static void expect_dropped(const char *query, const char *const *labels, const char *line) {
  struct entry e = eval_entry(query, labels, line);
  if (e.rc != 0) fail_msg("query %s on \"%s\": rc %d (labels %s), expected dropped", query, line, e.rc, e.json);
}

/* ---- parsing ---- */

static void parse_selector_and_line_filters(void **state) {
  (void)state;
  struct sw_lq_query q;
  parse_ok("{a=\"b\"}", &q);
  assert_null(q.metric);
  assert_int_equal(q.has_log, 1);
  assert_int_equal(q.log.nsel, 1);
  assert_string_equal(q.log.sel[0].key, "a");
  assert_string_equal(q.log.sel[0].value, "b");
  assert_int_equal(q.log.sel[0].op, SW_LABEL_EQ);
  assert_int_equal(q.log.nst, 0);
  sw_lq_free(&q);

  parse_ok("{a=\"b\", c=~\"d.*\"} |= \"x\" != \"y\" |~ \"z\" !~ \"w\"", &q);
  assert_int_equal(q.log.nsel, 2);
  assert_string_equal(q.log.sel[1].key, "c");
  assert_string_equal(q.log.sel[1].value, "d.*");
  assert_int_equal(q.log.sel[1].op, SW_LABEL_RE);
  assert_int_equal(q.log.nst, 4);
  static const enum sw_lq_lf_op ops[] = {SW_LQ_CONTAINS, SW_LQ_NOT_CONTAINS, SW_LQ_MATCH, SW_LQ_NOT_MATCH};
  static const char *const texts[] = {"x", "y", "z", "w"};
  for (size_t i = 0; i < 4; i++) {
    assert_int_equal(q.log.st[i].kind, SW_LQ_LINE_FILTER);
    assert_int_equal(q.log.st[i].op, ops[i]);
    assert_int_equal(q.log.st[i].nalt, 1);
    assert_string_equal(q.log.st[i].text[0], texts[i]);
    if (i < 2) assert_null(q.log.st[i].re[0]);
    else assert_non_null(q.log.st[i].re[0]);
  }
  sw_lq_free(&q);

  /* `or` alternatives; raw strings; escapes; comments; newlines */
  parse_ok("# leading comment\n{a=\"b\"} # after the selector\n  |= \"x\" or `y\\z` # tail\n  != \"\\t\\u00e9\"", &q);
  assert_int_equal(q.log.nst, 2);
  assert_int_equal(q.log.st[0].nalt, 2);
  assert_string_equal(q.log.st[0].text[0], "x");
  assert_string_equal(q.log.st[0].text[1], "y\\z");
  assert_string_equal(q.log.st[1].text[0], "\t\xc3\xa9");
  sw_lq_free(&q);
}

static void parse_label_filters(void **state) {
  (void)state;
  struct sw_lq_query q;
  parse_ok("{a=\"b\"} | json | level=\"error\" and n > 5 or (x != \"y\")", &q);
  assert_int_equal(q.log.nst, 2);
  assert_int_equal(q.log.st[0].kind, SW_LQ_JSON);
  assert_int_equal(q.log.st[1].kind, SW_LQ_LABEL_FILTER);
  const struct sw_lq_lexpr *e = q.log.st[1].lf;
  assert_int_equal(e->kind, SW_LQ_L_OR);
  assert_int_equal(e->l->kind, SW_LQ_L_AND);
  assert_int_equal(e->l->l->kind, SW_LQ_L_STR);
  assert_string_equal(e->l->l->m.key, "level");
  assert_string_equal(e->l->l->m.value, "error");
  assert_int_equal(e->l->l->m.op, SW_LABEL_EQ);
  assert_int_equal(e->l->r->kind, SW_LQ_L_NUM);
  assert_string_equal(e->l->r->name, "n");
  assert_int_equal(e->l->r->cmp, SW_LQ_GT);
  assert_true(e->l->r->num == 5);
  assert_int_equal(e->l->r->unit, 0);
  assert_int_equal(e->r->kind, SW_LQ_L_STR);
  assert_string_equal(e->r->m.key, "x");
  assert_int_equal(e->r->m.op, SW_LABEL_NE);
  sw_lq_free(&q);

  parse_ok("{a=\"b\"} | logfmt | duration > 1m30s | size <= 10KiB", &q);
  assert_int_equal(q.log.nst, 3);
  assert_int_equal(q.log.st[0].kind, SW_LQ_LOGFMT);
  e = q.log.st[1].lf;
  assert_int_equal(e->kind, SW_LQ_L_NUM);
  assert_string_equal(e->name, "duration");
  assert_int_equal(e->cmp, SW_LQ_GT);
  assert_int_equal(e->unit, 1);
  assert_true(e->num == 90);
  e = q.log.st[2].lf;
  assert_string_equal(e->name, "size");
  assert_int_equal(e->cmp, SW_LQ_LE);
  assert_int_equal(e->unit, 2);
  assert_true(e->num == 10240);
  sw_lq_free(&q);

  /* a stage may start with a parenthesis */
  parse_ok("{a=\"b\"} | logfmt | (x=\"1\" or y=\"2\") and z=\"3\"", &q);
  assert_int_equal(q.log.nst, 2);
  assert_int_equal(q.log.st[1].kind, SW_LQ_LABEL_FILTER);
  e = q.log.st[1].lf;
  assert_int_equal(e->kind, SW_LQ_L_AND);
  assert_int_equal(e->l->kind, SW_LQ_L_OR);
  assert_string_equal(e->l->r->m.key, "y");
  assert_string_equal(e->r->m.key, "z");
  sw_lq_free(&q);

  /* every comparison operator; `,` and juxtaposition are `and` */
  parse_ok("{a=\"b\"} | x >= 1, y < 2 z <= 3 | w == 4 | v != 5 | u =~ \"a.*\" | t !~ \"b\"", &q);
  assert_int_equal(q.log.nst, 5);
  e = q.log.st[0].lf;
  assert_int_equal(e->kind, SW_LQ_L_AND);
  assert_int_equal(e->l->kind, SW_LQ_L_AND);
  assert_int_equal(e->l->l->cmp, SW_LQ_GE);
  assert_int_equal(e->l->r->cmp, SW_LQ_LT);
  assert_int_equal(e->r->cmp, SW_LQ_LE);
  assert_int_equal(q.log.st[1].lf->cmp, SW_LQ_EQ);
  assert_int_equal(q.log.st[2].lf->cmp, SW_LQ_NE);
  assert_int_equal(q.log.st[2].lf->kind, SW_LQ_L_NUM);
  assert_int_equal(q.log.st[3].lf->m.op, SW_LABEL_RE);
  assert_int_equal(q.log.st[4].lf->m.op, SW_LABEL_NRE);
  sw_lq_free(&q);
}

static void parse_formats_and_drop_keep(void **state) {
  (void)state;
  struct sw_lq_query q;
  parse_ok("{a=\"b\"} | line_format \"{{.a}} {{ __line__ }}\"", &q);
  assert_int_equal(q.log.nst, 1);
  assert_int_equal(q.log.st[0].kind, SW_LQ_LINE_FORMAT);
  const struct sw_lq_tmpl *t = &q.log.st[0].tmpl;
  assert_int_equal(t->n, 3);
  assert_int_equal(t->parts[0].is_ref, 1);
  assert_string_equal(t->parts[0].text, "a");
  assert_int_equal(t->parts[1].is_ref, 0);
  assert_string_equal(t->parts[1].text, " ");
  assert_int_equal(t->parts[2].is_ref, 1);
  assert_string_equal(t->parts[2].text, "__line__");
  sw_lq_free(&q);

  parse_ok("{a=\"b\"} | label_format x=y, z=\"{{.a}}\"", &q);
  assert_int_equal(q.log.nst, 1);
  const struct sw_lq_stage *s = &q.log.st[0];
  assert_int_equal(s->kind, SW_LQ_LABEL_FORMAT);
  assert_int_equal(s->nitems, 2);
  assert_string_equal(s->items[0].name, "x");
  assert_int_equal(s->items[0].is_tmpl, 0);
  assert_string_equal(s->items[0].src, "y");
  assert_string_equal(s->items[1].name, "z");
  assert_int_equal(s->items[1].is_tmpl, 1);
  assert_int_equal(s->items[1].tmpl.n, 1);
  assert_int_equal(s->items[1].tmpl.parts[0].is_ref, 1);
  assert_string_equal(s->items[1].tmpl.parts[0].text, "a");
  sw_lq_free(&q);

  parse_ok("{a=\"b\"} | drop __error__, x=\"1\" | keep a", &q);
  assert_int_equal(q.log.nst, 2);
  s = &q.log.st[0];
  assert_int_equal(s->kind, SW_LQ_DROP);
  assert_int_equal(s->nitems, 2);
  assert_string_equal(s->items[0].name, "__error__");
  assert_int_equal(s->items[0].has_m, 0);
  assert_string_equal(s->items[1].name, "x");
  assert_int_equal(s->items[1].has_m, 1);
  assert_int_equal(s->items[1].m.op, SW_LABEL_EQ);
  assert_string_equal(s->items[1].m.value, "1");
  s = &q.log.st[1];
  assert_int_equal(s->kind, SW_LQ_KEEP);
  assert_int_equal(s->nitems, 1);
  assert_string_equal(s->items[0].name, "a");
  sw_lq_free(&q);

  parse_ok("{a=\"b\"} | regexp `(?P<m>\\w+) (?P<p>\\S+)`", &q);
  assert_int_equal(q.log.st[0].kind, SW_LQ_REGEXP);
  assert_non_null(q.log.st[0].re_regexp);
  sw_lq_free(&q);
}

static void parse_metrics(void **state) {
  (void)state;
  struct sw_lq_query q;
  /* what Grafana sends: no space before the range */
  parse_ok("sum by (level, detected_level) (count_over_time({a=\"b\"} | drop __error__[1m]))", &q);
  const struct sw_lq_metric *m = q.metric;
  assert_non_null(m);
  assert_int_equal(m->kind, SW_LQ_M_AGG);
  assert_int_equal(m->aop, SW_LQ_SUM);
  assert_int_equal(m->grouped, 1);
  assert_int_equal(m->without, 0);
  assert_int_equal(m->ngroup, 2);
  assert_string_equal(m->group[0], "level");
  assert_string_equal(m->group[1], "detected_level");
  assert_int_equal(m->a->kind, SW_LQ_M_RANGE);
  assert_int_equal(m->a->rop, SW_LQ_COUNT_OVER_TIME);
  assert_true(m->a->range_ns == 60000000000LL);
  assert_true(m->a->offset_ns == 0);
  assert_int_equal(q.has_log, 1);
  assert_int_equal(q.log.nst, 1);
  assert_int_equal(q.log.st[0].kind, SW_LQ_DROP);
  assert_string_equal(q.log.st[0].items[0].name, "__error__");
  sw_lq_free(&q);

  parse_ok("count_over_time({a=\"b\"}[5m] | json)", &q);
  assert_int_equal(q.metric->kind, SW_LQ_M_RANGE);
  assert_true(q.metric->range_ns == 300000000000LL);
  assert_int_equal(q.log.nst, 1);
  assert_int_equal(q.log.st[0].kind, SW_LQ_JSON);
  sw_lq_free(&q);

  parse_ok("count_over_time(({a=\"b\"} |= \"x\")[5m])", &q);
  assert_int_equal(q.metric->kind, SW_LQ_M_RANGE);
  assert_true(q.metric->range_ns == 300000000000LL);
  assert_int_equal(q.log.nst, 1);
  sw_lq_free(&q);

  parse_ok("topk(3, sum(rate({a=\"b\"}[1m])) by (c))", &q);
  m = q.metric;
  assert_int_equal(m->kind, SW_LQ_M_AGG);
  assert_int_equal(m->aop, SW_LQ_TOPK);
  assert_int_equal(m->k, 3);
  assert_int_equal(m->grouped, 0);
  assert_int_equal(m->a->kind, SW_LQ_M_AGG);
  assert_int_equal(m->a->aop, SW_LQ_SUM);
  assert_int_equal(m->a->grouped, 1);
  assert_int_equal(m->a->ngroup, 1);
  assert_string_equal(m->a->group[0], "c");
  assert_int_equal(m->a->a->kind, SW_LQ_M_RANGE);
  assert_int_equal(m->a->a->rop, SW_LQ_RATE);
  sw_lq_free(&q);

  parse_ok("vector(1)+vector(1)", &q);
  m = q.metric;
  assert_int_equal(q.has_log, 0);
  assert_int_equal(m->kind, SW_LQ_M_BIN);
  assert_int_equal(m->op, '+');
  assert_int_equal(m->a->kind, SW_LQ_M_VECTOR);
  assert_true(m->a->num == 1);
  assert_int_equal(m->b->kind, SW_LQ_M_VECTOR);
  sw_lq_free(&q);

  /* left-associative: ((sum / 60) * 2) */
  parse_ok("sum(count_over_time({a=\"b\"}[1m] offset 5m)) / 60 * 2", &q);
  m = q.metric;
  assert_int_equal(m->kind, SW_LQ_M_BIN);
  assert_int_equal(m->op, '*');
  assert_int_equal(m->b->kind, SW_LQ_M_NUMBER);
  assert_true(m->b->num == 2);
  assert_int_equal(m->a->kind, SW_LQ_M_BIN);
  assert_int_equal(m->a->op, '/');
  assert_int_equal(m->a->b->kind, SW_LQ_M_NUMBER);
  assert_true(m->a->b->num == 60);
  assert_int_equal(m->a->a->kind, SW_LQ_M_AGG);
  assert_int_equal(m->a->a->grouped, 0);
  const struct sw_lq_metric *r = m->a->a->a;
  assert_int_equal(r->kind, SW_LQ_M_RANGE);
  assert_true(r->range_ns == 60000000000LL);
  assert_true(r->offset_ns == 300000000000LL);
  sw_lq_free(&q);

  /* precedence: a + b * c; constants folded; without; bytes_rate */
  parse_ok("sum without (x) (bytes_rate({a=\"b\"}[30s])) + 2 * 3 - 1", &q);
  m = q.metric;
  assert_int_equal(m->kind, SW_LQ_M_BIN);
  assert_int_equal(m->op, '-');
  assert_int_equal(m->a->kind, SW_LQ_M_BIN);
  assert_int_equal(m->a->op, '+');
  assert_int_equal(m->a->b->kind, SW_LQ_M_NUMBER);
  assert_true(m->a->b->num == 6);
  assert_int_equal(m->a->a->without, 1);
  assert_int_equal(m->a->a->a->rop, SW_LQ_BYTES_RATE);
  assert_true(m->a->a->a->range_ns == 30000000000LL);
  sw_lq_free(&q);

  parse_ok("# per level\nsum by (level) (\n  bytes_over_time({a=\"b\"} |= \"x\" [1h]) # the range\n)", &q);
  assert_int_equal(q.metric->a->rop, SW_LQ_BYTES_OVER_TIME);
  assert_true(q.metric->a->range_ns == 3600000000000LL);
  sw_lq_free(&q);
}

static void parse_errors(void **state) {
  (void)state;
  parse_err_prefix("{", "parse error at line 1, col ");
  parse_err_prefix("{a=\"b\"", "parse error at line 1, col ");
  parse_err_prefix("", "parse error at line 1, col ");
  parse_err_prefix("{a=\"b\"} |", "parse error at line 1, col ");
  parse_err_prefix("{a=\"b\"} | json |= ", "parse error at line 1, col ");
  parse_err_prefix("{a=\"b\"} extra", "parse error at line 1, col ");
  parse_err_prefix("sum(count_over_time({a=\"b\"}[1m])", "parse error at line 1, col ");
  parse_err_prefix("count_over_time({a=\"b\"})", "parse error at line 1, col ");
  parse_err("{}", "at least one");
  parse_err("{a=~\".*\"}", "at least one");
  parse_err("{a!=\"x\"}", "at least one");
  parse_err("{a=\"\"}", "at least one");

  const char *unsupported[] = {
      "sum_over_time({a=\"b\"} | unwrap x [1m])",
      "{a=\"b\"} | unwrap x",
      "{a=\"b\"} | pattern \"<_> <x>\"",
      "{a=\"b\"} | unpack",
      "count_over_time({a=\"b\"}[1m]) > 1",
      "count_over_time({a=\"b\"}[1m]) == bool 1",
      "1 + 1",
      "3",
      "{a=\"b\"} | line_format \"{{ printf \\\"%s\\\" .a }}\"",
      "{a=\"b\"} | line_format `{{ .a | upper }}`",
      "{a=\"b\"} | json x=\"y\"",
      "{a=\"b\"} | logfmt --strict",
      "{a=\"b\"} |= ip(\"1.2.3.4\")",
      "count_over_time({a=\"b\"}[1m]) / count_over_time({c=\"d\"}[1m])",
      "rate({a=\"b\"}[1m])[5m:1m]",
      "quantile_over_time(0.9, {a=\"b\"} | unwrap x [1m])",
  };
  for (size_t i = 0; i < sizeof unsupported / sizeof unsupported[0]; i++)
    parse_err(unsupported[i], "is not supported by spillway");

  parse_err("{a=\"b\"} |~ \"(\"", "invalid regex");
  parse_err("{a=\"b\"} | regexp \"(?P<x>\"", "invalid regex");
  parse_err_prefix("{a=~\"(\"}", "parse error at line 1, col ");
  parse_err("count_over_time({a=\"b\"}[5x])", "invalid duration or size \"5x\"");
  parse_err_prefix("count_over_time({a=\"b\"}[5])", "parse error at line 1, col ");
  parse_err("count_over_time({a=\"b\"}[0s])", "the range must be positive");
  parse_err("{a=\"b\"} | regexp \"nonamed\"", "at least one named capture");
  parse_err("{a=\"b\"} | label_format x=y, x=z", "label x specified more than once");
  parse_err("{a=\"b\"} | label_format x=y, x=\"{{.a}}\"", "specified more than once");
  parse_err("{a=\"b\"} |= \"\\x00\"", "NUL");
  parse_err("{a=\"b\"} |= \"a\\000b\"", "NUL");
  parse_err("{a=\"b\"} |= \"\\u0000\"", "NUL");
  parse_err("{a=\"\\x00\"}", "NUL");
  parse_err("{a=\"b\"} |= \"\\q\"", "invalid syntax");
  parse_err("{a=\"b\"} |= \"\\ud800\"", "invalid syntax");
  parse_err("{a=\"b\"} |= \"unterminated", "literal not terminated");
  parse_err("{a=\"b\"} |= \"line\nbreak\"", "literal not terminated");
  parse_err("topk(0, sum(rate({a=\"b\"}[1m])))", "positive integer");
  parse_err("topk(1.5, sum(rate({a=\"b\"}[1m])))", "positive integer");
  parse_err("sum({a=\"b\"})", "metric expression");
  parse_err("{a=\"b\"} | line_format \"{{.a\"", "unclosed action");
  /* the line and column of the error */
  parse_err("{a=\"b\"}\n  |= \"x\"\n| regexp \"nonamed\"", "parse error at line 3, col 10: at least one named capture");
  parse_err("sum(\n  count_over_time(\n    {a=\"b\"}[1m]\n  )\n", "parse error at line 5, col 1:");
  parse_err("{a=\"b\"} # comment\n# more\n  |= @", "parse error at line 3, col 6: syntax error: unexpected character '@'");
  /* nesting is bounded (a deep one would exhaust the stack) */
  char deep[20000];
  size_t n = 0;
  for (; n < 9000; n++) deep[n] = '(';
  snprintf(deep + n, sizeof deep - n, "vector(1)");
  parse_err(deep, "nested too deeply");
  n = 0;
  n += (size_t)snprintf(deep, sizeof deep, "{a=\"b\"} | ");
  for (size_t i = 0; i < 9000; i++) deep[n++] = '(';
  snprintf(deep + n, sizeof deep - n, "x=\"1\"");
  parse_err(deep, "nested too deeply");
  for (n = 0; n < 9000; n++) deep[n] = '-';
  snprintf(deep + n, sizeof deep - n, "vector(1)");
  parse_err(deep, "nested too deeply");
  /* but a reasonable depth parses */
  struct sw_lq_query q;
  n = 0;
  for (; n < 50; n++) deep[n] = '(';
  n += (size_t)snprintf(deep + n, sizeof deep - n, "vector(1)");
  for (size_t i = 0; i < 50; i++) deep[n++] = ')';
  deep[n] = 0;
  parse_ok(deep, &q);
  assert_int_equal(q.metric->kind, SW_LQ_M_VECTOR);
  sw_lq_free(&q);
  /* an error message fits the caller's buffer */
  char small[16];
  assert_int_equal(sw_lq_parse("{", &q, small, sizeof small), SW_EINVAL);
  assert_true(strlen(small) < sizeof small);
}

/* ---- the scan pattern ---- */

static char *scan_pattern(const char *text) {
  struct sw_lq_query q;
  parse_ok(text, &q);
  char *p = sw_lq_scan_pattern(&q);
  sw_lq_free(&q);
  return p;
}

/* As the scan compiles it (search/query.c: sw_re_compile, UTF). */
static int re_matches(const char *pattern, const char *subject) {
  char msg[200];
  pcre2_code *re = sw_re_compile(pattern, 0, msg, sizeof msg, NULL);
  if (!re) fail_msg("scan pattern \"%s\": %s", pattern, msg);
  pcre2_match_data *md = pcre2_match_data_create_from_pattern(re, NULL);
  int rc = pcre2_match(re, (PCRE2_SPTR)subject, strlen(subject), 0, 0, md, NULL);
  pcre2_match_data_free(md);
  pcre2_code_free(re);
  return rc >= 0;
}

static void scan_patterns(void **state) {
  (void)state;
  char *p = scan_pattern("{a=\"b\"} |= \"first\" | line_format \"{{.a}}\" |= \"after\"");
  assert_string_equal(p, "first");
  free(p);
  p = scan_pattern("{a=\"b\"} != \"no\" | json |= \"later\"");
  assert_string_equal(p, "later");
  free(p);
  assert_null(scan_pattern("{a=\"b\"} | line_format \"{{.a}}\" |= \"after\""));
  assert_null(scan_pattern("{a=\"b\"} != \"x\" !~ \"y\""));
  assert_null(scan_pattern("{a=\"b\"}"));
  assert_null(scan_pattern("{a=\"b\"} |= \"x\" or \"y\""));
  p = scan_pattern("{a=\"b\"} |~ \"err(or)?\\\\d\"");
  assert_string_equal(p, "err(or)?\\d");
  free(p);
  p = scan_pattern("{a=\"b\"} |= \"a.b(c\"");
  assert_string_equal(p, "a\\.b\\(c");
  assert_true(re_matches(p, "xx a.b(c yy"));
  assert_false(re_matches(p, "aXb(c"));
  assert_false(re_matches(p, "a.bc"));
  free(p);
  /* every special character is literal */
  const char *lit = "^$.*+?()[]{}|\\/-#&~ \"'%@!=<>,;:";
  char q[200];
  char esc[100], *e = esc;
  for (const char *c = lit; *c; c++) {
    if (*c == '"' || *c == '\\') *e++ = '\\';
    *e++ = *c;
  }
  *e = 0;
  snprintf(q, sizeof q, "{a=\"b\"} |= \"%s\"", esc);
  p = scan_pattern(q);
  assert_non_null(p);
  char subject[200];
  snprintf(subject, sizeof subject, "pre%spost", lit);
  assert_true(re_matches(p, subject));
  assert_false(re_matches(p, "pre^$.*+?()[]{}|\\/-#&~ \"'%@!=<>,;post"));
  free(p);
  /* a literal that is not UTF-8 cannot be a UTF regex: the next filter, or none */
  assert_null(scan_pattern("{a=\"b\"} |= \"\\xff\""));
  assert_null(scan_pattern("{a=\"b\"} |= \"a\\xc3\""));
  assert_null(scan_pattern("{a=\"b\"} |= \"\\xed\\xa0\\x80\"")); /* a surrogate */
  p = scan_pattern("{a=\"b\"} |= \"\\xff\" |= \"ok\"");
  assert_string_equal(p, "ok");
  free(p);
  p = scan_pattern("{a=\"b\"} |= \"caf\\u00e9 \\U0001F600\"");
  assert_string_equal(p, "caf\xc3\xa9 \xf0\x9f\x98\x80");
  assert_true(re_matches(p, "un caf\xc3\xa9 \xf0\x9f\x98\x80!"));
  assert_true(re_matches(p, "\xff caf\xc3\xa9 \xf0\x9f\x98\x80")); /* invalid bytes elsewhere in the line */
  free(p);
  /* a metric query's log selection */
  p = scan_pattern("sum(count_over_time({a=\"b\"} |= \"x\" [1m]))");
  assert_string_equal(p, "x");
  free(p);
}

/* ---- the pipeline ---- */

static void eval_selector(void **state) {
  (void)state;
  const char *const ab[] = {"a", "b", NULL};
  const char *const ac[] = {"a", "c", NULL};
  expect_kept("{a=\"b\"}", ab, "line", "{\"a\":\"b\"}", "line");
  expect_dropped("{a=\"b\"}", ac, "line");
  expect_dropped("{a=\"b\"}", NULL, "line");
  expect_kept("{a=~\"b|c\"}", ac, "line", NULL, NULL);
  const char *const abx[] = {"a", "b", "x", "y", NULL};
  expect_dropped("{a=\"b\", x!=\"y\"}", abx, "line");
  expect_kept("{a=\"b\", z!=\"y\"}", abx, "line", NULL, NULL);
  expect_dropped("{a=\"b\", x!~\"y.*\"}", abx, "line");
}

static void eval_line_filters(void **state) {
  (void)state;
  const char *const ab[] = {"a", "b", NULL};
  expect_kept("{a=\"b\"} |= \"GET\"", ab, "a GET b", NULL, "a GET b");
  expect_dropped("{a=\"b\"} |= \"GET\"", ab, "a get b");
  expect_dropped("{a=\"b\"} != \"GET\"", ab, "a GET b");
  expect_kept("{a=\"b\"} |~ \"G.T\"", ab, "GxT", NULL, NULL);
  expect_dropped("{a=\"b\"} !~ \"G.T\"", ab, "GxT");
  expect_kept("{a=\"b\"} |~ \"(?i)get\"", ab, "GET", NULL, NULL);
  expect_kept("{a=\"b\"} |= \"\"", ab, "", NULL, "");
  /* `or`: any alternative; for a negative filter none may match */
  expect_kept("{a=\"b\"} |= \"foo\" or \"bar\"", ab, "xbar", NULL, NULL);
  expect_kept("{a=\"b\"} |= \"foo\" or \"bar\"", ab, "foox", NULL, NULL);
  expect_dropped("{a=\"b\"} |= \"foo\" or \"bar\"", ab, "baz");
  expect_dropped("{a=\"b\"} != \"foo\" or \"bar\"", ab, "xbar");
  expect_kept("{a=\"b\"} != \"foo\" or \"bar\"", ab, "baz", NULL, NULL);
  expect_kept("{a=\"b\"} |~ \"^x\" or \"y$\"", ab, "ay", NULL, NULL);
  /* filters chain */
  expect_dropped("{a=\"b\"} |= \"a\" |= \"b\"", ab, "a only");
  expect_kept("{a=\"b\"} |= \"a\" |= \"b\"", ab, "a and b", NULL, NULL);
  /* invalid UTF-8 in the line does not break a regex filter */
  expect_kept("{a=\"b\"} |~ \"ok\"", ab, "\xff\xfe ok", NULL, NULL);
}

static void eval_json(void **state) {
  (void)state;
  const char *const app[] = {"app", "x", NULL};
  expect_kept("{app=\"x\"} | json", app, "{\"a\":{\"b.c\":1,\"d\":\"x\"},\"arr\":[1],\"t\":true,\"n\":null}",
              "{\"a_b_c\":\"1\",\"a_d\":\"x\",\"app\":\"x\",\"t\":\"true\"}",
              "{\"a\":{\"b.c\":1,\"d\":\"x\"},\"arr\":[1],\"t\":true,\"n\":null}");
  /* a stream label clash gets _extracted */
  const char *const lv[] = {"app", "x", "level", "info", NULL};
  expect_kept("{app=\"x\"} | json", lv, "{\"level\":\"error\",\"f\":false,\"num\":0.25,\"big\":1e21}",
              "{\"app\":\"x\",\"big\":\"1e21\",\"f\":\"false\",\"level\":\"info\","
              "\"level_extracted\":\"error\",\"num\":\"0.25\"}",
              NULL);
  /* names made valid: invalid bytes to _, a leading digit gets _ */
  expect_kept("{app=\"x\"} | json", app, "{\"1x\":\"a\",\"a-b c\":\"v\",\"\\u00e9\":\"e\"}",
              "{\"_1x\":\"a\",\"__\":\"e\",\"a_b_c\":\"v\",\"app\":\"x\"}", NULL);
  /* invalid JSON: kept with __error__, labels untouched, line unchanged */
  expect_kept("{app=\"x\"} | json", app, "not json", "{\"__error__\":\"JSONParserErr\",\"app\":\"x\"}", "not json");
  expect_kept("{app=\"x\"} | json", app, "[1,2]", "{\"__error__\":\"JSONParserErr\",\"app\":\"x\"}", NULL);
  expect_kept("{app=\"x\"} | json", app, "{\"a\":", "{\"__error__\":\"JSONParserErr\",\"app\":\"x\"}", NULL);
  expect_kept("{app=\"x\"} | json", app, "", "{\"__error__\":\"JSONParserErr\",\"app\":\"x\"}", NULL);
  /* __error__ filters */
  expect_dropped("{app=\"x\"} | json | __error__=\"\"", app, "not json");
  expect_kept("{app=\"x\"} | json | __error__=\"\"", app, "{\"k\":\"v\"}", "{\"app\":\"x\",\"k\":\"v\"}", NULL);
  expect_kept("{app=\"x\"} | json | drop __error__", app, "oops", "{\"app\":\"x\"}", NULL);
  /* numbers as written, as Loki keeps them */
  expect_kept("{app=\"x\"} | json", app, "{\"h\":1e70,\"p\":1.50,\"m\":-0}",
              "{\"app\":\"x\",\"h\":\"1e70\",\"m\":\"-0\",\"p\":\"1.50\"}", NULL);
}

static void eval_logfmt_regexp(void **state) {
  (void)state;
  const char *const app[] = {"app", "x", NULL};
  expect_kept("{app=\"x\"} | logfmt", app,
              "level=info msg=\"hello \\\"world\\\"\\n\" path=/a empty= bare tab=\"a\\tb\" 9lives=yes",
              "{\"_9lives\":\"yes\",\"app\":\"x\",\"level\":\"info\",\"msg\":\"hello \\\"world\\\"\\n\","
              "\"path\":\"/a\",\"tab\":\"a\\tb\"}",
              NULL);
  const char *const lv[] = {"app", "x", "level", "warn", NULL};
  expect_kept("{app=\"x\"} | logfmt", lv, "level=info level=debug",
              "{\"app\":\"x\",\"level\":\"warn\",\"level_extracted\":\"info\"}", NULL);
  expect_kept("{app=\"x\"} | logfmt", app, "\"stray quote\" a=\"unterminated", NULL, NULL);
  expect_kept("{app=\"x\"} | regexp `(?P<method>\\w+) (?P<path>\\S+)(?: (?P<status>\\d+))?`", app, "GET /a",
              "{\"app\":\"x\",\"method\":\"GET\",\"path\":\"/a\"}", "GET /a");
  expect_kept("{app=\"x\"} | regexp `(?P<method>\\w+) (?P<path>\\S+)(?: (?P<status>\\d+))?`", app, "GET /a 200",
              "{\"app\":\"x\",\"method\":\"GET\",\"path\":\"/a\",\"status\":\"200\"}", NULL);
  /* no match: no labels, the entry is kept */
  expect_kept("{app=\"x\"} | regexp `(?P<n>\\d+)`", app, "none", "{\"app\":\"x\"}", NULL);
  expect_kept("{app=\"x\"} | regexp `(?P<app>\\w+)`", app, "word", "{\"app\":\"x\",\"app_extracted\":\"word\"}", NULL);
}

static void eval_label_filters(void **state) {
  (void)state;
  const char *const app[] = {"app", "x", NULL};
  /* numbers */
  expect_kept("{app=\"x\"} | logfmt | n > 5", app, "n=10", "{\"app\":\"x\",\"n\":\"10\"}", NULL);
  expect_dropped("{app=\"x\"} | logfmt | n > 5", app, "n=3");
  expect_dropped("{app=\"x\"} | logfmt | n > 5", app, "m=10");
  expect_kept("{app=\"x\"} | logfmt | n >= 5 and n <= 5 and n == 5", app, "n=5.0", NULL, NULL);
  expect_dropped("{app=\"x\"} | logfmt | n != 5", app, "n=5");
  /* negative bounds */
  expect_kept("{app=\"x\"} | logfmt | n > -1", app, "n=0", NULL, NULL);
  expect_dropped("{app=\"x\"} | logfmt | n > -1", app, "n=-2");
  expect_kept("{app=\"x\"} | logfmt | n <= -1.5", app, "n=-2", NULL, NULL);
  /* not a number: kept, with __error__ */
  expect_kept("{app=\"x\"} | logfmt | n > 5", app, "n=abc", "{\"__error__\":\"LabelFilterErr\",\"app\":\"x\",\"n\":\"abc\"}",
              NULL);
  expect_kept("{app=\"x\"} | logfmt | n > 5 | __error__=\"LabelFilterErr\"", app, "n=5x", NULL, NULL);
  /* an entry with an error already passes numeric filters */
  expect_kept("{app=\"x\"} | json | n > 5", app, "n=1", "{\"__error__\":\"JSONParserErr\",\"app\":\"x\"}", NULL);
  /* durations */
  expect_kept("{app=\"x\"} | logfmt | d > 1m30s", app, "d=2m", NULL, NULL);
  expect_kept("{app=\"x\"} | logfmt | d > 1m30s", app, "d=1m31s", NULL, NULL);
  expect_dropped("{app=\"x\"} | logfmt | d > 1m30s", app, "d=80s");
  expect_dropped("{app=\"x\"} | logfmt | d > 1m30s", app, "d=90000ms");
  expect_kept("{app=\"x\"} | logfmt | d >= 250ms", app, "d=0.25s", NULL, NULL);
  expect_kept("{app=\"x\"} | logfmt | d > 1s", app, "d=1", "{\"__error__\":\"LabelFilterErr\",\"app\":\"x\",\"d\":\"1\"}",
              NULL);
  /* sizes */
  expect_kept("{app=\"x\"} | logfmt | size <= 10KiB", app, "size=10KB", NULL, NULL);
  expect_kept("{app=\"x\"} | logfmt | size <= 10KiB", app, "size=10240b", NULL, NULL);
  expect_dropped("{app=\"x\"} | logfmt | size <= 10KiB", app, "size=11KiB");
  expect_dropped("{app=\"x\"} | logfmt | size > 1MB", app, "size=999kb");
  expect_kept("{app=\"x\"} | logfmt | size > 1MB", app, "size=1.5MB", NULL, NULL);
  /* strings, and/or, parentheses; a missing label is "" */
  const char *q = "{app=\"x\"} | logfmt | level=\"error\" and n > 5 or (x != \"y\")";
  expect_kept(q, app, "level=error n=6 x=y", NULL, NULL);
  expect_dropped(q, app, "level=error n=4 x=y");
  expect_kept(q, app, "level=info n=4 x=z", NULL, NULL);
  expect_kept(q, app, "level=info", NULL, NULL); /* x missing: "" != "y" */
  expect_dropped(q, app, "x=y");
  q = "{app=\"x\"} | logfmt | (x=\"1\" or y=\"2\") and z=\"3\"";
  expect_kept(q, app, "y=2 z=3", NULL, NULL);
  expect_dropped(q, app, "x=1 y=2 z=4");
  expect_dropped(q, app, "x=2 z=3");
  expect_kept("{app=\"x\"} | logfmt | level=~\"err.*\"", app, "level=error", NULL, NULL);
  expect_dropped("{app=\"x\"} | logfmt | level=~\"err\"", app, "level=error"); /* anchored */
  expect_dropped("{app=\"x\"} | logfmt | level!~\"e.*\"", app, "level=error");
  expect_kept("{app=\"x\"} | logfmt | level=\"\"", app, "other=1", NULL, NULL);
}

static void eval_formats_drop_keep(void **state) {
  (void)state;
  const char *const app[] = {"app", "x", NULL};
  expect_kept("{app=\"x\"} | logfmt | line_format \"{{.level}}: {{__line__}} [{{.missing}}]\"", app, "level=info",
              NULL, "info: level=info []");
  /* line filters after line_format see the new line; two line_formats chain */
  expect_kept("{app=\"x\"} | logfmt | line_format \"L={{.level}}\" |= \"L=info\" | line_format \"<{{ __line__ }}>\"", app,
              "level=info", NULL, "<L=info>");
  expect_dropped("{app=\"x\"} | logfmt | line_format \"{{.level}}\" |= \"level\"", app, "level=info");
  /* a parser after line_format reads the new line */
  expect_kept("{app=\"x\"} | line_format \"k=v\" | logfmt", app, "whatever", "{\"app\":\"x\",\"k\":\"v\"}", "k=v");
  /* label_format: a rename moves the label, a template makes one */
  expect_kept("{app=\"x\"} | logfmt | label_format lvl=level", app, "level=info",
              "{\"app\":\"x\",\"lvl\":\"info\"}", NULL);
  expect_kept("{app=\"x\"} | logfmt | label_format both=\"{{.a}}-{{.b}}\", a=b", app, "a=1 b=2",
              "{\"a\":\"2\",\"app\":\"x\",\"both\":\"1-2\"}", NULL);
  expect_kept("{app=\"x\"} | logfmt | label_format a=a", app, "a=1", "{\"a\":\"1\",\"app\":\"x\"}", NULL);
  expect_kept("{app=\"x\"} | label_format l=\"{{__line__}}!\"", app, "text", "{\"app\":\"x\",\"l\":\"text!\"}", "text");
  /* drop: names, or names with a matcher */
  const char *const abc[] = {"app", "x", "a", "1", "b", "2", "c", "3", NULL};
  expect_kept("{app=\"x\"} | drop a, b=\"2\", c=\"9\"", abc, "l", "{\"app\":\"x\",\"c\":\"3\"}", NULL);
  expect_kept("{app=\"x\"} | drop a, b=~\"[0-9]\"", abc, "l", "{\"app\":\"x\",\"c\":\"3\"}", NULL);
  /* keep: only the listed ones, and __error__ */
  expect_kept("{app=\"x\"} | keep a, c", abc, "l", "{\"a\":\"1\",\"c\":\"3\"}", NULL);
  expect_kept("{app=\"x\"} | keep a, c=\"9\"", abc, "l", "{\"a\":\"1\"}", NULL);
  expect_kept("{app=\"x\"} | json | keep a", abc, "not json", "{\"__error__\":\"JSONParserErr\",\"a\":\"1\"}", NULL);
  expect_kept("{app=\"x\"} | json | drop __error__ | keep a", abc, "not json", "{\"a\":\"1\"}", NULL);
}

/* The pipeline on many entries with one scratch and one label set: nothing leaks between them. */
static void eval_reuse(void **state) {
  (void)state;
  struct sw_lq_query q;
  parse_ok("{app=\"x\"} | json | line_format \"{{.k}}\" | label_format m=\"{{__line__}}\"", &q);
  struct sw_lq_scratch s;
  assert_int_equal(sw_lq_scratch_init(&s), 0);
  struct sw_lq_labels l;
  sw_lq_labels_init(&l);
  for (int i = 0; i < 200; i++) {
    sw_lq_labels_reset(&l);
    assert_int_equal(sw_lq_labels_set(&l, "app", "x", 1), 0);
    char line[64];
    if (i % 3 == 0) snprintf(line, sizeof line, "broken %d", i);
    else snprintf(line, sizeof line, "{\"k\":\"v%d\"}", i);
    const char *ln = line;
    size_t len = strlen(line);
    assert_int_equal(sw_lq_eval(&q.log, &s, &l, &ln, &len), 1);
    size_t n = 0;
    const char *m = sw_lq_labels_get(&l, "m", &n);
    if (i % 3 == 0) {
      assert_int_equal(len, 0);
      assert_null(m);
      assert_non_null(sw_lq_labels_get(&l, "__error__", NULL));
    } else {
      char want[16];
      snprintf(want, sizeof want, "v%d", i);
      assert_int_equal(len, strlen(want));
      assert_memory_equal(ln, want, len);
      assert_int_equal(n, strlen(want));
      assert_memory_equal(m, want, n);
      assert_null(sw_lq_labels_get(&l, "__error__", NULL));
    }
  }
  sw_lq_labels_free(&l);
  sw_lq_scratch_free(&s);
  sw_lq_free(&q);
}

/* sw_lq_labels_fixed, then sw_lq_eval_labels once and sw_lq_line_pass per line: the same answers
 * (and labels) as sw_lq_eval on each entry. */
static void eval_split(void **state) {
  (void)state;
  struct sw_lq_query q;
  const char *not_fixed[] = {"{a=\"b\"} | json", "{a=\"b\"} | logfmt", "{a=\"b\"} | regexp `(?P<x>.)`",
                             "{a=\"b\"} | line_format \"x\"", "{a=\"b\"} | label_format x=a"};
  for (size_t i = 0; i < sizeof not_fixed / sizeof not_fixed[0]; i++) {
    parse_ok(not_fixed[i], &q);
    assert_false(sw_lq_labels_fixed(&q.log));
    sw_lq_free(&q);
  }
  const char *fixed[] = {
      "{a=\"b\"}",
      "{a=\"b\"} |= \"GET\" != \"500\"",
      "{a=\"b\"} |~ \"G.T\" | c=\"d\"",
      "{a=\"b\"} |= \"GET\" | c!=\"d\" | drop c",
      "{a=\"b\"} | n > 3 |= \"x\" | keep a",
      "{a=\"b\"} | n > 3 or c=\"d\" | drop __error__",
  };
  const char *const sets[][7] = {
      {"a", "b", "c", "d", "n", "5", NULL},
      {"a", "b", "c", "e", "n", "2", NULL},
      {"a", "b", "n", "zz", NULL},
      {"a", "x", NULL},
  };
  const char *lines[] = {"GET /x 200", "POST /x 500", "GET /y 500", "", "x"};
  struct sw_lq_scratch s;
  assert_int_equal(sw_lq_scratch_init(&s), 0);
  struct sw_lq_labels l1, l2;
  sw_lq_labels_init(&l1);
  sw_lq_labels_init(&l2);
  struct sw_buf j1, j2;
  sw_buf_init(&j1, SIZE_MAX);
  sw_buf_init(&j2, SIZE_MAX);
  for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++) {
    parse_ok(fixed[i], &q);
    assert_true(sw_lq_labels_fixed(&q.log));
    for (size_t k = 0; k < sizeof sets / sizeof sets[0]; k++) {
      sw_lq_labels_reset(&l2);
      for (size_t m = 0; sets[k][m]; m += 2)
        assert_int_equal(sw_lq_labels_set(&l2, sets[k][m], sets[k][m + 1], strlen(sets[k][m + 1])), 0);
      int kept = sw_lq_eval_labels(&q.log, &s, &l2);
      assert_true(kept == 0 || kept == 1);
      j2.len = 0;
      assert_int_equal(sw_lq_labels_json(&l2, &j2), 0);
      for (size_t n = 0; n < sizeof lines / sizeof lines[0]; n++) {
        sw_lq_labels_reset(&l1);
        for (size_t m = 0; sets[k][m]; m += 2)
          assert_int_equal(sw_lq_labels_set(&l1, sets[k][m], sets[k][m + 1], strlen(sets[k][m + 1])), 0);
        const char *ln = lines[n];
        size_t len = strlen(ln);
        int whole = sw_lq_eval(&q.log, &s, &l1, &ln, &len);
        int split = kept && sw_lq_line_pass(&q.log, &s, lines[n], strlen(lines[n]));
        if (whole != split) fail_msg("%s, set %zu, line \"%s\": eval %d, split %d", fixed[i], k, lines[n], whole, split);
        if (whole == 1) {
          assert_ptr_equal(ln, lines[n]);
          j1.len = 0;
          assert_int_equal(sw_lq_labels_json(&l1, &j1), 0);
          assert_int_equal(j1.len, j2.len);
          assert_memory_equal(j1.data, j2.data, j1.len);
        }
      }
    }
    sw_lq_free(&q);
  }
  sw_buf_free(&j1);
  sw_buf_free(&j2);
  sw_lq_labels_free(&l1);
  sw_lq_labels_free(&l2);
  sw_lq_scratch_free(&s);
}

/* ---- label sets, values, durations ---- */

static void labels(void **state) {
  (void)state;
  struct sw_lq_labels l;
  sw_lq_labels_init(&l);
  assert_int_equal(sw_lq_labels_set(&l, "zeta", "z", 1), 0);
  assert_int_equal(sw_lq_labels_set(&l, "alpha", "a\"b\\c\nd\x01", 8), 0);
  assert_int_equal(sw_lq_labels_set(&l, "empty", "", 0), 0);
  assert_int_equal(sw_lq_labels_set(&l, "mid", "old", 3), 0);
  assert_int_equal(sw_lq_labels_set(&l, "mid", "new", 3), 0);
  assert_int_equal(l.n, 4);
  size_t n = 0;
  assert_null(sw_lq_labels_get(&l, "empty", &n));
  assert_null(sw_lq_labels_get(&l, "nope", &n));
  const char *v = sw_lq_labels_get(&l, "mid", &n);
  assert_int_equal(n, 3);
  assert_memory_equal(v, "new", 3);
  struct sw_buf b;
  sw_buf_init(&b, SIZE_MAX);
  assert_int_equal(sw_lq_labels_json(&l, &b), 0);
  assert_int_equal(b.len, strlen("{\"alpha\":\"a\\\"b\\\\c\\nd\\u0001\",\"mid\":\"new\",\"zeta\":\"z\"}"));
  assert_memory_equal(b.data, "{\"alpha\":\"a\\\"b\\\\c\\nd\\u0001\",\"mid\":\"new\",\"zeta\":\"z\"}", b.len);
  sw_lq_labels_del(&l, "alpha");
  sw_lq_labels_del(&l, "absent");
  b.len = 0;
  assert_int_equal(sw_lq_labels_json(&l, &b), 0);
  assert_memory_equal(b.data, "{\"mid\":\"new\",\"zeta\":\"z\"}", b.len);
  sw_lq_labels_reset(&l);
  b.len = 0;
  assert_int_equal(sw_lq_labels_json(&l, &b), 0);
  assert_int_equal(b.len, 2);
  assert_memory_equal(b.data, "{}", 2);
  /* a chunk's label set, names made valid */
  const char *js = "{\"app\":\"web\",\"k8s.pod\":\"p-1\",\"0x\":\"y\"}";
  assert_int_equal(sw_lq_labels_add_json(&l, js, strlen(js)), 0);
  b.len = 0;
  assert_int_equal(sw_lq_labels_json(&l, &b), 0);
  const char *want = "{\"_0x\":\"y\",\"app\":\"web\",\"k8s_pod\":\"p-1\"}";
  assert_int_equal(b.len, strlen(want));
  assert_memory_equal(b.data, want, b.len);
  /* at most SW_LQ_MAX_LABELS; more are dropped */
  sw_lq_labels_reset(&l);
  for (int i = 0; i < SW_LQ_MAX_LABELS + 10; i++) {
    char name[16];
    snprintf(name, sizeof name, "l%03d", i);
    assert_int_equal(sw_lq_labels_set(&l, name, "v", 1), 0);
  }
  assert_int_equal(l.n, SW_LQ_MAX_LABELS);
  b.len = 0;
  assert_int_equal(sw_lq_labels_json(&l, &b), 0);
  sw_buf_free(&b);
  sw_lq_labels_free(&l);
}

static void put_value_str(double v, const char *want) {
  struct sw_buf b;
  sw_buf_init(&b, SIZE_MAX);
  assert_int_equal(sw_lq_put_value(&b, v), 0);
  char got[512];
  snprintf(got, sizeof got, "%.*s", (int)b.len, b.data ? b.data : "");
  sw_buf_free(&b);
  if (want && strcmp(got, want)) fail_msg("value %.17g: \"%s\", expected \"%s\"", v, got, want);
  if (!isnan(v) && !isinf(v)) {
    if (strchr(got, 'e') || strchr(got, 'E')) fail_msg("value %.17g: \"%s\" has an exponent", v, got);
    if (strtod(got, NULL) != v) fail_msg("value %.17g: \"%s\" does not read back", v, got);
  }
}

static void values(void **state) {
  (void)state;
  put_value_str(2, "2");
  put_value_str(0.25, "0.25");
  put_value_str(-1.5, "-1.5");
  put_value_str(0, "0");
  put_value_str(100, "100");
  put_value_str(123.456, "123.456");
  put_value_str(1.0 / 3, "0.3333333333333333");
  put_value_str(0.1 + 0.2, "0.30000000000000004");
  put_value_str(1e21, "1000000000000000000000");
  put_value_str(1e23, "100000000000000000000000"); /* as Go writes it: shortest digits */
  put_value_str(1e-7, "0.0000001");
  put_value_str(1.5e-7, "0.00000015");
  put_value_str(nextafter(1e-7, 0), "0.00000009999999999999998"); /* just below a power of ten */
  put_value_str(nextafter(1e-4, 0), NULL);
  put_value_str(nextafter(1e22, 0), NULL);
  put_value_str(1e70, "1" "0000000000" "0000000000" "0000000000" "0000000000" "0000000000" "0000000000" "0000000000");
  put_value_str(1e-70, "0.0000000000" "0000000000" "0000000000" "0000000000" "0000000000" "0000000000" "0000000001");
  put_value_str(1.7976931348623157e308, NULL);
  put_value_str(-1.7976931348623157e308, NULL);
  put_value_str(5e-324, NULL);
  put_value_str(-2.2250738585072014e-308, NULL);
  put_value_str(1234567890123456789.0, "1234567890123456800");
  put_value_str(NAN, "NaN");
  put_value_str(INFINITY, "+Inf");
  put_value_str(-INFINITY, "-Inf");
  /* many values read back */
  double v = 1e-12;
  for (int i = 0; i < 2000; i++, v *= 1.0731) put_value_str(v, NULL);
  /* appends to what is there */
  struct sw_buf b;
  sw_buf_init(&b, SIZE_MAX);
  assert_int_equal(sw_buf_append(&b, "[", 1), 0);
  assert_int_equal(sw_lq_put_value(&b, 5), 0);
  assert_int_equal(b.len, 2);
  assert_memory_equal(b.data, "[5", 2);
  sw_buf_free(&b);
}

static void durations(void **state) {
  (void)state;
  int64_t ns = -1;
  assert_int_equal(sw_lq_parse_duration("1h30m", 5, &ns), 0);
  assert_true(ns == 5400000000000LL);
  assert_int_equal(sw_lq_parse_duration("1.5s", 4, &ns), 0);
  assert_true(ns == 1500000000LL);
  assert_int_equal(sw_lq_parse_duration("250ms", 5, &ns), 0);
  assert_true(ns == 250000000LL);
  assert_int_equal(sw_lq_parse_duration("2d", 2, &ns), 0);
  assert_true(ns == 172800000000000LL);
  assert_int_equal(sw_lq_parse_duration("1w", 2, &ns), 0);
  assert_true(ns == 604800000000000LL);
  assert_int_equal(sw_lq_parse_duration("10us", 4, &ns), 0);
  assert_true(ns == 10000);
  assert_int_equal(sw_lq_parse_duration("5m", 2, &ns), 0);
  assert_true(ns == 300000000000LL);
  assert_int_equal(sw_lq_parse_duration("1h2m3s4ms", 9, &ns), 0);
  assert_true(ns == 3723004000000LL);
  /* n is honoured: "5m" of "5mx" */
  assert_int_equal(sw_lq_parse_duration("5mx", 2, &ns), 0);
  assert_true(ns == 300000000000LL);
  const char *bad[] = {"", "5", "5x", "m", "-1s", "1h-", "s5", "1.5", " 1s", "1s ", "1e3s", "5M", "5H",
                       "99999999999y"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    ns = 42;
    if (sw_lq_parse_duration(bad[i], strlen(bad[i]), &ns) != -1) fail_msg("duration \"%s\" accepted", bad[i]);
    assert_true(ns == 42);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(parse_selector_and_line_filters),
      cmocka_unit_test(parse_label_filters),
      cmocka_unit_test(parse_formats_and_drop_keep),
      cmocka_unit_test(parse_metrics),
      cmocka_unit_test(parse_errors),
      cmocka_unit_test(scan_patterns),
      cmocka_unit_test(eval_selector),
      cmocka_unit_test(eval_line_filters),
      cmocka_unit_test(eval_json),
      cmocka_unit_test(eval_logfmt_regexp),
      cmocka_unit_test(eval_label_filters),
      cmocka_unit_test(eval_formats_drop_keep),
      cmocka_unit_test(eval_reuse),
      cmocka_unit_test(eval_split),
      cmocka_unit_test(labels),
      cmocka_unit_test(values),
      cmocka_unit_test(durations),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
