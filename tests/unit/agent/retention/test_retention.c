/* test_retention.c - the retention planner and executor on real files in a temporary directory:
 * rotation triggers and naming, keep rules (newest kept first), delay_compress, recovery of
 * every half-done step, protection of files a source still reads, disk-pressure order, the
 * frame walker, and that planning changes no byte and no timestamp.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#include "agent/config/config.h"
#include "agent/retention/retention.h"
#include "agent/retention/internal.h"
#include "agent/tail/tfile.h"

#define SEC 1000000000LL

static char dir[64];
static int64_t now_shift_s; /* plans are made this far in the future */

static void path_of(char *out, size_t n, const char *name) { snprintf(out, n, "%s/%s", dir, name); }

/* age_s may be negative: a time in the future. */
static void put(const char *name, const char *text, int64_t age_s) {
  char p[256];
  path_of(p, sizeof p, name);
  FILE *f = fopen(p, "wb");
  assert_non_null(f);
  fputs(text, f);
  fclose(f);
  if (age_s) {
    struct timespec ts[2];
    clock_gettime(CLOCK_REALTIME, &ts[0]);
    ts[0].tv_sec -= age_s;
    ts[1] = ts[0];
    assert_int_equal(utimensat(AT_FDCWD, p, ts, 0), 0);
  }
}

static void put_size(const char *name, size_t n, int64_t age_s) {
  char *s = malloc(n + 1);
  for (size_t i = 0; i < n; i++) s[i] = i % 50 == 49 ? '\n' : (char)('a' + i % 26);
  s[n] = '\0';
  put(name, s, age_s);
  free(s);
}

/* A .zst of text: whole, or with its last `cut` bytes missing. */
static void put_zst(const char *name, const char *text, size_t cut) {
  size_t cap = ZSTD_compressBound(strlen(text));
  char *buf = malloc(cap);
  size_t n = ZSTD_compress(buf, cap, text, strlen(text), 3);
  assert_false(ZSTD_isError(n));
  char p[256];
  path_of(p, sizeof p, name);
  FILE *f = fopen(p, "wb");
  fwrite(buf, 1, n, f);
  fclose(f);
  if (cut) assert_int_equal(truncate(p, (off_t)(n - cut)), 0);
  free(buf);
}

static int present(const char *name) {
  char p[256];
  struct stat st;
  path_of(p, sizeof p, name);
  return stat(p, &st) == 0;
}

static struct sw_config *config(const char *retention_yaml, const char *extra) {
  char text[4096], name[128];
  snprintf(name, sizeof name, "%s/t.yaml", dir);
  snprintf(text, sizeof text, "data_dir: %s/data\nlog: {level: error}\n%s\nretention:\n%s", dir, extra ? extra : "",
           retention_yaml);
  struct sw_config *cfg = NULL;
  struct sw_conf_errors e = {0};
  int rc = sw_config_load_string(name, text, strlen(text), &cfg, &e);
  for (size_t i = 0; i < e.n; i++) print_message("config: %s\n", e.msgs[i]);
  assert_int_equal(rc, 0);
  sw_conf_errors_free(&e);
  return cfg;
}

/* The plan as printed, with the directory replaced by "D". */
static char *plan_text(const struct sw_config *cfg, const struct sw_db_view *v, enum sw_pressure p, uint64_t need,
                       struct sw_retention_plan **keep) {
  struct sw_retention_plan *plan = NULL;
  assert_int_equal(sw_retention_plan(cfg, ((int64_t)time(NULL) + now_shift_s) * SEC, v, p, need, &plan), 0);
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  sw_retention_plan_print(plan, f);
  fclose(f);
  for (char *s; (s = strstr(buf, dir));) { /* "D" + the rest */
    size_t dl = strlen(dir);
    s[0] = 'D';
    memmove(s + 1, s + dl, strlen(s + dl) + 1);
  }
  if (keep) *keep = plan;
  else sw_retention_plan_free(plan);
  return buf;
}

static void expect_plan(const char *got, const char *want) {
  if (strcmp(got, want)) print_message("---- got:\n%s---- wanted:\n%s", got, want);
  assert_string_equal(got, want);
}

static int setup(void **state) {
  (void)state;
  now_shift_s = 0;
  snprintf(dir, sizeof dir, "/tmp/sw_test_ret_XXXXXX");
  assert_non_null(mkdtemp(dir));
  return 0;
}

static int teardown(void **state) {
  (void)state;
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  return system(cmd);
}

/* ---- rotation and naming ---- */

static void test_size_rotation_shifts_highest_first(void **state) {
  (void)state;
  char y[512];
  snprintf(y, sizeof y, "  - {name: a, paths: [\"%s/*.log\"], rotate: {max_size: 100}, keep: {count: 5}}\n", dir);
  struct sw_config *cfg = config(y, NULL);
  put_size("app.log", 150, 0);
  put_size("small.log", 50, 0);
  put_zst("app.log.1.zst", "one\n", 0);
  put_zst("app.log.2.zst", "two\n", 0);
  put_size("app.log.01", 10, 0); /* not an archive name: left alone */
  char *p = plan_text(cfg, NULL, SW_PRESSURE_NONE, 0, NULL);
  expect_plan(p, "rename D/app.log.2.zst -> D/app.log.3.zst bytes=13 frees=0 reason=shift\n"
                 "rename D/app.log.1.zst -> D/app.log.2.zst bytes=13 frees=0 reason=shift\n"
                 "rotate D/app.log -> D/app.log.1 bytes=150 frees=0 method=rename reason=size\n"
                 "compress D/app.log.1 -> D/app.log.1.zst bytes=150 frees=0..150 reason=rotated\n");
  free(p);
  sw_config_free(cfg);
}

static void test_execute_matches_plan(void **state) {
  (void)state;
  char y[512];
  snprintf(y, sizeof y, "  - {name: a, paths: [\"%s/*.log\"], rotate: {max_size: 100}, keep: {count: 2}}\n", dir);
  struct sw_config *cfg = config(y, NULL);
  put_size("app.log", 150, 5);
  put_zst("app.log.1.zst", "one\n", 0);
  put_zst("app.log.2.zst", "two\n", 0);
  struct sw_retention_plan *plan;
  char *p = plan_text(cfg, NULL, SW_PRESSURE_NONE, 0, &plan);
  expect_plan(p, "delete D/app.log.2.zst bytes=13 frees=13 reason=count\n"
                 "rename D/app.log.1.zst -> D/app.log.2.zst bytes=13 frees=0 reason=shift\n"
                 "rotate D/app.log -> D/app.log.1 bytes=150 frees=0 method=rename reason=size\n"
                 "compress D/app.log.1 -> D/app.log.1.zst bytes=150 frees=0..150 reason=rotated\n");
  struct sw_retention_result r = {0};
  assert_int_equal(sw_retention_execute(plan, NULL, &r), 0);
  assert_true(present("app.log.1.zst") && present("app.log.2.zst"));
  assert_false(present("app.log") || present("app.log.1") || present("app.log.3.zst"));
  assert_int_equal(r.rotations, 1);
  assert_int_equal(r.compressions, 1);
  assert_int_equal(r.deletions, 1);
  assert_int_equal(r.errors, 0);
  /* the new archive holds the old live file, verified by the same code recovery uses */
  char z[256];
  path_of(z, sizeof z, "app.log.1.zst");
  int zfd = open(z, O_RDONLY);
  uint64_t good;
  struct stat st;
  fstat(zfd, &st);
  assert_int_equal(sw__zst_walk(zfd, (uint64_t)st.st_size, &good), 0);
  assert_int_equal(good, (uint64_t)st.st_size);
  close(zfd);
  sw_retention_plan_free(plan);
  free(p);
  /* nothing left to do */
  p = plan_text(cfg, NULL, SW_PRESSURE_NONE, 0, NULL);
  expect_plan(p, "");
  free(p);
  sw_config_free(cfg);
}

static void test_age_rotation_and_keep_rules(void **state) {
  (void)state;
  char y[512];
  snprintf(y, sizeof y,
           "  - {name: a, paths: [\"%s/*.log\"], rotate: {max_age: 2h30m}, compress: {codec: none},"
           " keep: {count: 10, max_age: 2d, max_total_bytes: 250}}\n", dir);
  struct sw_config *cfg = config(y, NULL);
  /* The plan is made 3 h from now: files born now are 3 h old then. */
  now_shift_s = 3 * 3600;
  put_size("app.log", 10, 0);           /* born now, newest archive older: 3 h of content, due */
  put_size("app.log.1", 100, 2 * 3600);
  put_size("app.log.2", 100, 5 * 3600);
  put_size("app.log.3", 100, 6 * 3600); /* pushes the total past 250: deleted */
  put_size("app.log.4", 10, 3 * 86400); /* too old anyway */
  put_size("new.log", 10, 0);
  put_size("new.log.1", 10, -3600);     /* last rotated 2 h before the plan: not due */
  char *p = plan_text(cfg, NULL, SW_PRESSURE_NONE, 0, NULL);
  expect_plan(p, "delete D/app.log.3 bytes=100 frees=100 reason=max-total-bytes\n"
                 "delete D/app.log.4 bytes=10 frees=10 reason=max-age\n"
                 "rename D/app.log.2 -> D/app.log.3 bytes=100 frees=0 reason=shift\n"
                 "rename D/app.log.1 -> D/app.log.2 bytes=100 frees=0 reason=shift\n"
                 "rotate D/app.log -> D/app.log.1 bytes=10 frees=0 method=rename reason=age\n");
  free(p);
  sw_config_free(cfg);
}

static void test_delay_compress_and_copytruncate(void **state) {
  (void)state;
  char y[768];
  snprintf(y, sizeof y,
           "  - {name: a, paths: [\"%s/a.log\"], rotate: {max_size: 1}, compress: {delay_compress: true}}\n"
           "  - {name: b, paths: [\"%s/b.log\"], rotate: {max_size: 1, method: copytruncate}}\n"
           "  - {name: c, paths: [\"%s/c.log\"], rotate: {max_size: 1, method: copytruncate},"
           " compress: {delay_compress: true}}\n", dir, dir, dir);
  struct sw_config *cfg = config(y, NULL);
  put("a.log", "x\n", 0);
  put("a.log.1", "old\n", 0);
  put("b.log", "y\n", 0);
  put("c.log", "z\n", 0);
  put("c.log.1", "old\n", 0);
  char *p = plan_text(cfg, NULL, SW_PRESSURE_NONE, 0, NULL);
  expect_plan(p, "rename D/a.log.1 -> D/a.log.2 bytes=4 frees=0 reason=shift\n"
                 "rotate D/a.log -> D/a.log.1 bytes=2 frees=0 method=rename reason=size\n"
                 "compress D/a.log.2 -> D/a.log.2.zst bytes=4 frees=0..4 reason=archive\n"
                 "rotate D/b.log -> D/b.log.1.zst bytes=2 frees=0..2 method=copytruncate reason=size\n"
                 "rename D/c.log.1 -> D/c.log.2 bytes=4 frees=0 reason=shift\n"
                 "rotate D/c.log -> D/c.log.1 bytes=2 frees=0 method=copytruncate reason=size\n"
                 "compress D/c.log.2 -> D/c.log.2.zst bytes=4 frees=0..4 reason=archive\n");
  free(p);
  /* under pressure, delay_compress is ignored and smaller files wait for rotate_min_size */
  sw_config_free(cfg);
  char extra[256];
  snprintf(extra, sizeof extra, "disk_pressure: {path: %s, rotate_min_size: 1}", dir);
  cfg = config(y, extra);
  p = plan_text(cfg, NULL, SW_PRESSURE_SOFT, 0, NULL);
  assert_non_null(strstr(p, "compress D/a.log.1 -> D/a.log.1.zst bytes=2 frees=0..2 reason=rotated\n"));
  assert_non_null(strstr(p, "rotate D/c.log -> D/c.log.1.zst bytes=2 frees=0..2 method=copytruncate"));
  free(p);
  sw_config_free(cfg);
}

/* ---- recovery ---- */

static int cmp_lines(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Sorted lines: recovery actions of one family come in directory order. */
static char *sorted(char *s) {
  char *lines[64];
  size_t n = 0;
  for (char *tok = strtok(s, "\n"); tok && n < 64; tok = strtok(NULL, "\n")) lines[n++] = tok;
  qsort(lines, n, sizeof *lines, cmp_lines);
  size_t len = 0;
  for (size_t i = 0; i < n; i++) len += strlen(lines[i]) + 1;
  char *out = calloc(len + 1, 1);
  for (size_t i = 0; i < n; i++) {
    strcat(out, lines[i]);
    strcat(out, "\n");
  }
  return out;
}

static void test_recovery(void **state) {
  (void)state;
  char y[512];
  snprintf(y, sizeof y, "  - {name: a, paths: [\"%s/*.log\"]}\n", dir);
  struct sw_config *cfg = config(y, NULL);
  const char *text = "the archived text\n";
  put("app.log", "live\n", 0);
  put_zst("app.log.1.zst", "first frame\n", 0);
  char z1[256];
  path_of(z1, sizeof z1, "app.log.1.zst");
  struct stat st;
  stat(z1, &st);
  uint64_t whole = (uint64_t)st.st_size;
  { /* a second frame cut short, as a crash while appending the copytruncate tail leaves it */
    size_t cap = ZSTD_compressBound(64);
    char *buf = malloc(cap);
    size_t n = ZSTD_compress(buf, cap, "tail tail tail tail\n", 20, 3);
    FILE *f = fopen(z1, "ab");
    fwrite(buf, 1, n - 3, f);
    fclose(f);
    free(buf);
  }
  put("app.log.2", text, 0);
  put_zst("app.log.2.zst", text, 0);
  put("app.log.3", "other\n", 0);
  put_zst("app.log.3.zst", "something else\n", 0);
  put("app.log.4.zst.tmp-Ab12Cd", "partial", 0);
  char *raw = plan_text(cfg, NULL, SW_PRESSURE_NONE, 0, NULL);
  char *p = sorted(raw);
  /* the exact byte counts depend on zstd's output: check the shape, then the effect */
  assert_non_null(strstr(p, "cut D/app.log.1.zst bytes="));
  assert_non_null(strstr(p, "drop-tmp D/app.log.4.zst.tmp-Ab12Cd bytes=7 frees=7 reason=recovery\n"));
  assert_non_null(strstr(p, "finish D/app.log.2 -> D/app.log.2.zst bytes=18 frees=18 reason=recovery\n"));
  assert_non_null(strstr(p, "finish D/app.log.3 -> D/app.log.3.zst bytes=6 frees=6 reason=recovery\n"));
  free(raw);
  free(p);
  struct sw_retention_plan *plan;
  free(plan_text(cfg, NULL, SW_PRESSURE_NONE, 0, &plan));
  struct sw_retention_result r = {0};
  assert_int_equal(sw_retention_execute(plan, NULL, &r), 0);
  sw_retention_plan_free(plan);
  assert_int_equal(r.repairs, 4);
  stat(z1, &st);
  assert_int_equal((uint64_t)st.st_size, whole);   /* cut back to the whole frame */
  assert_false(present("app.log.2"));              /* verified: the plain copy went */
  assert_true(present("app.log.2.zst"));
  assert_true(present("app.log.3"));               /* mismatch: the archive went instead */
  assert_false(present("app.log.3.zst"));
  assert_false(present("app.log.4.zst.tmp-Ab12Cd"));
  sw_config_free(cfg);
}

/* ---- files a source still reads ---- */

static void fill_row(struct sw_db_file_row *row, const char *name, uint64_t offset, int64_t id) {
  char p[256];
  struct stat st;
  path_of(p, sizeof p, name);
  assert_int_equal(stat(p, &st), 0);
  char head[SW_FP_LEN];
  int fd = open(p, O_RDONLY);
  ssize_t n = read(fd, head, sizeof head);
  close(fd);
  *row = (struct sw_db_file_row){.id = id, .source = "app", .path = NULL, .dev = (uint64_t)st.st_dev,
                                 .ino = (uint64_t)st.st_ino, .fp_hash = sw_fp_hash(head, (size_t)n),
                                 .fp_len = (uint32_t)n, .offset = offset};
}

static void test_unread_files_are_kept(void **state) {
  (void)state;
  char y[1024];
  snprintf(y, sizeof y,
           "  - {name: a, paths: [\"%s/a.log\"], rotate: {max_size: 1}, keep: {count: 0}}\n"
           "  - {name: b, paths: [\"%s/b.log\"], rotate: {max_size: 1, method: copytruncate}}\n", dir, dir);
  struct sw_config *cfg = config(y, NULL);
  put_size("a.log", 100, 0);
  put_size("a.log.1", 100, 0);
  put_size("a.log.2", 100, 0);
  put_size("b.log", 100, 0);
  struct sw_db_file_row rows[4];
  fill_row(&rows[0], "a.log", 40, 1);   /* being read */
  fill_row(&rows[1], "a.log.1", 100, 2); /* read */
  fill_row(&rows[2], "a.log.2", 99, 3);  /* not quite */
  fill_row(&rows[3], "b.log", 100, 4);
  rows[3].has_pending = 1;               /* a record still open: its bytes are needed */
  struct sw_db_view v = {.files = rows, .nfiles = 4, .nsinks = 1, .min_acked = 0};
  char *p = plan_text(cfg, &v, SW_PRESSURE_NONE, 0, NULL);
  expect_plan(p, "delete D/a.log.1 bytes=100 frees=100 reason=count\n"
                 "defer D/a.log.2 bytes=100 offset=99 reason=being-read\n"
                 "defer D/b.log bytes=100 offset=100 reason=being-read\n"
                 "rename D/a.log.2 -> D/a.log.3 bytes=100 frees=0 reason=shift\n"
                 "rotate D/a.log -> D/a.log.1 bytes=100 frees=0 method=rename reason=size\n"
                 "defer D/a.log.1 bytes=100 offset=40 reason=being-read\n"
                 "defer D/a.log.2 bytes=100 offset=99 reason=being-read\n");
  free(p);
  /* a reused inode (other head) is not the file the row describes */
  rows[2].fp_hash ^= 1;
  p = plan_text(cfg, &v, SW_PRESSURE_NONE, 0, NULL);
  assert_non_null(strstr(p, "delete D/a.log.2 bytes=100 frees=100 reason=count\n"));
  free(p);
  sw_config_free(cfg);
  /* a file a source's glob matches but the buffer has not seen yet is unread */
  char extra[256];
  snprintf(extra, sizeof extra, "sources: [{name: app, type: file, paths: [\"%s/a.log*\"]}]", dir);
  cfg = config(y, extra);
  p = plan_text(cfg, NULL, SW_PRESSURE_NONE, 0, NULL);
  assert_non_null(strstr(p, "defer D/a.log.1 bytes=100 offset=0 reason=being-read\n"));
  assert_null(strstr(p, "delete"));
  free(p);
  sw_config_free(cfg);
}

/* ---- disk pressure ---- */

static void test_hard_pressure_order(void **state) {
  (void)state;
  char y[768];
  snprintf(y, sizeof y,
           "  - {name: a, paths: [\"%s/a.log\"], keep: {count: 100}}\n"
           "  - {name: b, paths: [\"%s/b.log\"], keep: {count: 100}}\n", dir, dir);
  char extra2[512];
  snprintf(extra2, sizeof extra2, "sources: [{name: app, type: file, paths: [\"%s/b.log\"]}]\n"
                                "sinks: [{name: s, type: file, path: %s/out}]\n"
                                "disk_pressure: {path: %s}", dir, dir, dir);
  struct sw_config *cfg = config(y, extra2);
  put_size("a.log.1.zst", 100, 1 * 3600); /* not tailed: nothing to ship */
  put_size("a.log.2.zst", 100, 9 * 3600);
  put_size("b.log.1.zst", 100, 2 * 3600); /* tailed family, compressed after the oldest unacked chunk */
  put_size("b.log.2.zst", 100, 8 * 3600);
  /* b's archives' ctime is now: later than the oldest unacknowledged chunk -> unshipped */
  struct sw_db_view v = {.nsinks = 1, .min_acked = 5, .oldest_unacked_ns = ((int64_t)time(NULL) - 60) * SEC};
  char *p = plan_text(cfg, &v, SW_PRESSURE_HARD, 250, NULL);
  expect_plan(p, "delete D/a.log.2.zst bytes=100 frees=100 reason=pressure-shipped\n"
                 "delete D/a.log.1.zst bytes=100 frees=100 reason=pressure-shipped\n"
                 "delete D/b.log.2.zst bytes=100 frees=100 reason=pressure-unshipped\n");
  free(p);
  /* everything acknowledged: plain oldest-first */
  v.oldest_unacked_ns = 0;
  p = plan_text(cfg, &v, SW_PRESSURE_HARD, 150, NULL);
  expect_plan(p, "delete D/a.log.2.zst bytes=100 frees=100 reason=pressure-shipped\n"
                 "delete D/b.log.2.zst bytes=100 frees=100 reason=pressure-shipped\n");
  free(p);
  sw_config_free(cfg);
}

static void test_pressure_level(void **state) {
  (void)state;
  char extra[256];
  snprintf(extra, sizeof extra, "disk_pressure: {path: %s, soft_percent: 50, hard_percent: 80}", dir);
  char y[256];
  snprintf(y, sizeof y, "  - {name: a, paths: [\"%s/a.log\"]}\n", dir);
  struct sw_config *cfg = config(y, extra);
  uint64_t need;
  struct sw_disk_usage u = {.used = 40, .avail = 60, .percent = 40};
  assert_int_equal(sw_pressure_level(cfg, &u, &need), SW_PRESSURE_NONE);
  u = (struct sw_disk_usage){.used = 600, .avail = 400, .percent = 60};
  assert_int_equal(sw_pressure_level(cfg, &u, &need), SW_PRESSURE_SOFT);
  assert_int_equal(need, 0);
  u = (struct sw_disk_usage){.used = 900, .avail = 100, .percent = 90};
  assert_int_equal(sw_pressure_level(cfg, &u, &need), SW_PRESSURE_HARD);
  assert_int_equal(need, 251); /* relief aims below the midpoint, 65%: 649 of 1000 */
  sw_config_free(cfg);
}

/* ---- a plan changes nothing ---- */

static void snapshot(struct stat *out, const char *const *names, size_t n) {
  for (size_t i = 0; i < n; i++) {
    char p[256];
    path_of(p, sizeof p, names[i]);
    assert_int_equal(lstat(p, &out[i]), 0);
  }
}

static void test_planning_touches_nothing(void **state) {
  (void)state;
  char y[512];
  snprintf(y, sizeof y, "  - {name: a, paths: [\"%s/*.log\"], rotate: {max_size: 1}, keep: {count: 1}}\n", dir);
  struct sw_config *cfg = config(y, NULL);
  put_size("app.log", 300, 100);
  put_size("app.log.1", 300, 200);
  put_size("app.log.2", 300, 300);
  put("app.log.3", "x", 400);
  put("app.log.3.zst", "not zstd", 400);
  put_zst("app.log.1.zst", "a", 2);
  const char *names[] = {"app.log", "app.log.1", "app.log.2", "app.log.3", "app.log.3.zst", "app.log.1.zst", "."};
  struct stat before[7], after[7];
  snapshot(before, names, 7);
  struct sw_db_file_row rows[1];
  fill_row(&rows[0], "app.log.2", 1, 1);
  struct sw_db_view v = {.files = rows, .nfiles = 1};
  snapshot(before, names, 7); /* fill_row read app.log.2: its atime moved before the snapshot */
  for (int k = 0; k < 3; k++) free(plan_text(cfg, &v, (enum sw_pressure)k, 1000, NULL));
  snapshot(after, names, 7);
  for (size_t i = 0; i < 7; i++) {
    assert_int_equal(before[i].st_size, after[i].st_size);
    assert_int_equal(before[i].st_ino, after[i].st_ino);
    assert_memory_equal(&before[i].st_atim, &after[i].st_atim, sizeof(struct timespec));
    assert_memory_equal(&before[i].st_mtim, &after[i].st_mtim, sizeof(struct timespec));
    assert_memory_equal(&before[i].st_ctim, &after[i].st_ctim, sizeof(struct timespec));
  }
  sw_config_free(cfg);
}

static void test_zst_walk(void **state) {
  (void)state;
  put_zst("w.zst", "hello hello hello\n", 0);
  char p[256];
  path_of(p, sizeof p, "w.zst");
  int fd = open(p, O_RDONLY);
  struct stat st;
  fstat(fd, &st);
  uint64_t good;
  assert_int_equal(sw__zst_walk(fd, (uint64_t)st.st_size, &good), 0);
  assert_int_equal(good, (uint64_t)st.st_size);
  for (off_t cut = 1; cut < st.st_size; cut++) { /* any prefix: not whole */
    assert_int_equal(sw__zst_walk(fd, (uint64_t)(st.st_size - cut), &good) == 0 && good == (uint64_t)(st.st_size - cut), 0);
  }
  close(fd);
  put("n.zst", "definitely not zstd", 0);
  path_of(p, sizeof p, "n.zst");
  fd = open(p, O_RDONLY);
  assert_int_equal(sw__zst_walk(fd, 19, &good), SW_ECORRUPT);
  close(fd);
}

static void test_config_errors(void **state) {
  (void)state;
  struct {
    const char *text, *want;
  } cases[] = {
      {"retention: [{name: a, paths: [/x/*.log], rotate: {method: copytruncate, postrotate_signal: {pid_file: /p}}}]\n",
       "/t.yaml: retention[0].rotate.postrotate_signal: only for method rename (copytruncate keeps the writer's file)"},
      {"retention: [{name: a, paths: [/x], rotate: {postrotate_signal: {signal: USR1}}}]\n",
       "/t.yaml: retention[0].rotate.postrotate_signal.pid_file: required"},
      {"retention: [{name: a, paths: [/x]}, {name: a, paths: [/y]}]\n",
       "/t.yaml: retention[1].name: duplicate retention name \"a\""},
      {"retention: [{name: a, paths: [/x], compress: {level: 20}}]\n", "/t.yaml: retention[0].compress.level: must be at most 19"},
      {"retention: [{name: a, paths: [/x], rotate: {methd: rename}}]\n",
       "/t.yaml: retention[0].rotate.methd: unknown key (did you mean \"method\"?)"},
      {"disk_pressure: {soft_percent: 90, hard_percent: 80}\n", "/t.yaml: disk_pressure.path: required"},
      {"disk_pressure: {path: /x, soft_percent: 90, hard_percent: 80}\n",
       "/t.yaml: disk_pressure.hard_percent: must be above soft_percent (90)"},
      {"sources: [{name: f, type: file, paths: [/x], truncate_shipped: 1GiB}]\n",
       "/t.yaml: sources[0].truncate_shipped: key \"truncate_shipped\" is not valid for source type file"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    struct sw_config *cfg = NULL;
    struct sw_conf_errors e = {0};
    int rc = sw_config_load_string("/t.yaml", cases[i].text, strlen(cases[i].text), &cfg, &e);
    if (rc != SW_ECONFIG || e.n < 1 || strcmp(e.msgs[0], cases[i].want)) {
      print_message("case %zu: rc=%d\n", i, rc);
      for (size_t k = 0; k < e.n; k++) print_message("  got: %s\n", e.msgs[k]);
      print_message("  want: %s\n", cases[i].want);
      fail();
    }
    sw_conf_errors_free(&e);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_size_rotation_shifts_highest_first, setup, teardown),
      cmocka_unit_test_setup_teardown(test_execute_matches_plan, setup, teardown),
      cmocka_unit_test_setup_teardown(test_age_rotation_and_keep_rules, setup, teardown),
      cmocka_unit_test_setup_teardown(test_delay_compress_and_copytruncate, setup, teardown),
      cmocka_unit_test_setup_teardown(test_recovery, setup, teardown),
      cmocka_unit_test_setup_teardown(test_unread_files_are_kept, setup, teardown),
      cmocka_unit_test_setup_teardown(test_hard_pressure_order, setup, teardown),
      cmocka_unit_test_setup_teardown(test_pressure_level, setup, teardown),
      cmocka_unit_test_setup_teardown(test_planning_touches_nothing, setup, teardown),
      cmocka_unit_test_setup_teardown(test_zst_walk, setup, teardown),
      cmocka_unit_test(test_config_errors),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
