/* extract.h - labels lifted out of a record's payload (a source's `extract`).
 *
 *   json:   fields name -> path; a path is dotted ("trace.id" is the member "id" of the object
 *           "trace"); a string value is decoded, a number/true/false is taken as written, an
 *           object or array as its JSON text, null or a missing member gives no label.
 *   logfmt: fields name -> key; the first pair with that key.
 *   regex:  every named group of the pattern that took part in the match is a label.
 * Values are cut to SW_EXTRACT_MAX_VALUE bytes. With normalize_level, the label `level` is
 * mapped to debug|info|warning|error|critical (WARN, warning, W, Err, FATAL, 4 ... see
 * sw_extract_level); a value it does not know stays as it is. Pure: no I/O, no allocation.
 */
#ifndef SW_EXTRACT_H
#define SW_EXTRACT_H

#include <stddef.h>

#include "../common/error.h"

#define SW_EXTRACT_MAX_FIELDS 16
#define SW_EXTRACT_MAX_VALUE 1024

enum sw_extract_format { SW_EXTRACT_JSON = 0, SW_EXTRACT_LOGFMT = 1, SW_EXTRACT_REGEX = 2 };

struct sw_extract_spec {
  enum sw_extract_format format;
  size_t n;                                     /* fields (regex: named groups) */
  const char *name[SW_EXTRACT_MAX_FIELDS];      /* label names */
  const char *path[SW_EXTRACT_MAX_FIELDS];      /* json path / logfmt key; regex: unused */
  unsigned group[SW_EXTRACT_MAX_FIELDS];        /* regex: capture group number */
  void *re;                                     /* regex: pcre2_code */
  int level_at;                                 /* index of the field named level, or -1 */
  int normalize_level;
};

struct sw_extract_out {
  const char *v[SW_EXTRACT_MAX_FIELDS]; /* NULL: no value */
  size_t len[SW_EXTRACT_MAX_FIELDS];
  size_t found;                         /* fields with a value */
  char buf[SW_EXTRACT_MAX_FIELDS * (SW_EXTRACT_MAX_VALUE + 1)];
};

/* Fills out from line. md: a pcre2_match_data for the regex format (NULL otherwise). Lines that
 * do not parse give fewer (or no) values: never an error. */
void sw_extract(const struct sw_extract_spec *spec, const char *line, size_t len, void *md,
                struct sw_extract_out *out);

/* The normal name of a level value (s, n bytes), or NULL when it is not a known level. */
const char *sw_extract_level(const char *s, size_t n);

/* For the regex format: fills spec->n, name[] and group[] from the named groups of re (names
 * point into re). SW_EINVAL when there are none or more than SW_EXTRACT_MAX_FIELDS. */
int sw_extract_regex_names(struct sw_extract_spec *spec) SW_MUST_CHECK;

#endif
