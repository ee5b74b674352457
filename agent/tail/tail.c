/* tail.c - reading and the timers that drive it: read passes over the followed files, rescans,
 * start and stop; see tail.h for the state diagram. Opening files and their identity are in
 * tail/open.c, discovery in tail/scan.c, files renamed while stopped in tail/retention.c: those
 * call down into tail/open.c and wake this file only through the timer callbacks it set. */
#include "tail.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../common/log.h"
#include "../../common/timefmt.h"
#include "labels.h"
#include "internal.h"

static int blocked(struct sw_tail *t) { return sw_ingest_blocked(t->ing); }

/* At the end of a burst (an earlier read stopped with more to read, or the chunk is a quarter
 * full) the open chunk goes now instead of waiting out max_wait; a file written at a steady
 * pace or trickling still collects up to max_wait (small chunks compress and commit poorly:
 * sealing at every EOF of a steady 4 MiB/s stream cost 20 % more CPU per GB). */
static void seal_if_big(struct sw_tail *t, struct sw_tfile *f) {
  uint64_t big = t->cfg->buffer.chunk_max_bytes / 4;
  if (big > SW_EOF_SEAL_BYTES) big = SW_EOF_SEAL_BYTES;
  if (f->bursting) big = 1;
  f->bursting = 0;
  if (f->cb_ready && sw_chunk_raw_size(&f->cb) >= big &&
      sw_ingest_seal(t->ing, f, 0, 0))
    SW_LOG(SW_L_ERROR, "tail", "cannot seal %s", f->disp);
}

/* Reads f until EOF or the budget ends. Returns bytes read. */
static uint64_t read_file(struct sw_tail *t, struct sw_tfile *f, uint64_t budget, int *more) {
  uint64_t total = 0;
  *more = 0;
  while (total < budget) {
    if (blocked(t)) {
      t->paused = 1;
      *more = 1;
      f->bursting = 1;
      return total;
    }
    ssize_t n = pread(f->fd, t->rbuf, SW_READ_BUF, (off_t)f->read_off);
    if (n < 0) {
      SW_LOG(SW_L_WARN, "tail", "read %s: %s", f->disp, strerror(errno));
      return total;
    }
    if (n == 0) {
      struct stat st;
      if (fstat(f->fd, &st) == 0 && (uint64_t)st.st_size < f->read_off) {
        sw__tail_truncated(t, f, (uint64_t)st.st_size);
        continue;
      }
      seal_if_big(t, f);
      return total;
    }
    if (f->fp_len < SW_FP_LEN) sw__tail_fingerprint(f->fd, SW_FP_LEN, &f->fp_hash, &f->fp_len);
    f->last_growth_ms = sw_ingest_now_ms();
    size_t used = sw_ingest_feed(t->ing, f, t->rbuf, (size_t)n, n == SW_READ_BUF, 0);
    f->read_off += used;
    total += (uint64_t)n;
    if (sw_ingest_open_bytes(t->ing) > SW_OPEN_MAX && sw_ingest_seal(t->ing, f, 0, 0))
      SW_LOG(SW_L_ERROR, "tail", "cannot seal %s", f->disp);
    /* A short read that ends mid-line reached the end of what was written: wait for the rest.
     * A full buffer ending mid-line just means the next line continues past it. */
    if (used < (size_t)n && n < SW_READ_BUF) {
      seal_if_big(t, f);
      return total;
    }
  }
  *more = 1;
  f->bursting = 1;
  return total;
}

static void finish_at_eof(struct sw_tail *t, struct sw_tfile *f) {
  /* A file that will get no more bytes: its unterminated last line is a record too. */
  ssize_t n = pread(f->fd, t->rbuf, SW_READ_BUF, (off_t)f->read_off);
  if (n > 0) f->read_off += sw_ingest_feed(t->ing, f, t->rbuf, (size_t)n, 1, 1);
}

static void read_pass(struct sw_tail *t) {
  if (t->stopping) return;
  t->paused = 0;
  /* Files awaiting their pod's metadata start as soon as it is in, not at the next poll. */
  if (sw__tail_kube_poll(t)) sw__tail_schedule_read(t, 20);
  uint64_t budget = 16u << 20;
  int any_more = 0;
  int64_t now = sw_ingest_now_ms();
  for (struct sw_tfile **pp = &t->files; *pp;) {
    struct sw_tfile *f = *pp;
    int more = 0;
    if (sw__tail_kube_hold(f)) {
      /* Excluded: not a byte is read, even when it goes; awaiting metadata: read later. */
      if (f->excluded && f->state != SW_TF_ACTIVE) {
        sw__tail_release(t, pp);
        continue;
      }
      pp = &f->next;
      continue;
    }
    uint64_t got = read_file(t, f, budget / 4 + SW_READ_BUF, &more);
    budget = got < budget ? budget - got : 0;
    any_more |= more;
    if (t->paused) break;
    if (!more && f->state != SW_TF_ACTIVE) {
      if (f->state == SW_TF_DELETED || now - f->last_growth_ms >= SW_ROTATE_WAIT_MS) {
        finish_at_eof(t, f);
        sw__tail_release(t, pp);
        continue;
      }
    }
    pp = &f->next;
  }
  if (t->paused) return; /* resumed by sw_tail_kick when the writer catches up */
  if (any_more) sw__tail_schedule_read(t, 0);
}

static void on_kick_timer(uv_timer_t *h) { read_pass(h->data); }


void sw_tail_kick(struct sw_tail *t) {
  if (t->paused && !blocked(t)) sw__tail_schedule_read(t, 0);
}

static void on_poll_timer(uv_timer_t *h) {
  struct sw_tail *t = h->data;
  (void)sw__tail_kube_poll(t);
  sw_ingest_tick(t->ing, t->files, sw_ingest_now_ms());
  if (!t->paused) read_pass(t);
  else sw_tail_kick(t);
}

static void on_scan_timer(uv_timer_t *h) {
  struct sw_tail *t = h->data;
  t->scan_pending = 0;
  sw__tail_scan(t);
  sw__tail_update_watches(t);
  sw__tail_scan_generations(t);
  read_pass(t);
  uv_timer_start(&t->scan_timer, on_scan_timer, 1000, 0);
}


int sw_tail_create(uv_loop_t *loop, const struct sw_config *cfg, struct sw_ingest *ing,
                   struct sw_writer *w, struct sw_tail **out, char *err, size_t errlen) {
  struct sw_tail *t = calloc(1, sizeof *t);
  if (!t) return SW_ENOMEM;
  t->loop = loop;
  t->cfg = cfg;
  t->ing = ing;
  t->w = w;
  t->next_id = 1;
  t->rbuf = malloc(SW_READ_BUF);
  t->srcs = calloc(cfg->nsources ? cfg->nsources : 1, sizeof *t->srcs);
  t->own = sw_own_create(cfg);
  if (!t->rbuf || !t->srcs || !t->own) goto oom;
  t->nsrcs = cfg->nsources;
  for (size_t i = 0; i < cfg->nsources; i++) {
    int rc = sw_ingest_source_init(&t->srcs[i], &cfg->sources[i], err, errlen);
    if (rc == SW_ENOMEM) goto oom;
    if (rc) {
      snprintf(err, errlen, "sources[%zu].multiline.start: bad pattern", i);
      sw_tail_free(t);
      return rc;
    }
  }
  uv_timer_init(loop, &t->scan_timer);
  uv_timer_init(loop, &t->poll_timer);
  uv_timer_init(loop, &t->kick_timer);
  t->on_kick = on_kick_timer;
  t->on_scan = on_scan_timer;
  t->scan_timer.data = t->poll_timer.data = t->kick_timer.data = t;
  *out = t;
  return SW_OK;
oom:
  sw_tail_free(t); /* no handle is initialised yet */
  return SW_ENOMEM;
}

/* A source whose globs match no file is otherwise silent (no file in status, no records): say
 * so after the first scan, which runs at every start and reload. It keeps being watched. */
static void warn_empty_sources(struct sw_tail *t) {
  for (size_t i = 0; i < t->nsrcs; i++) {
    const struct sw_source_conf *c = t->srcs[i].conf;
    size_t n = 0;
    if (!c->npaths) continue; /* journald: not the tail's */
    for (struct sw_tfile *f = t->files; f; f = f->next) n += f->src == &t->srcs[i];
    if (n) continue;
    char globs[1024];
    size_t o = 0;
    for (size_t p = 0; p < c->npaths && o < sizeof globs; p++)
      o += (size_t)snprintf(globs + o, sizeof globs - o, "%s\"%s\"", p ? ", " : "", c->paths[p]);
    SW_LOG(SW_L_WARN, "tail", "source %s matches no file (paths: [%s]); files that appear later "
           "are picked up", c->name, globs);
  }
}

void sw_tail_set_epoch(struct sw_tail *t, int64_t created_ns) { t->gen_epoch_ns = created_ns; }

int sw_tail_start(struct sw_tail *t) {
  int64_t now = sw_time_now_ns();
  if (!t->gen_epoch_ns || t->gen_epoch_ns > now) t->gen_epoch_ns = now;
  sw__tail_scan(t);
  sw__tail_find_renamed(t);
  t->first_scan_done = 1;
  warn_empty_sources(t);
  sw__tail_update_watches(t);
  uint64_t poll = t->cfg->buffer.chunk_max_wait_ms / 2;
  if (poll > 250) poll = 250;
  if (poll < 10) poll = 10;
  uv_timer_start(&t->poll_timer, on_poll_timer, poll, poll);
  uv_timer_start(&t->scan_timer, on_scan_timer, 1000, 0);
  sw__tail_schedule_read(t, 0);
  return SW_OK;
}

void sw_tail_stop(struct sw_tail *t) {
  t->stopping = 1;
  uv_timer_stop(&t->scan_timer);
  uv_timer_stop(&t->poll_timer);
  uv_timer_stop(&t->kick_timer);
  uv_close((uv_handle_t *)&t->scan_timer, NULL);
  uv_close((uv_handle_t *)&t->poll_timer, NULL);
  uv_close((uv_handle_t *)&t->kick_timer, NULL);
  sw__tail_close_watches(t);
  for (struct sw_tfile *f = t->files; f; f = f->next)
    if (f->cb_ready && f->cb.count > 0 && sw_ingest_seal(t->ing, f, 0, 0))
      SW_LOG(SW_L_ERROR, "tail", "cannot seal %s at shutdown", f->disp);
}

void sw_tail_free(struct sw_tail *t) {
  if (!t) return;
  while (t->files) {
    struct sw_tfile *f = t->files;
    t->files = f->next;
    close(f->fd);
    sw_ingest_file_free(f);
  }
  while (t->known) {
    struct sw_known *k = t->known;
    t->known = k->next;
    sw__tail_known_free(k);
  }
  for (size_t i = 0; i < t->nsrcs; i++) {
    sw_ingest_source_free(&t->srcs[i]);
  }
  free(t->srcs);
  sw_own_free(t->own);
  free(t->reported);
  free(t->deferred);
  free(t->watches);
  free(t->rbuf);
  free(t);
}
