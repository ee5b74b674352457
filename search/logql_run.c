/* logql_run.c - LogQL over the buffer (see logql_run.h): the scan, the pipeline per hit, and
 * the collection of log entries, series steps and distinct label sets. */
#include "logql_run.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../agent/buffer/buffer.h"
#include "../common/hash.h"
#include "../common/timefmt.h"
#include "../parsers/record.h"
#include "logql_int.h"
#include "search.h"

/* ---- a table of label sets (canonical JSON) ---- */

struct set {
  char *key;
  size_t len;
  uint64_t hash;
  size_t order; /* first appearance in the answer's direction (log queries) */
  size_t head, tail; /* entry list (log queries), SIZE_MAX: none */
  int32_t *cnt;      /* metric: difference arrays over the steps (nsteps + 1) */
  double *val;
};

struct table {
  struct set *v;
  size_t n, cap;
  size_t *slot; /* index + 1, 0: free */
  size_t nslot;
};

static void table_free(struct table *t) {
  for (size_t i = 0; i < t->n; i++) {
    free(t->v[i].key);
    free(t->v[i].cnt);
    free(t->v[i].val);
  }
  free(t->v);
  free(t->slot);
  memset(t, 0, sizeof *t);
}

/* The set's index, adding it when new (*added = 1); -1 on ENOMEM. */
static long table_get(struct table *t, const char *key, size_t len, int *added) {
  uint64_t h = sw_fnv1a(SW_FNV1A_INIT, key, len);
  *added = 0;
  if (t->nslot) {
    for (size_t i = h & (t->nslot - 1);; i = (i + 1) & (t->nslot - 1)) {
      size_t s = t->slot[i];
      if (!s) break;
      struct set *e = &t->v[s - 1];
      if (e->hash == h && e->len == len && !memcmp(e->key, key, len)) return (long)(s - 1);
    }
  }
  if ((t->n + 1) * 2 > t->nslot) { /* grow and rehash */
    size_t ns = t->nslot ? t->nslot * 2 : 64;
    size_t *slot = calloc(ns, sizeof *slot);
    if (!slot) return -1;
    for (size_t k = 0; k < t->n; k++) {
      size_t i = t->v[k].hash & (ns - 1);
      while (slot[i]) i = (i + 1) & (ns - 1);
      slot[i] = k + 1;
    }
    free(t->slot);
    t->slot = slot;
    t->nslot = ns;
  }
  if (sw_grow(&t->v, t->n, &t->cap, sizeof *t->v, 16)) return -1;
  struct set *e = &t->v[t->n];
  memset(e, 0, sizeof *e);
  if (!(e->key = malloc(len + 1))) return -1;
  memcpy(e->key, key, len);
  e->key[len] = 0;
  e->len = len, e->hash = h, e->head = e->tail = SIZE_MAX, e->order = SIZE_MAX;
  size_t i = h & (t->nslot - 1);
  while (t->slot[i]) i = (i + 1) & (t->nslot - 1);
  t->slot[i] = ++t->n;
  *added = 1;
  return (long)(t->n - 1);
}

/* ---- the run ---- */

enum mode { M_LOG, M_METRIC, M_SERIES, M_FOLLOW };

struct entry {
  size_t set, next;
  int64_t ts;
  char *line;
  size_t len;
};

struct run {
  enum mode mode;
  const struct sw_lq_log *log; /* NULL: every entry (series mode) */
  const struct sw_lq_params *p;
  struct sw_lq_scratch s;
  struct sw_lq_labels base, l;
  int64_t base_chunk;
  struct sw_buf key;
  struct table sets;
  size_t max_sets;
  /* log queries: entries; backward keeps a ring of the last `limit` */
  struct entry *ents;
  size_t nents, ring_head;
  int64_t last_ts;
  int have_last;
  /* metric queries */
  const struct sw_lq_metric *range; /* the range aggregation */
  const struct sw_lq_metric *group; /* a `sum` right above it: series are its groups already */
  size_t nsteps;
  int64_t step0, step; /* the first evaluation time and the step */
  /* series mode */
  int (*series_fn)(void *arg, const char *labels, size_t len);
  /* follow mode */
  int (*follow_fn)(void *arg, const char *labels, size_t llen, int64_t ts, const char *line, size_t len);
  void (*follow_flush)(void *arg);
  void *arg;
  uint64_t lines, bytes, entries;
  /* sw_lq_labels_fixed: the pipeline's label half runs once per label set (the last one) */
  int fixed, c_valid, c_stream, c_flags;
  int64_t c_chunk;
  struct sw_buf c_xl;
  long c_set; /* -1: that label set is dropped */
  /* counting whole chunks from their columns (on_plan) */
  int fast;
  int64_t scan_start, scan_end;
  uint64_t fast_chunks;
  int rc;
  char *err;
  size_t errlen;
};

static const char *const k_streams[4] = {"stdout", "stderr", "file", "stdout"};

static int copy_labels(struct sw_lq_labels *d, const struct sw_lq_labels *s) {
  d->n = s->n;
  memcpy(d->name, s->name, s->n * sizeof s->name[0]);
  memcpy(d->value, s->value, s->n * sizeof s->value[0]);
  memcpy(d->vlen, s->vlen, s->n * sizeof s->vlen[0]);
  sw_buf_reset(&d->arena);
  return s->arena.len ? sw_buf_append(&d->arena, s->arena.data, s->arena.len) : 0;
}

/* The entry's stream labels, as the Loki sink would send them (without its static labels). */
static int entry_labels(struct run *r, const struct sw_search_hit *h) {
  if (h->chunk_id != r->base_chunk) {
    sw_lq_labels_reset(&r->base);
    if (sw_lq_labels_add_json(&r->base, h->labels_json, strlen(h->labels_json))) return SW_ENOMEM;
    r->base_chunk = h->chunk_id;
  }
  int rc = copy_labels(&r->l, &r->base);
  if (!rc && h->rec.xl) rc = sw_lq_labels_add_json(&r->l, h->rec.xl, h->rec.xl_len);
  const char *st = k_streams[h->rec.stream & 3];
  if (!rc) rc = sw_lq_labels_set(&r->l, "stream", st, strlen(st));
  if (!rc && (h->rec.flags & SW_REC_PARSE_ERROR)) {
    const char *f = h->format ? h->format : "unknown";
    rc = sw_lq_labels_set(&r->l, "parse_error", f, strlen(f));
  }
  if (!rc && (h->rec.flags & SW_REC_TRUNCATED)) rc = sw_lq_labels_set(&r->l, "truncated", "true", 4);
  return rc ? SW_ENOMEM : SW_OK;
}

static int fail(struct run *r, int rc, const char *msg) {
  r->rc = rc;
  if (msg) snprintf(r->err, r->errlen, "%s", msg);
  return 1;
}

/* sum by/without of a range aggregation adds up the series of each group, so only the group's
 * labels need to be told apart while counting: what Loki does too, and what keeps a query
 * like sum by (level) (count_over_time({...} | json [1m])) within the series limit. */
static void group_labels(struct sw_lq_labels *l, const struct sw_lq_metric *g) {
  for (size_t i = l->n; i-- > 0;) {
    const char *name = l->arena.data + l->name[i];
    int listed = 0;
    for (size_t k = 0; k < g->ngroup && !listed; k++) listed = !strcmp(g->group[k], name);
    if (g->without ? listed : !listed) sw_lq_labels_del(l, name);
  }
}

static long set_of(struct run *r) {
  if (r->group) group_labels(&r->l, r->group);
  sw_buf_reset(&r->key);
  if (sw_lq_labels_json(&r->l, &r->key)) return fail(r, SW_ENOMEM, "out of memory"), -1;
  int added;
  long i = table_get(&r->sets, r->key.data, r->key.len, &added);
  if (i < 0) return fail(r, SW_ENOMEM, "out of memory"), -1;
  if (added && r->max_sets && r->sets.n > r->max_sets) {
    char msg[128];
    snprintf(msg, sizeof msg, "maximum of series (%zu) reached for a single query", r->max_sets);
    return fail(r, SW_EINVAL, msg), -1;
  }
  if (added && r->mode == M_METRIC) {
    struct set *e = &r->sets.v[i];
    e->cnt = calloc(r->nsteps + 1, sizeof *e->cnt);
    if (!e->cnt) return fail(r, SW_ENOMEM, "out of memory"), -1;
    if (r->range->rop == SW_LQ_BYTES_OVER_TIME || r->range->rop == SW_LQ_BYTES_RATE)
      if (!(e->val = calloc(r->nsteps + 1, sizeof *e->val))) return fail(r, SW_ENOMEM, "out of memory"), -1;
  }
  if (added && r->mode == M_SERIES && r->series_fn && r->series_fn(r->arg, r->key.data, r->key.len))
    return fail(r, SW_ECANCELED, NULL), -1;
  return i;
}

static int keep_entry(struct run *r, long set, int64_t ts, const char *line, size_t len) {
  const struct sw_lq_params *p = r->p;
  if (!p->backward && p->interval_ns && r->have_last && ts < r->last_ts + p->interval_ns) return 0;
  r->last_ts = ts, r->have_last = 1;
  char *copy = malloc(len ? len : 1);
  if (!copy) return fail(r, SW_ENOMEM, "out of memory");
  memcpy(copy, line, len);
  struct entry e = {.set = (size_t)set, .ts = ts, .line = copy, .len = len, .next = SIZE_MAX};
  if (r->nents < p->limit) {
    r->ents[r->nents++] = e;
    return !p->backward && r->nents >= p->limit; /* forward: the first `limit` are the answer */
  }
  free(r->ents[r->ring_head].line); /* backward: the oldest kept makes room */
  r->ents[r->ring_head] = e;
  r->ring_head = (r->ring_head + 1) % p->limit;
  return 0;
}

/* The steps an entry at ts counts in: every t with ts + offset <= t < ts + offset + range;
 * *klo > *khi when none. */
static void steps_of(const struct run *r, int64_t ts, int64_t *klo, int64_t *khi) {
  int64_t lo = ts + r->range->offset_ns - r->step0, hi = lo + r->range->range_ns - 1;
  *klo = lo <= 0 ? 0 : (lo + r->step - 1) / r->step;
  *khi = hi < 0 ? -1 : hi / r->step;
  if (*khi >= (int64_t)r->nsteps) *khi = (int64_t)r->nsteps - 1;
}

static void count_steps(struct run *r, struct set *e, int64_t ts, size_t len, uint32_t n) {
  int64_t klo, khi;
  steps_of(r, ts, &klo, &khi);
  if (klo > khi) return;
  e->cnt[klo] += (int32_t)n;
  e->cnt[khi + 1] -= (int32_t)n;
  if (e->val) {
    e->val[klo] += (double)len;
    e->val[khi + 1] -= (double)len;
  }
}

/* A chunk whose records all count in the same steps, for a query that needs only its count
 * and its file's labels: taken from its columns, never read. */
static int on_plan(void *arg, const struct sw_chunk_row *row) {
  struct run *r = arg;
  if (!r->fast || row->ts_min < r->scan_start || row->ts_max >= r->scan_end) return 0;
  int64_t klo, khi, klo2, khi2;
  steps_of(r, row->ts_min, &klo, &khi);
  steps_of(r, row->ts_max, &klo2, &khi2);
  if (klo != klo2 || khi != khi2) return 0;
  if (klo <= khi) {
    sw_lq_labels_reset(&r->l);
    long set = sw_lq_labels_add_json(&r->l, row->labels_json, strlen(row->labels_json)) ? -1 : set_of(r);
    if (set < 0) { /* read it instead: the record path reports the error */
      r->fast = 0, r->rc = 0;
      return 0;
    }
    count_steps(r, &r->sets.v[set], row->ts_min, 0, row->records);
  }
  r->lines += row->records;
  r->entries += row->records;
  r->bytes += row->raw_bytes;
  r->fast_chunks++;
  return 1;
}

/* The entry's label set after the pipeline's label half (cached per label set): its index, -1
 * when dropped, -2 on an error (r->rc). */
static long fixed_set(struct run *r, const struct sw_search_hit *h) {
  int fl = h->rec.flags & (SW_REC_PARSE_ERROR | SW_REC_TRUNCATED);
  if (r->c_valid && h->chunk_id == r->c_chunk && (h->rec.stream & 3) == r->c_stream && fl == r->c_flags &&
      h->rec.xl_len == r->c_xl.len && (!h->rec.xl_len || !memcmp(h->rec.xl, r->c_xl.data, h->rec.xl_len)))
    return r->c_set;
  r->c_valid = 0;
  if (entry_labels(r, h)) return fail(r, SW_ENOMEM, "out of memory"), -2;
  int k = r->log ? sw_lq_eval_labels(r->log, &r->s, &r->l) : 1;
  if (k < 0) return fail(r, k, "out of memory"), -2;
  long set = k ? set_of(r) : -1;
  if (k && set < 0) return -2;
  sw_buf_reset(&r->c_xl);
  if (h->rec.xl_len && sw_buf_append(&r->c_xl, h->rec.xl, h->rec.xl_len)) return fail(r, SW_ENOMEM, "out of memory"), -2;
  r->c_chunk = h->chunk_id, r->c_stream = h->rec.stream & 3, r->c_flags = fl, r->c_set = set, r->c_valid = 1;
  return set;
}

static int on_hit(void *arg, const struct sw_search_hit *h) {
  struct run *r = arg;
  const char *line = h->rec.line;
  size_t len = h->rec.len;
  r->lines++;
  r->bytes += len;
  long set;
  if (r->fixed) {
    set = fixed_set(r, h);
    if (set == -2) return 1;
    if (set < 0 || (r->log && !sw_lq_line_pass(r->log, &r->s, line, len))) return 0;
  } else {
    if (entry_labels(r, h)) return fail(r, SW_ENOMEM, "out of memory");
    int k = sw_lq_eval(r->log, &r->s, &r->l, &line, &len);
    if (k < 0) return fail(r, k, "out of memory");
    if (!k) return 0;
    if ((set = set_of(r)) < 0) return 1;
  }
  r->entries++;
  struct set *e = &r->sets.v[set];
  switch (r->mode) {
    case M_LOG: return keep_entry(r, set, h->rec.ts_ns, line, len);
    case M_METRIC: count_steps(r, e, h->rec.ts_ns, len, 1); return 0;
    case M_FOLLOW: return r->follow_fn(r->arg, e->key, e->len, h->rec.ts_ns, line, len);
    case M_SERIES: return 0;
  }
  return 0;
}

/* The scan's query: the pipeline's first positive line filter, the selector's matchers. */
static int scan_query(const struct sw_lq_log *log, const char *pattern, const struct sw_lq_params *p,
                      struct sw_search_query *sq, char *err, size_t errlen) {
  if (sw_search_query_init(sq, pattern ? pattern : "", 0, err, errlen)) return SW_EINVAL;
  sq->since = p->start;
  sq->until = p->end;
  static const char *const ops[] = {"=", "!=", "=~", "!~"};
  for (size_t i = 0; log && i < log->nsel; i++) {
    const struct sw_label_match *m = &log->sel[i];
    /* labels made from each record (stream, flags) are checked by the pipeline alone */
    if (!strcmp(m->key, "stream") || !strcmp(m->key, "parse_error") || !strcmp(m->key, "truncated")) continue;
    size_t n = strlen(m->key) + strlen(m->value) + 4;
    char *spec = malloc(n);
    if (!spec) return sw_search_query_free(sq), SW_ENOMEM;
    snprintf(spec, n, "%s%s%s", m->key, ops[m->op], m->value);
    int rc = sw_search_query_label(sq, spec, err, errlen);
    free(spec);
    if (rc) return sw_search_query_free(sq), rc;
  }
  sq->xknown = p->xknown;
  sq->xmask = p->xmask;
  return SW_OK;
}

static const struct sw_lq_metric *range_parent(const struct sw_lq_metric *m);

void sw_lq_extractable(const struct sw_lq_query *q, const struct sw_config *cfg, struct sw_lq_params *p) {
  struct sw_search_query sq;
  char err[256];
  p->xknown = 0, p->xmask = 0, p->group_plain = 0;
  if (!cfg || scan_query(q ? &q->log : NULL, NULL, p, &sq, err, sizeof err)) return;
  sw_search_query_extractable(&sq, cfg);
  p->xknown = sq.xknown, p->xmask = sq.xmask;
  sw_search_query_free(&sq);
  /* the grouping labels, asked the same way */
  const struct sw_lq_metric *g = q ? range_parent(q->metric) : NULL;
  if (sw_search_query_init(&sq, "", 0, err, sizeof err)) return;
  int ok = 1;
  for (size_t i = 0; g && ok && i < g->ngroup && i < 64; i++) {
    char spec[160];
    snprintf(spec, sizeof spec, "%s=", g->group[i]);
    if (sw_search_query_label(&sq, spec, err, sizeof err)) ok = 0;
  }
  if (ok && g && g->ngroup > 64) ok = 0;
  if (ok) {
    sw_search_query_extractable(&sq, cfg);
    p->group_plain = sq.xmask == 0;
  }
  sw_search_query_free(&sq);
}

static void run_free(struct run *r) {
  sw_lq_scratch_free(&r->s);
  sw_lq_labels_free(&r->base);
  sw_lq_labels_free(&r->l);
  sw_buf_free(&r->key);
  sw_buf_free(&r->c_xl);
  table_free(&r->sets);
  for (size_t i = 0; r->ents && i < r->nents; i++) free(r->ents[i].line);
  free(r->ents);
}

static int scan(struct run *r, const struct sw_lq_log *log, const char *pattern, int follow,
                void (*flush)(void *), struct sw_search_stats *st) {
  struct sw_search_query sq;
  int rc = scan_query(log, pattern, r->p, &sq, r->err, r->errlen);
  if (rc) return rc;
  struct sw_search_opts o = {.data_dir = r->p->data_dir, .db_flags = r->p->db_flags, .threads = r->p->threads,
                             .follow = follow, .deadline_ms = r->p->deadline_ms, .cancel = r->p->cancel,
                             .emit = on_hit, .flush = flush, .plan = r->fast ? on_plan : NULL, .arg = r};
  memset(st, 0, sizeof *st);
  rc = sw_search_run(&sq, &o, st, r->err, r->errlen);
  sw_search_query_free(&sq);
  if (!rc) rc = r->rc;
  if (!rc && st->timed_out) rc = SW_ECANCELED, snprintf(r->err, r->errlen, "the query timed out: narrow its time range or selector");
  return rc;
}

static int run_init(struct run *r, enum mode mode, const struct sw_lq_log *log, const struct sw_lq_params *p,
                    char *err, size_t errlen) {
  memset(r, 0, sizeof *r);
  r->mode = mode, r->log = log, r->p = p, r->err = err, r->errlen = errlen, r->base_chunk = -1;
  sw_lq_labels_init(&r->base);
  sw_lq_labels_init(&r->l);
  sw_buf_init(&r->key, SIZE_MAX);
  sw_buf_init(&r->c_xl, SIZE_MAX);
  r->fixed = !log || sw_lq_labels_fixed(log);
  if (sw_lq_scratch_init(&r->s)) return snprintf(err, errlen, "out of memory"), SW_ENOMEM;
  return SW_OK;
}

static int put_stats(struct sw_buf *out, const struct run *r, const struct sw_search_stats *st, int64_t t0_ns) {
  double exec = (double)(sw_time_now_ns() - t0_ns) / 1e9;
  if (exec <= 0) exec = 1e-9;
  return sw_buf_printf(
      out,
      ",\"stats\":{\"summary\":{\"bytesProcessedPerSecond\":%llu,\"linesProcessedPerSecond\":%llu,"
      "\"totalBytesProcessed\":%llu,\"totalLinesProcessed\":%llu,\"execTime\":%.6f,\"queueTime\":0,"
      "\"subqueries\":0,\"totalEntriesReturned\":%llu,\"splits\":0,\"shards\":0},"
      "\"querier\":{\"store\":{\"totalChunksRef\":%llu,\"totalChunksDownloaded\":%llu,\"chunksDownloadTime\":0,"
      "\"chunk\":{\"headChunkBytes\":0,\"headChunkLines\":0,\"decompressedBytes\":%llu,\"decompressedLines\":%llu,"
      "\"compressedBytes\":0,\"totalDuplicates\":0}}},"
      "\"ingester\":{\"totalReached\":0,\"totalChunksMatched\":0,\"totalBatches\":0,\"totalLinesSent\":0,"
      "\"store\":{\"totalChunksRef\":0,\"totalChunksDownloaded\":0,\"chunksDownloadTime\":0,"
      "\"chunk\":{\"headChunkBytes\":0,\"headChunkLines\":0,\"decompressedBytes\":0,\"decompressedLines\":0,"
      "\"compressedBytes\":0,\"totalDuplicates\":0}}}}",
      (unsigned long long)((double)r->bytes / exec), (unsigned long long)((double)r->lines / exec),
      (unsigned long long)r->bytes, (unsigned long long)r->lines, exec,
      (unsigned long long)(r->mode == M_LOG ? r->nents : 0), (unsigned long long)st->chunks_total,
      (unsigned long long)st->chunks_scanned, (unsigned long long)st->raw_bytes, (unsigned long long)r->lines);
}

/* Entries in the answer's order, grouped by stream in the order streams first appear. */
static int put_streams(struct sw_buf *out, struct run *r) {
  size_t n = r->nents, lim = r->p->limit;
  size_t *order = malloc((n ? n : 1) * sizeof *order);
  if (!order) return SW_ENOMEM;
  for (size_t k = 0; k < n; k++) /* backward: newest first */
    order[k] = r->p->backward ? (n < lim ? n - 1 - k : (r->ring_head + lim - 1 - k) % lim) : k;
  size_t nsets = 0, *sets = malloc((r->sets.n ? r->sets.n : 1) * sizeof *sets);
  if (!sets) return free(order), SW_ENOMEM;
  int64_t last = 0;
  int have = 0;
  for (size_t k = 0; k < n; k++) {
    struct entry *e = &r->ents[order[k]];
    if (r->p->backward && r->p->interval_ns) { /* one entry per interval, newest first */
      if (have && e->ts > last - r->p->interval_ns) continue;
      last = e->ts, have = 1;
    }
    struct set *s = &r->sets.v[e->set];
    if (s->order == SIZE_MAX) s->order = nsets, sets[nsets++] = e->set;
    if (s->tail == SIZE_MAX) s->head = order[k];
    else r->ents[s->tail].next = order[k];
    s->tail = order[k];
  }
  free(order);
  int rc = sw_buf_append(out, "\"resultType\":\"streams\",\"result\":[", 33);
  for (size_t i = 0; !rc && i < nsets; i++) {
    const struct set *s = &r->sets.v[sets[i]];
    rc = sw_buf_printf(out, "%s{\"stream\":%s,\"values\":[", i ? "," : "", s->key);
    for (size_t k = s->head, c = 0; !rc && k != SIZE_MAX; k = r->ents[k].next, c++) {
      const struct entry *e = &r->ents[k];
      rc = sw_buf_printf(out, "%s[\"%lld\",\"", c ? "," : "", (long long)e->ts) ||
           sw_buf_put_json_str(out, e->line, e->len, NULL) || sw_buf_append(out, "\"]", 2);
    }
    if (!rc) rc = sw_buf_append(out, "]}", 2);
  }
  free(sets);
  if (!rc) rc = sw_buf_putc(out, ']');
  return rc ? SW_ENOMEM : SW_OK;
}

/* The aggregation whose argument is the range aggregation itself, or NULL. */
static const struct sw_lq_metric *range_parent(const struct sw_lq_metric *m) {
  if (!m) return NULL;
  if (m->kind == SW_LQ_M_AGG && m->a && m->a->kind == SW_LQ_M_RANGE) return m;
  const struct sw_lq_metric *a = range_parent(m->a);
  return a ? a : range_parent(m->b);
}

static const struct sw_lq_metric *find_range(const struct sw_lq_metric *m) {
  if (!m) return NULL;
  if (m->kind == SW_LQ_M_RANGE) return m;
  const struct sw_lq_metric *a = find_range(m->a);
  return a ? a : find_range(m->b);
}

static int is_record_label(const char *name) {
  return !strcmp(name, "stream") || !strcmp(name, "parse_error") || !strcmp(name, "truncated");
}

/* Whether whole chunks can be counted from their columns: `sum [by (file labels)]` right
 * around count_over_time or rate, a selector and grouping on labels no source extracts from
 * records, and no pipeline but drops of labels the sum removes anyway. */
static int fast_ok(const struct run *r, const struct sw_lq_query *q, const struct sw_lq_metric *parent) {
  if (!parent || parent->aop != SW_LQ_SUM || (parent->grouped && parent->without)) return 0;
  if (r->range->rop != SW_LQ_COUNT_OVER_TIME && r->range->rop != SW_LQ_RATE) return 0;
  if (!r->p->xknown || r->p->xmask || !r->p->group_plain) return 0;
  for (size_t i = 0; i < q->log.nsel; i++)
    if (is_record_label(q->log.sel[i].key)) return 0;
  for (size_t i = 0; i < parent->ngroup; i++)
    if (is_record_label(parent->group[i])) return 0;
  for (size_t i = 0; i < q->log.nst; i++) {
    const struct sw_lq_stage *st = &q->log.st[i];
    if (st->kind != SW_LQ_DROP) return 0;
    for (size_t k = 0; k < st->nitems; k++) {
      if (st->items[k].has_m) return 0;
      for (size_t g = 0; g < parent->ngroup; g++)
        if (!strcmp(parent->group[g], st->items[k].name)) return 0;
    }
  }
  return 1;
}

static int run_metric(struct run *r, const struct sw_lq_query *q, struct sw_buf *out, int64_t t0) {
  const struct sw_lq_params *p = r->p;
  int64_t step = p->instant ? 1 : p->step_ns, first = p->instant ? p->end : p->start;
  r->nsteps = p->instant ? 1 : (size_t)((p->end - p->start) / step) + 1;
  r->step0 = first, r->step = step;
  struct sw__lq_matrix range = {0}, res = {0};
  struct sw_search_stats st = {0};
  int rc = SW_OK;
  r->range = find_range(q->metric);
  const struct sw_lq_metric *parent = range_parent(q->metric);
  if (parent && parent->aop == SW_LQ_SUM) r->group = parent;
  if (r->range) {
    r->max_sets = SW_LQ_MAX_SERIES;
    if ((uint64_t)r->nsteps * SW_LQ_MAX_SERIES > SW_LQ_MAX_CELLS) r->max_sets = SW_LQ_MAX_CELLS / r->nsteps;
    struct sw_lq_params sp = *p;
    /* entries that fall in some step's window (t - offset - range, t - offset] */
    sp.start = first - r->range->offset_ns - r->range->range_ns + 1;
    sp.end = first + (int64_t)(r->nsteps - 1) * step - r->range->offset_ns + 1;
    r->p = &sp;
    r->scan_start = sp.start, r->scan_end = sp.end;
    r->fast = fast_ok(r, q, parent);
    char *pattern = sw_lq_scan_pattern(q);
    rc = scan(r, &q->log, pattern, 0, NULL, &st);
    free(pattern);
    r->p = p;
    for (size_t i = 0; !rc && i < r->sets.n; i++) {
      struct set *e = &r->sets.v[i];
      struct sw__lq_series *s = sw__lq_matrix_add(&range, e->key, r->nsteps);
      e->key = NULL;
      if (!s) { rc = SW_ENOMEM; break; }
      int64_t c = 0;
      double b = 0, secs = (double)r->range->range_ns / 1e9;
      for (size_t t = 0; t < r->nsteps; t++) {
        c += e->cnt[t];
        if (e->val) b += e->val[t];
        if (c <= 0) continue;
        s->has[t] = 1;
        switch (r->range->rop) {
          case SW_LQ_COUNT_OVER_TIME: s->v[t] = (double)c; break;
          case SW_LQ_RATE: s->v[t] = (double)c / secs; break;
          case SW_LQ_BYTES_OVER_TIME: s->v[t] = b; break;
          case SW_LQ_BYTES_RATE: s->v[t] = b / secs; break;
        }
      }
    }
  }
  if (!rc) rc = sw__lq_metric_eval(q->metric, &range, r->nsteps, &res, r->err, r->errlen);
  if (!rc && res.scalar) rc = SW_EINVAL, snprintf(r->err, r->errlen, "a scalar result is not supported by spillway");
  if (!rc) rc = sw_buf_append(out, "{\"status\":\"success\",\"data\":{", 28) ||
                sw__lq_put_matrix(out, &res, first, step, r->nsteps, p->instant) ||
                put_stats(out, r, &st, t0) || sw_buf_append(out, "}}", 2) ? SW_ENOMEM : SW_OK;
  sw__lq_matrix_free(&range);
  sw__lq_matrix_free(&res);
  return rc;
}

int sw_lq_run(const struct sw_lq_query *q, const struct sw_lq_params *p, struct sw_buf *out, char *err,
              size_t errlen) {
  int64_t t0 = sw_time_now_ns();
  struct run r;
  int rc = run_init(&r, q->metric ? M_METRIC : M_LOG, &q->log, p, err, errlen);
  if (!rc && q->metric) {
    rc = run_metric(&r, q, out, t0);
  } else if (!rc) {
    if (!(r.ents = calloc(p->limit ? p->limit : 1, sizeof *r.ents))) rc = SW_ENOMEM;
    struct sw_search_stats st;
    char *pattern = sw_lq_scan_pattern(q);
    if (!rc) rc = scan(&r, &q->log, pattern, 0, NULL, &st);
    free(pattern);
    if (!rc) rc = sw_buf_append(out, "{\"status\":\"success\",\"data\":{", 28) || put_streams(out, &r) ||
                  put_stats(out, &r, &st, t0) || sw_buf_append(out, "}}", 2) ? SW_ENOMEM : SW_OK;
  }
  if (rc == SW_ENOMEM && !err[0]) snprintf(err, errlen, "out of memory");
  run_free(&r);
  return rc;
}

static void on_flush(void *arg) {
  struct run *r = arg;
  if (r->follow_flush) r->follow_flush(r->arg);
}

int sw_lq_follow(const struct sw_lq_query *q, const struct sw_lq_params *p,
                 int (*fn)(void *arg, const char *labels, size_t llen, int64_t ts, const char *line, size_t len),
                 void (*flush)(void *arg), void *arg, char *err, size_t errlen) {
  struct run r;
  int rc = run_init(&r, M_FOLLOW, &q->log, p, err, errlen);
  r.follow_fn = fn, r.follow_flush = flush, r.arg = arg;
  r.max_sets = 0;
  struct sw_search_stats st;
  char *pattern = sw_lq_scan_pattern(q);
  if (!rc) rc = scan(&r, &q->log, pattern, 1, on_flush, &st);
  free(pattern);
  run_free(&r);
  return rc;
}

int sw_lq_series(const struct sw_lq_log *sel, const struct sw_lq_params *p, size_t max_series,
                 int (*fn)(void *arg, const char *labels, size_t len), void *arg,
                 struct sw_lq_index_stats *out, char *err, size_t errlen) {
  struct run r;
  /* only the selector: a copy without the pipeline */
  struct sw_lq_log only = {0};
  if (sel) only.sel = sel->sel, only.nsel = sel->nsel;
  int rc = run_init(&r, M_SERIES, sel ? &only : NULL, p, err, errlen);
  r.series_fn = fn, r.arg = arg;
  r.max_sets = max_series ? max_series : SW_LQ_MAX_SERIES * 20;
  struct sw_search_stats st = {0};
  if (!rc) rc = scan(&r, sel, NULL, 0, NULL, &st);
  if (rc == SW_ECANCELED && !r.err[0]) rc = SW_OK; /* fn asked to stop */
  if (out) *out = (struct sw_lq_index_stats){.streams = r.sets.n, .chunks = st.chunks_scanned, .entries = r.entries,
                                             .bytes = r.bytes};
  run_free(&r);
  return rc;
}
