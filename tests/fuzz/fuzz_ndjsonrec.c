/* libFuzzer harness for parsers/ndjsonrec.c and the manifest code (sinks/manifest.c): what the
 * archive commands read from S3 or local files, which may be damaged or hostile. Invariants:
 * parsed spans lie inside the input, a decoded line is never longer than its escaped form, the
 * accumulator's figures do not depend on how the input is split, and a manifest either parses
 * or is refused. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "parsers/ndjsonrec.h"
#include "sinks/manifest.h"

#define CHECK(c) ((c) ? (void)0 : abort())

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *s = (const char *)data;
  struct sw_buf line;
  sw_buf_init(&line, SIZE_MAX);
  const char *p = s, *end = s + size;
  while (p <= end) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    size_t n = (size_t)((nl ? nl : end) - p);
    struct sw_ndjson_rec r;
    if (sw_ndjson_rec_parse(p, n, &r) == 0) {
      CHECK(r.labels >= p && r.labels + r.labels_len <= p + n && r.labels[0] == '{');
      CHECK(r.line >= p && r.line + r.line_len <= p + n);
      sw_buf_reset(&line);
      if (sw_ndjson_rec_line(&r, &line) == 0) CHECK(line.len <= r.line_len);
    }
    if (!nl) break;
    p = nl + 1;
  }
  sw_buf_free(&line);

  struct sw_manifest_acc a, b;
  sw_manifest_acc_init(&a);
  sw_manifest_acc_init(&b);
  size_t cut = size ? data[0] % size : 0;
  CHECK(sw_manifest_acc_feed(&a, s, size) == 0 && sw_manifest_acc_end(&a) == 0);
  CHECK(sw_manifest_acc_feed(&b, s, cut) == 0 && sw_manifest_acc_feed(&b, s + cut, size - cut) == 0);
  CHECK(sw_manifest_acc_end(&b) == 0);
  CHECK(a.records == b.records && a.bad_lines == b.bad_lines && a.nsets == b.nsets && a.bytes == size);
  CHECK(a.ts_min == b.ts_min && a.ts_max == b.ts_max);
  sw_manifest_acc_free(&a);
  sw_manifest_acc_free(&b);

  struct sw_manifest m;
  char why[200];
  if (sw_manifest_parse(s, size, &m, why, sizeof why) == 0) sw_manifest_free(&m);
  return 0;
}
