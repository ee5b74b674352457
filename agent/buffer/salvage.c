/* salvage.c - a damaged spillway.db: detect it at start, move it aside, keep what can be read.
 *
 * Detection is SQLite's own: the database does not open (not a database, malformed schema) or
 * `PRAGMA quick_check(1)` reports a problem. quick_check reads every page once (B-tree shape,
 * overflow chains, free list; not index-against-table) and costs about one sequential read of
 * the file; a chunk whose blob pages were overwritten in place keeps a valid shape, which is
 * what the zstd content checksum of every chunk is for (verified here during salvage, and by
 * every reader).
 *
 * Salvage steps, each leaving something a restart can finish (states of data_dir):
 *   DAMAGED          spillway.db damaged            -> build spillway.db.salvage (a stale one
 *                                                      from a crash is deleted first)
 *   BUILT            damaged + complete .salvage    -> rename damaged (and -wal, -shm) to
 *                                                      spillway.db.damaged-<UTC time>
 *   MOVED            .salvage, no spillway.db       -> rename .salvage to spillway.db
 *   OPEN             the salvaged database, checked like any other
 * A crash while building leaves DAMAGED (built again), after it MOVED (sw_db_open_checked
 * finishes the rename): a crash never turns a damaged buffer into an empty one.
 *
 * What is copied, row by row in rowid order, skipping what cannot be read (without the
 * dbpage virtual table, which bookworm's SQLite is built without, this is the affordable form
 * of `.recover`): the agent id (network sinks' idempotent ids stay the same), file states,
 * sink cursors, source statistics, counters, dead letters and chunks whose data decodes. A read
 * error skips ahead by growing steps (1, 2, 4, ... rowids), so a damaged page costs the rows
 * on it and at worst as many readable neighbours.
 * Lost chunks that some sink had not acknowledged would be lost records: the files they came
 * from are read again from their start (duplicates rather than loss, counted and logged per
 * file). When the file of a lost chunk is unknown (its row was unreadable), or the cursors
 * themselves were, every file is read again. Chunk ids continue 2^32 above anything seen, so
 * that a new chunk never reuses the id of a lost one (idempotent ids would drop it).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zstd.h>

#include "../../common/log.h"
#include "chunk.h"
#include "internal.h"

#define ID_JUMP ((int64_t)1 << 32)
#define BATCH_BYTES (32u << 20) /* commit the copy every so many bytes: bounded WAL */

struct salvage {
  sqlite3 *from;        /* the damaged database, read-only */
  struct sw_db *to;     /* the new one (spillway.db.salvage) */
  struct sw_db_salvage *s;
  ZSTD_DCtx *dctx;
  struct sw_buf raw;
  uint64_t batch_bytes;
  int64_t min_acked;    /* lowest salvaged sink cursor; 0 when cursors were lost */
  int cursors_lost;
  int64_t max_id;       /* highest chunk id seen */
  int reread_all;       /* an unacknowledged chunk of an unknown file was lost */
  int64_t *reread;      /* file ids to read again (grows) */
  size_t nreread, capreread;
};

/* One table's copy: `cols` read from the damaged file and inserted as they are. */
struct table {
  const char *name, *cols;
  int ncols;
  uint64_t *copied;
  /* Returns 1 to keep the row, 0 to drop it (counted damaged); may note what it learns. */
  int (*accept)(struct salvage *sv, sqlite3_stmt *row);
};

static int note_reread(struct salvage *sv, int64_t file_id) {
  for (size_t i = 0; i < sv->nreread; i++)
    if (sv->reread[i] == file_id) return SW_OK;
  if (sv->nreread == sv->capreread) {
    size_t cap = sv->capreread ? sv->capreread * 2 : 16;
    int64_t *n = realloc(sv->reread, cap * sizeof *n);
    if (!n) return SW_ENOMEM;
    sv->reread = n;
    sv->capreread = cap;
  }
  sv->reread[sv->nreread++] = file_id;
  return SW_OK;
}

/* Chunk rows (column 1 = id, 3 = file_id, 12 = data): kept only when the data decodes. */
static int accept_chunk(struct salvage *sv, sqlite3_stmt *row) {
  int64_t id = sqlite3_column_int64(row, 1), file_id = sqlite3_column_int64(row, 3);
  if (id > sv->max_id) sv->max_id = id;
  sw_buf_reset(&sv->raw);
  const void *data = sqlite3_column_blob(row, 12);
  int n = sqlite3_column_bytes(row, 12);
  if (data && sw_chunk_decompress(sv->dctx, data, (size_t)n, &sv->raw) == SW_OK) {
    if (sv->raw.cap > (8u << 20)) sw_buf_shrink(&sv->raw, 0);
    return 1;
  }
  sv->s->chunks_lost++;
  if (id > sv->min_acked && note_reread(sv, file_id)) sv->reread_all = 1;
  return 0;
}

static int accept_sink(struct salvage *sv, sqlite3_stmt *row) {
  int64_t acked = sqlite3_column_int64(row, 3);
  if (!sv->cursors_lost && (sv->s->sinks == 0 || acked < sv->min_acked)) sv->min_acked = acked;
  return 1;
}

/* Rowids between two readable rows (or from the start, or to the end) could not be read;
 * `until` is the first readable rowid after them (INT64_MAX: none). Unreadable chunks matter
 * when a sink may not have them yet; their file is unknown. */
static void lost_range(struct salvage *sv, const struct table *t, int64_t until) {
  sv->s->lost_ranges++;
  if (!strcmp(t->name, "chunks")) {
    if (until - 1 > sv->min_acked) sv->reread_all = 1;
  } else if (!strcmp(t->name, "sinks")) {
    sv->min_acked = 0; /* a cursor is gone: its sink may lack any chunk */
    sv->cursors_lost = 1;
  } else if (!strcmp(t->name, "files")) {
    sv->s->files_lost = 1;
  }
}

static int insert_row(struct salvage *sv, sqlite3_stmt *ins, sqlite3_stmt *row, int ncols) {
  sqlite3_reset(ins);
  for (int c = 0; c < ncols; c++) {
    sqlite3_bind_value(ins, c + 1, sqlite3_column_value(row, c + 1));
    sv->batch_bytes += (uint64_t)sqlite3_column_bytes(row, c + 1);
  }
  if (sqlite3_step(ins) != SQLITE_DONE) return sw__db_fail(sv->to);
  if (sv->batch_bytes < BATCH_BYTES) return SW_OK;
  sv->batch_bytes = 0;
  int rc = sw__db_exec(sv->to, "COMMIT");
  return rc ? rc : sw__db_exec(sv->to, "BEGIN IMMEDIATE");
}

/* Copies one table in rowid order. Read errors skip ahead; write errors (the new database,
 * e.g. a full disk) fail the salvage. */
static int copy_table(struct salvage *sv, const struct table *t) {
  sqlite3_stmt *rd = NULL, *ins = NULL;
  char sql[768], qs[128] = "";
  int rc = SW_OK;
  for (int c = 0; c < t->ncols; c++) strcat(qs, c ? ",?" : "?");
  snprintf(sql, sizeof sql, "INSERT OR REPLACE INTO %s(%s) VALUES(%s)", t->name, t->cols, qs);
  if (sqlite3_prepare_v2(sv->to->h, sql, -1, &ins, NULL) != SQLITE_OK) {
    rc = sw__db_fail(sv->to);
    goto cleanup;
  }
  snprintf(sql, sizeof sql, "SELECT rowid, %s FROM %s WHERE rowid >= ?1 ORDER BY rowid", t->cols, t->name);
  if (sqlite3_prepare_v2(sv->from, sql, -1, &rd, NULL) != SQLITE_OK) {
    lost_range(sv, t, INT64_MAX); /* no such table or an unreadable schema: all of it */
    goto cleanup;
  }
  int64_t next = 0, gap = 1; /* spillway's rowids start at 1 */
  int in_gap = 0;
  for (;;) {
    sqlite3_reset(rd);
    sqlite3_bind_int64(rd, 1, next);
    int s, got = 0;
    while ((s = sqlite3_step(rd)) == SQLITE_ROW) {
      int64_t id = sqlite3_column_int64(rd, 0);
      if (in_gap) lost_range(sv, t, id);
      in_gap = 0;
      got = 1;
      next = id + 1;
      if (t->accept && !t->accept(sv, rd)) continue;
      if ((rc = insert_row(sv, ins, rd, t->ncols))) goto cleanup;
      (*t->copied)++;
    }
    if (s == SQLITE_DONE && !in_gap) break;
    /* An error, or the end reached from inside a gap: probe further by growing steps. */
    gap = got || !in_gap ? 1 : gap * 2;
    in_gap = 1;
    if (s == SQLITE_DONE || next > INT64_MAX - gap) {
      lost_range(sv, t, INT64_MAX);
      break;
    }
    next += gap;
  }
cleanup:
  sqlite3_finalize(rd);
  sqlite3_finalize(ins);
  return rc;
}

static const char k_files_cols[] = "id, source, path, dev, ino, fp_hash, fp_len, offset, pending, updated";
static const char k_sinks_cols[] =
    "name, type, acked, out_bytes, out_ino, sent_records, updated, planned, last_error, last_error_at";
static const char k_chunk_cols[] = "id, source, file_id, format, labels, ts_min, ts_max, records,"
                                   " raw_bytes, stored_bytes, created, data, grams";
static const char k_dead_cols[] = "id, sink, created, status, reason, key, first_chunk, last_chunk,"
                                  " records, attempts, requeued, payload";

/* A single value of the damaged database, or dflt when it cannot be read. */
static int64_t read_int(sqlite3 *h, const char *sql, int64_t dflt) {
  sqlite3_stmt *st = NULL;
  int64_t v = dflt;
  if (sqlite3_prepare_v2(h, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
    v = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  return v;
}

static int keep_agent_id(struct salvage *sv) {
  sqlite3_stmt *st = NULL, *up = NULL;
  int rc = SW_OK;
  if (sqlite3_prepare_v2(sv->from, "SELECT value FROM meta WHERE key='agent_id'", -1, &st, NULL) !=
          SQLITE_OK ||
      sqlite3_step(st) != SQLITE_ROW || sqlite3_column_bytes(st, 0) != 32)
    goto cleanup; /* unreadable: the new database keeps its new id */
  if (sqlite3_prepare_v2(sv->to->h, "UPDATE meta SET value=?1 WHERE key='agent_id'", -1, &up, NULL) !=
      SQLITE_OK) {
    rc = sw__db_fail(sv->to);
    goto cleanup;
  }
  sqlite3_bind_value(up, 1, sqlite3_column_value(st, 0));
  if (sqlite3_step(up) != SQLITE_DONE) {
    rc = sw__db_fail(sv->to);
    goto cleanup;
  }
  sv->s->agent_id_kept = 1;
cleanup:
  sqlite3_finalize(st);
  sqlite3_finalize(up);
  return rc;
}

/* Marks file `id` (all files when id < 0) to be read again from its start, saying which and
 * how many bytes may be shipped twice. */
static int reread(struct salvage *sv, int64_t id) {
  sqlite3_stmt *st = NULL;
  int rc = SW_OK, s;
  if (sqlite3_prepare_v2(sv->to->h, "SELECT source, path, offset FROM files WHERE ?1 < 0 OR id = ?1",
                         -1, &st, NULL) != SQLITE_OK)
    return sw__db_fail(sv->to);
  sqlite3_bind_int64(st, 1, id);
  while ((s = sqlite3_step(st)) == SQLITE_ROW) {
    uint64_t off = (uint64_t)sqlite3_column_int64(st, 2);
    SW_LOG(SW_L_WARN, "buffer",
           "salvage: %s (source %s) is read again from its start: chunks of it that a sink may "
           "not have had were lost; up to %llu bytes already read may be shipped twice",
           (const char *)sqlite3_column_text(st, 1), (const char *)sqlite3_column_text(st, 0),
           (unsigned long long)off);
    sv->s->reread_files++;
    sv->s->reread_bytes += off;
  }
  if (s != SQLITE_DONE) rc = sw__db_fail(sv->to);
  sqlite3_finalize(st);
  if (rc) return rc;
  char sql[128];
  snprintf(sql, sizeof sql, "UPDATE files SET offset=0, pending=NULL WHERE %lld < 0 OR id = %lld",
           (long long)id, (long long)id);
  return sw__db_exec(sv->to, sql);
}

/* Files whose lost chunks a sink may lack start over; chunk ids continue above all seen; the
 * salvage is counted (the counters table of the new database, which /metrics reads). */
static int finish(struct salvage *sv) {
  char sql[512];
  int rc = SW_OK;
  if (sv->reread_all) rc = reread(sv, -1);
  for (size_t i = 0; !rc && !sv->reread_all && i < sv->nreread; i++) rc = reread(sv, sv->reread[i]);
  if (rc) return rc;
  int64_t seq = read_int(sv->from, "SELECT MAX(seq) FROM sqlite_sequence WHERE name='chunks'", 0);
  seq = seq > sv->max_id ? seq : sv->max_id;
  const struct sw_db_salvage *s = sv->s;
  snprintf(sql, sizeof sql,
           "DELETE FROM sqlite_sequence WHERE name='chunks';"
           "INSERT INTO sqlite_sequence(name, seq) VALUES('chunks', %lld);"
           "INSERT INTO counters(name, value) VALUES ('buffer_damaged', 1), "
           "('buffer_salvaged_chunks', %llu), ('buffer_salvage_lost_chunks', %llu), "
           "('buffer_salvage_reread_files', %llu), ('buffer_salvage_reread_bytes', %llu) "
           "ON CONFLICT(name) DO UPDATE SET value = value + excluded.value",
           (long long)(seq + ID_JUMP), (unsigned long long)s->chunks,
           (unsigned long long)s->chunks_lost, (unsigned long long)s->reread_files,
           (unsigned long long)s->reread_bytes);
  return sw__db_exec(sv->to, sql);
}

static int copy_all(struct salvage *sv) {
  struct sw_db_salvage *s = sv->s;
  const struct table tables[] = {
      /* sinks first: the cursors say which lost chunks matter */
      {"sinks", k_sinks_cols, 10, &s->sinks, accept_sink},
      {"files", k_files_cols, 10, &s->files, NULL},
      {"sources", "name, records, bytes, parse_errors, truncated", 5, &s->other_rows, NULL},
      {"counters", "name, value", 2, &s->other_rows, NULL},
      {"dead_letters", k_dead_cols, 12, &s->other_rows, NULL},
      {"chunks", k_chunk_cols, 13, &s->chunks, accept_chunk},
  };
  int rc = keep_agent_id(sv);
  for (size_t i = 0; !rc && i < sizeof tables / sizeof *tables; i++) rc = copy_table(sv, &tables[i]);
  return rc ? rc : finish(sv);
}

/* Builds tmp_path from what can be read of path (which is not changed: read-only, and no
 * checkpoint of its WAL at close). Errors are the new database's (e.g. a full disk). */
static int build(const char *path, const char *tmp_path, struct sw_db_salvage *s, char *err,
                 size_t errlen) {
  struct salvage sv = {.s = s};
  char side[4300];
  int rc = SW_ENOMEM;
  sw_buf_init(&sv.raw, SIZE_MAX);
  for (const char *suf = ""; suf; suf = !*suf ? "-wal" : !strcmp(suf, "-wal") ? "-shm" : NULL) {
    snprintf(side, sizeof side, "%s%s", tmp_path, suf); /* a build a crash interrupted */
    if (unlink(side) && errno != ENOENT) goto cleanup;
  }
  if (!(sv.dctx = ZSTD_createDCtx())) goto cleanup;
  if ((rc = sw_db_open(tmp_path, SW_DB_FILE, &sv.to, err, errlen))) goto cleanup;
  sqlite3_open_v2(path, &sv.from, SQLITE_OPEN_READWRITE, NULL); /* errors show at the reads */
  sqlite3_db_config(sv.from, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, NULL);
  /* writable_schema: a file shorter than its header says is read up to its end instead of
   * refused whole (SQLite's own recovery does the same); query_only keeps it unchanged. */
  sqlite3_exec(sv.from, "PRAGMA query_only=1; PRAGMA writable_schema=1", NULL, NULL, NULL);
  rc = sw__db_exec(sv.to, "BEGIN IMMEDIATE");
  if (!rc) rc = copy_all(&sv);
  if (!rc) rc = sw__db_exec(sv.to, "COMMIT");
  /* The file is renamed into place alone: no -wal of it may be left behind. */
  if (!rc) rc = sw__db_exec(sv.to, "PRAGMA journal_mode=DELETE");
  if (rc) snprintf(err, errlen, "salvage into %s: %s", tmp_path, sw_db_errmsg(sv.to));
cleanup:
  sqlite3_close(sv.from);
  sw_db_close(sv.to);
  ZSTD_freeDCtx(sv.dctx);
  sw_buf_free(&sv.raw);
  free(sv.reread);
  if (rc == SW_ENOMEM && !err[0]) snprintf(err, errlen, "salvage: %s", sw_strerror(rc));
  return rc;
}

/* Renames path and its -wal/-shm to path.damaged-<UTC time>[-wal|-shm], the WAL first: a
 * crash between the renames leaves the damaged file without its WAL (damaged again, or older),
 * never a stray WAL beside the new database. */
static int move_aside(const char *path, char *to, size_t n, char *err, size_t errlen) {
  char ts[32], from[4300], dst[4400];
  time_t now = time(NULL);
  struct tm tm;
  strftime(ts, sizeof ts, "%Y%m%dT%H%M%SZ", gmtime_r(&now, &tm));
  snprintf(to, n, "%s.damaged-%s", path, ts);
  static const char *const sufs[] = {"-wal", "-shm", ""};
  for (size_t i = 0; i < 3; i++) {
    snprintf(from, sizeof from, "%s%s", path, sufs[i]);
    snprintf(dst, sizeof dst, "%s%s", to, sufs[i]);
    if (rename(from, dst) && (errno != ENOENT || !*sufs[i])) {
      snprintf(err, errlen, "cannot move %s aside to %s: %s", from, dst, strerror(errno));
      return SW_EIO;
    }
  }
  return SW_OK;
}

int sw_db_quick_check(struct sw_db *db, char *why, size_t n) {
  sqlite3_stmt *st = NULL;
  int rc = SW_OK, s = SQLITE_ERROR;
  if (sqlite3_prepare_v2(db->h, "PRAGMA quick_check(1)", -1, &st, NULL) == SQLITE_OK &&
      (s = sqlite3_step(st)) == SQLITE_ROW) {
    const char *r = (const char *)sqlite3_column_text(st, 0);
    if (!r || strcmp(r, "ok")) {
      snprintf(why, n, "quick_check: %s", r ? r : "?");
      rc = SW_ECORRUPT;
    }
  } else {
    int code = sqlite3_extended_errcode(db->h) & 0xff;
    snprintf(why, n, "quick_check: %s", sqlite3_errmsg(db->h));
    rc = code == SQLITE_CORRUPT || code == SQLITE_NOTADB ? SW_ECORRUPT : SW_EDB;
  }
  sqlite3_finalize(st);
  return rc;
}

static void log_salvage(const char *path, const struct sw_db_salvage *s) {
  SW_LOG(SW_L_ERROR, "buffer",
         "%s is damaged (%s): moved aside to %s (with its -wal/-shm; inspect with sqlite3 "
         "\"PRAGMA integrity_check\"); salvaged %llu chunks, %llu file offsets, %llu sink "
         "cursors%s; lost %llu unreadable chunks and %llu unreadable row ranges%s; %llu files are "
         "read again from their start (up to %llu bytes shipped twice)",
         path, s->why, s->moved_to, (unsigned long long)s->chunks, (unsigned long long)s->files,
         (unsigned long long)s->sinks, s->agent_id_kept ? "" : ", not the agent id (new one)",
         (unsigned long long)s->chunks_lost, (unsigned long long)s->lost_ranges,
         s->files_lost ? " (some file offsets among them: those files count as new, read_from applies)" : "",
         (unsigned long long)s->reread_files, (unsigned long long)s->reread_bytes);
}

int sw_db_open_checked(const char *data_dir, struct sw_db **out, struct sw_db_salvage *s,
                       char *err, size_t errlen) {
  char path[4096], tmp[4200];
  memset(s, 0, sizeof *s);
  *out = NULL;
  snprintf(path, sizeof path, "%s/spillway.db", data_dir);
  snprintf(tmp, sizeof tmp, "%s.salvage", path);
  if (access(path, F_OK) && !access(tmp, F_OK) && !rename(tmp, path)) /* state MOVED */
    SW_LOG(SW_L_WARN, "buffer", "finished a salvage a crash interrupted: %s", path);
  int rc = sw_db_open(data_dir, 0, out, err, errlen);
  if (rc == SW_OK) {
    rc = sw_db_quick_check(*out, s->why, sizeof s->why);
    if (rc == SW_OK) return SW_OK;
    /* Its WAL stays as found: no checkpoint into a damaged file. */
    sqlite3_db_config((*out)->h, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, NULL);
    sw_db_close(*out);
    *out = NULL;
    if (rc != SW_ECORRUPT) {
      snprintf(err, errlen, "%s: %s", path, s->why);
      return rc;
    }
  } else if (rc != SW_ECORRUPT) {
    return rc;
  } else {
    snprintf(s->why, sizeof s->why, "%s", err);
  }
  s->damaged = 1;
  err[0] = 0;
  if ((rc = build(path, tmp, s, err, errlen))) return rc;
  if ((rc = move_aside(path, s->moved_to, sizeof s->moved_to, err, errlen))) return rc;
  if (rename(tmp, path)) {
    snprintf(err, errlen, "cannot rename %s to %s: %s", tmp, path, strerror(errno));
    return SW_EIO;
  }
  log_salvage(path, s);
  return sw_db_open(data_dir, 0, out, err, errlen);
}
