/* file.c - file sink; see file.h for the crash-safety protocol.
 * States: IDLE -(notify)-> SHIPPING -(written, synced, cursor committed)-> IDLE
 *         SHIPPING -(error)-> BACKOFF (output cut back to the committed length) -> SHIPPING */
#include "file.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../agent/buffer/buffer.h"
#include "../agent/buffer/chunk.h"
#include "../agent/buffer/hot.h"
#include "../agent/buffer/writer.h"
#include "../common/log.h"
#include "../common/timefmt.h"
#include "ndjson.h"

/* One delivery = up to this much raw chunk data, written chunk by chunk (memory stays at one
 * chunk's NDJSON), then one fdatasync and one cursor commit: syncs stay rare at full speed. */
#define BATCH_RAW (32u << 20)
#define BATCH_ROWS 256

struct sw_file_sink {
  pthread_t thread;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int stop, notified;
  uint64_t deadline_ms;
  char *name, *path, *data_dir;
  struct sw_writer *w;
  struct sw_db *db;
  int fd;
  struct sw_sink_cursor cur;
  struct sw_chunk_reader rd;
  struct sw_buf out;
  struct sw_route route;
  int64_t batch_last;
  uint64_t batch_records, batch_bytes;
  int batch_err;
};

static int mkparent(const char *path) {
  char buf[4096];
  snprintf(buf, sizeof buf, "%s", path);
  for (char *p = buf + 1; *p; p++) {
    if (*p != '/') continue;
    *p = 0;
    if (mkdir(buf, 0750) && errno != EEXIST) return -1;
    *p = '/';
  }
  return 0;
}

/* Opens the output and reconciles it with the committed cursor. */
static int open_output(struct sw_file_sink *s) {
  if (mkparent(s->path)) return SW_EIO;
  s->fd = open(s->path, O_WRONLY | O_CREAT | O_CLOEXEC, 0640);
  if (s->fd < 0) return SW_EIO;
  struct stat st;
  if (fstat(s->fd, &st)) return SW_EIO;
  uint64_t size = (uint64_t)st.st_size;
  if ((uint64_t)st.st_ino == s->cur.out_ino) {
    if (size > s->cur.out_bytes) {
      SW_LOG(SW_L_INFO, "sink", "%s: discarding %llu uncommitted bytes of %s (shipped again)",
             s->name, (unsigned long long)(size - s->cur.out_bytes), s->path);
      if (ftruncate(s->fd, (off_t)s->cur.out_bytes)) return SW_EIO;
    } else if (size < s->cur.out_bytes) {
      SW_LOG(SW_L_WARN, "sink", "%s: %s is shorter than committed; it was truncated by someone else",
             s->name, s->path);
      s->cur.out_bytes = size;
    }
  } else {
    s->cur.out_bytes = size; /* a new or replaced file: append */
    s->cur.out_ino = (uint64_t)st.st_ino;
  }
  return SW_OK;
}

static int write_all(int fd, const char *p, size_t n, uint64_t off) {
  while (n) {
    ssize_t w = pwrite(fd, p, n, (off_t)off);
    if (w < 0) {
      if (errno == EINTR) continue;
      return -errno;
    }
    p += w;
    n -= (size_t)w;
    off += (uint64_t)w;
  }
  return 0;
}

static int on_chunk(void *arg, const struct sw_chunk_row *row) {
  struct sw_file_sink *s = arg;
  sw_buf_reset(&s->out);
  const char *raw;
  size_t len;
  int rc = sw_chunk_reader_get(&s->rd, s->db, row, &raw, &len);
  uint64_t n = 0;
  if (!rc) rc = sw_ndjson_encode(row, raw, len, &s->route, &s->out, &n);
  if (rc) {
    /* A damaged chunk must not wedge the sink forever: skip it loudly. */
    SW_LOG(SW_L_ERROR, "sink", "%s: chunk %lld is unreadable (%s); skipped", s->name,
           (long long)row->id, sw_strerror(rc));
    n = 0;
    s->out.len = 0;
  }
  int werr = write_all(s->fd, s->out.data, s->out.len, s->cur.out_bytes + s->batch_bytes);
  if (werr) {
    s->batch_err = werr;
    return 1; /* stop; the batch so far is discarded by the caller */
  }
  s->batch_bytes += s->out.len;
  s->batch_records += n;
  s->batch_last = row->id;
  return 0;
}

/* Ships one batch. Returns 1 if something was shipped, 0 if idle, <0 on error. */
static int ship_batch(struct sw_file_sink *s) {
  struct stat st;
  if (stat(s->path, &st) != 0 || (uint64_t)st.st_ino != s->cur.out_ino) {
    SW_LOG(SW_L_INFO, "sink", "%s: %s was moved away; reopening", s->name, s->path);
    close(s->fd);
    int orc = open_output(s);
    if (orc) return orc;
  }
  s->batch_last = s->cur.acked;
  s->batch_records = s->batch_bytes = 0;
  s->batch_err = 0;
  int rc = sw_db_chunks_after(s->db, s->cur.acked, BATCH_ROWS, BATCH_RAW, on_chunk, s);
  sw_chunk_reader_idle(&s->rd);
  int werr = s->batch_err;
  if (!rc && !werr && s->batch_last == s->cur.acked) return 0;
  if (!rc && !werr && fdatasync(s->fd)) werr = -errno;
  if (werr) {
    SW_LOG(SW_L_ERROR, "sink", "%s: writing %s failed: %s (will retry)", s->name, s->path,
           strerror(-werr));
    rc = SW_EIO;
  }
  if (rc) {
    if (ftruncate(s->fd, (off_t)s->cur.out_bytes)) { /* best effort; redone at restart */ }
    return rc;
  }
  struct sw_sink_cursor next = s->cur;
  next.acked = s->batch_last;
  next.out_bytes += s->batch_bytes;
  next.sent_records += s->batch_records;
  if ((rc = sw_db_cursor_set(s->db, s->name, &next))) {
    if (ftruncate(s->fd, (off_t)s->cur.out_bytes)) { /* best effort; redone at restart */ }
    return rc;
  }
  s->cur = next;
  if (s->out.cap > (4u << 20)) sw_buf_shrink(&s->out, 0);
  sw_writer_kick(s->w); /* acknowledged chunks can go */
  return 1;
}

static void *sink_main(void *arg) {
  struct sw_file_sink *s = arg;
  uint64_t backoff = 0;
  for (;;) {
    int rc = ship_batch(s);
    pthread_mutex_lock(&s->mu);
    int stop = s->stop;
    uint64_t deadline = s->deadline_ms;
    pthread_mutex_unlock(&s->mu);
    if (stop && (rc <= 0 || (uint64_t)sw_time_mono_ms() >= deadline)) break;
    if (rc == 1) {
      backoff = 0;
      continue;
    }
    uint64_t wait = 1000;
    if (rc < 0) {
      backoff = backoff ? (backoff * 2 > 30000 ? 30000 : backoff * 2) : 200;
      wait = backoff;
      SW_LOG(SW_L_WARN, "sink", "%s: %s; retrying in %llu ms", s->name, sw_db_errmsg(s->db),
             (unsigned long long)wait);
    }
    pthread_mutex_lock(&s->mu);
    if (!s->notified && !s->stop) {
      struct timespec ts;
      clock_gettime(CLOCK_REALTIME, &ts);
      ts.tv_sec += (time_t)(wait / 1000);
      ts.tv_nsec += (long)(wait % 1000) * 1000000L;
      if (ts.tv_nsec >= 1000000000L) { ts.tv_sec++; ts.tv_nsec -= 1000000000L; }
      pthread_cond_timedwait(&s->cv, &s->mu, &ts);
    }
    s->notified = 0;
    pthread_mutex_unlock(&s->mu);
  }
  return NULL;
}

static void sink_free(struct sw_file_sink *s) {
  if (s->fd >= 0) close(s->fd);
  sw_db_close(s->db);
  sw_chunk_reader_free(&s->rd);
  sw_route_free(&s->route);
  sw_buf_free(&s->out);
  free(s->name);
  free(s->path);
  free(s);
}

int sw_file_sink_start(const struct sw_sink_conf *conf, const char *data_dir, struct sw_writer *w,
                       struct sw_file_sink **out, char *err, size_t errlen) {
  *out = NULL;
  struct sw_file_sink *s = calloc(1, sizeof *s);
  if (!s) return SW_ENOMEM;
  s->fd = -1;
  s->w = w;
  sw_chunk_reader_init(&s->rd, sw_writer_hot(w));
  sw_buf_init(&s->out, SIZE_MAX);
  s->name = strdup(conf->name);
  s->path = strdup(conf->path);
  int rc = SW_ENOMEM;
  if (!s->name || !s->path) goto fail;
  if ((rc = sw_route_init(&s->route, conf->match, conf->nmatch))) goto fail;
  if ((rc = sw_db_open(data_dir, 0, &s->db, err, errlen))) goto fail;
  if ((rc = sw_db_cursor_get(s->db, s->name, "file", &s->cur))) {
    snprintf(err, errlen, "sink %s: %s", s->name, sw_db_errmsg(s->db));
    goto fail;
  }
  if ((rc = open_output(s))) {
    snprintf(err, errlen, "sink %s: cannot open %s: %s", s->name, s->path, strerror(errno));
    goto fail;
  }
  /* Persist the reconciled length/inode before shipping anything new. */
  if ((rc = sw_db_cursor_set(s->db, s->name, &s->cur))) {
    snprintf(err, errlen, "sink %s: %s", s->name, sw_db_errmsg(s->db));
    goto fail;
  }
  pthread_mutex_init(&s->mu, NULL);
  pthread_cond_init(&s->cv, NULL);
  if (pthread_create(&s->thread, NULL, sink_main, s)) {
    rc = SW_EIO;
    goto fail;
  }
  pthread_setname_np(s->thread, "sw-file-sink"); /* for top -H and per-thread CPU figures */
  *out = s;
  return SW_OK;
fail:
  sink_free(s);
  return rc;
}

void sw_file_sink_notify(struct sw_file_sink *s) {
  pthread_mutex_lock(&s->mu);
  s->notified = 1;
  pthread_cond_signal(&s->cv);
  pthread_mutex_unlock(&s->mu);
}

void sw_file_sink_stop(struct sw_file_sink *s, uint64_t deadline_ms) {
  pthread_mutex_lock(&s->mu);
  s->stop = 1;
  s->deadline_ms = (uint64_t)sw_time_mono_ms() + deadline_ms;
  pthread_cond_signal(&s->cv);
  pthread_mutex_unlock(&s->mu);
  pthread_join(s->thread, NULL);
  pthread_mutex_destroy(&s->mu);
  pthread_cond_destroy(&s->cv);
  sink_free(s);
}
