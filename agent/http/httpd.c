/* httpd.c - the control server (see http/httpd.h for its limits and connection states).
 *
 * Connection slots: SW_HTTPD_MAX_CONNS regular ones, plus SW_HTTPD_PROBE_CONNS that serve only
 * routes added with sw_httpd_route_probe (/health). A new connection over the cap first evicts
 * the oldest regular connection that has waited SW_HTTPD_EVICT_AFTER_MS without completing its
 * request head (idle sockets must not take liveness down); if none has, it gets a probe slot
 * (the oldest idle probe connection is evicted when those are full), and only if that fails
 * too it is answered 503. A connection that sends its request at once is never evicted.
 *
 * Reading: one pair of read callbacks serves every phase (libuv refuses a second read_start),
 * and c->head is the one input buffer: the head, then (WebSocket) client frames, then bytes
 * that are dropped (deferred, draining). A form body goes to its own buffer (c->body, freed
 * after the handler). Invariants: a connection in PH_HEAD has not answered and is the only
 * kind that can be evicted; c->closed is set only while a producer (stream, deferred answer,
 * WebSocket) may still use c, and is cleared before it is called or once the producer has
 * answered or ended, so it runs at most once; writes of streams and WebSockets share one
 * queue (struct stream_write), each done callback running once when the write completes or
 * is cancelled by the close.
 */
#include "httpd.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../../common/log.h"
#include "../../common/text.h"
#include "head.h"
#include "httpd_int.h"

static void maybe_free(struct sw_httpd *h) {
  if (h->stopping && h->server_closed && h->live == 0) free(h);
}

static void conn_freed(uv_handle_t *hd) {
  struct sw_http_conn *c = hd->data;
  if (--c->handles_open > 0) return;
  struct sw_httpd *h = c->h;
  sw_buf_free(&c->out);
  free(c->body);
  free(c);
  h->live--;
  maybe_free(h);
}

static void conn_close_timer(uv_timer_t *t) { sw__httpd_conn_close(t->data); }

void sw__httpd_conn_close(struct sw_http_conn *c) {
  if (c->closing) return;
  c->closing = 1;
  /* The producer (stream, deferred answer, WebSocket) must stop using c now. Its pending
   * writes are cancelled when the handle closes and their done callbacks run after this one. */
  void (*closed)(void *) = c->closed;
  c->closed = NULL;
  if (closed) closed(c->closed_arg);
  struct sw_httpd *h = c->h;
  if (c->probe_only) h->nprobe--;
  if (c->prev) c->prev->next = c->next;
  else h->conns = c->next;
  if (c->next) c->next->prev = c->prev;
  h->nconns--;
  uv_timer_stop(&c->timer);
  uv_close((uv_handle_t *)&c->timer, conn_freed);
  uv_close((uv_handle_t *)&c->tcp, conn_freed);
}

static void on_shutdown(uv_shutdown_t *req, int status) {
  (void)req;
  (void)status;
}

static void on_alloc(uv_handle_t *hd, size_t suggested, uv_buf_t *buf);
static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf);

static void on_written(uv_write_t *req, int status) {
  struct sw_http_conn *c = req->data;
  if (status < 0 || !c->drain) {
    sw__httpd_conn_close(c);
    return;
  }
  /* Closing with unread request bytes makes the kernel reset the connection, and the client may
   * lose the answer: send FIN, read (and drop) what is left for a moment, then close. (A
   * WebSocket is still reading: restart so that libuv takes the read.) */
  uv_read_stop((uv_stream_t *)&c->tcp);
  c->phase = PH_DRAIN;
  if (uv_shutdown(&c->sreq, (uv_stream_t *)&c->tcp, on_shutdown) ||
      uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read)) {
    sw__httpd_conn_close(c);
    return;
  }
  uv_timer_start(&c->timer, conn_close_timer, 1000, 0);
}

static void on_timeout(uv_timer_t *t);

static void respond(struct sw_http_conn *c, int status, const char *ctype, const char *body,
                    size_t len, int head_only) {
  if (c->responded || c->closing) return;
  c->responded = 1;
  c->closed = NULL; /* answered: a deferring producer is done with c */
  if (c->phase == PH_DEFERRED) /* its head timer was stopped: bound the write instead */
    uv_timer_start(&c->timer, on_timeout, SW_HTTPD_STALL_TIMEOUT_MS, 0);
  c->phase = PH_ANSWER;
  uv_read_stop((uv_stream_t *)&c->tcp);
  sw_buf_init(&c->out, (size_t)64 << 20);
  int rc = sw_buf_printf(&c->out,
                         "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                         "Cache-Control: no-store\r\nConnection: close\r\n\r\n",
                         status, sw_http_reason(status), ctype, len);
  if (!rc && !head_only) rc = sw_buf_append(&c->out, body, len);
  if (rc) {
    sw__httpd_conn_close(c);
    return;
  }
  uv_buf_t b = uv_buf_init(c->out.data, (unsigned)c->out.len);
  c->wreq.data = c;
  if (uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &b, 1, on_written)) sw__httpd_conn_close(c);
}

void sw__httpd_stream_finish(struct sw_http_conn *c) {
  if (c->ending && c->writes == 0 && !c->closing) {
    c->wreq.data = c;
    on_written(&c->wreq, 0);
  }
}

static void stall_timeout(uv_timer_t *t) {
  struct sw_http_conn *c = t->data;
  SW_LOG(SW_L_DEBUG, "http", "closing a streamed answer: the client read nothing for %d ms",
         SW_HTTPD_STALL_TIMEOUT_MS);
  sw__httpd_conn_close(c);
}

/* While writes are pending, a write must complete every SW_HTTPD_STALL_TIMEOUT_MS: a client
 * that stops reading would otherwise hold its slot and the queued output for ever. */
static void stream_progress(struct sw_http_conn *c) {
  if (c->closing) return;
  if (c->writes > 0)
    uv_timer_start(&c->timer, stall_timeout, SW_HTTPD_STALL_TIMEOUT_MS, 0);
  else
    uv_timer_stop(&c->timer);
}

static void on_stream_written(uv_write_t *req, int status) {
  struct stream_write *w = (struct stream_write *)req;
  struct sw_http_conn *c = w->c;
  c->writes--;
  free(w->data);
  if (w->done) w->done(w->arg, w->len);
  free(w);
  if (status < 0) {
    sw__httpd_conn_close(c);
    return;
  }
  stream_progress(c);
  sw__httpd_stream_finish(c);
}

/* Queues hdr[0..hlen) (copied, hlen <= 16) then data[0..len) (owned, freed in every case).
 * On failure the connection is closed and done is not called. */
int sw__httpd_queue_write(struct sw_http_conn *c, const void *hdr, size_t hlen, char *data,
                       size_t len, void (*done)(void *arg, size_t len), void *arg) {
  struct stream_write *w = c->closing || hlen > sizeof w->hdr ? NULL : malloc(sizeof *w);
  if (!w) {
    free(data);
    if (!c->closing) sw__httpd_conn_close(c);
    return SW_EIO;
  }
  *w = (struct stream_write){.c = c, .hlen = hlen, .data = data, .len = len, .done = done,
                             .arg = arg};
  if (hlen) memcpy(w->hdr, hdr, hlen);
  uv_buf_t b[2];
  unsigned nb = 0;
  if (hlen) b[nb++] = uv_buf_init((char *)w->hdr, (unsigned)hlen);
  if (len) b[nb++] = uv_buf_init(data, (unsigned)len);
  if (uv_write(&w->req, (uv_stream_t *)&c->tcp, b, nb, on_stream_written)) {
    free(data);
    free(w);
    sw__httpd_conn_close(c);
    return SW_EIO;
  }
  if (c->writes++ == 0) stream_progress(c);
  return SW_OK;
}

int sw_http_stream_start(struct sw_http_conn *c, const char *content_type,
                         void (*closed)(void *arg), void *arg) {
  if (c->responded || c->closing) return SW_EINVAL;
  c->responded = c->streaming = 1;
  c->closed = NULL; /* a deferring producer hands over to this stream's closed() */
  c->phase = PH_ANSWER;
  uv_read_stop((uv_stream_t *)&c->tcp);
  uv_timer_stop(&c->timer); /* from now on it watches write progress (see stream_progress) */
  char head[256];
  int n = snprintf(head, sizeof head,
                   "HTTP/1.1 200 OK\r\nContent-Type: %s\r\nCache-Control: no-store\r\n"
                   "Connection: close\r\n\r\n", content_type);
  return sw__httpd_send_head(c, head, (size_t)n, closed, arg);
}

int sw__httpd_send_head(struct sw_http_conn *c, const char *head, size_t n, void (*closed)(void *arg),
                        void *arg) {
  char *copy = malloc(n);
  if (!copy) {
    sw__httpd_conn_close(c);
    return SW_ENOMEM;
  }
  memcpy(copy, head, n);
  if (sw__httpd_queue_write(c, NULL, 0, copy, n, NULL, NULL)) return SW_EIO; /* c is closing */
  c->closed = closed; /* only now: a call that fails does not call back */
  c->closed_arg = arg;
  return SW_OK;
}

int sw_http_stream_write(struct sw_http_conn *c, char *data, size_t len,
                         void (*done)(void *arg, size_t len), void *arg) {
  if (c->ws) { /* raw bytes would break the framing */
    free(data);
    return SW_EINVAL;
  }
  return sw__httpd_queue_write(c, NULL, 0, data, len, done, arg);
}

void sw_http_stream_end(struct sw_http_conn *c) {
  c->ending = 1;
  c->closed = NULL; /* the producer is done with c: a later close is not its business */
  sw__httpd_stream_finish(c);
}

int sw_http_query_next(const char **query, char *key, size_t klen, char *val, size_t vlen) {
  const char *p = *query;
  while (*p == '&') p++;
  if (!*p) return 0;
  char *outs[2] = {key, val};
  size_t lens[2] = {klen, vlen};
  for (int part = 0; part < 2; part++) {
    size_t n = 0;
    int over = 0;
    while (*p && *p != '&' && (part == 1 || *p != '=')) {
      int ch = (unsigned char)*p++;
      if (ch == '+') {
        ch = ' ';
      } else if (ch == '%') {
        int hi = p[0] ? (p[0] >= 'a' ? p[0] - 'a' + 10 : p[0] >= 'A' ? p[0] - 'A' + 10 : p[0] - '0') : -1;
        int lo = hi >= 0 && p[1] ? (p[1] >= 'a' ? p[1] - 'a' + 10 : p[1] >= 'A' ? p[1] - 'A' + 10 : p[1] - '0') : -1;
        if (hi < 0 || hi > 15 || lo < 0 || lo > 15) return -1;
        ch = hi * 16 + lo;
        p += 2;
        if (ch == 0) return -1;
      }
      if (n + 1 < lens[part]) outs[part][n++] = (char)ch;
      else over = 1;
    }
    outs[part][n] = 0;
    if (over) return -1;
    if (part == 0 && *p == '=') p++;
    else if (part == 0) { /* "key" alone: empty value */
      val[0] = 0;
      break;
    }
  }
  *query = p;
  return 1;
}

void sw_http_respond(struct sw_http_conn *c, int status, const char *content_type,
                     const char *body, size_t len) {
  respond(c, status, content_type, body, len, c->head_only);
}

void sw__httpd_answer_error(struct sw_http_conn *c, int status) {
  char body[96];
  /* unread request bytes may follow: drain them so the client gets the answer (see on_written) */
  c->drain = status == 400 || status == 408 || status == 411 || status == 413 ||
             status == 415 || status == 431;
  int n = snprintf(body, sizeof body, "{\"error\":\"%s\"}\n", sw_http_reason(status));
  respond(c, status, "application/json", body, (size_t)n, 0);
}

int sw_http_defer(struct sw_http_conn *c, void (*closed)(void *arg), void *arg) {
  if (c->phase != PH_HANDLER || c->responded || c->closing) return SW_EINVAL;
  c->phase = PH_DEFERRED; /* reads go on (a client gone is noticed), into the dropped bytes */
  uv_timer_stop(&c->timer);
  c->closed = closed;
  c->closed_arg = arg;
  return SW_OK;
}

static int route_allowed(const struct sw_http_conn *c, const struct route *r) {
  return !c->probe_only || r->probe;
}

/* The route for path and method (M_*; 0 for one no route serves), or NULL; *known tells
 * whether some route has the path (405 rather than 404). */
static const struct route *find_route(const struct sw_httpd *h, const char *path, unsigned want,
                                      int *known) {
  *known = 0;
  for (int i = 0; i < h->nroutes; i++) {
    const struct route *r = &h->routes[i];
    if (r->prefix || strcmp(r->path, path) != 0) continue;
    *known = 1;
    if (r->methods & want) return r;
  }
  if (*known) return NULL; /* exact routes win, even over a prefix route with the method */
  const struct route *best = NULL;
  size_t best_len = 0;
  for (int i = 0; i < h->nroutes; i++) {
    const struct route *r = &h->routes[i];
    size_t n = strlen(r->path);
    if (!r->prefix || strncmp(r->path, path, n) != 0) continue;
    *known = 1;
    if ((r->methods & want) && n > best_len) {
      best = r;
      best_len = n;
    }
  }
  return best;
}

static void call_handler(struct sw_http_conn *c, const struct route *r) {
  c->phase = PH_HANDLER;
  r->fn(c, &c->req, r->arg);
  free(c->body); /* the request's strings end with the call */
  c->body = NULL;
  c->req.body = NULL;
  if (c->closing) return;
  if (c->phase == PH_WS) { /* frames may have come right after the handshake's head */
    size_t used = c->req.head_len + c->body_len;
    c->ws_in = c->len > used ? c->len - used : 0;
    memmove(c->head, c->head + used, c->ws_in);
    c->ws_input(c);
  } else if (c->phase == PH_HANDLER) { /* it did nothing: as if it had failed */
    sw__httpd_answer_error(c, 503);
  }
}

static void body_read(struct sw_http_conn *c) {
  if (c->body_got < c->body_len) return;
  c->body[c->body_len] = 0;
  /* A form body has no NUL byte; the handler's string would end early at one. */
  if (memchr(c->body, 0, c->body_len)) {
    sw__httpd_answer_error(c, 400);
    return;
  }
  c->req.body = c->body;
  c->req.body_len = c->body_len;
  call_handler(c, c->route);
}

static int is_form_type(const struct sw_http_req *req) {
  static const char form[] = "application/x-www-form-urlencoded";
  size_t n = 0, m = 0;
  const char *v = sw_http_req_header(req, "Content-Type", &n);
  if (!v) return 0;
  while (m < n && v[m] != ';' && v[m] != ' ' && v[m] != '\t') m++;
  return m == sizeof form - 1 && strncasecmp(v, form, m) == 0;
}

/* A POST to a form route. Body bytes that came with the head are in head after head_len. */
static void form_post(struct sw_http_conn *c, const struct route *r,
                      const struct sw_http_head *hd) {
  if (hd->transfer_encoding) {
    sw__httpd_answer_error(c, 411);
    return;
  }
  if (!hd->has_length || hd->content_length == 0) {
    c->req.body = "";
    call_handler(c, r);
    return;
  }
  if (hd->content_length > SW_HTTPD_MAX_BODY) {
    sw__httpd_answer_error(c, 413);
    return;
  }
  if (!is_form_type(&c->req)) {
    sw__httpd_answer_error(c, 415);
    return;
  }
  /* freed after the handler (call_handler) or with the connection (conn_freed) */
  c->body_len = (size_t)hd->content_length;
  c->body = malloc(c->body_len + 1);
  if (!c->body) {
    sw__httpd_answer_error(c, 503);
    return;
  }
  size_t extra = c->len - hd->head_len;
  c->body_got = extra < c->body_len ? extra : c->body_len;
  memcpy(c->body, c->head + hd->head_len, c->body_got);
  c->route = r;
  c->phase = PH_BODY;
  body_read(c);
}

/* Dispatches a complete head (hd describes c->head). */
static void dispatch(struct sw_http_conn *c, const struct sw_http_head *hd) {
  /* The method and the target end at the request line's spaces: terminate them in place. */
  char *target = c->head + (hd->target - c->head);
  c->head[hd->method_len] = 0;
  target[hd->target_len] = 0;
  c->req = (struct sw_http_req){.method = c->head, .path = target, .query = "",
                                .head = c->head, .head_len = hd->head_len};
  char *q = strchr(target, '?');
  if (q) {
    *q = 0;
    c->req.query = q + 1;
  }
  const char *m = c->req.method;
  c->head_only = strcmp(m, "HEAD") == 0;
  unsigned want = c->head_only || !strcmp(m, "GET") ? M_GET : !strcmp(m, "POST") ? M_POST : 0;
  int known = 0;
  const struct route *r = find_route(c->h, c->req.path, want, &known);
  /* Bodies come only with a POST to a form route. */
  int body = (hd->has_length && hd->content_length > 0) || hd->transfer_encoding;
  if (body && !(r && r->form && want == M_POST)) {
    sw__httpd_answer_error(c, 413);
    return;
  }
  if (!r || !route_allowed(c, r)) {
    sw__httpd_answer_error(c, c->probe_only ? 503 : known ? 405 : 404);
    return;
  }
  if (r->form && want == M_POST) form_post(c, r, hd);
  else call_handler(c, r);
}

static void on_alloc(uv_handle_t *hd, size_t suggested, uv_buf_t *buf) {
  struct sw_http_conn *c = hd->data;
  (void)suggested;
  if (c->phase == PH_HEAD)
    *buf = uv_buf_init(c->head + c->len, (unsigned)(SW_HTTPD_MAX_HEAD - c->len));
  else if (c->phase == PH_BODY)
    *buf = uv_buf_init(c->body + c->body_got, (unsigned)(c->body_len - c->body_got));
  else if (c->phase == PH_WS) /* ws_in stays below a control frame's 139 bytes */
    *buf = uv_buf_init(c->head + c->ws_in, (unsigned)(SW_HTTPD_MAX_HEAD - c->ws_in));
  else /* dropped */
    *buf = uv_buf_init(c->head, SW_HTTPD_MAX_HEAD);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
  struct sw_http_conn *c = s->data;
  (void)buf;
  if (n < 0) { /* EOF or error, whatever the phase: the client is gone */
    sw__httpd_conn_close(c);
    return;
  }
  if (c->phase == PH_BODY) {
    c->body_got += (size_t)n;
    body_read(c);
    return;
  }
  if (c->phase == PH_WS) {
    c->ws_in += (size_t)n;
    c->ws_input(c);
    return;
  }
  if (c->phase != PH_HEAD) return; /* dropped */
  c->len += (size_t)n;
  c->head[c->len] = 0;
  /* The whole head is parsed again on each read: at most 8 KiB, and the parser stays a pure
   * function of the bytes (fuzzed as such). */
  struct sw_http_head hd;
  int rc = sw_http_head_parse(c->head, c->len, SW_HTTPD_MAX_HEAD, &hd);
  if (rc == SW_HTTP_HEAD_COMPLETE) dispatch(c, &hd);
  else if (rc == SW_HTTP_HEAD_BAD) sw__httpd_answer_error(c, hd.status);
}

static void on_timeout(uv_timer_t *t) {
  struct sw_http_conn *c = t->data;
  if (!c->responded) sw__httpd_answer_error(c, 408);
  else sw__httpd_conn_close(c); /* a client that does not read its answer */
}

/* The oldest connection (other than c) on a regular (probe: 0) or probe slot (1) that has
 * waited at least min_age ms without a complete request head, or NULL. */
static struct sw_http_conn *oldest_idle(struct sw_httpd *h, struct sw_http_conn *c, int probe,
                                        uint64_t min_age) {
  struct sw_http_conn *found = NULL;
  uint64_t now = uv_now(h->loop);
  for (struct sw_http_conn *o = h->conns; o; o = o->next) /* newest first */
    if (o != c && o->probe_only == probe && o->phase == PH_HEAD && !o->responded &&
        !o->closing && now - o->accepted_ms >= min_age)
      found = o;
  return found;
}

/* Frees the slot at once (conn_close, not a queued answer that would hold it until written);
 * the 503 is written only if the socket takes it right away, which an idle one does. */
static void evict(struct sw_http_conn *o) {
  static const char body[] = "{\"error\":\"connection limit reached: idle connection closed\"}\n";
  char msg[256];
  int n = snprintf(msg, sizeof msg,
                   "HTTP/1.1 503 %s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
                   "Connection: close\r\n\r\n%s", sw_http_reason(503), sizeof body - 1, body);
  uv_buf_t b = uv_buf_init(msg, (unsigned)n);
  (void)uv_try_write((uv_stream_t *)&o->tcp, &b, 1);
  sw__httpd_conn_close(o);
}

/* A slot for the new connection c (already counted): 0, or -1 when it must be refused.
 * Probe slots evict their oldest idle connection whatever its age: a prober sends its
 * request as soon as it is connected, so only sockets that sit idle can fill them. */
static int take_slot(struct sw_httpd *h, struct sw_http_conn *c) {
  if (h->nconns - h->nprobe <= SW_HTTPD_MAX_CONNS) return 0;
  struct sw_http_conn *old = oldest_idle(h, c, 0, SW_HTTPD_EVICT_AFTER_MS);
  if (old) {
    evict(old);
    return 0;
  }
  c->probe_only = 1;
  h->nprobe++;
  if (h->nprobe <= SW_HTTPD_PROBE_CONNS) return 0;
  if ((old = oldest_idle(h, c, 1, 0)) != NULL) {
    evict(old);
    return 0;
  }
  return -1;
}

static void on_connection(uv_stream_t *server, int status) {
  struct sw_httpd *h = server->data;
  if (status < 0 || h->stopping) return;
  struct sw_http_conn *c = calloc(1, sizeof *c);
  if (!c) return;
  c->h = h;
  uv_tcp_init(h->loop, &c->tcp);
  uv_timer_init(h->loop, &c->timer);
  c->tcp.data = c->timer.data = c;
  /* Like the listener, connections do not keep uv_run going: an idle client must not delay the
   * agent's reload (the loop runs until the pipeline's own handles are closed). */
  uv_unref((uv_handle_t *)&c->tcp);
  uv_unref((uv_handle_t *)&c->timer);
  c->handles_open = 2;
  c->accepted_ms = uv_now(h->loop);
  h->live++;
  sw_buf_init(&c->out, 0);
  c->next = h->conns;
  if (h->conns) h->conns->prev = c;
  h->conns = c;
  h->nconns++;
  if (uv_accept(server, (uv_stream_t *)&c->tcp)) {
    sw__httpd_conn_close(c);
    return;
  }
  if (take_slot(h, c)) { /* over every cap: answer and go */
    sw__httpd_answer_error(c, 503);
    return;
  }
  uv_timer_start(&c->timer, on_timeout, SW_HTTPD_HEAD_TIMEOUT_MS, 0);
  if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read)) sw__httpd_conn_close(c);
}

void sw_httpd_stop(struct sw_httpd *h);

static int parse_listen(const char *listen, struct sockaddr_storage *ss) {
  char host[128];
  unsigned port;
  if (sw_listen_split(listen, host, sizeof host, &port)) return -1;
  if (uv_ip4_addr(host, (int)port, (struct sockaddr_in *)ss) == 0) return 0;
  if (uv_ip6_addr(host, (int)port, (struct sockaddr_in6 *)ss) == 0) return 0;
  return -1;
}

int sw_httpd_start(uv_loop_t *loop, const char *listen, struct sw_httpd **out, char *err,
                   size_t errlen) {
  *out = NULL;
  struct sockaddr_storage ss;
  if (parse_listen(listen, &ss)) {
    snprintf(err, errlen, "server.listen: cannot parse \"%s\" (want HOST:PORT)", listen);
    return SW_EINVAL;
  }
  struct sw_httpd *h = calloc(1, sizeof *h);
  if (!h) return SW_ENOMEM;
  h->loop = loop;
  uv_tcp_init(loop, &h->server);
  h->server.data = h;
  int rc = uv_tcp_bind(&h->server, (const struct sockaddr *)&ss, 0);
  if (!rc) rc = uv_listen((uv_stream_t *)&h->server, 128, on_connection);
  /* The listener alone does not keep the loop running: the agent's pipeline does, so that
   * uv_run returns once the pipeline has closed its handles (reload) while we keep serving. */
  uv_unref((uv_handle_t *)&h->server);
  if (rc) {
    snprintf(err, errlen, "server.listen: cannot listen on %s: %s", listen, uv_strerror(rc));
    sw_httpd_stop(h); /* freed once the loop has closed the handle */
    return SW_EIO;
  }
  struct sockaddr_storage bound;
  int blen = sizeof bound;
  if (uv_tcp_getsockname(&h->server, (struct sockaddr *)&bound, &blen) == 0)
    h->port = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
                                                : ((struct sockaddr_in *)&bound)->sin_port);
  *out = h;
  return SW_OK;
}

/* Adds r for path (or prefix), copied; SW_EINVAL if it is too long or the table is full. */
static int route_of(struct sw_httpd *h, const char *path, struct route r) {
  if (h->nroutes >= MAX_ROUTES || strlen(path) >= sizeof r.path) return SW_EINVAL;
  snprintf(r.path, sizeof r.path, "%s", path);
  h->routes[h->nroutes++] = r;
  return SW_OK;
}

int sw_httpd_route_method(struct sw_httpd *h, const char *method, const char *path,
                          sw_http_handler fn, void *arg) {
  unsigned m = !strcmp(method, "GET") ? M_GET : !strcmp(method, "POST") ? M_POST : 0;
  if (!m) return SW_EINVAL;
  return route_of(h, path, (struct route){.methods = m, .fn = fn, .arg = arg});
}

int sw_httpd_route(struct sw_httpd *h, const char *path, sw_http_handler fn, void *arg) {
  return route_of(h, path, (struct route){.methods = M_GET, .fn = fn, .arg = arg});
}

int sw_httpd_route_probe(struct sw_httpd *h, const char *path, sw_http_handler fn, void *arg) {
  return route_of(h, path, (struct route){.methods = M_GET, .probe = 1, .fn = fn, .arg = arg});
}

int sw_httpd_route_prefix(struct sw_httpd *h, const char *prefix, sw_http_handler fn, void *arg) {
  if (!*prefix) return SW_EINVAL;
  return route_of(h, prefix, (struct route){.methods = M_GET, .prefix = 1, .fn = fn, .arg = arg});
}

int sw_httpd_route_form(struct sw_httpd *h, const char *path, sw_http_handler fn, void *arg) {
  return route_of(h, path,
                  (struct route){.methods = M_GET | M_POST, .form = 1, .fn = fn, .arg = arg});
}

int sw_httpd_port(const struct sw_httpd *h) { return h->port; }

static void server_closed(uv_handle_t *hd) {
  struct sw_httpd *h = hd->data;
  h->server_closed = 1;
  maybe_free(h);
}

void sw_httpd_stop(struct sw_httpd *h) {
  if (!h) return;
  h->stopping = 1;
  while (h->conns) sw__httpd_conn_close(h->conns);
  uv_close((uv_handle_t *)&h->server, server_closed);
}
