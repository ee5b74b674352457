/* ws.h - the pure pieces of WebSocket (RFC 6455) for the control server's server side: the
 * handshake's accept key, headers of the frames the server sends, and a strict parser of the
 * frames a client sends. No I/O, no allocation, no globals: httpd.c does the I/O, and the
 * parser is unit-tested (tests/unit/agent/http/test_ws.c) and fuzzed (tests/fuzz/fuzz_ws.c).
 *
 * What the parser refuses, as soon as the bytes that show it are in (close code in f->code):
 *  - 1002: a reserved bit set (no extension is ever negotiated), an unknown opcode, an unmasked
 *    frame (clients must mask), a control frame that is fragmented or carries more than 125
 *    bytes, a length not in its shortest encoding or with the top bit of the 64-bit form set;
 *  - 1009: a payload over SW_WS_MAX_PAYLOAD.
 */
#ifndef SW_WS_H
#define SW_WS_H

#include <stddef.h>
#include <stdint.h>

#include "../../common/error.h"

#define SW_WS_MAX_PAYLOAD 65536 /* bytes; a larger client frame closes the connection (1009) */
#define SW_WS_MAX_HEADER 14     /* a client frame's header: 2 + 8 (length) + 4 (mask) */

enum {
  SW_WS_CONT = 0x0,
  SW_WS_TEXT = 0x1,
  SW_WS_BINARY = 0x2,
  SW_WS_CLOSE = 0x8,
  SW_WS_PING = 0x9,
  SW_WS_PONG = 0xA,
};

/* Close status codes (RFC 6455 section 7.4.1) the server sends. */
enum { SW_WS_NORMAL = 1000, SW_WS_PROTOCOL_ERROR = 1002, SW_WS_TOO_BIG = 1009 };

enum {
  SW_WS_BAD = -1,      /* refuse: close with f->code */
  SW_WS_NEED_MORE = 0, /* valid so far: read more */
  SW_WS_COMPLETE = 1,  /* a whole frame: buf[f->off .. f->off + f->len) is its (masked) payload */
};

struct sw_ws_frame {
  int opcode, fin, masked;
  uint8_t mask[4];
  size_t off;       /* header length = payload offset; also set on SW_WS_NEED_MORE once the
                     * header is complete (0 before), so a caller can drop a payload it ignores
                     * as it arrives instead of buffering it */
  size_t len;       /* payload length (valid when off is) */
  int code;         /* on SW_WS_BAD: 1002 or 1009 */
  const char *why;  /* on SW_WS_BAD: a static explanation */
};

/* Parses the client frame at the start of buf[0..len) (bytes after it are not looked at).
 * f is written in every case. */
int sw_ws_parse(const uint8_t *buf, size_t len, struct sw_ws_frame *f);

/* XORs p[0..n) with the mask, p being payload bytes from offset pos on (so a payload can be
 * unmasked in pieces; pos 0 for a whole one). */
void sw_ws_unmask(uint8_t *p, size_t n, const uint8_t mask[4], uint64_t pos);

/* The header of a final, unmasked (server) frame of `opcode` with a len-byte payload into out;
 * returns its length: 2 (len <= 125), 4 (<= 65535) or 10. */
size_t sw_ws_frame_header(uint8_t out[10], int opcode, uint64_t len);

/* Sec-WebSocket-Accept for the client's Sec-WebSocket-Key (key[0..len), blanks already
 * trimmed): base64(SHA-1(key + the RFC 6455 GUID)) into out, NUL-terminated (28 chars).
 * SW_EINVAL (out untouched) unless the key is the base64 of 16 bytes: 22 base64 characters
 * and "==". */
int sw_ws_accept_key(const char *key, size_t len, char out[29]) SW_MUST_CHECK;

#endif
