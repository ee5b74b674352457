/* manifest.h - what a restore needs to trust one archived S3 object, and reading it back.
 *
 * The S3 sink writes "<key>.manifest.json" beside each data object, AFTER the data object is
 * complete: a sidecar rather than x-amz-meta-* headers, because S3 limits user metadata to
 * 2 KB and an object's label sets do not fit; and written second, so a manifest's presence
 * says its object was uploaded whole. Both are uploaded again under the same keys after a
 * crash (the key comes from the batch's fixed chunk range), so they never disagree for long.
 *
 *   {"format":1,"object":KEY,"compression":"zstd","object_bytes":N,"object_sha256":HEX,
 *    "records":N,"ndjson_bytes":N,"ndjson_sha256":HEX,"ts_min":"RFC3339","ts_max":"RFC3339",
 *    "label_sets":[{...},...],"label_sets_complete":true,
 *    "agent_id":ID,"host":HOST,"first_chunk":N,"last_chunk":N}
 *
 * The accumulator is fed the object's uncompressed NDJSON (any split): one definition of the
 * figures serves the sink that writes them and the archive commands that check them.
 */
#ifndef SW_MANIFEST_H
#define SW_MANIFEST_H

#include <stddef.h>
#include <stdint.h>

#include "../common/buf.h"
#include "../common/error.h"
#include "../common/sha256.h"

#define SW_MANIFEST_SUFFIX ".manifest.json"
#define SW_MANIFEST_MAX_SETS 256        /* beyond: label_sets_complete false */
#define SW_MANIFEST_MAX_SET_BYTES 65536

struct sw_manifest_acc {
  struct sw_sha256 sha;
  uint64_t records, bytes, bad_lines;
  int64_t ts_min, ts_max;               /* INT64_MAX / INT64_MIN while empty */
  struct sw_buf sets;                   /* distinct label objects, each NUL-terminated */
  uint64_t *hash;                       /* their FNV-1a, parallel */
  size_t nsets, cap;
  size_t last;                          /* offset in sets of the last set seen */
  int sets_complete;
  struct sw_buf part;                   /* a line cut between two feeds */
};

void sw_manifest_acc_init(struct sw_manifest_acc *a);
void sw_manifest_acc_free(struct sw_manifest_acc *a);
/* Bytes of the uncompressed NDJSON, in order. A line that does not parse is counted in
 * bad_lines (and in records: it is a line of the object). */
int sw_manifest_acc_feed(struct sw_manifest_acc *a, const void *p, size_t n) SW_MUST_CHECK;
/* Ends the object: a last line without '\n' is counted. */
int sw_manifest_acc_end(struct sw_manifest_acc *a) SW_MUST_CHECK;

struct sw_manifest_meta {
  const char *object, *compression, *agent_id, *host;
  uint64_t object_bytes;
  const char *object_sha256; /* hex */
  int64_t first_chunk, last_chunk;
};
/* The manifest JSON of an accumulated object (after sw_manifest_acc_end), appended to out. */
int sw_manifest_write(struct sw_manifest_acc *a, const struct sw_manifest_meta *m,
                      struct sw_buf *out) SW_MUST_CHECK;

struct sw_manifest {
  char *object, *compression, *agent_id, *host, *object_sha256, *ndjson_sha256;
  uint64_t object_bytes, records, ndjson_bytes;
  int64_t ts_min, ts_max, first_chunk, last_chunk;
  char **sets;       /* label objects as JSON text */
  size_t nsets;
  int sets_complete;
};
/* Parses a manifest; SW_ECORRUPT with why set when a member is missing or of the wrong type. */
int sw_manifest_parse(const char *json, size_t n, struct sw_manifest *m, char *why,
                      size_t whylen) SW_MUST_CHECK;
void sw_manifest_free(struct sw_manifest *m);

/* Feeds a whole archived object (decompressed here; gzip when set) and ends it. SW_ECORRUPT
 * when it does not decompress. */
int sw_manifest_acc_object(struct sw_manifest_acc *a, const void *obj, size_t n, int gzip) SW_MUST_CHECK;
/* The chunk range an object's key ends with ("...<first>-<last>.ndjson.zst"); 0 and 0 when the
 * key does not say. */
void sw_manifest_key_range(const char *key, int64_t *first, int64_t *last);

/* Decompresses an archived object (zstd, or gzip when gzip is set) piece by piece: cb gets
 * each piece of the output and returns non-zero to stop (returned). SW_ECORRUPT for a
 * damaged or truncated stream. */
int sw_object_inflate(const void *src, size_t n, int gzip, int (*cb)(void *arg, const char *p, size_t n),
                      void *arg) SW_MUST_CHECK;

#endif
