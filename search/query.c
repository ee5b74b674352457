#include "query.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../agent/config/config.h"
#include "../agent/process/process.h"
#include "../common/timefmt.h"
#include "../parsers/extract.h"
#include "../parsers/regex.h"
#include "../parsers/record.h"

static pcre2_code *compile(const char *pattern, uint32_t opts, char *err, size_t errlen) {
  char msg[160];
  size_t off = 0;
  pcre2_code *re = sw_re_compile(pattern, opts, msg, sizeof msg, &off);
  if (!re) snprintf(err, errlen, "%s at offset %zu of \"%s\"", msg, off, pattern);
  return re;
}

/* Constructs that look beyond the subject's edges: a record matched inside the whole text
 * section could see its neighbours' bytes, so these patterns are matched record by record. */
static int needs_record_by_record(const char *p) {
  static const char *const k[] = {"(?=", "(?!", "(?<=", "(?<!", "(*", "(?(", "\\A", "\\z", "\\Z",
                                  "\\G", "(?*", "(?<*"};
  for (size_t i = 0; i < sizeof k / sizeof k[0]; i++)
    if (strstr(p, k[i])) return 1;
  return 0;
}

/* Literal runs every match must contain, from a conservative reading of the pattern: top-level
 * literal characters only, a run ends at any metacharacter, a quantifier that allows zero
 * takes back the character before it, and reading stops at the first group, class or
 * escape that is not an escaped punctuation character. Any '|' (alternation), or caseless
 * matching, means no literal is required. Runs of 3+ bytes give their trigrams. */
static void required_grams(struct sw_search_query *q, const char *p, int icase) {
  q->ngrams = 0;
  if (icase || strchr(p, '|')) return;
  char run[256];
  size_t n = 0;
  int stop = 0;
  for (size_t i = 0;; i++) {
    unsigned char c = (unsigned char)p[i];
    int lit = -1, end_run = 0;
    if (c == 0 || stop) {
      end_run = 1;
    } else if (c == '\\') {
      unsigned char e = (unsigned char)p[i + 1];
      if (e && !isalnum(e) && e < 0x80) {
        lit = e;
        i++;
      } else {
        end_run = stop = 1;
      }
    } else if (c == '(' || c == '[') {
      end_run = stop = 1;
    } else if (c == '*' || c == '?' || c == '{') {
      /* the previous character may be absent: take back its whole UTF-8 sequence */
      while (n > 0 && ((unsigned char)run[n - 1] & 0xC0) == 0x80) n--;
      if (n > 0) n--;
      end_run = 1;
      if (c == '{')
        while (p[i + 1] && p[i] != '}') i++;
    } else if (c == '+' || c == '.' || c == '^' || c == '$' || c == ')' || c == ']' || c == '}') {
      end_run = 1;
    } else {
      lit = c;
    }
    if (lit >= 0 && n < sizeof run) run[n++] = (char)lit;
    if ((end_run || n == sizeof run) && n >= 3) {
      for (size_t k = 2; k < n && q->ngrams < sizeof q->grams / sizeof q->grams[0]; k++)
        q->grams[q->ngrams++] = sw_chunk_gram((const uint8_t *)run + k - 2);
    }
    if (end_run) n = 0;
    if (c == 0 || stop) break;
  }
}

int sw_search_grams_match(const struct sw_search_query *q, const void *set, size_t len) {
  if (q->ngrams == 0 || len == 0 || (len & (len - 1)) != 0 || len > (1u << 21)) return 1;
  const uint8_t *b = set;
  uint32_t bits = (uint32_t)len * 8;
  for (size_t i = 0; i < q->ngrams; i++) {
    uint32_t k = sw_chunk_gram_bit(q->grams[i], bits);
    if (!(b[k >> 3] & (1u << (k & 7)))) return 0;
  }
  return 1;
}

int sw_search_query_init(struct sw_search_query *q, const char *pattern, int flags, char *err,
                         size_t errlen) {
  memset(q, 0, sizeof *q);
  q->since = INT64_MIN;
  q->until = INT64_MAX;
  q->streams = 7;
  if (!(q->pattern = strdup(pattern))) return SW_ENOMEM;
  uint32_t opts = (flags & SW_SEARCH_ICASE) ? PCRE2_CASELESS : 0; /* sw_re_compile adds UTF */
  if (!(q->re = compile(pattern, opts, err, errlen))) goto bad;
  if (!needs_record_by_record(pattern)) {
    if (!(q->re_text = compile(pattern, opts | PCRE2_MULTILINE, err, errlen))) goto bad;
    /* In multiline mode ^ and $ also match around newlines inside a record; confirm those. */
    q->confirm = strpbrk(pattern, "^$") != NULL;
  }
  required_grams(q, pattern, flags & SW_SEARCH_ICASE);
  return SW_OK;
bad:
  sw_search_query_free(q);
  return SW_EINVAL;
}

void sw_search_query_free(struct sw_search_query *q) {
  pcre2_code_free(q->re);
  pcre2_code_free(q->re_text);
  for (size_t i = 0; i < q->nlabels; i++) sw_label_match_free(&q->labels[i]);
  free(q->labels);
  free(q->pattern);
  memset(q, 0, sizeof *q);
}

int sw_search_query_label(struct sw_search_query *q, const char *spec, char *err, size_t errlen) {
  if (q->nlabels >= SW_SEARCH_MAX_LABELS) {
    snprintf(err, errlen, "at most %d label matchers", SW_SEARCH_MAX_LABELS);
    return SW_EINVAL;
  }
  void *grown = realloc(q->labels, (q->nlabels + 1) * sizeof *q->labels);
  if (!grown) return SW_ENOMEM;
  q->labels = grown;
  int rc = sw_label_match_parse(&q->labels[q->nlabels], spec, err, errlen);
  if (!rc) q->nlabels++;
  return rc;
}

int sw_search_query_stream(struct sw_search_query *q, const char *name) {
  static const char *const names[] = {"stdout", "stderr", "file"};
  unsigned bit = 0;
  for (unsigned i = 0; i < 3; i++)
    if (!strcmp(name, names[i])) bit = 1u << i;
  if (!bit) return SW_EINVAL;
  /* The first --stream replaces "all streams"; later ones add to it. */
  q->streams = (q->streams == 7 ? 0 : q->streams) | bit;
  return SW_OK;
}

int sw_search_parse_time(const char *s, int64_t now_ns, int64_t *ns) {
  if (sw_time_parse_rfc3339(s, strlen(s), ns) == SW_OK) return SW_OK;
  uint64_t ms;
  if (sw_parse_duration(s, &ms) != SW_OK || ms > (uint64_t)INT64_MAX / 1000000) return SW_EINVAL;
  *ns = now_ns - (int64_t)ms * 1000000;
  return SW_OK;
}

int sw_search_labels_plan(const struct sw_search_query *q, const char *labels_json, uint64_t *deferred) {
  return sw_label_match_chunk(q->labels, q->nlabels, labels_json, q->xknown ? q->xmask : ~0ull, deferred);
}

/* Whether some source of cfg extracts label `key`. */
static int extracted_anywhere(const struct sw_config *cfg, const char *key) {
  for (size_t i = 0; i < cfg->nsources; i++) {
    struct sw_extract_spec sp;
    if (sw_process_extract_spec(&cfg->sources[i].extract, &sp) != SW_OK) return 1; /* cannot tell: it may */
    int hit = 0;
    for (size_t k = 0; k < sp.n; k++) hit |= !strcmp(sp.name[k], key);
    pcre2_code_free(sp.re);
    if (hit) return 1;
  }
  return 0;
}

void sw_search_query_extractable(struct sw_search_query *q, const struct sw_config *cfg) {
  if (!cfg) return;
  q->xknown = 1;
  q->xmask = 0;
  for (size_t i = 0; i < q->nlabels; i++)
    if (extracted_anywhere(cfg, q->labels[i].key)) q->xmask |= 1ull << i;
}

/* The deferred matchers on a record's own labels (a missing one is ""). */
static int rec_labels_ok(const struct sw_search_query *q, struct sw_search_scratch *s,
                         const struct sw_search_rec *r) {
  return sw_label_match_record(q->labels, q->nlabels, s->deferred, r->xl, r->xl_len, s->lmd);
}

int sw_search_scratch_init(struct sw_search_scratch *s, const struct sw_search_query *q) {
  memset(s, 0, sizeof *s);
  s->md = pcre2_match_data_create_from_pattern(q->re, NULL);
  if (q->re_text) s->md_text = pcre2_match_data_create_from_pattern(q->re_text, NULL);
  s->lmd = sw_label_match_md();
  if (!s->md || (q->re_text && !s->md_text) || !s->lmd) {
    sw_search_scratch_free(s);
    return SW_ENOMEM;
  }
  return SW_OK;
}

void sw_search_scratch_free(struct sw_search_scratch *s) {
  pcre2_match_data_free(s->md);
  pcre2_match_data_free(s->md_text);
  sw_label_match_md_free(s->lmd);
  free(s->recs);
  memset(s, 0, sizeof *s);
}

/* PCRE2's answers that mean "gave up on this subject" rather than "broken": the regex needs
 * more backtracking than the limits allow on this record (e.g. (a+)+$ over "aaaa...b"). */
static int gave_up(int rc) {
  return rc == PCRE2_ERROR_MATCHLIMIT || rc == PCRE2_ERROR_DEPTHLIMIT ||
         rc == PCRE2_ERROR_HEAPLIMIT || rc == PCRE2_ERROR_JIT_STACKLIMIT;
}

/* 1 match, 0 no match, <0 error. A record the regex gives up on is counted in
 * s->limit_skipped and treated as not matching: one pathological record must not cost the
 * answer for all the others. */
static int match_record(const struct sw_search_query *q, struct sw_search_scratch *s,
                        const char *line, size_t len) {
  int rc = pcre2_match(q->re, (PCRE2_SPTR)line, len, 0, 0, s->md, NULL);
  if (rc >= 0) return 1;
  if (rc == PCRE2_ERROR_NOMATCH) return 0;
  if (gave_up(rc)) {
    s->limit_skipped++;
    return 0;
  }
  return SW_EAGAIN; /* any other failure: the answer is unknown, say so */
}

static int wanted(const struct sw_search_query *q, struct sw_search_scratch *s,
                  const struct sw_search_rec *r) {
  return r->ts >= q->since && r->ts < q->until && (q->streams >> (r->stream & 3) & 1) &&
         (!s->deferred || rec_labels_ok(q, s, r));
}

static int emit(const struct sw_search_rec *r, const char *text,
                int (*hit)(void *, const struct sw_record_view *), void *arg) {
  struct sw_record_view v = {.ts_ns = r->ts, .stream = r->stream, .flags = r->flags,
                             .line = text + r->off, .len = r->len, .xl = r->xl, .xl_len = r->xl_len};
  return hit(arg, &v);
}

/* Records [from, n) one by one. */
static int by_record(const struct sw_search_query *q, struct sw_search_scratch *s,
                     const char *text, size_t from, size_t n,
                     int (*hit)(void *, const struct sw_record_view *), void *arg) {
  for (size_t i = from; i < n; i++) {
    if (!wanted(q, s, &s->recs[i])) continue;
    int m = match_record(q, s, text + s->recs[i].off, s->recs[i].len);
    if (m < 0) return m;
    int rc = m ? emit(&s->recs[i], text, hit, arg) : 0;
    if (rc) return rc;
  }
  return SW_OK;
}

int sw_search_chunk(const struct sw_search_query *q, struct sw_search_scratch *s, const void *raw,
                    size_t len, int (*hit)(void *, const struct sw_record_view *), void *arg) {
  struct sw_chunk_iter it;
  uint64_t count;
  int rc = sw_chunk_iter_init(&it, raw, len, &count);
  if (rc) return rc;
  if (count > (uint64_t)(it.text_end - it.text)) return SW_ECORRUPT;
  if (count > s->cap) {
    void *grown = realloc(s->recs, count * sizeof *s->recs);
    if (!grown) return SW_ENOMEM;
    s->recs = grown;
    s->cap = count;
  }
  const char *text = it.text, *end = it.text_end;
  size_t n = 0;
  struct sw_record_view v;
  while ((rc = sw_chunk_iter_next(&it, &v)) == 1) {
    if (v.line[v.len] != '\n') return SW_ECORRUPT;
    s->recs[n++] = (struct sw_search_rec){.ts = v.ts_ns, .off = (size_t)(v.line - text), .len = v.len,
                                          .stream = (uint8_t)v.stream, .flags = (uint8_t)v.flags,
                                          .xl = v.xl, .xl_len = v.xl_len};
  }
  if (rc < 0) return rc;
  if (n != count) return SW_ECORRUPT;

  if (!q->re_text) return by_record(q, s, text, 0, n, hit, arg);
  /* One pass over the whole text section; a hit is mapped to its record by binary search. */
  size_t tlen = (size_t)(end - text), start = 0, lo = 0;
  while (lo < n) {
    int m = pcre2_match(q->re_text, (PCRE2_SPTR)text, tlen, start, 0, s->md_text, NULL);
    if (m == PCRE2_ERROR_NOMATCH) break;
    /* Gave up somewhere in the rest of the text: which record is to blame is unknown, so
     * the rest is matched record by record, where each such record is counted and skipped. */
    if (gave_up(m)) return by_record(q, s, text, lo, n, hit, arg);
    if (m < 0) return SW_EAGAIN;
    PCRE2_SIZE *ov = pcre2_get_ovector_pointer(s->md_text);
    size_t at = ov[0], mend = ov[1];
    size_t a = lo, b = n; /* last record with off <= at */
    while (b - a > 1) {
      size_t mid = a + (b - a) / 2;
      if (s->recs[mid].off <= at) a = mid; else b = mid;
    }
    const struct sw_search_rec *r = &s->recs[a];
    if (at > r->off + r->len) break; /* an empty match after the last record's newline */
    if (wanted(q, s, r)) {
      int ok = 1;
      if (q->confirm || mend > r->off + r->len) {
        ok = match_record(q, s, text + r->off, r->len);
        if (ok < 0) return ok;
      }
      if (ok && (rc = emit(r, text, hit, arg))) return rc;
    }
    lo = a + 1;
    if (lo < n) start = s->recs[lo].off;
  }
  return SW_OK;
}
