/* yaml.c - config text to a cJSON tree, and ${ENV} expansion (see config/yaml.h).
 *
 * libyaml's event parser drives an explicit stack of open collections (no recursion), so deep
 * input costs bounded memory, not C stack. Limits keep memory and time bounded whatever the input:
 *   - nesting: YAML_MAX_DEPTH levels in the finished tree, alias copies included, so the
 *     recursive cJSON_Delete/cJSON_Duplicate and the schema walk stay shallow;
 *   - nodes: YAML_MAX_NODES created, every alias copy and anchor copy counted (a "billion
 *     laughs" document stops at the first alias that would cross it);
 *   - text: YAML_MAX_BYTES of scalar bytes, copies included;
 *   - keys per mapping: YAML_MAX_KEYS (duplicate detection is a linear scan).
 * Invariant: an anchor owns a private copy of its node, so deleting or moving tree nodes (merge
 * keys, dropped duplicates) never leaves an alias pointing at freed memory.
 */
#include "yaml.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#define YAML_MAX_DEPTH 64
#define YAML_MAX_NODES 100000
#define YAML_MAX_BYTES (16 * SW__MIB)
#define YAML_MAX_KEYS 10000
#define ENV_MAX_VALUE SW__MIB

struct frame {
  cJSON *node;           /* object or array being filled (owned until attached) */
  char *key;             /* mapping: key waiting for its value (owned); NULL: a key comes next */
  bool merge_next;       /* the waiting key is "<<" */
  bool drop_next;        /* the waiting key is a duplicate: its value is discarded */
  bool has_merge;
  cJSON *merged;         /* entries from "<<", added at the end unless overridden (owned) */
  size_t count;          /* keys or items so far */
  char *anchor;          /* registered when the collection ends (owned) */
  size_t nodes0, bytes0; /* totals when it started: its weight is the growth */
  unsigned height;       /* levels below it so far */
};

struct anchor {
  char *name;
  cJSON *copy; /* private copy (owned) */
  size_t nodes, bytes;
  unsigned height;
};

struct yctx {
  struct sw__conf_ctx *c;
  struct frame stack[YAML_MAX_DEPTH];
  size_t depth;
  struct anchor *anchors;
  size_t nanchors, capanchors;
  size_t nodes, bytes;
  cJSON *root;
  unsigned docs;
  bool fatal; /* parsing stopped on an error */
  bool soft;  /* an error was reported and parsing went on (duplicate keys) */
};

static void fail_at(struct yctx *y, yaml_mark_t m, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void fail_at(struct yctx *y, yaml_mark_t m, const char *fmt, ...) {
  char msg[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  sw__conf_err_file(y->c, "line %zu, column %zu: %s", m.line + 1, m.column + 1, msg);
  y->fatal = true;
}

static void nomem(struct yctx *y) {
  y->c->nomem = true;
  y->fatal = true;
}

/* ---- YAML 1.2 core schema for plain scalars ---- */

static bool is_null(const char *s) {
  return !*s || !strcmp(s, "~") || !strcmp(s, "null") || !strcmp(s, "Null") || !strcmp(s, "NULL");
}

static int bool_value(const char *s) {
  if (!strcmp(s, "true") || !strcmp(s, "True") || !strcmp(s, "TRUE")) return 1;
  if (!strcmp(s, "false") || !strcmp(s, "False") || !strcmp(s, "FALSE")) return 0;
  return -1;
}

static bool all_in(const char *s, const char *set) {
  return *s && strspn(s, set) == strlen(s);
}

static bool core_int(const char *s, double *v) {
  const char *digits = s + (*s == '-' || *s == '+');
  if (all_in(digits, "0123456789")) {
    *v = strtod(s, NULL);
    return true;
  }
  int base = !strncmp(s, "0x", 2) ? 16 : !strncmp(s, "0o", 2) ? 8 : 0;
  if (!base || !all_in(s + 2, base == 16 ? "0123456789abcdefABCDEF" : "01234567")) return false;
  double acc = 0;
  for (const char *p = s + 2; *p; p++) {
    int d = *p <= '9' ? *p - '0' : (*p | 0x20) - 'a' + 10;
    acc = acc * base + d;
  }
  *v = acc;
  return true;
}

static bool core_float(const char *s, double *v) {
  const char *p = s + (*s == '-' || *s == '+');
  if (!strcmp(p, ".inf") || !strcmp(p, ".Inf") || !strcmp(p, ".INF")) {
    *v = *s == '-' ? -INFINITY : INFINITY;
    return true;
  }
  if (!strcmp(s, ".nan") || !strcmp(s, ".NaN") || !strcmp(s, ".NAN")) {
    *v = NAN;
    return true;
  }
  size_t n = strspn(p, "0123456789");
  bool digits = n > 0;
  p += n;
  if (*p == '.') {
    n = strspn(++p, "0123456789");
    digits = digits || n > 0;
    p += n;
  }
  if (!digits) return false;
  if (*p == 'e' || *p == 'E') {
    p += 1 + (p[1] == '-' || p[1] == '+');
    n = strspn(p, "0123456789");
    if (!n) return false;
    p += n;
  }
  if (*p) return false;
  *v = strtod(s, NULL);
  return true;
}

static cJSON *number(double v) {
  /* cJSON_CreateNumber casts to int, which is undefined for NaN: set the double ourselves. */
  cJSON *n = cJSON_CreateNumber(isfinite(v) ? v : 0);
  if (n) n->valuedouble = v;
  return n;
}

/* ---- building the tree ---- */

static bool charge(struct yctx *y, yaml_mark_t m, size_t nodes, size_t bytes) {
  if (y->nodes + nodes > YAML_MAX_NODES) {
    fail_at(y, m, "document too large: more than %d nodes (aliases included)", YAML_MAX_NODES);
    return false;
  }
  if (y->bytes + bytes > YAML_MAX_BYTES) {
    fail_at(y, m, "document too large: more than 16MiB of text (aliases included)");
    return false;
  }
  y->nodes += nodes;
  y->bytes += bytes;
  return true;
}

/* Reports a duplicate key with the key path of the current position. */
static void duplicate_key(struct yctx *y, yaml_mark_t m) {
  struct sw__conf_ctx *c = y->c;
  size_t saved = c->pathlen;
  for (size_t i = 0; i < y->depth; i++) {
    const struct frame *f = &y->stack[i];
    if (cJSON_IsObject(f->node))
      sw__conf_path_key(c, f->key ? f->key : "");
    else
      sw__conf_path_index(c, f->count);
  }
  sw__conf_err(c, "duplicate key (line %zu, column %zu)", m.line + 1, m.column + 1);
  sw__conf_path_pop(c, saved);
  y->soft = true;
}

/* Moves src's entries into dst where dst lacks the key; src is left empty. */
static void merge_entries(struct yctx *y, cJSON *dst, cJSON *src, yaml_mark_t m) {
  size_t n = (size_t)cJSON_GetArraySize(dst);
  while (src->child && !y->fatal) {
    cJSON *item = cJSON_DetachItemViaPointer(src, src->child);
    if (cJSON_GetObjectItemCaseSensitive(dst, item->string)) {
      cJSON_Delete(item);
    } else if (++n > YAML_MAX_KEYS) {
      cJSON_Delete(item);
      fail_at(y, m, "more than %d keys in one mapping", YAML_MAX_KEYS);
    } else {
      cJSON_AddItemToArray(dst, item); /* keeps item->string: an object entry, key and all */
    }
  }
}

static void merge_value(struct yctx *y, struct frame *f, cJSON *value, yaml_mark_t m) {
  if (!f->merged) f->merged = cJSON_CreateObject();
  if (!f->merged) {
    nomem(y);
    return;
  }
  if (cJSON_IsObject(value)) {
    merge_entries(y, f->merged, value, m);
    return;
  }
  const cJSON *it;
  cJSON_ArrayForEach(it, value) {
    if (!cJSON_IsObject(it)) break;
  }
  if (!cJSON_IsArray(value) || it) {
    fail_at(y, m, "the value of \"<<\" must be a mapping or a list of mappings");
    return;
  }
  cJSON_ArrayForEach(it, value) merge_entries(y, f->merged, (cJSON *)it, m);
}

/* Hangs node (taking ownership) under the innermost open collection, or makes it the root. */
static void attach(struct yctx *y, cJSON *node, unsigned height, yaml_mark_t m) {
  if (y->depth + height > YAML_MAX_DEPTH) {
    fail_at(y, m, "nesting deeper than %d levels (aliases included)", YAML_MAX_DEPTH);
    cJSON_Delete(node);
    return;
  }
  if (y->depth == 0) {
    cJSON_Delete(y->root);
    y->root = node;
    return;
  }
  struct frame *f = &y->stack[y->depth - 1];
  if (f->height < height + 1) f->height = height + 1;
  if (cJSON_IsArray(f->node)) {
    cJSON_AddItemToArray(f->node, node);
    f->count++;
    return;
  }
  if (f->merge_next)
    merge_value(y, f, node, m);
  if (f->merge_next || f->drop_next) {
    cJSON_Delete(node);
  } else if (!cJSON_AddItemToObject(f->node, f->key, node)) {
    cJSON_Delete(node);
    nomem(y);
  }
  f->count++;
  f->merge_next = f->drop_next = false;
  free(f->key);
  f->key = NULL;
}

/* Registers a private copy of node under name (borrowed). */
static void add_anchor(struct yctx *y, const char *name, const cJSON *node, size_t nodes, size_t bytes,
                       unsigned height, yaml_mark_t m) {
  if (!charge(y, m, nodes, bytes)) return;
  if (y->nanchors == y->capanchors) {
    size_t cap = y->capanchors ? 2 * y->capanchors : 8;
    struct anchor *a = realloc(y->anchors, cap * sizeof *a);
    if (!a) {
      nomem(y);
      return;
    }
    y->anchors = a;
    y->capanchors = cap;
  }
  cJSON *copy = cJSON_Duplicate(node, 1);
  char *dup = strdup(name);
  if (!copy || !dup) {
    cJSON_Delete(copy);
    free(dup);
    nomem(y);
    return;
  }
  y->anchors[y->nanchors++] = (struct anchor){dup, copy, nodes, bytes, height};
}

/* A scalar as a mapping key: stores it in the frame, or flags a duplicate. */
static void key_scalar(struct yctx *y, struct frame *f, const yaml_event_t *e) {
  const char *k = (const char *)e->data.scalar.value;
  bool plain = e->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
  f->key = strdup(k);
  if (!f->key) {
    nomem(y);
    return;
  }
  if (f->count >= YAML_MAX_KEYS) {
    fail_at(y, e->start_mark, "more than %d keys in one mapping", YAML_MAX_KEYS);
    return;
  }
  if (plain && !strcmp(k, "<<")) {
    if (f->has_merge) {
      f->drop_next = true;
      duplicate_key(y, e->start_mark);
    } else {
      f->merge_next = true;
    }
    f->has_merge = true;
  } else if (cJSON_GetObjectItemCaseSensitive(f->node, k)) {
    f->drop_next = true;
    duplicate_key(y, e->start_mark);
  }
}

static void on_scalar(struct yctx *y, const yaml_event_t *e) {
  const char *v = (const char *)e->data.scalar.value;
  size_t len = e->data.scalar.length;
  const char *tag = (const char *)e->data.scalar.tag;
  if (strlen(v) != len) {
    fail_at(y, e->start_mark, "NUL characters are not allowed");
    return;
  }
  struct frame *f = y->depth ? &y->stack[y->depth - 1] : NULL;
  if (f && cJSON_IsObject(f->node) && !f->key) {
    key_scalar(y, f, e);
    return;
  }
  bool str = e->data.scalar.style != YAML_PLAIN_SCALAR_STYLE;
  if (tag && (!strcmp(tag, "!") || !strcmp(tag, YAML_STR_TAG))) {
    str = true;
  } else if (tag) {
    fail_at(y, e->start_mark, "unsupported tag \"%.64s\"", tag);
    return;
  }
  if (!charge(y, e->start_mark, 1, len)) return;
  double num = 0;
  int b = str ? -1 : bool_value(v);
  cJSON *node = str ? cJSON_CreateString(v)
                : is_null(v) ? cJSON_CreateNull()
                : b >= 0 ? cJSON_CreateBool(b)
                : (core_int(v, &num) || core_float(v, &num)) ? number(num)
                : cJSON_CreateString(v);
  if (!node) {
    nomem(y);
    return;
  }
  if (e->data.scalar.anchor) add_anchor(y, (const char *)e->data.scalar.anchor, node, 1, len, 0, e->start_mark);
  if (y->fatal) {
    cJSON_Delete(node);
    return;
  }
  attach(y, node, 0, e->start_mark);
}

static void on_start(struct yctx *y, const yaml_event_t *e, bool mapping) {
  struct frame *top = y->depth ? &y->stack[y->depth - 1] : NULL;
  if (top && cJSON_IsObject(top->node) && !top->key) {
    fail_at(y, e->start_mark, "only strings can be mapping keys");
    return;
  }
  if (y->depth == YAML_MAX_DEPTH) {
    fail_at(y, e->start_mark, "nesting deeper than %d levels", YAML_MAX_DEPTH);
    return;
  }
  const yaml_char_t *tag = mapping ? e->data.mapping_start.tag : e->data.sequence_start.tag;
  const char *want = mapping ? YAML_MAP_TAG : YAML_SEQ_TAG;
  if (tag && strcmp((const char *)tag, "!") && strcmp((const char *)tag, want)) {
    fail_at(y, e->start_mark, "unsupported tag \"%.64s\"", (const char *)tag);
    return;
  }
  if (!charge(y, e->start_mark, 1, 0)) return;
  struct frame *f = &y->stack[y->depth];
  *f = (struct frame){.nodes0 = y->nodes, .bytes0 = y->bytes};
  f->node = mapping ? cJSON_CreateObject() : cJSON_CreateArray();
  if (!f->node) {
    nomem(y);
    return;
  }
  y->depth++;
  const yaml_char_t *anchor = mapping ? e->data.mapping_start.anchor : e->data.sequence_start.anchor;
  if (anchor) f->anchor = strdup((const char *)anchor);
  if (anchor && !f->anchor) nomem(y);
}

static void on_end(struct yctx *y, const yaml_event_t *e) {
  struct frame f = y->stack[--y->depth];
  y->stack[y->depth] = (struct frame){0};
  if (f.merged) {
    merge_entries(y, f.node, f.merged, e->start_mark);
    cJSON_Delete(f.merged);
  }
  if (f.anchor && !y->fatal)
    add_anchor(y, f.anchor, f.node, y->nodes - f.nodes0, y->bytes - f.bytes0, f.height, e->start_mark);
  free(f.anchor);
  if (y->fatal) {
    cJSON_Delete(f.node);
    return;
  }
  attach(y, f.node, f.height, e->start_mark);
}

static void on_alias(struct yctx *y, const yaml_event_t *e) {
  const char *name = (const char *)e->data.alias.anchor;
  struct frame *top = y->depth ? &y->stack[y->depth - 1] : NULL;
  if (top && cJSON_IsObject(top->node) && !top->key) {
    fail_at(y, e->start_mark, "only strings can be mapping keys");
    return;
  }
  const struct anchor *a = NULL;
  for (size_t i = y->nanchors; i-- > 0 && !a;)
    if (!strcmp(y->anchors[i].name, name)) a = &y->anchors[i];
  if (!a) {
    fail_at(y, e->start_mark, "unknown alias \"*%.64s\"", name);
    return;
  }
  if (!charge(y, e->start_mark, a->nodes, a->bytes)) return;
  cJSON *copy = cJSON_Duplicate(a->copy, 1);
  if (!copy) {
    nomem(y);
    return;
  }
  attach(y, copy, a->height, e->start_mark);
}

static void on_event(struct yctx *y, yaml_event_t *e) {
  switch (e->type) {
  case YAML_DOCUMENT_START_EVENT:
    if (++y->docs > 1) fail_at(y, e->start_mark, "more than one document (\"---\") in the file");
    break;
  case YAML_SCALAR_EVENT: on_scalar(y, e); break;
  case YAML_SEQUENCE_START_EVENT: on_start(y, e, false); break;
  case YAML_MAPPING_START_EVENT: on_start(y, e, true); break;
  case YAML_SEQUENCE_END_EVENT:
  case YAML_MAPPING_END_EVENT: on_end(y, e); break;
  case YAML_ALIAS_EVENT: on_alias(y, e); break;
  default: break;
  }
}

static void syntax_error(struct yctx *y, const yaml_parser_t *p, const char *text, size_t len) {
  if (p->error == YAML_MEMORY_ERROR) {
    nomem(y);
    return;
  }
  yaml_mark_t m = p->problem_mark;
  if (p->error == YAML_READER_ERROR) { /* the reader reports a byte offset, not a mark */
    m = (yaml_mark_t){0};
    for (size_t i = 0; i < p->problem_offset && i < len; i++) {
      if (text[i] == '\n') {
        m.line++;
        m.column = 0;
      } else {
        m.column++;
      }
    }
  }
  bool tab = p->error != YAML_READER_ERROR && m.index < len && text[m.index] == '\t';
  fail_at(y, m, "%s%s", p->problem ? p->problem : "syntax error", tab ? " (YAML is indented with spaces, not tabs)" : "");
}

int sw__conf_yaml_parse(struct sw__conf_ctx *c, const char *text, size_t len, cJSON **out) {
  struct yctx y = {.c = c};
  yaml_parser_t p;
  *out = NULL;
  if (!yaml_parser_initialize(&p)) return SW_ENOMEM;
  yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
  for (;;) {
    yaml_event_t e;
    if (!yaml_parser_parse(&p, &e)) {
      syntax_error(&y, &p, text, len);
      break;
    }
    bool end = e.type == YAML_STREAM_END_EVENT;
    on_event(&y, &e);
    yaml_event_delete(&e);
    if (end || y.fatal) break;
  }
  yaml_parser_delete(&p);
  while (y.depth > 0) {
    struct frame *f = &y.stack[--y.depth];
    cJSON_Delete(f->node);
    cJSON_Delete(f->merged);
    free(f->key);
    free(f->anchor);
  }
  for (size_t i = 0; i < y.nanchors; i++) {
    free(y.anchors[i].name);
    cJSON_Delete(y.anchors[i].copy);
  }
  free(y.anchors);
  if (y.fatal || y.soft || c->nomem) {
    cJSON_Delete(y.root);
    return c->nomem ? SW_ENOMEM : SW_ECONFIG;
  }
  if (!y.root || cJSON_IsNull(y.root)) {
    cJSON_Delete(y.root);
    y.root = cJSON_CreateObject();
    if (!y.root) return SW_ENOMEM;
  }
  *out = y.root;
  return 0;
}

/* ---- ${ENV} expansion ---- */

struct sbuf {
  char *p;
  size_t len, cap;
};

static int sbuf_add(struct sbuf *b, const char *s, size_t n) {
  if (b->len + n > ENV_MAX_VALUE) return SW_ETOOBIG;
  if (b->len + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 64;
    while (cap < b->len + n + 1) cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) return SW_ENOMEM;
    b->p = p;
    b->cap = cap;
  }
  memcpy(b->p + b->len, s, n);
  b->len += n;
  b->p[b->len] = '\0';
  return 0;
}

/* One "${...}" at s (s[0] == '$', s[1] == '{'): appends its value, sets *used to its length. */
static int expand_ref(struct sw__conf_ctx *c, const char *s, struct sbuf *b, size_t *used) {
  char q[96];
  const char *close = strchr(s, '}');
  *used = 0;
  if (!close) {
    sw__conf_err(c, "unterminated \"${\" (write \"$$\" for a literal \"$\")");
    return SW_EPARSE;
  }
  *used = (size_t)(close - s) + 1;
  const char *name = s + 2;
  size_t n = strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_");
  const char *rest = name + n;
  bool has_def = rest[0] == ':' && rest[1] == '-';
  if (!n || (*name >= '0' && *name <= '9') || (rest != close && !has_def) || n > 64) {
    char ref[80];
    snprintf(ref, sizeof ref, "%.*s", (int)(*used < 70 ? *used : 70), s);
    sw__conf_err(c, "bad environment variable reference %s", sw__conf_quote(q, sizeof q, ref));
    return SW_EPARSE;
  }
  char var[65];
  memcpy(var, name, n);
  var[n] = '\0';
  const char *val = getenv(var);
  if (has_def && (!val || !*val)) return sbuf_add(b, rest + 2, (size_t)(close - rest - 2));
  if (!val) {
    sw__conf_err(c, "environment variable %s is not set", var);
    return SW_EPARSE;
  }
  return sbuf_add(b, val, strlen(val));
}

/* 0 with *out NULL (nothing to do) or a new string; an error is already reported. */
static int expand_string(struct sw__conf_ctx *c, const char *s, char **out) {
  struct sbuf b = {0};
  int rc = 0;
  *out = NULL;
  if (!strchr(s, '$')) return 0;
  while (!rc && *s) {
    size_t n = strcspn(s, "$");
    rc = sbuf_add(&b, s, n);
    if (rc) break;
    s += n;
    if (!*s) break;
    if (s[1] == '{') {
      rc = expand_ref(c, s, &b, &n);
      s += n;
    } else {
      rc = sbuf_add(&b, "$", 1);
      s += 1 + (s[1] == '$');
    }
  }
  if (!rc && !b.p) rc = sbuf_add(&b, "", 0);
  if (rc == SW_ETOOBIG) sw__conf_err(c, "value is longer than 1MiB after ${...} expansion");
  if (rc == SW_ENOMEM) c->nomem = true;
  if (rc) {
    free(b.p);
    return rc;
  }
  *out = b.p;
  return 0;
}

void sw__conf_expand_env(struct sw__conf_ctx *c, cJSON *root) {
  cJSON *it;
  size_t i = 0;
  cJSON_ArrayForEach(it, root) {
    size_t saved = cJSON_IsObject(root) ? sw__conf_path_key(c, it->string) : sw__conf_path_index(c, i);
    i++;
    if (cJSON_IsString(it)) {
      char *v = NULL;
      if (expand_string(c, it->valuestring, &v)) {
        it->type = cJSON_Raw; /* poisoned: reported already, the schema pass skips it */
      } else if (v) {
        free(it->valuestring);
        it->valuestring = v;
      }
    } else if (cJSON_IsObject(it) || cJSON_IsArray(it)) {
      sw__conf_expand_env(c, it);
    }
    sw__conf_path_pop(c, saved);
  }
}
