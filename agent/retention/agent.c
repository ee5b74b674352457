/* agent.c - the agent's periodic retention pass and disk-pressure relief.
 *
 * Every disk_pressure.interval the loop queues one pass (uv_queue_work). The pass runs on a
 * libuv pool thread with its own SQLite connection and does all the blocking file work:
 *   1. disk usage of disk_pressure.path -> level NONE / SOFT / HARD (changes are logged);
 *   2. the retention plan with that level (SOFT: rotate live files >= rotate_min_size and
 *      compress every archive now; HARD: also delete the oldest archives, shipped data first,
 *      until usage would be below hard_percent), executed at once;
 *   3. still HARD and the buffer on the filesystem under pressure (same st_dev as
 *      disk_pressure.path): give the buffer's free pages back (acked chunks, incremental_vacuum,
 *      WAL truncate); still HARD and drop_unshipped: drop the oldest unshipped chunks, counted;
 *   4. truncate_shipped candidates: files whose committed offset equals their size;
 *   5. counters into the buffer.
 * Back on the loop thread (after_work) the candidates are truncated through the reader
 * (tail_truncate.c) and the writer recounts the buffer if chunks were dropped.
 * Invariants: one pass at a time; only the pass thread touches r->db; the loop thread only
 * touches the fields marked (loop) and reads the others after the pass ended.
 */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../common/log.h"
#include "internal.h"
#include "../tail/tail.h"
#include "../buffer/writer.h"

#define MAX_CANDS 256
#define DROP_ROUNDS 8

struct cand {
  uint64_t dev, ino, offset;
  char *path;
};

struct sw_retention {
  uv_work_t req;
  uv_loop_t *loop;
  const struct sw_config *cfg;
  struct sw_tail *tail;  /* borrowed */
  struct sw_writer *w;   /* borrowed */
  /* Redacts the paths the pass logs (file names may hold an e-mail). Used by the pass thread
   * and, after the pass ended, by its loop-side callback: never by two threads at once. */
  struct sw_redact_ctx *rctx;
  atomic_int cancel;
  int busy, stopped;     /* (loop) */
  struct sw_db *db;      /* pass thread */
  const char **sinks;
  enum sw_pressure level;
  struct cand cands[MAX_CANDS];
  size_t ncands;
  int buffer_changed;
  int other_fs_logged; /* pass thread: "buffer elsewhere" said once */
  uint64_t truncations, truncated_bytes; /* (loop) done since the last pass: counted by the next */
  uint64_t deferred;                     /* deferrals not yet persisted (see persist) */
};

uint64_t sw_retention_interval_ms(const struct sw_config *cfg) { return cfg->disk_pressure.interval_ms; }

int sw_retention_create(uv_loop_t *loop, const struct sw_config *cfg, struct sw_tail *tail, struct sw_writer *w,
                        const struct sw_redactor *redactor, struct sw_retention **out) {
  int any = cfg->nretention || cfg->disk_pressure.path;
  for (size_t i = 0; i < cfg->nsources; i++) any |= cfg->sources[i].truncate_shipped > 0;
  *out = NULL;
  if (!any) return SW_OK;
  struct sw_retention *r = calloc(1, sizeof *r);
  if (!r || !(r->sinks = calloc(cfg->nsinks + 1, sizeof *r->sinks)) ||
      (redactor && !(r->rctx = sw_redact_ctx_create(redactor)))) {
    if (r) free(r->sinks);
    free(r);
    return SW_ENOMEM;
  }
  for (size_t i = 0; i < cfg->nsinks; i++) r->sinks[i] = cfg->sinks[i].name;
  r->loop = loop;
  r->cfg = cfg;
  r->tail = tail;
  r->w = w;
  r->req.data = r;
  *out = r;
  return SW_OK;
}

/* Logs a change of level; counts entering soft (from normal) and entering hard. */
static void log_level(struct sw_retention *r, enum sw_pressure level, const struct sw_disk_usage *u,
                      uint64_t events[2]) {
  static const char *const names[] = {"normal", "soft", "hard"};
  if (level == r->level) return;
  if (level == SW_PRESSURE_HARD || (level == SW_PRESSURE_SOFT && r->level == SW_PRESSURE_NONE)) events[level - 1]++;
  SW_LOG(level > r->level ? SW_L_WARN : SW_L_INFO, "retention", "disk %s at %.1f%% used: pressure %s -> %s",
         r->cfg->disk_pressure.path, u->percent, names[r->level], names[level]);
  r->level = level;
}

/* Bytes still to free to reach the relief target (0: done, or usage unknown). */
static uint64_t still_needed(struct sw_retention *r) {
  struct sw_disk_usage u;
  uint64_t need = 0;
  if (sw_disk_usage_get(r->cfg->disk_pressure.path, &u) == 0) sw_pressure_level(r->cfg, &u, &need);
  return need;
}

/* Is the buffer on the filesystem under pressure? Vacuuming, deleting shipped history and
 * dropping chunks of a buffer elsewhere frees nothing there: they would lose data (or work)
 * and report bytes that do not relieve anything. Unknown (stat fails): no. */
static int buffer_on_pressured_fs(const struct sw_retention *r) {
  struct stat db, fs;
  const char *dbp = sw_db_path(r->db);
  if (!dbp || stat(dbp, &db) || stat(r->cfg->disk_pressure.path, &fs)) return 0;
  return db.st_dev == fs.st_dev;
}

/* Step 3: the buffer, while usage is above the relief target and only when the buffer lives
 * on the filesystem under pressure. */
static void relieve_buffer(struct sw_retention *r, uint64_t counters[4]) {
  uint64_t need;
  struct sw_db_reclaim rec;
  const char *dbp = sw_db_path(r->db);
  if (!still_needed(r)) return;
  if (!buffer_on_pressured_fs(r)) {
    if (!r->other_fs_logged)
      SW_LOG(SW_L_INFO, "retention", "buffer %s is not on the filesystem of %s: not vacuumed for its relief",
             dbp, r->cfg->disk_pressure.path);
    r->other_fs_logged = 1;
    return;
  }
  if (sw_db_reclaim_shipped(r->db, r->sinks, r->cfg->nsinks, &rec) == SW_OK) {
    uint64_t freed = rec.file_before > rec.file_after ? rec.file_before - rec.file_after : 0;
    SW_LOG(SW_L_INFO, "retention", "action=vacuum path=%s reason=pressure-shipped bytes=%llu freed=%llu chunks=%llu",
           dbp, (unsigned long long)rec.file_before, (unsigned long long)freed, (unsigned long long)rec.chunks);
    counters[0]++;
    counters[1] += freed;
    r->buffer_changed |= rec.chunks > 0;
  } else {
    SW_LOG(SW_L_ERROR, "retention", "buffer vacuum failed: %s", sw_db_errmsg(r->db));
  }
  for (int round = 0; round < DROP_ROUNDS && r->cfg->disk_pressure.drop_unshipped; round++) {
    if (!(need = still_needed(r))) return;
    if (sw_db_drop_unshipped(r->db, need, &rec)) {
      SW_LOG(SW_L_ERROR, "retention", "dropping unshipped chunks failed: %s", sw_db_errmsg(r->db));
      break;
    }
    uint64_t freed = rec.file_before > rec.file_after ? rec.file_before - rec.file_after : 0;
    SW_LOG(SW_L_WARN, "retention",
           "action=drop-unshipped path=%s reason=pressure-unshipped bytes=%llu freed=%llu chunks=%llu records=%llu",
           dbp, (unsigned long long)rec.stored_bytes, (unsigned long long)freed, (unsigned long long)rec.chunks,
           (unsigned long long)rec.records);
    counters[2]++;
    counters[3] += freed;
    r->buffer_changed |= rec.chunks > 0;
    if (!rec.chunks) break; /* nothing left to drop */
  }
}

/* Step 4: files whose every byte is committed and that passed their threshold. */
static void find_candidates(struct sw_retention *r, const struct sw_db_view *v) {
  for (size_t i = 0; v && i < v->nfiles && r->ncands < MAX_CANDS; i++) {
    const struct sw_db_file_row *row = &v->files[i];
    uint64_t limit = 0;
    for (size_t s = 0; s < r->cfg->nsources; s++)
      if (!strcmp(r->cfg->sources[s].name, row->source)) limit = r->cfg->sources[s].truncate_shipped;
    struct stat st;
    if (!limit || row->offset < limit || row->has_pending || stat(row->path, &st) ||
        (uint64_t)st.st_dev != row->dev || (uint64_t)st.st_ino != row->ino || (uint64_t)st.st_size != row->offset)
      continue;
    struct cand *c = &r->cands[r->ncands];
    if (!(c->path = strdup(row->path))) break;
    c->dev = row->dev;
    c->ino = row->ino;
    c->offset = row->offset;
    r->ncands++;
  }
}

static int db_offset(void *arg, uint64_t dev, uint64_t ino, uint64_t *off, int *pending, int *found) {
  return sw_db_file_offset(arg, dev, ino, off, pending, found);
}

static int lock_dir(const char *dir) {
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0 && flock(fd, LOCK_EX | LOCK_NB)) {
    close(fd);
    fd = -1;
  }
  return fd;
}

/* Counters into the buffer, only when something happened: a commit per pass would grow the WAL
 * on exactly the filesystem that is short of space. Deferrals alone wait for the next write. */
static void persist(struct sw_retention *r, struct sw_retention_result *res, const uint64_t pressure[2],
                    const uint64_t relief[4]) {
  const char *names[] = {"retention.pressure_soft_events", "retention.pressure_hard_events",
                         "retention.buffer_vacuums", "retention.buffer_vacuumed_bytes",
                         "retention.pressure_drops", "retention.pressure_dropped_file_bytes",
                         "retention.truncations", "retention.truncated_bytes"};
  uint64_t vals[] = {pressure[0], pressure[1], relief[0], relief[1], relief[2], relief[3],
                     r->truncations, r->truncated_bytes};
  uint64_t any = res->rotations + res->compressions + res->deletions + res->repairs + res->errors + res->signals;
  for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) any += vals[i];
  r->deferred += res->deferred;
  if (!any) return;
  res->deferred = r->deferred;
  if (sw_retention_count(r->db, res) || sw_db_counters_add(r->db, names, vals, sizeof vals / sizeof vals[0])) {
    SW_LOG(SW_L_WARN, "retention", "cannot save counters: %s", sw_db_errmsg(r->db));
    return;
  }
  r->truncations = r->truncated_bytes = r->deferred = 0;
}

static void pass(uv_work_t *req) {
  struct sw_retention *r = req->data;
  const struct sw_config *cfg = r->cfg;
  struct sw_db_view *v = NULL;
  struct sw_retention_plan *plan = NULL;
  struct sw_retention_result res = {0};
  struct sw_disk_usage u = {0};
  uint64_t need = 0, relief[4] = {0}, pressure[2] = {0};
  char err[512];
  enum sw_pressure level = SW_PRESSURE_NONE;
  int lockfd = lock_dir(cfg->data_dir); /* held by `spillway rotate`: skip this pass */
  if (lockfd < 0) return;
  if (!r->db && sw_db_open(cfg->data_dir, 0, &r->db, err, sizeof err)) {
    SW_LOG(SW_L_ERROR, "retention", "%s", err);
    goto cleanup;
  }
  if (cfg->disk_pressure.path && sw_disk_usage_get(cfg->disk_pressure.path, &u) == 0) {
    level = sw_pressure_level(cfg, &u, &need);
    log_level(r, level, &u, pressure);
  }
  if (sw_db_view_load(r->db, r->sinks, cfg->nsinks, &v)) {
    SW_LOG(SW_L_ERROR, "retention", "cannot read the buffer: %s", sw_db_errmsg(r->db));
    goto cleanup;
  }
  if (cfg->nretention) {
    int rc = sw_retention_plan(cfg, sw__ret_now_ns(), v, level, need, &plan);
    struct sw_retention_exec_opts o = {.cancel = &r->cancel, .file_offset = db_offset, .arg = r->db,
                                       .rctx = r->rctx};
    if (rc) SW_LOG(SW_L_ERROR, "retention", "planning failed: %s", sw_strerror(rc));
    else if (sw_retention_execute(plan, &o, &res) && atomic_load(&r->cancel)) goto cleanup;
  }
  if (level == SW_PRESSURE_HARD && !atomic_load(&r->cancel)) relieve_buffer(r, relief);
  find_candidates(r, v);
  persist(r, &res, pressure, relief);
cleanup:
  sw_retention_plan_free(plan);
  sw_db_view_free(v);
  close(lockfd);
}

static void pass_done(uv_work_t *req, int status) {
  struct sw_retention *r = req->data;
  (void)status;
  r->busy = 0;
  for (size_t i = 0; i < r->ncands; i++) {
    struct cand *c = &r->cands[i];
    uint64_t freed = 0;
    int64_t win[2];
    if (!r->stopped && sw_tail_truncate_shipped(r->tail, c->dev, c->ino, c->offset, &freed, win) == SW_OK) {
      const char *shown = c->path;
      size_t n = strlen(c->path);
      if (r->rctx) (void)sw_redact_line(r->rctx, c->path, n, 0, &shown, &n);
      SW_LOG(SW_L_INFO, "retention",
             "action=truncate path=%.*s reason=shipped bytes=%llu freed=%llu window_ns=%lld..%lld", (int)n, shown,
             (unsigned long long)c->offset, (unsigned long long)freed, (long long)win[0], (long long)win[1]);
      r->truncations++;
      r->truncated_bytes += freed;
    }
    free(c->path);
  }
  r->ncands = 0;
  if (r->buffer_changed && !r->stopped) sw_writer_resync(r->w);
  r->buffer_changed = 0;
}

void sw_retention_tick(struct sw_retention *r) {
  if (!r || r->busy || r->stopped) return;
  if (uv_queue_work(r->loop, &r->req, pass, pass_done) == 0) r->busy = 1;
}

void sw_retention_stop(struct sw_retention *r) {
  if (!r) return;
  r->stopped = 1;
  atomic_store(&r->cancel, 1);
}

void sw_retention_free(struct sw_retention *r) {
  if (!r) return;
  sw_db_close(r->db);
  sw_redact_ctx_destroy(r->rctx);
  free(r->sinks);
  free(r);
}
