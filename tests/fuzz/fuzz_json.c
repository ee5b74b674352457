/* libFuzzer harness for sw_json_scan.
 * Invariants: only 0 or SW_EPARSE; a valid line starts with '{' after whitespace; the time
 * is never negative; the result does not depend on bytes after the line (we scan a copy
 * followed by junk and require the same answer). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "parsers/json.h"

#define CHECK(c) ((c) ? (void)0 : abort())

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *line = size > 0 ? (const char *)data : ""; /* data may be NULL when empty */
  struct sw_json_info res;
  int rc = sw_json_scan(line, size, &res);
  CHECK(rc == 0 || rc == SW_EPARSE);
  if (rc == 0) {
    CHECK(res.ts_ns >= 0);
    size_t i = 0;
    while (i < size && strchr(" \t\r\n", line[i]) != NULL && line[i] != '\0')
      i++;
    CHECK(i < size && line[i] == '{');
  }
  char *padded = malloc(size + 4);
  CHECK(padded != NULL);
  if (size > 0)
    memcpy(padded, line, size);
  memcpy(padded + size, "\"}]0", 4);
  struct sw_json_info res2;
  CHECK(sw_json_scan(padded, size, &res2) == rc);
  CHECK(rc != 0 || res2.ts_ns == res.ts_ns);
  free(padded);
  return 0;
}
