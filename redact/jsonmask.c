/* jsonmask.c - JSON key masking: the values of configured keys in a one-object JSON line.
 *
 * One validating pass (RFC 8259 grammar, recursive descent bounded by SW_REDACT_JSON_MAX_DEPTH)
 * that records nothing until the first configured key: a line without one is never copied.
 * From the first hit on, the bytes before each replaced span are appended to the destination
 * ("copied" is how far the source has been written out). A line that turns out invalid is left
 * alone whatever was written, so a partial rewrite never escapes.
 *
 * Keys compare ASCII case-insensitively after their escapes are decoded ("pass\u0077ord" is
 * "password"). Inside a replaced value keys are not looked at (the whole value goes).
 *
 * drop removes a member with one comma so the object stays valid: the comma before it when an
 * earlier member of the object is kept, else the comma after it (and the white space after
 * that comma). Spans never overlap: a span that would start inside the previous one starts at
 * its end.
 */
#include <string.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "redact_int.h"

#define NONE SIZE_MAX
#define TOKEN_LEN 25 /* "sha256:" + 16 hex digits, with the quotes */

struct jm {
  struct sw_redact_ctx *ctx;
  const unsigned char *s;
  size_t n, i;
  int action;
  struct sw_buf *dst;
  size_t copied; /* s[0..copied) is in dst, once started */
  bool started;
  int err;       /* first append error; the scan goes on to learn whether the JSON is valid */
  uint64_t hits;
};

static void skip_ws(const unsigned char *s, size_t n, size_t *i) {
  while (*i < n && (s[*i] == ' ' || s[*i] == '\t' || s[*i] == '\n' || s[*i] == '\r')) (*i)++;
}

static unsigned hex4(const unsigned char *p) {
  unsigned v = 0;
  for (int k = 0; k < 4; k++) v = v << 4 | (p[k] <= '9' ? (unsigned)(p[k] - '0') : (p[k] | 0x20u) - 'a' + 10u);
  return v;
}

/* The first '"', '\\' or control byte in s[i..n), or n. */
static size_t find_special(const unsigned char *s, size_t i, size_t n) {
#if defined(__SSE2__)
  const __m128i quote = _mm_set1_epi8('"'), bslash = _mm_set1_epi8('\\'), ctl = _mm_set1_epi8(0x1F);
  for (; n - i >= 16; i += 16) {
    __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(s + i));
    __m128i m = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, bslash)),
                             _mm_cmpeq_epi8(_mm_min_epu8(v, ctl), v));
    unsigned bits = (unsigned)_mm_movemask_epi8(m);
    if (bits) return i + (size_t)__builtin_ctz(bits);
  }
#endif
  while (i < n && s[i] != '"' && s[i] != '\\' && s[i] >= 0x20) i++;
  return i;
}

/* At '"': checks the string and moves past its closing quote; *esc when it has escapes. */
static bool scan_string(struct jm *j, bool *esc) {
  const unsigned char *s = j->s;
  size_t n = j->n, i = j->i + 1;
  *esc = false;
  for (;;) {
    i = find_special(s, i, n);
    if (i >= n || s[i] < 0x20) return false;
    if (s[i] == '"') break;
    *esc = true;
    if (i + 1 >= n) return false;
    unsigned char c = s[i + 1];
    if (c == 'u') {
      if (n - i < 6 || !sw__is_hex(s[i + 2]) || !sw__is_hex(s[i + 3]) || !sw__is_hex(s[i + 4]) ||
          !sw__is_hex(s[i + 5]))
        return false;
      i += 6;
    } else if (c == '"' || c == '\\' || c == '/' || c == 'b' || c == 'f' || c == 'n' || c == 'r' || c == 't') {
      i += 2;
    } else {
      return false;
    }
  }
  j->i = i + 1;
  return true;
}

/* Decodes the body of a valid JSON string into out (at least n bytes); returns the length.
 * Lone surrogates are kept as their 3-byte encoding, so decoding stays one-to-one. */
static size_t decode(const unsigned char *p, size_t n, unsigned char *out) {
  size_t o = 0;
  for (size_t i = 0; i < n;) {
    if (p[i] != '\\') {
      out[o++] = p[i++];
      continue;
    }
    unsigned char c = p[i + 1];
    i += 2;
    if (c != 'u') {
      out[o++] = c == 'b' ? '\b' : c == 'f' ? '\f' : c == 'n' ? '\n' : c == 'r' ? '\r' : c == 't' ? '\t' : c;
      continue;
    }
    unsigned cp = hex4(p + i);
    i += 4;
    if (cp >= 0xD800 && cp < 0xDC00 && n - i >= 6 && p[i] == '\\' && p[i + 1] == 'u') {
      unsigned lo = hex4(p + i + 2);
      if (lo >= 0xDC00 && lo < 0xE000) {
        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
        i += 6;
      }
    }
    if (cp < 0x80) {
      out[o++] = (unsigned char)cp;
    } else if (cp < 0x800) {
      out[o++] = (unsigned char)(0xC0 | cp >> 6);
      out[o++] = (unsigned char)(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      out[o++] = (unsigned char)(0xE0 | cp >> 12);
      out[o++] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
      out[o++] = (unsigned char)(0x80 | (cp & 0x3F));
    } else {
      out[o++] = (unsigned char)(0xF0 | cp >> 18);
      out[o++] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
      out[o++] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
      out[o++] = (unsigned char)(0x80 | (cp & 0x3F));
    }
  }
  return o;
}

static bool key_hit(const struct jm *j, size_t ks, size_t ke, bool esc) {
  const struct sw_redactor *r = j->ctx->r;
  const unsigned char *k = j->s + ks;
  size_t kn = ke - ks;
  unsigned char buf[SW_REDACT_MAX_KEY * 6]; /* any encoding of the longest key */
  if (kn < r->key_min || (!esc && kn > r->key_max) || kn > sizeof buf) return false;
  if (esc) {
    kn = decode(k, kn, buf);
    k = buf;
    if (kn < r->key_min || kn > r->key_max) return false;
  }
  unsigned f = sw__lower(k[0]);
  if (!(r->key_first[f >> 3] & (1u << (f & 7)))) return false;
  for (size_t x = 0; x < r->nkeys; x++) {
    if (r->keylens[x] != kn) continue;
    size_t m = 0;
    while (m < kn && (unsigned char)r->keys[x][m] == sw__lower(k[m])) m++;
    if (m == kn) return true;
  }
  return false;
}

/* Replaces s[from, to) by text in the output. */
static void emit(struct jm *j, size_t from, size_t to, const char *text, size_t len) {
  if (j->err) return;
  if (!j->started) {
    j->started = true;
    j->copied = 0;
    sw_buf_reset(j->dst);
  }
  if (from < j->copied) from = j->copied;
  j->err = sw_buf_append(j->dst, j->s + j->copied, from - j->copied);
  if (!j->err) j->err = sw_buf_append(j->dst, text, len);
  j->copied = to;
}

/* "sha256:<16 hex>" of salt || value (a string decoded, anything else as written). */
static void hash_token(struct jm *j, size_t vs, size_t ve, char tok[TOKEN_LEN]) {
  const struct sw_redactor *r = j->ctx->r;
  const unsigned char *v = j->s + vs;
  size_t vn = ve - vs;
  struct sw_sha256 h;
  uint8_t d[32];
  sw_sha256_init(&h);
  sw_sha256_update(&h, r->salt, r->salt_len);
  if (v[0] == '"') {
    v++;
    vn -= 2;
    if (memchr(v, '\\', vn)) {
      struct sw_buf *tmp = &j->ctx->tmp;
      sw_buf_reset(tmp);
      int rc = sw_buf_reserve(tmp, vn);
      if (rc) { /* no room to decode: fail the rewrite the way a full output does */
        if (!j->err) j->err = rc;
        vn = 0;
      } else {
        vn = decode(v, vn, (unsigned char *)tmp->data);
        v = (const unsigned char *)tmp->data;
      }
    }
  }
  sw_sha256_update(&h, v, vn);
  sw_sha256_final(&h, d);
  memcpy(tok, "\"sha256:", 8);
  for (int k = 0; k < 8; k++) {
    tok[8 + 2 * k] = "0123456789abcdef"[d[k] >> 4];
    tok[9 + 2 * k] = "0123456789abcdef"[d[k] & 15];
  }
  tok[TOKEN_LEN - 1] = '"';
}

/* The member [ks, ve) with value [vs, ve) matched a key. */
static void replace_member(struct jm *j, size_t ks, size_t vs, size_t ve, size_t sep, bool kept_before) {
  char tok[TOKEN_LEN];
  j->hits++;
  if (j->action == SW_REDACT_MASK) {
    emit(j, vs, ve, "\"***\"", 5);
  } else if (j->action == SW_REDACT_HASH) {
    hash_token(j, vs, ve, tok);
    emit(j, vs, ve, tok, TOKEN_LEN);
  } else if (kept_before && sep != NONE) {
    emit(j, sep, ve, "", 0);
  } else {
    size_t e = ve;
    skip_ws(j->s, j->n, &e);
    if (e < j->n && j->s[e] == ',') {
      e++;
      skip_ws(j->s, j->n, &e);
    } else {
      e = ve;
    }
    emit(j, ks, e, "", 0);
  }
}

static bool value(struct jm *j, unsigned depth, bool masked);

/* depth: this container's nesting level, the top-level object being 1. */
static bool object(struct jm *j, unsigned depth, bool masked) {
  size_t sep = NONE;
  bool kept = false, esc;
  if (depth > SW_REDACT_JSON_MAX_DEPTH) return false;
  j->i++;
  skip_ws(j->s, j->n, &j->i);
  if (j->i < j->n && j->s[j->i] == '}') {
    j->i++;
    return true;
  }
  for (;;) {
    skip_ws(j->s, j->n, &j->i);
    if (j->i >= j->n || j->s[j->i] != '"') return false;
    size_t ks = j->i;
    if (!scan_string(j, &esc)) return false;
    bool hit = !masked && key_hit(j, ks + 1, j->i - 1, esc);
    skip_ws(j->s, j->n, &j->i);
    if (j->i >= j->n || j->s[j->i] != ':') return false;
    j->i++;
    skip_ws(j->s, j->n, &j->i);
    size_t vs = j->i;
    if (!value(j, depth, masked || hit)) return false;
    if (hit) replace_member(j, ks, vs, j->i, sep, kept);
    else kept = true;
    skip_ws(j->s, j->n, &j->i);
    if (j->i < j->n && j->s[j->i] == ',') {
      sep = j->i++;
      continue;
    }
    if (j->i < j->n && j->s[j->i] == '}') {
      j->i++;
      return true;
    }
    return false;
  }
}

static bool array(struct jm *j, unsigned depth, bool masked) {
  if (depth > SW_REDACT_JSON_MAX_DEPTH) return false;
  j->i++;
  skip_ws(j->s, j->n, &j->i);
  if (j->i < j->n && j->s[j->i] == ']') {
    j->i++;
    return true;
  }
  for (;;) {
    skip_ws(j->s, j->n, &j->i);
    if (!value(j, depth, masked)) return false;
    skip_ws(j->s, j->n, &j->i);
    if (j->i < j->n && j->s[j->i] == ',') {
      j->i++;
      continue;
    }
    if (j->i < j->n && j->s[j->i] == ']') {
      j->i++;
      return true;
    }
    return false;
  }
}

static size_t digits(const unsigned char *s, size_t n, size_t i) {
  size_t b = i;
  while (i < n && (unsigned)(s[i] - '0') < 10u) i++;
  return i - b;
}

/* -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? */
static bool number(struct jm *j) {
  const unsigned char *s = j->s;
  size_t n = j->n, i = j->i, d;
  if (i < n && s[i] == '-') i++;
  if (i < n && s[i] == '0') i++;
  else if ((d = digits(s, n, i)) > 0) i += d;
  else return false;
  if (i < n && s[i] == '.') {
    if (!(d = digits(s, n, i + 1))) return false;
    i += 1 + d;
  }
  if (i < n && (s[i] | 0x20) == 'e') {
    i++;
    if (i < n && (s[i] == '+' || s[i] == '-')) i++;
    if (!(d = digits(s, n, i))) return false;
    i += d;
  }
  j->i = i;
  return true;
}

static bool literal(struct jm *j, const char *w, size_t len) {
  if (j->n - j->i < len || memcmp(j->s + j->i, w, len)) return false;
  j->i += len;
  return true;
}

/* A value inside a container at level depth. */
static bool value(struct jm *j, unsigned depth, bool masked) {
  bool esc;
  if (j->i >= j->n) return false;
  switch (j->s[j->i]) {
  case '{': return object(j, depth + 1, masked);
  case '[': return array(j, depth + 1, masked);
  case '"': return scan_string(j, &esc);
  case 't': return literal(j, "true", 4);
  case 'f': return literal(j, "false", 5);
  case 'n': return literal(j, "null", 4);
  default: return number(j);
  }
}

int sw__json_mask(struct sw_redact_ctx *ctx, const char *s, size_t n, int action, struct sw_buf *dst) {
  struct jm j = {.ctx = ctx, .s = (const unsigned char *)s, .n = n, .action = action, .dst = dst};
  skip_ws(j.s, n, &j.i);
  if (j.i >= n || j.s[j.i] != '{' || !object(&j, 1, false)) return 0;
  skip_ws(j.s, n, &j.i);
  if (j.i != n || !j.started) return 0; /* trailing bytes: not one JSON object */
  if (!j.err) j.err = sw_buf_append(dst, s + j.copied, n - j.copied);
  if (j.err) return j.err;
  ctx->counts[ctx->r->fields_idx] += j.hits;
  return 1;
}
