/* shipper_int.h - private to sinks/shipper.c (the loop side: flights, requests, the FIFO,
 * start and stop) and sinks/shipper_jobs.c (the pool side: cutting a batch from the buffer,
 * settling cursors and dead letters, replays, sealing). A job or a seal owns what it touches
 * until its after-callback runs on the loop. */
#ifndef SW_SHIPPER_INT_H
#define SW_SHIPPER_INT_H

#include <zstd.h>

#include "../agent/buffer/buffer.h"
#include "../agent/buffer/hot.h"
#include "../agent/buffer/writer.h"
#include "shipper.h"
#include "sink.h"

#define MAX_BATCH_ROWS 4096
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

struct flight *sw__flight_new(struct hsink *hs);
void sw__flight_free(struct flight *f);
/* Pool: a job's settle, replay and cut, in that order (struct job says what to do). */
void sw__shipper_work(uv_work_t *w);
/* Pool: encodes and compresses a cut batch (w->data is the flight). */
void sw__shipper_seal(uv_work_t *w);
/* Commits j->nsettle flights of the FIFO's head, their dead letters, a finished replay and the
 * last error, in one transaction (pool; at shutdown on the loop, when nothing else runs). */
void sw__shipper_settle(struct hsink *hs, struct job *j);

#endif
