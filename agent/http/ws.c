/* ws.c - WebSocket handshake key, server frame headers and the client frame parser (see
 * http/ws.h for what the parser refuses and why). */
#include "ws.h"

#include <string.h>

#include "../../common/sha1.h"

static int bad(struct sw_ws_frame *f, int code, const char *why) {
  f->code = code;
  f->why = why;
  return SW_WS_BAD;
}

int sw_ws_parse(const uint8_t *buf, size_t len, struct sw_ws_frame *f) {
  memset(f, 0, sizeof *f);
  if (len < 1) return SW_WS_NEED_MORE;
  f->fin = buf[0] >> 7;
  f->opcode = buf[0] & 0x0f;
  if (buf[0] & 0x70) return bad(f, SW_WS_PROTOCOL_ERROR, "reserved bit set");
  int control = f->opcode & 8;
  if (f->opcode > SW_WS_BINARY && (!control || f->opcode > SW_WS_PONG))
    return bad(f, SW_WS_PROTOCOL_ERROR, "unknown opcode");
  if (control && !f->fin) return bad(f, SW_WS_PROTOCOL_ERROR, "fragmented control frame");
  if (len < 2) return SW_WS_NEED_MORE;
  f->masked = buf[1] >> 7;
  if (!f->masked) return bad(f, SW_WS_PROTOCOL_ERROR, "unmasked client frame");
  uint64_t n = buf[1] & 0x7f;
  size_t hl = 2;
  if (control && n > 125) return bad(f, SW_WS_PROTOCOL_ERROR, "control frame over 125 bytes");
  if (n == 126) {
    if (len < 4) return SW_WS_NEED_MORE;
    n = (uint64_t)buf[2] << 8 | buf[3];
    if (n < 126) return bad(f, SW_WS_PROTOCOL_ERROR, "length not in its shortest form");
    hl = 4;
  } else if (n == 127) {
    if (len < 10) return SW_WS_NEED_MORE;
    n = 0;
    for (int i = 2; i < 10; i++) n = n << 8 | buf[i];
    if (n >> 63) return bad(f, SW_WS_PROTOCOL_ERROR, "64-bit length with the top bit set");
    if (n < 65536) return bad(f, SW_WS_PROTOCOL_ERROR, "length not in its shortest form");
    hl = 10;
  }
  if (n > SW_WS_MAX_PAYLOAD) return bad(f, SW_WS_TOO_BIG, "frame over the size limit");
  if (len < hl + 4) return SW_WS_NEED_MORE;
  memcpy(f->mask, buf + hl, 4);
  f->off = hl + 4;
  f->len = (size_t)n;
  return len - f->off >= f->len ? SW_WS_COMPLETE : SW_WS_NEED_MORE;
}

void sw_ws_unmask(uint8_t *p, size_t n, const uint8_t mask[4], uint64_t pos) {
  for (size_t i = 0; i < n; i++) p[i] ^= mask[(pos + i) & 3];
}

size_t sw_ws_frame_header(uint8_t out[10], int opcode, uint64_t len) {
  out[0] = (uint8_t)(0x80 | (opcode & 0x0f)); /* FIN: the server never fragments */
  if (len <= 125) {
    out[1] = (uint8_t)len;
    return 2;
  }
  if (len <= 65535) {
    out[1] = 126;
    out[2] = (uint8_t)(len >> 8);
    out[3] = (uint8_t)len;
    return 4;
  }
  out[1] = 127;
  for (int i = 0; i < 8; i++) out[2 + i] = (uint8_t)(len >> (56 - 8 * i));
  return 10;
}

static const char B64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Standard base64 with padding of n bytes into out (4 * ((n + 2) / 3) chars and a NUL). */
static void base64(const uint8_t *p, size_t n, char *out) {
  size_t o = 0;
  for (size_t i = 0; i < n; i += 3) {
    uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0) |
                 (i + 2 < n ? p[i + 2] : 0);
    out[o++] = B64[v >> 18];
    out[o++] = B64[(v >> 12) & 63];
    out[o++] = i + 1 < n ? B64[(v >> 6) & 63] : '=';
    out[o++] = i + 2 < n ? B64[v & 63] : '=';
  }
  out[o] = 0;
}

int sw_ws_accept_key(const char *key, size_t len, char out[29]) {
  static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
  if (len != 24 || key[22] != '=' || key[23] != '=') return SW_EINVAL;
  for (size_t i = 0; i < 22; i++)
    if (!key[i] || !strchr(B64, key[i])) return SW_EINVAL;
  char buf[24 + sizeof guid];
  memcpy(buf, key, 24);
  memcpy(buf + 24, guid, sizeof guid - 1);
  uint8_t d[20];
  sw_sha1(buf, 24 + sizeof guid - 1, d);
  base64(d, sizeof d, out);
  return SW_OK;
}
