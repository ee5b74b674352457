/* tail.h - finds and follows the files of every source. Loop thread only.
 *
 * File life cycle:
 *   discovered -> ACTIVE --(path gone or points elsewhere)--> RENAMED | DELETED
 *   RENAMED: read to its end; released after rotate_wait without growth (its state row stays
 *            as an orphan, so the file is continued if it shows up under a matched name)
 *   DELETED: read to its end, then released at once and its state row forgotten, so no
 *            descriptor keeps the freed disk space
 *   ACTIVE --(size < offset: copytruncate)--> ACTIVE from offset 0 under a new id; the old
 *            state becomes an orphan that a visible copy inherits by fingerprint.
 * Identity is (device, inode) confirmed by a fingerprint of the first SW_FP_LEN bytes; a stored
 * state whose inode matches but fingerprint does not is an inode reuse: read from the start.
 * New files are found by inotify (uv_fs_event on every directory a glob can match in) and by a
 * periodic rescan as the fallback; data is polled every poll interval and read on events.
 */
#ifndef SW_TAIL_H
#define SW_TAIL_H

#include <uv.h>

#include "../buffer/buffer.h"
#include "../config/config.h"
#include "ingest.h"
#include "../buffer/writer.h"

struct sw_tail;

int sw_tail_create(uv_loop_t *loop, const struct sw_config *cfg, struct sw_ingest *ing,
                   struct sw_writer *w, struct sw_tail **out, char *err, size_t errlen) SW_MUST_CHECK;
/* Restores a stored file state (called for each row before sw_tail_start). */
int sw_tail_add_known(struct sw_tail *t, const struct sw_file_state *st) SW_MUST_CHECK;
/* File state ids are one sequence for every source: a stored id another reader owns (a
 * journal's), and a new one for it. */
void sw_tail_reserve_id(struct sw_tail *t, int64_t id);
int64_t sw_tail_new_id(struct sw_tail *t);
/* Before start: when the buffer was created (0: unknown, then the start counts). A rotated
 * generation behind a symlink renamed before it is history (rotated before spillway ran);
 * after it, one the buffer holds no state for is backlog and read from its start. */
void sw_tail_set_epoch(struct sw_tail *t, int64_t created_ns);
/* Before start: pod metadata for CRI files (NULL: off); borrowed, must outlive the tail. */
struct sw_kube;
void sw_tail_set_kube(struct sw_tail *t, struct sw_kube *k);
/* Files not read because their pod is excluded / awaiting metadata; pods read without
 * metadata after kubernetes.wait (since start). */
void sw_tail_kube_counts(const struct sw_tail *t, uint64_t *excluded, uint64_t *waiting,
                         uint64_t *misses);
/* First scan, then timers and watches. */
int sw_tail_start(struct sw_tail *t) SW_MUST_CHECK;
/* truncate_shipped (tail/retention.c): truncates the followed file (dev, ino) to 0 if the reader
 * is exactly at `committed` (the buffer's committed offset), holds nothing pending, and the
 * file's size is still `committed` right before the truncation; then reads it from 0 as after
 * a copytruncate. *freed gets the bytes released; window_ns the monotonic interval between the
 * last size check and the truncation (a write landing there is lost: docs/architecture.md).
 * SW_EAGAIN: not now (something unread or pending); SW_ENOTFOUND: not followed. */
int sw_tail_truncate_shipped(struct sw_tail *t, uint64_t dev, uint64_t ino, uint64_t committed,
                             uint64_t *freed, int64_t window_ns[2]) SW_MUST_CHECK;
/* ---- figures for /metrics (tail/stats.c), loop thread ---- */
struct sw_tail_file_info {
  const char *source, *path; /* valid during the callback; path redacted (tail/tfile.h: disp) */
  uint64_t offset;           /* bytes handed to ingest (read offset) */
  uint64_t size;             /* current size (fstat of the open descriptor) */
  int active;                /* 0: renamed or deleted, being drained */
  uint64_t records, bytes, parse_errors; /* handed to the buffer since the agent started */
};
/* Calls cb for every followed file. */
void sw_tail_files(struct sw_tail *t, void (*cb)(void *arg, const struct sw_tail_file_info *fi),
                   void *arg);
/* Rotations seen by source i of the config (rename+create and copytruncate), since start. */
uint64_t sw_tail_rotations(const struct sw_tail *t, size_t i);
/* Resume reading soon (writer made progress). */
void sw_tail_kick(struct sw_tail *t);
/* Seals every open chunk (pending pieces are saved with the offsets), closes files and
 * handles. The loop must run afterwards to finish closing; then sw_tail_free. */
void sw_tail_stop(struct sw_tail *t);
void sw_tail_free(struct sw_tail *t);

#endif
