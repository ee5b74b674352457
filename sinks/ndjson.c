#include "ndjson.h"

#include <string.h>

#include "../agent/buffer/chunk.h"
#include "../common/timefmt.h"
#include "../parsers/record.h"

static int has_high_bytes(const char *s, size_t n) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t w;
    memcpy(&w, s + i, 8);
    if (w & 0x8080808080808080ULL) return 1;
  }
  for (; i < n; i++)
    if ((unsigned char)s[i] >= 0x80) return 1;
  return 0;
}

/* `},"stream":"…","line":"` per stream value, precomputed: no printf per record. */
#define SW__STREAM(v) {"},\"stream\":\"" v "\",\"line\":\"", sizeof("},\"stream\":\"" v "\",\"line\":\"") - 1}
static const struct {
  const char *s;
  size_t n;
} k_stream[4] = {SW__STREAM("stdout"), SW__STREAM("stderr"), SW__STREAM("file"), SW__STREAM("stdout")};

void sw_ndjson_state_init(struct sw_ndjson_state *s) {
  s->cached_sec = INT64_MIN;
  s->ts[0] = 0;
  sw_buf_init(&s->probe, SIZE_MAX);
}

void sw_ndjson_state_free(struct sw_ndjson_state *s) { sw_buf_free(&s->probe); }

int sw_ndjson_record(struct sw_ndjson_state *s, const char *labels, size_t llen, const char *format,
                     const struct sw_record_view *r, struct sw_buf *out) {
  if (llen < 2 || labels[llen - 1] != '}') return SW_ECORRUPT;
  sw_time_format_rfc3339_cached(r->ts_ns, &s->cached_sec, s->ts);
  int invalid = 0, rc = SW_OK;
  if (has_high_bytes(r->line, r->len)) { /* rare: learn validity before the labels are written */
    sw_buf_reset(&s->probe);
    if ((rc = sw_buf_put_json_str(&s->probe, r->line, r->len, &invalid))) return rc;
  }
  rc = sw_buf_reserve(out, r->len + llen + 128);
  if (!rc) rc = sw_buf_append(out, "{\"ts\":\"", 7);
  if (!rc) rc = sw_buf_append(out, s->ts, SW_TIME_RFC3339_LEN);
  if (!rc) rc = sw_buf_append(out, "\",\"labels\":", 11);
  if (!rc) rc = sw_buf_append(out, labels, llen - 1);
  if (!rc) rc = sw_labels_append_set(out, llen > 2, r);
  if (!rc && (r->flags & SW_REC_PARSE_ERROR))
    rc = sw_buf_printf(out, ",\"parse_error\":\"%s\"", format ? format : "unknown");
  if (!rc && (r->flags & SW_REC_TRUNCATED)) rc = sw_buf_append(out, ",\"truncated\":\"true\"", 19);
  if (!rc && invalid) rc = sw_buf_append(out, ",\"invalid_utf8\":\"true\"", 22);
  if (!rc) rc = sw_buf_append(out, k_stream[r->stream & 3].s, k_stream[r->stream & 3].n);
  if (!rc) rc = invalid ? sw_buf_append(out, s->probe.data, s->probe.len)
                        : sw_buf_put_json_str(out, r->line, r->len, NULL);
  if (!rc) rc = sw_buf_append(out, "\"}\n", 3);
  return rc;
}

int sw_labels_append_set(struct sw_buf *out, int after_member, const struct sw_record_view *r) {
  if (r->xl_len <= 2) return SW_OK;
  int rc = after_member ? sw_buf_putc(out, ',') : SW_OK;
  return rc ? rc : sw_buf_append(out, r->xl + 1, r->xl_len - 2);
}

int sw_ndjson_encode(const struct sw_chunk_row *row, const void *raw, size_t raw_len,
                     const struct sw_route *route, struct sw_buf *out, uint64_t *records) {
  struct sw_chunk_iter it;
  uint64_t count;
  int rc = sw_chunk_iter_init(&it, raw, raw_len, &count);
  if (rc) return rc;
  const char *labels = row->labels_json;
  size_t llen = strlen(labels);
  struct sw_ndjson_state st;
  sw_ndjson_state_init(&st);
  struct sw_record_view r;
  uint64_t n = 0, out_n = 0;
  struct sw_route_memo memo;
  int rv = sw_route_chunk(route, labels, &memo);
  int more;
  while ((more = sw_chunk_iter_next(&it, &r)) == 1) {
    n++;
    if (rv == SW_ROUTE_NONE || (rv == SW_ROUTE_RECORDS && !sw_route_record(route, &memo, &r))) continue;
    if ((rc = sw_ndjson_record(&st, labels, llen, row->format, &r, out))) break;
    out_n++;
  }
  sw_ndjson_state_free(&st);
  if (rc) return rc;
  if (more < 0) return more;
  if (n != count) return SW_ECORRUPT;
  *records = out_n;
  return SW_OK;
}
