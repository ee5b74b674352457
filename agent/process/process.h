/* process.h - what happens to a record between its parsing and its chunk: extraction, log
 * metrics, filters (docs/processing.md). Loop thread only (it runs inside tail/ingest.c).
 *
 * Per record, in this order:
 *  1. extract: the source's `extract` lifts labels out of the payload; their values pass
 *     through the redactor at once, so nothing downstream (filters, metrics, the chunk) sees a
 *     secret in a label;
 *  2. log metrics count the record (a record dropped below still counts);
 *  3. filters run in order; the first that removes the record ends it.
 * A record's labels are its file's (tail/labels.h) overlaid by what was extracted from it.
 * Matchers on labels no extraction of the source can set are decided once per file (when its
 * labels change), so a filter that does not apply to a file costs nothing per record.
 *
 * Sampling and rate limiting depend only on the records, never on when they are read: a file
 * read again (a replay after a crash, or from scratch) keeps the same records.
 *  - sample keeps a record when FNV-1a-64(text) (common/hash.h) (then, for docker and CRI records, their
 *    timestamp's 8 bytes, little-endian) mod keep_one_in is 0;
 *  - rate_limit is a token bucket per bucket key whose clock is the records' own time: it
 *    refills records_per_second per second of record time, up to burst; a record older than
 *    the bucket's clock refills nothing.
 */
#ifndef SW_PROCESS_H
#define SW_PROCESS_H

#include <stddef.h>
#include <stdint.h>

#include "../../common/error.h"
#include "../../redact/redact.h"
#include "../config/config.h"

struct sw_process;
struct sw_process_file;
struct sw_extract_spec;

/* The extraction of x as parsers/extract.h runs it: label names and paths, or for regex the
 * compiled pattern (JIT; the caller frees sp->re with pcre2_code_free) and its group names.
 * SW_EINVAL when the pattern does not compile or names no group; sp->n == 0 when x extracts
 * nothing. The one definition of "what a source extracts", for the config check, ingest and
 * search. Pure. */
int sw_process_extract_spec(const struct sw_extract_conf *x, struct sw_extract_spec *sp) SW_MUST_CHECK;

/* NULL *out (and SW_OK) when cfg has no extract, filters or log metrics. err: "filters[1]: ..." */
int sw_process_create(const struct sw_config *cfg, struct sw_process **out, char *err,
                      size_t errlen) SW_MUST_CHECK;
void sw_process_destroy(struct sw_process *p);

/* Per-file state for a file of source `src_index` whose labels are labels_json; call again
 * (sw_process_file_labels) whenever they change. NULL on ENOMEM. */
struct sw_process_file *sw_process_file_new(struct sw_process *p, size_t src_index,
                                            const char *labels_json);
int sw_process_file_labels(struct sw_process *p, struct sw_process_file *pf,
                           const char *labels_json) SW_MUST_CHECK;
void sw_process_file_free(struct sw_process_file *pf);

/* One record. Returns 1 to keep it, 0 when a filter removed it. xl, xlen: the record's own
 * labels as a JSON object text (redacted with rctx, may be NULL), or NULL/0; valid until the
 * next call. own_ts: the timestamp came from the log itself (docker, CRI). */
int sw_process_record(struct sw_process *p, struct sw_process_file *pf, struct sw_redact_ctx *rctx,
                      int64_t ts, int own_ts, const char *line, size_t len, const char **xl,
                      size_t *xlen);

/* Figures for /metrics (loop thread). */
struct sw_process_filter_stats {
  const char *name, *action;
  uint64_t matched, removed;
};
size_t sw_process_nfilters(const struct sw_process *p);
void sw_process_filter_stats(const struct sw_process *p, size_t i, struct sw_process_filter_stats *out);
size_t sw_process_nmetrics(const struct sw_process *p);
/* Metric i: its conf, overflow count, and each series through fn(arg, values, count) where
 * values[k] is the value of conf->labels[k]. */
const struct sw_log_metric_conf *sw_process_metric(const struct sw_process *p, size_t i,
                                                   uint64_t *overflow);
void sw_process_metric_series(const struct sw_process *p, size_t i,
                              void (*fn)(void *arg, const char *const *values, uint64_t count),
                              void *arg);

#endif
