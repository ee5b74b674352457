/* template.c - see template.h. */
#include "template.h"

#include <string.h>

#include "../parsers/labelmatch.h"

int sw_tmpl_dynamic(const char *text) {
  const char *a = text ? strchr(text, '{') : NULL;
  return a && strchr(a, '}') != NULL;
}

static int keep(enum sw_tmpl_charset cs, unsigned char c) {
  int alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
  switch (cs) {
  case SW_TMPL_TENANT: return alnum || (c && strchr("!._*'()-", c));
  case SW_TMPL_INDEX: return c >= 0x20 && c < 0x80 && !strchr("\\/*?\"<>|,# :", c);
  case SW_TMPL_KEY: return alnum || c == '.' || c == '_' || c == '-';
  }
  return 0;
}

static int put_value(struct sw_buf *out, enum sw_tmpl_charset cs, const char *v, size_t n) {
  int rc = SW_OK;
  for (size_t i = 0; i < n && !rc; i++) {
    unsigned char c = (unsigned char)v[i];
    if (!keep(cs, c)) c = '_';
    else if (cs == SW_TMPL_INDEX && c >= 'A' && c <= 'Z') c = (unsigned char)(c - 'A' + 'a');
    rc = cs == SW_TMPL_INDEX && c == '%' ? sw_buf_append(out, "%%", 2) : sw_buf_putc(out, (char)c);
  }
  return rc;
}

int sw_tmpl_expand(const char *text, enum sw_tmpl_charset cs, const char *labels_json,
                   const struct sw_record_view *rec, struct sw_buf *out, uint64_t *missing) {
  size_t start = out->len;
  int rc = SW_OK;
  const char *p = text;
  char key[256], val[1024];
  while (*p && !rc) {
    const char *a = strchr(p, '{'), *z = a ? strchr(a, '}') : NULL;
    if (!a || !z) {
      rc = sw_buf_append(out, p, strlen(p));
      break;
    }
    rc = sw_buf_append(out, p, (size_t)(a - p));
    size_t kn = (size_t)(z - a - 1);
    if (rc) break;
    if (kn == 0 || kn >= sizeof key) { /* not a label reference: as written */
      rc = sw_buf_append(out, a, (size_t)(z - a + 1));
      p = z + 1;
      continue;
    }
    memcpy(key, a + 1, kn);
    key[kn] = 0;
    long l = rec && rec->xl ? sw_label_lookup(rec->xl, rec->xl_len, key, val, sizeof val) : -1;
    if (l < 0) l = sw_label_lookup(labels_json, labels_json ? strlen(labels_json) : 0, key, val, sizeof val);
    if (l <= 0) {
      if (missing) (*missing)++;
      rc = sw_buf_append(out, "unknown", 7);
    } else {
      rc = put_value(out, cs, val, (size_t)l);
    }
    p = z + 1;
  }
  if (!rc && cs == SW_TMPL_TENANT && out->len - start > 150) out->len = start + 150;
  return rc;
}
