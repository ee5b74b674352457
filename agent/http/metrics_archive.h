/* metrics_archive.h - the archive drill's figures for /metrics (part of http/metrics.c). */
#ifndef SW_METRICS_ARCHIVE_H
#define SW_METRICS_ARCHIVE_H

#include "promtext.h"

struct sw_config;

/* Per s3 sink, the last `spillway archive restore --verify-only` (agent/archive/verified.h):
 * one small file read per s3 sink and scrape. Loop thread. */
void sw__metrics_render_archive(struct sw_prom *p, const struct sw_config *cfg);

#endif
