/* lokiapi.h - Loki's HTTP query API over the local buffer, for Grafana's Loki data source and
 * logcli (docs/loki-api.md): query_range, query, labels, label values, series, index/stats,
 * status/buildinfo, and the WebSocket tail. Served with server.enable_search.
 *
 * Queries run on their own threads (search/logql_run.h) and the answer is sent when complete
 * (a deferred answer: 400 and 5xx stay possible); SW_LOKI_MAX_RUNNING at once and
 * SW_LOKI_MAX_TAILS tails (429 beyond), each query bounded by the search deadline
 * (504 past it), its limit (at most SW_LOKI_MAX_LIMIT entries) and the series and point caps.
 * Errors are plain text as Loki's are. */
#ifndef SW_HTTP_LOKIAPI_H
#define SW_HTTP_LOKIAPI_H

#include <uv.h>

#include "httpd.h"

#define SW_LOKI_MAX_RUNNING 4
#define SW_LOKI_MAX_TAILS 4
#define SW_LOKI_MAX_LIMIT 5000

struct sw_loki_api;
struct sw_config;

/* data_dir is copied; *cfg is the running configuration, read on the loop thread at each
 * request. Free only after the loop closed every handle. */
struct sw_loki_api *sw_loki_api_new(uv_loop_t *loop, const char *data_dir, const struct sw_config *const *cfg);
void sw_loki_api_free(struct sw_loki_api *a);
/* Adds the routes under /loki/api/v1/. */
int sw_loki_api_routes(struct sw_loki_api *a, struct sw_httpd *h) SW_MUST_CHECK;

#endif
