/* tfile.h - one tailed file: identity, read position and ingest state. Private to tail.c and
 * tail/ingest.c, loop thread only.
 *
 * Offsets: read_off is how far the reader has handed bytes to ingest; line_off is the end of
 * the last line ingest has fully consumed. At every line boundary the pair (line_off, the
 * pending slots) describes exactly what of the file is accounted for: every record that ended
 * before line_off is in a sealed or open chunk, and the pieces of records still incomplete are
 * in `pend`. A seal commits line_off with each pending slot's start offset and time; a restart
 * rebuilds the slots by replaying [earliest start, line_off) with records suppressed. That is
 * exact because ingest is a deterministic function of the bytes (splits of long records fall on
 * max_record_bytes boundaries, not on read boundaries).
 */
#ifndef SW_TFILE_H
#define SW_TFILE_H

#ifndef PCRE2_CODE_UNIT_WIDTH
#define PCRE2_CODE_UNIT_WIDTH 8
#endif
#include <pcre2.h>
#include <stdint.h>

#include "../../common/buf.h"
#include "../../parsers/multiline.h"
#include "../buffer/chunk.h"
#include "../config/config.h"

struct sw_process_file;
struct sw_file_state;

#define SW_FP_LEN 256 /* bytes of a file's head that identify it across renames and restarts */

/* Pending slots: docker/cri partials per stream, the multiline group, an overlong line. */
enum { SW_PEND_STDOUT = 0, SW_PEND_STDERR = 1, SW_PEND_MULTI = 2, SW_PEND_LONG = 3, SW_PEND_N = 4 };

struct sw_pend {
  struct sw_buf buf;
  uint64_t start_off; /* file offset of the first physical line of this record */
  int64_t ts;
  int stream, flags;
  uint32_t lines;
  int active;
  /* Multiline presets: the last tent_n lines (blank ones, from tent_from in buf) join only if
   * the trace goes on after them; else they are records of their own. */
  uint32_t tent_n;
  size_t tent_from;
  int64_t tent_ts;
};

struct sw_source_rt {
  const struct sw_source_conf *conf;
  const char *format_name; /* docker | cri | json | logfmt | text */
  pcre2_code *ml_start;
  pcre2_match_data *ml_md;
  uint64_t rotations; /* renames and copytruncates seen (metrics) */
};

enum sw_tfile_state { SW_TF_ACTIVE = 0, SW_TF_RENAMED = 1, SW_TF_DELETED = 2 };

struct sw_tfile {
  struct sw_tfile *next;
  int64_t id;
  struct sw_source_rt *src;
  char *path;        /* real path: identity, the stored state, opening; never logged */
  char *disp;        /* path as the agent's log and /metrics show it: redacted once, when the
                      * file is found or renamed (an e-mail in a file name must not leak) */
  char *labels_json; /* redacted values (tail/labels.h) */
  uint32_t labels_gen; /* bumped whenever labels_json changes */
  uint32_t proc_gen;   /* labels_gen the processing state was made for */
  struct sw_process_file *proc; /* agent/process/process.h; NULL until the first record */
  int fd;
  uint64_t dev, ino;
  uint64_t fp_hash;
  uint32_t fp_len;
  uint64_t read_off, line_off, size;
  /* Replay after a restart: bytes from the earliest pending slot's start up to the committed
   * offset are fed again to rebuild the pending slots; records they complete were already
   * committed and are suppressed. Only offsets and times of pending slots are stored, never
   * their bytes (which may hold secrets not yet redactable). 0 = not replaying. */
  uint64_t replay_until;
  int64_t replay_ts[SW_PEND_N];
  uint64_t cur_line_end; /* end offset of the physical line being processed */
  enum sw_tfile_state state;
  int64_t last_growth_ms;
  int via_link;      /* reached through a symlink (its target's directory is watched) */
  int seen;
  /* ingest */
  struct sw_chunk_builder cb;
  int cb_ready;
  int seal_wanted;
  int bursting; /* the last read stopped with more to read (budget, backpressure): not a trickle */
  int64_t chunk_started_ms;
  uint64_t chunk_in_bytes;
  uint64_t n_records, n_in_bytes, n_parse_errors; /* sealed into chunks since start (metrics) */
  int64_t ml_last_ms;
  enum sw_ml_preset ml_preset; /* the source's, or the pod's spillway.io/multiline */
  /* Kubernetes (tail/kube.c): the pod of a CRI file; while kube_wait its metadata is awaited
   * (until kube_deadline_ms) and the file is not read; an excluded file is not read at all. */
  char *kube_uid, *kube_ctr;
  int kube_wait, excluded;
  int64_t kube_deadline_ms;
  char payload_format[8]; /* spillway.io/format: json | logfmt | text; "" unset */
  struct sw_ml_state ml_st;
  struct sw_pend pend[SW_PEND_N];
  /* Set by a source whose stored state is not the file's own (a journal's stream: its cursor
   * is the journal's, agent/journal/): sw_ingest_seal takes the state to commit from it. It
   * fills *fs and may point fs->pending into `blob`. NULL: the file's own state. */
  int (*state_fn)(void *arg, struct sw_tfile *f, struct sw_file_state *fs, struct sw_buf *blob);
  void *state_arg;
};

/* FNV-1a 64 over the first n bytes. */
uint64_t sw_fp_hash(const void *p, size_t n);

#endif
