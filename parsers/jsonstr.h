/* jsonstr.h - JSON strings for the parsers (private to parsers/). Pure.
 * Strict scanning is shared by the json and logfmt parsers; the docker scanner keeps its own,
 * deliberately lenient one (dockerd writes control bytes unescaped). Decoding one escape is
 * shared by every decoder (docker's `log` values, extracted values, label objects); it is
 * inline because docker's decoder is on the ingest hot path. */
#ifndef SW_JSONSTR_H
#define SW_JSONSTR_H

#include <stdbool.h>
#include <stddef.h>

/* Validates the string body starting at p (just past the opening quote): no raw byte below
 * 0x20, escapes only \" \\ \/ \b \f \n \r \t \uXXXX. Returns the pointer past the closing quote,
 * or NULL. Sets *esc when the body holds an escape (leaves it alone otherwise). */
const char *sw__json_scan_str(const char *p, const char *end, bool *esc);

static inline int sw__json_hexval(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

/* Four hex digits at p (p + 4 <= end checked by the caller) -> 0..0xFFFF, or -1. */
static inline long sw__json_hex4(const char *p) {
  long v = 0;
  for (int i = 0; i < 4; i++) {
    int h = sw__json_hexval(p[i]);
    if (h < 0)
      return -1;
    v = v << 4 | h;
  }
  return v;
}

static inline size_t sw__json_put_utf8(char *o, unsigned long cp) {
  if (cp < 0x80) {
    o[0] = (char)cp;
    return 1;
  }
  if (cp < 0x800) {
    o[0] = (char)(0xC0 | cp >> 6);
    o[1] = (char)(0x80 | (cp & 0x3F));
    return 2;
  }
  if (cp < 0x10000) {
    o[0] = (char)(0xE0 | cp >> 12);
    o[1] = (char)(0x80 | (cp >> 6 & 0x3F));
    o[2] = (char)(0x80 | (cp & 0x3F));
    return 3;
  }
  o[0] = (char)(0xF0 | cp >> 18);
  o[1] = (char)(0x80 | (cp >> 12 & 0x3F));
  o[2] = (char)(0x80 | (cp >> 6 & 0x3F));
  o[3] = (char)(0x80 | (cp & 0x3F));
  return 4;
}

/* Decodes the escape at s (s[0] == '\\') into buf (4 bytes), sets *n, returns the pointer
 * past it or NULL for a malformed escape. A lone or mis-ordered UTF-16 surrogate becomes
 * U+FFFD rather than an error: it has no UTF-8 form, and replacing it (as Go's
 * encoding/json decoder does) keeps the output valid UTF-8 without dropping the line. */
static inline const char *sw__json_decode_escape(const char *s, const char *end, char *buf, size_t *n) {
  if (end - s < 2)
    return NULL;
  *n = 1;
  switch (s[1]) {
  case '"': buf[0] = '"'; return s + 2;
  case '\\': buf[0] = '\\'; return s + 2;
  case '/': buf[0] = '/'; return s + 2;
  case 'b': buf[0] = '\b'; return s + 2;
  case 'f': buf[0] = '\f'; return s + 2;
  case 'n': buf[0] = '\n'; return s + 2;
  case 'r': buf[0] = '\r'; return s + 2;
  case 't': buf[0] = '\t'; return s + 2;
  case 'u': break;
  default: return NULL;
  }
  if (end - s < 6)
    return NULL;
  long cp = sw__json_hex4(s + 2);
  if (cp < 0)
    return NULL;
  s += 6;
  if (cp >= 0xD800 && cp <= 0xDBFF) {
    long lo = -1;
    if (end - s >= 6 && s[0] == '\\' && s[1] == 'u')
      lo = sw__json_hex4(s + 2);
    if (lo >= 0xDC00 && lo <= 0xDFFF) {
      cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
      s += 6;
    } else {
      cp = 0xFFFD; /* the next escape, if any, is decoded on its own */
    }
  } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
    cp = 0xFFFD;
  }
  *n = sw__json_put_utf8(buf, (unsigned long)cp);
  return s;
}

#endif
