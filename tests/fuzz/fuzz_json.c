/* libFuzzer harness for sw_json_scan and sw_json_flatten (jsonflat.h).
 * Invariants: only 0 or SW_EPARSE; a valid line starts with '{' after whitespace; the time
 * is never negative; the result does not depend on bytes after the line (we scan a copy
 * followed by junk and require the same answer). The flattener accepts exactly what the
 * scanner accepts, reads only inside the line (the copy is exactly its length), and gives
 * non-empty names. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "parsers/json.h"
#include "parsers/jsonflat.h"

#define CHECK(c) ((c) ? (void)0 : abort())

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int member(void *arg, const char *name, size_t nlen, const char *value, size_t vlen) {
  size_t *n = arg;
  CHECK(nlen > 0 && name != NULL && value != NULL);
  volatile char sink = vlen ? value[vlen - 1] : 0; /* the whole value is readable */
  (void)sink;
  ++*n;
  return 0;
}

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
  char *exact = malloc(size ? size : 1);
  CHECK(exact != NULL);
  if (size > 0)
    memcpy(exact, line, size);
  struct sw_buf name, val;
  sw_buf_init(&name, SIZE_MAX);
  sw_buf_init(&val, SIZE_MAX);
  size_t n = 0;
  int frc = sw_json_flatten(exact, size, &name, &val, NULL, member, &n);
  CHECK(frc == (rc == 0 ? 0 : SW_EPARSE));
  sw_buf_free(&name);
  sw_buf_free(&val);
  free(exact);
  return 0;
}
