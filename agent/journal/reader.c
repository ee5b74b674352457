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
#include <unistd.h>

#include "../../common/hash.h"
#include "../../common/log.h"
#include "jstate.h"

static const char *const k_label_fields[SW_JF_FIXED] = {"_HOSTNAME", "_SYSTEMD_UNIT", "SYSLOG_IDENTIFIER",
                                                        "PRIORITY", "_BOOT_ID"};

struct sw_jreader {
  struct sw_jreader_opts o;
  char *path, *cursor;
  pthread_t th;
  int started;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  struct sw_jbatch *head, *tail; /* handed over, not taken */
  size_t out;                    /* handed over and not done with (queued or taken) */
  int stop;
  int wake[2]; /* a byte here ends the thread's wait for journal changes */
  uv_async_t async;
  atomic_int caught_up;
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

static int stopping(struct sw_jreader *r) {
  pthread_mutex_lock(&r->mu);
  int s = r->stop;
  pthread_mutex_unlock(&r->mu);
  return s;
}

/* Hands b to the loop, waiting while SW_JREADER_QUEUE batches are out. 0 when stopping. */
static int hand_over(struct sw_jreader *r, struct sw_jbatch *b) {
  pthread_mutex_lock(&r->mu);
  while (r->out >= SW_JREADER_QUEUE && !r->stop) pthread_cond_wait(&r->cv, &r->mu);
  if (r->stop) {
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

/* Field `name` of the current entry: its value (valid until the next get). */
static int field(sd_journal *j, const char *name, size_t nlen, const char **v, size_t *n) {
  const void *d;
  size_t l;
  if (sd_journal_get_data(j, name, &d, &l) < 0 || l < nlen + 1) return 0;
  *v = (const char *)d + nlen + 1;
  *n = l - nlen - 1;
  return 1;
}

static int excluded(const struct sw_jreader *r, sd_journal *j) {
  const char *u;
  size_t n;
  if (!r->o.nexclude_units || !field(j, "_SYSTEMD_UNIT", 13, &u, &n)) return 0;
  for (size_t i = 0; i < r->o.nexclude_units; i++)
    if (strlen(r->o.exclude_units[i]) == n && !memcmp(r->o.exclude_units[i], u, n)) return 1;
  return 0;
}

/* Appends the current entry to b. */
static int encode(struct sw_jreader *r, sd_journal *j, struct sw_jbatch *b, uint64_t skipped,
                  uint64_t us) {
  const char *v;
  size_t n;
  if (!field(j, "MESSAGE", 7, &v, &n)) {
    v = "";
    n = 0;
  }
  int rc = room(b, n + 64);
  if (rc) return rc;
  put_varint(b, skipped);
  put_varint(b, us);
  put_varint(b, n);
  memcpy(b->data + b->len, v, n);
  b->len += n;
  size_t lstart = b->len;
  size_t nl = SW_JF_FIXED + r->o.nfields;
  for (size_t k = 0; k < nl; k++) {
    const char *name = k < SW_JF_FIXED ? k_label_fields[k] : r->o.fields[k - SW_JF_FIXED];
    int have = field(j, name, strlen(name), &v, &n);
    if (have && n > 1024) n = 1024; /* a label value, like an extracted one, is cut to 1 KiB */
    if ((rc = room(b, (have ? n : 0) + 20))) return rc;
    put_varint(b, have ? n + 1 : 0);
    if (have) {
      memcpy(b->data + b->len, v, n);
      b->len += n;
    }
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
  } else {
    *have = n > 0; /* the entry no longer meets the matches: what follows it is new */
  }
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
  int have = 0;
  if (b) position(r, j, b, &have);
  uint64_t skip = 0;
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
    if (excluded(r, j)) {
      skip++;
    } else {
      if (encode(r, j, b, skip, us)) {
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
  sd_journal_close(j);
  return NULL;
}

int sw_jreader_start(const struct sw_jreader_opts *o, struct sw_jreader **out, char *err, size_t errlen) {
  struct sw_jreader *r = calloc(1, sizeof *r);
  if (!r) return SW_ENOMEM;
  r->o = *o;
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
  r->stop = 1;
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
