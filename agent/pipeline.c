/* pipeline.c - starting and stopping one configuration's stages (see pipeline.h). */
#include "pipeline.h"

#include <stdlib.h>
#include <string.h>

#include "../common/log.h"
#include "../sinks/file.h"
#include "../sinks/shipper.h"
#include "buffer/buffer.h"
#include "tail/ingest.h"
#include "retention/retention.h"
#include "tail/tail.h"
#include "buffer/hot.h"
#include "buffer/writer.h"
#include "journal/journal.h"
#include "kube/kube.h"

#define SHUTDOWN_WRITER_MS 2500
#define SHUTDOWN_SINKS_MS 1500

/* Stored file states read by the opening job (owned copies). */
struct known {
  struct known *next;
  struct sw_file_state st; /* source, path and pending point into the allocation's tail */
};

struct sw_pipeline {
  struct sw_pipeline_opts o;
  uv_work_t open;
  struct known *known;
  int open_rc;
  int64_t created_ns; /* the buffer's creation: older rotated generations are history */
  char open_err[512];
  struct sw_writer *writer;
  struct sw_hot *hot; /* committed chunks for sinks at the head; outlives writer and sinks */
  struct sw_ingest *ing;
  struct sw_tail *tail;
  struct sw_journals *journals; /* NULL without a journald source */
  struct sw_file_sink **sinks;
  size_t nsinks;
  struct sw_shipper *shipper; /* loki, elasticsearch and s3 sinks; NULL without any */
  struct sw_metrics *metrics;
  struct sw_redactor *redactor; /* NULL: no redaction configured */
  struct sw_retention *ret;     /* NULL: no retention, disk_pressure or truncate_shipped */
  struct sw_kube *kube;         /* NULL: kubernetes off; loaded by the opening job */
  char kube_note[512];          /* what the opening job has to say about it */
  uv_timer_t ret_timer;
  int opening, running, stopping, free_wanted, ret_timer_open;
};

static void free_known(struct known *k) {
  while (k) {
    struct known *n = k->next;
    free(k);
    k = n;
  }
}

static int keep_known(void *arg, const struct sw_file_state *st) {
  struct sw_pipeline *p = arg;
  size_t ls = strlen(st->source) + 1, lp = strlen(st->path) + 1;
  struct known *k = malloc(sizeof *k + ls + lp + st->pending_len);
  if (!k) return SW_ENOMEM;
  char *tail = (char *)(k + 1);
  k->st = *st;
  k->st.source = memcpy(tail, st->source, ls);
  k->st.path = memcpy(tail + ls, st->path, lp);
  k->st.pending = st->pending_len ? memcpy(tail + ls + lp, st->pending, st->pending_len) : NULL;
  k->next = p->known;
  p->known = k; /* reversed; the tail does not depend on the order */
  return SW_OK;
}

/* Pool thread: only this job's fields. Checks the database (a damaged one is salvaged, see
 * buffer/salvage.c), which reads it once: seconds for a large buffer. Waits as long as SQLite's busy timeout if another process
 * holds the database. */
static void open_work(uv_work_t *w) {
  struct sw_pipeline *p = w->data;
  struct sw_db *db = NULL;
  struct sw_db_salvage sv;
  p->open_rc = sw_db_open_checked(p->o.cfg->data_dir, &db, &sv, p->open_err, sizeof p->open_err);
  if (p->open_rc) return;
  SW_LOG(SW_L_INFO, "buffer", "buffer %s open (agent id %s)", sw_db_path(db), sw_db_agent_id(db));
  p->created_ns = sw_db_created_ns(db);
  p->open_rc = sw_db_load_files(db, keep_known, p);
  if (p->open_rc)
    snprintf(p->open_err, sizeof p->open_err, "cannot load file offsets: %s", sw_db_errmsg(db));
  /* The pod cache kept from the last run: enrichment works before the API server answers. */
  if (!p->open_rc && p->o.cfg->kubernetes.enabled &&
      (p->open_rc = sw_kube_create(p->o.cfg, db, &p->kube, p->kube_note, sizeof p->kube_note)))
    snprintf(p->open_err, sizeof p->open_err, "kubernetes: %s", sw_strerror(p->open_rc));
  sw_db_close(db);
}

static void on_retention_timer(uv_timer_t *h) {
  struct sw_pipeline *p = h->data;
  sw_retention_tick(p->ret);
}

static void on_progress(void *arg) {
  struct sw_pipeline *p = arg;
  if (p->tail && !p->stopping) sw_tail_kick(p->tail);
  if (p->journals && !p->stopping) sw_journals_kick(p->journals);
}

static void on_commit(void *arg) {
  struct sw_pipeline *p = arg;
  for (size_t i = 0; i < p->nsinks; i++)
    if (p->sinks[i]) sw_file_sink_notify(p->sinks[i]);
  sw_shipper_notify(p->shipper);
}

static int start_writer(struct sw_pipeline *p) {
  const struct sw_config *cfg = p->o.cfg;
  char err[512] = "";
  const char **names = calloc(cfg->nsinks + 1, sizeof *names);
  if (!names) return SW_ENOMEM;
  for (size_t i = 0; i < cfg->nsinks; i++) names[i] = cfg->sinks[i].name;
  struct sw_writer_opts wo = {
      .data_dir = cfg->data_dir, .max_bytes = cfg->buffer.max_bytes,
      .drop_oldest = cfg->buffer.when_full == SW_WHEN_FULL_DROP_OLDEST, .zstd_level = (int)cfg->buffer.zstd_level,
      .zstd_ldm = cfg->buffer.zstd_long,
      .keep_shipped_age_ns = (int64_t)cfg->buffer.keep_shipped_age_ms * 1000000,
      .keep_shipped_bytes = cfg->buffer.keep_shipped_bytes,
      /* The trigram filter costs ~1.2 ns per byte: only for chunks that stay to be searched
       * (history kept, or no sinks), not for ones deleted as soon as they are shipped. */
      .search_filters = cfg->buffer.keep_shipped_age_ms || cfg->buffer.keep_shipped_bytes || !cfg->nsinks,
      .sinks = names, .nsinks = cfg->nsinks, .on_progress = on_progress, .on_commit = on_commit,
      .arg = p};
  /* Without sinks nothing would ever read it. */
  int rc = cfg->nsinks ? sw_hot_new(cfg->buffer.recent_in_memory, &p->hot) : SW_OK;
  wo.hot = p->hot;
  if (!rc) rc = sw_writer_start(p->o.loop, &wo, &p->writer, err, sizeof err);
  free(names);
  if (rc) SW_LOG(SW_L_ERROR, "buffer", "%s", err[0] ? err : sw_strerror(rc));
  return rc;
}

static int start_sinks(struct sw_pipeline *p) {
  const struct sw_config *cfg = p->o.cfg;
  char err[512] = "";
  int rc;
  p->sinks = calloc(cfg->nsinks + 1, sizeof *p->sinks);
  if (!p->sinks) return SW_ENOMEM;
  for (size_t i = 0; i < cfg->nsinks; i++) {
    if (cfg->sinks[i].type != SW_SINK_FILE) continue;
    if ((rc = sw_file_sink_start(&cfg->sinks[i], cfg->data_dir, p->writer, &p->sinks[i], err,
                                 sizeof err))) {
      SW_LOG(SW_L_ERROR, "sink", "%s", err);
      return rc;
    }
    p->nsinks = i + 1;
  }
  if ((rc = sw_shipper_start(p->o.loop, cfg, p->writer, &p->shipper, err, sizeof err)))
    SW_LOG(SW_L_ERROR, "sink", "%s", err);
  return rc;
}

static int64_t tail_new_id(void *arg) { return sw_tail_new_id(arg); }

static int start_stages(struct sw_pipeline *p) {
  const struct sw_config *cfg = p->o.cfg;
  char err[512] = "";
  int rc;
  if ((rc = start_writer(p))) return rc;
  const struct sw_redact_section *rs = &cfg->redact;
  if ((rs->nbuiltin || rs->nrules || rs->nkeys) &&
      (rc = sw_config_redactor(cfg, &p->redactor, err, sizeof err))) {
    SW_LOG(SW_L_ERROR, "redact", "redact.%s", err);
    return rc;
  }
  if ((rc = sw_ingest_create(cfg, p->writer, p->redactor, 256 * 1024, &p->ing))) return rc;
  if ((rc = sw_tail_create(p->o.loop, cfg, p->ing, p->writer, &p->tail, err, sizeof err))) {
    SW_LOG(SW_L_ERROR, "tail", "%s", err);
    return rc;
  }
  if ((rc = sw_journals_create(p->o.loop, cfg, p->ing, p->writer, &p->journals))) return rc;
  for (struct known *k = p->known; k; k = k->next) {
    if (sw_journals_owns(cfg, &k->st)) {
      sw_tail_reserve_id(p->tail, k->st.id);
      if (p->journals && (rc = sw_journals_add_known(p->journals, &k->st))) return rc;
    } else if ((rc = sw_tail_add_known(p->tail, &k->st))) {
      return rc;
    }
  }
  sw_journals_assign_ids(p->journals, tail_new_id, p->tail);
  free_known(p->known);
  p->known = NULL;
  sw_tail_set_epoch(p->tail, p->created_ns);
  if (p->kube) {
    if (p->kube_note[0]) SW_LOG(SW_L_ERROR, "kubernetes", "%s", p->kube_note);
    sw_tail_set_kube(p->tail, p->kube);
    if ((rc = sw_kube_start(p->kube))) return rc;
  }
  if ((rc = start_sinks(p))) return rc;
  if ((rc = sw_tail_start(p->tail))) return rc;
  if ((rc = sw_journals_start(p->journals))) return rc;
  if ((rc = sw_retention_create(p->o.loop, cfg, p->tail, p->writer, p->redactor, &p->ret))) return rc;
  if (p->ret) {
    uint64_t every = sw_retention_interval_ms(cfg);
    uv_timer_init(p->o.loop, &p->ret_timer);
    p->ret_timer.data = p;
    p->ret_timer_open = 1;
    uv_timer_start(&p->ret_timer, on_retention_timer, every < 1000 ? every : 1000, every);
  }
  if (p->o.with_metrics) {
    struct sw_metrics_src ms = {.cfg = cfg, .tail = p->tail, .writer = p->writer,
                                .shipper = p->shipper, .kube = p->kube, .journals = p->journals, .reloads = p->o.reloads,
                                .process = sw_ingest_process(p->ing)};
    if ((rc = sw_metrics_create(p->o.loop, &ms, &p->metrics))) return rc;
  }
  return SW_OK;
}

static void open_done(uv_work_t *w, int status) {
  struct sw_pipeline *p = w->data;
  p->opening = 0;
  if (p->free_wanted) {
    sw_pipeline_free(p);
    return;
  }
  if (p->stopping) return;
  int rc = status < 0 ? SW_EIO : p->open_rc;
  if (rc) SW_LOG(SW_L_ERROR, "buffer", "%s", p->open_err[0] ? p->open_err : sw_strerror(rc));
  else rc = start_stages(p);
  p->running = rc == 0;
  p->o.on_started(p->o.arg, rc);
}

int sw_pipeline_open(const struct sw_pipeline_opts *o, struct sw_pipeline **out) {
  struct sw_pipeline *p = calloc(1, sizeof *p);
  *out = NULL;
  if (!p) return SW_ENOMEM;
  p->o = *o;
  p->open.data = p;
  if (uv_queue_work(o->loop, &p->open, open_work, open_done)) {
    free(p);
    return SW_EIO;
  }
  p->opening = 1;
  *out = p;
  return SW_OK;
}

struct sw_metrics *sw_pipeline_metrics(const struct sw_pipeline *p) {
  return p && p->running && !p->stopping ? p->metrics : NULL;
}

int sw_pipeline_disk_full(const struct sw_pipeline *p) {
  return p && p->running && !p->stopping && p->writer && sw_writer_disk_full(p->writer);
}

void sw_pipeline_stop(struct sw_pipeline *p) {
  if (!p || p->stopping) return;
  p->stopping = 1;
  p->running = 0;
  sw_metrics_stop(p->metrics); /* before the stages it reads go; freed as the loop runs */
  p->metrics = NULL;
  if (p->ret) { /* a pass in progress stops at its next block; its callback runs later */
    sw_retention_stop(p->ret);
    uv_close((uv_handle_t *)&p->ret_timer, NULL);
    p->ret_timer_open = 0;
  } else if (p->ret_timer_open) {
    uv_close((uv_handle_t *)&p->ret_timer, NULL);
    p->ret_timer_open = 0;
  }
  if (p->tail) sw_tail_stop(p->tail);
  sw_journals_stop(p->journals); /* before the writer: its last chunks go with the state */
  if (p->writer) sw_writer_stop(p->writer, SHUTDOWN_WRITER_MS);
  sw_kube_free(p->kube); /* the tail is stopped: nothing asks it any more */
  p->kube = NULL;
  if (p->tail) sw_tail_set_kube(p->tail, NULL);
  for (size_t i = 0; i < p->nsinks; i++)
    if (p->sinks[i]) sw_file_sink_stop(p->sinks[i], SHUTDOWN_SINKS_MS);
  p->nsinks = 0;
  free(p->sinks);
  p->sinks = NULL;
  sw_shipper_stop(p->shipper, SHUTDOWN_SINKS_MS);
  p->shipper = NULL;
  /* Only now: sinks kick the writer after each acknowledgement until they are stopped (its
   * mutex must still exist, and its memory must outlive the shipper's own loop runs). */
  sw_writer_free(p->writer);
  p->writer = NULL;
}

void sw_pipeline_free(struct sw_pipeline *p) {
  if (!p) return;
  if (p->opening) { /* the job still runs: open_done frees */
    p->stopping = p->free_wanted = 1;
    return;
  }
  sw_retention_free(p->ret);
  sw_kube_free(p->kube); /* opened, never started */
  sw_tail_free(p->tail);
  sw_journals_free(p->journals);
  sw_ingest_destroy(p->ing);
  sw_redactor_destroy(p->redactor);
  sw_hot_free(p->hot);
  free_known(p->known);
  free(p);
}
