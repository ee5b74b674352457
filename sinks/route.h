/* route.h - a sink's `match`: which records it receives. Pure.
 *
 * Decided per chunk where the chunk's labels (its file's) settle every matcher; matchers on
 * labels the chunk's set does not have are left to each record's own (extracted) labels, a
 * missing label being "" as in search. Extracted label names never repeat a file label's
 * (config check), so the two never disagree.
 */
#ifndef SW_ROUTE_H
#define SW_ROUTE_H

#include <stddef.h>
#include <stdint.h>

#include "../agent/buffer/chunk.h"
#include "../common/error.h"
#include "../parsers/labelmatch.h"

struct sw_route {
  struct sw_label_match *m;
  size_t n;
};

enum { SW_ROUTE_NONE = 0, SW_ROUTE_ALL = 1, SW_ROUTE_RECORDS = 2 };

/* Compiles match[n] (already validated by the config). */
int sw_route_init(struct sw_route *r, char **match, size_t n) SW_MUST_CHECK;
void sw_route_free(struct sw_route *r);

/* What to do with a chunk whose label set is labels_json: SW_ROUTE_*. Per-chunk state for the
 * records goes to *memo. */
struct sw_route_memo {
  uint64_t deferred; /* matchers left to the records */
  const char *xl;    /* the last record set decided (sets are stored once per chunk) */
  int have, ok;
};
int sw_route_chunk(const struct sw_route *r, const char *labels_json, struct sw_route_memo *memo);
/* SW_ROUTE_RECORDS: whether record rec goes to the sink. */
int sw_route_record(const struct sw_route *r, struct sw_route_memo *memo, const struct sw_record_view *rec);

#endif
