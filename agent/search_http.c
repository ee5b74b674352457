/* search_http.c - GET /api/v1/search: the search runs on its own thread (with its own
 * read-only connection) and hands NDJSON to the loop through a uv_async, so neither the loop
 * nor ingest waits for it. Bounded: SW_SEARCH_HTTP_MAX_RUNNING searches at once (429 beyond),
 * at most `limit` results (default 1000, max 100000), SW_SEARCH_HTTP_TIMEOUT_MS of scanning,
 * and at most 1 MiB of output queued for a slow client (the scan waits for it to read).
 *
 * Lifetime of a job: the loop owns it; the thread only touches it under its mutex and ends by
 * setting `done` and sending the async while still holding the mutex, so the loop (which
 * takes the mutex in the async callback) frees it only after the thread is gone from it. */
#include "search_http.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../common/log.h"
#include "../common/timefmt.h"
#include "../search/output.h"
#include "../search/search.h"
#include "buffer.h"

#define QUEUE_MAX (1u << 20)
#define FLUSH_AT (64u << 10)

struct piece {
  struct piece *next;
  char *data;
  size_t len;
};

struct job {
  uv_async_t async; /* first: the close callback frees the job */
  struct sw_search_http *owner;
  struct sw_http_conn *conn; /* NULL once the client is gone */
  struct sw_search_query q;
  struct sw_search_opts opts;
  atomic_int cancel;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  struct piece *head, *tail;
  size_t queued; /* bytes handed over and not yet written */
  int done;
  struct sw_search_out out;
  struct sw_buf buf;
};

struct sw_search_http {
  uv_loop_t *loop;
  char *data_dir; /* a copy: a live reload replaces the config it came from */
  int running;
};

struct sw_search_http *sw_search_http_new(uv_loop_t *loop, const char *data_dir) {
  struct sw_search_http *s = calloc(1, sizeof *s);
  if (s && !(s->data_dir = strdup(data_dir))) {
    free(s);
    return NULL;
  }
  if (s) s->loop = loop;
  return s;
}

void sw_search_http_free(struct sw_search_http *s) {
  if (!s) return;
  free(s->data_dir);
  free(s);
}

static void bad_request(struct sw_http_conn *c, int status, const char *msg) {
  struct sw_buf b;
  sw_buf_init(&b, 8192);
  if (sw_buf_append(&b, "{\"error\":\"", 10) || sw_buf_put_json_str(&b, msg, strlen(msg), NULL) ||
      sw_buf_append(&b, "\"}\n", 3)) {
    sw_http_respond(c, status, "application/json", "{\"error\":\"bad request\"}\n", 24);
  } else {
    sw_http_respond(c, status, "application/json", b.data, b.len);
  }
  sw_buf_free(&b);
}

/* ---- the search thread ---- */

/* Hands the buffered output to the loop, waiting while a slow client has 1 MiB unread. */
static int hand_over(struct job *j, int last) {
  char *data = NULL;
  size_t len = j->buf.len;
  if (len) {
    data = malloc(len);
    if (!data) return 1;
    memcpy(data, j->buf.data, len);
    sw_buf_reset(&j->buf);
  }
  struct piece *p = data ? malloc(sizeof *p) : NULL;
  if (data && !p) {
    free(data);
    return 1;
  }
  pthread_mutex_lock(&j->mu);
  while (!last && j->queued >= QUEUE_MAX && !atomic_load(&j->cancel)) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += 1;
    pthread_cond_timedwait(&j->cv, &j->mu, &ts);
    if (j->opts.deadline_ms && sw_time_mono_ms() >= j->opts.deadline_ms) break;
  }
  if (p) {
    *p = (struct piece){.data = data, .len = len};
    if (j->tail) j->tail->next = p;
    else j->head = p;
    j->tail = p;
    j->queued += len;
  }
  if (last) j->done = 1;
  uv_async_send(&j->async); /* under the mutex: see the lifetime note above */
  pthread_mutex_unlock(&j->mu);
  return atomic_load(&j->cancel);
}

static int emit(void *arg, const struct sw_search_hit *h) {
  struct job *j = arg;
  if (sw_search_out_hit(&j->out, h, &j->buf)) return 1;
  return j->buf.len >= FLUSH_AT ? hand_over(j, 0) : atomic_load(&j->cancel);
}

static void *run(void *arg) {
  struct job *j = arg;
  struct sw_search_stats st;
  char err[512] = "";
  int rc = sw_search_run(&j->q, &j->opts, &st, err, sizeof err);
  /* The last line sums up, so a client can tell a complete answer from a cut one. */
  int fail = sw_buf_append(&j->buf, "{\"summary\":{", 12);
  if (!fail && rc) {
    fail = sw_buf_append(&j->buf, "\"error\":\"", 9) ||
           sw_buf_put_json_str(&j->buf, err[0] ? err : sw_strerror(rc), strlen(err[0] ? err : sw_strerror(rc)), NULL) ||
           sw_buf_append(&j->buf, "\",", 2);
  }
  if (!fail)
    fail = sw_buf_printf(&j->buf,
                         "\"matches\":%llu,\"limited\":%s,\"timed_out\":%s,\"chunks_scanned\":%llu,"
                         "\"bytes_scanned\":%llu,\"damaged_chunks\":%llu}}\n",
                         (unsigned long long)st.matches, st.limited ? "true" : "false",
                         st.timed_out ? "true" : "false", (unsigned long long)st.chunks_scanned,
                         (unsigned long long)st.raw_bytes, (unsigned long long)st.corrupt_chunks);
  (void)fail;
  hand_over(j, 1);
  return NULL;
}

/* ---- the loop side ---- */

static void job_closed(uv_handle_t *h) {
  struct job *j = (struct job *)h;
  for (struct piece *p = j->head, *n; p; p = n) {
    n = p->next;
    free(p->data);
    free(p);
  }
  sw_search_query_free(&j->q);
  sw_search_out_free(&j->out);
  sw_buf_free(&j->buf);
  pthread_mutex_destroy(&j->mu);
  pthread_cond_destroy(&j->cv);
  free(j);
}

static void on_written(void *arg, size_t len) {
  struct job *j = arg;
  pthread_mutex_lock(&j->mu);
  j->queued -= len <= j->queued ? len : j->queued;
  pthread_cond_signal(&j->cv);
  pthread_mutex_unlock(&j->mu);
}

static void on_conn_closed(void *arg) {
  struct job *j = arg;
  j->conn = NULL;
  atomic_store(&j->cancel, 1);
  pthread_mutex_lock(&j->mu);
  pthread_cond_signal(&j->cv);
  pthread_mutex_unlock(&j->mu);
}

static void on_async(uv_async_t *a) {
  struct job *j = (struct job *)a;
  pthread_mutex_lock(&j->mu);
  struct piece *list = j->head;
  j->head = j->tail = NULL;
  int done = j->done;
  pthread_mutex_unlock(&j->mu);
  for (struct piece *p = list, *n; p; p = n) {
    n = p->next;
    if (j->conn) {
      sw_http_stream_write(j->conn, p->data, p->len, on_written, j);
    } else {
      free(p->data);
      on_written(j, p->len);
    }
    free(p);
  }
  if (!done) return;
  /* The thread has left: the conn's done callbacks still point at j, so finish the answer
   * first; stream_end waits for the pending writes, whose callbacks run before this close. */
  if (j->conn) {
    struct sw_http_conn *c = j->conn;
    j->conn = NULL;
    sw_http_stream_end(c);
  }
  j->owner->running--;
  uv_close((uv_handle_t *)&j->async, job_closed);
}

void sw_search_http_handle(struct sw_http_conn *c, const struct sw_http_req *req, void *arg) {
  struct sw_search_http *s = arg;
  if (s->running >= SW_SEARCH_HTTP_MAX_RUNNING) {
    bad_request(c, 429, "too many searches running; retry later");
    return;
  }
  char key[64], val[4096], err[1024];
  const char *qs = req->query, *pattern = NULL;
  char *pat_copy = NULL;
  const char *since = NULL, *until = NULL;
  char since_buf[64] = "", until_buf[64] = "";
  unsigned long long limit = 1000;
  const char *labels[32], *streams[3];
  char *owned[40];
  size_t nlabels = 0, nstreams = 0, nowned = 0;
  int icase = 0, r;
  while ((r = sw_http_query_next(&qs, key, sizeof key, val, sizeof val)) == 1) {
    char *v = NULL;
    if (!strcmp(key, "q")) {
      free(pat_copy);
      pattern = pat_copy = strdup(val);
      if (!pat_copy) goto nomem;
    } else if (!strcmp(key, "since") || !strcmp(key, "until")) {
      char *dst = key[0] == 's' ? since_buf : until_buf;
      if (strlen(val) >= sizeof since_buf) {
        snprintf(err, sizeof err, "%s is too long", key);
        goto bad;
      }
      memcpy(dst, val, strlen(val) + 1);
      *(key[0] == 's' ? &since : &until) = dst;
    } else if (!strcmp(key, "limit")) {
      char *end;
      limit = strtoull(val, &end, 10);
      if (*end || !val[0] || limit == 0 || limit > SW_SEARCH_HTTP_MAX_LIMIT) {
        snprintf(err, sizeof err, "limit must be 1..%d", SW_SEARCH_HTTP_MAX_LIMIT);
        goto bad;
      }
    } else if (!strcmp(key, "label") || !strcmp(key, "stream")) {
      int is_label = key[0] == 'l';
      if ((is_label ? nlabels >= 32 : nstreams >= 3) || nowned >= 40) {
        snprintf(err, sizeof err, "too many %s parameters", key);
        goto bad;
      }
      if (!(v = strdup(val))) goto nomem;
      owned[nowned++] = v;
      if (is_label) labels[nlabels++] = v;
      else streams[nstreams++] = v;
    } else if (!strcmp(key, "case_insensitive")) {
      icase = !strcmp(val, "true") || !strcmp(val, "1");
    } else {
      snprintf(err, sizeof err, "unknown parameter \"%s\" (q, since, until, label, stream, limit, "
                                "case_insensitive)", key);
      goto bad;
    }
  }
  if (r < 0) {
    snprintf(err, sizeof err, "malformed query string");
    goto bad;
  }
  if (!pattern) {
    snprintf(err, sizeof err, "missing q (the regex; q= matches every record)");
    goto bad;
  }
  struct job *j = calloc(1, sizeof *j);
  if (!j) goto nomem;
  if (sw_search_query_init(&j->q, pattern, icase ? SW_SEARCH_ICASE : 0, err, sizeof err)) {
    free(j);
    goto bad;
  }
  int64_t now = sw_time_now_ns();
  int ok = 1;
  if (since && sw_search_parse_time(since, now, &j->q.since))
    ok = 0, snprintf(err, sizeof err, "since: want RFC 3339 or a duration like 15m, 1h, 2d");
  if (ok && until && sw_search_parse_time(until, now, &j->q.until))
    ok = 0, snprintf(err, sizeof err, "until: want RFC 3339 or a duration like 15m, 1h, 2d");
  for (size_t i = 0; ok && i < nlabels; i++)
    if (sw_search_query_label(&j->q, labels[i], err, sizeof err)) ok = 0;
  for (size_t i = 0; ok && i < nstreams; i++)
    if (sw_search_query_stream(&j->q, streams[i]))
      ok = 0, snprintf(err, sizeof err, "stream must be stdout, stderr or file");
  if (!ok) {
    sw_search_query_free(&j->q);
    free(j);
    goto bad;
  }
  j->owner = s;
  j->opts = (struct sw_search_opts){
      .data_dir = s->data_dir, .threads = 1, .limit = limit,
      .deadline_ms = sw_time_mono_ms() + SW_SEARCH_HTTP_TIMEOUT_MS,
      .cancel = &j->cancel, .emit = emit, .arg = j};
  sw_search_out_init(&j->out, SW_SEARCH_OUT_JSON);
  sw_buf_init(&j->buf, SIZE_MAX);
  pthread_mutex_init(&j->mu, NULL);
  pthread_cond_init(&j->cv, NULL);
  uv_async_init(s->loop, &j->async, on_async);
  j->conn = c;
  pthread_t tid;
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  if (sw_http_stream_start(c, "application/x-ndjson", on_conn_closed, j) ||
      pthread_create(&tid, &attr, run, j)) {
    pthread_attr_destroy(&attr);
    if (j->conn) sw_http_stream_end(j->conn);
    j->conn = NULL;
    uv_close((uv_handle_t *)&j->async, job_closed);
    goto out;
  }
  pthread_attr_destroy(&attr);
  s->running++;
  goto out;
nomem:
  snprintf(err, sizeof err, "out of memory");
bad:
  bad_request(c, 400, err);
out:
  free(pat_copy);
  for (size_t i = 0; i < nowned; i++) free(owned[i]);
}
