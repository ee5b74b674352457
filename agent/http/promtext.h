/* promtext.h - a writer for the Prometheus text exposition format (version 0.0.4).
 *
 * Pure: builds text into a caller's bounded sw_buf, no I/O. What it guarantees, so that a scrape
 * is always valid whatever the data (file paths, rule names, sink names are user input):
 *  - metric and label names are checked ([a-zA-Z_:][a-zA-Z0-9_:]* / [a-zA-Z_][a-zA-Z0-9_]*,
 *    no "__" label prefix); a bad name is a programming error: SW_EINVAL;
 *  - label values are escaped (\ " and newline), HELP text too (\ and newline);
 *  - each family is written once, with its # HELP and # TYPE lines before its samples
 *    (a second family of the same name: SW_EINVAL);
 *  - a series (name + suffix + labels) written twice is dropped the second time and counted in
 *    `duplicates`, so two files that report the same path cannot make the scrape invalid.
 * Errors are sticky: the first one is kept and every later call does nothing, so a caller
 * writes its whole exposition and checks sw_prom_finish() once.
 */
#ifndef SW_PROMTEXT_H
#define SW_PROMTEXT_H

#include <stddef.h>
#include <stdint.h>

#include "../../common/buf.h"
#include "../../common/error.h"

enum sw_prom_type { SW_PROM_COUNTER, SW_PROM_GAUGE, SW_PROM_HISTOGRAM };

struct sw_prom_label {
  const char *name, *value;
};

struct sw_prom {
  struct sw_buf *out; /* borrowed */
  char family[128];
  enum sw_prom_type type;
  uint64_t *seen; /* open-addressing set of series and family hashes (0 = empty) */
  size_t nseen, cap;
  size_t duplicates;
  int err;
};

/* out is borrowed and appended to; its cap bounds the exposition (SW_ETOOBIG past it). */
void sw_prom_init(struct sw_prom *p, struct sw_buf *out);
/* Frees the series set (not out). */
void sw_prom_free(struct sw_prom *p);
/* Starts family `name` (a counter's name ends in _total; the caller's duty). */
void sw_prom_family(struct sw_prom *p, const char *name, enum sw_prom_type type, const char *help);
/* A sample of the current family: its name plus suffix ("" or, for histograms, "_bucket",
 * "_sum", "_count"), n labels (borrowed strings; none may be NULL). */
void sw_prom_sample(struct sw_prom *p, const char *suffix, const struct sw_prom_label *labels,
                    size_t n, double v);
/* Same with an exact integer value (doubles lose integers above 2^53). */
void sw_prom_sample_u64(struct sw_prom *p, const char *suffix, const struct sw_prom_label *labels,
                        size_t n, uint64_t v);
/* Cumulative histogram from per-bucket counts: counts[nb] is the +Inf bucket (not cumulative
 * input, as sw_http_stats keeps it). */
void sw_prom_histogram(struct sw_prom *p, const struct sw_prom_label *labels, size_t n,
                       const double *bounds, const uint64_t *counts, size_t nb, double sum);
/* The first error, or SW_OK. */
int sw_prom_finish(const struct sw_prom *p) SW_MUST_CHECK;

/* ---- reading it back (`spillway status` reads the agent's /metrics) ---- */
#define SW_PROM_MAX_LABELS 8
struct sw_prom_parsed {
  const char *name;
  struct sw_prom_label labels[SW_PROM_MAX_LABELS];
  size_t nlabels;
  double value;
};
/* Parses one line of an exposition in place (label values are unescaped inside `line`; the
 * pointers point into it). Returns 0 for a sample, 1 for a comment or blank line, SW_EPARSE for
 * anything else (more than SW_PROM_MAX_LABELS labels included). */
int sw_prom_parse_line(char *line, struct sw_prom_parsed *out) SW_MUST_CHECK;
/* The value of label `name`, or NULL. */
const char *sw_prom_label_value(const struct sw_prom_parsed *s, const char *name);

#endif
