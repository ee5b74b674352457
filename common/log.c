#include "log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "buf.h"
#include "timefmt.h"

/* Process-wide like stderr itself: set by main() (and by a reload, while no pipeline thread
 * runs), read by every thread. Atomic so that a reload's change is never a torn read. */
static atomic_int g_level = SW_L_INFO;
static atomic_int g_json = 1;

/* Repeat limiting: a "kind" of line is its level, component and exact message (a message that
 * varies, like a retry count or a path, is not a repeat: it says something new). Each kind may
 * print SW_LOG_BURST lines per SW_LOG_WINDOW_NS; the rest are counted, and the
 * kind's next printed line says how many were suppressed. The table is small and fixed: when
 * it is full the oldest window is reused (its unreported count is lost). Debug lines are not
 * limited. Guarded by one mutex: logging is rare next to the work it reports. */
#define SLOTS 64
struct slot {
  uint64_t key;
  int64_t window_ns;
  uint32_t printed, suppressed;
};
static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static struct slot g_slots[SLOTS];
static int64_t (*g_clock)(void) = sw_time_now_ns;

void sw_log_setup(int level, int json) {
  atomic_store(&g_level, level);
  atomic_store(&g_json, json);
}

void sw_log_set_clock(int64_t (*now_ns)(void)) {
  pthread_mutex_lock(&g_mu);
  g_clock = now_ns ? now_ns : sw_time_now_ns;
  memset(g_slots, 0, sizeof g_slots);
  pthread_mutex_unlock(&g_mu);
}

int sw_log_enabled(int level) { return level >= atomic_load(&g_level); }

static const char *level_name(int level) {
  switch (level) {
  case SW_L_DEBUG: return "debug";
  case SW_L_INFO: return "info";
  case SW_L_WARN: return "warn";
  default: return "error";
  }
}

static uint64_t kind_of(int level, const char *component, const char *msg, size_t n) {
  uint64_t h = 1469598103934665603ULL ^ (uint64_t)level;
  for (const char *c = component; *c; c++) h = (h ^ (unsigned char)*c) * 1099511628211ULL;
  h = (h ^ 0xff) * 1099511628211ULL;
  for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)msg[i]) * 1099511628211ULL;
  return h ? h : 1;
}

/* Returns -1 to drop the line, else the count of this kind's lines suppressed before it. */
static long admit(uint64_t key) {
  pthread_mutex_lock(&g_mu);
  int64_t now = g_clock();
  struct slot *s = NULL, *oldest = &g_slots[key % SLOTS];
  for (size_t i = 0; i < 8 && !s; i++) {
    struct slot *c = &g_slots[(key + i) % SLOTS];
    if (c->key == key) s = c;
    else if (c->key == 0 || c->window_ns < oldest->window_ns) oldest = c;
  }
  if (!s) {
    s = oldest;
    memset(s, 0, sizeof *s);
    s->key = key;
    s->window_ns = now;
  }
  if (now - s->window_ns >= SW_LOG_WINDOW_NS) {
    s->window_ns = now;
    s->printed = 0;
  }
  long r = -1;
  if (s->printed < SW_LOG_BURST) {
    s->printed++;
    r = s->suppressed;
    s->suppressed = 0;
  } else {
    s->suppressed++;
  }
  pthread_mutex_unlock(&g_mu);
  return r;
}

void sw_log(int level, const char *component, const char *fmt, ...) {
  if (level < atomic_load(&g_level)) return;
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  size_t mlen = (size_t)n < sizeof msg ? (size_t)n : sizeof msg - 1;
  long suppressed = level == SW_L_DEBUG ? 0 : admit(kind_of(level, component, msg, mlen));
  if (suppressed < 0) return;
  char ts[SW_TIME_RFC3339_LEN + 1];
  sw_time_format_rfc3339(sw_time_now_ns(), ts);
  struct sw_buf b;
  sw_buf_init(&b, 8192);
  int rc;
  if (atomic_load(&g_json)) {
    rc = sw_buf_printf(&b, "{\"ts\":\"%s\",\"level\":\"%s\",\"component\":\"%s\",\"msg\":\"", ts,
                       level_name(level), component);
    if (!rc) rc = sw_buf_put_json_str(&b, msg, mlen, NULL);
    if (!rc && suppressed) rc = sw_buf_printf(&b, "\",\"suppressed\":%ld}\n", suppressed);
    else if (!rc) rc = sw_buf_append(&b, "\"}\n", 3);
  } else {
    rc = sw_buf_printf(&b, "%s %-5s %s: %.*s", ts, level_name(level), component, (int)mlen, msg);
    if (!rc && suppressed) rc = sw_buf_printf(&b, " (%ld similar lines suppressed)", suppressed);
    if (!rc) rc = sw_buf_putc(&b, '\n');
  }
  if (!rc) fwrite(b.data, 1, b.len, stderr); /* one write per line keeps threads' lines whole */
  sw_buf_free(&b);
}
