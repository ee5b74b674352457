/* libFuzzer harness for sw_cri_parse.
 * Invariants: only 0 or SW_EPARSE; content is a suffix of the input (it runs to the end of
 * the line and never starts before it); the stream is stdout or stderr. */
#include <stdint.h>
#include <stdlib.h>

#include "parsers/cri.h"
#include "parsers/record.h"

#define CHECK(c) ((c) ? (void)0 : abort())

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *line = size > 0 ? (const char *)data : ""; /* data may be NULL when empty */
  struct sw_cri_line res;
  int rc = sw_cri_parse(line, size, &res);
  CHECK(rc == 0 || rc == SW_EPARSE);
  if (rc == 0) {
    CHECK(res.content >= line && res.content <= line + size);
    CHECK(res.content + res.content_len == line + size);
    CHECK(res.stream == SW_STREAM_STDOUT || res.stream == SW_STREAM_STDERR);
    CHECK(res.ts_ns >= 0);
    CHECK(size >= 29); /* "YYYY-MM-DDTHH:MM:SSZ stdout F" */
  }
  return 0;
}
