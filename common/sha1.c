/* sha1.c - SHA-1 (FIPS 180-4 section 6.1, RFC 3174) for the WebSocket handshake. Portable C and
 * deliberately small: it hashes one 60-byte string per WebSocket connection, so speed does not
 * matter (sha256.c is the fast one). Tested with the FIPS/RFC 3174 vectors in
 * tests/unit/common/test_sha1.c. */
#include "sha1.h"

#include <string.h>

static uint32_t rol(uint32_t x, unsigned n) {
  return (x << n) | (x >> (32 - n));
}

static void block(uint32_t h[5], const uint8_t *p) {
  uint32_t w[80], a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
  for (int i = 0; i < 16; i++)
    w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 | (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
  for (int i = 16; i < 80; i++) w[i] = rol(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
  for (int i = 0; i < 80; i++) {
    uint32_t f, k;
    if (i < 20) {
      f = (b & c) | (~b & d);
      k = 0x5a827999;
    } else if (i < 40) {
      f = b ^ c ^ d;
      k = 0x6ed9eba1;
    } else if (i < 60) {
      f = (b & c) | (b & d) | (c & d);
      k = 0x8f1bbcdc;
    } else {
      f = b ^ c ^ d;
      k = 0xca62c1d6;
    }
    uint32_t t = rol(a, 5) + f + e + k + w[i];
    e = d;
    d = c;
    c = rol(b, 30);
    b = a;
    a = t;
  }
  h[0] += a;
  h[1] += b;
  h[2] += c;
  h[3] += d;
  h[4] += e;
}

void sw_sha1_init(struct sw_sha1 *c) {
  static const uint32_t iv[5] = {0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476, 0xc3d2e1f0};
  memcpy(c->h, iv, sizeof iv);
  c->len = 0;
  c->nbuf = 0;
}

void sw_sha1_update(struct sw_sha1 *c, const void *data, size_t n) {
  const uint8_t *p = data;
  c->len += n;
  while (n > 0) {
    if (c->nbuf == 0 && n >= 64) { /* whole blocks straight from the input */
      block(c->h, p);
      p += 64;
      n -= 64;
      continue;
    }
    size_t take = 64 - c->nbuf < n ? 64 - c->nbuf : n;
    memcpy(c->buf + c->nbuf, p, take);
    c->nbuf += take;
    p += take;
    n -= take;
    if (c->nbuf == 64) {
      block(c->h, c->buf);
      c->nbuf = 0;
    }
  }
}

void sw_sha1_final(struct sw_sha1 *c, uint8_t out[20]) {
  uint64_t bits = c->len * 8;
  uint8_t pad[72] = {0x80};
  size_t padlen = (c->nbuf < 56 ? 56 : 120) - c->nbuf;
  for (int i = 0; i < 8; i++) pad[padlen + (size_t)i] = (uint8_t)(bits >> (56 - 8 * i));
  sw_sha1_update(c, pad, padlen + 8);
  for (int i = 0; i < 5; i++) {
    out[4 * i] = (uint8_t)(c->h[i] >> 24);
    out[4 * i + 1] = (uint8_t)(c->h[i] >> 16);
    out[4 * i + 2] = (uint8_t)(c->h[i] >> 8);
    out[4 * i + 3] = (uint8_t)c->h[i];
  }
}

void sw_sha1(const void *p, size_t n, uint8_t out[20]) {
  struct sw_sha1 c;
  sw_sha1_init(&c);
  if (n) sw_sha1_update(&c, p, n);
  sw_sha1_final(&c, out);
}
