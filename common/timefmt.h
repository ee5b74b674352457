/* timefmt.h - RFC 3339 timestamps <-> nanoseconds since the Unix epoch (UTC). Pure. */
#ifndef SW_TIMEFMT_H
#define SW_TIMEFMT_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

/* Parses "YYYY-MM-DDTHH:MM:SS[.frac]Z" or with a "+HH:MM"/"-HH:MM" offset ('t'/' ' separators
 * and 'z' accepted; 1 to 9 fraction digits, extra digits are truncated). Years 1970..9999.
 * Returns 0 or SW_EPARSE. */
int sw_time_parse_rfc3339(const char *s, size_t n, int64_t *ns) SW_MUST_CHECK;

/* Writes "YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ" (always 9 fraction digits) and a NUL into out,
 * which must hold SW_TIME_RFC3339_LEN + 1 bytes. Returns the length written (30). */
#define SW_TIME_RFC3339_LEN 30
size_t sw_time_format_rfc3339(int64_t ns, char *out);

/* The same, for a run of mostly increasing times: reuses the "YYYY-MM-DDTHH:MM:SS" part while
 * the second does not change (*cached_sec starts at INT64_MIN; out keeps the last result). */
void sw_time_format_rfc3339_cached(int64_t ns, int64_t *cached_sec, char *out);

/* Current wall-clock time in ns. */
int64_t sw_time_now_ns(void);

/* CLOCK_MONOTONIC in ms: deadlines and intervals that wall-clock steps must not bend. */
int64_t sw_time_mono_ms(void);
int64_t sw_time_mono_ns(void);

#endif
