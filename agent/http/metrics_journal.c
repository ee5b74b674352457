/* metrics_journal.c - see metrics_journal.h. */
#include "metrics_journal.h"

#include <stddef.h>
#include <stdlib.h>

#include "../../common/timefmt.h"
#include "../journal/journal.h"

#define MAX_JOURNALS 64

struct infos {
  struct sw_journal_info v[MAX_JOURNALS];
  size_t n;
};

static void keep(void *arg, const struct sw_journal_info *ji) {
  struct infos *in = arg;
  if (in->n < MAX_JOURNALS) in->v[in->n++] = *ji;
}

void sw__metrics_render_journal(struct sw_prom *p, struct sw_journals *js) {
  struct infos in = {.n = 0};
  if (!js) return;
  sw_journals_info(js, keep, &in);
  static const struct {
    const char *name, *help;
    int type;
    size_t off;
  } fams[] = {
      {"spillway_journal_entries_read_total", "Journal entries read (excluded ones not included) since the start.",
       SW_PROM_COUNTER, offsetof(struct sw_journal_info, entries)},
      {"spillway_journal_excluded_total", "Journal entries skipped by exclude_units since the start.",
       SW_PROM_COUNTER, offsetof(struct sw_journal_info, excluded)},
      {"spillway_journal_message_bytes_total", "Bytes of MESSAGE read since the start.", SW_PROM_COUNTER,
       offsetof(struct sw_journal_info, bytes)},
      {"spillway_journal_gaps_total", "Starts where the stored position no longer existed (journal files "
       "vacuumed or rotated away while the agent was down).", SW_PROM_COUNTER, offsetof(struct sw_journal_info, gaps)},
      {"spillway_journal_gap_entries_total", "Entries those gaps skipped, by sequence number (where the journal "
       "tells; an upper bound: entries of every unit count).", SW_PROM_COUNTER,
       offsetof(struct sw_journal_info, gap_entries)},
      {"spillway_journal_streams", "Label sets of the journal with open state.", SW_PROM_GAUGE,
       offsetof(struct sw_journal_info, streams)},
  };
  for (size_t k = 0; k < sizeof fams / sizeof *fams; k++) {
    sw_prom_family(p, fams[k].name, (enum sw_prom_type)fams[k].type, fams[k].help);
    for (size_t i = 0; i < in.n; i++)
      sw_prom_sample_u64(p, "", (struct sw_prom_label[]){{"source", in.v[i].source}}, 1,
                         *(const uint64_t *)((const char *)&in.v[i] + fams[k].off));
  }
  sw_prom_family(p, "spillway_journal_position_timestamp_seconds", SW_PROM_GAUGE,
                 "Realtime of the last journal entry read (0: none yet).");
  for (size_t i = 0; i < in.n; i++)
    sw_prom_sample(p, "", (struct sw_prom_label[]){{"source", in.v[i].source}}, 1, (double)in.v[i].cursor_us / 1e6);
  sw_prom_family(p, "spillway_journal_lag_seconds", SW_PROM_GAUGE,
                 "0 when the reader has read every entry; else how old the last entry read is.");
  double now = (double)sw_time_now_ns() / 1e9;
  for (size_t i = 0; i < in.n; i++) {
    double lag = in.v[i].caught_up || !in.v[i].cursor_us ? 0 : now - (double)in.v[i].cursor_us / 1e6;
    sw_prom_sample(p, "", (struct sw_prom_label[]){{"source", in.v[i].source}}, 1, lag > 0 ? lag : 0);
  }
}
