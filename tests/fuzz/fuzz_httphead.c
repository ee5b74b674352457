/* libFuzzer harness for sw_http_head_parse (the control server's request head parser).
 * Invariants: the verdict is one of the three; a bad head carries 400 or 431 and a reason;
 * a complete head ends with CRLF CRLF within the input and `max`, its method and target lie
 * inside it (the target starts with '/'), and parsing just its bytes gives the same head; a
 * partial verdict never comes for an input of `max` bytes or more; every prefix of a complete
 * head is partial or complete (never bad: a byte seen later cannot make earlier ones wrong). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agent/http/head.h"

#define CHECK(c) ((c) ? (void)0 : abort())
#define MAX 8192

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *buf = size > 0 ? (const char *)data : ""; /* data may be NULL when empty */
  struct sw_http_head h;
  int rc = sw_http_head_parse(buf, size, MAX, &h);
  CHECK(rc == SW_HTTP_HEAD_BAD || rc == SW_HTTP_HEAD_PARTIAL || rc == SW_HTTP_HEAD_COMPLETE);
  if (rc == SW_HTTP_HEAD_BAD) {
    CHECK((h.status == 400 || h.status == 431) && h.why != NULL);
    return 0;
  }
  if (rc == SW_HTTP_HEAD_PARTIAL) {
    CHECK(size < MAX);
    return 0;
  }
  CHECK(h.head_len >= 4 && h.head_len <= size && h.head_len <= MAX);
  CHECK(!memcmp(buf + h.head_len - 4, "\r\n\r\n", 4));
  CHECK(h.method == buf && h.method_len > 0);
  CHECK(h.target > buf && h.target + h.target_len <= buf + h.head_len && h.target[0] == '/');
  struct sw_http_head again;
  CHECK(sw_http_head_parse(buf, h.head_len, MAX, &again) == SW_HTTP_HEAD_COMPLETE);
  CHECK(again.head_len == h.head_len && again.content_length == h.content_length &&
        again.has_length == h.has_length && again.transfer_encoding == h.transfer_encoding);
  for (size_t n = 0; n < h.head_len; n += 1 + n / 8)
    CHECK(sw_http_head_parse(buf, n, MAX, &again) == SW_HTTP_HEAD_PARTIAL);
  return 0;
}
