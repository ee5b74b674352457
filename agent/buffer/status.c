/* status.c - read-only summary of the buffer for `spillway status`. */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "../../common/timefmt.h"
#include "internal.h"

static cJSON *query_array(struct sw_db *db, const char *sql, const char *const *names, int ncols,
                          int *rc) {
  cJSON *arr = cJSON_CreateArray();
  sqlite3_stmt *st = NULL;
  if (!arr || sqlite3_prepare_v2(db->h, sql, -1, &st, NULL) != SQLITE_OK) {
    *rc = sw__db_fail(db);
    cJSON_Delete(arr);
    return NULL;
  }
  while (sqlite3_step(st) == SQLITE_ROW) {
    cJSON *o = cJSON_CreateObject();
    for (int c = 0; c < ncols; c++) {
      if (sqlite3_column_type(st, c) == SQLITE_TEXT)
        cJSON_AddStringToObject(o, names[c], (const char *)sqlite3_column_text(st, c));
      else
        cJSON_AddNumberToObject(o, names[c], (double)sqlite3_column_int64(st, c));
    }
    cJSON_AddItemToArray(arr, o);
  }
  sqlite3_finalize(st);
  return arr;
}

static int64_t scalar(struct sw_db *db, const char *sql, int64_t arg) {
  sqlite3_stmt *st = NULL;
  int64_t v = 0;
  if (sqlite3_prepare_v2(db->h, sql, -1, &st, NULL) != SQLITE_OK) return 0;
  sqlite3_bind_int64(st, 1, arg);
  if (sqlite3_step(st) == SQLITE_ROW) v = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  return v;
}

/* Counters "retention.X" (retention.c, buffer/files.c) as "X": N. */
static int add_retention(struct sw_db *db, cJSON *obj) {
  sqlite3_stmt *st = NULL;
  if (!obj) return SW_ENOMEM;
  if (sqlite3_prepare_v2(db->h, "SELECT substr(name, 11), value FROM counters WHERE name LIKE 'retention.%'"
                         " ORDER BY name", -1, &st, NULL) != SQLITE_OK)
    return sw__db_fail(db);
  while (sqlite3_step(st) == SQLITE_ROW)
    cJSON_AddNumberToObject(obj, (const char *)sqlite3_column_text(st, 0), (double)sqlite3_column_int64(st, 1));
  sqlite3_finalize(st);
  return SW_OK;
}

/* Dead letters and the last error of one sink. */
static int add_sink_health(struct sw_db *db, const char *sink, cJSON *o) {
  sqlite3_stmt *st = NULL;
  if (sqlite3_prepare_v2(db->h,
                         "SELECT COUNT(*), COALESCE(SUM(records),0), COALESCE(SUM(requeued),0)"
                         " FROM dead_letters WHERE sink=?1", -1, &st, NULL) != SQLITE_OK)
    return sw__db_fail(db);
  sqlite3_bind_text(st, 1, sink, -1, SQLITE_STATIC);
  if (sqlite3_step(st) == SQLITE_ROW) {
    cJSON_AddNumberToObject(o, "dead_letters", (double)sqlite3_column_int64(st, 0));
    cJSON_AddNumberToObject(o, "dead_letter_records", (double)sqlite3_column_int64(st, 1));
    cJSON_AddNumberToObject(o, "dead_letters_requeued", (double)sqlite3_column_int64(st, 2));
  }
  sqlite3_finalize(st);
  st = NULL;
  if (sqlite3_prepare_v2(db->h, "SELECT last_error, last_error_at FROM sinks WHERE name=?1", -1, &st,
                         NULL) != SQLITE_OK)
    return sw__db_fail(db);
  sqlite3_bind_text(st, 1, sink, -1, SQLITE_STATIC);
  const char *err = "";
  int64_t at = 0;
  if (sqlite3_step(st) == SQLITE_ROW) {
    err = (const char *)sqlite3_column_text(st, 0);
    at = sqlite3_column_int64(st, 1);
  }
  cJSON_AddStringToObject(o, "last_error", err ? err : "");
  cJSON_AddNumberToObject(o, "last_error_ns", (double)at);
  sqlite3_finalize(st);
  return SW_OK;
}

int sw_db_status_json(struct sw_db *db, const char *const *sinks, const char *const *types,
                      size_t nsinks, uint64_t max_bytes, char **json) {
  int rc = SW_OK;
  cJSON *root = cJSON_CreateObject();
  if (!root) return SW_ENOMEM;
  cJSON_AddStringToObject(root, "agent_id", db->agent_id);
  cJSON_AddStringToObject(root, "database", db->path);
  cJSON *buf = cJSON_AddObjectToObject(root, "buffer");
  uint64_t bytes = 0, chunks = 0;
  if ((rc = sw_db_usage(db, &bytes, &chunks))) goto done;
  cJSON_AddNumberToObject(buf, "chunks", (double)chunks);
  cJSON_AddNumberToObject(buf, "bytes", (double)bytes);
  cJSON_AddNumberToObject(buf, "records", (double)scalar(db, "SELECT COALESCE(SUM(records),0) FROM chunks", 0));
  cJSON_AddNumberToObject(buf, "max_bytes", (double)max_bytes);
  cJSON_AddNumberToObject(buf, "dropped_chunks",
                          (double)scalar(db, "SELECT COALESCE(SUM(value),0) FROM counters WHERE name='dropped_chunks'", 0));
  cJSON_AddNumberToObject(buf, "dropped_records",
                          (double)scalar(db, "SELECT COALESCE(SUM(value),0) FROM counters WHERE name='dropped_records'", 0));
  /* Salvages of a damaged database (buffer/salvage.c), carried over from one to the next. */
  static const char *const salvage[][2] = {
      {"damaged", "buffer_damaged"}, {"salvaged_chunks", "buffer_salvaged_chunks"},
      {"salvage_lost_chunks", "buffer_salvage_lost_chunks"},
      {"salvage_reread_files", "buffer_salvage_reread_files"},
      {"salvage_reread_bytes", "buffer_salvage_reread_bytes"}};
  for (size_t i = 0; i < sizeof salvage / sizeof *salvage; i++) {
    char q[128];
    snprintf(q, sizeof q, "SELECT COALESCE(SUM(value),0) FROM counters WHERE name='%s'", salvage[i][1]);
    cJSON_AddNumberToObject(buf, salvage[i][0], (double)scalar(db, q, 0));
  }
  if ((rc = add_retention(db, cJSON_AddObjectToObject(root, "retention")))) goto done;
  cJSON *red = cJSON_AddObjectToObject(root, "redactions");
  sqlite3_stmt *rs = NULL;
  if (sqlite3_prepare_v2(db->h, "SELECT substr(name, 8), value FROM counters WHERE name LIKE "
                         "'redact:%' ORDER BY name", -1, &rs, NULL) == SQLITE_OK) {
    while (sqlite3_step(rs) == SQLITE_ROW)
      cJSON_AddNumberToObject(red, (const char *)sqlite3_column_text(rs, 0),
                              (double)sqlite3_column_int64(rs, 1));
  }
  sqlite3_finalize(rs);
  static const char *const fcols[] = {"path", "source", "offset", "inode", "id"};
  cJSON *files = query_array(db, "SELECT path, source, offset, ino, id FROM files ORDER BY path", fcols, 5, &rc);
  if (!files) goto done;
  cJSON *f;
  cJSON_ArrayForEach(f, files) {
    struct stat st;
    const cJSON *p = cJSON_GetObjectItem(f, "path");
    const cJSON *ino = cJSON_GetObjectItem(f, "inode");
    int live = stat(p->valuestring, &st) == 0 && (double)st.st_ino == ino->valuedouble;
    cJSON_AddNumberToObject(f, "size", live ? (double)st.st_size : -1);
    double off = cJSON_GetObjectItem(f, "offset")->valuedouble;
    cJSON_AddNumberToObject(f, "lag_bytes", live && st.st_size > off ? (double)st.st_size - off : 0);
  }
  cJSON_AddItemToObject(root, "files", files);
  static const char *const scols[] = {"name", "records", "bytes", "parse_errors", "truncated"};
  cJSON *srcs = query_array(db, "SELECT name, records, bytes, parse_errors, truncated FROM sources ORDER BY name", scols, 5, &rc);
  if (!srcs) goto done;
  cJSON_AddItemToObject(root, "sources", srcs);
  cJSON *sk = cJSON_AddArrayToObject(root, "sinks");
  int64_t min_acked = nsinks ? INT64_MAX : -1; /* no sinks: nothing is history */
  for (size_t i = 0; i < nsinks; i++) {
    struct sw_sink_cursor c;
    if ((rc = sw_db_cursor_get(db, sinks[i], NULL, &c))) goto done;
    if (c.acked < min_acked) min_acked = c.acked;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", sinks[i]);
    cJSON_AddStringToObject(o, "type", types[i]);
    cJSON_AddNumberToObject(o, "acked_chunk", (double)c.acked);
    cJSON_AddNumberToObject(o, "sent_records", (double)c.sent_records);
    cJSON_AddNumberToObject(o, "out_bytes", (double)c.out_bytes);
    cJSON_AddNumberToObject(o, "backlog_chunks", (double)scalar(db, "SELECT COUNT(*) FROM chunks WHERE id>?", c.acked));
    cJSON_AddNumberToObject(o, "backlog_records", (double)scalar(db, "SELECT COALESCE(SUM(records),0) FROM chunks WHERE id>?", c.acked));
    cJSON_AddNumberToObject(o, "backlog_bytes", (double)scalar(db, "SELECT COALESCE(SUM(stored_bytes),0) FROM chunks WHERE id>?", c.acked));
    int64_t oldest = scalar(db, "SELECT COALESCE(MIN(created),0) FROM chunks WHERE id>?", c.acked);
    cJSON_AddNumberToObject(o, "oldest_unshipped_ns", (double)oldest);
    if ((rc = add_sink_health(db, sinks[i], o))) {
      cJSON_Delete(o);
      goto done;
    }
    cJSON_AddItemToArray(sk, o);
  }
  /* Shipped history kept for search (buffer.keep_shipped), and how far back search reaches. */
  cJSON_AddNumberToObject(buf, "history_chunks", (double)scalar(db, "SELECT COUNT(*) FROM chunks WHERE id<=?", min_acked));
  cJSON_AddNumberToObject(buf, "history_bytes", (double)scalar(db, "SELECT COALESCE(SUM(stored_bytes),0) FROM chunks WHERE id<=?", min_acked));
  int64_t oldest_ns = scalar(db, "SELECT COALESCE(MIN(ts_min),0) FROM chunks", 0);
  char oldest[SW_TIME_RFC3339_LEN + 1] = "";
  if (oldest_ns > 0) sw_time_format_rfc3339(oldest_ns, oldest);
  cJSON_AddStringToObject(buf, "oldest_record", oldest); /* exact: a double would round the ns */
  *json = cJSON_PrintUnformatted(root);
  if (!*json) rc = SW_ENOMEM;
done:
  cJSON_Delete(root);
  return rc;
}
