/* internal.h - private to agent/retention/: the scanned file families and the zstd stream. */
#ifndef SW_RETENTION_INT_H
#define SW_RETENTION_INT_H

#include <stdatomic.h>
#include <stdint.h>
#include <sys/stat.h>
#include <zstd.h>

#include "retention.h"

#define SW__RET_MAX_FAMILIES 100000 /* a scan stops growing past this (logged) */
#define SW__RET_QUIET_MS 250        /* a rotated file untouched this long has no writer left */

/* One file of a family, as stat saw it. */
struct sw__ret_file {
  char *path;       /* owned; NULL: absent */
  uint64_t size, dev, ino;
  int64_t mtime_ns, ctime_ns;
  int64_t btime_ns; /* birth time; 0 unknown (live files only) */
  unsigned num;     /* archive number; 0 for the live file and temporaries */
  uint64_t src_ino; /* in-progress archive: the inode of the file it is compressing */
  int zst;          /* NAME.N.zst */
};

/* NAME and everything named after it. */
struct sw__ret_family {
  const struct sw_retention_conf *conf; /* borrowed */
  char *base;                           /* NAME, owned */
  struct sw__ret_file live;             /* live.path NULL: no live file right now */
  struct sw__ret_file *arch;            /* archives, any order; NAME.N and NAME.N.zst may both be */
  size_t narch, cap;
  struct sw__ret_file *tmps;            /* NAME.N[.zst].tmp-XXXXXX */
  size_t ntmp, tmpcap;
  struct sw__ret_file *parts;           /* in-progress archives NAME.N.zst.tmp-part-<ino> */
  size_t npart, partcap;
};

struct sw__ret_scan {
  struct sw__ret_family *fam;
  size_t n, cap;
};

/* retention/scan.c: finds every family of every retention entry (first entry wins a name).
 * Reads directories with O_NOATIME; never opens a file. Files under data_dir are skipped. */
int sw__ret_scan(const struct sw_config *cfg, struct sw__ret_scan *s) SW_MUST_CHECK;
void sw__ret_scan_free(struct sw__ret_scan *s);
/* open(path, O_RDONLY|O_NOATIME|O_NOFOLLOW|O_CLOEXEC), without O_NOATIME if that is refused. */
int sw__ret_open_ro(const char *path);
/* Does some source's glob (and not its exclude) match path? */
int sw__ret_source_matches(const struct sw_config *cfg, const char *path);

/* retention/zst.c: an archive being written, compressed (level > 0) or plain (level 0).
 * Memory: two ~128 KiB buffers plus the zstd context: a 4 MiB window (long-distance matching)
 * and match-finder tables capped at 2^20 entries, about 6 MiB at level 3 and at most ~14 MiB at
 * level 19. */
struct sw__zout {
  int fd;          /* borrowed */
  ZSTD_CCtx *cctx; /* NULL: plain copy */
  char *in, *out;
  size_t in_len, in_cap, out_cap;
  uint64_t in_bytes, out_bytes;
  int open_frame;  /* bytes fed since the last frame end */
};
int sw__zout_init(struct sw__zout *z, int fd, int level) SW_MUST_CHECK;
int sw__zout_write(struct sw__zout *z, const void *p, size_t n) SW_MUST_CHECK;
/* Ends the current frame and writes everything out (plain: flushes). */
int sw__zout_end(struct sw__zout *z) SW_MUST_CHECK;
void sw__zout_free(struct sw__zout *z);
/* Feeds [*off, end of src) into z, advancing *off; checks cancel between blocks
 * (SW_EAGAIN when cancelled). *copied gets the bytes of this call. */
int sw__copy_to_eof(int src, uint64_t *off, struct sw__zout *z, atomic_int *cancel,
                    uint64_t *copied) SW_MUST_CHECK;
/* Walks the frames of a .zst (headers and block headers only): *good = end of the last
 * complete frame (== size when the file is whole). SW_ECORRUPT when the first frame is bad. */
int sw__zst_walk(int fd, uint64_t size, uint64_t *good) SW_MUST_CHECK;
/* Decompresses zfd (checksums verified) and compares with src from offset 0: *equal = 1 when
 * identical and src has nothing more. */
int sw__zst_equal(int zfd, int src, atomic_int *cancel, int *equal) SW_MUST_CHECK;

/* exec.c helpers shared with run.c and punch.c */
int64_t sw__ret_now_ns(void);

/* One execution (sw_retention_execute): its options, its result, the failure being reported. */
struct sw__ret_ex {
  const struct sw_retention_exec_opts *o;
  struct sw_retention_result *r;
  int err;             /* errno of the failure being reported */
  int pieces;          /* compress in pieces, punching the source (the plan is under pressure) */
  char shown[2][4096]; /* the paths of the line being logged, redacted (sw__ret_show) */
};
int sw__ret_cancelled(const struct sw__ret_ex *x);
/* path as a log line quotes it (redacted), in slot 0 or 1; valid until the slot is reused. */
const char *sw__ret_show(struct sw__ret_ex *x, int slot, const char *path);
/* Logs an action's outcome ("action=KIND path=P ... freed=N EXTRA"). */
void sw__ret_done(struct sw__ret_ex *x, const struct sw_ret_action *a, uint64_t freed, const char *extra);
/* Logs a failure (x->err if set), counts it; returns rc (SW_EIO if 0). */
int sw__ret_fail(struct sw__ret_ex *x, const struct sw_ret_action *a, const char *what, int rc);
int sw__ret_fsync_dir(const char *path);
int sw__ret_rename_noreplace(const char *from, const char *to);
void sw__ret_copy_meta(int fd, const struct stat *st);
/* Has the buffer committed every byte of a's file (a->dev, a->ino) up to size? */
int sw__ret_caught_up(const struct sw__ret_ex *x, const struct sw_ret_action *a, uint64_t size);

/* punch.c: compression in pieces into NAME.N.zst.tmp-part-<source inode>, releasing
 * the source's archived blocks as it goes; resumable after a crash (see the file's comment).
 * a->kind is SW_RET_COMPRESS (src = a->path, unlinked at the end), SW_RET_ROTATE (copytruncate:
 * src = a->path, truncated at the end) or SW_RET_RESUME (src = a->src, may be NULL; part =
 * a->path). Returns 0, SW_EAGAIN (left in progress: a later run finishes it) or an error. */
int sw__ret_pieces(struct sw__ret_ex *x, const struct sw_ret_action *a) SW_MUST_CHECK;
#define SW__RET_PART ".tmp-part-" /* TARGET.tmp-part-<source inode, decimal> */

#endif
