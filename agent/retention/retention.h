/* retention.h - rotation, compression and pruning of local log files, and disk-pressure relief.
 *
 * PLAN -> EXECUTE. sw_retention_plan() looks at the filesystem (directory listings, stat, the
 * first bytes of files whose identity must be confirmed, the frame headers of NAME.1.zst) and
 * at a snapshot of the buffer (which files a source still has to read, what is shipped), and
 * returns the list of actions; it never changes anything and opens nothing for writing, with
 * O_NOATIME so that no timestamp moves. sw_retention_execute() performs a plan, re-checking each
 * file's identity first. `spillway rotate --dry-run` prints a plan; `spillway rotate` and the
 * agent print/execute the same plan, so the dry run is exactly what a real run would do.
 *
 * Names (logrotate's numbering without dateext): NAME is the live file, NAME.1 the newest
 * archive, NAME.2 the one before...; compressed archives are NAME.N.zst. A rotation shifts every
 * archive up by one (highest first) and makes NAME into NAME.1. Temporaries are
 * NAME.N[.zst].tmp-XXXXXX; in-progress archives (compression in pieces, under disk pressure,
 * punch.c) NAME.N.zst.tmp-part-<source inode>. All end in .tmp-... (`*.tmp-*`).
 *
 * Order of a plan: per file family (NAME and its archives) recovery, then keep-rule deletes;
 * then, above disk_pressure.hard_percent, deletes of the oldest archives of all families
 * (already-shipped data first) until usage would be below the relief target (the midpoint of
 * soft_percent and hard_percent); then per retention
 * entry: shifts and rotations, one postrotate signal, compressions.
 *
 * Crash safety (kill -9 at any instant leaves no corrupt or missing file):
 *   compress:     NAME.N -> NAME.N.zst.tmp-X (fsync) -> rename NAME.N.zst, fsync dir -> unlink NAME.N
 *   copytruncate: NAME -> NAME.1[.zst].tmp-X (fsync) -> rename, fsync dir -> read the bytes
 *                 appended meanwhile -> truncate NAME -> append them as one more frame, fsync
 *   rename:       NAME -> NAME.1 (atomic)
 * and every plan starts by finishing or rolling back what a crash interrupted:
 *   a temporary file           -> deleted (its source still holds every byte)
 *   NAME.N.zst and NAME.N both -> the .zst is decompressed and compared with NAME.N: equal, NAME.N
 *                                 is unlinked; different, the .zst is deleted (compressed again)
 *   NAME.1.zst ends in a cut frame (crash while appending the copytruncate tail)
 *                              -> cut back to its last complete frame
 *   an in-progress archive     -> finished (RESUME), never deleted: the blocks of its source
 *                                 already in it may be released (punch.c)
 * Under disk pressure compressions go in pieces (punch.c: bounded free space needed,
 * the source's archived blocks released as it goes). Relief acts only on the filesystem of
 * disk_pressure.path: pressure rotations and deletes only for files there, and the buffer is
 * vacuumed only when it lives there.
 * A file that a source still has to read (the buffer's offset for its device/inode, confirmed
 * by its head fingerprint, is below its size, or it has pending pieces; or a source's glob
 * matches it and the buffer has no row for it) is never deleted, compressed away or truncated:
 * the action becomes a `defer`.
 */
#ifndef SW_RETENTION_H
#define SW_RETENTION_H

#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <uv.h>

#include "../../common/error.h"
#include "../buffer/buffer.h"
#include "../config/config.h"

enum sw_pressure { SW_PRESSURE_NONE = 0, SW_PRESSURE_SOFT = 1, SW_PRESSURE_HARD = 2 };

/* Usage of the filesystem holding disk_pressure.path, as df computes it. */
struct sw_disk_usage {
  uint64_t used, avail; /* bytes; used + avail is what non-root users can have */
  double percent;       /* used / (used + avail) * 100 */
};
int sw_disk_usage_get(const char *path, struct sw_disk_usage *u) SW_MUST_CHECK;
/* The level for u under cfg->disk_pressure (NONE when disk_pressure is off), and the bytes to
 * free for usage to be below the relief target, the midpoint of soft_percent and hard_percent
 * (0 when below it). Hard relief runs once usage is above hard_percent and goes on until the
 * target is reached, so that the writers do not push it straight back over. */
enum sw_pressure sw_pressure_level(const struct sw_config *cfg, const struct sw_disk_usage *u,
                                   uint64_t *need);

enum sw_ret_kind {
  SW_RET_DROP_TMP,  /* recovery: delete a temporary file */
  SW_RET_FINISH,    /* recovery: path = NAME.N (plain), to = NAME.N.zst: verify, unlink path */
  SW_RET_CUT,       /* recovery: cut path (NAME.1.zst) back to `keep` bytes */
  SW_RET_DELETE,    /* delete an archive */
  SW_RET_SHIFT,     /* rename archive path -> to (number + 1) */
  SW_RET_ROTATE,    /* live path -> to, by the entry's method */
  SW_RET_SIGNAL,    /* send the entry's postrotate signal; path = pid file */
  SW_RET_COMPRESS,  /* path (NAME.N) -> to (NAME.N.zst) */
  SW_RET_DEFER,     /* no change: reported (a source still reads the file, ...) */
  SW_RET_RESUME,    /* recovery: finish the in-progress archive path (NAME.N.zst.tmp-part-<ino>)
                     * into to (NAME.N.zst) from src, the file of that inode (NULL: gone) */
};

struct sw_ret_action {
  enum sw_ret_kind kind;
  const struct sw_retention_conf *conf; /* borrowed from the config */
  char *path, *to;                      /* owned */
  char *src;                            /* owned; RESUME: the file being compressed, or NULL */
  const char *reason;                   /* static text */
  uint64_t bytes;                       /* size of path at plan time */
  uint64_t frees;                       /* bytes freed; an upper bound when frees_upto */
  int frees_upto;                       /* depends on compression */
  uint64_t keep;                        /* CUT: bytes kept; DEFER: the source's offset */
  uint64_t dev, ino;                    /* identity of path at plan time */
  int family;                           /* actions of one family share it; -1: none */
  int compress;                         /* ROTATE copytruncate: straight into NAME.1.zst */
  int fresh;                            /* COMPRESS of a file this plan renames: let its writer go */
  int tailed;                           /* a source follows path: re-check before truncating */
  int live;                             /* RESUME: src is the live file (copytruncate) */
};

struct sw_retention_plan {
  struct sw_ret_action *acts;
  size_t n, cap;
  enum sw_pressure pressure;
  uint64_t need;    /* HARD: bytes to free to get below the relief target */
  uint64_t planned; /* bytes the deletes of this plan free */
  int nfamilies;
};

/* Computes the plan. view may be NULL (no buffer: nothing is tailed). pressure and need come
 * from sw_pressure_level (NONE/0 to ignore disk pressure). now_ns is wall-clock time. On
 * success *out is a new plan (sw_retention_plan_free); on failure nothing is allocated. */
int sw_retention_plan(const struct sw_config *cfg, int64_t now_ns, const struct sw_db_view *view,
                      enum sw_pressure pressure, uint64_t need, struct sw_retention_plan **out) SW_MUST_CHECK;
void sw_retention_plan_free(struct sw_retention_plan *p);
/* One line per action: "KIND PATH[ -> TO] bytes=N frees=N|0..N reason=R". */
void sw_retention_plan_print(const struct sw_retention_plan *p, FILE *f);

struct sw_retention_exec_opts {
  atomic_int *cancel; /* may be NULL; non-zero aborts between blocks (temporaries are removed) */
  /* Fresh committed offset of a file (buffer), for truncation of a tailed file; may be NULL. */
  int (*file_offset)(void *arg, uint64_t dev, uint64_t ino, uint64_t *offset, int *pending, int *found);
  void *arg;
  /* May be NULL. The paths the action log lines quote are redacted with it (a file name may hold
   * an e-mail); borrowed, used only by this call's thread. */
  struct sw_redact_ctx *rctx;
};

/* What an execution did; also the names of the persisted counters (retention.<field>). */
struct sw_retention_result {
  uint64_t rotations, compressions, deletions, repairs, deferred, errors, signals;
  uint64_t bytes_freed;           /* deletes + compressions + repairs */
  uint64_t compressed_in, compressed_out;
  uint64_t pressure_deletions;    /* deletes made for hard pressure (also in deletions) */
};

/* Executes p in order. Each action's outcome is logged (component "retention") with the bytes
 * it freed. An action whose file changed since the plan is skipped; after a failure the rest
 * of that family is skipped. Returns 0, or the first error (the result still counts it). */
int sw_retention_execute(const struct sw_retention_plan *p, const struct sw_retention_exec_opts *o,
                         struct sw_retention_result *r) SW_MUST_CHECK;

/* Adds r to the buffer's counters (retention.*). */
int sw_retention_count(struct sw_db *db, const struct sw_retention_result *r) SW_MUST_CHECK;

/* `spillway rotate [--dry-run]`: plans once with the current disk pressure, prints the plan on
 * out; without dry_run also executes it. Returns a process exit code. */
int sw_retention_cli(const struct sw_config *cfg, int dry_run, FILE *out);

/* ---- the agent's periodic pass (retention/agent.c) ----
 * Pass states: IDLE -> RUNNING (a uv_queue_work job: disk usage, plan, execute, buffer relief,
 * truncate_shipped candidates, counters; under an exclusive flock of data_dir) -> APPLYING
 * (loop thread: truncate_shipped through the reader, writer resync) -> IDLE. A tick while a
 * pass runs is skipped. Stop sets the cancel flag (a compression in progress stops between
 * blocks and removes its temporary file; one in pieces keeps its in-progress archive for the
 * next run) and the pass's loop-side work is skipped. */
struct sw_retention;
struct sw_tail;
struct sw_writer;
/* *out is NULL when nothing needs a periodic pass (no retention, disk_pressure or
 * truncate_shipped configured). Borrowed: loop, cfg, tail, w, redactor (they outlive the pass;
 * redactor may be NULL: the paths the pass logs are then shown as they are). */
int sw_retention_create(uv_loop_t *loop, const struct sw_config *cfg, struct sw_tail *tail,
                        struct sw_writer *w, const struct sw_redactor *redactor,
                        struct sw_retention **out) SW_MUST_CHECK;
uint64_t sw_retention_interval_ms(const struct sw_config *cfg);
/* Starts a pass unless one is running. Loop thread. */
void sw_retention_tick(struct sw_retention *r);
/* Cancels a running pass; later ticks do nothing. Loop thread. The loop must run until the
 * pass's callback has run (uv_run after closing handles does), then sw_retention_free. */
void sw_retention_stop(struct sw_retention *r);
void sw_retention_free(struct sw_retention *r);

#endif
