/* agent.c - `spillway run`: the loop, signals, the HTTP control server, and live reload.
 *
 * Agent states:
 *   STARTING  (pipeline OPENING)  -> RUNNING  (on_started 0)        | exit 1 (on_started < 0)
 *   RUNNING   -(SIGHUP, POST /-/reload)-> the new config is loaded and validated:
 *               invalid  -> logged as "FILE: key.path: reason", the running pipeline goes on
 *               valid    -> RELOADING: the pipeline is stopped (as for a restart: committed,
 *                           cursors saved) and one with the new config is opened -> RUNNING;
 *                           if that one cannot start, the previous config is started again
 *   any       -(SIGTERM, SIGINT)-> STOPPING -> exit
 * Before STARTING, the data_dir lock (buffer/lock.h) is taken; if another agent holds it, `run`
 * exits at once, or with --wait-lock stays WAITING (the HTTP server answers, /ready 503
 * "waiting for the data_dir lock") until it is free -> STARTING, or until the wait ends -> exit 1.
 * The lock is held until the process exits, across reloads.
 * The HTTP server and signal handles outlive pipelines; they are unref'd, so uv_run returns
 * once a stopped pipeline has closed its handles. /ready answers 200 only while RUNNING.
 */
#include "agent.h"

#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "../common/log.h"
#include "../common/text.h"
#include "../common/timefmt.h"
#include "buffer/lock.h"
#include "http/httpd.h"
#include "http/metrics.h"
#include "pipeline.h"
#include "http/lokiapi.h"
#include "http/search.h"

#define METRICS_MAX_BYTES ((size_t)32 << 20)

struct agent {
  uv_loop_t loop;
  uv_signal_t sigterm, sigint, sighup;
  const struct sw_config *cfg;  /* the running one */
  struct sw_config *owned;      /* cfg when a reload loaded it (else the caller's) */
  const struct sw_config *prev; /* during a reload: the config to go back to */
  struct sw_config *prev_owned;
  struct sw_pipeline *pipe;
  struct sw_httpd *httpd;
  struct sw_search_http *search; /* GET /api/v1/search; its running searches keep the loop
                                    turning (a reload waits for them: at most 30 s) */
  struct sw_loki_api *loki; /* /loki/api/v1/...: like search (its tails do not hold a reload) */
  struct sw_reload_stats reloads;
  struct sw_buf held_metrics; /* during a reload: the exposition rendered as it began */
  int lockfd;                 /* data_dir/spillway.lock, held from start to exit; -1 before */
  uv_timer_t lock_timer;      /* retries the lock while WAITING */
  int64_t lock_deadline_ms;   /* monotonic end of --wait-lock */
  int waiting_lock, server_deferred;
  int stopping, ready, reloading, reload_wanted, restore_wanted, failed;
};

static const char *not_ready_reason(const struct agent *a) {
  return a->stopping        ? "shutting down"
         : a->waiting_lock  ? "waiting for the data_dir lock"
         : a->reloading     ? "reloading"
         : !a->ready        ? "starting"
         /* not ingesting: the bytes wait in the source files until space returns */
         : sw_pipeline_disk_full(a->pipe) ? "buffer disk full"
                            : NULL;
}

/* Liveness: answering at all means the loop turns. */
static void on_health(struct sw_http_conn *c, const struct sw_http_req *req, void *arg) {
  (void)req;
  (void)arg;
  sw_http_respond(c, 200, "application/json", "{\"status\":\"ok\"}\n", 16);
}

/* Readiness: the buffer is open, the first scan of the sources is done, not shutting down or
 * reloading. */
static void on_ready(struct sw_http_conn *c, const struct sw_http_req *req, void *arg) {
  struct agent *a = arg;
  (void)req;
  const char *why = not_ready_reason(a);
  char body[128];
  int n = why ? snprintf(body, sizeof body, "{\"status\":\"not ready\",\"reason\":\"%s\"}\n", why)
              : snprintf(body, sizeof body, "{\"status\":\"ready\"}\n");
  sw_http_respond(c, why ? 503 : 200, "application/json", body, (size_t)n);
}

/* The exposition to answer /metrics with now: the running pipeline's, or during a reload the
 * one held when it began (Prometheus sees no gap: `up` stays 1), or a 503 with the reason. */
static int render_metrics(struct agent *a, struct sw_buf *out, const char **ctype) {
  struct sw_metrics *m = a->ready ? sw_pipeline_metrics(a->pipe) : NULL;
  *ctype = "text/plain; version=0.0.4; charset=utf-8";
  if (!m && a->reloading && !a->stopping && a->held_metrics.len)
    return sw_buf_append(out, a->held_metrics.data, a->held_metrics.len) ? 500 : 200;
  *ctype = "application/json";
  if (!m) {
    const char *why = not_ready_reason(a);
    return sw_buf_printf(out, "{\"status\":\"not ready\",\"reason\":\"%s\"}\n",
                         why ? why : "starting") ? 500 : 503;
  }
  int rc = sw_metrics_render(m, out);
  if (rc) {
    SW_LOG(SW_L_ERROR, "http", "metrics: %s", sw_strerror(rc));
    sw_buf_reset(out);
    if (sw_buf_printf(out, "{\"error\":\"metrics unavailable\"}\n")) sw_buf_reset(out);
    return 500;
  }
  *ctype = "text/plain; version=0.0.4; charset=utf-8";
  return 200;
}

/* A scrape waiting for a fresh snapshot, answered as a stream once it is in. References: the
 * connection (until closed() or the end), the wait (until its callback), the write (until its
 * done callback); freed at zero. Loop thread only. */
struct scrape {
  struct agent *a;
  struct sw_http_conn *c; /* NULL once the connection is gone or ended */
  int refs;
};

static void scrape_unref(struct scrape *s) {
  if (--s->refs == 0) free(s);
}

static void scrape_gone(void *arg) {
  struct scrape *s = arg;
  s->c = NULL;
  scrape_unref(s);
}

static void scrape_written(void *arg, size_t len) {
  (void)len;
  scrape_unref(arg);
}

static void scrape_fresh(void *arg) {
  struct scrape *s = arg;
  int drop = 1; /* the wait's reference */
  if (s->c) {
    struct sw_buf out;
    const char *ctype;
    sw_buf_init(&out, METRICS_MAX_BYTES);
    render_metrics(s->a, &out, &ctype); /* a stream is a 200: the body says what went wrong */
    if (!out.len)
      sw_buf_free(&out);
    else if (sw_http_stream_write(s->c, out.data, out.len, scrape_written, s) == SW_OK) /* takes out.data */
      s->refs++;
    sw_http_stream_end(s->c);
    s->c = NULL;
    drop++; /* and the connection's */
  }
  s->refs -= drop;
  if (s->refs == 0) free(s);
}

/* The Prometheus exposition (agent/http/metrics.h): built from memory and the last snapshot, so the
 * loop never waits on SQLite here. After an idle spell the snapshot is old: the answer then
 * waits (up to about a second) for a new one, so that no scrape reports stale counters. */
static void on_metrics(struct sw_http_conn *c, const struct sw_http_req *req, void *arg) {
  struct agent *a = arg;
  struct sw_metrics *m = a->ready ? sw_pipeline_metrics(a->pipe) : NULL;
  /* (HEAD wants a Content-Length, which a streamed answer has not: it gets what there is.) */
  int wait = m && !sw_metrics_fresh(m) && strcmp(req->method, "HEAD") != 0;
  struct scrape *s = wait ? calloc(1, sizeof *s) : NULL;
  if (s) {
    *s = (struct scrape){.a = a, .c = c, .refs = 1};
    if (sw_http_stream_start(c, "text/plain; version=0.0.4; charset=utf-8", scrape_gone, s)) {
      free(s); /* the connection is closing: nobody to answer */
      return;
    }
    s->refs++; /* the wait's, or (cannot wait) the immediate answer's */
    if (sw_metrics_wait_fresh(m, 1000, scrape_fresh, s)) scrape_fresh(s);
    return;
  }
  struct sw_buf out;
  const char *ctype;
  sw_buf_init(&out, METRICS_MAX_BYTES);
  int status = render_metrics(a, &out, &ctype);
  sw_http_respond(c, status, ctype, out.data, out.len);
  sw_buf_free(&out);
}

/* Renders the running pipeline's exposition into held_metrics, for /metrics during the reload
 * that is about to stop it. */
static void hold_metrics(struct agent *a) {
  struct sw_metrics *m = a->ready ? sw_pipeline_metrics(a->pipe) : NULL;
  if (!m) return; /* a restore: keep what the reload held */
  sw_buf_free(&a->held_metrics);
  sw_buf_init(&a->held_metrics, METRICS_MAX_BYTES);
  if (sw_metrics_render(m, &a->held_metrics))
    sw_buf_free(&a->held_metrics); /* then /metrics answers 503 "reloading", as before */
}

/* Asks the main loop to reload once the current pipeline runs (a reload asked while one is
 * starting waits for it). */
static void want_reload(struct agent *a, const char *why) {
  if (a->stopping) return;
  SW_LOG(SW_L_INFO, "agent", "%s: reloading the configuration from %s", why, a->cfg->file);
  a->reload_wanted = 1;
  if (a->ready) uv_stop(&a->loop);
}

/* POST /-/reload (server.enable_reload): answered at once; the outcome is logged and counted
 * in spillway_config_reloads_total. */
static void on_reload(struct sw_http_conn *c, const struct sw_http_req *req, void *arg) {
  struct agent *a = arg;
  (void)req;
  static const char body[] = "{\"status\":\"reloading\"}\n";
  want_reload(a, "POST /-/reload");
  sw_http_respond(c, 202, "application/json", body, sizeof body - 1);
}

static int start_server(struct agent *a) {
  const char *listen = a->cfg->server.listen;
  if (!listen || !*listen || !strcmp(listen, "0")) return SW_OK;
  char err[256];
  int rc = sw_httpd_start(&a->loop, listen, &a->httpd, err, sizeof err);
  if (rc) {
    SW_LOG(SW_L_ERROR, "http", "%s", err);
    return rc;
  }
  if ((rc = sw_httpd_route_probe(a->httpd, "/health", on_health, a)) ||
      (rc = sw_httpd_route(a->httpd, "/ready", on_ready, a)) ||
      (rc = sw_httpd_route(a->httpd, "/metrics", on_metrics, a)) ||
      (a->cfg->server.enable_reload &&
       (rc = sw_httpd_route_method(a->httpd, "POST", "/-/reload", on_reload, a))))
    return rc;
  if (a->cfg->server.enable_search) {
    if (!(a->search = sw_search_http_new(&a->loop, a->cfg->data_dir))) return SW_ENOMEM;
    sw_search_http_set_config(a->search, &a->cfg);
    if ((rc = sw_httpd_route(a->httpd, "/api/v1/search", sw_search_http_handle, a->search))) return rc;
    /* Loki's query API over the same buffer (docs/loki-api.md) */
    if (!(a->loki = sw_loki_api_new(&a->loop, a->cfg->data_dir, &a->cfg))) return SW_ENOMEM;
    if ((rc = sw_loki_api_routes(a->loki, a->httpd))) return rc;
  }
  SW_LOG(SW_L_INFO, "http", "listening on %s (port %d)", listen, sw_httpd_port(a->httpd));
  return SW_OK;
}

static void on_signal(uv_signal_t *h, int signum) {
  struct agent *a = h->data;
  if (a->stopping) return;
  a->stopping = 1;
  SW_LOG(SW_L_INFO, "agent", "received %s, shutting down", signum == SIGTERM ? "SIGTERM" : "SIGINT");
  uv_signal_stop(&a->sigterm);
  uv_signal_stop(&a->sigint);
  uv_stop(&a->loop);
}

static void on_sighup(uv_signal_t *h, int signum) {
  (void)signum;
  want_reload(h->data, "received SIGHUP");
}

static void apply_log(const struct sw_config *cfg) {
  sw_log_setup(cfg->log.level == SW_LOG_DEBUG  ? SW_L_DEBUG
               : cfg->log.level == SW_LOG_WARN ? SW_L_WARN
               : cfg->log.level == SW_LOG_ERROR ? SW_L_ERROR
                                                : SW_L_INFO,
               cfg->log.format == SW_LOG_FORMAT_JSON);
}

static void on_started(void *arg, int rc) {
  struct agent *a = arg;
  const struct sw_config *cfg = a->cfg;
  if (rc && a->prev) { /* a reloaded config that cannot run: go back to the previous one */
    SW_LOG(SW_L_ERROR, "agent", "reload failed: the new configuration could not start (%s); "
                                "restoring the previous one", sw_strerror(rc));
    a->restore_wanted = 1;
    uv_stop(&a->loop);
    return;
  }
  if (rc) {
    a->failed = 1;
    uv_stop(&a->loop);
    return;
  }
  if (a->prev) { /* a reload that runs (not the first start, not a restore) */
    a->reloads.ok++;
    a->reloads.last_ok = 1;
    a->reloads.last_ok_ns = sw_time_now_ns();
  }
  a->reloading = 0;
  sw_buf_free(&a->held_metrics); /* the new pipeline answers /metrics itself */
  sw_config_free(a->prev_owned); /* the new one runs: the old is no longer needed */
  a->prev = NULL;
  a->prev_owned = NULL;
  a->ready = 1;
  SW_LOG(SW_L_INFO, "agent", "spillway %s running: %zu source%s, %zu sink%s", SW_VERSION,
         cfg->nsources, sw_plural(cfg->nsources), cfg->nsinks, sw_plural(cfg->nsinks));
  if (a->reload_wanted) uv_stop(&a->loop); /* asked while starting */
}

static int open_pipeline(struct agent *a) {
  struct sw_pipeline_opts po = {.loop = &a->loop, .cfg = a->cfg, .with_metrics = a->httpd != NULL,
                                .reloads = &a->reloads, .on_started = on_started, .arg = a};
  int rc = sw_pipeline_open(&po, &a->pipe);
  if (rc) SW_LOG(SW_L_ERROR, "agent", "cannot start: %s", sw_strerror(rc));
  return rc;
}

#define LOCK_RETRY_MS 200

static void describe_holder(const struct sw_datalock_holder *h, char *buf, size_t n) {
  if (h->pid > 0)
    snprintf(buf, n, "pid %ld%s%s", h->pid, h->host[0] ? " on host " : "", h->host);
  else
    snprintf(buf, n, "a process that has not written its pid yet");
}

/* The lock is ours: what waiting put off (the HTTP server if its port was taken, the
 * pipeline) starts now. */
static void lock_acquired(struct agent *a) {
  a->waiting_lock = 0;
  uv_timer_stop(&a->lock_timer);
  SW_LOG(SW_L_INFO, "agent", "data_dir lock acquired (%s/%s)", a->cfg->data_dir, SW_DATALOCK_NAME);
  int deferred = a->server_deferred;
  a->server_deferred = 0;
  if ((deferred && start_server(a)) || open_pipeline(a)) {
    a->failed = 1;
    uv_stop(&a->loop);
  }
}

static void on_lock_timer(uv_timer_t *h) {
  struct agent *a = h->data;
  struct sw_datalock_holder who;
  char desc[128];
  int rc = sw_datalock_try(a->lockfd, &who);
  if (rc == SW_OK) {
    lock_acquired(a);
    return;
  }
  if (rc == SW_EAGAIN && sw_time_mono_ms() < a->lock_deadline_ms) return;
  describe_holder(&who, desc, sizeof desc);
  if (rc == SW_EAGAIN)
    SW_LOG(SW_L_ERROR, "agent", "gave up waiting for the data_dir lock: %s/%s is still held by %s",
           a->cfg->data_dir, SW_DATALOCK_NAME, desc);
  else
    SW_LOG(SW_L_ERROR, "agent", "cannot lock %s/%s: %s", a->cfg->data_dir, SW_DATALOCK_NAME,
           strerror(errno));
  a->waiting_lock = 0;
  a->failed = 1;
  uv_timer_stop(&a->lock_timer);
  uv_stop(&a->loop);
}

/* SW_OK: held. SW_EAGAIN: another agent holds it and we wait (wait_ms > 0; the timer retries).
 * Anything else: refused or failed, logged. */
static int take_lock(struct agent *a, uint64_t wait_ms) {
  struct sw_datalock_holder who;
  char err[512], desc[128];
  int rc = sw_datalock_open(a->cfg->data_dir, &a->lockfd, &who, err, sizeof err);
  if (rc == SW_OK) return SW_OK;
  if (rc != SW_EAGAIN) {
    SW_LOG(SW_L_ERROR, "agent", "%s", err);
    return rc;
  }
  describe_holder(&who, desc, sizeof desc);
  if (wait_ms == 0) {
    SW_LOG(SW_L_ERROR, "agent", "data_dir %s is in use by another spillway (%s): two agents on one "
           "data_dir would read and ship everything twice. Stop it first, or start with "
           "--wait-lock DURATION to wait for it", a->cfg->data_dir, desc);
    return SW_EIO;
  }
  SW_LOG(SW_L_WARN, "agent", "data_dir %s is in use by another spillway (%s): waiting up to %llu s "
         "for it to exit", a->cfg->data_dir, desc, (unsigned long long)(wait_ms + 999) / 1000);
  a->waiting_lock = 1;
  a->lock_deadline_ms = sw_time_mono_ms() + (int64_t)wait_ms;
  uv_timer_start(&a->lock_timer, on_lock_timer, LOCK_RETRY_MS, LOCK_RETRY_MS);
  return SW_EAGAIN;
}

/* Stops the pipeline and runs the loop until its handles are closed (HTTP keeps answering
 * meanwhile; a stop asked by uv_stop only ends one round). */
static void close_pipeline(struct agent *a) {
  if (a->reloading) hold_metrics(a);
  a->ready = 0;
  sw_pipeline_stop(a->pipe);
  while (uv_run(&a->loop, UV_RUN_DEFAULT) != 0) { /* uv_stop (a signal) ends one round only */
  }
  sw_pipeline_free(a->pipe);
  a->pipe = NULL;
}

/* What a reload cannot change while running (the server keeps its socket, the buffer its
 * directory): refused with the key path, like any invalid value. */
static const char *unchangeable(const struct sw_config *old, const struct sw_config *n) {
  if (strcmp(old->data_dir, n->data_dir)) return "data_dir: cannot change on reload (restart the agent)";
  const char *ol = old->server.listen ? old->server.listen : "", *nl = n->server.listen ? n->server.listen : "";
  if (strcmp(ol, nl)) return "server.listen: cannot change on reload (restart the agent)";
  if (old->server.enable_reload != n->server.enable_reload)
    return "server.enable_reload: cannot change on reload (restart the agent)";
  if (old->server.enable_search != n->server.enable_search)
    return "server.enable_search: cannot change on reload (restart the agent)";
  return NULL;
}

static void reload(struct agent *a) {
  a->reload_wanted = 0;
  struct sw_config *ncfg = NULL;
  struct sw_conf_errors errs = {0};
  int rc = sw_config_load(a->cfg->file, &ncfg, &errs);
  const char *why = rc ? NULL : unchangeable(a->cfg, ncfg);
  if (rc || why) {
    for (size_t i = 0; i < errs.n; i++)
      SW_LOG(SW_L_ERROR, "agent", "reload refused: %s", errs.msgs[i]);
    if (why) SW_LOG(SW_L_ERROR, "agent", "reload refused: %s: %s", a->cfg->file, why);
    SW_LOG(SW_L_WARN, "agent", "configuration unchanged: the running one goes on");
    a->reloads.failed++;
    a->reloads.last_ok = 0;
    sw_conf_errors_free(&errs);
    sw_config_free(ncfg);
    return;
  }
  sw_conf_errors_free(&errs);
  a->reloading = 1;
  close_pipeline(a);
  if (a->stopping) { /* a stop signal came while the old pipeline closed */
    sw_config_free(ncfg);
    return;
  }
  a->prev = a->cfg;
  a->prev_owned = a->owned;
  a->cfg = a->owned = ncfg;
  apply_log(a->cfg);
  if (open_pipeline(a)) on_started(a, SW_EIO);
}

/* The reloaded config could not start: the previous one again (it ran before). */
static int restore(struct agent *a) {
  a->restore_wanted = 0;
  close_pipeline(a);
  sw_config_free(a->owned);
  a->cfg = a->prev;
  a->owned = a->prev_owned;
  a->prev = NULL;
  a->prev_owned = NULL;
  a->reloads.failed++;
  a->reloads.last_ok = 0;
  apply_log(a->cfg);
  return open_pipeline(a);
}

static void close_handle(uv_handle_t *h) {
  if (!uv_is_closing(h)) uv_close(h, NULL);
}

int sw_agent_run(const struct sw_config *cfg, uint64_t wait_lock_ms) {
  struct agent a;
  memset(&a, 0, sizeof a);
  a.cfg = cfg;
  a.lockfd = -1;
  a.reloads.last_ok = 1;
  a.reloads.last_ok_ns = sw_time_now_ns();
  if (uv_loop_init(&a.loop)) return 1;
  signal(SIGPIPE, SIG_IGN);
  uv_signal_t *sigs[] = {&a.sigterm, &a.sigint, &a.sighup};
  for (size_t i = 0; i < 3; i++) {
    uv_signal_init(&a.loop, sigs[i]);
    sigs[i]->data = &a;
  }
  uv_signal_start(&a.sigterm, on_signal, SIGTERM);
  uv_signal_start(&a.sigint, on_signal, SIGINT);
  uv_signal_start(&a.sighup, on_sighup, SIGHUP);
  for (size_t i = 0; i < 3; i++) uv_unref((uv_handle_t *)sigs[i]); /* the pipeline keeps us running */
  uv_timer_init(&a.loop, &a.lock_timer); /* ref'd: waiting for the lock keeps us running */
  a.lock_timer.data = &a;
  sigset_t set; /* blocked by the CLI until now; a pending one is delivered here */
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGHUP);
  pthread_sigmask(SIG_UNBLOCK, &set, NULL);
  int rc = take_lock(&a, wait_lock_ms);
  if (rc == SW_OK || rc == SW_EAGAIN) {
    int waiting = rc == SW_EAGAIN;
    rc = start_server(&a);
    if (rc && waiting) { /* e.g. the holder has the same port: serve once it has gone */
      SW_LOG(SW_L_WARN, "http", "not serving while waiting for the data_dir lock; trying again "
             "once it is held");
      sw_httpd_stop(a.httpd);
      a.httpd = NULL;
      sw_search_http_free(a.search);
      a.search = NULL;
      sw_loki_api_free(a.loki);
      a.loki = NULL;
      a.server_deferred = 1;
      rc = SW_OK;
    }
    if (rc == 0 && !waiting) rc = open_pipeline(&a);
  }
  while (rc == 0) {
    uv_run(&a.loop, UV_RUN_DEFAULT);
    if (a.stopping) break;
    if (a.failed) rc = SW_EIO;
    else if (a.restore_wanted) rc = restore(&a);
    else if (a.reload_wanted && a.ready) reload(&a);
    else if (!a.reload_wanted) rc = SW_EIO; /* nothing left running: a stage failed */
  }
  a.stopping = 1;
  a.ready = 0;
  sw_pipeline_stop(a.pipe); /* /ready says "shutting down" while sinks finish */
  if (a.httpd) sw_httpd_stop(a.httpd);
  a.httpd = NULL;
  for (size_t i = 0; i < 3; i++) close_handle((uv_handle_t *)sigs[i]);
  close_handle((uv_handle_t *)&a.lock_timer);
  uv_run(&a.loop, UV_RUN_DEFAULT); /* finish closing handles (and a retention pass) */
  sw_search_http_free(a.search); /* its searches, cancelled with their connections, are done */
  sw_loki_api_free(a.loki);
  sw_pipeline_free(a.pipe); /* an opening job has finished: uv_run waited for it */
  sw_config_free(a.owned);
  sw_config_free(a.prev_owned);
  sw_buf_free(&a.held_metrics);
  sw_datalock_close(a.lockfd); /* after everything that wrote to data_dir has stopped */
  int lc = uv_loop_close(&a.loop);
  if (lc) SW_LOG(SW_L_WARN, "agent", "loop closed with handles open: %s", uv_strerror(lc));
  if (rc == 0) SW_LOG(SW_L_INFO, "agent", "stopped cleanly");
  return rc == 0 ? 0 : 1;
}
