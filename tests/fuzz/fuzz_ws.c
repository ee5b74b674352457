/* libFuzzer harness for sw_ws_parse (the control server's WebSocket client frame parser).
 * Invariants: the verdict is one of the three; a refused frame carries 1002 or 1009 and a
 * reason; a complete frame is masked, has a known opcode, a header of 6, 8 or 14 bytes in its
 * shortest form, a payload within the input and SW_WS_MAX_PAYLOAD (a control frame: final,
 * at most 125 bytes), and parsing just its bytes gives the same frame; once the header is
 * known (off set) a partial verdict says the payload runs past the input; every prefix of a
 * complete frame needs more (never bad: a byte seen later cannot make earlier ones wrong);
 * the mask applied twice gives the bytes back. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agent/http/ws.h"

#define CHECK(c) ((c) ? (void)0 : abort())

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static const uint8_t none[1];
  const uint8_t *buf = size > 0 ? data : none; /* data may be NULL when empty */
  struct sw_ws_frame f;
  int rc = sw_ws_parse(buf, size, &f);
  CHECK(rc == SW_WS_BAD || rc == SW_WS_NEED_MORE || rc == SW_WS_COMPLETE);
  if (rc == SW_WS_BAD) {
    CHECK((f.code == SW_WS_PROTOCOL_ERROR || f.code == SW_WS_TOO_BIG) && f.why != NULL);
    return 0;
  }
  if (rc == SW_WS_NEED_MORE) {
    CHECK(f.off == 0 || (f.off <= size && size - f.off < f.len));
    return 0;
  }
  CHECK(f.masked && (f.off == 6 || f.off == 8 || f.off == 14));
  CHECK(f.off <= size && f.len <= size - f.off && f.len <= SW_WS_MAX_PAYLOAD);
  CHECK(f.off != 8 || f.len >= 126);
  CHECK(f.off != 14 || f.len >= 65536);
  CHECK(f.off != 6 || f.len <= 125);
  int op = f.opcode;
  CHECK(op == SW_WS_CONT || op == SW_WS_TEXT || op == SW_WS_BINARY || op == SW_WS_CLOSE ||
        op == SW_WS_PING || op == SW_WS_PONG);
  CHECK(!(op & 8) || (f.fin && f.len <= 125));
  struct sw_ws_frame again;
  size_t total = f.off + f.len;
  CHECK(sw_ws_parse(buf, total, &again) == SW_WS_COMPLETE);
  CHECK(again.off == f.off && again.len == f.len && again.opcode == f.opcode &&
        again.fin == f.fin && !memcmp(again.mask, f.mask, 4));
  for (size_t n = 0; n < total; n += 1 + n / 8)
    CHECK(sw_ws_parse(buf, n, &again) == SW_WS_NEED_MORE);
  if (f.len > 0) {
    uint8_t *p = malloc(f.len);
    CHECK(p != NULL);
    memcpy(p, buf + f.off, f.len);
    size_t half = f.len / 2;
    sw_ws_unmask(p, half, f.mask, 0);
    sw_ws_unmask(p + half, f.len - half, f.mask, half);
    sw_ws_unmask(p, f.len, f.mask, 0);
    CHECK(!memcmp(p, buf + f.off, f.len));
    free(p);
  }
  return 0;
}
