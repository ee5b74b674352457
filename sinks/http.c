/* http.c - curl multi on the libuv loop, retries and auth for every network sink; see http.h.
 *
 * Handle ownership: the transport owns one uv_timer (curl's timeout), one uv_poll per socket
 * curl asks to watch, and each request owns a uv_timer for its backoff. `open_handles` counts
 * the handles not yet closed; after sw_http_destroy the transport frees itself in the close
 * callback that brings it to zero. */
#include "http.h"

#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>

#include "../common/log.h"

#define RESP_MAX (64u << 20) /* an Elasticsearch bulk answer for a big batch fits easily */

const double sw_http_latency_bounds[SW_HTTP_LATENCY_BUCKETS] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                                                0.5,   1,    2.5,   5,    10};

struct sw_http {
  uv_loop_t *loop;
  CURLM *multi;
  uv_timer_t timer;
  struct sw_http_req *reqs; /* every live request, doubly linked */
  struct sock_ctx *socks;   /* every poll handle not yet closing */
  size_t nreqs;
  unsigned open_handles;
  int destroying;
};

struct sock_ctx {
  uv_poll_t poll;
  curl_socket_t fd;
  struct sw_http *t;
  struct sock_ctx *prev, *next;
};

enum req_state { R_NEW, R_SENDING, R_BACKOFF, R_FINISHED };

struct sw_http_req {
  struct sw_http *t;
  struct sw_http_req *prev, *next;
  struct sw_http_req_opts o;
  enum req_state state;
  char *url;
  struct curl_slist *headers;
  const void *body;
  size_t len;
  CURL *easy;
  uv_timer_t backoff;
  unsigned attempts;
  struct sw_buf resp;
  char errbuf[CURL_ERROR_SIZE];
  char etag[160];
};

uint64_t sw_http_backoff_ms(uint64_t min_ms, uint64_t max_ms, unsigned n, uint32_t rnd) {
  if (min_ms == 0) min_ms = 1;
  if (max_ms < min_ms) max_ms = min_ms;
  uint64_t cap = min_ms;
  for (unsigned i = 1; i < n && cap < max_ms; i++) cap *= 2;
  if (cap > max_ms) cap = max_ms;
  /* Full jitter, but never below half of min so a flapping server is not hammered. */
  uint64_t lo = min_ms / 2;
  return lo + (uint64_t)((double)(cap - lo) * ((double)rnd / 4294967296.0));
}

static uint32_t rand32(void) {
  uint32_t r = 0;
  if (getrandom(&r, sizeof r, GRND_NONBLOCK) != (ssize_t)sizeof r) r = (uint32_t)uv_hrtime();
  return r;
}

/* ---- curl <-> libuv glue ---- */

static void poll_closed(uv_handle_t *h);

static void check_done(struct sw_http *t);

static void on_poll(uv_poll_t *h, int status, int events) {
  struct sock_ctx *sc = h->data;
  int flags = 0, running;
  if (status < 0) flags = CURL_CSELECT_ERR;
  if (events & UV_READABLE) flags |= CURL_CSELECT_IN;
  if (events & UV_WRITABLE) flags |= CURL_CSELECT_OUT;
  struct sw_http *t = sc->t;
  curl_multi_socket_action(t->multi, sc->fd, flags, &running);
  check_done(t);
}

static int sock_cb(CURL *e, curl_socket_t s, int what, void *userp, void *socketp) {
  (void)e;
  struct sw_http *t = userp;
  struct sock_ctx *sc = socketp;
  if (what == CURL_POLL_REMOVE) {
    if (sc && !uv_is_closing((uv_handle_t *)&sc->poll)) {
      uv_poll_stop(&sc->poll);
      if (t->multi) curl_multi_assign(t->multi, s, NULL);
      uv_close((uv_handle_t *)&sc->poll, poll_closed);
    }
    return 0;
  }
  if (!sc) {
    sc = calloc(1, sizeof *sc);
    if (!sc) return -1;
    sc->fd = s;
    sc->t = t;
    if (uv_poll_init_socket(t->loop, &sc->poll, s)) {
      free(sc);
      return -1;
    }
    sc->poll.data = sc;
    t->open_handles++;
    sc->next = t->socks;
    if (t->socks) t->socks->prev = sc;
    t->socks = sc;
    curl_multi_assign(t->multi, s, sc);
  }
  int ev = 0;
  if (what & CURL_POLL_IN) ev |= UV_READABLE;
  if (what & CURL_POLL_OUT) ev |= UV_WRITABLE;
  uv_poll_start(&sc->poll, ev, on_poll);
  return 0;
}

static void on_curl_timeout(uv_timer_t *h) {
  struct sw_http *t = h->data;
  int running;
  curl_multi_socket_action(t->multi, CURL_SOCKET_TIMEOUT, 0, &running);
  check_done(t);
}

static int timer_cb(CURLM *m, long timeout_ms, void *userp) {
  (void)m;
  struct sw_http *t = userp;
  if (timeout_ms < 0)
    uv_timer_stop(&t->timer);
  else /* 0 means "now": still go through the loop, curl forbids re-entry from here */
    uv_timer_start(&t->timer, on_curl_timeout, (uint64_t)timeout_ms, 0);
  return 0;
}

static void release(struct sw_http *t) {
  if (--t->open_handles == 0 && t->destroying) free(t);
}

static void poll_closed(uv_handle_t *h) {
  struct sock_ctx *sc = h->data;
  struct sw_http *t = sc->t;
  if (sc->prev) sc->prev->next = sc->next; else t->socks = sc->next;
  if (sc->next) sc->next->prev = sc->prev;
  free(sc);
  release(t);
}

static void req_closed(uv_handle_t *h) {
  struct sw_http_req *r = h->data;
  struct sw_http *t = r->t;
  sw_buf_free(&r->resp);
  free(r->url);
  curl_slist_free_all(r->headers);
  free(r);
  release(t);
}

static void timer_closed(uv_handle_t *h) { release(h->data); }

/* ---- requests ---- */

static void unlink_req(struct sw_http_req *r) {
  struct sw_http *t = r->t;
  if (r->prev) r->prev->next = r->next; else t->reqs = r->next;
  if (r->next) r->next->prev = r->prev;
  r->prev = r->next = NULL;
  t->nreqs--;
}

static void finish(struct sw_http_req *r, const struct sw_http_resp *resp) {
  r->state = R_FINISHED;
  unlink_req(r);
  if (r->easy) {
    curl_multi_remove_handle(r->t->multi, r->easy);
    curl_easy_cleanup(r->easy);
    r->easy = NULL;
  }
  uv_timer_stop(&r->backoff);
  r->o.done(r, resp, r->o.arg);
  uv_close((uv_handle_t *)&r->backoff, req_closed);
}

static size_t on_body(char *p, size_t size, size_t n, void *arg) {
  struct sw_http_req *r = arg;
  if (sw_buf_append(&r->resp, p, size * n)) return 0; /* too big: curl fails the transfer */
  return size * n;
}

static size_t on_header(char *p, size_t size, size_t n, void *arg) {
  struct sw_http_req *r = arg;
  size_t len = size * n;
  if (len > 5 && !strncasecmp(p, "etag:", 5)) {
    size_t a = 5, z = len;
    while (a < z && (p[a] == ' ' || p[a] == '\t')) a++;
    while (z > a && (p[z - 1] == '\r' || p[z - 1] == '\n' || p[z - 1] == ' ')) z--;
    snprintf(r->etag, sizeof r->etag, "%.*s", (int)(z - a), p + a);
  }
  return len;
}

static int start_attempt(struct sw_http_req *r) {
  const struct sw_http_target *tg = r->o.target;
  CURL *e = curl_easy_init();
  if (!e) return SW_ENOMEM;
  sw_buf_reset(&r->resp);
  r->errbuf[0] = 0;
  r->etag[0] = 0;
  curl_easy_setopt(e, CURLOPT_URL, r->url);
  curl_easy_setopt(e, CURLOPT_PRIVATE, r);
  curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r->errbuf);
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)tg->connect_timeout_ms);
  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)tg->timeout_ms);
  if (!strcmp(r->o.method, "GET")) { /* a question (Loki's query_range): no body */
    curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
  } else {
    curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, r->o.method);
    curl_easy_setopt(e, CURLOPT_POST, 1L);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, r->body);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->len);
  }
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, r->headers);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
  curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(e, CURLOPT_HEADERDATA, r);
  if (tg->ca_file) curl_easy_setopt(e, CURLOPT_CAINFO, tg->ca_file);
  if (tg->insecure) {
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
  }
  if (tg->username) {
    curl_easy_setopt(e, CURLOPT_USERNAME, tg->username);
    curl_easy_setopt(e, CURLOPT_PASSWORD, tg->password ? tg->password : "");
    if (tg->aws_sigv4) {
      curl_easy_setopt(e, CURLOPT_HTTPAUTH, CURLAUTH_AWS_SIGV4);
      curl_easy_setopt(e, CURLOPT_AWS_SIGV4, tg->aws_sigv4);
    } else {
      curl_easy_setopt(e, CURLOPT_HTTPAUTH, CURLAUTH_BASIC);
    }
  }
  if (curl_multi_add_handle(r->t->multi, e) != CURLM_OK) {
    curl_easy_cleanup(e);
    return SW_EIO;
  }
  r->easy = e;
  r->attempts++;
  r->state = R_SENDING;
  r->o.target->stats.requests++;
  return SW_OK;
}

static void on_backoff(uv_timer_t *h) {
  struct sw_http_req *r = h->data;
  if (start_attempt(r)) {
    /* Out of memory or curl refused: try again later rather than lose the batch. */
    uv_timer_start(&r->backoff, on_backoff, 1000, 0);
    return;
  }
}

static void retry_later(struct sw_http_req *r, const struct sw_http_resp *resp) {
  struct sw_http_target *tg = r->o.target;
  uint64_t wait = sw_http_backoff_ms(tg->backoff_min_ms, tg->backoff_max_ms, r->attempts, rand32());
  if (resp->retry_after_ms > wait) wait = resp->retry_after_ms;
  if (wait > 10 * 60 * 1000) wait = 10 * 60 * 1000; /* a broken Retry-After must not park us */
  tg->stats.retries++;
  r->state = R_BACKOFF;
  if (r->o.on_retry) r->o.on_retry(r, resp, r->o.arg);
  if (resp->status == 0)
    SW_LOG(SW_L_WARN, "sink", "%s: request failed: %s; retry %u in %llu ms", tg->name,
           resp->curl_error, r->attempts, (unsigned long long)wait);
  else if (resp->status == 401 || resp->status == 403)
    SW_LOG(SW_L_ERROR, "sink", "%s: HTTP %ld (check the credentials); retry %u in %llu ms", tg->name,
           resp->status, r->attempts, (unsigned long long)wait);
  else
    SW_LOG(SW_L_WARN, "sink", "%s: HTTP %ld; retry %u in %llu ms", tg->name, resp->status,
           r->attempts, (unsigned long long)wait);
  uv_timer_start(&r->backoff, on_backoff, wait, 0);
}

static int transient(long status) {
  return status == 0 || status == 401 || status == 403 || status == 408 || status == 429 ||
         status >= 500;
}

static void count(struct sw_http_target *tg, long status, double secs) {
  struct sw_http_stats *s = &tg->stats;
  if (status == 0) s->network_errors++;
  else if (status < 300) s->responses_2xx++;
  else if (status < 500) s->responses_4xx++;
  else s->responses_5xx++;
  size_t b = 0;
  while (b < SW_HTTP_LATENCY_BUCKETS && secs > sw_http_latency_bounds[b]) b++;
  s->latency[b]++;
  s->latency_sum += secs;
}

static void on_finished(struct sw_http_req *r, CURLcode res) {
  long status = 0;
  curl_off_t retry_after = 0;
  double secs = 0;
  curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
  curl_easy_getinfo(r->easy, CURLINFO_RETRY_AFTER, &retry_after);
  curl_easy_getinfo(r->easy, CURLINFO_TOTAL_TIME, &secs);
  curl_multi_remove_handle(r->t->multi, r->easy);
  curl_easy_cleanup(r->easy);
  r->easy = NULL;
  if (res != CURLE_OK) status = 0;
  if (sw_buf_putc(&r->resp, 0) == SW_OK) r->resp.len--;
  struct sw_http_resp resp = {
      .status = status,
      .body = r->resp.data ? r->resp.data : "",
      .body_len = r->resp.len,
      .curl_error = res == CURLE_OK ? "" : (r->errbuf[0] ? r->errbuf : curl_easy_strerror(res)),
      .retry_after_ms = retry_after > 0 ? (uint64_t)retry_after * 1000 : 0,
      .etag = r->etag,
      .seconds = secs,
  };
  count(r->o.target, status, secs);
  if (transient(status) && !(r->o.max_attempts && r->attempts >= r->o.max_attempts)) {
    retry_later(r, &resp);
    return;
  }
  if (r->o.on_response(r, &resp, r->o.arg) == SW_HTTP_RETRY) {
    retry_later(r, &resp);
    return;
  }
  finish(r, &resp);
}

static void check_done(struct sw_http *t) {
  CURLMsg *m;
  int left;
  while ((m = curl_multi_info_read(t->multi, &left))) {
    if (m->msg != CURLMSG_DONE) continue;
    struct sw_http_req *r = NULL;
    curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&r);
    on_finished(r, m->data.result);
  }
}

struct sw_http_req *sw_http_req_new(struct sw_http *t, const struct sw_http_req_opts *o,
                                    const char *url, const void *body, size_t len) {
  struct sw_http_req *r = calloc(1, sizeof *r);
  if (!r) return NULL;
  r->t = t;
  r->o = *o;
  r->body = body;
  r->len = len;
  sw_buf_init(&r->resp, RESP_MAX);
  r->url = strdup(url);
  char h[128];
  int ok = r->url != NULL;
  /* No "Expect: 100-continue": it costs a round trip (or a 1 s wait) on every big POST. Not
   * with SigV4: curl 7.88 would sign the suppressed header, and the server would not see it. */
  if (!o->target->aws_sigv4) ok = ok && !sw_http_req_header(r, "Expect:");
  if (ok && o->content_type) {
    snprintf(h, sizeof h, "Content-Type: %s", o->content_type);
    ok = !sw_http_req_header(r, h);
  }
  if (ok && o->content_encoding) {
    snprintf(h, sizeof h, "Content-Encoding: %s", o->content_encoding);
    ok = !sw_http_req_header(r, h);
  }
  if (ok && o->target->auth_header) ok = !sw_http_req_header(r, o->target->auth_header);
  if (!ok) {
    sw_http_req_free(r);
    return NULL;
  }
  return r;
}

void sw_http_req_free(struct sw_http_req *r) {
  sw_buf_free(&r->resp);
  free(r->url);
  curl_slist_free_all(r->headers);
  free(r);
}

int sw_http_req_header(struct sw_http_req *r, const char *header) {
  struct curl_slist *l = curl_slist_append(r->headers, header);
  if (!l) return SW_ENOMEM;
  r->headers = l;
  return SW_OK;
}

void sw_http_req_set_body(struct sw_http_req *r, const void *body, size_t len) {
  r->body = body;
  r->len = len;
}

unsigned sw_http_req_attempts(const struct sw_http_req *r) { return r->attempts; }

int sw_http_send(struct sw_http_req *r) {
  struct sw_http *t = r->t;
  int rc = t->destroying ? SW_EINVAL : start_attempt(r);
  if (rc) {
    sw_http_req_free(r);
    return rc;
  }
  uv_timer_init(t->loop, &r->backoff);
  r->backoff.data = r;
  t->open_handles++;
  r->next = t->reqs;
  if (t->reqs) t->reqs->prev = r;
  t->reqs = r;
  t->nreqs++;
  return SW_OK;
}

void sw_http_cancel_all(struct sw_http *t) {
  struct sw_http_resp resp = {.status = -1, .body = "", .curl_error = "cancelled"};
  while (t->reqs) finish(t->reqs, &resp);
}

size_t sw_http_inflight(const struct sw_http *t) { return t->nreqs; }

static void global_init(void) { curl_global_init(CURL_GLOBAL_DEFAULT); }

void sw_http_global_init(void) {
  static uv_once_t once = UV_ONCE_INIT;
  uv_once(&once, global_init);
}

int sw_http_create(uv_loop_t *loop, struct sw_http **out) {
  sw_http_global_init();
  *out = NULL;
  struct sw_http *t = calloc(1, sizeof *t);
  if (!t) return SW_ENOMEM;
  t->loop = loop;
  t->multi = curl_multi_init();
  if (!t->multi) {
    free(t);
    return SW_ENOMEM;
  }
  curl_multi_setopt(t->multi, CURLMOPT_SOCKETFUNCTION, sock_cb);
  curl_multi_setopt(t->multi, CURLMOPT_SOCKETDATA, t);
  curl_multi_setopt(t->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
  curl_multi_setopt(t->multi, CURLMOPT_TIMERDATA, t);
  curl_multi_setopt(t->multi, CURLMOPT_MAX_HOST_CONNECTIONS, 16L);
  uv_timer_init(loop, &t->timer);
  t->timer.data = t;
  t->open_handles = 1;
  *out = t;
  return SW_OK;
}

void sw_http_destroy(struct sw_http *t) {
  if (!t) return;
  sw_http_cancel_all(t);
  t->destroying = 1;
  uv_timer_stop(&t->timer);
  /* Closes the cached connections; curl normally tells sock_cb to drop their polls, and any
   * it did not mention are closed below. */
  CURLM *m = t->multi;
  t->multi = NULL;
  curl_multi_cleanup(m);
  for (struct sock_ctx *sc = t->socks; sc; sc = sc->next)
    if (!uv_is_closing((uv_handle_t *)&sc->poll)) uv_close((uv_handle_t *)&sc->poll, poll_closed);
  uv_close((uv_handle_t *)&t->timer, timer_closed);
}
