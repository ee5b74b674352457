/* search.h - `spillway search` and GET /api/v1/search: scan the buffer for a query.
 *
 * One read-only connection in one read transaction (a WAL snapshot: it never blocks ingest,
 * and sees every chunk committed before the search started, even if the agent's GC deletes
 * it meanwhile). Chunks outside the time range or label matchers are skipped from their
 * columns alone; the rest are decompressed and matched by `threads` worker threads while the
 * calling thread reads the next chunks and merges the results, so output streams in time
 * order while the scan runs. Memory is bounded by a window of chunks in flight.
 *
 * Ordering: chunks are taken by their first timestamp; a hit is emitted once no chunk not yet
 * merged can hold an earlier record. Hits with equal timestamps keep chunk, then record order.
 */
#ifndef SW_SEARCH_H
#define SW_SEARCH_H

#include <stdatomic.h>
#include <stdint.h>

#include "../agent/buffer/chunk.h"
#include "query.h"

struct sw_chunk_row;

struct sw_search_hit {
  int64_t chunk_id;
  const char *source, *labels_json, *format; /* the chunk's columns */
  struct sw_record_view rec;
};

struct sw_search_opts {
  const char *data_dir;
  int db_flags;           /* SW_DB_FILE: data_dir is the database file (a copy) */
  unsigned threads;       /* scanning threads; 0: one per online CPU */
  uint64_t limit;         /* stop after this many hits; 0: no limit */
  int count_only;         /* count matches, emit nothing (no ordering work) */
  int follow;             /* after the snapshot, poll for new chunks until cancelled */
  int64_t deadline_ms;    /* CLOCK_MONOTONIC ms; 0: none. Reaching it sets stats.timed_out */
  atomic_int *cancel;     /* may be NULL; non-zero stops the search soon */
  /* Called with each hit in time order; non-zero stops the search. */
  int (*emit)(void *arg, const struct sw_search_hit *h);
  /* Called for each chunk the plan keeps (time, labels, trigram filter), before it is read:
   * 1 when the caller takes it whole from its columns (it is then not read: counting queries
   * whose answer the columns already give), 0 to read it, < 0 an error. May be NULL. */
  int (*plan)(void *arg, const struct sw_chunk_row *row);
  /* Called when no more output is due for a while (follow polls, end): flush. May be NULL. */
  void (*flush)(void *arg);
  void *arg;
};

struct sw_search_stats {
  uint64_t chunks_total;    /* chunks in the time range */
  uint64_t chunks_scanned;  /* of those, decompressed (label matchers passed) */
  uint64_t chunks_skipped;  /* of those, ruled out by their trigram filter */
  uint64_t raw_bytes;       /* uncompressed bytes scanned */
  uint64_t matches;         /* hits found (emitted ones, unless count_only) */
  uint64_t corrupt_chunks;  /* chunks that failed to decode (skipped, reported) */
  uint64_t match_limit_skipped; /* records the regex gave up on (PCRE2 match, depth, heap or JIT
                                   stack limit): skipped as non-matching, reported */
  int timed_out, limited;
};

/* Runs the query. Returns 0, or an error with err filled in: SW_ENOTFOUND (no database),
 * SW_ECORRUPT (not a spillway database, damaged), SW_EDB, SW_EAGAIN (PCRE2 failed otherwise than by a resource limit). */
int sw_search_run(const struct sw_search_query *q, const struct sw_search_opts *o,
                  struct sw_search_stats *st, char *err, size_t errlen) SW_MUST_CHECK;

#endif
