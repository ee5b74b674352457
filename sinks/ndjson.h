/* ndjson.h - one decoded chunk -> NDJSON lines (the file sink's format; S3 objects reuse it):
 *   {"ts":"RFC3339Nano","labels":{...},"stream":"stdout","line":"..."}\n
 * Record flags become labels: parse_error=<format>, truncated=true, invalid_utf8=true (its
 * invalid bytes are written as U+FFFD). Pure: no I/O.
 */
#ifndef SW_NDJSON_H
#define SW_NDJSON_H

#include <stddef.h>
#include <stdint.h>

#include "../agent/buffer/buffer.h"
#include "../agent/buffer/chunk.h"
#include "../common/buf.h"
#include "route.h"

/* State reused across the records of one output run. */
struct sw_ndjson_state {
  int64_t cached_sec;  /* INT64_MIN at start */
  char ts[32];
  struct sw_buf probe; /* scratch for lines with bytes >= 0x80 */
};
void sw_ndjson_state_init(struct sw_ndjson_state *s);
void sw_ndjson_state_free(struct sw_ndjson_state *s);

/* One record as one NDJSON line; labels is the chunk's label object text (llen bytes),
 * format its source format (for the parse_error label). */
int sw_ndjson_record(struct sw_ndjson_state *s, const char *labels, size_t llen, const char *format,
                     const struct sw_record_view *r, struct sw_buf *out) SW_MUST_CHECK;

/* raw: the decompressed chunk of row. Appends to out the records route lets through (NULL:
 * all); *records gets how many. */
int sw_ndjson_encode(const struct sw_chunk_row *row, const void *raw, size_t raw_len,
                     const struct sw_route *route, struct sw_buf *out, uint64_t *records) SW_MUST_CHECK;

/* The members of r's own label set (r->xl), after a ',' when after_member: written inside a
 * label object being built (extracted names never repeat the chunk's). Nothing without one. */
int sw_labels_append_set(struct sw_buf *out, int after_member, const struct sw_record_view *r) SW_MUST_CHECK;

#endif
