/* journal_tail.c - how often an entry read at the journal's tail lacks a field, with and
 * without the journald source's rule (agent/journal/reader.c: the newest entry is read after a
 * 1 ms pause, and again while it shows no MESSAGE).
 *
 *   bench_journal_tail DIR SECONDS 0|1
 *
 * Reads DIR with sd-journal for SECONDS, polling the tail without sleeping (the worst case: a
 * reader always caught up while a writer appends), and counts every entry's fields as read
 * then. Afterwards (the writer has stopped) it reads the same entries again and reports, as one
 * JSON line, how many had fewer fields while live: journald and journal-remote link an entry
 * into its data objects only after the entry is visible, and sd-journal skips a data object
 * caught in between (bench/bench_journal_tail.py runs it against journal-remote). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-journal.h>
#include <time.h>

#define MAX_ENTRIES 8000000

static int fields(sd_journal *j, int *msg) {
  const void *d;
  size_t l;
  int n = 0;
  *msg = 0;
  sd_journal_restart_data(j);
  while (sd_journal_enumerate_data(j, &d, &l) > 0) {
    n++;
    if (l >= 8 && !memcmp(d, "MESSAGE=", 8)) *msg = 1;
  }
  return n;
}

static void pause_ms(long ms) {
  struct timespec ts = {0, ms * 1000000L};
  nanosleep(&ts, NULL);
}

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: %s DIR SECONDS 0|1\n", argv[0]);
    return 2;
  }
  int settle = atoi(argv[3]);
  unsigned char *live = malloc(MAX_ENTRIES);
  sd_journal *j;
  if (!live || sd_journal_open_directory(&j, argv[1], 0) < 0) {
    fprintf(stderr, "cannot open the journal in %s\n", argv[1]);
    return 1;
  }
  sd_journal_set_data_threshold(j, 0);
  long n = 0, newest_n = 0, no_msg = 0;
  uint64_t tail = 0;
  time_t end = time(NULL) + atol(argv[2]);
  while (time(NULL) < end && n < MAX_ENTRIES) {
    if (sd_journal_next(j) <= 0) {
      (void)sd_journal_process(j);
      continue;
    }
    uint64_t us = 0;
    (void)sd_journal_get_realtime_usec(j, &us);
    int newest = 0, msg;
    if (settle && us >= tail) {
      uint64_t to = 0;
      if (sd_journal_get_cutoff_realtime_usec(j, NULL, &to) > 0) tail = to;
      newest = us >= tail;
    }
    if (newest) {
      newest_n++;
      pause_ms(1);
    }
    int c = fields(j, &msg);
    for (long ms = 2; newest && !msg && ms <= 16; ms *= 2) {
      pause_ms(ms);
      c = fields(j, &msg);
    }
    no_msg += !msg;
    live[n++] = (unsigned char)(c > 255 ? 255 : c);
  }
  sd_journal_close(j);
  if (sd_journal_open_directory(&j, argv[1], 0) < 0) return 1;
  sd_journal_set_data_threshold(j, 0);
  long k = 0, short_n = 0;
  int msg;
  for (; k < n && sd_journal_next(j) > 0; k++) {
    int c = fields(j, &msg);
    short_n += live[k] != (unsigned char)(c > 255 ? 255 : c);
  }
  sd_journal_close(j);
  printf("{\"settle\": %d, \"entries\": %ld, \"read_as_newest\": %ld, \"without_message_live\": %ld, "
         "\"fields_missing_live\": %ld, \"checked\": %ld}\n",
         settle, n, newest_n, no_msg, short_n, k);
  free(live);
  return 0;
}
