/* jsonstr.c - see jsonstr.h. */
#include "jsonstr.h"

#include <stdint.h>
#include <string.h>

static bool is_hex(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* First '"', '\\' or control byte (< 0x20) in [p, end), or end; 8 bytes per step. */
static const char *find_special(const char *p, const char *end) {
  const uint64_t ones = UINT64_C(0x0101010101010101), highs = UINT64_C(0x8080808080808080);
  while (end - p >= 8) {
    uint64_t x;
    memcpy(&x, p, 8);
    uint64_t a = x ^ (ones * '"'), b = x ^ (ones * '\\');
    /* (v - k*ones) & ~v & highs is nonzero iff some byte of v is below k (k <= 0x80). */
    if (((a - ones) & ~a & highs) | ((b - ones) & ~b & highs) | ((x - ones * 0x20) & ~x & highs))
      break;
    p += 8;
  }
  while (p < end && *p != '"' && *p != '\\' && (unsigned char)*p >= 0x20)
    p++;
  return p;
}

const char *sw__json_scan_str(const char *p, const char *end, bool *esc) {
  for (;;) {
    p = find_special(p, end);
    if (p >= end || (unsigned char)*p < 0x20)
      return NULL;
    if (*p == '"')
      return p + 1;
    *esc = true;
    if (end - p < 2)
      return NULL;
    if (p[1] == 'u') {
      if (end - p < 6 || !is_hex(p[2]) || !is_hex(p[3]) || !is_hex(p[4]) || !is_hex(p[5]))
        return NULL;
      p += 6;
    } else if (p[1] != '\0' && strchr("\"\\/bfnrt", p[1]) != NULL) {
      p += 2;
    } else {
      return NULL;
    }
  }
}
