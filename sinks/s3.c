/* s3.c - the S3-compatible sink codec: PUT objects of NDJSON, zstd or gzip, signed with SigV4.
 *
 * A batch (object.max_bytes of buffered data, or what waited object.max_wait) becomes one
 * object, or one per expanded prefix when the prefix names labels ({source}, {namespace}, an
 * extracted {level}; sinks/template.h): records go to the object of their labels. The key is
 * the expanded prefix
 * followed by the batch's chunk-id range, "<first>-<last>.ndjson.zst": the shipper writes the
 * range down before uploading (fixed_ranges), so after a crash the same objects are uploaded
 * again under the same keys and overwrite themselves instead of duplicating records. Time
 * fields of the prefix come from the earliest record of the object (UTC), not from the clock,
 * for the same reason.
 *
 * After the object, its manifest (sinks/manifest.h) is uploaded beside it as
 * "<key>.manifest.json": records, time range, label sets and the SHA-256 of the NDJSON, for
 * `spillway archive` to select and verify objects without downloading them.
 *
 * SigV4 is done by libcurl (CURLOPT_AWS_SIGV4); the payload hash header
 * x-amz-content-sha256, which S3 requires and curl 7.88 does not add, is computed here.
 * The object is compressed while it is built, so memory holds the compressed object only.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zlib.h>
#include <zstd.h>

#include "../common/sha256.h"
#include "../common/text.h"
#include "manifest.h"
#include "ndjson.h"
#include "s3.h"
#include "sink.h"
#include "template.h"

struct s3 {
  const struct sw_sink_conf *c;
  char *base;          /* scheme://host[:port][/bucket] before the key */
  char *token_header;
  const char *agent_id, *host;
  int zstd, dyn_prefix;
  struct sw_route route;
};

/* Per object: NEW -> PUT -> MANIFEST -> DONE, or for one bigger than part_size
 * NEW -> CREATE -> PARTS (one request per part) -> COMPLETE -> MANIFEST -> DONE, and after a
 * final refusal of a part or of the completion -> ABORT -> DONE (the object is dead-lettered;
 * its replay uploads object and manifest again). */
enum obj_state { O_NEW, O_PUT, O_CREATE, O_PARTS, O_COMPLETE, O_MANIFEST, O_ABORT, O_DONE };

struct obj {
  enum obj_state st;
  char upload_id[256];
  uint32_t part, nparts;
  char (*etags)[160];
  struct sw_buf xml;   /* CompleteMultipartUpload body */
  char *req_url;       /* the URL of the request in flight (with its query) */
  char *group;         /* the prefix with its {label}s expanded ("" when it has none) */
  int64_t ts_min;
  uint64_t records;
  ZSTD_CCtx *zc;
  z_stream *z;         /* its own allocation: zlib's state points back at it, and the
                          objects' array moves when a batch gets another object */
  struct sw_buf out;   /* the compressed object */
  char *url, *key;
  char sha_header[96];
  char osha[65];       /* SHA-256 of out, hex */
  struct sw_manifest_acc acc; /* of the NDJSON compressed into out */
  struct sw_buf manifest;
};

struct s3batch {
  struct obj *o;
  size_t n, next;
  struct sw_buf tmp;   /* one chunk's NDJSON */
};

static int s3_create(const struct sw_sink_conf *c, const struct sw_sink_env *env, void **out,
                     char *err, size_t errlen) {
  struct s3 *s = calloc(1, sizeof *s);
  if (!s) return SW_ENOMEM;
  s->c = c;
  s->zstd = !c->compression || strcmp(c->compression, "gzip") != 0;
  s->dyn_prefix = sw_tmpl_dynamic(c->prefix);
  s->agent_id = env ? env->agent_id : NULL;
  s->host = env ? env->host : NULL;
  char buf[2048];
  s->base = sw_s3_base_url(c, buf, sizeof buf) ? NULL : strdup(buf);
  if (c->session_token) {
    size_t n = strlen(c->session_token) + 32;
    if ((s->token_header = malloc(n))) snprintf(s->token_header, n, "x-amz-security-token: %s", c->session_token);
  }
  if (!s->base || (c->session_token && !s->token_header) || sw_route_init(&s->route, c->match, c->nmatch)) {
    free(s->base);
    free(s->token_header);
    free(s);
    snprintf(err, errlen, "out of memory");
    return SW_ENOMEM;
  }
  *out = s;
  return SW_OK;
}

static void s3_destroy(void *codec) {
  struct s3 *s = codec;
  sw_route_free(&s->route);
  free(s->base);
  free(s->token_header);
  free(s);
}

static void obj_free(struct obj *o) {
  free(o->etags);
  sw_buf_free(&o->xml);
  free(o->req_url);
  free(o->group);
  ZSTD_freeCCtx(o->zc);
  if (o->z) deflateEnd(o->z);
  free(o->z);
  sw_buf_free(&o->out);
  free(o->url);
  free(o->key);
  sw_manifest_acc_free(&o->acc);
  sw_buf_free(&o->manifest);
}

static int s3_begin(void *codec, struct sw_batch *b) {
  (void)codec;
  struct s3batch *sb = calloc(1, sizeof *sb);
  if (!sb) return SW_ENOMEM;
  sw_buf_init(&sb->tmp, SIZE_MAX);
  b->priv = sb;
  return SW_OK;
}

static struct obj *obj_for(struct s3 *s, struct s3batch *sb, const char *name) {
  for (size_t i = 0; i < sb->n; i++)
    if (!strcmp(sb->o[i].group, name)) return &sb->o[i];
  struct obj *no = realloc(sb->o, (sb->n + 1) * sizeof *no);
  if (!no) return NULL;
  sb->o = no;
  struct obj *o = &no[sb->n];
  memset(o, 0, sizeof *o);
  o->ts_min = INT64_MAX;
  sw_buf_init(&o->out, SIZE_MAX);
  sw_buf_init(&o->xml, 1 << 20);
  sw_buf_init(&o->manifest, SIZE_MAX);
  sw_manifest_acc_init(&o->acc);
  if (!(o->group = strdup(name))) return NULL;
  sb->n++;
  if (s->zstd) {
    if (!(o->zc = ZSTD_createCCtx())) return NULL;
    ZSTD_CCtx_setParameter(o->zc, ZSTD_c_compressionLevel, 3);
  } else {
    if (!(o->z = calloc(1, sizeof *o->z))) return NULL;
    if (deflateInit2(o->z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
      free(o->z);
      o->z = NULL;
      return NULL;
    }
  }
  return o;
}

/* Compresses src into o->out; end finishes the frame. */
static int obj_write(struct obj *o, const void *src, size_t n, int end) {
  if (o->zc) {
    ZSTD_inBuffer in = {src, n, 0};
    for (;;) {
      if (sw_buf_reserve(&o->out, ZSTD_CStreamOutSize())) return SW_ENOMEM;
      ZSTD_outBuffer ob = {o->out.data + o->out.len, o->out.cap - o->out.len, 0};
      size_t r = ZSTD_compressStream2(o->zc, &ob, &in, end ? ZSTD_e_end : ZSTD_e_continue);
      if (ZSTD_isError(r)) return SW_EIO;
      o->out.len += ob.pos;
      if (end ? r == 0 : in.pos == in.size) return SW_OK;
    }
  }
  z_stream *z = o->z;
  if (!z) return SW_EIO; /* finished already */
  z->next_in = (Bytef *)(uintptr_t)src;
  z->avail_in = (uInt)n;
  for (;;) {
    if (sw_buf_reserve(&o->out, 1 << 16)) return SW_ENOMEM;
    z->next_out = (Bytef *)o->out.data + o->out.len;
    z->avail_out = (uInt)(o->out.cap - o->out.len);
    int r = deflate(z, end ? Z_FINISH : Z_NO_FLUSH);
    o->out.len = (size_t)((char *)z->next_out - o->out.data);
    if (r == Z_STREAM_ERROR) return SW_EIO;
    if (end ? r == Z_STREAM_END : (z->avail_in == 0 && z->avail_out != 0)) return SW_OK;
  }
}

/* Compresses the records gathered in sb->tmp into the object of group (n records, the
 * earliest at ts_min). */
static int flush_run(struct s3 *s, struct s3batch *sb, const char *group, uint64_t n, int64_t ts_min) {
  if (!n) return SW_OK;
  struct obj *o = obj_for(s, sb, group);
  if (!o) return SW_ENOMEM;
  int rc = sw_manifest_acc_feed(&o->acc, sb->tmp.data, sb->tmp.len);
  if (!rc) rc = obj_write(o, sb->tmp.data, sb->tmp.len, 0);
  sw_buf_reset(&sb->tmp);
  o->records += n;
  if (ts_min < o->ts_min) o->ts_min = ts_min;
  return rc;
}

static int s3_add(void *codec, struct sw_batch *b, const struct sw_chunk_row *row, const void *raw,
                  size_t len) {
  struct s3 *s = codec;
  struct s3batch *sb = b->priv;
  uint64_t n = 0;
  sw_buf_reset(&sb->tmp);
  int rc;
  if (!s->dyn_prefix) {
    rc = sw_ndjson_encode(row, raw, len, &s->route, &sb->tmp, &n);
    if (!rc && n < row->records) b->routed_away += row->records - n;
    if (!rc) rc = flush_run(s, sb, "", n, row->ts_min);
  } else { /* record by record: runs of one group go to its object at once */
    struct sw_chunk_iter it;
    uint64_t count;
    if ((rc = sw_chunk_iter_init(&it, raw, len, &count))) return rc;
    const char *labels = row->labels_json;
    size_t llen = strlen(labels);
    struct sw_route_memo memo;
    int rv = sw_route_chunk(&s->route, labels, &memo);
    struct sw_ndjson_state st;
    sw_ndjson_state_init(&st);
    struct sw_buf grp, next;
    sw_buf_init(&grp, 1 << 12);
    sw_buf_init(&next, 1 << 12);
    const char *grp_xl = NULL;
    int have = 0;
    uint64_t missing = 0, run = 0;
    int64_t run_min = INT64_MAX;
    struct sw_record_view r;
    int more;
    while ((more = sw_chunk_iter_next(&it, &r)) == 1) {
      if (rv == SW_ROUTE_NONE || (rv == SW_ROUTE_RECORDS && !sw_route_record(&s->route, &memo, &r))) {
        b->routed_away++;
        continue;
      }
      if (!have || r.xl != grp_xl) {
        sw_buf_reset(&next);
        missing = 0;
        rc = sw_tmpl_expand(s->c->prefix, SW_TMPL_KEY, labels, &r, &next, &missing);
        if (!rc) rc = sw_buf_putc(&next, 0);
        if (rc) break;
        if (have && strcmp(next.data, grp.data)) { /* another object: flush the run */
          if ((rc = flush_run(s, sb, grp.data, run, run_min))) break;
          run = 0;
          run_min = INT64_MAX;
        }
        struct sw_buf t = grp;
        grp = next;
        next = t;
        grp_xl = r.xl;
        have = 1;
      }
      b->label_missing += missing;
      if ((rc = sw_ndjson_record(&st, labels, llen, row->format, &r, &sb->tmp))) break;
      run++;
      if (r.ts_ns < run_min) run_min = r.ts_ns;
    }
    if (!rc && more < 0) rc = more;
    if (!rc && have) rc = flush_run(s, sb, grp.data, run, run_min);
    sw_ndjson_state_free(&st);
    sw_buf_free(&grp);
    sw_buf_free(&next);
  }
  if (sb->tmp.cap > (8u << 20)) sw_buf_shrink(&sb->tmp, 0);
  return rc;
}

int sw_s3_base_url(const struct sw_sink_conf *c, char *out, size_t n) {
  const char *scheme = "https://", *host;
  char aws[256];
  if (c->endpoint) {
    const char *p = strstr(c->endpoint, "://");
    scheme = p && !strncmp(c->endpoint, "http://", 7) ? "http://" : "https://";
    host = p ? p + 3 : c->endpoint;
  } else {
    snprintf(aws, sizeof aws, "s3.%s.amazonaws.com", c->region);
    host = aws;
  }
  size_t hl = strlen(host);
  while (hl && host[hl - 1] == '/') hl--;
  int path = c->addressing == SW_S3_PATH || (c->addressing == SW_S3_AUTO && c->endpoint);
  int w = path ? snprintf(out, n, "%s%.*s/%s", scheme, (int)hl, host, c->bucket)
               : snprintf(out, n, "%s%s.%.*s", scheme, c->bucket, (int)hl, host);
  return w < 0 || (size_t)w >= n ? SW_ETOOBIG : SW_OK;
}

int sw_s3_put_escaped(struct sw_buf *b, const char *s, int keep_slash) {
  int rc = SW_OK;
  for (; *s && !rc; s++) {
    unsigned char ch = (unsigned char)*s;
    int ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
             ch == '-' || ch == '_' || ch == '.' || ch == '~' || (ch == '/' && keep_slash);
    rc = ok ? sw_buf_putc(b, (char)ch) : sw_buf_printf(b, "%%%02X", ch);
  }
  return rc;
}

/* The object's prefix ({label}s expanded when its records were added) with strftime applied at
 * its earliest record, then the range. */
static int make_key(struct s3 *s, struct obj *o, int64_t first, int64_t last, struct sw_buf *key) {
  struct sw_buf tpl;
  sw_buf_init(&tpl, 1 << 16);
  const char *pre = s->dyn_prefix ? o->group : s->c->prefix ? s->c->prefix : "";
  int rc = sw_buf_append(&tpl, pre, strlen(pre));
  if (!rc) rc = sw_buf_putc(&tpl, 0);
  char out[1024] = "";
  if (!rc && tpl.len > 1) {
    int64_t ts = o->ts_min == INT64_MAX ? 0 : o->ts_min;
    time_t t = (time_t)(ts / 1000000000);
    struct tm tm;
    gmtime_r(&t, &tm);
#pragma GCC diagnostic push /* the pattern is the user's, strftime is meant for that */
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
    if (!strftime(out, sizeof out, tpl.data, &tm)) rc = SW_ETOOBIG;
#pragma GCC diagnostic pop
  }
  sw_buf_free(&tpl);
  if (!rc) rc = sw_buf_printf(key, "%s%020lld-%020lld.ndjson.%s", out, (long long)first,
                              (long long)last, s->zstd ? "zst" : "gz");
  if (!rc) rc = sw_buf_putc(key, 0);
  return rc;
}

/* The object is complete (out, key, records): its manifest. */
static int make_manifest(struct s3 *s, struct obj *o, int64_t first, int64_t last) {
  struct sw_manifest_meta m = {.object = o->key, .compression = s->zstd ? "zstd" : "gzip",
                               .agent_id = s->agent_id, .host = s->host, .object_bytes = o->out.len,
                               .object_sha256 = o->osha, .first_chunk = first, .last_chunk = last};
  sw_buf_reset(&o->manifest);
  int rc = sw_manifest_acc_end(&o->acc);
  return rc ? rc : sw_manifest_write(&o->acc, &m, &o->manifest);
}

static int finish_obj(struct s3 *s, struct obj *o, const char *key) {
  struct sw_buf url;
  sw_buf_init(&url, 1 << 16);
  int rc = sw_buf_printf(&url, "%s/", s->base);
  if (!rc) rc = sw_s3_put_escaped(&url, key, 1);
  if (!rc) rc = sw_buf_putc(&url, 0);
  if (rc) {
    sw_buf_free(&url);
    return rc;
  }
  o->url = url.data; /* taken over */
  if (!(o->key = strdup(key))) return SW_ENOMEM;
  sw_sha256_hex(o->out.data, o->out.len, o->osha);
  snprintf(o->sha_header, sizeof o->sha_header, "x-amz-content-sha256: %s", o->osha);
  return SW_OK;
}

static int s3_seal(void *codec, struct sw_batch *b) {
  struct s3 *s = codec;
  struct s3batch *sb = b->priv;
  sw_buf_free(&sb->tmp);
  int rc = SW_OK;
  for (size_t i = 0; i < sb->n && !rc; i++) {
    struct obj *o = &sb->o[i];
    if (o->url) { /* finished by an earlier call that failed later */
      if (!o->manifest.len) rc = make_manifest(s, o, b->after + 1, b->last);
      continue;
    }
    struct sw_buf key;
    sw_buf_init(&key, 1 << 16);
    rc = obj_write(o, NULL, 0, 1); /* both codecs may be asked to finish again after a failure */
    if (!rc) rc = make_key(s, o, b->after + 1, b->last, &key);
    if (!rc) rc = finish_obj(s, o, key.data);
    if (!rc) rc = make_manifest(s, o, b->after + 1, b->last);
    sw_buf_free(&key);
    if (rc) break;
    ZSTD_freeCCtx(o->zc);
    o->zc = NULL;
    if (o->z) deflateEnd(o->z);
    free(o->z);
    o->z = NULL;
  }
  return rc;
}

static int s3_replay(void *codec, struct sw_batch *b, const void *payload, size_t len, const char *key) {
  struct s3 *s = codec;
  int rc = s3_begin(codec, b);
  if (rc) return rc;
  struct s3batch *sb = b->priv;
  if (!(sb->o = calloc(1, sizeof *sb->o))) return SW_ENOMEM;
  sb->n = 1;
  struct obj *o = &sb->o[0];
  sw_buf_init(&o->out, SIZE_MAX);
  sw_buf_init(&o->xml, 1 << 20);
  o->records = b->records;
  sw_buf_init(&o->manifest, SIZE_MAX);
  sw_manifest_acc_init(&o->acc);
  /* The stored payload is the object as it was uploaded; its manifest is made again from it,
   * the chunk range from its key ("...<first>-<last>.ndjson.zst"). */
  if ((rc = sw_buf_append(&o->out, payload, len))) return rc;
  const char *k = key ? key : "replayed";
  int gz = sw_ends_with(k, ".gz");
  if ((rc = sw_manifest_acc_object(&o->acc, payload, len, gz))) return rc;
  int64_t first, last;
  sw_manifest_key_range(k, &first, &last);
  if ((rc = finish_obj(s, o, k))) return rc;
  return make_manifest(s, o, first, last);
}

/* query: what follows the object's URL (a query, or the manifest's suffix). */
static int set_req(struct obj *o, const char *query, const void *body, size_t len) {
  size_t n = strlen(o->url) + strlen(query) + 2;
  free(o->req_url);
  if (!(o->req_url = malloc(n))) return SW_ENOMEM;
  snprintf(o->req_url, n, "%s%s", o->url, query);
  char hex[65];
  sw_sha256_hex(body, len, hex);
  snprintf(o->sha_header, sizeof o->sha_header, "x-amz-content-sha256: %s", hex);
  return SW_OK;
}

static int s3_next(void *codec, struct sw_batch *b, struct sw_sink_req *q) {
  struct s3 *s = codec;
  struct s3batch *sb = b->priv;
  while (sb->next < sb->n && sb->o[sb->next].st == O_DONE) sb->next++;
  if (sb->next >= sb->n) return 0;
  struct obj *o = &sb->o[sb->next];
  uint64_t ps = s->c->object_part_size ? s->c->object_part_size : (8u << 20);
  char query[400];
  const void *body = "";
  size_t len = 0;
  q->method = "PUT";
  q->content_type = "application/x-ndjson";
  switch (o->st) {
  case O_NEW:
    if (o->out.len <= ps) {
      o->st = O_PUT;
      query[0] = 0;
      body = o->out.data;
      len = o->out.len;
      break;
    }
    o->st = O_CREATE;
    o->nparts = (uint32_t)((o->out.len + ps - 1) / ps);
    if (!(o->etags = calloc(o->nparts, sizeof *o->etags))) return 0;
    q->method = "POST";
    snprintf(query, sizeof query, "?uploads="); /* "=": SigV4's canonical form, curl signs as given */
    break;
  case O_PARTS: {
    size_t off = (size_t)(o->part - 1) * ps;
    body = o->out.data + off;
    len = o->out.len - off < ps ? o->out.len - off : ps;
    snprintf(query, sizeof query, "?partNumber=%u&uploadId=%s", o->part, o->upload_id); /* sorted */
    q->content_type = "application/octet-stream";
    break;
  }
  case O_COMPLETE:
    sw_buf_reset(&o->xml);
    if (sw_buf_append(&o->xml, "<CompleteMultipartUpload>", 25)) return 0;
    for (uint32_t i = 0; i < o->nparts; i++)
      if (sw_buf_printf(&o->xml, "<Part><PartNumber>%u</PartNumber><ETag>%s</ETag></Part>", i + 1, o->etags[i]))
        return 0;
    if (sw_buf_append(&o->xml, "</CompleteMultipartUpload>", 26)) return 0;
    q->method = "POST";
    q->content_type = "application/xml";
    body = o->xml.data;
    len = o->xml.len;
    snprintf(query, sizeof query, "?uploadId=%s", o->upload_id);
    break;
  case O_MANIFEST:
    q->content_type = "application/json";
    body = o->manifest.data;
    len = o->manifest.len;
    snprintf(query, sizeof query, "%s", SW_MANIFEST_SUFFIX);
    break;
  case O_ABORT:
    q->method = "DELETE";
    q->content_type = "application/octet-stream";
    snprintf(query, sizeof query, "?uploadId=%s", o->upload_id);
    break;
  default:
    return 0;
  }
  if (set_req(o, query, body, len)) return 0;
  q->url = o->req_url;
  q->headers[0] = o->sha_header;
  q->headers[1] = s->token_header;
  q->body = body;
  q->len = len;
  return 1;
}

/* The text of <tag>...</tag> in an S3 XML answer into out; 0 when absent. */
static int xml_text(const char *xml, const char *tag, char *out, size_t n) {
  char open[64];
  snprintf(open, sizeof open, "<%s>", tag);
  const char *a = strstr(xml, open);
  if (!a) return 0;
  a += strlen(open);
  size_t len = strcspn(a, "<");
  snprintf(out, n, "%.*s", (int)len, a);
  return len > 0 && len < n;
}

/* Upload ids go into the query as they are: SigV4 would need them percent-encoded otherwise. */
static int url_safe(const char *s) {
  for (; *s; s++)
    if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
          *s == '-' || *s == '_' || *s == '.' || *s == '~'))
      return 0;
  return 1;
}

static int s3_respond(void *codec, struct sw_batch *b, const struct sw_http_resp *resp,
                      const void **body, size_t *len) {
  (void)codec;
  (void)body;
  (void)len;
  struct s3batch *sb = b->priv;
  struct obj *o = &sb->o[sb->next];
  int ok = resp->status >= 200 && resp->status < 300;
  if (o->st == O_ABORT) { /* best effort: a leftover upload only costs storage until a lifecycle rule */
    o->st = O_DONE;
    return SW_HTTP_DONE;
  }
  if (ok) {
    switch (o->st) {
    case O_CREATE:
      if (!xml_text(resp->body, "UploadId", o->upload_id, sizeof o->upload_id) || !url_safe(o->upload_id)) {
        o->st = O_NEW; /* an answer without an id: start the upload over */
        return SW_HTTP_DONE;
      }
      o->st = O_PARTS;
      o->part = 1;
      return SW_HTTP_DONE;
    case O_PARTS:
      snprintf(o->etags[o->part - 1], sizeof o->etags[0], "%s", resp->etag);
      if (++o->part > o->nparts) o->st = O_COMPLETE;
      return SW_HTTP_DONE;
    case O_COMPLETE:
      if (strstr(resp->body, "<Error>")) { /* S3 may report a failed completion with 200 */
        o->st = O_COMPLETE;
        return SW_HTTP_RETRY;
      }
      o->st = O_MANIFEST;
      return SW_HTTP_DONE;
    default: /* PUT, then MANIFEST */
      o->st = o->st == O_PUT ? O_MANIFEST : O_DONE;
      return SW_HTTP_DONE;
    }
  }
  /* S3 explains itself in XML: <Code>NoSuchBucket</Code><Message>...</Message>. */
  const char *code = strstr(resp->body, "<Code>");
  const char *why = code ? code + 6 : resp->body;
  size_t n = code ? strcspn(why, "<") : resp->body_len;
  if (sw_batch_dead(b, resp->status, why, n, o->out.data, o->out.len, o->key, o->records))
    return SW_HTTP_RETRY;
  o->st = o->st == O_PARTS || o->st == O_COMPLETE ? O_ABORT : O_DONE;
  return SW_HTTP_DONE;
}

static void s3_release(void *codec, struct sw_batch *b) {
  (void)codec;
  struct s3batch *sb = b->priv;
  if (!sb) return;
  for (size_t i = 0; i < sb->n; i++) obj_free(&sb->o[i]);
  free(sb->o);
  sw_buf_free(&sb->tmp);
  free(sb);
  b->priv = NULL;
}

const struct sw_sink_ops sw_s3_ops = {
    .type = "s3",
    .fixed_ranges = 1,
    .create = s3_create,
    .destroy = s3_destroy,
    .begin = s3_begin,
    .add = s3_add,
    .seal = s3_seal,
    .replay = s3_replay,
    .next = s3_next,
    .respond = s3_respond,
    .release = s3_release,
};
