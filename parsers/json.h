/* json.h - `format: json` lines: one JSON object per line.
 *
 * Validates the line as a single JSON object (strict RFC 8259 syntax, any nesting up to a
 * fixed depth limit) without building a tree, and extracts the event time from the first
 * top-level key among "time", "ts", "timestamp", "@timestamp": an RFC 3339 string, or a
 * number of epoch seconds (fractions allowed) / milliseconds (> 1e11) / nanoseconds (> 1e17).
 * Pure: no I/O, no allocation.
 */
#ifndef SW_JSON_H
#define SW_JSON_H

#include <stddef.h>
#include <stdint.h>

#include "../common/error.h"

#define SW_JSON_MAX_DEPTH 64

/* Top-level keys a sink adds to a document itself (sinks/es.c), reported in keys. */
enum {
  SW_JSON_KEY_AT_TIMESTAMP = 1 << 0, /* "@timestamp" */
  SW_JSON_KEY_LABELS = 1 << 1,       /* "labels" */
  SW_JSON_KEY_STREAM = 1 << 2,       /* "stream" */
  SW_JSON_KEY_MESSAGE = 1 << 3,      /* "message" */
};

struct sw_json_info {
  int64_t ts_ns; /* 0 if no usable time key */
  unsigned keys; /* SW_JSON_KEY_* present at the top level */
};

/* Returns 0 if the line is one JSON object (surrounding whitespace allowed), else SW_EPARSE. */
int sw_json_scan(const char *line, size_t len, struct sw_json_info *res) SW_MUST_CHECK;

#endif
