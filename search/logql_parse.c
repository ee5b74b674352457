/* logql_parse.c - LogQL text to struct sw_lq_query (see logql.h for the subset).
 *
 * A hand-written lexer and recursive-descent parser. Errors carry Loki's wording ("parse error
 * at line L, col C: syntax error: unexpected X") so Grafana shows what Loki would; constructs
 * of LogQL that spillway does not evaluate are named ("... is not supported by spillway")
 * rather than reported as syntax errors, so a user knows the query is valid Loki.
 *
 * Here: metric expressions and the query itself. The lexer and the errors are in logql_lex.c,
 * log selections (selector, pipeline) in logql_parse_log.c. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "logql_lex.h"
#include "logql_parse_int.h"

/* ---- metric expressions ---- */

static struct sw_lq_metric *new_metric(struct lex *x, enum sw_lq_mkind k) {
  struct sw_lq_metric *m = calloc(1, sizeof *m);
  if (!m) sw__lq_fail_at(x, x->start, "out of memory");
  else m->kind = k;
  return m;
}

static void metric_free(struct sw_lq_metric *m) {
  if (!m) return;
  metric_free(m->a);
  metric_free(m->b);
  for (size_t i = 0; i < m->ngroup; i++) free(m->group[i]);
  free(m->group);
  free(m);
}

static struct sw_lq_metric *metric_expr(struct lex *x, struct sw_lq_query *q);

static int parse_range(struct lex *x, struct sw_lq_metric *m) {
  if (x->tk != T_LBRACK) return sw__lq_unexpected(x, "[");
  if (sw__lq_next(x)) return -1;
  if (x->tk != T_DUR) return sw__lq_unexpected(x, "DURATION");
  if (x->dur_ns <= 0) return sw__lq_fail_at(x, x->start, "the range must be positive");
  m->range_ns = x->dur_ns;
  if (sw__lq_next(x) || sw__lq_expect(x, T_RBRACK)) return -1;
  return 0;
}

static struct sw_lq_metric *range_agg(struct lex *x, struct sw_lq_query *q, enum sw_lq_range_op op) {
  struct sw_lq_metric *m = new_metric(x, SW_LQ_M_RANGE);
  if (!m) return NULL;
  m->rop = op;
  if (sw__lq_next(x) || sw__lq_expect(x, T_LPAR)) goto bad;
  int paren = 0; /* count_over_time(({app="a"} |= "x")[5m]) */
  if (x->tk == T_LPAR) {
    paren = 1;
    if (sw__lq_next(x)) goto bad;
  }
  if (x->tk != T_LBRACE) {
    sw__lq_unexpected(x, "{");
    goto bad;
  }
  if (q->has_log) {
    sw__lq_unsupported(x, "a query with more than one log selector");
    goto bad;
  }
  q->has_log = 1;
  if (sw__lq_parse_selector(x, &q->log)) goto bad;
  int have_range = 0;
  if (x->tk == T_LBRACK) { /* {sel}[5m] | pipeline */
    if (parse_range(x, m)) goto bad;
    have_range = 1;
  }
  if (sw__lq_parse_pipeline(x, &q->log)) goto bad;
  if (paren && sw__lq_expect(x, T_RPAR)) goto bad;
  if (!have_range && parse_range(x, m)) goto bad;
  if (sw__lq_is_ident(x, "offset")) {
    if (sw__lq_next(x)) goto bad;
    if (x->tk != T_DUR) {
      sw__lq_unexpected(x, "DURATION");
      goto bad;
    }
    m->offset_ns = x->dur_ns;
    if (sw__lq_next(x)) goto bad;
  }
  if (sw__lq_expect(x, T_RPAR)) goto bad;
  return m;
bad:
  metric_free(m);
  return NULL;
}

static int parse_grouping(struct lex *x, struct sw_lq_metric *m) {
  if (m->grouped) return sw__lq_unexpected(x, NULL);
  m->grouped = 1;
  m->without = sw__lq_is_ident(x, "without");
  if (sw__lq_next(x) || sw__lq_expect(x, T_LPAR)) return -1;
  while (x->tk != T_RPAR) {
    if (x->tk != T_IDENT) return sw__lq_unexpected(x, "IDENTIFIER");
    size_t cap = m->ngroup;
    if (sw_grow(&m->group, m->ngroup + 1, &cap, sizeof *m->group, 4) || !(m->group[m->ngroup] = strdup(x->str.data)))
      return sw__lq_fail_at(x, x->start, "out of memory");
    m->ngroup++;
    if (sw__lq_next(x)) return -1;
    if (x->tk == T_COMMA && sw__lq_next(x)) return -1;
  }
  return sw__lq_next(x);
}

static struct sw_lq_metric *vector_agg(struct lex *x, struct sw_lq_query *q, enum sw_lq_agg_op op) {
  struct sw_lq_metric *m = new_metric(x, SW_LQ_M_AGG);
  if (!m) return NULL;
  m->aop = op;
  if (sw__lq_next(x)) goto bad;
  if ((sw__lq_is_ident(x, "by") || sw__lq_is_ident(x, "without")) && parse_grouping(x, m)) goto bad;
  if (sw__lq_expect(x, T_LPAR)) goto bad;
  if (op == SW_LQ_TOPK || op == SW_LQ_BOTTOMK) {
    if (x->tk != T_NUM) {
      sw__lq_unexpected(x, "NUMBER");
      goto bad;
    }
    if (x->num < 1 || x->num != floor(x->num) || x->num > 1e6) {
      sw__lq_fail_at(x, x->start, "invalid parameter for %s: must be a positive integer", op == SW_LQ_TOPK ? "topk" : "bottomk");
      goto bad;
    }
    m->k = (long)x->num;
    if (sw__lq_next(x) || sw__lq_expect(x, T_COMMA)) goto bad;
  }
  if (x->tk == T_LBRACE) {
    sw__lq_fail_at(x, x->start, "syntax error: unexpected {, a vector aggregation needs a metric expression "
                         "(count_over_time({...}[5m]), not a log query)");
    goto bad;
  }
  if (!(m->a = metric_expr(x, q)) || sw__lq_expect(x, T_RPAR)) goto bad;
  if ((sw__lq_is_ident(x, "by") || sw__lq_is_ident(x, "without")) && parse_grouping(x, m)) goto bad;
  return m;
bad:
  metric_free(m);
  return NULL;
}

static struct sw_lq_metric *metric_primary_in(struct lex *x, struct sw_lq_query *q);

static struct sw_lq_metric *metric_primary(struct lex *x, struct sw_lq_query *q) {
  struct sw_lq_metric *m = sw__lq_enter(x) ? NULL : metric_primary_in(x, q);
  x->depth--;
  return m;
}

static struct sw_lq_metric *metric_primary_in(struct lex *x, struct sw_lq_query *q) {
  if (x->tk == T_NUM) {
    struct sw_lq_metric *m = new_metric(x, SW_LQ_M_NUMBER);
    if (m) m->num = x->num;
    if (m && sw__lq_next(x)) return metric_free(m), NULL;
    return m;
  }
  if (x->tk == T_MINUS) {
    if (sw__lq_next(x)) return NULL;
    struct sw_lq_metric *inner = metric_primary(x, q);
    if (!inner) return NULL;
    if (inner->kind == SW_LQ_M_NUMBER) {
      inner->num = -inner->num;
      return inner;
    }
    struct sw_lq_metric *zero = new_metric(x, SW_LQ_M_NUMBER), *m = zero ? new_metric(x, SW_LQ_M_BIN) : NULL;
    if (!m) return metric_free(zero), metric_free(inner), NULL;
    m->op = '-', m->a = zero, m->b = inner;
    return m;
  }
  if (x->tk == T_LPAR) {
    if (sw__lq_next(x)) return NULL;
    struct sw_lq_metric *m = metric_expr(x, q);
    if (m && sw__lq_expect(x, T_RPAR)) return metric_free(m), NULL;
    return m;
  }
  if (x->tk == T_LBRACE) return sw__lq_unexpected(x, NULL), NULL;
  if (x->tk != T_IDENT) return sw__lq_unexpected(x, NULL), NULL;
  static const char *const ranges[] = {"count_over_time", "rate", "bytes_over_time", "bytes_rate"};
  for (int i = 0; i < 4; i++)
    if (sw__lq_is_ident(x, ranges[i])) return range_agg(x, q, (enum sw_lq_range_op)i);
  static const char *const aggs[] = {"sum", "count", "min", "max", "avg", "topk", "bottomk"};
  for (int i = 0; i < 7; i++)
    if (sw__lq_is_ident(x, aggs[i])) return vector_agg(x, q, (enum sw_lq_agg_op)i);
  if (sw__lq_is_ident(x, "vector")) {
    if (sw__lq_next(x) || sw__lq_expect(x, T_LPAR)) return NULL;
    if (x->tk != T_NUM) return sw__lq_unexpected(x, "NUMBER"), NULL;
    struct sw_lq_metric *m = new_metric(x, SW_LQ_M_VECTOR);
    if (m) m->num = x->num;
    if (m && (sw__lq_next(x) || sw__lq_expect(x, T_RPAR))) return metric_free(m), NULL;
    return m;
  }
  static const char *const refused[] = {
      "sum_over_time", "avg_over_time", "max_over_time", "min_over_time", "first_over_time",
      "last_over_time", "stdvar_over_time", "stddev_over_time", "quantile_over_time",
      "absent_over_time", "rate_counter", "stddev", "stdvar", "sort", "sort_desc",
      "label_replace", "approx_topk"};
  for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++)
    if (sw__lq_is_ident(x, refused[i])) {
      char what[64];
      snprintf(what, sizeof what, "%s", refused[i]);
      return sw__lq_unsupported(x, what), NULL;
    }
  return sw__lq_unexpected(x, NULL), NULL;
}

static struct sw_lq_metric *bin(struct lex *x, struct sw_lq_metric *a, char op, struct sw_lq_metric *b) {
  struct sw_lq_metric *m = b ? new_metric(x, SW_LQ_M_BIN) : NULL;
  if (!m) return metric_free(a), metric_free(b), NULL;
  if (a->kind == SW_LQ_M_NUMBER && b->kind == SW_LQ_M_NUMBER) { /* fold constants */
    double v = op == '+' ? a->num + b->num : op == '-' ? a->num - b->num : op == '*' ? a->num * b->num
             : op == '/' ? a->num / b->num : fmod(a->num, b->num);
    metric_free(b);
    free(m);
    a->num = v;
    return a;
  }
  m->op = op, m->a = a, m->b = b;
  return m;
}

static int refuse_comparison(struct lex *x) {
  if (x->tk == T_GT || x->tk == T_GE || x->tk == T_LT || x->tk == T_LE || x->tk == T_EQEQ || x->tk == T_NEQ ||
      x->tk == T_POW || sw__lq_is_ident(x, "and") || sw__lq_is_ident(x, "or") || sw__lq_is_ident(x, "unless"))
    return sw__lq_unsupported(x, "this binary operator (spillway answers + - * / %)");
  return 0;
}

static struct sw_lq_metric *metric_mul(struct lex *x, struct sw_lq_query *q) {
  struct sw_lq_metric *m = metric_primary(x, q);
  while (m && (x->tk == T_MUL || x->tk == T_DIV || x->tk == T_MOD)) {
    char op = x->tk == T_MUL ? '*' : x->tk == T_DIV ? '/' : '%';
    if (sw__lq_next(x)) return metric_free(m), NULL;
    if (sw__lq_is_ident(x, "bool")) return metric_free(m), sw__lq_unsupported(x, "bool"), NULL;
    m = bin(x, m, op, metric_primary(x, q));
  }
  return m;
}

static struct sw_lq_metric *metric_expr(struct lex *x, struct sw_lq_query *q) {
  struct sw_lq_metric *m = metric_mul(x, q);
  while (m && (x->tk == T_PLUS || x->tk == T_MINUS)) {
    char op = x->tk == T_PLUS ? '+' : '-';
    if (sw__lq_next(x)) return metric_free(m), NULL;
    if (sw__lq_is_ident(x, "bool")) return metric_free(m), sw__lq_unsupported(x, "bool"), NULL;
    m = bin(x, m, op, metric_mul(x, q));
  }
  if (m && refuse_comparison(x)) return metric_free(m), NULL;
  return m;
}

/* ---- the query ---- */

void sw_lq_free(struct sw_lq_query *q) {
  sw__lq_log_free(&q->log);
  metric_free(q->metric);
  memset(q, 0, sizeof *q);
}

int sw_lq_parse(const char *text, struct sw_lq_query *q, char *err, size_t errlen) {
  memset(q, 0, sizeof *q);
  struct lex x = {.text = text, .p = text, .err = err, .errlen = errlen};
  sw_buf_init(&x.str, SIZE_MAX);
  int rc = sw__lq_next(&x);
  if (!rc && x.tk == T_EOF) rc = sw__lq_fail_at(&x, x.start, "syntax error: unexpected $end");
  if (!rc && x.tk == T_LBRACE) {
    rc = sw__lq_parse_log(&x, q);
  } else if (!rc) {
    q->metric = metric_expr(&x, q);
    if (!q->metric) rc = -1;
    else if (!q->has_log && q->metric->kind == SW_LQ_M_NUMBER) rc = sw__lq_unsupported(&x, "a scalar query");
  }
  if (!rc && x.tk != T_EOF) rc = x.tk == T_LBRACK ? sw__lq_unsupported(&x, "a range on this expression (subquery)") : sw__lq_unexpected(&x, NULL);
  sw_buf_free(&x.str);
  if (rc) {
    if (!x.failed) snprintf(err, errlen, "parse error : out of memory");
    sw_lq_free(q);
    return SW_EINVAL;
  }
  return SW_OK;
}
