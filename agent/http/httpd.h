/* httpd.h - a small HTTP/1.1 server on the libuv loop for /health, /ready, /metrics, /-/reload,
 * search and the Loki-compatible query API (form POSTs, deferred answers, WebSocket tail).
 *
 * One request per connection (responses carry "Connection: close"), so no connection outlives
 * its answer. Limits fixed at start, so a misbehaving client cannot stall the loop or grow
 * memory:
 *  - at most SW_HTTPD_MAX_CONNS connections, plus SW_HTTPD_PROBE_CONNS that serve only the
 *    probe routes (/health), so idle sockets filling the server cannot fail a liveness probe.
 *    Over the cap, the oldest connection that has sent no complete head for
 *    SW_HTTPD_EVICT_AFTER_MS is closed (503) to make room; else the newcomer takes a probe
 *    slot (a full set evicts its oldest idle connection); else it is answered 503 and closed;
 *  - a request head of at most SW_HTTPD_MAX_HEAD bytes (431), complete (with its body, if any)
 *    within SW_HTTPD_HEAD_TIMEOUT_MS (408: a client sending one byte a second is cut off),
 *    parsed strictly by http/head.h (400 at once for anything malformed);
 *  - request bodies only on form routes (sw_httpd_route_form): a POST of at most
 *    SW_HTTPD_MAX_BODY bytes with Content-Length (413 beyond, 411 for chunked) and type
 *    application/x-www-form-urlencoded (415 otherwise); any other body is 413;
 *  - a streamed answer or WebSocket whose client reads nothing for SW_HTTPD_STALL_TIMEOUT_MS is
 *    closed; so is a deferred answer not read within that time once it is sent.
 * Connection states:
 *   HEAD -(head complete)-> BODY (form POST with a body) -(body complete)-> HANDLER
 *   HEAD -(head complete, no body)-> HANDLER
 *   HANDLER -(sw_http_respond)-> ANSWER -(written)-> CLOSING
 *   HANDLER -(sw_http_stream_start)-> STREAMING -(stream_end, writes done)-> CLOSING
 *   HANDLER -(sw_http_defer)-> DEFERRED -(sw_http_respond or stream_start later)-> as above
 *   HANDLER -(sw_http_ws_accept)-> WEBSOCKET -(close frame either way, writes done)-> CLOSING
 *   HEAD, BODY -(evicted over the cap, head timeout, bad head or body)-> CLOSING (after any answer)
 *   STREAMING, DEFERRED, WEBSOCKET -(client gone, write error, stall, server stopping)->
 *     CLOSING (closed() tells the producer)
 * Loop thread only. The listening handle and the connections are unref'd: they are served
 * while the loop runs but do not keep uv_run going by themselves.
 */
#ifndef SW_HTTPD_H
#define SW_HTTPD_H

#include <stddef.h>
#include <uv.h>

#include "../../common/buf.h"
#include "../../common/error.h"
#include "head.h"

#define SW_HTTPD_MAX_CONNS 128
#define SW_HTTPD_MAX_HEAD 8192
#define SW_HTTPD_HEAD_TIMEOUT_MS 5000
#define SW_HTTPD_PROBE_CONNS 16
#define SW_HTTPD_EVICT_AFTER_MS 1000
#define SW_HTTPD_STALL_TIMEOUT_MS 10000
#define SW_HTTPD_MAX_BODY 65536 /* bytes of a form POST's body */

struct sw_httpd;
struct sw_http_conn;

/* A request as its handler sees it. Every string is NUL-terminated and valid only during the
 * handler call (a deferred answer must copy what it needs). */
struct sw_http_req {
  const char *method; /* "GET", "HEAD" (served by GET routes) or "POST" */
  const char *path;   /* without the query */
  const char *query;  /* after '?', "" if none */
  const char *body;   /* a POST's body on a form route ("" when it has none; may be parsed with
                       * sw_http_query_next); NULL otherwise. Holds no NUL byte (400). */
  size_t body_len;
  const char *head;   /* the raw request head (request line + headers, with its blank line),
                       * for sw_http_req_header; not NUL-terminated */
  size_t head_len;
};

/* A handler answers with sw_http_respond (once, during the call), starts a stream, defers its
 * answer or accepts a WebSocket; one that does none of these is answered 503. */
typedef void (*sw_http_handler)(struct sw_http_conn *c, const struct sw_http_req *req, void *arg);

/* First header `name` (case-insensitive), value with surrounding blanks trimmed; NULL if absent.
 * The value points into req->head and is NOT NUL-terminated: it is *len bytes (len may be NULL
 * only if the caller needs no more than presence). Same lifetime as req. (Inline: sinks/http.h
 * already exports a function of this name for the sink client's requests, so this one must not
 * be an external symbol; a file cannot include both headers.) */
static inline const char *sw_http_req_header(const struct sw_http_req *req, const char *name,
                                             size_t *len) {
  size_t n = 0;
  const char *v = req->head ? sw_http_head_find(req->head, req->head_len, name, &n) : NULL;
  if (len) *len = n;
  return v;
}

/* listen: "HOST:PORT" ("127.0.0.1:2020", "[::1]:2020"). err gets a message on failure. */
int sw_httpd_start(uv_loop_t *loop, const char *listen, struct sw_httpd **out, char *err,
                   size_t errlen) SW_MUST_CHECK;
/* Routes exact paths; GET only (HEAD is answered like GET without a body). Max 40 routes, of
 * all kinds together; a path (or prefix) has at most 63 bytes. */
int sw_httpd_route(struct sw_httpd *h, const char *path, sw_http_handler fn, void *arg) SW_MUST_CHECK;
/* Same for method "GET" or "POST" (a POST must carry no body: Content-Length 0 or none). A known
 * path asked with another method is answered 405. */
int sw_httpd_route_method(struct sw_httpd *h, const char *method, const char *path,
                          sw_http_handler fn, void *arg) SW_MUST_CHECK;
/* Like sw_httpd_route, and also served on the probe slots (liveness: /health). */
int sw_httpd_route_probe(struct sw_httpd *h, const char *path, sw_http_handler fn,
                         void *arg) SW_MUST_CHECK;
/* Routes every path that starts with prefix (e.g. "/loki/api/v1/label/"), GET (and HEAD). Exact
 * routes win over prefix routes (a path with an exact route is never given to a prefix route,
 * even for a method only the prefix route serves); among prefix routes the longest wins. The
 * handler sees the whole path in req->path. */
int sw_httpd_route_prefix(struct sw_httpd *h, const char *prefix, sw_http_handler fn,
                          void *arg) SW_MUST_CHECK;
/* GET (and HEAD) and POST on path. A POST may carry an application/x-www-form-urlencoded body
 * (parameters after the media type are allowed: "; charset=utf-8") of up to SW_HTTPD_MAX_BODY
 * bytes with Content-Length: 413 beyond, 415 for another or no content type, 411 for chunked
 * transfer encoding, 400 for a NUL byte in it. The body is read fully (within the head
 * timeout) before the handler runs, and given to it in req->body; a POST without a body gets
 * req->body "" (and the handler reads any parameters from req->query too, as it likes). */
int sw_httpd_route_form(struct sw_httpd *h, const char *path, sw_http_handler fn,
                        void *arg) SW_MUST_CHECK;
/* Copies body; sends the response and closes the connection. For a HEAD request only the
 * head goes out (Content-Length still says len), deferred or not. Does nothing if c already
 * answered. */
void sw_http_respond(struct sw_http_conn *c, int status, const char *content_type,
                     const char *body, size_t len);

/* Deferred answers: called during the handler, tells the server the handler will answer later
 * with sw_http_respond (or sw_http_stream_start), from the loop thread, after returning. The
 * request's strings (req->path, query, body, head, header values) are NOT valid after the
 * handler returns: copy what the answer needs first. The head timeout stops for the request;
 * the server keeps reading the socket, drops whatever the client sends, and takes EOF or an
 * error as the client gone (a client that half-closes after its request is taken as gone too).
 * closed(arg) runs once if the connection goes away before the answer (client gone, server
 * stopping: sw_httpd_stop calls it for every deferred request); from then on c must not be
 * used, and the answer must not be sent. It does not run once sw_http_respond or
 * sw_http_stream_start has been called (that stream's own closed() takes over). An answer
 * has SW_HTTPD_STALL_TIMEOUT_MS to be written. SW_EINVAL (nothing changed, closed() never
 * runs) when not called from the handler or after c answered. */
int sw_http_defer(struct sw_http_conn *c, void (*closed)(void *arg), void *arg) SW_MUST_CHECK;
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
 * once it is written or dropped; on failure (SW_EIO: the connection is closing; closed() may
 * have run from within this call) done is not called. SW_EINVAL on a WebSocket connection. */
int sw_http_stream_write(struct sw_http_conn *c, char *data, size_t len,
                         void (*done)(void *arg, size_t len), void *arg) SW_MUST_CHECK;
/* The producer is done with c: closes the answer once every write is done. closed() is not
 * called after this; pending writes still get their done callbacks. */
void sw_http_stream_end(struct sw_http_conn *c);

/* WebSocket (RFC 6455) server side, called from a GET route's handler. Checks the handshake:
 * method GET (not HEAD), Upgrade has the token "websocket", Connection has the token
 * "upgrade" (token lists, case-insensitive), Sec-WebSocket-Version is 13, Sec-WebSocket-Key
 * is 24 base64 characters (16 bytes). A bad one is answered 400 here and SW_EINVAL returned
 * (closed() never runs); SW_EINVAL without an answer if not called from the handler or after
 * c answered. On success "101 Switching Protocols" with Sec-WebSocket-Accept is queued (no
 * subprotocol or extension is ever chosen) and SW_OK returned; SW_EIO/SW_ENOMEM if that
 * fails (c is closing, closed() does not run). After SW_OK, closed(arg) runs once when the
 * connection goes: client close frame (answered with a close frame echoing its code), EOF,
 * read or write error, a client frame the server refuses (unmasked, reserved bits, unknown
 * opcode: close 1002; over 64 KiB: 1009), a stall (SW_HTTPD_STALL_TIMEOUT_MS without a write
 * completing while writes are pending) or the server stopping, unless sw_http_ws_close was
 * called first. The server reads client frames itself: ping gets pong, text/binary/
 * continuation data is dropped. There is no idle timeout: a tail producer that wants one sends
 * data (or closes) on its own schedule. As with streams, every done callback of
 * sw_http_ws_send runs exactly once, possibly after closed(). */
int sw_http_ws_accept(struct sw_http_conn *c, const struct sw_http_req *req,
                      void (*closed)(void *arg), void *arg) SW_MUST_CHECK;
/* Sends data as one text frame (final, unmasked: server side). Takes ownership of data
 * (malloc'd, freed in every case). On success done(arg, len) runs exactly once when it is
 * written or dropped (possibly after closed()); on failure done is not called: SW_EINVAL if c
 * is not a WebSocket, SW_EIO if it is closing (closed() may have run from within this call).
 * Bounded output is the producer's job: count bytes between send and done. */
int sw_http_ws_send(struct sw_http_conn *c, char *data, size_t len,
                    void (*done)(void *arg, size_t len), void *arg) SW_MUST_CHECK;
/* The producer is done with c: sends a close frame (1000) after the pending sends and closes
 * the connection once it is written. closed() is not called after this; pending sends still
 * get their done callbacks. */
void sw_http_ws_close(struct sw_http_conn *c);

/* Next "key=value" of a query string, percent- and '+'-decoded into key/val (NUL-terminated).
 * Returns 1 and advances *query, 0 at the end, -1 on bad escapes, NUL bytes or overlong parts. */
int sw_http_query_next(const char **query, char *key, size_t klen, char *val, size_t vlen);

/* Port actually bound (useful with port 0). */
int sw_httpd_port(const struct sw_httpd *h);
/* Closes the listener and every connection; frees itself once the handles are closed. */
void sw_httpd_stop(struct sw_httpd *h);

#endif
