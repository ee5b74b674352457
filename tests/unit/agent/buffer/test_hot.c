/* The memory cache of committed chunks (ship from memory) and the sinks' chunk reader, on a
 * real database in a temporary directory. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent/buffer/buffer.h"
#include "agent/buffer/chunk.h"
#include "agent/buffer/hot.h"

static char dir[] = "/tmp/sw-test-hot-XXXXXX";

/* A real chunk of n records, raw and compressed. */
static void make_chunk(int n, struct sw_buf *raw, struct sw_buf *z) {
  struct sw_chunk_builder cb;
  sw_chunk_builder_init(&cb, 1 << 20);
  char line[64];
  for (int i = 0; i < n; i++) {
    int len = snprintf(line, sizeof line, "record %d of %d", i, n);
    assert_int_equal(sw_chunk_add(&cb, 1000 + i, 0, 0, line, (size_t)len), 0);
  }
  sw_buf_init(raw, SIZE_MAX);
  sw_buf_init(z, SIZE_MAX);
  assert_int_equal(sw_chunk_finish(&cb, raw), 0);
  assert_int_equal(sw_chunk_compress(NULL, 1, 0, raw->data, raw->len, z), 0);
  sw_chunk_builder_free(&cb);
}

static int64_t commit(struct sw_db *db, const struct sw_buf *z, uint32_t records, uint64_t raw_len) {
  int64_t id = 0;
  struct sw_commit_op op = {
      .kind = SW_COMMIT_CHUNK,
      .file = {.id = 1, .source = "src", .path = "/x.log", .dev = 1, .ino = 2, .offset = 10},
      .format = "text", .labels_json = "{}", .records = records, .raw_bytes = raw_len,
      .data = z->data, .data_len = z->len, .chunk_id = &id};
  struct sw_commit_result res;
  assert_int_equal(sw_db_commit(db, &op, 1, 0, 0, &res), 0);
  assert_true(id > 0);
  return id;
}

static void hit_then_miss(void **state) {
  (void)state;
  struct sw_db *db;
  char err[256];
  assert_int_equal(sw_db_open(dir, 0, &db, err, sizeof err), 0);
  struct sw_buf raw, z;
  make_chunk(50, &raw, &z);
  int64_t id = commit(db, &z, 50, raw.len);
  struct sw_buf copy;
  sw_buf_init(&copy, SIZE_MAX);
  assert_int_equal(sw_buf_append(&copy, raw.data, raw.len), 0);

  struct sw_hot *hot;
  assert_int_equal(sw_hot_new(1 << 20, &hot), 0);
  sw_hot_put(hot, id, &raw);
  assert_null(raw.data); /* taken over */
  struct sw_chunk_reader rd;
  sw_chunk_reader_init(&rd, hot);
  struct sw_chunk_row row = {.id = id};
  const char *p;
  size_t n;
  assert_int_equal(sw_chunk_reader_get(&rd, db, &row, &p, &n), 0);
  assert_int_equal(n, copy.len);
  assert_memory_equal(p, copy.data, n);
  /* Every sink has it: it leaves the cache, but the reader's view stays valid until its next
   * call (ASan would report a use after free here). */
  sw_hot_drop_upto(hot, id);
  assert_memory_equal(p, copy.data, n);
  uint64_t bytes, hits, misses;
  sw_hot_stats(hot, &bytes, &hits, &misses);
  assert_int_equal(bytes, 0);
  assert_int_equal(hits, 1);
  /* Now from the database, decompressed: the same bytes. */
  assert_int_equal(sw_chunk_reader_get(&rd, db, &row, &p, &n), 0);
  assert_int_equal(n, copy.len);
  assert_memory_equal(p, copy.data, n);
  sw_hot_stats(hot, &bytes, &hits, &misses);
  assert_int_equal(misses, 1);
  /* A chunk that is gone from both. */
  struct sw_chunk_row gone = {.id = id + 100};
  assert_int_equal(sw_chunk_reader_get(&rd, db, &gone, &p, &n), SW_ENOTFOUND);
  sw_chunk_reader_idle(&rd);
  sw_chunk_reader_free(&rd);
  sw_hot_free(hot);
  sw_buf_free(&copy);
  sw_buf_free(&z);
  sw_db_close(db);
}

static void bounded(void **state) {
  (void)state;
  struct sw_hot *hot;
  struct sw_buf raw[4], z[4];
  for (int i = 0; i < 4; i++) make_chunk(100, &raw[i], &z[i]);
  size_t one = raw[0].cap;
  assert_int_equal(sw_hot_new(2 * one + one / 2, &hot), 0); /* room for two */
  for (int i = 0; i < 3; i++) sw_hot_put(hot, 10 + i, &raw[i]);
  uint64_t bytes, hits, misses;
  sw_hot_stats(hot, &bytes, &hits, &misses);
  assert_int_equal(bytes, 2 * one);
  /* An id that is not newer than the newest is not taken (and the buffer stays the caller's). */
  sw_hot_put(hot, 12, &raw[3]);
  assert_non_null(raw[3].data);
  struct sw_chunk_reader rd;
  sw_chunk_reader_init(&rd, hot);
  const char *p;
  size_t n;
  struct sw_chunk_row newest = {.id = 12};
  assert_int_equal(sw_chunk_reader_get(&rd, NULL, &newest, &p, &n), 0);
  /* The oldest was evicted: a row that still carries its compressed data is decompressed. */
  struct sw_chunk_row oldest = {.id = 10, .data = z[0].data, .len = z[0].len};
  assert_int_equal(sw_chunk_reader_get(&rd, NULL, &oldest, &p, &n), 0);
  struct sw_chunk_iter it;
  uint64_t count;
  assert_int_equal(sw_chunk_iter_init(&it, p, n, &count), 0);
  assert_int_equal(count, 100);
  sw_hot_stats(hot, &bytes, &hits, &misses);
  assert_int_equal(hits, 1);
  assert_int_equal(misses, 1);
  sw_chunk_reader_free(&rd);
  sw_hot_free(hot);
  /* A cache of 0 bytes holds nothing. */
  assert_int_equal(sw_hot_new(0, &hot), 0);
  sw_hot_put(hot, 20, &raw[3]);
  sw_hot_stats(hot, &bytes, &hits, &misses);
  assert_int_equal(bytes, 0);
  sw_hot_free(hot);
  for (int i = 0; i < 4; i++) {
    sw_buf_free(&raw[i]);
    sw_buf_free(&z[i]);
  }
}

static int setup(void **state) {
  (void)state;
  return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state) {
  (void)state;
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  return system(cmd);
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(hit_then_miss), cmocka_unit_test(bounded)};
  return cmocka_run_group_tests(tests, setup, teardown);
}
