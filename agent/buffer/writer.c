#include "writer.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zstd.h>

#include "../../common/log.h"
#include "../../common/timefmt.h"
#include "chunk.h"
#include "hot.h"

struct sw_writer {
  uv_async_t async; /* first: close callback frees the struct */
  pthread_t thread;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  struct sw_writer_job *head, *tail;
  int stop, kicked;
  atomic_int resync; /* sw_writer_resync: recount `used` from the database */
  uint64_t stop_deadline_ms;
  _Atomic uint64_t inflight, used;
  atomic_int disk_full;                /* the last commit failed for lack of space */
  _Atomic uint64_t fail_full, fail_other; /* failed commit attempts, by reason */
  struct sw_db *db;
  ZSTD_CCtx *cctx;
  struct sw_buf zbuf; /* compression output, copied to the job at its exact size */
  struct sw_writer_opts opts;
  char **sinks;
  uint64_t t_compress, t_commit, t_gc, t_wait, n_batches;
};

struct sw_writer_job *sw_writer_job_new(enum sw_commit_kind kind, const struct sw_file_state *fs,
                                        const char *labels_json, const char *format,
                                        struct sw_buf *raw) {
  struct sw_writer_job *j = calloc(1, sizeof *j);
  if (!j) return NULL;
  size_t ls = strlen(fs->source) + 1, lp = strlen(fs->path) + 1;
  size_t ll = labels_json ? strlen(labels_json) + 1 : 1, lf = format ? strlen(format) + 1 : 1;
  j->strs = malloc(ls + lp + ll + lf);
  if (!j->strs) goto fail;
  char *p = j->strs;
  memcpy(p, fs->source, ls);
  memcpy(p + ls, fs->path, lp);
  memcpy(p + ls + lp, labels_json ? labels_json : "", ll);
  memcpy(p + ls + lp + ll, format ? format : "", lf);
  if (fs->pending_len) {
    j->pending = malloc(fs->pending_len);
    if (!j->pending) goto fail;
    memcpy(j->pending, fs->pending, fs->pending_len);
  }
  j->op.kind = kind;
  j->op.file = *fs;
  j->op.file.source = p;
  j->op.file.path = p + ls;
  j->op.file.pending = j->pending;
  j->op.labels_json = p + ls + lp;
  j->op.format = p + ls + lp + ll;
  if (raw) {
    j->raw = *raw;
    sw_buf_init(raw, raw->max);
  } else {
    sw_buf_init(&j->raw, 0);
  }
  sw_buf_init(&j->packed, SIZE_MAX);
  sw_buf_init(&j->grams, SIZE_MAX);
  return j;
fail:
  free(j->strs);
  free(j);
  return NULL;
}

int sw_writer_job_counters(struct sw_writer_job *j, const char *const *names,
                           const uint64_t *deltas, size_t n) {
  if (n == 0) return SW_OK;
  j->deltas = malloc(n * sizeof *j->deltas);
  if (!j->deltas) return SW_ENOMEM;
  memcpy(j->deltas, deltas, n * sizeof *deltas);
  j->op.counter_names = names;
  j->op.counter_deltas = j->deltas;
  j->op.ncounters = n;
  return SW_OK;
}

void sw_writer_job_free(struct sw_writer_job *j) {
  if (!j) return;
  free(j->deltas);
  sw_buf_free(&j->raw);
  sw_buf_free(&j->packed);
  sw_buf_free(&j->grams);
  free(j->strs);
  free(j->pending);
  free(j);
}

static int commit_batch(struct sw_writer *w, struct sw_writer_job *list) {
  size_t n = 0;
  for (struct sw_writer_job *j = list; j; j = j->next) n++;
  struct sw_commit_op *ops = calloc(n ? n : 1, sizeof *ops);
  if (!ops) return SW_ENOMEM;
  size_t i = 0;
  uint64_t t0 = (uint64_t)sw_time_mono_ms();
  for (struct sw_writer_job *j = list; j; j = j->next) {
    if (j->op.records && j->packed.len == 0) {
      /* Into one reused buffer of the worst-case size, then copied: jobs queued for the
       * commit hold what their chunk compressed to, not compressBound of it. */
      sw_buf_reset(&w->zbuf);
      int rc = sw_chunk_compress(w->cctx, w->opts.zstd_level, w->opts.zstd_ldm, j->raw.data, j->raw.len, &w->zbuf);
      if (!rc) rc = sw_buf_append(&j->packed, w->zbuf.data, w->zbuf.len); /* exact: first reservation */
      if (rc) {
        free(ops);
        return rc;
      }
      j->op.data = j->packed.data;
      j->op.data_len = j->packed.len;
      sw_buf_reset(&j->grams);
      if (w->opts.search_filters && sw_chunk_grams(j->raw.data, j->raw.len, &j->grams) == SW_OK) {
        j->op.grams = j->grams.data;
        j->op.grams_len = j->grams.len;
      }
      j->op.raw_bytes = j->raw.len;
      j->op.chunk_id = &j->chunk_id;
    }
    ops[i++] = j->op;
  }
  w->t_compress += (uint64_t)sw_time_mono_ms() - t0;
  struct sw_commit_result res;
  uint64_t t1 = (uint64_t)sw_time_mono_ms();
  int rc = sw_db_commit(w->db, ops, n, w->opts.max_bytes, w->opts.drop_oldest, &res);
  w->t_commit += (uint64_t)sw_time_mono_ms() - t1;
  free(ops);
  if (rc) return rc;
  uint64_t used = atomic_load(&w->used) + res.stored_bytes;
  uint64_t freed = res.dropped_bytes + res.history_bytes;
  used = used > freed ? used - freed : 0;
  atomic_store(&w->used, used);
  if (res.dropped_chunks)
    SW_LOG(SW_L_WARN, "buffer",
           "buffer full (max_bytes %llu): dropped %llu oldest chunks, %llu records, %llu bytes",
           (unsigned long long)w->opts.max_bytes, (unsigned long long)res.dropped_chunks,
           (unsigned long long)res.dropped_records, (unsigned long long)res.dropped_bytes);
  if (res.history_chunks)
    SW_LOG(SW_L_INFO, "buffer", "buffer full: deleted %llu chunks of shipped history (%llu bytes)",
           (unsigned long long)res.history_chunks, (unsigned long long)res.history_bytes);
  return SW_OK;
}

static void run_gc(struct sw_writer *w) {
  uint64_t fb = 0, fc = 0;
  int64_t acked = 0;
  struct sw_gc_policy p = {.keep_age_ns = w->opts.keep_shipped_age_ns,
                           .keep_bytes = w->opts.keep_shipped_bytes,
                           .max_bytes = w->opts.max_bytes, .used = atomic_load(&w->used),
                           .acked = &acked};
  if (sw_db_gc(w->db, (const char *const *)w->sinks, w->opts.nsinks, &p, &fb, &fc)) {
    SW_LOG(SW_L_WARN, "buffer", "gc failed: %s", sw_db_errmsg(w->db));
    return;
  }
  if (w->opts.nsinks) sw_hot_drop_upto(w->opts.hot, acked); /* every sink has them */
  if (fc) {
    uint64_t used = atomic_load(&w->used);
    atomic_store(&w->used, used > fb ? used - fb : 0);
    uv_async_send(&w->async);
  }
}

/* A failed commit leaves the batch queued (retried with backoff, nothing dropped). A full disk
 * is told apart from other errors because it needs the operator: the flag pauses reading
 * (sw_writer_disk_full), fails /ready and is a metric; the self-log limits the repeats. */
static void note_failure(struct sw_writer *w, int rc) {
  int full = rc == SW_EDB && sw_db_err_full(w->db);
  atomic_fetch_add(full ? &w->fail_full : &w->fail_other, 1);
  if (full) {
    if (!atomic_exchange(&w->disk_full, 1)) uv_async_send(&w->async); /* the loop re-checks /ready */
    SW_LOG(SW_L_ERROR, "buffer",
           "buffer disk full under %s: commit failed, reading paused, nothing dropped (will retry): %s",
           w->opts.data_dir, sw_db_errmsg(w->db));
  } else {
    SW_LOG(SW_L_ERROR, "buffer", "commit failed (will retry): %s: %s", sw_strerror(rc),
           sw_db_errmsg(w->db));
  }
}

static void *writer_main(void *arg) {
  struct sw_writer *w = arg;
  uint64_t backoff = 0, last_gc = 0;
  for (;;) {
    uint64_t tw = (uint64_t)sw_time_mono_ms();
    pthread_mutex_lock(&w->mu);
    while (!w->head && !w->stop && !w->kicked) {
      struct timespec ts;
      clock_gettime(CLOCK_REALTIME, &ts);
      ts.tv_nsec += 250 * 1000000L;
      if (ts.tv_nsec >= 1000000000L) { ts.tv_sec++; ts.tv_nsec -= 1000000000L; }
      if (pthread_cond_timedwait(&w->cv, &w->mu, &ts)) break;
    }
    struct sw_writer_job *list = w->head;
    w->head = w->tail = NULL;
    int stop = w->stop;
    w->kicked = 0;
    pthread_mutex_unlock(&w->mu);
    w->t_wait += (uint64_t)sw_time_mono_ms() - tw;
    if (list) w->n_batches++;
    if (list) {
      int rc = commit_batch(w, list);
      if (rc) {
        note_failure(w, rc);
        if (stop && (uint64_t)sw_time_mono_ms() >= w->stop_deadline_ms) {
          /* Offsets were not committed either: the records are read again on the next start. */
          SW_LOG(SW_L_ERROR, "buffer", "giving up at shutdown; uncommitted data will be re-read");
          while (list) { struct sw_writer_job *n = list->next; sw_writer_job_free(list); list = n; }
          break;
        }
        pthread_mutex_lock(&w->mu); /* put the batch back in front, keeping order */
        struct sw_writer_job *last = list;
        while (last->next) last = last->next;
        last->next = w->head;
        w->head = list;
        if (!w->tail) w->tail = last;
        pthread_mutex_unlock(&w->mu);
        backoff = backoff ? (backoff * 2 > 5000 ? 5000 : backoff * 2) : 100;
        struct timespec ts = {.tv_sec = (time_t)(backoff / 1000), .tv_nsec = (long)(backoff % 1000) * 1000000L};
        nanosleep(&ts, NULL);
        continue;
      }
      backoff = 0;
      if (atomic_exchange(&w->disk_full, 0))
        SW_LOG(SW_L_INFO, "buffer", "space under %s is back: commits resumed, reading resumes",
               w->opts.data_dir);
      uint64_t freed = 0;
      while (list) {
        struct sw_writer_job *n = list->next;
        freed += list->raw.len + 64;
        if (list->chunk_id) sw_hot_put(w->opts.hot, list->chunk_id, &list->raw);
        sw_writer_job_free(list);
        list = n;
      }
      atomic_fetch_sub(&w->inflight, freed);
      if (w->opts.on_commit) w->opts.on_commit(w->opts.arg);
      uv_async_send(&w->async);
    }
    if ((uint64_t)sw_time_mono_ms() - last_gc >= 1000 || (list == NULL && (uint64_t)sw_time_mono_ms() - last_gc >= 200)) {
      uint64_t g = (uint64_t)sw_time_mono_ms();
      run_gc(w);
      if (atomic_exchange(&w->resync, 0)) {
        uint64_t used = 0, chunks = 0;
        if (sw_db_usage(w->db, &used, &chunks) == SW_OK) atomic_store(&w->used, used);
        uv_async_send(&w->async);
      }
      last_gc = (uint64_t)sw_time_mono_ms();
      w->t_gc += last_gc - g;
    }
    if (stop && !list) {
      pthread_mutex_lock(&w->mu);
      int empty = w->head == NULL;
      pthread_mutex_unlock(&w->mu);
      if (empty) break;
    }
  }
  return NULL;
}

static void on_async(uv_async_t *a) {
  struct sw_writer *w = (struct sw_writer *)a;
  if (w->opts.on_progress) w->opts.on_progress(w->opts.arg);
}

int sw_writer_start(uv_loop_t *loop, const struct sw_writer_opts *opts, struct sw_writer **out,
                    char *err, size_t errlen) {
  *out = NULL;
  struct sw_writer *w = calloc(1, sizeof *w);
  if (!w) return SW_ENOMEM;
  w->opts = *opts;
  int rc = SW_ENOMEM;
  w->sinks = calloc(opts->nsinks + 1, sizeof *w->sinks);
  if (!w->sinks) goto fail;
  for (size_t i = 0; i < opts->nsinks; i++)
    if (!(w->sinks[i] = strdup(opts->sinks[i]))) goto fail;
  w->opts.sinks = NULL;
  sw_buf_init(&w->zbuf, SIZE_MAX);
  if (!(w->cctx = ZSTD_createCCtx())) goto fail;
  if ((rc = sw_db_open(opts->data_dir, 0, &w->db, err, errlen))) goto fail;
  uint64_t used = 0, chunks = 0;
  if ((rc = sw_db_usage(w->db, &used, &chunks))) goto fail;
  atomic_store(&w->used, used);
  pthread_mutex_init(&w->mu, NULL);
  pthread_cond_init(&w->cv, NULL);
  uv_async_init(loop, &w->async, on_async);
  if (pthread_create(&w->thread, NULL, writer_main, w)) {
    rc = SW_EIO;
    uv_close((uv_handle_t *)&w->async, NULL);
    goto fail;
  }
  pthread_setname_np(w->thread, "sw-writer"); /* for top -H and per-thread CPU figures */
  *out = w;
  return SW_OK;
fail:
  if (w->sinks)
    for (size_t i = 0; i < opts->nsinks; i++) free(w->sinks[i]);
  free(w->sinks);
  ZSTD_freeCCtx(w->cctx);
  sw_db_close(w->db);
  free(w);
  return rc;
}

void sw_writer_submit(struct sw_writer *w, struct sw_writer_job *job) {
  atomic_fetch_add(&w->inflight, job->raw.len + 64);
  job->next = NULL;
  pthread_mutex_lock(&w->mu);
  if (w->tail)
    w->tail->next = job;
  else
    w->head = job;
  w->tail = job;
  pthread_cond_signal(&w->cv);
  pthread_mutex_unlock(&w->mu);
}

uint64_t sw_writer_inflight(struct sw_writer *w) { return atomic_load(&w->inflight); }
struct sw_hot *sw_writer_hot(struct sw_writer *w) { return w->opts.hot; }

void sw_writer_resync(struct sw_writer *w) {
  atomic_store(&w->resync, 1);
  sw_writer_kick(w);
}
uint64_t sw_writer_used(struct sw_writer *w) { return atomic_load(&w->used); }
int sw_writer_disk_full(struct sw_writer *w) { return atomic_load(&w->disk_full); }
uint64_t sw_writer_commit_failures(struct sw_writer *w, int full) {
  return atomic_load(full ? &w->fail_full : &w->fail_other);
}

void sw_writer_kick(struct sw_writer *w) {
  pthread_mutex_lock(&w->mu);
  w->kicked = 1;
  pthread_cond_signal(&w->cv);
  pthread_mutex_unlock(&w->mu);
}

static void on_close(uv_handle_t *h) {
  struct sw_writer *w = (struct sw_writer *)h;
  for (size_t i = 0; i < w->opts.nsinks; i++) free(w->sinks[i]);
  free(w->sinks);
  free(w);
}

void sw_writer_stop(struct sw_writer *w, uint64_t deadline_ms) {
  pthread_mutex_lock(&w->mu);
  w->stop = 1;
  w->stop_deadline_ms = (uint64_t)sw_time_mono_ms() + deadline_ms;
  pthread_cond_signal(&w->cv);
  pthread_mutex_unlock(&w->mu);
  pthread_join(w->thread, NULL);
  SW_LOG(SW_L_DEBUG, "writer", "compress %llu ms, commit %llu ms, gc %llu ms, wait %llu ms, %llu batches",
         (unsigned long long)w->t_compress, (unsigned long long)w->t_commit, (unsigned long long)w->t_gc,
         (unsigned long long)w->t_wait, (unsigned long long)w->n_batches);
  while (w->head) {
    struct sw_writer_job *n = w->head->next;
    sw_writer_job_free(w->head);
    w->head = n;
  }
  ZSTD_freeCCtx(w->cctx);
  w->cctx = NULL;
  sw_buf_free(&w->zbuf);
  /* Other connections (metrics, search) may outlive this one and are read-only, so SQLite's
   * checkpoint-on-last-close would not run: fold the WAL into spillway.db now, so that a copy
   * of that one file (spillway search --db) holds everything. */
  if (sw_db_checkpoint(w->db))
    SW_LOG(SW_L_WARN, "buffer", "final checkpoint: %s", sw_db_errmsg(w->db));
  sw_db_close(w->db);
  w->db = NULL;
}

void sw_writer_free(struct sw_writer *w) {
  if (!w) return;
  pthread_mutex_destroy(&w->mu);
  pthread_cond_destroy(&w->cv);
  uv_close((uv_handle_t *)&w->async, on_close);
}
