#include "buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

void sw_buf_init(struct sw_buf *b, size_t max) {
  b->data = NULL;
  b->len = b->cap = 0;
  b->max = max;
}

void sw_buf_free(struct sw_buf *b) {
  free(b->data);
  b->data = NULL;
  b->len = b->cap = 0;
}

int sw_buf_reserve(struct sw_buf *b, size_t extra) {
  if (extra > b->max || b->len > b->max - extra) return SW_ETOOBIG;
  size_t need = b->len + extra;
  if (need <= b->cap) return SW_OK;
  /* The first reservation is taken at its size (at least 256): a buffer sized up front for
   * a known length (a chunk, a compressed copy) does not get up to twice that. */
  size_t ncap = b->cap ? b->cap : (need > 256 ? need : 256);
  while (ncap < need) ncap = ncap > SIZE_MAX / 2 ? need : ncap * 2;
  if (ncap > b->max) ncap = b->max;
  char *p = realloc(b->data, ncap);
  if (!p) return SW_ENOMEM;
  b->data = p;
  b->cap = ncap;
  return SW_OK;
}

int sw_buf_append(struct sw_buf *b, const void *p, size_t n) {
  int rc = sw_buf_reserve(b, n);
  if (rc) return rc;
  if (n) memcpy(b->data + b->len, p, n);
  b->len += n;
  return SW_OK;
}

int sw_buf_put_u64(struct sw_buf *b, uint64_t v) {
  char d[20];
  size_t n = 0;
  do {
    d[n++] = (char)('0' + v % 10);
    v /= 10;
  } while (v);
  int rc = sw_buf_reserve(b, n);
  if (rc) return rc;
  while (n) b->data[b->len++] = d[--n];
  return SW_OK;
}

int sw_buf_putc(struct sw_buf *b, char c) {
  if (b->len < b->cap) {
    b->data[b->len++] = c;
    return SW_OK;
  }
  return sw_buf_append(b, &c, 1);
}

int sw_buf_printf(struct sw_buf *b, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char tmp[256];
  int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
  va_end(ap);
  if (n < 0) return SW_EINVAL;
  if ((size_t)n < sizeof tmp) return sw_buf_append(b, tmp, (size_t)n);
  int rc = sw_buf_reserve(b, (size_t)n + 1);
  if (rc) return rc;
  va_start(ap, fmt);
  vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
  va_end(ap);
  b->len += (size_t)n;
  return SW_OK;
}

int sw_buf_put_varint(struct sw_buf *b, uint64_t v) {
  uint8_t tmp[10];
  size_t n = 0;
  do {
    uint8_t byte = v & 0x7f;
    v >>= 7;
    tmp[n++] = byte | (v ? 0x80 : 0);
  } while (v);
  return sw_buf_append(b, tmp, n);
}

int sw_get_varint(const uint8_t **p, const uint8_t *end, uint64_t *v) {
  uint64_t r = 0;
  for (unsigned shift = 0; shift < 64; shift += 7) {
    if (*p >= end) return SW_ECORRUPT;
    uint8_t byte = *(*p)++;
    r |= (uint64_t)(byte & 0x7f) << shift;
    if (!(byte & 0x80)) {
      *v = r;
      return SW_OK;
    }
  }
  return SW_ECORRUPT;
}

/* Length of the valid UTF-8 sequence at s (1..4), or 0 if the bytes are not one. */
static size_t utf8_seq_len(const unsigned char *s, size_t n) {
  unsigned char c = s[0];
  if (c < 0x80) return 1;
  size_t len;
  uint32_t cp;
  if (c >= 0xc2 && c <= 0xdf) { len = 2; cp = c & 0x1f; }
  else if (c >= 0xe0 && c <= 0xef) { len = 3; cp = c & 0x0f; }
  else if (c >= 0xf0 && c <= 0xf4) { len = 4; cp = c & 0x07; }
  else return 0;
  if (n < len) return 0;
  for (size_t i = 1; i < len; i++) {
    if ((s[i] & 0xc0) != 0x80) return 0;
    cp = (cp << 6) | (s[i] & 0x3f);
  }
  if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff))) return 0;
  if (cp >= 0xd800 && cp <= 0xdfff) return 0;
  return len;
}

/* 1 for bytes that cannot be copied into a JSON string as they are. */
static const unsigned char k_special[256] = {
    [0x00 ... 0x1f] = 1, ['"'] = 1, ['\\'] = 1, [0x80 ... 0xff] = 1,
};

/* First index >= i whose byte is special (n if none). */
static size_t plain_run(const unsigned char *s, size_t i, size_t n) {
#if defined(__SSE2__)
  /* 16 bytes a step: as signed bytes, < 0x20 covers both the controls and every byte >= 0x80. */
  const __m128i lim = _mm_set1_epi8(0x20), quote = _mm_set1_epi8('"'), bsl = _mm_set1_epi8('\\');
  for (; i + 16 <= n; i += 16) {
    __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(s + i));
    __m128i m = _mm_or_si128(_mm_cmplt_epi8(v, lim),
                             _mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, bsl)));
    int mask = _mm_movemask_epi8(m);
    if (mask) return i + (size_t)__builtin_ctz((unsigned)mask);
  }
#endif
  while (i + 4 <= n && !(k_special[s[i]] | k_special[s[i + 1]] | k_special[s[i + 2]] | k_special[s[i + 3]]))
    i += 4;
  while (i < n && !k_special[s[i]]) i++;
  return i;
}

int sw_buf_put_json_str(struct sw_buf *b, const char *str, size_t n, int *invalid) {
  static const char hex[] = "0123456789abcdef";
  const unsigned char *s = (const unsigned char *)str;
  /* Worst case is 6 output bytes per input byte (\u00XX); reserving it once lets the loop
   * write through a plain pointer. */
  if (n > (SIZE_MAX - 16) / 6) return SW_ETOOBIG;
  int rc = sw_buf_reserve(b, n * 6 + 16);
  if (rc) return rc;
  char *o = b->data + b->len;
  size_t i = 0;
  while (i < n) {
    size_t run = plain_run(s, i, n);
    if (run > i) {
      memcpy(o, s + i, run - i);
      o += run - i;
      i = run;
      if (i >= n) break;
    }
    unsigned char c = s[i];
    if (c == '"' || c == '\\') {
      *o++ = '\\';
      *o++ = (char)c;
    } else if (c == '\n') {
      *o++ = '\\';
      *o++ = 'n';
    } else if (c == '\r') {
      *o++ = '\\';
      *o++ = 'r';
    } else if (c == '\t') {
      *o++ = '\\';
      *o++ = 't';
    } else if (c < 0x20) {
      memcpy(o, "\\u00", 4);
      o[4] = hex[c >> 4];
      o[5] = hex[c & 15];
      o += 6;
    } else {
      size_t sl = utf8_seq_len(s + i, n - i);
      if (sl) {
        memcpy(o, s + i, sl);
        o += sl;
        i += sl;
        continue;
      }
      memcpy(o, "\xef\xbf\xbd", 3); /* U+FFFD for each invalid byte */
      o += 3;
      if (invalid) *invalid = 1;
    }
    i++;
  }
  b->len = (size_t)(o - b->data);
  return SW_OK;
}

void sw_buf_shrink(struct sw_buf *b, size_t keep) {
  if (b->cap <= keep || b->len > keep) return;
  if (keep == 0) {
    free(b->data);
    b->data = NULL;
    b->cap = 0;
    return;
  }
  char *p = realloc(b->data, keep);
  if (p) {
    b->data = p;
    b->cap = keep;
  }
}

int sw_grow(void *arrp, size_t n, size_t *cap, size_t elem, size_t first) {
  if (n < *cap) return SW_OK;
  size_t ncap = *cap ? *cap * 2 : first;
  void *grown = realloc(*(void **)arrp, ncap * elem);
  if (!grown) return SW_ENOMEM;
  *(void **)arrp = grown;
  *cap = ncap;
  return SW_OK;
}
