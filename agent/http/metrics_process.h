/* metrics_process.h - filter counters and log metrics for /metrics (part of http/metrics.c). */
#ifndef SW_METRICS_PROCESS_H
#define SW_METRICS_PROCESS_H

#include "promtext.h"

struct sw_process;

/* proc may be NULL (nothing configured): the filter families are written empty. Loop thread. */
void sw__metrics_render_process(struct sw_prom *p, const struct sw_process *proc);

#endif
