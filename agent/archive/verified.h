/* verified.h - the outcome of the last `spillway archive restore --verify-only` of a sink,
 * kept in data_dir/archive/<sink>.verified (JSON, written atomically) for the agent's
 * /metrics: spillway_archive_last_verified_timestamp_seconds, which the monthly drill's alert
 * watches (docs/runbook.md). */
#ifndef SW_ARCH_VERIFIED_H
#define SW_ARCH_VERIFIED_H

#include <stddef.h>
#include <stdint.h>

#include "../../common/error.h"

struct sw_arch_verified {
  int64_t last_run, last_ok; /* Unix seconds; last_ok: the last run where every object passed */
  uint64_t objects, failed, records;
};

/* Records a run now (v's counts; last_run/last_ok are set here, last_ok kept from the file
 * when this run failed). */
int sw_arch_verified_save(const char *data_dir, const char *sink, struct sw_arch_verified *v, char *err,
                          size_t errlen) SW_MUST_CHECK;
/* SW_ENOTFOUND when no run was recorded. */
int sw_arch_verified_load(const char *data_dir, const char *sink, struct sw_arch_verified *v) SW_MUST_CHECK;

#endif
