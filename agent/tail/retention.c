/* retention.c - what the reader does for retention.
 *
 * 1. Files renamed while the agent was down. Retention (or logrotate) renames NAME to NAME.1,
 * which the source's glob usually does not match; a running agent keeps reading the renamed file
 * through its descriptor, but after a restart nothing would find it again and its unread end
 * would never ship (and retention would keep it forever: it is unread). After the first scan,
 * every stored state whose path no longer names its file is looked up by device and inode in
 * its directory and, if found (and its head still matches), drained like a rename seen live.
 *
 * 2. truncate_shipped: free the disk space of a container log whose every byte is already in
 * the buffer, without losing what its writer appends.
 *
 * check (retention pass, worker thread): the buffer's committed offset of (dev, ino) equals the
 *   file's size and no partial record is pending.
 * truncate (here, on the loop thread that owns the reader, so the reader cannot race us): the
 *   reader is exactly at that offset with nothing pending or open; the file's size is still
 *   that offset (fstat); ftruncate to 0; the reader continues from 0 as after a copytruncate.
 * recheck: the size right after the truncation is logged; bytes there were appended after it
 *   (the writer uses O_APPEND: dockerd and containerd do) and are read normally.
 * Residual race: a write that lands between the final fstat and ftruncate (two system calls,
 * microseconds) is lost. No userspace API truncates "only if the size is still N"; closing
 * the gap needs the writer's cooperation (dockerd's own max-size rotation). Hence opt-in.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../../common/log.h"
#include "../../common/timefmt.h"
#include "internal.h"

/* ---- 1. renamed while down ---- */

static int moved(const struct sw_known *k) {
  struct stat st;
  return stat(k->path, &st) || (uint64_t)st.st_dev != k->dev || (uint64_t)st.st_ino != k->ino;
}

static size_t dir_len(const char *path) {
  const char *slash = strrchr(path, '/');
  return slash ? (size_t)(slash - path) : 0;
}

struct found {
  uint64_t dev, ino;
  char *path;
};

/* Opens the found file for its state's source and marks it renamed: read to its end, then
 * released. The state is looked up again: opening consumes (frees) it. */
static void drain(struct sw_tail *t, const struct found *fd) {
  struct sw_known *k = t->known;
  while (k && (k->dev != fd->dev || k->ino != fd->ino)) k = k->next;
  struct sw_source_rt *src = NULL;
  for (size_t i = 0; k && i < t->nsrcs && !src; i++)
    if (!strcmp(t->srcs[i].conf->name, k->source)) src = &t->srcs[i];
  struct stat st;
  if (!src || stat(fd->path, &st) || sw_own_why(t->own, fd->path, &st)) return; /* never our own */
  if (sw_log_enabled(SW_L_INFO)) {
    char *was = sw__tail_redacted(t, k->path), *now = sw__tail_redacted(t, fd->path);
    SW_LOG(SW_L_INFO, "tail", "%s was renamed to %s while stopped; reading it to its end", was ? was : "(a file)",
           now ? now : "(a file)");
    free(was);
    free(now);
  }
  sw__tail_open_new(t, src, fd->path); /* resumes k's offset (and frees k) when the head matches */
  for (struct sw_tfile *f = t->files; f; f = f->next)
    if (f->dev == fd->dev && f->ino == fd->ino && f->state == SW_TF_ACTIVE) {
      f->state = SW_TF_RENAMED;
    }
}

/* Reads dir once; every moved state of that directory found there is appended to *out. */
static void search_dir(struct sw_tail *t, const char *dir, size_t dl, struct found **out, size_t *n) {
  char path[PATH_MAX];
  DIR *d = opendir(dir);
  struct dirent *de;
  while (d && (de = readdir(d))) {
    struct stat st;
    if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) || !S_ISREG(st.st_mode)) continue;
    for (struct sw_known *m = t->known; m; m = m->next) {
      if (m->dev != (uint64_t)st.st_dev || m->ino != (uint64_t)st.st_ino || (uint64_t)st.st_size <= m->offset ||
          dir_len(m->path) != dl || memcmp(m->path, dir, dl) || !moved(m))
        continue;
      struct found *f = realloc(*out, (*n + 1) * sizeof *f);
      if (!f || snprintf(path, sizeof path, "%s/%s", dir, de->d_name) >= (int)sizeof path) {
        if (f) *out = f;
        break;
      }
      *out = f;
      f[*n] = (struct found){m->dev, m->ino, strdup(path)};
      if (f[*n].path) (*n)++;
      break;
    }
  }
  if (d) closedir(d);
}

void sw__tail_find_renamed(struct sw_tail *t) {
  char dir[PATH_MAX];
  struct found *found = NULL;
  size_t n = 0;
  for (struct sw_known *k = t->known; k; k = k->next) {
    size_t dl = dir_len(k->path);
    if (!dl || dl >= sizeof dir || !moved(k)) continue;
    int earlier = 0; /* each directory is read once */
    for (struct sw_known *e = t->known; e != k && !earlier; e = e->next)
      earlier = dir_len(e->path) == dl && !memcmp(e->path, k->path, dl) && moved(e);
    if (earlier) continue;
    memcpy(dir, k->path, dl);
    dir[dl] = '\0';
    search_dir(t, dir, dl, &found, &n);
  }
  for (size_t i = 0; i < n; i++) { /* only now: draining frees states the loops above walk */
    drain(t, &found[i]);
    free(found[i].path);
  }
  free(found);
}

/* ---- 2. truncate_shipped ---- */

int sw_tail_truncate_shipped(struct sw_tail *t, uint64_t dev, uint64_t ino, uint64_t committed,
                             uint64_t *freed, int64_t window_ns[2]) {
  struct sw_tfile *f = NULL;
  *freed = 0;
  window_ns[0] = window_ns[1] = 0;
  if (t->stopping) return SW_EAGAIN;
  for (struct sw_tfile *x = t->files; x && !f; x = x->next)
    if (x->dev == dev && x->ino == ino && x->state == SW_TF_ACTIVE && x->src->conf->truncate_shipped) f = x;
  if (!f) return SW_ENOTFOUND;
  if (f->read_off != committed || f->line_off != committed || f->replay_until || (f->cb_ready && f->cb.count) ||
      sw_ingest_has_pending(f))
    return SW_EAGAIN;
  int fd = open(f->path, O_WRONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return SW_EAGAIN;
  struct stat st;
  int rc = SW_EAGAIN;
  window_ns[0] = sw_time_mono_ns();
  if (fstat(fd, &st) == 0 && (uint64_t)st.st_dev == dev && (uint64_t)st.st_ino == ino &&
      (uint64_t)st.st_size == committed) {
    if (ftruncate(fd, 0) == 0) {
      window_ns[1] = sw_time_mono_ns();
      *freed = committed;
      rc = SW_OK;
    } else {
      rc = SW_EIO;
    }
  }
  close(fd);
  if (rc == SW_OK) sw__tail_truncated(t, f, 0);
  return rc;
}
