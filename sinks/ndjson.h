/* ndjson.h - one decoded chunk -> NDJSON lines (the file sink's format; S3 objects reuse it):
 *   {"ts":"RFC3339Nano","labels":{...},"stream":"stdout","line":"..."}\n
 * Record flags become labels: parse_error=<format>, truncated=true, invalid_utf8=true (its
 * invalid bytes are written as U+FFFD). Pure: no I/O.
 */
#ifndef SW_NDJSON_H
#define SW_NDJSON_H

#include <stddef.h>
#include <stdint.h>

#include "../agent/buffer.h"
#include "../common/buf.h"

/* raw: the decompressed chunk of row. Appends to out; *records gets the record count. */
int sw_ndjson_encode(const struct sw_chunk_row *row, const void *raw, size_t raw_len,
                     struct sw_buf *out, uint64_t *records) SW_MUST_CHECK;

#endif
