#include "output.h"

#include <cjson/cJSON.h>
#include <string.h>

#include "../common/text.h"
#include "../common/timefmt.h"
#include "../parsers/labelmatch.h"
#include "../parsers/record.h"

void sw_search_out_init(struct sw_search_out *o, enum sw_search_format format) {
  memset(o, 0, sizeof *o);
  o->format = format;
  o->labels_chunk = -1;
  sw_ndjson_state_init(&o->nd);
  sw_buf_init(&o->labels, SIZE_MAX);
}

void sw_search_out_free(struct sw_search_out *o) {
  sw_ndjson_state_free(&o->nd);
  sw_buf_free(&o->labels);
}

static int put_text(struct sw_buf *b, const char *s, size_t n, int raw, int flags) {
  return raw ? sw_buf_append(b, s, n) : sw_buf_put_visible(b, s, n, flags);
}

/* {"host":"a","source":"b"} -> host=a,source=b (once per chunk). */
static int render_labels(struct sw_search_out *o, const struct sw_search_hit *h) {
  if (o->labels_chunk == h->chunk_id) return SW_OK;
  sw_buf_reset(&o->labels);
  cJSON *root = cJSON_Parse(h->labels_json), *it;
  int rc = SW_OK, first = 1, raw = o->format == SW_SEARCH_OUT_RAW;
  cJSON_ArrayForEach(it, root) {
    if (!cJSON_IsString(it)) continue;
    if (!first) rc = sw_buf_putc(&o->labels, ',');
    if (!rc) rc = put_text(&o->labels, it->string, strlen(it->string), raw, 0);
    if (!rc) rc = sw_buf_putc(&o->labels, '=');
    if (!rc) rc = put_text(&o->labels, it->valuestring, strlen(it->valuestring), raw, 0);
    if (rc) break;
    first = 0;
  }
  cJSON_Delete(root);
  if (!rc) o->labels_chunk = h->chunk_id;
  return rc;
}

struct own_arg {
  struct sw_buf *out;
  int raw, first;
};

static int put_own(void *arg, const char *k, const char *v) {
  struct own_arg *a = arg;
  int rc = a->first ? SW_OK : sw_buf_putc(a->out, ',');
  if (!rc) rc = put_text(a->out, k, strlen(k), a->raw, 0);
  if (!rc) rc = sw_buf_putc(a->out, '=');
  if (!rc) rc = put_text(a->out, v, strlen(v), a->raw, 0);
  a->first = 0;
  return rc;
}

int sw_search_out_hit(struct sw_search_out *o, const struct sw_search_hit *h, struct sw_buf *out) {
  if (o->format == SW_SEARCH_OUT_JSON)
    return sw_ndjson_record(&o->nd, h->labels_json, strlen(h->labels_json), h->format, &h->rec, out);
  int rc = render_labels(o, h);
  if (rc) return rc;
  sw_time_format_rfc3339_cached(h->rec.ts_ns, &o->nd.cached_sec, o->nd.ts);
  rc = sw_buf_reserve(out, SW_TIME_RFC3339_LEN + o->labels.len + h->rec.len + 16);
  if (!rc) rc = sw_buf_append(out, o->nd.ts, SW_TIME_RFC3339_LEN);
  if (!rc) rc = sw_buf_putc(out, ' ');
  if (!rc) rc = sw_buf_append(out, o->labels.data, o->labels.len);
  if (!rc && h->rec.xl) { /* the record's own labels (extracted) */
    struct own_arg a = {out, o->format == SW_SEARCH_OUT_RAW, o->labels.len == 0};
    rc = sw_label_each(h->rec.xl, h->rec.xl_len, put_own, &a);
  }
  if (!rc) rc = sw_buf_printf(out, " %s ", sw_stream_name(h->rec.stream));
  if (!rc) rc = put_text(out, h->rec.line, h->rec.len, o->format == SW_SEARCH_OUT_RAW,
                        SW_VISIBLE_KEEP_NEWLINES);
  if (!rc) rc = sw_buf_putc(out, '\n');
  return rc;
}
