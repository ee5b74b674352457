/* cri.h - Kubernetes CRI log lines: "<RFC3339Nano> <stdout|stderr> <P|F>[:tags] <content>"
 *
 * P marks a partial line (the runtime split it), F the full/final piece. Content is taken
 * verbatim (no unescaping): it is everything after the single space following the tag field,
 * and may be empty. Pure: no I/O, no allocation.
 */
#ifndef SW_CRI_H
#define SW_CRI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../common/error.h"

struct sw_cri_line {
  int64_t ts_ns;
  int stream;          /* SW_STREAM_STDOUT or SW_STREAM_STDERR */
  bool partial;        /* tag P */
  const char *content; /* points into the input line */
  size_t content_len;
};

/* Parses one physical line (without '\n'). Returns 0 or SW_EPARSE. */
int sw_cri_parse(const char *line, size_t len, struct sw_cri_line *res) SW_MUST_CHECK;

#endif
