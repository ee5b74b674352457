/* metrics_process.c - spillway_filter_* and spillway_log_<name>_total (agent/process/). */
#include "metrics_process.h"

#include <stdio.h>
#include <string.h>

#include "../process/process.h"

struct series_arg {
  struct sw_prom *p;
  const struct sw_log_metric_conf *c;
};

static void one_series(void *arg, const char *const *values, uint64_t count) {
  struct series_arg *a = arg;
  size_t n = a->c->nlabels;
  struct sw_prom_label l[n ? n : 1];
  for (size_t i = 0; i < n; i++) l[i] = (struct sw_prom_label){a->c->labels[i], values[i]};
  sw_prom_sample_u64(a->p, "", l, n, count);
}

void sw__metrics_render_process(struct sw_prom *p, const struct sw_process *proc) {
  size_t nf = sw_process_nfilters(proc);
  struct sw_process_filter_stats fs;
  sw_prom_family(p, "spillway_filter_matched_records_total", SW_PROM_COUNTER,
                 "Records a filter applied to (its match and line held; keep: its match held).");
  for (size_t i = 0; i < nf; i++) {
    sw_process_filter_stats(proc, i, &fs);
    sw_prom_sample_u64(p, "", (struct sw_prom_label[]){{"filter", fs.name}, {"action", fs.action}}, 2, fs.matched);
  }
  sw_prom_family(p, "spillway_filter_removed_records_total", SW_PROM_COUNTER,
                 "Records a filter removed (dropped, sampled out, over the rate limit, not kept): they "
                 "never reached the buffer.");
  for (size_t i = 0; i < nf; i++) {
    sw_process_filter_stats(proc, i, &fs);
    sw_prom_sample_u64(p, "", (struct sw_prom_label[]){{"filter", fs.name}, {"action", fs.action}}, 2, fs.removed);
  }
  size_t nm = sw_process_nmetrics(proc);
  sw_prom_family(p, "spillway_log_metric_overflow_total", SW_PROM_COUNTER,
                 "Records of a log metric not counted in a series: it had max_series already.");
  for (size_t i = 0; i < nm; i++) {
    uint64_t over;
    const struct sw_log_metric_conf *c = sw_process_metric(proc, i, &over);
    sw_prom_sample_u64(p, "", (struct sw_prom_label[]){{"metric", c->name}}, 1, over);
  }
  for (size_t i = 0; i < nm; i++) {
    uint64_t over;
    const struct sw_log_metric_conf *c = sw_process_metric(proc, i, &over);
    char name[160];
    snprintf(name, sizeof name, "spillway_log_%s_total", c->name);
    sw_prom_family(p, name, SW_PROM_COUNTER, c->help && c->help[0] ? c->help : "Records counted by a log metric.");
    struct series_arg a = {p, c};
    sw_process_metric_series(proc, i, one_series, &a);
  }
}
