#include "hot.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#include "chunk.h"
#include "internal.h"

struct entry {
  int64_t id;
  int refs; /* the cache's own reference counts as one while it is listed */
  struct sw_buf raw;
};

struct sw_hot {
  pthread_mutex_t mu;
  uint64_t max_bytes, bytes, hits, misses;
  struct entry **e; /* ascending ids: e[head .. head+n) in a ring of cap slots */
  size_t head, n, cap;
};

int sw_hot_new(uint64_t max_bytes, struct sw_hot **out) {
  struct sw_hot *h = calloc(1, sizeof *h);
  if (!h) return SW_ENOMEM;
  pthread_mutex_init(&h->mu, NULL);
  h->max_bytes = max_bytes;
  *out = h;
  return SW_OK;
}

static void unref(struct entry *e) {
  if (--e->refs) return;
  sw_buf_free(&e->raw);
  free(e);
}

static struct entry *at(const struct sw_hot *h, size_t i) { return h->e[(h->head + i) % h->cap]; }

static void pop_oldest(struct sw_hot *h) {
  struct entry *e = h->e[h->head];
  h->head = (h->head + 1) % h->cap;
  h->n--;
  h->bytes -= e->raw.cap;
  unref(e);
}

void sw_hot_free(struct sw_hot *h) {
  if (!h) return;
  while (h->n) pop_oldest(h);
  free(h->e);
  pthread_mutex_destroy(&h->mu);
  free(h);
}

static int grow(struct sw_hot *h) {
  size_t nc = h->cap ? h->cap * 2 : 16;
  struct entry **ne = malloc(nc * sizeof *ne);
  if (!ne) return SW_ENOMEM;
  for (size_t i = 0; i < h->n; i++) ne[i] = at(h, i);
  free(h->e);
  h->e = ne;
  h->cap = nc;
  h->head = 0;
  return SW_OK;
}

void sw_hot_put(struct sw_hot *h, int64_t id, struct sw_buf *raw) {
  if (!h || raw->cap > h->max_bytes) return;
  struct entry *e = malloc(sizeof *e);
  if (!e) return; /* a miss later, nothing more */
  pthread_mutex_lock(&h->mu);
  /* Ids only grow while the writer runs; anything else would break the binary search. */
  if ((h->n && at(h, h->n - 1)->id >= id) || (h->n == h->cap && grow(h))) {
    pthread_mutex_unlock(&h->mu);
    free(e);
    return;
  }
  e->id = id;
  e->refs = 1;
  e->raw = *raw;
  sw_buf_init(raw, raw->max);
  while (h->n && h->bytes + e->raw.cap > h->max_bytes) pop_oldest(h);
  h->e[(h->head + h->n) % h->cap] = e;
  h->n++;
  h->bytes += e->raw.cap;
  pthread_mutex_unlock(&h->mu);
}

void sw_hot_drop_upto(struct sw_hot *h, int64_t upto) {
  if (!h) return;
  pthread_mutex_lock(&h->mu);
  while (h->n && h->e[h->head]->id <= upto) pop_oldest(h);
  pthread_mutex_unlock(&h->mu);
}

void sw_hot_stats(struct sw_hot *h, uint64_t *bytes, uint64_t *hits, uint64_t *misses) {
  *bytes = *hits = *misses = 0;
  if (!h) return;
  pthread_mutex_lock(&h->mu);
  *bytes = h->bytes;
  *hits = h->hits;
  *misses = h->misses;
  pthread_mutex_unlock(&h->mu);
}

static struct entry *get(struct sw_hot *h, int64_t id) {
  struct entry *found = NULL;
  pthread_mutex_lock(&h->mu);
  size_t lo = 0, hi = h->n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (at(h, mid)->id < id) lo = mid + 1;
    else hi = mid;
  }
  if (lo < h->n && at(h, lo)->id == id) {
    found = at(h, lo);
    found->refs++;
    h->hits++;
  } else {
    h->misses++;
  }
  pthread_mutex_unlock(&h->mu);
  return found;
}

static void release(struct sw_chunk_reader *r) {
  if (!r->held) return;
  pthread_mutex_lock(&r->hot->mu);
  unref(r->held);
  pthread_mutex_unlock(&r->hot->mu);
  r->held = NULL;
}

void sw_chunk_reader_init(struct sw_chunk_reader *r, struct sw_hot *hot) {
  memset(r, 0, sizeof *r);
  r->hot = hot;
  sw_buf_init(&r->raw, SIZE_MAX);
}

void sw_chunk_reader_idle(struct sw_chunk_reader *r) {
  release(r);
  sw_buf_shrink(&r->raw, 0);
}

void sw_chunk_reader_free(struct sw_chunk_reader *r) {
  release(r);
  sw_buf_free(&r->raw);
  ZSTD_freeDCtx(r->dctx);
  r->dctx = NULL;
}

int sw_chunk_reader_get(struct sw_chunk_reader *r, struct sw_db *db, const struct sw_chunk_row *row,
                        const char **raw, size_t *len) {
  release(r);
  struct entry *e = r->hot ? get(r->hot, row->id) : NULL;
  if (e) {
    r->held = e;
    *raw = e->raw.data;
    *len = e->raw.len;
    return SW_OK;
  }
  if (!r->dctx && !(r->dctx = ZSTD_createDCtx())) return SW_ENOMEM;
  sw_buf_reset(&r->raw);
  int rc;
  if (row->data) {
    rc = sw_chunk_decompress(r->dctx, row->data, row->len, &r->raw);
  } else {
    /* Decompressed straight from SQLite's copy of the blob: no intermediate buffer. */
    const void *blob;
    size_t n;
    rc = sw__db_chunk_blob(db, row->id, &blob, &n);
    if (!rc) rc = sw_chunk_decompress(r->dctx, blob, n, &r->raw);
    sw__db_chunk_blob_done(db);
  }
  if (rc) return rc;
  *raw = r->raw.data;
  *len = r->raw.len;
  return SW_OK;
}
