#include "restore.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "../../common/hash.h"
#include "../../common/timefmt.h"
#include "../../sinks/file.h"
#include "../../sinks/shipper.h"
#include "../buffer/buffer.h"
#include "../buffer/chunk.h"
#include "../buffer/hot.h"
#include "../buffer/lock.h"
#include "../buffer/writer.h"
#include "object.h"
#include "verified.h"

#define QUEUE_BYTES (64u << 20) /* chunks handed to the writer and not committed yet */

struct prog {
  char *key;
  int64_t id;
  uint64_t offset, fp;
};

struct rs {
  const struct sw_arch_restore_opts *o;
  struct sw_s3c *s;
  const struct sw_arch_catalog *cat;
  uv_loop_t loop;
  uv_async_t async;
  uv_timer_t timer;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  struct sw_writer_job *qhead, **qtail; /* made by the reader, submitted on the loop */
  _Atomic uint64_t queued;
  int reader_done, rc;
  char err[1200];
  struct sw_config rcfg;
  struct sw_sink_conf to;
  struct sw_writer *w;
  struct sw_hot *hot;
  struct sw_shipper *sh;
  struct sw_file_sink *fsink;
  struct sw_db *db;
  struct prog *prog;
  size_t nprog, capprog;
  int64_t next_id;
  _Atomic uint64_t records, bytes, objects, skipped;
  uint64_t dead_records;
  int finished;
  int64_t t0, last_note;
};

static uint64_t object_fp(const struct sw_arch_obj *o) {
  return sw_fnv1a(SW_FNV1A_INIT, o->m.ndjson_sha256, strlen(o->m.ndjson_sha256)) >> 1;
}

/* ---- the reader thread: objects -> verified -> chunks with their progress ---- */

struct reader {
  struct rs *r;
  const struct sw_arch_obj *obj;
  struct sw_file_state fs;
  struct sw_chunk_builder b;
  struct sw_buf labels, line, ok_labels;
  int ok;                 /* the labels in ok_labels pass the matchers */
  uint64_t prev_end;      /* NDJSON offset after the last record looked at */
  uint64_t chunk_max;
};

static void hand_over(struct rs *r, struct sw_writer_job *j) {
  uint64_t n = j->raw.len + 64;
  pthread_mutex_lock(&r->mu);
  j->next = NULL;
  *r->qtail = j;
  r->qtail = &j->next;
  atomic_fetch_add(&r->queued, n);
  pthread_mutex_unlock(&r->mu);
  uv_async_send(&r->async);
  /* Bounded memory: wait while the writer is behind. */
  pthread_mutex_lock(&r->mu);
  while (atomic_load(&r->queued) + sw_writer_inflight(r->w) > QUEUE_BYTES) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += 20000000;
    if (ts.tv_nsec >= 1000000000) {
      ts.tv_sec++;
      ts.tv_nsec -= 1000000000;
    }
    pthread_cond_timedwait(&r->cv, &r->mu, &ts);
  }
  pthread_mutex_unlock(&r->mu);
}

/* The open chunk (maybe none) and the progress up to `offset`, as one commit. */
static int emit(struct reader *d, uint64_t offset) {
  struct sw_buf raw;
  sw_buf_init(&raw, SIZE_MAX);
  int have = d->b.count > 0;
  int rc = have ? sw_chunk_finish(&d->b, &raw) : SW_OK;
  if (rc) {
    sw_buf_free(&raw);
    return rc;
  }
  d->fs.offset = offset;
  struct sw_writer_job *j = sw_writer_job_new(SW_COMMIT_CHUNK, &d->fs, have ? d->labels.data : "{}", "archive", &raw);
  sw_buf_free(&raw);
  if (!j) return SW_ENOMEM;
  if (have) {
    j->op.ts_min = d->b.ts_min;
    j->op.ts_max = d->b.ts_max;
    j->op.records = d->b.count;
    atomic_fetch_add(&d->r->records, d->b.count);
  }
  sw_chunk_builder_reset(&d->b);
  hand_over(d->r, j);
  return SW_OK;
}

static int on_rec(void *arg, const struct sw_ndjson_rec *nr, uint64_t end) {
  struct reader *d = arg;
  const struct sw_search_query *q = d->r->o->q;
  if (!nr) return SW_ECORRUPT; /* verified just before: cannot happen unless memory is bad */
  uint64_t start = d->prev_end;
  d->prev_end = end;
  if (nr->ts_ns < q->since || nr->ts_ns >= q->until) return SW_OK;
  int rc;
  if (d->ok_labels.len != nr->labels_len + 1 || memcmp(d->ok_labels.data, nr->labels, nr->labels_len)) {
    sw_buf_reset(&d->ok_labels);
    if ((rc = sw_buf_append(&d->ok_labels, nr->labels, nr->labels_len)) || (rc = sw_buf_putc(&d->ok_labels, 0)))
      return rc;
    uint64_t deferred = 0;
    d->ok = sw_label_match_chunk(q->labels, q->nlabels, d->ok_labels.data, 0, &deferred);
  }
  if (!d->ok) return SW_OK;
  sw_buf_reset(&d->line);
  if ((rc = sw_ndjson_rec_line(nr, &d->line))) return rc;
  int same = d->labels.len == nr->labels_len + 1 && !memcmp(d->labels.data, nr->labels, nr->labels_len);
  if (d->b.count && (!same || sw_chunk_raw_size(&d->b) + d->line.len > d->chunk_max)) {
    if ((rc = emit(d, start))) return rc; /* progress: up to this record, not including it */
  }
  if (!same) {
    sw_buf_reset(&d->labels);
    if ((rc = sw_buf_append(&d->labels, nr->labels, nr->labels_len)) || (rc = sw_buf_putc(&d->labels, 0)))
      return rc;
  }
  atomic_fetch_add(&d->r->bytes, end - start);
  return sw_chunk_add(&d->b, nr->ts_ns, nr->stream, 0, d->line.data, d->line.len);
}

static struct prog *find_prog(struct rs *r, const char *key) {
  for (size_t i = 0; i < r->nprog; i++)
    if (!strcmp(r->prog[i].key, key)) return &r->prog[i];
  return NULL;
}

/* The first failure stops the reader: "KEY: why". */
static void fail(struct rs *r, int rc, const char *key, const char *why) {
  pthread_mutex_lock(&r->mu);
  if (!r->rc) {
    r->rc = rc;
    snprintf(r->err, sizeof r->err, "%s: %s", key, why);
  }
  pthread_mutex_unlock(&r->mu);
}

static void *reader_main(void *arg) {
  struct rs *r = arg;
  struct sw_s3c_conn *k = sw_s3c_conn_new(r->s);
  struct sw_buf blob;
  sw_buf_init(&blob, SIZE_MAX);
  struct reader d = {.r = r};
  d.chunk_max = r->o->cfg->buffer.chunk_max_bytes ? r->o->cfg->buffer.chunk_max_bytes : (1u << 20);
  sw_chunk_builder_init(&d.b, d.chunk_max + (1u << 20));
  sw_buf_init(&d.labels, SIZE_MAX);
  sw_buf_init(&d.line, SIZE_MAX);
  sw_buf_init(&d.ok_labels, SIZE_MAX);
  char source[300], why[512];
  snprintf(source, sizeof source, "archive:%s", r->o->from->name);
  if (!k) fail(r, SW_ENOMEM, "archive", "out of memory");
  for (size_t i = 0; k && i < r->cat->n && !r->rc; i++) {
    const struct sw_arch_obj *o = &r->cat->o[i];
    if (!o->has_manifest) {
      snprintf(why, sizeof why, "%s: it cannot be verified, so nothing of it is restored", o->why);
      fail(r, SW_ECORRUPT, o->key, why);
      break;
    }
    struct prog *p = find_prog(r, o->key);
    if (p && p->fp != object_fp(o)) {
      fail(r, SW_ECORRUPT, o->key, "its manifest changed since this restore began (another upload?)");
      break;
    }
    if (p && p->offset >= o->m.ndjson_bytes) {
      atomic_fetch_add(&r->skipped, 1);
      continue;
    }
    int rc = sw_s3c_get(k, o->key, &blob, why, sizeof why);
    if (rc) {
      fail(r, rc == SW_ENOMEM ? rc : SW_EIO, o->key, why);
      break;
    }
    /* Checked whole before anything of it is sent, then decompressed a second time to read it:
     * holding the decompressed object instead would cost ~10x its size in memory. */
    if ((rc = sw_arch_verify(o, blob.data, blob.len, why, sizeof why))) {
      char msg[700];
      snprintf(msg, sizeof msg, "failed its check: %s; nothing of it was sent", why);
      fail(r, rc == SW_ENOMEM ? rc : SW_ECORRUPT, o->key, msg);
      break;
    }
    d.obj = o;
    d.fs = (struct sw_file_state){.id = p ? p->id : r->next_id++, .source = source, .path = o->key,
                                  .fp_hash = object_fp(o)};
    d.prev_end = p ? p->offset : 0;
    sw_buf_reset(&d.labels);
    sw_buf_reset(&d.ok_labels);
    sw_chunk_builder_reset(&d.b);
    rc = sw_arch_records(blob.data, blob.len, o->gzip, d.prev_end, on_rec, &d);
    if (!rc) rc = emit(&d, o->m.ndjson_bytes); /* the rest, and the object marked done */
    if (rc) {
      fail(r, rc, o->key, sw_strerror(rc));
      break;
    }
    atomic_fetch_add(&r->objects, 1);
    if (blob.cap > (128u << 20)) sw_buf_shrink(&blob, 0);
  }
  sw_s3c_conn_free(k);
  sw_buf_free(&blob);
  sw_chunk_builder_free(&d.b);
  sw_buf_free(&d.labels);
  sw_buf_free(&d.line);
  sw_buf_free(&d.ok_labels);
  pthread_mutex_lock(&r->mu);
  r->reader_done = 1;
  pthread_mutex_unlock(&r->mu);
  uv_async_send(&r->async);
  return NULL;
}

/* ---- the loop: submit, watch the cursor, stop ---- */

static void on_async(uv_async_t *h) {
  struct rs *r = h->data;
  pthread_mutex_lock(&r->mu);
  struct sw_writer_job *j = r->qhead;
  r->qhead = NULL;
  r->qtail = &r->qhead;
  pthread_mutex_unlock(&r->mu);
  while (j) {
    struct sw_writer_job *n = j->next;
    atomic_fetch_sub(&r->queued, j->raw.len + 64);
    sw_writer_submit(r->w, j);
    j = n;
  }
}

static void on_commit(void *arg) {
  struct rs *r = arg;
  if (r->sh) sw_shipper_notify(r->sh);
  if (r->fsink) sw_file_sink_notify(r->fsink);
  pthread_mutex_lock(&r->mu);
  pthread_cond_broadcast(&r->cv);
  pthread_mutex_unlock(&r->mu);
}

static void on_progress(void *arg) { (void)arg; }

static void note(struct rs *r, FILE *f, const char *what) {
  double secs = (double)(sw_time_mono_ns() - r->t0) / 1e9;
  double mb = (double)atomic_load(&r->bytes) / 1e6;
  fprintf(f, "%s %" PRIu64 " records (%.1f MB of NDJSON) from %" PRIu64 " objects into %s in %.1f s: %.1f MB/s, %.0f records/s",
          what, (uint64_t)atomic_load(&r->records), mb, (uint64_t)atomic_load(&r->objects), r->to.name, secs,
          secs > 0 ? mb / secs : 0.0, secs > 0 ? (double)atomic_load(&r->records) / secs : 0.0);
  if (atomic_load(&r->skipped))
    fprintf(f, "; %" PRIu64 " objects were restored before", (uint64_t)atomic_load(&r->skipped));
  fputc('\n', f);
  fflush(f);
}

static void on_timer(uv_timer_t *h) {
  struct rs *r = h->data;
  int64_t now = sw_time_mono_ns();
  if (now - r->last_note > 5000000000LL) {
    r->last_note = now;
    note(r, stderr, "so far:");
  }
  pthread_mutex_lock(&r->mu);
  int done = r->reader_done && !r->qhead, failed = r->rc;
  pthread_mutex_unlock(&r->mu);
  if (failed && r->reader_done) { /* what was committed still ships, then stop */
    if (sw_writer_inflight(r->w)) return;
  } else if (!done || sw_writer_inflight(r->w)) {
    return;
  }
  int64_t max = 0;
  struct sw_sink_cursor cur;
  if (sw_db_max_chunk_id(r->db, &max) || sw_db_cursor_get(r->db, r->to.name, sw_sink_type_name(r->to.type), &cur)) return;
  if (cur.acked < max) return;
  if (r->sh) {
    struct sw_shipper_sink_stats st;
    sw_shipper_sink_stats(r->sh, 0, &st);
    r->dead_records = st.dead_records;
  }
  r->finished = 1;
  uv_stop(&r->loop);
}

static int load_prog(void *arg, const struct sw_file_state *st) {
  struct rs *r = arg;
  if (sw_grow(&r->prog, r->nprog, &r->capprog, sizeof *r->prog, 64)) return SW_ENOMEM;
  if (!(r->prog[r->nprog].key = strdup(st->path))) return SW_ENOMEM;
  r->prog[r->nprog].id = st->id;
  r->prog[r->nprog].offset = st->offset;
  r->prog[r->nprog].fp = st->fp_hash;
  r->nprog++;
  if (st->id >= r->next_id) r->next_id = st->id + 1;
  return SW_OK;
}

/* data_dir/restore/<to>-<hash of the plan>: one state per plan, so the same restore asked
 * again resumes or finds itself done, and another plan starts afresh. */
static void state_dir(const struct sw_arch_restore_opts *o, char *out, size_t n) {
  uint64_t h = SW_FNV1A_INIT;
  const struct sw_search_query *q = o->q;
  h = sw_fnv1a(h, o->from->name, strlen(o->from->name) + 1);
  h = sw_fnv1a(h, o->to->name, strlen(o->to->name) + 1);
  h = sw_fnv1a(h, &q->since, sizeof q->since);
  h = sw_fnv1a(h, &q->until, sizeof q->until);
  for (size_t i = 0; i < q->nlabels; i++) {
    int op = (int)q->labels[i].op;
    h = sw_fnv1a(h, q->labels[i].key, strlen(q->labels[i].key) + 1);
    h = sw_fnv1a(h, &op, sizeof op);
    h = sw_fnv1a(h, q->labels[i].value, strlen(q->labels[i].value) + 1);
  }
  snprintf(out, n, "%s/restore/%s-%016" PRIx64, o->cfg->data_dir, o->to->name, h);
}

static int restore(struct sw_s3c *s, const struct sw_arch_catalog *cat, const struct sw_arch_restore_opts *o) {
  struct rs *r = calloc(1, sizeof *r);
  if (!r) return 1;
  r->o = o;
  r->s = s;
  r->cat = cat;
  r->next_id = 1;
  r->qtail = &r->qhead;
  char dir[4200], err[1024] = "", parent[4200];
  state_dir(o, dir, sizeof dir);
  snprintf(parent, sizeof parent, "%s/restore", o->cfg->data_dir);
  mkdir(o->cfg->data_dir, 0750);
  mkdir(parent, 0750);
  int code = 1, lock = -1, loop_open = 0, sync_init = 0;
  pthread_t th;
  int th_started = 0;
  struct sw_datalock_holder holder;
  int lr = sw_datalock_open(dir, &lock, &holder, err, sizeof err);
  if (lr == SW_EAGAIN) {
    fprintf(stderr, "spillway archive restore: this restore is already running (pid %ld, state in %s)\n",
            holder.pid, dir);
    goto out;
  }
  if (lr) {
    fprintf(stderr, "spillway archive restore: %s\n", err);
    goto out;
  }
  if (sw_db_open(dir, 0, &r->db, err, sizeof err) || sw_db_load_files(r->db, load_prog, r)) {
    fprintf(stderr, "spillway archive restore: %s: %s\n", dir, err[0] ? err : sw_db_errmsg(r->db));
    goto out;
  }
  /* The agent's configuration, with the target as its only sink and the state as its buffer. */
  r->rcfg = *o->cfg;
  r->to = *o->to;
  r->to.match = NULL; /* the restore's own --label/--since/--until choose; match routes live logs */
  r->to.nmatch = 0;
  r->rcfg.data_dir = dir;
  r->rcfg.sinks = &r->to;
  r->rcfg.nsinks = 1;
  pthread_mutex_init(&r->mu, NULL);
  pthread_cond_init(&r->cv, NULL);
  sync_init = 1;
  if (uv_loop_init(&r->loop)) goto out;
  loop_open = 1;
  const char *names[1] = {r->to.name};
  struct sw_writer_opts wo = {.data_dir = dir, .max_bytes = o->cfg->buffer.max_bytes,
                              .zstd_level = (int)o->cfg->buffer.zstd_level, .zstd_ldm = o->cfg->buffer.zstd_long,
                              .sinks = names, .nsinks = 1, .on_progress = on_progress, .on_commit = on_commit,
                              .arg = r};
  if (sw_hot_new(o->cfg->buffer.recent_in_memory, &r->hot)) goto out;
  wo.hot = r->hot;
  if (sw_writer_start(&r->loop, &wo, &r->w, err, sizeof err)) {
    fprintf(stderr, "spillway archive restore: %s\n", err);
    goto out;
  }
  int rc = r->to.type == SW_SINK_FILE ? sw_file_sink_start(&r->to, dir, r->w, &r->fsink, err, sizeof err)
                                      : sw_shipper_start(&r->loop, &r->rcfg, r->w, &r->sh, err, sizeof err);
  if (rc) {
    fprintf(stderr, "spillway archive restore: %s\n", err);
    goto stop;
  }
  uv_async_init(&r->loop, &r->async, on_async);
  r->async.data = r;
  uv_timer_init(&r->loop, &r->timer);
  r->timer.data = r;
  uv_timer_start(&r->timer, on_timer, 50, 50);
  r->t0 = r->last_note = sw_time_mono_ns();
  fprintf(stderr, "restoring %zu objects of sink %s into %s (state in %s)\n", cat->n, o->from->name, r->to.name, dir);
  if (pthread_create(&th, NULL, reader_main, r)) goto stop;
  th_started = 1;
  uv_run(&r->loop, UV_RUN_DEFAULT);
  pthread_join(th, NULL);
  th_started = 0;
  on_async(&r->async); /* nothing is left queued: the reader is done */
stop:
  if (th_started) pthread_join(th, NULL);
  if (r->sh) sw_shipper_stop(r->sh, 1500);
  if (r->fsink) sw_file_sink_stop(r->fsink, 1500);
  r->sh = NULL;
  r->fsink = NULL;
  if (r->w) {
    sw_writer_stop(r->w, 2500);
    sw_writer_free(r->w);
  }
  if (uv_is_active((uv_handle_t *)&r->timer) || r->timer.data) uv_close((uv_handle_t *)&r->timer, NULL);
  if (r->async.data) uv_close((uv_handle_t *)&r->async, NULL);
  uv_run(&r->loop, UV_RUN_DEFAULT);
  if (r->rc) {
    fprintf(stderr, "spillway archive restore: %s\n", r->err);
    note(r, stderr, "stopped after restoring");
    code = r->rc == SW_ECORRUPT ? 2 : 1;
  } else if (r->finished) {
    note(r, stdout, "restored");
    if (r->dead_records)
      fprintf(stderr, "spillway archive restore: %s refused %" PRIu64 " records for good: see `spillway status` "
                      "with data_dir %s\n", r->to.name, r->dead_records, dir);
    code = r->dead_records ? 1 : 0;
  }
out:
  if (loop_open) uv_loop_close(&r->loop);
  if (sync_init) {
    pthread_mutex_destroy(&r->mu);
    pthread_cond_destroy(&r->cv);
  }
  sw_hot_free(r->hot);
  sw_db_close(r->db);
  sw_datalock_close(lock);
  for (size_t i = 0; i < r->nprog; i++) free(r->prog[i].key);
  free(r->prog);
  free(r);
  return code;
}

/* ---- --dry-run and --verify-only ---- */

static int dry_run(const struct sw_arch_catalog *cat, const struct sw_arch_restore_opts *o) {
  uint64_t bytes = 0, nd = 0, records = 0, bad = 0;
  for (size_t i = 0; i < cat->n; i++) {
    const struct sw_arch_obj *ob = &cat->o[i];
    char t0[40] = "-", t1[40] = "-";
    if (ob->has_manifest && ob->m.records) {
      t0[sw_time_format_rfc3339(ob->m.ts_min, t0)] = 0;
      t1[sw_time_format_rfc3339(ob->m.ts_max, t1)] = 0;
    }
    printf("%s %s records=%" PRIu64 " bytes=%" PRIu64 " ndjson_bytes=%" PRIu64 " %s..%s\n",
           ob->has_manifest ? "restore" : "REFUSE", ob->key, ob->m.records, ob->size, ob->m.ndjson_bytes, t0, t1);
    bytes += ob->size;
    nd += ob->m.ndjson_bytes;
    records += ob->m.records;
    bad += !ob->has_manifest;
  }
  printf("plan: %zu objects, at most %" PRIu64 " records, %" PRIu64 " bytes to download, %" PRIu64
         " bytes of NDJSON%s%s\n", cat->n, records, bytes, nd, o->to ? " into " : "", o->to ? o->to->name : "");
  if (bad) printf("%" PRIu64 " objects have no manifest: a restore stops at the first of them\n", bad);
  return fflush(stdout) ? 1 : 0;
}

struct vres {
  int rc;
  char why[512];
};

struct vctx {
  const struct sw_arch_catalog *cat;
  struct vres *v;
  _Atomic uint64_t bytes;
};

static int verify_one(void *arg, struct sw_s3c_conn *k, size_t i) {
  struct vctx *c = arg;
  struct sw_buf blob;
  sw_buf_init(&blob, SIZE_MAX);
  struct vres *v = &c->v[i];
  v->rc = sw_s3c_get(k, c->cat->o[i].key, &blob, v->why, sizeof v->why);
  if (!v->rc) v->rc = sw_arch_verify(&c->cat->o[i], blob.data, blob.len, v->why, sizeof v->why);
  atomic_fetch_add(&c->bytes, blob.len);
  sw_buf_free(&blob);
  return v->rc == SW_ENOMEM ? v->rc : SW_OK;
}

static int verify_only(struct sw_s3c *s, const struct sw_arch_catalog *cat, const struct sw_arch_restore_opts *o) {
  struct vctx c = {.cat = cat, .v = calloc(cat->n + 1, sizeof *c.v)};
  if (!c.v) return 1;
  atomic_init(&c.bytes, 0);
  int64_t t0 = sw_time_mono_ns();
  unsigned threads = o->threads ? o->threads : 4;
  if (sw_arch_parallel(s, cat->n, threads, verify_one, &c)) {
    fprintf(stderr, "spillway archive restore: out of memory\n");
    free(c.v);
    return 1;
  }
  uint64_t failed = 0, records = 0;
  for (size_t i = 0; i < cat->n; i++) {
    if (c.v[i].rc) {
      failed++;
      printf("FAILED %s: %s\n", cat->o[i].key, c.v[i].why);
    } else {
      records += cat->o[i].m.records;
      printf("ok %s records=%" PRIu64 "\n", cat->o[i].key, cat->o[i].m.records);
    }
  }
  double secs = (double)(sw_time_mono_ns() - t0) / 1e9;
  printf("verified %zu objects (%" PRIu64 " records, %.1f MB) in %.1f s: %" PRIu64 " failed\n", cat->n - failed,
         records, (double)atomic_load(&c.bytes) / 1e6, secs, failed);
  free(c.v);
  char err[512];
  struct sw_arch_verified vf = {.objects = cat->n, .failed = failed, .records = records};
  if (sw_arch_verified_save(o->cfg->data_dir, o->from->name, &vf, err, sizeof err))
    fprintf(stderr, "spillway archive restore: %s\n", err);
  fflush(stdout);
  return failed ? 2 : 0;
}

int sw_arch_restore(struct sw_s3c *s, const struct sw_arch_catalog *cat, const struct sw_arch_restore_opts *o) {
  if (o->dry_run) return dry_run(cat, o);
  if (o->verify_only) return verify_only(s, cat, o);
  return restore(s, cat, o);
}
