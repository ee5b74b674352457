/* kube.c - the Kubernetes metadata cache's rows (agent/kube/ owns their meaning; facts is its
 * JSON text). Written by the kube watcher on its own connection, in short transactions between
 * the writer's commits. Not copied by a salvage: a relist rebuilds it. */
#include <string.h>

#include "internal.h"

#include "../../common/timefmt.h"

int sw_db_kube_load(struct sw_db *db, const char *kind,
                    int (*cb)(void *arg, const char *key, const char *facts), void *arg) {
  sqlite3_stmt *st = NULL;
  if (sqlite3_prepare_v2(db->h, "SELECT key, facts FROM kube_objects WHERE kind=?", -1, &st, NULL) !=
      SQLITE_OK)
    return sw__db_fail(db);
  sqlite3_bind_text(st, 1, kind, -1, SQLITE_STATIC);
  int s, rc = SW_OK;
  while (!rc && (s = sqlite3_step(st)) == SQLITE_ROW)
    rc = cb(arg, (const char *)sqlite3_column_text(st, 0), (const char *)sqlite3_column_text(st, 1));
  if (!rc && s != SQLITE_DONE) rc = sw__db_fail(db);
  sqlite3_finalize(st);
  return rc;
}

static int put(struct sw_db *db, sqlite3_stmt *ins, sqlite3_stmt *del, const char *kind,
               const char *key, const char *facts) {
  sqlite3_stmt *st = facts ? ins : del;
  sqlite3_reset(st);
  sqlite3_bind_text(st, 1, kind, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 2, key, -1, SQLITE_STATIC);
  if (facts) {
    sqlite3_bind_text(st, 3, facts, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, sw_time_now_ns());
  }
  return sqlite3_step(st) == SQLITE_DONE ? SW_OK : sw__db_fail(db);
}

int sw_db_kube_write(struct sw_db *db, const char *kind, int replace_all, size_t n,
                     const char *const *keys, const char *const *facts) {
  sqlite3_stmt *ins = NULL, *del = NULL;
  int rc = sw__db_exec(db, "BEGIN IMMEDIATE");
  if (rc) return rc;
  if (sqlite3_prepare_v2(db->h,
                         "INSERT INTO kube_objects(kind, key, facts, updated) VALUES(?,?,?,?) "
                         "ON CONFLICT(kind, key) DO UPDATE SET facts=excluded.facts, updated=excluded.updated",
                         -1, &ins, NULL) != SQLITE_OK ||
      sqlite3_prepare_v2(db->h, "DELETE FROM kube_objects WHERE kind=? AND key=?", -1, &del, NULL) !=
          SQLITE_OK) {
    rc = sw__db_fail(db);
    goto done;
  }
  if (replace_all) {
    sqlite3_stmt *all = NULL;
    if (sqlite3_prepare_v2(db->h, "DELETE FROM kube_objects WHERE kind=?", -1, &all, NULL) != SQLITE_OK) {
      rc = sw__db_fail(db);
      goto done;
    }
    sqlite3_bind_text(all, 1, kind, -1, SQLITE_STATIC);
    if (sqlite3_step(all) != SQLITE_DONE) rc = sw__db_fail(db);
    sqlite3_finalize(all);
  }
  for (size_t i = 0; !rc && i < n; i++) rc = put(db, ins, del, kind, keys[i], facts[i]);
done:
  sqlite3_finalize(ins);
  sqlite3_finalize(del);
  if (!rc) rc = sw__db_exec(db, "COMMIT");
  if (rc) (void)sw__db_exec(db, "ROLLBACK");
  return rc;
}
