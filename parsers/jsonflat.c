/* jsonflat.c - see jsonflat.h. The walk runs over a line sw_json_scan accepted, so it needs no
 * error paths of its own beyond the buffers': every string is terminated, every escape valid,
 * every container closed, and the depth bounded (SW_JSON_MAX_DEPTH). */
#include "jsonflat.h"

#include <string.h>

#include "json.h"
#include "jsonstr.h"

struct flat {
  struct sw_buf *name, *val;
  int (*key)(struct sw_buf *out, const char *k, size_t n);
  int (*fn)(void *arg, const char *name, size_t nlen, const char *value, size_t vlen);
  void *arg;
  const char *end;
};

static const char *ws(const char *p, const char *e) {
  while (p < e && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')) p++;
  return p;
}

/* The closing quote of the string whose body starts at p. */
static const char *str_end(const char *p, const char *e) {
  while (p < e && *p != '"') p += *p == '\\' ? 2 : 1;
  return p;
}

static int unescape(const char *s, const char *e, struct sw_buf *out) {
  while (s < e) {
    const char *bs = memchr(s, '\\', (size_t)(e - s)), *stop = bs ? bs : e;
    if (stop > s && sw_buf_append(out, s, (size_t)(stop - s))) return SW_ENOMEM;
    if (!bs) break;
    char u[4];
    size_t n;
    const char *next = sw__json_decode_escape(bs, e, u, &n);
    if (!next) return SW_EPARSE; /* sw_json_scan let it through: cannot happen */
    if (sw_buf_append(out, u, n)) return SW_ENOMEM;
    s = next;
  }
  return SW_OK;
}

/* Past the value at p (a string, a container or a scalar). */
static const char *skip_value(const char *p, const char *e) {
  if (*p == '"') return str_end(p + 1, e) + 1;
  if (*p == '{' || *p == '[') {
    size_t depth = 0;
    for (; p < e; p++) {
      if (*p == '"') p = str_end(p + 1, e);
      else if (*p == '{' || *p == '[') depth++;
      else if ((*p == '}' || *p == ']') && --depth == 0) return p + 1;
    }
    return p;
  }
  while (p < e && *p != ',' && *p != '}' && *p != ']' && *p != ' ' && *p != '\t' && *p != '\r' && *p != '\n') p++;
  return p;
}

/* The object at *pp ('{'); *pp ends past its '}'. */
static int object(struct flat *f, const char **pp) {
  const char *p = ws(*pp + 1, f->end), *e = f->end;
  size_t base = f->name->len;
  int rc = SW_OK;
  while (!rc && p < e && *p != '}') {
    const char *kb = p + 1, *ke = str_end(kb, e);
    sw_buf_reset(f->val);
    rc = unescape(kb, ke, f->val);
    int named = f->val->len > 0;
    f->name->len = base;
    if (!rc && named && base) rc = sw_buf_putc(f->name, '_');
    if (!rc && named)
      rc = f->key ? f->key(f->name, f->val->data, f->val->len) : sw_buf_append(f->name, f->val->data, f->val->len);
    p = ws(ws(ke + 1, e) + 1, e); /* past ':' */
    if (rc) break;
    if (!named) {
      p = skip_value(p, e);
    } else if (*p == '{') {
      rc = object(f, &p);
    } else if (*p == '"') {
      const char *ve = str_end(p + 1, e);
      sw_buf_reset(f->val);
      rc = unescape(p + 1, ve, f->val);
      if (!rc) rc = f->fn(f->arg, f->name->data, f->name->len, f->val->data ? f->val->data : "", f->val->len);
      p = ve + 1;
    } else if (*p == '[') {
      p = skip_value(p, e);
    } else {
      const char *vb = p;
      p = skip_value(p, e);
      if (!(p - vb == 4 && !memcmp(vb, "null", 4))) rc = f->fn(f->arg, f->name->data, f->name->len, vb, (size_t)(p - vb));
    }
    p = ws(p, e);
    if (p < e && *p == ',') p = ws(p + 1, e);
  }
  f->name->len = base;
  *pp = p < e ? p + 1 : p;
  return rc;
}

int sw_json_flatten(const char *line, size_t len, struct sw_buf *name, struct sw_buf *val,
                    int (*key)(struct sw_buf *out, const char *k, size_t n),
                    int (*fn)(void *arg, const char *name, size_t nlen, const char *value, size_t vlen),
                    void *arg) {
  struct sw_json_info info;
  if (sw_json_scan(line, len, &info)) return SW_EPARSE;
  struct flat f = {.name = name, .val = val, .key = key, .fn = fn, .arg = arg, .end = line + len};
  const char *p = ws(line, line + len);
  sw_buf_reset(name);
  return object(&f, &p);
}
