/* journal_int.h - private to agent/journal/ (journal.c, commit.c): a journald source's streams
 * and the state committed with their chunks (jstate.h). Loop thread only. */
#ifndef SW_JOURNAL_INT_H
#define SW_JOURNAL_INT_H

#include <uv.h>

#include "../../common/buf.h"
#include "journal.h"
#include "jstate.h"
#include "reader.h"

struct sw_journal;

/* A stream of the stored state, while a restart replays (jstate.h). */
struct jrestore {
  struct sw_jstate_stream st;
  uint64_t from; /* the first position it needs again: earliest pending slot, else committed */
  int seen;      /* its stream exists again (else the state committed meanwhile keeps it) */
};

/* One label set of a journal: its own open chunk and multiline state. */
struct jstream {
  struct jstream *hnext;
  struct sw_journal *jn;
  struct sw_tfile *f;
  uint64_t key;
  uint8_t *raw; /* the label fields as the reader encoded them (the key's input) */
  size_t rawlen;
  uint64_t committed; /* of the last seal: entries of this stream below it are accounted for */
  struct sw_buf snap; /* and its pending slots then (tail/ingest.h form) */
  int64_t last_ms;
};

struct sw_journal {
  struct sw_journals *js;
  const struct sw_source_conf *sc;
  struct sw_source_rt rt;
  struct sw_jreader *rd;
  int64_t id;
  int known;
  char *cursor;          /* of entry pos-1 */
  int64_t cursor_us;
  uint64_t pos, next;    /* entries consumed; index of the next entry the reader delivers */
  uint64_t saved_pos;    /* pos of the last state handed to the writer */
  int64_t saved_ms;
  uint64_t cfg_hash;
  /* restoring after a restart (jstate.h): the stored streams, until replay_end */
  void *rs_blob;
  struct jrestore *rs; /* points into rs_blob */
  size_t nrs;
  uint64_t restore_pos, replay_end, back;
  int restoring, started;
  struct jstream **tab;
  size_t tabcap, nstreams;
  struct sw_tfile *files; /* every stream's file, for sw_ingest_tick */
  int paused;
  uint64_t entries, excluded, bytes, gaps, gap_entries;
};

struct sw_journals {
  uv_loop_t *loop;
  const struct sw_config *cfg;
  struct sw_ingest *ing;
  struct sw_writer *w;
  struct sw_journal *j;
  size_t n;
  uv_timer_t tick;
  int tick_open, stopping;
};

/* ---- commit.c ---- */
/* What decides positions (matches) and stream keys (fields): a state stored under another
 * configuration cannot be replayed exactly. */
uint64_t sw__journal_config_hash(const struct sw_source_conf *sc);
/* The stored stream of key while restoring, or NULL. */
struct jrestore *sw__journal_restored(const struct sw_journal *jn, uint64_t key);
/* struct sw_tfile.state_fn of every stream (arg: its struct jstream). */
int sw__journal_state_fn(void *arg, struct sw_tfile *f, struct sw_file_state *fs, struct sw_buf *blob);
/* Commits the position alone (nothing to seal: entries excluded or filtered away). */
void sw__journal_save_state(struct sw_journal *jn);
/* The restart's replay is over (or impossible): the stored streams are dropped. */
void sw__journal_end_restore(struct sw_journal *jn);

#endif
