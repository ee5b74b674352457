/* scan.c - glob discovery, rename/delete detection and inotify watches. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <glob.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../common/log.h"
#include "internal.h"

static int excluded(const struct sw_source_conf *c, const char *path) {
  for (size_t i = 0; i < c->nexclude; i++)
    if (fnmatch(c->exclude[i], path, FNM_PATHNAME) == 0) return 1;
  return 0;
}

/* Phase 1: followed files whose name is gone or names another file now. */
static void check_names(struct sw_tail *t) {
  for (struct sw_tfile *f = t->files; f; f = f->next) {
    f->seen = 0;
    if (f->state == SW_TF_DELETED) continue;
    struct stat st;
    int same = stat(f->path, &st) == 0 && (uint64_t)st.st_dev == f->dev &&
               (uint64_t)st.st_ino == f->ino;
    struct stat fst;
    if (fstat(f->fd, &fst) == 0 && fst.st_nlink == 0) {
      f->state = SW_TF_DELETED;
      continue;
    }
    if (!same && f->state == SW_TF_ACTIVE) {
      f->state = SW_TF_RENAMED; /* a later match under another name makes it ACTIVE again */
      f->src->rotations++;
    }
  }
}

/* 1 the first time a path is reported (by a hash of it), so a file every rescan finds again
 * gets one line, not one a second; past SW_MAX_REPORTED paths the rest stay silent. */
static int first_report(struct sw_tail *t, const char *path) {
  uint64_t h = sw_fp_hash(path, strlen(path));
  for (size_t i = 0; i < t->nreported; i++)
    if (t->reported[i] == h) return 0;
  if (t->nreported >= SW_MAX_REPORTED) return 0;
  uint64_t *nr = realloc(t->reported, (t->nreported + 1) * sizeof *nr);
  if (!nr) return 0;
  t->reported = nr;
  t->reported[t->nreported++] = h;
  return 1;
}

/* A glob matched something that is not a regular file: it is never read, and said so once. */
static void skip_special(struct sw_tail *t, struct sw_source_rt *src, const char *path,
                         const struct stat *st) {
  struct stat lst;
  int link = lstat(path, &lst) == 0 && S_ISLNK(lst.st_mode);
  const char *what = S_ISDIR(st->st_mode)                          ? "a directory"
                     : S_ISFIFO(st->st_mode)                       ? "a FIFO"
                     : S_ISSOCK(st->st_mode)                       ? "a socket"
                     : S_ISCHR(st->st_mode) || S_ISBLK(st->st_mode) ? (link ? "a symlink to a device"
                                                                            : "a device node")
                                                                   : "not a regular file";
  if (first_report(t, path))
    SW_LOG(SW_L_WARN, "tail", "skipping %s (source %s, matched by its paths): %s, not a regular "
           "file", path, src->conf->name, what);
}

static void found(struct sw_tail *t, struct sw_source_rt *src, const char *path) {
  struct stat st;
  if (stat(path, &st)) return;
  if (!S_ISREG(st.st_mode)) {
    skip_special(t, src, path, &st);
    return;
  }
  for (struct sw_tfile *f = t->files; f; f = f->next) {
    if (f->dev != (uint64_t)st.st_dev || f->ino != (uint64_t)st.st_ino) continue;
    f->seen = 1;
    if (f->state == SW_TF_RENAMED && f->src == src) {
      char *rp = realpath(path, NULL);
      char *disp = rp ? sw__tail_redacted(t, rp) : NULL;
      if (disp) {
        SW_LOG(SW_L_INFO, "tail", "%s is now %s", f->disp, disp);
        free(f->path);
        free(f->disp);
        f->path = rp;
        f->disp = disp;
        f->state = SW_TF_ACTIVE;
      } else {
        free(rp);
      }
    }
    return;
  }
  /* Never the agent's own files: reading them feeds its output back into itself. Retention's
   * temporaries and compressed archives are expected beside `app.log*` globs: info only. */
  const char *why = sw_own_why(t->own, path, &st);
  if (why) {
    int expected = sw_own_name_why(path) != NULL;
    if (first_report(t, path))
      SW_LOG(expected ? SW_L_INFO : SW_L_WARN, "tail", "skipping %s (source %s): %s", path,
             src->conf->name, why);
    return;
  }
  sw__tail_open_new(t, src, path);
}

void sw__tail_scan(struct sw_tail *t) {
  check_names(t);
  for (size_t i = 0; i < t->nsrcs; i++) {
    struct sw_source_rt *src = &t->srcs[i];
    for (size_t p = 0; p < src->conf->npaths; p++) {
      glob_t g;
      int rc = glob(src->conf->paths[p], GLOB_NOSORT, NULL, &g);
      if (rc == 0)
        for (size_t k = 0; k < g.gl_pathc; k++)
          if (!excluded(src->conf, g.gl_pathv[k])) found(t, src, g.gl_pathv[k]);
      if (rc != GLOB_NOMATCH) globfree(&g);
    }
  }
  /* Stored states that matched nothing at the first scan stay as orphans (bounded). */
}

/* ---- watches ---- */

static void on_fs_event(uv_fs_event_t *h, const char *name, int events, int status) {
  struct sw_watch *w = h->data;
  (void)name;
  if (status < 0) return;
  if (events & UV_RENAME) sw__tail_schedule_scan(w->t);
  sw__tail_schedule_read(w->t, 5); /* coalesce bursts of writes */
}

static void watch_closed(uv_handle_t *h) {
  struct sw_watch *w = h->data;
  free(w->dir);
  free(w);
}

static struct sw_watch *want_dir(struct sw_tail *t, const char *dir) {
  for (size_t i = 0; i < t->nwatches; i++)
    if (strcmp(t->watches[i]->dir, dir) == 0) {
      t->watches[i]->seen = 1;
      return t->watches[i];
    }
  if (t->nwatches >= SW_MAX_WATCHES) return NULL;
  struct stat st;
  if (stat(dir, &st) || !S_ISDIR(st.st_mode)) return NULL;
  struct sw_watch *w = calloc(1, sizeof *w);
  struct sw_watch **nw = realloc(t->watches, (t->nwatches + 1) * sizeof *nw);
  if (nw) t->watches = nw;
  if (!w || !nw || !(w->dir = strdup(dir))) {
    free(w);
    return NULL;
  }
  w->t = t;
  w->seen = 1;
  w->ev.data = w;
  uv_fs_event_init(t->loop, &w->ev);
  if (uv_fs_event_start(&w->ev, on_fs_event, dir, 0) != 0) {
    uv_close((uv_handle_t *)&w->ev, watch_closed); /* periodic rescans still cover it */
    return NULL;
  }
  t->watches[t->nwatches++] = w;
  return w;
}

/* Every directory a glob's files can appear in, and the parents new directories appear in. */
static void watch_pattern(struct sw_tail *t, const char *pattern) {
  char buf[4096];
  size_t n = strlen(pattern);
  if (n >= sizeof buf) return;
  memcpy(buf, pattern, n + 1);
  for (char *slash = strchr(buf + 1, '/'); slash; slash = strchr(slash + 1, '/')) {
    *slash = 0;
    glob_t g;
    if (glob(buf[0] ? buf : "/", GLOB_ONLYDIR | GLOB_NOSORT, NULL, &g) == 0)
      for (size_t i = 0; i < g.gl_pathc; i++) (void)want_dir(t, g.gl_pathv[i]);
    globfree(&g);
    *slash = '/';
  }
}

/* Remembers f in the ring of its target directory: followed once, never taken for a new
 * generation again (inode and head: a reused inode has another head). */
static void remember(struct sw_watch *w, const struct sw_tfile *f) {
  for (size_t i = 0; i < w->ngens && i < SW_GEN_SEEN; i++)
    if (w->gens[i].ino == f->ino) {
      w->gens[i].fp_hash = f->fp_hash; /* the head grows up to SW_FP_LEN */
      w->gens[i].fp_len = f->fp_len;
      return;
    }
  w->gens[w->ngens++ % SW_GEN_SEEN] = (struct sw_gen_seen){f->ino, f->fp_hash, f->fp_len};
}

static int dir_of(const char *path, char *dir, size_t len) {
  const char *slash = strrchr(path, '/');
  if (!slash || (size_t)(slash - path) >= len) return -1;
  memcpy(dir, path, (size_t)(slash - path));
  dir[slash - path] = 0;
  if (!dir[0]) snprintf(dir, len, "/");
  return 0;
}

/* The target directory of every symlinked file: watched (a rotation there triggers a scan at
 * once) and the files followed in it remembered. A generation there is backlog when renamed
 * after the buffer was created (gen_epoch_ns) and neither followed, remembered nor stored: so
 * what was rotated while the agent was down, or before it first looked, is read; what was
 * rotated before spillway ever ran is history. */
static void watch_targets(struct sw_tail *t) {
  char dir[4096];
  for (size_t i = 0; i < t->nwatches; i++) t->watches[i]->gen_pass = 0;
  for (struct sw_tfile *f = t->files; f; f = f->next) {
    struct sw_watch *w = f->via_link && !dir_of(f->path, dir, sizeof dir) ? want_dir(t, dir) : NULL;
    if (w) w->gen_pass = 1;
  }
  for (struct sw_tfile *g = t->files; g; g = g->next) { /* every file we know in those dirs */
    if (dir_of(g->path, dir, sizeof dir)) continue;
    for (size_t i = 0; i < t->nwatches; i++) {
      struct sw_watch *w = t->watches[i];
      if (!w->gen_pass || strcmp(w->dir, dir)) continue;
      w->gen_since_ns = t->gen_epoch_ns;
      remember(w, g);
      break;
    }
  }
}

void sw__tail_update_watches(struct sw_tail *t) {
  for (size_t i = 0; i < t->nwatches; i++) t->watches[i]->seen = 0;
  for (size_t i = 0; i < t->nsrcs; i++)
    for (size_t p = 0; p < t->srcs[i].conf->npaths; p++) watch_pattern(t, t->srcs[i].conf->paths[p]);
  watch_targets(t);
  for (size_t i = 0; i < t->nwatches;) {
    if (t->watches[i]->seen) {
      i++;
      continue;
    }
    uv_close((uv_handle_t *)&t->watches[i]->ev, watch_closed);
    t->watches[i] = t->watches[--t->nwatches];
  }
}

/* ---- rotated generations behind symlinks ---- */

static int remembered(const struct sw_watch *w, int fd, const struct stat *st) {
  for (size_t i = 0; i < w->ngens && i < SW_GEN_SEEN; i++) {
    const struct sw_gen_seen *g = &w->gens[i];
    uint64_t h;
    uint32_t l;
    if (g->ino == (uint64_t)st->st_ino && sw__tail_fingerprint(fd, g->fp_len, &h, &l) == 0 &&
        l == g->fp_len && h == g->fp_hash)
      return 1;
  }
  return 0;
}

/* The followed file of w's directory whose generations `name` may be (NAME.<anything>). */
static struct sw_tfile *generation_of(struct sw_tail *t, const struct sw_watch *w, const char *name) {
  size_t dl = strlen(w->dir);
  for (struct sw_tfile *f = t->files; f; f = f->next) {
    if (!f->via_link || strncmp(f->path, w->dir, dl) || f->path[dl] != '/') continue;
    const char *base = f->path + dl + 1;
    size_t bl = strlen(base);
    if (!strchr(base, '/') && !strncmp(name, base, bl) && name[bl] == '.' && name[bl + 1]) return f;
  }
  return NULL;
}

/* One generation: opened from its start (or its stored state) and drained, then released. */
static void take_generation(struct sw_tail *t, struct sw_watch *w, struct sw_tfile *cur,
                            const char *path) {
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  struct stat st;
  if (fd < 0) return;
  int fresh = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
              (int64_t)st.st_ctim.tv_sec * 1000000000 + st.st_ctim.tv_nsec >= w->gen_since_ns &&
              !remembered(w, fd, &st) && !sw_own_name_why(path);
  for (struct sw_tfile *f = t->files; fresh && f; f = f->next)
    fresh = !(f->dev == (uint64_t)st.st_dev && f->ino == (uint64_t)st.st_ino);
  close(fd);
  if (!fresh) return;
  sw__tail_open_new(t, cur->src, path);
  for (struct sw_tfile *f = t->files; f; f = f->next)
    if (f->dev == (uint64_t)st.st_dev && f->ino == (uint64_t)st.st_ino) {
      f->state = SW_TF_RENAMED; /* read to its end, then released */
      f->via_link = 1;
      f->src->rotations++;
      remember(w, f);
      SW_LOG(SW_L_INFO, "tail", "%s: a rotated generation not read yet; reading it to its end", f->disp);
    }
}

void sw__tail_scan_generations(struct sw_tail *t) {
  char path[4096];
  for (size_t i = 0; i < t->nwatches; i++) {
    struct sw_watch *w = t->watches[i];
    if (!w->gen_since_ns) continue;
    DIR *d = opendir(w->dir);
    if (!d) continue;
    struct dirent *e;
    while ((e = readdir(d))) {
      struct sw_tfile *cur = generation_of(t, w, e->d_name);
      if (!cur) continue;
      int n = snprintf(path, sizeof path, "%s/%s", w->dir, e->d_name);
      if (n > 0 && (size_t)n < sizeof path) take_generation(t, w, cur, path);
    }
    closedir(d);
  }
}

void sw__tail_close_watches(struct sw_tail *t) {
  for (size_t i = 0; i < t->nwatches; i++)
    uv_close((uv_handle_t *)&t->watches[i]->ev, watch_closed);
  t->nwatches = 0;
}
