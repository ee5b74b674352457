/* output.h - how search hits are written: `text` for people (one line per record:
 * time, labels as k=v, stream, the record, with control characters made visible so that log
 * content cannot drive the terminal), `raw` (the same, bytes as they are, for pipes) or `json`
 * (the file sink's NDJSON line, so `spillway search --output json` reads like shipped output).
 * Pure. */
#ifndef SW_SEARCH_OUTPUT_H
#define SW_SEARCH_OUTPUT_H

#include "../sinks/ndjson.h"
#include "search.h"

enum sw_search_format { SW_SEARCH_OUT_TEXT, SW_SEARCH_OUT_JSON, SW_SEARCH_OUT_RAW };

struct sw_search_out {
  enum sw_search_format format;
  struct sw_ndjson_state nd;
  int64_t labels_chunk; /* chunk whose labels `labels` holds rendered */
  struct sw_buf labels;
};

void sw_search_out_init(struct sw_search_out *o, enum sw_search_format format);
void sw_search_out_free(struct sw_search_out *o);
/* Appends one hit to out. */
int sw_search_out_hit(struct sw_search_out *o, const struct sw_search_hit *h, struct sw_buf *out) SW_MUST_CHECK;

#endif
