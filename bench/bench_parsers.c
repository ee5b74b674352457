/* bench_parsers.c - microbenchmark for the docker and CRI line parsers (not a test).
 *
 * Builds ~64 MiB of synthetic lines in memory, then times one parser call per line.
 * Mix by line count: 60% plain text (~200 bytes), 30% JSON application logs (in docker
 * form their quotes are escaped, so they take the unescaping path), 10% pieces of long lines
 * split at 16 KiB the way dockerd/CRI runtimes split them (all but the last piece partial).
 * By bytes the long pieces dominate, so per-kind figures are printed as well as the mix.
 *
 * Build: gcc -O2 -std=c11 -D_GNU_SOURCE -I. bench/bench_parsers.c parsers/docker.c \
 *          parsers/cri.c parsers/record.c common/timefmt.c common/error.c -o /tmp/bench
 * Run:   /tmp/bench [MiB]
 */
#if !defined(_GNU_SOURCE) && !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200809L /* clock_gettime under -std=c11 */
#endif

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "parsers/cri.h"
#include "parsers/docker.h"

#define PIECE 16384 /* docker and CRI split lines longer than 16 KiB */
#define TS "2026-11-23T15:33:52.123456789Z"

enum kind { PLAIN, APPJSON, LONG, NKINDS };
static const char *const kind_name[NKINDS] = {"plain ~200B", "json app log", "16K pieces"};

struct line {
  size_t off, len;
  enum kind kind;
};

struct corpus {
  char *buf;
  size_t len, cap;
  struct line *lines;
  size_t n, lines_cap;
};

static uint64_t rng = 0x9E3779B97F4A7C15u;

static uint64_t next_rand(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return rng;
}

static void *xrealloc(void *p, size_t n) {
  void *q = realloc(p, n);
  if (q == NULL) {
    fprintf(stderr, "out of memory\n");
    exit(1);
  }
  return q;
}

static void put(struct corpus *c, const char *s, size_t n) {
  if (c->len + n > c->cap) {
    c->cap = (c->len + n) * 2;
    c->buf = xrealloc(c->buf, c->cap);
  }
  memcpy(c->buf + c->len, s, n);
  c->len += n;
}

static void puts_(struct corpus *c, const char *s) {
  put(c, s, strlen(s));
}

static void begin_line(struct corpus *c, enum kind k) {
  if (c->n == c->lines_cap) {
    c->lines_cap = c->lines_cap ? c->lines_cap * 2 : 4096;
    c->lines = xrealloc(c->lines, c->lines_cap * sizeof *c->lines);
  }
  c->lines[c->n] = (struct line){.off = c->len, .kind = k};
}

static void end_line(struct corpus *c) {
  c->lines[c->n].len = c->len - c->lines[c->n].off;
  c->n++;
  put(c, "\n", 1); /* as in the file; not part of the line passed to the parser */
}

/* Printable words, ~len bytes, no characters that need JSON escaping. */
static void words(char *out, size_t len) {
  static const char *const w[] = {"GET", "/api/v1/orders", "200", "in", "12.5ms", "user",
                                  "cache", "miss", "for", "key", "session", "started",
                                  "worker-7", "retrying", "upstream", "ok"};
  size_t n = 0;
  while (n < len) {
    const char *s = w[next_rand() % 16];
    size_t k = strlen(s);
    if (n + k + 1 > len)
      k = len - n - 1 < k ? len - n - 1 : k;
    memcpy(out + n, s, k);
    n += k;
    if (n < len)
      out[n++] = ' ';
  }
}

/* One logical application line of the given kind, unescaped, ending in "\n". */
static size_t app_line(char *out, enum kind k) {
  if (k == PLAIN) {
    size_t n = 150 + next_rand() % 60;
    words(out, n);
    out[n] = '\n';
    return n + 1;
  }
  if (k == APPJSON) {
    char msg[96];
    size_t ml = 40 + next_rand() % 40;
    words(msg, ml);
    msg[ml] = '\0';
    int n = snprintf(out, 512,
                     "{\"level\":\"info\",\"ts\":\"" TS "\",\"caller\":\"server/http.go:%u\","
                     "\"msg\":\"%.80s\",\"status\":%u,\"dur_ms\":%u.%u}\n",
                     (unsigned)(next_rand() % 900), msg, 200 + (unsigned)(next_rand() % 5),
                     (unsigned)(next_rand() % 100), (unsigned)(next_rand() % 10));
    return (size_t)n;
  }
  size_t n = PIECE * 2 + next_rand() % PIECE; /* 2..3 pieces */
  words(out, n);
  out[n] = '\n';
  return n + 1;
}

/* JSON-escapes s[0..n) (quotes, backslashes, newline) into c. */
static void put_escaped(struct corpus *c, const char *s, size_t n) {
  size_t run = 0;
  for (size_t i = 0; i < n; i++) {
    const char *esc = s[i] == '"' ? "\\\"" : s[i] == '\\' ? "\\\\" : s[i] == '\n' ? "\\n" : NULL;
    if (esc == NULL)
      continue;
    put(c, s + run, i - run);
    puts_(c, esc);
    run = i + 1;
  }
  put(c, s + run, n - run);
}

static void add_docker(struct corpus *c, const char *s, size_t n, enum kind k) {
  for (size_t at = 0; at < n; at += PIECE) {
    size_t piece = n - at < PIECE ? n - at : PIECE;
    begin_line(c, k);
    puts_(c, "{\"log\":\"");
    put_escaped(c, s + at, piece);
    puts_(c, next_rand() % 8 ? "\",\"stream\":\"stdout\",\"time\":\"" TS "\"}"
                             : "\",\"stream\":\"stderr\",\"time\":\"" TS "\"}");
    end_line(c);
  }
}

static void add_cri(struct corpus *c, const char *s, size_t n, enum kind k) {
  n--; /* CRI drops the "\n"; the F tag marks the end instead */
  for (size_t at = 0; at < n || at == 0; at += PIECE) {
    size_t piece = n - at < PIECE ? n - at : PIECE;
    begin_line(c, k);
    puts_(c, TS);
    puts_(c, next_rand() % 8 ? " stdout " : " stderr ");
    puts_(c, at + piece < n ? "P " : "F ");
    put(c, s + at, piece);
    end_line(c);
    if (at + piece >= n)
      break;
  }
}

static enum kind pick_kind(void) {
  unsigned r = (unsigned)(next_rand() % 100);
  return r < 60 ? PLAIN : r < 90 ? APPJSON : LONG;
}

/* Fills c with target bytes of lines. Long lines are emitted only as often as keeps their
 * pieces at 10% of all lines (a long line yields 2-3 pieces). */
static void build(struct corpus *c, size_t target, int cri) {
  char *tmp = xrealloc(NULL, PIECE * 3 + 1024);
  size_t pieces = 0;
  while (c->len < target) {
    enum kind k = pick_kind();
    if (k == LONG && pieces * 10 > c->n)
      k = PLAIN;
    size_t n = app_line(tmp, k);
    size_t before = c->n;
    if (cri)
      add_cri(c, tmp, n, k);
    else
      add_docker(c, tmp, n, k);
    if (k == LONG)
      pieces += c->n - before;
  }
  free(tmp);
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Parses every line whose kind is in `mask`; returns the best of 7 runs in seconds: the
 * best run is the one least disturbed by other load on the machine. */
static double run(const struct corpus *c, int cri, unsigned mask, size_t *bytes, size_t *lines,
                  char *out, size_t out_cap) {
  double best = 1e9;
  uint64_t check = 0;
  for (int rep = 0; rep < 7; rep++) {
    *bytes = *lines = 0;
    double t0 = now_s();
    for (size_t i = 0; i < c->n; i++) {
      const struct line *l = &c->lines[i];
      if (!(mask >> l->kind & 1))
        continue;
      int rc;
      if (cri) {
        struct sw_cri_line r;
        rc = sw_cri_parse(c->buf + l->off, l->len, &r);
        check += r.content_len + r.partial;
      } else {
        struct sw_docker_line r;
        rc = sw_docker_parse(c->buf + l->off, l->len, out, out_cap, &r);
        check += r.log_len + r.partial;
      }
      if (rc != 0) {
        fprintf(stderr, "line %zu failed to parse (%d)\n", i, rc);
        exit(1);
      }
      *bytes += l->len + 1;
      (*lines)++;
    }
    double t = now_s() - t0;
    best = t < best ? t : best;
  }
  if (check == 42) /* keeps the results observable to the optimiser */
    puts("");
  return best;
}

static void report(const char *fmt, const struct corpus *c, int cri, char *out, size_t cap) {
  for (int k = 0; k <= NKINDS; k++) {
    unsigned mask = k == NKINDS ? 7u : 1u << k;
    size_t bytes, lines;
    double t = run(c, cri, mask, &bytes, &lines, out, cap);
    printf("%-6s %-13s %8.1f MiB %9zu lines  %8.0f MB/s  %6.2f Mlines/s\n", fmt,
           k == NKINDS ? "mix" : kind_name[k], (double)bytes / 1048576.0, lines,
           (double)bytes / t / 1e6, (double)lines / t / 1e6);
  }
}

int main(int argc, char **argv) {
  size_t mib = argc > 1 ? (size_t)strtoul(argv[1], NULL, 10) : 64;
  struct corpus d = {0}, r = {0};
  build(&d, mib << 20, 0);
  build(&r, mib << 20, 1);
  size_t cap = PIECE * 2 + 1024;
  char *out = xrealloc(NULL, cap);
  report("docker", &d, 0, out, cap);
  report("cri", &r, 1, out, cap);
  free(out);
  free(d.buf);
  free(d.lines);
  free(r.buf);
  free(r.lines);
  return 0;
}
