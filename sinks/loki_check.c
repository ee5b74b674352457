/* loki_check.c - before a batch that was in flight at a crash is sent again, ask Loki which of
 * its entries it already stores, so that a resend never stores an entry twice.
 *
 * Per stream of the batch, in order: GET query_range with the stream's exact selector, from its
 * first to its last timestamp, forward, in pages of SW_LOKI_PAGE entries. Every returned entry
 * of exactly this stream marks one equal local entry (same timestamp, same line) `present`;
 * equal entries count as a multiset (Loki keeps each stored copy). A page that comes back full
 * continues from its last timestamp: the entries at that timestamp are marked again from
 * scratch on the next page, which holds all of them, so a page edge neither loses nor doubles
 * a mark.
 *
 * When Loki cannot be asked (the query API refused: 4xx; or no usable answer after the
 * transport's bounded attempts), the rest is sent unchecked and counted in b->unverified
 * (spillway_sink_possibly_duplicated_records_total): duplicates rather than loss.
 * Runs on the loop thread; answers are at most a page (SW_LOKI_PAGE entries) each.
 */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/log.h"
#include "loki_int.h"

#define CHECK_ATTEMPTS 6 /* transient failures of one question before sending unchecked */

/* %XX-encodes everything but RFC 3986 unreserved characters. */
static int put_urlenc(struct sw_buf *o, const char *s, size_t n) {
  static const char hex[] = "0123456789ABCDEF";
  int rc = SW_OK;
  for (size_t i = 0; i < n && !rc; i++) {
    unsigned char ch = (unsigned char)s[i];
    if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
        ch == '-' || ch == '_' || ch == '.' || ch == '~')
      rc = sw_buf_putc(o, (char)ch);
    else
      rc = sw_buf_append(o, (char[]){'%', hex[ch >> 4], hex[ch & 15]}, 3);
  }
  return rc;
}

/* {"a":"x","b":"y\"z"} -> {a="x",b="y\"z"}: a LogQL selector matching exactly these labels.
 * LogQL strings take Go's escapes, which cover what JSON's produce (\" \\ \n \t \uXXXX). */
static int selector(struct sw_buf *o, const char *labels_json) {
  cJSON *root = cJSON_Parse(labels_json), *it;
  if (!root) return SW_ECORRUPT;
  int rc = sw_buf_putc(o, '{');
  int first = 1;
  cJSON_ArrayForEach(it, root) {
    if (rc || !cJSON_IsString(it)) continue;
    rc = sw_buf_printf(o, "%s%s=\"", first ? "" : ",", it->string);
    if (!rc) rc = sw_buf_put_json_str(o, it->valuestring, strlen(it->valuestring), NULL);
    if (!rc) rc = sw_buf_putc(o, '"');
    first = 0;
  }
  if (!rc) rc = sw_buf_putc(o, '}');
  cJSON_Delete(root);
  return rc;
}

int sw__loki_check_next(struct sw__loki *l, struct sw_batch *b, struct sw_sink_req *req) {
  struct sw__loki_batch *lb = b->priv;
  struct sw__loki_check *c = &lb->chk;
  while (!c->failed && c->stream < lb->n && lb->s[c->stream].n == 0) c->stream++;
  if (c->failed || c->stream >= lb->n) return 0;
  struct sw__loki_stream *st = &lb->s[c->stream];
  if (!c->asked) c->start = st->e[0].ts; /* first page of this stream */
  c->asked = 1;
  struct sw_buf *u = &c->url, *sel = &c->scratch;
  sw_buf_reset(u);
  sw_buf_reset(sel);
  int rc = selector(sel, st->labels);
  if (!rc) rc = sw_buf_printf(u, "%s?query=", l->query_base);
  if (!rc) rc = put_urlenc(u, sel->data, sel->len);
  if (!rc)
    rc = sw_buf_printf(u, "&start=%lld&end=%lld&limit=%d&direction=forward", (long long)c->start,
                       (long long)st->e[st->n - 1].ts + 1, SW_LOKI_PAGE);
  if (!rc) rc = sw_buf_putc(u, '\0');
  if (rc) return rc; /* out of memory: the shipper asks again later */
  memset(req, 0, sizeof *req);
  req->method = "GET";
  req->url = u->data;
  req->headers[0] = st->tenant_header ? st->tenant_header : l->tenant_header;
  req->max_attempts = CHECK_ATTEMPTS;
  return 1;
}

/* Entries of every stream from the current one on that are not known to be stored: they are
 * sent unchecked. */
static void give_up(struct sw_batch *b, const char *why, long status) {
  struct sw__loki_batch *lb = b->priv;
  struct sw__loki_check *c = &lb->chk;
  uint64_t n = 0;
  for (size_t i = c->stream; i < lb->n; i++)
    for (size_t k = 0; k < lb->s[i].n; k++) n += !lb->s[i].e[k].present;
  c->failed = 1;
  b->unverified += n;
  SW_LOG(SW_L_WARN, "sink", "cannot ask Loki what it already holds (%s%s%ld): %llu entries of "
         "chunks %lld..%lld are sent again unchecked and may be stored twice", why,
         status ? ", HTTP " : "", status, (unsigned long long)n, (long long)b->after + 1,
         (long long)b->last);
}

/* Does Loki's stream `got` name exactly our stream (labels_json)? Labels it adds beyond ours
 * may only be our structured metadata (Loki 3 returns it beside the labels). */
static int same_stream(const struct sw__loki *l, const cJSON *ours, const cJSON *got) {
  const cJSON *it;
  cJSON_ArrayForEach(it, ours) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(got, it->string);
    if (!cJSON_IsString(v) || strcmp(v->valuestring, it->valuestring)) return 0;
  }
  cJSON_ArrayForEach(it, got) {
    if (cJSON_GetObjectItemCaseSensitive(ours, it->string)) continue;
    int meta = 0;
    for (size_t i = 0; i < l->c->nstructured_metadata && !meta; i++)
      meta = !strcmp(l->c->structured_metadata[i], it->string);
    if (!meta) return 0;
  }
  return 1;
}

/* First index with ts >= t (entries are sorted by time). */
static size_t lower_bound(const struct sw__loki_stream *st, int64_t t) {
  size_t lo = 0, hi = st->n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (st->e[mid].ts < t) lo = mid + 1; else hi = mid;
  }
  return lo;
}

/* Marks one local entry equal to (ts, line) present, if an unmarked one is left. */
static int mark(struct sw__loki_stream *st, struct sw_buf *scratch, int64_t ts, const char *line) {
  sw_buf_reset(scratch);
  int rc = sw_buf_put_json_str(scratch, line, strlen(line), NULL);
  if (rc) return rc;
  for (size_t k = lower_bound(st, ts); k < st->n && st->e[k].ts == ts; k++) {
    struct sw__loki_entry *e = &st->e[k];
    if (!e->present && e->len == scratch->len && !memcmp(st->text.data + e->off, scratch->data, e->len)) {
      e->present = 1;
      break;
    }
  }
  return SW_OK;
}

/* One page of answers for the current stream: marks, then says where the next page starts.
 * Returns 0, or -1 when the answer is not what Loki sends. */
static int read_page(struct sw__loki *l, struct sw__loki_batch *lb, const cJSON *result) {
  struct sw__loki_check *c = &lb->chk;
  struct sw__loki_stream *st = &lb->s[c->stream];
  cJSON *ours = cJSON_Parse(st->labels);
  if (!ours || !cJSON_IsArray(result)) {
    cJSON_Delete(ours);
    return -1;
  }
  /* Entries at the page's first timestamp are marked again from this page, which has them all. */
  for (size_t k = lower_bound(st, c->start); k < st->n && st->e[k].ts == c->start; k++)
    st->e[k].present = 0;
  size_t total = 0;
  int64_t max_ts = c->start;
  const cJSON *sv, *v;
  int rc = 0;
  cJSON_ArrayForEach(sv, result) {
    const cJSON *labels = cJSON_GetObjectItemCaseSensitive(sv, "stream");
    int mine = cJSON_IsObject(labels) && same_stream(l, ours, labels);
    cJSON_ArrayForEach(v, cJSON_GetObjectItemCaseSensitive(sv, "values")) {
      const cJSON *ts = cJSON_GetArrayItem(v, 0), *line = cJSON_GetArrayItem(v, 1);
      if (!cJSON_IsString(ts) || !cJSON_IsString(line)) {
        rc = -1;
        break;
      }
      int64_t t = strtoll(ts->valuestring, NULL, 10);
      total++;
      if (t > max_ts) max_ts = t;
      if (mine && mark(st, &c->scratch, t, line->valuestring)) rc = -1;
    }
  }
  cJSON_Delete(ours);
  if (rc) return rc;
  if (total < SW_LOKI_PAGE) { /* the last page of this stream */
    c->stream++;
    c->asked = 0;
  } else {
    /* A full page at a single timestamp cannot move on by time: step past it (entries beyond
     * the page at that very nanosecond are then not seen as stored). */
    c->start = max_ts > c->start ? max_ts : c->start + 1;
  }
  return 0;
}

void sw__loki_check_respond(struct sw__loki *l, struct sw_batch *b, const struct sw_http_resp *resp) {
  struct sw__loki_batch *lb = b->priv;
  if (resp->status != 200) {
    give_up(b, resp->status ? "query refused" : resp->curl_error, resp->status);
    return;
  }
  cJSON *root = cJSON_ParseWithLength(resp->body, resp->body_len);
  const cJSON *data = cJSON_GetObjectItemCaseSensitive(root, "data");
  const cJSON *status = cJSON_GetObjectItemCaseSensitive(root, "status");
  const cJSON *type = cJSON_GetObjectItemCaseSensitive(data, "resultType");
  if (!cJSON_IsString(status) || strcmp(status->valuestring, "success") || !cJSON_IsString(type) ||
      strcmp(type->valuestring, "streams") ||
      read_page(l, lb, cJSON_GetObjectItemCaseSensitive(data, "result")))
    give_up(b, "unexpected answer to query_range", 0);
  cJSON_Delete(root);
}
