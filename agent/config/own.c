/* own.c - no source glob may read the agent's own files (tail/ownfiles.h): a glob that can
 * match files in data_dir (or spells it out), or a file sink's output, is refused with its key path. The
 * comparison is lexical, plus the real path of data_dir and of a sink's directory when they
 * exist (a symlinked data_dir); what a glob finds through other symlinks is skipped at run
 * time instead (tail/scan.c). */
#include <errno.h>
#include <fnmatch.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "schema.h"
#include "../tail/ownfiles.h"

/* realpath of path, or of its directory joined with its last component; NULL if neither
 * exists (or on ENOMEM: *nomem set). */
static char *real_or_parent(const char *path, bool *nomem) {
  char *r = realpath(path, NULL), dir[PATH_MAX];
  const char *slash = strrchr(path, '/');
  if (!r && errno == ENOMEM) *nomem = true;
  if (r || !slash || slash == path || (size_t)(slash - path) >= sizeof dir) return r;
  memcpy(dir, path, (size_t)(slash - path));
  dir[slash - path] = '\0';
  char *rd = realpath(dir, NULL);
  char *out = rd ? malloc(strlen(rd) + strlen(slash) + 1) : NULL;
  if (out) {
    memcpy(out, rd, strlen(rd));
    memcpy(out + strlen(rd), slash, strlen(slash) + 1);
  } else if (rd || errno == ENOMEM) {
    *nomem = true;
  }
  free(rd);
  return out;
}

/* sw_own_glob_* result as a bool; ENOMEM (-1) is recorded for the load to fail with. */
static bool yes(struct sw__conf_ctx *c, int rc) {
  if (rc < 0) c->nomem = true;
  return rc == 1;
}

/* As tail/scan.c applies exclude. */
static bool excluded(struct sw__conf_ctx *c, const struct sw_source_conf *s, const char *path) {
  for (size_t i = 0; i < s->nexclude; i++) {
    int m = s->exclude[i] ? fnmatch(s->exclude[i], path, FNM_PATHNAME) : FNM_NOMATCH;
    if (m == 0) return true;
    if (m != FNM_NOMATCH) c->nomem = true;
  }
  return false;
}

/* The file sink whose output the glob matches (and exclude does not take back), or NULL. */
static const struct sw_sink_conf *sink_matched(struct sw__conf_ctx *c, const struct sw_config *cfg,
                                               const struct sw_source_conf *s, const char *glob) {
  for (size_t k = 0; k < cfg->nsinks; k++) {
    const struct sw_sink_conf *sk = &cfg->sinks[k];
    if (sk->type != SW_SINK_FILE || !sk->path) continue;
    char *real = real_or_parent(sk->path, &c->nomem);
    bool hit = (yes(c, sw_own_glob_matches(glob, sk->path)) && !excluded(c, s, sk->path)) ||
               (real && yes(c, sw_own_glob_matches(glob, real)) && !excluded(c, s, real));
    free(real);
    if (hit) return sk;
  }
  return NULL;
}

static void check_glob(struct sw__conf_ctx *c, const struct sw_config *cfg,
                       const struct sw_source_conf *s, const char *glob, const char *data_real) {
  char q[320], n[96];
  if (cfg->data_dir && (yes(c, sw_own_glob_reaches(glob, cfg->data_dir)) ||
                        (data_real && yes(c, sw_own_glob_reaches(glob, data_real)))))
    sw__conf_err(c, "matches files under data_dir %s (spillway.db, its -wal and -shm: the agent's "
                 "own buffer); narrow the glob or move data_dir", sw__conf_quote(q, sizeof q, cfg->data_dir));
  const struct sw_sink_conf *sk = sink_matched(c, cfg, s, glob);
  if (sk)
    sw__conf_err(c, "matches %s, the output of file sink %s: the agent would read what it writes; "
                 "narrow the glob or add the file to exclude", sw__conf_quote(q, sizeof q, sk->path),
                 sw__conf_quote(n, sizeof n, sk->name ? sk->name : ""));
}

void sw__conf_check_own(struct sw__conf_ctx *c, const struct sw_config *cfg) {
  char *data_real = cfg->data_dir ? realpath(cfg->data_dir, NULL) : NULL;
  if (cfg->data_dir && !data_real && errno == ENOMEM) c->nomem = true;
  for (size_t i = 0; i < cfg->nsources; i++) {
    const struct sw_source_conf *s = &cfg->sources[i];
    for (size_t j = 0; j < s->npaths; j++) {
      if (!s->paths[j]) continue;
      size_t saved = sw__conf_path_key(c, "sources");
      sw__conf_path_index(c, i);
      sw__conf_path_key(c, "paths");
      sw__conf_path_index(c, j);
      check_glob(c, cfg, s, s->paths[j], data_real);
      sw__conf_path_pop(c, saved);
    }
  }
  free(data_real);
}
