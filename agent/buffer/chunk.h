/* chunk.h - the unit of buffering, shipping, retention and search.
 *
 * A chunk holds records of one tailed file (so one label set), in file order. Raw layout
 * (before zstd), version 1:
 *
 *   u8 version | varint count | varint meta_len | meta | text
 *   meta, per record: zigzag varint (ts - previous ts) | u8 (stream | flags << 2) | varint len
 *   text: each record's bytes followed by '\n' (the '\n' is not part of the record; it lets
 *         search run one regex pass over the whole text section)
 *
 * Timestamps in columns of their own compress far better than interleaved with text.
 * The builder is pure; compression helpers wrap zstd. Nothing here does I/O.
 */
#ifndef SW_CHUNK_H
#define SW_CHUNK_H

#include <stddef.h>
#include <stdint.h>

#include "../../common/buf.h"
#include "../../common/error.h"

#define SW_CHUNK_VERSION 1
#define SW_CHUNK_VERSION_SETS 2

struct sw_chunk_builder {
  struct sw_buf meta, text;
  /* Record label sets (version 2): idx column, set bytes, set ends, and a hash table of set
   * indices + 1 (0 empty) for interning; all empty while no record has a set. */
  struct sw_buf idx, sets, ends;
  uint32_t *tab;
  uint32_t tab_cap, nsets;
  uint32_t count;
  int64_t ts_min, ts_max, prev_ts;
  uint32_t parse_errors, truncated;
};

struct sw_record_view {
  int64_t ts_ns;
  int stream;
  int flags;
  const char *line;
  size_t len;
  const char *xl; /* the record's own labels (a JSON object text), NULL: none */
  size_t xl_len;
};

void sw_chunk_builder_init(struct sw_chunk_builder *cb, size_t max_bytes);
void sw_chunk_builder_free(struct sw_chunk_builder *cb);
void sw_chunk_builder_reset(struct sw_chunk_builder *cb);
/* Adds one record; SW_ETOOBIG if it does not fit the builder's cap (nothing is added). */
int sw_chunk_add(struct sw_chunk_builder *cb, int64_t ts, int stream, int flags, const char *line,
                 size_t len) SW_MUST_CHECK;
/* The same with the record's own label set (a JSON object text of xlen bytes; NULL/0: none):
 * equal sets are stored once per chunk. */
int sw_chunk_add_x(struct sw_chunk_builder *cb, int64_t ts, int stream, int flags, const char *line,
                   size_t len, const char *xl, size_t xlen) SW_MUST_CHECK;
/* Raw (uncompressed) bytes so far, roughly the size of the encoded chunk. */
static inline size_t sw_chunk_raw_size(const struct sw_chunk_builder *cb) {
  return cb->meta.len + cb->text.len + cb->idx.len + cb->sets.len + cb->ends.len + 24;
}
/* Serialises into out (appended). */
int sw_chunk_finish(const struct sw_chunk_builder *cb, struct sw_buf *out) SW_MUST_CHECK;

struct sw_chunk_iter {
  const uint8_t *meta, *meta_end;
  const uint8_t *idx, *idx_end; /* version 2 */
  const uint8_t *ends;          /* nsets u32le */
  const char *sets;
  uint64_t nsets;
  const char *text, *text_end;
  uint64_t left;
  int64_t prev_ts;
};

/* raw must stay alive while iterating. Returns 0 or SW_ECORRUPT; *count gets the record count. */
int sw_chunk_iter_init(struct sw_chunk_iter *it, const void *raw, size_t len,
                       uint64_t *count) SW_MUST_CHECK;
/* 1 = a record in *rec, 0 = end, SW_ECORRUPT = damaged chunk. */
int sw_chunk_iter_next(struct sw_chunk_iter *it, struct sw_record_view *rec) SW_MUST_CHECK;

/* Trigram filter of a raw chunk's text, for search to skip chunks that cannot contain a
 * query's required literals without decompressing them: a bitset of 2^k bits (k in 13..16,
 * about one bit per text byte), bit sw_chunk_gram_bit(trigram, bits) set for every 3-byte
 * window of the text. Appends nothing (and returns 0) for texts under 4 KiB, which are cheap
 * to scan. Pure. */
int sw_chunk_grams(const void *raw, size_t len, struct sw_buf *out) SW_MUST_CHECK;
static inline uint32_t sw_chunk_gram(const uint8_t *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16;
}
/* The same from a 4-byte little-endian load at p (the 4th byte is dropped). */
static inline uint32_t sw_chunk_gram_le(uint32_t w) {
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
  return w & 0xFFFFFF;
#else
  return (w >> 24) | (w >> 8 & 0xFF00) | (w << 8 & 0xFF0000);
#endif
}
static inline uint32_t sw_chunk_gram_bit(uint32_t gram, uint32_t bits) {
  return (uint32_t)((gram * 0x9E3779B1u) >> 8) & (bits - 1); /* bits: a power of two <= 2^24 */
}

/* zstd. ctx is a ZSTD_CCtx / ZSTD_DCtx owned by the calling thread (may be NULL: one is made).
 * ldm: long-distance matching. */
int sw_chunk_compress(void *cctx, int level, int ldm, const void *src, size_t n, struct sw_buf *out) SW_MUST_CHECK;
int sw_chunk_decompress(void *dctx, const void *src, size_t n, struct sw_buf *out) SW_MUST_CHECK;

#endif
