/* run.c - disk usage, counters, and `spillway rotate [--dry-run]`.
 *
 * The command and the agent's periodic pass (retention/agent.c) plan the same way: current
 * disk pressure, a snapshot of the buffer, the filesystem. A real run holds an exclusive flock
 * on data_dir for the whole plan+execute, so the agent and the command never work on the same
 * files at once (a plan's recovery step would otherwise take the other's temporary file for a
 * crash leftover). A dry run takes no lock and opens the buffer read-only.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "../../common/text.h"
#include "../../common/log.h"
#include "internal.h"

#define LOCK_WAIT_MS 120000

int sw_disk_usage_get(const char *path, struct sw_disk_usage *u) {
  struct statvfs v;
  memset(u, 0, sizeof *u);
  if (statvfs(path, &v)) return SW_EIO;
  uint64_t bs = v.f_frsize ? v.f_frsize : v.f_bsize;
  u->used = (uint64_t)(v.f_blocks - v.f_bfree) * bs;
  u->avail = (uint64_t)v.f_bavail * bs;
  u->percent = u->used + u->avail ? 100.0 * (double)u->used / (double)(u->used + u->avail) : 0;
  return SW_OK;
}

enum sw_pressure sw_pressure_level(const struct sw_config *cfg, const struct sw_disk_usage *u, uint64_t *need) {
  *need = 0;
  if (!cfg->disk_pressure.path) return SW_PRESSURE_NONE;
  /* Relief aims below the midpoint of soft and hard (hysteresis: a busy writer must not push
   * usage straight back over hard_percent): used < (used + avail) * mid / 100. */
  uint64_t mid2 = cfg->disk_pressure.soft_percent + cfg->disk_pressure.hard_percent; /* 2 * mid */
  uint64_t target = (u->used + u->avail) / 200 * mid2;
  if (u->used >= target) *need = u->used - target + 1;
  if (u->percent >= cfg->disk_pressure.hard_percent) return SW_PRESSURE_HARD;
  return u->percent >= cfg->disk_pressure.soft_percent ? SW_PRESSURE_SOFT : SW_PRESSURE_NONE;
}

int sw_retention_count(struct sw_db *db, const struct sw_retention_result *r) {
  const char *names[] = {"retention.rotations", "retention.compressions", "retention.deletions",
                         "retention.repairs", "retention.deferred", "retention.errors",
                         "retention.signals", "retention.bytes_freed", "retention.compressed_in_bytes",
                         "retention.compressed_out_bytes", "retention.pressure_deletions"};
  uint64_t v[] = {r->rotations, r->compressions, r->deletions, r->repairs, r->deferred, r->errors,
                  r->signals, r->bytes_freed, r->compressed_in, r->compressed_out, r->pressure_deletions};
  return sw_db_counters_add(db, names, v, sizeof v / sizeof v[0]);
}

static int db_offset(void *arg, uint64_t dev, uint64_t ino, uint64_t *off, int *pending, int *found) {
  return sw_db_file_offset(arg, dev, ino, off, pending, found);
}

/* flock on data_dir, waiting up to LOCK_WAIT_MS for the agent's pass to end. fd or -1. */
static int lock_data_dir(const char *dir) {
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return -1;
  for (int waited = 0;; waited += 100) {
    if (flock(fd, LOCK_EX | LOCK_NB) == 0) return fd;
    if (errno != EWOULDBLOCK || waited >= LOCK_WAIT_MS) break;
    struct timespec ts = {0, 100 * 1000000};
    nanosleep(&ts, NULL);
  }
  close(fd);
  return -1;
}

static const char **sink_names(const struct sw_config *cfg) {
  const char **n = calloc(cfg->nsinks + 1, sizeof *n);
  for (size_t i = 0; n && i < cfg->nsinks; i++) n[i] = cfg->sinks[i].name;
  return n;
}

int sw_retention_cli(const struct sw_config *cfg, int dry_run, FILE *out) {
  struct sw_db *db = NULL;
  struct sw_db_view *view = NULL;
  struct sw_retention_plan *plan = NULL;
  struct sw_retention_result res = {0};
  struct sw_disk_usage du;
  char err[512] = "", dbpath[4200];
  const char **names = sink_names(cfg);
  int code = 1, lockfd = -1, rc;
  uint64_t need = 0;
  enum sw_pressure level = SW_PRESSURE_NONE;
  if (!names) goto cleanup;
  if (cfg->disk_pressure.path) {
    if (sw_disk_usage_get(cfg->disk_pressure.path, &du))
      fprintf(stderr, "spillway: disk_pressure.path %s: %s\n", cfg->disk_pressure.path, strerror(errno));
    else
      level = sw_pressure_level(cfg, &du, &need);
  }
  snprintf(dbpath, sizeof dbpath, "%s/spillway.db", cfg->data_dir);
  if (!dry_run || access(dbpath, F_OK) == 0) { /* a dry run never creates the buffer */
    if (sw_db_open(cfg->data_dir, dry_run ? SW_DB_READONLY : 0, &db, err, sizeof err)) {
      fprintf(stderr, "spillway: %s\n", err);
      goto cleanup;
    }
  }
  if (!dry_run && (lockfd = lock_data_dir(cfg->data_dir)) < 0) {
    fprintf(stderr, "spillway: cannot lock %s (is another rotation running?): %s\n", cfg->data_dir,
            strerror(errno));
    goto cleanup;
  }
  if (db && (rc = sw_db_view_load(db, names, cfg->nsinks, &view))) {
    fprintf(stderr, "spillway: cannot read %s: %s\n", sw_db_path(db), sw_db_errmsg(db));
    goto cleanup;
  }
  if ((rc = sw_retention_plan(cfg, sw__ret_now_ns(), view, level, need, &plan))) {
    fprintf(stderr, "spillway: planning failed: %s\n", sw_strerror(rc));
    goto cleanup;
  }
  if (cfg->disk_pressure.path)
    fprintf(out, "# disk %s: %.1f%% used (soft %u%%, hard %u%%)%s\n", cfg->disk_pressure.path, du.percent,
            cfg->disk_pressure.soft_percent, cfg->disk_pressure.hard_percent,
            level == SW_PRESSURE_HARD ? ": hard pressure" : level == SW_PRESSURE_SOFT ? ": soft pressure" : "");
  sw_retention_plan_print(plan, out);
  if (dry_run) {
    fprintf(out, "# dry run: %zu action%s planned, nothing changed\n", plan->n, sw_plural(plan->n));
    code = 0;
    goto cleanup;
  }
  fflush(out);
  struct sw_retention_exec_opts o = {.file_offset = db_offset, .arg = db};
  rc = sw_retention_execute(plan, &o, &res);
  if (sw_retention_count(db, &res))
    fprintf(stderr, "spillway: cannot save counters: %s\n", sw_db_errmsg(db));
  fprintf(out, "# done: %zu action%s, %llu bytes freed, %llu error%s\n", plan->n, sw_plural(plan->n),
          (unsigned long long)res.bytes_freed, (unsigned long long)res.errors, sw_plural(res.errors));
  code = rc || res.errors ? 1 : 0;
cleanup:
  if (lockfd >= 0) close(lockfd);
  sw_retention_plan_free(plan);
  sw_db_view_free(view);
  sw_db_close(db);
  free(names);
  return code;
}
