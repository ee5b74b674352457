/* hash.h - FNV-1a 64, the one non-cryptographic hash of the code base (hash tables, sampling,
 * file fingerprints). Pure; inline because its callers sit on per-record paths. */
#ifndef SW_HASH_H
#define SW_HASH_H

#include <stddef.h>
#include <stdint.h>

#define SW_FNV1A_INIT 14695981039346656037ULL /* FNV-1a 64's offset basis */

/* FNV-1a 64 of s[0..n) continued from h (start with SW_FNV1A_INIT). */
static inline uint64_t sw_fnv1a(uint64_t h, const void *s, size_t n) {
  const unsigned char *p = s;
  for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 1099511628211ULL;
  return h;
}

#endif
