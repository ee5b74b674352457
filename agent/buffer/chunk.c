#include "chunk.h"

#include "../../common/hash.h"

#include <stdlib.h>
#include <string.h>
#include <zstd.h>

void sw_chunk_builder_init(struct sw_chunk_builder *cb, size_t max_bytes) {
  memset(cb, 0, sizeof *cb);
  sw_buf_init(&cb->meta, max_bytes / 2 + 4096);
  sw_buf_init(&cb->text, max_bytes + 4096);
  /* As much room as the text: a chunk of a million one-byte records needs an index byte or
   * two each. Memory is taken only when a record has labels of its own. */
  sw_buf_init(&cb->idx, max_bytes + 4096);
  sw_buf_init(&cb->sets, max_bytes + 4096);
  sw_buf_init(&cb->ends, max_bytes + 4096);
}

void sw_chunk_builder_free(struct sw_chunk_builder *cb) {
  sw_buf_free(&cb->meta);
  sw_buf_free(&cb->text);
  sw_buf_free(&cb->idx);
  sw_buf_free(&cb->sets);
  sw_buf_free(&cb->ends);
  free(cb->tab);
  cb->tab = NULL;
  cb->tab_cap = 0;
}

void sw_chunk_builder_reset(struct sw_chunk_builder *cb) {
  sw_buf_reset(&cb->meta);
  sw_buf_reset(&cb->text);
  if (cb->nsets) {
    sw_buf_free(&cb->idx);
    sw_buf_free(&cb->sets);
    sw_buf_free(&cb->ends);
    free(cb->tab);
    cb->tab = NULL;
    cb->tab_cap = cb->nsets = 0;
  }
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

static uint32_t set_end(const struct sw_chunk_builder *cb, uint32_t i) {
  uint32_t e;
  memcpy(&e, cb->ends.data + 4 * (size_t)i, 4);
  return e; /* written in host order by intern(); finish() writes little-endian */
}

static uint64_t set_hash(const char *s, size_t n) { return sw_fnv1a(SW_FNV1A_INIT, s, n); }

/* The index of set (xl, xlen) in the chunk's table, added if new. */
static int intern(struct sw_chunk_builder *cb, const char *xl, size_t xlen, uint32_t *out) {
  if (cb->nsets * 2 + 2 > cb->tab_cap) { /* grow and rehash */
    uint32_t nc = cb->tab_cap ? cb->tab_cap * 2 : 64;
    uint32_t *nt = calloc(nc, sizeof *nt);
    if (!nt) return SW_ENOMEM;
    for (uint32_t i = 0; i < cb->nsets; i++) {
      uint32_t from = i ? set_end(cb, i - 1) : 0;
      uint64_t h = set_hash(cb->sets.data + from, set_end(cb, i) - from);
      uint32_t at = (uint32_t)h & (nc - 1);
      while (nt[at]) at = (at + 1) & (nc - 1);
      nt[at] = i + 1;
    }
    free(cb->tab);
    cb->tab = nt;
    cb->tab_cap = nc;
  }
  uint32_t at = (uint32_t)set_hash(xl, xlen) & (cb->tab_cap - 1);
  for (; cb->tab[at]; at = (at + 1) & (cb->tab_cap - 1)) {
    uint32_t i = cb->tab[at] - 1, from = i ? set_end(cb, i - 1) : 0;
    if (set_end(cb, i) - from == xlen && !memcmp(cb->sets.data + from, xl, xlen)) {
      *out = i;
      return SW_OK;
    }
  }
  if (cb->sets.len + xlen > UINT32_MAX) return SW_ETOOBIG;
  int rc = sw_buf_append(&cb->sets, xl, xlen);
  uint32_t e = (uint32_t)cb->sets.len;
  if (!rc) rc = sw_buf_append(&cb->ends, &e, 4);
  if (rc) {
    cb->sets.len -= xlen;
    return rc;
  }
  cb->tab[at] = cb->nsets + 1;
  *out = cb->nsets++;
  return SW_OK;
}

int sw_chunk_add_x(struct sw_chunk_builder *cb, int64_t ts, int stream, int flags, const char *line,
                   size_t len, const char *xl, size_t xlen) {
  if (!xlen && !cb->nsets) return sw_chunk_add(cb, ts, stream, flags, line, len);
  size_t ilen = cb->idx.len;
  int rc = SW_OK;
  if (!cb->nsets) /* the first set: the records before it had none */
    for (uint32_t i = 0; !rc && i < cb->count; i++) rc = sw_buf_putc(&cb->idx, 0);
  uint32_t k = 0;
  if (!rc && xlen) {
    rc = intern(cb, xl, xlen, &k);
    k++;
  }
  if (!rc) rc = sw_buf_put_varint(&cb->idx, k);
  if (!rc) rc = sw_chunk_add(cb, ts, stream, flags, line, len);
  if (rc) cb->idx.len = ilen; /* an interned set stays: harmless */
  return rc;
}

int sw_chunk_finish(const struct sw_chunk_builder *cb, struct sw_buf *out) {
  int v2 = cb->nsets > 0;
  int rc = sw_buf_putc(out, v2 ? SW_CHUNK_VERSION_SETS : SW_CHUNK_VERSION);
  if (!rc) rc = sw_buf_put_varint(out, cb->count);
  if (!rc) rc = sw_buf_put_varint(out, cb->meta.len);
  if (!rc) rc = sw_buf_append(out, cb->meta.data, cb->meta.len);
  if (v2) {
    if (!rc) rc = sw_buf_put_varint(out, cb->idx.len);
    if (!rc) rc = sw_buf_append(out, cb->idx.data, cb->idx.len);
    if (!rc) rc = sw_buf_put_varint(out, cb->nsets);
    for (uint32_t i = 0; !rc && i < cb->nsets; i++) {
      uint32_t e = set_end(cb, i);
      uint8_t le[4] = {(uint8_t)e, (uint8_t)(e >> 8), (uint8_t)(e >> 16), (uint8_t)(e >> 24)};
      rc = sw_buf_append(out, le, 4);
    }
    if (!rc) rc = sw_buf_append(out, cb->sets.data, cb->sets.len);
  }
  if (!rc) rc = sw_buf_append(out, cb->text.data, cb->text.len);
  return rc;
}

int sw_chunk_iter_init(struct sw_chunk_iter *it, const void *raw, size_t len, uint64_t *count) {
  const uint8_t *p = raw, *end = p + len;
  uint64_t n, mlen;
  if (len < 1 || (p[0] != SW_CHUNK_VERSION && p[0] != SW_CHUNK_VERSION_SETS)) return SW_ECORRUPT;
  int v2 = *p++ == SW_CHUNK_VERSION_SETS;
  if (sw_get_varint(&p, end, &n) || sw_get_varint(&p, end, &mlen)) return SW_ECORRUPT;
  if (mlen > (uint64_t)(end - p)) return SW_ECORRUPT;
  it->meta = p;
  it->meta_end = p + mlen;
  p += mlen;
  it->idx = it->idx_end = it->ends = NULL;
  it->sets = NULL;
  it->nsets = 0;
  if (v2) {
    uint64_t ilen, ns;
    if (sw_get_varint(&p, end, &ilen) || ilen > (uint64_t)(end - p)) return SW_ECORRUPT;
    it->idx = p;
    it->idx_end = p + ilen;
    p += ilen;
    if (sw_get_varint(&p, end, &ns) || ns > (uint64_t)(end - p) / 4) return SW_ECORRUPT;
    it->ends = p;
    it->nsets = ns;
    p += 4 * ns;
    uint32_t last = 0;
    for (uint64_t i = 0; i < ns; i++) { /* ends must rise and stay inside the section */
      const uint8_t *e = it->ends + 4 * i;
      uint32_t v = (uint32_t)e[0] | (uint32_t)e[1] << 8 | (uint32_t)e[2] << 16 | (uint32_t)e[3] << 24;
      if (v < last) return SW_ECORRUPT;
      last = v;
    }
    if (last > (uint64_t)(end - p)) return SW_ECORRUPT;
    it->sets = (const char *)p;
    p += last;
  }
  it->text = (const char *)p;
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
  rec->xl = NULL;
  rec->xl_len = 0;
  if (it->idx) {
    uint64_t k;
    if (sw_get_varint(&it->idx, it->idx_end, &k) || k > it->nsets) return SW_ECORRUPT;
    if (k) {
      const uint8_t *e = it->ends + 4 * (k - 1);
      uint32_t to = (uint32_t)e[0] | (uint32_t)e[1] << 8 | (uint32_t)e[2] << 16 | (uint32_t)e[3] << 24;
      uint32_t from = 0;
      if (k > 1) {
        e -= 4;
        from = (uint32_t)e[0] | (uint32_t)e[1] << 8 | (uint32_t)e[2] << 16 | (uint32_t)e[3] << 24;
      }
      rec->xl = it->sets + from;
      rec->xl_len = to - from;
    }
  }
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
