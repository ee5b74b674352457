/* shipper_jobs.c - the shipper's work on libuv's thread pool (see shipper.c): cutting the next
 * batch from the buffer (chunks from the recent-chunk cache or decompressed from SQLite, handed
 * to the sink's codec), settling cursors with the dead letters of delivered batches, loading a
 * requeued dead letter, and sealing (encoding/compressing) a batch. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../agent/buffer/chunk.h"
#include "../common/log.h"
#include "../common/timefmt.h"
#include "shipper_int.h"

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

void sw__flight_free(struct flight *f) {
  if (!f) return;
  if (f->hs->ops->release) f->hs->ops->release(f->hs->codec, &f->b);
  sw_batch_free_dead(&f->b);
  free(f);
}

struct flight *sw__flight_new(struct hsink *hs) {
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
  struct flight *f = sw__flight_new(hs);
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
    sw__flight_free(f);
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
  struct flight *f = rc ? NULL : sw__flight_new(c->hs);
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
    sw__flight_free(f);
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

void sw__shipper_settle(struct hsink *hs, struct job *j) {
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

void sw__shipper_work(uv_work_t *w) {
  struct job *j = w->data;
  struct hsink *hs = j->hs;
  if (j->nsettle || j->replayed || j->set_error) sw__shipper_settle(hs, j);
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

void sw__shipper_seal(uv_work_t *w) {
  struct flight *f = w->data;
  if (f->seal_rc) uv_sleep(200); /* a retry after a failure (out of memory): do not spin */
  f->seal_rc = f->hs->ops->seal(f->hs->codec, &f->b);
}

