/* loki.c - the Loki sink codec: POST /loki/api/v1/push, JSON, gzip.
 *
 * A chunk's labels (plus `stream` and the record flags, plus the sink's static labels) name
 * a Loki stream; label names are made valid for Loki ([a-zA-Z_][a-zA-Z0-9_]*). Entries of a
 * stream are sorted by time within a request (Loki rejects unsorted streams); nanosecond
 * timestamps are sent as strings, always the record's original time, so a resent request is
 * deduplicated by Loki (same stream, timestamp and line). Lines longer than Loki's default
 * 256 KiB entry limit are split into pieces (at UTF-8 boundaries) with the same timestamp.
 * Any answer other than 2xx that the transport does not retry (400 and other 4xx) dead-letters
 * the whole request: Loki may have stored part of it, which a replay deduplicates.
 *
 * Loki drops a resent identical entry only while the first is in its stream's open head block,
 * so a blind resend after a crash may store entries twice. The shipper therefore writes down
 * the last chunk of every batch before sending it (verify_resends); after a restart, batches up
 * to there come with b->verify and go through loki_check.c first, which asks Loki what it holds:
 *   CUT -> seal (streams kept) -> ASK (query_range per stream, paged) -> render -> PUSH -> DONE
 */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "../agent/buffer/chunk.h"
#include "../common/timefmt.h"
#include "../parsers/record.h"
#include "loki_int.h"
#include "template.h"

#define LOKI_MAX_LINE (256 * 1024)

void sw__loki_free_streams(struct sw__loki_batch *lb) {
  for (size_t i = 0; i < lb->n; i++) {
    free(lb->s[i].labels);
    free(lb->s[i].tenant_header);
    free(lb->s[i].e);
    sw_buf_free(&lb->s[i].text);
  }
  free(lb->s);
  lb->s = NULL;
  lb->n = lb->cap = 0;
}

static int loki_create(const struct sw_sink_conf *c, const struct sw_sink_env *env, void **out,
                       char *err, size_t errlen) {
  (void)env;
  (void)err;
  (void)errlen;
  struct sw__loki *l = calloc(1, sizeof *l);
  if (!l) return SW_ENOMEM;
  l->c = c;
  l->gzip = !c->compression || strcmp(c->compression, "none") != 0;
  size_t n = strlen(c->url);
  while (n && c->url[n - 1] == '/') n--;
  l->url = malloc(n + 32);
  if (l->url) snprintf(l->url, n + 32, "%.*s/loki/api/v1/push", (int)n, c->url);
  const char *q = c->query_url ? c->query_url : c->url;
  size_t qn = strlen(q);
  while (qn && q[qn - 1] == '/') qn--;
  if ((l->query_base = malloc(qn + 40)))
    snprintf(l->query_base, qn + 40, "%.*s/loki/api/v1/query_range", (int)qn, q);
  l->dyn_tenant = sw_tmpl_dynamic(c->tenant);
  if (c->tenant && !l->dyn_tenant && (l->tenant_header = malloc(strlen(c->tenant) + 32)))
    snprintf(l->tenant_header, strlen(c->tenant) + 32, "X-Scope-OrgID: %s", c->tenant);
  if (!l->url || !l->query_base || (c->tenant && !l->dyn_tenant && !l->tenant_header) ||
      sw_route_init(&l->route, c->match, c->nmatch)) {
    free(l->url);
    free(l->query_base);
    free(l->tenant_header);
    free(l);
    return SW_ENOMEM;
  }
  *out = l;
  return SW_OK;
}

static void loki_destroy(void *codec) {
  struct sw__loki *l = codec;
  sw_route_free(&l->route);
  free(l->url);
  free(l->query_base);
  free(l->tenant_header);
  free(l);
}

static int loki_begin(void *codec, struct sw_batch *b) {
  (void)codec;
  struct sw__loki_batch *lb = calloc(1, sizeof *lb);
  if (!lb) return SW_ENOMEM;
  sw_buf_init(&lb->body, SIZE_MAX);
  sw_buf_init(&lb->wire, SIZE_MAX);
  sw_buf_init(&lb->chk.url, 1 << 20);
  sw_buf_init(&lb->chk.scratch, 1 << 20);
  b->priv = lb;
  return SW_OK;
}

/* `"name":"value"` with name made a valid Loki label name. */
static int put_label(struct sw_buf *o, const char *name, const char *value) {
  int rc = sw_buf_append(o, o->len > 1 ? ",\"" : "\"", o->len > 1 ? 2 : 1);
  if (!rc && !((name[0] >= 'a' && name[0] <= 'z') || (name[0] >= 'A' && name[0] <= 'Z') || name[0] == '_'))
    rc = sw_buf_putc(o, '_');
  for (const char *p = name; !rc && *p; p++) {
    char ch = *p;
    int ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '_';
    rc = sw_buf_putc(o, ok ? ch : '_');
  }
  if (!rc) rc = sw_buf_append(o, "\":\"", 3);
  if (!rc) rc = sw_buf_put_json_str(o, value, strlen(value), NULL);
  if (!rc) rc = sw_buf_putc(o, '"');
  return rc;
}

static int in_list(char **list, size_t n, const char *s) {
  for (size_t i = 0; i < n; i++)
    if (!strcmp(list[i], s)) return 1;
  return 0;
}

/* The stream of these labels (and tenant header: NULL = the sink's). */
static struct sw__loki_stream *find_stream(struct sw__loki_batch *lb, const char *labels, size_t len,
                                           const char *th) {
  for (size_t i = 0; i < lb->n; i++)
    if (strlen(lb->s[i].labels) == len && !memcmp(lb->s[i].labels, labels, len) &&
        (th ? lb->s[i].tenant_header && !strcmp(lb->s[i].tenant_header, th) : !lb->s[i].tenant_header))
      return &lb->s[i];
  if (lb->n == lb->cap) {
    size_t nc = lb->cap ? lb->cap * 2 : 8;
    struct sw__loki_stream *ns = realloc(lb->s, nc * sizeof *ns);
    if (!ns) return NULL;
    lb->s = ns;
    lb->cap = nc;
  }
  struct sw__loki_stream *s = &lb->s[lb->n];
  memset(s, 0, sizeof *s);
  if (!(s->labels = strndup(labels, len))) return NULL;
  if (th && !(s->tenant_header = strdup(th))) {
    free(s->labels);
    return NULL;
  }
  s->sorted = 1;
  sw_buf_init(&s->text, SIZE_MAX);
  lb->n++;
  return s;
}

static int add_entry(struct sw__loki_stream *s, int64_t ts, uint32_t meta, size_t off, size_t len) {
  if (s->n == s->cap) {
    size_t nc = s->cap ? s->cap * 2 : 256;
    struct sw__loki_entry *ne = realloc(s->e, nc * sizeof *ne);
    if (!ne) return SW_ENOMEM;
    s->e = ne;
    s->cap = nc;
  }
  if (s->n && ts < s->e[s->n - 1].ts) s->sorted = 0;
  s->e[s->n] = (struct sw__loki_entry){.ts = ts, .seq = (uint32_t)s->n, .meta = meta, .off = off, .len = len};
  s->n++;
  return SW_OK;
}

/* Where a label goes: 1 stream, 2 structured metadata, 0 nowhere (not in stream_labels). */
static int label_place(const struct sw_sink_conf *c, const char *name) {
  if (in_list(c->structured_metadata, c->nstructured_metadata, name)) return 2;
  if (c->stream_labels && !in_list(c->stream_labels, c->nstream_labels, name)) return 0;
  return 1;
}

struct split {
  const struct sw_sink_conf *c;
  struct sw_buf *stream, *meta;
};

static int split_label(void *arg, const char *k, const char *v) {
  struct split *s = arg;
  int place = label_place(s->c, k);
  return place == 1 ? put_label(s->stream, k, v) : place == 2 ? put_label(s->meta, k, v) : 0;
}

static int loki_add(void *codec, struct sw_batch *b, const struct sw_chunk_row *row, const void *raw,
                    size_t len) {
  struct sw__loki *l = codec;
  struct sw__loki_batch *lb = b->priv;
  const struct sw_sink_conf *c = l->c;
  struct sw_route_memo memo;
  int route = sw_route_chunk(&l->route, row->labels_json, &memo);
  if (route == SW_ROUTE_NONE) {
    b->routed_away += row->records;
    return SW_OK;
  }
  /* The chunk's label set without `stream`/flags ("base"), and its structured metadata; a
   * record's own labels (extracted) are added to them per record. */
  struct sw_buf base, meta, key, rmeta, th;
  sw_buf_init(&th, 1 << 10);
  uint64_t th_missing = 0;
  sw_buf_init(&base, 1 << 16);
  sw_buf_init(&meta, 1 << 16);
  sw_buf_init(&key, 1 << 17);
  sw_buf_init(&rmeta, 1 << 17);
  int rc = sw_buf_putc(&base, '{');
  if (!rc) rc = sw_buf_putc(&meta, '{');
  struct split sp = {c, &base, &meta};
  if (!rc) rc = sw_label_each(row->labels_json, strlen(row->labels_json), split_label, &sp);
  for (size_t i = 0; !rc && i < c->nlabels; i++) rc = put_label(&base, c->labels[i].key, c->labels[i].value);
  struct sw_chunk_iter ci;
  uint64_t count;
  if (!rc) rc = sw_chunk_iter_init(&ci, raw, len, &count);
  static const char *const streams[4] = {"stdout", "stderr", "file", "stdout"};
  struct sw_record_view r;
  int more = 0;
  struct sw__loki_stream *cur = NULL, *meta_in = NULL;
  int cur_key = -1;
  const char *cur_xl = NULL;
  uint32_t meta_ref = 0;
  while (!rc && (more = sw_chunk_iter_next(&ci, &r)) == 1) {
    if (route == SW_ROUTE_RECORDS && !sw_route_record(&l->route, &memo, &r)) {
      b->routed_away++;
      continue;
    }
    int k = (r.stream & 3) | ((r.flags & (SW_REC_PARSE_ERROR | SW_REC_TRUNCATED)) << 2);
    if (k != cur_key || r.xl != cur_xl) { /* the stream's labels: base + own + stream + flags */
      sw_buf_reset(&key);
      sw_buf_reset(&rmeta);
      rc = sw_buf_append(&key, base.data, base.len);
      if (!rc) rc = sw_buf_append(&rmeta, meta.data, meta.len);
      struct split rs = {c, &key, &rmeta};
      if (!rc && r.xl) rc = sw_label_each(r.xl, r.xl_len, split_label, &rs);
      if (!rc) rc = put_label(&key, "stream", streams[r.stream & 3]);
      if (!rc && (r.flags & SW_REC_PARSE_ERROR)) rc = put_label(&key, "parse_error", row->format ? row->format : "unknown");
      if (!rc && (r.flags & SW_REC_TRUNCATED)) rc = put_label(&key, "truncated", "true");
      if (!rc) rc = sw_buf_putc(&key, '}');
      if (!rc) rc = sw_buf_putc(&rmeta, '}');
      if (!rc && l->dyn_tenant) {
        sw_buf_reset(&th);
        th_missing = 0;
        rc = sw_buf_append(&th, "X-Scope-OrgID: ", 15);
        if (!rc) rc = sw_tmpl_expand(c->tenant, SW_TMPL_TENANT, row->labels_json, &r, &th, &th_missing);
        if (!rc) rc = sw_buf_putc(&th, 0);
      }
      if (rc) break;
      if (!(cur = find_stream(lb, key.data, key.len, l->dyn_tenant ? th.data : NULL))) {
        rc = SW_ENOMEM;
        break;
      }
      cur_key = k;
      cur_xl = r.xl;
      meta_in = NULL;
      /* Room for the rest of the chunk at once (escaping adds a little): no copy per doubling. */
      size_t left = (size_t)(ci.text_end - r.line);
      if (cur->text.cap - cur->text.len < left + left / 8 + 64 &&
          (rc = sw_buf_reserve(&cur->text, left + left / 8 + 64)))
        break;
    }
    b->label_missing += th_missing;
    if (rmeta.len > 2 && meta_in != cur) { /* once per stream and label set */
      meta_ref = (uint32_t)cur->text.len + 1;
      meta_in = cur;
      rc = sw_buf_append(&cur->text, rmeta.data, rmeta.len);
      if (!rc) rc = sw_buf_putc(&cur->text, 0);
    }
    /* Pieces of at most LOKI_MAX_LINE bytes, cut before a UTF-8 continuation byte. */
    size_t pos = 0;
    do {
      size_t n = r.len - pos;
      if (n > LOKI_MAX_LINE) {
        n = LOKI_MAX_LINE;
        while (n > 1 && ((unsigned char)r.line[pos + n] & 0xC0) == 0x80) n--;
      }
      size_t off = cur->text.len;
      if (!rc) rc = sw_buf_put_json_str(&cur->text, r.line + pos, n, NULL);
      if (!rc) rc = add_entry(cur, r.ts_ns, meta_in == cur ? meta_ref : 0, off, cur->text.len - off);
      pos += n;
    } while (!rc && pos < r.len);
  }
  if (!rc && more < 0) rc = more;
  sw_buf_free(&base);
  sw_buf_free(&meta);
  sw_buf_free(&key);
  sw_buf_free(&rmeta);
  sw_buf_free(&th);
  return rc;
}

static int by_time(const void *a, const void *b) {
  const struct sw__loki_entry *x = a, *y = b;
  if (x->ts != y->ts) return x->ts < y->ts ? -1 : 1;
  return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Sorts each stream by time (Loki refuses unsorted streams). */
static void sort_streams(struct sw__loki_batch *lb) {
  for (size_t i = 0; i < lb->n; i++) {
    struct sw__loki_stream *st = &lb->s[i];
    if (!st->sorted) qsort(st->e, st->n, sizeof *st->e, by_time);
    st->sorted = 1;
  }
}

/* The push body of the streams of tenant header th (NULL: the sink's) not marked present into
 * o (gzipped into wire when the sink compresses); *records gets their entries. */
static int render_tenant(struct sw__loki *l, struct sw__loki_batch *lb, const char *th, struct sw_buf *o,
                         struct sw_buf *wire, int *gone, uint64_t *records) {
  /* One allocation of the body's size: growing it by doubling copied it up to twice more. */
  size_t need = 16;
  *records = 0;
  for (size_t i = 0; i < lb->n; i++) {
    const struct sw__loki_stream *st = &lb->s[i];
    need += strlen(st->labels) + 32 + st->text.len + st->n * 32;
  }
  int rc = sw_buf_reserve(o, need);
  if (!rc) rc = sw_buf_append(o, "{\"streams\":[", 12);
  size_t nout = 0;
  for (size_t i = 0; !rc && i < lb->n; i++) {
    struct sw__loki_stream *st = &lb->s[i];
    if (th ? !st->tenant_header || strcmp(st->tenant_header, th) : st->tenant_header != NULL) continue;
    size_t k = 0;
    while (k < st->n && st->e[k].present) k++;
    if (k == st->n) continue; /* all of it is stored already */
    rc = sw_buf_printf(o, "%s{\"stream\":%s,\"values\":[", nout++ ? "," : "", st->labels);
    for (int first = 1; !rc && k < st->n; k++) {
      const struct sw__loki_entry *e = &st->e[k];
      if (e->present) continue;
      (*records)++;
      rc = sw_buf_reserve(o, e->len + 40);
      if (!rc) rc = sw_buf_append(o, first ? "[\"" : ",[\"", first ? 2 : 3);
      if (!rc) rc = e->ts < 0 ? sw_buf_printf(o, "%lld", (long long)e->ts) : sw_buf_put_u64(o, (uint64_t)e->ts);
      if (!rc) rc = sw_buf_append(o, "\",\"", 3);
      if (!rc) rc = sw_buf_append(o, st->text.data + e->off, e->len);
      if (!rc && e->meta) rc = sw_buf_printf(o, "\",%s]", st->text.data + e->meta - 1);
      else if (!rc) rc = sw_buf_append(o, "\"]", 2);
      first = 0;
    }
    if (!rc) rc = sw_buf_append(o, "]}", 2);
  }
  if (!rc) rc = sw_buf_append(o, "]}", 2);
  if (!rc && l->gzip) rc = sw_gzip_keep_wire(o, wire, gone);
  if (rc) { /* as it was: it may be called again */
    sw_buf_reset(o);
    sw_buf_reset(wire);
  }
  return rc;
}

static void free_more(struct sw__loki_batch *lb) {
  for (size_t i = 0; i < lb->nmore; i++) {
    free(lb->more[i].tenant_header);
    sw_buf_free(&lb->more[i].body);
    sw_buf_free(&lb->more[i].wire);
  }
  free(lb->more);
  lb->more = NULL;
  lb->nmore = lb->next_more = 0;
}

int sw__loki_render(struct sw__loki *l, struct sw__loki_batch *lb) {
  if (!l->dyn_tenant) {
    uint64_t n;
    lb->tenant_header = NULL;
    lb->req_records = 0;
    return render_tenant(l, lb, NULL, &lb->body, &lb->wire, &lb->body_gone, &n);
  }
  /* One request per tenant, in the order the tenants first appear. */
  free_more(lb);
  int rc = SW_OK, first = 1;
  for (size_t i = 0; !rc && i < lb->n; i++) {
    const char *th = lb->s[i].tenant_header;
    size_t j = 0;
    while (j < i && strcmp(lb->s[j].tenant_header, th)) j++;
    if (j < i) continue; /* rendered with an earlier stream */
    uint64_t n;
    if (first) {
      rc = render_tenant(l, lb, th, &lb->body, &lb->wire, &lb->body_gone, &n);
      lb->req_records = n;
      first = 0;
      continue;
    }
    struct sw__loki_more *nm = realloc(lb->more, (lb->nmore + 1) * sizeof *nm);
    if (!nm) {
      rc = SW_ENOMEM;
      break;
    }
    lb->more = nm;
    struct sw__loki_more *m = &nm[lb->nmore];
    memset(m, 0, sizeof *m);
    sw_buf_init(&m->body, SIZE_MAX);
    sw_buf_init(&m->wire, SIZE_MAX);
    if (!(m->tenant_header = strdup(th))) {
      rc = SW_ENOMEM;
      break;
    }
    lb->nmore++;
    rc = render_tenant(l, lb, th, &m->body, &m->wire, &m->body_gone, &m->records);
  }
  /* The first request's header lives in its stream, which is freed after rendering. */
  if (!rc && lb->n) {
    free(lb->replay_header);
    lb->replay_header = strdup(lb->s[0].tenant_header);
    lb->tenant_header = lb->replay_header;
    if (!lb->replay_header) rc = SW_ENOMEM;
  }
  if (rc) {
    free_more(lb);
    sw_buf_reset(&lb->body);
    sw_buf_reset(&lb->wire);
  }
  return rc;
}

static int loki_seal(void *codec, struct sw_batch *b) {
  struct sw__loki *l = codec;
  struct sw__loki_batch *lb = b->priv;
  sort_streams(lb);
  if (b->verify) { /* rendered once Loki has said what it holds */
    lb->verifying = 1;
    return SW_OK;
  }
  int rc = sw__loki_render(l, lb);
  if (!rc) sw__loki_free_streams(lb);
  return rc;
}

static int loki_replay(void *codec, struct sw_batch *b, const void *payload, size_t len, const char *key) {
  struct sw__loki *l = codec;
  int rc = loki_begin(codec, b);
  if (rc) return rc;
  struct sw__loki_batch *lb = b->priv;
  if (key && key[0]) { /* a {label} tenant's request: key is its tenant */
    size_t n = strlen(key) + 16;
    if (!(lb->replay_header = malloc(n))) return SW_ENOMEM;
    snprintf(lb->replay_header, n, "X-Scope-OrgID: %s", key);
    lb->tenant_header = lb->replay_header;
  }
  rc = sw_buf_append(&lb->body, payload, len);
  if (!rc && l->gzip) rc = sw_gzip_keep_wire(&lb->body, &lb->wire, &lb->body_gone);
  return rc;
}

static int loki_next(void *codec, struct sw_batch *b, struct sw_sink_req *q) {
  struct sw__loki *l = codec;
  struct sw__loki_batch *lb = b->priv;
  if (lb->verifying) {
    if (sw__loki_check_next(l, b, q)) return 1;
    /* Rendered here, on the loop: only for the few batches in flight at a crash. */
    int rc = sw__loki_render(l, lb);
    if (rc) return rc; /* the shipper calls again later */
    lb->verifying = 0;
    uint64_t left = 0;
    for (size_t i = 0; i < lb->n; i++)
      for (size_t k = 0; k < lb->s[i].n; k++) {
        if (lb->s[i].e[k].present) b->skipped++;
        else left++;
      }
    sw__loki_free_streams(lb);
    if (!left) return 0; /* Loki holds all of it */
  }
  if (lb->sent) {
    if (lb->next_more >= lb->nmore) return 0;
    struct sw__loki_more *m = &lb->more[lb->next_more++]; /* the next tenant's request */
    sw_buf_free(&lb->body);
    sw_buf_free(&lb->wire);
    lb->body = m->body;
    lb->wire = m->wire;
    lb->body_gone = m->body_gone;
    lb->req_records = m->records;
    sw_buf_init(&m->body, SIZE_MAX);
    sw_buf_init(&m->wire, SIZE_MAX);
    free(lb->replay_header);
    lb->replay_header = m->tenant_header;
    m->tenant_header = NULL;
    lb->tenant_header = lb->replay_header;
  } else if (!b->records) {
    return 0; /* the sink's match kept every record out */
  }
  lb->sent = 1;
  q->method = "POST";
  q->url = l->url;
  q->content_type = "application/json";
  q->content_encoding = l->gzip ? "gzip" : NULL;
  q->headers[0] = lb->tenant_header ? lb->tenant_header : l->tenant_header;
  const struct sw_buf *w = l->gzip ? &lb->wire : &lb->body;
  q->body = w->data;
  q->len = w->len;
  return 1;
}

static int loki_respond(void *codec, struct sw_batch *b, const struct sw_http_resp *resp,
                        const void **body, size_t *len) {
  (void)body;
  (void)len;
  struct sw__loki_batch *lb = b->priv;
  if (lb->verifying) {
    sw__loki_check_respond(codec, b, resp);
    return SW_HTTP_DONE;
  }
  if (resp->status >= 200 && resp->status < 300) return SW_HTTP_DONE;
  if (sw_body_restore(&lb->body, &lb->wire, &lb->body_gone)) return SW_HTTP_RETRY;
  const char *tenant = lb->tenant_header ? lb->tenant_header + 15 : NULL; /* kept as the key */
  if (sw_batch_dead(b, resp->status, resp->body, resp->body_len, lb->body.data, lb->body.len, tenant,
                    lb->req_records ? lb->req_records : b->records))
    return SW_HTTP_RETRY; /* cannot keep it: better to try again than to drop it */
  return SW_HTTP_DONE;
}

static void loki_release(void *codec, struct sw_batch *b) {
  (void)codec;
  struct sw__loki_batch *lb = b->priv;
  if (!lb) return;
  sw__loki_free_streams(lb);
  free_more(lb);
  free(lb->replay_header);
  sw_buf_free(&lb->body);
  sw_buf_free(&lb->wire);
  sw_buf_free(&lb->chk.url);
  sw_buf_free(&lb->chk.scratch);
  free(lb);
  b->priv = NULL;
}

const struct sw_sink_ops sw_loki_ops = {
    .type = "loki",
    .verify_resends = 1,
    .create = loki_create,
    .destroy = loki_destroy,
    .begin = loki_begin,
    .add = loki_add,
    .seal = loki_seal,
    .replay = loki_replay,
    .next = loki_next,
    .respond = loki_respond,
    .release = loki_release,
};
