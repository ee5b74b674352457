/* labelmatch.h - label matchers as `spillway search --label`, filters, routes and log metrics
 * write them: "k=v", "k!=v", "k=~re", "k!~re". A missing label is "" (as in PromQL), regexes
 * are anchored at both ends. Pure: no I/O.
 */
#ifndef SW_LABELMATCH_H
#define SW_LABELMATCH_H

#include <stddef.h>

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

/* The value of `key` in a flat JSON object of strings (a label set as stored: {"k":"v",...}),
 * decoded into out (cap bytes; a longer value is cut). Returns its length, or -1 when the key
 * is absent (or json is NULL). Pure; no allocation. */
long sw_label_lookup(const char *json, size_t len, const char *key, char *out, size_t cap);
/* Calls fn(arg, key, value) for each member of such an object, decoded (NUL-terminated,
 * cut at cap bytes); stops at fn's non-zero return, which is returned. */
int sw_label_each(const char *json, size_t len, int (*fn)(void *arg, const char *k, const char *v),
                  void *arg);

#endif
