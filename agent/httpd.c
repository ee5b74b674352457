#include "httpd.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/log.h"

#define MAX_ROUTES 16

struct route {
  char method[8]; /* "GET" (HEAD too) or "POST" */
  char path[64];
  sw_http_handler fn;
  void *arg;
};

struct sw_httpd {
  uv_tcp_t server;
  uv_loop_t *loop;
  struct route routes[MAX_ROUTES];
  int nroutes, nconns, stopping, port;
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
  uv_write_t wreq;
  uv_shutdown_t sreq;
  struct sw_buf out;
  /* streaming answers (sw_http_stream_*) */
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
  if (c->closed) c->closed(c->closed_arg); /* the stream's producer must stop using c now */
  c->closed = NULL;
  struct sw_httpd *h = c->h;
  if (c->prev) c->prev->next = c->next;
  else h->conns = c->next;
  if (c->next) c->next->prev = c->prev;
  h->nconns--;
  uv_timer_stop(&c->timer);
  uv_close((uv_handle_t *)&c->timer, conn_freed);
  uv_close((uv_handle_t *)&c->tcp, conn_freed);
}

static const char *reason(int status) {
  switch (status) {
  case 200: return "OK";
  case 400: return "Bad Request";
  case 404: return "Not Found";
  case 405: return "Method Not Allowed";
  case 408: return "Request Timeout";
  case 413: return "Payload Too Large";
  case 429: return "Too Many Requests";
  case 431: return "Request Header Fields Too Large";
  case 500: return "Internal Server Error";
  case 503: return "Service Unavailable";
  default: return "Error";
  }
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
                         status, reason(status), ctype, len);
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
  uv_timer_stop(&c->timer); /* the producer bounds its own time */
  c->closed = closed;
  c->closed_arg = arg;
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
  return sw_http_stream_write(c, copy, (size_t)n, NULL, NULL);
}

static void stream_finish(struct sw_http_conn *c) {
  if (c->ending && c->writes == 0 && !c->closing) {
    c->closed = NULL; /* complete: nothing to tell the producer */
    c->wreq.data = c;
    on_written(&c->wreq, 0);
  }
}

static void on_stream_written(uv_write_t *req, int status) {
  struct stream_write *w = (struct stream_write *)req;
  struct sw_http_conn *c = w->c;
  c->writes--;
  free(w->data);
  if (w->done) w->done(w->arg, w->len);
  free(w);
  if (status < 0)
    conn_close(c);
  else
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
  c->writes++;
  if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, on_stream_written)) {
    c->writes--;
    free(data);
    free(w);
    conn_close(c);
    return SW_EIO;
  }
  return SW_OK;
}

void sw_http_stream_end(struct sw_http_conn *c) {
  c->ending = 1;
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
  int n = snprintf(body, sizeof body, "{\"error\":\"%s\"}\n", reason(status));
  respond(c, status, "application/json", body, (size_t)n, 0);
}

/* Parses the request line once the head is complete and dispatches. */
static void dispatch(struct sw_http_conn *c) {
  char *sp1 = memchr(c->head, ' ', c->len);
  char *sp2 = sp1 ? memchr(sp1 + 1, ' ', (size_t)(c->head + c->len - sp1 - 1)) : NULL;
  char *eol = strstr(c->head, "\r\n");
  if (!sp1 || !sp2 || !eol || sp2 > eol || strncmp(sp2 + 1, "HTTP/1.", 7) != 0) {
    answer_error(c, 400);
    return;
  }
  *sp1 = 0;
  *sp2 = 0;
  struct sw_http_req req = {.method = c->head, .path = sp1 + 1, .query = ""};
  char *q = strchr(sp1 + 1, '?');
  if (q) {
    *q = 0;
    req.query = q + 1;
  }
  /* Requests with a body are not part of this API. */
  for (char *p = eol; (p = strcasestr(p, "\r\ncontent-length:")) != NULL; p += 2) {
    if (atol(p + 17) > 0) {
      answer_error(c, 413);
      return;
    }
  }
  if (strcasestr(eol, "\r\ntransfer-encoding:")) {
    answer_error(c, 413);
    return;
  }
  int is_head = strcmp(req.method, "HEAD") == 0, path_known = 0;
  const char *want = is_head ? "GET" : req.method;
  c->head_only = is_head;
  for (int i = 0; i < c->h->nroutes; i++) {
    if (strcmp(c->h->routes[i].path, req.path) != 0) continue;
    path_known = 1;
    if (strcmp(c->h->routes[i].method, want) != 0) continue;
    c->h->routes[i].fn(c, &req, c->h->routes[i].arg);
    if (!c->responded) answer_error(c, 503);
    return;
  }
  answer_error(c, path_known ? 405 : 404);
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
  if (strstr(c->head, "\r\n\r\n")) {
    dispatch(c);
  } else if (c->len >= SW_HTTPD_MAX_HEAD) {
    answer_error(c, 431);
  }
}

static void on_timeout(uv_timer_t *t) {
  struct sw_http_conn *c = t->data;
  if (!c->responded) answer_error(c, 408);
  else conn_close(c); /* a client that does not read its answer */
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
  if (h->nconns > SW_HTTPD_MAX_CONNS) { /* over the cap: answer and go */
    answer_error(c, 503);
    return;
  }
  uv_timer_start(&c->timer, on_timeout, SW_HTTPD_HEAD_TIMEOUT_MS, 0);
  if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read)) conn_close(c);
}

void sw_httpd_stop(struct sw_httpd *h);

static int parse_listen(const char *listen, struct sockaddr_storage *ss) {
  char host[128];
  const char *colon = strrchr(listen, ':');
  if (!colon || colon == listen || strlen(colon + 1) == 0) return -1;
  size_t hl = (size_t)(colon - listen);
  if (listen[0] == '[' && hl >= 2 && listen[hl - 1] == ']') {
    listen++;
    hl -= 2;
  }
  if (hl >= sizeof host) return -1;
  memcpy(host, listen, hl);
  host[hl] = 0;
  int port = atoi(colon + 1);
  if (port < 0 || port > 65535) return -1;
  if (uv_ip4_addr(host, port, (struct sockaddr_in *)ss) == 0) return 0;
  if (uv_ip6_addr(host, port, (struct sockaddr_in6 *)ss) == 0) return 0;
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

int sw_httpd_route_method(struct sw_httpd *h, const char *method, const char *path,
                          sw_http_handler fn, void *arg) {
  if (h->nroutes >= MAX_ROUTES || strlen(path) >= sizeof h->routes[0].path ||
      (strcmp(method, "GET") && strcmp(method, "POST")))
    return SW_EINVAL;
  struct route *r = &h->routes[h->nroutes++];
  snprintf(r->method, sizeof r->method, "%s", method);
  snprintf(r->path, sizeof r->path, "%s", path);
  r->fn = fn;
  r->arg = arg;
  return SW_OK;
}

int sw_httpd_route(struct sw_httpd *h, const char *path, sw_http_handler fn, void *arg) {
  return sw_httpd_route_method(h, "GET", path, fn, arg);
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
