/* strmap.h - a string -> counter map for agent/process/ (log-metric series, rate-limit
 * buckets): open addressing over entry indices, keys copied, bounded by the caller. Private to
 * agent/process/; pure. */
#ifndef SW_PROCESS_STRMAP_H
#define SW_PROCESS_STRMAP_H

#include <stddef.h>
#include <stdint.h>

struct sw__strmap_entry {
  char *key; /* values joined by '\x1f' */
  size_t klen;
  uint64_t hash;
  uint64_t count;  /* series: records; bucket: tokens in 1e-9 records */
  int64_t last_ts; /* bucket clock */
};

struct sw__strmap {
  struct sw__strmap_entry *e;
  size_t n, cap;
  uint32_t *idx; /* index + 1, 0 empty */
  size_t icap;
};

void sw__strmap_free(struct sw__strmap *m);
/* The entry of key, or NULL (out of memory, or a new key while the map holds `max`); *fresh
 * is set when it was just made. */
struct sw__strmap_entry *sw__strmap_get(struct sw__strmap *m, const char *key, size_t klen, size_t max,
                                        int *fresh);

#endif
