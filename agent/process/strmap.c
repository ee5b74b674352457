/* strmap.c - see strmap.h. */
#include "strmap.h"

#include <stdlib.h>
#include <string.h>

#include "../../common/hash.h"

void sw__strmap_free(struct sw__strmap *m) {
  for (size_t i = 0; i < m->n; i++) free(m->e[i].key);
  free(m->e);
  free(m->idx);
  memset(m, 0, sizeof *m);
}

struct sw__strmap_entry *sw__strmap_get(struct sw__strmap *m, const char *key, size_t klen, size_t max,
                                        int *fresh) {
  uint64_t h = sw_fnv1a(SW_FNV1A_INIT, key, klen);
  *fresh = 0;
  if (m->icap) {
    for (size_t at = h & (m->icap - 1); m->idx[at]; at = (at + 1) & (m->icap - 1)) {
      struct sw__strmap_entry *x = &m->e[m->idx[at] - 1];
      if (x->hash == h && x->klen == klen && !memcmp(x->key, key, klen)) return x;
    }
  }
  if (m->n >= max) return NULL;
  if ((m->n + 1) * 2 > m->icap) {
    size_t nc = m->icap ? m->icap * 2 : 64;
    uint32_t *ni = calloc(nc, sizeof *ni);
    if (!ni) return NULL;
    for (size_t i = 0; i < m->n; i++) {
      size_t at = m->e[i].hash & (nc - 1);
      while (ni[at]) at = (at + 1) & (nc - 1);
      ni[at] = (uint32_t)i + 1;
    }
    free(m->idx);
    m->idx = ni;
    m->icap = nc;
  }
  if (m->n == m->cap) {
    size_t nc = m->cap ? m->cap * 2 : 16;
    struct sw__strmap_entry *ne = realloc(m->e, nc * sizeof *ne);
    if (!ne) return NULL;
    m->e = ne;
    m->cap = nc;
  }
  char *k = malloc(klen + 1);
  if (!k) return NULL;
  memcpy(k, key, klen);
  k[klen] = 0;
  size_t at = h & (m->icap - 1);
  while (m->idx[at]) at = (at + 1) & (m->icap - 1);
  m->idx[at] = (uint32_t)m->n + 1;
  m->e[m->n] = (struct sw__strmap_entry){.key = k, .klen = klen, .hash = h};
  *fresh = 1;
  return &m->e[m->n++];
}
