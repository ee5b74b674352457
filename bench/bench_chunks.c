/* bench_chunks.c - what the buffer's zstd level costs and saves (not a test).
 *
 * Reads every chunk of a spillway.db (e.g. one `bench.py --keep` left behind), decompresses them
 * once, then compresses all of them again at each level through the code the writer runs
 * (sw_chunk_compress: one frame per chunk, content checksum), with and without long-distance
 * matching, and decompresses the result as the sinks do when they fall behind. On the calling
 * thread only. One JSON object per setting on stdout:
 *   {"level":1,"ldm":0,"raw_MiB":..,"stored_MiB":..,"ratio":..,"compress_cpu_s_per_GB":..,
 *    "decompress_cpu_s_per_GB":..}
 *
 * Build: cmake --build build --target bench_chunks
 * Run:   build/bench_chunks bench/.work/throughput-state/spillway.db -7 -5 -3 -1 1 2 3
 */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zstd.h>

#include "agent/buffer/chunk.h"

static double cpu_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct chunk {
  struct sw_buf raw;
};

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: %s spillway.db LEVEL...\n", argv[0]);
    return 2;
  }
  sqlite3 *db;
  sqlite3_stmt *st;
  if (sqlite3_open_v2(argv[1], &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK ||
      sqlite3_prepare_v2(db, "SELECT data FROM chunks ORDER BY id", -1, &st, NULL) != SQLITE_OK) {
    fprintf(stderr, "%s: %s\n", argv[1], sqlite3_errmsg(db));
    return 1;
  }
  size_t n = 0, cap = 0;
  struct chunk *c = NULL;
  uint64_t raw_total = 0;
  while (sqlite3_step(st) == SQLITE_ROW) {
    if (n == cap) {
      cap = cap ? cap * 2 : 1024;
      if (!(c = realloc(c, cap * sizeof *c))) return 1;
    }
    sw_buf_init(&c[n].raw, SIZE_MAX);
    if (sw_chunk_decompress(NULL, sqlite3_column_blob(st, 0), (size_t)sqlite3_column_bytes(st, 0),
                            &c[n].raw)) {
      fprintf(stderr, "chunk %zu does not decompress\n", n);
      return 1;
    }
    raw_total += c[n].raw.len;
    n++;
  }
  sqlite3_finalize(st);
  sqlite3_close(db);
  if (!n) {
    fprintf(stderr, "%s holds no chunks\n", argv[1]);
    return 1;
  }
  ZSTD_CCtx *cc = ZSTD_createCCtx();
  ZSTD_DCtx *dc = ZSTD_createDCtx();
  struct sw_buf z, back;
  sw_buf_init(&z, SIZE_MAX);
  sw_buf_init(&back, SIZE_MAX);
  double gb = (double)raw_total / 1e9;
  for (int ldm = 0; ldm <= 1; ldm++)
    for (int a = 2; a < argc; a++) {
      int level = atoi(argv[a]);
      uint64_t stored = 0;
      double comp = 0, dec = 0;
      for (size_t i = 0; i < n; i++) {
        sw_buf_reset(&z);
        double t0 = cpu_now();
        if (sw_chunk_compress(cc, level, ldm, c[i].raw.data, c[i].raw.len, &z)) return 1;
        double t1 = cpu_now();
        sw_buf_reset(&back);
        if (sw_chunk_decompress(dc, z.data, z.len, &back) || back.len != c[i].raw.len) return 1;
        dec += cpu_now() - t1;
        comp += t1 - t0;
        stored += z.len;
      }
      printf("{\"level\":%d,\"ldm\":%d,\"chunks\":%zu,\"raw_MiB\":%.1f,\"stored_MiB\":%.1f,"
             "\"ratio\":%.2f,\"compress_cpu_s_per_GB\":%.3f,\"decompress_cpu_s_per_GB\":%.3f}\n",
             level, ldm, n, raw_total / 1048576.0, stored / 1048576.0, (double)raw_total / (double)stored,
             comp / gb, dec / gb);
      fflush(stdout);
    }
  return 0;
}
