/* journal_read.c - how fast sd-journal itself reads a journal (not a test): the bound of the
 * journald source's throughput.
 *
 * Opens DIR with sd_journal_open_directory(DIR, 0), lifts the data threshold
 * (sd_journal_set_data_threshold(j, 0): whole fields, as the agent reads them) and walks every
 * entry with sd_journal_next, reading per entry what the agent reads: MESSAGE, _SYSTEMD_UNIT,
 * SYSLOG_IDENTIFIER, PRIORITY, _BOOT_ID, _HOSTNAME and the realtime timestamp; the cursor once
 * every 1000 entries (the agent takes it once per batch). Two ways of reading the fields:
 *
 *   default      sd_journal_get_data once per field (6 lookups of the entry's items)
 *   --enumerate  sd_journal_restart_data + sd_journal_enumerate_data over all of the entry's
 *                fields, keeping the 6 wanted ones (every field is read, wanted or not)
 *
 * One JSON object on stdout:
 *   {"mode":"get_data","entries":..,"message_bytes":..,"field_bytes":..,"seconds":..,
 *    "MB_per_s":..,"cpu_s":..,"max_rss_MiB":..,"missing":..}
 * MB/s is of MESSAGE values (without "MESSAGE="), 1 MB = 10^6 bytes; field_bytes counts the values
 * of all 6 fields; missing counts wanted fields an entry does not have; max_rss_MiB is the peak
 * RSS (ru_maxrss), which counts the journal files' pages sd-journal has mapped and touched.
 *
 * Build: cmake --build build --target bench_journal_read
 * Run:   build/bench_journal_read [--enumerate] bench/.work/journal/files
 *        (bench/bench_journald.py generates the journal and runs both modes and the agent)
 */
#define _POSIX_C_SOURCE 200809L /* clock_gettime under -std=c11 (CMake adds _GNU_SOURCE) */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <systemd/sd-journal.h>
#include <time.h>

#define NFIELDS 6
static const char *const fields[NFIELDS] = {"MESSAGE", "_SYSTEMD_UNIT", "SYSLOG_IDENTIFIER",
                                            "PRIORITY", "_BOOT_ID", "_HOSTNAME"};
static size_t field_len[NFIELDS];

struct totals {
  uint64_t entries, message_bytes, field_bytes, missing, ts_sum;
};

static double now(clockid_t clk) {
  struct timespec ts;
  clock_gettime(clk, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double cpu_seconds(long *maxrss_kib) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  if (maxrss_kib) *maxrss_kib = ru.ru_maxrss;
  return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
         (double)ru.ru_stime.tv_usec / 1e6;
}

/* One field "NAME=value" as sd-journal hands it out: counts its value. */
static void take(struct totals *t, int k, size_t len) {
  size_t v = len - field_len[k] - 1;
  t->field_bytes += v;
  if (k == 0) t->message_bytes += v;
}

static int read_get_data(sd_journal *j, struct totals *t) {
  for (int k = 0; k < NFIELDS; k++) {
    const void *d;
    size_t l;
    int r = sd_journal_get_data(j, fields[k], &d, &l);
    if (r == -ENOENT) {
      t->missing++;
      continue;
    }
    if (r < 0) return r;
    take(t, k, l);
  }
  return 0;
}

static int read_enumerate(sd_journal *j, struct totals *t) {
  const void *d;
  size_t l;
  int r, seen = 0;
  sd_journal_restart_data(j);
  while ((r = sd_journal_enumerate_data(j, &d, &l)) > 0) {
    const char *p = d;
    for (int k = 0; k < NFIELDS; k++) {
      if (l > field_len[k] && p[field_len[k]] == '=' && !memcmp(p, fields[k], field_len[k])) {
        take(t, k, l);
        seen++;
        break;
      }
    }
  }
  if (r < 0) return r;
  t->missing += (uint64_t)(NFIELDS - seen);
  return 0;
}

int main(int argc, char **argv) {
  int enumerate = 0;
  const char *dir = NULL;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--enumerate"))
      enumerate = 1;
    else if (!dir && argv[i][0] != '-')
      dir = argv[i];
    else
      dir = NULL, i = argc;
  }
  if (!dir) {
    fprintf(stderr, "usage: %s [--enumerate] DIR\n", argv[0]);
    return 2;
  }
  for (int k = 0; k < NFIELDS; k++) field_len[k] = strlen(fields[k]);

  double w0 = now(CLOCK_MONOTONIC), c0 = cpu_seconds(NULL);
  sd_journal *j;
  int r = sd_journal_open_directory(&j, dir, 0);
  if (r < 0) {
    fprintf(stderr, "%s: sd_journal_open_directory: %s\n", dir, strerror(-r));
    return 1;
  }
  if ((r = sd_journal_set_data_threshold(j, 0)) < 0) {
    fprintf(stderr, "sd_journal_set_data_threshold: %s\n", strerror(-r));
    return 1;
  }
  struct totals t = {0};
  while ((r = sd_journal_next(j)) > 0) {
    uint64_t usec;
    if ((r = sd_journal_get_realtime_usec(j, &usec)) < 0) break;
    t.ts_sum += usec;
    if ((r = enumerate ? read_enumerate(j, &t) : read_get_data(j, &t)) < 0) break;
    if (++t.entries % 1000 == 0) {
      char *cursor;
      if ((r = sd_journal_get_cursor(j, &cursor)) < 0) break;
      free(cursor);
    }
  }
  if (r < 0) {
    fprintf(stderr, "%s: entry %llu: %s\n", dir, (unsigned long long)t.entries + 1, strerror(-r));
    return 1;
  }
  sd_journal_close(j);
  long maxrss;
  double secs = now(CLOCK_MONOTONIC) - w0, cpu = cpu_seconds(&maxrss) - c0;
  printf("{\"mode\":\"%s\",\"entries\":%llu,\"message_bytes\":%llu,\"field_bytes\":%llu,"
         "\"seconds\":%.3f,\"MB_per_s\":%.1f,\"cpu_s\":%.2f,\"max_rss_MiB\":%.1f,\"missing\":%llu}\n",
         enumerate ? "enumerate" : "get_data", (unsigned long long)t.entries,
         (unsigned long long)t.message_bytes, (unsigned long long)t.field_bytes, secs,
         secs > 0 ? (double)t.message_bytes / 1e6 / secs : 0.0, cpu, (double)maxrss / 1024,
         (unsigned long long)t.missing);
  return 0;
}
