/* internal.h - private to agent/retention/: the scanned file families and the zstd stream. */
#ifndef SW_RETENTION_INT_H
#define SW_RETENTION_INT_H

#include <stdatomic.h>
#include <stdint.h>
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

/* retention/exec.c helpers shared with retention/run.c */
int64_t sw__ret_now_ns(void);

#endif
