/* libFuzzer harness for sw_ml_classify: the input's first byte picks the preset, the rest is
 * split into lines fed in order with a simulated group.
 * Invariants: the verdict is one of the four; JOIN and MAYBE only while a group is pending; a
 * START or JOIN leaves a phase set (the group can go on), a SINGLE leaves none. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "parsers/multiline.h"

#define CHECK(c) ((c) ? (void)0 : abort())

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size == 0) return 0;
  enum sw_ml_preset p = (enum sw_ml_preset)(data[0] % SW_ML_NPRESETS);
  const char *s = (const char *)data + 1, *end = (const char *)data + size;
  struct sw_ml_state st = {0};
  int pending = 0;
  while (s <= end) {
    const char *nl = memchr(s, '\n', (size_t)(end - s));
    size_t n = (size_t)((nl ? nl : end) - s);
    enum sw_ml_verdict v = sw_ml_classify(p, &st, pending, s, n);
    CHECK(v == SW_ML_SINGLE || v == SW_ML_START || v == SW_ML_JOIN || v == SW_ML_MAYBE);
    if (!pending) CHECK(v == SW_ML_SINGLE || v == SW_ML_START);
    if (v == SW_ML_SINGLE) CHECK(st.phase == 0);
    if (v == SW_ML_START || v == SW_ML_JOIN) CHECK(st.phase != 0);
    if (p == SW_ML_NONE) CHECK(v == SW_ML_SINGLE);
    pending = v != SW_ML_SINGLE;
    if (!nl) break;
    s = nl + 1;
  }
  return 0;
}
