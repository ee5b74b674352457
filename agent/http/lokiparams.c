/* lokiparams.c - the parameters of Loki's query API (query string and form body) as Loki reads
 * them, and its plain-text errors: shared by the queries (lokiapi.c) and the tail (lokitail.c). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../common/timefmt.h"
#include "lokiapi_int.h"

void sw__lk_error(struct sw_http_conn *c, int status, const char *msg) {
  char body[1100];
  int n = snprintf(body, sizeof body, "%s\n", msg);
  sw_http_respond(c, status, "text/plain; charset=utf-8", body, (size_t)(n < (int)sizeof body ? n : (int)sizeof body - 1));
}

/* Loki's timestamps: "1.5" float seconds, an integer of up to 10 digits seconds, longer
 * nanoseconds, else RFC 3339. */
static int parse_ts(const char *v, int64_t *ns) {
  char *end;
  if (!*v) return -1;
  if (strchr(v, '.')) {
    double d = strtod(v, &end);
    if (!*end && isfinite(d) && fabs(d) < 9e9) {
      double s = floor(d);
      *ns = (int64_t)s * 1000000000 + (int64_t)(round((d - s) * 1000) * 1e6);
      return 0;
    }
  }
  long long n = strtoll(v, &end, 10);
  if (!*end && end != v) {
    size_t len = strlen(v) - (v[0] == '-');
    if (len <= 10) {
      if (n > 9223372036LL || n < -9223372036LL) return -1;
      *ns = (int64_t)n * 1000000000;
    } else {
      *ns = n;
    }
    return 0;
  }
  return sw_time_parse_rfc3339(v, strlen(v), ns) ? -1 : 0;
}

/* step, interval, since, delay_for: float seconds or a duration ("15s", "1m"). */
static int parse_dur(const char *v, int64_t *ns) {
  char *end;
  double d = strtod(v, &end);
  if (*v && !*end) {
    if (!isfinite(d) || fabs(d) > 9e9) return -1;
    *ns = (int64_t)(d * 1e9);
    return 0;
  }
  return sw_lq_parse_duration(v, strlen(v), ns);
}

static int param(struct sw__lk_params *p, const char *k, const char *v, char *err, size_t errlen) {
  int64_t *ts = !strcmp(k, "start") ? &p->start : !strcmp(k, "end") ? &p->end : !strcmp(k, "time") ? &p->time : NULL;
  if (ts) {
    if (parse_ts(v, ts)) return snprintf(err, errlen, "invalid %s: cannot parse \"%s\" to a valid timestamp", k, v), -1;
    *(k[0] == 's' ? &p->has_start : k[0] == 'e' ? &p->has_end : &p->has_time) = 1;
  } else if (!strcmp(k, "query")) {
    free(p->query);
    if (!(p->query = strdup(v))) return snprintf(err, errlen, "out of memory"), -1;
  } else if (!strcmp(k, "match[]") || !strcmp(k, "match")) {
    if (p->nmatch >= 16) return snprintf(err, errlen, "at most 16 match[] selectors"), -1;
    if (!(p->match[p->nmatch++] = strdup(v))) return snprintf(err, errlen, "out of memory"), -1;
  } else if (!strcmp(k, "limit")) {
    char *end;
    p->limit = strtoll(v, &end, 10);
    if (*end || !*v) return snprintf(err, errlen, "invalid limit: \"%s\"", v), -1;
    p->has_limit = 1;
  } else if (!strcmp(k, "direction")) {
    if (strcmp(v, "forward") && strcmp(v, "FORWARD") && strcmp(v, "backward") && strcmp(v, "BACKWARD"))
      return snprintf(err, errlen, "invalid direction \"%s\" (forward or backward)", v), -1;
    p->backward = v[0] == 'b' || v[0] == 'B';
    p->has_direction = 1;
  } else if (!strcmp(k, "step") || !strcmp(k, "interval") || !strcmp(k, "since") || !strcmp(k, "delay_for")) {
    int64_t d;
    if (parse_dur(v, &d)) return snprintf(err, errlen, "invalid %s: cannot parse \"%s\" to a valid duration", k, v), -1;
    if (k[0] == 's' && k[1] == 't') p->step_ns = d, p->has_step = 1;
    else if (k[0] == 'i') p->interval_ns = d;
    else if (k[0] == 's') p->since_ns = d, p->has_since = 1;
    else p->delay_for_ns = d;
  } /* other parameters (Grafana's and logcli's extras) are ignored, as Loki does */
  return 0;
}

static int params_from(const char *qs, struct sw__lk_params *p, char *err, size_t errlen) {
  char k[64], *v = malloc(65536);
  if (!v) return snprintf(err, errlen, "out of memory"), -1;
  int r;
  while ((r = sw_http_query_next(&qs, k, sizeof k, v, 65536)) == 1)
    if (param(p, k, v, err, errlen)) break;
  free(v);
  if (r < 0) return snprintf(err, errlen, "malformed query string or form body"), -1;
  return r == 1 ? -1 : 0;
}

int sw__lk_params_parse(const struct sw_http_req *req, struct sw__lk_params *p, char *err, size_t errlen) {
  memset(p, 0, sizeof *p);
  p->backward = 1;
  if (params_from(req->query, p, err, errlen)) return -1;
  if (req->body && req->body_len && params_from(req->body, p, err, errlen)) return -1;
  return 0;
}

void sw__lk_params_free(struct sw__lk_params *p) {
  free(p->query);
  for (size_t i = 0; i < p->nmatch; i++) free(p->match[i]);
  memset(p, 0, sizeof *p);
}

