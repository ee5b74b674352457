/* search.c - the read side `spillway search` uses: which chunks may hold an answer
 * (from the time and label columns, without touching the compressed data), then each chunk's
 * data, all inside one read transaction so the snapshot holds while the agent keeps writing
 * and collecting shipped chunks (WAL readers never block the writer, nor it them). */
#include <stdio.h>
#include <string.h>

#include "internal.h"

int sw_db_read_begin(struct sw_db *db) { return sw__db_exec(db, "BEGIN DEFERRED"); }

void sw_db_read_end(struct sw_db *db) { sqlite3_exec(db->h, "COMMIT", NULL, NULL, NULL); }

int sw_db_search_plan(struct sw_db *db, int64_t since, int64_t until, int64_t after,
                      int (*cb)(void *arg, const struct sw_chunk_row *row), void *arg) {
  sqlite3_stmt *st = NULL;
  /* chunks_time(ts_max, ts_min) serves the lower time bound; the sort sees no data column.
   * A database from before schema v3 (a copy, opened read-only: not migrated) has no filters. */
  /* The columns sw__db_chunk_row reads, data left out (NULL), then the trigram filter. */
  static const char *const sql[] = {
      "SELECT id, file_id, source, labels, ts_min, ts_max, records, raw_bytes, NULL, format, grams"
      " FROM chunks WHERE ts_max >= ?1 AND ts_min < ?2 AND id > ?3 ORDER BY ts_min, id",
      "SELECT id, file_id, source, labels, ts_min, ts_max, records, raw_bytes, NULL, format, NULL"
      " FROM chunks WHERE ts_max >= ?1 AND ts_min < ?2 AND id > ?3 ORDER BY ts_min, id"};
  if (sqlite3_prepare_v2(db->h, sql[0], -1, &st, NULL) != SQLITE_OK &&
      sqlite3_prepare_v2(db->h, sql[1], -1, &st, NULL) != SQLITE_OK)
    return sw__db_fail(db);
  sqlite3_bind_int64(st, 1, since);
  sqlite3_bind_int64(st, 2, until);
  sqlite3_bind_int64(st, 3, after);
  int s, rc = SW_OK;
  while ((s = sqlite3_step(st)) == SQLITE_ROW) {
    struct sw_chunk_row row;
    sw__db_chunk_row(st, &row);
    row.grams = sqlite3_column_blob(st, 10);
    row.grams_len = row.grams ? (size_t)sqlite3_column_bytes(st, 10) : 0;
    if (!row.source || !row.labels_json || !row.format) {
      snprintf(db->err, sizeof db->err, "chunk %lld has NULL columns", (long long)row.id);
      rc = SW_ECORRUPT;
      break;
    }
    if ((rc = cb(arg, &row))) break;
  }
  if (!rc && s != SQLITE_DONE) rc = sw__db_fail(db);
  sqlite3_finalize(st);
  return rc;
}

int sw__db_chunk_blob(struct sw_db *db, int64_t id, const void **p, size_t *n) {
  int rc = sw__db_prepare(db, &db->st_data, "SELECT data FROM chunks WHERE id=?");
  if (rc) return rc;
  sqlite3_bind_int64(db->st_data, 1, id);
  int s = sqlite3_step(db->st_data);
  if (s != SQLITE_ROW) return s == SQLITE_DONE ? SW_ENOTFOUND : sw__db_fail(db);
  *p = sqlite3_column_blob(db->st_data, 0);
  *n = (size_t)sqlite3_column_bytes(db->st_data, 0);
  return SW_OK;
}

void sw__db_chunk_blob_done(struct sw_db *db) {
  if (db->st_data) sqlite3_reset(db->st_data);
}

int sw_db_chunk_data(struct sw_db *db, int64_t id, struct sw_buf *out) {
  const void *p;
  size_t n;
  int rc = sw__db_chunk_blob(db, id, &p, &n);
  if (!rc) {
    sw_buf_reset(out);
    rc = sw_buf_append(out, p, n);
  }
  sw__db_chunk_blob_done(db);
  return rc;
}
