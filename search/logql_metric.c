/* logql_metric.c - metric queries after the scan: vector aggregations (sum, count, min, max,
 * avg, topk, bottomk with by/without), vector(n), arithmetic, and the matrix/vector JSON. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "logql_int.h"

void sw__lq_matrix_free(struct sw__lq_matrix *m) {
  for (size_t i = 0; i < m->n; i++) {
    free(m->s[i].key);
    free(m->s[i].v);
    free(m->s[i].has);
  }
  free(m->s);
  memset(m, 0, sizeof *m);
}

struct sw__lq_series *sw__lq_matrix_add(struct sw__lq_matrix *m, char *key, size_t nsteps) {
  if (sw_grow(&m->s, m->n, &m->cap, sizeof *m->s, 16)) return free(key), NULL;
  struct sw__lq_series *s = &m->s[m->n];
  s->key = key;
  s->v = calloc(nsteps ? nsteps : 1, sizeof *s->v);
  s->has = calloc(nsteps ? nsteps : 1, 1);
  if (!s->v || !s->has) {
    free(s->v);
    free(s->has);
    free(key);
    return NULL;
  }
  m->n++;
  return s;
}

/* ---- grouping ---- */

struct group_ctx {
  const struct sw_lq_metric *m;
  struct sw_buf *out;
  int n, rc;
};

static int in_group(const struct sw_lq_metric *m, const char *k) {
  for (size_t i = 0; i < m->ngroup; i++)
    if (!strcmp(m->group[i], k)) return 1;
  return 0;
}

static int group_one(void *arg, const char *k, const char *v) {
  struct group_ctx *g = arg;
  int keep = g->m->without ? !in_group(g->m, k) : in_group(g->m, k);
  if (!keep) return 0;
  if ((g->n++ && sw_buf_putc(g->out, ',')) || sw_buf_putc(g->out, '"') ||
      sw_buf_put_json_str(g->out, k, strlen(k), NULL) || sw_buf_append(g->out, "\":\"", 3) ||
      sw_buf_put_json_str(g->out, v, strlen(v), NULL) || sw_buf_putc(g->out, '"'))
    return g->rc = SW_ENOMEM;
  return 0;
}

/* The group's label set: the series' labels kept by by/without (sorted, as the key is). */
static char *group_key(const struct sw_lq_metric *m, const char *key) {
  struct sw_buf b;
  sw_buf_init(&b, SIZE_MAX);
  struct group_ctx g = {.m = m, .out = &b};
  if (sw_buf_putc(&b, '{')) return NULL;
  if (m->grouped) (void)sw_label_each(key, strlen(key), group_one, &g);
  if (g.rc || sw_buf_append(&b, "}", 2)) {
    sw_buf_free(&b);
    return NULL;
  }
  return b.data;
}

static long find_series(const struct sw__lq_matrix *m, const char *key) {
  for (size_t i = 0; i < m->n; i++)
    if (!strcmp(m->s[i].key, key)) return (long)i;
  return -1;
}

static int aggregate(const struct sw_lq_metric *m, struct sw__lq_matrix *in, size_t nsteps, struct sw__lq_matrix *out) {
  size_t *gi = calloc(in->n ? in->n : 1, sizeof *gi);
  struct sw__lq_matrix groups = {0};
  int rc = gi ? SW_OK : SW_ENOMEM;
  for (size_t i = 0; !rc && i < in->n; i++) {
    char *k = group_key(m, in->s[i].key);
    if (!k) { rc = SW_ENOMEM; break; }
    long g = find_series(&groups, k);
    if (g < 0) {
      if (!sw__lq_matrix_add(&groups, k, nsteps)) rc = SW_ENOMEM;
      g = (long)groups.n - 1;
    } else {
      free(k);
    }
    gi[i] = (size_t)g;
  }
  if (!rc && (m->aop == SW_LQ_TOPK || m->aop == SW_LQ_BOTTOMK)) {
    /* per step and group, the k highest (lowest) series keep their value */
    int top = m->aop == SW_LQ_TOPK;
    uint8_t *pick = calloc(in->n ? in->n : 1, 1);
    if (!pick) rc = SW_ENOMEM;
    for (size_t i = 0; !rc && i < in->n; i++) {
      char *k = strdup(in->s[i].key);
      if (!k || !sw__lq_matrix_add(out, k, nsteps)) rc = SW_ENOMEM;
    }
    for (size_t t = 0; !rc && t < nsteps; t++) {
      memset(pick, 0, in->n);
      for (size_t g = 0; g < groups.n; g++)
        for (long c = 0; c < m->k; c++) {
          long best = -1;
          for (size_t i = 0; i < in->n; i++) {
            if (gi[i] != g || !in->s[i].has[t] || pick[i]) continue;
            double v = in->s[i].v[t];
            if (best < 0 || (top ? v > in->s[best].v[t] : v < in->s[best].v[t]) || (isnan(in->s[best].v[t]) && !isnan(v)))
              best = (long)i;
          }
          if (best < 0) break;
          pick[best] = 1;
          out->s[best].has[t] = 1;
          out->s[best].v[t] = in->s[best].v[t];
        }
    }
    free(pick);
    /* series never picked are not in the answer */
    size_t w = 0;
    for (size_t i = 0; !rc && i < out->n; i++) {
      int any = 0;
      for (size_t t = 0; t < nsteps && !any; t++) any = out->s[i].has[t];
      if (any) out->s[w++] = out->s[i];
      else free(out->s[i].key), free(out->s[i].v), free(out->s[i].has);
    }
    if (!rc) out->n = w;
  } else if (!rc) {
    size_t *cnt = calloc(groups.n ? groups.n : 1, sizeof *cnt);
    if (!cnt) rc = SW_ENOMEM;
    for (size_t t = 0; !rc && t < nsteps; t++) {
      memset(cnt, 0, (groups.n ? groups.n : 1) * sizeof *cnt);
      for (size_t i = 0; i < in->n; i++) {
        if (!in->s[i].has[t]) continue;
        struct sw__lq_series *g = &groups.s[gi[i]];
        double v = in->s[i].v[t], *acc = &g->v[t];
        size_t c = cnt[gi[i]]++;
        switch (m->aop) {
          case SW_LQ_SUM: case SW_LQ_AVG: *acc = c ? *acc + v : v; break;
          case SW_LQ_COUNT: *acc = (double)(c + 1); break;
          case SW_LQ_MIN: *acc = !c || v < *acc || isnan(*acc) ? v : *acc; break;
          case SW_LQ_MAX: *acc = !c || v > *acc || isnan(*acc) ? v : *acc; break;
          default: break;
        }
        g->has[t] = 1;
      }
      if (m->aop == SW_LQ_AVG)
        for (size_t g = 0; g < groups.n; g++)
          if (cnt[g]) groups.s[g].v[t] /= (double)cnt[g];
    }
    free(cnt);
    if (!rc) {
      *out = groups;
      memset(&groups, 0, sizeof groups);
    }
  }
  free(gi);
  sw__lq_matrix_free(&groups);
  return rc;
}

static double apply(char op, double a, double b) {
  switch (op) {
    case '+': return a + b;
    case '-': return a - b;
    case '*': return a * b;
    case '/': return a / b;
    default: return fmod(a, b);
  }
}

static int binary(char op, struct sw__lq_matrix *a, struct sw__lq_matrix *b, size_t nsteps, struct sw__lq_matrix *out) {
  if (a->scalar && b->scalar) {
    out->scalar = 1;
    out->num = apply(op, a->num, b->num);
    return SW_OK;
  }
  if (a->scalar || b->scalar) { /* every series against the number */
    struct sw__lq_matrix *v = a->scalar ? b : a;
    for (size_t i = 0; i < v->n; i++)
      for (size_t t = 0; t < nsteps; t++)
        if (v->s[i].has[t]) v->s[i].v[t] = a->scalar ? apply(op, a->num, v->s[i].v[t]) : apply(op, v->s[i].v[t], b->num);
    *out = *v;
    memset(v, 0, sizeof *v);
    return SW_OK;
  }
  /* one to one on equal label sets */
  for (size_t i = 0; i < a->n; i++) {
    long j = find_series(b, a->s[i].key);
    if (j < 0) continue;
    int any = 0;
    for (size_t t = 0; t < nsteps; t++) {
      a->s[i].has[t] = a->s[i].has[t] && b->s[j].has[t];
      if (a->s[i].has[t]) a->s[i].v[t] = apply(op, a->s[i].v[t], b->s[j].v[t]), any = 1;
    }
    if (!any) continue;
    if (sw_grow(&out->s, out->n, &out->cap, sizeof *out->s, 16)) return SW_ENOMEM;
    out->s[out->n++] = a->s[i];
    memset(&a->s[i], 0, sizeof a->s[i]);
  }
  return SW_OK;
}

int sw__lq_metric_eval(const struct sw_lq_metric *m, struct sw__lq_matrix *range, size_t nsteps,
                       struct sw__lq_matrix *out, char *err, size_t errlen) {
  memset(out, 0, sizeof *out);
  (void)err, (void)errlen;
  switch (m->kind) {
    case SW_LQ_M_RANGE:
      *out = *range;
      memset(range, 0, sizeof *range);
      return SW_OK;
    case SW_LQ_M_NUMBER:
      out->scalar = 1;
      out->num = m->num;
      return SW_OK;
    case SW_LQ_M_VECTOR: {
      char *k = strdup("{}");
      struct sw__lq_series *s = k ? sw__lq_matrix_add(out, k, nsteps) : NULL;
      if (!s) return SW_ENOMEM;
      for (size_t t = 0; t < nsteps; t++) s->has[t] = 1, s->v[t] = m->num;
      return SW_OK;
    }
    case SW_LQ_M_AGG: {
      struct sw__lq_matrix in;
      int rc = sw__lq_metric_eval(m->a, range, nsteps, &in, err, errlen);
      if (!rc && in.scalar) rc = SW_EINVAL, snprintf(err, errlen, "an aggregation needs a vector, not a number");
      if (!rc) rc = aggregate(m, &in, nsteps, out);
      sw__lq_matrix_free(&in);
      return rc;
    }
    case SW_LQ_M_BIN: {
      struct sw__lq_matrix a, b;
      int rc = sw__lq_metric_eval(m->a, range, nsteps, &a, err, errlen);
      if (rc) return rc;
      rc = sw__lq_metric_eval(m->b, range, nsteps, &b, err, errlen);
      if (!rc) rc = binary(m->op, &a, &b, nsteps, out);
      sw__lq_matrix_free(&a);
      sw__lq_matrix_free(&b);
      return rc;
    }
  }
  return SW_EINVAL;
}

int sw__lq_put_seconds(struct sw_buf *out, int64_t ns) {
  int64_t s = ns / 1000000000, ms = (ns % 1000000000) / 1000000;
  if (ns < 0 && ns % 1000000000) s--, ms = ((ns % 1000000000) + 1000000000) / 1000000;
  if (!ms) return sw_buf_printf(out, "%lld", (long long)s);
  char frac[8];
  snprintf(frac, sizeof frac, "%03lld", (long long)ms);
  size_t n = strlen(frac);
  while (n > 1 && frac[n - 1] == '0') n--;
  return sw_buf_printf(out, "%lld.%.*s", (long long)s, (int)n, frac);
}

static int cmp_series(const void *a, const void *b) {
  return strcmp(((const struct sw__lq_series *)a)->key, ((const struct sw__lq_series *)b)->key);
}

int sw__lq_put_matrix(struct sw_buf *out, struct sw__lq_matrix *m, int64_t start, int64_t step,
                      size_t nsteps, int instant) {
  if (m->n > 1) qsort(m->s, m->n, sizeof *m->s, cmp_series);
  int rc = sw_buf_printf(out, "\"resultType\":\"%s\",\"result\":[", instant ? "vector" : "matrix");
  size_t nout = 0;
  for (size_t i = 0; !rc && i < m->n; i++) {
    const struct sw__lq_series *s = &m->s[i];
    int any = 0;
    for (size_t t = 0; t < nsteps && !any; t++) any = s->has[t];
    if (!any) continue;
    rc = sw_buf_printf(out, "%s{\"metric\":%s,\"%s\":", nout++ ? "," : "", s->key, instant ? "value" : "values");
    if (!rc && !instant) rc = sw_buf_putc(out, '[');
    size_t np = 0;
    for (size_t t = 0; !rc && t < nsteps; t++) {
      if (!s->has[t]) continue;
      rc = (np++ && sw_buf_putc(out, ',')) || sw_buf_putc(out, '[') ||
           sw__lq_put_seconds(out, start + (int64_t)t * step) || sw_buf_append(out, ",\"", 2) ||
           sw_lq_put_value(out, s->v[t]) || sw_buf_append(out, "\"]", 2);
    }
    if (!rc) rc = instant ? sw_buf_putc(out, '}') : sw_buf_append(out, "]}", 2);
  }
  if (!rc) rc = sw_buf_putc(out, ']');
  return rc ? SW_ENOMEM : SW_OK;
}
