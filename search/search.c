#include "search.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zstd.h>

#include "../agent/buffer/buffer.h"
#include "../common/timefmt.h"

/* ---- what a worker finds in one chunk ---- */

struct hit {
  int64_t ts;
  size_t off, len; /* in the result's arena */
  size_t xoff, xlen; /* the record's own labels in the arena; xlen 0: none */
  uint8_t stream, flags;
  uint32_t seq;    /* record order in the chunk (stable ordering of equal times) */
};

struct result {
  struct hit *hits;
  size_t n, cap;
  struct sw_buf arena;
  uint64_t count;
  uint64_t limit_skipped; /* records the regex gave up on */
  int rc;
};

static void result_free(struct result *r) {
  free(r->hits);
  sw_buf_free(&r->arena);
  memset(r, 0, sizeof *r);
}

struct cand {
  int64_t id, ts_min;
  uint64_t raw_bytes;
  uint64_t deferred; /* label matchers left to each record's own labels */
  char *source, *labels, *format;
};

enum { S_FREE, S_READY, S_RUNNING, S_DONE };

struct slot {
  int state;
  size_t idx;
  uint64_t deferred; /* the chunk's label matchers left to its records */
  struct sw_buf blob;
  struct result res;
};

/* A merged chunk whose hits are not all emitted yet. */
struct pending {
  struct result res;
  size_t pos, order;
  const struct cand *c;
};

struct ctx {
  const struct sw_search_query *q;
  const struct sw_search_opts *o;
  struct sw_search_stats *st;
  struct cand *c;
  size_t nc, capc;
  struct slot *slots;
  size_t W;
  size_t next_load, next_run;
  pthread_mutex_t mu;
  pthread_cond_t work_cv, done_cv;
  int quit;
  struct pending **heap;
  size_t nheap, capheap;
  uint64_t emitted;
  int stop; /* limit, emit's wish, deadline or cancel */
};

static int should_stop(struct ctx *x) {
  if (x->stop) return 1;
  if (x->o->cancel && atomic_load(x->o->cancel)) x->stop = 1;
  if (x->o->deadline_ms && sw_time_mono_ms() >= x->o->deadline_ms) {
    x->st->timed_out = 1;
    x->stop = 1;
  }
  return x->stop;
}

/* ---- workers ---- */

struct collect {
  struct result *r;
  int count_only;
  uint32_t seq;
};

static int on_hit(void *arg, const struct sw_record_view *v) {
  struct collect *k = arg;
  struct result *r = k->r;
  r->count++;
  if (k->count_only) return 0;
  if (sw_grow(&r->hits, r->n, &r->cap, sizeof *r->hits, 64)) return SW_ENOMEM;
  size_t off = r->arena.len;
  int rc = sw_buf_append(&r->arena, v->line, v->len);
  if (!rc && v->xl_len) rc = sw_buf_append(&r->arena, v->xl, v->xl_len);
  if (rc) return rc;
  r->hits[r->n++] = (struct hit){.ts = v->ts_ns, .off = off, .len = v->len,
                                 .xoff = off + v->len, .xlen = v->xl_len,
                                 .stream = (uint8_t)v->stream, .flags = (uint8_t)v->flags,
                                 .seq = k->seq++};
  return 0;
}

static int hit_cmp(const void *a, const void *b) {
  const struct hit *x = a, *y = b;
  if (x->ts != y->ts) return x->ts < y->ts ? -1 : 1;
  return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static void scan(struct ctx *x, struct slot *s, ZSTD_DCtx *dctx, struct sw_search_scratch *scr,
                 struct sw_buf *raw) {
  struct result *r = &s->res;
  result_free(r);
  sw_buf_init(&r->arena, SIZE_MAX);
  sw_buf_reset(raw);
  r->rc = sw_chunk_decompress(dctx, s->blob.data, s->blob.len, raw);
  if (r->rc) {
    r->rc = SW_ECORRUPT;
    return;
  }
  struct collect k = {.r = r, .count_only = x->o->count_only};
  uint64_t skipped = scr->limit_skipped;
  scr->deferred = s->deferred;
  r->rc = sw_search_chunk(x->q, scr, raw->data, raw->len, on_hit, &k);
  r->limit_skipped = scr->limit_skipped - skipped;
  int sorted = 1;
  for (size_t i = 1; i < r->n && sorted; i++) sorted = r->hits[i - 1].ts <= r->hits[i].ts;
  if (!sorted) qsort(r->hits, r->n, sizeof *r->hits, hit_cmp);
}

static void *worker(void *arg) {
  struct ctx *x = arg;
  ZSTD_DCtx *dctx = ZSTD_createDCtx();
  struct sw_search_scratch scr;
  int ok = dctx && sw_search_scratch_init(&scr, x->q) == SW_OK;
  struct sw_buf raw;
  sw_buf_init(&raw, SIZE_MAX);
  pthread_mutex_lock(&x->mu);
  for (;;) {
    while (!x->quit && x->next_run >= x->next_load) pthread_cond_wait(&x->work_cv, &x->mu);
    if (x->quit) break;
    struct slot *s = &x->slots[x->next_run++ % x->W];
    s->state = S_RUNNING;
    pthread_mutex_unlock(&x->mu);
    if (ok)
      scan(x, s, dctx, &scr, &raw);
    else
      s->res.rc = SW_ENOMEM;
    pthread_mutex_lock(&x->mu);
    s->state = S_DONE;
    pthread_cond_broadcast(&x->done_cv);
  }
  pthread_mutex_unlock(&x->mu);
  if (ok) sw_search_scratch_free(&scr);
  ZSTD_freeDCtx(dctx);
  sw_buf_free(&raw);
  return NULL;
}

/* ---- merging in time order ---- */

static int pend_less(const struct pending *a, const struct pending *b) {
  int64_t ta = a->res.hits[a->pos].ts, tb = b->res.hits[b->pos].ts;
  return ta != tb ? ta < tb : a->order < b->order;
}

static void heap_down(struct ctx *x, size_t i) {
  for (;;) {
    size_t l = 2 * i + 1, m = i;
    if (l < x->nheap && pend_less(x->heap[l], x->heap[m])) m = l;
    if (l + 1 < x->nheap && pend_less(x->heap[l + 1], x->heap[m])) m = l + 1;
    if (m == i) return;
    struct pending *t = x->heap[i];
    x->heap[i] = x->heap[m];
    x->heap[m] = t;
    i = m;
  }
}

static int heap_push(struct ctx *x, struct pending *p) {
  if (sw_grow(&x->heap, x->nheap, &x->capheap, sizeof *x->heap, 16)) return SW_ENOMEM;
  size_t i = x->nheap++;
  x->heap[i] = p;
  while (i > 0 && pend_less(x->heap[i], x->heap[(i - 1) / 2])) {
    struct pending *t = x->heap[i];
    x->heap[i] = x->heap[(i - 1) / 2];
    x->heap[(i - 1) / 2] = t;
    i = (i - 1) / 2;
  }
  return SW_OK;
}

/* Emits every pending hit at or before `bound` (no chunk still to come starts earlier). */
static void emit_until(struct ctx *x, int64_t bound) {
  while (x->nheap && !x->stop) {
    struct pending *p = x->heap[0];
    const struct hit *h = &p->res.hits[p->pos];
    if (h->ts > bound) return;
    struct sw_search_hit out = {
        .chunk_id = p->c->id, .source = p->c->source, .labels_json = p->c->labels,
        .format = p->c->format,
        .rec = {.ts_ns = h->ts, .stream = h->stream, .flags = h->flags,
                .line = p->res.arena.data + h->off, .len = h->len,
                .xl = h->xlen ? p->res.arena.data + h->xoff : NULL, .xl_len = h->xlen}};
    if (x->o->emit(x->o->arg, &out)) x->stop = 1;
    x->st->matches++;
    if (x->o->limit && ++x->emitted >= x->o->limit) {
      x->st->limited = 1;
      x->stop = 1;
    }
    if (++p->pos == p->res.n) {
      result_free(&p->res);
      free(p);
      x->heap[0] = x->heap[--x->nheap];
    }
    heap_down(x, 0);
  }
}

static void heap_clear(struct ctx *x) {
  for (size_t i = 0; i < x->nheap; i++) {
    result_free(&x->heap[i]->res);
    free(x->heap[i]);
  }
  x->nheap = 0;
}

/* ---- one pass over the planned chunks ---- */

static void cands_clear(struct ctx *x) {
  for (size_t i = 0; i < x->nc; i++) {
    free(x->c[i].source);
    free(x->c[i].labels);
    free(x->c[i].format);
  }
  x->nc = 0;
}

static int on_plan(void *arg, const struct sw_chunk_row *row) {
  struct ctx *x = arg;
  x->st->chunks_total++;
  uint64_t deferred;
  if (!sw_search_labels_plan(x->q, row->labels_json, &deferred)) return 0;
  if (!sw_search_grams_match(x->q, row->grams, row->grams_len)) {
    x->st->chunks_skipped++;
    return 0;
  }
  if (x->o->plan) {
    int taken = x->o->plan(x->o->arg, row);
    if (taken) return taken < 0 ? taken : 0;
  }
  if (sw_grow(&x->c, x->nc, &x->capc, sizeof *x->c, 256)) return SW_ENOMEM;
  struct cand *c = &x->c[x->nc];
  *c = (struct cand){.id = row->id, .ts_min = row->ts_min, .raw_bytes = row->raw_bytes, .deferred = deferred,
                     .source = strdup(row->source), .labels = strdup(row->labels_json),
                     .format = strdup(row->format)};
  x->nc++;
  return c->source && c->labels && c->format ? 0 : SW_ENOMEM;
}

static int merge_slot(struct ctx *x, struct slot *s, char *err, size_t errlen) {
  struct result *r = &s->res;
  if (r->rc == SW_ECORRUPT) {
    x->st->corrupt_chunks++;
    result_free(r);
    return SW_OK;
  }
  if (r->rc) {
    snprintf(err, errlen, "%s", r->rc == SW_EAGAIN ? "the regex failed in PCRE2" : sw_strerror(r->rc));
    int rc = r->rc;
    result_free(r);
    return rc;
  }
  x->st->chunks_scanned++;
  x->st->raw_bytes += x->c[s->idx].raw_bytes;
  x->st->match_limit_skipped += r->limit_skipped;
  if (x->o->count_only) {
    x->st->matches += r->count;
    result_free(r);
    return SW_OK;
  }
  if (r->n == 0) {
    result_free(r);
    return SW_OK;
  }
  struct pending *p = calloc(1, sizeof *p);
  if (!p) return SW_ENOMEM;
  p->res = *r;
  memset(r, 0, sizeof *r);
  p->order = s->idx;
  p->c = &x->c[s->idx];
  return heap_push(x, p);
}

static int run_pass(struct ctx *x, struct sw_db *db, char *err, size_t errlen) {
  pthread_mutex_lock(&x->mu);
  x->next_load = x->next_run = 0;
  pthread_mutex_unlock(&x->mu);
  size_t next_merge = 0;
  int rc = SW_OK;
  while (next_merge < x->nc && !should_stop(x)) {
    while (x->next_load < x->nc && x->next_load - next_merge < x->W) {
      struct slot *s = &x->slots[x->next_load % x->W];
      rc = sw_db_chunk_data(db, x->c[x->next_load].id, &s->blob);
      if (rc) {
        snprintf(err, errlen, "reading chunk %lld: %s", (long long)x->c[x->next_load].id,
                 sw_db_errmsg(db));
        goto out;
      }
      pthread_mutex_lock(&x->mu);
      s->state = S_READY;
      s->deferred = x->c[x->next_load].deferred;
      s->idx = x->next_load++;
      pthread_cond_signal(&x->work_cv);
      pthread_mutex_unlock(&x->mu);
    }
    struct slot *s = &x->slots[next_merge % x->W];
    pthread_mutex_lock(&x->mu);
    while (s->state != S_DONE) pthread_cond_wait(&x->done_cv, &x->mu);
    pthread_mutex_unlock(&x->mu);
    rc = merge_slot(x, s, err, errlen);
    s->state = S_FREE;
    if (rc) goto out;
    next_merge++;
    emit_until(x, next_merge < x->nc ? x->c[next_merge].ts_min : INT64_MAX);
  }
out:
  /* Let the workers finish what they hold before the slots are reused or freed. */
  pthread_mutex_lock(&x->mu);
  x->next_load = x->next_run; /* nothing more to take */
  for (size_t i = 0; i < x->W; i++)
    while (x->slots[i].state == S_RUNNING) pthread_cond_wait(&x->done_cv, &x->mu);
  pthread_mutex_unlock(&x->mu);
  for (size_t i = 0; i < x->W; i++) {
    result_free(&x->slots[i].res);
    x->slots[i].state = S_FREE;
  }
  heap_clear(x);
  return rc;
}

static int pass(struct ctx *x, struct sw_db *db, int64_t after, int64_t *max_id, char *err,
                size_t errlen) {
  int rc = sw_db_read_begin(db);
  if (!rc) rc = sw_db_max_chunk_id(db, max_id); /* the snapshot starts here */
  if (!rc) rc = sw_db_search_plan(db, x->q->since, x->q->until, after, on_plan, x);
  if (rc) {
    snprintf(err, errlen, "%s: %s", sw_db_path(db), sw_db_errmsg(db));
  } else {
    rc = run_pass(x, db, err, errlen);
  }
  sw_db_read_end(db);
  cands_clear(x);
  if (x->o->flush) x->o->flush(x->o->arg);
  return rc;
}

int sw_search_run(const struct sw_search_query *q, const struct sw_search_opts *o,
                  struct sw_search_stats *st, char *err, size_t errlen) {
  memset(st, 0, sizeof *st);
  struct sw_db *db = NULL;
  int rc = sw_db_open(o->data_dir, SW_DB_READONLY | o->db_flags, &db, err, errlen);
  if (rc) return rc;
  struct ctx x = {.q = q, .o = o, .st = st};
  long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
  unsigned threads = o->threads ? o->threads : (unsigned)(ncpu > 0 ? ncpu : 1);
  if (threads > 64) threads = 64;
  x.W = 4 * (size_t)threads;
  x.slots = calloc(x.W, sizeof *x.slots);
  pthread_t *tids = calloc(threads, sizeof *tids);
  if (!x.slots || !tids) {
    free(x.slots);
    free(tids);
    sw_db_close(db);
    return SW_ENOMEM;
  }
  for (size_t i = 0; i < x.W; i++) sw_buf_init(&x.slots[i].blob, SIZE_MAX);
  pthread_mutex_init(&x.mu, NULL);
  pthread_cond_init(&x.work_cv, NULL);
  pthread_cond_init(&x.done_cv, NULL);
  unsigned started = 0;
  for (; started < threads; started++)
    if (pthread_create(&tids[started], NULL, worker, &x)) break;
  if (started == 0) {
    snprintf(err, errlen, "cannot start a search thread: %s", strerror(errno));
    rc = SW_ENOMEM;
  } else {
    int64_t max_id = 0;
    rc = pass(&x, db, 0, &max_id, err, errlen);
    while (!rc && o->follow && !should_stop(&x)) {
      struct timespec nap = {0, 200 * 1000000L};
      nanosleep(&nap, NULL);
      if (should_stop(&x)) break;
      int64_t after = max_id;
      rc = pass(&x, db, after, &max_id, err, errlen);
    }
  }
  pthread_mutex_lock(&x.mu);
  x.quit = 1;
  pthread_cond_broadcast(&x.work_cv);
  pthread_mutex_unlock(&x.mu);
  for (unsigned i = 0; i < started; i++) pthread_join(tids[i], NULL);
  for (size_t i = 0; i < x.W; i++) {
    sw_buf_free(&x.slots[i].blob);
    result_free(&x.slots[i].res);
  }
  free(x.slots);
  free(tids);
  cands_clear(&x);
  free(x.c);
  free(x.heap);
  pthread_mutex_destroy(&x.mu);
  pthread_cond_destroy(&x.work_cv);
  pthread_cond_destroy(&x.done_cv);
  sw_db_close(db);
  return rc;
}
