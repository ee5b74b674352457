/* test_jstate.c - the journal state committed with each chunk (agent/journal/jstate.h): blobs
 * round-trip, damaged ones are refused, cursor fields parse; and the reader's batch encoding
 * (agent/journal/reader.h) decodes entry by entry with its label fields. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "agent/journal/jstate.h"
#include "agent/journal/reader.h"
#include "common/hash.h"

static const char *k_cursor =
    "s=f3ce686a6ede41838642ccbc5cb0419b;i=1a2;b=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa;m=3e8;t=60a24181e4000;x=3c1168ed3763ad6";

static void test_roundtrip(void **state) {
  (void)state;
  struct sw_buf b;
  sw_buf_init(&b, SIZE_MAX);
  const char pend[] = {2, 5, 0};
  assert_int_equal(sw_jstate_begin(&b, k_cursor), SW_OK);
  assert_int_equal(sw_jstate_add(&b, 0x0102030405060708ULL, 300, pend, sizeof pend), SW_OK);
  assert_int_equal(sw_jstate_add(&b, UINT64_MAX, 0, NULL, 0), SW_OK);
  char *cursor;
  struct sw_jstate_stream *s;
  size_t n;
  assert_int_equal(sw_jstate_parse(b.data, b.len, &cursor, &s, &n), SW_OK);
  assert_string_equal(cursor, k_cursor);
  assert_int_equal(n, 2);
  assert_true(s[0].key == 0x0102030405060708ULL && s[0].committed == 300);
  assert_int_equal(s[0].pending_len, sizeof pend);
  assert_memory_equal(s[0].pending, pend, sizeof pend);
  assert_true(s[1].key == UINT64_MAX && s[1].committed == 0 && s[1].pending == NULL && s[1].pending_len == 0);
  free(cursor);
  free(s);
  /* Every truncation of it is refused or parses to fewer whole streams, never past the end. */
  for (size_t cut = 0; cut < b.len; cut++) {
    int rc = sw_jstate_parse(b.data, cut, &cursor, &s, &n);
    if (rc == SW_OK) {
      assert_true(n < 2);
      free(cursor);
      free(s);
    } else {
      assert_int_equal(rc, SW_ECORRUPT);
    }
  }
  /* Another version, a NUL in the cursor: refused. */
  b.data[0] = 2;
  assert_int_equal(sw_jstate_parse(b.data, b.len, &cursor, &s, &n), SW_ECORRUPT);
  b.data[0] = 1;
  b.data[3] = 0;
  assert_int_equal(sw_jstate_parse(b.data, b.len, &cursor, &s, &n), SW_ECORRUPT);
  sw_buf_free(&b);
  /* Before any entry: an empty cursor and no stream. */
  sw_buf_init(&b, SIZE_MAX);
  assert_int_equal(sw_jstate_begin(&b, ""), SW_OK);
  assert_int_equal(sw_jstate_parse(b.data, b.len, &cursor, &s, &n), SW_OK);
  assert_string_equal(cursor, "");
  assert_int_equal(n, 0);
  free(cursor);
  free(s);
  sw_buf_free(&b);
}

static void test_cursor_fields(void **state) {
  (void)state;
  uint64_t v;
  char id[33];
  assert_int_equal(sw_jcursor_hex(k_cursor, 'i', &v), 1);
  assert_int_equal(v, 0x1a2);
  assert_int_equal(sw_jcursor_hex(k_cursor, 't', &v), 1);
  assert_int_equal(v, 0x60a24181e4000ULL); /* 1700000000000000 µs */
  assert_int_equal(sw_jcursor_seqnum_id(k_cursor, id), 1);
  assert_string_equal(id, "f3ce686a6ede41838642ccbc5cb0419b");
  assert_int_equal(sw_jcursor_hex("s=1;i=zz", 'i', &v), 0);
  assert_int_equal(sw_jcursor_hex("s=1;i=", 'i', &v), 0);
  assert_int_equal(sw_jcursor_hex("s=1", 't', &v), 0);
  assert_int_equal(sw_jcursor_hex("i=11111111111111111", 'i', &v), 0); /* 17 digits */
  assert_int_equal(sw_jcursor_seqnum_id("i=1", id), 0);
}

static void put_var(uint8_t **p, uint64_t v) {
  while (v >= 0x80) {
    *(*p)++ = (uint8_t)(v | 0x80);
    v >>= 7;
  }
  *(*p)++ = (uint8_t)v;
}

static void test_batch_decode(void **state) {
  (void)state;
  uint8_t data[512], *p = data;
  const char *labels[SW_JF_FIXED + 1] = {"node1", "kubelet.service", NULL, "6", "b00t", "42"};
  /* one entry: 3 excluded before it, 1.5 s, a binary message, six label fields */
  put_var(&p, 3);
  put_var(&p, 1500000);
  const char msg[] = {'a', 0, (char)0xff, '\n', 'b'};
  put_var(&p, sizeof msg);
  memcpy(p, msg, sizeof msg);
  p += sizeof msg;
  uint8_t *lstart = p;
  for (int k = 0; k < SW_JF_FIXED + 1; k++) {
    put_var(&p, labels[k] ? strlen(labels[k]) + 1 : 0);
    if (labels[k]) {
      memcpy(p, labels[k], strlen(labels[k]));
      p += strlen(labels[k]);
    }
  }
  uint64_t key = sw_fnv1a(SW_FNV1A_INIT, lstart, (size_t)(p - lstart));
  for (int i = 0; i < 8; i++) *p++ = (uint8_t)(key >> (8 * i));
  struct sw_jbatch b = {.data = data, .len = (size_t)(p - data), .n = 1, .nlabels = SW_JF_FIXED + 1};
  size_t off = 0;
  struct sw_jentry e;
  assert_int_equal(sw_jbatch_next(&b, &off, &e), 1);
  assert_int_equal(e.skipped, 3);
  assert_int_equal(e.ts_ns, 1500000000LL);
  assert_int_equal(e.len, sizeof msg);
  assert_memory_equal(e.msg, msg, sizeof msg);
  assert_true(e.key == key);
  assert_true(e.labels == lstart);
  const char *v;
  size_t vl;
  assert_int_equal(sw_jlabel(e.labels, e.labels_len, SW_JF_UNIT, &v, &vl), 1);
  assert_int_equal(vl, strlen("kubelet.service"));
  assert_memory_equal(v, "kubelet.service", vl);
  assert_int_equal(sw_jlabel(e.labels, e.labels_len, SW_JF_IDENT, &v, &vl), 0); /* absent */
  assert_int_equal(sw_jlabel(e.labels, e.labels_len, SW_JF_FIXED, &v, &vl), 1);
  assert_memory_equal(v, "42", 2);
  assert_int_equal(sw_jlabel(e.labels, e.labels_len, SW_JF_FIXED + 1, &v, &vl), 0); /* past the end */
  assert_int_equal(sw_jbatch_next(&b, &off, &e), 0);
  /* Cut anywhere inside the entry: malformed, never read past the end. */
  for (size_t cut = 1; cut < b.len; cut++) {
    struct sw_jbatch c = b;
    c.len = cut;
    off = 0;
    assert_int_equal(sw_jbatch_next(&c, &off, &e), -1);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_roundtrip),
      cmocka_unit_test(test_cursor_fields),
      cmocka_unit_test(test_batch_decode),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
