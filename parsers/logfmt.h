/* logfmt.h - `format: logfmt` lines: key=value pairs, values bare or "double quoted".
 *
 * Validates the syntax (keys are runs of printable non-space bytes without '=' or '"';
 * bare keys without '=' are allowed as in go-logfmt; quoted values must be terminated and
 * use backslash escapes) and extracts the time from the first key among "ts", "time",
 * "timestamp" (RFC 3339 value, quoted or bare). Pure: no I/O, no allocation.
 */
#ifndef SW_LOGFMT_H
#define SW_LOGFMT_H

#include <stddef.h>
#include <stdint.h>

#include "../common/error.h"

struct sw_logfmt_info {
  int64_t ts_ns; /* 0 if no usable time key */
  size_t npairs;
};

/* Returns 0 for a well-formed logfmt line with at least one key, else SW_EPARSE. */
int sw_logfmt_scan(const char *line, size_t len, struct sw_logfmt_info *res) SW_MUST_CHECK;

#endif
