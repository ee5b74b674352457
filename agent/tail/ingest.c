/* ingest.c - see tail/ingest.h. */
#include "ingest_int.h"

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

/* ---- pending state (records.c writes it: sw_ingest_pending) ---- */

/* Reads the slots of a stored pending state: each slot's start time into ts (INT64_MIN: none)
 * and the earliest start, or offset, into *from. */
static int read_pending(const void *data, size_t n, uint64_t offset, uint64_t *from, int64_t ts[SW_PEND_N]) {
  const uint8_t *p = data, *end = p + n;
  *from = offset;
  for (int i = 0; i < SW_PEND_N; i++) ts[i] = INT64_MIN;
  while (p && p < end) {
    int slot = *p++;
    uint64_t start, zts;
    if (slot >= SW_PEND_N || sw_get_varint(&p, end, &start) || sw_get_varint(&p, end, &zts) ||
        start > offset)
      return SW_ECORRUPT;
    ts[slot] = (int64_t)(zts >> 1) ^ -(int64_t)(zts & 1);
    if (start < *from) *from = start;
  }
  return SW_OK;
}

int sw_ingest_pending_from(const void *p, size_t n, uint64_t offset, uint64_t *from) {
  int64_t ts[SW_PEND_N];
  return read_pending(p, n, offset, from, ts);
}

int sw_ingest_restore_pending(struct sw_tfile *f, const void *data, size_t n, uint64_t offset) {
  uint64_t from;
  int64_t ts[SW_PEND_N];
  if (read_pending(data, n, offset, &from, ts)) return SW_ECORRUPT;
  f->line_off = offset;
  f->read_off = from;
  f->replay_until = from < offset ? offset : 0;
  memcpy(f->replay_ts, ts, sizeof ts);
  return SW_OK;
}

int sw_ingest_has_pending(const struct sw_tfile *f) {
  for (int i = 0; i < SW_PEND_N; i++)
    if (f->pend[i].active) return 1;
  return 0;
}

/* The replay reached the committed offset: slots are as they were; give them back the times
 * they had (read times of text lines differ on a second read). */
static void finish_replay(struct sw_tfile *f) {
  for (int i = 0; i < SW_PEND_N; i++)
    if (f->pend[i].active && f->replay_ts[i] != INT64_MIN) f->pend[i].ts = f->replay_ts[i];
  f->replay_until = 0;
}

static void process_line(struct sw_ingest *ing, struct sw_tfile *f, const char *line, size_t n,
                         uint64_t start) {
  enum sw_source_type type = f->src->conf->type;
  if (type == SW_SOURCE_DOCKER) {
    struct sw_docker_line d;
    if (sw_docker_parse(line, n, ing->scratch, ing->scratch_cap, &d) == 0) {
      sw__ingest_emit_piece(ing, f, d.ts_ns ? d.ts_ns : ing->now_ns, d.stream, d.partial, d.log, d.log_len,
                 start);
      return;
    }
  } else if (type == SW_SOURCE_CRI) {
    struct sw_cri_line c;
    if (sw_cri_parse(line, n, &c) == 0) {
      sw__ingest_emit_piece(ing, f, c.ts_ns, c.stream, c.partial, c.content, c.content_len, start);
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
    sw__ingest_emit_logical(ing, f, ts ? ts : ing->now_ns, SW_STREAM_FILE, ok ? 0 : SW_REC_PARSE_ERROR, line,
                 n, start);
    return;
  }
  /* Unparseable container line: keep it verbatim, flagged. */
  sw__ingest_emit_logical(ing, f, ing->now_ns, SW_STREAM_STDOUT, SW_REC_PARSE_ERROR, line, n, start);
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
  sw__ingest_pend_add(ing, f, lp, ing->now_ns, lp->stream, 0, line, n, NULL, start);
  if (lp->flags & SW_REC_TRUNCATED) { /* already split: the rest is the last piece */
    sw__ingest_pend_emit(ing, f, lp);
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
      sw__ingest_pend_add(ing, f, &f->pend[SW_PEND_LONG], ing->now_ns, stream, fl, data + pos, n, NULL, start);
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
  sw__ingest_emit_logical(ing, f, ts, SW_STREAM_FILE, 0, msg, len, pos);
  if (f->replay_until) {
    if (pos + 1 >= f->replay_until) finish_replay(f);
    return;
  }
  f->line_off = pos + 1;
  f->chunk_in_bytes += len;
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
    sw__ingest_pend_emit(ing, f, lp);
  }
  for (int i = SW_PEND_STDOUT; i <= SW_PEND_STDERR; i++)
    if (f->pend[i].active) sw__ingest_emit_slot(ing, f, &f->pend[i]);
  sw__ingest_ml_finish(ing, f);
}

void sw_ingest_tick(struct sw_ingest *ing, struct sw_tfile *files, int64_t now_ms) {
  for (struct sw_tfile *f = files; f; f = f->next) {
    struct sw_pend *m = &f->pend[SW_PEND_MULTI];
    if (f->replay_until) continue;
    if (m->active && (f->src->ml_start || f->ml_preset) &&
        now_ms - f->ml_last_ms >= (int64_t)f->src->conf->multiline.timeout_ms)
      sw__ingest_ml_finish(ing, f);
    if (f->cb_ready && f->cb.count > 0 &&
        (now_ms - f->chunk_started_ms >= (int64_t)ing->cfg->buffer.chunk_max_wait_ms ||
         f->seal_wanted)) {
      if (sw_ingest_seal(ing, f, 0, 0)) SW_LOG(SW_L_ERROR, "ingest", "cannot seal %s", f->disp);
    }
  }
}
