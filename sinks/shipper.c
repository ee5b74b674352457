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
 * What the jobs do on the pool (cut, settle, replay, seal) is in shipper_jobs.c.
 */
#include "shipper_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../agent/buffer/chunk.h"
#include "../common/log.h"

#define REPLAY_CHECK_MS 2000

static void pump(struct hsink *hs);

static uint64_t now_ms(void) { return uv_hrtime() / 1000000; }

/* ---- batches in flight ---- */

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
    if (!uv_queue_work(hs->sh->loop, &f->seal, sw__shipper_seal, after_seal)) return;
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
      sw__flight_free(f);
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
      sw__flight_free(j->replayed);
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
      sw__flight_free(hs->replay);
      hs->replay = NULL;
    } else {
      send_next(hs->replay);
    }
  }
  hs->idle = j->idle;
  if (j->batch) {
    struct flight *f = j->batch;
    if (hs->sh->closing) {
      sw__flight_free(f);
    } else {
      if (hs->tail) hs->tail->next = f; else hs->head = f;
      hs->tail = f;
      hs->nflight++;
      hs->cut_to = f->b.last;
      hs->hint = 1; /* there may be more right behind it */
      f->seal.data = f;
      hs->sealing++;
      if (uv_queue_work(hs->sh->loop, &f->seal, sw__shipper_seal, after_seal)) {
        hs->sealing--;
        sw__shipper_seal(&f->seal); /* cannot happen with a live loop; stay correct anyway */
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
  if (uv_queue_work(sh->loop, &j->work, sw__shipper_work, after_work)) {
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
    sw__flight_free(f);
  }
  sw__flight_free(hs->replay);
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
      sw__shipper_settle(hs, &j);
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
