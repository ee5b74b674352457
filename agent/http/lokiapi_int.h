/* lokiapi_int.h - what lokiapi.c (queries) and lokitail.c (the WebSocket tail) share. */
#ifndef SW_HTTP_LOKIAPI_INT_H
#define SW_HTTP_LOKIAPI_INT_H

#include <stdint.h>

#include "../../search/logql.h"
#include "lokiapi.h"

struct sw_loki_api {
  uv_loop_t *loop;
  char *data_dir;
  const struct sw_config *const *cfg;
  int running, tails;
  int64_t timeout_ms;
  int64_t delay_ms; /* SPILLWAY_TEST_LOKI_DELAY_MS: each query waits this long first (a test knob:
                       it holds queries running so the concurrency limit can be tested) */
};

/* A request's parameters (query string and form body), copied: a deferred answer outlives
 * the request. */
struct sw__lk_params {
  char *query;
  char *match[16];
  size_t nmatch;
  int64_t start, end, time; /* ns */
  int has_start, has_end, has_time;
  int64_t step_ns, interval_ns, since_ns, delay_for_ns;
  int has_step, has_since;
  long long limit;
  int has_limit;
  int backward, has_direction;
};

/* 0, or -1 with err set (answer 400). */
int sw__lk_params_parse(const struct sw_http_req *req, struct sw__lk_params *p, char *err, size_t errlen);
void sw__lk_params_free(struct sw__lk_params *p);
/* Loki's error answer: plain text. */
void sw__lk_error(struct sw_http_conn *c, int status, const char *msg);

/* GET /loki/api/v1/tail (lokitail.c). */
void sw__lk_tail(struct sw_http_conn *c, const struct sw_http_req *req, void *arg);

#endif
