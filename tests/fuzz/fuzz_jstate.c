/* libFuzzer harness for sw_jstate_parse (the journal state read back from the buffer, which a
 * damaged database can hand over as any bytes) and the cursor field parsers.
 * Invariants: a blob is refused as corrupt or parsed into streams whose pending bytes lie
 * inside the input; the parsed state written again parses to the same cursor and streams. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agent/journal/jstate.h"

#define CHECK(c) ((c) ? (void)0 : abort())

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static const uint8_t none[1];
  const uint8_t *buf = size > 0 ? data : none;
  char *cursor;
  struct sw_jstate_stream *s;
  size_t n;
  int rc = sw_jstate_parse(buf, size, &cursor, &s, &n);
  CHECK(rc == SW_OK || rc == SW_ECORRUPT || rc == SW_ENOMEM);
  if (rc) return 0;
  struct sw_buf b;
  sw_buf_init(&b, SIZE_MAX);
  CHECK(sw_jstate_begin(&b, cursor) == SW_OK);
  for (size_t i = 0; i < n; i++) {
    const uint8_t *p = s[i].pending;
    CHECK(!s[i].pending_len || (p >= buf && p + s[i].pending_len <= buf + size));
    CHECK(sw_jstate_add(&b, s[i].key, s[i].committed, s[i].pending, s[i].pending_len) == SW_OK);
  }
  char *c2;
  struct sw_jstate_stream *s2;
  size_t n2;
  CHECK(sw_jstate_parse(b.data, b.len, &c2, &s2, &n2) == SW_OK);
  CHECK(!strcmp(c2, cursor) && n2 == n);
  for (size_t i = 0; i < n; i++)
    CHECK(s2[i].key == s[i].key && s2[i].committed == s[i].committed && s2[i].pending_len == s[i].pending_len &&
          (!s[i].pending_len || !memcmp(s2[i].pending, s[i].pending, s[i].pending_len)));
  uint64_t v;
  char id[33];
  if (sw_jcursor_hex(cursor, 'i', &v)) CHECK(strstr(cursor, "i=") != NULL);
  if (sw_jcursor_seqnum_id(cursor, id)) CHECK(strlen(id) <= 32 && strstr(cursor, id) != NULL);
  free(c2);
  free(s2);
  sw_buf_free(&b);
  free(cursor);
  free(s);
  return 0;
}
