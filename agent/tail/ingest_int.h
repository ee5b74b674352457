/* ingest_int.h - private to tail/ingest.c (lines, feeds, ticks) and tail/records.c (records ->
 * multiline groups, redaction, splitting -> chunks, sealing). Loop thread only. */
#ifndef SW_INGEST_INT_H
#define SW_INGEST_INT_H

#include "ingest.h"

/* Internal flag: the line was redacted already (pieces of a split record). Never stored. */
#define SW_REC_REDACTED (1 << 5)

struct sw_ingest {
  const struct sw_config *cfg;
  struct sw_writer *w;
  /* Redaction: every record passes through before it is buffered. Match counts travel to the
   * database as deltas with the next sealed chunk (same transaction). */
  struct sw_redact_ctx *rctx;
  const char **rnames; /* "redact:<rule>", owned */
  uint64_t *rlast;     /* counts already attached to a job */
  size_t nrules;
  char *scratch; /* unescaped docker "log" values; as large as the longest physical line */
  size_t scratch_cap;
  size_t max_line; /* most bytes one feed hands over between two line boundaries */
  uint64_t open_bytes;
  int64_t now_ns; /* read time of the current feed, for records without their own time */
  int64_t now_ms; /* monotonic time of the current feed (multiline quiet time) */
  struct sw_process *proc; /* extract, log metrics, filters; NULL: none configured */
};

/* ---- records.c ---- */
/* A logical line (partials joined), starting at file offset start -> multiline -> record. */
void sw__ingest_emit_logical(struct sw_ingest *ing, struct sw_tfile *f, int64_t ts, int stream, int flags,
                             const char *s, size_t n, uint64_t start);
/* One piece of a docker/cri line: partial pieces wait in the stream's slot. */
void sw__ingest_emit_piece(struct sw_ingest *ing, struct sw_tfile *f, int64_t ts, int stream, int partial,
                           const char *s, size_t n, uint64_t start);
/* A completed slot's record, moved out and emitted. */
void sw__ingest_emit_slot(struct sw_ingest *ing, struct sw_tfile *f, struct sw_pend *p);
/* Appends to a pending slot (opening it at start_off), emitting max_record_bytes pieces. */
void sw__ingest_pend_add(struct sw_ingest *ing, struct sw_tfile *f, struct sw_pend *p, int64_t ts, int stream,
                         int flags, const char *s, size_t n, const char *sep, uint64_t start_off);
/* A slot's record now (if active), the slot emptied. */
void sw__ingest_pend_emit(struct sw_ingest *ing, struct sw_tfile *f, struct sw_pend *p);
/* Ends the multiline group (a preset's tentative blank lines become records of their own). */
void sw__ingest_ml_finish(struct sw_ingest *ing, struct sw_tfile *f);

#endif
