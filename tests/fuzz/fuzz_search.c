/* libFuzzer harness for the search matcher over arbitrary (damaged) chunk bytes.
 * The first byte picks a pattern (fast whole-text path and record-by-record ones); the rest is
 * a raw chunk. Invariants: only 0, SW_ECORRUPT or SW_EAGAIN; every hit lies inside the input;
 * the fast path and the record-by-record reference find the same number of hits. */
#include <stdint.h>
#include <stdlib.h>

#include <pcre2.h>

#include "search/query.h"

#define CHECK(c) ((c) ? (void)0 : abort())

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct span {
  const uint8_t *lo, *hi;
  size_t n;
};

static int on_hit(void *arg, const struct sw_record_view *v) {
  struct span *s = arg;
  CHECK((const uint8_t *)v->line >= s->lo && (const uint8_t *)v->line + v->len <= s->hi);
  s->n++;
  return 0;
}

static size_t scan(const char *pat, int slow, const uint8_t *d, size_t n, int *rc) {
  struct sw_search_query q;
  char err[256];
  CHECK(sw_search_query_init(&q, pat, 0, err, sizeof err) == 0);
  if (slow) {
    pcre2_code_free(q.re_text);
    q.re_text = NULL;
  }
  struct sw_search_scratch s;
  CHECK(sw_search_scratch_init(&s, &q) == 0);
  struct span sp = {d, d + n, 0};
  *rc = sw_search_chunk(&q, &s, d, n, on_hit, &sp);
  CHECK(*rc == 0 || *rc == SW_ECORRUPT || *rc == SW_EAGAIN);
  sw_search_scratch_free(&s);
  sw_search_query_free(&q);
  return sp.n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static const char *const pats[] = {"a", "^a", "a$", "", "^$", "a\\nb", "\\bab", "(?<=a)b", "[^a]+$", "é"};
  if (size < 1) return 0;
  const char *pat = pats[data[0] % (sizeof pats / sizeof pats[0])];
  int rc1, rc2;
  size_t fast = scan(pat, 0, data + 1, size - 1, &rc1);
  size_t slow = scan(pat, 1, data + 1, size - 1, &rc2);
  CHECK(rc1 == rc2);
  if (rc1 == 0) CHECK(fast == slow);
  return 0;
}
