/* pipeline.h - one running configuration on the agent's loop: the buffer writer, redactor,
 * ingest, tail, file sinks, network shipper, retention pass and metrics.
 *
 * States and who moves them:
 *   OPENING  sw_pipeline_open: a pool job opens the buffer (creates it, migrates, waits for a
 *            lock another process holds) and loads the stored file states, while the loop keeps
 *            serving HTTP (/ready says "starting")
 *   RUNNING  the job's completion on the loop starts every stage; on_started(arg, 0)
 *   FAILED   opening or a stage failed: on_started(arg, rc) (the error is logged)
 *   STOPPED  sw_pipeline_stop: reading stops, open chunks are sealed, the writer commits what is
 *            queued, sinks ship for a moment and commit their cursors (SHUTDOWN_* deadlines);
 *            the handles are closing: the loop must run until they are closed (uv_run returns
 *            0), then sw_pipeline_free.
 * Stopping and restarting (reload) keeps the buffer's guarantees, since it is what a restart
 * does: every committed record has its offset committed with it, so the next pipeline reads
 * exactly what was not committed, and each sink resumes from its committed cursor.
 */
#ifndef SW_PIPELINE_H
#define SW_PIPELINE_H

#include <uv.h>

#include "../common/error.h"
#include "config/config.h"
#include "http/metrics.h"

struct sw_pipeline;

struct sw_pipeline_opts {
  uv_loop_t *loop;
  const struct sw_config *cfg;           /* borrowed: must outlive the pipeline */
  int with_metrics;                      /* create the /metrics collector */
  const struct sw_reload_stats *reloads; /* borrowed, for metrics; may be NULL */
  /* Called once on the loop when the pipeline runs (rc 0) or could not start (rc < 0);
   * not called if it was stopped before. */
  void (*on_started)(void *arg, int rc);
  void *arg;
};

int sw_pipeline_open(const struct sw_pipeline_opts *o, struct sw_pipeline **out) SW_MUST_CHECK;
/* The metrics collector while RUNNING, else NULL. */
/* 1 while the buffer's commits fail because the filesystem under data_dir is full. */
int sw_pipeline_disk_full(const struct sw_pipeline *p);
struct sw_metrics *sw_pipeline_metrics(const struct sw_pipeline *p);
/* Stops every stage (blocking up to the shutdown deadlines; network sinks run the loop while
 * they finish). Idempotent. */
void sw_pipeline_stop(struct sw_pipeline *p);
/* After sw_pipeline_stop and a loop run: frees what is left (an opening job still running frees
 * the pipeline when it completes). NULL is a no-op. */
void sw_pipeline_free(struct sw_pipeline *p);

#endif
