/* Network sink codecs without a network: the exact payloads Loki and Elasticsearch get for a
 * chunk, how answers are classified, and the transport's backoff. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "agent/buffer/chunk.h"
#include "parsers/record.h"
#include "sinks/route.h"
#include "sinks/sink.h"
#include "sinks/template.h"

struct rec {
  int64_t ts;
  int stream, flags;
  const char *line;
  size_t len; /* 0: strlen */
};

/* A chunk row over the records, its raw data in *raw (caller frees with sw_buf_free). */
static struct sw_chunk_row make_row(const struct rec *r, size_t n, const char *labels, struct sw_buf *raw) {
  struct sw_chunk_builder cb;
  sw_chunk_builder_init(&cb, 4 << 20);
  for (size_t i = 0; i < n; i++)
    assert_int_equal(sw_chunk_add(&cb, r[i].ts, r[i].stream, r[i].flags, r[i].line,
                                  r[i].len ? r[i].len : strlen(r[i].line)), 0);
  sw_buf_init(raw, SIZE_MAX);
  assert_int_equal(sw_chunk_finish(&cb, raw), 0);
  sw_chunk_builder_free(&cb);
  return (struct sw_chunk_row){.id = 42, .source = "app", .labels_json = labels, .format = "json",
                               .records = (uint32_t)n};
}

static const char *encode(const struct sw_sink_ops *ops, struct sw_sink_conf *c, const struct rec *r,
                          size_t n, const char *labels, struct sw_batch *b, void **codec) {
  struct sw_sink_env env = {.agent_id = "a1b2", .host = "h"};
  char err[128];
  assert_int_equal(ops->create(c, &env, codec, err, sizeof err), 0);
  struct sw_buf raw;
  struct sw_chunk_row row = make_row(r, n, labels, &raw);
  memset(b, 0, sizeof *b);
  b->after = 41;
  b->last = 42;
  b->records = n;
  assert_int_equal(ops->begin(*codec, b), 0);
  assert_int_equal(ops->add(*codec, b, &row, raw.data, raw.len), 0);
  assert_int_equal(ops->seal(*codec, b), 0);
  sw_buf_free(&raw);
  struct sw_sink_req q;
  memset(&q, 0, sizeof q);
  assert_int_equal(ops->next(*codec, b, &q), 1);
  assert_null(q.content_encoding); /* compression: none, so the body can be read here */
  char *body = malloc(q.len + 1);
  memcpy(body, q.body, q.len);
  body[q.len] = 0;
  return body;
}

static void loki_payload(void **state) {
  (void)state;
  char big[600001];
  memset(big, 'x', sizeof big - 1);
  big[0] = 'B';
  big[sizeof big - 1] = 0;
  const struct rec r[] = {
      {300, 0, 0, "third", 0}, {100, 0, 0, "first", 0}, {200, 1, 0, "err", 0},
      {150, 0, SW_REC_PARSE_ERROR, "{broken", 0}, {400, 0, 0, big, 0}};
  char *md[] = {"pod_uid"};
  struct sw_kv lab[] = {{"job", "sw"}};
  struct sw_sink_conf c = {.name = "l", .type = SW_SINK_LOKI, .url = "http://l:3100/", .compression = "none",
                           .tenant = "t1", .labels = lab, .nlabels = 1, .structured_metadata = md,
                           .nstructured_metadata = 1};
  struct sw_batch b;
  void *codec;
  const char *body = encode(&sw_loki_ops, &c, r, 5, "{\"host\":\"h\",\"bad-name\":\"v\",\"pod_uid\":\"u-1\"}", &b, &codec);
  cJSON *root = cJSON_Parse(body);
  assert_non_null(root);
  cJSON *streams = cJSON_GetObjectItem(root, "streams");
  assert_int_equal(cJSON_GetArraySize(streams), 3); /* stdout, stderr, stdout+parse_error */
  cJSON *s0 = cJSON_GetArrayItem(streams, 0);
  cJSON *lab0 = cJSON_GetObjectItem(s0, "stream");
  assert_string_equal(cJSON_GetObjectItem(lab0, "bad_name")->valuestring, "v");
  assert_string_equal(cJSON_GetObjectItem(lab0, "job")->valuestring, "sw");
  assert_string_equal(cJSON_GetObjectItem(lab0, "stream")->valuestring, "stdout");
  assert_null(cJSON_GetObjectItem(lab0, "pod_uid"));
  cJSON *v = cJSON_GetObjectItem(s0, "values");
  /* sorted by time; the 600 000-byte line in three pieces under 256 KiB, same timestamp */
  assert_int_equal(cJSON_GetArraySize(v), 5);
  const char *want_ts[] = {"100", "300", "400", "400", "400"};
  size_t total = 0;
  for (int i = 0; i < 5; i++) {
    cJSON *e = cJSON_GetArrayItem(v, i);
    assert_string_equal(cJSON_GetArrayItem(e, 0)->valuestring, want_ts[i]);
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(e, 2), "pod_uid")->valuestring, "u-1");
    if (i >= 2) {
      size_t n = strlen(cJSON_GetArrayItem(e, 1)->valuestring);
      assert_true(n <= 262144);
      total += n;
    }
  }
  assert_int_equal(total, 600000);
  assert_string_equal(cJSON_GetArrayItem(cJSON_GetArrayItem(v, 0), 1)->valuestring, "first");
  cJSON *s2 = cJSON_GetArrayItem(streams, 2);
  assert_string_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(s2, "stream"), "parse_error")->valuestring, "json");
  /* a 400 dead-letters the whole request, payload kept for replay */
  struct sw_http_resp resp = {.status = 400, .body = "entry too far behind", .body_len = 20};
  const void *nb = NULL;
  size_t nl = 0;
  assert_int_equal(sw_loki_ops.respond(codec, &b, &resp, &nb, &nl), SW_HTTP_DONE);
  assert_int_equal(b.ndead, 1);
  assert_int_equal(b.dead[0].status, 400);
  assert_string_equal(b.dead[0].reason, "entry too far behind");
  assert_int_equal(b.dead[0].payload.len, strlen(body));
  cJSON_Delete(root);
  free((void *)body);
  sw_batch_free_dead(&b);
  sw_loki_ops.release(codec, &b);
  sw_loki_ops.destroy(codec);
}

static void es_payload_and_items(void **state) {
  (void)state;
  const struct rec r[] = {
      {1795448032000000001, 0, 0, "{\"@timestamp\":\"app time\",\"level\":\"info\"}", 0},
      {1795448032000000002, 1, 0, "plain \"quoted\" line", 0},
      {1795448032000000003, 0, 0, "{}", 0},
      {1795448032000000004, 0, 0, "{\"n\":1}", 0}};
  struct sw_sink_conf c = {.name = "e", .type = SW_SINK_ELASTICSEARCH, .url = "http://e:9200",
                           .compression = "none", .index = "logs-%Y.%m.%d", .merge_json = true};
  struct sw_batch b;
  void *codec;
  const char *body = encode(&sw_es_ops, &c, r, 4, "{\"host\":\"h\"}", &b, &codec);
  const char *want =
      "{\"create\":{\"_index\":\"logs-2026.11.23\",\"_id\":\"a1b2-42-0\"}}\n"
      "{\"labels\":{\"host\":\"h\"},\"stream\":\"stdout\",\"@timestamp\":\"app time\",\"level\":\"info\"}\n"
      "{\"create\":{\"_index\":\"logs-2026.11.23\",\"_id\":\"a1b2-42-1\"}}\n"
      "{\"@timestamp\":\"2026-11-23T15:33:52.000000002Z\",\"labels\":{\"host\":\"h\"},\"stream\":\"stderr\","
      "\"message\":\"plain \\\"quoted\\\" line\"}\n"
      "{\"create\":{\"_index\":\"logs-2026.11.23\",\"_id\":\"a1b2-42-2\"}}\n"
      "{\"@timestamp\":\"2026-11-23T15:33:52.000000003Z\",\"labels\":{\"host\":\"h\"},\"stream\":\"stdout\"}\n"
      "{\"create\":{\"_index\":\"logs-2026.11.23\",\"_id\":\"a1b2-42-3\"}}\n"
      "{\"@timestamp\":\"2026-11-23T15:33:52.000000004Z\",\"labels\":{\"host\":\"h\"},\"stream\":\"stdout\",\"n\":1}\n";
  assert_string_equal(body, want);
  /* items: 201, 409 (already there), 429 (again, alone), 400 (dead letter) */
  const char *answer =
      "{\"took\":3,\"errors\":true,\"items\":[{\"create\":{\"status\":201}},{\"create\":{\"status\":409}},"
      "{\"create\":{\"status\":429}},{\"create\":{\"status\":400,\"error\":{\"type\":\"mapper_parsing_exception\","
      "\"reason\":\"bad n\"}}}]}";
  struct sw_http_resp resp = {.status = 200, .body = answer, .body_len = strlen(answer)};
  const void *nb = NULL;
  size_t nl = 0;
  assert_int_equal(sw_es_ops.respond(codec, &b, &resp, &nb, &nl), SW_HTTP_RETRY);
  const char *again = strstr(want, "{\"create\":{\"_index\":\"logs-2026.11.23\",\"_id\":\"a1b2-42-2\"}}");
  const char *fourth = strstr(want, "{\"create\":{\"_index\":\"logs-2026.11.23\",\"_id\":\"a1b2-42-3\"}}");
  assert_int_equal(nl, (size_t)(fourth - again));
  assert_memory_equal(nb, again, nl);
  assert_int_equal(b.ndead, 1);
  assert_int_equal(b.dead[0].records, 1);
  assert_int_equal(b.dead[0].payload.len, strlen(fourth)); /* only the refused document */
  assert_memory_equal(b.dead[0].payload.data, fourth, strlen(fourth));
  assert_non_null(strstr(b.dead[0].reason, "mapper_parsing_exception: bad n"));
  const char *ok = "{\"took\":1,\"errors\":false,\"items\":[{\"create\":{\"status\":201}}]}";
  struct sw_http_resp r2 = {.status = 200, .body = ok, .body_len = strlen(ok)};
  assert_int_equal(sw_es_ops.respond(codec, &b, &r2, &nb, &nl), SW_HTTP_DONE);
  struct sw_sink_req q;
  assert_int_equal(sw_es_ops.next(codec, &b, &q), 0);
  free((void *)body);
  sw_batch_free_dead(&b);
  sw_es_ops.release(codec, &b);
  sw_es_ops.destroy(codec);
}

static void backoff_bounds(void **state) {
  (void)state;
  for (unsigned n = 1; n < 40; n++) {
    uint64_t cap = 100;
    for (unsigned i = 1; i < n && cap < 30000; i++) cap *= 2;
    if (cap > 30000) cap = 30000;
    assert_int_equal(sw_http_backoff_ms(100, 30000, n, 0), 50);
    uint64_t hi = sw_http_backoff_ms(100, 30000, n, UINT32_MAX);
    assert_true(hi <= cap && hi >= cap - 1);
  }
  assert_int_equal(sw_http_backoff_ms(0, 0, 5, 12345), 0); /* degenerate config stays sane */
}

/* {label} expansion: record labels first, chunk labels next, unknown counted; per-sink charsets. */
static void templates(void **state) {
  (void)state;
  const char *labels = "{\"namespace\":\"Prod/EU\",\"source\":\"pods\"}";
  struct sw_record_view r = {.xl = "{\"level\":\"err or\"}", .xl_len = 20};
  struct sw_buf o;
  sw_buf_init(&o, SIZE_MAX);
  uint64_t missing = 0;
  assert_int_equal(sw_tmpl_expand("logs-{namespace}-{level}-%Y.{nope}{", SW_TMPL_INDEX, labels, &r, &o, &missing), 0);
  assert_int_equal(missing, 1);
  assert_memory_equal(o.data, "logs-prod_eu-err_or-%Y.unknown{", o.len);
  sw_buf_reset(&o);
  assert_int_equal(sw_tmpl_expand("{namespace}", SW_TMPL_TENANT, labels, NULL, &o, &missing), 0);
  assert_memory_equal(o.data, "Prod_EU", o.len);
  sw_buf_reset(&o);
  assert_int_equal(sw_tmpl_expand("a/{source}/{level}/", SW_TMPL_KEY, labels, &r, &o, &missing), 0);
  assert_memory_equal(o.data, "a/pods/err_or/", o.len);
  assert_true(sw_tmpl_dynamic("x{a}") && !sw_tmpl_dynamic("x{a") && !sw_tmpl_dynamic(NULL));
  sw_buf_free(&o);
}

/* match: decided per chunk when its labels settle it, else per record set. */
static void routes(void **state) {
  (void)state;
  char *m[] = {"source=pods", "level=~error|critical"};
  struct sw_route rt;
  assert_int_equal(sw_route_init(&rt, m, 2), 0);
  struct sw_route_memo memo;
  assert_int_equal(sw_route_chunk(&rt, "{\"source\":\"other\"}", &memo), SW_ROUTE_NONE);
  assert_int_equal(sw_route_chunk(&rt, "{\"source\":\"pods\"}", &memo), SW_ROUTE_RECORDS);
  struct sw_record_view e = {.xl = "{\"level\":\"error\"}", .xl_len = 17}, i = {.xl = "{\"level\":\"info\"}", .xl_len = 16},
                        none = {0};
  assert_true(sw_route_record(&rt, &memo, &e));
  assert_true(sw_route_record(&rt, &memo, &e)); /* memo */
  assert_false(sw_route_record(&rt, &memo, &i));
  assert_false(sw_route_record(&rt, &memo, &none));
  sw_route_free(&rt);
  char *m2[] = {"source=pods"};
  assert_int_equal(sw_route_init(&rt, m2, 1), 0);
  assert_int_equal(sw_route_chunk(&rt, "{\"source\":\"pods\"}", &memo), SW_ROUTE_ALL);
  sw_route_free(&rt);
  assert_int_equal(sw_route_chunk(NULL, "{}", &memo), SW_ROUTE_ALL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(templates), cmocka_unit_test(routes),
      cmocka_unit_test(loki_payload),
      cmocka_unit_test(es_payload_and_items),
      cmocka_unit_test(backoff_bounds),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
