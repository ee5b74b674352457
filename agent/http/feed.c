/* feed.c - a producer thread feeding a stream or a WebSocket (see feed.h for the lifetimes). */
#include "feed.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../../common/log.h"
#include "../../common/timefmt.h"

struct sw_feed_piece {
  struct sw_feed_piece *next;
  char *data;
  size_t len;
};

int sw_feed_flush(struct sw_feed *f, int last) {
  char *data = NULL;
  size_t len = f->buf.len;
  if (len) {
    data = malloc(len);
    if (!data) return 1;
    memcpy(data, f->buf.data, len);
    sw_buf_reset(&f->buf);
  }
  struct sw_feed_piece *p = data ? malloc(sizeof *p) : NULL;
  if (data && !p) {
    free(data);
    return 1;
  }
  pthread_mutex_lock(&f->mu);
  /* Past the deadline nothing waits: the producer stops at its next check, so at most one
   * more piece is queued. */
  while (!last && f->queued >= SW_FEED_QUEUE_MAX && !atomic_load(&f->cancel) &&
         !(f->deadline_ms && sw_time_mono_ms() >= f->deadline_ms)) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += 1;
    pthread_cond_timedwait(&f->cv, &f->mu, &ts);
  }
  if (p) {
    *p = (struct sw_feed_piece){.data = data, .len = len};
    if (f->tail) f->tail->next = p;
    else f->head = p;
    f->tail = p;
    f->queued += len;
  }
  if (last) f->done = 1;
  /* Under the mutex: once `done` is seen the loop drops the thread's reference, and the
   * thread touches nothing of the feed after this unlock. */
  uv_async_send(&f->async);
  int cancelled = atomic_load(&f->cancel); /* read before the unlock, for the same reason */
  pthread_mutex_unlock(&f->mu);
  return cancelled;
}

static void unref(struct sw_feed *f) {
  if (--f->refs > 0) return;
  for (struct sw_feed_piece *p = f->head, *n; p; p = n) {
    n = p->next;
    free(p->data);
    free(p);
  }
  sw_buf_free(&f->buf);
  pthread_mutex_destroy(&f->mu);
  pthread_cond_destroy(&f->cv);
  f->release(f);
}

static void on_closed_handle(uv_handle_t *h) { unref((struct sw_feed *)h); }

/* len bytes left the queue (written or dropped): wake a producer waiting for room. */
static void dequeued(struct sw_feed *f, size_t len) {
  pthread_mutex_lock(&f->mu);
  f->queued -= len <= f->queued ? len : f->queued;
  pthread_cond_signal(&f->cv);
  pthread_mutex_unlock(&f->mu);
}

static void on_written(void *arg, size_t len) {
  struct sw_feed *f = arg;
  dequeued(f, len);
  unref(f); /* the write's reference */
}

static void on_conn_closed(void *arg) {
  struct sw_feed *f = arg;
  f->conn = NULL;
  if (f->unref_while_open) uv_ref((uv_handle_t *)&f->async);
  atomic_store(&f->cancel, 1);
  dequeued(f, 0); /* wakes the producer so it sees the cancel */
  unref(f);       /* the connection's reference */
}

/* Queues one piece on the connection (its data is then the connection's), or drops it. */
static void deliver(struct sw_feed *f, struct sw_feed_piece *p) {
  if (f->conn) {
    f->refs++; /* the write's, dropped in on_written */
    int rc = f->ws ? sw_http_ws_send(f->conn, p->data, p->len, on_written, f)
                   : sw_http_stream_write(f->conn, p->data, p->len, on_written, f);
    if (rc == SW_OK) return;
    f->refs--; /* refused: no callback will come (and closed() has run) */
  } else {
    free(p->data);
  }
  dequeued(f, p->len);
}

/* Ends the answer: the feed lets go of the connection (pending writes keep their refs). */
static void end_answer(struct sw_feed *f) {
  if (!f->conn) return;
  struct sw_http_conn *c = f->conn;
  f->conn = NULL;
  if (f->ws) sw_http_ws_close(c);
  else sw_http_stream_end(c);
  unref(f); /* the connection's reference */
}

static void on_async(uv_async_t *a) {
  struct sw_feed *f = (struct sw_feed *)a;
  pthread_mutex_lock(&f->mu);
  struct sw_feed_piece *list = f->head;
  f->head = f->tail = NULL;
  int done = f->done;
  pthread_mutex_unlock(&f->mu);
  /* The async holds a reference, so f outlives this loop even if deliver drops others. */
  for (struct sw_feed_piece *p = list, *n; p; p = n) {
    n = p->next;
    deliver(f, p);
    free(p);
  }
  if (!done || f->thread_gone) return;
  f->thread_gone = 1;
  end_answer(f);
  if (f->finished) f->finished(f);
  uv_close((uv_handle_t *)&f->async, on_closed_handle);
  unref(f); /* the thread's reference: it no longer touches f */
}

int sw_feed_start(struct sw_feed *f, uv_loop_t *loop, struct sw_http_conn *c, const char *content_type,
                  const struct sw_http_req *ws_req) {
  sw_buf_init(&f->buf, SIZE_MAX);
  pthread_mutex_init(&f->mu, NULL);
  pthread_cond_init(&f->cv, NULL);
  uv_async_init(loop, &f->async, on_async);
  if (f->unref_while_open) uv_unref((uv_handle_t *)&f->async);
  f->refs = 1; /* the async handle's */
  f->ws = ws_req != NULL;
  int rc = ws_req ? sw_http_ws_accept(c, ws_req, on_conn_closed, f)
                  : sw_http_stream_start(c, content_type, on_conn_closed, f);
  if (rc) { /* c is closing or answered */
    uv_close((uv_handle_t *)&f->async, on_closed_handle);
    return rc;
  }
  f->conn = c;
  f->refs++; /* the connection's */
  pthread_t tid;
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  f->refs++; /* the thread's, taken before it can run */
  rc = pthread_create(&tid, &attr, f->run, f);
  pthread_attr_destroy(&attr);
  if (rc) {
    SW_LOG(SW_L_ERROR, "http", "cannot start a thread: %s", strerror(rc));
    f->refs--;
    end_answer(f);
    uv_close((uv_handle_t *)&f->async, on_closed_handle);
    return SW_EAGAIN;
  }
  return SW_OK;
}
