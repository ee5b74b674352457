/* log.h - the agent's own log: one JSON object per line on stderr.
 *
 * {"ts":"...","level":"info","component":"tail","msg":"..."} plus optional fields given as
 * a preformatted JSON fragment. The level is checked before any formatting. Callers must never
 * pass secrets or log payloads at info level or above. The level and format are set once in
 * main() before threads start (the one piece of process-wide state, like stderr itself).
 */
#ifndef SW_LOG_H
#define SW_LOG_H

enum { SW_L_DEBUG = 0, SW_L_INFO = 1, SW_L_WARN = 2, SW_L_ERROR = 3 };

void sw_log_setup(int level, int json);
int sw_log_enabled(int level);
/* msg is printf-formatted; it is JSON-escaped on output. */
void sw_log(int level, const char *component, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define SW_LOG(level, comp, ...)                                                                   \
  do {                                                                                             \
    if (sw_log_enabled(level)) sw_log(level, comp, __VA_ARGS__);                                   \
  } while (0)

#endif
