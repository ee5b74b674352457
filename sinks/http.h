/* http.h - the one HTTP transport of the network sinks (Loki, Elasticsearch, S3).
 *
 * A libcurl multi handle driven by the agent's libuv loop, as in curl's docs/examples/multi-uv.c:
 * curl's socket callback maps to uv_poll handles, its timer callback to a uv_timer, and finished
 * transfers are drained with curl_multi_info_read. Connections are kept alive and reused from the
 * multi handle's connection cache. Everything here runs on the loop thread.
 *
 * Retries live here, once, for every sink. A request's life:
 *
 *   SENDING -(network error, 408, 429, 5xx, 401, 403)-> BACKOFF -(timer)-> SENDING
 *   SENDING -(any other status)-> the owner's on_response() decides:
 *        SW_HTTP_DONE  -> done() is called once, the request is freed
 *        SW_HTTP_RETRY -> BACKOFF (the owner may have replaced the body, e.g. only the failed
 *                         items of an Elasticsearch bulk request)
 *   any state -(sw_http_cancel_all)-> done(status -1) is called once, the request is freed
 *
 * Backoff is exponential with full jitter between target->backoff_min_ms and backoff_max_ms; a
 * Retry-After header (seconds or HTTP date) is honoured when it asks for longer. Requests are
 * never given up on for transient errors: the data stays in the durable buffer meanwhile, so a
 * down server costs disk, never records. 401/403 are retried too (with an error logged on each
 * attempt) because they come from credentials an operator rotates, not from the payload.
 */
#ifndef SW_HTTP_H
#define SW_HTTP_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "../common/buf.h"
#include "../common/error.h"

struct sw_http;
struct sw_http_req;

#define SW_HTTP_LATENCY_BUCKETS 11 /* upper bounds in sw_http_latency_bounds, then +Inf */
extern const double sw_http_latency_bounds[SW_HTTP_LATENCY_BUCKETS];

/* Counted per target by the transport, read by metrics and status (loop thread). */
struct sw_http_stats {
  uint64_t requests, retries, responses_2xx, responses_4xx, responses_5xx, network_errors;
  uint64_t latency[SW_HTTP_LATENCY_BUCKETS + 1]; /* not cumulative; last = +Inf */
  double latency_sum;
};

/* Where and how a sink talks to its server: shared by all of its requests (borrowed by them,
 * must outlive them). Secrets are never logged. */
struct sw_http_target {
  const char *name;          /* sink name, for logs */
  const char *ca_file;       /* NULL: the system store */
  int insecure;              /* skip TLS peer and host verification */
  uint64_t connect_timeout_ms, timeout_ms;
  uint64_t backoff_min_ms, backoff_max_ms;
  const char *username, *password; /* basic auth when username is set */
  const char *auth_header;   /* full "Authorization: ..." header (bearer, ApiKey), or NULL */
  const char *aws_sigv4;     /* "aws:amz:<region>:s3": SigV4 with username/password as keys */
  struct sw_http_stats stats; /* written by the transport */
};

struct sw_http_resp {
  long status;               /* 0: no HTTP answer (see curl_error); -1: cancelled */
  const char *body;          /* response body (capped), NUL-terminated */
  size_t body_len;
  const char *curl_error;    /* message for status 0 */
  uint64_t retry_after_ms;   /* from Retry-After, 0 if absent */
  const char *etag;          /* the ETag header's value ("" if absent): S3 multipart parts */
  double seconds;            /* duration of this attempt */
};

enum { SW_HTTP_DONE = 0, SW_HTTP_RETRY = 1 };

struct sw_http_req_opts {
  struct sw_http_target *target;       /* borrowed; its stats are updated */
  const char *method;                  /* "POST", "PUT", ... */
  const char *content_type;            /* may be NULL */
  const char *content_encoding;        /* "gzip" or NULL */
  /* Called for an answer the transport does not retry by itself. May change the body with
   * sw_http_req_set_body() before returning SW_HTTP_RETRY. */
  int (*on_response)(struct sw_http_req *r, const struct sw_http_resp *resp, void *arg);
  /* Optional: told about each answer the transport retries by itself (for last-error). */
  void (*on_retry)(struct sw_http_req *r, const struct sw_http_resp *resp, void *arg);
  /* Called exactly once at the end; resp->status is the last status, -1 when cancelled. The
   * request is freed right after. */
  void (*done)(struct sw_http_req *r, const struct sw_http_resp *resp, void *arg);
  void *arg;
  /* 0: transient failures are retried forever (data requests). N: after N attempts the last
   * answer goes to on_response even if transient (a question whose answer has a fallback). */
  unsigned max_attempts;
};

int sw_http_create(uv_loop_t *loop, struct sw_http **out) SW_MUST_CHECK;
/* curl_global_init, once per process (sw_http_create calls it; so must any other curl user
 * before its first handle). Any thread. */
void sw_http_global_init(void);
/* Cancels what is still in flight (done() with -1) and closes the handles; the loop must run
 * afterwards for the close callbacks; the transport frees itself in the last one. */
void sw_http_destroy(struct sw_http *t);

/* A request to url (copied). body is borrowed and must stay valid until done(). extra headers
 * ("Name: value") are copied. Returns NULL on allocation failure. */
struct sw_http_req *sw_http_req_new(struct sw_http *t, const struct sw_http_req_opts *o,
                                    const char *url, const void *body, size_t len);
int sw_http_req_header(struct sw_http_req *r, const char *header) SW_MUST_CHECK;
/* Frees a request that was never sent. */
void sw_http_req_free(struct sw_http_req *r);
void sw_http_req_set_body(struct sw_http_req *r, const void *body, size_t len);
/* Starts the request; on failure done() is NOT called and the request is freed. */
int sw_http_send(struct sw_http_req *r) SW_MUST_CHECK;
/* Attempts so far (1 during the first). */
unsigned sw_http_req_attempts(const struct sw_http_req *r);

void sw_http_cancel_all(struct sw_http *t);
size_t sw_http_inflight(const struct sw_http *t);

/* The backoff before attempt n+1 (n >= 1) with full jitter, from a caller-supplied random
 * 32-bit value: pure, for tests. */
uint64_t sw_http_backoff_ms(uint64_t min_ms, uint64_t max_ms, unsigned n, uint32_t rnd);

#endif
