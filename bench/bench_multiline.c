/* bench_multiline.c - what a multiline preset costs per line (not a test).
 *
 * Reads a log file (a CRI log of bench.py's cri workload, or any text), takes each line's
 * payload (after the CRI prefix when it has one) and classifies every line with each preset
 * the way ingest does, several passes; prints ns per line and MB/s. Ingest as a whole costs
 * ~1.5 us per such line (bench.py cri: ~8 CPU s per GB), so this is the preset's share.
 *
 *   cmake --build build --target bench_multiline && build/bench_multiline FILE
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "parsers/multiline.h"

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s FILE\n", argv[0]);
    return 2;
  }
  FILE *f = fopen(argv[1], "rb");
  if (!f) return perror(argv[1]), 1;
  fseek(f, 0, SEEK_END);
  long size = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *buf = malloc((size_t)size + 1);
  if (!buf || fread(buf, 1, (size_t)size, f) != (size_t)size) return 1;
  fclose(f);
  size_t nlines = 0, cap = 1 << 20;
  struct { const char *p; size_t n; } *l = malloc(cap * sizeof *l);
  for (char *s = buf, *end = buf + size; s < end;) {
    char *nl = memchr(s, '\n', (size_t)(end - s));
    if (!nl) nl = end;
    const char *p = s;
    /* "<ts> <stream> <tag> <content>": skip three fields when the line looks like CRI */
    if (nl - s > 32 && s[4] == '-' && s[10] == 'T')
      for (int k = 0; k < 3 && p < nl; k++) {
        const char *sp = memchr(p, ' ', (size_t)(nl - p));
        p = sp ? sp + 1 : nl;
      }
    if (nlines == cap) l = realloc(l, (cap *= 2) * sizeof *l);
    l[nlines].p = p;
    l[nlines++].n = (size_t)(nl - p);
    s = nl + 1;
  }
  printf("%zu lines, %.1f MB\n", nlines, size / 1e6);
  for (int pr = SW_ML_JAVA; pr < SW_ML_NPRESETS; pr++) {
    double best = 1e9;
    size_t groups = 0;
    for (int pass = 0; pass < 5; pass++) {
      struct sw_ml_state st = {0};
      int pending = 0;
      groups = 0;
      double t0 = now_s();
      for (size_t i = 0; i < nlines; i++) {
        enum sw_ml_verdict v = sw_ml_classify((enum sw_ml_preset)pr, &st, pending, l[i].p, l[i].n);
        pending = v != SW_ML_SINGLE;
        groups += v == SW_ML_START;
      }
      double t = now_s() - t0;
      if (t < best) best = t;
    }
    printf("%-7s %6.1f ns/line %8.0f MB/s  (%zu groups started)\n", sw_ml_preset_name((enum sw_ml_preset)pr),
           best * 1e9 / nlines, size / 1e6 / best, groups);
  }
  free(l);
  free(buf);
  return 0;
}
