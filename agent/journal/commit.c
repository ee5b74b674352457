/* commit.c - the state a journald source commits with each chunk (jstate.h): built at every
 * seal from the streams' last seals, and read back at start into where the reader goes back to
 * and what the replay suppresses. */
#include <stdlib.h>
#include <string.h>

#include "../../common/hash.h"
#include "../../common/log.h"
#include "../tail/ingest.h"
#include "journal_int.h"

/* Everything that decides positions (matches) and stream keys (fields): a stored state made
 * under another configuration cannot be replayed exactly. */
uint64_t sw__journal_config_hash(const struct sw_source_conf *sc) {
  uint64_t h = SW_FNV1A_INIT;
  char *const *lists[3] = {sc->units, sc->identifiers, sc->fields};
  size_t ns[3] = {sc->nunits, sc->nidentifiers, sc->nfields};
  for (int l = 0; l < 3; l++) {
    h = sw_fnv1a(h, "|", 1);
    for (size_t i = 0; i < ns[l]; i++) h = sw_fnv1a(h, lists[l][i], strlen(lists[l][i]) + 1);
  }
  return h;
}

int sw_journals_owns(const struct sw_config *cfg, const struct sw_file_state *st) {
  for (size_t i = 0; i < cfg->nsources; i++)
    if (cfg->sources[i].type == SW_SOURCE_JOURNALD && !strcmp(cfg->sources[i].name, st->source))
      return 1;
  return 0;
}

struct jrestore *sw__journal_restored(const struct sw_journal *jn, uint64_t key) {
  for (size_t i = 0; i < jn->nrs; i++)
    if (jn->rs[i].st.key == key) return &jn->rs[i];
  return NULL;
}

/* ---- the state committed with each chunk ---- */

static int build_state(struct sw_journal *jn, const struct jstream *sealing, struct sw_file_state *fs,
                       struct sw_buf *blob) {
  int rc = sw_jstate_begin(blob, jn->cursor ? jn->cursor : "");
  for (size_t i = 0; !rc && i < jn->tabcap; i++)
    for (const struct jstream *s = jn->tab[i]; s && !rc; s = s->hnext) {
      /* Listed: anything not committed yet (the sealing stream's chunk is being committed),
       * pending slots, or a seal past pos (its entries up to there must not be read again). */
      int open = s != sealing && s->f->cb_ready && s->f->cb.count > 0;
      if (open || s->snap.len || sw_ingest_has_pending(s->f) || s->committed > jn->pos || s->f->replay_until)
        rc = sw_jstate_add(blob, s->key, s->committed, s->snap.data, s->snap.len);
    }
  for (size_t i = 0; !rc && i < jn->nrs; i++) /* stored streams not met again keep their place */
    if (!jn->rs[i].seen)
      rc = sw_jstate_add(blob, jn->rs[i].st.key, jn->rs[i].st.committed, jn->rs[i].st.pending,
                         jn->rs[i].st.pending_len);
  if (rc) return rc;
  *fs = (struct sw_file_state){.id = jn->id, .source = jn->sc->name, .path = jn->sc->journal_path,
                               .fp_hash = jn->cfg_hash, .offset = jn->pos, .pending = blob->data,
                               .pending_len = blob->len};
  jn->saved_pos = jn->pos;
  jn->saved_ms = sw_ingest_now_ms();
  return SW_OK;
}

int sw__journal_state_fn(void *arg, struct sw_tfile *f, struct sw_file_state *fs, struct sw_buf *blob) {
  struct jstream *s = arg;
  s->committed = f->line_off;
  sw_buf_reset(&s->snap);
  int rc = sw_ingest_pending(f, &s->snap);
  return rc ? rc : build_state(s->jn, s, fs, blob);
}

/* The position alone (nothing sealed): entries were excluded or filtered away. */
void sw__journal_save_state(struct sw_journal *jn) {
  struct sw_buf blob, raw;
  struct sw_file_state fs;
  sw_buf_init(&blob, SIZE_MAX);
  sw_buf_init(&raw, SIZE_MAX);
  if (!build_state(jn, NULL, &fs, &blob)) {
    struct sw_writer_job *j = sw_writer_job_new(SW_COMMIT_CHUNK, &fs, "{}", "journald", &raw);
    if (j) sw_writer_submit(jn->js->w, j);
  }
  sw_buf_free(&blob);
  sw_buf_free(&raw);
}

void sw__journal_end_restore(struct sw_journal *jn) {
  free(jn->rs);
  free(jn->rs_blob);
  jn->rs = NULL;
  jn->rs_blob = NULL;
  jn->nrs = 0;
  jn->restoring = 0;
}

int sw_journals_add_known(struct sw_journals *js, const struct sw_file_state *st) {
  for (size_t i = 0; i < js->n; i++) {
    struct sw_journal *jn = &js->j[i];
    if (strcmp(jn->sc->name, st->source)) continue;
    if (jn->known) return SW_OK; /* one state per source; a second is stale */
    jn->known = 1;
    jn->id = st->id;
    char *cursor = NULL;
    struct sw_jstate_stream *rs = NULL;
    size_t nrs = 0;
    void *blob = st->pending_len ? malloc(st->pending_len) : NULL;
    if (st->pending_len && !blob) return SW_ENOMEM;
    if (blob) memcpy(blob, st->pending, st->pending_len);
    int rc = blob ? sw_jstate_parse(blob, st->pending_len, &cursor, &rs, &nrs) : SW_ECORRUPT;
    if (rc == SW_ENOMEM) {
      free(blob);
      return rc;
    }
    if (rc || !cursor[0]) { /* a row without a usable position (a salvaged buffer): from the head */
      SW_LOG(SW_L_WARN, "journal", "%s: %s: reading the journal again from its head (duplicates rather than a loss)",
             jn->sc->name, !st->pending_len ? "no stored position (the buffer was salvaged)"
                                            : "the stored position is unreadable");
      free(cursor);
      free(rs);
      free(blob);
      return SW_OK;
    }
    jn->cursor = cursor;
    jn->pos = jn->saved_pos = st->offset;
    uint64_t us;
    if (sw_jcursor_hex(cursor, 't', &us)) jn->cursor_us = (int64_t)us;
    struct jrestore *rx = nrs ? calloc(nrs, sizeof *rx) : NULL;
    if (nrs && !rx) {
      free(rs);
      free(blob);
      return SW_ENOMEM;
    }
    uint64_t from = jn->pos, end = jn->pos;
    for (size_t k = 0; k < nrs; k++) {
      rx[k].st = rs[k];
      if (sw_ingest_pending_from(rs[k].pending, rs[k].pending_len, rs[k].committed, &rx[k].from))
        rx[k].from = rs[k].committed; /* damaged slots: not restored (stream_new says so) */
      if (rx[k].from < from) from = rx[k].from;
      if (rs[k].committed > end) end = rs[k].committed;
    }
    free(rs);
    if (st->fp_hash != jn->cfg_hash && nrs) {
      /* Matches or fields changed after an unclean stop: positions and stream keys of the stored
       * state do not apply. Everything from its earliest stream is read as new: duplicates
       * rather than a loss. */
      SW_LOG(SW_L_WARN, "journal", "%s: units, identifiers or fields changed since an unclean stop: up to %llu "
             "entries may be read twice", jn->sc->name, (unsigned long long)(jn->pos - from));
      jn->back = jn->pos - from; /* no restore: every entry from there on is new */
      free(rx);
      free(blob);
      return SW_OK;
    }
    jn->back = jn->pos - from;
    if (nrs) {
      jn->rs = rx;
      jn->nrs = nrs;
      jn->rs_blob = blob;
      jn->restoring = 1;
      jn->restore_pos = jn->pos;
      jn->replay_end = end;
    } else {
      free(blob);
    }
    return SW_OK;
  }
  return SW_OK;
}
