/* scan.c - which files belong to which retention entry: the glob's directories are
 * expanded by hand (so every directory is read with O_NOATIME: a dry run moves no timestamp),
 * then each directory's entries are sorted into families: NAME (a live file matching the glob),
 * its archives NAME.N / NAME.N.zst, temporaries NAME.N[.zst].tmp-XXXXXX and in-progress
 * archives NAME.N.zst.tmp-part-<inode> (whose NAME matches the glob). A name shaped like an
 * archive is never a live file. Only regular files count (symlinks are left alone); nothing
 * under data_dir is ever part of a family.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "../../common/log.h"
#include "internal.h"

#define FNM (FNM_PATHNAME | FNM_PERIOD)
#define MAX_DEPTH 64

int sw__ret_open_ro(const char *path) {
  int fd = open(path, O_RDONLY | O_NOATIME | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0 && errno == EPERM) fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
  return fd;
}

static DIR *open_dir(const char *path) {
  int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOATIME | O_CLOEXEC);
  if (fd < 0 && errno == EPERM) fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return NULL;
  DIR *d = fdopendir(fd);
  if (!d) close(fd);
  return d;
}

static int excluded(char *const *ex, size_t n, const char *path) {
  for (size_t i = 0; i < n; i++)
    if (fnmatch(ex[i], path, FNM) == 0) return 1;
  return 0;
}

int sw__ret_source_matches(const struct sw_config *cfg, const char *path) {
  for (size_t i = 0; i < cfg->nsources; i++) {
    const struct sw_source_conf *s = &cfg->sources[i];
    if (excluded(s->exclude, s->nexclude, path)) continue;
    for (size_t p = 0; p < s->npaths; p++)
      if (fnmatch(s->paths[p], path, FNM) == 0) return 1;
  }
  return 0;
}

/* NAME.N, NAME.N.zst, and either with .tmp-XXXXXX: the length of NAME, or 0 if not so shaped. */
static size_t parse_archive(const char *name, unsigned *num, int *zst, int *tmp) {
  size_t n = strlen(name);
  *num = 0;
  *zst = *tmp = 0;
  if (n > 11 && !memcmp(name + n - 11, ".tmp-", 5)) {
    for (size_t i = n - 6; i < n; i++)
      if (!((name[i] >= '0' && name[i] <= '9') || (name[i] >= 'a' && name[i] <= 'z') ||
            (name[i] >= 'A' && name[i] <= 'Z')))
        return 0;
    *tmp = 1;
    n -= 11;
  }
  if (n > 4 && !memcmp(name + n - 4, ".zst", 4)) {
    *zst = 1;
    n -= 4;
  }
  size_t d = 0;
  while (d < n && name[n - 1 - d] >= '0' && name[n - 1 - d] <= '9') d++;
  if (d == 0 || d > 9 || d + 1 >= n || name[n - 1 - d] != '.' || name[n - d] == '0') return 0;
  for (size_t i = n - d; i < n; i++) *num = *num * 10 + (unsigned)(name[i] - '0');
  return n - d - 1;
}

/* NAME.N.zst.tmp-part-<digits> (an in-progress archive, punch.c): the length of
 * NAME.N.zst and *ino the source's inode, or 0 if not so shaped. */
static size_t parse_part(const char *name, uint64_t *ino) {
  const char *p = strstr(name, SW__RET_PART), *d;
  size_t k = sizeof SW__RET_PART - 1;
  if (!p) return 0;
  while (strstr(p + 1, SW__RET_PART)) p = strstr(p + 1, SW__RET_PART);
  *ino = 0;
  for (d = p + k; *d >= '0' && *d <= '9' && d - (p + k) < 20; d++) *ino = *ino * 10 + (uint64_t)(*d - '0');
  return *d || d == p + k ? 0 : (size_t)(p - name);
}

struct walk {
  const struct sw_config *cfg;
  const struct sw_retention_conf *rc;
  const char *pattern;
  struct sw__ret_scan *s;
  const char *data_dir_real; /* may be NULL */
  int nomem;
};

static struct sw__ret_family *family(struct walk *w, const char *base) {
  struct sw__ret_scan *s = w->s;
  for (size_t i = 0; i < s->n; i++) /* a name belongs to the first entry that matched it */
    if (!strcmp(s->fam[i].base, base)) return s->fam[i].conf == w->rc ? &s->fam[i] : NULL;
  if (s->n >= SW__RET_MAX_FAMILIES) return NULL;
  if (s->n == s->cap) {
    size_t cap = s->cap ? 2 * s->cap : 16;
    struct sw__ret_family *f = realloc(s->fam, cap * sizeof *f);
    if (!f) {
      w->nomem = 1;
      return NULL;
    }
    s->fam = f;
    s->cap = cap;
  }
  struct sw__ret_family *f = &s->fam[s->n];
  memset(f, 0, sizeof *f);
  if (!(f->base = strdup(base))) {
    w->nomem = 1;
    return NULL;
  }
  f->conf = w->rc;
  s->n++;
  return f;
}

static int add_file(struct sw__ret_file **arr, size_t *n, size_t *cap, const struct sw__ret_file *x) {
  for (size_t i = 0; i < *n; i++) /* two globs of one entry may list a directory twice */
    if (!strcmp((*arr)[i].path, x->path)) return 1;
  if (*n == *cap) {
    size_t c = *cap ? 2 * *cap : 8;
    struct sw__ret_file *a = realloc(*arr, c * sizeof *a);
    if (!a) return 0;
    *arr = a;
    *cap = c;
  }
  (*arr)[(*n)++] = *x;
  return 2;
}

/* Files of one directory. */
static void scan_dir(struct walk *w, const char *dir) {
  char path[PATH_MAX], base[PATH_MAX];
  DIR *d = open_dir(dir);
  if (!d) return;
  struct dirent *e;
  while ((e = readdir(d))) {
    if (e->d_name[0] == '.' && (!e->d_name[1] || (e->d_name[1] == '.' && !e->d_name[2]))) continue;
    int n = snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    if (n < 0 || (size_t)n >= sizeof path) continue;
    unsigned num;
    int zst, tmp;
    uint64_t src_ino = 0;
    char shape[NAME_MAX + 1];
    size_t plen = parse_part(e->d_name, &src_ino);
    if (plen) { /* judged by its target's name, which must be NAME.N.zst */
      memcpy(shape, e->d_name, plen);
      shape[plen] = '\0';
    }
    size_t blen = parse_archive(plen ? shape : e->d_name, &num, &zst, &tmp);
    if (plen && (!blen || !zst || tmp)) blen = 0;
    const char *key = path;
    if (blen) {
      snprintf(base, sizeof base, "%s/%.*s", dir, (int)blen, e->d_name);
      key = base;
    }
    if (fnmatch(w->pattern, key, FNM) || excluded(w->rc->exclude, w->rc->nexclude, key)) continue;
    struct statx sx;
    if (statx(dirfd(d), e->d_name, AT_SYMLINK_NOFOLLOW, STATX_BASIC_STATS | STATX_BTIME, &sx) ||
        !S_ISREG(sx.stx_mode))
      continue;
    struct sw__ret_family *f = family(w, key);
    if (w->nomem) break;
    if (!f) continue;
    struct sw__ret_file x = {
        .size = sx.stx_size, .dev = (uint64_t)makedev(sx.stx_dev_major, sx.stx_dev_minor), .ino = sx.stx_ino,
        .mtime_ns = (int64_t)sx.stx_mtime.tv_sec * 1000000000 + sx.stx_mtime.tv_nsec,
        .ctime_ns = (int64_t)sx.stx_ctime.tv_sec * 1000000000 + sx.stx_ctime.tv_nsec,
        .num = blen ? num : 0, .zst = zst, .src_ino = src_ino};
    if (!blen && (sx.stx_mask & STATX_BTIME))
      x.btime_ns = (int64_t)sx.stx_btime.tv_sec * 1000000000 + sx.stx_btime.tv_nsec;
    if (!(x.path = strdup(path))) {
      w->nomem = 1;
      break;
    }
    if (!blen) {
      if (!f->live.path) f->live = x;
      else free(x.path);
      continue;
    }
    int added = plen  ? add_file(&f->parts, &f->npart, &f->partcap, &x)
                : tmp ? add_file(&f->tmps, &f->ntmp, &f->tmpcap, &x) : add_file(&f->arch, &f->narch, &f->cap, &x);
    if (added != 2) free(x.path);
    if (!added) w->nomem = 1;
  }
  closedir(d);
}

static int has_meta(const char *s, size_t n) {
  for (size_t i = 0; i < n; i++) {
    if (s[i] == '\\') i++;
    else if (s[i] == '*' || s[i] == '?' || s[i] == '[') return 1;
  }
  return 0;
}

/* Expands the directory components of pattern [p, end) below prefix, then scans each match. */
static void walk_dirs(struct walk *w, char *prefix, size_t plen, const char *p, int depth) {
  const char *slash = strchr(p, '/');
  if (!slash) { /* p is the file component */
    if (w->data_dir_real) {
      char real[PATH_MAX];
      size_t dl = strlen(w->data_dir_real);
      if (realpath(plen ? prefix : "/", real) && !strncmp(real, w->data_dir_real, dl) &&
          (real[dl] == '/' || real[dl] == '\0'))
        return; /* never touch spillway's own files */
    }
    scan_dir(w, plen ? prefix : "/");
    return;
  }
  size_t clen = (size_t)(slash - p);
  if (depth > MAX_DEPTH || plen + clen + 2 >= PATH_MAX) return;
  if (clen == 0) {
    walk_dirs(w, prefix, plen, slash + 1, depth + 1);
    return;
  }
  if (!has_meta(p, clen)) {
    size_t o = plen;
    prefix[o++] = '/';
    for (size_t i = 0; i < clen; i++) {
      if (p[i] == '\\' && i + 1 < clen) i++;
      prefix[o++] = p[i];
    }
    prefix[o] = '\0';
    walk_dirs(w, prefix, o, slash + 1, depth + 1);
    prefix[plen] = '\0';
    return;
  }
  char comp[NAME_MAX * 2 + 2];
  if (clen >= sizeof comp) return;
  memcpy(comp, p, clen);
  comp[clen] = '\0';
  DIR *d = open_dir(plen ? prefix : "/");
  if (!d) return;
  struct dirent *e;
  while ((e = readdir(d))) {
    if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..") || fnmatch(comp, e->d_name, FNM_PERIOD)) continue;
    struct stat st;
    size_t nl = strlen(e->d_name);
    if (fstatat(dirfd(d), e->d_name, &st, 0) || !S_ISDIR(st.st_mode) || plen + nl + 2 >= PATH_MAX) continue;
    prefix[plen] = '/';
    memcpy(prefix + plen + 1, e->d_name, nl + 1);
    walk_dirs(w, prefix, plen + 1 + nl, slash + 1, depth + 1);
    prefix[plen] = '\0';
  }
  closedir(d);
}

int sw__ret_scan(const struct sw_config *cfg, struct sw__ret_scan *s) {
  char prefix[PATH_MAX];
  char *ddr = cfg->data_dir ? realpath(cfg->data_dir, NULL) : NULL;
  struct walk w = {.cfg = cfg, .s = s, .data_dir_real = ddr};
  memset(s, 0, sizeof *s);
  for (size_t i = 0; i < cfg->nretention && !w.nomem; i++) {
    w.rc = &cfg->retention[i];
    for (size_t p = 0; p < w.rc->npaths && !w.nomem; p++) {
      w.pattern = w.rc->paths[p];
      if (w.pattern[0] != '/') continue; /* resolved by the config loader */
      prefix[0] = '\0';
      walk_dirs(&w, prefix, 0, w.pattern + 1, 0);
    }
  }
  free(ddr);
  if (s->n >= SW__RET_MAX_FAMILIES)
    SW_LOG(SW_L_WARN, "retention", "more than %d files match the retention globs; the rest wait",
           SW__RET_MAX_FAMILIES);
  if (w.nomem) {
    sw__ret_scan_free(s);
    return SW_ENOMEM;
  }
  return SW_OK;
}

void sw__ret_scan_free(struct sw__ret_scan *s) {
  for (size_t i = 0; i < s->n; i++) {
    struct sw__ret_family *f = &s->fam[i];
    free(f->base);
    free(f->live.path);
    for (size_t k = 0; k < f->narch; k++) free(f->arch[k].path);
    for (size_t k = 0; k < f->ntmp; k++) free(f->tmps[k].path);
    for (size_t k = 0; k < f->npart; k++) free(f->parts[k].path);
    free(f->parts);
    free(f->arch);
    free(f->tmps);
  }
  free(s->fam);
  memset(s, 0, sizeof *s);
}
