/* sha1.h - SHA-1 (FIPS 180-4, RFC 3174). Only for the WebSocket handshake
 * (Sec-WebSocket-Accept, agent/http/ws.c), where RFC 6455 fixes the hash: SHA-1 is broken for
 * collisions and must not be used for anything that needs a secure digest (use sha256.h).
 * Pure. */
#ifndef SW_SHA1_H
#define SW_SHA1_H

#include <stddef.h>
#include <stdint.h>

struct sw_sha1 {
  uint32_t h[5];
  uint64_t len;
  uint8_t buf[64];
  size_t nbuf;
};

void sw_sha1_init(struct sw_sha1 *c);
void sw_sha1_update(struct sw_sha1 *c, const void *p, size_t n);
void sw_sha1_final(struct sw_sha1 *c, uint8_t out[20]);
/* The digest of [p, p+n) (p may be NULL when n is 0). */
void sw_sha1(const void *p, size_t n, uint8_t out[20]);

#endif
