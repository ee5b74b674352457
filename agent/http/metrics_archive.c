#include "metrics_archive.h"

#include <string.h>

#include "../archive/verified.h"
#include "../config/config.h"

void sw__metrics_render_archive(struct sw_prom *p, const struct sw_config *cfg) {
  static const char *fams[3][2] = {
      {"spillway_archive_last_verified_timestamp_seconds",
       "When `spillway archive restore --verify-only` last found every object of the sink's archive intact, Unix time (0: never)."},
      {"spillway_archive_verify_run_timestamp_seconds", "When the last verification ran, Unix time (0: never)."},
      {"spillway_archive_verify_failed_objects", "Objects the last verification found damaged or unreadable."}};
  struct sw_arch_verified v[64];
  size_t n = 0;
  const char *names[64];
  for (size_t i = 0; i < cfg->nsinks && n < 64; i++) {
    if (cfg->sinks[i].type != SW_SINK_S3) continue;
    names[n] = cfg->sinks[i].name;
    if (sw_arch_verified_load(cfg->data_dir, names[n], &v[n])) memset(&v[n], 0, sizeof v[n]); /* never: 0s */
    n++;
  }
  for (size_t k = 0; k < 3; k++) {
    sw_prom_family(p, fams[k][0], SW_PROM_GAUGE, fams[k][1]);
    for (size_t i = 0; i < n; i++) {
      struct sw_prom_label l[] = {{"sink", names[i]}};
      uint64_t x = k == 0 ? (uint64_t)v[i].last_ok : k == 1 ? (uint64_t)v[i].last_run : v[i].failed;
      sw_prom_sample_u64(p, "", l, 1, x);
    }
  }
}
