/* restore.h - `spillway archive restore`: archived records back into a sink, exactly once.
 *
 * The restore is a small agent of its own whose "source" is the archive: each object is
 * downloaded and verified against its manifest (nothing of an object that fails is sent),
 * its records go into chunks of a buffer of its own under
 * data_dir/restore/<to>-<plan hash>/, and the object's progress (bytes of its NDJSON read) is
 * committed in the same transaction as the chunk that holds them, as file offsets are. The
 * target sink ships from that buffer through the agent's own sink code with its cursor, so
 * everything the agent guarantees holds here: kill -9 and a rerun resume where the commits
 * stopped; Loki is asked what it holds before a resent batch; Elasticsearch ids are stable;
 * the file sink truncates what was written past its cursor. A restore repeated with the same
 * plan (sink, target, --since, --until, --label) finds every object done and sends nothing.
 *
 * Records keep their time, labels (the archive's label objects) and stream.
 */
#ifndef SW_ARCH_RESTORE_H
#define SW_ARCH_RESTORE_H

#include "../../search/query.h"
#include "../config/config.h"
#include "catalog.h"

struct sw_arch_restore_opts {
  const struct sw_config *cfg;
  const struct sw_sink_conf *from, *to; /* to: NULL for --dry-run / --verify-only */
  const struct sw_search_query *q;      /* since, until, label matchers */
  int dry_run, verify_only;
  unsigned threads;                      /* downloads at once (verify-only) */
  int argc;
  char **argv;
};

/* Returns the command's exit status (0 done, 1 a failure, 2 an object failed its check). */
int sw_arch_restore(struct sw_s3c *s, const struct sw_arch_catalog *cat, const struct sw_arch_restore_opts *o);

#endif
