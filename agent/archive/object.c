#include "object.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "../../common/sha256.h"
#include "../../common/timefmt.h"

int sw_arch_check_bytes(const struct sw_arch_obj *o, const void *data, size_t n, char *why, size_t whylen) {
  if (!o->has_manifest) {
    snprintf(why, whylen, "%s", o->why);
    return SW_ENOTFOUND;
  }
  char hex[65];
  if (n != o->m.object_bytes) {
    snprintf(why, whylen, "object is %zu bytes, manifest says %" PRIu64, n, o->m.object_bytes);
    return SW_ECORRUPT;
  }
  sw_sha256_hex(data, n, hex);
  if (strcmp(hex, o->m.object_sha256)) {
    snprintf(why, whylen, "object SHA-256 %.16s..., manifest says %.16s...", hex, o->m.object_sha256);
    return SW_ECORRUPT;
  }
  return SW_OK;
}

int sw_arch_verify(const struct sw_arch_obj *o, const void *data, size_t n, char *why, size_t whylen) {
  int rc = sw_arch_check_bytes(o, data, n, why, whylen);
  if (rc) return rc;
  const struct sw_manifest *m = &o->m;
  char hex[65];
  struct sw_manifest_acc a;
  sw_manifest_acc_init(&a);
  rc = sw_manifest_acc_object(&a, data, n, o->gzip);
  if (rc) {
    snprintf(why, whylen, "object does not decompress (%s)", sw_strerror(rc));
    sw_manifest_acc_free(&a);
    return rc == SW_ENOMEM ? rc : SW_ECORRUPT;
  }
  sw_sha256_final_hex(&a.sha, hex);
  rc = SW_ECORRUPT;
  if (a.records != m->records)
    snprintf(why, whylen, "records %" PRIu64 ", manifest says %" PRIu64, a.records, m->records);
  else if (a.bytes != m->ndjson_bytes)
    snprintf(why, whylen, "NDJSON is %" PRIu64 " bytes, manifest says %" PRIu64, a.bytes, m->ndjson_bytes);
  else if (strcmp(hex, m->ndjson_sha256))
    snprintf(why, whylen, "NDJSON SHA-256 %.16s..., manifest says %.16s...", hex, m->ndjson_sha256);
  else if (a.bad_lines)
    snprintf(why, whylen, "%" PRIu64 " lines are not records", a.bad_lines);
  else if (a.records && (a.ts_min != m->ts_min || a.ts_max != m->ts_max))
    snprintf(why, whylen, "time range differs from the manifest's");
  else
    rc = SW_OK;
  sw_manifest_acc_free(&a);
  return rc;
}

struct lines {
  uint64_t from, pos; /* offset of the start of the bytes not yet split */
  struct sw_buf part;
  int (*cb)(void *arg, const char *line, size_t len, uint64_t end);
  void *arg;
};

static int one(struct lines *l, const char *p, size_t n, uint64_t end) {
  return end <= l->from ? SW_OK : l->cb(l->arg, p, n, end);
}

static int piece(void *arg, const char *p, size_t n) {
  struct lines *l = arg;
  const char *end = p + n;
  int rc = SW_OK;
  while (p < end && !rc) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    if (!nl) {
      l->pos += (uint64_t)(end - p);
      return l->pos <= l->from ? SW_OK : sw_buf_append(&l->part, p, (size_t)(end - p));
    }
    l->pos += (uint64_t)(nl + 1 - p);
    if (l->part.len) {
      rc = sw_buf_append(&l->part, p, (size_t)(nl - p));
      if (!rc) rc = one(l, l->part.data, l->part.len, l->pos);
      sw_buf_reset(&l->part);
    } else {
      rc = one(l, p, (size_t)(nl - p), l->pos);
    }
    p = nl + 1;
  }
  return rc;
}

int sw_arch_lines(const void *data, size_t n, enum sw_arch_codec codec, uint64_t from,
                  int (*cb)(void *arg, const char *line, size_t len, uint64_t end), void *arg) {
  struct lines l = {.from = from, .cb = cb, .arg = arg};
  sw_buf_init(&l.part, SIZE_MAX);
  int rc = codec == SW_ARCH_PLAIN ? piece(&l, data, n)
                                  : sw_object_inflate(data, n, codec == SW_ARCH_GZIP, piece, &l);
  if (!rc && l.part.len) rc = one(&l, l.part.data, l.part.len, l.pos);
  sw_buf_free(&l.part);
  return rc;
}

struct recs {
  int (*cb)(void *arg, const struct sw_ndjson_rec *r, uint64_t end);
  void *arg;
};

static int parse_line(void *arg, const char *p, size_t n, uint64_t end) {
  struct recs *x = arg;
  struct sw_ndjson_rec r;
  return x->cb(x->arg, sw_ndjson_rec_parse(p, n, &r) ? NULL : &r, end);
}

int sw_arch_records(const void *data, size_t n, int gzip, uint64_t from,
                    int (*cb)(void *arg, const struct sw_ndjson_rec *r, uint64_t end), void *arg) {
  struct recs x = {cb, arg};
  return sw_arch_lines(data, n, gzip ? SW_ARCH_GZIP : SW_ARCH_ZSTD, from, parse_line, &x);
}
