/* docker.c - single-pass scanner for Docker json-file lines.
 *
 * This is the agent's hot path, so instead of a JSON tree we walk the one object once:
 * "log" is unescaped straight into the caller's buffer, "stream" and "time" are compared or
 * parsed in place, and every other member is skipped by a validating, allocation-free
 * skipper. A "log" without backslashes (the common case) costs two memchr and one memcpy.
 *
 * Strictness: the object structure, escapes, numbers and literals must be valid JSON, or the
 * line is SW_EPARSE. Two leniencies, because they only concern bytes a container wrote and we
 * forward them untouched: raw control characters inside strings are accepted, and bytes
 * >= 0x80 are copied as they are without UTF-8 validation (the pipeline flags that).
 * Duplicate keys: the last one wins, as in Go's encoding/json (each "log" value is unescaped
 * into out in turn, and each "time" value must parse).
 *
 * Invariants: line <= p <= end at all times and *p is read only when p < end; nothing is
 * written to out beyond out_cap. Unescaping never lengthens a string ("\uXXXX" is 6 bytes in,
 * at most 3 out; a 12-byte surrogate pair gives 4), which is why out_cap >= len suffices.
 * If out_cap is smaller and the log does not fit, we return SW_ETOOBIG: that is a caller bug,
 * not a bad line, so it must not be confused with SW_EPARSE.
 */
#include "docker.h"

#include <string.h>

#include "../common/timefmt.h"
#include "jsonstr.h"
#include "record.h"

/* Nesting limit for skipped values (below the top-level object); bounds the bit stack. */
#define DOCKER_MAX_DEPTH 64

/* Scratch for short strings (keys, "stream", "time") that contain escapes. */
#define SHORT_STR_CAP 64

enum key_kind { KEY_OTHER, KEY_LOG, KEY_STREAM, KEY_TIME };

static const char *skip_ws(const char *p, const char *end) {
  while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
    p++;
  return p;
}

/* High bit set in each byte of x that is '"' or '\\'. Exact for the lowest such byte
 * (borrows only run upward), which is all copy_run needs. */
static uint64_t special_mask(uint64_t x) {
  const uint64_t ones = UINT64_C(0x0101010101010101), highs = UINT64_C(0x8080808080808080);
  uint64_t a = x ^ (ones * '"'), b = x ^ (ones * '\\');
  return (((a - ones) & ~a) | ((b - ones) & ~b)) & highs;
}

/* Copies the plain bytes at p up to the next '"' or '\\' to dst[*o..] (only what fits in
 * cap), advancing *o by their count; returns the special byte's address or end. Eight bytes
 * per step: escape-dense strings (JSON logged inside "log") have runs too short for memchr
 * and memcpy call overhead to pay off. A step may store up to 7 bytes past the run (inside
 * cap; they are overwritten or lie past the final length), and bytes that do not fit are
 * dropped: the caller then reports the overflow, so such gaps are never seen. */
static const char *copy_run(const char *p, const char *end, char *dst, size_t cap, size_t *o) {
  size_t n = *o;
  while (end - p >= 8) {
    uint64_t x;
    memcpy(&x, p, 8);
    uint64_t m = special_mask(x);
    if (n + 8 <= cap)
      memcpy(dst + n, &x, 8);
    if (m != 0) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
      size_t k = (size_t)__builtin_ctzll(m) / 8; /* the first special byte's index */
      if (n + 8 > cap)
        break; /* let the byte loop below store what fits */
      *o = n + k;
      return p + k;
#else
      break;
#endif
    }
    p += 8;
    n += 8;
  }
  for (; p < end && *p != '"' && *p != '\\'; p++, n++)
    if (n < cap)
      dst[n] = *p;
  *o = n;
  return p;
}

/* Unescapes the JSON string whose body starts at p (just past the opening quote) into
 * dst[0..cap) (dst may be NULL with cap 0 to only validate). *dlen receives the unescaped
 * length, even when it exceeds cap (the content is then incomplete). Returns the pointer
 * past the closing quote, or NULL if the string is unterminated or has a malformed escape. */
static const char *unescape_str(const char *p, const char *end, char *dst, size_t cap,
                                size_t *dlen) {
  const char *q = memchr(p, '"', (size_t)(end - p));
  if (q == NULL)
    return NULL;
  const char *b = memchr(p, '\\', (size_t)(q - p));
  size_t o = (size_t)((b != NULL ? b : q) - p);
  if (o > 0 && o <= cap)
    memcpy(dst, p, o);
  if (b == NULL) { /* fast path: no escapes, one memcpy */
    *dlen = o;
    return q + 1;
  }
  p = b;
  for (;;) {
    if (*p == '"') {
      *dlen = o;
      return p + 1;
    }
    char buf[4];
    size_t n;
    p = sw__json_decode_escape(p, end, buf, &n);
    if (p == NULL)
      return NULL;
    for (size_t i = 0; i < n; i++, o++)
      if (o < cap)
        dst[o] = buf[i];
    p = copy_run(p, end, dst, cap, &o);
    if (p == end)
      return NULL;
  }
}

/* Reads a short string (body at p): *s and *n get the raw bytes when there are no escapes,
 * else the unescaped bytes in buf; *s is NULL if the unescaped form exceeds SHORT_STR_CAP.
 * Returns the pointer past the closing quote or NULL. */
static const char *short_str(const char *p, const char *end, char buf[SHORT_STR_CAP],
                             const char **s, size_t *n) {
  const char *q = memchr(p, '"', (size_t)(end - p));
  if (q != NULL && memchr(p, '\\', (size_t)(q - p)) == NULL) {
    *s = p;
    *n = (size_t)(q - p);
    return q + 1;
  }
  const char *next = unescape_str(p, end, buf, SHORT_STR_CAP, n);
  if (next == NULL)
    return NULL;
  *s = *n <= SHORT_STR_CAP ? buf : NULL;
  return next;
}

static bool str_eq(const char *s, size_t n, const char *lit) {
  size_t ln = strlen(lit);
  return s != NULL && n == ln && memcmp(s, lit, ln) == 0;
}

/* Strict JSON number: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? */
static const char *skip_number(const char *p, const char *end) {
  if (p < end && *p == '-')
    p++;
  if (p >= end || *p < '0' || *p > '9')
    return NULL;
  if (*p++ != '0')
    while (p < end && *p >= '0' && *p <= '9')
      p++;
  if (p < end && *p == '.') {
    if (++p >= end || *p < '0' || *p > '9')
      return NULL;
    while (p < end && *p >= '0' && *p <= '9')
      p++;
  }
  if (p < end && (*p == 'e' || *p == 'E')) {
    if (++p < end && (*p == '+' || *p == '-'))
      p++;
    if (p >= end || *p < '0' || *p > '9')
      return NULL;
    while (p < end && *p >= '0' && *p <= '9')
      p++;
  }
  return p;
}

static const char *skip_scalar(const char *p, const char *end) {
  size_t dlen;
  switch (*p) {
  case '"': return unescape_str(p + 1, end, NULL, 0, &dlen);
  case 't': return end - p >= 4 && memcmp(p, "true", 4) == 0 ? p + 4 : NULL;
  case 'f': return end - p >= 5 && memcmp(p, "false", 5) == 0 ? p + 5 : NULL;
  case 'n': return end - p >= 4 && memcmp(p, "null", 4) == 0 ? p + 4 : NULL;
  default: return skip_number(p, end);
  }
}

/* At a member key inside a skipped object: skips `"key" :` and the whitespace after it. */
static const char *skip_key(const char *p, const char *end) {
  size_t dlen;
  if (p >= end || *p != '"')
    return NULL;
  p = unescape_str(p + 1, end, NULL, 0, &dlen);
  if (p == NULL)
    return NULL;
  p = skip_ws(p, end);
  if (p >= end || *p != ':')
    return NULL;
  return skip_ws(p + 1, end);
}

/* Skips and validates one JSON value starting at p. Iterative: the kind of each open
 * container lives in one bit of `arrays`, so hostile nesting cannot exhaust the C stack. */
static const char *skip_value(const char *p, const char *end) {
  uint64_t arrays = 0; /* bit d set: level d is an array, clear: an object */
  unsigned depth = 0;
  for (;;) {
    if (p == NULL || p >= end)
      return NULL;
    if (*p == '{' || *p == '[') {
      bool arr = *p == '[';
      if (depth == DOCKER_MAX_DEPTH)
        return NULL;
      arrays = arr ? arrays | UINT64_C(1) << depth : arrays & ~(UINT64_C(1) << depth);
      depth++;
      p = skip_ws(p + 1, end);
      if (p < end && *p == (arr ? ']' : '}')) {
        p++;
        depth--;
      } else {
        if (!arr)
          p = skip_key(p, end);
        continue; /* at the first element's value */
      }
    } else if ((p = skip_scalar(p, end)) == NULL) {
      return NULL;
    }
    /* A value just ended: close finished containers, or step to the next element. */
    for (;;) {
      if (depth == 0)
        return p;
      bool arr = arrays >> (depth - 1) & 1;
      p = skip_ws(p, end);
      if (p >= end)
        return NULL;
      if (*p == ',') {
        p = skip_ws(p + 1, end);
        if (!arr)
          p = skip_key(p, end);
        break;
      }
      if (*p != (arr ? ']' : '}'))
        return NULL;
      p++;
      depth--;
    }
  }
}

/* Reads the key at p (at its opening quote) and the ':' after it; leaves *pp at the value. */
static int read_key(const char **pp, const char *end, enum key_kind *kind) {
  const char *p = *pp;
  if (p >= end || *p != '"')
    return SW_EPARSE;
  p++;
  /* Docker writes these exact keys; catch them without a general string scan. */
  if (end - p >= 4 && memcmp(p, "log\"", 4) == 0) {
    *kind = KEY_LOG;
    p += 4;
  } else if (end - p >= 7 && memcmp(p, "stream\"", 7) == 0) {
    *kind = KEY_STREAM;
    p += 7;
  } else if (end - p >= 5 && memcmp(p, "time\"", 5) == 0) {
    *kind = KEY_TIME;
    p += 5;
  } else {
    char buf[SHORT_STR_CAP];
    const char *s;
    size_t n;
    p = short_str(p, end, buf, &s, &n);
    if (p == NULL)
      return SW_EPARSE;
    *kind = str_eq(s, n, "log")      ? KEY_LOG
            : str_eq(s, n, "stream") ? KEY_STREAM
            : str_eq(s, n, "time")   ? KEY_TIME
                                     : KEY_OTHER;
  }
  p = skip_ws(p, end);
  if (p >= end || *p != ':')
    return SW_EPARSE;
  *pp = skip_ws(p + 1, end);
  return 0;
}

/* Parses the value of one member at *pp according to its key; leaves *pp past the value. */
static int read_value(const char **pp, const char *end, enum key_kind kind, char *out,
                      size_t out_cap, struct sw_docker_line *res, bool *have_log) {
  const char *p = *pp;
  char buf[SHORT_STR_CAP];
  const char *s;
  size_t n;
  bool is_str = p < end && *p == '"';
  switch (kind) {
  case KEY_LOG:
    if (!is_str || (p = unescape_str(p + 1, end, out, out_cap, &n)) == NULL)
      return SW_EPARSE;
    if (n > out_cap)
      return SW_ETOOBIG;
    res->log_len = n;
    *have_log = true;
    break;
  case KEY_STREAM:
    if (!is_str) { /* unknown stream value: still valid JSON, reported as stdout */
      p = skip_value(p, end);
      res->stream = SW_STREAM_STDOUT;
      break;
    }
    if ((p = short_str(p + 1, end, buf, &s, &n)) == NULL)
      return SW_EPARSE;
    res->stream = str_eq(s, n, "stderr") ? SW_STREAM_STDERR : SW_STREAM_STDOUT;
    break;
  case KEY_TIME:
    if (!is_str || (p = short_str(p + 1, end, buf, &s, &n)) == NULL || s == NULL)
      return SW_EPARSE;
    if (sw_time_parse_rfc3339(s, n, &res->ts_ns) != 0)
      return SW_EPARSE;
    break;
  case KEY_OTHER:
    p = skip_value(p, end);
    break;
  }
  if (p == NULL)
    return SW_EPARSE;
  *pp = p;
  return 0;
}

int sw_docker_parse(const char *line, size_t len, char *out, size_t out_cap,
                    struct sw_docker_line *res) {
  if (line == NULL || res == NULL || (out == NULL && out_cap > 0))
    return SW_EINVAL;
  const char *end = line + len;
  bool have_log = false;
  int rc = 0;
  *res = (struct sw_docker_line){.stream = SW_STREAM_STDOUT, .log = out};

  const char *p = skip_ws(line, end);
  if (p >= end || *p != '{')
    return SW_EPARSE;
  p = skip_ws(p + 1, end);
  if (p < end && *p == '}')
    return SW_EPARSE; /* {} has no "log" */
  for (;;) {
    enum key_kind kind;
    rc = read_key(&p, end, &kind);
    if (rc != 0)
      return rc;
    rc = read_value(&p, end, kind, out, out_cap, res, &have_log);
    if (rc != 0)
      return rc;
    p = skip_ws(p, end);
    if (p >= end)
      return SW_EPARSE;
    if (*p == '}')
      break;
    if (*p != ',')
      return SW_EPARSE;
    p = skip_ws(p + 1, end);
  }
  if (!have_log || skip_ws(p + 1, end) != end)
    return SW_EPARSE;
  /* Docker ends every complete line with "\n"; its absence marks a 16 KiB split piece. */
  if (res->log_len > 0 && out[res->log_len - 1] == '\n') {
    res->log_len--;
  } else {
    res->partial = true;
  }
  return 0;
}
