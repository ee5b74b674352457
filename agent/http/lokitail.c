/* lokitail.c - GET /loki/api/v1/tail: Loki's live tail over a WebSocket.
 *
 * The scan's follow mode (search/search.h) reads the entries from `start` (default an hour
 * ago) and then each chunk as it commits; every entry the query keeps goes out in Loki's tail
 * message, {"streams":[{"stream":{...},"values":[["<ns>","<line>"]]}],"dropped_entries":null},
 * batched up to 64 KiB or until the scan waits for new chunks. Of the entries older than the
 * connection that the first pass finds, the last `limit` (default 100) are sent first, as Loki
 * does (a ring of them is kept until the pass reaches the present). A slow client makes the
 * scan wait (nothing is dropped). The feed (http/feed.h) carries the frames and the lifetimes. */
#include <stdlib.h>
#include <string.h>

#include "../../common/log.h"
#include "../../common/timefmt.h"
#include "../../search/logql_run.h"
#include "feed.h"
#include "lokiapi_int.h"

#define TAIL_FLUSH_AT (64u << 10)

struct hist {
  char *labels, *line;
  size_t llen, len;
  int64_t ts;
};

struct tail {
  struct sw_feed feed; /* first: the feed's callbacks get back to the tail */
  struct hist *ring;   /* the last `limit` entries older than the connection (first pass) */
  size_t nring, ring_head;
  int live;            /* the ring went out: every entry is sent as it comes */
  struct sw_loki_api *owner;
  struct sw_lq_query q;
  struct sw_lq_params lp;
  int64_t connect_ns;
  uint64_t limit;
  int open; /* a message is being built */
  char err[512];
};

static int close_message(struct tail *t) {
  if (!t->open) return 0;
  t->open = 0;
  if (sw_buf_append(&t->feed.buf, "],\"dropped_entries\":null}", 25)) return 1;
  return sw_feed_flush(&t->feed, 0);
}

static int put_entry(struct tail *t, const char *labels, size_t llen, int64_t ts, const char *line, size_t len) {
  struct sw_buf *b = &t->feed.buf;
  int rc = t->open ? sw_buf_putc(b, ',') : sw_buf_append(b, "{\"streams\":[", 12);
  t->open = 1;
  if (!rc) rc = sw_buf_append(b, "{\"stream\":", 10) || sw_buf_append(b, labels, llen) ||
                sw_buf_printf(b, ",\"values\":[[\"%lld\",\"", (long long)ts) ||
                sw_buf_put_json_str(b, line, len, NULL) || sw_buf_append(b, "\"]]}", 4);
  if (rc) return 1;
  if (b->len >= TAIL_FLUSH_AT) return close_message(t);
  return atomic_load(&t->feed.cancel);
}

/* The ring's entries, oldest first; from then on entries go out as they come. */
static int go_live(struct tail *t) {
  int rc = 0;
  t->live = 1;
  for (size_t k = 0; k < t->nring; k++) {
    struct hist *h = &t->ring[(t->ring_head + k) % t->limit];
    if (!rc) rc = put_entry(t, h->labels, h->llen, h->ts, h->line, h->len);
    free(h->labels);
    free(h->line);
  }
  t->nring = 0;
  return rc;
}

static int on_entry(void *arg, const char *labels, size_t llen, int64_t ts, const char *line, size_t len) {
  struct tail *t = arg;
  if (!t->live && ts < t->connect_ns) {
    struct hist *h = &t->ring[(t->ring_head + t->nring) % t->limit];
    if (t->nring == t->limit) { /* full: the oldest makes room */
      free(h->labels);
      free(h->line);
      t->ring_head = (t->ring_head + 1) % t->limit;
    } else {
      t->nring++;
    }
    *h = (struct hist){.labels = malloc(llen ? llen : 1), .line = malloc(len ? len : 1), .llen = llen, .len = len, .ts = ts};
    if (!h->labels || !h->line) return 1;
    memcpy(h->labels, labels, llen);
    memcpy(h->line, line, len);
    return atomic_load(&t->feed.cancel);
  }
  if (!t->live && go_live(t)) return 1;
  return put_entry(t, labels, llen, ts, line, len);
}

static void on_flush(void *arg) {
  struct tail *t = arg;
  if (!t->live) (void)go_live(t); /* the first pass is over */
  (void)close_message(t);
}

static void *run(void *arg) {
  struct tail *t = arg;
  int rc = sw_lq_follow(&t->q, &t->lp, on_entry, on_flush, t, t->err, sizeof t->err);
  if (rc && !atomic_load(&t->feed.cancel))
    SW_LOG(SW_L_WARN, "http", "loki tail stopped: %s", t->err[0] ? t->err : sw_strerror(rc));
  (void)close_message(t);
  sw_feed_flush(&t->feed, 1);
  return NULL;
}

static void tail_finished(struct sw_feed *f) { ((struct tail *)f)->owner->tails--; }

static void tail_release(struct sw_feed *f) {
  struct tail *t = (struct tail *)f;
  for (size_t k = 0; k < t->nring; k++) {
    free(t->ring[(t->ring_head + k) % t->limit].labels);
    free(t->ring[(t->ring_head + k) % t->limit].line);
  }
  free(t->ring);
  sw_lq_free(&t->q);
  free(t);
}

void sw__lk_tail(struct sw_http_conn *c, const struct sw_http_req *req, void *arg) {
  struct sw_loki_api *a = arg;
  char err[1024] = "";
  struct sw__lk_params pp;
  struct tail *t = calloc(1, sizeof *t);
  if (!t) return sw__lk_error(c, 500, "out of memory");
  if (sw__lk_params_parse(req, &pp, err, sizeof err)) goto bad;
  if (!pp.query) {
    snprintf(err, sizeof err, "query parameter is required");
    goto bad;
  }
  if (sw_lq_parse(pp.query, &t->q, err, sizeof err)) goto bad;
  if (t->q.metric) {
    snprintf(err, sizeof err, "tail requires a log query, not a metric query");
    goto bad;
  }
  if (pp.has_limit && pp.limit <= 0) {
    snprintf(err, sizeof err, "limit must be a positive value");
    goto bad;
  }
  if (pp.delay_for_ns < 0 || pp.delay_for_ns > 5000000000LL) {
    snprintf(err, sizeof err, "delay_for can't be greater than 5");
    goto bad;
  }
  t->limit = pp.has_limit ? (uint64_t)pp.limit : 100;
  if (t->limit > SW_LOKI_MAX_LIMIT) {
    snprintf(err, sizeof err, "max entries limit per query exceeded, limit > max_entries_limit (%llu > %d)",
             (unsigned long long)t->limit, SW_LOKI_MAX_LIMIT);
    goto bad;
  }
  if (a->tails >= SW_LOKI_MAX_TAILS) { /* after the checks: a bad request is 400 in any case */
    sw__lk_params_free(&pp);
    sw_lq_free(&t->q);
    free(t->ring);
    free(t);
    return sw__lk_error(c, 429, "max concurrent tail requests reached; retry later");
  }
  t->connect_ns = sw_time_now_ns();
  if (!(t->ring = calloc(t->limit, sizeof *t->ring))) {
    snprintf(err, sizeof err, "out of memory");
    goto bad;
  }
  t->owner = a;
  t->lp = (struct sw_lq_params){.data_dir = a->data_dir, .threads = 1, .cancel = &t->feed.cancel,
                                .start = pp.has_start ? pp.start : t->connect_ns - 3600LL * 1000000000,
                                .end = INT64_MAX};
  sw_lq_extractable(&t->q, a->cfg ? *a->cfg : NULL, &t->lp);
  sw__lk_params_free(&pp);
  t->feed.run = run;
  t->feed.finished = tail_finished;
  t->feed.release = tail_release;
  t->feed.unref_while_open = 1;
  if (sw_feed_start(&t->feed, a->loop, c, NULL, req) == SW_OK) a->tails++;
  return;
bad:
  sw__lk_params_free(&pp);
  sw_lq_free(&t->q);
  free(t->ring);
  free(t);
  sw__lk_error(c, 400, err);
}
