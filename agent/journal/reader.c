/* reader.c - see reader.h. */
#include "reader.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-journal.h>
#include <time.h>
#include <unistd.h>

#include "../../common/hash.h"
#include "../../common/log.h"
#include "jstate.h"

static const char *const k_fields[1 + SW_JF_FIXED] = {"MESSAGE", "_HOSTNAME", "_SYSTEMD_UNIT",
                                                      "SYSLOG_IDENTIFIER", "PRIORITY", "_BOOT_ID"};

struct want { /* a field wanted from each entry (read_entry) */
  const char *name;
  size_t len;
};

struct sw_jreader {
  struct sw_jreader_opts o;
  char *path, *cursor;
  pthread_t th;
  int started;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  struct sw_jbatch *head, *tail; /* handed over, not taken */
  size_t out;                    /* handed over and not done with (queued or taken) */
  atomic_int stop; /* read by the thread at every entry: no lock */
  int wake[2]; /* a byte here ends the thread's wait for journal changes */
  uv_async_t async;
  atomic_int caught_up;
  struct want wants[1 + SW_JF_FIXED + 32];
};

static void batch_free(struct sw_jbatch *b) {
  if (!b) return;
  free(b->data);
  free(b->cursor);
  free(b);
}

static int room(struct sw_jbatch *b, size_t n) {
  if (b->cap - b->len >= n) return SW_OK;
  size_t cap = b->cap ? b->cap : SW_JBATCH_BYTES + 4096;
  while (cap - b->len < n) cap *= 2;
  uint8_t *d = realloc(b->data, cap);
  if (!d) return SW_ENOMEM;
  b->data = d;
  b->cap = cap;
  return SW_OK;
}

static void put_varint(struct sw_jbatch *b, uint64_t v) { /* room checked by the caller */
  while (v >= 0x80) {
    b->data[b->len++] = (uint8_t)(v | 0x80);
    v >>= 7;
  }
  b->data[b->len++] = (uint8_t)v;
}

/* ---- the loop side of the queue ---- */

static void on_async(uv_async_t *a) {
  struct sw_jreader *r = a->data;
  r->o.on_batch(r->o.arg);
}

struct sw_jbatch *sw_jreader_take(struct sw_jreader *r) {
  pthread_mutex_lock(&r->mu);
  struct sw_jbatch *b = r->head;
  if (b) {
    r->head = b->next;
    if (!r->head) r->tail = NULL;
    b->next = NULL;
  }
  pthread_mutex_unlock(&r->mu);
  return b;
}

void sw_jreader_poke(struct sw_jreader *r) { uv_async_send(&r->async); }

void sw_jreader_done(struct sw_jreader *r, struct sw_jbatch *b) {
  batch_free(b);
  pthread_mutex_lock(&r->mu);
  r->out--;
  pthread_cond_broadcast(&r->cv);
  pthread_mutex_unlock(&r->mu);
}

int sw_jreader_caught_up(struct sw_jreader *r) { return atomic_load(&r->caught_up); }

/* ---- the thread ---- */

static int stopping(struct sw_jreader *r) { return atomic_load_explicit(&r->stop, memory_order_relaxed); }

/* Hands b to the loop, waiting while SW_JREADER_QUEUE batches are out. 0 when stopping. */
static int hand_over(struct sw_jreader *r, struct sw_jbatch *b) {
  pthread_mutex_lock(&r->mu);
  while (r->out >= SW_JREADER_QUEUE && !atomic_load(&r->stop)) pthread_cond_wait(&r->cv, &r->mu);
  if (atomic_load(&r->stop)) {
    pthread_mutex_unlock(&r->mu);
    batch_free(b);
    return 0;
  }
  r->out++;
  if (r->tail) r->tail->next = b;
  else r->head = b;
  r->tail = b;
  pthread_mutex_unlock(&r->mu);
  uv_async_send(&r->async);
  return 1;
}

/* Waits for a change of the journal (or stop), at most max_ms. */
static void wait_change(struct sw_jreader *r, sd_journal *j, int max_ms) {
  struct pollfd p[2] = {{.fd = r->wake[0], .events = POLLIN}, {.fd = -1}};
  int n = 1;
  if (j) {
    int fd = sd_journal_get_fd(j), ev = sd_journal_get_events(j);
    uint64_t t;
    if (fd >= 0 && ev >= 0) {
      p[1] = (struct pollfd){.fd = fd, .events = (short)ev};
      n = 2;
    }
    if (sd_journal_get_timeout(j, &t) >= 0 && t != UINT64_MAX) {
      struct timespec now;
      clock_gettime(CLOCK_MONOTONIC, &now);
      uint64_t now_us = (uint64_t)now.tv_sec * 1000000u + (uint64_t)now.tv_nsec / 1000u;
      int64_t ms = t > now_us ? (int64_t)((t - now_us + 999) / 1000) : 0;
      if (ms < max_ms) max_ms = (int)ms;
    }
  }
  if (poll(p, (nfds_t)n, max_ms) > 0 && (p[0].revents & POLLIN)) {
    char buf[64];
    while (read(r->wake[0], buf, sizeof buf) > 0) {}
  }
  if (j) (void)sd_journal_process(j);
}

/* The fields an entry is read for: slot 0 MESSAGE, then the label fields (reader.h order, then
 * the source's `fields`). One pass of sd_journal_enumerate_data over the entry's items finds
 * them all; sd_journal_get_data per field walks the items once per field (2.3x slower on
 * journald's ~20 fields per entry: bench/journal_read.c). A value is valid only until the next
 * enumeration step, so each wanted one is copied into the scratch area at once. */
struct entry_scratch {
  struct sw_buf b;
  struct {
    size_t off, len;
    int have;
  } slot[1 + SW_JF_FIXED + 32];
};

static int read_entry(const struct sw_jreader *r, sd_journal *j, struct entry_scratch *e) {
  size_t n = 1 + SW_JF_FIXED + r->o.nfields;
  sw_buf_reset(&e->b);
  for (size_t k = 0; k < n; k++) e->slot[k].have = 0;
  const void *d;
  size_t l;
  sd_journal_restart_data(j);
  int rc;
  while ((rc = sd_journal_enumerate_data(j, &d, &l)) > 0) {
    const char *p = d, *eq = memchr(p, '=', l);
    if (!eq) continue;
    size_t nl = (size_t)(eq - p);
    for (size_t k = 0; k < n; k++) {
      const struct want *w = &r->wants[k];
      if (w->len != nl || e->slot[k].have || memcmp(w->name, p, nl)) continue;
      size_t vl = l - nl - 1;
      if (k > 0 && vl > 1024) vl = 1024; /* a label value, like an extracted one, is cut to 1 KiB */
      e->slot[k].off = e->b.len;
      e->slot[k].len = vl;
      e->slot[k].have = 1;
      if (sw_buf_append(&e->b, eq + 1, vl)) return SW_ENOMEM;
      break;
    }
  }
  return rc < 0 && rc != -ENOENT ? SW_EIO : SW_OK;
}

static void pause_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

/* journald (and journal-remote) make an entry visible in the file's entry array before they link
 * the entry into its data objects, and sd-journal takes a data object caught in between (entry
 * offset set, entry count not yet) as bad and skips it: the entry reads without that field, a
 * first-seen MESSAGE or unit (measured: ~2 in 10 000 entries read at the tail while
 * journal-remote appends). Only the newest entry can be in that window (one writer appends one
 * entry at a time), so the newest one is read after a pause; one that still shows no MESSAGE
 * is read again a few times. *tail_us caches the journal's newest time so that entries behind it
 * cost nothing. */
static int read_settled(struct sw_jreader *r, sd_journal *j, struct entry_scratch *e, uint64_t us,
                        uint64_t *tail_us) {
  int newest = 0;
  if (us >= *tail_us) {
    uint64_t to = 0;
    if (sd_journal_get_cutoff_realtime_usec(j, NULL, &to) > 0) *tail_us = to;
    newest = us >= *tail_us;
  }
  if (newest) pause_ms(1);
  int rc = read_entry(r, j, e);
  for (long ms = 2; newest && rc == SW_OK && !e->slot[0].have && ms <= 16 && !stopping(r); ms *= 2) {
    pause_ms(ms);
    rc = read_entry(r, j, e);
  }
  return rc;
}

static int excluded(const struct sw_jreader *r, const struct entry_scratch *e) {
  const size_t u = 1 + SW_JF_UNIT;
  if (!r->o.nexclude_units || !e->slot[u].have) return 0;
  for (size_t i = 0; i < r->o.nexclude_units; i++)
    if (strlen(r->o.exclude_units[i]) == e->slot[u].len &&
        !memcmp(r->o.exclude_units[i], e->b.data + e->slot[u].off, e->slot[u].len))
      return 1;
  return 0;
}

/* Appends the entry read into e to b. */
static int encode(const struct sw_jreader *r, const struct entry_scratch *e, struct sw_jbatch *b,
                  uint64_t skipped, uint64_t us) {
  size_t n = 1 + SW_JF_FIXED + r->o.nfields;
  int rc = room(b, e->b.len + 32 + 10 * n);
  if (rc) return rc;
  put_varint(b, skipped);
  put_varint(b, us);
  size_t lstart = 0;
  for (size_t k = 0; k < n; k++) {
    size_t vl = e->slot[k].have ? e->slot[k].len : 0;
    if (k == 0) put_varint(b, vl); /* the message: length, bytes */
    else put_varint(b, e->slot[k].have ? vl + 1 : 0);
    if (vl) memcpy(b->data + b->len, e->b.data + e->slot[k].off, vl);
    b->len += vl;
    if (k == 0) lstart = b->len;
  }
  uint64_t key = sw_fnv1a(SW_FNV1A_INIT, b->data + lstart, b->len - lstart);
  for (int i = 0; i < 8; i++) b->data[b->len++] = (uint8_t)(key >> (8 * i));
  b->n++;
  return SW_OK;
}

static struct sw_jbatch *batch_new(const struct sw_jreader *r) {
  struct sw_jbatch *b = calloc(1, sizeof *b);
  if (b) b->nlabels = (uint32_t)(SW_JF_FIXED + r->o.nfields);
  return b;
}

/* Seals b with the cursor of the current entry and hands it over; a new batch in *b. */
static int flush(struct sw_jreader *r, sd_journal *j, struct sw_jbatch **bp, uint64_t *skip, int64_t last_us) {
  struct sw_jbatch *b = *bp;
  char *c = NULL;
  if (sd_journal_get_cursor(j, &c) < 0) c = NULL;
  b->cursor = c;
  b->last_us = last_us;
  b->skipped_after = *skip;
  *skip = 0;
  if (!hand_over(r, b)) {
    *bp = NULL;
    return 0;
  }
  *bp = batch_new(r);
  return *bp != NULL;
}

/* The sequence-number distance from cursor to the entry at the journal's current position,
 * when both come from the same sequence (0: unknown). */
static uint64_t seq_gap(sd_journal *j, const char *cursor) {
  char *c = NULL;
  uint64_t a, b;
  char sa[33], sb[33];
  if (sd_journal_get_cursor(j, &c) < 0) return 0;
  uint64_t gap = 0;
  if (sw_jcursor_seqnum_id(cursor, sa) && sw_jcursor_seqnum_id(c, sb) && !strcmp(sa, sb) &&
      sw_jcursor_hex(cursor, 'i', &a) && sw_jcursor_hex(c, 'i', &b) && b > a + 1)
    gap = b - a - 1;
  free(c);
  return gap;
}

/* Matches on one field are OR'ed, matches on different fields AND'ed (sd_journal_add_match). */
static int match_list(sd_journal *j, const char *field, char *const *v, size_t n) {
  char m[1100];
  for (size_t i = 0; i < n; i++) {
    int len = snprintf(m, sizeof m, "%s=%s", field, v[i]);
    if (len < 0 || (size_t)len >= sizeof m || sd_journal_add_match(j, m, (size_t)len) < 0) return -1;
  }
  return 0;
}

static int add_matches(struct sw_jreader *r, sd_journal *j) {
  return match_list(j, "_SYSTEMD_UNIT", r->o.units, r->o.nunits) ||
                 match_list(j, "SYSLOG_IDENTIFIER", r->o.identifiers, r->o.nidentifiers)
             ? -1
             : 0;
}

int sw_journal_newest_us(const char *path, char *const *units, size_t nunits, char *const *identifiers,
                         size_t nidentifiers, uint64_t *us) {
  sd_journal *j = NULL;
  int rc = sd_journal_open_directory(&j, path, 0);
  if (rc < 0) return rc;
  *us = 0;
  if (match_list(j, "_SYSTEMD_UNIT", units, nunits) || match_list(j, "SYSLOG_IDENTIFIER", identifiers, nidentifiers))
    rc = -EINVAL;
  else if ((rc = sd_journal_seek_tail(j)) >= 0 && (rc = sd_journal_previous(j)) > 0)
    rc = sd_journal_get_realtime_usec(j, us);
  sd_journal_close(j);
  return rc < 0 ? rc : 0;
}

/* Positions j as reader.h says; *have: the current entry is to be read before moving on. */
static void position(struct sw_jreader *r, sd_journal *j, struct sw_jbatch *b, int *have) {
  *have = 0;
  b->first = 1;
  if (!r->cursor) {
    b->start = SW_JSTART_FRESH;
    if (add_matches(r, j)) SW_LOG(SW_L_ERROR, "journal", "%s: cannot set the unit and identifier matches", r->path);
    if (r->o.from_tail) {
      (void)sd_journal_seek_tail(j);
      (void)sd_journal_previous(j);
    } else {
      (void)sd_journal_seek_head(j);
    }
    return;
  }
  /* Does the entry still exist? Asked without the matches, which it may no longer meet. */
  int exists = 0;
  uint64_t gap = 0;
  if (sd_journal_seek_cursor(j, r->cursor) >= 0 && sd_journal_next(j) > 0) {
    exists = sd_journal_test_cursor(j, r->cursor) > 0;
    if (!exists) gap = seq_gap(j, r->cursor);
  }
  if (add_matches(r, j)) SW_LOG(SW_L_ERROR, "journal", "%s: cannot set the unit and identifier matches", r->path);
  if (sd_journal_seek_cursor(j, r->cursor) < 0) {
    (void)sd_journal_seek_head(j);
    exists = 0;
  }
  int n = sd_journal_next(j);
  if (!exists) {
    b->start = SW_JSTART_GAP;
    b->gap_seqnums = gap;
    *have = n > 0;
    return;
  }
  b->start = SW_JSTART_AT;
  if (n > 0 && sd_journal_test_cursor(j, r->cursor) > 0) {
    if (r->o.back > 0) {
      int m = sd_journal_previous_skip(j, r->o.back - 1);
      b->rewound = (uint64_t)(m > 0 ? m : 0) + 1;
      *have = 1;
    }
    return;
  }
  /* The entry no longer meets the matches (they changed): what follows it is new, and the
   * entries the streams still needed before it are delivered again (journal.c reads them all
   * as new: duplicates rather than a loss). */
  if (r->o.back > 0 && sd_journal_seek_cursor(j, r->cursor) >= 0) {
    int m = sd_journal_previous_skip(j, r->o.back);
    if (m > 0) {
      b->rewound = (uint64_t)m;
      *have = 1;
      return;
    }
    (void)sd_journal_seek_cursor(j, r->cursor);
    n = sd_journal_next(j);
  }
  *have = n > 0;
}

static void *run(void *arg) {
  struct sw_jreader *r = arg;
  sd_journal *j = NULL;
  int warned = 0;
  while (!stopping(r)) {
    int rc = sd_journal_open_directory(&j, r->path, 0);
    if (rc >= 0) break;
    j = NULL;
    if (!warned) SW_LOG(SW_L_WARN, "journal", "cannot open the journal in %s: %s (trying again every 5 s)", r->path, strerror(-rc));
    warned = 1;
    wait_change(r, NULL, 5000);
  }
  if (!j) return NULL;
  if (warned) SW_LOG(SW_L_INFO, "journal", "journal in %s open", r->path);
  (void)sd_journal_set_data_threshold(j, 0); /* whole fields, not their first 64 KiB */
  (void)sd_journal_get_fd(j);                /* watch for changes from now on */
  struct sw_jbatch *b = batch_new(r);
  struct entry_scratch es;
  sw_buf_init(&es.b, SIZE_MAX);
  int have = 0;
  if (b) position(r, j, b, &have);
  uint64_t skip = 0, tail_us = 0;
  int64_t last_us = 0;
  int failing = 0;
  while (b && !stopping(r)) {
    int n = have ? 1 : sd_journal_next(j);
    have = 0;
    if (n < 0) {
      if (!failing) SW_LOG(SW_L_WARN, "journal", "reading the journal in %s: %s", r->path, strerror(-n));
      failing = 1;
      wait_change(r, j, 1000);
      continue;
    }
    failing = 0;
    if (n == 0) {
      if ((b->n || skip || b->first) && !flush(r, j, &b, &skip, last_us)) break;
      atomic_store(&r->caught_up, 1);
      wait_change(r, j, 1000);
      continue;
    }
    atomic_store(&r->caught_up, 0);
    uint64_t us = 0;
    (void)sd_journal_get_realtime_usec(j, &us);
    last_us = (int64_t)us;
    int rrc = read_settled(r, j, &es, us, &tail_us);
    if (rrc == SW_EIO) { /* a damaged entry: sd-journal says so; it counts as read, empty */
      for (size_t k = 0; k < sizeof es.slot / sizeof es.slot[0]; k++) es.slot[k].have = 0;
      rrc = SW_OK;
    }
    if (!rrc && excluded(r, &es)) {
      skip++;
    } else {
      if (rrc || encode(r, &es, b, skip, us)) {
        SW_LOG(SW_L_ERROR, "journal", "out of memory reading the journal in %s", r->path);
        wait_change(r, NULL, 1000);
        have = 1;
        continue;
      }
      skip = 0;
    }
    if ((b->len >= SW_JBATCH_BYTES || b->n >= SW_JBATCH_ENTRIES || skip >= SW_JBATCH_ENTRIES) &&
        !flush(r, j, &b, &skip, last_us))
      break;
  }
  batch_free(b);
  sw_buf_free(&es.b);
  sd_journal_close(j);
  return NULL;
}

int sw_jreader_start(const struct sw_jreader_opts *o, struct sw_jreader **out, char *err, size_t errlen) {
  struct sw_jreader *r = calloc(1, sizeof *r);
  if (!r) return SW_ENOMEM;
  r->o = *o;
  if (r->o.nfields > 32) r->o.nfields = 32; /* the config allows no more */
  for (size_t k = 0; k < 1 + SW_JF_FIXED + r->o.nfields; k++) {
    const char *f = k <= SW_JF_FIXED ? k_fields[k] : r->o.fields[k - 1 - SW_JF_FIXED];
    r->wants[k] = (struct want){f, strlen(f)};
  }
  r->path = strdup(o->path);
  r->cursor = o->cursor ? strdup(o->cursor) : NULL;
  r->wake[0] = r->wake[1] = -1;
  if (!r->path || (o->cursor && !r->cursor) || pipe2(r->wake, O_CLOEXEC | O_NONBLOCK)) {
    snprintf(err, errlen, "journal %s: %s", o->path, r->path ? strerror(errno) : "out of memory");
    free(r->path);
    free(r->cursor);
    if (r->wake[0] >= 0) close(r->wake[0]);
    free(r);
    return SW_EIO;
  }
  pthread_mutex_init(&r->mu, NULL);
  pthread_cond_init(&r->cv, NULL);
  uv_async_init(o->loop, &r->async, on_async);
  r->async.data = r;
  if (pthread_create(&r->th, NULL, run, r)) {
    snprintf(err, errlen, "journal %s: cannot start the reader thread", o->path);
    r->started = 0;
    sw_jreader_stop(r);
    return SW_EIO;
  }
  r->started = 1;
  pthread_setname_np(r->th, "sw-journal"); /* for top -H and per-thread CPU figures */
  *out = r;
  return SW_OK;
}

static void on_closed(uv_handle_t *h) {
  struct sw_jreader *r = h->data;
  pthread_mutex_destroy(&r->mu);
  pthread_cond_destroy(&r->cv);
  free(r);
}

void sw_jreader_stop(struct sw_jreader *r) {
  if (!r) return;
  pthread_mutex_lock(&r->mu);
  atomic_store(&r->stop, 1); /* under the lock: a waiting hand_over sees it with the signal */
  pthread_cond_broadcast(&r->cv);
  pthread_mutex_unlock(&r->mu);
  if (write(r->wake[1], "x", 1) < 0) {} /* a full pipe wakes it as well */
  if (r->started) pthread_join(r->th, NULL);
  for (struct sw_jbatch *b = r->head, *n; b; b = n) {
    n = b->next;
    batch_free(b);
  }
  r->head = r->tail = NULL;
  close(r->wake[0]);
  close(r->wake[1]);
  free(r->path);
  free(r->cursor);
  uv_close((uv_handle_t *)&r->async, on_closed);
}

/* ---- decoding ---- */

int sw_jbatch_next(const struct sw_jbatch *b, size_t *off, struct sw_jentry *e) {
  if (*off >= b->len) return 0;
  const uint8_t *p = b->data + *off, *end = b->data + b->len;
  uint64_t us, n;
  if (sw_get_varint(&p, end, &e->skipped) || sw_get_varint(&p, end, &us) ||
      sw_get_varint(&p, end, &n) || n > (uint64_t)(end - p))
    return -1;
  e->ts_ns = (int64_t)us * 1000;
  e->msg = (const char *)p;
  e->len = (size_t)n;
  p += n;
  e->labels = p;
  for (uint32_t k = 0; k < b->nlabels; k++) {
    uint64_t l;
    if (sw_get_varint(&p, end, &l) || (l && l - 1 > (uint64_t)(end - p))) return -1;
    if (l) p += l - 1;
  }
  if (end - p < 8) return -1;
  e->labels_len = (size_t)(p - e->labels);
  e->key = 0;
  for (int i = 0; i < 8; i++) e->key |= (uint64_t)p[i] << (8 * i);
  p += 8;
  *off = (size_t)(p - b->data);
  return 1;
}

int sw_jlabel(const uint8_t *labels, size_t len, size_t k, const char **v, size_t *vlen) {
  const uint8_t *p = labels, *end = labels + len;
  for (size_t i = 0;; i++) {
    uint64_t l;
    if (sw_get_varint(&p, end, &l) || (l && l - 1 > (uint64_t)(end - p))) return 0;
    if (i == k) {
      if (!l) return 0;
      *v = (const char *)p;
      *vlen = (size_t)(l - 1);
      return 1;
    }
    if (l) p += l - 1;
  }
}
