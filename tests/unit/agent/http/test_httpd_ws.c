/* The control server's routes for the query API, run for real: the server on its own loop
 * thread, a client with blocking sockets in the test. Prefix and form routes (bodies, their
 * limits and statuses), deferred answers (late answer, HEAD, the client going away, no head
 * timeout, server stop) and WebSockets (handshake checks, ping/pong, dropped data frames,
 * close either way, refused frames). Every read has a deadline (SO_RCVTIMEO); waits for the
 * loop thread poll a counter with a deadline. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "agent/http/httpd.h"
#include "agent/http/ws.h"

/* Written by the loop thread, read by the test. */
struct server {
  uv_loop_t loop;
  uv_async_t stop;
  struct sw_httpd *h;
  pthread_t thread;
  int port;
  atomic_int defer_closed, ws_closed, ws_sent_done, forever_started;
};

static struct server *S; /* the one server of this test process (set up by the group) */

/* Handlers run on the loop thread, where cmocka's asserts (a longjmp) must not be used. */
#define LOOP_CHECK(c) ((c) ? (void)0 : abort())

/* ---- handlers (loop thread) ---- */

static void text(struct sw_http_conn *c, const char *s) {
  sw_http_respond(c, 200, "text/plain", s, strlen(s));
}

static void on_exact(struct sw_http_conn *c, const struct sw_http_req *req, void *arg) {
  (void)req;
  (void)arg;
  text(c, "exact");
}

static void on_prefix(struct sw_http_conn *c, const struct sw_http_req *req, void *arg) {
  char out[256];
  snprintf(out, sizeof out, "%s:%s?%s", (const char *)arg, req->path, req->query);
  text(c, out);
}

/* Echoes what the handler sees: method, body (or NULL), query, content type. */
static void on_form(struct sw_http_conn *c, const struct sw_http_req *req, void *arg) {
  (void)arg;
  size_t n = 0;
  const char *ct = sw_http_req_header(req, "content-type", &n);
  size_t cap = req->body_len + 256;
  char *out = malloc(cap);
  LOOP_CHECK(out != NULL);
  int len = snprintf(out, cap, "%s len=%zu query=%s ct=%.*s body=%s", req->method,
                     req->body_len, req->query, ct ? (int)n : 4, ct ? ct : "none",
                     req->body ? req->body : "(null)");
  sw_http_respond(c, 200, "text/plain", out, (size_t)len);
  free(out);
}

struct late {
  uv_timer_t timer;
  struct sw_http_conn *c;
  int gone;
};

static void late_freed(uv_handle_t *h) { free(h->data); }

static void late_answer(uv_timer_t *t) {
  struct late *l = t->data;
  if (!l->gone) text(l->c, "late");
  uv_close((uv_handle_t *)&l->timer, late_freed);
}

static void late_closed(void *arg) {
  struct late *l = arg;
  l->gone = 1;
  atomic_fetch_add(&S->defer_closed, 1);
}

/* Answers 50 ms later, from a timer. */
static void on_defer(struct sw_http_conn *c, const struct sw_http_req *req, void *arg) {
  (void)req;
  (void)arg;
  struct late *l = calloc(1, sizeof *l);
  LOOP_CHECK(l != NULL);
  l->c = c;
  LOOP_CHECK(sw_http_defer(c, late_closed, l) == SW_OK);
  LOOP_CHECK(sw_http_defer(c, late_closed, l) == SW_EINVAL); /* once */
  uv_timer_init(&S->loop, &l->timer);
  l->timer.data = l;
  uv_timer_start(&l->timer, late_answer, 50, 0);
}

static void forever_closed(void *arg) {
  (void)arg;
  atomic_fetch_add(&S->defer_closed, 1);
}

/* Never answers: only the client leaving or the server stopping ends it. */
static void on_forever(struct sw_http_conn *c, const struct sw_http_req *req, void *arg) {
  (void)req;
  (void)arg;
  LOOP_CHECK(sw_http_defer(c, forever_closed, NULL) == SW_OK);
  atomic_fetch_add(&S->forever_started, 1);
}

static void ws_closed(void *arg) {
  (void)arg;
  atomic_fetch_add(&S->ws_closed, 1);
}

static void ws_done(void *arg, size_t len) {
  (void)arg;
  (void)len;
  atomic_fetch_add(&S->ws_sent_done, 1);
}

static void ws_say(struct sw_http_conn *c, const char *s) {
  LOOP_CHECK(sw_http_ws_send(c, strdup(s), strlen(s), ws_done, NULL) == SW_OK);
}

/* arg "hello": greets and waits; "bye": greets and closes from the server side. */
static void on_ws(struct sw_http_conn *c, const struct sw_http_req *req, void *arg) {
  if (sw_http_ws_accept(c, req, ws_closed, NULL) != SW_OK) return; /* answered 400 */
  LOOP_CHECK(sw_http_stream_write(c, strdup("raw"), 3, NULL, NULL) == SW_EINVAL);
  ws_say(c, arg);
  if (!strcmp(arg, "bye")) sw_http_ws_close(c);
}

static void on_stop(uv_async_t *a) {
  sw_httpd_stop(S->h);
  uv_close((uv_handle_t *)a, NULL);
}

static void *loop_main(void *arg) {
  (void)arg;
  uv_run(&S->loop, UV_RUN_DEFAULT);
  return NULL;
}

static int setup(void **state) {
  (void)state;
  S = calloc(1, sizeof *S);
  assert_non_null(S);
  assert_int_equal(uv_loop_init(&S->loop), 0);
  /* the async handle is what keeps the loop running: the server's handles are unref'd */
  assert_int_equal(uv_async_init(&S->loop, &S->stop, on_stop), 0);
  char err[256];
  assert_int_equal(sw_httpd_start(&S->loop, "127.0.0.1:0", &S->h, err, sizeof err), SW_OK);
  struct sw_httpd *h = S->h;
  assert_int_equal(sw_httpd_route(h, "/p/exact", on_exact, NULL), SW_OK);
  assert_int_equal(sw_httpd_route_prefix(h, "/p/", on_prefix, "short"), SW_OK);
  assert_int_equal(sw_httpd_route_prefix(h, "/p/long/", on_prefix, "long"), SW_OK);
  assert_int_equal(sw_httpd_route_form(h, "/form", on_form, NULL), SW_OK);
  assert_int_equal(sw_httpd_route_method(h, "POST", "/post", on_exact, NULL), SW_OK);
  assert_int_equal(sw_httpd_route(h, "/defer", on_defer, NULL), SW_OK);
  assert_int_equal(sw_httpd_route(h, "/forever", on_forever, NULL), SW_OK);
  assert_int_equal(sw_httpd_route(h, "/ws", on_ws, "hello"), SW_OK);
  assert_int_equal(sw_httpd_route(h, "/ws-bye", on_ws, "bye"), SW_OK);
  char longp[80];
  memset(longp, 'x', sizeof longp - 1);
  longp[0] = '/';
  longp[sizeof longp - 1] = 0;
  assert_int_equal(sw_httpd_route_prefix(h, longp, on_exact, NULL), SW_EINVAL);
  assert_int_equal(sw_httpd_route_prefix(h, "", on_exact, NULL), SW_EINVAL);
  /* 40 routes in all: 9 taken above */
  for (int i = 9; i < 40; i++) {
    char p[32];
    snprintf(p, sizeof p, "/r%d", i);
    assert_int_equal(sw_httpd_route(h, p, on_exact, NULL), SW_OK);
  }
  assert_int_equal(sw_httpd_route(h, "/one-too-many", on_exact, NULL), SW_EINVAL);
  S->port = sw_httpd_port(h);
  assert_int_equal(pthread_create(&S->thread, NULL, loop_main, NULL), 0);
  return 0;
}

/* ---- client (test thread) ---- */

static int conn(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  assert_true(fd >= 0);
  struct timeval tv = {.tv_sec = 10};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)S->port)};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
  return fd;
}

static void send_all(int fd, const void *p, size_t n) {
  const char *b = p;
  while (n > 0) {
    ssize_t k = send(fd, b, n, MSG_NOSIGNAL);
    if (k < 0 && errno == EINTR) continue;
    assert_true(k > 0);
    b += k;
    n -= (size_t)k;
  }
}

/* Everything until EOF (NUL-terminated; a reset after data counts as the end). */
static size_t read_all(int fd, char *out, size_t cap) {
  size_t n = 0;
  for (;;) {
    assert_true(n + 1 < cap);
    ssize_t k = recv(fd, out + n, cap - 1 - n, 0);
    if (k < 0 && errno == EINTR) continue;
    if (k < 0 && errno == ECONNRESET && n > 0) break;
    if (k < 0) fail_msg("recv: %s after %zu bytes", strerror(errno), n);
    if (k == 0) break;
    n += (size_t)k;
  }
  out[n] = 0;
  return n;
}

static void read_n(int fd, void *p, size_t n) {
  char *b = p;
  while (n > 0) {
    ssize_t k = recv(fd, b, n, 0);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) fail_msg("recv: %zd (%s) with %zu bytes to go", k, strerror(errno), n);
    b += k;
    n -= (size_t)k;
  }
}

/* One request, the whole answer (the server closes after it). */
static char *ask(const char *req, size_t len) {
  static char out[1 << 18];
  int fd = conn();
  send_all(fd, req, len);
  read_all(fd, out, sizeof out);
  close(fd);
  return out;
}

static char *ask_s(const char *req) { return ask(req, strlen(req)); }

static const char *body_of(const char *answer) {
  const char *b = strstr(answer, "\r\n\r\n");
  assert_non_null(b);
  return b + 4;
}

static void expect_status(const char *req, const char *status) {
  char *got = ask_s(req);
  if (strncmp(got, status, strlen(status)))
    fail_msg("%.60s: got \"%.60s\", want \"%s\"", req, got, status);
}

/* Polls an atomic counter for want, up to 5 s. */
static void wait_count(atomic_int *v, int want, const char *what) {
  for (int i = 0; i < 500 && atomic_load(v) < want; i++) {
    struct timespec ts = {.tv_nsec = 10 * 1000 * 1000};
    nanosleep(&ts, NULL);
  }
  if (atomic_load(v) != want) fail_msg("%s: %d, want %d", what, atomic_load(v), want);
}

static void prefix_routes(void **state) {
  (void)state;
  assert_string_equal(body_of(ask_s("GET /p/abc?x=1 HTTP/1.1\r\n\r\n")), "short:/p/abc?x=1");
  assert_string_equal(body_of(ask_s("GET /p/long/a/b HTTP/1.1\r\n\r\n")), "long:/p/long/a/b?");
  assert_string_equal(body_of(ask_s("GET /p/long HTTP/1.1\r\n\r\n")), "short:/p/long?");
  assert_string_equal(body_of(ask_s("GET /p/exact HTTP/1.1\r\n\r\n")), "exact");
  assert_string_equal(body_of(ask_s("GET /p/ HTTP/1.1\r\n\r\n")), "short:/p/?");
  char *got = ask_s("HEAD /p/abc HTTP/1.1\r\n\r\n");
  assert_non_null(strstr(got, "Content-Length: 13\r\n")); /* "short:/p/abc?" */
  assert_string_equal(body_of(got), "");
  expect_status("POST /p/abc HTTP/1.1\r\n\r\n", "HTTP/1.1 405 ");
  expect_status("POST /p/exact HTTP/1.1\r\n\r\n", "HTTP/1.1 405 ");
  expect_status("GET /p HTTP/1.1\r\n\r\n", "HTTP/1.1 404 ");
  expect_status("GET /p/abc HTTP/1.1\r\nContent-Length: 1\r\n\r\nx", "HTTP/1.1 413 ");
  expect_status("GET /r39 HTTP/1.1\r\n\r\n", "HTTP/1.1 200 ");
}

static char *form_post(const char *ctype, const char *body, size_t len) {
  size_t cap = len + 512;
  char *req = malloc(cap);
  assert_non_null(req);
  int n = snprintf(req, cap,
                   "POST /form?from=query HTTP/1.1\r\nHost: x\r\n%s%s%sContent-Length: %zu\r\n\r\n",
                   ctype ? "Content-Type: " : "", ctype ? ctype : "", ctype ? "\r\n" : "", len);
  memcpy(req + n, body, len);
  char *got = ask(req, (size_t)n + len);
  free(req);
  return got;
}

static void form_routes(void **state) {
  (void)state;
  const char *form = "application/x-www-form-urlencoded";
  char *got = form_post(form, "query=%7Bjob%3D%22x%22%7D&limit=5", 33);
  assert_string_equal(body_of(got), "POST len=33 query=from=query "
                                    "ct=application/x-www-form-urlencoded "
                                    "body=query=%7Bjob%3D%22x%22%7D&limit=5");
  got = form_post("Application/X-WWW-Form-Urlencoded ; charset=UTF-8", "a=1", 3);
  assert_string_equal(body_of(got), "POST len=3 query=from=query "
                                    "ct=Application/X-WWW-Form-Urlencoded ; charset=UTF-8 body=a=1");
  /* the largest body, sent in pieces */
  size_t big = SW_HTTPD_MAX_BODY;
  char *b = malloc(big + 1);
  assert_non_null(b);
  memset(b, 'q', big);
  b[big] = 0;
  got = form_post(form, b, big);
  size_t want = strlen("POST len=65536 query=from=query ct=") + strlen(form) + 6 + big;
  assert_int_equal(strlen(body_of(got)), want);
  assert_non_null(strstr(got, "len=65536"));
  got = form_post(form, b, big + 1);
  assert_memory_equal(got, "HTTP/1.1 413 ", 13);
  free(b);
  assert_memory_equal(form_post("text/plain", "a=1", 3), "HTTP/1.1 415 ", 13);
  assert_memory_equal(form_post(NULL, "a=1", 3), "HTTP/1.1 415 ", 13);
  got = form_post("application/x-www-form-urlencodedX", "a=1", 3);
  assert_memory_equal(got, "HTTP/1.1 415 ", 13);
  assert_memory_equal(form_post(form, "a=\0", 3), "HTTP/1.1 400 ", 13);
  /* without a body: "" for a POST, NULL for a GET */
  got = form_post(NULL, "", 0);
  assert_string_equal(body_of(got), "POST len=0 query=from=query ct=none body=");
  got = ask_s("POST /form HTTP/1.1\r\n\r\n");
  assert_string_equal(body_of(got), "POST len=0 query= ct=none body=");
  got = ask_s("GET /form?q=1 HTTP/1.1\r\n\r\n");
  assert_string_equal(body_of(got), "GET len=0 query=q=1 ct=none body=(null)");
  expect_status("GET /form HTTP/1.1\r\nContent-Length: 3\r\n\r\na=1", "HTTP/1.1 413 ");
  expect_status("POST /form HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\na=1\r\n0\r\n\r\n",
                "HTTP/1.1 411 ");
  /* still no bodies elsewhere */
  expect_status("POST /post HTTP/1.1\r\nContent-Length: 3\r\n\r\na=1", "HTTP/1.1 413 ");
  expect_status("POST /post HTTP/1.1\r\n\r\n", "HTTP/1.1 200 ");
  /* a client that goes before its body is complete gets no answer */
  int fd = conn();
  const char *part = "POST /form HTTP/1.1\r\nContent-Type: application/x-www-form-urlencoded\r\n"
                     "Content-Length: 10\r\n\r\nabc";
  send_all(fd, part, strlen(part));
  shutdown(fd, SHUT_WR);
  char out[256];
  assert_int_equal(read_all(fd, out, sizeof out), 0);
  close(fd);
}

static void deferred(void **state) {
  (void)state;
  int closed0 = atomic_load(&S->defer_closed);
  assert_string_equal(body_of(ask_s("GET /defer HTTP/1.1\r\n\r\n")), "late");
  char *got = ask_s("HEAD /defer HTTP/1.1\r\n\r\n");
  assert_non_null(strstr(got, "Content-Length: 4\r\n"));
  assert_string_equal(body_of(got), "");
  assert_int_equal(atomic_load(&S->defer_closed), closed0); /* answered: closed() never ran */
  /* the client leaving is noticed, whatever extra bytes it sent */
  int started = atomic_load(&S->forever_started);
  int fd = conn();
  const char *req = "GET /forever HTTP/1.1\r\n\r\nextra bytes that are dropped";
  send_all(fd, req, strlen(req));
  wait_count(&S->forever_started, started + 1, "deferred request started");
  send_all(fd, "more", 4);
  close(fd);
  wait_count(&S->defer_closed, closed0 + 1, "closed() after the client left");
  /* no head timeout (5 s) while deferred: nothing comes for 6 s */
  fd = conn();
  struct timeval tv = {.tv_sec = 6};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  send_all(fd, "GET /forever HTTP/1.1\r\n\r\n", 25);
  char c;
  ssize_t k = recv(fd, &c, 1, 0);
  assert_true(k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK));
  assert_int_equal(atomic_load(&S->defer_closed), closed0 + 1);
  close(fd);
  wait_count(&S->defer_closed, closed0 + 2, "closed() after the client left");
}

/* ---- WebSocket client ---- */

static const char *KEY = "dGhlIHNhbXBsZSBub25jZQ==";

static int ws_open(const char *path, const char *extra, size_t extra_len) {
  int fd = conn();
  char req[512];
  int n = snprintf(req, sizeof req,
                   "GET %s HTTP/1.1\r\nHost: x\r\nUpgrade: WebSocket\r\n"
                   "Connection: keep-alive, Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                   "Sec-WebSocket-Key: %s\r\n\r\n", path, KEY);
  send_all(fd, req, (size_t)n);
  if (extra_len) send_all(fd, extra, extra_len);
  char head[512];
  size_t h = 0;
  while (h < 4 || memcmp(head + h - 4, "\r\n\r\n", 4)) {
    assert_true(h + 1 < sizeof head);
    read_n(fd, head + h++, 1);
  }
  head[h] = 0;
  assert_memory_equal(head, "HTTP/1.1 101 Switching Protocols\r\n", 34);
  assert_non_null(strstr(head, "\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"));
  assert_non_null(strstr(head, "\r\nUpgrade: websocket\r\n"));
  return fd;
}

/* A masked client frame. */
static size_t ws_frame(uint8_t *out, int b0, const void *p, size_t n) {
  static const uint8_t mask[4] = {1, 2, 3, 4};
  size_t hl = sw_ws_frame_header(out, 0, n);
  out[0] = (uint8_t)b0;
  out[1] |= 0x80;
  memcpy(out + hl, mask, 4);
  memcpy(out + hl + 4, p, n);
  sw_ws_unmask(out + hl + 4, n, mask, 0);
  return hl + 4 + n;
}

static void ws_send_frame(int fd, int b0, const void *p, size_t n) {
  uint8_t *f = malloc(n + 14);
  assert_non_null(f);
  send_all(fd, f, ws_frame(f, b0, p, n));
  free(f);
}

/* Reads one server frame: returns its first byte, the payload into p (NUL-terminated). */
static int ws_read(int fd, char *p, size_t cap, size_t *len) {
  uint8_t h[10];
  read_n(fd, h, 2);
  assert_int_equal(h[1] & 0x80, 0); /* servers do not mask */
  size_t n = h[1] & 0x7f;
  if (n == 126) {
    read_n(fd, h + 2, 2);
    n = (size_t)h[2] << 8 | h[3];
  }
  assert_true(n < 127 && n < cap);
  read_n(fd, p, n);
  p[n] = 0;
  *len = n;
  return h[0];
}

static void expect_eof(int fd) {
  char c;
  ssize_t k = recv(fd, &c, 1, 0);
  assert_true(k == 0 || (k < 0 && errno == ECONNRESET));
}

static void websocket(void **state) {
  (void)state;
  char p[256];
  size_t n;
  int closed0 = atomic_load(&S->ws_closed);
  /* a ping sent with the handshake is answered after the greeting */
  uint8_t ping[32];
  size_t pl = ws_frame(ping, 0x89, "p1", 2);
  int fd = ws_open("/ws", (const char *)ping, pl);
  assert_int_equal(ws_read(fd, p, sizeof p, &n), 0x81);
  assert_string_equal(p, "hello");
  assert_int_equal(ws_read(fd, p, sizeof p, &n), 0x8a);
  assert_string_equal(p, "p1");
  /* data frames are dropped, even ones larger than the input buffer; pong is ignored */
  char *big = malloc(60000);
  assert_non_null(big);
  memset(big, 'd', 60000);
  ws_send_frame(fd, 0x82, big, 60000);
  ws_send_frame(fd, 0x01, "frag", 4);
  ws_send_frame(fd, 0x80, big, 20000);
  ws_send_frame(fd, 0x8a, "unasked", 7);
  free(big);
  ws_send_frame(fd, 0x89, "p2", 2);
  assert_int_equal(ws_read(fd, p, sizeof p, &n), 0x8a);
  assert_string_equal(p, "p2");
  char p125[126];
  for (int i = 0; i < 125; i++) p125[i] = (char)('a' + i % 26);
  p125[125] = 0;
  ws_send_frame(fd, 0x89, p125, 125); /* the largest ping */
  ws_send_frame(fd, 0x89, "", 0);
  assert_int_equal(ws_read(fd, p, sizeof p, &n), 0x8a);
  assert_string_equal(p, p125);
  assert_int_equal(ws_read(fd, p, sizeof p, &n), 0x8a);
  assert_int_equal(n, 0);
  /* the client closes: its code is echoed, then EOF; closed() once */
  ws_send_frame(fd, 0x88, "\x03\xe9", 2);
  assert_int_equal(ws_read(fd, p, sizeof p, &n), 0x88);
  assert_int_equal(n, 2);
  assert_memory_equal(p, "\x03\xe9", 2);
  expect_eof(fd);
  close(fd);
  wait_count(&S->ws_closed, closed0 + 1, "closed() after a close frame");

  /* an unmasked frame: 1002 */
  fd = ws_open("/ws", NULL, 0);
  assert_int_equal(ws_read(fd, p, sizeof p, &n), 0x81);
  send_all(fd, "\x81\x02hi", 4);
  assert_int_equal(ws_read(fd, p, sizeof p, &n), 0x88);
  assert_memory_equal(p, "\x03\xea", 2);
  expect_eof(fd);
  close(fd);
  wait_count(&S->ws_closed, closed0 + 2, "closed() after a bad frame");

  /* a frame over 64 KiB: 1009, as soon as its header is in */
  fd = ws_open("/ws", NULL, 0);
  assert_int_equal(ws_read(fd, p, sizeof p, &n), 0x81);
  send_all(fd, "\x82\xff\x00\x00\x00\x00\x00\x01\x00\x01", 10);
  assert_int_equal(ws_read(fd, p, sizeof p, &n), 0x88);
  assert_memory_equal(p, "\x03\xf1", 2);
  expect_eof(fd);
  close(fd);
  wait_count(&S->ws_closed, closed0 + 3, "closed() after a large frame");

  /* the client just goes */
  fd = ws_open("/ws", NULL, 0);
  assert_int_equal(ws_read(fd, p, sizeof p, &n), 0x81);
  close(fd);
  wait_count(&S->ws_closed, closed0 + 4, "closed() after EOF");

  /* the server closes: greeting, close 1000, EOF, and closed() does not run */
  fd = ws_open("/ws-bye", NULL, 0);
  assert_int_equal(ws_read(fd, p, sizeof p, &n), 0x81);
  assert_string_equal(p, "bye");
  assert_int_equal(ws_read(fd, p, sizeof p, &n), 0x88);
  assert_memory_equal(p, "\x03\xe8", 2);
  ws_send_frame(fd, 0x88, "\x03\xe8", 2); /* the client's answer is taken quietly */
  expect_eof(fd);
  close(fd);
  assert_int_equal(atomic_load(&S->ws_closed), closed0 + 4);
  wait_count(&S->ws_sent_done, 5, "every send's done callback");
}

static void ws_bad_handshakes(void **state) {
  (void)state;
  static const char *const bad[] = {
      "GET /ws HTTP/1.1\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n", /* no Upgrade */
      "GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: keep-alive\r\n"
      "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
      "GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
      "Sec-WebSocket-Version: 8\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
      "GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
      "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ\r\n\r\n",
      "GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
      "Sec-WebSocket-Version: 13\r\n\r\n",
      "HEAD /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
      "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
      "GET /ws HTTP/1.1\r\n\r\n",
  };
  int closed0 = atomic_load(&S->ws_closed);
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    expect_status(bad[i], "HTTP/1.1 400 ");
  assert_int_equal(atomic_load(&S->ws_closed), closed0);
}

/* Last: a deferred request and a WebSocket are told when the server stops. */
static void server_stop(void **state) {
  (void)state;
  int dc = atomic_load(&S->defer_closed), wc = atomic_load(&S->ws_closed);
  int started = atomic_load(&S->forever_started);
  int d = conn();
  send_all(d, "GET /forever HTTP/1.1\r\n\r\n", 25);
  wait_count(&S->forever_started, started + 1, "deferred request started");
  int w = ws_open("/ws", NULL, 0);
  char p[64];
  size_t n;
  assert_int_equal(ws_read(w, p, sizeof p, &n), 0x81);
  uv_async_send(&S->stop);
  assert_int_equal(pthread_join(S->thread, NULL), 0);
  assert_int_equal(atomic_load(&S->defer_closed), dc + 1);
  assert_int_equal(atomic_load(&S->ws_closed), wc + 1);
  assert_int_equal(uv_loop_close(&S->loop), 0);
  expect_eof(d);
  close(d);
  close(w);
  free(S);
  S = NULL;
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(prefix_routes), cmocka_unit_test(form_routes),
      cmocka_unit_test(deferred),      cmocka_unit_test(websocket),
      cmocka_unit_test(ws_bad_handshakes), cmocka_unit_test(server_stop)};
  return cmocka_run_group_tests(tests, setup, NULL);
}
