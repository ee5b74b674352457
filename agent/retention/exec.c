/* exec.c - EXECUTE: performs a plan's actions in order.
 *
 * Every action first re-checks that its file is still the one planned (device, inode, and for
 * deletes the size); a file that changed is skipped, and after a failure the rest of that
 * family is skipped (a later step may depend on it). Renames never overwrite (RENAME_NOREPLACE);
 * new files are written under a temporary name, fsynced, renamed, and the directory fsynced,
 * before any source is removed or truncated (see retention/retention.h for each step's crash analysis).
 * Each outcome is one log line: "action=KIND path=P [to=T] reason=R bytes=N freed=N ...".
 * Under disk pressure compressions (and RESUME of one a crash interrupted) go in pieces instead
 * (punch.c), which needs only a bounded amount of free space.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../../common/log.h"
#include "../../common/timefmt.h"
#include "internal.h"

#define CATCHUP_SMALL (64 * 1024) /* copytruncate: catch-up rounds until one copies this little */
#define CATCHUP_ROUNDS 16
#define TAIL_CAP (1 << 20)        /* copytruncate: the last bytes, read just before truncating */
#define TAIL_ROUNDS 256
#define QUIET_WAIT_MS 5000

/* lstat(path) is the regular file the plan saw. */
static int same_file(const char *path, const struct sw_ret_action *a, struct stat *st) {
  struct stat s;
  if (!st) st = &s;
  return lstat(path, st) == 0 && S_ISREG(st->st_mode) && (uint64_t)st->st_dev == a->dev &&
         (uint64_t)st->st_ino == a->ino;
}

/* Creates target.tmp-XXXXXX; *tmp gets its name (caller frees). */
static int make_tmp(const char *target, char **tmp) {
  size_t n = strlen(target) + 12;
  *tmp = malloc(n);
  if (!*tmp) return -1;
  snprintf(*tmp, n, "%s.tmp-XXXXXX", target);
  int fd = mkostemp(*tmp, O_CLOEXEC);
  if (fd < 0) {
    free(*tmp);
    *tmp = NULL;
  }
  return fd;
}

static int exists(const char *path) {
  struct stat st;
  return lstat(path, &st) == 0;
}

/* ---- simple actions ---- */

static int do_unlink(struct sw__ret_ex *x, const struct sw_ret_action *a) {
  struct stat st;
  if (!same_file(a->path, a, &st) || (a->kind == SW_RET_DELETE && (uint64_t)st.st_size != a->bytes)) {
    SW_LOG(SW_L_WARN, "retention", "%s changed since it was planned; left alone", sw__ret_show(x, 0, a->path));
    return SW_OK;
  }
  if (unlink(a->path)) {
    x->err = errno;
    return sw__ret_fail(x, a, "delete", SW_EIO);
  }
  sw__ret_fsync_dir(a->path);
  uint64_t freed = (uint64_t)st.st_size;
  x->r->bytes_freed += freed;
  if (a->kind == SW_RET_DELETE) {
    x->r->deletions++;
    if (!strncmp(a->reason, "pressure", 8)) x->r->pressure_deletions++;
  } else {
    x->r->repairs++;
  }
  sw__ret_done(x, a, freed, NULL);
  return SW_OK;
}

static int do_finish(struct sw__ret_ex *x, const struct sw_ret_action *a) {
  int src = sw__ret_open_ro(a->path), z = sw__ret_open_ro(a->to), equal = 0, rc = SW_OK;
  struct stat st, zst;
  if (src < 0 || z < 0 || fstat(src, &st) || fstat(z, &zst) || (uint64_t)st.st_ino != a->ino) {
    x->err = errno;
    rc = sw__ret_fail(x, a, "recovery of", SW_EIO);
    goto cleanup;
  }
  if ((rc = sw__zst_equal(z, src, x->o ? x->o->cancel : NULL, &equal))) goto cleanup;
  const char *victim = equal ? a->path : a->to; /* the archive is whole: the plain file goes */
  if (unlink(victim)) {
    x->err = errno;
    rc = sw__ret_fail(x, a, "recovery of", SW_EIO);
    goto cleanup;
  }
  sw__ret_fsync_dir(victim);
  x->r->repairs++;
  x->r->bytes_freed += equal ? (uint64_t)st.st_size : (uint64_t)zst.st_size;
  sw__ret_done(x, a, equal ? (uint64_t)st.st_size : (uint64_t)zst.st_size,
       equal ? "verified=yes" : "verified=no (archive removed; compressed again next run)");
cleanup:
  if (src >= 0) close(src);
  if (z >= 0) close(z);
  return rc;
}

static int do_cut(struct sw__ret_ex *x, const struct sw_ret_action *a) {
  int fd = open(a->path, O_WRONLY | O_NOFOLLOW | O_CLOEXEC);
  struct stat st;
  if (fd < 0 || fstat(fd, &st) || (uint64_t)st.st_ino != a->ino || (uint64_t)st.st_size != a->bytes) {
    if (fd >= 0) close(fd);
    SW_LOG(SW_L_WARN, "retention", "%s changed since it was planned; left alone", sw__ret_show(x, 0, a->path));
    return SW_OK;
  }
  int rc = ftruncate(fd, (off_t)a->keep) || fsync(fd) ? SW_EIO : SW_OK;
  x->err = errno;
  close(fd);
  if (rc) return sw__ret_fail(x, a, "cutting", rc);
  x->r->repairs++;
  x->r->bytes_freed += a->bytes - a->keep;
  sw__ret_done(x, a, a->bytes - a->keep, NULL);
  return SW_OK;
}

static int do_rename(struct sw__ret_ex *x, const struct sw_ret_action *a) {
  if (!same_file(a->path, a, NULL)) {
    SW_LOG(SW_L_WARN, "retention", "%s changed since it was planned; left alone", sw__ret_show(x, 0, a->path));
    return SW_EAGAIN; /* the family's later steps assume this one */
  }
  if (sw__ret_rename_noreplace(a->path, a->to)) {
    x->err = errno;
    return sw__ret_fail(x, a, "renaming", SW_EIO);
  }
  sw__ret_fsync_dir(a->to);
  if (a->kind == SW_RET_ROTATE) x->r->rotations++;
  sw__ret_done(x, a, 0, a->kind == SW_RET_ROTATE ? "method=rename" : NULL);
  return SW_OK;
}

static int do_signal(struct sw__ret_ex *x, const struct sw_ret_action *a) {
  static const int signos[] = {SIGHUP, SIGUSR1, SIGUSR2, SIGINT, SIGTERM, SIGQUIT, SIGWINCH};
  char buf[32] = "", extra[48];
  int fd = sw__ret_open_ro(a->path);
  ssize_t n = fd >= 0 ? read(fd, buf, sizeof buf - 1) : -1;
  if (fd >= 0) close(fd);
  char *end = NULL;
  long pid = n > 0 ? strtol(buf, &end, 10) : 0;
  if (pid <= 1 || !end || (*end && *end != '\n')) {
    SW_LOG(SW_L_WARN, "retention", "no process id in %s; writer not signalled", sw__ret_show(x, 0, a->path));
    x->r->errors++;
    return SW_OK;
  }
  if (kill((pid_t)pid, signos[a->conf->signal])) {
    int e = errno; /* sw__ret_show() may allocate */
    SW_LOG(SW_L_WARN, "retention", "signalling pid %ld (%s): %s", pid, sw__ret_show(x, 0, a->path), strerror(e));
    x->r->errors++;
    return SW_OK;
  }
  x->r->signals++;
  snprintf(extra, sizeof extra, "pid=%ld", pid);
  sw__ret_done(x, a, 0, extra);
  return SW_OK;
}

/* ---- compress ---- */

/* A file renamed by this plan: give its writer time to reopen the new one (bounded). */
static void wait_quiet(struct sw__ret_ex *x, int fd) {
  for (int waited = 0; waited < QUIET_WAIT_MS && !sw__ret_cancelled(x); waited += 50) {
    struct stat st;
    if (fstat(fd, &st)) return;
    int64_t mt = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
    if (sw__ret_now_ns() - mt >= (int64_t)SW__RET_QUIET_MS * 1000000) return;
    struct timespec ts = {0, 50 * 1000000};
    nanosleep(&ts, NULL);
  }
}

/* Copies src from *off to its end into z, frame by frame, until src stops growing. */
static int compress_all(struct sw__ret_ex *x, int src, struct sw__zout *z, uint64_t *off) {
  for (int round = 0; round < CATCHUP_ROUNDS; round++) {
    uint64_t copied;
    struct stat st;
    int rc = sw__copy_to_eof(src, off, z, x->o ? x->o->cancel : NULL, &copied);
    if (!rc) rc = sw__zout_end(z);
    if (rc) return rc;
    if (fstat(src, &st)) return SW_EIO;
    if ((uint64_t)st.st_size <= *off) return SW_OK;
  }
  return SW_EAGAIN; /* still growing: some writer never let go */
}

static int do_compress(struct sw__ret_ex *x, const struct sw_ret_action *a) {
  if (x->pieces) { /* under pressure: bounded free space needed (punch.c) */
    int fd = a->fresh ? sw__ret_open_ro(a->path) : -1;
    if (fd >= 0) {
      wait_quiet(x, fd);
      close(fd);
    }
    return sw__ret_pieces(x, a);
  }
  struct sw__zout z = {.fd = -1};
  struct stat st, zs;
  char *tmp = NULL, extra[64] = "";
  uint64_t off = 0;
  int tfd = -1, rc = SW_OK, src = sw__ret_open_ro(a->path);
  if (src < 0 || fstat(src, &st) || (uint64_t)st.st_ino != a->ino || (uint64_t)st.st_dev != a->dev) {
    SW_LOG(SW_L_WARN, "retention", "%s changed since it was planned; left alone", sw__ret_show(x, 0, a->path));
    goto cleanup;
  }
  if (a->fresh) wait_quiet(x, src);
  if (exists(a->to)) {
    x->err = EEXIST;
    rc = sw__ret_fail(x, a, "compressing", SW_EIO);
    goto cleanup;
  }
  if ((tfd = make_tmp(a->to, &tmp)) < 0 || (rc = sw__zout_init(&z, tfd, (int)a->conf->level))) {
    x->err = errno;
    rc = sw__ret_fail(x, a, "compressing", rc ? rc : SW_EIO);
    goto cleanup;
  }
  rc = compress_all(x, src, &z, &off);
  if (!rc) {
    sw__ret_copy_meta(tfd, &st);
    if (fsync(tfd) || sw__ret_rename_noreplace(tmp, a->to)) rc = SW_EIO;
  }
  if (rc) {
    x->err = rc == SW_EIO ? errno : 0;
    unlink(tmp); /* the source is untouched */
    if (rc == SW_EAGAIN && !sw__ret_cancelled(x)) {
      SW_LOG(SW_L_WARN, "retention", "%s is still being written to; compressed by a later run",
             sw__ret_show(x, 0, a->path));
      x->r->deferred++;
    } else if (rc != SW_EAGAIN) {
      rc = sw__ret_fail(x, a, "compressing", rc);
    }
    goto cleanup;
  }
  free(tmp);
  tmp = NULL;
  sw__ret_fsync_dir(a->to);
  if (same_file(a->path, a, NULL) && unlink(a->path) == 0) sw__ret_fsync_dir(a->path);
  if (fstat(src, &st) == 0 && (uint64_t)st.st_size > off) {
    /* A writer still wrote to the renamed file after the last check: append its bytes. */
    uint64_t late = (uint64_t)st.st_size - off, copied;
    if (sw__copy_to_eof(src, &off, &z, NULL, &copied) || sw__zout_end(&z) || fsync(tfd))
      SW_LOG(SW_L_ERROR, "retention", "%s: %llu late bytes could not be appended", sw__ret_show(x, 1, a->to),
             (unsigned long long)late);
    snprintf(extra, sizeof extra, " late=%llu", (unsigned long long)late);
  }
  fstat(tfd, &zs);
  uint64_t freed = off > (uint64_t)zs.st_size ? off - (uint64_t)zs.st_size : 0;
  x->r->compressions++;
  x->r->compressed_in += off;
  x->r->compressed_out += (uint64_t)zs.st_size;
  x->r->bytes_freed += freed;
  char ex[128];
  snprintf(ex, sizeof ex, "in=%llu out=%llu%s", (unsigned long long)off, (unsigned long long)zs.st_size, extra);
  sw__ret_done(x, a, freed, ex);
cleanup:
  sw__zout_free(&z);
  if (tfd >= 0) close(tfd);
  if (src >= 0) close(src);
  free(tmp);
  return rc;
}

/* ---- copytruncate ---- */

static ssize_t read_full(int fd, char *buf, size_t cap, uint64_t off) {
  size_t n = 0;
  while (n < cap) {
    ssize_t got = pread(fd, buf + n, cap - n, (off_t)(off + n));
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) return -1;
    n += (size_t)got;
    if ((size_t)got < cap - (n - (size_t)got)) break; /* a short read: the end, as of now */
  }
  return (ssize_t)n;
}

/* After the archive is durable: the bytes appended meanwhile are read into memory and the file
 * is truncated right after the read that found its end (the race window, logged), then those
 * bytes are appended to the archive. *window gets "window_ns=T0..T1". */
static int tail_and_truncate(struct sw__ret_ex *x, const struct sw_ret_action *a, int fd, struct sw__zout *z,
                             uint64_t *off, char *window, size_t wlen) {
  char *buf = malloc(TAIL_CAP);
  if (!buf) return SW_ENOMEM;
  int rc = SW_EAGAIN;
  for (int round = 0; round < TAIL_ROUNDS && !sw__ret_cancelled(x); round++) {
    /* Reserve the archive's room for the tail first: once the source is truncated, writing the
     * tail must not fail for want of space (ENOSPC here just means: do not truncate yet). */
    off_t end = lseek(z->fd, 0, SEEK_END);
    if (end < 0 || (fallocate(z->fd, FALLOC_FL_KEEP_SIZE, end, (off_t)ZSTD_compressBound(TAIL_CAP) + 4096) &&
                    errno != EOPNOTSUPP)) {
      x->err = errno;
      rc = SW_EIO;
      break;
    }
    int64_t t0 = sw_time_mono_ns();
    ssize_t n = read_full(fd, buf, TAIL_CAP, *off);
    if (n < 0) {
      rc = SW_EIO;
      break;
    }
    if (n == TAIL_CAP || (a->tailed && !sw__ret_caught_up(x, a, *off + (uint64_t)n))) {
      if (n != TAIL_CAP) { /* the source has not read it all: nothing may be truncated */
        rc = SW_EAGAIN;
        break;
      }
    } else {
      if (a->tailed) { /* the check took a while: anything new since? */
        t0 = sw_time_mono_ns();
        ssize_t more = read_full(fd, buf + n, TAIL_CAP - (size_t)n, *off + (uint64_t)n);
        if (more != 0) goto append; /* more bytes (or an error): another round */
      }
      if (ftruncate(fd, 0)) {
        rc = SW_EIO;
        break;
      }
      int64_t t1 = sw_time_mono_ns();
      snprintf(window, wlen, "window_ns=%lld..%lld", (long long)t0, (long long)t1);
      rc = SW_OK;
    }
  append:
    if (n > 0) {
      int wrc = sw__zout_write(z, buf, (size_t)n);
      if (!wrc) wrc = sw__zout_end(z);
      if (wrc) {
        rc = wrc; /* after the truncation these bytes exist only here */
        break;
      }
      *off += (uint64_t)n;
    }
    if (rc == SW_OK) break;
  }
  free(buf);
  off_t end = lseek(z->fd, 0, SEEK_CUR); /* give back what the reservation did not use */
  if (end >= 0 && ftruncate(z->fd, end) && rc == SW_OK) rc = SW_EIO;
  return rc;
}

static int do_copytruncate(struct sw__ret_ex *x, const struct sw_ret_action *a) {
  if (x->pieces && a->compress) return sw__ret_pieces(x, a); /* punch.c */
  struct sw__zout z = {.fd = -1};
  struct stat st;
  char *tmp = NULL, window[80] = "", ex[160];
  uint64_t off = 0, copied = 0;
  int tfd = -1, rc = SW_OK;
  int fd = open(a->path, O_RDWR | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0 || fstat(fd, &st) || (uint64_t)st.st_ino != a->ino || (uint64_t)st.st_dev != a->dev) {
    SW_LOG(SW_L_WARN, "retention", "%s changed since it was planned; left alone", sw__ret_show(x, 0, a->path));
    rc = SW_EAGAIN;
    goto cleanup;
  }
  if (a->tailed && !sw__ret_caught_up(x, a, (uint64_t)st.st_size)) {
    x->r->deferred++;
    SW_LOG(SW_L_INFO, "retention", "action=defer path=%s reason=being-read", sw__ret_show(x, 0, a->path));
    rc = SW_EAGAIN;
    goto cleanup;
  }
  if (exists(a->to)) {
    x->err = EEXIST;
    rc = sw__ret_fail(x, a, "copying", SW_EIO);
    goto cleanup;
  }
  if ((tfd = make_tmp(a->to, &tmp)) < 0 || (rc = sw__zout_init(&z, tfd, a->compress ? (int)a->conf->level : 0))) {
    x->err = errno;
    rc = sw__ret_fail(x, a, "copying", rc ? rc : SW_EIO);
    goto cleanup;
  }
  for (int round = 0; round < CATCHUP_ROUNDS; round++) { /* copy, then what was appended meanwhile */
    if ((rc = sw__copy_to_eof(fd, &off, &z, x->o ? x->o->cancel : NULL, &copied))) break;
    if (round > 0 && copied <= CATCHUP_SMALL) break;
  }
  if (!rc) rc = sw__zout_end(&z);
  if (!rc) {
    sw__ret_copy_meta(tfd, &st);
    if (fsync(tfd) || sw__ret_rename_noreplace(tmp, a->to)) rc = SW_EIO;
  }
  if (rc) {
    x->err = rc == SW_EIO ? errno : 0;
    unlink(tmp);
    if (!sw__ret_cancelled(x)) rc = sw__ret_fail(x, a, "copying", rc);
    goto cleanup;
  }
  sw__ret_fsync_dir(a->to); /* the archive is durable: from here on NAME may be truncated */
  rc = tail_and_truncate(x, a, fd, &z, &off, window, sizeof window);
  if (rc == SW_OK && fsync(tfd)) rc = SW_EIO;
  if (rc && !window[0]) { /* not truncated: the archive is only a copy; drop it */
    unlink(a->to);
    sw__ret_fsync_dir(a->to);
    x->err = rc == SW_EIO ? errno : 0;
    if (rc == SW_EAGAIN) x->r->deferred++;
    else rc = sw__ret_fail(x, a, "truncating", rc);
    goto cleanup;
  }
  if (rc) { /* truncated, but the tail could not be written: say so */
    x->err = errno;
    rc = sw__ret_fail(x, a, "appending the copytruncate tail to", rc);
  }
  x->r->rotations++;
  if (a->compress) {
    fstat(tfd, &st);
    x->r->compressions++;
    x->r->compressed_in += off;
    x->r->compressed_out += (uint64_t)st.st_size;
    x->r->bytes_freed += off > (uint64_t)st.st_size ? off - (uint64_t)st.st_size : 0;
  }
  snprintf(ex, sizeof ex, "method=copytruncate in=%llu %s", (unsigned long long)off, window);
  sw__ret_done(x, a, a->compress && off > (uint64_t)st.st_size ? off - (uint64_t)st.st_size : 0, ex);
cleanup:
  sw__zout_free(&z);
  if (tfd >= 0) close(tfd);
  if (fd >= 0) close(fd);
  free(tmp);
  return rc;
}

/* ---- the loop ---- */

static int run_one(struct sw__ret_ex *x, const struct sw_ret_action *a) {
  x->err = 0;
  switch (a->kind) {
  case SW_RET_DROP_TMP:
  case SW_RET_DELETE: return do_unlink(x, a);
  case SW_RET_FINISH: return do_finish(x, a);
  case SW_RET_CUT: return do_cut(x, a);
  case SW_RET_SHIFT: return do_rename(x, a);
  case SW_RET_ROTATE:
    return a->conf->method == SW_ROTATE_RENAME ? do_rename(x, a) : do_copytruncate(x, a);
  case SW_RET_SIGNAL: return do_signal(x, a);
  case SW_RET_COMPRESS: return do_compress(x, a);
  case SW_RET_RESUME: return sw__ret_pieces(x, a);
  case SW_RET_DEFER:
    x->r->deferred++;
    sw__ret_done(x, a, 0, NULL);
    return SW_OK;
  }
  return SW_EINVAL;
}

int sw_retention_execute(const struct sw_retention_plan *p, const struct sw_retention_exec_opts *o,
                         struct sw_retention_result *r) {
  struct sw__ret_ex x = {.o = o, .r = r, .pieces = p->pressure >= SW_PRESSURE_SOFT};
  char *failed = calloc((size_t)p->nfamilies + 1, 1);
  int first = SW_OK;
  if (!failed) return SW_ENOMEM;
  for (size_t i = 0; i < p->n; i++) {
    const struct sw_ret_action *a = &p->acts[i];
    if (sw__ret_cancelled(&x)) {
      first = first ? first : SW_EAGAIN;
      break;
    }
    if (a->family >= 0 && failed[a->family]) continue;
    int rc = run_one(&x, a);
    if (!rc) continue;
    if (a->family >= 0) failed[a->family] = 1;
    if (rc != SW_EAGAIN && !first) first = rc;
  }
  free(failed);
  return first;
}
