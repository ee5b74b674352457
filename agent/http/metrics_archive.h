/* metrics_archive.h - the archive drill's figures for /metrics (part of http/metrics.c). */
#ifndef SW_METRICS_ARCHIVE_H
#define SW_METRICS_ARCHIVE_H

#include <stddef.h>

#include "../archive/verified.h"
#include "promtext.h"

struct sw_config;

#define SW_METRICS_MAX_ARCHIVES 32

/* Per s3 sink, the last `spillway archive restore --verify-only` (agent/archive/verified.h). */
struct sw_metrics_archive {
  size_t n;
  const char *sink[SW_METRICS_MAX_ARCHIVES]; /* borrowed from the configuration */
  struct sw_arch_verified v[SW_METRICS_MAX_ARCHIVES]; /* all 0: never verified */
};

/* Reads each s3 sink's record (a small file each): the snapshot job, on a pool thread. */
void sw__metrics_archive_read(const struct sw_config *cfg, struct sw_metrics_archive *a);
/* a: NULL before the first snapshot (the families are written empty). Loop thread. */
void sw__metrics_render_archive(struct sw_prom *p, const struct sw_metrics_archive *a);

#endif
