/* actions.c - what every retention action shares (exec.c and punch.c): checking for
 * cancellation, the one log line per outcome (paths redacted), failures counted, and the
 * durable-rename steps (fsync of a directory, rename without overwriting, metadata copy).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "../../common/log.h"
#include "../../common/timefmt.h"
#include "internal.h"

int64_t sw__ret_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int sw__ret_cancelled(const struct sw__ret_ex *x) { return x->o && x->o->cancel && atomic_load(x->o->cancel); }

/* path as a log line quotes it (slot 0 or 1: a line may name two): redacted with the caller's
 * context, since a file name may hold an e-mail. Cut to the slot's size, which can only hide
 * more. Valid until the slot is used again. */
const char *sw__ret_show(struct sw__ret_ex *x, int slot, const char *path) {
  const char *out = path;
  size_t n = strlen(path);
  if (x->o && x->o->rctx) (void)sw_redact_line(x->o->rctx, path, n, 0, &out, &n);
  if (n >= sizeof x->shown[slot]) n = sizeof x->shown[slot] - 1;
  memcpy(x->shown[slot], out, n);
  x->shown[slot][n] = '\0';
  return x->shown[slot];
}

void sw__ret_done(struct sw__ret_ex *x, const struct sw_ret_action *a, uint64_t freed, const char *extra) {
  static const char *const names[] = {"drop-tmp", "finish", "cut", "delete", "rename",
                                      "rotate", "signal", "compress", "defer", "resume"};
  if (!sw_log_enabled(SW_L_INFO)) return;
  sw_log(SW_L_INFO, "retention", "action=%s path=%s%s%s reason=%s bytes=%llu freed=%llu%s%s", names[a->kind],
         sw__ret_show(x, 0, a->path), a->to ? " to=" : "", a->to ? sw__ret_show(x, 1, a->to) : "", a->reason,
         (unsigned long long)a->bytes, (unsigned long long)freed, extra ? " " : "", extra ? extra : "");
}

int sw__ret_fail(struct sw__ret_ex *x, const struct sw_ret_action *a, const char *what, int rc) {
  SW_LOG(SW_L_ERROR, "retention", "%s %s failed: %s", what, sw__ret_show(x, 0, a->path),
         x->err ? strerror(x->err) : sw_strerror(rc));
  x->r->errors++;
  return rc ? rc : SW_EIO;
}

int sw__ret_fsync_dir(const char *path) {
  const char *slash = strrchr(path, '/');
  char dir[4096];
  if (!slash || (size_t)(slash - path) >= sizeof dir) return SW_EINVAL;
  memcpy(dir, path, (size_t)(slash - path));
  dir[slash == path ? 1 : slash - path] = '\0';
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return SW_EIO;
  int rc = fsync(fd) ? SW_EIO : SW_OK;
  close(fd);
  return rc;
}

int sw__ret_rename_noreplace(const char *from, const char *to) {
  if (renameat2(AT_FDCWD, from, AT_FDCWD, to, RENAME_NOREPLACE) == 0) return SW_OK;
  if (errno != EINVAL && errno != ENOSYS) return SW_EIO;
  if (link(from, to)) return SW_EIO; /* a filesystem without RENAME_NOREPLACE */
  return unlink(from) ? SW_EIO : SW_OK;
}

/* The archive gets the source's mode, owner (when allowed) and times. */
void sw__ret_copy_meta(int fd, const struct stat *st) {
  struct timespec ts[2] = {st->st_atim, st->st_mtim};
  if (fchmod(fd, st->st_mode & 07777)) { /* best effort */
  }
  if (fchown(fd, st->st_uid, st->st_gid)) {
  }
  futimens(fd, ts);
}

/* Has the buffer committed every byte of the file up to size? */
int sw__ret_caught_up(const struct sw__ret_ex *x, const struct sw_ret_action *a, uint64_t size) {
  uint64_t off = 0;
  int pending = 0, found = 0;
  if (!x->o || !x->o->file_offset || x->o->file_offset(x->o->arg, a->dev, a->ino, &off, &pending, &found))
    return 0;
  return found && !pending && off >= size;
}
