/* The control server's request head parser (agent/http/head.c): what is complete, what needs
 * more bytes, and what is refused at once with which status. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "agent/http/head.h"

#define MAX 8192

static int parse(const char *s, struct sw_http_head *h) {
  return sw_http_head_parse(s, strlen(s), MAX, h);
}

static void complete_heads(void **state) {
  (void)state;
  struct sw_http_head h;
  const char *req = "GET /api/v1/search?q=a%20b HTTP/1.1\r\nHost: x\r\nX-Empty:\r\n"
                    "Content-Length:  0 \r\n\r\nextra";
  assert_int_equal(parse(req, &h), SW_HTTP_HEAD_COMPLETE);
  assert_int_equal(h.head_len, strlen(req) - 5);
  assert_int_equal(h.method_len, 3);
  assert_memory_equal(h.method, "GET", 3);
  assert_int_equal(h.target_len, strlen("/api/v1/search?q=a%20b"));
  assert_memory_equal(h.target, "/api/v1/search?q=a%20b", h.target_len);
  assert_true(h.has_length);
  assert_int_equal(h.content_length, 0);
  assert_false(h.transfer_encoding);

  assert_int_equal(parse("HEAD /health HTTP/1.0\r\n\r\n", &h), SW_HTTP_HEAD_COMPLETE);
  assert_false(h.has_length);
  assert_int_equal(parse("POST /-/reload HTTP/1.1\r\ncontent-length: 12\r\n"
                         "Transfer-Encoding: chunked\r\n\r\n", &h), SW_HTTP_HEAD_COMPLETE);
  assert_int_equal(h.content_length, 12); /* the server answers 413: no bodies */
  assert_true(h.transfer_encoding);
  /* the same length twice is allowed; obs-text and HTAB in values too */
  assert_int_equal(parse("GET / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 3\r\n"
                         "X: caf\xc3\xa9\tok\r\n\r\n", &h), SW_HTTP_HEAD_COMPLETE);
}

static void partial_heads(void **state) {
  (void)state;
  struct sw_http_head h;
  const char *full = "GET /health HTTP/1.1\r\nHost: x\r\n\r\n";
  for (size_t n = 0; n < strlen(full); n++)
    assert_int_equal(sw_http_head_parse(full, n, MAX, &h), SW_HTTP_HEAD_PARTIAL);
  assert_int_equal(sw_http_head_parse(full, strlen(full), MAX, &h), SW_HTTP_HEAD_COMPLETE);
}

static void expect_bad(const char *s, size_t len, int status) {
  struct sw_http_head h;
  int rc = sw_http_head_parse(s, len, MAX, &h);
  if (rc != SW_HTTP_HEAD_BAD || h.status != status)
    fail_msg("\"%.*s\": rc %d status %d, want status %d", (int)len, s, rc, h.status, status);
  assert_non_null(h.why);
}

static void refused_at_once(void **state) {
  (void)state;
  static const char *const bad[] = {
      "GARBAGE\r\n\r\n",
      "GET /health\r\n\r\n",
      "GET health HTTP/1.1\r\n\r\n",
      "GET /health HTTP/2.0\r\n\r\n",
      "GET /health HTTP/1.1 \r\n\r\n",
      "GET  /health HTTP/1.1\r\n\r\n",
      "G(T /health HTTP/1.1\r\n\r\n",
      "\r\nGET / HTTP/1.1\r\n\r\n",
      "GET / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
      "GET / HTTP/1.1\r\nContent-Length: +1\r\n\r\n",
      "GET / HTTP/1.1\r\nContent-Length: 1 2\r\n\r\n",
      "GET / HTTP/1.1\r\nContent-Length:\r\n\r\n",
      "GET / HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n",
      "GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: x\r\n\tfolded\r\n\r\n",
      "GET / HTTP/1.1\r\nno colon here\r\n\r\n",
      "GET / HTTP/1.1\r\n: empty name\r\n\r\n",
      "GET / HTTP/1.1\r\nHost : x\r\n\r\n",
      "GET / HTTP/1.1\r\nX: a\rb\r\n\r\n",
      "GET / HTTP/1.1\r\nX: a\x01\r\n\r\n",
      "GET / HTTP/1.1\r\nX: a\x7f\r\n\r\n",
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) expect_bad(bad[i], strlen(bad[i]), 400);
  /* incomplete heads that are already wrong: no waiting for the head timeout */
  expect_bad("GET / HTTP/1.1\n", 15, 400);               /* bare LF */
  expect_bad("GET / HTTP/1.1\r\nHost: x\n", 24, 400);    /* bare LF in a header */
  expect_bad("GET /\0 HTTP", 11, 400);                   /* NUL */
  expect_bad("GET / HTTP/1.1\r\nX: \0", 20, 400);        /* NUL in a value */
  expect_bad("GET / HTTP/1.1\r\nHost: x\r\n folded", 33, 400);
}

static void too_large(void **state) {
  (void)state;
  char buf[MAX];
  memcpy(buf, "GET / HTTP/1.1\r\nX: ", 19);
  memset(buf + 19, 'a', sizeof buf - 19);
  expect_bad(buf, sizeof buf, 431);
  struct sw_http_head h;
  assert_int_equal(sw_http_head_parse(buf, sizeof buf - 1, MAX, &h), SW_HTTP_HEAD_PARTIAL);
}

static void reason_phrases(void **state) {
  (void)state;
  static const struct {
    int status;
    const char *reason;
  } k[] = {{101, "Switching Protocols"}, {200, "OK"}, {202, "Accepted"},
           {400, "Bad Request"}, {404, "Not Found"}, {405, "Method Not Allowed"},
           {408, "Request Timeout"}, {411, "Length Required"}, {413, "Content Too Large"},
           {415, "Unsupported Media Type"},
           {429, "Too Many Requests"}, {431, "Request Header Fields Too Large"},
           {500, "Internal Server Error"}, {503, "Service Unavailable"}};
  for (size_t i = 0; i < sizeof k / sizeof k[0]; i++)
    assert_string_equal(sw_http_reason(k[i].status), k[i].reason);
  assert_string_equal(sw_http_reason(299), "Unknown");
}

/* Header values are found case-insensitively in a complete head, trimmed, first one wins; the
 * request line is never taken for a header, even when changed in place by the server. */
static void find_headers(void **state) {
  (void)state;
  char req[] = "GET /x?Host:%20evil HTTP/1.1\r\nHost: a.example \r\nX-Empty:\r\n"
               "content-TYPE:\t application/x-www-form-urlencoded; charset=utf-8\t\r\n"
               "Connection: keep-alive, Upgrade\r\nHost: second\r\n\r\nBody: no\r\n";
  struct sw_http_head h;
  assert_int_equal(sw_http_head_parse(req, strlen(req), MAX, &h), SW_HTTP_HEAD_COMPLETE);
  req[3] = 0; /* as the server terminates the method and target */
  req[h.target - req + h.target_len] = 0;
  size_t n = 99;
  const char *v = sw_http_head_find(req, h.head_len, "host", &n);
  assert_non_null(v);
  assert_int_equal(n, 9);
  assert_memory_equal(v, "a.example", 9);
  v = sw_http_head_find(req, h.head_len, "Content-Type", &n);
  assert_non_null(v);
  assert_int_equal(n, strlen("application/x-www-form-urlencoded; charset=utf-8"));
  assert_memory_equal(v, "application/x-www-form-urlencoded; charset=utf-8", n);
  v = sw_http_head_find(req, h.head_len, "X-Empty", &n);
  assert_non_null(v);
  assert_int_equal(n, 0);
  assert_null(sw_http_head_find(req, h.head_len, "Body", &n)); /* after the head */
  assert_null(sw_http_head_find(req, h.head_len, "X", &n));
  assert_null(sw_http_head_find(req, h.head_len, "X-Empty-Not", &n));
  assert_null(sw_http_head_find(req, h.head_len, "GET /x?Host", &n));
  assert_null(sw_http_head_find("GET / HTTP/1.1\r\n\r\n", 18, "Host", &n));
  v = sw_http_head_find(req, h.head_len, "Connection", &n);
  assert_non_null(v);
  assert_true(sw_http_head_has_token(v, n, "upgrade"));
  assert_true(sw_http_head_has_token(v, n, "KEEP-ALIVE"));
  assert_false(sw_http_head_has_token(v, n, "keep"));
  assert_false(sw_http_head_has_token(v, n, "close"));
  assert_true(sw_http_head_has_token(" , websocket ,", 14, "websocket"));
  assert_false(sw_http_head_has_token("websockets", 10, "websocket"));
  assert_false(sw_http_head_has_token("web socket", 10, "websocket"));
  assert_false(sw_http_head_has_token("", 0, "websocket"));
  assert_false(sw_http_head_has_token(", ,", 3, ""));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(complete_heads), cmocka_unit_test(partial_heads),
      cmocka_unit_test(refused_at_once), cmocka_unit_test(too_large),
      cmocka_unit_test(reason_phrases), cmocka_unit_test(find_headers)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
