/* shipper.h - the network sinks (Loki, Elasticsearch, S3) on the agent's loop.
 *
 * One shipper drives every network sink through one HTTP transport (http.h). Each sink has
 * its own cursor, database connection, batches and retries, so a slow or dead sink never
 * holds the others back: its backlog just stays in the buffer. Reading, encoding and
 * compressing batches and committing cursors run on libuv's thread pool, never on the loop.
 */
#ifndef SW_SHIPPER_H
#define SW_SHIPPER_H

#include <stdint.h>
#include <uv.h>

#include "../agent/config/config.h"
#include "../agent/buffer/writer.h"
#include "http.h"

struct sw_shipper;

/* Starts every loki/elasticsearch/s3 sink of cfg (borrowed: must outlive the shipper).
 * *out is NULL when there are none. err gets "sink NAME: reason" on failure. */
int sw_shipper_start(uv_loop_t *loop, const struct sw_config *cfg, struct sw_writer *w,
                     struct sw_shipper **out, char *err, size_t errlen) SW_MUST_CHECK;
/* New chunks were committed. Any thread (the writer calls it from its own). */
void sw_shipper_notify(struct sw_shipper *s);
/* Ships what is buffered, without waiting for batches to fill, until everything is delivered
 * or deadline_ms passes; then cancels what is in flight (it is sent again at the next start),
 * commits the cursors and frees the shipper. Runs the loop itself. */
void sw_shipper_stop(struct sw_shipper *s, uint64_t deadline_ms);

/* Per-sink figures for metrics and status (loop thread). */
struct sw_shipper_sink_stats {
  const char *name, *type;
  uint64_t records_sent, bytes_sent, batches_sent, dead_letters, dead_records;
  /* Loki after a restart: entries found already stored (not sent again), and entries sent again
   * because the receiver could not be asked (they may now be stored twice). */
  uint64_t skipped_records, possibly_duplicated_records;
  uint64_t routed_away_records, label_missing; /* the sink's match; {label} of tenant/index/prefix */
  int64_t acked;
  const struct sw_http_stats *http;
};
size_t sw_shipper_nsinks(const struct sw_shipper *s);
void sw_shipper_sink_stats(const struct sw_shipper *s, size_t i, struct sw_shipper_sink_stats *out);

#endif
