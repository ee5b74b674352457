/* Unit tests for sinks/manifest.c (an archived object's figures, written and read back) and
 * agent/archive/object.c (an object checked against them). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>

#include "agent/archive/object.h"
#include "common/sha256.h"
#include "sinks/manifest.h"
#include "sinks/sink.h"

static const char ndjson[] =
    "{\"ts\":\"2026-11-23T15:33:52.000000002Z\",\"labels\":{\"a\":\"1\"},\"stream\":\"stdout\",\"line\":\"one\"}\n"
    "{\"ts\":\"2026-11-23T15:33:52.000000001Z\",\"labels\":{\"a\":\"1\"},\"stream\":\"stdout\",\"line\":\"two\"}\n"
    "{\"ts\":\"2026-11-23T15:33:53Z\",\"labels\":{\"a\":\"2\"},\"stream\":\"stderr\",\"line\":\"three\"}\n"
    "{\"ts\":\"2026-11-23T15:33:51Z\",\"labels\":{\"a\":\"1\"},\"stream\":\"stdout\",\"line\":\"four\"}\n";

static void feed_split(struct sw_manifest_acc *a, size_t step) {
  size_t n = sizeof ndjson - 1;
  for (size_t i = 0; i < n; i += step)
    assert_int_equal(sw_manifest_acc_feed(a, ndjson + i, i + step > n ? n - i : step), 0);
  assert_int_equal(sw_manifest_acc_end(a), 0);
}

static void test_any_split_gives_the_same_figures(void **state) {
  (void)state;
  char hex[65];
  sw_sha256_hex(ndjson, sizeof ndjson - 1, hex);
  for (size_t step = 1; step < sizeof ndjson; step += 7) {
    struct sw_manifest_acc a;
    sw_manifest_acc_init(&a);
    feed_split(&a, step);
    assert_int_equal(a.records, 4);
    assert_int_equal(a.bad_lines, 0);
    assert_int_equal(a.bytes, sizeof ndjson - 1);
    assert_int_equal(a.nsets, 2);
    assert_true(a.ts_min == INT64_C(1795448031000000000) && a.ts_max == INT64_C(1795448033000000000));
    struct sw_buf out;
    sw_buf_init(&out, SIZE_MAX);
    struct sw_manifest_meta m = {.object = "p/\"q\"/1-2.ndjson.zst", .compression = "zstd", .agent_id = "ag",
                                 .host = "h", .object_bytes = 77, .object_sha256 = "ab", .first_chunk = 1,
                                 .last_chunk = 2};
    assert_int_equal(sw_manifest_write(&a, &m, &out), 0);
    struct sw_manifest r;
    char why[200];
    assert_int_equal(sw_manifest_parse(out.data, out.len, &r, why, sizeof why), 0);
    assert_string_equal(r.object, m.object);
    assert_string_equal(r.ndjson_sha256, hex);
    assert_int_equal(r.records, 4);
    assert_int_equal(r.nsets, 2);
    assert_true(r.sets_complete);
    assert_string_equal(r.sets[0], "{\"a\":\"1\"}");
    assert_true(r.ts_min == a.ts_min && r.ts_max == a.ts_max && r.last_chunk == 2);
    sw_manifest_free(&r);
    sw_buf_free(&out);
    sw_manifest_acc_free(&a);
  }
}

static void test_label_sets_are_capped(void **state) {
  (void)state;
  struct sw_manifest_acc a;
  sw_manifest_acc_init(&a);
  char line[200];
  for (int i = 0; i < SW_MANIFEST_MAX_SETS + 10; i++) {
    int n = snprintf(line, sizeof line, "{\"ts\":\"2026-11-23T15:33:52Z\",\"labels\":{\"i\":\"%d\"},\"line\":\"x\"}\n", i);
    assert_int_equal(sw_manifest_acc_feed(&a, line, (size_t)n), 0);
  }
  assert_int_equal(a.nsets, SW_MANIFEST_MAX_SETS);
  assert_false(a.sets_complete);
  assert_int_equal(sw_manifest_acc_feed(&a, "not json\n", 9), 0);
  assert_int_equal(a.bad_lines, 1);
  sw_manifest_acc_free(&a);
}

static void test_bad_manifests(void **state) {
  (void)state;
  static const char *bad[] = {"", "[]", "{\"object\":\"k\"}",
                              "{\"object\":\"k\",\"compression\":\"zstd\",\"object_sha256\":\"a\",\"ndjson_sha256\":\"b\","
                              "\"agent_id\":\"c\",\"host\":\"d\",\"object_bytes\":1,\"records\":\"2\",\"ndjson_bytes\":3,"
                              "\"first_chunk\":1,\"last_chunk\":1,\"ts_min\":\"\",\"ts_max\":\"\",\"label_sets\":[]}"};
  struct sw_manifest m;
  char why[200];
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    assert_int_equal(sw_manifest_parse(bad[i], strlen(bad[i]), &m, why, sizeof why), SW_ECORRUPT);
}

static int collect(void *arg, const char *p, size_t n) { return sw_buf_append(arg, p, n); }

/* An object as the sink would upload it, with its manifest parsed into o. */
static void make_object(struct sw_buf *obj, struct sw_arch_obj *o, int gzip) {
  sw_buf_init(obj, SIZE_MAX);
  if (gzip) {
    assert_int_equal(sw_gzip(ndjson, sizeof ndjson - 1, 6, obj), 0);
  } else {
    assert_int_equal(sw_buf_reserve(obj, ZSTD_compressBound(sizeof ndjson)), 0);
    obj->len = ZSTD_compress(obj->data, obj->cap, ndjson, sizeof ndjson - 1, 3);
  }
  struct sw_manifest_acc a;
  sw_manifest_acc_init(&a);
  feed_split(&a, 1000);
  char hex[65];
  sw_sha256_hex(obj->data, obj->len, hex);
  struct sw_manifest_meta m = {.object = "k", .compression = gzip ? "gzip" : "zstd", .agent_id = "a", .host = "h",
                               .object_bytes = obj->len, .object_sha256 = hex};
  struct sw_buf js;
  sw_buf_init(&js, SIZE_MAX);
  assert_int_equal(sw_manifest_write(&a, &m, &js), 0);
  memset(o, 0, sizeof *o);
  char why[200];
  assert_int_equal(sw_manifest_parse(js.data, js.len, &o->m, why, sizeof why), 0);
  o->has_manifest = 1;
  o->gzip = gzip;
  sw_buf_free(&js);
  sw_manifest_acc_free(&a);
}

static void test_inflate_and_verify(void **state) {
  (void)state;
  for (int gz = 0; gz < 2; gz++) {
    struct sw_buf obj, out;
    struct sw_arch_obj o;
    char why[300];
    make_object(&obj, &o, gz);
    sw_buf_init(&out, SIZE_MAX);
    assert_int_equal(sw_object_inflate(obj.data, obj.len, gz, collect, &out), 0);
    assert_int_equal(out.len, sizeof ndjson - 1);
    assert_memory_equal(out.data, ndjson, out.len);
    assert_int_equal(sw_arch_verify(&o, obj.data, obj.len, why, sizeof why), 0);
    /* Cut short: the inflater says so, and the check names the size. */
    sw_buf_reset(&out);
    assert_int_equal(sw_object_inflate(obj.data, obj.len - 5, gz, collect, &out), SW_ECORRUPT);
    assert_int_equal(sw_arch_verify(&o, obj.data, obj.len - 5, why, sizeof why), SW_ECORRUPT);
    assert_non_null(strstr(why, "manifest says"));
    /* A flipped byte: the object's checksum. */
    obj.data[obj.len / 2] ^= 1;
    assert_int_equal(sw_arch_verify(&o, obj.data, obj.len, why, sizeof why), SW_ECORRUPT);
    assert_non_null(strstr(why, "object SHA-256"));
    obj.data[obj.len / 2] ^= 1;
    /* The manifest's count off by one. */
    o.m.records++;
    assert_int_equal(sw_arch_verify(&o, obj.data, obj.len, why, sizeof why), SW_ECORRUPT);
    assert_string_equal(why, "records 4, manifest says 5");
    o.m.records--;
    /* Garbage that is no stream at all. */
    sw_buf_reset(&out);
    assert_int_equal(sw_object_inflate("not compressed", 14, gz, collect, &out), SW_ECORRUPT);
    sw_manifest_free(&o.m);
    sw_buf_free(&obj);
    sw_buf_free(&out);
  }
}

struct seen {
  int n;
  uint64_t last_end;
};

static int count_rec(void *arg, const struct sw_ndjson_rec *r, uint64_t end) {
  struct seen *s = arg;
  assert_non_null(r);
  s->n++;
  s->last_end = end;
  return 0;
}

static void test_records_resume_from_an_offset(void **state) {
  (void)state;
  struct sw_buf obj;
  struct sw_arch_obj o;
  make_object(&obj, &o, 0);
  struct seen all = {0}, rest = {0};
  assert_int_equal(sw_arch_records(obj.data, obj.len, 0, 0, count_rec, &all), 0);
  assert_int_equal(all.n, 4);
  assert_int_equal(all.last_end, sizeof ndjson - 1);
  uint64_t second = (uint64_t)(strchr(strchr(ndjson, '\n') + 1, '\n') + 1 - ndjson);
  assert_int_equal(sw_arch_records(obj.data, obj.len, 0, second, count_rec, &rest), 0);
  assert_int_equal(rest.n, 2);
  sw_manifest_free(&o.m);
  sw_buf_free(&obj);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_any_split_gives_the_same_figures),
      cmocka_unit_test(test_label_sets_are_capped),
      cmocka_unit_test(test_bad_manifests),
      cmocka_unit_test(test_inflate_and_verify),
      cmocka_unit_test(test_records_resume_from_an_offset),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
