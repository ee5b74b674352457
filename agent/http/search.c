/* search.c - GET /api/v1/search: the search runs on its own thread (with its own read-only
 * connection) and streams NDJSON through a feed (http/feed.h: its lifetimes), so neither the
 * loop nor ingest waits for it. Bounded: SW_SEARCH_HTTP_MAX_RUNNING searches at once (429
 * beyond), at most `limit` results (default 1000, max 100000), SW_SEARCH_HTTP_TIMEOUT_MS of
 * scanning, and at most 1 MiB of output queued for a slow client (the scan waits for it). */
#include "search.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../../common/log.h"
#include "../../common/timefmt.h"
#include "../../search/output.h"
#include "../../search/search.h"
#include "../buffer/buffer.h"
#include "feed.h"

#define FLUSH_AT (64u << 10)

struct job {
  struct sw_feed feed; /* first: the feed's callbacks get back to the job */
  struct sw_search_http *owner;
  struct sw_search_query q;
  struct sw_search_opts opts;
  struct sw_search_out out;
};

struct sw_search_http {
  uv_loop_t *loop;
  char *data_dir; /* a copy: a live reload replaces the config it came from */
  int running;
  int64_t timeout_ms;
  const struct sw_config *const *cfg; /* the agent's current configuration (may change at reload) */
};

/* SW_SEARCH_HTTP_TIMEOUT_MS, or SPILLWAY_TEST_SEARCH_TIMEOUT_MS (100..3600000): a test knob,
 * so the end-to-end tests can reach the deadline with clients that stop reading without
 * waiting 30 s. Not documented for operators on purpose. */
int64_t sw_search_http_timeout_ms(void) {
  const char *v = getenv("SPILLWAY_TEST_SEARCH_TIMEOUT_MS");
  char *end;
  long long ms = v ? strtoll(v, &end, 10) : 0;
  if (v && *v && !*end && ms >= 100 && ms <= 3600000) return ms;
  return SW_SEARCH_HTTP_TIMEOUT_MS;
}

struct sw_search_http *sw_search_http_new(uv_loop_t *loop, const char *data_dir) {
  struct sw_search_http *s = calloc(1, sizeof *s);
  if (s && !(s->data_dir = strdup(data_dir))) {
    free(s);
    return NULL;
  }
  if (s) {
    s->loop = loop;
    s->timeout_ms = sw_search_http_timeout_ms();
  }
  return s;
}

void sw_search_http_set_config(struct sw_search_http *s, const struct sw_config *const *cfg) { s->cfg = cfg; }

void sw_search_http_free(struct sw_search_http *s) {
  if (!s) return;
  free(s->data_dir);
  free(s);
}

static void bad_request(struct sw_http_conn *c, int status, const char *msg) {
  struct sw_buf b;
  sw_buf_init(&b, 8192);
  if (sw_buf_append(&b, "{\"error\":\"", 10) || sw_buf_put_json_str(&b, msg, strlen(msg), NULL) ||
      sw_buf_append(&b, "\"}\n", 3)) {
    sw_http_respond(c, status, "application/json", "{\"error\":\"bad request\"}\n", 24);
  } else {
    sw_http_respond(c, status, "application/json", b.data, b.len);
  }
  sw_buf_free(&b);
}

/* ---- the search thread ---- */

static int emit(void *arg, const struct sw_search_hit *h) {
  struct job *j = arg;
  if (sw_search_out_hit(&j->out, h, &j->feed.buf)) return 1;
  return j->feed.buf.len >= FLUSH_AT ? sw_feed_flush(&j->feed, 0) : atomic_load(&j->feed.cancel);
}

static void *run(void *arg) {
  struct job *j = arg;
  struct sw_buf *b = &j->feed.buf;
  struct sw_search_stats st;
  char err[512] = "";
  int rc = sw_search_run(&j->q, &j->opts, &st, err, sizeof err);
  /* The last line sums up, so a client can tell a complete answer from a cut one. */
  int fail = sw_buf_append(b, "{\"summary\":{", 12);
  if (!fail && rc) {
    const char *msg = err[0] ? err : sw_strerror(rc);
    fail = sw_buf_append(b, "\"error\":\"", 9) || sw_buf_put_json_str(b, msg, strlen(msg), NULL) ||
           sw_buf_append(b, "\",", 2);
  }
  if (!fail)
    fail = sw_buf_printf(b,
                         "\"matches\":%llu,\"limited\":%s,\"timed_out\":%s,\"chunks_scanned\":%llu,"
                         "\"bytes_scanned\":%llu,\"damaged_chunks\":%llu,\"match_limit_skipped\":%llu}}\n",
                         (unsigned long long)st.matches, st.limited ? "true" : "false",
                         st.timed_out ? "true" : "false", (unsigned long long)st.chunks_scanned,
                         (unsigned long long)st.raw_bytes, (unsigned long long)st.corrupt_chunks,
                         (unsigned long long)st.match_limit_skipped);
  (void)fail;
  sw_feed_flush(&j->feed, 1);
  return NULL;
}

/* ---- the loop side ---- */

static void job_release(struct sw_feed *f) {
  struct job *j = (struct job *)f;
  sw_search_query_free(&j->q);
  sw_search_out_free(&j->out);
  free(j);
}

static void job_finished(struct sw_feed *f) { ((struct job *)f)->owner->running--; }

/* The query string's parameters; the strings point into owned[] or the buffers. */
struct params {
  char *pattern;
  const char *since, *until;
  char since_buf[64], until_buf[64];
  unsigned long long limit;
  const char *labels[32], *streams[3];
  char *owned[40];
  size_t nlabels, nstreams, nowned;
  int icase;
};

static void params_free(struct params *pp) {
  free(pp->pattern);
  for (size_t i = 0; i < pp->nowned; i++) free(pp->owned[i]);
}

/* One key=value; 0, or -1 with err set. */
static int param(struct params *pp, const char *key, const char *val, char *err, size_t errlen) {
  if (!strcmp(key, "q")) {
    free(pp->pattern);
    if (!(pp->pattern = strdup(val))) goto nomem;
  } else if (!strcmp(key, "since") || !strcmp(key, "until")) {
    char *dst = key[0] == 's' ? pp->since_buf : pp->until_buf;
    if (strlen(val) >= sizeof pp->since_buf) {
      snprintf(err, errlen, "%s is too long", key);
      return -1;
    }
    memcpy(dst, val, strlen(val) + 1);
    *(key[0] == 's' ? &pp->since : &pp->until) = dst;
  } else if (!strcmp(key, "limit")) {
    char *end;
    pp->limit = strtoull(val, &end, 10);
    if (*end || !val[0] || pp->limit == 0 || pp->limit > SW_SEARCH_HTTP_MAX_LIMIT) {
      snprintf(err, errlen, "limit must be 1..%d", SW_SEARCH_HTTP_MAX_LIMIT);
      return -1;
    }
  } else if (!strcmp(key, "label") || !strcmp(key, "stream")) {
    int is_label = key[0] == 'l';
    if ((is_label ? pp->nlabels >= 32 : pp->nstreams >= 3) || pp->nowned >= 40) {
      snprintf(err, errlen, "too many %s parameters", key);
      return -1;
    }
    char *v = strdup(val);
    if (!v) goto nomem;
    pp->owned[pp->nowned++] = v;
    if (is_label) pp->labels[pp->nlabels++] = v;
    else pp->streams[pp->nstreams++] = v;
  } else if (!strcmp(key, "case_insensitive")) {
    pp->icase = !strcmp(val, "true") || !strcmp(val, "1");
  } else {
    snprintf(err, errlen, "unknown parameter \"%s\" (q, since, until, label, stream, limit, "
                          "case_insensitive)", key);
    return -1;
  }
  return 0;
nomem:
  snprintf(err, errlen, "out of memory");
  return -1;
}

static int parse_params(const char *qs, struct params *pp, char *err, size_t errlen) {
  char key[64], val[4096];
  int r;
  pp->limit = 1000;
  while ((r = sw_http_query_next(&qs, key, sizeof key, val, sizeof val)) == 1)
    if (param(pp, key, val, err, errlen)) return -1;
  if (r < 0) {
    snprintf(err, errlen, "malformed query string");
    return -1;
  }
  if (!pp->pattern) {
    snprintf(err, errlen, "missing q (the regex; q= matches every record)");
    return -1;
  }
  return 0;
}

/* The compiled query; 0, or -1 with err set (q is then freed). */
static int build_query(const struct params *pp, const struct sw_config *const *cfg, struct sw_search_query *q,
                       char *err, size_t errlen) {
  if (sw_search_query_init(q, pp->pattern, pp->icase ? SW_SEARCH_ICASE : 0, err, errlen))
    return -1;
  int64_t now = sw_time_now_ns();
  int ok = 1;
  if (pp->since && sw_search_parse_time(pp->since, now, &q->since))
    ok = 0, snprintf(err, errlen, "since: want RFC 3339 or a duration like 15m, 1h, 2d");
  if (ok && pp->until && sw_search_parse_time(pp->until, now, &q->until))
    ok = 0, snprintf(err, errlen, "until: want RFC 3339 or a duration like 15m, 1h, 2d");
  for (size_t i = 0; ok && i < pp->nlabels; i++)
    if (sw_search_query_label(q, pp->labels[i], err, errlen)) ok = 0;
  if (ok && cfg && *cfg) sw_search_query_extractable(q, *cfg);
  for (size_t i = 0; ok && i < pp->nstreams; i++)
    if (sw_search_query_stream(q, pp->streams[i]))
      ok = 0, snprintf(err, errlen, "stream must be stdout, stderr or file");
  if (!ok) sw_search_query_free(q);
  return ok ? 0 : -1;
}

/* Starts the answer and the thread for a job whose query is built (takes the job). */
static void start_job(struct sw_search_http *s, struct sw_http_conn *c, struct job *j,
                      unsigned long long limit) {
  j->owner = s;
  j->opts = (struct sw_search_opts){
      .data_dir = s->data_dir, .threads = 1, .limit = limit,
      .deadline_ms = sw_time_mono_ms() + s->timeout_ms,
      .cancel = &j->feed.cancel, .emit = emit, .arg = j};
  sw_search_out_init(&j->out, SW_SEARCH_OUT_JSON);
  j->feed.deadline_ms = j->opts.deadline_ms;
  j->feed.run = run;
  j->feed.finished = job_finished;
  j->feed.release = job_release;
  if (sw_feed_start(&j->feed, s->loop, c, "application/x-ndjson", NULL) == SW_OK) s->running++;
}

void sw_search_http_handle(struct sw_http_conn *c, const struct sw_http_req *req, void *arg) {
  struct sw_search_http *s = arg;
  if (s->running >= SW_SEARCH_HTTP_MAX_RUNNING) {
    bad_request(c, 429, "too many searches running; retry later");
    return;
  }
  char err[1024];
  struct params pp = {0};
  struct job *j = NULL;
  if (parse_params(req->query, &pp, err, sizeof err)) goto bad;
  if (!(j = calloc(1, sizeof *j))) {
    snprintf(err, sizeof err, "out of memory");
    goto bad;
  }
  if (build_query(&pp, s->cfg, &j->q, err, sizeof err)) {
    free(j);
    goto bad;
  }
  start_job(s, c, j, pp.limit);
  params_free(&pp);
  return;
bad:
  bad_request(c, 400, err);
  params_free(&pp);
}
