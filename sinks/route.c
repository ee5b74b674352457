/* route.c - see route.h. */
#include "route.h"

#include <stdlib.h>
#include <string.h>

int sw_route_init(struct sw_route *r, char **match, size_t n) {
  memset(r, 0, sizeof *r);
  if (!n) return SW_OK;
  if (n > 64 || !(r->m = calloc(n, sizeof *r->m))) return n > 64 ? SW_EINVAL : SW_ENOMEM;
  for (size_t i = 0; i < n; i++) {
    char err[256];
    int rc = sw_label_match_parse(&r->m[i], match[i], err, sizeof err);
    if (rc) {
      sw_route_free(r);
      return rc;
    }
    r->n++;
  }
  return SW_OK;
}

void sw_route_free(struct sw_route *r) {
  for (size_t i = 0; i < r->n; i++) sw_label_match_free(&r->m[i]);
  free(r->m);
  memset(r, 0, sizeof *r);
}

int sw_route_chunk(const struct sw_route *r, const char *labels_json, struct sw_route_memo *memo) {
  memset(memo, 0, sizeof *memo);
  if (!r || !r->n) return SW_ROUTE_ALL;
  if (!sw_label_match_chunk(r->m, r->n, labels_json, ~0ull, &memo->deferred)) return SW_ROUTE_NONE;
  return memo->deferred ? SW_ROUTE_RECORDS : SW_ROUTE_ALL;
}

int sw_route_record(const struct sw_route *r, struct sw_route_memo *memo, const struct sw_record_view *rec) {
  if (memo->have && memo->xl == rec->xl) return memo->ok; /* the same set as the last record */
  memo->have = 1;
  memo->xl = rec->xl;
  memo->ok = sw_label_match_record(r->m, r->n, memo->deferred, rec->xl, rec->xl_len, NULL);
  return memo->ok;
}
