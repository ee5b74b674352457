/* log.h - the agent's own log: one JSON object per line on stderr.
 *
 * {"ts":"...","level":"info","component":"tail","msg":"..."}, plus "suppressed":N when earlier
 * repeats of the line were dropped. The level is checked before any formatting. Callers must
 * never pass secrets or log payloads at info level or above. The level and format are set in
 * main() before threads start, and again by a reload while no pipeline thread runs (with the
 * repeat limiter, the process-wide state of this module, like stderr itself).
 *
 * Repeats are limited: a line's kind is its level, component and exact message; each kind prints at most SW_LOG_BURST lines per SW_LOG_WINDOW_NS, then is counted
 * until its window ends, and its next printed line carries the count. Debug lines are exempt.
 */
#ifndef SW_LOG_H
#define SW_LOG_H

enum { SW_L_DEBUG = 0, SW_L_INFO = 1, SW_L_WARN = 2, SW_L_ERROR = 3 };

#include <stdint.h>

#define SW_LOG_BURST 5
#define SW_LOG_WINDOW_NS (INT64_C(10) * 1000000000)

void sw_log_setup(int level, int json);
/* Tests: the clock of the repeat limiter (NULL: the real one); forgets every window. */
void sw_log_set_clock(int64_t (*now_ns)(void));
int sw_log_enabled(int level);
/* msg is printf-formatted; it is JSON-escaped on output. */
void sw_log(int level, const char *component, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define SW_LOG(level, comp, ...)                                                                   \
  do {                                                                                             \
    if (sw_log_enabled(level)) sw_log(level, comp, __VA_ARGS__);                                   \
  } while (0)

#endif
