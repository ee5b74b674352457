#include "agent.h"

#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "../common/log.h"
#include "../sinks/file.h"
#include "../sinks/shipper.h"
#include "buffer.h"
#include "httpd.h"
#include "ingest.h"
#include "metrics.h"
#include "retention.h"
#include "tail.h"
#include "writer.h"

#define SHUTDOWN_WRITER_MS 2500
#define SHUTDOWN_SINKS_MS 1500

struct agent {
  uv_loop_t loop;
  uv_signal_t sigterm, sigint, sighup;
  const struct sw_config *cfg;
  struct sw_writer *writer;
  struct sw_ingest *ing;
  struct sw_tail *tail;
  struct sw_file_sink **sinks;
  size_t nsinks;
  struct sw_shipper *shipper; /* loki, elasticsearch and s3 sinks; NULL without any */
  struct sw_httpd *httpd;
  struct sw_metrics *metrics; /* NULL until the pipeline runs, and without a server */
  struct sw_redactor *redactor; /* NULL: no redaction configured */
  struct sw_retention *ret; /* NULL: no retention, disk_pressure or truncate_shipped */
  uv_timer_t ret_timer;
  int stopping, ready;
};

static void on_retention_timer(uv_timer_t *h) {
  struct agent *a = h->data;
  sw_retention_tick(a->ret);
}

/* Liveness: answering at all means the loop turns. */
static void on_health(struct sw_http_conn *c, const struct sw_http_req *req, void *arg) {
  (void)req;
  (void)arg;
  sw_http_respond(c, 200, "application/json", "{\"status\":\"ok\"}\n", 16);
}

/* Readiness: the buffer is open, the first scan of the sources is done, not shutting down. */
static void on_ready(struct sw_http_conn *c, const struct sw_http_req *req, void *arg) {
  struct agent *a = arg;
  (void)req;
  const char *why = a->stopping ? "shutting down" : !a->ready ? "starting" : NULL;
  char body[128];
  int n = why ? snprintf(body, sizeof body, "{\"status\":\"not ready\",\"reason\":\"%s\"}\n", why)
              : snprintf(body, sizeof body, "{\"status\":\"ready\"}\n");
  sw_http_respond(c, why ? 503 : 200, "application/json", body, (size_t)n);
}

#define METRICS_MAX_BYTES ((size_t)32 << 20)

/* The Prometheus exposition (agent/metrics.h): built from memory and the last snapshot, so the
 * loop never waits on SQLite here. */
static void on_metrics(struct sw_http_conn *c, const struct sw_http_req *req, void *arg) {
  struct agent *a = arg;
  (void)req;
  if (!a->metrics) {
    static const char body[] = "{\"status\":\"not ready\",\"reason\":\"starting\"}\n";
    sw_http_respond(c, 503, "application/json", body, sizeof body - 1);
    return;
  }
  struct sw_buf out;
  sw_buf_init(&out, METRICS_MAX_BYTES);
  int rc = sw_metrics_render(a->metrics, &out);
  if (rc) {
    SW_LOG(SW_L_ERROR, "http", "metrics: %s", sw_strerror(rc));
    static const char body[] = "{\"error\":\"metrics unavailable\"}\n";
    sw_http_respond(c, 500, "application/json", body, sizeof body - 1);
  } else {
    sw_http_respond(c, 200, "text/plain; version=0.0.4; charset=utf-8", out.data, out.len);
  }
  sw_buf_free(&out);
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
  if ((rc = sw_httpd_route(a->httpd, "/health", on_health, a)) ||
      (rc = sw_httpd_route(a->httpd, "/ready", on_ready, a)) ||
      (rc = sw_httpd_route(a->httpd, "/metrics", on_metrics, a)))
    return rc;
  SW_LOG(SW_L_INFO, "http", "listening on %s (port %d)", listen, sw_httpd_port(a->httpd));
  return SW_OK;
}

static void on_progress(void *arg) {
  struct agent *a = arg;
  if (a->tail && !a->stopping) sw_tail_kick(a->tail);
}

static void on_commit(void *arg) {
  struct agent *a = arg;
  for (size_t i = 0; i < a->nsinks; i++)
    if (a->sinks[i]) sw_file_sink_notify(a->sinks[i]);
  sw_shipper_notify(a->shipper);
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

/* Until live reload lands (issue #7), SIGHUP (`systemctl reload`, `kill -HUP`) must not kill
 * the agent by its default action: say that the config was not re-read, and keep running. */
static void on_sighup(uv_signal_t *h, int signum) {
  (void)h;
  (void)signum;
  SW_LOG(SW_L_WARN, "agent", "received SIGHUP: live reload is not available in this build yet; "
                             "configuration unchanged (restart to apply changes)");
}

static int add_known(void *arg, const struct sw_file_state *st) {
  return sw_tail_add_known(arg, st);
}

static int load_state(struct agent *a) {
  struct sw_db *db = NULL;
  char err[512];
  int rc = sw_db_open(a->cfg->data_dir, 0, &db, err, sizeof err);
  if (rc) {
    SW_LOG(SW_L_ERROR, "buffer", "%s", err);
    return rc;
  }
  SW_LOG(SW_L_INFO, "buffer", "buffer %s open (agent id %s)", sw_db_path(db), sw_db_agent_id(db));
  rc = sw_db_load_files(db, add_known, a->tail);
  if (rc) SW_LOG(SW_L_ERROR, "buffer", "cannot load file offsets: %s", sw_db_errmsg(db));
  sw_db_close(db);
  return rc;
}

static int start(struct agent *a) {
  const struct sw_config *cfg = a->cfg;
  char err[512] = "";
  const char **names = calloc(cfg->nsinks + 1, sizeof *names);
  if (!names) return SW_ENOMEM;
  for (size_t i = 0; i < cfg->nsinks; i++) names[i] = cfg->sinks[i].name;
  struct sw_writer_opts wo = {
      .data_dir = cfg->data_dir, .max_bytes = cfg->buffer.max_bytes,
      .drop_oldest = cfg->buffer.when_full == SW_WHEN_FULL_DROP_OLDEST, .zstd_level = 1,
      .sinks = names, .nsinks = cfg->nsinks, .on_progress = on_progress, .on_commit = on_commit,
      .arg = a};
  int rc = sw_writer_start(&a->loop, &wo, &a->writer, err, sizeof err);
  free(names);
  if (rc) {
    SW_LOG(SW_L_ERROR, "buffer", "%s", err[0] ? err : sw_strerror(rc));
    return rc;
  }
  size_t max_line = 256 * 1024;
  const struct sw_redact_section *rs = &cfg->redact;
  if ((rs->nbuiltin || rs->nrules || rs->nkeys) &&
      (rc = sw_config_redactor(cfg, &a->redactor, err, sizeof err))) {
    SW_LOG(SW_L_ERROR, "redact", "redact.%s", err);
    return rc;
  }
  if ((rc = sw_ingest_create(cfg, a->writer, a->redactor, max_line, &a->ing))) return rc;
  if ((rc = sw_tail_create(&a->loop, cfg, a->ing, a->writer, &a->tail, err, sizeof err))) {
    SW_LOG(SW_L_ERROR, "tail", "%s", err);
    return rc;
  }
  if ((rc = load_state(a))) return rc;
  a->sinks = calloc(cfg->nsinks + 1, sizeof *a->sinks);
  if (!a->sinks) return SW_ENOMEM;
  for (size_t i = 0; i < cfg->nsinks; i++) {
    if (cfg->sinks[i].type != SW_SINK_FILE) continue;
    if ((rc = sw_file_sink_start(&cfg->sinks[i], cfg->data_dir, a->writer, &a->sinks[i], err,
                                 sizeof err))) {
      SW_LOG(SW_L_ERROR, "sink", "%s", err);
      return rc;
    }
    a->nsinks = i + 1;
  }
  if ((rc = sw_shipper_start(&a->loop, cfg, a->writer, &a->shipper, err, sizeof err))) {
    SW_LOG(SW_L_ERROR, "sink", "%s", err);
    return rc;
  }
  if ((rc = sw_tail_start(a->tail))) return rc;
  if ((rc = sw_retention_create(&a->loop, cfg, a->tail, a->writer, &a->ret))) return rc;
  if (a->ret) {
    uint64_t every = sw_retention_interval_ms(cfg);
    uv_timer_init(&a->loop, &a->ret_timer);
    a->ret_timer.data = a;
    uv_timer_start(&a->ret_timer, on_retention_timer, every < 1000 ? every : 1000, every);
  }
  if (a->httpd) {
    struct sw_metrics_src ms = {.cfg = cfg, .tail = a->tail, .writer = a->writer, .shipper = a->shipper};
    if ((rc = sw_metrics_create(&a->loop, &ms, &a->metrics))) return rc;
  }
  a->ready = 1;
  return SW_OK;
}

static void shutdown_all(struct agent *a) {
  a->stopping = 1;
  if (a->httpd) sw_httpd_stop(a->httpd);
  a->httpd = NULL;
  sw_metrics_stop(a->metrics); /* before the modules it reads go; freed as the loop runs */
  a->metrics = NULL;
  if (a->ret) { /* a pass in progress stops at its next block; its callback runs below */
    sw_retention_stop(a->ret);
    uv_close((uv_handle_t *)&a->ret_timer, NULL);
  }
  if (a->tail) sw_tail_stop(a->tail);
  if (a->writer) sw_writer_stop(a->writer, SHUTDOWN_WRITER_MS);
  a->writer = NULL;
  for (size_t i = 0; i < a->nsinks; i++)
    if (a->sinks[i]) sw_file_sink_stop(a->sinks[i], SHUTDOWN_SINKS_MS);
  a->nsinks = 0;
  free(a->sinks);
  a->sinks = NULL;
  sw_shipper_stop(a->shipper, SHUTDOWN_SINKS_MS);
  a->shipper = NULL;
  if (!uv_is_closing((uv_handle_t *)&a->sigterm)) uv_close((uv_handle_t *)&a->sigterm, NULL);
  if (!uv_is_closing((uv_handle_t *)&a->sigint)) uv_close((uv_handle_t *)&a->sigint, NULL);
  if (!uv_is_closing((uv_handle_t *)&a->sighup)) uv_close((uv_handle_t *)&a->sighup, NULL);
  uv_run(&a->loop, UV_RUN_DEFAULT); /* finish closing handles (and a retention pass) */
  sw_retention_free(a->ret);
  a->ret = NULL;
  sw_tail_free(a->tail);
  a->tail = NULL;
  sw_ingest_destroy(a->ing);
  a->ing = NULL;
  sw_redactor_destroy(a->redactor);
  a->redactor = NULL;
}

int sw_agent_run(const struct sw_config *cfg) {
  struct agent a;
  memset(&a, 0, sizeof a);
  a.cfg = cfg;
  if (uv_loop_init(&a.loop)) return 1;
  signal(SIGPIPE, SIG_IGN);
  uv_signal_init(&a.loop, &a.sigterm);
  uv_signal_init(&a.loop, &a.sigint);
  a.sigterm.data = a.sigint.data = &a;
  uv_signal_start(&a.sigterm, on_signal, SIGTERM);
  uv_signal_start(&a.sigint, on_signal, SIGINT);
  uv_signal_init(&a.loop, &a.sighup);
  uv_signal_start(&a.sighup, on_sighup, SIGHUP);
  sigset_t set; /* blocked by the CLI until now; a pending one is delivered here */
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGHUP);
  pthread_sigmask(SIG_UNBLOCK, &set, NULL);
  int rc = start_server(&a);
  if (rc == 0) rc = start(&a);
  if (rc == 0) {
    SW_LOG(SW_L_INFO, "agent", "spillway %s running: %zu sources, %zu sinks", SW_VERSION,
           cfg->nsources, cfg->nsinks);
    uv_run(&a.loop, UV_RUN_DEFAULT);
  }
  shutdown_all(&a);
  int lc = uv_loop_close(&a.loop);
  if (lc) SW_LOG(SW_L_WARN, "agent", "loop closed with handles open: %s", uv_strerror(lc));
  if (rc == 0) SW_LOG(SW_L_INFO, "agent", "stopped cleanly");
  return rc == 0 ? 0 : 1;
}
