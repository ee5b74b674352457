/* ops.c - the write paths of the buffer: commit, drop_oldest, GC, sink cursors. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../common/timefmt.h"
#include "internal.h"

static int save_file(struct sw_db *db, const struct sw_file_state *f, int64_t now) {
  int rc = sw__db_prepare(db, &db->st_file,
                          "INSERT OR REPLACE INTO files(id, source, path, dev, ino, fp_hash, fp_len,"
                          " offset, pending, updated) VALUES(?,?,?,?,?,?,?,?,?,?)");
  if (rc) return rc;
  sqlite3_stmt *st = db->st_file;
  sqlite3_bind_int64(st, 1, f->id);
  sqlite3_bind_text(st, 2, f->source, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 3, f->path, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 4, (sqlite3_int64)f->dev);
  sqlite3_bind_int64(st, 5, (sqlite3_int64)f->ino);
  sqlite3_bind_int64(st, 6, (sqlite3_int64)f->fp_hash);
  sqlite3_bind_int(st, 7, (int)f->fp_len);
  sqlite3_bind_int64(st, 8, (sqlite3_int64)f->offset);
  if (f->pending_len)
    sqlite3_bind_blob(st, 9, f->pending, (int)f->pending_len, SQLITE_STATIC);
  else
    sqlite3_bind_null(st, 9);
  sqlite3_bind_int64(st, 10, now);
  return sqlite3_step(st) == SQLITE_DONE ? SW_OK : sw__db_fail(db);
}

static int forget_file(struct sw_db *db, int64_t id) {
  int rc = sw__db_prepare(db, &db->st_forget, "DELETE FROM files WHERE id=?");
  if (rc) return rc;
  sqlite3_bind_int64(db->st_forget, 1, id);
  return sqlite3_step(db->st_forget) == SQLITE_DONE ? SW_OK : sw__db_fail(db);
}

static int insert_chunk(struct sw_db *db, const struct sw_commit_op *op, int64_t now) {
  int rc = sw__db_prepare(db, &db->st_chunk,
                          "INSERT INTO chunks(source, file_id, format, labels, ts_min, ts_max, records,"
                          " raw_bytes, stored_bytes, created, data, grams) VALUES(?,?,?,?,?,?,?,?,?,?,?,?)");
  if (rc) return rc;
  sqlite3_stmt *st = db->st_chunk;
  sqlite3_bind_text(st, 1, op->file.source, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 2, op->file.id);
  sqlite3_bind_text(st, 3, op->format, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 4, op->labels_json, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 5, op->ts_min);
  sqlite3_bind_int64(st, 6, op->ts_max);
  sqlite3_bind_int(st, 7, (int)op->records);
  sqlite3_bind_int64(st, 8, (sqlite3_int64)op->raw_bytes);
  sqlite3_bind_int64(st, 9, (sqlite3_int64)op->data_len);
  sqlite3_bind_int64(st, 10, now);
  sqlite3_bind_blob(st, 11, op->data, (int)op->data_len, SQLITE_STATIC);
  if (op->grams_len)
    sqlite3_bind_blob(st, 12, op->grams, (int)op->grams_len, SQLITE_STATIC);
  else
    sqlite3_bind_null(st, 12);
  return sqlite3_step(st) == SQLITE_DONE ? SW_OK : sw__db_fail(db);
}

static int add_source_stats(struct sw_db *db, const struct sw_commit_op *op) {
  int rc = sw__db_prepare(db, &db->st_source,
                          "INSERT INTO sources(name, records, bytes, parse_errors, truncated)"
                          " VALUES(?1,?2,?3,?4,?5) ON CONFLICT(name) DO UPDATE SET"
                          " records=records+?2, bytes=bytes+?3, parse_errors=parse_errors+?4,"
                          " truncated=truncated+?5");
  if (rc) return rc;
  sqlite3_stmt *st = db->st_source;
  sqlite3_bind_text(st, 1, op->file.source, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 2, op->records);
  sqlite3_bind_int64(st, 3, (sqlite3_int64)op->in_bytes);
  sqlite3_bind_int64(st, 4, op->parse_errors);
  sqlite3_bind_int64(st, 5, op->truncated);
  return sqlite3_step(st) == SQLITE_DONE ? SW_OK : sw__db_fail(db);
}

static int add_counter(struct sw_db *db, const char *name, uint64_t v) {
  if (v == 0) return SW_OK;
  int rc = sw__db_prepare(db, &db->st_counter,
                          "INSERT INTO counters(name, value) VALUES(?1,?2) ON CONFLICT(name)"
                          " DO UPDATE SET value=value+?2");
  if (rc) return rc;
  sqlite3_bind_text(db->st_counter, 1, name, -1, SQLITE_STATIC);
  sqlite3_bind_int64(db->st_counter, 2, (sqlite3_int64)v);
  return sqlite3_step(db->st_counter) == SQLITE_DONE ? SW_OK : sw__db_fail(db);
}

/* The last chunk id every sink has delivered; 0 without sinks (nothing is shipped then). */
static int64_t shipped_upto(struct sw_db *db) {
  sqlite3_stmt *st = NULL;
  int64_t v = 0;
  if (sqlite3_prepare_v2(db->h, "SELECT MIN(acked) FROM sinks", -1, &st, NULL) == SQLITE_OK &&
      sqlite3_step(st) == SQLITE_ROW)
    v = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  return v;
}

/* Deletes oldest chunks until `need` more bytes fit under max_bytes. Shipped history (kept for
 * search) is counted apart: deleting it loses nothing a sink still needs. */
static int drop_oldest(struct sw_db *db, uint64_t need, uint64_t max_bytes,
                       struct sw_commit_result *res) {
  uint64_t used = 0, chunks = 0;
  int rc = sw_db_usage(db, &used, &chunks);
  if (rc) return rc;
  int64_t shipped = used + need > max_bytes ? shipped_upto(db) : 0;
  while (used + need > max_bytes && chunks > 0) {
    rc = sw__db_prepare(db, &db->st_oldest,
                        "DELETE FROM chunks WHERE id=(SELECT MIN(id) FROM chunks)"
                        " RETURNING stored_bytes, records, id");
    if (rc) return rc;
    if (sqlite3_step(db->st_oldest) != SQLITE_ROW) return sw__db_fail(db);
    uint64_t b = (uint64_t)sqlite3_column_int64(db->st_oldest, 0);
    uint64_t recs = (uint64_t)sqlite3_column_int64(db->st_oldest, 1);
    int history = sqlite3_column_int64(db->st_oldest, 2) <= shipped;
    sqlite3_reset(db->st_oldest);
    if (history) {
      res->history_chunks++;
      res->history_bytes += b;
    } else {
      res->dropped_records += recs;
      res->dropped_chunks++;
      res->dropped_bytes += b;
    }
    used -= b < used ? b : used;
    chunks--;
  }
  return SW_OK;
}

int sw_db_commit(struct sw_db *db, const struct sw_commit_op *ops, size_t n, uint64_t max_bytes,
                 int drop, struct sw_commit_result *res) {
  memset(res, 0, sizeof *res);
  db->err_full = 0;
  int64_t now = sw_time_now_ns();
  int rc = sw__db_exec(db, "BEGIN IMMEDIATE");
  if (rc) return rc;
  if (drop && max_bytes) {
    uint64_t need = 0;
    for (size_t i = 0; i < n; i++) need += ops[i].data_len;
    if ((rc = drop_oldest(db, need, max_bytes, res))) goto fail;
  }
  for (size_t i = 0; i < n; i++) {
    const struct sw_commit_op *op = &ops[i];
    if (op->kind == SW_COMMIT_FORGET) {
      if ((rc = forget_file(db, op->file.id))) goto fail;
      continue;
    }
    if (op->records > 0) {
      if ((rc = insert_chunk(db, op, now))) goto fail;
      if (op->chunk_id) *op->chunk_id = sqlite3_last_insert_rowid(db->h);
      res->chunks++;
      res->records += op->records;
      res->stored_bytes += op->data_len;
    }
    if ((rc = add_source_stats(db, op))) goto fail;
    if ((rc = save_file(db, &op->file, now))) goto fail;
    for (size_t c = 0; c < op->ncounters; c++)
      if ((rc = add_counter(db, op->counter_names[c], op->counter_deltas[c]))) goto fail;
  }
  if ((rc = add_counter(db, "dropped_chunks", res->dropped_chunks))) goto fail;
  if ((rc = add_counter(db, "dropped_records", res->dropped_records))) goto fail;
  if ((rc = sw__db_exec(db, "COMMIT"))) goto fail;
  return SW_OK;
fail:
  sqlite3_exec(db->h, "ROLLBACK", NULL, NULL, NULL);
  return rc;
}

/* Free pages are reused by new chunks, so the file is only shrunk when a lot is free: page
 * moves are expensive and must not slow the hot path. */
static void shrink_file(struct sw_db *db) {
  sqlite3_stmt *st = NULL;
  int64_t free_pages = 0, page_size = 0;
  if (sqlite3_prepare_v2(db->h, "SELECT freelist_count, page_size FROM pragma_freelist_count, "
                         "pragma_page_size", -1, &st, NULL) != SQLITE_OK)
    return;
  if (sqlite3_step(st) == SQLITE_ROW) {
    free_pages = sqlite3_column_int64(st, 0);
    page_size = sqlite3_column_int64(st, 1);
  }
  sqlite3_finalize(st);
  if (free_pages * page_size < (64 << 20)) return;
  char sql[64];
  snprintf(sql, sizeof sql, "PRAGMA incremental_vacuum(%lld)",
           (long long)(free_pages - (16 << 20) / page_size));
  sqlite3_exec(db->h, sql, NULL, NULL, NULL);
}

/* How many of the oldest shipped chunks (id <= min_acked) the policy lets go: all of them
 * without history; else those older than keep_age, then more while the history exceeds
 * keep_bytes or the buffer as a whole exceeds 90 % of max_bytes (history never holds back new
 * data). Stops at the first chunk it keeps, so it reads only what it deletes. *last gets the
 * id to delete up to (min_acked: everything shipped; < the oldest id: nothing). */
static int gc_limit(struct sw_db *db, int64_t min_acked, const struct sw_gc_policy *p, int64_t *last) {
  *last = min_acked;
  if (!p || (p->keep_age_ns <= 0 && p->keep_bytes == 0)) return SW_OK;
  uint64_t excess = 0;
  if (p->keep_bytes && p->used > p->keep_bytes) {
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db->h, "SELECT COALESCE(SUM(stored_bytes),0) FROM chunks WHERE id>?",
                           -1, &st, NULL) != SQLITE_OK)
      return sw__db_fail(db);
    sqlite3_bind_int64(st, 1, min_acked);
    uint64_t backlog = sqlite3_step(st) == SQLITE_ROW ? (uint64_t)sqlite3_column_int64(st, 0) : 0;
    sqlite3_finalize(st);
    uint64_t history = p->used > backlog ? p->used - backlog : 0;
    if (history > p->keep_bytes) excess = history - p->keep_bytes;
  }
  if (p->max_bytes && p->used > p->max_bytes / 10 * 9 && p->used - p->max_bytes / 10 * 9 > excess)
    excess = p->used - p->max_bytes / 10 * 9;
  int64_t cutoff = p->keep_age_ns > 0 ? sw_time_now_ns() - p->keep_age_ns : INT64_MIN;
  sqlite3_stmt *st = NULL;
  if (sqlite3_prepare_v2(db->h, "SELECT id, created, stored_bytes FROM chunks WHERE id<=? ORDER BY id",
                         -1, &st, NULL) != SQLITE_OK)
    return sw__db_fail(db);
  sqlite3_bind_int64(st, 1, min_acked);
  uint64_t freed = 0;
  *last = INT64_MIN;
  int s;
  while ((s = sqlite3_step(st)) == SQLITE_ROW) {
    int64_t id = sqlite3_column_int64(st, 0), created = sqlite3_column_int64(st, 1);
    if (created >= cutoff && freed >= excess) break;
    freed += (uint64_t)sqlite3_column_int64(st, 2);
    *last = id;
  }
  sqlite3_finalize(st);
  return s == SQLITE_ROW || s == SQLITE_DONE ? SW_OK : sw__db_fail(db);
}

int sw_db_gc(struct sw_db *db, const char *const *sinks, size_t nsinks, const struct sw_gc_policy *p,
             uint64_t *freed_bytes, uint64_t *freed_chunks) {
  *freed_bytes = *freed_chunks = 0;
  if (nsinks == 0) return SW_OK; /* nothing ships: keep everything (bounded by max_bytes) */
  int64_t min_acked = INT64_MAX;
  for (size_t i = 0; i < nsinks; i++) {
    struct sw_sink_cursor c;
    int rc = sw_db_cursor_get(db, sinks[i], NULL, &c);
    if (rc) return rc;
    if (c.acked < min_acked) min_acked = c.acked;
  }
  if (p && p->acked) *p->acked = min_acked;
  int rc = gc_limit(db, min_acked, p, &min_acked);
  if (rc) return rc;
  if (min_acked == INT64_MIN) return SW_OK;
  sqlite3_stmt *st = NULL;
  if (sqlite3_prepare_v2(db->h,
                         "DELETE FROM chunks WHERE id<=? RETURNING stored_bytes", -1, &st,
                         NULL) != SQLITE_OK)
    return sw__db_fail(db);
  sqlite3_bind_int64(st, 1, min_acked);
  int s;
  while ((s = sqlite3_step(st)) == SQLITE_ROW) {
    *freed_bytes += (uint64_t)sqlite3_column_int64(st, 0);
    (*freed_chunks)++;
  }
  sqlite3_finalize(st);
  if (s != SQLITE_DONE) return sw__db_fail(db);
  /* Give freed pages back to the filesystem a little at a time. */
  if (*freed_chunks) shrink_file(db);
  return SW_OK;
}

int sw_db_cursor_get(struct sw_db *db, const char *sink, const char *type,
                     struct sw_sink_cursor *c) {
  memset(c, 0, sizeof *c);
  int rc = sw__db_prepare(db, &db->st_cursor_get,
                          "SELECT acked, out_bytes, out_ino, sent_records, planned FROM sinks WHERE name=?");
  if (rc) return rc;
  sqlite3_bind_text(db->st_cursor_get, 1, sink, -1, SQLITE_STATIC);
  int s = sqlite3_step(db->st_cursor_get);
  if (s == SQLITE_ROW) {
    c->acked = sqlite3_column_int64(db->st_cursor_get, 0);
    c->out_bytes = (uint64_t)sqlite3_column_int64(db->st_cursor_get, 1);
    c->out_ino = (uint64_t)sqlite3_column_int64(db->st_cursor_get, 2);
    c->sent_records = (uint64_t)sqlite3_column_int64(db->st_cursor_get, 3);
    c->planned = sqlite3_column_int64(db->st_cursor_get, 4);
    sqlite3_reset(db->st_cursor_get);
    return SW_OK;
  }
  sqlite3_reset(db->st_cursor_get);
  if (s != SQLITE_DONE) return sw__db_fail(db);
  if (!type || db->readonly) {
    c->acked = -1; /* unknown sink: acknowledges nothing */
    return SW_OK;
  }
  /* A new sink ships what is still buffered, except the history other sinks already shipped
   * (buffer.keep_shipped): a sink added today does not resend yesterday. */
  sqlite3_stmt *st = NULL;
  if (sqlite3_prepare_v2(db->h, "SELECT MAX(COALESCE((SELECT MIN(id) FROM chunks),0)-1,"
                         " COALESCE((SELECT MIN(acked) FROM sinks),-1))", -1, &st, NULL) !=
      SQLITE_OK)
    return sw__db_fail(db);
  if (sqlite3_step(st) == SQLITE_ROW) c->acked = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  if (c->acked < 0) {
    int64_t max_id;
    if ((rc = sw_db_max_chunk_id(db, &max_id))) return rc;
    c->acked = max_id;
  }
  if (sqlite3_prepare_v2(db->h, "INSERT INTO sinks(name, type, acked) VALUES(?,?,?)", -1, &st,
                         NULL) != SQLITE_OK)
    return sw__db_fail(db);
  sqlite3_bind_text(st, 1, sink, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 2, type, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 3, c->acked);
  s = sqlite3_step(st);
  sqlite3_finalize(st);
  return s == SQLITE_DONE ? SW_OK : sw__db_fail(db);
}

int sw_db_cursor_set(struct sw_db *db, const char *sink, const struct sw_sink_cursor *c) {
  int rc = sw__db_prepare(db, &db->st_cursor_set,
                          "UPDATE sinks SET acked=?, out_bytes=?, out_ino=?, sent_records=?,"
                          " updated=?, planned=? WHERE name=?");
  if (rc) return rc;
  sqlite3_stmt *st = db->st_cursor_set;
  sqlite3_bind_int64(st, 1, c->acked);
  sqlite3_bind_int64(st, 2, (sqlite3_int64)c->out_bytes);
  sqlite3_bind_int64(st, 3, (sqlite3_int64)c->out_ino);
  sqlite3_bind_int64(st, 4, (sqlite3_int64)c->sent_records);
  sqlite3_bind_int64(st, 5, sw_time_now_ns());
  sqlite3_bind_int64(st, 6, c->planned);
  sqlite3_bind_text(st, 7, sink, -1, SQLITE_STATIC);
  return sqlite3_step(st) == SQLITE_DONE ? SW_OK : sw__db_fail(db);
}

void sw__db_chunk_row(sqlite3_stmt *st, struct sw_chunk_row *row) {
  *row = (struct sw_chunk_row){
      .id = sqlite3_column_int64(st, 0),
      .file_id = sqlite3_column_int64(st, 1),
      .source = (const char *)sqlite3_column_text(st, 2),
      .labels_json = (const char *)sqlite3_column_text(st, 3),
      .ts_min = sqlite3_column_int64(st, 4),
      .ts_max = sqlite3_column_int64(st, 5),
      .records = (uint32_t)sqlite3_column_int(st, 6),
      .raw_bytes = (uint64_t)sqlite3_column_int64(st, 7),
  };
  row->data = sqlite3_column_blob(st, 8);
  row->len = (size_t)sqlite3_column_bytes(st, 8);
  row->format = (const char *)sqlite3_column_text(st, 9);
}

int sw_db_chunks_after(struct sw_db *db, int64_t after, size_t max_rows, uint64_t max_raw,
                       int (*cb)(void *, const struct sw_chunk_row *), void *arg) {
  int rc = sw__db_prepare(db, &db->st_after, "SELECT " SW__DB_CHUNK_COLS " FROM chunks WHERE id>? ORDER BY id LIMIT ?");
  if (rc) return rc;
  sqlite3_stmt *st = db->st_after;
  sqlite3_bind_int64(st, 1, after);
  sqlite3_bind_int64(st, 2, (sqlite3_int64)max_rows);
  uint64_t raw = 0;
  int s;
  while ((s = sqlite3_step(st)) == SQLITE_ROW) {
    struct sw_chunk_row row;
    sw__db_chunk_row(st, &row);
    if ((rc = cb(arg, &row))) break;
    raw += row.raw_bytes;
    if (raw >= max_raw) break;
  }
  if (!rc && s != SQLITE_ROW && s != SQLITE_DONE) rc = sw__db_fail(db);
  sqlite3_reset(st);
  return rc > 0 ? SW_OK : rc;
}
