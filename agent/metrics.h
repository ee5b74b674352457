/* metrics.h - the agent's /metrics: collects figures and writes them with promtext.h.
 *
 * Where each figure comes from, so that a scrape never blocks the loop on SQLite:
 *  - loop memory, read at scrape time: per-file read offsets and sizes (fstat of open
 *    descriptors), rotations, network sinks' HTTP counters and latency histograms, the writer's
 *    stored and queued bytes (atomics it publishes), process RSS, CPU, descriptors;
 *  - a SNAPSHOT of the buffer (per-source counters, per-sink cursors, backlogs, oldest unshipped
 *    chunk, dead letters, drops, redaction and retention counters) and of disk usage, taken on a
 *    libuv pool thread through the module's own read-only SQLite connection. A snapshot is taken
 *    at start and then every second while someone scrapes (the last scrape less than five
 *    minutes ago); `spillway_metrics_snapshot_age_seconds` says how old the one served is.
 * Snapshot job states: IDLE -> RUNNING (pool thread: only the job and the module's connection)
 * -> IDLE (loop: the new snapshot replaces the old). One job at a time.
 * Loop thread only, except the job.
 */
#ifndef SW_METRICS_H
#define SW_METRICS_H

#include <uv.h>

#include "../common/buf.h"
#include "../common/error.h"
#include "config.h"

struct sw_tail;
struct sw_writer;
struct sw_shipper;
struct sw_metrics;

/* Configuration reloads, kept by the agent across pipelines (loop thread). */
struct sw_reload_stats {
  uint64_t ok, failed;
  int last_ok;            /* 1 after a successful reload (and at start), 0 after a refused one */
  int64_t last_ok_ns;     /* wall clock of the last successful (re)load */
};

/* All borrowed: they must outlive the module (tail and shipper may be NULL). */
struct sw_metrics_src {
  const struct sw_config *cfg;
  struct sw_tail *tail;
  struct sw_writer *writer;
  struct sw_shipper *shipper;
  const struct sw_reload_stats *reloads; /* may be NULL */
};

int sw_metrics_create(uv_loop_t *loop, const struct sw_metrics_src *src,
                      struct sw_metrics **out) SW_MUST_CHECK;
/* Appends the exposition to out (bounded by out's cap). Loop thread. */
int sw_metrics_render(struct sw_metrics *m, struct sw_buf *out) SW_MUST_CHECK;
/* Stops the timer; the module frees itself once its handles are closed and a running job has
 * finished (the loop must run afterwards). NULL is a no-op. */
void sw_metrics_stop(struct sw_metrics *m);

#endif
