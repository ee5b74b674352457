/* libFuzzer harness for sw_logfmt_scan.
 * Invariants: only 0 or SW_EPARSE; a valid line has 1..size pairs (each pair takes at least
 * one key byte plus a separator); the time is never negative. */
#include <stdint.h>
#include <stdlib.h>

#include "parsers/logfmt.h"

#define CHECK(c) ((c) ? (void)0 : abort())

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  struct sw_logfmt_info res;
  const char *line = size > 0 ? (const char *)data : ""; /* data may be NULL when empty */
  int rc = sw_logfmt_scan(line, size, &res);
  CHECK(rc == 0 || rc == SW_EPARSE);
  if (rc == 0) {
    CHECK(res.npairs >= 1 && res.npairs <= (size + 1) / 2);
    CHECK(res.ts_ns >= 0);
  }
  return 0;
}
