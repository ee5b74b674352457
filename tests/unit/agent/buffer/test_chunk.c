/* Chunk format, NDJSON encoding and labels. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "agent/buffer/chunk.h"
#include "agent/tail/labels.h"
#include "parsers/record.h"
#include "sinks/ndjson.h"

static void roundtrip(void **state) {
  (void)state;
  struct sw_chunk_builder cb;
  sw_chunk_builder_init(&cb, 1 << 20);
  const char *lines[] = {"hello", "", "with\nnewline", "\xff\xfe bytes", "last"};
  int64_t ts[] = {1795448032123456789, 1795448032000000000, 5, 1795448099999999999, 0};
  for (int i = 0; i < 5; i++)
    assert_int_equal(sw_chunk_add(&cb, ts[i], i % 3, i == 3 ? SW_REC_PARSE_ERROR : 0, lines[i],
                                  strlen(lines[i])), 0);
  assert_int_equal(cb.count, 5);
  assert_true(cb.ts_min == 0 && cb.ts_max == 1795448099999999999);
  struct sw_buf raw, z, back;
  sw_buf_init(&raw, SIZE_MAX);
  sw_buf_init(&z, SIZE_MAX);
  sw_buf_init(&back, SIZE_MAX);
  assert_int_equal(sw_chunk_finish(&cb, &raw), 0);
  assert_int_equal(sw_chunk_compress(NULL, 1, 0, raw.data, raw.len, &z), 0);
  assert_int_equal(sw_chunk_decompress(NULL, z.data, z.len, &back), 0);
  assert_int_equal(back.len, raw.len);
  assert_memory_equal(back.data, raw.data, raw.len);
  struct sw_chunk_iter it;
  uint64_t n;
  assert_int_equal(sw_chunk_iter_init(&it, back.data, back.len, &n), 0);
  assert_int_equal(n, 5);
  struct sw_record_view r;
  for (int i = 0; i < 5; i++) {
    assert_int_equal(sw_chunk_iter_next(&it, &r), 1);
    assert_int_equal(r.ts_ns, ts[i]);
    assert_int_equal(r.stream, i % 3);
    assert_int_equal(r.flags, i == 3 ? SW_REC_PARSE_ERROR : 0);
    assert_int_equal(r.len, strlen(lines[i]));
    assert_memory_equal(r.line, lines[i], r.len);
  }
  assert_int_equal(sw_chunk_iter_next(&it, &r), 0);
  /* Every truncation of the raw chunk is detected, never read out of bounds. */
  for (size_t cut = 0; cut < raw.len; cut++) {
    int rc = sw_chunk_iter_init(&it, raw.data, cut, &n);
    int got = 0;
    while (rc == 0) {
      rc = sw_chunk_iter_next(&it, &r);
      if (rc != 1) break;
      got++;
      rc = 0;
    }
    assert_int_equal(rc, SW_ECORRUPT);
    assert_true(got < 5);
  }
  assert_int_equal(sw_chunk_decompress(NULL, z.data, z.len / 2, &back), SW_ECORRUPT);
  sw_buf_free(&raw);
  sw_buf_free(&z);
  sw_buf_free(&back);
  sw_chunk_builder_free(&cb);
}

static void builder_cap(void **state) {
  (void)state;
  struct sw_chunk_builder cb;
  sw_chunk_builder_init(&cb, 100); /* the cap is max_bytes plus a fixed 4 KiB of slack */
  char big[5000];
  memset(big, 'x', sizeof big);
  assert_int_equal(sw_chunk_add(&cb, 1, 0, 0, big, sizeof big), SW_ETOOBIG);
  assert_int_equal(cb.count, 0);
  assert_int_equal(sw_chunk_add(&cb, 1, 0, 0, big, 10), 0);
  sw_chunk_builder_free(&cb);
}

static void ndjson_exact(void **state) {
  (void)state;
  struct sw_chunk_builder cb;
  sw_chunk_builder_init(&cb, 1 << 20);
  assert_int_equal(sw_chunk_add(&cb, 1795448032123456789, SW_STREAM_STDERR, 0, "a \"q\" \\ \t\x01", 10), 0);
  assert_int_equal(sw_chunk_add(&cb, 0, SW_STREAM_FILE, SW_REC_PARSE_ERROR | SW_REC_TRUNCATED, "{bad", 4), 0);
  assert_int_equal(sw_chunk_add(&cb, 0, SW_STREAM_STDOUT, 0, "caf\xc3\xa9 \xff", 7), 0);
  struct sw_buf raw, out;
  sw_buf_init(&raw, SIZE_MAX);
  sw_buf_init(&out, SIZE_MAX);
  assert_int_equal(sw_chunk_finish(&cb, &raw), 0);
  struct sw_chunk_row row = {.labels_json = "{\"host\":\"h\",\"source\":\"s\"}", .format = "json"};
  uint64_t n = 0;
  assert_int_equal(sw_ndjson_encode(&row, raw.data, raw.len, NULL, &out, &n), 0);
  assert_int_equal(n, 3);
  const char *want =
      "{\"ts\":\"2026-11-23T15:33:52.123456789Z\",\"labels\":{\"host\":\"h\",\"source\":\"s\"},"
      "\"stream\":\"stderr\",\"line\":\"a \\\"q\\\" \\\\ \\t\\u0001\"}\n"
      "{\"ts\":\"1970-01-01T00:00:00.000000000Z\",\"labels\":{\"host\":\"h\",\"source\":\"s\","
      "\"parse_error\":\"json\",\"truncated\":\"true\"},\"stream\":\"file\",\"line\":\"{bad\"}\n"
      "{\"ts\":\"1970-01-01T00:00:00.000000000Z\",\"labels\":{\"host\":\"h\",\"source\":\"s\","
      "\"invalid_utf8\":\"true\"},\"stream\":\"stdout\",\"line\":\"caf\xc3\xa9 \xef\xbf\xbd\"}\n";
  assert_int_equal(out.len, strlen(want));
  assert_memory_equal(out.data, want, out.len);
  sw_buf_free(&raw);
  sw_buf_free(&out);
  sw_chunk_builder_free(&cb);
}

static void labels(void **state) {
  (void)state;
  struct sw_kv kv = {"team", "a\"b"};
  struct sw_source_conf cri = {.name = "pods", .type = SW_SOURCE_CRI, .labels = &kv, .nlabels = 1};
  char *l = sw_labels_build(&cri, "node1",
                            "/var/log/pods/shop_checkout-7d9f_0a1b-22/app/0.log", NULL, NULL, 0, NULL);
  assert_string_equal(l, "{\"host\":\"node1\",\"source\":\"pods\",\"namespace\":\"shop\","
                         "\"pod\":\"checkout-7d9f\",\"pod_uid\":\"0a1b-22\",\"container\":\"app\","
                         "\"team\":\"a\\\"b\"}");
  free(l);
  /* Kubernetes labels go after the path's, before the static ones */
  struct sw_kv k8s[2] = {{"app", "checkout"}, {"owner", "checkout"}};
  l = sw_labels_build(&cri, "node1", "/var/log/pods/shop_checkout-7d9f_0a1b-22/app/0.log", NULL, k8s, 2, NULL);
  assert_string_equal(l, "{\"host\":\"node1\",\"source\":\"pods\",\"namespace\":\"shop\","
                         "\"pod\":\"checkout-7d9f\",\"pod_uid\":\"0a1b-22\",\"container\":\"app\","
                         "\"app\":\"checkout\",\"owner\":\"checkout\",\"team\":\"a\\\"b\"}");
  free(l);
  char *uid, *ctr;
  assert_int_equal(sw_labels_cri_ids("/var/log/pods/shop_checkout-7d9f_0a1b-22/app/0.log", &uid, &ctr), 0);
  assert_string_equal(uid, "0a1b-22");
  assert_string_equal(ctr, "app");
  free(uid);
  free(ctr);
  assert_int_equal(sw_labels_cri_ids("/var/log/app.log", &uid, &ctr), -1);
  struct sw_source_conf dk = {.name = "docker", .type = SW_SOURCE_DOCKER};
  l = sw_labels_build(&dk, "h", "/c/abc123/abc123-json.log", "web-1", NULL, 0, NULL);
  assert_string_equal(l, "{\"host\":\"h\",\"source\":\"docker\",\"container_id\":\"abc123\","
                         "\"container_name\":\"web-1\"}");
  free(l);
  char *name = sw_labels_docker_name("{\"ID\":\"x\",\"Name\":\"/web-1\"}", 27);
  assert_string_equal(name, "web-1");
  free(name);
  assert_null(sw_labels_docker_name("{broken", 7));
}

/* Every label value goes through the redactor (file names, pod and container names, static
 * labels); keys and values without a secret are kept as they are. */
static void labels_redacted(void **state) {
  (void)state;
  static const char *const packs[] = {"email", "token_kv"};
  struct sw_redact_conf rc = {.builtins = packs, .nbuiltins = 2};
  struct sw_redactor *r = NULL;
  assert_int_equal(sw_redactor_create(&rc, &r, NULL, 0), 0);
  struct sw_redact_ctx *ctx = sw_redact_ctx_create(r);
  assert_non_null(ctx);
  struct sw_kv kv = {"owner", "ops@example.com"};
  struct sw_source_conf cri = {.name = "pods", .type = SW_SOURCE_CRI, .labels = &kv, .nlabels = 1};
  char *l = sw_labels_build(&cri, "node1", "/var/log/pods/team_jane.doe@example.com_0a1b-22/ctr/0.log", NULL,
                            NULL, 0, ctx);
  assert_string_equal(l, "{\"host\":\"node1\",\"source\":\"pods\",\"namespace\":\"team\","
                         "\"pod\":\"[REDACTED:email]\",\"pod_uid\":\"0a1b-22\",\"container\":\"ctr\","
                         "\"owner\":\"[REDACTED:email]\"}");
  free(l);
  struct sw_source_conf file = {.name = "app", .type = SW_SOURCE_FILE};
  l = sw_labels_build(&file, "h", "/logs/export-bob@example.org.log", NULL, NULL, 0, ctx);
  assert_string_equal(l, "{\"host\":\"h\",\"source\":\"app\",\"filename\":\"/logs/[REDACTED:email]\"}");
  free(l);
  struct sw_source_conf dk = {.name = "docker", .type = SW_SOURCE_DOCKER};
  l = sw_labels_build(&dk, "h", "/c/abc123/abc123-json.log", "job-token=abc", NULL, 0, ctx);
  assert_string_equal(l, "{\"host\":\"h\",\"source\":\"docker\",\"container_id\":\"abc123\","
                         "\"container_name\":\"job-token=[REDACTED:token_kv]\"}");
  free(l);
  char *d = sw_labels_redact_dup(ctx, "/logs/export-bob@example.org.log");
  assert_string_equal(d, "/logs/[REDACTED:email]");
  free(d);
  d = sw_labels_redact_dup(NULL, "/logs/a@b.example");
  assert_string_equal(d, "/logs/a@b.example");
  free(d);
  sw_redact_ctx_destroy(ctx);
  sw_redactor_destroy(r);
}

/* Version 2: record label sets, interned once per chunk, before and after a set-less record;
 * NDJSON adds a record's set to its chunk's labels; a damaged set table is refused. */
static void record_sets(void **state) {
  (void)state;
  struct sw_chunk_builder cb;
  sw_chunk_builder_init(&cb, 1 << 20);
  const char *a = "{\"level\":\"error\"}", *b = "{\"level\":\"info\",\"trace_id\":\"t\\\"1\"}";
  assert_int_equal(sw_chunk_add_x(&cb, 10, 0, 0, "r0", 2, NULL, 0), 0);
  assert_int_equal(sw_chunk_add_x(&cb, 11, 0, 0, "r1", 2, a, strlen(a)), 0);
  for (int i = 0; i < 300; i++) /* the table grows; equal sets stay one */
    assert_int_equal(sw_chunk_add_x(&cb, 12 + i, 1, 0, "rx", 2, i % 2 ? a : b, strlen(i % 2 ? a : b)), 0);
  assert_int_equal(sw_chunk_add_x(&cb, 400, 0, 0, "last", 4, NULL, 0), 0);
  assert_int_equal(cb.nsets, 2);
  struct sw_buf raw, out;
  sw_buf_init(&raw, SIZE_MAX);
  sw_buf_init(&out, SIZE_MAX);
  assert_int_equal(sw_chunk_finish(&cb, &raw), 0);
  assert_int_equal((unsigned char)raw.data[0], SW_CHUNK_VERSION_SETS);
  struct sw_chunk_iter it;
  uint64_t n;
  assert_int_equal(sw_chunk_iter_init(&it, raw.data, raw.len, &n), 0);
  assert_int_equal(n, 303);
  struct sw_record_view r;
  for (uint64_t i = 0; i < n; i++) {
    assert_int_equal(sw_chunk_iter_next(&it, &r), 1);
    const char *want = i == 0 || i == 302 ? NULL : i == 1 ? a : (i - 2) % 2 ? a : b;
    if (!want) {
      assert_null(r.xl);
    } else {
      assert_int_equal(r.xl_len, strlen(want));
      assert_memory_equal(r.xl, want, r.xl_len);
    }
  }
  assert_int_equal(sw_chunk_iter_next(&it, &r), 0);
  struct sw_chunk_row row = {.id = 1, .labels_json = "{\"host\":\"h\"}", .format = "json"};
  uint64_t recs;
  assert_int_equal(sw_ndjson_encode(&row, raw.data, raw.len, NULL, &out, &recs), 0);
  assert_int_equal(recs, 303);
  assert_non_null(strstr(out.data, "\"labels\":{\"host\":\"h\",\"level\":\"error\"},\"stream\":\"stdout\",\"line\":\"r1\""));
  assert_non_null(strstr(out.data, "\"labels\":{\"host\":\"h\"},\"stream\":\"stdout\",\"line\":\"r0\""));
  /* a chunk cut anywhere: refused or fewer records, never a crash */
  for (size_t cut = 1; cut < raw.len; cut += 7) {
    if (sw_chunk_iter_init(&it, raw.data, cut, &n)) continue;
    int rc;
    while ((rc = sw_chunk_iter_next(&it, &r)) == 1) {
    }
    assert_true(rc == 0 || rc == SW_ECORRUPT);
  }
  /* reset drops the sets: the next chunk is version 1 again */
  sw_chunk_builder_reset(&cb);
  assert_int_equal(sw_chunk_add_x(&cb, 1, 0, 0, "x", 1, NULL, 0), 0);
  sw_buf_reset(&raw);
  assert_int_equal(sw_chunk_finish(&cb, &raw), 0);
  assert_int_equal((unsigned char)raw.data[0], SW_CHUNK_VERSION);
  sw_buf_free(&raw);
  sw_buf_free(&out);
  sw_chunk_builder_free(&cb);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(roundtrip), cmocka_unit_test(builder_cap),
      cmocka_unit_test(ndjson_exact), cmocka_unit_test(labels), cmocka_unit_test(labels_redacted),
      cmocka_unit_test(record_sets)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
