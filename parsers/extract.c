/* extract.c - see extract.h. The JSON walk reads only what a path needs: members before the
 * one wanted are skipped with a string-aware bracket count, never parsed into a tree. */
#include "extract.h"
#include "jsonstr.h"

#include <pcre2.h>
#include <string.h>
#include <strings.h>

struct put {
  struct sw_extract_out *o;
  size_t used;
};

static const char *ws(const char *p, const char *e) {
  while (p < e && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')) p++;
  return p;
}

/* Past the closing quote of the string whose body starts at p, or NULL. */
static const char *str_end(const char *p, const char *e) {
  while (p < e) {
    const char *q = memchr(p, '"', (size_t)(e - p));
    if (!q) return NULL;
    size_t bs = 0;
    for (const char *b = q; b > p && b[-1] == '\\'; b--) bs++;
    if (!(bs & 1)) return q + 1;
    p = q + 1;
  }
  return NULL;
}

/* Past one JSON value at p (any nesting; brackets counted, strings skipped), or NULL. */
static const char *skip_value(const char *p, const char *e) {
  if (p >= e) return NULL;
  if (*p == '"') return str_end(p + 1, e);
  if (*p == '{' || *p == '[') {
    size_t depth = 0;
    while (p < e) {
      char c = *p;
      if (c == '"') {
        if (!(p = str_end(p + 1, e))) return NULL;
        continue;
      }
      if (c == '{' || c == '[') depth++;
      else if (c == '}' || c == ']') {
        if (--depth == 0) return p + 1;
      }
      p++;
    }
    return NULL;
  }
  while (p < e && *p != ',' && *p != '}' && *p != ']' && *p != ' ' && *p != '\t' && *p != '\r' &&
         *p != '\n')
    p++;
  return p;
}

/* Decodes the JSON string body [s, e) into d (cap bytes), never cutting a character; a
 * malformed escape is kept as written. Returns the bytes written. */
static size_t unescape(const char *s, const char *e, char *d, size_t cap) {
  size_t o = 0;
  while (s < e) {
    char u[4];
    size_t n = 1;
    const char *next = *s == '\\' ? sw__json_decode_escape(s, e, u, &n) : NULL;
    if (!next) {
      unsigned char c = (unsigned char)*s;
      n = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1; /* a character's bytes */
      if (n > (size_t)(e - s)) n = (size_t)(e - s);
      memcpy(u, s, n);
      next = s + n;
    }
    if (o + n > cap) break;
    memcpy(d + o, u, n);
    o += n;
    s = next;
  }
  return o;
}

/* Stores value [s, s+n) of field i (decoding a JSON string body when `json_str`). */
static void store(struct put *pt, size_t i, const char *s, size_t n, int json_str) {
  struct sw_extract_out *o = pt->o;
  char *d = o->buf + pt->used;
  size_t cap = SW_EXTRACT_MAX_VALUE;
  size_t w;
  if (json_str) {
    w = unescape(s, s + n, d, cap);
  } else {
    w = n < cap ? n : cap;
    while (w < n && w && ((unsigned char)s[w] & 0xC0) == 0x80) w--; /* cut at a character start */
    memcpy(d, s, w);
  }
  d[w] = 0;
  o->v[i] = d;
  o->len[i] = w;
  o->found++;
  pt->used += w + 1;
}

/* In the object whose '{' is at p: the value of member key[0..klen) (raw key compare: a key
 * written with escapes does not match), or NULL. */
static const char *member(const char *p, const char *e, const char *key, size_t klen) {
  p = ws(p, e);
  if (p >= e || *p != '{') return NULL;
  p = ws(p + 1, e);
  while (p < e && *p == '"') {
    const char *ks = p + 1, *ke = str_end(ks, e);
    if (!ke) return NULL;
    p = ws(ke, e);
    if (p >= e || *p != ':') return NULL;
    p = ws(p + 1, e);
    if ((size_t)(ke - 1 - ks) == klen && !memcmp(ks, key, klen)) return p;
    if (!(p = skip_value(p, e))) return NULL;
    p = ws(p, e);
    if (p >= e || *p != ',') return NULL;
    p = ws(p + 1, e);
  }
  return NULL;
}

static void json_field(struct put *pt, size_t i, const char *path, const char *p, const char *e) {
  for (;;) {
    const char *dot = strchr(path, '.');
    size_t klen = dot ? (size_t)(dot - path) : strlen(path);
    if (!(p = member(p, e, path, klen))) return;
    if (!dot) break;
    path = dot + 1;
  }
  const char *v = skip_value(p, e);
  if (!v || v == p) return;
  if (*p == '"') {
    store(pt, i, p + 1, (size_t)(v - p - 2), 1);
  } else if (!(v - p == 4 && !memcmp(p, "null", 4))) {
    store(pt, i, p, (size_t)(v - p), 0);
  }
}

/* logfmt: the first pair key=value with this key. */
static void logfmt_field(struct put *pt, size_t i, const char *key, const char *p, const char *e) {
  size_t klen = strlen(key);
  while (p < e) {
    p = ws(p, e);
    const char *ks = p;
    while (p < e && *p != '=' && *p != ' ' && *p != '\t') p++;
    size_t kn = (size_t)(p - ks);
    const char *vs = p, *ve = p;
    int quoted = 0;
    if (p < e && *p == '=') {
      p++;
      if (p < e && *p == '"') {
        const char *end = str_end(p + 1, e);
        vs = p + 1;
        ve = end ? end - 1 : e;
        p = end ? end : e;
        quoted = 1;
      } else {
        vs = p;
        while (p < e && *p != ' ' && *p != '\t') p++;
        ve = p;
      }
    }
    if (kn == klen && kn && !memcmp(ks, key, klen)) {
      store(pt, i, vs, (size_t)(ve - vs), quoted);
      return;
    }
    if (p == ks) p++; /* a stray '"' or '=' */
  }
}

void sw_extract(const struct sw_extract_spec *spec, const char *line, size_t len, void *md,
                struct sw_extract_out *out) {
  struct put pt = {.o = out};
  out->found = 0;
  for (size_t i = 0; i < spec->n; i++) out->v[i] = NULL, out->len[i] = 0;
  const char *e = line + len;
  if (spec->format == SW_EXTRACT_JSON) {
    for (size_t i = 0; i < spec->n; i++) json_field(&pt, i, spec->path[i], line, e);
  } else if (spec->format == SW_EXTRACT_LOGFMT) {
    for (size_t i = 0; i < spec->n; i++) logfmt_field(&pt, i, spec->path[i], line, e);
  } else if (spec->re && md) {
    if (pcre2_match(spec->re, (PCRE2_SPTR)line, len, 0, 0, md, NULL) < 0) return;
    uint32_t pairs = pcre2_get_ovector_count(md);
    PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
    for (size_t i = 0; i < spec->n; i++) {
      unsigned g = spec->group[i];
      if (g >= pairs || ov[2 * g] == PCRE2_UNSET || ov[2 * g + 1] < ov[2 * g]) continue;
      store(&pt, i, line + ov[2 * g], ov[2 * g + 1] - ov[2 * g], 0);
    }
  }
  if (spec->normalize_level && spec->level_at >= 0 && out->v[spec->level_at]) {
    const char *n = sw_extract_level(out->v[spec->level_at], out->len[spec->level_at]);
    if (n) {
      out->v[spec->level_at] = n;
      out->len[spec->level_at] = strlen(n);
    }
  }
}

const char *sw_extract_level(const char *s, size_t n) {
  static const struct {
    const char *alias, *level;
  } map[] = {
      {"trace", "debug"},    {"trc", "debug"},       {"t", "debug"},         {"verbose", "debug"},
      {"v", "debug"},        {"debug", "debug"},     {"dbg", "debug"},       {"d", "debug"},
      {"7", "debug"},        {"info", "info"},       {"inf", "info"},        {"i", "info"},
      {"information", "info"}, {"informational", "info"}, {"notice", "info"}, {"n", "info"},
      {"6", "info"},         {"5", "info"},          {"warn", "warning"},    {"warning", "warning"},
      {"wrn", "warning"},    {"w", "warning"},       {"4", "warning"},       {"error", "error"},
      {"err", "error"},      {"e", "error"},         {"eror", "error"},      {"3", "error"},
      {"critical", "critical"}, {"crit", "critical"}, {"crt", "critical"},  {"c", "critical"},
      {"fatal", "critical"}, {"ftl", "critical"},    {"f", "critical"},      {"panic", "critical"},
      {"dpanic", "critical"}, {"alert", "critical"}, {"emerg", "critical"},  {"emergency", "critical"},
      {"2", "critical"},     {"1", "critical"},      {"0", "critical"},
  };
  for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
    if (strlen(map[i].alias) == n && !strncasecmp(map[i].alias, s, n)) return map[i].level;
  return NULL;
}

int sw_extract_regex_names(struct sw_extract_spec *spec) {
  uint32_t count = 0, esize = 0;
  PCRE2_SPTR table;
  pcre2_pattern_info(spec->re, PCRE2_INFO_NAMECOUNT, &count);
  pcre2_pattern_info(spec->re, PCRE2_INFO_NAMEENTRYSIZE, &esize);
  pcre2_pattern_info(spec->re, PCRE2_INFO_NAMETABLE, &table);
  if (count == 0 || count > SW_EXTRACT_MAX_FIELDS) return SW_EINVAL;
  spec->n = count;
  for (uint32_t i = 0; i < count; i++) {
    const unsigned char *ent = table + (size_t)i * esize;
    spec->group[i] = (unsigned)ent[0] << 8 | ent[1];
    spec->name[i] = (const char *)ent + 2;
    spec->path[i] = NULL;
  }
  spec->level_at = -1;
  for (size_t i = 0; i < spec->n; i++)
    if (!strcmp(spec->name[i], "level")) spec->level_at = (int)i;
  return SW_OK;
}
