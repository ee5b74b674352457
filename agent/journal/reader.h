/* reader.h - one journal directory read by sd-journal on a thread of its own (sd-journal
 * objects belong to one thread; reading, decompressing and walking entry items never runs on
 * the loop). The thread hands the loop batches of entries, at most SW_JREADER_QUEUE at a time:
 * when the loop does not take them (the buffer is full or the writer behind) it waits, so
 * memory stays bounded and the journal keeps what was not read. Woken by the journal's change
 * notification (sd_journal_get_fd: inotify), which also sees files rotated, created and
 * vacuumed.
 *
 * Entries are numbered as jstate.h says. Where the first batch starts:
 *   - no stored cursor: the journal's head (read_from: head) or after its last entry (tail);
 *   - the cursor's entry exists: `back` entries up to and including it are delivered again
 *     (fewer when the journal starts later), then the entries after it;
 *   - it does not (files vacuumed or rotated away while the agent was down): the first entry
 *     after its position that still exists (a gap, counted).
 */
#ifndef SW_JREADER_H
#define SW_JREADER_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "../../common/error.h"

#define SW_JREADER_QUEUE 4
#define SW_JBATCH_BYTES (256u << 10)
#define SW_JBATCH_ENTRIES 4096

/* Label fields of an entry, in this order; then the source's `fields`. */
enum { SW_JF_HOST = 0, SW_JF_UNIT, SW_JF_IDENT, SW_JF_PRIO, SW_JF_BOOT, SW_JF_FIXED };

struct sw_jreader_opts {
  const char *path;
  char *const *units, *const *identifiers, *const *exclude_units, *const *fields;
  size_t nunits, nidentifiers, nexclude_units, nfields;
  int from_tail;
  const char *cursor; /* stored position (NULL: none); copied */
  uint64_t back;      /* entries to deliver again, ending with the cursor's (jstate.h) */
  uv_loop_t *loop;
  void (*on_batch)(void *arg); /* loop thread: batches are waiting */
  void *arg;
};

/* Where the reader started (in the first batch). */
enum sw_jstart { SW_JSTART_FRESH = 0, SW_JSTART_AT = 1, SW_JSTART_GAP = 2 };

/* Entries, each: varint skipped (excluded entries just before it), varint realtime µs, varint
 * message length, message, per label field varint (length + 1, 0: absent) and bytes, u64 LE
 * key: FNV-1a of the label field bytes. */
struct sw_jbatch {
  struct sw_jbatch *next;
  uint8_t *data;
  size_t len, cap;
  uint32_t n;
  uint32_t nlabels;       /* label fields per entry */
  uint64_t skipped_after; /* excluded entries after the last one encoded */
  char *cursor;           /* of the last entry read (encoded or excluded); NULL: none read */
  int64_t last_us;        /* its realtime */
  int first;              /* the first batch since the start: the fields below are set */
  enum sw_jstart start;
  uint64_t rewound;       /* SW_JSTART_AT: entries delivered again (<= back) */
  uint64_t gap_seqnums;   /* SW_JSTART_GAP: entries gone by sequence number (0: unknown) */
};

struct sw_jreader;

int sw_jreader_start(const struct sw_jreader_opts *o, struct sw_jreader **out, char *err,
                     size_t errlen) SW_MUST_CHECK;
/* Loop thread: the oldest waiting batch, or NULL. */
struct sw_jbatch *sw_jreader_take(struct sw_jreader *r);
/* Loop thread: on_batch again at the loop's next turn (the loop stopped taking batches to serve
 * its other handles). */
void sw_jreader_poke(struct sw_jreader *r);
/* Loop thread: a batch taken is done with; the reader may read on. */
void sw_jreader_done(struct sw_jreader *r, struct sw_jbatch *b);
/* 1 when the reader last found no entry after the ones handed over. Any thread. */
int sw_jreader_caught_up(struct sw_jreader *r);
/* Stops the thread and frees everything (batches not taken included). Loop thread. */
void sw_jreader_stop(struct sw_jreader *r);

/* The realtime (µs) of the newest entry of the journal in path that units and identifiers
 * select (`spillway status`: how far behind the stored position is). 0 or -errno. Blocking. */
int sw_journal_newest_us(const char *path, char *const *units, size_t nunits,
                         char *const *identifiers, size_t nidentifiers, uint64_t *us);

/* Decoding a batch (loop thread). */
struct sw_jentry {
  uint64_t skipped;
  int64_t ts_ns;
  const char *msg;
  size_t len;
  const uint8_t *labels; /* the label fields as encoded (the key's input) */
  size_t labels_len;
  uint64_t key;
};
/* Reads the entry at *off and advances it: 1, 0 at the end, -1 when malformed. */
int sw_jbatch_next(const struct sw_jbatch *b, size_t *off, struct sw_jentry *e);
/* The k-th label field of an encoded label region: 1 (value, length) or 0 when absent. */
int sw_jlabel(const uint8_t *labels, size_t len, size_t k, const char **v, size_t *vlen);

#endif
