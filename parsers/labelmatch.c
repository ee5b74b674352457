/* labelmatch.c - see labelmatch.h. */
#include "labelmatch.h"

#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SYNTAX "expected key=value, key!=value, key=~regex or key!~regex"

int sw_label_match_parse(struct sw_label_match *m, const char *spec, char *err, size_t errlen) {
  memset(m, 0, sizeof *m);
  const char *op = strpbrk(spec, "=!");
  const char *val = NULL;
  if (op && op != spec) {
    if (op[0] == '=' && op[1] == '~')
      m->op = SW_LABEL_RE, val = op + 2;
    else if (op[0] == '!' && op[1] == '~')
      m->op = SW_LABEL_NRE, val = op + 2;
    else if (op[0] == '!' && op[1] == '=')
      m->op = SW_LABEL_NE, val = op + 2;
    else if (op[0] == '=')
      m->op = SW_LABEL_EQ, val = op + 1;
  }
  if (!val) {
    snprintf(err, errlen, "label matcher \"%s\": " SYNTAX, spec);
    return SW_EINVAL;
  }
  m->key = strndup(spec, (size_t)(op - spec));
  m->value = strdup(val);
  if (!m->key || !m->value) goto nomem;
  if (m->op == SW_LABEL_RE || m->op == SW_LABEL_NRE) {
    size_t n = strlen(val) + 16;
    char *anchored = malloc(n);
    if (!anchored) goto nomem;
    snprintf(anchored, n, "^(?:%s)$", val);
    int ec;
    PCRE2_SIZE off;
    m->re = pcre2_compile((PCRE2_SPTR)anchored, PCRE2_ZERO_TERMINATED,
                          PCRE2_UTF | PCRE2_MATCH_INVALID_UTF, &ec, &off, NULL);
    free(anchored);
    if (!m->re) {
      PCRE2_UCHAR msg[160];
      pcre2_get_error_message(ec, msg, sizeof msg);
      snprintf(err, errlen, "label matcher \"%s\": %s", spec, (const char *)msg);
      sw_label_match_free(m);
      return SW_EINVAL;
    }
    (void)pcre2_jit_compile(m->re, PCRE2_JIT_COMPLETE);
  }
  return SW_OK;
nomem:
  sw_label_match_free(m);
  return SW_ENOMEM;
}

void sw_label_match_free(struct sw_label_match *m) {
  free(m->key);
  free(m->value);
  pcre2_code_free(m->re);
  memset(m, 0, sizeof *m);
}

void *sw_label_match_md(void) { return pcre2_match_data_create(1, NULL); }
void sw_label_match_md_free(void *md) { pcre2_match_data_free(md); }

int sw_label_match_test(const struct sw_label_match *m, const char *s, size_t len, void *md) {
  if (!s) s = "", len = 0;
  switch (m->op) {
  case SW_LABEL_EQ: return strlen(m->value) == len && !memcmp(m->value, s, len);
  case SW_LABEL_NE: return !(strlen(m->value) == len && !memcmp(m->value, s, len));
  case SW_LABEL_RE:
  case SW_LABEL_NRE: {
    pcre2_match_data *own = md ? NULL : pcre2_match_data_create(1, NULL);
    if (!md && !own) return 0;
    int hit = pcre2_match(m->re, (PCRE2_SPTR)s, len, 0, 0, md ? md : own, NULL) >= 0;
    pcre2_match_data_free(own);
    return m->op == SW_LABEL_RE ? hit : !hit;
  }
  }
  return 0;
}

/* ---- flat label objects ---- */

static int hexv(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  c = (char)(c | 0x20);
  return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

static void put(char *out, size_t cap, size_t *o, char c) {
  if (*o + 1 < cap) out[*o] = c;
  (*o)++;
}

/* Decodes the JSON string starting after its opening quote at p; returns the position past
 * the closing quote (NULL if unterminated). The decoded bytes go to out (cut at cap - 1,
 * NUL-terminated when cap > 0); *n gets the full decoded length. */
static const char *decode(const char *p, const char *end, char *out, size_t cap, size_t *n) {
  size_t o = 0;
  while (p < end && *p != '"') {
    char c = *p++;
    if (c != '\\') {
      put(out, cap, &o, c);
      continue;
    }
    if (p >= end) return NULL;
    c = *p++;
    switch (c) {
    case 'b': put(out, cap, &o, '\b'); break;
    case 'f': put(out, cap, &o, '\f'); break;
    case 'n': put(out, cap, &o, '\n'); break;
    case 'r': put(out, cap, &o, '\r'); break;
    case 't': put(out, cap, &o, '\t'); break;
    case 'u': {
      unsigned long v = 0;
      for (int i = 0; i < 4; i++) {
        int h = p + i < end ? hexv(p[i]) : -1;
        if (h < 0) return NULL;
        v = v << 4 | (unsigned long)h;
      }
      p += 4;
      if (v >= 0xD800 && v < 0xDC00 && end - p >= 6 && p[0] == '\\' && p[1] == 'u') {
        unsigned long lo = 0;
        int ok = 1;
        for (int i = 2; i < 6; i++) {
          int h = hexv(p[i]);
          if (h < 0) ok = 0;
          lo = lo << 4 | (unsigned long)(h < 0 ? 0 : h);
        }
        if (ok && lo >= 0xDC00 && lo < 0xE000) {
          v = 0x10000 + ((v - 0xD800) << 10) + (lo - 0xDC00);
          p += 6;
        }
      }
      if (v < 0x80) {
        put(out, cap, &o, (char)v);
      } else if (v < 0x800) {
        put(out, cap, &o, (char)(0xC0 | v >> 6));
        put(out, cap, &o, (char)(0x80 | (v & 0x3F)));
      } else if (v < 0x10000) {
        put(out, cap, &o, (char)(0xE0 | v >> 12));
        put(out, cap, &o, (char)(0x80 | (v >> 6 & 0x3F)));
        put(out, cap, &o, (char)(0x80 | (v & 0x3F)));
      } else {
        put(out, cap, &o, (char)(0xF0 | v >> 18));
        put(out, cap, &o, (char)(0x80 | (v >> 12 & 0x3F)));
        put(out, cap, &o, (char)(0x80 | (v >> 6 & 0x3F)));
        put(out, cap, &o, (char)(0x80 | (v & 0x3F)));
      }
      break;
    }
    default: put(out, cap, &o, c);
    }
  }
  if (p >= end) return NULL;
  if (cap) out[o < cap ? o : cap - 1] = 0;
  *n = o;
  return p + 1;
}

static const char *skip_ws(const char *p, const char *end) {
  while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) p++;
  return p;
}

int sw_label_each(const char *json, size_t len, int (*fn)(void *arg, const char *k, const char *v),
                  void *arg) {
  if (!json) return 0;
  const char *p = skip_ws(json, json + len), *end = json + len;
  if (p >= end || *p++ != '{') return 0;
  char k[256], v[4096];
  for (;;) {
    p = skip_ws(p, end);
    if (p >= end || *p != '"') return 0;
    size_t kn, vn;
    if (!(p = decode(p + 1, end, k, sizeof k, &kn))) return 0;
    p = skip_ws(p, end);
    if (p >= end || *p++ != ':') return 0;
    p = skip_ws(p, end);
    if (p >= end || *p != '"') return 0; /* label values are strings */
    if (!(p = decode(p + 1, end, v, sizeof v, &vn))) return 0;
    int rc = fn(arg, k, v);
    if (rc) return rc;
    p = skip_ws(p, end);
    if (p >= end || *p++ != ',') return 0;
  }
}

long sw_label_lookup(const char *json, size_t len, const char *key, char *out, size_t cap) {
  if (!json) return -1;
  const char *p = skip_ws(json, json + len), *end = json + len;
  if (p >= end || *p++ != '{') return -1;
  size_t klen = strlen(key);
  char k[256];
  for (;;) {
    p = skip_ws(p, end);
    if (p >= end || *p != '"') return -1;
    size_t kn, vn;
    if (!(p = decode(p + 1, end, k, sizeof k, &kn))) return -1;
    p = skip_ws(p, end);
    if (p >= end || *p++ != ':') return -1;
    p = skip_ws(p, end);
    if (p >= end || *p != '"') return -1;
    int hit = kn == klen && kn < sizeof k && !memcmp(k, key, kn);
    char dummy[1];
    if (!(p = decode(p + 1, end, hit ? out : dummy, hit ? cap : 0, &vn))) return -1;
    if (hit) return (long)(vn < cap ? vn : (cap ? cap - 1 : 0));
    p = skip_ws(p, end);
    if (p >= end || *p++ != ',') return -1;
  }
}
