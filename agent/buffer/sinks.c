/* sinks.c - what the network sinks keep in the buffer: batch spans, settled batches
 * (cursor + dead letters in one transaction) and the dead-letter table. */
#include <stdlib.h>
#include <string.h>

#include "../../common/timefmt.h"
#include "internal.h"

int sw_db_chunk_span(struct sw_db *db, int64_t after, size_t max_rows, uint64_t max_raw,
                     struct sw_chunk_span *s) {
  memset(s, 0, sizeof *s);
  s->last = after;
  int rc = sw__db_prepare(db, &db->st_span,
                          "SELECT id, raw_bytes, created FROM chunks WHERE id>? ORDER BY id LIMIT ?");
  if (rc) return rc;
  sqlite3_stmt *st = db->st_span;
  sqlite3_bind_int64(st, 1, after);
  sqlite3_bind_int64(st, 2, (sqlite3_int64)max_rows + 1);
  int r;
  while ((r = sqlite3_step(st)) == SQLITE_ROW) {
    if (s->rows == max_rows || s->raw_bytes >= max_raw) {
      s->more = 1;
      break;
    }
    if (s->rows == 0) s->oldest_ns = sqlite3_column_int64(st, 2);
    s->last = sqlite3_column_int64(st, 0);
    s->newest_ns = sqlite3_column_int64(st, 2);
    s->raw_bytes += (uint64_t)sqlite3_column_int64(st, 1);
    s->rows++;
  }
  if (r != SQLITE_ROW && r != SQLITE_DONE) rc = sw__db_fail(db);
  sqlite3_reset(st);
  return rc;
}

int sw_db_chunks_range(struct sw_db *db, int64_t after, int64_t last,
                       int (*cb)(void *, const struct sw_chunk_row *), void *arg) {
  int rc = sw__db_prepare(db, &db->st_range,
                          "SELECT " SW__DB_CHUNK_COLS " FROM chunks WHERE id>? AND id<=? ORDER BY id");
  if (rc) return rc;
  sqlite3_stmt *st = db->st_range;
  sqlite3_bind_int64(st, 1, after);
  sqlite3_bind_int64(st, 2, last);
  int s;
  while ((s = sqlite3_step(st)) == SQLITE_ROW) {
    struct sw_chunk_row row;
    sw__db_chunk_row(st, &row);
    if ((rc = cb(arg, &row))) break;
  }
  if (!rc && s != SQLITE_ROW && s != SQLITE_DONE) rc = sw__db_fail(db);
  sqlite3_reset(st);
  return rc;
}

static int exec_ids(struct sw_db *db, const char *sql, const char *sink, const int64_t *ids, size_t n) {
  if (!n) return SW_OK;
  sqlite3_stmt *st = NULL;
  if (sqlite3_prepare_v2(db->h, sql, -1, &st, NULL) != SQLITE_OK) return sw__db_fail(db);
  int rc = SW_OK;
  for (size_t i = 0; i < n && !rc; i++) {
    sqlite3_reset(st);
    sqlite3_bind_int64(st, 1, ids[i]);
    sqlite3_bind_text(st, 2, sink, -1, SQLITE_STATIC);
    if (sqlite3_step(st) != SQLITE_DONE) rc = sw__db_fail(db);
  }
  sqlite3_finalize(st);
  return rc;
}

static int insert_dead(struct sw_db *db, const char *sink, const struct sw_dead_letter *d, size_t n) {
  if (!n) return SW_OK;
  sqlite3_stmt *st = NULL;
  if (sqlite3_prepare_v2(db->h,
                         "INSERT INTO dead_letters(sink, created, status, reason, key, first_chunk,"
                         " last_chunk, records, attempts, payload) VALUES(?,?,?,?,?,?,?,?,?,?)",
                         -1, &st, NULL) != SQLITE_OK)
    return sw__db_fail(db);
  int rc = SW_OK;
  for (size_t i = 0; i < n && !rc; i++) {
    sqlite3_reset(st);
    sqlite3_bind_text(st, 1, sink, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, d[i].created_ns ? d[i].created_ns : sw_time_now_ns());
    sqlite3_bind_int64(st, 3, d[i].status);
    sqlite3_bind_text(st, 4, d[i].reason ? d[i].reason : "", -1, SQLITE_STATIC);
    if (d[i].key) sqlite3_bind_text(st, 5, d[i].key, -1, SQLITE_STATIC);
    else sqlite3_bind_null(st, 5);
    sqlite3_bind_int64(st, 6, d[i].first_chunk);
    sqlite3_bind_int64(st, 7, d[i].last_chunk);
    sqlite3_bind_int64(st, 8, (sqlite3_int64)d[i].records);
    sqlite3_bind_int64(st, 9, d[i].attempts ? d[i].attempts : 1);
    sqlite3_bind_blob(st, 10, d[i].payload, (int)d[i].len, SQLITE_STATIC);
    if (sqlite3_step(st) != SQLITE_DONE) rc = sw__db_fail(db);
  }
  sqlite3_finalize(st);
  return rc;
}

static int set_error(struct sw_db *db, const char *sink, const char *msg) {
  sqlite3_stmt *st = NULL;
  if (sqlite3_prepare_v2(db->h, "UPDATE sinks SET last_error=?, last_error_at=? WHERE name=?", -1,
                         &st, NULL) != SQLITE_OK)
    return sw__db_fail(db);
  sqlite3_bind_text(st, 1, msg, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 2, *msg ? sw_time_now_ns() : 0);
  sqlite3_bind_text(st, 3, sink, -1, SQLITE_STATIC);
  int rc = sqlite3_step(st) == SQLITE_DONE ? SW_OK : sw__db_fail(db);
  sqlite3_finalize(st);
  return rc;
}

int sw_db_sink_settle(struct sw_db *db, const char *sink, const struct sw_sink_settle *s) {
  int rc = sw__db_exec(db, "BEGIN IMMEDIATE");
  if (rc) return rc;
  if (!rc) rc = insert_dead(db, sink, s->dead, s->ndead);
  if (!rc)
    rc = exec_ids(db, "DELETE FROM dead_letters WHERE id=? AND sink=?", sink, s->resent, s->nresent);
  if (!rc)
    rc = exec_ids(db, "UPDATE dead_letters SET requeued=0, attempts=attempts+1 WHERE id=? AND sink=?",
                  sink, s->refused, s->nrefused);
  if (!rc && s->last_error) rc = set_error(db, sink, s->last_error);
  if (!rc && s->cursor) rc = sw_db_cursor_set(db, sink, s->cursor);
  if (!rc) rc = sw__db_exec(db, "COMMIT");
  if (rc) sqlite3_exec(db->h, "ROLLBACK", NULL, NULL, NULL);
  return rc;
}

int sw_db_dead_letter_next(struct sw_db *db, const char *sink, int64_t after,
                           int (*cb)(void *, const struct sw_dead_letter *), void *arg, int *found) {
  *found = 0;
  sqlite3_stmt *st = NULL;
  if (sqlite3_prepare_v2(db->h,
                         "SELECT id, status, reason, key, first_chunk, last_chunk, created, records,"
                         " attempts, payload FROM dead_letters WHERE sink=? AND requeued=1 AND id>?"
                         " ORDER BY id LIMIT 1",
                         -1, &st, NULL) != SQLITE_OK)
    return sw__db_fail(db);
  sqlite3_bind_text(st, 1, sink, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 2, after);
  int rc = SW_OK, s = sqlite3_step(st);
  if (s == SQLITE_ROW) {
    struct sw_dead_letter d = {
        .id = sqlite3_column_int64(st, 0),
        .status = (long)sqlite3_column_int64(st, 1),
        .reason = (const char *)sqlite3_column_text(st, 2),
        .key = (const char *)sqlite3_column_text(st, 3),
        .first_chunk = sqlite3_column_int64(st, 4),
        .last_chunk = sqlite3_column_int64(st, 5),
        .created_ns = sqlite3_column_int64(st, 6),
        .records = (uint64_t)sqlite3_column_int64(st, 7),
        .attempts = (unsigned)sqlite3_column_int64(st, 8),
        .payload = sqlite3_column_blob(st, 9),
        .len = (size_t)sqlite3_column_bytes(st, 9),
    };
    *found = 1;
    rc = cb(arg, &d);
  } else if (s != SQLITE_DONE) {
    rc = sw__db_fail(db);
  }
  sqlite3_finalize(st);
  return rc;
}

int sw_db_dead_letters_requeue(struct sw_db *db, const char *sink, uint64_t *letters,
                               uint64_t *records) {
  *letters = *records = 0;
  sqlite3_stmt *st = NULL;
  if (sqlite3_prepare_v2(db->h,
                         "UPDATE dead_letters SET requeued=1 WHERE sink=? AND requeued=0 RETURNING records",
                         -1, &st, NULL) != SQLITE_OK)
    return sw__db_fail(db);
  sqlite3_bind_text(st, 1, sink, -1, SQLITE_STATIC);
  int s;
  while ((s = sqlite3_step(st)) == SQLITE_ROW) {
    (*letters)++;
    *records += (uint64_t)sqlite3_column_int64(st, 0);
  }
  sqlite3_finalize(st);
  return s == SQLITE_DONE ? SW_OK : sw__db_fail(db);
}
