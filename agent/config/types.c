/* types.c - the config module's small pieces: error list and key paths, value quoting,
 * sizes and durations, globs, names, edit distance, relative paths. No I/O, no globals.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "schema.h"

/* ---- errors and key paths ---- */

static void push_msg(struct sw__conf_ctx *c, const char *path, const char *msg) {
  struct sw_conf_errors *e = c->errs;
  c->nerrs++;
  if (e->n > SW__CONF_MAX_ERRORS) return;
  if (e->n == SW__CONF_MAX_ERRORS) {
    path = NULL;
    msg = "too many errors, stopping here";
  }
  if (e->n == e->cap) {
    size_t cap = e->cap ? 2 * e->cap : 8;
    char **m = realloc(e->msgs, cap * sizeof *m);
    if (!m) {
      c->nomem = true;
      return;
    }
    e->msgs = m;
    e->cap = cap;
  }
  size_t len = strlen(c->file) + (path ? strlen(path) + 2 : 0) + strlen(msg) + 3;
  char *s = malloc(len);
  if (!s) {
    c->nomem = true;
    return;
  }
  if (path)
    snprintf(s, len, "%s: %s: %s", c->file, path, msg);
  else
    snprintf(s, len, "%s: %s", c->file, msg);
  e->msgs[e->n++] = s;
}

void sw__conf_err(struct sw__conf_ctx *c, const char *fmt, ...) {
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  push_msg(c, c->pathlen ? c->path : NULL, msg);
}

void sw__conf_err_file(struct sw__conf_ctx *c, const char *fmt, ...) {
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  push_msg(c, NULL, msg);
}

static void path_append(struct sw__conf_ctx *c, const char *s, size_t n) {
  if (c->pathlen + 4 >= sizeof c->path) return; /* already cut */
  size_t room = sizeof c->path - 4 - c->pathlen; /* keep space for "..." */
  if (n > room) {
    memcpy(c->path + c->pathlen, s, room);
    memcpy(c->path + c->pathlen + room, "...", 4);
    c->pathlen = sizeof c->path - 1;
    return;
  }
  memcpy(c->path + c->pathlen, s, n);
  c->pathlen += n;
  c->path[c->pathlen] = '\0';
}

size_t sw__conf_path_key(struct sw__conf_ctx *c, const char *key) {
  size_t saved = c->pathlen;
  char k[72];
  size_t n = 0;
  for (const unsigned char *p = (const unsigned char *)key; *p && n < 64; p++)
    k[n++] = *p < 0x20 || *p == 0x7f ? '?' : (char)*p; /* keep terminals sane */
  if (key[n]) {
    memcpy(k + n, "...", 3);
    n += 3;
  }
  if (c->pathlen) path_append(c, ".", 1);
  path_append(c, k, n);
  return saved;
}

size_t sw__conf_path_index(struct sw__conf_ctx *c, size_t i) {
  size_t saved = c->pathlen;
  char k[32];
  int n = snprintf(k, sizeof k, "[%zu]", i);
  path_append(c, k, (size_t)n);
  return saved;
}

void sw__conf_path_pop(struct sw__conf_ctx *c, size_t len) {
  c->pathlen = len;
  c->path[len] = '\0';
}

void sw_conf_errors_free(struct sw_conf_errors *errs) {
  if (!errs) return;
  for (size_t i = 0; i < errs->n; i++) free(errs->msgs[i]);
  free(errs->msgs);
  *errs = (struct sw_conf_errors){0};
}

/* ---- showing values ---- */

const char *sw__conf_quote(char *buf, size_t n, const char *s) {
  size_t limit = n > 24 ? n - 16 : 0, o = 0;
  buf[o++] = '"';
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    if (o >= limit && (*p & 0xc0) != 0x80) { /* cut between characters, never inside one */
      memcpy(buf + o, "...", 3);
      o += 3;
      break;
    }
    if (*p == '"' || *p == '\\')
      o += (size_t)snprintf(buf + o, n - o, "\\%c", *p);
    else if (*p == '\n')
      o += (size_t)snprintf(buf + o, n - o, "\\n");
    else if (*p < 0x20 || *p == 0x7f)
      o += (size_t)snprintf(buf + o, n - o, "\\x%02x", *p);
    else
      buf[o++] = (char)*p;
  }
  buf[o++] = '"';
  buf[o] = '\0';
  return buf;
}

const char *sw__conf_describe(char *buf, size_t n, const cJSON *it) {
  if (cJSON_IsString(it)) return sw__conf_quote(buf, n, it->valuestring);
  if (cJSON_IsNumber(it)) {
    double v = it->valuedouble;
    if (v > -1e15 && v < 1e15 && v == (double)(long long)v) /* range first: the cast of inf is UB */
      snprintf(buf, n, "%lld", (long long)v);
    else
      snprintf(buf, n, "%g", v);
    return buf;
  }
  snprintf(buf, n, "%s", cJSON_IsTrue(it) ? "true" : cJSON_IsFalse(it) ? "false" : cJSON_IsNull(it) ? "null"
                         : cJSON_IsArray(it) ? "a list" : cJSON_IsObject(it) ? "a mapping" : "a value");
  return buf;
}

/* ---- sizes and durations ---- */

static const struct unit { const char *name; uint64_t mult; } size_units[] = {
    {"TiB", SW__GIB << 10}, {"GiB", SW__GIB}, {"MiB", SW__MIB}, {"KiB", SW__KIB}, {"B", 1}, {"", 1},
};
static const struct unit duration_units[] = { /* largest first: compounds go downwards */
    {"d", 86400000}, {"h", 3600000}, {"ms", 1}, {"m", 60000}, {"s", 1000},
};
static const int duration_rank[] = {0, 1, 4, 2, 3}; /* order of duration_units by size */

/* Reads decimal digits at *p; false if none. *big set on overflow. */
static bool digits(const char **p, uint64_t *v, bool *big) {
  const char *s = *p;
  *v = 0;
  while (*s >= '0' && *s <= '9') {
    unsigned d = (unsigned)(*s++ - '0');
    if (*v > (UINT64_MAX - d) / 10) *big = true;
    else *v = *v * 10 + d;
  }
  bool any = s != *p;
  *p = s;
  return any;
}

int sw__conf_parse_size(const char *s, uint64_t *out, const char **hint) {
  uint64_t v;
  bool big = false;
  if (hint) *hint = NULL;
  if (!digits(&s, &v, &big)) return SW_EPARSE;
  if (*s == ' ') s++;
  for (size_t i = 0; i < sizeof size_units / sizeof size_units[0]; i++) {
    if (strcmp(s, size_units[i].name)) continue;
    if (big || v > UINT64_MAX / size_units[i].mult) return SW_ETOOBIG;
    *out = v * size_units[i].mult;
    return 0;
  }
  if (hint && *s && strchr("kKmMgGtT", *s)) *hint = "use KiB/MiB/GiB";
  return SW_EPARSE;
}

int sw__conf_parse_duration(const char *s, uint64_t *out, const char **hint) {
  uint64_t total = 0, v;
  int last = -1;
  bool big = false;
  if (hint) *hint = NULL;
  if (!*s) return SW_EPARSE;
  while (*s) {
    if (!digits(&s, &v, &big)) return SW_EPARSE;
    size_t i, n = sizeof duration_units / sizeof duration_units[0];
    for (i = 0; i < n; i++)
      if (!strncmp(s, duration_units[i].name, strlen(duration_units[i].name))) break;
    if (i == n) return SW_EPARSE;
    if (duration_rank[i] <= last) {
      if (hint) *hint = "write units from largest to smallest, like 1h30m";
      return SW_EPARSE;
    }
    last = duration_rank[i];
    s += strlen(duration_units[i].name);
    if (big || v > (UINT64_MAX - total) / duration_units[i].mult) big = true;
    else total += v * duration_units[i].mult;
  }
  if (big) return SW_ETOOBIG;
  *out = total;
  return 0;
}

int sw_parse_size(const char *s, uint64_t *bytes) {
  return s && !sw__conf_parse_size(s, bytes, NULL) ? 0 : SW_EPARSE;
}

int sw_parse_duration(const char *s, uint64_t *ms) {
  return s && !sw__conf_parse_duration(s, ms, NULL) ? 0 : SW_EPARSE;
}

void sw__conf_format_size(char *buf, size_t n, uint64_t bytes) {
  for (size_t i = 0; bytes && i < 4; i++) {
    if (bytes % size_units[i].mult == 0) {
      snprintf(buf, n, "%llu%s", (unsigned long long)(bytes / size_units[i].mult), size_units[i].name);
      return;
    }
  }
  snprintf(buf, n, "%lluB", (unsigned long long)bytes);
}

void sw__conf_format_duration(char *buf, size_t n, uint64_t ms) {
  static const int order[] = {0, 1, 3, 4, 2}; /* d h m s ms */
  size_t o = 0;
  buf[0] = '\0';
  for (size_t k = 0; k < 5 && o < n; k++) {
    const struct unit *u = &duration_units[order[k]];
    if (ms >= u->mult || (ms == 0 && u->mult == 1 && o == 0)) {
      o += (size_t)snprintf(buf + o, n - o, "%llu%s", (unsigned long long)(ms / u->mult), u->name);
      ms %= u->mult;
    }
  }
}

/* ---- globs, names, suggestions, paths ---- */

const char *sw__conf_glob_problem(const char *g) {
  if (!*g) return "empty pattern";
  if (strstr(g, "**")) return "\"**\" is not supported";
  for (const char *p = g; *p; p++) {
    if (*p == '\\') {
      if (!p[1]) return "trailing backslash";
      p++;
    } else if (*p == '[') {
      const char *q = p + 1;
      if (*q == '!' || *q == '^') q++;
      if (*q == ']') q++; /* a leading ']' is a member, not the end */
      while (*q && *q != ']') q++;
      if (!*q) return "unterminated [";
      p = q;
    }
  }
  return NULL;
}

bool sw__conf_valid_name(const char *s) {
  size_t n = strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-");
  return n > 0 && !s[n];
}

bool sw__conf_valid_label_name(const char *s) {
  size_t n = strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_");
  return n > 0 && !s[n] && !isdigit((unsigned char)s[0]);
}

char *sw__conf_resolve(const char *basedir, const char *p, bool glob) {
  if (p[0] == '/') return strdup(p);
  while (p[0] == '.' && p[1] == '/') p += 2 + strspn(p + 2, "/");
  if (!strcmp(p, ".")) p = "";
  size_t n = strlen(basedir), len = 2 * n + strlen(p) + 2, o = 0;
  char *out = malloc(len);
  if (!out) return NULL;
  for (const char *s = basedir; *s; s++) {
    if (glob && strchr("*?[\\", *s)) out[o++] = '\\'; /* the directory is literal, not a pattern */
    out[o++] = *s;
  }
  if (*p && (o == 0 || out[o - 1] != '/')) out[o++] = '/';
  memcpy(out + o, p, strlen(p) + 1);
  return out;
}

void sw__conf_check_unique(struct sw__conf_ctx *c, const char *noun, void *elems, size_t n, size_t size,
                         size_t name_off) {
  char q[96];
  for (size_t i = 1; i < n; i++) {
    const char *a = *(char **)((char *)elems + i * size + name_off);
    for (size_t j = 0; a && j < i; j++) {
      const char *b = *(char **)((char *)elems + j * size + name_off);
      if (!b || strcmp(a, b)) continue;
      size_t saved = sw__conf_path_index(c, i);
      sw__conf_path_key(c, "name");
      sw__conf_err(c, "duplicate %s name %s", noun, sw__conf_quote(q, sizeof q, a));
      sw__conf_path_pop(c, saved);
      break;
    }
  }
}
