/* ingest.c - see tail/ingest.h. */
#include "ingest.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../../common/hash.h"
#include "../../common/log.h"
#include "../../common/timefmt.h"
#include "../../parsers/cri.h"
#include "../../parsers/docker.h"
#include "../../parsers/json.h"
#include "../../parsers/logfmt.h"
#include "../../parsers/record.h"
#include "../process/process.h"

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

int64_t sw_ingest_now_ms(void) { return sw_time_mono_ms(); }

/* The seed is not FNV's offset basis (a digit short) but stored fingerprints depend on it. */
uint64_t sw_fp_hash(const void *p, size_t n) { return sw_fnv1a(1469598103934665603ULL, p, n); }

int sw_ingest_create(const struct sw_config *cfg, struct sw_writer *w,
                     const struct sw_redactor *redactor, size_t max_line,
                     struct sw_ingest **out) {
  struct sw_ingest *ing = calloc(1, sizeof *ing);
  if (!ing) return SW_ENOMEM;
  ing->cfg = cfg;
  ing->w = w;
  ing->max_line = max_line;
  ing->scratch_cap = max_line + 16;
  ing->scratch = malloc(ing->scratch_cap);
  if (!ing->scratch) goto oom;
  char perr[256];
  int prc = sw_process_create(cfg, &ing->proc, perr, sizeof perr);
  if (prc == SW_ENOMEM) goto oom;
  if (prc) {
    SW_LOG(SW_L_ERROR, "ingest", "%s", perr);
    sw_ingest_destroy(ing);
    return prc;
  }
  if (redactor) {
    ing->nrules = sw_redactor_nrules(redactor);
    ing->rctx = sw_redact_ctx_create(redactor);
    ing->rnames = calloc(ing->nrules + 1, sizeof *ing->rnames);
    ing->rlast = calloc(ing->nrules + 1, sizeof *ing->rlast);
    if (!ing->rctx || !ing->rnames || !ing->rlast) goto oom;
    for (size_t i = 0; i < ing->nrules; i++) {
      const char *n = sw_redactor_rule_name(redactor, i);
      char *full = malloc(strlen(n) + 8);
      if (!full) goto oom;
      memcpy(full, "redact:", 7);
      memcpy(full + 7, n, strlen(n) + 1);
      ing->rnames[i] = full;
    }
  }
  *out = ing;
  return SW_OK;
oom:
  sw_ingest_destroy(ing);
  return SW_ENOMEM;
}

void sw_ingest_destroy(struct sw_ingest *ing) {
  if (!ing) return;
  /* rnames are borrowed by writer jobs: the writer is stopped before ingest is destroyed. */
  for (size_t i = 0; ing->rnames && i < ing->nrules; i++) free((char *)ing->rnames[i]);
  free(ing->rnames);
  free(ing->rlast);
  sw_redact_ctx_destroy(ing->rctx);
  sw_process_destroy(ing->proc);
  free(ing->scratch);
  free(ing);
}

struct sw_process *sw_ingest_process(struct sw_ingest *ing) { return ing->proc; }

#define SW_INFLIGHT_MAX (2u << 20) /* raw bytes queued for the writer before reading pauses */

int sw_ingest_blocked(const struct sw_ingest *ing) {
  const struct sw_config *cfg = ing->cfg;
  if (sw_writer_inflight(ing->w) > SW_INFLIGHT_MAX) return 1;
  /* Commits fail for lack of space: what is read now could only wait in memory. */
  if (sw_writer_disk_full(ing->w)) return 1;
  /* Raw bytes still queued or open will need at most their size once stored: counting them
   * keeps the buffer from overshooting max_bytes by a whole in-flight window. */
  if (cfg->buffer.when_full == SW_WHEN_FULL_BLOCK && cfg->buffer.max_bytes &&
      sw_writer_used(ing->w) + sw_writer_inflight(ing->w) + ing->open_bytes >= cfg->buffer.max_bytes)
    return 1;
  return 0;
}

int sw_ingest_source_init(struct sw_source_rt *s, const struct sw_source_conf *c, char *err, size_t errlen) {
  static const char *const fmt_names[] = {"text", "json", "logfmt"};
  (void)err;
  (void)errlen;
  s->conf = c;
  s->format_name = c->type == SW_SOURCE_DOCKER     ? "docker"
                   : c->type == SW_SOURCE_CRI      ? "cri"
                   : c->type == SW_SOURCE_JOURNALD ? "journald"
                                                   : fmt_names[c->format];
  if (!c->multiline.start) return SW_OK;
  int ec;
  PCRE2_SIZE eo;
  s->ml_start = pcre2_compile((PCRE2_SPTR)c->multiline.start, PCRE2_ZERO_TERMINATED, 0, &ec, &eo, NULL);
  if (!s->ml_start) return SW_ECONFIG;
  pcre2_jit_compile(s->ml_start, PCRE2_JIT_COMPLETE);
  s->ml_md = pcre2_match_data_create_from_pattern(s->ml_start, NULL);
  return s->ml_md ? SW_OK : SW_ENOMEM;
}

void sw_ingest_source_free(struct sw_source_rt *s) {
  pcre2_match_data_free(s->ml_md);
  pcre2_code_free(s->ml_start);
  s->ml_md = NULL;
  s->ml_start = NULL;
}

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

uint64_t sw_ingest_open_bytes(const struct sw_ingest *ing) { return ing->open_bytes; }

struct sw_redact_ctx *sw_ingest_redact_ctx(struct sw_ingest *ing) { return ing->rctx; }

void sw_ingest_file_free(struct sw_tfile *f) {
  if (f->cb_ready) sw_chunk_builder_free(&f->cb);
  for (int i = 0; i < SW_PEND_N; i++) sw_buf_free(&f->pend[i].buf);
  free(f->path);
  free(f->disp);
  free(f->labels_json);
  free(f->kube_uid);
  free(f->kube_ctr);
  sw_process_file_free(f->proc);
  free(f);
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

int sw_ingest_restore_pending(struct sw_tfile *f, const void *data, size_t n, uint64_t offset) {
  const uint8_t *p = data, *end = p + n;
  uint64_t from = offset;
  int64_t ts[SW_PEND_N];
  for (int i = 0; i < SW_PEND_N; i++) ts[i] = INT64_MIN;
  while (p < end) {
    int slot = *p++;
    uint64_t start, zts;
    if (slot >= SW_PEND_N || sw_get_varint(&p, end, &start) || sw_get_varint(&p, end, &zts) ||
        start > offset)
      return SW_ECORRUPT;
    ts[slot] = (int64_t)(zts >> 1) ^ -(int64_t)(zts & 1);
    if (start < from) from = start;
  }
  f->line_off = offset;
  f->read_off = from;
  f->replay_until = from < offset ? offset : 0;
  memcpy(f->replay_ts, ts, sizeof ts);
  return SW_OK;
}

/* The replay reached the committed offset: slots are as they were; give them back the times
 * they had (read times of text lines differ on a second read). */
static void finish_replay(struct sw_tfile *f) {
  for (int i = 0; i < SW_PEND_N; i++)
    if (f->pend[i].active && f->replay_ts[i] != INT64_MIN) f->pend[i].ts = f->replay_ts[i];
  f->replay_until = 0;
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
  if (f->cb.count == 0) f->chunk_started_ms = sw_ingest_now_ms();
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

static void pend_emit(struct sw_ingest *ing, struct sw_tfile *f, struct sw_pend *p) {
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
static void pend_add(struct sw_ingest *ing, struct sw_tfile *f, struct sw_pend *p, int64_t ts,
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
static void ml_finish(struct sw_ingest *ing, struct sw_tfile *f) {
  struct sw_pend *m = &f->pend[SW_PEND_MULTI];
  f->ml_st.phase = 0;
  if (!m->active || !m->tent_n || m->tent_from > m->buf.len) {
    m->tent_n = 0;
    pend_emit(ing, f, m);
    return;
  }
  size_t tlen = m->buf.len - m->tent_from;
  char *tail = malloc(tlen ? tlen : 1);
  if (!tail) { /* keep them joined rather than lose them */
    SW_LOG(SW_L_WARN, "ingest", "out of memory splitting a record of %s", f->disp);
    m->tent_n = 0;
    pend_emit(ing, f, m);
    return;
  }
  memcpy(tail, m->buf.data + m->tent_from, tlen);
  int64_t ts = m->tent_ts;
  int stream = m->stream;
  m->buf.len = m->tent_from;
  m->tent_n = 0;
  pend_emit(ing, f, m);
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
  if (!f->replay_until) ml_finish(ing, f); /* the group so far stays one record */
  f->ml_preset = p;
}

/* A logical line through the file's multiline preset (parsers/multiline.h). */
static void emit_preset(struct sw_ingest *ing, struct sw_tfile *f, int64_t ts, int stream,
                        int flags, const char *s, size_t n, uint64_t start) {
  struct sw_pend *m = &f->pend[SW_PEND_MULTI];
  if (m->active && m->stream != stream) ml_finish(ing, f); /* a group is one stream's */
  f->ml_last_ms = ing->now_ms;
  enum sw_ml_verdict v = sw_ml_classify(f->ml_preset, &f->ml_st, m->active, s, n);
  if ((v == SW_ML_JOIN || v == SW_ML_MAYBE) && m->lines >= f->src->conf->multiline.max_lines) {
    ml_finish(ing, f);
    v = SW_ML_SINGLE;
  }
  switch (v) {
  case SW_ML_MAYBE:
    if (!m->tent_n) {
      m->tent_from = m->buf.len;
      m->tent_ts = ts;
    }
    m->tent_n++;
    pend_add(ing, f, m, ts, stream, flags, s, n, "\n", start);
    break;
  case SW_ML_JOIN:
    m->tent_n = 0;
    pend_add(ing, f, m, ts, stream, flags, s, n, "\n", start);
    break;
  case SW_ML_START: {
    struct sw_ml_state st = f->ml_st; /* the new group's phase, which ml_finish resets */
    ml_finish(ing, f);
    f->ml_st = st;
    pend_add(ing, f, m, ts, stream, flags, s, n, "\n", start);
    break;
  }
  default:
    ml_finish(ing, f);
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
static void emit_logical(struct sw_ingest *ing, struct sw_tfile *f, int64_t ts, int stream,
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
    pend_emit(ing, f, m);
    pend_add(ing, f, m, ts, stream, flags, s, n, "\n", start);
    return;
  }
  if (!m->active) { /* continuation without a start: a record of its own */
    add_record(ing, f, ts, stream, flags, s, n);
    return;
  }
  if (m->lines >= src->conf->multiline.max_lines) {
    pend_emit(ing, f, m);
    add_record(ing, f, ts, stream, flags, s, n);
    return;
  }
  pend_add(ing, f, m, ts, stream, flags, s, n, "\n", start);
}

/* Moves a completed slot's record out (emitting may reuse slot buffers) and emits it. */
static void emit_slot(struct sw_ingest *ing, struct sw_tfile *f, struct sw_pend *p) {
  struct sw_buf joined = p->buf;
  int64_t jts = p->ts;
  int jflags = p->flags, jstream = p->stream;
  uint64_t jstart = p->start_off;
  sw_buf_init(&p->buf, SIZE_MAX);
  p->active = 0;
  p->lines = 0;
  emit_logical(ing, f, jts, jstream, jflags, joined.data ? joined.data : "", joined.len, jstart);
  sw_buf_free(&joined);
}

/* One piece of a docker/cri line: partial pieces wait in the stream's slot. */
static void emit_piece(struct sw_ingest *ing, struct sw_tfile *f, int64_t ts, int stream,
                       int partial, const char *s, size_t n, uint64_t start) {
  struct sw_pend *p = &f->pend[stream == SW_STREAM_STDERR ? SW_PEND_STDERR : SW_PEND_STDOUT];
  if (partial) {
    pend_add(ing, f, p, ts, stream, 0, s, n, NULL, start);
    return;
  }
  if (!p->active) {
    emit_logical(ing, f, ts, stream, 0, s, n, start);
    return;
  }
  pend_add(ing, f, p, ts, stream, 0, s, n, NULL, start);
  emit_slot(ing, f, p);
}

static void process_line(struct sw_ingest *ing, struct sw_tfile *f, const char *line, size_t n,
                         uint64_t start) {
  enum sw_source_type type = f->src->conf->type;
  if (type == SW_SOURCE_DOCKER) {
    struct sw_docker_line d;
    if (sw_docker_parse(line, n, ing->scratch, ing->scratch_cap, &d) == 0) {
      emit_piece(ing, f, d.ts_ns ? d.ts_ns : ing->now_ns, d.stream, d.partial, d.log, d.log_len,
                 start);
      return;
    }
  } else if (type == SW_SOURCE_CRI) {
    struct sw_cri_line c;
    if (sw_cri_parse(line, n, &c) == 0) {
      emit_piece(ing, f, c.ts_ns, c.stream, c.partial, c.content, c.content_len, start);
      return;
    }
  } else {
    int64_t ts = 0;
    int ok = 1;
    if (f->src->conf->format == SW_FORMAT_JSON) {
      struct sw_json_info ji;
      ok = sw_json_scan(line, n, &ji) == 0;
      ts = ok ? ji.ts_ns : 0;
    } else if (f->src->conf->format == SW_FORMAT_LOGFMT) {
      struct sw_logfmt_info li;
      ok = sw_logfmt_scan(line, n, &li) == 0;
      ts = ok ? li.ts_ns : 0;
    }
    emit_logical(ing, f, ts ? ts : ing->now_ns, SW_STREAM_FILE, ok ? 0 : SW_REC_PARSE_ERROR, line,
                 n, start);
    return;
  }
  /* Unparseable container line: keep it verbatim, flagged. */
  emit_logical(ing, f, ing->now_ns, SW_STREAM_STDOUT, SW_REC_PARSE_ERROR, line, n, start);
}

/* A complete physical line starting at file offset start; an overlong line's earlier pieces
 * wait in the LONG slot. */
static void complete_line(struct sw_ingest *ing, struct sw_tfile *f, const char *line, size_t n,
                          uint64_t start) {
  struct sw_pend *lp = &f->pend[SW_PEND_LONG];
  if (!lp->active) {
    process_line(ing, f, line, n, start);
    return;
  }
  pend_add(ing, f, lp, ing->now_ns, lp->stream, 0, line, n, NULL, start);
  if (lp->flags & SW_REC_TRUNCATED) { /* already split: the rest is the last piece */
    pend_emit(ing, f, lp);
    return;
  }
  struct sw_buf joined = lp->buf;
  uint64_t jstart = lp->start_off;
  sw_buf_init(&lp->buf, SIZE_MAX);
  lp->active = 0;
  process_line(ing, f, joined.data ? joined.data : "", joined.len, jstart);
  sw_buf_free(&joined);
}

/* After each line: move the committed position on, or finish a replay that reached it. */
static void line_done(struct sw_ingest *ing, struct sw_tfile *f, uint64_t end, size_t consumed) {
  if (f->replay_until) {
    if (end >= f->replay_until) finish_replay(f);
    return;
  }
  f->line_off = end;
  f->chunk_in_bytes += consumed;
  if (f->seal_wanted && sw_ingest_seal(ing, f, 0, 0))
    SW_LOG(SW_L_ERROR, "ingest", "cannot seal chunk of %s", f->disp);
}

size_t sw_ingest_feed(struct sw_ingest *ing, struct sw_tfile *f, const char *data, size_t len,
                      int force, int at_release) {
  ing->now_ns = sw_time_now_ns();
  ing->now_ms = sw_ingest_now_ms(); /* once per read, not per line */
  size_t pos = 0;
  while (pos < len) {
    const char *nl = memchr(data + pos, '\n', len - pos);
    if (!nl) break;
    size_t n = (size_t)(nl - (data + pos));
    uint64_t start = f->read_off + pos;
    f->cur_line_end = start + n + 1;
    complete_line(ing, f, data + pos, n, start);
    pos += n + 1;
    line_done(ing, f, f->read_off + pos, n + 1);
  }
  /* No newline in a full buffer: a piece of a line longer than the buffer. At release: the
   * file's unterminated last line. */
  if (pos < len && ((force && pos == 0) || at_release)) {
    size_t n = len - pos;
    uint64_t start = f->read_off + pos;
    f->cur_line_end = start + n;
    if (at_release) {
      complete_line(ing, f, data + pos, n, start);
    } else {
      const struct sw_source_conf *sc = f->src->conf;
      int stream = sc->type == SW_SOURCE_FILE ? SW_STREAM_FILE : SW_STREAM_STDOUT;
      /* Pieces emitted before the line ends are raw text: unparsed unless the format is text. */
      int fl = sc->type == SW_SOURCE_FILE && sc->format == SW_FORMAT_TEXT ? 0 : SW_REC_PARSE_ERROR;
      pend_add(ing, f, &f->pend[SW_PEND_LONG], ing->now_ns, stream, fl, data + pos, n, NULL, start);
    }
    pos = len;
    line_done(ing, f, f->read_off + pos, n);
  }
  return pos;
}

void sw_ingest_entry(struct sw_ingest *ing, struct sw_tfile *f, int64_t ts, const char *msg,
                     size_t len, uint64_t pos, int64_t now_ns, int64_t now_ms) {
  ing->now_ns = now_ns;
  ing->now_ms = now_ms;
  f->cur_line_end = pos + 1;
  emit_logical(ing, f, ts, SW_STREAM_FILE, 0, msg, len, pos);
  if (f->replay_until) {
    if (pos + 1 >= f->replay_until) finish_replay(f);
    return;
  }
  f->line_off = pos + 1;
}

void sw_ingest_flush_pending(struct sw_ingest *ing, struct sw_tfile *f) {
  ing->now_ns = sw_time_now_ns();
  ing->now_ms = sw_ingest_now_ms();
  if (f->replay_until) { /* the file vanished mid-replay: those records were committed */
    for (int i = 0; i < SW_PEND_N; i++) {
      f->pend[i].active = 0;
      f->pend[i].tent_n = 0;
      sw_buf_reset(&f->pend[i].buf);
    }
    f->ml_st.phase = 0;
    f->replay_until = 0;
    return;
  }
  f->cur_line_end = UINT64_MAX;
  struct sw_pend *lp = &f->pend[SW_PEND_LONG];
  if (lp->active) {
    lp->flags |= SW_REC_TRUNCATED;
    pend_emit(ing, f, lp);
  }
  for (int i = SW_PEND_STDOUT; i <= SW_PEND_STDERR; i++)
    if (f->pend[i].active) emit_slot(ing, f, &f->pend[i]);
  ml_finish(ing, f);
}

void sw_ingest_tick(struct sw_ingest *ing, struct sw_tfile *files, int64_t now_ms) {
  for (struct sw_tfile *f = files; f; f = f->next) {
    struct sw_pend *m = &f->pend[SW_PEND_MULTI];
    if (f->replay_until) continue;
    if (m->active && (f->src->ml_start || f->ml_preset) &&
        now_ms - f->ml_last_ms >= (int64_t)f->src->conf->multiline.timeout_ms)
      ml_finish(ing, f);
    if (f->cb_ready && f->cb.count > 0 &&
        (now_ms - f->chunk_started_ms >= (int64_t)ing->cfg->buffer.chunk_max_wait_ms ||
         f->seal_wanted)) {
      if (sw_ingest_seal(ing, f, 0, 0)) SW_LOG(SW_L_ERROR, "ingest", "cannot seal %s", f->disp);
    }
  }
}
