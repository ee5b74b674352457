/* hot.h - sealed chunks kept in memory after their commit ("ship from memory").
 *
 * A sink at the head of the buffer asks for a chunk moments after the writer committed it. The
 * writer hands the chunk's uncompressed bytes to this cache right after the commit, so such a
 * sink encodes them as they are instead of reading the chunk back from SQLite and
 * decompressing it. Durability is unchanged: only committed chunks enter, and sinks still find
 * chunks through the database (a cached chunk is used only for a row the database returned).
 * A sink that falls behind misses the cache and reads SQLite as before.
 *
 * Bounded by bytes: the oldest chunks leave first, and chunks every sink has acknowledged leave
 * at once. Entries are immutable and reference-counted, so a reader keeps using a chunk that
 * was evicted meanwhile. Thread-safe (one mutex; every operation is O(log n) or a pop).
 */
#ifndef SW_HOT_H
#define SW_HOT_H

#include <stddef.h>
#include <stdint.h>

#include "../../common/buf.h"
#include "../../common/error.h"

struct sw_hot;
struct sw_db;
struct sw_chunk_row;

/* max_bytes 0: the cache holds nothing (every get misses). */
int sw_hot_new(uint64_t max_bytes, struct sw_hot **out) SW_MUST_CHECK;
void sw_hot_free(struct sw_hot *h);
/* Writer thread, after chunk `id` was committed: takes raw's memory (raw is left empty), unless
 * the cache cannot hold it (too big, an id not newer than the last, out of memory). */
void sw_hot_put(struct sw_hot *h, int64_t id, struct sw_buf *raw);
/* Every sink has acknowledged up to `upto`: those chunks are not needed any more. */
void sw_hot_drop_upto(struct sw_hot *h, int64_t upto);
/* Bytes held and lookups so far (for metrics). */
void sw_hot_stats(struct sw_hot *h, uint64_t *bytes, uint64_t *hits, uint64_t *misses);

/* A sink's view of the chunks it ships: the raw records of a row from the cache when they are
 * there, else read from the database and decompressed. One per thread that reads. */
struct sw_chunk_reader {
  struct sw_hot *hot; /* may be NULL */
  void *dctx;         /* ZSTD_DCtx, made on first use */
  struct sw_buf raw;  /* decompressed chunk after a miss */
  void *held;         /* the cache entry in use after a hit */
};
void sw_chunk_reader_init(struct sw_chunk_reader *r, struct sw_hot *hot);
void sw_chunk_reader_free(struct sw_chunk_reader *r);
/* Between batches: lets go of the last chunk and of the decompression buffer. */
void sw_chunk_reader_idle(struct sw_chunk_reader *r);
/* raw, len: the uncompressed chunk of `row` (row->data when the query returned it, else it is
 * fetched from db by id), valid until the next call or sw_chunk_reader_free.
 * SW_ECORRUPT: the stored chunk does not decompress; SW_ENOTFOUND: it is gone. */
int sw_chunk_reader_get(struct sw_chunk_reader *r, struct sw_db *db, const struct sw_chunk_row *row,
                        const char **raw, size_t *len) SW_MUST_CHECK;

#endif
