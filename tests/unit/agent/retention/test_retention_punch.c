/* test_retention_punch.c - compression in pieces (retention_punch.c) on real files: under
 * pressure an archive is made of several checksummed frames and the source goes; an
 * in-progress archive left by a crash (a torn last frame, a source with a released range) is
 * planned as `resume`, never dropped, and finished to exactly the source's bytes; one whose
 * source is gone or was truncated is kept as it is.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <linux/falloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zstd.h>

#include "agent/config/config.h"
#include "agent/retention/retention.h"
#include "agent/retention/internal.h"

#define SEC 1000000000LL
#define TEXT_LEN (3u << 20)

static char dir[64];
static char *text; /* TEXT_LEN bytes of numbered lines */

static void path_of(char *out, size_t n, const char *name) { snprintf(out, n, "%s/%s", dir, name); }

static void put_bytes(const char *name, const char *p, size_t n) {
  char path[256];
  path_of(path, sizeof path, name);
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  assert_int_equal(fwrite(p, 1, n, f), n);
  fclose(f);
}

/* Appends text[from, to) to name as frames of at most 256 KiB; with torn, one more frame of the
 * next bytes missing its last 5 bytes (a crash while writing it). */
static void put_frames(const char *name, size_t from, size_t to, int torn) {
  char path[256];
  size_t cap = ZSTD_compressBound(256 << 10);
  char *buf = malloc(cap);
  path_of(path, sizeof path, name);
  FILE *f = fopen(path, "ab");
  assert_non_null(f);
  for (size_t off = from; off < to || torn; off += 256 << 10) {
    size_t n = to - off < (256u << 10) ? to - off : 256u << 10;
    if (off >= to) n = 1000; /* the torn one */
    size_t z = ZSTD_compress(buf, cap, text + off, n, 3);
    assert_false(ZSTD_isError(z));
    fwrite(buf, 1, off >= to ? z - 5 : z, f);
    if (off >= to) break;
  }
  fclose(f);
  free(buf);
}

/* The decompressed content of name equals text[0, n), in at least min_frames frames. */
static void expect_archive(const char *name, size_t n, size_t min_frames) {
  char path[256];
  path_of(path, sizeof path, name);
  FILE *f = fopen(path, "rb");
  assert_non_null(f);
  fseek(f, 0, SEEK_END);
  size_t zn = (size_t)ftell(f);
  fseek(f, 0, SEEK_SET);
  char *z = malloc(zn), *out = malloc(n + 1);
  assert_int_equal(fread(z, 1, zn, f), zn);
  fclose(f);
  ZSTD_DCtx *d = ZSTD_createDCtx();
  ZSTD_inBuffer ib = {z, zn, 0};
  ZSTD_outBuffer ob = {out, n + 1, 0};
  size_t frames = 0;
  while (ib.pos < ib.size) {
    size_t r = ZSTD_decompressStream(d, &ob, &ib);
    assert_false(ZSTD_isError(r));
    frames += r == 0;
  }
  assert_int_equal(ob.pos, n);
  assert_memory_equal(out, text, n);
  assert_true(frames >= min_frames);
  ZSTD_freeDCtx(d);
  free(z);
  free(out);
}

static int present(const char *name) {
  char p[256];
  struct stat st;
  path_of(p, sizeof p, name);
  return stat(p, &st) == 0;
}

static uint64_t inode_of(const char *name) {
  char p[256];
  struct stat st;
  path_of(p, sizeof p, name);
  assert_int_equal(stat(p, &st), 0);
  return (uint64_t)st.st_ino;
}

static struct sw_config *config(void) {
  char text_[1024], name[128];
  snprintf(name, sizeof name, "%s/t.yaml", dir);
  snprintf(text_, sizeof text_,
           "data_dir: %s/data\nlog: {level: error}\n"
           "retention:\n  - {name: a, paths: [\"%s/app.log\"], rotate: {max_size: 1GiB, method: copytruncate},"
           " compress: {codec: zstd}}\n", dir, dir);
  struct sw_config *cfg = NULL;
  struct sw_conf_errors e = {0};
  int rc = sw_config_load_string(name, text_, strlen(text_), &cfg, &e);
  for (size_t i = 0; i < e.n; i++) print_message("config: %s\n", e.msgs[i]);
  assert_int_equal(rc, 0);
  sw_conf_errors_free(&e);
  return cfg;
}

/* Plans (printed into *printed with the directory as "D" when printed != NULL) and executes. */
static void run(enum sw_pressure p, char **printed, struct sw_retention_result *r) {
  struct sw_config *cfg = config();
  struct sw_retention_plan *plan = NULL;
  assert_int_equal(sw_retention_plan(cfg, (int64_t)time(NULL) * SEC, NULL, p, 0, &plan), 0);
  if (printed) {
    size_t len = 0;
    FILE *f = open_memstream(printed, &len);
    sw_retention_plan_print(plan, f);
    fclose(f);
    for (char *s; (s = strstr(*printed, dir));) {
      size_t dl = strlen(dir);
      s[0] = 'D';
      memmove(s + 1, s + dl, strlen(s + dl) + 1);
    }
  }
  memset(r, 0, sizeof *r);
  assert_int_equal(sw_retention_execute(plan, NULL, r), 0);
  sw_retention_plan_free(plan);
  sw_config_free(cfg);
}

static int setup(void **state) {
  (void)state;
  snprintf(dir, sizeof dir, "/tmp/sw_test_punch_XXXXXX");
  assert_non_null(mkdtemp(dir));
  text = malloc(TEXT_LEN);
  for (size_t off = 0, seq = 0; off < TEXT_LEN; seq++) {
    char line[80];
    int n = snprintf(line, sizeof line, "seq=%09zu GET /api/items?page=%zu status=200\n", seq, seq % 97);
    size_t k = TEXT_LEN - off < (size_t)n ? TEXT_LEN - off : (size_t)n;
    memcpy(text + off, line, k);
    off += k;
  }
  return 0;
}

static int teardown(void **state) {
  (void)state;
  char cmd[128];
  free(text);
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  return system(cmd);
}

/* Under pressure a copytruncate compression goes in pieces: several frames, source truncated. */
static void test_pieces_under_pressure(void **state) {
  (void)state;
  struct sw_retention_result r;
  put_bytes("app.log", text, TEXT_LEN);
  char *printed = NULL;
  run(SW_PRESSURE_SOFT, &printed, &r);
  assert_non_null(strstr(printed, "rotate D/app.log -> D/app.log.1.zst"));
  free(printed);
  assert_int_equal(r.rotations, 1);
  assert_int_equal(r.compressions, 1);
  assert_int_equal(r.compressed_in, TEXT_LEN);
  expect_archive("app.log.1.zst", TEXT_LEN, 3); /* 1 MiB pieces */
  char p[256];
  struct stat st;
  path_of(p, sizeof p, "app.log");
  assert_int_equal(stat(p, &st), 0);
  assert_int_equal(st.st_size, 0);
}

/* A crash left PART: complete frames for [0, K), a torn frame, the source released in
 * [4096, K). The plan resumes it (never drop-tmp) and the archive ends up exactly the source. */
static void test_resume_after_a_crash(void **state) {
  (void)state;
  const size_t k = 1u << 20;
  struct sw_retention_result r;
  char part[128], p[256];
  put_bytes("app.log", text, TEXT_LEN);
  snprintf(part, sizeof part, "app.log.1.zst" SW__RET_PART "%llu", (unsigned long long)inode_of("app.log"));
  put_frames(part, 0, k, 1);
  path_of(p, sizeof p, "app.log");
  int fd = open(p, O_RDWR);
  assert_true(fd >= 0);
  if (fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 4096, (off_t)(k - 4096))) { /* best effort */
  }
  close(fd);
  char *printed = NULL;
  run(SW_PRESSURE_NONE, &printed, &r);
  char want[256];
  snprintf(want, sizeof want, "resume D/%s -> D/app.log.1.zst", part);
  assert_non_null(strstr(printed, want));
  assert_null(strstr(printed, "drop-tmp"));
  free(printed);
  assert_int_equal(r.repairs, 1);
  assert_int_equal(r.compressed_in, TEXT_LEN - k); /* continued from the archive's length */
  assert_false(present(part));
  expect_archive("app.log.1.zst", TEXT_LEN, 5);
}

/* PART whose source is gone (unlinked before the rename) or was truncated and written again
 * (its head differs): finished as it is, the new live file untouched. */
static void test_resume_without_its_source(void **state) {
  (void)state;
  struct sw_retention_result r;
  char part[128];
  put_bytes("app.log", "a new file after the truncation\n", 32);
  snprintf(part, sizeof part, "app.log.1.zst" SW__RET_PART "%llu", (unsigned long long)inode_of("app.log"));
  put_frames(part, 0, 600000, 0);
  run(SW_PRESSURE_NONE, NULL, &r);
  assert_false(present(part));
  expect_archive("app.log.1.zst", 600000, 3);
  char p[256];
  struct stat st;
  path_of(p, sizeof p, "app.log");
  assert_int_equal(stat(p, &st), 0);
  assert_int_equal(st.st_size, 32);
  /* no file of that inode at all */
  snprintf(part, sizeof part, "app.log.2.zst" SW__RET_PART "999999999");
  put_frames(part, 0, 300000, 1);
  run(SW_PRESSURE_NONE, NULL, &r);
  assert_false(present(part));
  expect_archive("app.log.2.zst", 300000, 2);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_pieces_under_pressure, setup, teardown),
      cmocka_unit_test_setup_teardown(test_resume_after_a_crash, setup, teardown),
      cmocka_unit_test_setup_teardown(test_resume_without_its_source, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
