/* metrics_kube.h - Kubernetes metadata figures for /metrics (part of http/metrics.c). */
#ifndef SW_METRICS_KUBE_H
#define SW_METRICS_KUBE_H

#include "promtext.h"

struct sw_kube;
struct sw_tail;

/* k and t may be NULL (zeros). Loop thread. */
void sw__metrics_render_kube(struct sw_prom *p, struct sw_kube *k, struct sw_tail *t);

#endif
