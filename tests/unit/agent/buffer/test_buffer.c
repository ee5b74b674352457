/* The SQLite buffer on a real database in a temporary directory. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "agent/buffer/buffer.h"
#include "agent/buffer/chunk.h"

static char dir[] = "/tmp/sw-test-buffer-XXXXXX";

static int collect_files(void *arg, const struct sw_file_state *st) {
  int *n = arg;
  assert_string_equal(st->source, "src");
  assert_int_equal(st->offset, 4096);
  assert_int_equal(st->pending_len, 3);
  assert_memory_equal(st->pending, "abc", 3);
  (*n)++;
  return 0;
}

static int count_rows(void *arg, const struct sw_chunk_row *row) {
  int64_t *ids = arg;
  ids[ids[0] + 1] = row->id;
  ids[0]++;
  return 0;
}

static struct sw_commit_op chunk_op(int64_t file_id, uint64_t off, const char *data) {
  struct sw_commit_op op = {
      .kind = SW_COMMIT_CHUNK,
      .file = {.id = file_id, .source = "src", .path = "/x.log", .dev = 1, .ino = 2,
               .offset = off, .pending = "abc", .pending_len = 3},
      .format = "text", .labels_json = "{}", .records = 2, .raw_bytes = 10, .in_bytes = 20,
      .data = data, .data_len = strlen(data)};
  return op;
}

static void commit_cursor_gc(void **state) {
  (void)state;
  struct sw_db *db;
  char err[256];
  assert_int_equal(sw_db_open(dir, 0, &db, err, sizeof err), 0);
  char agent[64];
  snprintf(agent, sizeof agent, "%s", sw_db_agent_id(db));
  assert_int_equal(strlen(agent), 32);
  struct sw_commit_op ops[2] = {chunk_op(7, 1000, "0123456789"), chunk_op(7, 4096, "abcdefghij")};
  struct sw_commit_result res;
  assert_int_equal(sw_db_commit(db, ops, 2, 0, 0, &res), 0);
  assert_int_equal(res.chunks, 2);
  int nfiles = 0;
  assert_int_equal(sw_db_load_files(db, collect_files, &nfiles), 0);
  assert_int_equal(nfiles, 1); /* the second op replaced the first's state */
  struct sw_sink_cursor c;
  assert_int_equal(sw_db_cursor_get(db, "out", "file", &c), 0);
  assert_int_equal(c.acked, 0); /* new sink: ships from before the first chunk */
  int64_t ids[8] = {0};
  assert_int_equal(sw_db_chunks_after(db, c.acked, 10, 1 << 20, count_rows, ids), 0);
  assert_int_equal(ids[0], 2);
  c.acked = ids[1];
  assert_int_equal(sw_db_cursor_set(db, "out", &c), 0);
  const char *sinks[] = {"out"};
  uint64_t fb, fc;
  assert_int_equal(sw_db_gc(db, sinks, 1, NULL, &fb, &fc), 0);
  assert_int_equal(fc, 1);
  assert_int_equal(fb, 10);
  sw_db_close(db);
  /* Reopen: same agent id, ids keep growing after every chunk is gone. */
  assert_int_equal(sw_db_open(dir, 0, &db, err, sizeof err), 0);
  assert_string_equal(sw_db_agent_id(db), agent);
  c.acked = ids[2];
  assert_int_equal(sw_db_cursor_set(db, "out", &c), 0);
  assert_int_equal(sw_db_gc(db, sinks, 1, NULL, &fb, &fc), 0);
  assert_int_equal(fc, 1);
  assert_int_equal(sw_db_commit(db, ops, 1, 0, 0, &res), 0);
  int64_t max;
  assert_int_equal(sw_db_max_chunk_id(db, &max), 0);
  assert_int_equal(max, 3);
  sw_db_close(db);
}

static void drop_oldest(void **state) {
  (void)state;
  struct sw_db *db;
  char err[256];
  assert_int_equal(sw_db_open(dir, 0, &db, err, sizeof err), 0);
  uint64_t used, chunks;
  assert_int_equal(sw_db_usage(db, &used, &chunks), 0);
  struct sw_commit_op op = chunk_op(9, 4096, "0123456789");
  struct sw_commit_result res;
  for (int i = 0; i < 5; i++) assert_int_equal(sw_db_commit(db, &op, 1, used + 25, 1, &res), 0);
  assert_int_equal(sw_db_usage(db, &used, &chunks), 0);
  assert_true(used <= 30);
  assert_true(res.dropped_chunks >= 1);
  sw_db_close(db);
}

static void readonly_missing(void **state) {
  (void)state;
  struct sw_db *db;
  char err[256];
  assert_int_equal(sw_db_open("/nonexistent/dir", SW_DB_READONLY, &db, err, sizeof err), SW_ENOTFOUND);
  char path[128];
  snprintf(path, sizeof path, "%s/junk", dir);
  assert_int_equal(mkdir(path, 0700), 0);
  char f[160];
  snprintf(f, sizeof f, "%s/spillway.db", path);
  FILE *fp = fopen(f, "w");
  fputs("this is not a database at all, just some text padding it out.........", fp);
  fclose(fp);
  int rc = sw_db_open(path, SW_DB_READONLY, &db, err, sizeof err);
  assert_true(rc == SW_ECORRUPT || rc == SW_EDB);
}

static void newer_schema_refused(void **state) {
  (void)state;
  char sub[128], path[160], err[512];
  snprintf(sub, sizeof sub, "%s/newer", dir);
  struct sw_db *db;
  assert_int_equal(sw_db_open(sub, 0, &db, err, sizeof err), 0);
  sw_db_close(db);
  snprintf(path, sizeof path, "%s/spillway.db", sub);
  sqlite3 *h;
  assert_int_equal(sqlite3_open(path, &h), SQLITE_OK);
  assert_int_equal(sqlite3_exec(h, "UPDATE meta SET value='999' WHERE key='schema_version'",
                                NULL, NULL, NULL), SQLITE_OK);
  sqlite3_close(h);
  assert_int_not_equal(sw_db_open(sub, 0, &db, err, sizeof err), 0);
  assert_non_null(strstr(err, "schema version 999 is newer than this spillway"));
}

static uint64_t chunks_left(struct sw_db *db) {
  uint64_t used, chunks;
  assert_int_equal(sw_db_usage(db, &used, &chunks), 0);
  return chunks;
}

/* buffer.keep_shipped: shipped chunks stay within the policy; unshipped ones always stay. */
static void gc_keeps_history(void **state) {
  (void)state;
  char sub[128], err[256];
  snprintf(sub, sizeof sub, "%s/history", dir);
  struct sw_db *db;
  assert_int_equal(sw_db_open(sub, 0, &db, err, sizeof err), 0);
  struct sw_commit_op op = chunk_op(3, 10, "0123456789"); /* 10 stored bytes each */
  struct sw_commit_result res;
  for (int i = 0; i < 10; i++) assert_int_equal(sw_db_commit(db, &op, 1, 0, 0, &res), 0);
  struct sw_sink_cursor c;
  assert_int_equal(sw_db_cursor_get(db, "out", "file", &c), 0);
  c.acked = 8; /* chunks 1..8 shipped, 9..10 not */
  assert_int_equal(sw_db_cursor_set(db, "out", &c), 0);
  const char *sinks[] = {"out"};
  uint64_t fb, fc;
  /* young history, no size limit: nothing goes */
  struct sw_gc_policy p = {.keep_age_ns = 3600 * 1000000000LL, .used = 100};
  assert_int_equal(sw_db_gc(db, sinks, 1, &p, &fb, &fc), 0);
  assert_int_equal(fc, 0);
  /* by size: 80 bytes of history, keep 35 -> the 5 oldest go (50 bytes), 3 stay */
  p.keep_bytes = 35;
  assert_int_equal(sw_db_gc(db, sinks, 1, &p, &fb, &fc), 0);
  assert_int_equal(fc, 5);
  assert_int_equal(fb, 50);
  assert_int_equal(chunks_left(db), 5);
  /* the buffer over 90 % of max_bytes: history is cut further, the backlog never */
  struct sw_gc_policy full = {.keep_age_ns = 3600 * 1000000000LL, .max_bytes = 50, .used = 50};
  assert_int_equal(sw_db_gc(db, sinks, 1, &full, &fb, &fc), 0);
  assert_int_equal(fc, 1); /* 50 -> 40 <= 45 */
  full.used = 40;
  full.max_bytes = 10;
  assert_int_equal(sw_db_gc(db, sinks, 1, &full, &fb, &fc), 0);
  assert_int_equal(fc, 2);              /* every shipped chunk, */
  assert_int_equal(chunks_left(db), 2); /* not the unshipped ones */
  /* by age: everything shipped is older than 1 ns */
  for (int i = 0; i < 3; i++) assert_int_equal(sw_db_commit(db, &op, 1, 0, 0, &res), 0);
  c.acked = 12;
  assert_int_equal(sw_db_cursor_set(db, "out", &c), 0);
  struct sw_gc_policy aged = {.keep_age_ns = 1, .used = 50};
  assert_int_equal(sw_db_gc(db, sinks, 1, &aged, &fb, &fc), 0);
  assert_int_equal(fc, 4);
  assert_int_equal(chunks_left(db), 1);
  /* a sink added later starts after what the others shipped, not at the history */
  struct sw_sink_cursor n;
  assert_int_equal(sw_db_cursor_get(db, "new", "loki", &n), 0);
  assert_int_equal(n.acked, 12);
  sw_db_close(db);
}

/* drop_oldest deleting shipped history loses nothing a sink needs: it is not counted as
 * dropped records; unshipped chunks it deletes are. */
static void drop_oldest_counts_only_unshipped(void **state) {
  (void)state;
  char d[] = "/tmp/sw-test-drop-XXXXXX";
  assert_non_null(mkdtemp(d));
  struct sw_db *db;
  char err[256];
  assert_int_equal(sw_db_open(d, 0, &db, err, sizeof err), 0);
  struct sw_commit_op op = chunk_op(9, 4096, "0123456789");
  struct sw_commit_result res;
  for (int i = 0; i < 4; i++) assert_int_equal(sw_db_commit(db, &op, 1, 0, 0, &res), 0);
  struct sw_sink_cursor c;
  assert_int_equal(sw_db_cursor_get(db, "out", "file", &c), 0);
  c.acked = 2; /* chunks 1, 2 shipped (history); 3, 4 not */
  assert_int_equal(sw_db_cursor_set(db, "out", &c), 0);
  uint64_t used, chunks;
  assert_int_equal(sw_db_usage(db, &used, &chunks), 0);
  assert_int_equal(chunks, 4);
  /* room for one more chunk only after the two oldest are gone: history alone */
  assert_int_equal(sw_db_commit(db, &op, 1, used - 10, 1, &res), 0);
  assert_int_equal(res.history_chunks, 2);
  assert_int_equal(res.dropped_chunks, 0);
  assert_int_equal(res.dropped_records, 0);
  /* now the oldest left is unshipped: counted */
  assert_int_equal(sw_db_usage(db, &used, &chunks), 0);
  assert_int_equal(sw_db_commit(db, &op, 1, used, 1, &res), 0);
  assert_int_equal(res.history_chunks, 0);
  assert_int_equal(res.dropped_chunks, 1);
  assert_int_equal(res.dropped_records, 2);
  sw_db_close(db);
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf %s", d);
  assert_int_equal(system(cmd), 0);
}

static int64_t query_int(const char *path, const char *sql) {
  sqlite3 *h = NULL;
  sqlite3_stmt *st = NULL;
  int64_t v = -1;
  assert_int_equal(sqlite3_open_v2(path, &h, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
  if (sqlite3_prepare_v2(h, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
    v = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  sqlite3_close(h);
  return v;
}

/* 40 poorly compressible chunks (overflow pages) of files 1 and 2; sink "out" acked 10. */
static void fill_for_salvage(const char *d, char agent[40]) {
  struct sw_db *db;
  char err[256];
  assert_int_equal(sw_db_open(d, 0, &db, err, sizeof err), 0);
  snprintf(agent, 40, "%s", sw_db_agent_id(db));
  static char raw[40000];
  struct sw_buf packed;
  sw_buf_init(&packed, SIZE_MAX);
  uint64_t x = 88172645463325252ull;
  for (int i = 0; i < 40; i++) {
    for (size_t k = 0; k < sizeof raw; k++) { x ^= x << 13; x ^= x >> 7; x ^= x << 17; raw[k] = (char)('a' + x % 26); }
    sw_buf_reset(&packed);
    assert_int_equal(sw_chunk_compress(NULL, 1, 0, raw, sizeof raw, &packed), 0);
    struct sw_commit_op op = chunk_op(1 + i % 2, (uint64_t)(i + 1) * 1000, "");
    op.file.path = i % 2 ? "/b.log" : "/a.log";
    op.data = packed.data;
    op.data_len = packed.len;
    struct sw_commit_result res;
    assert_int_equal(sw_db_commit(db, &op, 1, 0, 0, &res), 0);
  }
  sw_buf_free(&packed);
  struct sw_sink_cursor c;
  assert_int_equal(sw_db_cursor_get(db, "out", "file", &c), 0);
  c.acked = 10;
  assert_int_equal(sw_db_cursor_set(db, "out", &c), 0);
  assert_int_equal(sw_db_checkpoint(db), 0);
  sw_db_close(db);
}

/* Garbage over middle pages: moved aside, the readable rows kept (agent id, cursor, chunks with
 * their ids), the files of lost unshipped chunks read again, new ids far above the old. */
static void salvage_keeps_what_reads(void **state) {
  (void)state;
  char d[] = "/tmp/sw-test-salvage-XXXXXX", path[128], agent[40];
  assert_non_null(mkdtemp(d));
  snprintf(path, sizeof path, "%s/spillway.db", d);
  fill_for_salvage(d, agent);
  struct stat st;
  assert_int_equal(stat(path, &st), 0);
  long pages = (long)st.st_size / 16384;
  assert_true(pages > 20);
  FILE *f = fopen(path, "r+b");
  assert_non_null(f);
  assert_int_equal(fseek(f, pages / 2 * 16384, SEEK_SET), 0);
  for (int i = 0; i < 2 * 16384; i++) fputc((i * 131 + 7) & 0xff, f);
  fclose(f);
  struct sw_db *db = NULL;
  struct sw_db_salvage s;
  char err[512] = "";
  assert_int_equal(sw_db_open_checked(d, &db, &s, err, sizeof err), 0);
  assert_int_equal(s.damaged, 1);
  assert_int_equal(stat(s.moved_to, &st), 0);
  assert_true(s.chunks > 0 && s.chunks < 40);
  assert_int_equal(s.sinks, 1);
  assert_int_equal(s.files, 2);
  assert_true(s.reread_files >= 1);
  assert_int_equal(s.agent_id_kept, 1);
  assert_string_equal(sw_db_agent_id(db), agent);
  int64_t maxid = 0;
  assert_int_equal(sw_db_max_chunk_id(db, &maxid), 0);
  assert_true(maxid >= ((int64_t)1 << 32));
  sw_db_close(db);
  assert_int_equal(query_int(path, "SELECT acked FROM sinks WHERE name='out'"), 10);
  assert_int_equal(query_int(path, "SELECT value FROM counters WHERE name='buffer_damaged'"), 1);
  assert_int_equal(query_int(path, "SELECT COUNT(*) FROM files WHERE offset=0"), (int64_t)s.reread_files);
  /* Healthy now: a second start changes nothing. */
  assert_int_equal(sw_db_open_checked(d, &db, &s, err, sizeof err), 0);
  assert_int_equal(s.damaged, 0);
  sw_db_close(db);
  /* A crash between the last two renames: the start finishes the salvage. */
  char tmp[160];
  snprintf(tmp, sizeof tmp, "%s.salvage", path);
  assert_int_equal(rename(path, tmp), 0);
  assert_int_equal(sw_db_open_checked(d, &db, &s, err, sizeof err), 0);
  assert_int_equal(s.damaged, 0);
  assert_string_equal(sw_db_agent_id(db), agent);
  sw_db_close(db);
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf %s", d);
  assert_int_equal(system(cmd), 0);
}

int main(void) {
  if (!mkdtemp(dir)) return 1;
  const struct CMUnitTest tests[] = {cmocka_unit_test(commit_cursor_gc), cmocka_unit_test(drop_oldest),
                                     cmocka_unit_test(readonly_missing),
                                     cmocka_unit_test(newer_schema_refused),
                                     cmocka_unit_test(gc_keeps_history),
                                     cmocka_unit_test(drop_oldest_counts_only_unshipped),
                                     cmocka_unit_test(salvage_keeps_what_reads)};
  int rc = cmocka_run_group_tests(tests, NULL, NULL);
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  if (system(cmd)) rc = rc ? rc : 1;
  return rc;
}
