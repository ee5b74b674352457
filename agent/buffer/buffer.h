/* buffer.h - the durable buffer: spillway.db (SQLite, WAL) under data_dir.
 *
 * This module is the only code that knows the schema. One struct sw_db is one SQLite
 * connection and must be used by one thread at a time; each thread that needs the database
 * (the writer, each sink worker, the status command) opens its own.
 *
 * Invariants:
 *  - a chunk and the state of the file it was read from (offset after its last byte, pending
 *    partial records, fingerprint) are committed in ONE transaction (sw_db_commit), so after a
 *    crash the offset never runs ahead of or behind the stored data;
 *  - chunk ids only grow; a sink's cursor is the highest chunk id it has fully delivered;
 *  - chunks at or below every configured sink's cursor are deleted by sw_db_gc.
 * Durability: WAL with synchronous=NORMAL survives process crashes (kill -9) with no loss; on
 * power loss the last transactions may roll back, together with their offsets, so the records
 * are read again from the source files (still no loss, no duplicates in the buffer).
 */
#ifndef SW_BUFFER_H
#define SW_BUFFER_H

#include <stddef.h>
#include <stdint.h>

#include "../../common/buf.h"
#include "../../common/error.h"

struct sw_db;

/* SW_DB_FILE: the data_dir argument is the database file itself (a copy, read-only). */
enum { SW_DB_READONLY = 1, SW_DB_FILE = 2 };

/* Opens (creating data_dir and the database if needed, applying migrations) the buffer.
 * err receives a human message on failure. */
int sw_db_open(const char *data_dir, int flags, struct sw_db **out, char *err,
               size_t errlen) SW_MUST_CHECK;
void sw_db_close(struct sw_db *db);
const char *sw_db_agent_id(const struct sw_db *db);
/* When the buffer was first created (wall clock ns; 0 if unknown). */
int64_t sw_db_created_ns(const struct sw_db *db);
const char *sw_db_path(const struct sw_db *db);
const char *sw_db_errmsg(const struct sw_db *db);
/* 1 when the last failed call failed because the filesystem under data_dir is full
 * (SQLITE_FULL, ENOSPC, EDQUOT): nothing was written, the caller may retry once space returns. */
int sw_db_err_full(const struct sw_db *db);

/* ---- a damaged database (buffer/salvage.c) ---- */

/* PRAGMA quick_check(1) on db (reads every page once): SW_OK, SW_ECORRUPT (damaged; why says
 * how), SW_EDB (could not tell, e.g. an I/O error). */
int sw_db_quick_check(struct sw_db *db, char *why, size_t n) SW_MUST_CHECK;

struct sw_db_salvage {
  int damaged;            /* 0: the database was healthy (or new), nothing else is set */
  char why[512];          /* what was wrong with it */
  char moved_to[4200];    /* spillway.db.damaged-<UTC time> (its -wal/-shm beside it) */
  uint64_t chunks, files, sinks, other_rows; /* rows copied into the new database */
  uint64_t chunks_lost;   /* chunk rows read whose data did not decode */
  uint64_t lost_ranges;   /* runs of rows that could not be read at all */
  uint64_t reread_files, reread_bytes; /* files read again from the start, their old offsets */
  int files_lost;         /* some file states were unreadable */
  int agent_id_kept;
};

/* The agent's open: sw_db_open, then quick_check. A database that does not open as one or
 * fails the check is salvaged (see salvage.c: moved aside, what can be read copied into a new
 * one, files whose unshipped chunks were lost read again) and *s says what happened; the
 * error log line says it too. Blocking (reads the whole file): never on the loop thread. */
int sw_db_open_checked(const char *data_dir, struct sw_db **out, struct sw_db_salvage *s,
                       char *err, size_t errlen) SW_MUST_CHECK;

/* Persistent state of one tailed file. */
struct sw_file_state {
  int64_t id;
  const char *source, *path;
  uint64_t dev, ino;
  uint64_t fp_hash;
  uint32_t fp_len;
  uint64_t offset;     /* bytes of the file fully accounted for (in chunks or in `pending`) */
  const void *pending; /* serialized partial records (see tail), may be NULL */
  size_t pending_len;
  int64_t updated_ns;
};

enum sw_commit_kind {
  SW_COMMIT_CHUNK = 0, /* insert a chunk (if records > 0) and save the file state */
  SW_COMMIT_FORGET = 1 /* delete the file's state row (file released for good) */
};

struct sw_commit_op {
  enum sw_commit_kind kind;
  struct sw_file_state file;
  /* chunk; data is zstd-compressed */
  const char *format; /* source format name, used for the parse_error label */
  const char *labels_json;
  int64_t ts_min, ts_max;
  uint32_t records, parse_errors, truncated;
  uint64_t raw_bytes, in_bytes;
  const void *data;
  size_t data_len;
  const void *grams; /* trigram filter (sw_chunk_grams), may be NULL */
  size_t grams_len;
  int64_t *chunk_id; /* if set, receives the id of the inserted chunk */
  /* Named counters to add in the same transaction (e.g. "redact:email"), may be empty. */
  const char *const *counter_names;
  const uint64_t *counter_deltas;
  size_t ncounters;
};

struct sw_commit_result {
  uint64_t chunks, records, stored_bytes;
  uint64_t dropped_chunks, dropped_records, dropped_bytes; /* when_full: drop_oldest, unshipped */
  uint64_t history_chunks, history_bytes; /* drop_oldest that only cut shipped history */
};

/* One transaction: every op, in order. If max_bytes > 0 and drop_oldest is set, the oldest
 * chunks are deleted first so the buffer stays under max_bytes (counted). */
int sw_db_commit(struct sw_db *db, const struct sw_commit_op *ops, size_t n, uint64_t max_bytes,
                 int drop_oldest, struct sw_commit_result *res) SW_MUST_CHECK;

/* Calls cb for every stored file state (pointers valid only during the call). */
int sw_db_load_files(struct sw_db *db, int (*cb)(void *arg, const struct sw_file_state *st),
                     void *arg) SW_MUST_CHECK;

/* Stored bytes and chunk count of the buffer. */
int sw_db_usage(struct sw_db *db, uint64_t *bytes, uint64_t *chunks) SW_MUST_CHECK;

/* What garbage collection keeps of the chunks every sink has acknowledged (the shipped
 * history `spillway search` reads); all zero: nothing. */
struct sw_gc_policy {
  int64_t keep_age_ns; /* keep shipped chunks this long after they were buffered (0: no age limit) */
  uint64_t keep_bytes; /* and at most this many stored bytes of them (0: no size limit) */
  uint64_t max_bytes;  /* buffer.max_bytes: history is cut to keep the buffer under 90 % of it */
  uint64_t used;       /* stored bytes of the buffer now */
  int64_t *acked;      /* if set, receives the lowest sink cursor (every sink has up to it) */
};

/* Deletes chunks every listed sink has acknowledged, except the history p keeps (p may be
 * NULL: keep none), oldest first. */
int sw_db_gc(struct sw_db *db, const char *const *sinks, size_t nsinks, const struct sw_gc_policy *p,
             uint64_t *freed_bytes, uint64_t *freed_chunks) SW_MUST_CHECK;

struct sw_sink_cursor {
  int64_t acked;         /* last fully delivered chunk id */
  uint64_t out_bytes;    /* file sink: committed length of the output file */
  uint64_t out_ino;      /* file sink: inode of the output file */
  uint64_t sent_records; /* total records delivered */
  int64_t planned;       /* network sinks with fixed ranges: the batch (acked, planned] was
                            cut before sending and must be resent exactly; <= acked: none */
};

/* Reads a sink's cursor; a sink seen for the first time starts before the oldest chunk
 * still buffered (it ships the whole backlog) and its row is created. */
int sw_db_cursor_get(struct sw_db *db, const char *sink, const char *type,
                     struct sw_sink_cursor *c) SW_MUST_CHECK;
int sw_db_cursor_set(struct sw_db *db, const char *sink, const struct sw_sink_cursor *c) SW_MUST_CHECK;

struct sw_chunk_row {
  int64_t id, file_id;
  const char *source, *labels_json, *format;
  int64_t ts_min, ts_max;
  uint32_t records;
  uint64_t raw_bytes;
  const void *data;
  size_t len;
  const void *grams; /* sw_db_search_plan only; may be NULL */
  size_t grams_len;
};

/* Calls cb for chunks with id > after, in id order, at most max_rows rows and (roughly)
 * max_raw raw bytes; cb returns non-zero to stop. Rows come without data (row->data NULL):
 * sw_chunk_reader_get (hot.h) gives the records. */
int sw_db_chunks_after(struct sw_db *db, int64_t after, size_t max_rows, uint64_t max_raw,
                       int (*cb)(void *arg, const struct sw_chunk_row *row), void *arg) SW_MUST_CHECK;

/* Chunks in (after, last], in id order (no size limit: the range was cut by the caller);
 * rows without data, as above. */
int sw_db_chunks_range(struct sw_db *db, int64_t after, int64_t last,
                       int (*cb)(void *arg, const struct sw_chunk_row *row), void *arg) SW_MUST_CHECK;

/* ---- network sinks (buffer/sinks.c) ---- */

/* The chunks after `after`, looked at without reading their data: up to max_rows rows and
 * max_raw raw bytes (the row that reaches max_raw is included). */
struct sw_chunk_span {
  uint64_t rows, raw_bytes;
  int64_t last;        /* id of the last row of the span; `after` when empty */
  int64_t oldest_ns;   /* wall-clock `created` of the first row; 0 when empty */
  int64_t newest_ns;   /* and of the last row of the span */
  int more;            /* rows exist beyond the span */
};
int sw_db_chunk_span(struct sw_db *db, int64_t after, size_t max_rows, uint64_t max_raw,
                     struct sw_chunk_span *s) SW_MUST_CHECK;

struct sw_dead_letter {
  int64_t id;
  long status;
  const char *reason, *key;   /* key may be NULL */
  int64_t first_chunk, last_chunk, created_ns;
  uint64_t records;
  unsigned attempts;
  const void *payload;        /* zstd-compressed request payload */
  size_t len;
};

/* What one settled batch changes, in ONE transaction: the cursor moves only together with
 * the dead letters of the records it passes, so a crash can neither lose nor repeat them. */
struct sw_sink_settle {
  const struct sw_sink_cursor *cursor;   /* NULL: unchanged */
  const struct sw_dead_letter *dead;     /* new dead letters (id ignored) */
  size_t ndead;
  const int64_t *resent;                 /* replayed dead letters now delivered: deleted */
  size_t nresent;
  const int64_t *refused;                /* replayed and refused again: no longer requeued */
  size_t nrefused;
  const char *last_error;                /* NULL: unchanged */
};
int sw_db_sink_settle(struct sw_db *db, const char *sink, const struct sw_sink_settle *s) SW_MUST_CHECK;

/* The requeued dead letter of sink with the lowest id > after: cb gets it (pointers valid
 * during the call only); *found = 0 when there is none. */
int sw_db_dead_letter_next(struct sw_db *db, const char *sink, int64_t after,
                           int (*cb)(void *arg, const struct sw_dead_letter *d), void *arg,
                           int *found) SW_MUST_CHECK;
/* `spillway replay-dead-letters SINK`: marks every dead letter of sink for resending. */
int sw_db_dead_letters_requeue(struct sw_db *db, const char *sink, uint64_t *letters,
                               uint64_t *records) SW_MUST_CHECK;

/* ---- search (buffer/search.c) ---- */

/* A read transaction: everything read until sw_db_read_end sees one snapshot. */
int sw_db_read_begin(struct sw_db *db) SW_MUST_CHECK;
void sw_db_read_end(struct sw_db *db);
/* Chunks with id > after whose time range meets [since, until), by ts_min then id; the row's
 * data is NULL (fetch it with sw_db_chunk_data). cb returns non-zero to stop (returned). */
int sw_db_search_plan(struct sw_db *db, int64_t since, int64_t until, int64_t after,
                      int (*cb)(void *arg, const struct sw_chunk_row *row), void *arg) SW_MUST_CHECK;
/* Replaces out's content with chunk id's compressed data; SW_ENOTFOUND if it is gone. */
int sw_db_chunk_data(struct sw_db *db, int64_t id, struct sw_buf *out) SW_MUST_CHECK;

/* Copies the WAL into the database file and truncates it (at shutdown), as far as readers
 * allow without waiting for them. */
int sw_db_checkpoint(struct sw_db *db) SW_MUST_CHECK;

/* Highest chunk id (0 if none). */
int sw_db_max_chunk_id(struct sw_db *db, int64_t *id) SW_MUST_CHECK;

/* status: writes one JSON object describing the buffer (see status.c) into *json (malloc'd,
 * caller frees). sinks lists the configured sink names/types for backlog figures. */
int sw_db_status_json(struct sw_db *db, const char *const *sinks, const char *const *types,
                      size_t nsinks, uint64_t max_bytes, char **json) SW_MUST_CHECK;

/* ---- retention and disk pressure (buffer/files.c) ---- */

/* What the buffer knows about one tailed file, for retention decisions. */
struct sw_db_file_row {
  int64_t id;
  char *source, *path;
  uint64_t dev, ino, fp_hash, offset;
  uint32_t fp_len;
  int has_pending;  /* partial records stored: bytes before `offset` are still needed */
  int has_unacked;  /* some chunk of this file is not yet acknowledged by every sink */
};

/* A snapshot taken in one read transaction. Owned by the caller: sw_db_view_free. */
struct sw_db_view {
  struct sw_db_file_row *files;
  size_t nfiles;
  size_t nsinks;             /* configured sinks (0: nothing is ever shipped) */
  int64_t min_acked;         /* lowest cursor among them (INT64_MAX without sinks) */
  int64_t oldest_unacked_ns; /* wall-clock `created` of the oldest chunk above min_acked; 0: none */
};

/* Loads the view. Works on a read-only connection; the agent may be writing meanwhile (WAL). */
int sw_db_view_load(struct sw_db *db, const char *const *sinks, size_t nsinks,
                    struct sw_db_view **out) SW_MUST_CHECK;
void sw_db_view_free(struct sw_db_view *v);
/* The committed offset of file (dev, ino): its most recently updated row (*found=1), or
 * *found=0 when the buffer has no row for it. *has_pending as in the row. */
int sw_db_file_offset(struct sw_db *db, uint64_t dev, uint64_t ino, uint64_t *offset, int *has_pending,
                      int *found) SW_MUST_CHECK;

/* Adds values[i] to counter names[i] (created at 0), in one transaction. */
int sw_db_counters_add(struct sw_db *db, const char *const *names, const uint64_t *values,
                       size_t n) SW_MUST_CHECK;

struct sw_db_reclaim {
  uint64_t chunks, records, stored_bytes; /* chunks deleted */
  uint64_t file_before, file_after;       /* spillway.db + -wal bytes on disk */
};
/* Disk pressure, step "already shipped": deletes chunks every sink acknowledged (normally GC
 * has done so already), then returns ALL free pages to the filesystem (incremental_vacuum,
 * which routine GC only does past 64 MiB free) and truncates the WAL. */
int sw_db_reclaim_shipped(struct sw_db *db, const char *const *sinks, size_t nsinks,
                          struct sw_db_reclaim *r) SW_MUST_CHECK;
/* Disk pressure, last resort (drop_unshipped): deletes the oldest chunks, shipped or not, until
 * `goal` stored bytes are gone, counts them (pressure_dropped_*), then vacuums like above. */
int sw_db_drop_unshipped(struct sw_db *db, uint64_t goal, struct sw_db_reclaim *r) SW_MUST_CHECK;

/* ---- Kubernetes metadata cache (buffer/kube.c; agent/kube/ owns the facts' meaning) ---- */

/* Calls cb(key, facts) for every stored object of kind ("pod", "namespace"). */
int sw_db_kube_load(struct sw_db *db, const char *kind,
                    int (*cb)(void *arg, const char *key, const char *facts), void *arg) SW_MUST_CHECK;
/* One transaction: with replace_all every stored object of kind goes first (a relist); then
 * each keys[i] is stored with facts[i], or deleted when facts[i] is NULL. */
int sw_db_kube_write(struct sw_db *db, const char *kind, int replace_all, size_t n,
                     const char *const *keys, const char *const *facts) SW_MUST_CHECK;

#endif
