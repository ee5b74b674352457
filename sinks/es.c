/* es.c - the Elasticsearch / OpenSearch sink codec: POST /_bulk, NDJSON, gzip.
 *
 * Every record is a `create` with _id "<agent id>-<chunk id>-<record index>": deterministic,
 * so a resent or replayed batch never duplicates a document, and 409 (version conflict) on
 * `create` means "already delivered". `create` also works for data streams (which need the
 * `@timestamp` every document has). Index names come from `index` with strftime fields taken
 * from the record's time (UTC).
 *
 * A 200 answer with "errors": true is read item by item (items come in request order): 2xx
 * and 409 are delivered, 429 and 5xx are sent again (only those items, after a backoff), the
 * rest are dead-lettered with the reason. A whole-request 413 halves the request.
 */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../agent/buffer/chunk.h"
#include "../common/timefmt.h"
#include "ndjson.h"
#include "route.h"
#include "template.h"
#include "../parsers/json.h"
#include "../parsers/record.h"
#include "sink.h"

struct es {
  const struct sw_sink_conf *c;
  char *url;
  const char *agent_id;
  int gzip;
  int dyn_index; /* index has {label}s */
  struct sw_route route;
};

/* NDJSON items: an action line and a document line each. */
struct esbatch {
  struct sw_buf body, wire; /* the items of the request in flight, and their gzip */
  struct sw_buf todo;       /* items split off by a 413, sent after body */
  uint64_t items, todo_items;
  int sent;
  int body_gone; /* gzip: body freed once compressed (sw_body_restore) */
};

static int es_create(const struct sw_sink_conf *c, const struct sw_sink_env *env, void **out,
                     char *err, size_t errlen) {
  (void)err;
  (void)errlen;
  struct es *e = calloc(1, sizeof *e);
  if (!e) return SW_ENOMEM;
  e->c = c;
  e->agent_id = env->agent_id;
  e->gzip = !c->compression || strcmp(c->compression, "none") != 0;
  size_t n = strlen(c->url);
  while (n && c->url[n - 1] == '/') n--;
  if (!(e->url = malloc(n + 8))) {
    free(e);
    return SW_ENOMEM;
  }
  snprintf(e->url, n + 8, "%.*s/_bulk", (int)n, c->url);
  e->dyn_index = sw_tmpl_dynamic(c->index);
  int rc = sw_route_init(&e->route, c->match, c->nmatch);
  if (rc) {
    free(e->url);
    free(e);
    return rc;
  }
  *out = e;
  return SW_OK;
}

static void es_destroy(void *codec) {
  struct es *e = codec;
  sw_route_free(&e->route);
  free(e->url);
  free(e);
}

static int es_begin(void *codec, struct sw_batch *b) {
  (void)codec;
  struct esbatch *eb = calloc(1, sizeof *eb);
  if (!eb) return SW_ENOMEM;
  sw_buf_init(&eb->body, SIZE_MAX);
  sw_buf_init(&eb->wire, SIZE_MAX);
  sw_buf_init(&eb->todo, SIZE_MAX);
  b->priv = eb;
  return SW_OK;
}

/* The index of a record, cached while the second does not change. */
struct index_cache {
  int64_t sec;
  char name[256];
  size_t len;
};

static void index_for(const char *pattern, int64_t ns, struct index_cache *ic) {
  int64_t sec = ns >= 0 ? ns / 1000000000 : (ns - 999999999) / 1000000000;
  if (sec == ic->sec && ic->len) return;
  ic->sec = sec;
  time_t t = (time_t)sec;
  struct tm tm;
  gmtime_r(&t, &tm);
#pragma GCC diagnostic push /* the pattern is the user's, strftime is meant for that */
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
  ic->len = strftime(ic->name, sizeof ic->name, pattern, &tm);
#pragma GCC diagnostic pop
  if (!ic->len) ic->len = (size_t)snprintf(ic->name, sizeof ic->name, "%.200s", pattern);
}

/* `{` + inner of a JSON object payload: the first '{' and the last '}' around it. */
static void object_inner(const char *s, size_t n, const char **in, size_t *in_len) {
  size_t a = 0, z = n;
  while (a < n && s[a] != '{') a++;
  while (z > a && s[z - 1] != '}') z--;
  a++;
  z = z ? z - 1 : 0;
  while (a < z && (s[a] == ' ' || s[a] == '\t' || s[a] == '\r' || s[a] == '\n')) a++;
  *in = s + a;
  *in_len = z > a ? z - a : 0;
}

static int es_add(void *codec, struct sw_batch *b, const struct sw_chunk_row *row, const void *raw,
                  size_t len) {
  struct es *e = codec;
  struct esbatch *eb = b->priv;
  struct sw_buf *o = &eb->body;
  const char *labels = row->labels_json;
  size_t llen = strlen(labels);
  if (llen < 2 || labels[llen - 1] != '}') return SW_ECORRUPT;
  struct sw_chunk_iter it;
  uint64_t count;
  int rc = sw_chunk_iter_init(&it, raw, len, &count);
  /* A chunk's documents take about 2.5 times its records (labels and fields per document):
   * room for them at once instead of a copy per doubling. */
  if (!rc) rc = sw_buf_reserve(o, len * 5 / 2 + count * (llen + 96));
  if (rc) return rc;
  static const char *const streams[4] = {"stdout", "stderr", "file", "stdout"};
  struct index_cache ic = {.sec = INT64_MIN};
  struct sw_record_view r;
  char ts[SW_TIME_RFC3339_LEN + 1];
  int64_t cached_sec = INT64_MIN;
  uint64_t idx = 0;
  /* "<agent id>-<chunk id>-": the record index follows. */
  char idp[96];
  int idn = snprintf(idp, sizeof idp, "\",\"_id\":\"%s-%lld-", e->agent_id, (long long)row->id);
  struct sw_route_memo memo;
  int route = sw_route_chunk(&e->route, labels, &memo);
  if (route == SW_ROUTE_NONE) {
    b->routed_away += count;
    return SW_OK;
  }
  uint64_t docs = 0;
  /* index with {label}s: expanded per record set (sets are stored once per chunk) */
  struct sw_buf pat;
  sw_buf_init(&pat, 1 << 12);
  const char *pat_xl = NULL;
  int pat_have = 0;
  uint64_t pat_missing = 0;
  int more;
  for (; (more = sw_chunk_iter_next(&it, &r)) == 1; idx++) { /* ids keep the record's index */
    if (route == SW_ROUTE_RECORDS && !sw_route_record(&e->route, &memo, &r)) {
      b->routed_away++;
      continue;
    }
    const char *pattern = e->c->index;
    if (e->dyn_index) {
      if (!pat_have || pat_xl != r.xl) {
        sw_buf_reset(&pat);
        pat_missing = 0;
        rc = sw_tmpl_expand(e->c->index, SW_TMPL_INDEX, labels, &r, &pat, &pat_missing);
        if (!rc) rc = sw_buf_putc(&pat, 0);
        if (rc) break;
        pat_have = 1;
        pat_xl = r.xl;
        ic.len = 0; /* another index */
      }
      pattern = pat.data;
      b->label_missing += pat_missing;
    }
    index_for(pattern, r.ts_ns, &ic);
    sw_time_format_rfc3339_cached(r.ts_ns, &cached_sec, ts);
    rc = sw_buf_reserve(o, r.len + llen + ic.len + 256);
    if (!rc) rc = sw_buf_append(o, "{\"create\":{\"_index\":\"", 21);
    if (!rc) rc = sw_buf_put_json_str(o, ic.name, ic.len, NULL);
    if (!rc) rc = sw_buf_append(o, idp, (size_t)idn);
    if (!rc) rc = sw_buf_put_u64(o, idx);
    if (!rc) rc = sw_buf_append(o, "\"}}\n{", 5);
    struct sw_json_info ji = {0};
    int merge = e->c->merge_json && !(r.flags & (SW_REC_INVALID_UTF8 | SW_REC_TRUNCATED)) &&
                r.len && sw_json_scan(r.line, r.len, &ji) == 0;
    int first = 1;
    if (!rc && !(merge && (ji.keys & SW_JSON_KEY_AT_TIMESTAMP))) {
      rc = sw_buf_append(o, "\"@timestamp\":\"", 14);
      if (!rc) rc = sw_buf_append(o, ts, SW_TIME_RFC3339_LEN);
      if (!rc) rc = sw_buf_putc(o, '"');
      first = 0;
    }
    if (!rc && !(merge && (ji.keys & SW_JSON_KEY_LABELS))) {
      rc = sw_buf_append(o, first ? "\"labels\":" : ",\"labels\":", first ? 9 : 10);
      if (!rc) rc = sw_buf_append(o, labels, llen - 1);
      if (!rc) rc = sw_labels_append_set(o, llen > 2, &r);
      if (!rc && (r.flags & SW_REC_PARSE_ERROR))
        rc = sw_buf_printf(o, ",\"parse_error\":\"%s\"", row->format ? row->format : "unknown");
      if (!rc && (r.flags & SW_REC_TRUNCATED)) rc = sw_buf_append(o, ",\"truncated\":\"true\"", 19);
      if (!rc && (r.flags & SW_REC_INVALID_UTF8)) rc = sw_buf_append(o, ",\"invalid_utf8\":\"true\"", 22);
      if (!rc) rc = sw_buf_putc(o, '}');
      first = 0;
    }
    if (!rc && !(merge && (ji.keys & SW_JSON_KEY_STREAM))) {
      const char *sv = streams[r.stream & 3];
      rc = sw_buf_append(o, first ? "\"stream\":\"" : ",\"stream\":\"", first ? 10 : 11);
      if (!rc) rc = sw_buf_append(o, sv, strlen(sv));
      if (!rc) rc = sw_buf_putc(o, '"');
      first = 0;
    }
    if (!rc && merge) {
      const char *in;
      size_t in_len;
      object_inner(r.line, r.len, &in, &in_len);
      if (in_len && !first) rc = sw_buf_putc(o, ',');
      if (!rc) rc = sw_buf_append(o, in, in_len);
    } else if (!rc) {
      rc = sw_buf_append(o, ",\"message\":\"", 12);
      if (!rc) rc = sw_buf_put_json_str(o, r.line, r.len, NULL);
      if (!rc) rc = sw_buf_putc(o, '"');
    }
    if (!rc) rc = sw_buf_append(o, "}\n", 2);
    if (rc) break;
    docs++;
  }
  sw_buf_free(&pat);
  if (rc) return rc;
  if (more < 0) return more;
  eb->items += docs;
  return SW_OK;
}

static int compress_body(struct es *e, struct esbatch *eb) {
  return e->gzip ? sw_gzip_keep_wire(&eb->body, &eb->wire, &eb->body_gone) : SW_OK;
}

static int es_seal(void *codec, struct sw_batch *b) { return compress_body(codec, b->priv); }

static uint64_t count_items(const char *p, size_t n) {
  uint64_t lines = 0;
  for (const char *q = p; (q = memchr(q, '\n', (size_t)(p + n - q))); q++) lines++;
  return lines / 2;
}

static int es_replay(void *codec, struct sw_batch *b, const void *payload, size_t len, const char *key) {
  (void)key;
  int rc = es_begin(codec, b);
  if (rc) return rc;
  struct esbatch *eb = b->priv;
  rc = sw_buf_append(&eb->body, payload, len);
  eb->items = count_items(payload, len);
  return rc ? rc : compress_body(codec, eb);
}

static int es_next(void *codec, struct sw_batch *b, struct sw_sink_req *q) {
  struct es *e = codec;
  struct esbatch *eb = b->priv;
  if (eb->sent) {
    if (!eb->todo.len) return 0;
    struct sw_buf t = eb->body; /* the split-off items become the request */
    eb->body = eb->todo;
    eb->todo = t;
    eb->body_gone = 0;
    sw_buf_reset(&eb->todo);
    eb->items = eb->todo_items;
    eb->todo_items = 0;
    if (compress_body(e, eb)) return 0;
  }
  if (!eb->items) return 0;
  eb->sent = 1;
  q->method = "POST";
  q->url = e->url;
  q->content_type = "application/x-ndjson";
  q->content_encoding = e->gzip ? "gzip" : NULL;
  const struct sw_buf *w = e->gzip ? &eb->wire : &eb->body;
  q->body = w->data;
  q->len = w->len;
  return 1;
}

/* Offsets of the item lines: item i is [off[i], off[i+1]). */
static size_t *item_offsets(const struct sw_buf *body, uint64_t items) {
  size_t *off = malloc((items + 1) * sizeof *off);
  if (!off) return NULL;
  size_t pos = 0;
  for (uint64_t i = 0; i < items; i++) {
    off[i] = pos;
    for (int l = 0; l < 2; l++) {
      const char *nl = memchr(body->data + pos, '\n', body->len - pos);
      pos = nl ? (size_t)(nl - body->data) + 1 : body->len;
    }
  }
  off[items] = pos;
  return off;
}

static int split_413(struct es *e, struct esbatch *eb, struct sw_batch *b, const struct sw_http_resp *resp) {
  if (eb->items < 2)
    return sw_batch_dead(b, resp->status, "request too large for the server (413) with one document",
                         56, eb->body.data, eb->body.len, NULL, eb->items) ? SW_HTTP_RETRY : SW_HTTP_DONE;
  size_t *off = item_offsets(&eb->body, eb->items);
  if (!off) return SW_HTTP_RETRY;
  uint64_t half = eb->items / 2;
  struct sw_buf rest;
  sw_buf_init(&rest, SIZE_MAX);
  int rc = sw_buf_append(&rest, eb->body.data + off[half], eb->body.len - off[half]);
  if (!rc) rc = sw_buf_append(&rest, eb->todo.data, eb->todo.len);
  if (rc) {
    free(off);
    sw_buf_free(&rest);
    return SW_HTTP_RETRY;
  }
  sw_buf_free(&eb->todo);
  eb->todo = rest;
  eb->todo_items += eb->items - half;
  eb->body.len = off[half];
  eb->items = half;
  free(off);
  return compress_body(e, eb) ? SW_HTTP_RETRY : SW_HTTP_RETRY;
}

/* "errors": true: keeps the items to retry in body, dead-letters the refused ones. */
static int sort_items(struct es *e, struct esbatch *eb, struct sw_batch *b, const struct sw_http_resp *resp) {
  cJSON *root = cJSON_ParseWithLength(resp->body, resp->body_len);
  const cJSON *items = root ? cJSON_GetObjectItem(root, "items") : NULL;
  if (!cJSON_IsArray(items) || (uint64_t)cJSON_GetArraySize(items) != eb->items) {
    cJSON_Delete(root);
    return SW_HTTP_RETRY; /* an answer we cannot match to the request: send it all again */
  }
  size_t *off = item_offsets(&eb->body, eb->items);
  struct sw_buf again, dead;
  sw_buf_init(&again, SIZE_MAX);
  sw_buf_init(&dead, SIZE_MAX);
  uint64_t nagain = 0, ndead = 0;
  long dead_status = 0;
  char reason[300] = "";
  int rc = off ? SW_OK : SW_ENOMEM;
  const cJSON *item;
  size_t i = 0;
  cJSON_ArrayForEach(item, items) {
    if (rc) break;
    const cJSON *op = item->child; /* {"create": {...}} */
    const cJSON *st = op ? cJSON_GetObjectItem(op, "status") : NULL;
    long status = cJSON_IsNumber(st) ? (long)st->valuedouble : 0;
    const char *p = eb->body.data + off[i];
    size_t n = off[i + 1] - off[i];
    i++;
    if ((status >= 200 && status < 300) || status == 409) continue;
    if (status == 0 || status == 429 || status >= 500) {
      rc = sw_buf_append(&again, p, n);
      nagain++;
      continue;
    }
    rc = sw_buf_append(&dead, p, n);
    if (!ndead++) {
      const cJSON *err = cJSON_GetObjectItem(op, "error");
      const cJSON *type = err ? cJSON_GetObjectItem(err, "type") : NULL;
      const cJSON *why = err ? cJSON_GetObjectItem(err, "reason") : NULL;
      dead_status = status;
      snprintf(reason, sizeof reason, "%s: %s", cJSON_IsString(type) ? type->valuestring : "error",
               cJSON_IsString(why) ? why->valuestring : "");
    }
  }
  cJSON_Delete(root);
  free(off);
  if (!rc && ndead) {
    char r2[340];
    int n = snprintf(r2, sizeof r2, "%llu of %llu documents refused, first: %s",
                     (unsigned long long)ndead, (unsigned long long)eb->items, reason);
    rc = sw_batch_dead(b, dead_status, r2, (size_t)n, dead.data, dead.len, NULL, ndead);
  }
  if (rc) { /* could not keep the refused ones: send everything again rather than drop them */
    sw_buf_free(&again);
    sw_buf_free(&dead);
    return SW_HTTP_RETRY;
  }
  sw_buf_free(&dead);
  sw_buf_free(&eb->body);
  eb->body = again;
  eb->items = nagain;
  if (!nagain) return SW_HTTP_DONE;
  return compress_body(e, eb) ? SW_HTTP_RETRY : SW_HTTP_RETRY;
}

static int es_respond(void *codec, struct sw_batch *b, const struct sw_http_resp *resp,
                      const void **body, size_t *len) {
  struct es *e = codec;
  struct esbatch *eb = b->priv;
  int out;
  if (resp->status >= 200 && resp->status < 300) {
    /* Elasticsearch writes "errors" right after "took": skip parsing the common case. */
    const char *p = memmem(resp->body, resp->body_len < 64 ? resp->body_len : 64, "\"errors\":", 9);
    if (p && !strncmp(p + 9, "false", 5)) return SW_HTTP_DONE;
    if (sw_body_restore(&eb->body, &eb->wire, &eb->body_gone)) return SW_HTTP_RETRY;
    out = sort_items(e, eb, b, resp);
  } else if (sw_body_restore(&eb->body, &eb->wire, &eb->body_gone)) {
    out = SW_HTTP_RETRY; /* out of memory: better to send it again than to drop it */
  } else if (resp->status == 413) {
    out = split_413(e, eb, b, resp);
  } else {
    out = sw_batch_dead(b, resp->status, resp->body, resp->body_len, eb->body.data, eb->body.len,
                        NULL, eb->items) ? SW_HTTP_RETRY : SW_HTTP_DONE;
  }
  if (out == SW_HTTP_RETRY) {
    const struct sw_buf *w = e->gzip ? &eb->wire : &eb->body;
    *body = w->data;
    *len = w->len;
  }
  return out;
}

static void es_release(void *codec, struct sw_batch *b) {
  (void)codec;
  struct esbatch *eb = b->priv;
  if (!eb) return;
  sw_buf_free(&eb->body);
  sw_buf_free(&eb->wire);
  sw_buf_free(&eb->todo);
  free(eb);
  b->priv = NULL;
}

const struct sw_sink_ops sw_es_ops = {
    .type = "elasticsearch",
    .create = es_create,
    .destroy = es_destroy,
    .begin = es_begin,
    .add = es_add,
    .seal = es_seal,
    .replay = es_replay,
    .next = es_next,
    .respond = es_respond,
    .release = es_release,
};
