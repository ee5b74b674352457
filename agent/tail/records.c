/* records.c - records of tailed files and journals into chunks (see tail/ingest.h): partial
 * pieces and multiline groups in their slots, extraction and filters (agent/process/),
 * redaction, splitting at max_record_bytes, the chunk builder, and sealing a chunk with the
 * state committed with it. Called by tail/ingest.c for each line or entry. */
#include <stdlib.h>
#include <string.h>

#include "../../common/log.h"
#include "../../common/timefmt.h"
#include "../../parsers/json.h"
#include "../../parsers/logfmt.h"
#include "../../parsers/record.h"
#include "../process/process.h"
#include "ingest_int.h"

/* Attaches the redaction counts made since the last job to j. */
static int attach_counters(struct sw_ingest *ing, struct sw_writer_job *j) {
  if (!ing->rctx) return SW_OK;
  const uint64_t *now = sw_redact_ctx_counts(ing->rctx);
  uint64_t deltas[ing->nrules + 1];
  int any = 0;
  for (size_t i = 0; i < ing->nrules; i++) {
    deltas[i] = now[i] - ing->rlast[i];
    any |= deltas[i] != 0;
  }
  if (!any) return SW_OK;
  int rc = sw_writer_job_counters(j, ing->rnames, deltas, ing->nrules);
  if (!rc) memcpy(ing->rlast, now, ing->nrules * sizeof *now);
  return rc;
}

/* ---- pending state: per active slot u8 slot, varint start offset, zigzag varint ts ---- */

int sw_ingest_pending(const struct sw_tfile *f, struct sw_buf *out) {
  int rc = SW_OK;
  for (int i = 0; i < SW_PEND_N && !rc; i++) {
    const struct sw_pend *p = &f->pend[i];
    if (!p->active) continue;
    rc = sw_buf_putc(out, (char)i);
    if (!rc) rc = sw_buf_put_varint(out, p->start_off);
    if (!rc) rc = sw_buf_put_varint(out, ((uint64_t)p->ts << 1) ^ (uint64_t)(p->ts >> 63));
  }
  return rc;
}

/* ---- sealing ---- */

int sw_ingest_seal(struct sw_ingest *ing, struct sw_tfile *f, int force, int forget) {
  int have = f->cb_ready && f->cb.count > 0;
  f->seal_wanted = 0;
  if (f->replay_until && !forget) return SW_OK; /* slots half rebuilt: the stored state stands */
  if (!have && !force && !forget) return SW_OK;
  struct sw_buf raw, pend;
  sw_buf_init(&raw, SIZE_MAX);
  sw_buf_init(&pend, SIZE_MAX);
  int rc = SW_OK;
  if (have) rc = sw_buf_reserve(&raw, sw_chunk_raw_size(&f->cb)); /* one exact allocation */
  if (have && !rc) rc = sw_chunk_finish(&f->cb, &raw);
  struct sw_file_state fs = {
      .id = f->id, .source = f->src->conf->name, .path = f->path, .dev = f->dev, .ino = f->ino,
      .fp_hash = f->fp_hash, .fp_len = f->fp_len, .offset = f->line_off,
  };
  if (!rc) rc = f->state_fn ? f->state_fn(f->state_arg, f, &fs, &pend) : sw_ingest_pending(f, &pend);
  if (rc) goto done;
  if (!f->state_fn) {
    fs.pending = pend.data;
    fs.pending_len = pend.len;
  }
  struct sw_writer_job *j =
      sw_writer_job_new(SW_COMMIT_CHUNK, &fs, f->labels_json,
                        f->payload_format[0] ? f->payload_format : f->src->format_name, &raw);
  if (!j) {
    rc = SW_ENOMEM;
    goto done;
  }
  if (have) {
    j->op.ts_min = f->cb.ts_min;
    j->op.ts_max = f->cb.ts_max;
    j->op.records = f->cb.count;
    j->op.parse_errors = f->cb.parse_errors;
    j->op.truncated = f->cb.truncated;
    f->n_records += f->cb.count;
    f->n_parse_errors += f->cb.parse_errors;
  }
  f->n_in_bytes += f->chunk_in_bytes;
  j->op.in_bytes = f->chunk_in_bytes;
  if (attach_counters(ing, j)) SW_LOG(SW_L_WARN, "ingest", "redaction counts not recorded (out of memory)");
  sw_writer_submit(ing->w, j);
  if (forget) {
    struct sw_writer_job *fj = sw_writer_job_new(SW_COMMIT_FORGET, &fs, NULL, NULL, NULL);
    if (!fj) {
      rc = SW_ENOMEM;
      goto done;
    }
    sw_writer_submit(ing->w, fj);
  }
  f->chunk_in_bytes = 0;
  if (f->cb_ready) {
    ing->open_bytes -= sw_chunk_raw_size(&f->cb) < ing->open_bytes ? sw_chunk_raw_size(&f->cb)
                                                                    : ing->open_bytes;
    sw_chunk_builder_reset(&f->cb);
    /* Idle files must not pin a chunk's memory: with 100s of files that adds up. */
    sw_buf_shrink(&f->cb.text, 0);
    sw_buf_shrink(&f->cb.meta, 0);
  }
done:
  sw_buf_free(&raw);
  sw_buf_free(&pend);
  return rc;
}

/* ---- records ---- */

/* Last resort when a line emits more than the builder's cap (only redaction that multiplies a
 * line's size can): seal in the middle of the line rather than lose a record. The state
 * committed with that chunk is the line's start, so a crash before the line's end is committed
 * would emit its earlier pieces once more (a duplicate, never a loss). 0 when sealed. */
static int overflow_seal(struct sw_ingest *ing, struct sw_tfile *f) {
  if (f->cb.count == 0 || f->replay_until) return SW_ETOOBIG; /* nothing to make room from */
  SW_LOG(SW_L_WARN, "ingest", "a line of %s emitted more than a chunk holds: sealed mid-line",
         f->path);
  return sw_ingest_seal(ing, f, 0, 0);
}

/* Extraction, log metrics and filters (agent/process/process.h): 0 when a filter removed the
 * record. */
static int process(struct sw_ingest *ing, struct sw_tfile *f, int64_t ts, const char *line, size_t len,
                   const char **xl, size_t *xlen) {
  if (!f->proc || f->proc_gen != f->labels_gen) {
    int ok;
    if (!f->proc) {
      size_t si = (size_t)(f->src->conf - ing->cfg->sources);
      ok = (f->proc = sw_process_file_new(ing->proc, si, f->labels_json)) != NULL;
    } else {
      ok = sw_process_file_labels(ing->proc, f->proc, f->labels_json) == SW_OK;
    }
    if (!ok) { /* keep the record, unfiltered, rather than lose it */
      SW_LOG(SW_L_ERROR, "ingest", "out of memory processing a record of %s: kept as it is", f->disp);
      return 1;
    }
    f->proc_gen = f->labels_gen;
  }
  enum sw_source_type t = f->src->conf->type;
  return sw_process_record(ing->proc, f->proc, ing->rctx, ts,
                           t == SW_SOURCE_DOCKER || t == SW_SOURCE_CRI || t == SW_SOURCE_JOURNALD,
                           line, len, xl, xlen);
}

static void add_record_x(struct sw_ingest *ing, struct sw_tfile *f, int64_t ts, int stream, int flags,
                         const char *line, size_t len, const char *xl, size_t xlen);

static void add_record(struct sw_ingest *ing, struct sw_tfile *f, int64_t ts, int stream,
                       int flags, const char *line, size_t len) {
  add_record_x(ing, f, ts, stream, flags, line, len, NULL, 0);
}

static void add_record_x(struct sw_ingest *ing, struct sw_tfile *f, int64_t ts, int stream, int flags,
                         const char *line, size_t len, const char *xl, size_t xlen) {
  const struct sw_config *cfg = ing->cfg;
  if (f->replay_until && f->cur_line_end <= f->replay_until) return; /* committed before */
  if (ing->proc && !(flags & SW_REC_REDACTED) && !process(ing, f, ts, line, len, &xl, &xlen)) return;
  size_t max = (size_t)f->src->conf->max_record_bytes;
  if (!f->cb_ready) {
    /* A chunk is sealed only at line boundaries, so it must take everything one line can emit
     * on top of the chunk_max_bytes it stays under between lines: the bytes of one read plus
     * every pending slot released at once (each holds at most max), e.g. a 1 MiB piece of an
     * overlong line and then its 200 KiB rest. */
    size_t line_worth = ing->max_line + (size_t)SW_PEND_N * (max + 64) + 4096;
    sw_chunk_builder_init(&f->cb, (size_t)cfg->buffer.chunk_max_bytes + line_worth);
    f->cb_ready = 1;
  }
  if (ing->rctx && !(flags & SW_REC_REDACTED)) {
    /* The whole record first, so a secret is never cut in two by the split below. */
    const char *red;
    size_t rlen;
    if (sw_redact_line(ing->rctx, line, len, 1, &red, &rlen))
      SW_LOG(SW_L_WARN, "redact", "out of memory redacting a record of %s: replaced whole", f->disp);
    line = red;
    len = rlen;
    flags |= SW_REC_REDACTED;
  }
  while (len > max) { /* split: every piece is flagged so they can be told apart */
    add_record_x(ing, f, ts, stream, flags | SW_REC_TRUNCATED, line, max, xl, xlen);
    line += max;
    len -= max;
    flags |= SW_REC_TRUNCATED;
  }
  flags &= ~SW_REC_REDACTED;
  if (f->cb.text.len + len + 1 > f->cb.text.max || f->cb.meta.len + 24 > f->cb.meta.max ||
      (xlen && (f->cb.sets.len + xlen > f->cb.sets.max || f->cb.idx.len + f->cb.count + 16 > f->cb.idx.max ||
                f->cb.ends.len + 8 > f->cb.ends.max)))
    (void)overflow_seal(ing, f); /* else sw_chunk_add refuses and the record is lost */
  size_t before = sw_chunk_raw_size(&f->cb);
  if (f->cb.count == 0) f->chunk_started_ms = sw_time_mono_ms();
  if (sw_chunk_add_x(&f->cb, ts, stream, flags, line, len, xl, xlen)) {
    SW_LOG(SW_L_ERROR, "ingest", "chunk builder refused a record of %zu bytes in %s", len, f->disp);
    return;
  }
  ing->open_bytes += sw_chunk_raw_size(&f->cb) - before;
  if (flags & SW_REC_PARSE_ERROR) f->cb.parse_errors++;
  if (flags & SW_REC_TRUNCATED) f->cb.truncated++;
  if (f->cb.count >= cfg->buffer.chunk_max_records ||
      sw_chunk_raw_size(&f->cb) >= cfg->buffer.chunk_max_bytes)
    f->seal_wanted = 1;
}

void sw__ingest_pend_emit(struct sw_ingest *ing, struct sw_tfile *f, struct sw_pend *p) {
  if (!p->active) return;
  add_record(ing, f, p->ts, p->stream, p->flags, p->buf.data ? p->buf.data : "", p->buf.len);
  p->active = 0;
  p->lines = 0;
  sw_buf_reset(&p->buf);
  if (p->buf.cap > 256 * 1024) sw_buf_shrink(&p->buf, 0);
}

/* Appends to a pending slot (opening it at start_off); whenever the slot passes
 * max_record_bytes, exactly max_record_bytes are emitted as a truncated piece, so the pieces
 * depend only on the bytes, never on how reads or physical lines cut them. */
void sw__ingest_pend_add(struct sw_ingest *ing, struct sw_tfile *f, struct sw_pend *p, int64_t ts,
                     int stream, int flags, const char *s, size_t n, const char *sep,
                     uint64_t start_off) {
  size_t max = (size_t)f->src->conf->max_record_bytes;
  size_t seplen = sep && p->active ? strlen(sep) : 0;
  if (!p->active) {
    p->active = 1;
    p->ts = ts;
    p->stream = stream;
    p->flags = 0;
    p->lines = 0;
    p->start_off = start_off;
  }
  p->flags |= flags;
  p->lines++;
  p->buf.max = SIZE_MAX;
  if ((seplen && sw_buf_append(&p->buf, sep, seplen)) || sw_buf_append(&p->buf, s, n))
    SW_LOG(SW_L_ERROR, "ingest", "out of memory joining a record in %s", f->disp);
  while (p->buf.len > max) {
    size_t rest = p->buf.len - max;
    p->tent_n = 0; /* a piece went: tentative lines stay with the record */
    p->flags |= SW_REC_TRUNCATED;
    add_record(ing, f, p->ts, p->stream, p->flags, p->buf.data, max);
    memmove(p->buf.data, p->buf.data + max, rest);
    p->buf.len = rest;
  }
}

static int ml_is_start(struct sw_source_rt *src, const char *s, size_t n) {
  int rc = pcre2_match(src->ml_start, (PCRE2_SPTR)s, n, 0, 0, src->ml_md, NULL);
  return rc >= 0;
}

/* Ends the multiline group: a preset's tentative blank lines at its end did not join (nothing of
 * the trace came after them), so they are records of their own after it. */
void sw__ingest_ml_finish(struct sw_ingest *ing, struct sw_tfile *f) {
  struct sw_pend *m = &f->pend[SW_PEND_MULTI];
  f->ml_st.phase = 0;
  if (!m->active || !m->tent_n || m->tent_from > m->buf.len) {
    m->tent_n = 0;
    sw__ingest_pend_emit(ing, f, m);
    return;
  }
  size_t tlen = m->buf.len - m->tent_from;
  char *tail = malloc(tlen ? tlen : 1);
  if (!tail) { /* keep them joined rather than lose them */
    SW_LOG(SW_L_WARN, "ingest", "out of memory splitting a record of %s", f->disp);
    m->tent_n = 0;
    sw__ingest_pend_emit(ing, f, m);
    return;
  }
  memcpy(tail, m->buf.data + m->tent_from, tlen);
  int64_t ts = m->tent_ts;
  int stream = m->stream;
  m->buf.len = m->tent_from;
  m->tent_n = 0;
  sw__ingest_pend_emit(ing, f, m);
  /* tail is "\n<line>" per tentative line */
  for (size_t i = 0; i < tlen;) {
    size_t j = i + 1;
    while (j < tlen && tail[j] != '\n') j++;
    add_record(ing, f, ts, stream, 0, tail + i + 1, j - i - 1);
    i = j;
  }
  free(tail);
}

void sw_ingest_set_preset(struct sw_ingest *ing, struct sw_tfile *f, enum sw_ml_preset p) {
  if (p == f->ml_preset) return;
  if (!f->replay_until) sw__ingest_ml_finish(ing, f); /* the group so far stays one record */
  f->ml_preset = p;
}

/* A logical line through the file's multiline preset (parsers/multiline.h). */
static void emit_preset(struct sw_ingest *ing, struct sw_tfile *f, int64_t ts, int stream,
                        int flags, const char *s, size_t n, uint64_t start) {
  struct sw_pend *m = &f->pend[SW_PEND_MULTI];
  if (m->active && m->stream != stream) sw__ingest_ml_finish(ing, f); /* a group is one stream's */
  f->ml_last_ms = ing->now_ms;
  enum sw_ml_verdict v = sw_ml_classify(f->ml_preset, &f->ml_st, m->active, s, n);
  if ((v == SW_ML_JOIN || v == SW_ML_MAYBE) && m->lines >= f->src->conf->multiline.max_lines) {
    sw__ingest_ml_finish(ing, f);
    v = SW_ML_SINGLE;
  }
  switch (v) {
  case SW_ML_MAYBE:
    if (!m->tent_n) {
      m->tent_from = m->buf.len;
      m->tent_ts = ts;
    }
    m->tent_n++;
    sw__ingest_pend_add(ing, f, m, ts, stream, flags, s, n, "\n", start);
    break;
  case SW_ML_JOIN:
    m->tent_n = 0;
    sw__ingest_pend_add(ing, f, m, ts, stream, flags, s, n, "\n", start);
    break;
  case SW_ML_START: {
    struct sw_ml_state st = f->ml_st; /* the new group's phase, which ml_finish resets */
    sw__ingest_ml_finish(ing, f);
    f->ml_st = st;
    sw__ingest_pend_add(ing, f, m, ts, stream, flags, s, n, "\n", start);
    break;
  }
  default:
    sw__ingest_ml_finish(ing, f);
    add_record(ing, f, ts, stream, flags, s, n);
  }
}

/* A container's payload in the format its pod declares (spillway.io/format): 0 when it does
 * not parse as such, and is then flagged like a line of a file source in that format. */
static int payload_parses(const struct sw_tfile *f, const char *s, size_t n) {
  if (f->payload_format[0] == 'j') {
    struct sw_json_info ji;
    return sw_json_scan(s, n, &ji) == 0;
  }
  if (f->payload_format[0] == 'l') {
    struct sw_logfmt_info li;
    return sw_logfmt_scan(s, n, &li) == 0;
  }
  return 1;
}

/* A logical line (partials joined), starting at file offset start -> multiline -> record. */
void sw__ingest_emit_logical(struct sw_ingest *ing, struct sw_tfile *f, int64_t ts, int stream,
                         int flags, const char *s, size_t n, uint64_t start) {
  struct sw_source_rt *src = f->src;
  if (f->payload_format[0] && f->src->conf->type != SW_SOURCE_FILE && !payload_parses(f, s, n))
    flags |= SW_REC_PARSE_ERROR;
  if (f->ml_preset) {
    emit_preset(ing, f, ts, stream, flags, s, n, start);
    return;
  }
  if (!src->ml_start) {
    add_record(ing, f, ts, stream, flags, s, n);
    return;
  }
  struct sw_pend *m = &f->pend[SW_PEND_MULTI];
  f->ml_last_ms = ing->now_ms;
  if (ml_is_start(src, s, n) || (m->active && m->stream != stream)) {
    sw__ingest_pend_emit(ing, f, m);
    sw__ingest_pend_add(ing, f, m, ts, stream, flags, s, n, "\n", start);
    return;
  }
  if (!m->active) { /* continuation without a start: a record of its own */
    add_record(ing, f, ts, stream, flags, s, n);
    return;
  }
  if (m->lines >= src->conf->multiline.max_lines) {
    sw__ingest_pend_emit(ing, f, m);
    add_record(ing, f, ts, stream, flags, s, n);
    return;
  }
  sw__ingest_pend_add(ing, f, m, ts, stream, flags, s, n, "\n", start);
}

/* Moves a completed slot's record out (emitting may reuse slot buffers) and emits it. */
void sw__ingest_emit_slot(struct sw_ingest *ing, struct sw_tfile *f, struct sw_pend *p) {
  struct sw_buf joined = p->buf;
  int64_t jts = p->ts;
  int jflags = p->flags, jstream = p->stream;
  uint64_t jstart = p->start_off;
  sw_buf_init(&p->buf, SIZE_MAX);
  p->active = 0;
  p->lines = 0;
  sw__ingest_emit_logical(ing, f, jts, jstream, jflags, joined.data ? joined.data : "", joined.len, jstart);
  sw_buf_free(&joined);
}

/* One piece of a docker/cri line: partial pieces wait in the stream's slot. */
void sw__ingest_emit_piece(struct sw_ingest *ing, struct sw_tfile *f, int64_t ts, int stream,
                       int partial, const char *s, size_t n, uint64_t start) {
  struct sw_pend *p = &f->pend[stream == SW_STREAM_STDERR ? SW_PEND_STDERR : SW_PEND_STDOUT];
  if (partial) {
    sw__ingest_pend_add(ing, f, p, ts, stream, 0, s, n, NULL, start);
    return;
  }
  if (!p->active) {
    sw__ingest_emit_logical(ing, f, ts, stream, 0, s, n, start);
    return;
  }
  sw__ingest_pend_add(ing, f, p, ts, stream, 0, s, n, NULL, start);
  sw__ingest_emit_slot(ing, f, p);
}
