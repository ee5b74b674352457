/* query.h - what `spillway search` and GET /api/v1/search look for, and the matcher that
 * applies it to one decompressed chunk. Pure: no I/O, no threads (each scanning thread owns a
 * struct sw_search_scratch), so it is fuzzable.
 *
 * Semantics (they mirror grep over the source files, one record = one "line"):
 *  - the regex (PCRE2, UTF with invalid bytes allowed) is matched against each record's text;
 *    `^` and `$` are the record's start and end;
 *  - since <= ts < until (nanoseconds; open ends are INT64_MIN / INT64_MAX);
 *  - stream in the stream mask; every label matcher holds (a missing label is "").
 *
 * Speed: a chunk's text section is one buffer with '\n' after each record, so most patterns
 * run ONE regex pass over the whole section (multiline mode) and a hit is mapped back to its
 * record and, when the pattern could see past a record's edges, confirmed on the record alone.
 * Patterns whose meaning depends on what lies beyond the record (lookaround, \A \z \Z \G,
 * verbs) are matched record by record instead, so no match is ever missed.
 */
#ifndef SW_SEARCH_QUERY_H
#define SW_SEARCH_QUERY_H

#include <stddef.h>
#include <stdint.h>

#include "../agent/buffer/chunk.h"
#include "../common/error.h"
#include "../parsers/labelmatch.h"

#define SW_SEARCH_MAX_LABELS 64

struct sw_search_query {
  char *pattern;
  void *re;       /* per record */
  void *re_text;  /* the whole text section, multiline; NULL: record by record only */
  int confirm;    /* a whole-text hit inside a record still needs the per-record check */
  int64_t since, until;
  unsigned streams; /* bit (1 << SW_STREAM_*) per accepted stream */
  struct sw_label_match *labels;
  size_t nlabels;
  int xknown;     /* sw_search_query_extractable was called */
  uint64_t xmask; /* matchers on a label some source extracts */
  uint32_t grams[64]; /* trigrams of literals every match must contain (see query.c) */
  size_t ngrams;
};

enum { SW_SEARCH_ICASE = 1 };

/* Compiles pattern. err gets "PCRE2 message at offset N" on a bad pattern (SW_EINVAL). */
int sw_search_query_init(struct sw_search_query *q, const char *pattern, int flags, char *err,
                         size_t errlen) SW_MUST_CHECK;
void sw_search_query_free(struct sw_search_query *q);

/* "k=v", "k!=v", "k=~re", "k!~re". */
int sw_search_query_label(struct sw_search_query *q, const char *spec, char *err,
                          size_t errlen) SW_MUST_CHECK;
/* Call after the labels: the label names the sources of cfg extract (agent/config/config.h).
 * Without it (a copied database searched with --db), every matcher on a label a chunk's set
 * lacks is left to the records. Chunks written while another configuration extracted a label
 * this one does not are then decided by their file's labels alone. */
struct sw_config;
void sw_search_query_extractable(struct sw_search_query *q, const struct sw_config *cfg);
/* "stdout", "stderr" or "file"; several calls accumulate. */
int sw_search_query_stream(struct sw_search_query *q, const char *name) SW_MUST_CHECK;

/* A time bound: RFC 3339, or a duration before now ("90s", "15m", "1h", "2d"). */
int sw_search_parse_time(const char *s, int64_t now_ns, int64_t *ns) SW_MUST_CHECK;

/* Whether a chunk whose trigram filter (sw_chunk_grams; len 0: none) is `set` may hold a
 * match: 0 only when some required trigram is certainly absent. */
int sw_search_grams_match(const struct sw_search_query *q, const void *set, size_t len);

/* For planning, on a chunk's label set (a JSON object text): 0 when it rules the chunk out. Matchers on labels the chunk's set does
 * not have are left to each record's own labels (extracted ones): their bits go to *deferred,
 * which sw_search_chunk then checks per record (s->deferred) -- unless the configuration says
 * no source extracts that label (sw_search_query_extractable): then a missing label is "" here
 * and the chunk can be skipped without reading it. */
int sw_search_labels_plan(const struct sw_search_query *q, const char *labels_json, uint64_t *deferred);

/* Per-thread matching state. */
struct sw_search_scratch {
  void *md, *md_text; /* pcre2_match_data */
  uint64_t limit_skipped; /* records the regex gave up on (PCRE2 match/depth/heap/JIT stack
                             limit): counted here, never reported as matches; only grows */
  struct sw_search_rec *recs;
  size_t cap;
  uint64_t deferred; /* set before sw_search_chunk: matchers checked on each record's labels */
  void *lmd;         /* match data for those */
};
struct sw_search_rec {
  int64_t ts;
  size_t off, len; /* in the text section */
  uint8_t stream, flags;
  const char *xl; /* the record's own labels, NULL: none */
  size_t xl_len;
};
int sw_search_scratch_init(struct sw_search_scratch *s, const struct sw_search_query *q) SW_MUST_CHECK;
void sw_search_scratch_free(struct sw_search_scratch *s);

/* Calls hit(arg, rec) for each matching record of the raw chunk, in chunk order; hit returns
 * non-zero to stop (that value is returned). SW_ECORRUPT on a damaged chunk. A record on which
 * the regex hits a PCRE2 resource limit is skipped and counted in s->limit_skipped. */
int sw_search_chunk(const struct sw_search_query *q, struct sw_search_scratch *s, const void *raw,
                    size_t len, int (*hit)(void *arg, const struct sw_record_view *rec),
                    void *arg) SW_MUST_CHECK;

#endif
