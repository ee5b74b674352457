/* head.h - the request head parser of the control server (agent/http/httpd.c) and the reason
 * phrases it answers with. Pure: bytes in, a verdict out; no I/O, no allocation, no globals,
 * so it is unit-tested (tests/unit/test_httphead.c) and fuzzed (tests/fuzz/fuzz_httphead.c).
 *
 * What it accepts is a strict subset of RFC 9112, because the only clients are probes,
 * Prometheus and people with curl; anything ambiguous is refused at once with 400 instead of
 * being guessed at (or waited on until the head timeout):
 *  - lines end in CRLF; a bare LF, a CR not followed by LF, NUL and other control bytes
 *    (HTAB aside, in values) are errors as soon as they are seen, even in an incomplete head;
 *  - request line: METHOD SP TARGET SP HTTP/1.x, the method a token, the target visible
 *    ASCII starting with '/';
 *  - header lines: a token, ':' right after it, then the value; a line starting with SP or
 *    HTAB (obs-fold) and a line without a colon are errors;
 *  - Content-Length: digits only (no sign, at most 18), repeated only with the same value.
 * A head that is not complete within `max` bytes is 431.
 * Header values are looked up afterwards in the complete head (sw_http_head_find).
 */
#ifndef SW_HTTPHEAD_H
#define SW_HTTPHEAD_H

#include <stddef.h>
#include <stdint.h>

struct sw_http_head {
  size_t head_len;            /* bytes up to and including the blank line (when complete) */
  const char *method, *target; /* point into the parsed buffer; not NUL-terminated */
  size_t method_len, target_len;
  int has_length;             /* a Content-Length header was present */
  uint64_t content_length;
  int transfer_encoding;      /* a Transfer-Encoding header was present */
  int status;                 /* on SW_HTTP_HEAD_BAD: 400 or 431 */
  const char *why;            /* on SW_HTTP_HEAD_BAD: a static explanation */
};

enum {
  SW_HTTP_HEAD_BAD = -1,     /* refuse with out->status */
  SW_HTTP_HEAD_PARTIAL = 0,  /* valid so far: read more */
  SW_HTTP_HEAD_COMPLETE = 1, /* out describes the head; bytes after head_len are not looked at */
};

/* Parses buf[0..len) (need not be NUL-terminated). out is written in every case. */
int sw_http_head_parse(const char *buf, size_t len, size_t max, struct sw_http_head *out);

/* The value of the first header line `name` (case-insensitive) in head[0..len), a head that
 * sw_http_head_parse found complete (len its head_len), with the blanks around it trimmed; NULL
 * if there is none. Not NUL-terminated: *vlen bytes (the rest of the line follows). The request
 * line is skipped without being looked at, so its bytes may have been changed in place. */
const char *sw_http_head_find(const char *head, size_t len, const char *name, size_t *vlen);

/* Whether a comma-separated header value v[0..n) ("keep-alive, Upgrade") has `token` as one
 * of its elements, compared case-insensitively, blanks around elements ignored. */
int sw_http_head_has_token(const char *v, size_t n, const char *token);

/* The reason phrase of a status code ("Accepted" for 202); "Unknown" for codes the server
 * never sends. Never NULL. */
const char *sw_http_reason(int status);

#endif
