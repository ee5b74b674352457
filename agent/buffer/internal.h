/* internal.h - private to agent/buffer/ (the only code that knows the schema) */
#ifndef SW_BUFFER_INT_H
#define SW_BUFFER_INT_H

#include <sqlite3.h>

#include "buffer.h"

struct sw_db {
  sqlite3 *h;
  int readonly;
  char path[4096];
  char agent_id[40];
  int64_t created_ns; /* when this buffer was first created (meta 'created_ns'); 0 unknown */
  char err[512];
  int err_full; /* the last failure was a full disk (SQLITE_FULL, ENOSPC, EDQUOT) */
  sqlite3_stmt *st_chunk, *st_file, *st_forget, *st_source, *st_cursor_get, *st_cursor_set,
      *st_after, *st_counter, *st_oldest, *st_span, *st_range, *st_data;
};

int sw__db_exec(struct sw_db *db, const char *sql);
int sw__db_prepare(struct sw_db *db, sqlite3_stmt **st, const char *sql);
int sw__db_fail(struct sw_db *db);

/* Columns sw__db_chunk_row reads, in its order. */
/* A chunk row without its data (NULL): readers take it from the memory cache or fetch it with
 * sw__db_chunk_blob only when they need it (hot.c). */
#define SW__DB_CHUNK_COLS "id, file_id, source, labels, ts_min, ts_max, records, raw_bytes, NULL, format"
void sw__db_chunk_row(sqlite3_stmt *st, struct sw_chunk_row *row);
/* Chunk id's compressed data as SQLite holds it, valid until sw__db_chunk_blob_done (which
 * must follow every call). SW_ENOTFOUND if it is gone. */
int sw__db_chunk_blob(struct sw_db *db, int64_t id, const void **p, size_t *n);
void sw__db_chunk_blob_done(struct sw_db *db);

#endif
