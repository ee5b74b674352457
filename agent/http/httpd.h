/* httpd.h - a small HTTP/1.1 server on the libuv loop for /health, /ready, /metrics, /-/reload.
 *
 * One request per connection (responses carry "Connection: close"), so no connection outlives
 * its answer. Limits fixed at start, so a misbehaving client cannot stall the loop or grow
 * memory:
 *  - at most SW_HTTPD_MAX_CONNS connections, plus SW_HTTPD_PROBE_CONNS that serve only the
 *    probe routes (/health), so idle sockets filling the server cannot fail a liveness probe.
 *    Over the cap, the oldest connection that has sent no complete head for
 *    SW_HTTPD_EVICT_AFTER_MS is closed (503) to make room; else the newcomer takes a probe
 *    slot (a full set evicts its oldest idle connection); else it is answered 503 and closed;
 *  - a request head of at most SW_HTTPD_MAX_HEAD bytes (431), complete within
 *    SW_HTTPD_HEAD_TIMEOUT_MS (408: a client sending one byte a second is cut off), parsed
 *    strictly by http/head.h (400 at once for anything malformed); no request bodies (413);
 *  - a streamed answer whose client reads nothing for SW_HTTPD_STALL_TIMEOUT_MS is closed.
 * Connection states:
 *   READING -(head complete: handler)-> WRITING -> CLOSING
 *   READING -(handler starts a stream)-> STREAMING -(stream_end, writes done)-> CLOSING
 *   READING -(evicted over the cap, head timeout, bad head)-> CLOSING (after any answer)
 *   STREAMING -(client gone, write error, stall)-> CLOSING (closed() tells the producer)
 * Loop thread only. The listening handle and the connections are unref'd: they are served
 * while the loop runs but do not keep uv_run going by themselves.
 */
#ifndef SW_HTTPD_H
#define SW_HTTPD_H

#include <stddef.h>
#include <uv.h>

#include "../../common/buf.h"
#include "../../common/error.h"

#define SW_HTTPD_MAX_CONNS 128
#define SW_HTTPD_MAX_HEAD 8192
#define SW_HTTPD_HEAD_TIMEOUT_MS 5000
#define SW_HTTPD_PROBE_CONNS 16
#define SW_HTTPD_EVICT_AFTER_MS 1000
#define SW_HTTPD_STALL_TIMEOUT_MS 10000

struct sw_httpd;
struct sw_http_conn;

struct sw_http_req {
  const char *method; /* NUL-terminated, valid during the handler call */
  const char *path;   /* without the query */
  const char *query;  /* after '?', "" if none */
};

/* A handler answers with sw_http_respond (exactly once, during the call). */
typedef void (*sw_http_handler)(struct sw_http_conn *c, const struct sw_http_req *req, void *arg);

/* listen: "HOST:PORT" ("127.0.0.1:2020", "[::1]:2020"). err gets a message on failure. */
int sw_httpd_start(uv_loop_t *loop, const char *listen, struct sw_httpd **out, char *err,
                   size_t errlen) SW_MUST_CHECK;
/* Routes exact paths; GET only (HEAD is answered like GET without a body). Max 16 routes. */
int sw_httpd_route(struct sw_httpd *h, const char *path, sw_http_handler fn, void *arg) SW_MUST_CHECK;
/* Same for method "GET" or "POST" (a POST must carry no body: Content-Length 0 or none). A known
 * path asked with another method is answered 405. */
int sw_httpd_route_method(struct sw_httpd *h, const char *method, const char *path,
                          sw_http_handler fn, void *arg) SW_MUST_CHECK;
/* Like sw_httpd_route, and also served on the probe slots (liveness: /health). */
int sw_httpd_route_probe(struct sw_httpd *h, const char *path, sw_http_handler fn,
                         void *arg) SW_MUST_CHECK;
/* Copies body; sends the response and closes the connection. */
void sw_http_respond(struct sw_http_conn *c, int status, const char *content_type,
                     const char *body, size_t len);
/* Streaming answers (search): instead of sw_http_respond, a handler may start a 200 answer
 * without Content-Length (the body ends when the connection closes) and keep writing from the
 * loop thread after the handler returned. `closed(arg)` runs once if the connection goes away
 * before sw_http_stream_end (client gone, write error, stalled client, server stopping): from
 * then on the connection must not be used. It does not run if this call fails (the
 * connection is then closing: do not use it either). Loop thread only.
 *
 * Lifetimes: every done(arg, len) of sw_http_stream_write runs exactly once, possibly AFTER
 * closed(arg) and after sw_http_stream_end (a close cancels pending writes, and their
 * callbacks come when the socket is destroyed). Whatever `arg` points at must therefore live
 * until the last done callback has run, not merely until closed or the end: hold a reference
 * per pending write. */
int sw_http_stream_start(struct sw_http_conn *c, const char *content_type,
                         void (*closed)(void *arg), void *arg) SW_MUST_CHECK;
/* Takes ownership of data (malloc'd, freed in every case). On success done(arg, len) runs
 * once it is written or dropped; on failure (SW_EIO: the connection is closing) done is not
 * called. */
int sw_http_stream_write(struct sw_http_conn *c, char *data, size_t len,
                         void (*done)(void *arg, size_t len), void *arg) SW_MUST_CHECK;
/* The producer is done with c: closes the answer once every write is done. closed() is not
 * called after this; pending writes still get their done callbacks. */
void sw_http_stream_end(struct sw_http_conn *c);

/* Next "key=value" of a query string, percent- and '+'-decoded into key/val (NUL-terminated).
 * Returns 1 and advances *query, 0 at the end, -1 on bad escapes, NUL bytes or overlong parts. */
int sw_http_query_next(const char **query, char *key, size_t klen, char *val, size_t vlen);

/* Port actually bound (useful with port 0). */
int sw_httpd_port(const struct sw_httpd *h);
/* Closes the listener and every connection; frees itself once the handles are closed. */
void sw_httpd_stop(struct sw_httpd *h);

#endif
