/* feed.h - a producer thread feeding one connection of the HTTP server: a streamed answer
 * (GET /api/v1/search) or a WebSocket (GET /loki/api/v1/tail). The thread fills f->buf and
 * hands it over with sw_feed_flush; the loop writes the pieces. Neither the loop nor the
 * producer waits for the other, and output is bounded: past SW_FEED_QUEUE_MAX bytes unwritten
 * the producer waits for the client (up to its deadline).
 *
 * Lifetime: reference-counted, the count touched on the loop thread only.
 *   +1 the producer thread: dropped by the loop once it sees `done`, which the thread sets
 *      (under the mutex) as its last act on the feed;
 *   +1 the uv_async handle: dropped in its close callback;
 *   +1 the connection while f->conn is set: dropped when the connection reports closed() or
 *      when the feed ends the answer;
 *   +1 per write queued on the connection: dropped in its done callback, which can run long
 *      after the producer ended and after the client went away.
 * At zero the owner's release() frees the containing job; the mutex and condition variable
 * are destroyed then, so no callback ever locks or signals a destroyed one.
 * States: RUNNING (thread producing; conn open or gone) -> DONE (thread gone, async closing,
 * answer ended) -> FREED (last reference dropped). */
#ifndef SW_HTTP_FEED_H
#define SW_HTTP_FEED_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <uv.h>

#include "../../common/buf.h"
#include "httpd.h"

#define SW_FEED_QUEUE_MAX (1u << 20)

struct sw_feed_piece;

struct sw_feed {
  uv_async_t async; /* first: the close callback gets back to the feed */
  int refs;         /* loop thread only */
  int thread_gone;  /* the loop has seen `done` */
  int ws;           /* a WebSocket (text frames), else a streamed answer */
  struct sw_http_conn *conn; /* NULL once the client is gone */
  atomic_int cancel;         /* set when the client is gone: the producer should stop */
  pthread_mutex_t mu;
  pthread_cond_t cv;
  struct sw_feed_piece *head, *tail;
  size_t queued;       /* bytes handed over and not yet written */
  int done;
  int64_t deadline_ms; /* CLOCK_MONOTONIC; 0: none. Past it the producer no longer waits for room */
  struct sw_buf buf;   /* the producer's output until sw_feed_flush */
  /* set by the owner before sw_feed_start: */
  void *(*run)(void *feed);            /* the producer thread (gets the feed) */
  void (*finished)(struct sw_feed *f); /* loop thread: the producer is gone (may be NULL) */
  void (*release)(struct sw_feed *f);  /* last reference: frees the containing job */
  /* A long-lived feed (a tail) must not hold uv_run while its client is connected (a reload
   * waits for the loop to wind down); once the client is gone it holds the loop again until
   * its thread has stopped (at most one follow poll), so the agent never frees what the
   * thread reads. */
  int unref_while_open;
};

/* Starts the answer on c from within its handler (a 200 stream of content_type, or, with
 * req, the WebSocket handshake: a bad one is answered 400 here) and the producer thread.
 * Returns SW_OK, or an error after which f is released (release() has run or will run once
 * the loop closes its handle) and c needs nothing more. */
int sw_feed_start(struct sw_feed *f, uv_loop_t *loop, struct sw_http_conn *c, const char *content_type,
                  const struct sw_http_req *ws_req) SW_MUST_CHECK;

/* Producer thread: hands f->buf over (as one piece, a frame on a WebSocket), waiting while
 * SW_FEED_QUEUE_MAX bytes wait for a slow client. last: the producer's final call (it touches
 * nothing of f afterwards). Returns non-zero when the client is gone (stop producing). */
int sw_feed_flush(struct sw_feed *f, int last);

#endif
