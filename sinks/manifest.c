#include "manifest.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>

#include "../common/hash.h"
#include "../common/timefmt.h"
#include "../parsers/ndjsonrec.h"

void sw_manifest_acc_init(struct sw_manifest_acc *a) {
  memset(a, 0, sizeof *a);
  sw_sha256_init(&a->sha);
  a->ts_min = INT64_MAX;
  a->ts_max = INT64_MIN;
  a->sets_complete = 1;
  a->last = SIZE_MAX;
  sw_buf_init(&a->sets, SW_MANIFEST_MAX_SET_BYTES + 4096);
  sw_buf_init(&a->part, SIZE_MAX);
}

void sw_manifest_acc_free(struct sw_manifest_acc *a) {
  sw_buf_free(&a->sets);
  sw_buf_free(&a->part);
  free(a->hash);
  memset(a, 0, sizeof *a);
}

/* Remembers a distinct label set; past the caps the list is marked incomplete instead. */
static int add_set(struct sw_manifest_acc *a, const char *s, size_t n) {
  if (a->last != SIZE_MAX && !strncmp(a->sets.data + a->last, s, n) && !a->sets.data[a->last + n])
    return SW_OK; /* runs of one set are the common case */
  uint64_t h = sw_fnv1a(SW_FNV1A_INIT, s, n);
  size_t off = 0;
  for (size_t i = 0; i < a->nsets; i++) {
    size_t len = strlen(a->sets.data + off);
    if (a->hash[i] == h && len == n && !memcmp(a->sets.data + off, s, n)) {
      a->last = off;
      return SW_OK;
    }
    off += len + 1;
  }
  if (!a->sets_complete) return SW_OK;
  if (a->nsets == SW_MANIFEST_MAX_SETS || a->sets.len + n + 1 > SW_MANIFEST_MAX_SET_BYTES) {
    a->sets_complete = 0;
    return SW_OK;
  }
  if (sw_grow(&a->hash, a->nsets, &a->cap, sizeof *a->hash, 8)) return SW_ENOMEM;
  a->last = a->sets.len;
  int rc = sw_buf_append(&a->sets, s, n);
  if (!rc) rc = sw_buf_putc(&a->sets, 0);
  if (rc) return rc;
  a->hash[a->nsets++] = h;
  return SW_OK;
}

static int one_line(struct sw_manifest_acc *a, const char *p, size_t n) {
  a->records++;
  struct sw_ndjson_rec r;
  if (sw_ndjson_rec_parse(p, n, &r)) {
    a->bad_lines++;
    return SW_OK;
  }
  if (r.ts_ns < a->ts_min) a->ts_min = r.ts_ns;
  if (r.ts_ns > a->ts_max) a->ts_max = r.ts_ns;
  return add_set(a, r.labels, r.labels_len);
}

int sw_manifest_acc_feed(struct sw_manifest_acc *a, const void *data, size_t n) {
  const char *p = data, *end = p + n;
  sw_sha256_update(&a->sha, p, n);
  a->bytes += n;
  int rc = SW_OK;
  while (p < end && !rc) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    if (!nl) return sw_buf_append(&a->part, p, (size_t)(end - p));
    if (a->part.len) {
      rc = sw_buf_append(&a->part, p, (size_t)(nl - p));
      if (!rc) rc = one_line(a, a->part.data, a->part.len);
      sw_buf_reset(&a->part);
    } else {
      rc = one_line(a, p, (size_t)(nl - p));
    }
    p = nl + 1;
  }
  return rc;
}

int sw_manifest_acc_end(struct sw_manifest_acc *a) {
  int rc = a->part.len ? one_line(a, a->part.data, a->part.len) : SW_OK;
  sw_buf_reset(&a->part);
  return rc;
}

static int put_str(struct sw_buf *out, const char *k, const char *v) {
  int rc = sw_buf_printf(out, ",\"%s\":\"", k);
  if (!rc) rc = sw_buf_put_json_str(out, v ? v : "", v ? strlen(v) : 0, NULL);
  if (!rc) rc = sw_buf_putc(out, '"');
  return rc;
}

int sw_manifest_write(struct sw_manifest_acc *a, const struct sw_manifest_meta *m, struct sw_buf *out) {
  char hex[65], t0[40] = "", t1[40] = "";
  struct sw_sha256 c = a->sha; /* the accumulator may be asked again (a seal retried) */
  sw_sha256_final_hex(&c, hex);
  if (a->records && a->ts_min != INT64_MAX) {
    t0[sw_time_format_rfc3339(a->ts_min, t0)] = 0;
    t1[sw_time_format_rfc3339(a->ts_max, t1)] = 0;
  }
  int rc = sw_buf_append(out, "{\"format\":1", 11);
  if (!rc) rc = put_str(out, "object", m->object);
  if (!rc) rc = put_str(out, "compression", m->compression);
  if (!rc) rc = sw_buf_printf(out, ",\"object_bytes\":%llu,\"object_sha256\":\"%s\"",
                              (unsigned long long)m->object_bytes, m->object_sha256);
  if (!rc) rc = sw_buf_printf(out, ",\"records\":%llu,\"ndjson_bytes\":%llu,\"ndjson_sha256\":\"%s\"",
                              (unsigned long long)a->records, (unsigned long long)a->bytes, hex);
  if (!rc) rc = sw_buf_printf(out, ",\"ts_min\":\"%s\",\"ts_max\":\"%s\",\"label_sets\":[", t0, t1);
  size_t off = 0;
  for (size_t i = 0; i < a->nsets && !rc; i++) {
    size_t len = strlen(a->sets.data + off);
    if (i) rc = sw_buf_putc(out, ',');
    if (!rc) rc = sw_buf_append(out, a->sets.data + off, len);
    off += len + 1;
  }
  if (!rc) rc = sw_buf_printf(out, "],\"label_sets_complete\":%s", a->sets_complete ? "true" : "false");
  if (!rc) rc = put_str(out, "agent_id", m->agent_id);
  if (!rc) rc = put_str(out, "host", m->host);
  if (!rc) rc = sw_buf_printf(out, ",\"first_chunk\":%lld,\"last_chunk\":%lld}\n",
                              (long long)m->first_chunk, (long long)m->last_chunk);
  return rc;
}

static char *dup_str(const cJSON *o, const char *k) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
  return cJSON_IsString(v) ? strdup(v->valuestring) : NULL;
}

static int get_num(const cJSON *o, const char *k, int64_t *out) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
  /* Sizes, counts and chunk ids: exact as doubles below 2^53; anything else is not ours. */
  if (!cJSON_IsNumber(v) || !(v->valuedouble >= 0 && v->valuedouble < 9007199254740992.0)) return -1;
  *out = (int64_t)v->valuedouble;
  return 0;
}

static int get_time(const cJSON *o, const char *k, int64_t *out) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
  if (!cJSON_IsString(v)) return -1;
  if (!v->valuestring[0]) return 1; /* an empty object */
  return sw_time_parse_rfc3339(v->valuestring, strlen(v->valuestring), out) ? -1 : 0;
}

int sw_manifest_parse(const char *json, size_t n, struct sw_manifest *m, char *why, size_t whylen) {
  memset(m, 0, sizeof *m);
  cJSON *root = cJSON_ParseWithLength(json, n);
  const char *bad = NULL;
  int64_t v[5] = {0};
  if (!cJSON_IsObject(root)) {
    bad = "not a JSON object";
    goto out;
  }
  m->object = dup_str(root, "object");
  m->compression = dup_str(root, "compression");
  m->object_sha256 = dup_str(root, "object_sha256");
  m->ndjson_sha256 = dup_str(root, "ndjson_sha256");
  m->agent_id = dup_str(root, "agent_id");
  m->host = dup_str(root, "host");
  if (!m->object || !m->compression || !m->object_sha256 || !m->ndjson_sha256 || !m->agent_id || !m->host)
    bad = "a string member (object, compression, sha256s, agent_id, host) is missing";
  else if (get_num(root, "object_bytes", &v[0]) || get_num(root, "records", &v[1]) ||
           get_num(root, "ndjson_bytes", &v[2]) || get_num(root, "first_chunk", &v[3]) ||
           get_num(root, "last_chunk", &v[4]))
    bad = "a number member (object_bytes, records, ndjson_bytes, first_chunk, last_chunk) is missing";
  else if (get_time(root, "ts_min", &m->ts_min) < 0 || get_time(root, "ts_max", &m->ts_max) < 0)
    bad = "ts_min or ts_max is not RFC 3339";
  if (bad) goto out;
  m->object_bytes = (uint64_t)v[0];
  m->records = (uint64_t)v[1];
  m->ndjson_bytes = (uint64_t)v[2];
  m->first_chunk = v[3];
  m->last_chunk = v[4];
  const cJSON *sets = cJSON_GetObjectItemCaseSensitive(root, "label_sets"), *s;
  m->sets_complete = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(root, "label_sets_complete"));
  if (!cJSON_IsArray(sets)) {
    bad = "label_sets is not an array";
    goto out;
  }
  if (!(m->sets = calloc((size_t)cJSON_GetArraySize(sets) + 1, sizeof *m->sets))) {
    bad = "out of memory";
    goto out;
  }
  cJSON_ArrayForEach(s, sets) {
    if (!cJSON_IsObject(s) || !(m->sets[m->nsets] = cJSON_PrintUnformatted(s))) {
      bad = "a label set is not an object";
      goto out;
    }
    m->nsets++;
  }
out:
  cJSON_Delete(root);
  if (!bad) return SW_OK;
  snprintf(why, whylen, "%s", bad);
  sw_manifest_free(m);
  return SW_ECORRUPT;
}

void sw_manifest_free(struct sw_manifest *m) {
  free(m->object);
  free(m->compression);
  free(m->agent_id);
  free(m->host);
  free(m->object_sha256);
  free(m->ndjson_sha256);
  for (size_t i = 0; i < m->nsets; i++) cJSON_free(m->sets[i]);
  free(m->sets);
  memset(m, 0, sizeof *m);
}

int sw_object_inflate(const void *src, size_t n, int gzip, int (*cb)(void *arg, const char *p, size_t n),
                      void *arg) {
  enum { PIECE = 1 << 20 };
  char *out = malloc(PIECE);
  if (!out) return SW_ENOMEM;
  int rc = SW_OK;
  if (!gzip) {
    ZSTD_DCtx *d = ZSTD_createDCtx();
    if (!d) {
      free(out);
      return SW_ENOMEM;
    }
    ZSTD_inBuffer in = {src, n, 0};
    size_t last = 1;
    while (!rc && (in.pos < in.size || last != 0)) {
      ZSTD_outBuffer ob = {out, PIECE, 0};
      size_t before = in.pos;
      last = ZSTD_decompressStream(d, &ob, &in);
      if (ZSTD_isError(last)) rc = SW_ECORRUPT;
      else if (ob.pos) rc = cb(arg, out, ob.pos);
      else if (in.pos == before && in.pos == in.size && last) rc = SW_ECORRUPT; /* truncated frame */
    }
    ZSTD_freeDCtx(d);
  } else {
    z_stream z;
    memset(&z, 0, sizeof z);
    if (inflateInit2(&z, 15 + 32) != Z_OK) {
      free(out);
      return SW_ENOMEM;
    }
    z.next_in = (Bytef *)(uintptr_t)src;
    z.avail_in = (uInt)n;
    int zr = Z_OK;
    while (!rc && zr != Z_STREAM_END) {
      z.next_out = (Bytef *)out;
      z.avail_out = PIECE;
      zr = inflate(&z, Z_NO_FLUSH);
      if (zr == Z_STREAM_END && z.avail_in) { /* concatenated members, as gzip allows */
        size_t got = PIECE - z.avail_out;
        if (got && (rc = cb(arg, out, got))) break;
        inflateReset(&z);
        zr = Z_OK;
        continue;
      }
      if (zr != Z_OK && zr != Z_STREAM_END) rc = SW_ECORRUPT;
      else if (PIECE - z.avail_out) rc = cb(arg, out, PIECE - z.avail_out);
      else if (!z.avail_in) rc = SW_ECORRUPT; /* ended before the stream did */
    }
    inflateEnd(&z);
  }
  free(out);
  return rc;
}

static int acc_piece(void *arg, const char *p, size_t n) { return sw_manifest_acc_feed(arg, p, n); }

int sw_manifest_acc_object(struct sw_manifest_acc *a, const void *obj, size_t n, int gzip) {
  int rc = sw_object_inflate(obj, n, gzip, acc_piece, a);
  return rc ? rc : sw_manifest_acc_end(a);
}

void sw_manifest_key_range(const char *key, int64_t *first, int64_t *last) {
  const char *p = strstr(key, ".ndjson.");
  while (p && p > key && p[-1] != '/') p--;
  long long a = 0, b = 0;
  if (!p || sscanf(p, "%20lld-%20lld", &a, &b) != 2) a = b = 0;
  *first = a;
  *last = b;
}
