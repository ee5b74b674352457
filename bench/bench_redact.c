/* bench_redact.c - throughput of the redaction engine (not a test).
 *
 * Builds a deterministic ~64 MiB workload of realistic log lines in memory, then times one
 * sw_redact_line() call per line on one thread and prints MB/s of input per core (CPU time of
 * the thread). Mix by line count: 90% without a secret for the default packs (plain app logs,
 * JSON app logs, nginx access logs, Kubernetes/infra lines full of near misses: UUIDs, versions,
 * digests, timestamps, order ids), 10% with one secret each of every kind (e-mail, bearer
 * token, JWT, AWS keys, card number, password=..., URL credentials, PEM private key records,
 * JSON with a configured key, IPv6). Access logs start with a client IPv4 address, so with
 * every pack enabled (ipv4 is opt-in) they are rewritten too: that run is the worst case.
 *
 * Runs: every built-in pack, the default set (email, bearer_token, jwt, aws_access_key,
 * credit_card, password_kv, url_credentials), each with JSON key masking on (keys password,
 * secret, token, authorization, api_key; try_json on every line), then per line kind with every
 * pack; each figure is the best of 3 runs. Each secret line must come out changed when its pack
 * is enabled, or the bench exits 1. BENCH_SHOW=N prints N rewritten lines that hold no planted
 * secret (false positives).
 *
 * Build: cmake --build build --target bench_redact    (or by hand, from the top directory:)
 *        gcc -O2 -std=c11 -D_GNU_SOURCE -DPCRE2_CODE_UNIT_WIDTH=8 -I. bench/bench_redact.c
 *          redact/[a-z]*.c common/buf.c common/error.c common/strdist.c common/sha256.c -lpcre2-8 -o /tmp/bench_redact
 * Run:   build/bench_redact [MiB]     (default 64)
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "redact/redact.h"

enum kind { PLAIN, APPJSON, ACCESS, INFRA, SECRET, NKINDS };
static const char *const kind_name[NKINDS] = {"plain app log", "json app log", "access log (ipv4)",
                                              "infra near-misses", "secret (10%)"};

struct line {
  size_t off, len;
  enum kind kind;
  const char *needs; /* SECRET: the pack (or "fields") that must change the line */
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

static unsigned rnd(unsigned n) {
  return (unsigned)(next_rand() % n);
}

static const char *pick(const char *const *list, size_t n) {
  return list[rnd((unsigned)n)];
}
#define PICK(a) pick(a, sizeof a / sizeof a[0])

static void rand_chars(char *out, size_t n, const char *alphabet) {
  size_t k = strlen(alphabet);
  for (size_t i = 0; i < n; i++) out[i] = alphabet[rnd((unsigned)k)];
  out[n] = '\0';
}

#define B64URL "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
#define B64 "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
#define UPPERNUM "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
#define HEX "0123456789abcdef"

static const char *const levels[] = {"INFO", "INFO", "INFO", "DEBUG", "WARN", "ERROR"};
static const char *const services[] = {"OrderService", "PaymentGateway", "InventorySync", "SessionStore",
                                       "BillingWorker", "SearchIndexer", "UserProfile", "ShippingQuote"};
static const char *const msgs[][3] = { /* text, number, text, number, text */
    {"processed batch of ", " records in ", " ms, status=ok"},
    {"cache miss for product ", "; fetching from upstream (attempt ", ")"},
    {"test suite passed: ", " checks, ", " skipped"},
    {"session renewed for account ", " after ", " s of inactivity"},
    {"retrying database connection to primary (backoff ", " ms, pool size ", ")"},
    {"request bypassed rate limiter: internal caller, ", " req/s over ", " s"},
    {"scheduled job finished: ", " rows archived, ", " partitions pruned"},
    {"published ", " events to topic orders.v2 (partition ", ")"},
};
static const char *const paths[] = {"/api/v1/orders", "/api/v1/cart/items", "/static/js/app.bundle.js",
                                    "/healthz", "/api/v2/search?q=shoes&page=", "/images/banner@2x.png?v=",
                                    "/api/v1/users/profile", "/metrics"};
static const char *const agents[] = {
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.6099.109 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
    "curl/8.4.0", "kube-probe/1.28", "Go-http-client/1.1"};

static void add(struct corpus *c, const char *s, size_t n, enum kind k, const char *needs) {
  if (c->len + n > c->cap) {
    c->cap = (c->cap + n) * 2;
    c->buf = realloc(c->buf, c->cap);
  }
  if (c->n == c->lines_cap) {
    c->lines_cap = c->lines_cap ? 2 * c->lines_cap : 4096;
    c->lines = realloc(c->lines, c->lines_cap * sizeof *c->lines);
  }
  if (!c->buf || !c->lines) {
    fprintf(stderr, "out of memory\n");
    exit(1);
  }
  memcpy(c->buf + c->len, s, n);
  c->lines[c->n++] = (struct line){c->len, n, k, needs};
  c->len += n;
}

static int ts(char *out, size_t n) {
  return snprintf(out, n, "2026-11-23T%02u:%02u:%02u.%06uZ", rnd(24), rnd(60), rnd(60), rnd(1000000));
}

static int plain_line(char *o, size_t n) {
  char t[40];
  const char *const *m = msgs[rnd(sizeof msgs / sizeof msgs[0])];
  ts(t, sizeof t);
  return snprintf(o, n, "%s %-5s [worker-%u] com.example.%s - %s%u%s%u%s", t, PICK(levels), rnd(16), PICK(services),
                  m[0], rnd(100000), m[1], rnd(500), m[2]);
}

static int json_line(char *o, size_t n) {
  char t[40], trace[33];
  ts(t, sizeof t);
  rand_chars(trace, 32, HEX);
  return snprintf(o, n,
                  "{\"ts\":\"%s\",\"level\":\"%s\",\"logger\":\"com.example.%s\",\"msg\":\"request completed\","
                  "\"method\":\"GET\",\"path\":\"%s%u\",\"status\":%u,\"duration_ms\":%u.%u,\"user_id\":%u,"
                  "\"trace_id\":\"%s\",\"tags\":[\"checkout\",\"eu-west-1\"],\"retry\":false}",
                  t, PICK(levels), PICK(services), PICK(paths), rnd(90000), 200 + rnd(4) * 100, rnd(900), rnd(10),
                  rnd(1000000), trace);
}

static int access_line(char *o, size_t n) {
  return snprintf(o, n,
                  "10.%u.%u.%u - - [23/Nov/2026:%02u:%02u:%02u +0000] \"GET %s%u HTTP/1.1\" %u %u "
                  "\"https://shop.example.com/cart\" \"%s\" rt=%u.%03u",
                  rnd(256), rnd(256), rnd(256), rnd(24), rnd(60), rnd(60), PICK(paths), rnd(1000),
                  200 + rnd(4) * 100, rnd(60000), PICK(agents), rnd(3), rnd(1000));
}

static int infra_line(char *o, size_t n) {
  char t[40], dig[65], id[9];
  ts(t, sizeof t);
  rand_chars(dig, 64, HEX);
  rand_chars(id, 8, HEX);
  switch (rnd(4)) {
  case 0:
    return snprintf(o, n, "%s pod web-5d8f7c9b4-%s pulled image registry.local/web:1.25.%u@sha256:%s", t, id,
                    rnd(10), dig);
  case 1:
    return snprintf(o, n, "%s order 1%015u processed; request id %s-%04x-4%03x-a%03x-%012llx version v2.14.%u.%u",
                    t, rnd(1000000000), id, rnd(65536), rnd(4096), rnd(4096),
                    (unsigned long long)(next_rand() & 0xffffffffffffull), rnd(10), rnd(100));
  case 2:
    return snprintf(o, n, "%s reconcile done: 20261123%09u events, password_policy=strict password_length=%u "
                    "secret_rotation=enabled mailer@localhost ok", t, rnd(1000000000), 8 + rnd(8));
  default:
    return snprintf(o, n, "%s     at com.example.%s.handle(%s.java:%u) ~[app.jar:3.%u.%u]", t, PICK(services),
                    PICK(services), rnd(900), rnd(9), rnd(9));
  }
}

static void card(char *out) { /* a Luhn-valid Visa number */
  int d[16] = {4};
  for (int i = 1; i < 15; i++) d[i] = (int)rnd(10);
  int sum = 0;
  for (int i = 0; i < 15; i++) {
    int v = d[14 - i];
    if (i % 2 == 0) v = v * 2 > 9 ? v * 2 - 9 : v * 2;
    sum += v;
  }
  d[15] = (10 - sum % 10) % 10;
  for (int i = 0; i < 16; i++) out[i] = (char)('0' + d[i]);
  out[16] = '\0';
}

static const char *const secret_packs[] = {"email", "bearer_token", "jwt", "aws_access_key", "aws_secret_key",
                                           "credit_card", "password_kv", "url_credentials", "private_key",
                                           "fields", "ipv6"};

static int secret_line(char *o, size_t n, unsigned kind) {
  char t[40], a[80], b[80], c[80];
  ts(t, sizeof t);
  switch (kind) {
  case 0:
    rand_chars(a, 8, "abcdefghijklmnopqrstuvwxyz");
    return snprintf(o, n, "%s INFO  [mail] sent receipt to %s.%u@example.com (order %u)", t, a, rnd(1000), rnd(99999));
  case 1:
    rand_chars(a, 40, B64URL);
    return snprintf(o, n, "%s DEBUG [http] outgoing headers: Authorization: Bearer %s Accept: */*", t, a);
  case 2:
    rand_chars(a, 30, B64URL);
    rand_chars(b, 43, B64URL);
    return snprintf(o, n, "%s INFO  [auth] issued token eyJhbGciOiJIUzI1NiJ9.eyJ%s.%s for user %u", t, a, b, rnd(9999));
  case 3:
    rand_chars(a, 16, UPPERNUM);
    return snprintf(o, n, "%s WARN  [s3] using static credentials AKIA%s for bucket logs-archive", t, a);
  case 4:
    rand_chars(a, 40, B64);
    return snprintf(o, n, "%s DEBUG [env] AWS_REGION=eu-west-1 aws_secret_access_key=%s", t, a);
  case 5:
    card(a);
    return snprintf(o, n, "%s ERROR [pay] charge declined card=%.4s %.4s %.4s %.4s amount=%u.%02u EUR", t, a, a + 4,
                    a + 8, a + 12, rnd(500), rnd(100));
  case 6:
    rand_chars(a, 12, B64);
    return snprintf(o, n, "%s DEBUG [db] connect host=db-1 user=app password=%s sslmode=require", t, a);
  case 7:
    rand_chars(a, 14, B64URL);
    return snprintf(o, n, "%s INFO  [queue] connecting to amqp://orders:%s@rabbit.internal:5672/vhost", t, a);
  case 8:
    rand_chars(a, 64, B64);
    rand_chars(b, 64, B64);
    rand_chars(c, 40, B64);
    return snprintf(o, n, "%s ERROR [tls] bad key material:\n-----BEGIN RSA PRIVATE KEY-----\nMIIE%s\n%s\n%s==\n"
                    "-----END RSA PRIVATE KEY-----\n  at load_key (tls.c:88)", t, a, b, c);
  case 9:
    rand_chars(a, 20, B64URL);
    return snprintf(o, n, "{\"ts\":\"%s\",\"level\":\"info\",\"msg\":\"login\",\"user\":\"u%u\","
                    "\"password\":\"%s\",\"client\":{\"api_key\":\"%s\"}}", t, rnd(9999), a, a);
  default:
    return snprintf(o, n, "%s INFO  [net] peer 2001:db8:%x:%x::%x connected", t, rnd(65536), rnd(65536), rnd(65536));
  }
}

static void build(struct corpus *c, size_t target) {
  char line[2048];
  while (c->len < target) {
    unsigned r = rnd(100), sk = rnd(11);
    enum kind k = r < 10 ? SECRET : r < 40 ? PLAIN : r < 65 ? APPJSON : r < 85 ? ACCESS : INFRA;
    int n = k == SECRET ? secret_line(line, sizeof line, sk) : k == PLAIN ? plain_line(line, sizeof line)
            : k == APPJSON ? json_line(line, sizeof line) : k == ACCESS ? access_line(line, sizeof line)
            : infra_line(line, sizeof line);
    add(c, line, (size_t)n, k, k == SECRET ? secret_packs[sk] : NULL);
  }
}

static double cpu_now(void) {
  struct timespec t;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

struct result {
  double secs;
  size_t bytes, lines, changed, secret_unchanged;
};

static int enabled(const struct sw_redactor *r, const char *name) {
  for (size_t i = 0; sw_redactor_rule_name(r, i); i++)
    if (!strcmp(sw_redactor_rule_name(r, i), name)) return 1;
  return 0;
}

static struct result run(struct sw_redact_ctx *ctx, const struct sw_redactor *r, const struct corpus *c,
                         int only_kind) {
  struct result res = {0};
  int show = getenv("BENCH_SHOW") ? atoi(getenv("BENCH_SHOW")) : 0;
  double t0 = cpu_now();
  for (size_t i = 0; i < c->n; i++) {
    const struct line *l = &c->lines[i];
    if (only_kind >= 0 && (int)l->kind != only_kind) continue;
    const char *out;
    size_t out_len;
    (void)sw_redact_line(ctx, c->buf + l->off, l->len, 1, &out, &out_len);
    res.bytes += l->len;
    res.lines++;
    int changed = out != c->buf + l->off;
    res.changed += (size_t)changed;
    if (l->kind == SECRET && !changed && enabled(r, l->needs)) res.secret_unchanged++;
    if (show && changed && l->kind != SECRET && l->kind != ACCESS && show-- > 0) /* false positives */
      printf("  rewritten: %.*s\n     -> %.*s\n", (int)l->len, c->buf + l->off, (int)out_len, out);
  }
  res.secs = cpu_now() - t0;
  return res;
}

static struct sw_redact_ctx *make(const char *const *packs, size_t npacks, struct sw_redactor **r) {
  static const char *const keys[] = {"password", "secret", "token", "authorization", "api_key"};
  struct sw_redact_conf conf = {.builtins = packs, .nbuiltins = npacks, .keys = keys, .nkeys = 5,
                                .action = SW_REDACT_MASK};
  char err[256];
  if (sw_redactor_create(&conf, r, err, sizeof err)) {
    fprintf(stderr, "redactor: %s\n", err);
    exit(1);
  }
  struct sw_redact_ctx *ctx = sw_redact_ctx_create(*r);
  if (!ctx) exit(1);
  return ctx;
}

/* The best of `reps` runs: other processes on the machine only ever slow a run down. */
static struct result best(struct sw_redact_ctx *ctx, const struct sw_redactor *r, const struct corpus *c, int only_kind,
                          int reps) {
  struct result b = run(ctx, r, c, only_kind);
  for (int i = 1; i < reps; i++) {
    struct result x = run(ctx, r, c, only_kind);
    if (x.secs < b.secs) b = x;
  }
  return b;
}

static void report(const char *what, struct result res, int *failed) {
  printf("%-34s %8.1f MB/s per core  (%zu lines, %.1f MiB, %.3f s CPU, %.1f%% rewritten)\n", what,
         (double)res.bytes / 1e6 / res.secs, res.lines, (double)res.bytes / (1 << 20), res.secs,
         100.0 * (double)res.changed / (double)(res.lines ? res.lines : 1));
  if (res.secret_unchanged) {
    printf("  FAIL: %zu secret lines came out unchanged\n", res.secret_unchanged);
    *failed = 1;
  }
}

int main(int argc, char **argv) {
  const char *all[32];
  size_t nall = 0;
  while (nall < 32 && sw_redact_pack_name(nall)) all[nall] = sw_redact_pack_name(nall), nall++;
  static const char *const defaults[] = {"email", "bearer_token", "jwt", "aws_access_key", "credit_card",
                                         "password_kv", "url_credentials"};
  size_t mib = argc > 1 ? strtoul(argv[1], NULL, 10) : 64;
  struct corpus c = {0};
  int failed = 0;
  build(&c, (mib ? mib : 64) << 20);
  printf("workload: %zu lines, %.1f MiB, %.0f bytes/line on average\n", c.n, (double)c.len / (1 << 20),
         (double)c.len / (double)c.n);

  struct sw_redactor *r_all, *r_def;
  struct sw_redact_ctx *all_ctx = make(all, nall, &r_all);
  struct sw_redact_ctx *def_ctx = make(defaults, sizeof defaults / sizeof defaults[0], &r_def);
  (void)run(all_ctx, r_all, &c, -1); /* warm up: page in the corpus, grow the scratch buffers */
  printf("best of 3 runs each%s\n",
#if defined(__SSE2__)
         ", SSE2 prefilter"
#else
         ", scalar prefilter"
#endif
  );
  char all_label[64];
  snprintf(all_label, sizeof all_label, "all %zu packs + JSON keys", nall);
  report(all_label, best(all_ctx, r_all, &c, -1, 3), &failed);
  report("default 7 packs + JSON keys", best(def_ctx, r_def, &c, -1, 3), &failed);
  printf("per line kind, all packs:\n");
  for (int k = 0; k < NKINDS; k++) {
    char what[64];
    snprintf(what, sizeof what, "  %s", kind_name[k]);
    report(what, best(all_ctx, r_all, &c, k, 3), &failed);
  }
  printf("counters (all packs, every run above):");
  for (size_t i = 0; i < sw_redactor_nrules(r_all); i++)
    printf(" %s=%llu", sw_redactor_rule_name(r_all, i), (unsigned long long)sw_redact_ctx_counts(all_ctx)[i]);
  printf(" fallbacks=%llu\n", (unsigned long long)sw_redact_ctx_fallbacks(all_ctx));
  sw_redact_ctx_destroy(all_ctx);
  sw_redact_ctx_destroy(def_ctx);
  sw_redactor_destroy(r_all);
  sw_redactor_destroy(r_def);
  free(c.buf);
  free(c.lines);
  return failed;
}
