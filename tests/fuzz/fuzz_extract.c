/* libFuzzer harness for parsers/extract.c and the label-object readers of parsers/labelmatch.c.
 * The input is a payload: extracted with json paths, logfmt keys and a regex, and read as a
 * label object. Invariants: values stay inside their bound, lie in the output buffer or the
 * input (or are a normal level name), and looking up each key a label object's walk yields
 * stays inside its buffer (a key with a NUL byte is not found by its C-string prefix). */
#include <pcre2.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "parsers/extract.h"
#include "parsers/labelmatch.h"

#define CHECK(c) ((c) ? (void)0 : abort())

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_out(const struct sw_extract_spec *sp, const struct sw_extract_out *o, const char *s, size_t n) {
  size_t found = 0;
  for (size_t i = 0; i < sp->n; i++) {
    if (!o->v[i]) continue;
    found++;
    CHECK(o->len[i] <= SW_EXTRACT_MAX_VALUE);
    const char *v = o->v[i];
    int in_buf = v >= o->buf && v + o->len[i] <= o->buf + sizeof o->buf;
    int in_line = v >= s && v + o->len[i] <= s + n;
    CHECK(in_buf || in_line || sw_extract_level(v, o->len[i]) != NULL);
  }
  CHECK(found == o->found);
}

struct walk {
  const char *json;
  size_t len;
  int n;
};

static int each(void *arg, const char *k, const char *v) {
  struct walk *w = arg;
  char got[4096];
  long l = sw_label_lookup(w->json, w->len, k, got, sizeof got);
  CHECK(l < (long)sizeof got && (l < 0 || got[l] == 0));
  (void)v;
  return ++w->n > 64;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static struct sw_extract_out out;
  static pcre2_code *re;
  static pcre2_match_data *md;
  if (!re) {
    int ec;
    PCRE2_SIZE off;
    re = pcre2_compile((PCRE2_SPTR) "^(?P<level>\\w+)\\s+(?:(?P<user>\\S+)\\s)?", PCRE2_ZERO_TERMINATED,
                       PCRE2_UTF | PCRE2_MATCH_INVALID_UTF, &ec, &off, NULL);
    md = pcre2_match_data_create_from_pattern(re, NULL);
  }
  const char *s = (const char *)data;
  struct sw_extract_spec js = {.format = SW_EXTRACT_JSON, .n = 4, .level_at = 0, .normalize_level = 1,
                               .name = {"level", "id", "deep", "arr"}, .path = {"level", "a.b", "a.b.c.d", "x"}};
  sw_extract(&js, s, size, NULL, &out);
  check_out(&js, &out, s, size);
  struct sw_extract_spec lf = {.format = SW_EXTRACT_LOGFMT, .n = 2, .level_at = 1, .normalize_level = 1,
                               .name = {"msg", "level"}, .path = {"msg", "level"}};
  sw_extract(&lf, s, size, NULL, &out);
  check_out(&lf, &out, s, size);
  struct sw_extract_spec rx = {.format = SW_EXTRACT_REGEX, .re = re, .normalize_level = 1};
  CHECK(sw_extract_regex_names(&rx) == 0 && rx.n == 2);
  sw_extract(&rx, s, size, md, &out);
  check_out(&rx, &out, s, size);
  struct walk w = {s, size, 0};
  (void)sw_label_each(s, size, each, &w);
  char v[64];
  long l = sw_label_lookup(s, size, "a", v, sizeof v);
  CHECK(l < (long)sizeof v);
  return 0;
}
