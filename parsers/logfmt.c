/* logfmt.c - syntax check and time extraction for logfmt lines (key=value key="v a l").
 *
 * Grammar, following go-logfmt's decoder (the de facto reference):
 *   line   = ws* (pair (ws+ pair)*)? ws*
 *   pair   = key | key "=" | key "=" bare | key "=" quoted
 *   key    = 1*kchar           kchar: 0x21..0x7E except '=' and '"', or any byte >= 0x80
 *   bare   = 1*kchar           (like go-logfmt, '=' and '"' inside a bare value are errors)
 *   quoted = '"' (char | escape)* '"'   char: any byte except '"', '\\' and bytes < 0x20
 *   escape = \" \\ \/ \b \f \n \r \t \uXXXX
 *   ws     = ' ' | '\t' | '\r'  ('\r' so CRLF files are not rejected wholesale)
 * One deliberate difference: go-logfmt accepts `a="x"b=1`; we require whitespace after a
 * closing quote, because such lines are almost always a broken writer, not logfmt.
 *
 * Time: the first pair in document order whose key is "ts", "time" or "timestamp" and whose
 * value (bare or quoted) is a valid RFC 3339 time gives ts_ns. A quoted time containing
 * escapes is ignored: no RFC 3339 string needs one. An unusable time is not a syntax error.
 */
#include "logfmt.h"

#include <stdbool.h>
#include <string.h>

#include "../common/timefmt.h"
#include "jsonstr.h"

static bool is_ws(char c) {
  return c == ' ' || c == '\t' || c == '\r';
}

static bool is_kchar(char c) {
  unsigned char u = (unsigned char)c;
  return (u > 0x20 && u < 0x7F && c != '=' && c != '"') || u >= 0x80;
}

static bool is_time_key(const char *s, size_t n) {
  return (n == 2 && memcmp(s, "ts", 2) == 0) || (n == 4 && memcmp(s, "time", 4) == 0) ||
         (n == 9 && memcmp(s, "timestamp", 9) == 0);
}

/* Parses the value after '=' at *pp; sets [*v, *vn) to the raw value bytes (quotes
 * stripped) and *usable when they can be read as a time without unescaping. */
static int read_value(const char **pp, const char *end, const char **v, size_t *vn,
                      bool *usable) {
  const char *p = *pp;
  bool esc = false;
  if (p < end && *p == '"') {
    const char *q = sw__json_scan_str(p + 1, end, &esc);
    if (q == NULL)
      return SW_EPARSE;
    *v = p + 1;
    *vn = (size_t)(q - 1 - *v);
    p = q;
  } else {
    *v = p;
    while (p < end && is_kchar(*p))
      p++;
    *vn = (size_t)(p - *v);
  }
  if (p < end && !is_ws(*p))
    return SW_EPARSE; /* '=' or '"' in a bare value, junk after a quote, control bytes */
  *usable = !esc;
  *pp = p;
  return 0;
}

int sw_logfmt_scan(const char *line, size_t len, struct sw_logfmt_info *res) {
  if (line == NULL || res == NULL)
    return SW_EINVAL;
  const char *p = line, *end = line + len;
  bool have_ts = false;
  res->ts_ns = 0;
  res->npairs = 0;
  for (;;) {
    while (p < end && is_ws(*p))
      p++;
    if (p >= end)
      break;
    const char *k = p;
    while (p < end && is_kchar(*p))
      p++;
    size_t kn = (size_t)(p - k);
    if (kn == 0)
      return SW_EPARSE; /* starts with '=', '"' or a control byte */
    res->npairs++;
    if (p >= end || is_ws(*p))
      continue; /* bare key */
    if (*p != '=')
      return SW_EPARSE;
    p++;
    const char *v;
    size_t vn;
    bool usable;
    if (read_value(&p, end, &v, &vn, &usable) != 0)
      return SW_EPARSE;
    int64_t ns;
    if (!have_ts && usable && is_time_key(k, kn) && sw_time_parse_rfc3339(v, vn, &ns) == 0) {
      res->ts_ns = ns;
      have_ts = true;
    }
  }
  return res->npairs > 0 ? 0 : SW_EPARSE;
}
