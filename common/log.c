#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "buf.h"
#include "timefmt.h"

/* Written once by main() before any thread starts; read-only afterwards. */
static int g_level = SW_L_INFO;
static int g_json = 1;

void sw_log_setup(int level, int json) {
  g_level = level;
  g_json = json;
}

int sw_log_enabled(int level) { return level >= g_level; }

static const char *level_name(int level) {
  switch (level) {
  case SW_L_DEBUG: return "debug";
  case SW_L_INFO: return "info";
  case SW_L_WARN: return "warn";
  default: return "error";
  }
}

void sw_log(int level, const char *component, const char *fmt, ...) {
  if (level < g_level) return;
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  size_t mlen = (size_t)n < sizeof msg ? (size_t)n : sizeof msg - 1;
  char ts[SW_TIME_RFC3339_LEN + 1];
  sw_time_format_rfc3339(sw_time_now_ns(), ts);
  struct sw_buf b;
  sw_buf_init(&b, 8192);
  int rc;
  if (g_json) {
    rc = sw_buf_printf(&b, "{\"ts\":\"%s\",\"level\":\"%s\",\"component\":\"%s\",\"msg\":\"", ts,
                       level_name(level), component);
    if (!rc) rc = sw_buf_put_json_str(&b, msg, mlen, NULL);
    if (!rc) rc = sw_buf_append(&b, "\"}\n", 3);
  } else {
    rc = sw_buf_printf(&b, "%s %-5s %s: %.*s\n", ts, level_name(level), component, (int)mlen, msg);
  }
  if (!rc) fwrite(b.data, 1, b.len, stderr); /* one write per line keeps threads' lines whole */
  sw_buf_free(&b);
}
