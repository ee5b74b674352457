/* internal.h - private to agent/tail/ (open.c, scan.c, retention.c, stats.c, tail.c) */
#ifndef SW_TAIL_INT_H
#define SW_TAIL_INT_H

#include <stdint.h>
#include <uv.h>

#include "../kube/kube.h"
#include "ownfiles.h"
#include "tail.h"
#include "tfile.h"

#define SW_READ_BUF (256 * 1024)
#define SW_OPEN_MAX (2u << 20)     /* raw bytes in open chunks before the busiest is sealed */
#define SW_ROTATE_WAIT_MS 5000     /* keep reading a renamed file this long after it stops growing */
#define SW_EOF_SEAL_BYTES (256u << 10)
#define SW_MAX_WATCHES 4096
#define SW_MAX_ORPHANS 4096
#define SW_COPY_DEFER_SCANS 3
#define SW_MAX_REPORTED 4096 /* skipped paths remembered so each is logged once */

/* A stored state not (yet) attached to an open file: from the database at start, or left by a
 * truncation or a released renamed file. */
struct sw_known {
  struct sw_known *next;
  int64_t id;
  char *source, *path;
  uint64_t dev, ino, fp_hash, offset;
  uint32_t fp_len;
  void *pending;
  size_t pending_len;
};

#define SW_GEN_SEEN 64 /* files remembered per symlink target directory (kubelet keeps ~5) */

/* A watched directory. For the target directory of a symlinked file (Kubernetes'
 * /var/log/containers/NAME.log -> /var/log/pods/.../0.log) it also tracks rotated generations
 * (0.log.<anything>): every file of that directory this agent followed is remembered by inode
 * and head fingerprint, so a generation that was created and renamed away between two scans is
 * still found and read once, and one already read is never read again. */
struct sw_watch {
  uv_fs_event_t ev;
  struct sw_tail *t;
  char *dir;
  int seen;
  int64_t gen_since_ns;  /* > 0: a symlink target dir; generations renamed before it (the
                            buffer's creation) are history */
  int gen_pass;          /* a symlinked file is in it (this pass) */
  struct sw_gen_seen {
    uint64_t ino, fp_hash;
    uint32_t fp_len;
  } gens[SW_GEN_SEEN];   /* ring of the files followed here */
  size_t ngens;
};

struct sw_deferred {
  uint64_t dev, ino;
  int scans;
};

struct sw_tail {
  uv_loop_t *loop;
  const struct sw_config *cfg;
  struct sw_ingest *ing;
  struct sw_writer *w;
  struct sw_source_rt *srcs;
  size_t nsrcs;
  struct sw_tfile *files;
  struct sw_known *known;
  size_t nknown;
  struct sw_watch **watches;
  size_t nwatches;
  struct sw_deferred *deferred;
  size_t ndeferred;
  struct sw_own *own;  /* the agent's own files, never followed */
  uint64_t *reported;  /* hashes of the paths skipped and logged (SW_MAX_REPORTED at most) */
  size_t nreported;
  uv_timer_t scan_timer, poll_timer, kick_timer;
  uv_timer_cb on_kick, on_scan; /* tail.c's timer callbacks, so lower files wake it without a call up */
  char *rbuf;
  int64_t next_id;
  int first_scan_done, stopping, paused, scan_pending;
  struct sw_kube *kube; /* NULL: kubernetes off (tail/kube.c) */
  uint64_t kube_gen, kube_misses;
  /* Rotated generations behind symlinks renamed after this are backlog: the buffer's creation
   * (what was rotated before spillway ever ran is history). */
  int64_t gen_epoch_ns;
};

/* tail/scan.c */
void sw__tail_scan(struct sw_tail *t);
void sw__tail_update_watches(struct sw_tail *t);
void sw__tail_close_watches(struct sw_tail *t);
/* Rotated generations in the watched target directories of symlinked files: opened and drained
 * (after the globs' scan, so the current file is already followed). */
void sw__tail_scan_generations(struct sw_tail *t);
/* A read pass soon (delay_ms; 0: next loop turn). */
static inline void sw__tail_schedule_read(struct sw_tail *t, uint64_t delay_ms) {
  if (t->stopping) return;
  if (uv_is_active((uv_handle_t *)&t->kick_timer) && delay_ms > 0) return;
  uv_timer_start(&t->kick_timer, t->on_kick, delay_ms, 0);
}
/* A rescan of the globs soon (events come in bursts: debounced). */
static inline void sw__tail_schedule_scan(struct sw_tail *t) {
  if (t->stopping || t->scan_pending) return;
  t->scan_pending = 1;
  uv_timer_start(&t->scan_timer, t->on_scan, 20, 0);
}
/* tail/open.c */
int sw__tail_fingerprint(int fd, uint32_t want, uint64_t *hash, uint32_t *len);
void sw__tail_open_new(struct sw_tail *t, struct sw_source_rt *src, const char *path);
void sw__tail_known_free(struct sw_known *k);
/* path as the agent may show it (log lines, /metrics): redacted by the ingest's redactor.
 * Malloc'd, caller frees; NULL on allocation failure. Loop thread. */
char *sw__tail_redacted(struct sw_tail *t, const char *path);
/* tail/kube.c: a CRI file's pod looked up at open; all files again when the cache changed. */
void sw__tail_kube_open(struct sw_tail *t, struct sw_tfile *f);
/* Returns 1 while a file still awaits its pod's metadata. */
int sw__tail_kube_poll(struct sw_tail *t);
/* Not read now: its pod's metadata is awaited, or the pod is excluded. */
static inline int sw__tail_kube_hold(const struct sw_tfile *f) { return f->kube_wait || f->excluded; }
/* tail/retention.c: after the first scan, drain stored files renamed while the agent was down. */
void sw__tail_find_renamed(struct sw_tail *t);
/* f was truncated to size (< its offset): continue it from 0 under a new id. */
void sw__tail_truncated(struct sw_tail *t, struct sw_tfile *f, uint64_t size);
/* A rotated or deleted file read to its end: state saved, closed, unlinked from *pp. */
void sw__tail_release(struct sw_tail *t, struct sw_tfile **pp);

#endif
