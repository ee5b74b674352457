/* loki_int.h - what loki.c (the push codec) and loki_check.c (asking Loki what it already
 * holds before a resend) share: the codec and one batch as it is built.
 *
 * A batch is a set of streams, each a list of entries whose JSON-escaped lines sit in the
 * stream's text buffer. Normally seal() renders them into the push body and frees them. A
 * batch cut before a crash (b->verify) keeps them instead: the checker marks the entries Loki
 * already stores (`present`), then the body is rendered from the others.
 */
#ifndef SW_LOKI_INT_H
#define SW_LOKI_INT_H

#include <stddef.h>
#include <stdint.h>

#include "../common/buf.h"
#include "route.h"
#include "sink.h"

#define SW_LOKI_PAGE 1000 /* entries per query_range page: Loki answers 5000 very slowly */

struct sw__loki {
  char *url;           /* .../loki/api/v1/push */
  char *query_base;    /* .../loki/api/v1/query_range (url or query_url) */
  char *tenant_header;
  const struct sw_sink_conf *c;
  int gzip;
  int dyn_tenant;      /* tenant has {label}s: one request per tenant */
  struct sw_route route;
};

struct sw__loki_entry {
  int64_t ts;
  uint32_t seq;            /* arrival order: keeps the sort stable */
  uint32_t meta;           /* index into stream->text + 1 of its metadata object, 0 = none */
  size_t off, len;         /* escaped line in stream->text */
  int present;             /* verify: Loki already holds it */
};

struct sw__loki_stream {
  char *labels;            /* JSON object text; the stream's identity (with tenant) */
  char *tenant_header;     /* "X-Scope-OrgID: <tenant>" of a {label} tenant, else NULL */
  struct sw__loki_entry *e;
  size_t n, cap;
  int sorted;
  struct sw_buf text;      /* escaped lines, then metadata objects */
};

/* Where the check of a verify batch stands (loop thread). */
struct sw__loki_check {
  size_t stream;           /* the stream being asked about */
  int64_t start;           /* the next page starts here (ns, inclusive) */
  size_t skip;             /* entries at `start` already counted on earlier pages */
  int asked;               /* a query for (stream, start) is in flight */
  int failed;              /* gave up asking: the rest is sent unchecked */
  struct sw_buf url;
  struct sw_buf scratch;
};

/* A request of a {label} tenant past the first one, rendered and waiting its turn. */
struct sw__loki_more {
  char *tenant_header;
  struct sw_buf body, wire;
  int body_gone;
  uint64_t records;
};

struct sw__loki_batch {
  struct sw__loki_stream *s;
  size_t n, cap;
  struct sw_buf body, wire; /* the request being sent */
  int body_gone; /* gzip: body freed once compressed (sw_body_restore) */
  int sent;
  const char *tenant_header; /* of the request being sent (borrowed: NULL = the sink's) */
  uint64_t req_records;      /* records of the request being sent (0: the whole batch) */
  char *replay_header;       /* a replayed dead letter's tenant */
  struct sw__loki_more *more;
  size_t nmore, next_more;
  int verifying;           /* streams kept for the check; body not rendered yet */
  struct sw__loki_check chk;
};

/* Renders the push body from every entry not marked present and gzips it; 0 or SW_ENOMEM. */
int sw__loki_render(struct sw__loki *l, struct sw__loki_batch *lb) SW_MUST_CHECK;
void sw__loki_free_streams(struct sw__loki_batch *lb);

/* The check (loki_check.c). next: 1 and *req filled while there is a question to ask, 0 when
 * every stream was asked (or asking failed): then the body is rendered. respond: reads the
 * answer to the last question. */
int sw__loki_check_next(struct sw__loki *l, struct sw_batch *b, struct sw_sink_req *req);
void sw__loki_check_respond(struct sw__loki *l, struct sw_batch *b, const struct sw_http_resp *resp);

#endif
