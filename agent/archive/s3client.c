#include "s3client.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../../common/sha256.h"
#include "../../sinks/http.h"
#include "../../sinks/s3.h"

#define EMPTY_SHA "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define ATTEMPTS 4

struct sw_s3c {
  const struct sw_sink_conf *c;
  char base[2048];
  char sigv4[160];
};

struct sw_s3c_conn {
  struct sw_s3c *s;
  CURL *e;
};

int sw_s3c_new(const struct sw_sink_conf *c, struct sw_s3c **out, char *err, size_t errlen) {
  sw_http_global_init();
  struct sw_s3c *s = calloc(1, sizeof *s);
  if (!s) return SW_ENOMEM;
  s->c = c;
  if (sw_s3_base_url(c, s->base, sizeof s->base)) {
    snprintf(err, errlen, "sink %s: endpoint and bucket make too long a URL", c->name);
    free(s);
    return SW_EINVAL;
  }
  snprintf(s->sigv4, sizeof s->sigv4, "aws:amz:%s:s3", c->region ? c->region : "us-east-1");
  *out = s;
  return SW_OK;
}

void sw_s3c_free(struct sw_s3c *s) {
  free(s);
}

struct sw_s3c_conn *sw_s3c_conn_new(struct sw_s3c *s) {
  struct sw_s3c_conn *k = calloc(1, sizeof *k);
  if (!k) return NULL;
  k->s = s;
  if (!(k->e = curl_easy_init())) {
    free(k);
    return NULL;
  }
  return k;
}

void sw_s3c_conn_free(struct sw_s3c_conn *k) {
  if (!k) return;
  curl_easy_cleanup(k->e);
  free(k);
}

static size_t on_body(char *p, size_t sz, size_t n, void *arg) {
  return sw_buf_append(arg, p, sz * n) ? 0 : sz * n;
}

/* A signed request (GET without body, PUT with one) with its answer in out: the HTTP status,
 * or -1 with err set after the retries. */
static long request(struct sw_s3c_conn *k, const char *url, const void *body, size_t len,
                    const char *ctype, struct sw_buf *out, char *err, size_t errlen) {
  const struct sw_sink_conf *c = k->s->c;
  long status = -1;
  /* S3 wants the payload's hash (curl 7.88 does not add it), the session token if any, and for
   * a PUT its type. */
  char hex[65] = EMPTY_SHA, h[2][160];
  if (body) sw_sha256_hex(body, len, hex);
  snprintf(h[0], sizeof h[0], "x-amz-content-sha256: %s", hex);
  snprintf(h[1], sizeof h[1], "Content-Type: %s", ctype ? ctype : "application/octet-stream");
  struct curl_slist *hdrs = NULL, *l = NULL;
  for (int i = 0; i < (body ? 2 : 1); i++)
    if (!(l = curl_slist_append(hdrs, h[i]))) break;
    else hdrs = l;
  char *tok = NULL;
  if (l && c->session_token) {
    size_t n = strlen(c->session_token) + 32;
    if ((tok = malloc(n))) snprintf(tok, n, "x-amz-security-token: %s", c->session_token);
    if (!tok || !(l = curl_slist_append(hdrs, tok))) l = NULL;
    free(tok);
  }
  if (!l) {
    curl_slist_free_all(hdrs);
    snprintf(err, errlen, "out of memory");
    return -1;
  }
  for (int attempt = 0; attempt < ATTEMPTS; attempt++) {
    if (attempt) {
      struct timespec ts = {0, 200000000L << (attempt - 1)}; /* 0.2, 0.4, 0.8 s */
      nanosleep(&ts, NULL);
    }
    sw_buf_reset(out);
    CURL *e = k->e;
    curl_easy_reset(e);
    curl_easy_setopt(e, CURLOPT_URL, url);
    if (body) {
      curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, "PUT");
      curl_easy_setopt(e, CURLOPT_POST, 1L);
      curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
      curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    } else {
      curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
    }
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, out);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)(c->connect_timeout_ms ? c->connect_timeout_ms : 10000));
    /* An object may be large: give up on a stalled transfer, not on a long one. */
    curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME, (long)((c->timeout_ms ? c->timeout_ms : 30000) / 1000 + 1));
    if (c->tls.ca_file) curl_easy_setopt(e, CURLOPT_CAINFO, c->tls.ca_file);
    if (c->tls.insecure_skip_verify) {
      curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
      curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    if (c->access_key) {
      curl_easy_setopt(e, CURLOPT_USERNAME, c->access_key);
      curl_easy_setopt(e, CURLOPT_PASSWORD, c->secret_key ? c->secret_key : "");
      curl_easy_setopt(e, CURLOPT_HTTPAUTH, CURLAUTH_AWS_SIGV4);
      curl_easy_setopt(e, CURLOPT_AWS_SIGV4, k->s->sigv4);
    }
    CURLcode cr = curl_easy_perform(e);
    if (cr != CURLE_OK) {
      snprintf(err, errlen, "%s %s: %s", body ? "PUT" : "GET", url, curl_easy_strerror(cr));
      status = -1;
      continue;
    }
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    if (status == 429 || status >= 500) {
      snprintf(err, errlen, "%s %s: HTTP %ld", body ? "PUT" : "GET", url, status);
      status = -1;
      continue;
    }
    break;
  }
  curl_slist_free_all(hdrs);
  return status;
}

/* S3's XML error: "HTTP 403 AccessDenied: message". */
static void explain(const char *what, long status, const struct sw_buf *b, char *err, size_t errlen) {
  char code[128] = "", msg[256] = "";
  const char *a = b->len ? memmem(b->data, b->len, "<Code>", 6) : NULL;
  if (a) snprintf(code, sizeof code, "%.*s", (int)strcspn(a + 6, "<"), a + 6);
  a = b->len ? memmem(b->data, b->len, "<Message>", 9) : NULL;
  if (a) snprintf(msg, sizeof msg, ": %.*s", (int)strcspn(a + 9, "<"), a + 9);
  snprintf(err, errlen, "%s: HTTP %ld %s%s", what, status, code, msg);
}

static int object_request(struct sw_s3c_conn *k, const char *key, const void *body, size_t len,
                          const char *ctype, struct sw_buf *out, char *err, size_t errlen) {
  struct sw_buf url;
  sw_buf_init(&url, 1 << 16);
  int rc = sw_buf_printf(&url, "%s/", k->s->base);
  if (!rc) rc = sw_s3_put_escaped(&url, key, 1);
  if (!rc) rc = sw_buf_putc(&url, 0);
  if (rc) {
    sw_buf_free(&url);
    return rc;
  }
  long st = request(k, url.data, body, len, ctype, out, err, errlen);
  if (st == 404) rc = SW_ENOTFOUND;
  else if (st < 200 || st > 299) rc = SW_EIO;
  if (st >= 0 && rc) {
    char what[1200];
    snprintf(what, sizeof what, "%s %s", body ? "PUT" : "GET", key);
    explain(what, st, out, err, errlen);
  }
  sw_buf_free(&url);
  return rc;
}

int sw_s3c_get(struct sw_s3c_conn *k, const char *key, struct sw_buf *out, char *err, size_t errlen) {
  return object_request(k, key, NULL, 0, NULL, out, err, errlen);
}

int sw_s3c_put(struct sw_s3c_conn *k, const char *key, const void *body, size_t len, const char *ctype,
               char *err, size_t errlen) {
  struct sw_buf answer;
  sw_buf_init(&answer, 1 << 20);
  int rc = object_request(k, key, body ? body : "", len, ctype, &answer, err, errlen);
  sw_buf_free(&answer);
  return rc;
}

/* XML text with its five entities and numeric references decoded. */
static int xml_decode(const char *s, size_t n, struct sw_buf *out) {
  int rc = SW_OK;
  for (size_t i = 0; i < n && !rc; i++) {
    char ch = s[i];
    if (ch == '&') {
      static const struct { const char *e; char c; } ents[] = {
          {"&amp;", '&'}, {"&lt;", '<'}, {"&gt;", '>'}, {"&quot;", '"'}, {"&apos;", '\''}};
      int done = 0;
      for (size_t j = 0; j < 5 && !done; j++) {
        size_t el = strlen(ents[j].e);
        if (i + el <= n && !memcmp(s + i, ents[j].e, el)) {
          rc = sw_buf_putc(out, ents[j].c);
          i += el - 1;
          done = 1;
        }
      }
      if (!done && i + 2 < n && s[i + 1] == '#') {
        char *end;
        int hex = s[i + 2] == 'x';
        unsigned long v = strtoul(s + i + 2 + hex, &end, hex ? 16 : 10);
        if (*end == ';' && v < 0x80) {
          rc = sw_buf_putc(out, (char)v);
          i = (size_t)(end - s);
          done = 1;
        }
      }
      if (done) continue;
    }
    rc = sw_buf_putc(out, ch);
  }
  return rc ? rc : sw_buf_putc(out, 0);
}

static const char *tag(const char *p, const char *end, const char *name, size_t *len) {
  char open[64], close[64];
  int ol = snprintf(open, sizeof open, "<%s>", name), cl = snprintf(close, sizeof close, "</%s>", name);
  const char *a = memmem(p, (size_t)(end - p), open, (size_t)ol);
  if (!a) return NULL;
  a += ol;
  const char *b = memmem(a, (size_t)(end - a), close, (size_t)cl);
  if (!b) return NULL;
  *len = (size_t)(b - a);
  return a;
}

int sw_s3c_list(struct sw_s3c_conn *k, const char *prefix,
                int (*cb)(void *arg, const char *key, uint64_t size), void *arg, char *err, size_t errlen) {
  struct sw_buf url, body, token, key;
  sw_buf_init(&url, 1 << 16);
  sw_buf_init(&body, SIZE_MAX);
  sw_buf_init(&token, 1 << 16);
  sw_buf_init(&key, 1 << 16);
  int rc = SW_OK;
  for (;;) {
    /* SigV4 signs the query as sent: parameters sorted, values encoded. */
    sw_buf_reset(&url);
    rc = sw_buf_printf(&url, "%s/?", k->s->base);
    if (!rc && token.len) {
      rc = sw_buf_append(&url, "continuation-token=", 19);
      if (!rc) rc = sw_s3_put_escaped(&url, token.data, 0);
      if (!rc) rc = sw_buf_putc(&url, '&');
    }
    if (!rc) rc = sw_buf_append(&url, "list-type=2&prefix=", 19);
    if (!rc) rc = sw_s3_put_escaped(&url, prefix, 0);
    if (!rc) rc = sw_buf_putc(&url, 0);
    if (rc) break;
    long st = request(k, url.data, NULL, 0, NULL, &body, err, errlen);
    if (st < 200 || st > 299) {
      if (st >= 0) explain("listing the bucket", st, &body, err, errlen);
      rc = SW_EIO;
      break;
    }
    const char *p = body.data, *end = body.data + body.len;
    size_t n;
    const char *c;
    while (!rc && (c = tag(p, end, "Contents", &n))) {
      size_t kl = 0, sl = 0;
      const char *kv = tag(c, c + n, "Key", &kl), *sv = tag(c, c + n, "Size", &sl);
      p = c + n;
      if (!kv) continue;
      sw_buf_reset(&key);
      rc = xml_decode(kv, kl, &key);
      if (!rc) rc = cb(arg, key.data, sv ? strtoull(sv, NULL, 10) : 0);
    }
    if (rc) break;
    size_t tl = 0, tr = 0;
    const char *tv = tag(body.data, end, "NextContinuationToken", &tl);
    const char *trunc = tag(body.data, end, "IsTruncated", &tr);
    if (!trunc || tr != 4 || memcmp(trunc, "true", 4) || !tv) break;
    sw_buf_reset(&token);
    if ((rc = xml_decode(tv, tl, &token))) break;
  }
  sw_buf_free(&url);
  sw_buf_free(&body);
  sw_buf_free(&token);
  sw_buf_free(&key);
  return rc;
}
