/* logql_eval.c - one entry through a LogQL pipeline: label sets, line filters, parsers (json,
 * logfmt, regexp), label filters, line_format, label_format, drop and keep. Pure.
 *
 * Loki's rules kept here: extracted names are sanitised ([a-zA-Z0-9_:], no leading digit) and
 * nested JSON keys joined by '_'; a name the entry already has gets "_extracted"; a line `| json`
 * cannot read keeps its labels and gets __error__="JSONParserErr"; a numeric label filter on a
 * value that is not a number keeps the entry with __error__="LabelFilterErr", and an entry that
 * already has an error passes numeric filters; a label with an empty value does not exist. */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


#include <pcre2.h>

#include "../parsers/jsonflat.h"
#include "logql.h"

/* ---- label sets ---- */

void sw_lq_labels_init(struct sw_lq_labels *l) {
  l->n = 0;
  sw_buf_init(&l->arena, SIZE_MAX);
}
void sw_lq_labels_free(struct sw_lq_labels *l) { sw_buf_free(&l->arena); }
void sw_lq_labels_reset(struct sw_lq_labels *l) {
  l->n = 0;
  sw_buf_reset(&l->arena);
}

static const char *at(const struct sw_lq_labels *l, size_t off) { return l->arena.data + off; }

static long find(const struct sw_lq_labels *l, const char *name) {
  for (size_t i = 0; i < l->n; i++)
    if (!strcmp(at(l, l->name[i]), name)) return (long)i;
  return -1;
}

static int put_str(struct sw_lq_labels *l, const char *s, size_t n, size_t *off) {
  *off = l->arena.len;
  if (sw_buf_append(&l->arena, s, n) || sw_buf_putc(&l->arena, 0)) return SW_ENOMEM;
  return SW_OK;
}

int sw_lq_labels_set(struct sw_lq_labels *l, const char *name, const char *v, size_t vlen) {
  long i = find(l, name);
  if (i < 0) {
    if (l->n >= SW_LQ_MAX_LABELS) return SW_OK; /* beyond the cap extra labels are dropped */
    i = (long)l->n;
    if (put_str(l, name, strlen(name), &l->name[i])) return SW_ENOMEM;
    l->n++;
  }
  l->vlen[i] = vlen;
  return put_str(l, v, vlen, &l->value[i]);
}

const char *sw_lq_labels_get(const struct sw_lq_labels *l, const char *name, size_t *vlen) {
  long i = find(l, name);
  if (i < 0 || l->vlen[i] == 0) return NULL;
  if (vlen) *vlen = l->vlen[i];
  return at(l, l->value[i]);
}

void sw_lq_labels_del(struct sw_lq_labels *l, const char *name) {
  long i = find(l, name);
  if (i < 0) return;
  for (size_t j = (size_t)i + 1; j < l->n; j++) {
    l->name[j - 1] = l->name[j];
    l->value[j - 1] = l->value[j];
    l->vlen[j - 1] = l->vlen[j];
  }
  l->n--;
}

int sw_lq_label_name(struct sw_buf *out, const char *name, size_t len) {
  int rc = 0;
  if (len && isdigit((unsigned char)name[0])) rc = sw_buf_putc(out, '_');
  for (size_t i = 0; !rc && i < len; i++) {
    char c = name[i];
    rc = sw_buf_putc(out, (isalnum((unsigned char)c) && !(c & 0x80)) || c == '_' || c == ':' ? c : '_');
  }
  return rc;
}

struct add_ctx {
  struct sw_lq_labels *l;
  struct sw_buf name;
  int rc;
};

static int add_one(void *arg, const char *k, const char *v) {
  struct add_ctx *a = arg;
  sw_buf_reset(&a->name);
  if (sw_lq_label_name(&a->name, k, strlen(k)) || sw_buf_putc(&a->name, 0) ||
      sw_lq_labels_set(a->l, a->name.data, v, strlen(v)))
    return a->rc = SW_ENOMEM;
  return 0;
}

int sw_lq_labels_add_json(struct sw_lq_labels *l, const char *json, size_t len) {
  struct add_ctx a = {.l = l};
  sw_buf_init(&a.name, SIZE_MAX);
  (void)sw_label_each(json, len, add_one, &a);
  sw_buf_free(&a.name);
  return a.rc;
}

static int cmp_idx(const void *a, const void *b, void *arg) {
  const struct sw_lq_labels *l = arg;
  return strcmp(at(l, l->name[*(const size_t *)a]), at(l, l->name[*(const size_t *)b]));
}

int sw_lq_labels_json(const struct sw_lq_labels *l, struct sw_buf *out) {
  size_t idx[SW_LQ_MAX_LABELS], n = 0;
  for (size_t i = 0; i < l->n; i++)
    if (l->vlen[i]) idx[n++] = i;
  /* insertion sort: sets are small, and qsort_r is not C11 */
  for (size_t i = 1; i < n; i++)
    for (size_t j = i; j > 0 && cmp_idx(&idx[j - 1], &idx[j], (void *)l) > 0; j--) {
      size_t t = idx[j];
      idx[j] = idx[j - 1];
      idx[j - 1] = t;
    }
  int rc = sw_buf_putc(out, '{');
  for (size_t k = 0; !rc && k < n; k++) {
    size_t i = idx[k];
    const char *name = at(l, l->name[i]);
    rc = (k && sw_buf_putc(out, ',')) || sw_buf_putc(out, '"') ||
         sw_buf_put_json_str(out, name, strlen(name), NULL) || sw_buf_append(out, "\":\"", 3) ||
         sw_buf_put_json_str(out, at(l, l->value[i]), l->vlen[i], NULL) || sw_buf_putc(out, '"');
  }
  return rc || sw_buf_putc(out, '}') ? SW_ENOMEM : SW_OK;
}

/* ---- values ---- */

int sw_lq_put_value(struct sw_buf *out, double v) {
  if (isnan(v)) return sw_buf_append(out, "NaN", 3);
  if (isinf(v)) return v > 0 ? sw_buf_append(out, "+Inf", 4) : sw_buf_append(out, "-Inf", 4);
  /* The fewest significant digits that read back as v, then placed as Go's 'f' format does (no
   * exponent; the exponent is the one printf chose for those digits, not log10's, which can be
   * off by one next to a power of ten; and %f is not used: 1e300 has 301 digits). */
  char s[40];
  int p;
  for (p = 1; p < 17; p++) {
    snprintf(s, sizeof s, "%.*e", p - 1, v);
    if (strtod(s, NULL) == v) break;
  }
  snprintf(s, sizeof s, "%.*e", p - 1, v); /* [-]d[.ddd]e±XX */
  char digits[24];
  int nd = 0;
  const char *c = s + (s[0] == '-');
  for (; *c && *c != 'e'; c++)
    if (*c != '.' && nd < (int)sizeof digits) digits[nd++] = *c;
  int e = *c == 'e' ? atoi(c + 1) : 0;
  while (nd > 1 && digits[nd - 1] == '0') nd--;
  char o[400]; /* at most 343 bytes: -4.9e-324 */
  size_t n = 0;
  if (s[0] == '-') o[n++] = '-';
  if (e < 0) { /* 0.000ddd */
    o[n++] = '0', o[n++] = '.';
    for (int i = 0; i < -e - 1; i++) o[n++] = '0';
    for (int i = 0; i < nd; i++) o[n++] = digits[i];
  } else { /* ddd000 or dd.ddd */
    for (int i = 0; i < nd || i <= e; i++) {
      if (i == e + 1) o[n++] = '.';
      o[n++] = i < nd ? digits[i] : '0';
    }
  }
  return sw_buf_append(out, o, n);
}

/* ---- the pipeline ---- */

int sw_lq_scratch_init(struct sw_lq_scratch *s) {
  s->md = pcre2_match_data_create(64, NULL);
  sw_buf_init(&s->line, SIZE_MAX);
  sw_buf_init(&s->tmp, SIZE_MAX);
  sw_buf_init(&s->aux, SIZE_MAX);
  sw_buf_init(&s->line2, SIZE_MAX);
  return s->md ? SW_OK : SW_ENOMEM;
}

void sw_lq_scratch_free(struct sw_lq_scratch *s) {
  if (s->md) pcre2_match_data_free(s->md);
  sw_buf_free(&s->line);
  sw_buf_free(&s->tmp);
  sw_buf_free(&s->aux);
  sw_buf_free(&s->line2);
  memset(s, 0, sizeof *s);
}

static int re_hit(void *re, const char *s, size_t n, void *md) {
  return pcre2_match(re, (PCRE2_SPTR)(n ? s : ""), n, 0, 0, md, NULL) >= 0;
}

static int line_filter(const struct sw_lq_stage *st, const char *line, size_t len, void *md) {
  int any = 0;
  for (size_t i = 0; i < st->nalt && !any; i++) {
    if (st->op == SW_LQ_CONTAINS || st->op == SW_LQ_NOT_CONTAINS) {
      size_t n = strlen(st->text[i]);
      any = n == 0 || (len >= n && memmem(line, len, st->text[i], n) != NULL);
    } else {
      any = re_hit(st->re[i], line, len, md);
    }
  }
  return st->op == SW_LQ_CONTAINS || st->op == SW_LQ_MATCH ? any : !any;
}

/* Sets an extracted label: name sanitised, "_extracted" when the entry has it already. */
static int set_extracted(struct sw_lq_labels *l, struct sw_buf *name, const char *v, size_t vlen, size_t first_new) {
  if (sw_buf_putc(name, 0)) return SW_ENOMEM;
  long i = find(l, name->data);
  if (i >= 0 && (size_t)i >= first_new) return SW_OK; /* a key seen twice in one line: the first wins */
  if (i >= 0) {
    name->len--;
    if (sw_buf_append(name, "_extracted", 11)) return SW_ENOMEM;
    if (find(l, name->data) >= 0) return SW_OK;
  }
  if (!vlen) return SW_OK;
  return sw_lq_labels_set(l, name->data, v, vlen);
}

struct json_ctx {
  struct sw_lq_labels *l;
  struct sw_buf *name;
  size_t first_new;
};

static int json_member(void *arg, const char *name, size_t nlen, const char *v, size_t vlen) {
  struct json_ctx *j = arg;
  sw_buf_reset(j->name);
  if (sw_buf_append(j->name, name, nlen)) return SW_ENOMEM;
  return set_extracted(j->l, j->name, v, vlen, j->first_new) ? SW_ENOMEM : SW_OK;
}

static int stage_json(struct sw_lq_labels *l, struct sw_lq_scratch *s, const char *line, size_t len) {
  struct json_ctx j = {.l = l, .name = &s->aux, .first_new = l->n};
  int rc = sw_json_flatten(line, len, &s->tmp, &s->line2, sw_lq_label_name, json_member, &j);
  if (rc != SW_EPARSE) return rc;
  if (sw_lq_labels_get(l, "__error__", NULL)) return SW_OK;
  return sw_lq_labels_set(l, "__error__", "JSONParserErr", 13);
}

/* logfmt pairs: key=value, key="quoted \" value", bare keys (no value: no label). */
static int stage_logfmt(struct sw_lq_labels *l, struct sw_lq_scratch *s, const char *line, size_t len) {
  const char *p = line, *e = line + len;
  size_t first_new = l->n;
  struct sw_buf val;
  sw_buf_init(&val, SIZE_MAX);
  int rc = 0;
  while (!rc && p < e) {
    while (p < e && (*p == ' ' || *p == '\t')) p++;
    const char *k = p;
    while (p < e && *p != '=' && *p != ' ' && *p != '\t' && *p != '"') p++;
    size_t klen = (size_t)(p - k);
    sw_buf_reset(&val);
    if (p < e && *p == '=') {
      p++;
      if (p < e && *p == '"') {
        p++;
        while (!rc && p < e && *p != '"') {
          if (*p == '\\' && p + 1 < e) {
            p++;
            char c = *p == 'n' ? '\n' : *p == 't' ? '\t' : *p == 'r' ? '\r' : *p;
            rc = sw_buf_putc(&val, c);
          } else {
            rc = sw_buf_putc(&val, *p);
          }
          p++;
        }
        if (p < e) p++;
      } else {
        const char *v = p;
        while (p < e && *p != ' ' && *p != '\t') p++;
        rc = sw_buf_append(&val, v, (size_t)(p - v));
      }
    } else if (p < e && *p == '"') {
      p++; /* a stray quote: skip it */
      continue;
    }
    if (!rc && klen) {
      sw_buf_reset(&s->tmp);
      rc = sw_lq_label_name(&s->tmp, k, klen) || set_extracted(l, &s->tmp, val.data ? val.data : "", val.len, first_new);
    }
  }
  sw_buf_free(&val);
  return rc ? SW_ENOMEM : SW_OK;
}

static int stage_regexp(struct sw_lq_labels *l, struct sw_lq_scratch *s, const struct sw_lq_stage *st,
                        const char *line, size_t len) {
  pcre2_match_data *md = pcre2_match_data_create_from_pattern(st->re_regexp, NULL);
  if (!md) return SW_ENOMEM;
  int rc = SW_OK;
  if (pcre2_match(st->re_regexp, (PCRE2_SPTR)(len ? line : ""), len, 0, 0, md, NULL) >= 0) {
    uint32_t count = 0, size = 0;
    PCRE2_SPTR table;
    pcre2_pattern_info(st->re_regexp, PCRE2_INFO_NAMECOUNT, &count);
    pcre2_pattern_info(st->re_regexp, PCRE2_INFO_NAMEENTRYSIZE, &size);
    pcre2_pattern_info(st->re_regexp, PCRE2_INFO_NAMETABLE, &table);
    PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
    size_t first_new = l->n;
    for (uint32_t i = 0; !rc && i < count; i++) {
      const unsigned char *ent = table + (size_t)i * size;
      unsigned grp = (unsigned)(ent[0] << 8 | ent[1]);
      if (ov[2 * grp] == PCRE2_UNSET) continue;
      const char *name = (const char *)ent + 2;
      sw_buf_reset(&s->tmp);
      rc = sw_lq_label_name(&s->tmp, name, strlen(name)) ||
           set_extracted(l, &s->tmp, line + ov[2 * grp], ov[2 * grp + 1] - ov[2 * grp], first_new);
    }
  }
  pcre2_match_data_free(md);
  return rc ? SW_ENOMEM : SW_OK;
}

static int parse_number(const char *v, size_t n, int unit, double *out);

/* 1 keep, 0 drop; *err set when a value could not be compared. */
static int lexpr_eval(const struct sw_lq_lexpr *e, const struct sw_lq_labels *l, void *md, int *err) {
  switch (e->kind) {
    case SW_LQ_L_AND: return lexpr_eval(e->l, l, md, err) && lexpr_eval(e->r, l, md, err);
    case SW_LQ_L_OR: return lexpr_eval(e->l, l, md, err) || lexpr_eval(e->r, l, md, err);
    case SW_LQ_L_STR: {
      size_t n = 0;
      const char *v = sw_lq_labels_get(l, e->m.key, &n);
      return sw_label_match_test(&e->m, v, v ? n : 0, md);
    }
    case SW_LQ_L_NUM: {
      if (sw_lq_labels_get(l, "__error__", NULL)) return 1;
      size_t n = 0;
      const char *v = sw_lq_labels_get(l, e->name, &n);
      if (!v) return 0;
      double d;
      if (parse_number(v, n, e->unit, &d)) {
        *err = 1;
        return 1;
      }
      switch (e->cmp) {
        case SW_LQ_GT: return d > e->num;
        case SW_LQ_GE: return d >= e->num;
        case SW_LQ_LT: return d < e->num;
        case SW_LQ_LE: return d <= e->num;
        case SW_LQ_EQ: return d == e->num;
        case SW_LQ_NE: return d != e->num;
      }
    }
  }
  return 0;
}

/* Value of a label filter: plain number, duration (to seconds) or size (to bytes), parsed as
 * the query's own literals are (logql_parse.c), with an optional sign. */
static int parse_number(const char *v, size_t n, int unit, double *out) {
  if (unit == 0) {
    char buf[64], *end;
    if (n == 0 || n >= sizeof buf) return -1;
    memcpy(buf, v, n);
    buf[n] = 0;
    *out = strtod(buf, &end);
    return end == buf || *end ? -1 : 0;
  }
  int neg = n && v[0] == '-';
  if (n && (v[0] == '-' || v[0] == '+')) v++, n--;
  double d;
  int64_t ns;
  if (unit == 1) {
    if (sw_lq_parse_duration(v, n, &ns)) return -1;
    d = (double)ns / 1e9;
  } else if (sw_lq_parse_bytes(v, n, &d)) {
    return -1;
  }
  *out = neg ? -d : d;
  return 0;
}

static int render(const struct sw_lq_tmpl *t, const struct sw_lq_labels *l, const char *line, size_t len,
                  struct sw_buf *out) {
  sw_buf_reset(out);
  for (size_t i = 0; i < t->n; i++) {
    const struct sw_lq_tpart *p = &t->parts[i];
    int rc;
    if (!p->is_ref) {
      rc = sw_buf_append(out, p->text, strlen(p->text));
    } else if (!strcmp(p->text, "__line__")) {
      rc = sw_buf_append(out, line, len);
    } else {
      size_t n = 0;
      const char *v = sw_lq_labels_get(l, p->text, &n);
      rc = v ? sw_buf_append(out, v, n) : 0;
    }
    if (rc) return SW_ENOMEM;
  }
  return SW_OK;
}

static int stage_label_format(struct sw_lq_labels *l, struct sw_lq_scratch *s, const struct sw_lq_stage *st,
                              const char *line, size_t len) {
  int rc = 0;
  for (size_t i = 0; !rc && i < st->nitems; i++) {
    const struct sw_lq_item *it = &st->items[i];
    if (it->is_tmpl) {
      rc = render(&it->tmpl, l, line, len, &s->tmp) || sw_lq_labels_set(l, it->name, s->tmp.data ? s->tmp.data : "", s->tmp.len);
      continue;
    }
    size_t n = 0;
    const char *v = sw_lq_labels_get(l, it->src, &n);
    sw_buf_reset(&s->tmp);
    if (v) rc = sw_buf_append(&s->tmp, v, n);
    if (!rc) rc = sw_lq_labels_set(l, it->name, s->tmp.data ? s->tmp.data : "", s->tmp.len);
  }
  /* a rename moves the label: its source goes unless another item set it */
  for (size_t i = 0; !rc && i < st->nitems; i++) {
    const struct sw_lq_item *it = &st->items[i];
    if (it->is_tmpl || !strcmp(it->src, it->name)) continue;
    int target = 0;
    for (size_t j = 0; j < st->nitems; j++) target |= !strcmp(st->items[j].name, it->src);
    if (!target) sw_lq_labels_del(l, it->src);
  }
  return rc ? SW_ENOMEM : SW_OK;
}

static void stage_drop_keep(struct sw_lq_labels *l, const struct sw_lq_stage *st, void *md) {
  for (size_t i = l->n; i-- > 0;) {
    const char *name = at(l, l->name[i]);
    int listed = 0;
    for (size_t j = 0; j < st->nitems && !listed; j++) {
      const struct sw_lq_item *it = &st->items[j];
      if (strcmp(it->name, name)) continue;
      listed = !it->has_m || sw_label_match_test(&it->m, at(l, l->value[i]), l->vlen[i], md);
    }
    int drop = st->kind == SW_LQ_DROP ? listed : !listed && strcmp(name, "__error__") && strcmp(name, "__error_details__");
    if (drop) sw_lq_labels_del(l, name);
  }
}

/* skip_lines: the line filters are not run (sw_lq_eval_labels). */
static int eval(const struct sw_lq_log *log, struct sw_lq_scratch *s, struct sw_lq_labels *l, const char **line,
                size_t *len, int skip_lines);

int sw_lq_eval(const struct sw_lq_log *log, struct sw_lq_scratch *s, struct sw_lq_labels *l, const char **line,
               size_t *len) {
  return eval(log, s, l, line, len, 0);
}

int sw_lq_labels_fixed(const struct sw_lq_log *log) {
  for (size_t i = 0; i < log->nst; i++) {
    enum sw_lq_stage_kind k = log->st[i].kind;
    if (k != SW_LQ_LINE_FILTER && k != SW_LQ_LABEL_FILTER && k != SW_LQ_DROP && k != SW_LQ_KEEP) return 0;
  }
  return 1;
}

int sw_lq_eval_labels(const struct sw_lq_log *log, struct sw_lq_scratch *s, struct sw_lq_labels *l) {
  const char *line = "";
  size_t len = 0;
  return eval(log, s, l, &line, &len, 1);
}

int sw_lq_line_pass(const struct sw_lq_log *log, struct sw_lq_scratch *s, const char *line, size_t len) {
  for (size_t i = 0; i < log->nst; i++)
    if (log->st[i].kind == SW_LQ_LINE_FILTER && !line_filter(&log->st[i], line, len, s->md)) return 0;
  return 1;
}

static int eval(const struct sw_lq_log *log, struct sw_lq_scratch *s, struct sw_lq_labels *l, const char **line,
                size_t *len, int skip_lines) {
  for (size_t i = 0; i < log->nsel; i++) {
    size_t n = 0;
    const char *v = sw_lq_labels_get(l, log->sel[i].key, &n);
    if (!sw_label_match_test(&log->sel[i], v, v ? n : 0, s->md)) return 0;
  }
  const char *ln = *line;
  size_t lnlen = *len;
  for (size_t i = 0; i < log->nst; i++) {
    const struct sw_lq_stage *st = &log->st[i];
    int rc = 0;
    switch (st->kind) {
      case SW_LQ_LINE_FILTER:
        if (!skip_lines && !line_filter(st, ln, lnlen, s->md)) return 0;
        break;
      case SW_LQ_JSON: rc = stage_json(l, s, ln, lnlen); break;
      case SW_LQ_LOGFMT: rc = stage_logfmt(l, s, ln, lnlen); break;
      case SW_LQ_REGEXP: rc = stage_regexp(l, s, st, ln, lnlen); break;
      case SW_LQ_LABEL_FILTER: {
        int err = 0;
        if (!lexpr_eval(st->lf, l, s->md, &err)) return 0;
        if (err && !sw_lq_labels_get(l, "__error__", NULL)) rc = sw_lq_labels_set(l, "__error__", "LabelFilterErr", 14);
        break;
      }
      case SW_LQ_LINE_FORMAT: {
        /* render into tmp, then swap with line: the template may read the current line */
        if ((rc = render(&st->tmpl, l, ln, lnlen, &s->tmp))) break;
        struct sw_buf t = s->line;
        s->line = s->tmp;
        s->tmp = t;
        ln = s->line.data ? s->line.data : "";
        lnlen = s->line.len;
        break;
      }
      case SW_LQ_LABEL_FORMAT: rc = stage_label_format(l, s, st, ln, lnlen); break;
      case SW_LQ_DROP: case SW_LQ_KEEP: stage_drop_keep(l, st, s->md); break;
    }
    if (rc) return rc < 0 ? rc : -rc;
  }
  *line = ln;
  *len = lnlen;
  return 1;
}
