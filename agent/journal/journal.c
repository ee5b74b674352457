/* journal.c - see journal.h; the committed state is described in jstate.h. */
#include "journal.h"

#include <stdlib.h>
#include <string.h>

#include "../../common/hash.h"
#include "../../common/log.h"
#include "../../common/timefmt.h"
#include "../tail/labels.h"
#include "journal_int.h"

#define TICK_MS 200
#define IDLE_RELEASE_MS 60000 /* a stream with nothing open is forgotten after this quiet */
#define OPEN_MAX (2u << 20)   /* raw bytes in the journal's open chunks before the biggest is sealed */
#define SAVE_EVERY_MS 5000    /* position saved without a chunk (entries excluded or filtered) */

static const char *const k_levels[8] = {"emerg", "alert", "crit", "err", "warning", "notice", "info", "debug"};

/* ---- streams ---- */

static struct jstream *lookup(struct sw_journal *jn, uint64_t key, const uint8_t *raw, size_t n) {
  if (!jn->tabcap) return NULL;
  for (struct jstream *s = jn->tab[key & (jn->tabcap - 1)]; s; s = s->hnext)
    if (s->key == key && s->rawlen == n && !memcmp(s->raw, raw, n)) return s;
  return NULL;
}

static int tab_grow(struct sw_journal *jn) {
  if (jn->nstreams + 1 <= jn->tabcap / 2) return SW_OK;
  size_t cap = jn->tabcap ? jn->tabcap * 2 : 64;
  struct jstream **t = calloc(cap, sizeof *t);
  if (!t) return SW_ENOMEM;
  for (size_t i = 0; i < jn->tabcap; i++)
    for (struct jstream *s = jn->tab[i], *nx; s; s = nx) {
      nx = s->hnext;
      s->hnext = t[s->key & (cap - 1)];
      t[s->key & (cap - 1)] = s;
    }
  free(jn->tab);
  jn->tab = t;
  jn->tabcap = cap;
  return SW_OK;
}

/* The record labels of a stream (tail/labels.h order and redaction). */
static char *stream_labels(struct sw_journal *jn, const uint8_t *raw, size_t n) {
  const struct sw_source_conf *sc = jn->sc;
  struct sw_kv kv[SW_JF_FIXED + 32]; /* config: at most 32 fields */
  char name[SW_JF_FIXED + 32][72];
  char *vals[SW_JF_FIXED + 32] = {0};
  size_t nkv = 0;
  const char *host = jn->js->cfg->hostname;
  char *hostv = NULL;
  const char *v;
  size_t vl;
  int rc = SW_OK;
  if (sw_jlabel(raw, n, SW_JF_HOST, &v, &vl) && vl) host = hostv = strndup(v, vl);
  static const char *const fixed[SW_JF_FIXED] = {NULL, "unit", "identifier", "level", "boot_id"};
  size_t nf = sc->nfields < 32 ? sc->nfields : 32;
  for (size_t k = 1; k < SW_JF_FIXED + nf && !rc; k++) {
    if (!sw_jlabel(raw, n, k, &v, &vl)) continue;
    if (k == SW_JF_PRIO) {
      if (vl != 1 || v[0] < '0' || v[0] > '7') continue;
      v = k_levels[v[0] - '0'];
      vl = strlen(v);
    }
    if (k < SW_JF_FIXED) {
      snprintf(name[nkv], sizeof name[nkv], "%s", fixed[k]);
    } else { /* _PID -> pid */
      const char *f = sc->fields[k - SW_JF_FIXED];
      while (*f == '_') f++;
      size_t i = 0;
      for (; f[i] && i < sizeof name[nkv] - 1; i++) name[nkv][i] = (char)(f[i] >= 'A' && f[i] <= 'Z' ? f[i] + 32 : f[i]);
      name[nkv][i] = 0;
    }
    if (!(vals[nkv] = strndup(v, vl))) rc = SW_ENOMEM;
    kv[nkv].key = name[nkv];
    kv[nkv].value = vals[nkv];
    nkv++;
  }
  char *out = NULL;
  if (!rc && host) out = sw_labels_build(sc, host, NULL, NULL, kv, nkv, sw_ingest_redact_ctx(jn->js->ing));
  for (size_t i = 0; i < nkv; i++) free(vals[i]);
  free(hostv);
  return out;
}

static void stream_free(struct jstream *s) {
  if (!s) return;
  if (s->f) sw_ingest_file_free(s->f);
  free(s->raw);
  sw_buf_free(&s->snap);
  free(s);
}

/* A new stream whose first entry is at position idx. */
static struct jstream *stream_new(struct sw_journal *jn, const struct sw_jentry *e, uint64_t idx) {
  if (tab_grow(jn)) return NULL;
  struct jstream *s = calloc(1, sizeof *s);
  if (!s) return NULL;
  s->jn = jn;
  s->key = e->key;
  sw_buf_init(&s->snap, SIZE_MAX);
  struct sw_tfile *f = s->f = calloc(1, sizeof *f);
  s->raw = malloc(e->labels_len ? e->labels_len : 1);
  if (!f || !s->raw) goto fail;
  memcpy(s->raw, e->labels, e->labels_len);
  s->rawlen = e->labels_len;
  f->src = &jn->rt;
  f->id = jn->id;
  f->fd = -1;
  f->path = strdup(jn->sc->journal_path);
  f->disp = strdup(jn->sc->journal_path);
  f->labels_json = stream_labels(jn, e->labels, e->labels_len);
  if (!f->path || !f->disp || !f->labels_json) goto fail;
  for (int i = 0; i < SW_PEND_N; i++) sw_buf_init(&f->pend[i].buf, SIZE_MAX);
  f->ml_preset = jn->sc->multiline.preset;
  f->state_fn = sw__journal_state_fn;
  f->state_arg = s;
  f->line_off = idx;
  s->committed = idx;
  struct jrestore *rx = jn->restoring ? sw__journal_restored(jn, e->key) : NULL;
  if (rx) {
    const struct sw_jstate_stream *r = &rx->st;
    rx->seen = 1;
    if (sw_ingest_restore_pending(f, r->pending, r->pending_len, r->committed) ||
        (r->pending_len && sw_buf_append(&s->snap, r->pending, r->pending_len))) {
      SW_LOG(SW_L_WARN, "journal", "%s: a stored multiline state did not restore: read on without it",
             jn->sc->name);
      f->replay_until = 0;
      f->line_off = r->committed;
      sw_buf_reset(&s->snap);
    }
    s->committed = r->committed;
  }
  s->hnext = jn->tab[s->key & (jn->tabcap - 1)];
  jn->tab[s->key & (jn->tabcap - 1)] = s;
  jn->nstreams++;
  f->next = jn->files;
  jn->files = f;
  return s;
fail:
  stream_free(s);
  return NULL;
}

/* ---- entries ---- */

static void entry(struct sw_journal *jn, const struct sw_jentry *e, uint64_t idx, int64_t now_ns, int64_t now_ms) {
  struct jstream *s = lookup(jn, e->key, e->labels, e->labels_len);
  if (jn->restoring) {
    const struct jrestore *r = s ? NULL : sw__journal_restored(jn, e->key);
    /* a listed stream from where it needs entries again; any other up to the stored position */
    if (!s && idx < (r ? r->from : jn->restore_pos)) return; /* committed before the restart */
  }
  if (!s && !(s = stream_new(jn, e, idx))) {
    SW_LOG(SW_L_ERROR, "journal", "%s: out of memory: an entry was not read", jn->sc->name);
    return;
  }
  jn->entries++;
  jn->bytes += e->len;
  s->last_ms = now_ms;
  sw_ingest_entry(jn->js->ing, s->f, e->ts_ns, e->msg, e->len, idx, now_ns, now_ms);
}

static void seal(struct sw_journal *jn, struct sw_tfile *f) {
  if (sw_ingest_seal(jn->js->ing, f, 0, 0)) SW_LOG(SW_L_ERROR, "journal", "%s: cannot seal a chunk", jn->sc->name);
}

/* After a batch: full chunks go, and the biggest while the open ones hold too much. */
static void seal_wanted(struct sw_journal *jn) {
  for (struct sw_tfile *f = jn->files; f; f = f->next)
    if (f->seal_wanted) seal(jn, f);
  while (sw_ingest_open_bytes(jn->js->ing) > OPEN_MAX) {
    struct sw_tfile *big = NULL;
    for (struct sw_tfile *f = jn->files; f; f = f->next)
      if (f->cb_ready && f->cb.count && (!big || sw_chunk_raw_size(&f->cb) > sw_chunk_raw_size(&big->cb))) big = f;
    if (!big) break;
    seal(jn, big);
  }
}

static void first_batch(struct sw_journal *jn, const struct sw_jbatch *b) {
  if (b->start == SW_JSTART_AT) {
    jn->next = jn->pos - (b->rewound < jn->pos ? b->rewound : jn->pos);
    if (b->rewound < jn->back)
      SW_LOG(SW_L_WARN, "journal", "%s: %llu entries to read again before the stored position no longer exist",
             jn->sc->name, (unsigned long long)(jn->back - b->rewound));
    return;
  }
  jn->next = jn->pos;
  if (b->start == SW_JSTART_GAP) {
    jn->gaps++;
    jn->gap_entries += b->gap_seqnums;
    if (b->gap_seqnums)
      SW_LOG(SW_L_WARN, "journal", "%s: the stored position no longer exists in the journal (files vacuumed or "
             "rotated away while the agent was down): %llu entries by sequence number were not read",
             jn->sc->name, (unsigned long long)b->gap_seqnums);
    else
      SW_LOG(SW_L_WARN, "journal", "%s: the stored position no longer exists in the journal (files vacuumed or "
             "rotated away while the agent was down): reading on from the first entry after it", jn->sc->name);
    sw__journal_end_restore(jn); /* what streams had not committed went with those files */
  }
}

static void batch(struct sw_journal *jn, const struct sw_jbatch *b) {
  if (b->first) first_batch(jn, b);
  int64_t now_ns = sw_time_now_ns(), now_ms = sw_ingest_now_ms();
  size_t off = 0;
  struct sw_jentry e;
  uint64_t idx = jn->next;
  int rc;
  while ((rc = sw_jbatch_next(b, &off, &e)) == 1) {
    idx += e.skipped;
    jn->excluded += e.skipped;
    entry(jn, &e, idx, now_ns, now_ms);
    idx++;
  }
  if (rc < 0) SW_LOG(SW_L_ERROR, "journal", "%s: a malformed batch from the reader", jn->sc->name);
  idx += b->skipped_after;
  jn->excluded += b->skipped_after;
  jn->next = idx;
  if (idx >= jn->pos && b->cursor) {
    jn->pos = idx;
    free(jn->cursor);
    jn->cursor = strdup(b->cursor);
    jn->cursor_us = b->last_us;
  }
  if (jn->restoring && idx >= jn->replay_end) sw__journal_end_restore(jn);
  seal_wanted(jn);
}

/* At most DRAIN_BATCHES (4 MiB) per loop turn: timers, signals and HTTP are served between. */
#define DRAIN_BATCHES 16

static void drain(struct sw_journal *jn) {
  for (int n = 0; !jn->js->stopping && jn->rd; n++) {
    if (n == DRAIN_BATCHES) {
      sw_jreader_poke(jn->rd);
      return;
    }
    if (sw_ingest_blocked(jn->js->ing)) {
      jn->paused = 1;
      return;
    }
    jn->paused = 0;
    struct sw_jbatch *b = sw_jreader_take(jn->rd);
    if (!b) return;
    batch(jn, b);
    sw_jreader_done(jn->rd, b);
  }
}

static void on_batch(void *arg) { drain(arg); }

void sw_journals_kick(struct sw_journals *js) {
  for (size_t i = 0; js && i < js->n; i++)
    if (js->j[i].paused) drain(&js->j[i]);
}

/* Streams with nothing open, quiet for a while, are forgotten (their entries are committed). */
static void release_idle(struct sw_journal *jn, int64_t now_ms) {
  for (struct sw_tfile **pp = &jn->files; *pp;) {
    struct sw_tfile *f = *pp;
    struct jstream *s = f->state_arg;
    if ((f->cb_ready && f->cb.count) || sw_ingest_has_pending(f) || s->snap.len || f->replay_until ||
        s->committed > jn->saved_pos || now_ms - s->last_ms < IDLE_RELEASE_MS) {
      pp = &f->next;
      continue;
    }
    *pp = f->next;
    struct jstream **hp = &jn->tab[s->key & (jn->tabcap - 1)];
    while (*hp != s) hp = &(*hp)->hnext;
    *hp = s->hnext;
    jn->nstreams--;
    stream_free(s);
  }
}

static void on_tick(uv_timer_t *t) {
  struct sw_journals *js = t->data;
  int64_t now = sw_ingest_now_ms();
  for (size_t i = 0; i < js->n; i++) {
    struct sw_journal *jn = &js->j[i];
    drain(jn);
    sw_ingest_tick(js->ing, jn->files, now);
    if (jn->pos != jn->saved_pos && now - jn->saved_ms >= SAVE_EVERY_MS && !jn->restoring) {
      int open = 0;
      for (struct sw_tfile *f = jn->files; f && !open; f = f->next) open = f->cb_ready && f->cb.count;
      if (!open) sw__journal_save_state(jn);
    }
    release_idle(jn, now);
  }
}

/* ---- life cycle ---- */

int sw_journals_create(uv_loop_t *loop, const struct sw_config *cfg, struct sw_ingest *ing,
                       struct sw_writer *w, struct sw_journals **out) {
  *out = NULL;
  size_t n = 0;
  for (size_t i = 0; i < cfg->nsources; i++) n += cfg->sources[i].type == SW_SOURCE_JOURNALD;
  if (!n) return SW_OK;
  struct sw_journals *js = calloc(1, sizeof *js);
  if (!js || !(js->j = calloc(n, sizeof *js->j))) {
    free(js);
    return SW_ENOMEM;
  }
  js->loop = loop;
  js->cfg = cfg;
  js->ing = ing;
  js->w = w;
  for (size_t i = 0; i < cfg->nsources; i++) {
    const struct sw_source_conf *sc = &cfg->sources[i];
    if (sc->type != SW_SOURCE_JOURNALD) continue;
    struct sw_journal *jn = &js->j[js->n++];
    jn->js = js;
    jn->sc = sc;
    char err[256];
    int rc = sw_ingest_source_init(&jn->rt, sc, err, sizeof err);
    if (rc) {
      SW_LOG(SW_L_ERROR, "journal", "sources[%zu].multiline.start: bad pattern", i);
      sw_journals_free(js);
      return rc;
    }
    jn->cfg_hash = sw__journal_config_hash(sc);
    jn->saved_ms = sw_ingest_now_ms();
  }
  *out = js;
  return SW_OK;
}

void sw_journals_assign_ids(struct sw_journals *js, int64_t (*next_id)(void *arg), void *arg) {
  for (size_t i = 0; js && i < js->n; i++)
    if (!js->j[i].known) js->j[i].id = next_id(arg);
}

int sw_journals_start(struct sw_journals *js) {
  if (!js) return SW_OK;
  uv_timer_init(js->loop, &js->tick);
  js->tick.data = js;
  js->tick_open = 1;
  uv_timer_start(&js->tick, on_tick, TICK_MS, TICK_MS);
  for (size_t i = 0; i < js->n; i++) {
    struct sw_journal *jn = &js->j[i];
    const struct sw_source_conf *sc = jn->sc;
    char err[512];
    struct sw_jreader_opts o = {
        .path = sc->journal_path, .units = sc->units, .nunits = sc->nunits,
        .identifiers = sc->identifiers, .nidentifiers = sc->nidentifiers,
        .exclude_units = sc->exclude_units, .nexclude_units = sc->nexclude_units,
        .fields = sc->fields, .nfields = sc->nfields,
        /* a journal read before whose position is gone is read again, not skipped */
        .from_tail = sc->read_from == SW_READ_TAIL && !jn->known,
        .cursor = jn->cursor, .back = jn->back, .loop = js->loop, .on_batch = on_batch, .arg = jn};
    int rc = sw_jreader_start(&o, &jn->rd, err, sizeof err);
    if (rc) {
      SW_LOG(SW_L_ERROR, "journal", "%s", err);
      return rc;
    }
    SW_LOG(SW_L_INFO, "journal", "%s: reading the journal in %s%s", sc->name, sc->journal_path,
           jn->cursor ? " from the stored position" : sc->read_from == SW_READ_TAIL ? " from its tail" : "");
  }
  return SW_OK;
}

void sw_journals_stop(struct sw_journals *js) {
  if (!js || js->stopping) return;
  for (size_t i = 0; i < js->n; i++) { /* first: no batch may arrive while sealing */
    sw_jreader_stop(js->j[i].rd);
    js->j[i].rd = NULL;
  }
  js->stopping = 1;
  for (size_t i = 0; i < js->n; i++) {
    struct sw_journal *jn = &js->j[i];
    int sealed = 0;
    for (struct sw_tfile *f = jn->files; f; f = f->next)
      if (f->cb_ready && f->cb.count && !f->replay_until) {
        seal(jn, f);
        sealed = 1;
      }
    if (!sealed && jn->pos != jn->saved_pos && !jn->restoring) sw__journal_save_state(jn);
  }
  if (js->tick_open) {
    uv_close((uv_handle_t *)&js->tick, NULL);
    js->tick_open = 0;
  }
}

void sw_journals_free(struct sw_journals *js) {
  if (!js) return;
  for (size_t i = 0; i < js->n; i++) {
    struct sw_journal *jn = &js->j[i];
    sw_jreader_stop(jn->rd);
    for (size_t k = 0; k < jn->tabcap; k++)
      for (struct jstream *s = jn->tab[k], *nx; s; s = nx) {
        nx = s->hnext;
        stream_free(s);
      }
    free(jn->tab);
    free(jn->cursor);
    sw__journal_end_restore(jn);
    sw_ingest_source_free(&jn->rt);
  }
  free(js->j);
  free(js);
}

void sw_journals_info(struct sw_journals *js, void (*cb)(void *arg, const struct sw_journal_info *ji), void *arg) {
  for (size_t i = 0; js && i < js->n; i++) {
    struct sw_journal *jn = &js->j[i];
    struct sw_journal_info ji = {.source = jn->sc->name, .path = jn->sc->journal_path, .entries = jn->entries,
                                 .excluded = jn->excluded, .bytes = jn->bytes, .position = jn->pos,
                                 .gaps = jn->gaps, .gap_entries = jn->gap_entries, .streams = jn->nstreams,
                                 .cursor_us = jn->cursor_us, .caught_up = jn->rd && sw_jreader_caught_up(jn->rd)};
    cb(arg, &ji);
  }
}
