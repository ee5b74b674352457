/* journal.h - the journald sources of a configuration: each reads one journal directory
 * (reader.h) and turns its entries into records, one stream per label set, through the same
 * ingest as files (multiline, extract, filters, redaction, chunks). The journal's cursor is
 * committed with every chunk it fills (jstate.h). Loop thread only.
 *
 * Labels: host (_HOSTNAME, else the agent's), source, unit (_SYSTEMD_UNIT), identifier
 * (SYSLOG_IDENTIFIER), level (PRIORITY 0-7: emerg ... debug), boot_id (_BOOT_ID), then the
 * source's `fields` (lower case, leading '_' dropped), then its static labels. The record's
 * time is __REALTIME_TIMESTAMP, its line MESSAGE (any bytes), its stream `file`.
 */
#ifndef SW_JOURNAL_H
#define SW_JOURNAL_H

#include <stdint.h>
#include <uv.h>

#include "../buffer/buffer.h"
#include "../buffer/writer.h"
#include "../config/config.h"
#include "../tail/ingest.h"

struct sw_journals;

/* NULL *out (SW_OK) when cfg has no journald source. */
int sw_journals_create(uv_loop_t *loop, const struct sw_config *cfg, struct sw_ingest *ing,
                       struct sw_writer *w, struct sw_journals **out) SW_MUST_CHECK;
/* 1 when st is the stored state of one of cfg's journald sources (it is not a file's). */
int sw_journals_owns(const struct sw_config *cfg, const struct sw_file_state *st);
/* Before start: a stored state (sw_journals_owns). */
int sw_journals_add_known(struct sw_journals *js, const struct sw_file_state *st) SW_MUST_CHECK;
/* Before start: ids for journals with no stored state, from the tail's sequence. */
void sw_journals_assign_ids(struct sw_journals *js, int64_t (*next_id)(void *arg), void *arg);
int sw_journals_start(struct sw_journals *js) SW_MUST_CHECK;
/* The writer made progress: resume reading if it paused. */
void sw_journals_kick(struct sw_journals *js);
/* Stops the readers (entries handed over and not yet taken are left: read again after the
 * restart), seals every open chunk with the state. The loop must run afterwards. */
void sw_journals_stop(struct sw_journals *js);
void sw_journals_free(struct sw_journals *js);

struct sw_journal_info {
  const char *source, *path;
  uint64_t entries, excluded, bytes; /* read since the start (excluded: by exclude_units) */
  uint64_t position;                 /* entries consumed in all (the stored offset) */
  uint64_t gaps, gap_entries;        /* resumptions past entries that were gone; their count by
                                        sequence number where known */
  uint64_t streams;                  /* label sets with open state */
  int64_t cursor_us;                 /* realtime of the last entry read; 0: none */
  int caught_up;
};
void sw_journals_info(struct sw_journals *js, void (*cb)(void *arg, const struct sw_journal_info *ji),
                      void *arg);

#endif
