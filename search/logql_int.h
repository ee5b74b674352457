/* logql_int.h - what logql_run.c (the scan) and logql_metric.c (steps, aggregation, output)
 * share. Not part of the interface. */
#ifndef SW_LOGQL_INT_H
#define SW_LOGQL_INT_H

#include <stddef.h>
#include <stdint.h>

#include "../common/buf.h"
#include "logql.h"

/* A series: its label set (canonical JSON) and a value per step where `has` is set. */
struct sw__lq_series {
  char *key;
  double *v;
  uint8_t *has;
};

struct sw__lq_matrix {
  struct sw__lq_series *s;
  size_t n, cap;
  int scalar; /* a number, not a vector */
  double num;
};

void sw__lq_matrix_free(struct sw__lq_matrix *m);
/* Adds a series (takes key); its arrays are zeroed for nsteps. NULL on ENOMEM. */
struct sw__lq_series *sw__lq_matrix_add(struct sw__lq_matrix *m, char *key, size_t nsteps);

/* Evaluates m given its range aggregation's result (consumed: *range is left empty). */
int sw__lq_metric_eval(const struct sw_lq_metric *m, struct sw__lq_matrix *range, size_t nsteps,
                       struct sw__lq_matrix *out, char *err, size_t errlen);

/* `"resultType":"matrix|vector","result":[...]` of m, evaluated at start + k*step. */
int sw__lq_put_matrix(struct sw_buf *out, struct sw__lq_matrix *m, int64_t start, int64_t step,
                      size_t nsteps, int instant);

/* Seconds as Loki writes sample times: 1588889221 or 1588889221.5 (millisecond precision). */
int sw__lq_put_seconds(struct sw_buf *out, int64_t ns);

#endif
