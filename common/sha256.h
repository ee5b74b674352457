/* sha256.h - SHA-256 (FIPS 180-4): salted redaction tokens, S3 payload hashes. Pure. */
#ifndef SW_SHA256_H
#define SW_SHA256_H

#include <stddef.h>
#include <stdint.h>

struct sw_sha256 {
  uint32_t h[8];
  uint64_t len;
  uint8_t buf[64];
  size_t nbuf;
};

void sw_sha256_init(struct sw_sha256 *c);
void sw_sha256_update(struct sw_sha256 *c, const void *p, size_t n);
void sw_sha256_final(struct sw_sha256 *c, uint8_t out[32]);
/* sw_sha256_final as lower-case hex (65 bytes with the NUL). */
void sw_sha256_final_hex(struct sw_sha256 *c, char hex[65]);
/* Lower-case hex digest of [p, p+n) into hex (65 bytes with the NUL). */
void sw_sha256_hex(const void *p, size_t n, char hex[65]);

#endif
