/* shipper.c - batching, ordering, cursors and dead letters of the network sinks; see shipper.h.
 *
 * Per sink, on the loop thread:
 *   batches ("flights") are cut from the buffer in chunk-id order and kept in a FIFO:
 *     CUT (job) -> SENDING (one request after another, as the codec says) -> DONE
 *   the cursor moves over the DONE prefix of the FIFO only, in a settle job that also stores
 *   the prefix's dead letters, in one transaction: a batch that finishes early waits for the
 *   ones before it, so a crash resends (never skips) what was not settled.
 * At most one job (settle and/or cut, on libuv's thread pool) runs per sink at a time, so the
 * sink's database connection and decompression context are used by one thread at a time.
 * A replayed dead letter is a flight of its own outside the FIFO; when it finishes, its row is
 * deleted and whatever failed again is stored as new dead letters, in the same transaction.
 */
#include "shipper.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#include "../agent/buffer/buffer.h"
#include "../agent/buffer/chunk.h"
#include "../agent/buffer/hot.h"
#include "../agent/buffer/writer.h"
#include "../common/log.h"
#include "../common/timefmt.h"
#include "sink.h"

#define MAX_BATCH_ROWS 4096
#define REPLAY_CHECK_MS 2000
#define QUIET_MS 200 /* no new chunk for this long: a partial batch goes without max_wait */

struct flight {
  struct hsink *hs;
  struct sw_batch b;
  int done;
  int stalled;       /* its next request could not be started (out of memory): the tick retries */
  struct sw_sink_req req; /* the request the codec handed out last (valid until its next call) */
  int has_req;       /* req was handed out but not started yet */
  struct flight *next;
  uv_work_t seal;    /* compression runs beside the next cut, on another pool thread */
  int seal_rc;
};

struct job {
  uv_work_t work;
  struct hsink *hs;
  /* in */
  int cut, flush;
  int64_t after;
  size_t nsettle;              /* flights of the FIFO prefix settled by this job */
  struct sw_sink_cursor cursor;
  int64_t verify_upto;         /* batches starting before it are cut with b.verify */
  struct flight *replayed;     /* a finished replay to settle, or NULL */
  int replay;                  /* look for a requeued dead letter */
  int64_t replay_after;
  char last_error[256];
  int set_error;
  /* out */
  int settle_rc, cut_rc;
  struct flight *batch, *replay_batch;
  uint64_t wait_ms;            /* > 0: data waits for max_wait */
  int64_t planned;             /* the cursor's `planned` as this job left it */
  int idle;                    /* nothing to cut */
  int no_replay;               /* no requeued dead letter left */
  char err[256];
};

struct hsink {
  struct sw_shipper *sh;
  const struct sw_sink_conf *conf;
  const struct sw_sink_ops *ops;
  void *codec;
  struct sw_http_target target;
  char *auth_header;
  struct sw_db *db;
  ZSTD_DCtx *dctx;             /* dead letters */
  ZSTD_CCtx *cctx;
  struct sw_chunk_reader rd;   /* chunks, used by one job at a time */
  struct sw_sink_cursor cur;   /* committed */
  int64_t cut_to;              /* last chunk id in a flight (>= cur.acked) */
  int64_t verify_upto;         /* verify_resends: `planned` found at start (what may have been
                                  sent before a crash); 0: nothing to check */
  struct flight *head, *tail;  /* the FIFO */
  size_t nflight;
  struct flight *replay;       /* a replayed dead letter in flight */
  int replay_due;
  int64_t replay_after;
  struct job *job;
  unsigned sealing;            /* flights being sealed (compressed) on the pool */
  uv_timer_t wait_timer, tick;
  int hint, idle;
  char last_error[256];
  int error_dirty;
  uint64_t concurrency, max_bytes, max_wait_ms;
  struct sw_shipper_sink_stats stats;
};

struct sw_shipper {
  uv_loop_t *loop;
  uv_async_t notify;
  struct sw_http *http;
  struct sw_writer *w;
  struct hsink *sinks;
  size_t n;
  int flushing, stopping, closing;
  unsigned open_handles;
};

static void pump(struct hsink *hs);

static uint64_t now_ms(void) { return uv_hrtime() / 1000000; }

/* ---- batches in flight ---- */

static void flight_free(struct flight *f) {
  if (!f) return;
  if (f->hs->ops->release) f->hs->ops->release(f->hs->codec, &f->b);
  sw_batch_free_dead(&f->b);
  free(f);
}

__attribute__((format(printf, 2, 3))) static void set_error(struct hsink *hs, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(hs->last_error, sizeof hs->last_error, fmt, ap);
  va_end(ap);
  hs->error_dirty = 1;
}

/* The first line of a server's answer, at most 160 bytes, for last-error and logs. */
static int excerpt(const char *body, size_t len) {
  size_t n = 0;
  while (n < len && n < 160 && body[n] != '\n' && body[n] != '\r') n++;
  return (int)n;
}

static void send_next(struct flight *f);

static int on_response(struct sw_http_req *r, const struct sw_http_resp *resp, void *arg) {
  struct flight *f = arg;
  const void *body = NULL;
  size_t len = 0;
  int out = f->hs->ops->respond(f->hs->codec, &f->b, resp, &body, &len);
  if (out == SW_HTTP_RETRY && body) sw_http_req_set_body(r, body, len);
  return out;
}

static void on_retry(struct sw_http_req *r, const struct sw_http_resp *resp, void *arg) {
  (void)r;
  struct flight *f = arg;
  if (resp->status == 0)
    set_error(f->hs, "%s", resp->curl_error);
  else
    set_error(f->hs, "HTTP %ld: %.*s", resp->status, excerpt(resp->body, resp->body_len), resp->body);
  pump(f->hs); /* write it down now: `status` shows why a sink is stuck */
}

static void on_done(struct sw_http_req *r, const struct sw_http_resp *resp, void *arg) {
  (void)r;
  struct flight *f = arg;
  if (resp->status < 0) return; /* cancelled at shutdown: not done, sent again next start */
  f->hs->stats.bytes_sent += f->b.wire_bytes;
  send_next(f);
}

/* The flight cannot go on now (allocation failure): on_tick tries again, so an ENOMEM delays a
 * batch but never strands it. A request the codec already handed out is kept in f->req and
 * started as it is (asking the codec again would skip it). */
static void stall(struct flight *f, int rc) {
  SW_LOG(SW_L_ERROR, "sink", "%s: cannot start a request: %s (will retry)", f->hs->conf->name,
         sw_strerror(rc));
  f->stalled = 1;
  f->done = 0;
}

static void start_req(struct flight *f) {
  struct hsink *hs = f->hs;
  const struct sw_sink_req *q = &f->req;
  struct sw_http_req_opts o = {.target = &hs->target, .method = q->method,
                               .content_type = q->content_type,
                               .content_encoding = q->content_encoding,
                               .on_response = on_response, .on_retry = on_retry,
                               .done = on_done, .arg = f, .max_attempts = q->max_attempts};
  f->b.wire_bytes = q->len;
  struct sw_http_req *r = sw_http_req_new(hs->sh->http, &o, q->url, q->body, q->len);
  int rc = r ? SW_OK : SW_ENOMEM;
  for (size_t i = 0; !rc && i < 4 && q->headers[i]; i++) rc = sw_http_req_header(r, q->headers[i]);
  if (!rc) {
    f->has_req = 0;
    rc = sw_http_send(r);
    r = NULL; /* freed by send on failure */
    f->has_req = rc != SW_OK;
  }
  if (rc) { /* only allocation failures get here */
    if (r) sw_http_req_free(r);
    stall(f, rc);
  }
}

static void send_next(struct flight *f) {
  struct hsink *hs = f->hs;
  f->stalled = 0;
  if (f->has_req && !hs->sh->closing) {
    start_req(f);
    return;
  }
  memset(&f->req, 0, sizeof f->req);
  int more = hs->sh->closing ? 0 : hs->ops->next(hs->codec, &f->b, &f->req);
  if (more < 0) {
    stall(f, more);
    return;
  }
  if (!more) {
    if (hs->sh->closing) return;
    f->done = 1;
    /* Only its counts and dead letters are needed to settle it: the encoded batch goes now,
     * not when the flights before it are done (memory stays at `concurrency` batches). */
    if (hs->ops->release) hs->ops->release(hs->codec, &f->b);
    if (f->b.ndead) {
      const struct sw_sink_dead *d = &f->b.dead[f->b.ndead - 1];
      set_error(hs, "HTTP %ld, dead-lettered: %s", d->status, d->reason);
    }
    pump(hs);
    return;
  }
  f->has_req = 1;
  start_req(f);
}

/* ---- jobs (thread pool) ---- */

struct cut_ctx {
  struct hsink *hs;
  struct sw_batch *b;
  int rc;
};

static int cut_chunk(void *arg, const struct sw_chunk_row *row) {
  struct cut_ctx *c = arg;
  const char *raw;
  size_t len;
  int rc = sw_chunk_reader_get(&c->hs->rd, c->hs->db, row, &raw, &len);
  if (rc) {
    SW_LOG(SW_L_ERROR, "sink", "%s: chunk %lld is unreadable (%s); skipped", c->hs->conf->name,
           (long long)row->id, sw_strerror(rc));
    return 0;
  }
  uint64_t away = c->b->routed_away;
  if ((rc = c->hs->ops->add(c->hs->codec, c->b, row, raw, len))) {
    c->rc = rc;
    return 1;
  }
  away = c->b->routed_away - away;
  c->b->records += row->records > away ? row->records - away : 0;
  c->b->raw_bytes += row->raw_bytes;
  return 0;
}

static struct flight *new_flight(struct hsink *hs) {
  struct flight *f = calloc(1, sizeof *f);
  if (f) f->hs = hs;
  return f;
}

/* Cuts the next batch after j->after, or says how long to wait for one. */
static void job_cut(struct hsink *hs, struct job *j) {
  int64_t last;
  struct sw_sink_cursor cur = j->cursor;
  if (hs->ops->fixed_ranges && cur.planned > j->after) {
    last = cur.planned; /* cut before a crash: resend exactly that range */
  } else {
    struct sw_chunk_span sp;
    if ((j->cut_rc = sw_db_chunk_span(hs->db, j->after, MAX_BATCH_ROWS, hs->max_bytes, &sp))) return;
    if (sp.rows == 0) {
      j->idle = 1;
      return;
    }
    int64_t now = sw_time_now_ns();
    int64_t age_ms = (now - sp.oldest_ns) / 1000000, quiet_ms = (now - sp.newest_ns) / 1000000;
    /* A partial batch waits for more, up to max_wait, but not once the chunks stopped coming:
     * at the end of a burst there is nothing to wait for. */
    if (!j->flush && !sp.more && sp.raw_bytes < hs->max_bytes && age_ms < (int64_t)hs->max_wait_ms &&
        quiet_ms < QUIET_MS) {
      uint64_t w1 = hs->max_wait_ms - (uint64_t)(age_ms < 0 ? 0 : age_ms);
      uint64_t w2 = (uint64_t)(QUIET_MS - (quiet_ms < 0 ? 0 : quiet_ms));
      j->wait_ms = w1 < w2 ? w1 : w2;
      return;
    }
    last = sp.last;
    /* Written down before anything of it is sent: S3 resends exactly this range; Loki checks
     * what the receiver holds of everything up to it after a crash. */
    if (hs->ops->fixed_ranges || (hs->ops->verify_resends && last > cur.planned)) {
      cur.planned = last;
      if ((j->cut_rc = sw_db_cursor_set(hs->db, hs->conf->name, &cur))) return;
      j->planned = last;
    }
  }
  struct flight *f = new_flight(hs);
  if (!f) {
    j->cut_rc = SW_ENOMEM;
    return;
  }
  f->b.after = j->after;
  f->b.last = last;
  f->b.verify = j->after < j->verify_upto;
  struct cut_ctx c = {.hs = hs, .b = &f->b};
  int rc = hs->ops->begin(hs->codec, &f->b);
  if (!rc) rc = sw_db_chunks_range(hs->db, j->after, last, cut_chunk, &c);
  if (!rc) rc = c.rc;
  sw_chunk_reader_idle(&hs->rd); /* the codec copied what it needs */
  if (rc) {
    flight_free(f);
    j->cut_rc = rc;
    return;
  }
  j->batch = f;
}

struct replay_ctx {
  struct hsink *hs;
  struct flight *f;
  int rc;
};

static int replay_one(void *arg, const struct sw_dead_letter *d) {
  struct replay_ctx *c = arg;
  struct sw_buf payload;
  sw_buf_init(&payload, SIZE_MAX);
  int rc = sw_chunk_decompress(c->hs->dctx, d->payload, d->len, &payload);
  struct flight *f = rc ? NULL : new_flight(c->hs);
  if (!rc && !f) rc = SW_ENOMEM;
  if (!rc) {
    f->b.replay_id = d->id;
    f->b.records = d->records;
    f->b.after = d->first_chunk; /* for the new dead letters, if it fails again */
    f->b.last = d->last_chunk;
    rc = c->hs->ops->replay(c->hs->codec, &f->b, payload.data, payload.len, d->key);
  }
  sw_buf_free(&payload);
  if (rc) {
    flight_free(f);
    c->rc = rc;
    return rc;
  }
  c->f = f;
  return 0;
}

/* Dead letters of settled flights, compressed for storage. */
static int collect_dead(struct hsink *hs, struct flight *f, struct sw_dead_letter **arr, size_t *n,
                        size_t *cap) {
  for (size_t i = 0; i < f->b.ndead; i++) {
    struct sw_sink_dead *d = &f->b.dead[i];
    if (*n == *cap) {
      size_t nc = *cap ? *cap * 2 : 8;
      struct sw_dead_letter *na = realloc(*arr, nc * sizeof *na);
      if (!na) return SW_ENOMEM;
      *arr = na;
      *cap = nc;
    }
    struct sw_buf z;
    sw_buf_init(&z, SIZE_MAX);
    int rc = sw_chunk_compress(hs->cctx, 3, 0, d->payload.data, d->payload.len, &z);
    if (rc) {
      sw_buf_free(&z);
      return rc;
    }
    (*arr)[(*n)++] = (struct sw_dead_letter){
        .status = d->status, .reason = d->reason, .key = d->key, .first_chunk = f->b.after + 1,
        .last_chunk = f->b.last, .records = d->records, .payload = z.data, .len = z.len,
        .attempts = f->b.replay_id ? 2 : 1};
    if (f->b.replay_id) (*arr)[*n - 1].first_chunk = f->b.after;
  }
  return SW_OK;
}

static void job_settle(struct hsink *hs, struct job *j) {
  struct sw_dead_letter *dead = NULL;
  size_t nd = 0, cap = 0;
  int rc = SW_OK;
  struct flight *f = hs->head;
  for (size_t i = 0; i < j->nsettle && !rc; i++, f = f->next) rc = collect_dead(hs, f, &dead, &nd, &cap);
  if (!rc && j->replayed) rc = collect_dead(hs, j->replayed, &dead, &nd, &cap);
  if (!rc) {
    struct sw_sink_settle s = {.cursor = j->nsettle ? &j->cursor : NULL, .dead = dead, .ndead = nd,
                               .resent = j->replayed ? &j->replayed->b.replay_id : NULL,
                               .nresent = j->replayed ? 1 : 0,
                               .last_error = j->set_error ? j->last_error : NULL};
    rc = sw_db_sink_settle(hs->db, hs->conf->name, &s);
    if (rc) snprintf(j->err, sizeof j->err, "%s", sw_db_errmsg(hs->db));
  }
  for (size_t i = 0; i < nd; i++) free((void *)dead[i].payload);
  free(dead);
  j->settle_rc = rc;
}

static void work_cb(uv_work_t *w) {
  struct job *j = w->data;
  struct hsink *hs = j->hs;
  if (j->nsettle || j->replayed || j->set_error) job_settle(hs, j);
  if (j->settle_rc) return;
  if (j->replay) {
    struct replay_ctx c = {.hs = hs};
    int found = 0;
    int rc = sw_db_dead_letter_next(hs->db, hs->conf->name, j->replay_after, replay_one, &c, &found);
    if (rc || c.rc)
      SW_LOG(SW_L_ERROR, "sink", "%s: cannot load a dead letter: %s", hs->conf->name,
             rc ? sw_db_errmsg(hs->db) : sw_strerror(c.rc));
    if (rc || c.rc || !found) j->no_replay = 1;
    j->replay_batch = c.f;
  }
  if (j->cut) job_cut(hs, j);
  if (j->cut_rc && !j->err[0])
    snprintf(j->err, sizeof j->err, "%s",
             j->cut_rc == SW_EDB ? sw_db_errmsg(hs->db) : sw_strerror(j->cut_rc));
}

static void seal_cb(uv_work_t *w) {
  struct flight *f = w->data;
  if (f->seal_rc) uv_sleep(200); /* a retry after a failure (out of memory): do not spin */
  f->seal_rc = f->hs->ops->seal(f->hs->codec, &f->b);
}

static void after_seal(uv_work_t *w, int status) {
  (void)status;
  struct flight *f = w->data;
  struct hsink *hs = f->hs;
  hs->sealing--;
  if (hs->sh->closing) return; /* still in the FIFO: freed with the sink, resent next start */
  if (f->seal_rc) { /* only allocation failures get here; seal may be called again */
    SW_LOG(SW_L_ERROR, "sink", "%s: cannot encode a batch: %s (will retry)", hs->conf->name,
           sw_strerror(f->seal_rc));
    hs->sealing++;
    if (!uv_queue_work(hs->sh->loop, &f->seal, seal_cb, after_seal)) return;
    hs->sealing--;
  }
  send_next(f);
}

static void on_wait(uv_timer_t *t) {
  struct hsink *hs = t->data;
  hs->hint = 1;
  pump(hs);
}

static void after_work(uv_work_t *w, int status) {
  struct job *j = w->data;
  struct hsink *hs = j->hs;
  hs->job = NULL;
  (void)status;
  if (j->settle_rc) {
    SW_LOG(SW_L_ERROR, "sink", "%s: cannot commit the cursor: %s (will retry)", hs->conf->name, j->err);
  } else {
    if (j->set_error) hs->error_dirty = 0;
    for (size_t i = 0; i < j->nsettle; i++) {
      struct flight *f = hs->head;
      hs->head = f->next;
      if (!hs->head) hs->tail = NULL;
      hs->nflight--;
      hs->stats.records_sent += f->b.records;
      hs->stats.batches_sent++;
      hs->stats.skipped_records += f->b.skipped;
      hs->stats.possibly_duplicated_records += f->b.unverified;
      hs->stats.routed_away_records += f->b.routed_away;
      hs->stats.label_missing += f->b.label_missing;
      for (size_t k = 0; k < f->b.ndead; k++) {
        hs->stats.dead_letters++;
        hs->stats.dead_records += f->b.dead[k].records;
        hs->stats.records_sent -= f->b.dead[k].records < f->b.records ? f->b.dead[k].records : 0;
      }
      flight_free(f);
    }
    if (j->nsettle) {
      int64_t planned = hs->cur.planned;
      hs->cur = j->cursor;
      if (planned > hs->cur.planned) hs->cur.planned = planned;
      hs->stats.acked = hs->cur.acked;
      sw_writer_kick(hs->sh->w); /* acknowledged chunks can go */
    }
    if (j->replayed) {
      if (j->replayed->b.ndead)
        SW_LOG(SW_L_WARN, "sink", "%s: replayed dead letter %lld was refused again", hs->conf->name,
               (long long)j->replayed->b.replay_id);
      else
        SW_LOG(SW_L_INFO, "sink", "%s: replayed dead letter %lld delivered (%llu records)",
               hs->conf->name, (long long)j->replayed->b.replay_id,
               (unsigned long long)j->replayed->b.records);
      hs->replay_after = j->replayed->b.replay_id;
      flight_free(j->replayed);
      hs->replay = NULL;
    }
  }
  if (j->planned > hs->cur.planned) hs->cur.planned = j->planned;
  if (j->cut_rc) SW_LOG(SW_L_ERROR, "sink", "%s: cannot read the buffer: %s", hs->conf->name, j->err);
  if (j->no_replay) {
    hs->replay_due = 0;
    hs->replay_after = 0; /* requeued later with lower ids: start over next time */
  }
  if (j->replay_batch) {
    hs->replay = j->replay_batch;
    if (hs->sh->closing) {
      flight_free(hs->replay);
      hs->replay = NULL;
    } else {
      send_next(hs->replay);
    }
  }
  hs->idle = j->idle;
  if (j->batch) {
    struct flight *f = j->batch;
    if (hs->sh->closing) {
      flight_free(f);
    } else {
      if (hs->tail) hs->tail->next = f; else hs->head = f;
      hs->tail = f;
      hs->nflight++;
      hs->cut_to = f->b.last;
      hs->hint = 1; /* there may be more right behind it */
      f->seal.data = f;
      hs->sealing++;
      if (uv_queue_work(hs->sh->loop, &f->seal, seal_cb, after_seal)) {
        hs->sealing--;
        seal_cb(&f->seal); /* cannot happen with a live loop; stay correct anyway */
        send_next(f);
      }
    }
  }
  if (j->wait_ms && !hs->sh->closing) uv_timer_start(&hs->wait_timer, on_wait, j->wait_ms, 0);
  free(j);
  pump(hs);
}

/* The settled prefix of the FIFO and the cursor after it. */
static size_t done_prefix(struct hsink *hs, struct sw_sink_cursor *cur) {
  size_t n = 0;
  *cur = hs->cur;
  for (struct flight *f = hs->head; f && f->done; f = f->next) {
    n++;
    cur->acked = f->b.last;
    uint64_t dead = 0;
    for (size_t k = 0; k < f->b.ndead; k++) dead += f->b.dead[k].records;
    cur->sent_records += f->b.records > dead ? f->b.records - dead : 0;
  }
  return n;
}

static void pump(struct hsink *hs) {
  struct sw_shipper *sh = hs->sh;
  if (hs->job || sh->closing) return;
  struct sw_sink_cursor cur;
  size_t nsettle = done_prefix(hs, &cur);
  int replayed = hs->replay && hs->replay->done;
  /* Finished flights waiting for an earlier one do not count against `concurrency`, but the
   * FIFO as a whole stays bounded (each flight holds its encoded batch). */
  size_t sending = 0;
  for (struct flight *f = hs->head; f; f = f->next) sending += !f->done;
  size_t max_flights = hs->ops->fixed_ranges ? 1 : 4 * hs->concurrency; /* one planned range at a time */
  int cut = sending < hs->concurrency && hs->nflight < max_flights && (hs->hint || sh->flushing);
  int replay = !hs->replay && hs->replay_due && !sh->flushing;
  if (!nsettle && !replayed && !cut && !replay && !hs->error_dirty) return;
  struct job *j = calloc(1, sizeof *j);
  if (!j) return; /* the next tick tries again */
  j->hs = hs;
  j->work.data = j;
  j->nsettle = nsettle;
  j->cursor = cur;
  j->replayed = replayed ? hs->replay : NULL;
  j->cut = cut;
  j->flush = sh->flushing;
  j->after = hs->cut_to;
  j->verify_upto = hs->verify_upto;
  j->replay = replay;
  j->replay_after = hs->replay_after;
  if (hs->error_dirty) {
    j->set_error = 1;
    memcpy(j->last_error, hs->last_error, sizeof j->last_error);
  }
  if (cut) hs->hint = 0;
  hs->job = j;
  if (uv_queue_work(sh->loop, &j->work, work_cb, after_work)) {
    hs->job = NULL;
    hs->hint |= cut;
    free(j);
  }
}

static void on_tick(uv_timer_t *t) {
  struct hsink *hs = t->data;
  for (struct flight *f = hs->head; f; f = f->next)
    if (f->stalled) send_next(f);
  if (hs->replay && hs->replay->stalled) send_next(hs->replay);
  hs->replay_due = 1;
  pump(hs);
}

static void on_notify(uv_async_t *a) {
  struct sw_shipper *sh = a->data;
  for (size_t i = 0; i < sh->n; i++) {
    sh->sinks[i].hint = 1;
    pump(&sh->sinks[i]);
  }
}

/* The writer calls this from its own thread: only the async handle crosses threads. */
void sw_shipper_notify(struct sw_shipper *sh) {
  if (sh) uv_async_send(&sh->notify);
}

/* ---- start / stop ---- */

static const struct sw_sink_ops *ops_for(enum sw_sink_type t) {
  switch (t) {
  case SW_SINK_LOKI: return &sw_loki_ops;
  case SW_SINK_ELASTICSEARCH: return &sw_es_ops;
  case SW_SINK_S3: return &sw_s3_ops;
  default: return NULL;
  }
}

static int hsink_init(struct sw_shipper *sh, struct hsink *hs, const struct sw_config *cfg,
                      const struct sw_sink_conf *c, char *err, size_t errlen) {
  hs->sh = sh;
  hs->conf = c;
  hs->ops = ops_for(c->type);
  hs->stats.name = c->name;
  hs->stats.type = hs->ops->type;
  hs->stats.http = &hs->target.stats;
  hs->target = (struct sw_http_target){
      .name = c->name, .ca_file = c->tls.ca_file, .insecure = c->tls.insecure_skip_verify,
      .connect_timeout_ms = c->connect_timeout_ms, .timeout_ms = c->timeout_ms,
      .backoff_min_ms = c->retry_min_ms, .backoff_max_ms = c->retry_max_ms};
  if (c->type == SW_SINK_S3) {
    hs->max_bytes = c->object_max_bytes;
    hs->max_wait_ms = c->object_max_wait_ms;
    hs->concurrency = 1;
  } else {
    hs->max_bytes = c->batch_max_bytes;
    hs->max_wait_ms = c->batch_max_wait_ms;
    hs->concurrency = c->concurrency ? c->concurrency : 1;
  }
  if (hs->ops->fixed_ranges) hs->concurrency = 1;
  int rc = sw_db_open(cfg->data_dir, 0, &hs->db, err, errlen);
  if (rc) return rc;
  struct sw_sink_env env = {.agent_id = sw_db_agent_id(hs->db), .host = cfg->hostname};
  if ((rc = hs->ops->create(c, &env, &hs->codec, err, errlen))) return rc;
  hs->target.username = c->username;
  hs->target.password = c->password;
  if (c->type == SW_SINK_S3 && c->access_key) {
    hs->target.username = c->access_key;
    hs->target.password = c->secret_key;
    char sig[160];
    snprintf(sig, sizeof sig, "aws:amz:%s:s3", c->region);
    if (!(hs->auth_header = strdup(sig))) return SW_ENOMEM;
    hs->target.aws_sigv4 = hs->auth_header;
  } else if (c->bearer_token || c->api_key) {
    const char *kind = c->bearer_token ? "Bearer" : "ApiKey";
    const char *v = c->bearer_token ? c->bearer_token : c->api_key;
    size_t n = strlen(v) + 32;
    if (!(hs->auth_header = malloc(n))) return SW_ENOMEM;
    snprintf(hs->auth_header, n, "Authorization: %s %s", kind, v);
    hs->target.auth_header = hs->auth_header;
  }
  sw_chunk_reader_init(&hs->rd, sw_writer_hot(sh->w));
  hs->dctx = ZSTD_createDCtx();
  hs->cctx = ZSTD_createCCtx();
  if (!hs->dctx || !hs->cctx) return SW_ENOMEM;
  if ((rc = sw_db_cursor_get(hs->db, c->name, hs->ops->type, &hs->cur))) {
    snprintf(err, errlen, "%s", sw_db_errmsg(hs->db));
    return rc;
  }
  hs->cut_to = hs->cur.acked;
  hs->stats.acked = hs->cur.acked;
  if (hs->ops->verify_resends && hs->cur.planned > hs->cur.acked) {
    hs->verify_upto = hs->cur.planned;
    SW_LOG(SW_L_INFO, "sink", "%s: chunks %lld..%lld may have been sent before a restart; the "
           "receiver is asked what it holds of them before they are sent again", c->name,
           (long long)hs->cur.acked + 1, (long long)hs->cur.planned);
  }
  hs->hint = 1;
  hs->replay_due = 1;
  uv_timer_init(sh->loop, &hs->wait_timer);
  uv_timer_init(sh->loop, &hs->tick);
  hs->wait_timer.data = hs->tick.data = hs;
  sh->open_handles += 2;
  uv_timer_start(&hs->tick, on_tick, REPLAY_CHECK_MS, REPLAY_CHECK_MS);
  return SW_OK;
}

static void hsink_free(struct hsink *hs) {
  while (hs->head) {
    struct flight *f = hs->head;
    hs->head = f->next;
    flight_free(f);
  }
  flight_free(hs->replay);
  if (hs->codec) hs->ops->destroy(hs->codec);
  sw_db_close(hs->db);
  ZSTD_freeDCtx(hs->dctx);
  ZSTD_freeCCtx(hs->cctx);
  sw_chunk_reader_free(&hs->rd);
  free(hs->auth_header);
}

static void free_shipper(struct sw_shipper *sh) {
  for (size_t i = 0; i < sh->n; i++) hsink_free(&sh->sinks[i]);
  free(sh->sinks);
  free(sh);
}

static void handle_closed(uv_handle_t *h) {
  struct hsink *hs = h->data;
  hs->sh->open_handles--;
}

static void notify_closed(uv_handle_t *h) {
  struct sw_shipper *sh = h->data;
  sh->open_handles--;
}

int sw_shipper_start(uv_loop_t *loop, const struct sw_config *cfg, struct sw_writer *w,
                     struct sw_shipper **out, char *err, size_t errlen) {
  *out = NULL;
  size_t n = 0;
  for (size_t i = 0; i < cfg->nsinks; i++) n += ops_for(cfg->sinks[i].type) != NULL;
  if (!n) return SW_OK;
  struct sw_shipper *sh = calloc(1, sizeof *sh);
  if (!sh || !(sh->sinks = calloc(n, sizeof *sh->sinks))) {
    free(sh);
    return SW_ENOMEM;
  }
  sh->loop = loop;
  sh->w = w;
  uv_async_init(loop, &sh->notify, on_notify);
  sh->notify.data = sh;
  sh->open_handles = 1;
  int rc = sw_http_create(loop, &sh->http);
  for (size_t i = 0; !rc && i < cfg->nsinks; i++) {
    if (!ops_for(cfg->sinks[i].type)) continue;
    char e[400] = "";
    rc = hsink_init(sh, &sh->sinks[sh->n], cfg, &cfg->sinks[i], e, sizeof e);
    sh->n++;
    if (rc) snprintf(err, errlen, "sink %s: %s", cfg->sinks[i].name, e[0] ? e : sw_strerror(rc));
  }
  if (rc) {
    sw_shipper_stop(sh, 0);
    return rc;
  }
  for (size_t i = 0; i < sh->n; i++) {
    SW_LOG(SW_L_INFO, "sink", "%s: shipping to %s from chunk %lld", sh->sinks[i].conf->name,
           sh->sinks[i].ops->type, (long long)sh->sinks[i].cur.acked + 1);
    pump(&sh->sinks[i]);
  }
  *out = sh;
  return SW_OK;
}

static int all_idle(const struct sw_shipper *sh) {
  for (size_t i = 0; i < sh->n; i++) {
    const struct hsink *hs = &sh->sinks[i];
    if (hs->job || hs->sealing || hs->head || hs->replay || !hs->idle) return 0;
  }
  return 1;
}

static void on_stop_tick(uv_timer_t *t) { (void)t; }

void sw_shipper_stop(struct sw_shipper *sh, uint64_t deadline_ms) {
  if (!sh) return;
  uv_timer_t tick;
  uv_timer_init(sh->loop, &tick);
  uv_timer_start(&tick, on_stop_tick, 50, 50); /* wakes the loop to look at the clock */
  sh->flushing = 1;
  for (size_t i = 0; i < sh->n; i++) pump(&sh->sinks[i]);
  uint64_t end = now_ms() + deadline_ms;
  while (!all_idle(sh) && now_ms() < end) uv_run(sh->loop, UV_RUN_ONCE);
  sh->closing = 1;
  if (sh->http) sw_http_cancel_all(sh->http);
  for (;;) { /* let running jobs finish: they own the sinks' connections meanwhile */
    int busy = 0;
    for (size_t i = 0; i < sh->n; i++) busy |= sh->sinks[i].job != NULL || sh->sinks[i].sealing;
    if (!busy) break;
    uv_run(sh->loop, UV_RUN_ONCE);
  }
  for (size_t i = 0; i < sh->n; i++) { /* settle what was delivered, here: nothing else runs */
    struct hsink *hs = &sh->sinks[i];
    if (!hs->db) continue;
    struct job j = {.hs = hs};
    j.nsettle = done_prefix(hs, &j.cursor);
    if (j.nsettle) {
      job_settle(hs, &j);
      if (j.settle_rc)
        SW_LOG(SW_L_WARN, "sink", "%s: cannot commit the cursor at exit: %s", hs->conf->name, j.err);
    }
    if (hs->wait_timer.data) {
      uv_close((uv_handle_t *)&hs->wait_timer, handle_closed);
      uv_close((uv_handle_t *)&hs->tick, handle_closed);
    }
  }
  uv_close((uv_handle_t *)&tick, NULL);
  uv_close((uv_handle_t *)&sh->notify, notify_closed);
  sw_http_destroy(sh->http);
  sh->http = NULL;
  while (sh->open_handles) uv_run(sh->loop, UV_RUN_ONCE);
  uv_run(sh->loop, UV_RUN_NOWAIT);
  free_shipper(sh);
}

size_t sw_shipper_nsinks(const struct sw_shipper *sh) { return sh ? sh->n : 0; }

void sw_shipper_sink_stats(const struct sw_shipper *sh, size_t i, struct sw_shipper_sink_stats *out) {
  *out = sh->sinks[i].stats;
}
