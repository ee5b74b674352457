/* bench_compress.c - throughput of spillway's archive compression (not a test).
 *
 * Compresses FILE with each given zstd level through exactly the code `spillway rotate` runs
 * (sw__zout_init / sw__copy_to_eof / sw__zout_end from agent/retention/zst.c: 128 KiB reads,
 * ZSTD_compressStream2, capped window and tables), writing to /dev/null, on the calling thread
 * only. The file is read once first so that every level reads it from the page cache.
 * One JSON object per level on stdout:
 *   {"level":3,"in":268435456,"out":12345678,"wall_s":1.23,"cpu_s":1.22,"mb_s":218.1,"ratio":21.7}
 * (mb_s = MiB of input per CPU second.)
 *
 * Build: cmake --build build --target bench_compress     Run: build/bench_compress FILE 1 3 9
 * bench/bench_compress.py drives it and compares with gzip -6.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "agent/retention/internal.h"

static double now(clockid_t c) {
  struct timespec ts;
  clock_gettime(c, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: %s FILE LEVEL...\n", argv[0]);
    return 2;
  }
  int src = open(argv[1], O_RDONLY), null = open("/dev/null", O_WRONLY);
  if (src < 0 || null < 0) {
    perror(argv[1]);
    return 1;
  }
  static char warm[1 << 20];
  while (read(src, warm, sizeof warm) > 0) {
  }
  for (int i = 2; i < argc; i++) {
    int level = atoi(argv[i]);
    struct sw__zout z;
    uint64_t off = 0, copied = 0;
    if (sw__zout_init(&z, null, level)) return 1;
    double w0 = now(CLOCK_MONOTONIC), c0 = now(CLOCK_THREAD_CPUTIME_ID);
    int rc = sw__copy_to_eof(src, &off, &z, NULL, &copied);
    if (!rc) rc = sw__zout_end(&z);
    double w1 = now(CLOCK_MONOTONIC), c1 = now(CLOCK_THREAD_CPUTIME_ID);
    if (rc) {
      fprintf(stderr, "level %d: %s\n", level, sw_strerror(rc));
      return 1;
    }
    printf("{\"level\":%d,\"in\":%llu,\"out\":%llu,\"wall_s\":%.3f,\"cpu_s\":%.3f,\"mb_s\":%.1f,\"ratio\":%.2f}\n",
           level, (unsigned long long)z.in_bytes, (unsigned long long)z.out_bytes, w1 - w0, c1 - c0,
           (double)z.in_bytes / (1 << 20) / (c1 - c0), (double)z.in_bytes / (double)z.out_bytes);
    fflush(stdout);
    sw__zout_free(&z);
  }
  close(src);
  close(null);
  return 0;
}
