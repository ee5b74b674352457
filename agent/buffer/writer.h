/* writer.h - the buffer's writer thread: compresses sealed chunks and commits them with their
 * file offsets, in submission order, several per transaction (group commit).
 *
 * Job states: QUEUED (owned by the writer, counted in inflight bytes) -> COMMITTED (freed,
 * loop notified through a uv_async) | on a commit error the batch stays QUEUED and is retried
 * with backoff; nothing is dropped, and since offsets were not committed either, a crash or a
 * refused shutdown loses nothing (the bytes are still in the source files).
 * The loop thread submits; only the writer thread touches its SQLite connection.
 */
#ifndef SW_WRITER_H
#define SW_WRITER_H

#include <stdint.h>
#include <uv.h>

#include "../../common/buf.h"
#include "../../common/error.h"
#include "buffer.h"

struct sw_writer;

struct sw_writer_job {
  struct sw_writer_job *next;
  struct sw_commit_op op; /* its pointers refer to the owned fields below */
  struct sw_buf raw;      /* uncompressed chunk (empty for state-only / forget ops) */
  struct sw_buf packed;
  struct sw_buf grams;    /* the chunk's trigram filter, computed with the compression */
  int64_t chunk_id;       /* set by the commit */
  char *strs; /* owned copies of source, path, labels, format */
  void *pending;
  uint64_t *deltas; /* owned; names are borrowed from whoever outlives the writer */
};

struct sw_writer_opts {
  const char *data_dir;
  uint64_t max_bytes;
  int drop_oldest;
  int zstd_level, zstd_ldm; /* buffer.compression: level, long-distance matching */
  struct sw_hot *hot;       /* committed chunks go there (may be NULL; hot.h) */
  int64_t keep_shipped_age_ns; /* shipped history GC keeps (struct sw_gc_policy) */
  int search_filters;          /* build each chunk's trigram filter (chunks that stay to be searched) */
  uint64_t keep_shipped_bytes;
  const char *const *sinks; /* configured sink names, for GC */
  size_t nsinks;
  /* Called on the loop thread after a commit or GC changed usage. */
  void (*on_progress)(void *arg);
  /* Called on the writer thread right after each commit (wake the sinks). */
  void (*on_commit)(void *arg);
  void *arg;
};

/* Opens the writer's own database connection and starts the thread. */
int sw_writer_start(uv_loop_t *loop, const struct sw_writer_opts *opts, struct sw_writer **out,
                    char *err, size_t errlen) SW_MUST_CHECK;
/* Builds a job; strings and pending are copied; raw is moved (left empty). */
struct sw_writer_job *sw_writer_job_new(enum sw_commit_kind kind, const struct sw_file_state *fs,
                                        const char *labels_json, const char *format,
                                        struct sw_buf *raw);
void sw_writer_job_free(struct sw_writer_job *job);
/* Attaches counter deltas (copied; names borrowed: they must outlive the writer). */
int sw_writer_job_counters(struct sw_writer_job *job, const char *const *names,
                           const uint64_t *deltas, size_t n) SW_MUST_CHECK;
/* Takes ownership of job. Loop thread. */
void sw_writer_submit(struct sw_writer *w, struct sw_writer_job *job);
/* Raw bytes submitted and not yet committed. */
uint64_t sw_writer_inflight(struct sw_writer *w);
/* The memory cache committed chunks go to (opts.hot; may be NULL). */
struct sw_hot *sw_writer_hot(struct sw_writer *w);
/* Stored bytes in the buffer as the writer last saw them. */
uint64_t sw_writer_used(struct sw_writer *w);
/* 1 while commits fail because the filesystem under data_dir is full: reading pauses, /ready
 * fails; back to 0 at the first commit that succeeds. Any thread. */
int sw_writer_disk_full(struct sw_writer *w);
/* Failed commit attempts so far: full != 0 those for lack of space, else the others. */
uint64_t sw_writer_commit_failures(struct sw_writer *w, int full);
/* Chunks were deleted by another connection (disk-pressure drops): recount the stored bytes
 * at the next GC pass. Any thread. */
void sw_writer_resync(struct sw_writer *w);
/* Asks for a GC pass soon (sinks call this after acknowledging). Any thread. */
void sw_writer_kick(struct sw_writer *w);
/* Commits everything queued, stops the thread, closes the connection. Sinks may still call
 * sw_writer_kick (it does nothing more) until sw_writer_free. Loop thread. */
void sw_writer_stop(struct sw_writer *w, uint64_t deadline_ms);
/* After sw_writer_stop, once nothing can call sw_writer_kick any more (sinks stopped): the
 * uv_async is closed and the writer freed when the loop has run once more. Loop thread. */
void sw_writer_free(struct sw_writer *w);

#endif
