/* httpd.c - the control server (see http/httpd.h for its limits and connection states).
 *
 * Connection slots: SW_HTTPD_MAX_CONNS regular ones, plus SW_HTTPD_PROBE_CONNS that serve only
 * routes added with sw_httpd_route_probe (/health). A new connection over the cap first evicts
 * the oldest regular connection that has waited SW_HTTPD_EVICT_AFTER_MS without completing its
 * request head (idle sockets must not take liveness down); if none has, it gets a probe slot
 * (the oldest idle probe connection is evicted when those are full), and only if that fails
 * too it is answered 503. A connection that sends its request at once is never evicted.
 */
#include "httpd.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../common/log.h"
#include "../../common/text.h"
#include "head.h"

#define MAX_ROUTES 16

struct route {
  char method[8]; /* "GET" (HEAD too) or "POST" */
  char path[64];
  sw_http_handler fn;
  void *arg;
  int probe; /* also served on the probe slots */
};

struct sw_httpd {
  uv_tcp_t server;
  uv_loop_t *loop;
  struct route routes[MAX_ROUTES];
  int nroutes, nconns, nprobe, stopping, port; /* nprobe: of nconns, on probe slots */
  int live, server_closed; /* connection structs not yet freed; listener closed */
  struct sw_http_conn *conns;
};

static void maybe_free(struct sw_httpd *h) {
  if (h->stopping && h->server_closed && h->live == 0) free(h);
}

struct sw_http_conn {
  uv_tcp_t tcp; /* first: handle callbacks get back to the connection */
  uv_timer_t timer;
  struct sw_httpd *h;
  struct sw_http_conn *prev, *next;
  char head[SW_HTTPD_MAX_HEAD + 1];
  size_t len;
  int responded, closing, handles_open, head_only, drain;
  int probe_only;        /* on a probe slot: only probe routes are served */
  uint64_t accepted_ms;  /* uv_now at accept */
  uv_write_t wreq;
  uv_shutdown_t sreq;
  struct sw_buf out;
  /* streaming answers (sw_http_stream_*); the timer then watches for a client that stopped
   * reading (no write completed for SW_HTTPD_STALL_TIMEOUT_MS) */
  int streaming, ending, writes;
  void (*closed)(void *arg);
  void *closed_arg;
};

struct stream_write {
  uv_write_t req;
  struct sw_http_conn *c;
  char *data;
  size_t len;
  void (*done)(void *arg, size_t len);
  void *arg;
};

static void conn_freed(uv_handle_t *hd) {
  struct sw_http_conn *c = hd->data;
  if (--c->handles_open > 0) return;
  struct sw_httpd *h = c->h;
  sw_buf_free(&c->out);
  free(c);
  h->live--;
  maybe_free(h);
}

static void conn_close(struct sw_http_conn *c);

static void conn_close_timer(uv_timer_t *t) { conn_close(t->data); }

static void conn_close(struct sw_http_conn *c) {
  if (c->closing) return;
  c->closing = 1;
  /* The stream's producer must stop using c now. Its pending writes are cancelled when the
   * handle closes and their done callbacks run after this one. */
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

static void on_drain_alloc(uv_handle_t *hd, size_t suggested, uv_buf_t *buf) {
  struct sw_http_conn *c = hd->data;
  (void)suggested;
  *buf = uv_buf_init(c->head, sizeof c->head); /* discarded */
}

static void on_drain_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
  (void)buf;
  if (n < 0) conn_close(s->data);
}

static void on_shutdown(uv_shutdown_t *req, int status) {
  (void)req;
  (void)status;
}

static void on_written(uv_write_t *req, int status) {
  struct sw_http_conn *c = req->data;
  if (status < 0 || !c->drain) {
    conn_close(c);
    return;
  }
  /* Closing with unread request bytes makes the kernel reset the connection, and the client may
   * lose the answer: send FIN, read (and drop) what is left for a moment, then close. */
  if (uv_shutdown(&c->sreq, (uv_stream_t *)&c->tcp, on_shutdown) ||
      uv_read_start((uv_stream_t *)&c->tcp, on_drain_alloc, on_drain_read)) {
    conn_close(c);
    return;
  }
  uv_timer_start(&c->timer, conn_close_timer, 1000, 0);
}

static void respond(struct sw_http_conn *c, int status, const char *ctype, const char *body,
                    size_t len, int head_only) {
  if (c->responded || c->closing) return;
  c->responded = 1;
  uv_read_stop((uv_stream_t *)&c->tcp);
  sw_buf_init(&c->out, (size_t)64 << 20);
  int rc = sw_buf_printf(&c->out,
                         "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                         "Cache-Control: no-store\r\nConnection: close\r\n\r\n",
                         status, sw_http_reason(status), ctype, len);
  if (!rc && !head_only) rc = sw_buf_append(&c->out, body, len);
  if (rc) {
    conn_close(c);
    return;
  }
  uv_buf_t b = uv_buf_init(c->out.data, (unsigned)c->out.len);
  c->wreq.data = c;
  if (uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &b, 1, on_written)) conn_close(c);
}

int sw_http_stream_start(struct sw_http_conn *c, const char *content_type,
                         void (*closed)(void *arg), void *arg) {
  if (c->responded || c->closing) return SW_EINVAL;
  c->responded = c->streaming = 1;
  uv_read_stop((uv_stream_t *)&c->tcp);
  uv_timer_stop(&c->timer); /* from now on it watches write progress (see stream_progress) */
  char head[256];
  int n = snprintf(head, sizeof head,
                   "HTTP/1.1 200 OK\r\nContent-Type: %s\r\nCache-Control: no-store\r\n"
                   "Connection: close\r\n\r\n", content_type);
  char *copy = malloc((size_t)n);
  if (!copy) {
    conn_close(c);
    return SW_ENOMEM;
  }
  memcpy(copy, head, (size_t)n);
  if (sw_http_stream_write(c, copy, (size_t)n, NULL, NULL)) return SW_EIO; /* c is closing */
  c->closed = closed; /* only now: a call that fails does not call back */
  c->closed_arg = arg;
  return SW_OK;
}

static void stream_finish(struct sw_http_conn *c) {
  if (c->ending && c->writes == 0 && !c->closing) {
    c->wreq.data = c;
    on_written(&c->wreq, 0);
  }
}

static void stall_timeout(uv_timer_t *t) {
  struct sw_http_conn *c = t->data;
  SW_LOG(SW_L_DEBUG, "http", "closing a streamed answer: the client read nothing for %d ms",
         SW_HTTPD_STALL_TIMEOUT_MS);
  conn_close(c);
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
    conn_close(c);
    return;
  }
  stream_progress(c);
  stream_finish(c);
}

int sw_http_stream_write(struct sw_http_conn *c, char *data, size_t len,
                         void (*done)(void *arg, size_t len), void *arg) {
  struct stream_write *w = c->closing ? NULL : malloc(sizeof *w);
  if (!w) {
    free(data);
    if (!c->closing) conn_close(c);
    return SW_EIO;
  }
  *w = (struct stream_write){.c = c, .data = data, .len = len, .done = done, .arg = arg};
  uv_buf_t b = uv_buf_init(data, (unsigned)len);
  if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, on_stream_written)) {
    free(data);
    free(w);
    conn_close(c);
    return SW_EIO;
  }
  if (c->writes++ == 0) stream_progress(c);
  return SW_OK;
}

void sw_http_stream_end(struct sw_http_conn *c) {
  c->ending = 1;
  c->closed = NULL; /* the producer is done with c: a later close is not its business */
  stream_finish(c);
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

static void answer_error(struct sw_http_conn *c, int status) {
  char body[96];
  c->drain = status == 400 || status == 413 || status == 431 || status == 408;
  int n = snprintf(body, sizeof body, "{\"error\":\"%s\"}\n", sw_http_reason(status));
  respond(c, status, "application/json", body, (size_t)n, 0);
}

static int route_allowed(const struct sw_http_conn *c, const struct route *r) {
  return !c->probe_only || r->probe;
}

/* Dispatches a complete head (hd describes c->head). */
static void dispatch(struct sw_http_conn *c, const struct sw_http_head *hd) {
  /* The method and the target end at the request line's spaces: terminate them in place. */
  char *target = c->head + (hd->target - c->head);
  c->head[hd->method_len] = 0;
  target[hd->target_len] = 0;
  struct sw_http_req req = {.method = c->head, .path = target, .query = ""};
  char *q = strchr(target, '?');
  if (q) {
    *q = 0;
    req.query = q + 1;
  }
  /* Requests with a body are not part of this API. */
  if ((hd->has_length && hd->content_length > 0) || hd->transfer_encoding) {
    answer_error(c, 413);
    return;
  }
  int is_head = strcmp(req.method, "HEAD") == 0, path_known = 0;
  const char *want = is_head ? "GET" : req.method;
  c->head_only = is_head;
  for (int i = 0; i < c->h->nroutes; i++) {
    const struct route *r = &c->h->routes[i];
    if (strcmp(r->path, req.path) != 0) continue;
    path_known = 1;
    if (strcmp(r->method, want) != 0) continue;
    if (!route_allowed(c, r)) break;
    r->fn(c, &req, r->arg);
    if (!c->responded) answer_error(c, 503);
    return;
  }
  answer_error(c, c->probe_only ? 503 : path_known ? 405 : 404);
}

static void on_alloc(uv_handle_t *hd, size_t suggested, uv_buf_t *buf) {
  struct sw_http_conn *c = hd->data;
  (void)suggested;
  size_t room = SW_HTTPD_MAX_HEAD - c->len;
  *buf = uv_buf_init(c->head + c->len, (unsigned)(room ? room : 0));
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
  struct sw_http_conn *c = s->data;
  (void)buf;
  if (n < 0) {
    conn_close(c);
    return;
  }
  c->len += (size_t)n;
  c->head[c->len] = 0;
  /* The whole head is parsed again on each read: at most 8 KiB, and the parser stays a pure
   * function of the bytes (fuzzed as such). */
  struct sw_http_head hd;
  int rc = sw_http_head_parse(c->head, c->len, SW_HTTPD_MAX_HEAD, &hd);
  if (rc == SW_HTTP_HEAD_COMPLETE) dispatch(c, &hd);
  else if (rc == SW_HTTP_HEAD_BAD) answer_error(c, hd.status);
}

static void on_timeout(uv_timer_t *t) {
  struct sw_http_conn *c = t->data;
  if (!c->responded) answer_error(c, 408);
  else conn_close(c); /* a client that does not read its answer */
}

/* The oldest connection (other than c) on a regular (probe: 0) or probe slot (1) that has
 * waited at least min_age ms without a complete request head, or NULL. */
static struct sw_http_conn *oldest_idle(struct sw_httpd *h, struct sw_http_conn *c, int probe,
                                        uint64_t min_age) {
  struct sw_http_conn *found = NULL;
  uint64_t now = uv_now(h->loop);
  for (struct sw_http_conn *o = h->conns; o; o = o->next) /* newest first */
    if (o != c && o->probe_only == probe && !o->responded && !o->closing &&
        now - o->accepted_ms >= min_age)
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
  conn_close(o);
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
    conn_close(c);
    return;
  }
  if (take_slot(h, c)) { /* over every cap: answer and go */
    answer_error(c, 503);
    return;
  }
  uv_timer_start(&c->timer, on_timeout, SW_HTTPD_HEAD_TIMEOUT_MS, 0);
  if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read)) conn_close(c);
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

static int add_route(struct sw_httpd *h, const char *method, const char *path,
                     sw_http_handler fn, void *arg, int probe) {
  if (h->nroutes >= MAX_ROUTES || strlen(path) >= sizeof h->routes[0].path ||
      (strcmp(method, "GET") && strcmp(method, "POST")))
    return SW_EINVAL;
  struct route *r = &h->routes[h->nroutes++];
  snprintf(r->method, sizeof r->method, "%s", method);
  snprintf(r->path, sizeof r->path, "%s", path);
  r->fn = fn;
  r->arg = arg;
  r->probe = probe;
  return SW_OK;
}

int sw_httpd_route_method(struct sw_httpd *h, const char *method, const char *path,
                          sw_http_handler fn, void *arg) {
  return add_route(h, method, path, fn, arg, 0);
}

int sw_httpd_route(struct sw_httpd *h, const char *path, sw_http_handler fn, void *arg) {
  return add_route(h, "GET", path, fn, arg, 0);
}

int sw_httpd_route_probe(struct sw_httpd *h, const char *path, sw_http_handler fn, void *arg) {
  return add_route(h, "GET", path, fn, arg, 1);
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
  while (h->conns) conn_close(h->conns);
  uv_close((uv_handle_t *)&h->server, server_closed);
}
