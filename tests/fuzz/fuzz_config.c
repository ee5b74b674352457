/* fuzz_config.c - libFuzzer harness for the config loader: arbitrary bytes as a config file.
 *
 * Build (clang):
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE -I. tests/fuzz/fuzz_config.c \
 *     agent/config*.c agent/config/yaml.c common/error.c -lyaml -lcjson -lpcre2-8 -lm -o fuzz_config
 *   ./fuzz_config -max_total_time=60 tests/fuzz/corpus/config
 * Whatever the input, the loader must not crash, leak or hang, and must either succeed with no
 * messages or fail with at least one. Secret and CA files named by the input are opened
 * read-only, non-blocking, regular files only, at most 64KiB read.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "agent/config/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  struct sw_config *cfg = NULL;
  struct sw_conf_errors errs = {0};
  int rc = sw_config_load_string("/fuzz/spillway.yaml", (const char *)data, size, &cfg, &errs);
  if ((rc == 0) != (errs.n == 0) || (rc == 0) != (cfg != NULL)) abort();
  for (size_t i = 0; i < errs.n; i++)
    if (!errs.msgs[i][0]) abort();
  sw_config_free(cfg);
  sw_conf_errors_free(&errs);
  return 0;
}
