/* lokiapi.c - Loki's query API over the buffer (see lokiapi.h).
 *
 * A request's job: the handler parses the parameters and the LogQL (400 at once), defers the
 * answer and starts a thread; the thread builds the whole answer; a uv_async brings it back to
 * the loop, which sends it if the client is still there. References (loop thread only): the
 * async handle's, dropped in its close callback after the thread is done, and the
 * connection's while the request waits, dropped by closed() (client gone: the scan is
 * cancelled) or by the answer. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../../common/log.h"
#include "../../common/timefmt.h"
#include "../../search/logql_run.h"
#include "lokiapi_int.h"
#include "search.h"

enum kind { K_RANGE, K_INSTANT, K_LABELS, K_VALUES, K_SERIES, K_STATS };

struct job {
  uv_async_t async; /* first: the close callback gets back to the job */
  int refs;
  struct sw_loki_api *owner;
  struct sw_http_conn *conn; /* NULL once the client is gone or answered */
  enum kind kind;
  atomic_int cancel;
  struct sw_lq_query q;        /* K_RANGE, K_INSTANT; K_STATS/K_VALUES/K_LABELS: the selector */
  struct sw_lq_query sel[16];  /* K_SERIES: match[] */
  size_t nsel;
  int has_sel;
  char *name;                  /* K_VALUES: the label */
  struct sw_lq_params lp;
  int64_t delay_ms;
  struct sw_buf out;
  int status;
  char err[1024];
};

/* ---- the thread ---- */

struct names {
  char **v;
  size_t n, cap;
  const char *label; /* values of this label; NULL: label names */
  int rc;
};

static int add_name(struct names *ns, const char *s, size_t len) {
  for (size_t i = 0; i < ns->n; i++)
    if (strlen(ns->v[i]) == len && !memcmp(ns->v[i], s, len)) return 0;
  if (sw_grow(&ns->v, ns->n, &ns->cap, sizeof *ns->v, 32) || !(ns->v[ns->n] = strndup(s, len))) return ns->rc = SW_ENOMEM;
  ns->n++;
  return 0;
}

static int name_each(void *arg, const char *k, const char *v) {
  struct names *ns = arg;
  if (!ns->label) return add_name(ns, k, strlen(k));
  return !strcmp(k, ns->label) ? add_name(ns, v, strlen(v)) : 0;
}

static int on_set_names(void *arg, const char *labels, size_t len) {
  struct names *ns = arg;
  (void)sw_label_each(labels, len, name_each, ns);
  return ns->rc;
}

static int on_set_series(void *arg, const char *labels, size_t len) {
  return add_name(arg, labels, len);
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static int put_names(struct sw_buf *out, struct names *ns) {
  if (ns->n > 1) qsort(ns->v, ns->n, sizeof *ns->v, cmp_str);
  int rc = sw_buf_append(out, "{\"status\":\"success\",\"data\":[", 28);
  for (size_t i = 0; !rc && i < ns->n; i++)
    rc = (i && sw_buf_putc(out, ',')) || sw_buf_putc(out, '"') || sw_buf_put_json_str(out, ns->v[i], strlen(ns->v[i]), NULL) ||
         sw_buf_putc(out, '"');
  return rc || sw_buf_append(out, "]}", 2) ? SW_ENOMEM : SW_OK;
}

static int work(struct job *j) {
  const struct sw_lq_log *sel = j->has_sel ? &j->q.log : NULL;
  switch (j->kind) {
    case K_RANGE: case K_INSTANT: return sw_lq_run(&j->q, &j->lp, &j->out, j->err, sizeof j->err);
    case K_LABELS: case K_VALUES: {
      struct names ns = {.label = j->kind == K_VALUES ? j->name : NULL};
      int rc = sw_lq_series(sel, &j->lp, 0, on_set_names, &ns, NULL, j->err, sizeof j->err);
      if (!rc) rc = put_names(&j->out, &ns);
      for (size_t i = 0; i < ns.n; i++) free(ns.v[i]);
      free(ns.v);
      return rc;
    }
    case K_SERIES: {
      /* several match[] are a union: a set found by two selectors is listed once */
      struct names ns = {0};
      int rc = 0;
      for (size_t i = 0; !rc && i < j->nsel; i++)
        rc = sw_lq_series(&j->sel[i].log, &j->lp, 0, on_set_series, &ns, NULL, j->err, sizeof j->err);
      if (!rc) rc = ns.rc;
      if (!rc) rc = sw_buf_append(&j->out, "{\"status\":\"success\",\"data\":[", 28);
      for (size_t i = 0; !rc && i < ns.n; i++)
        rc = (i && sw_buf_putc(&j->out, ',')) || sw_buf_append(&j->out, ns.v[i], strlen(ns.v[i])) ? SW_ENOMEM : 0;
      if (!rc) rc = sw_buf_append(&j->out, "]}", 2);
      for (size_t i = 0; i < ns.n; i++) free(ns.v[i]);
      free(ns.v);
      return rc;
    }
    case K_STATS: {
      struct sw_lq_index_stats st;
      int rc = sw_lq_series(sel, &j->lp, 0, NULL, NULL, &st, j->err, sizeof j->err);
      if (!rc)
        rc = sw_buf_printf(&j->out, "{\"streams\":%llu,\"chunks\":%llu,\"entries\":%llu,\"bytes\":%llu}",
                           (unsigned long long)st.streams, (unsigned long long)st.chunks,
                           (unsigned long long)st.entries, (unsigned long long)st.bytes);
      return rc;
    }
  }
  return SW_EINVAL;
}

static void *run(void *arg) {
  struct job *j = arg;
  if (j->delay_ms) {
    struct timespec nap = {(time_t)(j->delay_ms / 1000), (long)(j->delay_ms % 1000) * 1000000L};
    nanosleep(&nap, NULL);
  }
  int rc = work(j);
  if (rc) {
    j->status = rc == SW_EINVAL ? 400 : rc == SW_ECANCELED ? 504 : 500;
    if (!j->err[0]) snprintf(j->err, sizeof j->err, "%s", sw_strerror(rc));
  } else {
    j->status = 200;
  }
  uv_async_send(&j->async); /* the last touch: the loop may free j from now on */
  return NULL;
}

/* ---- the loop side ---- */

static void job_unref(struct job *j) {
  if (--j->refs > 0) return;
  sw_lq_free(&j->q);
  for (size_t i = 0; i < j->nsel; i++) sw_lq_free(&j->sel[i]);
  free(j->name);
  sw_buf_free(&j->out);
  free(j);
}

static void job_closed(uv_handle_t *h) { job_unref((struct job *)h); }

static void on_gone(void *arg) {
  struct job *j = arg;
  j->conn = NULL;
  atomic_store(&j->cancel, 1);
  job_unref(j); /* the connection's */
}

static void on_done(uv_async_t *a) {
  struct job *j = (struct job *)a;
  j->owner->running--;
  if (j->conn) {
    if (j->status == 200) sw_http_respond(j->conn, 200, "application/json", j->out.data ? j->out.data : "", j->out.len);
    else sw__lk_error(j->conn, j->status, j->err);
    j->conn = NULL;
    job_unref(j);
  }
  uv_close((uv_handle_t *)&j->async, job_closed);
}

static void start(struct sw_loki_api *a, struct sw_http_conn *c, struct job *j) {
  j->owner = a;
  j->delay_ms = a->delay_ms;
  j->lp.data_dir = a->data_dir;
  j->lp.deadline_ms = sw_time_mono_ms() + a->timeout_ms;
  j->lp.cancel = &j->cancel;
  sw_buf_init(&j->out, (size_t)256 << 20);
  if (sw_http_defer(c, on_gone, j)) {
    sw__lk_error(c, 500, "cannot defer the answer");
    job_unref(j);
    return;
  }
  uv_async_init(a->loop, &j->async, on_done);
  j->refs = 2; /* the async handle's and the connection's */
  j->conn = c;
  pthread_t tid;
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  int rc = pthread_create(&tid, &attr, run, j);
  pthread_attr_destroy(&attr);
  if (rc) {
    SW_LOG(SW_L_ERROR, "http", "loki api: cannot start a thread: %s", strerror(rc));
    sw__lk_error(c, 503, "cannot start a query thread");
    j->conn = NULL;
    j->refs--;
    uv_close((uv_handle_t *)&j->async, job_closed);
    return;
  }
  a->running++;
}

/* Parses the LogQL of a selector parameter (labels, series, index/stats): a log query. */
static int parse_selector(const char *text, struct sw_lq_query *q, char *err, size_t errlen) {
  if (sw_lq_parse(text, q, err, errlen)) return -1;
  if (q->metric) {
    sw_lq_free(q);
    snprintf(err, errlen, "only log selectors are accepted here, not metric queries");
    return -1;
  }
  return 0;
}

static int time_range(const struct sw__lk_params *pp, int64_t def_span, struct sw_lq_params *lp, char *err, size_t errlen) {
  int64_t now = sw_time_now_ns();
  lp->end = pp->has_end ? pp->end : now;
  lp->start = pp->has_start ? pp->start : lp->end - (pp->has_since ? pp->since_ns : def_span);
  if (lp->end < lp->start) return snprintf(err, errlen, "end timestamp must not be before or equal to start time"), -1;
  return 0;
}

static void handle(struct sw_http_conn *c, const struct sw_http_req *req, void *arg, enum kind kind) {
  struct sw_loki_api *a = arg;
  char err[1024] = "";
  struct sw__lk_params pp;
  struct job *j = calloc(1, sizeof *j);
  if (!j) return sw__lk_error(c, 500, "out of memory");
  j->kind = kind;
  j->refs = 1;
  if (sw__lk_params_parse(req, &pp, err, sizeof err)) goto bad;
  struct sw_lq_params *lp = &j->lp;
  if (kind == K_RANGE || kind == K_INSTANT) {
    if (!pp.query) {
      snprintf(err, sizeof err, "query parameter is required");
      goto bad;
    }
    if (sw_lq_parse(pp.query, &j->q, err, sizeof err)) goto bad;
    j->has_sel = 1;
    if (kind == K_INSTANT) {
      if (!j->q.metric) {
        snprintf(err, sizeof err, "log queries are not supported as an instant query type, please change your "
                                  "query to a range query type");
        goto bad;
      }
      lp->end = pp.has_time ? pp.time : sw_time_now_ns();
      lp->start = lp->end;
      lp->instant = 1;
    } else {
      if (time_range(&pp, 3600LL * 1000000000, lp, err, sizeof err)) goto bad;
      if (pp.has_limit && pp.limit <= 0) {
        snprintf(err, sizeof err, "limit must be a positive value");
        goto bad;
      }
      lp->limit = pp.has_limit ? (uint64_t)pp.limit : 100;
      if (!j->q.metric && lp->limit > SW_LOKI_MAX_LIMIT) {
        snprintf(err, sizeof err, "max entries limit per query exceeded, limit > max_entries_limit (%llu > %d)",
                 (unsigned long long)lp->limit, SW_LOKI_MAX_LIMIT);
        goto bad;
      }
      lp->backward = pp.backward;
      if (pp.interval_ns < 0) {
        snprintf(err, sizeof err, "interval must be >= 0");
        goto bad;
      }
      lp->interval_ns = pp.interval_ns;
      int64_t span = lp->end - lp->start;
      lp->step_ns = pp.has_step ? pp.step_ns : (span / 250 / 1000000000 > 1 ? span / 250 / 1000000000 : 1) * 1000000000;
      if (lp->step_ns <= 0) {
        snprintf(err, sizeof err, "zero or negative query resolution step widths are not accepted. Try a positive integer");
        goto bad;
      }
      if (j->q.metric && span / lp->step_ns > SW_LQ_MAX_POINTS) {
        snprintf(err, sizeof err, "exceeded maximum resolution of 11,000 points per timeseries. Try increasing the "
                                  "value of the step parameter");
        goto bad;
      }
    }
  } else {
    if (time_range(&pp, 6 * 3600LL * 1000000000, lp, err, sizeof err)) goto bad;
    if (kind == K_SERIES) {
      if (!pp.nmatch) {
        snprintf(err, sizeof err, "at least one match[] argument is required");
        goto bad;
      }
      for (size_t i = 0; i < pp.nmatch; i++, j->nsel++)
        if (parse_selector(pp.match[i], &j->sel[i], err, sizeof err)) goto bad;
    } else if (pp.query && *pp.query && strcmp(pp.query, "{}")) {
      if (parse_selector(pp.query, &j->q, err, sizeof err)) goto bad;
      j->has_sel = 1;
    } else if (kind == K_STATS) {
      snprintf(err, sizeof err, "query parameter is required");
      goto bad;
    }
    if (kind == K_VALUES) {
      /* /loki/api/v1/label/<name>/values */
      const char *name = req->path + strlen("/loki/api/v1/label/");
      const char *slash = strchr(name, '/');
      if (!slash || strcmp(slash, "/values") || slash == name) {
        sw__lk_params_free(&pp);
        job_unref(j);
        return sw__lk_error(c, 404, "404 page not found");
      }
      if (!(j->name = strndup(name, (size_t)(slash - name)))) {
        snprintf(err, sizeof err, "out of memory");
        goto bad;
      }
    }
  }
  if (a->running >= SW_LOKI_MAX_RUNNING) { /* after the checks: a bad request is 400 in any case */
    sw__lk_params_free(&pp);
    job_unref(j);
    return sw__lk_error(c, 429, "too many queries running; retry later");
  }
  const struct sw_config *cfg = a->cfg ? *a->cfg : NULL;
  sw_lq_extractable(j->has_sel ? &j->q : NULL, cfg, lp);
  sw__lk_params_free(&pp);
  start(a, c, j);
  return;
bad:
  sw__lk_params_free(&pp);
  job_unref(j);
  sw__lk_error(c, 400, err);
}

static void on_range(struct sw_http_conn *c, const struct sw_http_req *r, void *a) { handle(c, r, a, K_RANGE); }
static void on_instant(struct sw_http_conn *c, const struct sw_http_req *r, void *a) { handle(c, r, a, K_INSTANT); }
static void on_labels(struct sw_http_conn *c, const struct sw_http_req *r, void *a) { handle(c, r, a, K_LABELS); }
static void on_values(struct sw_http_conn *c, const struct sw_http_req *r, void *a) { handle(c, r, a, K_VALUES); }
static void on_series(struct sw_http_conn *c, const struct sw_http_req *r, void *a) { handle(c, r, a, K_SERIES); }
static void on_stats(struct sw_http_conn *c, const struct sw_http_req *r, void *a) { handle(c, r, a, K_STATS); }

static void on_buildinfo(struct sw_http_conn *c, const struct sw_http_req *req, void *arg) {
  (void)req, (void)arg;
  char body[256];
  int n = snprintf(body, sizeof body,
                   "{\"version\":\"%s\",\"revision\":\"spillway\",\"branch\":\"\",\"buildUser\":\"\","
                   "\"buildDate\":\"\",\"goVersion\":\"\"}", SW_VERSION);
  sw_http_respond(c, 200, "application/json", body, (size_t)n);
}

/* Grafana's newer data source asks for these; the agent detects no fields or patterns. */
static void on_detected_fields(struct sw_http_conn *c, const struct sw_http_req *req, void *arg) {
  (void)req, (void)arg;
  static const char body[] = "{\"fields\":[],\"limit\":1000}";
  sw_http_respond(c, 200, "application/json", body, sizeof body - 1);
}

static void on_patterns(struct sw_http_conn *c, const struct sw_http_req *req, void *arg) {
  (void)req, (void)arg;
  static const char body[] = "{\"status\":\"success\",\"data\":[]}";
  sw_http_respond(c, 200, "application/json", body, sizeof body - 1);
}

struct sw_loki_api *sw_loki_api_new(uv_loop_t *loop, const char *data_dir, const struct sw_config *const *cfg) {
  struct sw_loki_api *a = calloc(1, sizeof *a);
  if (!a) return NULL;
  if (!(a->data_dir = strdup(data_dir))) {
    free(a);
    return NULL;
  }
  a->loop = loop;
  a->cfg = cfg;
  a->timeout_ms = sw_search_http_timeout_ms();
  /* a test knob, not documented for operators (like SPILLWAY_TEST_SEARCH_TIMEOUT_MS) */
  const char *d = getenv("SPILLWAY_TEST_LOKI_DELAY_MS");
  char *end;
  long long ms = d ? strtoll(d, &end, 10) : 0;
  if (d && *d && !*end && ms > 0 && ms <= 60000) a->delay_ms = ms;
  return a;
}

void sw_loki_api_free(struct sw_loki_api *a) {
  if (!a) return;
  free(a->data_dir);
  free(a);
}

int sw_loki_api_routes(struct sw_loki_api *a, struct sw_httpd *h) {
  int rc;
  if ((rc = sw_httpd_route_form(h, "/loki/api/v1/query_range", on_range, a)) ||
      (rc = sw_httpd_route_form(h, "/loki/api/v1/query", on_instant, a)) ||
      (rc = sw_httpd_route_form(h, "/loki/api/v1/labels", on_labels, a)) ||
      (rc = sw_httpd_route_prefix(h, "/loki/api/v1/label/", on_values, a)) ||
      (rc = sw_httpd_route_form(h, "/loki/api/v1/series", on_series, a)) ||
      (rc = sw_httpd_route_form(h, "/loki/api/v1/index/stats", on_stats, a)) ||
      (rc = sw_httpd_route(h, "/loki/api/v1/status/buildinfo", on_buildinfo, a)) ||
      (rc = sw_httpd_route(h, "/loki/api/v1/detected_fields", on_detected_fields, a)) ||
      (rc = sw_httpd_route(h, "/loki/api/v1/patterns", on_patterns, a)) ||
      (rc = sw_httpd_route(h, "/loki/api/v1/tail", sw__lk_tail, a)))
    return rc;
  return SW_OK;
}
