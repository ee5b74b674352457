/* logql_run.h - a LogQL query over the local buffer, answered in Loki's JSON
 * (GET /loki/api/v1/query_range and /query).
 *
 * The scan is `spillway search`'s (search/search.h): one WAL snapshot, chunks ruled out by
 * time, stream selector and trigram filter from their columns, matching on worker threads, hits
 * in time order. Each hit then goes through the query's pipeline (logql.h) on the calling
 * thread. Log queries keep at most `limit` entries (the last ones for backward), metric queries
 * count into per-series step arrays (difference arrays: O(1) per entry whatever the range), so
 * memory is bounded by limit, series and steps, whatever the buffer holds. */
#ifndef SW_LOGQL_RUN_H
#define SW_LOGQL_RUN_H

#include <stdatomic.h>
#include <stdint.h>

#include "../common/buf.h"
#include "logql.h"

#define SW_LQ_MAX_SERIES 500      /* Loki's max_query_series */
#define SW_LQ_MAX_POINTS 11000    /* Loki's limit of points per series */
#define SW_LQ_MAX_CELLS 2000000u  /* series x steps kept at once (about 24 MB) */

struct sw_config;

struct sw_lq_params {
  const char *data_dir;
  int db_flags;
  int xknown;                  /* set by sw_lq_extractable (search/query.h: xknown, xmask) */
  uint64_t xmask;
  int group_plain;             /* set by sw_lq_extractable: no source extracts a label the
                                  sum around the range aggregation groups by */
  int64_t start, end;          /* ns. Log queries: start <= ts < end. Metric: steps start..end */
  int64_t step_ns;             /* metric queries (> 0) */
  int64_t interval_ns;         /* log queries: at most one entry per interval (0: all) */
  uint64_t limit;              /* log queries: entries */
  int backward;
  int instant;                 /* /query: one evaluation at `end` */
  unsigned threads;            /* scanning threads; 0: one per CPU */
  int64_t deadline_ms;         /* CLOCK_MONOTONIC; 0: none */
  atomic_int *cancel;
};

/* Fills p->xknown, p->xmask and p->group_plain for q's selector (NULL: none) and metric from
 * the running configuration (call on the thread that owns cfg: the scan itself may run after a
 * reload freed it). */
void sw_lq_extractable(const struct sw_lq_query *q, const struct sw_config *cfg, struct sw_lq_params *p);

/* Appends the whole answer ({"status":"success","data":{...}}) to out. SW_EINVAL (a limit of
 * the query: too many series or points; err says which), SW_ECANCELED (deadline or cancel:
 * err says which), or the scan's errors (search.h) with err filled in. */
int sw_lq_run(const struct sw_lq_query *q, const struct sw_lq_params *p, struct sw_buf *out, char *err,
              size_t errlen) SW_MUST_CHECK;

/* For /loki/api/v1/tail: calls fn with each entry a log query keeps, in time order, from
 * p->start on and then as new chunks commit, until cancel (follow mode of the scan). labels is
 * the entry's label set as JSON. fn returns non-zero to stop. */
int sw_lq_follow(const struct sw_lq_query *q, const struct sw_lq_params *p,
                 int (*fn)(void *arg, const char *labels, size_t llen, int64_t ts, const char *line, size_t len),
                 void (*flush)(void *arg), void *arg, char *err, size_t errlen) SW_MUST_CHECK;

/* The distinct stream label sets (canonical JSON) of the entries in [p->start, p->end) that sel
 * matches (NULL: every entry), for /labels, /label/<name>/values, /series and /index/stats: fn
 * is called once per set, at most max_series sets (0: SW_LQ_MAX_SERIES x 20). No pipeline. */
struct sw_lq_index_stats {
  uint64_t streams, chunks, entries, bytes;
};
int sw_lq_series(const struct sw_lq_log *sel, const struct sw_lq_params *p, size_t max_series,
                 int (*fn)(void *arg, const char *labels, size_t len), void *arg,
                 struct sw_lq_index_stats *st, char *err, size_t errlen) SW_MUST_CHECK;

#endif
