/* json.c - strict validator for one-JSON-object-per-line logs, plus event-time extraction.
 *
 * No tree and no recursion: one pass with an explicit bit stack (one bit per open container:
 * array or object), so a line of a million '[' costs a bounded loop, not a C stack overflow.
 * The top-level object is level 1, so at most SW_JSON_MAX_DEPTH containers may be open.
 *
 * Strictness is RFC 8259's grammar: no comments, trailing commas, single quotes, NaN, leading
 * zeros or raw control characters in strings. Bytes >= 0x80 are not checked for UTF-8
 * validity here; that is a separate flag (SW_REC_INVALID_UTF8) set elsewhere in the pipeline,
 * and rejecting such a line would only lose its timestamp.
 *
 * Time: the first top-level member, in document order, whose key is "time", "ts", "timestamp"
 * or "@timestamp" and whose value is usable (an RFC 3339 string, or a non-negative number
 * that fits in int64 ns) gives ts_ns. Unusable values (booleans, garbage strings, negative
 * numbers) are ignored and do not make the line invalid: the line is still well-formed JSON.
 * Numbers are converted with integer arithmetic: a double cannot hold 1700000000.123456789.
 */
#include "json.h"
#include "jsonstr.h"

#include <stdbool.h>
#include <string.h>

#include "../common/timefmt.h"

struct scan {
  const char *p, *end;
  uint64_t arrays; /* bit d set: nesting level d+1 is an array, clear: an object */
  unsigned depth;  /* open containers; the top-level object is depth 1 */
  bool time_key;   /* the member being read is a top-level time key */
  bool have_ts;
  int64_t ts_ns;
  unsigned keys;
};

static const char *skip_ws(const char *p, const char *end) {
  while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
    p++;
  return p;
}

static bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

/* Decodes an already validated string body [s, e) into buf when it is pure ASCII and fits:
 * the only strings we decode are key names and timestamps, which are ASCII, so anything
 * else cannot match and need not be decoded. */
static bool decode_ascii(const char *s, const char *e, char *buf, size_t cap, size_t *n) {
  static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
  size_t o = 0;
  while (s < e) {
    char c = *s++;
    if (c == '\\') {
      if (*s == 'u') {
        unsigned long v = 0;
        for (int i = 1; i <= 4; i++)
          v = v << 4 | (unsigned long)(is_digit(s[i]) ? s[i] - '0' : (s[i] | 0x20) - 'a' + 10);
        if (v >= 0x80)
          return false;
        c = (char)v;
        s += 5;
      } else {
        c = to[strchr(from, *s) - from];
        s++;
      }
    }
    if (o == cap)
      return false;
    buf[o++] = c;
  }
  *n = o;
  return true;
}

static unsigned reserved_key(const char *s, size_t n) {
  if (n == 10 && memcmp(s, "@timestamp", 10) == 0)
    return SW_JSON_KEY_AT_TIMESTAMP;
  if (n == 6 && memcmp(s, "labels", 6) == 0)
    return SW_JSON_KEY_LABELS;
  if (n == 6 && memcmp(s, "stream", 6) == 0)
    return SW_JSON_KEY_STREAM;
  if (n == 7 && memcmp(s, "message", 7) == 0)
    return SW_JSON_KEY_MESSAGE;
  return 0;
}

static bool is_time_key(const char *s, size_t n) {
  return (n == 4 && memcmp(s, "time", 4) == 0) || (n == 2 && memcmp(s, "ts", 2) == 0) ||
         (n == 9 && memcmp(s, "timestamp", 9) == 0) ||
         (n == 10 && memcmp(s, "@timestamp", 10) == 0);
}

/* Strict JSON number: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? */
static const char *scan_number(const char *p, const char *end) {
  if (p < end && *p == '-')
    p++;
  if (p >= end || !is_digit(*p))
    return NULL;
  if (*p++ != '0')
    while (p < end && is_digit(*p))
      p++;
  if (p < end && *p == '.') {
    if (++p >= end || !is_digit(*p))
      return NULL;
    while (p < end && is_digit(*p))
      p++;
  }
  if (p < end && (*p == 'e' || *p == 'E')) {
    if (++p < end && (*p == '+' || *p == '-'))
      p++;
    if (p >= end || !is_digit(*p))
      return NULL;
    while (p < end && is_digit(*p))
      p++;
  }
  return p;
}

/* m * 10^e truncated toward zero; false if it does not fit in int64. */
static bool scale10(uint64_t m, int e, int64_t *out) {
  for (; e > 0 && m != 0; e--) {
    if (m > (uint64_t)INT64_MAX / 10)
      return false;
    m *= 10;
  }
  for (; e < 0 && m != 0; e++)
    m /= 10;
  if (m > (uint64_t)INT64_MAX)
    return false;
  *out = (int64_t)m;
  return true;
}

/* Exactly whether v > 10^t, where v = mant * 10^exp10 (mant < 10^19) plus, if `dropped`,
 * some nonzero digits below mant's last one. */
static bool exceeds_pow10(uint64_t mant, int exp10, bool dropped, int t) {
  int k = t - exp10;
  if (k < 0)
    return mant > 0;
  if (k > 19)
    return false;
  uint64_t p = 1;
  while (k-- > 0)
    p *= 10;
  return mant > p || (mant == p && dropped);
}

/* Converts a validated JSON number [s, e) of epoch seconds, ms or ns (chosen by magnitude,
 * see json.h) to ns. Keeps 19 significant digits: more than any int64 ns value has. */
static bool number_to_ns(const char *s, const char *e, int64_t *ns) {
  uint64_t mant = 0;
  int nd = 0, exp10 = 0;
  bool dropped = false; /* nonzero digits beyond the 19 kept */
  bool neg = *s == '-';
  s += neg;
  for (; s < e && is_digit(*s); s++) {
    if (nd < 19) {
      mant = mant * 10 + (uint64_t)(*s - '0');
      nd += mant != 0; /* leading zeros are not significant */
    } else {
      dropped |= *s != '0';
      exp10 += exp10 < 100000; /* clamped: a line may hold billions of digits */
    }
  }
  if (s < e && *s == '.') {
    for (s++; s < e && is_digit(*s); s++) {
      if (nd < 19 && exp10 > -100000) {
        mant = mant * 10 + (uint64_t)(*s - '0');
        nd += mant != 0;
        exp10--;
      } else {
        dropped |= *s != '0';
      }
    }
  }
  if (neg && (mant != 0 || dropped))
    return false; /* before the epoch: not a plausible event time (-0 is fine) */
  if (s < e) { /* exponent; clamped so huge ones cannot overflow int */
    bool eneg = *++s == '-';
    int x = 0;
    for (s += *s == '-' || *s == '+'; s < e; s++)
      x = x < 10000 ? x * 10 + (*s - '0') : x;
    exp10 += eneg ? -x : x;
  }
  int unit = 9; /* seconds */
  if (exceeds_pow10(mant, exp10, dropped, 17))
    unit = 0; /* nanoseconds */
  else if (exceeds_pow10(mant, exp10, dropped, 11))
    unit = 6; /* milliseconds */
  return scale10(mant, exp10 + unit, ns);
}

/* Records the value [v, e) of a top-level time key, if it is a usable time. */
static void take_time(struct scan *s, const char *v, const char *e, bool esc) {
  int64_t ns;
  if (*v == '"') {
    char buf[64];
    const char *t = v + 1;
    size_t n = (size_t)(e - 1 - t);
    if (esc) {
      if (!decode_ascii(v + 1, e - 1, buf, sizeof buf, &n))
        return;
      t = buf;
    }
    if (sw_time_parse_rfc3339(t, n, &ns) != 0)
      return;
  } else if (*v == '-' || is_digit(*v)) {
    if (!number_to_ns(v, e, &ns))
      return;
  } else {
    return; /* true, false, null */
  }
  s->ts_ns = ns;
  s->have_ts = true;
}

/* Reads `"key" :` and the whitespace after it; notes whether it is a top-level time key. */
static int read_key(struct scan *s) {
  bool esc = false;
  if (s->p >= s->end || *s->p != '"')
    return SW_EPARSE;
  const char *k = s->p + 1;
  const char *q = sw__json_scan_str(k, s->end, &esc);
  if (q == NULL)
    return SW_EPARSE;
  s->time_key = false;
  if (s->depth == 1) {
    char buf[16];
    size_t n = (size_t)(q - 1 - k);
    const char *name = NULL;
    if (esc && decode_ascii(k, q - 1, buf, sizeof buf, &n))
      name = buf;
    else if (!esc)
      name = k;
    if (name && !s->have_ts)
      s->time_key = is_time_key(name, n);
    if (name)
      s->keys |= reserved_key(name, n);
  }
  s->p = skip_ws(q, s->end);
  if (s->p >= s->end || *s->p != ':')
    return SW_EPARSE;
  s->p = skip_ws(s->p + 1, s->end);
  return 0;
}

/* At '{' or '[': opens a container. *empty is set if it closed at once ({} or []). */
static int open_container(struct scan *s, bool *empty) {
  bool arr = *s->p == '[';
  if (s->depth == SW_JSON_MAX_DEPTH)
    return SW_EPARSE;
  if (arr)
    s->arrays |= UINT64_C(1) << s->depth;
  else
    s->arrays &= ~(UINT64_C(1) << s->depth);
  s->depth++;
  s->p = skip_ws(s->p + 1, s->end);
  *empty = s->p < s->end && *s->p == (arr ? ']' : '}');
  if (*empty) {
    s->p++;
    s->depth--;
    return 0;
  }
  return arr ? 0 : read_key(s);
}

/* A value just ended: closes finished containers or steps to the next element's value.
 * *done is set when the top-level object has closed. */
static int after_value(struct scan *s, bool *done) {
  while (s->depth > 0) {
    bool arr = s->arrays >> (s->depth - 1) & 1;
    s->p = skip_ws(s->p, s->end);
    if (s->p >= s->end)
      return SW_EPARSE;
    if (*s->p == ',') {
      s->p = skip_ws(s->p + 1, s->end);
      return arr ? 0 : read_key(s);
    }
    if (*s->p != (arr ? ']' : '}'))
      return SW_EPARSE;
    s->p++;
    s->depth--;
  }
  *done = true;
  return 0;
}

/* Validates one value at s->p (whitespace skipped), which is not a container. */
static int scalar(struct scan *s) {
  const char *v = s->p, *end = s->end;
  bool esc = false;
  switch (*v) {
  case '"': s->p = sw__json_scan_str(v + 1, end, &esc); break;
  case 't': s->p = end - v >= 4 && memcmp(v, "true", 4) == 0 ? v + 4 : NULL; break;
  case 'f': s->p = end - v >= 5 && memcmp(v, "false", 5) == 0 ? v + 5 : NULL; break;
  case 'n': s->p = end - v >= 4 && memcmp(v, "null", 4) == 0 ? v + 4 : NULL; break;
  default: s->p = scan_number(v, end); break;
  }
  if (s->p == NULL)
    return SW_EPARSE;
  if (s->time_key && s->depth == 1 && !s->have_ts)
    take_time(s, v, s->p, esc);
  return 0;
}

int sw_json_scan(const char *line, size_t len, struct sw_json_info *res) {
  if (line == NULL || res == NULL)
    return SW_EINVAL;
  struct scan s = {.end = line + len};
  bool done = false, empty = false;
  int rc = 0;
  res->ts_ns = 0;
  res->keys = 0;
  s.p = skip_ws(line, s.end);
  if (s.p >= s.end || *s.p != '{')
    return SW_EPARSE;
  while (!done) {
    if (s.p >= s.end)
      return SW_EPARSE;
    if (*s.p == '{' || *s.p == '[') {
      rc = open_container(&s, &empty);
      if (rc == 0 && empty)
        rc = after_value(&s, &done);
    } else {
      rc = scalar(&s);
      if (rc == 0)
        rc = after_value(&s, &done);
    }
    if (rc != 0)
      return rc;
  }
  if (skip_ws(s.p, s.end) != s.end)
    return SW_EPARSE;
  res->ts_ns = s.have_ts ? s.ts_ns : 0;
  res->keys = s.keys;
  return 0;
}
