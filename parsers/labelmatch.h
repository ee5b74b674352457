/* labelmatch.h - label matchers as `spillway search --label`, filters, routes and log metrics
 * write them: "k=v", "k!=v", "k=~re", "k!~re". A missing label is "" (as in PromQL), regexes
 * are anchored at both ends. Pure: no I/O.
 */
#ifndef SW_LABELMATCH_H
#define SW_LABELMATCH_H

#include <stddef.h>
#include <stdint.h>

#include "../common/error.h"

enum sw_label_op { SW_LABEL_EQ, SW_LABEL_NE, SW_LABEL_RE, SW_LABEL_NRE };

struct sw_label_match {
  char *key, *value;
  enum sw_label_op op;
  void *re; /* pcre2_code for =~ and !~ */
};

/* Parses spec into *m. SW_EINVAL with err "label matcher \"SPEC\": reason", or SW_ENOMEM. */
int sw_label_match_parse(struct sw_label_match *m, const char *spec, char *err,
                         size_t errlen) SW_MUST_CHECK;
void sw_label_match_free(struct sw_label_match *m);
/* Whether the label's value s (len bytes; NULL: the label is missing) satisfies m. md: a
 * pcre2_match_data of the calling thread (sw_label_match_md), or NULL: a temporary one. */
int sw_label_match_test(const struct sw_label_match *m, const char *s, size_t len, void *md);
/* Match data big enough for every regex matcher (one per thread); NULL on ENOMEM. Free with
 * sw_label_match_md_free. */
void *sw_label_match_md(void);
void sw_label_match_md_free(void *md);

/* Matchers m[n] (at most 64) on a chunk's label set (labels_json): 0 when it fails one. A
 * matcher on a label the set lacks is, when its bit is in may_defer, left to each record's own
 * labels (its bit goes to *deferred); otherwise it is decided with "". Search and routes. */
int sw_label_match_chunk(const struct sw_label_match *m, size_t n, const char *labels_json,
                         uint64_t may_defer, uint64_t *deferred);
/* The deferred matchers (bits of `deferred`) on a record's own label set (xl, NULL: none; a
 * missing label is ""); md as for sw_label_match_test. */
int sw_label_match_record(const struct sw_label_match *m, size_t n, uint64_t deferred, const char *xl,
                          size_t xl_len, void *md);

/* The value of `key` in a flat JSON object of strings (a label set as stored: {"k":"v",...}),
 * decoded into out (cap bytes; a longer value is cut). Returns its length, or -1 when the key
 * is absent (or json is NULL). Pure; no allocation. */
long sw_label_lookup(const char *json, size_t len, const char *key, char *out, size_t cap);
/* Calls fn(arg, key, value) for each member of such an object, decoded (NUL-terminated,
 * cut at cap bytes); stops at fn's non-zero return, which is returned. */
int sw_label_each(const char *json, size_t len, int (*fn)(void *arg, const char *k, const char *v),
                  void *arg);

#endif
