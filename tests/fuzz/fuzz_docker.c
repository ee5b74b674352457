/* libFuzzer harness for sw_docker_parse.
 * Invariants: only 0 or SW_EPARSE with out_cap = len + 1; a result points into out and is no
 * longer than the line; parsing again with exactly enough room gives the same bytes (or
 * SW_ETOOBIG when a duplicate, longer "log" key came first: every "log" value is unescaped
 * into out, the last one wins), and one byte less than that is always SW_ETOOBIG. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "parsers/docker.h"
#include "parsers/record.h"

#define CHECK(c) ((c) ? (void)0 : abort())

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *line = size > 0 ? (const char *)data : ""; /* data may be NULL when empty */
  char *out = malloc(size + 1);
  CHECK(out != NULL);
  struct sw_docker_line res;
  int rc = sw_docker_parse(line, size, out, size + 1, &res);
  CHECK(rc == 0 || rc == SW_EPARSE);
  if (rc == 0) {
    CHECK(res.log == out);
    CHECK(res.log_len <= size);
    CHECK(res.stream == SW_STREAM_STDOUT || res.stream == SW_STREAM_STDERR);
    CHECK(res.ts_ns >= 0);
    size_t need = res.log_len + (res.partial ? 0 : 1); /* the stripped "\n" needs room too */
    char *exact = malloc(need ? need : 1);
    CHECK(exact != NULL);
    struct sw_docker_line again;
    rc = sw_docker_parse(line, size, exact, need, &again);
    CHECK(rc == 0 || rc == SW_ETOOBIG);
    if (rc == 0) {
      CHECK(again.log_len == res.log_len && again.partial == res.partial);
      CHECK(again.stream == res.stream && again.ts_ns == res.ts_ns);
      CHECK(res.log_len == 0 || memcmp(exact, out, res.log_len) == 0);
    }
    if (need > 0)
      CHECK(sw_docker_parse(line, size, exact, need - 1, &again) == SW_ETOOBIG);
    free(exact);
  }
  free(out);
  return 0;
}
