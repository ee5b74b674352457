/* files.c - what retention and disk pressure need from the buffer: a read-only view of
 * the tailed files and of shipping progress, counters, and giving disk space back.
 *
 * The view is read in one transaction (a consistent snapshot) and may come from a read-only
 * connection while the agent writes (WAL). The reclaim functions write; they run on their own
 * connection (the agent's retention worker), so they take the write lock between the writer's
 * commits, in short transactions.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "internal.h"

#define VACUUM_STEP_PAGES 1024 /* pages per incremental_vacuum transaction (16 MiB) */
#define DROP_BATCH 64          /* chunks deleted per statement when dropping */

void sw_db_view_free(struct sw_db_view *v) {
  if (!v) return;
  for (size_t i = 0; i < v->nfiles; i++) {
    free(v->files[i].source);
    free(v->files[i].path);
  }
  free(v->files);
  free(v);
}

static int64_t scalar64(struct sw_db *db, const char *sql, int64_t arg, int *rc) {
  sqlite3_stmt *st = NULL;
  int64_t v = 0;
  if (sqlite3_prepare_v2(db->h, sql, -1, &st, NULL) != SQLITE_OK) {
    *rc = sw__db_fail(db);
    return 0;
  }
  sqlite3_bind_int64(st, 1, arg);
  int s = sqlite3_step(st);
  if (s == SQLITE_ROW) v = sqlite3_column_int64(st, 0);
  else if (s != SQLITE_DONE) *rc = sw__db_fail(db);
  sqlite3_finalize(st);
  return v;
}

/* Marks has_unacked on the rows whose file id has chunks above min_acked. */
static int mark_unacked(struct sw_db *db, struct sw_db_view *v) {
  sqlite3_stmt *st = NULL;
  if (sqlite3_prepare_v2(db->h, "SELECT DISTINCT file_id FROM chunks WHERE id>?", -1, &st, NULL) != SQLITE_OK)
    return sw__db_fail(db);
  sqlite3_bind_int64(st, 1, v->min_acked);
  int s;
  while ((s = sqlite3_step(st)) == SQLITE_ROW) {
    int64_t id = sqlite3_column_int64(st, 0);
    for (size_t i = 0; i < v->nfiles; i++)
      if (v->files[i].id == id) v->files[i].has_unacked = 1;
  }
  sqlite3_finalize(st);
  return s == SQLITE_DONE ? SW_OK : sw__db_fail(db);
}

static int load_rows(struct sw_db *db, struct sw_db_view *v) {
  sqlite3_stmt *st = NULL;
  size_t cap = 0;
  int rc = SW_OK, s;
  if (sqlite3_prepare_v2(db->h,
                         "SELECT id, source, path, dev, ino, fp_hash, fp_len, offset, pending IS NOT NULL"
                         " FROM files ORDER BY id", -1, &st, NULL) != SQLITE_OK)
    return sw__db_fail(db);
  while ((s = sqlite3_step(st)) == SQLITE_ROW) {
    if (v->nfiles == cap) {
      size_t ncap = cap ? 2 * cap : 64;
      struct sw_db_file_row *n = realloc(v->files, ncap * sizeof *n);
      if (!n) {
        rc = SW_ENOMEM;
        break;
      }
      v->files = n;
      cap = ncap;
    }
    struct sw_db_file_row *r = &v->files[v->nfiles];
    memset(r, 0, sizeof *r);
    r->id = sqlite3_column_int64(st, 0);
    r->dev = (uint64_t)sqlite3_column_int64(st, 3);
    r->ino = (uint64_t)sqlite3_column_int64(st, 4);
    r->fp_hash = (uint64_t)sqlite3_column_int64(st, 5);
    r->fp_len = (uint32_t)sqlite3_column_int(st, 6);
    r->offset = (uint64_t)sqlite3_column_int64(st, 7);
    r->has_pending = sqlite3_column_int(st, 8);
    r->source = strdup((const char *)sqlite3_column_text(st, 1));
    r->path = strdup((const char *)sqlite3_column_text(st, 2));
    v->nfiles++;
    if (!r->source || !r->path) {
      rc = SW_ENOMEM;
      break;
    }
  }
  if (!rc && s != SQLITE_DONE) rc = sw__db_fail(db);
  sqlite3_finalize(st);
  return rc;
}

int sw_db_view_load(struct sw_db *db, const char *const *sinks, size_t nsinks, struct sw_db_view **out) {
  *out = NULL;
  struct sw_db_view *v = calloc(1, sizeof *v);
  if (!v) return SW_ENOMEM;
  v->nsinks = nsinks;
  v->min_acked = INT64_MAX;
  int rc = sw__db_exec(db, "BEGIN"); /* one snapshot for every query below */
  if (rc) goto cleanup;
  for (size_t i = 0; i < nsinks; i++) {
    struct sw_sink_cursor c;
    if ((rc = sw_db_cursor_get(db, sinks[i], NULL, &c))) goto cleanup;
    if (c.acked < v->min_acked) v->min_acked = c.acked;
  }
  if ((rc = load_rows(db, v))) goto cleanup;
  if (nsinks) {
    v->oldest_unacked_ns = scalar64(db, "SELECT COALESCE(MIN(created),0) FROM chunks WHERE id>?", v->min_acked, &rc);
    if (rc || (rc = mark_unacked(db, v))) goto cleanup;
  }
cleanup:
  sqlite3_exec(db->h, "COMMIT", NULL, NULL, NULL);
  if (rc) sw_db_view_free(v);
  else *out = v;
  return rc;
}

int sw_db_file_offset(struct sw_db *db, uint64_t dev, uint64_t ino, uint64_t *offset, int *has_pending,
                      int *found) {
  sqlite3_stmt *st = NULL;
  *offset = 0;
  *has_pending = *found = 0;
  if (sqlite3_prepare_v2(db->h,
                         "SELECT offset, pending IS NOT NULL FROM files WHERE dev=? AND ino=?"
                         " ORDER BY updated DESC LIMIT 1", -1, &st, NULL) != SQLITE_OK)
    return sw__db_fail(db);
  sqlite3_bind_int64(st, 1, (sqlite3_int64)dev);
  sqlite3_bind_int64(st, 2, (sqlite3_int64)ino);
  int s = sqlite3_step(st), rc = SW_OK;
  if (s == SQLITE_ROW) {
    *offset = (uint64_t)sqlite3_column_int64(st, 0);
    *has_pending = sqlite3_column_int(st, 1);
    *found = 1;
  } else if (s != SQLITE_DONE) {
    rc = sw__db_fail(db);
  }
  sqlite3_finalize(st);
  return rc;
}

int sw_db_counters_add(struct sw_db *db, const char *const *names, const uint64_t *values, size_t n) {
  sqlite3_stmt *st = NULL;
  int rc = sw__db_exec(db, "BEGIN IMMEDIATE");
  if (rc) return rc;
  if (sqlite3_prepare_v2(db->h,
                         "INSERT INTO counters(name, value) VALUES(?1,?2) ON CONFLICT(name)"
                         " DO UPDATE SET value=value+?2", -1, &st, NULL) != SQLITE_OK) {
    rc = sw__db_fail(db);
    goto cleanup;
  }
  for (size_t i = 0; i < n && !rc; i++) {
    if (!values[i]) continue;
    sqlite3_reset(st);
    sqlite3_bind_text(st, 1, names[i], -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)values[i]);
    if (sqlite3_step(st) != SQLITE_DONE) rc = sw__db_fail(db);
  }
cleanup:
  sqlite3_finalize(st);
  if (!rc) rc = sw__db_exec(db, "COMMIT");
  if (rc) sqlite3_exec(db->h, "ROLLBACK", NULL, NULL, NULL);
  return rc;
}

/* ---- giving space back ---- */

static uint64_t file_bytes(const struct sw_db *db) {
  char wal[4200];
  struct stat st;
  uint64_t n = 0;
  if (stat(db->path, &st) == 0) n += (uint64_t)st.st_blocks * 512;
  snprintf(wal, sizeof wal, "%s-wal", db->path);
  if (stat(wal, &st) == 0) n += (uint64_t)st.st_blocks * 512;
  return n;
}

/* Every free page back to the filesystem, a step at a time so the writer's commits interleave;
 * then the WAL is checkpointed and truncated (best effort: readers may hold it). */
static int vacuum_all(struct sw_db *db) {
  char sql[64];
  snprintf(sql, sizeof sql, "PRAGMA incremental_vacuum(%d)", VACUUM_STEP_PAGES);
  for (int guard = 0; guard < 1 << 20; guard++) {
    int rc = SW_OK;
    int64_t free_pages = scalar64(db, "SELECT freelist_count FROM pragma_freelist_count", 0, &rc);
    if (rc) return rc;
    if (free_pages <= 0) break;
    if ((rc = sw__db_exec(db, sql))) return rc;
  }
  sqlite3_wal_checkpoint_v2(db->h, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);
  return SW_OK;
}

int sw_db_reclaim_shipped(struct sw_db *db, const char *const *sinks, size_t nsinks, struct sw_db_reclaim *r) {
  memset(r, 0, sizeof *r);
  r->file_before = file_bytes(db);
  int rc = sw_db_gc(db, sinks, nsinks, NULL, &r->stored_bytes, &r->chunks);
  if (!rc) rc = vacuum_all(db);
  r->file_after = file_bytes(db);
  return rc;
}

/* Deletes the oldest chunks one by one, at most DROP_BATCH, until r->stored_bytes >= goal. */
static int drop_batch(struct sw_db *db, uint64_t goal, struct sw_db_reclaim *r, int *empty) {
  sqlite3_stmt *st = NULL;
  *empty = 0;
  if (sqlite3_prepare_v2(db->h,
                         "DELETE FROM chunks WHERE id=(SELECT MIN(id) FROM chunks) RETURNING stored_bytes, records",
                         -1, &st, NULL) != SQLITE_OK)
    return sw__db_fail(db);
  int rc = SW_OK;
  for (int i = 0; i < DROP_BATCH && r->stored_bytes < goal; i++) {
    int s = sqlite3_step(st);
    if (s == SQLITE_ROW) {
      r->stored_bytes += (uint64_t)sqlite3_column_int64(st, 0);
      r->records += (uint64_t)sqlite3_column_int64(st, 1);
      r->chunks++;
      s = sqlite3_step(st);
    } else {
      *empty = 1;
    }
    if (s != SQLITE_DONE) {
      rc = sw__db_fail(db);
      break;
    }
    sqlite3_reset(st);
    if (*empty) break;
  }
  sqlite3_finalize(st);
  return rc;
}

int sw_db_drop_unshipped(struct sw_db *db, uint64_t goal, struct sw_db_reclaim *r) {
  memset(r, 0, sizeof *r);
  r->file_before = file_bytes(db);
  int empty = 0, rc;
  while (!empty && r->stored_bytes < goal) {
    if ((rc = sw__db_exec(db, "BEGIN IMMEDIATE"))) return rc;
    struct sw_db_reclaim step = {0};
    rc = drop_batch(db, goal - r->stored_bytes, &step, &empty);
    const char *names[] = {"retention.pressure_dropped_chunks", "retention.pressure_dropped_records",
                           "retention.pressure_dropped_bytes"};
    uint64_t vals[] = {step.chunks, step.records, step.stored_bytes};
    for (size_t i = 0; !rc && i < 3; i++) {
      char sql[160];
      snprintf(sql, sizeof sql,
               "INSERT INTO counters(name, value) VALUES('%s',%llu) ON CONFLICT(name) DO UPDATE SET value=value+%llu",
               names[i], (unsigned long long)vals[i], (unsigned long long)vals[i]);
      rc = sw__db_exec(db, sql);
    }
    if (!rc) rc = sw__db_exec(db, "COMMIT");
    if (rc) {
      sqlite3_exec(db->h, "ROLLBACK", NULL, NULL, NULL);
      return rc;
    }
    r->chunks += step.chunks;
    r->records += step.records;
    r->stored_bytes += step.stored_bytes;
  }
  rc = vacuum_all(db);
  r->file_after = file_bytes(db);
  return rc;
}
