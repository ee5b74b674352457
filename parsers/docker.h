/* docker.h - Docker json-file lines: {"log":"...\n","stream":"stdout","time":"RFC3339Nano"}
 *
 * A specialised scanner, not a generic JSON tree: it walks the object once, unescapes the
 * "log" string into caller memory and reads "stream" and "time". Other keys ("attrs", ...)
 * are skipped. Docker splits lines longer than 16 KiB into several entries; all but the last
 * lack the trailing "\n" in "log" and are reported as partial so the caller can join them.
 * Pure: no I/O, no allocation, no globals.
 */
#ifndef SW_DOCKER_H
#define SW_DOCKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../common/error.h"

struct sw_docker_line {
  int64_t ts_ns;   /* from "time"; 0 if absent */
  int stream;      /* SW_STREAM_STDOUT or SW_STREAM_STDERR (stdout if absent/unknown) */
  bool partial;    /* "log" did not end in "\n": more pieces of this line follow */
  const char *log; /* unescaped "log" value without its trailing "\n"; points into out */
  size_t log_len;
};

/* Parses one physical line (without its terminating '\n').
 * out/out_cap: caller's scratch for the unescaped log (borrowed); out_cap >= len always suffices.
 * Returns 0, or SW_EPARSE if the line is not a docker json-file entry (broken JSON, no "log"
 * string, bad "time"); on error *res is unspecified. */
int sw_docker_parse(const char *line, size_t len, char *out, size_t out_cap,
                    struct sw_docker_line *res) SW_MUST_CHECK;

#endif
