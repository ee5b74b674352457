#include "ndjsonrec.h"

#include <stdbool.h>
#include <string.h>

#include "../common/timefmt.h"
#include "jsonstr.h"
#include "record.h"

static const char *ws(const char *p, const char *end) {
  while (p < end && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')) p++;
  return p;
}

/* Past one JSON value at p, or NULL. Depth-limited: nesting is not ours to write. */
static const char *skip_value(const char *p, const char *end, int depth) {
  if (p >= end || depth > 32) return NULL;
  bool esc = false;
  if (*p == '"') return sw__json_scan_str(p + 1, end, &esc);
  if (*p == '{' || *p == '[') {
    char close = *p == '{' ? '}' : ']';
    p = ws(p + 1, end);
    if (p < end && *p == close) return p + 1;
    for (;;) {
      if (close == '}') {
        if (p >= end || *p != '"' || !(p = sw__json_scan_str(p + 1, end, &esc))) return NULL;
        p = ws(p, end);
        if (p >= end || *p != ':') return NULL;
        p = ws(p + 1, end);
      }
      if (!(p = skip_value(p, end, depth + 1))) return NULL;
      p = ws(p, end);
      if (p >= end) return NULL;
      if (*p == close) return p + 1;
      if (*p != ',') return NULL;
      p = ws(p + 1, end);
    }
  }
  const char *s = p;
  while (p < end && (*p == '-' || *p == '+' || *p == '.' || (*p >= '0' && *p <= '9') ||
                     (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')))
    p++;
  return p > s ? p : NULL;
}

int sw_ndjson_rec_parse(const char *p, size_t n, struct sw_ndjson_rec *r) {
  const char *end = p + n;
  memset(r, 0, sizeof *r);
  r->stream = SW_STREAM_STDOUT;
  int have = 0; /* 1 ts, 2 labels, 4 line */
  p = ws(p, end);
  if (p >= end || *p != '{') return SW_ECORRUPT;
  p = ws(p + 1, end);
  while (p < end && *p == '"') {
    bool esc = false;
    const char *k = p + 1, *ke = sw__json_scan_str(k, end, &esc);
    if (!ke) return SW_ECORRUPT;
    size_t kl = (size_t)(ke - 1 - k);
    p = ws(ke, end);
    if (p >= end || *p != ':') return SW_ECORRUPT;
    p = ws(p + 1, end);
    const char *v = p;
    if (!(p = skip_value(p, end, 0))) return SW_ECORRUPT;
    size_t vl = (size_t)(p - v);
    int str = *v == '"';
    if (kl == 2 && !memcmp(k, "ts", 2)) {
      if (!str || sw_time_parse_rfc3339(v + 1, vl - 2, &r->ts_ns)) return SW_ECORRUPT;
      have |= 1;
    } else if (kl == 6 && !memcmp(k, "labels", 6)) {
      if (*v != '{') return SW_ECORRUPT;
      r->labels = v;
      r->labels_len = vl;
      have |= 2;
    } else if (kl == 6 && !memcmp(k, "stream", 6)) {
      if (!str) return SW_ECORRUPT;
      r->stream = vl == 8 && !memcmp(v, "\"stderr\"", 8) ? SW_STREAM_STDERR
                  : vl == 6 && !memcmp(v, "\"file\"", 6) ? SW_STREAM_FILE
                                                         : SW_STREAM_STDOUT;
    } else if (kl == 4 && !memcmp(k, "line", 4)) {
      if (!str) return SW_ECORRUPT;
      r->line = v + 1;
      r->line_len = vl - 2;
      r->line_escaped = memchr(r->line, '\\', r->line_len) != NULL;
      have |= 4;
    }
    p = ws(p, end);
    if (p < end && *p == ',') p = ws(p + 1, end);
    else break;
  }
  if (p >= end || *p != '}' || ws(p + 1, end) != end || have != 7) return SW_ECORRUPT;
  return SW_OK;
}

int sw_ndjson_rec_line(const struct sw_ndjson_rec *r, struct sw_buf *out) {
  if (!r->line_escaped) return sw_buf_append(out, r->line, r->line_len);
  int rc = sw_buf_reserve(out, r->line_len);
  if (rc) return rc;
  const char *s = r->line, *end = r->line + r->line_len;
  while (s < end) {
    const char *bs = memchr(s, '\\', (size_t)(end - s));
    size_t run = (size_t)((bs ? bs : end) - s);
    memcpy(out->data + out->len, s, run); /* decoding never grows: reserved above */
    out->len += run;
    if (!bs) break;
    char u[4];
    size_t un;
    if (!(s = sw__json_decode_escape(bs, end, u, &un))) return SW_ECORRUPT;
    memcpy(out->data + out->len, u, un);
    out->len += un;
  }
  return SW_OK;
}
