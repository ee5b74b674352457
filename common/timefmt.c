/* timefmt.c - RFC 3339 <-> ns since the epoch, with plain calendar arithmetic.
 *
 * We do not use timegm/strptime/localtime: they depend on the TZ database, the locale and
 * (for strptime) on NUL-terminated input, and they are far slower than the fixed-layout scan
 * below, which runs once per docker/CRI line on the agent's hot path.
 *
 * Representable range: an int64 of ns covers 1970-01-01T00:00:00Z (0) up to
 * 2262-04-11T23:47:16.854775807Z. Inputs outside it (years 2263..9999, or an offset that moves
 * 1970-01-01 before the epoch) are rejected with SW_EPARSE rather than wrapped or clamped,
 * so a bogus timestamp can never masquerade as a plausible one.
 */
#if !defined(_GNU_SOURCE) && !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200809L /* clock_gettime under -std=c11 */
#endif

#include "timefmt.h"

#include <stdbool.h>
#include <time.h>

#define NS_PER_SEC INT64_C(1000000000)

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil).
 * Valid for any year; m in 1..12, d in 1..31. */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  int64_t era = (y >= 0 ? y : y - 399) / 400;
  unsigned yoe = (unsigned)(y - era * 400);
  unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + (int64_t)doe - 719468;
}

/* Inverse of days_from_civil. */
static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d) {
  z += 719468;
  int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  unsigned doe = (unsigned)(z - era * 146097);
  unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  unsigned mp = (5 * doy + 2) / 153;
  *d = doy - (153 * mp + 2) / 5 + 1;
  *m = mp < 10 ? mp + 3 : mp - 9;
  *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

static bool is_leap(unsigned y) {
  return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static unsigned days_in_month(unsigned y, unsigned m) {
  static const unsigned char dim[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && is_leap(y) ? 29 : dim[m - 1];
}

static bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

/* Two ASCII digits at s -> 0..99, or -1. */
static int d2(const char *s) {
  if (!is_digit(s[0]) || !is_digit(s[1]))
    return -1;
  return (s[0] - '0') * 10 + (s[1] - '0');
}

/* Parses ".digits" at s[*i]; 9 digits give ns, more are truncated (RFC 3339 allows any). */
static int parse_frac(const char *s, size_t n, size_t *i, int64_t *frac) {
  size_t j = *i + 1; /* past '.' */
  size_t start = j;
  int64_t v = 0;
  while (j < n && is_digit(s[j])) {
    if (j - start < 9)
      v = v * 10 + (s[j] - '0');
    j++;
  }
  if (j == start)
    return SW_EPARSE;
  for (size_t k = j - start; k < 9; k++)
    v *= 10;
  *frac = v;
  *i = j;
  return 0;
}

/* Parses the zone designator at s[i..n): "Z"/"z" or "+HH:MM"/"-HH:MM"; *off in seconds east. */
static int parse_zone(const char *s, size_t n, size_t i, int64_t *off) {
  if (n - i == 1 && (s[i] == 'Z' || s[i] == 'z')) {
    *off = 0;
    return 0;
  }
  if (n - i != 6 || (s[i] != '+' && s[i] != '-') || s[i + 3] != ':')
    return SW_EPARSE;
  int hh = d2(s + i + 1);
  int mm = d2(s + i + 4);
  if (hh < 0 || hh > 23 || mm < 0 || mm > 59)
    return SW_EPARSE;
  *off = ((int64_t)hh * 3600 + (int64_t)mm * 60) * (s[i] == '-' ? -1 : 1);
  return 0;
}

int sw_time_parse_rfc3339(const char *s, size_t n, int64_t *ns) {
  /* Fixed prefix "YYYY-MM-DDTHH:MM:SS" is 19 bytes, the shortest zone is 1 more. */
  if (s == NULL || ns == NULL || n < 20)
    return SW_EPARSE;
  if (s[4] != '-' || s[7] != '-' || s[13] != ':' || s[16] != ':')
    return SW_EPARSE;
  if (s[10] != 'T' && s[10] != 't' && s[10] != ' ')
    return SW_EPARSE;
  int yh = d2(s), yl = d2(s + 2), mon = d2(s + 5), day = d2(s + 8);
  int hh = d2(s + 11), mi = d2(s + 14), ss = d2(s + 17);
  if (yh < 0 || yl < 0 || mon < 1 || mon > 12 || day < 1)
    return SW_EPARSE;
  unsigned year = (unsigned)(yh * 100 + yl);
  if (year < 1970 || (unsigned)day > days_in_month(year, (unsigned)mon))
    return SW_EPARSE;
  /* Second 60 is a leap second (RFC 3339 5.7). Without a leap-second table we fold it into
   * the first second of the next minute instead of rejecting a valid timestamp. */
  if (hh < 0 || hh > 23 || mi < 0 || mi > 59 || ss < 0 || ss > 60)
    return SW_EPARSE;

  size_t i = 19;
  int64_t frac = 0, off = 0;
  if (s[i] == '.' && parse_frac(s, n, &i, &frac) != 0)
    return SW_EPARSE;
  if (i >= n || parse_zone(s, n, i, &off) != 0)
    return SW_EPARSE;

  int64_t secs = days_from_civil(year, (unsigned)mon, (unsigned)day) * 86400 +
                 (int64_t)hh * 3600 + (int64_t)mi * 60 + ss - off;
  if (secs < 0 || secs > (INT64_MAX - frac) / NS_PER_SEC)
    return SW_EPARSE;
  *ns = secs * NS_PER_SEC + frac;
  return 0;
}

/* Writes v as exactly `width` decimal digits (v < 10^width). */
static void put_digits(char *out, uint64_t v, int width) {
  for (int k = width - 1; k >= 0; k--) {
    out[k] = (char)('0' + v % 10);
    v /= 10;
  }
}

size_t sw_time_format_rfc3339(int64_t ns, char *out) {
  /* Floor division so that pre-epoch values still print a valid (earlier) date. */
  int64_t secs = ns / NS_PER_SEC;
  int64_t frac = ns % NS_PER_SEC;
  if (frac < 0) {
    frac += NS_PER_SEC;
    secs--;
  }
  int64_t days = secs / 86400;
  int64_t sod = secs % 86400;
  if (sod < 0) {
    sod += 86400;
    days--;
  }
  int64_t y;
  unsigned m, d;
  civil_from_days(days, &y, &m, &d);
  /* int64 ns spans years 1677..2262, so four digits always suffice. */
  put_digits(out, (uint64_t)y, 4);
  out[4] = '-';
  put_digits(out + 5, m, 2);
  out[7] = '-';
  put_digits(out + 8, d, 2);
  out[10] = 'T';
  put_digits(out + 11, (uint64_t)(sod / 3600), 2);
  out[13] = ':';
  put_digits(out + 14, (uint64_t)(sod / 60 % 60), 2);
  out[16] = ':';
  put_digits(out + 17, (uint64_t)(sod % 60), 2);
  out[19] = '.';
  put_digits(out + 20, (uint64_t)frac, 9);
  out[29] = 'Z';
  out[30] = '\0';
  return SW_TIME_RFC3339_LEN;
}

int64_t sw_time_now_ns(void) {
  struct timespec ts;
  /* CLOCK_REALTIME cannot fail with a valid timespec pointer; 0 is a harmless fallback. */
  if (clock_gettime(CLOCK_REALTIME, &ts) != 0)
    return 0;
  return (int64_t)ts.tv_sec * NS_PER_SEC + ts.tv_nsec;
}

int64_t sw_time_mono_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * NS_PER_SEC + ts.tv_nsec;
}

int64_t sw_time_mono_ms(void) { return sw_time_mono_ns() / 1000000; }

void sw_time_format_rfc3339_cached(int64_t ns, int64_t *cached_sec, char *ts) {
  int64_t sec = ns >= 0 ? ns / 1000000000 : (ns - 999999999) / 1000000000;
  if (sec != *cached_sec) {
    sw_time_format_rfc3339(ns, ts);
    *cached_sec = sec;
    return;
  }
  int64_t frac = ns - sec * 1000000000;
  for (int i = 28; i >= 20; i--) {
    ts[i] = (char)('0' + frac % 10);
    frac /= 10;
  }
}
