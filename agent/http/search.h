/* search.h - GET /api/v1/search?q=REGEX&since=&until=&label=k=v&stream=&limit=
 * on the agent's HTTP server: streaming NDJSON (the file sink's record lines, in time order),
 * then one {"summary":{...}} line; 400 with {"error": reason} for a bad query. */
#ifndef SW_SEARCH_HTTP_H
#define SW_SEARCH_HTTP_H

#include <uv.h>

#include "httpd.h"

#define SW_SEARCH_HTTP_MAX_RUNNING 2
#define SW_SEARCH_HTTP_MAX_LIMIT 100000
#define SW_SEARCH_HTTP_TIMEOUT_MS 30000

struct sw_search_http;

/* SW_SEARCH_HTTP_TIMEOUT_MS, or SPILLWAY_TEST_SEARCH_TIMEOUT_MS (100..3600000): the scan
 * deadline of HTTP searches and Loki API queries. */
int64_t sw_search_http_timeout_ms(void);

/* data_dir is copied. Free the object only after the loop closed every handle. */
struct sw_search_http *sw_search_http_new(uv_loop_t *loop, const char *data_dir);
void sw_search_http_free(struct sw_search_http *s);
/* The running configuration, read at each request (loop thread) for the labels its sources
 * extract (search/query.h); *cfg may change at reload. NULL: unknown. */
struct sw_config;
void sw_search_http_set_config(struct sw_search_http *s, const struct sw_config *const *cfg);
/* The route handler (arg: the object). */
void sw_search_http_handle(struct sw_http_conn *c, const struct sw_http_req *req, void *arg);

#endif
