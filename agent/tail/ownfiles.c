/* ownfiles.c - the files the agent writes itself (see tail/ownfiles.h). */
#include "ownfiles.h"

#include <fnmatch.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#define FNM_GLOB (FNM_PATHNAME | FNM_PERIOD) /* what glob(3) without GLOB_PERIOD matches */

struct sw_own {
  char *data_dir;   /* as configured (absolute) */
  char *data_real;  /* realpath of data_dir once it exists; NULL before */
  char **sinks;     /* file sink outputs as configured (absolute) */
  size_t nsinks;
};

struct sw_own *sw_own_create(const struct sw_config *cfg) {
  struct sw_own *o = calloc(1, sizeof *o);
  if (!o || !(o->data_dir = strdup(cfg->data_dir))) goto oom;
  o->sinks = calloc(cfg->nsinks + 1, sizeof *o->sinks);
  if (!o->sinks) goto oom;
  for (size_t i = 0; i < cfg->nsinks; i++) {
    if (cfg->sinks[i].type != SW_SINK_FILE || !cfg->sinks[i].path) continue;
    if (!(o->sinks[o->nsinks] = strdup(cfg->sinks[i].path))) goto oom;
    o->nsinks++;
  }
  return o;
oom:
  sw_own_free(o);
  return NULL;
}

void sw_own_free(struct sw_own *o) {
  if (!o) return;
  for (size_t i = 0; i < o->nsinks; i++) free(o->sinks[i]);
  free(o->sinks);
  free(o->data_dir);
  free(o->data_real);
  free(o);
}

static const char *base_name(const char *path) {
  const char *s = strrchr(path, '/');
  return s ? s + 1 : path;
}

static int ends_with(const char *s, size_t n, const char *suffix) {
  size_t k = strlen(suffix);
  return n >= k && !memcmp(s + n - k, suffix, k);
}

/* NAME.N or NAME.N.zst (the archive names retention gives), n bytes of s. */
static int archive_shaped(const char *s, size_t n) {
  if (ends_with(s, n, ".zst")) n -= 4;
  size_t d = 0;
  while (d < n && s[n - 1 - d] >= '0' && s[n - 1 - d] <= '9') d++;
  return d > 0 && d + 1 < n && s[n - 1 - d] == '.';
}

const char *sw_own_name_why(const char *path) {
  static const char *const compressed[] = {".zst", ".gz", ".xz", ".bz2", ".lz4", ".zip"};
  const char *b = base_name(path);
  size_t n = strlen(b);
  /* retention/exec.c writes NAME.N[.zst].tmp-XXXXXX (mkstemp) and renames it when complete. */
  if (n > 11 && !memcmp(b + n - 11, ".tmp-", 5) && strspn(b + n - 6, "abcdefghijklmnopqrstuvwxyz"
                                                          "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") == 6 &&
      archive_shaped(b, n - 11))
    return "it is a temporary file of retention, still being written";
  for (size_t i = 0; i < sizeof compressed / sizeof *compressed; i++)
    if (ends_with(b, n, compressed[i])) return "it is a compressed archive, not log text";
  return NULL;
}

/* The sink's output rotated by someone (logrotate, a retention entry): NAME.N in its directory. */
static int sink_archive(const char *real, const char *sink) {
  char dir[PATH_MAX];
  const char *sb = base_name(sink), *rb = base_name(real);
  size_t sbl = strlen(sb), dl = (size_t)(sb - sink);
  if (strncmp(rb, sb, sbl) || rb[sbl] != '.' || !rb[sbl + 1] ||
      strspn(rb + sbl + 1, "0123456789") != strlen(rb + sbl + 1) || dl < 2 || dl > sizeof dir)
    return 0;
  memcpy(dir, sink, dl - 1); /* without its last slash */
  dir[dl - 1] = '\0';
  char *rd = realpath(dir, NULL);
  int same = rd && strlen(rd) == (size_t)(rb - real - 1) && !strncmp(rd, real, strlen(rd));
  free(rd);
  return same;
}

const char *sw_own_why(struct sw_own *o, const char *path, const struct stat *st) {
  const char *why = sw_own_name_why(path);
  if (why) return why;
  struct stat ss;
  for (size_t i = 0; i < o->nsinks; i++)
    if (stat(o->sinks[i], &ss) == 0 && ss.st_dev == st->st_dev && ss.st_ino == st->st_ino)
      return "it is the output of a file sink (the agent would read what it writes)";
  if (!o->data_real) o->data_real = realpath(o->data_dir, NULL); /* exists once the buffer is open */
  char *real = realpath(path, NULL);
  if (!real) return NULL; /* gone meanwhile: opening it fails and says so */
  size_t dl = o->data_real ? strlen(o->data_real) : 0;
  if (dl && !strncmp(real, o->data_real, dl) && (real[dl] == '/' || o->data_real[dl - 1] == '/'))
    why = "it is under data_dir (the agent's own buffer and state)";
  for (size_t i = 0; !why && i < o->nsinks; i++)
    if (sink_archive(real, o->sinks[i])) why = "it is a rotated copy of a file sink's output";
  free(real);
  return why;
}

/* ---- lexical comparison of globs and paths ---- */

/* path made absolute-looking and normalised: "." and empty components dropped, ".." drops the
 * one before it. Caller frees; NULL on ENOMEM. */
static char *normalize(const char *path) {
  size_t n = strlen(path);
  char *out = malloc(n + 2);
  if (!out) return NULL;
  size_t o = 0;
  for (const char *p = path; *p;) {
    while (*p == '/') p++;
    size_t k = strcspn(p, "/");
    if (k == 0) break;
    if (k == 1 && p[0] == '.') {
      /* nothing */
    } else if (k == 2 && p[0] == '.' && p[1] == '.') {
      while (o > 0 && out[o - 1] != '/') o--;
      if (o > 0) o--; /* the slash before it */
    } else {
      out[o++] = '/';
      memcpy(out + o, p, k);
      o += k;
    }
    p += k;
  }
  if (o == 0) out[o++] = '/';
  out[o] = '\0';
  return out;
}

int sw_own_glob_matches(const char *glob, const char *path) {
  char *g = normalize(glob), *p = normalize(path);
  int m = g && p ? fnmatch(g, p, FNM_GLOB) : -1; /* -1: an allocation failed inside */
  int rc = m == 0 ? 1 : m == FNM_NOMATCH ? 0 : -1;
  free(g);
  free(p);
  return rc;
}

/* Next component of *s (no leading slash) into buf; 0 at the end. */
static size_t next_comp(const char **s, char *buf, size_t cap) {
  while (**s == '/') (*s)++;
  size_t k = strcspn(*s, "/");
  if (k >= cap) k = cap - 1;
  memcpy(buf, *s, k);
  buf[k] = '\0';
  *s += strcspn(*s, "/");
  return k;
}

static int has_magic(const char *comp) { return strpbrk(comp, "*?[\\") != NULL; }

int sw_own_glob_reaches(const char *glob, const char *dir) {
  char *g = normalize(glob), *d = normalize(dir);
  char gc[NAME_MAX + 1], dc[NAME_MAX + 1];
  int rc = -1, literal = 1;
  if (!g || !d) goto cleanup;
  const char *gs = g, *ds = d;
  rc = 0;
  /* Every component of dir must be matched by the glob's component at the same depth. */
  while (next_comp(&ds, dc, sizeof dc)) {
    int m = next_comp(&gs, gc, sizeof gc) ? fnmatch(gc, dc, FNM_PERIOD) : FNM_NOMATCH;
    if (m != 0) {
      rc = m == FNM_NOMATCH ? 0 : -1;
      goto cleanup;
    }
    literal &= !has_magic(gc);
  }
  /* Then it names files in dir itself (where the agent keeps its files), or spells dir out and
   * goes deeper. A wildcard that happens to match dir on the way to deeper levels (the agent
   * makes no subdirectories) is left to the run-time check. */
  size_t depth = 0;
  while (next_comp(&gs, gc, sizeof gc)) depth++;
  rc = depth == 1 || (depth > 1 && literal);
cleanup:
  free(g);
  free(d);
  return rc;
}
