/* ndjsonrec.h - reading back one line of spillway's NDJSON (the file sink's and the S3 sink's
 * format, sinks/ndjson.h): {"ts":"RFC3339Nano","labels":{...},"stream":"stdout","line":"..."}.
 * Members may come in any order and unknown members are skipped, so lines written by a later
 * version still read. Pure: no I/O, no allocation; fuzzed (tests/fuzz/fuzz_ndjsonrec.c).
 */
#ifndef SW_NDJSONREC_H
#define SW_NDJSONREC_H

#include <stddef.h>
#include <stdint.h>

#include "../common/buf.h"
#include "../common/error.h"

struct sw_ndjson_rec {
  int64_t ts_ns;
  const char *labels;     /* the label object's text, braces included */
  size_t labels_len;
  int stream;             /* SW_STREAM_* (parsers/record.h) */
  const char *line;       /* the "line" string's body as written (escapes not decoded) */
  size_t line_len;
  int line_escaped;       /* the body holds escapes: sw_ndjson_rec_line decodes them */
};

/* One line (without its '\n'). SW_ECORRUPT when it is not such an object, when ts, labels or
 * line are missing or malformed. */
int sw_ndjson_rec_parse(const char *p, size_t n, struct sw_ndjson_rec *r) SW_MUST_CHECK;
/* The record's text, decoded, appended to out. */
int sw_ndjson_rec_line(const struct sw_ndjson_rec *r, struct sw_buf *out) SW_MUST_CHECK;

#endif
