/* batch.c - helpers every network sink codec shares: dead letters and gzip. */
#include <stdlib.h>
#include <string.h>
#include <libdeflate.h>

#include "sink.h"

int sw_batch_dead(struct sw_batch *b, long status, const char *reason, size_t reason_len,
                  const void *payload, size_t len, const char *key, uint64_t records) {
  struct sw_sink_dead *na = realloc(b->dead, (b->ndead + 1) * sizeof *na);
  if (!na) return SW_ENOMEM;
  b->dead = na;
  struct sw_sink_dead *d = &na[b->ndead];
  memset(d, 0, sizeof *d);
  size_t n = 0; /* one line of the server's words, at most 300 bytes */
  while (n < reason_len && n < 300 && reason[n] != '\n' && reason[n] != '\r') n++;
  d->status = status;
  d->records = records;
  d->reason = strndup(reason ? reason : "", n);
  d->key = key ? strdup(key) : NULL;
  sw_buf_init(&d->payload, SIZE_MAX);
  int rc = !d->reason || (key && !d->key) ? SW_ENOMEM : sw_buf_append(&d->payload, payload, len);
  if (rc) {
    free(d->reason);
    free(d->key);
    sw_buf_free(&d->payload);
    return rc;
  }
  b->ndead++;
  return SW_OK;
}

void sw_batch_free_dead(struct sw_batch *b) {
  for (size_t i = 0; i < b->ndead; i++) {
    free(b->dead[i].reason);
    free(b->dead[i].key);
    sw_buf_free(&b->dead[i].payload);
  }
  free(b->dead);
  b->dead = NULL;
  b->ndead = 0;
}

int sw_gzip(const void *src, size_t n, int level, struct sw_buf *out) {
  /* libdeflate: whole-buffer deflate, 2-3x zlib's speed at level 1 with a better ratio. A
   * compressor is ~0.5 MiB; one per call keeps codecs free of per-thread state. */
  struct libdeflate_compressor *c = libdeflate_alloc_compressor(level);
  if (!c) return SW_ENOMEM;
  size_t bound = libdeflate_gzip_compress_bound(c, n);
  int rc = sw_buf_reserve(out, bound);
  if (!rc) {
    size_t w = libdeflate_gzip_compress(c, src, n, out->data + out->len, bound);
    if (w == 0) rc = SW_EIO;
    else out->len += w;
  }
  libdeflate_free_compressor(c);
  return rc;
}
