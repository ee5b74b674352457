/* promtext.c - Prometheus text exposition writer (see http/promtext.h). */
#include "promtext.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_LABELS 8

static void fail(struct sw_prom *p, int rc) {
  if (!p->err) p->err = rc;
}

void sw_prom_init(struct sw_prom *p, struct sw_buf *out) {
  memset(p, 0, sizeof *p);
  p->out = out;
}

void sw_prom_free(struct sw_prom *p) {
  free(p->seen);
  p->seen = NULL;
  p->nseen = p->cap = 0;
}

static int valid_name(const char *s, int colon) {
  if (!*s) return 0;
  for (const char *c = s; *c; c++) {
    int alpha = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || *c == '_' || (colon && *c == ':');
    if (!alpha && !(c > s && *c >= '0' && *c <= '9')) return 0;
  }
  return 1;
}

static uint64_t fnv(uint64_t h, const char *s) {
  for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ULL;
  return (h ^ 0xff) * 1099511628211ULL; /* field separator: "a","bc" differs from "ab","c" */
}

/* Adds h to the set; returns 1 if it was there already, 0 if added, <0 on error. */
static int seen_add(struct sw_prom *p, uint64_t h) {
  if (h == 0) h = 1;
  if ((p->nseen + 1) * 2 > p->cap) {
    size_t ncap = p->cap ? p->cap * 2 : 256;
    uint64_t *n = calloc(ncap, sizeof *n);
    if (!n) return SW_ENOMEM;
    for (size_t i = 0; i < p->cap; i++) {
      if (!p->seen[i]) continue;
      size_t j = p->seen[i] & (ncap - 1);
      while (n[j]) j = (j + 1) & (ncap - 1);
      n[j] = p->seen[i];
    }
    free(p->seen);
    p->seen = n;
    p->cap = ncap;
  }
  size_t j = h & (p->cap - 1);
  while (p->seen[j]) {
    if (p->seen[j] == h) return 1;
    j = (j + 1) & (p->cap - 1);
  }
  p->seen[j] = h;
  p->nseen++;
  return 0;
}

/* Appends s escaped: backslash and newline always, the double quote only in label values. */
static int put_escaped(struct sw_buf *b, const char *s, int quote) {
  int rc = SW_OK;
  for (; *s && !rc; s++) {
    if (*s == '\\') rc = sw_buf_append(b, "\\\\", 2);
    else if (*s == '\n') rc = sw_buf_append(b, "\\n", 2);
    else if (*s == '"' && quote) rc = sw_buf_append(b, "\\\"", 2);
    else rc = sw_buf_putc(b, *s);
  }
  return rc;
}

void sw_prom_family(struct sw_prom *p, const char *name, enum sw_prom_type type, const char *help) {
  if (p->err) return;
  if (!valid_name(name, 1) || strlen(name) >= sizeof p->family) {
    fail(p, SW_EINVAL);
    return;
  }
  int dup = seen_add(p, fnv(fnv(14695981039346656037ULL, "#family"), name));
  if (dup) {
    fail(p, dup < 0 ? dup : SW_EINVAL);
    return;
  }
  static const char *const types[] = {"counter", "gauge", "histogram"};
  snprintf(p->family, sizeof p->family, "%s", name);
  p->type = type;
  int rc = sw_buf_printf(p->out, "# HELP %s ", name);
  if (!rc) rc = put_escaped(p->out, help, 0);
  if (!rc) rc = sw_buf_printf(p->out, "\n# TYPE %s %s\n", name, types[type]);
  if (rc) fail(p, rc);
}

/* Writes "name{labels} " and registers the series; returns 1 for a duplicate (skipped). */
static int series(struct sw_prom *p, const char *suffix, const struct sw_prom_label *l, size_t n) {
  if (p->err) return -1;
  if (!p->family[0]) return fail(p, SW_EINVAL), -1;
  uint64_t h = fnv(fnv(14695981039346656037ULL, p->family), suffix);
  for (size_t i = 0; i < n; i++) {
    if (!l[i].name || !l[i].value || !valid_name(l[i].name, 0) || !strncmp(l[i].name, "__", 2))
      return fail(p, SW_EINVAL), -1;
    h = fnv(fnv(h, l[i].name), l[i].value);
  }
  int dup = seen_add(p, h);
  if (dup < 0) return fail(p, dup), -1;
  if (dup) {
    p->duplicates++;
    return 1;
  }
  int rc = sw_buf_printf(p->out, "%s%s", p->family, suffix);
  for (size_t i = 0; i < n && !rc; i++) {
    rc = sw_buf_printf(p->out, "%s%s=\"", i ? "," : "{", l[i].name);
    if (!rc) rc = put_escaped(p->out, l[i].value, 1);
    if (!rc) rc = sw_buf_putc(p->out, '"');
  }
  if (!rc && n) rc = sw_buf_putc(p->out, '}');
  if (!rc) rc = sw_buf_putc(p->out, ' ');
  if (rc) return fail(p, rc), -1;
  return 0;
}

void sw_prom_sample(struct sw_prom *p, const char *suffix, const struct sw_prom_label *labels,
                    size_t n, double v) {
  if (series(p, suffix, labels, n)) return;
  char num[40];
  if (isnan(v)) snprintf(num, sizeof num, "NaN");
  else if (isinf(v)) snprintf(num, sizeof num, "%s", v > 0 ? "+Inf" : "-Inf");
  else {
    /* The shortest of %.15g and %.17g that reads back as v. */
    snprintf(num, sizeof num, "%.15g", v);
    if (strtod(num, NULL) != v) snprintf(num, sizeof num, "%.17g", v);
  }
  int rc = sw_buf_printf(p->out, "%s\n", num);
  if (rc) fail(p, rc);
}

void sw_prom_sample_u64(struct sw_prom *p, const char *suffix, const struct sw_prom_label *labels,
                        size_t n, uint64_t v) {
  if (series(p, suffix, labels, n)) return;
  int rc = sw_buf_printf(p->out, "%llu\n", (unsigned long long)v);
  if (rc) fail(p, rc);
}

void sw_prom_histogram(struct sw_prom *p, const struct sw_prom_label *labels, size_t n,
                       const double *bounds, const uint64_t *counts, size_t nb, double sum) {
  if (p->err) return;
  if (n >= MAX_LABELS) {
    fail(p, SW_EINVAL);
    return;
  }
  struct sw_prom_label l[MAX_LABELS];
  memcpy(l, labels, n * sizeof *l);
  char le[40];
  l[n].name = "le";
  l[n].value = le;
  uint64_t cum = 0;
  for (size_t i = 0; i <= nb; i++) {
    cum += counts[i];
    if (i < nb) snprintf(le, sizeof le, "%.15g", bounds[i]);
    else snprintf(le, sizeof le, "+Inf");
    sw_prom_sample_u64(p, "_bucket", l, n + 1, cum);
  }
  sw_prom_sample(p, "_sum", labels, n, sum);
  sw_prom_sample_u64(p, "_count", labels, n, cum);
}

int sw_prom_finish(const struct sw_prom *p) { return p->err; }

static char *skip_name(char *s, int colon) {
  while ((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || *s == '_' ||
         (*s >= '0' && *s <= '9') || (colon && *s == ':'))
    s++;
  return s;
}

/* Unescapes the quoted value starting after its opening quote, in place; returns the byte after
 * the closing quote, or NULL. */
static char *unquote(char *s) {
  char *w = s;
  for (; *s && *s != '"'; s++) {
    if (*s == '\\') {
      s++;
      if (*s == 'n') *w++ = '\n';
      else if (*s == '\\' || *s == '"') *w++ = *s;
      else return NULL;
    } else {
      *w++ = *s;
    }
  }
  if (*s != '"') return NULL;
  *w = 0;
  return s + 1;
}

int sw_prom_parse_line(char *line, struct sw_prom_parsed *out) {
  memset(out, 0, sizeof *out);
  while (*line == ' ' || *line == '\t') line++;
  if (*line == '#' || *line == 0 || *line == '\n') return 1;
  char *end = skip_name(line, 1);
  if (end == line || (*line >= '0' && *line <= '9') || (*end != '{' && *end != ' ')) return SW_EPARSE;
  out->name = line;
  char *p = end;
  if (*p == '{') {
    *p++ = 0;
    while (*p != '}') {
      if (out->nlabels == SW_PROM_MAX_LABELS) return SW_EPARSE;
      char *ln = p;
      p = skip_name(p, 0);
      if (p == ln || (*ln >= '0' && *ln <= '9') || p[0] != '=' || p[1] != '"') return SW_EPARSE;
      *p = 0;
      char *val = p + 2;
      if (!(p = unquote(val))) return SW_EPARSE;
      out->labels[out->nlabels].name = ln;
      out->labels[out->nlabels++].value = val;
      if (*p == ',') p++;
      else if (*p != '}') return SW_EPARSE;
    }
    p++;
    if (*p != ' ') return SW_EPARSE;
  } else {
    *p = 0; /* the name ends here; the value follows the space */
  }
  p++;
  while (*p == ' ') p++;
  if (!strncmp(p, "+Inf", 4)) out->value = INFINITY;
  else if (!strncmp(p, "-Inf", 4)) out->value = -INFINITY;
  else if (!strncmp(p, "NaN", 3)) out->value = NAN;
  else {
    char *e;
    out->value = strtod(p, &e);
    if (e == p) return SW_EPARSE;
  }
  return 0;
}

const char *sw_prom_label_value(const struct sw_prom_parsed *s, const char *name) {
  for (size_t i = 0; i < s->nlabels; i++)
    if (!strcmp(s->labels[i].name, name)) return s->labels[i].value;
  return NULL;
}
