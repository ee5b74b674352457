/* convert.c - the schema walk (sw__conf_apply_table: two passes over one mapping, see
 * config.c) and one converter per schema row type: check a cJSON value, report what is wrong
 * with it ("FILE: key.path: reason"), and write it into the struct field only when valid. The
 * walk pushes the key onto the path before it calls a converter; converters of nested tables
 * and lists of tables walk them in turn, which is why both live in this file.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "../../common/log.h"
#include "../../common/text.h"
#include "../../common/strdist.h"
#include "schema.h"

#define SECRET_MAX (64 * SW__KIB)
#define FIELD SW__CONF_FIELD

static void set_str(void *base, size_t off, char *v) {
  char **p = FIELD(base, off, char *);
  free(*p);
  *p = v;
}

/* ---- strings ---- */

static bool is_url(const char *s) {
  return (!strncmp(s, "http://", 7) && s[7]) || (!strncmp(s, "https://", 8) && s[8]);
}

static bool valid_listen(const char *s) {
  if (!*s || !strcmp(s, "0")) return true; /* off */
  char host[1024];
  unsigned port; /* 0: any free port (the agent logs the one it got) */
  return sw_listen_split(s, host, sizeof host, &port) == 0;
}

static bool regex_ok(struct sw__conf_ctx *c, const char *s) {
  int ec;
  PCRE2_SIZE off;
  /* Same options as agent/tail/tail.c compiles multiline.start with: a pattern passes here iff it
   * compiles there. */
  pcre2_code *re = pcre2_compile((PCRE2_SPTR)s, PCRE2_ZERO_TERMINATED, 0, &ec, &off, NULL);
  if (re) {
    pcre2_code_free(re);
    return true;
  }
  PCRE2_UCHAR msg[256];
  if (ec == PCRE2_ERROR_HEAP_FAILED) {
    c->nomem = true;
    return false;
  }
  if (pcre2_get_error_message(ec, msg, sizeof msg) < 0) snprintf((char *)msg, sizeof msg, "error %d", ec);
  sw__conf_err(c, "bad pattern at offset %zu: %s", (size_t)off, (const char *)msg);
  return false;
}

/* Checks s against the row's flags; returns a new (resolved) copy, or NULL when reported. */
static char *string_value(struct sw__conf_ctx *c, unsigned flags, const char *s) {
  char q[320];
  const char *why;
  if ((flags & SW__CF_NONEMPTY) && !*s) {
    sw__conf_err(c, "must not be empty");
    return NULL;
  }
  if ((flags & SW__CF_NAME) && !sw__conf_valid_name(s)) {
    sw__conf_err(c, "invalid name %s: use letters, digits, '_', '.', '-'", sw__conf_quote(q, sizeof q, s));
    return NULL;
  }
  if ((flags & SW__CF_URL) && !is_url(s)) { /* not echoed: URLs may carry credentials */
    sw__conf_err(c, "expected an http:// or https:// URL");
    return NULL;
  }
  if ((flags & SW__CF_LISTEN) && !valid_listen(s)) {
    sw__conf_err(c, "expected HOST:PORT like 127.0.0.1:2020, got %s", sw__conf_quote(q, sizeof q, s));
    return NULL;
  }
  why = flags & SW__CF_GLOB ? sw__conf_glob_problem(s) : NULL;
  if (why) {
    sw__conf_err(c, "bad glob %s: %s", sw__conf_quote(q, sizeof q, s), why);
    return NULL;
  }
  if ((flags & SW__CF_REGEX) && !regex_ok(c, s)) return NULL;
  char *v = flags & (SW__CF_PATH | SW__CF_GLOB) ? sw__conf_resolve(c->basedir, s, flags & SW__CF_GLOB) : strdup(s);
  if (!v) {
    c->nomem = true;
    return NULL;
  }
  if ((flags & SW__CF_READABLE) && access(v, R_OK)) {
    sw__conf_err(c, "cannot read %s: %s", sw__conf_quote(q, sizeof q, v), strerror(errno));
    free(v);
    return NULL;
  }
  return v;
}

static void conv_string(struct sw__conf_ctx *c, const struct sw__conf_row *r, const cJSON *it, void *base) {
  char d[96];
  if (!cJSON_IsString(it)) {
    sw__conf_err(c, "expected a string, got %s", sw__conf_describe(d, sizeof d, it));
    return;
  }
  char *v = string_value(c, r->flags, it->valuestring);
  if (v) set_str(base, r->offset, v);
}

/* ---- scalars ---- */

static void conv_bool(struct sw__conf_ctx *c, const struct sw__conf_row *r, const cJSON *it, void *base) {
  char d[96];
  const char *s = cJSON_IsString(it) ? it->valuestring : "";
  if (cJSON_IsBool(it) || !strcmp(s, "true") || !strcmp(s, "false"))
    *FIELD(base, r->offset, bool) = cJSON_IsTrue(it) || !strcmp(s, "true");
  else
    sw__conf_err(c, "expected true or false, got %s", sw__conf_describe(d, sizeof d, it));
}

/* A whole non-negative number (YAML integer, or digits in a string). 0, SW_EPARSE (*neg set
 * for negative whole numbers) or SW_ETOOBIG. */
static int item_uint(const cJSON *it, uint64_t *v, bool *neg) {
  *neg = false;
  if (cJSON_IsNumber(it)) {
    double x = it->valuedouble;
    if (!isfinite(x) || x != floor(x)) return SW_EPARSE;
    *neg = x < 0;
    if (*neg) return SW_EPARSE;
    if (x >= 18446744073709551616.0) return SW_ETOOBIG;
    *v = (uint64_t)x;
    return 0;
  }
  const char *s = cJSON_IsString(it) ? it->valuestring : "";
  if (!*s || strspn(s, "0123456789") != strlen(s)) return SW_EPARSE;
  uint64_t acc = 0;
  for (; *s; s++) {
    unsigned dgt = (unsigned)(*s - '0');
    if (acc > (UINT64_MAX - dgt) / 10) return SW_ETOOBIG;
    acc = acc * 10 + dgt;
  }
  *v = acc;
  return 0;
}

static void format_bound(const struct sw__conf_row *r, uint64_t v, char *buf, size_t n) {
  if (r->type == SW__CT_SIZE) sw__conf_format_size(buf, n, v);
  else if (r->type == SW__CT_DURATION) sw__conf_format_duration(buf, n, v);
  else snprintf(buf, n, "%llu", (unsigned long long)v);
}

/* Range check, then store (u32 or u64 by the row's width). */
static void store_uint(struct sw__conf_ctx *c, const struct sw__conf_row *r, uint64_t v, void *base) {
  char b[48];
  if (v < r->min || (r->max && v > r->max)) {
    format_bound(r, v < r->min ? r->min : r->max, b, sizeof b);
    sw__conf_err(c, "must be at %s %s", v < r->min ? "least" : "most", b);
  } else if (r->type == SW__CT_UINT && r->width == sizeof(uint32_t)) {
    *FIELD(base, r->offset, uint32_t) = (uint32_t)v;
  } else {
    *FIELD(base, r->offset, uint64_t) = v;
  }
}

static void conv_uint(struct sw__conf_ctx *c, const struct sw__conf_row *r, const cJSON *it, void *base) {
  char d[96], b[48];
  uint64_t v = 0;
  bool neg;
  int rc = item_uint(it, &v, &neg);
  if (neg || (rc == SW_ETOOBIG && r->max)) {
    format_bound(r, neg ? r->min : r->max, b, sizeof b);
    sw__conf_err(c, "must be at %s %s", neg ? "least" : "most", b);
  } else if (rc == SW_ETOOBIG) {
    sw__conf_err(c, "%s is too large", sw__conf_describe(d, sizeof d, it));
  } else if (rc) {
    sw__conf_err(c, "expected an integer, got %s", sw__conf_describe(d, sizeof d, it));
  } else {
    store_uint(c, r, v, base);
  }
}

static void conv_size(struct sw__conf_ctx *c, const struct sw__conf_row *r, const cJSON *it, void *base) {
  char d[96];
  const char *hint = NULL;
  uint64_t v = 0;
  bool neg;
  int rc = cJSON_IsString(it) ? sw__conf_parse_size(it->valuestring, &v, &hint) : item_uint(it, &v, &neg);
  sw__conf_describe(d, sizeof d, it);
  if (rc == SW_ETOOBIG)
    sw__conf_err(c, "size %s is too large", d);
  else if (rc)
    sw__conf_err(c, "expected a size like 64KiB, got %s%s%s%s", d, hint ? " (" : "", hint ? hint : "", hint ? ")" : "");
  else
    store_uint(c, r, v, base);
}

static void conv_duration(struct sw__conf_ctx *c, const struct sw__conf_row *r, const cJSON *it, void *base) {
  char d[96], h[64] = "";
  const char *hint = NULL;
  uint64_t v = 0, bare = 0;
  bool neg, bare_number = !item_uint(it, &bare, &neg); /* 5 or "5": the unit is missing */
  int rc = cJSON_IsString(it) ? sw__conf_parse_duration(it->valuestring, &v, &hint) : SW_EPARSE;
  if (rc && bare_number)
    snprintf(h, sizeof h, " (add a unit, e.g. %llus)", (unsigned long long)bare);
  else if (hint)
    snprintf(h, sizeof h, " (%s)", hint);
  sw__conf_describe(d, sizeof d, it);
  if (rc == SW_ETOOBIG)
    sw__conf_err(c, "duration %s is too large", d);
  else if (rc)
    sw__conf_err(c, "expected a duration like 500ms, 2s, 5m, 1h, 7d, got %s%s", d, h);
  else
    store_uint(c, r, v, base);
}

static void conv_enum(struct sw__conf_ctx *c, const struct sw__conf_row *r, const cJSON *it, void *base) {
  int idx = -1;
  for (int i = 0; r->values[i] && cJSON_IsString(it); i++)
    if (!strcmp(r->values[i], it->valuestring)) idx = i;
  if (idx < 0) {
    char list[256] = "";
    for (int i = 0; r->values[i]; i++) {
      if (i) strncat(list, ", ", sizeof list - strlen(list) - 1);
      strncat(list, r->values[i], sizeof list - strlen(list) - 1);
    }
    sw__conf_err(c, "must be one of: %s", list);
  } else if (r->flags & SW__CF_ENUM_STR) {
    char *v = strdup(r->values[idx]);
    if (!v) c->nomem = true;
    else set_str(base, r->offset, v);
  } else {
    *FIELD(base, r->offset, int) = idx;
  }
}

/* ---- lists, maps ---- */

static void free_list(char **l, size_t n) {
  for (size_t i = 0; i < n; i++) free(l[i]);
  free(l);
}

static void conv_strlist(struct sw__conf_ctx *c, const struct sw__conf_row *r, const cJSON *it, void *base) {
  char d[96];
  bool one = cJSON_IsString(it);
  if (!one && !cJSON_IsArray(it)) {
    sw__conf_err(c, "expected a list of strings");
    return;
  }
  size_t n = one ? 1 : (size_t)cJSON_GetArraySize(it), k = 0, i = 0;
  if (!n && (r->flags & SW__CF_NONEMPTY)) {
    sw__conf_err(c, "must not be empty");
    return;
  }
  char **l = calloc(n ? n : 1, sizeof *l);
  if (!l) {
    c->nomem = true;
    return;
  }
  for (const cJSON *el = one ? it : it->child; el && k < n; el = one ? NULL : el->next, i++) {
    size_t saved = one ? c->pathlen : sw__conf_path_index(c, i);
    if (cJSON_IsRaw(el)) {
      /* reported by the ${ENV} pass */
    } else if (!cJSON_IsString(el)) {
      sw__conf_err(c, "expected a string, got %s", sw__conf_describe(d, sizeof d, el));
    } else {
      char *v = string_value(c, r->flags & ~(unsigned)SW__CF_NONEMPTY, el->valuestring);
      if (v) l[k++] = v;
    }
    sw__conf_path_pop(c, saved);
  }
  if (!k) { /* an empty list is no list */
    free(l);
    l = NULL;
  }
  free_list(*FIELD(base, r->offset, char **), *FIELD(base, r->count_offset, size_t));
  *FIELD(base, r->offset, char **) = l;
  *FIELD(base, r->count_offset, size_t) = k;
}

/* A list of non-empty strings without '\n', joined by '\n' (SW__CF_KV_LIST); NULL when it is
 * empty or invalid (reported) or on ENOMEM (c->nomem). */
static char *join_list(struct sw__conf_ctx *c, const cJSON *list) {
  char d[96];
  size_t len = 0, i = 0;
  int bad = 0;
  for (const cJSON *el = list->child; el; el = el->next, i++) {
    size_t saved = sw__conf_path_index(c, i);
    if (!cJSON_IsString(el) || !el->valuestring[0] || strchr(el->valuestring, '\n')) {
      sw__conf_err(c, "expected a non-empty one-line string, got %s", sw__conf_describe(d, sizeof d, el));
      bad = 1;
    } else {
      len += strlen(el->valuestring) + 1;
    }
    sw__conf_path_pop(c, saved);
  }
  if (bad) return NULL;
  if (!len) {
    sw__conf_err(c, "must not be empty");
    return NULL;
  }
  char *out = malloc(len), *p = out;
  if (!out) {
    c->nomem = true;
    return NULL;
  }
  for (const cJSON *el = list->child; el; el = el->next) {
    size_t n = strlen(el->valuestring);
    memcpy(p, el->valuestring, n);
    p += n;
    *p++ = el->next ? '\n' : '\0';
  }
  return out;
}

static void conv_kvmap(struct sw__conf_ctx *c, const struct sw__conf_row *r, const cJSON *it, void *base) {
  char d[96];
  if (!cJSON_IsObject(it)) {
    sw__conf_err(c, "expected a mapping of strings, got %s", sw__conf_describe(d, sizeof d, it));
    return;
  }
  size_t n = (size_t)cJSON_GetArraySize(it), k = 0;
  struct sw_kv *kv = calloc(n ? n : 1, sizeof *kv);
  if (!kv) {
    c->nomem = true;
    return;
  }
  for (const cJSON *el = it->child; el && k < n; el = el->next) {
    size_t saved = sw__conf_path_key(c, el->string);
    if (!sw__conf_valid_label_name(el->string)) {
      sw__conf_err(c, "invalid label name: use letters, digits and '_', not starting with a digit");
    } else if (cJSON_IsRaw(el)) {
      /* reported by the ${ENV} pass */
    } else if (cJSON_IsString(el) || ((r->flags & SW__CF_KV_LIST) && cJSON_IsArray(el))) {
      char *key = strdup(el->string);
      char *v = cJSON_IsString(el) ? strdup(el->valuestring) : join_list(c, el); /* reports */
      if (key && v) {
        kv[k++] = (struct sw_kv){key, v};
      } else {
        free(key);
        free(v);
        if (!key || cJSON_IsString(el)) c->nomem = true;
      }
    } else {
      sw__conf_err(c, "expected a string%s, got %s", r->flags & SW__CF_KV_LIST ? " or a list of strings" : "",
                   sw__conf_describe(d, sizeof d, el));
    }
    sw__conf_path_pop(c, saved);
  }
  if (!k) { /* an empty map is no map */
    free(kv);
    kv = NULL;
  }
  *FIELD(base, r->offset, struct sw_kv *) = kv;
  *FIELD(base, r->count_offset, size_t) = k;
}

static void conv_array(struct sw__conf_ctx *c, const struct sw__conf_row *r, const cJSON *it, void *base) {
  char d[96];
  const struct sw__conf_table *t = r->table;
  if (!cJSON_IsArray(it)) {
    sw__conf_err(c, "expected a list, got %s", sw__conf_describe(d, sizeof d, it));
    return;
  }
  size_t n = (size_t)cJSON_GetArraySize(it), i = 0;
  if (!n) return;
  char *elems = calloc(n, t->elem_size);
  if (!elems) {
    c->nomem = true;
    return;
  }
  /* Stored before filling: free_table() frees whatever the elements got. */
  *FIELD(base, r->offset, void *) = elems;
  *FIELD(base, r->count_offset, size_t) = n;
  for (const cJSON *el = it->child; el && i < n; el = el->next, i++) {
    size_t saved = sw__conf_path_index(c, i);
    if (cJSON_IsObject(el))
      sw__conf_apply_table(c, t, el, elems + i * t->elem_size);
    else if (!cJSON_IsRaw(el))
      sw__conf_err(c, "expected a mapping, got %s", sw__conf_describe(d, sizeof d, el));
    sw__conf_path_pop(c, saved);
  }
  if (t->check_list) t->check_list(c, elems, n);
}

/* ---- secrets ---- */

/* g is a group the agent runs with. */
static bool own_group(gid_t g) {
  gid_t groups[256];
  if (g == getegid()) return true;
  int n = getgroups(sizeof groups / sizeof *groups, groups);
  for (int i = 0; i < n; i++)
    if (groups[i] == g) return true;
  return false;
}

/* A secret others can read is one leak away: warn (never failing the load: the agent still
 * works), naming the key and the path, never the content. Group read is fine only when it is
 * how the agent itself reads the file: owned by another user, in a group of the agent's (the
 * packaged host setup root:spillway 0640, a Kubernetes Secret with fsGroup and 0440). */
static void warn_exposed(const struct sw__conf_ctx *c, const char *quoted, const struct stat *st) {
  char who[64] = "";
  if (st->st_mode & S_IROTH)
    snprintf(who, sizeof who, "every user");
  else if ((st->st_mode & S_IRGRP) && (st->st_uid == geteuid() || !own_group(st->st_gid)))
    snprintf(who, sizeof who, "its group (gid %u)", (unsigned)st->st_gid);
  if (who[0])
    SW_LOG(SW_L_WARN, "config", "%s: %s: secret file %s is readable by %s (mode %04o): make it "
           "readable by the agent only (chmod 0600; or 0640 owned by another user with a group of "
           "the agent's)", c->file, c->pathlen ? c->path : "?", quoted, who,
           (unsigned)(st->st_mode & 07777));
}

/* Reads a secret file: one trailing "\n" or "\r\n" stripped. The content never goes into a
 * message. Returns a new string or NULL when reported. */
static char *read_secret(struct sw__conf_ctx *c, const char *path) {
  char q[320];
  const char *why = NULL;
  size_t n = 0;
  char *buf = NULL;
  bool ok = false;
  struct stat st;
  sw__conf_quote(q, sizeof q, path);
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK); /* a FIFO must not hang us */
  if (fd < 0 || fstat(fd, &st)) {
    why = strerror(errno);
    goto cleanup;
  }
  if (!S_ISREG(st.st_mode)) {
    why = "not a regular file";
    goto cleanup;
  }
  warn_exposed(c, q, &st);
  buf = malloc(SECRET_MAX + 2);
  if (!buf) {
    c->nomem = true;
    goto cleanup;
  }
  while (n <= SECRET_MAX) {
    ssize_t got = read(fd, buf + n, SECRET_MAX + 1 - n);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) why = strerror(errno);
    if (got <= 0) break;
    n += (size_t)got;
  }
  if (why) goto cleanup;
  if (n > SECRET_MAX) {
    sw__conf_err(c, "secret file %s is larger than 64KiB", q);
    goto cleanup;
  }
  if (n && buf[n - 1] == '\n') n -= 1 + (n > 1 && buf[n - 2] == '\r');
  if (!n)
    sw__conf_err(c, "secret file %s is empty", q);
  else if (memchr(buf, '\0', n))
    sw__conf_err(c, "secret file %s contains a NUL byte", q);
  else
    ok = true;
  buf[n] = '\0';
cleanup:
  if (fd >= 0) close(fd);
  if (why) sw__conf_err(c, "cannot read secret file %s: %s", q, why);
  if (buf && !ok) {
    explicit_bzero(buf, SECRET_MAX + 2);
    free(buf);
    buf = NULL;
  }
  return buf;
}

static void conv_secret(struct sw__conf_ctx *c, const struct sw__conf_row *r, const cJSON *it, void *base) {
  char d[96];
  if (!cJSON_IsString(it)) {
    sw__conf_err(c, "expected a string, got %s", sw__conf_describe(d, sizeof d, it));
    return;
  }
  char *path = string_value(c, SW__CF_NONEMPTY | SW__CF_PATH, it->valuestring);
  char *v = path ? read_secret(c, path) : NULL;
  if (v) set_str(base, r->offset, v);
  free(path);
}

/* ---- the walk ---- */

void sw__conf_convert(struct sw__conf_ctx *c, const struct sw__conf_row *r, const cJSON *it, void *base) {
  char d[96];
  switch (r->type) {
  case SW__CT_STRING: conv_string(c, r, it, base); break;
  case SW__CT_BOOL: conv_bool(c, r, it, base); break;
  case SW__CT_UINT: conv_uint(c, r, it, base); break;
  case SW__CT_SIZE: conv_size(c, r, it, base); break;
  case SW__CT_DURATION: conv_duration(c, r, it, base); break;
  case SW__CT_ENUM: conv_enum(c, r, it, base); break;
  case SW__CT_STRLIST: conv_strlist(c, r, it, base); break;
  case SW__CT_KVMAP: conv_kvmap(c, r, it, base); break;
  case SW__CT_ARRAY: conv_array(c, r, it, base); break;
  case SW__CT_SECRET: conv_secret(c, r, it, base); break;
  case SW__CT_UNSUPPORTED: sw__conf_err(c, "not supported by this build yet"); break;
  case SW__CT_OBJECT:
    if (cJSON_IsObject(it)) sw__conf_apply_table(c, r->table, it, base);
    else sw__conf_err(c, "expected a mapping, got %s", sw__conf_describe(d, sizeof d, it));
    break;
  }
}

/* ---- the walk ---- */

static bool applies(const struct sw__conf_row *r, int kind) {
  return !r->only || (kind >= 0 && (r->only & (1u << kind)));
}

static void unknown_key(struct sw__conf_ctx *c, const struct sw__conf_table *t, int kind, const char *key) {
  const char *best = NULL;
  unsigned bestd = 99;
  for (size_t i = 0; i < t->nrows; i++) {
    if (kind >= 0 && !applies(&t->rows[i], kind)) continue;
    unsigned dist = sw_edit_distance(key, t->rows[i].key);
    if (dist < bestd) {
      bestd = dist;
      best = t->rows[i].key;
    }
  }
  unsigned allowed = best ? (unsigned)(strlen(best) + 2) / 4 : 0;
  allowed = allowed < 1 ? 1 : allowed > 3 ? 3 : allowed;
  if (best && bestd <= allowed)
    sw__conf_err(c, "unknown key (did you mean \"%s\"?)", best);
  else
    sw__conf_err(c, "unknown key");
}

void sw__conf_apply_table(struct sw__conf_ctx *c, const struct sw__conf_table *t, const cJSON *obj, void *base) {
  const struct sw__conf_row *disc = t->discriminator >= 0 ? &t->rows[t->discriminator] : NULL;
  const cJSON *it = disc ? cJSON_GetObjectItemCaseSensitive(obj, disc->key) : NULL;
  int kind = -1;
  for (int i = 0; cJSON_IsString(it) && disc->values[i]; i++)
    if (!strcmp(disc->values[i], it->valuestring)) kind = i;
  for (it = obj ? obj->child : NULL; it; it = it->next) { /* pass 1: the keys present */
    const struct sw__conf_row *r = NULL;
    for (size_t i = 0; i < t->nrows && !r; i++)
      if (!strcmp(t->rows[i].key, it->string)) r = &t->rows[i];
    size_t saved = sw__conf_path_key(c, it->string);
    if (!r && t == &sw__conf_root && !strncmp(it->string, "x-", 2)) {
      /* extension keys: a place for YAML anchors (as in docker-compose) */
    } else if (!r)
      unknown_key(c, t, kind, it->string);
    else if (!applies(r, kind) && kind >= 0)
      sw__conf_err(c, "key \"%s\" is not valid for %s type %s", r->key, t->kind_noun, disc->values[kind]);
    else if (applies(r, kind) && !cJSON_IsNull(it) && !cJSON_IsRaw(it))
      sw__conf_convert(c, r, it, base);
    sw__conf_path_pop(c, saved);
  }
  for (size_t i = 0; i < t->nrows; i++) { /* pass 2: the rows absent */
    const struct sw__conf_row *r = &t->rows[i];
    it = cJSON_GetObjectItemCaseSensitive(obj, r->key);
    if (!applies(r, kind) || (it && !cJSON_IsNull(it))) continue;
    size_t saved = sw__conf_path_key(c, r->key);
    if (r->flags & SW__CF_REQUIRED) {
      sw__conf_err(c, "required");
    } else if (r->type == SW__CT_OBJECT) {
      sw__conf_apply_table(c, r->table, NULL, base);
    } else if (r->def) {
      cJSON def = {.type = cJSON_String, .valuestring = (char *)r->def}; /* read only */
      sw__conf_convert(c, r, &def, base);
    }
    sw__conf_path_pop(c, saved);
  }
  if (t->check) t->check(c, base, obj, kind);
}
