#include "metrics_archive.h"

#include <string.h>

#include "../config/config.h"

void sw__metrics_archive_read(const struct sw_config *cfg, struct sw_metrics_archive *a) {
  a->n = 0;
  for (size_t i = 0; i < cfg->nsinks && a->n < SW_METRICS_MAX_ARCHIVES; i++) {
    if (cfg->sinks[i].type != SW_SINK_S3) continue;
    a->sink[a->n] = cfg->sinks[i].name;
    if (sw_arch_verified_load(cfg->data_dir, a->sink[a->n], &a->v[a->n]))
      memset(&a->v[a->n], 0, sizeof a->v[a->n]); /* never verified */
    a->n++;
  }
}

void sw__metrics_render_archive(struct sw_prom *p, const struct sw_metrics_archive *a) {
  static const char *fams[3][2] = {
      {"spillway_archive_last_verified_timestamp_seconds",
       "When `spillway archive restore --verify-only` last found every object of the sink's archive intact, Unix time (0: never)."},
      {"spillway_archive_verify_run_timestamp_seconds", "When the last verification ran, Unix time (0: never)."},
      {"spillway_archive_verify_failed_objects", "Objects the last verification found damaged or unreadable."}};
  for (size_t k = 0; k < 3; k++) {
    sw_prom_family(p, fams[k][0], SW_PROM_GAUGE, fams[k][1]);
    for (size_t i = 0; a && i < a->n; i++) {
      const struct sw_arch_verified *v = &a->v[i];
      struct sw_prom_label l[] = {{"sink", a->sink[i]}};
      sw_prom_sample_u64(p, "", l, 1, k == 0 ? (uint64_t)v->last_ok : k == 1 ? (uint64_t)v->last_run : v->failed);
    }
  }
}
