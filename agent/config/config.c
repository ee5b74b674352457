/* config.c - loading a config: text -> cJSON tree -> schema walk -> struct sw_config; freeing.
 *
 * sw_config_load_string() parses the text (config/yaml.c), expands ${ENV}, then runs
 * sw__conf_apply_table() on the root table (config/schema.c), which makes two passes over one
 * mapping: (1) every key present, in file order: unknown, not valid for this source/sink type,
 * or converted by its row; (2) every row whose key is absent (or null): "required", or its
 * default. Converters write a field only once its value is valid, so a bad key leaves its field
 * zero and the walk goes on: every problem is reported, not just the first. Whatever happens,
 * the partial struct is freed by the same rows (free_table), so there is one free path.
 * The walk and the converters, one per row type, are in config/convert.c (they recurse into
 * each other for nested tables and lists of tables).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "yaml.h"
#include "schema.h"

#define FIELD SW__CONF_FIELD

static void free_list(char **l, size_t n) {
  for (size_t i = 0; i < n; i++) free(l[i]);
  free(l);
}

static void free_table(const struct sw__conf_table *t, void *base) {
  for (size_t i = 0; i < t->nrows; i++) {
    const struct sw__conf_row *r = &t->rows[i];
    char **s = FIELD(base, r->offset, char *);
    size_t *n = FIELD(base, r->count_offset, size_t);
    switch (r->type) {
    case SW__CT_SECRET:
      if (*s) explicit_bzero(*s, strlen(*s));
      /* fall through */
    case SW__CT_STRING:
      free(*s);
      *s = NULL; /* two rows may share a field (compression) */
      break;
    case SW__CT_ENUM:
      if (r->flags & SW__CF_ENUM_STR) {
        free(*s);
        *s = NULL;
      }
      break;
    case SW__CT_STRLIST:
      free_list(*FIELD(base, r->offset, char **), *n);
      *FIELD(base, r->offset, char **) = NULL;
      break;
    case SW__CT_KVMAP:
      for (size_t k = 0; k < *n; k++) {
        free((*FIELD(base, r->offset, struct sw_kv *))[k].key);
        free((*FIELD(base, r->offset, struct sw_kv *))[k].value);
      }
      free(*FIELD(base, r->offset, struct sw_kv *));
      *FIELD(base, r->offset, struct sw_kv *) = NULL;
      break;
    case SW__CT_OBJECT: free_table(r->table, base); break;
    case SW__CT_ARRAY:
      for (size_t k = 0; k < *n; k++) free_table(r->table, *FIELD(base, r->offset, char *) + k * r->table->elem_size);
      free(*s);
      *s = NULL;
      break;
    default: break;
    }
  }
}

void sw_config_free(struct sw_config *cfg) {
  if (!cfg) return;
  free_table(&sw__conf_root, cfg);
  free(cfg->file);
  free(cfg);
}

/* ---- loading ---- */

/* Absolute directory of the config file name. Caller frees; NULL on ENOMEM. */
static char *base_dir(const char *name) {
  const char *slash = strrchr(name, '/');
  char *dir = slash ? strndup(name, slash == name ? 1 : (size_t)(slash - name)) : strdup(".");
  char cwd[PATH_MAX];
  if (!dir || dir[0] == '/' || !getcwd(cwd, sizeof cwd)) return dir;
  char *abs = sw__conf_resolve(cwd, dir, false);
  free(dir);
  return abs;
}

int sw_config_load_string(const char *name, const char *text, size_t len, struct sw_config **out,
                          struct sw_conf_errors *errs) {
  struct sw__conf_ctx c = {.file = name, .errs = errs};
  struct sw_config *cfg = NULL;
  cJSON *root = NULL;
  char *basedir = NULL;
  char d[96];
  int rc = SW_ECONFIG;
  *out = NULL;
  if (len > SW__CONF_MAX_TEXT) {
    sw__conf_err_file(&c, "larger than 4MiB");
    goto cleanup;
  }
  basedir = base_dir(name);
  if (!basedir) {
    c.nomem = true;
    goto cleanup;
  }
  c.basedir = basedir;
  rc = sw__conf_yaml_parse(&c, text, len, &root);
  if (rc) goto cleanup;
  rc = SW_ECONFIG;
  if (!cJSON_IsObject(root)) {
    sw__conf_err_file(&c, "expected a mapping at the top level, got %s", sw__conf_describe(d, sizeof d, root));
    goto cleanup;
  }
  sw__conf_expand_env(&c, root);
  cfg = calloc(1, sizeof *cfg);
  if (cfg) cfg->file = strdup(name);
  if (!cfg || !cfg->file) {
    c.nomem = true;
    goto cleanup;
  }
  sw__conf_apply_table(&c, &sw__conf_root, root, cfg);
  rc = c.nerrs ? SW_ECONFIG : 0;
cleanup:
  if (c.nomem) rc = SW_ENOMEM;
  if (!rc) {
    *out = cfg;
    cfg = NULL;
  }
  sw_config_free(cfg);
  cJSON_Delete(root);
  free(basedir);
  return rc;
}

int sw_config_load(const char *path, struct sw_config **out, struct sw_conf_errors *errs) {
  struct sw__conf_ctx c = {.file = path, .errs = errs};
  struct stat st;
  char *text = NULL;
  size_t n = 0, cap = 0;
  const char *why = NULL;
  int rc = SW_ECONFIG;
  *out = NULL;
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
  if (fd < 0 || fstat(fd, &st)) {
    why = strerror(errno);
    goto cleanup;
  }
  if (!S_ISREG(st.st_mode)) {
    why = "not a regular file";
    goto cleanup;
  }
  for (;;) {
    if (n == cap) {
      if (cap > SW__CONF_MAX_TEXT) break; /* over the limit: load_string reports it */
      cap = cap ? 2 * cap : (size_t)st.st_size + 1;
      if (cap > SW__CONF_MAX_TEXT + 1 || cap == 0) cap = SW__CONF_MAX_TEXT + 1;
      char *p = realloc(text, cap);
      if (!p) {
        rc = SW_ENOMEM;
        goto cleanup;
      }
      text = p;
    }
    ssize_t got = read(fd, text + n, cap - n);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) why = strerror(errno);
    if (got <= 0) break;
    n += (size_t)got;
  }
  if (!why) rc = sw_config_load_string(path, text ? text : "", n, out, errs);
cleanup:
  if (why) sw__conf_err_file(&c, "cannot read: %s", why);
  if (fd >= 0) close(fd);
  free(text);
  return rc;
}
