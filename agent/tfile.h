/* tfile.h - one tailed file: identity, read position and ingest state. Private to tail.c and
 * ingest.c, loop thread only.
 *
 * Offsets: read_off is how far the reader has handed bytes to ingest; line_off is the end of
 * the last line ingest has fully consumed. At every line boundary the pair (line_off, the
 * pending slots) describes exactly what of the file is accounted for: every record that ended
 * before line_off is in a sealed or open chunk, and the pieces of records still incomplete are
 * in `pend`. A seal commits that pair with the chunk, so a restart resumes exactly there.
 */
#ifndef SW_TFILE_H
#define SW_TFILE_H

#ifndef PCRE2_CODE_UNIT_WIDTH
#define PCRE2_CODE_UNIT_WIDTH 8
#endif
#include <pcre2.h>
#include <stdint.h>

#include "../common/buf.h"
#include "chunk.h"
#include "config.h"

#define SW_FP_LEN 256 /* bytes of a file's head that identify it across renames and restarts */

/* Pending slots: docker/cri partials per stream, the multiline group, an overlong line. */
enum { SW_PEND_STDOUT = 0, SW_PEND_STDERR = 1, SW_PEND_MULTI = 2, SW_PEND_LONG = 3, SW_PEND_N = 4 };

struct sw_pend {
  struct sw_buf buf;
  int64_t ts;
  int stream, flags;
  uint32_t lines;
  int active;
};

struct sw_source_rt {
  const struct sw_source_conf *conf;
  const char *format_name; /* docker | cri | json | logfmt | text */
  pcre2_code *ml_start;
  pcre2_match_data *ml_md;
};

enum sw_tfile_state { SW_TF_ACTIVE = 0, SW_TF_RENAMED = 1, SW_TF_DELETED = 2 };

struct sw_tfile {
  struct sw_tfile *next;
  int64_t id;
  struct sw_source_rt *src;
  char *path;
  char *labels_json;
  int fd;
  uint64_t dev, ino;
  uint64_t fp_hash;
  uint32_t fp_len;
  uint64_t read_off, line_off, size;
  enum sw_tfile_state state;
  int64_t last_growth_ms, gone_ms;
  int seen;
  /* ingest */
  struct sw_chunk_builder cb;
  int cb_ready;
  int seal_wanted;
  int64_t chunk_started_ms;
  uint64_t chunk_in_bytes;
  int64_t ml_last_ms;
  struct sw_pend pend[SW_PEND_N];
};

/* FNV-1a 64 over the first n bytes. */
uint64_t sw_fp_hash(const void *p, size_t n);

#endif
