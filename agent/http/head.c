/* head.c - the request head parser (see http/head.h for what it accepts and why). */
#include "head.h"

#include <string.h>
#include <strings.h>

const char *sw_http_reason(int status) {
  switch (status) {
  case 101: return "Switching Protocols";
  case 200: return "OK";
  case 202: return "Accepted";
  case 400: return "Bad Request";
  case 404: return "Not Found";
  case 405: return "Method Not Allowed";
  case 408: return "Request Timeout";
  case 411: return "Length Required";
  case 413: return "Content Too Large";
  case 415: return "Unsupported Media Type";
  case 429: return "Too Many Requests";
  case 431: return "Request Header Fields Too Large";
  case 500: return "Internal Server Error";
  case 503: return "Service Unavailable";
  default: return "Unknown";
  }
}

/* RFC 9110 tchar. */
static int is_tchar(unsigned char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         (c && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static int bad(struct sw_http_head *h, int status, const char *why) {
  h->status = status;
  h->why = why;
  return SW_HTTP_HEAD_BAD;
}

/* METHOD SP TARGET SP HTTP/1.x (without the CRLF). */
static int request_line(const char *s, size_t n, struct sw_http_head *h) {
  size_t i = 0;
  while (i < n && is_tchar((unsigned char)s[i])) i++;
  if (i == 0 || i >= n || s[i] != ' ') return bad(h, 400, "malformed request line");
  h->method = s;
  h->method_len = i++;
  size_t t = i;
  while (i < n && (unsigned char)s[i] > 0x20 && (unsigned char)s[i] < 0x7f) i++;
  if (i == t || i >= n || s[i] != ' ' || s[t] != '/')
    return bad(h, 400, "malformed request target");
  h->target = s + t;
  h->target_len = i - t;
  i++;
  if (n - i != 8 || memcmp(s + i, "HTTP/1.", 7) || s[i + 7] < '0' || s[i + 7] > '9')
    return bad(h, 400, "not HTTP/1.x");
  return 0;
}

/* Digits only, at most 18 (no overflow), surrounding whitespace already trimmed. */
static int content_length(const char *v, size_t n, struct sw_http_head *h) {
  if (n == 0 || n > 18) return bad(h, 400, "bad Content-Length");
  uint64_t x = 0;
  for (size_t i = 0; i < n; i++) {
    if (v[i] < '0' || v[i] > '9') return bad(h, 400, "bad Content-Length");
    x = x * 10 + (uint64_t)(v[i] - '0');
  }
  if (h->has_length && h->content_length != x) return bad(h, 400, "conflicting Content-Length");
  h->has_length = 1;
  h->content_length = x;
  return 0;
}

/* NAME ":" OWS VALUE OWS (without the CRLF); the bytes are already checked for controls. */
static int header_line(const char *s, size_t n, struct sw_http_head *h) {
  if (s[0] == ' ' || s[0] == '\t') return bad(h, 400, "folded header line (obs-fold)");
  size_t i = 0;
  while (i < n && is_tchar((unsigned char)s[i])) i++;
  if (i == 0 || i >= n || s[i] != ':') return bad(h, 400, "malformed header line");
  size_t name_len = i++;
  while (i < n && (s[i] == ' ' || s[i] == '\t')) i++;
  size_t end = n;
  while (end > i && (s[end - 1] == ' ' || s[end - 1] == '\t')) end--;
  if (name_len == 14 && !strncasecmp(s, "content-length", 14))
    return content_length(s + i, end - i, h);
  if (name_len == 17 && !strncasecmp(s, "transfer-encoding", 17)) h->transfer_encoding = 1;
  return 0;
}

int sw_http_head_parse(const char *buf, size_t len, size_t max, struct sw_http_head *h) {
  memset(h, 0, sizeof *h);
  size_t pos = 0;
  for (int line = 0;; line++) {
    const char *lf = memchr(buf + pos, '\n', len - pos);
    size_t end = lf ? (size_t)(lf - buf) : len; /* the line is [pos, end) */
    for (size_t i = pos; i < end; i++) {
      unsigned char c = (unsigned char)buf[i];
      if (c == '\r' && i + 1 < end) return bad(h, 400, "CR not followed by LF");
      if (c == 0) return bad(h, 400, "NUL byte in the request head");
      if ((c < 0x20 && c != '\t' && c != '\r') || c == 0x7f)
        return bad(h, 400, "control byte in the request head");
    }
    if (!lf) return len >= max ? bad(h, 431, "request head too large") : SW_HTTP_HEAD_PARTIAL;
    if (end == pos || buf[end - 1] != '\r') return bad(h, 400, "bare LF line ending");
    size_t n = end - 1 - pos;
    int rc = 0;
    if (line == 0) {
      rc = request_line(buf + pos, n, h);
    } else if (n == 0) {
      h->head_len = end + 1;
      return h->head_len > max ? bad(h, 431, "request head too large") : SW_HTTP_HEAD_COMPLETE;
    } else {
      rc = header_line(buf + pos, n, h);
    }
    if (rc) return rc;
    pos = end + 1;
  }
}

const char *sw_http_head_find(const char *head, size_t len, const char *name, size_t *vlen) {
  size_t nlen = strlen(name);
  const char *end = head + len;
  const char *p = memchr(head, '\n', len); /* the request line ends here */
  *vlen = 0;
  while (p && ++p < end) {
    const char *lf = memchr(p, '\n', (size_t)(end - p));
    const char *eol = lf ? lf : end;
    if (eol > p && eol[-1] == '\r') eol--;
    if (eol == p) return NULL; /* the blank line: end of the head */
    const char *colon = memchr(p, ':', (size_t)(eol - p));
    if (colon && (size_t)(colon - p) == nlen && !strncasecmp(p, name, nlen)) {
      const char *v = colon + 1;
      while (v < eol && (*v == ' ' || *v == '\t')) v++;
      while (eol > v && (eol[-1] == ' ' || eol[-1] == '\t')) eol--;
      *vlen = (size_t)(eol - v);
      return v;
    }
    p = lf;
  }
  return NULL;
}

int sw_http_head_has_token(const char *v, size_t n, const char *token) {
  size_t tlen = strlen(token), i = 0;
  while (i < n) {
    while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ',')) i++;
    size_t s = i;
    while (i < n && v[i] != ',') i++;
    size_t e = i;
    while (e > s && (v[e - 1] == ' ' || v[e - 1] == '\t')) e--;
    if (e - s == tlen && tlen && !strncasecmp(v + s, token, tlen)) return 1;
  }
  return 0;
}
