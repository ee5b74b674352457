/* buffer.c - SQLite store: schema, migrations, the commit transaction, cursors, GC. */
#include "buffer.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../common/timefmt.h"
#include "internal.h"

/* Each entry upgrades the schema by one version; never edit a released entry, append. */
static const char *const k_migrations[] = {
    /* v1 */
    "CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);"
    "CREATE TABLE chunks(id INTEGER PRIMARY KEY AUTOINCREMENT, source TEXT NOT NULL, file_id INTEGER NOT NULL,"
    " format TEXT NOT NULL, labels TEXT NOT NULL, ts_min INTEGER NOT NULL, ts_max INTEGER NOT NULL,"
    " records INTEGER NOT NULL, raw_bytes INTEGER NOT NULL, stored_bytes INTEGER NOT NULL,"
    " created INTEGER NOT NULL, data BLOB NOT NULL);"
    "CREATE INDEX chunks_time ON chunks(ts_max, ts_min);"
    "CREATE TABLE files(id INTEGER PRIMARY KEY, source TEXT NOT NULL, path TEXT NOT NULL,"
    " dev INTEGER NOT NULL, ino INTEGER NOT NULL, fp_hash INTEGER NOT NULL, fp_len INTEGER NOT NULL,"
    " offset INTEGER NOT NULL, pending BLOB, updated INTEGER NOT NULL);"
    "CREATE TABLE sources(name TEXT PRIMARY KEY, records INTEGER NOT NULL DEFAULT 0,"
    " bytes INTEGER NOT NULL DEFAULT 0, parse_errors INTEGER NOT NULL DEFAULT 0,"
    " truncated INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE sinks(name TEXT PRIMARY KEY, type TEXT NOT NULL, acked INTEGER NOT NULL,"
    " out_bytes INTEGER NOT NULL DEFAULT 0, out_ino INTEGER NOT NULL DEFAULT 0,"
    " sent_records INTEGER NOT NULL DEFAULT 0, updated INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE counters(name TEXT PRIMARY KEY, value INTEGER NOT NULL);",
    /* v2: network sinks. planned = the last chunk of a batch written down before it is sent
     * (S3 keys come from the range); dead letters = what a server refused for good. */
    "ALTER TABLE sinks ADD COLUMN planned INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE sinks ADD COLUMN last_error TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE sinks ADD COLUMN last_error_at INTEGER NOT NULL DEFAULT 0;"
    "CREATE TABLE dead_letters(id INTEGER PRIMARY KEY AUTOINCREMENT, sink TEXT NOT NULL,"
    " created INTEGER NOT NULL, status INTEGER NOT NULL, reason TEXT NOT NULL, key TEXT,"
    " first_chunk INTEGER NOT NULL, last_chunk INTEGER NOT NULL, records INTEGER NOT NULL,"
    " attempts INTEGER NOT NULL DEFAULT 1, requeued INTEGER NOT NULL DEFAULT 0,"
    " payload BLOB NOT NULL);"
    "CREATE INDEX dead_letters_sink ON dead_letters(sink, requeued, id);",
    /* v3: search. grams = the chunk's trigram filter (buffer/chunk.h), NULL for small chunks. */
    "ALTER TABLE chunks ADD COLUMN grams BLOB;",
    /* v4: Kubernetes metadata (agent/kube/): what the agent knew of its node's pods and of the
     * namespaces, so a restart while the API server is unreachable still enriches. */
    ("CREATE TABLE kube_objects(kind TEXT NOT NULL, key TEXT NOT NULL, facts TEXT NOT NULL,"
     " updated INTEGER NOT NULL, PRIMARY KEY(kind, key));"),
};
#define SCHEMA_VERSION ((int)(sizeof k_migrations / sizeof k_migrations[0]))

__attribute__((format(printf, 3, 4))) static void set_err(char *err, size_t errlen,
                                                            const char *fmt, ...) {
  if (!err || !errlen) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, errlen, fmt, ap);
  va_end(ap);
}

static int mkdirs(const char *dir) {
  char tmp[4096];
  size_t n = strlen(dir);
  if (n == 0 || n >= sizeof tmp) return -1;
  memcpy(tmp, dir, n + 1);
  for (char *p = tmp + 1; *p; p++) {
    if (*p != '/') continue;
    *p = 0;
    if (mkdir(tmp, 0750) && errno != EEXIST) return -1;
    *p = '/';
  }
  if (mkdir(tmp, 0750) && errno != EEXIST) return -1;
  return 0;
}

/* Remembers whether a failure was a full disk before ROLLBACK resets SQLite's error code. */
static void note_full(struct sw_db *db) {
  int sys = sqlite3_system_errno(db->h);
  db->err_full = (sqlite3_extended_errcode(db->h) & 0xff) == SQLITE_FULL || sys == ENOSPC || sys == EDQUOT;
}

int sw__db_exec(struct sw_db *db, const char *sql) {
  char *msg = NULL;
  if (sqlite3_exec(db->h, sql, NULL, NULL, &msg) != SQLITE_OK) {
    note_full(db);
    snprintf(db->err, sizeof db->err, "%s", msg ? msg : sqlite3_errmsg(db->h));
    sqlite3_free(msg);
    return SW_EDB;
  }
  return SW_OK;
}

int sw__db_prepare(struct sw_db *db, sqlite3_stmt **st, const char *sql) {
  if (*st) {
    sqlite3_reset(*st);
    sqlite3_clear_bindings(*st);
    return SW_OK;
  }
  if (sqlite3_prepare_v3(db->h, sql, -1, SQLITE_PREPARE_PERSISTENT, st, NULL) != SQLITE_OK) {
    snprintf(db->err, sizeof db->err, "%s", sqlite3_errmsg(db->h));
    return SW_EDB;
  }
  return SW_OK;
}

int sw__db_fail(struct sw_db *db) {
  note_full(db);
  snprintf(db->err, sizeof db->err, "%s", sqlite3_errmsg(db->h));
  return SW_EDB;
}

static int get_version(struct sw_db *db, int *version) {
  sqlite3_stmt *st = NULL;
  *version = 0;
  if (sqlite3_prepare_v2(db->h, "SELECT value FROM meta WHERE key='schema_version'", -1, &st,
                         NULL) != SQLITE_OK) {
    /* No meta table: a new database. */
    return SW_OK;
  }
  if (sqlite3_step(st) == SQLITE_ROW) *version = atoi((const char *)sqlite3_column_text(st, 0));
  sqlite3_finalize(st);
  return SW_OK;
}

static int new_agent_id(char out[33]) {
  unsigned char r[16];
  if (getrandom(r, sizeof r, 0) != (ssize_t)sizeof r) return SW_EIO;
  for (int i = 0; i < 16; i++) snprintf(out + 2 * i, 3, "%02x", r[i]);
  return SW_OK;
}

static int migrate(struct sw_db *db) {
  int version, rc;
  if ((rc = get_version(db, &version))) return rc;
  if (version > SCHEMA_VERSION) {
    snprintf(db->err, sizeof db->err,
             "database schema version %d is newer than this spillway (%d); upgrade spillway",
             version, SCHEMA_VERSION);
    return SW_EDB;
  }
  if (version == SCHEMA_VERSION) return SW_OK;
  if ((rc = sw__db_exec(db, "BEGIN IMMEDIATE"))) return rc;
  for (int v = version; v < SCHEMA_VERSION; v++)
    if ((rc = sw__db_exec(db, k_migrations[v]))) goto fail;
  char sql[160], id[33];
  if (version == 0) {
    if ((rc = new_agent_id(id))) goto fail;
    snprintf(sql, sizeof sql, "INSERT INTO meta VALUES('agent_id','%s')", id);
    if ((rc = sw__db_exec(db, sql))) goto fail;
  }
  snprintf(sql, sizeof sql, "INSERT OR REPLACE INTO meta VALUES('schema_version','%d')",
           SCHEMA_VERSION);
  if ((rc = sw__db_exec(db, sql))) goto fail;
  return sw__db_exec(db, "COMMIT");
fail:
  sqlite3_exec(db->h, "ROLLBACK", NULL, NULL, NULL);
  return rc;
}

/* When the buffer was created (first open of an older buffer: that open), for what counts as
 * history (rotated before spillway ever ran) rather than backlog. Read-only: 0 if unknown. */
static void load_created(struct sw_db *db) {
  sqlite3_stmt *st = NULL;
  if (!db->readonly) {
    char sql[128];
    snprintf(sql, sizeof sql, "INSERT OR IGNORE INTO meta VALUES('created_ns','%lld')",
             (long long)sw_time_now_ns());
    if (sw__db_exec(db, sql)) return;
  }
  if (sqlite3_prepare_v2(db->h, "SELECT value FROM meta WHERE key='created_ns'", -1, &st, NULL) ==
          SQLITE_OK &&
      sqlite3_step(st) == SQLITE_ROW)
    db->created_ns = strtoll((const char *)sqlite3_column_text(st, 0), NULL, 10);
  sqlite3_finalize(st);
}

static int load_agent_id(struct sw_db *db) {
  sqlite3_stmt *st = NULL;
  int rc = SW_EDB;
  if (sqlite3_prepare_v2(db->h, "SELECT value FROM meta WHERE key='agent_id'", -1, &st, NULL) !=
      SQLITE_OK)
    return sw__db_fail(db);
  if (sqlite3_step(st) == SQLITE_ROW) {
    snprintf(db->agent_id, sizeof db->agent_id, "%s", (const char *)sqlite3_column_text(st, 0));
    rc = SW_OK;
  } else {
    snprintf(db->err, sizeof db->err, "database has no agent id");
  }
  sqlite3_finalize(st);
  return rc;
}

int sw_db_open(const char *data_dir, int flags, struct sw_db **out, char *err, size_t errlen) {
  *out = NULL;
  struct sw_db *db = calloc(1, sizeof *db);
  if (!db) return SW_ENOMEM;
  int rc = SW_EDB;
  db->readonly = (flags & SW_DB_READONLY) != 0;
  if (flags & SW_DB_FILE)
    snprintf(db->path, sizeof db->path, "%s", data_dir);
  else
    snprintf(db->path, sizeof db->path, "%s/spillway.db", data_dir);
  if (db->readonly) {
    if (access(db->path, R_OK) != 0) {
      set_err(err, errlen, "cannot open %s: %s", db->path, strerror(errno));
      rc = SW_ENOTFOUND;
      goto fail;
    }
  } else if (!(flags & SW_DB_FILE) && mkdirs(data_dir) != 0) {
    set_err(err, errlen, "cannot create data_dir %s: %s", data_dir, strerror(errno));
    rc = SW_EIO;
    goto fail;
  }
  int oflags = db->readonly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
  if (sqlite3_open_v2(db->path, &db->h, oflags | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
    set_err(err, errlen, "cannot open %s: %s", db->path, db->h ? sqlite3_errmsg(db->h) : "?");
    goto fail;
  }
  sqlite3_busy_timeout(db->h, 10000);
  sqlite3_extended_result_codes(db->h, 1);
  if (!db->readonly) {
    /* 16 KiB pages: fewer overflow pages per chunk blob than 4 KiB, while small B-tree updates
     * do not write a 64 KiB page to the WAL each. Must be set before the first table exists. */
    if (sw__db_exec(db, "PRAGMA page_size=16384; PRAGMA auto_vacuum=INCREMENTAL;"
                        "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
                        "PRAGMA wal_autocheckpoint=512; PRAGMA journal_size_limit=8388608; PRAGMA foreign_keys=OFF;"
                        "PRAGMA cache_size=-1024;"))
      goto fail_db;
    if (migrate(db)) goto fail_db;
  } else {
    if (sw__db_exec(db, "PRAGMA query_only=1")) goto fail_db;
    int version;
    get_version(db, &version);
    if (version == 0) {
      /* No tables at all: an agent is creating it right now (its schema commits in one
       * transaction). Tables but no schema version: something else's database. */
      int empty = 0;
      sqlite3_stmt *st = NULL;
      if (sqlite3_prepare_v2(db->h, "SELECT COUNT(*) FROM sqlite_master", -1, &st, NULL) ==
              SQLITE_OK &&
          sqlite3_step(st) == SQLITE_ROW)
        empty = sqlite3_column_int(st, 0) == 0;
      sqlite3_finalize(st);
      snprintf(db->err, sizeof db->err, "%s",
               empty ? "database is not initialised yet (is an agent starting?)"
                     : "not a spillway database (no schema)");
      rc = empty ? SW_EAGAIN : SW_ECORRUPT;
      goto fail_db;
    }
  }
  if (load_agent_id(db)) goto fail_db;
  load_created(db);
  *out = db;
  return SW_OK;
fail_db:
  set_err(err, errlen, "%s: %s", db->path, db->err);
  if (rc == SW_EDB && (strstr(db->err, "not a database") || strstr(db->err, "malformed")))
    rc = SW_ECORRUPT;
fail:
  sw_db_close(db);
  return rc;
}

void sw_db_close(struct sw_db *db) {
  if (!db) return;
  sqlite3_stmt **stmts[] = {&db->st_chunk, &db->st_file, &db->st_forget, &db->st_source,
                            &db->st_cursor_get, &db->st_cursor_set, &db->st_after,
                            &db->st_counter, &db->st_oldest, &db->st_span, &db->st_range,
                            &db->st_data};
  for (size_t i = 0; i < sizeof stmts / sizeof stmts[0]; i++) sqlite3_finalize(*stmts[i]);
  if (db->h) sqlite3_close(db->h);
  free(db);
}

const char *sw_db_agent_id(const struct sw_db *db) { return db->agent_id; }
int64_t sw_db_created_ns(const struct sw_db *db) { return db->created_ns; }
const char *sw_db_path(const struct sw_db *db) { return db->path; }
const char *sw_db_errmsg(const struct sw_db *db) { return db->err; }
int sw_db_err_full(const struct sw_db *db) { return db->err_full; }

int sw_db_load_files(struct sw_db *db, int (*cb)(void *, const struct sw_file_state *), void *arg) {
  sqlite3_stmt *st = NULL;
  if (sqlite3_prepare_v2(db->h,
                         "SELECT id, source, path, dev, ino, fp_hash, fp_len, offset, pending, "
                         "updated FROM files ORDER BY id",
                         -1, &st, NULL) != SQLITE_OK)
    return sw__db_fail(db);
  int rc = SW_OK, s;
  while ((s = sqlite3_step(st)) == SQLITE_ROW) {
    struct sw_file_state fs = {
        .id = sqlite3_column_int64(st, 0),
        .source = (const char *)sqlite3_column_text(st, 1),
        .path = (const char *)sqlite3_column_text(st, 2),
        .dev = (uint64_t)sqlite3_column_int64(st, 3),
        .ino = (uint64_t)sqlite3_column_int64(st, 4),
        .fp_hash = (uint64_t)sqlite3_column_int64(st, 5),
        .fp_len = (uint32_t)sqlite3_column_int(st, 6),
        .offset = (uint64_t)sqlite3_column_int64(st, 7),
        .pending = sqlite3_column_blob(st, 8),
        .pending_len = (size_t)sqlite3_column_bytes(st, 8),
        .updated_ns = sqlite3_column_int64(st, 9),
    };
    if ((rc = cb(arg, &fs))) break;
  }
  if (!rc && s != SQLITE_DONE) rc = sw__db_fail(db);
  sqlite3_finalize(st);
  return rc;
}

int sw_db_usage(struct sw_db *db, uint64_t *bytes, uint64_t *chunks) {
  sqlite3_stmt *st = NULL;
  if (sqlite3_prepare_v2(db->h, "SELECT COALESCE(SUM(stored_bytes),0), COUNT(*) FROM chunks", -1,
                         &st, NULL) != SQLITE_OK)
    return sw__db_fail(db);
  int rc = SW_OK;
  if (sqlite3_step(st) == SQLITE_ROW) {
    *bytes = (uint64_t)sqlite3_column_int64(st, 0);
    *chunks = (uint64_t)sqlite3_column_int64(st, 1);
  } else {
    rc = sw__db_fail(db);
  }
  sqlite3_finalize(st);
  return rc;
}

int sw_db_checkpoint(struct sw_db *db) {
  /* Never wait for a reader (a search may hold a snapshot for seconds, and shutdown has 5 s):
   * without a busy handler, TRUNCATE copies what no reader still needs and returns BUSY. */
  sqlite3_busy_timeout(db->h, 0);
  int log = 0, done = 0, rc = sqlite3_wal_checkpoint_v2(db->h, NULL, SQLITE_CHECKPOINT_TRUNCATE, &log, &done);
  sqlite3_busy_timeout(db->h, 10000);
  return rc == SQLITE_OK || rc == SQLITE_BUSY ? SW_OK : sw__db_fail(db);
}

int sw_db_max_chunk_id(struct sw_db *db, int64_t *id) {
  sqlite3_stmt *st = NULL;
  /* AUTOINCREMENT keeps ids growing even after every chunk was deleted: cursors rely on it. */
  if (sqlite3_prepare_v2(db->h, "SELECT COALESCE(MAX(seq),0) FROM sqlite_sequence WHERE name='chunks'",
                         -1, &st, NULL) != SQLITE_OK)
    return sw__db_fail(db);
  int rc = SW_OK;
  if (sqlite3_step(st) == SQLITE_ROW)
    *id = sqlite3_column_int64(st, 0);
  else
    rc = sw__db_fail(db);
  sqlite3_finalize(st);
  return rc;
}
