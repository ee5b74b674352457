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

int sw_gzip_keep_wire(struct sw_buf *body, struct sw_buf *wire, int *gone) {
  sw_buf_reset(wire);
  int rc = sw_gzip(body->data, body->len, 1, wire);
  if (rc) return rc;
  sw_buf_free(body);
  sw_buf_shrink(wire, wire->len); /* it was sized for the worst case, about the body's size */
  *gone = 1;
  return SW_OK;
}

int sw_body_restore(struct sw_buf *body, const struct sw_buf *wire, int *gone) {
  if (!*gone) return SW_OK;
  if (wire->len < 18) return SW_ECORRUPT;
  const uint8_t *t = (const uint8_t *)wire->data + wire->len - 4; /* ISIZE: size mod 2^32 */
  size_t size = (size_t)t[0] | (size_t)t[1] << 8 | (size_t)t[2] << 16 | (size_t)t[3] << 24;
  struct libdeflate_decompressor *d = libdeflate_alloc_decompressor();
  if (!d) return SW_ENOMEM;
  sw_buf_reset(body);
  int rc = sw_buf_reserve(body, size);
  size_t got = 0;
  if (!rc && libdeflate_gzip_decompress(d, wire->data, wire->len, body->data, size, &got) != LIBDEFLATE_SUCCESS)
    rc = SW_ECORRUPT;
  libdeflate_free_decompressor(d);
  if (rc) return rc;
  body->len = got;
  *gone = 0;
  return SW_OK;
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
