/* asearch.h - `spillway archive search`: the query of `spillway search` (search/query.h) over
 * archived objects, S3 ones or local compressed files, with hits in time order.
 *
 * Objects are fetched and scanned by `threads` workers, at most 2 x threads objects ahead of
 * the one being merged (memory: that many objects and their hits). Each object's lines are
 * grouped into chunks by label set and matched with the buffer search's matcher, so both
 * commands answer a query the same way. Hits stream out as soon as no object not yet merged
 * can hold an earlier one (objects are taken by the first time their manifest gives).
 */
#ifndef SW_ARCH_SEARCH_H
#define SW_ARCH_SEARCH_H

#include <stdint.h>

#include "../../search/search.h"
#include "catalog.h"

struct sw_arch_search_opts {
  unsigned threads;    /* 0: one per online CPU */
  uint64_t limit;      /* 0: no limit */
  int count_only;
  int (*emit)(void *arg, const struct sw_search_hit *h);
  void *arg;
};

struct sw_arch_search_stats {
  uint64_t objects, raw_bytes, records, matches, bad_lines;
  uint64_t failed;        /* objects that could not be fetched or failed their check: reported */
  uint64_t match_limit_skipped;
};

/* Searches cat's objects: S3 ones through s, or, with s NULL, local files (each object's
 * key a path to a file that retention wrote: plain, .gz or .zst, holding docker json-file,
 * CRI or plain lines; a line without a time of its own takes the file's modification time).
 * report(arg, key, why) is told about each object that could not be fetched, failed its
 * checksum or held lines that are not records. */
int sw_arch_search(struct sw_s3c *s, const struct sw_arch_catalog *cat, const struct sw_search_query *q,
                   const struct sw_arch_search_opts *o,
                   void (*report)(void *arg, const char *key, const char *why), void *report_arg,
                   struct sw_arch_search_stats *st, char *err, size_t errlen) SW_MUST_CHECK;

#endif
