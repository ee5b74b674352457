/* process.c - see process.h. */
#include "process.h"

#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../common/buf.h"
#include "../../common/hash.h"
#include "../../parsers/extract.h"
#include "../../parsers/labelmatch.h"
#include "../../parsers/regex.h"
#include "strmap.h"

#define MAX_BUCKETS 10000
#define NS 1000000000ULL

/* ---- what a source extracts ---- */

int sw_process_extract_spec(const struct sw_extract_conf *x, struct sw_extract_spec *sp) {
  memset(sp, 0, sizeof *sp);
  sp->format = (enum sw_extract_format)x->format;
  sp->normalize_level = x->normalize_level;
  sp->level_at = -1;
  if (x->format == SW_EXTRACT_REGEX) {
    if (!x->pattern) return SW_OK;
    pcre2_code *re = sw_re_compile(x->pattern, 0, NULL, 0, NULL);
    if (!re) return SW_EINVAL;
    sp->re = re;
    if (sw_extract_regex_names(sp) != SW_OK) {
      pcre2_code_free(re);
      memset(sp, 0, sizeof *sp);
      return SW_EINVAL;
    }
    return SW_OK;
  }
  sp->n = x->nfields < SW_EXTRACT_MAX_FIELDS ? x->nfields : SW_EXTRACT_MAX_FIELDS;
  for (size_t k = 0; k < sp->n; k++) {
    sp->name[k] = x->fields[k].key;
    sp->path[k] = x->fields[k].value;
    if (!strcmp(sp->name[k], "level")) sp->level_at = (int)k;
  }
  return SW_OK;
}

/* ---- compiled configuration ---- */

struct cond { /* match + line of a filter or metric */
  struct sw_label_match *m;
  size_t *mref; /* the name index (sw_process.names) of each matcher's label */
  size_t nm;
  pcre2_code *line;
};

struct filter {
  const struct sw_filter_conf *c;
  struct cond cond;
  size_t *pref; /* name indices of `per` */
  struct sw__strmap buckets;
  struct sw__strmap_entry overflow; /* the bucket of keys past MAX_BUCKETS */
  int overflow_used;
  uint64_t matched, removed;
};

struct metric {
  const struct sw_log_metric_conf *c;
  struct cond cond;
  size_t *lref; /* name indices of `labels` */
  struct sw__strmap series;
  uint64_t overflow;
};

struct source {
  struct sw_extract_spec spec; /* n == 0: no extraction */
  pcre2_match_data *md;
  int *nx; /* per name of sw_process.names: the field of spec that extracts it, -1: none */
  /* last raw -> redacted value per field: `level` repeats, so it is redacted once */
  struct sw_buf last_raw[SW_EXTRACT_MAX_FIELDS], last_red[SW_EXTRACT_MAX_FIELDS];
};

struct sw_process {
  struct source *src;
  size_t nsrc;
  struct filter *f;
  size_t nf;
  struct metric *mt;
  size_t nmt;
  pcre2_match_data *md; /* for line patterns and label regexes (one thread) */
  struct sw_extract_out ex;
  const char *val[SW_EXTRACT_MAX_FIELDS]; /* the record's extracted values, redacted */
  size_t vlen[SW_EXTRACT_MAX_FIELDS];
  struct sw_buf xl, key;
  /* Every label name a matcher, `per` or metric label refers to, once: a file resolves each to
   * its extracted field or its own value when its labels change, not per record. */
  char **names;
  size_t nnames;
};

/* Verdict of a condition's label matchers on a file: */
enum { V_NO = 0, V_YES = 1, V_RECORD = 2 };

struct fval {
  char *s; /* the file's value of a name, NULL: it has none */
  size_t n;
};

struct sw_process_file {
  struct source *sx;
  struct fval *val; /* per name of sw_process.names */
  size_t nval;
  uint8_t *fv, *mv; /* verdict per filter, per metric */
};

static int name_index(struct sw_process *p, const char *name, size_t *out) {
  for (size_t i = 0; i < p->nnames; i++)
    if (!strcmp(p->names[i], name)) {
      *out = i;
      return SW_OK;
    }
  char **nn = realloc(p->names, (p->nnames + 1) * sizeof *nn);
  if (!nn) return SW_ENOMEM;
  p->names = nn;
  if (!(nn[p->nnames] = strdup(name))) return SW_ENOMEM;
  *out = p->nnames++;
  return SW_OK;
}

static int name_indices(struct sw_process *p, char **names, size_t n, size_t **out) {
  if (!(*out = calloc(n + 1, sizeof **out))) return SW_ENOMEM;
  for (size_t i = 0; i < n; i++)
    if (name_index(p, names[i], &(*out)[i])) return SW_ENOMEM;
  return SW_OK;
}

static int cond_init(struct sw_process *p, struct cond *c, char **match, size_t nmatch, const char *line,
                     char *err, size_t errlen) {
  if (!(c->m = calloc(nmatch + 1, sizeof *c->m)) || !(c->mref = calloc(nmatch + 1, sizeof *c->mref)))
    return SW_ENOMEM;
  for (size_t i = 0; i < nmatch; i++) {
    int rc = sw_label_match_parse(&c->m[i], match[i], err, errlen);
    if (rc) return rc;
    c->nm++;
    if (name_index(p, c->m[i].key, &c->mref[i])) return SW_ENOMEM;
  }
  if (line && !(c->line = sw_re_compile(line, 0, NULL, 0, NULL))) {
    snprintf(err, errlen, "line: does not compile");
    return SW_EINVAL;
  }
  return SW_OK;
}

static void cond_free(struct cond *c) {
  for (size_t i = 0; i < c->nm; i++) sw_label_match_free(&c->m[i]);
  free(c->m);
  free(c->mref);
  pcre2_code_free(c->line);
}

void sw_process_destroy(struct sw_process *p) {
  if (!p) return;
  for (size_t i = 0; i < p->nsrc; i++) {
    pcre2_code_free(p->src[i].spec.re);
    pcre2_match_data_free(p->src[i].md);
    free(p->src[i].nx);
    for (int k = 0; k < SW_EXTRACT_MAX_FIELDS; k++) {
      sw_buf_free(&p->src[i].last_raw[k]);
      sw_buf_free(&p->src[i].last_red[k]);
    }
  }
  free(p->src);
  for (size_t i = 0; i < p->nf; i++) {
    cond_free(&p->f[i].cond);
    free(p->f[i].pref);
    sw__strmap_free(&p->f[i].buckets);
  }
  free(p->f);
  for (size_t i = 0; i < p->nmt; i++) {
    cond_free(&p->mt[i].cond);
    free(p->mt[i].lref);
    sw__strmap_free(&p->mt[i].series);
  }
  free(p->mt);
  for (size_t i = 0; i < p->nnames; i++) free(p->names[i]);
  free(p->names);
  pcre2_match_data_free(p->md);
  sw_buf_free(&p->xl);
  sw_buf_free(&p->key);
  free(p);
}

int sw_process_create(const struct sw_config *cfg, struct sw_process **out, char *err, size_t errlen) {
  *out = NULL;
  int any = cfg->nfilters || cfg->nlog_metrics;
  for (size_t i = 0; i < cfg->nsources; i++)
    any |= cfg->sources[i].extract.nfields || cfg->sources[i].extract.pattern;
  if (!any) return SW_OK;
  struct sw_process *p = calloc(1, sizeof *p);
  if (!p) return SW_ENOMEM;
  sw_buf_init(&p->xl, SIZE_MAX);
  sw_buf_init(&p->key, SIZE_MAX);
  int rc = SW_ENOMEM;
  p->src = calloc(cfg->nsources ? cfg->nsources : 1, sizeof *p->src);
  p->f = calloc(cfg->nfilters ? cfg->nfilters : 1, sizeof *p->f);
  p->mt = calloc(cfg->nlog_metrics ? cfg->nlog_metrics : 1, sizeof *p->mt);
  p->md = pcre2_match_data_create(32, NULL);
  if (!p->src || !p->f || !p->mt || !p->md) goto fail;
  p->nsrc = cfg->nsources;
  for (size_t i = 0; i < cfg->nsources; i++) {
    const struct sw_extract_conf *x = &cfg->sources[i].extract;
    struct sw_extract_spec *sp = &p->src[i].spec;
    for (int k = 0; k < SW_EXTRACT_MAX_FIELDS; k++) {
      sw_buf_init(&p->src[i].last_raw[k], SIZE_MAX);
      sw_buf_init(&p->src[i].last_red[k], SIZE_MAX);
    }
    if (sw_process_extract_spec(x, sp) ||
        (sp->re && !(p->src[i].md = pcre2_match_data_create_from_pattern(sp->re, NULL)))) {
      snprintf(err, errlen, "sources[%zu].extract.pattern: cannot be used", i);
      rc = SW_EINVAL;
      goto fail;
    }
  }
  for (size_t i = 0; i < cfg->nfilters; i++) {
    const struct sw_filter_conf *fc = &cfg->filters[i];
    p->f[i].c = fc;
    p->nf++;
    char e[256];
    if ((rc = cond_init(p, &p->f[i].cond, fc->match, fc->nmatch, fc->line, e, sizeof e))) {
      snprintf(err, errlen, "filters[%zu]: %s", i, e);
      goto fail;
    }
    if ((rc = name_indices(p, fc->per, fc->nper, &p->f[i].pref))) goto fail;
  }
  for (size_t i = 0; i < cfg->nlog_metrics; i++) {
    const struct sw_log_metric_conf *mc = &cfg->log_metrics[i];
    p->mt[i].c = mc;
    p->nmt++;
    char e[256];
    if ((rc = cond_init(p, &p->mt[i].cond, mc->match, mc->nmatch, mc->line, e, sizeof e))) {
      snprintf(err, errlen, "log_metrics[%zu]: %s", i, e);
      goto fail;
    }
    if ((rc = name_indices(p, mc->labels, mc->nlabels, &p->mt[i].lref))) goto fail;
  }
  for (size_t i = 0; i < p->nsrc; i++) { /* every name is known now */
    struct source *sx = &p->src[i];
    rc = SW_ENOMEM;
    if (!(sx->nx = calloc(p->nnames + 1, sizeof *sx->nx))) goto fail;
    for (size_t n = 0; n < p->nnames; n++) {
      sx->nx[n] = -1;
      for (size_t k = 0; k < sx->spec.n; k++)
        if (!strcmp(sx->spec.name[k], p->names[n])) sx->nx[n] = (int)k;
    }
  }
  *out = p;
  return SW_OK;
fail:
  sw_process_destroy(p);
  return rc;
}

/* ---- per file ---- */

static void free_values(struct sw_process_file *pf) {
  for (size_t n = 0; pf->val && n < pf->nval; n++) {
    free(pf->val[n].s);
    pf->val[n].s = NULL;
  }
}

void sw_process_file_free(struct sw_process_file *pf) {
  if (!pf) return;
  free_values(pf);
  free(pf->val);
  free(pf->fv);
  free(pf->mv);
  free(pf);
}

static uint8_t file_verdict(struct sw_process *p, const struct sw_process_file *pf, const struct cond *c) {
  uint8_t v = V_YES;
  for (size_t i = 0; i < c->nm; i++) {
    if (pf->sx->nx[c->mref[i]] >= 0) {
      v = V_RECORD;
      continue;
    }
    const struct fval *f = &pf->val[c->mref[i]];
    if (!sw_label_match_test(&c->m[i], f->s, f->n, p->md)) return V_NO;
  }
  return v;
}

int sw_process_file_labels(struct sw_process *p, struct sw_process_file *pf, const char *labels_json) {
  free_values(pf);
  size_t len = labels_json ? strlen(labels_json) : 0;
  char v[4096];
  for (size_t n = 0; n < p->nnames; n++) {
    long l = sw_label_lookup(labels_json, len, p->names[n], v, sizeof v);
    if (l >= 0 && !(pf->val[n].s = strndup(v, (size_t)l))) return SW_ENOMEM;
    pf->val[n].n = l >= 0 ? (size_t)l : 0;
  }
  for (size_t i = 0; i < p->nf; i++) pf->fv[i] = file_verdict(p, pf, &p->f[i].cond);
  for (size_t i = 0; i < p->nmt; i++) pf->mv[i] = file_verdict(p, pf, &p->mt[i].cond);
  return SW_OK;
}

struct sw_process_file *sw_process_file_new(struct sw_process *p, size_t src_index, const char *labels_json) {
  struct sw_process_file *pf = calloc(1, sizeof *pf);
  if (!pf) return NULL;
  pf->sx = &p->src[src_index < p->nsrc ? src_index : 0];
  pf->fv = calloc(p->nf + 1, 1);
  pf->mv = calloc(p->nmt + 1, 1);
  pf->val = calloc(p->nnames + 1, sizeof *pf->val);
  pf->nval = p->nnames;
  if (!pf->fv || !pf->mv || !pf->val || sw_process_file_labels(p, pf, labels_json)) {
    sw_process_file_free(pf);
    return NULL;
  }
  return pf;
}

/* ---- per record ---- */

/* The record's value of name n (extracted first, then the file's); NULL when missing. */
static const char *rec_label(const struct sw_process *p, const struct sw_process_file *pf, size_t n,
                             size_t *len) {
  int x = pf->sx->nx[n];
  if (x >= 0 && p->val[x]) {
    *len = p->vlen[x];
    return p->val[x];
  }
  *len = pf->val[n].n;
  return pf->val[n].s;
}

static int cond_holds(struct sw_process *p, const struct sw_process_file *pf, const struct cond *c, uint8_t v,
                      const char *line, size_t len) {
  if (v == V_NO) return 0;
  for (size_t i = 0; v == V_RECORD && i < c->nm; i++) {
    if (pf->sx->nx[c->mref[i]] < 0) continue; /* decided per file */
    size_t n;
    const char *s = rec_label(p, pf, c->mref[i], &n);
    if (!sw_label_match_test(&c->m[i], s, n, p->md)) return 0;
  }
  return !c->line || pcre2_match(c->line, (PCRE2_SPTR)line, len, 0, 0, p->md, NULL) >= 0;
}

/* key of the record's values of names refs[n] (missing: "unknown"), joined by '\x1f', in p->key. */
static int values_key(struct sw_process *p, const struct sw_process_file *pf, const size_t *refs, size_t n) {
  sw_buf_reset(&p->key);
  int rc = SW_OK;
  for (size_t i = 0; !rc && i < n; i++) {
    size_t vl;
    const char *v = rec_label(p, pf, refs[i], &vl);
    if (!v) v = "unknown", vl = 7;
    if (i) rc = sw_buf_putc(&p->key, '\x1f');
    if (!rc) rc = sw_buf_append(&p->key, v, vl);
  }
  return rc;
}

static void count_metric(struct sw_process *p, const struct sw_process_file *pf, struct metric *m) {
  if (values_key(p, pf, m->lref, m->c->nlabels)) {
    m->overflow++;
    return;
  }
  int fresh;
  struct sw__strmap_entry *e =
      sw__strmap_get(&m->series, p->key.data ? p->key.data : "", p->key.len, m->c->max_series, &fresh);
  if (!e) {
    m->overflow++;
    return;
  }
  e->count++;
}

/* Token bucket on record time; 1 if the record passes. */
static int bucket_take(struct sw__strmap_entry *e, int fresh, const struct sw_filter_conf *c, int64_t ts) {
  uint64_t cap = c->burst * NS;
  if (fresh) {
    e->count = cap;
    e->last_ts = ts;
  } else if (ts > e->last_ts) {
    uint64_t dt = (uint64_t)(ts - e->last_ts);
    uint64_t room = cap - e->count;
    uint64_t need = room / c->records_per_second + 1; /* past this the bucket is full anyway */
    e->count = dt >= need ? cap : e->count + dt * c->records_per_second;
    if (e->count > cap) e->count = cap;
    e->last_ts = ts;
  }
  if (e->count < NS) return 0;
  e->count -= NS;
  return 1;
}

static int filter_removes(struct sw_process *p, const struct sw_process_file *pf, struct filter *f, uint8_t v,
                          int64_t ts, int own_ts, const char *line, size_t len) {
  const struct sw_filter_conf *c = f->c;
  if (c->action == SW_FILTER_KEEP) {
    if (v == V_NO) return 0;
    /* labels of `match` hold: the line decides */
    struct cond labels_only = f->cond;
    labels_only.line = NULL;
    if (!cond_holds(p, pf, &labels_only, v, line, len)) return 0;
    f->matched++;
    return pcre2_match(f->cond.line, (PCRE2_SPTR)line, len, 0, 0, p->md, NULL) < 0;
  }
  if (!cond_holds(p, pf, &f->cond, v, line, len)) return 0;
  f->matched++;
  switch (c->action) {
  case SW_FILTER_DROP: return 1;
  case SW_FILTER_SAMPLE: {
    uint64_t h = sw_fnv1a(SW_FNV1A_INIT, line, len);
    if (own_ts) {
      uint8_t le[8];
      for (int i = 0; i < 8; i++) le[i] = (uint8_t)((uint64_t)ts >> (8 * i));
      h = sw_fnv1a(h, le, 8);
    }
    return h % c->keep_one_in != 0;
  }
  case SW_FILTER_RATE_LIMIT: {
    int fresh = 0;
    struct sw__strmap_entry *e = NULL;
    if (!values_key(p, pf, f->pref, c->nper))
      e = sw__strmap_get(&f->buckets, p->key.data ? p->key.data : "", p->key.len, MAX_BUCKETS, &fresh);
    if (!e) {
      e = &f->overflow;
      fresh = !f->overflow_used;
      f->overflow_used = 1;
    }
    return !bucket_take(e, fresh, c, ts);
  }
  }
  return 0;
}

/* Extracted values of the record, redacted (one redaction per distinct value in a row). */
static void extract(struct sw_process *p, struct source *sx, struct sw_redact_ctx *rctx, const char *line,
                    size_t len) {
  sw_extract(&sx->spec, line, len, sx->md, &p->ex);
  for (size_t i = 0; i < sx->spec.n; i++) {
    p->val[i] = NULL;
    p->vlen[i] = 0;
    const char *v = p->ex.v[i];
    size_t n = p->ex.len[i];
    if (!v) continue;
    if (!rctx) {
      p->val[i] = v;
      p->vlen[i] = n;
      continue;
    }
    struct sw_buf *raw = &sx->last_raw[i], *red = &sx->last_red[i];
    if (!(raw->len == n + 1 && !memcmp(raw->data, v, n))) {
      const char *r;
      size_t rn;
      (void)sw_redact_line(rctx, v, n, 0, &r, &rn);
      sw_buf_reset(raw);
      sw_buf_reset(red);
      /* the trailing 0 marks "cached" (an empty value is a valid value) */
      if (sw_buf_append(raw, v, n) || sw_buf_putc(raw, 0) || sw_buf_append(red, r, rn) ||
          sw_buf_putc(red, 0)) {
        sw_buf_reset(raw);
        continue; /* out of memory: the label is left out */
      }
    }
    p->val[i] = red->data;
    p->vlen[i] = red->len - 1;
  }
}

static int build_xl(struct sw_process *p, const struct source *sx) {
  sw_buf_reset(&p->xl);
  int rc = SW_OK, any = 0;
  for (size_t i = 0; !rc && i < sx->spec.n; i++) {
    if (!p->val[i]) continue;
    rc = sw_buf_append(&p->xl, any ? ",\"" : "{\"", 2);
    if (!rc) rc = sw_buf_append(&p->xl, sx->spec.name[i], strlen(sx->spec.name[i]));
    if (!rc) rc = sw_buf_append(&p->xl, "\":\"", 3);
    if (!rc) rc = sw_buf_put_json_str(&p->xl, p->val[i], p->vlen[i], NULL);
    if (!rc) rc = sw_buf_putc(&p->xl, '"');
    any = 1;
  }
  if (!rc && any) rc = sw_buf_putc(&p->xl, '}');
  if (rc || !any) p->xl.len = 0;
  return rc;
}

int sw_process_record(struct sw_process *p, struct sw_process_file *pf, struct sw_redact_ctx *rctx, int64_t ts,
                      int own_ts, const char *line, size_t len, const char **xl, size_t *xlen) {
  struct source *sx = pf->sx;
  *xl = NULL;
  *xlen = 0;
  if (sx->spec.n) {
    extract(p, sx, rctx, line, len);
    if (!build_xl(p, sx) && p->xl.len) {
      *xl = p->xl.data;
      *xlen = p->xl.len;
    }
  }
  for (size_t i = 0; i < p->nmt; i++)
    if (cond_holds(p, pf, &p->mt[i].cond, pf->mv[i], line, len)) count_metric(p, pf, &p->mt[i]);
  for (size_t i = 0; i < p->nf; i++)
    if (filter_removes(p, pf, &p->f[i], pf->fv[i], ts, own_ts, line, len)) {
      p->f[i].removed++;
      return 0;
    }
  return 1;
}

/* ---- figures ---- */

size_t sw_process_nfilters(const struct sw_process *p) { return p ? p->nf : 0; }

void sw_process_filter_stats(const struct sw_process *p, size_t i, struct sw_process_filter_stats *out) {
  static const char *const actions[] = {"drop", "keep", "sample", "rate_limit"};
  const struct filter *f = &p->f[i];
  *out = (struct sw_process_filter_stats){.name = f->c->name, .action = actions[f->c->action & 3],
                                          .matched = f->matched, .removed = f->removed};
}

size_t sw_process_nmetrics(const struct sw_process *p) { return p ? p->nmt : 0; }

const struct sw_log_metric_conf *sw_process_metric(const struct sw_process *p, size_t i, uint64_t *overflow) {
  *overflow = p->mt[i].overflow;
  return p->mt[i].c;
}

void sw_process_metric_series(const struct sw_process *p, size_t i,
                              void (*fn)(void *arg, const char *const *values, uint64_t count), void *arg) {
  const struct metric *m = &p->mt[i];
  size_t n = m->c->nlabels;
  const char *vals[n ? n : 1];
  char tmp[8192];
  for (size_t s = 0; s < m->series.n; s++) {
    const struct sw__strmap_entry *e = &m->series.e[s];
    size_t kl = e->klen < sizeof tmp - 1 ? e->klen : sizeof tmp - 1;
    memcpy(tmp, e->key, kl);
    tmp[kl] = 0;
    char *at = tmp;
    for (size_t k = 0; k < n; k++) {
      vals[k] = at;
      char *sep = strchr(at, '\x1f');
      if (sep) {
        *sep = 0;
        at = sep + 1;
      } else {
        at += strlen(at);
      }
    }
    fn(arg, vals, e->count);
  }
}
