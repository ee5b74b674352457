#include "chunk.h"

#include <string.h>
#include <zstd.h>

void sw_chunk_builder_init(struct sw_chunk_builder *cb, size_t max_bytes) {
  memset(cb, 0, sizeof *cb);
  sw_buf_init(&cb->meta, max_bytes / 2 + 4096);
  sw_buf_init(&cb->text, max_bytes + 4096);
}

void sw_chunk_builder_free(struct sw_chunk_builder *cb) {
  sw_buf_free(&cb->meta);
  sw_buf_free(&cb->text);
}

void sw_chunk_builder_reset(struct sw_chunk_builder *cb) {
  sw_buf_reset(&cb->meta);
  sw_buf_reset(&cb->text);
  cb->count = 0;
  cb->ts_min = cb->ts_max = cb->prev_ts = 0;
  cb->parse_errors = cb->truncated = 0;
}

static uint64_t zigzag(int64_t v) { return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63); }
static int64_t unzigzag(uint64_t v) { return (int64_t)(v >> 1) ^ -(int64_t)(v & 1); }

int sw_chunk_add(struct sw_chunk_builder *cb, int64_t ts, int stream, int flags, const char *line,
                 size_t len) {
  size_t mlen = cb->meta.len, tlen = cb->text.len;
  int rc = sw_buf_put_varint(&cb->meta, zigzag((int64_t)((uint64_t)ts - (uint64_t)cb->prev_ts)));
  if (!rc) rc = sw_buf_putc(&cb->meta, (char)((stream & 3) | (flags << 2)));
  if (!rc) rc = sw_buf_put_varint(&cb->meta, len);
  if (!rc) rc = sw_buf_reserve(&cb->text, len + 1);
  if (rc) {
    cb->meta.len = mlen;
    cb->text.len = tlen;
    return rc;
  }
  memcpy(cb->text.data + cb->text.len, line, len);
  cb->text.len += len;
  cb->text.data[cb->text.len++] = '\n';
  if (cb->count == 0 || ts < cb->ts_min) cb->ts_min = ts;
  if (cb->count == 0 || ts > cb->ts_max) cb->ts_max = ts;
  cb->prev_ts = ts;
  cb->count++;
  return SW_OK;
}

int sw_chunk_finish(const struct sw_chunk_builder *cb, struct sw_buf *out) {
  int rc = sw_buf_putc(out, SW_CHUNK_VERSION);
  if (!rc) rc = sw_buf_put_varint(out, cb->count);
  if (!rc) rc = sw_buf_put_varint(out, cb->meta.len);
  if (!rc) rc = sw_buf_append(out, cb->meta.data, cb->meta.len);
  if (!rc) rc = sw_buf_append(out, cb->text.data, cb->text.len);
  return rc;
}

int sw_chunk_iter_init(struct sw_chunk_iter *it, const void *raw, size_t len, uint64_t *count) {
  const uint8_t *p = raw, *end = p + len;
  uint64_t n, mlen;
  if (len < 1 || p[0] != SW_CHUNK_VERSION) return SW_ECORRUPT;
  p++;
  if (sw_get_varint(&p, end, &n) || sw_get_varint(&p, end, &mlen)) return SW_ECORRUPT;
  if (mlen > (uint64_t)(end - p)) return SW_ECORRUPT;
  it->meta = p;
  it->meta_end = p + mlen;
  it->text = (const char *)(p + mlen);
  it->text_end = (const char *)end;
  it->left = n;
  it->prev_ts = 0;
  if (count) *count = n;
  return SW_OK;
}

int sw_chunk_iter_next(struct sw_chunk_iter *it, struct sw_record_view *rec) {
  if (it->left == 0) return 0;
  uint64_t dz, len;
  if (sw_get_varint(&it->meta, it->meta_end, &dz)) return SW_ECORRUPT;
  if (it->meta >= it->meta_end) return SW_ECORRUPT;
  uint8_t sf = *it->meta++;
  if (sw_get_varint(&it->meta, it->meta_end, &len)) return SW_ECORRUPT;
  if (len >= (uint64_t)(it->text_end - it->text)) return SW_ECORRUPT;
  it->prev_ts = (int64_t)((uint64_t)it->prev_ts + (uint64_t)unzigzag(dz));
  rec->ts_ns = it->prev_ts;
  rec->stream = sf & 3;
  rec->flags = sf >> 2;
  rec->line = it->text;
  rec->len = (size_t)len;
  it->text += len + 1;
  it->left--;
  return 1;
}

int sw_chunk_grams(const void *raw, size_t len, struct sw_buf *out) {
  struct sw_chunk_iter it;
  int rc = sw_chunk_iter_init(&it, raw, len, NULL);
  if (rc) return rc;
  const uint8_t *t = (const uint8_t *)it.text, *end = (const uint8_t *)it.text_end;
  size_t n = (size_t)(end - t);
  if (n < 4096) return SW_OK;
  uint32_t bits = 1u << 13;
  while (bits < n && bits < (1u << 16)) bits <<= 1;
  if ((rc = sw_buf_reserve(out, bits / 8))) return rc;
  uint8_t *set = (uint8_t *)out->data + out->len;
  memset(set, 0, bits / 8);
  /* Each position loads its own trigram (no value rolled along the text), and log text
   * repeats, so most bits are set already and need no store. */
  uint32_t mask = bits - 1;
  size_t i = 0;
  for (; i + 4 <= n; i++) {
    uint32_t w;
    memcpy(&w, t + i, 4);
    uint32_t b = sw_chunk_gram_bit(sw_chunk_gram_le(w), bits) & mask;
    uint8_t m = (uint8_t)(1u << (b & 7));
    if (!(set[b >> 3] & m)) set[b >> 3] |= m;
  }
  for (; i + 3 <= n; i++) {
    uint32_t b = sw_chunk_gram_bit(sw_chunk_gram(t + i), bits);
    set[b >> 3] |= (uint8_t)(1u << (b & 7));
  }
  out->len += bits / 8;
  return SW_OK;
}

int sw_chunk_compress(void *cctx, int level, int ldm, const void *src, size_t n, struct sw_buf *out) {
  size_t bound = ZSTD_compressBound(n);
  int rc = sw_buf_reserve(out, bound);
  if (rc) return rc;
  ZSTD_CCtx *c = cctx ? cctx : ZSTD_createCCtx();
  if (!c) return SW_ENOMEM;
  /* A content checksum (4 bytes) makes a damaged chunk fail to decode instead of decoding
   * into wrong records: search and the sinks report it rather than pass garbage on. */
  ZSTD_CCtx_reset(c, ZSTD_reset_session_and_parameters);
  ZSTD_CCtx_setParameter(c, ZSTD_c_compressionLevel, level);
  ZSTD_CCtx_setParameter(c, ZSTD_c_checksumFlag, 1);
  if (ldm) ZSTD_CCtx_setParameter(c, ZSTD_c_enableLongDistanceMatching, 1);
  size_t r = ZSTD_compress2(c, out->data + out->len, bound, src, n);
  if (!cctx) ZSTD_freeCCtx(c);
  if (ZSTD_isError(r)) return SW_EIO;
  out->len += r;
  return SW_OK;
}

int sw_chunk_decompress(void *dctx, const void *src, size_t n, struct sw_buf *out) {
  unsigned long long size = ZSTD_getFrameContentSize(src, n);
  /* Chunks are at most 64 MiB raw: a bigger size is a damaged header, not an allocation. */
  if (size == ZSTD_CONTENTSIZE_ERROR || size == ZSTD_CONTENTSIZE_UNKNOWN || size > (1ull << 30))
    return SW_ECORRUPT;
  int rc = sw_buf_reserve(out, (size_t)size);
  if (rc) return rc;
  size_t r;
  if (dctx)
    r = ZSTD_decompressDCtx(dctx, out->data + out->len, (size_t)size, src, n);
  else
    r = ZSTD_decompress(out->data + out->len, (size_t)size, src, n);
  if (ZSTD_isError(r) || r != size) return SW_ECORRUPT;
  out->len += r;
  return SW_OK;
}
