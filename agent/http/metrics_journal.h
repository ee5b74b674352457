/* metrics_journal.h - the spillway_journal_* families of journald sources (part of http/metrics.c). */
#ifndef SW_METRICS_JOURNAL_H
#define SW_METRICS_JOURNAL_H

#include "promtext.h"

struct sw_journals;

/* js may be NULL (no journald source: the families are left out). Loop thread. */
void sw__metrics_render_journal(struct sw_prom *p, struct sw_journals *js);

#endif
