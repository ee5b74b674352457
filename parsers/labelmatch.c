/* labelmatch.c - see labelmatch.h. */
#include "labelmatch.h"
#include "jsonstr.h"
#include "regex.h"

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
    /* Anchored by options, not by wrapping the text in ^(?:...)$: a value such as "x)|(y"
     * would otherwise close the group and match any value starting with x. */
    char msg[160];
    m->re = sw_re_compile(val, PCRE2_ANCHORED | PCRE2_ENDANCHORED, msg, sizeof msg, NULL);
    if (!m->re) {
      snprintf(err, errlen, "label matcher \"%s\": %s", spec, msg);
      sw_label_match_free(m);
      return SW_EINVAL;
    }
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

/* Decodes the JSON string starting after its opening quote at p; returns the position past
 * the closing quote (NULL if unterminated or malformed). The decoded bytes go to out (cut at
 * cap - 1, NUL-terminated when cap > 0); *n gets the full decoded length. */
static const char *decode(const char *p, const char *end, char *out, size_t cap, size_t *n) {
  size_t o = 0;
  while (p < end && *p != '"') {
    char u[4];
    size_t k = 1;
    if (*p == '\\') {
      if (!(p = sw__json_decode_escape(p, end, u, &k))) return NULL;
    } else {
      u[0] = *p++;
    }
    for (size_t i = 0; i < k; i++, o++)
      if (o + 1 < cap) out[o] = u[i];
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

int sw_label_match_chunk(const struct sw_label_match *m, size_t n, const char *labels_json,
                         uint64_t may_defer, uint64_t *deferred) {
  char v[4096];
  size_t len = strlen(labels_json);
  *deferred = 0;
  for (size_t i = 0; i < n; i++) {
    long l = sw_label_lookup(labels_json, len, m[i].key, v, sizeof v);
    if (l < 0 && (may_defer >> i & 1))
      *deferred |= 1ull << i;
    else if (!sw_label_match_test(&m[i], l < 0 ? NULL : v, l < 0 ? 0 : (size_t)l, NULL))
      return 0;
  }
  return 1;
}

int sw_label_match_record(const struct sw_label_match *m, size_t n, uint64_t deferred, const char *xl,
                          size_t xl_len, void *md) {
  char v[4096];
  for (size_t i = 0; i < n; i++) {
    if (!(deferred >> i & 1)) continue;
    long l = sw_label_lookup(xl, xl_len, m[i].key, v, sizeof v);
    if (!sw_label_match_test(&m[i], l < 0 ? NULL : v, l < 0 ? 0 : (size_t)l, md)) return 0;
  }
  return 1;
}
