/* metrics.h - the agent's /metrics: collects figures and writes them with http/promtext.h.
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
 * A scrape after an idle spell (or the first one) would serve an old snapshot: the caller then
 * waits for a new one (sw_metrics_wait_fresh, at most a second or two) before rendering.
 * Snapshot job states: IDLE -> RUNNING (pool thread: only the job and the module's connection)
 * -> IDLE (loop: the new snapshot replaces the old; waiters are called back). One job at a time.
 * Loop thread only, except the job.
 */
#ifndef SW_METRICS_H
#define SW_METRICS_H

#include <uv.h>

#include "../../common/buf.h"
#include "../../common/error.h"
#include "../config/config.h"

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
struct sw_kube;
struct sw_journals;
struct sw_metrics_src {
  const struct sw_config *cfg;
  struct sw_tail *tail;
  struct sw_writer *writer;
  struct sw_shipper *shipper;
  struct sw_kube *kube;                  /* may be NULL: kubernetes off */
  struct sw_journals *journals;          /* may be NULL: no journald source */
  const struct sw_process *process;      /* may be NULL: no extract, filters, log metrics */
  const struct sw_reload_stats *reloads; /* may be NULL */
};

int sw_metrics_create(uv_loop_t *loop, const struct sw_metrics_src *src,
                      struct sw_metrics **out) SW_MUST_CHECK;
/* Appends the exposition to out (bounded by out's cap). Loop thread. */
int sw_metrics_render(struct sw_metrics *m, struct sw_buf *out) SW_MUST_CHECK;
#define SW_METRICS_MAX_WAITERS 8
/* 1 if the last snapshot is recent (scrapes every few seconds keep it so). */
int sw_metrics_fresh(const struct sw_metrics *m);
/* Takes a snapshot now and calls cb(arg) once it is in, or after about wait_ms, or when the
 * module stops: exactly once, on the loop thread, never during this call. SW_EAGAIN (and no
 * call) when it cannot wait: too many waiters, or stopping; then render what there is. */
int sw_metrics_wait_fresh(struct sw_metrics *m, uint64_t wait_ms, void (*cb)(void *arg),
                          void *arg) SW_MUST_CHECK;
/* Stops the timer; the module frees itself once its handles are closed and a running job has
 * finished (the loop must run afterwards). NULL is a no-op. */
void sw_metrics_stop(struct sw_metrics *m);

#endif
